//! The audio jitter buffer proper: insert, and the decision taken at every pull.
//!
//! # The timeline
//!
//! Playout follows the sender's media time with an offset that only the buffer changes.
//! `next_ts` is the media time (extended RTP ticks) right after the last audio decoded or
//! concealed into `pending`; the media time of the next sample to play is `next_ts` minus
//! the media still waiting in `pending`. The *headroom* is how long the fastest packet of
//! the last two seconds would wait before playing: `now - play_time - min_transit`. A
//! packet is on time when its relative delay is at most the headroom, so the buffer steers
//! the headroom towards the target delay:
//!
//! - above target it removes pitch periods (accelerate), far above it removes several
//!   (fast accelerate); below target it inserts one (preemptive expand);
//! - when the next packet is missing and nothing later is here, it conceals without
//!   advancing media time (the headroom grows by what it conceals: this is how a delay
//!   step or a spike is absorbed without losing the packets that follow);
//! - when the next packet is missing but a later one is here, the missing audio is taken
//!   as lost: rebuilt from the later packet's redundancy when it has some, else concealed,
//!   advancing media time; concealment already played while waiting counts towards it;
//! - after DTX the same gaps are filled with comfort noise instead.
//!
//! Time stretching works on decoded audio that has not been stretched before, so each
//! stretch sees fresh speech and at most one stretch lands on any sample.

use super::delay::DelayEstimator;
use super::packet_buffer::{PacketBuffer, Stored};
use super::stretch::{StretchKind, TimeStretcher, crossfade_into};
use super::{
    AudioJitterConfig, AudioJitterStats, AudioPacket, AudioPacketDecoder, InsertOutcome, Operation,
    PullInfo,
};
use crate::error::{JitterError, Result};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Longest packet any codec sends (Opus: 120 ms).
const MAX_PACKET_MS: usize = 120;
/// Sequence numbers further than this from the newest are a new stream.
const MAX_SEQUENCE_JUMP: i64 = 3000;
/// A timestamp further than this from where the sequence number puts it is a new stream.
const MAX_TIMESTAMP_JUMP_S: f64 = 60.0;
/// The lowest target delay the buffer picks on its own: without any jitter a zero target
/// leaves no room to expand before the audio runs out, so a slow sender clock would be met
/// with concealment instead of a pitch-period expansion.
const FLOOR_TARGET_S: f64 = 0.005;
/// Mean square below which audio counts as a pause that can be stretched inaudibly
/// (−45 dBFS).
const QUIET_MEAN_SQUARE: f64 = 184.0 * 184.0;

/// Whether `samples` are a pause (mean square below [`QUIET_MEAN_SQUARE`]); no samples is
/// not a pause.
fn is_quiet(samples: &[i16]) -> bool {
    if samples.is_empty() {
        return false;
    }
    let energy: f64 = samples.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    energy / (samples.len() as f64) < QUIET_MEAN_SQUARE
}
/// Length of the cross-fade that merges decoded audio onto concealment.
const MERGE_MS: usize = 3;
/// Most segments `pending` is ever split into (decode, conceal, stretch pieces).
const MAX_SEGMENTS: usize = 64;

/// Where samples in `pending` came from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Decoded from, or rebuilt out of, a packet that arrived at this instant.
    Packet { arrival: Instant },
    /// Decoder concealment.
    Concealed,
    /// Comfort noise during DTX.
    ComfortNoise,
}

/// A run of samples in `pending` with one source.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    /// Samples per channel.
    len: usize,
    /// Media time the run covers, in samples per channel (differs from `len` after a
    /// stretch; 0 for concealment played while waiting).
    media: usize,
    source: Source,
    /// Already time-stretched: not stretched again.
    stretched: bool,
}

/// The stream being played.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Highest extended sequence number received, and its extended timestamp.
    highest_sequence: i64,
    highest_timestamp: i64,
}

