//! The two Rust functions through which a script reaches the server — behind
//! `redis.call` / `redis.pcall` (`hooks.run`) and `redis.acl_check_cmd`
//! (`hooks.acl_check`) — created once with the Lua state. They find the [`Host`] of the
//! run in progress through the [`Bridge`], which holds it only while [`Bridge::lend`]'s
//! guard lives (the length of one `Scripts::run`). Creating them per run, scoped to the
//! host's borrow, cost about a tenth of a short script's time.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, Lua, Table, Value, Variadic};
use parking_lot::Mutex;

use super::convert::reply_to_lua;
use super::engine::{Abandon, Host, RunControl, KILLED};
use super::redis_lib::resp_of;
use crate::protocol::Reply;

/// The host lent for the run in progress, and whether that run was abandoned.
#[derive(Default)]
pub(super) struct Bridge {
    host: Mutex<Option<HostPtr>>,
    abandoned: AtomicBool,
}

/// A `&mut dyn Host` with its lifetime erased, set and cleared by [`Lent`].
struct HostPtr(*mut (dyn Host + 'static));

// SAFETY: the pointer is dereferenced only by the functions below, which Lua calls on the
// thread running the script, inside `Scripts::run`, while the `Lent` that holds the
// host's exclusive borrow is alive.
unsafe impl Send for HostPtr {}

/// The host lent to the script functions; taking it back on drop.
pub(super) struct Lent<'a> {
    bridge: &'a Bridge,
    _host: PhantomData<&'a mut dyn Host>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        *self.bridge.host.lock() = None;
    }
}

impl Bridge {
    /// Lends `host` to the script functions until the guard drops.
    pub fn lend<'a>(&'a self, host: &'a mut (dyn Host + 'a)) -> Lent<'a> {
        let ptr: *mut (dyn Host + 'a) = host;
        // SAFETY: only the lifetime changes; `Lent` keeps the borrow for `'a` and clears
        // the pointer before it ends.
        let ptr: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(ptr) };
        self.abandoned.store(false, Ordering::Relaxed);
        *self.host.lock() = Some(HostPtr(ptr));
        Lent {
            bridge: self,
            _host: PhantomData,
        }
    }

    /// Whether the host abandoned the run (see [`Host::call`]).
    pub fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Runs `work` with the lent host; None when no run is in progress.
    fn with_host<R>(&self, work: impl FnOnce(&mut dyn Host) -> R) -> Option<R> {
        let ptr = self.host.lock().as_ref().map(|p| p.0)?;
        // SAFETY: see `HostPtr`; nothing else uses the host while the script runs (its
        // owner is blocked in `Scripts::run`), and no call here re-enters Lua.
        Some(work(unsafe { &mut *ptr }))
    }

    /// `hooks.run` and `hooks.acl_check` for `lua`.
    pub fn functions(
        self: &Arc<Self>,
        lua: &Lua,
        control: Arc<RunControl>,
        hooks: Table,
    ) -> mlua::Result<(Function, Function)> {
        let bridge = self.clone();
        let run = lua.create_function(move |lua, args: Variadic<Value>| {
            let argv = match command_args(lua, &args) {
                Ok(argv) => argv,
                Err(text) => return Ok((error_table(lua, text)?, true)),
            };
            match bridge.with_host(|host| host.call(argv)) {
                None => Ok((error_table(lua, "ERR no script is running")?, true)),
                Some(Ok(reply)) => {
                    let failed = matches!(reply, Reply::Error(_));
                    Ok((reply_to_lua(lua, &reply, resp_of(lua) == 3)?, failed))
                }
                Some(Err(Abandon)) => {
                    bridge.abandoned.store(true, Ordering::Relaxed);
                    control.abandon();
                    hooks.raw_set("stopping", true)?;
                    Err(mlua::Error::runtime(KILLED))
                }
            }
        })?;
        let bridge = self.clone();
        let acl_check = lua.create_function(move |lua, args: Variadic<Value>| {
            let refused =
                || error_table(lua, "ERR Invalid command passed to redis.acl_check_cmd()");
            let argv = match command_args(lua, &args) {
                Ok(argv) => argv,
                Err(text) => return Ok((error_table(lua, text)?, true)),
            };
            match bridge.with_host(|host| host.acl_check(&argv)) {
                Some(Ok(allowed)) => Ok((Value::Boolean(allowed), false)),
                Some(Err(_)) | None => Ok((refused()?, true)),
            }
        })?;
        Ok((run, acl_check))
    }
}

/// A command's arguments from `redis.call`'s: strings, and numbers as Lua writes them.
fn command_args(lua: &Lua, args: &[Value]) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call");
    }
    args.iter()
        .map(|v| match v {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(_) | Value::Number(_) => lua
                .coerce_string(v.clone())
                .ok()
                .flatten()
                .map(|s| Bytes::copy_from_slice(&s.as_bytes()))
                .ok_or("ERR Lua redis lib command arguments must be strings or integers"),
            _ => Err("ERR Lua redis lib command arguments must be strings or integers"),
        })
        .collect()
}

fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Value::Table(t))
}
