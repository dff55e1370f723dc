//! Dispatch: a request from lookup to reply — resolve the command, route it (here, or the
//! leader of its shard), run its handler, block, propose its write (batched with the
//! pipeline's other writes) and account for it.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::forwarding::{Forwarded, Pending};
use super::routing::Route;
use super::Node;
use crate::clock;
use crate::cluster::{ShardId, ShardSet};
use crate::commands::error::{self, error_prefix, CmdError};
use crate::commands::{acl, monitor, pubsub, BlockOn, CmdResult, Command, Ctx, Outcome, Session};
use crate::keyspace::ValueType;
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp};

/// What every command but the few flagged `allow_busy` gets while a script has run past
/// `busy-reply-threshold`.
const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// A request after `Node::prepare`.
pub enum Prepared<'a> {
    /// Answered (reads, errors, connection and server commands).
    Done(Reply),
    /// A normalised write waiting to be proposed.
    Write(PendingWrite<'a>),
    /// A command for the leader of its shard, another node (sent with the pipeline's
    /// other commands for that node).
    Forward(super::forwarding::Forwarded<'a>),
}

/// How a connection schedules a request. See [`Node::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Write,
    Blocking,
    Other,
}

/// A write command that has passed its handler and waits to be proposed.
pub struct PendingWrite<'a> {
    cmd: &'a Command,
    shards: ShardSet,
    entry: Entry,
    args: Vec<Bytes>,
    started_us: u64,
}

impl Node {
    /// Runs one request and returns its reply.
    pub async fn execute(&self, session: &mut Session, args: Vec<Bytes>) -> Reply {
        let pending = match self.prepare(session, args).await {
            Prepared::Done(reply) => return reply,
            Prepared::Write(write) => Pending::Write(write),
            Prepared::Forward(forward) => Pending::Forward(forward),
        };
        self.commit(vec![pending], session)
            .await
            .pop()
            .unwrap_or(Reply::Null)
    }

    /// How the connection schedules a request, from one table lookup: a write's reply may
    /// wait for the writes after it (they are proposed together); a blocking command runs
    /// alone, after the writes before it are committed (they may be what it waits for).
    pub fn classify(&self, args: &[Bytes]) -> RequestKind {
        let blocking = |cmd: &Command| {
            cmd.spec.has_flag("blocking")
                || (!cmd.subcommands.is_empty()
                    && args.len() > 1
                    && cmd
                        .subcommand(&args[1])
                        .is_some_and(|sub| sub.spec.has_flag("blocking")))
        };
        match self.shared.table.get(&args[0]) {
            Some(cmd) if blocking(cmd) => RequestKind::Blocking,
            Some(cmd) if cmd.subcommands.is_empty() && cmd.writes(args) => RequestKind::Write,
            _ => RequestKind::Other,
        }
    }

