//! The node's database: the only module that touches sled.
//!
//! Blocks and their certificates go to an append-only file beside sled ([`block_file`]);
//! everything else lives in sled's default tree under one-byte key prefixes, so that all the
//! effects of a committed block go in with one `Batch`, which sled applies atomically for a
//! single tree (a batch over several trees would not be). A commit writes and syncs the
//! block's record in the file, then applies the batch that points at it and raises the
//! height, then flushes; only after that may the commit be reported to anyone.
//!
//! ```text
//! m layout                      the layout's version, one byte
//! m safety                      the consensus safety state (flushed before any vote leaves)
//! m height                      last committed height, u64 big-endian
//! b HEIGHT                      where the block's record is in the block file (offset, length)
//! h BLOCK_HASH                  HEIGHT of the block with that hash
//! a ACCOUNT                     (balance, next_sequence, newest history link), postcard
//! t TRANSFER_ID                 (HEIGHT, position) where that transfer was committed
//! ```
//!
//! Heights are big-endian, so sled's byte order is height order.
//!
//! An account's history is a chain of [`HistoryLink`]s: its record names its newest entry,
//! and each entry's link, stored with the block in the block file, names the entry before.
//! A page of history is a walk down the chain, one small read per entry. An index record
//! per entry in sled cost a random write each, more than the block itself on disk.
//!
//! The accounts are the state tree's leaves and go in with the block that changed them, so
//! after any crash the stored accounts are exactly the state of the stored head. The tree's
//! inner nodes are not stored: they are a function of the leaves, rebuilt at start (and
//! checked against the head block's state root), and writing the thousands a block rewrites
//! cost as much as the rest of the commit.
//!
//! This module knows nothing of blocks' structure: callers hand it encoded bytes and the
//! facts to index (see [`CommitWrite`]), which keeps the on-disk format independent of the
//! protocol types' evolution and this module easy to test on its own.

mod block_file;
mod safety_blocks;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use protocol::{Hash, PublicKey};

use block_file::{BlockFile, Extent};

const BLOCK: u8 = b'b';
const BLOCK_HASH: u8 = b'h';
const ACCOUNT: u8 = b'a';
const TRANSFER: u8 = b't';

// Meta keys start with `m`, like the other prefixes.
const META_LAYOUT: &[u8] = b"mlayout";
const META_SAFETY: &[u8] = b"msafety";
const META_HEIGHT: &[u8] = b"mheight";

/// The version of the layout above. Version 1 kept blocks, certificates, the state tree's
/// inner nodes and a history record per entry in sled; it had no `m layout` entry.
const LAYOUT: u8 = 2;

/// Why the database failed. Every variant is fatal to the node: it halts rather than carry on
/// with a state it cannot trust.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// sled reported an I/O or corruption error.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// A commit was not for the next height.
    #[error("refusing to store height {got}: the next height to store is {expected}")]
    OutOfOrder {
        /// The height that would follow the stored chain.
        expected: u64,
        /// The height offered.
        got: u64,
    },
    /// A stored value does not decode: the database is damaged or from another version.
    #[error("database entry {key} is corrupt")]
    Corrupt {
        /// The entry's key, printable.
        key: String,
    },
    /// Reading or writing the block file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The block file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The block file ends before the last block the database says is committed.
    #[error(
        "block file {path} holds {length} bytes but the database's blocks end at byte {expected}"
    )]
    BlockFileShort {
        /// The block file.
        path: PathBuf,
        /// Its length.
        length: u64,
        /// Where the last committed record ends.
        expected: u64,
    },
    /// A block and its certificate do not fit one record (4 GiB).
    #[error("the block at height {height} is too large to store")]
    RecordTooLong {
        /// The block's height.
        height: u64,
    },
    /// The database was written in another layout than this version's.
    #[error(
        "the database in {path} was written by another version of tally (layout {found}, this \
         version reads layout {LAYOUT}); start from a fresh data directory"
    )]
    OtherLayout {
        /// The database directory.
        path: PathBuf,
        /// The layout found.
        found: u8,
    },
}

/// An account's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredAccount {
    /// Balance in the smallest unit.
    pub balance: u64,
    /// The sequence number its next transfer must carry.
    pub next_sequence: u64,
}

