//! Argument parsing with Redis's strictness and error texts.

use bytes::Bytes;

use super::error::{self, CmdError};
use crate::protocol::decode;

/// An integer argument as Redis's `string2ll` accepts it.
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    decode::parse_i64(arg).ok_or(CmdError::Static(error::NOT_INTEGER))
}

/// A non-negative integer argument with a custom error text when out of range.
pub fn int_with(arg: &[u8], err: &'static str) -> Result<i64, CmdError> {
    decode::parse_i64(arg).ok_or(CmdError::Static(err))
}

/// A float argument as Redis's `string2ld`/`string2d` accepts it: no leading space, the
/// whole string consumed, no NaN.
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::Static(error::NOT_FLOAT))
}

pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let value = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        "nan" => return None,
        _ if lower.contains(['_', 'x', 'n', 'i']) => return None,
        _ => text.parse::<f64>().ok()?,
    };
    (!value.is_nan()).then_some(value)
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
        assert_eq!(parse_float(b"0x10"), None);
        assert_eq!(parse_float(b""), None);
    }
}
