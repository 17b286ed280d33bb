//! The video receive path of one remote: RTP in, RTCP feedback and decoded pictures out.
//!
//! Per packet ([`VideoReceivePath::handle_rtp`]), demultiplexed by SSRC and payload
//! type: media packets go to the FlexFEC decoder (which remembers them) and the video
//! jitter buffer; RTX packets are unwrapped (RFC 4588) and go the same way; FlexFEC packets
//! go to the FlexFEC decoder, and every media packet it rebuilds goes to the jitter
//! buffer. The buffer hands out whole frames at their render time; they are decoded at
//! once (H.264 by OpenH264, AV1 by dav1d, chosen by payload type) into a small ring of
//! reused pictures that [`VideoReceivePath::poll_frame`] lends out.
//!
//! Feedback ([`VideoReceivePath::poll_rtcp`]): the jitter buffer's NACKs (first request at
//! once, retries every 1.25 RTT, given up on after its retry limit or when a gap is an
//! outage), sent twice when the measured loss makes a lost NACK likely, as the sender
//! does with retransmissions; PLIs when the buffer is stuck (at most one per
//! `max(200 ms, 1.5 RTT)`) and when the decoder refuses a frame (same spacing).
//!
//! Statistics ([`VideoReceivePath::stats`]): frames, rendered frame rate, resolution,
//! freezes and pauses in the WebRTC statistics' terms, NACK and PLI counts, packets lost
//! before and after recovery, the receive rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tincan_codec::VideoDecoder;
use tincan_codec::av1::Av1Decoder;
use tincan_codec::h264::H264Decoder;
use tincan_fec::flexfec::FlexFecDecoder;
use tincan_fec::rtx::{RtxConfig, RtxReceiver};
use tincan_fec::video_policy::{VideoPolicyConfig, redundant_copies};
use tincan_jitter::video::{
    VideoCodec, VideoJitterBuffer, VideoJitterConfig, VideoJitterStats, VideoMemory, VideoOutput,
    VideoPacket,
};
use tincan_media::{Resolution, VideoFrame};
use tincan_rtp::RtpPacket;
use tincan_rtp::rtcp::{Ntp64, ReportBlock, RtcpWriter};

use super::error::{VideoPathError, VideoResult};
use super::stats::{FreezeTracker, RateMeter};
use super::{
    DEFAULT_AV1_PT, DEFAULT_AV1_RTX_PT, DEFAULT_FEC_PT, DEFAULT_H264_PT, DEFAULT_H264_RTX_PT,
    VIDEO_CLOCK_RATE,
};

/// Largest datagram taken.
const MAX_DATAGRAM: usize = 1500;
/// Sequence numbers remembered for the loss counts: 16 s at 2.5 Mbit/s of 1200-byte
/// packets.
const SEEN_WINDOW: usize = 4096;
/// Interval of the loss measurement that decides NACK copies.
const LOSS_INTERVAL: Duration = Duration::from_millis(500);
/// Most sequence numbers in one NACK packet written (a longer list is split).
const NACK_CHUNK: usize = 1000;
/// Most buffers kept for reuse.
const MAX_POOL: usize = 256;

/// Settings of a [`VideoReceivePath`]. [`VideoReceiveConfig::new`] gives the defaults.
///
/// ```
/// use tincan_pipeline::video::VideoReceiveConfig;
/// let config = VideoReceiveConfig::new(0x99, 0x10, 0x11, 0x12);
/// assert_eq!((config.h264_payload_type, config.av1_payload_type), (96, 45));
/// assert!(config.nack && config.fec);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VideoReceiveConfig {
    /// Our SSRC: the sender SSRC of the feedback we send.
    pub local_ssrc: u32,
    /// The remote's video SSRC.
    pub media_ssrc: u32,
    /// The remote's RTX SSRC.
    pub rtx_ssrc: u32,
    /// The remote's FlexFEC SSRC.
    pub fec_ssrc: u32,
    /// H.264 payload type (default 96).
    pub h264_payload_type: u8,
    /// AV1 payload type (default 45).
    pub av1_payload_type: u8,
    /// RTX payload type for H.264 (default 97).
    pub h264_rtx_payload_type: u8,
    /// RTX payload type for AV1 (default 46).
    pub av1_rtx_payload_type: u8,
    /// FlexFEC payload type (default 118).
    pub fec_payload_type: u8,
    /// The jitter buffer (its codec follows the payload type).
    pub jitter: VideoJitterConfig,
    /// Send NACKs (default on). Off, a missing packet is given up on after 20 ms and a
    /// keyframe asked for.
    pub nack: bool,
    /// Use FlexFEC packets (default on).
    pub fec: bool,
    /// Decode time assumed in the buffer's timing (default 5 ms): a sans-IO path cannot
    /// measure it; a host that does can report it with
    /// [`VideoReceivePath::set_decode_time`].
    pub decode_time: Duration,
    /// Decoded pictures kept for [`VideoReceivePath::poll_frame`] (default 3); beyond, the
    /// oldest is overwritten and counted.
    pub ready_frames: usize,
    /// RTCP feedback packets waiting for [`VideoReceivePath::poll_rtcp`] (default 64);
    /// beyond, the oldest is dropped and counted.
    pub max_pending_feedback: usize,
    /// Shortest interval between PLIs sent because the decoder refused a frame (it is
    /// also at least 1.5 RTT). Default 200 ms.
    pub decode_error_pli_interval: Duration,
}

impl VideoReceiveConfig {
    /// Defaults for the remote's SSRCs.
    pub fn new(local_ssrc: u32, media_ssrc: u32, rtx_ssrc: u32, fec_ssrc: u32) -> Self {
        Self {
            local_ssrc,
            media_ssrc,
            rtx_ssrc,
            fec_ssrc,
            h264_payload_type: DEFAULT_H264_PT,
            av1_payload_type: DEFAULT_AV1_PT,
            h264_rtx_payload_type: DEFAULT_H264_RTX_PT,
            av1_rtx_payload_type: DEFAULT_AV1_RTX_PT,
            fec_payload_type: DEFAULT_FEC_PT,
            jitter: VideoJitterConfig::default(),
            nack: true,
            fec: true,
            decode_time: Duration::from_millis(5),
            ready_frames: 3,
            max_pending_feedback: 64,
            decode_error_pli_interval: Duration::from_millis(200),
        }
    }

