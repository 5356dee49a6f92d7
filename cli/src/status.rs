//! `tally status`: what a node reports about itself and the chain.

use clap::Args;
use serde_json::Value;

use crate::client;
use crate::failure::CommandResult;
use crate::target::NodeArg;

/// The arguments of `tally status`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  tally status --node http://127.0.0.1:7101")]
pub struct StatusArgs {
    #[command(flatten)]
    node: NodeArg,
}

/// Runs `tally status`.
pub fn run(args: &StatusArgs, json: bool) -> CommandResult {
    let client = args.node.client()?;
    let answer = client.get("/v1/status")?;
    if json {
        println!("{answer}");
        return Ok(());
    }

    let number = |field: &str| answer.get(field).map(Value::to_string).unwrap_or_default();
    println!("node        {}", client.base());
    println!("network     {}", client::text(&answer, "network_id")?);
    println!("role        {}", client::text(&answer, "role")?);
    println!("address     {}", client::text(&answer, "address")?);
    println!("height      {}", client::text(&answer, "height")?);
    println!("block       {}", client::text(&answer, "block_hash")?);
    println!("state root  {}", client::text(&answer, "state_root")?);
    println!("round       {}", number("round"));
    println!("mempool     {}", number("mempool_size"));
    println!("peers       {}", number("peers"));
    println!("syncing     {}", number("syncing"));
    Ok(())
}
