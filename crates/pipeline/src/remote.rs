//! Remote participants: what the application declares ([`RemoteParticipant`]), what the
//! session reports per remote ([`RemoteStats`]), and the receive state kept for each.

use std::time::{Duration, Instant};

use tincan_abr::{FeedbackConfig, FeedbackGenerator};
use tincan_codec::CodecError;
use tincan_codec::opus::{DredDecoder, OpusDecoder};
use tincan_jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioPacketDecoder, OpusPacketDecoder, PullInfo,
    RecoverySource,
};
use tincan_media::{Channels, SeqNo, SeqNoExtender};

use crate::error::Result;
use crate::quality::NetworkQuality;
use crate::session::{FRAME_SAMPLES, SAMPLE_RATE};

/// Most remote participants of a session: a 16-party call.
pub const MAX_REMOTES: usize = 15;
/// Complexity of the receiving decoder: 10 turns on the deep PLC (bit-exact with
/// complexity 0 while nothing is lost), the best last resort measured in `tincan lab loss`.
const DECODER_COMPLEXITY: u8 = 10;
/// Sequence numbers remembered for duplicate detection: 20 s of packets at 50 a second.
pub(crate) const SEEN_WINDOW: usize = 1024;
/// Words of the [`SEEN_WINDOW`] bitmap.
pub(crate) const SEEN_WORDS: usize = SEEN_WINDOW / 64;
/// The level of silence or of nothing heard (RFC 6464: -127 dBov).
pub(crate) const SILENCE: u8 = 127;

/// A remote participant as signalling knows it: its audio SSRC (which names it in events,
/// statistics and [`Session`](crate::Session) calls, and is also the SSRC of its RTCP) and
/// its video SSRCs (media, RTX, FlexFEC), whose RTP the session receives and decodes when
/// the call has video.
///
/// ```
/// use tincan_pipeline::RemoteParticipant;
/// let bob = RemoteParticipant::new(0xB0B).with_video_ssrcs(0xB0B1, 0xB0B2, 0xB0B3);
/// assert_eq!((bob.audio_ssrc, bob.video_ssrc), (0xB0B, Some(0xB0B1)));
/// assert_eq!((bob.video_rtx_ssrc, bob.video_fec_ssrc), (Some(0xB0B2), Some(0xB0B3)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteParticipant {
    /// SSRC of its audio stream and RTCP.
    pub audio_ssrc: u32,
    /// SSRC of its video stream (RTCP about it is routed to this participant too).
    pub video_ssrc: Option<u32>,
    /// SSRC of its video retransmissions (RFC 4588), if it sends them.
    pub video_rtx_ssrc: Option<u32>,
    /// SSRC of its video FlexFEC packets, if it sends them.
    pub video_fec_ssrc: Option<u32>,
}

impl RemoteParticipant {
    /// A participant sending audio as `audio_ssrc`.
    pub fn new(audio_ssrc: u32) -> Self {
        Self {
            audio_ssrc,
            video_ssrc: None,
            video_rtx_ssrc: None,
            video_fec_ssrc: None,
        }
    }

    /// Sets its video SSRC (a stream without RTX and FlexFEC).
    pub fn with_video_ssrc(mut self, ssrc: u32) -> Self {
        self.video_ssrc = Some(ssrc);
        self
    }

    /// Sets its video SSRCs: media, RTX and FlexFEC.
    pub fn with_video_ssrcs(mut self, media: u32, rtx: u32, fec: u32) -> Self {
        self.video_ssrc = Some(media);
        self.video_rtx_ssrc = Some(rtx);
        self.video_fec_ssrc = Some(fec);
        self
    }
}

