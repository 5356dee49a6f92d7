//! The auditor: checks a chain of certified blocks from genesis, trusting nothing it is given.
//!
//! An [`Auditor`] starts from a [`Genesis`] and takes certified blocks in height order. For
//! each it checks, in this order, and stops at the first failure:
//!
//! 1. the height is the next one (a gap is a missing block);
//! 2. the header: version, network id, parent hash (the hash chain), a genesis validator as
//!    proposer, and a timestamp above the parent's;
//! 3. the commit certificate: for this height and this block's hash, from a quorum of
//!    distinct genesis validators whose precommit signatures verify;
//! 4. the block limits and the transfers root;
//! 5. every transfer's signature;
//! 6. the replay of every transfer with the ledger rules, from the state the auditor itself
//!    computed, and the header's state root against the result;
//! 7. conservation of supply: the accounts the block wrote hold, together, exactly what they
//!    held before it.
//!
//! Signatures cost far more than everything else, so the auditor does not check them itself:
//! the caller computes a [`SignatureVerdict`] for each block (see [`SignatureVerdict::compute`])
//! on as many threads as it likes and hands it over with the block. [`prepare_blocks`] goes
//! further for a caller that pipelines: it computes everything about a block that does not
//! depend on the chain before it (verdicts, block hash, size, transfers root), encoding each
//! transfer once, so that [`Auditor::check_prepared`] is left with the in-order checks and
//! the replay. Either way the checks, their order and their outcome are the same.

use crate::batch::verify_batch;
use crate::block::{BLOCK_VERSION, BlockHeader};
use crate::chain_log::CertifiedBlock;
use crate::consensus::{CertificateError, ValidatorSet, ValidatorSetError};
use crate::encoding::{self, varint_len};
use crate::genesis::{Genesis, GenesisError};
use crate::hash::Hash;
use crate::keys::{BadSignature, PublicKey, Signature};
use crate::ledger::{Ledger, Rejection};
use crate::merkle::{root_of_leaves, transfer_leaf, transfers_root};
use crate::transfer::TRANSFER_DOMAIN_TAG;
use crate::verification::{SignedMessage, verify_many};

/// The outcome of every signature check of one block, computed by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureVerdict {
    /// The certificate's signatures (membership, distinctness, quorum and signatures), as
    /// [`CommitCertificate::verify`](crate::consensus::CommitCertificate::verify) answers.
    pub certificate: Result<(), CertificateError>,
    /// One outcome per transfer, in block order, as [`verify_batch`] answers.
    pub transfers: Vec<Result<(), BadSignature>>,
}

impl SignatureVerdict {
    /// Checks every signature of `certified` on the calling thread.
    pub fn compute(
        certified: &CertifiedBlock,
        network_id: &Hash,
        validators: &ValidatorSet,
    ) -> SignatureVerdict {
        let refs: Vec<_> = certified.block.transfers.iter().collect();
        SignatureVerdict {
            certificate: certified.certificate.verify(network_id, validators),
            transfers: verify_batch(&refs),
        }
    }
}

/// A block with everything about it that does not depend on the chain before it: its hash,
/// its size, its transfers root and every signature's verdict. [`prepare_blocks`] computes
/// these on whatever thread calls it, so that many blocks can be prepared at once while
/// [`Auditor::check_prepared`] does the in-order checks on another.
#[derive(Clone, Debug)]
pub struct PreparedBlock {
    certified: CertifiedBlock,
    hash: Hash,
    encoded_len: usize,
    transfers_root: Hash,
    verdict: SignatureVerdict,
}

impl PreparedBlock {
    /// The block and its certificate.
    pub fn certified(&self) -> &CertifiedBlock {
        &self.certified
    }

    /// Every signature's outcome.
    pub fn verdict(&self) -> &SignatureVerdict {
        &self.verdict
    }
}

