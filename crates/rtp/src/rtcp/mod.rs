//! RTCP (RFC 3550 §6): compound packets, reports, SDES, BYE and feedback (RFC 4585,
//! RFC 5104, REMB, transport-cc).
//!
//! [`RtcpCompound::parse`] checks the framing of every packet (version, length,
//! padding only on the last) and accepts reduced-size RTCP (RFC 5506): a single packet
//! of any type, not necessarily starting with SR or RR. [`RtcpCompound::packets`] then
//! parses each packet into a typed, borrowed [`RtcpPacket`]. [`RtcpWriter`] appends
//! packets to a caller's reusable `Vec<u8>`.

mod feedback;
mod report;
mod sdes;
mod twcc;

pub use feedback::{
    FMT_AFB, FMT_FIR, FMT_NACK, FMT_PLI, FMT_TWCC, Fir, FirEntry, Nack, PSFB, Pli, RTPFB, Remb,
};
pub use report::{
    Ntp64, ReceiverReport, ReportBlock, ReportBlocks, SenderInfo, SenderReport,
    rtt_from_report_block,
};
pub use sdes::{Bye, Sdes, SdesChunk, SdesChunks, SdesItem};
pub use twcc::{DELTA_UNIT_US, REFERENCE_TIME_UNIT_US, TwccBuilder, TwccFeedback, TwccPackets};

use crate::error::{Result, RtpError, need};

/// Length of the common RTCP header.
pub const RTCP_HEADER_LEN: usize = 4;
/// Largest RTCP packet: the 16-bit length field counts 32-bit words minus one.
pub const MAX_RTCP_PACKET_LEN: usize = 4 * (u16::MAX as usize + 1);

/// One RTCP packet's header fields and body, before type-specific parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRtcp<'a> {
    /// The 5-bit count (report count, source count or feedback format).
    pub count: u8,
    /// The packet type.
    pub packet_type: u8,
    /// The body after the 4-byte header, without padding.
    pub body: &'a [u8],
}

