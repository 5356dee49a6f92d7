//! Auditing a chain log as it streams in, with bounded memory.
//!
//! Bytes are read in chunks and pushed through the chain log decoder; decoded blocks wait
//! in a small batch until it is full, then their signatures are checked on all cores and
//! the auditor checks each block in order. Memory holds one chunk, one partial record and
//! one batch, whatever the chain's length.

use std::io::{self, Read};

use protocol::chain_log::{Decoder, LogEnd, LogError, LogItem};
use protocol::{AuditError, AuditSummary, Auditor, CertifiedBlock};

use crate::progress::Progress;
use crate::verify;

/// Bytes read from the source at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// A batch is checked once it holds this many transfers...
const BATCH_TRANSFERS_MAX: usize = 8192;

/// ...or this many blocks.
const BATCH_BLOCKS_MAX: usize = 256;

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

/// Reads the whole log from `reader` and audits it with `auditor`.
pub fn audit(reader: &mut dyn Read, auditor: &mut Auditor, progress: &Progress) -> StreamOutcome {
    let max_block_bytes = auditor.genesis().max_block_bytes;
    let mut run = Run {
        reader,
        decoder: Decoder::new(Some(auditor.network_id()), max_block_bytes),
        auditor,
        batch: Vec::new(),
        batch_transfers: 0,
        bytes: 0,
        progress,
    };
    let failure = run.read_all().err();
    let end = match failure {
        None => run.decoder.finish().ok(),
        Some(_) => None,
    };
    StreamOutcome {
        summary: run.auditor.summary(),
        failure,
        bytes: run.bytes,
        end,
    }
}

struct Run<'a> {
    reader: &'a mut dyn Read,
    decoder: Decoder,
    auditor: &'a mut Auditor,
    batch: Vec<CertifiedBlock>,
    batch_transfers: usize,
    bytes: u64,
    progress: &'a Progress,
}

impl Run<'_> {
    fn read_all(&mut self) -> Result<(), StreamFailure> {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        loop {
            let read = match self.read_chunk(&mut chunk) {
                Ok(read) => read,
                Err(error) => return Err(self.after_flush(StreamFailure::Read(error))),
            };
            if read == 0 {
                break;
            }
            self.bytes += read as u64;
            self.decoder.push(&chunk[..read]);
            self.drain()?;
        }

        // The blocks still waiting come before any complaint about how the log ends.
        self.flush()?;
        self.decoder.finish().map_err(StreamFailure::Log)?;
        self.auditor.finish().map_err(StreamFailure::Audit)?;
        Ok(())
    }

    fn read_chunk(&mut self, chunk: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(chunk) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Takes every complete item out of the decoder, checking full batches on the way.
    fn drain(&mut self) -> Result<(), StreamFailure> {
        loop {
            let item = match self.decoder.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(()),
                Err(error) => return Err(self.after_flush(StreamFailure::Log(error))),
            };
            if let LogItem::Block(certified) = item {
                self.batch_transfers += certified.block.transfers.len();
                self.batch.push(*certified);
                if self.batch_transfers >= BATCH_TRANSFERS_MAX
                    || self.batch.len() >= BATCH_BLOCKS_MAX
                {
                    self.flush()?;
                }
            }
        }
    }

    /// Checks the waiting blocks: signatures on all cores, then each block in order.
    fn flush(&mut self) -> Result<(), StreamFailure> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_transfers = 0;
        let network_id = self.auditor.network_id();
        let verdicts = verify::verdicts(&batch, &network_id, self.auditor.validators());
        for (certified, verdict) in batch.iter().zip(&verdicts) {
            self.auditor
                .check(certified, verdict)
                .map_err(StreamFailure::Audit)?;
        }
        let height = self.auditor.next_height() - 1;
        self.progress.update(self.bytes, height);
        Ok(())
    }

    /// A failure in the stream comes after the blocks already read: those are checked
    /// first, so that the first bad height is the one reported.
    fn after_flush(&mut self, failure: StreamFailure) -> StreamFailure {
        match self.flush() {
            Ok(()) => failure,
            Err(earlier) => earlier,
        }
    }
}
