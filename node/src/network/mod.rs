//! Peer-to-peer networking: one libp2p swarm on its own task, driven through channels.
//!
//! Transport is TCP + Noise + Yamux; the node's ed25519 key is its libp2p identity, so a
//! `PeerId` names a validator and Noise authenticates it. Behaviours:
//!
//! - gossipsub with two topics, transfers (in batches) and consensus messages, in
//!   `validate_messages` mode: nothing is forwarded until the node has judged it and called
//!   back with [`Command::Validation`]. Peer scoring is on, and only `Reject` (a message that
//!   fails decoding or a signature check) costs the forwarding peer score. Gossip messages
//!   are anonymous and unsigned by libp2p: everything in them is signed already (transfers by
//!   their senders, consensus messages by validators), the peer that forwards a message is
//!   authenticated by Noise, and libp2p's own signature on every message cost more CPU than
//!   all the transfers' signatures at a thousand transfers a second. A message's id is the
//!   hash of its bytes, which start with a number the publisher never repeats
//!   ([`ENVELOPE_BYTES`]), so a message published again is new to gossipsub;
//! - request-response for block sync ([`codec`]);
//! - identify, so peers learn each other's listen addresses.
//!
//! The swarm's task does no verification: it hands raw bytes out as [`Event`]s, and the
//! verdicts come back as commands. Bootstrap peers are redialled on a timer whenever they are
//! not connected.

pub mod codec;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity, multiaddr::Protocol as AddrPart};
use protocol::Hash;
use tokio::sync::{mpsc, oneshot, watch};

pub use codec::{MAX_RANGE_BLOCKS, ServedBlock, SyncCodec, SyncRequest, SyncResponse};

/// Capacity of the command and event channels.
const CHANNEL_CAPACITY: usize = 4096;

/// How long a sync request may take before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Score given (per offence) to a peer that served a bad block; gossipsub graylists a peer
/// whose score falls below [`GRAYLIST_THRESHOLD`].
const BAD_BLOCK_PENALTY: f64 = -50.0;

/// Score below which gossipsub ignores everything from a peer.
const GRAYLIST_THRESHOLD: f64 = -80.0;

/// The two gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Batches of signed transfers.
    Transfers,
    /// Proposals and votes.
    Consensus,
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The TCP/Noise/Yamux transport could not be built.
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),
    /// Gossipsub rejected its configuration.
    #[error("invalid gossipsub configuration: {0}")]
    Gossipsub(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// A bootstrap address lacks the `/p2p/<peer id>` part.
    #[error("bootstrap address {0} must end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(String),
}

/// What the network needs to start.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The node's key, as a libp2p identity.
    pub keypair: identity::Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep dialling.
    pub bootstrap: Vec<Multiaddr>,
    /// Pause between redial rounds.
    pub redial_interval: Duration,
    /// The network id, part of every topic name so networks never mix.
    pub network_id: Hash,
    /// Largest consensus message (a proposal carries a whole block).
    pub max_consensus_bytes: usize,
    /// Largest transfer batch.
    pub max_transfer_batch_bytes: usize,
    /// Largest sync response (a range of blocks).
    pub max_sync_response_bytes: usize,
}

/// What the node asks of the network.
#[derive(Debug)]
pub enum Command {
    /// Publish `data` on `topic`. Lost if no peer listens; callers republish what matters.
    Publish {
        /// The topic.
        topic: Topic,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The verdict on a received gossip message.
    Validation {
        /// The message.
        message_id: MessageId,
        /// The peer that forwarded it.
        source: PeerId,
        /// Accept (forward), Ignore (drop quietly) or Reject (drop and penalise).
        acceptance: MessageAcceptance,
    },
    /// Ask `peer` a sync question; the answer (or failure) comes back on `reply`.
    Request {
        /// Whom to ask.
        peer: PeerId,
        /// The question.
        request: SyncRequest,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<SyncResponse, String>>,
    },
    /// Answer a peer's sync question.
    Respond {
        /// The channel from the [`Event::Request`].
        channel: ResponseChannel<SyncResponse>,
        /// The answer.
        response: SyncResponse,
    },
    /// Lower a peer's score: it served something provably bad.
    Penalise {
        /// The peer.
        peer: PeerId,
    },
}

/// What the network reports to the node.
#[derive(Debug)]
pub enum Event {
    /// A gossip message awaiting validation (answer with [`Command::Validation`]).
    Gossip {
        /// Its topic.
        topic: Topic,
        /// The peer that forwarded it.
        source: PeerId,
        /// Its id, for the verdict.
        message_id: MessageId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer asks a sync question (answer with [`Command::Respond`]).
    Request {
        /// Who asks.
        peer: PeerId,
        /// The question.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// A new address is being listened on (already ending in `/p2p/<our peer id>`).
    Listening(Multiaddr),
}

/// The node's side of the network: send commands, read connected peers.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    /// Where commands go.
    pub commands: mpsc::Sender<Command>,
    /// The peers currently connected.
    pub peers: watch::Receiver<Vec<PeerId>>,
    /// Our own peer id.
    pub local_peer_id: PeerId,
}

impl NetworkHandle {
    /// Sends a command; `false` once the network task is gone (the node is shutting down).
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Asks `peer` a question and waits for the answer.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, String> {
        let (reply, answer) = oneshot::channel();
        if !self
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
        {
            return Err("network stopped".into());
        }
        answer.await.map_err(|_| "network stopped".to_string())?
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
}

/// Builds the swarm, starts listening and spawns its task.
pub fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<Event>), NetworkError> {
    let topics = TopicNames::new(&config.network_id);
    let mut swarm = build_swarm(&config, &topics)?;

    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|error| NetworkError::Listen {
                address: address.to_string(),
                reason: error.to_string(),
            })?;
    }

