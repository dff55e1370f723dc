//! Process lifecycle: SHUTDOWN, signals, QUIT, CLIENT KILL, active expiry.

use std::time::Duration;

use crate::support::{show, start_basalt};

#[test]
fn shutdown_command_stops_the_process() {
    let mut server = start_basalt(&[]);
    let mut c = server.client();
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(c.is_closed(), "SHUTDOWN closes without a reply");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("process exits");
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_stops_gracefully() {
    let mut server = start_basalt(&[]);
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("process exits on SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn quit_replies_then_closes() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["QUIT"])), "+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn client_kill_closes_the_victim() {
    let server = start_basalt(&[]);
    let mut victim = server.client();
    let id = show(&victim.call(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim();
    let mut killer = server.client();
    assert_eq!(show(&killer.call(&["CLIENT", "KILL", "ID", id])), ":1\r\n");
    victim.set_timeout(Duration::from_secs(5));
    assert!(victim.is_closed());
    assert_eq!(show(&killer.call(&["CLIENT", "KILL", "ID", id])), ":0\r\n");
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let server = start_basalt(&["--hz", "50"]);
    let mut c = server.client();
    for i in 0..500 {
        let key = format!("volatile:{i}");
        assert_eq!(show(&c.call(&["SET", &key, "v", "PX", "100"])), "+OK\r\n");
    }
    assert_eq!(show(&c.call(&["SET", "stays", "v"])), "+OK\r\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = show(&c.call(&["DBSIZE"]));
        if size == ":1\r\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keys not expired: {size}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info = show(&c.call(&["INFO", "stats"]));
    assert!(info.contains("expired_keys:500"), "{info}");
}

#[test]
fn debug_sleep_needs_enable_debug_command_and_delays_only_its_caller() {
    let denied = start_basalt(&[]);
    let reply = show(&denied.client().call(&["DEBUG", "SLEEP", "0"]));
    assert!(
        reply.starts_with("-ERR DEBUG command not allowed."),
        "{reply}"
    );
    let server = start_basalt(&["--enable-debug-command", "local"]);
    let mut sleeper = server.client();
    let started = std::time::Instant::now();
    sleeper.send(&[b"DEBUG", b"SLEEP", b"0.5"]);
    let mut other = server.client();
    assert_eq!(show(&other.call(&["PING"])), "+PONG\r\n");
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "another client was not delayed"
    );
    assert_eq!(show(&sleeper.read_reply()), "+OK\r\n");
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn slowlog_records_commands_over_the_threshold() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    assert_eq!(
        show(&c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])),
        "+OK\r\n"
    );
    assert_eq!(show(&c.call(&["SLOWLOG", "RESET"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["SET", "slow", "value"])), "+OK\r\n");
    let long = "x".repeat(200);
    assert_eq!(show(&c.call(&["ECHO", &long])).len(), 200 + 8);
    let entries = show(&c.call(&["SLOWLOG", "GET", "-1"]));
    assert!(
        entries.contains("$3\r\nSET\r\n$4\r\nslow\r\n$5\r\nvalue\r\n"),
        "{entries}"
    );
    assert!(
        entries.contains("... (72 more bytes)"),
        "long arguments are trimmed: {entries}"
    );
    let len = show(&c.call(&["SLOWLOG", "LEN"]));
    assert!(len != ":0\r\n", "{len}");
    assert_eq!(
        show(&c.call(&["CONFIG", "SET", "slowlog-max-len", "1"])),
        "+OK\r\n"
    );
    c.call(&["PING"]);
    assert_eq!(show(&c.call(&["SLOWLOG", "LEN"])), ":1\r\n");
}

#[test]
fn client_reply_off_and_skip() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    c.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    c.send(&[b"SET", b"a", b"1"]);
    c.send(&[b"CLIENT", b"REPLY", b"ON"]);
    assert_eq!(
        show(&c.read_reply()),
        "+OK\r\n",
        "only CLIENT REPLY ON answers"
    );
    c.send(&[b"CLIENT", b"REPLY", b"SKIP"]);
    c.send(&[b"GET", b"a"]);
    c.send(&[b"INCR", b"a"]);
    assert_eq!(
        show(&c.read_reply()),
        ":2\r\n",
        "SKIP drops the next reply only"
    );
}

/// MEMORY USAGE counts a collection's elements (sampled, as Redis does), not only its key.
#[test]
fn memory_usage_counts_collection_elements() {
    let server = crate::support::start_basalt(&[]);
    let mut c = server.client();
    let usage = |c: &mut crate::support::Client, args: &[&str]| -> i64 {
        let reply = crate::support::show(&c.call(args));
        reply.trim_start_matches(':').trim().parse().unwrap()
    };
    let value = "x".repeat(100);
    c.call(&["RPUSH", "small", &value]);
    for _ in 0..100 {
        c.call(&["RPUSH", "big", &value]);
    }
    let small = usage(&mut c, &["MEMORY", "USAGE", "small"]);
    let big = usage(&mut c, &["MEMORY", "USAGE", "big"]);
    assert!(big > 100 * 100 && big > 50 * small, "{small} {big}");
    assert_eq!(
        usage(&mut c, &["MEMORY", "USAGE", "big", "SAMPLES", "0"]),
        big
    );
}
