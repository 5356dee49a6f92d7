//! A federation of `tally node run` processes on 127.0.0.1, with a genesis made for it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use protocol::genesis::Allocation;
use protocol::{
    Decimals, Genesis, Hash, PublicKey, SecretKey, SignedTransfer, Transfer, Validator,
};
use serde_json::Value;

use super::{Identity, NodeProcess, init};

/// Tests that start clusters run one at a time: on a 2-core machine, two clusters at once
/// would starve each other's timers.
static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

/// Holds the cluster lock for a test, even if an earlier test panicked while holding it.
pub fn serial() -> MutexGuard<'static, ()> {
    CLUSTER_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether the long variants were asked for (`TALLY_LONG_TESTS=1`).
pub fn long_tests() -> bool {
    std::env::var("TALLY_LONG_TESTS").is_ok_and(|value| value == "1")
}

/// Environment for fast heights in tests: short timeouts and a short empty-block wait.
pub const FAST: &[(&str, &str)] = &[
    ("TALLY_CONSENSUS_EMPTY_BLOCK_INTERVAL_MS", "200"),
    ("TALLY_CONSENSUS_TIMEOUT_PROPOSE_MS", "1000"),
    ("TALLY_CONSENSUS_TIMEOUT_VOTE_MS", "500"),
    ("TALLY_CONSENSUS_TIMEOUT_INCREMENT_MS", "250"),
];

/// The smallest fee, in units.
pub const FEE: u64 = 1;

/// A running federation.
pub struct Cluster {
    /// Keeps the directory alive.
    pub root: tempfile::TempDir,
    /// The genesis file.
    pub genesis_path: PathBuf,
    /// The genesis.
    pub genesis: Genesis,
    /// The nodes, validators first.
    pub nodes: Vec<NodeProcess>,
    /// The funded test accounts' keys.
    pub users: Vec<SecretKey>,
}

impl Cluster {
    /// Initialises `validators` validator directories and `full` full-node directories,
    /// writes a genesis with `users` funded accounts and at most `max_block_transfers` per
    /// block, but starts nothing.
    pub fn new(validators: usize, full: usize, users: usize, max_block_transfers: u32) -> Cluster {
        let mut root = tempfile::Builder::new()
            .prefix("tally-cluster-")
            .tempdir()
            .unwrap();
        // `TALLY_TEST_KEEP=1` keeps the directories (logs, databases) for a post-mortem.
        if std::env::var("TALLY_TEST_KEEP").is_ok_and(|value| value == "1") {
            root.disable_cleanup(true);
            eprintln!("cluster directory kept: {}", root.path().display());
        }
        let mut identities: Vec<Identity> = Vec::new();
        let mut nodes = Vec::new();
        for index in 0..validators + full {
            let dir = root.path().join(format!("node{index}"));
            identities.push(init(&dir));
            nodes.push(NodeProcess::new(&dir));
        }

        let users: Vec<SecretKey> = (0..users)
            .map(|i| SecretKey::from_seed(&[i as u8 + 100; 32]))
            .collect();
        let fee_account = SecretKey::from_seed(&[99; 32]).public_key();
        let genesis = Genesis {
            network: "tally-test".into(),
            decimals: Decimals::new(2).unwrap(),
            min_fee: FEE,
            fee_account,
            max_supply: 1_000_000_000_000,
            max_block_transfers,
            max_block_bytes: 1 << 20,
            validators: identities[..validators]
                .iter()
                .enumerate()
                .map(|(i, identity)| Validator {
                    name: format!("validator-{i}"),
                    key: identity.address.parse().unwrap(),
                })
                .collect(),
            allocations: users
                .iter()
                .map(|user| Allocation {
                    account: user.public_key(),
                    balance: 1_000_000,
                })
                .collect(),
        };
        let genesis_path = root.path().join("genesis.toml");
        std::fs::write(&genesis_path, genesis.to_toml()).unwrap();
        Cluster {
            root,
            genesis_path,
            genesis,
            nodes,
            users,
        }
    }

    /// The network id.
    pub fn network_id(&self) -> Hash {
        self.genesis.network_id()
    }

