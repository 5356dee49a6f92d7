//! Transfers: the unsigned body, its signature, its id, its wire bytes and its JSON form.
//!
//! The signing bytes are [`TRANSFER_DOMAIN_TAG`] followed by the postcard encoding of
//! [`Transfer`]. The transfer id is the SHA-256 of exactly those bytes, so it does not depend
//! on the signature and nobody can change an id by altering signature bytes. The wire form of
//! a [`SignedTransfer`] is the postcard encoding of the body followed by the 64 signature
//! bytes; it is decoded only if it is canonical (see [`crate::encoding`]).

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::amount::{AmountError, Decimals, format_amount, parse_amount};
use crate::encoding::{self, DecodeError};
use crate::hash::{Hash, HashParseError};
use crate::keys::{BadSignature, KeyError, PublicKey, SecretKey, Signature};

/// The bytes every transfer's signing bytes start with, so a transfer signature can never be
/// mistaken for a signature over any other Tally message.
pub const TRANSFER_DOMAIN_TAG: &[u8] = b"TALLY/TRANSFER/V1";

/// The only transfer body version this code accepts.
pub const TRANSFER_VERSION: u8 = 1;

/// The most bytes a memo may hold, counted in UTF-8 bytes (not characters).
pub const MEMO_MAX_BYTES: usize = 140;

/// The most bytes the wire form of a valid signed transfer can take: version 1, network id 32,
/// two keys 64, three varints of at most 10, memo length varint 2, memo 140, signature 64.
pub const MAX_SIGNED_TRANSFER_BYTES: usize = 1 + 32 + 64 + 3 * 10 + 2 + MEMO_MAX_BYTES + 64;

/// The unsigned body of a transfer: what the sender signs.
///
/// Fields are encoded in this order; see `docs/protocol.md` for the byte layout.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    /// Body version, [`TRANSFER_VERSION`]. One byte on the wire.
    pub version: u8,
    /// The network this transfer is for: SHA-256 of the canonical genesis.
    pub network_id: Hash,
    /// The paying account; it signs the transfer.
    pub sender: PublicKey,
    /// The paid account. Must differ from the sender.
    pub receiver: PublicKey,
    /// Units moved from the sender to the receiver. Must be positive.
    pub amount: u64,
    /// Units paid by the sender to the genesis fee account. At least the genesis minimum fee.
    pub fee: u64,
    /// The sender's sequence number: exactly the sender's next one, starting at 1.
    pub sequence: u64,
    /// Free text, at most [`MEMO_MAX_BYTES`] bytes of UTF-8, kept byte for byte.
    pub memo: String,
}

/// A rule of form broken by a transfer body, whatever the ledger holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The body version is not one this code knows.
    #[error("transfer version {0} is not supported (expected {TRANSFER_VERSION})")]
    UnsupportedVersion(u8),
    /// The memo is longer than 140 bytes.
    #[error("memo is {0} bytes, at most {MEMO_MAX_BYTES} allowed")]
    MemoTooLong(usize),
}

/// Why bytes are not a well-formed signed transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The bytes are not a canonical encoding of a signed transfer.
    #[error("transfer bytes are not valid: {0}")]
    Decode(#[from] DecodeError),
    /// The bytes decode, but the body breaks a rule of form.
    #[error(transparent)]
    Form(#[from] FormError),
    /// More bytes than any valid signed transfer takes.
    #[error("{0} bytes is longer than any valid transfer ({MAX_SIGNED_TRANSFER_BYTES} at most)")]
    TooLong(usize),
}

impl Transfer {
    /// A version-1 transfer body.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        network_id: Hash,
        sender: PublicKey,
        receiver: PublicKey,
        amount: u64,
        fee: u64,
        sequence: u64,
        memo: impl Into<String>,
    ) -> Transfer {
        Transfer {
            version: TRANSFER_VERSION,
            network_id,
            sender,
            receiver,
            amount,
            fee,
            sequence,
            memo: memo.into(),
        }
    }

    /// Checks the rules that need no ledger: a known version and a memo within 140 bytes.
    pub fn check_form(&self) -> Result<(), FormError> {
        if self.version != TRANSFER_VERSION {
            return Err(FormError::UnsupportedVersion(self.version));
        }
        if self.memo.len() > MEMO_MAX_BYTES {
            return Err(FormError::MemoTooLong(self.memo.len()));
        }
        Ok(())
    }

    /// The bytes the sender signs: the domain tag, then the postcard encoding of this body.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = TRANSFER_DOMAIN_TAG.to_vec();
        bytes.extend_from_slice(&encoding::encode(self));
        bytes
    }

    /// The transfer id: SHA-256 of the signing bytes.
    pub fn id(&self) -> Hash {
        Hash::digest(&self.signing_bytes())
    }
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .field("amount", &self.amount)
            .field("fee", &self.fee)
            .field("sequence", &self.sequence)
            .field("memo", &self.memo)
            .finish_non_exhaustive()
    }
}

