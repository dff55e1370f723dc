//! Key values as a cross-shard transaction moves them: read as a DUMP payload with its
//! expiry and revision (a shard answers a Prepare with them; the coordinator reads the
//! outcome back the same way), and the binary form a Prepare's reply carries them in.

use bytes::{BufMut, Bytes, BytesMut};

use super::super::Node;
use crate::codec;
use crate::commands::{Ctx, Outcome, Session};
use crate::keyspace::Keyspace;
use crate::protocol::reply::decode_scalar;
use crate::protocol::Reply;

/// One key as a shard holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyValue {
    /// The DUMP payload of the live value; `None` when the key does not exist (or expired).
    pub payload: Option<Bytes>,
    /// Absolute expiry in Unix ms, 0 for none.
    pub expire_at_ms: u64,
    /// The stored record's revision (0: none), expired or not.
    pub revision: u64,
    /// A record is stored but has expired.
    pub expired: bool,
}

impl KeyValue {
    /// The write that gives a key this value: RESTORE (absolute TTL, replacing) or DEL.
    pub fn write(&self, key: &Bytes) -> Vec<Bytes> {
        match &self.payload {
            Some(payload) => vec![
                Bytes::from_static(b"RESTORE"),
                key.clone(),
                Bytes::from(self.expire_at_ms.to_string()),
                payload.clone(),
                Bytes::from_static(b"ABSTTL"),
                Bytes::from_static(b"REPLACE"),
            ],
            None => vec![Bytes::from_static(b"DEL"), key.clone()],
        }
    }

    /// Whether a key with this value reads the same as one with `other` (revisions aside).
    pub fn same_value(&self, other: &KeyValue) -> bool {
        self.payload == other.payload
            && (self.payload.is_none() || self.expire_at_ms == other.expire_at_ms)
    }
}

/// Reads `key` of `db` from `keyspace` at `now_ms` (a key expired then reads as none).
pub(crate) fn read_value(
    node: &Node,
    keyspace: &Keyspace,
    db: u8,
    key: &Bytes,
    now_ms: u64,
) -> Result<KeyValue, String> {
    let stored = keyspace.get_stored(db, key).map_err(|e| e.to_string())?;
    let Some(meta) = stored else {
        return Ok(KeyValue::default());
    };
    if meta.is_expired(now_ms) {
        return Ok(KeyValue {
            revision: meta.revision,
            expired: true,
            ..KeyValue::default()
        });
    }
    let dump = node
        .shared
        .table
        .get(b"dump")
        .ok_or("no DUMP command in the table")?;
    let info = node.shared.clients.detached(
        super::super::forwarding::peer_addr(),
        super::super::forwarding::peer_addr(),
    );
    let mut session = Session::new(info, true);
    session.select(db);
    let mut ctx = Ctx {
        shared: &node.shared,
        keyspace,
        cluster: node,
        session: &mut session,
        now_ms,
        expired: Vec::new(),
    };
    let payload = match (dump.run)(&mut ctx, &[Bytes::from_static(b"DUMP"), key.clone()]) {
        Ok(Outcome::Reply(Reply::Bulk(payload))) => Some(payload),
        Ok(Outcome::Reply(Reply::Null)) => None,
        Ok(_) => return Err("DUMP answered unexpectedly".to_string()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(KeyValue {
        payload,
        expire_at_ms: meta.expire_at_ms,
        revision: meta.revision,
        expired: false,
    })
}

/// `count:u32 | (flags:u8 | expire_at_ms:u64 | revision:u64 | len:u32 | payload)*`, flags
/// bit 0 = present, bit 1 = expired.
pub(crate) fn encode_values(values: &[KeyValue]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u32(values.len() as u32);
    for v in values {
        let flags = u8::from(v.payload.is_some()) | (u8::from(v.expired) << 1);
        out.put_u8(flags);
        out.put_u64(v.expire_at_ms);
        out.put_u64(v.revision);
        codec::put_bytes(&mut out, v.payload.as_deref().unwrap_or_default());
    }
    out.freeze()
}

pub(crate) fn decode_values(mut raw: Bytes) -> Option<Vec<KeyValue>> {
    let raw = &mut raw;
    let count = codec::get_u32(raw).ok()?;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let flags = codec::get_u8(raw).ok()?;
        let expire_at_ms = codec::get_u64(raw).ok()?;
        let revision = codec::get_u64(raw).ok()?;
        let payload = codec::get_bytes(raw).ok()?;
        out.push(KeyValue {
            payload: (flags & 1 != 0).then_some(payload),
            expire_at_ms,
            revision,
            expired: flags & 2 != 0,
        });
    }
    raw.is_empty().then_some(out)
}

/// A reply a peer encoded, as the scalar it is (an aggregate stays encoded).
fn decoded(reply: &Reply) -> Reply {
    match reply {
        Reply::Encoded(raw) => decode_scalar(raw).unwrap_or_else(|| reply.clone()),
        other => other.clone(),
    }
}

/// The error text of a reply, local or encoded by a peer; `None` when it is no error.
pub(crate) fn error_text(reply: &Reply) -> Option<String> {
    match decoded(reply) {
        Reply::Error(e) => Some(e),
        _ => None,
    }
}

/// The bulk string a shard's step answered, from a local reply or one a peer encoded:
/// `Err` with the error text for an error reply (or anything else).
pub(crate) fn bulk_of(reply: Reply) -> Result<Bytes, String> {
    match decoded(&reply) {
        Reply::Bulk(b) => Ok(b),
        Reply::Error(e) => Err(e),
        Reply::Encoded(raw) => Err(format!(
            "unexpected reply {}",
            String::from_utf8_lossy(&raw[..raw.len().min(64)])
        )),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_replies_unwrap() {
        let values = vec![
            KeyValue {
                payload: Some(Bytes::from("x")),
                expire_at_ms: 5,
                revision: 9,
                expired: false,
            },
            KeyValue::default(),
            KeyValue {
                revision: 3,
                expired: true,
                ..KeyValue::default()
            },
        ];
        let raw = encode_values(&values);
        assert_eq!(decode_values(raw.clone()), Some(values));
        for cut in 0..raw.len() {
            assert_eq!(decode_values(raw.slice(..cut)), None);
        }
        assert_eq!(
            bulk_of(Reply::Encoded(Bytes::from("$3\r\nabc\r\n"))),
            Ok(Bytes::from("abc"))
        );
        assert_eq!(
            bulk_of(Reply::Encoded(Bytes::from("-TRYAGAIN x\r\n"))),
            Err("TRYAGAIN x".to_string())
        );
        assert!(bulk_of(Reply::Encoded(Bytes::from("$9\r\nabc\r\n"))).is_err());
        assert!(bulk_of(Reply::Encoded(Bytes::from("+OK\r\n"))).is_err());
    }
}
