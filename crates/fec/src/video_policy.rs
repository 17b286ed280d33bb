//! The loss-adaptive choice of video protection, and the sender's gate on keyframe
//! requests.
//!
//! [`VideoProtectionPolicy`] turns what the receiver reports (loss rate, RTT) and the
//! bitrate the rate controller grants to FEC into:
//!
//! - whether NACK/RTX is worth it: a retransmission arrives one RTT after the loss is
//!   noticed, so above [`VideoPolicyConfig::max_nack_rtt`] it comes too late to save the
//!   picture and only costs bandwidth;
//! - how many FlexFEC packets protect a frame of `n` media packets, separately for delta
//!   frames and keyframes. The count is the smallest that brings the frame's chance of
//!   staying unrecoverable under a target, with the loss modelled as independent and the
//!   interleaved mask of [`MaskType::Interleaved`] (FEC packet `i` of `m` protects the
//!   media packets `j` with `j % m == i`, so a group of `s` media packets and its FEC
//!   packet survive when at most one of the `s + 1` is lost). The target is looser when
//!   NACK is on (FEC then only has to spare most frames a retransmission round trip) and
//!   much tighter for keyframes, which every later frame depends on and which are large
//!   enough that one lost packet of many is likely. The counts are capped by the budget.
//!
//! The counts for every `n` up to [`MAX_MEDIA_PACKETS`] are tabulated when the decision
//! changes, so asking for a frame's [`Protection`] is a table look-up and allocates
//! nothing.
//!
//! Hysteresis: the smoothed loss raises the protection as soon as it exceeds the loss the
//! current tables were made for (losses hurt at once); it lowers it only after staying
//! below [`VideoPolicyConfig::down_ratio`] of it for [`VideoPolicyConfig::hold_down`]. NACK
//! goes off above `max_nack_rtt` and back on below 80% of it.
//!
//! libwebrtc's `VCMNackFecMethod` (media_opt_util.cc) takes the same inputs; it reads its
//! FEC rates from a table trained offline and scales them down for NACK at low RTT. Here
//! the rates come from the loss model, so the reason for each count can be computed.
//!
//! [`KeyframeGate`] is the sender's side of PLI/FIR: requests issued before the last
//! keyframe could have reached the receiver are stale and dropped, and keyframes are at
//! least [`KeyframeGateConfig::min_interval`] apart (later requests wait, merged into one),
//! so neither a burst of requests nor several receivers can make the encoder spend its
//! bitrate on keyframes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_fec::policy::LossReport;
//! use tincan_fec::video_policy::{VideoPolicyConfig, VideoProtectionPolicy};
//!
//! let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
//! let now = Instant::now();
//! let report = LossReport { loss: 0.10, mean_burst: 1.0, rtt: Duration::from_millis(100) };
//! let decision = policy.update(report, 800_000, 400_000, now);
//! assert!(decision.nack);
//! // A keyframe of 30 packets gets more protection than a delta frame of 3.
//! let key = policy.protection(true, 30).fec_packets(30)?;
//! let delta = policy.protection(false, 3).fec_packets(3)?;
//! assert!(key as f64 / 30.0 > delta as f64 / 3.0);
//! # Ok::<(), tincan_fec::flexfec::FlexFecError>(())
//! ```

use std::time::{Duration, Instant};

use crate::flexfec::{MAX_MEDIA_PACKETS, MaskType, Protection};
use crate::policy::LossReport;

/// Losses below this are taken as none: no FEC is sent for them.
const NEGLIGIBLE_LOSS: f64 = 1e-3;
/// Highest loss the model is asked about; beyond it FEC is capped by the budget anyway.
const MAX_MODEL_LOSS: f64 = 0.9;

