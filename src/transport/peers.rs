//! Connections to other nodes: one multiplexed cluster-proto connection per peer, shared by
//! every group and every caller.
//!
//! A caller hands a request to the peer's bounded queue and awaits the response with the
//! same id. The connection task dials (backing off from 50 ms to 1 s after failures),
//! exchanges `Hello`s, then writes queued requests and routes responses back; when the
//! connection drops, every request in flight fails at once and the task dials again. While
//! the peer is unreachable, queued requests fail straight away rather than wait.
//!
//! Every response received from a peer counts as a sign of life ([`Peers::silence`]);
//! [`Peers::ping`] keeps those signs coming while nothing else is sent, and its answers
//! time the round trip to the peer ([`Peers::round_trips`]: the network, the peer's
//! connection task, and whatever requests were queued ahead of the ping).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cluster_proto::messages::Ping;
use cluster_proto::{request, response, Hello, Message, Request, Response, PROTOCOL_VERSION};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::frame::read_frame;
use super::handshake::{self, Credentials, HandshakeError, RefusalLog};
use super::links::{Inbound, PeerLink};
use super::PeerStream;
use super::Traffic;
use crate::metrics::histogram::{Histogram, HistogramSnapshot};

/// Requests waiting per peer before callers are turned away.
const QUEUE_DEPTH: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("node {0} is unreachable")]
    Unreachable(u64),
    #[error("node {0} is busy (request queue full)")]
    Busy(u64),
    #[error("node {0} did not answer in time")]
    Timeout(u64),
    #[error("node {node}: {message}")]
    Remote { node: u64, message: String },
}

type Pending = oneshot::Sender<Result<response::Body, PeerError>>;

struct Peer {
    addr: String,
    created_unix_ms: u64,
    queue: mpsc::Sender<(request::Body, Pending)>,
    /// When the peer last answered anything ([`Clock`] time).
    heard: Arc<AtomicU64>,
    /// When its address first refused a connection since then (+1; 0: it has not).
    refused: Arc<AtomicU64>,
    /// How long its pings took to be answered.
    round_trips: Histogram,
    /// When the last ping was sent ([`Clock`] time).
    pinged: AtomicU64,
}

/// Milliseconds since the node's connections were set up, cheap to keep in an atomic.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// This node's connections to the others.
pub struct Peers {
    me: Hello,
    credentials: Credentials,
    refusals: RefusalLog,
    clock: Clock,
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
    traffic: Arc<Traffic>,
    inbound: Arc<Inbound>,
}

impl Peers {
    pub fn new(node_id: u64, cluster_addr: String, credentials: Credentials) -> Arc<Peers> {
        Arc::new(Peers {
            me: Hello {
                protocol_version: PROTOCOL_VERSION,
                node_id,
                cluster_addr,
                ..Hello::default()
            },
            credentials,
            refusals: RefusalLog::default(),
            clock: Clock(Instant::now()),
            peers: Mutex::new(HashMap::new()),
            traffic: Arc::default(),
            inbound: Arc::default(),
        })
    }

    /// What this node proves itself with, and checks its peers' proofs against.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Where refused peers are logged.
    pub fn refusals(&self) -> &RefusalLog {
        &self.refusals
    }

    /// The connections peers opened to this node (the listener lists them here).
    pub fn inbound(&self) -> &Arc<Inbound> {
        &self.inbound
    }

    /// Drops the connection to `node` (its task ends once nothing waits on it).
    pub fn forget(&self, node: u64) {
        self.peers.lock().remove(&node);
    }

    /// Every connection with a peer, both ways (CLUSTER LINKS).
    pub fn links(&self) -> Vec<PeerLink> {
        let mut links: Vec<PeerLink> = self
            .peers
            .lock()
            .iter()
            .filter(|(_, p)| !p.queue.is_closed())
            .map(|(node, p)| PeerLink {
                node: *node,
                outbound: true,
                created_unix_ms: p.created_unix_ms,
                queued: p.queue.max_capacity() - p.queue.capacity(),
                capacity: p.queue.max_capacity(),
            })
            .collect();
        links.extend(self.inbound.list());
        links.sort_by_key(|l| (l.node, !l.outbound));
        links
    }

