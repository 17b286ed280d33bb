//! AV1 over RTP (AOMedia "RTP Payload Format for AV1", v1.0).
//!
//! A payload starts with a one-byte aggregation header:
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+
//! |Z|Y| W |N|-|-|-|
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Z: the first OBU element continues an OBU fragment from the previous packet; Y: the
//! last OBU element continues in the next packet; W: number of OBU elements (0: any
//! number, each preceded by a LEB128 length; 1..=3: that many, all but the last preceded
//! by a length); N: first packet of a coded video sequence.
//!
//! [`Av1Packetizer`] takes a temporal unit in the low-overhead bitstream format (Section
//! 5 of the AV1 specification, as in IVF files and encoder output), drops its temporal
//! delimiters and tile list OBUs (the payload format says so: the RTP timestamp delimits
//! temporal units), strips each OBU's size field (`obu_has_size_field = 0`, as
//! recommended), and packs the OBUs into packets of at most the MTU, fragmenting them
//! where they do not fit. It sets N when the temporal unit carries a sequence header.
//!
//! [`Av1Depacketizer`] does the reverse: it reassembles OBUs, gives each a size field
//! again and writes a temporal delimiter in front, so a temporal unit comes out as the
//! low-overhead bitstream a decoder (dav1d) takes.

use super::{Assembler, Begin, DEFAULT_MAX_FRAME_SIZE, DepacketizedFrame, DepacketizerStats};
use super::{PacketInfo, PayloadError, PayloadPackets};

/// Default MTU: the largest payload the packetizer writes (see the H.264 default).
pub const DEFAULT_MTU: usize = 1200;
/// Smallest MTU: the aggregation header, a one-byte length and one byte of OBU.
pub const MIN_MTU: usize = 3;
/// Longest LEB128 encoding accepted (AV1 specification 4.10.5).
pub const MAX_LEB128_LEN: usize = 8;

/// OBU types (AV1 specification 6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_TILE_LIST: u8 = 8;
/// A temporal delimiter OBU with a zero size field.
const TEMPORAL_DELIMITER: [u8; 2] = [OBU_TEMPORAL_DELIMITER << 3 | 0x02, 0];

const Z_BIT: u8 = 0x80;
const Y_BIT: u8 = 0x40;
const N_BIT: u8 = 0x08;

/// Reads a LEB128 value (at most [`MAX_LEB128_LEN`] bytes, value below 2^32, as the AV1
/// specification requires): the value and the bytes it took.
pub fn read_leb128(data: &[u8]) -> Result<(u32, usize), PayloadError> {
    let mut value: u64 = 0;
    for (i, &byte) in data.iter().take(MAX_LEB128_LEN).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value)
                .map(|v| (v, i + 1))
                .map_err(|_| PayloadError::Leb128 {
                    reason: "value above 2^32 - 1",
                });
        }
    }
    if data.len() < MAX_LEB128_LEN {
        Err(PayloadError::Truncated {
            what: "LEB128 value",
            needed: data.len() + 1,
            available: data.len(),
        })
    } else {
        Err(PayloadError::Leb128 {
            reason: "longer than 8 bytes",
        })
    }
}

/// Bytes of the shortest LEB128 encoding of `value`.
pub fn leb128_len(value: usize) -> usize {
    let bits = usize::BITS - (value | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Appends the shortest LEB128 encoding of `value` through `push`.
fn write_leb128(mut value: usize, mut push: impl FnMut(u8)) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            push(byte);
            return;
        }
        push(byte | 0x80);
    }
}

/// One OBU of a temporal unit, as the packetizer sends it (size field stripped).
#[derive(Debug, Clone, Copy)]
struct Obu {
    /// OBU header with `obu_has_size_field` cleared.
    header: u8,
    /// The extension header, if any.
    extension: Option<u8>,
    /// The OBU payload as a range of the input.
    payload: (usize, usize),
}

impl Obu {
    fn header_len(&self) -> usize {
        1 + usize::from(self.extension.is_some())
    }

    fn len(&self) -> usize {
        self.header_len() + self.payload.1 - self.payload.0
    }

