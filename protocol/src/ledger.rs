//! The ledger rules: what applying a signed transfer does to the accounts.
//!
//! Applying works in two phases, as every balance change must. First every rule is checked on
//! copies of the accounts involved, with checked arithmetic, and the accounts' next values are
//! computed; any failure returns a [`Rejection`] with nothing changed. Then the new values are
//! written back, with no fallible step left. A block is applied on an O(1) clone of the ledger
//! and swapped in only if every transfer applied, so a block either applies whole or not at
//! all.
//!
//! An account, once created, is never pruned, even at zero balance: pruning would reset its
//! sequence number and let old transfers be replayed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::amount::{Decimals, format_amount};
use crate::batch::verify_batch;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::keys::{BadSignature, PublicKey};
use crate::state_tree::{StateProof, StateTree};
use crate::transfer::{FormError, SignedTransfer, VerifiedTransfer};

/// The sequence number of an account's first transfer.
pub const FIRST_SEQUENCE: u64 = 1;

/// One account's state. An account that was never written is `Account::default()`:
/// balance 0, next sequence 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    /// Units held.
    pub balance: u64,
    /// The sequence number the account's next transfer must carry.
    pub next_sequence: u64,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            balance: 0,
            next_sequence: FIRST_SEQUENCE,
        }
    }
}

/// Why a transfer does not apply. Wallets show these to people: the [`Rejection::code`]s are
/// stable and never reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The transfer body has a version this code does not know.
    #[error("transfer version {version} is not supported")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The memo is longer than 140 bytes.
    #[error("memo is {bytes} bytes, at most 140 allowed")]
    MemoTooLong {
        /// The memo's length in bytes.
        bytes: usize,
    },
    /// The transfer was signed for another network.
    #[error("transfer is for network {got}, this is {expected}")]
    WrongNetwork {
        /// This network's id.
        expected: Hash,
        /// The transfer's network id.
        got: Hash,
    },
    /// The signature does not verify under the sender's key.
    #[error("signature does not verify under the sender's key")]
    BadSignature,
    /// Sender and receiver are the same account.
    #[error("sender and receiver are the same account")]
    SelfTransfer,
    /// The amount is zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// The fee is below the genesis minimum.
    #[error("fee {got} units is below the minimum of {minimum} units")]
    FeeTooLow {
        /// The genesis minimum fee.
        minimum: u64,
        /// The transfer's fee.
        got: u64,
    },
    /// The sequence number is not the sender's next one (a replay, a gap, or a race lost).
    #[error("sequence {got} is not the sender's next sequence {expected}")]
    BadSequence {
        /// The sender's next sequence.
        expected: u64,
        /// The transfer's sequence.
        got: u64,
    },
    /// The sender has used every sequence number there is.
    #[error("sender's sequence numbers are exhausted")]
    SequenceExhausted,
    /// The sender's balance does not cover amount + fee.
    #[error("balance {balance} units does not cover amount {amount} + fee {fee} units")]
    InsufficientFunds {
        /// The sender's balance.
        balance: u64,
        /// The transfer's amount.
        amount: u64,
        /// The transfer's fee.
        fee: u64,
    },
    /// Crediting would overflow a balance. Cannot happen while supply is conserved under a
    /// cap below 2^64; checked anyway so that no input can make the ledger panic.
    #[error("crediting would overflow a balance")]
    BalanceOverflow,
}

impl Rejection {
    /// The stable snake_case code wallets and APIs use.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnsupportedVersion { .. } => "unsupported_version",
            Rejection::MemoTooLong { .. } => "memo_too_long",
            Rejection::WrongNetwork { .. } => "wrong_network",
            Rejection::BadSignature => "bad_signature",
            Rejection::SelfTransfer => "self_transfer",
            Rejection::ZeroAmount => "zero_amount",
            Rejection::FeeTooLow { .. } => "fee_too_low",
            Rejection::BadSequence { .. } => "bad_sequence",
            Rejection::SequenceExhausted => "sequence_exhausted",
            Rejection::InsufficientFunds { .. } => "insufficient_funds",
            Rejection::BalanceOverflow => "balance_overflow",
        }
    }

    /// Whether the transfer might still apply after later transfers change the ledger: a
    /// sequence ahead of the sender's next one, or funds that may yet arrive. Every other
    /// rejection is final for this transfer (a sequence behind the next one was used already).
    pub fn may_apply_later(&self) -> bool {
        match self {
            Rejection::BadSequence { expected, got } => got > expected,
            Rejection::InsufficientFunds { .. } => true,
            _ => false,
        }
    }

    /// A sentence for people, with amounts at the network's `decimals`.
    pub fn message(&self, decimals: Decimals) -> String {
        let coins = |units: u64| format_amount(units, decimals);
        match self {
            Rejection::FeeTooLow { minimum, got } => {
                format!(
                    "fee {} is below the minimum fee of {}",
                    coins(*got),
                    coins(*minimum)
                )
            }
            Rejection::InsufficientFunds {
                balance,
                amount,
                fee,
            } => format!(
                "balance {} does not cover amount {} plus fee {}",
                coins(*balance),
                coins(*amount),
                coins(*fee)
            ),
            other => other.to_string(),
        }
    }
}

