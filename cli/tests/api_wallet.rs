//! The wallet API against real `tally node run` processes: every endpoint's normal answer,
//! the error codes, pagination while transfers arrive, event resume and receipts checked by
//! the protocol crate alone.
//!
//! One validator commits alone (a quorum of one), which keeps heights fast on CI's 2 cores;
//! the API does not depend on the federation's size.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, serial};
use protocol::chain_log::decode_log;
use protocol::consensus::CertificateError;
use protocol::merkle::InclusionError;
use protocol::receipt::{ReceiptError, ReceiptJson};
use protocol::{Hash, SignedTransfer, Transfer};
use serde_json::{Value, json};

/// Generous: CI's 2 cores are shared with the rest of the test suite.
const WAIT: Duration = Duration::from_secs(90);

/// One raw HTTP/1.0 exchange (no chunked encoding: the body runs to the close).
fn raw(address: &str, request: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

/// A request with `content_type` and `body`, answered with a JSON body.
fn send(address: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, _, body) = raw(address, &request, body);
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&body)));
    (status, value)
}

/// `text` with the hex digit at `index` changed: one flipped bit of one byte.
fn flip_hex(text: &str, index: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let digit = chars[index].to_digit(16).unwrap() ^ 1;
    chars[index] = char::from_digit(digit, 16).unwrap();
    chars.into_iter().collect()
}

