//! One simulated run: validators, a virtual clock, a faulty network, and the invariant checks.
//!
//! Everything happens in one thread, in virtual time, in the order of a priority queue of
//! events keyed by (time, sequence number). All randomness comes from one seeded [`Rng`], so
//! a seed replays exactly. Each message is verified once, when it is sent, and the verified
//! message is shared by all its deliveries, as a node would verify once off its network task.
//!
//! The node's duties the state machine leaves to its caller are modelled here:
//! persisting safety state and committed blocks (what survives a crash), timers, block
//! validation, gossip (each validator re-sends its own messages of the current height every
//! so often, as gossip protocols do, so that lost messages are eventually recovered) and
//! block sync (a validator that sees a peer at another height is sent, or sends, the
//! committed block and certificate it lacks).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use protocol::consensus::{
    Action, CommitCertificate, ConsensusValue, Coverage, Height, Input, Message, Params, Round,
    SafetyState, SignedMessage, StateMachine, Timeout, ValidatorSet, Verified, Vote,
};
use protocol::{Hash, SecretKey};

use super::block::SimBlock;
use super::check::{Checker, Violation};
use super::rng::Rng;
use super::scenario::{Byzantine, STABLE_DELAY_MAX_MS, Scenario};

/// The network id every simulated validator signs for.
pub fn network_id() -> Hash {
    Hash::digest(b"tally simulator network")
}

/// The key of the validator at genesis `position`; fixed, so traces are comparable.
pub fn validator_key(position: usize) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(position as u64 + 1).to_be_bytes());
    SecretKey::from_seed(&seed)
}

type Shared = Rc<Verified<SignedMessage<SimBlock>>>;

/// Set to dump every validator's state when liveness fails.
pub const DEBUG_VARIABLE: &str = "TALLY_SIM_DEBUG";

/// Every validator re-sends its own messages of the current height this often (ms).
const GOSSIP_INTERVAL_MS: u64 = 600;
/// A flooding validator sends a burst this often (ms).
const FLOOD_INTERVAL_MS: u64 = 250;
/// Messages per flood burst.
const FLOOD_BURST: u64 = 6;
/// A block-sync reply for the same (from, to, height) is not repeated sooner than this (ms).
const SYNC_RETRY_MS: u64 = 300;

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        message: Shared,
    },
    Timeout {
        node: usize,
        instance: usize,
        epoch: u32,
        timeout: Timeout,
    },
    Verdict {
        node: usize,
        instance: usize,
        epoch: u32,
        height: Height,
        block: Hash,
        valid: bool,
    },
    Sync {
        to: usize,
        block: SimBlock,
        certificate: CommitCertificate,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Partition,
    Heal,
    Gossip {
        node: usize,
    },
    Flood {
        node: usize,
    },
    Stabilise,
}

impl Event {
    /// A short, stable tag for the trace digest.
    fn tag(&self) -> (u8, usize) {
        match self {
            Event::Deliver { to, .. } => (0, *to),
            Event::Timeout { node, .. } => (1, *node),
            Event::Verdict { node, .. } => (2, *node),
            Event::Sync { to, .. } => (3, *to),
            Event::Crash { node } => (4, *node),
            Event::Restart { node } => (5, *node),
            Event::Partition => (6, 0),
            Event::Heal => (7, 0),
            Event::Gossip { node } => (8, *node),
            Event::Flood { node } => (9, *node),
            Event::Stabilise => (10, 0),
        }
    }
}

struct Scheduled {
    time: u64,
    sequence: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.sequence) == (other.time, other.sequence)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.sequence).cmp(&(other.time, other.sequence))
    }
}

/// One copy of the state machine and who its broadcasts reach.
struct Instance {
    machine: StateMachine<SimBlock>,
    audience: Vec<usize>,
}

