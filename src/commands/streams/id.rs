//! Stream entry IDs: `<ms>-<seq>` pairs, parsed with Redis's rules and texts.
//!
//! An ID is stored as 16 big-endian bytes so byte order is ID order (`encode`).

use std::fmt;

use super::super::error::CmdError;

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::ZERO
    }

    /// The next ID, or `None` past the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { seq, ..self }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID, or `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { seq, ..self }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    pub fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8]) -> Option<StreamId> {
        Some(StreamId {
            ms: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            seq: u64::from_be_bytes(raw.get(8..16)?.try_into().ok()?),
        })
    }

    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An ID as given: its sequence may be left to the server (`<ms>-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    /// False for `<ms>-*` (XADD picks the sequence).
    pub seq_given: bool,
}

/// How an ID argument is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRules {
    /// The sequence of an ID given as `<ms>` alone.
    pub missing_seq: u64,
    /// `-` and `+` refused (IDs that name one entry).
    pub strict: bool,
    /// `<ms>-*` accepted (XADD).
    pub auto_seq: bool,
}

impl IdRules {
    /// An ID naming one entry or position: no `-`/`+`, `<ms>` means `<ms>-0`.
    pub const STRICT: IdRules = IdRules {
        missing_seq: 0,
        strict: true,
        auto_seq: false,
    };
    /// A position that may be `-` or `+`; `<ms>` means `<ms>-<missing_seq>`.
    pub const fn loose(missing_seq: u64) -> IdRules {
        IdRules {
            missing_seq,
            strict: false,
            auto_seq: false,
        }
    }
}

/// Parses an ID as Redis's `streamGenericParseIDOrReply` does.
pub fn parse_with(arg: &[u8], rules: IdRules) -> Result<ParsedId, CmdError> {
    let invalid = || CmdError::Static(INVALID_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    let given = |id| ParsedId {
        id,
        seq_given: true,
    };
    match arg {
        b"-" | b"+" if rules.strict => return Err(invalid()),
        b"-" => return Ok(given(StreamId::ZERO)),
        b"+" => return Ok(given(StreamId::MAX)),
        _ => {}
    }
    // A NUL ends the C string Redis parses.
    let arg = arg.split(|b| *b == 0).next().unwrap_or_default();
    let (ms_part, seq_part) = match arg.iter().position(|b| *b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid)?;
    match seq_part {
        None => Ok(given(StreamId::new(ms, rules.missing_seq))),
        Some(b"*") if rules.auto_seq => Ok(ParsedId {
            id: StreamId::new(ms, 0),
            seq_given: false,
        }),
        Some(seq) => Ok(given(StreamId::new(
            ms,
            string2ull(seq).ok_or_else(invalid)?,
        ))),
    }
}

/// An ID naming one entry (XDEL, XACK, XCLAIM, XSETID...).
pub fn parse_strict(arg: &[u8]) -> Result<StreamId, CmdError> {
    Ok(parse_with(arg, IdRules::STRICT)?.id)
}

/// Redis's `string2ull`: a 64-bit signed integer that is not negative, or else whatever
/// C's `strtoull` reads from the whole string (leading blanks, a sign — a minus wraps).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = crate::protocol::decode::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let start = s
        .iter()
        .position(|b| !crate::commands::args::is_c_space(*b))?;
    let mut rest = &s[start..];
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in rest {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(s: &str) -> Option<StreamId> {
        parse_with(s.as_bytes(), IdRules::loose(0))
            .ok()
            .map(|p| p.id)
    }

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(loose("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(loose("5"), Some(StreamId::new(5, 0)));
        assert_eq!(
            parse_with(b"5", IdRules::loose(u64::MAX)).unwrap().id,
            StreamId::new(5, u64::MAX)
        );
        assert_eq!(loose("-"), Some(StreamId::ZERO));
        assert_eq!(loose("+"), Some(StreamId::MAX));
        assert!(parse_strict(b"-").is_err());
        assert!(parse_strict(b"+").is_err());
        assert_eq!(
            loose("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(loose("18446744073709551616"), None);
        assert_eq!(loose("-5"), None);
        assert_eq!(loose("1-2-3"), None);
        assert_eq!(loose(""), None);
        assert_eq!(loose("1-"), None);
        assert_eq!(loose("+5"), Some(StreamId::new(5, 0)));
        // strtoull's quirks, as Redis inherits them: blanks and a wrapping minus in the
        // sequence part.
        assert_eq!(loose("1- -5"), Some(StreamId::new(1, 5u64.wrapping_neg())));
        assert_eq!(loose(" 7"), Some(StreamId::new(7, 0)));
        assert!(loose("1-*").is_none());
        let auto = IdRules {
            auto_seq: true,
            ..IdRules::STRICT
        };
        assert_eq!(
            parse_with(b"9-*", auto),
            Ok(ParsedId {
                id: StreamId::new(9, 0),
                seq_given: false
            })
        );
        assert!(loose(&"1".repeat(128)).is_none());
    }

    #[test]
    fn next_prev_and_byte_order() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::ZERO.prev(), None);
        let (a, b) = (StreamId::new(1, 300), StreamId::new(2, 1));
        assert!(a.encode() < b.encode());
        assert_eq!(StreamId::decode(&a.encode()), Some(a));
    }
}
