//! Conversions between replies and Lua values, as Redis 7.0's scripting does them, both
//! ways and for both protocols: what `redis.call` hands a script for a command's reply, and
//! what the client receives for the value a script returns. (Checked against redis-server
//! 7.0.15's EVAL; the differential tests come with EVAL itself.)

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::protocol::Reply;

/// A Lua number as the integer reply Redis makes of it: C's `(long long)` cast, which on
/// x86-64 gives `i64::MIN` for NaN and for values out of range (Rust's `as` would saturate).
pub fn number_to_integer(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// The reply a client gets for the value a script returned. `resp3`: the client's protocol
/// (the RESP3 types a table can name — `double`, `map`, `set`, `big_number` — are sent as
/// such only to RESP3 clients; RESP2 clients get Redis's RESP2 shapes of them).
pub fn lua_to_reply(value: &Value, resp3: bool) -> Reply {
    to_reply(value, resp3, 0)
}

/// Tables nested deeper than this in a script's result end in an error reply at that
/// depth (redis-server stops where its Lua stack runs out, a few thousand levels down); a
/// table that contains itself ends there too.
const MAX_DEPTH: usize = 1000;

fn to_reply(value: &Value, resp3: bool, depth: usize) -> Reply {
    if depth >= MAX_DEPTH {
        return Reply::error("ERR reached lua stack limit");
    }
    match value {
        Value::Nil => Reply::Null,
        Value::Boolean(true) => Reply::Integer(1),
        Value::Boolean(false) => Reply::Null,
        Value::Integer(i) => Reply::Integer(*i),
        Value::Number(n) => Reply::Integer(number_to_integer(*n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => table_to_reply(t, resp3, depth + 1),
        _ => Reply::Null,
    }
}

fn string_field(t: &Table, name: &str) -> Option<Bytes> {
    match t.raw_get::<Value>(name).ok()? {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        _ => None,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    if let Some(err) = string_field(t, "err") {
        return Reply::Error(String::from_utf8_lossy(&err).into_owned());
    }
    if let Some(ok) = string_field(t, "ok") {
        return Reply::Status(String::from_utf8_lossy(&ok).into_owned());
    }
    let double = match t.raw_get::<Value>("double") {
        Ok(Value::Number(n)) => Some(n),
        Ok(Value::Integer(i)) => Some(i as f64),
        _ => None,
    };
    if let Some(n) = double {
        return if resp3 {
            Reply::Double(n)
        } else {
            Reply::Bulk(Bytes::from(crate::protocol::reply::format_double(n)))
        };
    }
    if let Some(big) = string_field(t, "big_number") {
        return Reply::BigNumber(String::from_utf8_lossy(&big).into_owned());
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Reply, Reply)> = map
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, v)| (to_reply(&k, resp3, depth), to_reply(&v, resp3, depth)))
            .collect();
        return if resp3 {
            Reply::Map(pairs)
        } else {
            Reply::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
        };
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let members: Vec<Reply> = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, _)| to_reply(&k, resp3, depth))
            .collect();
        return if resp3 {
            Reply::Set(members)
        } else {
            Reply::Array(members)
        };
    }
    // An array: elements 1, 2, … up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth)),
        }
    }
    Reply::Array(items)
}

