//! Transfers waiting for a block: admission, ordering per sender, bounds and eviction.
//!
//! The pool holds transfers whose signature and network were already checked (see
//! `sigcache`); it judges what depends on the ledger: the sequence (at least the sender's
//! next, and not absurdly far ahead) and the funding (the sender's committed balance covers
//! everything it has pending). It is bounded in total and per sender, and a transfer that does
//! not fit is refused with `mempool_full`, never dropped silently.
//!
//! When a block commits, every pending transfer it made impossible leaves the pool with a
//! final status that a waiting wallet can read: `superseded` by the committed transfer that
//! used its sequence, or `rejected` with the reason. Those outcomes are remembered (up to a
//! bound, oldest forgotten first).

use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::{Hash, PublicKey};

/// How many final outcomes are remembered for status queries.
const OUTCOMES_MAX: usize = 100_000;

/// What the pool needs to know about a transfer.
pub trait PoolTransfer: Clone {
    /// The transfer id.
    fn id(&self) -> Hash;
    /// The sender.
    fn sender(&self) -> PublicKey;
    /// The sender's sequence number it carries.
    fn sequence(&self) -> u64;
    /// Amount plus fee, or `None` if that overflows (such a transfer can never be funded).
    fn cost(&self) -> Option<u64>;
}

/// The committed state of a sender, as the ledger has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderState {
    /// Committed balance.
    pub balance: u64,
    /// The sequence its next transfer must carry.
    pub next_sequence: u64,
}

/// Why the pool refused a transfer. Codes are stable: wallets show them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRejection {
    /// The pool, or this sender's share of it, is full.
    #[error("the mempool is full; retry later")]
    Full,
    /// The sequence is below the sender's next: that sequence is used.
    #[error("sequence {got} is already used; the sender's next sequence is {expected}")]
    SequenceUsed {
        /// The sender's next sequence.
        expected: u64,
        /// The transfer's.
        got: u64,
    },
    /// The sequence is so far ahead that it cannot apply for a long time.
    #[error("sequence {got} is too far ahead of the sender's next sequence {expected}")]
    SequenceTooHigh {
        /// The sender's next sequence.
        expected: u64,
        /// The transfer's.
        got: u64,
    },
    /// Another transfer of this sender with this sequence is already pending.
    #[error("another transfer with sequence {0} from this sender is already pending")]
    SequencePending(u64),
    /// The sender cannot pay this transfer on top of its pending ones.
    #[error("balance does not cover this transfer and the sender's pending transfers")]
    InsufficientFunds,
}

impl PoolRejection {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            PoolRejection::Full => "mempool_full",
            PoolRejection::SequenceUsed { .. } => "bad_sequence",
            PoolRejection::SequenceTooHigh { .. } => "sequence_too_high",
            PoolRejection::SequencePending(_) => "sequence_pending",
            PoolRejection::InsufficientFunds => "insufficient_funds",
        }
    }
}

/// How a transfer left the pool without being committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalStatus {
    /// Another transfer with the same sender and sequence was committed.
    Superseded {
        /// The committed transfer's id.
        by: Hash,
    },
    /// It can no longer apply.
    Rejected {
        /// The stable code.
        code: String,
    },
}

/// The result of a successful admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Newly added.
    Added,
    /// Already pending: nothing changed.
    AlreadyPending,
}

/// The pool. Not thread-safe on purpose: one task owns it.
#[derive(Debug)]
pub struct Mempool<T: PoolTransfer> {
    max_total: usize,
    max_per_sender: usize,
    transfers: HashMap<Hash, Pending<T>>,
    by_sender: HashMap<PublicKey, BTreeMap<u64, Hash>>,
    arrivals: u64,
    outcomes: HashMap<Hash, FinalStatus>,
    outcome_order: VecDeque<Hash>,
}

#[derive(Debug)]
struct Pending<T> {
    transfer: T,
    arrival: u64,
}

