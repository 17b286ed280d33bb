//! What a [`CallEngine`](super::CallEngine) tells the application.

use std::time::Duration;

use tincan_pipeline::NetworkQuality;
use tincan_signal::protocol::{CallId, EndReason, Endpoint, ErrorCode, MediaType, UserId};

/// Media figures of one call on this device, reported when its media stops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MediaSummary {
    /// RTP packets sent (to each remote: one count per packet made, however many
    /// participants it went to).
    pub packets_sent: u64,
    /// RTP packets received from all remotes.
    pub packets_received: u64,
    /// Datagrams the session refused (unreadable, unknown payload type).
    pub bad_datagrams: u64,
    /// Datagrams from addresses that are no participant of the call, dropped.
    pub foreign_datagrams: u64,
    /// Datagrams that could not be sent (socket errors).
    pub send_errors: u64,
    /// 10 ms frames played (pulled from the session).
    pub frames_played: u64,
    /// 10 ms frames that had to be skipped because the media thread fell behind.
    pub frames_skipped: u64,
    /// Share of played samples concealed audibly (lost even after recovery).
    pub receive_loss_after_recovery: f64,
    /// Round-trip time to the remotes, once measured.
    pub rtt: Option<Duration>,
    /// Camera pictures given to the session (while the call had video and the camera
    /// was on; the session may still decimate them).
    pub video_frames_captured: u64,
    /// Pictures encoded and sent.
    pub video_frames_encoded: u64,
    /// Remote pictures decoded (all remotes).
    pub video_frames_decoded: u64,
    /// Remote pictures handed to the video output.
    pub video_frames_shown: u64,
    /// Freezes of remote video (all remotes).
    pub video_freeze_count: u64,
}

