//! The ACL command and its subcommands. Changes to users (SETUSER, DELUSER, LOAD) are
//! changes to the cluster map: the handler works out the new rules here and the node
//! carries them through group 0 ([`Outcome::ChangeUsers`]), replying once this node has
//! applied them.

use bytes::Bytes;

use super::catalog::{catalog, category_bit, CATEGORIES};
use super::{check, file, merge_selector_args, refused_object, Denied, User};
use crate::commands::args::{self, eq};
use crate::commands::error::CmdError;
use crate::commands::object::help_reply;
use crate::commands::{container, reply, ApplyFn, CmdResult, Ctx, Handler, Outcome, UsersChange};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("acl", container, None),
    ("acl|cat", cat, None),
    ("acl|deluser", deluser, None),
    ("acl|dryrun", dryrun, None),
    ("acl|genpass", genpass, None),
    ("acl|getuser", getuser, None),
    ("acl|list", list, None),
    ("acl|load", load, None),
    ("acl|log", log, None),
    ("acl|save", save, None),
    ("acl|setuser", setuser, None),
    ("acl|users", users, None),
    ("acl|whoami", whoami, None),
    ("acl|help", help, None),
];

/// Redis's answer to a subcommand given too many arguments.
fn wrong_args(sub: &Bytes) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        args::text(sub)
    ))
}

fn bulk(s: impl Into<String>) -> Reply {
    Reply::bulk(s.into())
}

fn cat(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(name) = args.get(2) else {
        return reply(Reply::Array(CATEGORIES.iter().map(|c| bulk(*c)).collect()));
    };
    if args.len() > 3 {
        return Err(wrong_args(&args[1]));
    }
    let text = args::text(name);
    let bit = category_bit(&text)
        .ok_or_else(|| CmdError::msg(format!("ERR Unknown category '{text}'")))?;
    let catalog = catalog();
    reply(Reply::Array(
        catalog
            .in_category(bit)
            .map(|id| bulk(catalog.name(id)))
            .collect(),
    ))
}

fn check_username(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|c| *c == b' ' || *c == 0) {
        return Err(CmdError::msg(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    Ok(())
}

fn all_channels(ctx: &Ctx) -> bool {
    ctx.shared.config.get("acl-pubsub-default") == "allchannels"
}

fn setuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    check_username(name)?;
    let rules = merge_selector_args(&args[3..]).map_err(CmdError::Message)?;
    let all_channels = all_channels(ctx);
    let mut user = match ctx.shared.acl.user(name) {
        Some(known) => (*known).clone(),
        None => User::new(name.clone(), all_channels),
    };
    for rule in &rules {
        user.apply(rule, all_channels).map_err(|e| {
            CmdError::msg(format!(
                "ERR Error in ACL SETUSER modifier '{}': {e}",
                String::from_utf8_lossy(rule)
            ))
        })?;
    }
    let rules = user.rules().into_iter().map(Bytes::from).collect();
    Ok(Outcome::ChangeUsers(
        UsersChange::Set(name.clone(), rules),
        Reply::OK,
    ))
}

fn deluser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut names: Vec<Bytes> = Vec::new();
    for name in &args[2..] {
        if &name[..] == b"default" {
            return Err(CmdError::msg("ERR The 'default' user cannot be removed"));
        }
        if ctx.shared.acl.user(name).is_some() && !names.contains(name) {
            names.push(name.clone());
        }
    }
    let removed = Reply::Integer(names.len() as i64);
    if names.is_empty() {
        return reply(removed);
    }
    Ok(Outcome::ChangeUsers(UsersChange::Delete(names), removed))
}

