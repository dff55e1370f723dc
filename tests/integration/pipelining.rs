//! Pipelining: many commands in one write, replies in order.

use std::io::Write;
use std::time::Duration;

use crate::support::{encode_command, show, start_basalt, Client};

#[test]
fn ten_thousand_pipelined_commands() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let key = format!("k{}", i % 100);
        batch.extend(encode_command(&[b"INCR", key.as_bytes()]));
    }
    c.send_raw(&batch);
    for i in 0..10_000 {
        let expected = format!(":{}\r\n", i / 100 + 1);
        assert_eq!(show(&c.read_reply()), expected, "reply {i}");
    }
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let server = start_basalt(&[]);
    let mut setter = server.client();
    let value = vec![b'v'; 512 * 1024];
    assert_eq!(
        show(&setter.call_bytes(&[b"SET", b"big", &value])),
        "+OK\r\n"
    );
    // This client asks for ~200 MB of replies and never reads them.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let get = encode_command(&[b"GET", b"big"]);
    for _ in 0..400 {
        if stream.write_all(&get).is_err() {
            break;
        }
    }
    let mut other = Client::connect(server.port);
    for i in 0..100 {
        assert_eq!(show(&other.call(&["SET", "x", &i.to_string()])), "+OK\r\n");
    }
    drop(stream);
}

#[test]
fn more_commands_in_one_read_than_one_round_runs() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    // 5,000 inline PINGs arrive in (nearly) one read: several rounds must run without any
    // new input arriving.
    c.send_raw(&b"PING\r\n".repeat(5000));
    for i in 0..5000 {
        assert_eq!(show(&c.read_reply()), "+PONG\r\n", "reply {i}");
    }
}

/// Multi-key writes give the same replies whether every slot shares one shard or each slot
/// is its own shard.
#[test]
fn results_do_not_depend_on_the_shard_count() {
    let script: &[&[&str]] = &[
        &[
            "MSET", "a", "1", "b", "2", "c", "3", "{x}1", "4", "{x}2", "5",
        ],
        &["MGET", "a", "b", "c", "{x}1", "{x}2", "missing"],
        &["MSETNX", "d", "1", "a", "9"],
        &["RENAME", "a", "renamed"],
        &["COPY", "b", "b-copy"],
        &["DEL", "c", "{x}1", "nope"],
        &["EXISTS", "a", "renamed", "b-copy", "{x}2"],
        &["SWAPDB", "0", "1"],
        &["DBSIZE"],
        &["SELECT", "1"],
        &["DBSIZE"],
        &["FLUSHALL"],
        &["DBSIZE"],
    ];
    let run = |shards: &str| -> Vec<String> {
        let server = start_basalt(&["--shards", shards]);
        let mut c = server.client();
        script.iter().map(|cmd| show(&c.call(cmd))).collect()
    };
    let one = run("1");
    assert_eq!(one, run("16"));
    assert_eq!(one, run("256"));
    assert_eq!(
        one[1],
        "*6\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$-1\r\n"
    );
}

/// Writes of many clients to one shard are proposed together while the shard is busy
/// (`node/combine.rs`): each client still gets exactly its own replies, in order, errors
/// included, whether it sends one command or a pipeline.
#[test]
fn many_clients_writing_one_shard_each_get_their_own_replies() {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 150;
    let server = start_basalt(&["--shards", "1"]);
    let mut setup = server.client();
    assert_eq!(
        show(&setup.call(&["HSET", "not-a-number", "f", "v"])),
        ":1\r\n"
    );
    let port = server.port;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let own = format!("own-{t}");
                let mut shared = Vec::new();
                let mut count = 0;
                for round in 0..ROUNDS {
                    // Pipelines of 1 to 4 commands; every fifth round has one that fails.
                    let len = 1 + (round + t) % 4;
                    let mut batch = Vec::new();
                    for i in 0..len {
                        batch.extend(match i {
                            0 => encode_command(&[b"INCR", own.as_bytes()]),
                            1 if round % 5 == 0 => encode_command(&[b"INCR", b"not-a-number"]),
                            _ => encode_command(&[b"INCR", b"shared"]),
                        });
                    }
                    c.send_raw(&batch);
                    for i in 0..len {
                        let reply = show(&c.read_reply());
                        match i {
                            0 => {
                                count += 1;
                                assert_eq!(reply, format!(":{count}\r\n"), "client {t}");
                            }
                            1 if round % 5 == 0 => {
                                assert!(reply.starts_with("-WRONGTYPE"), "client {t}: {reply}")
                            }
                            _ => shared.push(reply),
                        }
                    }
                }
                shared
            })
        })
        .collect();
    let mut shared: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .map(|r| {
            r.trim_start_matches(':')
                .trim_end()
                .parse()
                .expect("integer")
        })
        .collect();
    shared.sort_unstable();
    let expected: Vec<i64> = (1..=shared.len() as i64).collect();
    assert_eq!(
        shared, expected,
        "every INCR of the shared key got its own value"
    );
}
