//! What peers send: gossip to validate and sync questions to answer.
//!
//! Verdicts on gossip follow one rule, so an honest node that lags is never punished:
//! `Reject` (which costs the forwarding peer score) only for bytes that do not decode or
//! signatures that do not verify, including a consensus message whose signer is not a
//! validator; `Ignore` for what is stale, too far ahead, or fails only because of state
//! (already known, bad sequence, unfunded); `Accept` otherwise. Signature checks run on
//! tokio's blocking pool, never on the swarm's task or the core's.
//!
//! Gossip published while a node was not listening is lost, and a proposal is published once
//! (then again only on its proposer's timeouts). So when a vote arrives for a block of the
//! height being decided and, [`PROPOSAL_GRACE`] later, the core still has no proposal of that
//! block, the node asks the peer that forwarded the vote, then the vote's signer, for the
//! signed proposal (`SyncRequest::Proposal`) and judges the answer exactly like gossip.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use protocol::consensus::{ConsensusValue, Message, SignedMessage, ValidatorSet};
use protocol::{Hash, VerifiedTransfer};
use tokio::sync::{mpsc, oneshot};

use crate::chain::{ChainBlock, TransferBatch};
use crate::core::{BATCH_MAX, CoreInput, SharedStatus};
use crate::datadir::{self, BoundAddresses};
use crate::network::{
    Command, Event, MAX_RANGE_BLOCKS, NetworkHandle, ServedBlock, SyncRequest, SyncResponse, Topic,
    peer_id,
};
use crate::sigcache::SignatureCache;
use crate::storage::Storage;

/// How many heights ahead of ours a consensus message may be and still be passed on.
const HEIGHTS_AHEAD: u64 = 2;

/// How long after a vote for an unknown block the node waits for the block's proposal to
/// arrive by gossip before asking a peer for it.
pub const PROPOSAL_GRACE: Duration = Duration::from_millis(500);

