//! What a wallet must learn from a node before it signs: the network's genesis.
//!
//! The node sends the genesis file's text and its network id; the id is recomputed here from
//! the text, so a node cannot make a wallet sign for one network while showing it another's
//! rules (decimals, minimum fee).

use anyhow::{Context, bail};
use protocol::{Genesis, Hash};

use crate::client::{self, Client};

/// The genesis the node runs, checked against the network id it announces.
pub fn fetch_genesis(client: &Client) -> anyhow::Result<Genesis> {
    let answer = client.get("/v1/genesis")?;
    let text = client::text(&answer, "genesis_toml")?;
    let announced: Hash = client::text(&answer, "network_id")?
        .parse()
        .context("the node's network id is not 64 hex characters")?;

    let genesis = Genesis::from_toml(text).context("the node's genesis does not parse")?;
    if genesis.network_id() != announced {
        bail!(
            "the node announces network {announced} but its genesis hashes to {}",
            genesis.network_id()
        );
    }
    Ok(genesis)
}
