//! The libraries redis-server adds to Lua, written over mlua: `bit` (LuaBitOp), `cjson`
//! (lua-cjson), `cmsgpack` (lua-cmsgpack) and `struct`, with their results and error
//! texts.

mod bit;
mod cjson;
mod cmsgpack;
mod struct_lib;

use mlua::{Lua, Table, Value};

/// Adds the libraries to `libraries` (name -> table) for the sandbox to expose.
pub fn install(lua: &Lua, libraries: &Table) -> mlua::Result<()> {
    libraries.set("bit", bit::table(lua)?)?;
    libraries.set("cjson", cjson::table(lua)?)?;
    libraries.set("cmsgpack", cmsgpack::table(lua)?)?;
    libraries.set("struct", struct_lib::table(lua)?)?;
    Ok(())
}

/// The most an encoder (`cjson.encode`, `cmsgpack.pack`) writes: its output is Rust's
/// memory, outside the Lua state's bound, and a table can name one big string many times.
pub(super) const MAX_OUTPUT: usize = super::sandbox::MEMORY_LIMIT;

/// The error of an encoder whose output would pass [`MAX_OUTPUT`].
pub(super) fn too_big() -> mlua::Error {
    mlua::Error::runtime("not enough memory")
}

/// Lua's name for an argument's type ("no value" for a missing one).
pub(super) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// Where the running Lua code called from (`user_script:3: `), as Lua's `luaL_where` puts
/// it before a library's error.
pub(super) fn caller_position(lua: &Lua) -> String {
    match lua.inspect_stack(1) {
        Some(frame) if frame.curr_line() > 0 => {
            let source = frame.source();
            let place = source.short_src.as_deref().unwrap_or("?").to_string();
            format!("{place}:{}: ", frame.curr_line())
        }
        _ => String::new(),
    }
}

/// Lua's "bad argument" error for argument `at` of `function`.
pub(super) fn arg_error(
    lua: &Lua,
    at: usize,
    function: &str,
    expected: &str,
    got: &str,
) -> mlua::Error {
    mlua::Error::runtime(format!(
        "{}bad argument #{at} to '{function}' ({expected} expected, got {got})",
        caller_position(lua)
    ))
}

/// Argument `at` (1-based, `value`) of `function` as a string: a number is written as Lua
/// writes it (as `luaL_checklstring` takes it).
pub(super) fn string_arg(
    lua: &Lua,
    value: Option<&Value>,
    at: usize,
    function: &str,
) -> mlua::Result<Vec<u8>> {
    match value {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => Ok(lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(arg_error(lua, at, function, "string", type_name(other))),
    }
}

/// A library's error with the caller's position.
pub(super) fn error_here(lua: &Lua, message: &str) -> mlua::Error {
    mlua::Error::runtime(format!("{}{message}", caller_position(lua)))
}

#[cfg(test)]
mod tests {
    use crate::protocol::reply::format_g;

    #[test]
    fn numbers_format_as_c_printf_g_does() {
        for (n, p, text) in [
            (1.0, 14, "1"),
            (1.5, 14, "1.5"),
            (0.1, 14, "0.1"),
            (1e20, 14, "1e+20"),
            (123456789012345.0, 14, "1.2345678901234e+14"),
            (9007199254740992.0, 14, "9.007199254741e+15"),
            (0.0001, 14, "0.0001"),
            (0.00001, 14, "1e-05"),
            (-0.0, 14, "-0"),
            (-2.5, 14, "-2.5"),
            (100000000000000.0, 14, "1e+14"),
            (10000000000000.0, 14, "10000000000000"),
            (1.23456, 3, "1.23"),
            (1.0 / 3.0, 14, "0.33333333333333"),
        ] {
            assert_eq!(format_g(n, p), text, "{n} at {p}");
        }
    }
}
