//! Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET and CLIENT.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{self, eq};
use super::error::{syntax, CmdError};
use super::keys::db_index;
use super::object::help_reply;
use super::session::ReplyMode;
use super::{acl, container, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::protocol::Reply;

/// The Redis release whose behaviour Basalt matches; clients gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("ping", ping, None),
    ("echo", echo, None),
    ("hello", hello, None),
    ("auth", auth, None),
    ("select", select, None),
    ("quit", quit, None),
    ("reset", reset, None),
    ("readonly", readonly, None),
    ("readwrite", readwrite, None),
    ("asking", asking, None),
    ("client", container, None),
    ("client|id", client_id, None),
    ("client|setname", client_setname, None),
    ("client|getname", client_getname, None),
    ("client|setinfo", client_setinfo, None),
    ("client|list", client_list, None),
    ("client|info", client_info, None),
    ("client|kill", super::client_kill::client_kill, None),
    ("client|no-evict", client_no_evict, None),
    ("client|no-touch", client_no_touch, None),
    ("client|reply", client_reply, None),
    ("client|unblock", client_unblock, None),
    ("client|pause", super::client_pause::client_pause, None),
    ("client|unpause", super::client_pause::client_unpause, None),
    ("client|help", client_help, None),
];

fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    if ctx.session.in_subscribed_mode() {
        // Redis answers a subscribed RESP2 client as a message: pong and the argument.
        let msg = args.get(1).cloned().unwrap_or_default();
        return reply(Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(msg)]));
    }
    reply(match args.get(1) {
        None => Reply::Simple("PONG"),
        Some(msg) => Reply::Bulk(msg.clone()),
    })
}

fn echo(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    reply(Reply::Bulk(args[1].clone()))
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Logs the session in as `name` when `password` opens that user (enabled, and the
/// password one of its own or the user `nopass`); a failure is recorded in ACL LOG under
/// `command` (AUTH or HELLO, as Redis names it).
fn log_in(ctx: &mut Ctx, command: &str, name: &[u8], password: &[u8]) -> Result<(), CmdError> {
    let acl = &ctx.shared.acl;
    match acl.user(name).filter(|user| user.accepts(password)) {
        Some(user) => {
            ctx.session.log_in(user, acl);
            ctx.session.authenticated = true;
            Ok(())
        }
        None => {
            let (shared, session) = (ctx.shared, &*ctx.session);
            acl::log_refusal(
                shared,
                session,
                false,
                acl::log::Reason::Auth,
                command.into(),
                name,
            );
            Err(CmdError::Static(WRONGPASS))
        }
    }
}

fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (user, password) = match args.len() {
        2 => {
            if ctx.shared.acl.default_user().nopass {
                return Err(CmdError::msg(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (&b"default"[..], &args[1][..])
        }
        3 => (&args[1][..], &args[2][..]),
        _ => return Err(syntax()),
    };
    log_in(ctx, "AUTH", user, password)?;
    reply(Reply::OK)
}

/// Client names and library names: printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn set_name(ctx: &mut Ctx, name: &Bytes) -> Result<(), CmdError> {
    if !valid_name(name) {
        return Err(CmdError::Static(BAD_NAME));
    }
    *ctx.session.info.name.lock() = (!name.is_empty()).then(|| name.clone());
    Ok(())
}

fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut version = if ctx.session.resp3 { 3 } else { 2 };
    let mut i = 1;
    if let Some(v) = args.get(1) {
        let n = args::int(v)
            .map_err(|_| CmdError::msg("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&n) {
            return Err(CmdError::msg("NOPROTO unsupported protocol version"));
        }
        version = n;
        i = 2;
    }
    let mut credentials = None;
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "AUTH") && more >= 2 {
            credentials = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if eq(&args[i], "SETNAME") && more >= 1 {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Syntax error in HELLO option '{}'",
                args::text(&args[i])
            )));
        }
    }
    if let Some((user, password)) = &credentials {
        log_in(ctx, "HELLO", user, password)?;
    }
    if !ctx.session.authenticated && ctx.shared.auth_required() {
        return Err(CmdError::msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = &name {
        set_name(ctx, name)?;
    }
    ctx.session.set_resp3(version == 3);
    let bulk = |s: &str| Reply::bulk(s.to_string());
    reply(Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Integer(version)),
        (bulk("id"), Reply::Integer(ctx.session.id() as i64)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk("master")),
        (bulk("modules"), Reply::Array(vec![])),
    ]))
}

fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = db_index(&args[1], ctx.keyspace.databases())?;
    ctx.session.select(db);
    reply(Reply::OK)
}

fn quit(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.close_after_reply = true;
    reply(Reply::OK)
}

