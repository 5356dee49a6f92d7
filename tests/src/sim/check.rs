//! The oracles: what must hold after every event, and by when the run must have progressed.
//!
//! Safety (checked at every decision, the only event that changes a chain):
//! - honest validators never decide different blocks at one height (agreement);
//! - every decided block carries a certificate that passes `CommitCertificate::verify`
//!   for exactly that block and height;
//! - each honest chain grows one height at a time, so, with agreement, honest chains are
//!   prefixes of one another.
//!
//! Resources (checked after every event on the node it touched): messages held per validator
//! stay under the state machine's bound.
//!
//! Liveness (from stabilisation on): every honest validator decides at least the next height
//! of the most advanced honest validator, each such decision within a bounded number of
//! rounds, and before a virtual-time deadline.

use std::collections::HashMap;
use std::fmt;

use protocol::Hash;
use protocol::consensus::{
    CommitCertificate, ConsensusValue, Equivocation, Height, Round, ValidatorSet,
};

use super::block::SimBlock;
use super::scenario::Scenario;

/// How long after stabilisation every honest validator has to reach its goal (virtual ms).
pub const LIVENESS_DEADLINE_MS: u64 = 120_000;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators decided different blocks at one height.
    Agreement {
        /// The height.
        height: Height,
        /// The block decided first.
        first: Hash,
        /// The different block decided later.
        second: Hash,
        /// The validator that decided `second`.
        node: usize,
    },
    /// A decided block's certificate does not verify, or is for another block or height.
    BadCertificate {
        /// The deciding validator.
        node: usize,
        /// The height.
        height: Height,
        /// What is wrong.
        error: String,
    },
    /// An honest validator decided a height that does not extend its chain.
    NotAPrefix {
        /// The validator.
        node: usize,
        /// The height it decided.
        height: Height,
        /// The height its chain needed next.
        expected: Height,
    },
    /// A validator holds more messages for one peer than its bound allows.
    Memory {
        /// The validator.
        node: usize,
        /// Messages held for its busiest peer.
        held: usize,
        /// The bound.
        bound: usize,
    },
    /// A validator reported equivocation evidence that does not verify, or that names an
    /// honest validator (which never signs two different messages for one step).
    FalseEvidence {
        /// The validator that reported it.
        node: usize,
        /// The validator it accuses.
        accused: usize,
        /// What is wrong.
        error: String,
    },
    /// After stabilisation, a decision took more rounds than the bound.
    TooManyRounds {
        /// The validator.
        node: usize,
        /// The height.
        height: Height,
        /// The round of the decision.
        round: Round,
        /// The bound.
        limit: Round,
    },
    /// After stabilisation, honest validators did not reach their goal by the deadline.
    Liveness {
        /// Validators behind, with their next height.
        behind: Vec<(usize, Height)>,
        /// The height they all had to decide.
        goal: Height,
    },
    /// Nothing was left to happen, which the gossip timers make impossible.
    Stalled {
        /// When the queue ran dry.
        at_ms: u64,
    },
}

impl Violation {
    /// Whether this breaks safety (as opposed to liveness or resources).
    pub fn is_safety(&self) -> bool {
        matches!(
            self,
            Violation::Agreement { .. }
                | Violation::BadCertificate { .. }
                | Violation::NotAPrefix { .. }
                | Violation::FalseEvidence { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                first,
                second,
                node,
            } => write!(
                f,
                "agreement broken at height {height}: validator {node} decided {second}, \
                 another honest validator decided {first}"
            ),
            Violation::BadCertificate {
                node,
                height,
                error,
            } => {
                write!(
                    f,
                    "validator {node} decided height {height} with a bad certificate: {error}"
                )
            }
            Violation::NotAPrefix {
                node,
                height,
                expected,
            } => write!(
                f,
                "validator {node} decided height {height} while its chain needed {expected}"
            ),
            Violation::Memory { node, held, bound } => {
                write!(
                    f,
                    "validator {node} holds {held} messages for one peer, bound {bound}"
                )
            }
            Violation::FalseEvidence {
                node,
                accused,
                error,
            } => write!(
                f,
                "validator {node} reported false evidence against validator {accused}: {error}"
            ),
            Violation::TooManyRounds {
                node,
                height,
                round,
                limit,
            } => write!(
                f,
                "after stabilisation validator {node} decided height {height} in round {round}, \
                 bound {limit}"
            ),
            Violation::Liveness { behind, goal } => write!(
                f,
                "not live: validators (position, next height) {behind:?} did not reach height \
                 {goal} within {LIVENESS_DEADLINE_MS} ms of stabilisation"
            ),
            Violation::Stalled { at_ms } => write!(f, "the event queue ran dry at {at_ms} ms"),
        }
    }
}

/// The state the oracles need, updated by the world as things happen.
pub struct Checker {
    honest: Vec<bool>,
    validators: ValidatorSet,
    network_id: Hash,
    decided: HashMap<Height, Hash>,
    /// Per validator, the highest height it decided.
    progress: Vec<Height>,
    heights_required: Height,
    stabilised_at: Option<u64>,
    goal: Height,
    /// Per height, the highest round an honest validator was in at stabilisation.
    round_at_stabilisation: HashMap<Height, Round>,
    extra_rounds: Round,
    violation: Option<Violation>,
    evidence_seen: u64,
}

