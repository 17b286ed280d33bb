//! End-to-end 1:1 audio calls: two [`Session`]s over `tincan_netsim` with real speech,
//! real Opus and the real receive path, simulated faster than real time by driving both
//! sessions and the links by the earliest deadline. Run with `--nocapture` for figures.

mod common;

use std::time::{Duration, Instant};

use tincan_netsim::{Direction, Path, Poll, Profile};
use tincan_pipeline::{
    Event, FRAME_SAMPLES, Input, Output, SAMPLE_RATE, Session, SessionConfig, SessionStats,
};

use common::{correlation, decimate};

/// 10 ms, the microphone and playout period.
const TICK: Duration = Duration::from_millis(10);
/// Time after the speech ends to let the last packets play out.
const TAIL: Duration = Duration::from_millis(600);
/// Mean correlation of the speech windows with what was heard that counts as "speech heard"
/// (the control, the same search half a second off the true delay, where the heard speech
/// is other speech, is printed by the `good` test: 0.053 when measured).
const MIN_CORRELATION: f64 = 0.7;
/// The same for speech coded in Opus's SILK-based modes (in-band FEC on).
const MIN_CORRELATION_SILK: f64 = 0.6;
/// The budget on top of the one-way network delay, on `good`.
const MOUTH_TO_EAR_BUDGET: Duration = Duration::from_millis(50);
/// Longest lag searched by the cross-correlation.
const MAX_LAG: Duration = Duration::from_millis(600);
/// Decimation for the coarse lag search (48 kHz → 8 kHz).
const DECIMATE: usize = 6;

/// The 10.8 s speech fixture at 48 kHz, cut to whole frames.
fn speech() -> Vec<i16> {
    let mut samples = common::speech();
    samples.truncate(samples.len() / FRAME_SAMPLES * FRAME_SAMPLES);
    samples
}

/// What one call measured.
struct Call {
    heard: Vec<i16>,
    alice: SessionStats,
    bob: SessionStats,
    bob_events: Vec<(Duration, Event)>,
    alice_events: Vec<(Duration, Event)>,
    /// (time, RTP?) of every datagram Alice sent.
    alice_sent: Vec<(Duration, bool)>,
    network_loss: f64,
    wall: Duration,
}

