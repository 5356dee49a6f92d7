//! `tally audit`: verify a chain log from a file or from nodes, trusting none of them.
//!
//! The log streams through the protocol crate's decoder and [`Auditor`] (see
//! [`crate::stream`]). With several `--node` URLs each node's log is audited in full, then
//! their certified heads are compared: a node behind the others is reported (a live network
//! keeps growing while it is audited, so that alone is no failure), and a node whose chain
//! differs from the longest one fails the audit.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use protocol::chain_log::{Decoder, LogError, LogItem};
use protocol::{Auditor, Genesis, Hash, format_amount};
use serde_json::{Value, json};

use crate::devnet::manifest::Manifest;
use crate::failure::{CommandResult, Failure};
use crate::files;
use crate::progress::Progress;
use crate::source::{self, Source};
use crate::stream::{self, StreamFailure, StreamOutcome};
use crate::target::NodeArg;

/// The arguments of `tally audit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tally audit --file chain.log --genesis genesis.toml\n  \
    tally audit --node http://127.0.0.1:7100 --node http://127.0.0.1:7101 --genesis genesis.toml"
)]
pub struct AuditArgs {
    /// A chain log written by `tally log export`.
    #[arg(long, value_name = "FILE", conflicts_with = "node")]
    file: Option<PathBuf>,
    /// A node's API URL; repeat it to audit several nodes and compare their heads. Default
    /// (without --file): $TALLY_NODE, else the first node of ./devnet.
    #[arg(long, value_name = "URL")]
    node: Vec<String>,
    /// The genesis file the chain must start from; default: the genesis of ./devnet.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
}

/// `--genesis`, else the devnet's: an auditor may trust its own devnet's file.
fn genesis_path(args: &AuditArgs) -> anyhow::Result<PathBuf> {
    match &args.genesis {
        Some(path) => Ok(path.clone()),
        None => Manifest::find()?
            .map(|manifest| manifest.genesis)
            .ok_or_else(|| anyhow!("--genesis FILE is needed (no ./devnet to take it from)")),
    }
}

/// One source's audit.
struct Report {
    source: Source,
    outcome: StreamOutcome,
    seconds: f64,
}

/// How a node's head compares with the longest valid chain.
enum Standing {
    /// Same height and head as the longest.
    Agrees,
    /// A prefix of the longest: behind by this many blocks.
    Behind(u64),
    /// Its chain is not the longest one's.
    Differs,
    /// Its own log failed the audit.
    Failed,
}

/// Runs `tally audit`.
pub fn run(args: &AuditArgs, json: bool) -> CommandResult {
    let genesis = files::read_genesis(&genesis_path(args)?)?;
    let sources: Vec<Source> = match &args.file {
        Some(file) => vec![Source::File(file.clone())],
        None if args.node.is_empty() => vec![Source::Node(NodeArg { node: None }.url()?)],
        None => args.node.iter().cloned().map(Source::Node).collect(),
    };

    let mut reports = Vec::with_capacity(sources.len());
    for source in sources {
        reports.push(audit_source(&genesis, source)?);
    }
    if let [report] = reports.as_slice() {
        print_single(&genesis, report, json);
        return verdict(report);
    }

    let (reference, standings) = compare(&genesis, &reports)?;
    print_many(&genesis, &reports, &standings, json);
    let differing = reports
        .iter()
        .zip(&standings)
        .filter(|(_, standing)| matches!(standing, Standing::Differs))
        .map(|(report, _)| report.source.label())
        .collect::<Vec<_>>();
    if let Some(report) = reports.iter().find(|r| r.outcome.failure.is_some()) {
        return verdict(report);
    }
    if !differing.is_empty() {
        let nodes = differing.join(", ");
        let reference = reference.map_or_else(String::new, |r| r.label());
        let message = format!("nodes disagree: {nodes} not on the chain of {reference}");
        return Err(Failure::rejected(anyhow!(message)));
    }
    Ok(())
}

fn audit_source(genesis: &Genesis, source: Source) -> anyhow::Result<Report> {
    let mut auditor = Auditor::new(genesis).context("genesis")?;
    let mut opened = source::open(&source, 1)?;
    let progress = Progress::new(opened.len, &source.label());

    let started = Instant::now();
    let outcome = stream::audit(&mut opened.reader, &mut auditor, &progress);
    let seconds = started.elapsed().as_secs_f64();
    progress.finish();
    Ok(Report {
        source,
        outcome,
        seconds,
    })
}

