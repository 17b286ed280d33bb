//! The errors of the signalling layer.

use thiserror::Error;

use crate::protocol::{CallId, ErrorCode};

/// Why an envelope was refused by [`parse`](crate::protocol::parse) or
/// [`Envelope::validate`](crate::protocol::Envelope::validate). Each maps to the
/// [`ErrorCode`] a server replies with ([`ProtocolError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Longer than the envelope size limit.
    #[error("envelope of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a JSON object, a field of the wrong type, or a required field missing.
    #[error("malformed envelope: {reason}")]
    Malformed {
        /// What the JSON reader said.
        reason: String,
    },
    /// No `"v"` field.
    #[error("envelope without a protocol version \"v\"")]
    MissingVersion,
    /// A `"v"` other than the one this crate speaks.
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version given, as JSON text.
        version: String,
    },
    /// A `"type"` this version does not know.
    #[error("unknown message type {kind:?}")]
    UnknownType {
        /// The type given (its first 64 characters).
        kind: String,
    },
    /// An empty id or address.
    #[error("empty {field}")]
    EmptyId {
        /// The field.
        field: &'static str,
    },
    /// An id or text field longer than its limit.
    #[error("{field} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An id with a control character.
    #[error("{field} holds a control character")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
    /// A list with too few or too many entries.
    #[error("{field} lists {count} entries, allowed {min} to {max}")]
    BadCount {
        /// The field.
        field: &'static str,
        /// Entries given.
        count: usize,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
    /// A number outside its range.
    #[error("{field} = {value} outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
}

impl ProtocolError {
    /// The error code a server answers this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::Oversized { .. } => ErrorCode::Oversized,
            ProtocolError::Malformed { .. } => ErrorCode::Malformed,
            ProtocolError::MissingVersion | ProtocolError::UnsupportedVersion { .. } => {
                ErrorCode::UnsupportedVersion
            }
            ProtocolError::UnknownType { .. } => ErrorCode::UnknownType,
            ProtocolError::EmptyId { .. }
            | ProtocolError::TooLong { .. }
            | ProtocolError::ControlCharacter { .. }
            | ProtocolError::BadCount { .. }
            | ProtocolError::OutOfRange { .. } => ErrorCode::InvalidField,
        }
    }
}

/// Why a user action on a [`CallMachine`](crate::call::CallMachine) was refused. The
/// machine's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CallError {
    /// The device is already in (or placing, or ringing for) a call.
    #[error("already in call {call_id}")]
    AlreadyInCall {
        /// The current call.
        call_id: CallId,
    },
    /// The action needs a call and there is none.
    #[error("no current call")]
    NoCall,
    /// The action does not fit the current call's state (accepting a call one placed,
    /// cancelling a call in progress…).
    #[error("cannot {action} while {state}")]
    WrongState {
        /// What was asked.
        action: &'static str,
        /// The call's state.
        state: &'static str,
    },
    /// A call or invitation without anyone to call.
    #[error("no users to call")]
    NoCallees,
    /// The user called themselves.
    #[error("a user cannot call themselves")]
    CalleeIsSelf,
    /// More participants than a call holds.
    #[error("{count} participants exceed the limit of {max}")]
    TooManyParticipants {
        /// Participants there would be.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value the machine cannot work with.
    #[error("invalid call machine configuration: {field} ({reason})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// No media switch request to answer.
    #[error("no media switch request to answer")]
    NoSwitchRequest,
    /// A message field outside its limits (user data, ring timeout, media params).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Why a transport refused to send or failed to receive.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection is closed (the other end or the hub is gone).
    #[error("transport closed")]
    Closed,
    /// The receiving side's queue is full; the envelope was dropped.
    #[error("queue full ({capacity} envelopes), envelope dropped")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// What arrived did not parse.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The router refused the envelope (the server would reply with this code).
    #[error("refused: {code:?}")]
    Refused {
        /// The code a server would reply with.
        code: ErrorCode,
    },
}