    /// Messages sent and received on the cluster port, both directions (the listener
    /// counts into the same totals).
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// How long ago `node` last answered (counted from when this node first sent to it;
    /// `None` if it never has).
    pub fn silence(&self, node: u64) -> Option<Duration> {
        let heard = self.peers.lock().get(&node)?.heard.load(Ordering::Relaxed);
        Some(Duration::from_millis(
            self.clock.now_ms().saturating_sub(heard),
        ))
    }

    /// Whether `node` answered something within the last `within`.
    pub fn answered_within(&self, node: u64, within: Duration) -> bool {
        self.silence(node).is_some_and(|s| s < within)
    }

    /// How long ago `node`'s address refused a connection (its process is gone), if it did
    /// since it last answered.
    pub fn refused_for(&self, node: u64) -> Option<Duration> {
        let at = self
            .peers
            .lock()
            .get(&node)?
            .refused
            .load(Ordering::Relaxed);
        let at = at.checked_sub(1)?;
        Some(Duration::from_millis(
            self.clock.now_ms().saturating_sub(at),
        ))
    }

    /// Asks `node` whether it is up, in the background: its answer counts in
    /// [`silence`](Self::silence) and times a round trip.
    pub fn ping(self: &Arc<Self>, node: u64, addr: &str, timeout: Duration) {
        // The connection exists from now on, so `silence` counts from here.
        let peer = self.peer(node, addr);
        peer.pinged.store(self.clock.now_ms(), Ordering::Relaxed);
        let peers = self.clone();
        let addr = addr.to_string();
        tokio::spawn(async move {
            let sent = Instant::now();
            let ping = request::Body::Ping(Ping {});
            if peers.call(node, &addr, ping, timeout).await.is_ok() {
                let us = sent.elapsed().as_micros() as u64;
                peer.round_trips.observe_us(us);
            }
        });
    }

    /// Whether `node` was last pinged longer than `every` ago (or never).
    pub fn ping_due(&self, node: u64, every: Duration) -> bool {
        let Some(peer) = self.peers.lock().get(&node).cloned() else {
            return true;
        };
        let pinged = peer.pinged.load(Ordering::Relaxed);
        pinged == 0 || self.clock.now_ms().saturating_sub(pinged) >= every.as_millis() as u64
    }

    /// How long `node`'s pings took to be answered, if this node has a connection to it.
    pub fn round_trips(&self, node: u64) -> Option<HistogramSnapshot> {
        Some(self.peers.lock().get(&node)?.round_trips.snapshot())
    }

    pub fn hello(&self) -> &Hello {
        &self.me
    }

