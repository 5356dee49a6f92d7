//! The bench's result: the figures, the ratios against the signature ceiling, each target
//! met or not with what limits it, as a table for people and as JSON for scripts.

use serde::Serialize;

use super::ceiling::Ceiling;
use super::federation::FederationFigures;
use super::ledger::LedgerFigures;
use super::phase::PhaseFigures;
use super::stats;

/// The offered rate whose latency the latency target is about.
pub const LATENCY_RATE: u64 = 1_000;

/// A steady run shorter than this is too short to call memory flat with confidence.
pub const MEMORY_RUN_SECONDS: f64 = 600.0;

/// Disk bytes a committed transfer may take, all indexes included.
pub const DISK_BYTES_PER_TRANSFER_MAX: f64 = 1024.0;

/// The machine the bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Cores available to the bench.
    pub cores: usize,
    /// Memory, KiB, from `/proc/meminfo`.
    pub memory_kib: u64,
    /// The 1-minute load average when the bench started: other work on the machine.
    pub load_average_at_start: f64,
}

impl Machine {
    /// This machine.
    pub fn describe(cores: usize) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map_or_else(
                || "unknown".to_string(),
                |(_, model)| model.trim().to_string(),
            );
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = super::procfs::status_field_kib(&meminfo, "MemTotal").unwrap_or(0);
        let load_average_at_start = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu_model,
            cores,
            memory_kib,
            load_average_at_start,
        }
    }
}

/// The three ratios of the issue.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratios {
    /// Federation throughput (as fast as accepted) / (all-core batch rate / validators).
    pub federation_to_ceiling: Option<f64>,
    /// Ledger-alone throughput / one-core batch rate.
    pub ledger_to_one_core_batch: Option<f64>,
    /// Audit rate / all-core batch rate.
    pub audit_to_all_core_batch: Option<f64>,
}

/// One target, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: &'static str,
    /// The measured value, as text.
    pub measured: String,
    /// The target, as text.
    pub target: &'static str,
    /// Met, not met, or not measured in this run (`None`).
    pub met: Option<bool>,
    /// What limits the figure, from what was measured.
    pub limit: String,
}

/// Everything one run of `tally bench` produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The `tally` version.
    pub version: &'static str,
    /// The build profile: figures from a debug build are not comparable.
    pub profile: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Seconds of each federation phase.
    pub phase_seconds: u64,
    /// Signature ceiling, if measured.
    pub ceiling: Option<Ceiling>,
    /// The ledger alone, if measured.
    pub ledger: Option<LedgerFigures>,
    /// The federation and its audit, if run.
    pub federation: Option<FederationFigures>,
    /// The ratios.
    pub ratios: Ratios,
    /// The targets.
    pub targets: Vec<Target>,
    /// Wall seconds of the whole bench.
    pub seconds: f64,
}

/// The as-fast-as-accepted phase, if it was run.
fn as_fast_as_accepted(federation: &FederationFigures) -> Option<&PhaseFigures> {
    federation
        .phases
        .iter()
        .find(|phase| phase.offered_per_second.is_none())
}

/// The ratios of what was measured.
pub fn ratios(
    ceiling: Option<&Ceiling>,
    ledger: Option<&LedgerFigures>,
    federation: Option<&FederationFigures>,
) -> Ratios {
    let Some(ceiling) = ceiling else {
        return Ratios::default();
    };
    let fastest = federation.and_then(as_fast_as_accepted);
    Ratios {
        federation_to_ceiling: federation.zip(fastest).map(|(f, phase)| {
            let share = ceiling.batch_all_cores / f.validators as f64;
            stats::ratio(phase.committed_per_second, share)
        }),
        ledger_to_one_core_batch: ledger
            .map(|l| stats::ratio(l.transfers_per_second, ceiling.batch_one_core)),
        audit_to_all_core_batch: federation
            .map(|f| stats::ratio(f.audit.transfers_per_second, ceiling.batch_all_cores)),
    }
}

/// Judges every target against the figures.
pub fn targets(
    machine: &Machine,
    ratios: &Ratios,
    ledger: Option<&LedgerFigures>,
    federation: Option<&FederationFigures>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    let fastest = federation.and_then(as_fast_as_accepted);
    targets.push(Target {
        name: "federation throughput / signature ceiling",
        measured: ratio_text(ratios.federation_to_ceiling),
        target: ">= 0.5",
        met: ratios.federation_to_ceiling.map(|r| r >= 0.5),
        limit: fastest.map_or_else(String::new, |phase| cpu_limit(machine, phase)),
    });

    let latency_phase = federation.and_then(|f| {
        f.phases
            .iter()
            .find(|phase| phase.offered_per_second == Some(LATENCY_RATE))
    });
    targets.push(latency_target(latency_phase));

    targets.push(Target {
        name: "ledger alone / one-core batch rate",
        measured: ratio_text(ratios.ledger_to_one_core_batch),
        target: ">= 0.5",
        met: ratios.ledger_to_one_core_batch.map(|r| r >= 0.5),
        limit: ledger.map_or_else(String::new, ledger_limit),
    });
    targets.push(Target {
        name: "audit / all-core batch rate",
        measured: ratio_text(ratios.audit_to_all_core_batch),
        target: ">= 0.7",
        met: ratios.audit_to_all_core_batch.map(|r| r >= 0.7),
        limit: "signatures, certificates and hashes on every core; the replay beside them".into(),
    });
    targets.push(memory_target(federation));
    targets.push(disk_target(ledger, federation));
    targets
}

