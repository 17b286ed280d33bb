//! The bounded event queue between the engine's threads and the application.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::event::EngineEvent;

/// The sending side: never blocks; when the application does not keep up, events are
/// dropped and counted.
#[derive(Clone, Debug)]
pub(crate) struct EventSink {
    sender: SyncSender<EngineEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A queue of `capacity` events (at least 16) and its receiving side.
    pub(crate) fn new(capacity: usize) -> (Self, Receiver<EngineEvent>, Arc<AtomicU64>) {
        let (sender, receiver) = sync_channel(capacity.max(16));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            Self {
                sender,
                dropped: Arc::clone(&dropped),
            },
            receiver,
            dropped,
        )
    }

    /// Queues `event`, or counts it dropped when the queue is full. An application that
    /// went away is no error.
    pub(crate) fn send(&self, event: EngineEvent) {
        if let Err(TrySendError::Full(_)) = self.sender.try_send(event) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (sink, receiver, dropped) = EventSink::new(16);
        for _ in 0..20 {
            sink.send(EngineEvent::Disconnected);
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 4);
        assert_eq!(receiver.try_iter().count(), 16);
    }
}
