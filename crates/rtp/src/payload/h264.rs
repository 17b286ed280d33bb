//! H.264 over RTP (RFC 6184), packetization-mode 1 (non-interleaved).
//!
//! [`H264Packetizer`] splits an Annex B access unit at its start codes into NAL units and
//! sends each NAL unit that fits the MTU in a single NAL unit packet, aggregating
//! consecutive small ones (SPS, PPS, small slices) into STAP-A packets when more than one
//! fits, and fragments larger ones into FU-A packets. The marker bit belongs on the last
//! packet of the access unit.
//!
//! [`H264Depacketizer`] rebuilds Annex B access units (4-byte start codes) from single
//! NAL unit, STAP-A and FU-A payloads. STAP-B, MTAP and FU-B only exist in interleaved
//! mode and are rejected with [`PayloadError::H264UnsupportedNalType`]. A sequence gap
//! inside a fragmented NAL unit drops that NAL unit and the access unit comes out marked
//! incomplete, so a decoder never receives a NAL unit with a hole in it as if whole.

use super::{Assembler, Begin, DEFAULT_MAX_FRAME_SIZE, DepacketizedFrame, DepacketizerStats};
use super::{PacketInfo, PayloadError, PayloadPackets};

/// Default MTU: the largest payload the packetizer writes, leaving room in a 1500-byte
/// Ethernet frame for IP, UDP, RTP header extensions and SRTP.
pub const DEFAULT_MTU: usize = 1200;
/// Smallest MTU: an FU-A needs its two header bytes plus one byte of data.
pub const MIN_MTU: usize = 3;

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an Annex B byte stream, without start codes or trailing zero bytes
/// (`trailing_zero_8bits`, which also absorbs the extra zero of 4-byte start codes).
/// Empty NAL units are skipped. Bytes before the first start code are not returned.
pub fn annex_b_nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = match find_start_code(stream) {
        Some((_, end)) => &stream[end..],
        None => &[][..],
    };
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (nal, next) = match find_start_code(rest) {
                Some((start, end)) => (&rest[..start], &rest[end..]),
                None => (rest, &[][..]),
            };
            rest = next;
            let trimmed = match nal.iter().rposition(|&b| b != 0) {
                Some(last) => &nal[..=last],
                None => &[][..],
            };
            if !trimmed.is_empty() {
                return Some(trimmed);
            }
        }
    })
}

/// Position of the first `00 00 01` in `data`: (its start, the index after it).
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 2 < data.len() {
        // Skip ahead quickly: a start code's third byte is 1, its first two are 0.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some((i, i + 3)),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// Splits Annex B access units into RFC 6184 mode 1 payloads.
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    mtu: usize,
    /// NAL units waiting to be aggregated: (start, end) in the input. Reused.
    pending: Vec<(usize, usize)>,
}

impl Default for H264Packetizer {
    fn default() -> Self {
        Self {
            mtu: DEFAULT_MTU,
            pending: Vec::new(),
        }
    }
}

impl H264Packetizer {
    /// A packetizer writing payloads of at most `mtu` bytes (at least [`MIN_MTU`]).
    pub fn new(mtu: usize) -> Result<Self, PayloadError> {
        if mtu < MIN_MTU {
            return Err(PayloadError::MtuTooSmall { mtu, min: MIN_MTU });
        }
        Ok(Self {
            mtu,
            pending: Vec::new(),
        })
    }

    /// The largest payload it writes.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Packetizes one Annex B access unit into `out` (cleared first). An access unit
    /// without NAL units gives no packets.
    pub fn packetize(
        &mut self,
        access_unit: &[u8],
        out: &mut PayloadPackets,
    ) -> Result<(), PayloadError> {
        out.clear();
        self.pending.clear();
        let Some(&first) = access_unit.first() else {
            return Ok(());
        };
        let leading_zeros = access_unit.iter().take_while(|&&b| b == 0).count();
        if leading_zeros < 2 || access_unit.get(leading_zeros) != Some(&1) {
            return Err(PayloadError::H264MissingStartCode { first });
        }
        let base = access_unit.as_ptr() as usize;
        // Size of the STAP-A holding `pending` (STAP-A header + 2-byte size per NAL unit).
        let mut stap_len = 1;
        for nal in annex_b_nal_units(access_unit) {
            let start = nal.as_ptr() as usize - base;
            let range = (start, start + nal.len());
            if nal.len() > self.mtu {
                self.flush(access_unit, out);
                stap_len = 1;
                self.fragment(nal, out);
                continue;
            }
            if !self.pending.is_empty() && stap_len + 2 + nal.len() > self.mtu {
                self.flush(access_unit, out);
                stap_len = 1;
            }
            self.pending.push(range);
            stap_len += 2 + nal.len();
        }
        self.flush(access_unit, out);
        Ok(())
    }

