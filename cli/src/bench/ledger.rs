//! The ledger alone, in one process: what one node spends per committed block besides
//! consensus and networking, on one core.
//!
//! Each block of 1,000 transfers goes through the node's own steps, each timed: verify the
//! signatures as one batch (`protocol::batch`), apply them to the ledger and compute the
//! state root (`Ledger::preview_block_with_signatures`), build the header and encode the
//! block, then commit it with its certificate to the node's real storage
//! (`tally_node::storage`, one atomic batch and one flush, written by the node's own
//! `chain::commit_write`). The certificate's precommit signatures are made outside the
//! timing: in a federation they are the other validators' work.
//!
//! The same writes also go to a second database without the transfer and history indexes,
//! to price those indexes separately, in time and in bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::batch::verify_batch;
use protocol::block::BLOCK_VERSION;
use protocol::consensus::message::precommit_signing_bytes;
use protocol::consensus::{CommitCertificate, CommitSignature, ValidatorSet};
use protocol::merkle::transfers_root;
use protocol::{Block, BlockHeader, Genesis, Hash, Ledger, SecretKey, SignedTransfer};
use serde::Serialize;
use tally_node::chain::commit_write;
use tally_node::config::Config;
use tally_node::storage::Storage;

use super::disk;
use super::fixtures::{self, Accounts, Planned};
use super::stats;

/// What the ledger-alone run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerFigures {
    /// Blocks committed.
    pub blocks: u64,
    /// Transfers committed.
    pub transfers: u64,
    /// Transfers a second through verify, apply and commit (with indexes), from the median
    /// block's time: blocks slowed by other work on a shared machine do not count.
    pub transfers_per_second: f64,
    /// The same from the total time of all blocks.
    pub transfers_per_second_overall: f64,
    /// Seconds spent verifying signatures (one batch per block, one core).
    pub verify_seconds: f64,
    /// Seconds spent applying transfers and computing state roots.
    pub apply_seconds: f64,
    /// Seconds spent building headers (transfers root) and encoding blocks.
    pub build_seconds: f64,
    /// Seconds spent in the storage commit, indexes included (batch and flush).
    pub commit_seconds: f64,
    /// Seconds the same commits took without the transfer and history indexes.
    pub commit_seconds_without_indexes: f64,
    /// Median and 99th percentile of one block's commit, milliseconds.
    pub commit_ms_p50: f64,
    /// See `commit_ms_p50`.
    pub commit_ms_p99: f64,
    /// Database bytes on disk after the last flush, indexes included.
    pub disk_bytes: u64,
    /// The same without the indexes.
    pub disk_bytes_without_indexes: u64,
    /// `disk_bytes` per committed transfer.
    pub disk_bytes_per_transfer: f64,
    /// `disk_bytes_without_indexes` per committed transfer.
    pub disk_bytes_per_transfer_without_indexes: f64,
}

/// Where each block goes: the quorum that certifies it and the two databases.
struct Sinks<'a> {
    quorum: &'a [SecretKey],
    full: &'a Storage,
    bare: &'a Storage,
}

/// Time spent per step, summed over blocks.
#[derive(Default)]
struct Steps {
    verify: Duration,
    apply: Duration,
    build: Duration,
    commit: Duration,
    commit_bare: Duration,
    commit_ms: Vec<f64>,
    block_seconds: Vec<f64>,
}

