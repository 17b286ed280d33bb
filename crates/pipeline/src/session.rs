//! The media session: one local participant and up to [`MAX_REMOTES`] remotes, audio and
//! (when configured) video.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tincan_abr::allocation::AudioDemand;
use tincan_abr::pacer::{Pacer, PacerConfig, PacerOutput};
use tincan_abr::{ControllerConfig, PacketClass, SentPacket};
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{OpusConfig, OpusEncoder};
use tincan_denoise::{VoiceConfig, VoiceProcessor};
use tincan_fec::policy::{AudioPolicy, AudioPolicyConfig, AudioRedundancy};
use tincan_jitter::{AudioJitterConfig, AudioPacket, Operation, PullInfo};
use tincan_media::{Channels, Resolution, SeqNo, VideoFrame};
use tincan_rtp::extension::TransportCc;
use tincan_rtp::extension::{AudioLevel, Extension, ExtensionKind, ExtensionMap, KnownExtensions};
use tincan_rtp::payload::red::{RedEncoder, RedPayload};
use tincan_rtp::rtcp::{Ntp64, ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SenderInfo};
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

use crate::error::{PipelineError, Result};
use crate::mixer::{MixCandidate, Mixer};
use crate::quality::{self, DOWN_AFTER, NetworkQuality};
use crate::receivers::Receivers;
pub use crate::receivers::{MIN_REPORT_PACKETS, RECEIVER_TIMEOUT};
pub use crate::remote::{MAX_REMOTES, RemoteParticipant, RemoteStats};
use crate::remote::{QualityPrior, RemoteStream, RtpState, SILENCE};
use crate::speaker::{ActiveSpeakerDetector, SPEAKER_TICK};
use crate::split::{ShareRequest, split_receive_budget};
use crate::video::session::RemoteVideo;
use crate::video::{
    FrameOutcome, OutgoingPacket, RemoteVideoFrame, VideoReceivePath, VideoReceiveStats,
    VideoSendPath, VideoSendStats, VideoSessionConfig,
};

/// Sample rate of everything in the session: Opus's native rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one microphone or playout frame: 10 ms at 48 kHz mono, the voice processor's
/// and the jitter buffer's unit.
pub const FRAME_SAMPLES: usize = 480;
/// Samples in one Opus packet: 20 ms, the usual VoIP packet (half the header overhead of
/// 10 ms, and the frame size the loss policy's ladder was measured with).
pub const PACKET_SAMPLES: usize = 960;
/// Duration of one packet.
pub const PACKET_DURATION: Duration = Duration::from_millis(20);
/// Loss in a report interval above which the receiver waits a packet for in-band FEC or
/// DRED: 2%, where the policy's ladder starts adding redundancy.
pub const RECOVERY_LOSS_THRESHOLD: f64 = 0.02;
/// Dynamic payload type of Opus (WebRTC's customary 111).
pub const OPUS_PT: u8 = 111;
/// Dynamic payload type of RED (RFC 2198) carrying Opus (WebRTC's customary 63).
pub const RED_PT: u8 = 63;
/// Header extension id of the RFC 6464 audio level.
pub const AUDIO_LEVEL_ID: u8 = 1;
/// Header extension id of the transport-wide sequence number.
pub const TRANSPORT_CC_ID: u8 = 3;
/// Time between RTCP reports (SR or RR). RFC 3550's 5 s minimum is relaxed to 1 s, as
/// WebRTC does for audio, so that RTT is known within a second of the call's start.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(1);
/// Time between updates of the loss-recovery policy from transport-cc statuses: the
/// interval the policy was tuned with in `tincan lab loss`.
pub const POLICY_INTERVAL: Duration = Duration::from_secs(1);
/// Most the audio policy may spend, bits per second (the budget `tincan lab loss` uses):
/// above it, redundancy adds nothing the ladder's top rung does not.
pub const MAX_AUDIO_BUDGET_BPS: u64 = 128_000;
/// Default of [`SessionConfig::min_audio_budget_bps`]: enough for the policy's RED rungs
/// (about 46-63 kbps) at 20% loss.
pub const DEFAULT_MIN_AUDIO_BUDGET_BPS: u64 = 64_000;
/// Silence after which the remote's audio counts as unavailable: 25 packet intervals, so
/// that even 20% random loss (a run of 25 losses has probability 0.2^25) never triggers it,
/// while a mute is seen within half a second.
pub const REMOTE_AUDIO_TIMEOUT: Duration = Duration::from_millis(500);
/// Silence after which a remote in DTX counts as unavailable: two and a half of the
/// encoder's 400 ms comfort-noise update intervals.
pub const DTX_AUDIO_TIMEOUT: Duration = Duration::from_millis(1000);
/// With DTX on, microphone frames without speech at or below this level (-dBov) are sent
/// as digital silence so that Opus's DTX starts: -50 dBov is the level of a quiet room
/// after noise suppression, 25 dB below speech.
pub const DTX_GATE_LEVEL: u8 = 50;
/// While the microphone is silent in DTX, one DTX frame is sent every this many packets
/// (400 ms, the interval of Opus's own comfort-noise updates) so that receivers keep the
/// stream available.
pub const DTX_KEEPALIVE_PACKETS: u32 = 20;
/// Interval of the remote's volume event (the issue's 500 ms).
pub const VOLUME_INTERVAL: Duration = Duration::from_millis(500);
/// Interval of the [`Event::Stats`] event (the issue's 2 s).
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// Window over which the actual send and receive bitrates are measured.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Most outputs waiting to be polled; beyond it the oldest is dropped and counted (a caller
/// that never polls must not grow memory without bound). A group session emits up to 15
/// feedback datagrams per 50 ms and 16 statistics events every 2 s.
pub const MAX_PENDING_OUTPUTS: usize = 512;
/// Most packet copies waiting for their send time.
pub const MAX_PENDING_COPIES: usize = 16;
/// Largest RTP payload built (a RED packet of the ladder's deepest rung fits well within).
pub const MAX_PAYLOAD_BYTES: usize = 1200;
/// Largest datagram accepted: an Ethernet MTU's worth.
pub const MAX_DATAGRAM_BYTES: usize = 1500;
/// Bytes of an RTP packet besides its payload: the 12-byte header and a one-byte extension
/// block (4-byte header, audio level 2 bytes, transport-cc 3 bytes, 3 bytes of padding).
pub const RTP_OVERHEAD: usize = 12 + 4 + 8;
/// Pacing rate floor as a multiple of the audio's own rate (the controller paces at 2.5×
/// its target for the same reason: bursts leave at once).
const AUDIO_PACING_HEADROOM: u64 = 2;
/// Buffers kept for reuse by the send path (packets in the pacer, copies, outputs).
const POOL_BUFFERS: usize = 64;
/// SSRCs of removed remotes remembered, so that their datagrams still on the way are
/// dropped (four streams per remote).
const MAX_DEPARTED: usize = 4 * MAX_REMOTES;

/// Interval of the video send path's rate update from the congestion controller's target
/// (the allocation's hysteresis works in seconds; a quarter second follows a falling
/// target quickly enough).
pub const VIDEO_RATE_INTERVAL: Duration = Duration::from_millis(250);
/// Opus's own algorithmic delay at 48 kHz with the VoIP application (2.5 ms look-ahead
/// plus 4 ms of decoder overlap), part of the mouth-to-ear estimate.
const OPUS_DELAY: Duration = Duration::from_micros(6_500);

/// The session's configuration. Defaults suit a voice call of up to 16 participants.
///
/// ```
/// use tincan_pipeline::SessionConfig;
/// let config = SessionConfig::new(0x1111).with_denoise(false);
/// assert_eq!(config.local_ssrc, 0x1111);
/// assert!(!config.denoise);
/// assert!(config.accept_undeclared_remotes);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// SSRC of the local audio stream (and of its RTCP).
    pub local_ssrc: u32,
    /// Noise suppression on the microphone (default on; AGC and VAD always run).
    pub denoise: bool,
    /// Congestion controller configuration (one controller per receiver of our stream).
    pub controller: ControllerConfig,
    /// The receivers' jitter buffer configuration (default: the interactive one).
    pub jitter: AudioJitterConfig,
    /// Least the loss-recovery policy may spend on audio (primary and redundancy), bits per
    /// second, even when the congestion controller's target is lower (default
    /// [`DEFAULT_MIN_AUDIO_BUDGET_BPS`]; capped at [`MAX_AUDIO_BUDGET_BPS`]). The
    /// loss-based controller cannot tell random loss from congestion and cuts its target
    /// under 20% random loss to about 35 kbps, which would hold the policy on in-band FEC;
    /// audio is a small share of a call's rate, so its protection is allowed this much
    /// (`docs/PIPELINE.md` has both measurements). 0 follows the controller strictly.
    pub min_audio_budget_bps: u64,
    /// Whether RTP from an SSRC nobody declared with [`Session::add_remote`] starts a new
    /// remote (default on, so that a 1:1 call needs no signalling of the remote's SSRC).
    /// Off, such packets are refused ([`PipelineError::UnknownRemote`]) and counted.
    pub accept_undeclared_remotes: bool,
    /// Opus discontinuous transmission (default on): in silence the encoder sends a
    /// comfort-noise update every 400 ms instead of a packet every 20 ms, so receivers
    /// decode (and relays forward) almost nothing for the silent participants of a group
    /// call. Receivers play comfort noise in the gaps.
    pub dtx: bool,
    /// Video (default none: an audio-only session). With it the session sends the camera
    /// ([`Session::push_video`]) and receives and decodes the video of every remote whose
    /// video SSRCs are declared ([`RemoteParticipant::with_video_ssrcs`]).
    pub video: Option<VideoSessionConfig>,
}

impl SessionConfig {
    /// Defaults with `local_ssrc`.
    pub fn new(local_ssrc: u32) -> Self {
        Self {
            local_ssrc,
            denoise: true,
            controller: ControllerConfig::default(),
            jitter: AudioJitterConfig::default(),
            min_audio_budget_bps: DEFAULT_MIN_AUDIO_BUDGET_BPS,
            accept_undeclared_remotes: true,
            dtx: true,
            video: None,
        }
    }

    /// Adds video ([`video`](Self::video); default none).
    ///
    /// ```
    /// use tincan_pipeline::SessionConfig;
    /// use tincan_pipeline::video::VideoSessionConfig;
    /// let config = SessionConfig::new(0x1111).with_video(VideoSessionConfig::new(0x1112, 0x1113, 0x1114));
    /// assert_eq!(config.video.map(|v| v.media_ssrc), Some(0x1112));
    /// ```
    pub fn with_video(mut self, video: VideoSessionConfig) -> Self {
        self.video = Some(video);
        self
    }

    /// Sets [`min_audio_budget_bps`](Self::min_audio_budget_bps) (default
    /// [`DEFAULT_MIN_AUDIO_BUDGET_BPS`]).
    pub fn with_min_audio_budget_bps(mut self, bps: u64) -> Self {
        self.min_audio_budget_bps = bps;
        self
    }

    /// Turns noise suppression on or off (default on).
    pub fn with_denoise(mut self, denoise: bool) -> Self {
        self.denoise = denoise;
        self
    }

    /// Turns DTX on or off (default on).
    pub fn with_dtx(mut self, dtx: bool) -> Self {
        self.dtx = dtx;
        self
    }

    /// Sets [`accept_undeclared_remotes`](Self::accept_undeclared_remotes) (default on).
    pub fn with_accept_undeclared_remotes(mut self, accept: bool) -> Self {
        self.accept_undeclared_remotes = accept;
        self
    }
}

/// What the application hands to [`Session::handle_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A timer the session asked for ([`Output::Timeout`]) has fired.
    Timeout,
    /// A datagram from a remote or the relay (RTP or RTCP, multiplexed per RFC 5761).
    Receive(&'a [u8]),
}

/// What [`Session::poll_output`] hands back. Decoded video pictures are not outputs: they
/// are lent by [`Session::poll_video_frame`] (no copy of a picture per frame).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Events carry the statistics by value: boxing them would allocate every 2 s on the
// real-time path, which `tests/no_alloc.rs` forbids; the output queue's bound keeps the
// larger entries' memory fixed (512 × under 300 bytes).
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// Send this datagram (to the remote, or to the relay in a group call). Give the
    /// buffer back with [`Session::recycle`] to spare an allocation.
    Transmit(Vec<u8>),
    /// Something the application may show.
    Event(Event),
    /// Nothing more until this instant (call [`Session::handle_input`] with
    /// [`Input::Timeout`] then), or until the next input.
    Timeout(Instant),
}

/// Events for the application. Remotes are named by their audio SSRC; the local
/// participant by [`SessionConfig::local_ssrc`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A remote's audio started arriving (first packet, or after a mute or outage).
    RemoteAudioAvailable {
        /// The remote stream's SSRC.
        ssrc: u32,
    },
    /// No audio from a remote for [`REMOTE_AUDIO_TIMEOUT`] ([`DTX_AUDIO_TIMEOUT`] while it
    /// is in DTX): muted, gone, or the path is down (also when the remote is removed while
    /// its audio arrives).
    RemoteAudioUnavailable {
        /// The remote stream's SSRC.
        ssrc: u32,
    },
    /// A remote's volume, 0-100, every [`VOLUME_INTERVAL`] while its audio arrives: the
    /// loudest RFC 6464 level of the interval, 0 dBov = 100, -100 dBov and below = 0.
    RemoteVolume {
        /// The remote stream's SSRC.
        ssrc: u32,
        /// 0-100.
        volume: u8,
    },
    /// The local speaker started or stopped speaking (voice activity with hangover).
    LocalSpeaking {
        /// Whether speech is present now.
        speaking: bool,
    },
    /// The session's statistics, every [`STATS_INTERVAL`] (the same as
    /// [`Session::stats`] at that instant), followed by one [`Event::RemoteStats`] per
    /// remote.
    Stats(SessionStats),
    /// One remote's statistics, every [`STATS_INTERVAL`] after [`Event::Stats`].
    RemoteStats(RemoteStats),
    /// The active speaker changed (`docs/PIPELINE.md`: levels with hysteresis). `ssrc` is
    /// a remote's audio SSRC or the local SSRC.
    ActiveSpeaker {
        /// Who speaks now.
        ssrc: u32,
    },
    /// A link's quality level changed: `ssrc` is a remote's (its audio to us) or the
    /// local SSRC (our audio as the receivers report it).
    NetworkQuality {
        /// Whose link.
        ssrc: u32,
        /// The new level.
        quality: NetworkQuality,
    },
    /// A remote's video became available: its first picture (after the start, a camera
    /// switched on, the call back to video, a subscription) was decoded. Pictures come
    /// from [`Session::poll_video_frame`].
    RemoteVideoAvailable {
        /// The remote (its audio SSRC).
        ssrc: u32,
        /// The picture's size.
        resolution: Resolution,
    },
    /// A remote's video stopped: no video packet for
    /// [`REMOTE_VIDEO_TIMEOUT`](crate::video::REMOTE_VIDEO_TIMEOUT) (camera off, the
    /// remote's call went to audio, an outage), or we stopped receiving it (the call went
    /// to audio, unsubscribed, the remote removed).
    RemoteVideoUnavailable {
        /// The remote (its audio SSRC).
        ssrc: u32,
    },
    /// The size of a remote's decoded pictures changed (its sender moved on its ladder).
    RemoteVideoResolution {
        /// The remote (its audio SSRC).
        ssrc: u32,
        /// The new size.
        resolution: Resolution,
    },
}

