//! XOR forward error correction in the FlexFEC-03 format
//! (draft-ietf-payload-flexible-fec-scheme-03) as libwebrtc and Chrome speak it
//! (`a=rtpmap:<pt> flexfec-03/90000`): FEC packets travel on their own SSRC with their own
//! sequence numbers, and each one carries the XOR of a set of media packets of one
//! protected SSRC, chosen by a bit mask relative to a base sequence number.
//!
//! # Wire format
//!
//! The FlexFEC header follows the 12-byte RTP header of the FEC packet; with one protected
//! SSRC (the only case libwebrtc sends or accepts) it is 20, 24 or 32 bytes long:
//!
//! ```text
//!     0                   1                   2                   3
//!     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  0 |R|F|P|X|  CC   |M| PT recovery |        length recovery        |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  4 |                          TS recovery                          |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  8 |   SSRCCount   |                    reserved                   |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! 12 |                             SSRC_i                            |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! 16 |           SN base_i           |k|          Mask [0-14]        |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! 20 |k|                   Mask [15-45] (optional)                   |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! 24 |k|                                                             |
//!    +-+                   Mask [46-108] (optional)                  |
//! 28 |                                                               |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A set k bit ends the mask (15, 46 or 109 bits). Mask bit `i` set means the media packet
//! with sequence number `SN base + i` is protected. The recovery fields hold the XOR, over
//! the protected packets, of: byte 0 (P, X, CC; R and F are cleared), byte 1 (M, PT), the
//! packet length minus 12, and the timestamp. The FEC payload is the XOR of everything
//! after the 12-byte fixed header (CSRCs, extension block, payload, padding), each packet
//! zero-extended to the longest one. So a recovered packet is byte-identical to the lost
//! one, header extensions included.
//!
//! # Parts
//!
//! - [`FlexFecHeader`]: parse and write the header (typed errors, every read bounds-checked);
//! - [`FlexFecEncoder`]: the sender; per frame, XORs the media packets into FEC RTP packets
//!   held in a reusable pool ([`FlexFecEncoder::packets`]);
//! - [`FlexFecDecoder`]: the receiver; media and FEC packets go in any order, recovered
//!   media packets come out of [`FlexFecDecoder::poll_recovered`]; state is bounded
//!   ([`DEFAULT_MAX_MEDIA`] media packets, [`DEFAULT_MAX_FEC`] FEC packets) and every drop
//!   is counted in [`FlexFecStats`].
//!
//! Sans-IO: no clock, sockets or threads. After warm-up neither side allocates per packet:
//! the encoder reuses its output buffers and the decoder its media slots, FEC slots and
//! scratch buffer.
//!
//! # Protection
//!
//! The caller picks a [`Protection`] per frame: the fraction of FEC packets per media
//! packet (`0.3` → `round(0.3 · n)` FEC packets, at least one when the fraction is above
//! zero, at most `n`) and a [`MaskType`]. Keyframes are usually given more protection than
//! delta frames (libwebrtc uses separate key and delta protection factors); the encoder
//! does not know which is which: pass a higher fraction with a keyframe's packets.
//!
//! # Differences from libwebrtc
//!
//! - Masks are generated, not taken from libwebrtc's tables (`fec_private_tables_*.cc`):
//!   [`MaskType::Interleaved`] (FEC packet `i` protects media packets `j` with
//!   `j % m == i`) and [`MaskType::Bursty`] (FEC packet `i` protects the `i`th consecutive
//!   run of media packets). A receiver only reads the mask, so any libwebrtc receiver
//!   decodes them.
//! - At most [`MAX_MEDIA_PACKETS`] (48, as libwebrtc's `kMaxMediaPackets`) media packets
//!   per frame, spanning at most [`MAX_MASK_BITS`] (109) sequence numbers: gaps in a
//!   frame's sequence numbers (e.g. RTX or padding interleaved) are left out of the mask.
//! - The FEC packets carry the RTP timestamp of the frame they protect (libwebrtc's
//!   `FlexfecSender` uses its own timestamp base); receivers do not use it.
//! - The decoder keeps 512 media packets and 256 FEC packets by default (libwebrtc:
//!   192 and 48) and recognises duplicates of media packets and of pending FEC packets.
//! - R=1 (retransmission) and F=1 (fixed row/column) packets and SSRCCount ≠ 1 are
//!   rejected with [`FlexFecError::Unsupported`], as libwebrtc discards them.
//!
//! # Example
//!
//! ```
//! use tincan_fec::flexfec::{FlexFecDecoder, FlexFecEncoder, MaskType, Protection};
//! use tincan_rtp::RtpPacketBuilder;
//!
//! // A frame of four media packets on SSRC 0x1234.
//! let mut media = Vec::new();
//! for i in 0..4u16 {
//!     let mut packet = Vec::new();
//!     RtpPacketBuilder::new(96, 1000 + i, 90_000, 0x1234)
//!         .marker(i == 3)
//!         .payload(&[i as u8; 100])
//!         .write_vec(&mut packet)?;
//!     media.push(packet);
//! }
//!
//! // One FEC packet (25 % of 4) protecting all of them, on SSRC 0x5678, payload type 118.
//! let mut encoder = FlexFecEncoder::new(118, 0x5678, 0)?;
//! let count = encoder.encode(&media, Protection::new(0.25, MaskType::Interleaved))?;
//! assert_eq!(count, 1);
//!
//! // Packet 2 is lost; the FEC packet brings it back byte for byte.
//! let mut decoder = FlexFecDecoder::new(0x1234);
//! for (i, packet) in media.iter().enumerate() {
//!     if i != 2 {
//!         decoder.insert_media(packet)?;
//!     }
//! }
//! for fec in encoder.packets() {
//!     decoder.insert_fec(fec)?;
//! }
//! assert_eq!(decoder.poll_recovered(), Some(&media[2][..]));
//! assert_eq!(decoder.poll_recovered(), None);
//! assert_eq!(decoder.stats().recovered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;

