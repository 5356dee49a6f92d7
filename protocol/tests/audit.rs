//! The auditor against a real chain: real transfer signatures, blocks from `build_block`, and
//! certificates signed by four validator keys exactly as the consensus module signs
//! precommits. One good chain passes with the exact summary; each kind of damage is caught
//! at the height where it is.

use protocol::audit::prepare_blocks;
use protocol::block::BlockContext;
use protocol::chain_log::{self, CertifiedBlock, LogHeader};
use protocol::consensus::message::precommit_signing_bytes;
use protocol::consensus::{CertificateError, CommitCertificate, CommitSignature};
use protocol::genesis::Allocation;
use protocol::{
    AuditFailure, Auditor, Decimals, Genesis, Hash, Ledger, SecretKey, SignedTransfer, Transfer,
    Validator, build_block,
};

/// Validators from seeds 1..=4, wallets from seeds 11..=16, fee account from seed 99.
fn validator_keys() -> Vec<SecretKey> {
    (1..=4).map(|i| SecretKey::from_seed(&[i; 32])).collect()
}

fn wallet(i: u8) -> SecretKey {
    SecretKey::from_seed(&[10 + i; 32])
}

fn genesis() -> Genesis {
    let validators = validator_keys()
        .iter()
        .zip(["alpha", "beta", "gamma", "delta"])
        .map(|(key, name)| Validator {
            name: name.into(),
            key: key.public_key(),
        })
        .collect();
    let allocations = (1..=3)
        .map(|i| Allocation {
            account: wallet(i).public_key(),
            balance: 100_000,
        })
        .collect();
    let genesis = Genesis {
        network: "tally-audit-test".into(),
        decimals: Decimals::DEFAULT,
        min_fee: 2,
        fee_account: SecretKey::from_seed(&[99; 32]).public_key(),
        max_supply: 1_000_000,
        max_block_transfers: 50,
        max_block_bytes: 100_000,
        validators,
        allocations,
    };
    genesis.validate().expect("test genesis is valid");
    genesis
}

/// A precommit certificate for `block_hash` at (height, round) from the given signers.
fn certificate(
    network: &Hash,
    height: u64,
    block_hash: Hash,
    signers: &[SecretKey],
) -> CommitCertificate {
    let round = (height % 3) as u32;
    let bytes = precommit_signing_bytes(network, height, round, Some(block_hash));
    let signatures = signers
        .iter()
        .map(|key| CommitSignature {
            validator: key.public_key(),
            signature: key.sign(&bytes),
        })
        .collect();
    CommitCertificate {
        height,
        round,
        block_hash,
        signatures,
    }
}

/// Five blocks: wallets 1..=3 pay each other and new wallets 4..=6; block 3 is empty.
/// Returns the chain and the ledger after it.
fn chain() -> (Genesis, Vec<CertifiedBlock>, Ledger) {
    let genesis = genesis();
    let network = genesis.network_id();
    let keys = validator_keys();
    let mut ledger = Ledger::from_genesis(&genesis);
    let mut sequences = [0u64; 7];
    let mut blocks: Vec<CertifiedBlock> = Vec::new();

    for height in 1..=5u64 {
        let count = if height == 3 { 0 } else { height as usize + 1 };
        let transfers: Vec<_> = (0..count)
            .map(|k| {
                let from = 1 + (k % 3) as u8;
                let to = 4 + ((k + height as usize) % 3) as u8;
                sequences[from as usize] += 1;
                let amount = 100 * height + k as u64;
                let body = Transfer::new(
                    network,
                    wallet(from).public_key(),
                    wallet(to).public_key(),
                    amount,
                    2,
                    sequences[from as usize],
                    format!("h{height} k{k}"),
                );
                let signed = SignedTransfer::sign(body, &wallet(from));
                signed.into_verified().expect("honest signature")
            })
            .collect();

        let parent = blocks.last().map(|c| &c.block.header);
        let proposer = keys[(height % 4) as usize].public_key();
        let context = BlockContext::after(parent, proposer, 1_700_000_000_000 + height * 1_000);
        let built = build_block(&ledger, &genesis, context, transfers);
        assert!(built.left_out.is_empty(), "every test transfer applies");
        ledger = built.ledger;

        let hash = built.block.hash();
        let certificate = certificate(&network, height, hash, &keys[..3]);
        blocks.push(CertifiedBlock {
            block: built.block,
            certificate,
        });
    }
    (genesis, blocks, ledger)
}