fn latency_target(phase: Option<&PhaseFigures>) -> Target {
    let (p50, p99) = phase.map_or((None, None), |p| (p.latency_ms_p50, p.latency_ms_p99));
    let measured = match (p50, p99) {
        (Some(p50), Some(p99)) => format!("p50 {p50:.0} ms, p99 {p99:.0} ms"),
        _ => "not measured".into(),
    };
    Target {
        name: "submit-to-commit latency at 1,000/s offered",
        measured,
        target: "p50 <= 50 ms, p99 <= 250 ms",
        met: p50.zip(p99).map(|(p50, p99)| p50 <= 50.0 && p99 <= 250.0),
        limit: phase.map_or_else(String::new, |p| {
            format!(
                "{:.0} transfers per block, {:.1} blocks/s",
                p.transfers_per_block,
                stats::rate(p.blocks, p.window_seconds + p.drain_seconds)
            )
        }),
    }
}

fn memory_target(federation: Option<&FederationFigures>) -> Target {
    // The first fixed-rate phase is the steady one; overloaded phases fill the mempool.
    let phase = federation.and_then(|f| f.phases.iter().find(|p| p.offered_per_second.is_some()));
    let Some(phase) = phase else {
        return Target {
            name: "per-node memory flat under steady load",
            measured: "not measured".into(),
            target: "flat over 10 minutes",
            met: None,
            limit: String::new(),
        };
    };
    let growth_mib: Vec<String> = phase
        .nodes
        .iter()
        .map(|node| format!("{:+.1}", node.rss_second_half_growth_kib as f64 / 1024.0))
        .collect();
    let flat = phase.nodes.iter().all(|node| node.memory_flat);
    let seconds = phase.window_seconds + phase.drain_seconds;
    let limit = if seconds < MEMORY_RUN_SECONDS {
        format!(
            "only {seconds:.0} s at {}; run --no-max-phase --duration 600 to judge",
            phase.name
        )
    } else {
        format!("{seconds:.0} s at {}", phase.name)
    };
    Target {
        name: "per-node memory flat under steady load",
        measured: format!("second-half growth MiB: {}", growth_mib.join(", ")),
        target: "flat over 10 minutes",
        met: Some(flat),
        limit,
    }
}

fn disk_target(ledger: Option<&LedgerFigures>, federation: Option<&FederationFigures>) -> Target {
    let measured = federation.map(|f| f.disk_bytes_per_transfer);
    let limit = ledger.map_or_else(String::new, |l| {
        format!(
            "ledger alone with full blocks: {:.0} B, of which indexes {:.0} B",
            l.disk_bytes_per_transfer,
            l.disk_bytes_per_transfer - l.disk_bytes_per_transfer_without_indexes
        )
    });
    Target {
        name: "disk per committed transfer, indexes included",
        measured: measured.map_or_else(|| "not measured".into(), |b| format!("{b:.0} B")),
        target: "<= 1024 B",
        met: measured.map(|b| b <= DISK_BYTES_PER_TRANSFER_MAX),
        limit,
    }
}

/// Whether a phase was bound by the machine's CPU, from what the processes used.
fn cpu_limit(machine: &Machine, phase: &PhaseFigures) -> String {
    let nodes: f64 = phase.nodes.iter().map(|node| node.cpu_cores).sum();
    let busy = phase
        .machine_busy_cores
        .max(nodes + phase.load_generator_cpu_cores);
    let verdict = if busy >= 0.85 * machine.cores as f64 {
        "CPU-bound"
    } else {
        "not CPU-bound"
    };
    format!(
        "{verdict}: nodes used {nodes:.2} cores, the load generator {:.2}, other work {:.2}, \
         of {}; {:.0} us of node CPU per transfer; {:.0} transfers per block",
        phase.load_generator_cpu_cores,
        phase.other_cores,
        machine.cores,
        phase.node_cpu_us_per_transfer,
        phase.transfers_per_block
    )
}

/// The largest step of the ledger alone.
fn ledger_limit(ledger: &LedgerFigures) -> String {
    let steps = [
        ("verify", ledger.verify_seconds),
        ("apply and state root", ledger.apply_seconds),
        ("build and encode", ledger.build_seconds),
        ("commit", ledger.commit_seconds),
    ];
    let total: f64 = steps.iter().map(|(_, seconds)| seconds).sum();
    let shares: Vec<String> = steps
        .iter()
        .map(|(name, seconds)| format!("{name} {:.0}%", 100.0 * stats::ratio(*seconds, total)))
        .collect();
    shares.join(", ")
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "not measured".into(), |r| format!("{r:.2}"))
}