    /// Runs a request up to proposing: a read or an error is answered here; a write comes
    /// back as a `PendingWrite`, to be committed with the writes that follow it in the same
    /// pipeline (one pass through the shard log for all of them).
    pub async fn prepare(&self, session: &mut Session, args: Vec<Bytes>) -> Prepared<'_> {
        session.begin_command(&args[0]);
        session.refresh_user(&self.shared.acl);
        // One clock read gives both the command's time and the start of its duration.
        let started_us = clock::now_us();
        let cmd = match self.resolve(session, &args) {
            Ok(cmd) => cmd,
            Err(reply) => {
                let reply = self.refused_in_multi(session, &args, reply);
                return Prepared::Done(self.count_error(reply));
            }
        };
        if self.shared.scripts.busy() && !cmd.spec.has_flag("allow_busy") {
            let busy = if self.shared.scripts.running_is_function() {
                BUSY_FUNCTION
            } else {
                BUSY
            };
            return Prepared::Done(self.count_error(Reply::error(busy)));
        }
        if session.in_subscribed_mode() && !pubsub::allowed_when_subscribed(cmd.spec.name) {
            return Prepared::Done(self.count_error(pubsub::subscribed_mode_error(cmd.spec.name)));
        }
        if session.monitor.is_some() && monitor::refused_to_monitor(cmd) {
            return Prepared::Done(self.count_error(Reply::error(monitor::KEYSPACE_REFUSED)));
        }
        // CLIENT PAUSE holds this node's clients here (before a command is queued in MULTI
        // too, as Redis holds them).
        let may_write = || {
            cmd.writes(&args)
                || cmd.spec.has_flag("may_replicate")
                || (cmd.spec.name == "exec" && self.queued_writes(session))
        };
        if self.shared.client_pause.is_on() {
            self.shared.client_pause.wait(may_write()).await;
        }
        if session.multi.is_some() {
            if let Some(reply) = self.queue_in_multi(session, cmd, &args) {
                return Prepared::Done(reply);
            }
            if cmd.spec.name == "exec" {
                // CLIENT LIST inside shows the transaction running, as Redis does.
                session.info.touch(cmd.spec.name, started_us / 1000);
                let reply = self.exec(session, started_us).await;
                session.show_multi();
                self.finish(cmd, &reply, session, &args, started_us);
                return Prepared::Done(reply);
            }
        }
        monitor::feed_starting(&self.shared, cmd, session, &args);
        // A forwarding connection's watches and subscriptions are kept here, with it.
        let route = if stays_here(cmd.spec.name) && !self.redirects(session) {
            Route::Here
        } else {
            self.route_elsewhere(cmd, session, &args).await
        };
        match route {
            Route::Here => {}
            Route::Answered(reply) => {
                self.finish(cmd, &reply, session, &args, started_us);
                return Prepared::Done(reply);
            }
            Route::To(leader) => {
                session.routes.rule_out();
                let args = match self.script_for_forwarding(cmd, args) {
                    Ok(args) => args,
                    Err(reply) => return Prepared::Done(self.count_error(reply)),
                };
                self.remember_reads(cmd, session, &args);
                if cmd.is_write() {
                    let shards = self.route(cmd, &args);
                    session.wrote_to(shards.iter(self.shards.shard_count()));
                }
                return Prepared::Forward(Forwarded {
                    cmd,
                    leader,
                    args,
                    started_us,
                });
            }
        }
        let now_ms = started_us / 1000;
        session.info.touch(cmd.spec.name, now_ms);
        self.remember_reads(cmd, session, &args);
        self.note_route(cmd, session, &args);
        if let Some(reply) = self.across_shards(cmd, session, &args).await {
            self.finish(cmd, &reply, session, &args, started_us);
            return Prepared::Done(reply);
        }
        let outcome = self.run_handler(cmd, session, &args, now_ms).await;
        let reply = match outcome {
            Ok(Outcome::Reply(reply)) => reply,
            Ok(Outcome::Propose(normalised)) => {
                let shards = self.route(cmd, &args);
                session.wrote_to(shards.iter(self.shards.shard_count()));
                let entry = Entry {
                    origin: self.write_origin(session),
                    ..Entry::new(session.db, now_ms, EntryOp::Command(normalised))
                };
                return Prepared::Write(PendingWrite {
                    cmd,
                    shards,
                    entry,
                    args,
                    started_us,
                });
            }
            Ok(Outcome::Delay(duration, reply)) => {
                tokio::time::sleep(duration).await;
                reply
            }
            Ok(Outcome::Block(on)) => {
                let reply = self.block(cmd, session, &args, on, started_us).await;
                return Prepared::Done(reply);
            }
            Ok(Outcome::WaitReplicas(wanted, timeout_ms)) => {
                self.wait_for_replicas(&session.written, wanted, timeout_ms)
                    .await
            }
            Ok(Outcome::ChangeUsers(change, reply)) => match self.change_users(change).await {
                Ok(()) => reply,
                Err(e) => Reply::Error(format!("ERR {e}")),
            },
            Ok(Outcome::Script(call)) => self.run_script(session, &args, &call).await,
            Ok(Outcome::ChangeLibraries(change, reply)) => {
                match self.change_libraries(change).await {
                    Ok(()) => reply,
                    Err(e) => Reply::Error(format!("ERR {e}")),
                }
            }
            Err(e) => e.into_reply(),
        };
        if cmd.spec.name == "watch" && !matches!(reply, Reply::Error(_)) {
            self.watch_at_leaders(session, &args[1..]).await;
        }
        self.note_layout_asked(cmd, session);
        self.finish(cmd, &reply, session, &args, started_us);
        Prepared::Done(reply)
    }

    /// Before a command runs here: it waits while a cross-shard transaction holds one of
    /// its keys, and a write over keys of several shards in a cluster runs as a cross-shard
    /// transaction when they are on. `Some(reply)` when that answered it.
    async fn across_shards(
        &self,
        cmd: &Command,
        session: &mut Session,
        args: &[Bytes],
    ) -> Option<Reply> {
        if let Err(reply) = self.wait_for_locks(cmd, session.db, args).await {
            return Some(reply);
        }
        if !cmd.is_write() || !matches!(self.route(cmd, args), ShardSet::Some(_)) {
            return None;
        }
        if !self.runs_across_shards() {
            return None;
        }
        let queued = [(cmd, args.to_vec())];
        Some(
            match self.exec_across_shards(session, &queued, None).await {
                Reply::Array(mut replies) if replies.len() == 1 => {
                    replies.pop().unwrap_or(Reply::Null)
                }
                other => other,
            },
        )
    }

    /// Runs a command's handler, then deletes through the shard log the keys it found
    /// expired.
    async fn run_handler(
        &self,
        cmd: &Command,
        session: &mut Session,
        args: &[Bytes],
        now_ms: u64,
    ) -> CmdResult {
        let mut ctx = Ctx {
            shared: &self.shared,
            keyspace: &self.shared.keyspace,
            cluster: self,
            session,
            now_ms,
            expired: Vec::new(),
        };
        let outcome = (cmd.run)(&mut ctx, args);
        let expired = std::mem::take(&mut ctx.expired);
        if !expired.is_empty() {
            self.expire_now(session.db, now_ms, expired).await;
        }
        outcome
    }

    /// Parks a blocking command until what it waits for changes, its timeout, or CLIENT
    /// UNBLOCK, running it again after each wake-up (`blocking.rs`).
    async fn block(
        &self,
        cmd: &Command,
        session: &mut Session,
        args: &[Bytes],
        on: BlockOn,
        started_us: u64,
    ) -> Reply {
        use crate::commands::blocking::Unblocked;
        let deadline = on.timeout.map(|t| tokio::time::Instant::now() + t);
        let timed_out = crate::commands::lists_blocking::TIMEOUT_REPLY;
        let waiter = self
            .shared
            .blocking
            .register(session.id(), session.db, &on.waits_for);
        let info = session.info.clone();
        // A stream consumer that finds nothing hands its wake-up to the next one.
        let passes_on = matches!(
            on.waits_for,
            crate::commands::blocking::WaitFor::Stream { consumer: true, .. }
        );
        let again = on.again.unwrap_or_else(|| args.to_vec());
        let reply = loop {
            // Registered first, then checked: a write in between is not missed.
            let now_ms = clock::now_ms();
            let outcome = self.run_handler(cmd, session, &again, now_ms).await;
            match outcome {
                Ok(Outcome::Propose(normalised)) => {
                    let write = PendingWrite {
                        cmd,
                        shards: self.route(cmd, &again),
                        entry: Entry {
                            origin: self.write_origin(session),
                            ..Entry::new(session.db, now_ms, EntryOp::Command(normalised))
                        },
                        args: again.clone(),
                        started_us,
                    };
                    let reply = self.commit_writes(vec![write], session).await.pop();
                    match reply {
                        // Another client took the elements first (or, for a stream
                        // consumer, its group has nothing new): wait again.
                        Some(r) if crate::commands::lists_blocking::found_nothing(&r) => {
                            if passes_on {
                                self.shared.blocking.pass_on(&waiter);
                            }
                        }
                        Some(r) => {
                            // Served: its own apply woke the next waiter, so the wake-up
                            // it used is not passed on.
                            waiter.rearm();
                            self.shared.blocking.unregister(&waiter);
                            return r;
                        }
                        None => break Reply::Null,
                    }
                }
                Ok(Outcome::Block(..)) if passes_on => self.shared.blocking.pass_on(&waiter),
                Ok(Outcome::Block(..)) => {}
                Ok(Outcome::Reply(r)) | Ok(Outcome::Delay(_, r)) => break r,
                Ok(Outcome::WaitReplicas(..)) => break Reply::Integer(0),
                Ok(Outcome::ChangeUsers(_, r)) => break r,
                // No scripting command blocks.
                Ok(Outcome::Script(_)) | Ok(Outcome::ChangeLibraries(..)) => {
                    break Reply::error("ERR only blocking commands block")
                }
                Err(e) => break e.into_reply(),
            }
            waiter.rearm();
            let woken = tokio::select! {
                w = waiter.wait() => Some(w),
                _ = sleep_until(deadline) => None,
                _ = info.killed() => break Reply::Null,
            };
            match woken {
                Some(None) => continue,
                Some(Some(Unblocked::Error)) => {
                    break Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                }
                Some(Some(Unblocked::Timeout)) | None => break timed_out,
            }
        };
        self.shared.blocking.unregister(&waiter);
        self.finish(cmd, &reply, session, args, started_us);
        reply
    }

    /// Proposes prepared writes, in order; returns their replies in the same order. Runs of
    /// single-shard writes are proposed together (each group keeps their order).
    pub(super) async fn commit_writes(
        &self,
        writes: Vec<PendingWrite<'_>>,
        session: &Session,
    ) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(writes.len());
        let mut run: Vec<(ShardId, Entry)> = Vec::new();
        let mut done = Vec::with_capacity(writes.len());
        for w in writes {
            match w.shards {
                ShardSet::One(shard) => run.push((shard, w.entry)),
                shards => {
                    let resp3 = Some(session.resp3);
                    replies.extend(self.propose_run(std::mem::take(&mut run), resp3).await);
                    replies.push(self.propose_spanning(&shards, w.entry).await);
                }
            }
            done.push((w.cmd, w.args, w.started_us));
        }
        replies.extend(self.propose_run(run, Some(session.resp3)).await);
        for ((cmd, args, started_us), reply) in done.iter().zip(&replies) {
            self.finish(cmd, reply, session, args, *started_us);
        }
        replies
    }

    /// Proposes single-shard writes together, holding their shards' gates shared.
    /// `resp3`: the client's protocol when the writes come from a client (they are then
    /// forwarded if their shard's leadership has just moved elsewhere).
    async fn propose_run(&self, run: Vec<(ShardId, Entry)>, resp3: Option<bool>) -> Vec<Reply> {
        if run.is_empty() {
            return Vec::new();
        }
        let mut shards: Vec<ShardId> = run.iter().map(|(s, _)| *s).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut guards = Vec::with_capacity(shards.len());
        for s in &shards {
            guards.push(self.gates[usize::from(s.0)].read().await);
        }
        // One entry per shard (and database): its writes of the run, in order.
        let mut batches: Vec<(ShardId, Entry)> = Vec::new();
        let mut slots = Vec::with_capacity(run.len());
        for (shard, entry) in run {
            let fits = |(s, e): &(ShardId, Entry)| {
                *s == shard && e.db == entry.db && !matches!(e.op, EntryOp::Expire(_))
            };
            match batches.iter().position(fits) {
                Some(b) if matches!(entry.op, EntryOp::Command(_)) => {
                    let batch = &mut batches[b].1;
                    batch.now_ms = batch.now_ms.max(entry.now_ms);
                    let EntryOp::Command(args) = entry.op else {
                        unreachable!("matched above")
                    };
                    let position = match &mut batch.op {
                        EntryOp::Batch(commands) => {
                            commands.push(args);
                            commands.len() - 1
                        }
                        op => {
                            let EntryOp::Command(first) =
                                std::mem::replace(op, EntryOp::Batch(Vec::new()))
                            else {
                                unreachable!("only commands are batched")
                            };
                            *op = EntryOp::Batch(vec![first, args]);
                            1
                        }
                    };
                    slots.push((b, Some(position)));
                }
                _ => {
                    batches.push((shard, entry));
                    slots.push((batches.len() - 1, None));
                }
            }
        }
        let proposals = batches.into_iter().map(|(shard, entry)| async move {
            let batched = matches!(entry.op, EntryOp::Batch(_));
            let reply = match self.propose(shard, &entry).await {
                Ok(reply) => reply,
                // Leadership moved before the entry was appended: the new leader runs it.
                Err(crate::raft::ProposeError::NotLeader(_)) if resp3.is_some() => {
                    self.forward_entry(shard, &entry, resp3.unwrap_or(false))
                        .await
                }
                Err(e) => Reply::Error(e.to_string()),
            };
            match reply {
                Reply::Array(replies) if batched => replies,
                other => vec![other],
            }
        });
        let results = join_in_order(proposals).await;
        drop(guards);
        slots
            .into_iter()
            .map(|(b, position)| {
                let replies = &results[b];
                let at = position.unwrap_or(0);
                // A batch that failed as a whole has one (error) reply for all.
                replies
                    .get(at)
                    .or(replies.first())
                    .cloned()
                    .unwrap_or(Reply::Null)
            })
            .collect()
    }

    /// Proposes a write that spans shards: with all of them held exclusively, through the
    /// group of the first one, which applies the whole write. Only a node that is the sole
    /// voter of every group may do this; in a cluster such a write is refused.
    async fn propose_spanning(&self, shards: &ShardSet, entry: Entry) -> Reply {
        let groups = self.groups();
        if !groups.alone() {
            return self.keyless_in_cluster(shards, entry).await;
        }
        let ids = shards.ids(self.shards.shard_count());
        let mut guards = Vec::with_capacity(ids.len());
        for s in &ids {
            guards.push(self.gates[usize::from(s.0)].write().await);
        }
        let reply = self.propose(ids[0], &entry).await;
        drop(guards);
        reply.unwrap_or_else(|e| Reply::Error(e.to_string()))
    }

    /// A write over several shards in a cluster: FLUSHDB and FLUSHALL flush each shard's
    /// slots; SWAPDB is refused, as in Redis Cluster; a write over keys of several shards
    /// gets `-CROSSSLOT`.
    async fn keyless_in_cluster(&self, shards: &ShardSet, entry: Entry) -> Reply {
        if let (ShardSet::All, EntryOp::Command(args)) = (shards, &entry.op) {
            let name = args[0].to_ascii_lowercase();
            match &name[..] {
                b"flushall" | b"flushdb" => {
                    let all_dbs = &name[..] == b"flushall";
                    return self.flush_everywhere(entry.db, entry.now_ms, all_dbs).await;
                }
                b"swapdb" => return Reply::error("ERR SWAPDB is not allowed in cluster mode"),
                _ => {}
            }
        }
        Reply::error("CROSSSLOT Keys in request don't hash to the same slot")
    }

    /// Access tracking and statistics once a command has its reply.
    pub(super) fn finish(
        &self,
        cmd: &Command,
        reply: &Reply,
        session: &Session,
        args: &[Bytes],
        started_us: u64,
    ) {
        self.touch_keys(cmd, session, args, started_us / 1000);
        let elapsed_us = clock::now_us().saturating_sub(started_us);
        self.account(cmd, reply, elapsed_us, session, args);
    }

    /// Finds the command (and subcommand), checks arity and authentication.
    pub(super) fn resolve(&self, session: &Session, args: &[Bytes]) -> Result<&Command, Reply> {
        let name = &args[0];
        let Some(cmd) = self.shared.table.get(name) else {
            return Err(Reply::Error(unknown_command_text(args)));
        };
        let container_alone = args.len() < 2 || !cmd.spec.arity_allows(args.len());
        let cmd = if cmd.subcommands.is_empty() || container_alone {
            cmd
        } else {
            match cmd.subcommand(&args[1]) {
                Some(sub) => sub,
                None => {
                    cmd.stats.rejected_calls.add(1);
                    return Err(Reply::Error(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        sanitize(&args[1], 128),
                        String::from_utf8_lossy(name).to_ascii_uppercase()
                    )));
                }
            }
        };
        if !cmd.spec.arity_allows(args.len()) {
            cmd.stats.rejected_calls.add(1);
            return Err(CmdError::WrongArity(cmd.spec.name.to_string()).into_reply());
        }
        if !session.authenticated && !cmd.spec.has_flag("no_auth") && self.shared.auth_required() {
            cmd.stats.rejected_calls.add(1);
            return Err(Reply::error(error::NOAUTH));
        }
        if let Err(denied) = acl::check(&session.user, cmd, args) {
            cmd.stats.rejected_calls.add(1);
            self.log_refusal(session, &denied, cmd, args, false);
            return Err(Reply::Error(acl::noperm(&denied, cmd)));
        }
        Ok(cmd)
    }

    /// Records an ACL refusal in ACL LOG.
    pub(super) fn log_refusal(
        &self,
        session: &Session,
        denied: &acl::Denied,
        cmd: &Command,
        args: &[Bytes],
        in_script: bool,
    ) {
        // The refused command is the client's last, as CLIENT LIST in the entry shows.
        session.info.touch(cmd.spec.name, clock::now_ms());
        let (reason, object) = acl::refused_object(denied, cmd, args);
        let name = &session.user.name;
        acl::log_refusal(&self.shared, session, in_script, reason, object, name);
    }

    /// The shards a write touches: those of its keys, or all for a keyless write.
    pub(super) fn route(&self, cmd: &Command, args: &[Bytes]) -> ShardSet {
        let mut shards = cmd
            .key_positions(args)
            .map(|i| self.shards.shard_of_key(&args[i]));
        let Some(first) = shards.next() else {
            return ShardSet::All;
        };
        let mut all: Vec<ShardId> = Vec::new();
        for shard in shards {
            if shard != first || !all.is_empty() {
                if all.is_empty() {
                    all.push(first);
                }
                all.push(shard);
            }
        }
        if all.is_empty() {
            ShardSet::One(first)
        } else {
            ShardSet::from_unsorted(all)
        }
    }

    /// Deletes keys found expired at `now_ms`, through the shard log (grouped per shard);
    /// returns how many were deleted.
    pub(super) async fn expire_now(&self, db: u8, now_ms: u64, keys: Vec<Bytes>) -> u64 {
        let mut by_shard: std::collections::BTreeMap<ShardId, Vec<Bytes>> = Default::default();
        for key in keys {
            by_shard
                .entry(self.shards.shard_of_key(&key))
                .or_default()
                .push(key);
        }
        let mut removed = 0;
        for (shard, keys) in by_shard {
            let entry = Entry::new(db, now_ms, EntryOp::Expire(keys));
            if let [Reply::Integer(n)] = self.propose_run(vec![(shard, entry)], None).await[..] {
                removed += n as u64;
            }
        }
        removed
    }

    /// Records access to the command's keys for OBJECT IDLETIME/FREQ, unless the client is in
    /// NO-TOUCH mode (TOUCH itself always touches) or the command is OBJECT.
    fn touch_keys(&self, cmd: &Command, session: &Session, args: &[Bytes], now_ms: u64) {
        let name = cmd.spec.name;
        let no_touch = session.info.no_touch.load(Ordering::Relaxed) && name != "touch";
        if no_touch || name.starts_with("object") {
            return;
        }
        let lfu = self.shared.config.lfu_policy();
        for i in cmd.key_positions(args) {
            self.shared.access.touch(session.db, &args[i], now_ms, lfu);
        }
    }

    /// Whether the transaction `session` queued holds a write.
    fn queued_writes(&self, session: &Session) -> bool {
        session.multi.as_ref().is_some_and(|m| {
            m.queued
                .iter()
                .any(|q| self.shared.table.get(&q[0]).is_some_and(|c| c.writes(q)))
        })
    }

    fn count_error(&self, reply: Reply) -> Reply {
        if let Reply::Error(text) = &reply {
            self.shared.stats.count_error(error_prefix(text));
        }
        reply
    }

    fn account(
        &self,
        cmd: &Command,
        reply: &Reply,
        elapsed_us: u64,
        session: &Session,
        args: &[Bytes],
    ) {
        self.shared.stats.commands_processed.add(1);
        let config = &self.shared.config;
        cmd.stats.record_call(elapsed_us, config.latency_tracking());
        let threshold_ms = config.latency_monitor_threshold_ms();
        if threshold_ms > 0 && elapsed_us / 1000 >= threshold_ms {
            let event = crate::commands::latency::event_of(cmd);
            self.shared
                .latency
                .record(event, elapsed_us / 1000, clock::now_ms() / 1000);
        }
        if let Reply::Error(text) = reply {
            cmd.stats.failed_calls.add(1);
            self.shared.stats.count_error(error_prefix(text));
        }
        monitor::feed_ran(&self.shared, cmd, session, args);
        let threshold = self.shared.config.slowlog_slower_than_us();
        let logged = || cmd.spec.name != "slowlog|get" && !cmd.spec.has_flag("skip_slowlog");
        if threshold >= 0 && elapsed_us >= threshold as u64 && logged() {
            let name = session.info.name.lock().clone().unwrap_or_default();
            let client = (
                session.info.addr.to_string(),
                String::from_utf8_lossy(&name).into(),
            );
            self.shared.slowlog.record(
                args,
                elapsed_us,
                client,
                self.shared.config.slowlog_max_len(),
            );
        }
    }
}

