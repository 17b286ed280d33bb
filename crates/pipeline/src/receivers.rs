//! The send side's view of the receivers of our stream: through a relay every receiver
//! sends its own transport-cc feedback, report blocks and REMB about the same packets, so
//! each gets its own congestion controller (keyed by the RTCP sender SSRC), fed with every
//! packet sent. The send target is the minimum over the receivers heard from within
//! [`RECEIVER_TIMEOUT`]; the audio policy's loss report comes from the worst of them.

use std::time::{Duration, Instant};

use tincan_abr::{ControllerConfig, ProbeCluster, SendSideController, SentPacket};
use tincan_fec::policy::LossReport;
use tincan_rtp::rtcp::TwccFeedback;

use crate::error::Result;

/// A receiver silent (no feedback, no report) for this long no longer limits the target.
pub const RECEIVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Most receivers tracked: the 15 remotes of a 16-party call.
pub const MAX_RECEIVERS: usize = 15;
/// Most transport-cc statuses kept per receiver between policy updates: 10 s of packets at
/// 50 a second with copies, far more than one policy interval holds.
pub const MAX_STATUSES: usize = 1024;
/// Fewest transport-cc statuses that make a loss report: fewer say nothing about the rate.
pub const MIN_REPORT_PACKETS: usize = 10;
/// Each controller numbers its probe clusters in a range of 2^20 ids of its own.
const PROBE_ID_BITS: u32 = 20;

/// One receiver of our stream.
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) ssrc: u32,
    pub(crate) controller: SendSideController,
    /// Transport-cc statuses since the last policy update (true = arrived), bounded.
    pub(crate) statuses: Vec<bool>,
    pub(crate) last_heard: Instant,
    /// RTT from this receiver's report blocks (LSR/DLSR).
    pub(crate) rtt: Option<Duration>,
    /// Fraction lost of its last report block about us.
    pub(crate) loss_reported: f64,
    /// Interarrival jitter of its last report block about us, seconds.
    pub(crate) jitter_reported: f64,
}

/// The receivers (see the module docs).
#[derive(Debug)]
pub(crate) struct Receivers {
    config: ControllerConfig,
    /// The controller of the session's start, fed before anyone gave feedback: the first
    /// receiver takes it over, so that a 1:1 call runs one controller from the first
    /// packet, exactly as before groups.
    initial: Option<SendSideController>,
    list: Vec<Receiver>,
    /// Feedback from senders beyond [`MAX_RECEIVERS`] with none stale to replace.
    pub(crate) refused: u64,
    /// Controllers made after the initial one (their probe id ranges).
    controllers_made: u32,
}

impl Receivers {
    pub(crate) fn new(config: ControllerConfig, now: Instant) -> Result<Self> {
        Ok(Self {
            config,
            initial: Some(SendSideController::new(config, now)?),
            list: Vec::with_capacity(MAX_RECEIVERS),
            refused: 0,
            controllers_made: 0,
        })
    }

    fn is_recent(r: &Receiver, now: Instant) -> bool {
        now.saturating_duration_since(r.last_heard) < RECEIVER_TIMEOUT
    }

