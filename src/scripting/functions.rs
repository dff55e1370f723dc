//! Function libraries (FUNCTION LOAD, FCALL): a library's metadata line
//! (`#!lua name=<library>`), and what loading its code registers through
//! `redis.register_function` — with redis-server 7.0.15's checks and error texts.

use std::cell::RefCell;

use mlua::{Function, Lua, Value, Variadic};

use super::flags::ScriptFlags;

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) \
                        and must be at least one character long";

/// Whether `name` may name a library or a function: letters, digits and `_`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// A library's name and where its code starts (after the metadata line, keeping its line
/// end so error lines count from the top). The error is the reply's text.
pub fn parse_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|b| *b == b'\n').unwrap_or(code.len());
    let mut parts = code[..end]
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let engine = &parts.next().unwrap_or_default()[2..];
    if engine != b"lua" {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix(b"name=") {
            Some(_) if name.is_some() => {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                )
            }
            Some(value) => name = Some(value),
            None => {
                return Err(format!(
                    "ERR Invalid metadata value given: {}",
                    String::from_utf8_lossy(part)
                ))
            }
        }
    }
    let name = name.ok_or("ERR Library name was not given")?;
    if !valid_name(name) {
        return Err(format!("ERR {BAD_NAME}"));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), end))
}

/// A function as FUNCTION LIST shows it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: ScriptFlags,
}

/// What `redis.register_function` collects while a library's code runs.
#[derive(Default)]
pub struct Registrations(pub RefCell<Vec<(FunctionInfo, Function)>>);

impl Registrations {
    /// `redis.register_function(name, callback)` or
    /// `redis.register_function{function_name=..., callback=..., flags=..., description=...}`.
    pub fn register(&self, lua: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
        let fail = |text: &str| Err(mlua::Error::runtime(text));
        let (mut name, mut callback, mut flags, mut description) = (None, None, None, None);
        let positional = args.len() == 2;
        match &args[..] {
            [Value::Table(named)] => {
                for pair in named.clone().pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    let key = match &k {
                        Value::String(s) => s.as_bytes().to_vec(),
                        _ => return fail("unknown argument given to redis.register_function"),
                    };
                    match &key[..] {
                        b"function_name" => name = Some(v),
                        b"callback" => callback = Some(v),
                        b"flags" => flags = Some(v),
                        b"description" => description = Some(v),
                        _ => return fail("unknown argument given to redis.register_function"),
                    }
                }
            }
            [_] => {
                return fail(
                    "calling redis.register_function with a single argument is only \
                     applicable to Lua table (representing named arguments).",
                )
            }
            [n, c] => {
                name = Some(n.clone());
                callback = Some(c.clone());
            }
            _ => return fail("wrong number of arguments to redis.register_function"),
        }
        let name = match name {
            None => return fail("redis.register_function must get a function name argument"),
            Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => lua
                .coerce_string(v)?
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            Some(_) if positional => {
                return fail("first argument to redis.register_function must be a string")
            }
            Some(_) => {
                return fail(
                    "function_name argument given to redis.register_function must be a string",
                )
            }
        };
        let callback = match callback {
            None => return fail("redis.register_function must get a callback argument"),
            Some(Value::Function(f)) => f,
            Some(_) if positional => {
                return fail("second argument to redis.register_function must be a function")
            }
            Some(_) => {
                return fail(
                    "callback argument given to redis.register_function must be a function",
                )
            }
        };
        let description = match description {
            None => None,
            Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
                lua.coerce_string(v)?.map(|s| s.to_string_lossy())
            }
            Some(_) => {
                return fail(
                    "description argument given to redis.register_function must be a string",
                )
            }
        };
        let mut parsed = ScriptFlags::default();
        match flags {
            None => {}
            Some(Value::Table(list)) => {
                for flag in list.sequence_values::<Value>() {
                    let known = match flag? {
                        Value::String(s) => parsed.set(&s.as_bytes()),
                        _ => false,
                    };
                    if !known {
                        return fail("unknown flag given");
                    }
                }
            }
            Some(_) => {
                return fail(
                    "flags argument to redis.register_function must be a table representing \
                     function flags",
                )
            }
        }
        if !valid_name(name.as_bytes()) {
            return fail(BAD_NAME);
        }
        let mut registered = self.0.borrow_mut();
        if registered.iter().any(|(info, _)| info.name == name) {
            return fail("Function already exists in the library");
        }
        registered.push((
            FunctionInfo {
                name,
                description,
                flags: parsed,
            },
            callback,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_metadata_parses_as_redis_server_parses_it() {
        assert_eq!(
            parse_metadata(b"#!lua name=lib\nreturn 1").unwrap(),
            ("lib".to_string(), 14)
        );
        for (code, error) in [
            (&b"return 1"[..], "ERR Missing library metadata"),
            (b"#!lua\nreturn 1", "ERR Library name was not given"),
            (b"#!python name=x\n", "ERR Engine 'python' not found"),
            (
                b"#!lua name=x name=y\n",
                "ERR Invalid metadata value, name argument was given multiple times",
            ),
            (
                b"#!lua name=x foo=bar\n",
                "ERR Invalid metadata value given: foo=bar",
            ),
        ] {
            assert_eq!(parse_metadata(code).unwrap_err(), error);
        }
        assert!(parse_metadata(b"#!lua name=bad-name\n")
            .unwrap_err()
            .starts_with("ERR Library names can only contain"));
    }
}