    let mut bootstrap = Vec::new();
    for address in &config.bootstrap {
        let Some(AddrPart::P2p(peer)) = address.iter().last() else {
            return Err(NetworkError::BootstrapWithoutPeerId(address.to_string()));
        };
        bootstrap.push((peer, address.clone()));
    }

    let (commands, command_receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let (event_sender, events) = mpsc::channel(CHANNEL_CAPACITY);
    let (peers_sender, peers) = watch::channel(Vec::new());
    let local_peer_id = *swarm.local_peer_id();

    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let task = SwarmTask {
        swarm,
        next_envelope: started.map_or(0, |since| since.as_nanos() as u64),
        topics,
        bootstrap,
        redial_interval: config.redial_interval,
        commands: command_receiver,
        events: event_sender,
        peers: peers_sender,
        pending: HashMap::new(),
        connected: HashSet::new(),
    };
    tokio::spawn(task.run());

    Ok((
        NetworkHandle {
            commands,
            peers,
            local_peer_id,
        },
        events,
    ))
}

/// Topic names carry the network id so that two networks' nodes never mix messages.
struct TopicNames {
    transfers: IdentTopic,
    consensus: IdentTopic,
}

impl TopicNames {
    fn new(network_id: &Hash) -> TopicNames {
        let network = &network_id.to_hex()[..16];
        TopicNames {
            transfers: IdentTopic::new(format!("/tally/{network}/transfers/1")),
            consensus: IdentTopic::new(format!("/tally/{network}/consensus/1")),
        }
    }

    fn topic(&self, topic: Topic) -> &IdentTopic {
        match topic {
            Topic::Transfers => &self.transfers,
            Topic::Consensus => &self.consensus,
        }
    }

    fn which(&self, hash: &TopicHash) -> Option<Topic> {
        if *hash == self.transfers.hash() {
            Some(Topic::Transfers)
        } else if *hash == self.consensus.hash() {
            Some(Topic::Consensus)
        } else {
            None
        }
    }
}

fn build_swarm(
    config: &NetworkConfig,
    topics: &TopicNames,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let gossipsub = build_gossipsub(config, topics)?;

    let sync_config = request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT);
    let sync = request_response::Behaviour::with_codec(
        SyncCodec {
            max_response_bytes: config.max_sync_response_bytes,
        },
        [(
            codec::SYNC_PROTOCOL,
            request_response::ProtocolSupport::Full,
        )],
        sync_config,
    );

    let identify = identify::Behaviour::new(identify::Config::new(
        "/tally/1".into(),
        config.keypair.public(),
    ));