/// The adaptive audio jitter buffer. See the [module docs](super).
///
/// ```
/// use std::time::{Duration, Instant};
/// use tincan_codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
/// use tincan_codec::AudioEncoder;
/// use tincan_jitter::{AudioJitterBuffer, AudioJitterConfig, AudioPacket, OpusPacketDecoder};
/// use tincan_media::Channels;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut encoder = OpusEncoder::new(&OpusConfig::new(48_000, Channels::Mono))?;
/// let decoder = OpusPacketDecoder::new(OpusDecoder::new(48_000, Channels::Mono)?);
/// let mut buffer = AudioJitterBuffer::new(decoder, AudioJitterConfig::default())?;
///
/// let start = Instant::now(); // the caller owns the clock
/// let mut packet = [0u8; 1500];
/// let mut out = vec![0i16; buffer.samples_per_pull()];
/// for tick in 0..100u32 {
///     let now = start + Duration::from_millis(10 * u64::from(tick));
///     if tick % 2 == 0 {
///         // A 20 ms packet every other tick.
///         let len = encoder.encode(&[0i16; 960], &mut packet)?;
///         let frame = tick / 2;
///         buffer.insert(
///             AudioPacket { ssrc: 1, sequence: frame as u16, timestamp: frame * 960, payload: &packet[..len] },
///             now,
///         )?;
///     }
///     let info = buffer.pull(now, &mut out)?;
///     assert_eq!(info.samples, 480);
/// }
/// assert!(buffer.stats().jitter_buffer_emitted_count > 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AudioJitterBuffer<D> {
    decoder: D,
    config: AudioJitterConfig,
    stats: AudioJitterStats,
    sample_rate: u32,
    channels: usize,
    /// Samples per channel per pull (10 ms).
    pull_len: usize,
    /// 2.5 ms in samples: the granularity codecs conceal in.
    quantum: usize,
    /// Duration of the last packet, in samples per channel (20 ms until one is seen).
    nominal_frame: usize,
    packets: PacketBuffer,
    delay: DelayEstimator,
    stretcher: TimeStretcher,

    stream: Option<Stream>,
    /// The instant all times are measured from, and the timestamp media time starts at.
    base: Option<(Instant, i64)>,
    started: bool,
    /// Media time after the last audio decoded or concealed into `pending`.
    next_ts: i64,
    /// Sequence number after the last packet decoded.
    next_sequence: i64,
    /// Bit k set: packet `next_sequence - 1 - k` was decoded (to tell duplicates from
    /// late packets).
    decoded_mask: u128,
    /// Concealment played while waiting, not yet set against a gap, in samples.
    waited: usize,
    /// The last packet decoded was a DTX frame: gaps are silence, not loss.
    in_dtx: bool,
    /// The previous pull's output ended in concealment.
    concealing: bool,

    pending: Vec<i16>,
    segments: VecDeque<Segment>,
    /// The last 30 ms played, for merging onto concealment.
    recent: Vec<i16>,
    decode_scratch: Vec<i16>,
    stretch_scratch: Vec<i16>,
    /// Consecutive pulls whose output was quiet (a pause under way); saturates.
    quiet_pulls: u32,
    merge_scratch: Vec<i16>,
}

impl<D: AudioPacketDecoder> AudioJitterBuffer<D> {
    /// A buffer decoding with `decoder`.
    ///
    /// # Errors
    ///
    /// [`JitterError::InvalidConfig`] for a bad configuration or an unsupported decoder
    /// format.
    pub fn new(decoder: D, config: AudioJitterConfig) -> Result<Self> {
        let sample_rate = decoder.sample_rate();
        let channels = decoder.channels();
        check(
            "sample_rate",
            sample_rate,
            (8_000..=48_000).contains(&sample_rate) && sample_rate % 400 == 0,
            "8-48 kHz, a multiple of 400 Hz",
        )?;
        check("channels", channels, (1..=2).contains(&channels), "1 or 2")?;
        check(
            "clock_rate",
            config.clock_rate,
            (8_000..=192_000).contains(&config.clock_rate),
            "8-192 kHz",
        )?;
        check(
            "max_packets",
            config.max_packets,
            (1..=100_000).contains(&config.max_packets),
            "1-100000",
        )?;
        check(
            "max_payload_bytes",
            config.max_payload_bytes,
            (1..=65_536).contains(&config.max_payload_bytes),
            "1-65536",
        )?;
        check(
            "target_quantile",
            config.target_quantile,
            config.target_quantile > 0.0 && config.target_quantile < 1.0,
            "strictly between 0 and 1",
        )?;
        check(
            "reorder_loss_budget",
            config.reorder_loss_budget,
            (0.0..=1.0).contains(&config.reorder_loss_budget),
            "0-1",
        )?;
        check(
            "histogram_half_life",
            format!("{:?}", config.histogram_half_life),
            config.histogram_half_life >= Duration::from_millis(100)
                && config.histogram_half_life <= Duration::from_secs(3600),
            "100 ms to 1 h",
        )?;
        check(
            "max_delay",
            format!("{:?}", config.max_delay),
            config.max_delay >= config.min_delay && config.max_delay <= Duration::from_secs(10),
            "at least min_delay, at most 10 s",
        )?;
        check(
            "recovery_delay",
            format!("{:?}", config.recovery_delay),
            config.recovery_delay <= Duration::from_secs(1),
            "at most 1 s",
        )?;
        check(
            "start_delay",
            format!("{:?}", config.start_delay),
            config.start_delay <= Duration::from_secs(10),
            "at most 10 s",
        )?;
        check(
            "start_hold",
            format!("{:?}", config.start_hold),
            config.start_hold <= Duration::from_secs(60),
            "at most 60 s",
        )?;
        let pull_len = sample_rate as usize / 100;
        let stretcher = TimeStretcher::new(sample_rate, channels);
        let max_packet = sample_rate as usize * MAX_PACKET_MS / 1000;
        // Pending never holds more than what `fill` wants plus one packet, a concealment
        // chunk and a stretch's growth.
        let pending_capacity =
            (stretcher.min_input() + 2 * pull_len + max_packet + pull_len * 2) * channels * 2;
        let delay = DelayEstimator::new(
            config.max_delay.as_secs_f64(),
            config.histogram_half_life.as_secs_f64(),
            config.target_quantile,
            config.reorder_loss_budget,
            config.start_delay.as_secs_f64(),
            config.start_hold.as_secs_f64(),
        );
        Ok(Self {
            packets: PacketBuffer::new(config.max_packets, config.max_payload_bytes),
            delay,
            stats: AudioJitterStats::default(),
            sample_rate,
            channels,
            pull_len,
            quantum: sample_rate as usize / 400,
            nominal_frame: sample_rate as usize / 50,
            stream: None,
            base: None,
            started: false,
            next_ts: 0,
            next_sequence: 0,
            decoded_mask: 0,
            waited: 0,
            in_dtx: false,
            concealing: false,
            pending: Vec::with_capacity(pending_capacity),
            segments: VecDeque::with_capacity(MAX_SEGMENTS),
            recent: Vec::with_capacity(stretcher.min_input() * channels),
            decode_scratch: vec![0; max_packet * channels],
            stretch_scratch: Vec::with_capacity(pending_capacity),
            quiet_pulls: 0,
            merge_scratch: {
                // Also the window of `expand_after_history` (up to 45 ms), so sized for it.
                let mut scratch = Vec::with_capacity(stretcher.min_input() * 2 * channels);
                scratch.resize(sample_rate as usize * MERGE_MS / 1000 * channels, 0);
                scratch
            },
            stretcher,
            decoder,
            config,
        })
    }

