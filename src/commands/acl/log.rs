//! ACL LOG: the recent refusals (a command, key or channel denied, a failed AUTH), newest
//! first, at most `acllog-max-len`. A refusal like one logged in the last minute (same
//! reason, context, object and user) counts on that entry instead of adding one, as in
//! Redis.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::clock;
use crate::protocol::Reply;

/// Refusals within this long of an equal one count on its entry.
const GROUP_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the refused command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    /// A command a script called.
    Lua,
}

impl Context {
    fn as_str(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// One refusal to record.
pub struct Refusal {
    pub reason: Reason,
    pub context: Context,
    /// The command's full name, the key, the channel, or `AUTH`.
    pub object: String,
    pub username: String,
    /// The client's CLIENT LIST line.
    pub client_info: String,
}

struct Entry {
    refusal: Refusal,
    count: u64,
    at_ms: u64,
}

#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AclLog {
    pub fn record(&self, refusal: Refusal, max_len: usize) {
        let now = clock::now_ms();
        let mut entries = self.entries.lock();
        let same = entries.iter().position(|e| {
            let r = &e.refusal;
            r.reason == refusal.reason
                && r.context == refusal.context
                && r.object == refusal.object
                && r.username == refusal.username
                && now.saturating_sub(e.at_ms) < GROUP_MS
        });
        match same {
            Some(at) => {
                let mut entry = entries.remove(at).expect("found above");
                entry.count += 1;
                entry.at_ms = now;
                entry.refusal.client_info = refusal.client_info;
                entries.push_front(entry);
            }
            None => entries.push_front(Entry {
                refusal,
                count: 1,
                at_ms: now,
            }),
        }
        entries.truncate(max_len);
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The newest `count` entries (all of them with `None`), as ACL LOG answers.
    pub fn reply(&self, count: Option<usize>) -> Reply {
        let now = clock::now_ms();
        let entries = self.entries.lock();
        let bulk = |s: &str| Reply::bulk(s.to_string());
        Reply::Array(
            entries
                .iter()
                .take(count.unwrap_or(usize::MAX))
                .map(|e| {
                    let r = &e.refusal;
                    let age = now.saturating_sub(e.at_ms) as f64 / 1000.0;
                    Reply::Map(vec![
                        (bulk("count"), Reply::Integer(e.count as i64)),
                        (bulk("reason"), bulk(r.reason.as_str())),
                        (bulk("context"), bulk(r.context.as_str())),
                        (bulk("object"), bulk(&r.object)),
                        (bulk("username"), bulk(&r.username)),
                        (bulk("age-seconds"), Reply::Double(age)),
                        (bulk("client-info"), bulk(&r.client_info)),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(object: &str) -> Refusal {
        Refusal {
            reason: Reason::Key,
            context: Context::Toplevel,
            object: object.into(),
            username: "alice".into(),
            client_info: "id=1".into(),
        }
    }

    #[test]
    fn equal_refusals_count_on_one_entry_and_the_log_is_bounded() {
        let log = AclLog::default();
        log.record(refusal("a"), 2);
        log.record(refusal("b"), 2);
        log.record(refusal("a"), 2);
        let entries = log.entries.lock();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].refusal.object.as_str(), entries[0].count),
            ("a", 2)
        );
        drop(entries);
        log.record(refusal("c"), 2);
        assert_eq!(log.entries.lock().len(), 2);
        log.reset();
        assert!(log.entries.lock().is_empty());
    }
}
