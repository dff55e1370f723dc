//! Lua scripting (issue 18), being built: Lua 5.1 as Redis embeds it (mlua, vendored).
//! So far the conversions between replies and Lua values (`convert.rs`) and the `redis`
//! table's helpers that run no command (`redis_lib.rs`); EVAL, the script
//! cache, the sandbox and FUNCTION come next, and nothing here is reachable from the
//! command table yet.

pub mod convert;
pub mod redis_lib;