    /// Samples per channel in one pull (10 ms).
    pub fn samples_per_pull(&self) -> usize {
        self.pull_len
    }

    /// The current target delay: how long the fastest recent packet waits before playing.
    pub fn target_delay(&self) -> Duration {
        Duration::from_secs_f64(self.target_s())
    }

    /// The counters.
    pub fn stats(&self) -> &AudioJitterStats {
        &self.stats
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The decoder, mutably.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The configuration in force.
    pub fn config(&self) -> &AudioJitterConfig {
        &self.config
    }

    /// Packets waiting to be decoded (at most `max_packets`).
    pub fn packets_held(&self) -> usize {
        self.packets.len()
    }

    /// Decoded samples per channel waiting for playout (bounded: at most a few packets'
    /// worth, whatever comes in).
    pub fn samples_held(&self) -> usize {
        self.pending.len() / self.channels
    }

    /// The most [`samples_held`](Self::samples_held) can be.
    pub fn max_samples_held(&self) -> usize {
        self.pending.capacity() / self.channels
    }

    /// Sets the lowest target delay (lip sync, say), capped at the maximum.
    pub fn set_min_delay(&mut self, min_delay: Duration) {
        self.config.min_delay = min_delay.min(self.config.max_delay);
    }

    /// Sets the delay added to the jitter estimate so that redundancy for a lost frame
    /// arrives before the frame is due (see [`AudioJitterConfig::recovery_delay`]); at
    /// most 1 s.
    pub fn set_recovery_delay(&mut self, recovery_delay: Duration) {
        self.config.recovery_delay = recovery_delay.min(Duration::from_secs(1));
    }

    /// Sets the highest target delay (at most 10 s), raising nothing above it.
    pub fn set_max_delay(&mut self, max_delay: Duration) {
        self.config.max_delay = max_delay.min(Duration::from_secs(10));
        self.config.min_delay = self.config.min_delay.min(self.config.max_delay);
    }

    /// Takes a packet that arrived at `now`.
    ///
    /// # Errors
    ///
    /// [`JitterError::EmptyPayload`] or [`JitterError::PayloadTooLarge`]; the packet is
    /// counted as discarded and the buffer carries on.
    pub fn insert(&mut self, packet: AudioPacket<'_>, now: Instant) -> Result<InsertOutcome> {
        self.insert_inner(packet, now, true)
    }

    /// Takes a frame that came as redundancy or a retransmission (a RED block, an RTX
    /// packet) rather than in its own packet on time. It is buffered like any other, but
    /// its arrival says nothing about the path's jitter (it left the sender later, or its
    /// lateness is what the recovery delay is for), so it does not enter the delay
    /// estimate: RED copies of lost frames would otherwise look like reordering and raise
    /// the target.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub fn insert_recovered(
        &mut self,
        packet: AudioPacket<'_>,
        now: Instant,
    ) -> Result<InsertOutcome> {
        self.insert_inner(packet, now, false)
    }

