//! The wire protocol: versioned JSON messages, one [`Envelope`] per WebSocket text frame.
//!
//! Every envelope is a JSON object with the protocol version `"v": 1`, a message id and a
//! per-sender sequence number (for deduplication and ordering), an optional sender
//! (stamped by the server), and the message itself, flattened beside them with a `"type"`
//! tag:
//!
//! ```json
//! {"v":1,"id":"7f3a-1","seq":1,"type":"accept","call_id":"c-42"}
//! ```
//!
//! [`parse`] checks the size limit ([`MAX_ENVELOPE_BYTES`]), the version, the message type
//! and every field limit, and returns a typed [`ProtocolError`] for each kind of bad input.
//! Unknown fields are ignored (so newer peers can add optional fields); unknown message
//! types are an error. `docs/PROTOCOL.md` describes every message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;

/// The protocol version this crate speaks and accepts (`"v"` of every envelope).
pub const PROTOCOL_VERSION: u64 = 1;
/// The largest envelope [`parse`] accepts, in bytes of JSON text: 64 KiB.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// The longest id (call, room, group, user, device, message), in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 64;
/// The most participants of one call, the caller included.
pub const MAX_PARTICIPANTS: usize = 16;
/// The most users one invitation names: everyone but the inviter.
pub const MAX_CALLEES: usize = MAX_PARTICIPANTS - 1;
/// The longest application `user_data` of an invite, in bytes.
pub const MAX_USER_DATA_BYTES: usize = 4096;
/// The longest login token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1024;
/// The longest free-text field (`detail`, `reason` of a server end), in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// The most codecs one media transport description lists.
pub const MAX_CODECS: usize = 16;
/// The longest codec name or host address, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// The longest (reserved) key field of a media transport description, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The shortest ring timeout an invite may ask for, in milliseconds.
pub const MIN_RING_TIMEOUT_MS: u32 = 1_000;
/// The longest ring timeout an invite may ask for, in milliseconds.
pub const MAX_RING_TIMEOUT_MS: u32 = 120_000;
/// The largest sequence number: 2^53 - 1, so JavaScript peers read it exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        ///
        /// 1 to [`MAX_ID_BYTES`] bytes of UTF-8 without control characters; [`parse`]
        /// checks it, and so does the constructor.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an id.
            pub fn new(id: impl Into<String>) -> Result<Self, ProtocolError> {
                let id = Self(id.into());
                id.validate()?;
                Ok(id)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            fn validate(&self) -> Result<(), ProtocolError> {
                check_id($field, &self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ProtocolError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

id_type!(
    /// Identifies one call, unique for the server's lifetime (chosen by the caller).
    CallId,
    "call_id"
);
id_type!(
    /// The media room a call's media sessions meet in.
    RoomId,
    "room_id"
);
id_type!(
    /// An application group a call belongs to (a chat group, a team).
    GroupId,
    "group_id"
);
id_type!(
    /// A user: a person, who may be logged in on several devices.
    UserId,
    "user"
);
id_type!(
    /// One device (one login) of a user.
    DeviceId,
    "device"
);
id_type!(
    /// One envelope, unique per sender; receivers drop a second envelope with the same
    /// sender and id as a duplicate.
    MessageId,
    "id"
);

fn check_id(field: &'static str, id: &str) -> Result<(), ProtocolError> {
    if id.is_empty() {
        return Err(ProtocolError::EmptyId { field });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ProtocolError::TooLong {
            field,
            len: id.len(),
            max: MAX_ID_BYTES,
        });
    }
    if id.chars().any(char::is_control) {
        return Err(ProtocolError::ControlCharacter { field });
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ProtocolError> {
    if text.len() > max {
        return Err(ProtocolError::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

fn check_count(
    field: &'static str,
    count: usize,
    min: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    if count < min || count > max {
        return Err(ProtocolError::BadCount {
            field,
            count,
            min,
            max,
        });
    }
    Ok(())
}

/// One device of one user: who sent an envelope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// The user.
    pub user: UserId,
    /// The user's device.
    pub device: DeviceId,
}

impl Endpoint {
    /// An endpoint from its user and device.
    pub fn new(user: UserId, device: DeviceId) -> Self {
        Self { user, device }
    }
}

/// The kind of media of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    /// Audio only.
    Audio,
    /// Audio and video.
    Video,
}

/// Whether a device's microphone and camera are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MediaState {
    /// The microphone sends audio.
    pub mic: bool,
    /// The camera sends video.
    pub camera: bool,
}

/// Why a call ended, for one device. On the wire: the snake_case name
/// (`"hang_up"`, `"answered_elsewhere"`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A participant hung up (this device or the last other one).
    HangUp,
    /// The callee rejected the call.
    Rejected,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The callee was already in a call.
    Busy,
    /// The caller cancelled before anyone answered.
    Cancelled,
    /// Another device of the same user accepted.
    AnsweredElsewhere,
    /// Another device of the same user rejected.
    RejectedElsewhere,
    /// The server ended the call.
    EndedByServer,
    /// Nothing was heard from the other participants within the keepalive deadline.
    ConnectionLost,
}

/// An error code of an [`Message::Error`] reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, a field of the wrong type, or a required field missing.
    Malformed,
    /// Longer than [`MAX_ENVELOPE_BYTES`].
    Oversized,
    /// A `"v"` other than [`PROTOCOL_VERSION`], or none.
    UnsupportedVersion,
    /// A `"type"` this side does not know.
    UnknownType,
    /// A field outside its limits (id length, counts, ranges).
    InvalidField,
    /// A message other than `login` before a successful login, or a bad token.
    Unauthenticated,
    /// The login token has expired.
    ExpiredToken,
    /// The call id names no call the server knows.
    UnknownCall,
    /// The sender is not a participant of the call it names.
    NotInCall,
    /// The sender's `seq` did not increase.
    OutOfOrder,
    /// The sender sent too many messages; some were dropped.
    RateLimited,
    /// The call already has [`MAX_PARTICIPANTS`] participants.
    CallFull,
    /// A message only the server sends (`error`, `end_by_server`).
    Forbidden,
    /// The server failed; the message may be retried.
    Internal,
}

/// A codec a device can receive, with the RTP payload type it uses for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecParams {
    /// Codec name as in SDP (`"opus"`, `"H264"`, `"AV1"`, `"red"`, `"rtx"`, `"flexfec-03"`).
    pub name: String,
    /// RTP payload type, 0-127.
    pub payload_type: u8,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (absent for video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
}

/// The SSRCs a device sends with. Absent ones are not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ssrcs {
    /// The audio stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<u32>,
    /// The video stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<u32>,
    /// Video retransmissions (RFC 4588).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtx: Option<u32>,
    /// Video forward error correction (FlexFEC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fec: Option<u32>,
}

/// Where and how a device receives media: its UDP address, codecs and SSRCs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaTransport {
    /// IP address (v4 or v6 literal) or host name media is sent to.
    pub address: String,
    /// UDP port, 1-65535.
    pub port: u16,
    /// Codecs this device receives, in order of preference.
    pub codecs: Vec<CodecParams>,
    /// SSRCs this device sends with.
    #[serde(default)]
    pub ssrcs: Ssrcs,
    /// Reserved for media encryption keys: absent until encryption lands. Receivers must
    /// ignore it; senders must not set it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One participant as another device knows it: in a [`Message::CallState`] roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// The device the user is in the call with, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
}