/// Tuning of [`VideoProtectionPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub struct VideoPolicyConfig {
    /// Chance a delta frame may stay unrecoverable by FEC while NACK is on (a
    /// retransmission then repairs it one RTT later). Default 0.06.
    pub delta_target_with_nack: f64,
    /// The same without NACK, where an unrecovered frame breaks the picture until the
    /// next keyframe. Default 0.01.
    pub delta_target: f64,
    /// Chance a keyframe may stay unrecoverable by FEC. Default 0.005.
    pub key_target: f64,
    /// Most FEC packets per media packet for delta frames (before the bitrate budget).
    /// Default 0.5.
    pub max_delta_overhead: f64,
    /// Most FEC packets per media packet for keyframes: they are rare, so the budget
    /// does not apply to them. Default 0.6.
    pub max_key_overhead: f64,
    /// Chance a retransmission may be lost before a second copy of it is sent (the
    /// copies are sent together). Default 0.02: from about 2% loss on, lost packets go
    /// twice, because a lost retransmission costs another round trip, which freezes the
    /// picture, while the copy costs only the (few) retransmitted bytes.
    pub rtx_target: f64,
    /// Most copies of one retransmission. Default 2.
    pub max_rtx_copies: u8,
    /// Above this RTT NACK is off. Default 400 ms: a retransmission would arrive after
    /// the picture has already frozen.
    pub max_nack_rtt: Duration,
    /// Loss assumed until the first report, so the first keyframe, the one every later
    /// frame depends on, is protected. Default 0.05. The first report replaces it at
    /// once (no hold time: it was a guess, not a measurement).
    pub initial_loss: f64,
    /// Weight of a new report in the smoothed loss, 0 < w ≤ 1. Default 0.4.
    pub smoothing: f64,
    /// How long the loss must stay low before protection is lowered. Default 3 s.
    pub hold_down: Duration,
    /// Share of the loss the tables were made for below which lowering is considered.
    /// Default 0.7.
    pub down_ratio: f64,
}

impl Default for VideoPolicyConfig {
    fn default() -> Self {
        Self {
            delta_target_with_nack: 0.12,
            delta_target: 0.01,
            key_target: 0.005,
            max_delta_overhead: 0.5,
            max_key_overhead: 0.6,
            rtx_target: 0.02,
            max_rtx_copies: 2,
            max_nack_rtt: Duration::from_millis(400),
            initial_loss: 0.05,
            smoothing: 0.4,
            hold_down: Duration::from_secs(3),
            down_ratio: 0.7,
        }
    }
}

/// What the policy decided, for the sender and for statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoProtection {
    /// The loss rate the FEC tables were made for (smoothed, with hysteresis).
    pub loss: f64,
    /// NACK/RTX on: the receiver should NACK and the sender answer.
    pub nack: bool,
    /// Copies of each retransmission to send (1 or more; meaningful with `nack`).
    pub rtx_copies: u8,
    /// FEC packets per media packet of a typical delta frame (3 packets), for reports.
    pub delta_fraction: f64,
    /// FEC packets per media packet of a typical keyframe (20 packets), for reports.
    pub key_fraction: f64,
    /// Delta-frame FEC was capped by the bitrate budget.
    pub budget_limited: bool,
}

/// What the policy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VideoPolicyStats {
    /// Reports taken.
    pub updates: u64,
    /// Times the protection went up.
    pub raises: u64,
    /// Times it went down (after the hold time).
    pub lowers: u64,
    /// Times NACK was switched on or off.
    pub nack_toggles: u64,
    /// Reports after which delta-frame FEC was capped by the budget.
    pub budget_limited: u64,
    /// Frames given protection with [`VideoProtectionPolicy::protection`], delta and key.
    pub frames: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// FEC packets those frames were given.
    pub fec_packets: u64,
}

