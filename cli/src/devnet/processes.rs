//! The devnet's node processes: starting them, waiting until they answer, and stopping
//! them cleanly.
//!
//! Each node is `tally node run` of this same binary, its output appended to `node.log` in
//! its data directory, run as a [`Child`]: the kernel sends it SIGTERM if this process dies
//! without stopping it (a killed terminal, SIGKILL), so no node outlives its devnet.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::manifest::NodeEntry;
use crate::children::Child;
use crate::client::Client;

/// A node's log file inside its data directory.
pub const LOG_FILE: &str = "node.log";

/// How long a node may take to answer its API after it starts (a first start creates its
/// database; a restart replays nothing but may be busy catching up).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running node.
pub struct NodeChild {
    /// Its name (`node0`).
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its log file, for pointing at when it fails.
    pub log: std::path::PathBuf,
}

/// Starts `tally node run` for `node`.
pub fn spawn(node: &NodeEntry) -> anyhow::Result<NodeChild> {
    let log = node.dir.join(LOG_FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context("finding the tally binary")?;

    let mut command = Command::new(exe);
    command
        .args(["node", "run", "--dir"])
        .arg(&node.dir)
        .stdin(Stdio::null())
        .stdout(
            file.try_clone()
                .context("duplicating the log file handle")?,
        )
        .stderr(file);
    let child = Child::spawn(&mut command, libc::SIGTERM)
        .with_context(|| format!("starting {}", node.name))?;
    Ok(NodeChild {
        name: node.name.clone(),
        child,
        log,
    })
}

/// Waits until `node` answers `GET /v1/status` as itself, a validator, or fails naming why
/// it never did.
///
/// The answer must carry the node's own address: a process of another devnet on the same
/// port would otherwise pass for this one.
pub fn wait_ready(node: &mut NodeChild, entry: &NodeEntry) -> anyhow::Result<()> {
    let client = Client::new(&entry.api);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = node.child.exited() {
            bail!("{}", exited(node, status));
        }
        if let Ok(status) = client.get("/v1/status") {
            let address = status.get("address").and_then(|v| v.as_str());
            if address != Some(entry.address.as_str()) {
                bail!(
                    "{} answers as {} instead of {}: another process holds {}; stop it or use \
                     --base-port",
                    entry.api,
                    address.unwrap_or("an unknown node"),
                    entry.address,
                    entry.api
                );
            }
            let role = status.get("role").and_then(|v| v.as_str());
            if role != Some("validator") {
                bail!(
                    "{} runs as a {} node, not a validator: its key file {} is not the key the \
                     genesis lists",
                    node.name,
                    role.unwrap_or("unknown"),
                    entry.dir.join("node.key").display()
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not answer on {} within {} s; see {}",
                node.name,
                entry.api,
                READY_TIMEOUT.as_secs(),
                node.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Refuses to start when a port the devnet needs is taken, naming it, so that a second devnet
/// on the same ports fails at once instead of reaching the first one's nodes.
pub fn check_ports_free(ports: impl IntoIterator<Item = u16>) -> anyhow::Result<()> {
    for port in ports {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!(
                "port {port} on 127.0.0.1 is in use (is this devnet already running?); stop what \
                 holds it, or make a devnet elsewhere with --dir and --base-port"
            );
        }
    }
    Ok(())
}

/// One line saying that a node stopped, with the last line of its log.
pub fn exited(node: &NodeChild, status: ExitStatus) -> String {
    let last = last_line(&node.log).unwrap_or_default();
    format!(
        "{} exited ({status}); last log line: {last} (log: {})",
        node.name,
        node.log.display()
    )
}

/// Stops every node: SIGTERM to all at once, then SIGKILL for any that has not exited in
/// time.
pub fn stop_all(nodes: &mut [NodeChild]) {
    for node in nodes.iter_mut() {
        node.child.terminate();
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for node in nodes.iter_mut() {
        let patience = deadline.saturating_duration_since(Instant::now());
        if node.child.exited().is_none() && node.child.stop(patience).is_none() {
            tracing::warn!(node = %node.name, "did not stop in time; killed");
        }
    }
}

/// The last non-empty line of a file.
fn last_line(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|line| !line.trim().is_empty())
        .last()
}
