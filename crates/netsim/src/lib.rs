//! A deterministic, seeded, sans-IO network emulator for tincan's tests, labs and demo.
//!
//! A [`Link`] is one direction of a network: packets go in with [`Link::send`] and come out
//! of [`Link::poll`] once their delivery time has come. A [`Path`] pairs two links for a
//! call. Impairments, in the order a packet meets them: scheduled outages and loss
//! (Bernoulli and Gilbert-Elliott) at entry; a bottleneck with a capacity (optionally
//! following a trace) and a drop-tail queue limited in bytes and/or milliseconds; then
//! propagation delay, normal jitter, heavy-tailed spikes and a reorder knob; then
//! duplication. [`Counters`] say what was delayed, dropped (by cause), reordered and
//! duplicated.
//!
//! Sans-IO: the crate never reads the clock, opens sockets or spawns threads. Time is a
//! [`std::time::Instant`] passed in; the first one a link sees is its epoch, the zero of
//! outages and capacity traces. The same seed and the same calls give the same output bit
//! for bit on every platform (the random numbers use only exactly-rounded arithmetic).
//!
//! Profiles: [`Profile::named`] (`perfect`, `good`, `wifi`, `4g`, `lossy-20`, `bursty-30`,
//! `congested`, `satellite`, `extreme-80`) or a TOML/JSON file ([`Profile::from_file`]),
//! whose format is documented in `docs/NETSIM.md`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_netsim::{Link, LinkConfig, Poll};
//!
//! let config = LinkConfig { delay_ms: 40.0, loss: 0.1, ..LinkConfig::default() };
//! let mut link = Link::new(config, 42).unwrap();
//! let start = Instant::now(); // the caller owns the clock; tests may make instants up
//!
//! for i in 0..100u32 {
//!     link.send(i.to_be_bytes().to_vec(), 4, start + Duration::from_millis(u64::from(i) * 20));
//! }
//! let mut delivered = 0;
//! let mut now = start;
//! loop {
//!     match link.poll(now) {
//!         Poll::Deliver(d) => {
//!             assert_eq!(d.delay(), Duration::from_millis(40));
//!             delivered += 1;
//!         }
//!         Poll::Timeout(next) => now = next, // a real driver would sleep until `next`
//!         Poll::Idle => break,
//!     }
//! }
//! let c = link.counters();
//! assert_eq!(delivered + c.dropped_loss, 100);
//! ```
//!
//! A user's own network, from a profile file (the format is in `docs/NETSIM.md`):
//!
//! ```
//! use tincan_netsim::{Direction, NetsimError, Path, Profile};
//!
//! let profile = Profile::from_toml_str(
//!     r#"
//!     name = "hotel"
//!     [link]
//!     delay_ms = 60.0
//!     loss = 0.03
//!     capacity_bps = 1_000_000.0
//!     queue_limit_ms = 250.0
//!     "#,
//! )?;
//! let mut path = Path::<Vec<u8>>::new(&profile, 1)?;
//! path.send(Direction::AToB, vec![1, 2, 3], 3, std::time::Instant::now());
//!
//! // Mistakes are typed errors that name the field.
//! let err = Profile::from_toml_str("[link]\nloss = 1.5").unwrap_err();
//! assert!(matches!(err, NetsimError::InvalidProbability { value, .. } if value == 1.5));
//! # Ok::<(), NetsimError>(())
//! ```

mod config;
mod error;
mod link;
mod path;
mod profile;
mod rng;

pub use config::{CapacityStep, DelayStep, GilbertElliott, LinkConfig, MAX_DURATION_MS, Outage};
pub use error::NetsimError;
pub use link::{Counters, Delivery, JITTER_SIGMAS, Link, Poll};
pub use path::{Direction, Path};
pub use profile::Profile;

/// Compiles and runs the Rust examples of `docs/NETSIM.md` as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/NETSIM.md")]
pub struct NetsimMdDoctests;