/// Statistics of the session ([`Session::stats`]). With several remotes the receive
/// figures summarise them: losses are pooled over all remotes' packets and samples,
/// jitter, jitter buffer delays and the end-to-end estimate are the worst remote's, RTT
/// and reported loss the worst receiver's (heard within [`RECEIVER_TIMEOUT`]). Per-remote
/// figures: [`Session::remote_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct SessionStats {
    /// Round-trip time from the receivers' report blocks (RFC 3550 LSR/DLSR), once measured.
    pub rtt: Option<Duration>,
    /// Share of the remotes' audio packets lost on the network (by RTP sequence numbers).
    pub receive_loss_before_recovery: f64,
    /// Share of played samples that were concealed audibly (lost even after FEC, RED,
    /// DRED; WebRTC's `concealedSamples - silentConcealedSamples`: comfort noise in DTX
    /// and concealment faded to silence are no loss one hears).
    pub receive_loss_after_recovery: f64,
    /// Share of our packets a receiver reported lost (last RR fraction lost, worst).
    pub send_loss_reported: f64,
    /// Interarrival jitter of the remotes' streams (RFC 3550), seconds.
    pub jitter: f64,
    /// Mean jitter buffer delay so far, seconds.
    pub jitter_buffer_delay: f64,
    /// The jitter buffer's current target delay, seconds.
    pub jitter_buffer_target: f64,
    /// Mouth-to-ear estimate: half the RTT, the 20 ms packet, Opus's delay, voice
    /// processing latency and the jitter buffer's delay (seconds; 0 before the RTT is known).
    pub end_to_end_delay: f64,
    /// Congestion controller's target (the lowest of the recent receivers'), bits per second.
    pub target_bps: u64,
    /// Estimated available bandwidth (the limiting receiver's acknowledged rate, or the
    /// target before it is measured), bits per second.
    pub estimated_bandwidth_bps: u64,
    /// What the audio policy asks for (primary, redundancy and copies), bits per second.
    pub audio_policy_bps: u32,
    /// The audio policy's rung (0 = no redundancy).
    pub audio_policy_level: usize,
    /// Bits per second actually sent over the last [`RATE_WINDOW`].
    pub send_bps: u64,
    /// Bits per second received over the last [`RATE_WINDOW`].
    pub receive_bps: u64,
    /// RTP packets sent (copies included).
    pub packets_sent: u64,
    /// RTP packets received (duplicates included).
    pub packets_received: u64,
    /// Datagrams refused (unreadable, unknown payload type, bad extension).
    pub bad_datagrams: u64,
    /// Outputs dropped because the application did not poll.
    pub dropped_outputs: u64,
    /// Remotes in the session.
    pub remotes: usize,
    /// RTP packets refused from SSRCs that are no remote: undeclared (with
    /// [`SessionConfig::accept_undeclared_remotes`] off) or beyond [`MAX_REMOTES`].
    pub refused_packets: u64,
    /// Our link's quality as the receivers report it.
    pub quality: NetworkQuality,
    /// The active speaker, once chosen.
    pub active_speaker: Option<u32>,
    /// Whether the camera is sent now (configured, camera on, the call has video).
    pub video_sending: bool,
    /// Video's share of the target after audio's (media, RTX and FlexFEC), bits per second.
    pub video_target_bps: u64,
    /// Video sent over the last second (media, RTX and FlexFEC), bits per second.
    pub video_send_bps: u64,
    /// Resolution of the last picture encoded.
    pub video_send_resolution: Option<Resolution>,
    /// Pictures encoded per second over the last second.
    pub video_send_fps: f64,
    /// Pictures encoded and sent.
    pub video_frames_encoded: u64,
    /// Keyframes sent.
    pub video_keyframes_sent: u64,
    /// The remotes' video received over the last second, bits per second (all remotes).
    pub video_receive_bps: u64,
    /// Remote pictures decoded (all remotes).
    pub video_frames_decoded: u64,
    /// Freezes of remote video (all remotes).
    pub video_freeze_count: u64,
    /// Their total duration.
    pub video_freeze_duration: Duration,
    /// Video packets received and not decoded: the call is audio only, the remote is
    /// unsubscribed, or the session has no video.
    pub video_packets_ignored: u64,
}

/// A packet waiting in the pacer: the RTP fields and the payload in a pooled buffer.
#[derive(Debug)]
struct Pending {
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    level: AudioLevel,
    payload: Vec<u8>,
}

/// What waits in the pacer: an audio packet's fields, or a video packet built whole.
#[derive(Debug)]
enum Queued {
    Audio(Pending),
    Video(OutgoingPacket),
}

/// A sans-IO media session with up to [`MAX_REMOTES`] remotes: audio, and video when
/// configured ([`SessionConfig::with_video`]).
///
/// Send path: [`push_audio`](Self::push_audio) every 10 ms → voice processing
/// (denoise, AGC, VAD, level) → Opus 20 ms (in-band FEC, DRED, bitrate from the
/// [`AudioPolicy`]) → RED and packet copies when the policy asks → RTP with audio level and
/// transport-wide sequence → pacer → [`Output::Transmit`].
///
/// Receive path: [`handle_input`](Self::handle_input) with each datagram → RTCP (SR/RR,
/// transport-cc feedback, REMB, per receiver) or RTP (per remote, by SSRC) → audio level,
/// transport-cc feedback generator, jitter buffer (RED blocks as recovered packets) →
/// [`pull_audio`](Self::pull_audio) every 10 ms: every remote's buffer, mixed.
///
/// Video ([`SessionConfig::with_video`]): [`push_video`](Self::push_video) with camera
/// pictures → the [`VideoSendPath`] at the rate the allocation leaves after audio →
/// the same pacer (classes video, retransmission, FEC; audio first) with transport-wide
/// sequence numbers at its exit; each remote's video RTP → its [`VideoReceivePath`] →
/// [`poll_video_frame`](Self::poll_video_frame). `docs/PIPELINE.md` describes the wiring.
pub struct Session {
    config: SessionConfig,
    /// The session's start: the origin of its NTP clock for RTCP.
    epoch: Instant,
    /// The latest instant seen.
    now: Instant,
    // Send side.
    voice: VoiceProcessor,
    speaking: bool,
    encoder: OpusEncoder,
    copy_encoder: OpusEncoder,
    red: RedEncoder,
    policy: AudioPolicy,
    settings: AudioRedundancy,
    capture: Vec<i16>,
    capture_len: usize,
    opus: Vec<u8>,
    copy: Vec<u8>,
    muted: bool,
    /// The last frame was a DTX frame.
    last_dtx: bool,
    /// Frames have been skipped (mute, DTX) since the last packet.
    send_gap: bool,
    /// Consecutive microphone frames the DTX gate turned into silence.
    gated_frames: u32,
    /// The encoder's last DTX frame, sent again while silent.
    dtx_frame: [u8; 2],
    dtx_frame_len: usize,
    /// Packets not sent since the last one sent (DTX).
    packets_skipped: u32,
    sequence: u16,
    timestamp: u32,
    transport_seq: u16,
    receivers: Receivers,
    pacer: Pacer<Queued>,
    copies: VecDeque<(Instant, Pending)>,
    pool: Vec<Vec<u8>>,
    extensions: ExtensionMap,
    packets_sent: u64,
    octets_sent: u64,
    sent_since_report: bool,
    // Receive side.
    remotes: Vec<RemoteStream>,
    mixer: Mixer,
    speakers: ActiveSpeakerDetector,
    /// The remote the application keeps in the main view ([`Session::set_pinned_video`]).
    pinned_video: Option<u32>,
    /// The downlink rate remote video may take ([`Session::set_receive_budget_bps`]).
    receive_budget_bps: u64,
    /// The last remote chosen as active speaker: the main view when none is pinned (our own
    /// turns as speaker do not move it).
    main_speaker: Option<u32>,
    local_quality: NetworkQuality,
    /// What [`Session::jitter_stats`] returns before there is a remote.
    no_jitter_stats: tincan_jitter::AudioJitterStats,
    // Timers.
    next_rtcp: Option<Instant>,
    next_policy: Option<Instant>,
    next_rate: Option<Instant>,
    next_stats: Option<Instant>,
    next_speaker: Option<Instant>,
    // Rates.
    bytes_sent_window: u64,
    bytes_received_window: u64,
    send_bps: u64,
    receive_bps: u64,
    packets_received: u64,
    bad_datagrams: u64,
    refused_packets: u64,
    // Output.
    outputs: VecDeque<Output>,
    dropped_outputs: u64,
    rtcp: Vec<u8>,
    // Video.
    video_send: Option<VideoSendPath>,
    camera: bool,
    /// The call has video (both directions); off, it is an audio call.
    video_call: bool,
    remote_video: Vec<RemoteVideo>,
    next_video_rate: Option<Instant>,
    video_sent_since_report: bool,
    /// Video packets of remotes without video state (undeclared video, no video here).
    video_packets_ignored: u64,
    /// SSRCs of removed remotes and when they were removed: RTCP from them for
    /// [`RECEIVER_TIMEOUT`] afterwards is stale (still on its way when they left) and must
    /// not start a fresh receiver whose controller, never fed back, would limit the rate.
    departed: VecDeque<(u32, Instant)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_ssrc", &self.config.local_ssrc)
            .field("muted", &self.muted)
            .field("remotes", &self.remotes)
            .field("video", &self.video_send)
            .field("video_call", &self.video_call)
            .finish_non_exhaustive()
    }
}

/// Converts an RFC 6464 level (-dBov, 0-127) to a 0-100 volume over a 100 dB range.
pub fn level_to_volume(level: u8) -> u8 {
    100u8.saturating_sub(level.min(127))
}

impl Session {
    /// A session with `config`, created at `now`.
    ///
    /// # Errors
    ///
    /// [`PipelineError::InvalidConfig`] or an engine crate's error when a component refuses
    /// its configuration.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Self> {
        let policy = AudioPolicy::new(AudioPolicyConfig::default());
        let settings = *policy.current();
        let opus_config = OpusConfig::new(SAMPLE_RATE, Channels::Mono).with_dtx(config.dtx);
        let voice = VoiceProcessor::new(
            &VoiceConfig::new(SAMPLE_RATE, Channels::Mono).with_bypass(!config.denoise),
        )?;
        if voice.frame_samples() != FRAME_SAMPLES {
            return Err(PipelineError::InvalidConfig {
                field: "voice frame",
                value: voice.frame_samples().to_string(),
                expected: "480 samples",
            });
        }
        let receivers = Receivers::new(config.controller, now)?;
        let mut pacer = Pacer::new(PacerConfig::default())?;
        if let Some(c) = receivers.limiting(now) {
            pacer.set_rates(c.pacing_bps(), 0);
        }
        let extensions = ExtensionMap::new()
            .with(AUDIO_LEVEL_ID, ExtensionKind::AudioLevel)?
            .with(TRANSPORT_CC_ID, ExtensionKind::TransportCc)?;
        let video_send = match &config.video {
            Some(video) => {
                video.validate(config.local_ssrc)?;
                let send = video.send_config(TRANSPORT_CC_ID, config.controller.start_bps)?;
                let mut path = VideoSendPath::new(send, now)?;
                path.set_enabled(video.camera);
                Some(path)
            }
            None => None,
        };
        let camera = config.video.as_ref().is_some_and(|v| v.camera);
        let video_call = config.video.is_some();
        let mut session = Self {
            voice,
            speaking: false,
            encoder: OpusEncoder::new(&opus_config)?,
            copy_encoder: OpusEncoder::new(&opus_config)?,
            red: RedEncoder::new(0)?,
            policy,
            settings,
            capture: vec![0; PACKET_SAMPLES],
            capture_len: 0,
            opus: vec![0; MAX_PAYLOAD_BYTES],
            copy: vec![0; MAX_PAYLOAD_BYTES],
            muted: false,
            last_dtx: false,
            send_gap: false,
            gated_frames: 0,
            dtx_frame: [0; 2],
            dtx_frame_len: 0,
            packets_skipped: 0,
            // Any start will do; a fixed one keeps tests deterministic. Real deployments
            // randomise sequence and timestamp starts (RFC 3550 §5.1) in the signalling
            // layer that picks SSRCs.
            sequence: 0,
            timestamp: 0,
            transport_seq: 0,
            receivers,
            pacer,
            copies: VecDeque::with_capacity(MAX_PENDING_COPIES),
            pool: (0..POOL_BUFFERS)
                .map(|_| Vec::with_capacity(MAX_DATAGRAM_BYTES))
                .collect(),
            extensions,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            remotes: Vec::with_capacity(MAX_REMOTES),
            mixer: Mixer::new(),
            speakers: ActiveSpeakerDetector::new(),
            pinned_video: None,
            receive_budget_bps: config.video.as_ref().map_or(0, |v| v.receive_budget_bps),
            main_speaker: None,
            local_quality: NetworkQuality::Unknown,
            no_jitter_stats: tincan_jitter::AudioJitterStats::default(),
            next_rtcp: Some(now + RTCP_INTERVAL),
            next_policy: Some(now + POLICY_INTERVAL),
            next_rate: Some(now + RATE_WINDOW),
            next_stats: Some(now + STATS_INTERVAL),
            next_speaker: Some(now + SPEAKER_TICK),
            bytes_sent_window: 0,
            bytes_received_window: 0,
            send_bps: 0,
            receive_bps: 0,
            packets_received: 0,
            bad_datagrams: 0,
            refused_packets: 0,
            outputs: VecDeque::with_capacity(MAX_PENDING_OUTPUTS),
            dropped_outputs: 0,
            rtcp: Vec::with_capacity(MAX_DATAGRAM_BYTES),
            next_video_rate: video_send.as_ref().map(|_| now),
            video_send,
            camera,
            video_call,
            remote_video: Vec::with_capacity(MAX_REMOTES),
            video_sent_since_report: false,
            video_packets_ignored: 0,
            departed: VecDeque::with_capacity(MAX_DEPARTED),
            config,
            epoch: now,
            now,
        };
        session.configure(settings, true)?;
        Ok(session)
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Declares a remote participant (signalling knows its SSRCs): its audio is received,
    /// mixed and reported from its first packet. Declaring an SSRC that is already a remote
    /// starts it over with fresh state (a rejoin): new jitter buffer and decoder, counters
    /// from zero.
    ///
    /// # Errors
    ///
    /// [`PipelineError::TooManyRemotes`] when [`MAX_REMOTES`] are present; a component's
    /// error if its state cannot be created.
    pub fn add_remote(&mut self, participant: RemoteParticipant) -> Result<()> {
        let now = self.now;
        self.remove_remote(participant.audio_ssrc);
        self.departed.retain(|&(ssrc, _)| {
            ![
                Some(participant.audio_ssrc),
                participant.video_ssrc,
                participant.video_rtx_ssrc,
                participant.video_fec_ssrc,
            ]
            .contains(&Some(ssrc))
        });
        if self.remotes.len() >= MAX_REMOTES {
            return Err(PipelineError::TooManyRemotes {
                ssrc: participant.audio_ssrc,
                limit: MAX_REMOTES,
            });
        }
        let stream = RemoteStream::new(
            participant,
            true,
            self.config.local_ssrc,
            &self.config.jitter,
            now,
        )?;
        self.mixer.reset_source(self.remotes.len());
        self.remotes.push(stream);
        if let Some(media) = participant.video_ssrc {
            self.remote_video.push(RemoteVideo::new(
                participant.audio_ssrc,
                media,
                participant.video_rtx_ssrc,
                participant.video_fec_ssrc,
            ));
        }
        Ok(())
    }

    /// Removes a remote (the participant left): its state is dropped, its congestion
    /// feedback no longer limits the send rate, and it is no longer the active speaker.
    /// [`Event::RemoteAudioUnavailable`] follows if its audio was arriving. Returns whether
    /// it was there.
    pub fn remove_remote(&mut self, audio_ssrc: u32) -> bool {
        let Some(index) = self.remote_index(audio_ssrc) else {
            return false;
        };
        let stream = self.remotes.remove(index);
        self.mixer.remove_source(index);
        let p = stream.participant;
        for ssrc in [
            Some(p.audio_ssrc),
            p.video_ssrc,
            p.video_rtx_ssrc,
            p.video_fec_ssrc,
        ]
        .into_iter()
        .flatten()
        {
            if self.departed.len() >= MAX_DEPARTED {
                self.departed.pop_front();
            }
            self.departed.push_back((ssrc, self.now));
        }
        self.receivers.remove(audio_ssrc);
        if let Some(video) = stream.participant.video_ssrc {
            self.receivers.remove(video);
        }
        self.speakers.remove(audio_ssrc);
        if self.pinned_video == Some(audio_ssrc) {
            self.pinned_video = None;
        }
        if self.main_speaker == Some(audio_ssrc) {
            self.main_speaker = None;
        }
        if stream.available {
            self.push_output(Output::Event(Event::RemoteAudioUnavailable {
                ssrc: audio_ssrc,
            }));
        }
        if let Some(v) = self
            .remote_video
            .iter()
            .position(|v| v.audio_ssrc == audio_ssrc)
        {
            let mut video = self.remote_video.remove(v);
            if video.drop_path(self.now) {
                self.push_output(Output::Event(Event::RemoteVideoUnavailable {
                    ssrc: audio_ssrc,
                }));
            }
        }
        true
    }

