//! Real client tools against Basalt: redis-py (plain and pipelined), redis-benchmark.

use std::process::Command;

use crate::support::start_basalt;

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn redis_py_strings_keys_and_pipelines() {
    if !have("python3", "--version")
        || !Command::new("python3")
            .args(["-c", "import redis"])
            .status()
            .is_ok_and(|s| s.success())
    {
        panic!("redis-py is missing: scripts/setup.sh installs it (pip install redis)");
    }
    let server = start_basalt(&[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-compat/clients/redis_py_check.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-py check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn redis_benchmark_completes_without_errors() {
    assert!(
        have("redis-benchmark", "--version"),
        "redis-benchmark is missing: scripts/setup.sh installs redis-tools"
    );
    let server = start_basalt(&[]);
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &server.port.to_string(),
            "-q",
            "-n",
            "20000",
            "-c",
            "20",
        ])
        .args(["-t", "ping_inline,ping_mbulk,set,get,incr,mset"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{stderr}");
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(test) && l.contains(" requests per second")),
            "{test} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("ERR") && !stderr.contains("ERR"),
        "{text}\n{stderr}"
    );
}
