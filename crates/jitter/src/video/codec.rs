//! What the buffer needs to know about a payload before depacketizing it: whether the
//! packet starts a frame and whether its frame can be decoded without references.
//!
//! Both are read from the first bytes of the payload (RFC 6184 NAL unit and FU headers,
//! the AV1 aggregation header), so they cost a few byte reads per packet.

use tincan_rtp::payload::av1::read_leb128;

/// The video payload format of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264, RFC 6184 packetization-mode 1 (single NAL unit, STAP-A, FU-A).
    H264,
    /// AV1, the AOMedia RTP payload format v1.0.
    Av1,
}

/// Facts read from one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PayloadHints {
    /// The packet certainly begins a frame (H.264: an access unit delimiter or an SPS
    /// comes first; AV1: first packet of a coded video sequence, or a sequence header or
    /// temporal delimiter first). Only used when the packet before it is unknown (the
    /// first packet of a stream, or after a loss).
    pub(crate) frame_start: bool,
    /// H.264: the packet starts with the first slice of a picture. That begins the frame
    /// unless parameter sets or SEI came before it in the same access unit, so it is only
    /// trusted for streams seen to send keyframes without parameter sets in band (they
    /// come from the SDP).
    pub(crate) picture_start: bool,
    /// The packet carries (the start of) a frame that needs no earlier frame: an H.264 IDR
    /// slice, an AV1 packet with its N bit (new coded video sequence, starting with a key
    /// frame).
    pub(crate) keyframe: bool,
}

const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const AV1_Z_BIT: u8 = 0x80;
const AV1_N_BIT: u8 = 0x08;
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;

impl VideoCodec {
    /// Reads the hints of one payload; malformed payloads give no hints (the depacketizer
    /// judges them when the frame is assembled).
    pub(crate) fn hints(self, payload: &[u8]) -> PayloadHints {
        match self {
            Self::H264 => h264_hints(payload),
            Self::Av1 => av1_hints(payload),
        }
    }
}

fn h264_hints(payload: &[u8]) -> PayloadHints {
    let Some(&header) = payload.first() else {
        return PayloadHints::default();
    };
    // An AUD or SPS can only come first in an access unit.
    let starts = |nal_type: u8| nal_type == NAL_AUD || nal_type == NAL_SPS;
    // A slice with first_mb_in_slice = 0 (ue(v) '1': the top bit of its first byte)
    // starts a picture.
    let first_slice = |nal_type: u8, first_byte: Option<&u8>| {
        (nal_type == NAL_SLICE || nal_type == NAL_IDR) && first_byte.is_some_and(|b| b & 0x80 != 0)
    };
    match header & 0x1F {
        STAP_A => {
            // Units: 16-bit size, then the NAL unit; only the first decides the start.
            let mut hints = PayloadHints::default();
            let mut rest = &payload[1..];
            let mut first = true;
            while let [hi, lo, tail @ ..] = rest {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let Some(&unit_header) = tail.first() else {
                    break;
                };
                let nal_type = unit_header & 0x1F;
                if first {
                    hints.frame_start = starts(nal_type);
                    hints.picture_start = first_slice(nal_type, tail.get(1).filter(|_| size > 1));
                    first = false;
                }
                hints.keyframe |= nal_type == NAL_IDR;
                rest = tail.get(size..).unwrap_or_default();
            }
            hints
        }
        FU_A => {
            let Some(&fu_header) = payload.get(1) else {
                return PayloadHints::default();
            };
            let start_bit = fu_header & 0x80 != 0;
            let nal_type = fu_header & 0x1F;
            PayloadHints {
                frame_start: start_bit && starts(nal_type),
                picture_start: start_bit && first_slice(nal_type, payload.get(2)),
                keyframe: start_bit && nal_type == NAL_IDR,
            }
        }
        nal_type => PayloadHints {
            frame_start: starts(nal_type),
            picture_start: first_slice(nal_type, payload.get(1)),
            keyframe: nal_type == NAL_IDR,
        },
    }
}

