//! The node's database: the only module that touches sled.
//!
//! Everything lives in sled's default tree under one-byte key prefixes, so that all the
//! effects of a committed block go in with one `Batch`, which sled applies atomically for a
//! single tree (a batch over several trees would not be). After the batch, the database is
//! flushed before `commit` returns, and only then may the commit be reported to anyone.
//!
//! ```text
//! m safety                      the consensus safety state (flushed before any vote leaves)
//! m height                      last committed height, u64 big-endian
//! b HEIGHT                      the canonical bytes of the block at HEIGHT
//! c HEIGHT                      the commit certificate's bytes for that block
//! h BLOCK_HASH                  HEIGHT of the block with that hash
//! a ACCOUNT                     (balance, next_sequence) of an account, postcard
//! t TRANSFER_ID                 (HEIGHT, position) where that transfer was committed
//! y ACCOUNT HEIGHT POSITION     TRANSFER_ID: the history of an account, oldest first
//! n PREFIX DEPTH                the hash of the state tree's inner node at that position
//! ```
//!
//! Heights and positions are big-endian, so sled's byte order is height order.
//!
//! The state tree's leaves are the `a` entries; its inner nodes (`n`, see
//! [`protocol::state_tree::NodePosition`]) go in with the block that rewrote them, so after
//! any crash the stored tree is exactly the tree of the stored head. At start the node builds
//! the tree from the accounts and refuses to run unless every stored node matches it and its
//! root is the head block's state root.
//!
//! This module knows nothing of blocks' structure: callers hand it encoded bytes and the
//! facts to index (see [`CommitWrite`]), which keeps the on-disk format independent of the
//! protocol types' evolution and this module easy to test on its own.

use std::path::Path;

use protocol::state_tree::NodePosition;
use protocol::{Hash, PublicKey};

const BLOCK: u8 = b'b';
const CERTIFICATE: u8 = b'c';
const BLOCK_HASH: u8 = b'h';
const ACCOUNT: u8 = b'a';
const TRANSFER: u8 = b't';
const HISTORY: u8 = b'y';
const STATE_NODE: u8 = b'n';

// Meta keys start with `m`, like the other prefixes.
const META_SAFETY: &[u8] = b"msafety";
const META_HEIGHT: &[u8] = b"mheight";

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
    /// The state tree's inner nodes the block rewrote (all of them for the first block).
    pub state_nodes: Vec<(NodePosition, Hash)>,
}

/// Where a committed transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferLocation {
    /// The block height.
    pub height: u64,
    /// Its index in the block.
    pub position: u32,
}

/// The node's sled database. Cheap to clone: clones share the same database.
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
}