use tincan_rtp::{RtpError, RtpPacket, RtpPacketBuilder};

/// Length of the fixed RTP header, which FlexFEC leaves out of the XOR'd payload.
const RTP_HEADER_LEN: usize = 12;
/// Bytes of the FlexFEC header before the packet mask (one protected SSRC).
const MASK_OFFSET: usize = 18;
/// Shortest FlexFEC header: 15-bit mask.
pub const MIN_HEADER_LEN: usize = 20;
/// Longest FlexFEC header with one protected SSRC: 109-bit mask.
pub const MAX_HEADER_LEN: usize = 32;
/// Most sequence numbers one mask covers.
pub const MAX_MASK_BITS: u32 = 109;
/// Most media packets one call to [`FlexFecEncoder::encode`] protects (libwebrtc's limit).
pub const MAX_MEDIA_PACKETS: usize = 48;
/// Largest media or FEC RTP packet either side handles, in bytes; larger ones are
/// rejected so the decoder's memory stays bounded.
pub const MAX_PACKET_LEN: usize = 2048;
/// Largest media packet the encoder protects: its FEC packet must fit [`MAX_PACKET_LEN`].
pub const MAX_MEDIA_PACKET_LEN: usize = MAX_PACKET_LEN - MAX_HEADER_LEN;
/// Media packets a decoder remembers by default.
pub const DEFAULT_MAX_MEDIA: usize = 512;
/// FEC packets a decoder keeps waiting by default.
pub const DEFAULT_MAX_FEC: usize = 256;

/// Why a FlexFEC packet could not be parsed, written, encoded or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FlexFecError {
    /// The input ended before a field that had to be there.
    #[error("{what} truncated: needed {needed} bytes, got {got}")]
    TooShort {
        /// The part being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// A feature of the draft that libwebrtc does not implement either.
    #[error("unsupported FlexFEC feature: {what}")]
    Unsupported {
        /// The feature.
        what: &'static str,
    },
    /// The header protects a number of SSRCs other than one.
    #[error("FlexFEC SSRCCount {count} is not supported (only 1)")]
    SsrcCount {
        /// The SSRCCount field.
        count: u8,
    },
    /// None of the three k bits is set, so the mask has no end.
    #[error("FlexFEC packet mask has no k bit set")]
    MaskNotTerminated,
    /// The mask protects no packet.
    #[error("FlexFEC packet mask is empty")]
    EmptyMask,
    /// A mask bit lies beyond the 109 bits the header can carry.
    #[error("packet mask bit {bit} is beyond the last one ({max})")]
    MaskTooWide {
        /// The highest bit set.
        bit: u32,
        /// The highest bit allowed.
        max: u32,
    },
    /// A header field does not fit its wire representation.
    #[error("{field} = {value} is out of range (max {max})")]
    FieldOutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The output buffer is too small.
    #[error("buffer too small: need {needed} bytes, have {got}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// A packet is not valid RTP.
    #[error("invalid RTP packet: {source}")]
    Rtp {
        /// The RTP parser's error.
        #[from]
        source: RtpError,
    },
    /// A packet is larger than this implementation handles.
    #[error("packet of {len} bytes is larger than {max}")]
    PacketTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More media packets than one FEC group protects.
    #[error("{count} media packets in one frame, at most {max} can be protected")]
    TooManyMediaPackets {
        /// Packets given.
        count: usize,
        /// The limit ([`MAX_MEDIA_PACKETS`]).
        max: usize,
    },
    /// The frame's sequence numbers span more than one mask covers.
    #[error("media sequence numbers span {span}, a mask covers at most {max}")]
    SequenceSpan {
        /// From first to last sequence number, inclusive.
        span: u32,
        /// The limit ([`MAX_MASK_BITS`]).
        max: u32,
    },
    /// Media packets were not given in increasing sequence number order.
    #[error("media sequence number {seq} does not follow {previous}")]
    NotInOrder {
        /// The previous packet's sequence number.
        previous: u16,
        /// The offending one.
        seq: u16,
    },
    /// A packet belongs to (or protects) another SSRC than expected.
    #[error("SSRC {found:#010x} where {expected:#010x} was expected")]
    WrongSsrc {
        /// The SSRC expected.
        expected: u32,
        /// The SSRC found.
        found: u32,
    },
    /// A protection fraction outside 0..=1 (or NaN).
    #[error("protection fraction {value} is not within 0..=1")]
    InvalidProtection {
        /// The fraction given.
        value: f32,
    },
    /// A decoder limit too small to work with.
    #[error("{what} = {value} is below the minimum {min}")]
    InvalidLimit {
        /// The limit.
        what: &'static str,
        /// The value given.
        value: usize,
        /// The smallest value allowed.
        min: usize,
    },
}

fn need(what: &'static str, data: &[u8], needed: usize) -> Result<(), FlexFecError> {
    if data.len() < needed {
        Err(FlexFecError::TooShort {
            what,
            needed,
            got: data.len(),
        })
    } else {
        Ok(())
    }
}

fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// A FlexFEC-03 header protecting one SSRC.
///
/// ```
/// use tincan_fec::flexfec::FlexFecHeader;
///
/// let header = FlexFecHeader {
///     protected_ssrc: 0x1234,
///     seq_num_base: 65_530,
///     mask: 0b1011, // 65530, 65531 and 65533
///     ..FlexFecHeader::default()
/// };
/// let mut buf = [0u8; 32];
/// let len = header.write(&mut buf)?;
/// assert_eq!(len, 20);
/// assert_eq!(FlexFecHeader::parse(&buf[..len])?, (header, 20));
/// assert_eq!(header.protected().collect::<Vec<_>>(), [65530, 65531, 65533]);
/// # Ok::<(), tincan_fec::flexfec::FlexFecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlexFecHeader {
    /// P recovery: XOR of the protected packets' padding bits.
    pub padding: bool,
    /// X recovery: XOR of their extension bits.
    pub extension: bool,
    /// CC recovery: XOR of their CSRC counts (4 bits).
    pub csrc_count: u8,
    /// M recovery: XOR of their marker bits.
    pub marker: bool,
    /// PT recovery: XOR of their payload types (7 bits).
    pub payload_type: u8,
    /// Length recovery: XOR of their lengths minus the 12-byte fixed header.
    pub length_recovery: u16,
    /// TS recovery: XOR of their timestamps.
    pub timestamp_recovery: u32,
    /// The protected media SSRC.
    pub protected_ssrc: u32,
    /// The sequence number mask bit 0 stands for.
    pub seq_num_base: u16,
    /// Bit `i` set: the packet with sequence number `seq_num_base + i` is protected.
    /// Only bits 0..109 can be written.
    pub mask: u128,
}

impl FlexFecHeader {
    /// Parses the header at the start of a FEC packet's RTP payload; returns it and its
    /// length (20, 24 or 32 bytes). The reserved bytes are ignored, as libwebrtc does.
    pub fn parse(data: &[u8]) -> Result<(Self, usize), FlexFecError> {
        need("FlexFEC header", data, MIN_HEADER_LEN)?;
        if data[0] & 0x80 != 0 {
            return Err(FlexFecError::Unsupported {
                what: "retransmission FEC packets (R=1)",
            });
        }
        if data[0] & 0x40 != 0 {
            return Err(FlexFecError::Unsupported {
                what: "fixed row/column masks (F=1)",
            });
        }
        if data[8] != 1 {
            return Err(FlexFecError::SsrcCount { count: data[8] });
        }
        let w0 = be16(data, MASK_OFFSET);
        let mut bits = u128::from(w0 & 0x7FFF) << 113;
        let len = if w0 & 0x8000 != 0 {
            MIN_HEADER_LEN
        } else {
            need("FlexFEC 46-bit mask", data, 24)?;
            let w1 = be32(data, 20);
            bits |= u128::from(w1 & 0x7FFF_FFFF) << 82;
            if w1 & 0x8000_0000 != 0 {
                24
            } else {
                need("FlexFEC 109-bit mask", data, MAX_HEADER_LEN)?;
                let w2 = u64::from_be_bytes(data[24..32].try_into().unwrap_or([0; 8]));
                if w2 & (1 << 63) == 0 {
                    return Err(FlexFecError::MaskNotTerminated);
                }
                bits |= u128::from(w2 & !(1 << 63)) << 19;
                MAX_HEADER_LEN
            }
        };
        let mask = bits.reverse_bits();
        if mask == 0 {
            return Err(FlexFecError::EmptyMask);
        }
        let header = Self {
            padding: data[0] & 0x20 != 0,
            extension: data[0] & 0x10 != 0,
            csrc_count: data[0] & 0x0F,
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7F,
            length_recovery: be16(data, 2),
            timestamp_recovery: be32(data, 4),
            protected_ssrc: be32(data, 12),
            seq_num_base: be16(data, 16),
            mask,
        };
        Ok((header, len))
    }

    /// Length of the header [`Self::write`] writes: the smallest mask form that holds
    /// [`Self::mask`].
    pub fn encoded_len(&self) -> Result<usize, FlexFecError> {
        match self.mask {
            0 => Err(FlexFecError::EmptyMask),
            m if m < 1 << 15 => Ok(MIN_HEADER_LEN),
            m if m < 1 << 46 => Ok(24),
            m if m < 1 << MAX_MASK_BITS => Ok(MAX_HEADER_LEN),
            m => Err(FlexFecError::MaskTooWide {
                bit: 127 - m.leading_zeros(),
                max: MAX_MASK_BITS - 1,
            }),
        }
    }

    /// Writes the header at the start of `buf` with the smallest mask form; returns its
    /// length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, FlexFecError> {
        let len = self.encoded_len()?;
        if self.csrc_count > 15 {
            return Err(FlexFecError::FieldOutOfRange {
                field: "CC recovery",
                value: self.csrc_count.into(),
                max: 15,
            });
        }
        if self.payload_type > 127 {
            return Err(FlexFecError::FieldOutOfRange {
                field: "PT recovery",
                value: self.payload_type.into(),
                max: 127,
            });
        }
        if buf.len() < len {
            return Err(FlexFecError::BufferTooSmall {
                needed: len,
                got: buf.len(),
            });
        }
        buf[0] = (u8::from(self.padding) << 5) | (u8::from(self.extension) << 4) | self.csrc_count;
        buf[1] = (u8::from(self.marker) << 7) | self.payload_type;
        buf[2..4].copy_from_slice(&self.length_recovery.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp_recovery.to_be_bytes());
        buf[8..12].copy_from_slice(&[1, 0, 0, 0]);
        buf[12..16].copy_from_slice(&self.protected_ssrc.to_be_bytes());
        buf[16..18].copy_from_slice(&self.seq_num_base.to_be_bytes());
        let bits = self.mask.reverse_bits();
        let w0 = (bits >> 113) as u16 | (u16::from(len == MIN_HEADER_LEN) << 15);
        buf[18..20].copy_from_slice(&w0.to_be_bytes());
        if len > MIN_HEADER_LEN {
            let w1 = ((bits >> 82) as u32 & 0x7FFF_FFFF) | (u32::from(len == 24) << 31);
            buf[20..24].copy_from_slice(&w1.to_be_bytes());
        }
        if len == MAX_HEADER_LEN {
            let w2 = ((bits >> 19) as u64 & !(1 << 63)) | (1 << 63);
            buf[24..32].copy_from_slice(&w2.to_be_bytes());
        }
        Ok(len)
    }

    /// The protected sequence numbers, in mask order.
    pub fn protected(&self) -> impl Iterator<Item = u16> + '_ {
        let base = self.seq_num_base;
        MaskBits(self.mask).map(move |bit| base.wrapping_add(bit as u16))
    }
}

