//! The message log of one height: who proposed and voted what in each round, and the
//! evidence of validators that said two different things.
//!
//! The paper's rules are conditions over "the messages received so far"; this log answers
//! them without rescanning messages. A validator counts once per (round, step): a repeat of
//! the same vote is a duplicate and ignored, and a *different* second vote is kept once as
//! equivocation evidence. That second vote never adds to the step's validator count and never
//! lets one validator count twice for one block, but it does count for the block it names;
//! [`Tally`] explains why liveness needs that and why safety allows it.
//!
//! Memory is bounded per validator without discarding what is ahead. For rounds up to the
//! window top (the current round + 1) the log keeps each validator's proposal and votes; for a
//! round above it keeps only that validator's messages of its highest round seen, so a
//! validator that fell behind still learns that f + 1 others moved on (the round-skip rule)
//! and can count their votes once it gets there. A Byzantine validator flooding rounds far
//! ahead therefore costs one slot, not one per round. See [`HeightLog::held_bound`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use crate::hash::Hash;
use crate::keys::Signature;

use super::evidence::{Equivocation, Statement};
use super::message::{Message, SignedMessage, Verified, VoteKind};
use super::{ConsensusValue, Height, Round};

/// Messages kept per validator per round: two proposals (the first and one conflicting one
/// as evidence), two prevotes and two precommits (likewise).
const HELD_PER_ROUND_MAX: usize = 6;

/// What happened to a message offered to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Recorded and counted.
    Counted,
    /// Already had exactly this message.
    Duplicate,
    /// A second, different message for the same (round, step): kept as evidence only.
    Equivocation,
    /// Above the window: kept as the validator's highest-round message.
    Ahead,
    /// Not kept: a third conflicting message, or a round below one already kept above the
    /// window for that validator.
    Dropped,
}

/// A proposal as the rules need it; the block itself is in [`HeightLog::value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProposalRecord {
    /// The proposed block's hash.
    pub block_hash: Hash,
    /// The proposal's valid round (`None` is the paper's -1).
    pub valid_round: Option<Round>,
    /// The proposer's signature, kept for evidence.
    pub signature: Signature,
}

/// One step's votes in one round.
///
/// Each validator's first vote is its vote. A second, different vote is equivocation: it is
/// kept as evidence, never adds to the validator count of the step, and never makes the
/// validator count twice for one block. It does count for the block it names, as the paper's
/// rules count "2f + 1 prevotes for id(v)" over distinct senders of such a prevote: which of an
/// equivocator's two votes arrived first differs between validators, and if only the first
/// counted, a polka one honest validator saw could stay invisible to the others forever,
/// leaving a lock that no re-proposal can ever release. Safety does not suffer: two quorums
/// for different blocks in one round would still need more than f validators to vote twice.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Each validator's first vote (by genesis position), with its signature.
    first: Vec<Option<(Option<Hash>, Signature)>>,
    /// Each validator's second, conflicting vote, kept as evidence.
    second: Vec<Option<(Option<Hash>, Signature)>>,
    /// Distinct validators per block hash (or nil); a handful of entries at most.
    counts: Vec<(Option<Hash>, usize)>,
    /// Distinct validators that voted at all.
    total: usize,
}

impl Tally {
    fn new(n: usize) -> Tally {
        Tally {
            first: vec![None; n],
            second: vec![None; n],
            counts: vec![],
            total: 0,
        }
    }

    fn add(
        &mut self,
        position: usize,
        block_hash: Option<Hash>,
        signature: Signature,
        count_duplicates: bool,
    ) -> Inserted {
        let Some((first, _)) = self.first[position] else {
            self.first[position] = Some((block_hash, signature));
            self.total += 1;
            self.count(block_hash);
            return Inserted::Counted;
        };

        if first == block_hash {
            // Planted bug (fault injection only): a repeated vote counts again.
            if count_duplicates {
                self.total += 1;
                self.count(block_hash);
                return Inserted::Counted;
            }
            return Inserted::Duplicate;
        }
        match self.second[position] {
            Some((second, _)) if second == block_hash => Inserted::Duplicate,
            Some(_) => Inserted::Dropped,
            None => {
                self.second[position] = Some((block_hash, signature));
                self.count(block_hash);
                Inserted::Equivocation
            }
        }
    }

