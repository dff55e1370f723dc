//! `len | crc | payload` framing with incremental decoding.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest payload a frame may carry (snapshots are streamed in chunks below this).
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;
const HEADER_BYTES: usize = 8;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("frame checksum mismatch: expected {expected:#010x}, computed {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
}

/// Appends one frame carrying `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
    if payload.len() > FRAME_PAYLOAD_BYTES_MAX {
        return Err(FrameError::TooLarge(payload.len()));
    }
    out.reserve(HEADER_BYTES + payload.len());
    out.put_u32(payload.len() as u32);
    out.put_u32(crc32c::crc32c(payload));
    out.put_slice(payload);
    Ok(())
}

/// Takes one complete frame's payload off the front of `buf`; `Ok(None)` until it has
/// fully arrived.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    decode_frame_within(buf, FRAME_PAYLOAD_BYTES_MAX)
}

/// `decode_frame` for frames of at most `max` payload bytes: a longer one is refused from
/// its header alone, before any of it is awaited or buffered.
pub fn decode_frame_within(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max.min(FRAME_PAYLOAD_BYTES_MAX) {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < HEADER_BYTES + len {
        buf.reserve(HEADER_BYTES + len - buf.len());
        return Ok(None);
    }
    let expected = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    buf.advance(HEADER_BYTES);
    let payload = buf.split_to(len).freeze();
    let actual = crc32c::crc32c(&payload);
    if actual != expected {
        return Err(FrameError::Checksum { expected, actual });
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_split_anywhere() {
        let mut wire = BytesMut::new();
        encode_frame(b"hello", &mut wire).unwrap();
        encode_frame(b"", &mut wire).unwrap();
        encode_frame(&[7u8; 1000], &mut wire).unwrap();
        let wire = wire.freeze();
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(p) = decode_frame(&mut buf).unwrap() {
                got.push(p);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(p) = decode_frame(&mut buf).unwrap() {
                got.push(p);
            }
            assert_eq!(got.len(), 3, "cut {cut}");
            assert_eq!(&got[0][..], b"hello");
            assert!(got[1].is_empty());
            assert_eq!(got[2].len(), 1000);
        }
    }

    #[test]
    fn corruption_and_oversize_are_errors() {
        let mut wire = BytesMut::new();
        encode_frame(b"payload", &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 0x40;
        assert!(matches!(
            decode_frame(&mut wire),
            Err(FrameError::Checksum { .. })
        ));
        let mut huge = BytesMut::new();
        huge.put_u32(u32::MAX);
        huge.put_u32(0);
        assert_eq!(
            decode_frame(&mut huge),
            Err(FrameError::TooLarge(u32::MAX as usize))
        );
        let mut header_only = BytesMut::new();
        header_only.put_u32(5000);
        header_only.put_u32(0);
        assert_eq!(
            decode_frame_within(&mut header_only, 4096),
            Err(FrameError::TooLarge(5000))
        );
    }
}
