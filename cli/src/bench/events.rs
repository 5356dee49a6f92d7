//! Learning when each transfer commits: one `GET /v1/events` stream per node.
//!
//! A transfer's commit time is when the node it was submitted to announces it, as a wallet
//! listening to that node would see it. Each stream resumes with `Last-Event-ID` if it
//! breaks, so no commit is missed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protocol::Hash;

use super::client;

/// A slot's value before the event happened.
pub const NOT_YET: u64 = u64::MAX;

/// The transfers of one load phase and what happened to each, shared by the submitting
/// workers and the event streams. Times are nanoseconds since the bench's epoch.
pub struct Book {
    /// Transfer id to its index in the phase.
    pub index: HashMap<Hash, usize>,
    /// The node each transfer is submitted to.
    pub node: Vec<usize>,
    /// When each was due (fixed rates) or sent (as fast as accepted).
    pub submitted_ns: Vec<AtomicU64>,
    /// When its node announced it committed.
    pub committed_ns: Vec<AtomicU64>,
    /// The height it committed at.
    pub height: Vec<AtomicU64>,
}

impl Book {
    /// A book for transfers with these ids, each going to `node_of(index)`.
    pub fn new(ids: &[Hash], node_of: impl Fn(usize) -> usize) -> Book {
        let unset = |_| AtomicU64::new(NOT_YET);
        Book {
            index: ids
                .iter()
                .enumerate()
                .map(|(index, id)| (*id, index))
                .collect(),
            node: (0..ids.len()).map(node_of).collect(),
            submitted_ns: (0..ids.len()).map(unset).collect(),
            committed_ns: (0..ids.len()).map(unset).collect(),
            height: (0..ids.len()).map(unset).collect(),
        }
    }

    /// Whether transfer `index` was seen committed at its node.
    pub fn is_committed(&self, index: usize) -> bool {
        self.committed_ns[index].load(Ordering::Relaxed) != NOT_YET
    }
}

/// What the streams share: the bench's epoch, the current book, and each node's head.
pub struct Tracker {
    epoch: Instant,
    book: RwLock<Option<Arc<Book>>>,
    /// The highest height each node announced a transfer at.
    pub heads: Vec<AtomicU64>,
    stop: AtomicBool,
}

impl Tracker {
    /// A tracker for `nodes` nodes, timing from `epoch`.
    pub fn new(epoch: Instant, nodes: usize) -> Tracker {
        Tracker {
            epoch,
            book: RwLock::new(None),
            heads: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Makes `book` the one commits are recorded in.
    pub fn open(&self, book: Arc<Book>) {
        *self.book.write().unwrap_or_else(|p| p.into_inner()) = Some(book);
    }

    /// Tells the streams to end at their next event or reconnection.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The book commits are recorded in now.
    pub fn book(&self) -> Option<Arc<Book>> {
        self.book.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records that `node` announced transfer `id` committed at `height`.
    fn record(&self, node: usize, id: &Hash, height: u64, book: &Book) {
        self.heads[node].fetch_max(height, Ordering::Relaxed);
        let Some(&index) = book.index.get(id) else {
            return;
        };
        if book.node[index] == node {
            book.height[index].store(height, Ordering::Relaxed);
            book.committed_ns[index].store(self.now_ns(), Ordering::Relaxed);
        }
    }
}

/// Follows node `node`'s event stream at `api` from height 1 until the tracker stops.
pub fn follow(tracker: Arc<Tracker>, node: usize, api: String) {
    std::thread::spawn(move || {
        let agent = client::agent();
        let mut last_id: Option<String> = None;
        while !tracker.stop.load(Ordering::Relaxed) {
            let url = format!("http://{api}/v1/events?from=1");
            let mut request = agent.get(&url);
            if let Some(id) = &last_id {
                request = request.header("Last-Event-ID", id.as_str());
            }
            if let Ok(response) = request.call() {
                let reader = BufReader::new(response.into_body().into_reader());
                read_stream(&tracker, node, reader, &mut last_id);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// Reads events until the stream ends or the tracker stops.
fn read_stream(tracker: &Tracker, node: usize, reader: impl BufRead, last_id: &mut Option<String>) {
    let mut event_id: Option<String> = None;
    let mut book = tracker.book();
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if tracker.stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(id) = line.strip_prefix("id: ") {
            event_id = Some(id.to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let (Some(id), Some(height)) = (
                transfer_id(data),
                event_id.as_deref().and_then(event_height),
            ) else {
                continue;
            };
            // A new phase's book replaces the old one between phases; pick it up.
            if book
                .as_ref()
                .is_none_or(|book| !book.index.contains_key(&id))
            {
                book = tracker.book();
            }
            if let Some(book) = &book {
                tracker.record(node, &id, height, book);
            } else {
                tracker.heads[node].fetch_max(height, Ordering::Relaxed);
            }
            *last_id = event_id.take();
        }
    }
}

/// The transfer id in an event's data, found without parsing the whole JSON: the transfer
/// object is the only one with an `id` field.
pub fn transfer_id(data: &str) -> Option<Hash> {
    let start = data.find("\"id\":\"")? + 6;
    data.get(start..start + 64)?.parse().ok()
}

/// The height in an event id `HEIGHT-POSITION`.
pub fn event_height(id: &str) -> Option<u64> {
    id.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields_are_found_without_full_parsing() {
        let id = "ab".repeat(32);
        let data = format!(
            "{{\"block_hash\":\"{}\",\"height\":\"7\",\"position\":\"3\",\
             \"transfer\":{{\"amount\":\"0.01\",\"fee\":\"0.01\",\"id\":\"{id}\"}}}}",
            "cd".repeat(32)
        );
        assert_eq!(transfer_id(&data), Some(id.parse().unwrap()));
        assert_eq!(transfer_id("{\"id\":\"short\"}"), None);
        assert_eq!(event_height("17-3"), Some(17));
        assert_eq!(event_height("17"), None);
    }
}