/// Audits block by block, verifying on the calling thread; also audits the blocks prepared
/// in groups of every size, as a pipelined auditor does, and checks that each way reaches
/// the same verdict and the same state.
fn audit(
    genesis: &Genesis,
    blocks: &[CertifiedBlock],
) -> Result<protocol::AuditSummary, protocol::AuditError> {
    let mut auditor = Auditor::new(genesis).expect("valid genesis");
    let serial = blocks
        .iter()
        .try_for_each(|certified| auditor.check_verifying(certified))
        .and_then(|()| auditor.finish());

    for group in 1..=blocks.len().max(1) {
        let mut prepared_auditor = Auditor::new(genesis).expect("valid genesis");
        let (network, validators) = (genesis.network_id(), prepared_auditor.validators().clone());
        let prepared = blocks.chunks(group).try_for_each(|chunk| {
            let prepared = prepare_blocks(chunk.to_vec(), &network, &validators);
            (prepared.iter()).try_for_each(|block| prepared_auditor.check_prepared(block))
        });
        let prepared = prepared.and_then(|()| prepared_auditor.finish());
        assert_eq!(prepared, serial, "blocks prepared in groups of {group}");
        assert_eq!(prepared_auditor.summary(), auditor.summary());
    }
    serial
}

#[test]
fn a_good_chain_passes_with_the_exact_summary() {
    let (genesis, blocks, ledger) = chain();
    let summary = audit(&genesis, &blocks).expect("good chain");

    // 2 + 3 + 0 + 5 + 6 transfers; 3 funded wallets, 3 new ones and the fee account.
    assert_eq!(summary.blocks, 5);
    assert_eq!(summary.transfers, 16);
    assert_eq!(summary.accounts, 7);
    assert_eq!(summary.height, 5);
    assert_eq!(summary.head, Some(blocks[4].block.hash()));
    assert_eq!(summary.state_root, ledger.state_root());
    assert_eq!(summary.state_root, blocks[4].block.header.state_root);
    assert_eq!(summary.total_supply, 300_000);
    assert_eq!(
        ledger
            .account(&SecretKey::from_seed(&[99; 32]).public_key())
            .balance,
        32
    );
}

#[test]
fn a_chain_read_back_from_its_log_passes_the_same_way() {
    let (genesis, blocks, _) = chain();
    let header = LogHeader {
        network_id: genesis.network_id(),
        first_height: 1,
    };
    let bytes = chain_log::encode_log(header, &blocks);
    let (_, decoded, end) =
        chain_log::decode_log(&bytes, Some(genesis.network_id()), genesis.max_block_bytes)
            .expect("valid log");
    assert_eq!(end.blocks, 5);
    assert_eq!(audit(&genesis, &decoded), audit(&genesis, &blocks));
}

#[test]
fn one_flipped_byte_in_one_transfer_fails_at_its_height() {
    let (genesis, blocks, _) = chain();
    let mut bad = blocks.clone();
    bad[3].block.transfers[2].transfer.amount ^= 1;

    let error = audit(&genesis, &bad).expect_err("tampered transfer");
    assert_eq!(error.height, 4);
    assert!(matches!(
        *error.failure,
        AuditFailure::TransfersRootMismatch { .. }
    ));
    assert_eq!(error.failure.kind(), "hash_mismatch");
}

