//! MULTI/EXEC at the node: queuing the commands of a transaction, and EXEC.
//!
//! EXEC holds the gates of the shards the transaction touches exclusively (no other write
//! of theirs is proposed meanwhile), checks the connection's WATCH, then runs the queued
//! commands one after another against a speculative keyspace (`Keyspace::speculate`) in
//! which each write is applied as it would be at apply: that gives every read its reply
//! and every write its normalised form. The writes then go through the shard log as **one**
//! entry (`EntryOp::Transaction`), applied in one engine write on every replica, so all or
//! none of them survive a crash and readers see all or none of them. The writes' replies
//! are the apply's.
//!
//! A transaction runs where its keys are: on one shard (any number of shards on a node that
//! is the sole replica of all); one that spans shards in a cluster gets CROSSSLOT. On a
//! forwarding connection a transaction for a shard led by another node is sent there
//! whole (MULTI, the commands, EXEC) and runs there.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::apply::apply_command;
use super::Node;
use crate::clock;
use crate::cluster::{key_slot, ShardId, ShardSet};
use crate::commands::watches::WatchState;
use crate::commands::{Command, Ctx, Outcome, Session};
use crate::keyspace::Keyspace;
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp};

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
/// Collection versions a speculative run takes: a range no shard group ever uses
/// (groups take `group << 48 | n`).
pub(super) const SPECULATIVE_VERSIONS: u64 = 0xffff << 48;

/// A write found by the speculative run: the index of its reply (none for a script's
/// writes: the script's result is its reply), its database and its normalised argv.
pub(super) type SpeculatedWrite = (Option<usize>, (u8, Vec<Bytes>));

/// A speculative run: the keyspace its commands see (holding its earlier writes), its
/// time, the collection versions it has taken, and the writes it made.
pub(super) struct Speculation<'a> {
    pub spec: &'a Keyspace,
    pub now_ms: u64,
    versions: u64,
    pub writes: Vec<SpeculatedWrite>,
    /// The shards whose keys its commands may touch (their gates are held).
    pub held: Vec<ShardId>,
    /// Every key the writes changed, when the caller asks (cross-shard transactions).
    changed: Option<&'a mut Vec<(u8, Bytes)>>,
}

impl<'a> Speculation<'a> {
    pub fn new(
        spec: &'a Keyspace,
        now_ms: u64,
        held: &[ShardId],
        changed: Option<&'a mut Vec<(u8, Bytes)>>,
    ) -> Speculation<'a> {
        Speculation {
            spec,
            now_ms,
            versions: SPECULATIVE_VERSIONS,
            writes: Vec::new(),
            held: held.to_vec(),
            changed,
        }
    }
}

