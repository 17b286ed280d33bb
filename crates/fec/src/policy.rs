//! The loss-adaptive choice of audio redundancy.
//!
//! [`AudioPolicy`] turns what the receiver reports (loss rate, mean burst length, RTT) and
//! what the rate controller grants into encoder and receiver settings: the Opus bitrate,
//! in-band FEC and the loss rate the encoder is told, RED depth, DRED duration, audio
//! NACK, and the jitter buffer's minimum delay (redundancy only helps when the packet that
//! carries it is already buffered when the lost frame is due).
//!
//! The ladder follows measurements of libopus 1.6.1 on real speech: in-band FEC pays at
//! light loss; RED with cheaper copies from 10%; from 15% every packet (with its in-band
//! FEC) goes twice, back to back, since a copy that arrives with its original needs no
//! wait; DRED covers long runs cheaply but rebuilds speech with a vocoder. Steps up happen as soon as the
//! loss crosses a level's threshold; steps down only after the loss has stayed below 60%
//! of it for a hold time, so the choice does not flap.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tincan_fec::policy::{AudioPolicy, AudioPolicyConfig, LossReport};
//!
//! let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
//! let now = Instant::now();
//! let report = LossReport { loss: 0.25, mean_burst: 1.2, rtt: Duration::from_millis(80) };
//! let settings = policy.update(report, 128_000, now);
//! assert_eq!(settings.packet_copies, 2);
//! assert!(settings.inband_fec);
//! assert_eq!(policy.stats().changes, 1);
//! ```

use std::time::{Duration, Instant};

/// What the receiver's reports say about the path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossReport {
    /// Share of packets lost recently (0-1).
    pub loss: f64,
    /// Mean length of loss bursts, in packets (1 = isolated losses).
    pub mean_burst: f64,
    /// Round-trip time.
    pub rtt: Duration,
}

/// The settings the policy picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioRedundancy {
    /// Position on the ladder (0 = no redundancy).
    pub level: usize,
    /// Opus bitrate of the primary encoding, bits per second.
    pub opus_bitrate: u32,
    /// Opus in-band FEC on.
    pub inband_fec: bool,
    /// The loss rate the encoder is told, percent (drives LBRR and DRED).
    pub expected_loss_pct: u8,
    /// Earlier frames repeated in each packet (RED, RFC 2198); 0 = no RED.
    pub red_depth: usize,
    /// Bitrate of the repeated frames: the primary's bitrate repeats the primary's bytes;
    /// lower means a second encoder codes each frame again, cheaper, for the copies.
    pub red_bitrate: u32,
    /// How many times each packet is sent (1 = once): at heavy random loss, more packets
    /// within the playout deadline beat deeper redundancy in fewer packets.
    pub packet_copies: u32,
    /// Time from one send of a packet to its next copy. Under random loss the copies go
    /// back to back (zero): a copy that arrives with its original needs no wait (measured
    /// at 20% loss: PESQ-WB 4.01 and 147 ms mouth to ear back to back, 3.95 and 151 ms
    /// spread over the interval); when losses come in bursts a copy sent right after its
    /// original falls into the same burst, so the copies trail by about a burst (time
    /// diversity), and the receiver waits for them.
    pub copy_spacing: Duration,
    /// DRED duration cap; zero = no DRED.
    pub dred: Duration,
    /// Ask for retransmission of lost audio (the RTT leaves time before playout).
    pub nack: bool,
    /// Delay the receiver adds to its jitter estimate so that the packets carrying
    /// redundancy for a lost frame arrive before the frame is due.
    pub recovery_delay: Duration,
}

