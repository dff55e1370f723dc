//! The node's script engine: one Lua state (as redis-server has one), the script cache
//! (per node, as in Redis: SCRIPT LOAD, EVAL and EVALSHA fill it, SCRIPT FLUSH empties it),
//! and the running of a script with the commands it calls handed to a [`Host`]. While a
//! script runs, [`RunControl`] says since when, whether it has run past
//! `busy-reply-threshold` (other clients then get BUSY) and whether SCRIPT KILL asked it
//! to stop.
//!
//! A script first runs on the async worker that got it, if the Lua state is free, for at
//! most a few milliseconds (most scripts end well within that); one that takes longer is
//! dropped (a speculative run changes nothing) and the caller runs it again off the async
//! workers' schedule (`blocking_io::run`), where it may run for as long as its author
//! wrote it to.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use mlua::{ffi, Function, Table, Value};
use parking_lot::Mutex;

use super::bridge::Bridge;
use super::convert::lua_to_reply;
use super::flags::{parse_shebang, ScriptFlags};
use super::libraries::{Libraries, Library};
use super::redis_lib::{sha1hex, RESP_KEY};
use super::sandbox::{Sandbox, HOOKS_KEY, SCRIPT_CHUNK};
use crate::clock;
use crate::protocol::Reply;

pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
pub(super) const KILLED: &str = "Script killed by user with SCRIPT KILL...";
const KILLED_C: &CStr = c"Script killed by user with SCRIPT KILL...";
/// How long a library's code may run when it loads (redis-server's limit).
const LOAD_TIMEOUT_MS: u64 = 500;
const LOAD_TIMEOUT_C: &CStr = c"FUNCTION LOAD timeout";
/// How long a script may keep the async worker that started it (see [`Run::inline`]).
const INLINE_BUDGET_MS: u64 = 2;
/// How often (in Lua instructions) a running script looks at its [`RunControl`].
const CHECK_EVERY: i32 = 10_000;
/// A run that leaves the Lua state holding more than this is followed by a full collection.
const GC_AFTER_BYTES: usize = 32 << 20;

/// A script as cached: its body and flags (the compiled function is in the Lua state).
#[derive(Clone)]
pub struct CachedScript {
    pub body: Bytes,
    pub flags: ScriptFlags,
}

/// What runs a script's commands (`redis.call`, `redis.pcall`, `redis.acl_check_cmd`).
pub trait Host {
    /// Runs a command from the script: its reply, an error reply for a refusal, or
    /// `Abandon` when the run must be dropped and tried again (it needs what the host
    /// does not hold; nothing of the run counts).
    fn call(&mut self, args: Vec<Bytes>) -> Result<Reply, Abandon>;
    /// Whether the script's user may run `args`; the error is the text to raise.
    fn acl_check(&mut self, args: &[Bytes]) -> Result<bool, String>;
}

/// See [`Host::call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandon;

/// How a run ended.
pub enum RunEnd {
    /// The script's result, or its error, as the client's reply.
    Reply(Reply),
    /// SCRIPT KILL stopped it: the error reply (its writes must not count).
    Killed(Reply),
    /// An inline run (see [`Run::inline`]) found the Lua state in use or its libraries to
    /// load, or went past its budget: nothing of it counts; run it again off the worker.
    NotInline,
    /// The host abandoned it (see [`Host::call`]).
    Abandoned,
}

/// One script to run: which, with what, and how.
pub struct Run<'a> {
    /// The cached script's SHA-1, or with `function` the function's name.
    pub sha: &'a str,
    /// FCALL: `sha` names a function of a loaded library.
    pub function: bool,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    /// The client speaks RESP3 (the script's result is converted for it).
    pub resp3: bool,
    /// `busy-reply-threshold` in milliseconds.
    pub busy_after_ms: u64,
    /// The command that runs it (FUNCTION STATS shows it).
    pub command: &'a [Bytes],
    /// Run on the calling async worker: only if the Lua state is free at once, and for at
    /// most [`INLINE_BUDGET_MS`] (else [`RunEnd::NotInline`]). Otherwise the caller runs
    /// it off the worker's schedule (`blocking_io::run`).
    pub inline: bool,
}

/// The running script's state, as other connections see it.
#[derive(Default)]
pub struct RunControl {
    running: AtomicBool,
    started_ms: AtomicU64,
    busy_after_ms: AtomicU64,
    busy: AtomicBool,
    kill: AtomicBool,
    abandon: AtomicBool,
    /// The function running, and the command that called it (FUNCTION STATS).
    function: Mutex<Option<(String, Vec<Bytes>)>>,
    /// While a library's code runs: when it must have finished (0: none).
    load_deadline_ms: AtomicU64,
    /// A run on an async worker: when it must give the worker back (0: not inline).
    inline_until_ms: AtomicU64,
    /// The inline run went past its budget.
    too_long: AtomicBool,
}

