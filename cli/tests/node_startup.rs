//! Real processes: `tally node init` and the refusals of `tally node run`.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::cluster::{Cluster, serial};
use common::{NodeProcess, tally};

/// Runs `tally node run` in `dir` with `genesis` and returns (exit code, stderr).
fn run_once(dir: &std::path::Path, genesis: &std::path::Path) -> (i32, String) {
    let (code, _, stderr) = tally(
        &[
            "node",
            "run",
            "--dir",
            dir.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ],
        &[
            ("TALLY_API_LISTEN", "127.0.0.1:0"),
            ("TALLY_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0"),
            ("TALLY_LOG_LEVEL", "error"),
        ],
    );
    (code, stderr)
}

#[test]
fn init_prints_the_address_and_writes_a_private_key() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    let identity = common::init(&dir);
    assert!(identity.address.starts_with("tly1"));
    assert!(identity.peer_id.starts_with("12D3"));

    let mode = std::fs::metadata(dir.join("node.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("# ") && config.contains("[api]"));

    let (code, _, stderr) = tally(&["node", "init", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("already"), "{stderr}");
}

#[test]
fn run_refuses_bad_key_genesis_and_foreign_data_dir() {
    let _serial = serial();
    let cluster = Cluster::new(1, 0, 1, 10);
    let dir = cluster.dir(0).to_owned();
    let key = dir.join("node.key");

    // A key readable by group.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, stderr) = run_once(&dir, &cluster.genesis_path);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(
        stderr.contains("0640") && stderr.contains("node.key"),
        "{stderr}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A missing genesis, then an invalid one.
    let missing = dir.join("nowhere.toml");
    let (code, stderr) = run_once(&dir, &missing);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: cannot read genesis file {}: No such file or directory (os error 2)\n",
            missing.display()
        ),
        "one line, the cause named once, nothing logged before it"
    );
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, "network = 5\n").unwrap();
    let (code, stderr) = run_once(&dir, &invalid);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");

    // Start once with the right genesis (recording the network), then with another one.
    let mut node = NodeProcess::new(&dir);
    node.start_with(&cluster.genesis_path, &[], &[], &[]);
    assert_eq!(node.terminate(), 0);

    let mut other = cluster.genesis.clone();
    other.network = "another-network".into();
    let other_path = dir.join("other-genesis.toml");
    std::fs::write(&other_path, other.to_toml()).unwrap();
    let (code, stderr) = run_once(&dir, &other_path);
    assert_eq!(code, 2);
    assert!(stderr.contains("belongs to network"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn single_validator_commits_and_restarts_where_it_stopped() {
    let _serial = serial();
    let mut cluster = Cluster::new(1, 0, 2, 10);
    cluster.start(0, &[], &[]);

    let transfer = cluster.transfer(0, 1, 250, 1);
    let (code, body) = cluster.nodes[0].post("/v1/transfers", &cluster.json(&transfer));
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let height = cluster.wait_committed(0, &transfer.id(), std::time::Duration::from_secs(60));

    // A bad signature and a stale sequence are refused with their codes.
    let mut forged = transfer.clone();
    forged.signature.0[0] ^= 1;
    let (code, body) = cluster.nodes[0].post("/v1/transfers", &cluster.json(&forged));
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("bad_signature")),
        "{body}"
    );
    let replay = cluster.transfer(0, 1, 9, 1);
    let (code, body) = cluster.nodes[0].post("/v1/transfers", &cluster.json(&replay));
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("bad_sequence")),
        "{body}"
    );

    assert_eq!(cluster.nodes[0].terminate(), 0);
    cluster.start(0, &[], &[]);
    assert!(cluster.nodes[0].height() >= height);
    let (code, status) = cluster.nodes[0].get(&format!("/v1/transfers/{}", transfer.id()));
    assert_eq!(
        (code, status["status"].as_str()),
        (200, Some("committed")),
        "{status}"
    );
    cluster.nodes[0].wait_for_height(height + 2, std::time::Duration::from_secs(60));
}
