//! Block sync: a node that is behind fetches committed blocks with their certificates.
//!
//! Every [`POLL_INTERVAL`] (or sooner, when gossip shows a peer ahead), the node asks its
//! peers for their head. From a peer that is ahead it fetches ranges of blocks, checks each
//! block's certificate against the genesis validators and against the block's hash here, off
//! the core, and hands the block to the core, which checks the hash chain and the ledger rules
//! before the consensus machine commits it. A peer that serves a bad block is penalised and
//! the node carries on with the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use protocol::Block;
use protocol::Hash;
use protocol::consensus::{CommitCertificate, ConsensusValue, ValidatorSet};
use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::ChainBlock;
use crate::core::{CoreInput, SharedStatus};
use crate::network::{
    Command, MAX_RANGE_BLOCKS, NetworkHandle, ServedBlock, SyncRequest, SyncResponse,
};

/// How often peers are asked for their head when nothing prompts it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1000);

/// The sync task's inputs.
pub struct Sync {
    /// The network id.
    pub network_id: Hash,
    /// The genesis validators.
    pub validators: Arc<ValidatorSet>,
    /// The network.
    pub network: NetworkHandle,
    /// The core's input channel.
    pub core: mpsc::Sender<CoreInput>,
    /// The node's status.
    pub status: SharedStatus,
    /// Nudges from gossip: a peer is ahead.
    pub behind: mpsc::Receiver<()>,
}

/// Why a served block was refused: the peer that served it is at fault.
#[derive(Debug, thiserror::Error)]
enum BadBlock {
    #[error("block does not decode: {0}")]
    Block(String),
    #[error("certificate missing or does not decode")]
    Certificate,
    #[error("certificate is for height {certified} and block {block_hash}, not this block")]
    Mismatch { certified: u64, block_hash: Hash },
    #[error("certificate does not verify: {0}")]
    Unverified(String),
    #[error("core refused the block: {0}")]
    Refused(String),
}

