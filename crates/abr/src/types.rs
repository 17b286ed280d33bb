//! Types shared by the controller, the pacer and the allocation.

use std::time::Instant;

/// What a packet carries, which decides its place in the pacer's queue: audio and
/// retransmissions go first, padding last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PacketClass {
    /// Audio (and its redundancy).
    Audio,
    /// A retransmission (RTX) of a lost packet.
    Retransmission,
    /// Video media.
    Video,
    /// Video forward error correction.
    Fec,
    /// Padding, sent only to probe for capacity.
    Padding,
}

/// A request to send a burst of packets at `bitrate_bps` to measure whether the path
/// carries it: the pacer sends at least `min_packets` packets and `min_bytes` bytes at that
/// rate, each tagged with `id` so that feedback about them can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    /// Identifies the cluster in [`SentPacket::probe_cluster`].
    pub id: u32,
    /// Rate to send the cluster at.
    pub bitrate_bps: u64,
    /// Fewest packets the cluster must contain.
    pub min_packets: u32,
    /// Fewest bytes the cluster must contain.
    pub min_bytes: u32,
}

/// A packet as it left the sender, for the controller's send history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// The transport-wide sequence number written in the packet's transport-cc extension.
    pub transport_seq: u16,
    /// Size on the wire (RTP header and payload, and padding), in bytes.
    pub size_bytes: usize,
    /// When the pacer sent it.
    pub send_time: Instant,
    /// The probe cluster it belongs to, if it was sent for a probe.
    pub probe_cluster: Option<u32>,
    /// What it carried.
    pub class: PacketClass,
}
