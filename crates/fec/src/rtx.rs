//! Retransmission (RFC 4588): the sender's bounded history and the RTX payload format.
//!
//! A retransmitted packet travels on its own SSRC and payload type, with its own sequence
//! numbers; its payload is the original sequence number (2 bytes) followed by the original
//! payload. Header fields the receiver needs (timestamp, marker, CSRCs, header extensions)
//! are copied from the original.
//!
//! [`RtxSender`] keeps copies of recently sent media packets (storage allocated up front)
//! and answers NACKs. Storms are avoided three ways: a packet is resent at most once per
//! round-trip time (a NACK repeated before the first retransmission could have arrived is
//! ignored), packets older than `max_age` are not resent (the receiver has given up on them),
//! and retransmissions draw on a byte budget that refills at `max_bitrate`.
//! [`RtxReceiver`] turns RTX packets back into the original media packets.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_fec::rtx::{RtxConfig, RtxReceiver, RtxSender};
//! use tincan_rtp::RtpPacketBuilder;
//!
//! let config = RtxConfig::new(0x1111, 96, 0x2222, 97);
//! let mut sender = RtxSender::new(config.clone()).expect("valid");
//! let now = Instant::now();
//! let mut packet = Vec::new();
//! RtpPacketBuilder::new(96, 7, 9000, 0x1111).payload(b"frame").write_vec(&mut packet).unwrap();
//! sender.on_sent(&packet, now);
//!
//! // The receiver lost it and NACKs sequence number 7.
//! sender.handle_nack(&[7], Duration::from_millis(50), now + Duration::from_millis(60));
//! let mut rtx = [0u8; 1500];
//! let len = sender.poll_transmit(&mut rtx).expect("one retransmission");
//!
//! let mut receiver = RtxReceiver::new(config);
//! let mut restored = Vec::new();
//! assert_eq!(receiver.unwrap(&rtx[..len], &mut restored), Ok(7));
//! assert_eq!(restored, packet);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use thiserror::Error;
use tincan_rtp::RtpPacket;

/// Largest packet the history stores; larger ones are counted and not kept.
pub const MAX_PACKET_LEN: usize = 1500;
/// Length of the original-sequence-number field of an RTX payload.
pub const OSN_LEN: usize = 2;

/// What went wrong with an RTX packet or configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RtxError {
    /// The packet is not valid RTP.
    #[error("not an RTP packet: {reason}")]
    Rtp {
        /// The parser's complaint.
        reason: String,
    },
    /// The RTX payload is shorter than its original sequence number.
    #[error("RTX payload of {len} bytes has no original sequence number")]
    MissingOsn {
        /// Payload length.
        len: usize,
    },
    /// The packet is on another SSRC or payload type than the configured RTX stream.
    #[error("packet SSRC {ssrc:#x} / payload type {payload_type} is not the RTX stream")]
    NotRtx {
        /// Its SSRC.
        ssrc: u32,
        /// Its payload type.
        payload_type: u8,
    },
    /// The output buffer cannot hold the packet.
    #[error("output of {got} bytes, needs {needed}")]
    OutputTooSmall {
        /// Bytes available.
        got: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid RTX configuration: {field} ({reason})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
}

/// The RTX stream of one media stream, and the sender's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RtxConfig {
    /// SSRC of the media stream.
    pub media_ssrc: u32,
    /// Payload type of the media stream.
    pub media_payload_type: u8,
    /// SSRC of the RTX stream.
    pub rtx_ssrc: u32,
    /// Payload type of the RTX stream (`apt` = the media payload type in SDP).
    pub rtx_payload_type: u8,
    /// Packets the history holds. Default 1024 (about 3 s of 2.5 Mbps video).
    pub history_packets: usize,
    /// Packets older than this are not resent. Default 1 s.
    pub max_age: Duration,
    /// Retransmission budget, bits per second (bursts up to 100 ms of it). Default 1 Mbps.
    pub max_bitrate: u64,
    /// Retransmissions waiting for [`RtxSender::poll_transmit`]; beyond, NACKed packets are
    /// dropped and counted. Default 256.
    pub max_pending: usize,
}

