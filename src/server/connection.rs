//! One client connection: read, decode every complete request, run them in order, write all
//! replies with one write, repeat.
//!
//! A protocol error replies `-ERR Protocol error: …` and closes, as redis-server does; a
//! command error is just a reply. The query buffer, the output pending per round and idle
//! time are bounded by the settings.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::stream::ClientStream;
use bytes::BytesMut;
use tokio::sync::watch;

use super::limits::OutputWatch;
use crate::commands::clients::ClientInfo;
use crate::commands::Session;
use crate::limits::{
    OUTPUT_FLUSH_BYTES, OUTPUT_PENDING_BYTES_MAX, PIPELINE_COMMANDS_MAX, READ_CHUNK_BYTES,
    WRITE_BATCH_MAX,
};
use crate::node::{Node, Pending, Prepared, RequestKind};
use crate::protocol::{DecodeLimits, Reply, RequestDecoder};

/// Why a connection ended (logged at debug level; fields are read through `Debug`).
#[derive(Debug)]
#[allow(dead_code)]
enum Closed {
    ByPeer,
    Quit,
    Killed,
    Shutdown,
    ProtocolError,
    QueryBufferLimit,
    OutputBufferLimit,
    IdleTimeout,
    StorageFailure,
    Io(std::io::Error),
}

pub async fn run(
    node: Arc<Node>,
    socket: ClientStream,
    info: Arc<ClientInfo>,
    stop: watch::Receiver<bool>,
) {
    let mut session = Session::new(info.clone(), !node.shared.auth_required());
    session.log_in(node.shared.acl.default_user(), &node.shared.acl);
    let mut conn = Connection {
        session,
        node,
        socket,
        input: BytesMut::with_capacity(READ_CHUNK_BYTES),
        output: BytesMut::with_capacity(READ_CHUNK_BYTES),
        decoder: RequestDecoder::new(),
        output_watch: OutputWatch::default(),
        stop,
    };
    let closed = conn.serve().await;
    tracing::debug!(client = info.id, reason = ?closed, "connection closed");
    // Subscriptions, watches, tracking and monitoring end before the socket closes: once a
    // client sees the connection closed, nothing on this node counts it any more (a
    // PUBLISH right after does not count a subscriber that was cut, as in Redis).
    let Connection {
        session, socket, ..
    } = conn;
    drop(session);
    drop(socket);
}

struct Connection {
    node: Arc<Node>,
    socket: ClientStream,
    session: Session,
    input: BytesMut,
    output: BytesMut,
    decoder: RequestDecoder,
    output_watch: OutputWatch,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(&mut self) -> Closed {
        loop {
            let needs_input = match self.run_buffered_requests().await {
                Ok(needs_input) => needs_input,
                Err(closed) => return closed,
            };
            self.deliver_messages();
            if let Err(closed) = self.flush().await {
                return closed;
            }
            if !needs_input {
                // The round's cap was reached with requests still buffered: let other
                // connections run, then continue without reading.
                tokio::task::yield_now().await;
                continue;
            }
            if let Err(closed) = self.read_more().await {
                return closed;
            }
        }
    }

    fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            bulk_len_bytes_max: self.node.shared.config.bulk_len_bytes_max(),
            unauthenticated: !self.session.authenticated && self.node.shared.auth_required(),
        }
    }

    /// Runs the complete requests in the input buffer, at most `PIPELINE_COMMANDS_MAX` per
    /// round. Returns whether it stopped for lack of input (rather than at the cap).
    async fn run_buffered_requests(&mut self) -> Result<bool, Closed> {
        let node = self.node.clone();
        // Writes whose replies wait, so consecutive writes pass through the log together;
        // each with whether its reply is to be sent (CLIENT REPLY).
        let mut pending: Vec<(Pending<'_>, bool)> = Vec::new();
        let mut needs_input = false;
        for _ in 0..PIPELINE_COMMANDS_MAX {
            let limits = self.decode_limits();
            let request = match self.decoder.decode(&mut self.input, &limits) {
                Ok(Some(request)) => request,
                Ok(None) => {
                    needs_input = true;
                    break;
                }
                Err(e) => {
                    self.commit(&node, &mut pending).await;
                    self.output
                        .extend_from_slice(format!("-ERR {e}\r\n").as_bytes());
                    let _ = self.flush().await;
                    return Err(Closed::ProtocolError);
                }
            };
            // Anything but a write must see the writes before it; a command for another
            // node goes with them (it runs after them there, in order).
            let kind = node.classify(&request);
            let waits = kind == RequestKind::Write
                || (kind == RequestKind::Other && node.led_elsewhere(&request));
            if !waits {
                self.commit(&node, &mut pending).await;
            }
            let prepared = if kind == RequestKind::Blocking {
                self.prepare_watching_peer(&node, request).await
            } else {
                node.prepare(&mut self.session, request).await
            };
            let waiting = match prepared {
                Prepared::Write(write) => Pending::Write(write),
                Prepared::Forward(forward) => Pending::Forward(forward),
                Prepared::Done(reply) if pending.is_empty() => {
                    self.reply(reply);
                    if let Some(closed) = self.after_reply().await {
                        return Err(closed);
                    }
                    continue;
                }
                Prepared::Done(reply) => {
                    // Replies go out in request order: the waiting requests answer first.
                    let wanted = self.session.should_reply();
                    self.commit(&node, &mut pending).await;
                    if wanted {
                        reply.encode(self.session.resp3, &mut self.output);
                    }
                    if let Some(closed) = self.after_reply().await {
                        return Err(closed);
                    }
                    continue;
                }
            };
            pending.push((waiting, self.session.should_reply()));
            if pending.len() >= WRITE_BATCH_MAX {
                self.commit(&node, &mut pending).await;
            }
        }
        self.commit(&node, &mut pending).await;
        self.session
            .info
            .query_buffer_bytes
            .store(self.input.len() as u64, Ordering::Relaxed);
        Ok(needs_input)
    }

    /// Moves messages pushed to this client (published messages, invalidations) into the
    /// output.
    fn deliver_messages(&mut self) {
        let mailbox = &self.session.info.mailbox;
        if mailbox.is_empty() {
            return;
        }
        let (resp3, subscribed) = (self.session.resp3, self.session.subscribed());
        for delivery in mailbox.take() {
            if let Some(reply) = delivery.into_reply(resp3, subscribed) {
                reply.encode(resp3, &mut self.output);
            }
        }
    }

    /// Encodes a reply unless the client turned replies off.
    fn reply(&mut self, reply: Reply) {
        if self.session.should_reply() {
            reply.encode(self.session.resp3, &mut self.output);
        }
    }

    /// After a reply: closes the connection if the command asked for it, and sends output
    /// once enough has gathered.
    async fn after_reply(&mut self) -> Option<Closed> {
        if self.session.close_silently {
            return Some(Closed::Shutdown);
        }
        if self.session.close_after_reply {
            let _ = self.flush().await;
            return Some(Closed::Quit);
        }
        if self.output.len() >= OUTPUT_FLUSH_BYTES {
            if let Err(closed) = self.drain_without_waiting() {
                return Some(closed);
            }
            if self.output.len() >= OUTPUT_PENDING_BYTES_MAX {
                if let Err(closed) = self.flush().await {
                    return Some(closed);
                }
            }
        }
        None
    }

    /// Runs a command that may block, watching the socket meanwhile: if the peer hangs up,
    /// the client is marked killed, which ends the wait cleanly (it leaves the queue of
    /// blocked clients, so no element is popped for a client that is gone).
    async fn prepare_watching_peer<'n>(
        &mut self,
        node: &'n Node,
        request: Vec<bytes::Bytes>,
    ) -> Prepared<'n> {
        let info = self.session.info.clone();
        let (socket, session) = (&mut self.socket, &mut self.session);
        // What the client sends meanwhile is kept for after the command (a TLS stream
        // cannot be peeked at).
        let mut early = BytesMut::new();
        let watch_peer = async {
            if matches!(socket.read_buf(&mut early).await, Ok(0) | Err(_)) {
                info.kill();
            }
            // More input (or the kill) leaves the rest to the command.
            std::future::pending::<()>().await
        };
        let prepared = tokio::select! {
            prepared = node.prepare(session, request) => prepared,
            _ = watch_peer => unreachable!("the peer watch never completes"),
        };
        if !early.is_empty() {
            self.node
                .shared
                .stats
                .net_input_bytes
                .add(early.len() as u64);
            self.input.extend_from_slice(&early);
        }
        prepared
    }

    /// Proposes the waiting writes together and encodes their replies in order.
    async fn commit(&mut self, node: &Node, pending: &mut Vec<(Pending<'_>, bool)>) {
        if pending.is_empty() {
            return;
        }
        let (writes, wanted): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
        let replies = node.commit(writes, &self.session).await;
        for (reply, wanted) in replies.iter().zip(wanted) {
            if wanted {
                reply.encode(self.session.resp3, &mut self.output);
            }
        }
    }

    /// Writes what the socket takes now; the rest stays pending. Closes a client whose
    /// pending output breaks `client-output-buffer-limit`.
    fn drain_without_waiting(&mut self) -> Result<(), Closed> {
        self.commit_barrier()?;
        while !self.output.is_empty() {
            match self.socket.try_write(&self.output) {
                Ok(n) => {
                    self.node.shared.stats.net_output_bytes.add(n as u64);
                    let _ = self.output.split_to(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Closed::Io(e)),
            }
        }
        self.check_output_limit()
    }

    /// Makes the writes behind the replies reach the storage log first; if that fails the
    /// replies are not sent (the engine is poisoned and the client is closed).
    fn commit_barrier(&mut self) -> Result<(), Closed> {
        self.node.shared.before_reply().map_err(|e| {
            tracing::error!(error = %e, "could not write the log before replying");
            Closed::StorageFailure
        })
    }

    /// Publishes the pending output size and closes a client over its output limit.
    fn check_output_limit(&mut self) -> Result<(), Closed> {
        let pending = self.output.len() as u64;
        self.session
            .info
            .output_bytes
            .store(pending, Ordering::Relaxed);
        if self
            .output_watch
            .exceeded(&self.node.shared.config, pending, self.session.subscribed())
        {
            return Err(Closed::OutputBufferLimit);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.output.is_empty() {
            return Ok(());
        }
        self.check_output_limit()?;
        self.commit_barrier()?;
        let pending = self.output.len() as u64;
        let info = self.session.info.clone();
        tokio::select! {
            biased;
            written = self.socket.write_all(&self.output) => written.map_err(Closed::Io)?,
            _ = info.killed() => return Err(Closed::Killed),
            _ = self.stop.changed() => return Err(Closed::Shutdown),
        }
        self.node.shared.stats.net_output_bytes.add(pending);
        self.session.info.output_bytes.store(0, Ordering::Relaxed);
        self.output.clear();
        Ok(())
    }

    async fn read_more(&mut self) -> Result<(), Closed> {
        if self.input.len() > self.node.shared.config.query_buffer_bytes_max() {
            return Err(Closed::QueryBufferLimit);
        }
        if self.input.capacity() - self.input.len() < READ_CHUNK_BYTES / 2 {
            self.input.reserve(READ_CHUNK_BYTES);
        }
        let info = self.session.info.clone();
        let idle_secs = self.node.shared.config.idle_timeout_secs();
        let timer = async {
            match idle_secs {
                0 => std::future::pending().await,
                secs => tokio::time::sleep(std::time::Duration::from_secs(secs)).await,
            }
        };
        // A client also wakes for pushed messages (written out by `serve`); a subscriber
        // has no idle timeout, as in Redis.
        let message = info.mailbox.ready();
        let subscribed = self.session.subscribed();
        let timer = async {
            if subscribed {
                std::future::pending::<()>().await;
            }
            timer.await
        };
        let n = tokio::select! {
            read = self.socket.read_buf(&mut self.input) => read.map_err(Closed::Io)?,
            _ = message => return Ok(()),
            _ = info.killed() => return Err(Closed::Killed),
            _ = info.users_change() => {
                return match self.session.subscriptions_allowed(&self.node.shared.acl) {
                    true => Ok(()),
                    false => Err(Closed::Killed),
                };
            }
            _ = self.stop.changed() => return Err(Closed::Shutdown),
            _ = timer => return Err(Closed::IdleTimeout),
        };
        if n == 0 {
            return Err(Closed::ByPeer);
        }
        self.node.shared.stats.net_input_bytes.add(n as u64);
        Ok(())
    }
}
