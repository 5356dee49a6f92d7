//! The `tally` binary: operator commands for now (`tally node init`, `tally node run`).
//!
//! `tally node run` exits 0 after SIGINT or SIGTERM, and 1 with one line on stderr when it
//! refuses to start or halts.
//!
//! Exit codes: 0 on success, 1 when the command fails (one line on stderr says why), 2 for a
//! command line that does not parse (clap's own).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tally_node::config::Config;
use tally_node::core::Misbehaviour;
use tally_node::datadir;
use tally_node::run::{self, RunOptions};

/// Tally: a payment network run by a federation of operators.
#[derive(Debug, Parser)]
#[command(name = "tally", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run and manage a node.
    #[command(subcommand)]
    Node(NodeCommand),
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Create a data directory: a new key (mode 0600) and a commented config file.
    Init {
        /// The data directory to create.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run the node in a data directory until SIGINT or SIGTERM.
    Run {
        /// The data directory (made by `tally node init`).
        #[arg(long)]
        dir: PathBuf,
        /// The genesis file; overrides `node.genesis` in the config.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Test-only misbehaviour (`invalid-proposals` or `garbage`), for fault tests.
        #[arg(long, hide = true)]
        misbehave: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(NodeCommand::Init { dir }) => node_init(&dir),
        Command::Node(NodeCommand::Run {
            dir,
            genesis,
            misbehave,
        }) => node_run(&dir, genesis, misbehave.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn node_init(dir: &Path) -> Result<(), String> {
    let created = tally_node::init::init(dir).map_err(|error| error.to_string())?;

    // NOTE: scripts and tests read the `address` and `peer_id` lines; keep their form.
    println!("initialised {}", dir.display());
    println!("address {}", created.public_key);
    println!("peer_id {}", created.peer_id);
    println!("config {}", created.config_path.display());
    println!("List the address as a validator in the genesis to make this node a validator.");
    Ok(())
}

fn node_run(dir: &Path, genesis: Option<PathBuf>, misbehave: Option<&str>) -> Result<(), String> {
    let config_path = dir.join(datadir::CONFIG_FILE);
    let config = Config::load(&config_path, std::env::vars()).map_err(|error| error.to_string())?;
    init_logging(&config.log.level)?;

    let misbehaviour = match misbehave {
        None => None,
        Some("invalid-proposals") => Some(Misbehaviour::InvalidProposals),
        Some("garbage") => Some(Misbehaviour::Garbage),
        Some(other) => return Err(format!("unknown misbehaviour {other:?}")),
    };
    let options = RunOptions {
        genesis,
        misbehaviour,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime
        .block_on(run::run(dir, config, options))
        .map_err(|error| error.to_string())
}

/// Logs to stderr, filtered by the config's `log.level`.
fn init_logging(level: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|error| format!("config field log.level is invalid: {error}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    Ok(())
}
