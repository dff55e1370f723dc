//! redis-protocol as a test oracle: requests it encodes decode to the same arguments with
//! our decoder (split anywhere), and replies we encode decode completely with its decoders.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp2::types::{OwnedFrame as Resp2Frame, Resp2Frame as _};

use super::decode::{DecodeLimits, RequestDecoder};
use super::reply::Reply;

fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
    let frame = Resp2Frame::Array(
        args.iter()
            .map(|a| Resp2Frame::BulkString(a.clone()))
            .collect(),
    );
    let mut buf = vec![0u8; frame.encode_len(false)];
    let n = redis_protocol::resp2::encode::encode(&mut buf, &frame, false).unwrap();
    buf.truncate(n);
    buf
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Reply::Bulk(Bytes::from(b))),
        Just(Reply::Null),
        Just(Reply::NullArray),
        Just(Reply::OK),
        "[a-z ]{0,12}".prop_map(|s| Reply::Error(format!("ERR {s}"))),
        any::<bool>().prop_map(Reply::Boolean),
        (-1e6f64..1e6).prop_map(Reply::Double),
        "[a-z]{0,10}".prop_map(|s| Reply::Verbatim("txt", Bytes::from(s))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Array),
            // redis-protocol hashes set members, so it only takes scalar ones.
            proptest::collection::vec(any::<i64>().prop_map(Reply::Integer), 0..4)
                .prop_map(Reply::Set),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Push),
            proptest::collection::vec(("[a-z]{1,5}", inner), 0..3).prop_map(|pairs| Reply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Reply::bulk(k), v))
                    .collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn requests_encoded_by_redis_protocol_decode_identically(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let wire = encode_request(&args);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = RequestDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([wire.len()]) {
            buf.extend_from_slice(&wire[last..p]);
            last = p;
            while let Some(req) = decoder.decode(&mut buf, &DecodeLimits::default()).unwrap() {
                got.push(req);
            }
        }
        prop_assert_eq!(got.len(), 1);
        let decoded: Vec<Vec<u8>> = got[0].iter().map(|b| b.to_vec()).collect();
        prop_assert_eq!(decoded, args);
    }

    #[test]
    fn replies_decode_completely_with_redis_protocol(reply in reply_strategy()) {
        let mut resp3 = BytesMut::new();
        reply.encode(true, &mut resp3);
        let (_, used) = redis_protocol::resp3::decode::complete::decode(&resp3).unwrap().unwrap();
        prop_assert_eq!(used, resp3.len());
        let mut resp2 = BytesMut::new();
        reply.encode(false, &mut resp2);
        let (_, used) = redis_protocol::resp2::decode::decode(&resp2).unwrap().unwrap();
        prop_assert_eq!(used, resp2.len());
    }
}
