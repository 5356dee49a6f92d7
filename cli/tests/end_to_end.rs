//! End to end, with real processes of the built binary: `tally devnet` runs four validators;
//! over a thousand transfers from fifty wallets reach all four APIs, among them conflicting
//! ones (one sequence number used twice, two transfers that together overdraw, replays, a
//! transfer signed for another network); one validator is killed with SIGKILL mid-run and
//! restarted. The test keeps its own model of what it sent, taking from the nodes only which
//! of two racing transfers won, and checks the nodes against it; then exports and audits the
//! log, tampers with it, and verifies a receipt with `tally tx`.
//!
//! The devnet is stopped with SIGTERM when the test ends, passing or failing; its nodes stop
//! with it (and die with it if it is killed). `TALLY_LONG_TESTS=1` sends more transfers.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{FAST, long_tests, serial};
use common::{TALLY, tail, try_http};
use protocol::chain_log::{decode_log, encode_log};
use protocol::{Genesis, Hash, PublicKey, SecretKey, SignedTransfer, Transfer, format_amount};
use serde_json::{Value, json};

/// Generous: CI's two cores are shared with the rest of the suite.
const WAIT: Duration = Duration::from_secs(120);

/// Wallets 0..BULK send and receive the bulk transfers; the others play the conflicts.
const BULK: usize = 45;
/// Wallets in the devnet.
const WALLETS: usize = 50;
/// The validator that is killed and restarted.
const VICTIM: usize = 2;
/// Each wallet's genesis balance, in units (10,000.00).
const START: u64 = 1_000_000;

#[test]
fn a_devnet_takes_conflicting_payments_survives_a_crash_and_audits_clean() {
    let _serial = serial();
    let mut net = Devnet::start();
    let mut model = Model::new(&net);
    let rounds = if long_tests() { 40 } else { 23 };
    let before_crash = rounds / 2;

    // Bulk, part one: every bulk wallet pays others in sequence, each transfer to one node in
    // turn. All must commit before the crash, so none is lost with the victim's mempool.
    let mut bulk = Vec::new();
    for sequence in 1..=before_crash {
        bulk.extend(net.send_bulk_round(&mut model, sequence, &[0, 1, 2, 3]));
    }
    net.wait_committed(0, &bulk);

    // Crash the victim with SIGKILL and keep paying through the other three.
    let victim_pid = net.node_pid(VICTIM);
    kill(victim_pid, "-KILL");
    let height_at_crash = net.height(0);
    let mut after = Vec::new();
    for sequence in before_crash + 1..=rounds {
        after.extend(net.send_bulk_round(&mut model, sequence, &[0, 1, 3]));
    }
    net.wait_committed(0, &after);
    // The three others go on committing (empty blocks too), so the victim has blocks to fetch.
    net.wait_height(0, height_at_crash + 3);

    // Restart it; it must catch up by sync and then agree.
    net.restart(VICTIM);
    let head = net.height(0);
    net.wait_height(VICTIM, head);

    let races = net.race_same_sequence(&mut model);
    net.overdraw(&mut model);
    net.replays(&mut model, &bulk);
    net.wrong_network(&model);
    net.cli_transfers(&mut model);

    bulk.extend(after);
    assert!(bulk.len() >= 1000, "{} bulk transfers", bulk.len());
    net.wait_committed(0, &bulk);
    for (winner, loser) in &races {
        net.assert_race_outcome(winner, loser);
    }

    // Every node: the same chain, the same balances, equal to the model, supply conserved.
    let common_height = net.height(0);
    for node in 0..4 {
        net.wait_height(node, common_height);
    }
    let hash_at =
        |node: usize| net.get(node, &format!("/v1/blocks/{common_height}"))["hash"].clone();
    for node in 1..4 {
        assert_eq!(
            hash_at(node),
            hash_at(0),
            "node {node} at height {common_height}"
        );
    }
    model.check_balances(&net);
    model.check_history(&net, 0);

    net.audit_export_and_tampering(&model);
    net.receipt_verification(&bulk[0]);
}

/// The devnet and what it was made of. Fields drop in order: the restarted node, then the
/// devnet process (which stops its nodes), then the directory.
struct Devnet {
    /// The victim after its restart: this test's own child.
    restarted: Option<Child>,
    _process: DevnetProcess,
    root: tempfile::TempDir,
    dir: PathBuf,
    apis: Vec<String>,
    genesis_path: PathBuf,
    genesis: Genesis,
    wallets: Vec<SecretKey>,
}