    fn insert_inner(
        &mut self,
        packet: AudioPacket<'_>,
        now: Instant,
        estimate: bool,
    ) -> Result<InsertOutcome> {
        self.stats.packets_received += 1;
        if packet.payload.is_empty() {
            self.stats.packets_discarded += 1;
            return Err(JitterError::EmptyPayload);
        }
        if packet.payload.len() > self.config.max_payload_bytes {
            self.stats.packets_discarded += 1;
            return Err(JitterError::PayloadTooLarge {
                len: packet.payload.len(),
                max: self.config.max_payload_bytes,
            });
        }
        let (sequence, timestamp, reset) = self.place(packet);
        if reset {
            self.reset_stream(packet);
        }
        let (base, ts_base) = *self.base.get_or_insert((now, timestamp));
        let duration = self.ticks(
            self.decoder
                .packet_samples(packet.payload)
                .filter(|&n| n > 0 && n <= self.decode_scratch.len() / self.channels)
                .unwrap_or(self.nominal_frame),
        );

        if self.started && sequence < self.next_sequence && self.was_decoded(sequence) {
            self.stats.duplicate_packets += 1;
            self.stats.packets_discarded += 1;
            return Ok(InsertOutcome::Duplicate);
        }
        if self.packets.contains(sequence) {
            self.stats.duplicate_packets += 1;
            self.stats.packets_discarded += 1;
            return Ok(InsertOutcome::Duplicate);
        }

        let Some(stream) = self.stream.as_mut() else {
            return Ok(InsertOutcome::Buffered);
        };
        let reordered = sequence < stream.highest_sequence;
        if sequence > stream.highest_sequence {
            stream.highest_sequence = sequence;
            stream.highest_timestamp = timestamp;
        }
        if estimate {
            let arrival_s = now.saturating_duration_since(base).as_secs_f64();
            let media_s = (timestamp - ts_base) as f64 / f64::from(self.config.clock_rate);
            self.delay.update(arrival_s, arrival_s - media_s, reordered);
        }

        if self.started && timestamp < self.next_ts {
            // Its audio has been played or concealed already.
            self.stats.late_packets += 1;
            self.stats.packets_discarded += 1;
            return Ok(InsertOutcome::Late);
        }
        match self
            .packets
            .insert(sequence, timestamp, duration, now, packet.payload)
        {
            Stored::Inserted => {}
            Stored::Duplicate => {
                self.stats.duplicate_packets += 1;
                self.stats.packets_discarded += 1;
                return Ok(InsertOutcome::Duplicate);
            }
            Stored::InsertedAfterOverflow => {
                self.stats.overflow_packets += 1;
                self.stats.packets_discarded += 1;
            }
        }
        Ok(if reset {
            InsertOutcome::Reset
        } else {
            InsertOutcome::Buffered
        })
    }

    /// Produces the next 10 ms of audio into `out` (interleaved,
    /// [`samples_per_pull`](Self::samples_per_pull) × channels).
    ///
    /// # Errors
    ///
    /// [`JitterError::OutputSize`] when `out` is not one pull long. Decoder failures on
    /// packet content are concealed and counted, not returned.
    pub fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<PullInfo> {
        let needed = self.pull_len * self.channels;
        if out.len() != needed {
            return Err(JitterError::OutputSize {
                got: out.len(),
                needed,
            });
        }
        if !self.started && !self.try_start(now) {
            out.fill(0);
            return Ok(PullInfo {
                operation: Operation::Silence,
                samples: self.pull_len,
                samples_from_packets: 0,
                packet_delay: None,
                target_delay: self.target_delay(),
                buffer_level: self.buffer_level(),
                media_timestamp: None,
            });
        }

        let mut operation = Operation::Normal;
        if self.fill()? {
            operation = Operation::Merge;
        }
        // Each round adds audio or closes a gap; the bound only guards against a bug
        // turning into a hang (the pull is then padded with silence).
        for _ in 0..MAX_SEGMENTS {
            if self.pending_len() >= self.pull_len {
                break;
            }
            operation = self.fill_gap()?;
            if self.fill()? {
                operation = Operation::Merge;
            }
        }
        if operation == Operation::Normal
            && let Some(stretched) = self.maybe_stretch(now)
        {
            operation = stretched;
        }
        // Wraps like RTP timestamps do.
        let media_timestamp = (self.next_ts - self.ticks(self.pending_media())) as u32;
        let (from_packets, packet_delay) = self.emit(now, out);
        if is_quiet(out) {
            self.quiet_pulls = self.quiet_pulls.saturating_add(1);
        } else {
            self.quiet_pulls = 0;
        }
        Ok(PullInfo {
            operation,
            samples: self.pull_len,
            samples_from_packets: from_packets,
            packet_delay,
            target_delay: self.target_delay(),
            buffer_level: self.buffer_level(),
            media_timestamp: Some(media_timestamp),
        })
    }

    // ---- insert helpers ----------------------------------------------------------------

    /// Extends the packet's sequence number and timestamp against the stream; says
    /// whether it starts a new stream.
    fn place(&self, packet: AudioPacket<'_>) -> (i64, i64, bool) {
        let Some(stream) = self.stream else {
            return (
                i64::from(packet.sequence),
                i64::from(packet.timestamp),
                true,
            );
        };
        let sequence = stream.highest_sequence
            + i64::from(packet.sequence.wrapping_sub(stream.highest_sequence as u16) as i16);
        let timestamp = stream.highest_timestamp
            + i64::from(
                packet
                    .timestamp
                    .wrapping_sub(stream.highest_timestamp as u32) as i32,
            );
        let jump_ticks = (MAX_TIMESTAMP_JUMP_S * f64::from(self.config.clock_rate)) as i64;
        let expected = stream.highest_timestamp
            + (sequence - stream.highest_sequence) * self.ticks(self.nominal_frame);
        let new_stream = packet.ssrc != stream.ssrc
            || (sequence - stream.highest_sequence).abs() > MAX_SEQUENCE_JUMP
            || (timestamp - expected).abs() > jump_ticks;
        if new_stream {
            (
                i64::from(packet.sequence),
                i64::from(packet.timestamp),
                true,
            )
        } else {
            (sequence, timestamp, false)
        }
    }

