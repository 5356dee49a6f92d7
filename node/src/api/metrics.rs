//! Prometheus metrics (prometheus-client), served at `GET /metrics`.
//!
//! Gauges that mirror the node's status (height, round, mempool size, peers, evidence) are
//! set from the status snapshot when scraped, so they can never drift from `/v1/status`.
//! Counters and latency histograms are fed by the API itself: submissions, rejections, and a
//! watcher of commits ([`Metrics::record_block`]) that counts committed transfers and times
//! each transfer this node accepted from a wallet, and each block from its proposal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::{Block, Hash};

use super::backend::NodeStatus;

/// Submissions timed at once; beyond this new ones go untimed rather than grow memory.
const MAX_TIMED_SUBMISSIONS: usize = 10_000;

/// A timed submission older than this is assumed never to commit here.
const STALE_SUBMISSION: Duration = Duration::from_secs(600);

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    height: Gauge,
    round: Gauge,
    mempool_size: Gauge,
    peers: Gauge,
    evidence: Gauge,
    committed_transfers: Counter,
    rejections: Family<Vec<(String, String)>, Counter>,
    submit_to_commit: Histogram,
    proposal_to_commit: Histogram,
    submitted: Mutex<HashMap<Hash, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `tally` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tally");
        let height = Gauge::default();
        let round = Gauge::default();
        let mempool_size = Gauge::default();
        let peers = Gauge::default();
        let evidence = Gauge::default();
        let committed_transfers = Counter::default();
        let rejections = Family::<Vec<(String, String)>, Counter>::default();
        // 10 ms to about 80 s: a commit takes a few hundred ms, a stalled one much longer.
        let submit_to_commit = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let proposal_to_commit = Histogram::new(exponential_buckets(0.01, 2.0, 14));

        registry.register("height", "Last committed height", height.clone());
        registry.register("round", "Consensus round at the next height", round.clone());
        registry.register("mempool_size", "Transfers waiting", mempool_size.clone());
        registry.register("peers", "Connected peers", peers.clone());
        registry.register("evidence", "Equivocations seen", evidence.clone());
        registry.register(
            "committed_transfers",
            "Transfers committed since start",
            committed_transfers.clone(),
        );
        registry.register(
            "rejections",
            "Submissions refused, by code",
            rejections.clone(),
        );
        registry.register(
            "submit_to_commit_seconds",
            "From a wallet's accepted submission here to its commit here",
            submit_to_commit.clone(),
        );
        registry.register(
            "proposal_to_commit_seconds",
            "From a block's proposal timestamp to its commit here",
            proposal_to_commit.clone(),
        );

        Metrics {
            registry,
            height,
            round,
            mempool_size,
            peers,
            evidence,
            committed_transfers,
            rejections,
            submit_to_commit,
            proposal_to_commit,
            submitted: Mutex::new(HashMap::new()),
        }
    }

    /// A wallet's transfer was accepted at `at`.
    pub fn submitted(&self, id: Hash, at: Instant) {
        let mut submitted = self
            .submitted
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if submitted.len() >= MAX_TIMED_SUBMISSIONS {
            // Superseded and rejected transfers never commit; drop the stale ones.
            submitted.retain(|_, since| at.saturating_duration_since(*since) < STALE_SUBMISSION);
        }
        if submitted.len() < MAX_TIMED_SUBMISSIONS {
            submitted.insert(id, at);
        }
    }

    /// A submission was refused with `code`.
    pub fn rejected(&self, code: &str) {
        self.rejections
            .get_or_create(&vec![("code".to_string(), code.to_string())])
            .inc();
    }

    /// A block was committed; `now_ms` is the wall clock in Unix milliseconds.
    pub fn record_block(&self, block: &Block, now: Instant, now_ms: u64) {
        self.committed_transfers
            .inc_by(block.transfers.len() as u64);

        let lag_ms = now_ms.saturating_sub(block.header.timestamp_ms);
        self.proposal_to_commit.observe(lag_ms as f64 / 1000.0);

        let mut submitted = self
            .submitted
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for transfer in &block.transfers {
            if let Some(at) = submitted.remove(&transfer.id()) {
                let seconds = now.saturating_duration_since(at).as_secs_f64();
                self.submit_to_commit.observe(seconds);
            }
        }
    }

    /// The text exposition, with the status gauges set from `status`.
    pub fn render(&self, status: &NodeStatus, evidence: u64) -> String {
        self.height.set(status.height.parse().unwrap_or(0));
        self.round.set(i64::from(status.round));
        self.mempool_size.set(status.mempool_size as i64);
        self.peers.set(status.peers as i64);
        self.evidence
            .set(i64::try_from(evidence).unwrap_or(i64::MAX));

        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
