//! The core task: the one owner of the ledger, the mempool and the consensus state machine.
//!
//! Everything that changes state goes through here, one input at a time, so there is no
//! locking around the ledger and no question of which write wins. Inputs arrive on one
//! channel ([`CoreInput`]): submissions from the API, verified gossip, synced blocks; timers
//! are kept here. The consensus machine's actions are carried out in the order it gives:
//!
//! - `Persist`: the safety state is written to sled and flushed *before* the next action,
//!   which is what makes "durable before visible" hold for every vote and proposal;
//! - `Broadcast`: published on the consensus topic at once, after any transfers still waiting
//!   for the gossip flush ticker (the machine has already recorded its own message, so it is
//!   not fed back), and remembered for republishing on every timeout, because gossip
//!   published while no peer listens is lost;
//! - `BuildProposal`: a block from the mempool, built once the inputs already queued are
//!   handled (what arrived while the last block was being written goes in), or after waiting
//!   up to the configured interval when the mempool holds nothing includable;
//! - `RequestVerdict`: the ledger rules plus the timestamp rules;
//! - `Decide`: the block is applied, stored with its certificate in one flushed batch, and
//!   only then reported (the status snapshot, then the `heads` channel that wakes the API).
//!   While the batch is written on the blocking pool, submissions and gossip are still
//!   admitted against the state before the block; every other input waits for the flush.
//!
//! A storage failure or a certified block whose replay disagrees with its header stops the
//! loop with an error naming the height: the node halts rather than carry on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::block::{
    BlockContext, ValidBlock, build_block, validate_block, validate_block_with_signatures,
};
use protocol::consensus::{
    Action, CommitCertificate, ConsensusValue, Height, Input, Message, Round, SafetyState,
    SignedMessage, StateMachine, Timeout, TimeoutKind, ValidatorSet, Verified, Vote, VoteKind,
};
use protocol::{BlockHeader, Genesis, Hash, Ledger, PublicKey, SecretKey, VerifiedTransfer};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::{ChainBlock, TransferBatch, commit_write};
use crate::evidence::SharedEvidence;
use crate::mempool::{Admission, FinalStatus, Mempool, SenderState};
use crate::network::{Command, NetworkHandle, Topic};
use crate::sigcache::SignatureCache;
use crate::storage::{Storage, StorageError};

/// How often newly submitted transfers are flushed to gossip as one batch. Shorter gets a
/// transfer to the next proposer sooner; each flush is one gossip message, signed by the
/// sender and checked by every peer, so much shorter costs CPU at high rates.
const OUTBOX_FLUSH: Duration = Duration::from_millis(10);

/// How often the oldest pending transfers are gossiped again. Gossip published while no
/// peer listened is lost; this is how such transfers still reach the proposers.
const REGOSSIP_INTERVAL: Duration = Duration::from_secs(5);

/// Most transfers in one gossip batch.
pub const BATCH_MAX: usize = 512;

/// Most inputs set aside during one block's write (see `Core::admit_while`); beyond it the
/// channel is left unread until the write ends.
const DEFERRED_MAX: usize = 1024;

/// Most queued inputs handled before building a proposal (see `Core::build_after_queued`).
/// Bounded so that a flood of submissions cannot hold a proposal back for long: each input
/// takes tens of microseconds.
const QUEUED_BEFORE_BUILD_MAX: usize = 1024;

/// Why the node halted.
#[derive(Debug, thiserror::Error)]
pub enum HaltError {
    /// A write to disk failed.
    #[error("halting at height {height}: storage failed: {source}")]
    Storage {
        /// The height being written or decided.
        height: u64,
        /// What failed.
        source: StorageError,
    },
    /// A certified block does not replay to the state its header states.
    #[error("halting at height {height}: the certified block does not replay: {reason}")]
    ReplayMismatch {
        /// The block's height.
        height: u64,
        /// What differs.
        reason: String,
    },
    /// The stored safety state does not decode.
    #[error("halting: the stored consensus safety state is corrupt")]
    CorruptSafetyState,
}

/// The outcome of a submission, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly accepted into the mempool.
    Accepted,
    /// Already known: its current status.
    Duplicate(TransferStatus),
    /// Refused, with a stable code and a sentence.
    Rejected {
        /// Stable snake_case code.
        code: String,
        /// For people.
        message: String,
    },
}

/// Where a transfer stands, as far as this node knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// Waiting in the mempool.
    Pending,
    /// In a committed block.
    Committed {
        /// The block height.
        height: u64,
        /// The index in the block.
        position: u32,
    },
    /// Left the mempool uncommitted.
    Final(FinalStatus),
    /// Never seen (or forgotten).
    Unknown,
}

/// What the core is asked to do.
#[derive(Debug)]
pub enum CoreInput {
    /// A transfer from a wallet, signature already verified.
    Submit {
        /// The transfer.
        transfer: VerifiedTransfer,
        /// Where the outcome goes.
        reply: oneshot::Sender<SubmitOutcome>,
    },
    /// Transfers from a gossip batch, signatures already verified; the reply says whether
    /// any was new (so the batch is worth forwarding).
    GossipTransfers {
        /// The transfers.
        transfers: Vec<VerifiedTransfer>,
        /// Whether any was added.
        reply: oneshot::Sender<bool>,
    },
    /// Where a transfer stands.
    Status {
        /// The transfer id.
        id: Hash,
        /// The answer.
        reply: oneshot::Sender<TransferStatus>,
    },
    /// An account's committed state and its next sequence counting pending transfers.
    Account {
        /// The account.
        account: PublicKey,
        /// The answer.
        reply: oneshot::Sender<AccountAnswer>,
    },
    /// A verified consensus message from a peer.
    Consensus(Box<Verified<SignedMessage<ChainBlock>>>),
    /// A committed block fetched by sync, its certificate already verified against it.
    Synced {
        /// The block.
        block: Box<ChainBlock>,
        /// Its certificate.
        certificate: CommitCertificate,
        /// Whether the block was applied (or was already), or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// The signed proposal of a block at the current height, for a peer that missed it.
    Proposal {
        /// The block hash.
        hash: Hash,
        /// The proposal's wire bytes, if this node saw it.
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
}

/// An account as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountAnswer {
    /// Committed balance in units.
    pub balance: u64,
    /// The next sequence the ledger accepts.
    pub next_sequence: u64,
    /// The next sequence counting this node's pending transfers from the account.
    pub next_sequence_pending: u64,
    /// The committed height these are as of.
    pub height: u64,
}

/// The node's state as shown by `GET /v1/status`, kept current by the core.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    /// The network id.
    pub network_id: Hash,
    /// `validator` or `full`.
    pub role: &'static str,
    /// This node's address.
    pub address: PublicKey,
    /// Last committed height, as a string (0 before the first block).
    pub height: String,
    /// Its block hash (zero before the first block).
    pub block_hash: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// The consensus round at the next height.
    pub round: Round,
    /// Transfers waiting.
    pub mempool_size: usize,
    /// Connected peers.
    pub peers: usize,
    /// Since when the node has been fetching blocks it has not applied yet, if it is.
    #[serde(skip)]
    pub syncing_since: Option<Instant>,
}