fn code(body: &Value) -> &str {
    body["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
}

/// Reads server-sent events until `count` transfer ids arrived, then disconnects.
fn read_events(address: &str, query: &str, last_id: Option<&str>, count: usize) -> Vec<String> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let resume = last_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /v1/events?{query} HTTP/1.0\r\nHost: {address}\r\n{resume}\r\n");
    stream.write_all(request.as_bytes()).unwrap();

    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .map(str::to_string)
            .collect();
        if ids.len() >= count {
            return ids[..count].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "only {} events: {text}",
            ids.len()
        );
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the event stream closed early: {text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
}

/// Every endpoint of the wallet API on a running node, and every error a client can cause.
#[test]
fn wallet_api_against_a_running_node() {
    let _serial = serial();
    let mut cluster = Cluster::new(1, 0, 3, 20);
    cluster.start(
        0,
        &[],
        &[
            ("TALLY_API_RATE_LIMIT_PER_SECOND", "100"),
            ("TALLY_API_BODY_TIMEOUT_MS", "1000"),
            ("TALLY_API_CORS_ORIGINS", "https://wallet.example"),
            ("TALLY_MEMPOOL_MAX_TRANSFERS", "30"),
            ("TALLY_MEMPOOL_MAX_PER_SENDER", "30"),
        ],
    );
    let node = &cluster.nodes[0];
    let address = node.api.clone();

    // Genesis, status, health.
    let (status, genesis) = node.get("/v1/genesis");
    assert_eq!(status, 200);
    assert_eq!(genesis["decimals"], 2);
    assert_eq!(genesis["min_fee"], "0.01");
    assert_eq!(genesis["network_id"], json!(cluster.network_id()));
    let (status, body) = node.get("/v1/status");
    assert_eq!((status, &body["role"]), (200, &json!("validator")));
    let (status, body) = node.get("/v1/health");
    assert_eq!((status, &body["ok"]), (200, &json!(true)));

    // An account never seen.
    let stranger = protocol::SecretKey::from_seed(&[7; 32]).public_key();
    let (status, body) = node.get(&format!("/v1/accounts/{stranger}"));
    assert_eq!(status, 200);
    assert_eq!(
        (&body["balance"], &body["next_sequence"]),
        (&json!("0.00"), &json!("1"))
    );

    // 25 transfers from user 0 to user 1.
    let receiver = cluster.users[1].public_key();
    let mut ids = Vec::new();
    for sequence in 1..=25 {
        let transfer = cluster.transfer(0, 1, 10, sequence);
        let (status, body) = node.post("/v1/transfers", &cluster.json(&transfer));
        assert_eq!(status, 202, "{body}");
        ids.push(transfer.id());
    }
    let (status, body) = node.get(&format!("/v1/accounts/{}", cluster.users[0].public_key()));
    assert_eq!(status, 200);
    let pending: u64 = body["next_sequence_pending"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pending >= 2, "{body}");
    for id in &ids {
        cluster.wait_committed(0, id, WAIT);
    }

    // The same transfer again: a duplicate with its committed status.
    let (status, again) = node.post(
        "/v1/transfers",
        &cluster.json(&cluster.transfer(0, 1, 10, 1)),
    );
    assert_eq!(
        (status, &again["current"]["status"]),
        (200, &json!("committed"))
    );

    // Pagination five at a time while more transfers arrive: each of the 25 exactly once.
    let sender = cluster.users[0].public_key();
    let mut seen: Vec<Hash> = Vec::new();
    let mut path = format!("/v1/accounts/{sender}/transfers?limit=5");
    let mut more = 26;
    let mut sizes = Vec::new();
    let mut extras = Vec::new();
    loop {
        let (status, page) = node.get(&path);
        assert_eq!(status, 200, "{page}");
        sizes.push(page["transfers"].as_array().unwrap().len());
        for entry in page["transfers"].as_array().unwrap() {
            assert_eq!(entry["direction"], "sent");
            seen.push(entry["transfer"]["id"].as_str().unwrap().parse().unwrap());
        }
        let extra = cluster.transfer(0, 2, 10, more);
        more += 1;
        let (status, body) = node.post("/v1/transfers", &cluster.json(&extra));
        assert_eq!(status, 202, "{body}");
        extras.push(extra.id());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/accounts/{sender}/transfers?limit=5&cursor={cursor}")
            }
            None => break,
        }
    }
    let expected: Vec<Hash> = ids.iter().rev().copied().collect();
    assert_eq!(seen, expected, "every entry once, newest first");
    // The fifth page was full, so it had a cursor; the page past the end is empty.
    assert_eq!(sizes, vec![5, 5, 5, 5, 5, 0]);
    for id in &extras {
        cluster.wait_committed(0, id, WAIT);
    }

    // An account with no transfers: an empty list, no cursor.
    let (status, page) = node.get(&format!("/v1/accounts/{stranger}/transfers"));
    assert_eq!(status, 200);
    assert_eq!(page, json!({ "transfers": [], "next_cursor": null }));

    // Events for user 1 from height 1: read 10, disconnect, resume after the last one.
    let query = format!("account={receiver}&from=1");
    let first = read_events(&address, &query, None, 10);
    let resumed = read_events(&address, &query, first.last().map(String::as_str), 15);
    let all: Vec<String> = first.iter().chain(&resumed).cloned().collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), 25, "no event missed or repeated: {all:?}");
    let mut locations: Vec<(u64, u64)> = all
        .iter()
        .map(|id| {
            let (height, position) = id.split_once('-').unwrap();
            (height.parse().unwrap(), position.parse().unwrap())
        })
        .collect();
    let in_order = locations.clone();
    locations.sort();
    assert_eq!(in_order, locations, "events arrive in chain order");

    // A receipt, checked with the protocol crate alone. User 1 sends sequences 2 to 4 first
    // (they wait for 1), then 1: the four go into one block, so each receipt has a path of
    // two hashes.
    let batch: Vec<_> = [2, 3, 4, 1]
        .iter()
        .map(|&sequence| cluster.transfer(1, 0, 5, sequence))
        .collect();
    for transfer in &batch {
        let (status, body) = node.post("/v1/transfers", &cluster.json(transfer));
        assert_eq!(status, 202, "{body}");
    }
    let height = cluster.wait_committed(0, &batch[1].id(), WAIT);
    let (status, body) = node.get(&format!("/v1/transfers/{}", batch[1].id()));
    assert_eq!((status, &body["status"]), (200, &json!("committed")));
    assert_eq!(body["height"], height.to_string());
    let receipt_json = body["receipt"].clone();
    assert_eq!(receipt_json["proof"]["size"], "4");
    assert_eq!(receipt_json["proof"]["index"], "2");
    let check = |receipt: &Value| {
        let parsed: ReceiptJson = serde_json::from_value(receipt.clone()).unwrap();
        parsed
            .to_receipt(cluster.genesis.decimals)
            .unwrap()
            .verify(&cluster.genesis)
    };
    assert_eq!(check(&receipt_json), Ok(()));
    let receipt: ReceiptJson = serde_json::from_value(receipt_json.clone()).unwrap();
    let receipt = receipt.to_receipt(cluster.genesis.decimals).unwrap();
    assert_eq!(receipt.proof.path.len(), 2);

    // One flipped byte in the transfer's signature, in the path, in the header, or in the
    // certificate's signature: each fails with its own error.
    let flipped = |pointer: &str, index: usize| {
        let mut receipt = receipt_json.clone();
        let text = receipt.pointer_mut(pointer).unwrap();
        *text = json!(flip_hex(text.as_str().unwrap(), index));
        check(&receipt)
    };
    assert_eq!(
        flipped("/transfer/signature", 100),
        Err(ReceiptError::BadSignature)
    );
    assert_eq!(
        flipped("/proof/path/0", 0),
        Err(ReceiptError::NotInBlock(InclusionError::RootMismatch))
    );
    let header_hex = receipt_json["header"].as_str().unwrap();
    let mut header = receipt.header.clone();
    header.state_root.0[31] ^= 0x10;
    assert_eq!(
        flipped("/header", header_hex.len() - 2),
        Err(ReceiptError::BlockMismatch {
            certificate: receipt.header.hash(),
            header: header.hash(),
        })
    );
    let certificate_hex = receipt_json["certificate"].as_str().unwrap();
    let validator = cluster.genesis.validators[0].key;
    assert_eq!(
        flipped("/certificate", certificate_hex.len() - 20),
        Err(ReceiptError::Certificate(
            CertificateError::SignatureMismatch(validator)
        ))
    );

    // Blocks and the log.
    let (status, latest) = node.get("/v1/blocks/latest");
    assert_eq!(status, 200);
    let head: u64 = latest["height"].as_str().unwrap().parse().unwrap();
    let (status, first_block) = node.get("/v1/blocks/1");
    assert_eq!((status, &first_block["height"]), (200, &json!("1")));
    let request = format!("GET /v1/log?from=1 HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let (status, _, log) = raw(&address, &request, b"");
    assert_eq!(status, 200);
    let (header, blocks, _) = decode_log(&log, Some(cluster.network_id()), 1 << 24).unwrap();
    assert_eq!(header.first_height, 1);
    assert!(blocks.len() as u64 >= head);

    // The auditor reads the same stream from this real node, and the export of it, and
    // finds the same certified chain.
    let url = format!("http://{address}");
    let genesis_path = cluster.genesis_path.display().to_string();
    let export = cluster.genesis_path.with_file_name("export.log");
    let export = export.display().to_string();
    let (exit, out, err) = common::tally(&["log", "export", "--node", &url, "--out", &export], &[]);
    assert_eq!(exit, 0, "{out}{err}");
    let audit = |source: &[&str]| {
        let mut args = vec!["audit", "--genesis", &genesis_path, "--json"];
        args.extend_from_slice(source);
        let (exit, out, err) = common::tally(&args, &[]);
        assert_eq!(exit, 0, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let from_file = audit(&["--file", &export]);
    let from_node = audit(&["--node", &url]);
    let exported_height: u64 = from_file["height"].as_str().unwrap().parse().unwrap();
    assert!(exported_height >= head, "{from_file}");
    assert!(
        from_node["height"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= exported_height
    );

    // Metrics and evidence.
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let (status, _, metrics) = raw(&address, &request, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("tally_committed_transfers_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_submit_to_commit_seconds_count"),
        "{metrics}"
    );
    let (status, evidence) = node.get("/v1/evidence");
    assert_eq!((status, evidence), (200, json!({ "evidence": [] })));

    // Errors, each with its status and code.
    let good = cluster.json(&cluster.transfer(2, 1, 10, 1));
    let text = good.to_string();
    let cases: Vec<(&str, String, String, &str, u16, &str)> = vec![
        (
            "GET",
            "/v1/nowhere".into(),
            String::new(),
            "application/json",
            404,
            "not_found",
        ),
        (
            "DELETE",
            "/v1/status".into(),
            String::new(),
            "application/json",
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            text.clone(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            "x".repeat(20_000),
            "application/json",
            413,
            "body_too_large",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            "{\"id\":".into(),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            text.replace("\"amount\":\"0.10\"", "\"amount\":10"),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            text.replacen('{', "{\"extra\":1,", 1),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/v1/transfers".into(),
            text.replacen('{', "{\"memo\":\"x\",", 1),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            "GET",
            "/v1/transfers/00".into(),
            String::new(),
            "application/json",
            400,
            "bad_id",
        ),
        (
            "GET",
            format!("/v1/transfers/{}", "0".repeat(64)),
            String::new(),
            "",
            404,
            "unknown_transfer",
        ),
        (
            "GET",
            "/v1/blocks/99999".into(),
            String::new(),
            "",
            404,
            "unknown_block",
        ),
        (
            "GET",
            format!("/v1/accounts/{sender}/transfers?limit=0"),
            String::new(),
            "",
            400,
            "bad_limit",
        ),
        (
            "GET",
            format!("/v1/accounts/{sender}/transfers?limit=-1"),
            String::new(),
            "",
            400,
            "bad_limit",
        ),
        (
            "GET",
            format!("/v1/accounts/{sender}/transfers?limit=x"),
            String::new(),
            "",
            400,
            "bad_limit",
        ),
        (
            "GET",
            "/v1/accounts/tly1xyz".into(),
            String::new(),
            "",
            400,
            "bad_address",
        ),
    ];
    assert!(text.contains("\"amount\":\"0.10\""), "{text}");
    for (method, path, body, content_type, status, expected) in &cases {
        let (got, answer) = send(&address, method, path, content_type, body.as_bytes());
        assert_eq!(
            (got, code(&answer)),
            (*status, *expected),
            "{method} {path}"
        );
    }

    // Transfers the ledger or the mempool refuse: 400 with the rule's code and message.
    let other_network = {
        let body = Transfer::new(
            Hash::digest(b"another network"),
            cluster.users[2].public_key(),
            receiver,
            10,
            1,
            1,
            "",
        );
        SignedTransfer::sign(body, &cluster.users[2])
    };
    let mut forged = cluster.json(&cluster.transfer(2, 1, 10, 1));
    forged["signature"] = json!(flip_hex(forged["signature"].as_str().unwrap(), 3));
    let refused = [
        (cluster.json(&other_network), "wrong_network"),
        (forged, "bad_signature"),
        (
            cluster.json(&cluster.transfer(2, 2, 10, 1)),
            "self_transfer",
        ),
        (
            cluster.json(&cluster.transfer(2, 1, 2_000_000, 1)),
            "insufficient_funds",
        ),
        (cluster.json(&cluster.transfer(0, 1, 11, 3)), "bad_sequence"),
    ];
    for (body, expected) in &refused {
        let (status, answer) = node.post("/v1/transfers", body);
        assert_eq!((status, code(&answer)), (400, *expected), "{answer}");
    }
    let (_, answer) = node.post("/v1/transfers", &refused[4].0);
    assert_eq!(
        answer["message"],
        format!("sequence 3 is already used; the sender's next sequence is {more}")
    );

    // A body that never completes: 408 after the configured second.
    let request = format!(
        "POST /v1/transfers HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n"
    );
    let started = Instant::now();
    let (status, _, body) = raw(&address, &request, b"{\"id\":");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, code(&body)), (408, "body_timeout"));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // CORS: a preflight from the configured origin is allowed, another origin gets no grant.
    for (origin, allowed) in [
        ("https://wallet.example", true),
        ("https://evil.example", false),
    ] {
        let request = format!(
            "OPTIONS /v1/transfers HTTP/1.0\r\nHost: {address}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\n\r\n"
        );
        let (_, head, _) = raw(&address, &request, b"");
        let head = head.to_ascii_lowercase();
        let grant = format!("access-control-allow-origin: {origin}");
        assert_eq!(head.contains(&grant), allowed, "{origin}: {head}");
    }

    // A full mempool (30 here): sequences 2 to 16 of user 2 wait for its sequence 1, and 7 to
    // 21 of user 1 for its 6, which never come; one more gets 429 mempool_full and changes
    // nothing.
    let waiting: Vec<SignedTransfer> = (2..=16)
        .map(|seq| cluster.transfer(2, 1, 1, seq))
        .chain((7..=21).map(|seq| cluster.transfer(1, 2, 1, seq)))
        .collect();
    for transfer in &waiting {
        let (status, body) = node.post("/v1/transfers", &cluster.json(transfer));
        assert_eq!(status, 202, "{body}");
    }
    let overflow = cluster.transfer(2, 1, 1, 17);
    let (status, body) = node.post("/v1/transfers", &cluster.json(&overflow));
    assert_eq!((status, code(&body)), (429, "mempool_full"), "{body}");
    let (status, body) = node.get(&format!("/v1/transfers/{}", overflow.id()));
    assert_eq!((status, code(&body)), (404, "unknown_transfer"));
    let (status, body) = node.get(&format!("/v1/transfers/{}", waiting[0].id()));
    assert_eq!((status, &body["status"]), (200, &json!("pending")));
    let (_, status) = node.get("/v1/status");
    assert_eq!(status["mempool_size"], 30);

    // Every refusal above is counted under its code.
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let (_, _, metrics) = raw(&address, &request, b"");
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        "tally_rejections_total{code=\"wrong_network\"} 1",
        "tally_rejections_total{code=\"bad_signature\"} 1",
        "tally_rejections_total{code=\"self_transfer\"} 1",
        "tally_rejections_total{code=\"insufficient_funds\"} 1",
        "tally_rejections_total{code=\"bad_sequence\"} 2",
        "tally_rejections_total{code=\"mempool_full\"} 1",
        "tally_mempool_size 30",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
    assert!(
        metrics.contains("tally_proposal_to_commit_seconds_count"),
        "{metrics}"
    );

    // Over the configured rate (100 a second, bursts of 200): 429 rate_limited.
    let limited = (0..400).any(|_| {
        let (status, body) = send(&address, "GET", "/v1/health", "", b"");
        status == 429 && code(&body) == "rate_limited"
    });
    assert!(limited, "no request was rate limited");
}

/// A node that knows it is behind and cannot get the blocks stays syncing: balances and
/// submissions answer 503 node_syncing rather than a stale answer, and health says 503.
#[test]
fn a_syncing_node_refuses_balances_and_submissions() {
    let _serial = serial();
    let mut cluster = Cluster::new(1, 1, 2, 20);
    cluster.start(0, &["--misbehave", "withhold-blocks"], &[]);
    cluster.nodes[0].wait_for_height(3, WAIT);

    // The full node learns the validator's head but gets no blocks from it.
    cluster.start(1, &[], &[]);
    let node = &cluster.nodes[1];
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = node.get("/v1/health");
        if status == 503 {
            assert_eq!(
                (&body["ok"], &body["syncing"]),
                (&json!(false), &json!(true))
            );
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the node never reported syncing");
        std::thread::sleep(Duration::from_millis(200));
    }

    let account = cluster.users[0].public_key();
    let (status, body) = node.get(&format!("/v1/accounts/{account}"));
    assert_eq!((status, code(&body)), (503, "node_syncing"), "{body}");
    let transfer = cluster.json(&cluster.transfer(0, 1, 10, 1));
    let (status, body) = node.post("/v1/transfers", &transfer);
    assert_eq!((status, code(&body)), (503, "node_syncing"), "{body}");
    let (status, body) = node.get("/v1/status");
    assert_eq!(
        (status, &body["syncing"], &body["height"]),
        (200, &json!(true), &json!("0"))
    );
}
