//! The handlers against the in-memory [`FakeNode`]: every endpoint's normal answer and every
//! error's status and code.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use protocol::chain_log::decode_log;
use protocol::receipt::{ReceiptError, ReceiptJson};
use protocol::transfer::TransferJson;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::backend::Location;
use super::events::{EventLimits, Outgoing, parse_event_id, spawn_feed};
use super::fake::{FakeNode, user};
use super::{ApiConfig, ApiState, router};

struct Harness {
    node: Arc<FakeNode>,
    app: Router,
}

fn harness_with(config: ApiConfig) -> Harness {
    let node = Arc::new(FakeNode::new());
    let app = router(ApiState::new(node.clone(), config));
    Harness { node, app }
}

fn harness() -> Harness {
    harness_with(ApiConfig::default())
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let request = Request::get(uri).body(Body::empty()).expect("request");
        let (status, bytes) = self.send(request).await;
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    async fn post_raw(&self, uri: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let request = Request::post(uri)
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request");
        let (status, bytes) = self.send(request).await;
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        let bytes = serde_json::to_vec(body).expect("serializes");
        self.post_raw("/v1/transfers", "application/json", bytes)
            .await
    }

    fn json(&self, from: u8, to: u8, units: u64, sequence: u64) -> Value {
        let signed = self.node.transfer(from, to, units, sequence);
        serde_json::to_value(TransferJson::from_signed(&signed, Default::default()))
            .expect("serializes")
    }
}

fn code(body: &Value) -> &str {
    body["code"].as_str().expect("an error body has a code")
}

#[tokio::test]
async fn status_health_and_genesis_answer() {
    let api = harness();

    let (status, body) = api.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["height"], "0");
    assert_eq!(body["syncing"], false);

    let (status, body) = api.get("/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true);

    let (status, body) = api.get("/v1/genesis").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decimals"], 2);
    assert_eq!(body["min_fee"], "0.01");
    assert_eq!(body["network_id"], json!(api.node.genesis_id()));
    assert!(
        body["genesis_toml"]
            .as_str()
            .expect("text")
            .contains("tally-api-test")
    );
}

#[tokio::test]
async fn submit_is_idempotent_and_reports_each_state() {
    let api = harness();
    let transfer = api.json(1, 2, 500, 1);
    let id = transfer["id"].clone();

    let (status, body) = api.post(&transfer).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({ "id": id, "status": "accepted" }));

    let (status, body) = api.post(&transfer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "duplicate");
    assert_eq!(body["current"]["status"], "pending");

    let uri = format!("/v1/transfers/{}", id.as_str().expect("text"));
    let (status, body) = api.get(&uri).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("pending"))
    );

    api.node.commit();
    let (status, body) = api.post(&transfer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["current"]["status"], "committed");
    assert_eq!(body["current"]["height"], "1");

    let (status, body) = api.get(&uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "committed");
    assert_eq!(body["position"], "0");
    assert!(body["receipt"].is_object());
}

#[tokio::test]
async fn a_receipt_verifies_against_the_genesis_and_a_flipped_byte_does_not() {
    let api = harness();
    for sequence in 1..=5 {
        api.post(&api.json(1, 2, 100, sequence)).await;
    }
    let target = api.json(1, 3, 100, 6);
    api.post(&target).await;
    api.node.commit();

    let uri = format!("/v1/transfers/{}", target["id"].as_str().expect("text"));
    let (_, body) = api.get(&uri).await;
    let json: ReceiptJson = serde_json::from_value(body["receipt"].clone()).expect("receipt");
    let genesis = super::NodeApi::genesis(api.node.as_ref()).clone();
    let receipt = json.to_receipt(genesis.decimals).expect("parses");
    assert_eq!(receipt.verify(&genesis), Ok(()));
    assert_eq!(receipt.proof.size, 6);

    let mut transfer = receipt.clone();
    transfer.transfer.signature.0[0] ^= 1;
    assert_eq!(transfer.verify(&genesis), Err(ReceiptError::BadSignature));

    let mut path = receipt.clone();
    path.proof.path[1].0[31] ^= 0x80;
    assert!(matches!(
        path.verify(&genesis),
        Err(ReceiptError::NotInBlock(_))
    ));

    let mut certificate = receipt;
    certificate.certificate.signatures[0].signature.0[40] ^= 4;
    assert!(matches!(
        certificate.verify(&genesis),
        Err(ReceiptError::Certificate(_))
    ));
}

