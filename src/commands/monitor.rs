//! MONITOR: the connections that watch every command this node runs for its clients, and
//! the line each command becomes for them (`+<secs>.<micros> [<db> <client>] "arg" …`).
//!
//! A command is fed once it has run, whatever its reply, as redis-server 7 feeds it (a
//! command refused before it runs — unknown, wrong arity, no permission — is not).
//! EVAL, EVALSHA and FCALL (flagged `skip_monitor`) are fed as they start, so the commands
//! their script calls (`[<db> lua]`) follow them. Administrative commands are never fed,
//! and passwords (AUTH, HELLO's AUTH, MIGRATE's AUTH and AUTH2) show as `(redacted)`.
//!
//! Basalt's own part: a command another node forwarded here is fed by the node its client
//! is connected to, not again here (its client is not this node's); the commands a script
//! calls are fed by the node that runs the script. Lines go to each
//! monitor's mailbox under the normal clients' output limit, so a monitor that does not
//! read is cut rather than slowing the node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;

use super::clients::ClientInfo;
use super::error::CmdError;
use super::mailbox::{Delivery, Limit};
use super::table::Command;
use super::{reply, ApplyFn, CmdResult, Ctx, Handler};
use super::{Session, Shared};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[("monitor", monitor, None)];

/// What a monitoring client gets for a command that reaches the keyspace (Redis treats a
/// monitor as a replica, which may not).
pub const KEYSPACE_REFUSED: &str = "ERR Replica can't interact with the keyspace";

