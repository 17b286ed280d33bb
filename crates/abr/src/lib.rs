//! Congestion control and adaptive bitrate for tincan (issue 7, in progress).

pub mod allocation;
pub mod error;
pub mod pacer;
pub mod types;

pub use error::AbrError;
pub use types::{PacketClass, ProbeCluster, SentPacket};