/// A transfer body and the sender's signature over its signing bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedTransfer {
    /// The signed body.
    pub transfer: Transfer,
    /// The sender's ed25519 signature over [`Transfer::signing_bytes`].
    pub signature: Signature,
}

impl SignedTransfer {
    /// Signs `transfer` with `secret`. The caller makes sure `secret` is the sender's key;
    /// otherwise the signature will not verify.
    pub fn sign(transfer: Transfer, secret: &SecretKey) -> SignedTransfer {
        let signature = secret.sign(&transfer.signing_bytes());
        SignedTransfer {
            transfer,
            signature,
        }
    }

    /// The bytes that were signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.transfer.signing_bytes()
    }

    /// The transfer id: SHA-256 of the signing bytes, independent of the signature.
    pub fn id(&self) -> Hash {
        self.transfer.id()
    }

    /// Strictly verifies the signature against the sender's key.
    pub fn verify_signature(&self) -> Result<(), BadSignature> {
        self.signature
            .verify(&self.transfer.sender, &self.signing_bytes())
    }

    /// Verifies the signature and, on success, wraps the transfer as [`VerifiedTransfer`].
    pub fn into_verified(self) -> Result<VerifiedTransfer, BadSignature> {
        self.verify_signature()?;
        Ok(VerifiedTransfer(self))
    }

    /// The wire bytes: postcard of the body, then the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// The length of [`SignedTransfer::encode`] without building it.
    pub fn encoded_len(&self) -> usize {
        encoding::encoded_len(self)
    }

    /// Decodes canonical wire bytes and checks the transfer's form (version, memo length).
    /// The signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransfer, TransferError> {
        // Refusing oversized input first bounds what decoding can allocate for the memo.
        if bytes.len() > MAX_SIGNED_TRANSFER_BYTES {
            return Err(TransferError::TooLong(bytes.len()));
        }
        let signed: SignedTransfer = encoding::decode_canonical(bytes)?;
        signed.transfer.check_form()?;
        Ok(signed)
    }

    /// The JSON form, with amounts written at `decimals` places.
    pub fn to_json(&self, decimals: Decimals) -> TransferJson {
        TransferJson::from_signed(self, decimals)
    }
}

impl fmt::Debug for SignedTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedTransfer")
            .field("id", &self.id())
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// A signed transfer whose signature has been strictly verified.
///
/// The ledger's `apply_verified` takes this type so that a node that verified a transfer once,
/// when admitting it, does not verify it again when it builds or applies a block.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifiedTransfer(SignedTransfer);

impl VerifiedTransfer {
    /// Wraps a transfer without checking its signature.
    ///
    /// Only for transfers whose signature was verified before by this same process, or that
    /// were read back from the node's own store of committed blocks (which were verified
    /// before they were written). Anything that crossed a network must go through
    /// [`SignedTransfer::into_verified`] or [`crate::batch::verify_all`].
    pub fn assume_verified(signed: SignedTransfer) -> VerifiedTransfer {
        VerifiedTransfer(signed)
    }

    /// The signed transfer.
    pub fn signed(&self) -> &SignedTransfer {
        &self.0
    }

    /// Gives back the signed transfer.
    pub fn into_inner(self) -> SignedTransfer {
        self.0
    }
}

impl Deref for VerifiedTransfer {
    type Target = SignedTransfer;

    fn deref(&self) -> &SignedTransfer {
        &self.0
    }
}

impl fmt::Debug for VerifiedTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verified({:?})", self.0)
    }
}

/// The one JSON form of a signed transfer, used by every API and tool.
///
/// Every field is a string except `version`: hashes, keys and the signature in lowercase hex,
/// amounts as decimal strings at exactly the network's decimals, the sequence as a decimal
/// integer string (JSON numbers lose precision above 2^53 in many languages). `id` is
/// informative and checked: parsing refuses a JSON transfer whose `id` is not the id of the
/// other fields. Unknown fields are refused.
///
/// ```json
/// {
///   "id": "<64 hex>", "version": 1, "network_id": "<64 hex>",
///   "sender": "<64 hex>", "receiver": "<64 hex>",
///   "amount": "12.50", "fee": "0.01", "sequence": "1", "memo": "rent",
///   "signature": "<128 hex>"
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferJson {
    /// The transfer id, 64 hex characters.
    pub id: String,
    /// The body version.
    pub version: u8,
    /// The network id, 64 hex characters.
    pub network_id: String,
    /// The sender's public key, 64 hex characters.
    pub sender: String,
    /// The receiver's public key, 64 hex characters.
    pub receiver: String,
    /// The amount, a decimal string at the network's decimals.
    pub amount: String,
    /// The fee, a decimal string at the network's decimals.
    pub fee: String,
    /// The sequence number, a decimal integer string.
    pub sequence: String,
    /// The memo, as is.
    pub memo: String,
    /// The signature, 128 hex characters (R then S).
    pub signature: String,
}

