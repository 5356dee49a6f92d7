//! The node's secret key file: 64 hex characters of ed25519 seed, readable by the owner only.
//!
//! The public key (the validator's address and its libp2p identity) is always derived from
//! the seed, never stored beside it, so the two cannot disagree.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use protocol::SecretKey;

/// Why a key file cannot be created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read (missing, or no permission).
    #[error("cannot read key file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "key file {path} has mode {mode:04o}: it must not be accessible by group or others \
         (run `chmod 600 {path}`)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not 64 hex characters.
    #[error("key file {path} must hold exactly 64 hex characters (a 32-byte seed)")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// Refusing to overwrite an existing key.
    #[error("key file {path} already exists; refusing to overwrite a key")]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing the new key failed.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot read randomness for a new key: {0}")]
    Randomness(std::io::Error),
}

/// Reads the key in `path`, refusing a file that group or others can access.
pub fn read_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    let unreadable = |source| KeyFileError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;

    // Checked before reading, so a leaked key is reported rather than silently used.
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }

    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let malformed = || KeyFileError::Malformed {
        path: path.to_owned(),
    };
    let text = text.trim();
    if text.len() != 64 {
        return Err(malformed());
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text, &mut seed).map_err(|_| malformed())?;
    Ok(SecretKey::from_seed(&seed))
}

/// Creates `path` with mode 0600 holding a fresh random key, and returns the key.
pub fn create_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    let mut seed = [0u8; 32];
    fill_random(&mut seed)?;
    write_key(path, &SecretKey::from_seed(&seed))
}

/// Writes `key` to a new file `path` with mode 0600; an existing file is never overwritten.
pub fn write_key(path: &Path, key: &SecretKey) -> Result<SecretKey, KeyFileError> {
    let write_error = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };

    // `create_new` with the mode set at creation: there is no moment at which the file exists
    // with looser permissions.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::AlreadyExists {
                path: path.to_owned(),
            },
            _ => write_error(source),
        })?;
    writeln!(file, "{}", hex::encode(key.seed())).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(key.clone())
}

fn fill_random(buffer: &mut [u8]) -> Result<(), KeyFileError> {
    use std::io::Read;

    // The kernel's CSPRNG; reading it directly avoids a dependency for 32 bytes.
    let mut source = std::fs::File::open("/dev/urandom").map_err(KeyFileError::Randomness)?;
    source.read_exact(buffer).map_err(KeyFileError::Randomness)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_key_reads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = create_key(&path).unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn two_created_keys_differ() {
        let dir = tempfile::tempdir().unwrap();
        let first = create_key(&dir.path().join("a")).unwrap();
        let second = create_key(&dir.path().join("b")).unwrap();
        assert_ne!(first.public_key(), second.public_key());
    }

    #[test]
    fn group_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        create_key(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

        let error = read_key(&path).unwrap_err();
        assert!(
            matches!(error, KeyFileError::TooOpen { mode: 0o640, .. }),
            "{error}"
        );
    }

    #[test]
    fn existing_key_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = create_key(&path).unwrap();

        assert!(matches!(
            create_key(&path),
            Err(KeyFileError::AlreadyExists { .. })
        ));
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn missing_and_malformed_files_are_distinct_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        assert!(matches!(
            read_key(&path),
            Err(KeyFileError::Unreadable { .. })
        ));

        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(matches!(
            read_key(&path),
            Err(KeyFileError::Malformed { .. })
        ));
    }
}
