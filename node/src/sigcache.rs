//! Remembers signature verdicts so each distinct signed transfer is verified once per node.
//!
//! Keyed by the SHA-256 of the *full signed bytes*, signature included: keyed by the transfer
//! id alone (which covers only the signing bytes), a copy carrying a garbage signature would
//! find the genuine copy's verdict and pass.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use protocol::Hash;

/// A bounded, thread-safe map from signed-bytes digest to "the signature verified".
#[derive(Debug)]
pub struct SignatureCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    verdicts: HashMap<Hash, bool>,
    order: VecDeque<Hash>,
}

impl SignatureCache {
    /// A cache remembering at most `capacity` verdicts, forgetting the oldest first.
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The remembered verdict for the signed bytes with digest `digest`.
    pub fn get(&self, digest: &Hash) -> Option<bool> {
        self.lock().verdicts.get(digest).copied()
    }

    /// Remembers `valid` for `digest`.
    pub fn insert(&self, digest: Hash, valid: bool) {
        let mut inner = self.lock();
        if inner.verdicts.insert(digest, valid).is_none() {
            inner.order.push_back(digest);
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.verdicts.remove(&oldest);
            }
        }
    }

    /// Returns the remembered verdict, or computes it with `verify`, remembers and returns it.
    pub fn check(&self, signed_bytes: &[u8], verify: impl FnOnce() -> bool) -> bool {
        let digest = Hash::digest(signed_bytes);
        if let Some(valid) = self.get(&digest) {
            return valid;
        }

        // Verification runs outside the lock, so parallel callers do not queue behind it.
        let valid = verify();
        self.insert(digest, valid);
        valid
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent with each other
        // in a way that matters (at worst an entry is forgotten), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn verifies_once_per_distinct_bytes() {
        let cache = SignatureCache::new(10);
        let calls = Cell::new(0);
        let verify = || {
            calls.set(calls.get() + 1);
            true
        };
        assert!(cache.check(b"genuine", verify));
        assert!(cache.check(b"genuine", || unreachable!("cached")));
        assert!(!cache.check(b"forged copy", || false));
        assert_eq!(calls.get(), 1);
        assert_eq!(cache.get(&Hash::digest(b"forged copy")), Some(false));
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let cache = SignatureCache::new(2);
        cache.check(b"a", || true);
        cache.check(b"b", || true);
        cache.check(b"c", || true);
        assert_eq!(cache.get(&Hash::digest(b"a")), None);
        assert_eq!(cache.get(&Hash::digest(b"c")), Some(true));
    }
}
