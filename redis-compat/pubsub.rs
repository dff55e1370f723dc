//! Pub/sub against redis-server: two connections on each side (a subscriber and a
//! publisher); every step's frames — subscription confirmations, messages pushed to the
//! subscriber, subscribed-mode errors, PING in subscribed mode, PUBSUB introspection — in
//! RESP2 and RESP3, must match byte for byte.

use crate::support::{show, start_basalt, start_redis, Client};

/// One step: on which connection (0 subscriber, 1 publisher), the command (None: only
/// read), how many frames to read from the subscriber afterwards (messages), and whether
/// the reply's elements are compared as a set (hash order in Redis).
struct Step {
    on: usize,
    cmd: Option<&'static str>,
    frames: usize,
    sorted: bool,
}

const fn step(on: usize, cmd: &'static str, frames: usize) -> Step {
    Step {
        on,
        cmd: Some(cmd),
        frames,
        sorted: false,
    }
}

const fn sorted(on: usize, cmd: &'static str) -> Step {
    Step {
        on,
        cmd: Some(cmd),
        frames: 1,
        sorted: true,
    }
}

/// The subscriber reads `frames` pushed messages.
const fn messages(frames: usize) -> Step {
    Step {
        on: 0,
        cmd: None,
        frames,
        sorted: false,
    }
}

const SUB: usize = 0;
const PUB: usize = 1;

const STEPS: &[Step] = &[
    step(SUB, "SUBSCRIBE a b", 2),
    step(SUB, "SUBSCRIBE a", 1),
    step(SUB, "PSUBSCRIBE n* a?", 2),
    step(PUB, "PUBLISH a hello", 1),
    messages(1),
    step(PUB, "PUBLISH news x", 1),
    messages(1),
    step(PUB, "PUBLISH ab both", 1),
    messages(1),
    step(PUB, "PUBLISH nobody x", 1),
    messages(1),
    step(PUB, "PUBLISH zzz no-subscriber", 1),
    step(SUB, "GET x", 1),
    step(SUB, "SET x 1", 1),
    step(SUB, "PING", 1),
    step(SUB, "PING hi", 1),
    step(SUB, "PING a b", 1),
    sorted(PUB, "PUBSUB CHANNELS"),
    step(PUB, "PUBSUB CHANNELS a*", 1),
    step(PUB, "PUBSUB CHANNELS a b", 1),
    step(PUB, "PUBSUB NUMSUB a b c", 1),
    step(PUB, "PUBSUB NUMSUB", 1),
    step(PUB, "PUBSUB NUMPAT", 1),
    step(PUB, "PUBSUB NOSUCH", 1),
    step(PUB, "PUBSUB HELP", 1),
    step(PUB, "PUBLISH", 1),
    step(PUB, "SUBSCRIBE", 1),
    step(SUB, "UNSUBSCRIBE a nosuch", 2),
    step(SUB, "UNSUBSCRIBE", 1),
    step(SUB, "PUNSUBSCRIBE n*", 1),
    step(SUB, "PUNSUBSCRIBE", 1),
    step(SUB, "UNSUBSCRIBE", 1),
    step(SUB, "PUNSUBSCRIBE", 1),
    step(SUB, "GET x", 1),
    step(SUB, "PING", 1),
    step(SUB, "SSUBSCRIBE s1 s2", 2),
    step(PUB, "SPUBLISH s1 m", 1),
    messages(1),
    step(PUB, "PUBLISH s1 not-for-shard", 1),
    sorted(PUB, "PUBSUB SHARDCHANNELS"),
    step(PUB, "PUBSUB SHARDCHANNELS s1", 1),
    step(PUB, "PUBSUB SHARDNUMSUB s1 s3", 1),
    step(SUB, "GET x", 1),
    step(SUB, "SUNSUBSCRIBE s1", 1),
    step(SUB, "SUNSUBSCRIBE", 1),
    step(SUB, "SUNSUBSCRIBE", 1),
    // RESP3: pushes, and any command runs while subscribed.
    step(SUB, "HELLO 3", 1),
    step(SUB, "SUBSCRIBE z", 1),
    step(SUB, "GET x", 1),
    step(SUB, "PING", 1),
    step(PUB, "PUBLISH z 1", 1),
    messages(1),
    step(SUB, "PSUBSCRIBE z*", 1),
    step(PUB, "PUBLISH z 2", 1),
    messages(2),
    step(SUB, "RESET", 1),
    step(SUB, "PING", 1),
    step(PUB, "PUBLISH z 3", 1),
    // SUBSCRIBE inside MULTI subscribes at EXEC.
    step(SUB, "MULTI", 1),
    step(SUB, "SUBSCRIBE inside", 1),
    step(SUB, "EXEC", 1),
    step(PUB, "PUBLISH inside hello", 1),
    messages(1),
    step(SUB, "UNSUBSCRIBE", 1),
    // MULTI around pub/sub commands.
    step(PUB, "MULTI", 1),
    step(PUB, "PUBLISH a inside", 1),
    step(PUB, "PUBSUB NUMPAT", 1),
    step(PUB, "EXEC", 1),
];

fn sorted_frames(reply: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = show(reply)
        .split("\r\n")
        .skip(1)
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn pubsub_matches_redis() {
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let mut sides: Vec<[Client; 2]> = vec![
        [redis.client(), redis.client()],
        [basalt.client(), basalt.client()],
    ];
    for (i, s) in STEPS.iter().enumerate() {
        let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
        for side in sides.iter_mut() {
            let conn = &mut side[s.on];
            if let Some(cmd) = s.cmd {
                let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
                conn.send(&args);
            }
            let reader = &mut side[if s.cmd.is_some() { s.on } else { SUB }];
            got.push((0..s.frames).map(|_| reader.read_reply()).collect());
        }
        let (expected, actual) = (&got[0], &got[1]);
        let cmd = s.cmd.unwrap_or("(messages)");
        if cmd.starts_with("HELLO") {
            continue; // the connection ids differ
        }
        let same = if s.sorted {
            sorted_frames(&expected[0]) == sorted_frames(&actual[0])
        } else {
            expected == actual
        };
        assert!(
            same,
            "step {i}: {cmd}\n  redis:  {:?}\n  basalt: {:?}",
            expected.iter().map(|f| show(f)).collect::<Vec<_>>(),
            actual.iter().map(|f| show(f)).collect::<Vec<_>>()
        );
    }
}
