//! The Tendermint state machine of one validator (or of a full node following along).
//!
//! [`StateMachine::handle`] takes one [`Input`] and returns the [`Action`]s it causes, in the
//! order the caller must carry them out. Inside, every input is first recorded (a message
//! goes into the height's `HeightLog`, a verdict into the verdict table), then
//! `StateMachine::progress` re-checks the paper's `upon` rules until none fires. The rules
//! are conditions over everything received so far, so checking all of them after every input
//! is exactly their meaning, and the order in which messages arrive cannot matter.
//!
//! Each rule is one method named after what it does and labelled with the line numbers of
//! Algorithm 1 in "The latest gossip on BFT consensus" (arXiv:1807.04938); the paper's
//! variables map as `h_p` = `height`, `round_p` = `round`, `step_p` = `step`,
//! `lockedValue_p/lockedRound_p` = `locked`, `validValue_p/validRound_p` = `valid`, and
//! `-1` = `None`.
//!
//! Contracts with the caller:
//! - **Self-delivery is done here.** A message this machine signs is recorded in its own log
//!   before the `Broadcast` action is returned; delivering it back again is harmless (a
//!   duplicate) and not needed.
//! - **Persist before send.** Every `Broadcast` is preceded by a `Persist` of the safety
//!   state that already includes the broadcast message. The caller makes each `Persist`
//!   durable before carrying out any later action of the list.
//! - **Verdicts.** For every block it sees, the machine emits `RequestVerdict` once; the
//!   caller validates the block against the ledger (allowing a re-proposed block its original
//!   proposer and timestamp) and answers with `Input::Verdict`. Blocks this machine proposes
//!   itself count as valid.
//! - **Proposals.** When this validator proposes and has no valid value, the machine emits
//!   `BuildProposal` and waits for `Input::ProposalValue`.
//! - **Timeouts.** `ScheduleTimeout` asks for `Input::Timeout` after `duration_ms`; stale
//!   timeouts are ignored, so the caller never needs to cancel one.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::SecretKey;

use super::certificate::{CommitCertificate, CommitSignature};
use super::coverage::{Coverage, Rule};
use super::evidence::Equivocation;
use super::log::{HeightLog, Inserted};
use super::message::{Message, Proposal, SignedMessage, Step, Verified, Vote, VoteKind};
use super::timeouts::{TimeoutConfig, TimeoutKind};
use super::validators::ValidatorSet;
use super::{ConsensusValue, Height, Round};

/// The most equivocations the machine holds for its caller between two
/// [`StateMachine::take_evidence`] calls; older ones are dropped first.
pub const EVIDENCE_HELD_MAX: usize = 256;

/// A block together with the round it is associated with (the lock or the valid value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundValue<V> {
    /// The round in which a quorum prevoted `value`.
    pub round: Round,
    /// The block itself, kept in full because a later round may have to re-propose it.
    pub value: V,
}

/// What a validator must have on disk before anything it signed leaves the process; after a
/// crash, [`StateMachine::restore`] resumes from it without ever signing a conflicting
/// message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState<V> {
    /// The height being decided.
    pub height: Height,
    /// The current round.
    pub round: Round,
    /// The current step.
    pub step: Step,
    /// The locked block and round (paper: lockedValue, lockedRound).
    pub locked: Option<RoundValue<V>>,
    /// The valid block and round (paper: validValue, validRound).
    pub valid: Option<RoundValue<V>>,
    /// Everything this validator signed in the current round, so a restart re-sends the same
    /// messages instead of signing different ones.
    pub sent: Vec<SignedMessage<V>>,
}

/// A request to be woken up: deliver `Input::Timeout { kind, height, round }` after
/// `duration_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// Which timeout.
    pub kind: TimeoutKind,
    /// The height it belongs to.
    pub height: Height,
    /// The round it belongs to.
    pub round: Round,
    /// How long to wait, in milliseconds.
    pub duration_ms: u64,
}

/// Something that happened, for the state machine.
#[derive(Debug, Clone)]
pub enum Input<V> {
    /// A proposal or vote whose signature was checked by [`SignedMessage::verify`].
    Message(Verified<SignedMessage<V>>),
    /// A timeout the machine asked for has expired.
    Timeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// Its height.
        height: Height,
        /// Its round.
        round: Round,
    },
    /// The caller's verdict on a block the machine asked about.
    Verdict {
        /// The height the block was proposed at.
        height: Height,
        /// The block's hash.
        block_hash: Hash,
        /// Whether the block passes the ledger rules.
        valid: bool,
    },
    /// The block to propose, answering `Action::BuildProposal`.
    ProposalValue {
        /// The height it was asked for.
        height: Height,
        /// The round it was asked for.
        round: Round,
        /// The block.
        value: V,
    },
    /// A block and its commit certificate fetched by block sync, for a validator that missed
    /// the votes. The machine verifies the certificate itself and ignores it if it fails or
    /// is not for the current height. It asks no verdict: the caller must have applied the
    /// block with its ledger rules first, and treat a failure as a fatal fault of its own
    /// state, since a quorum certified the block.
    Commit {
        /// The committed block.
        value: V,
        /// Its certificate.
        certificate: CommitCertificate,
    },
}

/// Something the caller must do, in the order given.
#[derive(Debug, Clone)]
pub enum Action<V> {
    /// Make this state durable before carrying out any later action.
    Persist(SafetyState<V>),
    /// Send this message to every other validator (it is already recorded here).
    Broadcast(SignedMessage<V>),
    /// Deliver the matching `Input::Timeout` after the given delay.
    ScheduleTimeout(Timeout),
    /// This validator proposes in (height, round): answer with `Input::ProposalValue`.
    BuildProposal {
        /// The height to build for.
        height: Height,
        /// The round to build for.
        round: Round,
    },
    /// Validate this block and answer with `Input::Verdict`.
    RequestVerdict {
        /// The height it was proposed at.
        height: Height,
        /// The block.
        value: V,
    },
    /// The block is committed at its certificate's height; the next height has started.
    Decide {
        /// The committed block.
        value: V,
        /// The proof of commit, to store with the block.
        certificate: CommitCertificate,
    },
}

/// Deliberately broken rules, for tests that prove the simulator can catch a safety bug.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Prevote any valid proposal, ignoring the lock (breaks L23 and L29).
    IgnoreLock,
    /// Count a repeated identical vote again, so one validator can fill a quorum twice.
    CountDuplicateVotes,
}

