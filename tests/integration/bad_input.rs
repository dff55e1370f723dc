//! Bad input never panics or stalls the server for other clients.

use std::time::Duration;

use crate::support::{show, start_basalt, Client};

/// The server still answers a fresh client.
fn assert_alive(port: u16) {
    let mut c = Client::connect(port);
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
}

#[test]
fn oversized_bulk_is_a_protocol_error_and_closes() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$536870913\r\n");
    assert_eq!(
        show(&c.read_reply()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(c.is_closed());
    assert_alive(server.port);
}

#[test]
fn oversized_multibulk_is_a_protocol_error_and_closes() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    c.send_raw(b"*1048577\r\n");
    assert_eq!(
        show(&c.read_reply()),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(c.is_closed());
    assert_alive(server.port);
}

#[test]
fn proto_max_bulk_len_is_enforced_after_config_set() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    assert_eq!(
        show(&c.call(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"])),
        "+OK\r\n"
    );
    // The header alone is refused: the server never waits for the oversized payload.
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n");
    assert_eq!(
        show(&c.read_reply()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(c.is_closed());
    let mut c = server.client();
    let ok = vec![b'x'; 1 << 20];
    assert_eq!(show(&c.call_bytes(&[b"SET", b"k", &ok])), "+OK\r\n");
}

#[test]
fn garbage_bytes_get_errors_not_crashes() {
    let server = start_basalt(&[]);
    let cases: &[&[u8]] = &[
        b"*1\r\n+PING\r\n",
        b"*x\r\n",
        b"*2\r\n$-3\r\n",
        b"\"unbalanced\r\n",
        b"*1\r\n$4\r\nPIN",
        &[0xff, 0xfe, 0x00, 0x01, b'\r', b'\n'],
    ];
    for case in cases {
        let mut c = server.client();
        c.set_timeout(Duration::from_millis(500));
        c.send_raw(case);
        let _ = c.try_read_reply();
        assert_alive(server.port);
    }
    // Random bytes from a fixed seed, many connections.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let mut c = server.client();
        c.set_timeout(Duration::from_millis(200));
        let bytes: Vec<u8> = (0..256)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        c.send_raw(&bytes);
        let _ = c.try_read_reply();
    }
    assert_alive(server.port);
}

#[test]
fn frames_split_at_every_byte_boundary() {
    let server = start_basalt(&[]);
    let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\nPING\r\n";
    for cut in 1..input.len() {
        let mut c = server.client();
        c.send_raw(&input[..cut]);
        std::thread::sleep(Duration::from_millis(2));
        c.send_raw(&input[cut..]);
        assert_eq!(show(&c.read_reply()), "+OK\r\n", "cut at {cut}");
        assert_eq!(show(&c.read_reply()), "$5\r\nvalue\r\n", "cut at {cut}");
        assert_eq!(show(&c.read_reply()), "+PONG\r\n", "cut at {cut}");
    }
}

#[test]
fn client_disconnecting_mid_frame_leaves_server_healthy() {
    let server = start_basalt(&[]);
    for _ in 0..20 {
        let mut c = server.client();
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly-part");
        drop(c);
    }
    let mut c = server.client();
    assert_eq!(
        show(&c.call(&["GET", "k"])),
        "$-1\r\n",
        "a half-sent SET must not apply"
    );
}

#[test]
fn inline_commands_work() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    c.send_raw(b"PING\r\nSET inline \"a b\"\r\nGET inline\r\n\r\n");
    assert_eq!(show(&c.read_reply()), "+PONG\r\n");
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.read_reply()), "$3\r\na b\r\n");
    c.send_raw(&vec![b'a'; 70_000]);
    assert_eq!(
        show(&c.read_reply()),
        "-ERR Protocol error: too big inline request\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn random_picks_with_extreme_counts_are_out_of_range() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    c.call(&["HSET", "h", "a", "1"]);
    c.call(&["SADD", "s", "a"]);
    c.call(&["ZADD", "z", "1", "a"]);
    let out_of_range = "-ERR value is out of range\r\n";
    for args in [
        &["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"][..],
        &["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"],
        &["HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"],
        &["ZRANDMEMBER", "z", "-9223372036854770000", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "4611686018427387904", "WITHSCORES"],
        // Repeated picks past the bound, with or without pairs.
        &["HRANDFIELD", "h", "-16777217"],
        &["SRANDMEMBER", "s", "-9223372036854775807"],
        &["ZRANDMEMBER", "z", "-16777217"],
    ] {
        assert_eq!(show(&c.call(args)), out_of_range, "{args:?}");
    }
    // Distinct picks are capped by the collection's size, whatever the count.
    assert_eq!(
        show(&c.call(&["HRANDFIELD", "h", "9223372036854775807"])),
        "*1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        show(&c.call(&["SRANDMEMBER", "s", "-3"])),
        "*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
    );
    assert_alive(server.port);
}