/// What the hook finds.
enum Stop {
    No,
    Killed,
    LoadTimeout,
}

impl RunControl {
    /// The host abandoned the run: it stops as a killed one does, and nothing of it counts.
    pub(super) fn abandon(&self) {
        self.abandon.store(true, Ordering::Relaxed);
    }

    /// Whether the running script (or the library loading) must stop; marks a script
    /// busy past the threshold.
    fn must_stop(&self) -> Stop {
        if !self.running.load(Ordering::Acquire) {
            let deadline = self.load_deadline_ms.load(Ordering::Relaxed);
            if deadline != 0 && clock::now_ms() > deadline {
                return Stop::LoadTimeout;
            }
            return Stop::No;
        }
        if self.kill.load(Ordering::Relaxed) || self.abandon.load(Ordering::Relaxed) {
            return Stop::Killed;
        }
        let inline_until = self.inline_until_ms.load(Ordering::Relaxed);
        if inline_until != 0 && clock::now_ms() > inline_until {
            // Too long to keep an async worker: dropped, to run again off the worker.
            self.too_long.store(true, Ordering::Relaxed);
            self.abandon.store(true, Ordering::Relaxed);
            return Stop::Killed;
        }
        if !self.busy.load(Ordering::Relaxed) {
            let elapsed = clock::now_ms().saturating_sub(self.started_ms.load(Ordering::Relaxed));
            if elapsed >= self.busy_after_ms.load(Ordering::Relaxed) {
                tracing::warn!(
                    elapsed_ms = elapsed,
                    "slow script detected: still running after busy-reply-threshold"
                );
                self.busy.store(true, Ordering::Relaxed);
            }
        }
        Stop::No
    }

    /// A library's code starts running (FUNCTION LOAD, or following the cluster map): it
    /// has [`LOAD_TIMEOUT_MS`] to register its functions.
    pub(super) fn begin_load(&self) {
        let deadline = clock::now_ms() + LOAD_TIMEOUT_MS;
        self.load_deadline_ms.store(deadline, Ordering::Relaxed);
    }

    pub(super) fn end_load(&self) {
        self.load_deadline_ms.store(0, Ordering::Relaxed);
    }

