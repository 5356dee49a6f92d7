//! Every bad input the protocol must refuse, each with its exact error, through the public API.
//!
//! The list follows the protocol issue: amounts, keys, signatures, networks, sequences, memos,
//! funds and non-canonical encodings. Module tests cover the same rules from the inside; this
//! file is the checklist a reviewer reads.

use bech32::{Bech32m, Hrp};
use protocol::amount::{AmountError, Decimals, parse_positive_amount};
use protocol::batch::verify_batch;
use protocol::encoding::DecodeError;
use protocol::genesis::{Allocation, Genesis, Validator};
use protocol::hash::Hash;
use protocol::keys::{BadSignature, KeyError, PublicKey, SecretKey};
use protocol::ledger::{Account, Ledger, Rejection};
use protocol::transfer::{FormError, SignedTransfer, Transfer, TransferError};

/// The group order L, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

fn genesis() -> Genesis {
    Genesis {
        network: "bad-inputs".into(),
        decimals: Decimals::DEFAULT,
        min_fee: 1,
        fee_account: secret(99).public_key(),
        max_supply: 1_000_000,
        max_block_transfers: 10,
        max_block_bytes: 10_000,
        validators: vec![Validator {
            name: "v".into(),
            key: secret(98).public_key(),
        }],
        allocations: vec![Allocation {
            account: secret(1).public_key(),
            balance: 1_000,
        }],
    }
}

fn transfer(ledger: &Ledger, amount: u64, fee: u64, sequence: u64, memo: &str) -> SignedTransfer {
    let sender = secret(1);
    let body = Transfer::new(
        ledger.network_id(),
        sender.public_key(),
        secret(2).public_key(),
        amount,
        fee,
        sequence,
        memo,
    );
    SignedTransfer::sign(body, &sender)
}

#[test]
fn amounts() {
    let cases: &[(&str, AmountError)] = &[
        ("0", AmountError::Zero),
        ("-0", AmountError::NegativeZero),
        ("-1", AmountError::Negative),
        ("+5", AmountError::LeadingPlus),
        ("1e3", AmountError::Exponent),
        ("0x10", AmountError::Hex),
        ("1_000", AmountError::Underscore),
        (" 5", AmountError::Whitespace),
        ("1.", AmountError::MissingFractionDigit),
        (".5", AmountError::MissingIntegerDigit),
        ("01", AmountError::LeadingZero),
        ("1.001", AmountError::TooManyDecimals { max: 2, got: 3 }),
        (
            "18446744073709551616",
            AmountError::AboveMaximum {
                maximum: "184467440737095516.15".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        let got = parse_positive_amount(text, Decimals::DEFAULT, u64::MAX);
        assert_eq!(got.as_ref(), Err(expected), "input {text:?}");
    }
}

#[test]
fn keys() {
    let good = secret(1).public_key();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::WeakKey));
    assert_eq!(
        PublicKey::from_bytes(&[7u8; 31]),
        Err(KeyError::WrongLength(31))
    );

    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    assert_eq!(
        PublicKey::from_bytes(&non_canonical),
        Err(KeyError::NonCanonical)
    );

    let other_prefix = Hrp::parse("btc").expect("valid hrp");
    let foreign = bech32::encode::<Bech32m>(other_prefix, good.as_bytes()).expect("encodes");
    assert_eq!(
        PublicKey::from_address(&foreign),
        Err(KeyError::WrongPrefix("btc".into()))
    );

    let tly = Hrp::parse("tly").expect("valid hrp");
    let short = bech32::encode::<Bech32m>(tly, &good.as_bytes()[..20]).expect("encodes");
    assert_eq!(
        PublicKey::from_address(&short),
        Err(KeyError::WrongLength(20))
    );
    let weak = bech32::encode::<Bech32m>(tly, &identity).expect("encodes");
    assert_eq!(PublicKey::from_address(&weak), Err(KeyError::WeakKey));

    let mut typo: Vec<char> = good.to_address().chars().collect();
    typo[10] = if typo[10] == 'x' { 'y' } else { 'x' };
    let typo: String = typo.into_iter().collect();
    assert!(matches!(
        PublicKey::from_address(&typo),
        Err(KeyError::BadChecksum(_))
    ));
}

#[test]
fn identity_point_as_a_transfer_key_does_not_decode() {
    let ledger = Ledger::from_genesis(&genesis());
    let mut bytes = transfer(&ledger, 5, 1, 1, "").encode();
    // The sender key follows the version byte and the network id.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    bytes[33..65].copy_from_slice(&identity);
    assert!(matches!(
        SignedTransfer::decode(&bytes),
        Err(TransferError::Decode(DecodeError::Malformed(_)))
    ));
}

