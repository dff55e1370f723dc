//! The node-wide Raft log under group commit: N writer threads, each appending to its own
//! group and waiting for durability (append + sync), as openraft's storage tasks will.
//! Reports appends/s and fsyncs/s, showing how one fsync covers many groups' appends.
//!
//! `cargo run --release --bin raft_log_bench -- [--threads 16] [--seconds 5] [--bytes 100]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt::raft::log::{LogEntry, LogId, RaftLog, SEGMENT_BYTES_DEFAULT};
use bytes::Bytes;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let threads = arg("--threads", 16);
    let seconds = arg("--seconds", 5);
    let bytes = arg("--bytes", 100) as usize;
    let dir = std::env::temp_dir().join(format!("basalt-raft-log-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Arc::new(RaftLog::open(&dir, SEGMENT_BYTES_DEFAULT).expect("open log"));
    let stop = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(AtomicU64::new(0));
    let payload = Bytes::from(vec![b'x'; bytes]);
    let workers: Vec<_> = (0..threads as u32)
        .map(|group| {
            let (log, stop, appends, payload) =
                (log.clone(), stop.clone(), appends.clone(), payload.clone());
            std::thread::spawn(move || {
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = LogId {
                        index,
                        term: 1,
                        leader: 1,
                    };
                    log.append(
                        group,
                        &[LogEntry {
                            id,
                            data: payload.clone(),
                        }],
                    )
                    .and_then(|seq| log.sync_to(seq))
                    .expect("append");
                    index += 1;
                    appends.fetch_add(1, Ordering::Relaxed);
                    if index % 10_000 == 0 {
                        let upto = LogId {
                            index: index - 5_000,
                            term: 1,
                            leader: 1,
                        };
                        log.purge(group, upto).expect("purge");
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = appends.load(Ordering::Relaxed);
    println!(
        "threads={threads} bytes={bytes}: {:.0} durable appends/s ({n} in {secs:.1} s), {:.0} fsyncs/s",
        n as f64 / secs,
        log.syncs() as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