    fn begin(&self, busy_after_ms: u64, inline: bool) {
        let now = clock::now_ms();
        let inline_until = if inline { now + INLINE_BUDGET_MS } else { 0 };
        self.inline_until_ms.store(inline_until, Ordering::Relaxed);
        self.too_long.store(false, Ordering::Relaxed);
        self.started_ms.store(now, Ordering::Relaxed);
        self.busy_after_ms.store(busy_after_ms, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        self.abandon.store(false, Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    fn end(&self) {
        self.running.store(false, Ordering::Release);
        *self.function.lock() = None;
        self.busy.store(false, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
    }
}

/// The registry key of the [`RunControl`] the hook reads.
const CONTROL_KEY: &CStr = c"basalt_control";

/// The count hook, every [`CHECK_EVERY`] instructions of every coroutine of the state (a
/// raw Lua hook: coroutines inherit it, where mlua's hooks stay on one thread). Once the
/// run must stop (killed, or a library's load past its time) it marks it stopping (no
/// `pcall` catches its error then, see `sandbox.lua`) and raises the error; at every check
/// after, again.
///
/// # Safety
/// Lua calls it with a live state whose registry holds the [`RunControl`] pointer. The
/// frame holds nothing to drop (a Lua error unwinds it with longjmp).
unsafe extern "C-unwind" fn count_hook(state: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, CONTROL_KEY.as_ptr());
    let control = ffi::lua_touserdata(state, -1) as *const RunControl;
    ffi::lua_pop(state, 1);
    if control.is_null() {
        return;
    }
    let message = match (*control).must_stop() {
        Stop::No => return,
        Stop::Killed => KILLED_C,
        Stop::LoadTimeout => LOAD_TIMEOUT_C,
    };
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, HOOKS_KEY.as_ptr());
    ffi::lua_pushboolean(state, 1);
    ffi::lua_setfield(state, -2, c"stopping".as_ptr());
    ffi::lua_pop(state, 1);
    ffi::lua_pushstring(state, message.as_ptr());
    ffi::lua_error(state);
}

struct Vm {
    sandbox: Sandbox,
    /// Cached scripts by SHA-1.
    functions: AHashMap<String, Function>,
    libraries: Libraries,
    /// `hooks.run` and `hooks.acl_check` for the length of a run (`bridge.rs`).
    run_fn: Function,
    acl_check_fn: Function,
}

pub struct Scripts {
    vm: Mutex<Vm>,
    /// Lends each run's host to `run_fn` and `acl_check_fn`.
    bridge: Arc<Bridge>,
    /// Taken by a client's script before it runs, so scripts queue for the one Lua state
    /// without blocking an async worker (see `turn`).
    turn: tokio::sync::Mutex<()>,
    /// The cache's bodies and flags, readable while a script holds the Lua state.
    cache: Mutex<AHashMap<String, CachedScript>>,
    /// The function libraries the cluster map holds, with a generation that moves when
    /// they change (the Lua state follows them before its next use).
    wanted: Mutex<(u64, BTreeMap<Bytes, Bytes>)>,
    /// The libraries the Lua state holds, readable while a script holds the state.
    /// With the generation of the wanted set they follow.
    catalog: Mutex<(u64, BTreeMap<String, Library>)>,
    /// The Lua state's memory after its last use.
    lua_bytes: std::sync::atomic::AtomicUsize,
    control: Arc<RunControl>,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

impl Scripts {
    pub fn new() -> Scripts {
        let sandbox = Sandbox::new().expect("the Lua state and its libraries load");
        let lua_bytes = sandbox.lua.used_memory();
        let control = Arc::new(RunControl::default());
        // SAFETY: the pointer stays valid while the Lua state lives: `control` is kept
        // by `Scripts`, whose Lua state is dropped first (field order).
        unsafe {
            let control = Arc::as_ptr(&control) as *mut std::ffi::c_void;
            let installed = sandbox.lua.exec_raw::<()>((), |state| {
                ffi::lua_pushlightuserdata(state, control);
                ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, CONTROL_KEY.as_ptr());
                ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, CHECK_EVERY);
            });
            installed.expect("the Lua hook installs");
        }
        let bridge = Arc::new(Bridge::default());
        let (run_fn, acl_check_fn) = bridge
            .functions(&sandbox.lua, control.clone(), sandbox.hooks.clone())
            .expect("the script functions are created");
        Scripts {
            turn: tokio::sync::Mutex::new(()),
            vm: Mutex::new(Vm {
                sandbox,
                functions: AHashMap::new(),
                libraries: Libraries::default(),
                run_fn,
                acl_check_fn,
            }),
            bridge,
            wanted: Mutex::default(),
            catalog: Mutex::default(),
            lua_bytes: lua_bytes.into(),
            cache: Mutex::new(AHashMap::new()),
            control,
        }
    }

    /// Compiles and caches `body` unless cached; its SHA-1 and flags, or the error reply's
    /// text (a bad shebang, a compile error).
    pub fn load(&self, body: &Bytes) -> Result<(String, ScriptFlags), String> {
        let sha = sha1hex(body);
        if let Some(cached) = self.cache.lock().get(&sha) {
            return Ok((sha, cached.flags));
        }
        let (flags, code_at) = parse_shebang(body)?;
        let mut vm = crate::blocking_io::run(|| self.vm.lock());
        let function = vm
            .sandbox
            .compile(&body[code_at..], SCRIPT_CHUNK)
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        vm.functions.insert(sha.clone(), function);
        self.cache.lock().insert(
            sha.clone(),
            CachedScript {
                body: body.clone(),
                flags,
            },
        );
        Ok((sha, flags))
    }

    /// The cached script named `sha` (lowercase hex).
    pub fn get(&self, sha: &str) -> Option<CachedScript> {
        self.cache.lock().get(sha).cloned()
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.cache.lock().contains_key(sha)
    }

    /// How many scripts are cached, and the bytes of their bodies.
    pub fn cached(&self) -> (usize, usize) {
        let cache = self.cache.lock();
        (cache.len(), cache.values().map(|c| c.body.len()).sum())
    }

    /// Bytes the Lua state held after its last use (INFO's `used_memory_lua`; read without
    /// waiting for a running script).
    pub fn lua_memory(&self) -> usize {
        self.lua_bytes.load(Ordering::Relaxed)
    }

    /// SCRIPT FLUSH: forgets every cached script.
    pub fn flush(&self) {
        let mut vm = crate::blocking_io::run(|| self.vm.lock());
        self.cache.lock().clear();
        vm.functions.clear();
        let _ = vm.sandbox.lua.gc_collect();
    }

    /// The Lua state, holding the libraries the cluster map holds now. Waits while a
    /// script runs (off the async workers' schedule).
    /// Waits, without holding up the worker, until no other client's script holds the Lua
    /// state: a run that holds the turn finds the state free unless an administrative
    /// command (SCRIPT LOAD, FUNCTION LOAD …) holds it for a moment.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    fn vm_synced(&self) -> parking_lot::MutexGuard<'_, Vm> {
        let mut vm = crate::blocking_io::run(|| self.vm.lock());
        self.sync(&mut vm);
        vm
    }

