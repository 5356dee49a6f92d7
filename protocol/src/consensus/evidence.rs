//! Equivocation evidence: two different messages one validator signed for the same height,
//! round and step. An honest validator never signs two, so the pair proves its signer faulty
//! to anyone holding the genesis file, whoever relays it.
//!
//! The evidence holds what the two signatures cover, not the messages: for a proposal that is
//! the block's hash, never the block, so a piece of evidence is a few hundred bytes however
//! large the blocks were.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::{PublicKey, Signature};

use super::message::{SigningPayload, Step};
use super::validators::ValidatorSet;
use super::{Height, Round};

/// One of the two statements: the fields of [`SigningPayload`] that differ between them, and
/// the signature over the whole payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The block proposed or voted for; `None` is a nil vote.
    pub block_hash: Option<Hash>,
    /// A proposal's valid round; `None` for votes and fresh proposals.
    pub valid_round: Option<Round>,
    /// The validator's signature over the payload.
    pub signature: Signature,
}

/// Two different signed statements by one validator for one (height, round, step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The validator that signed both.
    pub validator: PublicKey,
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The step: two proposals, two prevotes or two precommits.
    pub step: Step,
    /// The statement received first.
    pub first: Statement,
    /// The conflicting statement received second.
    pub second: Statement,
}

/// Why a piece of evidence proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The signer is not a genesis validator.
    #[error("{0} is not a validator")]
    UnknownSigner(PublicKey),
    /// Both statements say the same thing: signing it twice is no fault.
    #[error("the two statements are the same")]
    NotConflicting,
    /// A vote with a valid round, which no message carries.
    #[error("a vote carries no valid round")]
    Malformed,
    /// One of the signatures does not verify (0 = first, 1 = second).
    #[error("signature {0} does not verify")]
    BadSignature(u8),
}

impl Equivocation {
    /// The payload the statement's signature covers.
    pub fn payload(&self, network_id: &Hash, statement: &Statement) -> SigningPayload {
        SigningPayload::new(
            *network_id,
            (self.height, self.round),
            self.step,
            statement.block_hash,
            statement.valid_round,
        )
    }

    /// Checks that a genesis validator signed both statements and that they differ.
    pub fn verify(
        &self,
        network_id: &Hash,
        validators: &ValidatorSet,
    ) -> Result<(), EvidenceError> {
        if validators.position(&self.validator).is_none() {
            return Err(EvidenceError::UnknownSigner(self.validator));
        }
        let (first, second) = (&self.first, &self.second);
        if (first.block_hash, first.valid_round) == (second.block_hash, second.valid_round) {
            return Err(EvidenceError::NotConflicting);
        }
        let vote = self.step != Step::Propose;
        if vote && (first.valid_round.is_some() || second.valid_round.is_some()) {
            return Err(EvidenceError::Malformed);
        }
        for (index, statement) in [(0, first), (1, second)] {
            let bytes = self.payload(network_id, statement).to_bytes();
            statement
                .signature
                .verify(&self.validator, &bytes)
                .map_err(|_| EvidenceError::BadSignature(index))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::message::{Vote, VoteKind};
    use crate::consensus::test_support::validators_and_keys;
    use crate::keys::SecretKey;

    const NETWORK: Hash = Hash([7; 32]);

    fn double_prevote(key: &SecretKey) -> Equivocation {
        let statement = |block_hash| {
            let vote = Vote {
                kind: VoteKind::Prevote,
                height: 4,
                round: 1,
                block_hash,
            };
            Statement {
                block_hash,
                valid_round: None,
                signature: key.sign(&vote.payload(&NETWORK).to_bytes()),
            }
        };
        Equivocation {
            validator: key.public_key(),
            height: 4,
            round: 1,
            step: Step::Prevote,
            first: statement(Some(Hash([1; 32]))),
            second: statement(None),
        }
    }

    #[test]
    fn a_double_prevote_proves_its_signer_faulty_and_nothing_else_does() {
        let (validators, keys) = validators_and_keys(4);
        let evidence = double_prevote(&keys[2]);
        assert_eq!(evidence.verify(&NETWORK, &validators), Ok(()));
        assert_eq!(
            evidence.verify(&Hash([8; 32]), &validators),
            Err(EvidenceError::BadSignature(0))
        );

        let mut same = evidence;
        same.second = same.first;
        assert_eq!(
            same.verify(&NETWORK, &validators),
            Err(EvidenceError::NotConflicting)
        );

        // Someone else's name on the pair.
        let mut framed = evidence;
        framed.validator = keys[1].public_key();
        assert_eq!(
            framed.verify(&NETWORK, &validators),
            Err(EvidenceError::BadSignature(0))
        );

        // The same statements presented as precommits: signed bytes differ in the step.
        let mut moved = evidence;
        moved.step = Step::Precommit;
        assert_eq!(
            moved.verify(&NETWORK, &validators),
            Err(EvidenceError::BadSignature(0))
        );

        let mut flipped = evidence;
        flipped.second.signature.0[3] ^= 1;
        assert_eq!(
            flipped.verify(&NETWORK, &validators),
            Err(EvidenceError::BadSignature(1))
        );

        let outsider = double_prevote(&SecretKey::from_seed(&[99; 32]));
        assert_eq!(
            outsider.verify(&NETWORK, &validators),
            Err(EvidenceError::UnknownSigner(outsider.validator))
        );
    }
}