/// The shared status snapshot.
pub type SharedStatus = Arc<RwLock<StatusSnapshot>>;

/// Test-only misbehaviour, switched on by a hidden command-line flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Propose blocks whose state root is wrong.
    InvalidProposals,
    /// Publish garbage on both gossip topics.
    Garbage,
    /// After each prevote, publish a second, conflicting one (to the network only).
    Equivocate,
    /// Answer every block sync range request with no blocks, so a node behind stays behind.
    WithholdBlocks,
    /// Never gossip its proposals (it still votes, and serves them when asked), so the others
    /// see them only through its votes.
    HideProposals,
}

/// What the core is built from.
pub struct CoreParts {
    /// The genesis.
    pub genesis: Genesis,
    /// Its validator set.
    pub validators: ValidatorSet,
    /// This node's key.
    pub key: SecretKey,
    /// The database.
    pub storage: Storage,
    /// The ledger at the last committed height.
    pub ledger: Ledger,
    /// The last committed header.
    pub head: Option<BlockHeader>,
    /// The consensus machine, not yet started.
    pub machine: StateMachine<ChainBlock>,
    /// The safety state to restore, if it is for the next height.
    pub safety: Option<SafetyState<ChainBlock>>,
    /// The network.
    pub network: NetworkHandle,
    /// The status snapshot to keep current.
    pub status: SharedStatus,
    /// Where each committed height is announced, once its block is flushed to disk.
    pub heads: watch::Sender<u64>,
    /// Mempool bounds.
    pub mempool: (usize, usize),
    /// Wait before proposing an empty block.
    pub empty_block_interval: Duration,
    /// How far ahead of our clock a proposal may be dated.
    pub max_clock_skew: Duration,
    /// Test-only misbehaviour.
    pub misbehaviour: Option<Misbehaviour>,
    /// Where equivocation evidence goes, for the API.
    pub evidence: SharedEvidence,
    /// Signature verdicts shared with the API and gossip, so a proposal's transfers are not
    /// verified a second time.
    pub signatures: Arc<SignatureCache>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Consensus(TimeoutKindOrd, Height, Round),
    Build(Height, Round),
}

/// `TimeoutKind` with an order, for the timer heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimeoutKindOrd {
    Propose,
    Prevote,
    Precommit,
}

impl From<TimeoutKind> for TimeoutKindOrd {
    fn from(kind: TimeoutKind) -> TimeoutKindOrd {
        match kind {
            TimeoutKind::Propose => TimeoutKindOrd::Propose,
            TimeoutKind::Prevote => TimeoutKindOrd::Prevote,
            TimeoutKind::Precommit => TimeoutKindOrd::Precommit,
        }
    }
}

impl From<TimeoutKindOrd> for TimeoutKind {
    fn from(kind: TimeoutKindOrd) -> TimeoutKind {
        match kind {
            TimeoutKindOrd::Propose => TimeoutKind::Propose,
            TimeoutKindOrd::Prevote => TimeoutKind::Prevote,
            TimeoutKindOrd::Precommit => TimeoutKind::Precommit,
        }
    }
}

/// The core's state. See the module documentation.
pub struct Core {
    genesis: Genesis,
    network_id: Hash,
    key: SecretKey,
    is_validator: bool,
    storage: Storage,
    ledger: Ledger,
    head: Option<BlockHeader>,
    machine: StateMachine<ChainBlock>,
    safety: Option<SafetyState<ChainBlock>>,
    mempool: Mempool<VerifiedTransfer>,
    validated: HashMap<Hash, ValidBlock>,
    /// Signed proposals of the next height, by block hash.
    proposed: HashMap<Hash, SignedMessage<ChainBlock>>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    outbox: Vec<protocol::SignedTransfer>,
    network: NetworkHandle,
    status: SharedStatus,
    heads: watch::Sender<u64>,
    empty_block_interval: Duration,
    max_clock_skew: Duration,
    last_commit_at: Instant,
    misbehaviour: Option<Misbehaviour>,
    signatures: Arc<SignatureCache>,
    /// The (height, round) whose proposal waits for a transfer or the empty-block interval.
    waiting_build: Option<(Height, Round)>,
    /// The (height, round) whose proposal is built once the inputs already queued are in.
    build_next: Option<(Height, Round)>,
    /// The input channel, owned here while the core runs so that a block's write can go on
    /// beside admissions (see `admit_while`).
    inputs: Option<mpsc::Receiver<CoreInput>>,
    /// Inputs received during a block's write that must see it durable first, oldest first.
    deferred: std::collections::VecDeque<CoreInput>,
    writer: BlockWriter,
    evidence: SharedEvidence,
}

impl Core {
    /// Assembles the core from its parts.
    pub fn new(parts: CoreParts) -> Core {
        let is_validator = parts.validators.position(&parts.key.public_key()).is_some();
        Core {
            network_id: parts.genesis.network_id(),
            genesis: parts.genesis,
            key: parts.key,
            is_validator,
            storage: parts.storage,
            ledger: parts.ledger,
            head: parts.head,
            machine: parts.machine,
            safety: parts.safety,
            mempool: Mempool::new(parts.mempool.0, parts.mempool.1),
            validated: HashMap::new(),
            proposed: HashMap::new(),
            timers: BinaryHeap::new(),
            outbox: Vec::new(),
            network: parts.network,
            status: parts.status,
            heads: parts.heads,
            empty_block_interval: parts.empty_block_interval,
            max_clock_skew: parts.max_clock_skew,
            last_commit_at: Instant::now(),
            misbehaviour: parts.misbehaviour,
            signatures: parts.signatures,
            waiting_build: None,
            build_next: None,
            inputs: None,
            deferred: std::collections::VecDeque::new(),
            writer: BlockWriter::spawn(),
            evidence: parts.evidence,
        }
    }

