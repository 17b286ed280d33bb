//! RTP payload formats: what goes between the RTP header and the end of the packet.
//!
//! - [`opus`]: RFC 7587, one Opus packet per RTP payload.
//! - [`red`]: RFC 2198 redundant audio data (primary plus older encodings).
//! - [`h264`]: RFC 6184 packetization-mode 1 (single NAL unit, STAP-A, FU-A).
//! - [`av1`]: the AOMedia "RTP Payload Format for AV1" v1.0 (aggregation header, OBU
//!   elements, fragmentation).
//!
//! Everything here is sans-IO and works on payload byte slices: the RTP header is parsed
//! and written elsewhere, and the depacketizers only take the per-packet facts they need
//! ([`PacketInfo`]: sequence number, timestamp, marker bit). Depacketizers expect packets
//! in sequence order (after a jitter buffer): a sequence gap is treated as loss.
//!
//! Payloaders write into caller-owned, reused buffers ([`PayloadPackets`], `Vec<u8>`), and
//! depacketizers reuse their frame buffers, so after warm-up neither allocates per packet.
//! Depacketizers bound the frame they reassemble (see their `max_frame_size`) and count
//! what they drop in [`DepacketizerStats`].

pub mod av1;
pub mod h264;
pub mod opus;
pub mod red;

use thiserror::Error;

/// Why a payload could not be packetized or depacketized.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload or frame is empty where data is required.
    #[error("empty {what}")]
    Empty {
        /// What was empty ("Opus packet", "RTP payload", ...).
        what: &'static str,
    },
    /// A payload or frame is larger than the format or configuration allows.
    #[error("{what} of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// A header or length field says more bytes follow than the payload holds.
    #[error("truncated {what}: needs {needed} bytes, {available} available")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// The configured MTU cannot hold even the smallest packet of the format.
    #[error("MTU of {mtu} bytes is below the minimum of {min}")]
    MtuTooSmall {
        /// The MTU asked for.
        mtu: usize,
        /// The smallest MTU the format can work with.
        min: usize,
    },
    /// An RFC 2198 field value is outside its bit width.
    #[error("RED {field} {value} is out of range (maximum {max})")]
    RedFieldRange {
        /// The field ("payload type", "timestamp offset", "block length").
        field: &'static str,
        /// The value given.
        value: u32,
        /// The largest value the field holds.
        max: u32,
    },
    /// An H.264 NAL unit type this implementation does not accept in a payload
    /// (STAP-B, MTAP16, MTAP24 and FU-B need packetization-mode 2; 0, 30, 31 are undefined).
    #[error("unsupported H.264 payload NAL unit type {nal_type}")]
    H264UnsupportedNalType {
        /// The NAL unit type (0..=31).
        nal_type: u8,
    },
    /// An H.264 payload is malformed (e.g. an FU-A with both start and end bits).
    #[error("invalid H.264 payload: {reason}")]
    H264Invalid {
        /// What was wrong.
        reason: &'static str,
    },
    /// An Annex B access unit handed to the packetizer does not start with a start code.
    #[error("H.264 access unit does not start with a start code (first byte {first:#04x})")]
    H264MissingStartCode {
        /// The first byte of the input.
        first: u8,
    },
    /// A LEB128 value is longer than 8 bytes or exceeds 32 bits.
    #[error("invalid LEB128 value: {reason}")]
    Leb128 {
        /// What was wrong.
        reason: &'static str,
    },
    /// An AV1 OBU or aggregation header is malformed.
    #[error("invalid AV1 payload: {reason}")]
    Av1Invalid {
        /// What was wrong.
        reason: &'static str,
    },
    /// An AV1 OBU header has its forbidden bit set.
    #[error("AV1 OBU header {header:#04x} has the forbidden bit set")]
    Av1ForbiddenBit {
        /// The OBU header byte.
        header: u8,
    },
}

/// The facts about one RTP packet a depacketizer needs besides its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketInfo {
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp: all packets of one frame share it.
    pub timestamp: u32,
    /// RTP marker bit: set on the last packet of a frame (H.264 access unit, AV1 temporal unit).
    pub marker: bool,
}

/// A frame a depacketizer reassembled; borrows the depacketizer's buffer until the next push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizedFrame<'a> {
    /// The frame in its codec's storage format (Annex B for H.264, low-overhead OBU
    /// bitstream for AV1).
    pub data: &'a [u8],
    /// RTP timestamp of its packets.
    pub timestamp: u32,
    /// It carries a keyframe (H.264: IDR or SPS; AV1: a sequence header).
    pub keyframe: bool,
    /// No packet since the previous frame was lost and nothing in it was dropped.
    /// `false` means a decoder should expect damage (and a receiver may ask for a keyframe).
    pub complete: bool,
}

