//! What the memory allocator (mimalloc, the binary's global allocator) reports: memory
//! committed now and at peak, its statistics text, and returning freed memory to the OS.
//! MEMORY STATS, MALLOC-STATS and PURGE read these.

use std::ffi::{c_char, c_void, CStr};

/// Memory the allocator holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorMemory {
    /// Committed now and at most so far.
    pub committed: u64,
    pub peak_committed: u64,
    /// Resident now and at most so far, as the allocator sees the process.
    pub resident: u64,
    pub peak_resident: u64,
}

pub fn memory() -> AllocatorMemory {
    let (mut elapsed, mut user, mut system) = (0usize, 0usize, 0usize);
    let (mut rss, mut peak_rss, mut commit, mut peak_commit, mut faults) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    // SAFETY: mi_process_info writes each value through the pointer given, all of which
    // point to live locals of the type it expects.
    unsafe {
        libmimalloc_sys::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    AllocatorMemory {
        committed: commit as u64,
        peak_committed: peak_commit as u64,
        resident: rss as u64,
        peak_resident: peak_rss as u64,
    }
}

/// Appends each piece of text mimalloc prints to the `String` behind `arg`.
extern "C" fn collect_text(msg: *const c_char, arg: *mut c_void) {
    if msg.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the `&mut String` that `stats_text` passes for the duration of the
    // call, and mimalloc passes a NUL-terminated message.
    unsafe {
        let out = &mut *(arg as *mut String);
        out.push_str(&CStr::from_ptr(msg).to_string_lossy());
    }
}

/// The allocator's statistics report.
pub fn stats_text() -> String {
    let mut out = String::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        libmimalloc_sys::mi_stats_print_out(
            Some(collect_text),
            &mut out as *mut String as *mut c_void,
        );
    }
    out
}

/// Returns freed memory the allocator keeps to the operating system.
pub fn purge() {
    // SAFETY: mi_collect takes no pointers; `force` collects every thread's abandoned pages.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_reports_and_purges() {
        let m = memory();
        assert!(m.resident > 0 && m.peak_resident >= m.resident, "{m:?}");
        assert!(m.peak_committed >= m.committed, "{m:?}");
        assert!(!stats_text().is_empty());
        purge();
    }
}