    /// The receiver with RTCP sender SSRC `ssrc`, created when new (taking the initial
    /// controller, else a fresh one, else replacing the stalest silent one); `None` when
    /// [`MAX_RECEIVERS`] are all recent.
    pub(crate) fn heard(&mut self, ssrc: u32, now: Instant) -> Result<Option<&mut Receiver>> {
        if let Some(i) = self.list.iter().position(|r| r.ssrc == ssrc) {
            let r = &mut self.list[i];
            r.last_heard = r.last_heard.max(now);
            return Ok(Some(r));
        }
        let slot = if self.list.len() < MAX_RECEIVERS {
            None
        } else {
            let stalest = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, r)| !Self::is_recent(r, now))
                .min_by_key(|(_, r)| r.last_heard)
                .map(|(i, _)| i);
            if stalest.is_none() {
                self.refused += 1;
                return Ok(None);
            }
            stalest
        };
        let controller = match self.initial.take() {
            Some(c) => c,
            None => {
                let mut c = SendSideController::new(self.config, now)?;
                // Probe clusters in a range of their own (the initial controller has 0..).
                self.controllers_made = self.controllers_made.wrapping_add(1);
                c.set_probe_ids_from(self.controllers_made << PROBE_ID_BITS);
                c
            }
        };
        let receiver = Receiver {
            ssrc,
            controller,
            statuses: Vec::with_capacity(MAX_STATUSES),
            last_heard: now,
            rtt: None,
            loss_reported: 0.0,
            jitter_reported: 0.0,
        };
        match slot {
            Some(i) => {
                self.list[i] = receiver;
                Ok(self.list.get_mut(i))
            }
            None => {
                self.list.push(receiver);
                Ok(self.list.last_mut())
            }
        }
    }

    /// Forgets receiver `ssrc` (its participant left).
    pub(crate) fn remove(&mut self, ssrc: u32) {
        self.list.retain(|r| r.ssrc != ssrc);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Receiver> {
        self.list.iter()
    }

    pub(crate) fn get(&self, ssrc: u32) -> Option<&Receiver> {
        self.list.iter().find(|r| r.ssrc == ssrc)
    }

    /// Tells every controller about a packet that left.
    pub(crate) fn on_packet_sent(&mut self, packet: SentPacket) {
        if let Some(c) = &mut self.initial {
            c.on_packet_sent(packet);
        }
        for r in &mut self.list {
            r.controller.on_packet_sent(packet);
        }
    }

    /// Feedback from `sender` about our packets.
    pub(crate) fn on_transport_feedback(
        &mut self,
        sender: u32,
        feedback: &TwccFeedback<'_>,
        now: Instant,
    ) -> Result<()> {
        let Some(r) = self.heard(sender, now)? else {
            return Ok(());
        };
        r.controller.on_transport_feedback(feedback, now)?;
        for (_, arrival) in feedback.packets() {
            if r.statuses.len() < MAX_STATUSES {
                r.statuses.push(arrival.is_some());
            }
        }
        Ok(())
    }

    /// Runs the controllers' timers. The limiting controller's probe clusters go to
    /// `probe` when `can_probe` (the session has padding to send), the others' are
    /// dropped: the one that sets the send rate is the one worth probing for.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        can_probe: bool,
        mut probe: impl FnMut(ProbeCluster),
    ) {
        let limiting = self.limiting_index(now);
        if let Some(c) = &mut self.initial {
            c.handle_timeout(now);
            while let Some(cluster) = c.poll_probe() {
                if can_probe && limiting.is_none() {
                    probe(cluster);
                }
            }
        }
        for (i, r) in self.list.iter_mut().enumerate() {
            r.controller.handle_timeout(now);
            while let Some(cluster) = r.controller.poll_probe() {
                if can_probe && limiting == Some(i) {
                    probe(cluster);
                }
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.initial
            .iter()
            .chain(self.list.iter().map(|r| &r.controller))
            .filter_map(SendSideController::poll_timeout)
            .min()
    }

    /// The controller that sets the send rate: the one with the lowest target among the
    /// receivers heard from recently; else the most recently heard; else the initial one.
    pub(crate) fn limiting(&self, now: Instant) -> Option<&SendSideController> {
        match self.limiting_index(now) {
            Some(i) => self.list.get(i).map(|r| &r.controller),
            None => self.initial.as_ref(),
        }
    }

    /// [`limiting`](Self::limiting)'s receiver in the list (`None`: the initial one).
    fn limiting_index(&self, now: Instant) -> Option<usize> {
        let recent = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, r)| Self::is_recent(r, now))
            .min_by_key(|(_, r)| r.controller.target_bps());
        recent
            .or_else(|| {
                self.list
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, r)| r.last_heard)
            })
            .map(|(i, _)| i)
    }

    /// The worst RTT among recent receivers.
    pub(crate) fn rtt(&self, now: Instant) -> Option<Duration> {
        self.list
            .iter()
            .filter(|r| Self::is_recent(r, now))
            .filter_map(|r| r.rtt)
            .max()
    }

    /// The worst loss reported by a recent receiver's report block.
    pub(crate) fn loss_reported(&self, now: Instant) -> f64 {
        self.list
            .iter()
            .filter(|r| Self::is_recent(r, now))
            .map(|r| r.loss_reported)
            .fold(0.0, f64::max)
    }

    /// The worst jitter reported by a recent receiver, seconds.
    pub(crate) fn jitter_reported(&self, now: Instant) -> f64 {
        self.list
            .iter()
            .filter(|r| Self::is_recent(r, now))
            .map(|r| r.jitter_reported)
            .fold(0.0, f64::max)
    }

    /// Whether any receiver was heard from within [`RECEIVER_TIMEOUT`].
    pub(crate) fn any_recent(&self, now: Instant) -> bool {
        self.list.iter().any(|r| Self::is_recent(r, now))
    }

    /// The loss report of the worst recent receiver (highest loss, then longest bursts)
    /// with at least [`MIN_REPORT_PACKETS`] statuses, with its RTT (reports', else feedback's);
    /// clears every receiver's statuses.
    pub(crate) fn take_loss_report(&mut self, now: Instant) -> Option<LossReport> {
        let mut worst: Option<LossReport> = None;
        for r in &mut self.list {
            if r.statuses.len() >= MIN_REPORT_PACKETS && Self::is_recent(r, now) {
                let lost = r.statuses.iter().filter(|arrived| !**arrived).count();
                let bursts = r.statuses.windows(2).filter(|w| w[0] && !w[1]).count()
                    + usize::from(r.statuses.first() == Some(&false));
                let report = LossReport {
                    loss: lost as f64 / r.statuses.len() as f64,
                    mean_burst: if bursts == 0 {
                        1.0
                    } else {
                        lost as f64 / bursts as f64
                    },
                    rtt: r.rtt.unwrap_or_else(|| r.controller.rtt()),
                };
                let worse =
                    worst.is_none_or(|w| (report.loss, report.mean_burst) > (w.loss, w.mean_burst));
                if worse {
                    worst = Some(report);
                }
            }
            r.statuses.clear();
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_abr::PacketClass;

    #[test]
    fn the_first_receiver_takes_the_initial_controller_and_silence_drops_out() {
        let t0 = Instant::now();
        let mut rs = Receivers::new(ControllerConfig::default(), t0).unwrap();
        for seq in 0..10u16 {
            rs.on_packet_sent(SentPacket {
                transport_seq: seq,
                size_bytes: 100,
                send_time: t0,
                probe_cluster: None,
                class: PacketClass::Audio,
            });
        }
        assert!(rs.limiting(t0).is_some());
        rs.heard(1, t0).unwrap();
        assert!(rs.initial.is_none());
        rs.heard(2, t0).unwrap();
        assert_eq!(rs.iter().count(), 2);
        let later = t0 + RECEIVER_TIMEOUT;
        rs.heard(2, later).unwrap();
        assert!(!Receivers::is_recent(rs.get(1).unwrap(), later));
        assert!(rs.any_recent(later));
        // Beyond the limit: a stale receiver is replaced, else the sender is refused.
        for ssrc in 3..=16 {
            rs.heard(ssrc, later).unwrap();
        }
        assert_eq!(rs.iter().count(), MAX_RECEIVERS);
        assert!(rs.get(1).is_none());
        assert!(rs.heard(99, later).unwrap().is_none());
        assert_eq!(rs.refused, 1);
        rs.remove(2);
        assert!(rs.get(2).is_none());
    }

    #[test]
    fn only_the_limiting_controller_probes_and_each_numbers_its_own_clusters() {
        let t0 = Instant::now();
        let range = |id: u32| id >> PROBE_ID_BITS;
        // Two receivers heard before any timer: the first takes the initial controller
        // (ids from 0), the second gets a fresh one (ids from 1 << PROBE_ID_BITS). At
        // equal targets the first is the limiting one: only its start clusters go out.
        let mut rs = Receivers::new(ControllerConfig::default(), t0).unwrap();
        rs.heard(1, t0).unwrap();
        rs.heard(2, t0).unwrap();
        let mut clusters = Vec::new();
        rs.handle_timeout(t0, true, |c| clusters.push(c));
        assert!(!clusters.is_empty());
        assert!(clusters.iter().all(|c| range(c.id) == 0), "{clusters:?}");
        // Nothing to pad with: nothing goes out, and nothing is left pending either.
        let mut rs = Receivers::new(ControllerConfig::default(), t0).unwrap();
        rs.handle_timeout(t0, false, |c| clusters.push(c));
        assert_eq!(rs.poll_timeout(), None);
        // A fresh controller (the initial one went with a receiver that left) probes in
        // its own range.
        rs.heard(1, t0).unwrap();
        rs.remove(1);
        rs.heard(2, t0).unwrap();
        clusters.clear();
        rs.handle_timeout(t0, true, |c| clusters.push(c));
        assert!(!clusters.is_empty());
        assert!(clusters.iter().all(|c| range(c.id) == 1), "{clusters:?}");
    }
}
