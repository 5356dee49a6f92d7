//! Auditing a chain log as it streams in, on every core, with bounded memory.
//!
//! Three stages run at once, joined by bounded channels:
//!
//! 1. the calling thread reads the source in chunks, decodes blocks and cuts them into
//!    batches;
//! 2. one worker per core takes whole batches and prepares each block
//!    ([`protocol::audit::prepare_blocks`]: signatures, certificate, hash, transfers root),
//!    so the expensive, independent work of later batches overlaps the replay of earlier ones;
//! 3. one thread puts the prepared batches back in stream order and hands each block to the
//!    [`Auditor`], which does the in-order checks and the replay.
//!
//! The reader takes a token for each batch it sends and the replay gives it back once the
//! batch is checked, so at most [`batches_in_flight`] batches exist at once, whatever the
//! log's length or the workers' pace. A failure of the stream (a malformed record, a read
//! error, a bad end) travels behind the batches read before it, so, as when checking one block
//! at a time, the blocks before it are checked first and the first bad height is the one
//! reported; after the first failure nothing more is checked.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use protocol::audit::{PreparedBlock, prepare_blocks};
use protocol::chain_log::{Decoder, LogEnd, LogError, LogItem};
use protocol::consensus::ValidatorSet;
use protocol::{AuditError, AuditSummary, Auditor, CertifiedBlock, Hash};

use crate::progress::Progress;

/// How the stream is cut up; tests use small sizes to run many batches through small logs.
#[derive(Clone, Copy)]
struct Limits {
    /// Bytes read from the source at a time.
    chunk_bytes: usize,
    /// A batch is sent to the workers once it holds this many transfers...
    batch_transfers: usize,
    /// ...or this many blocks, so that a log of small blocks still moves.
    batch_blocks: usize,
}

/// Batches of about two of the ceiling's batches, so batch verification runs at full speed
/// while each batch stays small next to the log.
const LIMITS: Limits = Limits {
    chunk_bytes: 64 * 1024,
    batch_transfers: 2048,
    batch_blocks: 128,
};

/// Batches read but not yet checked, at most: one per worker, and as many again waiting, so
/// no worker waits for the reader while the replay works.
fn batches_in_flight(workers: usize) -> usize {
    2 * workers + 1
}

/// Why a streamed audit stopped before the end of a good log.
#[derive(Debug)]
pub enum StreamFailure {
    /// A block broke a rule.
    Audit(AuditError),
    /// The bytes are not a complete, well-formed log.
    Log(LogError),
    /// The source could not be read to the end.
    Read(io::Error),
}

/// What a streamed audit found.
pub struct StreamOutcome {
    /// What was verified, up to the first failure if any.
    pub summary: AuditSummary,
    /// The first failure, if any.
    pub failure: Option<StreamFailure>,
    /// Bytes read from the source.
    pub bytes: u64,
    /// The log's end record, when it was reached and checked.
    pub end: Option<LogEnd>,
}

/// Decoded blocks on their way to a worker.
struct Batch {
    /// Its place in the stream: batches are numbered from 0, and the end follows them.
    number: u64,
    blocks: Vec<CertifiedBlock>,
    /// Bytes read from the source when the batch was cut, for the progress bar.
    bytes: u64,
}

/// What reaches the replay, numbered in stream order.
enum Done {
    /// A batch, prepared by a worker.
    Prepared {
        blocks: Vec<PreparedBlock>,
        bytes: u64,
    },
    /// The end of the stream: the decoder's verdict on how the log ended, or the failure
    /// that stopped the reading. Always numbered after every batch.
    End(Result<LogEnd, StreamFailure>),
}

/// Reads the whole log from `reader` and audits it with `auditor`.
pub fn audit(reader: &mut dyn Read, auditor: &mut Auditor, progress: &Progress) -> StreamOutcome {
    let workers = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    audit_with(reader, auditor, progress, LIMITS, workers)
}