impl RtxConfig {
    /// Defaults for the given streams.
    pub fn new(
        media_ssrc: u32,
        media_payload_type: u8,
        rtx_ssrc: u32,
        rtx_payload_type: u8,
    ) -> Self {
        Self {
            media_ssrc,
            media_payload_type,
            rtx_ssrc,
            rtx_payload_type,
            history_packets: 1024,
            max_age: Duration::from_secs(1),
            max_bitrate: 1_000_000,
            max_pending: 256,
        }
    }
}

/// Sender counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtxSenderStats {
    /// Media packets stored.
    pub stored: u64,
    /// Media packets not stored: unparseable, another stream, or larger than
    /// [`MAX_PACKET_LEN`].
    pub not_stored: u64,
    /// Sequence numbers NACKed.
    pub nacked: u64,
    /// Retransmissions sent.
    pub retransmitted: u64,
    /// Bytes retransmitted (RTX packets).
    pub retransmitted_bytes: u64,
    /// NACKed packets no longer (or never) in the history.
    pub not_found: u64,
    /// NACKed packets older than `max_age`.
    pub too_old: u64,
    /// NACKs ignored because the packet was resent less than an RTT ago.
    pub too_soon: u64,
    /// NACKed packets dropped for want of budget or queue space.
    pub over_budget: u64,
}

/// One stored packet.
#[derive(Debug, Clone)]
struct Slot {
    sequence: Option<u16>,
    sent_at: Option<Instant>,
    resent_at: Option<Instant>,
    data: Vec<u8>,
}

/// The sender side: history of sent packets, NACK handling, RTX packets out.
#[derive(Debug)]
pub struct RtxSender {
    config: RtxConfig,
    slots: Vec<Slot>,
    pending: VecDeque<u16>,
    rtx_sequence: u16,
    /// Bytes of budget available, and when it was last refilled.
    budget: f64,
    refilled: Option<Instant>,
    stats: RtxSenderStats,
}

