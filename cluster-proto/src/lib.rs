//! Basalt's node-to-node protocol: framing and messages.
//!
//! ## Format
//! A frame is `len:u32 | crc32c:u32 | payload`, big-endian, where `len` counts the payload
//! bytes and the CRC covers the payload. A reader never trusts `len` beyond
//! [`FRAME_PAYLOAD_BYTES_MAX`]. [`PROTOCOL_VERSION`] is exchanged on connect so nodes of
//! different versions can talk during a rolling upgrade.
//!
//! This crate knows nothing of Basalt's layers above it.

mod frame;
pub mod messages;

pub use frame::{decode_frame, encode_frame, FrameError, FRAME_PAYLOAD_BYTES_MAX};
pub use messages::{request, response, Hello, RaftKind, Request, Response};
pub use prost::Message;

/// Version of the node-to-node protocol spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