/// One committed transfer, as far as the indexes need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedTransfer {
    /// The transfer's id.
    pub id: Hash,
    /// Who sent it.
    pub sender: PublicKey,
    /// Who received it.
    pub recipient: PublicKey,
}

/// Everything a committed block changes, written in one atomic step.
#[derive(Debug, Clone)]
pub struct CommitWrite<'a> {
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub block_hash: Hash,
    /// The block's canonical bytes.
    pub block: &'a [u8],
    /// The commit certificate's bytes.
    pub certificate: &'a [u8],
    /// Every account the block changed, with its state after the block.
    pub accounts: Vec<(PublicKey, StoredAccount)>,
    /// The block's transfers in block order.
    pub transfers: Vec<IndexedTransfer>,
}

/// Where a committed transfer is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TransferLocation {
    /// The block height.
    pub height: u64,
    /// Its index in the block.
    pub position: u32,
}

/// A stored safety state's bytes, and the blocks stored with it by hash.
pub type SafetyRecord = (Vec<u8>, HashMap<Hash, Vec<u8>>);

/// A stored block's canonical bytes and its certificate's.
pub type BlockAndCertificate = (Vec<u8>, Vec<u8>);

/// Which side of a transfer an account was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The account sent it (a transfer to oneself is only this).
    Sent,
    /// The account received it.
    Received,
}

/// One entry of an account's history: a committed transfer and the account's side of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryLink {
    /// Where the transfer is.
    pub location: TransferLocation,
    /// The account's side.
    pub side: Side,
}

/// Positions at or above this are not stored: the top bit of a link's position is its side.
const RECEIVED_BIT: u32 = 1 << 31;

impl HistoryLink {
    /// The 12 bytes of a link, or of no link (all zero: heights start at 1).
    fn encode(link: Option<HistoryLink>) -> [u8; block_file::LINK] {
        let mut bytes = [0; block_file::LINK];
        if let Some(link) = link {
            let side = match link.side {
                Side::Sent => 0,
                Side::Received => RECEIVED_BIT,
            };
            bytes[..8].copy_from_slice(&link.location.height.to_be_bytes());
            bytes[8..].copy_from_slice(&(link.location.position | side).to_be_bytes());
        }
        bytes
    }

    fn decode(bytes: [u8; block_file::LINK]) -> Option<HistoryLink> {
        let height = u64::from_be_bytes(bytes[..8].try_into().expect("eight bytes"));
        let position = u32::from_be_bytes(bytes[8..].try_into().expect("four bytes"));
        let side = match position & RECEIVED_BIT {
            0 => Side::Sent,
            _ => Side::Received,
        };
        (height != 0).then_some(HistoryLink {
            location: TransferLocation {
                height,
                position: position & !RECEIVED_BIT,
            },
            side,
        })
    }
}

/// A block's history links, and the account records they change.
type LinkedHistory = (Vec<u8>, BTreeMap<PublicKey, AccountRecord>);

/// What sled holds for an account.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct AccountRecord {
    state: StoredAccount,
    newest: Option<HistoryLink>,
}

/// The node's database. Cheap to clone: clones share the same database.
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
    blocks: Arc<BlockFile>,
    /// Held through a whole commit, which also keeps commits one at a time.
    writer: Arc<Mutex<Writer>>,
    /// The blocks stored for the safety state ([`safety_blocks`]). Held through a whole save.
    safety_blocks: Arc<Mutex<safety_blocks::Blocks>>,
    dir: PathBuf,
}

/// What commits keep between them.
struct Writer {
    /// Where the next block's record goes: the end of the last committed one.
    next_record: u64,
    /// The newest history entry of every account a commit since the start has read or
    /// written, so that linking a block's history does not read each account back from
    /// sled. One entry per account, like the ledger the node keeps in memory.
    newest: HashMap<PublicKey, Option<HistoryLink>>,
}