/// The Lua value `redis.call` returns for a command's reply; `resp3` is the protocol the
/// script chose with `redis.setresp` (RESP2 unless it asked).
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let table_with = |name: &str, value: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(name, value)?;
        Ok(Value::Table(t))
    };
    let string = |b: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    Ok(match reply {
        Reply::Simple(s) => table_with("ok", string(s.as_bytes())?)?,
        Reply::Status(s) => table_with("ok", string(s.as_bytes())?)?,
        Reply::Error(e) => table_with("err", string(e.as_bytes())?)?,
        Reply::Integer(i) => Value::Number(*i as f64),
        Reply::Bulk(b) => string(b)?,
        Reply::Null | Reply::NullArray if resp3 => Value::Nil,
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Pairs(pairs) => {
            // RESP3: [member, score] arrays; RESP2: flat.
            let items: Vec<Reply> = if resp3 {
                pairs
                    .iter()
                    .map(|(a, b)| Reply::Array(vec![a.clone(), b.clone()]))
                    .collect()
            } else {
                pairs
                    .iter()
                    .flat_map(|(a, b)| [a.clone(), b.clone()])
                    .collect()
            };
            array(lua, &items, resp3)?
        }
        Reply::Keyed(pairs) if !resp3 => {
            let items: Vec<Reply> = pairs
                .iter()
                .map(|(a, b)| Reply::Array(vec![a.clone(), b.clone()]))
                .collect();
            array(lua, &items, resp3)?
        }
        Reply::Map(pairs) if !resp3 => {
            let flat: Vec<Reply> = pairs
                .iter()
                .flat_map(|(a, b)| [a.clone(), b.clone()])
                .collect();
            array(lua, &flat, resp3)?
        }
        Reply::Map(pairs) | Reply::Keyed(pairs) => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            table_with("map", Value::Table(t))?
        }
        Reply::Set(items) if resp3 => {
            let t = lua.create_table()?;
            for item in items {
                t.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            table_with("set", Value::Table(t))?
        }
        Reply::Set(items) => array(lua, items, resp3)?,
        Reply::Double(d) if resp3 => table_with("double", Value::Number(*d))?,
        Reply::Double(d) => string(crate::protocol::reply::format_double(*d).as_bytes())?,
        Reply::DoubleText(text) if resp3 => {
            table_with("double", Value::Number(text.parse().unwrap_or(f64::NAN)))?
        }
        Reply::DoubleText(text) => string(text.as_bytes())?,
        Reply::Boolean(b) if resp3 => Value::Boolean(*b),
        Reply::Boolean(b) => Value::Number(f64::from(u8::from(*b))),
        Reply::Verbatim(format, text) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("format", *format)?;
            t.raw_set("string", lua.create_string(text)?)?;
            table_with("verbatim_string", Value::Table(t))?
        }
        Reply::Verbatim(_, text) => string(text)?,
        Reply::BigNumber(digits) if resp3 => table_with("big_number", string(digits.as_bytes())?)?,
        Reply::BigNumber(digits) => string(digits.as_bytes())?,
        // A reply relayed from another node already encoded: not produced for scripts, which
        // run where their keys are.
        Reply::Encoded(_) => Value::Nil,
    })
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, code: &str, resp3: bool) -> Vec<u8> {
        let value: Value = lua.load(code).eval().unwrap();
        let mut out = bytes::BytesMut::new();
        lua_to_reply(&value, resp3).encode(resp3, &mut out);
        out.to_vec()
    }

    /// Script results as redis-server 7.0.15's EVAL answers them (RESP2, then RESP3).
    #[test]
    fn returned_values_become_redis_replies() {
        let lua = Lua::new();
        let cases: &[(&str, &[u8], &[u8])] = &[
            (
                "return {1,2,3,'a',nil,4}",
                b"*4\r\n:1\r\n:2\r\n:3\r\n$1\r\na\r\n",
                b"*4\r\n:1\r\n:2\r\n:3\r\n$1\r\na\r\n",
            ),
            ("return {ok='fine'}", b"+fine\r\n", b"+fine\r\n"),
            (
                "return {err='MYERR bad'}",
                b"-MYERR bad\r\n",
                b"-MYERR bad\r\n",
            ),
            ("return 3.99", b":3\r\n", b":3\r\n"),
            ("return -3.99", b":-3\r\n", b":-3\r\n"),
            ("return true", b":1\r\n", b":1\r\n"),
            ("return false", b"$-1\r\n", b"_\r\n"),
            (
                "return 1e20",
                b":-9223372036854775808\r\n",
                b":-9223372036854775808\r\n",
            ),
            (
                "return 0/0",
                b":-9223372036854775808\r\n",
                b":-9223372036854775808\r\n",
            ),
            ("return {err=42}", b"*0\r\n", b"*0\r\n"),
            ("return {double=3.5}", b"$3\r\n3.5\r\n", b",3.5\r\n"),
            (
                "return {map={a=1}}",
                b"*2\r\n$1\r\na\r\n:1\r\n",
                b"%1\r\n$1\r\na\r\n:1\r\n",
            ),
            (
                "return {set={a=true}}",
                b"*1\r\n$1\r\na\r\n",
                b"~1\r\n$1\r\na\r\n",
            ),
            ("return {big_number='123'}", b"$3\r\n123\r\n", b"(123\r\n"),
            (
                "return {1,{2,{3}},false,true}",
                b"*4\r\n:1\r\n*2\r\n:2\r\n*1\r\n:3\r\n$-1\r\n:1\r\n",
                b"*4\r\n:1\r\n*2\r\n:2\r\n*1\r\n:3\r\n_\r\n:1\r\n",
            ),
        ];
        for (code, resp2, resp3) in cases {
            assert_eq!(eval(&lua, code, false), *resp2, "{code} (RESP2)");
            assert_eq!(eval(&lua, code, true), *resp3, "{code} (RESP3)");
        }
    }

    #[test]
    fn command_replies_become_lua_values() {
        let lua = Lua::new();
        let back = |reply: Reply, resp3: bool| -> Vec<u8> {
            let value = reply_to_lua(&lua, &reply, resp3).unwrap();
            let mut out = bytes::BytesMut::new();
            lua_to_reply(&value, resp3).encode(resp3, &mut out);
            out.to_vec()
        };
        // What a script gets from redis.call and returns unchanged reaches the client as
        // the command's own reply would (RESP2: a null is false, which returns as null).
        assert_eq!(back(Reply::OK, false), b"+OK\r\n");
        assert_eq!(back(Reply::error("ERR no"), false), b"-ERR no\r\n");
        assert_eq!(back(Reply::Integer(-7), false), b":-7\r\n");
        assert_eq!(back(Reply::Null, false), b"$-1\r\n");
        assert_eq!(back(Reply::Null, true), b"_\r\n");
        assert_eq!(
            back(
                Reply::Array(vec![Reply::bulk("a"), Reply::Integer(2)]),
                false
            ),
            b"*2\r\n$1\r\na\r\n:2\r\n"
        );
        assert_eq!(
            back(Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))]), true),
            b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(back(Reply::Double(1.5), true), b",1.5\r\n");
        assert_eq!(back(Reply::Double(1.5), false), b"$3\r\n1.5\r\n");
        assert_eq!(back(Reply::Boolean(true), true), b":1\r\n");
        // RESP2 has no null inside arrays from Lua's side: false stands for it.
        let value = reply_to_lua(&lua, &Reply::Null, false).unwrap();
        assert_eq!(value, Value::Boolean(false));
        assert_eq!(number_to_integer(f64::INFINITY), i64::MIN);
        assert_eq!(number_to_integer(-2.5), -2);
    }
}
