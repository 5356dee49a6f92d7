//! The chain log: one self-describing byte stream of certified blocks, for export and audit.
//!
//! `GET /v1/log?from=H` serves it, `tally log export` writes it to a file and `tally audit`
//! reads it from either. The stream is a header, one record per block (the block's canonical
//! bytes and its commit certificate's canonical bytes, each with a length prefix), and an end
//! record. The end record counts the blocks, names the last block's hash and carries the
//! SHA-256 of every byte before it, so a stream cut at a record boundary (it has no end
//! record), padded (bytes after the end record) or altered in transit (the digest) never
//! passes as a complete log. `docs/log-format.md` gives the layout byte by byte.
//!
//! The [`Decoder`] is incremental and does no I/O: callers push byte chunks as they arrive
//! and pull items out, so a reader holds at most one record and one chunk in memory whatever
//! the length of the chain. Lengths are checked against limits before a record is buffered.
//! The decoder checks the format only; whether the blocks form a valid chain is the
//! auditor's question ([`crate::audit`]).

use sha2::{Digest, Sha256};

use crate::block::{Block, BlockDecodeError};
use crate::consensus::{CertificateDecodeError, CommitCertificate};
use crate::genesis::MAX_VALIDATORS;
use crate::hash::Hash;

/// The first 8 bytes of every chain log.
pub const MAGIC: [u8; 8] = *b"TALLYLOG";

/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// Bytes in the header: magic 8, version 2, network id 32, first height 8.
pub const HEADER_BYTES: usize = 8 + 2 + 32 + 8;

/// The tag byte of a block record (ASCII `B`).
pub const BLOCK_TAG: u8 = 0x42;

/// The tag byte of the end record (ASCII `E`).
pub const END_TAG: u8 = 0x45;

/// Bytes in the end record: tag 1, block count 8, last block hash 32, stream digest 32.
pub const END_BYTES: usize = 1 + 8 + 32 + 32;

/// The largest canonical certificate: height varint 10, round varint 5, block hash 32,
/// signature count varint 2, and 96 bytes (key and signature) per validator.
pub const MAX_CERTIFICATE_BYTES: usize = 10 + 5 + 32 + 2 + MAX_VALIDATORS * 96;

/// The block size limit a decoder uses when the caller has no genesis at hand. Large enough
/// for any sensible genesis, small enough that a hostile length prefix cannot exhaust memory.
pub const DEFAULT_MAX_BLOCK_BYTES: u32 = 64 * 1024 * 1024;

/// A block and the commit certificate that finalised it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// A quorum of precommits for it, as stored beside it.
    pub certificate: CommitCertificate,
}

/// What the header of a log says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader {
    /// The network the blocks belong to.
    pub network_id: Hash,
    /// The height of the first block record; 1 for a whole chain.
    pub first_height: u64,
}

/// What the end record of a log says, once the decoder has checked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEnd {
    /// The number of block records.
    pub blocks: u64,
    /// The last block's hash; [`Hash::ZERO`] for a log without blocks.
    pub last_hash: Hash,
    /// SHA-256 of every byte of the stream before the end record.
    pub digest: Hash,
}

/// One thing read from a log, in stream order: the header, the blocks, then the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogItem {
    /// The header; always the first item.
    Header(LogHeader),
    /// One block record.
    Block(Box<CertifiedBlock>),
    /// The end record; always the last item.
    End(LogEnd),
}