/// Statistics of one remote ([`Session::remote_stats`](crate::Session::remote_stats),
/// [`Event::RemoteStats`](crate::Event::RemoteStats)).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct RemoteStats {
    /// The remote's audio SSRC.
    pub ssrc: u32,
    /// Its video SSRC, if declared.
    pub video_ssrc: Option<u32>,
    /// Whether its audio arrives now.
    pub audio_available: bool,
    /// Round trip between us and it (its report blocks about our stream), once measured.
    pub rtt: Option<Duration>,
    /// Share of its audio packets lost on the network (by RTP sequence numbers).
    pub receive_loss_before_recovery: f64,
    /// Share of its played samples that were concealed audibly (as
    /// [`SessionStats::receive_loss_after_recovery`](crate::SessionStats::receive_loss_after_recovery)).
    pub receive_loss_after_recovery: f64,
    /// Interarrival jitter of its stream (RFC 3550), seconds.
    pub jitter: f64,
    /// Mean jitter buffer delay so far, seconds.
    pub jitter_buffer_delay: f64,
    /// The jitter buffer's current target delay, seconds.
    pub jitter_buffer_target: f64,
    /// Mouth-to-ear estimate from it to us (seconds; as
    /// [`SessionStats::end_to_end_delay`](crate::SessionStats::end_to_end_delay)).
    pub end_to_end_delay: f64,
    /// Bits per second received from it over the last rate window.
    pub receive_bps: u64,
    /// RTP packets received from it (duplicates included).
    pub packets_received: u64,
    /// Concealment events (runs of concealed audio).
    pub concealment_events: u64,
    /// Its last reported voice volume, 0-100.
    pub volume: u8,
    /// Its playout volume, 0-100 ([`Session::set_remote_volume`](crate::Session::set_remote_volume)).
    pub playout_volume: u8,
    /// Network quality from it to us (updated every 2 s).
    pub quality: NetworkQuality,
    /// MOS estimate (1-4.5, E-model; `docs/PIPELINE.md`), once measured.
    pub mos: Option<f64>,
    /// Whether the application declared it (else it was accepted on its first packet).
    pub declared: bool,
    /// Whether its video arrives and decodes now (from its first decoded picture until
    /// [`REMOTE_VIDEO_TIMEOUT`](crate::video::REMOTE_VIDEO_TIMEOUT) without video packets).
    pub video_available: bool,
    /// Whether its video is received ([`Session::set_remote_video`](crate::Session::set_remote_video)).
    pub video_subscribed: bool,
    /// The rate last asked of it by REMB: its share of our receive budget
    /// ([`crate::split`]; `None` before the first report or without a budget).
    pub video_share_bps: Option<u64>,
    /// Resolution of its last decoded picture.
    pub video_resolution: Option<tincan_media::Resolution>,
    /// Pictures decoded per second over the last second.
    pub video_fps: f64,
    /// Pictures decoded (`framesDecoded`).
    pub video_frames_decoded: u64,
    /// Of those, keyframes.
    pub video_keyframes_decoded: u64,
    /// Freezes (`freezeCount`: WebRTC's definition).
    pub video_freeze_count: u64,
    /// Their total duration (`totalFreezesDuration`).
    pub video_freeze_duration: Duration,
    /// Video receive rate (media, RTX, FlexFEC) over the last second, bits per second.
    pub video_receive_bps: u64,
    /// Video packets lost on the network (before RTX and FlexFEC).
    pub video_packets_lost_before_recovery: u64,
    /// Video packets lost even after RTX and FlexFEC.
    pub video_packets_lost_after_recovery: u64,
}

/// Sequence and timing state of the remote's RTP stream, from its first packet.
#[derive(Debug, Clone)]
pub(crate) struct RtpState {
    pub(crate) seq: SeqNoExtender,
    pub(crate) first_ext: i64,
    pub(crate) highest_ext: i64,
    /// Distinct sequence numbers received (copies and duplicates counted once, within
    /// [`SEEN_WINDOW`]).
    pub(crate) received: u64,
    /// Which of the last [`SEEN_WINDOW`] extended sequence numbers arrived, a bit each.
    pub(crate) seen: [u64; SEEN_WORDS],
    /// For the RR's fraction lost: expected and received at the last report.
    pub(crate) expected_prior: i64,
    pub(crate) received_prior: u64,
    /// RFC 3550 interarrival jitter, in RTP ticks.
    pub(crate) jitter: f64,
    pub(crate) last_transit: Option<i64>,
}

impl RtpState {
    pub(crate) fn new(first: SeqNo) -> Self {
        let mut seq = SeqNoExtender::new();
        let ext = seq.extend(first);
        Self {
            seq,
            first_ext: ext,
            highest_ext: ext - 1,
            received: 0,
            seen: [0; SEEN_WORDS],
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            last_transit: None,
        }
    }

    pub(crate) fn expected(&self) -> i64 {
        self.highest_ext - self.first_ext + 1
    }

    /// Records `ext` as arrived; true the first time it is seen. Sequence numbers older
    /// than [`SEEN_WINDOW`] below the highest are ignored (counted neither way).
    pub(crate) fn mark_seen(&mut self, ext: i64) -> bool {
        let window = SEEN_WINDOW as i64;
        if ext <= self.highest_ext - window {
            return false;
        }
        if ext > self.highest_ext {
            // Clear the bits of the numbers skipped over (at most a window's worth).
            let from = (self.highest_ext + 1).max(ext - window + 1);
            for e in from..=ext {
                let bit = e.rem_euclid(window) as usize;
                self.seen[bit / 64] &= !(1u64 << (bit % 64));
            }
            self.highest_ext = ext;
        }
        let bit = ext.rem_euclid(window) as usize;
        let mask = 1u64 << (bit % 64);
        let new = self.seen[bit / 64] & mask == 0;
        self.seen[bit / 64] |= mask;
        new
    }
}