/// Iterator over the set bits of a mask, lowest first.
struct MaskBits(u128);

impl Iterator for MaskBits {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// Recovery fields accumulated by XOR: byte 0, byte 1, length minus 12, timestamp.
#[derive(Default, Clone, Copy)]
struct Recovery {
    byte0: u8,
    byte1: u8,
    length: u16,
    timestamp: u32,
}

impl Recovery {
    /// XORs the header fields of `packet` (at least 12 bytes, at most 64 KiB) in.
    fn xor(&mut self, packet: &[u8]) {
        self.byte0 ^= packet[0];
        self.byte1 ^= packet[1];
        self.length ^= (packet.len() - RTP_HEADER_LEN) as u16;
        self.timestamp ^= be32(packet, 4);
    }
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// How FEC packets are assigned media packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskType {
    /// FEC packet `i` of `m` protects media packets `i`, `i + m`, `i + 2m`, …: a burst of
    /// up to `m` consecutive losses is recoverable.
    #[default]
    Interleaved,
    /// FEC packet `i` of `m` protects the `i`th of `m` consecutive runs of media packets
    /// (as equal as possible): one loss per run is recoverable.
    Bursty,
}

/// How much protection one frame gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protection {
    /// FEC packets per media packet, 0..=1.
    pub fraction: f32,
    /// How FEC packets are assigned media packets.
    pub mask: MaskType,
}

impl Protection {
    /// No FEC packets.
    pub const NONE: Self = Self::new(0.0, MaskType::Interleaved);

    /// A protection level.
    pub const fn new(fraction: f32, mask: MaskType) -> Self {
        Self { fraction, mask }
    }

    /// Number of FEC packets for `media` media packets: `round(fraction · media)`, at
    /// least one when the fraction is above zero, at most `media`.
    ///
    /// ```
    /// use tincan_fec::flexfec::{MaskType, Protection};
    /// let p = Protection::new(0.3, MaskType::Interleaved);
    /// assert_eq!((p.fec_packets(10)?, p.fec_packets(5)?, p.fec_packets(1)?), (3, 2, 1));
    /// # Ok::<(), tincan_fec::flexfec::FlexFecError>(())
    /// ```
    pub fn fec_packets(&self, media: usize) -> Result<usize, FlexFecError> {
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(FlexFecError::InvalidProtection {
                value: self.fraction,
            });
        }
        if self.fraction == 0.0 || media == 0 {
            return Ok(0);
        }
        let m = (f64::from(self.fraction) * media as f64).round() as usize;
        Ok(m.clamp(1, media))
    }

    /// Whether FEC packet `fec` of `m` protects media packet `j` of `n`.
    fn protects(&self, fec: usize, m: usize, j: usize, n: usize) -> bool {
        match self.mask {
            MaskType::Interleaved => j % m == fec,
            MaskType::Bursty => j * m / n == fec,
        }
    }
}

/// The sending side: turns the media packets of a frame into FlexFEC-03 RTP packets.
///
/// The FEC packets are written into buffers the encoder keeps and reuses; read them with
/// [`Self::packets`] before the next [`Self::encode`]. See the [module docs](self) for an
/// example.
#[derive(Debug, Clone)]
pub struct FlexFecEncoder {
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    pool: Vec<Vec<u8>>,
    count: usize,
}

impl FlexFecEncoder {
    /// An encoder writing FEC packets with `payload_type` (the negotiated `flexfec-03`
    /// one) on `ssrc`, numbered from `first_sequence`.
    pub fn new(payload_type: u8, ssrc: u32, first_sequence: u16) -> Result<Self, FlexFecError> {
        if payload_type > 127 {
            return Err(FlexFecError::FieldOutOfRange {
                field: "payload type",
                value: payload_type.into(),
                max: 127,
            });
        }
        Ok(Self {
            payload_type,
            ssrc,
            sequence: first_sequence,
            pool: Vec::new(),
            count: 0,
        })
    }