impl AudioRedundancy {
    /// Payload bitrate, roughly: the primary plus RED copies (with their 4-byte headers at
    /// 50 packets a second), times the packet copies, with 5% for Opus's VBR
    /// overshoot. DRED bits come out of the primary's bitrate.
    pub fn bitrate(&self) -> u32 {
        let red_headers = if self.red_depth == 0 {
            0
        } else {
            400 + 1_600 * self.red_depth as u32
        };
        let once = self.opus_bitrate + self.red_bitrate * self.red_depth as u32 + red_headers;
        once * self.packet_copies.max(1) * 21 / 20
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rung {
    /// Loss at which this rung is entered.
    enter_loss: f64,
    opus_bitrate: u32,
    inband_fec: bool,
    red_depth: usize,
    red_bitrate: u32,
    packet_copies: u32,
    dred_ms: u64,
    /// Packets after a lost frame's own that the receiver waits for.
    wait_packets: u32,
}

/// The ladder, lightest first, tuned with `tincan lab loss` (`docs/LOSS.md`): in-band FEC
/// for light loss; RED copies coded again at a lower bitrate than the primary (a copy
/// only plays when the primary was lost, so it need not be as good); from 15% each packet
/// with in-band FEC sent twice (at 20% random loss a frame then needs both copies of its
/// packet lost, 4%, and both copies of the next one too, to be concealed: 1.1% concealed
/// and PESQ-WB 3.95 at 54 kbit/s against 1.2% and 3.84 with RED 2, and the receiver waits
/// one packet instead of two, 11 ms less mouth to ear); at heavy loss each
/// packet sent twice, because only packets that arrive before the frame's playout count
/// and doubling the packet rate doubles them, where deeper RED would wait longer; and at
/// the top (80% loss) four copies of a 30 kbps primary that carries DRED and no RED: a
/// frame is lost only when all four copies of its packet and every later packet within
/// the wait are, and DRED in the first packet through rebuilds the run (measured, 3
/// seeds: 4.6% of frames concealed and PESQ-WB 2.19 against 17.6% and 1.73 with RED 3 at
/// 10 kbps in two copies of a 20 kbps primary; four copies of the bigger primary also
/// give DRED more bits, so it reaches further back).
const LADDER: [Rung; 6] = [
    Rung {
        enter_loss: 0.0,
        opus_bitrate: 32_000,
        inband_fec: false,
        red_depth: 0,
        red_bitrate: 0,
        packet_copies: 1,
        dred_ms: 0,
        wait_packets: 0,
    },
    Rung {
        enter_loss: 0.02,
        opus_bitrate: 32_000,
        inband_fec: true,
        red_depth: 0,
        red_bitrate: 0,
        packet_copies: 1,
        dred_ms: 0,
        wait_packets: 1,
    },
    Rung {
        enter_loss: 0.08,
        opus_bitrate: 28_000,
        inband_fec: false,
        red_depth: 1,
        red_bitrate: 16_000,
        packet_copies: 1,
        dred_ms: 0,
        wait_packets: 1,
    },
    Rung {
        enter_loss: 0.15,
        opus_bitrate: 30_000,
        inband_fec: true,
        red_depth: 0,
        red_bitrate: 0,
        packet_copies: 2,
        dred_ms: 0,
        wait_packets: 1,
    },
    Rung {
        enter_loss: 0.35,
        opus_bitrate: 24_000,
        inband_fec: false,
        red_depth: 2,
        red_bitrate: 16_000,
        packet_copies: 2,
        dred_ms: 0,
        wait_packets: 2,
    },
    Rung {
        enter_loss: 0.65,
        opus_bitrate: 30_000,
        inband_fec: false,
        red_depth: 0,
        red_bitrate: 0,
        packet_copies: 4,
        dred_ms: 1000,
        wait_packets: 5,
    },
];

/// Weight of a new report in the smoothed loss.
const LOSS_SMOOTHING: f64 = 0.5;

/// Deepest RED the policy uses (bursts deepen the rung's RED up to this).
const MAX_RED_DEPTH: usize = 4;

/// Smoothed burstiness (mean loss run beyond what random loss at that rate gives, in
/// packets) from which losses count as bursty: packet copies then trail their originals
/// instead of following within the packet interval.
const BURSTY_ENTER_RUNS: f64 = 1.6;

/// Smoothed burstiness below which bursty losses count as random again.
const BURSTY_LEAVE_RUNS: f64 = 1.3;

/// Packet intervals a copy trails its original by when losses are bursty: past the
/// typical burst of two or three packets (each interval adds to the receiver's wait).
const COPY_TRAIL_PACKETS: u32 = 3;

/// Tuning of the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioPolicyConfig {
    /// How long loss must stay low before stepping down. Default 5 s.
    pub hold_down: Duration,
    /// Share of a rung's entry loss below which stepping down is considered. Default 0.6.
    pub down_ratio: f64,
    /// Packet duration (for burst-aware RED depth and delays). Default 20 ms.
    pub packet: Duration,
    /// Audio NACK is used when the RTT plus this margin fits the jitter buffer delay the
    /// policy sets. Default 20 ms.
    pub nack_margin: Duration,
    /// The rung used until the first report: the call's first half second would otherwise
    /// go unprotected on a lossy path (the first report then picks the rung freely, down
    /// as well as up). Default 2 (RED 1 with 16 kbit/s copies, about 47 kbit/s: at no loss
    /// the first report steps down, so it costs about half a second of it).
    pub start_level: usize,
}

impl Default for AudioPolicyConfig {
    fn default() -> Self {
        Self {
            hold_down: Duration::from_secs(5),
            down_ratio: 0.6,
            packet: Duration::from_millis(20),
            nack_margin: Duration::from_millis(20),
            start_level: 2,
        }
    }
}

/// What the policy did, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioPolicyStats {
    /// Settings changes.
    pub changes: u64,
    /// Steps up the ladder.
    pub steps_up: u64,
    /// Steps down.
    pub steps_down: u64,
    /// Updates where the budget forced a lighter rung than the loss called for.
    pub budget_limited: u64,
    /// Time-weighted count of updates at each rung.
    pub updates_at_level: [u64; LADDER.len()],
}

