//! The adaptive audio jitter buffer (NetEq-class).
//!
//! Packets go in whenever they arrive ([`AudioJitterBuffer::insert`]); audio comes out in
//! 10 ms pulls ([`AudioJitterBuffer::pull`]), which is when every decision is taken.

mod buffer;
mod decoder;
mod delay;
mod packet_buffer;
mod stretch;

pub use buffer::AudioJitterBuffer;
pub use decoder::{AudioPacketDecoder, OpusPacketDecoder, RecoverySource};

use std::time::Duration;

/// How an audio jitter buffer behaves. [`Default`] suits interactive calls.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioJitterConfig {
    /// Lowest target delay the application allows (for lip sync, say). Default 0.
    pub min_delay: Duration,
    /// Highest target delay the application allows. Default 2 s.
    pub max_delay: Duration,
    /// Most packets held; on overflow the oldest are dropped and counted. Default 500.
    pub max_packets: usize,
    /// Largest payload accepted, in bytes. Default 1500.
    pub max_payload_bytes: usize,
    /// Share of (in-order) packets the target delay covers, from the delay histogram.
    /// Default 0.98.
    pub target_quantile: f64,
    /// Late-loss budget for reordered packets: the target also covers reordered packets,
    /// so that at most this share of all packets is lost to reordering. Default 0.005.
    pub reorder_loss_budget: f64,
    /// Half-life of the delay histogram's memory. Default 8 s (about 400 packets).
    pub histogram_half_life: Duration,
    /// Time stretching (accelerate / preemptive expand) on or off. Off gives a buffer that
    /// only conceals, for comparison. Default on.
    pub time_stretching: bool,
    /// The RTP clock rate of the payload (48 000 for Opus whatever the decoder's rate).
    pub clock_rate: u32,
    /// The target delay before enough packets have arrived to estimate it. Default 60 ms.
    pub start_delay: Duration,
    /// For this long after the first packet the target stays at least `start_delay`,
    /// while the delay histogram learns the path. Default 0.
    pub start_hold: Duration,
    /// How long after a lost frame's own packet the packets carrying its redundancy (RED
    /// copies, in-band FEC, DRED in a later packet) may arrive and still be in time: about
    /// one packet per redundant frame worth waiting for. The target then covers the
    /// typical (95th percentile) delay plus this, as well as the jitter of all packets. The loss
    /// policy sets it; [`AudioJitterBuffer::set_recovery_delay`](crate::AudioJitterBuffer::set_recovery_delay)
    /// changes it mid-call. Default 0.
    pub recovery_delay: Duration,
    /// How far above the target the delay may be before voiced speech is accelerated;
    /// closer than that only pauses are shortened (editing speech is audible, editing a
    /// pause is not). `None`: half the target, at least 20 ms. Default `None`.
    pub accelerate_speech_beyond: Option<Duration>,
    /// Near the target, pauses are edited only once this much quiet audio has been played
    /// in a row: a real pause between phrases, not the short gap of a stop consonant,
    /// where a cut or an inserted period is heard (PESQ-WB counts it). Urgent edits (far
    /// from the target) ignore it. Default 0 (any quiet stretch).
    pub pause_before_edit: Duration,
}

impl AudioJitterConfig {
    /// For calls that would rather spend some delay than conceal or edit speech: the
    /// target covers 99.9% of packets instead of 98%, playout starts 100 ms behind the
    /// first packet and the target stays there for 3 s (the delay histogram has not
    /// learned the path yet; shortening a pause later is inaudible, concealing a late
    /// packet is not), and speech is only
    /// accelerated when the delay is 150 ms above the target, and pauses only once 150 ms of
    /// quiet has been played. With 20 ms of jitter this costs about 8 ms of mean delay and
    /// raises PESQ from 3.5 to 4.2 (`docs/LOSS.md`).
    pub fn high_quality() -> Self {
        Self {
            target_quantile: 0.999,
            start_delay: Duration::from_millis(100),
            start_hold: Duration::from_secs(3),
            accelerate_speech_beyond: Some(Duration::from_millis(150)),
            pause_before_edit: Duration::from_millis(150),
            ..Self::default()
        }
    }
}

impl Default for AudioJitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::ZERO,
            max_delay: Duration::from_secs(2),
            max_packets: 500,
            max_payload_bytes: 1500,
            target_quantile: 0.98,
            reorder_loss_budget: 0.005,
            histogram_half_life: Duration::from_secs(8),
            time_stretching: true,
            clock_rate: 48_000,
            start_delay: Duration::from_millis(60),
            start_hold: Duration::ZERO,
            recovery_delay: Duration::ZERO,
            accelerate_speech_beyond: None,
            pause_before_edit: Duration::ZERO,
        }
    }
}

