//! Keyspace notifications: the events an applied write means, named as Redis's commands
//! name them (`set`, `del`, `expire`, `lpush`, `hset`, `zincr`, `rename_from`, …), derived
//! from the keys the write changed (`Txn` tracks them), and the channels they go to.
//!
//! The node applying an entry as its shard's leader sends them (`node/apply.rs`), to this
//! node's subscribers and through the fan-out to every other node's.

use bytes::Bytes;

use super::args::eq;
use crate::config::events::{
    EXPIRED, GENERIC, HASH, KEYEVENT, KEYSPACE, LIST, NEW, SET, STREAM, STRING, ZSET,
};
use crate::keyspace::{ChangeKind, KeyChange};

/// One notification: its class (`config::events`), name, and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub class: u32,
    pub name: &'static str,
    pub db: u8,
    pub key: Bytes,
}

impl Event {
    fn new(class: u32, name: &'static str, change: &KeyChange) -> Event {
        Event {
            class,
            name,
            db: change.db,
            key: change.key.clone(),
        }
    }

    /// The (channel, message) pairs `flags` asks for: `__keyspace@<db>__:<key>` with the
    /// event, and `__keyevent@<db>__:<event>` with the key.
    pub fn messages(&self, flags: u32) -> Vec<(Bytes, Bytes)> {
        let mut out = Vec::new();
        if flags & self.class == 0 {
            return out;
        }
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", self.db).into_bytes();
            channel.extend_from_slice(&self.key);
            out.push((
                Bytes::from(channel),
                Bytes::from_static(self.name.as_bytes()),
            ));
        }
        if flags & KEYEVENT != 0 {
            let channel = format!("__keyevent@{}__:{}", self.db, self.name);
            out.push((Bytes::from(channel), self.key.clone()));
        }
        out
    }
}

/// Each changed key once, in the order first changed, with its last change.
fn last_changes(changes: &[KeyChange]) -> Vec<KeyChange> {
    let mut out: Vec<KeyChange> = Vec::new();
    let stored = |c: &&KeyChange| !matches!(c.kind, ChangeKind::Expired | ChangeKind::Event(_));
    for c in changes.iter().filter(stored) {
        match out.iter_mut().find(|o| o.db == c.db && o.key == c.key) {
            Some(o) => {
                let created = matches!(o.kind, ChangeKind::Stored { created: true });
                o.kind = match c.kind {
                    ChangeKind::Stored { .. } => ChangeKind::Stored { created },
                    kind => kind,
                };
            }
            None => out.push(c.clone()),
        }
    }
    out
}