/// Why bytes are not a well-formed chain log. `height` fields name the height the record
/// at fault would hold: the header's first height plus the number of records before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The stream does not start with [`MAGIC`].
    #[error("not a Tally chain log (bad magic bytes)")]
    BadMagic,
    /// The header names a format version this code does not read.
    #[error("chain log format version {0} is not supported (this reads version 1)")]
    UnsupportedVersion(u16),
    /// The header names another network than the caller expects.
    #[error("chain log is for network {got}, expected {expected}")]
    WrongNetwork {
        /// The caller's network id.
        expected: Hash,
        /// The header's network id.
        got: Hash,
    },
    /// The header's first height is 0; heights start at 1.
    #[error("chain log first height is 0; heights start at 1")]
    ZeroFirstHeight,
    /// A record starts with a tag that is neither a block nor the end.
    #[error("height {height}: unknown record tag 0x{tag:02x}")]
    UnknownRecord {
        /// The height a block record here would hold.
        height: u64,
        /// The tag found.
        tag: u8,
    },
    /// A block length prefix above the limit.
    #[error("height {height}: block record of {len} bytes, at most {max} allowed")]
    BlockTooLarge {
        /// The record's height.
        height: u64,
        /// The length prefix.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A certificate length prefix above [`MAX_CERTIFICATE_BYTES`].
    #[error("height {height}: certificate of {len} bytes, at most {max} allowed")]
    CertificateTooLarge {
        /// The record's height.
        height: u64,
        /// The length prefix.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// The block bytes are not a canonical block.
    #[error("height {height}: {error}")]
    BadBlock {
        /// The record's height.
        height: u64,
        /// Why the bytes are not a block.
        error: BlockDecodeError,
    },
    /// The certificate bytes are not a canonical certificate.
    #[error("height {height}: {error}")]
    BadCertificate {
        /// The record's height.
        height: u64,
        /// Why the bytes are not a certificate.
        error: CertificateDecodeError,
    },
    /// The end record counts another number of blocks than the stream holds.
    #[error("end record counts {claimed} blocks, the log holds {found}")]
    CountMismatch {
        /// The number in the end record.
        claimed: u64,
        /// The number of block records read.
        found: u64,
    },
    /// The end record names another last block than the stream's.
    #[error("end record names last block {claimed}, the log's last block is {found}")]
    LastHashMismatch {
        /// The hash in the end record.
        claimed: Hash,
        /// The hash of the last block read ([`Hash::ZERO`] if none).
        found: Hash,
    },
    /// The end record's digest is not the SHA-256 of the bytes before it.
    #[error("end record digest {claimed} does not match the log's bytes ({computed})")]
    DigestMismatch {
        /// The digest in the end record.
        claimed: Hash,
        /// The digest of the bytes read.
        computed: Hash,
    },
    /// The stream stopped inside the header.
    #[error("chain log is truncated inside its header ({got} of {HEADER_BYTES} bytes)")]
    TruncatedHeader {
        /// The bytes of header received.
        got: usize,
    },
    /// The stream stopped before its end record: the log is incomplete.
    #[error(
        "chain log is truncated: it stops after {blocks} complete blocks, without its end record"
    )]
    Truncated {
        /// Complete block records read.
        blocks: u64,
        /// Bytes of an incomplete record after them.
        partial_bytes: usize,
    },
    /// Bytes follow the end record.
    #[error("{0} bytes after the end record of the chain log")]
    TrailingBytes(usize),
}

/// Writes a chain log piece by piece, keeping the running count, last hash and digest that
/// the end record needs.
pub struct Encoder {
    hasher: Sha256,
    blocks: u64,
    last_hash: Hash,
}

impl Encoder {
    /// Starts a log; returns the encoder and the header bytes to write first.
    pub fn start(header: LogHeader) -> (Encoder, Vec<u8>) {
        let mut bytes = Vec::with_capacity(HEADER_BYTES);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        bytes.extend_from_slice(header.network_id.as_bytes());
        bytes.extend_from_slice(&header.first_height.to_be_bytes());

        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        let encoder = Encoder {
            hasher,
            blocks: 0,
            last_hash: Hash::ZERO,
        };
        (encoder, bytes)
    }

    /// The record of one certified block.
    pub fn block(&mut self, certified: &CertifiedBlock) -> Vec<u8> {
        let block = certified.block.encode();
        let certificate = certified.certificate.to_bytes();
        self.raw_block(certified.block.hash(), &block, &certificate)
    }