#[tokio::test]
async fn submission_errors_have_their_codes() {
    let api = harness();
    let good = api.json(1, 2, 100, 1);

    let mut number_amount = good.clone();
    number_amount["amount"] = json!(1);
    let (status, body) = api.post(&number_amount).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let mut unknown = good.clone();
    unknown["extra"] = json!("x");
    let (status, body) = api.post(&unknown).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let text = serde_json::to_string(&good).expect("text");
    let duplicated = text.replacen('{', "{\"memo\":\"a\",", 1);
    let (status, body) = api
        .post_raw("/v1/transfers", "application/json", duplicated.into_bytes())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    // The transfer's fields as a JSON array, in order: serde alone would take it.
    let fields = [
        "id",
        "version",
        "network_id",
        "sender",
        "receiver",
        "amount",
        "fee",
        "sequence",
        "memo",
        "signature",
    ];
    let array: Vec<Value> = fields.iter().map(|field| good[*field].clone()).collect();
    let (status, body) = api
        .post_raw(
            "/v1/transfers",
            "application/json",
            json!(array).to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        (status, code(&body), body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            "malformed_json",
            Some("the body must be a JSON object")
        )
    );

    let (status, body) = api
        .post_raw("/v1/transfers", "application/json", b"{\"id\":".to_vec())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let mut bad_amount = good.clone();
    bad_amount["amount"] = json!("1.001");
    let (status, body) = api.post(&bad_amount).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_transfer")
    );

    let mut forged = good.clone();
    let signature = forged["signature"].as_str().expect("text").to_string();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    forged["signature"] = json!(format!("{flipped}{}", &signature[1..]));
    let (status, body) = api.post(&forged).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_signature")
    );

    let bytes = serde_json::to_vec(&good).expect("bytes");
    let (status, body) = api.post_raw("/v1/transfers", "text/plain", bytes).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let mut huge = good.clone();
    huge["memo"] = json!("x".repeat(20_000));
    let (status, body) = api.post(&huge).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

#[tokio::test]
async fn routing_errors_are_json() {
    let api = harness();

    let (status, body) = api.get("/v1/nothing").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let request = Request::delete("/v1/status")
        .body(Body::empty())
        .expect("request");
    let (status, bytes) = api.send(request).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    let (status, body) = api.get("/v1/transfers/abc").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_id"));

    let unknown = format!("/v1/transfers/{}", "ab".repeat(32));
    let (status, body) = api.get(&unknown).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_transfer")
    );

    let (status, body) = api.get("/v1/blocks/7").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_block")
    );

    let (status, body) = api.get("/v1/blocks/-1").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_height")
    );

    let (status, body) = api.get("/v1/accounts/tly1nope").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_address")
    );
}

#[tokio::test]
async fn a_slow_body_times_out() {
    let config = ApiConfig {
        body_timeout: Duration::from_millis(100),
        ..ApiConfig::default()
    };
    let api = harness_with(config);
    let never = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let request = Request::post("/v1/transfers")
        .header("content-type", "application/json")
        .body(Body::from_stream(never))
        .expect("request");
    let (status, bytes) = api.send(request).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        (status, code(&body)),
        (StatusCode::REQUEST_TIMEOUT, "body_timeout")
    );
}