/// The commands that run at once inside MULTI instead of being queued.
fn runs_in_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// EVAL and its kin.
pub(super) fn is_script(cmd: &Command) -> bool {
    matches!(cmd.spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

/// What a blocking command answers inside MULTI when it would block: Redis never blocks
/// there and answers as on a timeout (BLMOVE and BRPOPLPUSH with a null bulk).
fn would_block_reply(cmd: &Command) -> Reply {
    match cmd.spec.name {
        "blmove" | "brpoplpush" => Reply::Null,
        _ => crate::commands::lists_blocking::TIMEOUT_REPLY,
    }
}

impl Node {
    /// A command refused (unknown, wrong arity, not authenticated) while the session is in
    /// MULTI: the transaction will abort. A refused EXEC aborts it now (Redis words the
    /// refusal as an abort even outside MULTI).
    pub(super) fn refused_in_multi(
        &self,
        session: &mut Session,
        args: &[Bytes],
        reply: Reply,
    ) -> Reply {
        if args[0].eq_ignore_ascii_case(b"exec") {
            session.multi = None;
            session.watching = None;
            session.show_multi();
            let text = match &reply {
                Reply::Error(e) => e.strip_prefix("ERR ").unwrap_or(e).to_string(),
                _ => String::new(),
            };
            return Reply::Error(format!(
                "EXECABORT Transaction discarded because of: {text}"
            ));
        }
        if let Some(multi) = session.multi.as_mut() {
            multi.dirty = true;
        }
        reply
    }

    /// Inside MULTI: queues the command (`QUEUED`) or refuses it (the transaction will
    /// abort). `None` for the commands that run at once (EXEC, DISCARD, WATCH, ...) and
    /// outside MULTI.
    pub(super) fn queue_in_multi(
        &self,
        session: &mut Session,
        cmd: &Command,
        args: &[Bytes],
    ) -> Option<Reply> {
        session.multi.as_ref()?;
        if runs_in_multi(cmd.spec.name) {
            return None;
        }
        let refusal = if cmd.spec.has_flag("no_multi") {
            Some(Reply::error("ERR Command not allowed inside a transaction"))
        } else if self.redirects(session) {
            self.redirect_in_multi(session, cmd, args)
        } else {
            None
        };
        let multi = session.multi.as_mut()?;
        if let Some(refusal) = refusal {
            multi.dirty = true;
            return Some(refusal);
        }
        if let Some(first) = cmd.key_positions(args).next() {
            multi.slot.get_or_insert(key_slot(&args[first]).0);
        }
        multi.queued.push(args.to_vec());
        session.show_multi();
        Some(Reply::Simple("QUEUED"))
    }

    /// For a cluster client, as Redis Cluster checks a command queued in MULTI: its keys
    /// and those queued before it share one slot, which this node leads.
    fn redirect_in_multi(&self, session: &Session, cmd: &Command, args: &[Bytes]) -> Option<Reply> {
        let mut keys = cmd.key_positions(args);
        let first = keys.next()?;
        let slot = key_slot(&args[first]);
        let queued_slot = session.multi.as_ref().and_then(|m| m.slot);
        if keys.any(|i| key_slot(&args[i]) != slot) || queued_slot.is_some_and(|s| s != slot.0) {
            return Some(Reply::error(CROSSSLOT));
        }
        let shard = self.shards.shard_of_key(&args[first]);
        if self.groups().is_leader(shard) {
            return None;
        }
        let moved = self.moved(cmd, session, &args[first], shard);
        Some(moved.unwrap_or_else(|| Reply::error("TRYAGAIN the shard is changing leader")))
    }

    /// EXEC inside MULTI. See the module doc.
    pub(super) async fn exec(&self, session: &mut Session, started_us: u64) -> Reply {
        let multi = session.multi.take().unwrap_or_default();
        let watching = session.watching.take();
        if multi.dirty {
            return Reply::error(EXECABORT);
        }
        let mut queued: Vec<(&Command, Vec<Bytes>)> = Vec::with_capacity(multi.queued.len());
        for args in multi.queued {
            match self.resolve(session, &args) {
                Ok(cmd) => queued.push((cmd, args)),
                Err(reply) => return reply,
            }
        }
        let watched_keys = watching
            .iter()
            .flat_map(|w| w.keys().iter().map(|(_, k)| k))
            .chain(session.watched_elsewhere.iter().map(|w| &w.key));
        let shards = match self.transaction_shards(&queued, watched_keys) {
            Ok(shards) => shards,
            Err(refusal) => return refusal,
        };
        for (cmd, args) in &queued {
            self.remember_reads(cmd, session, args);
        }
        if shards.len() > 1 && !self.groups().alone() {
            // Only with `cross-shard-transactions yes` (see `transaction_shards`).
            if !session.watched_elsewhere.is_empty() {
                return Reply::error("TRYAGAIN the shard is changing leader");
            }
            let reply = self
                .exec_across_shards(session, &queued, watching.as_ref())
                .await;
            drop(watching);
            if let Reply::Array(replies) = &reply {
                for ((cmd, args), reply) in queued.iter().zip(replies) {
                    self.finish(cmd, reply, session, args, started_us);
                }
            }
            return reply;
        }
        if let Err(reply) = self.wait_for_queued_locks(session.db, &queued).await {
            return reply;
        }
        if let [shard] = shards[..] {
            if !self.groups().is_leader(shard) {
                if !session.watched_elsewhere.is_empty() {
                    // Forwarded here with its watches: they cannot travel on.
                    return Reply::error("TRYAGAIN the shard is changing leader");
                }
                return self.exec_at_leader(session, shard, &queued, watching).await;
            }
        }
        let mut gates = Vec::with_capacity(shards.len());
        for s in &shards {
            gates.push(self.gates[usize::from(s.0)].write().await);
        }
        // Reads inside see a state at least as new as any write acknowledged before EXEC.
        for s in &shards {
            match self.groups().read_barrier(*s).await {
                Ok(()) => {}
                // The leadership moved on since it was looked at; nothing ran yet: the
                // transaction goes to the new leader as a forwarded one would.
                Err(crate::raft::ProposeError::NotLeader(_))
                    if shards.len() == 1 && session.watched_elsewhere.is_empty() =>
                {
                    drop(gates);
                    return self.exec_at_leader(session, *s, &queued, watching).await;
                }
                Err(e) => return Reply::Error(e.to_string()),
            }
        }
        let now_ms = clock::now_ms();
        if let Some(w) = &watching {
            // Keys watched while another node led them are checked against its baselines
            // too (the client's reads were served there).
            let changed = w.is_dirty()
                || self.watched_key_expired(w, now_ms)
                || w.is_changed_elsewhere()
                || self.watched_elsewhere_changed(w.baselines(), now_ms);
            if changed {
                return Reply::NullArray;
            }
        }
        let watched_elsewhere = std::mem::take(&mut session.watched_elsewhere);
        if self.watched_elsewhere_changed(&watched_elsewhere, now_ms) {
            return Reply::NullArray;
        }
        // Redis unwatches before running the commands.
        drop(watching);
        let spec = self.shared.keyspace.speculate();
        let (mut replies, writes) = self.speculate(&spec, session, &queued, now_ms, &shards, None);
        if !writes.is_empty() {
            let (at, commands): (Vec<Option<usize>>, Vec<_>) = writes.into_iter().unzip();
            let entry = Entry {
                origin: self.write_origin(session),
                ..Entry::new(session.db, now_ms, EntryOp::Transaction(commands))
            };
            match self.propose(shards[0], &entry).await {
                Ok(Reply::Array(applied)) if applied.len() == at.len() => {
                    for (i, reply) in at.into_iter().zip(applied) {
                        if let Some(i) = i {
                            replies[i] = reply;
                        }
                    }
                }
                Ok(Reply::Error(e)) => return Reply::Error(e),
                Ok(_) => return Reply::error("ERR transaction apply gave unexpected replies"),
                Err(e) => return Reply::Error(e.to_string()),
            }
        }
        drop(gates);
        for ((cmd, args), reply) in queued.iter().zip(&replies) {
            self.finish(cmd, reply, session, args, started_us);
        }
        Reply::Array(replies)
    }

    /// The shards a transaction reads or writes, with its watched keys', in order: more
    /// than one only on a node that is the sole replica of every shard.
    fn transaction_shards<'k>(
        &self,
        queued: &[(&Command, Vec<Bytes>)],
        watched: impl Iterator<Item = &'k Bytes>,
    ) -> Result<Vec<ShardId>, Reply> {
        let mut shards = BTreeSet::new();
        let mut everywhere = false;
        for (cmd, args) in queued {
            match self.route(cmd, args) {
                ShardSet::One(s) => {
                    shards.insert(s);
                }
                ShardSet::Some(list) => shards.extend(list),
                // Keyless: only a write (FLUSHDB, FLUSHALL, SWAPDB) reaches every shard.
                ShardSet::All => everywhere |= cmd.is_write(),
            }
            // A script may touch keys it did not declare: alone, the node holds every shard.
            everywhere |= is_script(cmd) && self.groups().alone();
        }
        shards.extend(watched.map(|k| self.shards.shard_of_key(k)));
        let alone = self.groups().alone();
        if everywhere {
            if !alone {
                return Err(Reply::error(
                    "ERR FLUSHDB, FLUSHALL and SWAPDB cannot run in a transaction in a cluster",
                ));
            }
            return Ok((0..self.shards.shard_count()).map(ShardId).collect());
        }
        if shards.len() > 1 && !alone && !self.runs_across_shards() {
            return Err(Reply::error(CROSSSLOT));
        }
        Ok(shards.into_iter().collect())
    }

    /// Whether a watched key that was live when watched has expired since (Redis 7.0).
    fn watched_key_expired(&self, w: &WatchState, now_ms: u64) -> bool {
        w.keys().iter().any(|(db, key)| {
            let expired = matches!(
                self.shared.keyspace.get_stored(*db, key),
                Ok(Some(m)) if m.is_expired(now_ms)
            );
            expired && !w.expired_at_watch(*db, key)
        })
    }

    /// Runs the queued commands against a speculative keyspace (`Keyspace::speculate`):
    /// every command's reply, and the normalised writes (with the index of their reply —
    /// none for the writes of a script — and their database). `changed` collects every
    /// key the writes changed.
    pub(super) fn speculate(
        &self,
        spec: &Keyspace,
        session: &mut Session,
        queued: &[(&Command, Vec<Bytes>)],
        now_ms: u64,
        held: &[ShardId],
        changed: Option<&mut Vec<(u8, Bytes)>>,
    ) -> (Vec<Reply>, Vec<SpeculatedWrite>) {
        let mut run = Speculation::new(spec, now_ms, held, changed);
        let mut replies = Vec::with_capacity(queued.len());
        for (cmd, args) in queued {
            let at = replies.len();
            replies.push(self.speculate_command(&mut run, session, cmd, args, Some(at)));
        }
        (replies, run.writes)
    }

    /// Runs one command of a speculative run; its write, if any, joins the run's writes
    /// (with `reply_at`, the index of its reply).
    pub(super) fn speculate_command(
        &self,
        run: &mut Speculation,
        session: &mut Session,
        cmd: &Command,
        args: &[Bytes],
        reply_at: Option<usize>,
    ) -> Reply {
        let mut ctx = Ctx {
            shared: &self.shared,
            keyspace: run.spec,
            cluster: self,
            session,
            now_ms: run.now_ms,
            expired: Vec::new(),
        };
        let outcome = (cmd.run)(&mut ctx, args);
        let db = session.db;
        match outcome {
            Ok(Outcome::Reply(r)) | Ok(Outcome::Delay(_, r)) => r,
            Ok(Outcome::Block(_)) => would_block_reply(cmd),
            // Users and libraries change through group 0, which a transaction's batch does
            // not reach.
            Ok(Outcome::ChangeUsers(..)) => {
                Reply::error("ERR ACL SETUSER, DELUSER and LOAD cannot run inside MULTI on Basalt")
            }
            Ok(Outcome::ChangeLibraries(..)) => Reply::error(
                "ERR FUNCTION LOAD, DELETE, FLUSH and RESTORE cannot run inside MULTI on Basalt",
            ),
            // Never waits inside MULTI: how many hold the writes now.
            Ok(Outcome::WaitReplicas(..)) => {
                let held = session.written.iter().map(|s| self.holding_here(*s, 0).1);
                Reply::Integer(held.min().unwrap_or(0) as i64)
            }
            Ok(Outcome::Script(call)) => self.script_in_transaction(run, session, args, &call),
            Ok(Outcome::Propose(normalised)) => {
                let mut txn = run.spec.txn(run.now_ms, u64::MAX, run.versions);
                if run.changed.is_some() {
                    txn.track_changes();
                }
                match apply_command(self, &mut txn, db, &normalised) {
                    Ok(reply) => {
                        run.versions += txn.versions_taken();
                        if let Some(changed) = run.changed.as_deref_mut() {
                            let keys = txn.take_changes().keys;
                            changed.extend(keys.into_iter().map(|c| (c.db, c.key)));
                        }
                        match txn.commit() {
                            Ok(()) => {
                                run.writes.push((reply_at, (db, normalised)));
                                reply
                            }
                            Err(e) => Reply::Error(format!("ERR {e}")),
                        }
                    }
                    // It changes nothing; the log need not carry it.
                    Err(e) => e.into_reply(),
                }
            }
            Err(e) => e.into_reply(),
        }
    }

    /// A transaction for a shard another node leads, from a forwarding connection: sent
    /// there whole and run there, with its watched keys' baselines (`remote_watch.rs`).
    async fn exec_at_leader(
        &self,
        session: &Session,
        shard: ShardId,
        queued: &[(&Command, Vec<Bytes>)],
        watching: Option<WatchState>,
    ) -> Reply {
        let watched = match self.watched_for_leader(watching) {
            Ok(watched) => watched,
            Err(reply) => return reply,
        };
        let Some(leader) = self.leader_elsewhere(shard) else {
            return Reply::error("TRYAGAIN the shard is changing leader");
        };
        let mut commands = Vec::with_capacity(queued.len() + 2);
        commands.push(vec![Bytes::from_static(b"MULTI")]);
        commands.extend(queued.iter().map(|(_, args)| args.clone()));
        commands.push(vec![Bytes::from_static(b"EXEC")]);
        let to = self.forward_for(session);
        let mut replies = self
            .forward_batch_watching(leader, to, commands, watched)
            .await;
        replies.pop().unwrap_or(Reply::Null)
    }
}
