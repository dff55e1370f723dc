//! `struct`: Roberto Ierusalimschy's struct library as redis-server bundles it —
//! `struct.pack`, `struct.unpack` and `struct.size` over a format of `<` `>` (byte order,
//! little-endian by default) `!n` (maximum alignment), `x` (a zero byte), `b B h H l L T`
//! (integers of 1, 2, 8 and 8 bytes as on x86-64), `i[n] I[n]` (n-byte integers, 4 by
//! default), `f d` (floats), `s` (a zero-terminated string) and `c[n]` (n bytes; `c0`: the
//! whole string, or in `unpack` the length read just before).

use mlua::{Lua, Table, Value, Variadic};

use super::{arg_error, error_here, type_name};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Header {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// The format being read.
struct Format<'a> {
    lua: &'a Lua,
    fmt: &'a [u8],
    at: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.fmt.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// A number right after the option, or `default`.
    fn number(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.fmt.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: usize = 0;
        while let Some(d) = self.fmt.get(self.at).filter(|d| d.is_ascii_digit()) {
            let digit = usize::from(d - b'0');
            if n > (i32::MAX as usize) / 10 || n * 10 > i32::MAX as usize - digit {
                return Err(error_here(self.lua, "integral size overflow"));
            }
            n = n * 10 + digit;
            self.at += 1;
        }
        Ok(n)
    }

    /// The size of option `opt` (reading its count, if it takes one).
    fn size(&mut self, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(error_here(
                        self.lua,
                        &format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                size
            }
            _ => 0,
        })
    }

    /// `< > ! ' '`; any other option is refused.
    fn control(&mut self, opt: u8, h: &mut Header, function: &str) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(error_here(
                        self.lua,
                        &format!("alignment {a} is not a power of 2"),
                    ));
                }
                h.align = a;
            }
            other => {
                let text = format!("invalid format option '{}'", other as char);
                return Err(error_here(
                    self.lua,
                    &format!("bad argument #1 to '{function}' ({text})"),
                ));
            }
        }
        Ok(())
    }
}

/// Padding before an item of `size` at offset `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn number_arg(lua: &Lua, args: &[Value], at: usize, function: &str) -> mlua::Result<f64> {
    // `pack` pushes a nil after its arguments: a missing one is "nil" there.
    let missing = (function == "pack").then_some(&Value::Nil);
    match args.get(at - 1).or(missing) {
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| arg_error(lua, at, function, "number", "string")),
        other => Err(arg_error(lua, at, function, "number", type_name(other))),
    }
}

/// Argument `at` as a string; `pack` pushes a nil after its arguments, so a missing one
/// is "nil" there.
fn string_at(lua: &Lua, args: &[Value], at: usize, function: &str) -> mlua::Result<Vec<u8>> {
    let missing = (function == "pack" && at > 1).then_some(&Value::Nil);
    super::string_arg(lua, args.get(at - 1).or(missing), at, function)
}

fn put_integer(n: f64, little: bool, size: usize, out: &mut Vec<u8>) {
    let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_integer(data: &[u8], little: bool, signed: bool) -> f64 {
    let mut value: u64 = 0;
    let mut push = |b: &u8| value = value.checked_shl(8).unwrap_or(0) | u64::from(*b);
    if little {
        data.iter().rev().for_each(&mut push);
    } else {
        data.iter().for_each(&mut push);
    }
    if !signed {
        return value as f64;
    }
    let bits = data.len() * 8;
    if bits > 0 && bits <= 64 {
        let mask = u64::MAX.checked_shl(bits as u32 - 1).unwrap_or(0);
        if value & mask != 0 {
            value |= mask;
        }
    }
    value as i64 as f64
}

fn pack(lua: &Lua, args: &[Value]) -> mlua::Result<mlua::String> {
    let fmt = string_at(lua, args, 1, "pack")?;
    let mut f = Format {
        lua,
        fmt: &fmt,
        at: 0,
    };
    let mut h = Header::default();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg(lua, args, arg, "pack")?;
                arg += 1;
                put_integer(n, h.little, size, &mut out);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = number_arg(lua, args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = number_arg(lua, args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string_at(lua, args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // redis-server's text names the argument after it.
                    return Err(error_here(
                        lua,
                        &format!("bad argument #{arg} to 'pack' (string too short)"),
                    ));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(other, &mut h, "pack")?,
        }
    }
    lua.create_string(&out)
}

fn unpack(lua: &Lua, args: &[Value]) -> mlua::Result<mlua::MultiValue> {
    let fmt = string_at(lua, args, 1, "unpack")?;
    let data = string_at(lua, args, 2, "unpack")?;
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(_) => number_arg(lua, args, 3, "unpack")? as i64,
    };
    let too_short = || error_here(lua, "bad argument #2 to 'unpack' (data string too short)");
    let ld = data.len();
    let mut pos = start.saturating_sub(1).max(0) as usize;
    if start < 1 {
        return Err(error_here(
            lua,
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ));
    }
    let mut f = Format {
        lua,
        fmt: &fmt,
        at: 0,
    };
    let mut h = Header::default();
    let mut values: Vec<Value> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos += to_align(pos, &h, opt, size);
        if size > ld || pos > ld - size {
            return Err(too_short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                values.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let bytes: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or([0; 4]);
                let n = if h.little {
                    f32::from_le_bytes(bytes)
                } else {
                    f32::from_be_bytes(bytes)
                };
                values.push(Value::Number(f64::from(n)));
            }
            b'd' => {
                let bytes: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or([0; 8]);
                let n = if h.little {
                    f64::from_le_bytes(bytes)
                } else {
                    f64::from_be_bytes(bytes)
                };
                values.push(Value::Number(n));
            }
            b'c' => {
                if size == 0 {
                    let previous = match values.last() {
                        Some(Value::Number(n)) => Some(*n),
                        Some(Value::Integer(i)) => Some(*i as f64),
                        Some(Value::String(s)) => {
                            s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok())
                        }
                        _ => None,
                    };
                    let Some(previous) = previous else {
                        return Err(error_here(lua, "format 'c0' needs a previous size"));
                    };
                    values.pop();
                    size = previous as usize;
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                values.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|b| *b == 0) else {
                    return Err(error_here(lua, "unfinished string in data"));
                };
                values.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            other => f.control(other, &mut h, "unpack")?,
        }
        pos += size;
    }
    values.push(Value::Integer(pos as i64 + 1));
    Ok(values.into_iter().collect())
}

fn size(lua: &Lua, args: &[Value]) -> mlua::Result<i64> {
    let fmt = string_at(lua, args, 1, "size")?;
    let mut f = Format {
        lua,
        fmt: &fmt,
        at: 0,
    };
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos += to_align(pos, &h, opt, size);
        let no_fixed_size = match opt {
            b's' => Some("option 's' has no fixed size"),
            b'c' if size == 0 => Some("option 'c0' has no fixed size"),
            _ => None,
        };
        if let Some(text) = no_fixed_size {
            return Err(error_here(
                lua,
                &format!("bad argument #1 to 'size' ({text})"),
            ));
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos as i64)
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| pack(lua, &args))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| unpack(lua, &args))?,
    )?;
    t.set(
        "size",
        lua.create_function(|lua, args: Variadic<Value>| size(lua, &args))?,
    )?;
    Ok(t)
}