/// The loss-adaptive video protection policy. Sans-IO: call [`update`](Self::update) with
/// each receiver report, and [`protection`](Self::protection) for each frame sent.
#[derive(Debug, Clone)]
pub struct VideoProtectionPolicy {
    config: VideoPolicyConfig,
    smoothed: Option<f64>,
    /// The loss the tables were made for.
    decided_loss: f64,
    /// The budget cap the delta table was made with.
    decided_cap: f64,
    nack: bool,
    /// Since when the smoothed loss has been low enough to lower the protection.
    low_since: Option<Instant>,
    /// FEC packets for a delta frame of `n` media packets, at index `n`.
    delta: [u8; MAX_MEDIA_PACKETS + 1],
    /// The same for keyframes.
    key: [u8; MAX_MEDIA_PACKETS + 1],
    budget_limited: bool,
    stats: VideoPolicyStats,
}

impl VideoProtectionPolicy {
    /// A policy starting with NACK on and FEC for
    /// [`VideoPolicyConfig::initial_loss`] (nothing is known about loss yet).
    pub fn new(config: VideoPolicyConfig) -> Self {
        let initial = if config.initial_loss.is_finite() {
            config.initial_loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut policy = Self {
            config,
            smoothed: None,
            decided_loss: initial,
            decided_cap: 1.0,
            nack: true,
            low_since: None,
            delta: [0; MAX_MEDIA_PACKETS + 1],
            key: [0; MAX_MEDIA_PACKETS + 1],
            budget_limited: false,
            stats: VideoPolicyStats::default(),
        };
        policy.tabulate();
        policy
    }

    /// The configuration.
    pub fn config(&self) -> &VideoPolicyConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &VideoPolicyStats {
        &self.stats
    }

    /// Takes a receiver report: `report.loss` is the share of media packets lost on the
    /// path (before any repair), `media_bps` the encoder's bitrate and `fec_budget_bps`
    /// what the rate controller lets FEC spend. Returns the decision now in force.
    /// Out-of-range inputs (NaN, negative, above 1) are clamped.
    pub fn update(
        &mut self,
        report: LossReport,
        media_bps: u64,
        fec_budget_bps: u64,
        now: Instant,
    ) -> VideoProtection {
        self.stats.updates += 1;
        let loss = if report.loss.is_finite() {
            report.loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let weight = if self.config.smoothing.is_finite() {
            self.config.smoothing.clamp(0.01, 1.0)
        } else {
            1.0
        };
        let first = self.smoothed.is_none();
        let smoothed = self
            .smoothed
            .map_or(loss, |s| s + weight * (loss - s))
            .clamp(0.0, 1.0);
        self.smoothed = Some(smoothed);

        // NACK, with hysteresis on the RTT.
        let nack = if self.nack {
            report.rtt <= self.config.max_nack_rtt
        } else {
            report.rtt <= self.config.max_nack_rtt * 4 / 5
        };
        let mut retabulate = nack != self.nack;
        if nack != self.nack {
            self.stats.nack_toggles += 1;
            self.nack = nack;
        }

        // Loss, raised at once, lowered after the hold time (the initial guess at once).
        if first {
            retabulate |= smoothed != self.decided_loss;
            self.decided_loss = smoothed;
        } else if smoothed > self.decided_loss {
            self.decided_loss = smoothed;
            self.low_since = None;
            retabulate = true;
        } else if smoothed < self.decided_loss * self.config.down_ratio
            || (smoothed < NEGLIGIBLE_LOSS && self.decided_loss >= NEGLIGIBLE_LOSS)
        {
            let since = *self.low_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.config.hold_down {
                self.decided_loss = smoothed;
                self.low_since = None;
                retabulate = true;
            }
        } else {
            self.low_since = None;
        }

        let cap = budget_cap(media_bps, fec_budget_bps);
        if cap != self.decided_cap {
            // The tables are cheap to make (a few thousand multiplications) and reports
            // come a few times a second.
            retabulate = true;
        }
        if retabulate {
            self.decided_cap = cap;
            let before = (self.delta, self.key);
            self.tabulate();
            let (old, new) = (
                weight_of(&before.0, &before.1),
                weight_of(&self.delta, &self.key),
            );
            if new > old {
                self.stats.raises += 1;
            } else if new < old {
                self.stats.lowers += 1;
            }
        }
        if self.budget_limited {
            self.stats.budget_limited += 1;
        }
        self.decision()
    }

    /// The decision in force.
    pub fn decision(&self) -> VideoProtection {
        VideoProtection {
            loss: self.decided_loss,
            nack: self.nack,
            rtx_copies: self.rtx_copies(),
            delta_fraction: f64::from(self.delta[3]) / 3.0,
            key_fraction: f64::from(self.key[20]) / 20.0,
            budget_limited: self.budget_limited,
        }
    }

    /// Whether the receiver should NACK and the sender retransmit.
    pub fn nack(&self) -> bool {
        self.nack
    }

    /// Copies of each retransmission: the fewest whose chance of all being lost at the
    /// decided loss is under [`VideoPolicyConfig::rtx_target`], at most
    /// [`VideoPolicyConfig::max_rtx_copies`] (and at least 1).
    pub fn rtx_copies(&self) -> u8 {
        redundant_copies(
            self.decided_loss,
            self.config.rtx_target,
            self.config.max_rtx_copies,
        )
    }

    /// The protection of a frame of `media_packets` packets (frames above
    /// [`MAX_MEDIA_PACKETS`] are not protected: the FEC encoder cannot take them).
    /// `Protection::fec_packets(media_packets)` gives exactly the tabulated count.
    pub fn protection(&mut self, keyframe: bool, media_packets: usize) -> Protection {
        let table = if keyframe { &self.key } else { &self.delta };
        let count = table.get(media_packets).copied().unwrap_or(0);
        self.stats.frames += 1;
        self.stats.keyframes += u64::from(keyframe);
        self.stats.fec_packets += u64::from(count);
        if count == 0 || media_packets == 0 {
            return Protection::NONE;
        }
        Protection::new(
            f32::from(count) / media_packets as f32,
            MaskType::Interleaved,
        )
    }

    fn tabulate(&mut self) {
        let loss = self.decided_loss.min(MAX_MODEL_LOSS);
        let delta_target = if self.nack {
            self.config.delta_target_with_nack
        } else {
            self.config.delta_target
        };
        let delta_cap = self.config.max_delta_overhead.min(self.decided_cap);
        self.budget_limited = false;
        for n in 0..=MAX_MEDIA_PACKETS {
            let (delta, limited) = fec_count(n, loss, delta_target, delta_cap);
            self.delta[n] = delta;
            self.budget_limited |= limited && n <= 4;
            self.key[n] = fec_count(
                n,
                loss,
                self.config.key_target,
                self.config.max_key_overhead,
            )
            .0;
        }
    }
}

/// Copies of a small, important packet (a retransmission, a NACK) to send so that the
/// chance of losing all of them at independent loss `loss` is at most `target`: the
/// fewest that do, between 1 and `max` (at least 1).
///
/// ```
/// use tincan_fec::video_policy::redundant_copies;
/// assert_eq!(redundant_copies(0.01, 0.02, 3), 1);
/// assert_eq!(redundant_copies(0.10, 0.02, 3), 2);
/// assert_eq!(redundant_copies(0.30, 0.02, 3), 3);
/// assert_eq!(redundant_copies(f64::NAN, 0.02, 0), 1);
/// ```
pub fn redundant_copies(loss: f64, target: f64, max: u8) -> u8 {
    let loss = if loss.is_finite() {
        loss.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let max = max.max(1);
    let mut copies = 1;
    while copies < max && loss.powi(i32::from(copies)) > target {
        copies += 1;
    }
    copies
}

/// Sum of the table entries: more means more protection.
fn weight_of(delta: &[u8], key: &[u8]) -> u32 {
    delta.iter().chain(key).map(|&c| u32::from(c)).sum()
}

/// FEC bitrate share the budget allows (FEC packets are about as large as media ones).
fn budget_cap(media_bps: u64, fec_budget_bps: u64) -> f64 {
    if media_bps == 0 {
        return 0.0;
    }
    (fec_budget_bps as f64 / media_bps as f64).clamp(0.0, 1.0)
}

/// Most FEC packets `overhead` allows for `n` media packets: rounded, so a one-packet
/// frame can have one at 50%.
fn cap_count(n: usize, overhead: f64) -> usize {
    if !overhead.is_finite() || overhead <= 0.0 {
        return 0;
    }
    ((overhead.min(1.0) * n as f64).round() as usize).min(n)
}

/// The fewest FEC packets that bring `n` media packets' failure chance at `loss` under
/// `target`, capped by `overhead`; and whether the cap bit.
fn fec_count(n: usize, loss: f64, target: f64, overhead: f64) -> (u8, bool) {
    if n == 0 || loss < NEGLIGIBLE_LOSS {
        return (0, false);
    }
    let cap = cap_count(n, overhead);
    for m in 0..=cap {
        if frame_failure(n, m, loss) <= target {
            return (m as u8, false);
        }
    }
    (cap as u8, true)
}

/// Chance that a frame of `n` media packets protected by `m` interleaved FEC packets
/// loses a media packet FEC cannot rebuild, with independent loss `p`.
///
/// Group `i` holds the media packets `j % m == i` and FEC packet `i`; it is whole when
/// at most one of its packets is lost. Groups are disjoint, so the frame survives when
/// every group does.
pub fn frame_failure(n: usize, m: usize, p: f64) -> f64 {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let q = 1.0 - p;
    if n == 0 {
        return 0.0;
    }
    if m == 0 {
        return 1.0 - q.powi(n as i32);
    }
    let m = m.min(n);
    let small = n / m;
    let large_groups = n % m;
    let survive = |s: usize| {
        let s = s as i32;
        q.powi(s + 1) + f64::from(s + 1) * p * q.powi(s)
    };
    let whole = survive(small + 1).powi(large_groups as i32)
        * survive(small).powi((m - large_groups) as i32);
    (1.0 - whole).clamp(0.0, 1.0)
}

/// Tuning of [`KeyframeGate`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeyframeGateConfig {
    /// Shortest time between two keyframes sent on request. Default 300 ms (libwebrtc's
    /// minimum keyframe send interval).
    pub min_interval: Duration,
}

impl Default for KeyframeGateConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(300),
        }
    }
}