impl From<FormError> for Rejection {
    fn from(error: FormError) -> Rejection {
        match error {
            FormError::UnsupportedVersion(version) => Rejection::UnsupportedVersion { version },
            FormError::MemoTooLong(bytes) => Rejection::MemoTooLong { bytes },
        }
    }
}

/// The result of one applied transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The transfer id.
    pub id: Hash,
    /// Every account the transfer wrote (sender, receiver, fee account; each once), with its
    /// new value.
    pub accounts: Vec<(PublicKey, Account)>,
}

/// What applying a block did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockEffects {
    /// One entry per transfer, in block order.
    pub applied: Vec<Applied>,
    /// The final value of every account the block wrote: what a node must persist.
    pub changed: BTreeMap<PublicKey, Account>,
    /// The state root after the block.
    pub state_root: Hash,
}

impl BlockEffects {
    pub(crate) fn record(&mut self, applied: Applied) {
        for (owner, account) in &applied.accounts {
            self.changed.insert(*owner, *account);
        }
        self.applied.push(applied);
    }
}

/// Why stored accounts cannot be the state of this genesis's network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The same account appears twice.
    #[error("account {0} appears twice")]
    DuplicateAccount(PublicKey),
    /// An account's next sequence is 0, which no state can reach.
    #[error("account {0} has next sequence 0")]
    ZeroSequence(PublicKey),
    /// The fee account is missing; it exists from genesis on.
    #[error("the fee account is missing")]
    MissingFeeAccount,
    /// The balances do not add up to the genesis supply.
    #[error("balances add up to {got} units, the genesis supply is {expected}")]
    SupplyMismatch {
        /// The genesis supply.
        expected: u64,
        /// The sum of the loaded balances.
        got: u128,
    },
}

/// How a transfer's signature is to be treated while checking it.
#[derive(Clone, Copy)]
enum SignatureCheck {
    /// Verify it now.
    Verify,
    /// Already verified, with this outcome.
    Known(Result<(), BadSignature>),
}

/// The new values of the accounts one transfer writes, computed but not yet written.
struct Staged {
    writes: Vec<(PublicKey, Account)>,
    /// The value each write replaces, in the same order.
    before: [Account; 3],
}

/// The accounts a block has written so far, over the ledger before it: each one's value
/// before the block and its latest. A block's transfers read through it and its tree is
/// written once at the end, so each inner node on the changed paths is hashed once per block
/// instead of once per write.
struct Overlay<'a> {
    base: &'a Ledger,
    written: BTreeMap<PublicKey, (Account, Account)>,
}

impl Overlay<'_> {
    fn write(&mut self, staged: &Staged) {
        for ((owner, account), before) in staged.writes.iter().zip(staged.before) {
            self.written
                .entry(*owner)
                .and_modify(|(_, latest)| *latest = *account)
                .or_insert((before, *account));
        }
    }
}

/// Where staging a transfer reads accounts from.
trait Accounts {
    fn read(&self, owner: &PublicKey) -> Account;
}

impl Accounts for Ledger {
    fn read(&self, owner: &PublicKey) -> Account {
        self.account(owner)
    }
}

impl Accounts for Overlay<'_> {
    fn read(&self, owner: &PublicKey) -> Account {
        match self.written.get(owner) {
            Some((_, latest)) => *latest,
            None => self.base.account(owner),
        }
    }
}

/// A block replayed by [`Ledger::replay_block_with_signatures`].
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The ledger after the block.
    pub ledger: Ledger,
    /// Its state root.
    pub state_root: Hash,
    /// The balances of the accounts the block wrote, added up before the block.
    pub written_before: u128,
    /// The same accounts' balances added up after it; equal to `written_before` whenever the
    /// ledger rules hold.
    pub written_after: u128,
}

/// Every account and the state tree over them, for one network.
///
/// Cloning is O(1): accounts live in the persistent [`StateTree`].
#[derive(Clone)]
pub struct Ledger {
    network_id: Hash,
    min_fee: u64,
    fee_account: PublicKey,
    supply: u64,
    tree: StateTree,
}