    fn validate(&self) -> VideoResult<()> {
        let invalid = |field, value: String, expected| {
            Err(VideoPathError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if !(1..=64).contains(&self.ready_frames) {
            return invalid("ready_frames", self.ready_frames.to_string(), "1 to 64");
        }
        if !(1..=4096).contains(&self.max_pending_feedback) {
            return invalid(
                "max_pending_feedback",
                self.max_pending_feedback.to_string(),
                "1 to 4096",
            );
        }
        let ssrcs = [self.media_ssrc, self.rtx_ssrc, self.fec_ssrc];
        if ssrcs[0] == ssrcs[1] || ssrcs[0] == ssrcs[2] || ssrcs[1] == ssrcs[2] {
            return invalid("ssrcs", format!("{ssrcs:?}"), "distinct");
        }
        let pts = [
            self.h264_payload_type,
            self.av1_payload_type,
            self.h264_rtx_payload_type,
            self.av1_rtx_payload_type,
            self.fec_payload_type,
        ];
        let distinct = pts
            .iter()
            .enumerate()
            .all(|(i, a)| pts[i + 1..].iter().all(|b| a != b));
        if pts.iter().any(|&pt| pt > 127) || !distinct {
            return invalid("payload types", format!("{pts:?}"), "distinct, 0 to 127");
        }
        if self.decode_time > Duration::from_secs(10) {
            return invalid(
                "decode_time",
                format!("{:?}", self.decode_time),
                "at most 10 s",
            );
        }
        Ok(())
    }
}

/// A decoded picture, lent until the next [`VideoReceivePath::poll_frame`].
#[derive(Debug, Clone, Copy)]
pub struct DecodedFrame<'a> {
    /// The picture (I420).
    pub frame: &'a VideoFrame,
    /// Its RTP timestamp (the remote's 90 kHz capture clock).
    pub rtp_timestamp: u32,
    /// When it should be on screen (the jitter buffer's render time; not before the
    /// previous frame's).
    pub render_at: Instant,
    /// It was a keyframe.
    pub keyframe: bool,
    /// Its codec.
    pub codec: VideoCodec,
}

/// Counters and rates of a [`VideoReceivePath`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoReceiveStats {
    /// Media packets received from the network (duplicates included).
    pub packets_received: u64,
    /// RTP bytes received (media, RTX and FEC).
    pub bytes_received: u64,
    /// RTX packets received (padding not included).
    pub rtx_received: u64,
    /// Padding-only packets on the RTX stream (a sender's bandwidth probe), dropped.
    pub padding_received: u64,
    /// FEC packets received.
    pub fec_received: u64,
    /// Media packets rebuilt by FlexFEC.
    pub fec_recovered: u64,
    /// Media sequence numbers never received from the network (before RTX and FEC),
    /// counting those still on their way.
    pub packets_lost_before_recovery: u64,
    /// Media sequence numbers neither received nor recovered.
    pub packets_lost_after_recovery: u64,
    /// Complete frames assembled (`framesReceived`).
    pub frames_received: u64,
    /// Frames decoded (`framesDecoded`).
    pub frames_decoded: u64,
    /// Of those, keyframes (`keyFramesDecoded`).
    pub keyframes_decoded: u64,
    /// Frames the decoder refused.
    pub decode_errors: u64,
    /// Complete frames the buffer dropped (`framesDropped`).
    pub frames_dropped: u64,
    /// Decoded pictures overwritten before [`VideoReceivePath::poll_frame`] took them.
    pub frames_not_polled: u64,
    /// Frames rendered per second over the last second.
    pub fps: f64,
    /// Resolution of the last decoded picture.
    pub resolution: Option<Resolution>,
    /// Codec of the stream.
    pub codec: VideoCodec,
    /// `freezeCount`.
    pub freeze_count: u64,
    /// `totalFreezesDuration`.
    pub total_freezes_duration: Duration,
    /// `pauseCount`: render gaps of 5 s or more (video switched off).
    pub pause_count: u64,
    /// `totalPausesDuration`.
    pub total_pauses_duration: Duration,
    /// NACK packets sent (`nackCount`; copies not counted).
    pub nacks_sent: u64,
    /// Sequence numbers requested in them (a retry counts again).
    pub nacked_packets: u64,
    /// PLIs sent (`pliCount`).
    pub plis_sent: u64,
    /// RTP receive rate over the last second (media, RTX, FEC), bit/s.
    pub receive_bps: u64,
    /// RFC 3550 interarrival jitter of the media stream, 90 kHz ticks.
    pub interarrival_jitter: u32,
    /// The jitter buffer's playout delay now.
    pub playout_delay: Duration,
    /// Packets refused: unknown SSRC or payload type, unreadable.
    pub packets_refused: u64,
    /// Feedback packets dropped because the session did not poll.
    pub feedback_dropped: u64,
    /// The jitter buffer's own counters.
    pub jitter: VideoJitterStats,
}

/// What a [`VideoReceivePath`] holds now, against its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoReceiveMemory {
    /// The jitter buffer's.
    pub jitter: VideoMemory,
    /// Media packets the FlexFEC decoder remembers (at most 512).
    pub fec_media_packets: usize,
    /// FEC packets waiting (at most 256).
    pub fec_pending: usize,
    /// Bytes in the FlexFEC decoder's buffers.
    pub fec_bytes: usize,
    /// Decoded pictures waiting to be polled (at most
    /// [`VideoReceiveConfig::ready_frames`]).
    pub ready_frames: usize,
    /// Bytes of the picture ring (visible pixels).
    pub picture_bytes: usize,
    /// Feedback packets waiting (at most [`VideoReceiveConfig::max_pending_feedback`]).
    pub pending_feedback: usize,
}

/// Which media sequence numbers arrived: directly, and at all (RTX, FEC included).
#[derive(Debug, Clone)]
struct SeqTracker {
    first: Option<i64>,
    highest: i64,
    direct: [u64; SEEN_WINDOW / 64],
    any: [u64; SEEN_WINDOW / 64],
    received_direct: u64,
    received_any: u64,
    /// At the last report block: expected and received.
    expected_prior: u64,
    received_prior: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self {
            first: None,
            highest: 0,
            direct: [0; SEEN_WINDOW / 64],
            any: [0; SEEN_WINDOW / 64],
            received_direct: 0,
            received_any: 0,
            expected_prior: 0,
            received_prior: 0,
        }
    }
}

