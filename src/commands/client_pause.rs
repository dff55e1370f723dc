//! CLIENT PAUSE and UNPAUSE: for a while, this node's clients wait before running commands —
//! every command (`ALL`, the default) or only those that write or may write (`WRITE`:
//! writes, EVAL/FCALL, PUBLISH, and EXEC of a transaction that queued any). Waiting clients
//! go on, in order, when the pause ends or CLIENT UNPAUSE lifts it; the node's expire cycle
//! pauses too, so no key is deleted meanwhile. As in Redis, under `ALL` even CLIENT UNPAUSE
//! waits. The pause is this node's alone: commands other nodes forward here are not held.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

use super::args::{self, eq};
use super::error::CmdError;
use super::{reply, CmdResult, Ctx};
use crate::clock;
use crate::protocol::Reply;

/// What a pause holds, in increasing strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum PauseMode {
    Off = 0,
    Write = 1,
    All = 2,
}

/// The node's pause: its mode and when it ends.
#[derive(Default)]
pub struct ClientPause {
    mode: AtomicU8,
    until_ms: AtomicU64,
    lifted: Notify,
}

impl ClientPause {
    /// Pauses until `until_ms` in `mode`; an earlier pause keeps the stricter mode and the
    /// later end (as Redis merges them).
    fn pause(&self, mode: PauseMode, until_ms: u64) {
        self.mode.fetch_max(mode as u8, Ordering::AcqRel);
        self.until_ms.fetch_max(until_ms, Ordering::AcqRel);
    }

    fn unpause(&self) {
        self.mode.store(PauseMode::Off as u8, Ordering::Release);
        self.until_ms.store(0, Ordering::Release);
        self.lifted.notify_waiters();
    }

    /// Whether a pause was set (it may have run out already).
    pub fn is_on(&self) -> bool {
        self.mode.load(Ordering::Acquire) != PauseMode::Off as u8
    }

    /// The mode in force at `now_ms`.
    pub fn mode(&self, now_ms: u64) -> PauseMode {
        match self.mode.load(Ordering::Acquire) {
            _ if self.until_ms.load(Ordering::Acquire) <= now_ms => PauseMode::Off,
            2 => PauseMode::All,
            1 => PauseMode::Write,
            _ => PauseMode::Off,
        }
    }

    /// Waits while a pause holds a command (`writes`: whether it writes or may write).
    pub async fn wait(&self, writes: bool) {
        loop {
            // Registered before the pause is looked at, so an UNPAUSE in between wakes it.
            let lifted = self.lifted.notified();
            let now = clock::now_ms();
            let holds = match self.mode(now) {
                PauseMode::Off => false,
                PauseMode::Write => writes,
                PauseMode::All => true,
            };
            if !holds {
                return;
            }
            let until = self.until_ms.load(Ordering::Acquire);
            let left = std::time::Duration::from_millis(until.saturating_sub(now).max(1));
            let _ = tokio::time::timeout(left, lifted).await;
        }
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL], with redis-server's error texts.
pub fn client_pause(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(super::connection::wrong_client_arity(args));
    }
    let mode = match args.get(3) {
        None => PauseMode::All,
        Some(m) if eq(m, "ALL") => PauseMode::All,
        Some(m) if eq(m, "WRITE") => PauseMode::Write,
        Some(_) => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = args::int(&args[2])
        .map_err(|_| CmdError::msg("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    let until = clock::now_ms().saturating_add(ms as u64);
    ctx.shared.client_pause.pause(mode, until);
    reply(Reply::OK)
}

pub fn client_unpause(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.shared.client_pause.unpause();
    reply(Reply::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pauses_merge_and_lift() {
        let p = ClientPause::default();
        let now = clock::now_ms();
        assert_eq!(p.mode(now), PauseMode::Off);
        p.pause(PauseMode::Write, now + 60_000);
        p.pause(PauseMode::All, now + 10);
        // The stricter mode and the later end.
        assert_eq!(p.mode(now), PauseMode::All);
        assert_eq!(p.mode(now + 30_000), PauseMode::All);
        p.unpause();
        assert_eq!(p.mode(now), PauseMode::Off);
        p.pause(PauseMode::Write, now + 60_000);
        // A read is not held by a WRITE pause; a write waits until the pause is lifted.
        p.wait(false).await;
        let waiter = async { p.wait(true).await };
        let lifter = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            p.unpause();
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(waiter, lifter)
        })
        .await
        .expect("the write went on once the pause was lifted");
    }
}
