//! Redundant audio data over RTP (RFC 2198).
//!
//! A RED payload carries the primary encoding plus copies of earlier ones, so a receiver
//! can fill a lost packet from the next one. Layout: one 4-byte header per redundant
//! block (F=1, 7-bit block payload type, 14-bit timestamp offset, 10-bit block length),
//! a 1-byte header for the primary block (F=0, payload type), then the block data in
//! header order, the primary last.
//!
//! [`RedPayload::parse`] borrows the blocks out of a payload without allocating;
//! [`write_red`] writes a payload from blocks; [`RedEncoder`] keeps the history of
//! previous frames and writes each new frame with up to `depth` of them.

use super::PayloadError;

/// Largest redundant block: the length field has 10 bits.
pub const MAX_BLOCK_LEN: usize = 1023;
/// Largest timestamp offset of a redundant block: the field has 14 bits.
pub const MAX_TIMESTAMP_OFFSET: u32 = 0x3FFF;
/// Largest payload type: 7 bits.
pub const MAX_PAYLOAD_TYPE: u8 = 127;
/// Most redundant blocks [`RedEncoder`] keeps; more than a few only costs bandwidth.
pub const MAX_DEPTH: usize = 8;

/// One block of a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedBlock<'a> {
    /// Payload type of the block's encoding.
    pub payload_type: u8,
    /// How far the block's timestamp lies before the packet's (0 for the primary).
    pub timestamp_offset: u16,
    /// The encoded data (may be empty, e.g. a DTX frame).
    pub data: &'a [u8],
}

/// A parsed RED payload, borrowing the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedPayload<'a> {
    /// The 4-byte headers of the redundant blocks.
    headers: &'a [u8],
    /// All block data, redundant blocks first.
    data: &'a [u8],
    primary_type: u8,
}

impl<'a> RedPayload<'a> {
    /// Parses and checks a RED payload: every header present, every block length within
    /// the payload.
    pub fn parse(payload: &'a [u8]) -> Result<Self, PayloadError> {
        let mut at = 0;
        let mut total = 0usize;
        loop {
            let Some(&first) = payload.get(at) else {
                return Err(PayloadError::Truncated {
                    what: "RED block header",
                    needed: at + 1,
                    available: payload.len(),
                });
            };
            if first & 0x80 == 0 {
                let headers = &payload[..at];
                let data = &payload[at + 1..];
                if total > data.len() {
                    return Err(PayloadError::Truncated {
                        what: "RED redundant blocks",
                        needed: total,
                        available: data.len(),
                    });
                }
                return Ok(Self {
                    headers,
                    data,
                    primary_type: first & 0x7F,
                });
            }
            let Some(header) = payload.get(at..at + 4) else {
                return Err(PayloadError::Truncated {
                    what: "RED block header",
                    needed: at + 4,
                    available: payload.len(),
                });
            };
            total += usize::from(block_len(header));
            at += 4;
        }
    }

    /// Number of redundant blocks.
    pub fn redundant_count(&self) -> usize {
        self.headers.len() / 4
    }

    /// The redundant blocks, in packet order (oldest first when written by this module).
    pub fn redundant(&self) -> impl ExactSizeIterator<Item = RedBlock<'a>> + 'a {
        let data = self.data;
        let mut offset = 0usize;
        self.headers.chunks_exact(4).map(move |header| {
            let len = usize::from(block_len(header));
            // Lengths were checked against the data in `parse`.
            let block = data.get(offset..offset + len).unwrap_or_default();
            offset += len;
            RedBlock {
                payload_type: header[0] & 0x7F,
                timestamp_offset: (u16::from(header[1]) << 6) | u16::from(header[2] >> 2),
                data: block,
            }
        })
    }

    /// The primary block.
    pub fn primary(&self) -> RedBlock<'a> {
        let redundant: usize = self
            .headers
            .chunks_exact(4)
            .map(|h| usize::from(block_len(h)))
            .sum();
        RedBlock {
            payload_type: self.primary_type,
            timestamp_offset: 0,
            data: self.data.get(redundant..).unwrap_or_default(),
        }
    }
}

fn block_len(header: &[u8]) -> u16 {
    (u16::from(header[2] & 0x03) << 8) | u16::from(header[3])
}

fn check_type(payload_type: u8) -> Result<(), PayloadError> {
    if payload_type > MAX_PAYLOAD_TYPE {
        return Err(PayloadError::RedFieldRange {
            field: "payload type",
            value: u32::from(payload_type),
            max: u32::from(MAX_PAYLOAD_TYPE),
        });
    }
    Ok(())
}

