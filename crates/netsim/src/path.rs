//! A two-way path for a call.

use std::time::Instant;

use crate::rng::splitmix64;
use crate::{Link, LinkConfig, NetsimError, Poll, Profile};

/// Which way a packet travels on a [`Path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From endpoint a to endpoint b.
    AToB,
    /// From endpoint b to endpoint a.
    BToA,
}

/// Two independent [`Link`]s, one per direction, as a call sees the network.
#[derive(Debug)]
pub struct Path<T> {
    a_to_b: Link<T>,
    b_to_a: Link<T>,
}

impl<T> Path<T> {
    /// A path following `profile`, seeded. Each direction gets its own random streams,
    /// derived from `seed`.
    ///
    /// # Errors
    ///
    /// The first invalid value of either direction.
    pub fn new(profile: &Profile, seed: u64) -> Result<Self, NetsimError> {
        Self::from_configs(profile.a_to_b().clone(), profile.b_to_a().clone(), seed)
    }

    /// A path from two direction configurations.
    ///
    /// # Errors
    ///
    /// The first invalid value of either direction.
    pub fn from_configs(
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        seed: u64,
    ) -> Result<Self, NetsimError> {
        let mut sm = seed;
        Ok(Self {
            a_to_b: Link::new(a_to_b, splitmix64(&mut sm))?,
            b_to_a: Link::new(b_to_a, splitmix64(&mut sm))?,
        })
    }

    /// Sends a packet one way (see [`Link::send`]).
    pub fn send(&mut self, direction: Direction, packet: T, size_bytes: usize, now: Instant)
    where
        T: Clone,
    {
        self.link_mut(direction).send(packet, size_bytes, now);
    }

    /// Polls one way (see [`Link::poll`]).
    #[must_use = "a delivered packet would be lost"]
    pub fn poll(&mut self, direction: Direction, now: Instant) -> Poll<T> {
        self.link_mut(direction).poll(now)
    }

    /// The earlier of the two directions' next delivery times.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.a_to_b.next_deadline(), self.b_to_a.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One direction.
    pub fn link(&self, direction: Direction) -> &Link<T> {
        match direction {
            Direction::AToB => &self.a_to_b,
            Direction::BToA => &self.b_to_a,
        }
    }

    /// One direction, mutably (e.g. to set its epoch).
    pub fn link_mut(&mut self, direction: Direction) -> &mut Link<T> {
        match direction {
            Direction::AToB => &mut self.a_to_b,
            Direction::BToA => &mut self.b_to_a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn directions_are_independent() {
        let b_to_a = LinkConfig {
            delay_ms: 5.0,
            ..LinkConfig::default()
        };
        let profile = Profile {
            link: LinkConfig {
                delay_ms: 50.0,
                ..LinkConfig::default()
            },
            b_to_a: Some(b_to_a),
            ..Profile::default()
        };
        let mut path = Path::new(&profile, 3).unwrap();
        let t0 = Instant::now();
        path.send(Direction::AToB, 1u8, 1, t0);
        path.send(Direction::BToA, 2u8, 1, t0);
        assert_eq!(path.next_deadline(), Some(t0 + Duration::from_millis(5)));
        assert_eq!(
            path.poll(Direction::AToB, t0),
            Poll::Timeout(t0 + Duration::from_millis(50))
        );
        assert!(matches!(
            path.poll(Direction::BToA, t0 + Duration::from_millis(5)),
            Poll::Deliver(d) if d.packet == 2
        ));
        assert_eq!(path.link(Direction::AToB).counters().sent, 1);
        assert_eq!(path.link(Direction::BToA).counters().delivered, 1);
    }

    #[test]
    fn directions_draw_different_randomness() {
        let profile = Profile::named("lossy-20").unwrap();
        let mut path = Path::new(&profile, 3).unwrap();
        let t0 = Instant::now();
        for i in 0..200u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            path.send(Direction::AToB, i, 1, now);
            path.send(Direction::BToA, i, 1, now);
        }
        let ab = path.link(Direction::AToB).counters().dropped_loss;
        let ba = path.link(Direction::BToA).counters().dropped_loss;
        assert!(ab > 0 && ba > 0);
        let drain = |path: &mut Path<u32>, dir| {
            let mut v = Vec::new();
            while let Poll::Deliver(d) = path.poll(dir, t0 + Duration::from_secs(10)) {
                v.push(d.packet);
            }
            v
        };
        assert_ne!(
            drain(&mut path, Direction::AToB),
            drain(&mut path, Direction::BToA)
        );
    }
}