#[test]
fn a_flipped_byte_in_the_encoded_log_fails_at_its_height() {
    let (genesis, blocks, _) = chain();
    let header = LogHeader {
        network_id: genesis.network_id(),
        first_height: 1,
    };
    let bytes = chain_log::encode_log(header, &blocks);

    // Flip the last byte of the memo of the last transfer of block 2: still decodes
    // (ASCII stays valid UTF-8), so the auditor is the one to catch it.
    let prefix = chain_log::encode_log(header, &blocks[..2]);
    let record_end = prefix.len() - chain_log::END_BYTES;
    let certificate_len = blocks[1].certificate.to_bytes().len();
    let memo_last = record_end - certificate_len - 4 - 64 - 1;
    let mut tampered = bytes.clone();
    tampered[memo_last] ^= 0x01;

    let mut decoder = chain_log::Decoder::new(Some(genesis.network_id()), 100_000);
    decoder.push(&tampered);
    let mut auditor = Auditor::new(&genesis).expect("valid genesis");
    let mut first_error = None;
    while let Some(item) = decoder.next_item().transpose() {
        match item {
            Ok(chain_log::LogItem::Block(certified)) => {
                if let Err(error) = auditor.check_verifying(&certified) {
                    first_error = Some(error);
                    break;
                }
            }
            Ok(_) => {}
            Err(error) => panic!("the format check must not come first: {error}"),
        }
    }
    let error = first_error.expect("tampering is caught");
    assert_eq!(error.height, 2);
    assert_eq!(error.failure.kind(), "hash_mismatch");
}

#[test]
fn a_dropped_last_block_reports_the_lower_height() {
    let (genesis, blocks, _) = chain();
    let summary = audit(&genesis, &blocks[..4]).expect("a shorter chain is still valid");
    assert_eq!(summary.height, 4);
    assert_eq!(summary.blocks, 4);
    assert_eq!(summary.head, Some(blocks[3].block.hash()));
}

#[test]
fn a_dropped_middle_block_is_a_missing_block() {
    let (genesis, blocks, _) = chain();
    let gap: Vec<CertifiedBlock> = [&blocks[..2], &blocks[3..]].concat();
    let error = audit(&genesis, &gap).expect_err("gap");
    assert_eq!(error.height, 3);
    assert_eq!(
        *error.failure,
        AuditFailure::MissingBlock {
            expected: 3,
            got: 4
        }
    );
}

#[test]
fn a_certificate_with_too_few_signers_fails() {
    let (genesis, mut blocks, _) = chain();
    let keys = validator_keys();
    let hash = blocks[1].block.hash();
    blocks[1].certificate = certificate(&genesis.network_id(), 2, hash, &keys[1..3]);

    let error = audit(&genesis, &blocks).expect_err("two of four is no quorum");
    assert_eq!(error.height, 2);
    assert_eq!(
        *error.failure,
        AuditFailure::Certificate(CertificateError::TooFewSigners { got: 2, needed: 3 })
    );
    assert_eq!(error.failure.kind(), "bad_certificate");
}

#[test]
fn a_certificate_for_another_network_or_block_fails() {
    let (genesis, blocks, _) = chain();
    let keys = validator_keys();

    let mut other_network = blocks.clone();
    let hash = blocks[2].block.hash();
    other_network[2].certificate = certificate(&Hash([5; 32]), 3, hash, &keys[..3]);
    let error = audit(&genesis, &other_network).expect_err("signed for another network");
    assert_eq!(error.height, 3);
    assert!(matches!(
        *error.failure,
        AuditFailure::Certificate(CertificateError::SignatureMismatch(_))
    ));

    let mut swapped = blocks.clone();
    swapped[2].certificate = blocks[1].certificate.clone();
    let error = audit(&genesis, &swapped).expect_err("certificate of another block");
    assert_eq!(error.height, 3);
    assert_eq!(*error.failure, AuditFailure::CertificateHeight { got: 2 });
}

#[test]
fn a_wrong_state_root_fails_even_with_a_valid_certificate() {
    let (genesis, mut blocks, _) = chain();
    let keys = validator_keys();
    blocks[4].block.header.state_root = Hash([0x11; 32]);
    // Re-certify so that only the state root is wrong: validators signed a bad block.
    let hash = blocks[4].block.hash();
    blocks[4].certificate = certificate(&genesis.network_id(), 5, hash, &keys);

    let error = audit(&genesis, &blocks).expect_err("bad state root");
    assert_eq!(error.height, 5);
    assert!(matches!(
        *error.failure,
        AuditFailure::StateRootMismatch { .. }
    ));
    assert_eq!(error.failure.kind(), "state_root_mismatch");
}

