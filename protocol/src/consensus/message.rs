//! Consensus messages, the exact bytes a validator signs, and their one-time verification.
//!
//! A validator signs postcard bytes of [`SigningPayload`]: a domain tag, a format version, the
//! network id, then height, round, step, the block hash (or nil) and, for a proposal, its
//! valid round. A proposal signs its block's hash, not the block, so a precommit, a prevote
//! and a proposal for the same block differ only in their step byte. A precommit signs
//! exactly the fields a [`CommitCertificate`](super::CommitCertificate) stores, which is what
//! lets anyone check a certificate without the votes it came from.
//!
//! Checking a signature costs far more than everything else the state machine does with a
//! message, so it happens once: [`SignedMessage::verify`] is the only way to build a
//! [`Verified`] message, and the state machine accepts nothing else. A node verifies off its
//! network task; the simulator verifies each message once and delivers clones.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::{PublicKey, SecretKey, Signature};

use super::validators::ValidatorSet;
use super::{ConsensusValue, Height, Round};

/// The first bytes of everything a validator signs for consensus, so a consensus signature
/// can never be replayed as a transfer signature or anything else.
pub const DOMAIN_TAG: [u8; 16] = *b"tally/consensus\0";

/// The version of [`SigningPayload`]; a change of layout gets a new number.
pub const SIGNING_VERSION: u8 = 1;

/// A step of a round: which kind of message a validator sends in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// The proposer sends its block; others wait for it.
    Propose,
    /// Validators vote on the proposal (or nil).
    Prevote,
    /// Validators vote to commit what a quorum prevoted (or nil).
    Precommit,
}

/// The two kinds of vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// A first-phase vote.
    Prevote,
    /// A second-phase vote; a quorum of them for one block commits it.
    Precommit,
}

impl VoteKind {
    /// The step this vote is sent in.
    pub fn step(self) -> Step {
        match self {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }
}

/// The bytes a validator signs, before postcard encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningPayload {
    /// Always [`DOMAIN_TAG`].
    pub domain: [u8; 16],
    /// Always [`SIGNING_VERSION`].
    pub version: u8,
    /// The network this message belongs to, so it cannot be replayed on another network.
    pub network_id: Hash,
    /// The height voted on.
    pub height: Height,
    /// The round voted in.
    pub round: Round,
    /// Which message this is.
    pub step: Step,
    /// The block voted for or proposed; `None` is a nil vote.
    pub block_hash: Option<Hash>,
    /// For a proposal, the round of the prevote quorum that justifies re-proposing the
    /// block (`None` is the paper's -1); always `None` for votes.
    pub valid_round: Option<Round>,
}

impl SigningPayload {
    /// The payload of one message, with the domain tag and version every payload carries.
    pub fn new(
        network_id: Hash,
        (height, round): (Height, Round),
        step: Step,
        block_hash: Option<Hash>,
        valid_round: Option<Round>,
    ) -> SigningPayload {
        SigningPayload {
            domain: DOMAIN_TAG,
            version: SIGNING_VERSION,
            network_id,
            height,
            round,
            step,
            block_hash,
            valid_round,
        }
    }

    /// The canonical postcard bytes that get signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("encoding fixed-size fields into a Vec cannot fail")
    }
}

/// The bytes a precommit signs; also what a commit certificate's signatures are checked on.
pub fn precommit_signing_bytes(
    network_id: &Hash,
    height: Height,
    round: Round,
    block_hash: Option<Hash>,
) -> Vec<u8> {
    let vote = Vote {
        kind: VoteKind::Precommit,
        height,
        round,
        block_hash,
    };
    vote.payload(network_id).to_bytes()
}

/// A prevote or precommit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The height voted on.
    pub height: Height,
    /// The round voted in.
    pub round: Round,
    /// The block voted for, or `None` for nil.
    pub block_hash: Option<Hash>,
}

impl Vote {
    /// What this vote's signature covers.
    pub fn payload(&self, network_id: &Hash) -> SigningPayload {
        SigningPayload::new(
            *network_id,
            (self.height, self.round),
            self.kind.step(),
            self.block_hash,
            None,
        )
    }
}

/// A proposer's block for (height, round), with the round in which a quorum prevoted it if
/// it is a re-proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal<V> {
    /// The height proposed for.
    pub height: Height,
    /// The round proposed in.
    pub round: Round,
    /// The proposed block.
    pub value: V,
    /// `Some(vr)` when re-proposing a block that a quorum prevoted in round `vr < round`;
    /// `None` (the paper's -1) for a fresh block.
    pub valid_round: Option<Round>,
}

impl<V: ConsensusValue> Proposal<V> {
    /// What this proposal's signature covers: the block's hash, not the block.
    pub fn payload(&self, network_id: &Hash) -> SigningPayload {
        SigningPayload::new(
            *network_id,
            (self.height, self.round),
            Step::Propose,
            Some(self.value.hash()),
            self.valid_round,
        )
    }
}

/// Any consensus message, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<V> {
    /// A block proposal.
    Proposal(Proposal<V>),
    /// A prevote or precommit.
    Vote(Vote),
}

