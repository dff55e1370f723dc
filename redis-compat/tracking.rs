//! Client-side caching against redis-server: a tracking connection, a writer and a
//! redirect target on each side; every step's frames — CLIENT TRACKING's errors and modes,
//! CLIENT CACHING, GETREDIR, TRACKINGINFO, and the invalidations pushed (RESP3 pushes,
//! `__redis__:invalidate` messages in RESP2, null after a flush, `tracking-redir-broken`) —
//! must match byte for byte. A step that must push nothing is followed by a PING whose
//! PONG would come second if something had been pushed.

use crate::support::{show, start_basalt, start_redis, Client};

/// The tracking connection, the writer, the redirect target.
const T: usize = 0;
const W: usize = 1;
const R: usize = 2;

/// On which connection a command goes (`{r}` becomes the target's client id), and how
/// many frames to read from which connection afterwards.
struct Step {
    on: usize,
    cmd: &'static str,
    read_on: usize,
    frames: usize,
}

const fn at(on: usize, cmd: &'static str) -> Step {
    Step {
        on,
        cmd,
        read_on: on,
        frames: 1,
    }
}

/// A command whose reply is followed by `pushed` frames on connection `read_on`.
const fn then(on: usize, cmd: &'static str, read_on: usize, pushed: usize) -> Step {
    Step {
        on,
        cmd,
        read_on,
        frames: pushed + (on == read_on) as usize,
    }
}

const STEPS: &[Step] = &[
    // Errors, in Redis's order of checks.
    at(T, "CLIENT TRACKING"),
    at(T, "CLIENT TRACKING MAYBE"),
    at(T, "CLIENT TRACKING ON FOO"),
    at(T, "CLIENT TRACKING ON REDIRECT"),
    at(T, "CLIENT TRACKING ON REDIRECT x"),
    at(T, "CLIENT TRACKING ON REDIRECT 999999"),
    at(T, "CLIENT TRACKING ON PREFIX a"),
    at(T, "CLIENT TRACKING ON BCAST OPTIN"),
    at(T, "CLIENT TRACKING ON OPTIN OPTOUT"),
    at(T, "CLIENT TRACKING ON BCAST PREFIX a PREFIX ab"),
    at(T, "CLIENT TRACKING OFF PREFIX a"),
    at(T, "CLIENT CACHING yes"),
    at(T, "CLIENT CACHING"),
    at(T, "CLIENT GETREDIR"),
    at(T, "CLIENT TRACKINGINFO"),
    // Default mode, RESP3: a key read is invalidated once, by any writer.
    at(T, "HELLO 3"),
    at(T, "CLIENT TRACKING ON"),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "CLIENT GETREDIR"),
    at(T, "GET k1"),
    at(T, "MGET k2 k3"),
    then(W, "SET k1 x", T, 1),
    at(W, "SET k1 y"),
    at(T, "PING"),
    at(T, "GET k1"),
    then(T, "SET k1 z", T, 1),
    then(W, "MSET k2 a k3 b", T, 2),
    at(T, "HGETALL h"),
    then(W, "HSET h f v", T, 1),
    at(T, "GET e"),
    then(W, "DEL e", T, 0),
    at(W, "SET e 1"),
    then(T, "PING", T, 1),
    // Keys of every database share the table.
    at(T, "GET d"),
    at(W, "SELECT 1"),
    then(W, "SET d 1", T, 1),
    at(W, "SELECT 0"),
    // Modes switch only through OFF (plain to OPTOUT is allowed; OPTOUT to OPTIN not).
    at(T, "CLIENT TRACKING ON BCAST"),
    at(T, "CLIENT TRACKING ON OPTOUT"),
    at(T, "CLIENT TRACKING ON OPTIN"),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "CLIENT TRACKING OFF"),
    // OPTIN: only the command after CLIENT CACHING yes (a CLIENT command keeps the flag).
    at(T, "CLIENT TRACKING ON OPTIN"),
    at(T, "CLIENT CACHING no"),
    at(T, "CLIENT CACHING maybe"),
    at(T, "CLIENT CACHING yes"),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "GET o1"),
    at(T, "GET o2"),
    then(W, "SET o1 1", T, 1),
    at(W, "SET o2 2"),
    at(T, "PING"),
    at(T, "CLIENT CACHING yes"),
    at(T, "PING"),
    at(T, "GET o2"),
    at(W, "SET o2 3"),
    at(T, "PING"),
    // ... and through a transaction.
    at(T, "CLIENT CACHING yes"),
    at(T, "MULTI"),
    at(T, "GET o3"),
    at(T, "GET o4"),
    at(T, "EXEC"),
    then(W, "MSET o3 1 o4 2", T, 2),
    at(T, "CLIENT TRACKING OFF"),
    // OPTOUT with NOLOOP: CLIENT CACHING no skips one read; own writes are not told.
    at(T, "CLIENT TRACKING ON OPTOUT NOLOOP"),
    at(T, "CLIENT CACHING yes"),
    at(T, "CLIENT CACHING no"),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "GET n1"),
    at(T, "GET n2"),
    at(T, "SET n2 x"),
    at(W, "SET n1 1"),
    at(T, "PING"),
    at(T, "GET n2"),
    then(W, "SET n2 y", T, 1),
    at(T, "CLIENT TRACKING OFF"),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "CLIENT GETREDIR"),
    // BCAST: every key under a followed prefix, one message per prefix.
    at(T, "CLIENT TRACKING ON BCAST PREFIX p PREFIX q"),
    at(T, "CLIENT TRACKING ON"),
    at(T, "CLIENT TRACKING ON BCAST PREFIX pq"),
    at(T, "CLIENT TRACKING ON BCAST PREFIX r"),
    at(T, "CLIENT TRACKINGINFO"),
    then(W, "MSET p1 1 z 2 q1 3 p2 4", T, 2),
    then(W, "SET r1 1", T, 1),
    then(W, "FLUSHALL", T, 1),
    at(T, "CLIENT TRACKING OFF"),
    at(T, "CLIENT TRACKING ON BCAST NOLOOP"),
    at(T, "SET own 1"),
    then(W, "SET other 1", T, 1),
    at(T, "CLIENT TRACKING OFF"),
    // REDIRECT to a RESP2 subscriber of __redis__:invalidate.
    at(R, "SUBSCRIBE __redis__:invalidate"),
    at(T, "CLIENT TRACKING ON REDIRECT {r}"),
    at(T, "CLIENT GETREDIR"),
    at(T, "GET k"),
    then(W, "SET k 1", R, 1),
    then(W, "FLUSHDB", R, 1),
    at(T, "CLIENT TRACKING OFF"),
    at(R, "UNSUBSCRIBE"),
    // ... to a RESP2 connection without subscriptions: nothing can reach it.
    at(T, "CLIENT TRACKING ON REDIRECT {r}"),
    at(T, "GET k"),
    at(W, "SET k 2"),
    at(R, "PING"),
    // ... to a RESP3 connection: pushes.
    at(R, "HELLO 3"),
    at(T, "GET k"),
    then(W, "SET k 3", R, 1),
    // ... gone: the tracking client is told, each time.
    at(R, "QUIT"),
    at(T, "GET k"),
    then(W, "SET k 4", T, 1),
    at(T, "CLIENT TRACKINGINFO"),
    at(T, "GET k"),
    then(W, "SET k 5", T, 1),
    at(T, "CLIENT TRACKING OFF"),
    // RESP2 without a redirect: tracked, but nothing can be pushed.
    at(T, "HELLO 2"),
    at(T, "CLIENT TRACKING ON"),
    at(T, "GET k"),
    at(W, "SET k 6"),
    at(T, "PING"),
    at(T, "RESET"),
    at(T, "CLIENT TRACKINGINFO"),
];

