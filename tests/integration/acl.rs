//! ACL across a cluster and across restarts: users live in the cluster map, so a user set
//! through one node logs in on every node, keeps its rules on commands another node runs,
//! disappears everywhere on DELUSER (closing its connections), and survives kill -9. The
//! ACL file and the config file's `user` lines seed the users; ACL SAVE / LOAD round-trip.

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::{show, start_basalt, start_basalt_in, test_dir, Client};

fn call(c: &mut Client, args: &[&str]) -> String {
    show(&c.call(args))
}

/// Calls until the reply is `want` (another node applies group 0 a moment later).
fn eventually(c: &mut Client, args: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = call(c, args);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?}: {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const OK: &str = "+OK\r\n";
const NOPERM_KEY: &str =
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

#[test]
fn a_user_set_through_one_node_logs_in_everywhere_and_survives_kill_9() {
    let mut cluster = Cluster::start("acl", 3, &["--shards", "4"]);
    let mut admin = cluster.client(0);
    assert_eq!(
        call(
            &mut admin,
            &[
                "ACL",
                "SETUSER",
                "alice",
                "on",
                ">pw",
                "~app:*",
                "+@read",
                "+@write",
                "-flushall"
            ]
        ),
        OK
    );
    // Node 2 has the user once group 0 reaches it.
    let mut alice = cluster.client(2);
    eventually(&mut alice, &["AUTH", "alice", "pw"], OK);
    assert_eq!(
        call(&mut alice, &["ACL", "WHOAMI"]),
        "-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n"
    );
    // Keys of every shard: most are led by another node and forwarded; the rules hold.
    for k in 0..20 {
        let key = format!("app:{k}");
        assert_eq!(call(&mut alice, &["SET", &key, "v"]), OK, "{key}");
        assert_eq!(
            call(&mut alice, &["SET", &format!("other:{k}"), "v"]),
            NOPERM_KEY
        );
    }
    assert_eq!(
        call(&mut alice, &["FLUSHALL"]),
        "-NOPERM this user has no permissions to run the 'flushall' command\r\n"
    );
    // Rules changed through node 1 apply to alice's open connection on node 2.
    let mut other_admin = cluster.client(1);
    assert_eq!(
        call(
            &mut other_admin,
            &["ACL", "SETUSER", "alice", "resetkeys", "~new:*"]
        ),
        OK
    );
    eventually(&mut alice, &["SET", "app:1", "v"], NOPERM_KEY);
    assert_eq!(call(&mut alice, &["SET", "new:1", "v"]), OK);
    // A password changed on one node is the password on all.
    assert_eq!(
        call(
            &mut other_admin,
            &["ACL", "SETUSER", "bob", "on", ">b1", "+@all", "~*"]
        ),
        OK
    );
    let mut bob = cluster.client(0);
    eventually(&mut bob, &["AUTH", "bob", "b1"], OK);

    // Every node killed at once: the users come back from the map on disk.
    cluster.kill_all_and_restart();
    for i in 0..3 {
        let mut c = cluster.client(i);
        eventually(&mut c, &["AUTH", "alice", "pw"], OK);
        assert_eq!(call(&mut c, &["GET", "app:1"]), NOPERM_KEY);
    }

    // DELUSER through node 0 closes alice's connections on node 2.
    let mut alice = cluster.client(2);
    assert_eq!(call(&mut alice, &["AUTH", "alice", "pw"]), OK);
    let mut admin = cluster.client(0);
    assert_eq!(
        call(&mut admin, &["ACL", "DELUSER", "alice", "nobody"]),
        ":1\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    alice.set_timeout(Duration::from_millis(200));
    while !alice.is_closed() {
        assert!(Instant::now() < deadline, "alice's connection stayed open");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = cluster.client(2);
    eventually(
        &mut c,
        &["AUTH", "alice", "pw"],
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
}

#[test]
fn the_acl_file_seeds_users_and_acl_save_and_load_round_trip() {
    let dir = test_dir("aclfile");
    let path = dir.join("users.acl");
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\n# a comment\n\nuser carol on >c ~c:* +get\n",
    )
    .unwrap();
    let path_text = path.to_str().unwrap();
    let data = test_dir("aclfile-data");
    let node = start_basalt_in(&data, &["--aclfile", path_text]);
    let mut c = node.client();
    assert_eq!(
        call(&mut c, &["ACL", "USERS"]),
        "*2\r\n$5\r\ncarol\r\n$7\r\ndefault\r\n"
    );
    let mut carol = node.client();
    assert_eq!(call(&mut carol, &["AUTH", "carol", "c"]), OK);
    assert_eq!(call(&mut carol, &["GET", "c:1"]), "$-1\r\n");

    assert_eq!(
        call(&mut c, &["ACL", "SETUSER", "dan", "on", ">d", "+ping"]),
        OK
    );
    assert_eq!(call(&mut c, &["ACL", "SAVE"]), OK);
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("user dan on #"), "{saved}");
    assert!(saved.contains("user carol on #"), "{saved}");

    // A file with an error changes nothing.
    std::fs::write(&path, "user erin on >e +get\nuser frank +nosuch\n").unwrap();
    let err = call(&mut c, &["ACL", "LOAD"]);
    assert!(err.starts_with("-ERR") && err.contains("+nosuch"), "{err}");
    assert_eq!(
        call(&mut c, &["ACL", "USERS"]),
        "*3\r\n$5\r\ncarol\r\n$3\r\ndan\r\n$7\r\ndefault\r\n"
    );

    // LOAD replaces the users: carol's connection closes, dan is gone, erin logs in.
    std::fs::write(&path, "user erin on >e +get ~*\n").unwrap();
    assert_eq!(call(&mut c, &["ACL", "LOAD"]), OK);
    assert_eq!(
        call(&mut c, &["ACL", "USERS"]),
        "*2\r\n$7\r\ndefault\r\n$4\r\nerin\r\n"
    );
    carol.set_timeout(Duration::from_millis(500));
    assert!(
        carol.is_closed(),
        "carol's connection stays open after her user is gone"
    );
    let mut erin = node.client();
    assert_eq!(call(&mut erin, &["AUTH", "erin", "e"]), OK);
    assert_eq!(call(&mut erin, &["GET", "x"]), "$-1\r\n");

    // After a restart the map's users count, not the file (which seeds an empty map only).
    std::fs::write(&path, "user zed on >z +get\n").unwrap();
    drop(erin);
    drop(c);
    drop(node);
    let node = start_basalt_in(&data, &["--aclfile", path_text]);
    let mut c = node.client();
    assert_eq!(
        call(&mut c, &["ACL", "USERS"]),
        "*2\r\n$7\r\ndefault\r\n$4\r\nerin\r\n"
    );
}

#[test]
fn user_lines_seed_users_and_requirepass_is_the_default_users_password() {
    let node = start_basalt(&[
        "--user",
        "gina",
        "on",
        ">g",
        "~*",
        "+@all",
        "--requirepass",
        "s",
    ]);
    let mut c = node.client();
    assert_eq!(
        call(&mut c, &["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(call(&mut c, &["AUTH", "gina", "g"]), OK);
    assert_eq!(call(&mut c, &["ACL", "WHOAMI"]), "$4\r\ngina\r\n");
    assert_eq!(call(&mut c, &["AUTH", "s"]), OK);
    assert_eq!(call(&mut c, &["ACL", "WHOAMI"]), "$7\r\ndefault\r\n");
    assert_eq!(call(&mut c, &["CONFIG", "SET", "requirepass", "t"]), OK);
    let mut fresh = node.client();
    assert_eq!(
        call(&mut fresh, &["AUTH", "s"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(call(&mut fresh, &["AUTH", "t"]), OK);
    // Once ACL SETUSER has written the default user, its password changes there only.
    assert_eq!(call(&mut c, &["ACL", "SETUSER", "default", ">u"]), OK);
    assert_eq!(call(&mut fresh, &["AUTH", "u"]), OK);
    let refused = call(&mut c, &["CONFIG", "SET", "requirepass", "v"]);
    assert!(refused.starts_with("-ERR CONFIG SET failed"), "{refused}");
    // Both an ACL file and user lines: the node refuses to start.
    let dir = test_dir("acl-both");
    let mut both = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args([
            "--port",
            "0",
            "--aclfile",
            "/nonexistent",
            "--user",
            "x",
            "on",
            "--dir",
        ])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = both.wait().unwrap();
    assert!(!status.success());
}

#[test]
fn a_subscriber_whose_channels_are_taken_away_is_disconnected() {
    let node = start_basalt(&[]);
    let mut admin = node.client();
    let rules = [
        "ACL",
        "SETUSER",
        "sub",
        "on",
        ">s",
        "+@all",
        "~*",
        "resetchannels",
        "&news.*",
    ];
    assert_eq!(call(&mut admin, &rules), OK);
    let subscriber = |args: &[&str]| {
        let mut c = node.client();
        assert_eq!(call(&mut c, &["AUTH", "sub", "s"]), OK);
        let reply = call(&mut c, args);
        assert!(reply.starts_with("*3\r\n"), "{reply}");
        c
    };
    let mut by_pattern = subscriber(&["PSUBSCRIBE", "news.*"]);
    let mut by_channel = subscriber(&["SUBSCRIBE", "news.a"]);
    assert_eq!(
        call(&mut by_channel, &["PING"]),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
    // The pattern `news.*` is no longer one of the user's: that subscriber is closed; the
    // channel news.a still matches `news.a`.
    let narrower = ["ACL", "SETUSER", "sub", "resetchannels", "&news.a"];
    assert_eq!(call(&mut admin, &narrower), OK);
    by_pattern.set_timeout(Duration::from_secs(5));
    assert!(
        by_pattern.is_closed(),
        "the pattern subscriber stays connected"
    );
    assert_eq!(call(&mut admin, &["PUBLISH", "news.a", "m"]), ":1\r\n");
    let message = show(&by_channel.read_reply());
    assert!(
        message.contains("news.a") && message.ends_with("$1\r\nm\r\n"),
        "{message}"
    );
}
