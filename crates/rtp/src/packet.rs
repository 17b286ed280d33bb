//! RTP packets (RFC 3550 §5.1): a zero-copy parsed view and a builder that writes into a
//! caller buffer.

use crate::error::{Result, RtpError, need};
use crate::extension::{Extension, ExtensionForm, Extensions};
use tincan_media::time::{RtpTimestamp, SeqNo};

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;
/// Most CSRCs a header can list (the CC field is 4 bits).
pub const MAX_CSRCS: usize = 15;

/// A parsed RTP packet: a view over the input bytes; every accessor reads from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    data: &'a [u8],
    /// Start of the extension block body (after its 4-byte header) and its length, when
    /// the X bit is set.
    extension: Option<(usize, usize)>,
    payload_start: usize,
    payload_end: usize,
}

fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Parses `data`, checking that the header, CSRC list, extension block and padding
    /// all fit. Extension elements are checked lazily by [`Self::extensions`].
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        need(data, RTP_HEADER_LEN)?;
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        let csrc_count = usize::from(data[0] & 0x0F);
        let mut at = RTP_HEADER_LEN + 4 * csrc_count;
        need(data, at)?;
        let mut extension = None;
        if data[0] & 0x10 != 0 {
            need(data, at + 4)?;
            let len = 4 * usize::from(be16(data, at + 2));
            need(data, at + 4 + len)?;
            extension = Some((at + 4, len));
            at += 4 + len;
        }
        let mut payload_end = data.len();
        if data[0] & 0x20 != 0 {
            // The padding count is the last byte and includes itself.
            let padding = usize::from(data[data.len() - 1]);
            let available = data.len() - at;
            if padding == 0 || padding > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            payload_end -= padding;
        }
        Ok(Self {
            data,
            extension,
            payload_start: at,
            payload_end,
        })
    }

    /// The bytes this packet was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.data[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.data[1] & 0x7F
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> SeqNo {
        SeqNo(be16(self.data, 2))
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> RtpTimestamp {
        RtpTimestamp(be32(self.data, 4))
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        be32(self.data, 8)
    }

    /// Number of contributing sources.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.data[0] & 0x0F)
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let data = self.data;
        (0..self.csrc_count()).map(move |i| be32(data, RTP_HEADER_LEN + 4 * i))
    }

    /// The extension block's profile and body, when the X bit is set.
    pub fn extension_block(&self) -> Option<(u16, &'a [u8])> {
        self.extension
            .map(|(start, len)| (be16(self.data, start - 4), &self.data[start..start + len]))
    }

    /// The RFC 8285 extension elements (none when there is no block or its profile is
    /// not RFC 8285).
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension_block() {
            Some((profile, body)) => Extensions::new(profile, body),
            None => Extensions::empty(),
        }
    }

    /// The data of the first extension element with `id`.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(id)
    }

    /// The payload, without header or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.payload_start..self.payload_end]
    }

    /// Number of padding bytes at the end (0 when the P bit is clear).
    pub fn padding(&self) -> usize {
        self.data.len() - self.payload_end
    }

    /// Length of everything before the payload.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }
}

/// The header extension a builder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderExtension<'a> {
    /// No extension block (X bit clear).
    #[default]
    None,
    /// RFC 8285 elements, in the smallest form that holds them.
    Elements(&'a [Extension<'a>]),
    /// RFC 8285 elements in a chosen form.
    ElementsIn(ExtensionForm, &'a [Extension<'a>]),
    /// A raw block: profile and body (length must be a multiple of 4).
    Raw {
        /// The 16-bit profile-defined value.
        profile: u16,
        /// The block body.
        data: &'a [u8],
    },
}