#[tokio::test]
async fn full_mempool_rate_limit_and_syncing_are_refused() {
    let config = ApiConfig {
        rate_limit_per_second: 3,
        ..ApiConfig::default()
    };
    let mut node = FakeNode::new();
    node.mempool_max = 1;
    let node = Arc::new(node);
    let api = Harness {
        app: router(ApiState::new(node.clone(), config)),
        node,
    };

    api.post(&api.json(1, 2, 100, 1)).await;
    let (status, body) = api.post(&api.json(2, 1, 100, 1)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "mempool_full")
    );

    *api.node.syncing.lock().expect("unpoisoned") = true;
    let (status, body) = api.post(&api.json(3, 1, 100, 1)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "node_syncing")
    );
    let address = user(1).public_key().to_string();
    let (status, body) = api.get(&format!("/v1/accounts/{address}")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "node_syncing")
    );

    // Four requests so far against a burst of six: two more pass, the next is over.
    for _ in 0..2 {
        assert_eq!(api.get("/v1/status").await.0, StatusCode::OK);
    }
    let (status, body) = api.get("/v1/status").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn accounts_count_pending_sequences_and_unknown_ones_are_empty() {
    let api = harness();
    let stranger = user(77).public_key();
    let (status, body) = api.get(&format!("/v1/accounts/{stranger}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["balance"], "0.00");
    assert_eq!(body["next_sequence"], "1");
    assert_eq!(body["next_sequence_pending"], "1");

    api.post(&api.json(1, 2, 250, 1)).await;
    api.node.commit();
    api.post(&api.json(1, 2, 100, 2)).await;
    api.post(&api.json(1, 2, 100, 3)).await;

    let key = hex::encode(user(1).public_key().as_bytes());
    let (status, body) = api.get(&format!("/v1/accounts/{key}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["balance"], "9997.49");
    assert_eq!(body["next_sequence"], "2");
    assert_eq!(body["next_sequence_pending"], "4");
    assert_eq!(body["height"], "1");
}

#[tokio::test]
async fn paging_sees_every_entry_once_while_transfers_arrive() {
    let api = harness();
    let address = user(1).public_key().to_string();
    let mut sequence = 0;
    let mut send = async |count: u64, api: &Harness| {
        for _ in 0..count {
            sequence += 1;
            api.post(&api.json(1, 2, 10, sequence)).await;
        }
        api.node.commit();
    };
    send(25, &api).await;

    let mut seen = Vec::new();
    let mut uri = format!("/v1/accounts/{address}/transfers?limit=5");
    loop {
        let (status, body) = api.get(&uri).await;
        assert_eq!(status, StatusCode::OK);
        let page = body["transfers"].as_array().expect("list").clone();
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|entry| entry["transfer"]["id"].clone()));
        // New transfers arrive between pages; they are newer than the cursor.
        send(2, &api).await;
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                uri = format!("/v1/accounts/{address}/transfers?limit=5&cursor={cursor}");
            }
            None => break,
        }
    }
    let sequences: Vec<u64> = seen
        .iter()
        .map(|id| api.node.sequence_of(id.as_str().expect("id")))
        .collect();
    assert_eq!(sequences, (1..=25).rev().collect::<Vec<u64>>());

    let stranger = user(55).public_key();
    let (status, body) = api.get(&format!("/v1/accounts/{stranger}/transfers")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["transfers"], json!([]));
    assert_eq!(body["next_cursor"], Value::Null);

    // A well-formed cursor naming no entry of this account's history: before the first
    // block, and another account's transfer.
    for cursor in ["0".repeat(24), format!("{:016x}{:08x}", 1, 0)] {
        let uri = format!("/v1/accounts/{stranger}/transfers?cursor={cursor}");
        let (status, body) = api.get(&uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor}");
        assert_eq!(
            body,
            json!({"code": "bad_cursor", "message": "not a cursor from this account's history"})
        );
    }

    for bad in ["limit=0", "limit=-1", "limit=x", "limit=1000", "cursor=zz"] {
        let (status, body) = api
            .get(&format!("/v1/accounts/{address}/transfers?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(["bad_limit", "bad_cursor"].contains(&code(&body)), "{bad}");
    }
    for bad in ["%zz", "limit=%ff", "limit=5&limit=6"] {
        let (status, body) = api
            .get(&format!("/v1/accounts/{address}/transfers?{bad}"))
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "bad_query"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn blocks_and_the_log_serve_the_chain() {
    let api = harness();
    api.post(&api.json(1, 2, 10, 1)).await;
    api.node.commit();
    api.post(&api.json(2, 3, 10, 1)).await;
    api.post(&api.json(3, 4, 10, 1)).await;
    api.node.commit();

    let (status, latest) = api.get("/v1/blocks/latest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["height"], "2");
    assert_eq!(latest["transfers"].as_array().expect("list").len(), 2);
    assert_eq!(
        latest["certificate"]["signatures"]
            .as_array()
            .expect("list")
            .len(),
        3
    );
    let (_, first) = api.get("/v1/blocks/1").await;
    assert_eq!(latest["header"]["parent"], first["hash"]);

    let request = Request::get("/v1/log?from=1")
        .body(Body::empty())
        .expect("request");
    let (status, bytes) = api.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let (header, blocks, end) =
        decode_log(&bytes, Some(api.node.genesis_id()), 1 << 20).expect("valid log");
    assert_eq!(header.first_height, 1);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        end.last_hash.to_hex(),
        latest["hash"].as_str().expect("hash")
    );

    let request = Request::get("/v1/log?from=2")
        .body(Body::empty())
        .expect("request");
    let (_, bytes) = api.send(request).await;
    let (header, blocks, _) = decode_log(&bytes, None, 1 << 20).expect("valid log");
    assert_eq!((header.first_height, blocks.len()), (2, 1));

    let (status, body) = api.get("/v1/log?from=0").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_height")
    );
    let (status, body) = api.get("/v1/log?from=9").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_block")
    );
}

#[tokio::test]
async fn metrics_evidence_and_cors() {
    let config = ApiConfig {
        cors_origins: vec!["https://wallet.example".into()],
        ..ApiConfig::default()
    };
    let api = harness_with(config);
    api.post(&api.json(1, 2, 10, 1)).await;
    let mut forged = api.json(2, 1, 10, 1);
    forged["signature"] = json!("00".repeat(64));
    api.post(&forged).await;

    let request = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let (status, bytes) = api.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).expect("text");
    for name in [
        "tally_height",
        "tally_round",
        "tally_mempool_size 1",
        "tally_peers 3",
        "tally_committed_transfers_total",
        "tally_submit_to_commit_seconds",
        "tally_proposal_to_commit_seconds",
        "tally_rejections_total{code=\"bad_signature\"} 1",
        "tally_evidence",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }

    let (status, body) = api.get("/v1/evidence").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "evidence": [] })));

    let preflight = Request::options("/v1/transfers")
        .header("origin", "https://wallet.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .expect("request");
    let response = api
        .app
        .clone()
        .oneshot(preflight)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let allowed = response.headers()["access-control-allow-origin"].clone();
    assert_eq!(allowed, "https://wallet.example");

    let foreign = Request::get("/v1/status")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .expect("request");
    let response = api.app.clone().oneshot(foreign).await.expect("infallible");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn an_event_stream_resumes_without_missing_anything() {
    let node = Arc::new(FakeNode::new());
    let limits = EventLimits {
        buffer: 64,
        slow_client: Duration::from_secs(5),
    };
    for sequence in 1..=3 {
        node.submit_now(node.transfer(1, 2, 10, sequence));
    }
    node.commit();

    let start = Location {
        height: 1,
        position: 0,
    };
    let mut stream = Box::pin(spawn_feed(node.clone(), start, None, limits));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let Some(Outgoing::Transfer { id, .. }) = stream.next().await else {
            panic!("expected a transfer event");
        };
        ids.push(id);
    }
    drop(stream);

    // While disconnected, more commits land; one concerns only other accounts.
    node.submit_now(node.transfer(3, 4, 10, 1));
    node.submit_now(node.transfer(1, 3, 10, 4));
    node.commit();

    let last = parse_event_id(ids.last().expect("two")).expect("id");
    let resume = Location {
        height: last.height,
        position: last.position + 1,
    };
    let mut stream = Box::pin(spawn_feed(node.clone(), resume, None, limits));
    for _ in 0..3 {
        let Some(Outgoing::Transfer { id, .. }) = stream.next().await else {
            panic!("expected a transfer event");
        };
        ids.push(id);
    }
    assert_eq!(ids, ["1-0", "1-1", "1-2", "2-0", "2-1"]);

    // Live: a commit after the stream caught up arrives too.
    node.submit_now(node.transfer(2, 1, 10, 1));
    node.commit();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    assert!(matches!(next, Ok(Some(Outgoing::Transfer { id, .. })) if id == "3-0"));

    // An account filter skips the others' transfers.
    let account = Some(user(4).public_key());
    let mut filtered = Box::pin(spawn_feed(node.clone(), start, account, limits));
    let Some(Outgoing::Transfer { id, .. }) = filtered.next().await else {
        panic!("expected a transfer event");
    };
    assert_eq!(id, "2-0");
}