    /// The remotes' audio SSRCs, in the order they joined.
    pub fn remote_ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.remotes.iter().map(RemoteStream::ssrc)
    }

    /// Sets a remote's playout volume in the mix, 0-100 (linear gain ÷ 100; default 100;
    /// 0 leaves it out of the mix).
    ///
    /// # Errors
    ///
    /// [`PipelineError::UnknownRemote`] for an SSRC that is no remote;
    /// [`PipelineError::InvalidConfig`] for a volume above 100.
    pub fn set_remote_volume(&mut self, audio_ssrc: u32, volume: u8) -> Result<()> {
        if volume > 100 {
            return Err(PipelineError::InvalidConfig {
                field: "volume",
                value: volume.to_string(),
                expected: "0 to 100",
            });
        }
        let index = self
            .remote_index(audio_ssrc)
            .ok_or(PipelineError::UnknownRemote { ssrc: audio_ssrc })?;
        self.remotes[index].volume = volume;
        Ok(())
    }

    /// The active speaker (a remote's audio SSRC or the local SSRC), once chosen.
    pub fn active_speaker(&self) -> Option<u32> {
        self.speakers.current()
    }

    /// Mutes or unmutes the microphone. Muted, no audio packets are sent at all (RTCP goes
    /// on), so the remotes see its audio become unavailable within
    /// [`REMOTE_AUDIO_TIMEOUT`]: that is the mute signal of this slice.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Whether the microphone is muted.
    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// The loss-recovery settings in use on the send side.
    pub fn audio_settings(&self) -> &AudioRedundancy {
        &self.settings
    }

    /// Takes one camera picture captured at `now` (any size: scaled down to the rung the
    /// allocation picks, decimated to its frame rate). Its packets join the pacer behind
    /// audio. While the camera is off or the call is audio only the picture is dropped
    /// ([`FrameOutcome::Disabled`]).
    ///
    /// # Errors
    ///
    /// [`PipelineError::VideoNotConfigured`] without [`SessionConfig::with_video`];
    /// [`PipelineError::Video`] for a picture the encoder refuses (the next is a keyframe).
    pub fn push_video(&mut self, frame: &VideoFrame, now: Instant) -> Result<FrameOutcome> {
        let now = self.advance(now);
        let video = self
            .video_send
            .as_mut()
            .ok_or(PipelineError::VideoNotConfigured)?;
        let outcome = video.push_frame(frame, now);
        self.queue_video(now);
        self.drive(now)?;
        Ok(outcome?)
    }

    /// Switches the camera on or off at `now`. Off, no video packet is queued (those
    /// already in the pacer leave within its queue time, a few milliseconds), so the
    /// remotes see [`Event::RemoteVideoUnavailable`] after
    /// [`REMOTE_VIDEO_TIMEOUT`](crate::video::REMOTE_VIDEO_TIMEOUT); on again, the first
    /// picture is a keyframe. RTCP goes on either way.
    ///
    /// # Errors
    ///
    /// [`PipelineError::VideoNotConfigured`] without [`SessionConfig::with_video`].
    pub fn set_camera(&mut self, on: bool, now: Instant) -> Result<()> {
        if self.video_send.is_none() {
            return Err(PipelineError::VideoNotConfigured);
        }
        self.advance(now);
        self.camera = on;
        self.apply_video_sending();
        Ok(())
    }

    /// Whether the camera is on.
    pub fn camera(&self) -> bool {
        self.camera
    }

    /// Switches the call between video (`true`) and audio only (`false`) at `now`, both
    /// directions at once. To audio: nothing more is sent from the camera, every remote's
    /// video receive path (decoder, buffers) is dropped with an
    /// [`Event::RemoteVideoUnavailable`] for each that was shown, and video packets still
    /// arriving are only acknowledged to the congestion control of their sender (counted in
    /// [`SessionStats::video_packets_ignored`]). Back to video: the camera (if on) starts
    /// with a keyframe and each subscribed remote's receive path starts again on its next
    /// packet, asking for a keyframe.
    ///
    /// # Errors
    ///
    /// [`PipelineError::VideoNotConfigured`] without [`SessionConfig::with_video`].
    pub fn set_video_call(&mut self, video: bool, now: Instant) -> Result<()> {
        if self.video_send.is_none() {
            return Err(PipelineError::VideoNotConfigured);
        }
        let now = self.advance(now);
        self.video_call = video;
        self.apply_video_sending();
        if !video {
            for i in 0..self.remote_video.len() {
                self.drop_remote_video(i, now);
            }
        }
        Ok(())
    }

    /// Whether the call has video (see [`set_video_call`](Self::set_video_call)).
    pub fn video_call(&self) -> bool {
        self.video_call
    }

    /// Starts or stops receiving a remote's video (default on for every remote with video
    /// SSRCs). Off, its receive path is dropped at once (an
    /// [`Event::RemoteVideoUnavailable`] if it was shown) and its packets are only
    /// acknowledged to its congestion control; on again, the path starts on its next
    /// packet and asks for a keyframe. (A relay that forwards by subscription is told by
    /// signalling; this only spares the decoding.)
    ///
    /// # Errors
    ///
    /// [`PipelineError::UnknownRemote`] for a remote that is not there or has no video
    /// SSRC.
    pub fn set_remote_video(&mut self, audio_ssrc: u32, on: bool) -> Result<()> {
        let i = self
            .remote_video
            .iter()
            .position(|v| v.audio_ssrc == audio_ssrc)
            .ok_or(PipelineError::UnknownRemote { ssrc: audio_ssrc })?;
        self.remote_video[i].subscribed = on;
        if !on {
            let now = self.now;
            self.drop_remote_video(i, now);
        }
        Ok(())
    }

    /// Keeps a remote in the main view (`None`: the active speaker is, the default). The
    /// main view takes [`MAIN_VIEW_WEIGHT`](crate::split::MAIN_VIEW_WEIGHT) shares of the
    /// receive budget, every other watched remote one ([`crate::split`]); the remotes hear
    /// of their new shares with the next report, within a second.
    ///
    /// # Errors
    ///
    /// [`PipelineError::UnknownRemote`] for a remote that is not there or has no video
    /// SSRC.
    pub fn set_pinned_video(&mut self, audio_ssrc: Option<u32>) -> Result<()> {
        if let Some(ssrc) = audio_ssrc
            && !self.remote_video.iter().any(|v| v.audio_ssrc == ssrc)
        {
            return Err(PipelineError::UnknownRemote { ssrc });
        }
        self.pinned_video = audio_ssrc;
        Ok(())
    }

    /// Changes the downlink rate remote video may take, all remotes together
    /// ([`VideoSessionConfig::receive_budget_bps`]). The remotes hear of their new shares
    /// with the next report, within a second. 0 stops the REMBs, but a remote keeps the
    /// last share it heard (a REMB holds until the next): to lift a limit mid-call, give a
    /// large budget instead.
    pub fn set_receive_budget_bps(&mut self, bps: u64) {
        self.receive_budget_bps = bps;
    }

    /// The downlink rate remote video may take ([`Session::set_receive_budget_bps`]).
    pub fn receive_budget_bps(&self) -> u64 {
        self.receive_budget_bps
    }

    /// The remote kept in the main view, if one is pinned.
    pub fn pinned_video(&self) -> Option<u32> {
        self.pinned_video
    }

    /// The next decoded remote picture, lent until the next call: every remote's pictures
    /// in decoding order, remotes in the order they joined. Show each at its
    /// [`render_at`](RemoteVideoFrame::render_at). Pictures not taken are overwritten after
    /// a few (counted in [`VideoReceiveStats::frames_not_polled`]), so memory stays bounded
    /// for an application that does not show video.
    pub fn poll_video_frame(&mut self) -> Option<RemoteVideoFrame<'_>> {
        let i = self
            .remote_video
            .iter()
            .position(|v| v.path.as_ref().is_some_and(|p| p.ready_frames() > 0))?;
        let video = self.remote_video.get_mut(i)?;
        let remote = video.audio_ssrc;
        let decoded = video.path.as_mut()?.poll_frame()?;
        Some(RemoteVideoFrame {
            remote,
            frame: decoded.frame,
            rtp_timestamp: decoded.rtp_timestamp,
            render_at: decoded.render_at,
            keyframe: decoded.keyframe,
        })
    }

    /// The video send path's statistics at `now` (`None` without video).
    pub fn video_send_stats(&self, now: Instant) -> Option<VideoSendStats> {
        self.video_send.as_ref().map(|v| v.stats_at(now))
    }

    /// A remote's video receive statistics at `now` (totals over the receive paths it has
    /// had), while it has a receive path.
    pub fn remote_video_stats(&self, audio_ssrc: u32, now: Instant) -> Option<VideoReceiveStats> {
        self.remote_video
            .iter()
            .find(|v| v.audio_ssrc == audio_ssrc)
            .and_then(|v| v.stats(now))
    }

    /// Enables the send path when the camera is on and the call has video.
    fn apply_video_sending(&mut self) {
        let enabled = self.camera && self.video_call;
        if let Some(video) = &mut self.video_send {
            video.set_enabled(enabled);
        }
    }

    /// Drops remote video `i`'s receive path (an unavailable event if it was shown).
    fn drop_remote_video(&mut self, i: usize, now: Instant) {
        let Some(video) = self.remote_video.get_mut(i) else {
            return;
        };
        let ssrc = video.audio_ssrc;
        if video.drop_path(now) {
            self.push_output(Output::Event(Event::RemoteVideoUnavailable { ssrc }));
        }
    }

    /// Moves the send path's packets into the pacer.
    fn queue_video(&mut self, now: Instant) {
        let Some(video) = self.video_send.as_mut() else {
            return;
        };
        while let Some(packet) = video.poll_packet() {
            let (size, class) = (packet.data.len(), packet.class);
            if let Err(dropped) = self.pacer.enqueue(Queued::Video(packet), size, class, now) {
                if let Queued::Video(packet) = dropped.packet {
                    video.recycle(packet.data);
                }
            }
        }
    }

    /// Gives back a buffer from [`Output::Transmit`] for reuse.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.pool.len() < POOL_BUFFERS {
            buffer.clear();
            self.pool.push(buffer);
        } else if let Some(video) = &mut self.video_send {
            // Video packets outnumber audio's: the rest refill the video path's pool.
            video.recycle(buffer);
        }
    }

    /// Handles a timer or a received datagram at `now`, then drains what became due.
    ///
    /// # Errors
    ///
    /// A datagram that cannot be read ([`PipelineError::BadDatagram`],
    /// [`PipelineError::UnknownPayloadType`], or the RTP/RTCP error; counted in
    /// [`SessionStats::bad_datagrams`]) or RTP from an SSRC that is no remote
    /// ([`PipelineError::UnknownRemote`], [`PipelineError::TooManyRemotes`]; counted in
    /// [`SessionStats::refused_packets`]): it is dropped, and the session goes on.
    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) -> Result<()> {
        let now = self.advance(now);
        let result = match input {
            Input::Timeout => Ok(()),
            Input::Receive(data) => {
                let result = self.receive(data, now);
                match &result {
                    Ok(()) => {}
                    Err(
                        PipelineError::UnknownRemote { .. } | PipelineError::TooManyRemotes { .. },
                    ) => self.refused_packets += 1,
                    Err(_) => self.bad_datagrams += 1,
                }
                result
            }
        };
        self.drive(now)?;
        result
    }

    /// Takes one 10 ms microphone frame ([`FRAME_SAMPLES`] samples, 48 kHz mono) captured
    /// at `now`. Every second frame makes a packet.
    ///
    /// # Errors
    ///
    /// [`PipelineError::WrongFrameSize`] for a frame of another length; codec errors.
    pub fn push_audio(&mut self, frame: &[i16], now: Instant) -> Result<()> {
        if frame.len() != FRAME_SAMPLES {
            return Err(PipelineError::WrongFrameSize {
                got: frame.len(),
                expected: FRAME_SAMPLES,
            });
        }
        let now = self.advance(now);
        let start = self.capture_len;
        self.capture[start..start + FRAME_SAMPLES].copy_from_slice(frame);
        let report = self
            .voice
            .process_i16(&mut self.capture[start..start + FRAME_SAMPLES])?;
        self.capture_len += FRAME_SAMPLES;
        if report.speaking != self.speaking {
            self.speaking = report.speaking;
            self.push_output(Output::Event(Event::LocalSpeaking {
                speaking: report.speaking,
            }));
        }
        // With DTX, quiet frames without speech become digital silence: room noise would
        // otherwise keep Opus's own voice detector active and DTX would never start, so
        // every silent participant of a group call would cost every receiver a decoder.
        if self.config.dtx && !report.speaking && report.audio_level >= DTX_GATE_LEVEL {
            self.capture[start..start + FRAME_SAMPLES].fill(0);
            self.gated_frames = self.gated_frames.saturating_add(1);
        } else {
            self.gated_frames = 0;
        }
        // The local participant competes for active speaker unless muted.
        self.speakers.observe(
            self.config.local_ssrc,
            report.audio_level,
            report.speaking && !self.muted,
        );
        if self.capture_len == PACKET_SAMPLES {
            self.capture_len = 0;
            let level = self.voice.take_packet_audio_level();
            self.packetize(level, now)?;
            self.timestamp = self.timestamp.wrapping_add(PACKET_SAMPLES as u32);
        }
        self.drive(now)
    }

    /// Fills `out` ([`FRAME_SAMPLES`] samples) with the remotes' audio for the 10 ms
    /// starting at `now`: every remote's jitter buffer is pulled (decoded, concealed or
    /// stretched; silence before its first packet), and the loudest of them mixed
    /// ([`crate::mixer`]: at most three, silent streams skipped, each at its playout
    /// volume). Returns the pull of the loudest remote mixed (else of the first remote;
    /// [`Operation::Silence`] with no remote).
    ///
    /// # Errors
    ///
    /// [`PipelineError::WrongFrameSize`] for a buffer of another length; the first jitter
    /// buffer error (that remote is silent in this frame, the others are mixed).
    pub fn pull_audio(&mut self, now: Instant, out: &mut [i16]) -> Result<PullInfo> {
        if out.len() != FRAME_SAMPLES {
            return Err(PipelineError::WrongFrameSize {
                got: out.len(),
                expected: FRAME_SAMPLES,
            });
        }
        let now = self.advance(now);
        let mut error = None;
        let mut candidates = [MixCandidate {
            level: SILENCE,
            voice: false,
            volume: 0,
        }; MAX_REMOTES];
        for (remote, candidate) in self.remotes.iter_mut().zip(&mut candidates) {
            match remote.buffer.pull(now, &mut remote.frame) {
                Ok(info) => remote.last_pull = Some(info),
                Err(e) => {
                    remote.frame.fill(0);
                    error.get_or_insert(e);
                }
            }
            *candidate = if remote.available {
                MixCandidate {
                    level: remote.level_now.0.min(remote.level_before.0),
                    voice: remote.level_now.1 || remote.level_before.1,
                    volume: remote.volume,
                }
            } else {
                MixCandidate {
                    level: SILENCE,
                    voice: false,
                    volume: remote.volume,
                }
            };
        }
        let remotes = &self.remotes;
        self.mixer.mix(
            &candidates[..remotes.len()],
            |i| remotes.get(i).map_or(&[][..], |r| &r.frame[..]),
            out,
        );
        if let Some(error) = error {
            return Err(error.into());
        }
        let info = self
            .mixer
            .mixed()
            .first()
            .and_then(|&i| self.remotes.get(i))
            .or(self.remotes.first())
            .and_then(|r| r.last_pull);
        Ok(info.unwrap_or(PullInfo {
            operation: Operation::Silence,
            samples: FRAME_SAMPLES,
            samples_from_packets: 0,
            packet_delay: None,
            target_delay: Duration::ZERO,
            buffer_level: Duration::ZERO,
            media_timestamp: None,
        }))
    }

    /// The next output: datagrams and events first, then the next deadline.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        Output::Timeout(self.next_deadline())
    }

    /// Statistics at `now` (receive figures summarised over the remotes: see
    /// [`SessionStats`]).
    pub fn stats(&self, now: Instant) -> SessionStats {
        let (mut lost, mut expected) = (0.0, 0.0);
        let (mut concealed, mut played) = (0u64, 0u64);
        let (mut jitter, mut buffer_delay, mut buffer_target, mut end_to_end) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for remote in &self.remotes {
            let (l, e) = remote.loss_before_recovery();
            lost += l;
            expected += e;
            let js = remote.buffer.stats();
            concealed +=
                js.concealed_samples - js.silent_concealed_samples.min(js.concealed_samples);
            played += js.total_samples_received;
            jitter = jitter.max(remote.jitter_seconds());
            buffer_delay = buffer_delay.max(js.mean_delay().as_secs_f64());
            buffer_target = buffer_target.max(remote.buffer.target_delay().as_secs_f64());
            end_to_end = end_to_end.max(self.end_to_end(remote, now));
        }
        let limiting = self.receivers.limiting(now);
        let controller = limiting.map(tincan_abr::SendSideController::stats);
        let target_bps = controller.map_or(self.config.controller.start_bps, |c| c.target_bps);
        let send = self.video_send.as_ref().map(|v| v.stats_at(now));
        let (mut video_receive_bps, mut video_frames_decoded) = (0, 0);
        let (mut video_freeze_count, mut video_freeze_duration) = (0, Duration::ZERO);
        for video in &self.remote_video {
            let retired = video.retired;
            video_frames_decoded += retired.frames_decoded;
            video_freeze_count += retired.freeze_count;
            video_freeze_duration += retired.freezes_duration;
            if let Some(path) = &video.path {
                let stats = path.stats_at(now);
                video_receive_bps += stats.receive_bps;
                video_frames_decoded += stats.frames_decoded;
                video_freeze_count += stats.freeze_count;
                video_freeze_duration += stats.total_freezes_duration;
            }
        }
        SessionStats {
            rtt: self.rtt(now),
            receive_loss_before_recovery: if expected > 0.0 { lost / expected } else { 0.0 },
            receive_loss_after_recovery: concealed as f64 / played.max(1) as f64,
            send_loss_reported: self.receivers.loss_reported(now),
            jitter,
            jitter_buffer_delay: buffer_delay,
            jitter_buffer_target: buffer_target,
            end_to_end_delay: end_to_end,
            target_bps,
            estimated_bandwidth_bps: controller
                .and_then(|c| c.acknowledged_bps)
                .unwrap_or(target_bps),
            audio_policy_bps: self.settings.bitrate(),
            audio_policy_level: self.settings.level,
            send_bps: self.send_bps,
            receive_bps: self.receive_bps,
            packets_sent: self.packets_sent,
            packets_received: self.packets_received,
            bad_datagrams: self.bad_datagrams,
            dropped_outputs: self.dropped_outputs,
            remotes: self.remotes.len(),
            refused_packets: self.refused_packets,
            quality: self.local_quality,
            active_speaker: self.speakers.current(),
            video_sending: send.is_some_and(|s| s.enabled),
            video_target_bps: send.map_or(0, |s| s.target_bps),
            video_send_bps: send.map_or(0, |s| s.media_bps + s.rtx_bps + s.fec_bps),
            video_send_resolution: send.and_then(|s| s.resolution),
            video_send_fps: send.map_or(0.0, |s| s.fps_sent),
            video_frames_encoded: send.map_or(0, |s| s.frames_encoded),
            video_keyframes_sent: send.map_or(0, |s| s.keyframes),
            video_receive_bps,
            video_frames_decoded,
            video_freeze_count,
            video_freeze_duration,
            video_packets_ignored: self.video_packets_ignored,
        }
    }

    /// Statistics of each remote at `now`, in the order they joined.
    pub fn remote_stats(&self, now: Instant) -> impl Iterator<Item = RemoteStats> + '_ {
        self.remotes
            .iter()
            .map(move |r| self.remote_stats_of(r, now))
    }

    /// The jitter buffer statistics (WebRTC names) of the first remote (all zero before
    /// there is one); see [`remote_jitter_stats`](Self::remote_jitter_stats) for the others.
    pub fn jitter_stats(&self) -> &tincan_jitter::AudioJitterStats {
        self.remotes
            .first()
            .map_or(&self.no_jitter_stats, |r| r.buffer.stats())
    }

    /// The jitter buffer statistics of the remote `audio_ssrc`.
    pub fn remote_jitter_stats(&self, audio_ssrc: u32) -> Option<&tincan_jitter::AudioJitterStats> {
        self.remote_index(audio_ssrc)
            .map(|i| self.remotes[i].buffer.stats())
    }

    fn remote_index(&self, audio_ssrc: u32) -> Option<usize> {
        self.remotes.iter().position(|r| r.ssrc() == audio_ssrc)
    }

    /// The RTT to a remote: its report blocks about our stream (sent by its audio or
    /// video SSRC).
    fn remote_rtt(&self, remote: &RemoteStream) -> Option<Duration> {
        let participant = remote.participant;
        self.receivers
            .get(participant.audio_ssrc)
            .and_then(|r| r.rtt)
            .or_else(|| {
                participant
                    .video_ssrc
                    .and_then(|v| self.receivers.get(v))
                    .and_then(|r| r.rtt)
            })
    }

    /// The worst RTT of the receivers heard from recently, else of any.
    fn rtt(&self, now: Instant) -> Option<Duration> {
        self.receivers
            .rtt(now)
            .or_else(|| self.receivers.iter().filter_map(|r| r.rtt).max())
    }

    /// Delay from a remote's mouth to our ear, seconds (0 before the RTT is known).
    fn end_to_end(&self, remote: &RemoteStream, now: Instant) -> f64 {
        self.remote_rtt(remote).map_or(0.0, |rtt| {
            rtt.as_secs_f64() / 2.0
                + self.fixed_delay()
                + self.pacer.queue_delay(now).as_secs_f64()
                + remote.buffer.stats().mean_delay().as_secs_f64()
        })
    }

    /// The delays every path has: the 20 ms packet, Opus, voice processing.
    fn fixed_delay(&self) -> f64 {
        PACKET_SAMPLES as f64 / f64::from(SAMPLE_RATE)
            + OPUS_DELAY.as_secs_f64()
            + self.voice.latency_samples() as f64 / f64::from(SAMPLE_RATE)
    }

    fn remote_stats_of(&self, remote: &RemoteStream, now: Instant) -> RemoteStats {
        let js = remote.buffer.stats();
        let (lost, expected) = remote.loss_before_recovery();
        RemoteStats {
            ssrc: remote.ssrc(),
            video_ssrc: remote.participant.video_ssrc,
            audio_available: remote.available,
            rtt: self.remote_rtt(remote),
            receive_loss_before_recovery: if expected > 0.0 { lost / expected } else { 0.0 },
            receive_loss_after_recovery: (js.concealed_samples
                - js.silent_concealed_samples.min(js.concealed_samples))
                as f64
                / js.total_samples_received.max(1) as f64,
            jitter: remote.jitter_seconds(),
            jitter_buffer_delay: js.mean_delay().as_secs_f64(),
            jitter_buffer_target: remote.buffer.target_delay().as_secs_f64(),
            end_to_end_delay: self.end_to_end(remote, now),
            receive_bps: remote.receive_bps,
            packets_received: remote.packets_received,
            concealment_events: js.concealment_events,
            volume: remote.last_volume,
            playout_volume: remote.volume,
            quality: remote.quality,
            mos: remote.mos,
            declared: remote.declared,
            ..self.remote_video_fields(remote.ssrc(), now)
        }
    }

    /// The video fields of a remote's statistics.
    fn remote_video_fields(&self, audio_ssrc: u32, now: Instant) -> RemoteStats {
        let Some(video) = self
            .remote_video
            .iter()
            .find(|v| v.audio_ssrc == audio_ssrc)
        else {
            return RemoteStats::default();
        };
        let retired = video.retired;
        let mut fields = RemoteStats {
            video_available: video.available,
            video_subscribed: video.subscribed,
            video_share_bps: video.share_bps,
            video_resolution: video.resolution,
            video_frames_decoded: retired.frames_decoded,
            video_keyframes_decoded: retired.keyframes_decoded,
            video_freeze_count: retired.freeze_count,
            video_freeze_duration: retired.freezes_duration,
            video_packets_lost_before_recovery: retired.packets_lost_before_recovery,
            video_packets_lost_after_recovery: retired.packets_lost_after_recovery,
            ..RemoteStats::default()
        };
        if let Some(stats) = video.stats(now) {
            fields.video_fps = stats.fps;
            fields.video_frames_decoded = stats.frames_decoded;
            fields.video_keyframes_decoded = stats.keyframes_decoded;
            fields.video_freeze_count = stats.freeze_count;
            fields.video_freeze_duration = stats.total_freezes_duration;
            fields.video_receive_bps = stats.receive_bps;
            fields.video_packets_lost_before_recovery = stats.packets_lost_before_recovery;
            fields.video_packets_lost_after_recovery = stats.packets_lost_after_recovery;
        }
        fields
    }

    /// Keeps `now` monotonic: an earlier instant than one already seen is taken as the
    /// latest seen (callers' clocks may step; components must not see time go back).
    fn advance(&mut self, now: Instant) -> Instant {
        let now = now.max(self.now);
        self.now = now;
        now
    }

    fn push_output(&mut self, output: Output) {
        if self.outputs.len() >= MAX_PENDING_OUTPUTS {
            // Drop the oldest datagram: a stale datagram is worth less than a fresh one,
            // and an event (a remote's video available, say) is never sent again. Only a
            // queue of nothing but events loses its oldest event.
            let oldest = self
                .outputs
                .iter()
                .position(|o| matches!(o, Output::Transmit(_)))
                .unwrap_or(0);
            if let Some(Output::Transmit(buffer)) = self.outputs.remove(oldest) {
                self.recycle(buffer);
            }
            self.dropped_outputs += 1;
        }
        self.outputs.push_back(output);
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM_BYTES))
    }
    /// Applies the policy's settings to the encoders.
    fn configure(&mut self, next: AudioRedundancy, first: bool) -> Result<()> {
        let old = self.settings;
        self.encoder.set_bitrate(next.opus_bitrate)?;
        self.encoder.set_inband_fec(next.inband_fec)?;
        self.encoder
            .set_packet_loss_percent(next.expected_loss_pct)?;
        self.encoder.set_dred_duration(next.dred)?;
        if next.red_bitrate > 0 {
            self.copy_encoder.set_bitrate(next.red_bitrate)?;
        }
        if first || next.red_depth != old.red_depth {
            self.red = RedEncoder::new(next.red_depth)?;
        }
        self.settings = next;
        Ok(())
    }

    /// Encodes the captured 20 ms and queues its packet (and copies) for the pacer.
    fn packetize(&mut self, level: u8, now: Instant) -> Result<()> {
        let settings = self.settings;
        let cheap_copies = settings.red_depth > 0 && settings.red_bitrate < settings.opus_bitrate;
        // Digital silence once the encoder is in DTX: its output is known (the DTX frame
        // again, with a comfort-noise update of silence now and then), so the encoders
        // are not run; a DTX frame goes out every [`DTX_KEEPALIVE_PACKETS`] so that the
        // receivers keep the stream available. (The encoders' state is that of silence
        // already: they coded the silence that led into DTX.)
        let silent = self.config.dtx
            && self.last_dtx
            && self.gated_frames >= (PACKET_SAMPLES / FRAME_SAMPLES) as u32
            && self.dtx_frame_len > 0;
        let (len, copy_len) = if silent {
            let len = self.dtx_frame_len;
            self.opus[..len].copy_from_slice(&self.dtx_frame[..len]);
            self.copy[..len].copy_from_slice(&self.dtx_frame[..len]);
            (len, len)
        } else {
            let len = self.encoder.encode(&self.capture, &mut self.opus)?;
            // The copy encoder codes every frame while RED copies are cheaper than the
            // primary, so that its state is warm when a frame is needed.
            let copy_len = if cheap_copies {
                self.copy_encoder.encode(&self.capture, &mut self.copy)?
            } else {
                0
            };
            if len <= self.dtx_frame.len() {
                self.dtx_frame[..len].copy_from_slice(&self.opus[..len]);
                self.dtx_frame_len = len;
            }
            (len, copy_len)
        };
        // DTX: Opus codes silence as 1-2 byte frames; the first is sent (it tells the
        // receiver to play comfort noise), the rest are not, except the encoder's own
        // comfort-noise updates (full frames every 400 ms), as libwebrtc does.
        let dtx_frame = self.config.dtx && len <= 2;
        let skip = dtx_frame
            && self.last_dtx
            && (!silent || self.packets_skipped + 1 < DTX_KEEPALIVE_PACKETS);
        self.last_dtx = dtx_frame;
        self.packets_skipped = if skip { self.packets_skipped + 1 } else { 0 };
        if self.muted || skip {
            // Nothing leaves, but the RTP clock runs on (RFC 3550: the timestamp counts
            // sampling instants, sent or not), and the RED history is dropped (once per
            // gap) so that no stale frame travels after the gap: RED blocks then never
            // span one, and the receiver's sequence arithmetic for them holds.
            if !self.send_gap {
                self.red = RedEncoder::new(settings.red_depth)?;
                self.send_gap = true;
            }
            return Ok(());
        }
        self.send_gap = false;
        let mut payload = self.buffer();
        let payload_type = if settings.red_depth == 0 {
            payload.extend_from_slice(&self.opus[..len]);
            OPUS_PT
        } else {
            let copy = if cheap_copies {
                &self.copy[..copy_len]
            } else {
                &self.opus[..len]
            };
            self.red.encode_with_copy(
                OPUS_PT,
                self.timestamp,
                &self.opus[..len],
                copy,
                &mut payload,
            )?;
            RED_PT
        };
        let level = AudioLevel::new(self.speaking, level.min(127))?;
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        let copies = settings.packet_copies.max(1);
        for c in 1..copies {
            if self.copies.len() >= MAX_PENDING_COPIES {
                break;
            }
            let mut copy = self.buffer();
            copy.extend_from_slice(&payload);
            self.copies.push_back((
                now + settings.copy_spacing * c,
                Pending {
                    sequence,
                    timestamp: self.timestamp,
                    payload_type,
                    level,
                    payload: copy,
                },
            ));
        }
        self.enqueue(
            Pending {
                sequence,
                timestamp: self.timestamp,
                payload_type,
                level,
                payload,
            },
            now,
        );
        Ok(())
    }

    fn enqueue(&mut self, pending: Pending, now: Instant) {
        // Header, two extension elements in a one-byte block: what the RTP packet will be.
        let size = RTP_OVERHEAD + pending.payload.len();
        if let Err(dropped) =
            self.pacer
                .enqueue(Queued::Audio(pending), size, PacketClass::Audio, now)
        {
            self.recycle_queued(dropped.packet);
        }
    }

    /// Gives a packet the pacer dropped back to its pool.
    fn recycle_queued(&mut self, queued: Queued) {
        match queued {
            Queued::Audio(pending) => self.recycle(pending.payload),
            Queued::Video(packet) => match &mut self.video_send {
                Some(video) => video.recycle(packet.data),
                None => self.recycle(packet.data),
            },
        }
    }

    /// What audio asks of the target: the policy's primary with its packet headers, and
    /// its redundancy.
    fn audio_demand(&self) -> AudioDemand {
        let packets_per_second = u64::from(self.settings.packet_copies.max(1))
            * u64::from(SAMPLE_RATE)
            / PACKET_SAMPLES as u64;
        let overhead = packets_per_second * RTP_OVERHEAD as u64 * 8;
        let total = u64::from(self.settings.bitrate());
        let primary = u64::from(self.settings.opus_bitrate).min(total);
        AudioDemand {
            base_bps: primary + overhead,
            redundancy_bps: total - primary,
        }
    }

    /// Hands the limiting receiver's target to the video send path with audio's demand
    /// (audio first, video's ladder on the rest), and its packets to the pacer.
    fn update_video_rate(&mut self, now: Instant) -> Result<()> {
        let target = self
            .receivers
            .limiting(now)
            .map_or(self.config.controller.start_bps, |c| c.target_bps());
        let demand = self.audio_demand();
        if let Some(video) = &mut self.video_send {
            video.set_audio_demand(demand);
            video.set_target(target, now)?;
        }
        Ok(())
    }

    /// The pacer's rate: the limiting receiver's controller's, but never below
    /// [`AUDIO_PACING_HEADROOM`] times what the audio policy sends with its RTP overhead,
    /// so that audio never waits behind its own rate when its budget floor exceeds the
    /// target.
    fn pacing_bps(&self, now: Instant) -> u64 {
        let packets_per_second = u64::from(self.settings.packet_copies.max(1))
            * u64::from(SAMPLE_RATE)
            / PACKET_SAMPLES as u64;
        let audio =
            u64::from(self.settings.bitrate()) + packets_per_second * RTP_OVERHEAD as u64 * 8;
        self.receivers
            .limiting(now)
            .map_or(0, tincan_abr::SendSideController::pacing_bps)
            .max(audio * AUDIO_PACING_HEADROOM)
    }

    /// Sends what the pacer releases, due copies, feedback, reports; runs the timers.
    fn drive(&mut self, now: Instant) -> Result<()> {
        let now = self.advance(now);
        while let Some((due, _)) = self.copies.front() {
            if *due > now {
                break;
            }
            if let Some((_, pending)) = self.copies.pop_front() {
                self.enqueue(pending, now);
            }
        }
        // The limiting controller's probe clusters go to the pacer, which fills them with
        // media and padding on the video's RTX stream; without video to pad with they are
        // dropped (the controller grows from the media's own feedback).
        // Worth it only while video could use more and no receiver's REMB is what holds the
        // rate (probing past a REMB would only spend padding).
        let remb_bound = self.receivers.limiting(now).is_some_and(|c| {
            c.stats()
                .remb_bps
                .is_some_and(|remb| c.target_bps() >= remb)
        });
        let can_probe = !remb_bound
            && self
                .video_send
                .as_ref()
                .is_some_and(|v| v.can_pad() && v.wants_more_rate());
        let pacer = &mut self.pacer;
        self.receivers
            .handle_timeout(now, can_probe, |cluster| pacer.start_probe(cluster));
        if self.next_video_rate.is_some_and(|t| t <= now) {
            self.update_video_rate(now)?;
            self.next_video_rate = Some(now + VIDEO_RATE_INTERVAL);
        }
        if let Some(video) = &mut self.video_send
            && video.poll_timeout().is_some_and(|t| t <= now)
        {
            video.handle_timeout(now);
        }
        self.queue_video(now);
        self.pacer.set_rates(self.pacing_bps(now), 0);
        loop {
            match self.pacer.poll(now) {
                PacerOutput::Send {
                    packet: Queued::Audio(packet),
                    probe_cluster,
                    ..
                } => self.transmit_rtp(packet, probe_cluster, now)?,
                PacerOutput::Send {
                    packet: Queued::Video(packet),
                    probe_cluster,
                    ..
                } => self.transmit_video(packet, probe_cluster, now),
                PacerOutput::Dropped(dropped) => self.recycle_queued(dropped.packet),
                PacerOutput::Padding {
                    size_bytes,
                    probe_cluster,
                } => {
                    if let Some(packet) = self
                        .video_send
                        .as_mut()
                        .and_then(|v| v.padding_packet(size_bytes))
                    {
                        self.transmit_video(packet, probe_cluster, now);
                    }
                }
                PacerOutput::Timeout(_) | PacerOutput::Idle => break,
            }
        }
        self.remote_video_timers(now);
        for i in 0..self.remotes.len() {
            if self.remotes[i]
                .feedback
                .poll_timeout()
                .is_none_or(|t| t > now)
            {
                continue;
            }
            self.rtcp.clear();
            if self.remotes[i]
                .feedback
                .poll_feedback(now, &mut self.rtcp)?
                && !self.rtcp.is_empty()
            {
                let mut datagram = self.buffer();
                datagram.extend_from_slice(&self.rtcp);
                self.push_output(Output::Transmit(datagram));
            }
        }
        if self.next_rtcp.is_some_and(|t| t <= now) {
            self.send_report(now)?;
            self.update_video_rtt(now);
            self.next_rtcp = Some(now + RTCP_INTERVAL);
        }
        if self.next_policy.is_some_and(|t| t <= now) {
            self.update_policy(now)?;
            self.next_policy = Some(now + POLICY_INTERVAL);
        }
        if self.next_rate.is_some_and(|t| t <= now) {
            let secs = RATE_WINDOW.as_secs_f64();
            self.send_bps = (self.bytes_sent_window as f64 * 8.0 / secs) as u64;
            self.receive_bps = (self.bytes_received_window as f64 * 8.0 / secs) as u64;
            self.bytes_sent_window = 0;
            self.bytes_received_window = 0;
            for remote in &mut self.remotes {
                remote.receive_bps = (remote.bytes_window as f64 * 8.0 / secs) as u64;
                remote.bytes_window = 0;
            }
            self.next_rate = Some(now + RATE_WINDOW);
        }
        if self.next_speaker.is_some_and(|t| t <= now) {
            for remote in &mut self.remotes {
                remote.level_before = remote.level_now;
                remote.level_now = (SILENCE, false);
            }
            if let Some(ssrc) = self.speakers.tick(now) {
                self.push_output(Output::Event(Event::ActiveSpeaker { ssrc }));
            }
            self.next_speaker = Some(now + SPEAKER_TICK);
        }
        self.remote_timers(now);
        if self.next_stats.is_some_and(|t| t <= now) {
            self.update_quality(now);
            let stats = self.stats(now);
            self.push_output(Output::Event(Event::Stats(stats)));
            for i in 0..self.remotes.len() {
                let stats = self.remote_stats_of(&self.remotes[i], now);
                self.push_output(Output::Event(Event::RemoteStats(stats)));
            }
            self.next_stats = Some(now + STATS_INTERVAL);
        }
        Ok(())
    }

    /// Each remote's availability and volume events.
    fn remote_timers(&mut self, now: Instant) {
        for i in 0..self.remotes.len() {
            let mut events: [Option<Event>; 2] = [None, None];
            let remote = &mut self.remotes[i];
            let ssrc = remote.ssrc();
            if remote.audio_deadline().is_some_and(|t| t <= now) {
                remote.available = false;
                remote.loudest = None;
                remote.next_volume = None;
                remote.level_now = (SILENCE, false);
                remote.level_before = (SILENCE, false);
                events[0] = Some(Event::RemoteAudioUnavailable { ssrc });
            }
            if remote.next_volume.is_some_and(|t| t <= now) {
                let volume = remote.loudest.take().map_or(0, level_to_volume);
                remote.last_volume = volume;
                events[1] = Some(Event::RemoteVolume { ssrc, volume });
                remote.next_volume = Some(now + VOLUME_INTERVAL);
            }
            for event in events.into_iter().flatten() {
                self.push_output(Output::Event(event));
            }
        }
    }

    /// Re-evaluates the network quality of every remote and of our own link (every
    /// [`STATS_INTERVAL`], from the interval's figures; `docs/PIPELINE.md` has the
    /// formula); an event for each that changed.
    fn update_quality(&mut self, now: Instant) {
        let fixed = self.fixed_delay();
        for i in 0..self.remotes.len() {
            let rtt = self.remote_rtt(&self.remotes[i]);
            let remote = &mut self.remotes[i];
            let js = *remote.buffer.stats();
            let prior = remote.prior;
            remote.prior = QualityPrior {
                total_samples: js.total_samples_received,
                concealed: js.concealed_samples,
                silent_concealed: js.silent_concealed_samples,
                concealment_events: js.concealment_events,
            };
            let silent_for = remote
                .last_heard
                .unwrap_or(remote.created)
                .max(remote.created);
            let quality = if now.saturating_duration_since(silent_for) >= DOWN_AFTER {
                remote.mos = None;
                NetworkQuality::Down
            } else if remote.rtp.is_none() && rtt.is_none() {
                NetworkQuality::Unknown
            } else {
                // Residual loss: the interval's audible concealment (silent concealment
                // after a mute or before the start is no network loss).
                let total = js.total_samples_received - prior.total_samples;
                let concealed = (js.concealed_samples - prior.concealed)
                    .saturating_sub(js.silent_concealed_samples - prior.silent_concealed);
                let residual = if remote.available && total > 0 {
                    concealed as f64 / total as f64
                } else {
                    0.0
                };
                let events = js.concealment_events - prior.concealment_events;
                let mean_burst = if events > 0 {
                    concealed as f64 / events as f64 / PACKET_SAMPLES as f64
                } else {
                    1.0
                };
                let delay = rtt.map_or(0.0, |r| r.as_secs_f64() / 2.0)
                    + fixed
                    + remote.buffer.target_delay().as_secs_f64();
                let r = quality::r_factor(residual, mean_burst, Duration::from_secs_f64(delay));
                remote.mos = Some(quality::mos_from_r(r));
                NetworkQuality::from_r(r)
            };
            if quality != remote.quality {
                remote.quality = quality;
                let ssrc = remote.ssrc();
                self.push_output(Output::Event(Event::NetworkQuality { ssrc, quality }));
            }
        }
        // Our own link, as the receivers report it: their worst loss (before recovery:
        // the sender cannot know the residual), RTT, and twice their reported jitter as
        // the buffer it needs.
        let heard_any = self.remotes.iter().any(|r| {
            r.last_heard
                .is_some_and(|t| now.saturating_duration_since(t) < DOWN_AFTER)
        });
        let quality = if self.receivers.any_recent(now) {
            let delay = self.rtt(now).map_or(0.0, |r| r.as_secs_f64() / 2.0)
                + fixed
                + 2.0 * self.receivers.jitter_reported(now);
            let r = quality::r_factor(
                self.receivers.loss_reported(now),
                1.0,
                Duration::from_secs_f64(delay),
            );
            NetworkQuality::from_r(r)
        } else if !self.remotes.is_empty()
            && !heard_any
            && self
                .remotes
                .iter()
                .all(|r| now.saturating_duration_since(r.created) >= DOWN_AFTER)
        {
            NetworkQuality::Down
        } else {
            NetworkQuality::Unknown
        };
        if quality != self.local_quality {
            self.local_quality = quality;
            self.push_output(Output::Event(Event::NetworkQuality {
                ssrc: self.config.local_ssrc,
                quality,
            }));
        }
    }

    fn next_deadline(&self) -> Instant {
        let now = self.now;
        let remotes = self
            .remotes
            .iter()
            .flat_map(|r| [r.next_volume, r.audio_deadline(), r.feedback.poll_timeout()]);
        [
            self.next_rtcp,
            self.next_policy,
            self.next_rate,
            self.next_stats,
            self.next_speaker,
            self.receivers.poll_timeout(),
            self.pacer.poll_timeout(now),
            self.copies.front().map(|(t, _)| *t),
            self.next_video_rate,
            self.video_send
                .as_ref()
                .and_then(VideoSendPath::poll_timeout),
        ]
        .into_iter()
        .chain(remotes)
        .chain(self.remote_video.iter().flat_map(|v| {
            [
                v.deadline(),
                v.path.as_ref().and_then(VideoReceivePath::poll_timeout),
            ]
        }))
        .flatten()
        .min()
        .unwrap_or(now + RTCP_INTERVAL)
        .max(now)
    }
}

