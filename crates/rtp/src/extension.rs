//! RTP header extensions (RFC 8285) and the typed extensions tincan uses.
//!
//! The extension block of an RTP packet holds elements in one of two forms: one-byte
//! headers (profile `0xBEDE`, ids 1-14, 1-16 data bytes) or two-byte headers (profile
//! `0x100X`, ids 1-255, 0-255 data bytes). [`Extensions`] walks either form without
//! copying; [`ExtensionMap`] records which id means which [`ExtensionKind`], as negotiated
//! in SDP `a=extmap` lines, and [`KnownExtensions`] reads the typed values from a packet.

use crate::error::{Result, RtpError};
use crate::packet::RtpPacket;
use crate::rtcp::Ntp64;

/// Profile value of the one-byte header form (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile value of the two-byte header form with appbits zero (RFC 8285 §4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// One header extension element: an id and its data, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The element id (1-14 in the one-byte form, 1-255 in the two-byte form).
    pub id: u8,
    /// The element data.
    pub data: &'a [u8],
}

impl<'a> Extension<'a> {
    /// An element with `id` and `data`.
    pub fn new(id: u8, data: &'a [u8]) -> Self {
        Self { id, data }
    }
}

/// Which RFC 8285 form an extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// One-byte headers: ids 1-14, 1-16 data bytes.
    OneByte,
    /// Two-byte headers: ids 1-255, 0-255 data bytes.
    TwoByte,
}

impl ExtensionForm {
    /// The form a block with this profile value uses, if it is an RFC 8285 profile.
    pub fn from_profile(profile: u16) -> Option<Self> {
        if profile == ONE_BYTE_PROFILE {
            Some(Self::OneByte)
        } else if profile & 0xFFF0 == TWO_BYTE_PROFILE {
            // The low four bits are "appbits", free for the application.
            Some(Self::TwoByte)
        } else {
            None
        }
    }

    /// The smallest form that can carry all of `elements`: one-byte when every id is 1-14
    /// and every element holds 1-16 bytes, else two-byte.
    pub fn smallest_for(elements: &[Extension<'_>]) -> Self {
        let one_byte = elements
            .iter()
            .all(|e| (1..=14).contains(&e.id) && (1..=16).contains(&e.data.len()));
        if one_byte {
            Self::OneByte
        } else {
            Self::TwoByte
        }
    }

    /// The profile value written for this form.
    pub fn profile(self) -> u16 {
        match self {
            Self::OneByte => ONE_BYTE_PROFILE,
            Self::TwoByte => TWO_BYTE_PROFILE,
        }
    }

    /// Bytes `elements` take in this form, before padding to 32 bits; checks ids and lengths.
    pub(crate) fn encoded_len(self, elements: &[Extension<'_>]) -> Result<usize> {
        let mut len = 0;
        for e in elements {
            let (max_id, min_len, max_len, header) = match self {
                Self::OneByte => (14, 1, 16, 1),
                Self::TwoByte => (255, 0, 255, 2),
            };
            if e.id == 0 || e.id > max_id {
                return Err(RtpError::ExtensionIdOutOfRange {
                    id: e.id,
                    max: max_id,
                });
            }
            if e.data.len() < min_len || e.data.len() > max_len {
                return Err(RtpError::ExtensionLength {
                    id: e.id,
                    len: e.data.len(),
                    min: min_len,
                    max: max_len,
                });
            }
            len += header + e.data.len();
        }
        Ok(len)
    }

    /// Writes `elements` into `out` (sized by [`Self::encoded_len`] rounded up to 4),
    /// zero-filling the tail; lengths were checked by `encoded_len`.
    pub(crate) fn write(self, elements: &[Extension<'_>], out: &mut [u8]) {
        let mut at = 0;
        for e in elements {
            match self {
                Self::OneByte => {
                    out[at] = (e.id << 4) | (e.data.len() as u8 - 1);
                    at += 1;
                }
                Self::TwoByte => {
                    out[at] = e.id;
                    out[at + 1] = e.data.len() as u8;
                    at += 2;
                }
            }
            out[at..at + e.data.len()].copy_from_slice(e.data);
            at += e.data.len();
        }
        // RFC 8285 padding bytes are zero, which both forms skip.
        out[at..].fill(0);
    }
}

/// Iterator over the elements of an RFC 8285 extension block.
///
/// Yields an error (and then stops) when an element runs past the block. Padding bytes
/// (and, in the one-byte form, any byte with id 0) are skipped; in the one-byte form id 15 ends the walk, as RFC 8285 §4.2 requires.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    form: Option<ExtensionForm>,
    data: &'a [u8],
    at: usize,
}

impl<'a> Extensions<'a> {
    /// Walks `data`, an extension block with `profile`. Blocks with other profiles yield
    /// nothing (their layout is not defined by RFC 8285).
    pub fn new(profile: u16, data: &'a [u8]) -> Self {
        Self {
            form: ExtensionForm::from_profile(profile),
            data,
            at: 0,
        }
    }

    /// An iterator that yields nothing (a packet without extensions).
    pub fn empty() -> Self {
        Self {
            form: None,
            data: &[],
            at: 0,
        }
    }

    /// The form of the block, or `None` for a non-RFC 8285 profile or no block.
    pub fn form(&self) -> Option<ExtensionForm> {
        self.form
    }

    /// The data of the first element with `id`, if any (stops at a malformed element).
    pub fn find(&self, id: u8) -> Option<&'a [u8]> {
        self.clone()
            .map_while(|e| e.ok())
            .find(|e| e.id == id)
            .map(|e| e.data)
    }

    fn fail(&mut self, err: RtpError) -> Option<Result<Extension<'a>>> {
        self.at = self.data.len();
        Some(Err(err))
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let form = self.form?;
        loop {
            let rest = self.data.get(self.at..)?;
            let &first = rest.first()?;
            // A zero byte is padding; in the one-byte form any byte with id 0 is
            // skipped alone, as libwebrtc does, since id 0 carries no data.
            if first == 0 || (form == ExtensionForm::OneByte && first >> 4 == 0) {
                self.at += 1;
                continue;
            }
            let (id, len, header) = match form {
                ExtensionForm::OneByte => {
                    let id = first >> 4;
                    if id == 15 {
                        self.at = self.data.len();
                        return None;
                    }
                    (id, usize::from(first & 0x0F) + 1, 1)
                }
                ExtensionForm::TwoByte => match rest.get(1) {
                    Some(&len) => (first, usize::from(len), 2),
                    None => {
                        return self.fail(RtpError::ExtensionTruncated {
                            id: first,
                            needed: 2,
                            got: 1,
                        });
                    }
                },
            };
            let Some(data) = rest.get(header..header + len) else {
                return self.fail(RtpError::ExtensionTruncated {
                    id,
                    needed: header + len,
                    got: rest.len(),
                });
            };
            self.at += header + len;
            return Some(Ok(Extension { id, data }));
        }
    }
}