/// Runs a call: Alice speaks `source` (muted between `mute.0` and `mute.1`), Bob is silent;
/// returns what Bob heard, one sample per source sample from t0.
fn call(
    profile: &str,
    seed: u64,
    source: &[i16],
    mute: Option<(Duration, Duration)>,
    min_audio_budget_bps: Option<u64>,
) -> Call {
    let started = Instant::now();
    let profile = Profile::named(profile).expect("profile");
    let t0 = Instant::now();
    let mut path: Path<Vec<u8>> = Path::new(&profile, seed).expect("path");
    path.link_mut(Direction::AToB).set_epoch(t0);
    path.link_mut(Direction::BToA).set_epoch(t0);
    let mut config = SessionConfig::new(0xA11CE);
    if let Some(bps) = min_audio_budget_bps {
        config = config.with_min_audio_budget_bps(bps);
    }
    let mut alice = Session::new(config, t0).expect("alice");
    let mut bob = Session::new(SessionConfig::new(0xB0B), t0).expect("bob");
    let end = t0 + TICK * (source.len() / FRAME_SAMPLES) as u32 + TAIL;
    let silence = [0i16; FRAME_SAMPLES];
    let mut scratch = [0i16; FRAME_SAMPLES];
    let mut heard = Vec::with_capacity(source.len() + 100 * FRAME_SAMPLES);
    let mut bob_events = Vec::new();
    let mut alice_events = Vec::new();
    let mut alice_sent = Vec::new();
    let mut alice_timeout: Instant;
    let mut bob_timeout: Instant;
    let mut next_tick = t0;
    let mut frame = 0usize;
    let mut now = t0;
    loop {
        // Drain both sessions.
        loop {
            match alice.poll_output() {
                Output::Transmit(d) => {
                    let rtp = !(64..96).contains(&(d[1] & 0x7F));
                    alice_sent.push((now - t0, rtp));
                    path.send(Direction::AToB, d.clone(), d.len() + 28, now);
                    alice.recycle(d);
                }
                Output::Event(e) => alice_events.push((now - t0, e)),
                Output::Timeout(at) => {
                    alice_timeout = at;
                    break;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        loop {
            match bob.poll_output() {
                Output::Transmit(d) => {
                    path.send(Direction::BToA, d.clone(), d.len() + 28, now);
                    bob.recycle(d);
                }
                Output::Event(e) => bob_events.push((now - t0, e)),
                Output::Timeout(at) => {
                    bob_timeout = at;
                    break;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        let next = [
            Some(next_tick),
            Some(alice_timeout),
            Some(bob_timeout),
            path.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("a deadline");
        now = next.max(now);
        if now >= end {
            break;
        }
        while let Poll::Deliver(d) = path.poll(Direction::AToB, now) {
            let _ = bob.handle_input(Input::Receive(&d.packet), d.delivered_at.max(now));
        }
        while let Poll::Deliver(d) = path.poll(Direction::BToA, now) {
            let _ = alice.handle_input(Input::Receive(&d.packet), d.delivered_at.max(now));
        }
        if now >= alice_timeout {
            alice
                .handle_input(Input::Timeout, now)
                .expect("alice timeout");
        }
        if now >= bob_timeout {
            bob.handle_input(Input::Timeout, now).expect("bob timeout");
        }
        if now >= next_tick {
            // Frame k holds what was spoken during the 10 ms before it is pushed; the
            // frame pulled at t plays from t: heard and source indices share one clock.
            if frame > 0 {
                let k = frame - 1;
                let at = now - t0;
                let muted = mute.is_some_and(|(from, to)| at >= from && at < to);
                alice.set_muted(muted);
                let mic = source
                    .get(k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES)
                    .unwrap_or(&silence);
                alice.push_audio(mic, now).expect("alice push");
            }
            bob.push_audio(&silence, now).expect("bob push");
            bob.pull_audio(now, &mut scratch).expect("bob pull");
            heard.extend_from_slice(&scratch);
            alice.pull_audio(now, &mut scratch).expect("alice pull");
            frame += 1;
            next_tick += TICK;
        }
    }
    let counters = path.link(Direction::AToB).counters();
    let network_loss = counters.dropped() as f64 / counters.sent.max(1) as f64;
    Call {
        heard,
        alice: alice.stats(now),
        bob: bob.stats(now),
        bob_events,
        alice_events,
        alice_sent,
        network_loss,
        wall: started.elapsed(),
    }
}

/// The lag (samples at 48 kHz) at which `heard` best matches `source`, and the
/// normalised correlation there: a coarse search at 8 kHz, then ±1 coarse step at 48 kHz.
fn best_lag(source: &[i16], heard: &[i16]) -> (usize, f64) {
    let (s, h) = (decimate(source, DECIMATE), decimate(heard, DECIMATE));
    let max_lag = (MAX_LAG.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize / DECIMATE;
    let coarse = (0..max_lag)
        .map(|lag| (lag, correlation(&s, &h, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("lags")
        .0;
    let (s, h): (Vec<f64>, Vec<f64>) = (
        source.iter().map(|&x| f64::from(x)).collect(),
        heard.iter().map(|&x| f64::from(x)).collect(),
    );
    ((coarse * DECIMATE).saturating_sub(DECIMATE)..coarse * DECIMATE + DECIMATE)
        .map(|lag| (lag, correlation(&s, &h, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("lags")
}

/// Length of the windows of the segmental measure.
const SEGMENT: usize = SAMPLE_RATE as usize;
/// How far a window's lag may stray from the whole call's (time stretching moves it).
const SEGMENT_SPREAD: Duration = Duration::from_millis(40);
/// Windows quieter than this RMS are silence and skipped.
const SEGMENT_MIN_RMS: f64 = 300.0;

/// Per 1 s window of speech in `source`: the lag (samples) near `global` where `heard`
/// matches best and the correlation there. Time stretching moves the delay during a call;
/// per window, speech that was heard correlates well.
fn segments(source: &[i16], heard: &[i16], global: usize) -> Vec<(usize, f64)> {
    let spread = (SEGMENT_SPREAD.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
    let s: Vec<f64> = source.iter().map(|&x| f64::from(x)).collect();
    let h: Vec<f64> = heard.iter().map(|&x| f64::from(x)).collect();
    let mut out = Vec::new();
    for start in (0..s.len().saturating_sub(SEGMENT)).step_by(SEGMENT) {
        let window = &s[start..start + SEGMENT];
        let rms = (window.iter().map(|x| x * x).sum::<f64>() / SEGMENT as f64).sqrt();
        if rms < SEGMENT_MIN_RMS {
            continue;
        }
        let lo = (start + global).saturating_sub(spread);
        let hi = start + global + spread;
        // Coarse every DECIMATE samples, then every sample around the best.
        let search = |range: std::ops::Range<usize>, step: usize| {
            range
                .step_by(step)
                .filter(|&at| at + SEGMENT <= h.len())
                .map(|at| (at, correlation(window, &h[at..], 0)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        let Some((coarse, _)) = search(lo..hi, DECIMATE) else {
            continue;
        };
        if let Some((at, corr)) = search(coarse.saturating_sub(DECIMATE)..coarse + DECIMATE, 1) {
            out.push((at - start, corr));
        }
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Mean correlation and the lags (ms: min, median, max) of the speech windows.
fn segment_summary(seg: &[(usize, f64)]) -> (f64, [f64; 3]) {
    let mean = seg.iter().map(|s| s.1).sum::<f64>() / seg.len().max(1) as f64;
    let mut lags: Vec<f64> = seg
        .iter()
        .map(|s| s.0 as f64 * 1000.0 / f64::from(SAMPLE_RATE))
        .collect();
    lags.sort_by(f64::total_cmp);
    let pick = |i: usize| lags.get(i).copied().unwrap_or(f64::NAN);
    (
        mean,
        [
            pick(0),
            pick(lags.len() / 2),
            pick(lags.len().saturating_sub(1)),
        ],
    )
}

fn report(name: &str, call: &Call, lag: usize, corr: f64, source: &[i16]) -> (f64, [f64; 3]) {
    let (seg_corr, seg_lags) = segment_summary(&segments(source, &call.heard, lag));
    println!(
        "{name}: speech windows: correlation {seg_corr:.3} (mean), mouth-to-ear min/median/max {:.1}/{:.1}/{:.1} ms",
        seg_lags[0], seg_lags[1], seg_lags[2]
    );
    let b = &call.bob;
    let a = &call.alice;
    println!(
        "{name}: mouth-to-ear {:.1} ms (cross-correlation), correlation {corr:.3}; network loss A→B {:.1}%, \
         Bob's loss before recovery {:.1}%, concealed {:.1}%; jitter {:.1} ms, jitter buffer {:.1} ms; \
         Alice: RTT {:?}, send {} bps, target {} bps, audio policy level {} ({} bps), estimated {} bps; \
         Bob's end-to-end estimate {:.1} ms; simulated {:.1} s in {:.2} s",
        lag as f64 * 1000.0 / f64::from(SAMPLE_RATE),
        100.0 * call.network_loss,
        100.0 * b.receive_loss_before_recovery,
        100.0 * b.receive_loss_after_recovery,
        b.jitter * 1000.0,
        b.jitter_buffer_delay * 1000.0,
        a.rtt,
        a.send_bps,
        a.target_bps,
        a.audio_policy_level,
        a.audio_policy_bps,
        a.estimated_bandwidth_bps,
        b.end_to_end_delay * 1000.0,
        call.heard.len() as f64 / f64::from(SAMPLE_RATE),
        call.wall.as_secs_f64(),
    );
    (seg_corr, seg_lags)
}

#[test]
fn good_path_speech_is_heard_within_one_way_delay_plus_50_ms() {
    let source = speech();
    let call = call("good", 1, &source, None, None);
    let (lag, corr) = best_lag(&source, &call.heard);
    let (seg_corr, seg_lags) = report("good", &call, lag, corr, &source);
    let control = segments(&source, &call.heard, lag + SEGMENT / 2);
    let (control_corr, _) = segment_summary(&control);
    println!("good: control, 0.5 s off the delay: correlation {control_corr:.3}");
    assert!(
        seg_corr >= MIN_CORRELATION,
        "speech not heard: correlation {seg_corr:.3}"
    );
    assert!(
        control_corr < MIN_CORRELATION / 2.0,
        "control {control_corr:.3}"
    );
    let median = Duration::from_secs_f64(seg_lags[1] / 1000.0);
    let one_way =
        Duration::from_secs_f64(Profile::named("good").unwrap().a_to_b().delay_ms / 1000.0);
    let mouth_to_ear = Duration::from_secs_f64(lag as f64 / f64::from(SAMPLE_RATE));
    assert!(
        median <= one_way + MOUTH_TO_EAR_BUDGET,
        "median mouth-to-ear {:.1} ms",
        ms(median)
    );
    assert!(
        mouth_to_ear <= one_way + MOUTH_TO_EAR_BUDGET,
        "mouth-to-ear {:.1} ms > one-way {:.1} ms + 50 ms",
        ms(mouth_to_ear),
        ms(one_way)
    );
    // Two one-way delays of 20 ms ± 2 ms jitter, plus the time the reports wait.
    let rtt = call.alice.rtt.expect("no RTT measured");
    assert!(
        rtt >= one_way * 2 - Duration::from_millis(4)
            && rtt <= one_way * 2 + Duration::from_millis(15),
        "RTT {rtt:?}"
    );
    let speaking = call
        .alice_events
        .iter()
        .filter(|(_, e)| matches!(e, Event::LocalSpeaking { speaking: true }))
        .count();
    assert!(speaking >= 1, "Alice never spoke");
    // Statistics every 2 s, and the RTT in them once measured.
    let stats: Vec<_> = call
        .alice_events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Stats(s) => Some((*t, *s)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stats.len(),
        5,
        "11.4 s of call: a statistics event every 2 s"
    );
    assert!(
        stats
            .last()
            .is_some_and(|(_, s)| s.rtt.is_some() && s.send_bps > 0)
    );
    assert!(call.bob.receive_loss_after_recovery < 0.02);
    assert!(
        call.bob_events
            .iter()
            .any(|(_, e)| matches!(e, Event::RemoteAudioAvailable { .. }))
    );
    let loud = call
        .bob_events
        .iter()
        .filter(|(_, e)| matches!(e, Event::RemoteVolume { volume, .. } if *volume > 30))
        .count();
    assert!(loud > 5, "remote volume events while Alice speaks: {loud}");
}

#[test]
fn lossy_path_recovers_part_of_the_loss() {
    let source = speech();
    let strict = call("lossy-20", 2, &source, None, Some(0));
    let (lag, corr) = best_lag(&source, &strict.heard);
    report(
        "lossy-20, audio budget = controller target",
        &strict,
        lag,
        corr,
        &source,
    );
    let call = call("lossy-20", 2, &source, None, None);
    let (lag, corr) = best_lag(&source, &call.heard);
    let (seg_corr, _) = report("lossy-20", &call, lag, corr, &source);
    // From 15% loss the policy sends each packet twice with in-band FEC, which puts Opus
    // in its SILK-based modes: their waveform follows the source less closely than CELT's
    // (the loss lab scores this rung PESQ-WB 3.95 at 20% loss), so speech is taken as heard
    // at a lower waveform correlation here; the control 0.5 s off the delay gives 0.05.
    assert!(
        seg_corr >= MIN_CORRELATION_SILK,
        "speech not heard: correlation {seg_corr:.3}"
    );
    // The budget floor lets the policy climb to RED, which conceals less.
    assert!(call.alice.audio_policy_level > strict.alice.audio_policy_level);
    assert!(call.bob.receive_loss_after_recovery < strict.bob.receive_loss_after_recovery);
    let b = &call.bob;
    // Loss before recovery counts a sequence number once all its copies are lost, so the
    // path's own loss comes from the link.
    assert!(call.network_loss > 0.1, "the profile should lose about 20%");
    // Recovery must rebuild some of what was lost. In two copies with in-band FEC (the
    // policy's rung from 15% loss) it rebuilds about 40% of the frames whose copies were
    // all lost (2.3 of 6.0%), where the loss lab's interactive receiver rebuilds 60-70%:
    // a gap left open in docs/LOSS.md.
    assert!(
        b.receive_loss_after_recovery < b.receive_loss_before_recovery,
        "concealed {:.3} vs lost {:.3}",
        b.receive_loss_after_recovery,
        b.receive_loss_before_recovery
    );
    assert!(
        call.alice.audio_policy_level > 0,
        "the policy never added redundancy"
    );
    // No whole-call correlation check here: the buffer's time-stretching moves the delay
    // during the call, which one lag over the whole call cannot follow; the per-window
    // check above is the speech check.
}

#[test]
fn mute_stops_audio_packets_and_the_remote_sees_it() {
    let source = speech();
    let source = &source[..source.len().min(6 * SAMPLE_RATE as usize)];
    let (from, to) = (Duration::from_secs(2), Duration::from_secs(4));
    let call = call("good", 3, source, Some((from, to)), None);
    // The pacer releases a packet within a tick of its capture; allow one packet interval.
    let settle = Duration::from_millis(30);
    let rtp_while_muted = call
        .alice_sent
        .iter()
        .filter(|(t, rtp)| *rtp && *t > from + settle && *t < to)
        .count();
    let rtcp_while_muted = call
        .alice_sent
        .iter()
        .filter(|(t, rtp)| !*rtp && *t > from && *t < to)
        .count();
    let rtp_before = call
        .alice_sent
        .iter()
        .filter(|(t, rtp)| *rtp && *t < from)
        .count();
    println!(
        "mute: RTP packets sent in the 2 s before {rtp_before}, while muted {rtp_while_muted}; RTCP while muted {rtcp_while_muted}; events {:?}",
        call.bob_events
            .iter()
            .filter(|(_, e)| !matches!(e, Event::RemoteVolume { .. } | Event::Stats(_)))
            .collect::<Vec<_>>()
    );
    assert!(rtp_before >= 90);
    assert_eq!(rtp_while_muted, 0);
    assert!(rtcp_while_muted > 0, "RTCP must go on while muted");
    let unavailable = call
        .bob_events
        .iter()
        .find(|(_, e)| matches!(e, Event::RemoteAudioUnavailable { .. }))
        .map(|(t, _)| *t);
    let back = call
        .bob_events
        .iter()
        .filter(|(_, e)| matches!(e, Event::RemoteAudioAvailable { .. }))
        .map(|(t, _)| *t)
        .nth(1);
    let unavailable = unavailable.expect("Bob saw the mute");
    assert!(
        unavailable > from && unavailable < from + Duration::from_millis(700),
        "mute seen at {unavailable:?}"
    );
    let back = back.expect("Bob saw the unmute");
    assert!(
        back >= to && back < to + Duration::from_millis(200),
        "unmute seen at {back:?}"
    );
}

#[test]
fn bursty_path_recovers_more_than_it_conceals() {
    let source = speech();
    let call = call("bursty-30", 4, &source, None, None);
    let (lag, corr) = best_lag(&source, &call.heard);
    let (seg_corr, _) = report("bursty-30", &call, lag, corr, &source);
    let b = &call.bob;
    assert!(
        b.receive_loss_after_recovery < b.receive_loss_before_recovery,
        "concealed {:.3} vs lost {:.3}",
        b.receive_loss_after_recovery,
        b.receive_loss_before_recovery
    );
    assert!(
        seg_corr >= MIN_CORRELATION / 2.0,
        "correlation {seg_corr:.3}"
    );
}