impl<V: ConsensusValue> Message<V> {
    /// The height the message is about.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(proposal) => proposal.height,
            Message::Vote(vote) => vote.height,
        }
    }

    /// The round the message was sent in.
    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(proposal) => proposal.round,
            Message::Vote(vote) => vote.round,
        }
    }

    /// The step the message was sent in.
    pub fn step(&self) -> Step {
        match self {
            Message::Proposal(_) => Step::Propose,
            Message::Vote(vote) => vote.kind.step(),
        }
    }

    /// What the message's signature covers.
    pub fn payload(&self, network_id: &Hash) -> SigningPayload {
        match self {
            Message::Proposal(proposal) => proposal.payload(network_id),
            Message::Vote(vote) => vote.payload(network_id),
        }
    }
}

/// A message with its signer and signature, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage<V> {
    /// The message.
    pub message: Message<V>,
    /// The validator that signed it.
    pub signer: PublicKey,
    /// The signer's signature over `message.payload(network_id)`.
    pub signature: Signature,
}

/// Why a received message is rejected before it reaches the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The signer is not a genesis validator.
    #[error("signer {0} is not a validator")]
    UnknownSigner(PublicKey),
    /// A proposal signed by someone other than the proposer of its height and round.
    #[error("{signer} is not the proposer for height {height} round {round}")]
    NotTheProposer {
        /// Who signed it.
        signer: PublicKey,
        /// The proposal's height.
        height: Height,
        /// The proposal's round.
        round: Round,
    },
    /// A proposal whose valid round is not below its round, which no honest proposer sends.
    #[error("valid round {valid_round} is not below the proposal's round {round}")]
    ValidRoundNotBelowRound {
        /// The proposal's round.
        round: Round,
        /// Its claimed valid round.
        valid_round: Round,
    },
    /// The signature does not verify over the message's payload on this network.
    #[error("the signature of {0} does not verify")]
    BadSignature(PublicKey),
    /// The wire bytes are not a message.
    #[error("malformed message bytes: {0}")]
    Malformed(String),
    /// The wire bytes have bytes left after the message.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
    /// The wire bytes are longer than the caller allows.
    #[error("message of {size} bytes, the most allowed is {max}")]
    TooLarge {
        /// The message's length.
        size: usize,
        /// The bound.
        max: usize,
    },
}

impl<V: ConsensusValue> SignedMessage<V> {
    /// Signs `message` for `network_id` with `key`.
    pub fn sign(network_id: &Hash, key: &SecretKey, message: Message<V>) -> SignedMessage<V> {
        let signature = key.sign(&message.payload(network_id).to_bytes());
        SignedMessage {
            message,
            signer: key.public_key(),
            signature,
        }
    }

    /// Checks the signer, the proposer rule and the signature, once; the only way to build
    /// a [`Verified`] message.
    pub fn verify(
        self,
        network_id: &Hash,
        validators: &ValidatorSet,
    ) -> Result<Verified<SignedMessage<V>>, MessageError> {
        if validators.position(&self.signer).is_none() {
            return Err(MessageError::UnknownSigner(self.signer));
        }

        if let Message::Proposal(proposal) = &self.message {
            let (height, round) = (proposal.height, proposal.round);
            if validators.proposer(height, round) != &self.signer {
                return Err(MessageError::NotTheProposer {
                    signer: self.signer,
                    height,
                    round,
                });
            }
            if let Some(valid_round) = proposal.valid_round.filter(|vr| *vr >= round) {
                return Err(MessageError::ValidRoundNotBelowRound { round, valid_round });
            }
        }

        // The signature check goes last because it is by far the most expensive.
        let bytes = self.message.payload(network_id).to_bytes();
        self.signature
            .verify(&self.signer, &bytes)
            .map_err(|_| MessageError::BadSignature(self.signer))?;
        Ok(Verified(self))
    }
}

impl<V: Serialize> SignedMessage<V> {
    /// The wire bytes (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("encoding a message into a Vec cannot fail")
    }
}

impl<V: for<'de> Deserialize<'de>> SignedMessage<V> {
    /// Parses wire bytes of at most `max_bytes`; the result still has to be
    /// [`verify`](SignedMessage::verify)-ed.
    ///
    /// The size is checked before decoding: it bounds the block inside a proposal, and with
    /// it what decoding may allocate. The node passes its genesis `max_block_bytes` plus room
    /// for the message's own fields; a proposal within that bound can still carry a block
    /// the ledger rules refuse, which the verdict catches.
    pub fn from_bytes(bytes: &[u8], max_bytes: usize) -> Result<SignedMessage<V>, MessageError> {
        if bytes.len() > max_bytes {
            return Err(MessageError::TooLarge {
                size: bytes.len(),
                max: max_bytes,
            });
        }
        let (message, rest) = postcard::take_from_bytes(bytes)
            .map_err(|error| MessageError::Malformed(error.to_string()))?;
        if !rest.is_empty() {
            return Err(MessageError::TrailingBytes(rest.len()));
        }
        Ok(message)
    }
}