/// The header extensions tincan understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtensionKind {
    /// Transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01).
    TransportCc,
    /// Absolute send time (24-bit 6.18 fixed point seconds).
    AbsSendTime,
    /// Client-to-mixer audio level (RFC 6464).
    AudioLevel,
}

impl ExtensionKind {
    /// Every kind, for iterating.
    pub const ALL: [Self; 3] = [Self::TransportCc, Self::AbsSendTime, Self::AudioLevel];

    /// The URI used in SDP `a=extmap` lines for this kind.
    pub fn uri(self) -> &'static str {
        match self {
            Self::TransportCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            Self::AbsSendTime => "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            Self::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        }
    }

    /// The kind with this SDP URI, if tincan knows it.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.uri() == uri)
    }
}

/// Which extension id carries which [`ExtensionKind`], as negotiated in SDP.
///
/// Ids 1-14 fit the one-byte form, 15-255 need the two-byte form. Fixed size, no
/// allocation: lookups in both directions are array reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionMap {
    ids: [u8; ExtensionKind::ALL.len()],
}

impl Default for ExtensionMap {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtensionMap {
    /// A map with no ids assigned.
    pub fn new() -> Self {
        Self {
            ids: [0; ExtensionKind::ALL.len()],
        }
    }

    fn slot(kind: ExtensionKind) -> usize {
        match kind {
            ExtensionKind::TransportCc => 0,
            ExtensionKind::AbsSendTime => 1,
            ExtensionKind::AudioLevel => 2,
        }
    }

    /// Assigns `id` (1-255) to `kind`, replacing any earlier id of that kind and
    /// unassigning any other kind that had `id`.
    pub fn insert(&mut self, id: u8, kind: ExtensionKind) -> Result<()> {
        if id == 0 {
            return Err(RtpError::ExtensionIdOutOfRange { id, max: 255 });
        }
        for slot in &mut self.ids {
            if *slot == id {
                *slot = 0;
            }
        }
        self.ids[Self::slot(kind)] = id;
        Ok(())
    }

    /// `self` with `id` assigned to `kind` (see [`Self::insert`]).
    pub fn with(mut self, id: u8, kind: ExtensionKind) -> Result<Self> {
        self.insert(id, kind)?;
        Ok(self)
    }

    /// The id assigned to `kind`, if any.
    pub fn id(&self, kind: ExtensionKind) -> Option<u8> {
        match self.ids[Self::slot(kind)] {
            0 => None,
            id => Some(id),
        }
    }