    /// Writes the pending NAL units: one as a single NAL unit packet, more as a STAP-A.
    fn flush(&mut self, access_unit: &[u8], out: &mut PayloadPackets) {
        match self.pending.as_slice() {
            [] => {}
            [(start, end)] => {
                out.push_bytes(&access_unit[*start..*end]);
                out.finish_packet();
            }
            nals => {
                // F is the OR of the aggregated F bits and NRI their maximum (RFC 6184 5.7).
                let (f, nri) = nals.iter().fold((0u8, 0u8), |(f, nri), (start, _)| {
                    let header = access_unit[*start];
                    (f | (header & 0x80), nri.max(header & 0x60))
                });
                out.push_byte(f | nri | STAP_A);
                for (start, end) in nals {
                    let nal = &access_unit[*start..*end];
                    // Fits in u16: the NAL unit is at most the MTU, checked by the caller.
                    out.push_bytes(&(nal.len() as u16).to_be_bytes());
                    out.push_bytes(nal);
                }
                out.finish_packet();
            }
        }
        self.pending.clear();
    }

    /// Writes a NAL unit larger than the MTU as FU-A packets.
    fn fragment(&self, nal: &[u8], out: &mut PayloadPackets) {
        let header = nal[0];
        let indicator = (header & 0xE0) | FU_A;
        let nal_type = header & 0x1F;
        let chunk = self.mtu - 2;
        // The NAL unit is longer than the MTU, so there are at least two fragments and no
        // FU-A carries both the start and end bits (forbidden by RFC 6184 5.8).
        let body = &nal[1..];
        let count = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == count { 0x40 } else { 0 };
            out.push_byte(indicator);
            out.push_byte(start | end | nal_type);
            out.push_bytes(piece);
            out.finish_packet();
        }
    }
}

/// Rebuilds Annex B access units from RFC 6184 mode 1 payloads.
///
/// Frames are bounded by `max_frame_size` ([`DEFAULT_MAX_FRAME_SIZE`] unless set with
/// [`with_max_frame_size`](Self::with_max_frame_size)): an access unit that grows beyond
/// it is dropped whole and counted in [`DepacketizerStats::oversize_frames`].
#[derive(Debug, Clone)]
pub struct H264Depacketizer {
    assembler: Assembler,
    /// Offset in the frame buffer where the fragmented NAL unit in progress starts, and
    /// its NAL unit type.
    fragment: Option<(usize, u8)>,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Depacketizer {
    /// A depacketizer with the default frame bound.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// A depacketizer dropping access units larger than `max_frame_size` bytes (Annex B,
    /// start codes included).
    pub fn with_max_frame_size(max_frame_size: usize) -> Self {
        Self {
            assembler: Assembler::new(max_frame_size),
            fragment: None,
        }
    }

    /// The frame bound in bytes.
    pub fn max_frame_size(&self) -> usize {
        self.assembler.max_frame_size()
    }

    /// Counters of what it saw and dropped.
    pub fn stats(&self) -> DepacketizerStats {
        self.assembler.stats
    }

    /// Takes one payload (in sequence order); returns the access unit it completes, if
    /// its marker bit is set. A malformed payload is an error; the access unit it
    /// belonged to then comes out incomplete.
    pub fn push(
        &mut self,
        payload: &[u8],
        info: PacketInfo,
    ) -> Result<Option<DepacketizedFrame<'_>>, PayloadError> {
        match self.assembler.begin(info) {
            Begin::Late => return Ok(None),
            Begin::Skip => return Ok(self.end(info.marker)),
            Begin::Process { gap, new_frame } => {
                if new_frame {
                    self.fragment = None;
                } else if gap {
                    self.drop_fragment();
                }
            }
        }
        if let Err(error) = self.depacketize(payload) {
            self.assembler.reject();
            return Err(error);
        }
        Ok(self.end(info.marker))
    }

