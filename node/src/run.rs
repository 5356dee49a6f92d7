//! `tally node run`: start-up checks, wiring of the tasks, and shutdown.
//!
//! Start-up refuses, with one line saying why, a key file that group or others can read, a
//! missing or invalid genesis, and a data directory of another network. Then:
//!
//! ```text
//! network task (libp2p swarm) --events--> inbound (gossip verdicts, sync answers)
//!                                             |  verified transfers and messages
//!                                             v
//! HTTP server (axum) --submissions--------> core (ledger, mempool, consensus, storage)
//!                                             ^
//! sync (fetches blocks from peers ahead) -----+
//! ```
//!
//! On SIGINT or SIGTERM the HTTP server stops accepting, the core finishes the input it is
//! handling (so a block being written is written whole), the database is flushed and the
//! process exits 0.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use protocol::consensus::{Params, SafetyState, StateMachine, TimeoutConfig, ValidatorSet};
use protocol::{Account, Block, BlockHeader, Genesis, Ledger, PublicKey};
use tokio::sync::{mpsc, watch};

use crate::api::live::LiveNode;
use crate::api::{self, ApiConfig, ApiState};
use crate::chain::ChainBlock;
use crate::config::Config;
use crate::core::{Core, CoreParts, HaltError, Misbehaviour, StatusSnapshot};
use crate::datadir::{self, BoundAddresses, DataDirError};
use crate::evidence::SharedEvidence;
use crate::inbound::Inbound;
use crate::keyfile::{self, KeyFileError};
use crate::network::{self, Command, NetworkConfig, NetworkError, Topic};
use crate::safety;
use crate::sigcache::SignatureCache;
use crate::storage::{Storage, StorageError};
use crate::sync::Sync;

/// Capacity of the core's input channel.
const CORE_CHANNEL_CAPACITY: usize = 8192;

/// Signature verdicts remembered.
const SIGNATURE_CACHE_CAPACITY: usize = 200_000;

/// Room for a consensus message beyond the block it carries (signature, header fields).
const CONSENSUS_OVERHEAD_BYTES: usize = 4096;