impl Devnet {
    /// Runs `tally devnet` with four nodes and fifty wallets on free ports.
    fn start() -> Devnet {
        let root = tempfile::Builder::new()
            .prefix("tally-e2e-")
            .tempdir()
            .unwrap();
        let dir = root.path().join("devnet");
        let base = free_base_port();
        let log_path = root.path().join("devnet.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(TALLY)
            .args(["devnet", "--nodes", "4", "--accounts", &WALLETS.to_string()])
            .args(["--base-port", &base.to_string(), "--dir"])
            .arg(&dir)
            .envs(FAST.iter().copied())
            .env_remove("TALLY_NODE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut process = DevnetProcess(child);

        // The summary is printed once every node answers.
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + WAIT;
        while !read_log().contains("Ctrl-C stops every node") {
            if let Some(status) = process.0.try_wait().unwrap() {
                panic!("devnet exited with {status}: {}", read_log());
            }
            assert!(Instant::now() < deadline, "devnet not up: {}", read_log());
            std::thread::sleep(Duration::from_millis(100));
        }

        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("devnet.json")).unwrap())
                .unwrap();
        let genesis_path = dir.join("genesis.toml");
        let genesis = Genesis::from_toml(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
        assert_eq!(manifest["network_id"], genesis.network_id().to_string());
        let wallets: Vec<SecretKey> = manifest["wallets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|wallet| {
                let text = std::fs::read_to_string(wallet["key"].as_str().unwrap()).unwrap();
                let key = SecretKey::from_key_file(&text).unwrap();
                assert_eq!(key.public_key().to_address(), wallet["address"]);
                key
            })
            .collect();
        assert_eq!(wallets.len(), WALLETS);
        Devnet {
            restarted: None,
            _process: process,
            root,
            dir,
            apis: (0..4).map(|i| format!("127.0.0.1:{}", base + i)).collect(),
            genesis_path,
            genesis,
            wallets,
        }
    }

    fn url(&self, node: usize) -> String {
        format!("http://{}", self.apis[node])
    }

    fn get(&self, node: usize, path: &str) -> Value {
        let (code, body) = try_http(&self.apis[node], "GET", path, None)
            .unwrap_or_else(|error| panic!("GET {path} on node {node}: {error}"));
        assert_eq!(code, 200, "GET {path} on node {node}: {body}");
        body
    }

