//! SHA-256 digests: block hashes, transfer ids, Merkle nodes and the network id.
//!
//! Every digest in Tally is SHA-256 so that an auditor can reproduce any of them with common
//! tools. Where two kinds of input could collide (a Merkle leaf and an inner node, say), the
//! hashed bytes start with a one-byte or string domain tag chosen by the caller.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest.
///
/// In postcard it is 32 raw bytes (no length prefix); in JSON and in text it is 64 lowercase
/// hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero digest, used as the parent of the first block.
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    /// SHA-256 of the concatenation of `parts`, without copying them into one buffer.
    pub fn digest_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Why a hex string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    /// The text is not 64 characters long.
    #[error("a hash is 64 hex characters, got {0}")]
    WrongLength(usize),
    /// The text has a character outside `0-9a-f`.
    #[error("a hash is lowercase hex (0-9, a-f)")]
    NotHex,
}

impl FromStr for Hash {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Hash, HashParseError> {
        if text.len() != 64 {
            return Err(HashParseError::WrongLength(text.len()));
        }

        // Only lowercase is accepted so that every hash has exactly one text form.
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(HashParseError::NotHex);
        }

        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HashParseError::NotHex)?;
        Ok(Hash(bytes))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            Hash::digest(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digest_parts_equals_digest_of_concatenation() {
        assert_eq!(Hash::digest_parts(&[b"ab", b"c"]), Hash::digest(b"abc"));
    }

    #[test]
    fn text_form_round_trips_and_rejects_uppercase() {
        let hash = Hash::digest(b"tally");
        assert_eq!(hash.to_hex().parse::<Hash>(), Ok(hash));
        assert_eq!(
            hash.to_hex().to_uppercase().parse::<Hash>(),
            Err(HashParseError::NotHex)
        );
        assert_eq!("abc".parse::<Hash>(), Err(HashParseError::WrongLength(3)));
    }

    #[test]
    fn postcard_form_is_32_raw_bytes() {
        let hash = Hash::digest(b"tally");
        let bytes = postcard::to_stdvec(&hash).expect("encoding a hash cannot fail");
        assert_eq!(bytes, hash.0.to_vec());
    }
}
