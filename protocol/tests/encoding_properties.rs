//! Property tests of the human and wire edges: amount text, canonical decoding, state proofs.

use proptest::prelude::*;
use protocol::amount::{Decimals, format_amount, parse_amount};
use protocol::block::{Block, BlockContext, build_block, validate_block};
use protocol::genesis::{Allocation, Genesis, Validator};
use protocol::hash::Hash;
use protocol::keys::SecretKey;
use protocol::ledger::{Account, Ledger};
use protocol::state_tree::StateTree;
use protocol::transfer::{SignedTransfer, Transfer};

fn config() -> ProptestConfig {
    // Integration tests have no lib.rs beside them to store regressions next to; the minimal
    // failing input is printed instead.
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn signed_transfer() -> impl Strategy<Value = SignedTransfer> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        ".{0,40}",
    )
        .prop_map(|(from, to, amount, fee, sequence, memo)| {
            let sender = SecretKey::from_seed(&[from; 32]);
            let receiver = SecretKey::from_seed(&[to; 32]).public_key();
            let body = Transfer::new(
                Hash::digest(b"p"),
                sender.public_key(),
                receiver,
                amount,
                fee,
                sequence,
                memo,
            );
            SignedTransfer::sign(body, &sender)
        })
}

/// A small network and a valid first block with a few transfers.
fn network_and_block() -> (Genesis, Ledger, Block) {
    let key = |seed: u8| SecretKey::from_seed(&[seed; 32]);
    let genesis = Genesis {
        network: "mutations".into(),
        decimals: Decimals::DEFAULT,
        min_fee: 1,
        fee_account: key(50).public_key(),
        max_supply: 1_000_000,
        max_block_transfers: 100,
        max_block_bytes: 100_000,
        validators: vec![Validator {
            name: "v".into(),
            key: key(51).public_key(),
        }],
        allocations: vec![Allocation {
            account: key(1).public_key(),
            balance: 10_000,
        }],
    };
    let ledger = Ledger::from_genesis(&genesis);
    let candidates = (1..=4).map(|sequence| {
        let body = Transfer::new(
            ledger.network_id(),
            key(1).public_key(),
            key(2).public_key(),
            100 * sequence,
            1,
            sequence,
            "m",
        );
        SignedTransfer::sign(body, &key(1))
            .into_verified()
            .expect("good signature")
    });
    let context = BlockContext::after(None, key(51).public_key(), 1);
    let block = build_block(&ledger, &genesis, context, candidates).block;
    (genesis, ledger, block)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_blocks_never_panic_and_validate_only_if_just_the_time_changed(
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (genesis, ledger, block) = network_and_block();
        let mut bytes = block.encode();
        let at = position.index(bytes.len());
        bytes[at] ^= flip;

        // Any changed byte either breaks the encoding or breaks a rule that validation checks
        // (the hash chain, a root, a signature, a sequence). The one exception is the
        // timestamp, whose rules belong to consensus, not to `validate_block`.
        if let Ok(mutated) = Block::decode(&bytes)
            && validate_block(&ledger, &genesis, None, &mutated).is_ok()
        {
            let mut restored = mutated;
            restored.header.timestamp_ms = block.header.timestamp_ms;
            prop_assert_eq!(restored, block);
        }
    }

    #[test]
    fn formatted_amounts_parse_back(units in any::<u64>(), places in 0u8..=8) {
        let decimals = Decimals::new(places).expect("in range");
        let text = format_amount(units, decimals);
        prop_assert_eq!(parse_amount(&text, decimals, u64::MAX), Ok(units));
    }

    #[test]
    fn accepted_amount_text_is_the_formatted_value_maybe_shortened(
        text in "[-+ 0-9._ex]{1,24}",
        places in 0u8..=8,
    ) {
        let decimals = Decimals::new(places).expect("in range");
        if let Ok(units) = parse_amount(&text, decimals, u64::MAX) {
            // Whatever was accepted is the canonical form with trailing fraction zeros (and
            // maybe the point) left off: nothing else gets through the grammar.
            let canonical = format_amount(units, decimals);
            prop_assert!(canonical.starts_with(&text), "{} accepted as {}", text, canonical);
            let rest = &canonical[text.len()..];
            prop_assert!(rest.trim_start_matches('.').bytes().all(|b| b == b'0'));
            prop_assert!(!text.starts_with('0') || text == "0" || text.starts_with("0."));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_bytes_are_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        if let Ok(signed) = SignedTransfer::decode(&bytes) {
            prop_assert_eq!(signed.encode(), bytes.clone());
        }
        if let Ok(block) = Block::decode(&bytes) {
            prop_assert_eq!(block.encode(), bytes);
        }
    }

    #[test]
    fn transfers_round_trip_and_single_byte_changes_are_caught(
        signed in signed_transfer(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let bytes = signed.encode();
        prop_assert_eq!(SignedTransfer::decode(&bytes), Ok(signed.clone()));

        // Any one changed byte either fails to decode or yields a transfer whose signature
        // no longer verifies (or, inside the signature, a different signature).
        let mut changed = bytes.clone();
        changed[position.index(bytes.len())] ^= flip;
        if let Ok(other) = SignedTransfer::decode(&changed) {
            prop_assert_ne!(&other, &signed);
            prop_assert!(other.verify_signature().is_err());
        }
    }

    #[test]
    fn state_proofs_hold_for_every_account_after_random_writes(
        writes in proptest::collection::vec((0u8..40, any::<u64>(), 1u64..1_000), 1..60),
        absent in 40u8..60,
    ) {
        let mut tree = StateTree::new();
        for (seed, balance, next_sequence) in &writes {
            let owner = SecretKey::from_seed(&[*seed; 32]).public_key();
            tree.insert(owner, Account { balance: *balance, next_sequence: *next_sequence });
        }

        // Rebuilt in another order from the final values, the root is the same.
        let mut rebuilt = StateTree::new();
        let mut accounts: Vec<_> = tree.iter().collect();
        accounts.reverse();
        for (owner, account) in &accounts {
            rebuilt.insert(*owner, *account);
        }
        prop_assert_eq!(rebuilt.root(), tree.root());

        let root = tree.root();
        for (owner, account) in &accounts {
            prop_assert_eq!(tree.prove(owner).verify(&root, owner, account), Ok(()));
        }
        let stranger = SecretKey::from_seed(&[absent; 32]).public_key();
        let proof = tree.prove(&stranger);
        prop_assert_eq!(proof.verify(&root, &stranger, &Account::default()), Ok(()));
    }
}