fn dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let user =
        ctx.shared.acl.user(&args[2]).ok_or_else(|| {
            CmdError::msg(format!("ERR User '{}' not found", args::text(&args[2])))
        })?;
    let line = &args[3..];
    let not_found = || CmdError::msg(format!("ERR Command '{}' not found", args::text(&line[0])));
    let mut cmd = ctx.shared.table.get(&line[0]).ok_or_else(not_found)?;
    if !cmd.subcommands.is_empty() && line.len() >= 2 {
        cmd = cmd.subcommand(&line[1]).ok_or_else(not_found)?;
    }
    if !cmd.spec.arity_allows(line.len()) {
        return Err(CmdError::WrongArity(cmd.spec.name.to_string()));
    }
    reply(match check(&user, cmd, line) {
        Ok(()) => Reply::OK,
        Err(denied) => {
            let (_, object) = refused_object(&denied, cmd, line);
            bulk(match denied {
                Denied::Command => {
                    format!("This user has no permissions to run the '{object}' command")
                }
                Denied::Key(_) => {
                    format!("This user has no permissions to access the '{object}' key")
                }
                Denied::Channel(_) => {
                    format!("This user has no permissions to access the '{object}' channel")
                }
            })
        }
    })
}

fn genpass(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match args::int(a).map_err(|_| CmdError::msg("ERR value is not an integer or out of range"))? {
            n if (1..=4096).contains(&n) => n as usize,
            _ => return Err(CmdError::msg(
                "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
            )),
        },
    };
    if args.len() > 3 {
        return Err(wrong_args(&args[1]));
    }
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| CmdError::msg("ERR could not read random bytes"))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    reply(bulk(&hex[..chars]))
}

fn getuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.shared.acl.user(&args[2]) else {
        return reply(Reply::Null);
    };
    let root = &user.selectors[0];
    let selector_map = |s: &super::selector::Selector| {
        Reply::Map(vec![
            (bulk("commands"), bulk(s.describe_commands())),
            (bulk("keys"), bulk(s.describe_keys())),
            (bulk("channels"), bulk(s.describe_channels())),
        ])
    };
    reply(Reply::Map(vec![
        (
            bulk("flags"),
            Reply::Array(user.flags().into_iter().map(bulk).collect()),
        ),
        (
            bulk("passwords"),
            Reply::Array(user.passwords.iter().map(|p| bulk(p.clone())).collect()),
        ),
        (bulk("commands"), bulk(root.describe_commands())),
        (bulk("keys"), bulk(root.describe_keys())),
        (bulk("channels"), bulk(root.describe_channels())),
        (
            bulk("selectors"),
            Reply::Array(user.selectors[1..].iter().map(selector_map).collect()),
        ),
    ]))
}

fn list(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| bulk(u.describe()))
            .collect(),
    ))
}

fn users(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| Reply::Bulk(u.name.clone()))
            .collect(),
    ))
}

fn whoami(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(Reply::Bulk(ctx.session.user.name.clone()))
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &Ctx) -> Result<std::path::PathBuf, CmdError> {
    let path = ctx.shared.config.get("aclfile");
    if path.is_empty() {
        return Err(CmdError::Static(NO_ACLFILE));
    }
    Ok(path.into())
}

fn load(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let path = aclfile(ctx)?;
    let users = crate::blocking_io::run(|| file::read(&path))
        .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    Ok(Outcome::ChangeUsers(UsersChange::Replace(users), Reply::OK))
}

fn save(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let path = aclfile(ctx)?;
    let users = ctx.shared.acl.users();
    crate::blocking_io::run(|| file::write(&path, &users)).map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "ACL SAVE failed");
        CmdError::msg("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
    })?;
    reply(Reply::OK)
}

fn log(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        None => None,
        Some(a) if eq(a, "RESET") => {
            ctx.shared.acl.log.reset();
            return reply(Reply::OK);
        }
        Some(a) => match args::int(a) {
            // Redis lists nothing for a negative count.
            Ok(n) => Some(n.max(0) as usize),
            Err(_) => return Err(CmdError::msg("ERR value is not an integer or out of range")),
        },
    };
    if args.len() > 3 {
        return Err(wrong_args(&args[1]));
    }
    reply(ctx.shared.acl.log.reply(count))
}

fn help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    ))
}