/// Every message of the protocol; the `"type"` tag of an envelope selects one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Client → server, first message on a connection.
    Login {
        /// The user logging in.
        user: UserId,
        /// This device.
        device: DeviceId,
        /// The server-minted token for `user`.
        token: String,
    },
    /// Server → client: the login succeeded.
    LoginResult {
        /// The user now logged in.
        user: UserId,
        /// The device.
        device: DeviceId,
        /// How often the client should send `ping` when otherwise idle, in milliseconds.
        keepalive_ms: u32,
    },
    /// Server → client: another login of the same device took this connection's place.
    Kicked {
        /// Why, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Connection keepalive; the server answers with `pong`.
    Ping,
    /// The answer to `ping`.
    Pong,
    /// Server → client: a user's devices came online or went offline.
    Presence {
        /// The user.
        user: UserId,
        /// At least one device is logged in.
        online: bool,
        /// The user is in a call.
        #[serde(default)]
        in_call: bool,
    },
    /// Server → client: a message was refused.
    Error {
        /// What was wrong.
        code: ErrorCode,
        /// The id of the refused envelope, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<MessageId>,
        /// The call the refused message named, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        /// Explanation for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Caller → callees: a new call.
    Invite {
        /// The new call.
        call_id: CallId,
        /// The media room.
        room_id: RoomId,
        /// Audio or video.
        media: MediaType,
        /// The users called, 1 to [`MAX_CALLEES`], the caller not among them.
        callees: Vec<UserId>,
        /// The application group, for group calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<GroupId>,
        /// How long callees ring, in milliseconds.
        ring_timeout_ms: u32,
        /// Opaque application data, up to [`MAX_USER_DATA_BYTES`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_data: Option<String>,
    },
    /// Callee device → call: this device is ringing (repeated while it rings).
    Ringing {
        /// The call.
        call_id: CallId,
    },
    /// Callee device → call: this device accepted and is in the call.
    Accept {
        /// The call.
        call_id: CallId,
    },
    /// Callee device → call: the user rejected.
    Reject {
        /// The call.
        call_id: CallId,
    },
    /// Callee device → call: the device is already in another call.
    Busy {
        /// The call refused.
        call_id: CallId,
    },
    /// Caller → call: cancelled before anyone answered.
    Cancel {
        /// The call.
        call_id: CallId,
    },
    /// The sender's ring timeout passed: a caller's means nobody answered, a callee's that
    /// this device stopped ringing.
    NoAnswer {
        /// The call.
        call_id: CallId,
    },
    /// The sender ended the call for everyone who receives it.
    HangUp {
        /// The call.
        call_id: CallId,
        /// Why the sender's call ended, when not by its own hang-up (a repeat of an end the
        /// receiver may have missed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<EndReason>,
    },
    /// A participant invites more users into a call.
    InviteUsers {
        /// The call.
        call_id: CallId,
        /// The media room.
        room_id: RoomId,
        /// The call's media type now.
        media: MediaType,
        /// The users invited, 1 to [`MAX_CALLEES`].
        users: Vec<UserId>,
        /// The users in the call now, as the inviter knows them (inviter included).
        members: Vec<UserId>,
        /// The application group, for group calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<GroupId>,
        /// How long the invited users ring, in milliseconds.
        ring_timeout_ms: u32,
    },
    /// A device asks to join an ongoing call by its id.
    Join {
        /// The call.
        call_id: CallId,
    },
    /// The sender left; the call goes on for the others while two or more are in it.
    Leave {
        /// The call.
        call_id: CallId,
    },
    /// A participant's view of the call, sent every keepalive interval while in it and at
    /// once in answer to `join`: keeps the call alive and repairs lost messages.
    CallState {
        /// The call.
        call_id: CallId,
        /// The media room.
        room_id: RoomId,
        /// Audio or video.
        media: MediaType,
        /// Who the sender knows to be in the call, itself included (at most
        /// [`MAX_PARTICIPANTS`]).
        members: Vec<Member>,
    },
    /// Switch the call's media type: to audio at once; to video, a request the others
    /// answer with `switch_media_reply`.
    SwitchMedia {
        /// The call.
        call_id: CallId,
        /// The media type wanted.
        media: MediaType,
    },
    /// The answer to a request to switch to video.
    SwitchMediaReply {
        /// The call.
        call_id: CallId,
        /// The media type that was asked for.
        media: MediaType,
        /// Whether the sender accepts the switch.
        accepted: bool,
    },
    /// The sender's microphone and camera state.
    MediaState {
        /// The call.
        call_id: CallId,
        /// Microphone on.
        mic: bool,
        /// Camera on.
        camera: bool,
    },
    /// Where and how the sender receives media.
    MediaParams {
        /// The call.
        call_id: CallId,
        /// The sender's media transport.
        transport: MediaTransport,
    },
    /// Server → participants: the server ended the call.
    EndByServer {
        /// The call.
        call_id: CallId,
        /// Why, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// The `"type"` tags this version knows, in the order of [`Message`]'s variants.
pub const MESSAGE_TYPES: [&str; 24] = [
    "login",
    "login_result",
    "kicked",
    "ping",
    "pong",
    "presence",
    "error",
    "invite",
    "ringing",
    "accept",
    "reject",
    "busy",
    "cancel",
    "no_answer",
    "hang_up",
    "invite_users",
    "join",
    "leave",
    "call_state",
    "switch_media",
    "switch_media_reply",
    "media_state",
    "media_params",
    "end_by_server",
];

impl Message {
    /// The message's `"type"` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Login { .. } => "login",
            Message::LoginResult { .. } => "login_result",
            Message::Kicked { .. } => "kicked",
            Message::Ping => "ping",
            Message::Pong => "pong",
            Message::Presence { .. } => "presence",
            Message::Error { .. } => "error",
            Message::Invite { .. } => "invite",
            Message::Ringing { .. } => "ringing",
            Message::Accept { .. } => "accept",
            Message::Reject { .. } => "reject",
            Message::Busy { .. } => "busy",
            Message::Cancel { .. } => "cancel",
            Message::NoAnswer { .. } => "no_answer",
            Message::HangUp { .. } => "hang_up",
            Message::InviteUsers { .. } => "invite_users",
            Message::Join { .. } => "join",
            Message::Leave { .. } => "leave",
            Message::CallState { .. } => "call_state",
            Message::SwitchMedia { .. } => "switch_media",
            Message::SwitchMediaReply { .. } => "switch_media_reply",
            Message::MediaState { .. } => "media_state",
            Message::MediaParams { .. } => "media_params",
            Message::EndByServer { .. } => "end_by_server",
        }
    }

    /// The call a call-scoped message names (`None` for login, presence, ping…; for
    /// `error`, the call it names if any).
    pub fn call_id(&self) -> Option<&CallId> {
        match self {
            Message::Login { .. }
            | Message::LoginResult { .. }
            | Message::Kicked { .. }
            | Message::Ping
            | Message::Pong
            | Message::Presence { .. } => None,
            Message::Error { call_id, .. } => call_id.as_ref(),
            Message::Invite { call_id, .. }
            | Message::Ringing { call_id }
            | Message::Accept { call_id }
            | Message::Reject { call_id }
            | Message::Busy { call_id }
            | Message::Cancel { call_id }
            | Message::NoAnswer { call_id }
            | Message::HangUp { call_id, .. }
            | Message::InviteUsers { call_id, .. }
            | Message::Join { call_id }
            | Message::Leave { call_id }
            | Message::CallState { call_id, .. }
            | Message::SwitchMedia { call_id, .. }
            | Message::SwitchMediaReply { call_id, .. }
            | Message::MediaState { call_id, .. }
            | Message::MediaParams { call_id, .. }
            | Message::EndByServer { call_id, .. } => Some(call_id),
        }
    }

    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if let Some(call_id) = self.call_id() {
            call_id.validate()?;
        }
        match self {
            Message::Login {
                user,
                device,
                token,
            } => {
                user.validate()?;
                device.validate()?;
                check_text("token", token, MAX_TOKEN_BYTES)
            }
            Message::LoginResult { user, device, .. } => {
                user.validate()?;
                device.validate()
            }
            Message::Kicked { detail } => {
                check_text("detail", detail.as_deref().unwrap_or(""), MAX_TEXT_BYTES)
            }
            Message::Presence { user, .. } => user.validate(),
            Message::Error {
                in_reply_to,
                detail,
                ..
            } => {
                if let Some(id) = in_reply_to {
                    id.validate()?;
                }
                check_text("detail", detail.as_deref().unwrap_or(""), MAX_TEXT_BYTES)
            }
            Message::Invite {
                room_id,
                callees,
                group_id,
                ring_timeout_ms,
                user_data,
                ..
            } => {
                room_id.validate()?;
                check_count("callees", callees.len(), 1, MAX_CALLEES)?;
                callees.iter().try_for_each(UserId::validate)?;
                if let Some(group) = group_id {
                    group.validate()?;
                }
                check_ring_timeout(*ring_timeout_ms)?;
                check_text(
                    "user_data",
                    user_data.as_deref().unwrap_or(""),
                    MAX_USER_DATA_BYTES,
                )
            }
            Message::InviteUsers {
                room_id,
                users,
                members,
                group_id,
                ring_timeout_ms,
                ..
            } => {
                room_id.validate()?;
                check_count("users", users.len(), 1, MAX_CALLEES)?;
                users.iter().try_for_each(UserId::validate)?;
                check_count("members", members.len(), 0, MAX_PARTICIPANTS)?;
                members.iter().try_for_each(UserId::validate)?;
                if let Some(group) = group_id {
                    group.validate()?;
                }
                check_ring_timeout(*ring_timeout_ms)
            }
            Message::CallState {
                room_id, members, ..
            } => {
                room_id.validate()?;
                check_count("members", members.len(), 0, MAX_PARTICIPANTS)?;
                for member in members {
                    member.user.validate()?;
                    if let Some(device) = &member.device {
                        device.validate()?;
                    }
                }
                Ok(())
            }
            Message::MediaParams { transport, .. } => transport.validate(),
            Message::EndByServer { reason, .. } => {
                check_text("reason", reason.as_deref().unwrap_or(""), MAX_TEXT_BYTES)
            }
            Message::Ping
            | Message::Pong
            | Message::Ringing { .. }
            | Message::Accept { .. }
            | Message::Reject { .. }
            | Message::Busy { .. }
            | Message::Cancel { .. }
            | Message::NoAnswer { .. }
            | Message::HangUp { .. }
            | Message::Join { .. }
            | Message::Leave { .. }
            | Message::SwitchMedia { .. }
            | Message::SwitchMediaReply { .. }
            | Message::MediaState { .. } => Ok(()),
        }
    }
}

