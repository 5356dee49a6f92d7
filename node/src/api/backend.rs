//! The narrow interface between the HTTP handlers and the node: what a wallet can ask of it.
//!
//! Handlers see the node only through [`NodeApi`], so they can be tested against an
//! in-memory fake and the node's internals can change without touching the HTTP layer.
//! Reads that sled answers directly are plain functions; anything that goes through the
//! core task (the mempool) returns a future.

use futures::future::BoxFuture;
use protocol::chain_log::CertifiedBlock;
use protocol::{Genesis, Hash, PublicKey, SignedTransfer};
use serde::Serialize;
use tokio::sync::watch;

/// Where a committed transfer sits: its block height and index in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The block height.
    pub height: u64,
    /// The index of the transfer in the block, from 0.
    pub position: u32,
}

/// Where a transfer stands, as far as this node knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Waiting in the mempool.
    Pending,
    /// In a committed block.
    Committed(Location),
    /// Left the mempool because another transfer used its sequence number.
    Superseded {
        /// The transfer that used the sequence number.
        by: Hash,
    },
    /// Left the mempool because a commit made it invalid, with the ledger's code.
    Rejected {
        /// Stable snake_case code.
        code: String,
    },
    /// Never seen (or forgotten).
    Unknown,
}

/// The outcome of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly accepted into the mempool.
    Accepted,
    /// Already known: its current state.
    Duplicate(TransferState),
    /// Refused, with a stable code and a sentence.
    Rejected {
        /// Stable snake_case code (`mempool_full` is answered 429, anything else 400).
        code: String,
        /// For people.
        message: String,
    },
}

/// An account as of a committed height, plus this node's pending transfers from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    /// Committed balance in units.
    pub balance: u64,
    /// The next sequence number the ledger will accept.
    pub next_sequence: u64,
    /// The next sequence number counting this node's pending transfers from the account.
    pub next_sequence_pending: u64,
    /// The committed height the balance is as of.
    pub height: u64,
}

/// The node's state as shown by `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The network id.
    pub network_id: Hash,
    /// `validator` or `full`.
    pub role: &'static str,
    /// This node's address.
    pub address: PublicKey,
    /// Last committed height, as a string (0 before the first block).
    pub height: String,
    /// Its block hash (zero before the first block).
    pub block_hash: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// The consensus round at the next height.
    pub round: u32,
    /// Transfers waiting in the mempool.
    pub mempool_size: usize,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node knows of blocks it has not applied yet.
    pub syncing: bool,
}

/// Two conflicting signed consensus messages from one validator, as seen by this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The validator that equivocated.
    pub validator: PublicKey,
    /// The height, as a string.
    pub height: String,
    /// The round.
    pub round: u32,
    /// `proposal`, `prevote` or `precommit`.
    pub kind: String,
    /// Hex of the bytes the first signature covers (the consensus signing payload).
    pub first: String,
    /// Hex of the first signature.
    pub first_signature: String,
    /// Hex of the bytes the second signature covers.
    pub second: String,
    /// Hex of the second signature.
    pub second_signature: String,
}

/// Why the node could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The node is stopping; its core no longer answers.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The database failed or holds something it cannot decode.
    #[error("storage: {0}")]
    Storage(String),
    /// A history cursor names a transfer that is not in that account's history.
    #[error("the cursor is not an entry of this account's history")]
    NotInHistory,
}

/// A committed block as stored: its canonical bytes and its certificate's canonical bytes.
pub type RawBlock = (Vec<u8>, Vec<u8>);

/// What the handlers need from the node.
pub trait NodeApi: Send + Sync + 'static {
    /// The genesis the node runs.
    fn genesis(&self) -> &Genesis;

    /// The current status snapshot.
    fn status(&self) -> NodeStatus;

    /// Submits a transfer (its signature not checked yet: the node checks it once).
    fn submit(
        &self,
        transfer: SignedTransfer,
    ) -> BoxFuture<'_, Result<SubmitOutcome, BackendError>>;

    /// Where the transfer with `id` stands.
    fn transfer(&self, id: Hash) -> BoxFuture<'_, Result<TransferState, BackendError>>;

    /// The account's committed state and its next sequence counting pending transfers.
    fn account(&self, account: PublicKey) -> BoxFuture<'_, Result<AccountState, BackendError>>;

    /// Up to `limit` history entries of `account` (sent or received), newest first,
    /// strictly older than `before` when given. `before` must be one of the account's
    /// entries ([`BackendError::NotInHistory`] otherwise).
    fn history(
        &self,
        account: &PublicKey,
        before: Option<Location>,
        limit: usize,
    ) -> Result<Vec<Location>, BackendError>;

    /// The committed block at `height` with its certificate.
    fn block(&self, height: u64) -> Result<Option<CertifiedBlock>, BackendError>;

    /// The committed block at `height` as stored: canonical block and certificate bytes.
    fn raw_block(&self, height: u64) -> Result<Option<RawBlock>, BackendError>;

    /// The last committed height, updated after each commit is durable.
    fn heads(&self) -> watch::Receiver<u64>;

    /// Equivocation evidence seen so far (bounded by the node: the newest kept).
    fn evidence(&self) -> Vec<Evidence>;

    /// How many equivocations were seen in all, including those no longer kept.
    fn evidence_seen(&self) -> u64 {
        self.evidence().len() as u64
    }
}