    /// Starts over with `packet` as the first of a new stream.
    fn reset_stream(&mut self, packet: AudioPacket<'_>) {
        let same_source = self.stream.is_some_and(|s| s.ssrc == packet.ssrc);
        if self.stream.is_some() {
            self.stats.resets += 1;
        }
        let dropped = self.packets.clear();
        self.stats.packets_discarded += dropped as u64;
        self.decoder.reset();
        if same_source {
            // Same source, new timeline: the network is the same, its delays still apply.
            self.delay.rebase();
        } else {
            self.delay.reset();
        }
        self.stream = Some(Stream {
            ssrc: packet.ssrc,
            highest_sequence: i64::from(packet.sequence),
            highest_timestamp: i64::from(packet.timestamp),
        });
        self.base = None;
        self.started = false;
        self.pending.clear();
        self.segments.clear();
        self.waited = 0;
        self.in_dtx = false;
        self.decoded_mask = 0;
    }

    fn was_decoded(&self, sequence: i64) -> bool {
        let back = self.next_sequence - 1 - sequence;
        (0..128).contains(&back) && self.decoded_mask & (1u128 << back) != 0
    }

    // ---- pull helpers ------------------------------------------------------------------

    /// Starts playout once the first packet has waited the target delay.
    fn try_start(&mut self, now: Instant) -> bool {
        let Some(first) = self.packets.first() else {
            return false;
        };
        let (sequence, timestamp) = (first.sequence, first.timestamp);
        self.next_ts = timestamp;
        self.next_sequence = sequence;
        if self.headroom_s(now) + 1e-9 < self.target_s() {
            return false;
        }
        self.started = true;
        self.decoded_mask = 0;
        true
    }

    /// Decodes packets that continue the timeline until `pending` holds enough for a pull
    /// and a stretch. Returns whether decoded audio was merged onto concealment.
    fn fill(&mut self) -> Result<bool> {
        let want = self.pull_len + self.stretcher.min_input() + self.pull_len;
        let mut merged = false;
        while self.pending_len() < want && self.segments.len() + 2 < MAX_SEGMENTS {
            let Some(first) = self.packets.first() else {
                break;
            };
            let tolerance = self.ticks(self.quantum) / 2;
            if first.timestamp > self.next_ts + tolerance {
                // A gap before it: `fill_gap` handles that when the audio is needed.
                if self.waited > 0 && first.timestamp - self.next_ts <= self.ticks(self.waited) {
                    // Concealment already played while waiting covers the gap.
                    self.waited -= self.samples(first.timestamp - self.next_ts);
                    self.next_ts = first.timestamp;
                } else {
                    break;
                }
            }
            merged |= self.decode_first()?;
        }
        Ok(merged)
    }

    /// Decodes the oldest packet into `pending`. Returns whether it was merged onto
    /// concealment.
    fn decode_first(&mut self) -> Result<bool> {
        let channels = self.channels;
        let scratch = &mut self.decode_scratch;
        let decoder = &mut self.decoder;
        let Some((sequence, timestamp, duration, arrival, result, dtx)) =
            self.packets.pop_first_with(|p| {
                let result = decoder.decode(&p.payload, scratch);
                let dtx = decoder.is_dtx(&p.payload);
                (p.sequence, p.timestamp, p.duration, p.arrival, result, dtx)
            })
        else {
            return Ok(false);
        };
        let media = self.samples(duration);
        if media > 0 {
            self.nominal_frame = media;
        }
        let shift = sequence - self.next_sequence + 1;
        self.decoded_mask = match shift {
            ..=0 => self.decoded_mask | 1,
            1..128 => (self.decoded_mask << shift) | 1,
            _ => 1,
        };
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.next_ts = timestamp + duration;
        self.in_dtx = dtx;
        if dtx {
            // Silence from here: concealment played while waiting no longer covers a gap.
            self.waited = 0;
        }
        match result {
            Ok(written) => {
                let written = written.min(self.decode_scratch.len() / channels);
                let merge = self.waited_before_merge();
                let start = self.pending.len();
                self.pending
                    .extend_from_slice(&self.decode_scratch[..written * channels]);
                if merge {
                    self.merge_at(start);
                }
                self.push_segment(Segment {
                    len: written,
                    media,
                    source: Source::Packet { arrival },
                    stretched: false,
                });
                Ok(merge)
            }
            Err(_) => {
                self.stats.decode_errors += 1;
                self.conceal_into_pending(media, media, Source::Concealed)?;
                Ok(false)
            }
        }
    }

    /// Drops concealment that was generated while waiting but not yet played, so newly
    /// decoded audio follows what was played; says whether the join needs a merge.
    fn waited_before_merge(&mut self) -> bool {
        while let Some(last) = self.segments.back() {
            if last.media == 0 && !last.stretched {
                let len = last.len;
                self.segments.pop_back();
                self.pending
                    .truncate(self.pending.len().saturating_sub(len * self.channels));
                self.waited = self.waited.saturating_sub(len);
            } else {
                break;
            }
        }
        self.waited = 0;
        let after_concealment = match self.segments.back() {
            Some(last) => last.source == Source::Concealed,
            None => self.concealing,
        };
        after_concealment && self.recent.len() >= self.stretcher.min_input() * self.channels
    }

