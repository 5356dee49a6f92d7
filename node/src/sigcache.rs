//! Remembers signature verdicts so each distinct signed transfer is verified once per node.
//!
//! Keyed by the SHA-256 of the *full signed bytes*, signature included: keyed by the transfer
//! id alone (which covers only the signing bytes), a copy carrying a garbage signature would
//! find the genuine copy's verdict and pass.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use protocol::batch::verify_batch;
use protocol::keys::BadSignature;
use protocol::{Hash, SignedTransfer};

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

    /// The signature outcome of each transfer, given with its encoded signed bytes: the
    /// remembered verdict where there is one, and for the rest one batch verification whose
    /// verdicts are remembered. Outcomes are those of verifying each transfer alone (see
    /// `protocol::batch`), whatever was remembered and whatever was batched together.
    pub fn check_transfers(
        &self,
        transfers: &[(&[u8], &SignedTransfer)],
    ) -> Vec<Result<(), BadSignature>> {
        let digests: Vec<Hash> = transfers
            .iter()
            .map(|(encoded, _)| Hash::digest(encoded))
            .collect();
        let mut outcomes: Vec<Option<bool>> = {
            let inner = self.lock();
            digests
                .iter()
                .map(|digest| inner.verdicts.get(digest).copied())
                .collect()
        };

        // Verification runs outside the lock, as in `check`.
        let unknown: Vec<usize> = (0..transfers.len())
            .filter(|index| outcomes[*index].is_none())
            .collect();
        if !unknown.is_empty() {
            let batch: Vec<&SignedTransfer> = unknown.iter().map(|i| transfers[*i].1).collect();
            for (index, outcome) in unknown.iter().zip(verify_batch(&batch)) {
                outcomes[*index] = Some(outcome.is_ok());
                self.insert(digests[*index], outcome.is_ok());
            }
        }
        outcomes
            .into_iter()
            .map(|valid| match valid {
                Some(true) => Ok(()),
                _ => Err(BadSignature),
            })
            .collect()
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
    fn transfers_are_verified_in_one_batch_once_and_remembered() {
        use protocol::{SecretKey, Transfer};

        let sender = SecretKey::from_seed(&[1; 32]);
        let receiver = SecretKey::from_seed(&[2; 32]).public_key();
        let signed = |sequence| {
            let body = Transfer::new(
                Hash::ZERO,
                sender.public_key(),
                receiver,
                5,
                1,
                sequence,
                "",
            );
            SignedTransfer::sign(body, &sender)
        };
        let good = signed(1);
        let mut forged = signed(2);
        forged.transfer.amount += 1;
        let (good_bytes, forged_bytes) = (good.encode(), forged.encode());

        let cache = SignatureCache::new(10);
        let pairs = [(&good_bytes[..], &good), (&forged_bytes[..], &forged)];
        assert_eq!(
            cache.check_transfers(&pairs),
            vec![Ok(()), Err(BadSignature)]
        );
        assert_eq!(cache.get(&Hash::digest(&good_bytes)), Some(true));
        assert_eq!(cache.get(&Hash::digest(&forged_bytes)), Some(false));

        // Remembered now: a single check agrees without verifying again.
        assert!(cache.check(&good_bytes, || unreachable!("remembered")));
        assert!(!cache.check(&forged_bytes, || unreachable!("remembered")));
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