    /// The record of a block already held as canonical bytes (as a node stores it), with its
    /// hash. The bytes are written as given: the caller vouches they are canonical.
    ///
    /// # Panics
    ///
    /// If either part is longer than `u32::MAX` bytes, which no valid block or certificate is.
    pub fn raw_block(&mut self, block_hash: Hash, block: &[u8], certificate: &[u8]) -> Vec<u8> {
        let block_len = u32::try_from(block.len()).expect("a block is under 4 GiB");
        let certificate_len = u32::try_from(certificate.len()).expect("a certificate is small");

        let mut bytes = Vec::with_capacity(1 + 4 + block.len() + 4 + certificate.len());
        bytes.push(BLOCK_TAG);
        bytes.extend_from_slice(&block_len.to_be_bytes());
        bytes.extend_from_slice(block);
        bytes.extend_from_slice(&certificate_len.to_be_bytes());
        bytes.extend_from_slice(certificate);

        self.hasher.update(&bytes);
        self.blocks += 1;
        self.last_hash = block_hash;
        bytes
    }

    /// The end record, which closes the log.
    pub fn finish(self) -> Vec<u8> {
        let digest = Hash(self.hasher.finalize().into());
        let mut bytes = Vec::with_capacity(END_BYTES);
        bytes.push(END_TAG);
        bytes.extend_from_slice(&self.blocks.to_be_bytes());
        bytes.extend_from_slice(self.last_hash.as_bytes());
        bytes.extend_from_slice(digest.as_bytes());
        bytes
    }
}

/// Encodes a whole log in memory; for tests and small chains (streams use [`Encoder`]).
pub fn encode_log(header: LogHeader, blocks: &[CertifiedBlock]) -> Vec<u8> {
    let (mut encoder, mut bytes) = Encoder::start(header);
    for certified in blocks {
        bytes.extend_from_slice(&encoder.block(certified));
    }
    bytes.extend_from_slice(&encoder.finish());
    bytes
}

/// Decodes a whole log held in memory, checking everything [`Decoder`] checks.
pub fn decode_log(
    bytes: &[u8],
    expected_network: Option<Hash>,
    max_block_bytes: u32,
) -> Result<(LogHeader, Vec<CertifiedBlock>, LogEnd), LogError> {
    let mut decoder = Decoder::new(expected_network, max_block_bytes);
    decoder.push(bytes);

    let mut header = None;
    let mut blocks = Vec::new();
    while let Some(item) = decoder.next_item()? {
        match item {
            LogItem::Header(found) => header = Some(found),
            LogItem::Block(certified) => blocks.push(*certified),
            LogItem::End(_) => {}
        }
    }
    let end = decoder.finish()?;
    let header = header.expect("a finished decoder has read its header");
    Ok((header, blocks, end))
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Header,
    Records,
    Ended(LogEnd),
}

/// An incremental chain log reader: [`push`](Decoder::push) bytes as they arrive, then call
/// [`next_item`](Decoder::next_item) until it answers `None`, and call
/// [`finish`](Decoder::finish) at the end of the input. After an error the stream is bad and
/// the decoder should be dropped.
pub struct Decoder {
    buffer: Vec<u8>,
    stage: Stage,
    expected_network: Option<Hash>,
    max_block_bytes: u32,
    first_height: u64,
    blocks: u64,
    last_hash: Hash,
    hasher: Sha256,
}