    let behaviour = Behaviour {
        gossipsub,
        sync,
        identify,
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        // Connections between validators are long-lived even when quiet.
        .with_swarm_config(|swarm| swarm.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}

fn build_gossipsub(
    config: &NetworkConfig,
    topics: &TopicNames,
) -> Result<gossipsub::Behaviour, NetworkError> {
    let invalid = |error: &dyn std::fmt::Display| NetworkError::Gossipsub(error.to_string());
    let largest = config
        .max_consensus_bytes
        .max(config.max_transfer_batch_bytes);

    let gossip_config = gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|message| {
            let id = Hash::digest_parts(&[message.topic.as_str().as_bytes(), &message.data]);
            MessageId::from(&id.as_bytes()[..20])
        })
        .max_transmit_size(largest + ENVELOPE_BYTES)
        .max_transmit_size_for_topic(
            config.max_consensus_bytes + ENVELOPE_BYTES,
            topics.consensus.hash(),
        )
        .max_transmit_size_for_topic(
            config.max_transfer_batch_bytes + ENVELOPE_BYTES,
            topics.transfers.hash(),
        )
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|error| invalid(&error))?;

    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|error| invalid(&error))?;

    let (params, thresholds) = score_parameters(topics);
    gossipsub
        .with_peer_score(params, thresholds)
        .map_err(|error| invalid(&error))?;

    for topic in [&topics.transfers, &topics.consensus] {
        gossipsub
            .subscribe(topic)
            .map_err(|error| invalid(&error))?;
    }
    Ok(gossipsub)
}

/// Scoring that punishes invalid messages and bad blocks only.
///
/// Delivery-rate penalties are off: a federation's nodes are few and often quiet, and an
/// honest node that lags must never lose standing. The IP colocation penalty is off too:
/// several operators may share a host or a NAT, and tests run every node on 127.0.0.1.
fn score_parameters(
    topics: &TopicNames,
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..gossipsub::TopicScoreParams::default()
    };

    let mut params = gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    params
        .topics
        .insert(topics.transfers.hash(), topic_params.clone());
    params.topics.insert(topics.consensus.hash(), topic_params);

    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -20.0,
        publish_threshold: -40.0,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..gossipsub::PeerScoreThresholds::default()
    };
    (params, thresholds)
}

/// Bytes before a gossip message's payload: a number its publisher never uses twice, so that
/// publishing the same payload again (a validator's republished votes) makes a new message.
const ENVELOPE_BYTES: usize = 8;

struct SwarmTask {
    swarm: Swarm<Behaviour>,
    /// The next gossip envelope number; starts at the clock's nanoseconds so a restarted
    /// node does not repeat numbers peers still remember.
    next_envelope: u64,
    topics: TopicNames,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    redial_interval: Duration,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    peers: watch::Sender<Vec<PeerId>>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, String>>>,
    connected: HashSet<PeerId>,
}

impl SwarmTask {
    async fn run(mut self) {
        let mut redial = tokio::time::interval(self.redial_interval);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    // Every handle dropped: the node is shutting down.
                    None => break,
                },
                event = self.swarm.select_next_some() => {
                    if !self.handle_swarm_event(event).await {
                        break;
                    }
                }
                _ = redial.tick() => self.redial(),
            }
        }
        tracing::debug!("network task stopped");
    }

    fn handle_command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish { topic, data } => {
                let topic_name = self.topics.topic(topic).clone();
                let mut enveloped = Vec::with_capacity(ENVELOPE_BYTES + data.len());
                enveloped.extend_from_slice(&self.next_envelope.to_be_bytes());
                enveloped.extend_from_slice(&data);
                self.next_envelope = self.next_envelope.wrapping_add(1);
                if let Err(error) = behaviour.gossipsub.publish(topic_name, enveloped) {
                    // Expected while no peer is connected; callers republish what matters.
                    tracing::debug!(?topic, %error, "publish failed");
                }
            }
            Command::Validation {
                message_id,
                source,
                acceptance,
            } => {
                behaviour.gossipsub.report_message_validation_result(
                    &message_id,
                    &source,
                    acceptance,
                );
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = behaviour.sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                // Fails only if the peer has gone; nothing to do then.
                let _ = behaviour.sync.send_response(channel, response);
            }
            Command::Penalise { peer } => {
                let current = behaviour.gossipsub.peer_score(&peer).unwrap_or(0.0);
                behaviour
                    .gossipsub
                    .set_application_score(&peer, current.min(0.0) + BAD_BLOCK_PENALTY);
                tracing::warn!(%peer, "peer penalised for serving a bad block");
            }
        }
    }

    /// Handles one swarm event; `false` when the node has stopped listening to events.
    async fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> bool {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let Some(topic) = self.topics.which(&message.topic) else {
                    return true;
                };
                if message.data.len() < ENVELOPE_BYTES {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Reject,
                        );
                    return true;
                }
                let mut data = message.data;
                data.drain(..ENVELOPE_BYTES);
                let event = Event::Gossip {
                    topic,
                    source: propagation_source,
                    message_id,
                    data,
                };
                return self.events.send(event).await.is_ok();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => {
                return self.handle_sync(event).await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                tracing::debug!(peer = %peer_id, addresses = ?info.listen_addrs, "identified peer");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let peer = *self.swarm.local_peer_id();
                let full = address.with(AddrPart::P2p(peer));
                tracing::info!(address = %full, "listening for peers");
                return self.events.send(Event::Listening(full)).await.is_ok();
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if self.connected.insert(peer_id) => {
                tracing::info!(peer = %peer_id, "peer connected");
                self.publish_peers();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if self.connected.remove(&peer_id) => {
                tracing::info!(peer = %peer_id, "peer disconnected");
                self.publish_peers();
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
        true
    }

    async fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) -> bool {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let event = Event::Request {
                        peer,
                        request,
                        channel,
                    };
                    return self.events.send(event).await.is_ok();
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(format!("request to {peer} failed: {error}")));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
        true
    }

    fn redial(&mut self) {
        for (peer, address) in &self.bootstrap {
            if *peer == *self.swarm.local_peer_id() || self.swarm.is_connected(peer) {
                continue;
            }
            if let Err(error) = self.swarm.dial(address.clone()) {
                tracing::debug!(%peer, %error, "redial failed");
            }
        }
    }

    fn publish_peers(&self) {
        let mut peers: Vec<PeerId> = self.connected.iter().copied().collect();
        peers.sort();
        self.peers.send_replace(peers);
    }
}