impl<T: PoolTransfer> Mempool<T> {
    /// An empty pool holding at most `max_total` transfers, `max_per_sender` per sender.
    pub fn new(max_total: usize, max_per_sender: usize) -> Mempool<T> {
        assert!(
            max_per_sender >= 1 && max_per_sender <= max_total,
            "checked by config"
        );
        Mempool {
            max_total,
            max_per_sender,
            transfers: HashMap::new(),
            by_sender: HashMap::new(),
            arrivals: 0,
            outcomes: HashMap::new(),
            outcome_order: VecDeque::new(),
        }
    }

    /// How many transfers are pending.
    pub fn len(&self) -> usize {
        self.transfers.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.transfers.contains_key(id)
    }

    /// The final status of a transfer that left the pool uncommitted, if remembered.
    pub fn outcome(&self, id: &Hash) -> Option<&FinalStatus> {
        self.outcomes.get(id)
    }

    /// The next sequence of `sender` counting its pending transfers in an unbroken run.
    pub fn next_sequence_with_pending(&self, sender: &PublicKey, committed_next: u64) -> u64 {
        let mut next = committed_next;
        if let Some(queue) = self.by_sender.get(sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Admits `transfer` (signature and network already checked) given its sender's state.
    pub fn admit(&mut self, transfer: T, sender: SenderState) -> Result<Admission, PoolRejection> {
        let id = transfer.id();
        if self.transfers.contains_key(&id) {
            return Ok(Admission::AlreadyPending);
        }

        let sequence = transfer.sequence();
        let expected = sender.next_sequence;
        if sequence < expected {
            return Err(PoolRejection::SequenceUsed {
                expected,
                got: sequence,
            });
        }

        let queue = self.by_sender.get(&transfer.sender());
        if queue.is_some_and(|queue| queue.contains_key(&sequence)) {
            return Err(PoolRejection::SequencePending(sequence));
        }
        let queued = queue.map_or(0, BTreeMap::len);
        if queued >= self.max_per_sender || self.transfers.len() >= self.max_total {
            return Err(PoolRejection::Full);
        }

        // A sender can have at most `max_per_sender` pending, so a sequence beyond that window
        // could not apply before the ones below it, which do not fit.
        if sequence - expected >= self.max_per_sender as u64 {
            return Err(PoolRejection::SequenceTooHigh {
                expected,
                got: sequence,
            });
        }

        let pending_cost = self.pending_cost(&transfer.sender());
        let total = transfer
            .cost()
            .and_then(|cost| cost.checked_add(pending_cost?));
        if total.is_none_or(|total| total > sender.balance) {
            return Err(PoolRejection::InsufficientFunds);
        }

        self.arrivals += 1;
        self.by_sender
            .entry(transfer.sender())
            .or_default()
            .insert(sequence, id);
        self.transfers.insert(
            id,
            Pending {
                transfer,
                arrival: self.arrivals,
            },
        );
        self.outcomes.remove(&id);
        Ok(Admission::Added)
    }

    /// Candidates for the next block: each sender's unbroken run of sequences from its next,
    /// senders in order of their oldest pending transfer, at most `limit` in all.
    pub fn candidates(&self, limit: usize, next_sequence: impl Fn(&PublicKey) -> u64) -> Vec<T> {
        let mut senders: Vec<(u64, &PublicKey, &BTreeMap<u64, Hash>)> = self
            .by_sender
            .iter()
            .map(|(sender, queue)| {
                let oldest = queue.values().map(|id| self.transfers[id].arrival).min();
                (oldest.unwrap_or(u64::MAX), sender, queue)
            })
            .collect();
        senders.sort_by_key(|(arrival, sender, _)| (*arrival, **sender));

        let mut candidates = Vec::new();
        for (_, sender, queue) in senders {
            let first = next_sequence(sender);
            let run = (first..).zip(queue.range(first..));
            for (expected, (sequence, id)) in run {
                if *sequence != expected || candidates.len() >= limit {
                    break;
                }
                candidates.push(self.transfers[id].transfer.clone());
            }
        }
        candidates
    }

    /// Removes what a committed block made pending no longer: its own transfers, and those of
    /// its senders that can no longer apply. `state` gives a sender's state after the block.
    pub fn remove_committed(&mut self, committed: &[T], state: impl Fn(&PublicKey) -> SenderState) {
        let mut touched: Vec<PublicKey> = Vec::new();
        let mut used: HashMap<(PublicKey, u64), Hash> = HashMap::new();

        for transfer in committed {
            self.remove(&transfer.id());
            used.insert((transfer.sender(), transfer.sequence()), transfer.id());
            if !touched.contains(&transfer.sender()) {
                touched.push(transfer.sender());
            }
        }

        for sender in touched {
            self.evict_stale(&sender, state(&sender), &used);
        }
    }

    /// Evicts the pending transfers of `sender` that `state` makes impossible.
    fn evict_stale(
        &mut self,
        sender: &PublicKey,
        state: SenderState,
        used: &HashMap<(PublicKey, u64), Hash>,
    ) {
        let Some(queue) = self.by_sender.get(sender) else {
            return;
        };

        let mut evicted: Vec<(Hash, FinalStatus)> = Vec::new();
        let mut cost_so_far: u64 = 0;
        for (sequence, id) in queue {
            let status = if *sequence < state.next_sequence {
                match used.get(&(*sender, *sequence)) {
                    Some(by) => Some(FinalStatus::Superseded { by: *by }),
                    None => Some(FinalStatus::Rejected {
                        code: "bad_sequence".into(),
                    }),
                }
            } else {
                // Funding is re-checked in sequence order: the later ones are the ones the
                // sender can no longer pay for.
                let cost = self.transfers[id].transfer.cost();
                match cost.and_then(|cost| cost_so_far.checked_add(cost)) {
                    Some(total) if total <= state.balance => {
                        cost_so_far = total;
                        None
                    }
                    _ => Some(FinalStatus::Rejected {
                        code: "insufficient_funds".into(),
                    }),
                }
            };
            if let Some(status) = status {
                evicted.push((*id, status));
            }
        }

        for (id, status) in evicted {
            self.remove(&id);
            self.remember(id, status);
        }
    }

    fn remove(&mut self, id: &Hash) {
        let Some(pending) = self.transfers.remove(id) else {
            return;
        };
        let sender = pending.transfer.sender();
        if let Some(queue) = self.by_sender.get_mut(&sender) {
            queue.remove(&pending.transfer.sequence());
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    fn remember(&mut self, id: Hash, status: FinalStatus) {
        if self.outcomes.insert(id, status).is_none() {
            self.outcome_order.push_back(id);
        }
        while self.outcome_order.len() > OUTCOMES_MAX {
            if let Some(oldest) = self.outcome_order.pop_front() {
                self.outcomes.remove(&oldest);
            }
        }
    }

    fn pending_cost(&self, sender: &PublicKey) -> Option<u64> {
        let Some(queue) = self.by_sender.get(sender) else {
            return Some(0);
        };
        queue.values().try_fold(0u64, |sum, id| {
            sum.checked_add(self.transfers[id].transfer.cost()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;

    #[derive(Debug, Clone, PartialEq)]
    struct Fake {
        sender: PublicKey,
        sequence: u64,
        cost: u64,
        tag: u8,
    }

    impl PoolTransfer for Fake {
        fn id(&self) -> Hash {
            Hash::digest_parts(&[
                self.sender.as_bytes(),
                &self.sequence.to_be_bytes(),
                &self.cost.to_be_bytes(),
                &[self.tag],
            ])
        }
        fn sender(&self) -> PublicKey {
            self.sender
        }
        fn sequence(&self) -> u64 {
            self.sequence
        }
        fn cost(&self) -> Option<u64> {
            Some(self.cost)
        }
    }

    fn key(seed: u8) -> PublicKey {
        SecretKey::from_seed(&[seed; 32]).public_key()
    }

    fn fake(seed: u8, sequence: u64, cost: u64) -> Fake {
        Fake {
            sender: key(seed),
            sequence,
            cost,
            tag: 0,
        }
    }

    const RICH: SenderState = SenderState {
        balance: 1_000,
        next_sequence: 1,
    };

    #[test]
    fn admission_checks_sequence_duplicates_and_funding() {
        let mut pool = Mempool::new(100, 4);
        assert_eq!(pool.admit(fake(1, 1, 10), RICH), Ok(Admission::Added));
        assert_eq!(
            pool.admit(fake(1, 1, 10), RICH),
            Ok(Admission::AlreadyPending)
        );

        let other_at_one = Fake {
            tag: 1,
            ..fake(1, 1, 10)
        };
        assert_eq!(
            pool.admit(other_at_one, RICH),
            Err(PoolRejection::SequencePending(1))
        );

        let state = SenderState {
            balance: 1_000,
            next_sequence: 5,
        };
        let error = pool.admit(fake(2, 4, 1), state).unwrap_err();
        assert_eq!(error.code(), "bad_sequence");
        let error = pool.admit(fake(2, 9, 1), state).unwrap_err();
        assert_eq!(error.code(), "sequence_too_high");

        let poor = SenderState {
            balance: 15,
            next_sequence: 1,
        };
        assert_eq!(pool.admit(fake(3, 1, 10), poor), Ok(Admission::Added));
        assert_eq!(
            pool.admit(fake(3, 2, 10), poor),
            Err(PoolRejection::InsufficientFunds)
        );
    }

    #[test]
    fn bounds_refuse_with_mempool_full() {
        let mut pool = Mempool::new(3, 2);
        pool.admit(fake(1, 1, 1), RICH).unwrap();
        pool.admit(fake(1, 2, 1), RICH).unwrap();
        assert_eq!(
            pool.admit(fake(1, 3, 1), RICH).unwrap_err().code(),
            "mempool_full"
        );

        pool.admit(fake(2, 1, 1), RICH).unwrap();
        assert_eq!(
            pool.admit(fake(3, 1, 1), RICH).unwrap_err().code(),
            "mempool_full"
        );
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn candidates_are_unbroken_runs_in_sequence_order() {
        let mut pool = Mempool::new(100, 10);
        pool.admit(fake(1, 2, 1), RICH).unwrap();
        pool.admit(fake(2, 1, 1), RICH).unwrap();
        pool.admit(fake(1, 1, 1), RICH).unwrap();
        pool.admit(fake(1, 4, 1), RICH).unwrap();

        let chosen = pool.candidates(10, |_| 1);
        let order: Vec<(PublicKey, u64)> = chosen.iter().map(|t| (t.sender, t.sequence)).collect();
        // Sender 1's oldest arrived first; its gap at 3 stops its run.
        assert_eq!(order, vec![(key(1), 1), (key(1), 2), (key(2), 1)]);
        assert_eq!(pool.candidates(2, |_| 1).len(), 2);
        assert_eq!(pool.next_sequence_with_pending(&key(1), 1), 3);
    }

    #[test]
    fn commit_supersedes_rejects_and_keeps_what_still_applies() {
        let mut pool = Mempool::new(100, 10);
        let ours = fake(1, 1, 10);
        pool.admit(ours.clone(), RICH).unwrap();
        pool.admit(fake(1, 2, 10), RICH).unwrap();
        pool.admit(fake(1, 3, 500), RICH).unwrap();

        // Another node's transfer with sequence 1 won, and drained most of the balance.
        let winner = Fake {
            tag: 9,
            ..fake(1, 1, 10)
        };
        let after = SenderState {
            balance: 100,
            next_sequence: 2,
        };
        pool.remove_committed(std::slice::from_ref(&winner), |_| after);

        assert_eq!(
            pool.outcome(&ours.id()),
            Some(&FinalStatus::Superseded { by: winner.id() })
        );
        assert!(pool.contains(&fake(1, 2, 10).id()));
        let expensive = fake(1, 3, 500).id();
        let rejected = FinalStatus::Rejected {
            code: "insufficient_funds".into(),
        };
        assert_eq!(pool.outcome(&expensive), Some(&rejected));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn committed_transfers_leave_without_an_outcome() {
        let mut pool = Mempool::new(100, 10);
        let transfer = fake(1, 1, 10);
        pool.admit(transfer.clone(), RICH).unwrap();
        let after = SenderState {
            balance: 990,
            next_sequence: 2,
        };
        pool.remove_committed(std::slice::from_ref(&transfer), |_| after);
        assert!(pool.is_empty());
        assert_eq!(pool.outcome(&transfer.id()), None);
    }
}
