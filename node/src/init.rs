//! `tally node init`: a fresh data directory with a key and a commented config.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use protocol::PublicKey;

use crate::config::{CONFIG_TEMPLATE, Config};
use crate::datadir::CONFIG_FILE;
use crate::keyfile::{self, KeyFileError};

/// Why a data directory could not be initialised.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory already has a config: initialising again would orphan its key.
    #[error("{0} already holds a config file; refusing to initialise it again")]
    AlreadyInitialised(PathBuf),
    /// Creating the directory or writing the config failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Creating the key failed.
    #[error(transparent)]
    Key(#[from] KeyFileError),
}

/// What `init` created: the identity that the genesis author needs.
#[derive(Debug, Clone)]
pub struct Initialised {
    /// The node's account address (list it as a validator in the genesis).
    pub public_key: PublicKey,
    /// The node's libp2p peer id (other operators put it in their bootstrap addresses).
    pub peer_id: String,
    /// The config file written.
    pub config_path: PathBuf,
}

/// Creates `dir` (mode 0700) with a new key file (mode 0600) and the commented default config.
pub fn init(dir: &Path) -> Result<Initialised, InitError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InitError::Io { path, source }
    };

    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(InitError::AlreadyInitialised(dir.to_owned()));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;

    let key_path = Config::resolve(dir, &Config::default().node.key_file);
    let key = keyfile::create_key(&key_path)?;

    // The config goes last: its presence marks a finished init.
    std::fs::write(&config_path, CONFIG_TEMPLATE).map_err(io(&config_path))?;

    let public_key = key.public_key();
    let peer_id = crate::network::peer_id(&public_key).to_string();
    Ok(Initialised {
        public_key,
        peer_id,
        config_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_key_and_config_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node");
        let created = init(&dir).unwrap();

        let key = keyfile::read_key(&dir.join("node.key")).unwrap();
        assert_eq!(key.public_key(), created.public_key);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let config = Config::load(&created.config_path, Vec::new()).unwrap();
        assert_eq!(config, Config::default());

        assert!(matches!(init(&dir), Err(InitError::AlreadyInitialised(_))));
    }
}
