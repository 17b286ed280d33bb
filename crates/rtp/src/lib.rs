//! RTP and RTCP for tincan: packets, header extensions, compound RTCP feedback, and
//! payload formats.
//!
//! Everything here is sans-IO and allocation-free on the parse path: parsers return views
//! borrowing the input ([`RtpPacket`], [`rtcp::RtcpCompound`]), builders write into a
//! caller's buffer. Every parser returns a typed [`RtpError`] on malformed input and
//! never panics or reads out of bounds (fuzzed by `fuzz/fuzz_targets/rtp_parse.rs` and
//! `rtcp_parse.rs`).
//!
//! - [`packet`]: RTP packets (RFC 3550), CSRCs, padding, header extension blocks;
//! - [`extension`]: RFC 8285 one-byte and two-byte extension elements, the id → kind
//!   map negotiated in SDP, and typed transport-cc, abs-send-time and audio level
//!   (RFC 6464) values;
//! - [`sequence`]: sequence numbers and timestamps unwrapped per SSRC;
//! - [`rtcp`]: compound and reduced-size RTCP: SR, RR, SDES, BYE, generic NACK, PLI,
//!   FIR, REMB, transport-wide congestion control feedback, NTP time and RTT;
//! - [`payload`]: payload formats.
//!
//! # Why not `rtp-types` / `rtcp-types`
//!
//! Both crates were evaluated (rtp-types 0.1.2, rtcp-types 0.3.0) and the packet code
//! here is our own:
//!
//! - `rtp-types` parses the fixed header and hands back the extension block as raw
//!   bytes: RFC 8285 one-byte/two-byte elements, which are most of what we read, were
//!   ours to write anyway; it also pulls in `thiserror` 1 and `smallvec` beside the
//!   workspace's `thiserror` 2.
//! - `rtcp-types` has no REMB; its transport-cc builder takes precomputed deltas and
//!   allocates per packet, where we need one that takes arrival times and reuses its
//!   scratch space; its compound parser checks only the first packet's version.
//! - Owning the code gives one error type with struct-like variants naming the bad
//!   values, which wrapping two other error enums would blur.
//!
//! The formats are small (a few hundred lines each); the tests check them against the
//! RFC examples, by build → parse property tests, and by fuzzing.
//!
//! ```
//! use tincan_rtp::extension::{ExtensionKind, ExtensionMap, KnownExtensions, TransportCc, Extension};
//! use tincan_rtp::{RtpPacket, RtpPacketBuilder};
//!
//! let map = ExtensionMap::new().with(3, ExtensionKind::TransportCc)?;
//! let tcc = TransportCc(42).to_bytes();
//! let extensions = [Extension::new(3, &tcc)];
//! let mut buf = [0u8; 1500];
//! let len = RtpPacketBuilder::new(111, 1000, 48_000, 0xABCD)
//!     .marker(true)
//!     .extensions(&extensions)
//!     .payload(b"opus")
//!     .write(&mut buf)?;
//!
//! let packet = RtpPacket::parse(&buf[..len])?;
//! assert_eq!(packet.payload(), b"opus");
//! assert_eq!(KnownExtensions::read(&packet, &map)?.transport_cc, Some(TransportCc(42)));
//! # Ok::<(), tincan_rtp::RtpError>(())
//! ```

pub mod error;
pub mod extension;
pub mod packet;
pub mod payload;
pub mod rtcp;
pub mod sequence;

pub use error::{Result, RtpError};
pub use packet::{RtpPacket, RtpPacketBuilder};
