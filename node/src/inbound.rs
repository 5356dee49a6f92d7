//! What peers send: gossip to validate and sync questions to answer.
//!
//! Verdicts on gossip follow one rule, so an honest node that lags is never punished:
//! `Reject` (which costs the forwarding peer score) only for bytes that do not decode or
//! signatures that do not verify, including a consensus message whose signer is not a
//! validator; `Ignore` for what is stale, too far ahead, or fails only because of state
//! (already known, bad sequence, unfunded); `Accept` otherwise. Signature checks run on
//! tokio's blocking pool, never on the swarm's task or the core's.

use std::sync::Arc;

use libp2p::gossipsub::MessageAcceptance;
use protocol::consensus::{SignedMessage, ValidatorSet};
use protocol::{Hash, VerifiedTransfer};
use tokio::sync::{mpsc, oneshot};

use crate::chain::{ChainBlock, TransferBatch};
use crate::core::{BATCH_MAX, CoreInput, SharedStatus};
use crate::datadir::{self, BoundAddresses};
use crate::network::{
    Command, Event, MAX_RANGE_BLOCKS, NetworkHandle, ServedBlock, SyncRequest, SyncResponse, Topic,
};
use crate::sigcache::SignatureCache;
use crate::storage::Storage;

/// How many heights ahead of ours a consensus message may be and still be passed on.
const HEIGHTS_AHEAD: u64 = 2;

/// Most gossip messages and sync requests handled at once. Beyond it the handler stops
/// reading network events, so a flood backs up into the network task's bounded channel
/// instead of into an unbounded number of tasks.
const CONCURRENT_MAX: usize = 256;

/// What the inbound handler needs.
#[derive(Clone)]
pub struct Inbound {
    /// The network id.
    pub network_id: Hash,
    /// The genesis validators.
    pub validators: Arc<ValidatorSet>,
    /// The core's input channel.
    pub core: mpsc::Sender<CoreInput>,
    /// The network.
    pub network: NetworkHandle,
    /// The database, to serve blocks.
    pub storage: Storage,
    /// The node's status (its height, for the stale/ahead window).
    pub status: SharedStatus,
    /// Signature verdicts.
    pub signatures: Arc<SignatureCache>,
    /// The data directory, for `addresses.json`.
    pub dir: std::path::PathBuf,
    /// What `addresses.json` says so far.
    pub addresses: Arc<std::sync::Mutex<BoundAddresses>>,
    /// Tells sync that a peer is ahead of us.
    pub behind: mpsc::Sender<()>,
}

