//! MONITOR against redis-server: one connection monitors while another runs a scripted
//! session; the monitor's lines — which commands show, in which order, with which
//! database, quoting and redactions — must match once the time stamp and the client's
//! port are set aside. The monitoring connection's own rules (its own commands shown,
//! keyspace commands refused, a second MONITOR unanswered, RESET ending it) match byte
//! for byte.

use crate::support::{show, start_basalt, start_redis, Client, Process};

/// The session: admin commands, refused commands (unknown, wrong arity) and MONITOR itself
/// must not show; errors from a command that ran must.
const SESSION: &[&[&[u8]]] = &[
    &[b"SET", b"foo", b"bar"],
    &[b"set", b"k", b"a\tb\"c\\d\x01\xff \xc3\xa9\r\n"],
    &[b"AUTH", b"secret"],
    &[b"auth", b"user", b"secret"],
    &[b"HELLO", b"2", b"AUTH", b"user", b"secret"],
    &[b"CONFIG", b"GET", b"maxmemory"],
    &[b"CLIENT", b"LIST"],
    &[
        b"EVAL",
        b"redis.call('set',KEYS[1],ARGV[1]) return redis.call('get',KEYS[1])",
        b"1",
        b"foo",
        b"bar",
    ],
    &[b"NOSUCH", b"x"],
    &[b"GET"],
    &[b"LPUSH", b"foo", b"x"],
    &[b"SELECT", b"3"],
    &[b"INCR", b"12"],
    &[b"SELECT", b"0"],
    &[b"MULTI"],
    &[b"SET", b"a", b"1"],
    &[b"INCR", b"a"],
    &[b"EXEC"],
    &[b"MULTI"],
    &[b"SET", b"a"],
    &[b"EXEC"],
    &[b"BLPOP", b"nolist", b"0.1"],
    &[b"SLOWLOG", b"GET"],
    &[b"FUNCTION", b"LOAD", b"#!lua name=monlib\nredis.register_function('f', function(k, a) return redis.call('ping') end)"],
    &[b"FCALL", b"f", b"0"],
    &[b"FUNCTION", b"DELETE", b"monlib"],
    &[b"ECHO", b"done"],
];

/// The lines one server's monitor received for `SESSION`, each with its time stamp and
/// client port replaced; checks the time stamps are now and the address is the client's.
fn monitored(server: &Process) -> Vec<String> {
    let mut monitor = server.client();
    assert_eq!(show(&monitor.call(&["MONITOR"])), "+OK\r\n");
    let mut c = server.client();
    let info = show(&c.call(&["CLIENT", "INFO"]));
    let addr = info
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .expect("CLIENT INFO has addr")
        .to_string();
    for command in SESSION {
        c.call_bytes(command);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut lines = Vec::new();
    loop {
        let line = show(&monitor.read_reply());
        let (stamp, rest) = line
            .strip_prefix('+')
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("a monitor line: {line:?}"));
        let at: f64 = stamp.parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!((now - at).abs() < 60.0, "time stamp {at} is now ({now})");
        assert_eq!(stamp.split_once('.').map(|(_, us)| us.len()), Some(6));
        let rest = rest.replace(&addr, "CLIENT");
        let done = rest.contains("\"done\"");
        lines.push(rest);
        if done {
            return lines;
        }
    }
}

#[test]
fn the_lines_of_a_session_match() {
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let expected = monitored(&redis);
    let got = monitored(&basalt);
    assert_eq!(got, expected);
    assert!(expected.iter().any(|l| l.contains("(redacted)")));
    assert!(expected.iter().any(|l| l.starts_with("[0 lua]")));
}

/// The monitoring connection: the steps and their frames, on both servers.
fn monitor_connection(server: &Process) -> Vec<String> {
    let mut m = server.client();
    let mut frames = Vec::new();
    let mut record = |m: &mut Client, args: &[&str], replies: usize| {
        let wanted: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        m.send(&wanted);
        for _ in 0..replies {
            let frame = show(&m.read_reply());
            // The time stamp and port of the monitor's own lines set aside.
            let frame = match frame.split_once(" [") {
                Some((_, rest)) if frame.starts_with('+') => {
                    let (_, args) = rest.split_once("] ").unwrap();
                    format!("+[line] {args}")
                }
                _ => frame,
            };
            frames.push(frame);
        }
    };
    record(&mut m, &["MONITOR"], 1);
    record(&mut m, &["PING"], 2);
    record(&mut m, &["GET", "a"], 1);
    record(&mut m, &["SET", "a", "1"], 1);
    record(&mut m, &["DBSIZE"], 1);
    // A second MONITOR gets no reply: the ECHO's reply and line come next.
    record(&mut m, &["MONITOR"], 0);
    record(&mut m, &["ECHO", "x"], 2);
    record(&mut m, &["RESET"], 1);
    record(&mut m, &["GET", "a"], 1);
    frames
}

#[test]
fn the_monitoring_connection_behaves_as_in_redis() {
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let expected = monitor_connection(&redis);
    assert_eq!(monitor_connection(&basalt), expected);
    assert!(expected.contains(&"-ERR Replica can't interact with the keyspace\r\n".into()));

    // CLIENT LIST shows the monitor with flag O until it leaves; inside EXEC MONITOR is
    // refused as Redis refuses it.
    let mut m = basalt.client();
    m.call(&["MONITOR"]);
    let mut c = basalt.client();
    let list = show(&c.call(&["CLIENT", "LIST"]));
    assert!(list.contains("flags=O "), "{list}");
    drop(m);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while show(&c.call(&["CLIENT", "LIST"])).contains("flags=O ") {
        assert!(std::time::Instant::now() < deadline, "the monitor left");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for server in [&redis, &basalt] {
        let mut c = server.client();
        c.call(&["MULTI"]);
        c.call(&["MONITOR"]);
        assert_eq!(
            show(&c.call(&["EXEC"])),
            "*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
        );
    }
}