/// One received RTP audio packet, borrowed: the buffer copies the payload into storage it
/// allocated up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioPacket<'a> {
    /// The RTP SSRC; a new one resets the buffer.
    pub ssrc: u32,
    /// The RTP sequence number.
    pub sequence: u16,
    /// The RTP timestamp, at the decoder's sample rate.
    pub timestamp: u32,
    /// The codec payload.
    pub payload: &'a [u8],
}

/// What [`AudioJitterBuffer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored for playout.
    Buffered,
    /// A copy of a packet already held or played: dropped.
    Duplicate,
    /// Its audio has already been played out (or concealed): dropped, counted as late.
    Late,
    /// It started a new stream (new SSRC, or a sequence or timestamp jump): the buffer was
    /// flushed and this packet is the first of the new stream.
    Reset,
}

/// The operation a pull performed, as NetEq names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Decoded audio played as is.
    Normal,
    /// Audio shortened by one or more pitch periods because the buffer is above target.
    Accelerate,
    /// Like accelerate, removing several periods, because the buffer is far above target.
    FastAccelerate,
    /// Audio lengthened by a pitch period because the buffer is below target.
    PreemptiveExpand,
    /// A missing packet concealed by the decoder.
    Expand,
    /// A missing packet rebuilt from redundancy in a later packet.
    Recover,
    /// The first decoded audio after concealment, cross-faded onto the concealed signal.
    Merge,
    /// Comfort noise while the sender is in DTX.
    ComfortNoise,
    /// Silence: nothing has been received yet.
    Silence,
}

/// What one pull produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PullInfo {
    /// The operation that produced (most of) this audio.
    pub operation: Operation,
    /// Samples per channel written (always one pull's worth).
    pub samples: usize,
    /// Of those, samples that came from received packets (decoded or recovered, possibly
    /// time-stretched), the rest being concealment, comfort noise or silence.
    pub samples_from_packets: usize,
    /// For audio from received packets: how long the packet of the first such sample
    /// waited between arrival and this pull (the per-packet playout delay).
    pub packet_delay: Option<Duration>,
    /// The target delay after this pull.
    pub target_delay: Duration,
    /// Audio waiting for playout after this pull (decoded and still encoded), as time.
    pub buffer_level: Duration,
    /// The RTP timestamp of the first sample this pull played (its media time), `None`
    /// before playout starts. With the sender's capture clock it gives mouth-to-ear delay.
    pub media_timestamp: Option<u32>,
}

/// Counters in the terms of the WebRTC statistics specification (`RTCInboundRtpStreamStats`)
/// where it has them. Sample counts are per channel.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AudioJitterStats {
    /// Packets received (inserted), duplicates included.
    pub packets_received: u64,
    /// `packetsDiscarded`: packets dropped as late, duplicate or by overflow.
    pub packets_discarded: u64,
    /// Packets that arrived after their playout time.
    pub late_packets: u64,
    /// Duplicate packets dropped.
    pub duplicate_packets: u64,
    /// Packets dropped because the buffer was full.
    pub overflow_packets: u64,
    /// Resets (new SSRC, sequence or timestamp jump).
    pub resets: u64,
    /// `jitterBufferDelay`: sum over emitted samples of the time from their packet's
    /// arrival to their emission, in seconds.
    pub jitter_buffer_delay: f64,
    /// `jitterBufferTargetDelay`: sum over emitted samples of the target delay at emission,
    /// in seconds.
    pub jitter_buffer_target_delay: f64,
    /// `jitterBufferMinimumDelay`: sum over emitted samples of the minimum delay the
    /// application set, in seconds.
    pub jitter_buffer_minimum_delay: f64,
    /// `jitterBufferEmittedCount`: samples emitted that came from packets.
    pub jitter_buffer_emitted_count: u64,
    /// `totalSamplesReceived`: every sample emitted, concealment included.
    pub total_samples_received: u64,
    /// `concealedSamples`: samples that were concealed (not from packets).
    pub concealed_samples: u64,
    /// `silentConcealedSamples`: concealed samples that were silent or comfort noise.
    pub silent_concealed_samples: u64,
    /// `concealmentEvents`: runs of concealment that follow non-concealed audio.
    pub concealment_events: u64,
    /// Samples rebuilt from redundancy (FEC, DRED) instead of concealed.
    pub recovered_samples: u64,
    /// `insertedSamplesForDeceleration`.
    pub inserted_samples_for_deceleration: u64,
    /// `removedSamplesForAcceleration`.
    pub removed_samples_for_acceleration: u64,
    /// Decode errors on corrupt payloads (the audio is concealed instead).
    pub decode_errors: u64,
}

impl AudioJitterStats {
    /// Mean jitter buffer delay (`jitterBufferDelay / jitterBufferEmittedCount`).
    pub fn mean_delay(&self) -> Duration {
        if self.jitter_buffer_emitted_count == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(
                self.jitter_buffer_delay / self.jitter_buffer_emitted_count as f64,
            )
        }
    }
}
