//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): which transport-wide
//! sequence numbers arrived, and when.
//!
//! Arrival times are in microseconds on the receiver's clock. On the wire they are a
//! 24-bit reference time in 64 ms units plus receive deltas in 250 µs units, so times
//! come back rounded to 250 µs and modulo 2^24 × 64 ms (about 12.4 days).

use super::feedback::{FMT_TWCC, RTPFB, split};
use super::{RtcpWriter, report::be32};
use crate::error::{Result, RtpError};

/// Microseconds per reference time unit.
pub const REFERENCE_TIME_UNIT_US: i64 = 64_000;
/// Microseconds per receive delta unit.
pub const DELTA_UNIT_US: i64 = 250;
const REFERENCE_TIME_MASK: i64 = (1 << 24) - 1;

/// Status symbols of the draft.
const NOT_RECEIVED: u8 = 0;
const SMALL_DELTA: u8 = 1;
const LARGE_DELTA: u8 = 2;
const RESERVED: u8 = 3;

const MAX_RUN: usize = (1 << 13) - 1;

/// Statuses a chunk can hold and the status at `index` of it.
fn chunk_capacity(chunk: u16) -> u16 {
    if chunk & 0x8000 == 0 {
        chunk & 0x1FFF
    } else if chunk & 0x4000 == 0 {
        14
    } else {
        7
    }
}

fn chunk_symbol(chunk: u16, index: u16) -> u8 {
    if chunk & 0x8000 == 0 {
        ((chunk >> 13) & 3) as u8
    } else if chunk & 0x4000 == 0 {
        ((chunk >> (13 - index)) & 1) as u8
    } else {
        ((chunk >> (12 - 2 * index)) & 3) as u8
    }
}

/// A parsed transport-cc feedback packet; its chunks and deltas are checked when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccFeedback<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The media source (unused by the draft, usually the first media SSRC).
    pub media_ssrc: u32,
    /// Transport-wide sequence number of the first packet described.
    pub base_sequence: u16,
    /// Number of packets described.
    pub status_count: u16,
    /// Reference time, 24 bits in 64 ms units.
    pub reference_time: u32,
    /// Counter of feedback packets sent, to detect lost feedback.
    pub feedback_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

impl<'a> TwccFeedback<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, media_ssrc, fci) = split(RTPFB, FMT_TWCC, body)?;
        if fci.len() < 8 {
            return Err(RtpError::TooShort {
                needed: 16,
                got: body.len(),
            });
        }
        let base_sequence = u16::from_be_bytes([fci[0], fci[1]]);
        let status_count = u16::from_be_bytes([fci[2], fci[3]]);
        let reference_time = be32(fci, 4) >> 8;
        let feedback_count = fci[7];
        let mut remaining = status_count;
        let mut at = 8;
        let mut delta_bytes = 0usize;
        while remaining > 0 {
            let Some(bytes) = fci.get(at..at + 2) else {
                return Err(RtpError::TooShort {
                    needed: 8 + at + 2,
                    got: body.len(),
                });
            };
            let chunk = u16::from_be_bytes([bytes[0], bytes[1]]);
            let n = chunk_capacity(chunk).min(remaining);
            let done = status_count - remaining;
            if chunk & 0x8000 == 0 {
                let symbol = chunk_symbol(chunk, 0);
                if symbol == RESERVED && n > 0 {
                    return Err(RtpError::TwccReservedStatus {
                        seq: base_sequence.wrapping_add(done),
                    });
                }
                delta_bytes += usize::from(n) * usize::from(symbol);
            } else {
                for index in 0..n {
                    match chunk_symbol(chunk, index) {
                        RESERVED => {
                            return Err(RtpError::TwccReservedStatus {
                                seq: base_sequence.wrapping_add(done + index),
                            });
                        }
                        // The symbol value is also the delta size in bytes.
                        symbol => delta_bytes += usize::from(symbol),
                    }
                }
            }
            remaining -= n;
            at += 2;
        }
        let Some(deltas) = fci.get(at..at + delta_bytes) else {
            return Err(RtpError::TooShort {
                needed: 8 + at + delta_bytes,
                got: body.len(),
            });
        };
        Ok(Self {
            sender_ssrc,
            media_ssrc,
            base_sequence,
            status_count,
            reference_time,
            feedback_count,
            chunks: &fci[8..at],
            deltas,
        })
    }

    /// Every packet described, in sequence order: its transport-wide sequence number and,
    /// if it arrived, its arrival time in µs (reference time plus deltas).
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            deltas: self.deltas,
            remaining: self.status_count,
            chunk: 0,
            chunk_left: 0,
            index: 0,
            seq: self.base_sequence,
            time_us: i64::from(self.reference_time) * REFERENCE_TIME_UNIT_US,
        }
    }
}