#[test]
fn a_bad_signature_and_a_bad_transfer_are_told_apart() {
    let (genesis, blocks, _) = chain();
    let keys = validator_keys();
    let network = genesis.network_id();

    // Re-sign the header over the tampered transfers so each check is reached in turn.
    let recertify = |blocks: &mut Vec<CertifiedBlock>, index: usize| {
        let block = &mut blocks[index].block;
        block.header.transfers_root = protocol::merkle::transfers_root(&block.transfers);
        let height = block.header.height;
        let hash = block.hash();
        blocks[index].certificate = certificate(&network, height, hash, &keys[..3]);
    };

    let mut forged = blocks.clone();
    forged[1].block.transfers[1].signature.0[10] ^= 0x40;
    recertify(&mut forged, 1);
    let error = audit(&genesis, &forged).expect_err("forged signature");
    assert_eq!(error.height, 2);
    assert!(matches!(
        *error.failure,
        AuditFailure::BadSignature { index: 1, .. }
    ));

    // A second copy of a transfer that already applied: signed, but a replay.
    let mut replay = blocks.clone();
    let copy = replay[1].block.transfers[0].clone();
    replay[1].block.transfers.push(copy);
    recertify(&mut replay, 1);
    let error = audit(&genesis, &replay).expect_err("replayed transfer");
    assert_eq!(error.height, 2);
    assert_eq!(error.failure.kind(), "bad_transfer");
}

#[test]
fn header_rules_are_checked() {
    let (genesis, blocks, _) = chain();
    let keys = validator_keys();
    let network = genesis.network_id();
    let edited = |edit: &dyn Fn(&mut CertifiedBlock)| {
        let mut chain = blocks.clone();
        edit(&mut chain[1]);
        let hash = chain[1].block.hash();
        chain[1].certificate = certificate(&network, 2, hash, &keys[..3]);
        audit(&genesis, &chain).expect_err("edited header")
    };

    let stale = edited(&|c| c.block.header.timestamp_ms = 1_700_000_001_000);
    assert_eq!(
        *stale.failure,
        AuditFailure::TimestampNotIncreasing {
            parent: 1_700_000_001_000,
            got: 1_700_000_001_000
        }
    );
    let outsider = SecretKey::from_seed(&[77; 32]).public_key();
    let unknown = edited(&|c| c.block.header.proposer = outsider);
    assert_eq!(*unknown.failure, AuditFailure::UnknownProposer(outsider));
    let parent = edited(&|c| c.block.header.parent = Hash([3; 32]));
    assert_eq!(parent.failure.kind(), "hash_mismatch");
    assert_eq!(parent.height, 2);
}

#[test]
fn certificate_and_precommit_bytes_are_as_documented() {
    // docs/log-format.md §2: network 07×32, height 300, round 2, block 03×32.
    let bytes = precommit_signing_bytes(&Hash([7; 32]), 300, 2, Some(Hash([3; 32])));
    let mut expected = b"tally/consensus\0".to_vec();
    expected.push(1);
    expected.extend_from_slice(&[7; 32]);
    expected.extend_from_slice(&[0xac, 0x02, 0x02, 0x02, 0x01]);
    expected.extend_from_slice(&[3; 32]);
    expected.push(0);
    assert_eq!(bytes, expected);

    let key = SecretKey::from_seed(&[1; 32]);
    let certificate = CommitCertificate {
        height: 300,
        round: 2,
        block_hash: Hash([3; 32]),
        signatures: vec![CommitSignature {
            validator: key.public_key(),
            signature: key.sign(&bytes),
        }],
    };
    let mut expected = vec![0xac, 0x02, 0x02];
    expected.extend_from_slice(&[3; 32]);
    expected.push(1);
    expected.extend_from_slice(key.public_key().as_bytes());
    expected.extend_from_slice(&certificate.signatures[0].signature.0);
    assert_eq!(certificate.to_bytes(), expected);
}
