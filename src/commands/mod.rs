//! Commands: the table and one module per command family.
//!
//! A handler runs at the proposer with a narrow [`Ctx`]: the state handlers share
//! ([`Shared`]), a [`ClusterView`] of the layers below, its session and the time. It
//! answers a read, or returns the normalised argv of a write ([`Outcome::Propose`]) that the
//! node (`crate::node`) passes through the shard log; apply then calls the command's
//! deterministic apply function on a `Txn`. This layer knows nothing of sockets, peers or
//! Raft.

pub mod access;
pub mod acl;
pub mod args;
mod bitmaps;
pub mod blocking;
mod client_kill;
pub mod client_pause;
pub mod clients;
mod cluster;
mod collections;
mod connection;
pub mod cursors;
pub mod dump;
pub mod error;
pub mod float80;
mod functions;
mod geo;
mod hashes;
mod hll;
mod info;
mod introspection;
pub mod key_specs;
mod keyevents;
mod keys;
pub mod latency;
mod lcs;
mod listpack;
mod lists;
pub mod lists_blocking;
pub mod mailbox;
mod memory;
pub mod monitor;
pub mod notify;
mod object;
pub mod pubsub;
pub mod scripting;
mod server;
mod session;
mod sets;
mod shared;
mod sort;
pub mod spec;
pub mod specs;
pub mod stats;
mod streams;
mod strings;
pub mod strtod;
mod table;
pub mod tracking;
mod transactions;
pub mod watches;
mod zsets;

pub use connection::REDIS_VERSION;
pub use error::CmdError;
pub use session::{MultiState, ReplyMode, Session};
pub use shared::{
    ClusterLink, ClusterState, ClusterView, CrashPoint, HeldShard, Shared, ShutdownRequest,
};
pub use table::{Command, Table};

use bytes::Bytes;

use crate::keyspace::{Keyspace, Meta, Txn};
use crate::protocol::Reply;

/// Where a command runs after its handler.
pub enum Outcome {
    /// The reply is ready.
    Reply(Reply),
    /// A write: this normalised argv goes to the shard log; apply produces the reply.
    Propose(Vec<Bytes>),
    /// Reply after a pause that delays only this connection (DEBUG SLEEP).
    Delay(std::time::Duration, Reply),
    /// Wait until what it waits for changes (or the timeout, if any), then run again.
    Block(BlockOn),
    /// WAIT: until this many replicas hold the connection's writes, or the timeout in
    /// milliseconds (0: none); the reply is how many do.
    WaitReplicas(i64, u64),
    /// ACL SETUSER, DELUSER, LOAD: a change to the users in the cluster map; the reply once
    /// this node has applied it.
    ChangeUsers(UsersChange, Reply),
    /// EVAL and its kin: a script for the node to run atomically where its keys are.
    Script(scripting::ScriptCall),
    /// FUNCTION LOAD, DELETE, FLUSH, RESTORE: a change to the function libraries in the
    /// cluster map; the reply once this node has applied it.
    ChangeLibraries(LibrariesChange, Reply),
}

/// A change to the function libraries the cluster map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrariesChange {
    /// Creates or replaces one library: its name and code.
    Set(Bytes, Bytes),
    Delete(Bytes),
    /// Every library at once (FUNCTION FLUSH, FUNCTION RESTORE).
    Replace(std::collections::BTreeMap<Bytes, Bytes>),
}

/// A change to the ACL users the cluster map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersChange {
    /// Creates or replaces one user: its name and rules.
    Set(Bytes, Vec<Bytes>),
    Delete(Vec<Bytes>),
    /// Every user at once (ACL LOAD).
    Replace(acl::StoredUsers),
}

/// What a blocked command waits for, for at most `timeout` (None = forever).
pub struct BlockOn {
    pub waits_for: blocking::WaitFor,
    pub timeout: Option<std::time::Duration>,
    /// The argv to run after a wake-up when it is not the client's (XREAD's `$` fixed to
    /// the ID it meant when the client blocked).
    pub again: Option<Vec<Bytes>>,
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Outcome {
        Outcome::Reply(r)
    }
}

pub type CmdResult = Result<Outcome, CmdError>;

/// Everything a handler may use: the shared state, a view of the cluster, its own session,
/// and the time of the call.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    /// The keyspace commands read: `shared.keyspace`, or inside EXEC a speculative one
    /// holding the transaction's earlier writes (`Keyspace::speculate`).
    pub keyspace: &'a Keyspace,
    pub cluster: &'a dyn ClusterView,
    pub session: &'a mut Session,
    pub now_ms: u64,
    /// Keys this command found expired; dispatch deletes them through the shard log before
    /// replying, as redis-server deletes an expired key on access.
    pub expired: Vec<Bytes>,
}

impl Ctx<'_> {
    pub fn db(&self) -> u8 {
        self.session.db
    }

    /// Whether the command runs inside EXEC or a script: against a speculative keyspace
    /// rather than the node's.
    pub fn in_transaction(&self) -> bool {
        !std::ptr::eq(self.keyspace, &self.shared.keyspace)
    }

    /// Whether a stored record is live now; an expired one is queued for deletion.
    pub fn live(&mut self, key: &[u8], meta: Option<Meta>) -> Option<Meta> {
        match meta {
            Some(m) if m.is_expired(self.now_ms) => {
                self.expired.push(Bytes::copy_from_slice(key));
                None
            }
            other => other,
        }
    }

    /// The live value of a key.
    pub fn lookup(&mut self, key: &[u8]) -> Result<Option<Meta>, CmdError> {
        let stored = self.keyspace.get_stored(self.db(), key)?;
        Ok(self.live(key, stored))
    }

    /// Live values of several keys, read from one consistent state.
    pub fn lookup_many(&mut self, keys: &[Bytes]) -> Result<Vec<Option<Meta>>, CmdError> {
        let stored = self.keyspace.multi_get_stored(self.db(), keys)?;
        Ok(keys
            .iter()
            .zip(stored)
            .map(|(k, m)| self.live(k, m))
            .collect())
    }
}

/// Runs at the proposer: parse, validate, normalise, or answer.
pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// Runs at apply, deterministically: only the transaction, the database and the argv.
pub type ApplyFn = fn(&mut Txn, u8, &[Bytes]) -> Result<Reply, CmdError>;

/// The handler of a write that needs no normalisation: propose the argv as sent.
pub fn propose_as_sent(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Outcome::Propose(args.to_vec()))
}

/// The handler of a container command (CLIENT, CONFIG…): the table dispatches its
/// subcommands, so this runs only for a container given no subcommand, which arity rejects.
pub fn container(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Err(CmdError::WrongArity(args::lower(&args[0])))
}

/// Shorthand for a ready reply.
pub fn reply(r: Reply) -> CmdResult {
    Ok(Outcome::Reply(r))
}
