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
