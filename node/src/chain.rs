//! Adapters between the protocol types and what the node's parts need of them.
//!
//! - [`ChainBlock`]: the protocol `Block` as a consensus value. Both the trait and the type
//!   live in `protocol`, so the node wraps the block to implement the trait (Rust's orphan
//!   rule forbids implementing it on `Block` here).
//! - [`PoolTransfer`] for `VerifiedTransfer`: the mempool only ever holds transfers whose
//!   signature was checked.
//! - [`TransferBatch`]: the gossip payload carrying many transfers at once.

use protocol::consensus::ConsensusValue;
use protocol::{Block, Hash, PublicKey, SignedTransfer, VerifiedTransfer};
use serde::{Deserialize, Serialize};

use crate::mempool::PoolTransfer;

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