/// Prints the report as a table on stdout.
pub fn print(report: &Report) {
    let machine = &report.machine;
    println!(
        "tally bench ({} build) on {} cores of {}, {} MiB, load average {:.2} at start",
        report.profile,
        machine.cores,
        machine.cpu_model,
        machine.memory_kib / 1024,
        machine.load_average_at_start
    );
    if let Some(ceiling) = &report.ceiling {
        println!();
        println!(
            "signature ceiling (signatures/s)      one core   all {} cores",
            ceiling.cores
        );
        println!(
            "  ed25519 verify_strict             {:>10.0}   {:>10.0}",
            ceiling.strict_one_core, ceiling.strict_all_cores
        );
        println!(
            "  batches of {:<5}                  {:>10.0}   {:>10.0}",
            super::ceiling::BATCH,
            ceiling.batch_one_core,
            ceiling.batch_all_cores
        );
    }
    if let Some(ledger) = &report.ledger {
        print_ledger(ledger);
    }
    if let Some(federation) = &report.federation {
        print_federation(federation);
    }
    println!();
    println!("targets");
    for target in &report.targets {
        let verdict = match target.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        println!(
            "  {:<46} {:<34} target {:<28} {verdict}",
            target.name, target.measured, target.target
        );
        if !target.limit.is_empty() {
            println!("  {:<46} limit: {}", "", target.limit);
        }
    }
}

fn print_ledger(ledger: &LedgerFigures) {
    println!();
    println!(
        "ledger alone: {} blocks of {} transfers, one core: {:.0} transfers/s at the median \
         block ({:.0} over all blocks)",
        ledger.blocks,
        ledger.transfers / ledger.blocks.max(1),
        ledger.transfers_per_second,
        ledger.transfers_per_second_overall
    );
    println!(
        "  verify {:.2} s, apply {:.2} s, build {:.2} s, commit {:.2} s (without indexes {:.2} s); \
         commit per block p50 {:.1} ms, p99 {:.1} ms",
        ledger.verify_seconds,
        ledger.apply_seconds,
        ledger.build_seconds,
        ledger.commit_seconds,
        ledger.commit_seconds_without_indexes,
        ledger.commit_ms_p50,
        ledger.commit_ms_p99
    );
    println!(
        "  disk {:.0} B per transfer ({:.0} B without the transfer and history indexes)",
        ledger.disk_bytes_per_transfer, ledger.disk_bytes_per_transfer_without_indexes
    );
}

fn print_federation(federation: &FederationFigures) {
    println!();
    println!(
        "federation: {} validators, {} accounts, height {} at the end",
        federation.validators, federation.accounts, federation.height
    );
    println!(
        "  {:<20} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} {:>18} {:>8} {:>9} {:>7} {:>7}",
        "phase",
        "accepted",
        "commit/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "tx/block",
        "node CPU cores",
        "CPU us/tx",
        "peak MiB",
        "gen CPU",
        "others"
    );
    for phase in &federation.phases {
        let ms = |value: Option<f64>| value.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
        let cores: Vec<String> = phase
            .nodes
            .iter()
            .map(|n| format!("{:.2}", n.cpu_cores))
            .collect();
        let peak = phase
            .nodes
            .iter()
            .map(|n| n.peak_rss_kib)
            .max()
            .unwrap_or(0)
            / 1024;
        println!(
            "  {:<20} {:>9} {:>9.0} {:>7} {:>7} {:>7} {:>8.0} {:>18} {:>8.0} {:>9} {:>7.2} {:>7.2}",
            phase.name,
            phase.submissions.accepted,
            phase.committed_per_second,
            ms(phase.latency_ms_p50),
            ms(phase.latency_ms_p99),
            ms(phase.latency_ms_max),
            phase.transfers_per_block,
            cores.join(" "),
            phase.node_cpu_us_per_transfer,
            peak,
            phase.load_generator_cpu_cores,
            phase.other_cores
        );
        let refused: Vec<String> = phase
            .submissions
            .refused
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect();
        if !refused.is_empty() || phase.submissions.skipped > 0 || phase.submissions.unsent > 0 {
            println!(
                "  {:<20} refused: {}; skipped {}, unsent {}",
                "",
                if refused.is_empty() {
                    "none".into()
                } else {
                    refused.join(", ")
                },
                phase.submissions.skipped,
                phase.submissions.unsent
            );
        }
    }
    let disk: Vec<String> = federation
        .disk_bytes
        .iter()
        .map(|bytes| format!("{:.1}", *bytes as f64 / 1_048_576.0))
        .collect();
    println!(
        "  disk after stopping: {} MiB per node; {:.0} B per committed transfer",
        disk.join(", "),
        federation.disk_bytes_per_transfer
    );
    let audit = &federation.audit;
    println!(
        "audit of the chain log ({} blocks, {} transfers, {:.1} MiB): {:.2} s, {:.0} transfers/s",
        audit.blocks,
        audit.transfers,
        audit.log_bytes as f64 / 1_048_576.0,
        audit.seconds,
        audit.transfers_per_second
    );
}