    /// The kind assigned to `id`, if any.
    pub fn kind(&self, id: u8) -> Option<ExtensionKind> {
        if id == 0 {
            return None;
        }
        ExtensionKind::ALL
            .into_iter()
            .find(|&k| self.ids[Self::slot(k)] == id)
    }
}

fn exact<const N: usize>(kind: &'static str, data: &[u8]) -> Result<[u8; N]> {
    data.try_into().map_err(|_| RtpError::ExtensionValueLength {
        kind,
        len: data.len(),
        expected: N,
    })
}

/// Transport-wide sequence number: one counter across all streams of a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransportCc(pub u16);

impl TransportCc {
    /// Reads the 2-byte element data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        exact::<2>("transport-cc", data).map(|b| Self(u16::from_be_bytes(b)))
    }

    /// The element data.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

/// Absolute send time: 24 bits of 6.18 fixed point seconds (wraps every 64 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AbsSendTime(u32);

impl AbsSendTime {
    /// The largest raw value.
    pub const MAX: u32 = (1 << 24) - 1;

    /// From the raw 24-bit value; higher bits are dropped, as the field wraps.
    pub fn from_raw(raw: u32) -> Self {
        Self(raw & Self::MAX)
    }

    /// The raw 24-bit value.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The send time taken from a 64-bit NTP timestamp: its middle 24 bits of 6.18
    /// seconds, which is what senders put on the wire.
    pub fn from_ntp(ntp: Ntp64) -> Self {
        Self::from_raw((ntp.0 >> 14) as u32)
    }

    /// From microseconds on any clock, modulo 64 s, rounded to the nearest 2^-18 s.
    pub fn from_micros(micros: u64) -> Self {
        let units = (u128::from(micros) * (1 << 18) + 500_000) / 1_000_000;
        Self::from_raw(units as u32)
    }

    /// The time within the 64 s cycle, in microseconds (rounded to nearest).
    pub fn to_micros(self) -> u64 {
        (u64::from(self.0) * 1_000_000 + (1 << 17)) >> 18
    }

    /// Reads the 3-byte element data.
    pub fn parse(data: &[u8]) -> Result<Self> {
        exact::<3>("abs-send-time", data).map(|b| Self(u32::from_be_bytes([0, b[0], b[1], b[2]])))
    }

    /// The element data.
    pub fn to_bytes(self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }
}

/// Audio level (RFC 6464): a voice activity flag and the level in -dBov (0 loudest,
/// 127 silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AudioLevel {
    /// The V bit: the sender thinks the packet holds voice.
    pub voice: bool,
    /// Level in -dBov, 0-127.
    level: u8,
}

impl AudioLevel {
    /// A level of `level` -dBov (0-127) with the voice flag.
    pub fn new(voice: bool, level: u8) -> Result<Self> {
        if level > 127 {
            return Err(RtpError::ValueOutOfRange {
                field: "audio level",
                value: level.into(),
                max: 127,
            });
        }
        Ok(Self { voice, level })
    }

    /// The level in -dBov (0 is loudest, 127 silence).
    pub fn level(self) -> u8 {
        self.level
    }

    /// Reads the element data: one byte. RFC 6464 allows a longer element (padded in
    /// the two-byte form) so only the first byte is read.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let Some(&b) = data.first() else {
            return Err(RtpError::ExtensionValueLength {
                kind: "audio level",
                len: 0,
                expected: 1,
            });
        };
        Ok(Self {
            voice: b & 0x80 != 0,
            level: b & 0x7F,
        })
    }

    /// The element data.
    pub fn to_bytes(self) -> [u8; 1] {
        [(u8::from(self.voice) << 7) | self.level]
    }
}

/// The typed extensions found in one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KnownExtensions {
    /// The transport-wide sequence number, if present.
    pub transport_cc: Option<TransportCc>,
    /// The absolute send time, if present.
    pub abs_send_time: Option<AbsSendTime>,
    /// The audio level, if present.
    pub audio_level: Option<AudioLevel>,
}

