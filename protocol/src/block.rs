//! Blocks: the header, the transfers, building a block and validating one.
//!
//! A block holds only transfers that apply, in order, to the state after its parent; a block
//! containing one that does not is invalid. Its hash is the SHA-256 of the canonical postcard
//! encoding of its header, which commits to the transfers (by the transfers root) and to the
//! resulting state (by the state root). The commit certificate that finalises a block is
//! stored beside it, outside its hash, and belongs to the consensus code.

use serde::{Deserialize, Serialize};

use crate::encoding::{self, DecodeError, varint_len};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::keys::{BadSignature, PublicKey};
use crate::ledger::{BlockEffects, Ledger, Rejection};
use crate::merkle::transfers_root;
use crate::transfer::{FormError, SignedTransfer, VerifiedTransfer};

/// The only block header version this code accepts.
pub const BLOCK_VERSION: u32 = 1;

/// The most bytes an encoded header can take: version varint 5, network id 32, height varint
/// 10, parent 32, proposer 32, timestamp varint 10, two roots 64.
pub const MAX_HEADER_BYTES: usize = 5 + 32 + 10 + 32 + 32 + 10 + 64;

/// Everything about a block except its transfers. Fields are encoded in this order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Header version, [`BLOCK_VERSION`].
    pub version: u32,
    /// The network id (SHA-256 of the canonical genesis).
    pub network_id: Hash,
    /// The height: 1 for the first block after genesis.
    pub height: u64,
    /// The parent block's hash; [`Hash::ZERO`] for height 1.
    pub parent: Hash,
    /// The validator that proposed the block.
    pub proposer: PublicKey,
    /// The proposer's clock when it built the block, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The RFC 6962 root over the block's signed transfers (see [`crate::merkle`]).
    pub transfers_root: Hash,
    /// The state root after applying the block's transfers.
    pub state_root: Hash,
}

impl BlockHeader {
    /// The canonical bytes of the header.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a header from its canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, DecodeError> {
        encoding::decode_canonical(bytes)
    }

    /// The block hash: SHA-256 of the canonical header bytes.
    pub fn hash(&self) -> Hash {
        Hash::digest(&self.encode())
    }
}

/// A header and the transfers it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transfers, in the order they apply.
    pub transfers: Vec<SignedTransfer>,
}

/// Why bytes are not a well-formed block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockDecodeError {
    /// The bytes are not a canonical block encoding.
    #[error("block bytes are not valid: {0}")]
    Decode(#[from] DecodeError),
    /// A transfer breaks a rule of form.
    #[error("transfer {index} is malformed: {error}")]
    Transfer {
        /// The transfer's position in the block.
        index: usize,
        /// What is wrong with it.
        error: FormError,
    },
}

impl Block {
    /// The block hash (the header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The canonical bytes: the header, a varint count, then each transfer's wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// The length of [`Block::encode`] without building it.
    pub fn encoded_len(&self) -> usize {
        encoding::encoded_len(self)
    }

    /// Decodes canonical bytes and checks every transfer's form. Nothing is checked against
    /// a ledger here; see [`validate_block`]. Callers bound the input to the genesis
    /// `max_block_bytes` first, as a block can be no longer.
    pub fn decode(bytes: &[u8]) -> Result<Block, BlockDecodeError> {
        let block: Block = encoding::decode_canonical(bytes)?;
        for (index, signed) in block.transfers.iter().enumerate() {
            signed
                .transfer
                .check_form()
                .map_err(|error| BlockDecodeError::Transfer { index, error })?;
        }
        Ok(block)
    }
}

/// Where a new block goes: what the header holds besides the two roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The new block's height.
    pub height: u64,
    /// The parent's hash.
    pub parent: Hash,
    /// The proposing validator.
    pub proposer: PublicKey,
    /// The proposer's clock, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl BlockContext {
    /// The context of the block after `parent` (`None` for the first block).
    pub fn after(parent: Option<&BlockHeader>, proposer: PublicKey, timestamp_ms: u64) -> Self {
        let (height, parent) = match parent {
            Some(header) => (header.height + 1, header.hash()),
            None => (1, Hash::ZERO),
        };
        BlockContext {
            height,
            parent,
            proposer,
            timestamp_ms,
        }
    }
}

