//! The registry of connected clients, as CLIENT LIST/INFO/KILL and INFO clients see them.
//!
//! Each connection registers a [`ClientInfo`] and keeps its counters current; a kill sets a
//! flag and wakes the connection, which closes itself. No sockets here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::mailbox::{Delivery, Limit, Mailbox};
use crate::clock;

/// What CLIENT LIST shows of a client's tracking.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackingShown {
    pub on: bool,
    pub bcast: bool,
    pub broken_redirect: bool,
    /// The client invalidations go to (0: this one).
    pub redirect: u64,
}

/// What the registry and CLIENT LIST know of one connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub lib_name: Mutex<Option<Bytes>>,
    pub lib_ver: Mutex<Option<Bytes>>,
    /// The ACL user the connection is authenticated as (CLIENT LIST user, CLIENT KILL USER).
    pub user: Mutex<Bytes>,
    pub db: AtomicU8,
    pub resp: AtomicU8,
    pub last_cmd: Mutex<&'static str>,
    last_interaction_ms: AtomicU64,
    pub query_buffer_bytes: AtomicU64,
    pub output_bytes: AtomicU64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    /// MONITOR is on (CLIENT LIST flag `O`).
    pub monitoring: AtomicBool,
    /// Subscriptions: channels, patterns, shard channels (CLIENT LIST sub, psub, ssub).
    pub subscriptions: [AtomicU32; 3],
    /// Commands queued in MULTI, -1 outside it (CLIENT LIST multi).
    pub multi: AtomicI32,
    /// Messages pushed to the client (published messages, invalidations).
    pub mailbox: Mailbox,
    /// CLIENT TRACKING as CLIENT LIST shows it: flags (`t`, `B`, `R`) and `redir`.
    pub tracking: Mutex<TrackingShown>,
    killed: AtomicBool,
    kill_signal: Notify,
    /// The ACL users changed: a subscriber checks its subscriptions against its user.
    acl_signal: Notify,
}

impl ClientInfo {
    /// Records the command a client just sent, at `now_ms`.
    pub fn touch(&self, cmd: &'static str, now_ms: u64) {
        *self.last_cmd.lock() = cmd;
        self.last_interaction_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Queues a pushed message for this client (see `Mailbox::push`).
    pub fn deliver(&self, delivery: Delivery, limit: Limit) -> bool {
        self.mailbox.push(self, delivery, limit)
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_signal.notify_one();
    }

    /// Tells the connection the ACL users changed.
    pub fn users_changed(&self) {
        self.acl_signal.notify_one();
    }

    /// Resolves when the ACL users changed since the connection last looked.
    pub async fn users_change(&self) {
        self.acl_signal.notified().await
    }

    /// Resolves once the client has been killed.
    pub async fn killed(&self) {
        while !self.is_killed() {
            self.kill_signal.notified().await;
        }
    }

    pub fn age_secs(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    pub fn idle_secs(&self) -> u64 {
        clock::now_ms().saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// One line of CLIENT LIST, fields as redis-server 7.2 prints them.
    pub fn describe(&self) -> String {
        let text = |m: &Mutex<Option<Bytes>>| {
            m.lock()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let qbuf = self.query_buffer_bytes.load(Ordering::Relaxed);
        let omem = self.output_bytes.load(Ordering::Relaxed);
        // In redis-server's order.
        let mut flags = String::new();
        if self.monitoring.load(Ordering::Relaxed) {
            flags.push('O');
        }
        let [sub, psub, ssub] = self
            .subscriptions
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed));
        if sub + psub + ssub > 0 {
            flags.push('P');
        }
        let multi = self.multi.load(Ordering::Relaxed);
        if multi >= 0 {
            flags.push('x');
        }
        let tracking = *self.tracking.lock();
        if tracking.on {
            flags.push('t');
            if tracking.broken_redirect {
                flags.push('R');
            }
            if tracking.bcast {
                flags.push('B');
            }
        }
        let redir = if tracking.on {
            tracking.redirect as i64
        } else {
            -1
        };
        if self.no_evict.load(Ordering::Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Ordering::Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={sub} \
             psub={psub} ssub={ssub} multi={multi} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 \
             oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={redir} resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            text(&self.name),
            self.age_secs(),
            self.idle_secs(),
            flags,
            self.db.load(Ordering::Relaxed),
            qbuf,
            omem,
            qbuf + omem + 16384,
            self.last_cmd.lock(),
            String::from_utf8_lossy(&self.user.lock()),
            self.resp.load(Ordering::Relaxed),
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
}

impl ClientRegistry {
    /// Registers a new connection and returns its record.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let info = self.detached(addr, laddr);
        self.clients.lock().insert(info.id, info.clone());
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        info
    }

    /// A client record that is not listed (commands another node forwards run under one).
    pub fn detached(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            user: Mutex::new(Bytes::from_static(b"default")),
            db: AtomicU8::new(0),
            resp: AtomicU8::new(2),
            last_cmd: Mutex::new("NULL"),
            last_interaction_ms: AtomicU64::new(clock::now_ms()),
            query_buffer_bytes: AtomicU64::new(0),
            output_bytes: AtomicU64::new(0),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            monitoring: AtomicBool::new(false),
            subscriptions: Default::default(),
            multi: AtomicI32::new(-1),
            mailbox: Mailbox::default(),
            tracking: Mutex::new(TrackingShown::default()),
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
            acl_signal: Notify::new(),
        })
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.clients.lock().len()
    }

    /// Every client not yet killed, in id order (a killed client is gone for CLIENT LIST
    /// and CLIENT KILL even before its connection has finished closing).
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.clients
            .lock()
            .values()
            .filter(|c| !c.is_killed())
            .cloned()
            .collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }
}