/// The remote's Opus decoder, with concealment made silent while the remote is quiet (see
/// [`RemoteStream::set_quiet`]).
#[derive(Debug)]
pub(crate) struct RemoteDecoder {
    opus: OpusPacketDecoder,
    quiet: bool,
}

impl AudioPacketDecoder for RemoteDecoder {
    fn sample_rate(&self) -> u32 {
        self.opus.sample_rate()
    }
    fn channels(&self) -> usize {
        self.opus.channels()
    }
    fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        self.opus.packet_samples(payload)
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        self.opus.decode(payload, out)
    }
    fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        if self.quiet {
            let len = (samples * self.opus.channels()).min(out.len());
            out[..len].fill(0);
            return Ok(len / self.opus.channels().max(1));
        }
        self.opus.conceal(samples, out)
    }
    fn recover(
        &mut self,
        next_payload: &[u8],
        next_id: u64,
        offset: usize,
        samples: usize,
        out: &mut [i16],
    ) -> Result<Option<RecoverySource>, CodecError> {
        self.opus
            .recover(next_payload, next_id, offset, samples, out)
    }
    fn is_dtx(&self, payload: &[u8]) -> bool {
        self.opus.is_dtx(payload)
    }
    fn reset(&mut self) {
        self.opus.reset();
    }
}

/// Counters at the last quality evaluation, for the interval's figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QualityPrior {
    pub(crate) total_samples: u64,
    pub(crate) concealed: u64,
    pub(crate) silent_concealed: u64,
    pub(crate) concealment_events: u64,
}

/// Everything the session keeps for one remote.
pub(crate) struct RemoteStream {
    pub(crate) participant: RemoteParticipant,
    pub(crate) declared: bool,
    pub(crate) created: Instant,
    pub(crate) rtp: Option<RtpState>,
    /// Last RTP packet.
    pub(crate) last_arrival: Option<Instant>,
    /// Last datagram of any kind (RTP or RTCP) from it.
    pub(crate) last_heard: Option<Instant>,
    pub(crate) available: bool,
    /// The last packet's primary frame was a DTX frame: the sender is silent and sends
    /// only comfort-noise updates.
    pub(crate) in_dtx: bool,
    /// The last packet was quiet (see [`RemoteStream::set_quiet`]).
    pub(crate) quiet: bool,
    /// Loudest level (lowest -dBov) since the last volume event.
    pub(crate) loudest: Option<u8>,
    pub(crate) next_volume: Option<Instant>,
    pub(crate) last_volume: u8,
    /// Its last SR: NTP middle 32 bits and when it arrived.
    pub(crate) last_sr: Option<(u32, Instant)>,
    /// RED depth seen in recent packets, for the receiver's recovery delay.
    pub(crate) red_depth: usize,
    /// Share of packets lost in the last report interval.
    pub(crate) recent_loss: f64,
    pub(crate) buffer: AudioJitterBuffer<RemoteDecoder>,
    pub(crate) feedback: FeedbackGenerator,
    /// Playout volume 0-100.
    pub(crate) volume: u8,
    /// This pull's decoded audio.
    pub(crate) frame: [i16; FRAME_SAMPLES],
    pub(crate) last_pull: Option<PullInfo>,
    /// Loudest level and voice flag of the packets of this speaker tick and the last one:
    /// the mixer's view of whether the stream is silent.
    pub(crate) level_now: (u8, bool),
    pub(crate) level_before: (u8, bool),
    pub(crate) packets_received: u64,
    pub(crate) bytes_window: u64,
    pub(crate) receive_bps: u64,
    pub(crate) quality: NetworkQuality,
    pub(crate) mos: Option<f64>,
    pub(crate) prior: QualityPrior,
}

impl std::fmt::Debug for RemoteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStream")
            .field("participant", &self.participant)
            .field("available", &self.available)
            .finish_non_exhaustive()
    }
}

