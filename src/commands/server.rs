//! Server commands: CONFIG, FLUSHDB/FLUSHALL/SWAPDB, SAVE/BGSAVE/LASTSAVE, TIME, SHUTDOWN,
//! SLOWLOG, MEMORY USAGE, DEBUG SLEEP and INFO.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::args::{self, eq};
use super::error::{self, syntax, CmdError};
use super::object::help_reply;
use super::{
    container, propose_as_sent, reply, ApplyFn, CmdResult, CrashPoint, Ctx, Handler, Outcome,
    ShutdownRequest,
};
use crate::clock;
use crate::config::table::TLS_RELOADABLE;
use crate::keyspace::Txn;
use crate::limits::DEBUG_SLEEP_SECS_MAX;
use crate::protocol::Reply;
use crate::storage::SyncPolicy;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("info", super::info::info, None),
    ("time", time, None),
    ("lastsave", lastsave, None),
    ("save", save, None),
    ("bgsave", bgsave, None),
    ("flushdb", flush, Some(apply_flush)),
    ("flushall", flush, Some(apply_flush)),
    ("swapdb", swapdb, Some(apply_swapdb)),
    ("shutdown", shutdown, None),
    ("wait", wait, None),
    ("config", container, None),
    ("config|get", config_get, None),
    ("config|set", config_set, None),
    ("config|resetstat", config_resetstat, None),
    ("config|rewrite", config_rewrite, None),
    ("config|help", config_help, None),
    ("slowlog", container, None),
    ("slowlog|get", slowlog_get, None),
    ("slowlog|len", slowlog_len, None),
    ("slowlog|reset", slowlog_reset, None),
    ("slowlog|help", slowlog_help, None),
    ("debug", debug, None),
    ("command", super::introspection::command, None),
    ("command|count", super::introspection::count, None),
    ("command|info", super::introspection::info, None),
    ("command|docs", super::introspection::docs, None),
    ("command|getkeys", super::introspection::getkeys, None),
    (
        "command|getkeysandflags",
        super::introspection::getkeysandflags,
        None,
    ),
    ("command|list", super::introspection::list, None),
    ("command|help", super::introspection::help, None),
];

fn time(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let us = clock::now_us();
    reply(Reply::Array(vec![
        Reply::bulk((us / 1_000_000).to_string()),
        Reply::bulk((us % 1_000_000).to_string()),
    ]))
}

fn lastsave(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(
        ctx.shared.last_save_unix_secs.load(Ordering::Relaxed) as i64,
    ))
}

/// Makes everything acknowledged so far durable in the engine.
fn persist_now(ctx: &Ctx) -> Result<(), CmdError> {
    crate::blocking_io::run(|| ctx.keyspace.engine().flush())
        .map_err(|e| CmdError::Internal(e.to_string()))?;
    ctx.shared
        .last_save_unix_secs
        .store(clock::now_ms() / 1000, Ordering::Relaxed);
    ctx.shared.changes_since_save.store(0, Ordering::Relaxed);
    Ok(())
}

fn save(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    persist_now(ctx)?;
    reply(Reply::OK)
}

fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !eq(&args[1], "SCHEDULE")) {
        return Err(syntax());
    }
    persist_now(ctx)?;
    reply(Reply::Simple("Background saving started"))
}

fn flush(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.get(1) {
        None => {}
        Some(a) if eq(a, "ASYNC") || eq(a, "SYNC") => {}
        Some(_) => return Err(syntax()),
    }
    if args.len() > 2 {
        return Err(syntax());
    }
    Ok(Outcome::Propose(args[..1].to_vec()))
}

fn apply_flush(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    if eq(&args[0], "flushall") {
        for d in 0..txn.databases() {
            txn.flush_db(d)?;
        }
    } else {
        txn.flush_db(db)?;
    }
    Ok(Reply::OK)
}

fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let first = args::int_with(&args[1], "ERR invalid first DB index")?;
    let second = args::int_with(&args[2], "ERR invalid second DB index")?;
    let n = i64::from(ctx.keyspace.databases());
    if !(0..n).contains(&first) || !(0..n).contains(&second) {
        return Err(CmdError::Static(error::DB_OUT_OF_RANGE));
    }
    propose_as_sent(ctx, args)
}

fn apply_swapdb(txn: &mut Txn, _: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let a = args::int(&args[1])? as u8;
    let b = args::int(&args[2])? as u8;
    if a != b {
        txn.swap_db(a, b)?;
    }
    Ok(Reply::OK)
}

fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut nosave, mut save, mut abort) = (false, false, false);
    for a in &args[1..] {
        if eq(a, "NOSAVE") {
            nosave = true;
        } else if eq(a, "SAVE") {
            save = true;
        } else if eq(a, "NOW") || eq(a, "FORCE") {
        } else if eq(a, "ABORT") {
            abort = true;
        } else {
            return Err(syntax());
        }
    }
    if (nosave && save) || (abort && args.len() > 2) {
        return Err(syntax());
    }
    if abort {
        return Err(CmdError::msg("ERR No shutdown in progress."));
    }
    if !nosave {
        persist_now(ctx)?;
    }
    ctx.shared
        .request_shutdown(ShutdownRequest { save: !nosave });
    ctx.session.close_silently = true;
    reply(Reply::OK)
}

fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let patterns: Vec<String> = args[2..].iter().map(args::text).collect();
    let pairs = ctx.shared.config.matching(&patterns);
    reply(Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk(k.to_string()), Reply::bulk(v)))
            .collect(),
    ))
}

fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("config|set".into()));
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| (args::text(&p[0]), args::text(&p[1])))
        .collect();
    let sets_requirepass = pairs
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("requirepass"));
    if sets_requirepass && ctx.shared.acl.default_is_stored() {
        return Err(CmdError::msg(
            "ERR CONFIG SET failed (possibly related to argument 'requirepass') - the default user is set through ACL SETUSER on this cluster; change its password with ACL SETUSER default",
        ));
    }
    let config = &ctx.shared.config;
    let tls_setting = pairs
        .iter()
        .find(|(name, _)| TLS_RELOADABLE.contains(&name.to_ascii_lowercase().as_str()));
    let before: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(name, _)| crate::config::table::find(&name.to_ascii_lowercase()))
        .map(|param| (param.name.to_string(), config.get(param.name)))
        .collect();
    config.set_many(&pairs).map_err(CmdError::Message)?;
    if let Some((name, _)) = tls_setting {
        // New certificates for new connections; settings that do not load change nothing.
        if let Err(e) = crate::blocking_io::run(|| ctx.shared.tls.reload(config)) {
            tracing::warn!(error = %e, "CONFIG SET: the TLS settings do not load");
            let _ = config.set_many(&before);
            return Err(CmdError::msg(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - Unable to update TLS configuration. Check server logs.",
                name.to_ascii_lowercase()
            )));
        }
    }
    if sets_requirepass {
        ctx.shared
            .acl
            .set_requirepass(&ctx.shared.config.get("requirepass"));
    }
    if pairs
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("appendfsync"))
    {
        let policy = SyncPolicy::from_appendfsync(&ctx.shared.config.get("appendfsync"));
        ctx.keyspace.engine().set_sync_policy(policy);
        ctx.cluster.set_sync_policy(policy);
    }
    reply(Reply::OK)
}

fn config_resetstat(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.shared.stats.reset();
    for c in ctx.shared.table.every_command() {
        c.stats.reset();
    }
    reply(Reply::OK)
}

fn config_rewrite(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    crate::blocking_io::run(|| ctx.shared.config.rewrite()).map_err(CmdError::Message)?;
    reply(Reply::OK)
}

fn config_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

fn slowlog_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            args::text(&args[1])
        )));
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => {
            let n = args::int(a).ok().filter(|n| *n >= -1);
            let n = n.ok_or(CmdError::msg(
                "ERR count should be greater than or equal to -1",
            ))?;
            if n == -1 {
                usize::MAX
            } else {
                n as usize
            }
        }
    };
    let entries = ctx.shared.slowlog.newest(count, |e| {
        Reply::Array(vec![
            Reply::Integer(e.id as i64),
            Reply::Integer(e.unix_secs as i64),
            Reply::Integer(e.duration_us as i64),
            Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
            Reply::bulk(e.client_addr.clone()),
            Reply::bulk(e.client_name.clone()),
        ])
    });
    reply(Reply::Array(entries))
}

fn slowlog_len(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(ctx.shared.slowlog.len() as i64))
}

fn slowlog_reset(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.shared.slowlog.reset();
    reply(Reply::OK)
}

fn slowlog_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// DEBUG SLEEP <seconds> delays this connection only; Basalt runs other clients' commands
/// meanwhile. DEBUG CRASH-AT <point>|NONE (Basalt's own, for crash tests) makes the process
/// abort when its work reaches that point (`CrashPoint`).
fn debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let allowed = match ctx.shared.config.get("enable-debug-command").as_str() {
        "yes" => true,
        "local" => ctx.session.info.addr.ip().is_loopback(),
        _ => false,
    };
    if !allowed {
        return Err(CmdError::Static(DEBUG_NOT_ALLOWED));
    }
    if eq(&args[1], "SLEEP") && args.len() == 3 {
        let secs = args::float(&args[2])?;
        let secs = secs.clamp(0.0, DEBUG_SLEEP_SECS_MAX);
        return Ok(Outcome::Delay(Duration::from_secs_f64(secs), Reply::OK));
    }
    if eq(&args[1], "CRASH-AT") && args.len() == 3 {
        let point = match CrashPoint::parse(&args[2]) {
            Some(point) => Some(point),
            None if eq(&args[2], "NONE") => None,
            None => return Err(CmdError::msg("ERR unknown crash point")),
        };
        *ctx.shared.crash_point.lock() = point;
        return Ok(Outcome::Reply(Reply::OK));
    }
    Err(CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Basalt's DEBUG has SLEEP and CRASH-AT only.",
        args::text(&args[1])
    )))
}

/// WAIT numreplicas timeout: the node counts the replicas holding this connection's
/// writes (`node/wait.rs`).
fn wait(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let wanted = super::args::int(&args[1])?;
    let timeout = super::args::int(&args[2])
        .map_err(|_| CmdError::msg("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    Ok(Outcome::WaitReplicas(wanted, timeout as u64))
}