/// Writes a RED payload into `out` (cleared first): `redundant` blocks in the order given,
/// then `primary` (whose `timestamp_offset` is ignored).
pub fn write_red(
    primary: RedBlock<'_>,
    redundant: &[RedBlock<'_>],
    out: &mut Vec<u8>,
) -> Result<(), PayloadError> {
    out.clear();
    check_type(primary.payload_type)?;
    for block in redundant {
        check_type(block.payload_type)?;
        if u32::from(block.timestamp_offset) > MAX_TIMESTAMP_OFFSET {
            return Err(PayloadError::RedFieldRange {
                field: "timestamp offset",
                value: u32::from(block.timestamp_offset),
                max: MAX_TIMESTAMP_OFFSET,
            });
        }
        if block.data.len() > MAX_BLOCK_LEN {
            return Err(PayloadError::RedFieldRange {
                field: "block length",
                value: u32::try_from(block.data.len()).unwrap_or(u32::MAX),
                max: MAX_BLOCK_LEN as u32,
            });
        }
    }
    for block in redundant {
        let offset = block.timestamp_offset;
        let len = block.data.len() as u16;
        out.extend_from_slice(&[
            0x80 | block.payload_type,
            (offset >> 6) as u8,
            ((offset as u8 & 0x3F) << 2) | (len >> 8) as u8,
            len as u8,
        ]);
    }
    out.push(primary.payload_type);
    for block in redundant {
        out.extend_from_slice(block.data);
    }
    out.extend_from_slice(primary.data);
    Ok(())
}

#[derive(Debug, Clone, Default)]
struct Past {
    timestamp: u32,
    payload_type: u8,
    data: Vec<u8>,
}

/// Writes RED payloads carrying each frame with up to `depth` previous frames.
///
/// The history is a ring of `depth` reused buffers, so encoding does not allocate once
/// they have grown to the frame size. A previous frame is left out when it no longer
/// fits the format: timestamp offset above [`MAX_TIMESTAMP_OFFSET`] or length above
/// [`MAX_BLOCK_LEN`].
#[derive(Debug, Clone)]
pub struct RedEncoder {
    depth: usize,
    history: Vec<Past>,
    /// Index of the oldest entry in `history` once it is full.
    next: usize,
    filled: usize,
}

impl RedEncoder {
    /// An encoder adding up to `depth` redundant blocks (0..=[`MAX_DEPTH`]).
    pub fn new(depth: usize) -> Result<Self, PayloadError> {
        if depth > MAX_DEPTH {
            return Err(PayloadError::TooLarge {
                what: "RED depth",
                len: depth,
                max: MAX_DEPTH,
            });
        }
        Ok(Self {
            depth,
            history: vec![Past::default(); depth],
            next: 0,
            filled: 0,
        })
    }

    /// Redundant blocks per packet at most.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Writes the RED payload for a new frame into `out` and remembers the frame.
    pub fn encode(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        primary: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), PayloadError> {
        self.encode_with_copy(payload_type, timestamp, primary, primary, out)
    }

    /// Like [`encode`](Self::encode), but later packets repeat `copy` instead of the
    /// primary: the same frame encoded at a lower bitrate, so that redundancy costs less
    /// than the primary (`copy` must be decodable by the same decoder: the same codec and
    /// payload type).
    pub fn encode_with_copy(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        primary: &[u8],
        copy: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), PayloadError> {
        check_type(payload_type)?;
        let mut blocks: [RedBlock<'_>; MAX_DEPTH] = [RedBlock {
            payload_type: 0,
            timestamp_offset: 0,
            data: &[],
        }; MAX_DEPTH];
        let mut count = 0;
        // Oldest first: index `next` holds the oldest once the ring is full.
        let start = if self.filled < self.depth {
            0
        } else {
            self.next
        };
        for i in 0..self.filled {
            let past = &self.history[(start + i) % self.depth.max(1)];
            let offset = timestamp.wrapping_sub(past.timestamp);
            if offset == 0 || offset > MAX_TIMESTAMP_OFFSET || past.data.len() > MAX_BLOCK_LEN {
                continue;
            }
            blocks[count] = RedBlock {
                payload_type: past.payload_type,
                timestamp_offset: offset as u16,
                data: &past.data,
            };
            count += 1;
        }
        write_red(
            RedBlock {
                payload_type,
                timestamp_offset: 0,
                data: primary,
            },
            &blocks[..count],
            out,
        )?;
        if self.depth > 0 {
            let slot = &mut self.history[self.next];
            slot.timestamp = timestamp;
            slot.payload_type = payload_type;
            slot.data.clear();
            slot.data.extend_from_slice(copy);
            self.next = (self.next + 1) % self.depth;
            self.filled = (self.filled + 1).min(self.depth);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn later_packets_repeat_the_copy_not_the_primary() {
        let mut encoder = RedEncoder::new(2).unwrap();
        let mut out = Vec::new();
        encoder
            .encode_with_copy(111, 0, &[1; 60], &[2; 20], &mut out)
            .unwrap();
        encoder
            .encode_with_copy(111, 960, &[3; 60], &[4; 20], &mut out)
            .unwrap();
        encoder
            .encode_with_copy(111, 1920, &[5; 60], &[6; 20], &mut out)
            .unwrap();
        let red = RedPayload::parse(&out).unwrap();
        let blocks: Vec<_> = red.redundant().collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].timestamp_offset, blocks[0].data),
            (1920, &[2u8; 20][..])
        );
        assert_eq!(
            (blocks[1].timestamp_offset, blocks[1].data),
            (960, &[4u8; 20][..])
        );
        assert_eq!(red.primary().data, &[5u8; 60][..]);
    }

    #[test]
    fn parses_the_rfc_2198_example_layout() {
        // One redundant block (PT 0, offset 160? no: 0x0A0 = 160, length 5), primary PT 0.
        let payload = [0x80, 0x02, 0x80, 0x05, 0x00, 1, 2, 3, 4, 5, 9, 9, 9];
        let red = RedPayload::parse(&payload).unwrap();
        let blocks: Vec<_> = red.redundant().collect();
        assert_eq!(
            blocks,
            vec![RedBlock {
                payload_type: 0,
                timestamp_offset: 160,
                data: &[1, 2, 3, 4, 5]
            }]
        );
        assert_eq!(red.primary().data, &[9, 9, 9]);
    }

    #[test]
    fn truncated_payloads_are_typed_errors() {
        assert!(matches!(
            RedPayload::parse(&[]),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            RedPayload::parse(&[0x80, 0, 0]),
            Err(PayloadError::Truncated { needed: 4, .. })
        ));
        assert!(matches!(
            RedPayload::parse(&[0x80, 0, 0, 4, 0x00, 1, 2]),
            Err(PayloadError::Truncated {
                needed: 4,
                available: 2,
                ..
            })
        ));
        // A primary of zero bytes is fine.
        assert_eq!(RedPayload::parse(&[0x6F]).unwrap().primary().data, &[]);
    }

    #[test]
    fn writer_checks_field_ranges() {
        let primary = RedBlock {
            payload_type: 111,
            timestamp_offset: 0,
            data: &[1],
        };
        let long = [0u8; 1024];
        let mut out = Vec::new();
        let bad = RedBlock {
            data: &long,
            ..primary
        };
        assert!(matches!(
            write_red(primary, &[bad], &mut out),
            Err(PayloadError::RedFieldRange {
                field: "block length",
                value: 1024,
                ..
            })
        ));
        let bad = RedBlock {
            timestamp_offset: 0x4000,
            ..primary
        };
        assert!(write_red(primary, &[bad], &mut out).is_err());
        let bad = RedBlock {
            payload_type: 128,
            ..primary
        };
        assert!(write_red(bad, &[], &mut out).is_err());
        assert!(RedEncoder::new(MAX_DEPTH + 1).is_err());
    }

    #[test]
    fn encoder_carries_history_oldest_first_and_skips_what_does_not_fit() {
        let mut encoder = RedEncoder::new(2).unwrap();
        let mut out = Vec::new();
        encoder.encode(111, 0, &[0], &mut out).unwrap();
        assert_eq!(out, vec![111, 0]);
        encoder.encode(111, 960, &[1], &mut out).unwrap();
        encoder.encode(111, 1920, &[2], &mut out).unwrap();
        encoder.encode(111, 2880, &[3; 2000], &mut out).unwrap();
        let red = RedPayload::parse(&out).unwrap();
        let offsets: Vec<_> = red
            .redundant()
            .map(|b| (b.timestamp_offset, b.data[0]))
            .collect();
        assert_eq!(offsets, vec![(1920, 1), (960, 2)]);
        // The 2000-byte frame cannot be a redundant block, and a jump in time drops the rest.
        encoder.encode(111, 3840, &[4], &mut out).unwrap();
        let red = RedPayload::parse(&out).unwrap();
        assert_eq!(
            red.redundant().map(|b| b.data[0]).collect::<Vec<_>>(),
            vec![2]
        );
        encoder.encode(111, 100_000, &[5], &mut out).unwrap();
        assert_eq!(RedPayload::parse(&out).unwrap().redundant_count(), 0);
        let mut none = RedEncoder::new(0).unwrap();
        none.encode(1, 0, &[7], &mut out).unwrap();
        assert_eq!(out, vec![1, 7]);
    }

    proptest! {
        #[test]
        fn round_trip(
            primary_type in 0u8..128,
            primary in proptest::collection::vec(any::<u8>(), 0..1500),
            redundant in proptest::collection::vec(
                (0u8..128, 0u16..=0x3FFF, proptest::collection::vec(any::<u8>(), 0..=MAX_BLOCK_LEN)),
                0..5,
            ),
        ) {
            let blocks: Vec<RedBlock<'_>> = redundant
                .iter()
                .map(|(pt, offset, data)| RedBlock { payload_type: *pt, timestamp_offset: *offset, data })
                .collect();
            let primary = RedBlock { payload_type: primary_type, timestamp_offset: 0, data: &primary };
            let mut out = Vec::new();
            write_red(primary, &blocks, &mut out).unwrap();
            let red = RedPayload::parse(&out).unwrap();
            prop_assert_eq!(red.redundant().collect::<Vec<_>>(), blocks);
            prop_assert_eq!(red.primary(), primary);
        }

        #[test]
        fn parse_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(red) = RedPayload::parse(&payload) {
                let total: usize = red.redundant().map(|b| b.data.len()).sum();
                prop_assert!(total + red.primary().data.len() <= payload.len());
            }
        }
    }
}