impl SeqTracker {
    fn extend(&self, sequence: u16) -> i64 {
        match self.first {
            None => i64::from(sequence) + (1 << 16),
            Some(_) => self.highest + i64::from(sequence.wrapping_sub(self.highest as u16) as i16),
        }
    }

    /// Records `sequence` (directly received or not); returns its extended value.
    fn mark(&mut self, sequence: u16, direct: bool) -> i64 {
        let ext = self.extend(sequence);
        match self.first {
            None => {
                self.first = Some(ext);
                self.highest = ext;
            }
            Some(first) => {
                if ext > self.highest {
                    let clear_from = (self.highest + 1).max(ext - SEEN_WINDOW as i64 + 1);
                    for e in clear_from..=ext {
                        let (word, bit) = Self::position(e);
                        self.direct[word] &= !bit;
                        self.any[word] &= !bit;
                    }
                    self.highest = ext;
                } else if ext <= self.highest - SEEN_WINDOW as i64 {
                    return ext;
                }
                if ext < first {
                    self.first = Some(ext);
                }
            }
        }
        let (word, bit) = Self::position(ext);
        if self.any[word] & bit == 0 {
            self.any[word] |= bit;
            self.received_any += 1;
        }
        if direct && self.direct[word] & bit == 0 {
            self.direct[word] |= bit;
            self.received_direct += 1;
        }
        ext
    }

    fn position(ext: i64) -> (usize, u64) {
        let index = ext.rem_euclid(SEEN_WINDOW as i64) as usize;
        (index / 64, 1 << (index % 64))
    }

    fn expected(&self) -> u64 {
        self.first
            .map_or(0, |first| (self.highest - first + 1) as u64)
    }

    fn lost_direct(&self) -> u64 {
        self.expected().saturating_sub(self.received_direct)
    }

    fn lost_any(&self) -> u64 {
        self.expected().saturating_sub(self.received_any)
    }
}

/// A picture of the ring.
#[derive(Debug)]
struct Slot {
    frame: VideoFrame,
    rtp_timestamp: u32,
    /// Set when a picture is decoded into it.
    render_at: Option<Instant>,
    keyframe: bool,
    codec: VideoCodec,
}

/// The video receive path of one remote. See the [module docs](self).
pub struct VideoReceivePath {
    config: VideoReceiveConfig,
    buffer: VideoJitterBuffer,
    codec: VideoCodec,
    h264: H264Decoder,
    av1: Option<Av1Decoder>,
    fec: FlexFecDecoder,
    rtx_h264: RtxReceiver,
    rtx_av1: RtxReceiver,
    restored: Vec<u8>,
    recovered: Vec<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    feedback: VecDeque<Vec<u8>>,
    nack_list: Vec<u16>,
    slots: Vec<Slot>,
    ready: VecDeque<usize>,
    free: Vec<usize>,
    lent: Option<usize>,
    deadline: Option<Instant>,
    last_render: Option<Instant>,
    last_pli: Option<Instant>,
    rtt: Duration,
    decode_time: Duration,
    seq: SeqTracker,
    /// Loss over the last [`LOSS_INTERVAL`]s, smoothed: decides NACK copies.
    loss: Option<f64>,
    /// Expected and directly received at the last loss measurement.
    loss_mark: (u64, u64),
    next_loss: Option<Instant>,
    /// RFC 3550 jitter: epoch of arrival times, last transit and timestamp, estimate.
    arrival_epoch: Option<Instant>,
    last_transit: Option<(i64, u32)>,
    jitter: f64,
    last_sr: Option<(u32, Instant)>,
    freezes: FreezeTracker,
    receive_meter: RateMeter,
    render_meter: RateMeter,
    stats: VideoReceiveStats,
}

impl std::fmt::Debug for VideoReceivePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReceivePath")
            .field("media_ssrc", &self.config.media_ssrc)
            .field("codec", &self.codec)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

fn jitter_config(base: &VideoJitterConfig, codec: VideoCodec, nack: bool) -> VideoJitterConfig {
    let mut config = base.clone();
    config.codec = codec;
    if !nack {
        // No NACK: give a missing packet up at once, after a short wait that lets
        // reordering and the frame's FEC packets arrive, and ask for a keyframe.
        config.max_nack_retries = 0;
        config.nack_delay = config.nack_delay.max(Duration::from_millis(20));
    }
    config
}

fn give_back(pool: &mut Vec<Vec<u8>>, mut buffer: Vec<u8>) {
    if pool.len() < MAX_POOL {
        buffer.clear();
        pool.push(buffer);
    }
}