/// A simulated validator: what it runs, and what survives its crashes.
struct Node {
    behaviour: Option<Byzantine>,
    /// Empty while crashed.
    instances: Vec<Instance>,
    /// Bumped at every crash, so timers set before it are ignored.
    epoch: u32,
    /// The last safety state it persisted; survives crashes.
    persisted: Option<SafetyState<SimBlock>>,
    /// Committed blocks and certificates, height 1 first; survives crashes.
    chain: Vec<(SimBlock, CommitCertificate)>,
    /// Its own messages, re-sent by gossip while they are for its current height.
    own: Vec<Shared>,
    /// Coverage of instances lost in crashes.
    coverage: Coverage,
}

impl Node {
    fn up(&self) -> bool {
        !self.instances.is_empty()
    }

    fn height(&self) -> Height {
        self.chain.len() as Height + 1
    }

    fn tip(&self) -> Hash {
        self.chain
            .last()
            .map_or(Hash::ZERO, |(block, _)| block.hash())
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// FNV-1a digest of every event processed (time, kind, node) and every decision.
    pub trace: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end, in milliseconds.
    pub end_ms: u64,
    /// The hashes of the blocks committed by the first honest validator, height 1 first.
    pub chain: Vec<Hash>,
    /// Rules fired over all validators.
    pub coverage: Coverage,
    /// Messages signed (each verified once).
    pub messages: u64,
    /// Signature verifications of messages.
    pub verifications: u64,
    /// Deliveries of messages (each shares its one verification).
    pub deliveries: u64,
    /// Pieces of equivocation evidence honest validators reported, each verified and naming
    /// a Byzantine validator.
    pub evidence: u64,
}

/// A run in progress.
pub struct World {
    scenario: Scenario,
    rng: Rng,
    now: u64,
    sequence: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    validators: ValidatorSet,
    network_id: Hash,
    nodes: Vec<Node>,
    stable: bool,
    partition: Option<Vec<bool>>,
    sync_sent: HashMap<(usize, usize, Height), u64>,
    checker: Checker,
    trace: u64,
    events: u64,
    messages: u64,
    verifications: u64,
    deliveries: u64,
}

impl World {
    /// Sets up validators, faults and the first events of `scenario` for `seed`.
    pub fn new(scenario: Scenario, seed: u64) -> World {
        let n = scenario.validators;
        let keys: Vec<_> = (0..n)
            .map(|position| validator_key(position).public_key())
            .collect();
        let validators = ValidatorSet::new(keys).expect("simulated keys are distinct");
        let honest: Vec<bool> = (0..n).map(|p| scenario.behaviour(p).is_none()).collect();
        let checker = Checker::new(honest, validators.clone(), network_id(), &scenario);

        let mut world = World {
            rng: Rng::new(seed),
            now: 0,
            sequence: 0,
            queue: BinaryHeap::new(),
            validators,
            network_id: network_id(),
            nodes: vec![],
            stable: false,
            partition: None,
            sync_sent: HashMap::new(),
            checker,
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            messages: 0,
            verifications: 0,
            deliveries: 0,
            scenario,
        };
        world.create_nodes();
        world.schedule_faults();
        world
    }

    /// Runs to the end: every honest validator has decided enough heights after the network
    /// stabilised, or an invariant broke.
    pub fn run(mut self) -> Result<RunReport, Violation> {
        for node in 0..self.nodes.len() {
            if self.scenario.behaviour(node) != Some(Byzantine::Crashed) {
                self.boot(node);
                self.checker
                    .check_node(node, &self.nodes[node].instance_memory())?;
            }
        }

        while let Some(Reverse(scheduled)) = self.queue.pop() {
            self.now = scheduled.time;
            self.events += 1;
            let (kind, node) = scheduled.event.tag();
            self.mix(&[
                &self.now.to_be_bytes(),
                &[kind],
                &(node as u64).to_be_bytes(),
            ]);

            let touched = self.process(scheduled.event)?;
            if let Some(node) = touched {
                self.checker
                    .check_node(node, &self.nodes[node].instance_memory())?;
            }
            if self.checker.finished() {
                return Ok(self.report());
            }
            self.checker.take_violation()?;
            if let Err(violation) = self.checker.check_deadline(self.now) {
                if std::env::var(DEBUG_VARIABLE).is_ok() {
                    self.dump_state();
                }
                return Err(violation);
            }
        }
        Err(Violation::Stalled { at_ms: self.now })
    }

