//! Scripts at the node: EVAL and its kin run atomically at the leader of their keys'
//! shard, as EXEC does (`transaction.rs`).
//!
//! The node holds the gates of the shards the script's declared keys fall in exclusively,
//! waits for their groups' read barriers, and runs the script against a speculative
//! keyspace: each command it calls runs and is applied there, so the script reads its own
//! writes. When the script ends, its writes go through the shard log as **one** entry
//! (`EntryOp::Transaction`, effects replication), so every replica and a restart see all
//! of them or none. A script that fails part way keeps the writes it made before the
//! error, as in Redis; one stopped by SCRIPT KILL keeps none (nothing was applied yet).
//!
//! Keys a script did not declare: on a node that is the sole replica of every shard, a
//! script that touches a shard it does not hold is dropped and run again holding that
//! shard too (a speculative run changes nothing). In a cluster, a keyless script takes
//! the shard of the first key it touches the same way, if this node leads it; any other
//! key outside the shard it holds gets Redis Cluster's "non local key" error, and keys
//! of different slots its "do not hash to the same slot" (unless the script is flagged
//! `allow-cross-slot-keys`).
//!
//! MONITOR: the commands a script called are shown by the node that ran it (`[db lua]`,
//! once the run that counts has ended), even when another node forwarded the script.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::transaction::Speculation;
use super::Node;
use crate::blocking_io;
use crate::clock;
use crate::cluster::{key_slot, ShardId};
use crate::commands::scripting::ScriptCall;
use crate::commands::{acl, monitor, Command, Session};
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp};
use crate::scripting::{Abandon, Host, Run, RunEnd};

const NON_LOCAL: &str = "ERR Script attempted to access a non local key in a cluster node";
const CROSS_SLOT: &str = "ERR Script attempted to access keys that do not hash to the same slot";

impl Node {
    /// EVAL and its kin outside MULTI. See the module doc.
    pub(super) async fn run_script(
        &self,
        session: &mut Session,
        args: &[Bytes],
        call: &ScriptCall,
    ) -> Reply {
        // Whether this node is the sole voter of every group: asked only when it matters.
        let alone = || self.groups().alone();
        if call.flags.no_cluster && !alone() {
            return Reply::error("ERR Can not run script on cluster, 'no-cluster' flag is set.");
        }
        let keys = call.keys(args);
        let mut shards: BTreeSet<ShardId> =
            keys.iter().map(|k| self.shards.shard_of_key(k)).collect();
        if shards.len() > 1 && !alone() {
            return Reply::error("CROSSSLOT Keys in request don't hash to the same slot");
        }
        // First on this worker; a script too long for that runs again off it.
        let mut inline = true;
        loop {
            let held: Vec<ShardId> = shards.iter().copied().collect();
            if held.iter().any(|s| !self.groups().is_leader(*s)) {
                return Reply::error("TRYAGAIN the shard is changing leader");
            }
            let mut gates = Vec::with_capacity(held.len());
            for s in &held {
                gates.push(self.gates[usize::from(s.0)].write().await);
            }
            for s in &held {
                if let Err(e) = self.groups().read_barrier(*s).await {
                    return Reply::Error(e.to_string());
                }
            }
            let turn = self.shared.scripts.turn().await;
            let now_ms = clock::now_ms();
            let spec = self.shared.keyspace.speculate();
            let mut run = Speculation::new(&spec, now_ms, &held, None);
            let (end, need) = self.run_speculating(&mut run, session, args, call, true, inline);
            drop(turn);
            match end {
                RunEnd::NotInline => {
                    drop(gates);
                    inline = false;
                    continue;
                }
                RunEnd::Abandoned if !need.is_empty() => {
                    drop(gates);
                    shards.extend(need);
                    continue;
                }
                RunEnd::Abandoned => return Reply::error(NON_LOCAL),
                RunEnd::Killed(reply) => return reply,
                RunEnd::Reply(reply) => {
                    if run.writes.is_empty() {
                        return reply;
                    }
                    let commands = run.writes.into_iter().map(|(_, w)| w).collect();
                    let entry = Entry {
                        origin: self.write_origin(session),
                        ..Entry::new(session.db, now_ms, EntryOp::Transaction(commands))
                    };
                    session.wrote_to(held.iter().copied());
                    let applied = self.propose(held[0], &entry).await;
                    drop(gates);
                    return match applied {
                        Ok(Reply::Error(e)) => Reply::Error(e),
                        Ok(_) => reply,
                        Err(e) => Reply::Error(e.to_string()),
                    };
                }
            }
        }
    }

