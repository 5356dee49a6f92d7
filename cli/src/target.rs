//! Which node a command talks to: `--node URL`, else `TALLY_NODE`, else the first node of the
//! devnet in `./devnet` (or in `TALLY_DEVNET`).

use anyhow::anyhow;
use clap::Args;

use crate::client::Client;
use crate::devnet::manifest::Manifest;

/// The environment variable naming the default node.
pub const NODE_ENV: &str = "TALLY_NODE";

/// The `--node` option shared by every command that talks to a node.
#[derive(Debug, Clone, Args)]
pub struct NodeArg {
    /// The node's API URL; default: $TALLY_NODE, else the first node of ./devnet.
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
}

impl NodeArg {
    /// The URL to use, by the order of precedence above.
    pub fn url(&self) -> anyhow::Result<String> {
        let from_env = std::env::var(NODE_ENV).ok().filter(|url| !url.is_empty());
        let url = match (&self.node, from_env) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => url,
            (None, None) => Manifest::find()?
                .and_then(|manifest| manifest.nodes.first().map(|node| node.api.clone()))
                .ok_or_else(|| {
                    anyhow!(
                        "no node to talk to: pass --node URL, set {NODE_ENV}, or run \
                         `tally devnet` in this directory"
                    )
                })?,
        };
        check_url(&url)?;
        Ok(url)
    }

    /// A client for the node to use.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url()?))
    }
}

/// Refuses what is not a plain HTTP URL before any connection is tried.
fn check_url(url: &str) -> anyhow::Result<()> {
    // TODO: HTTPS needs ureq's rustls feature, left out to keep the build small; nodes are
    // reached over plain HTTP (behind a TLS proxy when exposed beyond a private network).
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("node URL {url:?} must start with http://"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(anyhow!("node URL {url:?} names no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_use() {
        assert!(check_url("http://127.0.0.1:7100").is_ok());
        assert!(check_url("http://127.0.0.1:7100/").is_ok());
        assert_eq!(
            check_url("127.0.0.1:7100").unwrap_err().to_string(),
            "node URL \"127.0.0.1:7100\" must start with http://"
        );
        assert_eq!(
            check_url("https://node.example").unwrap_err().to_string(),
            "node URL \"https://node.example\" must start with http://"
        );
        assert_eq!(
            check_url("http://").unwrap_err().to_string(),
            "node URL \"http://\" names no host"
        );
    }
}