/// How a command names the change of the key it writes, when one event covers it.
fn event_of(name: &str, args: &[Bytes]) -> Option<(u32, &'static str)> {
    let has = |opt: &str| args[1..].iter().any(|a| eq(a, opt));
    Some(match name {
        "del" | "unlink" | "getdel" => (GENERIC, "del"),
        "restore" => (GENERIC, "restore"),
        "expire" | "pexpire" | "expireat" | "pexpireat" => (GENERIC, "expire"),
        "persist" => (GENERIC, "persist"),
        "getex" if has("PERSIST") => (GENERIC, "persist"),
        "getex" => (GENERIC, "expire"),
        "set" | "setex" | "psetex" | "setnx" | "getset" | "mset" | "msetnx" | "bitop" => {
            (STRING, "set")
        }
        "append" => (STRING, "append"),
        "incr" | "decr" | "incrby" | "decrby" => (STRING, "incrby"),
        "incrbyfloat" => (STRING, "incrbyfloat"),
        "setrange" => (STRING, "setrange"),
        "setbit" | "bitfield" => (STRING, "setbit"),
        "pfadd" | "pfmerge" => (STRING, "pfadd"),
        "lpush" | "lpushx" => (LIST, "lpush"),
        "rpush" | "rpushx" => (LIST, "rpush"),
        "lpop" | "blpop" => (LIST, "lpop"),
        "rpop" | "brpop" => (LIST, "rpop"),
        "lmpop" | "blmpop" if has("LEFT") => (LIST, "lpop"),
        "lmpop" | "blmpop" => (LIST, "rpop"),
        "linsert" => (LIST, "linsert"),
        "lset" => (LIST, "lset"),
        "lrem" => (LIST, "lrem"),
        "ltrim" => (LIST, "ltrim"),
        "sadd" => (SET, "sadd"),
        "srem" => (SET, "srem"),
        "spop" => (SET, "spop"),
        "sinterstore" => (SET, "sinterstore"),
        "sunionstore" => (SET, "sunionstore"),
        "sdiffstore" => (SET, "sdiffstore"),
        "hset" | "hmset" | "hsetnx" => (HASH, "hset"),
        "hdel" => (HASH, "hdel"),
        "hincrby" => (HASH, "hincrby"),
        "hincrbyfloat" => (HASH, "hincrbyfloat"),
        "zadd" if has("INCR") => (ZSET, "zincr"),
        "zadd" | "geoadd" => (ZSET, "zadd"),
        "zincrby" => (ZSET, "zincr"),
        "zrem" => (ZSET, "zrem"),
        "zremrangebyscore" => (ZSET, "zremrangebyscore"),
        "zremrangebyrank" => (ZSET, "zremrangebyrank"),
        "zremrangebylex" => (ZSET, "zremrangebylex"),
        "zpopmin" | "bzpopmin" => (ZSET, "zpopmin"),
        "zpopmax" | "bzpopmax" => (ZSET, "zpopmax"),
        "zmpop" | "bzmpop" if has("MIN") => (ZSET, "zpopmin"),
        "zmpop" | "bzmpop" => (ZSET, "zpopmax"),
        "zunionstore" => (ZSET, "zunionstore"),
        "zinterstore" => (ZSET, "zinterstore"),
        "zdiffstore" => (ZSET, "zdiffstore"),
        "zrangestore" => (ZSET, "zrangestore"),
        "georadius" | "georadiusbymember" => (ZSET, "georadiusstore"),
        "geosearchstore" => (ZSET, "geosearchstore"),
        "sort" => (LIST, "sortstore"),
        "xadd" => (STREAM, "xadd"),
        "xtrim" => (STREAM, "xtrim"),
        "xdel" => (STREAM, "xdel"),
        "xsetid" => (STREAM, "xsetid"),
        _ => return None,
    })
}

/// Commands that replace their destination with a result: an empty result deletes it,
/// which is a `del` rather than the command's own event.
fn stores(name: &str) -> bool {
    matches!(
        name,
        "bitop"
            | "sinterstore"
            | "sunionstore"
            | "sdiffstore"
            | "zunionstore"
            | "zinterstore"
            | "zdiffstore"
            | "zrangestore"
            | "georadius"
            | "georadiusbymember"
            | "geosearchstore"
            | "sort"
    )
}

/// The side of a list a move pops from or pushes to: `LEFT` → l, else r.
fn side(arg: Option<&Bytes>, left: &'static str, right: &'static str) -> &'static str {
    if arg.is_some_and(|a| eq(a, "LEFT")) {
        left
    } else {
        right
    }
}

/// The events of one applied command (normalised argv), from the key changes it made, in
/// Redis's order.
pub fn events_of(args: &[Bytes], changes: &[KeyChange]) -> Vec<Event> {
    let Some(first) = args.first() else {
        // The expiry cycle's entries: only expiries.
        return expired(changes);
    };
    let mut events = derive(args, changes);
    let name = String::from_utf8_lossy(first).to_ascii_lowercase();
    match name.as_str() {
        // The destination is created before the events are sent.
        "rename" | "renamenx" | "copy" | "move" => {
            events.sort_by_key(|e| e.name != "new");
        }
        // The push to the destination is told before the pop from the source.
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" if args.len() > 2 && args[1] != args[2] => {
            events.sort_by_key(|e| e.key != args[2]);
        }
        _ => {}
    }
    events
}

/// `expired` for each key removed because it had expired.
fn expired(changes: &[KeyChange]) -> Vec<Event> {
    changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Expired)
        .map(|c| Event::new(EXPIRED, "expired", c))
        .collect()
}

