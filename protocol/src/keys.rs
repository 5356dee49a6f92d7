//! Keys, signatures and the text form of account addresses.
//!
//! An account *is* its ed25519 public key. `PublicKey` can only be built from bytes that are a
//! canonical, non-small-order point, so every other module can take a key's validity for
//! granted. Addresses are written as bech32m with the `tly` prefix, whose checksum catches a
//! mistyped character.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use bech32::primitives::decode::{CheckedHrpstring, CheckedHrpstringError};
use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The human-readable prefix of every address.
pub const ADDRESS_PREFIX: &str = "tly";

/// Why bytes or text are not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not 32 bytes long.
    #[error("a public key is 32 bytes, got {0}")]
    WrongLength(usize),
    /// The bech32m checksum does not match, or the text is not bech32m at all.
    #[error("address checksum is wrong or the text is not a bech32m address: {0}")]
    BadChecksum(String),
    /// The prefix is not `tly`.
    #[error("address prefix must be \"{ADDRESS_PREFIX}\", got \"{0}\"")]
    WrongPrefix(String),
    /// The bytes are not the encoding of a curve point.
    #[error("public key is not a valid curve point")]
    NotAPoint,
    /// The bytes decode to a point whose canonical encoding differs.
    #[error("public key is not canonically encoded")]
    NonCanonical,
    /// The point has small order, so signatures under it prove nothing.
    #[error("public key is a weak (small-order) point")]
    WeakKey,
    /// Hex text that is not 64 lowercase hex characters.
    #[error("a public key in hex is 64 lowercase hex characters")]
    BadHex,
}

/// An ed25519 public key that is known to be canonical and not of small order.
///
/// In postcard it is 32 raw bytes; in JSON it is its `tly1…` address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

/// Shards of [`VALID_KEYS`], so threads decoding at once rarely wait for each other.
const VALID_KEY_SHARDS: usize = 16;

/// Keys remembered per shard; a full shard forgets them all and starts again.
const VALID_KEYS_PER_SHARD_MAX: usize = 4096;

/// Keys already found valid by [`PublicKey::from_bytes`].
///
/// Checking a key costs two field exponentiations (decompressing the point, then compressing
/// it again to catch non-canonical encodings), and a node checks the same accounts' keys
/// over and over: every transfer decoded from gossip, from a proposal or from a stored block
/// carries two. Validity is a pure function of the 32 bytes, so a remembered answer is always
/// the right one, and nothing here depends on the order of calls; only valid keys are
/// remembered. Bounded at [`VALID_KEY_SHARDS`] × [`VALID_KEYS_PER_SHARD_MAX`] keys.
static VALID_KEYS: LazyLock<ValidKeys> = LazyLock::new(ValidKeys::default);

#[derive(Default)]
struct ValidKeys {
    shards: [Mutex<HashSet<[u8; 32]>>; VALID_KEY_SHARDS],
}

impl ValidKeys {
    fn shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // Keys are uniformly distributed, so their first byte spreads them evenly; a set is
        // consistent after any panic (an insert or a clear is all it sees).
        let shard = &self.shards[usize::from(key[0]) % VALID_KEY_SHARDS];
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.shard(key).contains(key)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut shard = self.shard(&key);
        if shard.len() >= VALID_KEYS_PER_SHARD_MAX {
            shard.clear();
        }
        shard.insert(key);
    }
}

