//! Sequence numbers and timestamps extended across wrap-around, per SSRC.

use tincan_media::time::{RtpTimestamp, SeqNo, SeqNoExtender, TimestampExtender};

/// Default for how many SSRCs a [`StreamExtender`] tracks at once.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// A packet's sequence number and timestamp, unwrapped into 64-bit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extended {
    /// The unwrapped sequence number (see [`SeqNoExtender`]).
    pub sequence_number: i64,
    /// The unwrapped timestamp (see [`TimestampExtender`]).
    pub timestamp: i64,
}

#[derive(Debug, Clone)]
struct Stream {
    ssrc: u32,
    seq: SeqNoExtender,
    timestamp: TimestampExtender,
    last_used: u64,
}

/// Unwraps sequence numbers and timestamps of many streams, keyed by SSRC.
///
/// At most `max_streams` SSRCs are tracked. A packet from a new SSRC when the table is
/// full evicts the stream that has gone longest without a packet; if that stream comes
/// back it starts over as if new (its first value maps to itself). The bound keeps a
/// flood of spoofed SSRCs from growing memory without limit. Storage is allocated
/// once, up front; a lookup is a linear scan, which beats hashing for the handful of
/// streams a call carries.
#[derive(Debug, Clone)]
pub struct StreamExtender {
    streams: Vec<Stream>,
    max_streams: usize,
    clock: u64,
}

impl Default for StreamExtender {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STREAMS)
    }
}

impl StreamExtender {
    /// An extender tracking up to `max_streams` SSRCs (at least 1).
    pub fn new(max_streams: usize) -> Self {
        let max_streams = max_streams.max(1);
        Self {
            streams: Vec::with_capacity(max_streams),
            max_streams,
            clock: 0,
        }
    }

    /// Unwraps `seq` and `timestamp` of a packet from `ssrc`.
    pub fn extend(&mut self, ssrc: u32, seq: SeqNo, timestamp: RtpTimestamp) -> Extended {
        self.clock += 1;
        let index = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(index) => index,
            None => {
                let fresh = Stream {
                    ssrc,
                    seq: SeqNoExtender::new(),
                    timestamp: TimestampExtender::new(),
                    last_used: 0,
                };
                if self.streams.len() < self.max_streams {
                    self.streams.push(fresh);
                    self.streams.len() - 1
                } else {
                    // Full: replace the least recently used stream.
                    let index = self
                        .streams
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.last_used)
                        .map_or(0, |(index, _)| index);
                    self.streams[index] = fresh;
                    index
                }
            }
        };
        let stream = &mut self.streams[index];
        stream.last_used = self.clock;
        Extended {
            sequence_number: stream.seq.extend(seq),
            timestamp: stream.timestamp.extend(timestamp),
        }
    }

    /// Forgets `ssrc` (after an RTCP BYE, say); returns whether it was tracked.
    pub fn remove(&mut self, ssrc: u32) -> bool {
        match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(index) => {
                self.streams.swap_remove(index);
                true
            }
            None => false,
        }
    }

    /// Whether `ssrc` is tracked.
    pub fn contains(&self, ssrc: u32) -> bool {
        self.streams.iter().any(|s| s.ssrc == ssrc)
    }

    /// Number of SSRCs tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no SSRC is tracked.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The most SSRCs tracked at once.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_wrap_independently() {
        let mut ext = StreamExtender::new(4);
        let a = ext.extend(1, SeqNo(65_535), RtpTimestamp(u32::MAX));
        let b = ext.extend(2, SeqNo(10), RtpTimestamp(0));
        assert_eq!(a.sequence_number, 65_535);
        assert_eq!(b.sequence_number, 10);
        let a = ext.extend(1, SeqNo(0), RtpTimestamp(959));
        assert_eq!(a.sequence_number, 65_536);
        assert_eq!(a.timestamp, (1 << 32) + 959);
        assert_eq!(
            ext.extend(2, SeqNo(11), RtpTimestamp(960)).sequence_number,
            11
        );
        assert_eq!(ext.len(), 2);
    }

    #[test]
    fn full_table_evicts_the_least_recently_used() {
        let mut ext = StreamExtender::new(2);
        ext.extend(1, SeqNo(0), RtpTimestamp(0));
        ext.extend(2, SeqNo(0), RtpTimestamp(0));
        ext.extend(1, SeqNo(1), RtpTimestamp(0));
        ext.extend(3, SeqNo(0), RtpTimestamp(0));
        assert!(ext.contains(1) && ext.contains(3) && !ext.contains(2));
        assert_eq!(ext.len(), 2);
        assert!(ext.remove(1));
        assert!(!ext.remove(1));
        assert_eq!(StreamExtender::new(0).max_streams(), 1);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn interleaved_streams_each_recover_their_walk(
            steps in proptest::collection::vec((0u32..3, 1i64..3_000, 1i64..100_000), 1..400),
        ) {
            let mut ext = StreamExtender::new(3);
            let mut truth = [(60_000i64, i64::from(u32::MAX) - 50_000); 3];
            // Extended minus true value, fixed at each stream's first packet: the first
            // value maps to itself, so whole cycles before it are not counted.
            let mut offsets: [Option<(i64, i64)>; 3] = [None; 3];
            for (ssrc, dseq, dts) in steps {
                let t = &mut truth[ssrc as usize];
                t.0 += dseq;
                t.1 += dts;
                let got = ext.extend(
                    ssrc,
                    SeqNo(t.0.rem_euclid(1 << 16) as u16),
                    RtpTimestamp(t.1.rem_euclid(1 << 32) as u32),
                );
                let offset = (got.sequence_number - t.0, got.timestamp - t.1);
                let first = *offsets[ssrc as usize].get_or_insert(offset);
                prop_assert_eq!(offset, first);
            }
        }
    }
}