impl Checker {
    /// A checker for the validators marked `honest`.
    pub fn new(
        honest: Vec<bool>,
        validators: ValidatorSet,
        network_id: Hash,
        scenario: &Scenario,
    ) -> Checker {
        let n = honest.len();
        Checker {
            honest,
            validators,
            network_id,
            decided: HashMap::new(),
            progress: vec![0; n],
            heights_required: scenario.heights,
            stabilised_at: None,
            goal: scenario.heights,
            round_at_stabilisation: HashMap::new(),
            // A full proposer rotation reaches the honest validator holding the most recent
            // polka, plus slack for getting everyone into the same round.
            extra_rounds: n as Round + 2,
            violation: None,
            evidence_seen: 0,
        }
    }

    /// The first violation recorded since the last call, as an error.
    pub fn take_violation(&mut self) -> Result<(), Violation> {
        match self.violation.take() {
            Some(violation) => Err(violation),
            None => Ok(()),
        }
    }

    fn fail(&mut self, violation: Violation) {
        if self.violation.is_none() {
            self.violation = Some(violation);
        }
    }

    /// Checks a decision of `node` at `height`.
    pub fn record_decision(
        &mut self,
        node: usize,
        height: Height,
        block: &SimBlock,
        certificate: &CommitCertificate,
    ) {
        self.progress[node] = self.progress[node].max(height);
        if !self.honest[node] {
            return;
        }

        let block_hash = block.hash();
        let verified = certificate.verify(&self.network_id, &self.validators);
        if let Err(error) = verified {
            self.fail(Violation::BadCertificate {
                node,
                height,
                error: error.to_string(),
            });
            return;
        }
        if certificate.block_hash != block_hash || certificate.height != height {
            let error = "the certificate is for another block or height".to_string();
            self.fail(Violation::BadCertificate {
                node,
                height,
                error,
            });
            return;
        }

        match self.decided.get(&height) {
            Some(first) if *first != block_hash => {
                let first = *first;
                self.fail(Violation::Agreement {
                    height,
                    first,
                    second: block_hash,
                    node,
                });
                return;
            }
            Some(_) => {}
            None => {
                self.decided.insert(height, block_hash);
            }
        }

        if self.stabilised_at.is_some() {
            let started = self
                .round_at_stabilisation
                .get(&height)
                .copied()
                .unwrap_or(0);
            let limit = started + self.extra_rounds;
            if certificate.round > limit {
                let round = certificate.round;
                self.fail(Violation::TooManyRounds {
                    node,
                    height,
                    round,
                    limit,
                });
            }
        }
    }

    /// An honest validator decided `height` while its chain needed `expected`.
    pub fn record_gap(&mut self, node: usize, height: Height, expected: Height) {
        self.fail(Violation::NotAPrefix {
            node,
            height,
            expected,
        });
    }

    /// Checks a piece of evidence `node` reported: it verifies, and its signer is faulty.
    pub fn record_evidence(&mut self, node: usize, evidence: &Equivocation) {
        let accused = self
            .validators
            .position(&evidence.validator)
            .unwrap_or(usize::MAX);
        let error = match evidence.verify(&self.network_id, &self.validators) {
            Err(error) => error.to_string(),
            Ok(()) if self.honest.get(accused) == Some(&true) => {
                "an honest validator never equivocates".to_string()
            }
            Ok(()) => {
                self.evidence_seen += 1;
                return;
            }
        };
        self.fail(Violation::FalseEvidence {
            node,
            accused,
            error,
        });
    }

    /// Verified pieces of evidence reported so far.
    pub fn evidence_seen(&self) -> u64 {
        self.evidence_seen
    }

    /// Checks the memory of `node`'s instances: (held, bound) each.
    pub fn check_node(&mut self, node: usize, memory: &[(usize, usize)]) -> Result<(), Violation> {
        for &(held, bound) in memory {
            if held > bound {
                self.fail(Violation::Memory { node, held, bound });
            }
        }
        self.take_violation()
    }

    /// The network stabilised at `now`; `positions` holds each validator's (height, round).
    pub fn stabilised(&mut self, now: u64, positions: &[(Height, Round)]) {
        self.stabilised_at = Some(now);
        for (node, &(height, round)) in positions.iter().enumerate() {
            if !self.honest[node] {
                continue;
            }
            let entry = self.round_at_stabilisation.entry(height).or_insert(0);
            *entry = (*entry).max(round);
            self.goal = self.goal.max(height);
        }
        self.goal = self.goal.max(self.heights_required);
    }

    /// Whether the run has shown everything it has to.
    pub fn finished(&self) -> bool {
        self.stabilised_at.is_some()
            && self
                .progress
                .iter()
                .zip(&self.honest)
                .all(|(done, honest)| !honest || *done >= self.goal)
    }

    /// Fails the run if the liveness deadline has passed.
    pub fn check_deadline(&self, now: u64) -> Result<(), Violation> {
        let Some(at) = self.stabilised_at else {
            return Ok(());
        };
        if now <= at + LIVENESS_DEADLINE_MS {
            return Ok(());
        }
        let behind = (0..self.honest.len())
            .filter(|node| self.honest[*node] && self.progress[*node] < self.goal)
            .map(|node| (node, self.progress[node] + 1))
            .collect();
        Err(Violation::Liveness {
            behind,
            goal: self.goal,
        })
    }
}
