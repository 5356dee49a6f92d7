//! The Tally node runtime: one process per operator.
//!
//! - [`config`]: the TOML config, its defaults and environment overrides.
//! - [`keyfile`]: the secret key file and its permission check.
//! - [`datadir`]: the data directory's layout, network check and bound-address file.
//! - [`init`]: `tally node init`, a fresh data directory.
//! - [`storage`]: the sled database, the only module that touches sled.
//! - [`network`]: the libp2p swarm: gossip, block sync requests, peer redial.
//! - [`mempool`]: transfers waiting for a block.
//! - [`sigcache`]: signature verdicts, so each signed transfer is verified once.
//! - [`api`]: the wallet HTTP API and its interface to the node.

pub mod api;
pub mod config;
pub mod datadir;
pub mod init;
pub mod keyfile;
pub mod mempool;
pub mod network;
pub mod sigcache;
pub mod storage;
