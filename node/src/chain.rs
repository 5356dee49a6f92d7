//! Adapters between the protocol types and what the node's parts need of them.
//!
//! - [`ChainBlock`]: the protocol `Block` as a consensus value. Both the trait and the type
//!   live in `protocol`, so the node wraps the block to implement the trait (Rust's orphan
//!   rule forbids implementing it on `Block` here).
//! - [`PoolTransfer`] for `VerifiedTransfer`: the mempool only ever holds transfers whose
//!   signature was checked.
//! - [`TransferBatch`]: the gossip payload carrying many transfers at once.
//! - [`commit_write`]: what storing a committed block writes, from the block and its effects.

use protocol::consensus::ConsensusValue;
use protocol::ledger::BlockEffects;
use protocol::{Block, Hash, PublicKey, SignedTransfer, VerifiedTransfer};
use serde::{Deserialize, Serialize};

use crate::mempool::PoolTransfer;
use crate::storage::{CommitWrite, IndexedTransfer, StoredAccount};

/// A block as the value consensus agrees on; its hash is the block hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainBlock(pub Block);

impl ConsensusValue for ChainBlock {
    fn hash(&self) -> Hash {
        self.0.hash()
    }
}

impl PoolTransfer for VerifiedTransfer {
    fn id(&self) -> Hash {
        self.signed().id()
    }

    fn sender(&self) -> PublicKey {
        self.transfer.sender
    }

    fn sequence(&self) -> u64 {
        self.transfer.sequence
    }

    fn cost(&self) -> Option<u64> {
        self.transfer.amount.checked_add(self.transfer.fee)
    }
}

/// Transfers gossiped together: each is its canonical signed bytes.
///
/// One gossip message per transfer would cap a node at a few thousand transfers a second
/// (each message is signed, hashed and tracked by gossipsub); batching amortises that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferBatch {
    /// The encoded signed transfers.
    pub transfers: Vec<Vec<u8>>,
}

/// Why a gossiped batch is malformed: grounds for rejecting it and penalising the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The batch itself does not decode.
    #[error("batch does not decode")]
    Malformed,
    /// The batch is empty or holds more transfers than any block could.
    #[error("batch holds {0} transfers")]
    BadSize(usize),
    /// A transfer inside does not decode canonically or breaks a form rule.
    #[error("transfer {0} in the batch does not decode")]
    BadTransfer(usize),
}

impl TransferBatch {
    /// The batch of `transfers`.
    pub fn of(transfers: &[SignedTransfer]) -> TransferBatch {
        TransferBatch {
            transfers: transfers.iter().map(SignedTransfer::encode).collect(),
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a batch serialises")
    }

    /// Decodes the wire bytes and every transfer in them, holding at most `max` transfers.
    /// Signatures are not checked here.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Vec<(Vec<u8>, SignedTransfer)>, BatchError> {
        let batch: TransferBatch =
            postcard::from_bytes(bytes).map_err(|_| BatchError::Malformed)?;
        if batch.transfers.is_empty() || batch.transfers.len() > max {
            return Err(BatchError::BadSize(batch.transfers.len()));
        }

        let mut decoded = Vec::with_capacity(batch.transfers.len());
        for (index, encoded) in batch.transfers.into_iter().enumerate() {
            let transfer =
                SignedTransfer::decode(&encoded).map_err(|_| BatchError::BadTransfer(index))?;
            decoded.push((encoded, transfer));
        }
        Ok(decoded)
    }
}

/// The one storage write for a committed `block` whose application had `effects`: its
/// encoded bytes and certificate, every account it changed (the state tree's leaves), and the
/// transfers to index.
///
/// The transfer ids come from `effects` (the ledger computed each while applying), so no
/// transfer is encoded and hashed again here. The node's commit path and `tally bench` both
/// build their writes with this function, so the bench measures the node's own write.
///
/// # Panics
///
/// If `effects` is not the application of `block` (a different number of transfers): that
/// is a bug in the caller.
pub fn commit_write<'a>(
    block: &Block,
    block_hash: Hash,
    block_bytes: &'a [u8],
    certificate_bytes: &'a [u8],
    effects: &BlockEffects,
) -> CommitWrite<'a> {
    assert_eq!(
        block.transfers.len(),
        effects.applied.len(),
        "the effects are those of this block"
    );
    let accounts = effects
        .changed
        .iter()
        .map(|(owner, account)| {
            let stored = StoredAccount {
                balance: account.balance,
                next_sequence: account.next_sequence,
            };
            (*owner, stored)
        })
        .collect();
    let transfers = block
        .transfers
        .iter()
        .zip(&effects.applied)
        .map(|(signed, applied)| IndexedTransfer {
            id: applied.id,
            sender: signed.transfer.sender,
            recipient: signed.transfer.receiver,
        })
        .collect();
    CommitWrite {
        height: block.header.height,
        block_hash,
        block: block_bytes,
        certificate: certificate_bytes,
        accounts,
        transfers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{SecretKey, Transfer};

    fn signed(sequence: u64) -> SignedTransfer {
        let sender = SecretKey::from_seed(&[1; 32]);
        let receiver = SecretKey::from_seed(&[2; 32]).public_key();
        let body = Transfer::new(
            Hash::ZERO,
            sender.public_key(),
            receiver,
            5,
            1,
            sequence,
            "",
        );
        SignedTransfer::sign(body, &sender)
    }

    #[test]
    fn batch_round_trips_and_rejects_garbage() {
        let transfers = vec![signed(1), signed(2)];
        let bytes = TransferBatch::of(&transfers).encode();
        let decoded = TransferBatch::decode(&bytes, 10).unwrap();
        let back: Vec<SignedTransfer> = decoded.into_iter().map(|(_, t)| t).collect();
        assert_eq!(back, transfers);

        assert_eq!(
            TransferBatch::decode(b"\xff\xff\xff", 10),
            Err(BatchError::Malformed)
        );
        assert_eq!(
            TransferBatch::decode(&bytes, 1),
            Err(BatchError::BadSize(2))
        );
        let garbage = TransferBatch {
            transfers: vec![vec![1, 2, 3]],
        }
        .encode();
        assert_eq!(
            TransferBatch::decode(&garbage, 10),
            Err(BatchError::BadTransfer(0))
        );
    }
}
