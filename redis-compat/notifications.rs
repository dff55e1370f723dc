//! Keyspace notifications against redis-server: with `notify-keyspace-events KEA` (and
//! `n` for new keys), a subscriber to every keyspace and keyevent channel must receive the
//! same messages, in the same order, for each write of every family.

use crate::support::{show, start_basalt, start_redis, Client};

/// Writes, each followed by the events both servers send for it.
const COMMANDS: &[&str] = &[
    "SET s v",
    "SET s v2 EX 100",
    "SETEX s2 100 v",
    "SETNX s v",
    "SETNX s3 v",
    "GETSET s v3",
    "MSET a 1 b 2",
    "APPEND a x",
    "INCR n",
    "INCRBY n 5",
    "DECR n",
    "INCRBYFLOAT n 1.5",
    "SETRANGE a 0 zz",
    "SETBIT bits 7 1",
    "GETDEL b",
    "GETEX a EX 100",
    "GETEX a PERSIST",
    "EXPIRE s 100",
    "PERSIST s",
    "EXPIRE s 0",
    "DEL a nosuch n",
    "SET r1 v",
    "RENAME r1 r2",
    "COPY r2 r3",
    "MOVE r3 1",
    "RPUSH l a b c",
    "LPUSH l z",
    "LINSERT l BEFORE a y",
    "LSET l 0 q",
    "LREM l 1 q",
    "LTRIM l 0 1",
    "LPOP l",
    "RPOP l",
    "RPUSH l2 x y",
    "LMOVE l2 l3 LEFT RIGHT",
    "RPOPLPUSH l2 l3",
    "LMPOP 1 l3 LEFT COUNT 5",
    "SADD st a b c",
    "SREM st a",
    "SMOVE st st2 b",
    "SADD o c d",
    "SINTERSTORE dst st o",
    "SUNIONSTORE dst st o",
    "SDIFFSTORE dst st st",
    "HSET h f v g w",
    "HSETNX h f2 v",
    "HINCRBY h n 2",
    "HINCRBYFLOAT h x 1.5",
    "HDEL h f g f2 n x",
    "ZADD z 1 a 2 b",
    "ZADD z INCR 5 a",
    "ZINCRBY z 1 b",
    "ZREM z a",
    "ZADD z 3 c 4 d 5 e",
    "ZREMRANGEBYSCORE z 3 3",
    "ZREMRANGEBYRANK z 0 0",
    "ZPOPMIN z",
    "ZADD z2 1 x",
    "ZUNIONSTORE zu 2 z z2",
    "ZINTERSTORE zu 2 z z2",
    "ZRANGESTORE zr z2 0 -1",
    "ZPOPMAX z2",
    "PFADD hll a b",
    "PFCOUNT hll",
    "GEOADD geo 13.361389 38.115556 Palermo",
    "SORT l STORE sorted",
    "SORT l STORE sorted",
    "SORT nosuch STORE sorted",
    "XADD x 1-1 a 1",
    "XADD x MAXLEN 1 2-1 a 1",
    "XTRIM x MAXLEN 0",
    "XTRIM x MAXLEN 0",
    "XADD x 3-1 a 1",
    "XDEL x 3-1",
    "XDEL x 3-1",
    "XSETID x 5-0",
    "XGROUP CREATE x g 0",
    "XGROUP CREATE x2 g 0 MKSTREAM",
    "XADD x 6-1 a 1",
    "XREADGROUP GROUP g c STREAMS x >",
    "XREADGROUP GROUP g c STREAMS x >",
    "XCLAIM x g d 0 6-1",
    "XAUTOCLAIM x g e 0 0",
    "XACK x g 6-1",
    "XGROUP CREATECONSUMER x g f",
    "XGROUP CREATECONSUMER x g f",
    "XGROUP DELCONSUMER x g f",
    "XGROUP DELCONSUMER x g f",
    "XGROUP SETID x g 0",
    "XGROUP DESTROY x g",
    "XGROUP DESTROY x g",
    "XADD x NOMKSTREAM 7-1 a 1",
    "SET e v PX 1",
];

struct Side {
    sub: Client,
    writer: Client,
}

impl Side {
    fn new(port_client: impl Fn() -> Client) -> Side {
        let mut writer = port_client();
        writer.call(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
        let mut sub = port_client();
        sub.call(&["PSUBSCRIBE", "__key*__:*"]);
        sub.call(&["SUBSCRIBE", "sentinel"]);
        Side { sub, writer }
    }

    /// Runs `cmd`, then returns the events up to the sentinel published after it.
    fn run(&mut self, cmd: &str) -> (Vec<u8>, Vec<String>) {
        let args: Vec<&str> = cmd.split(' ').collect();
        let reply = self.writer.call(&args);
        self.writer.call(&["PUBLISH", "sentinel", "."]);
        let mut events = Vec::new();
        loop {
            let frame = show(&self.sub.read_reply());
            if frame.contains("sentinel") {
                return (reply, events);
            }
            events.push(frame);
        }
    }
}

#[test]
fn keyspace_events_match_redis() {
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let mut r = Side::new(|| redis.client());
    let mut b = Side::new(|| basalt.client());
    for cmd in COMMANDS {
        let (rr, re) = r.run(cmd);
        let (br, be) = b.run(cmd);
        assert_eq!(show(&rr), show(&br), "reply of {cmd}");
        assert_eq!(re, be, "events of {cmd}");
    }
    // A key that expires: the expiry cycle (or an access) deletes it with `expired`.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (_, re) = r.run("GET e");
    let (_, be) = b.run("GET e");
    assert_eq!(re, be, "events of an expired key");
    // The flags as Redis writes them back, and its error for a bad one.
    for value in ["KEA", "Elg$", "nA", "Kg$n", "", "mK", "Kq"] {
        let cmd = ["CONFIG", "SET", "notify-keyspace-events", value];
        let (x, y) = (r.writer.call(&cmd), b.writer.call(&cmd));
        assert_eq!(
            show(&x),
            show(&y),
            "CONFIG SET notify-keyspace-events {value}"
        );
        let get = ["CONFIG", "GET", "notify-keyspace-events"];
        assert_eq!(show(&r.writer.call(&get)), show(&b.writer.call(&get)));
    }
}
