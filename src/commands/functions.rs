//! FUNCTION and FCALL: function libraries. A library loaded through any node is kept in
//! the cluster map (`Outcome::ChangeLibraries`), so every node has it, across restarts and
//! failovers; each node's Lua state loads what the map holds (`scripting::libraries`).
//! FCALL runs a function as EVAL runs a script (`Outcome::Script`).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::dump::{dump_libraries, restore_libraries};
use super::error::CmdError;
use super::object::help_reply;
use super::scripting::{numkeys, ScriptCall};
use super::{reply, CmdResult, Ctx, Handler, LibrariesChange, Outcome};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<super::ApplyFn>)] = &[
    ("fcall", fcall, None),
    ("fcall_ro", fcall_ro, None),
    ("function", super::container, None),
    ("function|load", load, None),
    ("function|delete", delete, None),
    ("function|flush", flush, None),
    ("function|kill", kill, None),
    ("function|list", list, None),
    ("function|stats", stats, None),
    ("function|dump", dump, None),
    ("function|restore", restore, None),
    ("function|help", help, None),
];

fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    call(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    call(ctx, args, true)
}

fn call(ctx: &mut Ctx, args: &[Bytes], ro_command: bool) -> CmdResult {
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(flags) = ctx.shared.scripts.function_flags(&name) else {
        return Err(CmdError::msg("ERR Function not found"));
    };
    if crate::protocol::decode::parse_i64(&args[2]).is_none() {
        return Err(CmdError::msg("ERR Bad number of keys provided"));
    }
    let numkeys = numkeys(args)?;
    if ro_command && !flags.no_writes {
        return Err(CmdError::msg(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    Ok(Outcome::Script(ScriptCall {
        sha: name,
        numkeys,
        read_only: ro_command || flags.no_writes,
        flags,
        function: true,
    }))
}

fn load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let replace = match &args[2..] {
        [_] => false,
        [option, _] if option.eq_ignore_ascii_case(b"replace") => true,
        [option, _] => {
            return Err(CmdError::msg(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(option)
            )))
        }
        _ => return Err(CmdError::WrongArity("function|load".into())),
    };
    let code = args[args.len() - 1].clone();
    let name = ctx
        .shared
        .scripts
        .check_library(&code, replace)
        .map_err(CmdError::Message)?;
    let reply = Reply::Bulk(Bytes::from(name.clone()));
    Ok(Outcome::ChangeLibraries(
        LibrariesChange::Set(Bytes::from(name), code),
        reply,
    ))
}

fn delete(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if !ctx.shared.scripts.libraries().contains_key(&name) {
        return Err(CmdError::msg("ERR Library not found"));
    }
    Ok(Outcome::ChangeLibraries(
        LibrariesChange::Delete(args[2].clone()),
        Reply::OK,
    ))
}

fn flush(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match &args[2..] {
        [] => {}
        [mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        _ => {
            return Err(CmdError::msg(
                "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
            ))
        }
    }
    Ok(Outcome::ChangeLibraries(
        LibrariesChange::Replace(BTreeMap::new()),
        Reply::OK,
    ))
}

/// FUNCTION KILL: as SCRIPT KILL (a function that wrote is stopped too, none of its
/// writes applied).
fn kill(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if !ctx.shared.scripts.kill() {
        return Err(CmdError::msg("NOTBUSY No scripts in execution right now."));
    }
    reply(Reply::OK)
}

fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if arg.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            i += 1;
            let Some(p) = args.get(i) else {
                return Err(CmdError::msg("ERR library name argument was not given"));
            };
            pattern = Some(p.clone());
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (name, library) in ctx.shared.scripts.libraries() {
        if let Some(p) = &pattern {
            if !crate::glob::glob_match(p, name.as_bytes(), false) {
                continue;
            }
        }
        let functions = library
            .functions
            .iter()
            .map(|f| {
                Reply::Map(vec![
                    (
                        Reply::bulk("name"),
                        Reply::Bulk(Bytes::from(f.name.clone())),
                    ),
                    (
                        Reply::bulk("description"),
                        f.description
                            .clone()
                            .map_or(Reply::Null, |d| Reply::Bulk(Bytes::from(d))),
                    ),
                    (
                        Reply::bulk("flags"),
                        Reply::Set(f.flags.names().into_iter().map(Reply::Simple).collect()),
                    ),
                ])
            })
            .collect();
        let mut fields = vec![
            (Reply::bulk("library_name"), Reply::Bulk(Bytes::from(name))),
            (Reply::bulk("engine"), Reply::bulk("LUA")),
            (Reply::bulk("functions"), Reply::Array(functions)),
        ];
        if with_code {
            fields.push((Reply::bulk("library_code"), Reply::Bulk(library.code)));
        }
        out.push(Reply::Map(fields));
    }
    reply(Reply::Array(out))
}

fn stats(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let libraries = ctx.shared.scripts.libraries();
    let functions: usize = libraries.values().map(|l| l.functions.len()).sum();
    let running = match ctx.shared.scripts.running_function() {
        Some((name, command, duration_ms)) => Reply::Map(vec![
            (Reply::bulk("name"), Reply::Bulk(Bytes::from(name))),
            (
                Reply::bulk("command"),
                Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
            ),
            (
                Reply::bulk("duration_ms"),
                Reply::Integer(duration_ms as i64),
            ),
        ]),
        None => Reply::Null,
    };
    reply(Reply::Map(vec![
        (Reply::bulk("running_script"), running),
        (
            Reply::bulk("engines"),
            Reply::Map(vec![(
                Reply::bulk("LUA"),
                Reply::Map(vec![
                    (
                        Reply::bulk("libraries_count"),
                        Reply::Integer(libraries.len() as i64),
                    ),
                    (
                        Reply::bulk("functions_count"),
                        Reply::Integer(functions as i64),
                    ),
                ]),
            )]),
        ),
    ]))
}

fn dump(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let codes: Vec<Bytes> = ctx
        .shared
        .scripts
        .libraries()
        .into_values()
        .map(|l| l.code)
        .collect();
    reply(Reply::Bulk(dump_libraries(&codes)))
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: every library of the payload checked
/// against the set it joins, then the new set at once.
fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy =
        match args.get(3) {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(_) => return Err(CmdError::msg(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    if args.len() > 4 {
        return Err(CmdError::WrongArity("function|restore".into()));
    }
    let codes = restore_libraries(&args[2]).map_err(|e| match e {
        super::dump::PayloadError::VersionOrChecksum => CmdError::msg(e.to_string()),
        _ => CmdError::msg("ERR given type is not a function"),
    })?;
    let scripts = &ctx.shared.scripts;
    let mut set: BTreeMap<Bytes, Bytes> = match policy {
        Policy::Flush => BTreeMap::new(),
        _ => scripts
            .libraries()
            .into_iter()
            .map(|(name, l)| (Bytes::from(name), l.code))
            .collect(),
    };
    let mut restored = BTreeMap::new();
    for code in codes {
        let (name, _) =
            crate::scripting::functions::parse_metadata(&code).map_err(CmdError::Message)?;
        let name = Bytes::from(name);
        if policy == Policy::Append && set.contains_key(&name) {
            return Err(CmdError::msg(format!(
                "ERR Library {} already exists",
                String::from_utf8_lossy(&name)
            )));
        }
        restored.insert(name, code);
    }
    set.extend(restored);
    scripts.check_set(&set).map_err(CmdError::Message)?;
    Ok(Outcome::ChangeLibraries(
        LibrariesChange::Replace(set),
        Reply::OK,
    ))
}

fn help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}
