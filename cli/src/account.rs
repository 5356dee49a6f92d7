//! `tally balance` and `tally history`: an account as a node sees it.
//!
//! Both accept an address in its `tly1…` form or as 64 hex characters, and check it here
//! first so a typo gets its own message rather than a node's refusal.

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};

use crate::client::{self, Client};
use crate::failure::CommandResult;
use crate::target::NodeArg;
use crate::transfer::parse_address;

/// The most entries the API returns in one page.
const API_PAGE_MAX: u64 = 100;

/// The arguments of `tally balance`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  tally balance tly1…")]
pub struct BalanceArgs {
    /// The account's address.
    #[arg(value_name = "ADDRESS")]
    address: String,
    #[command(flatten)]
    node: NodeArg,
}

/// The arguments of `tally history`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  tally history tly1… --limit 50")]
pub struct HistoryArgs {
    /// The account's address.
    #[arg(value_name = "ADDRESS")]
    address: String,
    /// How many transfers to show, newest first.
    #[arg(
        long,
        default_value_t = 20,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    limit: u64,
    #[command(flatten)]
    node: NodeArg,
}

/// Runs `tally balance`.
pub fn balance(args: &BalanceArgs, json: bool) -> CommandResult {
    let account = parse_address(&args.address)?;
    let client = args.node.client()?;

    let answer = client.get(&format!("/v1/accounts/{}", account.to_address()))?;
    if json {
        println!("{answer}");
        return Ok(());
    }
    let balance = client::text(&answer, "balance")?;
    let next = client::text(&answer, "next_sequence")?;
    let height = client::text(&answer, "height")?;
    println!("{balance} (next sequence {next}, as of height {height})");
    Ok(())
}

/// Runs `tally history`.
pub fn history(args: &HistoryArgs, json: bool) -> CommandResult {
    let account = parse_address(&args.address)?;
    let client = args.node.client()?;

    let entries = fetch_history(&client, &account.to_address(), args.limit)?;
    if json {
        println!("{}", json!({ "transfers": entries }));
        return Ok(());
    }
    if entries.is_empty() {
        println!("no committed transfers");
    }
    for entry in &entries {
        println!("{}", history_line(entry)?);
    }
    Ok(())
}

/// Up to `limit` entries, newest first, following the API's cursors page by page.
fn fetch_history(client: &Client, address: &str, limit: u64) -> anyhow::Result<Vec<Value>> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    while (entries.len() as u64) < limit {
        let page_size = (limit - entries.len() as u64).min(API_PAGE_MAX);
        let mut path = format!("/v1/accounts/{address}/transfers?limit={page_size}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = client.get(&path)?;

        let transfers = page
            .get("transfers")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("the node's history page has no `transfers` list"))?;
        entries.extend(transfers.iter().cloned());
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) if !transfers.is_empty() => cursor = Some(next.to_string()),
            _ => break,
        }
    }
    entries.truncate(limit as usize);
    Ok(entries)
}

/// One history entry as a line: where, which way, with whom, how much, and its id.
fn history_line(entry: &Value) -> anyhow::Result<String> {
    let height = client::text(entry, "height")?;
    let direction = client::text(entry, "direction")?;
    let transfer = entry
        .get("transfer")
        .ok_or_else(|| anyhow!("a history entry has no transfer"))?;
    let amount = client::text(transfer, "amount")?;
    let fee = client::text(transfer, "fee")?;
    let id = client::text(transfer, "id")?;
    let memo = client::text(transfer, "memo")?;

    let (sign, other_field, preposition) = match direction {
        "sent" => ("-", "receiver", "to"),
        "received" => ("+", "sender", "from"),
        _ => (" ", "receiver", "to"),
    };
    let other = counterparty(client::text(transfer, other_field)?);
    let mut line = format!("height {height:>6}  {sign}{amount:>14}  {preposition} {other}");
    if direction == "sent" {
        line.push_str(&format!("  fee {fee}"));
    }
    if !memo.is_empty() {
        line.push_str(&format!("  memo {memo:?}"));
    }
    line.push_str(&format!("  id {id}"));
    Ok(line)
}

/// A key in the transfer's JSON form (hex) shown as an address, as people know accounts.
fn counterparty(hex_key: &str) -> String {
    protocol::PublicKey::from_hex(hex_key)
        .map(|key| key.to_address())
        .unwrap_or_else(|_| hex_key.to_string())
}