/// Prepares `blocks` for [`Auditor::check_prepared`], in order. Each transfer's body is
/// encoded once, and those bytes serve its signature check and its transfers-root leaf; the
/// signatures of all the blocks are verified as one batch, which gives each the outcome it
/// would have alone (see [`crate::batch`]).
pub fn prepare_blocks(
    blocks: Vec<CertifiedBlock>,
    network_id: &Hash,
    validators: &ValidatorSet,
) -> Vec<PreparedBlock> {
    let transfers = blocks
        .iter()
        .flat_map(|certified| &certified.block.transfers);
    let signing_bytes: Vec<Vec<u8>> = transfers.clone().map(|t| t.signing_bytes()).collect();
    let messages: Vec<SignedMessage<'_>> = transfers
        .zip(&signing_bytes)
        .map(|(signed, message)| SignedMessage {
            key: &signed.transfer.sender,
            signature: &signed.signature,
            message,
        })
        .collect();
    let mut outcomes = verify_many(&messages).into_iter();
    let mut leaves = messages
        .iter()
        .map(|message| transfer_leaf(message.message, message.signature));

    let mut lengths = signing_bytes.iter().map(|bytes| wire_len(bytes));
    let mut prepared = Vec::with_capacity(blocks.len());
    for certified in &blocks {
        let count = certified.block.transfers.len();
        let block_leaves: Vec<Hash> = leaves.by_ref().take(count).collect();
        // The block's length from its parts, so its transfers are not walked again.
        let encoded_len = encoding::encoded_len(&certified.block.header)
            + varint_len(count as u64)
            + lengths.by_ref().take(count).sum::<usize>();
        prepared.push((
            certified.block.hash(),
            encoded_len,
            root_of_leaves(&block_leaves),
            SignatureVerdict {
                certificate: certified.certificate.verify(network_id, validators),
                transfers: outcomes.by_ref().take(count).collect(),
            },
        ));
    }
    (blocks.into_iter().zip(prepared))
        .map(
            |(certified, (hash, encoded_len, transfers_root, verdict))| PreparedBlock {
                certified,
                hash,
                encoded_len,
                transfers_root,
                verdict,
            },
        )
        .collect()
}

/// A signed transfer's wire length from its signing bytes: the body, then the signature.
fn wire_len(signing_bytes: &[u8]) -> usize {
    signing_bytes.len() - TRANSFER_DOMAIN_TAG.len() + size_of::<Signature>()
}