impl RtxSender {
    /// A sender with its history allocated.
    ///
    /// # Errors
    ///
    /// [`RtxError::InvalidConfig`] for a history or queue of 0 or more than 65 536 packets,
    /// or payload types above 127.
    pub fn new(config: RtxConfig) -> Result<Self, RtxError> {
        if !(1..=65_536).contains(&config.history_packets) {
            return Err(RtxError::InvalidConfig {
                field: "history_packets",
                reason: "1 to 65536",
            });
        }
        if !(1..=65_536).contains(&config.max_pending) {
            return Err(RtxError::InvalidConfig {
                field: "max_pending",
                reason: "1 to 65536",
            });
        }
        if config.media_payload_type > 127 || config.rtx_payload_type > 127 {
            return Err(RtxError::InvalidConfig {
                field: "payload type",
                reason: "0 to 127",
            });
        }
        let slots = (0..config.history_packets)
            .map(|_| Slot {
                sequence: None,
                sent_at: None,
                resent_at: None,
                data: Vec::with_capacity(MAX_PACKET_LEN),
            })
            .collect();
        Ok(Self {
            pending: VecDeque::with_capacity(config.max_pending),
            slots,
            rtx_sequence: 0,
            budget: 0.0,
            refilled: None,
            stats: RtxSenderStats::default(),
            config,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &RtxSenderStats {
        &self.stats
    }

    /// Retransmissions waiting to be sent.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Remembers a media packet just sent (the whole RTP packet).
    pub fn on_sent(&mut self, packet: &[u8], now: Instant) {
        let Ok(parsed) = RtpPacket::parse(packet) else {
            self.stats.not_stored += 1;
            return;
        };
        if parsed.ssrc() != self.config.media_ssrc || packet.len() > MAX_PACKET_LEN {
            self.stats.not_stored += 1;
            return;
        }
        let sequence = parsed.sequence_number().0;
        let index = usize::from(sequence) % self.slots.len();
        let slot = &mut self.slots[index];
        slot.sequence = Some(sequence);
        slot.sent_at = Some(now);
        slot.resent_at = None;
        slot.data.clear();
        slot.data.extend_from_slice(packet);
        self.stats.stored += 1;
    }

    /// Queues retransmissions for the NACKed sequence numbers, skipping those sent more
    /// than `max_age` ago, resent less than `rtt` ago, or beyond the budget.
    pub fn handle_nack(&mut self, sequences: &[u16], rtt: Duration, now: Instant) {
        self.refill(now);
        for &sequence in sequences {
            self.stats.nacked += 1;
            let index = usize::from(sequence) % self.slots.len();
            let slot = &mut self.slots[index];
            let Some(sent_at) = slot.sent_at.filter(|_| slot.sequence == Some(sequence)) else {
                self.stats.not_found += 1;
                continue;
            };
            if now.saturating_duration_since(sent_at) > self.config.max_age {
                self.stats.too_old += 1;
                continue;
            }
            if slot
                .resent_at
                .is_some_and(|at| now.saturating_duration_since(at) < rtt)
            {
                self.stats.too_soon += 1;
                continue;
            }
            let cost = (slot.data.len() + OSN_LEN) as f64;
            if cost > self.budget || self.pending.len() >= self.config.max_pending {
                self.stats.over_budget += 1;
                continue;
            }
            self.budget -= cost;
            slot.resent_at = Some(now);
            self.pending.push_back(sequence);
        }
    }

    /// Takes the next RTX sequence number for a packet the sender builds itself (padding
    /// for a bandwidth probe, RFC 4588 section 4): the stream's numbers stay in one
    /// sequence.
    pub fn take_sequence(&mut self) -> u16 {
        let sequence = self.rtx_sequence;
        self.rtx_sequence = self.rtx_sequence.wrapping_add(1);
        sequence
    }

    /// Writes the next retransmission into `out`; returns its length, or `None` when
    /// nothing is pending. A retransmission whose packet has since left the history is
    /// skipped.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        while let Some(sequence) = self.pending.pop_front() {
            let slot = &self.slots[usize::from(sequence) % self.slots.len()];
            if slot.sequence != Some(sequence) {
                continue;
            }
            let rtx_sequence = self.rtx_sequence;
            match wrap(
                &slot.data,
                self.config.rtx_ssrc,
                self.config.rtx_payload_type,
                rtx_sequence,
                out,
            ) {
                Ok(len) => {
                    self.rtx_sequence = self.rtx_sequence.wrapping_add(1);
                    self.stats.retransmitted += 1;
                    self.stats.retransmitted_bytes += len as u64;
                    return Some(len);
                }
                Err(_) => self.stats.over_budget += 1,
            }
        }
        None
    }

    fn refill(&mut self, now: Instant) {
        let rate = self.config.max_bitrate as f64 / 8.0;
        // Bursts of up to 100 ms of the budget, and at least one full packet.
        let cap = (rate / 10.0).max((MAX_PACKET_LEN + OSN_LEN) as f64);
        // The budget starts full.
        let refill = self.refilled.map_or(cap, |at| {
            rate * now.saturating_duration_since(at).as_secs_f64()
        });
        self.budget = (self.budget + refill).min(cap);
        self.refilled = Some(self.refilled.map_or(now, |at| at.max(now)));
    }
}

/// Writes the RTX packet for `original` into `out`: its header with the RTX SSRC, payload
/// type and sequence number and without padding, then the original sequence number and
/// payload. Returns its length.
///
/// # Errors
///
/// An unparseable original, or an output too small.
pub fn wrap(
    original: &[u8],
    rtx_ssrc: u32,
    rtx_payload_type: u8,
    rtx_sequence: u16,
    out: &mut [u8],
) -> Result<usize, RtxError> {
    let packet = RtpPacket::parse(original).map_err(|e| RtxError::Rtp {
        reason: e.to_string(),
    })?;
    let header = packet.header_len();
    let payload = packet.payload();
    let len = header + OSN_LEN + payload.len();
    if out.len() < len {
        return Err(RtxError::OutputTooSmall {
            got: out.len(),
            needed: len,
        });
    }
    out[..header].copy_from_slice(&original[..header]);
    out[0] &= !0x20; // no padding
    out[1] = (out[1] & 0x80) | (rtx_payload_type & 0x7F);
    out[2..4].copy_from_slice(&rtx_sequence.to_be_bytes());
    out[8..12].copy_from_slice(&rtx_ssrc.to_be_bytes());
    out[header..header + OSN_LEN].copy_from_slice(&packet.sequence_number().0.to_be_bytes());
    out[header + OSN_LEN..len].copy_from_slice(payload);
    Ok(len)
}

/// Receiver counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtxReceiverStats {
    /// RTX packets turned back into media packets.
    pub restored: u64,
    /// Packets refused (not RTX, malformed).
    pub refused: u64,
}

/// The receiver side: RTX packets back to the original media packets.
#[derive(Debug, Clone)]
pub struct RtxReceiver {
    config: RtxConfig,
    stats: RtxReceiverStats,
}

