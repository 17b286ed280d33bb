//! The packet store: a ring of slots indexed by extended sequence number, and frame
//! detection over it.
//!
//! Each slot remembers the packet that last used it, also after its frame was handed out
//! or dropped (state [`SlotState::Consumed`]): its timestamp and marker still tell where
//! the next frame starts. Payload buffers stay with their slots and are reused, so after
//! warm-up storing a packet does not allocate.

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Nothing yet.
    Empty,
    /// A packet waiting to be part of a frame.
    Present,
    /// A packet without payload (RTP padding): it carries no media, but occupies its
    /// sequence number and ends any frame before it.
    Padding,
    /// A packet whose frame was handed out or dropped; only its metadata is kept.
    Consumed,
}

/// One slot of the ring.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) sequence: i64,
    pub(crate) state: SlotState,
    pub(crate) timestamp: i64,
    pub(crate) marker: bool,
    pub(crate) frame_start: bool,
    pub(crate) picture_start: bool,
    pub(crate) keyframe: bool,
    /// The packet filled a gap that had been NACKed.
    pub(crate) retransmitted: bool,
    /// Its frame is complete and listed in the frame store.
    pub(crate) in_frame: bool,
    pub(crate) payload: Vec<u8>,
}

/// A run of packets that makes up one complete frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameSpan {
    pub(crate) first: i64,
    pub(crate) last: i64,
}

/// The ring.
#[derive(Debug, Clone)]
pub(crate) struct PacketRing {
    slots: Vec<Slot>,
    /// Slots in state `Present` or `Padding`.
    held: usize,
    /// Largest payload: a slot's buffer grows to it at once, so it grows only once.
    max_payload: usize,
}

impl PacketRing {
    pub(crate) fn new(capacity: usize, max_payload: usize) -> Self {
        let empty = Slot {
            sequence: i64::MIN,
            state: SlotState::Empty,
            timestamp: 0,
            marker: false,
            frame_start: false,
            picture_start: false,
            keyframe: false,
            retransmitted: false,
            in_frame: false,
            payload: Vec::new(),
        };
        Self {
            slots: vec![empty; capacity],
            held: 0,
            max_payload,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Packets held (present or padding).
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Bytes reserved by payload buffers (grows to the largest payload per slot).
    pub(crate) fn payload_capacity(&self) -> usize {
        self.slots.iter().map(|s| s.payload.capacity()).sum()
    }

    fn index(&self, sequence: i64) -> usize {
        sequence.rem_euclid(self.slots.len() as i64) as usize
    }

    /// The slot of `sequence`, if it holds that packet (in any state but empty).
    pub(crate) fn get(&self, sequence: i64) -> Option<&Slot> {
        let slot = &self.slots[self.index(sequence)];
        (slot.sequence == sequence && slot.state != SlotState::Empty).then_some(slot)
    }

    pub(crate) fn get_mut(&mut self, sequence: i64) -> Option<&mut Slot> {
        let index = self.index(sequence);
        let slot = &mut self.slots[index];
        (slot.sequence == sequence && slot.state != SlotState::Empty).then_some(slot)
    }

    /// Stores a packet in its slot, which the caller has made free (empty, consumed or
    /// older). Returns the slot to fill in.
    pub(crate) fn store(&mut self, sequence: i64, payload: &[u8]) -> &mut Slot {
        let index = self.index(sequence);
        let slot = &mut self.slots[index];
        debug_assert!(!matches!(
            slot.state,
            SlotState::Present | SlotState::Padding
        ));
        slot.sequence = sequence;
        slot.state = if payload.is_empty() {
            SlotState::Padding
        } else {
            SlotState::Present
        };
        slot.payload.clear();
        if slot.payload.capacity() < payload.len() {
            slot.payload
                .reserve_exact(self.max_payload.max(payload.len()));
        }
        slot.payload.extend_from_slice(payload);
        slot.in_frame = false;
        slot.retransmitted = false;
        self.held += 1;
        slot
    }

    /// Marks a held packet consumed (its frame left the buffer, or it was dropped).
    pub(crate) fn consume(&mut self, sequence: i64) {
        if let Some(slot) = self.get_mut(sequence)
            && matches!(slot.state, SlotState::Present | SlotState::Padding)
        {
            slot.state = SlotState::Consumed;
            slot.in_frame = false;
            self.held -= 1;
        }
    }

    /// Empties every slot (stream reset), keeping the payload buffers.
    pub(crate) fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.state = SlotState::Empty;
            slot.sequence = i64::MIN;
            slot.in_frame = false;
        }
        self.held = 0;
    }

    /// Consumes the held packets with sequence numbers in `from..to` and says how many
    /// there were; visits at most one ring's worth of slots.
    pub(crate) fn consume_range(&mut self, from: i64, to: i64) -> u64 {
        if to <= from {
            return 0;
        }
        let held = |slot: &Slot| matches!(slot.state, SlotState::Present | SlotState::Padding);
        let mut consumed = 0;
        if to - from >= self.slots.len() as i64 {
            for slot in &mut self.slots {
                if held(slot) && (from..to).contains(&slot.sequence) {
                    slot.state = SlotState::Consumed;
                    slot.in_frame = false;
                    consumed += 1;
                }
            }
            self.held -= consumed;
        } else {
            for sequence in from..to {
                if self.get(sequence).is_some_and(held) {
                    self.consume(sequence);
                    consumed += 1;
                }
            }
        }
        consumed as u64
    }