impl Decoder {
    /// A decoder that refuses a log for another network than `expected_network` (when
    /// given) and any block record longer than `max_block_bytes` (the genesis limit, or
    /// [`DEFAULT_MAX_BLOCK_BYTES`] without a genesis).
    pub fn new(expected_network: Option<Hash>, max_block_bytes: u32) -> Decoder {
        Decoder {
            buffer: Vec::new(),
            stage: Stage::Header,
            expected_network,
            max_block_bytes,
            first_height: 0,
            blocks: 0,
            last_hash: Hash::ZERO,
            hasher: Sha256::new(),
        }
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// Block records read so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// The height the next block record would hold (0 before the header is read).
    pub fn next_height(&self) -> u64 {
        self.first_height.saturating_add(self.blocks)
    }

    /// The next complete item, or `None` when more bytes are needed (or the log has ended).
    pub fn next_item(&mut self) -> Result<Option<LogItem>, LogError> {
        match self.stage {
            Stage::Header => self.read_header(),
            Stage::Records => self.read_record(),
            Stage::Ended(_) if self.buffer.is_empty() => Ok(None),
            Stage::Ended(_) => Err(LogError::TrailingBytes(self.buffer.len())),
        }
    }

    /// Declares the input finished: succeeds only if the end record was read and nothing
    /// followed it. Call [`next_item`](Decoder::next_item) until `None` first.
    pub fn finish(&self) -> Result<LogEnd, LogError> {
        match self.stage {
            Stage::Header => Err(LogError::TruncatedHeader {
                got: self.buffer.len(),
            }),
            Stage::Records => Err(LogError::Truncated {
                blocks: self.blocks,
                partial_bytes: self.buffer.len(),
            }),
            Stage::Ended(_) if !self.buffer.is_empty() => {
                Err(LogError::TrailingBytes(self.buffer.len()))
            }
            Stage::Ended(end) => Ok(end),
        }
    }

    fn read_header(&mut self) -> Result<Option<LogItem>, LogError> {
        // The magic is checked as soon as its bytes are in, so a wrong file fails at once.
        let magic_len = self.buffer.len().min(MAGIC.len());
        if self.buffer[..magic_len] != MAGIC[..magic_len] {
            return Err(LogError::BadMagic);
        }
        if self.buffer.len() < HEADER_BYTES {
            return Ok(None);
        }

        let bytes = &self.buffer[..HEADER_BYTES];
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(LogError::UnsupportedVersion(version));
        }
        let network_id = Hash(bytes[10..42].try_into().expect("32 bytes"));
        if let Some(expected) = self.expected_network.filter(|e| *e != network_id) {
            return Err(LogError::WrongNetwork {
                expected,
                got: network_id,
            });
        }
        let first_height = u64::from_be_bytes(bytes[42..50].try_into().expect("8 bytes"));
        if first_height == 0 {
            return Err(LogError::ZeroFirstHeight);
        }

        self.consume(HEADER_BYTES);
        self.first_height = first_height;
        self.stage = Stage::Records;
        let header = LogHeader {
            network_id,
            first_height,
        };
        Ok(Some(LogItem::Header(header)))
    }

    fn read_record(&mut self) -> Result<Option<LogItem>, LogError> {
        match self.buffer.first() {
            None => Ok(None),
            Some(&BLOCK_TAG) => self.read_block(),
            Some(&END_TAG) => self.read_end(),
            Some(&tag) => Err(LogError::UnknownRecord {
                height: self.next_height(),
                tag,
            }),
        }
    }