impl PublicKey {
    /// Checks `bytes` and wraps them: a canonical encoding of a point of large order.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        if VALID_KEYS.contains(&array) {
            return Ok(PublicKey(array));
        }
        let key = PublicKey::check(array)?;
        VALID_KEYS.insert(array);
        Ok(key)
    }

    /// The checks of [`PublicKey::from_bytes`], without the memory of earlier answers.
    fn check(array: [u8; 32]) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_bytes(&array).map_err(|_| KeyError::NotAPoint)?;

        // `from_bytes` keeps the bytes it was given, so re-compress the point to catch
        // encodings with a non-reduced y coordinate or the wrong sign bit for x = 0.
        if key.to_edwards().compress().to_bytes() != array {
            return Err(KeyError::NonCanonical);
        }
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(PublicKey(array))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The dalek key, for verification. Cannot fail: the bytes were checked on construction.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(&self.0).expect("PublicKey holds a checked point")
    }

    /// The `tly1…` address text.
    pub fn to_address(&self) -> String {
        let hrp = Hrp::parse(ADDRESS_PREFIX).expect("the address prefix is a valid hrp");
        bech32::encode::<Bech32m>(hrp, &self.0).expect("32 bytes always fit in bech32m")
    }

    /// Parses a `tly1…` address.
    pub fn from_address(text: &str) -> Result<PublicKey, KeyError> {
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|error: CheckedHrpstringError| KeyError::BadChecksum(error.to_string()))?;

        let prefix = checked.hrp();
        if prefix.as_str() != ADDRESS_PREFIX {
            return Err(KeyError::WrongPrefix(prefix.to_string()));
        }

        // Only the lowercase form is accepted, so an address has one text form.
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(KeyError::BadChecksum("addresses are lowercase".into()));
        }

        let bytes: Vec<u8> = checked.byte_iter().collect();
        PublicKey::from_bytes(&bytes)
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(text: &str) -> Result<PublicKey, KeyError> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(KeyError::BadHex);
        }
        let bytes = hex::decode(text).map_err(|_| KeyError::BadHex)?;
        PublicKey::from_bytes(&bytes)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        PublicKey::from_address(text)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_address())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_address())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_address())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            PublicKey::from_address(&text).map_err(de::Error::custom)
        } else {
            let bytes = <[u8; 32]>::deserialize(deserializer)?;
            PublicKey::from_bytes(&bytes).map_err(de::Error::custom)
        }
    }
}

/// Why text is not a key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The seed line is not 64 characters long.
    #[error("a key file holds a 64-character hex seed, got {0} characters")]
    WrongLength(usize),
    /// The seed line has a character outside `0-9a-f`.
    #[error("a key file seed is lowercase hex (0-9, a-f)")]
    NotHex,
}

/// A secret signing key. Holds the 32-byte seed; the public key is always derived from it.
///
/// Its `Debug` output never shows the seed, and it has no `Display`.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key whose RFC 8032 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for writing to a key file. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The text of a key file: the seed as 64 lowercase hex characters and a newline.
    ///
    /// The public key is not written: it is always derived from the seed on load, so a file
    /// cannot pair a seed with someone else's key.
    pub fn to_key_file(&self) -> String {
        format!("{}\n", hex::encode(self.seed()))
    }

    /// Reads a key file written by [`SecretKey::to_key_file`]. One trailing newline (`\n` or
    /// `\r\n`) is allowed; anything else besides the 64 hex characters is refused.
    pub fn from_key_file(text: &str) -> Result<SecretKey, KeyFileError> {
        let line = text
            .strip_suffix('\n')
            .map_or(text, |rest| rest.strip_suffix('\r').unwrap_or(rest));
        if line.len() != 64 {
            return Err(KeyFileError::WrongLength(line.len()));
        }
        if !line
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(KeyFileError::NotHex);
        }

        let mut seed = [0u8; 32];
        hex::decode_to_slice(line, &mut seed).map_err(|_| KeyFileError::NotHex)?;
        Ok(SecretKey::from_seed(&seed))
    }

    /// The public key (the account) derived from this seed.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.0.verifying_key().to_bytes();
        // A key derived from a seed is a multiple of the base point: never weak, always
        // canonical. Checking anyway keeps that claim honest at no real cost.
        PublicKey::from_bytes(&bytes).expect("a derived public key is always valid")
    }

    /// Signs `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(public: {}, secret: <redacted>)",
            self.public_key()
        )
    }
}

/// An ed25519 signature: R (32 bytes) then S (32 bytes).
///
/// In postcard it is 64 raw bytes; in JSON 128 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify under the given key")]
pub struct BadSignature;