    /// POSTs a transfer, retrying while the node is catching up (503).
    fn submit(&self, node: usize, body: &Value) -> (u16, Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = try_http(&self.apis[node], "POST", "/v1/transfers", Some(body));
            match answer {
                Ok((503, _)) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(answer) => return answer,
                Err(error) => panic!("POST to node {node}: {error}"),
            }
        }
    }

    fn height(&self, node: usize) -> u64 {
        try_http(&self.apis[node], "GET", "/v1/status", None)
            .ok()
            .and_then(|(_, status)| status["height"].as_str()?.parse().ok())
            .unwrap_or(0)
    }

    fn wait_height(&self, node: usize, height: u64) {
        let deadline = Instant::now() + WAIT;
        while self.height(node) < height {
            assert!(
                Instant::now() < deadline,
                "node {node} stuck at {} (wanted {height}); log:\n{}",
                self.height(node),
                tail(&self.node_log(node), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn node_log(&self, node: usize) -> String {
        let dir = self.dir.join(format!("node{node}"));
        let mut text = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(dir.join("restart.log")).unwrap_or_default());
        text
    }

    fn transfer(&self, from: usize, to: usize, amount: u64, sequence: u64) -> SignedTransfer {
        let memo = format!("e2e {from}-{sequence}");
        self.sign(from, to, amount, sequence, &memo, self.genesis.network_id())
    }

    fn sign(
        &self,
        from: usize,
        to: usize,
        amount: u64,
        sequence: u64,
        memo: &str,
        network: Hash,
    ) -> SignedTransfer {
        let sender = &self.wallets[from];
        let body = Transfer::new(
            network,
            sender.public_key(),
            self.wallets[to].public_key(),
            amount,
            self.genesis.min_fee,
            sequence,
            memo,
        );
        SignedTransfer::sign(body, sender)
    }

    fn json(&self, transfer: &SignedTransfer) -> Value {
        serde_json::to_value(transfer.to_json(self.genesis.decimals)).unwrap()
    }

    /// One transfer from every bulk wallet with `sequence`, spread over `nodes`.
    fn send_bulk_round(&self, model: &mut Model, sequence: u64, nodes: &[usize]) -> Vec<Hash> {
        let mut ids = Vec::new();
        for from in 0..BULK {
            let to = (from + 1 + sequence as usize % (BULK - 1)) % BULK;
            let amount = 100 + (from as u64 * 31 + sequence * 17) % 900;
            let transfer = self.transfer(from, to, amount, sequence);
            let node = nodes[(from + sequence as usize) % nodes.len()];
            let (code, body) = self.submit(node, &self.json(&transfer));
            assert_eq!(code, 202, "bulk transfer refused by node {node}: {body}");
            model.apply(from, to, amount);
            ids.push(transfer.id());
        }
        ids
    }

    /// Waits until node `node` reports every transfer in `ids` committed.
    fn wait_committed(&self, node: usize, ids: &[Hash]) {
        let deadline = Instant::now() + WAIT;
        for id in ids {
            loop {
                let (code, body) = try_http(
                    &self.apis[node],
                    "GET",
                    &format!("/v1/transfers/{id}"),
                    None,
                )
                .unwrap();
                if code == 200 && body["status"] == "committed" {
                    break;
                }
                assert!(
                    code == 200 && body["status"] == "pending" && Instant::now() < deadline,
                    "transfer {id} on node {node}: {code} {body}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The pid of `tally node run` for node `node`, found by its command line.
    fn node_pid(&self, node: usize) -> u32 {
        let wanted = self.dir.join(format!("node{node}"));
        let wanted = wanted.to_str().unwrap();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            if args.iter().any(|arg| arg == "run") && args.iter().any(|arg| arg == wanted) {
                return pid;
            }
        }
        panic!("no process runs {wanted}");
    }

    /// Starts node `node` again, as this test's child, with the devnet's config.
    fn restart(&mut self, node: usize) {
        let dir = self.dir.join(format!("node{node}"));
        let log = std::fs::File::create(dir.join("restart.log")).unwrap();
        let child = Command::new(TALLY)
            .args(["node", "run", "--dir"])
            .arg(&dir)
            .envs(FAST.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted = Some(child);
    }

    /// Wallets 45 and 46 each sign two transfers with sequence 1 to different receivers and
    /// send them to two nodes at once. One of each pair commits; the model takes the winner
    /// from the nodes. Returns (winner, loser) pairs.
    fn race_same_sequence(&self, model: &mut Model) -> Vec<(Hash, Hash)> {
        let mut outcomes = Vec::new();
        for from in [45, 46] {
            let a = self.sign(from, 0, 1_000, 1, "race a", self.genesis.network_id());
            let b = self.sign(from, 1, 2_000, 1, "race b", self.genesis.network_id());
            let (body_a, body_b) = (self.json(&a), self.json(&b));
            let (answer_a, answer_b) = std::thread::scope(|scope| {
                let first = scope.spawn(|| self.submit(0, &body_a));
                let second = scope.spawn(|| self.submit(3, &body_b));
                (first.join().unwrap(), second.join().unwrap())
            });
            for (code, body) in [&answer_a, &answer_b] {
                assert!(
                    *code == 202 || (*code == 400 && body["code"] == "sequence_pending"),
                    "a racing transfer got {code} {body}"
                );
            }

            let winner = self.wait_final_anywhere(&[a.id(), b.id()]);
            let (win, lose, to, amount) = if winner == a.id() {
                (a.id(), b.id(), 0, 1_000)
            } else {
                (b.id(), a.id(), 1, 2_000)
            };
            model.apply(from, to, amount);
            outcomes.push((win, lose));
        }
        outcomes
    }

    /// Waits until one of `ids` is committed on node 0 and returns it.
    fn wait_final_anywhere(&self, ids: &[Hash]) -> Hash {
        let deadline = Instant::now() + WAIT;
        loop {
            for id in ids {
                let (_, body) =
                    try_http(&self.apis[0], "GET", &format!("/v1/transfers/{id}"), None).unwrap();
                if body["status"] == "committed" {
                    return *id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "neither racing transfer committed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The loser of a race ends superseded by the winner on every node that knows it, and
    /// the winner is committed everywhere.
    fn assert_race_outcome(&self, winner: &Hash, loser: &Hash) {
        for node in 0..4 {
            let won = self.get(node, &format!("/v1/transfers/{winner}"));
            assert_eq!(won["status"], "committed", "node {node}: {won}");
            let (code, lost) = try_http(
                &self.apis[node],
                "GET",
                &format!("/v1/transfers/{loser}"),
                None,
            )
            .unwrap();
            match code {
                200 => {
                    assert_eq!(lost["status"], "superseded", "node {node}: {lost}");
                    assert_eq!(lost["by"], winner.to_string(), "node {node}");
                }
                404 => assert_eq!(lost["code"], "unknown_transfer"),
                other => panic!("node {node} answered {other} for the loser: {lost}"),
            }
        }
    }

    /// Wallet 47 sends 6,000.00 twice from 10,000.00: the first commits, the second is
    /// refused for lack of funds, at once or when the first commits.
    fn overdraw(&self, model: &mut Model) {
        let first = self.sign(47, 2, 600_000, 1, "big 1", self.genesis.network_id());
        let second = self.sign(47, 3, 600_000, 2, "big 2", self.genesis.network_id());
        let (code, body) = self.submit(1, &self.json(&first));
        assert_eq!(code, 202, "{body}");
        let (code, body) = self.submit(1, &self.json(&second));
        model.apply(47, 2, 600_000);
        self.wait_committed(1, &[first.id()]);

        if code == 400 {
            assert_eq!(body["code"], "insufficient_funds", "{body}");
        } else {
            assert_eq!(code, 202, "{body}");
            let status = self.get(1, &format!("/v1/transfers/{}", second.id()));
            assert_eq!(status["status"], "rejected", "{status}");
            assert_eq!(status["code"], "insufficient_funds", "{status}");
        }
    }

    /// A committed transfer sent again, to every node, is a duplicate that changes nothing;
    /// so are twenty bulk transfers replayed to random nodes.
    fn replays(&self, model: &mut Model, bulk: &[Hash]) {
        let transfer = self.sign(48, 4, 12_345, 1, "paid once", self.genesis.network_id());
        let body = self.json(&transfer);
        assert_eq!(self.submit(2, &body).0, 202);
        model.apply(48, 4, 12_345);
        self.wait_committed(2, &[transfer.id()]);
        for node in 0..4 {
            let (code, answer) = self.submit(node, &body);
            assert_eq!(code, 200, "replay to node {node}: {answer}");
            assert_eq!(answer["status"], "duplicate");
            assert_eq!(answer["current"]["status"], "committed");
        }

        // Rebuild some bulk transfers from their deterministic recipe and send them again.
        for (index, id) in bulk.iter().enumerate().step_by(bulk.len() / 20) {
            let sequence = (index / BULK) as u64 + 1;
            let from = index % BULK;
            let to = (from + 1 + sequence as usize % (BULK - 1)) % BULK;
            let amount = 100 + (from as u64 * 31 + sequence * 17) % 900;
            let again = self.transfer(from, to, amount, sequence);
            assert_eq!(again.id(), *id);
            let (code, answer) = self.submit(index % 4, &self.json(&again));
            assert_eq!(code, 200, "{answer}");
            assert_eq!(answer["current"]["status"], "committed", "{answer}");
        }
    }

    /// A transfer signed for another network is refused by every node.
    fn wrong_network(&self, _model: &Model) {
        let other = Hash::digest(b"another network");
        let transfer = self.sign(49, 5, 1_000, 1, "elsewhere", other);
        for node in 0..4 {
            let (code, body) = self.submit(node, &self.json(&transfer));
            assert_eq!(code, 400, "node {node}: {body}");
            assert_eq!(body["code"], "wrong_network", "node {node}: {body}");
        }
    }

    /// `tally transfer --wait` from wallet 49, through each node in turn; and one it cannot
    /// afford, which it reports as rejected with exit code 1.
    fn cli_transfers(&self, model: &mut Model) {
        let key = self.dir.join("wallets/wallet49.key");
        for (round, node) in (0..4).cycle().take(8).enumerate() {
            let to = self.wallets[round].public_key().to_address();
            let amount = format!("{}.25", round + 1);
            let (code, stdout, stderr) = self.cli(&[
                "transfer",
                "--key",
                key.to_str().unwrap(),
                "--to",
                &to,
                "--amount",
                &amount,
                "--wait",
                "--node",
                &self.url(node),
            ]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert!(stdout.starts_with("committed "), "{stdout}");
            model.apply(49, round, (round as u64 + 1) * 100 + 25);
        }

        let (code, stdout, stderr) = self.cli(&[
            "transfer",
            "--key",
            key.to_str().unwrap(),
            "--to",
            &self.wallets[0].public_key().to_address(),
            "--amount",
            "99999.00",
            "--node",
            &self.url(3),
        ]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stderr.starts_with("error: rejected: insufficient_funds: "),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1);
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let output = Command::new(TALLY)
            .args(args)
            .env_remove("TALLY_NODE")
            .env("TALLY_DEVNET", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Export, audit (file and all four nodes), then a flipped byte and a dropped block.
    fn audit_export_and_tampering(&self, model: &Model) {
        let genesis = self.genesis_path.to_str().unwrap();
        let log = self.root.path().join("chain.log");
        let (code, _, stderr) = self.cli(&[
            "log",
            "export",
            "--node",
            &self.url(1),
            "--out",
            log.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");

        let (code, stdout, stderr) = self.cli(&[
            "audit",
            "--file",
            log.to_str().unwrap(),
            "--genesis",
            genesis,
            "--json",
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let summary: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(summary["ok"], true);
        assert_eq!(summary["transfers"], json!(model.committed));

        let mut all_nodes = vec!["audit", "--genesis", genesis];
        let urls: Vec<String> = (0..4).map(|node| self.url(node)).collect();
        for url in &urls {
            all_nodes.extend(["--node", url.as_str()]);
        }
        let (code, stdout, stderr) = self.cli(&all_nodes);
        assert_eq!(code, 0, "{stdout}{stderr}");

        // One flipped byte in one transfer's memo: the audit names that block's height.
        let bytes = std::fs::read(&log).unwrap();
        let (header, blocks, _) = decode_log(&bytes, None, u32::MAX).unwrap();
        let (height, memo) = blocks
            .iter()
            .find_map(|certified| {
                let transfer = certified.block.transfers.first()?;
                Some((
                    certified.block.header.height,
                    transfer.transfer.memo.clone(),
                ))
            })
            .unwrap();
        let at = find(&bytes, memo.as_bytes()).expect("the memo is in the log");
        let mut tampered = bytes.clone();
        tampered[at + memo.len() - 1] ^= 0x01;
        let bad = self.root.path().join("tampered.log");
        std::fs::write(&bad, &tampered).unwrap();
        let (code, _, stderr) = self.cli(&[
            "audit",
            "--file",
            bad.to_str().unwrap(),
            "--genesis",
            genesis,
        ]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!("failed: height {height}: ")),
            "{stderr}"
        );

        // The last block dropped (a well-formed, shorter log): the audit passes, certified
        // one height lower.
        let shorter = encode_log(header, &blocks[..blocks.len() - 1]);
        let short = self.root.path().join("short.log");
        std::fs::write(&short, shorter).unwrap();
        let (code, stdout, stderr) = self.cli(&[
            "audit",
            "--file",
            short.to_str().unwrap(),
            "--genesis",
            genesis,
            "--json",
        ]);
        assert_eq!(code, 0, "{stderr}");
        let summary: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(summary["height"], json!((blocks.len() - 1).to_string()));
    }

    /// `tally tx --verify` passes on a real receipt and fails on a copy with one changed
    /// character in its certificate.
    fn receipt_verification(&self, id: &Hash) {
        let id = id.to_string();
        let genesis = self.genesis_path.to_str().unwrap();
        let (code, stdout, stderr) = self.cli(&[
            "tx",
            &id,
            "--verify",
            "--genesis",
            genesis,
            "--node",
            &self.url(3),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.starts_with(&format!("verified: transfer {id} is committed")),
            "{stdout}"
        );

        let (code, saved, _) = self.cli(&["tx", &id, "--json", "--node", &self.url(0)]);
        assert_eq!(code, 0);
        let good = self.root.path().join("receipt.json");
        std::fs::write(&good, &saved).unwrap();
        let (code, _, stderr) = self.cli(&[
            "tx",
            "--receipt",
            good.to_str().unwrap(),
            "--genesis",
            genesis,
        ]);
        assert_eq!(code, 0, "{stderr}");

        let mut value: Value = serde_json::from_str(&saved).unwrap();
        let certificate = value["receipt"]["certificate"]
            .as_str()
            .unwrap()
            .to_string();
        let mut chars: Vec<char> = certificate.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == '0' { '1' } else { '0' };
        value["receipt"]["certificate"] = json!(chars.into_iter().collect::<String>());
        let bad = self.root.path().join("tampered-receipt.json");
        std::fs::write(&bad, value.to_string()).unwrap();
        let (code, _, stderr) = self.cli(&[
            "tx",
            "--receipt",
            bad.to_str().unwrap(),
            "--genesis",
            genesis,
        ]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.starts_with("error: receipt does not verify: "),
            "{stderr}"
        );
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(mut child) = self.restarted.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `tally devnet` process, stopped when dropped.
struct DevnetProcess(Child);

impl Drop for DevnetProcess {
    fn drop(&mut self) {
        // SIGTERM lets the devnet stop its nodes; SIGKILL if it does not in time (its nodes
        // then stop by themselves, told by the kernel that their parent died).
        kill(self.0.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the test expects every balance to be.
struct Model {
    balances: HashMap<PublicKey, u64>,
    keys: Vec<PublicKey>,
    fee_account: PublicKey,
    fee: u64,
    supply: u64,
    committed: u64,
}

impl Model {
    fn new(net: &Devnet) -> Model {
        let keys: Vec<PublicKey> = net.wallets.iter().map(SecretKey::public_key).collect();
        let mut balances: HashMap<PublicKey, u64> = keys.iter().map(|key| (*key, START)).collect();
        balances.entry(net.genesis.fee_account).or_insert(0);
        Model {
            balances,
            keys,
            fee_account: net.genesis.fee_account,
            fee: net.genesis.min_fee,
            supply: net.genesis.total_supply(),
            committed: 0,
        }
    }

    fn apply(&mut self, from: usize, to: usize, amount: u64) {
        let (sender, receiver) = (self.keys[from], self.keys[to]);
        let balance = self.balances.get_mut(&sender).unwrap();
        *balance = balance
            .checked_sub(amount + self.fee)
            .expect("the model never overdraws");
        *self.balances.get_mut(&receiver).unwrap() += amount;
        *self.balances.get_mut(&self.fee_account).unwrap() += self.fee;
        self.committed += 1;
    }

    /// Every node's balance of every account equals the model's; supply is conserved.
    fn check_balances(&self, net: &Devnet) {
        assert_eq!(self.balances.values().sum::<u64>(), self.supply);
        let decimals = net.genesis.decimals;
        for node in 0..4 {
            let mut total = 0;
            for (account, expected) in &self.balances {
                let answer = net.get(node, &format!("/v1/accounts/{}", account.to_address()));
                let shown = answer["balance"].as_str().unwrap();
                assert_eq!(
                    shown,
                    format_amount(*expected, decimals),
                    "node {node}, account {account}"
                );
                total += protocol::parse_amount(shown, decimals, u64::MAX).unwrap();
            }
            assert_eq!(total, self.supply, "node {node} conserves supply");
        }

        // The command line agrees.
        let address = self.keys[0].to_address();
        let (code, stdout, stderr) =
            net.cli(&["balance", &address, "--json", "--node", &net.url(2)]);
        assert_eq!(code, 0, "{stderr}");
        let answer: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            answer["balance"],
            format_amount(self.balances[&self.keys[0]], decimals)
        );
    }

    /// `tally history` lists every transfer the wallet sent or received.
    fn check_history(&self, net: &Devnet, wallet: usize) {
        let address = self.keys[wallet].to_address();
        let (code, stdout, stderr) = net.cli(&[
            "history",
            &address,
            "--limit",
            "1000",
            "--json",
            "--node",
            &net.url(1),
        ]);
        assert_eq!(code, 0, "{stderr}");
        let answer: Value = serde_json::from_str(&stdout).unwrap();
        let entries = answer["transfers"].as_array().unwrap();
        let key: String = self.keys[wallet]
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let sent = entries
            .iter()
            .filter(|e| e["transfer"]["sender"] == key)
            .count();
        let received = entries
            .iter()
            .filter(|e| e["transfer"]["receiver"] == key)
            .count();
        assert_eq!(entries.len(), sent + received);
        assert!(
            sent >= 20 && received >= 1,
            "sent {sent}, received {received}"
        );
        let heights: Vec<u64> = entries
            .iter()
            .map(|e| e["height"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(heights.windows(2).all(|w| w[0] >= w[1]), "newest first");
    }
}

/// A base port with its four API ports and four peer ports free.
fn free_base_port() -> u16 {
    let start = 20_000 + (std::process::id() % 100) as u16 * 300;
    for attempt in 0..50u16 {
        let base = start + attempt * 7 % 30_000;
        let free = (0..4)
            .flat_map(|i| [base + i, base + 100 + i])
            .all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free ports for a devnet");
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