fn check_ring_timeout(ms: u32) -> Result<(), ProtocolError> {
    if !(MIN_RING_TIMEOUT_MS..=MAX_RING_TIMEOUT_MS).contains(&ms) {
        return Err(ProtocolError::OutOfRange {
            field: "ring_timeout_ms",
            value: u64::from(ms),
            min: u64::from(MIN_RING_TIMEOUT_MS),
            max: u64::from(MAX_RING_TIMEOUT_MS),
        });
    }
    Ok(())
}

impl MediaTransport {
    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.address.is_empty() {
            return Err(ProtocolError::EmptyId { field: "address" });
        }
        check_text("address", &self.address, MAX_NAME_BYTES)?;
        if self.port == 0 {
            return Err(ProtocolError::OutOfRange {
                field: "port",
                value: 0,
                min: 1,
                max: 65_535,
            });
        }
        check_count("codecs", self.codecs.len(), 0, MAX_CODECS)?;
        for codec in &self.codecs {
            check_text("codecs.name", &codec.name, MAX_NAME_BYTES)?;
            if codec.payload_type > 127 {
                return Err(ProtocolError::OutOfRange {
                    field: "codecs.payload_type",
                    value: u64::from(codec.payload_type),
                    min: 0,
                    max: 127,
                });
            }
        }
        check_text("key", self.key.as_deref().unwrap_or(""), MAX_KEY_BYTES)
    }
}