    fn read_block(&mut self) -> Result<Option<LogItem>, LogError> {
        let height = self.next_height();

        // Each length is checked against its limit before waiting for the bytes it
        // announces, so a hostile prefix cannot make the buffer grow.
        let Some(block_len) = read_u32(&self.buffer, 1) else {
            return Ok(None);
        };
        if block_len > self.max_block_bytes {
            let max = self.max_block_bytes;
            return Err(LogError::BlockTooLarge {
                height,
                len: block_len,
                max,
            });
        }
        let block_end = 5 + block_len as usize;
        let Some(certificate_len) = read_u32(&self.buffer, block_end) else {
            return Ok(None);
        };
        if certificate_len as usize > MAX_CERTIFICATE_BYTES {
            return Err(LogError::CertificateTooLarge {
                height,
                len: certificate_len,
                max: MAX_CERTIFICATE_BYTES,
            });
        }
        let record_end = block_end + 4 + certificate_len as usize;
        if self.buffer.len() < record_end {
            return Ok(None);
        }

        let block = Block::decode(&self.buffer[5..block_end])
            .map_err(|error| LogError::BadBlock { height, error })?;
        let certificate = CommitCertificate::from_bytes(&self.buffer[block_end + 4..record_end])
            .map_err(|error| LogError::BadCertificate { height, error })?;
        self.consume(record_end);
        self.blocks += 1;
        self.last_hash = block.hash();
        let certified = CertifiedBlock { block, certificate };
        Ok(Some(LogItem::Block(Box::new(certified))))
    }

    fn read_end(&mut self) -> Result<Option<LogItem>, LogError> {
        if self.buffer.len() < END_BYTES {
            return Ok(None);
        }

        let bytes = &self.buffer[..END_BYTES];
        let claimed_blocks = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let claimed_last = Hash(bytes[9..41].try_into().expect("32 bytes"));
        let claimed_digest = Hash(bytes[41..73].try_into().expect("32 bytes"));
        if claimed_blocks != self.blocks {
            return Err(LogError::CountMismatch {
                claimed: claimed_blocks,
                found: self.blocks,
            });
        }
        if claimed_last != self.last_hash {
            return Err(LogError::LastHashMismatch {
                claimed: claimed_last,
                found: self.last_hash,
            });
        }
        let computed = Hash(self.hasher.clone().finalize().into());
        if claimed_digest != computed {
            return Err(LogError::DigestMismatch {
                claimed: claimed_digest,
                computed,
            });
        }

        self.buffer.drain(..END_BYTES);
        let end = LogEnd {
            blocks: self.blocks,
            last_hash: self.last_hash,
            digest: computed,
        };
        self.stage = Stage::Ended(end);
        Ok(Some(LogItem::End(end)))
    }

    /// Hashes and drops the first `len` buffered bytes.
    fn consume(&mut self, len: usize) {
        self.hasher.update(&self.buffer[..len]);
        self.buffer.drain(..len);
    }
}