impl VideoReceivePath {
    /// A receive path for one remote's video.
    ///
    /// # Errors
    ///
    /// A configuration value out of range, or a decoder that cannot be opened.
    pub fn new(config: VideoReceiveConfig) -> VideoResult<Self> {
        config.validate()?;
        let codec = config.jitter.codec;
        let buffer = VideoJitterBuffer::new(jitter_config(&config.jitter, codec, config.nack))?;
        let rtx = |media_pt, rtx_pt| {
            RtxReceiver::new(RtxConfig::new(
                config.media_ssrc,
                media_pt,
                config.rtx_ssrc,
                rtx_pt,
            ))
        };
        let placeholder = Resolution::new(2, 2)?;
        // One picture more than may wait: the one lent out.
        let slots: Vec<Slot> = (0..=config.ready_frames)
            .map(|_| Slot {
                frame: VideoFrame::black(placeholder),
                rtp_timestamp: 0,
                render_at: None,
                keyframe: false,
                codec,
            })
            .collect();
        let stats = VideoReceiveStats {
            packets_received: 0,
            bytes_received: 0,
            rtx_received: 0,
            padding_received: 0,
            fec_received: 0,
            fec_recovered: 0,
            packets_lost_before_recovery: 0,
            packets_lost_after_recovery: 0,
            frames_received: 0,
            frames_decoded: 0,
            keyframes_decoded: 0,
            decode_errors: 0,
            frames_dropped: 0,
            frames_not_polled: 0,
            fps: 0.0,
            resolution: None,
            codec,
            freeze_count: 0,
            total_freezes_duration: Duration::ZERO,
            pause_count: 0,
            total_pauses_duration: Duration::ZERO,
            nacks_sent: 0,
            nacked_packets: 0,
            plis_sent: 0,
            receive_bps: 0,
            interarrival_jitter: 0,
            playout_delay: Duration::ZERO,
            packets_refused: 0,
            feedback_dropped: 0,
            jitter: VideoJitterStats::default(),
        };
        Ok(Self {
            buffer,
            codec,
            h264: H264Decoder::new()?,
            av1: None,
            fec: FlexFecDecoder::new(config.media_ssrc),
            rtx_h264: rtx(config.h264_payload_type, config.h264_rtx_payload_type),
            rtx_av1: rtx(config.av1_payload_type, config.av1_rtx_payload_type),
            restored: Vec::with_capacity(MAX_DATAGRAM),
            recovered: Vec::new(),
            pool: Vec::new(),
            feedback: VecDeque::with_capacity(config.max_pending_feedback),
            nack_list: Vec::new(),
            free: (0..slots.len()).rev().collect(),
            ready: VecDeque::with_capacity(slots.len()),
            slots,
            lent: None,
            deadline: None,
            last_render: None,
            last_pli: None,
            rtt: Duration::from_millis(100),
            decode_time: config.decode_time,
            seq: SeqTracker::default(),
            loss: None,
            loss_mark: (0, 0),
            next_loss: None,
            arrival_epoch: None,
            last_transit: None,
            jitter: 0.0,
            last_sr: None,
            freezes: FreezeTracker::default(),
            receive_meter: RateMeter::default(),
            render_meter: RateMeter::default(),
            stats,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VideoReceiveConfig {
        &self.config
    }

    /// Sets the round-trip time (from RTCP): it paces NACK retries and PLIs.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.min(Duration::from_secs(10));
        self.buffer.handle_rtt(self.rtt);
    }

    /// Sets the decode time the buffer's timing assumes (a host that measures it).
    pub fn set_decode_time(&mut self, decode_time: Duration) {
        self.decode_time = decode_time.min(Duration::from_secs(10));
    }

    /// Sets the extra delay lip sync asks for (`tincan_jitter::video::LipSync`).
    pub fn set_sync_delay(&mut self, extra: Duration) {
        self.buffer.set_sync_delay(extra);
    }

    /// The remote sent a sender report about its video at `ntp` (its clock), received at
    /// `now`: kept for the report block's LSR and DLSR.
    pub fn handle_sender_report(&mut self, ntp: Ntp64, now: Instant) {
        self.last_sr = Some((ntp.middle32(), now));
    }

    /// Takes one RTP datagram of this remote's video (media, RTX or FlexFEC) that arrived
    /// at `now`, then runs the buffer and the decoder.
    ///
    /// # Errors
    ///
    /// [`VideoPathError::BadPacket`] for a datagram that is not RTP, and
    /// [`VideoPathError::UnknownStream`] for one on another SSRC or payload type; both are
    /// counted in [`VideoReceiveStats::packets_refused`] and change nothing else.
    pub fn handle_rtp(&mut self, datagram: &[u8], now: Instant) -> VideoResult<()> {
        let result = self.receive(datagram, now);
        if result.is_err() {
            self.stats.packets_refused += 1;
        }
        self.drive(now);
        result
    }

    fn receive(&mut self, datagram: &[u8], now: Instant) -> VideoResult<()> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(VideoPathError::BadPacket {
                len: datagram.len(),
                reason: format!("longer than {MAX_DATAGRAM} bytes"),
            });
        }
        let packet = RtpPacket::parse(datagram).map_err(|e| VideoPathError::BadPacket {
            len: datagram.len(),
            reason: e.to_string(),
        })?;
        let (ssrc, payload_type) = (packet.ssrc(), packet.payload_type());
        let unknown = Err(VideoPathError::UnknownStream { ssrc, payload_type });
        self.stats.bytes_received += datagram.len() as u64;
        self.receive_meter.add(datagram.len(), now);
        if ssrc == self.config.media_ssrc {
            if self.codec_of(payload_type).is_none() {
                return unknown;
            }
            self.stats.packets_received += 1;
            self.seq.mark(packet.sequence_number().0, true);
            self.update_jitter(packet.timestamp().0, now);
            self.on_media(datagram, now);
        } else if ssrc == self.config.rtx_ssrc {
            let rtx = if payload_type == self.config.h264_rtx_payload_type {
                &mut self.rtx_h264
            } else if payload_type == self.config.av1_rtx_payload_type {
                &mut self.rtx_av1
            } else {
                return unknown;
            };
            if packet.payload().is_empty() && packet.padding() > 0 {
                // Padding for a bandwidth probe: its transport-wide sequence number is
                // what mattered, and the session has already counted it.
                self.stats.padding_received += 1;
                return Ok(());
            }
            self.stats.rtx_received += 1;
            let mut restored = std::mem::take(&mut self.restored);
            let result = rtx.unwrap(datagram, &mut restored);
            if result.is_ok() {
                self.on_media(&restored, now);
            }
            self.restored = restored;
            result?;
        } else if ssrc == self.config.fec_ssrc && payload_type == self.config.fec_payload_type {
            self.stats.fec_received += 1;
            // A FEC packet that cannot be used (malformed, too old) is counted by the
            // decoder and otherwise ignored, as a receiver must.
            if self.config.fec && self.fec.insert_fec(datagram).is_ok_and(|n| n > 0) {
                self.drain_recovered(now);
            }
        } else {
            return unknown;
        }
        Ok(())
    }

    fn codec_of(&self, payload_type: u8) -> Option<VideoCodec> {
        if payload_type == self.config.h264_payload_type {
            Some(VideoCodec::H264)
        } else if payload_type == self.config.av1_payload_type {
            Some(VideoCodec::Av1)
        } else {
            None
        }
    }

