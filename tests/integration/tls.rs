//! TLS on the client port: redis-cli `--tls` and redis-py with `ssl=True` against
//! `tls-port`, client certificates required, optional or not asked for, the plain port
//! open beside it. Certificates are made for each run with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::Cluster;
use crate::support::{free_port, show, start_basalt, test_dir};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
struct Certificates {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command runs");
    assert!(status.success(), "openssl {args:?}");
}

const KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA: `<name>.key`, `<name>.crt`.
fn make_ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=basalt test {name}"),
    );
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &KEY,
            &["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj],
        ]
        .concat(),
    );
}

/// A certificate for 127.0.0.1 signed by `ca`, for `usage` (extendedKeyUsage).
fn issue(dir: &Path, ca: &str, name: &str, usage: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
    )
    .unwrap();
    let (k, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let subj = format!("/CN={name}");
    openssl(
        dir,
        &[
            &["req"][..],
            &KEY,
            &["-keyout", &k, "-out", &csr, "-subj", &subj],
        ]
        .concat(),
    );
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

impl Certificates {
    fn make() -> Certificates {
        let dir = test_dir("tls-certs");
        std::fs::create_dir_all(&dir).unwrap();
        make_ca(&dir, "ca");
        issue(&dir, "ca", "server", "serverAuth");
        issue(&dir, "ca", "client", "clientAuth");
        // Cluster nodes are both: they accept peers and dial them.
        issue(&dir, "ca", "node", "serverAuth,clientAuth");
        // A node of another CA.
        make_ca(&dir, "rogue-ca");
        issue(&dir, "rogue-ca", "rogue", "serverAuth,clientAuth");
        Certificates { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// Flags for a node serving TLS on `port`.
    fn flags(&self, port: u16) -> Vec<String> {
        [
            ("--tls-port", port.to_string()),
            ("--tls-cert-file", self.path("server.crt")),
            ("--tls-key-file", self.path("server.key")),
            ("--tls-ca-cert-file", self.path("ca.crt")),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-cli over TLS to `port` (with the client certificate when `cert`); its output.
fn cli(certs: &Certificates, port: u16, cert: bool, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args([
        "--tls",
        "--cacert",
        &certs.path("ca.crt"),
        "-p",
        &port.to_string(),
    ]);
    if cert {
        cmd.args([
            "--cert",
            &certs.path("client.crt"),
            "--key",
            &certs.path("client.key"),
        ]);
    }
    let out = cmd.args(args).output().expect("redis-cli runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.trim().to_string()
}

fn start(certs: &Certificates, tls_port: u16, extra: &[&str]) -> crate::support::Process {
    let mut flags = certs.flags(tls_port);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    start_basalt(&flags)
}

#[test]
fn redis_cli_over_tls_with_client_certificates_required() {
    let certs = Certificates::make();
    let tls_port = free_port();
    let node = start(&certs, tls_port, &[]);
    assert_eq!(cli(&certs, tls_port, true, &["SET", "k", "over tls"]), "OK");
    assert_eq!(cli(&certs, tls_port, true, &["GET", "k"]), "over tls");
    // A pipeline of many commands and a large value cross TLS records.
    let big = "x".repeat(100_000);
    assert_eq!(cli(&certs, tls_port, true, &["SET", "big", &big]), "OK");
    assert_eq!(cli(&certs, tls_port, true, &["STRLEN", "big"]), "100000");
    // Without a client certificate the handshake fails.
    let refused = cli(&certs, tls_port, false, &["PING"]);
    assert!(!refused.contains("PONG"), "{refused}");
    // The plain port serves beside it.
    let mut c = node.client();
    assert_eq!(show(&c.call(&["GET", "k"])), "$8\r\nover tls\r\n");
}

#[test]
fn redis_py_over_tls_without_client_certificates() {
    let certs = Certificates::make();
    let tls_port = free_port();
    let _node = start(&certs, tls_port, &["--tls-auth-clients", "no"]);
    assert_eq!(cli(&certs, tls_port, false, &["PING"]), "PONG");
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={tls_port}, ssl=True, ssl_ca_certs={ca:?})\n\
         r.set('a', 'b')\n\
         p = r.pipeline(transaction=False)\n\
         for i in range(1000): p.incr('n')\n\
         p.execute()\n\
         print(r.get('a').decode(), r.get('n').decode())\n",
        ca = certs.path("ca.crt")
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs (scripts/setup.sh installs redis-py)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "b 1000",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_settings_that_cannot_work_stop_the_start() {
    let certs = Certificates::make();
    let dir = test_dir("tls-bad");
    for (flag, value) in [
        ("--tls-protocols", "TLSv1.1"),
        ("--tls-cert-file", "/nonexistent.crt"),
    ] {
        let mut flags = certs.flags(free_port());
        flags.extend([flag.to_string(), value.to_string()]);
        let port = free_port().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .args(["--port", &port, "--dir"])
            .arg(&dir)
            .args(&flags)
            .output()
            .expect("basalt runs");
        assert!(!out.status.success(), "{flag} {value} started");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 3-node cluster whose nodes talk over mutual TLS: clients reach it over TLS (redis-cli
/// in cluster mode, redis-py), writes through any node replicate, and a node whose
/// certificate another CA signed cannot join.
#[test]
fn a_cluster_over_mutual_tls_serves_tls_clients_and_refuses_a_node_of_another_ca() {
    let certs = Certificates::make();
    let shared = [
        "--shards".to_string(),
        "4".into(),
        "--tls-cluster".into(),
        "yes".into(),
        "--tls-cert-file".into(),
        certs.path("node.crt"),
        "--tls-key-file".into(),
        certs.path("node.key"),
        "--tls-ca-cert-file".into(),
        certs.path("ca.crt"),
        "--tls-auth-clients".into(),
        "no".into(),
    ];
    let shared: Vec<&str> = shared.iter().map(String::as_str).collect();
    let tls_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let ports = tls_ports.clone();
    let mut cluster = Cluster::start_each("tls-cluster", 3, &shared, move |i| {
        vec!["--tls-port".into(), ports[i].to_string()]
    });
    // redis-cli in cluster mode over TLS: keys of every shard, through node 0.
    for k in 0..20 {
        let key = format!("k{k}");
        assert_eq!(
            cli(&certs, tls_ports[0], false, &["-c", "SET", &key, &key]),
            "OK"
        );
    }
    for (i, port) in tls_ports.iter().enumerate() {
        assert_eq!(
            cli(&certs, *port, false, &["-c", "GET", "k7"]),
            "k7",
            "node {i}"
        );
    }
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs={ca:?})\n\
         print(r.dbsize())\n",
        port = tls_ports[2],
        ca = certs.path("ca.crt")
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "20",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A node with another CA's certificate asks to join and is never admitted.
    let rogue_dir = test_dir("tls-rogue");
    let mut rogue = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args([
            "--port",
            &free_port().to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
        ])
        .arg(&rogue_dir)
        .args(["--cluster-port", &free_port().to_string(), "--shards", "4"])
        .args(["--tls-cluster", "yes"])
        .args(["--tls-cert-file", &certs.path("rogue.crt")])
        .args(["--tls-key-file", &certs.path("rogue.key")])
        .args(["--tls-ca-cert-file", &certs.path("rogue-ca.crt")])
        .args(["--join", &format!("127.0.0.1:{}", cluster.ports()[0])])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let mut c = cluster.client(0);
    let nodes = show(&c.call(&["CLUSTER", "NODES"]));
    let _ = rogue.kill();
    let _ = rogue.wait();
    let _ = std::fs::remove_dir_all(&rogue_dir);
    assert_eq!(nodes.matches("127.0.0.1").count(), 3, "{nodes}");
    // The cluster still takes writes after the refusals.
    assert_eq!(
        cli(&certs, tls_ports[1], false, &["-c", "SET", "after", "1"]),
        "OK"
    );
    cluster.kill_all_and_restart();
    assert_eq!(
        cli(&certs, tls_ports[2], false, &["-c", "GET", "after"]),
        "1"
    );
}

/// CONFIG SET of the certificate files takes effect for new connections without a restart;
/// files that do not load are refused and change nothing.
#[test]
fn certificates_reload_on_config_set() {
    let certs = Certificates::make();
    make_ca(&certs.dir, "ca2");
    issue(&certs.dir, "ca2", "server2", "serverAuth");
    let tls_port = free_port();
    let node = start(&certs, tls_port, &["--tls-auth-clients", "no"]);
    assert_eq!(cli(&certs, tls_port, false, &["PING"]), "PONG");
    let mut c = node.client();
    let refused = show(&c.call(&["CONFIG", "SET", "tls-cert-file", "/nonexistent.crt"]));
    assert!(
        refused
            .starts_with("-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file')"),
        "{refused}"
    );
    assert!(show(&c.call(&["CONFIG", "GET", "tls-cert-file"])).contains("server.crt"));
    assert_eq!(cli(&certs, tls_port, false, &["PING"]), "PONG");
    let (crt, key) = (certs.path("server2.crt"), certs.path("server2.key"));
    assert_eq!(
        show(&c.call(&["CONFIG", "SET", "tls-cert-file", &crt, "tls-key-file", &key])),
        "+OK\r\n"
    );
    // The old CA no longer vouches for the server; the new one does.
    let old = cli(&certs, tls_port, false, &["PING"]);
    assert!(!old.contains("PONG"), "{old}");
    let out = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &certs.path("ca2.crt"),
            "-p",
            &tls_port.to_string(),
            "PING",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
}
