//! Client-side caching: CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR and CLIENT
//! TRACKINGINFO, and a connection's tracking state.
//!
//! A tracking client in the default mode is told when a key it read changes; in BCAST mode,
//! when any key under a prefix it follows changes. OPTIN and OPTOUT make the default mode
//! remember keys only after `CLIENT CACHING yes` (or not after `CLIENT CACHING no`);
//! NOLOOP leaves out the client's own writes; REDIRECT sends the invalidations to another
//! client (a RESP2 one receives them on `__redis__:invalidate`). The node remembers the keys
//! before a read runs (`node::dispatch`) and sends invalidations as writes apply
//! (`table.rs`). Replies and errors are redis-server 7.0's.

pub mod table;

use std::sync::Arc;

use bytes::Bytes;

use self::table::{Mode, TrackingTable};
use super::args::{self, eq};
use super::clients::{ClientInfo, TrackingShown};
use super::error::{syntax, CmdError};
use super::{reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("client|tracking", client_tracking, None),
    ("client|caching", client_caching, None),
    ("client|getredir", client_getredir, None),
    ("client|trackinginfo", client_trackinginfo, None),
];

/// A connection's tracking, while on; dropping it (CLIENT TRACKING OFF, RESET, the
/// connection closing) turns tracking off in the table and in CLIENT LIST.
pub struct Tracking {
    table: Arc<TrackingTable>,
    client: Arc<ClientInfo>,
    mode: Mode,
    optin: bool,
    optout: bool,
    /// BCAST: the prefixes followed, in the order given.
    prefixes: Vec<Bytes>,
    /// CLIENT CACHING yes/no: applies to the next command (kept through a transaction).
    caching: bool,
}

impl Tracking {
    /// Whether a read-only command's keys are remembered now (default mode, and OPTIN /
    /// OPTOUT as CLIENT CACHING said).
    pub fn remembers_reads(&self) -> bool {
        let wanted = if self.optin {
            self.caching
        } else {
            !(self.optout && self.caching)
        };
        !self.mode.bcast && wanted
    }

    /// Whether the client follows keys by prefix (BCAST) rather than by reading them.
    pub fn bcast(&self) -> bool {
        self.mode.bcast
    }

    /// Whether this client's own writes are left out of its invalidations.
    pub fn noloop(&self) -> bool {
        self.mode.noloop
    }

    /// After each command: CLIENT CACHING's flag ends, as in Redis, unless that command
    /// was a CLIENT command or the connection is in MULTI (it lasts through EXEC).
    pub fn after_command(&mut self, was_client: bool, in_multi: bool) {
        if !was_client && !in_multi {
            self.caching = false;
        }
    }

    fn show(&self, ctx: &Ctx) {
        let mut shown = ctx.session.info.tracking.lock();
        shown.on = true;
        shown.bcast = self.mode.bcast;
        shown.redirect = self.mode.redirect;
        shown.broken_redirect = false;
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        self.table.disable(self.client.id, &self.prefixes);
        *self.client.tracking.lock() = TrackingShown::default();
    }
}

/// CLIENT TRACKING's options as given.
#[derive(Default)]
struct Options {
    redirect: u64,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: Vec<Bytes>,
}