    /// Brings the Lua state's libraries to the wanted set, and the catalog with them.
    fn sync(&self, vm: &mut Vm) {
        let wanted = self.wanted.lock();
        if vm.libraries.generation != wanted.0 {
            let Vm {
                sandbox, libraries, ..
            } = vm;
            libraries.follow(sandbox, &self.control, &wanted.1);
            libraries.generation = wanted.0;
            *self.catalog.lock() = (wanted.0, libraries.loaded.clone());
        }
    }

    /// The function libraries of the cluster map (name → code), as it changes.
    pub fn set_libraries(&self, libraries: &BTreeMap<Bytes, Bytes>) {
        let mut wanted = self.wanted.lock();
        if wanted.1 != *libraries {
            wanted.0 += 1;
            wanted.1 = libraries.clone();
        }
    }

    /// FUNCTION LOAD's checks of a library's code: its name, or the error reply's text.
    pub fn check_library(&self, code: &[u8], replace: bool) -> Result<String, String> {
        let vm = self.vm_synced();
        vm.libraries
            .check(&vm.sandbox, &self.control, code, replace)
    }

    /// The loaded libraries, by name. While a script runs, as they were when it began
    /// (FUNCTION LIST and STATS answer then too).
    pub fn libraries(&self) -> BTreeMap<String, Library> {
        if let Some(mut vm) = self.vm.try_lock() {
            self.sync(&mut vm);
        }
        self.catalog.lock().1.clone()
    }

    /// FUNCTION RESTORE's check of the whole set it would make: every library loads and
    /// no function name is in two of them.
    pub fn check_set(&self, set: &BTreeMap<Bytes, Bytes>) -> Result<(), String> {
        let vm = self.vm_synced();
        let mut seen = ahash::AHashSet::new();
        for code in set.values() {
            let (_, registered) = super::libraries::load(&vm.sandbox, &self.control, code)?;
            for (info, _) in registered {
                if !seen.insert(info.name.clone()) {
                    return Err(format!("ERR Function {} already exists", info.name));
                }
            }
        }
        Ok(())
    }

    /// The function running now (FUNCTION STATS): its name, the command that called it and
    /// for how long it has run.
    pub fn running_function(&self) -> Option<(String, Vec<Bytes>, u64)> {
        if !self.control.running.load(Ordering::Acquire) {
            return None;
        }
        let (name, command) = self.control.function.lock().clone()?;
        let started = self.control.started_ms.load(Ordering::Relaxed);
        Some((name, command, clock::now_ms().saturating_sub(started)))
    }

    /// Whether the script running now is a function (BUSY's text names FUNCTION KILL).
    pub fn running_is_function(&self) -> bool {
        self.control.function.lock().is_some()
    }

    /// A loaded function's flags.
    pub fn function_flags(&self, name: &str) -> Option<ScriptFlags> {
        // From the catalog while it is current: no wait for the Lua state.
        let wanted = self.wanted.lock().0;
        {
            let catalog = self.catalog.lock();
            if catalog.0 == wanted {
                let mut functions = catalog.1.values().flat_map(|l| &l.functions);
                return functions.find(|f| f.name == name).map(|f| f.flags);
            }
        }
        let vm = self.vm_synced();
        vm.libraries.functions.get(name).map(|c| c.info.flags)
    }

    /// Whether a script has been running for longer than `busy-reply-threshold`.
    pub fn busy(&self) -> bool {
        self.control.busy.load(Ordering::Acquire)
    }

    /// SCRIPT KILL: asks the running script to stop. False when none runs.
    pub fn kill(&self) -> bool {
        if !self.control.running.load(Ordering::Acquire) {
            return false;
        }
        self.control.kill.store(true, Ordering::Relaxed);
        true
    }

