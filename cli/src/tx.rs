//! `tally tx`: where a transfer stands, and the offline check of its receipt.
//!
//! A committed transfer comes with a receipt (the transfer, its block's header, the Merkle
//! path between them and the block's commit certificate). `--verify` checks it against a
//! genesis file with the protocol crate's functions alone: after fetching it, nothing the
//! node said is trusted. `--receipt FILE` checks a saved receipt without any node.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use protocol::receipt::{Receipt, ReceiptJson};
use protocol::{Genesis, Hash};
use serde_json::{Value, json};

use crate::client;
use crate::devnet::manifest::Manifest;
use crate::failure::{CommandResult, Failure};
use crate::files;
use crate::target::NodeArg;

/// The arguments of `tally tx`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  tally tx 5d41…\n  \
    tally tx 5d41… --verify --genesis devnet/genesis.toml\n  \
    tally tx 5d41… --json > receipt.json && \
    tally tx --receipt receipt.json --genesis devnet/genesis.toml")]
pub struct TxArgs {
    /// The transfer id (64 hex characters).
    #[arg(value_name = "ID", required_unless_present = "receipt")]
    id: Option<String>,
    /// Check the receipt against the genesis, trusting no node.
    #[arg(long)]
    verify: bool,
    /// Check a saved receipt (the JSON `tally tx ID --json` prints) offline; implies --verify.
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    receipt: Option<PathBuf>,
    /// The genesis to verify against; default: the genesis of ./devnet.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArg,
}

/// Runs `tally tx`.
pub fn run(args: &TxArgs, json: bool) -> CommandResult {
    if let Some(path) = &args.receipt {
        let genesis = genesis_for(args)?;
        let answer = read_saved(path)?;
        return verify_and_report(&answer, &genesis, json);
    }

    let id = args.id.as_deref().unwrap_or_default();
    let id: Hash = id
        .parse()
        .map_err(|_| anyhow!("{id:?} is not a transfer id (64 lowercase hex characters)"))?;
    let genesis = if args.verify {
        Some(genesis_for(args)?)
    } else {
        None
    };
    let client = args.node.client()?;
    let answer = client
        .get(&format!("/v1/transfers/{id}"))
        .map_err(client::refusal)?;

    match genesis {
        Some(genesis) => verify_and_report(&answer, &genesis, json),
        None => {
            print_status(&answer, json)?;
            Ok(())
        }
    }
}

/// The genesis to check against: `--genesis`, else the devnet's.
fn genesis_for(args: &TxArgs) -> anyhow::Result<Genesis> {
    let path = match &args.genesis {
        Some(path) => path.clone(),
        None => Manifest::find()?
            .map(|manifest| manifest.genesis)
            .ok_or_else(|| {
                anyhow!("verifying needs --genesis FILE (no ./devnet to take it from)")
            })?,
    };
    files::read_genesis(&path)
}

/// A saved answer of `GET /v1/transfers/{id}` (with its `receipt`), or a bare receipt.
fn read_saved(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading receipt {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if value.get("receipt").is_some() {
        Ok(value)
    } else {
        Ok(json!({ "status": "committed", "receipt": value }))
    }
}

fn print_status(answer: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{answer}");
        return Ok(());
    }
    let id = client::text(answer, "id")?;
    let status = client::text(answer, "status")?;
    match status {
        "committed" => println!(
            "committed {id} at height {}, position {}, block {}",
            client::text(answer, "height")?,
            client::text(answer, "position")?,
            client::text(answer, "block_hash")?,
        ),
        "superseded" => println!("superseded {id} by {}", client::text(answer, "by")?),
        "rejected" => println!("rejected {id}: {}", client::text(answer, "code")?),
        other => println!("{other} {id}"),
    }
    Ok(())
}

/// Verifies the receipt in `answer`; a receipt that does not verify is a failed check.
fn verify_and_report(answer: &Value, genesis: &Genesis, json: bool) -> CommandResult {
    let status = client::text(answer, "status").map_err(Failure::rejected)?;
    if status != "committed" {
        return Err(Failure::rejected(anyhow!(
            "the transfer is {status}, so it has no receipt to verify"
        )));
    }
    let receipt_value = answer
        .get("receipt")
        .ok_or_else(|| anyhow!("the answer has no receipt"))?;

    let receipt = match check(receipt_value, genesis) {
        Ok(receipt) => receipt,
        Err(error) => {
            return Err(Failure::rejected(anyhow!(
                "receipt does not verify: {error:#}"
            )));
        }
    };

    let id = receipt.transfer.id();
    let height = receipt.header.height;
    let block = receipt.header.hash();
    let signers = receipt.certificate.signatures.len();
    let validators = genesis.validators.len();
    if json {
        let value = json!({
            "verified": true,
            "id": id.to_string(),
            "height": height.to_string(),
            "block_hash": block.to_string(),
            "signers": signers,
            "validators": validators,
            "network": genesis.network,
        });
        println!("{value}");
    } else {
        println!(
            "verified: transfer {id} is committed at height {height} in block {block}, \
             certified by {signers} of {validators} validators of {}",
            genesis.network
        );
    }
    Ok(())
}

/// Parses and verifies a receipt's JSON form against the genesis.
fn check(value: &Value, genesis: &Genesis) -> anyhow::Result<Receipt> {
    let json: ReceiptJson =
        serde_json::from_value(value.clone()).context("the receipt is not in receipt form")?;
    let receipt = json.to_receipt(genesis.decimals)?;
    receipt.verify(genesis)?;
    Ok(receipt)
}