    /// EVAL and its kin inside EXEC (or a cross-shard transaction): run in the
    /// transaction's speculative run, over the shards it holds.
    pub(super) fn script_in_transaction(
        &self,
        run: &mut Speculation,
        session: &mut Session,
        args: &[Bytes],
        call: &ScriptCall,
    ) -> Reply {
        if call.flags.no_cluster && !self.groups().alone() {
            return Reply::error("ERR Can not run script on cluster, 'no-cluster' flag is set.");
        }
        let before = run.writes.len();
        match self
            .run_speculating(run, session, args, call, false, false)
            .0
        {
            RunEnd::Reply(reply) => reply,
            RunEnd::Killed(reply) => {
                run.writes.truncate(before);
                reply
            }
            RunEnd::Abandoned => Reply::error(NON_LOCAL),
            RunEnd::NotInline => Reply::error("ERR the script could not run"),
        }
    }

    /// Runs the script of `call` in `run` (`inline`: on this worker, see `Run::inline`);
    /// how it ended, and the shards a new run needs (when `may_retry` and it touched keys
    /// of shards `run` does not hold).
    fn run_speculating(
        &self,
        run: &mut Speculation,
        session: &mut Session,
        args: &[Bytes],
        call: &ScriptCall,
        may_retry: bool,
        inline: bool,
    ) -> (RunEnd, BTreeSet<ShardId>) {
        let keys = call.keys(args);
        let busy_after_ms = self
            .shared
            .config
            .get("busy-reply-threshold")
            .parse()
            .unwrap_or(5000);
        let script_run = Run {
            sha: &call.sha,
            function: call.function,
            command: args,
            inline,
            keys,
            argv: call.argv(args),
            resp3: session.resp3,
            busy_after_ms,
        };
        // SELECT inside a script changes the script's database only (Redis 7).
        let db = session.db;
        let mut host = ScriptHost {
            node: self,
            run,
            session,
            read_only: call.read_only,
            cross_slot: call.flags.allow_cross_slot_keys,
            slot: keys.first().map(|k| key_slot(k).0),
            may_retry,
            need: BTreeSet::new(),
            monitored: Vec::new(),
        };
        let end = if inline {
            self.shared.scripts.run(&script_run, &mut host)
        } else {
            blocking_io::run(|| self.shared.scripts.run(&script_run, &mut host))
        };
        let need = std::mem::take(&mut host.need);
        host.session.db = db;
        // A run that is dropped to run again shows its commands in the run that counts.
        let again = matches!(end, RunEnd::NotInline)
            || (may_retry && matches!(end, RunEnd::Abandoned) && !need.is_empty());
        if !again {
            let limit = self.shared.config.output_limit();
            for (db, args) in host.monitored {
                let source = monitor::Source::Script;
                self.shared.monitors.feed(db, source, &args, limit);
            }
        }
        (end, need)
    }
}

impl Node {
    /// The arguments a command forwarded to another node carries: EVALSHA of a script
    /// cached here becomes EVAL of its body, so the node that runs it needs no cache of
    /// its own. EVALSHA answers by the cache of the node the client talks to: a script
    /// this node does not know gets NOSCRIPT here, whatever the other node holds.
    pub(super) fn script_for_forwarding(
        &self,
        cmd: &Command,
        mut args: Vec<Bytes>,
    ) -> Result<Vec<Bytes>, Reply> {
        let by_body = match cmd.spec.name {
            "evalsha" => "EVAL",
            "evalsha_ro" => "EVAL_RO",
            _ => return Ok(args),
        };
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let script = self.shared.scripts.get(&sha);
        let script = script.ok_or_else(|| Reply::error(crate::scripting::NOSCRIPT))?;
        args[0] = Bytes::from_static(by_body.as_bytes());
        args[1] = script.body;
        Ok(args)
    }
}

/// Carries out the commands a script calls, in a speculative run.
struct ScriptHost<'n, 'r, 's> {
    node: &'n Node,
    run: &'r mut Speculation<'s>,
    session: &'r mut Session,
    read_only: bool,
    /// `allow-cross-slot-keys`.
    cross_slot: bool,
    /// In a cluster, the slot the script's keys share.
    slot: Option<u16>,
    may_retry: bool,
    need: BTreeSet<ShardId>,
    /// The commands called, with their databases, for the monitors (while any watch).
    monitored: Vec<(u8, Vec<Bytes>)>,
}