    fn count(&mut self, block_hash: Option<Hash>) {
        match self.counts.iter_mut().find(|(hash, _)| *hash == block_hash) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((block_hash, 1)),
        }
    }

    /// Distinct validators that voted for `block_hash` (or nil).
    pub fn count_for(&self, block_hash: Option<Hash>) -> usize {
        self.counts
            .iter()
            .find(|(hash, _)| *hash == block_hash)
            .map_or(0, |(_, count)| *count)
    }

    /// Distinct validators that voted for anything.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The block (not nil) with at least `quorum` votes, if any.
    pub fn block_with(&self, quorum: usize) -> Option<Hash> {
        self.counts
            .iter()
            .find_map(|(hash, count)| hash.filter(|_| *count >= quorum))
    }

    /// The signatures of validators that voted for `block_hash`, in genesis order.
    pub fn signers_for(&self, block_hash: Hash) -> Vec<(usize, Signature)> {
        let vote = Some(block_hash);
        let matching = |entry: &Option<(Option<Hash>, Signature)>| match entry {
            Some((hash, signature)) if *hash == vote => Some(*signature),
            _ => None,
        };
        self.first
            .iter()
            .zip(&self.second)
            .enumerate()
            .filter_map(|(position, (first, second))| {
                matching(first)
                    .or_else(|| matching(second))
                    .map(|s| (position, s))
            })
            .collect()
    }
}

/// Everything received for one round of a height.
#[derive(Debug, Clone)]
pub(crate) struct RoundLog {
    /// Proposals from this round's proposer: the first, then at most one conflicting one.
    pub proposals: Vec<ProposalRecord>,
    /// The round's prevotes.
    pub prevotes: Tally,
    /// The round's precommits.
    pub precommits: Tally,
}

impl RoundLog {
    fn new(n: usize) -> RoundLog {
        RoundLog {
            proposals: vec![],
            prevotes: Tally::new(n),
            precommits: Tally::new(n),
        }
    }
}

/// A validator's messages for its highest round above the window.
#[derive(Debug, Clone)]
struct AheadSlot<V> {
    round: Round,
    messages: Vec<Verified<SignedMessage<V>>>,
}

/// The message log of one height.
#[derive(Debug, Clone)]
pub(crate) struct HeightLog<V> {
    height: Height,
    /// Rounds up to this one are recorded in full.
    window_top: Round,
    rounds: BTreeMap<Round, RoundLog>,
    /// Every proposed block of this height, by hash.
    values: HashMap<Hash, V>,
    /// Blocks added since the state machine last asked, for verdict requests.
    fresh_values: Vec<Hash>,
    /// Per validator, its messages of its highest round above the window.
    ahead: Vec<Option<AheadSlot<V>>>,
    /// Per validator, the highest round it has sent anything in at this height.
    max_round: Vec<Option<Round>>,
    /// Per validator, how many of its messages the log holds.
    held: Vec<usize>,
    /// Conflicting pairs of messages not yet taken by the state machine.
    evidence: Vec<Equivocation>,
    /// Planted bug switch (fault injection only): count repeated votes again.
    count_duplicates: bool,
}

impl<V: ConsensusValue> HeightLog<V> {
    /// An empty log for `height` among `n` validators, recording rounds up to `window_top`.
    pub fn new(height: Height, n: usize, window_top: Round) -> HeightLog<V> {
        HeightLog {
            height,
            window_top,
            rounds: BTreeMap::new(),
            values: HashMap::new(),
            fresh_values: vec![],
            ahead: vec![None; n],
            max_round: vec![None; n],
            held: vec![0; n],
            evidence: vec![],
            count_duplicates: false,
        }
    }

    /// The height this log is for.
    pub fn height(&self) -> Height {
        self.height
    }