impl Session {
    /// Our NTP clock: time since the session's start (only differences of our own
    /// timestamps are ever compared, in the RTT).
    fn ntp(&self, now: Instant) -> Ntp64 {
        Ntp64::from_duration(now.saturating_duration_since(self.epoch))
    }

    /// Builds and emits one RTP packet the pacer released, numbered with the next
    /// transport-wide sequence number.
    fn transmit_rtp(
        &mut self,
        pending: Pending,
        probe_cluster: Option<u32>,
        now: Instant,
    ) -> Result<()> {
        let transport_seq = self.transport_seq;
        self.transport_seq = self.transport_seq.wrapping_add(1);
        let level = pending.level.to_bytes();
        let tcc = TransportCc(transport_seq).to_bytes();
        let elements = [
            Extension::new(AUDIO_LEVEL_ID, &level),
            Extension::new(TRANSPORT_CC_ID, &tcc),
        ];
        let mut datagram = self.buffer();
        let built = RtpPacketBuilder::new(
            pending.payload_type,
            pending.sequence,
            pending.timestamp,
            self.config.local_ssrc,
        )
        .extensions(&elements)
        .payload(&pending.payload)
        .write_vec(&mut datagram);
        self.recycle(pending.payload);
        built?;
        self.receivers.on_packet_sent(SentPacket {
            transport_seq,
            size_bytes: datagram.len(),
            send_time: now,
            probe_cluster,
            class: PacketClass::Audio,
        });
        self.packets_sent += 1;
        self.octets_sent += (datagram.len() - RTP_OVERHEAD.min(datagram.len())) as u64;
        self.bytes_sent_window += datagram.len() as u64;
        self.sent_since_report = true;
        self.push_output(Output::Transmit(datagram));
        Ok(())
    }

