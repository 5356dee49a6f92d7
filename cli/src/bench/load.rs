//! The load generator: submits a phase's pre-signed transfers across every node's API,
//! either at a fixed offered rate or as fast as the nodes accept them.
//!
//! Transfer `k` of a phase goes to node `k mod n`. Each node gets several workers, each
//! with one keep-alive connection, taking that node's transfers in order.
//!
//! - At a fixed rate, transfer `k` is due at `k / rate` seconds into the phase. Its latency
//!   counts from when it was due, not from when it was sent, so a generator held up by a
//!   slow node cannot hide that slowness (no coordinated omission). A refused transfer is
//!   dropped, and its sender sends nothing more in the phase: its later sequences could
//!   never apply.
//! - As fast as accepted, a worker sends its next transfer as soon as the last is answered;
//!   `mempool_full`, `rate_limited` and `node_syncing` are retried after a short pause.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::client::{self, Connection};
use super::events::{Book, Tracker};
use super::stats;

/// Workers per node: enough requests in flight to keep a node busy at 10,000 a second when
/// each answer takes a few milliseconds.
pub const WORKERS_PER_NODE: usize = 8;

/// The pause before retrying a transfer a node is too busy to take.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// Give up on a transfer after this many connection errors in a row.
const CONNECTION_ERRORS_MAX: u32 = 20;

/// How transfers are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// As fast as the nodes accept them.
    AsFastAsAccepted,
    /// Evenly spaced at this many a second.
    PerSecond(u64),
}

/// A phase's transfers, ready to send.
pub struct Load<'a> {
    /// The nodes' API addresses.
    pub apis: &'a [String],
    /// Each transfer's JSON body.
    pub bodies: &'a [Vec<u8>],
    /// Each transfer's sender (an account index).
    pub senders: &'a [usize],
    /// How many accounts there are.
    pub accounts: usize,
    /// How they are offered.
    pub offer: Offer,
    /// Stop offering after this long (the phase's length), even if transfers are left.
    pub window: Duration,
}

/// What happened to a phase's submissions.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Submissions {
    /// Transfers handed to a node.
    pub sent: u64,
    /// Accepted (`202`, or `200` duplicate).
    pub accepted: u64,
    /// Refused, by refusal code.
    pub refused: BTreeMap<String, u64>,
    /// Not sent because an earlier transfer of their sender was refused.
    pub skipped: u64,
    /// Retries of busy answers (as fast as accepted only).
    pub retries: u64,
    /// Connection errors (each retried).
    pub connection_errors: u64,
    /// Transfers still unsent when the window closed.
    pub unsent: u64,
    /// Whether each transfer was accepted, by index.
    #[serde(skip)]
    pub accepted_flags: Vec<bool>,
}

/// Shared state of one phase's workers.
struct Shared<'a> {
    load: &'a Load<'a>,
    book: &'a Book,
    tracker: &'a Tracker,
    start_ns: u64,
    next: Vec<AtomicUsize>,
    blocked: Vec<AtomicBool>,
    accepted: Vec<AtomicBool>,
    counts: Mutex<Submissions>,
    retries: AtomicU64,
}

/// Submits every transfer of `load`, recording submit times in `book`; returns the counts.
pub fn submit(load: &Load<'_>, book: &Book, tracker: &Tracker) -> Submissions {
    let nodes = load.apis.len();
    let shared = Shared {
        load,
        book,
        tracker,
        start_ns: tracker.now_ns(),
        next: (0..nodes).map(|_| AtomicUsize::new(0)).collect(),
        blocked: (0..load.accounts).map(|_| AtomicBool::new(false)).collect(),
        accepted: (0..load.bodies.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        counts: Mutex::new(Submissions::default()),
        retries: AtomicU64::new(0),
    };
    std::thread::scope(|scope| {
        for node in 0..nodes {
            for _ in 0..WORKERS_PER_NODE {
                let shared = &shared;
                scope.spawn(move || work(shared, node));
            }
        }
    });

    let mut counts = shared
        .counts
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    counts.retries = shared.retries.into_inner();
    counts.accepted_flags = shared
        .accepted
        .into_iter()
        .map(AtomicBool::into_inner)
        .collect();
    counts
}

/// One worker: takes node `node`'s transfers in turn until none is left or time is up.
fn work(shared: &Shared<'_>, node: usize) {
    let load = shared.load;
    let nodes = load.apis.len();
    let mut connection = Connection::new(&load.apis[node]);
    let mut local = Submissions::default();
    let window_end_ns = shared.start_ns + load.window.as_nanos() as u64;
    loop {
        let turn = shared.next[node].fetch_add(1, Ordering::Relaxed);
        let index = turn * nodes + node;
        if index >= load.bodies.len() {
            break;
        }

        // Wait until due; past the window, what is left stays unsent.
        let due_ns = match load.offer {
            Offer::PerSecond(rate) => {
                shared.start_ns + stats::due(index as u64, rate).as_nanos() as u64
            }
            Offer::AsFastAsAccepted => shared.tracker.now_ns(),
        };
        if due_ns >= window_end_ns {
            local.unsent += 1;
            continue;
        }
        let now = shared.tracker.now_ns();
        if due_ns > now {
            std::thread::sleep(Duration::from_nanos(due_ns - now));
        }
        if shared.blocked[load.senders[index]].load(Ordering::Relaxed) {
            local.skipped += 1;
            continue;
        }

        shared.book.submitted_ns[index].store(due_ns, Ordering::Relaxed);
        local.sent += 1;
        match send(shared, &mut connection, index, &mut local) {
            Ok(()) => {
                local.accepted += 1;
                shared.accepted[index].store(true, Ordering::Relaxed);
            }
            Err(code) => {
                shared.blocked[load.senders[index]].store(true, Ordering::Relaxed);
                *local.refused.entry(code).or_default() += 1;
            }
        }
    }
    merge(&shared.counts, local);
}

/// Sends transfer `index` until it gets a final answer: `Ok` if accepted, else the code.
fn send(
    shared: &Shared<'_>,
    connection: &mut Connection,
    index: usize,
    local: &mut Submissions,
) -> Result<(), String> {
    let mut connection_errors = 0;
    loop {
        match connection.post("/v1/transfers", &shared.load.bodies[index]) {
            Ok((200 | 202, _)) => return Ok(()),
            Ok((status, body)) => {
                let code = client::refusal_code(status, &body);
                let busy = matches!(
                    code.as_str(),
                    "mempool_full" | "rate_limited" | "node_syncing"
                );
                if !(busy && shared.load.offer == Offer::AsFastAsAccepted) {
                    return Err(code);
                }
                shared.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(_) => {
                local.connection_errors += 1;
                connection_errors += 1;
                if connection_errors >= CONNECTION_ERRORS_MAX {
                    return Err("connection_error".into());
                }
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}

fn merge(total: &Mutex<Submissions>, local: Submissions) {
    let mut total = total.lock().unwrap_or_else(|p| p.into_inner());
    total.sent += local.sent;
    total.accepted += local.accepted;
    total.skipped += local.skipped;
    total.connection_errors += local.connection_errors;
    total.unsent += local.unsent;
    for (code, count) in local.refused {
        *total.refused.entry(code).or_default() += count;
    }
}