    /// The complete frame `sequence` belongs to, if it is complete now and not listed yet.
    ///
    /// Going back from `sequence`, packets of the same timestamp without a marker belong
    /// to the frame; it starts after a packet with a marker, another timestamp, or
    /// padding, after `known_boundary` (the end of the last frame handed out), or at a
    /// packet whose payload says it starts a frame (or a picture, if
    /// `trust_picture_starts`). Going forward, it ends at its marker or before a packet
    /// with another timestamp. Any missing packet on the way means not complete (yet).
    pub(crate) fn complete_frame(
        &self,
        sequence: i64,
        known_boundary: i64,
        trust_picture_starts: bool,
    ) -> Option<FrameSpan> {
        let here = self.get(sequence)?;
        if here.state != SlotState::Present || here.in_frame {
            return None;
        }
        let timestamp = here.timestamp;
        let limit = self.slots.len() as i64;
        let mut first = sequence;
        loop {
            if sequence - first >= limit {
                return None;
            }
            let previous = first - 1;
            match self.get(previous) {
                Some(slot) if slot.state == SlotState::Padding => break,
                Some(slot) if slot.marker || slot.timestamp != timestamp => break,
                Some(slot) if slot.state == SlotState::Present && !slot.in_frame => {
                    first = previous
                }
                // A consumed or listed packet of the same timestamp without a marker: the
                // frame was split by a drop; it cannot be assembled.
                Some(_) => return None,
                None if previous == known_boundary => break,
                None if self.get(first).is_some_and(|s| {
                    s.frame_start || (trust_picture_starts && s.picture_start)
                }) =>
                {
                    break;
                }
                None => return None,
            }
        }
        let mut last = sequence;
        loop {
            if last - first >= limit {
                return None;
            }
            if self.get(last).is_some_and(|s| s.marker) {
                break;
            }
            let next = last + 1;
            match self.get(next) {
                Some(slot) if slot.state == SlotState::Padding => break,
                Some(slot) if slot.timestamp != timestamp => break,
                Some(slot) if slot.state == SlotState::Present && !slot.in_frame => last = next,
                _ => return None,
            }
        }
        Some(FrameSpan { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ring: &mut PacketRing, sequence: i64, timestamp: i64, marker: bool, start: bool) {
        let slot = ring.store(sequence, &[1]);
        slot.timestamp = timestamp;
        slot.marker = marker;
        slot.frame_start = start;
    }

    #[test]
    fn frames_start_after_a_marker_and_end_at_the_next() {
        let mut ring = PacketRing::new(16, 100);
        put(&mut ring, 10, 0, true, false);
        put(&mut ring, 11, 1, false, false);
        put(&mut ring, 13, 1, true, false);
        assert_eq!(
            ring.complete_frame(11, i64::MIN, false),
            None,
            "12 is missing"
        );
        put(&mut ring, 12, 1, false, false);
        let span = ring.complete_frame(12, i64::MIN, false);
        assert_eq!(
            span,
            Some(FrameSpan {
                first: 11,
                last: 13
            })
        );
        // Packet 10 has no known predecessor and no start hint: its frame is unknown.
        assert_eq!(ring.complete_frame(10, i64::MIN, false), None);
        // ...unless the packet before it ended a frame handed out.
        assert_eq!(
            ring.complete_frame(10, 9, false),
            Some(FrameSpan {
                first: 10,
                last: 10
            })
        );
    }

    #[test]
    fn timestamp_changes_padding_and_start_hints_are_boundaries() {
        let mut ring = PacketRing::new(16, 100);
        // A frame whose sender forgot the marker ends where the timestamp changes.
        put(&mut ring, 0, 5, false, true);
        put(&mut ring, 1, 5, false, false);
        assert_eq!(ring.complete_frame(0, i64::MIN, false), None);
        put(&mut ring, 2, 6, true, false);
        assert_eq!(
            ring.complete_frame(0, i64::MIN, false),
            Some(FrameSpan { first: 0, last: 1 })
        );
        assert_eq!(
            ring.complete_frame(2, i64::MIN, false),
            Some(FrameSpan { first: 2, last: 2 })
        );
        // Padding before a packet starts its frame.
        ring.store(3, &[]);
        put(&mut ring, 4, 7, true, false);
        assert_eq!(
            ring.complete_frame(4, i64::MIN, false),
            Some(FrameSpan { first: 4, last: 4 })
        );
        assert_eq!(ring.held(), 5);
        assert_eq!(ring.consume_range(0, 100), 5);
        assert_eq!(ring.held(), 0);
    }

    #[test]
    fn consumed_packets_keep_their_boundaries_and_slots_are_reused() {
        let mut ring = PacketRing::new(4, 100);
        put(&mut ring, 0, 0, true, true);
        ring.consume(0);
        put(&mut ring, 1, 1, true, false);
        assert_eq!(
            ring.complete_frame(1, i64::MIN, false),
            Some(FrameSpan { first: 1, last: 1 })
        );
        // Sequence 4 takes the slot of 0, whose metadata is gone.
        ring.store(4, &[9, 9]);
        assert!(ring.get(0).is_none());
        assert_eq!(ring.get(4).map(|s| s.payload.len()), Some(2));
    }
}
