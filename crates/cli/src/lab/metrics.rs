//! What one pull produced, in terms common to every buffer, and the figures derived from a
//! run's pulls.

use std::time::Duration;

/// The kind of audio a pull produced, as far as the lab cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullKind {
    /// Audio from packets (decoded, recovered, merged or time-stretched).
    Normal,
    /// Concealment of missing audio (decoder PLC).
    Expand,
    /// Silence or comfort noise (nothing to play yet, or DTX).
    Silence,
}

/// One pull of any buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PullRecord {
    /// Samples per channel emitted.
    pub samples: usize,
    /// Of those, samples from received packets.
    pub from_packets: usize,
    /// Time from the arrival of the packet played to this pull.
    pub packet_delay: Option<Duration>,
    /// The buffer's target delay after the pull (adaptive buffer only).
    pub target_delay: Option<Duration>,
    /// What kind of audio it was.
    pub kind: PullKind,
}

impl PullRecord {
    /// A pull of `samples` of silence before playout starts.
    pub fn silence(samples: usize) -> Self {
        Self {
            samples,
            from_packets: 0,
            packet_delay: None,
            target_delay: None,
            kind: PullKind::Silence,
        }
    }
}

/// Sample-weighted delay figures of a run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DelaySummary {
    /// Mean playout delay, weighted by samples from packets.
    pub mean_ms: f64,
    /// 95th percentile of the same distribution.
    pub p95_ms: f64,
    /// Samples from packets counted.
    pub samples: u64,
}

/// Mean and 95th percentile of packet delay over `pulls`, weighted by samples from packets.
pub fn delay_summary(pulls: &[PullRecord]) -> DelaySummary {
    let mut weighted: Vec<(f64, u64)> = pulls
        .iter()
        .filter_map(|p| {
            let delay = p.packet_delay?;
            (p.from_packets > 0).then_some((delay.as_secs_f64() * 1e3, p.from_packets as u64))
        })
        .collect();
    let total: u64 = weighted.iter().map(|w| w.1).sum();
    if total == 0 {
        return DelaySummary::default();
    }
    let mean = weighted.iter().map(|&(d, w)| d * w as f64).sum::<f64>() / total as f64;
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p95 = weighted_quantile(&weighted, total, 0.95);
    DelaySummary {
        mean_ms: mean,
        p95_ms: p95,
        samples: total,
    }
}

/// The smallest value with at least `q` of the total weight at or below it; `sorted` is
/// sorted by value and its weights sum to `total` (> 0).
fn weighted_quantile(sorted: &[(f64, u64)], total: u64, q: f64) -> f64 {
    let need = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for &(value, weight) in sorted {
        seen += weight;
        if seen >= need {
            return value;
        }
    }
    sorted.last().map_or(0.0, |v| v.0)
}

/// Time from `step` until the end of the last concealment pull after it, in seconds (0 when
/// there is none). Pull `k` is at `k × 10 ms`.
pub fn concealment_stop(pulls: &[PullRecord], step: Duration) -> f64 {
    let first = step.as_millis().div_ceil(10) as usize;
    pulls
        .iter()
        .enumerate()
        .skip(first)
        .rfind(|(_, p)| p.kind == PullKind::Expand)
        .map_or(0.0, |(k, _)| {
            (Duration::from_millis(10 * k as u64 + 10) - step).as_secs_f64()
        })
}

/// Time from `step` to the end of the concealment episode that starts at its first
/// concealment pull at or after `step`: the episode goes on while the next concealment pull
/// comes less than `gap` after the previous one. In seconds; 0 when nothing is concealed.
pub fn concealment_episode_end(pulls: &[PullRecord], step: Duration, gap: Duration) -> f64 {
    let first = step.as_millis().div_ceil(10) as usize;
    let gap_pulls = gap.as_millis().div_ceil(10) as usize;
    let mut last = None;
    for (k, p) in pulls.iter().enumerate().skip(first) {
        if p.kind != PullKind::Expand {
            continue;
        }
        if last.is_some_and(|l| k - l >= gap_pulls) {
            break;
        }
        last = Some(k);
    }
    last.map_or(0.0, |k| {
        (Duration::from_millis(10 * k as u64 + 10) - step).as_secs_f64()
    })
}

/// Share of pulls in `[from, to)` that concealed, in percent. Pull `k` is at `k × 10 ms`.
pub fn expand_pull_pct(pulls: &[PullRecord], from: Duration, to: Duration) -> f64 {
    let first = (from.as_millis() / 10) as usize;
    let end = ((to.as_millis() / 10) as usize).min(pulls.len());
    if end <= first {
        return 0.0;
    }
    let expands = pulls[first..end]
        .iter()
        .filter(|p| p.kind == PullKind::Expand)
        .count();
    100.0 * expands as f64 / (end - first) as f64
}