fn reset(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let s = &mut *ctx.session;
    s.select(0);
    s.set_resp3(false);
    s.reply_mode = ReplyMode::On;
    s.authenticated = !ctx.shared.auth_required();
    s.log_in(ctx.shared.acl.default_user(), &ctx.shared.acl);
    *s.info.name.lock() = None;
    s.info.no_evict.store(false, Ordering::Relaxed);
    s.info.no_touch.store(false, Ordering::Relaxed);
    s.readonly = false;
    s.multi = None;
    s.watching = None;
    s.pubsub = None;
    s.tracking = None;
    s.monitor = None;
    s.show_multi();
    for n in &s.info.subscriptions {
        n.store(0, Ordering::Relaxed);
    }
    reply(Reply::Simple("RESET"))
}

/// READONLY: reads on this connection may be served by a replica; writes and keys of
/// shards this node does not replicate get MOVED.
fn readonly(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.readonly = true;
    reply(Reply::OK)
}

fn readwrite(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.session.readonly = false;
    reply(Reply::OK)
}

/// ASKING: accepted. Slots never migrate between nodes in Basalt (a shard's replicas move
/// through Raft with its whole data), so no command ever needs it; clients send it after
/// an ASK redirect, which Basalt does not send.
fn asking(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::OK)
}

fn client_id(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(ctx.session.id() as i64))
}

fn client_setname(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_name(ctx, &args[2])?;
    reply(Reply::OK)
}

fn client_getname(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(
        ctx.session
            .info
            .name
            .lock()
            .clone()
            .map_or(Reply::Null, Reply::Bulk),
    )
}

fn client_setinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (attr, value) = (&args[2], &args[3]);
    let slot = if eq(attr, "LIB-NAME") {
        &ctx.session.info.lib_name
    } else if eq(attr, "LIB-VER") {
        &ctx.session.info.lib_ver
    } else {
        return Err(CmdError::msg(format!(
            "ERR Unrecognized option '{}'",
            args::text(attr)
        )));
    };
    if !valid_name(value) {
        let which = args::lower(attr);
        return Err(CmdError::msg(format!(
            "ERR {which} cannot contain spaces, newlines or special characters."
        )));
    }
    *slot.lock() = (!value.is_empty()).then(|| value.clone());
    reply(Reply::OK)
}

fn client_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if eq(&args[i], "TYPE") && i + 1 < args.len() {
            let t = args::lower(&args[i + 1]);
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return Err(CmdError::msg(format!(
                    "ERR Unknown client type '{}'",
                    args::text(&args[i + 1])
                )));
            }
            if t != "normal" {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if eq(&args[i], "ID") && i + 1 < args.len() {
            let mut wanted = Vec::new();
            for a in &args[i + 1..] {
                let n = args::int(a).map_err(|_| CmdError::msg("ERR Invalid client ID"))?;
                wanted.push(n as u64);
            }
            ids = Some(wanted);
            i = args.len();
        } else {
            return Err(syntax());
        }
    }
    let mut text = String::new();
    for client in ctx.shared.clients.all() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
            text.push_str(&client.describe());
            text.push('\n');
        }
    }
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

fn client_info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let mut line = ctx.session.info.describe();
    line.push('\n');
    reply(Reply::Verbatim("txt", Bytes::from(line)))
}

fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if eq(arg, "ON") {
        Ok(true)
    } else if eq(arg, "OFF") {
        Ok(false)
    } else {
        Err(syntax())
    }
}

fn client_no_evict(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.session
        .info
        .no_evict
        .store(on_off(&args[2])?, Ordering::Relaxed);
    reply(Reply::OK)
}

fn client_no_touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.session
        .info
        .no_touch
        .store(on_off(&args[2])?, Ordering::Relaxed);
    reply(Reply::OK)
}

fn client_reply(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let session = &mut *ctx.session;
    if eq(&args[2], "ON") {
        session.reply_mode = ReplyMode::On;
    } else if eq(&args[2], "OFF") {
        session.reply_mode = ReplyMode::Off;
        session.suppress_current_reply();
    } else if eq(&args[2], "SKIP") {
        if session.reply_mode != ReplyMode::Off {
            session.reply_mode = ReplyMode::SkipNext;
        }
        session.suppress_current_reply();
    } else {
        return Err(syntax());
    }
    reply(Reply::OK)
}

fn client_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    ))
}

/// Redis's error for a CLIENT subcommand given too many arguments.
pub(super) fn wrong_client_arity(args: &[Bytes]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: 1 if the client was blocked.
fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use super::blocking::Unblocked;
    if args.len() > 4 {
        return Err(wrong_client_arity(args));
    }
    let id = args::int(&args[2])?;
    let how = match args.get(3) {
        None => Unblocked::Timeout,
        Some(a) if args::eq(a, "timeout") => Unblocked::Timeout,
        Some(a) if args::eq(a, "error") => Unblocked::Error,
        Some(_) => {
            return Err(CmdError::msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let done = u64::try_from(id).is_ok_and(|id| ctx.shared.blocking.unblock(id, how));
    reply(Reply::Integer(done as i64))
}
