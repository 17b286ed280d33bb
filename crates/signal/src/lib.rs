//! Call signalling for tincan: the thin layer that turns media sessions into calls people
//! make.
//!
//! - [`protocol`]: the versioned JSON messages (`docs/PROTOCOL.md` documents the wire
//!   format for other implementations), [`parse`] with size, version and
//!   field limits, and [`Envelope::to_json`](protocol::Envelope::to_json).
//! - [`call`]: [`CallMachine`], the sans-IO call state machine of one device: caller and
//!   callee roles, 1:1 and group calls, ring timeout, busy, several devices per user,
//!   keepalives, and the end reasons.
//! - [`transport`]: the [`Transport`] trait, the server's routing rule ([`Router`]) and an
//!   in-memory hub ([`MemoryHub`]) for tests and embedding.
//!
//! Nothing here reads the clock, opens sockets or spawns threads: time comes in as a
//! `now: Instant` argument and the machine answers with envelopes to send, events, and
//! its next deadline.
//!
//! # Example: Alice calls Bob through the in-memory hub
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_signal::call::{CallEvent, CallMachine, CallMachineConfig, CallPhase, CallRequest};
//! use tincan_signal::protocol::{DeviceId, EndReason, Endpoint, MediaType, UserId};
//! use tincan_signal::transport::{MemoryHub, MemoryTransport, flush, receive_all};
//! use tincan_signal::TransportError;
//!
//! /// One turn of a device: take in what arrived, send what it has to say.
//! fn turn(
//!     machine: &mut CallMachine,
//!     link: &mut MemoryTransport,
//!     events: &mut Vec<CallEvent>,
//!     now: Instant,
//! ) -> Result<(), TransportError> {
//!     receive_all(machine, link, now)?;
//!     flush(machine, link, events)?;
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice_id = Endpoint::new(UserId::new("alice")?, DeviceId::new("laptop")?);
//! let bob_id = Endpoint::new(UserId::new("bob")?, DeviceId::new("phone")?);
//! let hub = MemoryHub::new();
//! let mut alice_link = hub.connect(alice_id.clone());
//! let mut bob_link = hub.connect(bob_id.clone());
//! let mut alice = CallMachine::new(CallMachineConfig::new(alice_id, 1))?;
//! let mut bob = CallMachine::new(CallMachineConfig::new(bob_id.clone(), 2))?;
//! let (mut alice_events, mut bob_events) = (Vec::new(), Vec::new());
//! let start = Instant::now();
//!
//! // Alice calls; Bob's device rings.
//! let request = CallRequest::new(vec![bob_id.user.clone()], MediaType::Audio);
//! let call_id = alice.call(request, start)?;
//! turn(&mut alice, &mut alice_link, &mut alice_events, start)?;
//! turn(&mut bob, &mut bob_link, &mut bob_events, start)?;
//! assert_eq!(bob.phase(), CallPhase::Ringing);
//! assert!(matches!(&bob_events[0], CallEvent::CallReceived { caller, .. } if caller.as_str() == "alice"));
//!
//! // Bob accepts; Alice confirms; the call begins on both sides.
//! let answered = start + Duration::from_secs(3);
//! bob.accept(answered)?;
//! turn(&mut bob, &mut bob_link, &mut bob_events, answered)?;
//! turn(&mut alice, &mut alice_link, &mut alice_events, answered)?;
//! turn(&mut bob, &mut bob_link, &mut bob_events, answered)?;
//! assert_eq!((alice.phase(), bob.phase()), (CallPhase::Active, CallPhase::Active));
//!
//! // A minute later Alice hangs up; Bob's call ends too.
//! let later = answered + Duration::from_secs(60);
//! alice.hang_up(later)?;
//! turn(&mut alice, &mut alice_link, &mut alice_events, later)?;
//! turn(&mut bob, &mut bob_link, &mut bob_events, later)?;
//! assert!(bob_events.iter().any(|e| matches!(e,
//!     CallEvent::CallEnds { call_id: id, reason: EndReason::HangUp, duration }
//!         if *id == call_id && *duration == Duration::from_secs(60))));
//! # Ok(())
//! # }
//! ```

pub mod call;
pub mod error;
pub mod protocol;
pub mod transport;

pub use call::{
    CallEvent, CallMachine, CallMachineConfig, CallPhase, CallRequest, CallStats, Output,
};
pub use error::{CallError, ProtocolError, TransportError};
pub use protocol::{Envelope, Message, parse};
pub use transport::{MemoryHub, MemoryTransport, Router, Transport};
