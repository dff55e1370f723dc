//! openraft's RPC messages in Basalt's own byte layout (the payload of a cluster-proto
//! `RaftRpc` and of its reply), so the wire never follows openraft's serde layout.
//!
//! ## Format
//! Every message starts with `version:u8 (1)`; a vote and an entry are length-prefixed in
//! their `types.rs` layouts; an optional log id is `present:u8 | term | leader | index`.
//! - append request: `vote | prev? | commit? | count:u32 | entry*`
//! - append response: `kind:u8` (0 success, 1 partial + `log id?`, 2 conflict,
//!   3 higher vote + `vote`)
//! - vote request: `vote | last? | leadership_transfer:u8`; vote response:
//!   `vote | granted:u8 | last?`
//! - transfer-leader request: `vote | to:u64 | last?`
//! - snapshot meta: `last? | membership log id? | membership`; snapshot response: `vote`

use bytes::{BufMut, Bytes, BytesMut};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, StoredMembershipOf};

use super::types::{self, CodecError, TypeConfig, Vote};

const WIRE_VERSION: u8 = 1;

fn start() -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(WIRE_VERSION);
    out
}

fn put_vote(out: &mut BytesMut, v: &Vote) {
    types::put_bytes(out, &types::encode_vote(v));
}

fn get_vote(raw: &mut Bytes) -> Result<Vote, CodecError> {
    types::decode_vote(types::get_bytes(raw)?)
}

pub fn encode_append(req: &AppendEntriesRequest<TypeConfig>) -> Bytes {
    let mut out = start();
    put_vote(&mut out, &req.vote);
    types::put_log_id(&mut out, req.prev_log_id.as_ref());
    types::put_log_id(&mut out, req.leader_commit.as_ref());
    out.put_u32(req.entries.len() as u32);
    for e in &req.entries {
        types::put_bytes(&mut out, &types::encode_entry(e));
    }
    out.freeze()
}

pub fn decode_append(mut raw: Bytes) -> Result<AppendEntriesRequest<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    let vote = get_vote(&mut raw)?;
    let prev_log_id = types::get_log_id(&mut raw)?;
    let leader_commit = types::get_log_id(&mut raw)?;
    let count = types::get_u32(&mut raw)?;
    let mut entries = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        entries.push(types::decode_entry(types::get_bytes(&mut raw)?)?);
    }
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        entries,
        leader_commit,
    })
}

pub fn encode_append_response(resp: &AppendEntriesResponse<TypeConfig>) -> Bytes {
    let mut out = start();
    match resp {
        AppendEntriesResponse::Success => out.put_u8(0),
        AppendEntriesResponse::PartialSuccess(id) => {
            out.put_u8(1);
            types::put_log_id(&mut out, id.as_ref());
        }
        AppendEntriesResponse::Conflict => out.put_u8(2),
        AppendEntriesResponse::HigherVote(v) => {
            out.put_u8(3);
            put_vote(&mut out, v);
        }
    }
    out.freeze()
}

pub fn decode_append_response(
    mut raw: Bytes,
) -> Result<AppendEntriesResponse<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    Ok(match types::get_u8(&mut raw)? {
        0 => AppendEntriesResponse::Success,
        1 => AppendEntriesResponse::PartialSuccess(types::get_log_id(&mut raw)?),
        2 => AppendEntriesResponse::Conflict,
        3 => AppendEntriesResponse::HigherVote(get_vote(&mut raw)?),
        k => return Err(CodecError::Kind(k)),
    })
}

pub fn encode_vote_request(req: &VoteRequest<TypeConfig>) -> Bytes {
    let mut out = start();
    put_vote(&mut out, &req.vote);
    types::put_log_id(&mut out, req.last_log_id.as_ref());
    out.put_u8(req.leadership_transfer as u8);
    out.freeze()
}

pub fn decode_vote_request(mut raw: Bytes) -> Result<VoteRequest<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    let vote = get_vote(&mut raw)?;
    let last_log_id = types::get_log_id(&mut raw)?;
    let leadership_transfer = types::get_u8(&mut raw)? != 0;
    Ok(VoteRequest {
        vote,
        last_log_id,
        leadership_transfer,
    })
}

pub fn encode_vote_response(resp: &VoteResponse<TypeConfig>) -> Bytes {
    let mut out = start();
    put_vote(&mut out, &resp.vote);
    out.put_u8(resp.vote_granted as u8);
    types::put_log_id(&mut out, resp.last_log_id.as_ref());
    out.freeze()
}

pub fn decode_vote_response(mut raw: Bytes) -> Result<VoteResponse<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    let vote = get_vote(&mut raw)?;
    let vote_granted = types::get_u8(&mut raw)? != 0;
    let last_log_id = types::get_log_id(&mut raw)?;
    Ok(VoteResponse {
        vote,
        vote_granted,
        last_log_id,
    })
}