fn read_u32(buffer: &[u8], at: usize) -> Option<u32> {
    let bytes = buffer.get(at..at + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockContext, build_block};
    use crate::consensus::CommitSignature;
    use crate::genesis::tests::sample;
    use crate::keys::{SecretKey, Signature};
    use crate::ledger::Ledger;
    use crate::transfer::{SignedTransfer, Transfer};

    /// Three chained blocks with one transfer each, and certificates whose signatures are
    /// placeholders: the format does not look inside them.
    fn chain() -> (Hash, Vec<CertifiedBlock>) {
        let genesis = sample();
        let mut ledger = Ledger::from_genesis(&genesis);
        let network = ledger.network_id();
        let sender = SecretKey::from_seed(&[1; 32]);
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();

        let mut blocks: Vec<CertifiedBlock> = Vec::new();
        for sequence in 1..=3u64 {
            let body = Transfer::new(network, sender.public_key(), receiver, 5, 1, sequence, "");
            let signed = SignedTransfer::sign(body, &sender)
                .into_verified()
                .expect("signed");
            let parent = blocks.last().map(|c| &c.block.header);
            let proposer = genesis.validators[0].key;
            let context = BlockContext::after(parent, proposer, 1_000 * sequence);
            let built = build_block(&ledger, &genesis, context, [signed]);
            ledger = built.ledger;
            let certificate = CommitCertificate {
                height: sequence,
                round: 0,
                block_hash: built.block.hash(),
                signatures: vec![CommitSignature {
                    validator: proposer,
                    signature: Signature([sequence as u8; 64]),
                }],
            };
            blocks.push(CertifiedBlock {
                block: built.block,
                certificate,
            });
        }
        (network, blocks)
    }

    fn header(network_id: Hash) -> LogHeader {
        LogHeader {
            network_id,
            first_height: 1,
        }
    }

    fn decode(bytes: &[u8], network: Hash) -> Result<Vec<CertifiedBlock>, LogError> {
        decode_log(bytes, Some(network), DEFAULT_MAX_BLOCK_BYTES).map(|(_, blocks, _)| blocks)
    }

    #[test]
    fn round_trip_in_one_piece_and_byte_by_byte() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);
        assert_eq!(decode(&bytes, network), Ok(blocks.clone()));

        // Feeding one byte at a time must give exactly the same items.
        let mut decoder = Decoder::new(Some(network), DEFAULT_MAX_BLOCK_BYTES);
        let mut items = Vec::new();
        for byte in &bytes {
            decoder.push(std::slice::from_ref(byte));
            while let Some(item) = decoder.next_item().expect("valid log") {
                items.push(item);
            }
        }
        let end = decoder.finish().expect("complete log");
        assert_eq!(items.len(), 1 + blocks.len() + 1);
        assert_eq!(items[0], LogItem::Header(header(network)));
        assert_eq!(items[4], LogItem::End(end));
        assert_eq!(end.blocks, 3);
        assert_eq!(end.last_hash, blocks[2].block.hash());
        assert_eq!(end.digest, Hash::digest(&bytes[..bytes.len() - END_BYTES]));
    }

    #[test]
    fn an_empty_log_round_trips() {
        let network = Hash([9; 32]);
        let bytes = encode_log(header(network), &[]);
        assert_eq!(bytes.len(), HEADER_BYTES + END_BYTES);
        let (_, blocks, end) = decode_log(&bytes, None, 1_000).expect("valid");
        assert!(blocks.is_empty());
        assert_eq!(end.last_hash, Hash::ZERO);
    }

    #[test]
    fn the_documented_empty_log_is_reproduced() {
        let network: Hash = "ce5c5cb86b6c796f7b2d0a3da5a8022bddb0794599cfcc7329b3f1b2292f2a2d"
            .parse()
            .expect("hex");
        let bytes = encode_log(header(network), &[]);
        let expected = concat!(
            "54414c4c594c4f47",
            "0001",
            "ce5c5cb86b6c796f7b2d0a3da5a8022bddb0794599cfcc7329b3f1b2292f2a2d",
            "0000000000000001",
            "45",
            "0000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "6fa9b154f94c9548908c7b56e9b558862b5b79ad713515d9c87df5b6944f170c",
        );
        assert_eq!(hex::encode(&bytes), expected);
    }

    #[test]
    fn the_header_is_laid_out_as_documented() {
        let network = Hash([0xab; 32]);
        let bytes = encode_log(
            LogHeader {
                network_id: network,
                first_height: 258,
            },
            &[],
        );
        assert_eq!(&bytes[..8], b"TALLYLOG");
        assert_eq!(&bytes[8..10], &[0, 1]);
        assert_eq!(&bytes[10..42], &[0xab; 32]);
        assert_eq!(&bytes[42..50], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(bytes[50], END_TAG);
        assert_eq!(&bytes[51..59], &[0; 8]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut], network);
            match result {
                Err(LogError::TruncatedHeader { got }) => assert_eq!(got, cut),
                Err(LogError::Truncated { .. }) => assert!(cut >= HEADER_BYTES),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_log_cut_at_a_record_boundary_reports_the_blocks_it_holds() {
        let (network, blocks) = chain();
        let full = encode_log(header(network), &blocks);
        let two = encode_log(header(network), &blocks[..2]);
        let cut = &full[..two.len() - END_BYTES];
        assert_eq!(
            decode(cut, network),
            Err(LogError::Truncated {
                blocks: 2,
                partial_bytes: 0
            })
        );
    }

    #[test]
    fn trailing_bytes_are_refused_even_when_they_look_like_records() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);

        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(&padded, network), Err(LogError::TrailingBytes(1)));

        // A second end record is padding too.
        let mut doubled = bytes.clone();
        doubled.extend_from_slice(&bytes[bytes.len() - END_BYTES..]);
        assert_eq!(
            decode(&doubled, network),
            Err(LogError::TrailingBytes(END_BYTES))
        );
    }

    #[test]
    fn wrong_magic_version_network_and_first_height_are_refused() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);

        let mut magic = bytes.clone();
        magic[0] = b't';
        assert_eq!(decode(&magic, network), Err(LogError::BadMagic));
        // A wrong file fails on its first bytes, before a whole header arrives.
        assert_eq!(decode(b"{\"json\"", network), Err(LogError::BadMagic));

        let mut version = bytes.clone();
        version[9] = 2;
        assert_eq!(
            decode(&version, network),
            Err(LogError::UnsupportedVersion(2))
        );

        let other = Hash([1; 32]);
        assert_eq!(
            decode(&bytes, other),
            Err(LogError::WrongNetwork {
                expected: other,
                got: network
            })
        );

        let zero = encode_log(
            LogHeader {
                network_id: network,
                first_height: 0,
            },
            &[],
        );
        assert_eq!(decode(&zero, network), Err(LogError::ZeroFirstHeight));
    }

    #[test]
    fn an_end_record_that_does_not_match_the_records_is_refused() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);
        let end = bytes.len() - END_BYTES;

        let mut count = bytes.clone();
        count[end + 8] = 2;
        assert_eq!(
            decode(&count, network),
            Err(LogError::CountMismatch {
                claimed: 2,
                found: 3
            })
        );

        let mut last = bytes.clone();
        last[end + 9] ^= 1;
        assert!(matches!(
            decode(&last, network),
            Err(LogError::LastHashMismatch { .. })
        ));

        let mut digest = bytes.clone();
        digest[end + 41] ^= 1;
        assert!(matches!(
            decode(&digest, network),
            Err(LogError::DigestMismatch { .. })
        ));

        // Dropping the last block record and rewriting the count still fails on the hash.
        let two = encode_log(header(network), &blocks[..2]);
        let mut dropped = two[..two.len() - END_BYTES].to_vec();
        dropped.extend_from_slice(&bytes[end..]);
        dropped[two.len() - END_BYTES + 8] = 2;
        assert!(matches!(
            decode(&dropped, network),
            Err(LogError::LastHashMismatch { .. })
        ));
    }

    #[test]
    fn oversized_and_malformed_records_name_their_height() {
        let (network, blocks) = chain();
        let bytes = encode_log(header(network), &blocks);
        let block_len = blocks[0].block.encode().len() as u32;

        assert_eq!(
            decode_log(&bytes, None, block_len - 1).map(|_| ()),
            Err(LogError::BlockTooLarge {
                height: 1,
                len: block_len,
                max: block_len - 1
            })
        );

        // A bad tag where the second record starts.
        let second = HEADER_BYTES + 1 + 4 + block_len as usize + 4;
        let second = second + blocks[0].certificate.to_bytes().len();
        let mut tag = bytes.clone();
        tag[second] = 0x00;
        assert_eq!(
            decode(&tag, network),
            Err(LogError::UnknownRecord { height: 2, tag: 0 })
        );

        // The first block's version varint made over-long: not canonical.
        let mut block = bytes.clone();
        block[HEADER_BYTES + 5] = 0x81;
        assert!(matches!(
            decode(&block, network),
            Err(LogError::BadBlock { height: 1, .. })
        ));

        let mut huge = bytes.clone();
        let at = HEADER_BYTES + 5 + block_len as usize;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode(&huge, network),
            Err(LogError::CertificateTooLarge { height: 1, .. })
        ));
    }
}