/// A parsed RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport(SenderReport<'a>),
    /// Receiver report.
    ReceiverReport(ReceiverReport<'a>),
    /// Source description.
    Sdes(Sdes<'a>),
    /// Goodbye.
    Bye(Bye<'a>),
    /// Generic NACK.
    Nack(Nack<'a>),
    /// Picture loss indication.
    Pli(Pli),
    /// Full intra request.
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate.
    Remb(Remb<'a>),
    /// Transport-wide congestion control feedback.
    TransportCc(TwccFeedback<'a>),
    /// Any other packet (APP, XR, other feedback formats), unparsed.
    Other(RawRtcp<'a>),
}

impl<'a> RtcpPacket<'a> {
    /// Parses one packet from its header fields and body.
    pub fn parse(raw: RawRtcp<'a>) -> Result<Self> {
        let RawRtcp {
            count,
            packet_type,
            body,
        } = raw;
        Ok(match (packet_type, count) {
            (SenderReport::PACKET_TYPE, _) => Self::SenderReport(SenderReport::parse(count, body)?),
            (ReceiverReport::PACKET_TYPE, _) => {
                Self::ReceiverReport(ReceiverReport::parse(count, body)?)
            }
            (Sdes::PACKET_TYPE, _) => Self::Sdes(Sdes::parse(count, body)?),
            (Bye::PACKET_TYPE, _) => Self::Bye(Bye::parse(count, body)?),
            (RTPFB, FMT_NACK) => Self::Nack(Nack::parse(body)?),
            (RTPFB, FMT_TWCC) => Self::TransportCc(TwccFeedback::parse(body)?),
            (PSFB, FMT_PLI) => Self::Pli(Pli::parse(body)?),
            (PSFB, FMT_FIR) => Self::Fir(Fir::parse(body)?),
            (PSFB, FMT_AFB) => match Remb::parse(body)? {
                Some(remb) => Self::Remb(remb),
                None => Self::Other(raw),
            },
            _ => Self::Other(raw),
        })
    }
}

/// A compound RTCP packet whose framing has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound<'a> {
    data: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Checks the framing of every packet in `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        need(data, RTCP_HEADER_LEN)?;
        let mut offset = 0;
        while offset < data.len() {
            let (_, len) = frame(data, offset)?;
            offset += len;
        }
        Ok(Self { data })
    }

    /// The bytes this was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Each packet's header fields and body, unparsed.
    pub fn raw(&self) -> RawPackets<'a> {
        RawPackets {
            data: self.data,
            offset: 0,
        }
    }

    /// Each packet, parsed. A malformed packet yields an error and the walk goes on to
    /// the next one, since the framing is known to be sound.
    pub fn packets(&self) -> impl Iterator<Item = Result<RtcpPacket<'a>>> + 'a {
        self.raw().map(RtcpPacket::parse)
    }
}

/// Checks the packet at `offset`; returns it and its length including padding.
fn frame(data: &[u8], offset: usize) -> Result<(RawRtcp<'_>, usize)> {
    let rest = &data[offset..];
    if rest.len() < RTCP_HEADER_LEN {
        return Err(RtpError::TooShort {
            needed: offset + RTCP_HEADER_LEN,
            got: data.len(),
        });
    }
    let version = rest[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion { version });
    }
    let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
    if rest.len() < len {
        return Err(RtpError::RtcpLength {
            offset,
            declared: len,
            got: rest.len(),
        });
    }
    let mut body = &rest[RTCP_HEADER_LEN..len];
    if rest[0] & 0x20 != 0 {
        if len != rest.len() {
            return Err(RtpError::RtcpPaddingNotLast { offset });
        }
        let padding = usize::from(rest[len - 1]);
        if padding == 0 || padding > body.len() {
            return Err(RtpError::BadPadding {
                padding,
                available: body.len(),
            });
        }
        body = &body[..body.len() - padding];
    }
    Ok((
        RawRtcp {
            count: rest[0] & 0x1F,
            packet_type: rest[1],
            body,
        },
        len,
    ))
}

/// Iterator over the packets of an [`RtcpCompound`], unparsed.
#[derive(Debug, Clone)]
pub struct RawPackets<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for RawPackets<'a> {
    type Item = RawRtcp<'a>;

    fn next(&mut self) -> Option<RawRtcp<'a>> {
        if self.offset >= self.data.len() {
            return None;
        }
        // Framing was checked by `RtcpCompound::parse`; stop quietly if not.
        let (raw, len) = frame(self.data, self.offset).ok()?;
        self.offset += len;
        Some(raw)
    }
}

/// Appends RTCP packets to a caller's buffer, forming a compound packet.
///
/// Reusing the `Vec` across compound packets means no allocation once it has grown.
///
/// ```
/// use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter};
///
/// let mut buf = Vec::new();
/// let mut writer = RtcpWriter::new(&mut buf);
/// writer.receiver_report(0x1234, &[])?;
/// writer.pli(0x1234, 0x5678)?;
/// let compound = RtcpCompound::parse(&buf)?;
/// assert_eq!(compound.packets().count(), 2);
/// # Ok::<(), tincan_rtp::RtpError>(())
/// ```
#[derive(Debug)]
pub struct RtcpWriter<'v> {
    out: &'v mut Vec<u8>,
}

impl<'v> RtcpWriter<'v> {
    /// A writer that clears `out` and appends to it.
    pub fn new(out: &'v mut Vec<u8>) -> Self {
        out.clear();
        Self { out }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.out
    }

    /// Starts a packet; returns where it starts, for [`Self::finish`].
    fn begin(&mut self, count: u8, packet_type: u8) -> usize {
        let start = self.out.len();
        self.out
            .extend_from_slice(&[0x80 | (count & 0x1F), packet_type, 0, 0]);
        start
    }

    /// Pads the packet at `start` to 32 bits and fills in its length; on error removes it.
    fn finish(&mut self, start: usize) -> Result<()> {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
        let len = self.out.len() - start;
        if len > MAX_RTCP_PACKET_LEN {
            self.out.truncate(start);
            return Err(RtpError::ValueOutOfRange {
                field: "RTCP packet length",
                value: len as u64,
                max: MAX_RTCP_PACKET_LEN as u64,
            });
        }
        let words = (len / 4 - 1) as u16;
        self.out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        Ok(())
    }

    fn check_count(field: &'static str, count: usize) -> Result<u8> {
        if count > 31 {
            return Err(RtpError::ValueOutOfRange {
                field,
                value: count as u64,
                max: 31,
            });
        }
        Ok(count as u8)
    }

    /// Appends a sender report with up to 31 report blocks.
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<()> {
        let count = Self::check_count("report blocks", blocks.len())?;
        let start = self.begin(count, SenderReport::PACKET_TYPE);
        self.out.extend_from_slice(&ssrc.to_be_bytes());
        info.write(self.out);
        for block in blocks {
            block.write(self.out);
        }
        self.finish(start)
    }

    /// Appends a receiver report with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<()> {
        let count = Self::check_count("report blocks", blocks.len())?;
        let start = self.begin(count, ReceiverReport::PACKET_TYPE);
        self.out.extend_from_slice(&ssrc.to_be_bytes());
        for block in blocks {
            block.write(self.out);
        }
        self.finish(start)
    }

    /// Appends an SDES packet with one chunk describing `ssrc` (values up to 255 bytes).
    pub fn sdes(&mut self, ssrc: u32, items: &[SdesItem<'_>]) -> Result<()> {
        self.sdes_chunks(&[(ssrc, items)])
    }

    /// Appends an SDES packet with one chunk per source (up to 31).
    pub fn sdes_chunks(&mut self, chunks: &[(u32, &[SdesItem<'_>])]) -> Result<()> {
        let count = Self::check_count("SDES chunks", chunks.len())?;
        for item in chunks.iter().flat_map(|(_, items)| items.iter()) {
            if item.kind == 0 {
                // Type 0 is END: writing it as an item would cut the chunk short.
                return Err(RtpError::ValueOutOfRange {
                    field: "SDES item type",
                    value: 0,
                    max: 255,
                });
            }
            if item.value.len() > 255 {
                return Err(RtpError::ValueOutOfRange {
                    field: "SDES item length",
                    value: item.value.len() as u64,
                    max: 255,
                });
            }
        }
        let start = self.begin(count, Sdes::PACKET_TYPE);
        for (ssrc, items) in chunks {
            self.out.extend_from_slice(&ssrc.to_be_bytes());
            for item in *items {
                self.out
                    .extend_from_slice(&[item.kind, item.value.len() as u8]);
                self.out.extend_from_slice(item.value);
            }
            // END item, then zeros to the chunk's 32-bit boundary.
            self.out.push(0);
            while (self.out.len() - start) % 4 != 0 {
                self.out.push(0);
            }
        }
        self.finish(start)
    }

    /// Appends a BYE for up to 31 sources, with an optional reason (up to 255 bytes).
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<()> {
        let count = Self::check_count("BYE sources", ssrcs.len())?;
        if let Some(reason) = reason
            && reason.len() > 255
        {
            return Err(RtpError::ValueOutOfRange {
                field: "BYE reason length",
                value: reason.len() as u64,
                max: 255,
            });
        }
        let start = self.begin(count, Bye::PACKET_TYPE);
        for ssrc in ssrcs {
            self.out.extend_from_slice(&ssrc.to_be_bytes());
        }
        if let Some(reason) = reason {
            self.out.push(reason.len() as u8);
            self.out.extend_from_slice(reason);
        }
        self.finish(start)
    }

    /// Appends a generic NACK for `lost` sequence numbers, packed into (PID, BLP) entries.
    /// Each entry covers a PID and the 16 numbers after it; `lost` is best given in
    /// increasing (wrapping) order so entries share bitmasks.
    pub fn nack(&mut self, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) -> Result<()> {
        let start = self.begin(FMT_NACK, RTPFB);
        self.out.extend_from_slice(&sender_ssrc.to_be_bytes());
        self.out.extend_from_slice(&media_ssrc.to_be_bytes());
        let mut entry: Option<(u16, u16)> = None;
        for &seq in lost {
            if let Some((pid, blp)) = &mut entry {
                let offset = seq.wrapping_sub(*pid);
                if (1..=16).contains(&offset) {
                    *blp |= 1 << (offset - 1);
                    continue;
                }
                if offset == 0 {
                    continue;
                }
                self.out.extend_from_slice(&pid.to_be_bytes());
                self.out.extend_from_slice(&blp.to_be_bytes());
            }
            entry = Some((seq, 0));
        }
        if let Some((pid, blp)) = entry {
            self.out.extend_from_slice(&pid.to_be_bytes());
            self.out.extend_from_slice(&blp.to_be_bytes());
        }
        self.finish(start)
    }

    /// Appends a picture loss indication.
    pub fn pli(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Result<()> {
        let start = self.begin(FMT_PLI, PSFB);
        self.out.extend_from_slice(&sender_ssrc.to_be_bytes());
        self.out.extend_from_slice(&media_ssrc.to_be_bytes());
        self.finish(start)
    }

    /// Appends a full intra request.
    pub fn fir(&mut self, sender_ssrc: u32, entries: &[FirEntry]) -> Result<()> {
        let start = self.begin(FMT_FIR, PSFB);
        self.out.extend_from_slice(&sender_ssrc.to_be_bytes());
        // RFC 5104 §4.3.1.2: the media source field is unused and zero.
        self.out.extend_from_slice(&[0; 4]);
        for entry in entries {
            self.out.extend_from_slice(&entry.ssrc.to_be_bytes());
            self.out
                .extend_from_slice(&[entry.sequence_number, 0, 0, 0]);
        }
        self.finish(start)
    }

    /// Appends a REMB for up to 255 sources. The bitrate is rounded down to what an 18-bit
    /// mantissa and 6-bit exponent can hold.
    pub fn remb(&mut self, sender_ssrc: u32, bitrate_bps: u64, ssrcs: &[u32]) -> Result<()> {
        if ssrcs.len() > 255 {
            return Err(RtpError::ValueOutOfRange {
                field: "REMB sources",
                value: ssrcs.len() as u64,
                max: 255,
            });
        }
        let start = self.begin(FMT_AFB, PSFB);
        self.out.extend_from_slice(&sender_ssrc.to_be_bytes());
        self.out.extend_from_slice(&[0; 4]);
        self.out.extend_from_slice(&Remb::IDENTIFIER);
        let (exponent, mantissa) = Remb::encode_bitrate(bitrate_bps);
        self.out.extend_from_slice(&[
            ssrcs.len() as u8,
            (exponent << 2) | (mantissa >> 16) as u8,
            (mantissa >> 8) as u8,
            mantissa as u8,
        ]);
        for ssrc in ssrcs {
            self.out.extend_from_slice(&ssrc.to_be_bytes());
        }
        self.finish(start)
    }

    /// Appends transport-cc feedback; see [`TwccBuilder::write`].
    pub fn transport_cc(
        &mut self,
        builder: &mut TwccBuilder,
        sender_ssrc: u32,
        media_ssrc: u32,
        feedback_count: u8,
        packets: &[(u16, Option<i64>)],
    ) -> Result<()> {
        builder.write(self, sender_ssrc, media_ssrc, feedback_count, packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_are_typed() {
        assert!(matches!(
            RtcpCompound::parse(&[]),
            Err(RtpError::TooShort { .. })
        ));
        assert_eq!(
            RtcpCompound::parse(&[0x40, 201, 0, 0]),
            Err(RtpError::BadVersion { version: 1 })
        );
        assert!(RtcpCompound::parse(&[0x80, 201, 0, 1, 0, 0, 0, 0]).is_ok());
        assert_eq!(
            RtcpCompound::parse(&[0x80, 201, 0, 2, 0, 0, 0, 0]),
            Err(RtpError::RtcpLength {
                offset: 0,
                declared: 12,
                got: 8
            })
        );
        // Padded packet followed by another.
        assert_eq!(
            RtcpCompound::parse(&[0xA0, 201, 0, 1, 0, 0, 0, 4, 0x80, 201, 0, 0]),
            Err(RtpError::RtcpPaddingNotLast { offset: 0 })
        );
        assert_eq!(
            RtcpCompound::parse(&[0xA0, 201, 0, 1, 0, 0, 0, 9]),
            Err(RtpError::BadPadding {
                padding: 9,
                available: 4
            })
        );
        // Second packet's version checked too.
        assert_eq!(
            RtcpCompound::parse(&[0x80, 201, 0, 0, 0x00, 201, 0, 0]),
            Err(RtpError::BadVersion { version: 0 })
        );
    }

    #[test]
    fn reduced_size_single_feedback_is_accepted() {
        let mut buf = Vec::new();
        RtcpWriter::new(&mut buf).pli(1, 2).unwrap();
        let compound = RtcpCompound::parse(&buf).unwrap();
        let packets: Vec<_> = compound.packets().collect::<Result<_>>().unwrap();
        assert_eq!(
            packets,
            [RtcpPacket::Pli(Pli {
                sender_ssrc: 1,
                media_ssrc: 2
            })]
        );
    }

    #[test]
    fn sdes_with_several_chunks() {
        let mut buf = Vec::new();
        let mut w = RtcpWriter::new(&mut buf);
        let a = [SdesItem::new(SdesItem::CNAME, b"a")];
        let b = [
            SdesItem::new(SdesItem::CNAME, b"bb"),
            SdesItem::new(SdesItem::TOOL, b"tincan"),
        ];
        w.sdes_chunks(&[(1, &a), (2, &b)]).unwrap();
        assert!(w.sdes(3, &[SdesItem::new(0, b"")]).is_err());
        let compound = RtcpCompound::parse(&buf).unwrap();
        let Some(Ok(RtcpPacket::Sdes(sdes))) = compound.packets().next() else {
            panic!("expected SDES");
        };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].cname(), Some(&b"a"[..]));
        assert_eq!(chunks[1].ssrc, 2);
        assert_eq!(
            chunks[1].items().nth(1),
            Some(SdesItem::new(SdesItem::TOOL, b"tincan"))
        );
    }

    #[test]
    fn nack_writer_packs_bitmasks() {
        let mut buf = Vec::new();
        let mut w = RtcpWriter::new(&mut buf);
        w.nack(1, 2, &[65_535, 0, 2, 15, 16, 40]).unwrap();
        let compound = RtcpCompound::parse(&buf).unwrap();
        let Some(Ok(RtcpPacket::Nack(nack))) = compound.packets().next() else {
            panic!("expected NACK");
        };
        assert_eq!(nack.pairs().count(), 3);
        assert_eq!(nack.lost().collect::<Vec<_>>(), [65_535, 0, 2, 15, 16, 40]);
    }
}
