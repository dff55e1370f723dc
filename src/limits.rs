//! Bounds that are not settings, each named with its unit last.

/// Replies buffered for one connection before it tries a non-blocking write.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Pending output at which a connection stops running commands until the client reads
/// (back-pressure when no `client-output-buffer-limit` closes it first).
pub const OUTPUT_PENDING_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Pushed messages (published, invalidations) waiting for one client when no
/// `client-output-buffer-limit` bounds them sooner: past it the client is cut, since the
/// senders cannot wait for it.
pub const MAILBOX_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Commands a connection runs from one read before writing replies and reading again.
pub const PIPELINE_COMMANDS_MAX: usize = 1024;
/// Pipelined writes proposed together in one pass through the shard log.
pub const WRITE_BATCH_MAX: usize = 64;
/// Read buffer growth step.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Keys the active expiry cycle removes per database per pass.
pub const EXPIRE_KEYS_PER_PASS: usize = 200;
/// Scan cursors remembered between SCAN calls.
pub const SCAN_CURSORS_MAX: usize = 65_536;
/// Bytes of a request argument kept in a SLOWLOG entry, and arguments kept (as Redis).
pub const SLOWLOG_ARG_BYTES_MAX: usize = 128;
pub const SLOWLOG_ARGS_MAX: usize = 32;
/// How long DEBUG SLEEP may sleep at most, in seconds.
pub const DEBUG_SLEEP_SECS_MAX: f64 = 3600.0;
/// Picks SRANDMEMBER, HRANDFIELD and ZRANDMEMBER make with a negative count (picks that may
/// repeat, each an element of the reply): a larger count is out of range.
pub const RANDOM_REPEATS_MAX: u64 = 1 << 24;