/// What a [`KeyframeGate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyframeGateStats {
    /// Requests (PLI or FIR) received.
    pub requests: u64,
    /// Requests dropped as stale: sent before the last keyframe could have arrived.
    pub stale: u64,
    /// Requests merged into one already waiting.
    pub merged: u64,
    /// Requests that had to wait for the minimum interval.
    pub delayed: u64,
    /// Keyframes sent (on request or not).
    pub keyframes_sent: u64,
}

/// The sender's gate on keyframe requests (PLI/FIR). See the [module docs](self).
///
/// ```
/// use std::time::{Duration, Instant};
/// use tincan_fec::video_policy::{KeyframeGate, KeyframeGateConfig};
///
/// let mut gate = KeyframeGate::new(KeyframeGateConfig::default());
/// let t0 = Instant::now();
/// let rtt = Duration::from_millis(100);
/// gate.on_request(t0, rtt);
/// assert!(gate.keyframe_due(t0));
/// gate.on_keyframe_sent(t0);
/// // A request 50 ms later was sent before the keyframe could have arrived: stale.
/// gate.on_request(t0 + Duration::from_millis(50), rtt);
/// assert!(!gate.keyframe_due(t0 + Duration::from_millis(500)));
/// assert_eq!(gate.stats().stale, 1);
/// ```
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    config: KeyframeGateConfig,
    last_keyframe: Option<Instant>,
    pending: bool,
    stats: KeyframeGateStats,
}