    /// The sequence number the next FEC packet gets.
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }

    /// The FEC SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Writes the FEC packets protecting one frame's media packets (as sent, in increasing
    /// sequence number order, one SSRC, gaps allowed); returns how many there are. They
    /// carry the frame's timestamp (the first packet's) and consecutive sequence numbers.
    ///
    /// On error nothing is written and the sequence number does not move. An empty frame
    /// or a zero fraction gives no packets.
    pub fn encode<P: AsRef<[u8]>>(
        &mut self,
        media: &[P],
        protection: Protection,
    ) -> Result<usize, FlexFecError> {
        self.count = 0;
        let n = media.len();
        if n > MAX_MEDIA_PACKETS {
            return Err(FlexFecError::TooManyMediaPackets {
                count: n,
                max: MAX_MEDIA_PACKETS,
            });
        }
        let m = protection.fec_packets(n)?;
        if m == 0 {
            return Ok(0);
        }
        // Validate, and find each packet's mask bit.
        let mut offsets = [0u8; MAX_MEDIA_PACKETS];
        let first = RtpPacket::parse(media[0].as_ref())?;
        let (ssrc, base, timestamp) = (first.ssrc(), first.sequence_number().0, first.timestamp());
        let mut previous = base;
        for (j, packet) in media.iter().enumerate() {
            let bytes = packet.as_ref();
            if bytes.len() > MAX_MEDIA_PACKET_LEN {
                return Err(FlexFecError::PacketTooLarge {
                    len: bytes.len(),
                    max: MAX_MEDIA_PACKET_LEN,
                });
            }
            let parsed = RtpPacket::parse(bytes)?;
            if parsed.ssrc() != ssrc {
                return Err(FlexFecError::WrongSsrc {
                    expected: ssrc,
                    found: parsed.ssrc(),
                });
            }
            let seq = parsed.sequence_number().0;
            if j > 0 && (seq.wrapping_sub(previous) as i16) <= 0 {
                return Err(FlexFecError::NotInOrder { previous, seq });
            }
            let offset = u32::from(seq.wrapping_sub(base));
            if offset >= MAX_MASK_BITS {
                return Err(FlexFecError::SequenceSpan {
                    span: offset + 1,
                    max: MAX_MASK_BITS,
                });
            }
            offsets[j] = offset as u8;
            previous = seq;
        }
        if self.pool.len() < m {
            self.pool.resize_with(m, Vec::new);
        }
        for (i, out) in self.pool.iter_mut().take(m).enumerate() {
            let mut mask = 0u128;
            let mut longest = 0;
            for (j, packet) in media.iter().enumerate() {
                if protection.protects(i, m, j, n) {
                    mask |= 1 << offsets[j];
                    longest = longest.max(packet.as_ref().len() - RTP_HEADER_LEN);
                }
            }
            let mut header = FlexFecHeader {
                protected_ssrc: ssrc,
                seq_num_base: base,
                mask,
                ..FlexFecHeader::default()
            };
            let header_len = header.encoded_len()?;
            let start = RTP_HEADER_LEN + header_len;
            out.clear();
            out.resize(start + longest, 0);
            let mut recovery = Recovery::default();
            for (j, packet) in media.iter().enumerate() {
                if protection.protects(i, m, j, n) {
                    let bytes = packet.as_ref();
                    recovery.xor(bytes);
                    xor_into(&mut out[start..], &bytes[RTP_HEADER_LEN..]);
                }
            }
            header.padding = recovery.byte0 & 0x20 != 0;
            header.extension = recovery.byte0 & 0x10 != 0;
            header.csrc_count = recovery.byte0 & 0x0F;
            header.marker = recovery.byte1 & 0x80 != 0;
            header.payload_type = recovery.byte1 & 0x7F;
            header.length_recovery = recovery.length;
            header.timestamp_recovery = recovery.timestamp;
            let sequence = self.sequence.wrapping_add(i as u16);
            RtpPacketBuilder::new(self.payload_type, sequence, timestamp.0, self.ssrc)
                .write(&mut out[..RTP_HEADER_LEN])?;
            header.write(&mut out[RTP_HEADER_LEN..])?;
        }
        self.sequence = self.sequence.wrapping_add(m as u16);
        self.count = m;
        Ok(m)
    }

    /// The FEC packets the last [`Self::encode`] wrote (full RTP packets).
    pub fn packets(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.pool[..self.count].iter().map(Vec::as_slice)
    }
}

/// Counters of a [`FlexFecDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlexFecStats {
    /// Media packets accepted (not counting duplicates).
    pub media_received: u64,
    /// FEC packets given to [`FlexFecDecoder::insert_fec`].
    pub fec_received: u64,
    /// Media packets recovered.
    pub recovered: u64,
    /// FEC packets given up on with two or more of their packets still missing (aged out
    /// of the media window or evicted when the FEC store was full).
    pub unrecoverable: u64,
    /// Packets (media or FEC) too old for the media window, and FEC packets evicted when
    /// the FEC store was full.
    pub dropped_old: u64,
    /// Duplicate media packets and duplicates of waiting FEC packets.
    pub duplicates: u64,
    /// Packets that failed to parse, were too large, or whose recovery was inconsistent
    /// (recovered length beyond the FEC payload, or not valid RTP).
    pub malformed: u64,
    /// Packets of (or protecting) another SSRC.
    pub wrong_ssrc: u64,
}

/// A remembered media packet (received or recovered).
#[derive(Debug, Clone)]
struct MediaSlot {
    /// Extended sequence number, [`EMPTY`] when unused.
    ext: u64,
    data: Vec<u8>,
}

/// A FEC packet waiting for its packets.
#[derive(Debug, Clone)]
struct PendingFec {
    active: bool,
    /// The FEC packet's own sequence number (for duplicate detection).
    fec_seq: u16,
    /// Extended sequence number of mask bit 0.
    base: u64,
    header: FlexFecHeader,
    /// The XOR'd payload after the FlexFEC header.
    payload: Vec<u8>,
}

const EMPTY: u64 = u64::MAX;
/// Extended sequence number of the first packet seen: far from 0 so that reordering
/// before it never goes negative.
const ORIGIN: u64 = 1 << 32;

/// The receiving side: remembers recent media packets and waiting FEC packets, and
/// rebuilds a lost media packet whenever a FEC packet misses exactly one of its packets
/// (repeatedly, since a recovered packet can complete another FEC packet).
///
/// Bounded: at most `max_media` media packets (by extended sequence number: older ones
/// fall out of the window) and `max_fec` FEC packets (the oldest is evicted). See the
/// [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct FlexFecDecoder {
    media_ssrc: u32,
    slots: Vec<MediaSlot>,
    fec: Vec<PendingFec>,
    highest: Option<u64>,
    recovered: VecDeque<u64>,
    work: Vec<u64>,
    scratch: Vec<u8>,
    stats: FlexFecStats,
}

