//! Durability of the node's Raft log under `appendfsync`.
//!
//! `always`: appends are handed to one fsync thread; it syncs once for everything handed to
//! it so far (every group's appends) and then tells openraft each append is flushed.
//! `everysec`: openraft is told at once and a thread syncs about once a second. `no`: the
//! operating system decides. The policy can change at run time (CONFIG SET appendfsync).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::storage::IOFlushed;
use parking_lot::Mutex;

use super::log::RaftLog;
use super::types::TypeConfig;
use crate::storage::SyncPolicy;

pub struct Flusher {
    policy: AtomicU8,
    queue: Mutex<mpsc::Sender<(u64, IOFlushed<TypeConfig>)>>,
}

impl Flusher {
    /// Starts the fsync threads for `log`; they end when the flusher is dropped.
    pub fn start(log: Arc<RaftLog>, policy: SyncPolicy) -> Arc<Flusher> {
        let (tx, rx) = mpsc::channel::<(u64, IOFlushed<TypeConfig>)>();
        let flusher = Arc::new(Flusher {
            policy: AtomicU8::new(policy as u8),
            queue: Mutex::new(tx),
        });
        let synced_log = log.clone();
        std::thread::Builder::new()
            .name("raft-fsync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let upto = waiting.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
                    let result = synced_log.sync_to(upto);
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "raft log fsync failed");
                    }
                    for (_, callback) in waiting {
                        let each = match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                        };
                        callback.io_completed(each);
                    }
                }
            })
            .expect("spawning the raft fsync thread");
        let weak: Weak<Flusher> = Arc::downgrade(&flusher);
        std::thread::Builder::new()
            .name("raft-everysec".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                let Some(flusher) = weak.upgrade() else {
                    return;
                };
                if flusher.policy() == SyncPolicy::EverySec {
                    if let Err(e) = log.sync() {
                        tracing::error!(error = %e, "raft log fsync failed");
                    }
                }
            })
            .expect("spawning the raft everysec thread");
        flusher
    }

    pub fn policy(&self) -> SyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => SyncPolicy::Always,
            1 => SyncPolicy::EverySec,
            _ => SyncPolicy::No,
        }
    }

    pub fn set_policy(&self, policy: SyncPolicy) {
        self.policy.store(policy as u8, Ordering::Relaxed);
    }

    /// Reports an append (write number `seq` of the log) to openraft once it is as durable
    /// as the policy asks.
    pub fn appended(&self, seq: u64, callback: IOFlushed<TypeConfig>) {
        if self.policy() != SyncPolicy::Always {
            callback.io_completed(Ok(()));
            return;
        }
        if let Err(mpsc::SendError((_, callback))) = self.queue.lock().send((seq, callback)) {
            callback.io_completed(Err(std::io::Error::other("raft fsync thread stopped")));
        }
    }
}
