//! The Tally node runtime: one process per operator.
//!
//! Start-up and files:
//! - [`config`]: the TOML config, its defaults and environment overrides.
//! - [`keyfile`]: the secret key file and its permission check.
//! - [`datadir`]: the data directory's layout, network check and bound-address file.
//! - [`init`]: `tally node init`, a fresh data directory.
//! - [`run`]: `tally node run`: start-up checks, the tasks, shutdown.
//!
//! The running node:
//! - [`core`]: the one task that owns the ledger, the mempool and the consensus machine.
//! - [`storage`]: the sled database, the only module that touches sled.
//! - [`safety`]: the consensus safety state as stored, each block it names once.
//! - [`network`]: the libp2p swarm: gossip, block sync requests, peer redial.
//! - [`inbound`]: verdicts on gossip and answers to peers' sync requests.
//! - [`sync`]: fetching committed blocks from peers that are ahead.
//! - [`mempool`]: transfers waiting for a block.
//! - [`sigcache`]: signature verdicts, so each signed transfer is verified once.
//! - [`api`]: the wallet HTTP API and its interface to the node.
//! - [`chain`]: adapters between protocol types and the parts above.

pub mod api;
pub mod chain;
pub mod config;
pub mod core;
pub mod datadir;
pub mod evidence;
pub mod inbound;
pub mod init;
pub mod keyfile;
pub mod mempool;
pub mod network;
pub mod run;
pub mod safety;
pub mod sigcache;
pub mod storage;
pub mod sync;
