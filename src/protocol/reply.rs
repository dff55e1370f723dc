//! Replies and their encoding in RESP2 and RESP3.
//!
//! A command builds a [`Reply`] once; the connection encodes it for the client's protocol
//! version. RESP3-only shapes fall back to their RESP2 forms the way redis-server does: maps
//! and sets become flat arrays, doubles become bulk strings, booleans integers, nulls `$-1`
//! or `*-1`, verbatim strings bulk strings, pushes arrays.

use bytes::{BufMut, Bytes, BytesMut};

/// A reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Simple(&'static str),
    /// A status built at run time (`+` line).
    Status(String),
    /// `-ERR …`: the full line without the leading `-`.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// Null bulk string (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// Null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    /// Pairs that RESP2 lists flat and RESP3 as two-element arrays (a sorted set's members
    /// WITHSCORES, HRANDFIELD WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// A map in RESP3; in RESP2 an array of two-element arrays (XREAD's streams).
    Keyed(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    /// A double already written out (Redis's "human" long-double text): a bulk string in
    /// RESP2, a double in RESP3.
    DoubleText(String),
    Boolean(bool),
    /// A big number's digits: `(` in RESP3, a bulk string in RESP2 (Lua scripts return
    /// them as `{big_number=…}`).
    BigNumber(String),
    /// Verbatim string with its three-letter format (`txt`, `mkd`).
    Verbatim(&'static str, Bytes),
    Push(Vec<Reply>),
    /// A reply already encoded for this client's protocol (one relayed from another node),
    /// written as is.
    Encoded(Bytes),
}

impl Reply {
    pub const OK: Reply = Reply::Simple("OK");

    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Reply::Array(items.into_iter().map(|b| Reply::Bulk(b.into())).collect())
    }

    /// Encodes into `out` for protocol version 2 or 3.
    pub fn encode(&self, resp3: bool, out: &mut BytesMut) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Integer(n) => integer_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Null if resp3 => out.put_slice(b"_\r\n"),
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => aggregate(out, b'*', items, resp3),
            Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, resp3),
            Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, resp3),
            Reply::Map(pairs) => {
                if resp3 {
                    integer_line(out, b'%', pairs.len() as i64);
                } else {
                    integer_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
            Reply::Keyed(pairs) => {
                integer_line(out, if resp3 { b'%' } else { b'*' }, pairs.len() as i64);
                for (k, v) in pairs {
                    if !resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
            Reply::Pairs(pairs) => {
                integer_line(out, b'*', pairs.len() as i64 * if resp3 { 1 } else { 2 });
                for (a, b) in pairs {
                    if resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    a.encode(resp3, out);
                    b.encode(resp3, out);
                }
            }
            Reply::DoubleText(text) if resp3 => line(out, b',', text.as_bytes()),
            Reply::DoubleText(text) => bulk(out, text.as_bytes()),
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Boolean(b) => integer_line(out, b':', i64::from(*b)),
            Reply::Verbatim(format, text) if resp3 => {
                integer_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(format.as_bytes());
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(_, text) => bulk(out, text),
            Reply::BigNumber(digits) if resp3 => line(out, b'(', digits.as_bytes()),
            Reply::BigNumber(digits) => bulk(out, digits.as_bytes()),
            Reply::Encoded(raw) => out.put_slice(raw),
        }
    }
}

fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn integer_line(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut digits = [0u8; 20];
    let mut pos = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        digits[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.reserve(24);
    out.put_u8(prefix);
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[pos..]);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    integer_line(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, prefix: u8, items: &[Reply], resp3: bool) {
    integer_line(out, prefix, items.len() as i64);
    for item in items {
        item.encode(resp3, out);
    }
}

/// A scalar reply a peer encoded (`Reply::Encoded`: a forwarded command's answer) as a
/// [`Reply`]: a status, an error, an integer, a bulk string or null. `None` for anything
/// else (an aggregate) or a malformed or truncated encoding.
pub fn decode_scalar(raw: &Bytes) -> Option<Reply> {
    let end = raw.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(raw.get(1..end)?).ok()?;
    let whole = |reply: Reply| (raw.len() == end + 2).then_some(reply);
    match raw.first()? {
        b'+' => whole(Reply::Status(line.to_string())),
        b'-' => whole(Reply::Error(line.to_string())),
        b':' => whole(Reply::Integer(line.parse().ok()?)),
        b'_' if line.is_empty() => whole(Reply::Null),
        b'$' if line == "-1" => whole(Reply::Null),
        b'$' => {
            let len: usize = line.parse().ok()?;
            let start = end + 2;
            let body = raw.get(start..start.checked_add(len)?)?;
            (raw.len() == start + len + 2 && raw.ends_with(b"\r\n"))
                .then(|| Reply::Bulk(raw.slice_ref(body)))
        }
        _ => None,
    }
}

/// Formats a double as Redis does for replies: `inf`, `-inf`, `nan`, otherwise `%.17g`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format_g17(d)
    }
}

/// C's `%.17g`: 17 significant digits, trailing zeros trimmed, exponent form outside 1e-4..1e17.
pub fn format_g17(d: f64) -> String {
    format_g(d, 17)
}

/// C's `%.<precision>g` (Lua writes numbers with `%.14g`): the shorter of fixed and
/// exponent notation for `precision` significant digits, trailing zeros dropped.
pub fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let precision = precision.clamp(1, 40);
    // Integral values of at most `precision` digits (scores, counters, timestamps) print
    // as the integer they are: no decimal conversion needed.
    if n.fract() == 0.0 && n.abs() < 10f64.powi(precision.min(18) as i32) {
        return (n as i64).to_string();
    }
    // One exact conversion gives the digits and the exponent; the fixed form is the same
    // digits with the point moved (C's %g chooses its style from this exponent).
    let scientific = format!("{:.*e}", precision - 1, n.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut out = String::with_capacity(precision + 8);
    if n < 0.0 {
        out.push('-');
    }
    if exponent < -4 || exponent >= precision as i32 {
        out.push_str(trim_fraction(mantissa));
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push('e');
        out.push(sign);
        let e = exponent.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else {
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let fixed = if exponent >= 0 {
            let (int, frac) = digits.split_at(exponent as usize + 1);
            format!("{int}.{frac}")
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        };
        out.push_str(trim_fraction(&fixed));
    }
    out
}

/// `1.500` → `1.5`, `2.000` → `2`.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> String {
        let mut out = BytesMut::new();
        r.encode(resp3, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Integer(1))]);
        assert_eq!(enc(&map, false), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Null, false), "$-1\r\n");
        assert_eq!(enc(&Reply::NullArray, false), "*-1\r\n");
        assert_eq!(enc(&Reply::Null, true), "_\r\n");
        assert_eq!(enc(&Reply::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(&Reply::Double(1.5), false), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Boolean(true), true), "#t\r\n");
        assert_eq!(enc(&Reply::Boolean(false), false), ":0\r\n");
        assert_eq!(
            enc(&Reply::Set(vec![Reply::Integer(1)]), true),
            "~1\r\n:1\r\n"
        );
        assert_eq!(
            enc(&Reply::Verbatim("txt", "hi".into()), true),
            "=6\r\ntxt:hi\r\n"
        );
        assert_eq!(enc(&Reply::Push(vec![]), true), ">0\r\n");
    }

    #[test]
    fn g17_matches_c() {
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(100.0), "100");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1.25e-5), "1.2500000000000001e-05");
        assert_eq!(format_g17(3.0e-5), "3.0000000000000001e-05");
        assert_eq!(format_g17(-2.5), "-2.5");
        assert_eq!(format_g17(12345678901234567.0), "12345678901234568");
        assert_eq!(format_g17(-1e16), "-10000000000000000");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(99999999999999984.0), "99999999999999984");
        assert_eq!(format_g(99999.5, 5), "1e+05");
        assert_eq!(format_g(0.000123456, 3), "0.000123");
    }

    #[test]
    fn encoded_scalars_decode() {
        let d = |raw: &'static str| decode_scalar(&Bytes::from(raw));
        assert_eq!(d("+OK\r\n"), Some(Reply::Status("OK".into())));
        assert_eq!(d("-ERR no\r\n"), Some(Reply::Error("ERR no".into())));
        assert_eq!(d(":-7\r\n"), Some(Reply::Integer(-7)));
        assert_eq!(d("$3\r\nabc\r\n"), Some(Reply::Bulk(Bytes::from("abc"))));
        assert_eq!(d("$0\r\n\r\n"), Some(Reply::Bulk(Bytes::new())));
        assert_eq!(d("$-1\r\n"), Some(Reply::Null));
        assert_eq!(d("_\r\n"), Some(Reply::Null));
        for bad in [
            "$9\r\nabc\r\n",
            "$3\r\nabcd\r\n",
            "*1\r\n:1\r\n",
            ":x\r\n",
            "+OK",
            "",
            "$3\r\nabc",
            ":1\r\n:2\r\n",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }

    /// `format_g` against the C library's `snprintf("%.*g")` over many doubles.
    #[test]
    fn format_g_matches_snprintf() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases: Vec<f64> = vec![0.1, 1.0 / 3.0, 2.5, 1e-5, 9.5, 0.5e-4, 123456.789];
        for _ in 0..20_000 {
            let bits = next();
            let d = f64::from_bits(bits);
            if d.is_finite() {
                cases.push(d);
            }
            let scale = 10f64.powi((next() % 40) as i32 - 20);
            cases.push((next() % 1_000_000) as f64 * scale);
            cases.push(-((next() % 100_000) as f64) / 8.0);
        }
        for d in cases {
            for precision in [1usize, 5, 14, 17] {
                let mut buf = [0u8; 64];
                // SAFETY: the buffer is 64 bytes, enough for any %.17g; the format takes an
                // int precision and a double, which we pass.
                let len = unsafe {
                    libc::snprintf(
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        c"%.*g".as_ptr(),
                        precision as libc::c_int,
                        d,
                    )
                };
                let c = std::str::from_utf8(&buf[..len as usize]).unwrap();
                assert_eq!(format_g(d, precision), c, "{d:e} at precision {precision}");
            }
        }
    }
}
