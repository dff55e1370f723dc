//! C's `strtod` over a whole argument, as Redis reads floats with it: an optional sign,
//! then a decimal (`1.5`, `.5`, `5.`, `1e-3`) or hexadecimal (`0x10`, `0x1.8p3`) number,
//! or `inf` / `infinity`, with nothing after it. `strtod`'s `ERANGE` (a result too large
//! for a double, or a nonzero number that rounds to zero or below the normal range) is
//! reported beside the value: some of Redis's readers refuse it and some do not.

/// The number `text` spells, and whether `strtod` would set `ERANGE` for it; `None` when
/// `text` is not entirely a number (leading whitespace included) or is NaN.
pub fn strtod(text: &[u8]) -> Option<(f64, bool)> {
    let (negative, body) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let hex = body.len() > 1 && body[0] == b'0' && (body[1] | 0x20) == b'x';
    let value = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some((
            if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            false,
        ));
    } else if hex {
        hexadecimal(&body[2..])?
    } else {
        decimal(body)?
    };
    let nonzero_digits = body
        .iter()
        .skip(2 * usize::from(hex))
        .take_while(|b| (*b | 0x20) != if hex { b'p' } else { b'e' })
        .any(|b| b.is_ascii_hexdigit() && *b != b'0');
    let out_of_range = value.is_infinite() || (value.abs() < f64::MIN_POSITIVE && nonzero_digits);
    Some((if negative { -value } else { value }, out_of_range))
}

/// Digits with at most one point (at least one digit), then an optional exponent.
fn decimal(body: &[u8]) -> Option<f64> {
    split(body, b'e', u8::is_ascii_digit)?;
    // Checked to be plain ASCII digits, a point and an exponent: Rust reads these as C does.
    std::str::from_utf8(body).ok()?.parse::<f64>().ok()
}

/// Hex digits with at most one point (at least one digit), then an optional binary
/// exponent (`p`, a power of two).
fn hexadecimal(body: &[u8]) -> Option<f64> {
    let (mantissa, exponent) = split(body, b'p', u8::is_ascii_hexdigit)?;
    // The first 15 significant hex digits (60 bits) are kept; later ones only move the
    // binary point, which is below a double's precision anyway.
    let mut bits: u64 = 0;
    let mut kept = 0;
    let mut shift: i64 = 0;
    let mut after_point = false;
    for &b in mantissa {
        if b == b'.' {
            after_point = true;
            continue;
        }
        let digit = (b as char).to_digit(16)? as u64;
        if kept < 15 && (bits != 0 || digit != 0) {
            bits = bits << 4 | digit;
            kept += 1;
            if after_point {
                shift -= 4;
            }
        } else if bits == 0 && after_point {
            shift -= 4; // a leading zero after the point
        } else if !after_point && bits != 0 {
            shift += 4; // an integer digit past the kept ones
        }
    }
    let power: i64 = match exponent.get(1..) {
        Some(digits) => std::str::from_utf8(digits).ok()?.parse::<i64>().unwrap_or(
            if digits.starts_with(b"-") {
                -100_000
            } else {
                100_000
            },
        ),
        None => 0,
    };
    Some(scale(
        bits as f64,
        (shift + power).clamp(-100_000, 100_000) as i32,
    ))
}

/// `value` × 2^`power`, in steps that never overflow or underflow on the way.
fn scale(mut value: f64, mut power: i32) -> f64 {
    while power > 1000 {
        value *= 2f64.powi(1000);
        power -= 1000;
    }
    while power < -1000 {
        value *= 2f64.powi(-1000);
        power += 1000;
    }
    value * 2f64.powi(power)
}

/// `body` as its mantissa (digits with at most one point, at least one digit) and its
/// exponent (empty, or the `mark` letter in either case and a signed decimal), if it is
/// exactly that.
fn split(body: &[u8], mark: u8, digit: fn(&u8) -> bool) -> Option<(&[u8], &[u8])> {
    let end = body
        .iter()
        .position(|b| (b | 0x20) == mark)
        .unwrap_or(body.len());
    let (mantissa, exponent) = body.split_at(end);
    (is_mantissa(mantissa, digit) && is_exponent(exponent)).then_some((mantissa, exponent))
}

fn is_mantissa(text: &[u8], digit: fn(&u8) -> bool) -> bool {
    let points = text.iter().filter(|b| **b == b'.').count();
    let digits = text.iter().filter(|b| digit(b)).count();
    points <= 1 && digits >= 1 && digits + points == text.len()
}

/// Empty, or `e`/`p`, an optional sign and at least one decimal digit.
fn is_exponent(text: &[u8]) -> bool {
    let Some(rest) = text.get(1..) else {
        return true;
    };
    let digits = rest
        .strip_prefix(b"-")
        .or(rest.strip_prefix(b"+"))
        .unwrap_or(rest);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<(f64, bool)> {
        strtod(text.as_bytes())
    }

    #[test]
    fn decimal_forms() {
        assert_eq!(read("1.5"), Some((1.5, false)));
        assert_eq!(read("-.5"), Some((-0.5, false)));
        assert_eq!(read("+5."), Some((5.0, false)));
        assert_eq!(read("1e3"), Some((1000.0, false)));
        assert_eq!(read("1E-3"), Some((0.001, false)));
        assert_eq!(read("0"), Some((0.0, false)));
        assert_eq!(read("-0.000"), Some((-0.0, false)));
        for bad in [
            "", " 1", "1 ", "1e", "1e+", ".", "-", "1.2.3", "1_0", "e5", "1x",
        ] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hexadecimal_forms() {
        assert_eq!(read("0x10"), Some((16.0, false)));
        assert_eq!(read("-0X1.8p3"), Some((-12.0, false)));
        assert_eq!(read("0x.8"), Some((0.5, false)));
        assert_eq!(read("0x1p-2"), Some((0.25, false)));
        assert_eq!(read("0x0.0001p0"), Some((1.0 / 65536.0, false)));
        assert_eq!(read("0xffffffffffffffffff"), Some((2f64.powi(72), false)));
        for bad in ["0x", "0xg", "0x1p", "0x1.2.3", "0x1e"] {
            assert!(
                bad == "0x1e" || read(bad).is_none(),
                "{bad:?} read as {:?}",
                read(bad)
            );
        }
        // "0x1e" is hex 1e (30), not an exponent.
        assert_eq!(read("0x1e"), Some((30.0, false)));
    }

    #[test]
    fn infinities_nan_and_range() {
        assert_eq!(read("inf"), Some((f64::INFINITY, false)));
        assert_eq!(read("-Infinity"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(read("nan"), None);
        assert_eq!(read("1e400"), Some((f64::INFINITY, true)));
        assert_eq!(read("-1e400"), Some((f64::NEG_INFINITY, true)));
        assert_eq!(read("1e-400"), Some((0.0, true)));
        assert_eq!(read("0e-400"), Some((0.0, false)));
        assert!(read("1e-310").is_some_and(|(v, range)| v > 0.0 && range));
        assert_eq!(read("0x1p99999"), Some((f64::INFINITY, true)));
    }
}
