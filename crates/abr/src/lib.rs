//! Congestion control and adaptive bitrate for tincan: transport-wide feedback, a GCC-style
//! delay- and loss-based estimator with probing, REMB, a pacer and the audio/video
//! allocation. Sans-IO: time comes in as an [`Instant`](std::time::Instant) argument, and
//! each component answers with output and its next deadline.
//!
//! # The loop
//!
//! The sender numbers every packet with the transport-wide sequence extension and tells the
//! [`SendSideController`] about it as it leaves the pacer ([`SendSideController::on_packet_sent`]).
//! The receiver records arrivals in a [`FeedbackGenerator`], which writes transport-cc
//! feedback every [`FeedbackConfig::interval`] (50 ms by default). The sender parses it
//! ([`tincan_rtp::rtcp::RtcpCompound`]) and hands it to
//! [`SendSideController::on_transport_feedback`], which matches reports with its send history
//! and runs:
//!
//! - the **acknowledged-bitrate** estimator ([`acknowledged`]): what the receiver got;
//! - the **delay-based** detector ([`delay`]): packet groups of 5 ms, the trendline filter
//!   over 20 groups and the adaptive overuse threshold, then **AIMD** control ([`aimd`]);
//! - the **loss-based** controller ([`loss`]);
//! - the **probe** estimator and controller ([`probe`]), whose clusters the pacer pulls with
//!   [`SendSideController::poll_probe`];
//! - **ALR** detection ([`alr`]) from what was sent against the target.
//!
//! The target is the minimum of the delay-based estimate, the loss cap and a peer's REMB,
//! within the configured bounds; the pacer runs at [`controller::PACING_FACTOR`] × target.
//! For peers without transport-cc, [`RembEstimator`] runs the same delay machinery on the
//! receive side with abs-send-time and sends REMB.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_abr::{
//!     ControllerConfig, FeedbackConfig, FeedbackGenerator, PacketClass, SendSideController,
//!     SentPacket,
//! };
//! use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};
//!
//! let t0 = Instant::now();
//! let mut sender = SendSideController::new(ControllerConfig::default(), t0)?;
//! let mut receiver = FeedbackGenerator::new(FeedbackConfig::default())?;
//! let mut rtcp = Vec::new();
//! for i in 0..200u16 {
//!     let now = t0 + Duration::from_millis(u64::from(i) * 10);
//!     sender.on_packet_sent(SentPacket {
//!         transport_seq: i,
//!         size_bytes: 1000,
//!         send_time: now,
//!         probe_cluster: None,
//!         class: PacketClass::Video,
//!     });
//!     // A 50 ms path with room to spare.
//!     receiver.on_packet_received(i, now + Duration::from_millis(50));
//!     rtcp.clear();
//!     if receiver.poll_feedback(now + Duration::from_millis(50), &mut rtcp)? {
//!         let at = now + Duration::from_millis(100);
//!         for packet in RtcpCompound::parse(&rtcp)?.packets() {
//!             if let Ok(RtcpPacket::TransportCc(feedback)) = packet {
//!                 sender.on_transport_feedback(&feedback, at)?;
//!             }
//!         }
//!     }
//! }
//! // 800 kbps got through without queuing: the target grew from its 300 kbps start.
//! assert!(sender.target_bps() > 300_000);
//! assert_eq!(sender.pacing_bps(), sender.target_bps() * 5 / 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where it follows GCC and where it differs
//!
//! The design follows libwebrtc's goog_cc; the constants keep GCC's values and say so where
//! they are defined. Differences, and why (measured on `tincan lab abr` and
//! `tests/netsim.rs`; `docs/ABR.md` has the figures):
//!
//! - **Decrease from the queue's drain rate**: on overuse the cut applies to the receive
//!   rate over the last 125 ms ([`acknowledged::RecentRate`]) when it shows a sharp drop
//!   (below 70% of the acknowledged estimate), else to the higher of the two, where GCC
//!   uses the smoothed acknowledged estimate, which lags a sudden capacity drop while the
//!   queue overflows and lags below the rate right after a probe raised it.
//! - **Decrease factor** [`aimd::BETA`] = 0.9 (GCC 0.85) minus the measured queuing delay
//!   over 4 s ([`aimd::QUEUE_DRAIN_TIME_US`]), so ordinary cuts keep more of the rate and
//!   a 300 ms queue left by a capacity drop drains in under 2 s.
//! - **Periodic probes while not application limited** ([`probe::ProbeKind::Periodic`]):
//!   when the link capacity estimate is unknown or no decrease came for 5 s, at most every
//!   5 s, 40 ms at 2× the estimate; an unsaturated result counts fully, a saturated one
//!   only half way (on a shared link it measures the burst's share, not free capacity).
//!   GCC probes periodically only while application limited.
//! - **Probe results only raise** the delay-based estimate; GCC also lets a low result lower
//!   it, which a single lossy probe can do wrongly while overuse already handles decreases.
//! - **Loss-based control** is GCC's classic one (2%/10% thresholds, cut by half the loss
//!   fraction) kept as a cap that exists only after heavy loss ([`loss`]), and losses of
//!   packets sent before the last delay-based decrease do not count (that decrease already
//!   answered the congestion that dropped them). GCC's loss-based v2 is not implemented.
//! - **No congestion window** (GCC's optional outstanding-data pushback).
//! - **Feedback timeout**: without feedback for 1 s while sending, the target is cut to 80%
//!   per second, where GCC acts after about three feedback intervals.
//! - **RTT** comes from RTCP when given ([`SendSideController::on_rtt`]), else from the
//!   feedback (send time of the newest reported packet to the feedback's arrival, smoothed),
//!   which includes up to one feedback interval.
//! - **Acknowledged rate**: GCC's Bayesian estimator, plus staleness after 2 s of silence.
//! - **REMB** ([`RembEstimator`]) updates its AIMD control at most every 25 ms (GCC's
//!   remote estimator: per packet), and sends a REMB every second or 200 ms after a fall of
//!   more than 3%.
//!
//! `docs/ABR.md` has the measured behaviour on the RMCAT cases.
//!
//! # Memory
//!
//! The send history ([`controller::SEND_HISTORY_LEN`] packets) and the receive window
//! ([`feedback::RECEIVE_WINDOW`]) are fixed rings allocated at construction; reports about
//! packets that fell out of them are counted and ignored. Feedback processing reuses its
//! scratch space, so it does not allocate per packet after warm-up.

pub mod acknowledged;
pub mod aimd;
pub mod allocation;
pub mod alr;
pub mod controller;
pub mod delay;
pub mod error;
pub mod feedback;
pub mod loss;
pub mod pacer;
pub mod probe;
pub mod remb;
pub mod types;

pub use controller::{ControllerConfig, ControllerStats, SendSideController};
pub use delay::BandwidthUsage;
pub use error::AbrError;
pub use feedback::{FeedbackConfig, FeedbackGenerator, FeedbackStats};
pub use remb::{RembConfig, RembEstimator};
pub use types::{PacketClass, ProbeCluster, SentPacket};