/// The exit status of one source's audit: 1 for a bad log, 2 when it could not be read.
fn verdict(report: &Report) -> CommandResult {
    let label = report.source.label();
    match &report.outcome.failure {
        None => Ok(()),
        Some(StreamFailure::Read(error)) => Err(anyhow!("reading {label}: {error}").into()),
        Some(failure) => {
            let (_, message) = describe(failure);
            Err(Failure::rejected(anyhow!(
                "audit of {label} failed: {message}"
            )))
        }
    }
}

/// A failure's stable kind and its one-line message.
fn describe(failure: &StreamFailure) -> (&'static str, String) {
    match failure {
        StreamFailure::Audit(error) => (error.failure.kind(), error.to_string()),
        StreamFailure::Log(error) => (log_kind(error), error.to_string()),
        StreamFailure::Read(error) => ("read_error", format!("reading the log: {error}")),
    }
}

/// The height a failure names, when it names one.
fn failure_height(failure: &StreamFailure) -> Option<u64> {
    match failure {
        StreamFailure::Audit(error) => Some(error.height),
        StreamFailure::Log(
            LogError::UnknownRecord { height, .. }
            | LogError::BlockTooLarge { height, .. }
            | LogError::CertificateTooLarge { height, .. }
            | LogError::BadBlock { height, .. }
            | LogError::BadCertificate { height, .. },
        ) => Some(*height),
        StreamFailure::Log(_) | StreamFailure::Read(_) => None,
    }
}

fn log_kind(error: &LogError) -> &'static str {
    match error {
        LogError::Truncated { .. } | LogError::TruncatedHeader { .. } => "truncated_log",
        LogError::TrailingBytes(_) => "trailing_bytes",
        LogError::WrongNetwork { .. } => "wrong_network",
        LogError::CountMismatch { .. }
        | LogError::LastHashMismatch { .. }
        | LogError::DigestMismatch { .. } => "bad_end_record",
        _ => "malformed_log",
    }
}

/// Places every node against the longest chain that passed its audit, which it returns.
fn compare(
    genesis: &Genesis,
    reports: &[Report],
) -> anyhow::Result<(Option<Source>, Vec<Standing>)> {
    // The reference is the first of the longest valid logs, in command-line order: with two
    // different heads at one height there is no telling which is right, only that they
    // differ.
    let passed = reports.iter().filter(|r| r.outcome.failure.is_none());
    let longest = passed.fold(None::<&Report>, |best, report| match best {
        Some(best) if best.outcome.summary.height >= report.outcome.summary.height => Some(best),
        _ => Some(report),
    });
    let Some(longest) = longest else {
        return Ok((None, reports.iter().map(|_| Standing::Failed).collect()));
    };
    let top = &longest.outcome.summary;

    let mut standings = Vec::with_capacity(reports.len());
    for report in reports {
        let summary = &report.outcome.summary;
        let standing = if report.outcome.failure.is_some() {
            Standing::Failed
        } else if summary.height == top.height {
            if summary.head == top.head {
                Standing::Agrees
            } else {
                Standing::Differs
            }
        } else if summary.height == 0 {
            Standing::Behind(top.height)
        } else {
            // The longest node's block at this node's height must be this node's head.
            let theirs = block_hash_at(genesis, &longest.source, summary.height)?;
            if theirs == summary.head {
                Standing::Behind(top.height - summary.height)
            } else {
                Standing::Differs
            }
        };
        standings.push(standing);
    }
    Ok((Some(longest.source.clone()), standings))
}

/// The hash of the block at `height` in a node's log, read from `GET /v1/log?from=height`.
fn block_hash_at(genesis: &Genesis, source: &Source, height: u64) -> anyhow::Result<Option<Hash>> {
    let mut opened = source::open(source, height)?;
    let mut decoder = Decoder::new(Some(genesis.network_id()), genesis.max_block_bytes);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = opened.reader.read(&mut chunk)?;
        if read == 0 {
            return Ok(None);
        }
        decoder.push(&chunk[..read]);
        while let Some(item) = decoder.next_item()? {
            match item {
                LogItem::Block(certified) if certified.block.header.height == height => {
                    return Ok(Some(certified.block.hash()));
                }
                LogItem::Block(certified) => {
                    let got = certified.block.header.height;
                    bail!("asked for height {height}, the node sent height {got}");
                }
                LogItem::Header(_) => {}
                LogItem::End(_) => return Ok(None),
            }
        }
    }
}

