//! Helpers for tests that run real `tally` processes on 127.0.0.1.
//!
//! Every node listens on port 0 and writes the addresses it bound into its data directory;
//! its output goes to a log file there. A [`NodeProcess`] kills its child when dropped, so a
//! failing assertion never leaves a process behind to hang CI.

#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The built `tally` binary.
pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// Runs `tally` with `args` to completion and returns (exit code, stdout, stderr).
pub fn tally(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(TALLY)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("tally runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The identity printed by `tally node init`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The `tly1…` address.
    pub address: String,
    /// The libp2p peer id.
    pub peer_id: String,
}

/// Runs `tally node init --dir DIR` and reads the identity it printed.
pub fn init(dir: &Path) -> Identity {
    let (code, stdout, stderr) = tally(&["node", "init", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "init failed: {stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("init printed no {name} line: {stdout}"))
            .to_string()
    };
    Identity {
        address: field("address"),
        peer_id: field("peer_id"),
    }
}

/// A running (or stopped) `tally node run` process.
pub struct NodeProcess {
    /// Its data directory.
    pub dir: PathBuf,
    /// The child, while running.
    pub child: Option<Child>,
    /// The HTTP address, once started.
    pub api: String,
    /// The libp2p addresses, once started.
    pub p2p: Vec<String>,
    /// How many times it was started: each run logs to its own file.
    pub runs: u32,
}

impl NodeProcess {
    /// A node for `dir` (already initialised), not yet started.
    pub fn new(dir: &Path) -> NodeProcess {
        NodeProcess {
            dir: dir.to_owned(),
            child: None,
            api: String::new(),
            p2p: Vec::new(),
            runs: 0,
        }
    }

    /// The log file of run number `run` (1-based).
    pub fn log_path(&self, run: u32) -> PathBuf {
        self.dir.join(format!("run-{run}.log"))
    }

    /// Starts `tally node run` with loopback port-0 listeners, `bootstrap` peers, extra
    /// arguments and environment, and waits until it has written its bound addresses.
    pub fn start_with(
        &mut self,
        genesis: &Path,
        bootstrap: &[String],
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) {
        assert!(self.child.is_none(), "node already running");
        let _ = std::fs::remove_file(self.dir.join("addresses.json"));
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();

        let child = Command::new(TALLY)
            .args(["node", "run", "--dir", self.dir.to_str().unwrap()])
            .args(["--genesis", genesis.to_str().unwrap()])
            .args(extra_args)
            .env("TALLY_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .env("TALLY_API_LISTEN", "127.0.0.1:0")
            .env("TALLY_P2P_BOOTSTRAP", bootstrap.join(","))
            .env("TALLY_P2P_REDIAL_INTERVAL_MS", "300")
            .env("TALLY_LOG_LEVEL", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tally node run starts");
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(self.dir.join("addresses.json"));
            if let Some(value) = text
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            {
                self.api = value["api"].as_str().unwrap().to_string();
                self.p2p = value["p2p"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|address| address.as_str().unwrap().to_string())
                    .collect();
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited early with {status}: {}", self.log(self.runs));
            }
            assert!(
                Instant::now() < deadline,
                "node did not bind in time: {}",
                self.log(self.runs)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The resident memory of the running process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("node running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The text of run `run`'s log.
    pub fn log(&self, run: u32) -> String {
        std::fs::read_to_string(self.log_path(run)).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self) -> i32 {
        let mut child = self.child.take().expect("node running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(status.unwrap().success());
        wait_with_timeout(&mut child, Duration::from_secs(30))
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("node running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// GET `path` on this node's API.
    pub fn get(&self, path: &str) -> (u16, Value) {
        http(&self.api, "GET", path, None)
    }

    /// POST `body` to `path` on this node's API.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http(&self.api, "POST", path, Some(body))
    }

    /// The node's status, or `None` if it does not answer.
    pub fn status(&self) -> Option<Value> {
        try_http(&self.api, "GET", "/v1/status", None)
            .ok()
            .map(|(_, value)| value)
    }

    /// The committed height reported by the node (0 if it does not answer).
    pub fn height(&self) -> u64 {
        self.status()
            .and_then(|status| status["height"].as_str().and_then(|text| text.parse().ok()))
            .unwrap_or(0)
    }

    /// Waits until the node reports at least `height`, panicking after `timeout`.
    pub fn wait_for_height(&self, height: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.height() < height {
            assert!(
                Instant::now() < deadline,
                "node {} stuck at height {} (wanted {height}); log:\n{}",
                self.dir.display(),
                self.height(),
                tail(&self.log(self.runs), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One HTTP/1.1 request with `Connection: close`; panics if the node does not answer.
pub fn http(address: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    try_http(address, method, path, body)
        .unwrap_or_else(|error| panic!("{method} {path} on {address} failed: {error}"))
}

/// A GET answered with text (such as `/metrics`): (status, body).
pub fn http_text(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

/// One HTTP/1.1 request; a small hand-written client keeps test dependencies light.
pub fn try_http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(address).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| error.to_string())?;

    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|error| error.to_string())?;
    let status: u16 = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or("");
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?
    };
    Ok((status, value))
}