impl FlexFecDecoder {
    /// A decoder for media SSRC `media_ssrc` with the default limits
    /// ([`DEFAULT_MAX_MEDIA`], [`DEFAULT_MAX_FEC`]).
    pub fn new(media_ssrc: u32) -> Self {
        Self::build(media_ssrc, DEFAULT_MAX_MEDIA, DEFAULT_MAX_FEC)
    }

    /// A decoder with other limits: `max_media` must cover one mask (at least
    /// [`MAX_MASK_BITS`]), `max_fec` at least 1.
    pub fn with_limits(
        media_ssrc: u32,
        max_media: usize,
        max_fec: usize,
    ) -> Result<Self, FlexFecError> {
        if max_media < MAX_MASK_BITS as usize {
            return Err(FlexFecError::InvalidLimit {
                what: "max_media",
                value: max_media,
                min: MAX_MASK_BITS as usize,
            });
        }
        if max_fec == 0 {
            return Err(FlexFecError::InvalidLimit {
                what: "max_fec",
                value: 0,
                min: 1,
            });
        }
        Ok(Self::build(media_ssrc, max_media, max_fec))
    }

    fn build(media_ssrc: u32, max_media: usize, max_fec: usize) -> Self {
        Self {
            media_ssrc,
            slots: vec![
                MediaSlot {
                    ext: EMPTY,
                    data: Vec::new(),
                };
                max_media
            ],
            fec: vec![
                PendingFec {
                    active: false,
                    fec_seq: 0,
                    base: 0,
                    header: FlexFecHeader::default(),
                    payload: Vec::new(),
                };
                max_fec
            ],
            highest: None,
            recovered: VecDeque::with_capacity(max_media),
            work: Vec::with_capacity(MAX_MASK_BITS as usize),
            scratch: Vec::new(),
            stats: FlexFecStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &FlexFecStats {
        &self.stats
    }

    /// The protected media SSRC.
    pub fn media_ssrc(&self) -> u32 {
        self.media_ssrc
    }

    /// Media packets currently remembered (at most `max_media`).
    pub fn stored_media(&self) -> usize {
        let Some(highest) = self.highest else {
            return 0;
        };
        self.slots
            .iter()
            .filter(|s| s.ext != EMPTY && self.in_window(s.ext, highest))
            .count()
    }

    /// FEC packets waiting for their packets (at most `max_fec`).
    pub fn pending_fec(&self) -> usize {
        self.fec.iter().filter(|f| f.active).count()
    }

    /// Bytes held in packet buffers (capacity, so it shows what warm-up allocated); bounded
    /// by `(max_media + max_fec + 1) · MAX_PACKET_LEN`.
    pub fn buffered_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.data.capacity()).sum::<usize>()
            + self.fec.iter().map(|f| f.payload.capacity()).sum::<usize>()
            + self.scratch.capacity()
    }