fn parse_options(ctx: &Ctx, args: &[Bytes]) -> Result<Options, CmdError> {
    let mut o = Options::default();
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let a = &args[i];
        if eq(a, "redirect") && more {
            i += 1;
            if o.redirect != 0 {
                return Err(CmdError::msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = args::int(&args[i])?;
            let known = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.shared.clients.get(id))
                .is_some_and(|c| !c.is_killed());
            if !known {
                return Err(CmdError::msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            o.redirect = id as u64;
        } else if eq(a, "bcast") {
            o.bcast = true;
        } else if eq(a, "optin") {
            o.optin = true;
        } else if eq(a, "optout") {
            o.optout = true;
        } else if eq(a, "noloop") {
            o.noloop = true;
        } else if eq(a, "prefix") && more {
            i += 1;
            o.prefixes.push(args[i].clone());
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    Ok(o)
}

fn overlaps(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Redis's rule: a client's prefixes never overlap, neither with those it follows already
/// nor among those given.
fn check_prefixes(current: &[Bytes], given: &[Bytes]) -> Result<(), CmdError> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    for (i, p) in given.iter().enumerate() {
        if let Some(existing) = current.iter().find(|e| overlaps(e, p)) {
            return Err(CmdError::msg(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(existing)
            )));
        }
        if let Some(other) = given[i + 1..].iter().find(|o| overlaps(o, p)) {
            return Err(CmdError::msg(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(other)
            )));
        }
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
fn client_tracking(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let o = parse_options(ctx, args)?;
    if eq(&args[2], "off") {
        ctx.session.tracking = None;
        return reply(Reply::OK);
    }
    if !eq(&args[2], "on") {
        return Err(syntax());
    }
    if !o.bcast && !o.prefixes.is_empty() {
        return Err(CmdError::msg(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let current = ctx.session.tracking.as_ref();
    if current.is_some_and(|t| t.mode.bcast != o.bcast) {
        return Err(CmdError::msg(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if o.bcast && (o.optin || o.optout) {
        return Err(CmdError::msg(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if o.optin && o.optout {
        return Err(CmdError::msg(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if current.is_some_and(|t| (o.optin && t.optout) || (o.optout && t.optin)) {
        return Err(CmdError::msg(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    let mut prefixes = current.map(|t| t.prefixes.clone()).unwrap_or_default();
    if o.bcast {
        check_prefixes(&prefixes, &o.prefixes)?;
    }
    // BCAST without a prefix follows every key.
    let added: Vec<Bytes> = match (o.bcast, o.prefixes.is_empty()) {
        (true, true) => vec![Bytes::new()],
        (true, false) => o.prefixes,
        (false, _) => Vec::new(),
    };
    for p in &added {
        if !prefixes.contains(p) {
            prefixes.push(p.clone());
        }
    }
    let mode = Mode {
        redirect: o.redirect,
        bcast: o.bcast,
        noloop: o.noloop,
    };
    ctx.shared.tracking.enable(&ctx.session.info, &mode, &added);
    match ctx.session.tracking.as_mut() {
        Some(t) => {
            t.mode = mode;
            t.optin = o.optin;
            t.optout = o.optout;
            t.prefixes = prefixes;
        }
        None => {
            ctx.session.tracking = Some(Tracking {
                table: ctx.shared.tracking.clone(),
                client: ctx.session.info.clone(),
                mode,
                optin: o.optin,
                optout: o.optout,
                prefixes,
                caching: false,
            })
        }
    }
    if let Some(t) = &ctx.session.tracking {
        t.show(ctx);
    }
    reply(Reply::OK)
}

/// CLIENT CACHING YES|NO: whether the next command's keys are remembered.
fn client_caching(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(t) = ctx
        .session
        .tracking
        .as_mut()
        .filter(|t| t.optin || t.optout)
    else {
        return Err(CmdError::msg(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if eq(&args[2], "yes") {
        if !t.optin {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if eq(&args[2], "no") {
        if !t.optout {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(syntax());
    }
    t.caching = true;
    reply(Reply::OK)
}

/// CLIENT GETREDIR: the client invalidations go to; 0 for this one, -1 when not tracking.
fn client_getredir(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let id = ctx
        .session
        .tracking
        .as_ref()
        .map_or(-1, |t| t.mode.redirect as i64);
    reply(Reply::Integer(id))
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes.
fn client_trackinginfo(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let t = ctx.session.tracking.as_ref();
    let mut flags = Vec::new();
    let (redirect, prefixes) = match t {
        None => {
            flags.push("off");
            (-1, Vec::new())
        }
        Some(t) => {
            flags.push("on");
            if t.mode.bcast {
                flags.push("bcast");
            }
            if t.optin {
                flags.push("optin");
                if t.caching {
                    flags.push("caching-yes");
                }
            }
            if t.optout {
                flags.push("optout");
                if t.caching {
                    flags.push("caching-no");
                }
            }
            if t.mode.noloop {
                flags.push("noloop");
            }
            if ctx.session.info.tracking.lock().broken_redirect {
                flags.push("broken_redirect");
            }
            (t.mode.redirect as i64, t.prefixes.clone())
        }
    };
    reply(Reply::Map(vec![
        (
            Reply::bulk("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk).collect()),
        ),
        (Reply::bulk("redirect"), Reply::Integer(redirect)),
        (
            Reply::bulk("prefixes"),
            Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect()),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn prefixes_may_not_overlap_existing_or_given_ones() {
        assert!(check_prefixes(&[b("a")], &[b("b"), b("c")]).is_ok());
        let existing = check_prefixes(&[b("x")], &[b("xy")]).unwrap_err();
        assert!(existing
            .to_string()
            .contains("Prefix 'xy' overlaps with an existing prefix 'x'"));
        let given = check_prefixes(&[], &[b("a"), b("ab")]).unwrap_err();
        assert!(given
            .to_string()
            .contains("Prefix 'a' overlaps with another provided prefix 'ab'"));
    }
}
