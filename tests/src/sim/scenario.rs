//! Scenarios: a topology (n, f), the faults to inject, and how many seeds to run by default.
//!
//! Byzantine validators always take the genesis positions right after position 0, so they are
//! the proposers of consecutive rounds of height 1 (and of every height): "f proposers in a
//! row" falls out of the layout. Names follow the topology, `n7_double_voters` and so on.

use protocol::consensus::{Fault, TimeoutConfig};

/// How a faulty validator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byzantine {
    /// Two instances share its key, each talking to one half of the others: as proposer it
    /// sends different blocks (sometimes invalid ones) to each half, and its votes differ.
    Equivocator,
    /// Runs the honest code but sends every vote to half of the others and a conflicting
    /// vote to the other half.
    DoubleVoter,
    /// Votes honestly but never sends its proposals.
    SilentProposer,
    /// Down from the start and never comes back.
    Crashed,
    /// Votes honestly and also floods validly signed messages for far-future heights and
    /// rounds.
    Flooder,
}

/// What the network does before it stabilises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Chance a message is lost, in thousandths.
    pub drop_per_mille: u64,
    /// Chance a message is delivered twice, in thousandths.
    pub duplicate_per_mille: u64,
    /// Smallest delay, in milliseconds.
    pub delay_min_ms: u64,
    /// Largest delay, in milliseconds; random delays also reorder messages.
    pub delay_max_ms: u64,
    /// Whether partitions form and heal.
    pub partitions: bool,
}

/// One kind of run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique name, used by the replay command.
    pub name: &'static str,
    /// The number of validators, n.
    pub validators: usize,
    /// How the faulty validators (positions 1, 2, …) behave; at most f of them.
    pub byzantine: Vec<Byzantine>,
    /// Network faults before stabilisation.
    pub network: NetworkFaults,
    /// Whether honest validators crash and restart before stabilisation.
    pub crashes: bool,
    /// Virtual time at which the network stabilises and faults stop, in milliseconds.
    pub stabilise_at_ms: u64,
    /// Every honest validator must decide at least this many heights.
    pub heights: u64,
    /// Seeds run by the default test command.
    pub default_seeds: u64,
    /// Timeout durations of every validator.
    pub timeouts: TimeoutConfig,
    /// A planted bug, turned on in every honest validator.
    pub fault: Option<Fault>,
}

/// The largest delay once the network is stable, in milliseconds.
pub const STABLE_DELAY_MAX_MS: u64 = 40;

/// A network that loses, duplicates, delays and reorders, and splits in two now and then.
pub const LOSSY: NetworkFaults = NetworkFaults {
    drop_per_mille: 150,
    duplicate_per_mille: 80,
    delay_min_ms: 1,
    delay_max_ms: 400,
    partitions: true,
};

/// A network that only delays and reorders.
pub const SLOW: NetworkFaults = NetworkFaults {
    drop_per_mille: 20,
    duplicate_per_mille: 30,
    delay_min_ms: 1,
    delay_max_ms: 150,
    partitions: false,
};

fn timeouts() -> TimeoutConfig {
    TimeoutConfig {
        propose_base_ms: 300,
        propose_increment_ms: 100,
        prevote_base_ms: 150,
        prevote_increment_ms: 75,
        precommit_base_ms: 150,
        precommit_increment_ms: 75,
    }
}

impl Scenario {
    fn new(name: &'static str, validators: usize, byzantine: Vec<Byzantine>) -> Scenario {
        Scenario {
            name,
            validators,
            byzantine,
            network: SLOW,
            crashes: false,
            stabilise_at_ms: 5_000,
            heights: 4,
            default_seeds: 100,
            timeouts: timeouts(),
            fault: None,
        }
    }

    fn lossy(mut self) -> Scenario {
        self.network = LOSSY;
        self
    }

    fn with_crashes(mut self) -> Scenario {
        self.crashes = true;
        self
    }

    fn seeds(mut self, seeds: u64) -> Scenario {
        self.default_seeds = seeds;
        self
    }

    /// The faults tolerated: n - quorum.
    pub fn max_faulty(&self) -> usize {
        self.validators - (2 * self.validators / 3 + 1)
    }

    /// The behaviour of the validator at genesis `position`, `None` when honest.
    pub fn behaviour(&self, position: usize) -> Option<Byzantine> {
        position
            .checked_sub(1)
            .and_then(|index| self.byzantine.get(index))
            .copied()
    }
}

/// The scenarios the default test command runs, with their default seed counts.
pub fn all() -> Vec<Scenario> {
    use Byzantine::*;
    vec![
        Scenario::new("n4_lossy_network", 4, vec![])
            .lossy()
            .seeds(150),
        Scenario::new("n7_lossy_network", 7, vec![])
            .lossy()
            .seeds(80),
        Scenario::new("n4_crash_restart", 4, vec![])
            .lossy()
            .with_crashes()
            .seeds(150),
        Scenario::new("n7_crash_restart", 7, vec![])
            .lossy()
            .with_crashes()
            .seeds(60),
        Scenario::new("n4_equivocating_proposer", 4, vec![Equivocator])
            .lossy()
            .seeds(150),
        Scenario::new(
            "n7_equivocating_proposer",
            7,
            vec![Equivocator, DoubleVoter],
        )
        .seeds(60),
        Scenario::new("n4_double_voter", 4, vec![DoubleVoter])
            .lossy()
            .seeds(100),
        Scenario::new("n7_double_voters", 7, vec![DoubleVoter, DoubleVoter])
            .lossy()
            .seeds(60),
        Scenario::new("n4_silent_proposer", 4, vec![SilentProposer])
            .lossy()
            .seeds(80),
        Scenario::new("n7_crashed_proposers_in_a_row", 7, vec![Crashed, Crashed]).seeds(60),
        Scenario::new("n4_far_future_flood", 4, vec![Flooder])
            .lossy()
            .seeds(80),
        Scenario::new("n7_flood_and_crashes", 7, vec![Flooder, SilentProposer])
            .lossy()
            .with_crashes()
            .seeds(50),
    ]
}

/// Scenarios with a planted bug, for the must-be-able-to-fail tests.
pub fn planted() -> Vec<Scenario> {
    // Locks only matter when votes split across rounds; a double voter splits them often.
    let mut ignore_lock =
        Scenario::new("planted_ignore_lock_n4", 4, vec![Byzantine::DoubleVoter]).lossy();
    ignore_lock.heights = 8;
    ignore_lock.network.drop_per_mille = 350;
    ignore_lock.fault = Some(Fault::IgnoreLock);
    let mut count_twice = Scenario::new("planted_count_vote_twice_n4", 4, vec![]).lossy();
    count_twice.fault = Some(Fault::CountDuplicateVotes);
    vec![ignore_lock, count_twice]
}

/// Finds a scenario, planted ones included, by name.
pub fn by_name(name: &str) -> Option<Scenario> {
    let mut every = all();
    every.extend(planted());
    every.into_iter().find(|scenario| scenario.name == name)
}