    /// Cross-fades the decoded audio starting at `start` in `pending` from a pitch-periodic
    /// continuation of what precedes it.
    fn merge_at(&mut self, start: usize) {
        let channels = self.channels;
        let history_len = self.stretcher.min_input() * channels;
        // What precedes: the end of `recent` followed by pending audio before `start`.
        self.stretch_scratch.clear();
        let from_pending = start.min(history_len);
        let from_recent = history_len - from_pending;
        let recent_start = self.recent.len().saturating_sub(from_recent);
        self.stretch_scratch
            .extend_from_slice(&self.recent[recent_start..]);
        self.stretch_scratch
            .extend_from_slice(&self.pending[start - from_pending..start]);
        let fade = self.merge_scratch.len().min(self.pending.len() - start);
        let fade = fade - fade % channels;
        self.stretcher
            .extend_periodic(&self.stretch_scratch, &mut self.merge_scratch[..fade]);
        crossfade_into(
            &self.merge_scratch[..fade],
            &mut self.pending[start..start + fade],
            channels,
        );
    }

    /// Produces audio when the next packet is missing: recovery or concealment of a gap
    /// before a later packet, or concealment while waiting when nothing later is here.
    fn fill_gap(&mut self) -> Result<Operation> {
        let Some(first) = self.packets.first() else {
            // Nothing to play: wait, concealing, without advancing media time.
            // Whole 10 ms chunks: SILK conceals in 10 ms frames, and asking libopus for
            // less drops the rest of its frame, so the next call would not continue it.
            let needed = self.pull_len - self.pending_len();
            let chunk = needed.div_ceil(self.pull_len) * self.pull_len;
            let source = if self.in_dtx {
                Source::ComfortNoise
            } else {
                Source::Concealed
            };
            self.conceal_into_pending(chunk, 0, source)?;
            self.waited += chunk;
            return Ok(if self.in_dtx {
                Operation::ComfortNoise
            } else {
                Operation::Expand
            });
        };
        let (first_ts, first_seq) = (first.timestamp, first.sequence);
        // Concealment played while waiting covers the start of the gap.
        let waited = self.waited - self.waited % self.quantum;
        let waited_ticks = self.ticks(waited).min((first_ts - self.next_ts).max(0));
        self.next_ts += waited_ticks;
        self.waited = 0;
        let gap = self.samples(first_ts - self.next_ts);
        if gap < self.quantum / 2 + 1 {
            self.next_ts = first_ts;
            return Ok(Operation::Merge);
        }
        // The sender was silent (DTX, the sequence is unbroken): comfort noise.
        let silence = self.in_dtx || first_seq == self.next_sequence;
        // Chunks follow the packet grid backwards from the later packet, so the frame just
        // before it is asked for whole: in-band FEC can only rebuild exactly that frame.
        let frame = if gap > self.nominal_frame {
            (gap - self.nominal_frame).min(self.nominal_frame)
        } else {
            gap
        };
        let frame = frame.div_ceil(self.quantum) * self.quantum;
        let frame = frame.min(self.decode_scratch.len() / self.channels);
        if silence {
            self.conceal_into_pending(frame, frame, Source::ComfortNoise)?;
            self.next_ts += self.ticks(frame);
            return Ok(Operation::ComfortNoise);
        }
        let recovered = self.packets.first().and_then(|first| {
            let out = &mut self.decode_scratch[..frame * self.channels];
            self.decoder
                .recover(&first.payload, first.sequence as u64, gap, frame, out)
                .ok()
                .flatten()
                .map(|_| first.arrival)
        });
        self.next_ts += self.ticks(frame);
        if let Some(arrival) = recovered {
            self.stats.recovered_samples += frame as u64;
            let channels = self.channels;
            self.pending
                .extend_from_slice(&self.decode_scratch[..frame * channels]);
            self.push_segment(Segment {
                len: frame,
                media: frame,
                source: Source::Packet { arrival },
                stretched: false,
            });
            Ok(Operation::Recover)
        } else {
            self.conceal_into_pending(frame, frame, Source::Concealed)?;
            Ok(Operation::Expand)
        }
    }

    /// Appends `len` concealed samples covering `media` of media time.
    fn conceal_into_pending(&mut self, len: usize, media: usize, source: Source) -> Result<()> {
        let channels = self.channels;
        let len = len.min(self.decode_scratch.len() / channels);
        let out = &mut self.decode_scratch[..len * channels];
        if self.decoder.conceal(len, out).is_err() {
            out.fill(0);
        }
        self.pending
            .extend_from_slice(&self.decode_scratch[..len * channels]);
        self.push_segment(Segment {
            len,
            media,
            source,
            stretched: false,
        });
        Ok(())
    }

    fn push_segment(&mut self, segment: Segment) {
        if let Some(last) = self.segments.back_mut()
            && last.source == segment.source
            && last.stretched == segment.stretched
        {
            last.len += segment.len;
            last.media += segment.media;
            return;
        }
        self.segments.push_back(segment);
    }

