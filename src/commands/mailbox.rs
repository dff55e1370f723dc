//! A client's queue of pushed messages: published messages for a subscriber, key
//! invalidations for a client that tracks keys (or is the target of another's redirect).
//!
//! Whoever sends pushes into the queue and wakes the connection, which writes the queue out
//! between replies; a sender never waits for the client. A client whose queue outgrows its
//! output limit (the hard limit, or the soft one for its seconds) is cut, as Redis cuts it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::clients::ClientInfo;
use crate::limits::MAILBOX_BYTES_MAX;
use crate::protocol::Reply;

/// The channel a RESP2 client receives invalidations on when another client redirects
/// them to it.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// One message on its way to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
    /// These keys changed.
    Invalidate(Vec<Bytes>),
    /// Every key may have changed (a flush): a null in place of the keys, encoded in the
    /// tracking client's protocol (`resp3`) even when redirected, as Redis does.
    InvalidateAll {
        resp3: bool,
    },
    /// The client this one redirects its invalidations to (its id) is gone.
    RedirectBroken(u64),
    /// A command's line for a monitor, encoded (`commands::monitor`).
    Monitor(Bytes),
}

impl Delivery {
    fn size(&self) -> u64 {
        let parts = match self {
            Delivery::Message { channel, payload } | Delivery::SMessage { channel, payload } => {
                channel.len() + payload.len()
            }
            Delivery::PMessage {
                pattern,
                channel,
                payload,
            } => pattern.len() + channel.len() + payload.len(),
            Delivery::Invalidate(keys) => keys.iter().map(|k| k.len() + 8).sum(),
            Delivery::InvalidateAll { .. } => 8,
            Delivery::RedirectBroken(_) => 8,
            Delivery::Monitor(line) => line.len(),
        };
        (parts + 48) as u64
    }

    /// The message as Redis sends it to a client speaking `resp3`, `subscribed` or not: a
    /// push in RESP3, an array in RESP2. Invalidations reach a RESP2 client only through a
    /// subscription (as a message on `__redis__:invalidate`), and a broken redirect is told
    /// only in RESP3; `None` when the client cannot receive the message.
    pub fn into_reply(self, resp3: bool, subscribed: bool) -> Option<Reply> {
        let bulk = Reply::Bulk;
        let parts = match self {
            Delivery::Message { channel, payload } => {
                vec![Reply::bulk("message"), bulk(channel), bulk(payload)]
            }
            Delivery::PMessage {
                pattern,
                channel,
                payload,
            } => vec![
                Reply::bulk("pmessage"),
                bulk(pattern),
                bulk(channel),
                bulk(payload),
            ],
            Delivery::SMessage { channel, payload } => {
                vec![Reply::bulk("smessage"), bulk(channel), bulk(payload)]
            }
            Delivery::Invalidate(keys) => {
                let keys = Reply::Array(keys.into_iter().map(Reply::Bulk).collect());
                invalidation(keys, resp3, subscribed)?
            }
            Delivery::InvalidateAll { resp3: null_resp3 } => {
                let null: &'static [u8] = if null_resp3 { b"_\r\n" } else { b"$-1\r\n" };
                invalidation(Reply::Encoded(Bytes::from_static(null)), resp3, subscribed)?
            }
            Delivery::RedirectBroken(id) if resp3 => {
                vec![
                    Reply::bulk("tracking-redir-broken"),
                    Reply::Integer(id as i64),
                ]
            }
            Delivery::RedirectBroken(_) => return None,
            // A status line in either protocol, not a push.
            Delivery::Monitor(line) => return Some(Reply::Encoded(line)),
        };
        Some(Reply::Push(parts))
    }
}

/// An invalidation's parts for a receiver speaking `resp3`, `subscribed` or not.
fn invalidation(keys: Reply, resp3: bool, subscribed: bool) -> Option<Vec<Reply>> {
    if resp3 {
        Some(vec![Reply::bulk("invalidate"), keys])
    } else if subscribed {
        Some(vec![
            Reply::bulk("message"),
            Reply::bulk(INVALIDATE_CHANNEL),
            keys,
        ])
    } else {
        None
    }
}

/// An output limit: hard bytes, soft bytes, soft seconds (0: none).
pub type Limit = (u64, u64, u64);

/// A client's queue of messages not yet written out.
#[derive(Default)]
pub struct Mailbox {
    queue: Mutex<VecDeque<Delivery>>,
    bytes: AtomicU64,
    over_soft_since: Mutex<Option<Instant>>,
    ready: Notify,
}