pub fn encode_transfer(req: &TransferLeaderRequest<TypeConfig>) -> Bytes {
    let mut out = start();
    put_vote(&mut out, req.from_leader());
    out.put_u64(*req.to_node_id());
    types::put_log_id(&mut out, req.last_log_id());
    out.freeze()
}

pub fn decode_transfer(mut raw: Bytes) -> Result<TransferLeaderRequest<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    let vote = get_vote(&mut raw)?;
    let to = types::get_u64(&mut raw)?;
    let last = types::get_log_id(&mut raw)?;
    Ok(TransferLeaderRequest::new(vote, to, last))
}

pub fn encode_snapshot_meta(meta: &SnapshotMetaOf<TypeConfig>) -> Bytes {
    let mut out = start();
    types::put_log_id(&mut out, meta.last_log_id.as_ref());
    types::put_log_id(&mut out, meta.last_membership.log_id().as_ref());
    types::encode_membership(&mut out, meta.last_membership.membership());
    out.freeze()
}

pub fn decode_snapshot_meta(mut raw: Bytes) -> Result<SnapshotMetaOf<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    let last_log_id = types::get_log_id(&mut raw)?;
    let membership_log = types::get_log_id(&mut raw)?;
    let membership = types::decode_membership(&mut raw)?;
    Ok(SnapshotMetaOf::<TypeConfig> {
        last_log_id,
        last_membership: StoredMembershipOf::<TypeConfig>::new(membership_log, membership),
    })
}

pub fn encode_snapshot_response(resp: &SnapshotResponse<TypeConfig>) -> Bytes {
    let mut out = start();
    put_vote(&mut out, &resp.vote);
    out.freeze()
}

pub fn decode_snapshot_response(
    mut raw: Bytes,
) -> Result<SnapshotResponse<TypeConfig>, CodecError> {
    types::check_version_of(&mut raw, WIRE_VERSION)?;
    Ok(SnapshotResponse {
        vote: get_vote(&mut raw)?,
    })
}

/// Snapshot records in a chunk: `(key_len:u32 | key | value_len:u32 | value)*`.
pub fn encode_records(records: &[(Bytes, Bytes)]) -> Bytes {
    let size: usize = records.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = BytesMut::with_capacity(size);
    for (k, v) in records {
        types::put_bytes(&mut out, k);
        types::put_bytes(&mut out, v);
    }
    out.freeze()
}

pub fn decode_records(mut raw: Bytes) -> Result<Vec<(Bytes, Bytes)>, CodecError> {
    let mut records = Vec::new();
    while !raw.is_empty() {
        let k = types::get_bytes(&mut raw)?;
        let v = types::get_bytes(&mut raw)?;
        records.push((k, v));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;

    #[test]
    fn rpc_messages_round_trip_and_reject_cuts() {
        let entries = vec![
            openraft::Entry {
                log_id: types::log_id(2, 9, 5),
                payload: EntryPayload::Blank,
            },
            openraft::Entry {
                log_id: types::log_id(2, 9, 6),
                payload: EntryPayload::Normal(super::super::Entry {
                    db: 1,
                    now_ms: 42,
                    op: super::super::EntryOp::Command(vec![Bytes::from("SET")]),
                    origin: None,
                }),
            },
        ];
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 9),
            prev_log_id: Some(types::log_id(1, 9, 4)),
            entries,
            leader_commit: Some(types::log_id(2, 9, 5)),
        };
        let raw = encode_append(&req);
        let back = decode_append(raw.clone()).unwrap();
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.entries, req.entries);
        assert_eq!(back.leader_commit, req.leader_commit);
        for cut in 0..raw.len() {
            assert!(decode_append(raw.slice(..cut)).is_err());
        }
        for resp in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(Some(types::log_id(2, 9, 5))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(Vote::new(3, 4)),
        ] {
            assert_eq!(
                decode_append_response(encode_append_response(&resp)).unwrap(),
                resp
            );
        }
        let vote = VoteRequest::<TypeConfig> {
            vote: Vote::new(5, 1),
            last_log_id: None,
            leadership_transfer: true,
        };
        assert_eq!(
            decode_vote_request(encode_vote_request(&vote)).unwrap(),
            vote
        );
        let granted = VoteResponse::<TypeConfig> {
            vote: Vote::new(5, 1),
            vote_granted: true,
            last_log_id: Some(types::log_id(4, 2, 10)),
        };
        assert_eq!(
            decode_vote_response(encode_vote_response(&granted)).unwrap(),
            granted
        );
        let records = vec![
            (Bytes::from("k1"), Bytes::from("v1")),
            (Bytes::from("k2"), Bytes::new()),
        ];
        assert_eq!(decode_records(encode_records(&records)).unwrap(), records);
    }
}