impl Inbound {
    /// Handles network events until the network stops.
    pub async fn run(self, mut events: mpsc::Receiver<Event>) {
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_MAX));
        while let Some(event) = events.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            match event {
                Event::Gossip {
                    topic,
                    source,
                    message_id,
                    data,
                } => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let acceptance = match topic {
                            Topic::Transfers => this.judge_transfers(data).await,
                            Topic::Consensus => this.judge_consensus(data).await,
                        };
                        if acceptance == MessageAcceptance::Reject {
                            tracing::debug!(%source, ?topic, "rejected gossip");
                        }
                        let command = Command::Validation {
                            message_id,
                            source,
                            acceptance,
                        };
                        this.network.send(command).await;
                    });
                }
                Event::Request {
                    peer,
                    request,
                    channel,
                } => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let response = this.answer(request).await;
                        tracing::debug!(%peer, "answered sync request");
                        this.network
                            .send(Command::Respond { channel, response })
                            .await;
                    });
                }
                Event::Listening(address) => self.record_address(address.to_string()),
            }
        }
    }

    fn record_address(&self, address: String) {
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        addresses.p2p.push(address);
        if let Err(error) = datadir::write_addresses(&self.dir, &addresses) {
            tracing::error!(%error, "cannot write addresses.json");
        }
    }

    fn height(&self) -> u64 {
        let status = self
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status.height.parse().unwrap_or(0)
    }

    async fn judge_transfers(&self, data: Vec<u8>) -> MessageAcceptance {
        let Ok(decoded) = TransferBatch::decode(&data, BATCH_MAX) else {
            return MessageAcceptance::Reject;
        };

        let signatures = self.signatures.clone();
        let verified = tokio::task::spawn_blocking(move || {
            // The ones not seen before are verified as one batch.
            let pairs: Vec<(&[u8], &protocol::SignedTransfer)> = decoded
                .iter()
                .map(|(encoded, transfer)| (encoded.as_slice(), transfer))
                .collect();
            if signatures
                .check_transfers(&pairs)
                .iter()
                .any(Result::is_err)
            {
                return None;
            }
            let verified = decoded
                .into_iter()
                .map(|(_, transfer)| VerifiedTransfer::assume_verified(transfer))
                .collect::<Vec<_>>();
            Some(verified)
        })
        .await;
        let Ok(Some(transfers)) = verified else {
            return MessageAcceptance::Reject;
        };

        let (reply, answer) = oneshot::channel();
        if self
            .core
            .send(CoreInput::GossipTransfers { transfers, reply })
            .await
            .is_err()
        {
            return MessageAcceptance::Ignore;
        }
        match answer.await {
            Ok(true) => MessageAcceptance::Accept,
            _ => MessageAcceptance::Ignore,
        }
    }

    async fn judge_consensus(&self, data: Vec<u8>) -> MessageAcceptance {
        let Ok(message) = SignedMessage::<ChainBlock>::from_bytes(&data) else {
            return MessageAcceptance::Reject;
        };

        // The window is checked before the signature: stale or far-future messages are
        // ignored without spending a verification on them.
        let ours = self.height();
        let height = message.message.height();
        if height <= ours {
            return MessageAcceptance::Ignore;
        }
        if height > ours + HEIGHTS_AHEAD {
            let _ = self.behind.try_send(());
            return MessageAcceptance::Ignore;
        }

        let network_id = self.network_id;
        let validators = self.validators.clone();
        let verified =
            tokio::task::spawn_blocking(move || message.verify(&network_id, &validators)).await;
        let Ok(Ok(verified)) = verified else {
            return MessageAcceptance::Reject;
        };

        if self
            .core
            .send(CoreInput::Consensus(Box::new(verified)))
            .await
            .is_err()
        {
            return MessageAcceptance::Ignore;
        }
        if height > ours + 1 {
            let _ = self.behind.try_send(());
        }
        MessageAcceptance::Accept
    }

    async fn answer(&self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Head => {
                SyncResponse::Head(self.storage.last_height().ok().flatten().unwrap_or(0))
            }
            SyncRequest::Range { from, count } => {
                let mut blocks = Vec::new();
                let count = u64::from(count.min(MAX_RANGE_BLOCKS));
                for height in from..from.saturating_add(count) {
                    match self.committed(height) {
                        Some(block) => blocks.push(block),
                        None => break,
                    }
                }
                SyncResponse::Blocks(blocks)
            }
            // TODO: this node answers block-by-hash but never asks: the consensus machine takes a
            // proposal only with its proposer's signature, so a missed proposal is recovered
            // from the proposer's republishing on timeout, or from sync once committed.
            SyncRequest::BlockByHash(hash) => {
                if let Ok(Some(height)) = self.storage.height_of(&hash) {
                    return SyncResponse::Blocks(self.committed(height).into_iter().collect());
                }
                let (reply, answer) = oneshot::channel();
                let asked = self
                    .core
                    .send(CoreInput::ProposedBlock { hash, reply })
                    .await;
                let block = if asked.is_ok() {
                    answer.await.ok().flatten()
                } else {
                    None
                };
                SyncResponse::Blocks(block.into_iter().collect())
            }
        }
    }

    fn committed(&self, height: u64) -> Option<ServedBlock> {
        let block = self.storage.block(height).ok().flatten()?;
        let certificate = self.storage.certificate(height).ok().flatten()?;
        Some(ServedBlock {
            block,
            certificate: Some(certificate),
        })
    }
}