/// Why a candidate transfer was left out of a built block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    /// It does not apply after the transfers taken before it. A `BadSequence` whose `got` is
    /// above `expected` may still apply in a later block, once the missing ones do.
    Rejected(Rejection),
    /// The block reached its transfer count or byte limit; it may fit in a later block.
    BlockFull,
}

/// A block made by [`build_block`], with the ledger after it.
#[derive(Clone, Debug)]
pub struct BuiltBlock {
    /// The block, with both roots filled in.
    pub block: Block,
    /// The ledger after the block; the caller keeps it only if the block is committed.
    pub ledger: Ledger,
    /// What the block did.
    pub effects: BlockEffects,
    /// Each candidate not included, with the reason, in candidate order.
    pub left_out: Vec<(VerifiedTransfer, LeftOut)>,
}

/// Makes a block of the candidates that apply in order, within the genesis limits.
///
/// Candidates are tried in the order given; each one that applies after those already taken
/// and fits the limits is included. The ledger passed in is not changed.
pub fn build_block(
    ledger: &Ledger,
    genesis: &Genesis,
    context: BlockContext,
    candidates: impl IntoIterator<Item = VerifiedTransfer>,
) -> BuiltBlock {
    let mut header = BlockHeader {
        version: BLOCK_VERSION,
        network_id: ledger.network_id(),
        height: context.height,
        parent: context.parent,
        proposer: context.proposer,
        timestamp_ms: context.timestamp_ms,
        transfers_root: Hash::ZERO,
        state_root: Hash::ZERO,
    };

    // Roots are fixed-size, so the header's length is known before they are.
    let header_bytes = encoding::encoded_len(&header);
    let max_bytes = genesis.max_block_bytes as usize;
    let max_count = genesis.max_block_transfers as usize;

    let mut next = ledger.clone();
    let mut effects = BlockEffects::default();
    let mut taken: Vec<VerifiedTransfer> = Vec::new();
    let mut transfer_bytes = 0usize;
    let mut left_out = Vec::new();
    for candidate in candidates {
        let size = candidate.encoded_len();
        let block_bytes = header_bytes + varint_len(taken.len() as u64 + 1) + transfer_bytes + size;
        if taken.len() >= max_count || block_bytes > max_bytes {
            left_out.push((candidate, LeftOut::BlockFull));
            continue;
        }
        // A rejected transfer leaves `next` as it was, so the loop can go on.
        match next.apply_verified(&candidate) {
            Ok(applied) => {
                effects.record(applied);
                transfer_bytes += size;
                taken.push(candidate);
            }
            Err(rejection) => left_out.push((candidate, LeftOut::Rejected(rejection))),
        }
    }

    effects.state_root = next.state_root();
    let transfers: Vec<SignedTransfer> = taken
        .into_iter()
        .map(VerifiedTransfer::into_inner)
        .collect();
    header.transfers_root = transfers_root(&transfers);
    header.state_root = effects.state_root;
    BuiltBlock {
        block: Block { header, transfers },
        ledger: next,
        effects,
        left_out,
    }
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header version is not one this code knows.
    #[error("block version {0} is not supported")]
    UnsupportedVersion(u32),
    /// The block is for another network.
    #[error("block is for network {got}, this is {expected}")]
    WrongNetwork {
        /// This network's id.
        expected: Hash,
        /// The block's network id.
        got: Hash,
    },
    /// The height is not the parent's plus one.
    #[error("block height {got} should be {expected}")]
    WrongHeight {
        /// The parent's height plus one.
        expected: u64,
        /// The block's height.
        got: u64,
    },
    /// The parent hash is not the parent's hash.
    #[error("block parent {got} should be {expected}")]
    WrongParent {
        /// The parent's hash.
        expected: Hash,
        /// The block's parent field.
        got: Hash,
    },
    /// The proposer is not a genesis validator.
    #[error("proposer {0} is not a validator")]
    UnknownProposer(PublicKey),
    /// More transfers than the genesis allows.
    #[error("block has {got} transfers, at most {max} allowed")]
    TooManyTransfers {
        /// The genesis limit.
        max: u32,
        /// The block's count.
        got: usize,
    },
    /// More bytes than the genesis allows.
    #[error("block is {got} bytes, at most {max} allowed")]
    TooManyBytes {
        /// The genesis limit.
        max: u32,
        /// The block's encoded size.
        got: usize,
    },
    /// The transfers root does not match the transfers.
    #[error("transfers root {got} should be {computed}")]
    TransfersRootMismatch {
        /// The root computed from the transfers.
        computed: Hash,
        /// The header's root.
        got: Hash,
    },
    /// A transfer does not apply in order.
    #[error("transfer {index} does not apply: {rejection}")]
    Transfer {
        /// Its position in the block.
        index: usize,
        /// Why.
        rejection: Rejection,
    },
    /// The state root does not match the state after the transfers.
    #[error("state root {got} should be {computed}")]
    StateRootMismatch {
        /// The root after applying the transfers.
        computed: Hash,
        /// The header's root.
        got: Hash,
    },
}

