//! Amounts: `u64` units inside, decimal strings at the human edge.
//!
//! Every balance, fee and amount in the ledger and in every signed or hashed byte is a `u64`
//! count of the smallest unit. The genesis fixes how many decimal places a unit is
//! ([`Decimals`], 0 to 8) and caps the total supply below 2^64 units, so with supply conserved
//! no balance or sum of balances can overflow.
//!
//! People read and type decimal strings. Those are parsed by our own strict grammar,
//!
//! ```text
//! ^(0|[1-9][0-9]*)(\.[0-9]+)?$      with at most `decimals` digits after the point
//! ```
//!
//! and only then converted with rust_decimal, because `Decimal::from_str` on its own accepts
//! `1e3`, `+5`, `1.`, `.5`, `01` and `1__0` and silently rounds past 28 digits. Amounts are
//! always printed with exactly `decimals` places (`12.50`, never `12.5`).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most decimal places a network may use.
pub const MAX_DECIMALS: u8 = 8;

/// Digits in `u64::MAX` (18446744073709551615): an integer part with more cannot fit.
const MAX_INTEGER_DIGITS: usize = 20;

/// How many decimal places one whole coin has: 0 to 8, 2 by default.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimals(u8);

impl Decimals {
    /// Two places, as for most currencies.
    pub const DEFAULT: Decimals = Decimals(2);

    /// Checks that `places` is within 0..=8.
    pub fn new(places: u8) -> Result<Decimals, AmountError> {
        if places > MAX_DECIMALS {
            return Err(AmountError::BadDecimals(places));
        }
        Ok(Decimals(places))
    }

    /// The number of places.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Units in one whole coin: 10^places.
    pub fn units_per_coin(self) -> u64 {
        10u64.pow(u32::from(self.0))
    }
}

impl Default for Decimals {
    fn default() -> Decimals {
        Decimals::DEFAULT
    }
}

impl fmt::Debug for Decimals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimals({})", self.0)
    }
}

impl fmt::Display for Decimals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Decimals {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Decimals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Decimals, D::Error> {
        let places = u8::deserialize(deserializer)?;
        Decimals::new(places).map_err(serde::de::Error::custom)
    }
}

/// Why a decimal string is not an acceptable amount. Each variant names one broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The network's decimal places are outside 0..=8.
    #[error("decimals must be between 0 and {MAX_DECIMALS}, got {0}")]
    BadDecimals(u8),
    /// The text is empty.
    #[error("amount is empty")]
    Empty,
    /// Spaces, tabs or newlines anywhere in the text.
    #[error("amount must not contain spaces")]
    Whitespace,
    /// A leading `+`.
    #[error("amount must not start with '+'")]
    LeadingPlus,
    /// `-0`, `-0.00` and the like: zero written as negative.
    #[error("amount must not be negative zero")]
    NegativeZero,
    /// A leading `-`.
    #[error("amount must not be negative")]
    Negative,
    /// A hex prefix such as `0x`.
    #[error("amount must be decimal, not hex")]
    Hex,
    /// An exponent such as `1e3`.
    #[error("amount must not use an exponent")]
    Exponent,
    /// Digit-group separators such as `1_000`.
    #[error("amount must not contain underscores")]
    Underscore,
    /// Two decimal points.
    #[error("amount has more than one decimal point")]
    MultiplePoints,
    /// Nothing before the point, as in `.5`.
    #[error("amount needs a digit before the decimal point")]
    MissingIntegerDigit,
    /// Nothing after the point, as in `1.`.
    #[error("amount needs a digit after the decimal point")]
    MissingFractionDigit,
    /// A zero before other integer digits, as in `01`.
    #[error("amount must not have leading zeros")]
    LeadingZero,
    /// Any character other than digits and one point.
    #[error("amount has an invalid character {0:?}")]
    InvalidCharacter(char),
    /// More digits after the point than the network's decimals.
    #[error("amount has {got} decimal places, at most {max} allowed")]
    TooManyDecimals {
        /// The network's decimals.
        max: u8,
        /// Digits after the point in the text.
        got: usize,
    },
    /// Zero where a positive amount is required.
    #[error("amount must be greater than zero")]
    Zero,
    /// More than the maximum (the supply cap, or what a `u64` holds).
    #[error("amount is above the maximum of {maximum}")]
    AboveMaximum {
        /// The maximum, formatted at the network's decimals.
        maximum: String,
    },
}