/// Why an auditor cannot be built from a genesis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditSetupError {
    /// The genesis breaks one of its rules.
    #[error("the genesis is invalid: {0}")]
    Genesis(#[from] GenesisError),
    /// The genesis validators do not make a validator set.
    #[error("the genesis validators are unusable: {0}")]
    Validators(#[from] ValidatorSetError),
}

/// What is wrong with the first bad block, one variant per broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFailure {
    /// A block is above the next height: the blocks between are missing.
    #[error("missing block: expected height {expected}, got {got}")]
    MissingBlock {
        /// The next height.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// A block at or below a height already verified.
    #[error("block out of order: expected height {expected}, got {got}")]
    OutOfOrder {
        /// The next height.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// The header version is not one this code knows.
    #[error("block version {0} is not supported")]
    UnsupportedVersion(u32),
    /// The block names another network.
    #[error("block is for network {got}, the genesis is network {expected}")]
    WrongNetwork {
        /// The genesis network id.
        expected: Hash,
        /// The header's.
        got: Hash,
    },
    /// The parent field is not the previous block's hash: the hash chain is broken.
    #[error("hash mismatch: parent is {got}, the previous block's hash is {expected}")]
    ParentMismatch {
        /// The previous block's hash ([`Hash::ZERO`] at height 1).
        expected: Hash,
        /// The header's parent field.
        got: Hash,
    },
    /// The proposer is not a genesis validator.
    #[error("proposer {0} is not a genesis validator")]
    UnknownProposer(PublicKey),
    /// The timestamp is not above the parent's.
    #[error("timestamp {got} ms is not after the parent's {parent} ms")]
    TimestampNotIncreasing {
        /// The parent's timestamp.
        parent: u64,
        /// The block's.
        got: u64,
    },
    /// The certificate is for another height.
    #[error("bad certificate: it certifies height {got}")]
    CertificateHeight {
        /// The certificate's height.
        got: u64,
    },
    /// The certificate is for another block.
    #[error("bad certificate: it certifies block {certified}, this block is {block}")]
    CertificateBlock {
        /// The certificate's block hash.
        certified: Hash,
        /// This block's hash.
        block: Hash,
    },
    /// The certificate's signatures do not prove a quorum.
    #[error("bad certificate: {0}")]
    Certificate(CertificateError),
    /// More transfers than the genesis allows.
    #[error("block has {got} transfers, the genesis allows {max}")]
    TooManyTransfers {
        /// The genesis limit.
        max: u32,
        /// The block's count.
        got: usize,
    },
    /// More bytes than the genesis allows.
    #[error("block is {got} bytes, the genesis allows {max}")]
    TooManyBytes {
        /// The genesis limit.
        max: u32,
        /// The block's size.
        got: usize,
    },
    /// The transfers root does not commit to the block's transfers.
    #[error("hash mismatch: transfers root is {got}, the transfers give {computed}")]
    TransfersRootMismatch {
        /// The root of the transfers.
        computed: Hash,
        /// The header's.
        got: Hash,
    },
    /// The caller's verdict does not cover the block's transfers one to one.
    #[error("signature verdict has {got} outcomes for {expected} transfers")]
    VerdictMismatch {
        /// Transfers in the block.
        expected: usize,
        /// Outcomes given.
        got: usize,
    },
    /// A transfer's signature does not verify.
    #[error("bad signature: transfer {index} ({id})")]
    BadSignature {
        /// Its position in the block.
        index: usize,
        /// Its id.
        id: Hash,
    },
    /// A transfer does not apply by the ledger rules.
    #[error("bad transfer: transfer {index} ({id}) does not apply: {rejection}")]
    BadTransfer {
        /// Its position in the block.
        index: usize,
        /// Its id.
        id: Hash,
        /// The rule it breaks.
        rejection: Rejection,
    },
    /// The header's state root is not the state after replaying the block.
    #[error("state root mismatch: header says {got}, the replay gives {computed}")]
    StateRootMismatch {
        /// The root after the replay.
        computed: Hash,
        /// The header's.
        got: Hash,
    },
    /// Balances do not add up to the genesis supply.
    #[error("supply not conserved: balances total {got} units, the genesis supply is {expected}")]
    SupplyNotConserved {
        /// The genesis supply.
        expected: u64,
        /// What the balances add up to.
        got: u128,
    },
}

impl AuditFailure {
    /// A stable short code for the kind of failure, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditFailure::MissingBlock { .. } => "missing_block",
            AuditFailure::OutOfOrder { .. } => "out_of_order",
            AuditFailure::UnsupportedVersion(_)
            | AuditFailure::WrongNetwork { .. }
            | AuditFailure::UnknownProposer(_)
            | AuditFailure::TimestampNotIncreasing { .. } => "bad_header",
            AuditFailure::ParentMismatch { .. } | AuditFailure::TransfersRootMismatch { .. } => {
                "hash_mismatch"
            }
            AuditFailure::CertificateHeight { .. }
            | AuditFailure::CertificateBlock { .. }
            | AuditFailure::Certificate(_) => "bad_certificate",
            AuditFailure::TooManyTransfers { .. } | AuditFailure::TooManyBytes { .. } => {
                "block_too_large"
            }
            AuditFailure::VerdictMismatch { .. } => "verdict_mismatch",
            AuditFailure::BadSignature { .. } => "bad_signature",
            AuditFailure::BadTransfer { .. } => "bad_transfer",
            AuditFailure::StateRootMismatch { .. } => "state_root_mismatch",
            AuditFailure::SupplyNotConserved { .. } => "supply_not_conserved",
        }
    }
}

