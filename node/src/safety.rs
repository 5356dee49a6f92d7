//! The consensus safety state as the node stores it: blocks by hash, each block once.
//!
//! The state machine's [`SafetyState`] holds whole blocks up to three times (the locked
//! value, the valid value, the proposal this validator sent), and it is saved and flushed
//! before every message the validator signs, several times a height. Written whole, that was
//! most of what a node wrote to disk, several times the chain itself, and sled held on to it.
//! Here the state refers to blocks by hash, and [`Storage::save_safety`] writes a block only
//! when the state first names it, to a small file of its own beside sled.

use std::collections::BTreeMap;

use protocol::consensus::{Message, Proposal, RoundValue, SafetyState, SignedMessage};
use protocol::{Block, Hash};
use serde::{Deserialize, Serialize};

use crate::chain::ChainBlock;
use crate::storage::{Storage, StorageError};

/// A block named by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BlockRef(Hash);

/// Why a stored safety state cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    /// The state does not decode.
    #[error("the safety state does not decode")]
    Undecodable,
    /// The state names a block that is not stored with it, or one that does not decode.
    #[error("the safety state names block {0}, which is missing or corrupt")]
    MissingBlock(Hash),
}

/// Stores `state` and flushes; a block it names is written only if not stored already.
pub fn save(storage: &Storage, state: &SafetyState<ChainBlock>) -> Result<(), StorageError> {
    let mut blocks: BTreeMap<Hash, &ChainBlock> = BTreeMap::new();
    let mut by_hash = |value| reference(&mut blocks, value);
    let stored = SafetyState {
        height: state.height,
        round: state.round,
        step: state.step,
        locked: state.locked.as_ref().map(|locked| RoundValue {
            round: locked.round,
            value: by_hash(&locked.value),
        }),
        valid: state.valid.as_ref().map(|valid| RoundValue {
            round: valid.round,
            value: by_hash(&valid.value),
        }),
        sent: state
            .sent
            .iter()
            .map(|signed| SignedMessage {
                message: match &signed.message {
                    Message::Proposal(proposal) => Message::Proposal(Proposal {
                        height: proposal.height,
                        round: proposal.round,
                        value: by_hash(&proposal.value),
                        valid_round: proposal.valid_round,
                    }),
                    Message::Vote(vote) => Message::Vote(*vote),
                },
                signer: signed.signer,
                signature: signed.signature,
            })
            .collect(),
    };

    let bytes = postcard::to_stdvec(&stored).expect("a safety state serialises");
    let hashes: Vec<Hash> = blocks.keys().copied().collect();
    storage.save_safety(&bytes, &hashes, |hash| blocks[hash].0.encode())
}

/// `value` by its hash, noted in `blocks`.
fn reference<'a>(blocks: &mut BTreeMap<Hash, &'a ChainBlock>, value: &'a ChainBlock) -> BlockRef {
    let hash = value.0.hash();
    blocks.insert(hash, value);
    BlockRef(hash)
}

/// The last safety state saved, if any.
pub fn load(storage: &Storage) -> Result<Option<SafetyState<ChainBlock>>, LoadError> {
    let Some((bytes, blocks)) = storage.load_safety()? else {
        return Ok(None);
    };
    let stored: SafetyState<BlockRef> =
        postcard::from_bytes(&bytes).map_err(|_| SafetyError::Undecodable)?;

    let block = |reference: &BlockRef| -> Result<ChainBlock, SafetyError> {
        let bytes = blocks
            .get(&reference.0)
            .ok_or(SafetyError::MissingBlock(reference.0))?;
        let block = Block::decode(bytes).map_err(|_| SafetyError::MissingBlock(reference.0))?;
        if block.hash() != reference.0 {
            return Err(SafetyError::MissingBlock(reference.0));
        }
        Ok(ChainBlock(block))
    };
    let round_value = |value: &Option<RoundValue<BlockRef>>| -> Result<_, SafetyError> {
        value
            .as_ref()
            .map(|value| {
                Ok(RoundValue {
                    round: value.round,
                    value: block(&value.value)?,
                })
            })
            .transpose()
    };

    let mut sent = Vec::with_capacity(stored.sent.len());
    for signed in &stored.sent {
        let message = match &signed.message {
            Message::Proposal(proposal) => Message::Proposal(Proposal {
                height: proposal.height,
                round: proposal.round,
                value: block(&proposal.value)?,
                valid_round: proposal.valid_round,
            }),
            Message::Vote(vote) => Message::Vote(*vote),
        };
        sent.push(SignedMessage {
            message,
            signer: signed.signer,
            signature: signed.signature,
        });
    }
    Ok(Some(SafetyState {
        height: stored.height,
        round: stored.round,
        step: stored.step,
        locked: round_value(&stored.locked)?,
        valid: round_value(&stored.valid)?,
        sent,
    }))
}

