//! `cmsgpack`: lua-cmsgpack 0.4.0's MessagePack encoder and decoder as redis-server
//! bundles them — the smallest integer encoding for integral numbers, float32 where it is
//! exact, tables as arrays when their keys are exactly 1..n, nesting cut to nil past 16
//! levels, several values packed one after another, and `unpack_one` / `unpack_limit`
//! with their offsets and error texts.

use mlua::{Lua, Table, Value, Variadic};

use super::{arg_error, error_here, string_arg, type_name};

/// Tables nested deeper are packed as nil (lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`).
const MAX_NESTING: usize = 16;
/// Arrays and maps nested deeper refuse to unpack (redis-server runs out of Lua stack).
const MAX_UNPACK_DEPTH: usize = 1000;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(error_here(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for value in args.iter() {
                pack(value, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = string_arg(lua, args.first(), 1, "unpack")?;
            unpack(lua, &data, 0, 0)
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = string_arg(lua, args.first(), 1, "unpack_one")?;
            let offset = integer_arg(lua, &args, 2, "unpack_one")?.unwrap_or(0);
            unpack(lua, &data, 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = string_arg(lua, args.first(), 1, "unpack_limit")?;
            let Some(limit) = integer_arg(lua, &args, 2, "unpack_limit")? else {
                let got = type_name(args.get(1));
                return Err(arg_error(lua, 2, "unpack_limit", "number", got));
            };
            let offset = integer_arg(lua, &args, 3, "unpack_limit")?.unwrap_or(0);
            unpack(lua, &data, limit, offset)
        })?,
    )?;
    Ok(t)
}

/// Argument `at` (1-based) as an integer, none when absent.
fn integer_arg(lua: &Lua, args: &[Value], at: usize, function: &str) -> mlua::Result<Option<i64>> {
    match args.get(at - 1) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Integer(i)) => Ok(Some(*i)),
        Some(Value::Number(n)) => Ok(Some(*n as i64)),
        other => Err(arg_error(lua, at, function, "number", type_name(other))),
    }
}

fn pack(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    if out.len() > super::MAX_OUTPUT {
        return Err(super::too_big());
    }
    match value {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(*i, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => pack_bytes(&s.as_bytes(), out),
        Value::Table(t) if level < MAX_NESTING => pack_table(t, level, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    let integral = n.is_finite() && (n as i64) as f64 == n && n < 9.223_372_036_854_776e18;
    if integral {
        pack_int(n as i64, out);
    } else if f64::from(n as f32) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A container header: the fix form under `fix_limit`, else the 16- or 32-bit one.
fn pack_header(len: usize, fix: u8, fix_limit: usize, wide: u8, out: &mut Vec<u8>) {
    if len < fix_limit {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack_table(t: &Table, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    // An array when its keys are exactly the integers 1..count.
    let mut count = 0usize;
    let mut max = 0i64;
    let mut array = true;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        count += 1;
        let index = match k {
            Value::Integer(i) => Some(i),
            Value::Number(n) if n.fract() == 0.0 => Some(n as i64),
            _ => None,
        };
        match index {
            Some(i) if i > 0 && array => max = max.max(i),
            _ => array = false,
        }
    }
    if array && max as usize == count {
        pack_header(count, 0x90, 16, 0xdc, out);
        for i in 1..=count {
            pack(&t.raw_get::<Value>(i)?, level + 1, out)?;
        }
    } else {
        pack_header(count, 0x80, 16, 0xde, out);
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair?;
            pack(&k, level + 1, out)?;
            pack(&v, level + 1, out)?;
        }
    }
    Ok(())
}

/// lua-cmsgpack's `mp_unpack_full`: up to `limit` values from byte `offset` (all of them
/// when both are 0, and then without the next offset in front).
fn unpack(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<mlua::MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // redis-server's text names the input's length as the limit.
        return Err(error_here(
            lua,
            &format!(
                "Invalid request to unpack with offset of {offset} and limit of {}.",
                data.len()
            ),
        ));
    }
    if offset as usize > data.len() {
        return Err(error_here(
            lua,
            &format!(
                "Start offset {offset} greater than input length {}.",
                data.len()
            ),
        ));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut cursor = Cursor {
        data,
        at: offset as usize,
    };
    let mut values = Vec::new();
    while cursor.at < data.len() && (values.len() as i64) < limit {
        match cursor.value(lua, 0) {
            Ok(v) => values.push(v),
            Err(Bad::Missing) => return Err(error_here(lua, "Missing bytes in input.")),
            Err(Bad::Format) => return Err(error_here(lua, "Bad data format in input.")),
            Err(Bad::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if cursor.at == data.len() {
            -1
        } else {
            cursor.at as i64
        };
        values.insert(0, Value::Integer(next));
    }
    Ok(values.into_iter().collect())
}

enum Bad {
    Missing,
    Format,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Bad {
    fn from(e: mlua::Error) -> Bad {
        Bad::Lua(e)
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Bad> {
        let bytes = self.data.get(self.at..self.at + n).ok_or(Bad::Missing)?;
        self.at += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Bad> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, Bad> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            0x00..=0x7f => Value::Integer(i64::from(tag)),
            0x80..=0x8f => self.map(lua, usize::from(tag & 0x0f), depth)?,
            0x90..=0x9f => self.array(lua, usize::from(tag & 0x0f), depth)?,
            0xa0..=0xbf => self.string(lua, usize::from(tag & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xca => {
                let bits = self.uint(4)? as u32;
                Value::Number(f64::from(f32::from_bits(bits)))
            }
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            0xcf => {
                let n = self.uint(8)?;
                match i64::try_from(n) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => Value::Number(n as f64),
                }
            }
            0xd0 => Value::Integer(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Value::Integer(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Value::Integer(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Value::Integer(self.uint(8)? as i64),
            0xd9 => {
                let len = self.uint(1)? as usize;
                self.string(lua, len)?
            }
            0xda => {
                let len = self.uint(2)? as usize;
                self.string(lua, len)?
            }
            0xdb => {
                let len = self.uint(4)? as usize;
                self.string(lua, len)?
            }
            0xdc => {
                let len = self.uint(2)? as usize;
                self.array(lua, len, depth)?
            }
            0xdd => {
                let len = self.uint(4)? as usize;
                self.array(lua, len, depth)?
            }
            0xde => {
                let len = self.uint(2)? as usize;
                self.map(lua, len, depth)?
            }
            0xdf => {
                let len = self.uint(4)? as usize;
                self.map(lua, len, depth)?
            }
            0xe0..=0xff => Value::Integer(i64::from(tag as i8)),
            _ => return Err(Bad::Format),
        })
    }

    fn string(&mut self, lua: &Lua, len: usize) -> Result<Value, Bad> {
        let bytes = self.take(len)?;
        Ok(Value::String(lua.create_string(bytes)?))
    }

    fn nested(lua: &Lua, depth: usize) -> Result<Table, Bad> {
        if depth >= MAX_UNPACK_DEPTH {
            return Err(Bad::Lua(error_here(
                lua,
                "stack overflow (in function mp_decode_to_lua_type)",
            )));
        }
        Ok(lua.create_table()?)
    }

    fn array(&mut self, lua: &Lua, len: usize, depth: usize) -> Result<Value, Bad> {
        let t = Self::nested(lua, depth)?;
        for i in 1..=len {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, len: usize, depth: usize) -> Result<Value, Bad> {
        let t = Self::nested(lua, depth)?;
        for _ in 0..len {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            t.raw_set(k, v)?;
        }
        Ok(Value::Table(t))
    }
}