    /// RFC 3550 interarrival jitter, updated once per frame (packets of one frame share
    /// a timestamp but leave the sender spread over its pacing, as libwebrtc reasons).
    fn update_jitter(&mut self, timestamp: u32, now: Instant) {
        let epoch = *self.arrival_epoch.get_or_insert(now);
        let arrival = (now.saturating_duration_since(epoch).as_nanos()
            * u128::from(VIDEO_CLOCK_RATE)
            / 1_000_000_000) as i64;
        let transit = arrival - i64::from(timestamp);
        match self.last_transit {
            Some((_, last_timestamp)) if last_timestamp == timestamp => {}
            Some((last, _)) => {
                // Transit differences wrap with the 32-bit timestamp.
                let d = (transit - last) as i32;
                self.jitter += (f64::from(d.unsigned_abs()) - self.jitter) / 16.0;
                self.last_transit = Some((transit, timestamp));
            }
            None => self.last_transit = Some((transit, timestamp)),
        }
    }

    /// A media packet (received, restored from RTX): remembered by FEC, then buffered.
    fn on_media(&mut self, data: &[u8], now: Instant) {
        if self.config.fec && self.fec.insert_media(data).is_ok_and(|n| n > 0) {
            self.insert(data, now);
            self.drain_recovered(now);
            return;
        }
        self.insert(data, now);
    }

    fn drain_recovered(&mut self, now: Instant) {
        while let Some(packet) = self.fec.poll_recovered() {
            let mut copy = self.pool.pop().unwrap_or_default();
            copy.extend_from_slice(packet);
            self.recovered.push(copy);
        }
        while let Some(packet) = self.recovered.pop() {
            self.stats.fec_recovered += 1;
            self.insert(&packet, now);
            give_back(&mut self.pool, packet);
        }
    }

    fn insert(&mut self, data: &[u8], now: Instant) {
        let Ok(packet) = RtpPacket::parse(data) else {
            return;
        };
        let Some(codec) = self.codec_of(packet.payload_type()) else {
            return;
        };
        if codec != self.codec {
            // The remote switched codecs: a new stream for the buffer and the decoder.
            let config = jitter_config(&self.config.jitter, codec, self.config.nack);
            match VideoJitterBuffer::new(config) {
                Ok(mut buffer) => {
                    buffer.handle_rtt(self.rtt);
                    self.stats.jitter = add_jitter_stats(self.stats.jitter, self.buffer.stats());
                    self.buffer = buffer;
                    self.codec = codec;
                    self.stats.codec = codec;
                }
                // The configuration was validated with the first codec; a refusal here
                // leaves the old stream in place.
                Err(_) => return,
            }
        }
        self.seq.mark(packet.sequence_number().0, false);
        let video = VideoPacket {
            ssrc: packet.ssrc(),
            sequence: packet.sequence_number().0,
            timestamp: packet.timestamp().0,
            marker: packet.marker(),
            payload: packet.payload(),
        };
        // A packet the buffer refuses (too large) is counted in its statistics.
        let _ = self.buffer.insert_packet(video, now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Runs the buffer's timers at `now`: frames due are decoded, NACK retries and PLIs
    /// written.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    fn drive(&mut self, now: Instant) {
        self.measure_loss(now);
        loop {
            match self.buffer.poll(now) {
                VideoOutput::Frame(frame) => {
                    let (timestamp, keyframe, render_at) =
                        (frame.timestamp, frame.keyframe, frame.render_at);
                    // At most `ready_frames` wait: beyond, the oldest is overwritten.
                    let oldest = if self.ready.len() >= self.config.ready_frames {
                        self.ready.pop_front()
                    } else {
                        None
                    };
                    let index = match oldest.or_else(|| self.free.pop()) {
                        Some(index) => index,
                        None => match self.ready.pop_front() {
                            Some(index) => {
                                self.stats.frames_not_polled += 1;
                                index
                            }
                            // Only the lent picture is left: cannot happen with at least
                            // two slots, which the configuration guarantees.
                            None => continue,
                        },
                    };
                    if oldest.is_some() {
                        self.stats.frames_not_polled += 1;
                    }
                    let Some(slot) = self.slots.get_mut(index) else {
                        continue;
                    };
                    let result = match self.codec {
                        VideoCodec::H264 => self.h264.decode_into(frame.data, &mut slot.frame),
                        VideoCodec::Av1 => match &mut self.av1 {
                            Some(decoder) => decoder.decode_into(frame.data, &mut slot.frame),
                            None => match Av1Decoder::new() {
                                Ok(decoder) => self
                                    .av1
                                    .insert(decoder)
                                    .decode_into(frame.data, &mut slot.frame),
                                Err(error) => Err(error),
                            },
                        },
                    };
                    match result {
                        Ok(true) => {
                            // On screen at its render time, never before the previous one.
                            let shown = render_at.max(now).max(self.last_render.unwrap_or(now));
                            self.last_render = Some(shown);
                            slot.rtp_timestamp = timestamp;
                            slot.render_at = Some(shown);
                            slot.keyframe = keyframe;
                            slot.codec = self.codec;
                            self.stats.resolution = Some(slot.frame.resolution());
                            self.ready.push_back(index);
                            self.buffer.frame_decoded(self.decode_time);
                            self.buffer.frame_rendered(shown);
                            self.freezes.rendered(shown);
                            self.render_meter.add(0, shown.max(now));
                            self.stats.frames_decoded += 1;
                            self.stats.keyframes_decoded += u64::from(keyframe);
                        }
                        Ok(false) => self.free.push(index),
                        Err(_) => {
                            self.free.push(index);
                            self.stats.decode_errors += 1;
                            // The picture is broken until the next keyframe.
                            if self.pli_allowed(now) {
                                self.send_pli(now);
                            }
                        }
                    }
                }
                VideoOutput::Nack(sequences) => {
                    if self.config.nack {
                        self.nack_list.clear();
                        self.nack_list.extend_from_slice(sequences);
                        self.send_nack();
                    }
                }
                VideoOutput::KeyframeRequest => self.send_pli(now),
                VideoOutput::Timeout(at) => {
                    self.deadline = Some(at);
                    break;
                }
                VideoOutput::Idle => {
                    self.deadline = None;
                    break;
                }
            }
        }
        if let Some(next) = self.next_loss {
            self.deadline = Some(self.deadline.map_or(next, |d| d.min(next)));
        }
    }

    fn pli_allowed(&self, now: Instant) -> bool {
        let spacing = self
            .config
            .decode_error_pli_interval
            .max(self.rtt.mul_f64(1.5));
        self.last_pli
            .is_none_or(|last| now.saturating_duration_since(last) >= spacing)
    }

    fn send_pli(&mut self, now: Instant) {
        let mut out = self.pool.pop().unwrap_or_default();
        if RtcpWriter::new(&mut out)
            .pli(self.config.local_ssrc, self.config.media_ssrc)
            .is_ok()
        {
            self.stats.plis_sent += 1;
            self.last_pli = Some(now);
            self.push_feedback(out);
        } else {
            give_back(&mut self.pool, out);
        }
    }

    /// Writes the NACK list (split into packets of at most [`NACK_CHUNK`] numbers), each
    /// packet twice when a lost NACK is likely at the measured loss.
    fn send_nack(&mut self) {
        let config = VideoPolicyConfig::default();
        let copies = redundant_copies(
            self.loss.unwrap_or(config.initial_loss),
            config.rtx_target,
            config.max_rtx_copies,
        );
        let list = std::mem::take(&mut self.nack_list);
        for chunk in list.chunks(NACK_CHUNK) {
            let mut out = self.pool.pop().unwrap_or_default();
            if RtcpWriter::new(&mut out)
                .nack(self.config.local_ssrc, self.config.media_ssrc, chunk)
                .is_err()
            {
                give_back(&mut self.pool, out);
                continue;
            }
            self.stats.nacks_sent += 1;
            for _ in 1..copies {
                let mut copy = self.pool.pop().unwrap_or_default();
                copy.extend_from_slice(&out);
                self.push_feedback(copy);
            }
            self.push_feedback(out);
        }
        self.nack_list = list;
    }

    fn push_feedback(&mut self, packet: Vec<u8>) {
        if self.feedback.len() >= self.config.max_pending_feedback
            && let Some(old) = self.feedback.pop_front()
        {
            self.stats.feedback_dropped += 1;
            give_back(&mut self.pool, old);
        }
        self.feedback.push_back(packet);
    }

    /// The media loss of each [`LOSS_INTERVAL`], smoothed as the sender's policy does.
    fn measure_loss(&mut self, now: Instant) {
        let Some(next) = self.next_loss else {
            if self.seq.first.is_some() {
                self.next_loss = Some(now + LOSS_INTERVAL);
                self.loss_mark = (self.seq.expected(), self.seq.received_direct);
            }
            return;
        };
        if now < next {
            return;
        }
        let expected = self.seq.expected().saturating_sub(self.loss_mark.0);
        let received = self.seq.received_direct.saturating_sub(self.loss_mark.1);
        if expected > 0 {
            let loss = expected.saturating_sub(received) as f64 / expected as f64;
            let weight = VideoPolicyConfig::default().smoothing;
            self.loss = Some(self.loss.map_or(loss, |m| m + weight * (loss - m)));
        }
        self.loss_mark = (self.seq.expected(), self.seq.received_direct);
        self.next_loss = Some(now + LOSS_INTERVAL);
    }

    /// Writes the next RTCP feedback packet (a NACK or a PLI, reduced-size RTCP of one
    /// packet) into `out`, replacing its contents; false when none is waiting. Send it to
    /// the remote as it is, or append it to a compound RTCP packet.
    pub fn poll_rtcp(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(packet) = self.feedback.pop_front() else {
            return false;
        };
        out.clear();
        out.extend_from_slice(&packet);
        give_back(&mut self.pool, packet);
        true
    }

    /// The next decoded picture, oldest first, lent until the next call (the previous
    /// one goes back to the ring). Pictures come out as soon as they are decoded; show
    /// each at its [`render_at`](DecodedFrame::render_at).
    pub fn poll_frame(&mut self) -> Option<DecodedFrame<'_>> {
        if let Some(lent) = self.lent.take() {
            self.free.push(lent);
        }
        let index = self.ready.pop_front()?;
        self.lent = Some(index);
        let slot = self.slots.get(index)?;
        Some(DecodedFrame {
            frame: &slot.frame,
            rtp_timestamp: slot.rtp_timestamp,
            render_at: slot.render_at?,
            keyframe: slot.keyframe,
            codec: slot.codec,
        })
    }

