//! The HTTP port: health, the cluster map, the Prometheus exposition (checked by promtool
//! and scraped by a real Prometheus server) and the key API with its status codes, on one
//! node and through a 3-node cluster.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::{free_port, show, start_basalt, Process};

/// An HTTP client that returns every status as it is (no error for 4xx/5xx).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = result.expect("an HTTP response");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .unwrap();
    Answer {
        status,
        body,
        headers,
    }
}

fn get(port: u16, path: &str) -> Answer {
    answer(
        agent()
            .get(&format!("http://127.0.0.1:{port}{path}"))
            .call(),
    )
}

fn get_as(port: u16, path: &str, auth: &str) -> Answer {
    answer(
        agent()
            .get(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", auth)
            .call(),
    )
}

fn put(port: u16, path: &str, body: &[u8]) -> Answer {
    answer(
        agent()
            .put(&format!("http://127.0.0.1:{port}{path}"))
            .send(body),
    )
}

fn put_as(port: u16, path: &str, body: &[u8], auth: &str) -> Answer {
    answer(
        agent()
            .put(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", auth)
            .send(body),
    )
}

fn delete(port: u16, path: &str) -> Answer {
    answer(
        agent()
            .delete(&format!("http://127.0.0.1:{port}{path}"))
            .call(),
    )
}

/// `Basic` credentials for `user:password`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// A node with its HTTP port open: (node, HTTP port).
fn node_with_http(flags: &[&str]) -> (Process, u16) {
    let http = free_port();
    let port = http.to_string();
    let mut all = vec!["--http-port", port.as_str()];
    all.extend_from_slice(flags);
    (start_basalt(&all), http)
}

#[test]
fn health_and_the_cluster_map_of_one_node() {
    let (_node, http) = node_with_http(&[]);
    let live = get(http, "/health/live");
    assert_eq!(live.status, 200, "{}", live.text());
    let ready = get(http, "/health/ready");
    assert_eq!(
        (ready.status, ready.json()["status"].as_str()),
        (200, Some("ready"))
    );
    let map = get(http, "/cluster").json();
    assert_eq!(map["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(map["nodes"][0]["myself"], true);
    let shards = map["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 16);
    assert_eq!(shards[0]["slots"][0], 0);
    assert_eq!(shards[15]["slots"][1], 16383);
    assert!(shards.iter().all(|s| s["leader"] == map["myself"]));
    let missing = get(http, "/no/such/thing");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
}

/// The HTTP port holds at most `maxclients` connections: one more is closed on accept
/// (and counted as rejected), a freed place is taken again, and RESP clients keep their
/// own `maxclients`.
#[test]
fn idle_http_connections_are_bounded_by_maxclients() {
    use std::io::{Read, Write};
    let (node, http) = node_with_http(&["--maxclients", "3"]);
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let ask_live = |s: &mut std::net::TcpStream| -> String {
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: basalt\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut held: Vec<std::net::TcpStream> = (0..3).map(|_| connect()).collect();
    for s in held.iter_mut() {
        assert!(
            ask_live(s).starts_with("HTTP/1.1 200"),
            "a kept-alive connection"
        );
    }
    let mut refused = connect();
    let mut buf = [0u8; 16];
    assert!(
        matches!(refused.read(&mut buf), Ok(0) | Err(_)),
        "the fourth connection is closed"
    );
    let mut c = node.client();
    assert_eq!(
        show(&c.call(&["PING"])),
        "+PONG\r\n",
        "RESP has its own budget"
    );
    let stats = show(&c.call(&["INFO", "stats"]));
    assert!(stats.contains("rejected_connections:1\r\n"), "{stats}");
    drop(held.pop());
    // The freed place is taken again once the server has seen the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = connect();
        if ask_live(&mut s).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a freed place was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_key_api_answers_with_honest_status_codes() {
    let (node, http) = node_with_http(&["--proto-max-bulk-len", "1mb"]);
    assert_eq!(get(http, "/key/k1").status, 404);
    assert_eq!(put(http, "/key/k1", b"hello").status, 204);
    let got = get(http, "/key/k1");
    assert_eq!((got.status, got.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    // RESP sees what HTTP wrote, and the other way round.
    let mut c = node.client();
    assert_eq!(show(&c.call(&["GET", "k1"])), "$5\r\nhello\r\n");
    c.call(&["SET", "from resp", "v"]);
    assert_eq!(get(http, "/key/from%20resp").body, b"v");
    // Binary values pass untouched.
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(put(http, "/key/bin", &binary).status, 204);
    assert_eq!(get(http, "/key/bin").body, binary);

    // Time to live: by query (seconds, milliseconds) or header; bad values are 400.
    assert_eq!(put(http, "/key/t?ttl=100", b"x").status, 204);
    let ttl: i64 = show(&c.call(&["TTL", "t"]))[1..].trim().parse().unwrap();
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    assert_eq!(put(http, "/key/t?ttl_ms=50000", b"x").status, 204);
    let pttl: i64 = show(&c.call(&["PTTL", "t"]))[1..].trim().parse().unwrap();
    assert!((40_000..=50_000).contains(&pttl), "PTTL {pttl}");
    let with_header = answer(
        agent()
            .put(&format!("http://127.0.0.1:{http}/key/h"))
            .header("X-Basalt-TTL", "30")
            .send(&b"x"[..]),
    );
    assert_eq!(with_header.status, 204);
    let ttl: i64 = show(&c.call(&["TTL", "h"]))[1..].trim().parse().unwrap();
    assert!((29..=30).contains(&ttl), "TTL {ttl}");
    for bad in ["ttl=abc", "ttl=0", "ttl=-5", "ttl_ms=1.5", "ttl=1&ttl_ms=5"] {
        let a = put(http, &format!("/key/t?{bad}"), b"x");
        assert_eq!(a.status, 400, "{bad}: {}", a.text());
        assert!(a.json()["error"].is_string());
    }

    // A key of another type, a body past proto-max-bulk-len, a delete.
    c.call(&["LPUSH", "list", "a"]);
    let wrong = get(http, "/key/list");
    assert_eq!(wrong.status, 409);
    assert!(wrong.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("WRONGTYPE"));
    let big = vec![b'x'; (1 << 20) + 1];
    assert_eq!(put(http, "/key/big", &big).status, 413);
    assert_eq!(show(&c.call(&["EXISTS", "big"])), ":0\r\n");
    assert_eq!(put(http, "/key/big", &big[1..]).status, 204);
    assert_eq!(delete(http, "/key/k1").status, 204);
    assert_eq!(delete(http, "/key/k1").status, 404);
    assert_eq!(get(http, "/key/k1").status, 404);
}

#[test]
fn the_key_api_authenticates_with_the_acl_users() {
    let (node, http) = node_with_http(&["--requirepass", "s3cret"]);
    let mut c = node.client();
    c.call(&["AUTH", "s3cret"]);
    c.call(&["ACL", "SETUSER", "reader", "on", ">rpw", "~*", "+get"]);
    let none = get(http, "/key/k");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Basic realm=\"basalt\"")
    );
    assert_eq!(
        get_as(http, "/key/k", &basic("default", "wrong")).status,
        401
    );
    assert_eq!(get_as(http, "/key/k", "Bearer abc").status, 401);
    let stored = put_as(http, "/key/k", b"v", &basic("default", "s3cret"));
    assert_eq!(stored.status, 204, "{}", stored.text());
    let read = get_as(http, "/key/k", &basic("reader", "rpw"));
    assert_eq!((read.status, read.body.as_slice()), (200, &b"v"[..]));
    let denied = put_as(http, "/key/k", b"w", &basic("reader", "rpw"));
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(denied.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("NOPERM"));
    // The metrics and health endpoints stay open, as exporters usually are.
    assert_eq!(get(http, "/health/live").status, 200);
    assert_eq!(get(http, "/metrics").status, 200);
}

/// `promtool`, installing Debian's prometheus package when it is missing.
fn promtool() -> std::path::PathBuf {
    let path = std::path::PathBuf::from("/usr/bin/promtool");
    if !path.exists() {
        let _ = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    assert!(
        path.exists(),
        "promtool is missing (Debian package prometheus)"
    );
    path
}

#[test]
fn the_metrics_count_commands_and_pass_promtool() {
    let (node, http) = node_with_http(&[]);
    let mut c = node.client();
    for i in 0..25 {
        c.call(&["SET", &format!("m{i}"), "v"]);
    }
    c.call(&["GET", "m1"]);
    c.call(&["LPUSH", "m1", "x"]); // WRONGTYPE
    let scrape = get(http, "/metrics");
    assert_eq!(scrape.status, 200);
    assert!(scrape
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = scrape.text();
    for want in [
        "basalt_commands_total{cmd=\"set\"} 25\n",
        "basalt_commands_total{cmd=\"get\"} 1\n",
        "basalt_command_errors_total{cmd=\"lpush\"} 1\n",
        "basalt_command_duration_seconds_count{cmd=\"set\"} 25\n",
        "basalt_error_replies_total{prefix=\"WRONGTYPE\"} 1\n",
        "basalt_keys{db=\"0\"} 25\n",
        "basalt_raft_groups_leading 17\n",
        "basalt_connected_clients 1\n",
        "# TYPE basalt_raft_log_fsync_duration_seconds histogram\n",
        "basalt_lsm_level_files{level=\"0\"}",
        "basalt_resident_memory_bytes ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.body.as_slice())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 3-node cluster with each node's HTTP port: (cluster, HTTP ports).
fn cluster_with_http(tag: &str) -> (Cluster, Vec<u16>) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let each = ports.clone();
    let cluster = Cluster::start_each(tag, 3, &["--shards", "4"], move |i| {
        vec!["--http-port".into(), each[i].to_string()]
    });
    (cluster, ports)
}

#[test]
fn a_put_through_one_node_is_read_through_another() {
    let (cluster, http) = cluster_with_http("http-cluster");
    for (i, &port) in http.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(port, "/health/ready").status != 200 {
            assert!(Instant::now() < deadline, "node {i} never ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let map = get(http[2], "/cluster").json();
    assert_eq!(map["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(map["shards"].as_array().unwrap().len(), 4);
    for i in 0..40 {
        let a = put(http[0], &format!("/key/ck{i}"), format!("v{i}").as_bytes());
        assert_eq!(a.status, 204, "{}", a.text());
    }
    for i in 0..40 {
        let a = get(http[2], &format!("/key/ck{i}"));
        assert_eq!((a.status, a.text()), (200, format!("v{i}")));
    }
    assert_eq!(
        show(&cluster.client(1).call(&["GET", "ck7"])),
        "$2\r\nv7\r\n"
    );
}

#[test]
fn no_acknowledged_put_is_lost_when_a_leader_is_killed() {
    let (mut cluster, http) = cluster_with_http("http-kill");
    let mut acked = Vec::new();
    let started = Instant::now();
    let mut killed = false;
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(12) {
        if !killed && acked.len() >= 100 {
            cluster.kill(1);
            killed = true;
        }
        let key = format!("pk{i}");
        if put(http[0], &format!("/key/{key}"), key.as_bytes()).status == 204 {
            acked.push(key);
        }
        i += 1;
    }
    assert!(killed, "only {} PUTs acknowledged", acked.len());
    assert!(
        acked.len() > 150,
        "writes did not resume: {} acknowledged",
        acked.len()
    );
    for key in &acked {
        let a = get(http[2], &format!("/key/{key}"));
        assert_eq!((a.status, a.text()), (200, key.clone()), "{key} lost");
    }
}

/// Debian's Prometheus server (package prometheus).
fn prometheus_server() -> std::path::PathBuf {
    promtool();
    let path = std::path::PathBuf::from("/usr/bin/prometheus");
    assert!(
        path.exists(),
        "prometheus is missing (Debian package prometheus)"
    );
    path
}

/// A real Prometheus server scrapes the three nodes: its targets come up and a command
/// counter rises in its query API.
#[test]
fn a_prometheus_server_scrapes_a_cluster() {
    let (cluster, http) = cluster_with_http("http-prom");
    let dir = crate::support::test_dir("prometheus");
    let targets: Vec<String> = http.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: basalt\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let web = free_port();
    struct Server(std::process::Child, std::path::PathBuf);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let server = Command::new(prometheus_server())
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(server, dir);
    let query = |q: &str| -> serde_json::Value {
        let url = format!("http://127.0.0.1:{web}/api/v1/query");
        // Until the server listens, its answer is a refused connection.
        match agent().get(&url).query("query", q).call() {
            Ok(response) if response.status() == 200 => answer(Ok(response)).json(),
            _ => serde_json::Value::Null,
        }
    };
    let sets = |c: &mut crate::support::Client, n: usize, tag: &str| {
        for i in 0..n {
            c.call(&["SET", &format!("{tag}{i}"), "v"]);
        }
    };
    let total_sets = || -> f64 {
        query("sum(basalt_commands_total{cmd=\"set\"})")["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mut c = cluster.client(0);
    sets(&mut c, 50, "a");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = query("sum(up{job=\"basalt\"})")["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string);
        if up.as_deref() == Some("3") && total_sets() >= 50.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "targets not up or no SETs counted: {up:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let before = total_sets();
    sets(&mut c, 50, "b");
    let deadline = Instant::now() + Duration::from_secs(30);
    while total_sets() < before + 50.0 {
        assert!(
            Instant::now() < deadline,
            "the SET counter did not rise from {before}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every node times its round trips to both others (pinged at least once a second).
    let timed_peers = || -> Option<String> {
        let q = "count(basalt_peer_round_trip_seconds_count > 0)";
        query(q)["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while timed_peers().as_deref() != Some("6") {
        assert!(
            Instant::now() < deadline,
            "round trips timed: {:?}",
            timed_peers()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