/// The loss-adaptive audio redundancy policy. Sans-IO: call [`update`](Self::update) with
/// each receiver report.
#[derive(Debug, Clone)]
pub struct AudioPolicy {
    config: AudioPolicyConfig,
    level: usize,
    current: AudioRedundancy,
    /// Since when the loss has been low enough to step down.
    low_since: Option<Instant>,
    /// Exponentially smoothed loss of the reports.
    smoothed_loss: Option<f64>,
    /// Exponentially smoothed burstiness of the reports.
    smoothed_burstiness: Option<f64>,
    /// Whether losses currently count as bursty (with hysteresis).
    bursty: bool,
    /// Still on the start rung, before any report.
    provisional: bool,
    /// The receiver's jitter buffer delay, as it last reported it.
    jitter_delay: Duration,
    stats: AudioPolicyStats,
}

impl AudioPolicy {
    /// A policy on its start rung ([`AudioPolicyConfig::start_level`]) until the first report.
    pub fn new(config: AudioPolicyConfig) -> Self {
        let start = config.start_level.min(LADDER.len() - 1);
        let current = settings(
            start,
            &LADDER[start],
            LossReport {
                loss: 0.0,
                mean_burst: 1.0,
                rtt: Duration::ZERO,
            },
            &config,
            Duration::ZERO,
            false,
        );
        Self {
            config,
            level: start,
            current,
            provisional: true,
            low_since: None,
            smoothed_loss: None,
            smoothed_burstiness: None,
            bursty: false,
            jitter_delay: Duration::ZERO,
            stats: AudioPolicyStats::default(),
        }
    }

    /// The settings in force.
    pub fn current(&self) -> &AudioRedundancy {
        &self.current
    }

    /// What the policy has done.
    pub fn stats(&self) -> &AudioPolicyStats {
        &self.stats
    }

