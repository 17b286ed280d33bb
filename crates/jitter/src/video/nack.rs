//! The list of missing packets to ask the sender for (RTCP generic NACK, RFC 4585).
//!
//! A sequence gap adds its packets; each is requested once its reorder wait is over, then
//! again every retry interval (from the RTT) until it arrives, it is too old to matter,
//! or it ran out of retries. The list is bounded: a gap larger than what is left of the
//! bound means NACK cannot repair it, and the owner asks for a keyframe instead.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One missing packet.
#[derive(Debug, Clone, Copy)]
struct Entry {
    sequence: i64,
    /// When it may next be requested.
    due: Instant,
    /// Requests sent so far.
    sent: u32,
}

/// What [`NackList::add_gap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GapOutcome {
    /// The gap's packets are listed.
    Listed,
    /// The list would have overflowed: it was cleared.
    Overflow,
}

/// Missing packets by extended sequence number, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct NackList {
    entries: VecDeque<Entry>,
    max_entries: usize,
    max_retries: u32,
    reorder_wait: Duration,
}

impl NackList {
    pub(crate) fn new(max_entries: usize, max_retries: u32, reorder_wait: Duration) -> Self {
        Self {
            entries: VecDeque::with_capacity(max_entries),
            max_entries,
            max_retries,
            reorder_wait,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Packets `from..to` (extended, `from < to`, all newer than any listed) went missing
    /// at `now`.
    pub(crate) fn add_gap(&mut self, from: i64, to: i64, now: Instant) -> GapOutcome {
        let count = usize::try_from(to - from).unwrap_or(usize::MAX);
        if count > self.max_entries - self.entries.len() {
            self.entries.clear();
            return GapOutcome::Overflow;
        }
        let due = now + self.reorder_wait;
        self.entries.extend((from..to).map(|sequence| Entry {
            sequence,
            due,
            sent: 0,
        }));
        GapOutcome::Listed
    }

    /// A packet arrived: removes it; says whether it had been requested (a
    /// retransmission, or a reordered packet we asked for in vain) or was listed.
    pub(crate) fn remove(&mut self, sequence: i64) -> Option<u32> {
        let index = self
            .entries
            .binary_search_by_key(&sequence, |e| e.sequence)
            .ok()?;
        self.entries.remove(index).map(|e| e.sent)
    }

    /// Forgets packets older than `sequence`.
    pub(crate) fn drop_before(&mut self, sequence: i64) {
        let keep_from = self.entries.partition_point(|e| e.sequence < sequence);
        self.entries.drain(..keep_from);
    }

    /// Earliest time an entry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.entries.iter().map(|e| e.due).min()
    }

    /// Collects the sequence numbers due at `now` into `out` (cleared first), moving
    /// each to its next retry at `now + retry_interval`, and drops entries that ran out
    /// of retries, noting the newest of those in `gave_up_newest`.
    pub(crate) fn take_due(
        &mut self,
        now: Instant,
        retry_interval: Duration,
        out: &mut Vec<u16>,
        gave_up_newest: &mut Option<i64>,
    ) {
        out.clear();
        let max_retries = self.max_retries;
        self.entries.retain_mut(|entry| {
            if entry.due > now {
                return true;
            }
            if entry.sent >= max_retries {
                *gave_up_newest = Some(entry.sequence);
                return false;
            }
            out.push(entry.sequence as u16);
            entry.sent += 1;
            entry.due = now + retry_interval;
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_retry_until_they_give_up() {
        let start = Instant::now();
        let mut list = NackList::new(10, 2, Duration::ZERO);
        assert_eq!(list.add_gap(65_535, 65_538, start), GapOutcome::Listed);
        let mut out = Vec::new();
        let mut gave_up = None;
        list.take_due(start, Duration::from_millis(50), &mut out, &mut gave_up);
        // Sequence numbers come out wrapped to 16 bits.
        assert_eq!(out, vec![65_535, 0, 1]);
        assert_eq!(list.next_due(), Some(start + Duration::from_millis(50)));
        list.take_due(start, Duration::from_millis(50), &mut out, &mut gave_up);
        assert!(out.is_empty());
        assert_eq!(list.remove(65_536), Some(1));
        let later = start + Duration::from_millis(50);
        list.take_due(later, Duration::from_millis(50), &mut out, &mut gave_up);
        assert_eq!(out, vec![65_535, 1]);
        let last = later + Duration::from_millis(50);
        list.take_due(last, Duration::from_millis(50), &mut out, &mut gave_up);
        assert!(out.is_empty());
        assert_eq!(gave_up, Some(65_537));
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn overflow_clears_and_old_entries_go() {
        let start = Instant::now();
        let mut list = NackList::new(4, 10, Duration::ZERO);
        assert_eq!(list.add_gap(10, 13, start), GapOutcome::Listed);
        assert_eq!(list.add_gap(20, 22, start), GapOutcome::Overflow);
        assert_eq!(list.len(), 0);
        list.add_gap(30, 34, start);
        list.drop_before(32);
        assert_eq!(list.len(), 2);
        assert_eq!(list.remove(31), None);
        assert_eq!(list.remove(33), Some(0));
    }
}
