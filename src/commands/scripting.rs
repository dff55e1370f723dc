//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: the client's side of scripting.
//!
//! The EVAL family's handlers check the arguments, find or compile the script (the node's
//! cache, `crate::scripting::Scripts`) and hand back an [`Outcome::Script`]; the node runs
//! it atomically where its keys are (`node/script.rs`).

use bytes::Bytes;

use super::args::int;
use super::error::CmdError;
use super::object::help_reply;
use super::{reply, CmdResult, Ctx, Handler, Outcome};
use crate::protocol::Reply;
use crate::scripting::{ScriptFlags, NOSCRIPT};

pub static COMMANDS: &[(&str, Handler, Option<super::ApplyFn>)] = &[
    ("eval", eval, None),
    ("evalsha", evalsha, None),
    ("eval_ro", eval_ro, None),
    ("evalsha_ro", evalsha_ro, None),
    ("script", super::container, None),
    ("script|load", script_load, None),
    ("script|exists", script_exists, None),
    ("script|flush", script_flush, None),
    ("script|kill", script_kill, None),
    ("script|help", script_help, None),
];

/// A script the node is to run: the cached script (or FCALL's function), where its keys end in the arguments
/// (`args[3..3 + numkeys]`; the rest are ARGV), and how it may run.
#[derive(Debug, Clone)]
pub struct ScriptCall {
    pub sha: String,
    pub numkeys: usize,
    /// EVAL_RO, EVALSHA_RO, or a script flagged `no-writes`: writes inside fail.
    pub read_only: bool,
    pub flags: ScriptFlags,
    /// FCALL: `sha` is the name of a function of a loaded library.
    pub function: bool,
}

impl ScriptCall {
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> &'a [Bytes] {
        &args[3..3 + self.numkeys]
    }

    pub fn argv<'a>(&self, args: &'a [Bytes]) -> &'a [Bytes] {
        &args[3 + self.numkeys..]
    }
}

fn eval(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    script_call(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    script_call(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    script_call(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    script_call(ctx, args, true, true)
}

/// The number of keys an EVAL-like command declares, checked against its arguments.
pub fn numkeys(args: &[Bytes]) -> Result<usize, CmdError> {
    let n = int(&args[2])?;
    if n < 0 {
        return Err(CmdError::msg("ERR Number of keys can't be negative"));
    }
    if n as usize > args.len() - 3 {
        return Err(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(n as usize)
}

fn script_call(ctx: &mut Ctx, args: &[Bytes], by_sha: bool, ro_command: bool) -> CmdResult {
    // No SHA-1 has another length: redis-server answers that before looking further.
    if by_sha && args[1].len() != 40 {
        return Err(CmdError::msg(NOSCRIPT));
    }
    let numkeys = numkeys(args)?;
    let scripts = &ctx.shared.scripts;
    let (sha, flags) = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match scripts.get(&sha) {
            Some(cached) => (sha, cached.flags),
            None => return Err(CmdError::msg(NOSCRIPT)),
        }
    } else {
        scripts.load(&args[1]).map_err(CmdError::Message)?
    };
    if ro_command && !flags.compat && !flags.no_writes {
        return Err(CmdError::msg(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    Ok(Outcome::Script(ScriptCall {
        sha,
        numkeys,
        read_only: ro_command || flags.no_writes,
        flags,
        function: false,
    }))
}

fn script_load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (sha, _) = ctx
        .shared
        .scripts
        .load(&args[2])
        .map_err(CmdError::Message)?;
    reply(Reply::Bulk(Bytes::from(sha)))
}

fn script_exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let scripts = &ctx.shared.scripts;
    reply(Reply::Array(
        args[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Integer(i64::from(scripts.exists(&sha)))
            })
            .collect(),
    ))
}

fn script_flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match &args[2..] {
        [] => {}
        [mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        _ => {
            return Err(CmdError::msg(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            ))
        }
    }
    ctx.shared.scripts.flush();
    reply(Reply::OK)
}

/// SCRIPT KILL: stops the script running on this node. A script's writes are applied only
/// when it ends, so one that has written is stopped too, with none of them applied
/// (redis-server refuses with UNKILLABLE once a script wrote).
fn script_kill(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if !ctx.shared.scripts.kill() {
        return Err(CmdError::msg("NOTBUSY No scripts in execution right now."));
    }
    reply(Reply::OK)
}

fn script_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}
