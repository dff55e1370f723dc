//! Every limit has a test: clients, query buffer, output buffer, idle timeout.

use std::io::Write;
use std::time::Duration;

use crate::support::{encode_command, show, start_basalt, Client};

#[test]
fn maxclients_rejects_with_redis_error() {
    let server = start_basalt(&["--maxclients", "3"]);
    // Let the start-up probe connection be unregistered first.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<Client> = (0..3).map(|_| server.client()).collect();
    for c in held.iter_mut() {
        assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
    }
    let mut extra = server.client();
    assert_eq!(
        show(&extra.read_reply()),
        "-ERR max number of clients reached\r\n"
    );
    assert!(extra.is_closed());
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = server.client();
    assert_eq!(show(&again.call(&["PING"])), "+PONG\r\n");
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let server = start_basalt(&["--client-query-buffer-limit", "1mb"]);
    let mut c = server.client();
    // A 4 MB bulk announced and sent without its end keeps growing the query buffer.
    c.send_raw(b"*2\r\n$4\r\nECHO\r\n$4194304\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    for _ in 0..64 {
        if c.try_send(&chunk).is_err() {
            closed = true;
            break;
        }
    }
    closed = closed || c.is_closed();
    assert!(
        closed,
        "the server must close a client over client-query-buffer-limit"
    );
    assert_eq!(show(&server.client().call(&["PING"])), "+PONG\r\n");
}

#[test]
fn output_buffer_hard_limit_closes_a_slow_reader() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    let set = admin.call(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 1mb 0 0",
    ]);
    assert_eq!(show(&set), "+OK\r\n");
    let value = vec![b'v'; 256 * 1024];
    assert_eq!(
        show(&admin.call_bytes(&[b"SET", b"big", &value])),
        "+OK\r\n"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut pipeline = Vec::new();
    for _ in 0..64 {
        pipeline.extend(encode_command(&[b"GET", b"big"]));
    }
    stream.write_all(&pipeline).unwrap();
    // Read nothing for a while: replies pile up on the server past the hard limit.
    std::thread::sleep(Duration::from_secs(1));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 65536];
    loop {
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("expected the server to close the connection: {e}"),
        }
    }
    assert!(
        total < 64 * 256 * 1024,
        "closed before all replies were sent ({total} bytes)"
    );
}

#[test]
fn idle_timeout_closes_idle_clients() {
    let server = start_basalt(&["--timeout", "1"]);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
    c.set_timeout(Duration::from_secs(5));
    assert!(c.is_closed());
}

#[test]
fn requirepass_limits_unauthenticated_clients() {
    let server = start_basalt(&["--requirepass", "s3cret"]);
    let mut c = server.client();
    assert_eq!(
        show(&c.call(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    let wrong = c.call(&["AUTH", "nope"]);
    assert_eq!(
        show(&wrong),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(show(&c.call(&["AUTH", "s3cret"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["GET", "k"])), "$-1\r\n");
    let mut big = server.client();
    big.send_raw(b"*11\r\n");
    assert_eq!(
        show(&big.read_reply()),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn thousands_of_concurrent_connections() {
    let server = start_basalt(&[]);
    let mut clients: Vec<Client> = (0..2000).map(|_| server.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&[b"SET", format!("conn:{i}").as_bytes(), b"v"]);
    }
    for c in clients.iter_mut() {
        assert_eq!(show(&c.read_reply()), "+OK\r\n");
    }
    let info = show(&clients[0].call(&["INFO", "clients"]));
    assert!(info.contains("connected_clients:2000"), "{info}");
    assert_eq!(show(&clients[1999].call(&["DBSIZE"])), ":2000\r\n");
}

#[test]
fn config_rewrite_persists_changed_settings() {
    let dir = std::env::temp_dir().join(format!("basalt-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("basalt.conf");
    std::fs::write(&file, "maxclients 500\n").unwrap();
    let port = crate::support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg(&file)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir.join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Client::connect(port);
    assert_eq!(
        show(&c.call(&["CONFIG", "GET", "maxclients"])),
        "*2\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n"
    );
    assert_eq!(
        show(&c.call(&["CONFIG", "SET", "maxclients", "77", "hz", "20"])),
        "+OK\r\n"
    );
    assert_eq!(show(&c.call(&["CONFIG", "REWRITE"])), "+OK\r\n");
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        text.contains("maxclients 77") && text.contains("hz 20"),
        "{text}"
    );
}