impl KeyframeGate {
    /// A gate with no keyframe sent yet.
    pub fn new(config: KeyframeGateConfig) -> Self {
        Self {
            config,
            last_keyframe: None,
            pending: false,
            stats: KeyframeGateStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &KeyframeGateStats {
        &self.stats
    }

    /// A keyframe request arrived at `now`; `rtt` is the current round-trip time.
    pub fn on_request(&mut self, now: Instant, rtt: Duration) {
        self.stats.requests += 1;
        if let Some(last) = self.last_keyframe
            && now.saturating_duration_since(last) < rtt
        {
            // The receiver asked before the last keyframe could have reached it.
            self.stats.stale += 1;
            return;
        }
        if self.pending {
            self.stats.merged += 1;
            return;
        }
        if !self.allowed(now) {
            self.stats.delayed += 1;
        }
        self.pending = true;
    }

    /// Whether the frame encoded at `now` must be a keyframe.
    pub fn keyframe_due(&self, now: Instant) -> bool {
        self.pending && self.allowed(now)
    }

    /// When a waiting request may be answered, at `now` or later (`None`: nothing waits).
    pub fn next_allowed(&self, now: Instant) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        let earliest = self
            .last_keyframe
            .and_then(|last| last.checked_add(self.config.min_interval))
            .unwrap_or(now);
        Some(earliest.max(now))
    }

    /// A keyframe was sent at `now` (asked for or not: any keyframe answers requests).
    pub fn on_keyframe_sent(&mut self, now: Instant) {
        self.stats.keyframes_sent += 1;
        self.pending = false;
        self.last_keyframe = Some(self.last_keyframe.map_or(now, |last| last.max(now)));
    }

    fn allowed(&self, now: Instant) -> bool {
        self.last_keyframe
            .is_none_or(|last| now.saturating_duration_since(last) >= self.config.min_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report(loss: f64, rtt_ms: u64) -> LossReport {
        LossReport {
            loss,
            mean_burst: 1.0,
            rtt: Duration::from_millis(rtt_ms),
        }
    }

    #[test]
    fn failure_model_matches_hand_computed_values() {
        // 3 packets, 10% loss: no FEC loses 27.1% of frames.
        assert!((frame_failure(3, 0, 0.1) - 0.271).abs() < 1e-9);
        // One FEC packet over all three: fails with two or more losses of four.
        let one = 1.0 - (0.9f64.powi(4) + 4.0 * 0.1 * 0.9f64.powi(3));
        assert!((frame_failure(3, 1, 0.1) - one).abs() < 1e-9);
        assert_eq!(frame_failure(5, 2, 0.0), 0.0);
        assert_eq!(frame_failure(0, 0, 0.5), 0.0);
        assert!((frame_failure(4, 4, 1.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_loss_no_fec_and_nack_on() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let d = policy.update(report(0.0, 100), 800_000, 400_000, Instant::now());
        assert!(d.nack);
        for n in 0..=MAX_MEDIA_PACKETS {
            assert_eq!(policy.protection(n % 2 == 0, n), Protection::NONE);
        }
    }

    #[test]
    fn keyframes_are_protected_more_than_delta_frames() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let d = policy.update(report(0.1, 100), 800_000, 400_000, Instant::now());
        assert!(d.key_fraction > d.delta_fraction, "{d:?}");
        assert!(d.delta_fraction > 0.0);
        for n in 1..=MAX_MEDIA_PACKETS {
            let key = policy.protection(true, n).fec_packets(n).unwrap();
            let delta = policy.protection(false, n).fec_packets(n).unwrap();
            assert!(key >= delta, "n = {n}: key {key} < delta {delta}");
        }
    }

    #[test]
    fn retransmissions_are_doubled_under_heavy_loss() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let t0 = Instant::now();
        assert_eq!(
            policy.update(report(0.01, 100), 800_000, 0, t0).rtx_copies,
            1
        );
        assert_eq!(
            policy.update(report(0.10, 100), 800_000, 0, t0).rtx_copies,
            2
        );
        assert_eq!(
            policy.update(report(0.90, 100), 800_000, 0, t0).rtx_copies,
            2
        );
    }

    #[test]
    fn high_rtt_turns_nack_off_and_fec_up() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let t0 = Instant::now();
        let low = policy.update(report(0.05, 100), 800_000, 400_000, t0);
        let high = policy.update(report(0.05, 600), 800_000, 400_000, t0);
        assert!(low.nack && !high.nack);
        assert!(high.delta_fraction > low.delta_fraction, "{low:?} {high:?}");
        // Back on only below 80% of the limit.
        assert!(!policy.update(report(0.05, 380), 800_000, 400_000, t0).nack);
        assert!(policy.update(report(0.05, 300), 800_000, 400_000, t0).nack);
        assert_eq!(policy.stats().nack_toggles, 2);
    }

    #[test]
    fn raises_at_once_lowers_after_the_hold() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig {
            smoothing: 1.0,
            ..VideoPolicyConfig::default()
        });
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        policy.update(report(0.2, 100), 800_000, 800_000, at(0));
        assert_eq!(policy.stats().raises, 1);
        let high = policy.decision();
        policy.update(report(0.0, 100), 800_000, 800_000, at(1));
        policy.update(report(0.0, 100), 800_000, 800_000, at(2));
        assert_eq!(policy.decision(), high, "held");
        policy.update(report(0.0, 100), 800_000, 800_000, at(4));
        assert_eq!(policy.decision().delta_fraction, 0.0);
        assert_eq!(policy.stats().lowers, 1);
        // A blip back up interrupts a pending step down.
        policy.update(report(0.1, 100), 800_000, 800_000, at(5));
        assert_eq!(policy.stats().raises, 2);
    }

    #[test]
    fn the_budget_caps_delta_frames_not_keyframes() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let d = policy.update(report(0.3, 100), 800_000, 80_000, Instant::now());
        assert!(d.budget_limited);
        assert!(policy.protection(false, 10).fec_packets(10).unwrap() <= 1);
        assert!(policy.protection(true, 10).fec_packets(10).unwrap() > 1);
        assert!(policy.stats().budget_limited > 0);
    }

