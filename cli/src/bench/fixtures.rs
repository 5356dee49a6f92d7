//! What every part of the bench runs on: deterministic account keys, a genesis funding them,
//! and transfers planned and signed ahead of time on all cores (signing is never timed).

use std::num::NonZeroUsize;
use std::thread;

use protocol::genesis::Allocation;
use protocol::{
    Decimals, Genesis, Hash, PublicKey, SecretKey, SignedTransfer, Transfer, Validator,
};

/// Units each account starts with: a million coins at two decimals, enough for every run.
const STARTING_UNITS: u64 = 100_000_000;

/// The fee of every bench transfer, in units: the genesis minimum.
pub const FEE_UNITS: u64 = 1;

/// The amount of every bench transfer, in units.
const AMOUNT_UNITS: u64 = 1;

/// The most transfers in one block, as in `tally genesis new` by default.
pub const BLOCK_TRANSFERS_MAX: u32 = 1_000;

/// The funded accounts of a bench network, with their keys.
pub struct Accounts {
    /// Secret keys, by account index.
    pub keys: Vec<SecretKey>,
    /// Public keys, by account index.
    pub public: Vec<PublicKey>,
}

impl Accounts {
    /// `count` accounts whose keys derive from their index, so every run signs the same
    /// bytes.
    pub fn new(count: usize) -> Accounts {
        let keys: Vec<SecretKey> = (0..count).map(|index| key("account", index)).collect();
        let public = keys.iter().map(SecretKey::public_key).collect();
        Accounts { keys, public }
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The key derived from `role` and `index`: SHA-256 of a label, as a seed.
pub fn key(role: &str, index: usize) -> SecretKey {
    let seed = Hash::digest(format!("tally-bench/{role}/{index}").as_bytes());
    SecretKey::from_seed(seed.as_bytes())
}

/// A genesis with `validators` in rotation order and every account funded.
pub fn genesis(validators: &[PublicKey], accounts: &Accounts) -> Genesis {
    let allocations: Vec<Allocation> = accounts
        .public
        .iter()
        .map(|account| Allocation {
            account: *account,
            balance: STARTING_UNITS,
        })
        .collect();
    let supply = STARTING_UNITS * accounts.len() as u64;
    Genesis {
        network: "tally-bench".into(),
        decimals: Decimals::new(2).expect("2 decimals are allowed"),
        min_fee: FEE_UNITS,
        fee_account: key("fees", 0).public_key(),
        max_supply: supply,
        max_block_transfers: BLOCK_TRANSFERS_MAX,
        max_block_bytes: 1 << 20,
        validators: validators
            .iter()
            .enumerate()
            .map(|(index, key)| Validator {
                name: format!("validator-{index}"),
                key: *key,
            })
            .collect(),
        allocations,
    }
}

/// One transfer of a plan: who sends it, and the transfer.
#[derive(Clone)]
pub struct Planned {
    /// The sender's account index.
    pub sender: usize,
    /// The signed transfer.
    pub signed: SignedTransfer,
}

/// Plans `count` transfers over the accounts whose `next_sequence` is `Some` and signs them
/// on all cores, advancing those sequences.
///
/// Senders take turns in account order, so one sender's successive transfers are as far
/// apart as the number of senders allows, and each transfer goes to a different account of
/// the same group. Memos are empty: the bench measures the smallest real transfer.
pub fn plan(
    network_id: Hash,
    accounts: &Accounts,
    next_sequence: &mut [Option<u64>],
    count: usize,
) -> Vec<Planned> {
    let senders: Vec<usize> = (0..accounts.len())
        .filter(|index| next_sequence[*index].is_some())
        .collect();
    if senders.is_empty() {
        return Vec::new();
    }

    let mut bodies = Vec::with_capacity(count);
    for turn in 0..count {
        let sender = senders[turn % senders.len()];
        let round = turn / senders.len();
        // A receiver other than the sender, shifting every round.
        let offset = 1 + round % (accounts.len() - 1).max(1);
        let receiver = (sender + offset) % accounts.len();
        let sequence = next_sequence[sender]
            .as_mut()
            .expect("a sender has a sequence");
        let body = Transfer::new(
            network_id,
            accounts.public[sender],
            accounts.public[receiver],
            AMOUNT_UNITS,
            FEE_UNITS,
            *sequence,
            "",
        );
        *sequence += 1;
        bodies.push((sender, body));
    }
    sign_all(accounts, bodies)
}

/// Signs every body with its sender's key, on all cores, keeping the order.
fn sign_all(accounts: &Accounts, bodies: Vec<(usize, Transfer)>) -> Vec<Planned> {
    let threads = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let chunk = bodies.len().div_ceil(threads).max(1);
    thread::scope(|scope| {
        let jobs: Vec<_> = bodies
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(sender, body)| Planned {
                            sender: *sender,
                            signed: SignedTransfer::sign(body.clone(), &accounts.keys[*sender]),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        jobs.into_iter()
            .flat_map(|job| job.join().expect("a signing thread does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_rotates_senders_and_advances_sequences() {
        let accounts = Accounts::new(3);
        let mut next = vec![Some(1), None, Some(5)];
        let planned = plan(Hash::ZERO, &accounts, &mut next, 5);

        let shape: Vec<(usize, u64)> = planned
            .iter()
            .map(|p| (p.sender, p.signed.transfer.sequence))
            .collect();
        assert_eq!(shape, vec![(0, 1), (2, 5), (0, 2), (2, 6), (0, 3)]);
        assert_eq!(next, vec![Some(4), None, Some(7)]);
        for planned in &planned {
            let transfer = &planned.signed.transfer;
            assert_ne!(transfer.sender, transfer.receiver);
            assert!(planned.signed.verify_signature().is_ok());
        }
    }
}
