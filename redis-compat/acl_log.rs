//! ACL LOG against redis-server: the same refusals (keys, commands, channels, failed AUTHs,
//! inside MULTI and not, repeated ones counted on one entry) give the same entries, field
//! by field — all but the entry's age and the client's CLIENT LIST line, which describe
//! each server's own clock and connection.

use crate::support::show;
use crate::Pair;

/// The reply with the values of `age-seconds` and `client-info` left out.
fn comparable(reply: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = 0;
    for line in show(reply).split("\r\n") {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if line == "age-seconds" || line == "client-info" {
            skip = 2;
        }
        out.push(line.to_string());
    }
    out
}

#[test]
fn acl_log_entries_match_redis() {
    let mut pair = Pair::start();
    let setup: &[&[&str]] = &[&[
        "ACL", "SETUSER", "alice", "on", ">p", "~foo*", "&news", "+get", "+set", "+multi", "+exec",
        "+discard", "+publish",
    ]];
    let as_alice: &[&[&str]] = &[
        &["AUTH", "alice", "p"],
        &["GET", "bar"],
        &["GET", "bar"],
        &["SET", "foo", "1"],
        &["DEL", "foo"],
        &["PUBLISH", "sports", "m"],
        &["PUBLISH", "news", "m"],
        &["AUTH", "alice", "wrong"],
        &["AUTH", "nobody", "x"],
        &["HELLO", "2", "AUTH", "alice", "wrong"],
        &["MULTI"],
        &["GET", "bar"],
        &["DEL", "foo"],
        &["DISCARD"],
    ];
    for cmd in setup {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let (r, b) = pair.both(&args);
        assert_eq!(show(&r), show(&b), "{cmd:?}");
    }
    for cmd in as_alice {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let (r, b) = pair.both_other(&args);
        assert_eq!(show(&r), show(&b), "{cmd:?}");
    }
    let queries: [&[&str]; 4] = [
        &["ACL", "LOG"],
        &["ACL", "LOG", "2"],
        &["ACL", "LOG", "RESET"],
        &["ACL", "LOG"],
    ];
    for (i, query) in queries.iter().enumerate() {
        let args: Vec<&[u8]> = query.iter().map(|a| a.as_bytes()).collect();
        let (r, b) = pair.both(&args);
        let basalt = comparable(&b);
        assert_eq!(comparable(&r), basalt, "{query:?}");
        if i == 0 {
            // Key ×2 (one entry), command, channel, auth ×2 users, HELLO, multi key, multi
            // command.
            let entries = basalt.iter().filter(|l| *l == "reason").count();
            assert_eq!(entries, 8, "{basalt:?}");
        }
    }
}
