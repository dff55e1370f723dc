//! Blocking file and engine work called from async code (a snapshot installed or built,
//! a write waiting out an engine stall, SAVE, a received snapshot chunk written): it runs
//! on the calling thread after tokio has handed that worker's other tasks to another
//! thread (`block_in_place`), so one slow disk operation never freezes the connections and
//! groups that share the worker. Cheap work stays inline: this is for what may wait.
//! File reads (table blocks, Raft log entries) ask the page cache first and leave the
//! worker only for what it does not hold (`read_exact_at`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

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

/// Reads exactly `buf.len()` bytes of `file` at `offset`, as `FileExt::read_exact_at`,
/// without making an async worker wait for the disk: on a runtime worker the read first
/// asks only the page cache (`preadv2` with `RWF_NOWAIT`), and what the cache does not hold
/// is read with the worker handed on ([`run`]). Off a runtime (the engine's flush and
/// compaction threads) it simply reads.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    read_exact_at_or_wait(file, buf, offset).map(|_waited| ())
}

/// As [`read_exact_at`]; true when the worker was handed on for the disk.
fn read_exact_at_or_wait(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    let on_worker = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if !on_worker {
        return file.read_exact_at(buf, offset).map(|()| false);
    }
    let cached = read_cached(file, buf, offset);
    let rest = &mut buf[cached..];
    if rest.is_empty() {
        return Ok(false);
    }
    run(|| file.read_exact_at(rest, offset + cached as u64)).map(|()| true)
}

/// Reads from `offset` what the page cache holds, without waiting; how many bytes (0 when
/// it holds none of them or the kernel cannot tell without waiting).
fn read_cached(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let Ok(at) = libc::off_t::try_from(offset + done as u64) else {
            break;
        };
        let rest = &mut buf[done..];
        let iov = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        // SAFETY: `iov` describes `rest`, a live and writable buffer for the whole call, and
        // the descriptor is `file`'s, open for the whole call.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        if n <= 0 {
            // Not cached (EAGAIN), the end of the file, or a kernel without RWF_NOWAIT:
            // the plain read settles it.
            break;
        }
        done += n as usize;
    }
    done
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_read_the_page_cache_cannot_serve_leaves_the_worker() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("basalt-read-at-{}", std::process::id()));
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&data).unwrap();
        file.sync_all().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // Clean pages leave the page cache on this advice (ext4 and the like; not tmpfs).
        // SAFETY: a plain call on an open descriptor.
        let advised =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(advised, 0);
        let mut buf = vec![0u8; 8192];
        assert!(
            super::read_exact_at_or_wait(&file, &mut buf, 4096).unwrap(),
            "a read of evicted pages did not wait off the worker (is {} on tmpfs?)",
            std::env::temp_dir().display()
        );
        assert_eq!(buf, data[4096..4096 + 8192]);
        // Now cached: read in place, with the same bytes.
        buf.fill(0);
        assert!(!super::read_exact_at_or_wait(&file, &mut buf, 4096).unwrap());
        assert_eq!(buf, data[4096..4096 + 8192]);
        // Past the end: the error `read_exact_at` gives.
        let err = super::read_exact_at(&file, &mut buf, (1 << 20) - 100).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn off_a_runtime_it_simply_reads() {
        let path = std::env::temp_dir().join(format!("basalt-read-off-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut buf = [0u8; 4];
        assert!(!super::read_exact_at_or_wait(&file, &mut buf, 3).unwrap());
        assert_eq!(&buf, b"3456");
        let _ = std::fs::remove_file(&path);
    }
}