/// Rules that fire only once per round ("for the first time" in the paper).
#[derive(Debug, Clone, Copy, Default)]
struct FiredThisRound {
    prevote_timeout: bool,
    polka: bool,
    precommit_timeout: bool,
}

/// Who this machine is and how it talks.
#[derive(Debug, Clone)]
pub struct Params {
    /// The network id every signature is bound to.
    pub network_id: Hash,
    /// The genesis validators.
    pub validators: ValidatorSet,
    /// This validator's key; `None` for a full node, which follows votes and decides but
    /// never signs, proposes or persists.
    pub key: Option<SecretKey>,
    /// Timeout durations.
    pub timeouts: TimeoutConfig,
}

/// One validator's Tendermint state machine. See the module documentation.
#[derive(Debug)]
pub struct StateMachine<V> {
    params: Params,
    /// This validator's genesis position, if it is one and has its key.
    position: Option<usize>,
    height: Height,
    round: Round,
    step: Step,
    locked: Option<RoundValue<V>>,
    valid: Option<RoundValue<V>>,
    sent: Vec<SignedMessage<V>>,
    log: HeightLog<V>,
    /// Messages for the next height, kept so that a validator a little behind does not lose
    /// the votes of a height it is about to enter.
    next_log: HeightLog<V>,
    verdicts: HashMap<Hash, bool>,
    awaiting_value: bool,
    fired: FiredThisRound,
    started: bool,
    dirty: bool,
    coverage: Coverage,
    /// Equivocations seen and not yet taken by the caller, newest last, at most
    /// [`EVIDENCE_HELD_MAX`].
    evidence: VecDeque<Equivocation>,
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

impl<V: ConsensusValue> StateMachine<V> {
    /// A machine that does nothing until [`start`](Self::start) or
    /// [`restore`](Self::restore).
    pub fn new(params: Params) -> StateMachine<V> {
        let position = params.key.as_ref().and_then(|key| {
            let public = key.public_key();
            params.validators.position(&public)
        });
        let n = params.validators.len();
        StateMachine {
            params,
            position,
            height: 0,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            sent: vec![],
            log: HeightLog::new(0, n, 1),
            next_log: HeightLog::new(1, n, 1),
            verdicts: HashMap::new(),
            awaiting_value: false,
            fired: FiredThisRound::default(),
            started: false,
            dirty: false,
            coverage: Coverage::default(),
            evidence: VecDeque::new(),
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    /// Turns on one deliberately broken rule in this instance only.
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
        self.apply_fault_to_logs();
    }

    /// Starts deciding `height` from round 0 (paper L10), with no lock: for a fresh node, or
    /// after a restart whose safety state is for a height already committed.
    pub fn start(&mut self, height: Height) -> Vec<Action<V>> {
        let mut out = vec![];
        self.enter_height(height);
        self.start_round(0, &mut out);
        self.progress(&mut out);
        self.flush(&mut out);
        out
    }

    /// Resumes from the safety state persisted before a crash, re-sending what it had sent
    /// in that round and waking itself up for its step.
    pub fn restore(&mut self, state: SafetyState<V>) -> Vec<Action<V>> {
        let mut out = vec![];
        self.enter_height(state.height);
        self.round = state.round;
        self.step = state.step;
        self.locked = state.locked;
        self.valid = state.valid;
        self.sent.clear();
        self.fired = FiredThisRound::default();
        self.awaiting_value = false;
        self.log.set_window(self.round.saturating_add(1));

        // Re-record and re-send this round's own messages: peers may never have got them.
        let own = |m: &SignedMessage<V>| Some(m.signer) == self.own_key();
        let sent: Vec<_> = state.sent.into_iter().filter(own).collect();
        for signed in sent {
            self.record_own(signed.clone());
            out.push(Action::Broadcast(signed));
        }

        // Wake up in the step we were in. A prevote or precommit timeout scheduled before its
        // quorum is seen only moves to nil sooner, which safety allows.
        let proposed = self
            .sent
            .iter()
            .any(|m| matches!(m.message, Message::Proposal(_)));
        match self.step {
            Step::Propose if self.is_proposer() && !proposed => self.propose_or_build(&mut out),
            Step::Propose if !self.is_proposer() => self.schedule(TimeoutKind::Propose, &mut out),
            Step::Propose => {}
            Step::Prevote => self.schedule(TimeoutKind::Prevote, &mut out),
            Step::Precommit => self.schedule(TimeoutKind::Precommit, &mut out),
        }

        self.progress(&mut out);
        self.flush(&mut out);
        out
    }

    /// Feeds one input and returns what the caller must do, in order.
    pub fn handle(&mut self, input: Input<V>) -> Vec<Action<V>> {
        let mut out = vec![];
        if !self.started {
            return out;
        }

        match input {
            Input::Message(message) => self.on_message(message),
            Input::Timeout {
                kind,
                height,
                round,
            } => self.on_timeout(kind, height, round, &mut out),
            Input::Verdict {
                height,
                block_hash,
                valid,
            } => self.on_verdict(height, block_hash, valid),
            Input::ProposalValue {
                height,
                round,
                value,
            } => self.on_proposal_value(height, round, value, &mut out),
            Input::Commit { value, certificate } => self.on_commit(value, certificate, &mut out),
        }

        self.progress(&mut out);
        self.flush(&mut out);
        out
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The lock, if any.
    pub fn locked(&self) -> Option<&RoundValue<V>> {
        self.locked.as_ref()
    }

    /// The current safety state (what the last `Persist` carried, or newer).
    pub fn safety_state(&self) -> SafetyState<V> {
        SafetyState {
            height: self.height,
            round: self.round,
            step: self.step,
            locked: self.locked.clone(),
            valid: self.valid.clone(),
            sent: self.sent.clone(),
        }
    }

    /// How often each rule fired in this instance.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// The equivocations seen since the last call, oldest first: proof of faulty
    /// validators, for the caller to report and keep. Between two calls the machine holds at
    /// most [`EVIDENCE_HELD_MAX`] of them, dropping the oldest.
    pub fn take_evidence(&mut self) -> Vec<Equivocation> {
        self.collect_evidence();
        self.evidence.drain(..).collect()
    }

    /// Moves the logs' fresh evidence into the machine's bounded queue.
    fn collect_evidence(&mut self) {
        let fresh = self.log.take_evidence();
        let fresh_next = self.next_log.take_evidence();
        for evidence in fresh.into_iter().chain(fresh_next) {
            if self.evidence.len() == EVIDENCE_HELD_MAX {
                self.evidence.pop_front();
            }
            self.evidence.push_back(evidence);
        }
    }

    /// The prevotes that justify the valid value: the polka of its round, as received.
    ///
    /// The caller's gossip re-sends them (Tendermint's proof of lock): a validator that was
    /// down or partitioned in that round cannot otherwise accept the valid value when it is
    /// re-proposed, and a lock held by others would then stall the height.
    pub fn valid_polka(&self) -> Vec<Verified<SignedMessage<V>>> {
        let Some(valid) = &self.valid else {
            return vec![];
        };
        let Some(votes) = self.log.round(valid.round) else {
            return vec![];
        };
        let block_hash = valid.value.hash();
        let validators = &self.params.validators;
        votes
            .prevotes
            .signers_for(block_hash)
            .into_iter()
            .map(|(position, signature)| {
                let vote = Vote {
                    kind: VoteKind::Prevote,
                    height: self.height,
                    round: valid.round,
                    block_hash: Some(block_hash),
                };
                let signer = *validators
                    .get(position)
                    .expect("positions come from the set");
                // The same bytes and signature that were verified when the vote arrived.
                let signed = SignedMessage {
                    message: Message::Vote(vote),
                    signer,
                    signature,
                };
                Verified::signed_here(signed)
            })
            .collect()
    }

    /// The most messages held for one validator, over the current and next height.
    pub fn messages_held_max(&self) -> usize {
        self.log.held_max() + self.next_log.held_max()
    }

    /// The bound `messages_held_max` never exceeds; it depends only on this machine's own
    /// round, never on what peers send.
    pub fn messages_held_bound(&self) -> usize {
        self.log.held_bound() + self.next_log.held_bound()
    }

    fn own_key(&self) -> Option<crate::keys::PublicKey> {
        self.position
            .and_then(|position| self.params.validators.get(position).copied())
    }

    fn is_proposer(&self) -> bool {
        let proposer = self
            .params
            .validators
            .proposer_position(self.height, self.round);
        self.position == Some(proposer)
    }

    fn quorum(&self) -> usize {
        self.params.validators.quorum()
    }

    fn enter_height(&mut self, height: Height) {
        let n = self.params.validators.len();
        let next = height.saturating_add(1);

        // The evidence of the height ending outlives its log.
        self.collect_evidence();

        // Messages received early for this height were kept in `next_log`; keep them.
        if self.next_log.height() == height {
            self.log = std::mem::replace(&mut self.next_log, HeightLog::new(next, n, 1));
        } else {
            self.log = HeightLog::new(height, n, 1);
            self.next_log = HeightLog::new(next, n, 1);
        }
        self.apply_fault_to_logs();

        // L53: a new height starts with no lock, no valid value and an empty message log.
        self.height = height;
        self.locked = None;
        self.valid = None;
        self.verdicts.clear();
        self.started = true;
        self.dirty = true;
    }

    /// L11-21: StartRound(round).
    fn start_round(&mut self, round: Round, out: &mut Vec<Action<V>>) {
        // L12-13.
        self.round = round;
        self.step = Step::Propose;
        self.sent.clear();
        self.fired = FiredThisRound::default();
        self.awaiting_value = false;
        self.dirty = true;
        self.log.set_window(round.saturating_add(1));
        self.coverage.hit(Rule::StartRound);

        // L14-21.
        if self.is_proposer() {
            self.propose_or_build(out);
        } else {
            self.schedule(TimeoutKind::Propose, out);
        }
    }

    /// L15-19: propose the valid value if there is one, otherwise ask the caller for a block.
    fn propose_or_build(&mut self, out: &mut Vec<Action<V>>) {
        if let Some(valid) = self.valid.clone() {
            self.coverage.hit(Rule::ProposeValidValue);
            self.propose(valid.value, Some(valid.round), out);
        } else {
            self.awaiting_value = true;
            out.push(Action::BuildProposal {
                height: self.height,
                round: self.round,
            });
        }
    }

    /// L19: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩.
    fn propose(&mut self, value: V, valid_round: Option<Round>, out: &mut Vec<Action<V>>) {
        // Our own block, or one we prevoted valid before: no need to ask the caller again.
        self.verdicts.insert(value.hash(), true);
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            value,
            valid_round,
        };
        self.sign_and_send(Message::Proposal(proposal), out);
    }

    fn vote(&mut self, kind: VoteKind, block_hash: Option<Hash>, out: &mut Vec<Action<V>>) {
        let vote = Vote {
            kind,
            height: self.height,
            round: self.round,
            block_hash,
        };
        self.sign_and_send(Message::Vote(vote), out);
    }

    /// Signs, records locally, persists, then broadcasts. A full node signs nothing.
    fn sign_and_send(&mut self, message: Message<V>, out: &mut Vec<Action<V>>) {
        let Some(key) = &self.params.key else { return };
        if self.position.is_none() {
            return;
        }

        let signed = SignedMessage::sign(&self.params.network_id, key, message);
        self.record_own(signed.clone());

        // Durable before visible: the persisted state already contains this message.
        out.push(Action::Persist(self.safety_state()));
        self.dirty = false;
        out.push(Action::Broadcast(signed));
    }

    fn record_own(&mut self, signed: SignedMessage<V>) {
        let position = self.position.expect("only a validator signs");
        self.sent.push(signed.clone());
        self.log.insert(Verified::signed_here(signed), position);
    }

    fn schedule(&mut self, kind: TimeoutKind, out: &mut Vec<Action<V>>) {
        let duration_ms = self.params.timeouts.duration_ms(kind, self.round);
        let timeout = Timeout {
            kind,
            height: self.height,
            round: self.round,
            duration_ms,
        };
        out.push(Action::ScheduleTimeout(timeout));
    }

    /// Persists state changes that no signed message carried out yet (a new round, a new
    /// valid value), so a restart resumes from them.
    fn flush(&mut self, out: &mut Vec<Action<V>>) {
        if self.dirty && self.position.is_some() {
            out.push(Action::Persist(self.safety_state()));
        }
        self.dirty = false;
    }

    fn on_message(&mut self, message: Verified<SignedMessage<V>>) {
        let Some(position) = self.params.validators.position(&message.signer) else {
            // Unreachable through `verify`, which rejects unknown signers; ignore regardless.
            return;
        };

        // Older heights are decided; heights beyond the next are for block sync to handle.
        // Noticing them is the caller's part, since it sees every message before the machine
        // (and the node drops far-future ones unverified): the node's `inbound` nudges its sync
        // task, the simulator's `sync_on_height_gap` sends the missing block.
        let height = message.message.height();
        let inserted = if height == self.height {
            self.log.insert(message, position)
        } else if Some(height) == self.height.checked_add(1) {
            self.next_log.insert(message, position)
        } else {
            return;
        };

        if inserted == Inserted::Equivocation {
            self.coverage.hit(Rule::Equivocation);
            self.collect_evidence();
        }
    }

    /// L57-67: OnTimeoutPropose, OnTimeoutPrevote, OnTimeoutPrecommit.
    fn on_timeout(
        &mut self,
        kind: TimeoutKind,
        height: Height,
        round: Round,
        out: &mut Vec<Action<V>>,
    ) {
        if height != self.height || round != self.round {
            return;
        }

        match kind {
            // L57-60.
            TimeoutKind::Propose if self.step == Step::Propose => {
                self.coverage.hit(Rule::TimeoutPropose);
                self.step = Step::Prevote;
                self.vote(VoteKind::Prevote, None, out);
            }
            // L61-64.
            TimeoutKind::Prevote if self.step == Step::Prevote => {
                self.coverage.hit(Rule::TimeoutPrevote);
                self.step = Step::Precommit;
                self.vote(VoteKind::Precommit, None, out);
            }
            // L65-67.
            TimeoutKind::Precommit => {
                self.coverage.hit(Rule::TimeoutPrecommit);
                self.start_round(self.round.saturating_add(1), out);
            }
            _ => {}
        }
    }

    fn on_verdict(&mut self, height: Height, block_hash: Hash, valid: bool) {
        // Only blocks of this height that some proposal carried, so the table stays bounded.
        if height == self.height && self.log.value(&block_hash).is_some() {
            self.verdicts.insert(block_hash, valid);
        }
    }

    /// L18: getValue() returns.
    fn on_proposal_value(
        &mut self,
        height: Height,
        round: Round,
        value: V,
        out: &mut Vec<Action<V>>,
    ) {
        let current = height == self.height && round == self.round;
        if !current || self.step != Step::Propose || !self.awaiting_value {
            return;
        }
        self.awaiting_value = false;
        self.coverage.hit(Rule::ProposeNewValue);
        self.propose(value, None, out);
    }

    /// A synced block is decided on its certificate alone, without a verdict: a quorum
    /// includes an honest validator that found it valid. The caller applies it with the
    /// ledger rules before handing it in and treats a failure as fatal (the node halts with
    /// `ReplayMismatch`, see `a_certified_block_that_does_not_replay_halts_naming_its_height`
    /// in `node/src/core.rs`).
    fn on_commit(&mut self, value: V, certificate: CommitCertificate, out: &mut Vec<Action<V>>) {
        let for_us = certificate.height == self.height && certificate.block_hash == value.hash();
        let validators = &self.params.validators;
        if !for_us
            || certificate
                .verify(&self.params.network_id, validators)
                .is_err()
        {
            return;
        }
        self.coverage.hit(Rule::CommitFromCertificate);
        self.decide(value, certificate, out);
    }

    /// Re-checks every `upon` rule until none fires.
    fn progress(&mut self, out: &mut Vec<Action<V>>) {
        loop {
            self.request_verdicts(out);
            let fired = self.upon_precommit_quorum_for_block(out)
                || self.upon_messages_from_higher_round(out)
                || self.upon_fresh_proposal(out)
                || self.upon_reproposal(out)
                || self.upon_prevote_quorum_for_anything(out)
                || self.upon_prevote_quorum_for_proposal(out)
                || self.upon_prevote_quorum_for_nil(out)
                || self.upon_precommit_quorum_for_anything(out);
            if !fired {
                return;
            }
        }
    }

    fn request_verdicts(&mut self, out: &mut Vec<Action<V>>) {
        for block_hash in self.log.take_fresh_values() {
            if self.verdicts.contains_key(&block_hash) {
                continue;
            }
            let value = self
                .log
                .value(&block_hash)
                .expect("fresh values are stored")
                .clone();
            out.push(Action::RequestVerdict {
                height: self.height,
                value,
            });
        }
    }

    /// L49-54: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ and 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while
    /// decision_p[h_p] = nil: if valid(v), decide v and start the next height.
    ///
    /// The block may come from a proposal of any round of this height: a hash names one
    /// block, so which proposal carried it does not matter, and a validator that missed
    /// round r's proposal but saw the block re-proposed later still decides.
    fn upon_precommit_quorum_for_block(&mut self, out: &mut Vec<Action<V>>) -> bool {
        let quorum = self.quorum();
        let decided = self.log.rounds().find_map(|(round, votes)| {
            let block_hash = votes.precommits.block_with(quorum)?;
            let valid = self.verdicts.get(&block_hash) == Some(&true);
            let value = self.log.value(&block_hash).filter(|_| valid)?;
            Some((
                round,
                block_hash,
                value.clone(),
                votes.precommits.signers_for(block_hash),
            ))
        });
        let Some((round, block_hash, value, signers)) = decided else {
            return false;
        };

        let validators = &self.params.validators;
        let signatures = signers
            .into_iter()
            .map(|(position, signature)| CommitSignature {
                validator: *validators
                    .get(position)
                    .expect("positions come from the set"),
                signature,
            })
            .collect();
        let certificate = CommitCertificate {
            height: self.height,
            round,
            block_hash,
            signatures,
        };
        self.decide(value, certificate, out);
        true
    }

    /// L51-54: record the decision, then move to the next height at round 0.
    fn decide(&mut self, value: V, certificate: CommitCertificate, out: &mut Vec<Action<V>>) {
        self.coverage.hit(Rule::Decide);
        out.push(Action::Decide { value, certificate });
        self.enter_height(self.height.saturating_add(1));
        self.start_round(0, out);
    }

    /// L55-56: upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p: StartRound(round).
    fn upon_messages_from_higher_round(&mut self, out: &mut Vec<Action<V>>) -> bool {
        let threshold = self.params.validators.skip_threshold();
        let Some(target) = self.log.skip_target(threshold, self.round) else {
            return false;
        };
        self.coverage.hit(Rule::RoundSkip);
        self.start_round(target, out);
        true
    }

    /// L22-27: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p) while
    /// step_p = propose.
    fn upon_fresh_proposal(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(proposal) = self.log.round(self.round).and_then(|r| r.proposals.first()) else {
            return false;
        };
        if proposal.valid_round.is_some() {
            return false;
        }
        let block_hash = proposal.block_hash;
        let Some(&valid) = self.verdicts.get(&block_hash) else {
            return false; // wait for the caller's verdict
        };

        // L23: valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v).
        let lock_allows = self.ignores_lock()
            || self
                .locked
                .as_ref()
                .is_none_or(|lock| lock.value.hash() == block_hash);
        self.step = Step::Prevote; // L27
        if valid && lock_allows {
            self.coverage.hit(Rule::PrevoteProposal);
            self.vote(VoteKind::Prevote, Some(block_hash), out); // L24
        } else {
            self.coverage.hit(Rule::PrevoteNilOnProposal);
            self.vote(VoteKind::Prevote, None, out); // L26
        }
        true
    }

    /// L28-33: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) and 2f+1
    /// ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p).
    fn upon_reproposal(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(proposal) = self.log.round(self.round).and_then(|r| r.proposals.first()) else {
            return false;
        };
        let Some(valid_round) = proposal.valid_round.filter(|vr| *vr < self.round) else {
            return false;
        };
        let block_hash = proposal.block_hash;
        let polka = self
            .log
            .round(valid_round)
            .map_or(0, |r| r.prevotes.count_for(Some(block_hash)));
        if polka < self.quorum() {
            return false;
        }
        let Some(&valid) = self.verdicts.get(&block_hash) else {
            return false; // wait for the caller's verdict
        };

        // L29: valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v).
        let locked_elsewhere = self
            .locked
            .as_ref()
            .filter(|lock| lock.value.hash() != block_hash);
        let lock_allows =
            self.ignores_lock() || locked_elsewhere.is_none_or(|lock| lock.round <= valid_round);
        self.step = Step::Prevote; // L33
        if valid && lock_allows {
            if locked_elsewhere.is_some() {
                self.coverage.hit(Rule::UnlockThroughValidRound);
            }
            self.coverage.hit(Rule::PrevoteReproposal);
            self.vote(VoteKind::Prevote, Some(block_hash), out); // L30
        } else {
            self.coverage.hit(Rule::PrevoteNilOnReproposal);
            self.vote(VoteKind::Prevote, None, out); // L32
        }
        true
    }

    /// L34-35: upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the first
    /// time: schedule OnTimeoutPrevote.
    fn upon_prevote_quorum_for_anything(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.step != Step::Prevote || self.fired.prevote_timeout {
            return false;
        }
        let total = self.log.round(self.round).map_or(0, |r| r.prevotes.total());
        if total < self.quorum() {
            return false;
        }
        self.fired.prevote_timeout = true;
        self.coverage.hit(Rule::ScheduleTimeoutPrevote);
        self.schedule(TimeoutKind::Prevote, out);
        true
    }

    /// L36-43: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) and 2f+1
    /// ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote for the first time.
    fn upon_prevote_quorum_for_proposal(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.step < Step::Prevote || self.fired.polka {
            return false;
        }
        let Some(votes) = self.log.round(self.round) else {
            return false;
        };
        let Some(block_hash) = votes.prevotes.block_with(self.quorum()) else {
            return false;
        };
        let proposed = votes.proposals.iter().any(|p| p.block_hash == block_hash);
        if !proposed || self.verdicts.get(&block_hash) != Some(&true) {
            return false;
        }
        let value = self
            .log
            .value(&block_hash)
            .expect("proposed blocks are stored")
            .clone();
        self.fired.polka = true;

        // L42-43, done first so that the state persisted with the precommit includes it.
        self.coverage.hit(Rule::UpdateValidValue);
        self.valid = Some(RoundValue {
            round: self.round,
            value: value.clone(),
        });
        self.dirty = true;

        // L37-41.
        if self.step == Step::Prevote {
            self.coverage.hit(Rule::Lock);
            self.locked = Some(RoundValue {
                round: self.round,
                value,
            });
            self.step = Step::Precommit;
            self.vote(VoteKind::Precommit, Some(block_hash), out);
        }
        true
    }

    /// L44-46: upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote.
    fn upon_prevote_quorum_for_nil(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.step != Step::Prevote {
            return false;
        }
        let nil = self
            .log
            .round(self.round)
            .map_or(0, |r| r.prevotes.count_for(None));
        if nil < self.quorum() {
            return false;
        }
        self.coverage.hit(Rule::PrecommitNil);
        self.step = Step::Precommit;
        self.vote(VoteKind::Precommit, None, out);
        true
    }

    /// L47-48: upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time: schedule
    /// OnTimeoutPrecommit.
    fn upon_precommit_quorum_for_anything(&mut self, out: &mut Vec<Action<V>>) -> bool {
        if self.fired.precommit_timeout {
            return false;
        }
        let total = self
            .log
            .round(self.round)
            .map_or(0, |r| r.precommits.total());
        if total < self.quorum() {
            return false;
        }
        self.fired.precommit_timeout = true;
        self.coverage.hit(Rule::ScheduleTimeoutPrecommit);
        self.schedule(TimeoutKind::Precommit, out);
        true
    }

    #[cfg(feature = "fault-injection")]
    fn ignores_lock(&self) -> bool {
        self.fault == Some(Fault::IgnoreLock)
    }

    #[cfg(not(feature = "fault-injection"))]
    fn ignores_lock(&self) -> bool {
        false
    }

    #[cfg(feature = "fault-injection")]
    fn apply_fault_to_logs(&mut self) {
        let on = self.fault == Some(Fault::CountDuplicateVotes);
        self.log.set_count_duplicates(on);
        self.next_log.set_count_duplicates(on);
    }

    #[cfg(not(feature = "fault-injection"))]
    fn apply_fault_to_logs(&mut self) {}
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::consensus::test_support::{TestValue, validators_and_keys};

    const NETWORK: Hash = Hash([7; 32]);

    /// Validators wired together by a FIFO queue that delivers everything, unless told to
    /// drop what some validators send. Verdicts say every block is valid except `invalid`.
    struct Cluster {
        machines: Vec<StateMachine<TestValue>>,
        queue: VecDeque<(usize, Input<TestValue>)>,
        muted: Vec<bool>,
        decided: Vec<Vec<(TestValue, CommitCertificate)>>,
        timeouts: Vec<Vec<Timeout>>,
        actions: Vec<Vec<Action<TestValue>>>,
        invalid: Option<TestValue>,
        validators: ValidatorSet,
    }

    impl Cluster {
        fn new(n: u8) -> Cluster {
            let (validators, keys) = validators_and_keys(n);
            let machines = keys
                .into_iter()
                .map(|key| {
                    let params = Params {
                        network_id: NETWORK,
                        validators: validators.clone(),
                        key: Some(key),
                        timeouts: TimeoutConfig::default(),
                    };
                    StateMachine::new(params)
                })
                .collect();
            let n = usize::from(n);
            Cluster {
                machines,
                queue: VecDeque::new(),
                muted: vec![false; n],
                decided: vec![vec![]; n],
                timeouts: vec![vec![]; n],
                actions: vec![vec![]; n],
                invalid: None,
                validators,
            }
        }

        fn start(&mut self, height: Height) {
            for index in 0..self.machines.len() {
                let actions = self.machines[index].start(height);
                self.carry_out(index, actions);
            }
            self.run();
        }

        fn run(&mut self) {
            while let Some((index, input)) = self.queue.pop_front() {
                let actions = self.machines[index].handle(input);
                self.carry_out(index, actions);
            }
        }

        fn fire_timeouts(&mut self, kind: TimeoutKind) {
            for index in 0..self.machines.len() {
                let due: Vec<Timeout> = self.timeouts[index]
                    .iter()
                    .filter(|t| t.kind == kind)
                    .copied()
                    .collect();
                self.timeouts[index].retain(|t| t.kind != kind);
                for t in due {
                    let input = Input::Timeout {
                        kind,
                        height: t.height,
                        round: t.round,
                    };
                    self.queue.push_back((index, input));
                }
            }
            self.run();
        }

        fn carry_out(&mut self, index: usize, actions: Vec<Action<TestValue>>) {
            for action in actions {
                self.actions[index].push(action.clone());
                match action {
                    Action::Broadcast(signed) => {
                        if self.muted[index] {
                            continue;
                        }
                        let verified = signed
                            .verify(&NETWORK, &self.validators)
                            .expect("honest messages verify");
                        for to in 0..self.machines.len() {
                            if to != index {
                                let input = Input::Message(verified.clone());
                                self.queue.push_back((to, input));
                            }
                        }
                    }
                    Action::ScheduleTimeout(timeout) => self.timeouts[index].push(timeout),
                    // Heights after the first get no block, so a run ends after one decision.
                    Action::BuildProposal { height, round } if height == 1 => {
                        let value = TestValue(height * 100 + u64::from(round));
                        let input = Input::ProposalValue {
                            height,
                            round,
                            value,
                        };
                        self.queue.push_back((index, input));
                    }
                    Action::RequestVerdict { height, value } => {
                        let valid = Some(value) != self.invalid;
                        let block_hash = value.hash();
                        let input = Input::Verdict {
                            height,
                            block_hash,
                            valid,
                        };
                        self.queue.push_back((index, input));
                    }
                    Action::Decide { value, certificate } => {
                        self.decided[index].push((value, certificate))
                    }
                    Action::Persist(_) | Action::BuildProposal { .. } => {}
                }
            }
        }
    }

    #[test]
    fn four_validators_decide_the_round_zero_proposal_with_a_valid_certificate() {
        let mut cluster = Cluster::new(4);
        cluster.start(1);

        for decided in &cluster.decided {
            let (value, certificate) = &decided[0];
            assert_eq!(
                *value,
                TestValue(100),
                "the proposer's block for height 1 round 0"
            );
            assert_eq!((certificate.height, certificate.round), (1, 0));
            assert_eq!(certificate.verify(&NETWORK, &cluster.validators), Ok(()));
        }
        assert!(cluster.machines.iter().all(|m| m.height() == 2));
    }

    #[test]
    fn every_broadcast_is_preceded_by_a_persist_that_contains_it() {
        let mut cluster = Cluster::new(4);
        cluster.start(1);

        for actions in &cluster.actions {
            let mut last_persisted: Option<&SafetyState<TestValue>> = None;
            for action in actions {
                match action {
                    Action::Persist(state) => last_persisted = Some(state),
                    Action::Broadcast(signed) => {
                        let state = last_persisted.expect("a persist comes first");
                        assert!(state.sent.contains(signed));
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn a_silent_proposer_costs_a_round_and_the_next_proposer_decides() {
        let mut cluster = Cluster::new(4);
        cluster.muted[1] = true; // the proposer of height 1, round 0
        cluster.start(1);
        assert!(cluster.decided.iter().all(Vec::is_empty));

        cluster.fire_timeouts(TimeoutKind::Propose);
        cluster.fire_timeouts(TimeoutKind::Precommit);

        for index in [0, 2, 3] {
            let (value, certificate) = &cluster.decided[index][0];
            assert_eq!((*value, certificate.round), (TestValue(101), 1));
        }
        assert_eq!(
            cluster.machines[0].coverage().count(Rule::TimeoutPropose),
            1
        );
        assert_eq!(cluster.machines[0].coverage().count(Rule::PrecommitNil), 1);
    }

    #[test]
    fn an_invalid_block_gets_nil_prevotes_and_is_never_decided() {
        let mut cluster = Cluster::new(4);
        cluster.invalid = Some(TestValue(100));
        cluster.start(1);
        assert!(cluster.decided.iter().all(Vec::is_empty));

        cluster.fire_timeouts(TimeoutKind::Precommit);
        assert!(cluster.decided.iter().all(|d| d[0].0 == TestValue(101)));
    }

    #[test]
    fn a_locked_validator_prevotes_nil_on_a_different_fresh_block() {
        let (validators, keys) = validators_and_keys(4);
        let params = |key: &SecretKey| Params {
            network_id: NETWORK,
            validators: validators.clone(),
            key: Some(key.clone()),
            timeouts: TimeoutConfig::default(),
        };
        let mut machine = StateMachine::<TestValue>::new(params(&keys[0]));
        machine.start(1);
        let deliver = |machine: &mut StateMachine<TestValue>, key: &SecretKey, message| {
            let signed = SignedMessage::sign(&NETWORK, key, message);
            let verified = signed.verify(&NETWORK, &validators).expect("valid");
            machine.handle(Input::Message(verified))
        };
        let prevote = |round, block| {
            Message::Vote(Vote {
                kind: VoteKind::Prevote,
                height: 1,
                round,
                block_hash: block,
            })
        };

        // Round 0: proposal of 10 from position 1, then a polka for it: validator 0 locks.
        let a = TestValue(10);
        let proposal = Message::Proposal(Proposal {
            height: 1,
            round: 0,
            value: a,
            valid_round: None,
        });
        deliver(&mut machine, &keys[1], proposal);
        machine.handle(Input::Verdict {
            height: 1,
            block_hash: a.hash(),
            valid: true,
        });
        for key in &keys[1..3] {
            deliver(&mut machine, key, prevote(0, Some(a.hash())));
        }
        assert_eq!(machine.locked().map(|l| (l.round, l.value)), Some((0, a)));

        // The polka behind the valid value can be relayed as received: three prevotes for a
        // in round 0 (two received, one its own) that verify again byte for byte.
        let polka = machine.valid_polka();
        assert_eq!(polka.len(), 3);
        for vote in polka {
            assert!(vote.into_inner().verify(&NETWORK, &validators).is_ok());
        }

        // Round 1: position 2 proposes a fresh, valid block 20; the lock forces a nil prevote.
        machine.handle(Input::Timeout {
            kind: TimeoutKind::Precommit,
            height: 1,
            round: 0,
        });
        let b = TestValue(20);
        let fresh = Message::Proposal(Proposal {
            height: 1,
            round: 1,
            value: b,
            valid_round: None,
        });
        deliver(&mut machine, &keys[2], fresh);
        let actions = machine.handle(Input::Verdict {
            height: 1,
            block_hash: b.hash(),
            valid: true,
        });
        let prevoted: Vec<Option<Hash>> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Broadcast(SignedMessage {
                    message: Message::Vote(vote),
                    ..
                }) => Some(vote.block_hash),
                _ => None,
            })
            .collect();
        assert_eq!(prevoted, vec![None]);
    }

    #[test]
    fn a_restored_validator_resends_its_vote_and_never_signs_a_conflicting_one() {
        let mut cluster = Cluster::new(4);
        cluster.muted[1] = true;
        cluster.start(1);
        cluster.fire_timeouts(TimeoutKind::Propose); // everyone prevotes nil in round 0

        let state = cluster.machines[0].safety_state();
        assert_eq!((state.round, state.step), (0, Step::Precommit));

        let (validators, keys) = validators_and_keys(4);
        let params = Params {
            network_id: NETWORK,
            validators,
            key: Some(keys[0].clone()),
            timeouts: TimeoutConfig::default(),
        };
        let mut restarted = StateMachine::<TestValue>::new(params);
        let actions = restarted.restore(state.clone());
        let resent: Vec<&SignedMessage<TestValue>> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Broadcast(signed) => Some(signed),
                _ => None,
            })
            .collect();
        assert_eq!(resent, state.sent.iter().collect::<Vec<_>>());

        // A late propose timeout for the same round must not produce a second prevote.
        let again = Input::Timeout {
            kind: TimeoutKind::Propose,
            height: 1,
            round: 0,
        };
        assert!(
            restarted
                .handle(again)
                .iter()
                .all(|a| !matches!(a, Action::Broadcast(_)))
        );
    }

    #[test]
    fn a_full_node_follows_votes_to_the_same_decision_without_signing() {
        let mut cluster = Cluster::new(4);
        let params = Params {
            network_id: NETWORK,
            validators: cluster.validators.clone(),
            key: None,
            timeouts: TimeoutConfig::default(),
        };
        let mut follower = StateMachine::<TestValue>::new(params);
        assert!(
            follower
                .start(1)
                .iter()
                .all(|a| !matches!(a, Action::Broadcast(_)))
        );
        cluster.start(1);

        let mut decided = None;
        for action in cluster.actions.concat() {
            let Action::Broadcast(signed) = action else {
                continue;
            };
            let verified = signed.verify(&NETWORK, &cluster.validators).expect("valid");
            for reaction in follower.handle(Input::Message(verified)) {
                match reaction {
                    Action::RequestVerdict { height, value } => {
                        let input = Input::Verdict {
                            height,
                            block_hash: value.hash(),
                            valid: true,
                        };
                        for late in follower.handle(input) {
                            if let Action::Decide { value, .. } = late {
                                decided = Some(value);
                            }
                        }
                    }
                    Action::Decide { value, .. } => decided = Some(value),
                    Action::Broadcast(_) | Action::Persist(_) => panic!("a full node never signs"),
                    _ => {}
                }
            }
        }
        assert_eq!(decided, Some(TestValue(100)));
    }

    #[test]
    fn a_certificate_from_block_sync_decides_and_a_bad_one_is_ignored() {
        let mut cluster = Cluster::new(4);
        cluster.start(1);
        let (value, certificate) = cluster.decided[0][0].clone();

        let (validators, keys) = validators_and_keys(4);
        let params = Params {
            network_id: NETWORK,
            validators,
            key: Some(keys[3].clone()),
            timeouts: TimeoutConfig::default(),
        };
        let mut late = StateMachine::<TestValue>::new(params);
        late.start(1);

        let mut forged = certificate.clone();
        forged.signatures.truncate(2);
        late.handle(Input::Commit {
            value,
            certificate: forged,
        });
        assert_eq!(late.height(), 1);

        let actions = late.handle(Input::Commit { value, certificate });
        assert!(actions.iter().any(|a| matches!(a, Action::Decide { .. })));
        assert_eq!(late.height(), 2);
    }

    /// One validator (position 0 of 4) fed messages signed by the others.
    struct Solo {
        machine: StateMachine<TestValue>,
        validators: ValidatorSet,
        keys: Vec<SecretKey>,
    }

    impl Solo {
        fn new() -> Solo {
            let (validators, keys) = validators_and_keys(4);
            let params = Params {
                network_id: NETWORK,
                validators: validators.clone(),
                key: Some(keys[0].clone()),
                timeouts: TimeoutConfig::default(),
            };
            let mut machine = StateMachine::new(params);
            machine.start(1);
            Solo {
                machine,
                validators,
                keys,
            }
        }

        fn deliver(&mut self, from: usize, message: Message<TestValue>) -> Vec<Action<TestValue>> {
            let signed = SignedMessage::sign(&NETWORK, &self.keys[from], message);
            let verified = signed.verify(&NETWORK, &self.validators).expect("valid");
            self.machine.handle(Input::Message(verified))
        }

        fn prevote(&mut self, from: usize, round: Round, block: Option<Hash>) {
            let vote = Vote {
                kind: VoteKind::Prevote,
                height: 1,
                round,
                block_hash: block,
            };
            self.deliver(from, Message::Vote(vote));
        }

        /// Delivers a proposal, answers the verdict request with "valid", and returns the
        /// block hashes this validator prevoted in reaction.
        fn propose(
            &mut self,
            round: Round,
            value: TestValue,
            valid_round: Option<Round>,
        ) -> Vec<Option<Hash>> {
            let from = self.validators.proposer_position(1, round);
            let proposal = Proposal {
                height: 1,
                round,
                value,
                valid_round,
            };
            let mut actions = self.deliver(from, Message::Proposal(proposal));
            let verdict = Input::Verdict {
                height: 1,
                block_hash: value.hash(),
                valid: true,
            };
            actions.extend(self.machine.handle(verdict));
            actions
                .iter()
                .filter_map(|action| match action {
                    Action::Broadcast(SignedMessage {
                        message: Message::Vote(vote),
                        ..
                    }) if vote.kind == VoteKind::Prevote => Some(vote.block_hash),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn a_reproposal_with_a_later_polka_unlocks_a_locked_validator() {
        let mut solo = Solo::new();
        let (a, b) = (TestValue(10), TestValue(20));

        // Round 0: a polka for a locks validator 0 on it.
        assert_eq!(solo.propose(0, a, None), vec![Some(a.hash())]);
        solo.prevote(1, 0, Some(a.hash()));
        solo.prevote(2, 0, Some(a.hash()));
        assert_eq!(solo.machine.locked().map(|l| l.round), Some(0));

        // Round 1: the others form a polka for b that validator 0 only watches.
        for from in 1..4 {
            solo.prevote(from, 1, Some(b.hash()));
        }
        assert_eq!(
            solo.machine.round(),
            1,
            "three validators in round 1 make it skip there"
        );
        let timeout = Input::Timeout {
            kind: TimeoutKind::Precommit,
            height: 1,
            round: 1,
        };
        solo.machine.handle(timeout);

        // Round 2: b re-proposed with valid round 1 >= the lock's round 0 is prevoted.
        assert_eq!(solo.propose(2, b, Some(1)), vec![Some(b.hash())]);
        assert_eq!(
            solo.machine.coverage().count(Rule::UnlockThroughValidRound),
            1
        );
    }

    #[test]
    fn a_reproposal_older_than_the_lock_gets_a_nil_prevote() {
        let mut solo = Solo::new();
        let (a, b) = (TestValue(10), TestValue(20));

        // Round 0: others prevote b (validator 0 saw no proposal in time). Round 1: lock on a.
        for from in 1..4 {
            solo.prevote(from, 0, Some(b.hash()));
        }
        solo.machine.handle(Input::Timeout {
            kind: TimeoutKind::Precommit,
            height: 1,
            round: 0,
        });
        assert_eq!(solo.propose(1, a, None), vec![Some(a.hash())]);
        solo.prevote(2, 1, Some(a.hash()));
        solo.prevote(3, 1, Some(a.hash()));
        assert_eq!(solo.machine.locked().map(|l| l.round), Some(1));

        // Round 2: b re-proposed with valid round 0 < lock round 1 must be refused.
        solo.machine.handle(Input::Timeout {
            kind: TimeoutKind::Precommit,
            height: 1,
            round: 1,
        });
        assert_eq!(solo.propose(2, b, Some(0)), vec![None]);
    }

    #[test]
    fn evidence_outlives_its_height_and_the_oldest_goes_beyond_the_bound() {
        let mut solo = Solo::new();
        let vote = |kind, height, round, block_hash| {
            Message::Vote(Vote {
                kind,
                height,
                round,
                block_hash,
            })
        };
        // Per height: validators 1 to 3 each double prevote and double precommit in rounds 0
        // and 1 (the window), 12 pairs; then the height is decided by a certificate.
        for height in 1..=25u64 {
            for from in 1..4 {
                for round in 0..2 {
                    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                        let block = Some(Hash([from as u8; 32]));
                        solo.deliver(from, vote(kind, height, round, block));
                        solo.deliver(from, vote(kind, height, round, None));
                    }
                }
            }
            let value = TestValue(height);
            let bytes = super::super::message::precommit_signing_bytes(
                &NETWORK,
                height,
                5,
                Some(value.hash()),
            );
            let signatures = solo.keys[1..]
                .iter()
                .map(|key| CommitSignature {
                    validator: key.public_key(),
                    signature: key.sign(&bytes),
                })
                .collect();
            let certificate = CommitCertificate {
                height,
                round: 5,
                block_hash: value.hash(),
                signatures,
            };
            solo.machine.handle(Input::Commit { value, certificate });
            assert_eq!(solo.machine.height(), height + 1);
        }

        // 300 pairs were seen; the newest 256 are held, oldest first.
        let evidence = solo.machine.take_evidence();
        assert_eq!(evidence.len(), EVIDENCE_HELD_MAX);
        let first = evidence[0];
        // Pairs 1 to 44 dropped: the 45th is the 9th of height 4, validator 3's round-0
        // prevotes (each validator's rounds 0 and 1 are delivered in turn).
        assert_eq!(
            (first.height, first.round, first.step, first.validator),
            (4, 0, Step::Prevote, solo.keys[3].public_key())
        );
        let last = evidence[EVIDENCE_HELD_MAX - 1];
        assert_eq!(
            (last.height, last.round, last.step, last.validator),
            (25, 1, Step::Precommit, solo.keys[3].public_key())
        );
        for pair in &evidence {
            assert_eq!(pair.verify(&NETWORK, &solo.validators), Ok(()));
        }
        assert_eq!(solo.machine.take_evidence(), vec![], "taken once");
    }

    #[test]
    fn f_plus_one_validators_in_higher_rounds_make_a_validator_skip_there() {
        let mut solo = Solo::new();
        solo.prevote(2, 5, None);
        assert_eq!(
            solo.machine.round(),
            0,
            "one validator ahead proves nothing"
        );

        solo.prevote(3, 7, None);
        assert_eq!(
            solo.machine.round(),
            5,
            "two validators have reached round 5 or later"
        );
        assert_eq!(solo.machine.coverage().count(Rule::RoundSkip), 1);
    }
}