    /// Writes bytes `from..to` of the OBU element.
    fn write(&self, input: &[u8], from: usize, to: usize, out: &mut PayloadPackets) {
        let mut head = [self.header, self.extension.unwrap_or(0)];
        let head = &mut head[..self.header_len()];
        if from < head.len() {
            out.push_bytes(&head[from..to.min(head.len())]);
        }
        let header_len = head.len();
        let start = self.payload.0 + from.saturating_sub(header_len);
        let end = self.payload.0 + to.saturating_sub(header_len);
        if start < end {
            out.push_bytes(&input[start..end]);
        }
    }
}

/// Parses the OBU header at the start of `data`: (header, extension, header length).
fn obu_header(data: &[u8]) -> Result<(u8, Option<u8>, usize), PayloadError> {
    let Some(&header) = data.first() else {
        return Err(PayloadError::Truncated {
            what: "OBU header",
            needed: 1,
            available: 0,
        });
    };
    if header & 0x80 != 0 {
        return Err(PayloadError::Av1ForbiddenBit { header });
    }
    if header & 0x04 == 0 {
        return Ok((header, None, 1));
    }
    match data.get(1) {
        Some(&extension) => Ok((header, Some(extension), 2)),
        None => Err(PayloadError::Truncated {
            what: "OBU extension header",
            needed: 2,
            available: 1,
        }),
    }
}

/// One piece of an OBU element in a packet: OBU index and byte range.
#[derive(Debug, Clone, Copy)]
struct Piece {
    obu: usize,
    from: usize,
    to: usize,
}

/// Splits temporal units into AV1 RTP payloads.
#[derive(Debug, Clone)]
pub struct Av1Packetizer {
    mtu: usize,
    /// Reused per temporal unit.
    obus: Vec<Obu>,
    /// Reused per packet.
    pieces: Vec<Piece>,
}

impl Default for Av1Packetizer {
    fn default() -> Self {
        Self {
            mtu: DEFAULT_MTU,
            obus: Vec::new(),
            pieces: Vec::new(),
        }
    }
}

impl Av1Packetizer {
    /// A packetizer writing payloads of at most `mtu` bytes (at least [`MIN_MTU`]).
    pub fn new(mtu: usize) -> Result<Self, PayloadError> {
        if mtu < MIN_MTU {
            return Err(PayloadError::MtuTooSmall { mtu, min: MIN_MTU });
        }
        Ok(Self {
            mtu,
            ..Self::default()
        })
    }

    /// The largest payload it writes.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Packetizes one temporal unit (low-overhead bitstream format: OBUs with size
    /// fields; only the last may lack one) into `out` (cleared first). A temporal unit
    /// with nothing but temporal delimiters gives no packets.
    pub fn packetize(
        &mut self,
        temporal_unit: &[u8],
        out: &mut PayloadPackets,
    ) -> Result<(), PayloadError> {
        out.clear();
        self.parse(temporal_unit)?;
        let new_sequence = self
            .obus
            .iter()
            .any(|obu| (obu.header >> 3) & 0x0F == OBU_SEQUENCE_HEADER);
        let capacity = self.mtu - 1;
        let (mut index, mut offset) = (0, 0);
        let mut first_packet = true;
        while index < self.obus.len() {
            self.pieces.clear();
            let continuation = offset > 0;
            let mut space = capacity;
            while let Some(obu) = self.obus.get(index) {
                let remaining = obu.len() - offset;
                let whole = leb128_len(remaining) + remaining;
                if whole <= space {
                    self.pieces.push(Piece {
                        obu: index,
                        from: offset,
                        to: obu.len(),
                    });
                    space -= whole;
                    index += 1;
                    offset = 0;
                    continue;
                }
                if space >= 2 {
                    // Fill the packet with a fragment; the rest goes in the next one.
                    let mut take = space - 1;
                    while leb128_len(take) + take > space {
                        take -= 1;
                    }
                    self.pieces.push(Piece {
                        obu: index,
                        from: offset,
                        to: offset + take,
                    });
                    offset += take;
                }
                break;
            }
            let count = self.pieces.len();
            let w = if count <= 3 { count as u8 } else { 0 };
            let mut aggregation = w << 4;
            if continuation {
                aggregation |= Z_BIT;
            }
            if offset > 0 {
                aggregation |= Y_BIT;
            }
            if first_packet && new_sequence {
                aggregation |= N_BIT;
            }
            first_packet = false;
            out.push_byte(aggregation);
            for (i, piece) in self.pieces.iter().enumerate() {
                // With W > 0 the last element's length is implied by the packet's end.
                if w == 0 || i + 1 < count {
                    write_leb128(piece.to - piece.from, |b| out.push_byte(b));
                }
                self.obus[piece.obu].write(temporal_unit, piece.from, piece.to, out);
            }
            out.finish_packet();
        }
        Ok(())
    }