/// Iterator over the packets of a [`TwccFeedback`].
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    remaining: u16,
    chunk: u16,
    chunk_left: u16,
    index: u16,
    seq: u16,
    time_us: i64,
}

impl Iterator for TwccPackets<'_> {
    type Item = (u16, Option<i64>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        while self.chunk_left == 0 {
            let (bytes, rest) = self.chunks.split_at_checked(2)?;
            self.chunks = rest;
            self.chunk = u16::from_be_bytes([bytes[0], bytes[1]]);
            self.chunk_left = chunk_capacity(self.chunk).min(self.remaining);
            self.index = 0;
        }
        let symbol = chunk_symbol(self.chunk, self.index);
        self.index += 1;
        self.chunk_left -= 1;
        self.remaining -= 1;
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let ticks = match symbol {
            SMALL_DELTA => {
                let (&b, rest) = self.deltas.split_first()?;
                self.deltas = rest;
                i64::from(b)
            }
            LARGE_DELTA => {
                let (b, rest) = self.deltas.split_at_checked(2)?;
                self.deltas = rest;
                i64::from(i16::from_be_bytes([b[0], b[1]]))
            }
            _ => return Some((seq, None)),
        };
        self.time_us += ticks * DELTA_UNIT_US;
        Some((seq, Some(self.time_us)))
    }
}

/// Builds transport-cc feedback packets; keeps its scratch space between calls, so
/// building does not allocate once warmed up.
#[derive(Debug, Clone, Default)]
pub struct TwccBuilder {
    symbols: Vec<u8>,
    deltas: Vec<i16>,
}

impl TwccBuilder {
    /// A builder with empty scratch space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a feedback packet describing `packets` to `writer`.
    ///
    /// `packets` are (transport-wide sequence number, arrival time in µs if received),
    /// strictly increasing in sequence order (wrapping); gaps are reported as not
    /// received. Arrival times are rounded to 250 µs, keeping the rounding error from
    /// accumulating. Chunks are chosen greedily: run-length for runs of 14 or more (or
    /// the rest of the list), a one-bit vector when the next 14 statuses need no large
    /// delta, else a two-bit vector.
    pub fn write(
        &mut self,
        writer: &mut RtcpWriter<'_>,
        sender_ssrc: u32,
        media_ssrc: u32,
        feedback_count: u8,
        packets: &[(u16, Option<i64>)],
    ) -> Result<()> {
        self.symbols.clear();
        self.deltas.clear();
        let base_sequence = packets.first().map_or(0, |p| p.0);
        let reference = packets
            .iter()
            .find_map(|p| p.1)
            .map_or(0, |t| t.div_euclid(REFERENCE_TIME_UNIT_US));
        // Saturating: flooring a time near i64::MIN would step past it.
        let mut time_us = reference.saturating_mul(REFERENCE_TIME_UNIT_US);
        let mut previous: Option<u16> = None;
        for &(seq, arrival) in packets {
            if let Some(previous) = previous {
                let step = seq.wrapping_sub(previous);
                if step == 0 || step > 0x7FFF {
                    return Err(RtpError::TwccOutOfOrder { previous, seq });
                }
                // Not-received statuses for the gap.
                self.symbols
                    .extend(std::iter::repeat_n(NOT_RECEIVED, usize::from(step) - 1));
            }
            previous = Some(seq);
            if self.symbols.len() >= usize::from(u16::MAX) {
                return Err(RtpError::ValueOutOfRange {
                    field: "transport-cc status count",
                    value: self.symbols.len() as u64 + 1,
                    max: u16::MAX.into(),
                });
            }
            let Some(arrival) = arrival else {
                self.symbols.push(NOT_RECEIVED);
                continue;
            };
            // Saturating: callers may pass any i64, and overflow must not panic.
            let delta_us = arrival.saturating_sub(time_us);
            let ticks = delta_us
                .saturating_add(DELTA_UNIT_US / 2)
                .div_euclid(DELTA_UNIT_US);
            let Ok(ticks) = i16::try_from(ticks) else {
                return Err(RtpError::TwccDeltaOutOfRange { delta_us });
            };
            time_us = time_us.saturating_add(i64::from(ticks) * DELTA_UNIT_US);
            self.symbols.push(if (0..=255).contains(&ticks) {
                SMALL_DELTA
            } else {
                LARGE_DELTA
            });
            self.deltas.push(ticks);
        }

        let start = writer.begin(FMT_TWCC, RTPFB);
        let out = &mut *writer.out;
        out.extend_from_slice(&sender_ssrc.to_be_bytes());
        out.extend_from_slice(&media_ssrc.to_be_bytes());
        out.extend_from_slice(&base_sequence.to_be_bytes());
        out.extend_from_slice(&(self.symbols.len() as u16).to_be_bytes());
        let reference_bytes = ((reference & REFERENCE_TIME_MASK) as u32).to_be_bytes();
        out.extend_from_slice(&[
            reference_bytes[1],
            reference_bytes[2],
            reference_bytes[3],
            feedback_count,
        ]);
        self.write_chunks(out);
        for &ticks in &self.deltas {
            if (0..=255).contains(&ticks) {
                out.push(ticks as u8);
            } else {
                out.extend_from_slice(&ticks.to_be_bytes());
            }
        }
        writer.finish(start)
    }

