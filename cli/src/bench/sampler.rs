//! Resident memory of every node, sampled twice a second for the whole federation run, so
//! that a phase can tell whether memory stays flat under steady load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::procfs;

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// One sample: nanoseconds since the bench's epoch, and each node's RSS in KiB (0 when the
/// process could not be read).
pub type Sample = (u64, Vec<u64>);

/// A running sampler.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Samples the processes `pids` until stopped.
    pub fn start(epoch: Instant, pids: Vec<String>) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rss = pids
                        .iter()
                        .map(|pid| procfs::status_kib(pid, "VmRSS").unwrap_or(0))
                        .collect();
                    let at = epoch.elapsed().as_nanos() as u64;
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((at, rss));
                    std::thread::sleep(INTERVAL);
                }
            })
        };
        Sampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Node `node`'s samples taken between `from_ns` and `to_ns`, oldest first.
    pub fn window(&self, node: usize, from_ns: u64, to_ns: u64) -> Vec<u64> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples
            .iter()
            .filter(|(at, _)| (from_ns..=to_ns).contains(at))
            .filter_map(|(_, rss)| rss.get(node).copied())
            .filter(|kib| *kib > 0)
            .collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
