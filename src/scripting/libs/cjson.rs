//! `cjson`: lua-cjson 2.1's JSON encoder and decoder as redis-server bundles them — its
//! number format (`%.14g`), its escapes (`\/`, `\u001f`), its array rule (keys 1..n, and an
//! "excessively sparse" one refused), `cjson.null`, its nesting limits and settings, and
//! its error texts.

use std::sync::Arc;

use mlua::{LightUserData, Lua, Table, Value, Variadic};
use parking_lot::Mutex;

use super::{arg_error, error_here, type_name};
use crate::protocol::reply::format_g;

/// lua-cjson's settings (its `encode_*` / `decode_*` functions change them).
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: usize,
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    /// 0: refused, 1: written as `inf`/`nan`, 2: written as `null`.
    encode_invalid: u8,
    decode_invalid: bool,
    keep_buffer: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_invalid: 0,
            decode_invalid: true,
            keep_buffer: true,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// A new `cjson` module table with its own settings (`cjson.new` makes another).
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let config: Shared = Arc::default();
    let t = lua.create_table()?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    t.set("null", null())?;
    let c = config.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return Err(arg_error_text(lua, "encode", "expected 1 argument"));
            }
            let cfg = *c.lock();
            let mut out = Vec::new();
            encode(lua, &cfg, &args[0], 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return Err(arg_error_text(lua, "decode", "expected 1 argument"));
            }
            let text = super::string_arg(lua, args.first(), 1, "decode")?;
            let cfg = *c.lock();
            Decoder::new(lua, &cfg, &text).decode()
        })?,
    )?;
    let c = config.clone();
    t.set(
        "encode_max_depth",
        lua.create_function(move |lua, depth: Option<Value>| {
            let mut cfg = c.lock();
            if let Some(d) = integer_option(lua, "encode_max_depth", depth, 1, i32::MAX as i64)? {
                cfg.encode_max_depth = d;
            }
            Ok(cfg.encode_max_depth)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "decode_max_depth",
        lua.create_function(move |lua, depth: Option<Value>| {
            let mut cfg = c.lock();
            if let Some(d) = integer_option(lua, "decode_max_depth", depth, 1, i32::MAX as i64)? {
                cfg.decode_max_depth = d;
            }
            Ok(cfg.decode_max_depth)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "encode_number_precision",
        lua.create_function(move |lua, precision: Option<Value>| {
            let mut cfg = c.lock();
            let name = "encode_number_precision";
            if let Some(p) = integer_option(lua, name, precision, 1, 14)? {
                cfg.precision = p as usize;
            }
            Ok(cfg.precision as i64)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "encode_keep_buffer",
        lua.create_function(move |lua, keep: Option<Value>| {
            let mut cfg = c.lock();
            if let Some(k) = bool_option(lua, "encode_keep_buffer", keep, false)? {
                cfg.keep_buffer = k == 1;
            }
            Ok(cfg.keep_buffer)
        })?,
    )?;
    let c = config.clone();
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, setting: Option<Value>| {
            let mut cfg = c.lock();
            if let Some(v) = bool_option(lua, "encode_invalid_numbers", setting, true)? {
                cfg.encode_invalid = v;
            }
            Ok(match cfg.encode_invalid {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    let c = config.clone();
    t.set(
        "decode_invalid_numbers",
        lua.create_function(move |lua, setting: Option<Value>| {
            let mut cfg = c.lock();
            if let Some(v) = bool_option(lua, "decode_invalid_numbers", setting, false)? {
                cfg.decode_invalid = v == 1;
            }
            Ok(cfg.decode_invalid)
        })?,
    )?;
    let c = config;
    t.set(
        "encode_sparse_array",
        lua.create_function(
            move |lua, (convert, ratio, safe): (Option<Value>, Option<Value>, Option<Value>)| {
                let mut cfg = c.lock();
                let name = "encode_sparse_array";
                if let Some(v) = bool_option(lua, name, convert, false)? {
                    cfg.sparse_convert = v == 1;
                }
                if let Some(r) = integer_option(lua, name, ratio, 0, i32::MAX as i64)? {
                    cfg.sparse_ratio = r;
                }
                if let Some(s) = integer_option(lua, name, safe, 0, i32::MAX as i64)? {
                    cfg.sparse_safe = s;
                }
                Ok((cfg.sparse_convert, cfg.sparse_ratio, cfg.sparse_safe))
            },
        )?,
    )?;
    t.set("new", lua.create_function(|lua, ()| table(lua))?)?;
    Ok(t)
}

fn arg_error_text(lua: &Lua, function: &str, text: &str) -> mlua::Error {
    error_here(lua, &format!("bad argument #1 to '{function}' ({text})"))
}

/// An integer setting between `min` and `max`, or none when not given.
fn integer_option(
    lua: &Lua,
    function: &str,
    value: Option<Value>,
    min: i64,
    max: i64,
) -> mlua::Result<Option<i64>> {
    let n = match value {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::Integer(i)) => i as f64,
        Some(Value::Number(n)) => n,
        Some(other) => {
            return Err(arg_error(
                lua,
                1,
                function,
                "number",
                type_name(Some(&other)),
            ));
        }
    };
    let n = n as i64;
    if n < min || n > max {
        let text = format!("expected integer between {min} and {max}");
        return Err(arg_error_text(lua, function, &text));
    }
    Ok(Some(n))
}

/// An on/off setting (a boolean, `"on"`, `"off"`, and with `allow_null` also `"null"`,
/// which is 2), or none when not given.
fn bool_option(
    lua: &Lua,
    function: &str,
    value: Option<Value>,
    allow_null: bool,
) -> mlua::Result<Option<u8>> {
    let choice = match &value {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::Boolean(b)) => Some(u8::from(*b)),
        Some(Value::String(s)) => match &s.as_bytes()[..] {
            b"off" => Some(0),
            b"on" => Some(1),
            b"null" if allow_null => Some(2),
            _ => None,
        },
        _ => None,
    };
    match choice {
        Some(c) => Ok(Some(c)),
        None => {
            let shown = match &value {
                Some(Value::String(s)) => s.to_string_lossy(),
                other => type_name(other.as_ref()).to_string(),
            };
            let text = format!("invalid option '{shown}'");
            Err(arg_error_text(lua, function, &text))
        }
    }
}

/// Why a value cannot be encoded: `Cannot serialise <type>: <reason>`.
fn cannot(lua: &Lua, value: &Value, reason: &str) -> mlua::Error {
    let kind = type_name(Some(value));
    error_here(lua, &format!("Cannot serialise {kind}: {reason}"))
}

fn encode(
    lua: &Lua,
    cfg: &Config,
    value: &Value,
    depth: i64,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    if out.len() > super::MAX_OUTPUT {
        return Err(super::too_big());
    }
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(lua, cfg, value, *i as f64, out)?,
        Value::Number(n) => encode_number(lua, cfg, value, *n, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(error_here(
                    lua,
                    &format!("Cannot serialise, excessive nesting ({depth})"),
                ));
            }
            match array_length(lua, cfg, value, t)? {
                // Every element writes two bytes at least (itself and a comma).
                Some(len) if len > super::MAX_OUTPUT / 2 => return Err(super::too_big()),
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(lua, cfg, &t.raw_get::<Value>(i)?, depth, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, v) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(i) => {
                                out.push(b'"');
                                out.extend_from_slice(format_g(*i as f64, 14).as_bytes());
                                out.push(b'"');
                            }
                            Value::Number(n) => {
                                out.push(b'"');
                                out.extend_from_slice(format_g(*n, 14).as_bytes());
                                out.push(b'"');
                            }
                            other => {
                                return Err(cannot(
                                    lua,
                                    other,
                                    "table key must be a number or string",
                                ))
                            }
                        }
                        out.push(b':');
                        encode(lua, cfg, &v, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(cannot(lua, other, "type not supported")),
    }
    Ok(())
}

fn encode_number(
    lua: &Lua,
    cfg: &Config,
    value: &Value,
    n: f64,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    if !n.is_finite() {
        match cfg.encode_invalid {
            0 => return Err(cannot(lua, value, "must not be NaN or Inf")),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    out.extend_from_slice(format_g(n, cfg.precision).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The table's length as an array (its keys are exactly integers from 1), or none for an
/// object. An array whose largest key is over `sparse_ratio` times its count and over
/// `sparse_safe` is refused (or, with `sparse_convert`, encoded as an object).
fn array_length(lua: &Lua, cfg: &Config, value: &Value, t: &Table) -> mlua::Result<Option<usize>> {
    let mut max = 0f64;
    let mut items = 0i64;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if k.floor() != k || k < 1.0 {
            return Ok(None);
        }
        max = max.max(k);
        items += 1;
    }
    if cfg.sparse_ratio > 0
        && max > (items * cfg.sparse_ratio) as f64
        && max > cfg.sparse_safe as f64
    {
        if !cfg.sparse_convert {
            return Err(cannot(lua, value, "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max as usize))
}

/// A token of the input and where it starts (0-based).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    /// How lua-cjson names it in "found ..." (an error token by its message).
    fn found(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(message) => message,
        }
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    cfg: &'a Config,
    /// The input up to its first NUL byte (lua-cjson reads a C string).
    text: &'a [u8],
    at: usize,
    depth: i64,
}

impl<'a> Decoder<'a> {
    fn new(lua: &'a Lua, cfg: &'a Config, text: &'a [u8]) -> Decoder<'a> {
        let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        Decoder {
            lua,
            cfg,
            text: &text[..end],
            at: 0,
            depth: 0,
        }
    }

    fn decode(mut self) -> mlua::Result<Value> {
        let (token, at) = self.next();
        let value = self.value(token, at)?;
        let (token, at) = self.next();
        if token != Token::End {
            return Err(self.expected("the end", &token, at));
        }
        Ok(value)
    }

    fn expected(&self, what: &str, token: &Token, at: usize) -> mlua::Error {
        let found = token.found();
        let at = at + 1;
        error_here(
            self.lua,
            &format!("Expected {what} but found {found} at character {at}"),
        )
    }

    fn value(&mut self, token: Token, at: usize) -> mlua::Result<Value> {
        Ok(match token {
            Token::Str(s) => Value::String(self.lua.create_string(&s)?),
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => null(),
            Token::ObjBegin => self.object(at)?,
            Token::ArrBegin => self.array(at)?,
            other => return Err(self.expected("value", &other, at)),
        })
    }

    fn descend(&mut self, at: usize) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth {
            let text = format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                at + 1
            );
            return Err(error_here(self.lua, &text));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> mlua::Result<Value> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut token, mut at) = self.next();
        if token == Token::ObjEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            let Token::Str(key) = token else {
                return Err(self.expected("object key string", &token, at));
            };
            let (colon, colon_at) = self.next();
            if colon != Token::Colon {
                return Err(self.expected("colon", &colon, colon_at));
            }
            let (value, value_at) = self.next();
            let value = self.value(value, value_at)?;
            t.raw_set(self.lua.create_string(&key)?, value)?;
            let (sep, sep_at) = self.next();
            match sep {
                Token::ObjEnd => break,
                Token::Comma => {}
                other => return Err(self.expected("comma or object end", &other, sep_at)),
            }
            (token, at) = self.next();
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> mlua::Result<Value> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut token, mut at) = self.next();
        if token == Token::ArrEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let value = self.value(token, at)?;
            t.raw_set(i, value)?;
            i += 1;
            let (sep, sep_at) = self.next();
            match sep {
                Token::ArrEnd => break,
                Token::Comma => {}
                other => return Err(self.expected("comma or array end", &other, sep_at)),
            }
            (token, at) = self.next();
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    /// The next token and where it starts (where an error token was found).
    fn next(&mut self) -> (Token, usize) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
        let start = self.at;
        let Some(&b) = self.text.get(self.at) else {
            return (Token::End, start);
        };
        let single = match b {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b':' => Some(Token::Colon),
            b',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(token) = single {
            self.at += 1;
            return (token, start);
        }
        let rest = &self.text[self.at..];
        if b == b'"' {
            return self.string();
        }
        if b == b'-' || b.is_ascii_digit() {
            return (self.number(), start);
        }
        for (word, token) in [
            (&b"true"[..], Token::Boolean(true)),
            (b"false", Token::Boolean(false)),
            (b"null", Token::Null),
        ] {
            if rest.starts_with(word) {
                self.at += word.len();
                return (token, start);
            }
        }
        let inf_or_nan = rest.len() >= 3
            && (rest[..3].eq_ignore_ascii_case(b"inf") || rest[..3].eq_ignore_ascii_case(b"nan"));
        if self.cfg.decode_invalid && inf_or_nan {
            return (self.number(), start);
        }
        (Token::Error("invalid token"), start)
    }

    /// A number as C's strtod reads the longest one at the start of the rest.
    fn number(&mut self) -> Token {
        let rest = &self.text[self.at..];
        let (negative, body) = match rest.first() {
            Some(b'-') => (true, &rest[1..]),
            _ => (false, rest),
        };
        let sign = usize::from(negative);
        if body.len() >= 3 && body[..3].eq_ignore_ascii_case(b"nan") {
            self.at += sign + 3;
            return Token::Number(f64::NAN);
        }
        let run = body
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
            .count();
        for len in (1..=run).rev() {
            if let Some((n, _)) = crate::commands::strtod::strtod(&body[..len]) {
                self.at += sign + len;
                return Token::Number(if negative { -n } else { n });
            }
        }
        Token::Error("invalid number")
    }

    fn string(&mut self) -> (Token, usize) {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.text.get(self.at) else {
                return (Token::Error("unexpected end of string"), self.at);
            };
            match b {
                b'"' => {
                    self.at += 1;
                    return (Token::Str(out), start);
                }
                b'\\' => {
                    let escaped = match self.text.get(self.at + 1) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 0x08,
                        Some(b'f') => 0x0c,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => match self.unicode_escape() {
                            Some((c, len)) => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                                self.at += len;
                                continue;
                            }
                            None => return (Token::Error("invalid unicode escape code"), self.at),
                        },
                        _ => return (Token::Error("invalid escape code"), self.at),
                    };
                    out.push(escaped);
                    self.at += 2;
                }
                _ => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
    }

    /// `\uXXXX` (a surrogate pair: two of them) at the read position: the character and
    /// the escape's length.
    fn unicode_escape(&self) -> Option<(char, usize)> {
        let hex = |at: usize| -> Option<u32> {
            let digits = self.text.get(at..at + 4)?;
            if !digits.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        };
        let first = hex(self.at + 2)?;
        if (0xdc00..0xe000).contains(&first) {
            return None;
        }
        if (0xd800..0xdc00).contains(&first) {
            if self.text.get(self.at + 6..self.at + 8)? != b"\\u" {
                return None;
            }
            let low = hex(self.at + 8)?;
            if !(0xdc00..0xe000).contains(&low) {
                return None;
            }
            let code = 0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00);
            return Some((char::from_u32(code)?, 12));
        }
        Some((char::from_u32(first)?, 6))
    }
}
