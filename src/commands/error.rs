//! The user-visible command error: one variant per Redis error, texts as redis-server 7.
//!
//! A command error becomes a `-` reply and the connection stays open. Errors from the
//! keyspace or storage are not the user's: they are logged and reported as `-ERR`.

use crate::keyspace::KeyspaceError;
use crate::protocol::Reply;

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
pub const NOAUTH: &str = "NOAUTH Authentication required.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// A fixed Redis error text (one of the constants above).
    #[error("{0}")]
    Static(&'static str),
    /// An error text built for this call.
    #[error("{0}")]
    Message(String),
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    /// Keyspace or storage failure; the text is what the client sees.
    #[error("ERR internal storage error: {0}")]
    Internal(String),
}

impl CmdError {
    pub fn msg(text: impl Into<String>) -> CmdError {
        CmdError::Message(text.into())
    }

    pub fn into_reply(self) -> Reply {
        Reply::Error(self.to_string())
    }
}

pub const fn syntax() -> CmdError {
    CmdError::Static(SYNTAX)
}

pub const fn wrongtype() -> CmdError {
    CmdError::Static(WRONGTYPE)
}

impl From<KeyspaceError> for CmdError {
    fn from(e: KeyspaceError) -> CmdError {
        tracing::error!(error = %e, "keyspace failure");
        CmdError::Internal(e.to_string())
    }
}

/// The error's prefix for INFO errorstats (`ERR`, `WRONGTYPE`…).
pub fn error_prefix(text: &str) -> &str {
    text.split([' ', '\r', '\n']).next().unwrap_or("ERR")
}
