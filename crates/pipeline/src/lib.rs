//! Media sessions for tincan (issue 8): a sans-IO audio and video session for one local
//! participant and up to [`MAX_REMOTES`] remotes (1:1 directly, groups through a relay),
//! composed of the engine crates.
//!
//! A [`Session`] is driven like str0m's `Rtc`: the application pushes microphone frames
//! ([`Session::push_audio`], 10 ms each), hands in datagrams and timer expiries
//! ([`Session::handle_input`]), pulls playout audio ([`Session::pull_audio`], 10 ms each:
//! the remotes mixed, see [`mixer`]) and drains [`Session::poll_output`] until it names its
//! next deadline. Remotes are declared with [`Session::add_remote`] (or, by default,
//! accepted on their first packet) and removed with [`Session::remove_remote`]; events
//! report their availability, volume, [`quality`] and the active [`speaker`]. The session
//! never reads the clock and owns no socket or thread. See `docs/PIPELINE.md`.
//!
//! Video ([`SessionConfig::with_video`]): camera pictures go in with
//! [`Session::push_video`], remote pictures come out of [`Session::poll_video_frame`];
//! [`Session::set_camera`], [`Session::set_video_call`] (video ↔ audio) and
//! [`Session::set_remote_video`] (per-remote subscription) switch it, and
//! [`Event::RemoteVideoAvailable`], [`Event::RemoteVideoUnavailable`] and
//! [`Event::RemoteVideoResolution`] report it. The components are in [`video`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_pipeline::{FRAME_SAMPLES, Input, Output, Session, SessionConfig};
//!
//! let t0 = Instant::now();
//! let mut alice = Session::new(SessionConfig::new(1), t0)?;
//! let mut bob = Session::new(SessionConfig::new(2), t0)?;
//! let tone: Vec<i16> = (0..FRAME_SAMPLES)
//!     .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
//!     .collect();
//! let mut heard = [0i16; FRAME_SAMPLES];
//! for step in 0..100u64 {
//!     let now = t0 + Duration::from_millis(10 * step);
//!     alice.push_audio(&tone, now)?;
//!     // A perfect zero-delay network: every datagram goes straight across.
//!     while let Output::Transmit(datagram) = alice.poll_output() {
//!         bob.handle_input(Input::Receive(&datagram), now)?;
//!         alice.recycle(datagram);
//!     }
//!     bob.pull_audio(now, &mut heard)?;
//! }
//! assert!(bob.stats(t0 + Duration::from_secs(1)).packets_received >= 49);
//! assert!(heard.iter().any(|&s| s != 0));
//! # Ok::<(), tincan_pipeline::PipelineError>(())
//! ```

pub mod error;
pub mod mixer;
pub mod quality;
mod receivers;
mod remote;
pub mod session;
pub mod speaker;
pub mod split;
pub mod video;

pub use error::{PipelineError, Result};
pub use quality::NetworkQuality;
pub use session::{
    Event, FRAME_SAMPLES, Input, MAX_REMOTES, Output, PACKET_SAMPLES, RemoteParticipant,
    RemoteStats, SAMPLE_RATE, Session, SessionConfig, SessionStats,
};
pub use video::{RemoteVideoFrame, VideoSessionConfig};