    /// Accelerates or expands the unstretched decoded audio at the front when the
    /// headroom is off target.
    fn maybe_stretch(&mut self, now: Instant) -> Option<Operation> {
        if !self.config.time_stretching || self.in_dtx {
            return None;
        }
        let headroom = self.headroom_s(now);
        let target = self.target_s();
        // A narrow band: below it, expanding one pitch period now is far better than the
        // concealment an underrun would bring; above it, every packet pays the excess.
        let above = (target / 8.0).clamp(0.005, 0.020);
        let below = (target / 8.0).clamp(0.0025, 0.020);
        let kind = if headroom > target + target.max(0.06) {
            StretchKind::FastAccelerate
        } else if headroom > target + above {
            StretchKind::Accelerate
        } else if headroom < target - below {
            StretchKind::PreemptiveExpand
        } else {
            return None;
        };
        // Editing speech is audible (PESQ scores it far below concealment-free playout);
        // editing a pause is not. Near the target, wait for a quiet stretch of audio; only
        // further off does any periodic speech get edited.
        let speech_above = self
            .config
            .accelerate_speech_beyond
            .map_or((target / 2.0).max(0.020), |d| d.as_secs_f64());
        let urgent =
            headroom > target + speech_above || headroom < target - (target / 4.0).max(0.010);
        // The region to stretch: after stretched audio, fresh decoded audio only.
        let mut start = 0;
        let mut first = 0;
        for segment in &self.segments {
            if !segment.stretched {
                break;
            }
            start += segment.len;
            first += 1;
        }
        let mut len = 0;
        let mut media = 0;
        let mut count = 0;
        let mut source = None;
        for segment in self.segments.iter().skip(first) {
            if !matches!(segment.source, Source::Packet { .. }) || segment.stretched {
                break;
            }
            source.get_or_insert(segment.source);
            len += segment.len;
            media += segment.media;
            count += 1;
        }
        let min_input = self.stretcher.min_input();
        let channels = self.channels;
        let region = start * channels..(start + len) * channels;
        if !urgent && (!self.in_long_pause() || !self.is_quiet(start, len.min(min_input))) {
            return None;
        }
        let change = if len >= min_input {
            self.stretcher.stretch(
                &self.pending[region.clone()],
                kind,
                &mut self.stretch_scratch,
            )
        } else if kind == StretchKind::PreemptiveExpand && start == 0 {
            // Low in the buffer there is too little fresh audio for a 30 ms window, yet
            // that is exactly when expanding matters. An expansion keeps the first half of
            // its window verbatim, so that half may be audio already played.
            self.expand_after_history(len)?
        } else {
            return None;
        };
        let new_len = self.stretch_scratch.len() / channels;
        self.pending.splice(region, self.stretch_scratch.drain(..));
        for _ in 0..count {
            self.segments.remove(first);
        }
        self.segments.insert(
            first,
            Segment {
                len: new_len,
                media,
                source: source.unwrap_or(Source::Concealed),
                stretched: true,
            },
        );
        match change {
            0 => None,
            c if c < 0 => {
                self.stats.removed_samples_for_acceleration += c.unsigned_abs() as u64;
                Some(if kind == StretchKind::FastAccelerate {
                    Operation::FastAccelerate
                } else {
                    Operation::Accelerate
                })
            }
            c => {
                self.stats.inserted_samples_for_deceleration += c as u64;
                Some(Operation::PreemptiveExpand)
            }
        }
    }

    /// Whether the audio played lately has been quiet for at least the configured
    /// [`pause_before_edit`](AudioJitterConfig::pause_before_edit).
    fn in_long_pause(&self) -> bool {
        let played = Duration::from_secs_f64(
            f64::from(self.quiet_pulls) * self.pull_len as f64 / f64::from(self.sample_rate),
        );
        played >= self.config.pause_before_edit
    }

    /// Whether `len` samples of `pending` from `start` are a pause (below −45 dBFS).
    fn is_quiet(&self, start: usize, len: usize) -> bool {
        let channels = self.channels;
        is_quiet(&self.pending[start * channels..(start + len) * channels])
    }

    /// Preemptive expansion of the first `len` samples of `pending` with the end of the
    /// audio already played as the first half of the analysis window. Leaves the expanded
    /// fresh audio in `stretch_scratch` and returns the change, or `None` when there is
    /// not enough of either.
    fn expand_after_history(&mut self, len: usize) -> Option<isize> {
        let channels = self.channels;
        let half = self.stretcher.min_input() / 2;
        if len < half || self.recent.len() < half * channels {
            return None;
        }
        let mut window = std::mem::take(&mut self.merge_scratch);
        let history = &self.recent[self.recent.len() - half * channels..];
        window.clear();
        window.extend_from_slice(history);
        window.extend_from_slice(&self.pending[..len * channels]);
        let change = self.stretcher.stretch(
            &window,
            StretchKind::PreemptiveExpand,
            &mut self.stretch_scratch,
        );
        // The played half must have come out untouched; then drop it.
        let untouched = self.stretch_scratch.len() >= half * channels
            && self.stretch_scratch[..half * channels] == window[..half * channels];
        let merge_len = self.sample_rate as usize * MERGE_MS / 1000 * channels;
        window.truncate(merge_len);
        window.resize(merge_len, 0);
        self.merge_scratch = window;
        if change <= 0 || !untouched {
            return None;
        }
        self.stretch_scratch.drain(..half * channels);
        Some(change)
    }