    /// Splits the temporal unit into the OBUs to send.
    fn parse(&mut self, temporal_unit: &[u8]) -> Result<(), PayloadError> {
        self.obus.clear();
        let mut at = 0;
        while at < temporal_unit.len() {
            let rest = &temporal_unit[at..];
            let (header, extension, header_len) = obu_header(rest)?;
            let (payload_start, payload_len) = if header & 0x02 != 0 {
                let (size, n) = read_leb128(&rest[header_len..])?;
                (header_len + n, size as usize)
            } else {
                (header_len, rest.len() - header_len)
            };
            let available = rest.len() - payload_start;
            if payload_len > available {
                return Err(PayloadError::Truncated {
                    what: "OBU",
                    needed: payload_len,
                    available,
                });
            }
            let obu_type = (header >> 3) & 0x0F;
            if obu_type != OBU_TEMPORAL_DELIMITER && obu_type != OBU_TILE_LIST {
                self.obus.push(Obu {
                    header: header & !0x02,
                    extension,
                    payload: (at + payload_start, at + payload_start + payload_len),
                });
            }
            at += payload_start + payload_len;
        }
        Ok(())
    }
}

/// Rebuilds temporal units (low-overhead bitstream format) from AV1 RTP payloads.
///
/// Frames are bounded by `max_frame_size` ([`DEFAULT_MAX_FRAME_SIZE`] unless set with
/// [`with_max_frame_size`](Self::with_max_frame_size)); a temporal unit that grows beyond
/// it is dropped whole and counted in [`DepacketizerStats::oversize_frames`]. An OBU that
/// turns out malformed once reassembled is dropped, counted in
/// [`DepacketizerStats::invalid_units`], and its temporal unit marked incomplete.
#[derive(Debug, Clone)]
pub struct Av1Depacketizer {
    assembler: Assembler,
    /// The OBU fragment in progress (without size field), reused.
    fragment: Vec<u8>,
    in_fragment: bool,
    /// Element ranges of the current payload, reused.
    elements: Vec<(usize, usize)>,
}