/// A block that passed [`validate_block`], with the ledger after it.
#[derive(Clone, Debug)]
pub struct ValidBlock {
    /// The ledger after the block; the caller keeps it when the block is committed.
    pub ledger: Ledger,
    /// What the block did.
    pub effects: BlockEffects,
}

/// Checks `block` against the ledger after `parent` (`None` for the first block): every rule
/// except the consensus timestamp rules, which the node adds. Signatures are verified here as
/// one batch. `ledger` is not changed.
pub fn validate_block(
    ledger: &Ledger,
    genesis: &Genesis,
    parent: Option<&BlockHeader>,
    block: &Block,
) -> Result<ValidBlock, BlockError> {
    check_header(ledger, genesis, parent, block)?;
    let (ledger, effects) = ledger
        .preview_block(&block.transfers)
        .map_err(|(index, rejection)| BlockError::Transfer { index, rejection })?;
    check_state_root(block, ledger, effects)
}

/// Like [`validate_block`], with each transfer's signature outcome already known (a node
/// remembers the verdicts it reached when the transfers arrived, so it need not verify them
/// again when they come back in a proposal). The outcome at index `i` must be exactly that of
/// [`SignedTransfer::verify_signature`] on `block.transfers[i]`; a transfer whose outcome is
/// an error is rejected as a bad signature in its turn, as [`validate_block`] would.
///
/// # Panics
///
/// If `signatures` does not hold one outcome per transfer: a bug in the caller.
pub fn validate_block_with_signatures(
    ledger: &Ledger,
    genesis: &Genesis,
    parent: Option<&BlockHeader>,
    block: &Block,
    signatures: &[Result<(), BadSignature>],
) -> Result<ValidBlock, BlockError> {
    check_header(ledger, genesis, parent, block)?;
    let (ledger, effects) = ledger
        .preview_block_with_signatures(&block.transfers, signatures)
        .map_err(|(index, rejection)| BlockError::Transfer { index, rejection })?;
    check_state_root(block, ledger, effects)
}

/// Every rule of [`validate_block`] that comes before applying the transfers.
fn check_header(
    ledger: &Ledger,
    genesis: &Genesis,
    parent: Option<&BlockHeader>,
    block: &Block,
) -> Result<(), BlockError> {
    let header = &block.header;

    // Header fields that need nothing but the parent and the genesis.
    if header.version != BLOCK_VERSION {
        return Err(BlockError::UnsupportedVersion(header.version));
    }
    if header.network_id != ledger.network_id() {
        return Err(BlockError::WrongNetwork {
            expected: ledger.network_id(),
            got: header.network_id,
        });
    }
    let context = BlockContext::after(parent, header.proposer, header.timestamp_ms);
    if header.height != context.height {
        return Err(BlockError::WrongHeight {
            expected: context.height,
            got: header.height,
        });
    }
    if header.parent != context.parent {
        return Err(BlockError::WrongParent {
            expected: context.parent,
            got: header.parent,
        });
    }
    if genesis.validator_index(&header.proposer).is_none() {
        return Err(BlockError::UnknownProposer(header.proposer));
    }

    // Limits, then the commitment to the transfers.
    if block.transfers.len() > genesis.max_block_transfers as usize {
        return Err(BlockError::TooManyTransfers {
            max: genesis.max_block_transfers,
            got: block.transfers.len(),
        });
    }
    let bytes = block.encoded_len();
    if bytes > genesis.max_block_bytes as usize {
        return Err(BlockError::TooManyBytes {
            max: genesis.max_block_bytes,
            got: bytes,
        });
    }
    let computed = transfers_root(&block.transfers);
    if header.transfers_root != computed {
        return Err(BlockError::TransfersRootMismatch {
            computed,
            got: header.transfers_root,
        });
    }

    Ok(())
}