    /// Runs until `shutdown` turns true or the input channel closes; `Err` means halt.
    pub async fn run(
        mut self,
        inputs: mpsc::Receiver<CoreInput>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), HaltError> {
        self.inputs = Some(inputs);
        let next_height = self.head_height() + 1;
        let actions = match self.safety.take() {
            Some(state) if state.height == next_height => {
                tracing::info!(
                    height = state.height,
                    round = state.round,
                    "restoring safety state"
                );
                self.machine.restore(state)
            }
            _ => self.machine.start(next_height),
        };
        self.execute(actions).await?;
        self.publish_status();

        let mut flush = tokio::time::interval(OUTBOX_FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut regossip = tokio::time::interval(REGOSSIP_INTERVAL);
        regossip.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while let Some(input) = self.deferred.pop_front() {
                self.handle_input(input).await?;
            }
            if self.build_next.is_some() {
                self.build_after_queued().await?;
            }
            let deadline = self.next_deadline();
            let inputs = self
                .inputs
                .as_mut()
                .expect("the running core owns its inputs");
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                input = inputs.recv() => match input {
                    Some(input) => self.handle_input(input).await?,
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => self.fire_timers().await?,
                _ = flush.tick() => self.flush_outbox().await,
                _ = regossip.tick() => self.regossip().await,
            }
            self.record_evidence();
            self.publish_status();
        }

        // Whatever was in progress has finished: each input is handled to completion.
        self.flush_outbox().await;
        self.storage.flush().map_err(|source| HaltError::Storage {
            height: self.head_height(),
            source,
        })?;
        tracing::info!(height = self.head_height(), "core stopped");
        Ok(())
    }

    /// Hands the equivocations the machine saw to the API's evidence log, and logs them.
    fn record_evidence(&mut self) {
        let pairs = self.machine.take_evidence();
        if pairs.is_empty() {
            return;
        }
        for pair in &pairs {
            tracing::warn!(
                validator = %pair.validator,
                height = pair.height,
                round = pair.round,
                step = crate::evidence::step_name(pair.step),
                "equivocation: a validator signed two different messages"
            );
        }
        self.evidence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(pairs);
    }

    fn head_height(&self) -> u64 {
        self.head.as_ref().map_or(0, |header| header.height)
    }

    async fn handle_input(&mut self, input: CoreInput) -> Result<(), HaltError> {
        match input {
            CoreInput::Submit { transfer, reply } => {
                let outcome = self.submit(transfer, true).await?;
                let accepted = outcome == SubmitOutcome::Accepted;
                let _ = reply.send(outcome);
                if accepted {
                    // A proposer waiting for something to propose need wait no longer.
                    self.build_if_includable().await?;
                }
            }
            CoreInput::GossipTransfers { transfers, reply } => {
                let mut any_new = false;
                for transfer in transfers {
                    any_new |= self.submit(transfer, false).await? == SubmitOutcome::Accepted;
                }
                let _ = reply.send(any_new);
                if any_new {
                    self.build_if_includable().await?;
                }
            }
            CoreInput::Status { id, reply } => {
                let status = self.transfer_status(&id)?;
                let _ = reply.send(status);
            }
            CoreInput::Account { account, reply } => {
                let _ = reply.send(self.account_answer(&account));
            }
            CoreInput::Consensus(message) => {
                self.remember_proposal(message.get());
                let actions = self.machine.handle(Input::Message(*message));
                self.execute(actions).await?;
            }
            CoreInput::Synced {
                block,
                certificate,
                reply,
            } => {
                let result = self.apply_synced(*block, certificate).await?;
                let _ = reply.send(result);
            }
            CoreInput::Proposal { hash, reply } => {
                let _ = reply.send(self.proposed.get(&hash).map(SignedMessage::to_bytes));
            }
        }
        Ok(())
    }

    /// An account's committed state, and its next sequence counting pending transfers.
    fn account_answer(&self, account: &PublicKey) -> AccountAnswer {
        let committed = self.ledger.account(account);
        let pending = self
            .mempool
            .next_sequence_with_pending(account, committed.next_sequence);
        AccountAnswer {
            balance: committed.balance,
            next_sequence: committed.next_sequence,
            next_sequence_pending: pending,
            height: self.head_height(),
        }
    }

    /// Admission of one verified transfer. `from_wallet` transfers are gossiped by us;
    /// gossip ones are forwarded by gossipsub itself.
    async fn submit(
        &mut self,
        transfer: VerifiedTransfer,
        from_wallet: bool,
    ) -> Result<SubmitOutcome, HaltError> {
        let id = transfer.signed().id();
        if self.mempool.contains(&id) {
            return Ok(SubmitOutcome::Duplicate(TransferStatus::Pending));
        }
        let account = self.ledger.account(&transfer.transfer.sender);
        // A committed transfer carries a sequence its sender has used, so only such a one is
        // looked up in storage: a read per admission was a tenth of the core's time.
        if transfer.transfer.sequence < account.next_sequence
            && let status @ TransferStatus::Committed { .. } = self.transfer_status(&id)?
        {
            return Ok(SubmitOutcome::Duplicate(status));
        }

        if let Err((code, message)) = self.check_stateless(&transfer) {
            return Ok(SubmitOutcome::Rejected { code, message });
        }

        if transfer.transfer.sequence == account.next_sequence {
            // The next transfer in line gets the full ledger check, so a wallet hears about
            // a problem now rather than at block time.
            if let Err(rejection) = self.ledger.check_verified(&transfer) {
                let message = rejection.message(self.genesis.decimals);
                return Ok(SubmitOutcome::Rejected {
                    code: rejection.code().into(),
                    message,
                });
            }
        }

        let sender = SenderState {
            balance: account.balance,
            next_sequence: account.next_sequence,
        };
        let signed = transfer.signed().clone();
        match self.mempool.admit(transfer, sender) {
            Ok(Admission::Added) => {
                if from_wallet {
                    self.outbox.push(signed);
                }
                Ok(SubmitOutcome::Accepted)
            }
            Ok(Admission::AlreadyPending) => Ok(SubmitOutcome::Duplicate(TransferStatus::Pending)),
            Err(rejection) => Ok(SubmitOutcome::Rejected {
                code: rejection.code().into(),
                message: rejection.to_string(),
            }),
        }
    }

    /// Checks that need no account state, so transfers that can never apply stay out.
    fn check_stateless(&self, transfer: &VerifiedTransfer) -> Result<(), (String, String)> {
        let body = &transfer.transfer;
        let fail = |code: &str, message: String| Err((code.to_string(), message));
        if body.network_id != self.network_id {
            return fail(
                "wrong_network",
                format!("transfer is for network {}", body.network_id),
            );
        }
        if body.sender == body.receiver {
            return fail(
                "self_transfer",
                "sender and receiver are the same account".into(),
            );
        }
        if body.amount == 0 {
            return fail("zero_amount", "the amount must be positive".into());
        }
        if body.fee < self.genesis.min_fee {
            let minimum = protocol::format_amount(self.genesis.min_fee, self.genesis.decimals);
            return fail("fee_too_low", format!("the fee must be at least {minimum}"));
        }
        Ok(())
    }

