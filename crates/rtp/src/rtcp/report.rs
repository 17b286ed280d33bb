//! Sender and receiver reports (RFC 3550 §6.4), report blocks, NTP time and RTT.

use crate::error::{Result, RtpError};
use std::time::Duration;

pub(crate) fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low.
///
/// tincan is sans-IO, so this is built from a time the caller read from its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ntp64(pub u64);

impl Ntp64 {
    /// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
    pub const UNIX_EPOCH_OFFSET_SECS: u64 = 2_208_988_800;

    /// From whole seconds and a 2^-32 s fraction.
    pub fn new(seconds: u32, fraction: u32) -> Self {
        Self((u64::from(seconds) << 32) | u64::from(fraction))
    }

    /// From time since the NTP epoch (wraps in 2036, as the field does).
    pub fn from_duration(since_1900: Duration) -> Self {
        let fraction = (u64::from(since_1900.subsec_nanos()) << 32) / 1_000_000_000;
        Self((since_1900.as_secs() << 32) | fraction)
    }

    /// From time since the Unix epoch.
    pub fn from_unix(since_1970: Duration) -> Self {
        Self::from_duration(since_1970 + Duration::from_secs(Self::UNIX_EPOCH_OFFSET_SECS))
    }

    /// Time since the NTP epoch (fraction rounded down to the nanosecond).
    pub fn to_duration(self) -> Duration {
        let nanos = ((self.0 & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
        Duration::new(self.0 >> 32, nanos as u32)
    }

    /// Whole seconds.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The 2^-32 s fraction.
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// The middle 32 bits (16.16 fixed point seconds): the "compact" NTP form used by LSR
    /// and DLSR.
    pub fn middle32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// Round-trip time from a report block (RFC 3550 §6.4.1): `arrival - LSR - DLSR`, all in
/// 1/65536 s, where `arrival_middle32` is [`Ntp64::middle32`] of when the report
/// arrived.
///
/// `None` when no sender report had been received (LSR 0) or the result would be
/// negative (clock trouble or a corrupted block). Wrap-around of the 16.16 field (every
/// 18 hours) is handled by wrapping subtraction.
pub fn rtt_from_report_block(lsr: u32, dlsr: u32, arrival_middle32: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let since_sr = arrival_middle32.wrapping_sub(lsr);
    // A `since_sr` past half the range means the arrival is before the SR was sent.
    if since_sr > u32::MAX / 2 || dlsr > since_sr {
        return None;
    }
    let units = u64::from(since_sr - dlsr);
    Some(Duration::from_nanos((units * 1_000_000_000) >> 16))
}

/// The sender information of a sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wallclock time when the report was sent.
    pub ntp: Ntp64,
    /// The same instant in the stream's RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload bytes sent.
    pub octet_count: u32,
}

impl SenderInfo {
    pub(crate) const LEN: usize = 20;

    fn parse(data: &[u8]) -> Self {
        Self {
            ntp: Ntp64((u64::from(be32(data, 0)) << 32) | u64::from(be32(data, 4))),
            rtp_timestamp: be32(data, 8),
            packet_count: be32(data, 12),
            octet_count: be32(data, 16),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ntp.0.to_be_bytes());
        out.extend_from_slice(&self.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.octet_count.to_be_bytes());
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; clamped when written).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received (0 if none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Bytes in a report block.
    pub const LEN: usize = 24;
    const LOST_MAX: i32 = (1 << 23) - 1;
    const LOST_MIN: i32 = -(1 << 23);

    fn parse(data: &[u8]) -> Self {
        let lost = be32(data, 4);
        Self {
            ssrc: be32(data, 0),
            fraction_lost: (lost >> 24) as u8,
            // Sign-extend the 24-bit field.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            highest_sequence: be32(data, 8),
            jitter: be32(data, 12),
            last_sr: be32(data, 16),
            delay_since_last_sr: be32(data, 20),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let lost = self.cumulative_lost.clamp(Self::LOST_MIN, Self::LOST_MAX) as u32 & 0xFF_FFFF;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&self.highest_sequence.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }

    /// Round-trip time measured with this block, given when it arrived.
    pub fn rtt(&self, arrival: Ntp64) -> Option<Duration> {
        rtt_from_report_block(self.last_sr, self.delay_since_last_sr, arrival.middle32())
    }
}

/// Iterator over report blocks in a packet body.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.data.split_at_checked(ReportBlock::LEN)?;
        self.data = rest;
        Some(ReportBlock::parse(block))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() / ReportBlock::LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

fn blocks<'a>(packet_type: u8, count: u8, body: &'a [u8], at: usize) -> Result<ReportBlocks<'a>> {
    let end = at + ReportBlock::LEN * usize::from(count);
    match body.get(at..end) {
        Some(data) => Ok(ReportBlocks { data }),
        None => Err(RtpError::RtcpCount {
            packet_type,
            count,
            len: body.len(),
        }),
    }
}

/// A sender report (packet type 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// What and when the sender sent.
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// RTCP packet type of a sender report.
    pub const PACKET_TYPE: u8 = 200;

    pub(crate) fn parse(count: u8, body: &'a [u8]) -> Result<Self> {
        let blocks = blocks(Self::PACKET_TYPE, count, body, 4 + SenderInfo::LEN)?;
        Ok(Self {
            ssrc: be32(body, 0),
            info: SenderInfo::parse(&body[4..]),
            blocks: blocks.data,
        })
    }

    /// The report blocks (profile-specific extensions after them are ignored).
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { data: self.blocks }
    }
}