/// One message with its id, sequence number and sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Unique per sender; a repeat is a duplicate.
    pub id: MessageId,
    /// The sender's sequence number, increasing by one per envelope it sends (0 to
    /// [`MAX_SEQ`]).
    pub seq: u64,
    /// The sending device. Clients may fill it in; the server overwrites it with the
    /// authenticated sender before forwarding.
    pub from: Option<Endpoint>,
    /// The message.
    pub message: Message,
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u64,
    id: &'a MessageId,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a Endpoint>,
    #[serde(flatten)]
    message: &'a Message,
}

#[derive(Deserialize)]
struct WireHeader {
    #[serde(default)]
    v: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireIn {
    id: MessageId,
    seq: u64,
    #[serde(default)]
    from: Option<Endpoint>,
    #[serde(flatten)]
    message: Message,
}

impl Envelope {
    /// An envelope without a sender.
    pub fn new(id: MessageId, seq: u64, message: Message) -> Self {
        Self {
            id,
            seq,
            from: None,
            message,
        }
    }

    /// The envelope as one line of JSON text (what goes in a WebSocket text frame).
    pub fn to_json(&self) -> String {
        let wire = WireOut {
            v: PROTOCOL_VERSION,
            id: &self.id,
            seq: self.seq,
            from: self.from.as_ref(),
            message: &self.message,
        };
        // Serializing these types cannot fail: every key is a string and every value is
        // plain data; fall back to an empty object rather than panic if serde disagrees.
        serde_json::to_string(&wire).unwrap_or_else(|_| String::from("{}"))
    }