/// Why a JSON transfer cannot be turned into a signed transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferJsonError {
    /// A hash field (`id` or `network_id`) is not 64 lowercase hex characters.
    #[error("{field} is not a hash: {error}")]
    BadHash {
        /// The JSON field.
        field: &'static str,
        /// What is wrong with it.
        error: HashParseError,
    },
    /// A key field is not a valid public key in hex.
    #[error("{field} is not a public key: {error}")]
    BadKey {
        /// The JSON field.
        field: &'static str,
        /// What is wrong with it.
        error: KeyError,
    },
    /// An amount field does not follow the amount grammar.
    #[error("{field} is not an amount: {error}")]
    BadAmount {
        /// The JSON field.
        field: &'static str,
        /// What is wrong with it.
        error: AmountError,
    },
    /// The sequence is not a decimal integer string within a u64.
    #[error("sequence must be a decimal integer string without leading zeros")]
    BadSequence,
    /// The signature is not 128 lowercase hex characters.
    #[error("signature must be 128 lowercase hex characters")]
    BadSignatureHex,
    /// The body breaks a form rule (version, memo length).
    #[error(transparent)]
    Form(#[from] FormError),
    /// The `id` field is not the id of the transfer the other fields describe.
    #[error("id {given} does not match the transfer's id {computed}")]
    IdMismatch {
        /// The id in the JSON.
        given: Hash,
        /// The id computed from the other fields.
        computed: Hash,
    },
}

impl TransferJson {
    /// The JSON form of `signed`, with amounts at `decimals` places.
    pub fn from_signed(signed: &SignedTransfer, decimals: Decimals) -> TransferJson {
        let transfer = &signed.transfer;
        TransferJson {
            id: signed.id().to_hex(),
            version: transfer.version,
            network_id: transfer.network_id.to_hex(),
            sender: hex::encode(transfer.sender.as_bytes()),
            receiver: hex::encode(transfer.receiver.as_bytes()),
            amount: format_amount(transfer.amount, decimals),
            fee: format_amount(transfer.fee, decimals),
            sequence: transfer.sequence.to_string(),
            memo: transfer.memo.clone(),
            signature: signed.signature.to_hex(),
        }
    }

    /// Parses every field strictly and checks the form and the id. The signature is not
    /// verified here.
    pub fn to_signed(&self, decimals: Decimals) -> Result<SignedTransfer, TransferJsonError> {
        let given_id = parse_hash("id", &self.id)?;
        let transfer = Transfer {
            version: self.version,
            network_id: parse_hash("network_id", &self.network_id)?,
            sender: parse_key("sender", &self.sender)?,
            receiver: parse_key("receiver", &self.receiver)?,
            amount: parse_units("amount", &self.amount, decimals)?,
            fee: parse_units("fee", &self.fee, decimals)?,
            sequence: parse_sequence(&self.sequence)?,
            memo: self.memo.clone(),
        };
        transfer.check_form()?;

        let signature =
            Signature::from_hex(&self.signature).ok_or(TransferJsonError::BadSignatureHex)?;

        let computed = transfer.id();
        if computed != given_id {
            return Err(TransferJsonError::IdMismatch {
                given: given_id,
                computed,
            });
        }
        Ok(SignedTransfer {
            transfer,
            signature,
        })
    }
}

fn parse_hash(field: &'static str, text: &str) -> Result<Hash, TransferJsonError> {
    text.parse()
        .map_err(|error| TransferJsonError::BadHash { field, error })
}

fn parse_key(field: &'static str, text: &str) -> Result<PublicKey, TransferJsonError> {
    PublicKey::from_hex(text).map_err(|error| TransferJsonError::BadKey { field, error })
}

fn parse_units(
    field: &'static str,
    text: &str,
    decimals: Decimals,
) -> Result<u64, TransferJsonError> {
    // Zero is let through on purpose: the ledger refuses it with its own rejection code.
    parse_amount(text, decimals, u64::MAX)
        .map_err(|error| TransferJsonError::BadAmount { field, error })
}

fn parse_sequence(text: &str) -> Result<u64, TransferJsonError> {
    parse_integer(text).ok_or(TransferJsonError::BadSequence)
}

