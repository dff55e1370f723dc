//! Per-connection state a command can read or change: protocol version, database, auth,
//! reply mode. The connection owns it; commands get it through `Ctx`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::acl::{self, Acl, User};
use super::clients::ClientInfo;
use super::pubsub::hub::Subscriptions;
use super::tracking::Tracking;
use super::watches::{WatchState, WatchedRevision};

/// A transaction being queued (after MULTI, until EXEC or DISCARD).
#[derive(Default)]
pub struct MultiState {
    /// The commands queued, as sent.
    pub queued: Vec<Vec<Bytes>>,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// The slot of the first key queued (a cluster client's transaction keeps to it).
    pub slot: Option<u16>,
}

/// CLIENT REPLY's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
}

pub struct Session {
    pub info: Arc<ClientInfo>,
    pub resp3: bool,
    pub db: u8,
    pub authenticated: bool,
    /// The ACL user the session runs as (the default user until AUTH).
    pub user: Arc<User>,
    /// `Acl::generation` when `user` was read: a change to the users re-reads it.
    acl_generation: u64,
    pub reply_mode: ReplyMode,
    /// Set by CLIENT REPLY SKIP: the reply of the command after it is dropped.
    skip_current: bool,
    /// QUIT: close once the reply is written.
    pub close_after_reply: bool,
    /// SHUTDOWN: close without writing the reply, as redis-server does.
    pub close_silently: bool,
    /// The client asked for the cluster's layout (CLUSTER SLOTS, SHARDS or NODES): it
    /// follows redirects, so a command for a slot led elsewhere gets MOVED.
    pub cluster_client: bool,
    /// READONLY: the client reads from replicas (and follows redirects for writes).
    pub readonly: bool,
    /// MULTI: the transaction being queued.
    pub multi: Option<MultiState>,
    /// WATCH: the keys watched for the next EXEC.
    pub watching: Option<WatchState>,
    /// A transaction another node forwarded: its connection's watched keys as that node
    /// saw them (checked by EXEC here).
    pub watched_elsewhere: Vec<WatchedRevision>,
    /// SUBSCRIBE and its kin: the connection's subscriptions, if any.
    pub pubsub: Option<Subscriptions>,
    /// CLIENT TRACKING, while on.
    pub tracking: Option<Tracking>,
    /// MONITOR: the connection's place among the monitors, while it monitors.
    pub monitor: Option<super::monitor::Monitoring>,
    /// A session running commands another node forwarded: that node and its client, when
    /// the client's writes must name it (see `Session::tracking`'s NOLOOP).
    pub forwarded_for: Option<(u64, u64)>,
    /// For commands another node forwarded: how many nodes forwarded them so far.
    pub forward_hops: u32,
    /// The command before this one was a CLIENT command (CLIENT CACHING's flag outlives it).
    previous_was_client: bool,
    /// A script's `redis.call` is running (SORT then sorts a set it would leave in its
    /// stored order, as Redis does for scripts).
    pub in_script: bool,
    /// The shards this connection has written to (WAIT counts the replicas holding them).
    pub written: Vec<crate::cluster::ShardId>,
    /// Where its keyed commands have run (`cluster-redirects auto` tells a cluster
    /// client's per-node connection by it).
    pub routes: RouteHistory,
}

/// Where a connection's keyed commands have run. A cluster client's connection to a node
/// sends only keys of the slots that node masters; a plain client's keys fall on every
/// node. So a connection whose commands all ran here — at least `CLUSTERED_AFTER` of them,
/// on two shards or more while other nodes led shards too — behaves as a cluster client's:
/// in `cluster-redirects auto`, once its host is known to run a cluster client, a command
/// for a slot led elsewhere gets MOVED rather than being forwarded, and the client's stale
/// map converges. (A plain client of random keys sends that many here by chance with odds
/// of 2^-32 on two nodes; one that uses only a few keys, all led here, is the case the
/// setting `never` is for.)
#[derive(Default)]
pub struct RouteHistory {
    first_shard: Option<crate::cluster::ShardId>,
    several_shards: bool,
    ran_here: u32,
    plain: bool,
}

/// Keyed commands run here before a connection can look like a cluster client's.
pub const CLUSTERED_AFTER: u32 = 32;

impl RouteHistory {
    /// A keyed command ran here on `shard`; `leads_all` says whether this node leads every
    /// shard now (then any client's keys are all here, which says nothing).
    pub fn ran_here(&mut self, shard: crate::cluster::ShardId, leads_all: impl FnOnce() -> bool) {
        self.ran_here = self.ran_here.saturating_add(1);
        match self.first_shard {
            None => self.first_shard = Some(shard),
            Some(first) if first != shard && !self.several_shards && !leads_all() => {
                self.several_shards = true
            }
            Some(_) => {}
        }
    }

    /// A plain client's for good: a keyed command was forwarded to another node, or ran
    /// while this node was alone (a cluster client connects once there is a cluster).
    pub fn rule_out(&mut self) {
        self.plain = true;
    }

    /// Whether more commands run here can change what `looks_clustered` says.
    pub fn settled(&self) -> bool {
        self.plain || (self.several_shards && self.ran_here >= CLUSTERED_AFTER)
    }

