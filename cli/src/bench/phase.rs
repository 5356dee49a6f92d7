//! One load phase against the running federation: submit, wait for the commits, and turn
//! what was recorded into figures.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protocol::{Decimals, Hash};
use serde::Serialize;

use super::disk;
use super::events::{Book, NOT_YET, Tracker};
use super::fixtures::Planned;
use super::load::{self, Load, Offer, Submissions};
use super::node::Node;
use super::procfs;
use super::sampler::Sampler;
use super::stats::{self, MemoryTrend};

/// After the window, wait at most this long without a new commit for the rest to commit.
const DRAIN_STALL: Duration = Duration::from_secs(10);

/// ...and at most this long in all.
const DRAIN_MAX: Duration = Duration::from_secs(90);

/// What one node used during a phase.
#[derive(Debug, Clone, Serialize)]
pub struct NodeUse {
    /// CPU seconds (user plus system) over the phase, drain included.
    pub cpu_seconds: f64,
    /// `cpu_seconds` over the phase's wall time: 1.0 is one core busy.
    pub cpu_cores: f64,
    /// Resident memory at the phase's first sample, KiB.
    pub rss_first_kib: u64,
    /// At its last sample.
    pub rss_last_kib: u64,
    /// The largest sample.
    pub rss_peak_kib: u64,
    /// Growth over the second half of the phase, KiB.
    pub rss_second_half_growth_kib: i64,
    /// Whether the second half grew within the allowance (`stats::MemoryTrend::is_flat`).
    pub memory_flat: bool,
    /// The process's peak resident memory since it started (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

/// The figures of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    /// `as fast as accepted` or `N/s offered`.
    pub name: String,
    /// The offered rate, when fixed.
    pub offered_per_second: Option<u64>,
    /// Seconds during which transfers were offered.
    pub window_seconds: f64,
    /// Seconds waited after the window for the accepted transfers to commit.
    pub drain_seconds: f64,
    /// Transfers prepared for the phase.
    pub planned: u64,
    /// What the submissions got.
    pub submissions: Submissions,
    /// Transfers of the phase committed, drain included.
    pub committed: u64,
    /// Committed within the window.
    pub committed_in_window: u64,
    /// `committed_in_window` per second of window.
    pub committed_per_second: f64,
    /// Submit-to-commit latency percentiles, milliseconds.
    pub latency_ms_p50: Option<f64>,
    /// See `latency_ms_p50`.
    pub latency_ms_p90: Option<f64>,
    /// See `latency_ms_p50`.
    pub latency_ms_p99: Option<f64>,
    /// The slowest.
    pub latency_ms_max: Option<f64>,
    /// Blocks that held the phase's transfers.
    pub blocks: u64,
    /// Average transfers of the phase per such block.
    pub transfers_per_block: f64,
    /// Per node.
    pub nodes: Vec<NodeUse>,
    /// CPU seconds of the bench process (load generator and event readers) over the phase.
    pub load_generator_cpu_seconds: f64,
    /// The same over wall time: 1.0 is one core busy.
    pub load_generator_cpu_cores: f64,
    /// Node CPU per committed transfer, all nodes together, microseconds.
    pub node_cpu_us_per_transfer: f64,
    /// Cores the whole machine kept busy over the phase; what is neither the nodes nor the
    /// bench is other work sharing the machine.
    pub machine_busy_cores: f64,
    /// Cores used by processes other than the nodes and the bench.
    pub other_cores: f64,
    /// Growth of the first node's database over the phase, bytes.
    pub disk_growth_bytes: u64,
    /// `disk_growth_bytes` per transfer committed.
    pub disk_bytes_per_transfer: f64,
}

/// The running federation a phase plays against.
pub struct Running<'a> {
    /// The validators.
    pub nodes: &'a [Node],
    /// Where commits are recorded.
    pub tracker: &'a Tracker,
    /// The nodes' memory samples.
    pub sampler: &'a Sampler,
    /// The network's decimals, for the transfers' JSON.
    pub decimals: Decimals,
}