impl Storage {
    /// Opens (or creates) the database in `path` with a sled page cache of `cache_bytes`.
    ///
    /// A block record written but not committed before a crash is discarded here.
    ///
    /// TODO: sled's resident size still grows with the chain, driven by the transfer index
    /// (one record per transfer at a random key): over ten minutes at 1,000 transfers a second
    /// a node grew from about 100 to 475-590 MiB, 60-90 MiB of it in the last five minutes.
    /// Moving that index out of sled too (sorted, append-only runs per range of heights) would
    /// bound it.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Storage, StorageError> {
        // Flushing is done explicitly at each commit and safety write; sled's background
        // flusher would only add writes whose timing we do not control.
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        check_layout(&db, path)?;

        let committed_end = match last_height(&db)? {
            None => 0,
            Some(height) => extent(&db, height)?
                .ok_or_else(|| StorageError::Corrupt {
                    key: format!("b {height}"),
                })?
                .end(),
        };
        let blocks = BlockFile::open(path, committed_end)?;

        let safety_blocks = safety_blocks::read(path)?;
        Ok(Storage {
            safety_blocks: Arc::new(Mutex::new(safety_blocks)),
            dir: path.to_owned(),
            db,
            blocks: Arc::new(blocks),
            writer: Arc::new(Mutex::new(Writer {
                next_record: committed_end,
                newest: HashMap::new(),
            })),
        })
    }

    /// The last committed height, or `None` before the first block.
    pub fn last_height(&self) -> Result<Option<u64>, StorageError> {
        last_height(&self.db)
    }

    /// Stores a committed block and all its effects atomically, then flushes to disk.
    pub fn commit(&self, write: &CommitWrite<'_>) -> Result<(), StorageError> {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let expected = self.last_height()?.map_or(1, |height| height + 1);
        if write.height != expected {
            return Err(StorageError::OutOfOrder {
                expected,
                got: write.height,
            });
        }

        let (links, records) = self.link_history(write, &mut writer.newest)?;

        // Durable in the file before sled points at it; see `block_file`.
        let extent = self.blocks.write(
            writer.next_record,
            write.height,
            write.block,
            write.certificate,
            &links,
        )?;

        let mut batch = sled::Batch::default();
        let height = write.height.to_be_bytes();
        batch.insert(key(BLOCK, &[&height]), &extent.to_bytes());
        batch.insert(key(BLOCK_HASH, &[write.block_hash.as_bytes()]), &height);

        for (account, record) in &records {
            let value = postcard::to_stdvec(record).expect("an account record serialises");
            batch.insert(key(ACCOUNT, &[account.as_bytes()]), value);
        }

        for (position, transfer) in write.transfers.iter().enumerate() {
            let location = TransferLocation {
                height: write.height,
                position: position as u32,
            };
            let location = postcard::to_stdvec(&location).expect("a location serialises");
            batch.insert(key(TRANSFER, &[transfer.id.as_bytes()]), location);
        }

        // The height marker goes in the same batch: after a crash, either all of the block
        // is there and the marker says so, or none of it is.
        batch.insert(META_HEIGHT, &height);

        self.db.apply_batch(batch)?;
        self.db.flush()?;
        writer.next_record = extent.end();
        for (account, record) in records {
            writer.newest.insert(account, record.newest);
        }
        Ok(())
    }

    /// The block's history links, two per transfer (the sender's previous entry, then the
    /// recipient's), and the records of every account the block changed or whose history it
    /// extended.
    ///
    /// `known` holds newest entries as of the last commit; what it lacks is read from sled and
    /// added (unchanged by this block, so right whether or not this commit succeeds).
    fn link_history(
        &self,
        write: &CommitWrite<'_>,
        known: &mut HashMap<PublicKey, Option<HistoryLink>>,
    ) -> Result<LinkedHistory, StorageError> {
        if write.transfers.len() >= RECEIVED_BIT as usize {
            return Err(StorageError::RecordTooLong {
                height: write.height,
            });
        }

        let mut newest: HashMap<PublicKey, Option<HistoryLink>> = HashMap::new();
        let mut links = Vec::with_capacity(write.transfers.len() * 2 * block_file::LINK);
        for (position, transfer) in write.transfers.iter().enumerate() {
            let location = TransferLocation {
                height: write.height,
                position: position as u32,
            };
            let sides = [
                Some((transfer.sender, Side::Sent)),
                (transfer.recipient != transfer.sender)
                    .then_some((transfer.recipient, Side::Received)),
            ];
            for (account, side) in sides.iter().flatten() {
                let previous = match newest.get(account) {
                    Some(link) => *link,
                    None => self.known_newest(account, known)?,
                };
                links.extend_from_slice(&HistoryLink::encode(previous));
                newest.insert(
                    *account,
                    Some(HistoryLink {
                        location,
                        side: *side,
                    }),
                );
            }
            if sides[1].is_none() {
                links.extend_from_slice(&HistoryLink::encode(None));
            }
        }

        let mut records = BTreeMap::new();
        for (account, state) in &write.accounts {
            let newest = match newest.remove(account) {
                Some(link) => link,
                None => self.known_newest(account, known)?,
            };
            let record = AccountRecord {
                state: *state,
                newest,
            };
            records.insert(*account, record);
        }
        // An account can be in a transfer the block did not change it by (a zero amount
        // received): its history still grows.
        for (account, newest) in newest {
            let state = self.record(&account)?.map_or(
                StoredAccount {
                    balance: 0,
                    next_sequence: 0,
                },
                |record| record.state,
            );
            records.insert(account, AccountRecord { state, newest });
        }
        Ok((links, records))
    }

    /// The newest history entry of `account` as stored, from `known` or else from sled.
    fn known_newest(
        &self,
        account: &PublicKey,
        known: &mut HashMap<PublicKey, Option<HistoryLink>>,
    ) -> Result<Option<HistoryLink>, StorageError> {
        if let Some(newest) = known.get(account) {
            return Ok(*newest);
        }
        let newest = self.record(account)?.and_then(|record| record.newest);
        known.insert(*account, newest);
        Ok(newest)
    }

    fn record(&self, account: &PublicKey) -> Result<Option<AccountRecord>, StorageError> {
        match self.db.get(key(ACCOUNT, &[account.as_bytes()]))? {
            Some(bytes) => Ok(Some(decode(&bytes, "a account")?)),
            None => Ok(None),
        }
    }

    /// Stores the consensus safety state and flushes. Must return before any vote leaves.
    ///
    /// `blocks` are the hashes of the blocks the state names; `encode` gives the bytes of one
    /// not stored yet. They go to their own file first (with those the previous state named,
    /// so either state finds its blocks after a crash), then the state to sled.
    pub fn save_safety(
        &self,
        state: &[u8],
        blocks: &[Hash],
        encode: impl Fn(&Hash) -> Vec<u8>,
    ) -> Result<(), StorageError> {
        let mut stored = self
            .safety_blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let named: BTreeSet<Hash> = blocks.iter().copied().collect();

        if !named.iter().eq(stored.keys()) {
            let mut both = stored.clone();
            for hash in &named {
                if !both.contains_key(hash) {
                    both.insert(*hash, encode(hash));
                }
            }
            safety_blocks::write(&self.dir, &both)?;
            both.retain(|hash, _| named.contains(hash));
            *stored = both;
        }

        self.db.insert(META_SAFETY, state)?;
        self.db.flush()?;
        Ok(())
    }

    /// The last safety state saved, if any, with the blocks saved with it by hash.
    pub fn load_safety(&self) -> Result<Option<SafetyRecord>, StorageError> {
        let Some(state) = self.db.get(META_SAFETY)? else {
            return Ok(None);
        };
        let blocks = self
            .safety_blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(hash, bytes)| (*hash, bytes.clone()))
            .collect();
        Ok(Some((state.to_vec(), blocks)))
    }

    /// How many blocks are stored for the safety state.
    pub fn safety_blocks(&self) -> usize {
        self.safety_blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// The stored bytes of the block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.block_and_certificate(height)?.map(|(block, _)| block))
    }

    /// The stored bytes of the certificate of the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .block_and_certificate(height)?
            .map(|(_, certificate)| certificate))
    }

    /// The stored bytes of the block at `height` and of its certificate, read at once.
    pub fn block_and_certificate(
        &self,
        height: u64,
    ) -> Result<Option<BlockAndCertificate>, StorageError> {
        match extent(&self.db, height)? {
            Some(extent) => Ok(Some(self.blocks.read(height, extent)?)),
            None => Ok(None),
        }
    }

    /// The height of the committed block with hash `hash`.
    pub fn height_of(&self, hash: &Hash) -> Result<Option<u64>, StorageError> {
        match self.db.get(key(BLOCK_HASH, &[hash.as_bytes()]))? {
            Some(bytes) => Ok(Some(decode_u64(&bytes, "h hash")?)),
            None => Ok(None),
        }
    }

    /// The stored state of `account`, if it was ever changed by a block.
    pub fn account(&self, account: &PublicKey) -> Result<Option<StoredAccount>, StorageError> {
        Ok(self.record(account)?.map(|record| record.state))
    }

    /// Every account changed by some block, in key order.
    pub fn accounts(&self) -> Result<Vec<(PublicKey, StoredAccount)>, StorageError> {
        let mut accounts = Vec::new();
        for entry in self.db.scan_prefix([ACCOUNT]) {
            let (key, value) = entry?;
            let account = PublicKey::from_bytes(&key[1..]).map_err(|_| StorageError::Corrupt {
                key: "a account".into(),
            })?;
            let record: AccountRecord = decode(&value, "a account")?;
            accounts.push((account, record.state));
        }
        Ok(accounts)
    }

    /// Where the transfer with `id` was committed.
    pub fn transfer_location(&self, id: &Hash) -> Result<Option<TransferLocation>, StorageError> {
        match self.db.get(key(TRANSFER, &[id.as_bytes()]))? {
            Some(bytes) => Ok(Some(decode(&bytes, "t transfer")?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` history entries of `account`, newest first, strictly older than the
    /// entry `before` when given: one page of the wallet API's history.
    ///
    /// `before` must be an entry of this account's history (the last of the previous page);
    /// the page continues down the chain from it.
    pub fn history_page(
        &self,
        account: &PublicKey,
        before: Option<HistoryLink>,
        limit: usize,
    ) -> Result<Vec<HistoryLink>, StorageError> {
        let mut next = match before {
            Some(link) => self.previous(link)?,
            None => self.record(account)?.and_then(|record| record.newest),
        };
        let mut page = Vec::new();
        while let Some(link) = next.filter(|_| page.len() < limit) {
            page.push(link);
            next = self.previous(link)?;
        }
        Ok(page)
    }

    /// The entry before `link` in the history of the account on its side.
    fn previous(&self, link: HistoryLink) -> Result<Option<HistoryLink>, StorageError> {
        let height = link.location.height;
        let corrupt = || StorageError::Corrupt {
            key: format!("block file links of height {height}"),
        };
        let extent = extent(&self.db, height)?.ok_or_else(corrupt)?;
        let side = match link.side {
            Side::Sent => 0,
            Side::Received => 1,
        };
        let at = (link.location.position as usize * 2 + side) * block_file::LINK;
        let previous = HistoryLink::decode(self.blocks.read_link(height, extent, at)?);

        // Strictly older, or the walk could loop on damaged links.
        match previous {
            Some(previous) if previous.location >= link.location => Err(corrupt()),
            _ => Ok(previous),
        }
    }

    /// Flushes everything to disk (used at shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Refuses a database of another layout; marks a new one with this layout.
fn check_layout(db: &sled::Db, path: &Path) -> Result<(), StorageError> {
    let other = |found| StorageError::OtherLayout {
        path: path.to_owned(),
        found,
    };
    match db.get(META_LAYOUT)? {
        Some(bytes) if bytes.as_ref() == [LAYOUT] => Ok(()),
        Some(bytes) => Err(other(bytes.first().copied().unwrap_or(0))),
        None if db.get(META_HEIGHT)?.is_some() => Err(other(1)),
        None => {
            db.insert(META_LAYOUT, &[LAYOUT])?;
            db.flush()?;
            Ok(())
        }
    }
}

fn last_height(db: &sled::Db) -> Result<Option<u64>, StorageError> {
    match db.get(META_HEIGHT)? {
        Some(bytes) => Ok(Some(decode_u64(&bytes, "m height")?)),
        None => Ok(None),
    }
}

/// Where the record of the block at `height` is in the block file.
fn extent(db: &sled::Db, height: u64) -> Result<Option<Extent>, StorageError> {
    match db.get(key(BLOCK, &[&height.to_be_bytes()]))? {
        Some(bytes) => Extent::from_bytes(&bytes)
            .map(Some)
            .ok_or(StorageError::Corrupt {
                key: format!("b {height}"),
            }),
        None => Ok(None),
    }
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + parts.iter().map(|part| part.len()).sum::<usize>());
    key.push(prefix);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt { key: what.into() })?;
    Ok(u64::from_be_bytes(array))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|_| StorageError::Corrupt { key: what.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;

    fn account(seed: u8) -> PublicKey {
        SecretKey::from_seed(&[seed; 32]).public_key()
    }

    fn write(height: u64, block: &[u8]) -> CommitWrite<'_> {
        let id = Hash::digest(&height.to_be_bytes());
        CommitWrite {
            height,
            block_hash: Hash::digest(block),
            block,
            certificate: b"certificate",
            accounts: vec![
                (
                    account(1),
                    StoredAccount {
                        balance: 100 - height,
                        next_sequence: height,
                    },
                ),
                (
                    account(2),
                    StoredAccount {
                        balance: height,
                        next_sequence: 0,
                    },
                ),
            ],
            transfers: vec![IndexedTransfer {
                id,
                sender: account(1),
                recipient: account(2),
            }],
        }
    }

    #[test]
    fn commits_read_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(storage.last_height().unwrap(), None);
            storage.commit(&write(1, b"block one")).unwrap();
            storage.commit(&write(2, b"block two")).unwrap();
            let encode = |hash: &Hash| hash.as_bytes().to_vec();
            storage
                .save_safety(b"safety", &[Hash::digest(b"x")], encode)
                .unwrap();
        }

        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(storage.last_height().unwrap(), Some(2));
        assert_eq!(
            storage.block(2).unwrap().as_deref(),
            Some(&b"block two"[..])
        );
        assert_eq!(
            storage.certificate(1).unwrap().as_deref(),
            Some(&b"certificate"[..])
        );
        assert_eq!(
            storage.height_of(&Hash::digest(b"block one")).unwrap(),
            Some(1)
        );
        let (state, blocks) = storage.load_safety().unwrap().unwrap();
        assert_eq!(state, b"safety");
        let x = Hash::digest(b"x");
        assert_eq!(blocks, HashMap::from([(x, x.as_bytes().to_vec())]));
        assert_eq!(storage.safety_blocks(), 1);

        let sender = storage.account(&account(1)).unwrap().unwrap();
        assert_eq!(
            sender,
            StoredAccount {
                balance: 98,
                next_sequence: 2
            }
        );
        assert_eq!(storage.accounts().unwrap().len(), 2);

        let id = Hash::digest(&2u64.to_be_bytes());
        let location = storage.transfer_location(&id).unwrap().unwrap();
        assert_eq!(
            location,
            TransferLocation {
                height: 2,
                position: 0
            }
        );

        let history = storage.history_page(&account(2), None, 10).unwrap();
        assert_eq!(
            history,
            vec![link(2, 0, Side::Received), link(1, 0, Side::Received)]
        );
        let page = storage.history_page(&account(2), None, 1).unwrap();
        assert_eq!(page, vec![link(2, 0, Side::Received)]);
        let rest = storage
            .history_page(&account(2), Some(page[0]), 10)
            .unwrap();
        assert_eq!(rest, vec![link(1, 0, Side::Received)]);
    }

    fn link(height: u64, position: u32, side: Side) -> HistoryLink {
        HistoryLink {
            location: TransferLocation { height, position },
            side,
        }
    }

    fn transfer(sender: u8, recipient: u8) -> IndexedTransfer {
        IndexedTransfer {
            id: Hash::digest(&[sender, recipient]),
            sender: account(sender),
            recipient: account(recipient),
        }
    }

    #[test]
    fn history_chains_each_account_through_both_sides_and_pages_from_any_entry() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        let state = StoredAccount {
            balance: 1,
            next_sequence: 1,
        };
        // Height 1: 1 pays 2, 2 pays 1, 3 pays itself. Account 4 changes (a fee account)
        // without being in any transfer.
        let mut first = write(1, b"one");
        first.accounts = vec![
            (account(1), state),
            (account(2), state),
            (account(4), state),
        ];
        first.transfers = vec![transfer(1, 2), transfer(2, 1), transfer(3, 3)];
        storage.commit(&first).unwrap();
        // Height 2: 2 pays 1 again; 1 is not among the changed accounts (it received nothing
        // it could spend, say a zero amount) but its history still grows.
        let mut second = write(2, b"two");
        second.accounts = vec![(account(2), state)];
        second.transfers = vec![transfer(2, 1)];
        storage.commit(&second).unwrap();

        let all = |who: u8| storage.history_page(&account(who), None, 100).unwrap();
        assert_eq!(
            all(1),
            vec![
                link(2, 0, Side::Received),
                link(1, 1, Side::Received),
                link(1, 0, Side::Sent)
            ]
        );
        assert_eq!(
            all(2),
            vec![
                link(2, 0, Side::Sent),
                link(1, 1, Side::Sent),
                link(1, 0, Side::Received)
            ]
        );
        assert_eq!(all(3), vec![link(1, 2, Side::Sent)]);
        assert_eq!(all(4), vec![]);
        assert_eq!(all(9), vec![]);

        // Paging two at a time gives every entry once, newest first.
        let first_page = storage.history_page(&account(1), None, 2).unwrap();
        let last = *first_page.last().unwrap();
        let second_page = storage.history_page(&account(1), Some(last), 2).unwrap();
        assert_eq!([first_page, second_page].concat(), all(1));

        // The records keep the states they were given; a history-only change keeps the state.
        assert_eq!(storage.account(&account(1)).unwrap(), Some(state));
        assert_eq!(storage.account(&account(4)).unwrap(), Some(state));
        drop(storage);
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            storage.history_page(&account(2), None, 100).unwrap().len(),
            3
        );
    }

    #[test]
    fn out_of_order_commit_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        storage.commit(&write(1, b"one")).unwrap();

        let error = storage.commit(&write(3, b"three")).unwrap_err();
        assert!(matches!(
            error,
            StorageError::OutOfOrder {
                expected: 2,
                got: 3
            }
        ));
        assert!(matches!(
            storage.commit(&write(1, b"again")),
            Err(StorageError::OutOfOrder { .. })
        ));
        assert_eq!(storage.last_height().unwrap(), Some(1));
        assert_eq!(storage.block(3).unwrap(), None);
        assert_eq!(storage.block(2).unwrap(), None);
    }

    #[test]
    fn a_block_record_written_but_never_committed_is_discarded_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let committed_end = {
            let storage = Storage::open(dir.path(), 1 << 20).unwrap();
            storage.commit(&write(1, b"one")).unwrap();
            // A crash after the file write and before sled's batch leaves this behind.
            let end = storage.writer.lock().unwrap().next_record;
            storage.blocks.write(end, 2, b"lost", b"lost", b"").unwrap();
            end
        };
        let file = dir.path().join(block_file::FILE_NAME);
        assert!(std::fs::metadata(&file).unwrap().len() > committed_end);

        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), committed_end);
        assert_eq!(storage.last_height().unwrap(), Some(1));
        assert_eq!(storage.block(2).unwrap(), None);

        storage.commit(&write(2, b"two")).unwrap();
        assert_eq!(storage.block(2).unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(storage.block(1).unwrap().as_deref(), Some(&b"one"[..]));
    }

    #[test]
    fn a_damaged_or_short_block_file_is_an_error_not_a_block() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), 1 << 20).unwrap();
            storage.commit(&write(1, b"block one")).unwrap();
        }
        let path = dir.path().join(block_file::FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();

        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            storage.block(1).unwrap_err().to_string(),
            "database entry block file record of height 1 is corrupt"
        );
        drop(storage);

        std::fs::write(&path, &bytes[..10]).unwrap();
        let error = Storage::open(dir.path(), 1 << 20).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "block file {} holds 10 bytes but the database's blocks end at byte {}",
                path.display(),
                bytes.len()
            )
        );
    }

    #[test]
    fn a_database_of_the_older_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What the first layout left: a height and no layout entry.
            let db = sled::open(dir.path()).unwrap();
            db.insert(META_HEIGHT, &7u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let error = Storage::open(dir.path(), 1 << 20).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "the database in {} was written by another version of tally (layout 1, this \
                 version reads layout 2); start from a fresh data directory",
                dir.path().display()
            )
        );
    }
}
