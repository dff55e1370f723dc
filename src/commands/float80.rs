//! x87 80-bit extended floats for INCRBYFLOAT, so results match redis-server byte for byte.
//!
//! Redis parses INCRBYFLOAT's operands with `strtold`, adds them as `long double` (80-bit on
//! x86-64) and prints the sum with `%.17Lf`, trailing zeros removed. Doing the same in `f64`
//! would print `0.30000000000000004` where Redis prints `0.3`. Parsing and addition use
//! rustc_apfloat's correctly rounded `X87DoubleExtended`; printing is exact decimal
//! expansion of the binary value, rounded half-to-even at 17 decimals like glibc's printf.

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::Float;

#[derive(Debug, Clone, Copy)]
pub struct Float80(X87DoubleExtended);

impl Float80 {
    pub const ZERO: Float80 = Float80(X87DoubleExtended::ZERO);

    /// Parses what `strtold` accepts in Redis's `string2ld`: a decimal number with optional
    /// sign, fraction and exponent, or `inf`/`infinity`; no spaces, no NaN. The value may be
    /// beyond `f64`'s range (`1e400` is a finite long double). A hexadecimal number
    /// (`0x1.8p3`) is read as a double, then widened (exactly).
    pub fn parse(text: &[u8]) -> Option<Float80> {
        let s = std::str::from_utf8(text).ok()?;
        let lower = s.to_ascii_lowercase();
        let unsigned = lower.trim_start_matches(['+', '-']);
        if lower.len() - unsigned.len() > 1 {
            return None;
        }
        if unsigned == "inf" || unsigned == "infinity" {
            let inf = X87DoubleExtended::INFINITY;
            return Some(Float80(if lower.starts_with('-') { -inf } else { inf }));
        }
        if unsigned.starts_with("0x") {
            return Self::from_hexadecimal(text);
        }
        if !is_decimal_number(unsigned) {
            return None;
        }
        let parsed = s
            .strip_prefix('+')
            .unwrap_or(s)
            .parse::<X87DoubleExtended>()
            .ok()?;
        // strtold's ERANGE: overflow to infinity, or underflow of a non-zero number to zero.
        let mantissa = unsigned.split('e').next().unwrap_or("");
        let nonzero_digits = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
        if parsed.is_infinite() || (parsed.is_zero() && nonzero_digits) {
            return None;
        }
        Some(Float80(parsed))
    }

    fn from_hexadecimal(text: &[u8]) -> Option<Float80> {
        use rustc_apfloat::ieee::Double;
        use rustc_apfloat::FloatConvert;
        let (value, out_of_range) = super::strtod::strtod(text)?;
        if out_of_range && (value.is_infinite() || value == 0.0) {
            return None;
        }
        let mut loses_info = false;
        let wide: X87DoubleExtended = Double::from_bits(u128::from(value.to_bits()))
            .convert(&mut loses_info)
            .value;
        Some(Float80(wide))
    }

    pub fn add(&self, other: &Float80) -> Float80 {
        Float80((self.0 + other.0).value)
    }

    pub fn is_finite(&self) -> bool {
        self.0.is_finite()
    }

    /// `%.17Lf` with trailing zeros (and a trailing dot) removed, `-0` printed as `0`.
    pub fn to_human_string(&self) -> String {
        let bits = self.0.to_bits();
        let negative = (bits >> 79) & 1 == 1;
        let exponent = ((bits >> 64) & 0x7fff) as i64;
        let mantissa = bits as u64;
        // value = mantissa * 2^shift (denormals have exponent 0 and the same scale as 1).
        let shift = exponent.max(1) - 16383 - 63;
        let digits = scaled_decimal_digits(mantissa, shift);
        let (int_part, frac_part) = digits.split_at(digits.len() - 17);
        let mut text = String::new();
        if negative {
            text.push('-');
        }
        text.push_str(if int_part.is_empty() { "0" } else { int_part });
        text.push('.');
        text.push_str(frac_part);
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        if trimmed == "-0" {
            "0".into()
        } else {
            trimmed.to_string()
        }
    }
}

/// `digits [. digits] [e [+-] digits]`, with at least one digit before the exponent.
fn is_decimal_number(s: &str) -> bool {
    let (mantissa, exponent) = match s.find('e') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Decimal digits of round_half_even(mantissa * 2^shift * 10^17), at least 18 of them.
fn scaled_decimal_digits(mantissa: u64, shift: i64) -> String {
    const SCALE: u128 = 100_000_000_000_000_000; // 10^17
    let digits = if shift >= 0 {
        let mut big = BigDecimal::from_u128(u128::from(mantissa));
        for _ in 0..shift {
            big.double();
        }
        let mut s = big.to_string();
        s.push_str(&"0".repeat(17));
        s
    } else {
        let x = u128::from(mantissa) * SCALE;
        let down = (-shift) as u32;
        let (q, rem, half) = if down >= 128 {
            (0u128, x, None)
        } else {
            (
                x >> down,
                x & ((1u128 << down) - 1),
                Some(1u128 << (down - 1)),
            )
        };
        let round_up = match half {
            Some(half) => rem > half || (rem == half && q & 1 == 1),
            None => false,
        };
        (q + u128::from(round_up)).to_string()
    };
    format!("{:0>18}", digits)
}

/// A non-negative integer in base 10^9 limbs, little-endian; just enough for doubling.
struct BigDecimal(Vec<u32>);

impl BigDecimal {
    const BASE: u64 = 1_000_000_000;

    fn from_u128(mut v: u128) -> BigDecimal {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push((v % u128::from(Self::BASE)) as u32);
            v /= u128::from(Self::BASE);
        }
        BigDecimal(limbs)
    }

    fn double(&mut self) {
        let mut carry = 0u64;
        for limb in self.0.iter_mut() {
            let v = u64::from(*limb) * 2 + carry;
            *limb = (v % Self::BASE) as u32;
            carry = v / Self::BASE;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
}

impl std::fmt::Display for BigDecimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut limbs = self.0.iter().rev();
        match limbs.next() {
            None => write!(f, "0"),
            Some(first) => {
                write!(f, "{first}")?;
                for limb in limbs {
                    write!(f, "{limb:09}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Float80;

    fn incr(a: &str, b: &str) -> String {
        let a = Float80::parse(a.as_bytes()).unwrap();
        let b = Float80::parse(b.as_bytes()).unwrap();
        a.add(&b).to_human_string()
    }

    #[test]
    fn matches_redis_long_double_output() {
        // Values checked against redis-server 7.0 on x86-64.
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("0", "3.0e3"), "3000");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
        assert_eq!(incr("1", "-1"), "0");
        assert_eq!(incr("-0", "0"), "0");
        assert_eq!(incr("0", "-1.5"), "-1.5");
        // Hexadecimal, as strtold reads it.
        assert_eq!(incr("0x10", "0x1.8p1"), "19");
        assert_eq!(incr("-0X.8", "0"), "-0.5");
        assert!(Float80::parse(b"0x").is_none());
        assert!(Float80::parse(b"0x1p99999").is_none());
    }
}