impl<'n> ScriptHost<'n, '_, '_> {
    /// The command `args` names, checked as redis-server checks a script's command.
    /// The command (or subcommand) `args` names.
    fn lookup(&self, args: &[Bytes]) -> Option<&'n Command> {
        let node: &'n Node = self.node;
        let cmd = node.shared.table.get(&args[0])?;
        if !cmd.subcommands.is_empty() && args.len() > 1 {
            return cmd.subcommand(&args[1]);
        }
        Some(cmd)
    }

    fn resolve(&self, args: &[Bytes]) -> Result<&'n Command, String> {
        let cmd = self
            .lookup(args)
            .ok_or("ERR Unknown Redis command called from script")?;
        if !cmd.spec.arity_allows(args.len()) {
            return Err("ERR Wrong number of args calling Redis command from script".into());
        }
        if cmd.spec.has_flag("noscript") {
            return Err("ERR This Redis command is not allowed from script".into());
        }
        Ok(cmd)
    }

    /// Whether the script may touch `args`' keys from the shards it holds (see the module
    /// doc); `Err(None)` when it must run again holding more.
    fn check_keys(&mut self, cmd: &Command, args: &[Bytes]) -> Result<(), Option<&'static str>> {
        let node = self.node;
        let alone = || node.groups().alone();
        let mut positions = cmd.key_positions(args).peekable();
        if positions.peek().is_none() {
            if !cmd.is_write() {
                return Ok(());
            }
            if !alone() {
                return Err(Some(
                    "ERR FLUSHDB, FLUSHALL and SWAPDB cannot run in a script in a cluster",
                ));
            }
            let missing: Vec<ShardId> = (0..node.shards.shard_count())
                .map(ShardId)
                .filter(|s| !self.run.held.contains(s))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            return self.retry_with(missing);
        }
        for i in positions {
            let shard = node.shards.shard_of_key(&args[i]);
            if !self.run.held.contains(&shard) {
                let takes_first = self.run.held.is_empty() && node.groups().is_leader(shard);
                if takes_first || alone() {
                    return self.retry_with(vec![shard]);
                }
                return Err(Some(NON_LOCAL));
            }
            if !self.cross_slot {
                let slot = key_slot(&args[i]).0;
                match self.slot {
                    None => self.slot = Some(slot),
                    Some(s) if s != slot && !alone() => return Err(Some(CROSS_SLOT)),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn retry_with(&mut self, shards: Vec<ShardId>) -> Result<(), Option<&'static str>> {
        if !self.may_retry {
            return Err(Some(NON_LOCAL));
        }
        self.need.extend(shards);
        Err(None)
    }
}

impl Host for ScriptHost<'_, '_, '_> {
    fn call(&mut self, args: Vec<Bytes>) -> Result<Reply, Abandon> {
        let cmd = match self.resolve(&args) {
            Ok(cmd) => cmd,
            Err(text) => return Ok(Reply::Error(text)),
        };
        if let Err(denied) = acl::check(&self.session.user, cmd, &args) {
            self.node
                .log_refusal(self.session, &denied, cmd, &args, true);
            return Ok(Reply::error(
                "ERR The user executing the script can't run this command or subcommand",
            ));
        }
        if self.read_only && cmd.is_write() {
            return Ok(Reply::error(
                "ERR Write commands are not allowed from read-only scripts.",
            ));
        }
        match self.check_keys(cmd, &args) {
            Ok(()) => {}
            Err(Some(text)) => return Ok(Reply::error(text)),
            Err(None) => return Err(Abandon),
        }
        self.session.in_script = true;
        let reply = self
            .node
            .speculate_command(self.run, self.session, cmd, &args, None);
        self.session.in_script = false;
        if self.node.shared.monitors.watched() && monitor::fed_after_run(cmd) {
            self.monitored.push((self.session.db, args));
        }
        Ok(reply)
    }

    fn acl_check(&mut self, args: &[Bytes]) -> Result<bool, String> {
        let cmd = self.lookup(args).ok_or_else(String::new)?;
        Ok(acl::check(&self.session.user, cmd, args).is_ok())
    }
}