    /// Turns the planted duplicate-counting bug on or off.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    pub fn set_count_duplicates(&mut self, on: bool) {
        self.count_duplicates = on;
    }

    /// Records a verified message from the validator at genesis `position`.
    pub fn insert(&mut self, message: Verified<SignedMessage<V>>, position: usize) -> Inserted {
        let round = message.message.round();
        let highest = &mut self.max_round[position];
        *highest = Some(highest.map_or(round, |seen| seen.max(round)));

        if round <= self.window_top {
            return self.record(message, position);
        }
        self.keep_ahead(message, position)
    }

    /// Raises the window to `top`, recording the messages kept ahead that now fall inside.
    pub fn set_window(&mut self, top: Round) {
        self.window_top = top;
        for position in 0..self.ahead.len() {
            let inside = matches!(&self.ahead[position], Some(slot) if slot.round <= top);
            if !inside {
                continue;
            }
            let slot = self.ahead[position].take().expect("checked just above");
            self.held[position] -= slot.messages.len();
            for message in slot.messages {
                self.record(message, position);
            }
        }
    }

    fn keep_ahead(&mut self, message: Verified<SignedMessage<V>>, position: usize) -> Inserted {
        let round = message.message.round();
        match &mut self.ahead[position] {
            Some(slot) if slot.round > round => Inserted::Dropped,
            Some(slot) if slot.round == round => {
                if slot.messages.iter().any(|kept| kept.get() == message.get()) {
                    return Inserted::Duplicate;
                }
                if slot.messages.len() >= HELD_PER_ROUND_MAX {
                    return Inserted::Dropped;
                }
                slot.messages.push(message);
                self.held[position] += 1;
                Inserted::Ahead
            }
            slot => {
                let released = slot.as_ref().map_or(0, |old| old.messages.len());
                *slot = Some(AheadSlot {
                    round,
                    messages: vec![message],
                });
                self.held[position] = self.held[position] - released + 1;
                Inserted::Ahead
            }
        }
    }

    fn record(&mut self, message: Verified<SignedMessage<V>>, position: usize) -> Inserted {
        let round = message.message.round();
        let n = self.held.len();
        let round_log = self.rounds.entry(round).or_insert_with(|| RoundLog::new(n));

        let outcome = match &message.message {
            Message::Proposal(proposal) => {
                let record = ProposalRecord {
                    block_hash: proposal.value.hash(),
                    valid_round: proposal.valid_round,
                    signature: message.signature,
                };
                let same = |kept: &ProposalRecord| {
                    (kept.block_hash, kept.valid_round) == (record.block_hash, record.valid_round)
                };
                if round_log.proposals.iter().any(same) {
                    return Inserted::Duplicate;
                }
                if round_log.proposals.len() >= 2 {
                    return Inserted::Dropped;
                }
                round_log.proposals.push(record);
                if let Entry::Vacant(slot) = self.values.entry(record.block_hash) {
                    slot.insert(proposal.value.clone());
                    self.fresh_values.push(record.block_hash);
                }
                if round_log.proposals.len() == 2 {
                    Inserted::Equivocation
                } else {
                    Inserted::Counted
                }
            }
            Message::Vote(vote) => {
                let tally = match vote.kind {
                    VoteKind::Prevote => &mut round_log.prevotes,
                    VoteKind::Precommit => &mut round_log.precommits,
                };
                tally.add(
                    position,
                    vote.block_hash,
                    message.signature,
                    self.count_duplicates,
                )
            }
        };

        match outcome {
            Inserted::Counted => self.held[position] += 1,
            Inserted::Equivocation => {
                self.held[position] += 1;
                let evidence = self.equivocation(&message, round, position);
                self.evidence.extend(evidence);
            }
            _ => {}
        }
        outcome
    }

    /// The log of `round`, if anything was recorded for it.
    pub fn round(&self, round: Round) -> Option<&RoundLog> {
        self.rounds.get(&round)
    }

    /// Recorded rounds in increasing order.
    pub fn rounds(&self) -> impl Iterator<Item = (Round, &RoundLog)> {
        self.rounds.iter().map(|(round, log)| (*round, log))
    }

    /// The block with hash `block_hash`, if some proposal of this height carried it.
    pub fn value(&self, block_hash: &Hash) -> Option<&V> {
        self.values.get(block_hash)
    }

    /// Blocks first seen since the last call.
    pub fn take_fresh_values(&mut self) -> Vec<Hash> {
        std::mem::take(&mut self.fresh_values)
    }

    /// The round-skip target (paper line 55): the highest round r above `current` such that
    /// at least `threshold` validators sent something in round r or later.
    ///
    /// The paper asks for `threshold` messages of one round r. Keeping only each validator's
    /// highest round (to bound memory) cannot always show that, so this counts validators
    /// whose highest round is at least r. It is as safe: any `threshold` validators include
    /// an honest one, and an honest validator only sends in its own current round, so one
    /// honest validator has reached round r. Round skips never touch safety anyway.
    pub fn skip_target(&self, threshold: usize, current: Round) -> Option<Round> {
        let mut above: Vec<Round> = self
            .max_round
            .iter()
            .flatten()
            .copied()
            .filter(|round| *round > current)
            .collect();
        if threshold == 0 || above.len() < threshold {
            return None;
        }
        above.sort_unstable_by(|a, b| b.cmp(a));
        Some(above[threshold - 1])
    }

    /// The evidence recorded since the last call (at most one pair per validator, round
    /// and step, so bounded like the log).
    pub fn take_evidence(&mut self) -> Vec<Equivocation> {
        std::mem::take(&mut self.evidence)
    }

    /// The pair made by `second`, just recorded as conflicting with its signer's first
    /// message of the same round and step.
    fn equivocation(
        &self,
        second: &SignedMessage<V>,
        round: Round,
        position: usize,
    ) -> Option<Equivocation> {
        let round_log = self.rounds.get(&round)?;
        let (first, second_statement) = match &second.message {
            Message::Proposal(_) => {
                let [first, second] = round_log.proposals.as_slice() else {
                    return None;
                };
                let statement = |record: &ProposalRecord| Statement {
                    block_hash: Some(record.block_hash),
                    valid_round: record.valid_round,
                    signature: record.signature,
                };
                (statement(first), statement(second))
            }
            Message::Vote(vote) => {
                let tally = match vote.kind {
                    VoteKind::Prevote => &round_log.prevotes,
                    VoteKind::Precommit => &round_log.precommits,
                };
                let (block_hash, signature) = tally.first[position]?;
                let first = Statement {
                    block_hash,
                    valid_round: None,
                    signature,
                };
                let second = Statement {
                    block_hash: vote.block_hash,
                    valid_round: None,
                    signature: second.signature,
                };
                (first, second)
            }
        };
        Some(Equivocation {
            validator: second.signer,
            height: self.height,
            round,
            step: second.message.step(),
            first,
            second: second_statement,
        })
    }

    /// The most messages held for any one validator.
    pub fn held_max(&self) -> usize {
        self.held.iter().copied().max().unwrap_or(0)
    }

    /// The most messages this log may hold for one validator: a full set for every round up
    /// to the window top, plus the slot for its highest round above it. It grows only with
    /// the window, which moves with this validator's own round, never with what peers send.
    pub fn held_bound(&self) -> usize {
        (self.window_top as usize + 2) * HELD_PER_ROUND_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::message::{Proposal, Vote};
    use crate::consensus::test_support::{TestValue, validators_and_keys};
    use crate::keys::SecretKey;

    const NETWORK: Hash = Hash([7; 32]);

    fn vote(
        key: &SecretKey,
        kind: VoteKind,
        round: Round,
        block: Option<Hash>,
    ) -> Verified<SignedMessage<TestValue>> {
        let vote = Vote {
            kind,
            height: 1,
            round,
            block_hash: block,
        };
        Verified::signed_here(SignedMessage::sign(&NETWORK, key, Message::Vote(vote)))
    }

    #[test]
    fn a_validator_counts_once_per_step_and_a_second_vote_is_evidence() {
        let (_, keys) = validators_and_keys(4);
        let mut log = HeightLog::<TestValue>::new(1, 4, 1);
        let block = Some(Hash([1; 32]));

        assert_eq!(
            log.insert(vote(&keys[0], VoteKind::Prevote, 0, block), 0),
            Inserted::Counted
        );
        assert_eq!(
            log.insert(vote(&keys[0], VoteKind::Prevote, 0, block), 0),
            Inserted::Duplicate
        );
        assert_eq!(
            log.insert(vote(&keys[0], VoteKind::Prevote, 0, None), 0),
            Inserted::Equivocation
        );
        assert_eq!(
            log.insert(vote(&keys[0], VoteKind::Prevote, 0, Some(Hash([2; 32]))), 0),
            Inserted::Dropped
        );

        let prevotes = &log.round(0).expect("round 0 recorded").prevotes;
        assert_eq!(
            (
                prevotes.total(),
                prevotes.count_for(block),
                prevotes.count_for(None)
            ),
            (1, 1, 1),
            "one validator: counted once in the total, once for each block it named"
        );
        let evidence = log.take_evidence();
        assert_eq!(evidence.len(), 1);
        let pair = evidence[0];
        assert_eq!(
            (pair.validator, pair.height, pair.round, pair.step),
            (keys[0].public_key(), 1, 0, crate::consensus::Step::Prevote)
        );
        assert_eq!(
            (pair.first.block_hash, pair.second.block_hash),
            (block, None)
        );
        let (validators, _) = validators_and_keys(4);
        assert_eq!(pair.verify(&NETWORK, &validators), Ok(()));
        assert_eq!(log.take_evidence(), vec![], "taken once");
        assert_eq!(log.held_max(), 2);
    }

    #[test]
    fn a_flood_of_far_rounds_costs_one_slot_and_still_counts_for_round_skip() {
        let (_, keys) = validators_and_keys(4);
        let mut log = HeightLog::<TestValue>::new(1, 4, 1);

        for round in 2..500 {
            log.insert(vote(&keys[3], VoteKind::Prevote, round, None), 3);
            log.insert(vote(&keys[3], VoteKind::Precommit, round, None), 3);
        }
        assert!(log.held_max() <= 2);
        assert!(log.held_max() <= log.held_bound());
        assert_eq!(log.skip_target(2, 0), None);

        log.insert(vote(&keys[2], VoteKind::Prevote, 7, None), 2);
        assert_eq!(log.skip_target(2, 0), Some(7));

        // Once the window reaches round 7, validator 2's kept vote is counted.
        log.set_window(8);
        assert_eq!(log.round(7).expect("recorded").prevotes.total(), 1);
    }

    #[test]
    fn conflicting_proposals_keep_both_values_and_one_evidence() {
        let (_, keys) = validators_and_keys(4);
        let mut log = HeightLog::<TestValue>::new(1, 4, 1);
        let proposal = |value| {
            let message = Message::Proposal(Proposal {
                height: 1,
                round: 0,
                value,
                valid_round: None,
            });
            Verified::signed_here(SignedMessage::sign(&NETWORK, &keys[1], message))
        };

        assert_eq!(log.insert(proposal(TestValue(1)), 1), Inserted::Counted);
        assert_eq!(
            log.insert(proposal(TestValue(2)), 1),
            Inserted::Equivocation
        );
        assert_eq!(log.insert(proposal(TestValue(3)), 1), Inserted::Dropped);
        assert_eq!(log.take_fresh_values().len(), 2);
        assert!(log.value(&TestValue(2).hash()).is_some());
        let evidence = log.take_evidence();
        assert_eq!(evidence.len(), 1);
        let pair = evidence[0];
        assert_eq!(
            (pair.first.block_hash, pair.second.block_hash, pair.step),
            (
                Some(TestValue(1).hash()),
                Some(TestValue(2).hash()),
                crate::consensus::Step::Propose
            )
        );
        let (validators, _) = validators_and_keys(4);
        assert_eq!(pair.verify(&NETWORK, &validators), Ok(()));
    }
}