impl Mailbox {
    /// Queues a message for `client` (whose mailbox this is); a client over `limit` is cut
    /// instead (the message dropped). What the connection holds unwritten counts too.
    pub(super) fn push(&self, client: &ClientInfo, delivery: Delivery, limit: Limit) -> bool {
        if client.is_killed() {
            return false;
        }
        let size = delivery.size();
        let total = self.bytes.fetch_add(size, Ordering::AcqRel)
            + size
            + client.output_bytes.load(Ordering::Relaxed);
        if self.over_limit(total, limit) {
            tracing::debug!(
                client = client.id,
                bytes = total,
                "client over its output limit with pushed messages, cut"
            );
            client.kill();
            self.queue.lock().clear();
            self.bytes.store(0, Ordering::Release);
            return false;
        }
        self.queue.lock().push_back(delivery);
        self.ready.notify_one();
        true
    }

    fn over_limit(&self, total: u64, (hard, soft, soft_secs): Limit) -> bool {
        if (hard > 0 && total >= hard) || total >= MAILBOX_BYTES_MAX {
            return true;
        }
        let mut since = self.over_soft_since.lock();
        if soft > 0 && total >= soft {
            let at = *since.get_or_insert_with(Instant::now);
            return at.elapsed().as_secs() >= soft_secs;
        }
        *since = None;
        false
    }

    /// Whether nothing waits (without taking the lock).
    pub fn is_empty(&self) -> bool {
        self.bytes.load(Ordering::Acquire) == 0
    }

    /// Everything queued, in order.
    pub fn take(&self) -> Vec<Delivery> {
        let taken: Vec<Delivery> = self.queue.lock().drain(..).collect();
        let size: u64 = taken.iter().map(Delivery::size).sum();
        self.bytes.fetch_sub(size, Ordering::AcqRel);
        taken
    }

    /// Resolves when a message may be waiting.
    pub async fn ready(&self) {
        self.ready.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<Bytes> {
        k.iter()
            .map(|k| Bytes::copy_from_slice(k.as_bytes()))
            .collect()
    }

    fn encoded(d: Delivery, resp3: bool, subscribed: bool) -> Option<String> {
        d.into_reply(resp3, subscribed).map(|r| {
            let mut out = bytes::BytesMut::new();
            r.encode(resp3, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    }

    #[test]
    fn a_client_that_never_reads_is_cut_at_the_mailbox_cap_even_without_a_limit() {
        let registry = crate::commands::clients::ClientRegistry::default();
        let addr = "127.0.0.1:1".parse().unwrap();
        let client = registry.register(addr, addr);
        // One shared 1 MiB payload: counted per message, held once.
        let payload = Bytes::from(vec![b'x'; 1 << 20]);
        let message = || Delivery::Message {
            channel: Bytes::from_static(b"c"),
            payload: payload.clone(),
        };
        let fits = (MAILBOX_BYTES_MAX >> 20) - 1;
        for _ in 0..fits {
            assert!(client.deliver(message(), (0, 0, 0)));
        }
        assert!(!client.is_killed());
        assert!(!client.deliver(message(), (0, 0, 0)));
        assert!(client.is_killed());
        assert!(client.mailbox.take().is_empty());
    }

    #[test]
    fn invalidations_take_the_shape_the_receiver_can_read() {
        let inv = || Delivery::Invalidate(keys(&["k"]));
        assert_eq!(
            encoded(inv(), true, false).unwrap(),
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            encoded(inv(), false, true).unwrap(),
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(encoded(inv(), false, false), None);
        // A flush's null is in the tracking client's protocol, whatever the receiver's.
        let all = |resp3| Delivery::InvalidateAll { resp3 };
        assert_eq!(
            encoded(all(true), true, false).unwrap(),
            ">2\r\n$10\r\ninvalidate\r\n_\r\n"
        );
        assert_eq!(
            encoded(all(false), true, false).unwrap(),
            ">2\r\n$10\r\ninvalidate\r\n$-1\r\n"
        );
        assert_eq!(
            encoded(all(true), false, true).unwrap(),
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n_\r\n"
        );
        assert_eq!(
            encoded(Delivery::RedirectBroken(7), true, false).unwrap(),
            ">2\r\n$21\r\ntracking-redir-broken\r\n:7\r\n"
        );
        assert_eq!(encoded(Delivery::RedirectBroken(7), false, true), None);
    }
}
