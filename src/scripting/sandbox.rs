//! The Lua state scripts run in: Lua 5.1's base, table, string and math libraries with
//! what Redis removes taken out (no files, no `print`, no `os`, `io`, `debug`, `require`,
//! no `getfenv`/`setfenv`), the `redis` table, the read-only view of it all
//! (`sandbox.lua`), the bound on the state's memory, and the message handler that turns
//! whatever a script raised into Redis's error table with the line it came from.

use std::ffi::{c_int, CStr};

use mlua::{ffi, Function, Lua, LuaOptions, StdLib, Table, Value};

use super::redis_lib;

/// The most memory the Lua state may hold (scripts, their tables and strings); an
/// allocation past it fails the script with an error. redis-server sets no bound.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// Chunk names of the code a client sends, as redis-server names them: what error
/// messages and the reported line refer to.
pub const SCRIPT_CHUNK: &str = "@user_script";
/// The chunk name of a function library's code.
pub const FUNCTION_CHUNK: &str = "@user_function";

pub struct Sandbox {
    pub lua: Lua,
    /// The read-only environment scripts run in.
    pub env: Table,
    /// The table behind `env`: KEYS and ARGV are set here for each run.
    pub globals: Table,
    /// `hooks.run` and `hooks.acl_check`, set for the length of a run.
    pub hooks: Table,
    /// `protected_call(f, handler, ...)`: xpcall with arguments (Lua 5.1's takes none).
    protected_call: Function,
    on_error: Function,
}

impl Sandbox {
    pub fn new() -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let redis = redis_lib::install(&lua)?;
        let real = lua.globals();
        let libraries = lua.create_table()?;
        for name in ["string", "math", "coroutine"] {
            libraries.set(name, real.get::<Table>(name)?)?;
        }
        libraries.set("redis", redis.clone())?;
        super::libs::install(&lua, &libraries)?;
        let hooks = lua.create_table()?;
        lua.set_named_registry_value(HOOKS_KEY.to_str().unwrap_or_default(), hooks.clone())?;
        // SAFETY: both are Lua C functions that keep to the Lua stack discipline.
        unsafe {
            redis.set("call", lua.create_c_function(call_raising)?)?;
            redis.set("acl_check_cmd", lua.create_c_function(acl_check_raising)?)?;
        }
        let (env, globals, protected_call): (Table, Table, Function) = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=basalt")
            .call((libraries, hooks.clone()))?;
        let on_error = lua.create_function(on_error)?;
        // redis-server's globals hold its error handler under this name too.
        globals.raw_set("__redis__err__handler", on_error.clone())?;
        Ok(Sandbox {
            lua,
            env,
            globals,
            hooks,
            protected_call,
            on_error,
        })
    }

    /// Compiles `code` under `chunk` (for example [`SCRIPT_CHUNK`]) to run in the sandbox.
    /// The error is Lua's message (`user_script:1: unexpected symbol near '<eof>'`).
    pub fn compile(&self, code: &[u8], chunk: &str) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(chunk)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => error_message(&other),
            })
    }

    /// Calls `f` with `args`: its first result, or the error table it raised (see
    /// [`on_error`]).
    pub fn call(&self, f: &Function, args: impl mlua::IntoLuaMulti) -> Result<Value, Table> {
        let result =
            self.protected_call
                .call::<mlua::MultiValue>((f.clone(), self.on_error.clone(), args));
        let mut values = match result {
            Ok(values) => values.into_iter(),
            Err(e) => return Err(self.error_table(&format!("ERR {}", error_message(&e)))),
        };
        match values.next() {
            Some(Value::Boolean(true)) => Ok(values.next().unwrap_or(Value::Nil)),
            _ => match values.next() {
                Some(Value::Table(t)) => Err(t),
                // The handler itself failed (out of memory while building the table).
                Some(other) => {
                    let text = describe(&self.lua, &other);
                    Err(self.error_table(&format!("ERR {text}")))
                }
                None => Err(self.error_table("ERR script failed")),
            },
        }
    }

    fn error_table(&self, text: &str) -> Table {
        let t = self.lua.create_table().expect("a small table");
        let _ = t.raw_set("err", text);
        t
    }
}

/// The registry key of the hooks table.
pub(super) const HOOKS_KEY: &CStr = c"basalt_hooks";

/// `redis.call` and `redis.acl_check_cmd`: C functions, so that a script's
/// `return redis.call(...)` keeps the script's frame on the stack (Lua drops the caller's
/// frame only for a tail call to a Lua function) and an error names the script's line, as
/// redis-server's do. Each calls its hook, which answers `value, failed`, and raises the
/// value when it failed.
unsafe extern "C-unwind" fn call_raising(state: *mut ffi::lua_State) -> c_int {
    raising(state, c"run")
}

unsafe extern "C-unwind" fn acl_check_raising(state: *mut ffi::lua_State) -> c_int {
    raising(state, c"acl_check")
}

/// # Safety
/// `state` is a Lua state in a call of a C function (its arguments on the stack). The
/// frame holds nothing to drop: a Lua error unwinds it with longjmp.
unsafe fn raising(state: *mut ffi::lua_State, hook: &CStr) -> c_int {
    let nargs = ffi::lua_gettop(state);
    ffi::luaL_checkstack(state, 3, std::ptr::null());
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, HOOKS_KEY.as_ptr());
    ffi::lua_getfield(state, -1, hook.as_ptr());
    ffi::lua_remove(state, -2);
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, 2);
    let failed = ffi::lua_toboolean(state, -1) != 0;
    ffi::lua_pop(state, 1);
    if failed {
        ffi::lua_error(state);
    }
    1
}

/// Frames the error's position skips: C functions, tail calls, the sandbox's own code.
const INTERNAL_SOURCES: [&str; 3] = ["=[C]", "=(tail call)", "=basalt"];

/// The message handler of every run: what a script raised, as Redis's error table
/// (`err`, and where it came from: `source` and `line` of the innermost frame of Lua
/// code other than the sandbox's — the script's, or a chunk it loaded). A table with an `err` field passes as it is (`redis.call`'s
/// errors, `error(redis.error_reply(...))`); anything else becomes `ERR <it as text>`.
fn on_error(lua: &Lua, raised: Value) -> mlua::Result<Table> {
    let table = match raised {
        Value::Table(t) if matches!(t.raw_get::<Value>("err")?, Value::String(_)) => t,
        other => {
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {}", describe(lua, &other)))?;
            t
        }
    };
    for level in 0..256 {
        let Some(frame) = lua.inspect_stack(level) else {
            break;
        };
        let source = frame.source().source.map(|s| s.into_owned());
        if let Some(source) = source.filter(|s| !INTERNAL_SOURCES.contains(&s.as_str())) {
            table.raw_set("source", source)?;
            table.raw_set("line", frame.curr_line())?;
            break;
        }
    }
    Ok(table)
}

/// A raised value as the text Redis's handler makes of it (`tostring`).
fn describe(lua: &Lua, value: &Value) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(_) | Value::Number(_) | Value::String(_) => lua
            .coerce_string(value.clone())
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        Value::Error(e) => error_message(e),
        other => other.type_name().to_string(),
    }
}

/// The message of an error raised in Rust code a script called (a callback's own message,
/// not mlua's wrapping of it).
pub fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(message) | mlua::Error::MemoryError(message) => message.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