    fn end(&mut self, marker: bool) -> Option<DepacketizedFrame<'_>> {
        if marker {
            // The access unit ends inside a fragmented NAL unit: its end was lost.
            self.drop_fragment();
        }
        self.assembler.finish(marker)
    }

    /// Forgets a fragmented NAL unit in progress, which can no longer be completed.
    fn drop_fragment(&mut self) {
        if let Some((start, _)) = self.fragment.take() {
            self.assembler.buf.truncate(start);
            self.assembler.complete = false;
        }
    }

    fn depacketize(&mut self, payload: &[u8]) -> Result<(), PayloadError> {
        let Some(&header) = payload.first() else {
            return Err(PayloadError::Empty {
                what: "H.264 payload",
            });
        };
        match header & 0x1F {
            1..=23 => {
                // A whole NAL unit where a fragment was expected: its end was lost.
                self.drop_fragment();
                self.append_nal(&[], payload);
                Ok(())
            }
            STAP_A => self.stap_a(&payload[1..]),
            FU_A => self.fu_a(header, &payload[1..]),
            // 0, STAP-B, MTAP16, MTAP24, FU-B, 30 and 31: the other five-bit values.
            nal_type => Err(PayloadError::H264UnsupportedNalType { nal_type }),
        }
    }

    fn append_nal(&mut self, header: &[u8], body: &[u8]) {
        let nal_type = header.first().or(body.first()).map_or(0, |h| h & 0x1F);
        if self.assembler.room() < START_CODE.len() + header.len() + body.len() {
            self.fragment = None;
            self.assembler.overflow();
            return;
        }
        if nal_type == NAL_IDR || nal_type == NAL_SPS {
            self.assembler.keyframe = true;
        }
        self.assembler.buf.extend_from_slice(&START_CODE);
        self.assembler.buf.extend_from_slice(header);
        self.assembler.buf.extend_from_slice(body);
    }

    fn stap_a(&mut self, mut body: &[u8]) -> Result<(), PayloadError> {
        // Check the whole aggregate first, so a bad one adds nothing to the frame.
        let mut check = body;
        let mut count = 0;
        while !check.is_empty() {
            let nal = stap_unit(check)?;
            check = &check[2 + nal.len()..];
            count += 1;
        }
        if count == 0 {
            return Err(PayloadError::H264Invalid {
                reason: "STAP-A without NAL units",
            });
        }
        self.drop_fragment();
        while !body.is_empty() && !self.assembler.is_oversize() {
            let nal = stap_unit(body)?;
            body = &body[2 + nal.len()..];
            self.append_nal(&[], nal);
        }
        Ok(())
    }

    fn fu_a(&mut self, indicator: u8, body: &[u8]) -> Result<(), PayloadError> {
        let Some((&fu_header, data)) = body.split_first() else {
            return Err(PayloadError::Truncated {
                what: "FU-A header",
                needed: 2,
                available: 1,
            });
        };
        let (start, end, nal_type) = (
            fu_header & 0x80 != 0,
            fu_header & 0x40 != 0,
            fu_header & 0x1F,
        );
        if start && end {
            return Err(PayloadError::H264Invalid {
                reason: "FU-A with both start and end bits",
            });
        }
        if start {
            // A new fragmented NAL unit while one is in progress: the old one lost its end.
            self.drop_fragment();
            let offset = self.assembler.buf.len();
            self.append_nal(&[(indicator & 0xE0) | nal_type], data);
            if !self.assembler.is_oversize() {
                self.fragment = Some((offset, nal_type));
            }
        } else {
            match self.fragment {
                Some((_, in_progress)) if in_progress == nal_type => {
                    if !self.assembler.append(data) {
                        self.fragment = None;
                        return Ok(());
                    }
                }
                _ => {
                    // Its start was lost (or it belongs to another NAL unit): unusable.
                    self.drop_fragment();
                    self.assembler.complete = false;
                    return Ok(());
                }
            }
        }
        if end {
            self.fragment = None;
        }
        Ok(())
    }
}