impl KnownExtensions {
    /// Reads every extension `map` knows from `packet`. Unknown ids are skipped; a
    /// malformed block or a known element of the wrong size is an error.
    pub fn read(packet: &RtpPacket<'_>, map: &ExtensionMap) -> Result<Self> {
        let mut out = Self::default();
        for element in packet.extensions() {
            let element = element?;
            match map.kind(element.id) {
                Some(ExtensionKind::TransportCc) => {
                    out.transport_cc = Some(TransportCc::parse(element.data)?)
                }
                Some(ExtensionKind::AbsSendTime) => {
                    out.abs_send_time = Some(AbsSendTime::parse(element.data)?)
                }
                Some(ExtensionKind::AudioLevel) => {
                    out.audio_level = Some(AudioLevel::parse(element.data)?)
                }
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_byte_block_skips_padding_and_stops_at_id_15() {
        let block = [0x10, 0xAA, 0x00, 0x22, 1, 2, 3, 0x05, 0xF0, 0x30, 9];
        let elements: Vec<_> = Extensions::new(ONE_BYTE_PROFILE, &block)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            elements,
            [Extension::new(1, &[0xAA]), Extension::new(2, &[1, 2, 3])]
        );
    }

    #[test]
    fn truncated_elements_are_errors() {
        let mut it = Extensions::new(ONE_BYTE_PROFILE, &[0x13, 1]);
        assert_eq!(
            it.next(),
            Some(Err(RtpError::ExtensionTruncated {
                id: 1,
                needed: 5,
                got: 2
            }))
        );
        assert_eq!(it.next(), None);
        let mut two = Extensions::new(0x1003, &[7]);
        assert!(matches!(two.next(), Some(Err(_))));
        assert_eq!(two.next(), None);
        // Unknown profiles yield nothing rather than guessing at a layout.
        assert_eq!(Extensions::new(0x1234, &[1, 2, 3, 4]).count(), 0);
    }

    #[test]
    fn two_byte_form_allows_empty_and_large_ids() {
        let block = [200, 0, 0, 3, 2, 9, 9];
        let elements: Vec<_> = Extensions::new(0x1005, &block)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            elements,
            [Extension::new(200, &[]), Extension::new(3, &[9, 9])]
        );
    }

    #[test]
    fn typed_values_encode_as_specified() {
        assert_eq!(TransportCc(0x1234).to_bytes(), [0x12, 0x34]);
        let level = AudioLevel::new(true, 30).unwrap();
        assert_eq!(level.to_bytes(), [0x80 | 30]);
        assert_eq!(AudioLevel::parse(&[0x9E]).unwrap(), level);
        assert!(AudioLevel::new(false, 128).is_err());
        // 1.5 s is 1.5 * 2^18 units.
        assert_eq!(AbsSendTime::from_micros(1_500_000).raw(), 393_216);
        assert_eq!(AbsSendTime::from_micros(64_000_000).raw(), 0);
        assert_eq!(AbsSendTime::from_raw(393_216).to_micros(), 1_500_000);
        // NTP 1.5 s: seconds in the top 32 bits, half in the fraction.
        assert_eq!(
            AbsSendTime::from_ntp(Ntp64((1 << 32) | (1 << 31))).raw(),
            393_216
        );
        assert!(matches!(
            AbsSendTime::parse(&[1, 2]),
            Err(RtpError::ExtensionValueLength { len: 2, .. })
        ));
    }

    #[test]
    fn map_is_a_bijection() {
        let mut map = ExtensionMap::new()
            .with(3, ExtensionKind::TransportCc)
            .unwrap()
            .with(1, ExtensionKind::AudioLevel)
            .unwrap();
        assert_eq!(map.kind(3), Some(ExtensionKind::TransportCc));
        assert_eq!(map.id(ExtensionKind::AudioLevel), Some(1));
        map.insert(3, ExtensionKind::AbsSendTime).unwrap();
        assert_eq!(map.id(ExtensionKind::TransportCc), None);
        assert_eq!(map.kind(3), Some(ExtensionKind::AbsSendTime));
        assert!(map.insert(0, ExtensionKind::AudioLevel).is_err());
        assert_eq!(
            ExtensionKind::from_uri(ExtensionKind::AudioLevel.uri()),
            Some(ExtensionKind::AudioLevel)
        );
    }

    proptest! {
        #[test]
        fn encode_then_walk_round_trips(
            raw in proptest::collection::vec((1u8..=255, proptest::collection::vec(any::<u8>(), 0..20)), 0..8),
        ) {
            let elements: Vec<_> = raw.iter().map(|(id, d)| Extension::new(*id, d)).collect();
            let form = ExtensionForm::smallest_for(&elements);
            let len = form.encoded_len(&elements).unwrap();
            let mut block = vec![0xEE; len.next_multiple_of(4)];
            form.write(&elements, &mut block);
            let back: Vec<_> = Extensions::new(form.profile(), &block).collect::<Result<_>>().unwrap();
            prop_assert_eq!(back, elements);
        }

        #[test]
        fn walking_arbitrary_blocks_never_panics(profile in any::<u16>(), block in proptest::collection::vec(any::<u8>(), 0..64)) {
            for e in Extensions::new(profile, &block).flatten() {
                prop_assert!(e.data.len() <= block.len());
            }
        }
    }
}