impl Ledger {
    /// The state at genesis: the allocations, plus the fee account at zero if it has none.
    /// `genesis` must be validated (see [`Genesis::total_supply`]).
    pub fn from_genesis(genesis: &Genesis) -> Ledger {
        let mut tree = StateTree::new();
        tree.insert(genesis.fee_account, Account::default());
        for allocation in &genesis.allocations {
            let account = Account {
                balance: allocation.balance,
                next_sequence: FIRST_SEQUENCE,
            };
            tree.insert(allocation.account, account);
        }
        Ledger::with_tree(genesis, tree)
    }

    /// Rebuilds a ledger from stored accounts, as a node does at start. Gives the same state
    /// root as the ledger that wrote them; the caller compares it with its last block's.
    pub fn from_accounts(
        genesis: &Genesis,
        accounts: impl IntoIterator<Item = (PublicKey, Account)>,
    ) -> Result<Ledger, LoadError> {
        let accounts: Vec<(PublicKey, Account)> = accounts.into_iter().collect();
        let mut total: u128 = 0;
        for (owner, account) in &accounts {
            if account.next_sequence == 0 {
                return Err(LoadError::ZeroSequence(*owner));
            }
            total += u128::from(account.balance);
        }
        let tree = StateTree::from_accounts(accounts).map_err(LoadError::DuplicateAccount)?;

        if tree.get(&genesis.fee_account).is_none() {
            return Err(LoadError::MissingFeeAccount);
        }
        let expected = genesis.total_supply();
        if total != u128::from(expected) {
            return Err(LoadError::SupplyMismatch {
                expected,
                got: total,
            });
        }
        Ok(Ledger::with_tree(genesis, tree))
    }

    fn with_tree(genesis: &Genesis, tree: StateTree) -> Ledger {
        Ledger {
            network_id: genesis.network_id(),
            min_fee: genesis.min_fee,
            fee_account: genesis.fee_account,
            supply: genesis.total_supply(),
            tree,
        }
    }

    /// The id of the network this ledger belongs to.
    pub fn network_id(&self) -> Hash {
        self.network_id
    }

    /// The least fee a transfer must carry, in units.
    pub fn min_fee(&self) -> u64 {
        self.min_fee
    }

    /// The account every fee goes to.
    pub fn fee_account(&self) -> PublicKey {
        self.fee_account
    }

    /// `owner`'s account; the fresh account (balance 0, next sequence 1) if never written.
    pub fn account(&self, owner: &PublicKey) -> Account {
        self.tree.get(owner).unwrap_or_default()
    }

    /// Whether `owner`'s account was ever written.
    pub fn contains(&self, owner: &PublicKey) -> bool {
        self.tree.get(owner).is_some()
    }

    /// The number of accounts ever written.
    pub fn account_count(&self) -> usize {
        self.tree.len()
    }