    /// Prints each validator's position in the protocol, to see why a run is stuck.
    fn dump_state(&self) {
        for (position, node) in self.nodes.iter().enumerate() {
            for instance in &node.instances {
                let machine = &instance.machine;
                let state = machine.safety_state();
                eprintln!(
                    "validator {position}: height {} round {} {:?} locked {:?} valid {:?}",
                    machine.height(),
                    machine.round(),
                    machine.step(),
                    state.locked.map(|l| (l.round, l.value.hash())),
                    state.valid.map(|v| (v.round, v.value.hash()))
                );
            }
        }
    }

    fn report(&self) -> RunReport {
        let mut coverage = Coverage::default();
        for node in &self.nodes {
            coverage.add(&node.coverage);
            for instance in &node.instances {
                coverage.add(instance.machine.coverage());
            }
        }
        let first_honest = (0..self.nodes.len()).find(|p| self.scenario.behaviour(*p).is_none());
        let chain = first_honest.map_or(vec![], |p| {
            self.nodes[p]
                .chain
                .iter()
                .map(|(block, _)| block.hash())
                .collect()
        });
        RunReport {
            trace: self.trace,
            events: self.events,
            end_ms: self.now,
            chain,
            coverage,
            messages: self.messages,
            verifications: self.verifications,
            deliveries: self.deliveries,
            evidence: self.checker.evidence_seen(),
        }
    }