    /// The p2p addresses of every running node except `except`.
    pub fn bootstrap_for(&self, except: usize) -> Vec<String> {
        let mut addresses = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if index != except && node.child.is_some() {
                addresses.extend(node.p2p.iter().cloned());
            }
        }
        addresses
    }

    /// Starts node `index` with every running node as bootstrap peer, plus `extra` options
    /// and environment.
    pub fn start(&mut self, index: usize, extra_args: &[&str], env: &[(&str, &str)]) {
        let bootstrap = self.bootstrap_for(index);
        let genesis = self.genesis_path.clone();
        let mut all_env: Vec<(&str, &str)> = FAST.to_vec();
        all_env.extend_from_slice(env);
        self.nodes[index].start_with(&genesis, &bootstrap, extra_args, &all_env);
    }

    /// Starts the first `count` nodes in order.
    pub fn start_all(&mut self, count: usize) {
        for index in 0..count {
            self.start(index, &[], &[]);
        }
    }

    /// A signed transfer of `amount` units from user `from` to user `to` with `sequence`.
    pub fn transfer(&self, from: usize, to: usize, amount: u64, sequence: u64) -> SignedTransfer {
        let sender = &self.users[from];
        let receiver: PublicKey = self.users[to].public_key();
        let body = Transfer::new(
            self.network_id(),
            sender.public_key(),
            receiver,
            amount,
            FEE,
            sequence,
            "test",
        );
        SignedTransfer::sign(body, sender)
    }

    /// The JSON body for submitting `transfer`.
    pub fn json(&self, transfer: &SignedTransfer) -> Value {
        serde_json::to_value(transfer.to_json(self.genesis.decimals)).unwrap()
    }

    /// Waits until every node in `indexes` reports at least `height`.
    pub fn wait_all(&self, indexes: &[usize], height: u64, timeout: Duration) {
        for index in indexes {
            self.nodes[*index].wait_for_height(height, timeout);
        }
    }

    /// Asserts that the nodes in `indexes` have the same block hash and state root at every
    /// height from 1 to `height`.
    pub fn assert_same_chain(&self, indexes: &[usize], height: u64) {
        for h in 1..=height {
            let mut seen: Option<(Value, Value, usize)> = None;
            for index in indexes {
                let (code, block) = self.nodes[*index].get(&format!("/v1/blocks/{h}"));
                assert_eq!(code, 200, "node {index} has no block {h}: {block}");
                let pair = (block["hash"].clone(), block["header"]["state_root"].clone());
                match &seen {
                    None => seen = Some((pair.0, pair.1, *index)),
                    Some((hash, root, first)) => {
                        assert_eq!(&pair.0, hash, "block hash at {h}: node {index} vs {first}");
                        assert_eq!(&pair.1, root, "state root at {h}: node {index} vs {first}");
                    }
                }
            }
        }
    }

    /// Waits until transfer `id` is committed at node `index`; returns its height.
    pub fn wait_committed(&self, index: usize, id: &Hash, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.nodes[index].get(&format!("/v1/transfers/{id}"));
            if code == 200 && body["status"] == "committed" {
                return body["height"].as_str().unwrap().parse().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "transfer {id} not committed at node {index}: {code} {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The directory of node `index`.
    pub fn dir(&self, index: usize) -> &Path {
        &self.nodes[index].dir
    }
}

/// The messages a node signed, from its log lines `signed KIND height=H round=R block=B`.
pub fn signed_messages(log: &str) -> Vec<(String, u64, u32, String)> {
    let mut messages = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split("signed ").nth(1) else {
            continue;
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        if parts.len() < 4 || !["proposal", "prevote", "precommit"].contains(&parts[0]) {
            continue;
        }
        let field = |name: &str| {
            parts
                .iter()
                .find_map(|part| part.strip_prefix(name))
                .unwrap_or_default()
                .to_string()
        };
        messages.push((
            parts[0].to_string(),
            field("height=").parse().unwrap(),
            field("round=").parse().unwrap(),
            field("block="),
        ));
    }
    messages
}