    #[test]
    fn bad_inputs_are_clamped() {
        let mut policy = VideoProtectionPolicy::new(VideoPolicyConfig::default());
        let t0 = Instant::now();
        for loss in [f64::NAN, -1.0, 7.0, f64::INFINITY] {
            let d = policy.update(report(loss, 100), 0, u64::MAX, t0);
            assert!((0.0..=1.0).contains(&d.loss));
        }
        assert_eq!(policy.protection(false, 1000), Protection::NONE);
    }

    #[test]
    fn gate_drops_stale_requests_and_spaces_keyframes() {
        let mut gate = KeyframeGate::new(KeyframeGateConfig::default());
        let t0 = Instant::now();
        let ms = |v: u64| t0 + Duration::from_millis(v);
        let rtt = Duration::from_millis(100);
        assert!(!gate.keyframe_due(t0));
        gate.on_keyframe_sent(t0);
        gate.on_request(ms(50), rtt); // stale
        gate.on_request(ms(150), rtt); // fresh, but within 300 ms: waits
        gate.on_request(ms(160), rtt); // merged
        assert!(!gate.keyframe_due(ms(200)));
        assert_eq!(gate.next_allowed(ms(200)), Some(ms(300)));
        assert!(gate.keyframe_due(ms(300)));
        gate.on_keyframe_sent(ms(300));
        assert!(!gate.keyframe_due(ms(1000)));
        assert_eq!(gate.next_allowed(ms(1000)), None);
        let stats = *gate.stats();
        assert_eq!(
            (
                stats.requests,
                stats.stale,
                stats.delayed,
                stats.merged,
                stats.keyframes_sent
            ),
            (3, 1, 1, 1, 2)
        );
    }

