//! Committed blocks and their certificates, one record per height, appended to a file beside
//! the sled database.
//!
//! Blocks are most of a chain's bytes, written once and never changed. Kept in sled they were
//! rewritten by its log-structured pages, cost more disk than their own size, and sled's
//! resident memory grew with them; here each is one sequential write and one `pread`.
//!
//! ```text
//! crc32     u32 little-endian, of every byte after it in the record
//! height    u64 big-endian
//! block     u32 big-endian length, then the block's canonical bytes
//! cert      u32 big-endian length, then the commit certificate's bytes
//! links     u32 big-endian length, then for each transfer two history links of 12 bytes
//! ```
//!
//! The links chain each account's history from its newest entry back to its first (see
//! [`super::HistoryLink`]): written once with the block, in order, instead of an index
//! record per entry in sled.
//!
//! The file is not the commit point; sled is. [`BlockFile::write`] puts a record right after
//! the last committed one and syncs it, and only then does the caller's sled batch record
//! where it is and raise the height. A crash between the two leaves a record no height points
//! at: [`BlockFile::open`] cuts the file back to the end of the last committed record, and the
//! next write goes over it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StorageError;

/// The file's name inside the database directory.
pub const FILE_NAME: &str = "blocks";

/// Bytes before the block in a record: crc, height and the block's length.
const HEAD: usize = 4 + 8 + 4;

/// Bytes of one history link.
pub const LINK: usize = 12;

/// Where a record is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Its first byte.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u32,
    /// Where its links start, from the record's first byte.
    pub links_at: u32,
}

impl Extent {
    /// The first byte after the record.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.length)
    }

    /// The 16 bytes sled stores for it.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.offset.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.length.to_be_bytes());
        bytes[12..].copy_from_slice(&self.links_at.to_be_bytes());
        bytes
    }

    /// Reads what [`Extent::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Option<Extent> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        Some(Extent {
            offset: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            length: u32::from_be_bytes(bytes[8..12].try_into().ok()?),
            links_at: u32::from_be_bytes(bytes[12..].try_into().ok()?),
        })
    }
}

/// The open block file.
pub struct BlockFile {
    file: File,
    path: PathBuf,
}

impl BlockFile {
    /// Opens (or creates) the file in `dir` and cuts it back to `committed_end`, the end of the
    /// last record sled says is committed (0 before the first block).
    pub fn open(dir: &Path, committed_end: u64) -> Result<BlockFile, StorageError> {
        let path = dir.join(FILE_NAME);
        let io = |source| StorageError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;

        let length = file.metadata().map_err(io)?.len();
        if length < committed_end {
            return Err(StorageError::BlockFileShort {
                path,
                length,
                expected: committed_end,
            });
        }
        if length > committed_end {
            tracing::info!(
                path = %path.display(),
                bytes = length - committed_end,
                "discarding a block record that was written but never committed"
            );
            file.set_len(committed_end).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(BlockFile { file, path })
    }

    /// Writes the record of `height` at `offset` and syncs it to disk.
    pub fn write(
        &self,
        offset: u64,
        height: u64,
        block: &[u8],
        certificate: &[u8],
        links: &[u8],
    ) -> Result<Extent, StorageError> {
        let too_long = || StorageError::RecordTooLong { height };
        let length_of = |bytes: &[u8]| u32::try_from(bytes.len()).map_err(|_| too_long());

        let size = HEAD + 8 + block.len() + certificate.len() + links.len();
        let mut record = Vec::with_capacity(size);
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&height.to_be_bytes());
        record.extend_from_slice(&length_of(block)?.to_be_bytes());
        record.extend_from_slice(block);
        record.extend_from_slice(&length_of(certificate)?.to_be_bytes());
        record.extend_from_slice(certificate);
        record.extend_from_slice(&length_of(links)?.to_be_bytes());
        let links_at = length_of(&record)?;
        record.extend_from_slice(links);
        let crc = crc32fast::hash(&record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        let length = length_of(&record)?;

        let io = |source| StorageError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all_at(&record, offset).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        Ok(Extent {
            offset,
            length,
            links_at,
        })
    }

    /// Reads the record of `height` at `extent`: the block's bytes and the certificate's.
    pub fn read(&self, height: u64, extent: Extent) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
        let corrupt = || StorageError::Corrupt {
            key: format!("block file record of height {height}"),
        };
        let mut record = vec![0; extent.length as usize];
        if record.len() < HEAD + 8 {
            return Err(corrupt());
        }
        self.file
            .read_exact_at(&mut record, extent.offset)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::UnexpectedEof => corrupt(),
                _ => StorageError::Io {
                    path: self.path.clone(),
                    source,
                },
            })?;

        let crc = u32::from_le_bytes(record[..4].try_into().expect("four bytes"));
        if crc != crc32fast::hash(&record[4..]) {
            return Err(corrupt());
        }
        if record[4..12] != height.to_be_bytes() {
            return Err(corrupt());
        }

        let (block, rest) = length_prefixed(&record[12..]).ok_or_else(corrupt)?;
        let (certificate, rest) = length_prefixed(rest).ok_or_else(corrupt)?;
        let (links, rest) = length_prefixed(rest).ok_or_else(corrupt)?;
        if !rest.is_empty() || record.len() - links.len() != extent.links_at as usize {
            return Err(corrupt());
        }
        Ok((block.to_vec(), certificate.to_vec()))
    }

    /// Reads `LINK` bytes at `at` inside the record of `height` at `extent`'s links.
    ///
    /// Only these bytes are read, so the record's crc is not checked; the caller checks that
    /// what it reads makes sense.
    pub fn read_link(
        &self,
        height: u64,
        extent: Extent,
        at: usize,
    ) -> Result<[u8; LINK], StorageError> {
        let corrupt = || StorageError::Corrupt {
            key: format!("block file links of height {height}"),
        };
        let start = (extent.links_at as usize)
            .checked_add(at)
            .filter(|start| start + LINK <= extent.length as usize)
            .ok_or_else(corrupt)?;
        let mut link = [0; LINK];
        self.file
            .read_exact_at(&mut link, extent.offset + start as u64)
            .map_err(|source| StorageError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(link)
    }
}

