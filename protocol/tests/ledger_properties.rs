//! Property tests of the ledger invariants over random genesis allocations and random mixes
//! of valid and invalid transfers:
//!
//! - supply is conserved after every transfer, applied or rejected;
//! - balances match a plain integer model that would go negative if the ledger let them;
//! - a rejected transfer changes nothing, and an applied one never applies again;
//! - the same ordered transfers give the same state root however they are split into blocks,
//!   whether applied as blocks or chosen by the block builder.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use protocol::amount::Decimals;
use protocol::batch::verify_all;
use protocol::block::{BlockContext, build_block};
use protocol::genesis::{Allocation, Genesis, Validator};
use protocol::hash::Hash;
use protocol::keys::{PublicKey, SecretKey};
use protocol::ledger::{Ledger, Rejection};
use protocol::transfer::{SignedTransfer, Transfer};

const ACCOUNTS: usize = 5;

fn secret(index: usize) -> SecretKey {
    SecretKey::from_seed(&[index as u8 + 1; 32])
}

fn public(index: usize) -> PublicKey {
    secret(index).public_key()
}

/// One generated transfer attempt, resolved against the ledger when it is signed.
#[derive(Clone, Debug)]
struct Attempt {
    from: usize,
    to: usize,
    amount: u64,
    fee: u64,
    /// Added to the sender's next sequence: 0 is right, anything else is a gap or a replay.
    sequence_offset: i64,
    corrupt_signature: bool,
    wrong_network: bool,
}

fn attempt() -> impl Strategy<Value = Attempt> {
    (
        0..ACCOUNTS,
        // Offset from the sender to the receiver: 0 is a self-transfer.
        prop_oneof![9 => 1..ACCOUNTS, 1 => Just(0)],
        prop_oneof![6 => 1u64..400, 1 => Just(0u64), 1 => 400u64..3_000],
        0u64..4,
        prop_oneof![8 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64)],
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(from, offset, amount, fee, sequence_offset, corrupt, wrong_network)| Attempt {
                from,
                to: (from + offset) % ACCOUNTS,
                amount,
                fee,
                sequence_offset,
                corrupt_signature: corrupt,
                wrong_network,
            },
        )
}

fn genesis() -> impl Strategy<Value = Genesis> {
    (
        proptest::collection::vec(0u64..2_000, ACCOUNTS),
        0u64..2,
        0..=ACCOUNTS,
    )
        .prop_map(|(balances, min_fee, fee_index)| {
            let allocations = balances
                .iter()
                .enumerate()
                .filter(|(_, balance)| **balance > 0)
                .map(|(i, balance)| Allocation {
                    account: public(i),
                    balance: *balance,
                })
                .collect();
            Genesis {
                network: "proptest".into(),
                decimals: Decimals::DEFAULT,
                min_fee,
                // Index ACCOUNTS is a fee account that never sends or receives.
                fee_account: public(fee_index),
                max_supply: 1_000_000,
                max_block_transfers: 1_000,
                max_block_bytes: 1_000_000,
                validators: vec![Validator {
                    name: "solo".into(),
                    key: public(99),
                }],
                allocations,
            }
        })
}

fn sign(ledger: &Ledger, attempt: &Attempt) -> SignedTransfer {
    let next = ledger.account(&public(attempt.from)).next_sequence;
    let sequence = next.saturating_add_signed(attempt.sequence_offset);
    let network = if attempt.wrong_network {
        Hash::digest(b"another network")
    } else {
        ledger.network_id()
    };
    let sender = secret(attempt.from);
    let body = Transfer::new(
        network,
        sender.public_key(),
        public(attempt.to),
        attempt.amount,
        attempt.fee,
        sequence,
        "",
    );
    let mut signed = SignedTransfer::sign(body, &sender);
    if attempt.corrupt_signature {
        signed.signature.0[0] ^= 0x01;
    }
    signed
}