    /// Every account, in state-tree key order.
    pub fn accounts(&self) -> impl Iterator<Item = (PublicKey, Account)> + '_ {
        self.tree.iter()
    }

    /// The root of the state tree.
    pub fn state_root(&self) -> Hash {
        self.tree.root()
    }

    /// A proof of `owner`'s account against [`Ledger::state_root`].
    pub fn prove(&self, owner: &PublicKey) -> StateProof {
        self.tree.prove(owner)
    }

    /// The sum of all balances, counted account by account (O(accounts)). Always equals the
    /// genesis supply; tests use it to check exactly that.
    pub fn total_supply(&self) -> u128 {
        self.tree
            .iter()
            .map(|(_, account)| u128::from(account.balance))
            .sum()
    }

    /// The supply fixed at genesis.
    pub fn genesis_supply(&self) -> u64 {
        self.supply
    }

    /// Checks whether `signed` would apply now, signature included, changing nothing.
    pub fn check(&self, signed: &SignedTransfer) -> Result<Hash, Rejection> {
        self.stage(self, signed, SignatureCheck::Verify)?;
        Ok(signed.id())
    }

    /// Like [`Ledger::check`], for a transfer whose signature is already verified.
    pub fn check_verified(&self, verified: &VerifiedTransfer) -> Result<Hash, Rejection> {
        self.stage(self, verified, SignatureCheck::Known(Ok(())))?;
        Ok(verified.id())
    }

    /// Applies `signed`, signature included. On a rejection nothing changed.
    pub fn apply(&mut self, signed: &SignedTransfer) -> Result<Applied, Rejection> {
        let staged = self.stage(self, signed, SignatureCheck::Verify)?;
        Ok(self.write(signed, staged))
    }

    /// Applies a transfer whose signature is already verified. On a rejection nothing changed.
    pub fn apply_verified(&mut self, verified: &VerifiedTransfer) -> Result<Applied, Rejection> {
        let staged = self.stage(self, verified, SignatureCheck::Known(Ok(())))?;
        Ok(self.write(verified, staged))
    }

    /// Applies every transfer in order, or none: on the first rejection, returns its index
    /// and nothing changed. Signatures are verified as one batch first.
    pub fn apply_block(
        &mut self,
        transfers: &[SignedTransfer],
    ) -> Result<BlockEffects, (usize, Rejection)> {
        let (next, effects) = self.preview_block(transfers)?;
        *self = next;
        Ok(effects)
    }

    /// Like [`Ledger::apply_block`], for transfers whose signatures are already verified.
    pub fn apply_block_verified(
        &mut self,
        transfers: &[VerifiedTransfer],
    ) -> Result<BlockEffects, (usize, Rejection)> {
        let (next, effects) = self.preview_block_verified(transfers)?;
        *self = next;
        Ok(effects)
    }

    /// The ledger after `transfers` and what they did, leaving `self` as it is.
    pub fn preview_block(
        &self,
        transfers: &[SignedTransfer],
    ) -> Result<(Ledger, BlockEffects), (usize, Rejection)> {
        let refs: Vec<&SignedTransfer> = transfers.iter().collect();
        let signatures = verify_batch(&refs);
        let checks = signatures.into_iter().map(SignatureCheck::Known);
        self.preview(transfers.iter().zip(checks))
    }

    /// Like [`Ledger::preview_block`], with each transfer's signature outcome computed by the
    /// caller (an auditor spreads [`crate::batch::verify_batch`] over all cores). A transfer
    /// whose outcome is an error is rejected as [`Rejection::BadSignature`] in its turn.
    ///
    /// # Panics
    ///
    /// If `signatures` does not hold exactly one outcome per transfer: that is a bug in the
    /// caller, not bad input.
    pub fn preview_block_with_signatures(
        &self,
        transfers: &[SignedTransfer],
        signatures: &[Result<(), BadSignature>],
    ) -> Result<(Ledger, BlockEffects), (usize, Rejection)> {
        assert_eq!(
            transfers.len(),
            signatures.len(),
            "one signature outcome per transfer"
        );
        let checks = signatures.iter().copied().map(SignatureCheck::Known);
        self.preview(transfers.iter().zip(checks))
    }

    /// Like [`Ledger::preview_block`], for transfers whose signatures are already verified.
    pub fn preview_block_verified(
        &self,
        transfers: &[VerifiedTransfer],
    ) -> Result<(Ledger, BlockEffects), (usize, Rejection)> {
        let signed = transfers.iter().map(VerifiedTransfer::signed);
        self.preview(signed.zip(std::iter::repeat(SignatureCheck::Known(Ok(())))))
    }

    /// Like [`Ledger::preview_block_with_signatures`] for a caller that needs only the
    /// resulting state, as an auditor replaying a chain does: no per-transfer record is
    /// made, so no transfer id is computed. The same transfers are rejected at the same
    /// index with the same [`Rejection`].
    ///
    /// # Panics
    ///
    /// If `signatures` does not hold exactly one outcome per transfer.
    pub fn replay_block_with_signatures(
        &self,
        transfers: &[SignedTransfer],
        signatures: &[Result<(), BadSignature>],
    ) -> Result<Replayed, (usize, Rejection)> {
        assert_eq!(
            transfers.len(),
            signatures.len(),
            "one signature outcome per transfer"
        );
        let checks = signatures.iter().copied().map(SignatureCheck::Known);
        let overlay = self.stage_block(transfers.iter().zip(checks), |_, _| {})?;
        let (mut written_before, mut written_after) = (0u128, 0u128);
        for (before, after) in overlay.written.values() {
            written_before += u128::from(before.balance);
            written_after += u128::from(after.balance);
        }
        let mut ledger = self.clone();
        ledger
            .tree
            .insert_many((overlay.written.into_iter()).map(|(owner, (_, after))| (owner, after)));
        Ok(Replayed {
            state_root: ledger.state_root(),
            ledger,
            written_before,
            written_after,
        })
    }

    fn preview<'a>(
        &self,
        transfers: impl Iterator<Item = (&'a SignedTransfer, SignatureCheck)>,
    ) -> Result<(Ledger, BlockEffects), (usize, Rejection)> {
        let mut effects = BlockEffects::default();
        let overlay = self.stage_block(transfers, |signed, staged| {
            effects.applied.push(Applied {
                id: signed.id(),
                accounts: staged.writes,
            });
        })?;
        effects.changed = (overlay.written.into_iter())
            .map(|(owner, (_, after))| (owner, after))
            .collect();
        let mut next = self.clone();
        next.tree
            .insert_many(effects.changed.iter().map(|(o, a)| (*o, *a)));
        effects.state_root = next.state_root();
        Ok((next, effects))
    }

    /// Stages every transfer in order over an overlay of this ledger, calling `applied` for
    /// each; stops at the first rejection with its index.
    fn stage_block<'a>(
        &self,
        transfers: impl Iterator<Item = (&'a SignedTransfer, SignatureCheck)>,
        mut applied: impl FnMut(&SignedTransfer, Staged),
    ) -> Result<Overlay<'_>, (usize, Rejection)> {
        let mut overlay = Overlay {
            base: self,
            written: BTreeMap::new(),
        };
        for (index, (signed, signature)) in transfers.enumerate() {
            let staged = self
                .stage(&overlay, signed, signature)
                .map_err(|rejection| (index, rejection))?;
            overlay.write(&staged);
            applied(signed, staged);
        }
        Ok(overlay)
    }

    /// Phase one: checks every rule on copies of the accounts, read from `accounts`, and
    /// computes their next values.
    fn stage(
        &self,
        accounts: &impl Accounts,
        signed: &SignedTransfer,
        signature: SignatureCheck,
    ) -> Result<Staged, Rejection> {
        self.check_stateless(signed, signature)?;
        let transfer = &signed.transfer;

        // Debit a copy of the sender's account and advance its sequence.
        let sender_before = accounts.read(&transfer.sender);
        let mut sender = sender_before;
        if transfer.sequence != sender.next_sequence {
            return Err(Rejection::BadSequence {
                expected: sender.next_sequence,
                got: transfer.sequence,
            });
        }
        let insufficient = Rejection::InsufficientFunds {
            balance: sender.balance,
            amount: transfer.amount,
            fee: transfer.fee,
        };
        let debit = transfer.amount.checked_add(transfer.fee);
        sender.balance = debit
            .and_then(|debit| sender.balance.checked_sub(debit))
            .ok_or(insufficient)?;
        sender.next_sequence = sender
            .next_sequence
            .checked_add(1)
            .ok_or(Rejection::SequenceExhausted)?;

        // Credit the receiver, and the fee account, which may be either party: the fee then
        // lands on that party's copy so the two writes cannot overwrite each other.
        let receiver_before = accounts.read(&transfer.receiver);
        let mut receiver = receiver_before;
        receiver.balance = credit(receiver.balance, transfer.amount)?;
        let mut writes = Vec::with_capacity(3);
        let mut before = [sender_before, receiver_before, Account::default()];
        if self.fee_account == transfer.sender {
            sender.balance = credit(sender.balance, transfer.fee)?;
        } else if self.fee_account == transfer.receiver {
            receiver.balance = credit(receiver.balance, transfer.fee)?;
        } else {
            let mut fees = accounts.read(&self.fee_account);
            before[2] = fees;
            fees.balance = credit(fees.balance, transfer.fee)?;
            writes.push((self.fee_account, fees));
        }
        writes.insert(0, (transfer.receiver, receiver));
        writes.insert(0, (transfer.sender, sender));
        let staged = Staged { writes, before };
        if cfg!(debug_assertions) {
            let (before, after) = staged.totals();
            assert_eq!(before, after, "a transfer must conserve supply");
        }
        Ok(staged)
    }

    /// The rules that need no account state, in the order the docs list them. A transfer
    /// refused here can never apply, whatever happens to the ledger.
    fn check_stateless(
        &self,
        signed: &SignedTransfer,
        signature: SignatureCheck,
    ) -> Result<(), Rejection> {
        let transfer = &signed.transfer;
        transfer.check_form()?;
        if transfer.network_id != self.network_id {
            return Err(Rejection::WrongNetwork {
                expected: self.network_id,
                got: transfer.network_id,
            });
        }

        let verified = match signature {
            SignatureCheck::Verify => signed.verify_signature(),
            SignatureCheck::Known(outcome) => outcome,
        };
        verified.map_err(|BadSignature| Rejection::BadSignature)?;

        if transfer.sender == transfer.receiver {
            return Err(Rejection::SelfTransfer);
        }
        if transfer.amount == 0 {
            return Err(Rejection::ZeroAmount);
        }
        if transfer.fee < self.min_fee {
            return Err(Rejection::FeeTooLow {
                minimum: self.min_fee,
                got: transfer.fee,
            });
        }
        Ok(())
    }

    /// Phase two: writes the staged values. Nothing here can fail.
    fn write(&mut self, signed: &SignedTransfer, staged: Staged) -> Applied {
        for (owner, account) in &staged.writes {
            self.tree.insert(*owner, *account);
        }
        Applied {
            id: signed.id(),
            accounts: staged.writes,
        }
    }
}

