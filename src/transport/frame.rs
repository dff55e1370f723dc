//! Framing on the cluster port: each message is one cluster-proto frame (length, checksum,
//! payload), read into a reusable buffer.

use bytes::{Bytes, BytesMut};
use cluster_proto::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes one message as a frame.
pub async fn write_message(
    stream: &mut (impl AsyncWriteExt + Unpin),
    msg: &impl Message,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    cluster_proto::encode_frame(&msg.encode_to_vec(), &mut out)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    stream.write_all(&out).await?;
    // A TLS stream holds records until flushed (a no-op on plain TCP).
    stream.flush().await
}

/// Reads one frame's payload.
pub async fn read_frame(
    stream: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
) -> std::io::Result<Bytes> {
    read_frame_within(stream, buf, cluster_proto::FRAME_PAYLOAD_BYTES_MAX).await
}

/// Reads one frame's payload of at most `max` bytes (a longer one is an error).
pub async fn read_frame_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<Bytes> {
    loop {
        if let Some(payload) = cluster_proto::decode_frame_within(buf, max)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        {
            return Ok(payload);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}
