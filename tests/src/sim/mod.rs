//! The deterministic consensus simulator.
//!
//! A run ([`World`]) puts n validators, each a real `protocol::consensus::StateMachine`, on a
//! simulated network in one thread, with virtual time and one seeded random generator. Until
//! the scenario's stabilisation time the network delays, drops, duplicates and reorders
//! messages and partitions form and heal; honest validators crash and restart from what they
//! persisted; Byzantine validators equivocate, double-vote, stay silent, stay down or flood.
//! After every event the oracles in [`check`] run; after stabilisation every honest validator
//! must decide within a bounded number of rounds.
//!
//! [`run_seeds`] runs many (scenario, seed) pairs on all cores, sums rule coverage and
//! collects failures, each with a one-line replay command. The number of seeds comes from each
//! scenario's default, or from the `TALLY_SIM_SEEDS` environment variable for a soak.

pub mod block;
pub mod check;
pub mod rng;
pub mod scenario;
pub mod world;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::consensus::{Coverage, Rule};

pub use block::SimBlock;
pub use check::Violation;
pub use scenario::{Byzantine, Scenario};
pub use world::{RunReport, World, run};

/// The environment variable that sets the seed count per scenario (a soak).
pub const SEEDS_VARIABLE: &str = "TALLY_SIM_SEEDS";

/// The environment variable the replay test reads: `<scenario>:<seed>`.
pub const REPLAY_VARIABLE: &str = "TALLY_SIM_REPLAY";

/// A failed run, with what it takes to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
}

impl Failure {
    /// The one-line command that replays this run exactly.
    pub fn replay_command(&self) -> String {
        format!(
            "{REPLAY_VARIABLE}={}:{} cargo test -p tally-tests --test simulation replay -- \
             --nocapture",
            self.scenario, self.seed
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} seed {}: {}\n  replay: {}",
            self.scenario,
            self.seed,
            self.violation,
            self.replay_command()
        )
    }
}

/// What a batch of runs found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Runs completed.
    pub runs: u64,
    /// Rule coverage summed over all runs.
    pub coverage: Coverage,
    /// Failed runs, sorted by scenario and seed.
    pub failures: Vec<Failure>,
    /// Messages signed over all runs.
    pub messages: u64,
    /// Deliveries over all runs.
    pub deliveries: u64,
}

/// The seed count per scenario: `TALLY_SIM_SEEDS` if set, else the scenario's default.
pub fn seeds_for(scenario: &Scenario) -> u64 {
    std::env::var(SEEDS_VARIABLE)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(scenario.default_seeds)
}

/// Runs seeds `0..seeds_for(scenario)` of every scenario on all available cores.
///
/// Each run is single-threaded and depends only on its (scenario, seed), so the results do not
/// depend on how runs are spread over threads.
pub fn run_seeds(scenarios: &[Scenario]) -> Summary {
    let jobs: Vec<(usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(index, scenario)| (0..seeds_for(scenario)).map(move |seed| (index, seed)))
        .collect();
    let soak = std::env::var(SEEDS_VARIABLE).is_ok();
    let progress_every = (jobs.len() / 20).max(1);

    let next = AtomicUsize::new(0);
    let summary = Mutex::new(Summary::default());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, seed)) = jobs.get(job) else {
                        return;
                    };
                    let scenario = &scenarios[index];
                    let outcome = run(scenario, seed);

                    let mut summary = summary.lock().expect("no worker panics while holding it");
                    summary.runs += 1;
                    match outcome {
                        Ok(report) => {
                            summary.coverage.add(&report.coverage);
                            summary.messages += report.messages;
                            summary.deliveries += report.deliveries;
                        }
                        Err(violation) => {
                            let failure = Failure {
                                scenario: scenario.name,
                                seed,
                                violation,
                            };
                            eprintln!("FAILED {failure}");
                            summary.failures.push(failure);
                        }
                    }
                    if soak && (summary.runs as usize).is_multiple_of(progress_every) {
                        eprintln!(
                            "soak: {} of {} runs, {} failed",
                            summary.runs,
                            jobs.len(),
                            summary.failures.len()
                        );
                    }
                }
            });
        }
    });

    let mut summary = summary.into_inner().expect("workers finished");
    summary.failures.sort_by_key(|f| (f.scenario, f.seed));
    summary
}

/// The coverage table: one line per rule with its paper line numbers and count.
pub fn coverage_table(coverage: &Coverage, runs: u64) -> String {
    let mut table = format!("rule coverage over {runs} seeded runs\n");
    table.push_str(&format!("{:<26} {:<10} {:>12}\n", "rule", "lines", "fired"));
    for rule in Rule::ALL {
        let name = format!("{rule:?}");
        table.push_str(&format!(
            "{name:<26} {:<10} {:>12}\n",
            rule.lines(),
            coverage.count(rule)
        ));
    }
    table
}