/// A value whose signature has been checked. Only [`SignedMessage::verify`] (and the state
/// machine, for messages it signed itself) can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Wraps a value this crate just signed itself, so there is nothing to check.
    pub(crate) fn signed_here(value: T) -> Verified<T> {
        Verified(value)
    }

    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Unwraps the verified value, for sending or storing it.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::test_support::{TestValue, validators_and_keys};

    const NETWORK: Hash = Hash([7; 32]);

    fn prevote(height: Height, round: Round, block: Option<Hash>) -> Message<TestValue> {
        Message::Vote(Vote {
            kind: VoteKind::Prevote,
            height,
            round,
            block_hash: block,
        })
    }

    #[test]
    fn payload_starts_with_the_domain_tag_version_and_network_id() {
        let bytes = precommit_signing_bytes(&NETWORK, 3, 1, Some(Hash([9; 32])));
        assert_eq!(&bytes[..16], &DOMAIN_TAG);
        assert_eq!(bytes[16], SIGNING_VERSION);
        assert_eq!(&bytes[17..49], &NETWORK.0);
    }

    #[test]
    fn precommit_bytes_are_pinned_field_by_field() {
        // Changing this layout invalidates every stored certificate: bump SIGNING_VERSION.
        let mut expected = b"tally/consensus\0".to_vec();
        expected.push(1); // version
        expected.extend_from_slice(&[7; 32]); // network id
        expected.extend_from_slice(&[3, 1, 2]); // height 3, round 1, step precommit
        expected.push(1); // Some(block hash)
        expected.extend_from_slice(&[9; 32]);
        expected.push(0); // no valid round
        assert_eq!(
            precommit_signing_bytes(&NETWORK, 3, 1, Some(Hash([9; 32]))),
            expected
        );
    }

    #[test]
    fn a_signed_vote_verifies_once_and_only_on_its_network() {
        let (validators, keys) = validators_and_keys(4);
        let signed = SignedMessage::sign(&NETWORK, &keys[1], prevote(1, 0, None));

        assert!(signed.clone().verify(&NETWORK, &validators).is_ok());
        let other_network = Hash([8; 32]);
        assert_eq!(
            signed.verify(&other_network, &validators),
            Err(MessageError::BadSignature(keys[1].public_key()))
        );
    }

    #[test]
    fn a_vote_changed_after_signing_is_rejected() {
        let (validators, keys) = validators_and_keys(4);
        let mut signed = SignedMessage::sign(&NETWORK, &keys[1], prevote(1, 0, None));
        signed.message = prevote(1, 1, None);
        assert!(matches!(
            signed.verify(&NETWORK, &validators),
            Err(MessageError::BadSignature(_))
        ));
    }

    #[test]
    fn outsiders_and_wrong_proposers_are_rejected() {
        let (validators, keys) = validators_and_keys(4);
        let outsider = SecretKey::from_seed(&[200; 32]);
        let vote = SignedMessage::sign(&NETWORK, &outsider, prevote(1, 0, None));
        assert_eq!(
            vote.verify(&NETWORK, &validators),
            Err(MessageError::UnknownSigner(outsider.public_key()))
        );

        // The proposer of height 1, round 0 is position 1.
        let proposal = |round, valid_round| {
            let value = TestValue(5);
            Message::Proposal(Proposal {
                height: 1,
                round,
                value,
                valid_round,
            })
        };
        let wrong = SignedMessage::sign(&NETWORK, &keys[2], proposal(0, None));
        assert!(matches!(
            wrong.verify(&NETWORK, &validators),
            Err(MessageError::NotTheProposer { .. })
        ));
        let right = SignedMessage::sign(&NETWORK, &keys[1], proposal(0, None));
        assert!(right.verify(&NETWORK, &validators).is_ok());
        let future_polka = SignedMessage::sign(&NETWORK, &keys[2], proposal(1, Some(1)));
        assert_eq!(
            future_polka.verify(&NETWORK, &validators),
            Err(MessageError::ValidRoundNotBelowRound {
                round: 1,
                valid_round: 1
            })
        );
    }

    #[test]
    fn wire_bytes_round_trip_and_reject_trailing_bytes() {
        let (_, keys) = validators_and_keys(4);
        let signed = SignedMessage::sign(&NETWORK, &keys[0], prevote(2, 3, Some(Hash([1; 32]))));
        let mut bytes = signed.to_bytes();
        assert_eq!(
            SignedMessage::<TestValue>::from_bytes(&bytes, 1024),
            Ok(signed.clone())
        );
        bytes.push(0);
        assert_eq!(
            SignedMessage::<TestValue>::from_bytes(&bytes, 1024),
            Err(MessageError::TrailingBytes(1))
        );

        // The bound is checked first, at exactly the message's length.
        bytes.pop();
        let size = bytes.len();
        assert_eq!(
            SignedMessage::<TestValue>::from_bytes(&bytes, size),
            Ok(signed)
        );
        assert_eq!(
            SignedMessage::<TestValue>::from_bytes(&bytes, size - 1),
            Err(MessageError::TooLarge {
                size,
                max: size - 1
            })
        );
    }
}
