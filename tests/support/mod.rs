//! Test support shared by the integration tests and redis-compat: start real `basalt` (and
//! `redis-server`) processes on free loopback ports, and a raw RESP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the server answering on `port` is `child` (another test's server may have taken
/// the port between `free_port` and the bind): INFO's process_id, or, when INFO needs a
/// password, our child still running a moment after the port answered.
fn answered_by(port: u16, child: &mut Child) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"INFO server\r\n");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.starts_with('-') && text.contains("\r\n") {
            std::thread::sleep(Duration::from_millis(100));
            return matches!(child.try_wait(), Ok(None));
        }
        if let Some(rest) = text.split("process_id:").nth(1) {
            if rest.contains("\r\n") {
                let pid = rest.split("\r\n").next().unwrap_or("").trim();
                return pid == child.id().to_string();
            }
        }
    }
    false
}

/// Starts a server with `command(port)` on a free port, retrying when another process
/// answers on the chosen port.
fn spawn_on_free_port(command: impl Fn(u16) -> Command) -> (Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        if let Some(child) = spawn_on(port, &command) {
            return (child, port);
        }
    }
    panic!("could not start a server on a free port");
}

/// Starts a server with `command(port)` and waits until it answers on `port`.
fn spawn_on(port: u16, command: impl Fn(u16) -> Command) -> Option<Child> {
    {
        let mut child = command(port)
            .stdout(Stdio::null())
            .spawn()
            .expect("start server");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut listening = false;
        while Instant::now() < deadline {
            // A connection from the port to itself (TCP simultaneous open, when the kernel
            // picks `port` as the ephemeral source) is not a listening server.
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                if stream.local_addr().map(|a| a.port()).ok() != Some(port) {
                    listening = true;
                    break;
                }
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if listening && answered_by(port, &mut child) {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

/// A server process killed on drop.
pub struct Process {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// Whether dropping the process removes `dir` (false for a caller-owned directory).
    owns_dir: bool,
}

impl Process {
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "basalt-test-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `basalt` with extra redis.conf-style flags, in a fresh data directory.
pub fn start_basalt(flags: &[&str]) -> Process {
    let mut p = start_basalt_in(&temp_dir("basalt"), flags);
    p.owns_dir = true;
    p
}

/// A fresh directory for tests that restart a server on the same data.
pub fn test_dir(tag: &str) -> PathBuf {
    temp_dir(tag)
}

fn basalt_command(port: u16, dir: &std::path::Path, flags: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir);
    // The node-to-node port: a free one unless the test chose it.
    if !flags.contains(&"--cluster-port") {
        cmd.args(["--cluster-port", &free_port().to_string()]);
    }
    cmd.args(flags);
    // BASALT_TEST_LOGS=1 keeps each node's log beside its data dir (`<dir>.log`).
    let log = std::env::var_os("BASALT_TEST_LOGS").and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))
            .ok()
    });
    match log {
        Some(file) => cmd.stderr(file),
        None => cmd.stderr(Stdio::null()),
    };
    cmd
}

/// Starts `basalt` on the data in `dir` (kept when the process is dropped).
pub fn start_basalt_in(dir: &std::path::Path, flags: &[&str]) -> Process {
    let dir = dir.to_path_buf();
    let (child, port) = spawn_on_free_port(|port| basalt_command(port, &dir, flags));
    Process {
        child,
        port,
        dir,
        owns_dir: false,
    }
}

/// Starts `basalt` on client port `port` with the data in `dir` (a node restarted where its
/// peers know it), or `None` when it did not come up there (the port taken meanwhile, or
/// the process exited).
pub fn try_start_basalt_at(dir: &std::path::Path, port: u16, flags: &[&str]) -> Option<Process> {
    let child = spawn_on(port, |port| basalt_command(port, dir, flags))?;
    Some(Process {
        child,
        port,
        dir: dir.to_path_buf(),
        owns_dir: false,
    })
}

/// Path of redis-server, installing it with apt-get when it is missing.
pub fn redis_server_path() -> Option<PathBuf> {
    let find = || {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let _ = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && apt-get install -y -qq redis-server redis-tools",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    find()
}

/// Starts a real redis-server as the oracle: no persistence, on loopback.
pub fn start_redis() -> Process {
    start_redis_with(&[])
}

/// `start_redis` with extra redis.conf flags (`--cluster-enabled yes`…).
pub fn start_redis_with(flags: &[&str]) -> Process {
    let path = redis_server_path().expect("redis-server is not installed and apt-get failed");
    let dir = temp_dir("redis");
    let (child, port) = spawn_on_free_port(|port| {
        let mut cmd = Command::new(&path);
        cmd.stderr(Stdio::null());
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(flags)
        .arg("--dir")
        .arg(&dir);
        cmd
    });
    Process {
        child,
        port,
        dir,
        owns_dir: true,
    }
}

/// A reply as raw bytes of one complete RESP frame.
pub type RawReply = Vec<u8>;

/// A blocking raw RESP client.
pub struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::connect_to(&format!("127.0.0.1:{port}")).expect("connect")
    }

    /// Connects to `addr` (`ip:port`).
    pub fn connect_to(addr: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Ok(Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes bytes, reporting failure (the server may have closed the connection).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode_command(args));
    }

    /// Sends a command and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> RawReply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        self.read_reply()
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> RawReply {
        self.send(args);
        self.read_reply()
    }

    /// Reads one complete reply frame (nested aggregates included).
    pub fn read_reply(&mut self) -> RawReply {
        let mut out = Vec::new();
        read_frame(&mut self.reader, &mut out).expect("read reply");
        out
    }

    pub fn try_read_reply(&mut self) -> std::io::Result<RawReply> {
        let mut out = Vec::new();
        read_frame(&mut self.reader, &mut out)?;
        Ok(out)
    }

    /// True once the server has closed the connection (EOF, or a reset when it closed with
    /// unread input).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }
}

pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    out.extend_from_slice(&line);
    Ok(line)
}

fn read_frame(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let line = read_line(reader, out)?;
    let body = std::str::from_utf8(&line[1..line.len().saturating_sub(2)]).unwrap_or("0");
    let n: i64 = body.parse().unwrap_or(0);
    match line[0] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let mut data = vec![0u8; n as usize + 2];
            reader.read_exact(&mut data)?;
            out.extend_from_slice(&data);
        }
        b'*' | b'~' | b'>' => {
            for _ in 0..n.max(0) {
                read_frame(reader, out)?;
            }
        }
        b'%' | b'|' => {
            for _ in 0..n.max(0) * 2 {
                read_frame(reader, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reply bytes as text for assertion messages.
pub fn show(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}
