//! TLS on the client port: redis-cli `--tls` and redis-py with `ssl=True` against
//! `tls-port`, client certificates required, optional or not asked for, the plain port
//! open beside it. Certificates are made for each run with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

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

impl Certificates {
    fn make() -> Certificates {
        let dir = test_dir("tls-certs");
        std::fs::create_dir_all(&dir).unwrap();
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &key,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=basalt test CA",
                ],
            ]
            .concat(),
        );
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
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
            openssl(
                &dir,
                &[
                    &["req"][..],
                    &key,
                    &["-keyout", &k, "-out", &csr, "-subj", &format!("/CN={name}")],
                ]
                .concat(),
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
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