/// Writes RTP packets into caller buffers; holds only borrowed data, so building one per
/// packet does not allocate.
///
/// ```
/// use tincan_rtp::packet::{RtpPacket, RtpPacketBuilder};
///
/// let mut buf = [0u8; 64];
/// let len = RtpPacketBuilder::new(111, 7, 960, 0xCAFE)
///     .payload(&[1, 2, 3])
///     .write(&mut buf)?;
/// let packet = RtpPacket::parse(&buf[..len])?;
/// assert_eq!(packet.payload(), &[1, 2, 3]);
/// # Ok::<(), tincan_rtp::RtpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketBuilder<'a> {
    /// The marker bit.
    pub marker: bool,
    /// The payload type (0-127).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: &'a [u32],
    /// The header extension.
    pub extension: HeaderExtension<'a>,
    /// The payload.
    pub payload: &'a [u8],
    /// Padding bytes to append (0 for none; the P bit is set otherwise).
    pub padding: u8,
}

impl<'a> RtpPacketBuilder<'a> {
    /// A packet with no CSRCs, extensions, payload or padding.
    pub fn new(payload_type: u8, sequence_number: u16, timestamp: u32, ssrc: u32) -> Self {
        Self {
            marker: false,
            payload_type,
            sequence_number,
            timestamp,
            ssrc,
            csrcs: &[],
            extension: HeaderExtension::None,
            payload: &[],
            padding: 0,
        }
    }

    /// Sets the marker bit.
    pub fn marker(mut self, marker: bool) -> Self {
        self.marker = marker;
        self
    }

    /// Sets the CSRC list.
    pub fn csrcs(mut self, csrcs: &'a [u32]) -> Self {
        self.csrcs = csrcs;
        self
    }