    /// Forgets every packet (counters stay).
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.ext = EMPTY;
        }
        for fec in &mut self.fec {
            fec.active = false;
        }
        self.highest = None;
        self.recovered.clear();
    }

    /// The next recovered media packet (a full RTP packet), oldest recovery first.
    pub fn poll_recovered(&mut self) -> Option<&[u8]> {
        while let Some(ext) = self.recovered.pop_front() {
            let index = self.slot_index(ext);
            if self.slots[index].ext == ext {
                return Some(&self.slots[index].data);
            }
        }
        None
    }

    fn slot_index(&self, ext: u64) -> usize {
        (ext % self.slots.len() as u64) as usize
    }

    fn in_window(&self, ext: u64, highest: u64) -> bool {
        ext + self.slots.len() as u64 > highest
    }

    fn has(&self, ext: u64) -> bool {
        self.slots[self.slot_index(ext)].ext == ext
    }

    fn unwrap(&self, seq: u16) -> Option<u64> {
        match self.highest {
            None => Some(ORIGIN + u64::from(seq)),
            Some(highest) => {
                let diff = i64::from(seq.wrapping_sub(highest as u16) as i16);
                u64::try_from(highest as i64 + diff).ok()
            }
        }
    }

    /// Takes a received media packet of the protected SSRC; returns how many packets it
    /// let the decoder recover.
    pub fn insert_media(&mut self, packet: &[u8]) -> Result<usize, FlexFecError> {
        if packet.len() > MAX_PACKET_LEN {
            self.stats.malformed += 1;
            return Err(FlexFecError::PacketTooLarge {
                len: packet.len(),
                max: MAX_PACKET_LEN,
            });
        }
        let parsed = match RtpPacket::parse(packet) {
            Ok(parsed) => parsed,
            Err(source) => {
                self.stats.malformed += 1;
                return Err(source.into());
            }
        };
        if parsed.ssrc() != self.media_ssrc {
            self.stats.wrong_ssrc += 1;
            return Err(FlexFecError::WrongSsrc {
                expected: self.media_ssrc,
                found: parsed.ssrc(),
            });
        }
        let Some(ext) = self.unwrap(parsed.sequence_number().0) else {
            self.stats.dropped_old += 1;
            return Ok(0);
        };
        if self
            .highest
            .is_some_and(|highest| !self.in_window(ext, highest))
        {
            self.stats.dropped_old += 1;
            return Ok(0);
        }
        if self.has(ext) {
            self.stats.duplicates += 1;
            return Ok(0);
        }
        self.stats.media_received += 1;
        let index = self.slot_index(ext);
        let slot = &mut self.slots[index];
        slot.ext = ext;
        slot.data.clear();
        slot.data.extend_from_slice(packet);
        self.advance(ext);
        Ok(self.cascade(ext))
    }

    /// Moves the window's top to `ext` if newer, dropping FEC packets that can no longer
    /// be completed.
    fn advance(&mut self, ext: u64) {
        if self.highest.is_some_and(|h| h >= ext) {
            return;
        }
        self.highest = Some(ext);
        let window = self.slots.len() as u64;
        for fec in &mut self.fec {
            if fec.active && first_protected(fec) + window <= ext {
                fec.active = false;
                self.stats.unrecoverable += 1;
            }
        }
    }

    /// Takes a received FEC packet (a full RTP packet on the FEC SSRC); returns how many
    /// media packets it let the decoder recover.
    pub fn insert_fec(&mut self, packet: &[u8]) -> Result<usize, FlexFecError> {
        self.stats.fec_received += 1;
        if packet.len() > MAX_PACKET_LEN {
            self.stats.malformed += 1;
            return Err(FlexFecError::PacketTooLarge {
                len: packet.len(),
                max: MAX_PACKET_LEN,
            });
        }
        let parsed = RtpPacket::parse(packet)
            .map_err(FlexFecError::from)
            .and_then(|p| Ok((p, FlexFecHeader::parse(p.payload())?)));
        let (rtp, (header, header_len)) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => {
                self.stats.malformed += 1;
                return Err(err);
            }
        };
        if header.mask >> MAX_MASK_BITS != 0 {
            // Unreachable by construction of the parser; kept as a guard.
            self.stats.malformed += 1;
            return Err(FlexFecError::MaskTooWide {
                bit: 127 - header.mask.leading_zeros(),
                max: MAX_MASK_BITS - 1,
            });
        }
        if header.protected_ssrc != self.media_ssrc {
            self.stats.wrong_ssrc += 1;
            return Err(FlexFecError::WrongSsrc {
                expected: self.media_ssrc,
                found: header.protected_ssrc,
            });
        }
        let Some(base) = self.unwrap(header.seq_num_base) else {
            self.stats.dropped_old += 1;
            return Ok(0);
        };
        if self.highest.is_none() {
            self.highest = Some(base);
        }
        let first = base + u64::from(header.mask.trailing_zeros());
        if self
            .highest
            .is_some_and(|highest| !self.in_window(first, highest))
        {
            self.stats.dropped_old += 1;
            return Ok(0);
        }
        let fec_seq = rtp.sequence_number().0;
        if self
            .fec
            .iter()
            .any(|f| f.active && f.fec_seq == fec_seq && f.base == base && f.header == header)
        {
            self.stats.duplicates += 1;
            return Ok(0);
        }
        let missing = MaskBits(header.mask)
            .filter(|&bit| !self.has(base + u64::from(bit)))
            .count();
        if missing == 0 {
            return Ok(0);
        }
        // Store it: a free slot, or evict the oldest.
        let index = match self.fec.iter().position(|f| !f.active) {
            Some(index) => index,
            None => {
                let (index, _) = self
                    .fec
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, f)| first_protected(f))
                    .unwrap_or((0, &self.fec[0]));
                self.stats.dropped_old += 1;
                self.stats.unrecoverable += 1;
                index
            }
        };
        let slot = &mut self.fec[index];
        slot.active = true;
        slot.fec_seq = fec_seq;
        slot.base = base;
        slot.header = header;
        slot.payload.clear();
        slot.payload.extend_from_slice(&rtp.payload()[header_len..]);
        let mut count = 0;
        if let Some(ext) = self.try_recover(index) {
            count = 1 + self.cascade(ext);
        }
        Ok(count)
    }

    /// If FEC packet `index` misses exactly one packet, recovers it (stores it, queues it
    /// for output) and returns its extended sequence number; retires the FEC packet when it
    /// has nothing left to give.
    fn try_recover(&mut self, index: usize) -> Option<u64> {
        let fec = &self.fec[index];
        let mut missing = None;
        for bit in MaskBits(fec.header.mask) {
            let ext = fec.base + u64::from(bit);
            if !self.has(ext) {
                if missing.is_some() {
                    return None;
                }
                missing = Some(ext);
            }
        }
        self.fec[index].active = false;
        let target = missing?;
        if !self.rebuild(index, target) {
            self.stats.malformed += 1;
            return None;
        }
        self.stats.recovered += 1;
        let slot_index = self.slot_index(target);
        let slot = &mut self.slots[slot_index];
        slot.ext = target;
        std::mem::swap(&mut slot.data, &mut self.scratch);
        if self.recovered.len() == self.slots.len() {
            self.recovered.pop_front();
        }
        self.recovered.push_back(target);
        self.advance(target);
        Some(target)
    }

    /// Rebuilds packet `target` from FEC packet `index` into the scratch buffer; false when
    /// the result is inconsistent.
    fn rebuild(&mut self, index: usize, target: u64) -> bool {
        let fec = &self.fec[index];
        let header = &fec.header;
        let protection = fec.payload.len();
        let scratch = &mut self.scratch;
        scratch.clear();
        scratch.resize(RTP_HEADER_LEN, 0);
        scratch.extend_from_slice(&fec.payload);
        let mut recovery = Recovery {
            byte0: (u8::from(header.padding) << 5)
                | (u8::from(header.extension) << 4)
                | header.csrc_count,
            byte1: (u8::from(header.marker) << 7) | header.payload_type,
            length: header.length_recovery,
            timestamp: header.timestamp_recovery,
        };
        for bit in MaskBits(header.mask) {
            let ext = fec.base + u64::from(bit);
            if ext == target {
                continue;
            }
            let slot = &self.slots[(ext % self.slots.len() as u64) as usize];
            let body = &slot.data[RTP_HEADER_LEN..];
            if body.len() > protection {
                return false;
            }
            recovery.xor(&slot.data);
            xor_into(&mut scratch[RTP_HEADER_LEN..], body);
        }
        let length = usize::from(recovery.length);
        if length > protection {
            return false;
        }
        scratch.truncate(RTP_HEADER_LEN + length);
        scratch[0] = (recovery.byte0 & 0x3F) | 0x80;
        scratch[1] = recovery.byte1;
        scratch[2..4].copy_from_slice(&(target as u16).to_be_bytes());
        scratch[4..8].copy_from_slice(&recovery.timestamp.to_be_bytes());
        scratch[8..12].copy_from_slice(&header.protected_ssrc.to_be_bytes());
        RtpPacket::parse(scratch).is_ok()
    }

    /// Recovers everything that becomes recoverable once packet `ext` is known; returns
    /// how many packets that was.
    fn cascade(&mut self, ext: u64) -> usize {
        let mut count = 0;
        self.work.clear();
        self.work.push(ext);
        while let Some(known) = self.work.pop() {
            for index in 0..self.fec.len() {
                let fec = &self.fec[index];
                if !fec.active || known < fec.base || known - fec.base >= u64::from(MAX_MASK_BITS) {
                    continue;
                }
                if fec.header.mask >> (known - fec.base) & 1 == 0 {
                    continue;
                }
                if let Some(recovered) = self.try_recover(index) {
                    count += 1;
                    self.work.push(recovered);
                }
            }
        }
        count
    }
}