/// Why the node would not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The genesis file cannot be read.
    #[error("cannot read genesis file {path}: {source}")]
    GenesisUnreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The genesis file is invalid.
    #[error("genesis file {path} is invalid: {reason}")]
    GenesisInvalid {
        /// The file.
        path: PathBuf,
        /// The first problem.
        reason: String,
    },
    /// The data directory belongs to another network, or cannot be used.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The database cannot be opened or read.
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    /// The stored state does not match the stored chain.
    #[error("stored state is inconsistent at height {height}: {reason}")]
    Inconsistent {
        /// The last stored height.
        height: u64,
        /// What differs.
        reason: String,
    },
    /// The network could not start.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The HTTP server could not bind.
    #[error("cannot listen for HTTP on {address}: {source}")]
    Api {
        /// The address.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The node halted.
    #[error(transparent)]
    Halt(#[from] HaltError),
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the config's genesis path.
    pub genesis: Option<PathBuf>,
    /// Test-only misbehaviour.
    pub misbehaviour: Option<Misbehaviour>,
}

/// Starts the node in `dir` with `config` and runs it until a signal or a halt.
pub async fn run(dir: &Path, config: Config, options: RunOptions) -> Result<(), RunError> {
    // Refusals first, each with one clear line and nothing logged before it.
    let key = keyfile::read_key(&Config::resolve(dir, &config.node.key_file))?;
    let genesis_path = match &options.genesis {
        Some(path) => path.clone(),
        None => Config::resolve(dir, &config.node.genesis),
    };
    let genesis = read_genesis(&genesis_path)?;
    let network_id = genesis.network_id();
    datadir::check_network(dir, &network_id)?;

    let validator_keys: Vec<PublicKey> = genesis.validators.iter().map(|v| v.key).collect();
    let validators =
        ValidatorSet::new(validator_keys).map_err(|error| RunError::GenesisInvalid {
            path: genesis_path.clone(),
            reason: error.to_string(),
        })?;
    let is_validator = validators.position(&key.public_key()).is_some();
    let storage = Storage::open(&dir.join(datadir::DB_DIR), config.storage.cache_bytes)?;
    tracing::info!(dir = %dir.display(), "effective configuration: {config}");
    tracing::info!(
        network = %network_id,
        address = %key.public_key(),
        role = if is_validator { "validator" } else { "full node" },
        "starting"
    );

    // The stored chain and the state it implies.
    let (ledger, head) = load_state(&storage, &genesis)?;
    let safety = load_safety(&storage)?;
    tracing::info!(
        height = head.as_ref().map_or(0, |h| h.height),
        "loaded chain"
    );

    // Network, then the tasks around it.
    let network_config = network_config(&config, &key, &genesis)?;
    let max_consensus_bytes = network_config.max_consensus_bytes;
    let (network, events) = network::spawn(network_config)?;
    let (shutdown_sender, shutdown) = watch::channel(false);
    let status = Arc::new(RwLock::new(StatusSnapshot {
        network_id,
        role: if is_validator { "validator" } else { "full" },
        address: key.public_key(),
        height: "0".into(),
        block_hash: protocol::Hash::ZERO,
        state_root: ledger.state_root(),
        round: 0,
        mempool_size: 0,
        peers: 0,
        syncing_since: None,
    }));
    let signatures = Arc::new(SignatureCache::new(SIGNATURE_CACHE_CAPACITY));
    let (core_sender, core_inputs) = mpsc::channel(CORE_CHANNEL_CAPACITY);
    let (behind_sender, behind) = mpsc::channel(1);
    let validators = Arc::new(validators);

    let listener = tokio::net::TcpListener::bind(config.api_listen())
        .await
        .map_err(|source| RunError::Api {
            address: config.api.listen.clone(),
            source,
        })?;
    let api_address = listener.local_addr().map_err(|source| RunError::Api {
        address: config.api.listen.clone(),
        source,
    })?;
    tracing::info!(address = %api_address, "HTTP API listening");
    datadir::remove_addresses(dir);
    let addresses = BoundAddresses {
        peer_id: network.local_peer_id.to_string(),
        address: key.public_key().to_string(),
        api: api_address.to_string(),
        p2p: Vec::new(),
    };

    let inbound = Inbound {
        network_id,
        validators: validators.clone(),
        core: core_sender.clone(),
        network: network.clone(),
        storage: storage.clone(),
        status: status.clone(),
        signatures: signatures.clone(),
        dir: dir.to_owned(),
        addresses: Arc::new(Mutex::new(addresses)),
        behind: behind_sender,
        asked: Arc::default(),
        max_consensus_bytes,
        withhold_blocks: options.misbehaviour == Some(Misbehaviour::WithholdBlocks),
    };
    tokio::spawn(inbound.run(events));

    let sync = Sync {
        network_id,
        validators: validators.clone(),
        network: network.clone(),
        core: core_sender.clone(),
        status: status.clone(),
        behind,
    };
    tokio::spawn(sync.run(shutdown.clone()));

    if options.misbehaviour == Some(Misbehaviour::Garbage) {
        tokio::spawn(publish_garbage(network.clone(), shutdown.clone()));
    }

    let evidence = SharedEvidence::default();
    let (heads, heads_receiver) = watch::channel(head.as_ref().map_or(0, |h| h.height));
    let live = LiveNode::new(
        genesis.clone(),
        core_sender,
        status.clone(),
        storage.clone(),
        signatures.clone(),
        evidence.clone(),
        heads_receiver,
    );
    let api_state = ApiState::new(Arc::new(live), api_config(&config));
    let mut api_shutdown = shutdown.clone();
    let server = api::serve(listener, api_state, async move {
        let _ = api_shutdown.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "HTTP server failed");
        }
    });

    let machine = StateMachine::new(Params {
        network_id,
        validators: (*validators).clone(),
        key: is_validator.then(|| key.clone()),
        timeouts: timeout_config(&config),
    });
    let core = Core::new(CoreParts {
        genesis,
        validators: (*validators).clone(),
        key,
        storage: storage.clone(),
        ledger,
        head,
        machine,
        safety,
        network,
        status,
        heads,
        mempool: (
            config.mempool.max_transfers as usize,
            config.mempool.max_per_sender as usize,
        ),
        empty_block_interval: Duration::from_millis(config.consensus.empty_block_interval_ms),
        max_clock_skew: Duration::from_millis(config.consensus.max_clock_skew_ms),
        misbehaviour: options.misbehaviour,
        evidence,
        signatures,
    });
    tokio::spawn(wait_for_signal(shutdown_sender.clone()));

    let result = core.run(core_inputs, shutdown.clone()).await;
    if let Err(error) = &result {
        tracing::error!(%error, "node halted");
    }

    // Whatever ended the core (a signal or a halt), every other task stops too.
    shutdown_sender.send_replace(true);
    let _ = server
        .await
        .map_err(|error| tracing::error!(%error, "HTTP task failed"));
    storage.flush()?;
    datadir::remove_addresses(dir);
    result.map_err(RunError::from)
}