/// What a depacketizer saw and dropped since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepacketizerStats {
    /// Payloads pushed.
    pub packets: u64,
    /// Frames returned.
    pub frames: u64,
    /// Of those, frames returned with `complete == false`.
    pub incomplete_frames: u64,
    /// Sequence gaps seen (each may cover several packets).
    pub gaps: u64,
    /// Packets lost in those gaps.
    pub lost_packets: u64,
    /// Packets older than the last one (late or duplicate), ignored.
    pub late_packets: u64,
    /// Payloads rejected as malformed.
    pub invalid_packets: u64,
    /// Frames discarded because their last packet (marker) never came: the timestamp
    /// changed first.
    pub discarded_frames: u64,
    /// Frames discarded because they grew beyond the maximum frame size.
    pub oversize_frames: u64,
    /// Units (NAL units, OBUs) dropped because they were malformed once reassembled.
    pub invalid_units: u64,
}

/// Default bound on a reassembled frame: 4 MiB, above any real-time keyframe at 4K
/// (an H.264 level 5.1 MaxCPB is 300 Mbit/s, but real-time encoders stay far below a
/// second of it per frame).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 << 20;

/// Packets a payloader produced for one frame, in one reused buffer.
///
/// The marker bit belongs on the last packet ([`iter`](Self::iter) says which).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadPackets {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl PayloadPackets {
    /// An empty set; its buffers grow to the largest frame seen and are then reused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the packets, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// There are no packets.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Payload of packet `index`, if it exists.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.data.get(start..end)
    }

    /// The payloads in order, each with its marker bit (set on the last one only).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], bool)> + '_ {
        let count = self.ends.len();
        (0..count).map(move |i| (self.get(i).unwrap_or_default(), i + 1 == count))
    }

    /// Total payload bytes.
    pub fn total_len(&self) -> usize {
        self.data.len()
    }

    /// Appends bytes to the packet being written.
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Appends one byte to the packet being written.
    pub(crate) fn push_byte(&mut self, byte: u8) {
        self.data.push(byte);
    }

    /// Ends the packet being written.
    pub(crate) fn finish_packet(&mut self) {
        self.ends.push(self.data.len());
    }
}

/// What [`Assembler::begin`] decided about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Process the packet. `gap`: packets were lost just before it, so any fragment in
    /// progress must be dropped.
    Process {
        /// Packets were lost before this one.
        gap: bool,
        /// The frame was restarted (new timestamp or first packet): codec-specific
        /// per-frame state must be reset.
        new_frame: bool,
    },
    /// Ignore the packet: its frame is being skipped as oversize (its marker still ends it).
    Skip,
    /// Ignore the packet entirely: it is late or a duplicate.
    Late,
}

/// Frame reassembly shared by the video depacketizers: sequence tracking, timestamp
/// boundaries, the bounded frame buffer and the stats.
#[derive(Debug, Clone)]
pub(crate) struct Assembler {
    pub(crate) buf: Vec<u8>,
    max_frame_size: usize,
    timestamp: u32,
    /// A frame is being assembled (at least one packet of `timestamp` seen).
    open: bool,
    pub(crate) complete: bool,
    pub(crate) keyframe: bool,
    /// The current frame outgrew the bound: skip its packets until it ends.
    oversize: bool,
    /// The buffer holds a frame handed out last time; clear it before reuse.
    emitted: bool,
    expected: Option<u16>,
    pub(crate) stats: DepacketizerStats,
}