    /// Runs the cached script `run.sha`, its commands through `host`. Blocks: call it
    /// through `blocking_io::run`.
    pub fn run(&self, run: &Run, host: &mut dyn Host) -> RunEnd {
        let vm = if run.inline {
            let Some(vm) = self.vm.try_lock() else {
                return RunEnd::NotInline;
            };
            // Loading changed libraries is no work for an async worker.
            if vm.libraries.generation != self.wanted.lock().0 {
                return RunEnd::NotInline;
            }
            vm
        } else {
            self.vm_synced()
        };
        let function = if run.function {
            vm.libraries
                .functions
                .get(run.sha)
                .map(|c| c.function.clone())
        } else {
            vm.functions.get(run.sha).cloned()
        };
        let Some(function) = function else {
            let missing = if run.function {
                "ERR Function not found"
            } else {
                NOSCRIPT
            };
            return RunEnd::Reply(Reply::error(missing));
        };
        let sandbox = &vm.sandbox;
        let lua = &sandbox.lua;
        let strings = |items: &[Bytes]| -> mlua::Result<Table> {
            let strings = items.iter().map(|k| lua.create_string(k));
            lua.create_sequence_from(strings.collect::<mlua::Result<Vec<_>>>()?)
        };
        // A script sees KEYS and ARGV as globals; a function gets them as its arguments.
        let prepared = (|| -> mlua::Result<(Value, Value)> {
            let (keys, argv) = (strings(run.keys)?, strings(run.argv)?);
            lua.set_named_registry_value(RESP_KEY, 2)?;
            if run.function {
                sandbox.globals.raw_set("KEYS", Value::Nil)?;
                sandbox.globals.raw_set("ARGV", Value::Nil)?;
                Ok((Value::Table(keys), Value::Table(argv)))
            } else {
                sandbox.globals.raw_set("KEYS", keys)?;
                sandbox.globals.raw_set("ARGV", argv)?;
                Ok((Value::Nil, Value::Nil))
            }
        })();
        let arguments = match prepared {
            Ok(arguments) => arguments,
            Err(e) => return RunEnd::Reply(Reply::Error(format!("ERR {e}"))),
        };
        *self.control.function.lock() = run
            .function
            .then(|| (run.sha.to_string(), run.command.to_vec()));
        self.control.begin(run.busy_after_ms, run.inline);
        let lent = self.bridge.lend(host);
        let result = (|| -> mlua::Result<Result<Value, Table>> {
            sandbox.hooks.raw_set("stopping", Value::Nil)?;
            sandbox.hooks.raw_set("run", &vm.run_fn)?;
            sandbox.hooks.raw_set("acl_check", &vm.acl_check_fn)?;
            let result = if run.function {
                sandbox.call(&function, arguments)
            } else {
                sandbox.call(&function, ())
            };
            sandbox.hooks.raw_set("run", Value::Nil)?;
            sandbox.hooks.raw_set("acl_check", Value::Nil)?;
            Ok(result)
        })();
        drop(lent);
        let abandoned = self.bridge.abandoned();
        let killed = self.control.kill.load(Ordering::Relaxed);
        let too_long = self.control.too_long.load(Ordering::Relaxed);
        self.control.end();
        // What a big run left behind is collected at once rather than held until Lua's
        // own collector gets to it.
        if lua.used_memory() > GC_AFTER_BYTES {
            let _ = lua.gc_collect();
        }
        self.lua_bytes.store(lua.used_memory(), Ordering::Relaxed);
        if too_long {
            return RunEnd::NotInline;
        }
        if abandoned {
            return RunEnd::Abandoned;
        }
        match result {
            Ok(Ok(value)) => RunEnd::Reply(lua_to_reply(&value, run.resp3)),
            Ok(Err(raised)) if killed => {
                RunEnd::Killed(Reply::Error(error_reply_text(&raised, run.sha)))
            }
            Ok(Err(raised)) => RunEnd::Reply(Reply::Error(error_reply_text(&raised, run.sha))),
            Err(e) => RunEnd::Reply(Reply::Error(format!("ERR {e}"))),
        }
    }
}

/// The client's error reply for a script that raised `raised` (an error table, see
/// `sandbox::on_error`): `<err> script: <name>, on <source>:<line>.`
fn error_reply_text(raised: &Table, name: &str) -> String {
    let err: String = raised
        .raw_get::<mlua::String>("err")
        .map(|s| s.to_string_lossy())
        .unwrap_or_else(|_| "ERR unknown error".into());
    let source = raised.raw_get::<Option<String>>("source").ok().flatten();
    let line = raised.raw_get::<Option<i64>>("line").ok().flatten();
    match (source, line) {
        (Some(source), Some(line)) => format!("{err} script: {name}, on {source}:{line}."),
        _ => format!("{err} script: {name}."),
    }
}