impl Default for Av1Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Av1Depacketizer {
    /// A depacketizer with the default frame bound.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// A depacketizer dropping temporal units larger than `max_frame_size` bytes (as
    /// output, size fields and temporal delimiter included).
    pub fn with_max_frame_size(max_frame_size: usize) -> Self {
        Self {
            assembler: Assembler::new(max_frame_size),
            fragment: Vec::new(),
            in_fragment: false,
            elements: Vec::new(),
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

    /// Takes one payload (in sequence order); returns the temporal unit it completes, if
    /// its marker bit is set. A payload whose aggregation structure is malformed is an
    /// error, and its temporal unit then comes out incomplete.
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
                    self.in_fragment = false;
                } else if gap {
                    self.drop_fragment();
                }
            }
        }
        if let Err(error) = self.depacketize(payload) {
            self.drop_fragment();
            self.assembler.reject();
            return Err(error);
        }
        Ok(self.end(info.marker))
    }

    fn end(&mut self, marker: bool) -> Option<DepacketizedFrame<'_>> {
        if marker {
            // The temporal unit ends inside a fragmented OBU: its end was lost.
            self.drop_fragment();
        }
        self.assembler.finish(marker)
    }

    fn drop_fragment(&mut self) {
        if self.in_fragment {
            self.in_fragment = false;
            self.assembler.complete = false;
        }
    }

    /// Finds the OBU elements of a payload, checking the structure before using any.
    fn split(&mut self, payload: &[u8]) -> Result<u8, PayloadError> {
        self.elements.clear();
        let Some(&aggregation) = payload.first() else {
            return Err(PayloadError::Empty {
                what: "AV1 payload",
            });
        };
        let w = usize::from((aggregation >> 4) & 0x03);
        let mut at = 1;
        while at < payload.len() {
            if w != 0 && self.elements.len() + 1 == w {
                self.elements.push((at, payload.len()));
                break;
            }
            let (len, n) = read_leb128(&payload[at..])?;
            let start = at + n;
            let available = payload.len() - start;
            if len as usize > available {
                return Err(PayloadError::Truncated {
                    what: "OBU element",
                    needed: len as usize,
                    available,
                });
            }
            at = start + len as usize;
            self.elements.push((start, at));
        }
        if w != 0 && self.elements.len() != w {
            return Err(PayloadError::Av1Invalid {
                reason: "fewer OBU elements than the W field says",
            });
        }
        Ok(aggregation)
    }

    fn depacketize(&mut self, payload: &[u8]) -> Result<(), PayloadError> {
        let aggregation = self.split(payload)?;
        if aggregation & N_BIT != 0 {
            self.assembler.keyframe = true;
        }
        let count = self.elements.len();
        let (z, y) = (aggregation & Z_BIT != 0, aggregation & Y_BIT != 0);
        if !z {
            // The previous packet promised a continuation that is not here.
            self.drop_fragment();
        }
        for i in 0..count {
            if self.assembler.is_oversize() {
                break;
            }
            let (start, end) = self.elements[i];
            let element = &payload[start..end];
            let continues = y && i + 1 == count;
            if i == 0 && z {
                if !self.in_fragment {
                    // Its start was lost: the rest of this OBU is unusable.
                    self.assembler.complete = false;
                    continue;
                }
                if self.fragment.len() + element.len() > self.assembler.room() {
                    self.in_fragment = false;
                    self.assembler.overflow();
                    break;
                }
                self.fragment.extend_from_slice(element);
                if !continues {
                    self.in_fragment = false;
                    write_obu(&mut self.assembler, &self.fragment);
                }
            } else if continues {
                self.fragment.clear();
                self.fragment.extend_from_slice(element);
                self.in_fragment = true;
            } else {
                write_obu(&mut self.assembler, element);
            }
        }
        Ok(())
    }
}

/// Appends a received OBU element to the temporal unit with a size field, after a
/// temporal delimiter if it is the first. Malformed OBUs are dropped and counted.
fn write_obu(assembler: &mut Assembler, element: &[u8]) {
    let Some((header, extension, payload)) = parse_element(element) else {
        assembler.stats.invalid_units += 1;
        assembler.complete = false;
        return;
    };
    let obu_type = (header >> 3) & 0x0F;
    if obu_type == OBU_TEMPORAL_DELIMITER || obu_type == OBU_TILE_LIST {
        return;
    }
    if obu_type == OBU_SEQUENCE_HEADER {
        assembler.keyframe = true;
    }
    let delimiter = if assembler.buf.is_empty() {
        TEMPORAL_DELIMITER.len()
    } else {
        0
    };
    let needed = delimiter + 1 + usize::from(extension.is_some()) + 8 + payload.len();
    if needed > assembler.room() {
        assembler.overflow();
        return;
    }
    let buf = &mut assembler.buf;
    if delimiter > 0 {
        buf.extend_from_slice(&TEMPORAL_DELIMITER);
    }
    buf.push(header | 0x02);
    buf.extend(extension);
    write_leb128(payload.len(), |b| buf.push(b));
    buf.extend_from_slice(payload);
}