#[test]
fn signature_with_s_plus_group_order() {
    let mut ledger = Ledger::from_genesis(&genesis());
    let mut signed = transfer(&ledger, 5, 1, 1, "");
    let mut carry = 0u16;
    for (byte, order) in signed.signature.0[32..].iter_mut().zip(GROUP_ORDER) {
        let sum = u16::from(*byte) + u16::from(order) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L still fits in 32 bytes");

    assert_eq!(signed.verify_signature(), Err(BadSignature));
    assert_eq!(verify_batch(&[&signed]), vec![Err(BadSignature)]);
    assert_eq!(ledger.apply(&signed), Err(Rejection::BadSignature));
}

#[test]
fn transfer_signed_for_another_network() {
    let mut ledger = Ledger::from_genesis(&genesis());
    let mut other = genesis();
    other.network = "elsewhere".into();
    let foreign = transfer(&Ledger::from_genesis(&other), 5, 1, 1, "");
    assert_eq!(
        ledger.apply(&foreign),
        Err(Rejection::WrongNetwork {
            expected: ledger.network_id(),
            got: other.network_id()
        })
    );
}

#[test]
fn sequence_gap_replay_and_maximum() {
    let mut ledger = Ledger::from_genesis(&genesis());
    assert_eq!(
        ledger.apply(&transfer(&ledger, 5, 1, 2, "")),
        Err(Rejection::BadSequence {
            expected: 1,
            got: 2
        })
    );

    let first = transfer(&ledger, 5, 1, 1, "");
    ledger.apply(&first).expect("first transfer applies");
    assert_eq!(
        ledger.apply(&first),
        Err(Rejection::BadSequence {
            expected: 2,
            got: 1
        })
    );

    assert_eq!(
        ledger.apply(&transfer(&ledger, 5, 1, u64::MAX, "")),
        Err(Rejection::BadSequence {
            expected: 2,
            got: u64::MAX
        })
    );

    let genesis = genesis();
    let sender = Account {
        balance: 1_000,
        next_sequence: u64::MAX,
    };
    let accounts = [
        (secret(1).public_key(), sender),
        (genesis.fee_account, Account::default()),
    ];
    let mut worn_out = Ledger::from_accounts(&genesis, accounts).expect("consistent");
    assert_eq!(
        worn_out.apply(&transfer(&worn_out, 5, 1, u64::MAX, "")),
        Err(Rejection::SequenceExhausted)
    );
}

#[test]
fn memo_lengths() {
    let mut ledger = Ledger::from_genesis(&genesis());
    ledger
        .apply(&transfer(&ledger, 5, 1, 1, &"a".repeat(140)))
        .expect("140 bytes are allowed");

    let long = transfer(&ledger, 5, 1, 2, &"a".repeat(141));
    assert_eq!(
        ledger.apply(&long),
        Err(Rejection::MemoTooLong { bytes: 141 })
    );
    assert_eq!(
        SignedTransfer::decode(&long.encode()),
        Err(TransferError::Form(FormError::MemoTooLong(141)))
    );

    let two_byte = "ß".repeat(70);
    ledger
        .apply(&transfer(&ledger, 5, 1, 2, &two_byte))
        .expect("70 two-byte characters fit");
    let over = format!("{two_byte}ß");
    assert_eq!(
        ledger.apply(&transfer(&ledger, 5, 1, 3, &over)),
        Err(Rejection::MemoTooLong { bytes: 142 })
    );
}

#[test]
fn amount_plus_fee_beyond_the_balance() {
    let mut ledger = Ledger::from_genesis(&genesis());
    assert_eq!(
        ledger.apply(&transfer(&ledger, 1_000, 1, 1, "")),
        Err(Rejection::InsufficientFunds {
            balance: 1_000,
            amount: 1_000,
            fee: 1
        })
    );
    ledger
        .apply(&transfer(&ledger, 999, 1, 1, ""))
        .expect("exactly the balance applies");
    assert_eq!(ledger.account(&secret(1).public_key()).balance, 0);
}

#[test]
fn non_canonical_encodings() {
    let ledger = Ledger::from_genesis(&genesis());
    let signed = transfer(&ledger, 1250, 1, 1, "");
    let bytes = signed.encode();

    let mut trailing = bytes.clone();
    trailing.push(0x00);
    assert_eq!(
        SignedTransfer::decode(&trailing),
        Err(TransferError::Decode(DecodeError::TrailingBytes(1)))
    );

    // The amount varint starts after version (1), network id, sender and receiver (96).
    let amount_at = 97;
    assert_eq!(&bytes[amount_at..amount_at + 2], &[0xe2, 0x09]);
    let mut long_varint = bytes.clone();
    long_varint[amount_at + 1] |= 0x80;
    long_varint.insert(amount_at + 2, 0x00);
    assert_eq!(
        SignedTransfer::decode(&long_varint),
        Err(TransferError::Decode(DecodeError::NotCanonical))
    );
    assert_eq!(SignedTransfer::decode(&bytes), Ok(signed));
}

#[test]
fn network_id_is_the_hash_of_the_canonical_genesis() {
    let genesis = genesis();
    assert_eq!(
        genesis.network_id(),
        Hash::digest(&genesis.canonical_bytes())
    );
    assert!(genesis.canonical_bytes().starts_with(b"TALLY/GENESIS/V1"));
}