/// Parses `text` as an amount of at most `max` units; zero is allowed.
pub fn parse_amount(text: &str, decimals: Decimals, max: u64) -> Result<u64, AmountError> {
    check_grammar(text, decimals)?;

    let units = to_units(text, decimals).ok_or_else(|| above(max, decimals))?;
    if units > max {
        return Err(above(max, decimals));
    }
    Ok(units)
}

/// Parses `text` as an amount of at least one unit and at most `max` units.
pub fn parse_positive_amount(text: &str, decimals: Decimals, max: u64) -> Result<u64, AmountError> {
    let units = parse_amount(text, decimals, max)?;
    if units == 0 {
        return Err(AmountError::Zero);
    }
    Ok(units)
}

/// Formats `units` with exactly `decimals` places: 1250 units at 2 places is `12.50`.
pub fn format_amount(units: u64, decimals: Decimals) -> String {
    Decimal::from_i128_with_scale(i128::from(units), u32::from(decimals.get())).to_string()
}

fn above(max: u64, decimals: Decimals) -> AmountError {
    AmountError::AboveMaximum {
        maximum: format_amount(max, decimals),
    }
}

/// Enforces `^(0|[1-9][0-9]*)(\.[0-9]+)?$` with at most `decimals` fraction digits, naming the
/// first rule broken. The sign and prefix checks come first so that `-1e3` reports the sign.
fn check_grammar(text: &str, decimals: Decimals) -> Result<(), AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.chars().any(char::is_whitespace) {
        return Err(AmountError::Whitespace);
    }
    if text.starts_with('+') {
        return Err(AmountError::LeadingPlus);
    }
    if let Some(rest) = text.strip_prefix('-') {
        let is_zero = rest.contains('0') && rest.bytes().all(|b| b == b'0' || b == b'.');
        return Err(if is_zero {
            AmountError::NegativeZero
        } else {
            AmountError::Negative
        });
    }
    if text.starts_with("0x") || text.starts_with("0X") {
        return Err(AmountError::Hex);
    }
    if text.contains(['e', 'E']) {
        return Err(AmountError::Exponent);
    }
    if text.contains('_') {
        return Err(AmountError::Underscore);
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        return Err(AmountError::InvalidCharacter(bad));
    }

    let (integer, fraction) = match text.split_once('.') {
        None => (text, None),
        Some((_, after)) if after.contains('.') => return Err(AmountError::MultiplePoints),
        Some((before, after)) => (before, Some(after)),
    };
    if integer.is_empty() {
        return Err(AmountError::MissingIntegerDigit);
    }
    if integer.len() > 1 && integer.starts_with('0') {
        return Err(AmountError::LeadingZero);
    }
    if let Some(fraction) = fraction {
        if fraction.is_empty() {
            return Err(AmountError::MissingFractionDigit);
        }
        if fraction.len() > usize::from(decimals.get()) {
            return Err(AmountError::TooManyDecimals {
                max: decimals.get(),
                got: fraction.len(),
            });
        }
    }
    Ok(())
}