/// Runs one phase of `planned` transfers, offered as `offer` for up to `window`.
pub fn run(
    federation: &Running<'_>,
    name: String,
    offer: Offer,
    window: Duration,
    planned: &[Planned],
) -> PhaseFigures {
    let Running {
        nodes,
        tracker,
        sampler,
        decimals,
    } = *federation;
    let apis: Vec<String> = nodes.iter().map(|node| node.api.clone()).collect();
    let bodies: Vec<Vec<u8>> = planned
        .iter()
        .map(|p| serde_json::to_vec(&p.signed.to_json(decimals)).expect("a transfer serialises"))
        .collect();
    let ids: Vec<Hash> = planned.iter().map(|p| p.signed.id()).collect();
    let senders: Vec<usize> = planned.iter().map(|p| p.sender).collect();
    let book = Arc::new(Book::new(&ids, |index| index % nodes.len()));
    tracker.open(book.clone());

    let before = Usage::now(nodes);
    let start_ns = tracker.now_ns();
    let load = Load {
        apis: &apis,
        bodies: &bodies,
        senders: &senders,
        accounts: senders.iter().max().map_or(0, |max| max + 1),
        offer,
        window,
    };
    let submissions = load::submit(&load, &book, tracker);
    let window_end_ns = tracker.now_ns().min(start_ns + window.as_nanos() as u64);
    let drain_started = Instant::now();
    drain(&book, &submissions.accepted_flags);
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let after = Usage::now(nodes);
    let end_ns = tracker.now_ns();

    let window_seconds = (window_end_ns - start_ns) as f64 / 1e9;
    let wall_seconds = (end_ns - start_ns) as f64 / 1e9;
    let commits = Commits::of(&book, window_end_ns);
    let node_use = (0..nodes.len())
        .map(|index| {
            let samples = sampler.window(index, start_ns, end_ns);
            let trend = MemoryTrend::of(&samples);
            let cpu_seconds = after.cpu[index] - before.cpu[index];
            NodeUse {
                cpu_seconds,
                cpu_cores: stats::ratio(cpu_seconds, wall_seconds),
                rss_first_kib: trend.map_or(0, |t| t.first_kib),
                rss_last_kib: trend.map_or(0, |t| t.last_kib),
                rss_peak_kib: trend.map_or(0, |t| t.peak_kib),
                rss_second_half_growth_kib: trend.map_or(0, |t| t.second_half_growth_kib),
                memory_flat: trend.is_some_and(|t| t.is_flat()),
                peak_rss_kib: after.peak_rss[index],
            }
        })
        .collect();
    let load_cpu = after.own_cpu - before.own_cpu;
    let nodes_cpu: f64 = (0..nodes.len()).map(|i| after.cpu[i] - before.cpu[i]).sum();
    let machine_busy_cores = stats::ratio(after.machine - before.machine, wall_seconds);
    let committed = commits.latencies_ms.len() as f64;
    let disk_growth_bytes = after.disk.saturating_sub(before.disk);

    PhaseFigures {
        name,
        offered_per_second: match offer {
            Offer::PerSecond(rate) => Some(rate),
            Offer::AsFastAsAccepted => None,
        },
        window_seconds,
        drain_seconds,
        planned: planned.len() as u64,
        submissions,
        committed: commits.latencies_ms.len() as u64,
        committed_in_window: commits.in_window,
        committed_per_second: stats::rate(commits.in_window, window_seconds),
        latency_ms_p50: stats::percentile(&commits.latencies_ms, 50.0),
        latency_ms_p90: stats::percentile(&commits.latencies_ms, 90.0),
        latency_ms_p99: stats::percentile(&commits.latencies_ms, 99.0),
        latency_ms_max: commits.latencies_ms.last().copied(),
        blocks: commits.blocks,
        transfers_per_block: stats::ratio(commits.latencies_ms.len() as f64, commits.blocks as f64),
        nodes: node_use,
        load_generator_cpu_seconds: load_cpu,
        load_generator_cpu_cores: stats::ratio(load_cpu, wall_seconds),
        node_cpu_us_per_transfer: stats::ratio(nodes_cpu * 1e6, committed),
        machine_busy_cores,
        other_cores: (machine_busy_cores - stats::ratio(nodes_cpu + load_cpu, wall_seconds))
            .max(0.0),
        disk_growth_bytes,
        disk_bytes_per_transfer: stats::ratio(
            disk_growth_bytes as f64,
            commits.latencies_ms.len() as f64,
        ),
    }
}

/// Waits until every accepted transfer has committed, or commits stop coming.
fn drain(book: &Book, accepted: &[bool]) {
    let started = Instant::now();
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let waiting = accepted
            .iter()
            .zip(&book.committed_ns)
            .filter(|(accepted, slot)| **accepted && slot.load(Ordering::Relaxed) == NOT_YET)
            .count();
        if waiting == 0 || started.elapsed() > DRAIN_MAX || last_progress.elapsed() > DRAIN_STALL {
            return;
        }
        if waiting != last_count {
            last_count = waiting;
            last_progress = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the nodes and the bench had used at one moment.
struct Usage {
    cpu: Vec<f64>,
    peak_rss: Vec<u64>,
    own_cpu: f64,
    machine: f64,
    disk: u64,
}

impl Usage {
    fn now(nodes: &[Node]) -> Usage {
        let pids: Vec<String> = nodes.iter().map(|n| n.pid().unwrap_or_default()).collect();
        Usage {
            cpu: pids
                .iter()
                .map(|pid| procfs::cpu_seconds(pid).unwrap_or(0.0))
                .collect(),
            peak_rss: pids
                .iter()
                .map(|pid| procfs::status_kib(pid, "VmHWM").unwrap_or(0))
                .collect(),
            own_cpu: procfs::cpu_seconds("self").unwrap_or(0.0),
            machine: procfs::machine_busy_seconds().unwrap_or(0.0),
            disk: nodes.first().map_or(0, |node| disk::size(&node.db())),
        }
    }
}

/// The commits recorded in a book.
struct Commits {
    /// Latencies of the committed transfers, sorted.
    latencies_ms: Vec<f64>,
    /// How many committed by the end of the window.
    in_window: u64,
    /// Distinct heights they committed at.
    blocks: u64,
}

impl Commits {
    fn of(book: &Book, window_end_ns: u64) -> Commits {
        let mut latencies_ms = Vec::new();
        let mut heights = Vec::new();
        let mut in_window = 0;
        for index in 0..book.node.len() {
            let committed = book.committed_ns[index].load(Ordering::Relaxed);
            let submitted = book.submitted_ns[index].load(Ordering::Relaxed);
            if committed == NOT_YET || submitted == NOT_YET {
                continue;
            }
            latencies_ms.push(committed.saturating_sub(submitted) as f64 / 1e6);
            heights.push(book.height[index].load(Ordering::Relaxed));
            if committed <= window_end_ns {
                in_window += 1;
            }
        }
        stats::sort(&mut latencies_ms);
        heights.sort_unstable();
        heights.dedup();
        Commits {
            latencies_ms,
            in_window,
            blocks: heights.len() as u64,
        }
    }
}
