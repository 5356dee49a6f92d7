//! Timeout durations: a base and a per-round increment for each step.
//!
//! Tendermint is live only once timeouts outgrow the real message delay, which nobody knows
//! in advance; growing them with the round gets there eventually. The state machine only
//! computes durations and emits them in `ScheduleTimeout` actions: the caller owns the clock.

use serde::{Deserialize, Serialize};

use super::Round;

/// Which timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// Waiting for the proposal (paper: timeoutPropose).
    Propose,
    /// Waiting for prevotes after a prevote quorum for different things (timeoutPrevote).
    Prevote,
    /// Waiting for precommits after a precommit quorum for different things
    /// (timeoutPrecommit).
    Precommit,
}

/// Timeout durations in milliseconds: `base + increment * round` per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutConfig {
    /// Propose timeout in round 0, in milliseconds.
    pub propose_base_ms: u64,
    /// Added to the propose timeout per round, in milliseconds.
    pub propose_increment_ms: u64,
    /// Prevote timeout in round 0, in milliseconds.
    pub prevote_base_ms: u64,
    /// Added to the prevote timeout per round, in milliseconds.
    pub prevote_increment_ms: u64,
    /// Precommit timeout in round 0, in milliseconds.
    pub precommit_base_ms: u64,
    /// Added to the precommit timeout per round, in milliseconds.
    pub precommit_increment_ms: u64,
}

impl Default for TimeoutConfig {
    /// Values in the range Tendermint deployments use for a federation on the internet.
    fn default() -> TimeoutConfig {
        TimeoutConfig {
            propose_base_ms: 3_000,
            propose_increment_ms: 500,
            prevote_base_ms: 1_000,
            prevote_increment_ms: 500,
            precommit_base_ms: 1_000,
            precommit_increment_ms: 500,
        }
    }
}

impl TimeoutConfig {
    /// The duration of timeout `kind` in `round`, in milliseconds (saturating, never wraps).
    pub fn duration_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        let (base, increment) = match kind {
            TimeoutKind::Propose => (self.propose_base_ms, self.propose_increment_ms),
            TimeoutKind::Prevote => (self.prevote_base_ms, self.prevote_increment_ms),
            TimeoutKind::Precommit => (self.precommit_base_ms, self.precommit_increment_ms),
        };
        base.saturating_add(increment.saturating_mul(u64::from(round)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_with_the_round_and_saturate() {
        let config = TimeoutConfig::default();
        assert_eq!(config.duration_ms(TimeoutKind::Propose, 0), 3_000);
        assert_eq!(config.duration_ms(TimeoutKind::Propose, 2), 4_000);
        assert!(
            config.duration_ms(TimeoutKind::Prevote, 3)
                > config.duration_ms(TimeoutKind::Prevote, 2)
        );
        let huge = TimeoutConfig {
            precommit_increment_ms: u64::MAX,
            ..config
        };
        assert_eq!(huge.duration_ms(TimeoutKind::Precommit, 2), u64::MAX);
    }
}