    /// A report block about the remote's video for our next RR or SR: loss since the
    /// previous call (before recovery, as RFC 3550 counts it), cumulative loss, highest
    /// sequence number, interarrival jitter, and LSR/DLSR when the remote's SR was given
    /// to [`handle_sender_report`](Self::handle_sender_report). `None` before the first
    /// media packet.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        self.seq.first?;
        let expected = self.seq.expected();
        let received = self.seq.received_direct;
        let expected_interval = expected.saturating_sub(self.seq.expected_prior);
        let received_interval = received.saturating_sub(self.seq.received_prior);
        self.seq.expected_prior = expected;
        self.seq.received_prior = received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval * 256)
            .checked_div(expected_interval)
            .unwrap_or(0)
            .min(255) as u8;
        let (last_sr, delay_since_last_sr) = self.last_sr.map_or((0, 0), |(lsr, at)| {
            let delay = now.saturating_duration_since(at).as_secs_f64();
            (lsr, (delay * 65_536.0) as u32)
        });
        Some(ReportBlock {
            ssrc: self.config.media_ssrc,
            fraction_lost,
            cumulative_lost: self.seq.lost_direct().min(i32::MAX as u64) as i32,
            highest_sequence: self.seq.highest as u32,
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr,
        })
    }

    /// Counters and rates at `now` (rates over the last complete second).
    pub fn stats(&mut self, now: Instant) -> VideoReceiveStats {
        self.receive_meter.roll(now);
        self.render_meter.roll(now);
        self.stats_at(now)
    }

    /// The same figures as [`stats`](Self::stats) without closing the rate windows (for
    /// a caller that holds the path by shared reference, such as a session's statistics).
    pub fn stats_at(&self, now: Instant) -> VideoReceiveStats {
        let mut receive_meter = self.receive_meter;
        receive_meter.roll(now);
        let mut render_meter = self.render_meter;
        render_meter.roll(now);
        let mut stats = self.stats;
        let jitter = add_jitter_stats(self.stats.jitter, self.buffer.stats());
        stats.jitter = jitter;
        stats.frames_received = jitter.frames_received;
        stats.frames_dropped = jitter.frames_dropped;
        stats.nacked_packets = jitter.nacked_packets;
        stats.packets_lost_before_recovery = self.seq.lost_direct();
        stats.packets_lost_after_recovery = self.seq.lost_any();
        stats.fps = render_meter.per_second();
        stats.freeze_count = self.freezes.freeze_count;
        stats.total_freezes_duration = self.freezes.total_freezes_duration;
        stats.pause_count = self.freezes.pause_count;
        stats.total_pauses_duration = self.freezes.total_pauses_duration;
        stats.receive_bps = receive_meter.bps();
        stats.interarrival_jitter = self.jitter as u32;
        stats.playout_delay = self.buffer.playout_delay(now);
        stats
    }

    /// Tells the path its sender stopped (a session saw no packet for a while: camera off,
    /// call switched to audio): the gap up to the next picture counts as a pause
    /// (`pauseCount`), not a freeze, even when shorter than [`PAUSE_THRESHOLD`](super::PAUSE_THRESHOLD).
    pub fn mark_paused(&mut self) {
        self.freezes.pause();
    }

    /// Frames decoded so far (cheap: for a caller watching for new pictures).
    pub fn frames_decoded(&self) -> u64 {
        self.stats.frames_decoded
    }

    /// Resolution of the last decoded picture.
    pub fn resolution(&self) -> Option<Resolution> {
        self.stats.resolution
    }

    /// Decoded pictures waiting for [`poll_frame`](Self::poll_frame).
    pub fn ready_frames(&self) -> usize {
        self.ready.len()
    }

    /// What it holds now.
    pub fn memory(&self) -> VideoReceiveMemory {
        VideoReceiveMemory {
            jitter: self.buffer.memory(),
            fec_media_packets: self.fec.stored_media(),
            fec_pending: self.fec.pending_fec(),
            fec_bytes: self.fec.buffered_bytes(),
            ready_frames: self.ready.len(),
            picture_bytes: self.slots.iter().map(|s| s.frame.packed_len()).sum(),
            pending_feedback: self.feedback.len(),
        }
    }
}

