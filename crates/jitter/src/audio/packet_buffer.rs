//! The bounded store of packets waiting to be decoded, in sequence order.
//!
//! Storage is allocated once: `max_packets` payload buffers of `max_payload_bytes` each go
//! round a free list, so inserting never allocates. Lookups are linear over a sorted
//! vector: the buffer holds tens of packets, where a scan beats any tree.

use std::time::Instant;

/// One stored packet.
#[derive(Debug)]
pub(crate) struct StoredPacket {
    /// Extended (64-bit) sequence number.
    pub(crate) sequence: i64,
    /// Extended RTP timestamp.
    pub(crate) timestamp: i64,
    /// Duration in RTP ticks.
    pub(crate) duration: i64,
    pub(crate) arrival: Instant,
    pub(crate) payload: Vec<u8>,
}

/// Where an insert went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    Inserted,
    Duplicate,
    /// Inserted after dropping the oldest packet to make room.
    InsertedAfterOverflow,
}

#[derive(Debug)]
pub(crate) struct PacketBuffer {
    /// Sorted by `sequence`, oldest first.
    packets: Vec<StoredPacket>,
    free: Vec<Vec<u8>>,
    capacity: usize,
}

impl PacketBuffer {
    pub(crate) fn new(capacity: usize, max_payload_bytes: usize) -> Self {
        Self {
            packets: Vec::with_capacity(capacity),
            free: (0..capacity)
                .map(|_| Vec::with_capacity(max_payload_bytes))
                .collect(),
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Stores a packet, keeping sequence order. On overflow the oldest packet goes.
    pub(crate) fn insert(
        &mut self,
        sequence: i64,
        timestamp: i64,
        duration: i64,
        arrival: Instant,
        payload: &[u8],
    ) -> Stored {
        let position = match self.packets.binary_search_by_key(&sequence, |p| p.sequence) {
            Ok(_) => return Stored::Duplicate,
            Err(position) => position,
        };
        let mut outcome = Stored::Inserted;
        let mut position = position;
        if self.packets.len() >= self.capacity {
            if position == 0 {
                // Older than everything held in a full buffer: it is the one to drop.
                return Stored::InsertedAfterOverflow;
            }
            let oldest = self.packets.remove(0);
            self.free.push(oldest.payload);
            position -= 1;
            outcome = Stored::InsertedAfterOverflow;
        }
        let mut buffer = self.free.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        self.packets.insert(
            position,
            StoredPacket {
                sequence,
                timestamp,
                duration,
                arrival,
                payload: buffer,
            },
        );
        outcome
    }

    /// The oldest packet.
    pub(crate) fn first(&self) -> Option<&StoredPacket> {
        self.packets.first()
    }

    /// The newest packet.
    #[cfg(test)]
    pub(crate) fn last(&self) -> Option<&StoredPacket> {
        self.packets.last()
    }

    /// The packet with this sequence number.
    pub(crate) fn get(&self, sequence: i64) -> Option<&StoredPacket> {
        self.packets
            .binary_search_by_key(&sequence, |p| p.sequence)
            .ok()
            .map(|i| &self.packets[i])
    }

    /// Whether a packet with this sequence number is held.
    pub(crate) fn contains(&self, sequence: i64) -> bool {
        self.get(sequence).is_some()
    }

    /// Removes the oldest packet, handing its payload buffer back to the free list after
    /// `use_payload` has seen it.
    pub(crate) fn pop_first_with<R>(
        &mut self,
        use_payload: impl FnOnce(&StoredPacket) -> R,
    ) -> Option<R> {
        if self.packets.is_empty() {
            return None;
        }
        let packet = self.packets.remove(0);
        let result = use_payload(&packet);
        self.free.push(packet.payload);
        Some(result)
    }

    /// Drops every packet whose sequence number is below `sequence`; returns how many.
    #[cfg(test)]
    pub(crate) fn drop_before(&mut self, sequence: i64) -> usize {
        let count = self.packets.partition_point(|p| p.sequence < sequence);
        for packet in self.packets.drain(..count) {
            self.free.push(packet.payload);
        }
        count
    }

    /// Drops everything; returns how many.
    pub(crate) fn clear(&mut self) -> usize {
        let count = self.packets.len();
        for packet in self.packets.drain(..) {
            self.free.push(packet.payload);
        }
        count
    }

    /// The end (timestamp + duration) of the newest packet's audio.
    pub(crate) fn end_timestamp(&self) -> Option<i64> {
        self.packets
            .iter()
            .map(|p| p.timestamp.saturating_add(p.duration))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_duplicates_and_the_oldest() {
        let now = Instant::now();
        let mut b = PacketBuffer::new(3, 10);
        assert_eq!(b.insert(5, 500, 10, now, &[5]), Stored::Inserted);
        assert_eq!(b.insert(3, 300, 10, now, &[3]), Stored::Inserted);
        assert_eq!(b.insert(5, 500, 10, now, &[5]), Stored::Duplicate);
        assert_eq!(b.insert(4, 400, 10, now, &[4]), Stored::Inserted);
        assert_eq!(b.first().map(|p| p.sequence), Some(3));
        assert_eq!(
            b.insert(6, 600, 10, now, &[6]),
            Stored::InsertedAfterOverflow
        );
        assert_eq!(b.first().map(|p| p.sequence), Some(4));
        assert_eq!(
            b.insert(1, 100, 10, now, &[1]),
            Stored::InsertedAfterOverflow
        );
        assert!(!b.contains(1));
        assert_eq!(b.len(), 3);
        assert_eq!(b.end_timestamp(), Some(610));
        assert_eq!(b.pop_first_with(|p| p.payload[0]), Some(4));
        assert_eq!(b.drop_before(6), 1);
        assert_eq!(b.last().map(|p| p.sequence), Some(6));
        assert_eq!(b.clear(), 1);
        assert!(b.is_empty());
        assert_eq!(b.free.len(), 3);
    }
}
