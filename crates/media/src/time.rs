//! Media time: RTP timestamps and sequence numbers that wrap around, their 64-bit
//! unwrapped forms, and spans of time at any clock rate.
//!
//! Wrapping values are compared with serial number arithmetic (RFC 1982): `a` is newer
//! than `b` when going forward from `b` reaches `a` in less than half the number space.
//! RFC 1982 leaves exactly half undefined; here the larger raw value counts as newer,
//! so of two different values exactly one is newer (the same rule as libwebrtc).

use crate::error::{MediaError, Result};
use std::cmp::Ordering;
use std::time::Duration;

/// A 32-bit RTP timestamp, in ticks of the stream's clock rate; wraps around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RtpTimestamp(pub u32);

/// A 16-bit RTP sequence number; wraps around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

macro_rules! serial_number {
    ($name:ident, $raw:ty, $signed:ty) => {
        impl $name {
            /// Signed distance from `earlier` to `self`, going the short way round:
            /// positive when `self` is ahead. Exactly half way round gives the minimum
            /// value of the signed type.
            pub fn wrapping_diff(self, earlier: Self) -> $signed {
                self.0.wrapping_sub(earlier.0) as $signed
            }

            /// Whether `self` comes after `other` (see the module docs for the tie rule).
            pub fn is_newer_than(self, other: Self) -> bool {
                let diff = self.wrapping_diff(other);
                if diff == <$signed>::MIN {
                    self.0 > other.0
                } else {
                    diff > 0
                }
            }

            /// `self` moved forward by `delta`, wrapping.
            pub fn wrapping_add(self, delta: $raw) -> Self {
                Self(self.0.wrapping_add(delta))
            }

            /// `self` moved back by `delta`, wrapping.
            pub fn wrapping_sub(self, delta: $raw) -> Self {
                Self(self.0.wrapping_sub(delta))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$raw> for $name {
            fn from(value: $raw) -> Self {
                Self(value)
            }
        }
    };
}

serial_number!(RtpTimestamp, u32, i32);
serial_number!(SeqNo, u16, i16);

impl SeqNo {
    /// The sequence number after this one.
    pub fn next(self) -> Self {
        self.wrapping_add(1)
    }
}

macro_rules! extender {
    ($name:ident, $wrapped:ident, $raw:ty, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Each value is placed relative to the previous one, the short way round, so
        /// a late packet from before a wrap lands in the previous cycle rather than a
        /// whole cycle ahead. The first value maps to itself; values before it (late
        /// packets) come out negative. Correct as long as consecutive values are less
        /// than half the number space apart.
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            last: Option<i64>,
        }

        impl $name {
            /// An extender that has seen nothing yet.
            pub fn new() -> Self {
                Self::default()
            }

            /// The unwrapped counter of `value`.
            pub fn extend(&mut self, value: $wrapped) -> i64 {
                let extended = match self.last {
                    None => i64::from(value.0),
                    Some(last) => {
                        let previous = $wrapped(last as $raw);
                        if value.is_newer_than(previous) {
                            last + i64::from(value.0.wrapping_sub(previous.0))
                        } else {
                            last - i64::from(previous.0.wrapping_sub(value.0))
                        }
                    }
                };
                self.last = Some(extended);
                extended
            }

            /// The unwrapped counter of the last value given, if any.
            pub fn last(&self) -> Option<i64> {
                self.last
            }
        }
    };
}

extender!(
    SeqNoExtender,
    SeqNo,
    u16,
    "Unwraps a stream of 16-bit [`SeqNo`]s into a 64-bit counter."
);
extender!(
    TimestampExtender,
    RtpTimestamp,
    u32,
    "Unwraps a stream of 32-bit [`RtpTimestamp`]s into a 64-bit tick counter."
);

/// A signed span of media time: `ticks` of a clock running at `clock_rate` Hz.
///
/// Values at different clock rates compare by the time they stand for, so
/// `MediaTime::new(1, 1000)` equals `MediaTime::new(48, 48000)`. Arithmetic runs in
/// `i128`, so no comparison or conversion overflows; results that do not fit are
/// saturated.
#[derive(Debug, Clone, Copy)]
pub struct MediaTime {
    ticks: i64,
    clock_rate: u32,
}

impl MediaTime {
    /// `ticks` at `clock_rate` Hz; a zero rate is an error.
    pub fn new(ticks: i64, clock_rate: u32) -> Result<Self> {
        if clock_rate == 0 {
            return Err(MediaError::ZeroClockRate);
        }
        Ok(Self { ticks, clock_rate })
    }

    /// `duration` in ticks of `clock_rate`, rounded to the nearest tick.
    pub fn from_duration(duration: Duration, clock_rate: u32) -> Result<Self> {
        if clock_rate == 0 {
            return Err(MediaError::ZeroClockRate);
        }
        let ticks = div_round(
            duration.as_nanos() as i128 * i128::from(clock_rate),
            NANOS_PER_SEC,
        );
        Ok(Self {
            ticks: saturate(ticks),
            clock_rate,
        })
    }

    /// Number of ticks.
    pub fn ticks(self) -> i64 {
        self.ticks
    }

    /// Ticks per second.
    pub fn clock_rate(self) -> u32 {
        self.clock_rate
    }

    /// As a [`Duration`], rounded to the nearest nanosecond; negative spans give zero.
    pub fn to_duration(self) -> Duration {
        if self.ticks <= 0 {
            return Duration::ZERO;
        }
        let nanos = div_round(
            i128::from(self.ticks) * NANOS_PER_SEC,
            i128::from(self.clock_rate),
        );
        // i64::MAX ticks at 1 Hz is still under u64::MAX seconds, so these casts are exact.
        Duration::new(
            (nanos / NANOS_PER_SEC) as u64,
            (nanos % NANOS_PER_SEC) as u32,
        )
    }

    /// In seconds, keeping the sign.
    pub fn as_secs_f64(self) -> f64 {
        self.ticks as f64 / f64::from(self.clock_rate)
    }

    /// The same span in ticks of `clock_rate`, rounded to the nearest tick (halves away
    /// from zero) and saturated to the `i64` range.
    pub fn rescale(self, clock_rate: u32) -> Result<Self> {
        if clock_rate == 0 {
            return Err(MediaError::ZeroClockRate);
        }
        let ticks = div_round(
            i128::from(self.ticks) * i128::from(clock_rate),
            i128::from(self.clock_rate),
        );
        Ok(Self {
            ticks: saturate(ticks),
            clock_rate,
        })
    }
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// `numerator / denominator` rounded to nearest, halves away from zero; `denominator > 0`.
fn div_round(numerator: i128, denominator: i128) -> i128 {
    let half = denominator / 2;
    if numerator >= 0 {
        (numerator + half) / denominator
    } else {
        (numerator - half) / denominator
    }
}

fn saturate(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl PartialEq for MediaTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MediaTime {}

impl PartialOrd for MediaTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MediaTime {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/ra vs b/rb  <=>  a*rb vs b*ra, as both rates are positive.
        let left = i128::from(self.ticks) * i128::from(other.clock_rate);
        let right = i128::from(other.ticks) * i128::from(self.clock_rate);
        left.cmp(&right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn serial_comparison_wraps() {
        assert!(SeqNo(0).is_newer_than(SeqNo(65_535)));
        assert!(!SeqNo(65_535).is_newer_than(SeqNo(0)));
        assert_eq!(SeqNo(2).wrapping_diff(SeqNo(65_534)), 4);
        assert_eq!(SeqNo(65_534).wrapping_diff(SeqNo(2)), -4);
        assert!(RtpTimestamp(10).is_newer_than(RtpTimestamp(u32::MAX - 10)));
        assert_eq!(
            RtpTimestamp(10).wrapping_diff(RtpTimestamp(u32::MAX - 10)),
            21
        );
        assert!(!SeqNo(7).is_newer_than(SeqNo(7)));
        // Exactly half way: the larger raw value wins, so exactly one side is newer.
        assert!(SeqNo(40_000).is_newer_than(SeqNo(40_000 - 32_768)));
        assert!(!SeqNo(40_000 - 32_768).is_newer_than(SeqNo(40_000)));
        assert_eq!(SeqNo(65_535).next(), SeqNo(0));
    }

    #[test]
    fn late_packet_before_a_wrap_maps_to_the_previous_cycle() {
        let mut seq = SeqNoExtender::new();
        assert_eq!(seq.extend(SeqNo(65_534)), 65_534);
        assert_eq!(seq.extend(SeqNo(1)), 65_537);
        assert_eq!(seq.extend(SeqNo(65_535)), 65_535);
        assert_eq!(seq.extend(SeqNo(2)), 65_538);

        let mut first_after_wrap = SeqNoExtender::new();
        assert_eq!(first_after_wrap.extend(SeqNo(3)), 3);
        assert_eq!(first_after_wrap.extend(SeqNo(65_535)), -1);
        assert_eq!(first_after_wrap.last(), Some(-1));

        let mut ts = TimestampExtender::new();
        assert_eq!(
            ts.extend(RtpTimestamp(u32::MAX - 959)),
            i64::from(u32::MAX) - 959
        );
        assert_eq!(ts.extend(RtpTimestamp(960)), (1i64 << 32) + 960);
        assert_eq!(ts.extend(RtpTimestamp(u32::MAX)), i64::from(u32::MAX));
    }

    #[test]
    fn media_time_converts_and_compares_across_rates() {
        let ten_ms = MediaTime::new(480, 48_000).unwrap();
        assert_eq!(ten_ms.to_duration(), Duration::from_millis(10));
        assert_eq!(ten_ms, MediaTime::new(900, 90_000).unwrap());
        assert_eq!(ten_ms.rescale(8_000).unwrap().ticks(), 80);
        assert!(MediaTime::new(1, 8_000).unwrap() > MediaTime::new(5, 48_000).unwrap());
        assert!(MediaTime::new(-1, 8_000).unwrap() < MediaTime::new(0, 90_000).unwrap());
        assert_eq!(
            MediaTime::from_duration(Duration::from_millis(20), 90_000)
                .unwrap()
                .ticks(),
            1_800
        );
        assert_eq!(
            MediaTime::new(-5, 1_000).unwrap().to_duration(),
            Duration::ZERO
        );
        assert_eq!(MediaTime::new(-5, 1_000).unwrap().as_secs_f64(), -0.005);
        // Rounding to nearest, halves away from zero, on both signs.
        assert_eq!(MediaTime::new(3, 2).unwrap().rescale(1).unwrap().ticks(), 2);
        assert_eq!(
            MediaTime::new(-3, 2).unwrap().rescale(1).unwrap().ticks(),
            -2
        );
        assert_eq!(
            MediaTime::new(1, 3).unwrap().to_duration(),
            Duration::from_nanos(333_333_333)
        );
    }

    #[test]
    fn media_time_rejects_zero_rates_and_saturates() {
        assert!(matches!(
            MediaTime::new(1, 0),
            Err(MediaError::ZeroClockRate)
        ));
        assert!(MediaTime::from_duration(Duration::ZERO, 0).is_err());
        assert!(MediaTime::new(1, 1).unwrap().rescale(0).is_err());
        let huge = MediaTime::new(i64::MAX, 1).unwrap();
        assert_eq!(huge.rescale(90_000).unwrap().ticks(), i64::MAX);
        assert_eq!(
            MediaTime::new(i64::MIN, 1)
                .unwrap()
                .rescale(90_000)
                .unwrap()
                .ticks(),
            i64::MIN
        );
        assert_eq!(huge.to_duration().as_secs(), i64::MAX as u64);
        assert_eq!(
            MediaTime::from_duration(Duration::MAX, u32::MAX)
                .unwrap()
                .ticks(),
            i64::MAX
        );
    }

    proptest! {
        #[test]
        fn seq_extender_recovers_a_random_walk(
            start in any::<u16>(),
            steps in proptest::collection::vec(-1_000i64..30_000, 1..500),
        ) {
            let mut extender = SeqNoExtender::new();
            let mut truth = i64::from(start);
            prop_assert_eq!(extender.extend(SeqNo(start)), truth);
            for step in steps {
                truth += step;
                prop_assert_eq!(extender.extend(SeqNo(truth.rem_euclid(1 << 16) as u16)), truth);
            }
        }

        #[test]
        fn timestamp_extender_recovers_a_random_walk(
            start in any::<u32>(),
            steps in proptest::collection::vec(-1_000_000i64..2_000_000_000, 1..500),
        ) {
            let mut extender = TimestampExtender::new();
            let mut truth = i64::from(start);
            prop_assert_eq!(extender.extend(RtpTimestamp(start)), truth);
            for step in steps {
                truth += step;
                prop_assert_eq!(extender.extend(RtpTimestamp(truth.rem_euclid(1 << 32) as u32)), truth);
            }
        }

        #[test]
        fn rescale_round_trip_is_within_a_tick_of_the_coarser_clock(
            ticks in -(1i64 << 40)..(1i64 << 40),
            from in prop::sample::select(vec![8_000u32, 16_000, 44_100, 48_000, 90_000, 1_000, 1]),
            to in prop::sample::select(vec![8_000u32, 16_000, 44_100, 48_000, 90_000, 1_000_000]),
        ) {
            let time = MediaTime::new(ticks, from).unwrap();
            let there = time.rescale(to).unwrap();
            let back = there.rescale(from).unwrap();
            // Each rounding is at most half a tick of its clock: within one tick when
            // `to` is finer than `from`, within one tick of the coarser clock otherwise.
            let round_trip_error = i128::from((back.ticks() - ticks).abs());
            prop_assert!(2 * round_trip_error * i128::from(to) <= i128::from(from) + i128::from(to));
            if to >= from {
                prop_assert!(round_trip_error <= 1);
            }
            // Rounded to nearest: never more than half a tick of `to` away from the truth.
            let error = i128::from(there.ticks()) * i128::from(from) - i128::from(ticks) * i128::from(to);
            prop_assert!(2 * error.abs() <= i128::from(from));
        }

        #[test]
        fn duration_round_trip_is_within_a_tick(nanos in 0u64..(1 << 50), rate in 1u32..200_000) {
            let duration = Duration::from_nanos(nanos);
            let time = MediaTime::from_duration(duration, rate).unwrap();
            let back = time.to_duration();
            let tick = 1e9 / f64::from(rate);
            prop_assert!((back.as_nanos() as f64 - nanos as f64).abs() <= tick / 2.0 + 1.0);
        }

        #[test]
        fn wrapping_diff_is_antisymmetric(a in any::<u16>(), b in any::<u16>(), x in any::<u32>(), y in any::<u32>()) {
            prop_assert_eq!(SeqNo(a).wrapping_diff(SeqNo(b)), SeqNo(b).wrapping_diff(SeqNo(a)).wrapping_neg());
            prop_assert_eq!(
                RtpTimestamp(x).wrapping_diff(RtpTimestamp(y)),
                RtpTimestamp(y).wrapping_diff(RtpTimestamp(x)).wrapping_neg()
            );
            // Of two different values exactly one is newer.
            prop_assert_eq!(SeqNo(a).is_newer_than(SeqNo(b)) || SeqNo(b).is_newer_than(SeqNo(a)), a != b);
            prop_assert!(!(SeqNo(a).is_newer_than(SeqNo(b)) && SeqNo(b).is_newer_than(SeqNo(a))));
            prop_assert_eq!(RtpTimestamp(x).is_newer_than(RtpTimestamp(y)) || RtpTimestamp(y).is_newer_than(RtpTimestamp(x)), x != y);
        }

        #[test]
        fn ordering_matches_real_time(a in any::<i64>(), ra in 1u32.., b in any::<i64>(), rb in 1u32..) {
            let (ta, tb) = (MediaTime::new(a, ra).unwrap(), MediaTime::new(b, rb).unwrap());
            prop_assert_eq!(ta.cmp(&tb), tb.cmp(&ta).reverse());
            prop_assert_eq!(ta == tb, i128::from(a) * i128::from(rb) == i128::from(b) * i128::from(ra));
        }
    }
}