impl Signature {
    /// Checks the signature under Tally's rule (see [`crate::verification`]): canonical S,
    /// canonical R not of small order, and the cofactored verification equation.
    pub fn verify(&self, key: &PublicKey, message: &[u8]) -> Result<(), BadSignature> {
        crate::verification::verify_one(crate::verification::SignedMessage {
            key,
            signature: self,
            message,
        })
    }

    /// Lowercase hex, 128 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 128 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Signature> {
        if text.len() != 128 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Signature(bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &self.to_hex()[..16])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.serialize_str(&self.to_hex());
        }

        // serde implements arrays only up to 32 elements, so write 64 as a fixed tuple, which
        // postcard encodes as 64 raw bytes with no length prefix.
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Signature, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            return Signature::from_hex(&text)
                .ok_or_else(|| de::Error::custom("a signature is 128 lowercase hex characters"));
        }
        deserializer.deserialize_tuple(64, SignatureVisitor)
    }
}

struct SignatureVisitor;

impl<'de> Visitor<'de> for SignatureVisitor {
    type Value = Signature;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("64 signature bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
        let mut bytes = [0u8; 64];
        for (index, slot) in bytes.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(index, &self))?;
        }
        Ok(Signature(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    #[test]
    fn address_round_trips() {
        let public = key(7).public_key();
        let address = public.to_address();
        assert!(address.starts_with("tly1"));
        assert_eq!(PublicKey::from_address(&address), Ok(public));
    }

    #[test]
    fn mistyped_address_character_is_caught() {
        let address = key(7).public_key().to_address();
        let mut chars: Vec<char> = address.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            PublicKey::from_address(&typo),
            Err(KeyError::BadChecksum(_))
        ));
    }

    #[test]
    fn identity_point_is_rejected_as_weak() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::WeakKey));
    }

    #[test]
    fn non_canonical_encoding_is_rejected() {
        // y = p + 1 (not reduced) encodes the same point as y = 1.
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xee;
        bytes[31] = 0x7f;
        assert_eq!(PublicKey::from_bytes(&bytes), Err(KeyError::NonCanonical));
    }

    #[test]
    fn secret_key_debug_hides_the_seed() {
        let secret = key(9);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&hex::encode(secret.seed())));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn key_file_holds_the_seed_and_derives_the_key() {
        let secret = key(11);
        let text = secret.to_key_file();
        assert_eq!(text, format!("{}\n", hex::encode([11u8; 32])));
        let loaded = SecretKey::from_key_file(&text).expect("valid key file");
        assert_eq!(loaded.public_key(), secret.public_key());

        let windows = text.replace('\n', "\r\n");
        assert!(SecretKey::from_key_file(&windows).is_ok());
        assert!(matches!(
            SecretKey::from_key_file(&text[..10]),
            Err(KeyFileError::WrongLength(10))
        ));
        let upper = text.to_uppercase();
        assert!(matches!(
            SecretKey::from_key_file(&upper),
            Err(KeyFileError::NotHex)
        ));
        let spaced = format!(" {text}");
        assert!(matches!(
            SecretKey::from_key_file(&spaced),
            Err(KeyFileError::WrongLength(65))
        ));
    }

    #[test]
    fn signature_verifies_only_its_message() {
        let secret = key(3);
        let signature = secret.sign(b"pay 5");
        assert_eq!(signature.verify(&secret.public_key(), b"pay 5"), Ok(()));
        assert_eq!(
            signature.verify(&secret.public_key(), b"pay 6"),
            Err(BadSignature)
        );
    }

    #[test]
    fn signature_postcard_form_is_64_raw_bytes() {
        let signature = key(3).sign(b"x");
        let bytes = postcard::to_stdvec(&signature).expect("encoding cannot fail");
        assert_eq!(bytes, signature.0.to_vec());
        assert_eq!(postcard::from_bytes::<Signature>(&bytes), Ok(signature));
    }
}
