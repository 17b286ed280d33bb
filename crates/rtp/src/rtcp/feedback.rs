//! RTP and payload-specific feedback (RFC 4585): generic NACK, PLI, FIR (RFC 5104) and
//! REMB (draft-alvestrand-rmcat-remb).

use super::report::be32;
use crate::error::{Result, RtpError};

/// Packet type of transport-layer feedback (RTPFB).
pub const RTPFB: u8 = 205;
/// Packet type of payload-specific feedback (PSFB).
pub const PSFB: u8 = 206;
/// RTPFB format of generic NACK.
pub const FMT_NACK: u8 = 1;
/// RTPFB format of transport-wide congestion control feedback.
pub const FMT_TWCC: u8 = 15;
/// PSFB format of PLI.
pub const FMT_PLI: u8 = 1;
/// PSFB format of FIR.
pub const FMT_FIR: u8 = 4;
/// PSFB format of application-layer feedback (REMB rides on it).
pub const FMT_AFB: u8 = 15;

/// Sender and media SSRCs of a feedback packet, and its FCI.
pub(crate) fn split(packet_type: u8, fmt: u8, body: &[u8]) -> Result<(u32, u32, &[u8])> {
    if body.len() < 8 {
        return Err(RtpError::RtcpCount {
            packet_type,
            count: fmt,
            len: body.len(),
        });
    }
    Ok((be32(body, 0), be32(body, 4), &body[8..]))
}

/// Generic NACK: sequence numbers the receiver is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The media source whose packets are missing.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, media_ssrc, fci) = split(RTPFB, FMT_NACK, body)?;
        // Trailing bytes short of a whole entry are ignored by `pairs`.
        Ok(Self {
            sender_ssrc,
            media_ssrc,
            fci,
        })
    }

    /// The raw (PID, BLP) entries.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.fci.chunks_exact(4).map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u16::from_be_bytes([c[2], c[3]]),
            )
        })
    }

    /// Every missing sequence number, in entry order.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs().flat_map(|(pid, blp)| {
            std::iter::once(pid).chain(
                (0..16u16)
                    .filter(move |bit| blp & (1 << bit) != 0)
                    .map(move |bit| pid.wrapping_add(bit + 1)),
            )
        })
    }
}

/// Picture loss indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The media source that needs a key frame.
    pub media_ssrc: u32,
}

impl Pli {
    pub(crate) fn parse(body: &[u8]) -> Result<Self> {
        let (sender_ssrc, media_ssrc, _) = split(PSFB, FMT_PLI, body)?;
        Ok(Self {
            sender_ssrc,
            media_ssrc,
        })
    }
}

/// One FIR request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirEntry {
    /// The media source asked for a key frame.
    pub ssrc: u32,
    /// Command sequence number (repeats mean retransmissions of one request).
    pub sequence_number: u8,
}

/// Full intra request (RFC 5104 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, _, fci) = split(PSFB, FMT_FIR, body)?;
        Ok(Self { sender_ssrc, fci })
    }

    /// The requests.
    pub fn entries(&self) -> impl Iterator<Item = FirEntry> + 'a {
        self.fci.chunks_exact(8).map(|c| FirEntry {
            ssrc: be32(c, 0),
            sequence_number: c[4],
        })
    }
}

/// Receiver estimated maximum bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The estimate in bits per second (saturated at `u64::MAX`).
    pub bitrate_bps: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// The identifier at the start of a REMB FCI.
    pub const IDENTIFIER: [u8; 4] = *b"REMB";

    /// Parses an AFB body; `Ok(None)` when it is some other application feedback.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Option<Self>> {
        let (sender_ssrc, _, fci) = split(PSFB, FMT_AFB, body)?;
        if fci.get(..4) != Some(&Self::IDENTIFIER[..]) {
            return Ok(None);
        }
        if fci.len() < 8 {
            return Err(RtpError::TooShort {
                needed: 16,
                got: body.len(),
            });
        }
        let count = usize::from(fci[4]);
        let exponent = u32::from(fci[5] >> 2);
        let mantissa = (u64::from(fci[5] & 3) << 16) | (u64::from(fci[6]) << 8) | u64::from(fci[7]);
        let bitrate_bps = if mantissa == 0 {
            0
        } else if exponent > mantissa.leading_zeros() {
            u64::MAX
        } else {
            mantissa << exponent
        };
        let Some(ssrcs) = fci.get(8..8 + 4 * count) else {
            return Err(RtpError::TooShort {
                needed: 16 + 4 * count,
                got: body.len(),
            });
        };
        Ok(Some(Self {
            sender_ssrc,
            bitrate_bps,
            ssrcs,
        }))
    }

    /// The media sources the estimate applies to.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }

    /// Splits `bitrate_bps` into the 6-bit exponent and 18-bit mantissa, rounding down.
    pub(crate) fn encode_bitrate(bitrate_bps: u64) -> (u8, u32) {
        let bits = 64 - bitrate_bps.leading_zeros();
        let exponent = bits.saturating_sub(18);
        (exponent as u8, (bitrate_bps >> exponent) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_expands_bitmasks() {
        let body = [0, 0, 0, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0b1000_0000, 0b0000_0101];
        let nack = Nack::parse(&body).unwrap();
        assert_eq!(nack.media_ssrc, 2);
        assert_eq!(nack.lost().collect::<Vec<_>>(), [65_535, 0, 2, 15]);
    }

    #[test]
    fn remb_bitrate_encoding() {
        assert_eq!(Remb::encode_bitrate(0), (0, 0));
        assert_eq!(Remb::encode_bitrate(1_000), (0, 1_000));
        let (exp, mantissa) = Remb::encode_bitrate(2_500_000);
        assert!(mantissa < 1 << 18);
        assert!((2_500_000 - (u64::from(mantissa) << exp)) < 1 << exp);
        let body = [
            0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 1, 0xFF, 0xFF, 0xFF, 0, 0, 0, 9,
        ];
        let remb = Remb::parse(&body).unwrap().unwrap();
        assert_eq!(remb.bitrate_bps, u64::MAX);
        assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [9]);
        assert!(Remb::parse(&body[..18]).is_err());
        assert_eq!(Remb::parse(&[0; 12]).unwrap(), None);
    }
}
