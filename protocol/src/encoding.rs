//! Canonical postcard encoding: the only bytes Tally ever hashes or signs.
//!
//! postcard's wire format is frozen and documented: unsigned integers wider than a byte are
//! LEB128 varints, strings and byte vectors carry a varint length, fixed arrays are raw bytes,
//! struct fields are written in declaration order with no names, and an enum is its variant
//! index as a varint followed by its fields. On its own, though, postcard decoding accepts
//! trailing bytes and over-long varints (`0x81 0x00` for 1), so one value has many encodings.
//! [`decode_canonical`] re-encodes what it decoded and refuses any input whose re-encoding
//! differs, so every accepted byte string is the one encoding of its value.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes are not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// postcard could not decode a value of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A value decoded, but bytes were left over after it.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the value's one canonical encoding (for example a
    /// varint written with more bytes than needed).
    #[error("encoding is not canonical")]
    NotCanonical,
}

/// Encodes `value` with postcard.
///
/// # Panics
///
/// Only if `value`'s `Serialize` implementation reports an error, which none of the types in
/// this crate does: they hold only integers, fixed arrays, strings, vectors and structs.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("protocol types always encode")
}

/// The length of `value`'s encoding, without keeping the bytes.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).expect("protocol types always encode")
}

/// Decodes `bytes` as one `T`, accepting only its canonical encoding.
pub fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|error| DecodeError::Malformed(error.to_string()))?;

    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }

    // Re-encoding is the simplest complete check: it catches over-long varints, and any other
    // leeway the decoder has now or gains later.
    if encode(&value) != bytes {
        return Err(DecodeError::NotCanonical);
    }
    Ok(value)
}

/// The number of bytes postcard uses for `value` as a varint.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_encoding_round_trips() {
        let bytes = encode(&(300u64, String::from("hi")));
        assert_eq!(bytes, [0xac, 0x02, 0x02, b'h', b'i']);
        assert_eq!(
            decode_canonical::<(u64, String)>(&bytes),
            Ok((300, "hi".into()))
        );
    }

    #[test]
    fn trailing_byte_is_refused() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert_eq!(
            decode_canonical::<u64>(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn non_minimal_varint_is_refused() {
        // 1 written as two varint bytes: postcard alone decodes this as 1.
        assert_eq!(postcard::from_bytes::<u64>(&[0x81, 0x00]), Ok(1));
        assert_eq!(
            decode_canonical::<u64>(&[0x81, 0x00]),
            Err(DecodeError::NotCanonical)
        );
    }

    #[test]
    fn truncated_input_is_malformed() {
        assert!(matches!(
            decode_canonical::<u64>(&[0x80]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn varint_len_matches_postcard() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(varint_len(value), encode(&value).len(), "{value}");
        }
    }
}