/// Every attempt in order against one ledger; returns the signed list and which applied.
fn run_sequentially(genesis: &Genesis, attempts: &[Attempt]) -> (Vec<SignedTransfer>, Vec<bool>) {
    let mut ledger = Ledger::from_genesis(genesis);
    let supply = u128::from(genesis.total_supply());

    // The model: plain signed integers, so a wrong debit would show up as a negative balance.
    let mut model: BTreeMap<PublicKey, i128> = ledger
        .accounts()
        .map(|(owner, account)| (owner, i128::from(account.balance)))
        .collect();

    let mut signed_list = Vec::new();
    let mut applied = Vec::new();
    for attempt in attempts {
        let signed = sign(&ledger, attempt);
        let before = ledger.state_root();
        match ledger.apply(&signed) {
            Ok(outcome) => {
                assert_eq!(outcome.id, signed.id());
                let t = &signed.transfer;
                *model.entry(t.sender).or_default() -= i128::from(t.amount + t.fee);
                *model.entry(t.receiver).or_default() += i128::from(t.amount);
                *model.entry(genesis.fee_account).or_default() += i128::from(t.fee);
                applied.push(true);
            }
            Err(rejection) => {
                assert_eq!(
                    ledger.state_root(),
                    before,
                    "rejected {rejection:?} changed state"
                );
                applied.push(false);
            }
        }
        signed_list.push(signed);

        assert_eq!(ledger.total_supply(), supply, "supply not conserved");
        for (owner, balance) in &model {
            assert!(*balance >= 0, "model balance went negative");
            assert_eq!(i128::from(ledger.account(owner).balance), *balance);
        }
    }

    // Nothing that applied can apply again, at the end or anywhere later.
    for (signed, _) in signed_list
        .iter()
        .zip(&applied)
        .filter(|(_, applied)| **applied)
    {
        assert!(matches!(
            ledger.check(signed),
            Err(Rejection::BadSequence { .. })
        ));
    }
    let ids: BTreeSet<Hash> = signed_list
        .iter()
        .zip(&applied)
        .filter(|(_, applied)| **applied)
        .map(|(signed, _)| signed.id())
        .collect();
    assert_eq!(
        ids.len(),
        applied.iter().filter(|a| **a).count(),
        "an id applied twice"
    );

    (signed_list, applied)
}

fn chunks<T: Clone>(items: &[T], cuts: &[usize]) -> Vec<Vec<T>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (items.len() + 1)).collect();
    points.extend([0, items.len()]);
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| items[w[0]..w[1]].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        // Integration tests have no lib.rs beside them to store regressions next to; the
        // minimal failing input is printed instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ledger_invariants_hold(
        genesis in genesis(),
        attempts in proptest::collection::vec(attempt(), 0..40),
        cuts in proptest::collection::vec(0usize..64, 0..6),
    ) {
        let (signed, applied) = run_sequentially(&genesis, &attempts);

        let mut sequential = Ledger::from_genesis(&genesis);
        let valid: Vec<SignedTransfer> = signed
            .iter()
            .zip(&applied)
            .filter(|(_, applied)| **applied)
            .map(|(s, _)| s.clone())
            .collect();
        sequential.apply_block(&valid).expect("the transfers that applied apply as one block");

        // The same valid transfers, cut into blocks anywhere, reach the same root.
        let mut blocks = Ledger::from_genesis(&genesis);
        for block in chunks(&valid, &cuts) {
            blocks.apply_block(&block).expect("a prefix-ordered chunk applies");
        }
        prop_assert_eq!(blocks.state_root(), sequential.state_root());

        // The builder, fed every attempt in chunks, picks exactly the ones that applied.
        let mut built = Ledger::from_genesis(&genesis);
        let mut included = Vec::new();
        for chunk in chunks(&signed, &cuts) {
            // As a node does: only transfers whose signature verified reach the builder.
            let candidates = verify_all(chunk).into_iter().filter_map(Result::ok);
            let context = BlockContext::after(None, public(99), 0);
            let block = build_block(&built, &genesis, context, candidates);
            included.extend(block.block.transfers.iter().map(SignedTransfer::id));
            built = block.ledger;
        }
        let expected: Vec<Hash> = valid.iter().map(SignedTransfer::id).collect();
        prop_assert_eq!(included, expected);
        prop_assert_eq!(built.state_root(), sequential.state_root());
    }
}
