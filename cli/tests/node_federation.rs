//! Real processes: a federation of `tally node run` on 127.0.0.1 agreeing on blocks.
//!
//! Each test starts its own cluster in a temporary directory (ports are ephemeral; every
//! node's output goes to `run-N.log` in its data directory) and kills every child it started
//! when it ends, passing or failing. Clusters run one at a time (see `cluster::serial`).
//! `TALLY_LONG_TESTS=1` runs longer variants.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, long_tests, serial, signed_messages};
use protocol::consensus::{Vote, VoteKind};
use protocol::receipt::ReceiptJson;
use protocol::{PublicKey, Signature};
use serde_json::Value;

/// Generous: CI's 2 cores are shared with the rest of the test suite.
const WAIT: Duration = Duration::from_secs(90);

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Four validators agree while transfers arrive at all four: at least 500 transfers over at
/// least 20 heights, and every node has the same block hash and state root at every height.
#[test]
fn four_validators_agree_under_load() {
    let _serial = serial();
    let (users, per_user) = if long_tests() { (50, 40) } else { (25, 21) };
    let mut cluster = Cluster::new(4, 0, users, 20);
    cluster.start_all(4);

    // Every user sends `per_user` transfers in sequence, each to a different node in turn.
    let mut ids = Vec::new();
    let mut received_by = HashMap::new();
    for sequence in 1..=per_user {
        for user in 0..users {
            let transfer = cluster.transfer(user, (user + 1) % users, 10, sequence);
            let node = (user + sequence as usize) % 4;
            let (code, body) = cluster.nodes[node].post("/v1/transfers", &cluster.json(&transfer));
            assert!(
                code == 202 || code == 200,
                "submission refused: {code} {body}"
            );
            ids.push(transfer.id());
            received_by.insert(serde_json::to_value(transfer.id()).unwrap(), node);
        }
    }
    assert!(ids.len() >= 500);

    let mut last_height = 0;
    for id in &ids {
        last_height = last_height.max(cluster.wait_committed(0, id, WAIT));
    }
    let target = last_height.max(20);
    cluster.wait_all(&[0, 1, 2, 3], target, WAIT);
    cluster.assert_same_chain(&[0, 1, 2, 3], target);

    // Transfers travel by gossip. Without it a transfer could only be proposed by the node
    // that received it, so none would cross. How many cross depends on how quickly each
    // proposer builds (it does not wait for gossip to bring the others' transfers), so only
    // a floor is checked: a quarter, where three quarters is typical of an idle machine.
    let addresses: Vec<serde_json::Value> = (0..4)
        .map(|node| cluster.nodes[node].status().unwrap()["address"].clone())
        .collect();
    let mut carried = 0;
    for h in 1..=target {
        let (_, block) = cluster.nodes[0].get(&format!("/v1/blocks/{h}"));
        let proposer = addresses
            .iter()
            .position(|a| *a == block["header"]["proposer"])
            .unwrap();
        for transfer in block["transfers"].as_array().unwrap() {
            carried += usize::from(received_by[&transfer["id"]] != proposer);
        }
    }
    assert!(
        carried >= ids.len() / 4,
        "only {carried} of {} transfers crossed nodes",
        ids.len()
    );

    // Each transfer is committed exactly once, at the same place on every node. Each node
    // keeps the quorum of precommits it collected itself, so certificates may differ in
    // their signers: each must verify, and everything else must be identical.
    let decimals = cluster.genesis.decimals;
    for id in ids.iter().step_by(7) {
        let mut answers: Vec<_> = (0..4)
            .map(|node| cluster.nodes[node].get(&format!("/v1/transfers/{id}")).1)
            .collect();
        for answer in &mut answers {
            let json: ReceiptJson = serde_json::from_value(answer["receipt"].clone()).unwrap();
            let receipt = json.to_receipt(decimals).unwrap();
            assert_eq!(receipt.verify(&cluster.genesis), Ok(()), "receipt of {id}");
            answer["receipt"]["certificate"] = Value::Null;
        }
        assert!(
            answers.iter().all(|answer| answer == &answers[0]),
            "{answers:?}"
        );
    }
}

