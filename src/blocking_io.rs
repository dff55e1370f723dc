//! Blocking file and engine work called from async code (a snapshot installed or built,
//! a write waiting out an engine stall, SAVE, a received snapshot chunk written): it runs
//! on the calling thread after tokio has handed that worker's other tasks to another
//! thread (`block_in_place`), so one slow disk operation never freezes the connections and
//! groups that share the worker. Cheap work stays inline: this is for what may wait.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, which may block, without holding up other tasks. On a current-thread
/// runtime (some unit tests) or off any runtime it simply runs.
pub fn run<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_blocking_work_waits() {
        let (tx, rx) = std::sync::mpsc::channel();
        // Spawned on the only worker: it can run only if that worker is handed on.
        tokio::spawn(async move { tx.send(()).unwrap() });
        let got = super::run(|| rx.recv_timeout(Duration::from_secs(5)));
        assert!(got.is_ok(), "the spawned task never ran");
    }

    #[tokio::test]
    async fn a_current_thread_runtime_runs_it_inline() {
        assert_eq!(super::run(|| 7), 7);
    }
}
