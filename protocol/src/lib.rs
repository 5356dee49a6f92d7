//! Tally's pure core: types, canonical encoding, keys and signatures, ledger rules and the
//! consensus state machine.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a thread, logs or draws
//! randomness of its own: every node, the simulator and the auditor compute exactly the same
//! results from the same inputs.
//!
//! Reading order: [`hash`] and [`keys`] (digests, accounts, signatures), [`amount`] (units and
//! their decimal text), [`encoding`] (canonical postcard), [`transfer`] and [`batch`] (what is
//! signed and how it is checked), [`genesis`] (a network's rules), [`ledger`] and
//! [`state_tree`] (what applying a transfer does, and the state root), [`merkle`] and
//! [`block`] (what validators agree on), [`consensus`] (how they agree), [`receipt`] (proof of
//! one payment), [`chain_log`] and [`audit`] (how anyone checks the result).
//! `docs/protocol.md` and `docs/log-format.md` specify the bytes.

pub mod amount;
pub mod audit;
pub mod batch;
pub mod block;
pub mod chain_log;
pub mod consensus;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod receipt;
pub mod state_tree;
pub mod transfer;
pub mod verification;

pub use amount::{Decimals, format_amount, parse_amount, parse_positive_amount};
pub use audit::{AuditError, AuditFailure, AuditSummary, Auditor, SignatureVerdict};
pub use block::{Block, BlockHeader, build_block, validate_block};
pub use chain_log::CertifiedBlock;
pub use genesis::{Genesis, Validator};
pub use hash::Hash;
pub use keys::{PublicKey, SecretKey, Signature};
pub use ledger::{Account, Ledger, Rejection};
pub use transfer::{SignedTransfer, Transfer, VerifiedTransfer};