    /// Takes the receiver's jitter buffer delay (RTCP XR or signalling): audio NACK is
    /// worth it when a retransmission can arrive within it. Applies from the next update.
    pub fn set_jitter_delay(&mut self, delay: Duration) {
        self.jitter_delay = delay;
    }

    /// Takes a receiver report and the audio budget (bits per second) granted by the rate
    /// controller; returns the settings to use from now on.
    pub fn update(&mut self, report: LossReport, budget_bps: u32, now: Instant) -> AudioRedundancy {
        let loss = if report.loss.is_finite() {
            report.loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let report = LossReport {
            loss,
            mean_burst: if report.mean_burst.is_finite() {
                report.mean_burst.max(1.0)
            } else {
                1.0
            },
            rtt: report.rtt,
        };
        // Random loss at rate p already has runs of mean length 1 / (1 - p); only bursts
        // beyond that make isolated-loss thresholds optimistic.
        let burstiness = (report.mean_burst * (1.0 - loss)).max(1.0);
        // A second's burst lengths are noisy too (at 50% random loss one report in a few
        // reads 1.5): smooth, and switch the copies' time diversity with hysteresis, so
        // that the receiver's wait does not jump back and forth.
        let previous = self.smoothed_burstiness.unwrap_or(burstiness);
        let burstiness = previous + LOSS_SMOOTHING * (burstiness - previous);
        self.smoothed_burstiness = Some(burstiness);
        self.bursty = if self.bursty {
            burstiness >= BURSTY_LEAVE_RUNS
        } else {
            burstiness >= BURSTY_ENTER_RUNS
        };
        let bursty = self.bursty;
        let report = LossReport {
            mean_burst: burstiness,
            ..report
        };
        // One second of packets is a small sample (at 20% loss, +-6%): smooth it so that
        // a noisy report does not buy a rung, but let a sharp rise through at once.
        let previous = self.smoothed_loss.unwrap_or(loss);
        let smoothed = previous + LOSS_SMOOTHING * (loss - previous);
        self.smoothed_loss = Some(smoothed);
        let loss = if loss > 2.0 * previous {
            loss
        } else {
            smoothed
        };
        let wanted = rung_for(loss, burstiness);
        let provisional = std::mem::replace(&mut self.provisional, false);
        let mut level = if provisional || wanted > self.level {
            self.low_since = None;
            wanted
        } else if wanted < self.level
            && rung_for(loss / self.config.down_ratio, burstiness) < self.level
        {
            let since = *self.low_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.config.hold_down {
                self.low_since = None;
                wanted
            } else {
                self.level
            }
        } else {
            self.low_since = None;
            self.level
        };
        // The budget caps the rung.
        while level > 0
            && settings(
                level,
                &LADDER[level],
                report,
                &self.config,
                self.jitter_delay,
                bursty,
            )
            .bitrate()
                > budget_bps
        {
            level -= 1;
            self.stats.budget_limited += 1;
        }
        let next = settings(
            level,
            &LADDER[level],
            report,
            &self.config,
            self.jitter_delay,
            bursty,
        );
        if next != self.current {
            self.stats.changes += 1;
            if level > self.level {
                self.stats.steps_up += 1;
            } else if level < self.level {
                self.stats.steps_down += 1;
            }
        }
        self.level = level;
        self.current = next;
        self.stats.updates_at_level[level] += 1;
        next
    }
}

/// The rung the loss calls for. The thresholds are for random loss. Bursts make them
/// optimistic for the rungs that repeat frames in the next packets only (a burst takes
/// the copies with the frame), so for those the loss is weighed by the burstiness; the
/// rungs that send packet copies let the copies trail by a burst (time diversity), which
/// makes bursts nearly random again, so the weighing never lifts the rung above the
/// first of them: the heaviest rung is for heavy loss, not for bursts.
fn rung_for(loss: f64, burstiness: f64) -> usize {
    let rung = |loss: f64| {
        LADDER
            .iter()
            .rposition(|r| loss >= r.enter_loss)
            .unwrap_or(0)
    };
    let first_with_copies = LADDER
        .iter()
        .position(|r| r.packet_copies > 1)
        .unwrap_or(LADDER.len() - 1);
    let weighed = rung((loss * burstiness.sqrt()).min(1.0)).min(first_with_copies);
    rung(loss).max(weighed)
}

fn settings(
    level: usize,
    rung: &Rung,
    report: LossReport,
    config: &AudioPolicyConfig,
    jitter_delay: Duration,
    bursty: bool,
) -> AudioRedundancy {
    // Bursts longer than the RED depth defeat it: cover the mean burst when the rung uses
    // RED at all, and wait for the deeper copies.
    // With packet copies, time diversity covers bursts instead: each copy trails its
    // original by about a burst, which is cheaper than deeper RED in every packet.
    let copies = rung.packet_copies.max(1);
    let red_depth = if rung.red_depth > 0 && !(bursty && copies > 1) {
        rung.red_depth
            .max(report.mean_burst.ceil() as usize)
            .min(MAX_RED_DEPTH)
    } else {
        rung.red_depth
    };
    let (copy_spacing, copy_wait) = if bursty && copies > 1 {
        // A fixed trail: following the measured burst length would move the receiver's
        // wait with every report.
        let trail = COPY_TRAIL_PACKETS;
        (config.packet * trail, trail * (copies - 1))
    } else {
        (Duration::ZERO, 0)
    };
    let wait_packets =
        rung.wait_packets + red_depth.saturating_sub(rung.red_depth) as u32 + copy_wait;
    let recovery_delay = config.packet * wait_packets;
    // A retransmission arrives one RTT (and some) after the loss is seen: in time when
    // the receiver waits that long anyway.
    let nack = !report.rtt.is_zero()
        && report.rtt.saturating_add(config.nack_margin) <= recovery_delay.max(jitter_delay);
    AudioRedundancy {
        level,
        opus_bitrate: rung.opus_bitrate,
        inband_fec: rung.inband_fec,
        // The encoder is told the loss its redundancy sees: a frame's packet is gone only
        // when every copy is (at 20% loss in two copies LBRR tuned for 4% instead of 20%
        // leaves the primary more bits: PESQ-WB 4.02 against 3.95, 3 seeds).
        expected_loss_pct: if rung.inband_fec || rung.dred_ms > 0 {
            ((report.loss.powi(copies as i32) * 100.0).round() as u8).clamp(5, 50)
        } else {
            0
        },
        red_depth,
        red_bitrate: rung.red_bitrate,
        packet_copies: rung.packet_copies,
        copy_spacing,
        dred: Duration::from_millis(rung.dred_ms),
        nack,
        recovery_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(loss: f64) -> LossReport {
        LossReport {
            loss,
            mean_burst: 1.0,
            rtt: Duration::from_millis(100),
        }
    }

    #[test]
    fn climbs_the_ladder_with_loss() {
        let now = Instant::now();
        let levels: Vec<usize> = [0.0, 0.03, 0.1, 0.2, 0.4, 0.8]
            .into_iter()
            .map(|loss| {
                AudioPolicy::new(AudioPolicyConfig::default())
                    .update(report(loss), 1_000_000, now)
                    .level
            })
            .collect();
        assert_eq!(levels, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn steps_down_only_after_the_hold_time() {
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let t0 = Instant::now();
        assert_eq!(policy.update(report(0.2), 1_000_000, t0).level, 3);
        // Loss drops to 1%: stay for 5 s, then step down.
        for s in 1..=5 {
            let at = t0 + Duration::from_secs(s);
            let level = policy.update(report(0.01), 1_000_000, at).level;
            assert_eq!(level, if s < 6 { 3 } else { 0 }, "at {s} s");
        }
        assert_eq!(
            policy
                .update(report(0.01), 1_000_000, t0 + Duration::from_secs(7))
                .level,
            0
        );
        // Loss just under the rung's threshold does not step down at all.
        policy.update(report(0.2), 1_000_000, t0 + Duration::from_secs(8));
        for s in 9..30 {
            assert_eq!(
                policy
                    .update(report(0.14), 1_000_000, t0 + Duration::from_secs(s))
                    .level,
                3
            );
        }
        assert_eq!(policy.stats().steps_up, 2);
        assert_eq!(policy.stats().steps_down, 1);
    }

    #[test]
    fn random_loss_runs_are_not_bursts_and_one_noisy_report_buys_nothing() {
        // At 80% random loss runs average 5 packets: that is no burstiness, so the top
        // rung keeps its own RED depth and fits the budget.
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let now = Instant::now();
        let heavy = LossReport {
            loss: 0.8,
            mean_burst: 5.0,
            rtt: Duration::from_millis(100),
        };
        let settings = policy.update(heavy, 128_000, now);
        assert_eq!(settings.level, LADDER.len() - 1);
        assert_eq!(settings.red_depth, LADDER[LADDER.len() - 1].red_depth);
        assert_eq!(policy.stats().budget_limited, 0);
        // Steady 20% loss with one report of 36%: the smoothed loss stays on its rung.
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        for (s, loss) in [0.2, 0.21, 0.19, 0.36, 0.2].into_iter().enumerate() {
            let at = now + Duration::from_secs(s as u64);
            assert_eq!(policy.update(report(loss), 128_000, at).level, 3, "{loss}");
        }
        // Real bursts (3 packets at 30%) call for the packet copies, trailing by a burst,
        // and the wait for them (the in-band FEC's packet and three intervals); within the
        // budget.
        let bursty = LossReport {
            loss: 0.3,
            mean_burst: 3.0,
            rtt: Duration::from_millis(100),
        };
        let settings = AudioPolicy::new(AudioPolicyConfig::default()).update(bursty, 128_000, now);
        assert_eq!(settings.packet_copies, 2, "{settings:?}");
        assert_eq!(settings.copy_spacing, Duration::from_millis(60));
        assert_eq!(
            settings.recovery_delay,
            Duration::from_millis(80),
            "{settings:?}"
        );
        assert!(settings.bitrate() <= 128_000);
    }

    #[test]
    fn bursts_make_copies_trail_without_climbing_to_the_top_rung() {
        let now = Instant::now();
        let at = |s: u64| now + Duration::from_secs(s);
        // A first report of 60% in bursts of 5 (a bad start): the rung with copies, not
        // the heavy-loss rung; the copies trail by three packets.
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let start = LossReport {
            loss: 0.6,
            mean_burst: 5.0,
            rtt: Duration::from_millis(100),
        };
        let settings = policy.update(start, 128_000, at(0));
        assert_eq!(settings.level, 4, "{settings:?}");
        assert_eq!(settings.copy_spacing, Duration::from_millis(60));
        // Under random loss of the same rate the copies go back to back: random losses of
        // neighbouring packets are independent, and a copy that arrives with its original
        // needs no wait.
        let random = LossReport {
            loss: 0.5,
            mean_burst: 2.0,
            rtt: Duration::from_millis(100),
        };
        let settings = AudioPolicy::new(AudioPolicyConfig::default()).update(random, 128_000, now);
        assert_eq!(settings.level, 4, "{settings:?}");
        assert_eq!(settings.copy_spacing, Duration::ZERO);
        // Noisy burst lengths around the threshold do not flip the trail (and the wait)
        // back and forth: burstiness (mean run x (1 - loss)) of 2.1, then reports between
        // 1.2 and 1.8.
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let mut spacings = Vec::new();
        for (s, run) in [3.0, 1.8, 2.4, 1.9, 2.6, 2.0, 2.5].into_iter().enumerate() {
            let report = LossReport {
                loss: 0.3,
                mean_burst: run,
                rtt: Duration::from_millis(100),
            };
            spacings.push(policy.update(report, 128_000, at(s as u64)).copy_spacing);
        }
        assert!(
            spacings.iter().all(|&s| s == Duration::from_millis(60)),
            "{spacings:?}"
        );
        // Once the bursts are gone for good, the copies go back to back again.
        for s in 7..15 {
            let report = LossReport {
                loss: 0.5,
                mean_burst: 2.0,
                rtt: Duration::from_millis(100),
            };
            policy.update(report, 128_000, at(s));
        }
        assert_eq!(policy.current().copy_spacing, Duration::ZERO);
    }

    #[test]
    fn starts_protected_and_the_first_report_decides_both_ways() {
        let now = Instant::now();
        let policy = AudioPolicy::new(AudioPolicyConfig::default());
        assert_eq!(policy.current().level, 2);
        assert!(policy.current().red_depth > 0);
        // A clean first report steps down at once (no hold-down for the start rung)...
        let mut clean = AudioPolicy::new(AudioPolicyConfig::default());
        assert_eq!(clean.update(report(0.0), 128_000, now).level, 0);
        assert_eq!(clean.stats().steps_down, 1);
        // ...after which the hold-down applies as usual.
        clean.update(report(0.3), 128_000, now + Duration::from_secs(1));
        assert_eq!(
            clean
                .update(report(0.0), 128_000, now + Duration::from_secs(2))
                .level,
            3
        );
        // A lossy first report climbs.
        let mut lossy = AudioPolicy::new(AudioPolicyConfig::default());
        assert_eq!(lossy.update(report(0.2), 128_000, now).level, 3);
        // Start unprotected if asked.
        let bare = AudioPolicy::new(AudioPolicyConfig {
            start_level: 0,
            ..AudioPolicyConfig::default()
        });
        assert_eq!(bare.current().level, 0);
    }

    #[test]
    fn the_budget_caps_the_rung() {
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let settings = policy.update(report(0.5), 64_000, Instant::now());
        assert!(settings.bitrate() <= 64_000, "{settings:?}");
        assert!(policy.stats().budget_limited > 0);
    }

    #[test]
    fn bursts_deepen_red_and_raise_the_delay() {
        // Light loss in runs of two (burstiness 1.4, not yet bursty enough for trailing
        // copies): RED 1 deepens to cover the run, and the receiver waits one packet more.
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let runs = LossReport {
            loss: 0.08,
            mean_burst: 1.5,
            rtt: Duration::from_millis(300),
        };
        let settings = policy.update(runs, 1_000_000, Instant::now());
        assert_eq!(settings.level, 2, "{settings:?}");
        assert_eq!(settings.red_depth, 2, "{settings:?}");
        assert_eq!(settings.recovery_delay, Duration::from_millis(40));
        // 300 ms RTT does not fit a 40 ms wait: no audio NACK.
        assert!(!settings.nack);
        // Real bursts at 10% weigh like 16% random loss: the copies, trailing by a burst.
        let bursty = LossReport {
            loss: 0.1,
            mean_burst: 3.0,
            rtt: Duration::from_millis(300),
        };
        let settings = AudioPolicy::new(AudioPolicyConfig::default()).update(
            bursty,
            1_000_000,
            Instant::now(),
        );
        assert_eq!(settings.packet_copies, 2, "{settings:?}");
        assert_eq!(settings.copy_spacing, Duration::from_millis(60));
        assert_eq!(settings.recovery_delay, Duration::from_millis(80));
    }

    #[test]
    fn garbage_reports_are_tamed() {
        let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
        let weird = LossReport {
            loss: f64::NAN,
            mean_burst: f64::INFINITY,
            rtt: Duration::MAX,
        };
        let settings = policy.update(weird, 0, Instant::now());
        assert_eq!(settings.level, 0);
        let weird = LossReport {
            loss: 7.0,
            mean_burst: -3.0,
            rtt: Duration::ZERO,
        };
        assert_eq!(
            policy.update(weird, u32::MAX, Instant::now()).level,
            LADDER.len() - 1
        );
    }
}