    fn write_chunks(&self, out: &mut Vec<u8>) {
        let symbols = &self.symbols[..];
        let mut i = 0;
        while i < symbols.len() {
            let symbol = symbols[i];
            let run = symbols[i..]
                .iter()
                .take(MAX_RUN)
                .take_while(|&&s| s == symbol)
                .count();
            let window = &symbols[i..symbols.len().min(i + 14)];
            let chunk = if run >= 14 || i + run == symbols.len() {
                i += run;
                (u16::from(symbol) << 13) | run as u16
            } else if window.iter().all(|&s| s != LARGE_DELTA) {
                i += window.len();
                window
                    .iter()
                    .enumerate()
                    .fold(0x8000, |c, (k, &s)| c | (u16::from(s) << (13 - k)))
            } else {
                let window = &window[..window.len().min(7)];
                i += window.len();
                window
                    .iter()
                    .enumerate()
                    .fold(0xC000, |c, (k, &s)| c | (u16::from(s) << (12 - 2 * k)))
            };
            out.extend_from_slice(&chunk.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RtcpCompound, RtcpPacket};
    use super::*;
    use proptest::prelude::*;

    fn round_trip(packets: &[(u16, Option<i64>)]) -> Vec<(u16, Option<i64>)> {
        let mut out = Vec::new();
        let mut writer = RtcpWriter::new(&mut out);
        TwccBuilder::new()
            .write(&mut writer, 1, 2, 9, packets)
            .unwrap();
        let compound = RtcpCompound::parse(&out).unwrap();
        let mut all = compound.packets();
        let Some(Ok(RtcpPacket::TransportCc(fb))) = all.next() else {
            panic!("not a transport-cc packet");
        };
        assert_eq!(fb.feedback_count, 9);
        fb.packets().collect()
    }

    #[test]
    fn gaps_runs_and_large_deltas() {
        let packets = [
            (65_534, Some(1_000_000)),
            (65_535, None),
            (0, Some(1_000_250)),
            (3, Some(900_000)), // negative delta: large
            (4, Some(2_000_000)),
        ];
        let got = round_trip(&packets);
        assert_eq!(
            got,
            [
                (65_534, Some(1_000_000)),
                (65_535, None),
                (0, Some(1_000_250)),
                (1, None),
                (2, None),
                (3, Some(900_000)),
                (4, Some(2_000_000)),
            ]
        );
        assert!(round_trip(&[]).is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        let mut out = Vec::new();
        let mut writer = RtcpWriter::new(&mut out);
        let mut builder = TwccBuilder::new();
        assert_eq!(
            builder.write(&mut writer, 0, 0, 0, &[(5, None), (5, None)]),
            Err(RtpError::TwccOutOfOrder {
                previous: 5,
                seq: 5
            })
        );
        assert!(matches!(
            builder.write(&mut writer, 0, 0, 0, &[(1, Some(0)), (2, Some(10_000_000))]),
            Err(RtpError::TwccDeltaOutOfRange { .. })
        ));
        for extreme in [
            [(1, Some(i64::MIN)), (2, Some(i64::MAX))],
            [(1, Some(i64::MAX)), (2, Some(i64::MIN))],
        ] {
            assert!(matches!(
                builder.write(&mut writer, 0, 0, 0, &extreme),
                Err(RtpError::TwccDeltaOutOfRange { .. })
            ));
        }
        assert!(
            builder
                .write(
                    &mut writer,
                    0,
                    0,
                    0,
                    &[(1, Some(i64::MIN)), (2, Some(i64::MIN))]
                )
                .is_ok()
        );
        assert!(
            builder
                .write(
                    &mut writer,
                    0,
                    0,
                    0,
                    &[(1, Some(i64::MAX)), (2, Some(i64::MAX))]
                )
                .is_ok()
        );
        // Gaps that add up past the 16-bit status count.
        let spread: Vec<_> = (0..4u16).map(|i| (i.wrapping_mul(30_000), None)).collect();
        assert!(matches!(
            builder.write(&mut writer, 0, 0, 0, &spread),
            Err(RtpError::ValueOutOfRange { .. })
        ));
    }

    #[test]
    fn parses_draft_style_chunks() {
        // Base 10, 3 statuses, reference 1 (64 ms); a two-bit vector: small, large, none.
        let body = [
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            2,
            0,
            10,
            0,
            3,
            0,
            0,
            1,
            7,
            0b1101_1000,
            0,
            4,
            0xFF,
            0xFC,
        ];
        let fb = TwccFeedback::parse(&body).unwrap();
        assert_eq!(
            fb.packets().collect::<Vec<_>>(),
            [(10, Some(65_000)), (11, Some(64_000)), (12, None)]
        );
        assert!(TwccFeedback::parse(&body[..20]).is_err());
        let mut reserved = body;
        reserved[16] = 0b0110_0000; // run-length of reserved symbols
        reserved[17] = 3;
        assert_eq!(
            TwccFeedback::parse(&reserved),
            Err(RtpError::TwccReservedStatus { seq: 10 })
        );
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            base in any::<u16>(),
            start in 10_000_000i64..1_000_000_000_000,
            steps in proptest::collection::vec((1u16..40, proptest::option::weighted(0.8, -2_000i64..40_000)), 0..300),
        ) {
            let mut seq = base;
            let mut time = start / DELTA_UNIT_US * DELTA_UNIT_US;
            let mut packets = Vec::new();
            for (i, (step, dt)) in steps.iter().enumerate() {
                if i > 0 {
                    seq = seq.wrapping_add(*step);
                }
                let arrival = dt.map(|dt| {
                    time += dt / DELTA_UNIT_US * DELTA_UNIT_US;
                    time
                });
                packets.push((seq, arrival));
            }
            let got = round_trip(&packets);
            let received: Vec<_> = got.iter().filter(|p| p.1.is_some()).copied().collect();
            let expected: Vec<_> = packets.iter().filter(|p| p.1.is_some()).copied().collect();
            prop_assert_eq!(received, expected);
            let span = packets.last().map_or(0, |l| usize::from(l.0.wrapping_sub(base)) + 1);
            prop_assert_eq!(got.len(), span);
        }

        #[test]
        fn parsing_arbitrary_fci_never_panics(fci in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut body = vec![0u8; 8];
            body.extend_from_slice(&fci);
            if let Ok(fb) = TwccFeedback::parse(&body) {
                prop_assert_eq!(fb.packets().count(), usize::from(fb.status_count));
            }
        }
    }
}
