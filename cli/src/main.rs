//! The `tally` binary: operator commands for now (`tally node init`, `tally node run`).
//!
//! Exit codes: 0 on success, 1 when the command fails (one line on stderr says why), 2 for a
//! command line that does not parse (clap's own).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(NodeCommand::Init { dir }) => node_init(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn node_init(dir: &std::path::Path) -> Result<(), String> {
    let created = tally_node::init::init(dir).map_err(|error| error.to_string())?;

    // NOTE: scripts and tests read the `address` and `peer_id` lines; keep their form.
    println!("initialised {}", dir.display());
    println!("address {}", created.public_key);
    println!("peer_id {}", created.peer_id);
    println!("config {}", created.config_path.display());
    println!("List the address as a validator in the genesis to make this node a validator.");
    Ok(())
}
