//! Basalt's node-to-node protocol: framing and messages.
//!
//! ## Format
//! A frame is `len:u32 | crc32c:u32 | payload`, big-endian, where `len` counts the payload
//! bytes and the CRC covers the payload. A reader never trusts `len` beyond
//! [`FRAME_PAYLOAD_BYTES_MAX`] (nor, during the handshake, beyond the small limit the
//! caller gives [`decode_frame_within`]). [`PROTOCOL_VERSION`] is exchanged on connect:
//! each side refuses a peer older than [`PROTOCOL_VERSION_MIN`], so nodes of neighbouring
//! versions can talk during a rolling upgrade.
//!
//! This crate knows nothing of Basalt's layers above it.

mod frame;
pub mod messages;

pub use frame::{
    decode_frame, decode_frame_within, encode_frame, FrameError, FRAME_PAYLOAD_BYTES_MAX,
};
pub use messages::{request, response, Admitted, Hello, Proof, RaftKind, Request, Response};
pub use prost::{DecodeError, Message};

/// Version of the node-to-node protocol spoken by this build.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest version this build talks to (2 brought the authenticated handshake).
pub const PROTOCOL_VERSION_MIN: u32 = 2;