/// Converts grammar-checked text to units, or `None` when it exceeds a `u64`.
fn to_units(text: &str, decimals: Decimals) -> Option<u64> {
    // A longer integer part is at least 10^20 > u64::MAX. Refusing it here also keeps every
    // input within rust_decimal's 28 exact digits (20 + 8), so nothing is ever rounded.
    let integer_digits = text.split('.').next().map_or(0, str::len);
    if integer_digits > MAX_INTEGER_DIGITS {
        return None;
    }

    let mut value = Decimal::from_str_exact(text).ok()?;

    // The grammar allows at most `decimals` fraction digits, so raising the scale to exactly
    // `decimals` only appends zeros and the mantissa becomes the count of units.
    value.rescale(u32::from(decimals.get()));
    u64::try_from(value.mantissa()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Decimals = Decimals::DEFAULT;

    fn parse(text: &str) -> Result<u64, AmountError> {
        parse_positive_amount(text, TWO, u64::MAX)
    }

    #[test]
    fn well_formed_amounts_parse_to_units() {
        assert_eq!(parse("12.5"), Ok(1250));
        assert_eq!(parse("12.50"), Ok(1250));
        assert_eq!(parse("0.01"), Ok(1));
        assert_eq!(parse("7"), Ok(700));
        assert_eq!(parse("184467440737095516.15"), Ok(u64::MAX));
        assert_eq!(parse_amount("0", TWO, 10), Ok(0));
        assert_eq!(parse_amount("0.00", TWO, 10), Ok(0));
        assert_eq!(
            parse_amount("18446744073709551615", Decimals(0), u64::MAX),
            Ok(u64::MAX)
        );
        assert_eq!(parse_amount("0.00000001", Decimals(8), u64::MAX), Ok(1));
    }

    #[test]
    fn each_malformed_amount_names_its_problem() {
        let cases: &[(&str, AmountError)] = &[
            ("0", AmountError::Zero),
            ("0.00", AmountError::Zero),
            ("-0", AmountError::NegativeZero),
            ("-0.00", AmountError::NegativeZero),
            ("-1", AmountError::Negative),
            ("-", AmountError::Negative),
            ("-.", AmountError::Negative),
            ("+5", AmountError::LeadingPlus),
            ("1e3", AmountError::Exponent),
            ("1E3", AmountError::Exponent),
            ("0x10", AmountError::Hex),
            ("1_000", AmountError::Underscore),
            (" 5", AmountError::Whitespace),
            ("5 ", AmountError::Whitespace),
            ("5\n", AmountError::Whitespace),
            ("1.", AmountError::MissingFractionDigit),
            (".5", AmountError::MissingIntegerDigit),
            ("01", AmountError::LeadingZero),
            ("00.5", AmountError::LeadingZero),
            ("1.2.3", AmountError::MultiplePoints),
            ("1,5", AmountError::InvalidCharacter(',')),
            ("٣", AmountError::InvalidCharacter('٣')),
            ("", AmountError::Empty),
            ("1.001", AmountError::TooManyDecimals { max: 2, got: 3 }),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).as_ref(), Err(expected), "input {text:?}");
        }
    }

    #[test]
    fn amounts_beyond_the_cap_or_a_u64_are_refused() {
        let over_u64 = AmountError::AboveMaximum {
            maximum: "184467440737095516.15".into(),
        };
        assert_eq!(parse("18446744073709551616"), Err(over_u64.clone()));
        assert_eq!(parse("184467440737095516.16"), Err(over_u64.clone()));
        assert_eq!(parse(&"9".repeat(40)), Err(over_u64));

        let capped = AmountError::AboveMaximum {
            maximum: "10.00".into(),
        };
        assert_eq!(parse_amount("10.01", TWO, 1000), Err(capped));
        assert_eq!(parse_amount("10.00", TWO, 1000), Ok(1000));
    }

    #[test]
    fn zero_decimals_refuse_any_fraction() {
        let zero = Decimals::new(0).expect("0 is allowed");
        assert_eq!(
            parse_amount("1.0", zero, u64::MAX),
            Err(AmountError::TooManyDecimals { max: 0, got: 1 })
        );
        assert_eq!(parse_amount("15", zero, u64::MAX), Ok(15));
    }

    #[test]
    fn formatting_always_shows_exactly_decimals_places() {
        assert_eq!(format_amount(1250, TWO), "12.50");
        assert_eq!(format_amount(0, TWO), "0.00");
        assert_eq!(format_amount(5, TWO), "0.05");
        assert_eq!(format_amount(7, Decimals(0)), "7");
        assert_eq!(format_amount(1, Decimals(8)), "0.00000001");
        assert_eq!(format_amount(u64::MAX, TWO), "184467440737095516.15");
    }

    #[test]
    fn formatting_and_parsing_round_trip() {
        for places in 0..=MAX_DECIMALS {
            let decimals = Decimals::new(places).expect("in range");
            for units in [0, 1, 9, 10, 123_456_789, u64::MAX - 1, u64::MAX] {
                let text = format_amount(units, decimals);
                assert_eq!(parse_amount(&text, decimals, u64::MAX), Ok(units), "{text}");
            }
        }
    }

    #[test]
    fn decimals_outside_zero_to_eight_are_refused() {
        assert_eq!(Decimals::new(9), Err(AmountError::BadDecimals(9)));
        assert_eq!(Decimals::new(8).map(Decimals::get), Ok(8));
        assert_eq!(Decimals::default().units_per_coin(), 100);
    }
}