    fn mix(&mut self, parts: &[&[u8]]) {
        for part in parts {
            for byte in *part {
                self.trace ^= u64::from(*byte);
                self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.sequence += 1;
        let scheduled = Scheduled {
            time: self.now + delay_ms,
            sequence: self.sequence,
            event,
        };
        self.queue.push(Reverse(scheduled));
    }

    fn create_nodes(&mut self) {
        let n = self.scenario.validators;
        for position in 0..n {
            let behaviour = self.scenario.behaviour(position);
            self.nodes.push(Node {
                behaviour,
                instances: vec![],
                epoch: 0,
                persisted: None,
                chain: vec![],
                own: vec![],
                coverage: Coverage::default(),
            });
        }
    }

    fn schedule_faults(&mut self) {
        let n = self.scenario.validators;
        let stabilise = self.scenario.stabilise_at_ms;
        self.schedule(stabilise, Event::Stabilise);

        for node in 0..n {
            let phase = self.rng.below(GOSSIP_INTERVAL_MS);
            self.schedule(phase, Event::Gossip { node });
            if self.nodes[node].behaviour == Some(Byzantine::Flooder) {
                self.schedule(FLOOD_INTERVAL_MS, Event::Flood { node });
            }
        }

        if self.scenario.network.partitions {
            let mut at = self.rng.between(200, 1_500);
            while at + 300 < stabilise {
                let length = self.rng.between(200, 1_500);
                self.schedule(at, Event::Partition);
                self.schedule((at + length).min(stabilise), Event::Heal);
                at += length + self.rng.between(300, 2_000);
            }
        }

        if self.scenario.crashes {
            let crashes = self.rng.between(1, 3);
            for _ in 0..crashes {
                let node = self.rng.below(n as u64) as usize;
                if self.nodes[node].behaviour.is_some() {
                    continue;
                }
                let at = self.rng.between(100, stabilise - 500);
                let down = self.rng.between(50, 2_000);
                self.schedule(at, Event::Crash { node });
                self.schedule((at + down).min(stabilise - 1), Event::Restart { node });
            }
        }
    }

    fn params(&self, node: usize) -> Params {
        Params {
            network_id: self.network_id,
            validators: self.validators.clone(),
            key: Some(validator_key(node)),
            timeouts: self.scenario.timeouts,
        }
    }

    /// Starts (or restarts) a node from what it persisted.
    fn boot(&mut self, node: usize) {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|o| *o != node).collect();
        let audiences = if self.nodes[node].behaviour == Some(Byzantine::Equivocator) {
            let (a, b) = self.split(&others);
            vec![a, b]
        } else {
            vec![others]
        };

        for (index, audience) in audiences.into_iter().enumerate() {
            let mut machine = StateMachine::new(self.params(node));
            // A planted bug goes into honest validators only, one instance at a time.
            if let (None, Some(fault)) = (self.nodes[node].behaviour, self.scenario.fault) {
                machine.inject_fault(fault);
            }
            let height = self.nodes[node].height();
            let persisted = self.nodes[node]
                .persisted
                .clone()
                .filter(|s| s.height == height);
            let actions = match persisted {
                Some(state) if index == 0 => machine.restore(state),
                _ => machine.start(height),
            };
            self.nodes[node]
                .instances
                .push(Instance { machine, audience });
            self.carry_out(node, index, actions);
        }
    }

    /// Splits `nodes` into two random non-empty halves (when there are at least two).
    fn split(&mut self, nodes: &[usize]) -> (Vec<usize>, Vec<usize>) {
        let mut shuffled = nodes.to_vec();
        for i in (1..shuffled.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            shuffled.swap(i, j);
        }
        let half = shuffled.len().div_ceil(2);
        let second = shuffled.split_off(half);
        (shuffled, second)
    }

    /// Handles one event; returns the node whose state it changed, for the checks.
    fn process(&mut self, event: Event) -> Result<Option<usize>, Violation> {
        match event {
            Event::Deliver { to, message } => {
                self.deliver(to, message)?;
                Ok(Some(to))
            }
            Event::Timeout {
                node,
                instance,
                epoch,
                timeout,
            } => {
                let input = Input::Timeout {
                    kind: timeout.kind,
                    height: timeout.height,
                    round: timeout.round,
                };
                self.feed(node, instance, epoch, input)?;
                Ok(Some(node))
            }
            Event::Verdict {
                node,
                instance,
                epoch,
                height,
                block,
                valid,
            } => {
                let input = Input::Verdict {
                    height,
                    block_hash: block,
                    valid,
                };
                self.feed(node, instance, epoch, input)?;
                Ok(Some(node))
            }
            Event::Sync {
                to,
                block,
                certificate,
            } => {
                let epoch = self.nodes[to].epoch;
                for instance in 0..self.nodes[to].instances.len() {
                    let input = Input::Commit {
                        value: block.clone(),
                        certificate: certificate.clone(),
                    };
                    self.feed(to, instance, epoch, input)?;
                }
                Ok(Some(to))
            }
            Event::Crash { node } => {
                self.crash(node);
                Ok(Some(node))
            }
            Event::Restart { node } => {
                if !self.nodes[node].up() {
                    self.boot(node);
                }
                Ok(Some(node))
            }
            Event::Partition => {
                let nodes: Vec<usize> = (0..self.nodes.len()).collect();
                let (side, _) = self.split(&nodes);
                let mut in_side = vec![false; self.nodes.len()];
                for node in side {
                    in_side[node] = true;
                }
                self.partition = Some(in_side);
                Ok(None)
            }
            Event::Heal => {
                self.partition = None;
                Ok(None)
            }
            Event::Gossip { node } => {
                self.gossip(node);
                Ok(None)
            }
            Event::Flood { node } => {
                self.flood(node);
                Ok(None)
            }
            Event::Stabilise => {
                self.stabilise();
                Ok(None)
            }
        }
    }

    fn feed(
        &mut self,
        node: usize,
        instance: usize,
        epoch: u32,
        input: Input<SimBlock>,
    ) -> Result<(), Violation> {
        if self.nodes[node].epoch != epoch || instance >= self.nodes[node].instances.len() {
            return Ok(()); // the node crashed since this was scheduled
        }
        let machine = &mut self.nodes[node].instances[instance].machine;
        let actions = machine.handle(input);
        let evidence = machine.take_evidence();
        if self.scenario.behaviour(node).is_none() {
            for piece in &evidence {
                self.checker.record_evidence(node, piece);
            }
        }
        self.carry_out(node, instance, actions);
        self.checker.take_violation()
    }

    fn deliver(&mut self, to: usize, message: Shared) -> Result<(), Violation> {
        if !self.nodes[to].up() {
            return Ok(());
        }
        self.deliveries += 1;
        self.sync_on_height_gap(to, &message);

        let epoch = self.nodes[to].epoch;
        for instance in 0..self.nodes[to].instances.len() {
            self.feed(to, instance, epoch, Input::Message((*message).clone()))?;
        }
        Ok(())
    }

    /// Block sync: a validator seeing a peer at another height gets, or gives, the committed
    /// block of the lower height.
    fn sync_on_height_gap(&mut self, to: usize, message: &Shared) {
        let Some(from) = self.validators.position(&message.signer) else {
            return;
        };
        let theirs = message.message.height();
        let mine = self.nodes[to].height();
        if theirs > mine {
            self.send_sync(from, to, mine);
        } else if theirs < mine {
            self.send_sync(to, from, theirs);
        }
    }

    fn send_sync(&mut self, from: usize, to: usize, height: Height) {
        let Some((block, certificate)) = self.nodes[from].chain.get(height as usize - 1).cloned()
        else {
            return;
        };
        if !self.nodes[from].up() {
            return;
        }
        let key = (from, to, height);
        if self
            .sync_sent
            .get(&key)
            .is_some_and(|at| self.now < at + SYNC_RETRY_MS)
        {
            return;
        }
        self.sync_sent.insert(key, self.now);
        if let Some(delay) = self.link_delay(from, to) {
            self.schedule(
                delay,
                Event::Sync {
                    to,
                    block,
                    certificate,
                },
            );
        }
    }

    /// The delay of one message from `from` to `to`, or `None` if the network loses it.
    fn link_delay(&mut self, from: usize, to: usize) -> Option<u64> {
        if self
            .partition
            .as_ref()
            .is_some_and(|side| side[from] != side[to])
        {
            return None;
        }
        if self.stable {
            return Some(self.rng.between(1, STABLE_DELAY_MAX_MS));
        }
        let network = self.scenario.network;
        if self.rng.per_mille(network.drop_per_mille) {
            return None;
        }
        Some(self.rng.between(network.delay_min_ms, network.delay_max_ms))
    }

    fn send(&mut self, from: usize, to: usize, message: &Shared) {
        let Some(delay) = self.link_delay(from, to) else {
            return;
        };
        self.schedule(
            delay,
            Event::Deliver {
                to,
                message: message.clone(),
            },
        );

        let duplicate = self.scenario.network.duplicate_per_mille;
        if self.rng.per_mille(duplicate) {
            let again = delay + self.rng.between(1, 200);
            self.schedule(
                again,
                Event::Deliver {
                    to,
                    message: message.clone(),
                },
            );
        }
    }

    /// Verifies a freshly signed message, once, and wraps it for sharing among deliveries.
    fn verify_once(&mut self, signed: SignedMessage<SimBlock>) -> Shared {
        self.messages += 1;
        self.verifications += 1;
        let verified = signed
            .verify(&self.network_id, &self.validators)
            .expect("messages signed by simulated validators verify");
        Rc::new(verified)
    }

    fn carry_out(&mut self, node: usize, instance: usize, actions: Vec<Action<SimBlock>>) {
        let mut pending: std::collections::VecDeque<_> = actions.into();
        while let Some(action) = pending.pop_front() {
            match action {
                Action::Persist(state) => {
                    if instance == 0 {
                        self.nodes[node].persisted = Some(state);
                    }
                }
                Action::Broadcast(signed) => self.broadcast(node, instance, signed),
                Action::ScheduleTimeout(timeout) => {
                    let epoch = self.nodes[node].epoch;
                    let event = Event::Timeout {
                        node,
                        instance,
                        epoch,
                        timeout,
                    };
                    self.schedule(timeout.duration_ms, event);
                }
                Action::BuildProposal { height, round } => {
                    let value = self.build_block(node, instance, height, round);
                    let input = Input::ProposalValue {
                        height,
                        round,
                        value,
                    };
                    let more = self.nodes[node].instances[instance].machine.handle(input);
                    pending.extend(more);
                }
                Action::RequestVerdict { height, value } => {
                    let parent = self.nodes[node].tip();
                    let valid = value.is_valid(height, parent, self.validators.len());
                    let epoch = self.nodes[node].epoch;
                    let block = value.hash();
                    let delay = self.rng.below(30);
                    let event = Event::Verdict {
                        node,
                        instance,
                        epoch,
                        height,
                        block,
                        valid,
                    };
                    self.schedule(delay, event);
                }
                Action::Decide { value, certificate } => {
                    self.decide(node, value, certificate);
                }
            }
        }
    }

    fn build_block(
        &mut self,
        node: usize,
        instance: usize,
        height: Height,
        round: Round,
    ) -> SimBlock {
        // The second instance of an equivocator sometimes builds a block honest validators
        // must reject.
        let well_formed = instance == 0 || self.rng.per_mille(500);
        SimBlock {
            height,
            parent: self.nodes[node].tip(),
            proposer: node as u16,
            round,
            timestamp_ms: self.now,
            payload: self.rng.next_u64(),
            well_formed,
        }
    }

    fn decide(&mut self, node: usize, block: SimBlock, certificate: CommitCertificate) {
        let height = certificate.height;
        self.mix(&[&height.to_be_bytes(), &block.hash().0]);
        // An equivocator's second instance decides too; keep its node's chain from one.
        if height != self.nodes[node].height() {
            if self.nodes[node].behaviour.is_none() {
                self.checker
                    .record_gap(node, height, self.nodes[node].height());
            }
            return;
        }
        self.checker
            .record_decision(node, height, &block, &certificate);
        self.nodes[node].chain.push((block, certificate));
        self.nodes[node].own.retain(|m| m.message.height() > height);
    }

    fn broadcast(&mut self, node: usize, instance: usize, signed: SignedMessage<SimBlock>) {
        let behaviour = self.nodes[node].behaviour;
        let is_proposal = matches!(signed.message, Message::Proposal(_));
        if behaviour == Some(Byzantine::SilentProposer) && is_proposal {
            return;
        }

        let shared = self.verify_once(signed);
        let audience = self.nodes[node].instances[instance].audience.clone();
        if instance == 0 {
            self.nodes[node].own.push(shared.clone());
        }

        if behaviour == Some(Byzantine::DoubleVoter) && !is_proposal {
            let (first, second) = self.split(&audience);
            for to in first {
                self.send(node, to, &shared);
            }
            let conflicting = self.conflicting_vote(node, &shared);
            for to in second {
                self.send(node, to, &conflicting);
            }
            return;
        }
        for to in audience {
            self.send(node, to, &shared);
        }
        let reproposal = matches!(&shared.message, Message::Proposal(p) if p.valid_round.is_some());
        if reproposal {
            self.relay_polka(node, instance);
        }
    }

    /// The same vote for something else: nil instead of a block, a random block instead of
    /// nil.
    fn conflicting_vote(&mut self, node: usize, original: &Shared) -> Shared {
        let Message::Vote(vote) = original.message.clone() else {
            unreachable!("only votes are doubled");
        };
        let block_hash = match vote.block_hash {
            Some(_) => None,
            None => Some(Hash::digest(&self.rng.next_u64().to_be_bytes())),
        };
        let other = Vote { block_hash, ..vote };
        let signed =
            SignedMessage::sign(&self.network_id, &validator_key(node), Message::Vote(other));
        self.verify_once(signed)
    }

    fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        for instance in state.instances.drain(..) {
            state.coverage.add(instance.machine.coverage());
        }
        state.epoch += 1;
        state.own.clear();
    }