fn first_protected(fec: &PendingFec) -> u64 {
    fec.base + u64::from(fec.header.mask.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(seq: u16, len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(seq as u8 | 1))
            .collect();
        let mut out = Vec::new();
        RtpPacketBuilder::new(96, seq, 3000, 0xABCD)
            .marker(seq % 3 == 0)
            .payload(&payload)
            .write_vec(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn mask_forms_round_trip() {
        for (mask, len) in [
            (1u128, 20),
            (1 << 14, 20),
            (1 << 15, 24),
            (1 << 45 | 1, 24),
            (1 << 46, 32),
            (1 << 108 | 1 << 47 | 1, 32),
        ] {
            let header = FlexFecHeader {
                mask,
                seq_num_base: 7,
                ..FlexFecHeader::default()
            };
            let mut buf = [0u8; 40];
            assert_eq!(header.write(&mut buf), Ok(len));
            assert_eq!(FlexFecHeader::parse(&buf[..len]), Ok((header, len)));
            for short in 0..len {
                assert!(FlexFecHeader::parse(&buf[..short]).is_err());
            }
        }
        let wide = FlexFecHeader {
            mask: 1 << 109,
            ..FlexFecHeader::default()
        };
        assert_eq!(
            wide.write(&mut [0; 40]),
            Err(FlexFecError::MaskTooWide { bit: 109, max: 108 })
        );
    }

    #[test]
    fn interleaved_and_bursty_masks_cover_every_packet_once() {
        for n in 1..=MAX_MEDIA_PACKETS {
            for m in 1..=n {
                for mask in [MaskType::Interleaved, MaskType::Bursty] {
                    let p = Protection::new(1.0, mask);
                    for j in 0..n {
                        assert_eq!((0..m).filter(|&i| p.protects(i, m, j, n)).count(), 1);
                    }
                    for i in 0..m {
                        assert!((0..n).any(|j| p.protects(i, m, j, n)));
                    }
                }
            }
        }
    }

    #[test]
    fn recovered_packet_is_byte_exact_with_mixed_lengths() {
        let frame: Vec<Vec<u8>> = (0..3)
            .map(|i| media(100 + i, 10 + 50 * i as usize))
            .collect();
        let mut encoder = FlexFecEncoder::new(110, 9, 0).unwrap();
        encoder
            .encode(&frame, Protection::new(0.1, MaskType::Bursty))
            .unwrap();
        for lost in 0..3 {
            let mut decoder = FlexFecDecoder::new(0xABCD);
            for fec in encoder.packets() {
                assert_eq!(decoder.insert_fec(fec), Ok(0));
            }
            for (i, packet) in frame.iter().enumerate() {
                if i != lost {
                    decoder.insert_media(packet).unwrap();
                }
            }
            assert_eq!(decoder.poll_recovered(), Some(&frame[lost][..]));
            assert_eq!(decoder.pending_fec(), 0);
        }
    }

    #[test]
    fn encoder_rejects_bad_frames() {
        let mut encoder = FlexFecEncoder::new(110, 9, 0).unwrap();
        let p = Protection::new(0.5, MaskType::Interleaved);
        let out_of_order = [media(5, 10), media(4, 10)];
        assert_eq!(
            encoder.encode(&out_of_order, p),
            Err(FlexFecError::NotInOrder {
                previous: 5,
                seq: 4
            })
        );
        let span = [media(0, 10), media(109, 10)];
        assert_eq!(
            encoder.encode(&span, p),
            Err(FlexFecError::SequenceSpan {
                span: 110,
                max: 109
            })
        );
        assert!(matches!(
            encoder.encode(&[media(0, 10)], Protection::new(1.5, MaskType::Bursty)),
            Err(FlexFecError::InvalidProtection { .. })
        ));
        assert!(matches!(
            encoder.encode(&[&[0u8; 5][..]], p),
            Err(FlexFecError::Rtp { .. })
        ));
        assert_eq!(encoder.next_sequence(), 0);
        assert_eq!(encoder.packets().len(), 0);
    }
}