/// Runs `blocks` blocks of [`fixtures::BLOCK_TRANSFERS_MAX`] transfers into two fresh
/// databases under `dir`.
pub fn run(dir: &Path, accounts: &Accounts, blocks: u64) -> anyhow::Result<LedgerFigures> {
    let validator_keys: Vec<SecretKey> = (0..4)
        .map(|index| fixtures::key("validator", index))
        .collect();
    let validator_public: Vec<_> = validator_keys.iter().map(SecretKey::public_key).collect();
    let genesis = fixtures::genesis(&validator_public, accounts);
    let validators = ValidatorSet::new(validator_public).context("bench validators")?;
    let quorum = &validator_keys[..validators.quorum()];

    let per_block = fixtures::BLOCK_TRANSFERS_MAX as usize;
    let mut next_sequence = vec![Some(1); accounts.len()];
    let count = per_block * usize::try_from(blocks).context("block count")?;
    let planned = fixtures::plan(genesis.network_id(), accounts, &mut next_sequence, count);

    let cache_bytes = Config::default().storage.cache_bytes;
    let full_dir = dir.join("ledger-db");
    let bare_dir = dir.join("ledger-db-without-indexes");
    let full = Storage::open(&full_dir, cache_bytes).context("opening the ledger database")?;
    let bare = Storage::open(&bare_dir, cache_bytes).context("opening the second database")?;

    let mut ledger = Ledger::from_genesis(&genesis);
    let mut parent: Option<BlockHeader> = None;
    let mut steps = Steps::default();
    for chunk in planned.chunks(per_block) {
        let sinks = Sinks {
            quorum,
            full: &full,
            bare: &bare,
        };
        let block = commit_block(
            &genesis,
            &mut ledger,
            parent.as_ref(),
            chunk,
            &sinks,
            &mut steps,
        )?;
        parent = Some(block);
    }
    drop((full, bare));

    let transfers = planned.len() as u64;
    let disk_bytes = disk::size(&full_dir);
    let disk_bytes_without_indexes = disk::size(&bare_dir);
    let timed = steps.verify + steps.apply + steps.build + steps.commit;
    stats::sort(&mut steps.commit_ms);
    stats::sort(&mut steps.block_seconds);
    let median_block = stats::percentile(&steps.block_seconds, 50.0).unwrap_or(0.0);
    Ok(LedgerFigures {
        blocks,
        transfers,
        transfers_per_second: stats::ratio(per_block as f64, median_block),
        transfers_per_second_overall: stats::rate(transfers, timed.as_secs_f64()),
        verify_seconds: steps.verify.as_secs_f64(),
        apply_seconds: steps.apply.as_secs_f64(),
        build_seconds: steps.build.as_secs_f64(),
        commit_seconds: steps.commit.as_secs_f64(),
        commit_seconds_without_indexes: steps.commit_bare.as_secs_f64(),
        commit_ms_p50: stats::percentile(&steps.commit_ms, 50.0).unwrap_or(0.0),
        commit_ms_p99: stats::percentile(&steps.commit_ms, 99.0).unwrap_or(0.0),
        disk_bytes,
        disk_bytes_without_indexes,
        disk_bytes_per_transfer: stats::ratio(disk_bytes as f64, transfers as f64),
        disk_bytes_per_transfer_without_indexes: stats::ratio(
            disk_bytes_without_indexes as f64,
            transfers as f64,
        ),
    })
}

/// Verifies, applies, builds and commits one block; returns its header.
fn commit_block(
    genesis: &Genesis,
    ledger: &mut Ledger,
    parent: Option<&BlockHeader>,
    chunk: &[Planned],
    sinks: &Sinks<'_>,
    steps: &mut Steps,
) -> anyhow::Result<BlockHeader> {
    let Sinks { quorum, full, bare } = *sinks;
    let transfers: Vec<SignedTransfer> = chunk.iter().map(|p| p.signed.clone()).collect();
    let before = steps.verify + steps.apply + steps.build + steps.commit;

    // Verify every signature as one batch.
    let started = Instant::now();
    let refs: Vec<&SignedTransfer> = transfers.iter().collect();
    let signatures = verify_batch(&refs);
    steps.verify += started.elapsed();

    // Apply to a copy of the ledger and compute the state root.
    let started = Instant::now();
    let (next, effects) = ledger
        .preview_block_with_signatures(&transfers, &signatures)
        .map_err(|(index, rejection)| anyhow::anyhow!("bench transfer {index}: {rejection}"))?;
    steps.apply += started.elapsed();

    // Build the header and encode the block.
    let started = Instant::now();
    let header = BlockHeader {
        version: BLOCK_VERSION,
        network_id: genesis.network_id(),
        height: parent.map_or(1, |parent| parent.height + 1),
        parent: parent.map_or(Hash::ZERO, BlockHeader::hash),
        proposer: quorum[0].public_key(),
        timestamp_ms: parent.map_or(1, |parent| parent.timestamp_ms + 1),
        transfers_root: transfers_root(&transfers),
        state_root: effects.state_root,
    };
    let block = Block { header, transfers };
    let hash = block.hash();
    let block_bytes = block.encode();
    steps.build += started.elapsed();

    // The quorum's precommits: other validators' work, not timed.
    let certificate = certificate(genesis, &block, hash, quorum).to_bytes();

    // Commit with every index, then the same without the transfer and history indexes.
    let started = Instant::now();
    let write = commit_write(&block, hash, &block_bytes, &certificate, &effects);
    full.commit(&write).context("committing a block")?;
    let elapsed = started.elapsed();
    steps.commit += elapsed;
    steps.commit_ms.push(elapsed.as_secs_f64() * 1e3);

    let started = Instant::now();
    let mut write = commit_write(&block, hash, &block_bytes, &certificate, &effects);
    write.transfers.clear();
    bare.commit(&write)
        .context("committing a block without indexes")?;
    steps.commit_bare += started.elapsed();

    let after = steps.verify + steps.apply + steps.build + steps.commit;
    steps.block_seconds.push((after - before).as_secs_f64());
    *ledger = next;
    Ok(block.header)
}

/// A commit certificate for `block` signed by `quorum`, as the state machine would make it.
fn certificate(
    genesis: &Genesis,
    block: &Block,
    hash: Hash,
    quorum: &[SecretKey],
) -> CommitCertificate {
    let height = block.header.height;
    let bytes = precommit_signing_bytes(&genesis.network_id(), height, 0, Some(hash));
    CommitCertificate {
        height,
        round: 0,
        block_hash: hash,
        signatures: quorum
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            })
            .collect(),
    }
}
