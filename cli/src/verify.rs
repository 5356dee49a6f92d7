//! Signature checks spread over every core.
//!
//! The transfers of a batch of blocks are pooled and cut into one slice per core, each
//! slice checked with the protocol's batch verification; certificates are shared out the
//! same way. A transfer's outcome does not depend on which others it is batched with (see
//! `protocol::batch`), so the slicing never changes a verdict.

use std::num::NonZeroUsize;
use std::thread;

use protocol::batch::verify_batch;
use protocol::consensus::{CertificateError, ValidatorSet};
use protocol::keys::BadSignature;
use protocol::{CertifiedBlock, Hash, SignatureVerdict, SignedTransfer};

/// Below this many transfers per thread, spawning costs more than it saves.
const MIN_TRANSFERS_PER_THREAD: usize = 64;

/// One [`SignatureVerdict`] per block, in order, computed on all cores.
pub fn verdicts(
    blocks: &[CertifiedBlock],
    network_id: &Hash,
    validators: &ValidatorSet,
) -> Vec<SignatureVerdict> {
    let threads = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let transfers: Vec<&SignedTransfer> = blocks
        .iter()
        .flat_map(|certified| &certified.block.transfers)
        .collect();
    let transfer_chunk = transfers
        .len()
        .div_ceil(threads)
        .max(MIN_TRANSFERS_PER_THREAD);
    let block_chunk = blocks.len().div_ceil(threads).max(1);

    let (transfer_outcomes, certificate_outcomes) = thread::scope(|scope| {
        let transfer_jobs: Vec<_> = transfers
            .chunks(transfer_chunk)
            .map(|chunk| scope.spawn(move || verify_batch(chunk)))
            .collect();
        let certificate_jobs: Vec<_> = blocks
            .chunks(block_chunk)
            .map(|chunk| scope.spawn(move || check_certificates(chunk, network_id, validators)))
            .collect();
        (join_all(transfer_jobs), join_all(certificate_jobs))
    });

    // Hand each block back exactly its own transfers' outcomes, in order.
    let mut transfer_outcomes = transfer_outcomes.into_iter();
    blocks
        .iter()
        .zip(certificate_outcomes)
        .map(|(certified, certificate)| {
            let count = certified.block.transfers.len();
            let transfers: Vec<Result<(), BadSignature>> =
                transfer_outcomes.by_ref().take(count).collect();
            SignatureVerdict {
                certificate,
                transfers,
            }
        })
        .collect()
}

fn check_certificates(
    blocks: &[CertifiedBlock],
    network_id: &Hash,
    validators: &ValidatorSet,
) -> Vec<Result<(), CertificateError>> {
    blocks
        .iter()
        .map(|certified| certified.certificate.verify(network_id, validators))
        .collect()
}

fn join_all<T>(jobs: Vec<thread::ScopedJoinHandle<'_, Vec<T>>>) -> Vec<T> {
    jobs.into_iter()
        .flat_map(|job| job.join().expect("a verification thread does not panic"))
        .collect()
}