    /// Emits one video packet the pacer released, numbered with the next transport-wide
    /// sequence number.
    fn transmit_video(
        &mut self,
        mut packet: OutgoingPacket,
        probe_cluster: Option<u32>,
        now: Instant,
    ) {
        let transport_seq = self.transport_seq;
        self.transport_seq = self.transport_seq.wrapping_add(1);
        packet.set_transport_sequence(transport_seq);
        self.receivers.on_packet_sent(SentPacket {
            transport_seq,
            size_bytes: packet.data.len(),
            send_time: now,
            probe_cluster,
            class: packet.class,
        });
        self.bytes_sent_window += packet.data.len() as u64;
        self.video_sent_since_report |= packet.class == PacketClass::Video;
        self.push_output(Output::Transmit(packet.data));
    }

    /// Runs each remote's video receive path's timers, and its availability.
    fn remote_video_timers(&mut self, now: Instant) {
        for i in 0..self.remote_video.len() {
            let video = &mut self.remote_video[i];
            if let Some(path) = &mut video.path
                && path.poll_timeout().is_some_and(|t| t <= now)
            {
                path.handle_timeout(now);
                self.after_remote_video(i, now);
            }
            let video = &mut self.remote_video[i];
            if video.deadline().is_some_and(|t| t <= now) {
                video.available = false;
                // The sender stopped (camera off, its call to audio) or the path is down:
                // the gap is a pause of the video, not a freeze.
                if let Some(path) = &mut video.path {
                    path.mark_paused();
                }
                let ssrc = video.audio_ssrc;
                self.push_output(Output::Event(Event::RemoteVideoUnavailable { ssrc }));
            }
        }
    }

    /// After remote video `i`'s path ran: its feedback (NACK, PLI) out, and the events
    /// its new pictures give (available, resolution).
    fn after_remote_video(&mut self, i: usize, now: Instant) {
        loop {
            let Some(path) = self.remote_video.get_mut(i).and_then(|v| v.path.as_mut()) else {
                return;
            };
            if !path.poll_rtcp(&mut self.rtcp) {
                break;
            }
            let mut datagram = self.buffer();
            datagram.extend_from_slice(&self.rtcp);
            self.push_output(Output::Transmit(datagram));
        }
        let Some(video) = self.remote_video.get_mut(i) else {
            return;
        };
        let Some(path) = &video.path else {
            return;
        };
        let decoded = path.frames_decoded();
        if decoded == video.frames_seen {
            return;
        }
        video.frames_seen = decoded;
        let Some(resolution) = path.resolution() else {
            return;
        };
        let ssrc = video.audio_ssrc;
        let event = if !video.available {
            video.available = true;
            video.last_packet = Some(video.last_packet.unwrap_or(now));
            Some(Event::RemoteVideoAvailable { ssrc, resolution })
        } else if video.resolution != Some(resolution) {
            Some(Event::RemoteVideoResolution { ssrc, resolution })
        } else {
            None
        };
        video.resolution = Some(resolution);
        if let Some(event) = event {
            self.push_output(Output::Event(event));
        }
    }