/// The first failure found, and the height it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("height {height}: {failure}")]
pub struct AuditError {
    /// The height of the bad block (for a missing block, the height that is missing).
    pub height: u64,
    /// What is wrong (boxed: the error travels far and the failure is large).
    pub failure: Box<AuditFailure>,
}

/// What the blocks verified so far add up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSummary {
    /// Blocks verified.
    pub blocks: u64,
    /// Transfers replayed.
    pub transfers: u64,
    /// Accounts in the state (every account ever written, genesis ones included).
    pub accounts: usize,
    /// The state root after the last verified block (the genesis state's without blocks).
    pub state_root: Hash,
    /// The sum of all balances, counted account by account.
    pub total_supply: u128,
    /// The highest certified height verified; 0 when no block was.
    pub height: u64,
    /// The hash of the block at that height, if any.
    pub head: Option<Hash>,
}

/// One block and what was computed about it, however it was computed.
struct Parts<'a> {
    certified: &'a CertifiedBlock,
    hash: Hash,
    encoded_len: usize,
    transfers_root: Hash,
    verdict: &'a SignatureVerdict,
}

/// Checks certified blocks one after another from genesis; see the module documentation.
pub struct Auditor {
    genesis: Genesis,
    network_id: Hash,
    validators: ValidatorSet,
    ledger: Ledger,
    /// The last verified block's header and hash.
    tip: Option<(BlockHeader, Hash)>,
    blocks: u64,
    transfers: u64,
}

impl Auditor {
    /// An auditor at the genesis state. The genesis is validated again here, as an auditor
    /// takes nothing on trust.
    pub fn new(genesis: &Genesis) -> Result<Auditor, AuditSetupError> {
        genesis.validate()?;
        let keys = genesis.validators.iter().map(|v| v.key).collect();
        let validators = ValidatorSet::new(keys)?;
        Ok(Auditor {
            genesis: genesis.clone(),
            network_id: genesis.network_id(),
            validators,
            ledger: Ledger::from_genesis(genesis),
            tip: None,
            blocks: 0,
            transfers: 0,
        })
    }

    /// The genesis the chain starts from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The network id the blocks must carry.
    pub fn network_id(&self) -> Hash {
        self.network_id
    }

