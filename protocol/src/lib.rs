//! Tally's pure core: types, canonical encoding, keys and signatures, ledger rules and the
//! consensus state machine.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a thread or draws randomness of
//! its own: every node, the simulator and the auditor compute exactly the same results from
//! the same inputs.

pub mod consensus;
pub mod hash;
pub mod keys;

pub use hash::Hash;
pub use keys::{PublicKey, SecretKey, Signature};
