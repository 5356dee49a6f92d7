//! Pagination cursors for account history.
//!
//! A cursor names the last entry of a page; the next page holds the entries strictly older
//! than it. History only grows at the new end, so a position in it never moves: paging with
//! cursors never skips or repeats an entry, however many transfers arrive in between. The
//! text is opaque to wallets (24 lowercase hex characters: height and position, big-endian)
//! so the encoding can change without breaking them.

use super::backend::Location;

/// Entries per page when the wallet does not say.
pub const DEFAULT_LIMIT: usize = 20;

/// The most entries one page holds.
pub const MAX_LIMIT: usize = 100;

/// Encodes the position after which the next page starts.
pub fn encode(location: Location) -> String {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&location.height.to_be_bytes());
    bytes[8..].copy_from_slice(&location.position.to_be_bytes());
    hex::encode(bytes)
}

/// Decodes a cursor made by [`encode`]; `None` for anything else.
pub fn decode(text: &str) -> Option<Location> {
    if text.len() != 24 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return None;
    }
    let bytes = hex::decode(text).ok()?;
    let height = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let position = u32::from_be_bytes(bytes[8..].try_into().ok()?);
    Some(Location { height, position })
}

/// Parses `limit`: a decimal integer from 1 to [`MAX_LIMIT`]; absent means the default.
pub fn limit(text: Option<&str>) -> Result<usize, String> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    match protocol::transfer::parse_integer(text) {
        Some(value) if (1..=MAX_LIMIT as u64).contains(&value) => Ok(value as usize),
        _ => Err(format!("limit must be an integer from 1 to {MAX_LIMIT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let location = Location {
            height: 0xabcdef,
            position: 0xfa,
        };
        assert_eq!(decode(&encode(location)), Some(location));
        assert_eq!(decode("zz"), None);
        assert_eq!(decode(&encode(location).to_uppercase()), None);
        assert_eq!(decode(&format!("{}00", encode(location))), None);
    }

    #[test]
    fn limits_are_bounded_integers() {
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some("5")), Ok(5));
        assert_eq!(limit(Some("100")), Ok(100));
        for bad in ["0", "-1", "abc", "101", "05", "", "1.5"] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