    /// Sends one compound: an SR (when we sent media since the last report) or an RR, with
    /// a report block about each remote's stream once it has sent (a relay hands the SR to
    /// every receiver and each report block to the stream's owner).
    fn send_report(&mut self, now: Instant) -> Result<()> {
        let ntp = self.ntp(now);
        let mut blocks = [ReportBlock {
            ssrc: 0,
            fraction_lost: 0,
            cumulative_lost: 0,
            highest_sequence: 0,
            jitter: 0,
            last_sr: 0,
            delay_since_last_sr: 0,
        }; 2 * MAX_REMOTES];
        let mut count = 0;
        for remote in &mut self.remotes {
            let ssrc = remote.ssrc();
            let last_sr = remote.last_sr;
            let Some(rtp) = &mut remote.rtp else {
                continue;
            };
            let expected = rtp.expected();
            let lost_total = expected - rtp.received as i64;
            let expected_interval = expected - rtp.expected_prior;
            let received_interval = rtp.received as i64 - rtp.received_prior as i64;
            let lost_interval = expected_interval - received_interval;
            rtp.expected_prior = expected;
            rtp.received_prior = rtp.received;
            remote.recent_loss = if expected_interval > 0 {
                lost_interval.max(0) as f64 / expected_interval as f64
            } else {
                0.0
            };
            let fraction_lost = if expected_interval > 0 && lost_interval > 0 {
                ((lost_interval << 8) / expected_interval).min(255) as u8
            } else {
                0
            };
            let (last_sr, delay_since_last_sr) = match last_sr {
                Some((middle, at)) => {
                    let delay = now.saturating_duration_since(at).as_secs_f64() * 65_536.0;
                    (middle, delay.min(f64::from(u32::MAX)) as u32)
                }
                None => (0, 0),
            };
            if let Some(block) = blocks.get_mut(count) {
                *block = ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost: lost_total.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                        as i32,
                    highest_sequence: rtp.highest_ext as u32,
                    jitter: rtp.jitter as u32,
                    last_sr,
                    delay_since_last_sr,
                };
                count += 1;
            }
        }
        // A block about each remote's video (an RR/SR holds 31: 15 audio and 15 video fit).
        for video in &mut self.remote_video {
            if let Some(block) = video.path.as_mut().and_then(|p| p.report_block(now))
                && let Some(slot) = blocks.get_mut(count)
            {
                *slot = block;
                count += 1;
            }
        }
        for i in 0..self.remotes.len() {
            self.update_recovery_delay(i);
        }
        // The video stream's own SR, when video was sent since the last report: its RTP
        // timestamp on the 90 kHz clock against the same NTP clock (lip sync, and the
        // receivers' LSR for their RTT).
        let video_sr = match &self.video_send {
            Some(video) if self.video_sent_since_report => {
                let stats = video.stats_at(now);
                Some((
                    video.config().media_ssrc,
                    SenderInfo {
                        ntp,
                        rtp_timestamp: video.rtp_timestamp_at(now),
                        packet_count: stats.packets_sent as u32,
                        octet_count: stats.bytes_sent as u32,
                    },
                ))
            }
            _ => None,
        };
        let shares = self.update_shares();
        self.rtcp.clear();
        let mut writer = RtcpWriter::new(&mut self.rtcp);
        if self.sent_since_report {
            let info = SenderInfo {
                ntp,
                rtp_timestamp: self.timestamp,
                packet_count: self.packets_sent as u32,
                octet_count: self.octets_sent as u32,
            };
            writer.sender_report(self.config.local_ssrc, &info, &blocks[..count])?;
        } else {
            writer.receiver_report(self.config.local_ssrc, &blocks[..count])?;
        }
        if let Some((ssrc, info)) = video_sr {
            writer.sender_report(ssrc, &info, &[])?;
        }
        for video in &self.remote_video[..shares] {
            if let Some(share) = video.share_bps {
                writer.remb(
                    self.config.local_ssrc,
                    share,
                    &[video.audio_ssrc, video.media_ssrc],
                )?;
            }
        }
        self.sent_since_report = false;
        self.video_sent_since_report = false;
        let mut datagram = self.buffer();
        datagram.extend_from_slice(&self.rtcp);
        self.push_output(Output::Transmit(datagram));
        Ok(())
    }

    /// Splits the receive budget between the remotes with video ([`crate::split`]) into
    /// their `share_bps`; returns how many remotes (the first ones) are to be told theirs,
    /// each by a REMB naming its audio and video SSRCs in the report (the relay hands it to
    /// their owner). None while the call is audio only or without a budget.
    fn update_shares(&mut self) -> usize {
        let budget = self.receive_budget_bps;
        if budget == 0 || !self.video_call || self.remote_video.is_empty() {
            return 0;
        }
        if let Some(speaker) = self.speakers.current()
            && speaker != self.config.local_ssrc
        {
            self.main_speaker = Some(speaker);
        }
        let main = self.pinned_video.or(self.main_speaker);
        let mut requests = [ShareRequest {
            watched: false,
            main_view: false,
        }; MAX_REMOTES];
        let count = self.remote_video.len().min(MAX_REMOTES);
        for (request, video) in requests.iter_mut().zip(&self.remote_video) {
            *request = ShareRequest {
                watched: video.subscribed,
                main_view: main == Some(video.audio_ssrc),
            };
        }
        let mut shares = [0u64; MAX_REMOTES];
        split_receive_budget(budget, &requests[..count], &mut shares[..count]);
        for (video, &share) in self.remote_video.iter_mut().zip(&shares[..count]) {
            video.share_bps = Some(share);
        }
        count
    }

    /// Feeds the loss the worst receiver's transport-cc feedback showed since the last
    /// update to the audio policy, with its RTT and the limiting target as budget.
    fn update_policy(&mut self, now: Instant) -> Result<()> {
        let Some(report) = self.receivers.take_loss_report(now) else {
            return Ok(());
        };
        let target = self
            .receivers
            .limiting(now)
            .map_or(self.config.controller.start_bps, |c| c.target_bps());
        let budget = target
            .max(self.config.min_audio_budget_bps)
            .min(MAX_AUDIO_BUDGET_BPS) as u32;
        // The receivers' buffers are theirs; ours for the first remote is the best guess of
        // what theirs wait (the same configuration on similar paths).
        if let Some(remote) = self.remotes.first() {
            self.policy.set_jitter_delay(remote.buffer.target_delay());
        }
        let next = self.policy.update(report, budget, now);
        if next != self.settings {
            self.configure(next, false)?;
        }
        // Video's protection follows the same worst receiver's loss.
        if let Some(video) = &mut self.video_send {
            video.handle_loss_report(report, now);
        }
        Ok(())
    }

    /// Hands the RTTs to the video paths (each second, with the reports).
    fn update_video_rtt(&mut self, now: Instant) {
        if let Some(rtt) = self.rtt(now)
            && let Some(video) = &mut self.video_send
        {
            video.set_rtt(rtt);
        }
        for i in 0..self.remote_video.len() {
            let audio_ssrc = self.remote_video[i].audio_ssrc;
            let rtt = self
                .remote_index(audio_ssrc)
                .and_then(|r| self.remote_rtt(&self.remotes[r]));
            if let Some(rtt) = rtt
                && let Some(path) = &mut self.remote_video[i].path
            {
                path.set_rtt(rtt);
            }
        }
    }

    fn receive(&mut self, data: &[u8], now: Instant) -> Result<()> {
        if data.len() < 2 || data.len() > MAX_DATAGRAM_BYTES {
            return Err(PipelineError::BadDatagram {
                len: data.len(),
                reason: format!("length outside 2..={MAX_DATAGRAM_BYTES}"),
            });
        }
        self.bytes_received_window += data.len() as u64;
        // RFC 5761 §4: payload types 64-95 (marker bit masked) are RTCP's 192-223.
        if (64..96).contains(&(data[1] & 0x7F)) {
            self.receive_rtcp(data, now)
        } else {
            self.receive_rtp(data, now)
        }
    }

    /// Notes that `ssrc`'s participant was heard (any datagram).
    fn heard(&mut self, ssrc: u32, now: Instant) {
        if let Some(remote) = self.remotes.iter_mut().find(|r| r.owns(ssrc)) {
            remote.heard(now);
        }
    }

    fn receive_rtcp(&mut self, data: &[u8], now: Instant) -> Result<()> {
        let compound = RtcpCompound::parse(data)?;
        let arrival = self.ntp(now);
        let local = self.config.local_ssrc;
        let local_video = self.config.video.as_ref().map(|v| v.media_ssrc);
        for packet in compound.packets() {
            // One bad packet in a compound does not spoil the others.
            let Ok(packet) = packet else {
                self.bad_datagrams += 1;
                continue;
            };
            if rtcp_sender(&packet).is_some_and(|s| self.departed(s, now)) {
                continue;
            }
            // NACK, PLI, FIR about our video go to its send path.
            if let Some(video) = &mut self.video_send {
                let sender = match &packet {
                    RtcpPacket::Nack(p) => Some(p.sender_ssrc),
                    RtcpPacket::Pli(p) => Some(p.sender_ssrc),
                    RtcpPacket::Fir(p) => Some(p.sender_ssrc),
                    _ => None,
                };
                if let Some(sender) = sender
                    && video.handle_rtcp_packet(&packet, now)
                {
                    self.heard(sender, now);
                    continue;
                }
            }
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    self.heard(sr.ssrc, now);
                    if let Some(remote) = self.remotes.iter_mut().find(|r| r.ssrc() == sr.ssrc) {
                        remote.last_sr = Some((sr.info.ntp.middle32(), now));
                    }
                    if let Some(path) = self
                        .remote_video
                        .iter_mut()
                        .find(|v| v.media_ssrc == sr.ssrc)
                        .and_then(|v| v.path.as_mut())
                    {
                        path.handle_sender_report(sr.info.ntp, now);
                    }
                    for block in sr.report_blocks() {
                        self.on_report_block(sr.ssrc, block, arrival, now)?;
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    self.heard(rr.ssrc, now);
                    for block in rr.report_blocks() {
                        self.on_report_block(rr.ssrc, block, arrival, now)?;
                    }
                }
                // Feedback about our stream (media SSRC ours, or 0 from a sender that does
                // not fill it in).
                RtcpPacket::TransportCc(feedback)
                    if feedback.media_ssrc == local || feedback.media_ssrc == 0 =>
                {
                    self.heard(feedback.sender_ssrc, now);
                    self.receivers
                        .on_transport_feedback(feedback.sender_ssrc, &feedback, now)?;
                }
                // A receiver's limit on what we send it (its share of its downlink),
                // naming our audio or video SSRC.
                RtcpPacket::Remb(remb)
                    if remb.ssrcs().any(|s| s == local || Some(s) == local_video) =>
                {
                    self.heard(remb.sender_ssrc, now);
                    if let Some(r) = self.receivers.heard(remb.sender_ssrc, now)? {
                        r.controller.on_remb(remb.bitrate_bps, now);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `ssrc` belonged to a remote removed within [`RECEIVER_TIMEOUT`].
    fn departed(&self, ssrc: u32, now: Instant) -> bool {
        self.departed
            .iter()
            .any(|&(s, at)| s == ssrc && now.saturating_duration_since(at) < RECEIVER_TIMEOUT)
    }

    /// A report block from `sender`: about our stream, it gives that receiver's RTT, loss
    /// and jitter; about another stream (a relay may forward a compound whole), nothing.
    fn on_report_block(
        &mut self,
        sender: u32,
        block: ReportBlock,
        arrival: Ntp64,
        now: Instant,
    ) -> Result<()> {
        if let Some(video) = &mut self.video_send
            && block.ssrc == video.config().media_ssrc
        {
            // About our video: its loss for the video policy, and the RTT (its LSR is our
            // video SR's, on the same NTP clock).
            video.handle_report_block(&block, now);
            if let Some(rtt) = block.rtt(arrival)
                && let Some(r) = self.receivers.heard(sender, now)?
            {
                r.rtt = Some(rtt);
                r.controller.on_rtt(rtt, now);
            }
            return Ok(());
        }
        if block.ssrc != self.config.local_ssrc {
            return Ok(());
        }
        if let Some(r) = self.receivers.heard(sender, now)? {
            r.loss_reported = f64::from(block.fraction_lost) / 256.0;
            r.jitter_reported = f64::from(block.jitter) / f64::from(SAMPLE_RATE);
            if let Some(rtt) = block.rtt(arrival) {
                r.rtt = Some(rtt);
                r.controller.on_rtt(rtt, now);
            }
        }
        Ok(())
    }

    /// The remote sending as `ssrc`: known, or new when undeclared SSRCs are accepted and
    /// there is room.
    fn remote_for(&mut self, ssrc: u32, now: Instant) -> Result<usize> {
        if let Some(i) = self.remote_index(ssrc) {
            return Ok(i);
        }
        if !self.config.accept_undeclared_remotes || self.departed(ssrc, now) {
            return Err(PipelineError::UnknownRemote { ssrc });
        }
        if self.remotes.len() >= MAX_REMOTES {
            return Err(PipelineError::TooManyRemotes {
                ssrc,
                limit: MAX_REMOTES,
            });
        }
        let stream = RemoteStream::new(
            RemoteParticipant::new(ssrc),
            false,
            self.config.local_ssrc,
            &self.config.jitter,
            now,
        )?;
        self.mixer.reset_source(self.remotes.len());
        self.remotes.push(stream);
        Ok(self.remotes.len() - 1)
    }

    /// RTP on one of remote video `v`'s streams: its transport-wide sequence number to
    /// the remote's feedback generator (always: its sender's congestion control counts on
    /// feedback about every packet), then to its receive path when the call has video and
    /// the remote is subscribed.
    fn receive_video(
        &mut self,
        v: usize,
        packet: &RtpPacket<'_>,
        data: &[u8],
        now: Instant,
    ) -> Result<()> {
        let known = KnownExtensions::read(packet, &self.extensions)?;
        let audio_ssrc = self.remote_video[v].audio_ssrc;
        if let Some(r) = self.remote_index(audio_ssrc) {
            let remote = &mut self.remotes[r];
            remote.heard(now);
            if let Some(tcc) = known.transport_cc {
                remote.feedback.on_packet_received(tcc.0, now);
            }
        }
        let local_ssrc = self.config.local_ssrc;
        let (nack, fec) = self
            .config
            .video
            .as_ref()
            .map_or((true, true), |c| (c.nack, c.fec));
        let rtt = self
            .remote_index(audio_ssrc)
            .and_then(|r| self.remote_rtt(&self.remotes[r]));
        let receiving = self.video_call && self.video_send.is_some();
        let video = &mut self.remote_video[v];
        if !receiving || !video.subscribed {
            video.packets_ignored += 1;
            self.video_packets_ignored += 1;
            return Ok(());
        }
        if video.fec_ssrc != Some(packet.ssrc()) {
            video.last_packet = Some(now);
        }
        let path = match &mut video.path {
            Some(path) => path,
            None => {
                let mut path = VideoReceivePath::new(video.receive_config(local_ssrc, nack, fec))?;
                if let Some(rtt) = rtt {
                    path.set_rtt(rtt);
                }
                video.path.insert(path)
            }
        };
        let result = path.handle_rtp(data, now);
        if std::mem::take(&mut video.needs_keyframe) {
            // A new path (see `RemoteVideo::needs_keyframe`): the sender's next keyframe
            // may be far off.
            let media_ssrc = video.media_ssrc;
            let mut datagram = self.buffer();
            let written = RtcpWriter::new(&mut datagram).pli(local_ssrc, media_ssrc);
            match written {
                Ok(()) => self.push_output(Output::Transmit(datagram)),
                Err(_) => self.recycle(datagram),
            }
        }
        self.after_remote_video(v, now);
        result.map_err(PipelineError::from)
    }

    fn receive_rtp(&mut self, data: &[u8], now: Instant) -> Result<()> {
        let packet = RtpPacket::parse(data)?;
        if let Some(v) = self.remote_video.iter().position(|v| v.owns(packet.ssrc())) {
            return self.receive_video(v, &packet, data, now);
        }
        let payload_type = packet.payload_type();
        if payload_type != OPUS_PT && payload_type != RED_PT {
            return Err(PipelineError::UnknownPayloadType { payload_type });
        }
        let known = KnownExtensions::read(&packet, &self.extensions)?;
        let ssrc = packet.ssrc();
        let index = self.remote_for(ssrc, now)?;
        self.packets_received += 1;
        let seq = packet.sequence_number();
        let timestamp = packet.timestamp().0;
        let epoch = self.epoch;
        let remote = &mut self.remotes[index];
        remote.packets_received += 1;
        remote.bytes_window += data.len() as u64;
        remote.heard(now);
        if let Some(tcc) = known.transport_cc {
            remote.feedback.on_packet_received(tcc.0, now);
        }
        let rtp = remote.rtp.get_or_insert_with(|| RtpState::new(seq));
        let ext = rtp.seq.extend(seq);
        if rtp.mark_seen(ext) {
            rtp.received += 1;
        }
        remote.last_arrival = Some(now);
        // RFC 3550 A.8: interarrival jitter in timestamp units.
        let arrival_ticks =
            (now.saturating_duration_since(epoch).as_secs_f64() * f64::from(SAMPLE_RATE)) as i64;
        let transit = arrival_ticks - i64::from(timestamp);
        if let Some(last) = rtp.last_transit {
            let d = (transit - last).abs() as f64;
            rtp.jitter += (d - rtp.jitter) / 16.0;
        }
        rtp.last_transit = Some(transit);
        let quiet = known
            .audio_level
            .is_some_and(|l| !l.voice && l.level() >= DTX_GATE_LEVEL);
        if let Some(level) = known.audio_level {
            let (value, voice) = (level.level(), level.voice);
            remote.loudest = Some(remote.loudest.map_or(value, |l| l.min(value)));
            remote.level_now = (remote.level_now.0.min(value), remote.level_now.1 || voice);
            self.speakers.observe(ssrc, value, voice);
        }
        let remote = &mut self.remotes[index];
        if !remote.available {
            remote.available = true;
            remote.next_volume = Some(now + VOLUME_INTERVAL);
            self.push_output(Output::Event(Event::RemoteAudioAvailable { ssrc }));
        }
        let payload = packet.payload();
        if payload_type == OPUS_PT {
            // Plain Opus: the sender has stopped RED, so its copies are no longer waited for.
            self.remotes[index].in_dtx = payload.len() <= 2;
            self.remotes[index].set_quiet(quiet || payload.len() <= 2)?;
            self.set_red_depth(index, 0);
            self.insert(index, seq, timestamp, payload, false, now)?;
            return Ok(());
        }
        let red = RedPayload::parse(payload)?;
        let mut depth = 0;
        for block in red.redundant() {
            let back = usize::from(block.timestamp_offset).div_ceil(PACKET_SAMPLES);
            depth = depth.max(back);
            if back == 0 || block.data.is_empty() {
                continue;
            }
            // Packets are 20 ms apart with no gaps (no DTX), so a block `back` packets
            // old had the sequence number `back` before this one.
            let sequence = seq.wrapping_sub(back as u16);
            let ts = timestamp.wrapping_sub(u32::from(block.timestamp_offset));
            self.insert(index, sequence, ts, block.data, true, now)?;
        }
        self.set_red_depth(index, depth);
        let primary = red.primary().data;
        self.remotes[index].in_dtx = primary.len() <= 2;
        self.remotes[index].set_quiet(quiet || primary.len() <= 2)?;
        if !primary.is_empty() {
            self.insert(index, seq, timestamp, primary, false, now)?;
        }
        Ok(())
    }

    /// Notes the RED depth of a packet received from remote `index`.
    fn set_red_depth(&mut self, index: usize, depth: usize) {
        if let Some(remote) = self.remotes.get_mut(index)
            && depth != remote.red_depth
        {
            remote.red_depth = depth;
            self.update_recovery_delay(index);
        }
    }

    /// The receiver's recovery delay follows what it sees, since nothing travels in
    /// signalling yet (in the lab the sender's policy tells the receiver): RED blocks up to
    /// `depth` packets old are only useful if the buffer waits that long for them, and one
    /// packet more lets in-band FEC and DRED, carried by the next packet, repair a loss. The
    /// wait is taken when RED arrives or the last report interval lost more than
    /// [`RECOVERY_LOSS_THRESHOLD`]; on a clean path it costs nothing.
    fn update_recovery_delay(&mut self, index: usize) {
        let Some(remote) = self.remotes.get_mut(index) else {
            return;
        };
        let wait = if remote.red_depth > 0 || remote.recent_loss > RECOVERY_LOSS_THRESHOLD {
            remote.red_depth as u32 + 1
        } else {
            0
        };
        let delay = PACKET_DURATION * wait;
        if delay != remote.buffer.config().recovery_delay {
            remote.buffer.set_recovery_delay(delay);
        }
    }

    fn insert(
        &mut self,
        index: usize,
        sequence: SeqNo,
        timestamp: u32,
        payload: &[u8],
        recovered: bool,
        now: Instant,
    ) -> Result<()> {
        let Some(remote) = self.remotes.get_mut(index) else {
            return Ok(());
        };
        let packet = AudioPacket {
            ssrc: remote.ssrc(),
            sequence: sequence.0,
            timestamp,
            payload,
        };
        if recovered {
            remote.buffer.insert_recovered(packet, now)?;
        } else {
            remote.buffer.insert(packet, now)?;
        }
        Ok(())
    }
}
/// The SSRC that sent an RTCP packet.
fn rtcp_sender(packet: &RtcpPacket<'_>) -> Option<u32> {
    match packet {
        RtcpPacket::SenderReport(p) => Some(p.ssrc),
        RtcpPacket::ReceiverReport(p) => Some(p.ssrc),
        RtcpPacket::TransportCc(p) => Some(p.sender_ssrc),
        RtcpPacket::Remb(p) => Some(p.sender_ssrc),
        RtcpPacket::Nack(p) => Some(p.sender_ssrc),
        RtcpPacket::Pli(p) => Some(p.sender_ssrc),
        RtcpPacket::Fir(p) => Some(p.sender_ssrc),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(k: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (k * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
                ((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect()
    }

    /// Drains `session`; returns its datagrams.
    fn drain(session: &mut Session) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Output::Transmit(d) = session.poll_output() {
            out.push(d);
        }
        out
    }

    fn is_rtp(d: &[u8]) -> bool {
        !(64..96).contains(&(d[1] & 0x7F))
    }

    #[test]
    fn volume_maps_the_level_range() {
        assert_eq!(level_to_volume(0), 100);
        assert_eq!(level_to_volume(30), 70);
        assert_eq!(level_to_volume(100), 0);
        assert_eq!(level_to_volume(127), 0);
    }

    #[test]
    fn a_full_output_queue_drops_datagrams_before_events() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        s.outputs.clear();
        s.push_output(Output::Event(Event::RemoteVideoUnavailable { ssrc: 7 }));
        for k in 0..2 * MAX_PENDING_OUTPUTS {
            s.push_output(Output::Transmit(vec![k as u8]));
        }
        assert_eq!(s.outputs.len(), MAX_PENDING_OUTPUTS);
        assert_eq!(s.dropped_outputs, MAX_PENDING_OUTPUTS as u64 + 1);
        // The application that polls late still hears of the event, then the newest
        // datagrams.
        assert!(matches!(
            s.outputs.front(),
            Some(Output::Event(Event::RemoteVideoUnavailable { ssrc: 7 }))
        ));
        assert!(matches!(s.outputs.back(), Some(Output::Transmit(d)) if d[0] == 255));
        // Nothing but events: the oldest event goes.
        s.outputs.clear();
        for ssrc in 0..=MAX_PENDING_OUTPUTS as u32 {
            s.push_output(Output::Event(Event::RemoteVideoUnavailable { ssrc }));
        }
        assert!(matches!(
            s.outputs.front(),
            Some(Output::Event(Event::RemoteVideoUnavailable { ssrc: 1 }))
        ));
    }

    #[test]
    fn wrong_frame_sizes_are_typed_errors() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        assert!(matches!(
            s.push_audio(&[0; 100], t0),
            Err(PipelineError::WrongFrameSize {
                got: 100,
                expected: 480
            })
        ));
        assert!(matches!(
            s.pull_audio(t0, &mut [0; 960]),
            Err(PipelineError::WrongFrameSize {
                got: 960,
                expected: 480
            })
        ));
    }

    #[test]
    fn garbage_is_refused_and_counted() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        assert!(matches!(
            s.handle_input(Input::Receive(&[0x80]), t0),
            Err(PipelineError::BadDatagram { len: 1, .. })
        ));
        // A well-formed RTP packet of a payload type we do not receive.
        let mut rtp = Vec::new();
        RtpPacketBuilder::new(96, 1, 0, 7)
            .payload(&[1, 2, 3])
            .write_vec(&mut rtp)
            .unwrap();
        assert!(matches!(
            s.handle_input(Input::Receive(&rtp), t0),
            Err(PipelineError::UnknownPayloadType { payload_type: 96 })
        ));
        assert_eq!(s.stats(t0).bad_datagrams, 2);
        // And the session goes on.
        s.push_audio(&tone(0), t0).unwrap();
        s.push_audio(&tone(1), t0 + Duration::from_millis(10))
            .unwrap();
        assert_eq!(drain(&mut s).iter().filter(|d| is_rtp(d)).count(), 1);
    }

    #[test]
    fn packets_carry_level_and_transport_sequence() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(0x1234), t0).unwrap();
        let mut packets = Vec::new();
        for k in 0..10 {
            s.push_audio(&tone(k), t0 + Duration::from_millis(10 * k as u64))
                .unwrap();
            packets.extend(drain(&mut s).into_iter().filter(|d| is_rtp(d)));
        }
        assert_eq!(packets.len(), 5);
        let map = ExtensionMap::new()
            .with(AUDIO_LEVEL_ID, ExtensionKind::AudioLevel)
            .unwrap()
            .with(TRANSPORT_CC_ID, ExtensionKind::TransportCc)
            .unwrap();
        for (i, d) in packets.iter().enumerate() {
            let p = RtpPacket::parse(d).unwrap();
            assert_eq!(p.ssrc(), 0x1234);
            assert_eq!(p.sequence_number().0, i as u16);
            assert_eq!(p.timestamp().0, (i * PACKET_SAMPLES) as u32);
            let known = KnownExtensions::read(&p, &map).unwrap();
            assert_eq!(known.transport_cc, Some(TransportCc(i as u16)));
            // A -20 dBov-ish tone: far from silence (127).
            assert!(known.audio_level.unwrap().level() < 40);
        }
    }

    #[test]
    fn muted_sends_no_audio_but_keeps_rtcp() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        s.set_muted(true);
        let (mut rtp, mut rtcp) = (0, 0);
        for k in 0..300 {
            let now = t0 + Duration::from_millis(10 * k as u64);
            s.push_audio(&tone(k), now).unwrap();
            s.handle_input(Input::Timeout, now).unwrap();
            for d in drain(&mut s) {
                if is_rtp(&d) { rtp += 1 } else { rtcp += 1 }
            }
        }
        assert_eq!(rtp, 0);
        assert!(rtcp >= 2, "RTCP every second: {rtcp}");
        s.set_muted(false);
        let now = t0 + Duration::from_secs(3);
        s.push_audio(&tone(0), now).unwrap();
        s.push_audio(&tone(1), now + Duration::from_millis(10))
            .unwrap();
        let sent: Vec<_> = drain(&mut s).into_iter().filter(|d| is_rtp(d)).collect();
        assert_eq!(sent.len(), 1);
        // The RTP clock ran on through the mute.
        assert_eq!(RtpPacket::parse(&sent[0]).unwrap().timestamp().0, 150 * 960);
    }

    #[test]
    fn red_blocks_fill_every_other_lost_packet() {
        let t0 = Instant::now();
        let mut alice = Session::new(SessionConfig::new(1).with_denoise(false), t0).unwrap();
        let mut bob = Session::new(SessionConfig::new(2), t0).unwrap();
        let red = AudioRedundancy {
            red_depth: 1,
            red_bitrate: alice.settings.opus_bitrate,
            ..alice.settings
        };
        alice.configure(red, false).unwrap();
        let mut out = [0i16; FRAME_SAMPLES];
        let mut n = 0;
        for k in 0..200 {
            let now = t0 + Duration::from_millis(10 * k as u64);
            alice.push_audio(&tone(k), now).unwrap();
            for d in drain(&mut alice).into_iter().filter(|d| is_rtp(d)) {
                assert_eq!(d[1] & 0x7F, RED_PT);
                // Every other packet is lost; RED carries each lost frame in the next.
                if n % 2 == 0 {
                    bob.handle_input(Input::Receive(&d), now).unwrap();
                }
                n += 1;
            }
            bob.pull_audio(now, &mut out).unwrap();
        }
        let stats = bob.stats(t0 + Duration::from_secs(2));
        assert!(stats.receive_loss_before_recovery > 0.45);
        assert!(
            stats.receive_loss_after_recovery < 0.05,
            "concealed {}",
            stats.receive_loss_after_recovery
        );
    }

    /// An RTP packet from `ssrc` as a remote would send it.
    fn rtp_from(ssrc: u32, sequence: u16) -> Vec<u8> {
        let mut out = Vec::new();
        RtpPacketBuilder::new(OPUS_PT, sequence, u32::from(sequence) * 960, ssrc)
            .payload(&[0x78, 1, 2, 3])
            .write_vec(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn remotes_are_bounded_declared_and_removed() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        for ssrc in 100..100 + MAX_REMOTES as u32 {
            s.handle_input(Input::Receive(&rtp_from(ssrc, 0)), t0)
                .unwrap();
        }
        assert_eq!(s.remote_ssrcs().count(), MAX_REMOTES);
        assert!(matches!(
            s.handle_input(Input::Receive(&rtp_from(999, 0)), t0),
            Err(PipelineError::TooManyRemotes {
                ssrc: 999,
                limit: MAX_REMOTES
            })
        ));
        assert!(matches!(
            s.add_remote(RemoteParticipant::new(998)),
            Err(PipelineError::TooManyRemotes { .. })
        ));
        let stats = s.stats(t0);
        assert_eq!((stats.refused_packets, stats.bad_datagrams), (1, 0));
        assert!(s.remove_remote(100));
        assert!(!s.remove_remote(100));
        s.add_remote(RemoteParticipant::new(998)).unwrap();
        assert!(s.remote_stats(t0).any(|r| r.ssrc == 998 && r.declared));
        assert!(s.remote_stats(t0).any(|r| r.ssrc == 101 && !r.declared));
        assert!(matches!(
            s.set_remote_volume(5, 50),
            Err(PipelineError::UnknownRemote { ssrc: 5 })
        ));
        assert!(s.set_remote_volume(998, 101).is_err());
        s.set_remote_volume(998, 0).unwrap();
        assert!(
            s.remote_stats(t0)
                .any(|r| r.ssrc == 998 && r.playout_volume == 0)
        );
        // Undeclared SSRCs refused when so configured.
        let mut strict = Session::new(
            SessionConfig::new(1).with_accept_undeclared_remotes(false),
            t0,
        )
        .unwrap();
        assert!(matches!(
            strict.handle_input(Input::Receive(&rtp_from(7, 0)), t0),
            Err(PipelineError::UnknownRemote { ssrc: 7 })
        ));
        strict.add_remote(RemoteParticipant::new(7)).unwrap();
        strict
            .handle_input(Input::Receive(&rtp_from(7, 1)), t0)
            .unwrap();
        assert_eq!(strict.stats(t0).refused_packets, 1);
    }

    #[test]
    fn a_rejoin_starts_fresh() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        s.add_remote(RemoteParticipant::new(5)).unwrap();
        for seq in 0..20 {
            s.handle_input(Input::Receive(&rtp_from(5, seq)), t0)
                .unwrap();
        }
        assert_eq!(s.remote_stats(t0).next().unwrap().packets_received, 20);
        s.add_remote(RemoteParticipant::new(5)).unwrap();
        let fresh = s.remote_stats(t0).next().unwrap();
        assert_eq!(fresh.packets_received, 0);
        assert!(!fresh.audio_available);
        // Its audio was arriving: the application hears that it went.
        let mut unavailable = false;
        while let Some(o) = s.outputs.pop_front() {
            unavailable |= matches!(o, Output::Event(Event::RemoteAudioUnavailable { ssrc: 5 }));
        }
        assert!(unavailable);
    }

    #[test]
    fn a_silent_remote_goes_down_and_its_quality_is_reported() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        s.add_remote(RemoteParticipant::new(5)).unwrap();
        let mut qualities = Vec::new();
        for k in 0..550u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            // Packets for 2 s, then nothing.
            if k < 100 {
                s.handle_input(Input::Receive(&rtp_from(5, k)), now)
                    .unwrap();
            } else {
                s.handle_input(Input::Timeout, now).unwrap();
            }
            while let Some(o) = s.outputs.pop_front() {
                if let Output::Event(Event::NetworkQuality { ssrc: 5, quality }) = o {
                    qualities.push((now - t0, quality));
                }
            }
        }
        // Measured while packets came, down once nothing came for DOWN_AFTER.
        assert!(
            matches!(qualities.first(), Some((_, q)) if *q != NetworkQuality::Down),
            "{qualities:?}"
        );
        let (at, last) = *qualities.last().unwrap();
        assert_eq!(last, NetworkQuality::Down);
        assert!(at >= Duration::from_secs(2) + DOWN_AFTER && at <= Duration::from_secs(10));
        let stats = s.remote_stats(t0 + Duration::from_secs(11)).next().unwrap();
        assert_eq!(stats.quality, NetworkQuality::Down);
        assert_eq!(stats.mos, None);
    }

    #[test]
    fn time_never_goes_back() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        let later = t0 + Duration::from_secs(2);
        s.handle_input(Input::Timeout, later).unwrap();
        // An earlier instant is taken as the latest seen: no panic, no timeout before it.
        s.push_audio(&tone(0), t0).unwrap();
        s.handle_input(Input::Timeout, t0).unwrap();
        drain(&mut s);
        let Output::Timeout(at) = s.poll_output() else {
            panic!("drained")
        };
        assert!(at >= later);
    }

    #[test]
    fn timeouts_are_never_in_the_past() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
        let now = t0 + Duration::from_secs(5);
        s.handle_input(Input::Timeout, now).unwrap();
        drain(&mut s);
        let Output::Timeout(at) = s.poll_output() else {
            panic!("drained")
        };
        assert!(at >= now && at <= now + RTCP_INTERVAL);
    }

    fn video_session(t0: Instant) -> Session {
        let video = VideoSessionConfig::new(0x11, 0x12, 0x13)
            .with_max_resolution(Resolution::new(320, 180).unwrap());
        let mut s = Session::new(SessionConfig::new(0x10).with_video(video), t0).unwrap();
        s.add_remote(RemoteParticipant::new(0x20).with_video_ssrcs(0x21, 0x22, 0x23))
            .unwrap();
        s
    }

    #[test]
    fn video_calls_need_video_and_valid_ssrcs() {
        let t0 = Instant::now();
        let mut audio = Session::new(SessionConfig::new(1), t0).unwrap();
        let picture = VideoFrame::black(Resolution::new(320, 180).unwrap());
        assert!(matches!(
            audio.push_video(&picture, t0),
            Err(PipelineError::VideoNotConfigured)
        ));
        assert!(matches!(
            audio.set_camera(false, t0),
            Err(PipelineError::VideoNotConfigured)
        ));
        assert!(matches!(
            audio.set_video_call(false, t0),
            Err(PipelineError::VideoNotConfigured)
        ));
        // The video SSRC may not be the audio one.
        let clash = SessionConfig::new(5).with_video(VideoSessionConfig::new(5, 6, 7));
        assert!(matches!(
            Session::new(clash, t0),
            Err(PipelineError::Video(
                crate::video::VideoPathError::InvalidConfig { .. }
            ))
        ));
        let mut s = video_session(t0);
        assert!(matches!(
            s.set_remote_video(0x99, false),
            Err(PipelineError::UnknownRemote { ssrc: 0x99 })
        ));
        s.set_remote_video(0x20, false).unwrap();
        assert!(s.remote_stats(t0).all(|r| !r.video_subscribed));
    }

    /// The REMBs in `datagrams`: (bitrate, SSRCs named).
    fn rembs(datagrams: &[Vec<u8>]) -> Vec<(u64, Vec<u32>)> {
        let mut out = Vec::new();
        for d in datagrams.iter().filter(|d| !is_rtp(d)) {
            for packet in RtcpCompound::parse(d).unwrap().packets().flatten() {
                if let RtcpPacket::Remb(remb) = packet {
                    out.push((remb.bitrate_bps, remb.ssrcs().collect()));
                }
            }
        }
        out
    }

    /// Each remote (its audio SSRC; its video SSRC is the next) was asked its share.
    fn assert_asked(rembs: &[(u64, Vec<u32>)], asked: &[(u32, u64)]) {
        for &(remote, share) in asked {
            assert!(
                rembs.contains(&(share, vec![remote, remote + 1])),
                "{remote:#x} not asked {share}: {rembs:?}"
            );
        }
    }

    /// Runs `s` on its timers for `ms` from `from`; returns its datagrams.
    fn run_for(s: &mut Session, from: Instant, ms: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in 0..ms / 10 {
            s.handle_input(Input::Timeout, from + Duration::from_millis(10 * k))
                .unwrap();
            out.extend(drain(s));
        }
        out
    }

    #[test]
    fn the_receive_budget_is_split_by_remb_the_main_view_weighing_more() {
        let t0 = Instant::now();
        let video = VideoSessionConfig::new(0x11, 0x12, 0x13).with_receive_budget_bps(2_000_000);
        let mut s = Session::new(SessionConfig::new(0x10).with_video(video), t0).unwrap();
        for base in [0x20, 0x30, 0x40] {
            s.add_remote(RemoteParticipant::new(base).with_video_ssrcs(
                base + 1,
                base + 2,
                base + 3,
            ))
            .unwrap();
        }
        assert!(matches!(
            s.set_pinned_video(Some(0x99)),
            Err(PipelineError::UnknownRemote { ssrc: 0x99 })
        ));
        s.set_pinned_video(Some(0x30)).unwrap();
        let first = rembs(&run_for(&mut s, t0, 1_500));
        // 2 Mbit/s over 3 + 1 + 1 shares.
        assert_asked(
            &first,
            &[(0x20, 400_000), (0x30, 1_200_000), (0x40, 400_000)],
        );
        let share = |s: &Session, ssrc| {
            s.remote_stats(t0)
                .find(|r| r.ssrc == ssrc)
                .and_then(|r| r.video_share_bps)
        };
        assert_eq!(share(&s, 0x30), Some(1_200_000));
        // Not watching 0x40: its share goes to the others, and it is asked nothing.
        s.set_remote_video(0x40, false).unwrap();
        let later = t0 + Duration::from_millis(1_500);
        let after = rembs(&run_for(&mut s, later, 1_100));
        assert_asked(
            &after,
            &[(0x20, 500_000), (0x30, 1_500_000), (0x40, 2_000_000)],
        );
        // The pinned remote leaves: no main view (no active speaker in this call), equal
        // shares.
        assert!(s.remove_remote(0x30));
        assert_eq!(s.pinned_video(), None);
        s.set_remote_video(0x40, true).unwrap();
        let then = later + Duration::from_millis(1_100);
        let last = rembs(&run_for(&mut s, then, 1_100));
        assert_asked(&last, &[(0x20, 1_000_000), (0x40, 1_000_000)]);
        // An audio-only call asks nothing.
        let end = then + Duration::from_millis(1_100);
        s.set_video_call(false, end).unwrap();
        let quiet = rembs(&run_for(&mut s, end, 1_100));
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn a_remb_naming_our_video_caps_the_send_target() {
        let t0 = Instant::now();
        let mut s = video_session(t0);
        let start = s.stats(t0).target_bps;
        assert!(start > 250_000, "{start}");
        let mut remb = Vec::new();
        let mut writer = RtcpWriter::new(&mut remb);
        writer.receiver_report(0x20, &[]).unwrap();
        writer.remb(0x20, 250_000, &[0x11]).unwrap();
        s.handle_input(Input::Receive(&remb), t0).unwrap();
        let capped = s.stats(t0).target_bps;
        assert!(capped <= 250_000, "{capped}");
    }

    #[test]
    fn camera_pictures_leave_paced_with_transport_sequence_and_a_video_sr() {
        let t0 = Instant::now();
        let mut s = video_session(t0);
        let picture = VideoFrame::black(Resolution::new(320, 180).unwrap());
        let map = ExtensionMap::new()
            .with(TRANSPORT_CC_ID, ExtensionKind::TransportCc)
            .unwrap();
        let (mut video, mut audio, mut srs) = (Vec::new(), 0, Vec::new());
        for k in 0..120u64 {
            let now = t0 + Duration::from_millis(10 * k);
            s.push_audio(&tone(k as usize), now).unwrap();
            if k % 4 == 0 {
                s.push_video(&picture, now).unwrap();
            }
            s.handle_input(Input::Timeout, now).unwrap();
            for d in drain(&mut s) {
                if !is_rtp(&d) {
                    for packet in RtcpCompound::parse(&d).unwrap().packets().flatten() {
                        if let RtcpPacket::SenderReport(sr) = packet {
                            srs.push(sr.ssrc);
                        }
                    }
                    continue;
                }
                let p = RtpPacket::parse(&d).unwrap();
                let tcc = KnownExtensions::read(&p, &map)
                    .unwrap()
                    .transport_cc
                    .unwrap()
                    .0;
                if p.ssrc() == 0x10 {
                    audio += 1;
                } else {
                    video.push((p.ssrc(), tcc));
                }
            }
        }
        assert!(audio >= 55, "{audio}");
        assert!(video.iter().any(|&(ssrc, _)| ssrc == 0x11));
        // One transport-wide sequence over audio and video, none twice.
        let mut sequences: Vec<u16> = video.iter().map(|&(_, t)| t).collect();
        sequences.sort_unstable();
        sequences.dedup();
        assert_eq!(sequences.len(), video.len());
        assert!(srs.contains(&0x10) && srs.contains(&0x11), "{srs:?}");
        let stats = s.stats(t0 + Duration::from_millis(1200));
        // Without feedback the controller cuts its target after a second (to 240 kbit/s):
        // the 320×180 rung at 15 fps.
        assert!(
            stats.video_sending && stats.video_frames_encoded >= 15,
            "{stats:?}"
        );
        assert_eq!(stats.video_send_resolution, Resolution::new(320, 180).ok());
        // Camera off: nothing more for video, audio goes on.
        let off = t0 + Duration::from_millis(1200);
        s.set_camera(false, off).unwrap();
        drain(&mut s);
        let mut after = 0;
        for k in 121..200u64 {
            let now = t0 + Duration::from_millis(10 * k);
            s.push_audio(&tone(k as usize), now).unwrap();
            assert_eq!(s.push_video(&picture, now).unwrap(), FrameOutcome::Disabled);
            for d in drain(&mut s) {
                if is_rtp(&d) {
                    assert_eq!(RtpPacket::parse(&d).unwrap().ssrc(), 0x10);
                    after += 1;
                }
            }
        }
        assert!(after >= 35);
        assert!(!s.stats(t0 + Duration::from_secs(2)).video_sending);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any datagrams, RTP-looking or not, never panic the session, and what it holds
        /// stays bounded.
        #[test]
        fn any_datagrams_are_survived(
            datagrams in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(any::<u8>(), 0..1600)), 0..200),
        ) {
            let t0 = Instant::now();
            let mut s = Session::new(SessionConfig::new(1), t0).unwrap();
            let mut out = [0i16; FRAME_SAMPLES];
            for (i, (kind, mut data)) in datagrams.into_iter().enumerate() {
                // A third stay random; a third get our RTP header's first bytes and a
                // third an RTCP header (SR, RR, SDES, BYE, APP, RTPFB, PSFB) with a length
                // that fits, so that the deep paths run.
                if kind == 1 && data.len() >= 12 {
                    data[0] = 0x80;
                    data[1] = if i % 2 == 0 { OPUS_PT } else { RED_PT };
                } else if kind == 2 && data.len() >= 8 {
                    data.truncate(data.len() / 4 * 4);
                    data[0] = 0x80 | (data[0] & 0x1F);
                    data[1] = 200 + (i % 7) as u8;
                    let words = (data.len() / 4 - 1) as u16;
                    data[2..4].copy_from_slice(&words.to_be_bytes());
                }
                let now = t0 + Duration::from_millis(5 * i as u64);
                let _ = s.handle_input(Input::Receive(&data), now);
                let _ = s.pull_audio(now, &mut out);
                prop_assert!(s.outputs.len() <= MAX_PENDING_OUTPUTS);
            }
            prop_assert!(s.remotes.len() <= MAX_REMOTES);
            for remote in &s.remotes {
                prop_assert!(remote.buffer.packets_held() <= s.config.jitter.max_packets);
            }
            for receiver in s.receivers.iter() {
                prop_assert!(receiver.statuses.len() <= crate::receivers::MAX_STATUSES);
            }
            let _ = s.poll_output();
        }

        /// The same with video: RTP on the remote's video, RTX and FlexFEC SSRCs with
        /// video payload types, RTCP feedback about our video, timers and camera pictures
        /// between them; nothing panics and the video state stays bounded.
        #[test]
        fn any_video_datagrams_are_survived(
            datagrams in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(any::<u8>(), 0..1600)), 0..120),
        ) {
            let t0 = Instant::now();
            let mut s = video_session(t0);
            let picture = VideoFrame::black(Resolution::new(320, 180).unwrap());
            for (i, (kind, mut data)) in datagrams.into_iter().enumerate() {
                if kind == 1 && data.len() >= 12 {
                    data[0] = 0x80 | (data[0] & 0x10);
                    data[1] = (data[1] & 0x80) | [96, 97, 118, 45][i % 4];
                    let ssrc = [0x21u32, 0x22, 0x23][i % 3];
                    data[8..12].copy_from_slice(&ssrc.to_be_bytes());
                } else if kind == 2 && data.len() >= 12 {
                    data.truncate(data.len() / 4 * 4);
                    data[0] = 0x80 | (data[0] & 0x1F);
                    data[1] = [205, 206, 200, 201][i % 4];
                    let words = (data.len() / 4 - 1) as u16;
                    data[2..4].copy_from_slice(&words.to_be_bytes());
                    data[8..12].copy_from_slice(&0x11u32.to_be_bytes());
                }
                let now = t0 + Duration::from_millis(5 * i as u64);
                let _ = s.handle_input(Input::Receive(&data), now);
                if i % 7 == 0 {
                    let _ = s.push_video(&picture, now);
                }
                while s.poll_video_frame().is_some() {}
                prop_assert!(s.outputs.len() <= MAX_PENDING_OUTPUTS);
            }
            for video in &s.remote_video {
                if let Some(path) = &video.path {
                    let memory = path.memory();
                    prop_assert!(memory.ready_frames <= path.config().ready_frames);
                    prop_assert!(memory.jitter.packets <= path.config().jitter.max_packets);
                }
            }
            prop_assert!(s.departed.len() <= MAX_DEPARTED);
            let _ = s.poll_output();
        }
    }
}