/// Header, extension and payload of an OBU element (which may carry a size field).
fn parse_element(element: &[u8]) -> Option<(u8, Option<u8>, &[u8])> {
    let (header, extension, header_len) = obu_header(element).ok()?;
    let mut payload = &element[header_len..];
    if header & 0x02 != 0 {
        let (size, n) = read_leb128(payload).ok()?;
        payload = payload.get(n..n + size as usize)?;
    }
    Some((header, extension, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obu(obu_type: u8, extension: Option<u8>, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(obu_type << 3) | 0x02 | if extension.is_some() { 4 } else { 0 }];
        out.extend(extension);
        write_leb128(payload.len(), |b| out.push(b));
        out.extend_from_slice(payload);
        out
    }

    fn info(sequence: u16, marker: bool) -> PacketInfo {
        PacketInfo {
            sequence,
            timestamp: 90,
            marker,
        }
    }

    fn round_trip(
        mtu: usize,
        tu: &[u8],
        skip: Option<usize>,
    ) -> (PayloadPackets, Option<(Vec<u8>, bool, bool)>) {
        let mut packets = PayloadPackets::new();
        Av1Packetizer::new(mtu)
            .unwrap()
            .packetize(tu, &mut packets)
            .unwrap();
        let mut d = Av1Depacketizer::new();
        // A frame before, so that losing the first packet is a visible gap.
        let before = PacketInfo {
            sequence: 0,
            timestamp: 0,
            marker: true,
        };
        assert!(d.push(&[0x10, 0x30, 0], before).unwrap().is_some());
        let mut result = None;
        for (i, (payload, marker)) in packets.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if let Some(frame) = d
                .push(payload, info((i as u16).wrapping_add(1), marker))
                .unwrap()
            {
                result = Some((frame.data.to_vec(), frame.keyframe, frame.complete));
            }
        }
        (packets, result)
    }

    #[test]
    fn leb128_is_bounded() {
        assert_eq!(read_leb128(&[0x00]), Ok((0, 1)));
        assert_eq!(read_leb128(&[0xE5, 0x8E, 0x26]), Ok((624_485, 3)));
        // Padded encodings are valid, up to 8 bytes.
        assert_eq!(
            read_leb128(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Ok((1, 8))
        );
        assert!(matches!(
            read_leb128(&[0x80; 9]),
            Err(PayloadError::Leb128 { .. })
        ));
        assert!(matches!(
            read_leb128(&[0x80, 0x80]),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            read_leb128(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F]),
            Err(PayloadError::Leb128 {
                reason: "value above 2^32 - 1"
            })
        ));
        assert_eq!(
            read_leb128(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            Ok((u32::MAX, 5))
        );
        for value in [
            0usize,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 21,
            u32::MAX as usize,
        ] {
            let mut out = Vec::new();
            write_leb128(value, |b| out.push(b));
            assert_eq!(out.len(), leb128_len(value));
            assert_eq!(read_leb128(&out), Ok((value as u32, out.len())));
        }
    }

    #[test]
    fn small_temporal_unit_is_one_packet_without_delimiter_or_sizes() {
        let sequence_header = obu(1, None, &[1, 2, 3]);
        let frame = obu(6, Some(0x28), &[4, 5]);
        let tu = [obu(2, None, &[]), sequence_header, frame].concat();
        let (packets, out) = round_trip(DEFAULT_MTU, &tu, None);
        assert_eq!(packets.len(), 1);
        // W = 2, N = 1; the sequence header has a length, the frame OBU takes the rest.
        assert_eq!(
            packets.get(0).unwrap(),
            &[0x28, 4, 0x08, 1, 2, 3, 0x34, 0x28, 4, 5]
        );
        assert_eq!(out, Some((tu, true, true)));
    }

    #[test]
    fn large_obus_are_fragmented_and_loss_is_reported() {
        let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let tu = [obu(2, None, &[]), obu(6, None, &big), obu(6, None, &[1])].concat();
        let (packets, out) = round_trip(300, &tu, None);
        assert!(packets.iter().all(|(p, _)| p.len() <= 300));
        assert_eq!(packets.get(0).unwrap()[0] & (Z_BIT | Y_BIT), Y_BIT);
        assert_eq!(packets.get(1).unwrap()[0] & (Z_BIT | Y_BIT), Z_BIT | Y_BIT);
        assert_eq!(out, Some((tu.clone(), false, true)));
        let (_, out) = round_trip(300, &tu, Some(3));
        let (data, _, complete) = out.unwrap();
        assert!(!complete);
        assert_eq!(data, [obu(2, None, &[]), obu(6, None, &[1])].concat());
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        let mut d = Av1Depacketizer::new();
        assert!(matches!(
            d.push(&[], info(0, false)),
            Err(PayloadError::Empty { .. })
        ));
        assert!(matches!(
            d.push(&[0x00, 5, 1], info(1, false)),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            d.push(&[0x30, 1, 0x30], info(2, false)),
            Err(PayloadError::Av1Invalid { .. })
        ));
        // A malformed OBU is dropped and counted; the rest of the unit survives.
        let frame = d
            .push(&[0x20, 2, 0x80, 0, 0x30, 1, 2], info(3, true))
            .unwrap()
            .unwrap();
        assert!(!frame.complete);
        assert_eq!(
            frame.data,
            [TEMPORAL_DELIMITER.to_vec(), obu(6, None, &[1, 2])].concat()
        );
        assert_eq!(d.stats().invalid_units, 1);
        assert!(matches!(
            Av1Packetizer::new(2),
            Err(PayloadError::MtuTooSmall { .. })
        ));
        let mut packets = PayloadPackets::new();
        assert!(matches!(
            Av1Packetizer::default().packetize(&[0x32, 9, 1], &mut packets),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            Av1Packetizer::default().packetize(&[0x80], &mut packets),
            Err(PayloadError::Av1ForbiddenBit { header: 0x80 })
        ));
    }

    fn arb_obu() -> impl Strategy<Value = Vec<u8>> {
        let obu_type = prop_oneof![Just(1u8), Just(3), Just(4), Just(5), Just(6), Just(15)];
        let size = prop_oneof![4 => 0usize..300, 2 => 300usize..5_000, 1 => 5_000usize..300_000];
        (
            obu_type,
            proptest::option::of(any::<u8>()),
            size,
            any::<u8>(),
        )
            .prop_map(|(t, ext, size, fill)| {
                let payload: Vec<u8> = (0..size).map(|i| fill.wrapping_add(i as u8)).collect();
                obu(t, ext, &payload)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn packetize_depacketize_round_trip(
            obus in proptest::collection::vec(arb_obu(), 1..8),
            mtu in prop_oneof![Just(DEFAULT_MTU), 3usize..2000],
            delimiter in any::<bool>(),
        ) {
            let mut tu = Vec::new();
            if delimiter {
                tu.extend_from_slice(&TEMPORAL_DELIMITER);
            }
            for o in &obus {
                tu.extend_from_slice(o);
            }
            let expected = [TEMPORAL_DELIMITER.to_vec(), obus.concat()].concat();
            let (packets, out) = round_trip(mtu, &tu, None);
            prop_assert!(packets.iter().all(|(p, _)| p.len() <= mtu));
            let (data, keyframe, complete) = out.unwrap();
            prop_assert!(data == expected);
            prop_assert!(complete);
            prop_assert_eq!(keyframe, obus.iter().any(|o| o[0] >> 3 == 1));
        }

        #[test]
        fn losing_any_packet_never_yields_a_complete_unit(
            obus in proptest::collection::vec(arb_obu(), 1..5),
            mtu in 3usize..1500,
            skip in any::<proptest::sample::Index>(),
        ) {
            let tu = obus.concat();
            let mut packets = PayloadPackets::new();
            Av1Packetizer::new(mtu).unwrap().packetize(&tu, &mut packets).unwrap();
            let skip = skip.index(packets.len());
            let (_, out) = round_trip(mtu, &tu, Some(skip));
            if let Some((data, _, complete)) = out {
                prop_assert!(!complete);
                // Whatever came out is whole OBUs of the original, in order.
                let mut rest = &data[2..];
                while !rest.is_empty() {
                    let (_, _, header_len) = obu_header(rest).unwrap();
                    let (size, n) = read_leb128(&rest[header_len..]).unwrap();
                    let len = header_len + n + size as usize;
                    prop_assert!(obus.iter().any(|o| o[..] == rest[..len]));
                    rest = &rest[len..];
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
            let mut d = Av1Depacketizer::with_max_frame_size(256);
            for (payload, sequence, marker, timestamp) in &payloads {
                let info = PacketInfo { sequence: *sequence, timestamp: *timestamp, marker: *marker };
                if let Ok(Some(frame)) = d.push(payload, info) {
                    prop_assert!(frame.data.len() <= 256);
                }
            }
        }
    }
}