/// Why [`load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// What it holds is not a safety state.
    #[error(transparent)]
    Safety(#[from] SafetyError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::consensus::{Step, Vote, VoteKind};
    use protocol::{BlockHeader, SecretKey, Signature};

    fn block(height: u64) -> ChainBlock {
        let header = BlockHeader {
            version: protocol::block::BLOCK_VERSION,
            network_id: Hash::ZERO,
            height,
            parent: Hash::ZERO,
            proposer: SecretKey::from_seed(&[1; 32]).public_key(),
            timestamp_ms: height,
            transfers_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        ChainBlock(Block {
            header,
            transfers: Vec::new(),
        })
    }

    fn signed(message: Message<ChainBlock>) -> SignedMessage<ChainBlock> {
        SignedMessage {
            message,
            signer: SecretKey::from_seed(&[1; 32]).public_key(),
            signature: Signature([7; 64]),
        }
    }

    fn state(locked: u64, proposed: u64) -> SafetyState<ChainBlock> {
        let proposal = Proposal {
            height: 5,
            round: 2,
            value: block(proposed),
            valid_round: Some(1),
        };
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 5,
            round: 2,
            block_hash: Some(block(proposed).0.hash()),
        };
        SafetyState {
            height: 5,
            round: 2,
            step: Step::Prevote,
            locked: Some(RoundValue {
                round: 1,
                value: block(locked),
            }),
            valid: Some(RoundValue {
                round: 1,
                value: block(locked),
            }),
            sent: vec![
                signed(Message::Proposal(proposal)),
                signed(Message::Vote(vote)),
            ],
        }
    }

    #[test]
    fn the_state_reads_back_whole_with_each_block_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(load(&storage).unwrap(), None);

        let first = state(10, 10);
        save(&storage, &first).unwrap();
        assert_eq!(
            storage.safety_blocks(),
            1,
            "the same block thrice is stored once"
        );
        assert_eq!(load(&storage).unwrap(), Some(first));

        // A new proposal: its block is added; the locked one stays.
        let second = state(10, 11);
        save(&storage, &second).unwrap();
        assert_eq!(storage.safety_blocks(), 2);
        drop(storage);
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(load(&storage).unwrap(), Some(second));

        // Blocks the state no longer names are removed with the save that drops them.
        let mut third = state(12, 12);
        third.sent.clear();
        save(&storage, &third).unwrap();
        assert_eq!(storage.safety_blocks(), 1);
        assert_eq!(load(&storage).unwrap(), Some(third));
    }

    #[test]
    fn a_state_naming_a_block_that_is_not_stored_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        let bytes = postcard::to_stdvec(&SafetyState::<BlockRef> {
            height: 5,
            round: 0,
            step: Step::Propose,
            locked: Some(RoundValue {
                round: 0,
                value: BlockRef(Hash::digest(b"nowhere")),
            }),
            valid: None,
            sent: Vec::new(),
        })
        .unwrap();
        storage.save_safety(&bytes, &[], |_| Vec::new()).unwrap();

        let error = load(&storage).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the safety state names block {}, which is missing or corrupt",
                Hash::digest(b"nowhere")
            )
        );

        storage
            .save_safety(b"\xff\xff", &[], |_| Vec::new())
            .unwrap();
        assert_eq!(
            load(&storage).unwrap_err().to_string(),
            "the safety state does not decode"
        );
    }
}