    /// Sets RFC 8285 extension elements, written in the smallest form that holds them.
    pub fn extensions(mut self, elements: &'a [Extension<'a>]) -> Self {
        self.extension = HeaderExtension::Elements(elements);
        self
    }

    /// Sets the header extension.
    pub fn header_extension(mut self, extension: HeaderExtension<'a>) -> Self {
        self.extension = extension;
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the number of padding bytes (0 for none).
    pub fn padding(mut self, padding: u8) -> Self {
        self.padding = padding;
        self
    }

    /// Form, profile and body length (unpadded) of the extension block, if any.
    fn extension_layout(&self) -> Result<Option<(Option<ExtensionForm>, u16, usize)>> {
        Ok(match self.extension {
            HeaderExtension::None => None,
            HeaderExtension::Elements(elements) => {
                let form = ExtensionForm::smallest_for(elements);
                Some((Some(form), form.profile(), form.encoded_len(elements)?))
            }
            HeaderExtension::ElementsIn(form, elements) => {
                Some((Some(form), form.profile(), form.encoded_len(elements)?))
            }
            HeaderExtension::Raw { profile, data } => {
                if data.len() % 4 != 0 {
                    return Err(RtpError::ValueOutOfRange {
                        field: "raw extension length % 4",
                        value: (data.len() % 4) as u64,
                        max: 0,
                    });
                }
                Some((None, profile, data.len()))
            }
        })
    }

    /// The packet's length in bytes; checks every field.
    pub fn len(&self) -> Result<usize> {
        if self.payload_type > 127 {
            return Err(RtpError::ValueOutOfRange {
                field: "payload type",
                value: self.payload_type.into(),
                max: 127,
            });
        }
        if self.csrcs.len() > MAX_CSRCS {
            return Err(RtpError::ValueOutOfRange {
                field: "CSRC count",
                value: self.csrcs.len() as u64,
                max: MAX_CSRCS as u64,
            });
        }
        let mut len = RTP_HEADER_LEN + 4 * self.csrcs.len();
        if let Some((_, _, body)) = self.extension_layout()? {
            let words = body.div_ceil(4);
            if words > usize::from(u16::MAX) {
                return Err(RtpError::ValueOutOfRange {
                    field: "extension length in words",
                    value: words as u64,
                    max: u16::MAX.into(),
                });
            }
            len += 4 + 4 * words;
        }
        Ok(len + self.payload.len() + usize::from(self.padding))
    }

    /// Always false: a packet has at least a header (present for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the packet at the start of `buf`; returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len()?;
        if buf.len() < len {
            return Err(RtpError::BufferTooSmall {
                needed: len,
                got: buf.len(),
            });
        }
        let buf = &mut buf[..len];
        let layout = self.extension_layout()?;
        buf[0] = 0x80
            | (u8::from(self.padding > 0) << 5)
            | (u8::from(layout.is_some()) << 4)
            | self.csrcs.len() as u8;
        buf[1] = (u8::from(self.marker) << 7) | self.payload_type;
        buf[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = RTP_HEADER_LEN;
        for csrc in self.csrcs {
            buf[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some((form, profile, body)) = layout {
            let padded = body.next_multiple_of(4);
            buf[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&((padded / 4) as u16).to_be_bytes());
            at += 4;
            let block = &mut buf[at..at + padded];
            match (form, self.extension) {
                (
                    Some(form),
                    HeaderExtension::Elements(elements) | HeaderExtension::ElementsIn(_, elements),
                ) => form.write(elements, block),
                (_, HeaderExtension::Raw { data, .. }) => block.copy_from_slice(data),
                _ => block.fill(0),
            }
            at += padded;
        }
        buf[at..at + self.payload.len()].copy_from_slice(self.payload);
        at += self.payload.len();
        if self.padding > 0 {
            let end = at + usize::from(self.padding);
            buf[at..end - 1].fill(0);
            buf[end - 1] = self.padding;
        }
        Ok(len)
    }

    /// Writes the packet into `out`, replacing its contents; reusing `out` across packets
    /// avoids allocating once it has grown to the largest packet.
    pub fn write_vec(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.len()?;
        out.clear();
        out.resize(len, 0);
        self.write(out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_made_packet() {
        let data = [
            0xB1, 0xE0, 0x12, 0x34, 0, 0, 0x03, 0xC0, 0xDE, 0xAD, 0xBE, 0xEF, // header
            0, 0, 0, 9, // CSRC
            0xBE, 0xDE, 0, 1, 0x10, 0x55, 0, 0, // extension block
            7, 8, 0, 2, // payload and 2 bytes of padding
        ];
        let p = RtpPacket::parse(&data).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), SeqNo(0x1234));
        assert_eq!(p.timestamp(), RtpTimestamp(960));
        assert_eq!(p.ssrc(), 0xDEAD_BEEF);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [9]);
        assert_eq!(p.extension(1), Some(&[0x55][..]));
        assert_eq!(p.payload(), &[7, 8]);
        assert_eq!(p.padding(), 2);
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::TooShort { needed: 12, got: 5 })
        );
        let mut data = [0u8; 12];
        data[0] = 0x40;
        assert_eq!(
            RtpPacket::parse(&data),
            Err(RtpError::BadVersion { version: 1 })
        );
        data[0] = 0x82; // two CSRCs that are not there
        assert_eq!(
            RtpPacket::parse(&data),
            Err(RtpError::TooShort {
                needed: 20,
                got: 12
            })
        );
        data[0] = 0x90; // extension header missing
        assert!(matches!(
            RtpPacket::parse(&data),
            Err(RtpError::TooShort { .. })
        ));
        data[0] = 0xA0; // padding of 0
        assert_eq!(
            RtpPacket::parse(&data),
            Err(RtpError::BadPadding {
                padding: 0,
                available: 0
            })
        );
    }

    #[test]
    fn builder_rejects_bad_fields() {
        let mut buf = [0u8; 100];
        assert!(RtpPacketBuilder::new(128, 0, 0, 0).write(&mut buf).is_err());
        assert!(
            RtpPacketBuilder::new(0, 0, 0, 0)
                .csrcs(&[0; 16])
                .write(&mut buf)
                .is_err()
        );
        assert_eq!(
            RtpPacketBuilder::new(0, 0, 0, 0)
                .payload(&[0; 89])
                .write(&mut buf),
            Err(RtpError::BufferTooSmall {
                needed: 101,
                got: 100
            })
        );
        let bad = [Extension::new(0, &[1])];
        assert!(
            RtpPacketBuilder::new(0, 0, 0, 0)
                .extensions(&bad)
                .write(&mut buf)
                .is_err()
        );
    }
}