impl Staged {
    /// The balances of the written accounts, added up before and after the transfer.
    fn totals(&self) -> (u128, u128) {
        let balance = |account: &Account| u128::from(account.balance);
        let before = self.before[..self.writes.len()].iter().map(balance).sum();
        let after = self
            .writes
            .iter()
            .map(|(_, account)| balance(account))
            .sum();
        (before, after)
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("network_id", &self.network_id)
            .field("accounts", &self.tree.len())
            .field("state_root", &self.state_root())
            .finish_non_exhaustive()
    }
}

fn credit(balance: u64, units: u64) -> Result<u64, Rejection> {
    balance.checked_add(units).ok_or(Rejection::BalanceOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::tests::{key, sample};
    use crate::keys::SecretKey;
    use crate::transfer::Transfer;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    fn transfer(
        ledger: &Ledger,
        from: u8,
        to: u8,
        amount: u64,
        fee: u64,
        seq: u64,
    ) -> SignedTransfer {
        let sender = secret(from);
        let body = Transfer::new(
            ledger.network_id(),
            sender.public_key(),
            key(to),
            amount,
            fee,
            seq,
            "",
        );
        SignedTransfer::sign(body, &sender)
    }

    fn ledger() -> Ledger {
        Ledger::from_genesis(&sample())
    }

    #[test]
    fn a_transfer_moves_amount_and_fee() {
        let mut ledger = ledger();
        let signed = transfer(&ledger, 1, 3, 400, 2, 1);
        let applied = ledger.apply(&signed).expect("applies");

        assert_eq!(applied.id, signed.id());
        assert_eq!(
            ledger.account(&key(1)),
            Account {
                balance: 9_598,
                next_sequence: 2
            }
        );
        assert_eq!(
            ledger.account(&key(3)),
            Account {
                balance: 400,
                next_sequence: 1
            }
        );
        assert_eq!(ledger.account(&key(200)).balance, 2);
        assert_eq!(ledger.total_supply(), 10_500);
        assert_eq!(applied.accounts.len(), 3);
    }

    #[test]
    fn replay_and_gap_are_bad_sequences() {
        let mut ledger = ledger();
        let first = transfer(&ledger, 1, 3, 10, 1, 1);
        ledger.apply(&first).expect("applies");

        let root = ledger.state_root();
        assert_eq!(
            ledger.apply(&first),
            Err(Rejection::BadSequence {
                expected: 2,
                got: 1
            })
        );
        let gap = transfer(&ledger, 1, 3, 10, 1, 3);
        assert_eq!(
            ledger.apply(&gap),
            Err(Rejection::BadSequence {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(ledger.state_root(), root);
    }

    #[test]
    fn sequence_u64_max_is_refused_without_overflow() {
        let mut ledger = ledger();
        let max = transfer(&ledger, 1, 3, 10, 1, u64::MAX);
        assert_eq!(
            ledger.apply(&max),
            Err(Rejection::BadSequence {
                expected: 1,
                got: u64::MAX
            })
        );

        // An account whose next sequence is u64::MAX can never advance past it.
        let genesis = sample();
        let exhausted = Account {
            balance: 10_000,
            next_sequence: u64::MAX,
        };
        let accounts = [
            (key(1), exhausted),
            (
                key(2),
                Account {
                    balance: 500,
                    next_sequence: 1,
                },
            ),
        ];
        let fees = (key(200), Account::default());
        let mut ledger = Ledger::from_accounts(&genesis, accounts.into_iter().chain([fees]))
            .expect("valid state");
        let last = transfer(&ledger, 1, 3, 10, 1, u64::MAX);
        assert_eq!(ledger.apply(&last), Err(Rejection::SequenceExhausted));
    }

    #[test]
    fn each_broken_rule_has_its_rejection() {
        let mut ledger = ledger();
        let network = ledger.network_id();

        let mut other_network = transfer(&ledger, 1, 3, 10, 1, 1);
        other_network.transfer.network_id = Hash::digest(b"other");
        let other_network = SignedTransfer::sign(other_network.transfer, &secret(1));
        assert_eq!(
            ledger.apply(&other_network),
            Err(Rejection::WrongNetwork {
                expected: network,
                got: Hash::digest(b"other")
            })
        );

        let mut forged = transfer(&ledger, 1, 3, 10, 1, 1);
        forged.transfer.amount = 11;
        assert_eq!(ledger.apply(&forged), Err(Rejection::BadSignature));

        let cases = [
            (transfer(&ledger, 1, 1, 10, 1, 1), Rejection::SelfTransfer),
            (transfer(&ledger, 1, 3, 0, 1, 1), Rejection::ZeroAmount),
            (
                transfer(&ledger, 1, 3, 10, 0, 1),
                Rejection::FeeTooLow { minimum: 1, got: 0 },
            ),
            (
                transfer(&ledger, 2, 3, 500, 1, 1),
                Rejection::InsufficientFunds {
                    balance: 500,
                    amount: 500,
                    fee: 1,
                },
            ),
            (
                transfer(&ledger, 2, 3, u64::MAX, 1, 1),
                Rejection::InsufficientFunds {
                    balance: 500,
                    amount: u64::MAX,
                    fee: 1,
                },
            ),
            (
                transfer(&ledger, 3, 1, 1, 1, 1),
                Rejection::InsufficientFunds {
                    balance: 0,
                    amount: 1,
                    fee: 1,
                },
            ),
        ];
        let root = ledger.state_root();
        for (signed, expected) in cases {
            assert_eq!(ledger.check(&signed), Err(expected.clone()));
            assert_eq!(ledger.apply(&signed), Err(expected));
        }
        assert_eq!(ledger.state_root(), root);
        assert!(
            !ledger.contains(&key(3)),
            "a rejected transfer creates no account"
        );
    }

    #[test]
    fn rules_that_need_no_state_come_first() {
        let ledger = ledger();
        // Wrong sequence and self-transfer at once: the stateless rule wins.
        let both = transfer(&ledger, 1, 1, 10, 1, 7);
        assert_eq!(ledger.check(&both), Err(Rejection::SelfTransfer));
        let broke_and_cheap = transfer(&ledger, 3, 1, 10, 0, 1);
        assert_eq!(
            ledger.check(&broke_and_cheap),
            Err(Rejection::FeeTooLow { minimum: 1, got: 0 })
        );
    }

    #[test]
    fn fee_account_as_sender_or_receiver_is_credited_once() {
        let mut genesis = sample();
        genesis.fee_account = key(1);
        let mut ledger = Ledger::from_genesis(&genesis);

        // The fee account pays: it loses only the amount.
        ledger
            .apply(&transfer(&ledger, 1, 2, 100, 5, 1))
            .expect("applies");
        assert_eq!(ledger.account(&key(1)).balance, 9_900);
        assert_eq!(ledger.account(&key(2)).balance, 600);

        // The fee account is paid: it gains amount and fee.
        let applied = ledger
            .apply(&transfer(&ledger, 2, 1, 100, 5, 1))
            .expect("applies");
        assert_eq!(ledger.account(&key(1)).balance, 10_005);
        assert_eq!(ledger.account(&key(2)).balance, 495);
        assert_eq!(applied.accounts.len(), 2);
        assert_eq!(ledger.total_supply(), 10_500);
    }

    #[test]
    fn a_failing_block_changes_nothing() {
        let mut ledger = ledger();
        let root = ledger.state_root();
        let block = [
            transfer(&ledger, 1, 3, 10, 1, 1),
            transfer(&ledger, 1, 3, 10, 1, 2),
            transfer(&ledger, 2, 3, 10_000, 1, 1),
        ];
        let expected = Rejection::InsufficientFunds {
            balance: 500,
            amount: 10_000,
            fee: 1,
        };
        assert_eq!(ledger.apply_block(&block), Err((2, expected)));
        assert_eq!(ledger.state_root(), root);
        assert_eq!(ledger.account(&key(1)).next_sequence, 1);

        let effects = ledger.apply_block(&block[..2]).expect("applies");
        assert_eq!(effects.applied.len(), 2);
        assert_eq!(effects.state_root, ledger.state_root());
        assert_eq!(effects.changed.len(), 3);
        assert_eq!(effects.changed[&key(3)].balance, 20);
    }

    #[test]
    fn a_block_at_once_equals_its_transfers_one_by_one() {
        let ledger = ledger();
        // Accounts written several times, created by the block, and the fee account as
        // receiver and as sender of the fees it collected.
        let block = [
            transfer(&ledger, 1, 3, 100, 1, 1),
            transfer(&ledger, 3, 200, 50, 1, 1),
            transfer(&ledger, 2, 1, 7, 2, 1),
            transfer(&ledger, 200, 4, 30, 1, 1),
            transfer(&ledger, 1, 3, 5, 1, 2),
            transfer(&ledger, 4, 1, 29, 1, 1),
        ];
        let mut one_by_one = ledger.clone();
        let applied: Vec<Applied> = (block.iter())
            .map(|signed| one_by_one.apply(signed).expect("applies"))
            .collect();

        let (next, effects) = ledger.preview_block(&block).expect("applies");
        assert_eq!(effects.applied, applied);
        assert_eq!(effects.state_root, one_by_one.state_root());
        assert_eq!(next.state_root(), one_by_one.state_root());
        assert!(next.accounts().eq(one_by_one.accounts()));
        let changed: BTreeMap<_, _> = applied.iter().flat_map(|a| a.accounts.clone()).collect();
        assert_eq!(effects.changed, changed);

        let signatures = vec![Ok(()); block.len()];
        let replayed = (ledger.replay_block_with_signatures(&block, &signatures)).expect("applies");
        assert_eq!(replayed.state_root, one_by_one.state_root());
        assert_eq!(replayed.ledger.state_root(), one_by_one.state_root());
        let before: u128 = changed
            .keys()
            .map(|o| u128::from(ledger.account(o).balance))
            .sum();
        assert_eq!(replayed.written_before, before);
        assert_eq!(replayed.written_after, before);

        // A later transfer that fails after earlier writes to its accounts: same index and
        // rejection either way, and the ledger is left as it was.
        let mut failing = block.to_vec();
        failing.push(transfer(&ledger, 3, 1, 54, 1, 2));
        let mut one_by_one = ledger.clone();
        let first_failure = (failing.iter().enumerate())
            .find_map(|(i, signed)| one_by_one.apply(signed).err().map(|r| (i, r)));
        let expected = Rejection::InsufficientFunds {
            balance: 54,
            amount: 54,
            fee: 1,
        };
        assert_eq!(first_failure, Some((6, expected.clone())));
        assert_eq!(
            ledger.preview_block(&failing).map(|_| ()),
            Err((6, expected.clone()))
        );
        let signatures = vec![Ok(()); failing.len()];
        assert_eq!(
            (ledger.replay_block_with_signatures(&failing, &signatures)).map(|_| ()),
            Err((6, expected))
        );
        let mut signatures = signatures;
        signatures[4] = Err(BadSignature);
        assert_eq!(
            (ledger.replay_block_with_signatures(&failing, &signatures)).map(|_| ()),
            Err((4, Rejection::BadSignature))
        );
    }

    #[test]
    fn block_reports_the_first_failure_in_order() {
        let ledger = ledger();
        let mut bad_signature = transfer(&ledger, 2, 3, 1, 1, 1);
        bad_signature.signature.0[1] ^= 1;
        let block = [transfer(&ledger, 1, 3, 1, 1, 2), bad_signature];
        assert_eq!(
            ledger.preview_block(&block).map(|_| ()),
            Err((
                0,
                Rejection::BadSequence {
                    expected: 1,
                    got: 2
                }
            ))
        );
    }

    #[test]
    fn reloaded_accounts_give_the_same_root() {
        let genesis = sample();
        let mut ledger = Ledger::from_genesis(&genesis);
        ledger
            .apply(&transfer(&ledger, 1, 3, 10, 1, 1))
            .expect("applies");

        let reloaded = Ledger::from_accounts(&genesis, ledger.accounts()).expect("valid");
        assert_eq!(reloaded.state_root(), ledger.state_root());

        let mut short: Vec<_> = ledger.accounts().collect();
        short.retain(|(owner, _)| *owner != key(3));
        assert_eq!(
            Ledger::from_accounts(&genesis, short).err(),
            Some(LoadError::SupplyMismatch {
                expected: 10_500,
                got: 10_490
            })
        );
        let doubled = ledger.accounts().chain(ledger.accounts().take(1));
        assert!(matches!(
            Ledger::from_accounts(&genesis, doubled),
            Err(LoadError::DuplicateAccount(_))
        ));
    }

    #[test]
    fn verified_paths_skip_the_signature_check_only() {
        let mut ledger = ledger();
        let signed = transfer(&ledger, 1, 3, 10, 1, 1);
        let verified = signed.clone().into_verified().expect("good signature");
        assert_eq!(ledger.check_verified(&verified), Ok(signed.id()));
        ledger.apply_verified(&verified).expect("applies");
        assert_eq!(
            ledger.apply_verified(&verified),
            Err(Rejection::BadSequence {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn codes_and_messages_are_for_people() {
        let rejection = Rejection::InsufficientFunds {
            balance: 500,
            amount: 1000,
            fee: 1,
        };
        assert_eq!(rejection.code(), "insufficient_funds");
        assert_eq!(
            rejection.message(Decimals::DEFAULT),
            "balance 5.00 does not cover amount 10.00 plus fee 0.01"
        );
        assert_eq!(
            Rejection::BadSequence {
                expected: 2,
                got: 1
            }
            .code(),
            "bad_sequence"
        );
        assert_eq!(Rejection::BadSignature.code(), "bad_signature");

        assert!(
            Rejection::BadSequence {
                expected: 2,
                got: 3
            }
            .may_apply_later()
        );
        assert!(
            !Rejection::BadSequence {
                expected: 2,
                got: 1
            }
            .may_apply_later()
        );
        assert!(rejection.may_apply_later());
        assert!(!Rejection::SelfTransfer.may_apply_later());
    }
}