impl Sync {
    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut turn = 0usize;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                Some(()) = self.behind.recv() => {}
            }

            let peers = self.network.peers.borrow().clone();
            if peers.is_empty() {
                continue;
            }
            // Start with a different peer each time, so one slow or lying peer cannot stall us.
            turn = turn.wrapping_add(1);
            for offset in 0..peers.len() {
                let peer = peers[(turn + offset) % peers.len()];
                match self.catch_up_from(peer).await {
                    Ok(()) => break,
                    Err(problem) => tracing::debug!(%peer, %problem, "sync from peer failed"),
                }
            }
        }
    }

    fn height(&self) -> u64 {
        let status = self
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status.height.parse().unwrap_or(0)
    }

    /// Records whether blocks are being fetched, keeping when that started so the API can
    /// tell a long catch-up from fetching the one block a faster peer just committed.
    fn set_syncing(&self, syncing: bool) {
        let mut status = self
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status.syncing_since = match (syncing, status.syncing_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, started) => started,
        };
    }

    /// Fetches and applies blocks from `peer` until we reach its head.
    async fn catch_up_from(&mut self, peer: PeerId) -> Result<(), String> {
        let head = match self.network.request(peer, SyncRequest::Head).await? {
            SyncResponse::Head(head) => head,
            _ => return Err("answered head with something else".into()),
        };

        while self.height() < head {
            self.set_syncing(true);
            let from = self.height() + 1;
            let count = (head - self.height()).min(u64::from(MAX_RANGE_BLOCKS)) as u32;
            let blocks = match self
                .network
                .request(peer, SyncRequest::Range { from, count })
                .await?
            {
                SyncResponse::Blocks(blocks) if !blocks.is_empty() => blocks,
                _ => return Err(format!("peer served no blocks from {from}")),
            };

            for served in blocks {
                if let Err(bad) = self.apply(served).await {
                    tracing::warn!(%peer, %bad, "peer served a bad block");
                    self.network.send(Command::Penalise { peer }).await;
                    return Err(bad.to_string());
                }
            }
        }
        self.set_syncing(false);
        Ok(())
    }

    async fn apply(&self, served: ServedBlock) -> Result<(), BadBlock> {
        let (block, certificate) = self.check(served).await?;
        let (reply, answer) = oneshot::channel();
        let input = CoreInput::Synced {
            block: Box::new(block),
            certificate,
            reply,
        };
        if self.core.send(input).await.is_err() {
            return Ok(());
        }
        match answer.await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(reason)) => Err(BadBlock::Refused(reason)),
        }
    }

    /// Decodes a served block and verifies its certificate, on the blocking pool.
    async fn check(
        &self,
        served: ServedBlock,
    ) -> Result<(ChainBlock, CommitCertificate), BadBlock> {
        let network_id = self.network_id;
        let validators = self.validators.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let block =
                Block::decode(&served.block).map_err(|error| BadBlock::Block(error.to_string()))?;
            let certificate = served
                .certificate
                .as_deref()
                .and_then(|bytes| CommitCertificate::from_bytes(bytes).ok())
                .ok_or(BadBlock::Certificate)?;

            let block = ChainBlock(block);
            if certificate.height != block.0.header.height || certificate.block_hash != block.hash()
            {
                return Err(BadBlock::Mismatch {
                    certified: certificate.height,
                    block_hash: certificate.block_hash,
                });
            }
            certificate
                .verify(&network_id, &validators)
                .map_err(|error| BadBlock::Unverified(error.to_string()))?;
            Ok((block, certificate))
        })
        .await;
        checked.unwrap_or_else(|_| Err(BadBlock::Refused("verification task failed".into())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use protocol::consensus::CommitSignature;
    use protocol::consensus::message::precommit_signing_bytes;
    use protocol::{BlockHeader, SecretKey};

    use super::*;
    use crate::core::StatusSnapshot;

    const NETWORK: Hash = Hash([6; 32]);

    /// Block 1 and its certificate, signed by the only validator.
    fn certified(key: &SecretKey) -> ServedBlock {
        let header = BlockHeader {
            version: 1,
            network_id: NETWORK,
            height: 1,
            parent: Hash::ZERO,
            proposer: key.public_key(),
            timestamp_ms: 1_000,
            transfers_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        let block = ChainBlock(Block {
            header,
            transfers: Vec::new(),
        });
        let bytes = precommit_signing_bytes(&NETWORK, 1, 0, Some(block.hash()));
        let certificate = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: block.hash(),
            signatures: vec![CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            }],
        };
        ServedBlock {
            block: block.0.encode(),
            certificate: Some(certificate.to_bytes()),
        }
    }

    #[tokio::test]
    async fn a_peer_serving_a_bad_certificate_is_penalised_and_another_peer_serves() {
        let key = SecretKey::from_seed(&[1; 32]);
        let validators = ValidatorSet::new(vec![key.public_key()]).unwrap();
        let good = certified(&key);
        let mut forged = good.clone();
        let certificate = forged.certificate.as_mut().unwrap();
        let last = certificate.len() - 1;
        certificate[last - 10] ^= 1;

        // Sync starts with the second peer listed: the liar.
        let (honest, liar) = (PeerId::random(), PeerId::random());
        let (commands, mut network) = mpsc::channel(16);
        let (_peers_sender, peers) = watch::channel(vec![honest, liar]);
        let (core, mut core_inputs) = mpsc::channel(16);
        let status = StatusSnapshot {
            network_id: NETWORK,
            role: "full",
            address: key.public_key(),
            height: "0".into(),
            block_hash: Hash::ZERO,
            state_root: Hash::ZERO,
            round: 0,
            mempool_size: 0,
            peers: 2,
            syncing_since: None,
        };
        let status = Arc::new(RwLock::new(status));
        let (_behind_sender, behind) = mpsc::channel(1);
        let sync = Sync {
            network_id: NETWORK,
            validators: Arc::new(validators),
            network: NetworkHandle {
                commands,
                peers,
                local_peer_id: PeerId::random(),
            },
            core,
            status: status.clone(),
            behind,
        };
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(sync.run(shutdown));

        let mut asked = Vec::new();
        let mut penalised = Vec::new();
        let applied = loop {
            tokio::select! {
                Some(command) = network.recv() => match command {
                    Command::Request { peer, request, reply } => {
                        asked.push((peer, request.clone()));
                        let response = match request {
                            SyncRequest::Head => SyncResponse::Head(1),
                            _ if peer == liar => SyncResponse::Blocks(vec![forged.clone()]),
                            _ => SyncResponse::Blocks(vec![good.clone()]),
                        };
                        reply.send(Ok(response)).unwrap();
                    }
                    Command::Penalise { peer } => penalised.push(peer),
                    _ => panic!("unexpected command"),
                },
                Some(input) = core_inputs.recv() => {
                    let CoreInput::Synced { block, reply, .. } = input else {
                        panic!("unexpected core input");
                    };
                    status.write().unwrap().height = "1".into();
                    reply.send(Ok(())).unwrap();
                    break block;
                }
            }
        };
        stop.send(true).unwrap();
        task.await.unwrap();

        assert_eq!(applied.0.encode(), good.block);
        assert_eq!(penalised, vec![liar]);
        let range = SyncRequest::Range { from: 1, count: 1 };
        assert_eq!(
            asked,
            vec![
                (liar, SyncRequest::Head),
                (liar, range.clone()),
                (honest, SyncRequest::Head),
                (honest, range),
            ]
        );
    }
}
