//! Tendermint consensus as a pure state machine, with its messages and commit certificates.
//!
//! # The protocol in one page
//!
//! n validators, fixed at genesis, agree on one block per height. At most f = n − quorum of
//! them may be faulty (Byzantine), where quorum = ⌊2n/3⌋ + 1; any two quorums then share an
//! honest validator. Each height runs in rounds 0, 1, 2, …; each round has three steps:
//!
//! 1. **Propose.** The round's proposer (genesis position `(height + round) mod n`) sends a
//!    block. If it saw a quorum prevote some block in an earlier round (its *valid value*), it
//!    re-proposes that block and names that round as the proposal's *valid round*.
//! 2. **Prevote.** Each validator prevotes the proposal if it is valid and the validator is
//!    not *locked* on a different block, or if the proposal's valid round is at least the
//!    lock's round (the quorum then proves the lock is outdated); otherwise it prevotes nil.
//! 3. **Precommit.** Seeing a quorum of prevotes for the proposed block (a *polka*), a
//!    validator locks on it and precommits it; seeing a quorum of nil prevotes, it precommits
//!    nil.
//!
//! A quorum of precommits for a block decides it, in whatever round they were sent; those
//! precommit signatures are the block's [`CommitCertificate`]. Timeouts, which grow with the
//! round, move a validator on when messages do not arrive, and seeing f + 1 validators in a
//! higher round makes it jump there. Safety comes from locks: once a quorum precommitted a
//! block in round r, a quorum is locked on it and no other block can gather a polka in a
//! later round. Liveness comes from valid values and growing timeouts: once messages arrive
//! in time, an honest proposer re-proposes the most recent polka's block and everyone can
//! accept it.
//!
//! # Reading the code
//!
//! - [`validators`]: the set, quorum, round-skip threshold and proposer rotation.
//! - [`message`]: what gets signed, and [`Verified`], the proof a signature was checked.
//! - [`certificate`]: the commit certificate and its single verification function.
//! - `log` (private): per-height message log: vote counting, equivocation evidence and
//!   the per-validator memory bound.
//! - [`machine`]: the state machine, one method per pseudocode rule, each labelled with the
//!   paper's line numbers (Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on
//!   BFT consensus", arXiv:1807.04938). Start at [`StateMachine::handle`].
//! - [`timeouts`] and [`coverage`]: timeout durations, and counters of which rules fired.
//!
//! Nothing here does I/O, reads a clock or draws randomness: the node drives the machine
//! over libp2p and sled, and the simulator in the `tally-tests` crate drives the very same
//! code with a seeded network.

pub mod certificate;
pub mod coverage;
pub mod evidence;
mod log;
pub mod machine;
pub mod message;
pub mod timeouts;
pub mod validators;

use std::fmt::Debug;

use crate::hash::Hash;

pub use certificate::{
    CertificateDecodeError, CertificateError, CommitCertificate, CommitSignature,
};
pub use coverage::{Coverage, Rule};
pub use evidence::{Equivocation, EvidenceError, Statement};
#[cfg(feature = "fault-injection")]
pub use machine::Fault;
pub use machine::{Action, Input, Params, RoundValue, SafetyState, StateMachine, Timeout};
pub use message::{Message, MessageError, Proposal, SignedMessage, Step, Verified, Vote, VoteKind};
pub use timeouts::{TimeoutConfig, TimeoutKind};
pub use validators::{ValidatorSet, ValidatorSetError};

/// A block height. Heights are chosen by the caller; the machine only ever adds one.
pub type Height = u64;

/// A round within a height, starting at 0.
pub type Round = u32;

/// What consensus agrees on: the node's block, or the simulator's test block.
///
/// Two values with the same hash are treated as the same value, so `hash` must be
/// collision-resistant over everything that makes a value (SHA-256 over its canonical bytes).
pub trait ConsensusValue: Clone + Eq + Debug {
    /// The value's identity, which votes and certificates refer to.
    fn hash(&self) -> Hash;
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures shared by this module's unit tests.

    use serde::{Deserialize, Serialize};

    use super::{ConsensusValue, ValidatorSet};
    use crate::hash::Hash;
    use crate::keys::SecretKey;

    /// A value that is just a number.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TestValue(pub u64);

    impl ConsensusValue for TestValue {
        fn hash(&self) -> Hash {
            Hash::digest(&self.0.to_be_bytes())
        }
    }

    /// `n` validators with keys from seeds 1..=n, and their secret keys in genesis order.
    pub fn validators_and_keys(n: u8) -> (ValidatorSet, Vec<SecretKey>) {
        let keys: Vec<SecretKey> = (1..=n).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(SecretKey::public_key).collect());
        (set.expect("distinct seeds give distinct keys"), keys)
    }
}
