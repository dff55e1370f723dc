//! Lua scripting as Redis 7.0 has it: Lua 5.1 (mlua, vendored) in a sandbox with Redis's
//! libraries, the per-node script cache, and the running of a script whose commands a
//! host (the node) carries out. `convert.rs` turns replies into Lua values and back,
//! `redis_lib.rs` holds the `redis` table's helpers, `sandbox.rs` (with `sandbox.lua`) the
//! Lua state and its read-only globals, `flags.rs` the shebang flags, `libs/` the libraries
//! redis-server adds (`bit`, `cjson`, `cmsgpack`, `struct`), `functions.rs` and
//! `libraries.rs` function libraries (FUNCTION LOAD, FCALL), `engine.rs` the cache and
//! the runs, and `bridge.rs` the functions through which a run's commands reach its host. EVAL and SCRIPT are in `commands::scripting`; running a script
//! atomically at its shard's leader is the node's (`node/script.rs`).

mod bridge;
pub mod convert;
pub mod engine;
pub mod flags;
pub mod functions;
pub mod libraries;
mod libs;
pub mod redis_lib;
pub mod sandbox;

pub use engine::{Abandon, CachedScript, Host, Run, RunEnd, Scripts, NOSCRIPT};
pub use flags::ScriptFlags;
pub use libraries::Library;
