//! Incremental request decoder for RESP multibulk and inline commands.
//!
//! The decoder owns no buffer: the connection appends bytes to a `BytesMut` and calls
//! [`RequestDecoder::decode`], which consumes complete arguments from the front of the buffer
//! as they arrive and keeps the partly-read command in its own state. Every byte is examined
//! a bounded number of times, so decoding is linear in the input size even when a large frame
//! arrives in many small reads. Arguments are `Bytes` slices of the read buffer (zero copy).
//!
//! Limits and error texts are Redis's: a violation is a [`ProtocolError`], after which the
//! connection replies `-ERR Protocol error: …` and closes, as redis-server does.

use bytes::{Buf, Bytes, BytesMut};

/// Redis's default `proto-max-bulk-len`: 512 MiB.
pub const BULK_LEN_BYTES_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// The most elements one multibulk request may carry.
pub const MULTIBULK_LEN_MAX: usize = 1024 * 1024;
/// The longest inline request line, and the longest `*`/`$` header line (PROTO_INLINE_MAX_SIZE).
pub const INLINE_LINE_BYTES_MAX: usize = 64 * 1024;
/// Bulks at least this large get their whole buffer reserved up front (PROTO_MBULK_BIG_ARG).
const BIG_ARG_BYTES: usize = 32 * 1024;

/// A request the client sent that cannot be parsed; the connection must close after replying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: too big mbulk count string")]
    MultibulkHeaderTooBig,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: too big bulk count string")]
    BulkHeaderTooBig,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

/// Bounds the decoder enforces; `proto-max-bulk-len` can change at run time.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub bulk_len_bytes_max: usize,
    /// Set while the client must still authenticate: Redis then allows only small requests.
    pub unauthenticated: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            bulk_len_bytes_max: BULK_LEN_BYTES_MAX_DEFAULT,
            unauthenticated: false,
        }
    }
}

/// One decoded request: the command name and its arguments, as sent.
pub type Request = Vec<Bytes>;

#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Idle,
    /// Inside a multibulk request: `remaining` arguments still to read.
    Multibulk {
        remaining: usize,
        args: Vec<Bytes>,
        bulk_len: Option<usize>,
    },
    /// Inside an inline request: `scanned` bytes of the buffer hold no newline.
    Inline { scanned: usize },
}

/// The incremental decoder; one per connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    state: State,
}

impl RequestDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a request is partly read (used to report `qbuf` and to detect mid-frame EOF).
    pub fn in_request(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Decodes the next complete request from `buf`, consuming its bytes.
    /// `Ok(None)` means more input is needed; empty requests (`*0`, blank lines) are skipped.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &DecodeLimits,
    ) -> Result<Option<Request>, ProtocolError> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    self.state = if first == b'*' {
                        match parse_multibulk_header(buf, limits)? {
                            None => return Ok(None),
                            Some(0) => State::Idle,
                            Some(n) => State::Multibulk {
                                remaining: n,
                                args: Vec::with_capacity(n.min(1024)),
                                bulk_len: None,
                            },
                        }
                    } else {
                        State::Inline { scanned: 0 }
                    };
                }
                State::Inline { scanned } => {
                    let Some(args) = parse_inline(buf, scanned)? else {
                        return Ok(None);
                    };
                    self.state = State::Idle;
                    if !args.is_empty() {
                        return Ok(Some(args));
                    }
                }
                State::Multibulk {
                    remaining,
                    args,
                    bulk_len,
                } => {
                    while *remaining > 0 {
                        let len = match *bulk_len {
                            Some(len) => len,
                            None => match parse_bulk_header(buf, limits)? {
                                None => return Ok(None),
                                Some(len) => {
                                    if len >= BIG_ARG_BYTES {
                                        buf.reserve(len + 2);
                                    }
                                    *bulk_len = Some(len);
                                    len
                                }
                            },
                        };
                        if buf.len() < len + 2 {
                            return Ok(None);
                        }
                        let arg = buf.split_to(len).freeze();
                        buf.advance(2); // Redis does not check the CRLF after a bulk either.
                        args.push(arg);
                        *bulk_len = None;
                        *remaining -= 1;
                    }
                    let args = std::mem::take(args);
                    self.state = State::Idle;
                    return Ok(Some(args));
                }
            }
        }
    }
}

/// Finds `\r\n` in `buf`; a header line longer than the inline limit is an error.
fn header_line(buf: &[u8], too_big: ProtocolError) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(INLINE_LINE_BYTES_MAX + 2)];
    match window.iter().position(|&b| b == b'\r') {
        Some(pos) if pos + 1 < buf.len() => Ok(Some(pos)),
        Some(_) => Ok(None),
        None if buf.len() > INLINE_LINE_BYTES_MAX => Err(too_big),
        None => Ok(None),
    }
}

