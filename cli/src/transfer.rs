//! `tally transfer`: sign a payment locally and submit it to a node.
//!
//! The secret key never leaves this process. The node supplies only public facts (the
//! genesis, checked against its network id, and the sender's next sequence number); the
//! transfer is built and signed here, then submitted. With `--wait` the command follows the
//! transfer until it is final: committed, superseded by another transfer with the same
//! sequence number, or rejected because a commit made it invalid.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use protocol::amount::parse_positive_amount;
use protocol::{Genesis, PublicKey, SignedTransfer, Transfer, parse_amount};
use serde_json::{Value, json};

use crate::client::{self, Client};
use crate::failure::{CommandResult, Failure};
use crate::target::NodeArg;
use crate::{key, network};

/// How often `--wait` asks the node about the transfer.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The arguments of `tally transfer`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  tally transfer --key devnet/wallets/wallet0.key \
    --to tly1… --amount 12.50 --memo lunch --wait"
)]
pub struct TransferArgs {
    /// The sender's key file (mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The receiver's address (`tly1…`, or 64 hex characters).
    #[arg(long, value_name = "ADDRESS")]
    to: String,
    /// The amount, a decimal such as 12.50 with at most the network's decimal places.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    amount: String,
    /// The fee; the network's minimum fee if absent.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    fee: Option<String>,
    /// A note for the receiver, at most 140 bytes of UTF-8.
    #[arg(long, default_value = "")]
    memo: String,
    /// Wait until the transfer is committed, superseded or rejected, and print the outcome.
    #[arg(long)]
    wait: bool,
    /// With --wait, give up after this many seconds (the transfer may still commit later).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    node: NodeArg,
}

/// Runs `tally transfer`.
pub fn run(args: &TransferArgs, json: bool) -> CommandResult {
    let secret = key::read(&args.key)?;
    let receiver = parse_address(&args.to)?;
    let client = args.node.client()?;
    let genesis = network::fetch_genesis(&client)?;

    let transfer = build(args, &genesis, secret.public_key(), receiver, &client)?;
    let signed = SignedTransfer::sign(transfer, &secret);
    let id = signed.id();
    let body =
        serde_json::to_value(signed.to_json(genesis.decimals)).context("encoding the transfer")?;

    let answer = match client.post("/v1/transfers", &body) {
        Ok((_, answer)) => answer,
        Err(error) => return Err(refusal(error)),
    };
    let status = client::text(&answer, "status")?;
    if !args.wait {
        print_submitted(&id.to_string(), status, &answer, json);
        return Ok(());
    }

    let outcome = wait_final(&client, &id.to_string(), Duration::from_secs(args.timeout))?;
    report_final(&outcome, json)
}

/// A receiver address: the `tly1…` form, or the key's 64 hex characters.
pub fn parse_address(text: &str) -> anyhow::Result<PublicKey> {
    let is_hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let parsed = if is_hex {
        PublicKey::from_hex(text)
    } else {
        PublicKey::from_address(text)
    };
    parsed.map_err(|error| anyhow!("{text:?} is not an address: {error}"))
}

/// The unsigned transfer: amounts parsed at the network's decimals, the sequence number
/// after the sender's committed and pending ones.
fn build(
    args: &TransferArgs,
    genesis: &Genesis,
    sender: PublicKey,
    receiver: PublicKey,
    client: &Client,
) -> anyhow::Result<Transfer> {
    let amount = parse_positive_amount(&args.amount, genesis.decimals, genesis.max_supply)
        .map_err(|error| anyhow!("--amount {:?}: {error}", args.amount))?;
    let fee = match &args.fee {
        Some(text) => parse_amount(text, genesis.decimals, genesis.max_supply)
            .map_err(|error| anyhow!("--fee {text:?}: {error}"))?,
        None => genesis.min_fee,
    };
    if sender == receiver {
        bail!("the receiver is the sender's own account");
    }

    let account = client.get(&format!("/v1/accounts/{}", sender.to_address()))?;
    let sequence = client::integer(&account, "next_sequence_pending")?;
    let transfer = Transfer::new(
        genesis.network_id(),
        sender,
        receiver,
        amount,
        fee,
        sequence,
        args.memo.clone(),
    );
    transfer
        .check_form()
        .map_err(|error| anyhow!("--memo: {error}"))?;
    Ok(transfer)
}

/// A refusal by the node is a rejected transfer (exit 1); anything else is a setup failure.
fn refusal(error: anyhow::Error) -> Failure {
    match client::api_error(&error) {
        Some(api) => Failure::rejected(anyhow!("rejected: {api}")),
        None => error.into(),
    }
}

fn print_submitted(id: &str, status: &str, answer: &Value, json: bool) {
    if json {
        println!("{answer}");
        return;
    }
    match answer.get("current") {
        Some(current) => {
            let now = current.get("status").and_then(Value::as_str).unwrap_or("?");
            println!("{status} {id} (already known: {now})");
        }
        None => println!("{status} {id}"),
    }
}

/// Asks the node about transfer `id` until it is final or `timeout` passes.
pub fn wait_final(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = client.get(&format!("/v1/transfers/{id}"))?;
        let status = client::text(&answer, "status")?;
        if status != "pending" {
            return Ok(answer);
        }
        if Instant::now() >= deadline {
            bail!(
                "transfer {id} is still pending after {} s; follow it with: tally tx {id}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Prints a final status: committed is success (exit 0); superseded and rejected are not.
fn report_final(answer: &Value, json: bool) -> CommandResult {
    let id = client::text(answer, "id")?;
    let status = client::text(answer, "status")?;
    if json {
        let mut shown = answer.clone();
        if let Some(object) = shown.as_object_mut() {
            object.remove("receipt");
        }
        println!("{}", json!(shown));
    }
    match status {
        "committed" => {
            if !json {
                let height = client::text(answer, "height")?;
                let position = client::text(answer, "position")?;
                println!("committed {id} at height {height}, position {position}");
            }
            Ok(())
        }
        "superseded" => {
            let by = client::text(answer, "by")?;
            Err(Failure::rejected(anyhow!(
                "superseded: {id} lost its sequence number to {by}"
            )))
        }
        "rejected" => {
            let code = client::text(answer, "code")?;
            Err(Failure::rejected(anyhow!("rejected: {id}: {code}")))
        }
        other => Err(anyhow!("the node reports an unknown status {other:?} for {id}").into()),
    }
}
