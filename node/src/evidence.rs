//! Equivocation evidence the consensus core has seen, kept for `GET /v1/evidence`.
//!
//! The consensus machine hands out each conflicting pair once; the core adds it here and
//! logs it. The log keeps the newest [`EVIDENCE_KEPT`] pairs in memory (a pair is a few
//! hundred bytes, so at most about half a MiB) and counts every pair ever seen, for the
//! `tally_evidence` metric. It does not survive a restart: the evidence is signed, so anyone
//! who needs it for good copies it from the API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use protocol::Hash;
use protocol::consensus::{Equivocation, Step};

/// The most pairs kept; older ones are dropped first.
pub const EVIDENCE_KEPT: usize = 1024;

/// The pairs seen, newest last, and how many there were in all.
#[derive(Debug, Default)]
pub struct EvidenceLog {
    kept: VecDeque<Equivocation>,
    seen: u64,
}

/// The evidence log shared by the core (writer) and the API (reader).
pub type SharedEvidence = Arc<Mutex<EvidenceLog>>;

impl EvidenceLog {
    /// Adds pairs the consensus machine reported, dropping the oldest beyond the bound.
    pub fn record(&mut self, pairs: impl IntoIterator<Item = Equivocation>) {
        for pair in pairs {
            if self.kept.len() == EVIDENCE_KEPT {
                self.kept.pop_front();
            }
            self.kept.push_back(pair);
            self.seen += 1;
        }
    }

    /// The pairs kept, oldest first.
    pub fn kept(&self) -> impl Iterator<Item = &Equivocation> {
        self.kept.iter()
    }

    /// Every pair seen since start, including those no longer kept.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// The step's name as the API and logs spell it.
pub fn step_name(step: Step) -> &'static str {
    match step {
        Step::Propose => "proposal",
        Step::Prevote => "prevote",
        Step::Precommit => "precommit",
    }
}

/// The signed payload bytes of both statements, as hex, first then second.
pub fn signed_bytes_hex(network_id: &Hash, pair: &Equivocation) -> (String, String) {
    let first = pair.payload(network_id, &pair.first).to_bytes();
    let second = pair.payload(network_id, &pair.second).to_bytes();
    (hex::encode(first), hex::encode(second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;
    use protocol::consensus::Statement;

    fn pair(round: u32) -> Equivocation {
        let key = SecretKey::from_seed(&[1; 32]);
        let statement = |block: Option<Hash>| Statement {
            block_hash: block,
            valid_round: None,
            signature: key.sign(b"not checked here"),
        };
        Equivocation {
            validator: key.public_key(),
            height: 3,
            round,
            step: Step::Prevote,
            first: statement(None),
            second: statement(Some(Hash([2; 32]))),
        }
    }

    #[test]
    fn keeps_the_newest_pairs_and_counts_all() {
        let mut log = EvidenceLog::default();
        log.record((0..EVIDENCE_KEPT as u32 + 5).map(pair));
        assert_eq!(log.seen(), EVIDENCE_KEPT as u64 + 5);
        let rounds: Vec<u32> = log.kept().map(|p| p.round).collect();
        assert_eq!(rounds.len(), EVIDENCE_KEPT);
        assert_eq!(rounds[0], 5);
        assert_eq!(rounds[EVIDENCE_KEPT - 1], EVIDENCE_KEPT as u32 + 4);
    }
}
