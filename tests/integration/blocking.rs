//! Blocking list commands on a real server: first come first served, timeouts, pipelines,
//! CLIENT UNBLOCK, BLMOVE, and the blocked-clients count.

use std::time::{Duration, Instant};

use crate::support::{show, start_basalt, Client};

pub(crate) fn blocked_clients(c: &mut Client) -> u64 {
    show(&c.call(&["INFO", "clients"]))
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn wait_blocked(c: &mut Client, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(c) != n {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pushes_serve_blocked_clients_first_come_first_served() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    let mut waiters = Vec::new();
    for i in 0..3u64 {
        let mut c = server.client();
        c.send(&[b"BLPOP", b"other", b"q", b"10"]);
        wait_blocked(&mut admin, i + 1);
        waiters.push(c);
    }
    assert_eq!(show(&admin.call(&["RPUSH", "q", "a", "b", "c"])), ":3\r\n");
    for (c, item) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(
            show(&c.read_reply()),
            format!("*2\r\n$1\r\nq\r\n$1\r\n{item}\r\n")
        );
    }
    wait_blocked(&mut admin, 0);
    assert_eq!(show(&admin.call(&["EXISTS", "q"])), ":0\r\n");
}

#[test]
fn a_push_earlier_in_the_same_pipeline_is_seen() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    let mut bytes = crate::support::encode_command(&[b"RPUSH", b"p", b"x"]);
    bytes.extend(crate::support::encode_command(&[b"BLPOP", b"p", b"0"]));
    c.send_raw(&bytes);
    assert_eq!(show(&c.read_reply()), ":1\r\n");
    assert_eq!(show(&c.read_reply()), "*2\r\n$1\r\np\r\n$1\r\nx\r\n");
}

#[test]
fn timeouts_and_client_unblock() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    let mut c = server.client();
    let started = Instant::now();
    assert_eq!(show(&c.call(&["BLPOP", "none", "0.3"])), "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(290));

    let id = show(&c.call(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim().to_string();
    for (how, expected) in [
        ("TIMEOUT", "*-1\r\n"),
        (
            "ERROR",
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        ),
    ] {
        c.send(&[b"BRPOP", b"none", b"0"]);
        wait_blocked(&mut admin, 1);
        assert_eq!(
            show(&admin.call(&["CLIENT", "UNBLOCK", &id, how])),
            ":1\r\n"
        );
        assert_eq!(show(&c.read_reply()), expected);
        wait_blocked(&mut admin, 0);
    }
    assert_eq!(show(&admin.call(&["CLIENT", "UNBLOCK", &id])), ":0\r\n");
}

#[test]
fn blmove_waits_for_its_source_and_a_killed_client_leaves_the_queue() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    let mut c = server.client();
    c.send(&[b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0"]);
    wait_blocked(&mut admin, 1);
    // A write to another key does not serve it.
    admin.call(&["RPUSH", "unrelated", "z"]);
    assert_eq!(show(&admin.call(&["RPUSH", "src", "m"])), ":1\r\n");
    assert_eq!(show(&c.read_reply()), "$1\r\nm\r\n");
    assert_eq!(
        show(&admin.call(&["LRANGE", "dst", "0", "-1"])),
        "*1\r\n$1\r\nm\r\n"
    );

    let mut killed = server.client();
    let id = show(&killed.call(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim().to_string();
    killed.send(&[b"BLPOP", b"k", b"0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(show(&admin.call(&["CLIENT", "KILL", "ID", &id])), ":1\r\n");
    wait_blocked(&mut admin, 0);
    // The element goes to a later waiter, not to the killed one.
    let mut later = server.client();
    later.send(&[b"BLPOP", b"k", b"5"]);
    wait_blocked(&mut admin, 1);
    admin.call(&["RPUSH", "k", "v"]);
    assert_eq!(show(&later.read_reply()), "*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
}

/// A client that hangs up while blocked leaves the queue: the next element goes to the
/// next waiter instead of being popped for nobody.
#[test]
fn a_client_that_hangs_up_stops_waiting() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    {
        let mut gone = server.client();
        gone.send(&[b"BLPOP", b"h", b"0"]);
        wait_blocked(&mut admin, 1);
    }
    wait_blocked(&mut admin, 0);
    let mut next = server.client();
    next.send(&[b"BLPOP", b"h", b"5"]);
    wait_blocked(&mut admin, 1);
    admin.call(&["RPUSH", "h", "x"]);
    assert_eq!(show(&next.read_reply()), "*2\r\n$1\r\nh\r\n$1\r\nx\r\n");
}

#[test]
fn sorted_set_pops_wake_in_order_and_only_for_their_type() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    let mut list_waiter = server.client();
    list_waiter.send(&[b"BLPOP", b"k", b"0"]);
    wait_blocked(&mut admin, 1);
    let mut min = server.client();
    min.send(&[b"BZPOPMIN", b"k", b"0"]);
    wait_blocked(&mut admin, 2);
    let mut max = server.client();
    max.send(&[b"BZMPOP", b"0", b"1", b"k", b"MAX", b"COUNT", b"5"]);
    wait_blocked(&mut admin, 3);
    assert_eq!(
        show(&admin.call(&["ZADD", "k", "1", "a", "2", "b", "3", "c"])),
        ":3\r\n"
    );
    assert_eq!(
        show(&min.read_reply()),
        "*3\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        show(&max.read_reply()),
        "*2\r\n$1\r\nk\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    // The list waiter was never served by a sorted set: it is still blocked, and a list
    // at the key serves it.
    wait_blocked(&mut admin, 1);
    assert_eq!(show(&admin.call(&["RPUSH", "k2", "x"])), ":1\r\n");
    assert_eq!(show(&admin.call(&["RENAME", "k2", "k"])), "+OK\r\n");
    assert_eq!(
        show(&list_waiter.read_reply()),
        "*2\r\n$1\r\nk\r\n$1\r\nx\r\n"
    );
    wait_blocked(&mut admin, 0);
}
