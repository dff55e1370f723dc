//! CLIENT KILL, in its old (`ip:port`) and filter (`ID … ADDR … SKIPME …`) forms.

use bytes::Bytes;

use super::args::{self, eq};
use super::error::{syntax, CmdError};
use super::{reply, CmdResult, Ctx};
use crate::protocol::Reply;

#[derive(Default)]
struct Filter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<Bytes>,
    /// TYPE other than normal matches nobody: Basalt has no replica or pub/sub clients yet.
    matches_nobody: bool,
    skip_me: bool,
}

pub fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        let addr = args::text(&args[2]);
        let victim = ctx
            .shared
            .clients
            .all()
            .into_iter()
            .find(|c| c.addr.to_string() == addr);
        return match victim {
            Some(c) => {
                c.kill();
                reply(Reply::OK)
            }
            None => Err(CmdError::msg("ERR No such client")),
        };
    }
    let filter = parse(ctx, &args[2..])?;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        let selected = !filter.matches_nobody
            && filter.id.is_none_or(|id| id == c.id)
            && filter
                .addr
                .as_ref()
                .is_none_or(|a| *a == c.addr.to_string())
            && filter
                .laddr
                .as_ref()
                .is_none_or(|a| *a == c.laddr.to_string())
            && filter.user.as_ref().is_none_or(|u| *u == *c.user.lock())
            && !(filter.skip_me && c.id == ctx.session.id());
        if selected {
            c.kill();
            killed += 1;
        }
    }
    reply(Reply::Integer(killed))
}

fn parse(ctx: &Ctx, pairs: &[Bytes]) -> Result<Filter, CmdError> {
    let mut filter = Filter {
        skip_me: true,
        ..Filter::default()
    };
    if !pairs.len().is_multiple_of(2) {
        return Err(syntax());
    }
    for pair in pairs.chunks(2) {
        let (option, value) = (&pair[0], &pair[1]);
        if eq(option, "ID") {
            let id = args::int(value)
                .ok()
                .filter(|n| *n > 0)
                .ok_or(CmdError::msg("ERR client-id should be greater than 0"))?;
            filter.id = Some(id as u64);
        } else if eq(option, "TYPE") {
            let t = args::lower(value);
            match t.as_str() {
                "normal" => {}
                "master" | "replica" | "slave" | "pubsub" => filter.matches_nobody = true,
                _ => {
                    return Err(CmdError::msg(format!(
                        "ERR Unknown client type '{}'",
                        args::text(value)
                    )))
                }
            }
        } else if eq(option, "ADDR") {
            filter.addr = Some(args::text(value));
        } else if eq(option, "LADDR") {
            filter.laddr = Some(args::text(value));
        } else if eq(option, "USER") {
            if ctx.shared.acl.user(value).is_none() {
                return Err(CmdError::msg(format!(
                    "ERR No such user '{}'",
                    args::text(value)
                )));
            }
            filter.user = Some(value.clone());
        } else if eq(option, "SKIPME") {
            filter.skip_me = if eq(value, "YES") {
                true
            } else if eq(value, "NO") {
                false
            } else {
                return Err(syntax());
            };
        } else {
            return Err(syntax());
        }
    }
    Ok(filter)
}
