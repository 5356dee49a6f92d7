//! `tally genesis new`: write a genesis file from command-line arguments.
//!
//! Every value goes through the protocol crate's own parsing and [`Genesis::validate`], so a
//! file this command writes is exactly one that every node accepts.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use protocol::amount::parse_positive_amount;
use protocol::genesis::Allocation;
use protocol::{Decimals, Genesis, PublicKey, Validator, format_amount, parse_amount};
use serde_json::json;

use crate::failure::CommandResult;
use crate::files;

/// Genesis commands.
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Write a new genesis file.
    ///
    /// Example: tally genesis new --name tally-test --validator alpha=tly1… --validator
    /// beta=tly1… --alloc tly1…=1000.00 --out genesis.toml
    New(GenesisArgs),
}

/// The arguments of `tally genesis new`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// The network's name, 1 to 64 bytes.
    #[arg(long)]
    name: String,
    /// A validator as NAME=ADDRESS; repeat in proposer rotation order (at least one).
    #[arg(long = "validator", value_name = "NAME=ADDRESS", required = true)]
    validators: Vec<String>,
    /// A starting balance as ADDRESS=AMOUNT (a decimal amount, such as 250.00); repeatable.
    #[arg(long = "alloc", value_name = "ADDRESS=AMOUNT")]
    allocations: Vec<String>,
    /// Decimal places of one coin, 0 to 8.
    #[arg(long, default_value_t = 2)]
    decimals: u8,
    /// The least fee a transfer must pay; the smallest unit (0.01 at 2 decimals) if absent.
    #[arg(long, value_name = "AMOUNT")]
    min_fee: Option<String>,
    /// The account fees go to; the first validator's address if absent.
    #[arg(long, value_name = "ADDRESS")]
    fee_account: Option<String>,
    /// The cap on total supply; the sum of the allocations if absent.
    #[arg(long, value_name = "AMOUNT")]
    max_supply: Option<String>,
    /// The most transfers in one block.
    #[arg(long, default_value_t = 1000)]
    max_block_transfers: u32,
    /// The most bytes in one encoded block.
    #[arg(long, default_value_t = 1_048_576)]
    max_block_bytes: u32,
    /// Where to write the genesis; an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Runs a genesis command.
pub fn run(command: GenesisCommand, json: bool) -> CommandResult {
    match command {
        GenesisCommand::New(args) => new(&args, json),
    }
}

fn new(args: &GenesisArgs, json: bool) -> CommandResult {
    let genesis = build(args)?;

    files::create_new(&args.out, 0o644, genesis.to_toml().as_bytes())?;
    print_created(&genesis, &args.out, json);
    Ok(())
}

/// Parses and validates the arguments into a genesis.
fn build(args: &GenesisArgs) -> anyhow::Result<Genesis> {
    let decimals = Decimals::new(args.decimals)
        .map_err(|_| anyhow!("--decimals must be between 0 and 8, got {}", args.decimals))?;
    let validators = args
        .validators
        .iter()
        .map(|text| parse_validator(text))
        .collect::<anyhow::Result<Vec<Validator>>>()?;
    let allocations = args
        .allocations
        .iter()
        .map(|text| parse_allocation(text, decimals))
        .collect::<anyhow::Result<Vec<Allocation>>>()?;

    // Defaults: the smallest unit as fee, fees to the first validator, and a supply cap of
    // exactly what is allocated.
    let min_fee = match &args.min_fee {
        Some(text) => parse_amount(text, decimals, u64::MAX).context("--min-fee")?,
        None => 1,
    };
    let fee_account = match &args.fee_account {
        Some(text) => parse_address(text).context("--fee-account")?,
        None => validators[0].key,
    };
    let max_supply = match &args.max_supply {
        Some(text) => parse_positive_amount(text, decimals, u64::MAX).context("--max-supply")?,
        None => allocated_total(&allocations)?,
    };

    let genesis = Genesis {
        network: args.name.clone(),
        decimals,
        min_fee,
        fee_account,
        max_supply,
        max_block_transfers: args.max_block_transfers,
        max_block_bytes: args.max_block_bytes,
        validators,
        allocations,
    };
    genesis.validate().context("invalid genesis")?;
    Ok(genesis)
}

fn parse_validator(text: &str) -> anyhow::Result<Validator> {
    let Some((name, address)) = text.split_once('=') else {
        bail!("--validator {text:?}: expected NAME=ADDRESS");
    };
    let key = parse_address(address).with_context(|| format!("--validator {name}"))?;
    Ok(Validator {
        name: name.to_string(),
        key,
    })
}

fn parse_allocation(text: &str, decimals: Decimals) -> anyhow::Result<Allocation> {
    let Some((address, amount)) = text.split_once('=') else {
        bail!("--alloc {text:?}: expected ADDRESS=AMOUNT");
    };
    let account = parse_address(address).with_context(|| format!("--alloc {address}"))?;
    let balance = parse_positive_amount(amount, decimals, u64::MAX)
        .with_context(|| format!("--alloc {address}"))?;
    Ok(Allocation { account, balance })
}

fn parse_address(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_address(text).map_err(|error| anyhow!("address {text:?}: {error}"))
}

fn allocated_total(allocations: &[Allocation]) -> anyhow::Result<u64> {
    let total = allocations
        .iter()
        .try_fold(0u64, |sum, a| sum.checked_add(a.balance))
        .ok_or_else(|| anyhow!("the allocations add up to more than 2^64 - 1 units"))?;
    if total == 0 {
        bail!("--max-supply is required when there are no allocations");
    }
    Ok(total)
}

fn print_created(genesis: &Genesis, out: &Path, json: bool) {
    let network_id = genesis.network_id();
    let supply = format_amount(genesis.total_supply(), genesis.decimals);
    if json {
        let value = json!({
            "file": out.display().to_string(),
            "network": genesis.network,
            "network_id": network_id.to_hex(),
            "validators": genesis.validators.len(),
            "total_supply": supply,
        });
        println!("{value}");
    } else {
        println!("wrote {}", out.display());
        println!("network     {}", genesis.network);
        println!("network id  {network_id}");
        println!("validators  {}", genesis.validators.len());
        println!("supply      {supply}");
    }
}