    fn transfer_status(&self, id: &Hash) -> Result<TransferStatus, HaltError> {
        if self.mempool.contains(id) {
            return Ok(TransferStatus::Pending);
        }
        let location = self
            .storage
            .transfer_location(id)
            .map_err(|source| HaltError::Storage {
                height: self.head_height(),
                source,
            })?;
        if let Some(location) = location {
            let (height, position) = (location.height, location.position);
            return Ok(TransferStatus::Committed { height, position });
        }
        Ok(match self.mempool.outcome(id) {
            Some(outcome) => TransferStatus::Final(outcome.clone()),
            None => TransferStatus::Unknown,
        })
    }

    /// Keeps a signed proposal of the next height, to serve to a peer that missed it.
    fn remember_proposal(&mut self, message: &SignedMessage<ChainBlock>) {
        let Message::Proposal(proposal) = &message.message else {
            return;
        };
        // Bounded by the height window: cleared at every commit, and only blocks for the next
        // height are kept.
        let block = &proposal.value;
        if block.0.header.height == self.head_height() + 1 && self.proposed.len() < 64 {
            self.proposed
                .entry(block.hash())
                .or_insert_with(|| message.clone());
        }
    }

    /// Carries out the machine's actions in order, including those its answers cause.
    async fn execute(&mut self, actions: Vec<Action<ChainBlock>>) -> Result<(), HaltError> {
        let mut queue: std::collections::VecDeque<Action<ChainBlock>> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Persist(state) => self.persist(&state)?,
                Action::Broadcast(message) => self.broadcast(&message).await,
                Action::ScheduleTimeout(timeout) => self.schedule(timeout),
                Action::BuildProposal { height, round } => {
                    if self.should_wait_for_transfers() {
                        let deadline = self.last_commit_at + self.empty_block_interval;
                        self.timers
                            .push(Reverse((deadline, Timer::Build(height, round))));
                        self.waiting_build = Some((height, round));
                    } else {
                        self.build_next = Some((height, round));
                    }
                }
                Action::RequestVerdict { height, value } => {
                    let block_hash = value.hash();
                    let valid = self.verdict(height, &value);
                    queue.extend(self.machine.handle(Input::Verdict {
                        height,
                        block_hash,
                        valid,
                    }));
                }
                Action::Decide { value, certificate } => {
                    self.decide(value, certificate).await?;
                }
            }
        }
        Ok(())
    }

    fn persist(&mut self, state: &SafetyState<ChainBlock>) -> Result<(), HaltError> {
        crate::safety::save(&self.storage, state).map_err(|source| HaltError::Storage {
            height: state.height,
            source,
        })
    }

    async fn broadcast(&mut self, message: &SignedMessage<ChainBlock>) {
        log_signed(message);
        self.remember_proposal(message);
        if self.hides(message) {
            return;
        }

        // Transfers waiting for the flush ticker go first: each vote brings the commit nearer,
        // right after which the next proposer builds, and only what has reached it by then
        // can go in. Consensus messages themselves never wait for the ticker.
        self.flush_outbox().await;
        let data = message.to_bytes();
        self.network
            .send(Command::Publish {
                topic: Topic::Consensus,
                data,
            })
            .await;

        if self.misbehaviour == Some(Misbehaviour::Equivocate)
            && let Message::Vote(vote) = &message.message
            && vote.kind == VoteKind::Prevote
        {
            let conflicting = Vote {
                block_hash: match vote.block_hash {
                    Some(_) => None,
                    None => Some(Hash::digest(b"a block nobody proposed")),
                },
                ..*vote
            };
            let signed = SignedMessage::<ChainBlock>::sign(
                &self.network_id,
                &self.key,
                Message::Vote(conflicting),
            );
            self.network
                .send(Command::Publish {
                    topic: Topic::Consensus,
                    data: signed.to_bytes(),
                })
                .await;
        }
    }

    fn schedule(&mut self, timeout: Timeout) {
        let mut duration = Duration::from_millis(timeout.duration_ms);

        // Round 0 of every height waits, besides the propose timeout, as long as a proposer
        // with an empty mempool may wait before proposing (see `should_wait_for_transfers`).
        if timeout.kind == TimeoutKind::Propose && timeout.round == 0 {
            duration += self.empty_block_interval;
        }
        let timer = Timer::Consensus(timeout.kind.into(), timeout.height, timeout.round);
        self.timers
            .push(Reverse((Instant::now() + duration, timer)));
    }

    /// Whether a proposer should wait (up to the empty-block interval) before proposing:
    /// nothing in the mempool could go into the next block. Transfers waiting behind a
    /// missing sequence do not count, or one of them would make the node commit empty blocks
    /// as fast as it can.
    fn should_wait_for_transfers(&self) -> bool {
        !self.has_includable() && self.last_commit_at.elapsed() < self.empty_block_interval
    }

    /// Whether some pending transfer carries its sender's next sequence.
    fn has_includable(&self) -> bool {
        let ledger = &self.ledger;
        !self
            .mempool
            .candidates(1, |sender| ledger.account(sender).next_sequence)
            .is_empty()
    }

    /// Builds the proposal this validator was waiting to build once a transfer it can
    /// include has arrived.
    async fn build_if_includable(&mut self) -> Result<(), HaltError> {
        if self.waiting_build.is_some() && self.has_includable() {
            self.build_now().await?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Instant {
        match self.timers.peek() {
            Some(Reverse((deadline, _))) => *deadline,
            // Nothing scheduled: wake up rarely, just to re-check.
            None => Instant::now() + Duration::from_secs(3600),
        }
    }

    async fn fire_timers(&mut self) -> Result<(), HaltError> {
        let now = Instant::now();
        while let Some(Reverse((deadline, timer))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Consensus(kind, height, round) => {
                    let kind = TimeoutKind::from(kind);
                    let actions = self.machine.handle(Input::Timeout {
                        kind,
                        height,
                        round,
                    });
                    self.execute(actions).await?;
                    self.republish().await;
                }
                Timer::Build(height, round) => {
                    if self.waiting_build == Some((height, round)) {
                        self.build_now().await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Handles the inputs queued when a proposal is due, then builds it.
    ///
    /// A proposer's turn comes right after it commits the previous block, and while it was
    /// writing that block, submissions and gossip piled up in the input channel. Building at
    /// once would leave them all for the block after; a block's worth of waiting for most
    /// transfers at a steady load.
    async fn build_after_queued(&mut self) -> Result<(), HaltError> {
        let queued = self
            .inputs
            .as_ref()
            .map_or(0, |inputs| inputs.len().min(QUEUED_BEFORE_BUILD_MAX));
        for _ in 0..queued {
            let Some(Ok(input)) = self.inputs.as_mut().map(mpsc::Receiver::try_recv) else {
                break;
            };
            self.handle_input(input).await?;
        }
        let Some((height, round)) = self.build_next.take() else {
            return Ok(());
        };
        self.build_current(height, round).await
    }

    /// Builds the proposal this validator was waiting to build, if any and still current.
    async fn build_now(&mut self) -> Result<(), HaltError> {
        let Some((height, round)) = self.waiting_build.take() else {
            return Ok(());
        };
        self.build_current(height, round).await
    }

    /// Builds and proposes the block of `(height, round)` unless the machine has moved on.
    async fn build_current(&mut self, height: Height, round: Round) -> Result<(), HaltError> {
        if self.machine.height() != height || self.machine.round() != round {
            return Ok(());
        }
        let value = self.build(height);
        let actions = self.machine.handle(Input::ProposalValue {
            height,
            round,
            value,
        });
        self.execute(actions).await
    }

    /// Publishes again what this validator signed in the current round: gossip sent while
    /// no peer listened (or to a peer that restarted) is otherwise lost for good.
    async fn republish(&mut self) {
        if !self.is_validator {
            return;
        }
        for message in self.machine.safety_state().sent {
            if self.hides(&message) {
                continue;
            }
            let data = message.to_bytes();
            self.network
                .send(Command::Publish {
                    topic: Topic::Consensus,
                    data,
                })
                .await;
        }
    }

    /// Whether the `hide-proposals` misbehaviour keeps `message` off gossip.
    fn hides(&self, message: &SignedMessage<ChainBlock>) -> bool {
        self.misbehaviour == Some(Misbehaviour::HideProposals)
            && matches!(message.message, Message::Proposal(_))
    }

    /// A proposal for `height` from the mempool.
    fn build(&mut self, height: Height) -> ChainBlock {
        let parent_time = self.head.as_ref().map_or(0, |header| header.timestamp_ms);
        let timestamp_ms = now_ms().max(parent_time + 1);
        let context = BlockContext::after(self.head.as_ref(), self.key.public_key(), timestamp_ms);
        debug_assert_eq!(
            context.height, height,
            "the machine builds for the next height"
        );

        let limit = self.genesis.max_block_transfers as usize;
        let ledger = &self.ledger;
        let candidates = self
            .mempool
            .candidates(limit, |sender| ledger.account(sender).next_sequence);
        let built = build_block(&self.ledger, &self.genesis, context, candidates);
        let mut block = ChainBlock(built.block);

        if self.misbehaviour == Some(Misbehaviour::InvalidProposals) {
            block.0.header.state_root = Hash::digest(b"not the state root");
            return block;
        }
        let valid = ValidBlock {
            ledger: built.ledger,
            effects: built.effects,
        };
        self.validated.insert(block.hash(), valid);
        block
    }

    /// Whether a proposed block may be voted for: ledger rules and timestamp rules.
    fn verdict(&mut self, height: Height, block: &ChainBlock) -> bool {
        let hash = block.hash();
        if self.validated.contains_key(&hash) {
            return true;
        }
        let header = &block.0.header;
        if height != self.head_height() + 1 || header.height != height {
            return false;
        }

        let parent_time = self.head.as_ref().map_or(0, |parent| parent.timestamp_ms);
        let skew_ms = self.max_clock_skew.as_millis() as u64;
        if !timestamp_acceptable(header.timestamp_ms, parent_time, now_ms(), skew_ms) {
            let timestamp = header.timestamp_ms;
            tracing::warn!(height, block = %hash, timestamp, "proposal timestamp out of bounds");
            return false;
        }

        // Transfers that came by gossip or the API were verified then: only the others are.
        let encoded: Vec<Vec<u8>> = block.0.transfers.iter().map(|t| t.encode()).collect();
        let pairs: Vec<(&[u8], &protocol::SignedTransfer)> = encoded
            .iter()
            .map(Vec::as_slice)
            .zip(&block.0.transfers)
            .collect();
        let signatures = self.signatures.check_transfers(&pairs);
        let parent = self.head.as_ref();
        match validate_block_with_signatures(
            &self.ledger,
            &self.genesis,
            parent,
            &block.0,
            &signatures,
        ) {
            Ok(valid) => {
                self.validated.insert(hash, valid);
                true
            }
            Err(error) => {
                tracing::warn!(height, block = %hash, %error, "invalid proposal");
                false
            }
        }
    }

    /// Applies and stores a decided block; nothing is reported before the flush.
    async fn decide(
        &mut self,
        value: ChainBlock,
        certificate: CommitCertificate,
    ) -> Result<(), HaltError> {
        let block = value.0;
        let height = block.header.height;
        let hash = block.hash();
        if height != self.head_height() + 1 {
            return Err(HaltError::ReplayMismatch {
                height,
                reason: format!(
                    "decided height {height} does not follow {}",
                    self.head_height()
                ),
            });
        }

        let valid = match self.validated.remove(&hash) {
            Some(valid) => valid,
            None => validate_block(&self.ledger, &self.genesis, self.head.as_ref(), &block)
                .map_err(|error| HaltError::ReplayMismatch {
                    height,
                    reason: error.to_string(),
                })?,
        };

        let block_bytes = block.encode();
        let certificate_bytes = certificate.to_bytes();
        let ValidBlock { ledger, effects } = valid;
        let storage = self.storage.clone();
        let write = self.writer.run(move || {
            let write = commit_write(&block, hash, &block_bytes, &certificate_bytes, &effects);
            (storage.commit(&write), block)
        });
        let (written, block) = self.admit_while(write).await?;
        written.map_err(|source| HaltError::Storage { height, source })?;

        // Durable: now the new state may be used and reported.
        self.ledger = ledger;
        let committed: Vec<VerifiedTransfer> = block
            .transfers
            .iter()
            .cloned()
            .map(VerifiedTransfer::assume_verified)
            .collect();
        let ledger = &self.ledger;
        self.mempool.remove_committed(&committed, |sender| {
            let account = ledger.account(sender);
            SenderState {
                balance: account.balance,
                next_sequence: account.next_sequence,
            }
        });
        self.validated.clear();
        self.proposed.clear();
        self.last_commit_at = Instant::now();

        // NOTE: the shape of this line is documented in docs/operators.md.
        tracing::info!(
            height,
            block = %hash,
            state_root = %block.header.state_root,
            transfers = block.transfers.len(),
            round = certificate.round,
            "committed"
        );
        self.head = Some(block.header);

        // Readers of the head (event streams, metrics) wake now rather than poll; the status
        // goes first so that nobody woken sees an older height there.
        self.publish_status();
        self.heads.send_replace(height);
        Ok(())
    }

    /// Waits for a block's write while still admitting transfers, so that wallets and gossip
    /// do not stall for the length of every commit.
    ///
    /// Admission and account questions are answered from the state before the block, which
    /// is what is durable; a transfer in the block stays pending until the write is flushed.
    /// Everything else (consensus messages, synced blocks, status questions, which could read
    /// the block before it is flushed) is set aside and handled after, in order.
    async fn admit_while<T>(&mut self, mut write: oneshot::Receiver<T>) -> Result<T, HaltError> {
        let mut inputs = self.inputs.take();
        let (mut admitted, mut closed) = (Ok(()), false);
        let done = loop {
            let room = admitted.is_ok() && !closed && self.deferred.len() < DEFERRED_MAX;
            let Some(receiver) = inputs.as_mut().filter(|_| room) else {
                break write.await;
            };
            tokio::select! {
                biased;
                done = &mut write => break done,
                input = receiver.recv() => match input {
                    Some(input) => admitted = self.handle_during_write(input).await,
                    // The run loop sees the closed channel too, once the write is done.
                    None => closed = true,
                },
            }
        };
        self.inputs = inputs;
        admitted?;
        // A write that panicked dropped its answer: the core's own bug, so the core panics.
        Ok(done.expect("the block write finished"))
    }

    /// One input received during a block's write (see `admit_while`).
    async fn handle_during_write(&mut self, input: CoreInput) -> Result<(), HaltError> {
        match input {
            CoreInput::Submit { transfer, reply } => {
                let outcome = self.submit(transfer, true).await?;
                let _ = reply.send(outcome);
            }
            CoreInput::GossipTransfers { transfers, reply } => {
                let mut any_new = false;
                for transfer in transfers {
                    any_new |= self.submit(transfer, false).await? == SubmitOutcome::Accepted;
                }
                let _ = reply.send(any_new);
            }
            CoreInput::Account { account, reply } => {
                let _ = reply.send(self.account_answer(&account));
            }
            CoreInput::Status { .. }
            | CoreInput::Consensus(_)
            | CoreInput::Synced { .. }
            | CoreInput::Proposal { .. } => self.deferred.push_back(input),
        }
        Ok(())
    }

    async fn apply_synced(
        &mut self,
        block: ChainBlock,
        certificate: CommitCertificate,
    ) -> Result<Result<(), String>, HaltError> {
        let height = block.0.header.height;
        if height <= self.head_height() {
            return Ok(Ok(()));
        }
        if height != self.head_height() + 1 {
            return Ok(Err(format!(
                "block {height} does not follow {}",
                self.head_height()
            )));
        }
        let parent = self.head.as_ref().map_or(Hash::ZERO, BlockHeader::hash);
        if block.0.header.parent != parent {
            return Ok(Err(format!("block {height} does not extend our chain")));
        }

        // A peer can pair a genuine certified header with other transfers: that is the peer's
        // fault, caught by the transfers root. With the genuine transfers, a block that still
        // fails to replay means our state is not the federation's, and the node must halt.
        if protocol::merkle::transfers_root(&block.0.transfers) != block.0.header.transfers_root {
            return Ok(Err(format!(
                "block {height} does not match its transfers root"
            )));
        }
        let valid = validate_block(&self.ledger, &self.genesis, self.head.as_ref(), &block.0)
            .map_err(|error| HaltError::ReplayMismatch {
                height,
                reason: error.to_string(),
            })?;
        self.validated.insert(block.hash(), valid);

        let actions = self.machine.handle(Input::Commit {
            value: block,
            certificate,
        });
        self.execute(actions).await?;
        if self.head_height() >= height {
            Ok(Ok(()))
        } else {
            Ok(Err(format!(
                "consensus did not accept the certificate for height {height}"
            )))
        }
    }

    async fn flush_outbox(&mut self) {
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(BATCH_MAX);
            let batch: Vec<_> = self.outbox.drain(..take).collect();
            let data = TransferBatch::of(&batch).encode();
            self.network
                .send(Command::Publish {
                    topic: Topic::Transfers,
                    data,
                })
                .await;
        }
    }

    /// Publishes the transfers next in line for a block once more.
    async fn regossip(&mut self) {
        let ledger = &self.ledger;
        let pending = self
            .mempool
            .candidates(BATCH_MAX, |sender| ledger.account(sender).next_sequence);
        if pending.is_empty() {
            return;
        }
        let signed: Vec<_> = pending.iter().map(|t| t.signed().clone()).collect();
        let data = TransferBatch::of(&signed).encode();
        let command = Command::Publish {
            topic: Topic::Transfers,
            data,
        };
        self.network.send(command).await;
    }

    fn publish_status(&self) {
        let peers = self.network.peers.borrow().len();
        let mut status = self
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status.height = self.head_height().to_string();
        status.block_hash = self.head.as_ref().map_or(Hash::ZERO, BlockHeader::hash);
        status.state_root = self.ledger.state_root();
        status.round = self.machine.round();
        status.mempool_size = self.mempool.len();
        status.peers = peers;
    }
}

/// The one thread that writes committed blocks, so that the core can keep admitting
/// transfers meanwhile. One long-lived thread rather than the blocking pool: sled allocates
/// in the writing thread's allocator arena, and writes spread over the pool's threads left a
/// node's resident memory three to four times higher.
struct BlockWriter {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl BlockWriter {
    /// Starts the thread; it ends when the writer is dropped.
    fn spawn() -> BlockWriter {
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name("block-writer".into())
            .spawn(move || queue.into_iter().for_each(|job| job()))
            .expect("the block writer thread starts");
        BlockWriter { jobs }
    }

    /// Runs `write` on the thread; its result arrives on the receiver.
    fn run<T: Send + 'static>(
        &self,
        write: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (answer, result) = oneshot::channel();
        let job = Box::new(move || {
            let _ = answer.send(write());
        });
        self.jobs
            .send(job)
            .expect("the block writer lives as long as the core");
        result
    }
}

/// Logs every message this node signs, one line each.
///
/// NOTE: the real-process tests parse these lines (`signed proposal …`, `signed prevote …`,
/// `signed precommit …`) to check that a restarted node never signs a conflicting message;
/// keep their shape.
fn log_signed(message: &SignedMessage<ChainBlock>) {
    let (kind, height, round, block) = match &message.message {
        Message::Proposal(proposal) => (
            "proposal",
            proposal.height,
            proposal.round,
            Some(proposal.value.hash()),
        ),
        Message::Vote(vote) => {
            let kind = match vote.kind {
                protocol::consensus::VoteKind::Prevote => "prevote",
                protocol::consensus::VoteKind::Precommit => "precommit",
            };
            (kind, vote.height, vote.round, vote.block_hash)
        }
    };
    let block = block.map_or_else(|| "nil".to_string(), |hash| hash.to_hex());
    tracing::info!("signed {kind} height={height} round={round} block={block}");
}

/// The consensus timestamp rules: a block is dated strictly after its parent, and not more
/// than `skew_ms` ahead of this validator's clock `now_ms`.
///
/// A re-proposed block keeps its original timestamp, which only ever lies further in the
/// past, so these rules never refuse a legitimate re-proposal.
pub fn timestamp_acceptable(timestamp_ms: u64, parent_ms: u64, now_ms: u64, skew_ms: u64) -> bool {
    timestamp_ms > parent_ms && timestamp_ms <= now_ms.saturating_add(skew_ms)
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::consensus::{CommitSignature, Params, TimeoutConfig};
    use protocol::genesis::Allocation;
    use protocol::{Decimals, SignedTransfer, Transfer, Validator};

    /// A core over a fresh database, one validator, and channels nobody reads.
    fn core(dir: &std::path::Path, payer: &SecretKey) -> Core {
        core_with_network(dir, payer).0
    }

    /// A core as [`core`], and what it asks of the network.
    fn core_with_network(
        dir: &std::path::Path,
        payer: &SecretKey,
    ) -> (Core, mpsc::Receiver<Command>) {
        let key = SecretKey::from_seed(&[1; 32]);
        let genesis = Genesis {
            network: "core-tests".into(),
            decimals: Decimals::new(2).unwrap(),
            min_fee: 1,
            fee_account: SecretKey::from_seed(&[9; 32]).public_key(),
            max_supply: 1_000_000,
            max_block_transfers: 10,
            max_block_bytes: 1 << 16,
            validators: vec![Validator {
                name: "v".into(),
                key: key.public_key(),
            }],
            allocations: vec![Allocation {
                account: payer.public_key(),
                balance: 1_000,
            }],
        };
        let validators = ValidatorSet::new(vec![key.public_key()]).unwrap();
        let machine = StateMachine::new(Params {
            network_id: genesis.network_id(),
            validators: validators.clone(),
            key: Some(key.clone()),
            timeouts: TimeoutConfig::default(),
        });
        let status = StatusSnapshot {
            network_id: genesis.network_id(),
            role: "validator",
            address: key.public_key(),
            height: "0".into(),
            block_hash: Hash::ZERO,
            state_root: Hash::ZERO,
            round: 0,
            mempool_size: 0,
            peers: 0,
            syncing_since: None,
        };
        let (commands, network) = mpsc::channel(64);
        let (_, peers) = watch::channel(Vec::new());
        let core = Core::new(CoreParts {
            ledger: Ledger::from_genesis(&genesis),
            genesis,
            validators,
            key,
            storage: Storage::open(dir, 1 << 20).unwrap(),
            head: None,
            machine,
            safety: None,
            network: NetworkHandle {
                commands,
                peers,
                local_peer_id: libp2p::PeerId::random(),
            },
            status: Arc::new(RwLock::new(status)),
            heads: watch::channel(0).0,
            mempool: (100, 10),
            empty_block_interval: Duration::from_millis(100),
            max_clock_skew: Duration::from_secs(5),
            misbehaviour: None,
            evidence: SharedEvidence::default(),
            signatures: Arc::new(SignatureCache::new(1000)),
        });
        (core, network)
    }

    /// A transfer of 10 units from `payer` with `sequence`, signed.
    fn payment(core: &Core, payer: &SecretKey, sequence: u64) -> VerifiedTransfer {
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        let body = Transfer::new(
            core.network_id,
            payer.public_key(),
            receiver,
            10,
            1,
            sequence,
            "",
        );
        SignedTransfer::sign(body, payer).into_verified().unwrap()
    }

    #[tokio::test]
    async fn a_proposal_includes_what_was_queued_when_it_fell_due() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let (first, second) = (payment(&core, &payer, 1), payment(&core, &payer, 2));
        let ids = [first.signed().id(), second.signed().id()];
        core.submit(first, true).await.unwrap();

        // The turn to propose comes with a submission still waiting in the input channel,
        // as it does right after a commit under load.
        let actions = core.machine.start(1);
        core.execute(actions).await.unwrap();
        assert_eq!(
            core.head_height(),
            0,
            "nothing is built before the queue is read"
        );
        let (inputs, queued) = mpsc::channel(4);
        let (reply, _answer) = oneshot::channel();
        inputs
            .send(CoreInput::Submit {
                transfer: second,
                reply,
            })
            .await
            .unwrap();
        core.inputs = Some(queued);
        core.build_after_queued().await.unwrap();

        // One validator: its own proposal commits at once.
        assert_eq!(core.head_height(), 1);
        for id in ids {
            let location = core.storage.transfer_location(&id).unwrap();
            assert!(
                location.is_some_and(|l| l.height == 1),
                "{id} is in block 1"
            );
        }
    }

    #[tokio::test]
    async fn consensus_messages_leave_at_once_after_the_waiting_transfers() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let (mut core, mut network) = core_with_network(dir.path(), &payer);
        core.submit(payment(&core, &payer, 1), true).await.unwrap();
        assert_eq!(core.outbox.len(), 1, "held for the flush ticker");

        // The flush ticker never runs here: whatever is published went out by itself.
        let actions = core.machine.start(1);
        core.execute(actions).await.unwrap();
        core.build_after_queued().await.unwrap();
        let mut topics = Vec::new();
        while let Ok(command) = network.try_recv() {
            if let Command::Publish { topic, .. } = command {
                topics.push(topic);
            }
        }
        assert_eq!(
            topics,
            [
                Topic::Transfers,
                Topic::Consensus,
                Topic::Consensus,
                Topic::Consensus
            ],
            "the transfer batch, then the proposal, prevote and precommit"
        );
        assert!(core.outbox.is_empty());
    }

    #[tokio::test]
    async fn submissions_are_answered_during_a_write_and_status_questions_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let (inputs, receiver) = mpsc::channel(4);
        core.inputs = Some(receiver);
        let transfer = payment(&core, &payer, 1);
        let id = transfer.signed().id();

        // A write that lasts until the wallet has its answer.
        let (finish, write) = oneshot::channel();
        let wallet = tokio::spawn(async move {
            let (reply, accepted) = oneshot::channel();
            inputs
                .send(CoreInput::Submit { transfer, reply })
                .await
                .unwrap();
            let (reply, mut status) = oneshot::channel();
            inputs.send(CoreInput::Status { id, reply }).await.unwrap();
            let outcome = accepted.await.unwrap();
            assert!(
                status.try_recv().is_err(),
                "no status before the write ends"
            );
            finish.send(true).unwrap();
            (outcome, inputs)
        });

        assert!(core.admit_while(write).await.unwrap(), "the write finished");
        let (outcome, _inputs) = wallet.await.unwrap();
        assert_eq!(outcome, SubmitOutcome::Accepted);
        assert_eq!(core.mempool.len(), 1);
        assert!(matches!(
            core.deferred.front(),
            Some(CoreInput::Status { .. })
        ));
    }

    #[tokio::test]
    async fn a_committed_transfer_submitted_again_is_reported_committed() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let transfer = payment(&core, &payer, 1);
        core.submit(transfer.clone(), true).await.unwrap();
        let actions = core.machine.start(1);
        core.execute(actions).await.unwrap();
        core.build_after_queued().await.unwrap();
        assert_eq!(core.head_height(), 1);

        let again = core.submit(transfer, true).await.unwrap();
        let committed = TransferStatus::Committed {
            height: 1,
            position: 0,
        };
        assert_eq!(again, SubmitOutcome::Duplicate(committed));
    }

    #[tokio::test]
    async fn a_certified_block_that_does_not_replay_halts_naming_its_height() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        let body = Transfer::new(core.network_id, payer.public_key(), receiver, 10, 1, 1, "");
        let transfer = SignedTransfer::sign(body, &payer).into_verified().unwrap();
        let context = BlockContext::after(None, core.key.public_key(), now_ms());
        let built = build_block(&core.ledger, &core.genesis, context, vec![transfer]);

        // The genuine transfers under a header that states another state root: what a
        // quorum would certify only if this node's state differed from the federation's.
        let mut block = built.block;
        block.header.state_root = Hash::digest(b"the federation's root");
        let certificate = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: block.hash(),
            signatures: vec![CommitSignature {
                validator: core.key.public_key(),
                signature: core.key.sign(b"not checked here: sync checked it"),
            }],
        };

        let error = core
            .apply_synced(ChainBlock(block), certificate)
            .await
            .unwrap_err();
        assert!(
            matches!(error, HaltError::ReplayMismatch { height: 1, .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("halting at height 1: the certified block does not replay: "),
            "{error}"
        );
        assert_eq!(core.storage.last_height().unwrap(), None, "nothing stored");
    }

    #[tokio::test]
    async fn transfers_waiting_for_a_missing_sequence_do_not_end_the_wait_for_transfers() {
        // The failing input: sequence 2 pending while 1 never came made the node commit empty
        // blocks back to back (23,850 heights in 20 s of the wallet API test).
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        let transfer = |sequence| {
            let body = Transfer::new(
                core.network_id,
                payer.public_key(),
                receiver,
                10,
                1,
                sequence,
                "",
            );
            SignedTransfer::sign(body, &payer).into_verified().unwrap()
        };
        let (second, first) = (transfer(2), transfer(1));
        assert!(core.should_wait_for_transfers(), "empty mempool");

        let outcome = core.submit(second, true).await.unwrap();
        assert_eq!(outcome, SubmitOutcome::Accepted);
        assert_eq!(core.mempool.len(), 1);
        assert!(!core.has_includable());
        assert!(core.should_wait_for_transfers(), "only a gap is pending");

        let outcome = core.submit(first, true).await.unwrap();
        assert_eq!(outcome, SubmitOutcome::Accepted);
        assert!(core.has_includable());
        assert!(
            !core.should_wait_for_transfers(),
            "sequence 1 can go in a block"
        );
    }

    /// An empty block at height 1 and its certificate, signed by the core's one validator.
    fn certified_first_block(core: &Core) -> (ChainBlock, CommitCertificate) {
        let context = BlockContext::after(None, core.key.public_key(), now_ms());
        let built = build_block(&core.ledger, &core.genesis, context, Vec::new());
        let block = ChainBlock(built.block);
        let bytes = protocol::consensus::message::precommit_signing_bytes(
            &core.network_id,
            1,
            0,
            Some(block.hash()),
        );
        let certificate = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: block.hash(),
            signatures: vec![CommitSignature {
                validator: core.key.public_key(),
                signature: core.key.sign(&bytes),
            }],
        };
        (block, certificate)
    }

    #[tokio::test]
    async fn a_commit_is_announced_on_the_heads_channel_once_stored() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let mut heads = core.heads.subscribe();
        let storage = core.storage.clone();
        let (block, certificate) = certified_first_block(&core);

        // A reader woken by the announcement finds the block stored and the status current,
        // with no polling interval in between.
        let reader = tokio::spawn(async move {
            heads.changed().await.unwrap();
            let height = *heads.borrow_and_update();
            (height, storage.last_height().unwrap())
        });
        core.machine.start(1);
        assert_eq!(core.apply_synced(block, certificate).await.unwrap(), Ok(()));
        let (announced, stored) = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the commit is announced")
            .unwrap();
        assert_eq!((announced, stored), (1, Some(1)));
        assert_eq!(core.status.read().unwrap().height, "1");
    }

    #[tokio::test]
    async fn a_failed_write_halts_naming_the_height_and_reports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let heads = core.heads.subscribe();
        let (block, certificate) = certified_first_block(&core);

        // The database refuses the write: here because something else already stored a
        // height 1 behind the core's back.
        let other = crate::storage::CommitWrite {
            height: 1,
            block_hash: Hash::digest(b"other"),
            block: b"other",
            certificate: b"other",
            accounts: Vec::new(),
            transfers: Vec::new(),
        };
        core.storage.commit(&other).unwrap();

        core.machine.start(1);
        let error = core.apply_synced(block, certificate).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "halting at height 1: storage failed: refusing to store height 1: the next height \
             to store is 2"
        );
        assert_eq!(core.head_height(), 0, "the failed commit is not applied");
        assert_eq!(core.status.read().unwrap().height, "0", "nor reported");
        assert!(!heads.has_changed().unwrap(), "nor announced");
    }

    #[tokio::test]
    async fn a_synced_block_with_other_transfers_is_the_peers_fault_not_a_halt() {
        let dir = tempfile::tempdir().unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let mut core = core(dir.path(), &payer);
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        let body = Transfer::new(core.network_id, payer.public_key(), receiver, 10, 1, 1, "");
        let transfer = SignedTransfer::sign(body, &payer).into_verified().unwrap();
        let context = BlockContext::after(None, core.key.public_key(), now_ms());
        let built = build_block(&core.ledger, &core.genesis, context, vec![transfer]);

        let mut block = built.block;
        block.transfers.clear();
        let certificate = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: block.hash(),
            signatures: Vec::new(),
        };
        let refused = core
            .apply_synced(ChainBlock(block), certificate)
            .await
            .unwrap();
        assert_eq!(
            refused,
            Err("block 1 does not match its transfers root".to_string())
        );
    }

    #[test]
    fn timestamps_strictly_increase_and_stay_near_our_clock() {
        let (parent, now, skew) = (1_000, 5_000, 2_000);
        assert!(timestamp_acceptable(1_001, parent, now, skew));
        assert!(timestamp_acceptable(7_000, parent, now, skew));
        assert!(
            !timestamp_acceptable(1_000, parent, now, skew),
            "equal to the parent's"
        );
        assert!(
            !timestamp_acceptable(999, parent, now, skew),
            "before the parent's"
        );
        assert!(
            !timestamp_acceptable(7_001, parent, now, skew),
            "too far ahead"
        );
        assert!(
            timestamp_acceptable(u64::MAX, 0, u64::MAX, 1),
            "no overflow at the edge"
        );
    }
}