/// The libp2p identity of a node key.
pub fn keypair(secret: &protocol::SecretKey) -> identity::Keypair {
    let mut seed = secret.seed();
    identity::Keypair::ed25519_from_bytes(&mut seed).expect("a 32-byte seed is a valid key")
}

/// The libp2p peer id of an account key (a validator's peer id, from the genesis).
pub fn peer_id(key: &protocol::PublicKey) -> PeerId {
    let public = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a checked public key is a valid ed25519 key");
    identity::PublicKey::from(public).to_peer_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;

    #[test]
    fn peer_id_of_a_key_matches_its_keypair() {
        let secret = SecretKey::from_seed(&[5; 32]);
        assert_eq!(
            keypair(&secret).public().to_peer_id(),
            peer_id(&secret.public_key())
        );
    }

    fn config(secret: &SecretKey, bootstrap: Vec<Multiaddr>) -> NetworkConfig {
        NetworkConfig {
            keypair: keypair(secret),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap,
            redial_interval: Duration::from_millis(200),
            network_id: Hash::digest(b"test network"),
            max_consensus_bytes: 1 << 20,
            max_transfer_batch_bytes: 1 << 20,
            max_sync_response_bytes: 1 << 20,
        }
    }

    async fn next_listen_address(events: &mut mpsc::Receiver<Event>) -> Multiaddr {
        loop {
            if let Some(Event::Listening(address)) = events.recv().await {
                return address;
            }
        }
    }

    /// Two swarms on loopback: B dials A, gossip flows after validation, and a sync request
    /// is answered.
    #[tokio::test]
    async fn two_nodes_gossip_and_answer_requests() {
        let (a, mut a_events) = spawn(config(&SecretKey::from_seed(&[1; 32]), vec![])).unwrap();
        let a_address = next_listen_address(&mut a_events).await;
        let (b, mut b_events) =
            spawn(config(&SecretKey::from_seed(&[2; 32]), vec![a_address])).unwrap();

        // Publish until the mesh forms: gossip sent before that is lost, by design.
        let received = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                b.send(Command::Publish {
                    topic: Topic::Transfers,
                    data: b"batch".to_vec(),
                })
                .await;
                let wait = tokio::time::sleep(Duration::from_millis(300));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        event = a_events.recv() => match event {
                            Some(Event::Gossip { topic, data, .. }) => return (topic, data),
                            _ => continue,
                        },
                        _ = &mut wait => break,
                    }
                }
            }
        })
        .await
        .expect("gossip arrives");
        assert_eq!(received, (Topic::Transfers, b"batch".to_vec()));

        let answer_task = tokio::spawn(async move {
            while let Some(event) = b_events.recv().await {
                if let Event::Request {
                    request: SyncRequest::Head,
                    channel,
                    ..
                } = event
                {
                    b.send(Command::Respond {
                        channel,
                        response: SyncResponse::Head(7),
                    })
                    .await;
                }
            }
        });
        let b_peer = *a.peers.borrow().first().expect("A sees B connected");
        let answer = a.request(b_peer, SyncRequest::Head).await.unwrap();
        assert_eq!(answer, SyncResponse::Head(7));
        answer_task.abort();
    }
}