/// Something that happened: call progress from signalling, media from the session,
/// the connection to the server.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A user's devices came online or went offline, or the user entered or left a call.
    Presence {
        /// The user.
        user: UserId,
        /// At least one device is logged in.
        online: bool,
        /// The user is in a call.
        in_call: bool,
    },
    /// An invitation arrived; this device rings. Answer with
    /// [`accept`](super::CallEngine::accept) or [`reject`](super::CallEngine::reject).
    CallReceived {
        /// The call.
        call_id: CallId,
        /// Who calls.
        caller: UserId,
        /// Audio or video.
        media: MediaType,
        /// Everyone invited with this user.
        callees: Vec<UserId>,
        /// The caller's application data.
        user_data: Option<String>,
    },
    /// The call began on this device; media flows.
    CallBegins {
        /// The call.
        call_id: CallId,
        /// Audio or video.
        media: MediaType,
    },
    /// The call ended on this device.
    CallEnds {
        /// The call.
        call_id: CallId,
        /// Why.
        reason: EndReason,
        /// Time since [`EngineEvent::CallBegins`] (zero if it never began).
        duration: Duration,
    },
    /// A device of an invited user rings.
    UserRinging {
        /// The call.
        call_id: CallId,
        /// The invited device.
        endpoint: Endpoint,
    },
    /// A user is in the call (accepted or joined).
    UserJoined {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// A user left the call.
    UserLeft {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
        /// Why ([`EndReason::ConnectionLost`] when it fell silent).
        reason: EndReason,
    },
    /// An invited user rejected.
    UserRejected {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// An invited user did not answer within the ring timeout.
    UserNoAnswer {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// An invited user was in another call.
    UserBusy {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// Another participant invited a user into the call.
    UserInvited {
        /// The call.
        call_id: CallId,
        /// The invited user.
        user: UserId,
        /// Who invited.
        by: UserId,
    },
    /// An invitation arrived while this device was in a call; it was answered busy.
    MissedWhileBusy {
        /// The refused call.
        call_id: CallId,
        /// Who called.
        caller: UserId,
    },
    /// The call's media type changed.
    MediaTypeChanged {
        /// The call.
        call_id: CallId,
        /// The new type.
        media: MediaType,
        /// Who changed it (`None`: this device).
        by: Option<UserId>,
    },
    /// Another participant asks to switch to video; answer with
    /// [`answer_media_switch`](super::CallEngine::answer_media_switch).
    MediaSwitchRequested {
        /// The call.
        call_id: CallId,
        /// Who asks.
        by: UserId,
        /// The media type asked for.
        media: MediaType,
    },
    /// This device's request to switch to video was declined (`by: None`: unanswered).
    MediaSwitchDeclined {
        /// The call.
        call_id: CallId,
        /// Who declined.
        by: Option<UserId>,
    },
    /// Another participant turned its microphone or camera on or off.
    RemoteMediaState {
        /// The call.
        call_id: CallId,
        /// The participant.
        user: UserId,
        /// Microphone on.
        mic: bool,
        /// Camera on.
        camera: bool,
    },
    /// A remote's audio started arriving (`true`) or stopped for half a second (`false`:
    /// muted, gone, or the path is down).
    AudioAvailable {
        /// The call.
        call_id: CallId,
        /// The participant, once its media parameters named its SSRC.
        user: Option<UserId>,
        /// The remote's audio SSRC.
        ssrc: u32,
        /// Arriving or not.
        available: bool,
    },
    /// A remote's video started (its first decoded picture) or stopped arriving (a
    /// second without it, or at once when the call switched to audio; `docs/ENGINE.md`,
    /// "Video").
    VideoAvailable {
        /// The call.
        call_id: CallId,
        /// The participant.
        user: Option<UserId>,
        /// The remote's audio SSRC (the session names remotes by it).
        ssrc: u32,
        /// Arriving or not.
        available: bool,
        /// The size of its pictures (width, height) when available.
        resolution: Option<(u32, u32)>,
    },
    /// A remote's voice volume, 0-100, every 500 ms while its audio arrives.
    VoiceVolume {
        /// The call.
        call_id: CallId,
        /// The participant.
        user: Option<UserId>,
        /// The remote's audio SSRC.
        ssrc: u32,
        /// 0 (silent) to 100 (full scale).
        volume: u8,
    },
    /// The local microphone's voice activity changed.
    LocalSpeaking {
        /// The call.
        call_id: CallId,
        /// Speech present now.
        speaking: bool,
    },
    /// The active speaker changed (`user: None, ssrc` = this device's SSRC when it is this
    /// device).
    ActiveSpeaker {
        /// The call.
        call_id: CallId,
        /// The participant, when known (`None` for this device or an unnamed SSRC).
        user: Option<UserId>,
        /// Its audio SSRC.
        ssrc: u32,
    },
    /// A link's quality level changed: a remote's audio to us, or (`user: None`, the
    /// local SSRC) ours as the receivers report it.
    NetworkQuality {
        /// The call.
        call_id: CallId,
        /// The participant, when known.
        user: Option<UserId>,
        /// Whose stream.
        ssrc: u32,
        /// The new level.
        quality: NetworkQuality,
    },
    /// The call's media stopped on this device (after [`EngineEvent::CallEnds`]); what
    /// flowed.
    MediaStopped {
        /// The call.
        call_id: CallId,
        /// The figures.
        summary: MediaSummary,
    },
    /// Another login of this user and device replaced this one; the engine is logged out.
    Kicked {
        /// The server's explanation.
        detail: Option<String>,
    },
    /// The connection to the server closed; the engine stopped.
    Disconnected,
    /// The server refused a message.
    ServerError {
        /// Why.
        code: ErrorCode,
        /// The call it named.
        call_id: Option<CallId>,
        /// The server's explanation.
        detail: Option<String>,
    },
    /// Something local failed without ending the engine (a WAV file that cannot be
    /// read or written, a socket error); the call goes on.
    Warning {
        /// What failed.
        message: String,
    },
}