/// Splits a u32 big-endian length and that many bytes off the front of `bytes`.
fn length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_at_checked(4)?;
    let length = u32::from_be_bytes(length.try_into().ok()?) as usize;
    rest.split_at_checked(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = BlockFile::open(dir.path(), 0).unwrap();
        let first = file.write(0, 1, b"block one", b"cert one", b"").unwrap();
        let links = [[7u8; LINK], [9u8; LINK]].concat();
        let second = file
            .write(first.end(), 2, b"block two", b"", &links)
            .unwrap();
        assert_eq!(first.length, 16 + 9 + 4 + 8 + 4);
        assert_eq!(second.links_at, 16 + 9 + 4 + 4);
        assert_eq!(file.read_link(2, second, LINK).unwrap(), [9u8; LINK]);
        assert!(matches!(
            file.read_link(2, second, 2 * LINK),
            Err(StorageError::Corrupt { .. })
        ));
        assert_eq!(second.offset, first.end());

        assert_eq!(
            file.read(2, second).unwrap(),
            (b"block two".to_vec(), Vec::new())
        );
        assert_eq!(
            Extent::from_bytes(&second.to_bytes()),
            Some(second),
            "the extent round-trips through sled's bytes"
        );

        // Another height's record, a flipped byte, and a cut record are all corrupt.
        let error = file.read(3, second).unwrap_err();
        assert_eq!(
            error.to_string(),
            "database entry block file record of height 3 is corrupt"
        );
        file.file.write_all_at(b"X", first.offset + 17).unwrap();
        assert!(matches!(
            file.read(1, first),
            Err(StorageError::Corrupt { .. })
        ));
        let beyond = Extent {
            length: second.length + 10,
            ..second
        };
        assert!(matches!(
            file.read(2, beyond),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn opening_cuts_an_uncommitted_tail_and_refuses_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = BlockFile::open(dir.path(), 0).unwrap();
        let first = file.write(0, 1, b"committed", b"c", b"").unwrap();
        file.write(first.end(), 2, b"never committed", b"c", b"")
            .unwrap();
        drop(file);

        let file = BlockFile::open(dir.path(), first.end()).unwrap();
        let length = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert_eq!(length, first.end());
        assert_eq!(file.read(1, first).unwrap().0, b"committed".to_vec());
        drop(file);

        let error = BlockFile::open(dir.path(), first.end() + 1).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "block file {} holds {} bytes but the database's blocks end at byte {}",
                dir.path().join(FILE_NAME).display(),
                first.end(),
                first.end() + 1
            )
        );
    }
}
