//! The blocks the consensus safety state names, in one small file replaced as a whole.
//!
//! The safety state is saved before every message a validator signs and usually names the
//! block being decided. Kept in sled, every height's block went into sled's log once more and
//! stayed there as garbage, doubling its file and its memory. This file holds at most a few
//! blocks and is replaced by a rename, so nothing accumulates.
//!
//! ```text
//! crc32     u32 little-endian, of every byte after it
//! then for each block: its hash (32 bytes), a u32 big-endian length, its bytes
//! ```
//!
//! The file is written before the state that names its blocks, and it keeps the blocks the
//! previous state named too, so whichever state a crash leaves in sled finds its blocks here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use protocol::Hash;

use super::StorageError;

/// The file's name inside the database directory.
pub const FILE_NAME: &str = "safety-blocks";

/// Blocks by hash.
pub type Blocks = BTreeMap<Hash, Vec<u8>>;

/// Reads the file in `dir`; no file is no blocks.
pub fn read(dir: &Path) -> Result<Blocks, StorageError> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Blocks::new()),
        Err(source) => return Err(StorageError::Io { path, source }),
    };
    decode(&bytes).ok_or(StorageError::Corrupt {
        key: FILE_NAME.into(),
    })
}

/// Replaces the file in `dir` with `blocks`, durably: written to a temporary file, synced,
/// renamed over the old one, and the directory synced.
pub fn write(dir: &Path, blocks: &Blocks) -> Result<(), StorageError> {
    let path = dir.join(FILE_NAME);
    let temporary = dir.join(format!("{FILE_NAME}.new"));
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| StorageError::Io { path, source }
    };

    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&encode(blocks)).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(io(&dir.to_owned()))
}

fn encode(blocks: &Blocks) -> Vec<u8> {
    let mut bytes = vec![0; 4];
    for (hash, block) in blocks {
        bytes.extend_from_slice(hash.as_bytes());
        let length = u32::try_from(block.len()).expect("a block is under 4 GiB");
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(block);
    }
    let crc = crc32fast::hash(&bytes[4..]);
    bytes[..4].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<Blocks> {
    let (crc, mut rest) = bytes.split_at_checked(4)?;
    if u32::from_le_bytes(crc.try_into().ok()?) != crc32fast::hash(rest) {
        return None;
    }
    let mut blocks = Blocks::new();
    while !rest.is_empty() {
        let (hash, tail) = rest.split_at_checked(32)?;
        let (length, tail) = tail.split_at_checked(4)?;
        let length = u32::from_be_bytes(length.try_into().ok()?) as usize;
        let (block, tail) = tail.split_at_checked(length)?;
        blocks.insert(Hash(hash.try_into().ok()?), block.to_vec());
        rest = tail;
    }
    Some(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_back_and_a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Blocks::new());

        let blocks = Blocks::from([
            (Hash::digest(b"a"), b"block a".to_vec()),
            (Hash::digest(b"b"), Vec::new()),
        ]);
        write(dir.path(), &blocks).unwrap();
        assert_eq!(read(dir.path()).unwrap(), blocks);
        write(dir.path(), &Blocks::new()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Blocks::new());

        write(dir.path(), &blocks).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().to_string(),
            "database entry safety-blocks is corrupt"
        );
    }
}
