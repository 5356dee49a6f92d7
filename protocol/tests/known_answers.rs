//! Known answers: byte-exact vectors that pin the signature scheme and the transfer encoding.
//!
//! The vectors are also written out in `docs/protocol.md`, and were checked against an
//! independent implementation (Python's `hashlib` and `cryptography`). If one of these tests
//! fails, the wire format changed: every wallet and every stored block depends on it, so fix
//! the code rather than the vector.

use protocol::amount::Decimals;
use protocol::block::{BLOCK_VERSION, BlockHeader};
use protocol::encoding;
use protocol::genesis::Genesis;
use protocol::hash::Hash;
use protocol::keys::{PublicKey, SecretKey, Signature};
use protocol::ledger::Account;
use protocol::merkle::{self, InclusionProof};
use protocol::state_tree::{self, StateTree};
use protocol::transfer::{SignedTransfer, Transfer, TransferJson};

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("test vectors are hex")
}

#[test]
fn rfc8032_test_1_signs_the_empty_message() {
    let seed: [u8; 32] = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        .try_into()
        .expect("32 bytes");
    let secret = SecretKey::from_seed(&seed);

    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    assert_eq!(hex::encode(secret.public_key().as_bytes()), public);

    let signature = secret.sign(b"");
    let expected = concat!(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555",
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    assert_eq!(signature.to_hex(), expected);
    assert_eq!(signature.verify(&secret.public_key(), b""), Ok(()));
}

const SENDER_SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const RECEIVER_SEED: [u8; 32] = [0x42; 32];

const SENDER: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const SENDER_ADDRESS: &str = "tly1qwss00lnecgtu8tsm5vwwj7qn9n7f43snwjs6hcamjrxgyj4xxuqvc5ngk";
const RECEIVER: &str = "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
const RECEIVER_ADDRESS: &str = "tly1y9f035vm0ywjg3fjgts47t4tdjmul7nmdf0dxqyhjc8qdxypmvfqm24tnr";
const NETWORK_ID: &str = "33d2e506748cf3eb4b4fe88b9af00f9fe4747ea06157fa8edb2715fe863d734b";

const SIGNING_BYTES: &str = concat!(
    "54414c4c592f5452414e534645522f5631", // "TALLY/TRANSFER/V1"
    "01",                                 // version
    "33d2e506748cf3eb4b4fe88b9af00f9fe4747ea06157fa8edb2715fe863d734b", // network id
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8", // sender
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12", // receiver
    "e209",                               // amount 1250 (varint)
    "01",                                 // fee 1
    "01",                                 // sequence 1
    "0a",                                 // memo length 10 bytes
    "6c756e636820f09f8d9c",               // "lunch 🍜"
);
const ID: &str = "a64aa944c46b3a21e61f7563ac229591a503ca41622abfc775722de98b778753";
const SIGNATURE: &str = concat!(
    "ef410d4dac8df746fd68092c21446f0e92d854d7944b01d57ef178297cddd68e",
    "2431cd31315827d967e04cb53c03aa06a4f0fa3076f59945a23e1a6f18ea8906",
);
const JSON: &str = concat!(
    r#"{"id":"a64aa944c46b3a21e61f7563ac229591a503ca41622abfc775722de98b778753","#,
    r#""version":1,"#,
    r#""network_id":"33d2e506748cf3eb4b4fe88b9af00f9fe4747ea06157fa8edb2715fe863d734b","#,
    r#""sender":"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8","#,
    r#""receiver":"2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12","#,
    r#""amount":"12.50","fee":"0.01","sequence":"1","memo":"lunch 🍜","#,
    r#""signature":"ef410d4dac8df746fd68092c21446f0e92d854d7944b01d57ef178297cddd68e"#,
    r#"2431cd31315827d967e04cb53c03aa06a4f0fa3076f59945a23e1a6f18ea8906"}"#,
);

fn known_transfer() -> SignedTransfer {
    let sender = SecretKey::from_seed(&SENDER_SEED);
    let receiver = SecretKey::from_seed(&RECEIVER_SEED).public_key();
    let network = Hash::digest(b"tally known-answer network");
    let body = Transfer::new(
        network,
        sender.public_key(),
        receiver,
        1250,
        1,
        1,
        "lunch \u{1f35c}",
    );
    SignedTransfer::sign(body, &sender)
}

#[test]
fn keys_and_addresses_are_as_written() {
    let sender = SecretKey::from_seed(&SENDER_SEED).public_key();
    let receiver = SecretKey::from_seed(&RECEIVER_SEED).public_key();
    assert_eq!(hex::encode(sender.as_bytes()), SENDER);
    assert_eq!(sender.to_address(), SENDER_ADDRESS);
    assert_eq!(hex::encode(receiver.as_bytes()), RECEIVER);
    assert_eq!(receiver.to_address(), RECEIVER_ADDRESS);
    assert_eq!(PublicKey::from_address(SENDER_ADDRESS), Ok(sender));
    assert_eq!(
        Hash::digest(b"tally known-answer network").to_hex(),
        NETWORK_ID
    );
}

#[test]
fn transfer_signing_bytes_id_and_signature_are_as_written() {
    let signed = known_transfer();
    assert_eq!(hex::encode(signed.signing_bytes()), SIGNING_BYTES);
    assert_eq!(signed.id().to_hex(), ID);
    assert_eq!(Hash::digest(&unhex(SIGNING_BYTES)).to_hex(), ID);
    assert_eq!(signed.signature.to_hex(), SIGNATURE);
    assert_eq!(signed.verify_signature(), Ok(()));
}

#[test]
fn transfer_wire_bytes_are_body_then_signature() {
    let signed = known_transfer();
    let body = &SIGNING_BYTES["54414c4c592f5452414e534645522f5631".len()..];
    let wire = format!("{body}{SIGNATURE}");
    assert_eq!(hex::encode(signed.encode()), wire);
    assert_eq!(hex::encode(encoding::encode(&signed.transfer)), body);
    assert_eq!(SignedTransfer::decode(&unhex(&wire)), Ok(signed));
}

#[test]
fn transfer_json_is_as_written() {
    let signed = known_transfer();
    let json = signed.to_json(Decimals::DEFAULT);
    assert_eq!(serde_json::to_string(&json).expect("serialises"), JSON);

    let parsed: TransferJson = serde_json::from_str(JSON).expect("parses");
    assert_eq!(parsed.to_signed(Decimals::DEFAULT), Ok(signed));
}

#[test]
fn signature_hex_parses_back() {
    let parsed = Signature::from_hex(SIGNATURE).expect("128 hex characters");
    assert_eq!(parsed, known_transfer().signature);
    assert_eq!(Signature::from_hex(&SIGNATURE.to_uppercase()), None);
}

const SENDER_LEAF: &str = "cc57d23c13a71779500ed283cc7273056d612387c1b5923833be3e09f1938d84";
const RECEIVER_LEAF: &str = "b4f3c9c3ffd1bb4b2497638619c4574654566568ab28ad382e28da8558aafb2f";
const STATE_ROOT: &str = "e91f80415da142f37ad8e83ce6bad1b68a6467fe0cc6abdaeaa39206eb158383";
const TRANSFERS_ROOT: &str = "5cdeab31d329aef375cba0cc2a74eb71f7d92ca80f6deab990be8b0cd6f14dcd";
const HEADER: &str = concat!(
    "01",                                                               // version
    "33d2e506748cf3eb4b4fe88b9af00f9fe4747ea06157fa8edb2715fe863d734b", // network id
    "01",                                                               // height
    "0000000000000000000000000000000000000000000000000000000000000000", // parent
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12", // proposer
    "80d095ffbc31",                                                     // 1700000000000 ms
    "5cdeab31d329aef375cba0cc2a74eb71f7d92ca80f6deab990be8b0cd6f14dcd", // transfers root
    "e91f80415da142f37ad8e83ce6bad1b68a6467fe0cc6abdaeaa39206eb158383", // state root
);
const BLOCK_HASH: &str = "7bbcbc6837f2d3a648ad6cca2f34c818c914b64e77f6e74daf689722a4cc9348";

/// The two accounts after the known transfer, from a sender that started with 1000.00.
fn known_state() -> (StateTree, PublicKey, Account, PublicKey, Account) {
    let sender = SecretKey::from_seed(&SENDER_SEED).public_key();
    let receiver = SecretKey::from_seed(&RECEIVER_SEED).public_key();
    let sender_account = Account {
        balance: 98_749,
        next_sequence: 2,
    };
    let receiver_account = Account {
        balance: 1_250,
        next_sequence: 1,
    };
    let mut tree = StateTree::new();
    tree.insert(sender, sender_account);
    tree.insert(receiver, receiver_account);
    (tree, sender, sender_account, receiver, receiver_account)
}

#[test]
fn state_tree_leaves_root_and_proof_are_as_written() {
    let (tree, sender, sender_account, receiver, receiver_account) = known_state();
    let sender_key = state_tree::account_key(&sender);
    let receiver_key = state_tree::account_key(&receiver);
    assert_eq!(
        state_tree::leaf_hash(&sender_key, &sender_account).to_hex(),
        SENDER_LEAF
    );
    assert_eq!(
        state_tree::leaf_hash(&receiver_key, &receiver_account).to_hex(),
        RECEIVER_LEAF
    );
    assert_eq!(tree.root().to_hex(), STATE_ROOT);

    // Both keys start with bit 0 and differ at bit 1 (0x30… and 0x56…), so the receiver's
    // proof is: an empty sibling at depth 0, then the sender's leaf at depth 1.
    let proof = tree.prove(&receiver);
    let siblings: Vec<String> = proof.siblings.iter().map(Hash::to_hex).collect();
    assert_eq!(siblings, [Hash::ZERO.to_hex(), SENDER_LEAF.to_string()]);
    let root: Hash = STATE_ROOT.parse().expect("hex");
    assert_eq!(proof.verify(&root, &receiver, &receiver_account), Ok(()));
}

#[test]
fn transfers_root_and_block_hash_are_as_written() {
    let signed = known_transfer();
    let root = merkle::transfers_root(std::slice::from_ref(&signed));
    assert_eq!(root.to_hex(), TRANSFERS_ROOT);
    let proof = InclusionProof::build(&merkle::transfer_leaves(std::slice::from_ref(&signed)), 0);
    let proof = proof.expect("one leaf");
    assert_eq!(proof.verify(&signed.encode(), &root), Ok(()));

    let header = BlockHeader {
        version: BLOCK_VERSION,
        network_id: NETWORK_ID.parse().expect("hex"),
        height: 1,
        parent: Hash::ZERO,
        proposer: SecretKey::from_seed(&RECEIVER_SEED).public_key(),
        timestamp_ms: 1_700_000_000_000,
        transfers_root: root,
        state_root: known_state().0.root(),
    };
    assert_eq!(hex::encode(header.encode()), HEADER);
    assert_eq!(header.hash().to_hex(), BLOCK_HASH);
    assert_eq!(BlockHeader::decode(&unhex(HEADER)), Ok(header));
}

#[test]
fn the_protocol_document_shows_these_same_vectors() {
    let doc = include_str!("../../docs/protocol.md");
    let vectors = [
        SENDER,
        SENDER_ADDRESS,
        RECEIVER,
        RECEIVER_ADDRESS,
        NETWORK_ID,
        ID,
        SIGNATURE,
        SENDER_LEAF,
        RECEIVER_LEAF,
        STATE_ROOT,
        TRANSFERS_ROOT,
        BLOCK_HASH,
        JSON_SIGNATURE_LINE,
    ];
    for vector in vectors {
        assert!(doc.contains(vector), "docs/protocol.md lacks {vector}");
    }

    // The signing bytes appear there one field per line, in order.
    let mut rest = doc;
    for field in SIGNING_BYTES_FIELDS {
        let at = rest
            .find(field)
            .unwrap_or_else(|| panic!("docs lack field bytes {field}"));
        rest = &rest[at + field.len()..];
    }
}

const JSON_SIGNATURE_LINE: &str = r#""signature": "ef410d4dac8df746fd68"#;

const SIGNING_BYTES_FIELDS: [&str; 10] = [
    "54414c4c592f5452414e534645522f5631",
    "01",
    "33d2e506748cf3eb4b4fe88b9af00f9fe4747ea06157fa8edb2715fe863d734b",
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12",
    "e209",
    "01",
    "01",
    "0a",
    "6c756e636820f09f8d9c",
];

#[test]
fn the_field_list_is_the_signing_bytes() {
    assert_eq!(SIGNING_BYTES_FIELDS.concat(), SIGNING_BYTES);
}

const GENESIS_TOML: &str = r#"
network = "tally-kat"
decimals = 2
min_fee = "0.01"
fee_account = "tly1y9f035vm0ywjg3fjgts47t4tdjmul7nmdf0dxqyhjc8qdxypmvfqm24tnr"
max_supply = "1000000.00"
max_block_transfers = 1000
max_block_bytes = 1048576

[[validators]]
name = "alpha"
key = "tly1y9f035vm0ywjg3fjgts47t4tdjmul7nmdf0dxqyhjc8qdxypmvfqm24tnr"

[[allocations]]
account = "tly1qwss00lnecgtu8tsm5vwwj7qn9n7f43snwjs6hcamjrxgyj4xxuqvc5ngk"
balance = "1000.00"
"#;
const GENESIS_CANONICAL: &str = concat!(
    "0974616c6c792d6b6174", // network "tally-kat"
    "02",                   // decimals
    "01",                   // min_fee 1
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12", // fee account
    "80c2d72f",             // max_supply 10^8
    "e807",                 // 1000 transfers
    "808040",               // 1048576 bytes
    "01",                   // one validator
    "05616c706861",         // name "alpha"
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12", // key
    "01",                   // one allocation
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8", // account
    "a08d06",               // 100000 units
);
const GENESIS_NETWORK_ID: &str = "ce5c5cb86b6c796f7b2d0a3da5a8022bddb0794599cfcc7329b3f1b2292f2a2d";

#[test]
fn genesis_canonical_form_and_network_id_are_as_written() {
    let genesis = Genesis::from_toml(GENESIS_TOML).expect("valid genesis");
    let canonical = genesis.canonical_bytes();
    let (tag, body) = canonical.split_at(b"TALLY/GENESIS/V1".len());
    assert_eq!(tag, b"TALLY/GENESIS/V1");
    assert_eq!(hex::encode(body), GENESIS_CANONICAL);
    assert_eq!(genesis.network_id().to_hex(), GENESIS_NETWORK_ID);

    let doc = include_str!("../../docs/protocol.md");
    assert!(
        doc.contains(GENESIS_CANONICAL),
        "docs/protocol.md lacks the genesis bytes"
    );
    assert!(
        doc.contains(GENESIS_NETWORK_ID),
        "docs/protocol.md lacks the genesis id"
    );
}