#[test]
fn tracking_matches_redis() {
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let mut sides: Vec<[Client; 3]> = vec![
        [redis.client(), redis.client(), redis.client()],
        [basalt.client(), basalt.client(), basalt.client()],
    ];
    let target_ids: Vec<String> = sides
        .iter_mut()
        .map(|side| {
            let reply = side[R].call(&["CLIENT", "ID"]);
            show(&reply).trim_start_matches(':').trim().to_string()
        })
        .collect();
    for (i, s) in STEPS.iter().enumerate() {
        let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
        for ((side, target), port) in sides.iter_mut().zip(&target_ids).zip(["redis", "basalt"]) {
            let cmd = s.cmd.replace("{r}", target);
            let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
            side[s.on].send(&args);
            let mut frames = Vec::new();
            let read = |c: &mut Client, n: usize| {
                c.try_read_reply()
                    .unwrap_or_else(|e| panic!("step {i}: {cmd}: {e} after {n} frames on {port}"))
            };
            if s.on != s.read_on {
                frames.push(read(&mut side[s.on], frames.len()));
            }
            for _ in 0..s.frames {
                frames.push(read(&mut side[s.read_on], frames.len()));
            }
            got.push(frames);
        }
        if s.cmd.starts_with("HELLO") {
            continue; // the connection ids differ
        }
        let (expected, actual) = (&got[0], &got[1]);
        let shown = |frames: &Vec<Vec<u8>>| {
            let text: Vec<String> = frames.iter().map(|f| show(f)).collect();
            text.join(" | ")
        };
        let id = |i: usize| format!(":{}\r\n", target_ids[i]);
        let (expected, actual) = (
            shown(expected).replace(&id(0), ":{r}\r\n"),
            shown(actual).replace(&id(1), ":{r}\r\n"),
        );
        assert_eq!(expected, actual, "step {i}: {}", s.cmd);
    }
}