    /// The genesis validators, for computing [`SignatureVerdict`]s.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.tip.as_ref().map_or(1, |(tip, _)| tip.height + 1)
    }

    /// The ledger after the last verified block.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Checks the next block with signature outcomes the caller computed for exactly this
    /// block. On success the block becomes the new tip; on failure nothing changes.
    pub fn check(
        &mut self,
        certified: &CertifiedBlock,
        verdict: &SignatureVerdict,
    ) -> Result<(), AuditError> {
        let parts = Parts {
            certified,
            hash: certified.block.hash(),
            encoded_len: certified.block.encoded_len(),
            transfers_root: transfers_root(&certified.block.transfers),
            verdict,
        };
        self.check_parts(&parts)
    }

    /// Checks the next block, prepared by [`prepare_blocks`]: the same checks, in the same
    /// order, with the same outcome as [`Auditor::check`].
    pub fn check_prepared(&mut self, prepared: &PreparedBlock) -> Result<(), AuditError> {
        let parts = Parts {
            certified: &prepared.certified,
            hash: prepared.hash,
            encoded_len: prepared.encoded_len,
            transfers_root: prepared.transfers_root,
            verdict: &prepared.verdict,
        };
        self.check_parts(&parts)
    }

    fn check_parts(&mut self, parts: &Parts<'_>) -> Result<(), AuditError> {
        let height = self.next_height();
        let failed = |failure| AuditError {
            height,
            failure: Box::new(failure),
        };
        self.check_height(parts.certified.block.header.height)
            .map_err(failed)?;
        self.apply(parts).map_err(failed)
    }

    /// Checks the next block, verifying its signatures on the calling thread.
    pub fn check_verifying(&mut self, certified: &CertifiedBlock) -> Result<(), AuditError> {
        let verdict = SignatureVerdict::compute(certified, &self.network_id, &self.validators);
        self.check(certified, &verdict)
    }

    /// The summary of everything verified so far. Counts the supply account by account.
    pub fn summary(&self) -> AuditSummary {
        AuditSummary {
            blocks: self.blocks,
            transfers: self.transfers,
            accounts: self.ledger.account_count(),
            state_root: self.ledger.state_root(),
            total_supply: self.ledger.total_supply(),
            height: self.tip.as_ref().map_or(0, |(tip, _)| tip.height),
            head: self.tip.as_ref().map(|(_, hash)| *hash),
        }
    }

    /// The final summary, after checking once more, account by account, that the balances
    /// add up to the genesis supply.
    pub fn finish(&self) -> Result<AuditSummary, AuditError> {
        let summary = self.summary();
        let expected = self.genesis.total_supply();
        if summary.total_supply != u128::from(expected) {
            let failure = AuditFailure::SupplyNotConserved {
                expected,
                got: summary.total_supply,
            };
            let height = summary.height;
            let failure = Box::new(failure);
            return Err(AuditError { height, failure });
        }
        Ok(summary)
    }

    fn check_height(&self, got: u64) -> Result<(), AuditFailure> {
        let expected = self.next_height();
        if got > expected {
            return Err(AuditFailure::MissingBlock { expected, got });
        }
        if got < expected {
            return Err(AuditFailure::OutOfOrder { expected, got });
        }
        Ok(())
    }

    fn apply(&mut self, parts: &Parts<'_>) -> Result<(), AuditFailure> {
        let (block, verdict) = (&parts.certified.block, parts.verdict);
        self.check_header(&block.header)?;
        self.check_certificate(parts)?;
        self.check_contents(parts)?;

        // Replay from the state this auditor computed itself, never a state it was given.
        if verdict.transfers.len() != block.transfers.len() {
            return Err(AuditFailure::VerdictMismatch {
                expected: block.transfers.len(),
                got: verdict.transfers.len(),
            });
        }
        let replayed = self
            .ledger
            .replay_block_with_signatures(&block.transfers, &verdict.transfers)
            .map_err(|(index, rejection)| {
                let id = block.transfers[index].id();
                match rejection {
                    Rejection::BadSignature => AuditFailure::BadSignature { index, id },
                    rejection => AuditFailure::BadTransfer {
                        index,
                        id,
                        rejection,
                    },
                }
            })?;
        if block.header.state_root != replayed.state_root {
            return Err(AuditFailure::StateRootMismatch {
                computed: replayed.state_root,
                got: block.header.state_root,
            });
        }

        // Only the accounts the block wrote can have changed, so comparing their totals
        // before and after checks conservation without summing every account.
        let (before, after) = (replayed.written_before, replayed.written_after);
        if before != after {
            let expected = self.genesis.total_supply();
            // `before` is part of a total that was the genesis supply, so this cannot go
            // below zero; saturating keeps a broken invariant from becoming a panic.
            let got = (u128::from(expected) + after).saturating_sub(before);
            return Err(AuditFailure::SupplyNotConserved { expected, got });
        }

        self.ledger = replayed.ledger;
        self.tip = Some((block.header.clone(), parts.hash));
        self.blocks += 1;
        self.transfers += block.transfers.len() as u64;
        Ok(())
    }

    fn check_header(&self, header: &BlockHeader) -> Result<(), AuditFailure> {
        if header.version != BLOCK_VERSION {
            return Err(AuditFailure::UnsupportedVersion(header.version));
        }
        if header.network_id != self.network_id {
            return Err(AuditFailure::WrongNetwork {
                expected: self.network_id,
                got: header.network_id,
            });
        }
        let expected_parent = self.tip.as_ref().map_or(Hash::ZERO, |(_, hash)| *hash);
        if header.parent != expected_parent {
            return Err(AuditFailure::ParentMismatch {
                expected: expected_parent,
                got: header.parent,
            });
        }
        if self.validators.position(&header.proposer).is_none() {
            return Err(AuditFailure::UnknownProposer(header.proposer));
        }
        if let Some((parent, _)) = &self.tip
            && header.timestamp_ms <= parent.timestamp_ms
        {
            return Err(AuditFailure::TimestampNotIncreasing {
                parent: parent.timestamp_ms,
                got: header.timestamp_ms,
            });
        }
        Ok(())
    }

    fn check_certificate(&self, parts: &Parts<'_>) -> Result<(), AuditFailure> {
        let (certified, verdict) = (parts.certified, parts.verdict);
        let certificate = &certified.certificate;
        if certificate.height != certified.block.header.height {
            return Err(AuditFailure::CertificateHeight {
                got: certificate.height,
            });
        }
        let block = parts.hash;
        if certificate.block_hash != block {
            return Err(AuditFailure::CertificateBlock {
                certified: certificate.block_hash,
                block,
            });
        }
        verdict
            .certificate
            .clone()
            .map_err(AuditFailure::Certificate)
    }

    fn check_contents(&self, parts: &Parts<'_>) -> Result<(), AuditFailure> {
        let block = &parts.certified.block;
        let max = self.genesis.max_block_transfers;
        if block.transfers.len() > max as usize {
            let got = block.transfers.len();
            return Err(AuditFailure::TooManyTransfers { max, got });
        }
        let max = self.genesis.max_block_bytes;
        let got = parts.encoded_len;
        if got > max as usize {
            return Err(AuditFailure::TooManyBytes { max, got });
        }
        let computed = parts.transfers_root;
        if block.header.transfers_root != computed {
            return Err(AuditFailure::TransfersRootMismatch {
                computed,
                got: block.header.transfers_root,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::CommitCertificate;
    use crate::genesis::tests::sample;
    use crate::keys::SecretKey;
    use crate::transfer::{SignedTransfer, Transfer};

    #[test]
    fn prepared_parts_equal_the_block_own() {
        let genesis = sample();
        let network = genesis.network_id();
        let sender = SecretKey::from_seed(&[1; 32]);
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        // Memos across the one- and two-byte length prefixes, and sequences across varint
        // widths, so every length in the block's encoding is exercised.
        let transfers: Vec<SignedTransfer> = [0usize, 1, 127, 128, 140]
            .iter()
            .zip([1u64, 127, 128, 300, 70_000])
            .map(|(&memo, sequence)| {
                let body = Transfer::new(
                    network,
                    sender.public_key(),
                    receiver,
                    5,
                    1,
                    sequence,
                    "m".repeat(memo),
                );
                SignedTransfer::sign(body, &sender)
            })
            .collect();
        let header = BlockHeader {
            version: BLOCK_VERSION,
            network_id: network,
            height: 1,
            parent: Hash::ZERO,
            proposer: genesis.validators[0].key,
            timestamp_ms: 1,
            transfers_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        let empty = crate::block::Block {
            header: header.clone(),
            transfers: Vec::new(),
        };
        let full = crate::block::Block { header, transfers };
        let certificate = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: Hash::ZERO,
            signatures: Vec::new(),
        };
        let blocks: Vec<CertifiedBlock> = [empty, full]
            .into_iter()
            .map(|block| CertifiedBlock {
                block,
                certificate: certificate.clone(),
            })
            .collect();

        let validators = ValidatorSet::new(vec![genesis.validators[0].key]).expect("one");
        let prepared = prepare_blocks(blocks.clone(), &network, &validators);
        for (prepared, certified) in prepared.iter().zip(&blocks) {
            assert_eq!(prepared.certified(), certified);
            assert_eq!(prepared.hash, certified.block.hash());
            assert_eq!(prepared.encoded_len, certified.block.encoded_len());
            assert_eq!(
                prepared.transfers_root,
                transfers_root(&certified.block.transfers)
            );
            let alone = SignatureVerdict::compute(certified, &network, &validators);
            assert_eq!(prepared.verdict(), &alone);
        }
    }
}