    /// Sends `body` to `node` at `addr` and waits up to `timeout` for its response.
    pub async fn call(
        &self,
        node: u64,
        addr: &str,
        body: request::Body,
        timeout: Duration,
    ) -> Result<response::Body, PeerError> {
        let peer = self.peer(node, addr);
        let (tx, rx) = oneshot::channel();
        peer.queue.try_send((body, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.traffic.queue_full.fetch_add(1, Ordering::Relaxed);
                PeerError::Busy(node)
            }
            mpsc::error::TrySendError::Closed(_) => PeerError::Unreachable(node),
        })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => match result? {
                response::Body::Error(message) => Err(PeerError::Remote { node, message }),
                body => Ok(body),
            },
            Ok(Err(_)) => Err(PeerError::Unreachable(node)),
            Err(_) => Err(PeerError::Timeout(node)),
        }
    }

    /// The connection to `node`, started on first use (and restarted if its address changed).
    fn peer(&self, node: u64, addr: &str) -> Arc<Peer> {
        let mut peers = self.peers.lock();
        if let Some(p) = peers.get(&node) {
            if p.addr == addr && !p.queue.is_closed() {
                return p.clone();
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let heard = Arc::new(AtomicU64::new(self.clock.now_ms()));
        let refused = Arc::new(AtomicU64::new(0));
        let peer = Arc::new(Peer {
            addr: addr.to_string(),
            created_unix_ms: crate::clock::now_ms(),
            queue: tx,
            heard: heard.clone(),
            refused: refused.clone(),
            round_trips: Histogram::default(),
            pinged: AtomicU64::new(0),
        });
        peers.insert(node, peer.clone());
        let link = Link {
            node,
            addr: addr.to_string(),
            me: self.me.clone(),
            credentials: self.credentials.clone(),
            clock: self.clock,
            heard,
            refused,
            traffic: self.traffic.clone(),
        };
        tokio::spawn(run_connection(link, rx));
        peer
    }
}

async fn dial(
    addr: &str,
    me: &Hello,
    credentials: &Credentials,
) -> std::io::Result<(PeerStream, BytesMut)> {
    let tcp = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    tcp.set_nodelay(true)?;
    let mut stream = credentials.secure_dialled(addr, tcp).await?;
    let (_, buf) = handshake::dial(&mut stream, me, credentials)
        .await
        .map_err(|e| match e {
            HandshakeError::Io(e) => e,
            e => std::io::Error::new(std::io::ErrorKind::PermissionDenied, e),
        })?;
    Ok((stream, buf))
}

/// What the connection task to one peer knows.
struct Link {
    node: u64,
    addr: String,
    me: Hello,
    credentials: Credentials,
    clock: Clock,
    heard: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    traffic: Arc<Traffic>,
}

/// Owns the connection to one peer for as long as anyone may send to it.
async fn run_connection(link: Link, mut queue: mpsc::Receiver<(request::Body, Pending)>) {
    let Link {
        node,
        addr,
        me,
        credentials,
        clock,
        heard,
        refused,
        traffic,
    } = link;
    let next_id = AtomicU64::new(1);
    let mut backoff = BACKOFF_MIN;
    // Whether the peer's loss has been logged (once, until it answers again).
    let mut lost = false;
    loop {
        let (stream, mut buf) = match dial(&addr, &me, &credentials).await {
            Ok(c) => {
                backoff = BACKOFF_MIN;
                if std::mem::take(&mut lost) {
                    tracing::info!(peer = node, %addr, "peer reachable again");
                }
                c
            }
            Err(e) => {
                if !std::mem::replace(&mut lost, true) {
                    tracing::warn!(peer = node, %addr, error = %e, "cannot reach peer");
                } else {
                    tracing::debug!(peer = node, %addr, error = %e, "cannot reach peer");
                }
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    let now = clock.now_ms() + 1;
                    let _ = refused.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                }
                // Fail what is queued now, then wait before dialling again.
                let deadline = tokio::time::Instant::now() + backoff;
                loop {
                    tokio::select! {
                        got = queue.recv() => match got {
                            Some((_, reply)) => { let _ = reply.send(Err(PeerError::Unreachable(node))); }
                            None => return,
                        },
                        _ = tokio::time::sleep_until(deadline) => break,
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (mut reader, mut writer) = stream.split();
        let in_flight: Arc<Mutex<HashMap<u64, Pending>>> = Default::default();
        let reading = {
            let in_flight = in_flight.clone();
            let (heard, refused, traffic) = (heard.clone(), refused.clone(), traffic.clone());
            async move {
                loop {
                    let raw = read_frame(&mut reader, &mut buf).await?;
                    traffic.count_received();
                    heard.store(clock.now_ms(), Ordering::Relaxed);
                    refused.store(0, Ordering::Relaxed);
                    let resp = Response::decode(raw)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    if let Some(waiter) = in_flight.lock().remove(&resp.id) {
                        let body = resp.body.unwrap_or(response::Body::Error(
                            "the peer sent an empty response".into(),
                        ));
                        let _ = waiter.send(Ok(body));
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            }
        };
        let writing = async {
            let mut out = BytesMut::new();
            loop {
                let Some((body, reply)) = queue.recv().await else {
                    return Ok::<bool, std::io::Error>(true);
                };
                let mut batch = vec![(body, reply)];
                while let Ok(more) = queue.try_recv() {
                    batch.push(more);
                    if batch.len() >= 64 {
                        break;
                    }
                }
                let sent = batch.len() as u64;
                for (body, reply) in batch {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    in_flight.lock().insert(id, reply);
                    let req = Request {
                        id,
                        body: Some(body),
                    };
                    cluster_proto::encode_frame(&req.encode_to_vec(), &mut out)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                }
                writer.write_all(&out).await?;
                writer.flush().await?;
                traffic.count_sent(sent);
                out.clear();
            }
        };
        let closed = tokio::select! {
            r = reading => {
                tracing::warn!(peer = node, %addr, error = ?r.err(), "lost the connection to a peer");
                lost = true;
                false
            }
            w = writing => matches!(w, Ok(true)),
        };
        for (_, waiter) in in_flight.lock().drain() {
            let _ = waiter.send(Err(PeerError::Unreachable(node)));
        }
        if closed {
            return;
        }
    }
}