    proptest! {
        /// Whatever the reports, counts stay within the caps, more FEC never fails more
        /// often, and keyframes are never protected less than delta frames.
        #[test]
        fn decisions_stay_within_bounds(
            reports in proptest::collection::vec((0.0f64..1.0, 0u64..1000, 0u64..2_000_000), 1..40),
        ) {
            let config = VideoPolicyConfig::default();
            let mut policy = VideoProtectionPolicy::new(config.clone());
            let t0 = Instant::now();
            for (i, &(loss, rtt, budget)) in reports.iter().enumerate() {
                let now = t0 + Duration::from_millis(500 * i as u64);
                let d = policy.update(report(loss, rtt), 800_000, budget, now);
                prop_assert!((0.0..=1.0).contains(&d.loss));
                prop_assert_eq!(d.nack, policy.nack());
                prop_assert!((1..=config.max_rtx_copies).contains(&d.rtx_copies));
                let delta_cap = config.max_delta_overhead.min(budget_cap(800_000, budget));
                for n in 1..=MAX_MEDIA_PACKETS {
                    let delta = policy.protection(false, n).fec_packets(n).unwrap();
                    let key = policy.protection(true, n).fec_packets(n).unwrap();
                    prop_assert!(delta <= cap_count(n, delta_cap));
                    prop_assert!(key <= cap_count(n, config.max_key_overhead));
                    prop_assert!(key >= delta || key == cap_count(n, config.max_key_overhead));
                }
            }
        }

        /// Driven by any stream of requests, an encoder that asks the gate before each
        /// frame sends keyframes at least `min_interval` apart, answers every fresh request
        /// within `min_interval` plus a frame, and answers nothing stale.
        #[test]
        fn gate_spaces_keyframes_and_answers_fresh_requests(
            requests in proptest::collection::vec(0u64..3000, 0..60),
            rtt_ms in 0u64..500,
        ) {
            let config = KeyframeGateConfig::default();
            let mut gate = KeyframeGate::new(config.clone());
            let t0 = Instant::now();
            let rtt = Duration::from_millis(rtt_ms);
            let mut requests = requests;
            requests.sort_unstable();
            let mut pending: Vec<u64> = Vec::new();
            let mut last_key: Option<u64> = None;
            let mut next = 0;
            // 30 fps frames for 4 s; requests land between frames.
            for frame in 0..120u64 {
                let at = frame * 33;
                while next < requests.len() && requests[next] <= at {
                    let request = requests[next];
                    gate.on_request(t0 + Duration::from_millis(request), rtt);
                    let stale = last_key.is_some_and(|k| request - k < rtt_ms);
                    if !stale {
                        pending.push(request);
                    }
                    next += 1;
                }
                if gate.keyframe_due(t0 + Duration::from_millis(at)) {
                    if let Some(k) = last_key {
                        prop_assert!(at - k >= config.min_interval.as_millis() as u64);
                    }
                    prop_assert!(!pending.is_empty(), "keyframe at {} without a fresh request", at);
                    gate.on_keyframe_sent(t0 + Duration::from_millis(at));
                    last_key = Some(at);
                    pending.clear();
                }
                for &request in &pending {
                    prop_assert!(
                        at - request <= config.min_interval.as_millis() as u64 + 33,
                        "request at {} still waiting at {}", request, at
                    );
                }
            }
        }

        #[test]
        fn more_fec_never_hurts(n in 1usize..=48, p in 0.0f64..1.0) {
            let mut previous = frame_failure(n, 0, p);
            for m in 1..=n {
                let f = frame_failure(n, m, p);
                prop_assert!((0.0..=1.0).contains(&f));
                prop_assert!(f <= previous + 1e-12, "n {} m {} p {}: {} > {}", n, m, p, f, previous);
                previous = f;
            }
        }
    }
}