/// The same transfer submitted to two nodes at the same moment is applied once; two different
/// transfers with one sequence at two nodes: one commits, the other ends `superseded`.
#[test]
fn same_transfer_at_two_nodes_applies_once() {
    let _serial = serial();
    let mut cluster = Cluster::new(4, 0, 2, 50);
    cluster.start_all(4);
    cluster.wait_all(&[0, 1, 2, 3], 1, WAIT);

    let transfer = cluster.transfer(0, 1, 500, 1);
    let body = cluster.json(&transfer);
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| cluster.nodes[0].post("/v1/transfers", &body));
        let b = scope.spawn(|| cluster.nodes[1].post("/v1/transfers", &body));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        [200, 202].contains(&first.0) && [200, 202].contains(&second.0),
        "{first:?} {second:?}"
    );

    let height = cluster.wait_committed(0, &transfer.id(), WAIT);
    cluster.wait_all(&[0, 1, 2, 3], height + 2, WAIT);

    // Submitting it again anywhere is answered as a duplicate with its committed status.
    let (code, again) = cluster.nodes[2].post("/v1/transfers", &body);
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["current"]["status"], "committed");

    // Exactly one block holds it, on every node.
    let id = serde_json::to_value(transfer.id()).unwrap();
    for node in 0..4 {
        let mut holding = 0;
        for h in 1..=height + 2 {
            let (_, block) = cluster.nodes[node].get(&format!("/v1/blocks/{h}"));
            holding += block["transfers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["id"] == id)
                .count();
        }
        assert_eq!(holding, 1, "node {node} holds the transfer {holding} times");
    }

    // Two different transfers with one sequence, at two nodes at once: one commits, and a
    // node that accepted the other answers `superseded` by the winner, never `pending`.
    let rivals = [cluster.transfer(1, 0, 7, 1), cluster.transfer(1, 0, 8, 1)];
    let answers = std::thread::scope(|scope| {
        let posts: Vec<_> = rivals
            .iter()
            .zip([2, 3])
            .map(|(transfer, node)| {
                let body = cluster.json(transfer);
                let cluster = &cluster;
                scope.spawn(move || cluster.nodes[node].post("/v1/transfers", &body))
            })
            .collect();
        posts
            .into_iter()
            .map(|post| post.join().unwrap())
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + WAIT;
    let winner = loop {
        let committed = rivals.iter().position(|rival| {
            let (_, status) = cluster.nodes[0].get(&format!("/v1/transfers/{}", rival.id()));
            status["status"] == "committed"
        });
        if let Some(winner) = committed {
            break winner;
        }
        assert!(Instant::now() < deadline, "neither rival committed");
        std::thread::sleep(Duration::from_millis(100));
    };
    let loser = 1 - winner;
    let winner_id = rivals[winner].id().to_string();
    // Accepted by its node unless the rival reached that node by gossip first.
    let (code, answer) = &answers[loser];
    eprintln!("the losing rival was answered {code} by its node");
    if *code == 400 {
        assert_eq!(answer["code"], "sequence_pending", "{answer}");
    } else {
        assert_eq!(*code, 202, "{answer}");
        let node = [2, 3][loser];
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, status) =
                cluster.nodes[node].get(&format!("/v1/transfers/{}", rivals[loser].id()));
            assert_eq!(code, 200, "{status}");
            if status["status"] != "pending" {
                assert_eq!(status["status"], "superseded", "{status}");
                assert_eq!(status["by"], winner_id, "{status}");
                break;
            }
            assert!(Instant::now() < deadline, "the loser stayed pending");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A validator stopped and restarted catches up by sync and votes again; a full node started
/// late follows to the same head.
#[test]
fn restarted_validator_and_late_full_node_catch_up() {
    let _serial = serial();
    let mut cluster = Cluster::new(4, 1, 4, 50);
    cluster.start_all(4);
    cluster.wait_all(&[0, 1, 2, 3], 2, WAIT);

    let stopped_at = cluster.nodes[3].height();
    assert_eq!(cluster.nodes[3].terminate(), 0, "SIGTERM exits 0");

    // The other three are a quorum: they go on committing, transfers included.
    for sequence in 1..=5 {
        let transfer = cluster.transfer(0, 1, 10, sequence);
        cluster.nodes[0].post("/v1/transfers", &cluster.json(&transfer));
    }
    let ahead = stopped_at + 6;
    cluster.wait_all(&[0, 1, 2], ahead, WAIT);

    cluster.start(3, &[], &[]);
    cluster.nodes[3].wait_for_height(ahead, WAIT);

    // It votes again: its new run signs prevotes at heights beyond those it synced.
    let deadline = Instant::now() + WAIT;
    loop {
        let signed = signed_messages(&cluster.nodes[3].log(2));
        if signed
            .iter()
            .any(|(kind, height, _, _)| kind == "prevote" && *height > ahead)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted validator never voted again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.start(4, &[], &[]);
    let head = cluster.nodes[0].height();
    cluster.nodes[4].wait_for_height(head, WAIT);
    cluster.assert_same_chain(&[0, 3, 4], head);
    let status = cluster.nodes[4].status().unwrap();
    assert_eq!(status["role"], "full");
    assert!(
        signed_messages(&cluster.nodes[4].log(1)).is_empty(),
        "a full node never signs"
    );
}

/// SIGKILL right after a reported commit, then restart: nothing committed is lost, and the
/// node never signs a message that conflicts with one it signed before.
#[test]
fn sigkill_after_commit_loses_nothing_and_never_equivocates() {
    let _serial = serial();
    let rounds = if long_tests() { 5 } else { 2 };
    let mut cluster = Cluster::new(4, 0, 2, 50);
    cluster.start_all(4);
    cluster.wait_all(&[0, 1, 2, 3], 1, WAIT);

    let mut committed = Vec::new();
    for round in 0..rounds {
        let transfer = cluster.transfer(0, 1, 7, round + 1);
        let (code, body) = cluster.nodes[0].post("/v1/transfers", &cluster.json(&transfer));
        assert_eq!(code, 202, "{body}");
        let height = cluster.wait_committed(0, &transfer.id(), WAIT);
        cluster.nodes[0].kill();
        committed.push((transfer.id(), height));

        cluster.start(0, &[], &[]);
        for (id, height) in &committed {
            let (code, status) = cluster.nodes[0].get(&format!("/v1/transfers/{id}"));
            assert_eq!(code, 200, "committed transfer lost after SIGKILL: {status}");
            assert_eq!(status["height"], height.to_string());
        }
        assert!(cluster.nodes[0].height() >= *committed.last().map(|(_, h)| h).unwrap());
    }

    // Let the restarted node take part for a while, then stop it and read all its runs.
    let head = cluster.nodes[1].height();
    cluster.nodes[0].wait_for_height(head + 3, WAIT);
    cluster.nodes[0].terminate();

    let mut signed: HashMap<(String, u64, u32), String> = HashMap::new();
    for run in 1..=cluster.nodes[0].runs {
        for (kind, height, round, block) in signed_messages(&cluster.nodes[0].log(run)) {
            let earlier = signed
                .entry((kind.clone(), height, round))
                .or_insert(block.clone());
            assert_eq!(
                *earlier, block,
                "node 0 signed two different {kind}s at height {height} round {round}"
            );
        }
    }
    assert!(!signed.is_empty(), "node 0 signed nothing");
}

/// One validator proposes only invalid blocks, another sends garbage on both topics and a third
/// sends a second, conflicting prevote after each of its prevotes: the others keep committing,
/// nobody panics, memory stays bounded, and the double votes are served as evidence that
/// verifies.
#[test]
fn faulty_validators_do_not_stop_the_federation() {
    let _serial = serial();
    let mut cluster = Cluster::new(4, 0, 2, 50);
    cluster.start(
        0,
        &[],
        &[("TALLY_LOG_LEVEL", "info,tally_node::inbound=debug")],
    );
    cluster.start(1, &["--misbehave", "invalid-proposals"], &[]);
    cluster.start(2, &["--misbehave", "garbage"], &[]);
    cluster.start(3, &["--misbehave", "equivocate"], &[]);

    cluster.wait_all(&[0, 3], 2, WAIT);
    let memory_before = cluster.nodes[0].rss_kib();
    let start = cluster.nodes[0].height();
    let heights = if long_tests() { 40 } else { 10 };

    // Transfers still commit, whoever proposes.
    for sequence in 1..=3 {
        let transfer = cluster.transfer(0, 1, 5, sequence);
        cluster.nodes[3].post("/v1/transfers", &cluster.json(&transfer));
        cluster.wait_committed(0, &transfer.id(), WAIT);
    }
    cluster.wait_all(&[0, 3], start + heights, WAIT);
    cluster.assert_same_chain(&[0, 3], start + heights);

    // Validator 1's proposals never made it into the chain.
    let faulty: serde_json::Value = cluster.nodes[1].status().unwrap()["address"].clone();
    for h in start..=start + heights {
        let (_, block) = cluster.nodes[0].get(&format!("/v1/blocks/{h}"));
        assert_ne!(
            block["header"]["proposer"], faulty,
            "an invalid proposal was committed at {h}"
        );
    }

    let memory_after = cluster.nodes[0].rss_kib();
    assert!(
        memory_after < memory_before + 100 * 1024,
        "memory grew from {memory_before} KiB to {memory_after} KiB"
    );
    for node in &cluster.nodes {
        assert!(
            !node.log(1).contains("panicked"),
            "a node panicked:\n{}",
            node.log(1)
        );
    }

    // Both faults were seen and handled for what they are.
    let log = cluster.nodes[0].log(1);
    assert!(
        log.contains("invalid proposal"),
        "no invalid proposal was judged"
    );
    assert!(
        log.contains("rejected gossip"),
        "no garbage gossip was rejected"
    );

    // Validator 3's double prevotes, as node 0 serves them: each pair verifies with the
    // protocol crate alone, and the metric counts them.
    let equivocator: PublicKey = cluster.nodes[3].status().unwrap()["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (code, body) = cluster.nodes[0].get("/v1/evidence");
    assert_eq!(code, 200);
    let evidence = body["evidence"].as_array().unwrap();
    assert!(!evidence.is_empty(), "no evidence served: {body}");
    for pair in evidence {
        assert_eq!(pair["validator"], equivocator.to_string(), "{pair}");
        assert_eq!(pair["kind"], "prevote", "{pair}");
        let height: u64 = pair["height"].as_str().unwrap().parse().unwrap();
        let signed: Vec<Vec<u8>> = ["first", "second"]
            .iter()
            .map(|field| unhex(pair[field].as_str().unwrap()))
            .collect();
        for (bytes, field) in signed.iter().zip(["first_signature", "second_signature"]) {
            let signature = Signature(unhex(pair[field].as_str().unwrap()).try_into().unwrap());
            assert_eq!(signature.verify(&equivocator, bytes), Ok(()), "{pair}");
        }
        // Both are prevotes of that height on this network, for different blocks: the
        // payloads differ only after the fixed prefix and the step byte.
        let vote = |block_hash| Vote {
            kind: VoteKind::Prevote,
            height,
            round: pair["round"].as_u64().unwrap() as u32,
            block_hash,
        };
        let nil = vote(None).payload(&cluster.network_id()).to_bytes();
        assert!(
            signed.contains(&nil),
            "one of the two is a nil prevote: {pair}"
        );
        assert_ne!(signed[0], signed[1]);
        assert_eq!(signed[0][..49], nil[..49], "same tag, version, network");
        assert_eq!(signed[1][..49], nil[..49], "same tag, version, network");
    }
    let (_, metrics) = common::http_text(&cluster.nodes[0].api, "/metrics");
    let seen = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tally_evidence "))
        .unwrap_or_else(|| panic!("no tally_evidence in {metrics}"));
    assert!(
        seen.parse::<u64>().unwrap() >= evidence.len() as u64,
        "{seen}"
    );
}

/// A validator that never gossips its proposals (it votes, and serves them when asked): the
/// others see its blocks only through its prevotes, fetch the proposals from a peer, and
/// commit its blocks in round 0.
#[test]
fn proposals_seen_only_through_votes_are_fetched_and_committed() {
    let _serial = serial();
    let mut cluster = Cluster::new(4, 0, 2, 50);
    cluster.start(0, &[], &[]);
    cluster.start(1, &["--misbehave", "hide-proposals"], &[]);
    cluster.start(2, &[], &[]);
    cluster.start(3, &[], &[]);
    cluster.wait_all(&[0, 2, 3], 1, WAIT);

    let start = cluster.nodes[0].height();
    let heights = 8;
    for sequence in 1..=3 {
        let transfer = cluster.transfer(0, 1, 5, sequence);
        cluster.nodes[0].post("/v1/transfers", &cluster.json(&transfer));
    }
    cluster.wait_all(&[0, 2, 3], start + heights, WAIT);
    cluster.assert_same_chain(&[0, 1, 2, 3], start + heights);

    // Node 1 proposes in round 0 of every fourth height; with its proposals hidden, the
    // blocks it proposed can only have come through fetching.
    let hider = cluster.nodes[1].status().unwrap()["address"].clone();
    let proposed = (start + 1..=start + heights)
        .filter(|h| {
            cluster.nodes[0].get(&format!("/v1/blocks/{h}")).1["header"]["proposer"] == hider
        })
        .count();
    assert!(
        proposed >= 1,
        "no block proposed by the hiding validator was committed"
    );
    let fetched: usize = [0, 2, 3]
        .iter()
        .map(|&node| {
            cluster.nodes[node]
                .log(1)
                .matches("fetched a missed proposal")
                .count()
        })
        .sum();
    eprintln!("{proposed} blocks of the hiding proposer committed, {fetched} fetches");
    assert!(
        fetched >= proposed,
        "{fetched} proposals fetched for {proposed} blocks"
    );
    assert!(
        !cluster.nodes[1]
            .log(1)
            .contains("fetched a missed proposal"),
        "the hider never needs to fetch its own proposals"
    );
}
