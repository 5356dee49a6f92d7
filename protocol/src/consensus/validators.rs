//! The validator set: who may vote, how many make a quorum, and who proposes when.
//!
//! The set is fixed at genesis. Its order matters: the proposer for (height, round) is the
//! validator at position `(height + round) mod n`, so every node computes the same rotation
//! from the genesis file alone.

use std::collections::HashMap;

use crate::keys::PublicKey;

use super::{Height, Round};

/// Why a list of keys is not a usable validator set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// Consensus needs at least one validator.
    #[error("the validator set is empty")]
    Empty,
    /// The same key appears twice, which would give its holder two votes.
    #[error("validator {0} appears more than once")]
    Duplicate(PublicKey),
    /// More validators than a vote index can name.
    #[error("at most {max} validators are supported, got {got}")]
    TooMany {
        /// The number of keys given.
        got: usize,
        /// The largest supported set.
        max: usize,
    },
}

/// The genesis validators, in genesis order, with equal voting weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<PublicKey>,
    positions: HashMap<PublicKey, usize>,
}

impl ValidatorSet {
    /// The largest set supported; far above the 4 to ~20 operators Tally is designed for.
    pub const MAX_VALIDATORS: usize = 1024;

    /// Builds the set from the genesis list; the list's order is the proposer rotation.
    pub fn new(keys: Vec<PublicKey>) -> Result<ValidatorSet, ValidatorSetError> {
        if keys.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if keys.len() > Self::MAX_VALIDATORS {
            let max = Self::MAX_VALIDATORS;
            return Err(ValidatorSetError::TooMany {
                got: keys.len(),
                max,
            });
        }

        let mut positions = HashMap::with_capacity(keys.len());
        for (position, key) in keys.iter().enumerate() {
            if positions.insert(*key, position).is_some() {
                return Err(ValidatorSetError::Duplicate(*key));
            }
        }
        Ok(ValidatorSet { keys, positions })
    }

    /// The number of validators, n.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set has at least one validator. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// floor(2n/3) + 1: any two quorums share at least one honest validator when at most
    /// f = n - quorum validators are faulty.
    pub fn quorum(&self) -> usize {
        2 * self.len() / 3 + 1
    }

    /// n - quorum + 1 (f + 1 when n = 3f + 1): so many distinct validators in a higher round
    /// include at least one honest validator, so following them is safe.
    pub fn skip_threshold(&self) -> usize {
        self.len() - self.quorum() + 1
    }

    /// The number of faulty validators the set tolerates: n - quorum.
    pub fn max_faulty(&self) -> usize {
        self.len() - self.quorum()
    }

    /// The proposer for (height, round): genesis position `(height + round) mod n`.
    pub fn proposer(&self, height: Height, round: Round) -> &PublicKey {
        &self.keys[self.proposer_position(height, round)]
    }

    /// The genesis position of the proposer for (height, round).
    pub fn proposer_position(&self, height: Height, round: Round) -> usize {
        let n = self.len() as u64;
        ((height % n + u64::from(round) % n) % n) as usize
    }

    /// The genesis position of `key`, or `None` if it is not a validator.
    pub fn position(&self, key: &PublicKey) -> Option<usize> {
        self.positions.get(key).copied()
    }

    /// The key at genesis position `position`.
    pub fn get(&self, position: usize) -> Option<&PublicKey> {
        self.keys.get(position)
    }

    /// The keys in genesis order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn set(n: u8) -> ValidatorSet {
        let keys = (0..n)
            .map(|i| SecretKey::from_seed(&[i; 32]).public_key())
            .collect();
        ValidatorSet::new(keys).expect("distinct keys")
    }

    #[test]
    fn quorum_and_skip_threshold_follow_the_design_formula() {
        let expected = [
            (1, 1, 1),
            (3, 3, 1),
            (4, 3, 2),
            (5, 4, 2),
            (6, 5, 2),
            (7, 5, 3),
        ];
        for (n, quorum, skip) in expected {
            let validators = set(n);
            assert_eq!(validators.quorum(), quorum, "quorum for n = {n}");
            assert_eq!(
                validators.skip_threshold(),
                skip,
                "skip threshold for n = {n}"
            );
        }
    }

    #[test]
    fn any_two_quorums_overlap_in_more_than_the_faulty_count() {
        for n in 1..=40u8 {
            let validators = set(n);
            let overlap = 2 * validators.quorum() - usize::from(n);
            assert!(overlap > validators.max_faulty(), "n = {n}");
        }
    }

    #[test]
    fn proposer_rotates_in_genesis_order() {
        let validators = set(4);
        assert_eq!(validators.proposer(0, 0), &validators.keys()[0]);
        assert_eq!(validators.proposer(1, 0), &validators.keys()[1]);
        assert_eq!(validators.proposer(1, 3), &validators.keys()[0]);
        assert_eq!(
            validators.proposer(u64::MAX, u32::MAX),
            validators.proposer(u64::MAX, 3)
        );
    }

    #[test]
    fn duplicate_and_empty_sets_are_rejected() {
        let key = SecretKey::from_seed(&[1; 32]).public_key();
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert_eq!(
            ValidatorSet::new(vec![key, key]),
            Err(ValidatorSetError::Duplicate(key))
        );
    }
}
