//! Protected mode as Redis has it: with `protected-mode yes` and no password, a client from
//! another host gets redis-server's DENIED text and the connection closes; loopback
//! clients are served, and a password (or turning the mode off) lets the others in. The
//! node runs in a network namespace (`netns.rs`) so the test's client comes from a
//! non-loopback address, the bridge's. Needs root and iproute2: without them the test
//! fails and says why.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Net;
use crate::support::{show, test_dir, Client};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `redis-cli` inside the node's namespace, over loopback.
fn local_cli(net: &Net, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(0), "redis-cli", "-p", "6379"])
        .args(args)
        .output()
        .expect("redis-cli runs (scripts/setup.sh installs redis-tools)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn protected_mode_refuses_other_hosts_until_a_password_is_set() {
    let net = Net::create(1).unwrap_or_else(|why| {
        panic!("the protected-mode test needs a network namespace (root and `ip`): {why}")
    });
    let dir = test_dir("protected");
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns(0), env!("CARGO_BIN_EXE_basalt")])
        .args([
            "--bind",
            "0.0.0.0",
            "--port",
            "6379",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start basalt in a namespace");
    let _node = Node(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while local_cli(&net, &["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let remote = format!("{}:6379", net.ip(0));
    let denied = |why: &str| {
        let mut c = Client::connect_to(&remote).expect("connect");
        c.set_timeout(Duration::from_secs(5));
        let reply = show(&c.read_reply());
        assert!(
            reply.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
            "{why}: {reply}"
        );
        assert!(c.is_closed(), "{why}: the connection stays open");
    };
    denied("no password");
    let info = local_cli(&net, &["INFO", "stats"]);
    assert!(info.contains("rejected_connections:1"), "{info}");
    // With a password, other hosts connect (and must authenticate).
    assert_eq!(
        local_cli(&net, &["CONFIG", "SET", "requirepass", "pw"]),
        "OK"
    );
    let mut c = Client::connect_to(&remote).expect("connect");
    assert_eq!(
        show(&c.call(&["PING"])),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(show(&c.call(&["AUTH", "pw"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
    // Without it again, refused again; with the mode off, served.
    assert_eq!(
        local_cli(
            &net,
            &[
                "-a",
                "pw",
                "--no-auth-warning",
                "CONFIG",
                "SET",
                "requirepass",
                ""
            ]
        ),
        "OK"
    );
    denied("password removed");
    assert_eq!(
        local_cli(&net, &["CONFIG", "SET", "protected-mode", "no"]),
        "OK"
    );
    let mut c = Client::connect_to(&remote).expect("connect");
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
}