/// Runs futures concurrently and returns their outputs in order. Each is first polled in
/// order, so proposals reach their groups in the order given.
pub(super) async fn join_in_order<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    if pending.len() == 1 {
        return vec![pending.pop().expect("one future").await];
    }
    let mut outputs: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (fut, out) in pending.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Node {
    /// Wakes clients blocked on the keys an applied command wrote: for each key that now
    /// holds a non-empty list or sorted set, its first waiter for that type (one element
    /// may serve one client; the client's own pop wakes the next); for a stream, all its
    /// readers.
    pub(super) fn wake_blocked(&self, db: u8, args: &[Bytes]) {
        if self.shared.blocking.blocked_clients() == 0 {
            return;
        }
        let Some(cmd) = args.first().and_then(|name| self.shared.table.get(name)) else {
            return;
        };
        for i in cmd.key_positions(args) {
            let Ok(Some(meta)) = self.shared.keyspace.get_stored(db, &args[i]) else {
                continue;
            };
            // A stream wakes its readers on any write (they look for what is new to them).
            let poppable = meta.value_type == ValueType::Stream
                || matches!(meta.value_type, ValueType::List | ValueType::ZSet)
                    && meta.collection_header().is_some_and(|c| c.count > 0);
            if poppable {
                self.shared.blocking.wake(db, &args[i], meta.value_type);
            }
        }
    }
}

/// Keyed commands that run on the node the client is connected to, whatever leads their
/// slot: WATCH and shard-channel subscriptions are the connection's own state, and
/// SPUBLISH goes out through this node like PUBLISH (so a connection's messages keep their
/// order). A cluster client is redirected for them instead, as Redis Cluster does.
fn stays_here(name: &str) -> bool {
    matches!(name, "watch" | "ssubscribe" | "sunsubscribe" | "spublish")
}

/// Redis's text, with `\r` and `\n` turned into spaces and each part cut at 128 bytes.
fn unknown_command_text(args: &[Bytes]) -> String {
    let mut rest = String::new();
    for arg in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push_str(&format!("'{}' ", sanitize(arg, room)));
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        sanitize(&args[0], 128),
        rest
    )
}

fn sanitize(arg: &[u8], max: usize) -> String {
    let cut = &arg[..arg.len().min(max)];
    String::from_utf8_lossy(cut).replace(['\r', '\n'], " ")
}
