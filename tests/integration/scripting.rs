//! Scripts end to end: BUSY and SCRIPT KILL (a killed script that wrote leaves nothing),
//! the Lua state's bounds (memory, recursion, nesting), scripts through any node of a
//! cluster (EVALSHA forwarded with its body, keys outside the script's shard refused), and
//! a long write script across kill -9 of its leader: all of it or none on every replica.

use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, query, text};
use crate::support::{show, start_basalt};
use crate::transactions::{acknowledged_across_kill, converged_counters, leader_and_followers};

/// Sends PING on `c` until it answers BUSY (or panics after 10 s).
fn wait_busy(c: &mut crate::support::Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = show(&c.call(&["PING"]));
        if reply.starts_with("-BUSY") {
            return reply;
        }
        assert!(Instant::now() < deadline, "never BUSY: {reply}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_long_script_makes_others_busy_and_script_kill_stops_it_without_its_writes() {
    let server = start_basalt(&["--busy-reply-threshold", "200"]);
    let mut other = server.client();
    assert_eq!(
        show(&other.call(&["SCRIPT", "KILL"])),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    for script in [
        "while true do end",
        // It wrote before looping: killed, none of its writes are applied.
        "redis.call('set', KEYS[1], 'written'); redis.call('incr', 'n'); while true do end",
        // pcall, xpcall and coroutines cannot swallow the kill.
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    ] {
        let mut runner = server.client();
        runner.send(&[b"EVAL", script.as_bytes(), b"1", b"victim"]);
        let busy = wait_busy(&mut other);
        assert_eq!(
            busy,
            "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
        );
        assert_eq!(show(&other.call(&["SCRIPT", "KILL"])), "+OK\r\n");
        let killed = show(&runner.read_reply());
        assert!(
            killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
            "{killed}"
        );
        assert_eq!(show(&other.call(&["PING"])), "+PONG\r\n");
        assert_eq!(show(&other.call(&["GET", "victim"])), "$-1\r\n");
        assert_eq!(show(&other.call(&["GET", "n"])), "$-1\r\n");
    }
    // A script that ends on its own keeps every write.
    assert_eq!(
        show(&other.call(&[
            "EVAL",
            "redis.call('set', KEYS[1], 'kept'); return redis.call('incr', 'n')",
            "1",
            "victim"
        ])),
        ":1\r\n"
    );
    assert_eq!(show(&other.call(&["GET", "victim"])), "$4\r\nkept\r\n");
    // One that fails part way keeps the writes before the error, as in Redis.
    let failed = show(&other.call(&["EVAL", "redis.call('incr', 'n'); error('stop')", "0"]));
    assert!(failed.starts_with("-ERR user_script:1: stop"), "{failed}");
    assert_eq!(show(&other.call(&["GET", "n"])), "$1\r\n2\r\n");
}

#[test]
fn a_long_function_is_busy_in_function_stats_and_function_kill_stops_it() {
    let server = start_basalt(&["--busy-reply-threshold", "100"]);
    let mut other = server.client();
    let code = "#!lua name=slow\n\
                redis.register_function('spin', function(keys, args) \
                redis.call('set', keys[1], 'x') while true do end end)";
    assert_eq!(
        show(&other.call(&["FUNCTION", "LOAD", code])),
        "$4\r\nslow\r\n"
    );
    let mut runner = server.client();
    runner.send(&[b"FCALL", b"spin", b"1", b"spun"]);
    assert_eq!(
        wait_busy(&mut other),
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
    );
    // FUNCTION STATS is allowed while busy and shows what runs.
    let stats = show(&other.call(&["FUNCTION", "STATS"]));
    assert!(
        stats.contains("$4\r\nspin\r\n") && stats.contains("$5\r\nFCALL\r\n"),
        "{stats}"
    );
    assert_eq!(show(&other.call(&["FUNCTION", "KILL"])), "+OK\r\n");
    let killed = show(&runner.read_reply());
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL...")
            && killed.contains("script: spin, on @user_function:2."),
        "{killed}"
    );
    assert_eq!(show(&other.call(&["GET", "spun"])), "$-1\r\n");
    assert_eq!(
        show(&other.call(&["FUNCTION", "KILL"])),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn the_lua_state_bounds_memory_recursion_and_nesting() {
    let server = start_basalt(&[]);
    let mut c = server.client();
    let memory = show(&c.call(&[
        "EVAL",
        "local t = {} while true do t[#t + 1] = string.rep('x', 1048576) .. #t end",
        "0",
    ]));
    assert!(memory.contains("not enough memory"), "{memory}");
    let huge = show(&c.call(&["EVAL", "return string.rep('x', 1.5e9)", "0"]));
    assert!(huge.contains("not enough memory"), "{huge}");
    // Encoders write outside the Lua state: one big string named many times, or an array
    // made endless with the sparse check off, stops at the same bound.
    for encode in [
        "local s = string.rep('x', 2^26) local t = {} for i = 1, 40 do t[i] = s end \
         return #cmsgpack.pack(t)",
        "local s = string.rep('x', 2^26) local t = {} for i = 1, 40 do t[i] = s end \
         return #cjson.encode(t)",
        "local j = cjson.new() j.encode_sparse_array(false, 0) return #j.encode({[2^40] = 1})",
    ] {
        let reply = show(&c.call(&["EVAL", encode, "0"]));
        assert!(reply.contains("not enough memory"), "{reply}");
    }
    let recursion = show(&c.call(&[
        "EVAL",
        "local function f(n) return 1 + f(n + 1) end return f(1)",
        "0",
    ]));
    assert!(recursion.contains("stack overflow"), "{recursion}");
    // A table that holds itself: nested replies down to an error, no crash.
    let nested = show(&c.call(&["EVAL", "local t = {} t[1] = t return t", "0"]));
    assert!(
        nested.starts_with("*1\r\n*1\r\n") && nested.contains("-ERR reached lua stack limit"),
        "{}",
        &nested[nested.len().saturating_sub(80)..]
    );
    // A library's code that never ends is stopped at redis-server's load time limit.
    let load = show(&c.call(&["FUNCTION", "LOAD", "#!lua name=forever\nwhile true do end"]));
    assert_eq!(
        load,
        "-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n"
    );
    let caught = show(&c.call(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=forever\npcall(function() while true do end end) \
         redis.register_function('f', function() end)",
    ]));
    assert!(caught.contains("FUNCTION LOAD timeout"), "{caught}");
    // The state is still usable, and its memory came back.
    assert_eq!(
        show(&c.call(&["EVAL", "return 'alive'", "0"])),
        "$5\r\nalive\r\n"
    );
    // A script too long to finish on the async worker that got it is run again off it:
    // its writes count once.
    let slow = "local n = redis.call('incr', KEYS[1]) local x = 0 \
                for i = 1, 3e6 do x = x + i end return n";
    assert_eq!(show(&c.call(&["EVAL", slow, "1", "once"])), ":1\r\n");
    assert_eq!(show(&c.call(&["GET", "once"])), "$1\r\n1\r\n");
    let info = show(&c.call(&["INFO", "memory"]));
    let field = |name: &str| -> u64 {
        let line = info.lines().find(|l| l.starts_with(&format!("{name}:")));
        line.and_then(|l| l.split(':').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    assert!(field("used_memory_lua") < 64 << 20, "{info}");
    assert_eq!(field("number_of_cached_scripts"), 9, "{info}");
}

#[test]
fn scripts_run_through_any_node_of_a_cluster() {
    let cluster = Cluster::start("scripting", 3, &[]);
    let ports = cluster.ports();
    let (leader, others) = leader_and_followers(&ports, "{s}a");
    // Loaded on a follower of the key's shard: EVALSHA there runs at the leader, which
    // never saw the script (it travels as EVAL).
    let mut follower = connect(others[0]);
    let sha = text(
        &query(
            &mut follower,
            &[
                "SCRIPT",
                "LOAD",
                "redis.call('incr', KEYS[1]); return redis.call('incr', KEYS[2])",
            ],
        )
        .unwrap(),
    );
    for expected in 1..=3 {
        let reply = query(&mut follower, &["EVALSHA", &sha, "2", "{s}a", "{s}b"]).unwrap();
        assert_eq!(reply, Value::Int(expected));
    }
    // The leader cached it as it ran it; the third node never saw it: NOSCRIPT there.
    let mut at_leader = connect(leader);
    assert_eq!(text(&query(&mut at_leader, &["GET", "{s}a"]).unwrap()), "3");
    let mut third = connect(others[1]);
    assert_eq!(
        query(&mut third, &["SCRIPT", "EXISTS", &sha]).unwrap(),
        Value::Array(vec![Value::Int(0)])
    );
    let unknown = query(&mut third, &["EVALSHA", &sha, "1", "{s}a"]).unwrap_err();
    assert!(
        unknown.to_string().contains("No matching script"),
        "{unknown}"
    );
    // Declared keys of two shards: CROSSSLOT.
    let cross = query(
        &mut follower,
        &["EVAL", "return 1", "2", "{s}a", "{other}b"],
    );
    let cross_text = format!("{cross:?}");
    assert!(cross_text.contains("CrossSlot"), "{cross_text}");
    // Keyless scripts: a key led here is taken; one of another slot afterwards is not.
    let mut leader_con = connect(leader);
    assert_eq!(
        text(
            &query(
                &mut leader_con,
                &["EVAL", "return redis.call('get', '{s}a')", "0"]
            )
            .unwrap()
        ),
        "3"
    );
    let non_local = query(
        &mut leader_con,
        &[
            "EVAL",
            "redis.call('get', '{s}a'); return redis.call('get', 'not-in-slot-of-s')",
            "0",
        ],
    );
    assert!(
        format!("{non_local:?}").contains("Script attempted to access"),
        "{non_local:?}"
    );
    let same_slot = query(
        &mut leader_con,
        &[
            "EVAL",
            "redis.call('set', '{s}c', 1); return redis.call('get', 'elsewhere')",
            "0",
        ],
    );
    assert!(
        format!("{same_slot:?}").contains("Script attempted to access"),
        "{same_slot:?}"
    );
    assert!(format!(
        "{:?}",
        query(
            &mut leader_con,
            &["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"]
        )
    )
    .contains("Can not run script on cluster, 'no-cluster' flag is set."));
}

#[test]
fn a_long_write_script_survives_kill_9_of_its_leader_whole_or_not_at_all() {
    let mut cluster = Cluster::start("scripting-kill", 3, &["--appendfsync", "always"]);
    let ports = cluster.ports();
    let (leader, others) = leader_and_followers(&ports, "{atom}a");
    let leader_index = ports.iter().position(|p| *p == leader).unwrap();
    const STEPS: u64 = 200;
    let script = "for i = 1, 200 do redis.call('incr', KEYS[1]); redis.call('incr', KEYS[2]) end \
                  return redis.call('get', KEYS[1])";
    let acked = acknowledged_across_kill(&mut cluster, leader_index, others[0], move |con| {
        let reply = query(con, &["EVAL", script, "2", "{atom}a", "{atom}b"]);
        matches!(reply, Ok(Value::BulkString(_)))
    });
    assert!(acked > 10, "too few scripts: {acked}");
    // Equal counters, a whole number of scripts, every acknowledged one.
    converged_counters(
        &cluster,
        ("{atom}a", "{atom}b"),
        acked * STEPS,
        |a, b, port| {
            assert_eq!(a, b, "half a script on the node at {port}");
            assert_eq!(a % STEPS, 0, "part of a script on the node at {port}");
        },
    );
}

/// Polls `op` until it gives true, for up to 20 s.
fn eventually(what: &str, mut op: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !op() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn function_libraries_live_in_the_cluster_and_outlive_the_node_that_loaded_them() {
    let mut cluster = Cluster::start("functions", 3, &["--appendfsync", "always"]);
    let ports = cluster.ports();
    let code = "#!lua name=counter\n\
                redis.register_function('bump', function(keys, args) \
                return redis.call('incrby', keys[1], args[1]) end)";
    let mut a = connect(ports[0]);
    assert_eq!(
        text(&query(&mut a, &["FUNCTION", "LOAD", code]).unwrap()),
        "counter"
    );
    // Every node has it.
    for port in &ports {
        let mut con = connect(*port);
        eventually("the library on every node", || {
            format!("{:?}", query(&mut con, &["FUNCTION", "LIST"])).contains("counter")
        });
    }
    cluster.kill(0);
    // Through the third node, for keys of every shard, while the killed node's shards elect.
    let mut c = connect(ports[2]);
    for i in 0..8 {
        let key = format!("bumped{i}");
        eventually("FCALL through the third node", || {
            query(&mut c, &["FCALL", "bump", "1", &key, "5"]) == Ok(Value::Int(5))
        });
    }
    // The node that loaded it comes back with it (the map is on its disk).
    cluster.start_node(0);
    let mut a = connect(ports[0]);
    eventually("FCALL through the restarted node", || {
        query(&mut a, &["FCALL", "bump", "1", "bumped0", "1"]) == Ok(Value::Int(6))
    });
    // Deleted through one node, gone from all.
    assert_eq!(
        query(&mut c, &["FUNCTION", "DELETE", "counter"]).unwrap(),
        Value::Okay
    );
    for port in cluster.ports() {
        let mut con = connect(port);
        eventually("the library gone from every node", || {
            format!("{:?}", query(&mut con, &["FCALL", "bump", "1", "k", "1"]))
                .contains("Function not found")
        });
    }
}