/// MONITOR: from now on the connection receives every command this node runs. A second
/// MONITOR is ignored without a reply, as in Redis.
fn monitor(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.in_transaction() {
        return Err(CmdError::Static(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    if ctx.session.monitor.is_some() {
        ctx.session.suppress_current_reply();
        return reply(Reply::OK);
    }
    let watching = ctx.shared.monitors.watch(&ctx.session.info);
    ctx.session.monitor = Some(watching);
    reply(Reply::OK)
}

/// Who ran a command, as its line names it.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A client, by its address.
    Client(&'a SocketAddr),
    /// A script's `redis.call` or `redis.pcall`.
    Script,
}

/// The monitoring connections of this node.
#[derive(Default)]
pub struct Monitors {
    clients: RwLock<Vec<Arc<ClientInfo>>>,
    /// `clients.len()`, read without the lock on every command.
    count: AtomicUsize,
}

impl Monitors {
    /// Adds `client` to the monitors until the returned guard is dropped.
    pub fn watch(self: &Arc<Self>, client: &Arc<ClientInfo>) -> Monitoring {
        let mut clients = self.clients.write();
        clients.push(client.clone());
        self.count.store(clients.len(), Ordering::Release);
        client.monitoring.store(true, Ordering::Relaxed);
        Monitoring {
            monitors: self.clone(),
            client: client.clone(),
        }
    }

    /// Whether any connection monitors (one atomic load).
    pub fn watched(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Sends the line of command `args`, run in database `db` by `source`, to every
    /// monitor (one under `limit` or cut).
    pub fn feed(&self, db: u8, source: Source, args: &[Bytes], limit: Limit) {
        let clients = self.clients.read();
        if clients.is_empty() {
            return;
        }
        let line = line(crate::clock::now_us(), db, source, args);
        for client in clients.iter() {
            client.deliver(Delivery::Monitor(line.clone()), limit);
        }
    }

    fn remove(&self, client: &Arc<ClientInfo>) {
        let mut clients = self.clients.write();
        clients.retain(|c| !Arc::ptr_eq(c, client));
        self.count.store(clients.len(), Ordering::Release);
        client.monitoring.store(false, Ordering::Relaxed);
    }
}

/// A connection's place among the monitors; dropping it (RESET, the connection's end)
/// stops the feed.
pub struct Monitoring {
    monitors: Arc<Monitors>,
    client: Arc<ClientInfo>,
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        self.monitors.remove(&self.client);
    }
}

/// Whether `cmd` is fed once it has run: not an administrative command, and not one that
/// feeds itself as it starts (`skip_monitor`: EVAL and its kin).
pub fn fed_after_run(cmd: &Command) -> bool {
    !cmd.spec.has_flag("admin") && !cmd.spec.has_flag("skip_monitor")
}

/// Feeds `session`'s command `args` as it starts, if it is one of those fed then (EVAL,
/// EVALSHA, FCALL and their read-only forms: their script's calls follow them).
pub fn feed_starting(shared: &Shared, cmd: &Command, session: &Session, args: &[Bytes]) {
    if shared.monitors.watched() && cmd.spec.has_flag("skip_monitor") {
        feed_client(shared, session, args);
    }
}

/// Feeds `session`'s command `args` once it has run, unless it is not shown then.
pub fn feed_ran(shared: &Shared, cmd: &Command, session: &Session, args: &[Bytes]) {
    if shared.monitors.watched() && fed_after_run(cmd) {
        feed_client(shared, session, args);
    }
}

/// A client's command, in the session's database. A command another node forwarded is
/// that node's to show.
fn feed_client(shared: &Shared, session: &Session, args: &[Bytes]) {
    if session.forward_hops > 0 {
        return;
    }
    let source = Source::Client(&session.info.addr);
    let limit = shared.config.output_limit();
    shared.monitors.feed(session.db, source, args, limit);
}

/// Whether a monitoring client is refused `cmd`: it reads, writes or may replicate.
pub fn refused_to_monitor(cmd: &Command) -> bool {
    ["readonly", "write", "may_replicate"]
        .iter()
        .any(|flag| cmd.spec.has_flag(flag))
}

/// The line of one command, encoded as the status reply monitors receive.
fn line(now_us: u64, db: u8, source: Source, args: &[Bytes]) -> Bytes {
    let size: usize = args.iter().map(|a| a.len() + 3).sum();
    let mut out = BytesMut::with_capacity(size + 48);
    out.put_u8(b'+');
    let (secs, micros) = (now_us / 1_000_000, now_us % 1_000_000);
    match source {
        Source::Client(addr) => {
            out.put_slice(format!("{secs}.{micros:06} [{db} {addr}] ").as_bytes())
        }
        Source::Script => out.put_slice(format!("{secs}.{micros:06} [{db} lua] ").as_bytes()),
    }
    let redacted = redacted_positions(args);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.put_u8(b' ');
        }
        if redacted.contains(&i) {
            quote(&mut out, b"(redacted)");
        } else {
            quote(&mut out, arg);
        }
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The arguments that hold passwords: every argument of AUTH; the two after HELLO's AUTH;
/// the one after MIGRATE's AUTH and the two after its AUTH2.
fn redacted_positions(args: &[Bytes]) -> Vec<usize> {
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"auth") {
        return (1..args.len()).collect();
    }
    let (hello, migrate) = (
        name.eq_ignore_ascii_case(b"hello"),
        name.eq_ignore_ascii_case(b"migrate"),
    );
    if !hello && !migrate {
        return Vec::new();
    }
    let mut positions = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let follows = match &args[i] {
            a if a.eq_ignore_ascii_case(b"auth") => {
                if hello {
                    2
                } else {
                    1
                }
            }
            a if migrate && a.eq_ignore_ascii_case(b"auth2") => 2,
            // MIGRATE's keys are data, never options.
            a if migrate && a.eq_ignore_ascii_case(b"keys") => break,
            _ => 0,
        };
        positions.extend((i + 1..=i + follows).filter(|p| *p < args.len()));
        i += 1 + follows;
    }
    positions
}

/// An argument in double quotes, as Redis's `sdscatrepr` writes it: `\\` and `\"`
/// escaped, `\n \r \t \a \b` by name, any other byte outside printable ASCII as `\xhh`.
fn quote(out: &mut BytesMut, arg: &[u8]) {
    out.put_u8(b'"');
    for &b in arg {
        match b {
            b'\\' | b'"' => out.put_slice(&[b'\\', b]),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x07 => out.put_slice(b"\\a"),
            0x08 => out.put_slice(b"\\b"),
            0x20..=0x7e => out.put_u8(b),
            _ => out.put_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&[u8]]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s)).collect()
    }

    fn text(line: Bytes) -> String {
        String::from_utf8(line.to_vec()).unwrap()
    }

    #[test]
    fn lines_quote_as_redis_does() {
        let addr: SocketAddr = "127.0.0.1:50390".parse().unwrap();
        let set = args(&[b"set", b"k", b"a\tb\"c\\d\x01\xff \xc3\xa9\n\r\x07\x08"]);
        assert_eq!(
            text(line(1_796_659_630_701_930, 0, Source::Client(&addr), &set)),
            "+1796659630.701930 [0 127.0.0.1:50390] \"set\" \"k\" \
             \"a\\tb\\\"c\\\\d\\x01\\xff \\xc3\\xa9\\n\\r\\a\\b\"\r\n"
        );
        let get = args(&[b"get", b"foo"]);
        assert_eq!(
            text(line(5_000_042, 3, Source::Script, &get)),
            "+5.000042 [3 lua] \"get\" \"foo\"\r\n"
        );
        assert_eq!(
            text(line(1, 0, Source::Script, &args(&[b"ping", b""]))),
            "+0.000001 [0 lua] \"ping\" \"\"\r\n"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let shown = |a: &[&[u8]]| redacted_positions(&args(a));
        assert_eq!(shown(&[b"AUTH", b"pw"]), vec![1]);
        assert_eq!(shown(&[b"auth", b"user", b"pw"]), vec![1, 2]);
        assert_eq!(
            shown(&[b"hello", b"3", b"setname", b"x", b"AUTH", b"u", b"p"]),
            vec![5, 6]
        );
        assert_eq!(shown(&[b"hello", b"2", b"auth", b"u"]), vec![3]);
        assert_eq!(
            shown(&[b"hello", b"3", b"setname", b"auth"]),
            Vec::<usize>::new()
        );
        let migrate: &[&[u8]] = &[
            b"migrate", b"h", b"1", b"", b"0", b"10", b"auth2", b"u", b"pw", b"keys", b"auth",
        ];
        assert_eq!(shown(migrate), vec![7, 8]);
        assert_eq!(
            shown(&[b"migrate", b"h", b"1", b"k", b"0", b"10", b"AUTH", b"pw"]),
            vec![7]
        );
        assert_eq!(shown(&[b"set", b"auth", b"pw"]), Vec::<usize>::new());
    }

    #[test]
    fn a_monitor_leaves_when_its_guard_drops() {
        let registry = crate::commands::clients::ClientRegistry::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let (a, b) = (registry.register(addr, addr), registry.register(addr, addr));
        let monitors = Arc::new(Monitors::default());
        assert!(!monitors.watched());
        let watching_a = monitors.watch(&a);
        let watching_b = monitors.watch(&b);
        monitors.feed(0, Source::Client(&addr), &args(&[b"ping"]), (0, 0, 0));
        drop(watching_a);
        assert_eq!(monitors.clients.read().len(), 1);
        monitors.feed(0, Source::Client(&addr), &args(&[b"echo", b"x"]), (0, 0, 0));
        assert_eq!(a.mailbox.take().len(), 1);
        assert_eq!(b.mailbox.take().len(), 2);
        drop(watching_b);
        assert!(!monitors.watched());
    }

    #[test]
    fn a_monitor_that_does_not_read_is_cut_at_its_limit() {
        let registry = crate::commands::clients::ClientRegistry::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let client = registry.register(addr, addr);
        let monitors = Arc::new(Monitors::default());
        let _watching = monitors.watch(&client);
        let big = args(&[b"set", b"k", &[b'v'; 1000]]);
        for _ in 0..9 {
            monitors.feed(0, Source::Client(&addr), &big, (10_000, 0, 0));
        }
        assert!(!client.is_killed());
        monitors.feed(0, Source::Client(&addr), &big, (10_000, 0, 0));
        assert!(client.is_killed(), "over the hard limit: cut");
    }
}