/// How many missed proposals the node remembers having asked for, so each is asked once.
const ASKED_MAX: usize = 64;

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
    /// Blocks whose missed proposal was asked for, newest last.
    pub asked: Arc<Mutex<VecDeque<Hash>>>,
    /// The longest consensus message accepted: a proposal of the largest block the genesis
    /// allows, plus the message's own fields. Gossipsub enforces it too; a proposal fetched
    /// by request-response is bounded only here.
    pub max_consensus_bytes: usize,
    /// Test-only: answer block range requests with nothing (`--misbehave withhold-blocks`).
    pub withhold_blocks: bool,
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
                            Topic::Consensus => this.judge_consensus(data, Some(source)).await,
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

    /// Judges a consensus message; `source` is the peer that forwarded it, to ask for its
    /// proposal if it is a vote for a block we have not seen.
    async fn judge_consensus(&self, data: Vec<u8>, source: Option<PeerId>) -> MessageAcceptance {
        let Ok(message) = SignedMessage::<ChainBlock>::from_bytes(&data, self.max_consensus_bytes)
        else {
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

        let vote = match &message.message {
            Message::Vote(vote) => Some(*vote),
            Message::Proposal(_) => None,
        };
        let signer = message.signer;
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
        if let (Some(vote), Some(source)) = (vote, source)
            && let Some(block_hash) = vote.block_hash
            && height == ours + 1
            && self.first_ask(block_hash)
        {
            tokio::spawn(
                self.clone()
                    .fetch_proposal(block_hash, [source, peer_id(&signer)]),
            );
        }
        MessageAcceptance::Accept
    }

    /// Whether `block_hash` was not asked for yet; records it as asked.
    fn first_ask(&self, block_hash: Hash) -> bool {
        let mut asked = self
            .asked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if asked.contains(&block_hash) {
            return false;
        }
        if asked.len() == ASKED_MAX {
            asked.pop_front();
        }
        asked.push_back(block_hash);
        true
    }

    /// Waits [`PROPOSAL_GRACE`]; if the core still lacks the proposal of `block_hash`, asks
    /// `peers` in turn for it and judges the first answer like gossip. A peer that answers
    /// with anything but a valid proposal of that block is penalised. If no peer had it, the
    /// block may be asked for again on its next vote.
    ///
    /// Boxed: this future awaits `judge_consensus`, which spawns this one; the box names the
    /// type, breaking the cycle.
    fn fetch_proposal(self, block_hash: Hash, peers: [PeerId; 2]) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            tokio::time::sleep(PROPOSAL_GRACE).await;
            for (turn, peer) in peers.into_iter().enumerate() {
                if (turn == 1 && peer == peers[0]) || self.core_has_proposal(block_hash).await {
                    return;
                }
                let request = SyncRequest::Proposal(block_hash);
                let Ok(SyncResponse::Proposal(Some(bytes))) =
                    self.network.request(peer, request).await
                else {
                    continue;
                };

                // Only the proposal asked for counts; anything else is the peer's fault.
                let decoded = SignedMessage::<ChainBlock>::from_bytes(&bytes, usize::MAX);
                let proposes = decoded.is_ok_and(
                    |m| matches!(&m.message, Message::Proposal(p) if p.value.hash() == block_hash),
                );
                let acceptance = if proposes {
                    self.judge_consensus(bytes, None).await
                } else {
                    MessageAcceptance::Reject
                };
                match acceptance {
                    MessageAcceptance::Accept => {
                        tracing::info!(%peer, block = %block_hash, "fetched a missed proposal");
                        return;
                    }
                    MessageAcceptance::Reject => {
                        tracing::warn!(%peer, block = %block_hash, "peer served a bad proposal");
                        self.network.send(Command::Penalise { peer }).await;
                    }
                    MessageAcceptance::Ignore => return,
                }
            }

            // Nobody had it: the next vote for this block may ask someone else.
            self.asked
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .retain(|asked| *asked != block_hash);
        })
    }

    async fn core_has_proposal(&self, block_hash: Hash) -> bool {
        let (reply, answer) = oneshot::channel();
        let input = CoreInput::Proposal {
            hash: block_hash,
            reply,
        };
        // A core that does not answer is stopping: nothing to fetch for.
        self.core.send(input).await.is_err() || answer.await.map_or(true, |p| p.is_some())
    }

    async fn answer(&self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Head => {
                SyncResponse::Head(self.storage.last_height().ok().flatten().unwrap_or(0))
            }
            SyncRequest::Range { .. } if self.withhold_blocks => SyncResponse::Blocks(Vec::new()),
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
            SyncRequest::BlockByHash(hash) => {
                let height = self.storage.height_of(&hash).ok().flatten();
                let block = height.and_then(|height| self.committed(height));
                SyncResponse::Blocks(block.into_iter().collect())
            }
            SyncRequest::Proposal(hash) => {
                let (reply, answer) = oneshot::channel();
                let asked = self.core.send(CoreInput::Proposal { hash, reply }).await;
                let proposal = if asked.is_ok() {
                    answer.await.ok().flatten()
                } else {
                    None
                };
                SyncResponse::Proposal(proposal)
            }
        }
    }

    fn committed(&self, height: u64) -> Option<ServedBlock> {
        let (block, certificate) = self.storage.block_and_certificate(height).ok().flatten()?;
        Some(ServedBlock {
            block,
            certificate: Some(certificate),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use protocol::consensus::{Proposal, Step, Verified, Vote, VoteKind};
    use protocol::{Block, BlockHeader, SecretKey};

    use super::*;
    use crate::core::StatusSnapshot;

    const NETWORK: Hash = Hash([5; 32]);

    struct Harness {
        inbound: Inbound,
        core: mpsc::Receiver<CoreInput>,
        network: mpsc::Receiver<Command>,
        keys: Vec<SecretKey>,
        _dir: tempfile::TempDir,
    }

    fn harness() -> Harness {
        let keys: Vec<SecretKey> = (1..=4).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let validators = ValidatorSet::new(keys.iter().map(SecretKey::public_key).collect());
        let dir = tempfile::tempdir().unwrap();
        let (core_sender, core) = mpsc::channel(16);
        let (commands, network) = mpsc::channel(16);
        let (_, peers) = tokio::sync::watch::channel(Vec::new());
        let status = StatusSnapshot {
            network_id: NETWORK,
            role: "validator",
            address: keys[0].public_key(),
            height: "0".into(),
            block_hash: Hash::ZERO,
            state_root: Hash::ZERO,
            round: 0,
            mempool_size: 0,
            peers: 0,
            syncing_since: None,
        };
        let addresses = BoundAddresses {
            peer_id: String::new(),
            address: String::new(),
            api: String::new(),
            p2p: Vec::new(),
        };
        let inbound = Inbound {
            network_id: NETWORK,
            validators: Arc::new(validators.unwrap()),
            core: core_sender,
            network: NetworkHandle {
                commands,
                peers,
                local_peer_id: PeerId::random(),
            },
            storage: Storage::open(&dir.path().join("db"), 1 << 20).unwrap(),
            status: Arc::new(RwLock::new(status)),
            signatures: Arc::new(SignatureCache::new(16)),
            dir: dir.path().to_owned(),
            addresses: Arc::new(Mutex::new(addresses)),
            behind: mpsc::channel(1).0,
            asked: Arc::default(),
            max_consensus_bytes: 2048,
            withhold_blocks: false,
        };
        Harness {
            inbound,
            core,
            network,
            keys,
            _dir: dir,
        }
    }

    /// The signed proposal of height 1, round 0 (proposer: validator 1), of a block stamped
    /// `timestamp_ms`.
    fn proposal(keys: &[SecretKey], timestamp_ms: u64) -> SignedMessage<ChainBlock> {
        let header = BlockHeader {
            version: 1,
            network_id: NETWORK,
            height: 1,
            parent: Hash::ZERO,
            proposer: keys[1].public_key(),
            timestamp_ms,
            transfers_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        let block = ChainBlock(Block {
            header,
            transfers: Vec::new(),
        });
        let proposal = Proposal {
            height: 1,
            round: 0,
            value: block,
            valid_round: None,
        };
        SignedMessage::sign(&NETWORK, &keys[1], Message::Proposal(proposal))
    }

    fn prevote(key: &SecretKey, block_hash: Hash) -> Vec<u8> {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            block_hash: Some(block_hash),
        };
        SignedMessage::<ChainBlock>::sign(&NETWORK, key, Message::Vote(vote)).to_bytes()
    }

    /// Answers the core's question "do you have the proposal of `hash`?" with no.
    async fn core_lacks_proposal(core: &mut mpsc::Receiver<CoreInput>, hash: Hash) {
        match core.recv().await {
            Some(CoreInput::Proposal { hash: asked, reply }) => {
                assert_eq!(asked, hash);
                reply.send(None).unwrap();
            }
            _ => panic!("the core was not asked for the proposal"),
        }
    }

    fn consensus(input: Option<CoreInput>) -> Verified<SignedMessage<ChainBlock>> {
        match input {
            Some(CoreInput::Consensus(message)) => *message,
            _ => panic!("not a consensus message"),
        }
    }

    #[tokio::test]
    async fn a_vote_for_an_unseen_block_fetches_its_proposal_once() {
        let mut h = harness();
        let proposal = proposal(&h.keys, 1_000);
        let block_hash = proposal.message.payload(&NETWORK).block_hash.unwrap();
        let source = PeerId::random();

        let vote = prevote(&h.keys[2], block_hash);
        let verdict = h.inbound.judge_consensus(vote, Some(source)).await;
        assert_eq!(verdict, MessageAcceptance::Accept);
        assert!(consensus(h.core.recv().await).get().message.step() == Step::Prevote);

        // A second vote for the same block does not ask again.
        let vote = prevote(&h.keys[3], block_hash);
        let verdict = h.inbound.judge_consensus(vote, Some(source)).await;
        assert_eq!(verdict, MessageAcceptance::Accept);
        consensus(h.core.recv().await);

        // After the grace period the core still lacks it: the forwarding peer is asked.
        core_lacks_proposal(&mut h.core, block_hash).await;
        let Some(Command::Request {
            peer,
            request,
            reply,
        }) = h.network.recv().await
        else {
            panic!("no request sent");
        };
        assert_eq!((peer, request), (source, SyncRequest::Proposal(block_hash)));
        reply
            .send(Ok(SyncResponse::Proposal(Some(proposal.to_bytes()))))
            .unwrap();

        // The answer goes to the core like gossip, verified.
        let fetched = consensus(h.core.recv().await);
        assert_eq!(fetched.get(), &proposal);
        assert_eq!(h.inbound.asked.lock().unwrap().len(), 1);
        assert!(h.network.try_recv().is_err(), "nothing else was sent");
    }

    #[tokio::test]
    async fn a_peer_serving_another_block_is_penalised_and_the_signer_asked() {
        let mut h = harness();
        let other = proposal(&h.keys, 2_000);
        let proposal = proposal(&h.keys, 1_000);
        let block_hash = proposal.message.payload(&NETWORK).block_hash.unwrap();
        let source = PeerId::random();

        let vote = prevote(&h.keys[2], block_hash);
        h.inbound.judge_consensus(vote, Some(source)).await;
        consensus(h.core.recv().await);

        core_lacks_proposal(&mut h.core, block_hash).await;
        let Some(Command::Request { peer, reply, .. }) = h.network.recv().await else {
            panic!("no request sent");
        };
        assert_eq!(peer, source);
        reply
            .send(Ok(SyncResponse::Proposal(Some(other.to_bytes()))))
            .unwrap();
        let Some(Command::Penalise { peer }) = h.network.recv().await else {
            panic!("the lying peer was not penalised");
        };
        assert_eq!(peer, source);

        // Then the vote's signer, validator 2, is asked.
        core_lacks_proposal(&mut h.core, block_hash).await;
        let Some(Command::Request { peer, reply, .. }) = h.network.recv().await else {
            panic!("no second request sent");
        };
        assert_eq!(peer, peer_id(&h.keys[2].public_key()));
        reply
            .send(Ok(SyncResponse::Proposal(Some(proposal.to_bytes()))))
            .unwrap();
        assert_eq!(consensus(h.core.recv().await).get(), &proposal);
    }

    #[tokio::test]
    async fn a_fetched_proposal_over_the_size_bound_is_refused_and_its_server_penalised() {
        let mut h = harness();
        let proposal = proposal(&h.keys, 1_000);
        let bytes = proposal.to_bytes();
        let block_hash = proposal.message.payload(&NETWORK).block_hash.unwrap();
        // A genuine proposal, one byte over this node's bound.
        h.inbound.max_consensus_bytes = bytes.len() - 1;
        assert_eq!(
            h.inbound.judge_consensus(bytes.clone(), None).await,
            MessageAcceptance::Reject
        );

        let source = PeerId::random();
        let vote = prevote(&h.keys[2], block_hash);
        h.inbound.judge_consensus(vote, Some(source)).await;
        consensus(h.core.recv().await);
        core_lacks_proposal(&mut h.core, block_hash).await;
        let Some(Command::Request { reply, .. }) = h.network.recv().await else {
            panic!("no request sent");
        };
        reply.send(Ok(SyncResponse::Proposal(Some(bytes)))).unwrap();
        let Some(Command::Penalise { peer }) = h.network.recv().await else {
            panic!("the peer was not penalised");
        };
        assert_eq!(peer, source);
        // The vote's signer is asked next and has nothing: the block may be asked again.
        core_lacks_proposal(&mut h.core, block_hash).await;
        let Some(Command::Request { peer, reply, .. }) = h.network.recv().await else {
            panic!("no second request sent");
        };
        assert_eq!(peer, peer_id(&h.keys[2].public_key()));
        reply.send(Ok(SyncResponse::Proposal(None))).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !h.inbound.asked.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "still marked as asked"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !matches!(h.core.try_recv(), Ok(CoreInput::Consensus(_))),
            "the oversized proposal reached the core"
        );
    }

    #[tokio::test]
    async fn a_proposal_request_is_answered_from_the_core() {
        let mut h = harness();
        let proposal = proposal(&h.keys, 1_000);
        let block_hash = proposal.message.payload(&NETWORK).block_hash.unwrap();
        let bytes = proposal.to_bytes();
        let inbound = h.inbound.clone();
        let answer =
            tokio::spawn(async move { inbound.answer(SyncRequest::Proposal(block_hash)).await });
        let Some(CoreInput::Proposal { hash, reply }) = h.core.recv().await else {
            panic!("the core was not asked");
        };
        assert_eq!(hash, block_hash);
        reply.send(Some(bytes.clone())).unwrap();
        assert_eq!(answer.await.unwrap(), SyncResponse::Proposal(Some(bytes)));
    }
}
