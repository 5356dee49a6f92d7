//! The ceiling: how many transfer signatures this machine checks a second, one at a time
//! (ed25519 `verify_strict`) and in batches (`protocol::batch::verify_batch`), on one core
//! and on all of them. Every node must check every transfer once, so no federation can beat
//! the batch rate divided by the number of validators sharing the machine.

use std::num::NonZeroUsize;
use std::thread;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use protocol::SignedTransfer;
use protocol::batch::verify_batch;
use serde::Serialize;

/// Transfers in one batch, as the issue fixes it.
pub const BATCH: usize = 1_024;

/// Signatures checked per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ceiling {
    /// Cores used for the all-core figures.
    pub cores: usize,
    /// `verify_strict`, one signature at a time, one core.
    pub strict_one_core: f64,
    /// `verify_strict` on every core.
    pub strict_all_cores: f64,
    /// Batches of [`BATCH`], one core.
    pub batch_one_core: f64,
    /// Batches of [`BATCH`] on every core.
    pub batch_all_cores: f64,
}

/// Measures each rate for about `seconds` on `transfers` (at least one batch of them); each
/// is the best of several windows (see [`on_threads`]).
pub fn measure(transfers: &[SignedTransfer], seconds: f64) -> Ceiling {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let budget = Duration::from_secs_f64(seconds);
    let strict: Vec<(VerifyingKey, Signature, Vec<u8>)> = transfers
        .iter()
        .map(|signed| {
            let key = signed.transfer.sender.verifying_key();
            let signature = Signature::from_bytes(&signed.signature.0);
            (key, signature, signed.signing_bytes())
        })
        .collect();

    Ceiling {
        cores,
        strict_one_core: on_threads(1, budget, || strict_round(&strict)),
        strict_all_cores: on_threads(cores, budget, || strict_round(&strict)),
        batch_one_core: on_threads(1, budget, || batch_round(transfers)),
        batch_all_cores: on_threads(cores, budget, || batch_round(transfers)),
    }
}

/// Verifies every prepared signature once; returns how many.
fn strict_round(prepared: &[(VerifyingKey, Signature, Vec<u8>)]) -> u64 {
    for (key, signature, message) in prepared {
        let verified = key.verify_strict(message, signature);
        assert!(verified.is_ok(), "bench transfers are signed correctly");
    }
    prepared.len() as u64
}

/// Verifies every transfer once, in batches of [`BATCH`]; returns how many.
fn batch_round(transfers: &[SignedTransfer]) -> u64 {
    for chunk in transfers.chunks(BATCH) {
        let refs: Vec<&SignedTransfer> = chunk.iter().collect();
        let outcomes = verify_batch(&refs);
        assert!(outcomes.iter().all(Result::is_ok), "bench transfers verify");
    }
    transfers.len() as u64
}

/// Windows each measurement is cut into; the best window's rate is kept.
const WINDOWS: u32 = 5;

/// The combined rate of `round` run over and over on `threads` threads, for about `budget`
/// cut into [`WINDOWS`] windows: the best window's. On a machine shared with other work a
/// mean would measure the others too; the best window is the closest to this machine's
/// capacity.
fn on_threads(threads: usize, budget: Duration, round: impl Fn() -> u64 + Sync) -> f64 {
    (0..WINDOWS)
        .map(|_| window_rate(threads, budget / WINDOWS, &round))
        .fold(0.0, f64::max)
}

/// One window: `round` on `threads` threads for about `budget`; the combined rate.
fn window_rate(threads: usize, budget: Duration, round: &(impl Fn() -> u64 + Sync)) -> f64 {
    let started = Instant::now();
    let total: u64 = thread::scope(|scope| {
        let jobs: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = 0;
                    while started.elapsed() < budget {
                        done += round();
                    }
                    done
                })
            })
            .collect();
        jobs.into_iter()
            .map(|job| job.join().expect("a verifying thread does not panic"))
            .sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}