    fn gossip(&mut self, node: usize) {
        self.schedule(GOSSIP_INTERVAL_MS, Event::Gossip { node });
        if !self.nodes[node].up() {
            return;
        }
        let height = self.nodes[node].height();
        let own: Vec<Shared> = self.nodes[node]
            .own
            .iter()
            .filter(|m| m.message.height() == height)
            .cloned()
            .collect();
        self.relay_polka(node, 0);
        let audience = self.nodes[node].instances[0].audience.clone();
        for message in &own {
            for to in &audience {
                self.send(node, *to, message);
            }
        }
    }

    /// Re-sends the prevotes behind the node's valid value, as received (no new signature,
    /// no new verification), so that everyone can accept its re-proposal.
    fn relay_polka(&mut self, node: usize, instance: usize) {
        let polka = self.nodes[node].instances[instance].machine.valid_polka();
        let audience = self.nodes[node].instances[instance].audience.clone();
        for vote in polka {
            let shared = Rc::new(vote);
            for to in &audience {
                self.send(node, *to, &shared);
            }
        }
    }

    /// Validly signed votes for far-future heights and rounds, to every other validator.
    fn flood(&mut self, node: usize) {
        self.schedule(FLOOD_INTERVAL_MS, Event::Flood { node });
        if !self.nodes[node].up() {
            return;
        }
        let height = self.nodes[node].height();
        for _ in 0..FLOOD_BURST {
            let far_height = self.rng.per_mille(500);
            let vote = Vote {
                kind: if self.rng.per_mille(500) {
                    protocol::consensus::VoteKind::Prevote
                } else {
                    protocol::consensus::VoteKind::Precommit
                },
                height: if far_height {
                    height + self.rng.between(1, 1_000_000)
                } else {
                    height
                },
                round: self.rng.between(2, 1_000_000) as Round,
                block_hash: Some(Hash::digest(&self.rng.next_u64().to_be_bytes())),
            };
            let signed =
                SignedMessage::sign(&self.network_id, &validator_key(node), Message::Vote(vote));
            let shared = self.verify_once(signed);
            for to in 0..self.nodes.len() {
                if to != node {
                    self.send(node, to, &shared);
                }
            }
        }
    }

    fn stabilise(&mut self) {
        self.stable = true;
        self.partition = None;
        for node in 0..self.nodes.len() {
            let crashed_for_good = self.nodes[node].behaviour == Some(Byzantine::Crashed);
            if !self.nodes[node].up() && !crashed_for_good {
                self.boot(node);
            }
        }
        let positions: Vec<(Height, Round)> = self
            .nodes
            .iter()
            .map(|node| {
                let round = node.instances.first().map_or(0, |i| i.machine.round());
                (node.height(), round)
            })
            .collect();
        self.checker.stabilised(self.now, &positions);
    }
}

impl Node {
    /// (messages held, bound) for each running instance.
    fn instance_memory(&self) -> Vec<(usize, usize)> {
        self.instances
            .iter()
            .map(|i| {
                (
                    i.machine.messages_held_max(),
                    i.machine.messages_held_bound(),
                )
            })
            .collect()
    }
}

/// Convenience: one run of `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunReport, Violation> {
    World::new(scenario.clone(), seed).run()
}
