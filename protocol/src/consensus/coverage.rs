//! Counters of which pseudocode rules fired, so tests can show that every rule was exercised.
//!
//! Counting is a few array increments per rule, cheap enough to leave on in production, where
//! the node can export the counters as metrics.

/// A rule (or one branch of a rule) of Algorithm 1, named with its line numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// L11-13: a round starts.
    StartRound,
    /// L15-16, L19: the proposer re-proposes its valid value.
    ProposeValidValue,
    /// L18-19: the proposer proposes a fresh value from the caller.
    ProposeNewValue,
    /// L22-24: prevote a fresh proposal.
    PrevoteProposal,
    /// L22, L25-26: prevote nil on a fresh proposal (invalid, or locked on another block).
    PrevoteNilOnProposal,
    /// L28-30: prevote a re-proposal backed by a prevote quorum in its valid round.
    PrevoteReproposal,
    /// L28, L31-32: prevote nil on a re-proposal (invalid, or locked later on another block).
    PrevoteNilOnReproposal,
    /// L29: prevote a re-proposal although locked on another block, because the proposal's
    /// valid round is at or above the lock's round (unlocking).
    UnlockThroughValidRound,
    /// L34-35: a prevote quorum for anything starts the prevote timeout.
    ScheduleTimeoutPrevote,
    /// L36-41: lock on the block a quorum prevoted and precommit it.
    Lock,
    /// L36, L42-43: record the block a quorum prevoted as the valid value.
    UpdateValidValue,
    /// L44-46: precommit nil after a nil prevote quorum.
    PrecommitNil,
    /// L47-48: a precommit quorum for anything starts the precommit timeout.
    ScheduleTimeoutPrecommit,
    /// L49-54: decide the block a quorum precommitted.
    Decide,
    /// L55-56: skip to a higher round that f + 1 validators are in.
    RoundSkip,
    /// L57-60: the propose timeout fires in its step: prevote nil.
    TimeoutPropose,
    /// L61-64: the prevote timeout fires in its step: precommit nil.
    TimeoutPrevote,
    /// L65-67: the precommit timeout fires: start the next round.
    TimeoutPrecommit,
    /// Outside the paper: decide from a commit certificate fetched by block sync.
    CommitFromCertificate,
    /// Outside the paper: a second, different message from one validator kept as evidence.
    Equivocation,
}

impl Rule {
    /// Every rule, in table order.
    pub const ALL: [Rule; 20] = [
        Rule::StartRound,
        Rule::ProposeValidValue,
        Rule::ProposeNewValue,
        Rule::PrevoteProposal,
        Rule::PrevoteNilOnProposal,
        Rule::PrevoteReproposal,
        Rule::PrevoteNilOnReproposal,
        Rule::UnlockThroughValidRound,
        Rule::ScheduleTimeoutPrevote,
        Rule::Lock,
        Rule::UpdateValidValue,
        Rule::PrecommitNil,
        Rule::ScheduleTimeoutPrecommit,
        Rule::Decide,
        Rule::RoundSkip,
        Rule::TimeoutPropose,
        Rule::TimeoutPrevote,
        Rule::TimeoutPrecommit,
        Rule::CommitFromCertificate,
        Rule::Equivocation,
    ];

    /// The paper's line numbers for this rule, for tables.
    pub fn lines(self) -> &'static str {
        match self {
            Rule::StartRound => "L11-13",
            Rule::ProposeValidValue => "L16",
            Rule::ProposeNewValue => "L18",
            Rule::PrevoteProposal => "L24",
            Rule::PrevoteNilOnProposal => "L26",
            Rule::PrevoteReproposal => "L30",
            Rule::PrevoteNilOnReproposal => "L32",
            Rule::UnlockThroughValidRound => "L29",
            Rule::ScheduleTimeoutPrevote => "L34",
            Rule::Lock => "L36-41",
            Rule::UpdateValidValue => "L42-43",
            Rule::PrecommitNil => "L44",
            Rule::ScheduleTimeoutPrecommit => "L47",
            Rule::Decide => "L49",
            Rule::RoundSkip => "L55",
            Rule::TimeoutPropose => "L57",
            Rule::TimeoutPrevote => "L61",
            Rule::TimeoutPrecommit => "L65",
            Rule::CommitFromCertificate => "sync",
            Rule::Equivocation => "evidence",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How often each rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Coverage {
    counts: [u64; Rule::ALL.len()],
}

impl Coverage {
    /// Counts one firing of `rule`.
    pub fn hit(&mut self, rule: Rule) {
        self.counts[rule.index()] += 1;
    }

    /// How often `rule` fired.
    pub fn count(&self, rule: Rule) -> u64 {
        self.counts[rule.index()]
    }

    /// Adds another counter set into this one.
    pub fn add(&mut self, other: &Coverage) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    /// The rules that never fired.
    pub fn missing(&self) -> Vec<Rule> {
        Rule::ALL
            .into_iter()
            .filter(|rule| self.count(*rule) == 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_indices_match_table_order() {
        for (index, rule) in Rule::ALL.into_iter().enumerate() {
            assert_eq!(rule.index(), index);
        }
    }

    #[test]
    fn counts_add_up_and_missing_lists_the_rest() {
        let mut a = Coverage::default();
        a.hit(Rule::Lock);
        let mut b = Coverage::default();
        b.hit(Rule::Lock);
        b.hit(Rule::Decide);
        a.add(&b);
        assert_eq!((a.count(Rule::Lock), a.count(Rule::Decide)), (2, 1));
        assert_eq!(a.missing().len(), Rule::ALL.len() - 2);
    }
}