fn parse_multibulk_header(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
) -> Result<Option<usize>, ProtocolError> {
    let Some(cr) = header_line(buf, ProtocolError::MultibulkHeaderTooBig)? else {
        return Ok(None);
    };
    let count = parse_i64(&buf[1..cr]);
    buf.advance(cr + 2);
    match count {
        Some(n) if n <= 0 => Ok(Some(0)),
        Some(n) if n as u64 > MULTIBULK_LEN_MAX as u64 => {
            Err(ProtocolError::InvalidMultibulkLength)
        }
        Some(n) if limits.unauthenticated && n > 10 => {
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        }
        Some(n) => Ok(Some(n as usize)),
        None => Err(ProtocolError::InvalidMultibulkLength),
    }
}

fn parse_bulk_header(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
) -> Result<Option<usize>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let Some(cr) = header_line(buf, ProtocolError::BulkHeaderTooBig)? else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(ProtocolError::ExpectedDollar(first as char));
    }
    let len = parse_i64(&buf[1..cr]);
    buf.advance(cr + 2);
    match len {
        Some(n) if n < 0 || n as u64 > limits.bulk_len_bytes_max as u64 => {
            Err(ProtocolError::InvalidBulkLength)
        }
        Some(n) if limits.unauthenticated && n > 16384 => {
            Err(ProtocolError::UnauthenticatedBulkLength)
        }
        Some(n) => Ok(Some(n as usize)),
        None => Err(ProtocolError::InvalidBulkLength),
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does (no spaces, no `+`, no leading 0).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && s.len() > 1) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Reads one inline line if it is complete. `scanned` remembers how far a previous call
/// looked, so a slow line is searched once in total.
fn parse_inline(buf: &mut BytesMut, scanned: &mut usize) -> Result<Option<Request>, ProtocolError> {
    let Some(offset) = buf[*scanned..].iter().position(|&b| b == b'\n') else {
        *scanned = buf.len();
        if buf.len() > INLINE_LINE_BYTES_MAX {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let nl = *scanned + offset;
    if nl > INLINE_LINE_BYTES_MAX {
        return Err(ProtocolError::InlineTooBig);
    }
    let line = buf.split_to(nl + 1);
    let mut text = &line[..nl];
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    split_inline_args(text)
        .map(Some)
        .ok_or(ProtocolError::UnbalancedQuotes)
}

/// Splits an inline line into arguments with Redis's quoting rules (`sdssplitargs`):
/// double quotes with `\n \r \t \b \a \\ \" \xHH` escapes, single quotes with `\'`.
/// Returns `None` for unbalanced quotes or a closing quote not followed by a space.
pub fn split_inline_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let c = *line.get(i)?;
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        current.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    current.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                current.push(c);
                i += 1;
            } else if in_single {
                let c = *line.get(i)?;
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                current.push(c);
                i += 1;
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => current.push(c),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(current));
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Request>, ProtocolError> {
        let mut decoder = RequestDecoder::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = decoder.decode(&mut buf, &DecodeLimits::default())? {
            out.push(req);
        }
        Ok(out)
    }

    fn strs(req: &Request) -> Vec<&[u8]> {
        req.iter().map(|b| b.as_ref()).collect()
    }

    #[test]
    fn multibulk_and_inline() {
        let reqs =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\nset a \"b c\"\n").unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(strs(&reqs[0]), vec![&b"GET"[..], b"k"]);
        assert_eq!(strs(&reqs[1]), vec![&b"PING"[..]]);
        assert_eq!(strs(&reqs[2]), vec![&b"set"[..], b"a", b"b c"]);
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nECHO 'x y'\r\n";
        let whole = decode_all(input).unwrap();
        for cut in 0..input.len() {
            let mut decoder = RequestDecoder::new();
            let mut buf = BytesMut::from(&input[..cut]);
            let mut out = Vec::new();
            while let Some(r) = decoder.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                out.push(r);
            }
            buf.extend_from_slice(&input[cut..]);
            while let Some(r) = decoder.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                out.push(r);
            }
            assert_eq!(out, whole, "split at {cut}");
        }
    }

    #[test]
    fn errors_have_redis_texts() {
        let err = |input: &[u8]| decode_all(input).unwrap_err().to_string();
        assert_eq!(err(b"*abc\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*1048577\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n+x\r\n"),
            "Protocol error: expected '$', got '+'"
        );
        assert_eq!(err(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*1\r\n$536870913\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            err(b"set a \"b\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(&vec![b'a'; 70_000]),
            "Protocol error: too big inline request"
        );
        let mut long_header = b"*".to_vec();
        long_header.extend(vec![b'1'; 70_000]);
        assert_eq!(
            err(&long_header),
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn byte_at_a_time_large_bulk_is_linear() {
        // 1 MiB value fed in 1 KiB reads: each read is examined once.
        let value = vec![b'v'; 1 << 20];
        let mut input = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", value.len()).into_bytes();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        let mut decoder = RequestDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in input.chunks(1024) {
            buf.extend_from_slice(chunk);
            if let Some(r) = decoder.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                got = Some(r);
            }
        }
        assert_eq!(got.unwrap()[1].len(), 1 << 20);
    }

    #[test]
    fn parse_i64_matches_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn inline_quoting() {
        let args = split_inline_args(br#"a "x\x41\n" 'it\'s' """#).unwrap();
        assert_eq!(strs(&args), vec![&b"a"[..], b"xA\n", b"it's", b""]);
        assert!(split_inline_args(br#""a"b"#).is_none());
    }
}
