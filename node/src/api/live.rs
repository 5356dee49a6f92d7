//! [`NodeApi`] over the running node: sled reads through [`Storage`], mempool questions
//! through the core task's input channel, the status snapshot the core keeps current, and
//! the committed heads the core announces once each block is flushed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use protocol::chain_log::CertifiedBlock;
use protocol::consensus::CommitCertificate;
use protocol::{Block, Genesis, Hash, PublicKey, SignedTransfer, VerifiedTransfer};
use tokio::sync::{mpsc, oneshot, watch};

use super::backend::{
    AccountState, BackendError, Evidence, Location, NodeApi, NodeStatus, SubmitOutcome,
    TransferState,
};
use crate::core::{self, CoreInput, SharedStatus, TransferStatus};
use crate::evidence::{SharedEvidence, signed_bytes_hex, step_name};
use crate::mempool::FinalStatus;
use crate::sigcache::SignatureCache;
use crate::storage::{HistoryLink, Side, Storage, StorageError, TransferLocation};

/// How long the sync task must have been fetching blocks before the API calls the node
/// syncing. Under load a validator often fetches the one block a faster peer just committed;
/// refusing wallets for that blip would turn normal operation into 503s.
const SYNC_GRACE: Duration = Duration::from_secs(3);

/// Decoded blocks kept for readers of the newest heights. Every commit is read by the
/// metrics watcher and by each event stream; decoding a block checks every key in it (a
/// curve point decompression each), so decoding it once instead of once per reader matters.
/// Bounded: at most this many blocks, each at most the genesis `max_block_bytes` encoded.
const RECENT_BLOCKS_MAX: usize = 8;

/// The running node, as the API sees it.
pub struct LiveNode {
    genesis: Genesis,
    core: mpsc::Sender<CoreInput>,
    status: SharedStatus,
    storage: Storage,
    signatures: Arc<SignatureCache>,
    heads: watch::Receiver<u64>,
    evidence: SharedEvidence,
    /// The newest blocks read, decoded, newest last (see [`RECENT_BLOCKS_MAX`]).
    recent: Mutex<VecDeque<(u64, CertifiedBlock)>>,
}

impl LiveNode {
    /// Wraps the node's parts. `heads` carries each committed height, sent by the core only
    /// after the block is flushed, so whatever it wakes reads durable blocks.
    pub fn new(
        genesis: Genesis,
        core: mpsc::Sender<CoreInput>,
        status: SharedStatus,
        storage: Storage,
        signatures: Arc<SignatureCache>,
        evidence: SharedEvidence,
        heads: watch::Receiver<u64>,
    ) -> LiveNode {
        LiveNode {
            genesis,
            core,
            status,
            storage,
            signatures,
            heads,
            evidence,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_BLOCKS_MAX)),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, CertifiedBlock)>> {
        // The deque is consistent after any panic (a push or pop is all it ever sees).
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn ask<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<T>) -> CoreInput,
    ) -> Result<T, BackendError> {
        let (reply, answer) = oneshot::channel();
        self.core
            .send(input(reply))
            .await
            .map_err(|_| BackendError::ShuttingDown)?;
        answer.await.map_err(|_| BackendError::ShuttingDown)
    }

    /// The entry of `account`'s history at `location`: which side of that transfer it was.
    fn history_link(
        &self,
        account: &PublicKey,
        location: Location,
    ) -> Result<HistoryLink, BackendError> {
        let certified = self
            .block(location.height)?
            .ok_or(BackendError::NotInHistory)?;
        let transfer = certified
            .block
            .transfers
            .get(location.position as usize)
            .ok_or(BackendError::NotInHistory)?;
        let side = if transfer.transfer.sender == *account {
            Side::Sent
        } else if transfer.transfer.receiver == *account {
            Side::Received
        } else {
            return Err(BackendError::NotInHistory);
        };
        let location = TransferLocation {
            height: location.height,
            position: location.position,
        };
        Ok(HistoryLink { location, side })
    }
}

/// Whether the sync task, fetching blocks since `since`, has been at it for longer than
/// [`SYNC_GRACE`].
fn syncing(since: Option<Instant>) -> bool {
    since.is_some_and(|started| started.elapsed() > SYNC_GRACE)
}

fn storage_error(error: StorageError) -> BackendError {
    BackendError::Storage(error.to_string())
}

fn from_core(status: TransferStatus) -> TransferState {
    match status {
        TransferStatus::Pending => TransferState::Pending,
        TransferStatus::Committed { height, position } => {
            TransferState::Committed(Location { height, position })
        }
        TransferStatus::Final(FinalStatus::Superseded { by }) => TransferState::Superseded { by },
        TransferStatus::Final(FinalStatus::Rejected { code }) => TransferState::Rejected {
            code: code.to_string(),
        },
        TransferStatus::Unknown => TransferState::Unknown,
    }
}

