//! `tally devnet`: a local federation in one command, for trying Tally with no setup.
//!
//! The first run in a directory creates everything (see [`setup`]): N validator nodes with
//! their keys and configs, funded demo wallets, a genesis, and `devnet.json` (see
//! [`manifest`]), which the other commands read for their defaults. Every later run in the
//! same directory resumes that network with its data. The nodes run as child processes (see
//! [`processes`]) until Ctrl-C or SIGTERM, which stops each one cleanly.

pub mod manifest;
mod processes;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use protocol::{Decimals, format_amount};

use crate::failure::{CommandResult, Failure};
use manifest::{MANIFEST_FILE, Manifest};
use processes::NodeChild;
use setup::Shape;

/// How often the devnet checks that its nodes are still running.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The arguments of `tally devnet`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  tally devnet\n  \
    tally devnet --nodes 7 --dir /tmp/big --accounts 50 --base-port 9100\n\n\
    Node i serves its API on port BASE+i and talks to peers on BASE+100+i \
    (7100.. and 7200.. by default).")]
pub struct DevnetArgs {
    /// Validator nodes to run (first run only; default 4).
    #[arg(long, allow_hyphen_values = true)]
    nodes: Option<usize>,
    /// The devnet's directory; running again with the same one resumes its network.
    #[arg(long, default_value = manifest::DEFAULT_DIR)]
    dir: PathBuf,
    /// Funded demo wallets (first run only; default 10).
    #[arg(long, allow_hyphen_values = true)]
    accounts: Option<usize>,
    /// The first port (first run only; default 7100).
    #[arg(long)]
    base_port: Option<u16>,
}

/// Runs `tally devnet` until Ctrl-C or SIGTERM.
pub fn run(args: &DevnetArgs, json: bool) -> CommandResult {
    let manifest = open_or_create(args)?;
    let mut children = Vec::with_capacity(manifest.nodes.len());

    let started = start(&manifest, &mut children);
    if let Err(error) = started {
        processes::stop_all(&mut children);
        return Err(error.into());
    }
    print_summary(&manifest, &args.dir, json)?;

    let outcome = watch(&mut children);
    let mut running = 0;
    for node in children.iter_mut() {
        running += usize::from(node.child.exited().is_none());
    }
    eprintln!("stopping {running} nodes…");
    processes::stop_all(&mut children);
    eprintln!("devnet stopped; run `tally devnet` again to resume it");
    outcome.map_err(Failure::from)
}

/// The existing devnet in `args.dir`, or a new one; options that would change an existing
/// devnet's shape are refused rather than ignored.
fn open_or_create(args: &DevnetArgs) -> anyhow::Result<Manifest> {
    if args.dir.join(MANIFEST_FILE).exists() {
        let manifest = Manifest::read(&args.dir)?;
        refuse_change("--nodes", args.nodes, manifest.nodes.len(), &args.dir)?;
        refuse_change(
            "--accounts",
            args.accounts,
            manifest.wallets.len(),
            &args.dir,
        )?;
        refuse_change("--base-port", args.base_port, manifest.base_port, &args.dir)?;
        let shape = Shape {
            nodes: manifest.nodes.len(),
            accounts: manifest.wallets.len(),
            base_port: manifest.base_port,
        };
        processes::check_ports_free(shape.ports())?;
        return Ok(manifest);
    }
    let shape = Shape {
        nodes: args.nodes.unwrap_or(4),
        accounts: args.accounts.unwrap_or(10),
        base_port: args.base_port.unwrap_or(7100),
    };
    shape.check()?;
    processes::check_ports_free(shape.ports())?;
    setup::create(&args.dir, shape)
}

fn refuse_change<T: PartialEq + std::fmt::Display>(
    option: &str,
    asked: Option<T>,
    existing: T,
    dir: &Path,
) -> anyhow::Result<()> {
    match asked {
        Some(asked) if asked != existing => bail!(
            "the devnet in {} was made with {option} {existing}, not {asked}; use another \
             --dir for a different devnet",
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// Starts every node, then waits for each to answer.
fn start(manifest: &Manifest, children: &mut Vec<NodeChild>) -> anyhow::Result<()> {
    for node in &manifest.nodes {
        children.push(processes::spawn(node)?);
    }
    for (child, node) in children.iter_mut().zip(&manifest.nodes) {
        processes::wait_ready(child, node)?;
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM; a node that stops by itself on the way is reported.
fn watch(children: &mut [NodeChild]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        let mut reported = vec![false; children.len()];
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
                _ = tick.tick() => {
                    report_exits(children, &mut reported);
                    if reported.iter().all(|gone| *gone) {
                        bail!("every node has stopped; see the lines above");
                    }
                }
            }
        }
    })
}

/// Prints one line for each node that has stopped since the last check.
fn report_exits(children: &mut [NodeChild], reported: &mut [bool]) {
    for (child, reported) in children.iter_mut().zip(reported.iter_mut()) {
        if *reported {
            continue;
        }
        if let Some(status) = child.child.exited() {
            eprintln!("warning: {}", processes::exited(child, status));
            *reported = true;
        }
    }
}

/// The table a newcomer needs: where the nodes answer and which wallets hold money.
fn print_summary(manifest: &Manifest, dir: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(manifest)?);
        return Ok(());
    }
    let decimals = Decimals::new(2).expect("2 decimal places are allowed");
    let balance = format_amount(setup::WALLET_BALANCE, decimals);
    println!(
        "Tally devnet {} running: {} validators, network {}",
        setup::NETWORK_NAME,
        manifest.nodes.len(),
        manifest.network_id
    );
    println!();
    println!("{:<7} {:<23} {:<6} address", "node", "api", "p2p");
    for node in &manifest.nodes {
        let port = node.p2p.split('/').nth(4).unwrap_or("?");
        println!(
            "{:<7} {:<23} {:<6} {}",
            node.name, node.api, port, node.address
        );
    }
    println!();
    println!("demo wallets ({balance} each at genesis):");
    for wallet in &manifest.wallets {
        println!("  {}  {}", wallet.key.display(), wallet.address);
    }
    println!();
    println!("genesis   {}", manifest.genesis.display());
    let manifest_path = manifest.genesis.with_file_name(MANIFEST_FILE);
    println!("manifest  {}", manifest_path.display());
    println!("logs      <node dir>/{}", processes::LOG_FILE);
    if dir == Path::new(manifest::DEFAULT_DIR) {
        println!(
            "Other tally commands in this directory use {} by default.",
            manifest.nodes[0].api
        );
    } else {
        println!(
            "Other tally commands use {} by default with {}={}.",
            manifest.nodes[0].api,
            manifest::DIR_ENV,
            dir.display()
        );
    }
    println!("Ctrl-C stops every node.");
    Ok(())
}
