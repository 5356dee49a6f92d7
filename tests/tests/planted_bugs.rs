//! The simulator must be able to fail: with a deliberately broken rule turned on in every
//! honest validator, it reports a safety violation within a bounded number of seeds.
//!
//! The broken rules exist only with the `protocol` feature `fault-injection` (which this test
//! crate enables) and only in state machine instances a scenario turns them on in; every other
//! scenario runs the correct rules.

use tally_tests::sim::{self, Failure, scenario};

/// Seeds tried before concluding the simulator cannot see the bug.
const SEEDS_MAX: u64 = 1_000;

fn first_failure(name: &str) -> Option<Failure> {
    let scenario = scenario::by_name(name).expect("planted scenario exists");
    (0..SEEDS_MAX).find_map(|seed| {
        let violation = sim::run(&scenario, seed).err()?;
        Some(Failure {
            scenario: scenario.name,
            seed,
            violation,
        })
    })
}

fn assert_caught(name: &str) {
    let failure =
        first_failure(name).unwrap_or_else(|| panic!("{name}: no violation in {SEEDS_MAX} seeds"));
    println!("{failure}");
    assert!(
        failure.violation.is_safety(),
        "{name}: expected a safety violation, got {}",
        failure.violation
    );

    // The printed replay reproduces the very same violation.
    let scenario = scenario::by_name(name).expect("planted scenario exists");
    assert_eq!(
        sim::run(&scenario, failure.seed).err(),
        Some(failure.violation)
    );
}

#[test]
fn ignoring_the_lock_is_caught_as_a_safety_violation() {
    assert_caught("planted_ignore_lock_n4");
}

#[test]
fn counting_a_vote_twice_is_caught_as_a_safety_violation() {
    assert_caught("planted_count_vote_twice_n4");
}
