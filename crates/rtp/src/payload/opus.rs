//! Opus over RTP (RFC 7587).
//!
//! One RTP payload carries exactly one Opus packet, unchanged, so packetizing and
//! depacketizing are pass-throughs. Only minimal checks are made: tincan-rtp does not
//! depend on the codec, and a malformed Opus packet is the decoder's to reject (it does,
//! with a typed error). The checks are that a packet is not empty (RFC 6716 R1: packets
//! are at least one byte, the TOC) and not larger than [`MAX_PACKET_LEN`].
//!
//! [`OpusDepacketizer`] also counts packets lost in sequence gaps, which is what a
//! receiver needs to conceal or to use in-band FEC/DRED from the next packet.

use super::{PacketInfo, PayloadError};

/// Largest Opus packet accepted: 4000 bytes, the output buffer size libopus recommends
/// for one packet (`opus_encode`); nothing a real-time encoder emits is larger.
pub const MAX_PACKET_LEN: usize = 4000;

fn check(packet: &[u8]) -> Result<(), PayloadError> {
    if packet.is_empty() {
        return Err(PayloadError::Empty {
            what: "Opus packet",
        });
    }
    if packet.len() > MAX_PACKET_LEN {
        return Err(PayloadError::TooLarge {
            what: "Opus packet",
            len: packet.len(),
            max: MAX_PACKET_LEN,
        });
    }
    Ok(())
}

/// The RTP payload for one Opus packet: the packet itself, once checked.
pub fn packetize(packet: &[u8]) -> Result<&[u8], PayloadError> {
    check(packet)?;
    Ok(packet)
}

/// The Opus packet in one RTP payload: the payload itself, once checked.
pub fn depacketize(payload: &[u8]) -> Result<&[u8], PayloadError> {
    check(payload)?;
    Ok(payload)
}

/// An Opus packet taken out of an RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusPacket<'a> {
    /// The Opus packet.
    pub data: &'a [u8],
    /// RTP timestamp of the packet.
    pub timestamp: u32,
    /// Packets missing between the previous packet and this one: conceal (or recover with
    /// FEC/DRED from this packet) that many before decoding it.
    pub lost_before: u16,
}

/// Turns RTP payloads into Opus packets and counts the packets lost in between.
#[derive(Debug, Clone, Default)]
pub struct OpusDepacketizer {
    expected: Option<u16>,
    lost: u64,
}

impl OpusDepacketizer {
    /// A depacketizer that has seen no packet yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the Opus packet out of one payload. A packet older than the previous one
    /// (late or duplicate) is still returned, with `lost_before == 0`; ordering is the
    /// jitter buffer's job.
    pub fn push<'a>(
        &mut self,
        payload: &'a [u8],
        info: PacketInfo,
    ) -> Result<OpusPacket<'a>, PayloadError> {
        let data = depacketize(payload)?;
        let mut lost_before = 0;
        match self.expected {
            Some(expected) => {
                let ahead = info.sequence.wrapping_sub(expected);
                if ahead < 0x8000 {
                    lost_before = ahead;
                    self.expected = Some(info.sequence.wrapping_add(1));
                }
            }
            None => self.expected = Some(info.sequence.wrapping_add(1)),
        }
        self.lost += u64::from(lost_before);
        Ok(OpusPacket {
            data,
            timestamp: info.timestamp,
            lost_before,
        })
    }

    /// Packets lost in sequence gaps so far.
    pub fn lost_packets(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_and_oversize_are_rejected() {
        assert_eq!(
            packetize(&[]),
            Err(PayloadError::Empty {
                what: "Opus packet"
            })
        );
        let big = vec![0u8; MAX_PACKET_LEN + 1];
        assert!(matches!(
            depacketize(&big),
            Err(PayloadError::TooLarge { len: 4001, .. })
        ));
        assert_eq!(packetize(&[0x78, 1]).unwrap(), &[0x78, 1]);
    }

    #[test]
    fn depacketizer_reports_losses() {
        let mut d = OpusDepacketizer::new();
        let at = |sequence| PacketInfo {
            sequence,
            timestamp: 0,
            marker: false,
        };
        assert_eq!(d.push(&[1], at(65534)).unwrap().lost_before, 0);
        assert_eq!(d.push(&[1], at(65535)).unwrap().lost_before, 0);
        assert_eq!(d.push(&[1], at(2)).unwrap().lost_before, 2);
        assert_eq!(d.push(&[1], at(1)).unwrap().lost_before, 0);
        assert_eq!(d.push(&[1], at(3)).unwrap().lost_before, 0);
        assert_eq!(d.lost_packets(), 2);
        assert!(d.push(&[], at(4)).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(packet in proptest::collection::vec(any::<u8>(), 1..=MAX_PACKET_LEN)) {
            let payload = packetize(&packet).unwrap();
            prop_assert_eq!(depacketize(payload).unwrap(), &packet[..]);
        }
    }
}
