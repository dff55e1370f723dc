//! Argument parsing with Redis's strictness and error texts.

use bytes::Bytes;

use super::error::{self, CmdError};
use super::strtod::strtod;
use crate::protocol::decode;

/// An integer argument as Redis's `string2ll` accepts it.
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    decode::parse_i64(arg).ok_or(CmdError::Static(error::NOT_INTEGER))
}

/// A non-negative integer argument with a custom error text when out of range.
pub fn int_with(arg: &[u8], err: &'static str) -> Result<i64, CmdError> {
    decode::parse_i64(arg).ok_or(CmdError::Static(err))
}

/// A float argument as Redis's `getDoubleFromObject` accepts it: C's `strtod` over the
/// whole string (hexadecimal too), no leading space, no NaN, and no result out of a
/// double's range (`1e400`, `1e-400`).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::Static(error::NOT_FLOAT))
}

pub fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(u8::is_ascii_whitespace) {
        return None;
    }
    let (value, out_of_range) = strtod(arg)?;
    (!(out_of_range && (value.is_infinite() || value == 0.0))).then_some(value)
}

/// A score bound as Redis's sorted-set range parser reads it: plain `strtod`, so leading
/// whitespace is skipped, an empty bound is 0, and a result out of range is kept
/// (`1e400` is +inf).
pub fn parse_range_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() {
        return Some(0.0);
    }
    let start = arg.iter().position(|b| !is_c_space(*b))?;
    strtod(&arg[start..]).map(|(value, _)| value)
}

/// C's `isspace` in the "C" locale.
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

pub fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

pub fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

pub fn text(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_redis() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b"1 "), None);
        assert_eq!(parse_float(b"nan"), None);
        // strtod reads hexadecimal (redis-server 7.0: `ZADD z 0x10 a` gives score 16).
        assert_eq!(parse_float(b"0x10"), Some(16.0));
        assert_eq!(parse_float(b""), None);
        // Out of a double's range: refused here, kept by the score-range reader.
        assert_eq!(parse_float(b"1e400"), None);
        assert_eq!(parse_float(b"1e-400"), None);
        assert_eq!(parse_range_float(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_float(b""), Some(0.0));
        assert_eq!(parse_range_float(b" \t5"), Some(5.0));
        assert_eq!(parse_range_float(b"  "), None);
    }
}