/// The first NAL unit of a STAP-A body (2-byte size, then the NAL unit).
fn stap_unit(body: &[u8]) -> Result<&[u8], PayloadError> {
    let Some(size) = body.get(..2) else {
        return Err(PayloadError::Truncated {
            what: "STAP-A NAL unit size",
            needed: 2,
            available: body.len(),
        });
    };
    let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
    if size == 0 {
        return Err(PayloadError::H264Invalid {
            reason: "STAP-A NAL unit of size 0",
        });
    }
    body.get(2..2 + size).ok_or(PayloadError::Truncated {
        what: "STAP-A NAL unit",
        needed: size,
        available: body.len() - 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAP_B: u8 = 25;
    const MTAP16: u8 = 26;
    const MTAP24: u8 = 27;
    const FU_B: u8 = 29;

    fn info(sequence: u16, marker: bool) -> PacketInfo {
        PacketInfo {
            sequence,
            timestamp: 3000,
            marker,
        }
    }

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| START_CODE.iter().chain(n.iter()))
            .copied()
            .collect()
    }

    /// Packetizes and depacketizes, optionally skipping one packet.
    fn round_trip(
        mtu: usize,
        au: &[u8],
        skip: Option<usize>,
    ) -> (PayloadPackets, Option<(Vec<u8>, bool, bool)>) {
        let mut packetizer = H264Packetizer::new(mtu).unwrap();
        let mut packets = PayloadPackets::new();
        packetizer.packetize(au, &mut packets).unwrap();
        let mut depacketizer = H264Depacketizer::new();
        let mut result = None;
        for (i, (payload, marker)) in packets.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if let Some(frame) = depacketizer.push(payload, info(i as u16, marker)).unwrap() {
                result = Some((frame.data.to_vec(), frame.keyframe, frame.complete));
            }
        }
        (packets, result)
    }

    #[test]
    fn nal_units_are_found_at_3_and_4_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 0, 1, 0x65, 3, 0, 0, 1,
        ];
        let nals: Vec<_> = annex_b_nal_units(&stream).collect();
        assert_eq!(nals, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 3]]);
        assert_eq!(annex_b_nal_units(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn small_nal_units_are_aggregated_into_stap_a() {
        let au = annex_b(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 4, 5, 6]]);
        let (packets, frame) = round_trip(DEFAULT_MTU, &au, None);
        assert_eq!(packets.len(), 1);
        assert_eq!(
            packets.get(0).unwrap(),
            &[0x78, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3, 0, 4, 0x65, 4, 5, 6]
        );
        assert_eq!(frame, Some((au, true, true)));
    }

    #[test]
    fn a_lone_nal_unit_is_a_single_nal_unit_packet() {
        let au = annex_b(&[&[0x41, 9, 9]]);
        let (packets, frame) = round_trip(DEFAULT_MTU, &au, None);
        assert_eq!(packets.get(0).unwrap(), &[0x41, 9, 9]);
        assert_eq!(frame, Some((au, false, true)));
    }

    #[test]
    fn large_nal_units_are_fragmented_and_rebuilt() {
        let mut nal = vec![0x65];
        nal.extend((0..3000u32).map(|i| (i % 251) as u8 | 1));
        let au = annex_b(&[&[0x67, 1], &nal]);
        let (packets, frame) = round_trip(100, &au, None);
        assert!(packets.iter().all(|(p, _)| p.len() <= 100));
        let fu = packets.get(1).unwrap();
        assert_eq!(fu[0], 0x60 | FU_A);
        assert_eq!(fu[1], 0x80 | 5);
        let last = packets.get(packets.len() - 1).unwrap();
        assert_eq!(last[1], 0x40 | 5);
        assert_eq!(frame, Some((au.clone(), true, true)));

        // Losing a middle fragment drops the NAL unit and marks the frame incomplete.
        let (_, frame) = round_trip(100, &au, Some(5));
        let (data, _, complete) = frame.unwrap();
        assert!(!complete);
        assert_eq!(data, annex_b(&[&[0x67, 1]]));
        // Losing the first fragment: the rest is unusable.
        let (_, frame) = round_trip(100, &au, Some(1));
        assert_eq!(frame.unwrap().0, annex_b(&[&[0x67, 1]]));
    }

    #[test]
    fn rejects_interleaved_mode_and_malformed_payloads() {
        let mut d = H264Depacketizer::new();
        for nal_type in [0, STAP_B, MTAP16, MTAP24, FU_B, 30, 31] {
            assert_eq!(
                d.push(&[nal_type, 0, 0], info(10 + u16::from(nal_type), false)),
                Err(PayloadError::H264UnsupportedNalType { nal_type })
            );
        }
        assert!(matches!(
            d.push(&[], info(51, false)),
            Err(PayloadError::Empty { .. })
        ));
        assert!(matches!(
            d.push(&[STAP_A, 0, 5, 1], info(52, false)),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            d.push(&[STAP_A], info(53, false)),
            Err(PayloadError::H264Invalid { .. })
        ));
        assert!(matches!(
            d.push(&[FU_A, 0xC5, 1], info(54, false)),
            Err(PayloadError::H264Invalid { .. })
        ));
        assert!(matches!(
            d.push(&[FU_A], info(55, false)),
            Err(PayloadError::Truncated { .. })
        ));
        let frame = d.push(&[0x41, 1], info(56, true)).unwrap().unwrap();
        assert!(!frame.complete);
        assert_eq!(d.stats().invalid_packets, 12);
        assert!(matches!(
            H264Packetizer::new(2),
            Err(PayloadError::MtuTooSmall { mtu: 2, min: 3 })
        ));
        assert!(matches!(
            H264Packetizer::default().packetize(&[0x41, 0, 0, 1], &mut PayloadPackets::new()),
            Err(PayloadError::H264MissingStartCode { first: 0x41 })
        ));
    }

    #[test]
    fn oversize_frames_are_dropped_and_counted() {
        let mut d = H264Depacketizer::with_max_frame_size(10);
        assert_eq!(d.push(&[0x41; 5], info(0, false)), Ok(None));
        assert_eq!(d.push(&[0x41; 5], info(1, true)), Ok(None));
        assert_eq!(d.stats().oversize_frames, 1);
        let frame = d
            .push(
                &[0x41; 2],
                PacketInfo {
                    sequence: 2,
                    timestamp: 1,
                    marker: true,
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(frame.data, &[0, 0, 0, 1, 0x41, 0x41]);
    }

    /// A NAL unit as an encoder writes it: forbidden bit 0, no start-code emulation
    /// (0x03 inserted after two zeros), not ending in zero.
    fn nal_unit(header: u8, body: &[u8]) -> Vec<u8> {
        let mut nal = vec![header];
        let mut zeros = 0;
        for &b in body {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            nal.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        if nal.last() == Some(&0) {
            nal.push(0x80);
        }
        nal
    }

    fn arb_nal() -> impl Strategy<Value = Vec<u8>> {
        let header = (0u8..4, 1u8..24).prop_map(|(nri, t)| (nri << 5) | t);
        let size = prop_oneof![4 => 0usize..300, 2 => 300usize..5_000, 1 => 5_000usize..300_000];
        (header, size, any::<u64>()).prop_map(|(header, size, seed)| {
            // Cheap deterministic bytes with plenty of zeros, to exercise emulation
            // prevention and start-code search.
            let mut state = seed | 1;
            let body: Vec<u8> = (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 4 == 0 { 0 } else { state as u8 }
                })
                .collect();
            nal_unit(header, &body)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn packetize_depacketize_round_trip(
            nals in proptest::collection::vec(arb_nal(), 1..8),
            mtu in prop_oneof![Just(DEFAULT_MTU), 3usize..2000],
            four_byte in any::<bool>(),
        ) {
            let mut au = Vec::new();
            for nal in &nals {
                au.extend_from_slice(if four_byte { &[0, 0, 0, 1] } else { &[0, 0, 1][..] });
                au.extend_from_slice(nal);
            }
            let expected: Vec<u8> = nals.iter().flat_map(|n| START_CODE.iter().chain(n)).copied().collect();
            let (packets, frame) = round_trip(mtu, &au, None);
            prop_assert!(packets.iter().all(|(p, _)| p.len() <= mtu));
            let (data, keyframe, complete) = frame.unwrap();
            prop_assert!(data == expected);
            prop_assert!(complete);
            prop_assert_eq!(keyframe, nals.iter().any(|n| matches!(n[0] & 0x1F, 5 | 7)));
        }

        #[test]
        fn losing_any_packet_never_yields_a_complete_frame(
            nals in proptest::collection::vec(arb_nal(), 1..5),
            mtu in 3usize..1500,
            skip in any::<proptest::sample::Index>(),
        ) {
            let au: Vec<u8> = nals.iter().flat_map(|n| START_CODE.iter().chain(n)).copied().collect();
            let mut packets = PayloadPackets::new();
            H264Packetizer::new(mtu).unwrap().packetize(&au, &mut packets).unwrap();
            let skip = skip.index(packets.len());
            let mut d = H264Depacketizer::new();
            // A frame before, so that losing the first packet is a visible gap.
            let before = PacketInfo { sequence: 0, timestamp: 1, marker: true };
            prop_assert!(d.push(&[0x41, 1], before).unwrap().is_some());
            for (i, (payload, marker)) in packets.iter().enumerate() {
                if i == skip { continue; }
                if let Some(frame) = d.push(payload, info((i as u16).wrapping_add(1), marker)).unwrap() {
                    prop_assert!(!frame.complete);
                    // Whatever came out is whole NAL units of the original, in order.
                    for nal in annex_b_nal_units(frame.data) {
                        prop_assert!(nals.iter().any(|n| n.as_slice() == nal));
                    }
                }
            }
        }

        #[test]
        fn arbitrary_payloads_never_panic(
            payloads in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..64), any::<u16>(), any::<bool>(), 0u32..3),
                0..32,
            ),
        ) {
            let mut d = H264Depacketizer::with_max_frame_size(256);
            for (payload, sequence, marker, timestamp) in &payloads {
                let info = PacketInfo { sequence: *sequence, timestamp: *timestamp, marker: *marker };
                if let Ok(Some(frame)) = d.push(payload, info) {
                    prop_assert!(frame.data.len() <= 256);
                }
            }
        }
    }
}