fn report_json(genesis: &Genesis, report: &Report) -> Value {
    let summary = &report.outcome.summary;
    let failure = report.outcome.failure.as_ref().map(|failure| {
        let (kind, message) = describe(failure);
        let height = failure_height(failure).map(|height| height.to_string());
        json!({ "kind": kind, "height": height, "message": message })
    });
    json!({
        "ok": failure.is_none(),
        "source": report.source.label(),
        "network": genesis.network,
        "network_id": genesis.network_id().to_hex(),
        "blocks": summary.blocks,
        "transfers": summary.transfers,
        "accounts": summary.accounts,
        "height": summary.height.to_string(),
        "head": summary.head.map(|hash| hash.to_hex()),
        "state_root": summary.state_root.to_hex(),
        "total_supply": supply_text(genesis, summary.total_supply),
        "bytes": report.outcome.bytes,
        "log_digest": report.outcome.end.map(|end| end.digest.to_hex()),
        "seconds": report.seconds,
        "blocks_per_second": rate(summary.blocks, report.seconds),
        "transfers_per_second": rate(summary.transfers, report.seconds),
        "failure": failure,
    })
}

fn print_single(genesis: &Genesis, report: &Report, json: bool) {
    if json {
        println!("{}", report_json(genesis, report));
    } else {
        print_report(genesis, report);
    }
}

fn print_many(genesis: &Genesis, reports: &[Report], standings: &[Standing], json: bool) {
    if json {
        let nodes: Vec<Value> = reports.iter().map(|r| report_json(genesis, r)).collect();
        let comparison: Vec<Value> = reports
            .iter()
            .zip(standings)
            .map(|(report, standing)| {
                let (status, behind) = standing_text(standing);
                json!({ "node": report.source.label(), "status": status, "behind": behind })
            })
            .collect();
        let ok = reports.iter().all(|r| r.outcome.failure.is_none())
            && !standings.iter().any(|s| matches!(s, Standing::Differs));
        println!(
            "{}",
            json!({ "ok": ok, "nodes": nodes, "comparison": comparison })
        );
        return;
    }

    for report in reports {
        print_report(genesis, report);
        println!();
    }
    println!("comparison of certified heads:");
    for (report, standing) in reports.iter().zip(standings) {
        let (status, behind) = standing_text(standing);
        let height = report.outcome.summary.height;
        match behind {
            Some(behind) => println!(
                "  {}  height {height}: {status} by {behind} blocks",
                report.source.label()
            ),
            None => println!("  {}  height {height}: {status}", report.source.label()),
        }
    }
}

fn standing_text(standing: &Standing) -> (&'static str, Option<u64>) {
    match standing {
        Standing::Agrees => ("agrees", None),
        Standing::Behind(blocks) => ("behind", Some(*blocks)),
        Standing::Differs => ("differs", None),
        Standing::Failed => ("failed", None),
    }
}

fn print_report(genesis: &Genesis, report: &Report) {
    let summary = &report.outcome.summary;
    let outcome = &report.outcome;
    let status = if outcome.failure.is_none() {
        "passed"
    } else {
        "FAILED"
    };
    println!("audit {status}: {}", report.source.label());
    println!(
        "network       {} ({})",
        genesis.network,
        genesis.network_id()
    );
    println!("blocks        {}", summary.blocks);
    println!("transfers     {}", summary.transfers);
    println!("accounts      {}", summary.accounts);
    println!(
        "height        {} (highest certified height verified)",
        summary.height
    );
    let head = summary
        .head
        .map_or_else(|| "none".to_string(), |hash| hash.to_hex());
    println!("head          {head}");
    println!("state root    {}", summary.state_root);
    let supply = supply_text(genesis, summary.total_supply);
    let conserved = if summary.total_supply == u128::from(genesis.total_supply()) {
        "conserved"
    } else {
        "NOT conserved"
    };
    println!("total supply  {supply} ({conserved})");
    println!(
        "rate          {:.0} blocks/s, {:.0} transfers/s ({:.2} s, {} bytes)",
        rate(summary.blocks, report.seconds),
        rate(summary.transfers, report.seconds),
        report.seconds,
        outcome.bytes
    );
    if let Some(failure) = &outcome.failure {
        let (kind, message) = describe(failure);
        println!("failure       {kind}: {message}");
    }
}

fn supply_text(genesis: &Genesis, supply: u128) -> String {
    match u64::try_from(supply) {
        Ok(units) => format_amount(units, genesis.decimals),
        Err(_) => format!("{supply} units"),
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}