/// Sums the counters of two jitter buffers (one per codec the remote used).
fn add_jitter_stats(a: VideoJitterStats, b: VideoJitterStats) -> VideoJitterStats {
    VideoJitterStats {
        packets_received: a.packets_received + b.packets_received,
        packets_refused: a.packets_refused + b.packets_refused,
        packets_duplicate: a.packets_duplicate + b.packets_duplicate,
        packets_late: a.packets_late + b.packets_late,
        packets_discarded: a.packets_discarded + b.packets_discarded,
        packets_recovered: a.packets_recovered + b.packets_recovered,
        frames_received: a.frames_received + b.frames_received,
        keyframes_received: a.keyframes_received + b.keyframes_received,
        frames_released: a.frames_released + b.frames_released,
        frames_decoded: a.frames_decoded + b.frames_decoded,
        frames_rendered: a.frames_rendered + b.frames_rendered,
        frames_dropped: a.frames_dropped + b.frames_dropped,
        frames_invalid: a.frames_invalid + b.frames_invalid,
        nack_count: a.nack_count + b.nack_count,
        nacked_packets: a.nacked_packets + b.nacked_packets,
        nack_give_ups: a.nack_give_ups + b.nack_give_ups,
        nack_overflows: a.nack_overflows + b.nack_overflows,
        keyframe_requests: a.keyframe_requests + b.keyframe_requests,
        freeze_count: a.freeze_count + b.freeze_count,
        total_freezes_duration: a.total_freezes_duration + b.total_freezes_duration,
        total_inter_frame_delay: a.total_inter_frame_delay + b.total_inter_frame_delay,
        total_squared_inter_frame_delay: a.total_squared_inter_frame_delay
            + b.total_squared_inter_frame_delay,
        resets: a.resets + b.resets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{VideoSendConfig, VideoSendPath};
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use tincan_media::source::TestPattern;
    use tincan_rtp::RtpPacketBuilder;
    use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

    const MEDIA: u32 = 0x10;
    const RTX: u32 = 0x11;
    const FEC: u32 = 0x12;

    fn receiver() -> VideoReceivePath {
        VideoReceivePath::new(VideoReceiveConfig::new(0x99, MEDIA, RTX, FEC)).expect("valid")
    }

    /// Two seconds of a 320×180 stream as sent: media, FEC, and the RTX packets of a
    /// NACK for every tenth media packet.
    fn stream() -> &'static [Vec<u8>] {
        static PACKETS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        PACKETS.get_or_init(|| {
            let t0 = Instant::now();
            let mut config = VideoSendConfig::new(MEDIA, RTX, FEC);
            config.start_bps = 300_000;
            let mut sender = VideoSendPath::new(config, t0).expect("valid");
            let mut camera = TestPattern::new(Resolution::new(320, 180).expect("valid"), 30);
            let mut packets = Vec::new();
            let mut media = Vec::new();
            for k in 0..60u64 {
                let now = t0 + Duration::from_nanos(k * 33_333_333);
                sender.push_frame(&camera.next_frame(), now).expect("sent");
                while let Some(packet) = sender.poll_packet() {
                    if let Ok(rtp) = RtpPacket::parse(&packet.data)
                        && rtp.ssrc() == MEDIA
                    {
                        media.push(rtp.sequence_number().0);
                    }
                    packets.push(packet.data);
                }
                if k % 10 == 9 {
                    let lost: Vec<u16> = media.iter().copied().step_by(10).collect();
                    let mut rtcp = Vec::new();
                    RtcpWriter::new(&mut rtcp)
                        .nack(0x99, MEDIA, &lost)
                        .expect("nack");
                    sender.handle_rtcp(&rtcp, now).expect("rtcp");
                    media.clear();
                }
            }
            packets
        })
    }

    #[test]
    fn a_clean_stream_decodes_every_frame() {
        let t0 = Instant::now();
        let mut receiver = receiver();
        let mut shown = 0;
        let mut now = t0;
        for (i, packet) in stream().iter().enumerate() {
            now = t0 + Duration::from_millis(i as u64);
            receiver.handle_rtp(packet, now).expect("known");
            while receiver.poll_frame().is_some() {
                shown += 1;
            }
        }
        receiver.handle_timeout(now + Duration::from_secs(1));
        while let Some(frame) = receiver.poll_frame() {
            assert_eq!(frame.codec, VideoCodec::H264);
            shown += 1;
        }
        // Frames come out at their render time; some overwrite others when they are
        // released together and nobody polls between, which is counted.
        let stats = receiver.stats(now);
        assert_eq!(stats.frames_decoded, 60);
        assert_eq!(shown + stats.frames_not_polled, 60);
        assert_eq!(stats.decode_errors, 0);
        assert_eq!(stats.packets_lost_after_recovery, 0);
        assert!(stats.rtx_received > 0 && stats.fec_received > 0);
        assert_eq!(
            stats.resolution,
            Some(Resolution::new(320, 180).expect("valid"))
        );
    }

    #[test]
    fn strangers_and_garbage_are_refused_and_counted() {
        let t0 = Instant::now();
        let mut receiver = receiver();
        assert!(matches!(
            receiver.handle_rtp(&[0x80, 0x60, 0, 1], t0),
            Err(VideoPathError::BadPacket { .. })
        ));
        let mut packet = Vec::new();
        RtpPacketBuilder::new(96, 1, 0, 0x4242)
            .payload(&[0x65, 0x88])
            .write_vec(&mut packet)
            .expect("rtp");
        assert!(matches!(
            receiver.handle_rtp(&packet, t0),
            Err(VideoPathError::UnknownStream { ssrc: 0x4242, .. })
        ));
        RtpPacketBuilder::new(100, 1, 0, MEDIA)
            .payload(&[0x65, 0x88])
            .write_vec(&mut packet)
            .expect("rtp");
        assert!(matches!(
            receiver.handle_rtp(&packet, t0),
            Err(VideoPathError::UnknownStream {
                payload_type: 100,
                ..
            })
        ));
        assert!(receiver.handle_rtp(&[0u8; 1600], t0).is_err());
        assert_eq!(receiver.stats(t0).packets_refused, 4);
        assert!(receiver.report_block(t0).is_none());
        // Padding on the RTX stream (a sender's probe) is no error, and no retransmission.
        RtpPacketBuilder::new(97, 7, 0, RTX)
            .padding(200)
            .write_vec(&mut packet)
            .expect("rtp");
        receiver.handle_rtp(&packet, t0).expect("padding is fine");
        let stats = receiver.stats(t0);
        assert_eq!((stats.padding_received, stats.rtx_received), (1, 0));
        assert_eq!(stats.packets_refused, 4);
    }

    #[test]
    fn losses_give_nacks_then_a_pli_and_report_blocks_count_them() {
        let t0 = Instant::now();
        let mut config = VideoReceiveConfig::new(0x99, MEDIA, RTX, FEC);
        config.fec = false;
        let mut receiver = VideoReceivePath::new(config).expect("valid");
        let media: Vec<&Vec<u8>> = stream()
            .iter()
            .filter(|p| RtpPacket::parse(p).is_ok_and(|r| r.ssrc() == MEDIA))
            .collect();
        let mut now = t0;
        for (i, packet) in media.iter().enumerate() {
            now = t0 + Duration::from_millis(5 * i as u64);
            // Every fifth packet after the first keyframe is lost.
            if i > 20 && i % 5 == 0 {
                continue;
            }
            receiver.handle_rtp(packet, now).expect("known");
        }
        for k in 1..=40 {
            receiver.handle_timeout(now + Duration::from_millis(50 * k));
        }
        let mut kinds = (0, 0);
        let mut out = Vec::new();
        while receiver.poll_rtcp(&mut out) {
            let compound = RtcpCompound::parse(&out).expect("rtcp");
            for packet in compound.packets() {
                match packet.expect("valid") {
                    RtcpPacket::Nack(nack) => {
                        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (0x99, MEDIA));
                        kinds.0 += 1;
                    }
                    RtcpPacket::Pli(pli) => {
                        assert_eq!(pli.media_ssrc, MEDIA);
                        kinds.1 += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(kinds.0 > 0 && kinds.1 > 0, "{kinds:?}");
        let stats = receiver.stats(now);
        assert_eq!(stats.plis_sent, kinds.1);
        assert!(stats.nacks_sent > 0);
        let lost = stats.packets_lost_before_recovery;
        assert!(lost > 0 && lost == stats.packets_lost_after_recovery);
        let block = receiver.report_block(now).expect("block");
        assert_eq!(block.ssrc, MEDIA);
        assert_eq!(block.cumulative_lost as u64, lost);
        assert!(block.fraction_lost > 0);
        // Nothing lost since: the next block says so.
        assert_eq!(receiver.report_block(now).expect("block").fraction_lost, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any subset of a real stream's packets, in any order, duplicated, corrupted or
        /// replaced by garbage, at any pace: no panic, and everything held stays within
        /// its bounds.
        #[test]
        fn any_packets_in_any_order_are_survived(
            picks in proptest::collection::vec(
                (0usize..10_000, proptest::option::of((0usize..64, any::<u8>())), 0u64..80),
                0..300,
            ),
            garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8),
        ) {
            let packets = stream();
            let t0 = Instant::now();
            let mut receiver = receiver();
            let mut now = t0;
            let mut out = Vec::new();
            for (index, corrupt, step_ms) in picks {
                now += Duration::from_millis(step_ms);
                let mut packet = packets[index % packets.len()].clone();
                if let Some((at, byte)) = corrupt
                    && let Some(b) = packet.get_mut(at)
                {
                    *b ^= byte;
                }
                let _ = receiver.handle_rtp(&packet, now);
                if step_ms % 3 == 0 {
                    let _ = receiver.poll_frame();
                    while receiver.poll_rtcp(&mut out) {}
                }
            }
            for junk in &garbage {
                prop_assert!(receiver.handle_rtp(junk, now).is_err() || junk.len() >= 12);
            }
            receiver.handle_timeout(now + Duration::from_secs(5));
            let memory = receiver.memory();
            let config = receiver.config().clone();
            prop_assert!(memory.jitter.packets <= config.jitter.max_packets);
            prop_assert!(memory.jitter.frames <= config.jitter.max_frames);
            prop_assert!(memory.ready_frames <= config.ready_frames);
            prop_assert!(memory.pending_feedback <= config.max_pending_feedback);
            prop_assert!(memory.fec_media_packets <= 512 && memory.fec_pending <= 256);
            let stats = receiver.stats(now);
            prop_assert!(stats.packets_lost_after_recovery <= stats.packets_lost_before_recovery);
        }
    }
}
