//! A fixed-delay audio buffer (GStreamer's `rtpjitterbuffer` without skew correction) and
//! the hindsight "oracle" offset, for comparison with the adaptive buffer.
//!
//! Media time and playout: packet `i` carries media time `m_i = (ts_i − ts_ref) / rate`. The
//! buffer plays media time `M = T − b` at a pull at time `T`, where `b` is the *playout
//! base*: the instant media time 0 plays. Pulls are 10 ms apart, so each pull plays one
//! 10 ms chunk: chunk `h = floor((T − b) / 10 ms)`, which is part of packet `h / 2` (for
//! 20 ms packets). The first pull that needs a packet decodes it if it has arrived and
//! conceals otherwise; a packet that arrives after that pull is late (counted and dropped).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use tincan_codec::CodecError;
use tincan_jitter::{AudioPacket, AudioPacketDecoder};

use super::metrics::{PullKind, PullRecord};

/// Where the fixed buffer's playout base comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Playout {
    /// `b = arrival of the first packet − its media time + delay`, as GStreamer does: the
    /// first packet to arrive sets media time 0 and plays `delay` after its arrival.
    AfterFirstArrival(Duration),
    /// A base fixed in hindsight: the packet with timestamp `ts0` plays at `origin + offset`
    /// (the oracle).
    Offset {
        /// The instant the offset is measured from.
        origin: Instant,
        /// RTP timestamp of media time 0.
        ts0: u32,
        /// Playout time of media time 0 after `origin`.
        offset: Duration,
    },
}

/// What the fixed buffer did with an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedInsert {
    /// Stored for playout.
    Buffered,
    /// Arrived after the first pull that needed it: dropped.
    Late,
    /// A copy of a packet already received: dropped.
    Duplicate,
}

/// Counters of a [`FixedDelayBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedStats {
    /// Packets given to `insert`, copies included.
    pub packets_received: u64,
    /// Packets that arrived after their first needed pull.
    pub late_packets: u64,
    /// Second copies dropped.
    pub duplicate_packets: u64,
    /// Samples emitted since playout started (concealment included).
    pub total_samples: u64,
    /// Samples concealed by the decoder.
    pub concealed_samples: u64,
    /// Decode errors (the chunk is concealed instead).
    pub decode_errors: u64,
}

/// The playout base once known: the instant media time 0 plays, and its RTP timestamp.
#[derive(Debug, Clone, Copy)]
struct Base {
    at: Instant,
    ts_ref: u32,
}

/// A fixed-delay buffer: no adaptation, no time stretching, no clock-skew correction.
///
/// Generic over the decoder so that its scheduling can be tested without a codec.
#[derive(Debug)]
pub struct FixedDelayBuffer<D> {
    decoder: D,
    playout: Playout,
    base: Option<Base>,
    /// Samples per channel per packet (960 for 20 ms at 48 kHz).
    frame_samples: usize,
    /// Samples per channel per pull (480: 10 ms at 48 kHz).
    pull_samples: usize,
    /// Received packets waiting for playout: index → (payload, arrival).
    waiting: BTreeMap<i64, (Vec<u8>, Instant)>,
    /// Every packet index received (to tell copies from late packets).
    received: HashSet<i64>,
    /// Highest packet index whose first needed pull has happened.
    needed_through: Option<i64>,
    /// The packet being played and the rest of its decoded samples, with its arrival.
    current: Option<(i64, Vec<i16>, Instant)>,
    /// Whether the current packet index was concealed at its first pull.
    concealed_index: Option<i64>,
    scratch: Vec<i16>,
    stats: FixedStats,
}

