//! The pure arithmetic of the bench: percentiles, rates, the offered-load schedule and the
//! memory-flatness rule. No clock and no I/O here, so every rule has an exact test.

use std::time::Duration;

/// The `p`-th percentile (0 to 100) of `sorted` by the nearest-rank method: the smallest
/// value with at least `p` percent of the values at or below it. `None` when empty.
///
/// Nearest rank never interpolates, so the answer is always a latency that was observed.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sorts latencies (which are never NaN) ascending, for [`percentile`].
pub fn sort(values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
}

/// `count` events over `seconds`, or 0 for an empty interval.
pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// `numerator / denominator`, or 0 when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// When the `index`-th transfer (from 0) of a load offered at `per_second` is due, counted
/// from the start of the phase. Transfers are evenly spaced: no bursts, no drift from
/// rounding, however long the phase.
pub fn due(index: u64, per_second: u64) -> Duration {
    debug_assert!(per_second > 0, "an offered rate is positive");
    let nanos = u128::from(index) * 1_000_000_000 / u128::from(per_second);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// How many transfers a phase of `seconds` at `per_second` offers.
pub fn offered(per_second: u64, seconds: u64) -> u64 {
    per_second.saturating_mul(seconds)
}

/// Resident memory over a steady run, from samples in KiB taken at even intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryTrend {
    /// The first sample.
    pub first_kib: u64,
    /// The last sample.
    pub last_kib: u64,
    /// The largest sample.
    pub peak_kib: u64,
    /// Growth over the second half: the last sample minus the one at the midpoint.
    pub second_half_growth_kib: i64,
}

/// Memory counts as flat when the second half of a steady run grows by no more than this
/// share of the peak...
pub const FLAT_GROWTH_SHARE: f64 = 0.05;

/// ...or by no more than this much, whichever is larger: allocators keep some slack.
pub const FLAT_GROWTH_SLACK_KIB: u64 = 8 * 1024;

impl MemoryTrend {
    /// The trend of `samples` (oldest first), or `None` without samples.
    ///
    /// The first half is left out of the judgement: caches (sled's page cache, the mempool)
    /// fill up there and are bounded by configuration. What must not happen is growth that
    /// goes on once they are full.
    pub fn of(samples: &[u64]) -> Option<MemoryTrend> {
        let first_kib = *samples.first()?;
        let last_kib = *samples.last()?;
        let peak_kib = samples.iter().copied().max()?;
        let middle = samples[samples.len() / 2];
        Some(MemoryTrend {
            first_kib,
            last_kib,
            peak_kib,
            second_half_growth_kib: last_kib as i64 - middle as i64,
        })
    }

    /// Whether the second half grew within the allowance (see [`FLAT_GROWTH_SHARE`]).
    pub fn is_flat(&self) -> bool {
        let allowed = (self.peak_kib as f64 * FLAT_GROWTH_SHARE).max(FLAT_GROWTH_SLACK_KIB as f64);
        (self.second_half_growth_kib as f64) <= allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        sort(&mut values);
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&values, 99.5), Some(100.0));

        let few = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&few, 50.0), Some(20.0));
        assert_eq!(percentile(&few, 51.0), Some(30.0));
        assert_eq!(percentile(&few, 99.0), Some(40.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn schedule_spaces_transfers_evenly_without_drift() {
        assert_eq!(due(0, 1_000), Duration::ZERO);
        assert_eq!(due(1, 1_000), Duration::from_millis(1));
        assert_eq!(due(2_500, 1_000), Duration::from_millis(2_500));
        assert_eq!(due(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due(3, 3), Duration::from_secs(1));
        // Ten minutes at 10,000 a second lands exactly on the second.
        assert_eq!(due(6_000_000, 10_000), Duration::from_secs(600));
        assert_eq!(offered(5_000, 20), 100_000);
    }

    #[test]
    fn rates_and_ratios_of_nothing_are_zero() {
        assert_eq!(rate(500, 2.0), 250.0);
        assert_eq!(rate(500, 0.0), 0.0);
        assert_eq!(ratio(1.0, 4.0), 0.25);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    #[test]
    fn memory_is_flat_when_the_second_half_stops_growing() {
        let warm_then_flat = [100_000, 180_000, 200_000, 201_000, 200_500, 202_000];
        let trend = MemoryTrend::of(&warm_then_flat).unwrap();
        assert_eq!(trend.first_kib, 100_000);
        assert_eq!(trend.last_kib, 202_000);
        assert_eq!(trend.peak_kib, 202_000);
        assert_eq!(trend.second_half_growth_kib, 1_000);
        assert!(trend.is_flat());

        let leaking = [100_000, 150_000, 200_000, 250_000, 300_000, 350_000];
        let trend = MemoryTrend::of(&leaking).unwrap();
        assert_eq!(trend.second_half_growth_kib, 100_000);
        assert!(!trend.is_flat());

        assert_eq!(MemoryTrend::of(&[]), None);
    }
}
