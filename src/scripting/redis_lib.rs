//! The parts of the `redis` table a script sees that do not run commands: the version and
//! log-level constants, `sha1hex`, `error_reply`, `status_reply`, `log` (to the server's
//! log, through tracing), `setresp`, and the accepted-but-inert `set_repl`,
//! `replicate_commands`, `breakpoint` and `debug` — with redis-server 7.0.15's values and
//! texts. `call` and `pcall` are added where commands run.

use mlua::{Lua, Table, Value};

use crate::commands::REDIS_VERSION;

/// `REDIS_VERSION_NUM`: major << 16 | minor << 8 | patch.
fn version_num() -> i64 {
    REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0, |acc, p| (acc << 8) | p)
}

/// Where `redis.setresp` keeps the protocol a script's `redis.call` replies use.
pub const RESP_KEY: &str = "__basalt_resp";

/// SHA-1 of `data` as lowercase hex (`redis.sha1hex`, and a script's name in the cache).
pub fn sha1hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of an error table made from `text` (`redis.error_reply`, a failed
/// `redis.call`), as redis-server makes it: a leading `-` is dropped, a text without a
/// space gets the generic `ERR` code, and trailing line ends are trimmed.
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let mut out = if text.contains(&b' ') {
        text.to_vec()
    } else {
        [b"ERR ", text].concat()
    };
    while out.last().is_some_and(|b| *b == b'\r' || *b == b'\n') {
        out.pop();
    }
    out
}

/// A numeric argument as an integer (-1 for anything else, which every caller refuses).
fn integer(value: &Value) -> i64 {
    match value {
        Value::Integer(i) => *i,
        Value::Number(n) => *n as i64,
        _ => -1,
    }
}

/// Builds the `redis` table (without `call` and `pcall`) and sets it as a global.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.set(name, level)?;
    }
    for (name, value) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.set(name, value)?;
    }
    redis.set("REDIS_VERSION", REDIS_VERSION)?;
    redis.set("REDIS_VERSION_NUM", version_num())?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, args: mlua::Variadic<Value>| match &args[..] {
            [Value::String(s)] => Ok(sha1hex(&s.as_bytes())),
            [Value::Number(n)] => Ok(sha1hex(n.to_string().as_bytes())),
            [Value::Integer(i)] => Ok(sha1hex(i.to_string().as_bytes())),
            _ => Err(mlua::Error::runtime("wrong number of arguments")),
        })?,
    )?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(error_text(&s.as_bytes()))?)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.raw_set("ok", s)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, (level, parts): (Value, mlua::Variadic<Value>)| {
            if parts.is_empty() {
                return Err(mlua::Error::runtime(
                    "redis.log() requires two arguments or more.",
                ));
            }
            let level = integer(&level);
            let text: Vec<String> = parts
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.to_string_lossy(),
                    Value::Number(n) => n.to_string(),
                    Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            let text = text.join(" ");
            match level {
                0 | 1 => tracing::debug!(target: "basalt::script", "{text}"),
                2 => tracing::info!(target: "basalt::script", "{text}"),
                3 => tracing::warn!(target: "basalt::script", "{text}"),
                _ => return Err(mlua::Error::runtime("Invalid debug level.")),
            }
            Ok(())
        })?,
    )?;
    redis.set(
        "setresp",
        lua.create_function(|lua, version: i64| {
            if version != 2 && version != 3 {
                return Err(mlua::Error::runtime("RESP version must be 2 or 3."));
            }
            lua.set_named_registry_value(RESP_KEY, version)
        })?,
    )?;
    // Effects replication is the only mode (as in Redis 7): these are accepted and inert.
    redis.set(
        "set_repl",
        lua.create_function(|_, flags: Value| {
            let flags = integer(&flags);
            if !(0..=3).contains(&flags) {
                return Err(mlua::Error::runtime(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    redis.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.set(
        "debug",
        lua.create_function(|_, _: mlua::Variadic<Value>| Ok(()))?,
    )?;
    lua.globals().set("redis", redis.clone())?;
    Ok(redis)
}

/// The protocol `redis.setresp` chose (2 until a script asks).
pub fn resp_of(lua: &Lua) -> i64 {
    lua.named_registry_value::<Option<i64>>(RESP_KEY)
        .ok()
        .flatten()
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        install(&lua).unwrap();
        lua
    }

    #[test]
    fn the_redis_table_answers_as_redis_server_does() {
        let lua = lua();
        let eval = |code: &str| -> Value { lua.load(code).eval().unwrap() };
        let error_of = |code: &str| lua.load(code).exec().unwrap_err().to_string();
        let text = |v: Value| match v {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        };
        assert_eq!(
            text(eval("return redis.sha1hex('abc')")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(text(eval("return redis.REDIS_VERSION")), "7.0.15");
        assert_eq!(
            lua.load("return redis.REDIS_VERSION_NUM")
                .eval::<i64>()
                .unwrap(),
            458767
        );
        assert_eq!(
            lua.load("return redis.LOG_WARNING").eval::<i64>().unwrap(),
            3
        );
        assert_eq!(text(eval("return redis.error_reply('x').err")), "ERR x");
        assert_eq!(text(eval("return redis.error_reply('x y').err")), "x y");
        assert_eq!(
            text(eval("return redis.error_reply('-x y\\r\\n').err")),
            "x y"
        );
        assert_eq!(text(eval("return redis.status_reply('y').ok")), "y");
        let err = error_of("redis.setresp(4)");
        assert!(err.contains("RESP version must be 2 or 3."), "{err}");
        assert_eq!(resp_of(&lua), 2);
        lua.load("redis.setresp(3)").exec().unwrap();
        assert_eq!(resp_of(&lua), 3);
        lua.load("redis.log(redis.LOG_NOTICE, 'hello', 1)")
            .exec()
            .unwrap();
        let err = error_of("redis.log(9, 'x')");
        assert!(err.contains("Invalid debug level."), "{err}");
        lua.load("redis.set_repl(redis.REPL_ALL); redis.debug('x')")
            .exec()
            .unwrap();
        let err = error_of("redis.set_repl(7)");
        assert!(err.contains("Invalid replication flags."), "{err}");
        let err = error_of("redis.log(1)");
        assert!(
            err.contains("redis.log() requires two arguments or more."),
            "{err}"
        );
        let err = error_of("redis.sha1hex()");
        assert!(err.contains("wrong number of arguments"), "{err}");
    }
}