impl<D: AudioPacketDecoder> FixedDelayBuffer<D> {
    /// A buffer that decodes with `decoder` (mono) and plays `frame_samples` per packet,
    /// 10 ms per pull.
    pub fn new(decoder: D, playout: Playout, frame_samples: usize) -> Self {
        let pull_samples = decoder.sample_rate() as usize / 100;
        let base = match playout {
            Playout::AfterFirstArrival(_) => None,
            Playout::Offset {
                origin,
                ts0,
                offset,
            } => Some(Base {
                at: origin + offset,
                ts_ref: ts0,
            }),
        };
        Self {
            decoder,
            playout,
            base,
            frame_samples,
            pull_samples,
            waiting: BTreeMap::new(),
            received: HashSet::new(),
            needed_through: None,
            current: None,
            concealed_index: None,
            scratch: vec![0; frame_samples.max(pull_samples)],
            stats: FixedStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &FixedStats {
        &self.stats
    }

    fn index_of(&self, base: Base, timestamp: u32) -> i64 {
        let rel = i64::from(timestamp.wrapping_sub(base.ts_ref) as i32);
        rel.div_euclid(self.frame_samples as i64)
    }

    /// Takes a packet that arrived at `now`.
    pub fn insert(&mut self, packet: AudioPacket<'_>, now: Instant) -> FixedInsert {
        self.stats.packets_received += 1;
        let base = *self.base.get_or_insert_with(|| {
            let Playout::AfterFirstArrival(delay) = self.playout else {
                unreachable!("an offset playout has its base from the start")
            };
            Base {
                at: now + delay,
                ts_ref: packet.timestamp,
            }
        });
        let index = self.index_of(base, packet.timestamp);
        if !self.received.insert(index) {
            self.stats.duplicate_packets += 1;
            return FixedInsert::Duplicate;
        }
        if self.needed_through.is_some_and(|n| index <= n) {
            self.stats.late_packets += 1;
            return FixedInsert::Late;
        }
        self.waiting.insert(index, (packet.payload.to_vec(), now));
        FixedInsert::Buffered
    }

    /// Plays the 10 ms due at `now` into `out` (one pull long).
    ///
    /// # Errors
    ///
    /// Only when the decoder fails to conceal (bad arguments).
    pub fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<PullRecord, CodecError> {
        let n = self.pull_samples;
        let out = &mut out[..n];
        let silence = |out: &mut [i16]| {
            out.fill(0);
            PullRecord::silence(n)
        };
        let Some(base) = self.base else {
            return Ok(silence(out));
        };
        if now < base.at {
            return Ok(silence(out));
        }
        let chunk = ((now - base.at).as_nanos() / Duration::from_millis(10).as_nanos()) as i64;
        let chunks_per_packet = (self.frame_samples / n) as i64;
        let index = chunk.div_euclid(chunks_per_packet);
        let part = chunk.rem_euclid(chunks_per_packet) as usize;
        self.needed_through = Some(self.needed_through.map_or(index, |x| x.max(index)));
        // Anything older than the packet due can no longer play.
        while let Some((&first, _)) = self.waiting.first_key_value() {
            if first >= index {
                break;
            }
            self.waiting.pop_first();
        }
        self.stats.total_samples += n as u64;
        let is_current = self.current.as_ref().is_some_and(|(i, ..)| *i == index);
        if !is_current && self.concealed_index != Some(index) {
            self.current = None;
            if let Some((payload, arrival)) = self.waiting.remove(&index) {
                match self.decoder.decode(&payload, &mut self.scratch) {
                    Ok(got) if got >= self.frame_samples => {
                        self.current =
                            Some((index, self.scratch[..self.frame_samples].to_vec(), arrival));
                    }
                    _ => self.stats.decode_errors += 1,
                }
            }
            if self.current.is_none() {
                self.concealed_index = Some(index);
            }
        }
        if let Some((_, samples, arrival)) = self.current.as_ref() {
            out.copy_from_slice(&samples[part * n..(part + 1) * n]);
            return Ok(PullRecord {
                samples: n,
                from_packets: n,
                packet_delay: Some(now.saturating_duration_since(*arrival)),
                target_delay: None,
                kind: PullKind::Normal,
            });
        }
        self.decoder.conceal(n, out)?;
        self.stats.concealed_samples += n as u64;
        Ok(PullRecord {
            samples: n,
            from_packets: 0,
            packet_delay: None,
            target_delay: None,
            kind: PullKind::Expand,
        })
    }
}

/// The hindsight oracle: the smallest fixed offset `c` (playout time of media time 0 after
/// the origin) that keeps late loss at 1%, that is the 99th percentile of
/// `arrival_i − media_time_i` over delivered packets (first copies). `None` for no packets.
///
/// `transit` holds `arrival_i − media_time_i` in seconds, one per delivered packet.
pub fn oracle_offset(transit: &[f64]) -> Option<f64> {
    percentile(transit, 0.99)
}

/// The `q` quantile of `values` (nearest rank: the smallest value with at least `q` of
/// them at or below it). `None` when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_jitter::RecoverySource;

    /// Decodes a packet to its first byte repeated; conceals with -1.
    struct ByteDecoder;

    impl AudioPacketDecoder for ByteDecoder {
        fn sample_rate(&self) -> u32 {
            48_000
        }
        fn channels(&self) -> usize {
            1
        }
        fn packet_samples(&self, _: &[u8]) -> Option<usize> {
            Some(960)
        }
        fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
            out[..960].fill(i16::from(payload[0]));
            Ok(960)
        }
        fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
            out[..samples].fill(-1);
            Ok(samples)
        }
        fn recover(
            &mut self,
            _: &[u8],
            _: u64,
            _: usize,
            _: usize,
            _: &mut [i16],
        ) -> Result<Option<RecoverySource>, CodecError> {
            Ok(None)
        }
        fn is_dtx(&self, _: &[u8]) -> bool {
            false
        }
        fn reset(&mut self) {}
    }

    /// Per pull (first sample, delay in ms), the counters, and each insert's outcome.
    type Outcome = (Vec<(i16, Option<u64>)>, FixedStats, Vec<FixedInsert>);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Packets `(index, arrival ms)`; pulls every 10 ms from 0 to `until_ms`. Returns the
    /// first sample of each pull, its delay in ms (None: concealed or silent) and the stats.
    fn run(
        playout: impl FnOnce(Instant) -> Playout,
        arrivals: &[(u32, u64)],
        until_ms: u64,
    ) -> Outcome {
        let t0 = Instant::now();
        let mut buffer = FixedDelayBuffer::new(ByteDecoder, playout(t0), 960);
        let mut arrivals = arrivals.to_vec();
        arrivals.sort_by_key(|&(_, at)| at);
        let mut next = 0;
        let mut out = vec![0i16; 480];
        let mut pulls = Vec::new();
        let mut inserts = Vec::new();
        for k in 0..=until_ms / 10 {
            let now = t0 + ms(10 * k);
            while next < arrivals.len() && t0 + ms(arrivals[next].1) <= now {
                let (i, at) = arrivals[next];
                let payload = [i as u8 + 1];
                inserts.push(buffer.insert(
                    AudioPacket {
                        ssrc: 1,
                        sequence: i as u16,
                        // Wraps on purpose: media time follows the wrapping difference.
                        timestamp: (u32::MAX - 959).wrapping_add(i * 960),
                        payload: &payload,
                    },
                    t0 + ms(at),
                ));
                next += 1;
            }
            let record = buffer.pull(now, &mut out).unwrap();
            assert!(out.iter().all(|&s| s == out[0]));
            pulls.push((out[0], record.packet_delay.map(|d| d.as_millis() as u64)));
        }
        (pulls, *buffer.stats(), inserts)
    }

    #[test]
    fn plays_each_packet_twice_at_its_fixed_delay() {
        // Packets every 20 ms, each taking 5 ms; the first arrives at 5 ms, plays at 55 ms.
        let arrivals: Vec<(u32, u64)> = (0..5).map(|i| (i, 20 * u64::from(i) + 5)).collect();
        let (pulls, stats, _) = run(|_| Playout::AfterFirstArrival(ms(50)), &arrivals, 160);
        // Pull at 60 ms is the first at or after 55 ms: packet 0's first half.
        assert!(pulls[..6].iter().all(|&p| p == (0, None)));
        let played: Vec<(i16, Option<u64>)> = pulls[6..16].to_vec();
        let want: Vec<(i16, Option<u64>)> = (0..10)
            .map(|c| {
                let i = c / 2;
                (i as i16 + 1, Some(60 + 10 * c as u64 - (20 * i as u64 + 5)))
            })
            .collect();
        assert_eq!(played, want);
        // After the last packet: concealment.
        assert_eq!(pulls[16], (-1, None));
        assert_eq!((stats.late_packets, stats.duplicate_packets), (0, 0));
        assert_eq!(stats.concealed_samples, 480);
        assert_eq!(stats.total_samples, 11 * 480);
    }

    #[test]
    fn late_packets_are_concealed_dropped_and_counted() {
        // Base 0 + 30 = 30 ms: packet 1 is needed at 50 ms (media 20 ms), arrives at 55.
        let arrivals = [(0, 0), (1, 55), (2, 40), (2, 45), (3, 90)];
        let (pulls, stats, inserts) = run(|_| Playout::AfterFirstArrival(ms(30)), &arrivals, 100);
        let samples: Vec<i16> = pulls.iter().map(|p| p.0).collect();
        assert_eq!(&samples[3..11], &[1, 1, -1, -1, 3, 3, 4, 4]);
        assert_eq!(
            inserts,
            [
                FixedInsert::Buffered,
                FixedInsert::Buffered,
                FixedInsert::Duplicate,
                FixedInsert::Late,
                FixedInsert::Buffered
            ]
        );
        assert_eq!((stats.late_packets, stats.duplicate_packets), (1, 1));
        // A packet arriving exactly at its pull (90 ms) is on time, with zero delay.
        assert_eq!(pulls[8], (3, Some(40)));
        assert_eq!(pulls[9], (4, Some(0)));
        assert_eq!(pulls[10], (4, Some(10)));
    }

    #[test]
    fn offset_playout_uses_the_given_base() {
        // Packet 0 is lost; packet 1 arrives at 28 ms. With c = 25 ms media time 0 plays at
        // 25 ms, so the pull at 30 ms plays chunk 0 and packet 1 (chunks 2, 3) plays at 50 ms.
        let arrivals = [(1, 28), (2, 48)];
        let (pulls, stats, _) = run(
            |t0| Playout::Offset {
                origin: t0,
                ts0: u32::MAX - 959,
                offset: ms(25),
            },
            &arrivals,
            90,
        );
        let samples: Vec<i16> = pulls.iter().map(|p| p.0).collect();
        // Pulls at 0, 10, 20: before the base. 30, 40: packet 0 (lost). 50, 60: packet 1.
        assert_eq!(&samples[..9], &[0, 0, 0, -1, -1, 2, 2, 3, 3]);
        assert_eq!(pulls[5], (2, Some(22)));
        assert_eq!(stats.late_packets, 0);
    }

    #[test]
    fn oracle_offset_is_the_99th_percentile_of_transit() {
        // 1000 packets with transit 40 ms, 10 of them 300 ms: the 99th percentile keeps
        // exactly those 10 (1%) late.
        let mut transit = vec![0.040; 990];
        transit.extend([0.300; 10]);
        assert_eq!(oracle_offset(&transit), Some(0.040));
        // One more slow packet: now more than 1% would be late at 40 ms.
        transit[0] = 0.300;
        assert_eq!(oracle_offset(&transit), Some(0.300));
        let uniform: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(oracle_offset(&uniform), Some(198.0));
        assert_eq!(percentile(&uniform, 0.5), Some(100.0));
        assert_eq!(oracle_offset(&[]), None);
    }

    #[test]
    fn oracle_offset_gives_at_most_one_percent_late_in_the_fixed_buffer() {
        // Transit 20..=119 ms in a scrambled order: the oracle (118 ms) makes at most 1% late.
        let arrivals: Vec<(u32, u64)> = (0..100u32)
            .map(|i| (i, 20 * u64::from(i) + 20 + u64::from((i * 37) % 100)))
            .collect();
        let transit: Vec<f64> = arrivals
            .iter()
            .map(|&(i, at)| (at as f64 - 20.0 * f64::from(i)) / 1000.0)
            .collect();
        let c = oracle_offset(&transit).unwrap();
        assert!((c - 0.118).abs() < 1e-9, "{c}");
        let (_, stats, _) = run(
            |t0| Playout::Offset {
                origin: t0,
                ts0: u32::MAX - 959,
                offset: Duration::from_secs_f64(c),
            },
            &arrivals,
            2200,
        );
        assert!(stats.late_packets <= 1, "{stats:?}");
        // 11 ms less: packets with transit above 110 ms (111..=119) are late.
        let (_, stats, _) = run(
            |t0| Playout::Offset {
                origin: t0,
                ts0: u32::MAX - 959,
                offset: Duration::from_secs_f64(c - 0.011),
            },
            &arrivals,
            2200,
        );
        assert_eq!(stats.late_packets, 9, "{stats:?}");
    }
}