fn audit_with(
    reader: &mut dyn Read,
    auditor: &mut Auditor,
    progress: &Progress,
    limits: Limits,
    workers: usize,
) -> StreamOutcome {
    let in_flight = batches_in_flight(workers);
    let network_id = auditor.network_id();
    let validators = auditor.validators().clone();
    let max_block_bytes = auditor.genesis().max_block_bytes;

    let (tx_tokens, rx_tokens) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        tx_tokens.send(()).expect("the receiver is here");
    }
    let (tx_jobs, rx_jobs) = sync_channel::<Batch>(in_flight);
    let (tx_done, rx_done) = sync_channel::<(u64, Done)>(in_flight + 1);
    let rx_jobs = Mutex::new(rx_jobs);

    let (failure, end, bytes) = thread::scope(|scope| {
        for _ in 0..workers {
            let tx_done = tx_done.clone();
            let (rx_jobs, validators) = (&rx_jobs, &validators);
            scope.spawn(move || prepare(rx_jobs, &tx_done, &network_id, validators));
        }
        let replay = scope.spawn(|| replay(auditor, rx_done, tx_tokens, progress));

        let mut reading = Reading {
            reader,
            decoder: Decoder::new(Some(network_id), max_block_bytes),
            rx_tokens,
            tx_jobs,
            tx_done,
            limits,
            batches: 0,
            batch: Vec::new(),
            batch_transfers: 0,
            bytes: 0,
        };
        reading.run();
        let bytes = reading.bytes;
        // Closing the queues lets the workers finish once the replay is done with them.
        drop(reading);
        let (failure, end) = replay.join().expect("the replay does not panic");
        (failure, end, bytes)
    });
    StreamOutcome {
        summary: auditor.summary(),
        failure,
        bytes,
        end,
    }
}

/// The reading stage, on the calling thread.
struct Reading<'a> {
    reader: &'a mut dyn Read,
    decoder: Decoder,
    rx_tokens: Receiver<()>,
    tx_jobs: SyncSender<Batch>,
    tx_done: SyncSender<(u64, Done)>,
    limits: Limits,
    /// Batches sent so far.
    batches: u64,
    batch: Vec<CertifiedBlock>,
    batch_transfers: usize,
    bytes: u64,
}

/// The replay stopped: nothing more needs reading.
struct Stopped;

impl Reading<'_> {
    /// Reads to the end or the first failure, and sends the end behind the batches.
    fn run(&mut self) {
        let Ok(end) = self.read_all() else {
            return;
        };
        // A send fails only when the replay has stopped, which then needs no end.
        let _ = self.tx_done.send((self.batches, Done::End(end)));
    }
    fn read_all(&mut self) -> Result<Result<LogEnd, StreamFailure>, Stopped> {
        let mut chunk = vec![0u8; self.limits.chunk_bytes];
        loop {
            let read = match read_chunk(self.reader, &mut chunk) {
                Ok(read) => read,
                Err(error) => {
                    self.send_batch()?;
                    return Ok(Err(StreamFailure::Read(error)));
                }
            };
            if read == 0 {
                break;
            }
            self.bytes += read as u64;
            self.decoder.push(&chunk[..read]);
            if let Err(error) = self.drain()? {
                self.send_batch()?;
                return Ok(Err(StreamFailure::Log(error)));
            }
        }
        // The blocks still waiting come before any complaint about how the log ends.
        self.send_batch()?;
        Ok(self.decoder.finish().map_err(StreamFailure::Log))
    }

    /// Takes every complete item out of the decoder, sending full batches on the way.
    fn drain(&mut self) -> Result<Result<(), LogError>, Stopped> {
        loop {
            let item = match self.decoder.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(Ok(())),
                Err(error) => return Ok(Err(error)),
            };
            if let LogItem::Block(certified) = item {
                self.batch_transfers += certified.block.transfers.len();
                self.batch.push(*certified);
                if self.batch_transfers >= self.limits.batch_transfers
                    || self.batch.len() >= self.limits.batch_blocks
                {
                    self.send_batch()?;
                }
            }
        }
    }

    /// Sends the waiting blocks to the workers, once the replay has room for them.
    fn send_batch(&mut self) -> Result<(), Stopped> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.rx_tokens.recv().map_err(|_| Stopped)?;
        let batch = Batch {
            number: self.batches,
            blocks: std::mem::take(&mut self.batch),
            bytes: self.bytes,
        };
        self.batch_transfers = 0;
        self.tx_jobs.send(batch).map_err(|_| Stopped)?;
        self.batches += 1;
        Ok(())
    }
}