#[tokio::test]
async fn a_client_that_stops_reading_gets_an_error_and_is_closed() {
    let node = Arc::new(FakeNode::new());
    for sequence in 1..=10 {
        node.submit_now(node.transfer(1, 2, 10, sequence));
    }
    node.commit();
    let limits = EventLimits {
        buffer: 3,
        slow_client: Duration::from_millis(50),
    };
    let start = Location {
        height: 1,
        position: 0,
    };
    let mut stream = Box::pin(spawn_feed(node.clone(), start, None, limits));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut events = Vec::new();
    while let Some(outgoing) = stream.next().await {
        events.push(outgoing);
    }
    let (last, buffered) = events.split_last().expect("events");
    assert!(matches!(
        last,
        Outgoing::Error {
            code: "client_too_slow",
            ..
        }
    ));
    let ids: Vec<&str> = buffered
        .iter()
        .map(|event| match event {
            Outgoing::Transfer { id, .. } => id.as_str(),
            Outgoing::Error { .. } => panic!("one error, last"),
        })
        .collect();
    // The buffer and the one event the feed held when it gave up: in order, none skipped.
    assert_eq!(ids[..3], ["1-0", "1-1", "1-2"]);
}

#[tokio::test]
async fn the_event_endpoint_streams_sse() {
    let api = harness();
    api.post(&api.json(1, 2, 10, 1)).await;
    api.node.commit();

    let request = Request::get("/v1/events?from=1")
        .body(Body::empty())
        .expect("request");
    let response = api.app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("an event in time")
        .expect("a chunk")
        .expect("readable");
    let text = String::from_utf8(chunk.to_vec()).expect("text");
    assert!(text.contains("event: transfer"), "{text}");
    assert!(text.contains("id: 1-0"), "{text}");

    let bad = Request::get("/v1/events")
        .header("last-event-id", "x")
        .body(Body::empty())
        .expect("request");
    let (status, bytes) = api.send(bad).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_event_id")
    );
}