/// Parses the text form of every integer in the JSON forms (sequences, heights, indexes):
/// `^(0|[1-9][0-9]*)$` within u64; `None` for anything else.
pub fn parse_integer(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    fn sample(memo: &str) -> SignedTransfer {
        let sender = key(1);
        let transfer = Transfer::new(
            Hash::digest(b"net"),
            sender.public_key(),
            key(2).public_key(),
            1250,
            1,
            1,
            memo,
        );
        SignedTransfer::sign(transfer, &sender)
    }

    #[test]
    fn signed_transfer_round_trips_and_verifies() {
        let signed = sample("rent");
        assert_eq!(signed.verify_signature(), Ok(()));
        let bytes = signed.encode();
        assert_eq!(bytes.len(), signed.encoded_len());
        assert_eq!(SignedTransfer::decode(&bytes), Ok(signed));
    }

    #[test]
    fn id_ignores_the_signature() {
        let mut signed = sample("rent");
        let id = signed.id();
        signed.signature.0[0] ^= 1;
        assert_eq!(signed.id(), id);
        assert_eq!(signed.verify_signature(), Err(BadSignature));
    }

    #[test]
    fn memo_limit_counts_bytes_not_characters() {
        assert_eq!(sample(&"a".repeat(140)).transfer.check_form(), Ok(()));
        assert_eq!(
            sample(&"a".repeat(141)).transfer.check_form(),
            Err(FormError::MemoTooLong(141))
        );

        // 70 two-byte characters are exactly 140 bytes; one more ASCII byte is too many.
        let seventy = "é".repeat(70);
        assert_eq!(seventy.len(), 140);
        assert_eq!(sample(&seventy).transfer.check_form(), Ok(()));
        let over = format!("{seventy}a");
        assert_eq!(
            sample(&over).transfer.check_form(),
            Err(FormError::MemoTooLong(141))
        );
    }

    #[test]
    fn memo_is_kept_byte_for_byte() {
        // "é" precomposed and "e" + combining accent look alike but must stay distinct.
        let composed = sample("caf\u{e9}");
        let decomposed = sample("cafe\u{301}");
        assert_ne!(composed.id(), decomposed.id());
        let decoded = SignedTransfer::decode(&decomposed.encode()).expect("valid");
        assert_eq!(decoded.transfer.memo.as_bytes(), "cafe\u{301}".as_bytes());
    }

    #[test]
    fn decode_refuses_a_long_memo_and_an_unknown_version() {
        let long = sample(&"a".repeat(141));
        assert_eq!(
            SignedTransfer::decode(&long.encode()),
            Err(TransferError::Form(FormError::MemoTooLong(141)))
        );

        let mut future = sample("x");
        future.transfer.version = 2;
        assert_eq!(
            SignedTransfer::decode(&future.encode()),
            Err(TransferError::Form(FormError::UnsupportedVersion(2)))
        );
    }

    #[test]
    fn decode_refuses_non_canonical_bytes() {
        let mut bytes = sample("x").encode();
        bytes.push(0);
        assert_eq!(
            SignedTransfer::decode(&bytes),
            Err(TransferError::Decode(DecodeError::TrailingBytes(1)))
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let mut bytes = sample(&"a".repeat(140)).encode();
        bytes.extend_from_slice(&[0; 40]);
        assert_eq!(
            SignedTransfer::decode(&bytes),
            Err(TransferError::TooLong(bytes.len()))
        );
    }

    #[test]
    fn largest_transfer_fits_the_declared_bound() {
        let sender = key(1);
        let transfer = Transfer::new(
            Hash::digest(b"net"),
            sender.public_key(),
            key(2).public_key(),
            u64::MAX,
            u64::MAX,
            u64::MAX,
            "é".repeat(70),
        );
        let signed = SignedTransfer::sign(transfer, &sender);
        assert_eq!(signed.encode().len(), MAX_SIGNED_TRANSFER_BYTES);
    }

    #[test]
    fn json_round_trips_and_checks_the_id() {
        let signed = sample("rent");
        let json = signed.to_json(Decimals::DEFAULT);
        assert_eq!(json.amount, "12.50");
        assert_eq!(json.to_signed(Decimals::DEFAULT), Ok(signed.clone()));

        let mut wrong = json.clone();
        wrong.memo = "rent!".into();
        assert!(matches!(
            wrong.to_signed(Decimals::DEFAULT),
            Err(TransferJsonError::IdMismatch { .. })
        ));

        let mut bad_sequence = json;
        bad_sequence.sequence = "01".into();
        assert_eq!(
            bad_sequence.to_signed(Decimals::DEFAULT),
            Err(TransferJsonError::BadSequence)
        );
    }

    #[test]
    fn json_refuses_unknown_fields() {
        let json = serde_json::to_value(sample("x").to_json(Decimals::DEFAULT)).expect("json");
        let mut object = json.as_object().expect("object").clone();
        object.insert("extra".into(), serde_json::Value::Bool(true));
        let text = serde_json::to_string(&object).expect("json");
        assert!(serde_json::from_str::<TransferJson>(&text).is_err());
    }
}
