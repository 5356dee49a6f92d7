//! `devnet.json`: what a devnet is made of, written by `tally devnet` and read by the other
//! commands for their defaults (the node to talk to, the genesis to check against).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The manifest's file name inside the devnet directory.
pub const MANIFEST_FILE: &str = "devnet.json";

/// The devnet directory the other commands look in when no node is named: `./devnet`, or
/// the directory in `TALLY_DEVNET`.
pub const DEFAULT_DIR: &str = "devnet";

/// The environment variable naming a devnet directory other than `./devnet`.
pub const DIR_ENV: &str = "TALLY_DEVNET";

/// A devnet: its nodes, its demo wallets and its genesis. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The network id, 64 hex characters.
    pub network_id: String,
    /// The genesis file every node runs.
    pub genesis: PathBuf,
    /// The first port: node i serves its API on `base_port + i` and peers on
    /// `base_port + 100 + i`.
    pub base_port: u16,
    /// The validator nodes, in genesis order.
    pub nodes: Vec<NodeEntry>,
    /// The demo wallets funded in the genesis.
    pub wallets: Vec<WalletEntry>,
}

/// One node of a devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its validator name in the genesis.
    pub name: String,
    /// Its API URL (`http://127.0.0.1:7100`).
    pub api: String,
    /// Its libp2p address, ending in `/p2p/<peer id>`.
    pub p2p: String,
    /// Its validator address (`tly1…`).
    pub address: String,
    /// Its data directory.
    pub dir: PathBuf,
}

/// One demo wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletEntry {
    /// Its address (`tly1…`).
    pub address: String,
    /// Its key file (mode 0600).
    pub key: PathBuf,
}

impl Manifest {
    /// Reads `DIR/devnet.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devnet manifest", path.display()))
    }

    /// Writes `DIR/devnet.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_string_pretty(self).context("encoding the manifest")?;
        text.push('\n');
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// The manifest of the devnet the other commands default to, if there is one: the one in
    /// `TALLY_DEVNET`, else the one in `./devnet`.
    ///
    /// A devnet named by `TALLY_DEVNET` must be readable: its error is returned rather than
    /// hidden. `./devnet` is only a guess, so its absence is no error.
    pub fn find() -> anyhow::Result<Option<Manifest>> {
        match std::env::var_os(DIR_ENV) {
            Some(dir) => Manifest::read(Path::new(&dir))
                .map(Some)
                .with_context(|| format!("{DIR_ENV}={}", Path::new(&dir).display())),
            None if Path::new(DEFAULT_DIR).join(MANIFEST_FILE).exists() => {
                Manifest::read(Path::new(DEFAULT_DIR)).map(Some)
            }
            None => Ok(None),
        }
    }
}