fn av1_hints(payload: &[u8]) -> PayloadHints {
    let Some(&aggregation) = payload.first() else {
        return PayloadHints::default();
    };
    let new_sequence = aggregation & AV1_N_BIT != 0;
    // Without the N bit a packet still starts a temporal unit when its first element is a
    // whole OBU that only appears first in one: a temporal delimiter or a sequence header.
    let mut frame_start = new_sequence;
    if aggregation & AV1_Z_BIT == 0 && !frame_start {
        let w = (aggregation >> 4) & 0x03;
        let rest = &payload[1..];
        // With W = 1 the only element has no length field; otherwise the first has one.
        let element = if w == 1 {
            Some(rest)
        } else {
            read_leb128(rest).ok().and_then(|(_, len)| rest.get(len..))
        };
        if let Some(&obu_header) = element.and_then(|e| e.first()) {
            let obu_type = (obu_header >> 3) & 0x0F;
            frame_start = obu_type == OBU_SEQUENCE_HEADER || obu_type == OBU_TEMPORAL_DELIMITER;
        }
    }
    PayloadHints {
        frame_start,
        picture_start: false,
        keyframe: new_sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_hints_read_single_stap_a_and_fu_a() {
        // An IDR slice that is not the first of its picture (first_mb_in_slice > 0).
        let idr = VideoCodec::H264.hints(&[0x65, 0x01, 2]);
        assert!(idr.keyframe && !idr.frame_start && !idr.picture_start);
        // The first slice of a picture starts a picture, IDR or not.
        let first = VideoCodec::H264.hints(&[0x65, 0x88, 2]);
        assert!(first.keyframe && first.picture_start && !first.frame_start);
        assert!(VideoCodec::H264.hints(&[0x41, 0x9A]).picture_start);
        assert!(VideoCodec::H264.hints(&[0x7C, 0x85, 0x88]).picture_start);
        assert!(!VideoCodec::H264.hints(&[0x7C, 0x85, 0x08]).picture_start);
        let sps = VideoCodec::H264.hints(&[0x67, 1]);
        assert!(sps.frame_start && !sps.keyframe);
        // STAP-A with SPS (2 bytes) then IDR (2 bytes).
        let stap = VideoCodec::H264.hints(&[0x78, 0, 2, 0x67, 9, 0, 2, 0x65, 8]);
        assert!(stap.frame_start && stap.keyframe);
        // FU-A start of an IDR, then its middle.
        assert!(VideoCodec::H264.hints(&[0x7C, 0x85, 1]).keyframe);
        assert!(!VideoCodec::H264.hints(&[0x7C, 0x05, 1]).keyframe);
        // A later P slice and garbage give nothing.
        assert_eq!(VideoCodec::H264.hints(&[0x41, 1]), PayloadHints::default());
        assert_eq!(
            VideoCodec::H264.hints(&[0x78, 0xFF]),
            PayloadHints::default()
        );
        assert_eq!(VideoCodec::H264.hints(&[]), PayloadHints::default());
    }

    #[test]
    fn av1_hints_read_n_bit_and_first_obu() {
        let key = VideoCodec::Av1.hints(&[0x18, 0x0A, 0]);
        assert!(key.keyframe && key.frame_start);
        // W = 1, one element: a sequence header OBU (type 1) without N.
        let seq = VideoCodec::Av1.hints(&[0x10, 1 << 3, 0]);
        assert!(seq.frame_start && !seq.keyframe);
        // W = 2: a length-prefixed frame OBU (type 6) first.
        assert!(!VideoCodec::Av1.hints(&[0x20, 1, 6 << 3, 0x30]).frame_start);
        // A continuation (Z) is never a start.
        assert!(!VideoCodec::Av1.hints(&[0x90, 1 << 3]).frame_start);
        assert_eq!(VideoCodec::Av1.hints(&[]), PayloadHints::default());
    }
}
