//! RESP2/RESP3: the incremental request decoder and reply encoding.
//!
//! This layer knows bytes and frames only; it knows nothing of commands or storage.

pub mod decode;
#[cfg(test)]
mod oracle;
pub mod reply;

pub use decode::{DecodeLimits, ProtocolError, Request, RequestDecoder};
pub use reply::Reply;
