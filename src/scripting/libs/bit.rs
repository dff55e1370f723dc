//! `bit`: LuaBitOp 1.0's operations on 32-bit integers, as redis-server bundles them.
//! Numbers become 32 bits the way LuaBitOp makes them (the low word of `n + 2^52 + 2^51`:
//! rounded to nearest, then taken modulo 2^32); results are signed 32-bit numbers.

use mlua::{Lua, Table, Value, Variadic};

use super::{arg_error, type_name};

/// Argument `at` (1-based) of the call to `name` as 32 bits.
fn bits(lua: &Lua, args: &[Value], at: usize, name: &str) -> mlua::Result<u32> {
    let value = args.get(at - 1);
    let number = match value {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(Value::String(s)) => s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()),
        _ => None,
    };
    let Some(number) = number else {
        return Err(arg_error(lua, at, name, "number", type_name(value)));
    };
    Ok((number + 6_755_399_441_055_744.0).to_bits() as u32)
}

fn signed(b: u32) -> f64 {
    f64::from(b as i32)
}

/// Registers a function of one argument.
fn unary(lua: &Lua, t: &Table, name: &'static str, op: fn(u32) -> u32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        Ok(signed(op(bits(lua, &args, 1, name)?)))
    })?;
    t.set(name, f)
}

/// Registers a function folding any number (at least one) of arguments.
fn fold(lua: &Lua, t: &Table, name: &'static str, op: fn(u32, u32) -> u32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        let mut acc = bits(lua, &args, 1, name)?;
        for at in 2..=args.len() {
            acc = op(acc, bits(lua, &args, at, name)?);
        }
        Ok(signed(acc))
    })?;
    t.set(name, f)
}

/// Registers a shift or rotation: the count is taken modulo 32.
fn shift(lua: &Lua, t: &Table, name: &'static str, op: fn(u32, u32) -> u32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        let value = bits(lua, &args, 1, name)?;
        let count = bits(lua, &args, 2, name)? & 31;
        Ok(signed(op(value, count)))
    })?;
    t.set(name, f)
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    unary(lua, &t, "tobit", |b| b)?;
    unary(lua, &t, "bnot", |b| !b)?;
    unary(lua, &t, "bswap", u32::swap_bytes)?;
    fold(lua, &t, "band", |a, b| a & b)?;
    fold(lua, &t, "bor", |a, b| a | b)?;
    fold(lua, &t, "bxor", |a, b| a ^ b)?;
    shift(lua, &t, "lshift", |v, n| v << n)?;
    shift(lua, &t, "rshift", |v, n| v >> n)?;
    shift(lua, &t, "arshift", |v, n| ((v as i32) >> n) as u32)?;
    shift(lua, &t, "rol", u32::rotate_left)?;
    shift(lua, &t, "ror", u32::rotate_right)?;
    let tohex = lua.create_function(|lua, args: Variadic<Value>| {
        let value = bits(lua, &args, 1, "tohex")?;
        let width = match args.get(1) {
            None | Some(Value::Nil) => 8,
            Some(_) => bits(lua, &args, 2, "tohex")? as i32,
        };
        let upper = width < 0;
        let digits = width.unsigned_abs().min(8) as usize;
        let text = if upper {
            format!("{value:08X}")
        } else {
            format!("{value:08x}")
        };
        Ok(text[8 - digits..].to_string())
    })?;
    t.set("tohex", tohex)?;
    Ok(t)
}