impl RemoteStream {
    /// Fresh receive state: a new jitter buffer and decoder, nothing received.
    pub(crate) fn new(
        participant: RemoteParticipant,
        declared: bool,
        local_ssrc: u32,
        jitter: &AudioJitterConfig,
        now: Instant,
    ) -> Result<Self> {
        let mut decoder = OpusPacketDecoder::new(OpusDecoder::new(SAMPLE_RATE, Channels::Mono)?)
            .with_dred(DredDecoder::new(SAMPLE_RATE)?)?;
        decoder.decoder_mut().set_complexity(DECODER_COMPLEXITY)?;
        let decoder = RemoteDecoder {
            opus: decoder,
            quiet: false,
        };
        let buffer = AudioJitterBuffer::new(decoder, jitter.clone())?;
        let feedback = FeedbackGenerator::new(FeedbackConfig {
            sender_ssrc: local_ssrc,
            media_ssrc: participant.audio_ssrc,
            ..FeedbackConfig::default()
        })?;
        Ok(Self {
            participant,
            declared,
            created: now,
            rtp: None,
            last_arrival: None,
            last_heard: None,
            available: false,
            in_dtx: false,
            quiet: false,
            loudest: None,
            next_volume: None,
            last_volume: 0,
            last_sr: None,
            red_depth: 0,
            recent_loss: 0.0,
            buffer,
            feedback,
            volume: 100,
            frame: [0; FRAME_SAMPLES],
            last_pull: None,
            level_now: (SILENCE, false),
            level_before: (SILENCE, false),
            packets_received: 0,
            bytes_window: 0,
            receive_bps: 0,
            quality: NetworkQuality::Unknown,
            mos: None,
            prior: QualityPrior::default(),
        })
    }

    pub(crate) fn ssrc(&self) -> u32 {
        self.participant.audio_ssrc
    }

    /// Whether `ssrc` is one of its streams.
    pub(crate) fn owns(&self, ssrc: u32) -> bool {
        let p = &self.participant;
        p.audio_ssrc == ssrc
            || p.video_ssrc == Some(ssrc)
            || p.video_rtx_ssrc == Some(ssrc)
            || p.video_fec_ssrc == Some(ssrc)
    }

    /// Notes whether the last packet was quiet: a DTX frame, or one its sender marked as
    /// no voice at [`DTX_GATE_LEVEL`](crate::session::DTX_GATE_LEVEL) or below (comfort-noise
    /// updates, the silence before DTX starts). While quiet, concealment is silence and the
    /// decoder runs at complexity 0: comfort noise (and the deep PLC, complexity ≥ 5, which
    /// runs a neural network per 10 ms) for up to 15 silent remotes was most of a 16-party
    /// call's time, for audio the mixer skips anyway (a quiet stream is below
    /// [`SILENT_LEVEL`](crate::mixer::SILENT_LEVEL) by construction: the sender sends
    /// digital silence below -50 dBov). Decoding packets is bit-exact at any complexity;
    /// the first voiced packet brings the deep PLC and real concealment back.
    pub(crate) fn set_quiet(&mut self, quiet: bool) -> Result<()> {
        if quiet != self.quiet {
            self.quiet = quiet;
            let complexity = if quiet { 0 } else { DECODER_COMPLEXITY };
            let decoder = self.buffer.decoder_mut();
            decoder.quiet = quiet;
            decoder.opus.decoder_mut().set_complexity(complexity)?;
        }
        Ok(())
    }

    /// When its audio counts as unavailable without further packets.
    pub(crate) fn audio_deadline(&self) -> Option<Instant> {
        let timeout = if self.in_dtx {
            crate::session::DTX_AUDIO_TIMEOUT
        } else {
            crate::session::REMOTE_AUDIO_TIMEOUT
        };
        self.last_arrival
            .filter(|_| self.available)
            .map(|t| t + timeout)
    }

    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = Some(self.last_heard.map_or(now, |t| t.max(now)));
    }

    /// Loss before recovery so far (distinct sequence numbers).
    pub(crate) fn loss_before_recovery(&self) -> (f64, f64) {
        match &self.rtp {
            Some(rtp) => {
                let expected = rtp.expected().max(0) as f64;
                ((expected - rtp.received as f64).max(0.0), expected)
            }
            None => (0.0, 0.0),
        }
    }

    /// Interarrival jitter, seconds.
    pub(crate) fn jitter_seconds(&self) -> f64 {
        self.rtp
            .as_ref()
            .map_or(0.0, |r| r.jitter / f64::from(SAMPLE_RATE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_duplicates_count_once() {
        let mut rtp = RtpState::new(SeqNo(65_530));
        // Across the wrap, with a duplicate, a gap and a late arrival.
        let mut new = 0;
        for seq in [65_530u16, 65_531, 65_531, 65_535, 0, 2, 1, 1, 65_532] {
            let ext = rtp.seq.extend(SeqNo(seq));
            new += usize::from(rtp.mark_seen(ext));
        }
        assert_eq!(new, 7);
        assert_eq!(rtp.expected(), 9);
        // Far beyond the window: the old bits are cleared, the number counts.
        assert!(rtp.mark_seen(rtp.highest_ext + 5000));
        assert!(!rtp.mark_seen(rtp.highest_ext - 2000));
    }
}
