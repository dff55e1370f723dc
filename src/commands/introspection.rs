//! COMMAND and its subcommands, generated from the command table.

use bytes::Bytes;

use super::args::{self, eq};
use super::error::CmdError;
use super::key_specs::{self, KeyFlags};
use super::object::help_reply;
use super::spec::{docs_reply, info_reply};
use super::table::Command;
use super::{reply, CmdResult, Ctx};
use crate::glob::glob_match;
use crate::protocol::Reply;

fn info_of(cmd: &Command) -> Reply {
    let subs: Vec<_> = cmd.subcommands.iter().map(|s| s.spec).collect();
    info_reply(cmd.spec, &subs)
}

fn docs_of(cmd: &Command) -> Reply {
    let subs: Vec<_> = cmd.subcommands.iter().map(|s| s.spec).collect();
    docs_reply(cmd.spec, &subs)
}

pub fn command(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Array(
        ctx.shared
            .table
            .commands()
            .into_iter()
            .map(info_of)
            .collect(),
    ))
}

pub fn count(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Integer(ctx.shared.table.commands().len() as i64))
}

pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return command(ctx, args);
    }
    let items = args[2..]
        .iter()
        .map(|n| ctx.shared.table.find(n).map_or(Reply::Null, info_of));
    reply(Reply::Array(items.collect()))
}

pub fn docs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let commands: Vec<&Command> = if args.len() == 2 {
        ctx.shared.table.commands()
    } else {
        args[2..]
            .iter()
            .filter_map(|n| ctx.shared.table.find(n))
            .collect()
    };
    let pairs = commands
        .into_iter()
        .map(|c| (Reply::bulk(c.spec.name.to_string()), docs_of(c)));
    reply(Reply::Map(pairs.collect()))
}

/// The keys COMMAND GETKEYS / GETKEYSANDFLAGS find in `args[2..]`, with their flags.
fn keys_of_target(ctx: &Ctx, args: &[Bytes]) -> Result<Vec<(Bytes, KeyFlags)>, CmdError> {
    let target = &args[2..];
    let Some(mut cmd) = ctx.shared.table.get(&target[0]) else {
        return Err(CmdError::msg("ERR Invalid command specified"));
    };
    if !cmd.subcommands.is_empty() && target.len() > 1 {
        cmd = cmd
            .subcommand(&target[1])
            .ok_or(CmdError::msg("ERR Invalid command specified"))?;
    }
    // Channels of sharded pub/sub are found by key specs marked `not_key`: routing uses
    // them, COMMAND GETKEYS does not (as Redis).
    let is_key = |flags: KeyFlags| !flags.contains(&"not_key");
    if !cmd.spec.key_specs.iter().any(|k| is_key(k.flags)) {
        return Err(CmdError::msg("ERR The command has no key arguments"));
    }
    let arity = cmd.spec.arity;
    let arity_ok = if arity >= 0 {
        target.len() as i64 == arity
    } else {
        target.len() as i64 >= -arity
    };
    if !arity_ok {
        return Err(CmdError::msg(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys: Vec<(Bytes, KeyFlags)> = key_specs::keys_of(cmd.spec, target)
        .filter(|k| is_key(k.flags))
        .map(|k| {
            (
                target[k.index].clone(),
                key_specs::flags_of(cmd.spec, target, k),
            )
        })
        .collect();
    if keys.is_empty() && !cmd.spec.has_flag("no_mandatory_keys") {
        return Err(CmdError::msg("ERR Invalid arguments specified for command"));
    }
    Ok(keys)
}

pub fn getkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = keys_of_target(ctx, args)?;
    reply(Reply::Array(
        keys.into_iter().map(|(k, _)| Reply::Bulk(k)).collect(),
    ))
}

/// COMMAND GETKEYSANDFLAGS: each key with the flags of its key spec (for SET and
/// BITFIELD, whose flags depend on their options, the flags of this call).
pub fn getkeysandflags(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = keys_of_target(ctx, args)?;
    reply(Reply::Array(
        keys.into_iter()
            .map(|(k, flags)| {
                let flags = flags.iter().map(|f| Reply::Status(f.to_string())).collect();
                Reply::Array(vec![Reply::Bulk(k), Reply::Array(flags)])
            })
            .collect(),
    ))
}

pub fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enum Filter {
        All,
        AclCat(String),
        Pattern(Bytes),
        Module,
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if eq(&args[2], "FILTERBY") => {
            if eq(&args[3], "ACLCAT") {
                Filter::AclCat(format!("@{}", args::lower(&args[4])))
            } else if eq(&args[3], "PATTERN") {
                Filter::Pattern(args[4].clone())
            } else if eq(&args[3], "MODULE") {
                Filter::Module
            } else {
                return Err(super::error::syntax());
            }
        }
        _ => return Err(super::error::syntax()),
    };
    let mut names = Vec::new();
    for c in ctx.shared.table.every_command() {
        let keep = match &filter {
            Filter::All => true,
            Filter::AclCat(cat) => c.spec.acl_categories.contains(&cat.as_str()),
            Filter::Pattern(p) => glob_match(p, c.spec.name.as_bytes(), true),
            Filter::Module => false,
        };
        if keep {
            names.push(Reply::bulk(c.spec.name.to_string()));
        }
    }
    reply(Reply::Array(names))
}

pub fn help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}