fn derive(args: &[Bytes], changes: &[KeyChange]) -> Vec<Event> {
    let mut out = expired(changes);
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    for c in last_changes(changes) {
        if c.kind == (ChangeKind::Stored { created: true }) {
            out.push(Event::new(NEW, "new", &c));
        }
        let is = |i: usize| args.get(i).is_some_and(|a| *a == c.key);
        let deleted = c.kind == ChangeKind::Deleted;
        let role: Option<(u32, &'static str)> = match name.as_str() {
            "rename" | "renamenx" if is(1) => Some((GENERIC, "rename_from")),
            "rename" | "renamenx" => Some((GENERIC, "rename_to")),
            "copy" => Some((GENERIC, "copy_to")),
            "move" if deleted => Some((GENERIC, "move_from")),
            "move" => Some((GENERIC, "move_to")),
            "smove" if is(1) => Some((SET, "srem")),
            "smove" => Some((SET, "sadd")),
            "lmove" | "blmove" if is(1) => Some((LIST, side(args.get(3), "lpop", "rpop"))),
            "lmove" | "blmove" => Some((LIST, side(args.get(4), "lpush", "rpush"))),
            "rpoplpush" | "brpoplpush" if is(1) => Some((LIST, "rpop")),
            "rpoplpush" | "brpoplpush" => Some((LIST, "lpush")),
            "pfcount" | "flushdb" | "flushall" | "swapdb" => None,
            _ => event_of(&name, args),
        };
        let Some((class, event)) = role else {
            continue;
        };
        let generic_delete = class == GENERIC && event == "del";
        if deleted && (stores(&name) || (class == GENERIC && event == "expire")) {
            // An empty result, or an expiry in the past: the key is gone.
            out.push(Event::new(GENERIC, "del", &c));
            continue;
        }
        out.push(Event::new(class, event, &c));
        if name == "set" || name == "setex" || name == "psetex" {
            let timed = ["EX", "PX", "EXAT", "PXAT"];
            if name != "set" || args[3..].iter().any(|a| timed.iter().any(|t| eq(a, t))) {
                out.push(Event::new(GENERIC, "expire", &c));
            }
        }
        // A collection its command emptied is deleted too.
        let moved_away = matches!(name.as_str(), "rename" | "renamenx" | "move");
        if deleted && !generic_delete && !moved_away {
            out.push(Event::new(GENERIC, "del", &c));
        }
    }
    // Events the commands named themselves (all of streams), after the stores'.
    for c in changes {
        if let ChangeKind::Event(event) = c.kind {
            out.push(Event::new(STREAM, event, c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn change(key: &str, kind: ChangeKind) -> KeyChange {
        KeyChange {
            db: 0,
            key: b(key),
            kind,
        }
    }

    fn names(args: &[&str], changes: &[KeyChange]) -> Vec<String> {
        let args: Vec<Bytes> = args.iter().map(|a| b(a)).collect();
        events_of(&args, changes)
            .into_iter()
            .map(|e| format!("{}:{}", e.name, String::from_utf8_lossy(&e.key)))
            .collect()
    }

    #[test]
    fn commands_name_their_changes_as_redis() {
        let created = ChangeKind::Stored { created: true };
        let stored = ChangeKind::Stored { created: false };
        assert_eq!(names(&["SET", "k", "v"], &[change("k", stored)]), ["set:k"]);
        assert_eq!(
            names(&["SET", "k", "v", "PXAT", "9"], &[change("k", created)]),
            ["new:k", "set:k", "expire:k"]
        );
        assert_eq!(
            names(&["LPOP", "l"], &[change("l", ChangeKind::Deleted)]),
            ["lpop:l", "del:l"]
        );
        assert_eq!(
            names(
                &["RENAME", "a", "b"],
                &[change("a", ChangeKind::Deleted), change("b", created)]
            ),
            ["new:b", "rename_from:a", "rename_to:b"]
        );
        assert_eq!(
            names(&["GET", "k"], &[change("k", ChangeKind::Expired)]),
            ["expired:k"]
        );
        assert_eq!(
            names(
                &["SUNIONSTORE", "d", "x"],
                &[change("d", ChangeKind::Deleted)]
            ),
            ["del:d"]
        );
    }
}
