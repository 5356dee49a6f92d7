//! `tally bench`: how fast Tally runs on this machine, against what its signature checks
//! allow.
//!
//! One run measures, in order: the signature ceiling ([`ceiling`]), the ledger alone in one
//! process ([`ledger`]), a federation of real validator processes under load ([`federation`],
//! with [`phase`], [`load`], [`events`], [`sampler`]), and the audit of the log that
//! federation produced ([`audit_rate`]). It prints a table and writes the same figures as
//! JSON ([`report`]). Every child process dies with the bench ([`crate::children`]).
//!
//! Figures are only meaningful from a release build:
//! `cargo run --release -p tally-cli -- bench`.

mod audit_rate;
mod ceiling;
mod client;
mod disk;
mod events;
mod federation;
mod fixtures;
mod ledger;
mod load;
mod node;
mod phase;
mod procfs;
mod report;
mod sampler;
mod stats;
mod ui;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use protocol::Hash;

use crate::children;
use crate::failure::CommandResult;
use fixtures::Accounts;
use report::{Machine, Report};
use ui::Stage;

/// Transfers signed for the ceiling measurement: four batches.
const CEILING_TRANSFERS: usize = 4 * ceiling::BATCH;

/// The as-fast-as-accepted phase never prepares fewer transfers than this...
const MAX_PHASE_TRANSFERS_MIN: usize = 10_000;

/// ...nor more (memory: each takes about a kilobyte signed and as JSON).
const MAX_PHASE_TRANSFERS_MAX: usize = 400_000;

/// The arguments of `tally bench`.
#[derive(Debug, Args)]
#[command(after_help = "Build with --release for meaningful figures:\n  \
    cargo run --release -p tally-cli -- bench\n\
    A 10-minute steady run for the memory target:\n  \
    tally bench --rates 1000 --no-max-phase --duration 600")]
pub struct BenchArgs {
    /// Where to write the figures as JSON.
    #[arg(long, value_name = "FILE", default_value = "bench.json")]
    out: PathBuf,
    /// Seconds of each federation load phase.
    #[arg(long, value_name = "SECONDS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: u64,
    /// Offered rates (transfers a second), one phase each after the as-fast-as-accepted one.
    #[arg(
        long,
        value_name = "RATE,...",
        value_delimiter = ',',
        default_values_t = [1_000, 5_000, 10_000],
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    rates: Vec<u64>,
    /// Validator processes in the federation.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=16))]
    validators: u64,
    /// Funded accounts in the genesis.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(2..=1_000_000)
    )]
    accounts: u64,
    /// Blocks of 1,000 transfers in the ledger-alone run.
    #[arg(long, value_name = "BLOCKS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    ledger_blocks: u64,
    /// Seconds spent on each of the four signature-ceiling measurements.
    #[arg(long, value_name = "SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    ceiling_seconds: u64,
    /// Measure only the ceiling and the ledger alone: no federation, no audit.
    #[arg(long)]
    no_federation: bool,
    /// Skip the ledger-alone run (its target and the disk target's breakdown are then not
    /// measured).
    #[arg(long)]
    no_ledger: bool,
    /// Skip the federation's as-fast-as-accepted phase and run only the offered rates (the
    /// throughput target is then not measured). For quick latency runs.
    #[arg(long, conflicts_with = "no_federation")]
    no_max_phase: bool,
    /// Working directory for databases, logs and the chain log; must not exist. Default: a
    /// new directory under the system's temporary directory, removed after a good run.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the working directory after a good run.
    #[arg(long)]
    keep: bool,
}

/// Runs `tally bench`.
pub fn run(args: &BenchArgs) -> CommandResult {
    let started = Instant::now();
    children::kill_all_on_interrupt();
    check_out(&args.out)?;
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => default_dir(),
    };
    if root.exists() {
        let message = format!(
            "{} already exists; the bench needs a fresh directory",
            root.display()
        );
        return Err(anyhow::anyhow!(message).into());
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;

    let stage = Stage::new();
    let result = measure(args, &root, &stage);
    stage.finish();
    let mut report = result.with_context(|| format!("files kept in {}", root.display()))?;
    report.seconds = started.elapsed().as_secs_f64();

    report::print(&report);
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    std::fs::write(&args.out, json + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!();
    println!("figures written to {}", args.out.display());

    if args.keep || args.dir.is_some() {
        println!("working files kept in {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// Every measurement, in order.
fn measure(args: &BenchArgs, root: &Path, stage: &Stage) -> anyhow::Result<Report> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let machine = Machine::describe(cores);
    let accounts = Accounts::new(usize::try_from(args.accounts).context("account count")?);

    stage.say("ceiling: signing transfers");
    let mut next_sequence = vec![Some(1); accounts.len()];
    let sample = fixtures::plan(Hash::ZERO, &accounts, &mut next_sequence, CEILING_TRANSFERS);
    let sample: Vec<_> = sample.into_iter().map(|planned| planned.signed).collect();
    stage.say("ceiling: verifying signatures");
    let ceiling = ceiling::measure(&sample, args.ceiling_seconds as f64);
    drop(sample);

    let ledger = if args.no_ledger {
        None
    } else {
        stage.say("ledger alone: committing blocks");
        Some(ledger::run(root, &accounts, args.ledger_blocks)?)
    };

    let federation = if args.no_federation {
        None
    } else {
        let validators = usize::try_from(args.validators).context("validator count")?;
        let share = ceiling.batch_all_cores / validators as f64;
        let wanted = (share * args.duration as f64) as usize;
        let plan = federation::Plan {
            validators,
            window: Duration::from_secs(args.duration),
            rates: args.rates.clone(),
            max_phase: !args.no_max_phase,
            max_phase_transfers: wanted.clamp(MAX_PHASE_TRANSFERS_MIN, MAX_PHASE_TRANSFERS_MAX),
        };
        Some(federation::run(
            &root.join("federation"),
            &accounts,
            &plan,
            stage,
        )?)
    };

    let ratios = report::ratios(Some(&ceiling), ledger.as_ref(), federation.as_ref());
    let targets = report::targets(&machine, &ratios, ledger.as_ref(), federation.as_ref());
    Ok(Report {
        version: env!("CARGO_PKG_VERSION"),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine,
        phase_seconds: args.duration,
        ceiling: Some(ceiling),
        ledger,
        federation,
        ratios,
        targets,
        seconds: 0.0,
    })
}

/// Refuses an output path whose directory does not exist, before minutes of measuring.
fn check_out(out: &Path) -> anyhow::Result<()> {
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "cannot write {}: {} is not a directory",
            out.display(),
            parent.display()
        );
    }
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn default_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    std::env::temp_dir().join(format!("tally-bench-{}-{nanos}", std::process::id()))
}