impl NodeApi for LiveNode {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn status(&self) -> NodeStatus {
        let snapshot = self
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        NodeStatus {
            network_id: snapshot.network_id,
            role: snapshot.role,
            address: snapshot.address,
            height: snapshot.height.clone(),
            block_hash: snapshot.block_hash,
            state_root: snapshot.state_root,
            round: snapshot.round,
            mempool_size: snapshot.mempool_size,
            peers: snapshot.peers,
            syncing: syncing(snapshot.syncing_since),
        }
    }

    fn submit(
        &self,
        transfer: SignedTransfer,
    ) -> BoxFuture<'_, Result<SubmitOutcome, BackendError>> {
        Box::pin(async move {
            // Checked once per node for these exact bytes, whoever sent them.
            let encoded = transfer.encode();
            let valid = self
                .signatures
                .check(&encoded, || transfer.verify_signature().is_ok());
            if !valid {
                return Ok(SubmitOutcome::Rejected {
                    code: "bad_signature".into(),
                    message: "the signature does not verify under the sender's key".into(),
                });
            }
            let transfer = VerifiedTransfer::assume_verified(transfer);

            let outcome = self
                .ask(|reply| CoreInput::Submit { transfer, reply })
                .await?;
            Ok(match outcome {
                core::SubmitOutcome::Accepted => SubmitOutcome::Accepted,
                core::SubmitOutcome::Duplicate(status) => {
                    SubmitOutcome::Duplicate(from_core(status))
                }
                core::SubmitOutcome::Rejected { code, message } => {
                    SubmitOutcome::Rejected { code, message }
                }
            })
        })
    }

    fn transfer(&self, id: Hash) -> BoxFuture<'_, Result<TransferState, BackendError>> {
        Box::pin(async move {
            let status = self.ask(|reply| CoreInput::Status { id, reply }).await?;
            Ok(from_core(status))
        })
    }

    fn account(&self, account: PublicKey) -> BoxFuture<'_, Result<AccountState, BackendError>> {
        Box::pin(async move {
            let answer = self
                .ask(|reply| CoreInput::Account { account, reply })
                .await?;
            Ok(AccountState {
                balance: answer.balance,
                next_sequence: answer.next_sequence,
                next_sequence_pending: answer.next_sequence_pending,
                height: answer.height,
            })
        })
    }

    fn history(
        &self,
        account: &PublicKey,
        before: Option<Location>,
        limit: usize,
    ) -> Result<Vec<Location>, BackendError> {
        let before = match before {
            Some(location) => Some(self.history_link(account, location)?),
            None => None,
        };
        let links = self
            .storage
            .history_page(account, before, limit)
            .map_err(storage_error)?;
        Ok(links
            .into_iter()
            .map(|link| Location {
                height: link.location.height,
                position: link.location.position,
            })
            .collect())
    }

    fn block(&self, height: u64) -> Result<Option<CertifiedBlock>, BackendError> {
        // A committed block never changes, so a decoded copy stays right. The lock is held
        // while decoding, so readers woken by the same commit decode it once between them.
        let mut recent = self.recent();
        if let Some((_, certified)) = recent.iter().find(|(h, _)| *h == height) {
            return Ok(Some(certified.clone()));
        }
        let Some((block, certificate)) = self.raw_block(height)? else {
            return Ok(None);
        };
        let corrupt =
            |what: &str| BackendError::Storage(format!("stored {what} {height} is corrupt"));
        let block = Block::decode(&block).map_err(|_| corrupt("block"))?;
        let certificate =
            CommitCertificate::from_bytes(&certificate).map_err(|_| corrupt("certificate"))?;
        let certified = CertifiedBlock { block, certificate };

        // Only the newest heights are worth keeping: readers follow the head.
        let newest = recent.back().map_or(0, |(h, _)| *h);
        if height > newest {
            if recent.len() == RECENT_BLOCKS_MAX {
                recent.pop_front();
            }
            recent.push_back((height, certified.clone()));
        }
        Ok(Some(certified))
    }

    fn raw_block(&self, height: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>, BackendError> {
        self.storage
            .block_and_certificate(height)
            .map_err(storage_error)
    }

    fn heads(&self) -> watch::Receiver<u64> {
        self.heads.clone()
    }

    fn evidence(&self) -> Vec<Evidence> {
        let network_id = self.genesis.network_id();
        let log = self
            .evidence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.kept()
            .map(|pair| {
                let (first, second) = signed_bytes_hex(&network_id, pair);
                Evidence {
                    validator: pair.validator,
                    height: pair.height.to_string(),
                    round: pair.round,
                    kind: step_name(pair.step).to_string(),
                    first,
                    first_signature: hex::encode(pair.first.signature.0),
                    second,
                    second_signature: hex::encode(pair.second.signature.0),
                }
            })
            .collect()
    }

    fn evidence_seen(&self) -> u64 {
        self.evidence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .seen()
    }
}