/// The last rule: applying every transfer in order must give the claimed state.
fn check_state_root(
    block: &Block,
    ledger: Ledger,
    effects: BlockEffects,
) -> Result<ValidBlock, BlockError> {
    if block.header.state_root != effects.state_root {
        return Err(BlockError::StateRootMismatch {
            computed: effects.state_root,
            got: block.header.state_root,
        });
    }
    Ok(ValidBlock { ledger, effects })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::tests::{key, sample};
    use crate::keys::SecretKey;
    use crate::transfer::Transfer;

    fn transfer(network: Hash, from: u8, to: u8, amount: u64, seq: u64) -> VerifiedTransfer {
        let sender = SecretKey::from_seed(&[from; 32]);
        let body = Transfer::new(network, sender.public_key(), key(to), amount, 1, seq, "");
        SignedTransfer::sign(body, &sender)
            .into_verified()
            .expect("good signature")
    }

    fn setup() -> (Genesis, Ledger) {
        let genesis = sample();
        let ledger = Ledger::from_genesis(&genesis);
        (genesis, ledger)
    }

    fn first_context(genesis: &Genesis) -> BlockContext {
        BlockContext::after(None, genesis.validators[0].key, 1_000)
    }

    #[test]
    fn built_block_takes_only_what_applies_and_validates() {
        let (genesis, ledger) = setup();
        let net = ledger.network_id();
        let candidates = vec![
            transfer(net, 1, 3, 100, 1),
            transfer(net, 1, 3, 100, 1),
            transfer(net, 2, 3, 10_000, 1),
            transfer(net, 1, 4, 50, 2),
        ];
        let built = build_block(&ledger, &genesis, first_context(&genesis), candidates);

        assert_eq!(built.block.transfers.len(), 2);
        let reasons: Vec<&LeftOut> = built.left_out.iter().map(|(_, why)| why).collect();
        assert_eq!(
            reasons,
            [
                &LeftOut::Rejected(Rejection::BadSequence {
                    expected: 2,
                    got: 1
                }),
                &LeftOut::Rejected(Rejection::InsufficientFunds {
                    balance: 500,
                    amount: 10_000,
                    fee: 1
                }),
            ]
        );
        assert_eq!(
            ledger.account(&key(1)).next_sequence,
            1,
            "builder leaves the ledger alone"
        );

        let valid = validate_block(&ledger, &genesis, None, &built.block).expect("valid");
        assert_eq!(valid.effects, built.effects);
        assert_eq!(valid.ledger.state_root(), built.block.header.state_root);
    }

    #[test]
    fn known_signature_outcomes_validate_like_verifying_them() {
        let (genesis, ledger) = setup();
        let net = ledger.network_id();
        let candidates = vec![transfer(net, 1, 3, 100, 1), transfer(net, 2, 4, 5, 1)];
        let built = build_block(&ledger, &genesis, first_context(&genesis), candidates);

        let good = [Ok(()), Ok(())];
        let valid = validate_block_with_signatures(&ledger, &genesis, None, &built.block, &good)
            .expect("valid with known-good signatures");
        assert_eq!(valid.effects, built.effects);

        // An outcome recorded as bad rejects the block exactly where verifying would.
        let bad = [Ok(()), Err(BadSignature)];
        assert_eq!(
            validate_block_with_signatures(&ledger, &genesis, None, &built.block, &bad).err(),
            Some(BlockError::Transfer {
                index: 1,
                rejection: Rejection::BadSignature
            })
        );
    }

    #[test]
    fn builder_respects_the_transfer_limit() {
        let (mut genesis, _) = setup();
        genesis.max_block_transfers = 2;
        let ledger = Ledger::from_genesis(&genesis);
        let net = ledger.network_id();
        let candidates = (1..=4).map(|seq| transfer(net, 1, 3, 1, seq));
        let built = build_block(&ledger, &genesis, first_context(&genesis), candidates);
        assert_eq!(built.block.transfers.len(), 2);
        assert!(
            built
                .left_out
                .iter()
                .all(|(_, why)| *why == LeftOut::BlockFull)
        );
    }

    #[test]
    fn builder_respects_the_byte_limit() {
        let (mut genesis, _) = setup();
        genesis.max_block_bytes = crate::genesis::MIN_BLOCK_BYTES;
        let ledger = Ledger::from_genesis(&genesis);
        let net = ledger.network_id();
        let sender = SecretKey::from_seed(&[1; 32]);
        let candidates = (1..=3).map(|seq| {
            let body = Transfer::new(net, sender.public_key(), key(3), 1, 1, seq, "m".repeat(140));
            SignedTransfer::sign(body, &sender)
                .into_verified()
                .expect("good signature")
        });
        let built = build_block(&ledger, &genesis, first_context(&genesis), candidates);
        assert_eq!(built.block.transfers.len(), 1);
        assert_eq!(built.left_out.len(), 2);
        assert!(built.block.encoded_len() <= genesis.max_block_bytes as usize);
        assert_eq!(
            validate_block(&ledger, &genesis, None, &built.block).err(),
            None
        );
    }

    #[test]
    fn block_encoding_round_trips_and_is_canonical() {
        let (genesis, ledger) = setup();
        let net = ledger.network_id();
        let built = build_block(
            &ledger,
            &genesis,
            first_context(&genesis),
            [transfer(net, 1, 3, 5, 1)],
        );
        let bytes = built.block.encode();
        assert_eq!(Block::decode(&bytes), Ok(built.block.clone()));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Block::decode(&trailing),
            Err(BlockDecodeError::Decode(DecodeError::TrailingBytes(1)))
        );
        assert!(built.block.header.encode().len() <= MAX_HEADER_BYTES);
    }

    #[test]
    fn each_broken_block_rule_is_reported() {
        let (genesis, ledger) = setup();
        let net = ledger.network_id();
        let good = build_block(
            &ledger,
            &genesis,
            first_context(&genesis),
            [transfer(net, 1, 3, 5, 1)],
        )
        .block;

        let check = |edit: &dyn Fn(&mut Block)| {
            let mut block = good.clone();
            edit(&mut block);
            validate_block(&ledger, &genesis, None, &block).err()
        };

        assert_eq!(
            check(&|b| b.header.version = 2),
            Some(BlockError::UnsupportedVersion(2))
        );
        assert_eq!(
            check(&|b| b.header.height = 2),
            Some(BlockError::WrongHeight {
                expected: 1,
                got: 2
            })
        );
        assert!(matches!(
            check(&|b| b.header.parent = Hash::digest(b"x")),
            Some(BlockError::WrongParent { .. })
        ));
        assert_eq!(
            check(&|b| b.header.proposer = key(1)),
            Some(BlockError::UnknownProposer(key(1)))
        );
        assert!(matches!(
            check(&|b| b.header.state_root = Hash::ZERO),
            Some(BlockError::StateRootMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.transfers.push(b.transfers[0].clone())),
            Some(BlockError::TransfersRootMismatch { .. })
        ));

        // A block whose roots are honest but whose second transfer does not apply.
        let mut replay = good.clone();
        replay.transfers.push(replay.transfers[0].clone());
        replay.header.transfers_root = transfers_root(&replay.transfers);
        assert_eq!(
            validate_block(&ledger, &genesis, None, &replay).err(),
            Some(BlockError::Transfer {
                index: 1,
                rejection: Rejection::BadSequence {
                    expected: 2,
                    got: 1
                }
            })
        );
    }

    #[test]
    fn second_block_chains_to_the_first() {
        let (genesis, ledger) = setup();
        let net = ledger.network_id();
        let first = build_block(
            &ledger,
            &genesis,
            first_context(&genesis),
            [transfer(net, 1, 3, 5, 1)],
        );
        let context =
            BlockContext::after(Some(&first.block.header), genesis.validators[1].key, 2_000);
        let second = build_block(
            &first.ledger,
            &genesis,
            context,
            [transfer(net, 1, 3, 5, 2)],
        );

        assert_eq!(second.block.header.parent, first.block.hash());
        let valid = validate_block(
            &first.ledger,
            &genesis,
            Some(&first.block.header),
            &second.block,
        );
        assert!(valid.is_ok());
        assert_eq!(
            validate_block(&first.ledger, &genesis, None, &second.block).err(),
            Some(BlockError::WrongHeight {
                expected: 1,
                got: 2
            })
        );
    }
}