/// A receiver report (packet type 201).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The reporter's SSRC.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// RTCP packet type of a receiver report.
    pub const PACKET_TYPE: u8 = 201;

    pub(crate) fn parse(count: u8, body: &'a [u8]) -> Result<Self> {
        let blocks = blocks(Self::PACKET_TYPE, count, body, 4)?;
        Ok(Self {
            ssrc: be32(body, 0),
            blocks: blocks.data,
        })
    }

    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { data: self.blocks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rtt_follows_rfc_3550_example() {
        // RFC 3550 §6.4.1: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
        // DLSR = 0x0005:4000 (5.250 s) gives 6.125 s.
        let rtt = rtt_from_report_block(0xB705_2000, 0x0005_4000, 0xB710_8000).unwrap();
        assert_eq!(rtt, Duration::from_millis(6_125));
        assert_eq!(rtt_from_report_block(0, 0, 5), None);
        assert_eq!(rtt_from_report_block(100, 50, 120), None);
        // Across the 16.16 wrap.
        assert_eq!(
            rtt_from_report_block(u32::MAX - 0xFFFF, 0, 0x1_0000),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn ntp_fields_and_conversions() {
        let ntp = Ntp64::new(0x1234_5678, 0x8000_0000);
        assert_eq!(ntp.seconds(), 0x1234_5678);
        assert_eq!(ntp.fraction(), 0x8000_0000);
        assert_eq!(ntp.middle32(), 0x5678_8000);
        assert_eq!(
            Ntp64::from_duration(Duration::from_millis(1_500)),
            Ntp64::new(1, 0x8000_0000)
        );
        assert_eq!(
            Ntp64::new(3, 0x4000_0000).to_duration(),
            Duration::from_millis(3_250)
        );
        assert_eq!(
            Ntp64::from_unix(Duration::ZERO).seconds() as u64,
            Ntp64::UNIX_EPOCH_OFFSET_SECS
        );
    }

    proptest! {
        #[test]
        fn report_block_round_trips(ssrc: u32, fraction_lost: u8, lost in -(1i32 << 23)..(1 << 23),
                                    highest_sequence: u32, jitter: u32, last_sr: u32, delay_since_last_sr: u32) {
            let block = ReportBlock { ssrc, fraction_lost, cumulative_lost: lost, highest_sequence, jitter, last_sr, delay_since_last_sr };
            let mut out = Vec::new();
            block.write(&mut out);
            prop_assert_eq!(ReportBlock::parse(&out), block);
        }

        #[test]
        fn rtt_is_exact_for_consistent_reports(lsr in 1u32.., dlsr in 0u32..1 << 20, rtt in 0u32..1 << 20) {
            let arrival = lsr.wrapping_add(dlsr).wrapping_add(rtt);
            let got = rtt_from_report_block(lsr, dlsr, arrival).unwrap();
            prop_assert_eq!(got, Duration::from_nanos((u64::from(rtt) * 1_000_000_000) >> 16));
        }
    }
}