impl Storage {
    /// Opens (or creates) the database in `path` with a page cache of `cache_bytes`.
    ///
    /// TODO: sled's resident memory grows with the database far beyond `cache_bytes` (its
    /// cache limit counts on-disk bytes, and its page table grows with every page): `tally
    /// bench` measured 9 GiB resident for two databases holding 1.5 GiB after 400 blocks of
    /// 1,000 transfers with the default 64 MiB cache, and +0.9 GiB per node over five minutes
    /// at 1,000 transfers a second. Moving block bodies and indexes out of sled (an
    /// append-only file beside it) is the planned fix; until then memory is bounded by the
    /// chain's length, not by configuration.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Storage, StorageError> {
        // Flushing is done explicitly at each commit and safety write; sled's background
        // flusher would only add writes whose timing we do not control.
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        Ok(Storage { db })
    }

    /// The last committed height, or `None` before the first block.
    pub fn last_height(&self) -> Result<Option<u64>, StorageError> {
        match self.db.get(META_HEIGHT)? {
            Some(bytes) => Ok(Some(decode_u64(&bytes, "m height")?)),
            None => Ok(None),
        }
    }

    /// Stores a committed block and all its effects atomically, then flushes to disk.
    pub fn commit(&self, write: &CommitWrite<'_>) -> Result<(), StorageError> {
        let expected = self.last_height()?.map_or(1, |height| height + 1);
        if write.height != expected {
            return Err(StorageError::OutOfOrder {
                expected,
                got: write.height,
            });
        }

        let mut batch = sled::Batch::default();
        let height = write.height.to_be_bytes();
        batch.insert(key(BLOCK, &[&height]), write.block);
        batch.insert(key(CERTIFICATE, &[&height]), write.certificate);
        batch.insert(key(BLOCK_HASH, &[write.block_hash.as_bytes()]), &height);

        for (account, state) in &write.accounts {
            let value = postcard::to_stdvec(state).expect("an account state serialises");
            batch.insert(key(ACCOUNT, &[account.as_bytes()]), value);
        }

        for (position, transfer) in write.transfers.iter().enumerate() {
            let position = u32::try_from(position).expect("a block holds fewer than 2^32");
            let location = TransferLocation {
                height: write.height,
                position,
            };
            let location = postcard::to_stdvec(&location).expect("a location serialises");
            batch.insert(key(TRANSFER, &[transfer.id.as_bytes()]), location);

            let position = position.to_be_bytes();
            let id = transfer.id.as_bytes().as_slice();
            batch.insert(
                key(HISTORY, &[transfer.sender.as_bytes(), &height, &position]),
                id,
            );
            if transfer.recipient != transfer.sender {
                let recipient = transfer.recipient.as_bytes();
                batch.insert(key(HISTORY, &[recipient, &height, &position]), id);
            }
        }

        for (position, hash) in &write.state_nodes {
            batch.insert(key(STATE_NODE, &[&position.to_bytes()]), hash.as_bytes());
        }

        // The height marker goes in the same batch: after a crash, either all of the block
        // is there and the marker says so, or none of it is.
        batch.insert(META_HEIGHT, &height);

        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores the consensus safety state and flushes. Must return before any vote leaves.
    pub fn save_safety(&self, bytes: &[u8]) -> Result<(), StorageError> {
        self.db.insert(META_SAFETY, bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// The last safety state saved, if any.
    pub fn load_safety(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(META_SAFETY)?.map(|bytes| bytes.to_vec()))
    }

    /// The stored bytes of the block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get(key(BLOCK, &[&height.to_be_bytes()]))?
            .map(|bytes| bytes.to_vec()))
    }

    /// The stored bytes of the certificate of the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let bytes = self.db.get(key(CERTIFICATE, &[&height.to_be_bytes()]))?;
        Ok(bytes.map(|bytes| bytes.to_vec()))
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
        match self.db.get(key(ACCOUNT, &[account.as_bytes()]))? {
            Some(bytes) => Ok(Some(decode(&bytes, "a account")?)),
            None => Ok(None),
        }
    }

    /// Every account changed by some block, in key order.
    pub fn accounts(&self) -> Result<Vec<(PublicKey, StoredAccount)>, StorageError> {
        let mut accounts = Vec::new();
        for entry in self.db.scan_prefix([ACCOUNT]) {
            let (key, value) = entry?;
            let account = PublicKey::from_bytes(&key[1..]).map_err(|_| StorageError::Corrupt {
                key: "a account".into(),
            })?;
            accounts.push((account, decode(&value, "a account")?));
        }
        Ok(accounts)
    }

    /// Every stored inner node of the state tree, in position order.
    pub fn state_nodes(&self) -> Result<Vec<(NodePosition, Hash)>, StorageError> {
        let corrupt = || StorageError::Corrupt {
            key: "n state node".into(),
        };
        let mut nodes = Vec::new();
        for entry in self.db.scan_prefix([STATE_NODE]) {
            let (key, value) = entry?;
            let position = NodePosition::from_bytes(&key[1..]).ok_or_else(corrupt)?;
            let hash: [u8; 32] = value.as_ref().try_into().map_err(|_| corrupt())?;
            nodes.push((position, Hash(hash)));
        }
        Ok(nodes)
    }

    /// Stores every inner node of the state tree at once, flushed: for a data directory
    /// written before the nodes were stored. The caller has checked them against the head.
    pub fn put_state_nodes(&self, nodes: &[(NodePosition, Hash)]) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for (position, hash) in nodes {
            batch.insert(key(STATE_NODE, &[&position.to_bytes()]), hash.as_bytes());
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Where the transfer with `id` was committed.
    pub fn transfer_location(&self, id: &Hash) -> Result<Option<TransferLocation>, StorageError> {
        match self.db.get(key(TRANSFER, &[id.as_bytes()]))? {
            Some(bytes) => Ok(Some(decode(&bytes, "t transfer")?)),
            None => Ok(None),
        }
    }

    /// The ids of the transfers sent or received by `account`, oldest first, at most `limit`.
    pub fn history(
        &self,
        account: &PublicKey,
        limit: usize,
    ) -> Result<Vec<(TransferLocation, Hash)>, StorageError> {
        let mut entries = Vec::new();
        for entry in self
            .db
            .scan_prefix(key(HISTORY, &[account.as_bytes()]))
            .take(limit)
        {
            let (key, value) = entry?;
            let corrupt = || StorageError::Corrupt {
                key: "y history".into(),
            };
            let tail = key.get(33..).ok_or_else(corrupt)?;
            let (height, position) = tail.split_at_checked(8).ok_or_else(corrupt)?;
            let location = TransferLocation {
                height: u64::from_be_bytes(height.try_into().map_err(|_| corrupt())?),
                position: u32::from_be_bytes(position.try_into().map_err(|_| corrupt())?),
            };
            let id: [u8; 32] = value.as_ref().try_into().map_err(|_| corrupt())?;
            entries.push((location, Hash(id)));
        }
        Ok(entries)
    }

    /// Up to `limit` history entries of `account`, newest first, strictly older than
    /// `before` (height, position) when given: one page of the wallet API's history.
    pub fn history_page(
        &self,
        account: &PublicKey,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<(TransferLocation, Hash)>, StorageError> {
        let prefix = key(HISTORY, &[account.as_bytes()]);
        let entries = match before {
            None => self.db.scan_prefix(&prefix),
            Some((height, position)) => {
                let end = key(
                    HISTORY,
                    &[
                        account.as_bytes(),
                        &height.to_be_bytes(),
                        &position.to_be_bytes(),
                    ],
                );
                self.db.range(prefix..end)
            }
        };

        let mut page = Vec::new();
        for entry in entries.rev().take(limit) {
            let (key, value) = entry?;
            let corrupt = || StorageError::Corrupt {
                key: "y history".into(),
            };
            let tail = key.get(33..).ok_or_else(corrupt)?;
            let (height, position) = tail.split_at_checked(8).ok_or_else(corrupt)?;
            let location = TransferLocation {
                height: u64::from_be_bytes(height.try_into().map_err(|_| corrupt())?),
                position: u32::from_be_bytes(position.try_into().map_err(|_| corrupt())?),
            };
            let id: [u8; 32] = value.as_ref().try_into().map_err(|_| corrupt())?;
            page.push((location, Hash(id)));
        }
        Ok(page)
    }

    /// Flushes everything to disk (used at shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
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
            state_nodes: vec![(node_position(height), Hash::digest(block))],
        }
    }

    fn node_position(height: u64) -> NodePosition {
        let mut prefix = [0u8; 32];
        prefix[0] = (height as u8) << 7;
        NodePosition::from_bytes(&[&prefix[..], &[1]].concat()).unwrap()
    }

    #[test]
    fn commits_read_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(storage.last_height().unwrap(), None);
            storage.commit(&write(1, b"block one")).unwrap();
            storage.commit(&write(2, b"block two")).unwrap();
            storage.save_safety(b"safety").unwrap();
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
        assert_eq!(
            storage.load_safety().unwrap().as_deref(),
            Some(&b"safety"[..])
        );

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

        let history = storage.history(&account(2), 10).unwrap();
        let heights: Vec<u64> = history
            .iter()
            .map(|(location, _)| location.height)
            .collect();
        assert_eq!(heights, vec![1, 2]);
        assert_eq!(storage.history(&account(2), 1).unwrap().len(), 1);

        // Height 2 rewrote the node at position 0|0…; height 1 the one at 1|0….
        assert_eq!(
            storage.state_nodes().unwrap(),
            vec![
                (node_position(2), Hash::digest(b"block two")),
                (node_position(1), Hash::digest(b"block one")),
            ]
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
        assert_eq!(storage.state_nodes().unwrap().len(), 1);
    }
}