fn read_chunk(reader: &mut dyn Read, chunk: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(chunk) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A worker: prepares batches until the reader closes the queue or the replay stops.
fn prepare(
    rx_jobs: &Mutex<Receiver<Batch>>,
    tx_done: &SyncSender<(u64, Done)>,
    network_id: &Hash,
    validators: &ValidatorSet,
) {
    loop {
        // The lock is held only to take a batch, never while preparing one.
        let job = rx_jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .recv();
        let Ok(batch) = job else {
            return;
        };
        let blocks = prepare_blocks(batch.blocks, network_id, validators);
        let done = Done::Prepared {
            blocks,
            bytes: batch.bytes,
        };
        if tx_done.send((batch.number, done)).is_err() {
            return;
        }
    }
}

/// The replay: checks prepared blocks in stream order until the end or a failure. Returns
/// the first failure and, for a good log, its end record. Returning drops both channels,
/// which stops the reader and the workers.
fn replay(
    auditor: &mut Auditor,
    rx_done: Receiver<(u64, Done)>,
    tx_tokens: SyncSender<()>,
    progress: &Progress,
) -> (Option<StreamFailure>, Option<LogEnd>) {
    // Workers finish out of order; at most the batches in flight wait here.
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0;
    loop {
        let Some(done) = waiting.remove(&next) else {
            let (number, done) = rx_done
                .recv()
                .expect("the reader sends an end unless the replay stopped");
            waiting.insert(number, done);
            continue;
        };
        next += 1;
        match done {
            Done::Prepared { blocks, bytes } => {
                for prepared in &blocks {
                    if let Err(error) = auditor.check_prepared(prepared) {
                        return (Some(StreamFailure::Audit(error)), None);
                    }
                }
                progress.update(bytes, auditor.next_height() - 1);
                // The reader may be gone already, with nothing more to send.
                let _ = tx_tokens.send(());
            }
            Done::End(Err(failure)) => return (Some(failure), None),
            Done::End(Ok(end)) => {
                return match auditor.finish() {
                    Ok(_) => (None, Some(end)),
                    Err(error) => (Some(StreamFailure::Audit(error)), None),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::block::BlockContext;
    use protocol::chain_log::{self, LogHeader};
    use protocol::consensus::message::precommit_signing_bytes;
    use protocol::consensus::{CommitCertificate, CommitSignature};
    use protocol::genesis::Allocation;
    use protocol::{Decimals, Genesis, Ledger, SecretKey, SignedTransfer, Transfer, Validator};

    use super::*;

    fn validator_keys() -> Vec<SecretKey> {
        (1..=4).map(|i| SecretKey::from_seed(&[i; 32])).collect()
    }

    fn wallet(i: u64) -> SecretKey {
        SecretKey::from_seed(&[40 + i as u8; 32])
    }

    fn genesis() -> Genesis {
        let validators = (validator_keys().iter().zip(["a", "b", "c", "d"]))
            .map(|(key, name)| Validator {
                name: name.into(),
                key: key.public_key(),
            })
            .collect();
        Genesis {
            network: "tally-stream-test".into(),
            decimals: Decimals::DEFAULT,
            min_fee: 1,
            fee_account: SecretKey::from_seed(&[99; 32]).public_key(),
            max_supply: 1_000_000,
            max_block_transfers: 50,
            max_block_bytes: 100_000,
            validators,
            allocations: (0..3)
                .map(|i| Allocation {
                    account: wallet(i).public_key(),
                    balance: 100_000,
                })
                .collect(),
        }
    }

    fn certify(genesis: &Genesis, block: protocol::Block) -> CertifiedBlock {
        let height = block.header.height;
        let block_hash = block.hash();
        let bytes = precommit_signing_bytes(&genesis.network_id(), height, 0, Some(block_hash));
        let signatures = validator_keys()[..3]
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_hash,
            signatures,
        };
        CertifiedBlock { block, certificate }
    }

    /// A chain of `blocks` blocks of 0 to 3 transfers among three wallets.
    fn chain(genesis: &Genesis, blocks: u64) -> Vec<CertifiedBlock> {
        let network = genesis.network_id();
        let mut ledger = Ledger::from_genesis(genesis);
        let mut sequences = [0u64; 3];
        let mut chain: Vec<CertifiedBlock> = Vec::new();
        for height in 1..=blocks {
            let transfers: Vec<_> = (0..height % 4)
                .map(|k| {
                    let (from, to) = ((height + k) % 3, (height + k + 1) % 3);
                    sequences[from as usize] += 1;
                    let body = Transfer::new(
                        network,
                        wallet(from).public_key(),
                        wallet(to).public_key(),
                        10 + k,
                        1,
                        sequences[from as usize],
                        "",
                    );
                    let signed = SignedTransfer::sign(body, &wallet(from));
                    signed.into_verified().expect("honest signature")
                })
                .collect();
            let parent = chain.last().map(|c| &c.block.header);
            let proposer = validator_keys()[0].public_key();
            let context = BlockContext::after(parent, proposer, 1_000 * height);
            let built = protocol::build_block(&ledger, genesis, context, transfers);
            ledger = built.ledger;
            chain.push(certify(genesis, built.block));
        }
        chain
    }

    fn log(genesis: &Genesis, blocks: &[CertifiedBlock]) -> Vec<u8> {
        let header = LogHeader {
            network_id: genesis.network_id(),
            first_height: 1,
        };
        chain_log::encode_log(header, blocks)
    }

    /// A source that fails after giving `good` bytes.
    struct Failing {
        bytes: Vec<u8>,
        good: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.good).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            self.good -= n;
            Ok(n)
        }
    }

    /// The verdict, the failure's text and the summary, as one comparable value; the bytes
    /// read only for a good log, as after a failure they depend on how far ahead the
    /// reading had got.
    type Verdict = (Option<String>, AuditSummary, Option<LogEnd>, Option<u64>);

    fn verdict(outcome: StreamOutcome) -> Verdict {
        let failure = outcome.failure.map(|failure| match failure {
            StreamFailure::Audit(error) => format!("audit: {error}"),
            StreamFailure::Log(error) => format!("log: {error}"),
            StreamFailure::Read(error) => format!("read: {error}"),
        });
        let bytes = failure.is_none().then_some(outcome.bytes);
        (failure, outcome.summary, outcome.end, bytes)
    }

    /// The reference: one block at a time on this thread, each checked as soon as it is
    /// decoded, stopping at the first failure.
    fn serial(genesis: &Genesis, source: &mut dyn Read, limits: Limits) -> Verdict {
        let mut auditor = Auditor::new(genesis).expect("valid genesis");
        let mut decoder = Decoder::new(Some(genesis.network_id()), genesis.max_block_bytes);
        let mut chunk = vec![0u8; limits.chunk_bytes];
        let mut bytes = 0;
        let failure = 'read: loop {
            let read = match source.read(&mut chunk) {
                Ok(0) => break 'read None,
                Ok(read) => read,
                Err(error) => break 'read Some(StreamFailure::Read(error)),
            };
            bytes += read as u64;
            decoder.push(&chunk[..read]);
            loop {
                match decoder.next_item() {
                    Ok(None) => break,
                    Ok(Some(LogItem::Block(certified))) => {
                        if let Err(error) = auditor.check_verifying(&certified) {
                            break 'read Some(StreamFailure::Audit(error));
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(error) => break 'read Some(StreamFailure::Log(error)),
                }
            }
        };
        let failure = failure.or_else(|| decoder.finish().err().map(StreamFailure::Log));
        let failure = failure.or_else(|| auditor.finish().err().map(StreamFailure::Audit));
        let end = failure.is_none().then(|| decoder.finish().expect("ended"));
        verdict(StreamOutcome {
            summary: auditor.summary(),
            failure,
            bytes,
            end,
        })
    }

    fn pipelined(
        genesis: &Genesis,
        source: &mut dyn Read,
        limits: Limits,
        workers: usize,
    ) -> Verdict {
        let mut auditor = Auditor::new(genesis).expect("valid genesis");
        let progress = Progress::new(None, "test");
        verdict(audit_with(source, &mut auditor, &progress, limits, workers))
    }

    /// Every way of cutting the stream gives the serial verdict.
    fn assert_same(genesis: &Genesis, bytes: &[u8], good: Option<usize>) -> Verdict {
        let source = || -> Box<dyn Read> {
            match good {
                Some(good) => Box::new(Failing {
                    bytes: bytes.to_vec(),
                    good,
                }),
                None => Box::new(bytes),
            }
        };
        let cuts = [
            LIMITS,
            Limits {
                chunk_bytes: 97,
                batch_transfers: 3,
                batch_blocks: 2,
            },
            Limits {
                chunk_bytes: 4096,
                batch_transfers: 1,
                batch_blocks: 1,
            },
        ];
        let mut reference = None;
        for limits in cuts {
            let expected = serial(genesis, &mut source(), limits);
            for workers in [1, 2, 3] {
                let got = pipelined(genesis, &mut source(), limits, workers);
                assert_eq!(got, expected, "{workers} workers");
            }
            reference.get_or_insert(expected);
        }
        reference.expect("at least one way")
    }

    #[test]
    fn a_good_log_gives_the_serial_verdict() {
        let genesis = genesis();
        let blocks = chain(&genesis, 23);
        let (failure, summary, end, _) = assert_same(&genesis, &log(&genesis, &blocks), None);
        assert_eq!(failure, None);
        assert_eq!(summary.height, 23);
        assert_eq!(end.map(|end| end.blocks), Some(23));
    }

    #[test]
    fn tampered_logs_give_the_serial_verdict_at_the_same_height() {
        let genesis = genesis();
        let blocks = chain(&genesis, 23);

        // A transfer changed after certification: its block's transfers root breaks.
        let mut edited = blocks.clone();
        edited[9].block.transfers[0].transfer.amount += 1;
        let (failure, summary, ..) = assert_same(&genesis, &log(&genesis, &edited), None);
        assert!(
            failure
                .expect("fails")
                .starts_with("audit: height 10: hash mismatch")
        );
        assert_eq!(summary.height, 9);

        // A forged signature in a block its validators certified anyway.
        let mut forged = blocks.clone();
        let block = &mut forged[13].block;
        block.transfers[1].signature.0[7] ^= 1;
        block.header.transfers_root = protocol::merkle::transfers_root(&block.transfers);
        forged[13] = certify(&genesis, forged[13].block.clone());
        let (failure, ..) = assert_same(&genesis, &log(&genesis, &forged[..15]), None);
        assert!(
            failure
                .expect("fails")
                .contains("height 14: bad signature: transfer 1")
        );

        // A bad block before a record that does not decode: the bad block is reported.
        let mut bytes = log(&genesis, &edited);
        let last_record = log(&genesis, &edited[..22]).len() - chain_log::END_BYTES;
        bytes[last_record] = b'X';
        let (failure, ..) = assert_same(&genesis, &bytes, None);
        assert!(failure.expect("fails").starts_with("audit: height 10:"));
        let mut bytes = log(&genesis, &blocks);
        bytes[last_record] = b'X';
        let (failure, summary, ..) = assert_same(&genesis, &bytes, None);
        assert!(
            failure
                .expect("fails")
                .starts_with("log: height 23: unknown record tag")
        );
        assert_eq!(summary.height, 22);

        // A record that does not decode, after good blocks: they are checked first.
        let good = log(&genesis, &blocks);
        let mut bytes = good.clone();
        let tag = chain_log::HEADER_BYTES;
        bytes[tag] = b'X';
        let (failure, summary, ..) = assert_same(&genesis, &bytes, None);
        assert!(
            failure
                .expect("fails")
                .starts_with("log: height 1: unknown record tag")
        );
        assert_eq!(summary.blocks, 0);

        // Cut short, padded, and a source that fails part way.
        let (failure, summary, ..) = assert_same(&genesis, &good[..good.len() - 1], None);
        assert!(
            failure
                .expect("fails")
                .starts_with("log: chain log is truncated")
        );
        assert_eq!(summary.height, 23);
        let mut padded = good.clone();
        padded.extend_from_slice(b"extra");
        let (failure, ..) = assert_same(&genesis, &padded, None);
        assert!(failure.expect("fails").contains("after the end record"));
        let (failure, summary, ..) = assert_same(&genesis, &good, Some(good.len() / 2));
        assert_eq!(failure.as_deref(), Some("read: connection reset"));
        assert!(summary.height > 0 && summary.height < 23);
    }
}
