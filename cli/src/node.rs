//! `tally node init` and `tally node run`: the operator's commands.
//!
//! `tally node run` exits 0 after SIGINT or SIGTERM. It exits 2 with one line on stderr when
//! it refuses to start (key file, genesis, data directory, database), and 1 when a running
//! node halts (a failed disk write, or a certified block whose replay disagrees with it).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tally_node::config::Config;
use tally_node::core::Misbehaviour;
use tally_node::datadir;
use tally_node::run::{self, RunError, RunOptions};

use crate::failure::{CommandResult, Failure};

/// `tally node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a data directory: a new key (mode 0600) and a commented config file.
    ///
    /// Example: tally node init --dir ./node1
    Init {
        /// The data directory to create.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run the node in a data directory until SIGINT or SIGTERM.
    ///
    /// Example: tally node run --dir ./node1 --genesis ./genesis.toml
    Run {
        /// The data directory (made by `tally node init`).
        #[arg(long)]
        dir: PathBuf,
        /// The genesis file; overrides `node.genesis` in the config.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Test-only misbehaviour (`invalid-proposals`, `garbage`, `equivocate`,
        /// `withhold-blocks` or `hide-proposals`), for fault tests.
        #[arg(long, hide = true)]
        misbehave: Option<String>,
    },
}

/// Runs one `tally node` command.
pub fn run(command: NodeCommand, json: bool) -> CommandResult {
    match command {
        NodeCommand::Init { dir } => init(&dir, json),
        NodeCommand::Run {
            dir,
            genesis,
            misbehave,
        } => node_run(&dir, genesis, misbehave.as_deref()),
    }
}

fn init(dir: &Path, json: bool) -> CommandResult {
    let created = tally_node::init::init(dir)?;
    if json {
        let value = serde_json::json!({
            "dir": dir.display().to_string(),
            "address": created.public_key.to_address(),
            "peer_id": created.peer_id,
            "config": created.config_path.display().to_string(),
        });
        println!("{value}");
        return Ok(());
    }

    // NOTE: scripts and tests read the `address` and `peer_id` lines; keep their form.
    println!("initialised {}", dir.display());
    println!("address {}", created.public_key);
    println!("peer_id {}", created.peer_id);
    println!("config {}", created.config_path.display());
    println!("List the address as a validator in the genesis to make this node a validator.");
    Ok(())
}

fn node_run(dir: &Path, genesis: Option<PathBuf>, misbehave: Option<&str>) -> CommandResult {
    let config_path = dir.join(datadir::CONFIG_FILE);
    let config = Config::load(&config_path, std::env::vars())?;
    init_logging(&config.log.level)?;

    let misbehaviour = match misbehave {
        None => None,
        Some("invalid-proposals") => Some(Misbehaviour::InvalidProposals),
        Some("garbage") => Some(Misbehaviour::Garbage),
        Some("equivocate") => Some(Misbehaviour::Equivocate),
        Some("withhold-blocks") => Some(Misbehaviour::WithholdBlocks),
        Some("hide-proposals") => Some(Misbehaviour::HideProposals),
        Some(other) => return Err(anyhow::anyhow!("unknown misbehaviour {other:?}").into()),
    };
    let options = RunOptions {
        genesis,
        misbehaviour,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(run::run(dir, config, options)) {
        Ok(()) => Ok(()),
        // A halt happened while running: the node did its job of stopping, and says why.
        Err(halt @ RunError::Halt(_)) => Err(Failure::rejected(halt)),
        Err(setup) => Err(setup.into()),
    }
}

/// Logs to stderr, filtered by the config's `log.level`.
fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|error| anyhow::anyhow!("config field log.level is invalid: {error}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    Ok(())
}