    /// Moves one pull from `pending` to `out`, accounting for where each sample came from.
    fn emit(&mut self, now: Instant, out: &mut [i16]) -> (usize, Option<Duration>) {
        let channels = self.channels;
        let mut remaining = self.pull_len;
        let mut from_packets = 0;
        let mut packet_delay = None;
        let target = self.target_s();
        let minimum = self.config.min_delay.as_secs_f64();
        while remaining > 0 {
            let Some(segment) = self.segments.front_mut() else {
                break;
            };
            let take = segment.len.min(remaining);
            // Media consumed in proportion (a stretched run covers more or less media).
            let media = if take == segment.len {
                segment.media
            } else {
                (segment.media * take / segment.len.max(1)).min(segment.media)
            };
            let source = segment.source;
            segment.len -= take;
            segment.media -= media;
            if segment.len == 0 {
                self.segments.pop_front();
            }
            remaining -= take;
            let count = take as u64;
            match source {
                Source::Packet { arrival } => {
                    let waited = now.saturating_duration_since(arrival);
                    packet_delay.get_or_insert(waited);
                    from_packets += take;
                    self.stats.jitter_buffer_emitted_count += count;
                    self.stats.jitter_buffer_delay += waited.as_secs_f64() * take as f64;
                    self.stats.jitter_buffer_target_delay += target * take as f64;
                    self.stats.jitter_buffer_minimum_delay += minimum * take as f64;
                    self.concealing = false;
                }
                Source::Concealed | Source::ComfortNoise => {
                    if !self.concealing {
                        self.stats.concealment_events += 1;
                    }
                    self.concealing = true;
                    self.stats.concealed_samples += count;
                    if source == Source::ComfortNoise {
                        self.stats.silent_concealed_samples += count;
                    }
                }
            }
        }
        let written = (self.pull_len - remaining) * channels;
        out[..written].copy_from_slice(&self.pending[..written]);
        out[written..].fill(0);
        self.pending.drain(..written);
        self.stats.total_samples_received += self.pull_len as u64;
        // Keep the last 30 ms played for merges.
        let keep = self.stretcher.min_input() * channels;
        if out.len() >= keep {
            self.recent.clear();
            self.recent.extend_from_slice(&out[out.len() - keep..]);
        } else {
            let excess = (self.recent.len() + out.len()).saturating_sub(keep);
            self.recent.drain(..excess.min(self.recent.len()));
            self.recent.extend_from_slice(out);
        }
        (from_packets, packet_delay)
    }

    // ---- time ----------------------------------------------------------------------------

    fn pending_len(&self) -> usize {
        self.segments.iter().map(|s| s.len).sum()
    }

    fn pending_media(&self) -> usize {
        self.segments.iter().map(|s| s.media).sum()
    }

    /// Media time of the next sample to play, in seconds from the stream's base.
    fn play_time_s(&self) -> f64 {
        let ts_base = self.base.map_or(0, |(_, ts)| ts);
        let play_ts = self.next_ts - self.ticks(self.pending_media());
        (play_ts - ts_base) as f64 / f64::from(self.config.clock_rate)
    }

    /// How long the fastest recent packet waits before it plays.
    fn headroom_s(&self, now: Instant) -> f64 {
        let Some((base, _)) = self.base else {
            return 0.0;
        };
        let Some(min_transit) = self.delay.min_transit() else {
            return 0.0;
        };
        let now_s = now.saturating_duration_since(base).as_secs_f64();
        now_s - self.play_time_s() - min_transit
    }

    fn target_s(&self) -> f64 {
        // Redundancy for a lost frame comes in later packets: the target covers most of
        // them (the typical delay plus the recovery delay), and the jitter of all packets.
        let recovery = self.config.recovery_delay.as_secs_f64();
        let base = if recovery > 0.0 {
            self.delay.target().max(self.delay.typical() + recovery)
        } else {
            self.delay.target()
        };
        base.max(FLOOR_TARGET_S).clamp(
            self.config.min_delay.as_secs_f64(),
            self.config.max_delay.as_secs_f64(),
        )
    }

    /// Audio waiting for playout: decoded, and buffered packets up to the newest.
    fn buffer_level(&self) -> Duration {
        let packets_end = self.packets.end_timestamp().unwrap_or(self.next_ts);
        let ticks = (packets_end - self.next_ts).max(0);
        let seconds = ticks as f64 / f64::from(self.config.clock_rate)
            + self.pending_len() as f64 / f64::from(self.sample_rate);
        Duration::from_secs_f64(seconds.max(0.0))
    }

    /// Samples at the decoder's rate to RTP ticks.
    fn ticks(&self, samples: usize) -> i64 {
        (samples as i64).saturating_mul(i64::from(self.config.clock_rate))
            / i64::from(self.sample_rate)
    }

    /// RTP ticks to samples at the decoder's rate (negative counts as zero).
    fn samples(&self, ticks: i64) -> usize {
        (ticks.max(0).saturating_mul(i64::from(self.sample_rate))
            / i64::from(self.config.clock_rate)) as usize
    }
}

fn check(field: &'static str, value: impl ToString, ok: bool, reason: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(JitterError::InvalidConfig {
            field,
            value: value.to_string(),
            reason,
        })
    }
}
