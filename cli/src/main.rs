//! The `tally` binary: node operation, wallet keys, genesis files, chain log export and the
//! auditor.
//!
//! Each command lives in its own module; this file only parses the command line and maps a
//! command's outcome to the documented exit code.

mod account;
mod audit;
mod bench;
mod children;
mod client;
mod devnet;
mod failure;
mod files;
mod genesis;
mod key;
mod log;
mod network;
mod node;
mod progress;
mod source;
mod status;
mod stream;
mod target;
mod transfer;
mod tx;

use std::process::ExitCode;

// A node allocates and frees many small buffers per transfer (gossip, HTTP bodies, sled's
// pages); glibc's allocator spent about a fifth of a loaded node's CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// The exit codes, shown under `tally --help`.
const EXIT_CODES: &str = "Exit codes:\n  0  success\n  1  rejected or failed check \
    (for example an audit that finds a bad block)\n  2  usage or setup error (bad arguments, \
    unreadable file, unreachable node)\n\nErrors are one plain line on stderr.";

/// Tally: a payment network run by a federation of operators.
#[derive(Debug, Parser)]
#[command(name = "tally", version, after_help = EXIT_CODES)]
struct Cli {
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Every `tally` command; each variant's module does the work.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local federation of validator nodes with funded demo wallets (Ctrl-C stops it).
    Devnet(devnet::DevnetArgs),
    /// Sign a transfer locally and submit it to a node.
    Transfer(transfer::TransferArgs),
    /// An account's balance and next sequence number.
    Balance(account::BalanceArgs),
    /// An account's committed transfers, newest first.
    History(account::HistoryArgs),
    /// Where a transfer stands; with --verify, check its receipt against the genesis.
    Tx(tx::TxArgs),
    /// A node's height, role, peers and mempool.
    Status(status::StatusArgs),
    /// Wallet key files.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Genesis files.
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Verify a chain log from a file or from nodes against the genesis, trusting nothing.
    Audit(audit::AuditArgs),
    /// Chain log files.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Run and manage a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Measure throughput, latency, memory and disk against this machine's signature ceiling.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let json = cli.json;
    if !matches!(
        cli.command,
        Command::Node(_) | Command::Devnet(_) | Command::Bench(_)
    ) {
        quiet_on_closed_stdout();
    }
    let result = match cli.command {
        Command::Devnet(args) => devnet::run(&args, json),
        Command::Transfer(args) => transfer::run(&args, json),
        Command::Balance(args) => account::balance(&args, json),
        Command::History(args) => account::history(&args, json),
        Command::Tx(args) => tx::run(&args, json),
        Command::Status(args) => status::run(&args, json),
        Command::Key(command) => key::run(command, json),
        Command::Genesis(command) => genesis::run(command, json),
        Command::Audit(args) => audit::run(&args, json),
        Command::Log(command) => log::run(command, json),
        Command::Node(command) => node::run(command, json),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// A command whose output is piped into a reader that stops early (`tally history … | head`)
/// ends quietly, as other Unix tools do, instead of panicking on its next `println!`. The
/// long-running commands keep Rust's default (SIGPIPE ignored), so a closed socket or pipe
/// is an error they handle, never a silent death.
fn quiet_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition at start, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Help and version go out as clap writes them; a real usage error becomes one line and
/// exit code 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    // `tally` alone, or a command group alone: the help is the most useful answer.
    if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = error.print();
        return ExitCode::from(failure::EXIT_SETUP);
    }
    // clap spreads one error over several lines (the missing arguments go below the
    // sentence); keep everything before the usage hint, on one line.
    let rendered = error.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect();
    let line = parts.join(" ");
    eprintln!("{line}");
    ExitCode::from(failure::EXIT_SETUP)
}