impl Assembler {
    pub(crate) fn new(max_frame_size: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_frame_size,
            timestamp: 0,
            open: false,
            complete: true,
            keyframe: false,
            oversize: false,
            emitted: false,
            expected: None,
            stats: DepacketizerStats::default(),
        }
    }

    pub(crate) fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    fn reset_frame(&mut self, timestamp: u32) {
        self.buf.clear();
        self.timestamp = timestamp;
        self.open = true;
        self.complete = true;
        self.keyframe = false;
        self.oversize = false;
    }

    /// Sequence and frame-boundary bookkeeping for one incoming packet.
    pub(crate) fn begin(&mut self, info: PacketInfo) -> Begin {
        self.stats.packets += 1;
        if self.emitted {
            self.emitted = false;
            self.open = false;
            self.buf.clear();
        }
        let mut gap = false;
        if let Some(expected) = self.expected {
            // Distance in sequence space: ahead means loss, behind means late/duplicate.
            let ahead = info.sequence.wrapping_sub(expected);
            if ahead >= 0x8000 {
                self.stats.late_packets += 1;
                return Begin::Late;
            }
            if ahead != 0 {
                gap = true;
                self.stats.gaps += 1;
                self.stats.lost_packets += u64::from(ahead);
            }
        }
        self.expected = Some(info.sequence.wrapping_add(1));
        let mut new_frame = false;
        if !self.open || info.timestamp != self.timestamp {
            if self.open && !self.oversize {
                // The previous frame's last packet never came: it cannot be trusted whole.
                self.stats.discarded_frames += 1;
            }
            self.reset_frame(info.timestamp);
            new_frame = true;
        }
        if gap {
            self.complete = false;
        }
        if self.oversize {
            return Begin::Skip;
        }
        Begin::Process { gap, new_frame }
    }

    /// Room left before the bound.
    pub(crate) fn room(&self) -> usize {
        self.max_frame_size.saturating_sub(self.buf.len())
    }

    /// Records that the frame outgrew the bound: its data is dropped and the rest of its
    /// packets skipped.
    pub(crate) fn overflow(&mut self) {
        if !self.oversize {
            self.stats.oversize_frames += 1;
        }
        self.oversize = true;
        self.buf.clear();
    }

    /// Appends to the frame, or overflows it; false when the frame is now oversize.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.room() {
            self.overflow();
            return false;
        }
        self.buf.extend_from_slice(bytes);
        true
    }

    pub(crate) fn is_oversize(&self) -> bool {
        self.oversize
    }

    /// A packet was rejected: the frame misses whatever it carried.
    pub(crate) fn reject(&mut self) {
        self.stats.invalid_packets += 1;
        self.complete = false;
    }

    /// Ends the frame if `marker` is set; returns it unless it is empty or oversize.
    pub(crate) fn finish(&mut self, marker: bool) -> Option<DepacketizedFrame<'_>> {
        if !marker || !self.open {
            return None;
        }
        self.emitted = true;
        self.open = false;
        if self.oversize || self.buf.is_empty() {
            if !self.oversize {
                self.stats.discarded_frames += 1;
            }
            return None;
        }
        self.stats.frames += 1;
        if !self.complete {
            self.stats.incomplete_frames += 1;
        }
        Some(DepacketizedFrame {
            data: &self.buf,
            timestamp: self.timestamp,
            keyframe: self.keyframe,
            complete: self.complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sequence: u16, timestamp: u32, marker: bool) -> PacketInfo {
        PacketInfo {
            sequence,
            timestamp,
            marker,
        }
    }

    #[test]
    fn payload_packets_iterate_with_marker_on_last() {
        let mut packets = PayloadPackets::new();
        assert!(packets.is_empty());
        packets.push_bytes(&[1, 2]);
        packets.finish_packet();
        packets.push_byte(3);
        packets.finish_packet();
        let all: Vec<_> = packets.iter().collect();
        assert_eq!(all, vec![(&[1u8, 2][..], false), (&[3u8][..], true)]);
        assert_eq!(packets.get(2), None);
        assert_eq!(packets.total_len(), 3);
        packets.clear();
        assert_eq!(packets.len(), 0);
    }

    #[test]
    fn assembler_tracks_gaps_late_packets_and_bounds() {
        let mut a = Assembler::new(4);
        assert_eq!(
            a.begin(info(65535, 1, false)),
            Begin::Process {
                gap: false,
                new_frame: true
            }
        );
        assert!(a.append(&[1, 2]));
        // Wraps around without a gap.
        assert_eq!(
            a.begin(info(0, 1, false)),
            Begin::Process {
                gap: false,
                new_frame: false
            }
        );
        assert_eq!(a.begin(info(0, 1, false)), Begin::Late);
        assert_eq!(a.stats.late_packets, 1);
        assert_eq!(
            a.begin(info(3, 1, true)),
            Begin::Process {
                gap: true,
                new_frame: false
            }
        );
        assert!(!a.append(&[3, 4, 5]));
        assert!(a.finish(true).is_none());
        assert_eq!(a.stats.oversize_frames, 1);
        assert_eq!(a.stats.lost_packets, 2);
        a.begin(info(4, 2, false));
        a.append(&[9]);
        // Timestamp changes before the marker: the frame is discarded.
        a.begin(info(5, 3, true));
        a.append(&[7]);
        let frame = a.finish(true).unwrap();
        assert_eq!(frame.data, &[7]);
        assert!(frame.complete);
        assert_eq!(a.stats.discarded_frames, 1);
    }
}