    /// Whether every keyed command ran here: enough of them, over several shards.
    pub fn looks_clustered(&self) -> bool {
        self.several_shards && self.ran_here >= CLUSTERED_AFTER && !self.plain
    }
}

impl Session {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Session {
        Session {
            info,
            resp3: false,
            db: 0,
            authenticated,
            user: acl::internal_user(),
            acl_generation: u64::MAX,
            reply_mode: ReplyMode::On,
            skip_current: false,
            close_after_reply: false,
            close_silently: false,
            cluster_client: false,
            readonly: false,
            multi: None,
            watching: None,
            watched_elsewhere: Vec::new(),
            pubsub: None,
            tracking: None,
            monitor: None,
            forwarded_for: None,
            forward_hops: 0,
            previous_was_client: false,
            in_script: false,
            written: Vec::new(),
            routes: RouteHistory::default(),
        }
    }

    /// Runs as `user` from now on (AUTH, HELLO AUTH, RESET, a client's first command).
    pub fn log_in(&mut self, user: Arc<User>, acl: &Acl) {
        *self.info.user.lock() = user.name.clone();
        self.user = user;
        self.acl_generation = acl.generation();
    }

    /// Re-reads the session's user when the users changed since it was read (rules changed
    /// through any node apply to connections already open, as in Redis). A session whose
    /// user was deleted is the default user's, not authenticated (its connection is being
    /// closed). Sessions of forwarded commands keep the internal user.
    pub fn refresh_user(&mut self, acl: &Acl) {
        let generation = acl.generation();
        if self.acl_generation == generation || self.acl_generation == u64::MAX {
            return;
        }
        self.acl_generation = generation;
        match acl.user(&self.user.name) {
            Some(user) => self.user = user,
            None => {
                self.user = acl.default_user();
                self.authenticated = false;
                *self.info.user.lock() = self.user.name.clone();
            }
        }
    }

    /// Whether the session's user still allows every subscription it holds (checked after
    /// the users change; a subscriber that lost a channel is closed, as in Redis).
    pub fn subscriptions_allowed(&mut self, acl: &Acl) -> bool {
        self.refresh_user(acl);
        match &self.pubsub {
            None => true,
            Some(subs) => subs
                .all()
                .all(|(name, pattern)| self.user.may_subscribe(name, pattern)),
        }
    }

    /// Shows the transaction's state in CLIENT LIST (`multi=`, flag `x`).
    pub fn show_multi(&self) {
        let queued = self.multi.as_ref().map_or(-1, |m| m.queued.len() as i32);
        self.info.multi.store(queued, Ordering::Relaxed);
    }

    /// Notes a write to `shards`.
    pub fn wrote_to(&mut self, shards: impl IntoIterator<Item = crate::cluster::ShardId>) {
        for shard in shards {
            if !self.written.contains(&shard) {
                self.written.push(shard);
            }
        }
    }

    /// Whether the connection has subscriptions.
    pub fn subscribed(&self) -> bool {
        self.pubsub.is_some()
    }

    /// RESP2 with subscriptions: only the pub/sub commands, PING, QUIT and RESET run.
    pub fn in_subscribed_mode(&self) -> bool {
        self.subscribed() && !self.resp3
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn select(&mut self, db: u8) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }

    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
        self.info
            .resp
            .store(if resp3 { 3 } else { 2 }, Ordering::Relaxed);
    }

    /// Called before each command (`name` as sent): whether its reply is sent, per
    /// CLIENT REPLY; and CLIENT CACHING's flag, which the command before it may end.
    pub fn begin_command(&mut self, name: &[u8]) {
        self.skip_current = false;
        let in_multi = self.multi.is_some();
        if let Some(tracking) = &mut self.tracking {
            tracking.after_command(self.previous_was_client, in_multi);
        }
        self.previous_was_client = name.eq_ignore_ascii_case(b"client");
        if self.reply_mode == ReplyMode::SkipNext {
            self.skip_current = true;
            self.reply_mode = ReplyMode::On;
        }
    }

    /// CLIENT REPLY OFF and SKIP send no reply of their own.
    pub fn suppress_current_reply(&mut self) {
        self.skip_current = true;
    }

    pub fn should_reply(&self) -> bool {
        !self.skip_current && self.reply_mode != ReplyMode::Off && !self.close_silently
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;
    use crate::cluster::ShardId;

    #[test]
    fn a_connection_looks_clustered_after_enough_commands_here_on_several_shards() {
        let mut one_shard = RouteHistory::default();
        for _ in 0..100 {
            one_shard.ran_here(ShardId(1), || false);
        }
        assert!(!one_shard.looks_clustered(), "one shard says nothing");

        let mut leader_of_all = RouteHistory::default();
        for i in 0..100 {
            leader_of_all.ran_here(ShardId(i % 4), || true);
        }
        assert!(
            !leader_of_all.looks_clustered(),
            "a node leading everything"
        );

        let mut spread = RouteHistory::default();
        for i in 0..CLUSTERED_AFTER as u16 - 1 {
            spread.ran_here(ShardId(i % 2), || false);
            assert!(!spread.looks_clustered(), "too few yet");
        }
        spread.ran_here(ShardId(0), || false);
        assert!(spread.looks_clustered() && spread.settled());
        spread.rule_out();
        assert!(!spread.looks_clustered(), "forwarded once: a plain client");
    }
}
