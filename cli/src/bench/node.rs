//! One validator of the bench federation: the real `tally` binary, started with
//! `node init` and `node run` on 127.0.0.1.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use protocol::PublicKey;
use tally_node::datadir::{self, BoundAddresses};

use crate::children::Child;

/// How long a node may take to bind its ports.
const BIND_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment of every node: loopback listeners on free ports, quick redials. Everything
/// else is the default configuration that `node init` writes, as an operator would run it.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("TALLY_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0"),
    ("TALLY_API_LISTEN", "127.0.0.1:0"),
    ("TALLY_P2P_REDIAL_INTERVAL_MS", "300"),
    ("TALLY_LOG_LEVEL", "info"),
];

/// A validator process and its files.
pub struct Node {
    /// Its data directory.
    pub dir: PathBuf,
    /// Its log file (outside the data directory, so it does not count as disk use).
    pub log: PathBuf,
    /// Its validator key, printed by `node init`.
    pub address: PublicKey,
    /// Its HTTP address, `127.0.0.1:PORT`, once started.
    pub api: String,
    /// Its libp2p addresses, once started.
    pub p2p: Vec<String>,
    /// The process, while running.
    pub child: Option<Child>,
}

impl Node {
    /// Runs `tally node init` for a fresh data directory `dir`.
    pub fn init(exe: &Path, dir: &Path, log: &Path) -> anyhow::Result<Node> {
        let output = Command::new(exe)
            .args(["node", "init", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .context("running tally node init")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!("tally node init failed: {}", stderr.trim());
        }
        let address = stdout
            .lines()
            .find_map(|line| line.strip_prefix("address "))
            .ok_or_else(|| anyhow!("tally node init printed no address"))?;
        let address = PublicKey::from_address(address.trim())
            .map_err(|error| anyhow!("tally node init printed a bad address: {error}"))?;
        Ok(Node {
            dir: dir.to_owned(),
            log: log.to_owned(),
            address,
            api: String::new(),
            p2p: Vec::new(),
            child: None,
        })
    }

    /// Starts `tally node run` dialling `bootstrap`, and waits until it has bound its ports.
    pub fn start(
        &mut self,
        exe: &Path,
        genesis: &Path,
        bootstrap: &[String],
    ) -> anyhow::Result<()> {
        let addresses = self.dir.join(datadir::ADDRESSES_FILE);
        let _ = std::fs::remove_file(&addresses);
        let log =
            File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let mut command = Command::new(exe);
        command
            .args(["node", "run", "--dir"])
            .arg(&self.dir)
            .arg("--genesis")
            .arg(genesis)
            .envs(ENVIRONMENT.iter().copied())
            .env("TALLY_P2P_BOOTSTRAP", bootstrap.join(","))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child =
            Some(Child::spawn(&mut command, libc::SIGKILL).context("starting tally node run")?);

        let deadline = Instant::now() + BIND_TIMEOUT;
        loop {
            let bound = std::fs::read_to_string(&addresses)
                .ok()
                .and_then(|text| serde_json::from_str::<BoundAddresses>(&text).ok());
            if let Some(bound) = bound {
                self.api = bound.api;
                self.p2p = bound.p2p;
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(Child::exited) {
                bail!(
                    "a node exited at start ({status}); see {}",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "a node did not bind its ports in time; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<String> {
        self.child.as_ref().map(Child::pid)
    }

    /// The database directory.
    pub fn db(&self) -> PathBuf {
        self.dir.join(datadir::DB_DIR)
    }

    /// Stops the node with SIGTERM (it flushes its database), killing it after 30 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop(Duration::from_secs(30));
        }
    }
}