/// Samples not from packets in pulls that were not silence.
pub fn concealed_from_pulls(pulls: &[PullRecord]) -> u64 {
    pulls
        .iter()
        .filter(|p| p.kind != PullKind::Silence)
        .map(|p| p.samples.saturating_sub(p.from_packets) as u64)
        .sum()
}

/// The largest deviation, after `warm_up`, of the 1-second mean of packet delay from the
/// 1-second mean of the target delay, in milliseconds. Windows without audio from packets
/// or without a target are skipped; `None` when no window counts. Pull `k` is at `k × 10 ms`.
pub fn tracking_deviation(pulls: &[PullRecord], warm_up: Duration) -> Option<f64> {
    let first = warm_up.as_millis().div_ceil(10) as usize;
    let mut worst: Option<f64> = None;
    for window in pulls.get(first..)?.chunks_exact(100) {
        let (mut delay, mut weight) = (0.0, 0u64);
        let (mut target, mut targets) = (0.0, 0u32);
        for p in window {
            if let (Some(d), true) = (p.packet_delay, p.from_packets > 0) {
                delay += d.as_secs_f64() * p.from_packets as f64;
                weight += p.from_packets as u64;
            }
            if let Some(t) = p.target_delay {
                target += t.as_secs_f64();
                targets += 1;
            }
        }
        if weight == 0 || targets == 0 {
            continue;
        }
        let deviation = (delay / weight as f64 - target / f64::from(targets)).abs() * 1e3;
        worst = Some(worst.map_or(deviation, |w: f64| w.max(deviation)));
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn played(delay_ms: u64, from_packets: usize, target_ms: Option<u64>) -> PullRecord {
        PullRecord {
            samples: 480,
            from_packets,
            packet_delay: Some(Duration::from_millis(delay_ms)),
            target_delay: target_ms.map(Duration::from_millis),
            kind: PullKind::Normal,
        }
    }

    fn expand() -> PullRecord {
        PullRecord {
            kind: PullKind::Expand,
            packet_delay: None,
            from_packets: 0,
            ..played(0, 0, None)
        }
    }

    #[test]
    fn delay_is_weighted_by_samples_from_packets() {
        let pulls = [
            played(10, 480, None),
            played(40, 160, None),
            expand(),
            PullRecord::silence(480),
        ];
        let s = delay_summary(&pulls);
        assert!((s.mean_ms - (10.0 * 480.0 + 40.0 * 160.0) / 640.0).abs() < 1e-9);
        assert_eq!(s.samples, 640);
        // 95% of 640 samples = 608: beyond the 480 at 10 ms.
        assert_eq!(s.p95_ms, 40.0);
        let many: Vec<PullRecord> = (1..=100).map(|d| played(d, 480, None)).collect();
        assert_eq!(delay_summary(&many).p95_ms, 95.0);
        assert_eq!(delay_summary(&[]), DelaySummary::default());
    }

    #[test]
    fn concealment_stop_is_the_end_of_the_last_expand_after_the_step() {
        let mut pulls = vec![played(20, 480, None); 500];
        pulls[50] = expand(); // before the step: ignored
        pulls[205] = expand();
        pulls[230] = expand();
        let stop = concealment_stop(&pulls, Duration::from_secs(2));
        assert!((stop - 0.31).abs() < 1e-9, "{stop}");
        // The episode: 205 and 230 are 250 ms apart; a pull 1 s after 230 is not in it.
        pulls[330] = expand();
        let step = Duration::from_secs(2);
        let gap = Duration::from_secs(1);
        let end = concealment_episode_end(&pulls, step, gap);
        assert!((end - 0.31).abs() < 1e-9, "{end}");
        pulls[329] = expand();
        let end = concealment_episode_end(&pulls, step, gap);
        assert!((end - 1.31).abs() < 1e-9, "{end}");
        assert_eq!(concealed_from_pulls(&pulls), 5 * 480);
        for k in [205, 230, 329, 330] {
            pulls[k] = played(20, 480, None);
        }
        assert_eq!(concealment_stop(&pulls, step), 0.0);
        assert_eq!(concealment_episode_end(&pulls, step, gap), 0.0);
    }

    #[test]
    fn tracking_deviation_compares_window_means() {
        // 30 s: delay 60 ms against a 50 ms target, except one window at +25 ms.
        let mut pulls = vec![played(60, 480, Some(50)); 3000];
        for p in &mut pulls[2000..2100] {
            *p = played(75, 480, Some(50));
        }
        // Warm-up windows are ignored whatever they hold.
        pulls[10] = played(500, 480, Some(50));
        let d = tracking_deviation(&pulls, Duration::from_secs(10)).unwrap();
        assert!((d - 25.0).abs() < 1e-9, "{d}");
        assert_eq!(
            tracking_deviation(&pulls[..500], Duration::from_secs(10)),
            None
        );
    }
}
