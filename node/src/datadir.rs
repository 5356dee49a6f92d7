//! The data directory's layout and the small files in it besides the database.
//!
//! ```text
//! DIR/config.toml      the config (written by `tally node init`)
//! DIR/node.key         the secret key, mode 0600 (path set in the config)
//! DIR/network          hex network id of the genesis this directory belongs to
//! DIR/addresses.json   the addresses actually bound by the running node
//! DIR/db/              the sled database
//! ```
//!
//! The `network` file is written the first time a node runs in the directory; a later start
//! with a different genesis is refused, so one network's blocks are never mixed with
//! another's.

use std::path::{Path, PathBuf};

use protocol::Hash;
use serde::{Deserialize, Serialize};

/// The config file's name inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// The network id file's name.
pub const NETWORK_FILE: &str = "network";
/// The bound-addresses file's name.
pub const ADDRESSES_FILE: &str = "addresses.json";
/// The database directory's name.
pub const DB_DIR: &str = "db";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The directory belongs to another network's genesis.
    #[error(
        "data directory {dir} belongs to network {found}, but the genesis is for network \
         {expected}; use a fresh data directory or the right genesis"
    )]
    OtherNetwork {
        /// The directory.
        dir: PathBuf,
        /// The network id recorded in it.
        found: String,
        /// The genesis's network id.
        expected: String,
    },
    /// The network file exists but is not a network id.
    #[error("file {path} is corrupt: expected a 64-character hex network id")]
    CorruptNetworkFile {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The addresses a running node bound, written so that scripts and tests using port 0 can
/// find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundAddresses {
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// The node's account address (`tly1…`).
    pub address: String,
    /// The HTTP server's address (`127.0.0.1:PORT`).
    pub api: String,
    /// The libp2p listen addresses, each ending in `/p2p/<peer id>`.
    pub p2p: Vec<String>,
}

/// Records `network_id` in `dir` the first time, and checks it on every later start.
pub fn check_network(dir: &Path, network_id: &Hash) -> Result<(), DataDirError> {
    let path = dir.join(NETWORK_FILE);
    let io = |source| DataDirError::Io {
        path: path.clone(),
        source,
    };

    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found: Hash = text
                .trim()
                .parse()
                .map_err(|_| DataDirError::CorruptNetworkFile { path: path.clone() })?;
            if found != *network_id {
                return Err(DataDirError::OtherNetwork {
                    dir: dir.to_owned(),
                    found: found.to_hex(),
                    expected: network_id.to_hex(),
                });
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            write_synced(&path, format!("{}\n", network_id.to_hex()).as_bytes()).map_err(io)
        }
        Err(error) => Err(io(error)),
    }
}

/// Writes `addresses` to `DIR/addresses.json`, replacing any earlier file atomically.
pub fn write_addresses(dir: &Path, addresses: &BoundAddresses) -> Result<(), DataDirError> {
    let path = dir.join(ADDRESSES_FILE);
    let temporary = dir.join(format!("{ADDRESSES_FILE}.tmp"));
    let text = serde_json::to_string_pretty(addresses).expect("addresses serialise");

    // Write then rename, so a reader never sees a half-written file.
    write_synced(&temporary, text.as_bytes())
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|source| DataDirError::Io { path, source })
}

/// Reads `DIR/addresses.json`, if a node has written it.
pub fn read_addresses(dir: &Path) -> Option<BoundAddresses> {
    let text = std::fs::read_to_string(dir.join(ADDRESSES_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Removes `DIR/addresses.json`, so a stale file is not taken for a running node's.
pub fn remove_addresses(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(ADDRESSES_FILE));
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_is_recorded_then_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let ours = Hash::digest(b"ours");
        let theirs = Hash::digest(b"theirs");

        check_network(dir.path(), &ours).unwrap();
        check_network(dir.path(), &ours).unwrap();
        let error = check_network(dir.path(), &theirs).unwrap_err();
        assert!(
            matches!(error, DataDirError::OtherNetwork { .. }),
            "{error}"
        );
    }

    #[test]
    fn corrupt_network_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NETWORK_FILE), "garbage").unwrap();
        let error = check_network(dir.path(), &Hash::ZERO).unwrap_err();
        assert!(matches!(error, DataDirError::CorruptNetworkFile { .. }));
    }

    #[test]
    fn addresses_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let addresses = BoundAddresses {
            peer_id: "12D3".into(),
            address: "tly1".into(),
            api: "127.0.0.1:1".into(),
            p2p: vec!["/ip4/127.0.0.1/tcp/2".into()],
        };
        write_addresses(dir.path(), &addresses).unwrap();
        assert_eq!(read_addresses(dir.path()), Some(addresses));
        remove_addresses(dir.path());
        assert_eq!(read_addresses(dir.path()), None);
    }
}
