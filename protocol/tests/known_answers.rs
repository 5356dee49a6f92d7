//! Known answers: byte-exact vectors that pin the signature scheme and the transfer encoding.
//!
//! The transfer vector is also written out in `docs/protocol.md`, and was checked against an
//! independent implementation (Python's `hashlib` and `cryptography`). If one of these tests
//! fails, the wire format changed: every wallet and every stored block depends on it, so fix
//! the code rather than the vector.

use protocol::amount::Decimals;
use protocol::encoding;
use protocol::hash::Hash;
use protocol::keys::{PublicKey, SecretKey, Signature};
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