fn read_genesis(path: &Path) -> Result<Genesis, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::GenesisUnreadable {
        path: path.to_owned(),
        source,
    })?;
    Genesis::from_toml(&text).map_err(|error| RunError::GenesisInvalid {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// The ledger and head header after the last stored block, checked against each other.
fn load_state(
    storage: &Storage,
    genesis: &Genesis,
) -> Result<(Ledger, Option<BlockHeader>), RunError> {
    let Some(height) = storage.last_height()? else {
        return Ok((Ledger::from_genesis(genesis), None));
    };
    let inconsistent = |reason: String| RunError::Inconsistent { height, reason };

    let bytes = storage
        .block(height)?
        .ok_or_else(|| inconsistent("head block missing".into()))?;
    let head = Block::decode(&bytes)
        .map_err(|error| inconsistent(format!("head block does not decode: {error}")))?
        .header;

    // Storage holds the accounts blocks changed; the others are as the genesis made them.
    let mut accounts: std::collections::BTreeMap<PublicKey, Account> =
        Ledger::from_genesis(genesis).accounts().collect();
    for (owner, stored) in storage.accounts()? {
        let account = Account {
            balance: stored.balance,
            next_sequence: stored.next_sequence,
        };
        accounts.insert(owner, account);
    }
    let ledger = Ledger::from_accounts(genesis, accounts)
        .map_err(|error| inconsistent(error.to_string()))?;
    if ledger.state_root() != head.state_root {
        return Err(inconsistent(format!(
            "stored accounts give state root {}, the head block states {}",
            ledger.state_root(),
            head.state_root
        )));
    }

    Ok((ledger, Some(head)))
}

/// The API's limits from the `[api]` section.
fn api_config(config: &Config) -> ApiConfig {
    ApiConfig {
        body_limit_bytes: usize::try_from(config.api.body_limit_bytes).unwrap_or(usize::MAX),
        body_timeout: Duration::from_millis(config.api.body_timeout_ms),
        cors_origins: config.api.cors_origins.clone(),
        rate_limit_per_second: config.api.rate_limit_per_second,
        ..ApiConfig::default()
    }
}

fn load_safety(storage: &Storage) -> Result<Option<SafetyState<ChainBlock>>, RunError> {
    match safety::load(storage) {
        Ok(state) => Ok(state),
        Err(safety::LoadError::Storage(error)) => Err(error.into()),
        Err(safety::LoadError::Safety(_)) => Err(RunError::Halt(HaltError::CorruptSafetyState)),
    }
}

fn network_config(
    config: &Config,
    key: &protocol::SecretKey,
    genesis: &Genesis,
) -> Result<NetworkConfig, RunError> {
    let parse = |address: &String| address.parse().expect("validated with the config");
    let max_block = genesis.max_block_bytes as usize;
    Ok(NetworkConfig {
        keypair: network::keypair(key),
        listen: config.p2p.listen.iter().map(parse).collect(),
        bootstrap: config.p2p.bootstrap.iter().map(parse).collect(),
        redial_interval: Duration::from_millis(config.p2p.redial_interval_ms),
        network_id: genesis.network_id(),
        max_consensus_bytes: max_block + CONSENSUS_OVERHEAD_BYTES,
        max_transfer_batch_bytes: crate::core::BATCH_MAX
            * (protocol::transfer::MAX_SIGNED_TRANSFER_BYTES + 4)
            + 64,
        max_sync_response_bytes: network::MAX_RANGE_BLOCKS as usize
            * (max_block + CONSENSUS_OVERHEAD_BYTES + 16 * 1024),
    })
}

fn timeout_config(config: &Config) -> TimeoutConfig {
    let consensus = &config.consensus;
    TimeoutConfig {
        propose_base_ms: consensus.timeout_propose_ms,
        propose_increment_ms: consensus.timeout_increment_ms,
        prevote_base_ms: consensus.timeout_vote_ms,
        prevote_increment_ms: consensus.timeout_increment_ms,
        precommit_base_ms: consensus.timeout_vote_ms,
        precommit_increment_ms: consensus.timeout_increment_ms,
    }
}

async fn wait_for_signal(shutdown: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.send_replace(true);
}

/// Test-only: publishes undecodable bytes on both topics until shutdown.
async fn publish_garbage(network: network::NetworkHandle, mut shutdown: watch::Receiver<bool>) {
    let mut counter: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        counter += 1;
        // Distinct bytes each time, so gossipsub's duplicate filter does not swallow them.
        let mut data = vec![0xff; 64];
        data.extend_from_slice(&counter.to_be_bytes());
        for topic in [Topic::Transfers, Topic::Consensus] {
            network
                .send(Command::Publish {
                    topic,
                    data: data.clone(),
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::block::{BlockContext, build_block};
    use protocol::genesis::Allocation;
    use protocol::{Decimals, Hash, SecretKey, SignedTransfer, Transfer, Validator};

    use crate::storage::{CommitWrite, StoredAccount};

    fn genesis(payer: &SecretKey) -> Genesis {
        Genesis {
            network: "run-tests".into(),
            decimals: Decimals::new(2).unwrap(),
            min_fee: 1,
            fee_account: SecretKey::from_seed(&[9; 32]).public_key(),
            max_supply: 1_000_000,
            max_block_transfers: 10,
            max_block_bytes: 1 << 16,
            validators: vec![Validator {
                name: "v".into(),
                key: SecretKey::from_seed(&[1; 32]).public_key(),
            }],
            allocations: vec![Allocation {
                account: payer.public_key(),
                balance: 1_000,
            }],
        }
    }

    /// What [`store_first_block`] damages.
    #[derive(PartialEq)]
    enum Tamper {
        Nothing,
        /// One account's sequence.
        Account,
    }

    /// Stores block 1 with the accounts it changed, damaged as told.
    fn store_first_block(storage: &Storage, genesis: &Genesis, payer: &SecretKey, tamper: Tamper) {
        let receiver = SecretKey::from_seed(&[3; 32]).public_key();
        let body = Transfer::new(
            genesis.network_id(),
            payer.public_key(),
            receiver,
            10,
            1,
            1,
            "",
        );
        let transfer = SignedTransfer::sign(body, payer).into_verified().unwrap();
        let ledger = Ledger::from_genesis(genesis);
        let context = BlockContext::after(None, genesis.validators[0].key, 1);
        let built = build_block(&ledger, genesis, context, vec![transfer]);

        let mut accounts: Vec<(PublicKey, StoredAccount)> = built
            .effects
            .changed
            .iter()
            .map(|(owner, a)| {
                (
                    *owner,
                    StoredAccount {
                        balance: a.balance,
                        next_sequence: a.next_sequence,
                    },
                )
            })
            .collect();
        if tamper == Tamper::Account {
            // Supply still adds up; only the state root can tell.
            accounts[0].1.next_sequence += 1;
        }
        let block = built.block.encode();
        let write = CommitWrite {
            height: 1,
            block_hash: built.block.hash(),
            block: &block,
            certificate: b"not read here",
            accounts,
            transfers: Vec::new(),
        };
        storage.commit(&write).unwrap();
    }

    #[test]
    fn stored_state_reloads_to_the_head_state_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let genesis = genesis(&payer);
        store_first_block(&storage, &genesis, &payer, Tamper::Nothing);

        let (ledger, head) = load_state(&storage, &genesis).unwrap();
        let head = head.unwrap();
        assert_eq!(head.height, 1);
        assert_eq!(ledger.state_root(), head.state_root);
        assert_ne!(head.state_root, Hash::ZERO);
        assert_eq!(ledger.account(&payer.public_key()).next_sequence, 2);
    }

    #[test]
    fn stored_accounts_that_disagree_with_the_head_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1 << 20).unwrap();
        let payer = SecretKey::from_seed(&[2; 32]);
        let genesis = genesis(&payer);
        store_first_block(&storage, &genesis, &payer, Tamper::Account);

        let error = load_state(&storage, &genesis).unwrap_err();
        assert!(
            matches!(error, RunError::Inconsistent { height: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("state root"), "{error}");
    }
}