    /// Checks ids, counts and ranges of every field.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.id.validate()?;
        if self.seq > MAX_SEQ {
            return Err(ProtocolError::OutOfRange {
                field: "seq",
                value: self.seq,
                min: 0,
                max: MAX_SEQ,
            });
        }
        if let Some(from) = &self.from {
            from.user.validate()?;
            from.device.validate()?;
        }
        self.message.validate()
    }
}

/// Parses one envelope from JSON text (one WebSocket text frame), checking its size,
/// version, type and every field limit.
pub fn parse(bytes: &[u8]) -> Result<Envelope, ProtocolError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(ProtocolError::Oversized {
            len: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    // First only the version and the type (every other field skipped unread), so a
    // missing or wrong version and an unknown type get their own errors instead of serde's
    // generic "unknown variant"; then the whole envelope.
    let header: WireHeader =
        serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
            reason: e.to_string(),
        })?;
    match header.v {
        None => return Err(ProtocolError::MissingVersion),
        Some(v) => match v.as_u64() {
            Some(PROTOCOL_VERSION) => {}
            _ => {
                return Err(ProtocolError::UnsupportedVersion {
                    version: v.to_string().chars().take(MAX_ID_BYTES).collect(),
                });
            }
        },
    }
    let kind = match header.kind {
        Some(serde_json::Value::String(kind)) => kind,
        Some(_) => {
            return Err(ProtocolError::Malformed {
                reason: String::from("\"type\" is not a string"),
            });
        }
        None => {
            return Err(ProtocolError::Malformed {
                reason: String::from("no \"type\""),
            });
        }
    };
    if !MESSAGE_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError::UnknownType {
            kind: kind.chars().take(MAX_ID_BYTES).collect(),
        });
    }
    let wire: WireIn = serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
        reason: e.to_string(),
    })?;
    let envelope = Envelope {
        id: wire.id,
        seq: wire.seq,
        from: wire.from,
        message: wire.message,
    };
    envelope.validate()?;
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallId {
        CallId::new("c-1").unwrap()
    }

    fn invite() -> Envelope {
        Envelope::new(
            MessageId::new("m-1").unwrap(),
            1,
            Message::Invite {
                call_id: call(),
                room_id: RoomId::new("room").unwrap(),
                media: MediaType::Video,
                callees: vec![UserId::new("bob").unwrap()],
                group_id: None,
                ring_timeout_ms: 30_000,
                user_data: Some(String::from("{\"x\":1}")),
            },
        )
    }

    #[test]
    fn round_trips_an_invite() {
        let envelope = invite();
        let json = envelope.to_json();
        assert!(json.starts_with("{\"v\":1,"), "{json}");
        assert!(json.contains("\"type\":\"invite\""), "{json}");
        assert_eq!(parse(json.as_bytes()).unwrap(), envelope);
    }

    #[test]
    fn type_names_match_serde_tags() {
        let messages = [
            Message::Ping,
            Message::Pong,
            Message::Accept { call_id: call() },
            Message::HangUp {
                call_id: call(),
                reason: Some(EndReason::NoAnswer),
            },
            Message::SwitchMediaReply {
                call_id: call(),
                media: MediaType::Video,
                accepted: true,
            },
            invite().message,
        ];
        for message in messages {
            let envelope = Envelope::new(MessageId::new("a").unwrap(), 0, message.clone());
            let value: serde_json::Value = serde_json::from_str(&envelope.to_json()).unwrap();
            assert_eq!(value["type"], message.type_name());
            assert!(MESSAGE_TYPES.contains(&message.type_name()));
        }
    }

    #[test]
    fn tolerates_unknown_fields() {
        let json = br#"{"v":1,"id":"x","seq":3,"type":"accept","call_id":"c-1","future":[1,2]}"#;
        let envelope = parse(json).unwrap();
        assert_eq!(envelope.message, Message::Accept { call_id: call() });
    }

    #[test]
    fn typed_errors_for_bad_input() {
        assert!(matches!(
            parse(b"nope"),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"[1]"),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            parse(br#"{"id":"x","seq":1,"type":"ping"}"#),
            Err(ProtocolError::MissingVersion)
        ));
        assert!(matches!(
            parse(br#"{"v":2,"id":"x","seq":1,"type":"ping"}"#),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            parse(br#"{"v":1,"id":"x","seq":1,"type":"teleport"}"#),
            Err(ProtocolError::UnknownType { kind }) if kind == "teleport"
        ));
        assert!(matches!(
            parse(br#"{"v":1,"id":"x","seq":1,"type":"accept"}"#),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            parse(br#"{"v":1,"id":"","seq":1,"type":"ping"}"#),
            Err(ProtocolError::EmptyId { field: "id" })
        ));
        let long = "x".repeat(65);
        let json = format!(r#"{{"v":1,"id":"a","seq":1,"type":"accept","call_id":"{long}"}}"#);
        assert!(matches!(
            parse(json.as_bytes()),
            Err(ProtocolError::TooLong {
                field: "call_id",
                len: 65,
                max: 64
            })
        ));
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(parse(&big), Err(ProtocolError::Oversized { .. })));
        assert!(matches!(
            parse(br#"{"v":1,"id":"x","seq":9007199254740992,"type":"ping"}"#),
            Err(ProtocolError::OutOfRange { field: "seq", .. })
        ));
    }

    #[test]
    fn limits_callees_and_ring_timeout() {
        let mut envelope = invite();
        if let Message::Invite { callees, .. } = &mut envelope.message {
            *callees = (0..16)
                .map(|i| UserId::new(format!("u{i}")).unwrap())
                .collect();
        }
        assert!(matches!(
            parse(envelope.to_json().as_bytes()),
            Err(ProtocolError::BadCount {
                field: "callees",
                count: 16,
                ..
            })
        ));
        let mut envelope = invite();
        if let Message::Invite {
            ring_timeout_ms, ..
        } = &mut envelope.message
        {
            *ring_timeout_ms = 500;
        }
        assert!(matches!(
            parse(envelope.to_json().as_bytes()),
            Err(ProtocolError::OutOfRange {
                field: "ring_timeout_ms",
                ..
            })
        ));
    }

    #[test]
    fn ids_reject_control_characters() {
        assert!(matches!(
            UserId::new("a\nb"),
            Err(ProtocolError::ControlCharacter { field: "user" })
        ));
        assert!(UserId::new("ünïcode").is_ok());
    }

    #[test]
    fn media_transport_round_trips_without_a_key() {
        let transport = MediaTransport {
            address: String::from("127.0.0.1"),
            port: 40_000,
            codecs: vec![CodecParams {
                name: String::from("opus"),
                payload_type: 111,
                clock_rate: 48_000,
                channels: Some(2),
            }],
            ssrcs: Ssrcs {
                audio: Some(1),
                ..Ssrcs::default()
            },
            key: None,
        };
        let envelope = Envelope::new(
            MessageId::new("p").unwrap(),
            5,
            Message::MediaParams {
                call_id: call(),
                transport,
            },
        );
        let json = envelope.to_json();
        assert!(!json.contains("key"), "{json}");
        assert_eq!(parse(json.as_bytes()).unwrap(), envelope);
    }
}