impl RtxReceiver {
    /// A receiver for the configured streams (only the SSRCs and payload types are used).
    pub fn new(config: RtxConfig) -> Self {
        Self {
            config,
            stats: RtxReceiverStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &RtxReceiverStats {
        &self.stats
    }

    /// Whether `packet` belongs to the RTX stream (by SSRC).
    pub fn is_rtx(&self, packet: &[u8]) -> bool {
        RtpPacket::parse(packet).is_ok_and(|p| p.ssrc() == self.config.rtx_ssrc)
    }

    /// Restores the original media packet of an RTX packet into `out` (cleared first);
    /// returns the original sequence number.
    ///
    /// # Errors
    ///
    /// Not RTP, not this RTX stream, or no original sequence number.
    pub fn unwrap(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<u16, RtxError> {
        let result = self.restore(packet, out);
        match result {
            Ok(_) => self.stats.restored += 1,
            Err(_) => self.stats.refused += 1,
        }
        result
    }

    fn restore(&self, packet: &[u8], out: &mut Vec<u8>) -> Result<u16, RtxError> {
        let parsed = RtpPacket::parse(packet).map_err(|e| RtxError::Rtp {
            reason: e.to_string(),
        })?;
        if parsed.ssrc() != self.config.rtx_ssrc
            || parsed.payload_type() != self.config.rtx_payload_type
        {
            return Err(RtxError::NotRtx {
                ssrc: parsed.ssrc(),
                payload_type: parsed.payload_type(),
            });
        }
        let payload = parsed.payload();
        let [high, low, original @ ..] = payload else {
            return Err(RtxError::MissingOsn { len: payload.len() });
        };
        let header = parsed.header_len();
        out.clear();
        out.extend_from_slice(&packet[..header]);
        out[0] &= !0x20;
        out[1] = (out[1] & 0x80) | (self.config.media_payload_type & 0x7F);
        out[2] = *high;
        out[3] = *low;
        out[8..12].copy_from_slice(&self.config.media_ssrc.to_be_bytes());
        out.extend_from_slice(original);
        Ok(u16::from_be_bytes([*high, *low]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_rtp::RtpPacketBuilder;
    use tincan_rtp::extension::Extension;

    fn media(sequence: u16, payload: &[u8]) -> Vec<u8> {
        let level = [0x85u8];
        let elements = [Extension::new(1, &level)];
        let mut out = Vec::new();
        RtpPacketBuilder::new(96, sequence, 90_000 + u32::from(sequence), 0xAAAA)
            .marker(sequence % 3 == 0)
            .csrcs(&[5, 6])
            .extensions(&elements)
            .payload(payload)
            .padding(if sequence % 2 == 0 { 4 } else { 0 })
            .write_vec(&mut out)
            .expect("valid");
        out
    }

    fn config() -> RtxConfig {
        RtxConfig {
            history_packets: 64,
            ..RtxConfig::new(0xAAAA, 96, 0xBBBB, 97)
        }
    }

    fn unpadded(packet: &[u8]) -> Vec<u8> {
        let p = RtpPacket::parse(packet).expect("valid");
        let mut out = packet[..p.header_len()].to_vec();
        out[0] &= !0x20;
        out.extend_from_slice(p.payload());
        out
    }

    #[test]
    fn wrap_and_unwrap_restore_the_packet_without_padding() {
        let mut receiver = RtxReceiver::new(config());
        for sequence in [0u16, 1, 65_535] {
            let original = media(sequence, b"some media payload");
            let mut rtx = [0u8; 1500];
            let len = wrap(&original, 0xBBBB, 97, 42, &mut rtx).expect("wrap");
            let parsed = RtpPacket::parse(&rtx[..len]).expect("valid RTX");
            assert_eq!(parsed.ssrc(), 0xBBBB);
            assert_eq!(parsed.payload_type(), 97);
            assert_eq!(parsed.sequence_number().0, 42);
            assert_eq!(&parsed.payload()[..2], &sequence.to_be_bytes());
            let mut restored = Vec::new();
            assert_eq!(receiver.unwrap(&rtx[..len], &mut restored), Ok(sequence));
            assert_eq!(restored, unpadded(&original));
        }
        assert_eq!(receiver.stats().restored, 3);
    }

    #[test]
    fn a_nack_is_answered_once_per_rtt() {
        let mut sender = RtxSender::new(config()).expect("valid");
        let t0 = Instant::now();
        for s in 0..10u16 {
            sender.on_sent(
                &media(s, &[s as u8; 100]),
                t0 + Duration::from_millis(u64::from(s)),
            );
        }
        let rtt = Duration::from_millis(80);
        let mut out = [0u8; 1500];
        sender.handle_nack(&[3, 4], rtt, t0 + Duration::from_millis(50));
        sender.handle_nack(&[3], rtt, t0 + Duration::from_millis(60)); // too soon
        let mut sent = 0;
        while sender.poll_transmit(&mut out).is_some() {
            sent += 1;
        }
        assert_eq!(sent, 2);
        assert_eq!(sender.stats().too_soon, 1);
        sender.handle_nack(&[3], rtt, t0 + Duration::from_millis(140));
        assert!(sender.poll_transmit(&mut out).is_some());
        assert_eq!(sender.stats().retransmitted, 3);
    }

    #[test]
    fn old_evicted_and_unknown_packets_are_not_resent() {
        let mut sender = RtxSender::new(config()).expect("valid");
        let t0 = Instant::now();
        for s in 0..100u16 {
            sender.on_sent(&media(s, &[1; 50]), t0);
        }
        // 0..36 were overwritten by 64..100 in a 64-slot history.
        sender.handle_nack(&[10, 200], Duration::ZERO, t0);
        assert_eq!(sender.stats().not_found, 2);
        sender.handle_nack(&[90], Duration::ZERO, t0 + Duration::from_secs(2));
        assert_eq!(sender.stats().too_old, 1);
        let mut out = [0u8; 1500];
        assert_eq!(sender.poll_transmit(&mut out), None);
    }

    #[test]
    fn the_budget_stops_a_storm() {
        let config = RtxConfig {
            max_bitrate: 80_000, // 10 kB/s, bursts of 1 kB (one packet at least)
            ..config()
        };
        let mut sender = RtxSender::new(config).expect("valid");
        let t0 = Instant::now();
        for s in 0..50u16 {
            sender.on_sent(&media(s, &[7; 1000]), t0);
        }
        let all: Vec<u16> = (0..50).collect();
        sender.handle_nack(&all, Duration::ZERO, t0 + Duration::from_millis(10));
        let mut out = [0u8; 1500];
        let mut sent = 0;
        while sender.poll_transmit(&mut out).is_some() {
            sent += 1;
        }
        assert_eq!(sent, 1, "{:?}", sender.stats());
        assert_eq!(sender.stats().over_budget, 49);
        // 0.9 s later 9 kB have refilled, but bursts are capped at 1.5 kB.
        sender.handle_nack(&all, Duration::ZERO, t0 + Duration::from_millis(910));
        let mut again = 0;
        while sender.poll_transmit(&mut out).is_some() {
            again += 1;
        }
        assert_eq!(again, 1);
    }

    #[test]
    fn bad_packets_are_errors() {
        let mut receiver = RtxReceiver::new(config());
        let mut out = Vec::new();
        assert!(matches!(
            receiver.unwrap(&[1, 2, 3], &mut out),
            Err(RtxError::Rtp { .. })
        ));
        let other = media(5, b"x");
        assert!(matches!(
            receiver.unwrap(&other, &mut out),
            Err(RtxError::NotRtx { .. })
        ));
        let mut empty = Vec::new();
        RtpPacketBuilder::new(97, 1, 1, 0xBBBB)
            .payload(&[9])
            .write_vec(&mut empty)
            .unwrap();
        assert_eq!(
            receiver.unwrap(&empty, &mut out),
            Err(RtxError::MissingOsn { len: 1 })
        );
        assert_eq!(receiver.stats().refused, 3);
        let mut small = [0u8; 10];
        assert!(matches!(
            wrap(&media(1, b"abc"), 1, 97, 1, &mut small),
            Err(RtxError::OutputTooSmall { .. })
        ));
        let mut sender = RtxSender::new(config()).expect("valid");
        sender.on_sent(&[0u8; 3], Instant::now());
        sender.on_sent(&vec![0x80u8; 2000], Instant::now());
        assert_eq!(sender.stats().not_stored, 2);
        assert!(
            RtxSender::new(RtxConfig {
                history_packets: 0,
                ..config()
            })
            .is_err()
        );
    }
}
