//! The audio jitter buffer end to end: real Opus speech over the network emulator.

use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{DredDecoder, OpusConfig, OpusDecoder, OpusEncoder};
use tincan_jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioJitterStats, AudioPacket, InsertOutcome, Operation,
    OpusPacketDecoder,
};
use tincan_media::{Channels, wav};
use tincan_netsim::{Link, LinkConfig, Outage, Poll};

const RATE: u32 = 16_000;
const FRAME: usize = 320; // 20 ms at 16 kHz
const TICKS: u32 = 960; // 20 ms at Opus's 48 kHz RTP clock

fn speech() -> &'static [i16] {
    static SPEECH: OnceLock<Vec<i16>> = OnceLock::new();
    SPEECH.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/speech/speech_orig_16k.wav"
        );
        wav::read_wav(path).expect("fixture").into_samples()
    })
}

/// Opus packets of looped real speech, 20 ms each, with in-band FEC.
fn packets(count: usize, fec: bool, dtx: bool) -> Vec<Vec<u8>> {
    let config = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(24_000)
        .with_inband_fec(fec)
        .with_packet_loss_percent(if fec { 10 } else { 0 })
        .with_dtx(dtx);
    let mut encoder = OpusEncoder::new(&config).expect("encoder");
    let speech = speech();
    let mut out = Vec::with_capacity(count);
    let mut buf = [0u8; 1500];
    let mut pcm = [0i16; FRAME];
    for k in 0..count {
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = speech[(k * FRAME + i) % speech.len()];
        }
        let len = encoder.encode(&pcm, &mut buf).expect("encode");
        out.push(buf[..len].to_vec());
    }
    out
}

fn buffer(config: AudioJitterConfig) -> AudioJitterBuffer<OpusPacketDecoder> {
    let decoder = OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono).expect("decoder"));
    AudioJitterBuffer::new(decoder, config).expect("buffer")
}

#[derive(Debug, Default)]
struct Run {
    stats: AudioJitterStats,
    /// (pull time from start, operation, packet delay, target)
    pulls: Vec<(Duration, Operation, Option<Duration>, Duration)>,
    sent: usize,
    late: u64,
    audio: Vec<i16>,
}

impl Run {
    fn late_share(&self) -> f64 {
        self.late as f64 / self.sent as f64
    }
    fn concealed_share(&self) -> f64 {
        self.stats.concealed_samples as f64 / self.stats.total_samples_received as f64
    }
    fn mean_delay_ms(&self) -> f64 {
        self.stats.mean_delay().as_secs_f64() * 1000.0
    }
    /// The end of the concealment episode that starts first after `from`: the last
    /// concealing pull before the first gap of 500 ms without any.
    fn concealment_run_end(&self, from: Duration) -> Option<Duration> {
        let mut end: Option<Duration> = None;
        for (t, op, ..) in self.pulls.iter().filter(|p| p.0 >= from) {
            if let Some(e) = end
                && *t > e + Duration::from_millis(500)
            {
                break;
            }
            if *op == Operation::Expand {
                end = Some(*t);
            }
        }
        end
    }

    /// Pulls that concealed in `[from, to)`.
    fn expand_pulls(&self, from: Duration, to: Duration) -> usize {
        self.pulls
            .iter()
            .filter(|p| p.0 >= from && p.0 < to && p.1 == Operation::Expand)
            .count()
    }
}

/// Sends `packets` every 20 ms of the sender's clock (running `drift` fast) over `config`
/// and pulls every 10 ms until `seconds` of receiver time have passed.
fn run(
    packets: &[Vec<u8>],
    config: LinkConfig,
    drift: f64,
    seconds: f64,
    jitter: AudioJitterConfig,
    seed: u64,
) -> Run {
    run_with(packets, config, drift, seconds, buffer(jitter), seed)
}

/// [`run`] with a buffer made by the caller.
fn run_with(
    packets: &[Vec<u8>],
    config: LinkConfig,
    drift: f64,
    seconds: f64,
    mut jb: AudioJitterBuffer<OpusPacketDecoder>,
    seed: u64,
) -> Run {
    let mut link: Link<usize> = Link::new(config, seed).expect("link");
    let start = Instant::now();
    link.set_epoch(start);
    let mut out = vec![0i16; jb.samples_per_pull()];
    let mut result = Run::default();
    let mut next_send = 0usize;
    let pulls = (seconds * 100.0) as usize;
    for pull in 0..pulls {
        // Pulls sit 3 ms after the 10 ms grid so sends and pulls do not coincide.
        let pull_at = start + Duration::from_micros(pull as u64 * 10_000 + 3_000);
        loop {
            let send_at = start + Duration::from_secs_f64(next_send as f64 * 0.02 / (1.0 + drift));
            let deliver_at = link.next_deadline();
            let send_due = send_at <= pull_at && next_send < packets.len();
            let deliver_due = deliver_at.is_some_and(|d| d <= pull_at);
            if send_due && deliver_at.is_none_or(|d| send_at <= d) {
                link.send(next_send, packets[next_send].len() + 40, send_at);
                next_send += 1;
                result.sent += 1;
            } else if deliver_due {
                let Poll::Deliver(d) = link.poll(pull_at) else {
                    unreachable!()
                };
                let k = d.packet;
                let outcome = jb
                    .insert(
                        AudioPacket {
                            ssrc: 7,
                            sequence: (k as u32).wrapping_add(65_000) as u16,
                            timestamp: (k as u32).wrapping_mul(TICKS).wrapping_add(4_000_000_000),
                            payload: &packets[k],
                        },
                        d.delivered_at,
                    )
                    .expect("insert");
                if outcome == InsertOutcome::Late {
                    result.late += 1;
                }
            } else {
                break;
            }
        }
        let info = jb.pull(pull_at, &mut out).expect("pull");
        result.pulls.push((
            pull_at - start,
            info.operation,
            info.packet_delay,
            info.target_delay,
        ));
        result.audio.extend_from_slice(&out);
    }
    result.stats = *jb.stats();
    if std::env::var_os("JITTER_TRACE").is_some() {
        for (i, p) in result.pulls.iter().enumerate() {
            if p.1 != Operation::Normal {
                eprintln!(
                    "{i:6} {:8.3} {:?} {:?} {:?}",
                    p.0.as_secs_f64(),
                    p.1,
                    p.2,
                    p.3
                );
            }
        }
    }
    result
}

fn link(delay_ms: f64, jitter_ms: f64) -> LinkConfig {
    LinkConfig {
        delay_ms,
        jitter_ms,
        ..LinkConfig::default()
    }
}

#[test]
fn a_clean_network_plays_everything_with_little_delay() {
    let packets = packets(500, false, false);
    let r = run(
        &packets,
        link(40.0, 0.0),
        0.0,
        10.0,
        AudioJitterConfig::default(),
        1,
    );
    eprintln!("{:?}", r.stats);
    assert_eq!(r.late, 0);
    // Nothing concealed once playing.
    assert_eq!(r.stats.concealed_samples, 0, "{:?}", r.stats);
    // The start delay of 60 ms is worked down to near zero by accelerating.
    let late_delays: Vec<f64> = r.pulls[500..]
        .iter()
        .filter_map(|p| p.2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let mean = late_delays.iter().sum::<f64>() / late_delays.len() as f64;
    assert!(mean < 25.0, "mean delay {mean:.1} ms");
    assert!(r.stats.removed_samples_for_acceleration > 0);
}

#[test]
fn jitter_is_absorbed_without_late_loss() {
    let packets = packets(3000, false, false);
    let r = run(
        &packets,
        link(40.0, 30.0),
        0.0,
        60.0,
        AudioJitterConfig::default(),
        2,
    );
    eprintln!(
        "late {:.2}% concealed {:.2}% mean {:.1} ms target {:?} {:?}",
        100.0 * r.late_share(),
        100.0 * r.concealed_share(),
        r.mean_delay_ms(),
        r.pulls.last().map(|p| p.3),
        r.stats
    );
    assert!(r.late_share() <= 0.02);
    assert!(r.concealed_share() < 0.05, "{}", r.concealed_share());
}

#[test]
fn reordering_costs_at_most_the_budget() {
    let packets = packets(3000, false, false);
    let config = LinkConfig {
        allow_reorder: true,
        reorder_probability: 0.05,
        reorder_delay_ms: 45.0,
        ..link(40.0, 5.0)
    };
    let r = run(&packets, config, 0.0, 60.0, AudioJitterConfig::default(), 3);
    eprintln!(
        "late {:.2}% concealed {:.2}% mean {:.1} ms {:?}",
        100.0 * r.late_share(),
        100.0 * r.concealed_share(),
        r.mean_delay_ms(),
        r.stats
    );
    assert!(r.late_share() <= 0.02, "{}", r.late_share());
    assert!(r.mean_delay_ms() < 80.0);
}

#[test]
fn a_delay_step_stops_concealing_within_two_seconds() {
    let packets = packets(2100, false, false);
    let config = LinkConfig {
        delay_trace: vec![tincan_netsim::DelayStep {
            at_ms: 15_000.0,
            delay_ms: 240.0,
        }],
        ..link(40.0, 5.0)
    };
    let r = run(&packets, config, 0.0, 40.0, AudioJitterConfig::default(), 4);
    let end = r
        .concealment_run_end(Duration::from_secs(15))
        .expect("the step conceals");
    eprintln!(
        "step concealment ends {end:?}, late {} {:?}",
        r.late, r.stats
    );
    assert!(end < Duration::from_secs(17), "{end:?}");
    // Afterwards concealment is no more frequent than before the step.
    let before = r.expand_pulls(Duration::from_secs(5), Duration::from_secs(15));
    let after = r.expand_pulls(Duration::from_secs(17), Duration::from_secs(27));
    assert!(after <= before + 5, "{before} before, {after} after");
    assert!(r.late_share() <= 0.02);
}

#[test]
fn an_outage_is_concealed_then_playout_resumes_on_time() {
    let packets = packets(2000, false, false);
    let config = LinkConfig {
        outages: vec![Outage {
            start_ms: 15_000.0,
            duration_ms: 1000.0,
        }],
        ..link(40.0, 5.0)
    };
    let r = run(&packets, config, 0.0, 30.0, AudioJitterConfig::default(), 5);
    let end = r
        .concealment_run_end(Duration::from_secs(15))
        .expect("conceals");
    eprintln!("outage concealment ends {end:?} {:?}", r.stats);
    assert!(end < Duration::from_millis(16_200), "{end:?}");
    // After the outage the delay is back to what it was before.
    let before: f64 = mean_delay(&r, 10.0, 15.0);
    let after: f64 = mean_delay(&r, 20.0, 30.0);
    assert!(
        (after - before).abs() < 15.0,
        "{before:.1} vs {after:.1} ms"
    );
}

fn mean_delay(r: &Run, from_s: f64, to_s: f64) -> f64 {
    let d: Vec<f64> = r
        .pulls
        .iter()
        .filter(|p| p.0.as_secs_f64() >= from_s && p.0.as_secs_f64() < to_s)
        .filter_map(|p| p.2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    d.iter().sum::<f64>() / d.len().max(1) as f64
}

fn drift_run(drift: f64) {
    let seconds = 600.0;
    let packets = packets((seconds * 50.0 * (1.0 + drift)) as usize + 10, false, false);
    let r = run(
        &packets,
        link(40.0, 5.0),
        drift,
        seconds,
        AudioJitterConfig::default(),
        6,
    );
    // After warm-up, every one-second mean of the playout delay stays within 20 ms of the
    // one-second mean of the target.
    let mut worst: f64 = 0.0;
    for window in r.pulls[1000..].chunks(100) {
        let delays: Vec<f64> = window
            .iter()
            .filter_map(|p| p.2)
            .map(|d| d.as_secs_f64())
            .collect();
        let targets: f64 =
            window.iter().map(|p| p.3.as_secs_f64()).sum::<f64>() / window.len() as f64;
        if delays.is_empty() {
            continue;
        }
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        if (mean - targets).abs() > 0.015 {
            eprintln!(
                "window at {:?}: delay {:.1} target {:.1}",
                window[0].0,
                mean * 1e3,
                targets * 1e3
            );
        }
        worst = worst.max((mean - targets).abs());
    }
    eprintln!(
        "drift {drift}: worst deviation {:.1} ms, stretch +{} -{}, concealed {:.2}% {:?}",
        worst * 1000.0,
        r.stats.inserted_samples_for_deceleration,
        r.stats.removed_samples_for_acceleration,
        100.0 * r.concealed_share(),
        r.stats
    );
    assert!(worst < 0.020, "{worst}");
}

#[test]
fn clock_drift_fast_sender_over_ten_minutes() {
    drift_run(0.005);
}

#[test]
fn clock_drift_slow_sender_over_ten_minutes() {
    drift_run(-0.005);
}

#[test]
fn fec_rebuilds_single_losses() {
    let packets = packets(1000, true, false);
    let config = LinkConfig {
        loss: 0.05,
        ..link(40.0, 2.0)
    };
    let r = run(&packets, config, 0.0, 20.0, AudioJitterConfig::default(), 8);
    eprintln!("{:?}", r.stats);
    assert!(r.stats.recovered_samples > 0);
    assert!(r.pulls.iter().any(|p| p.1 == Operation::Recover));
}

#[test]
fn dtx_silence_is_comfort_noise_not_loss() {
    // Speech, then 3 s of silence encoded with DTX, then speech.
    let config = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(24_000)
        .with_dtx(true);
    let mut encoder = OpusEncoder::new(&config).expect("encoder");
    let mut sent: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 1500];
    let speech = speech();
    for k in 0..400usize {
        let silent = (100..250).contains(&k);
        let pcm: Vec<i16> = (0..FRAME)
            .map(|i| {
                if silent {
                    0
                } else {
                    speech[(k * FRAME + i) % speech.len()]
                }
            })
            .collect();
        let len = encoder.encode(&pcm, &mut buf).expect("encode");
        // libopus marks frames that need not be sent as 1-2 bytes long; like WebRTC, send
        // only the first of a run (it tells the receiver that silence follows) and the
        // comfort-noise updates libopus makes every 400 ms or so.
        let previous_sent = sent.last().is_some_and(|(last, _)| *last + 1 == k as u32);
        let previous_dtx = sent.last().is_some_and(|(_, p)| p.len() <= 2);
        if len <= 2 && (!previous_sent || previous_dtx) {
            continue;
        }
        sent.push((k as u32, buf[..len].to_vec()));
    }
    assert!(sent.len() < 300, "DTX stopped sending: {}", sent.len());
    let mut jb = buffer(AudioJitterConfig::default());
    let start = Instant::now();
    let mut out = vec![0i16; jb.samples_per_pull()];
    let mut ops = Vec::new();
    let mut next = 0;
    for (seq, (k, payload)) in sent.iter().enumerate() {
        let arrive = start + Duration::from_millis(u64::from(*k) * 20 + 40);
        while start + Duration::from_millis(next * 10) < arrive {
            ops.push(
                jb.pull(start + Duration::from_millis(next * 10), &mut out)
                    .expect("pull")
                    .operation,
            );
            next += 1;
        }
        jb.insert(
            AudioPacket {
                ssrc: 1,
                sequence: seq as u16,
                timestamp: k * TICKS,
                payload,
            },
            arrive,
        )
        .expect("insert");
    }
    if std::env::var_os("JITTER_TRACE").is_some() {
        for (i, o) in ops.iter().enumerate() {
            if *o != Operation::Normal {
                eprintln!("{i:5} {o:?}");
            }
        }
    }
    let cn = ops
        .iter()
        .filter(|o| **o == Operation::ComfortNoise)
        .count();
    let expand = ops.iter().filter(|o| **o == Operation::Expand).count();
    eprintln!("cn {cn} expand {expand} {:?}", jb.stats());
    assert!(cn > 100, "{cn}");
    assert!(expand < 10, "{expand}");
    assert_eq!(jb.stats().late_packets, 0);
}

#[test]
fn duplicates_wraparound_and_a_new_ssrc() {
    let packets = packets(100, false, false);
    let mut jb = buffer(AudioJitterConfig::default());
    let start = Instant::now();
    let mut out = vec![0i16; jb.samples_per_pull()];
    let mut outcomes = Vec::new();
    for (k, payload) in packets.iter().enumerate().take(60) {
        let now = start + Duration::from_millis(k as u64 * 20);
        let packet = AudioPacket {
            ssrc: 1,
            sequence: (65_520 + k as u32) as u16,
            timestamp: (u32::MAX - 10 * TICKS).wrapping_add(k as u32 * TICKS),
            payload,
        };
        outcomes.push(jb.insert(packet, now).expect("insert"));
        outcomes.push(jb.insert(packet, now).expect("insert"));
        jb.pull(now, &mut out).expect("pull");
        jb.pull(now + Duration::from_millis(10), &mut out)
            .expect("pull");
    }
    let dups = outcomes
        .iter()
        .filter(|o| **o == InsertOutcome::Duplicate)
        .count();
    assert_eq!(dups, 60);
    assert_eq!(jb.stats().resets, 0, "wrap-around is not a new stream");
    assert_eq!(jb.stats().late_packets, 0);
    assert_eq!(jb.stats().concealed_samples, 0, "{:?}", jb.stats());
    // A packet of an old, already played sequence number is a duplicate too.
    let old = AudioPacket {
        ssrc: 1,
        sequence: 65_530,
        timestamp: (u32::MAX - 10 * TICKS).wrapping_add(10 * TICKS),
        payload: &packets[10],
    };
    assert_eq!(
        jb.insert(old, start + Duration::from_secs(2))
            .expect("insert"),
        InsertOutcome::Duplicate
    );
    // A new SSRC starts over.
    let now = start + Duration::from_millis(1300);
    let fresh = AudioPacket {
        ssrc: 2,
        sequence: 5,
        timestamp: 123,
        payload: &packets[0],
    };
    assert_eq!(jb.insert(fresh, now).expect("insert"), InsertOutcome::Reset);
    assert_eq!(jb.stats().resets, 1);
    // A timestamp jump of minutes on the same SSRC starts over as well.
    let jump = AudioPacket {
        ssrc: 2,
        sequence: 6,
        timestamp: 123 + 48_000 * 600,
        payload: &packets[1],
    };
    assert_eq!(jb.insert(jump, now).expect("insert"), InsertOutcome::Reset);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut jb = buffer(AudioJitterConfig::default());
    let now = Instant::now();
    assert!(
        jb.insert(
            AudioPacket {
                ssrc: 1,
                sequence: 0,
                timestamp: 0,
                payload: &[]
            },
            now
        )
        .is_err()
    );
    let big = vec![0u8; 5000];
    assert!(
        jb.insert(
            AudioPacket {
                ssrc: 1,
                sequence: 0,
                timestamp: 0,
                payload: &big
            },
            now
        )
        .is_err()
    );
    // Garbage payloads decode with errors and are concealed.
    for k in 0..50u16 {
        jb.insert(
            AudioPacket {
                ssrc: 1,
                sequence: k,
                timestamp: u32::from(k) * TICKS,
                payload: &[0xff, 0xff, 0xff, 0xff, 0x00],
            },
            now + Duration::from_millis(u64::from(k) * 20),
        )
        .expect("stored");
    }
    let mut out = vec![0i16; jb.samples_per_pull()];
    for k in 0..200u64 {
        jb.pull(now + Duration::from_millis(k * 10), &mut out)
            .expect("pull");
    }
    assert!(jb.pull(now, &mut [0i16; 3]).is_err());
    assert!(jb.stats().decode_errors > 0);
}

#[test]
fn dred_rebuilds_bursts_that_fec_cannot() {
    let encode = |config: OpusConfig| -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new(&config).expect("encoder");
        let speech = speech();
        let mut buf = [0u8; 1500];
        (0..1000)
            .map(|k| {
                let pcm: Vec<i16> = (0..FRAME)
                    .map(|i| speech[(k * FRAME + i) % speech.len()])
                    .collect();
                let len = encoder.encode(&pcm, &mut buf).expect("encode");
                buf[..len].to_vec()
            })
            .collect()
    };
    let base = OpusConfig::new(RATE, Channels::Mono)
        .with_bitrate(32_000)
        .with_packet_loss_percent(20);
    let lbrr = encode(base.clone().with_inband_fec(true));
    let dred = encode(base.with_dred_duration(Duration::from_millis(200)));
    // Bursts of about three lost packets (Gilbert-Elliott), 8% loss in all.
    let lossy = LinkConfig {
        gilbert_elliott: Some(tincan_netsim::GilbertElliott {
            p: 0.03,
            r: 0.33,
            loss_good: 0.0,
            loss_bad: 1.0,
        }),
        ..link(40.0, 2.0)
    };
    // Redundancy helps only if the packet after a loss is here when the gap is played:
    // with FEC or DRED on, the application keeps some delay.
    let jitter = AudioJitterConfig {
        min_delay: Duration::from_millis(60),
        ..AudioJitterConfig::default()
    };
    let fec = run(&lbrr, lossy.clone(), 0.0, 20.0, jitter.clone(), 9);
    let decoder = OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono).expect("decoder"))
        .with_dred(DredDecoder::new(RATE).expect("dred"))
        .expect("same rate");
    let jb = AudioJitterBuffer::new(decoder, jitter).expect("buffer");
    let deep = run_with(&dred, lossy, 0.0, 20.0, jb, 9);
    eprintln!(
        "recovered: in-band FEC {} samples, DRED {} samples; concealed {} vs {}",
        fec.stats.recovered_samples,
        deep.stats.recovered_samples,
        fec.stats.concealed_samples,
        deep.stats.concealed_samples
    );
    // In-band FEC rebuilds at most the last frame of a burst; DRED reaches further back.
    assert!(fec.stats.recovered_samples > 0);
    assert!(deep.stats.recovered_samples as f64 > 1.5 * fec.stats.recovered_samples as f64);
    assert!(deep.stats.concealed_samples < fec.stats.concealed_samples);
}

#[test]
fn merges_after_concealment_have_no_clicks() {
    let packets = packets(1500, false, false);
    let lossy = LinkConfig {
        loss: 0.05,
        ..link(40.0, 20.0)
    };
    let r = run(&packets, lossy, 0.0, 30.0, AudioJitterConfig::default(), 10);
    let pull = 160; // samples per pull at 16 kHz
    let max_step = |x: &[i16]| {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    };
    let mut ratios = Vec::new();
    for (p, (_, op, ..)) in r.pulls.iter().enumerate() {
        if *op != Operation::Merge || p < 12 || p + 12 >= r.pulls.len() {
            continue;
        }
        // The join lies in this pull or at its start; compare its steps with the 100 ms
        // either side.
        let join = max_step(&r.audio[(p * pull).saturating_sub(1)..(p + 1) * pull]);
        let around = max_step(&r.audio[(p - 11) * pull..(p - 1) * pull])
            .max(max_step(&r.audio[(p + 2) * pull..(p + 12) * pull]))
            .max(200);
        ratios.push(f64::from(join) / f64::from(around));
        if std::env::var_os("JITTER_TRACE").is_some() && f64::from(join) / f64::from(around) > 1.5 {
            let w = &r.audio[(p * pull).saturating_sub(1)..(p + 1) * pull];
            let i = w
                .windows(2)
                .enumerate()
                .max_by_key(|(_, x)| (i32::from(x[1]) - i32::from(x[0])).abs())
                .map(|(i, _)| i)
                .unwrap_or(0);
            eprintln!(
                "pull {p} ({:?}) join {join} around {around} at {i}: {:?}; ops {:?}",
                r.pulls[p].0,
                &w[i.saturating_sub(4)..(i + 5).min(w.len())],
                &r.pulls[p - 3..p + 2]
                    .iter()
                    .map(|x| x.1)
                    .collect::<Vec<_>>()
            );
        }
    }
    ratios.sort_by(f64::total_cmp);
    let worst = ratios.last().copied().unwrap_or(0.0);
    let p95 = ratios.get(ratios.len() * 95 / 100).copied().unwrap_or(0.0);
    eprintln!(
        "{} merges, step ratio p95 {p95:.2}, worst {worst:.2}",
        ratios.len()
    );
    assert!(ratios.len() > 20, "{}", ratios.len());
    // A join window may hold a speech onset, so a ratio a little above 1 is normal; a
    // click (a jump to or from concealment) shows as 3-5.
    assert!(p95 <= 1.2, "{p95}");
    assert!(worst <= 2.0, "{worst}");
}

/// The high-quality configuration holds its 100 ms start for 3 s, then settles on the
/// 99.9th percentile; a recovery delay raises the target above the typical delay by about
/// that much, and the media timestamp of each pull advances by one pull while nothing is
/// edited.
#[test]
fn start_hold_recovery_delay_and_media_time() {
    let link = LinkConfig {
        delay_ms: 40.0,
        jitter_ms: 5.0,
        ..LinkConfig::default()
    };
    let packets = packets(1000, false, false);
    let quality = run(
        &packets,
        link.clone(),
        0.0,
        20.0,
        AudioJitterConfig::high_quality(),
        5,
    );
    let target_at = |run: &Run, s: f64| {
        run.pulls
            .iter()
            .find(|p| p.0 >= Duration::from_secs_f64(s))
            .map(|p| p.3)
            .expect("pull")
    };
    for s in [0.5, 1.5, 2.5] {
        assert!(
            target_at(&quality, s) >= Duration::from_millis(100),
            "held at {s} s"
        );
    }
    let settled = target_at(&quality, 15.0);
    assert!(
        settled < Duration::from_millis(60),
        "5 ms of jitter needs far less than the start delay: {settled:?}"
    );
    let with_recovery = run(
        &packets,
        link,
        0.0,
        20.0,
        AudioJitterConfig {
            recovery_delay: Duration::from_millis(60),
            ..AudioJitterConfig::high_quality()
        },
        5,
    );
    let raised = target_at(&with_recovery, 15.0);
    assert!(
        raised >= settled + Duration::from_millis(40)
            && raised <= settled + Duration::from_millis(75),
        "{settled:?} -> {raised:?}"
    );

    // Media time: one pull (480 ticks at 48 kHz) per pull in steady playout.
    let mut jb = buffer(AudioJitterConfig::default());
    let t0 = Instant::now();
    let mut out = vec![0i16; jb.samples_per_pull()];
    let mut stamps = Vec::new();
    for p in 0..200u32 {
        let now = t0 + Duration::from_millis(10 * u64::from(p));
        if p % 2 == 0 {
            let k = (p / 2) as usize;
            jb.insert(
                AudioPacket {
                    ssrc: 9,
                    sequence: k as u16,
                    timestamp: 1_000 + k as u32 * 960,
                    payload: &packets[k],
                },
                now,
            )
            .expect("insert");
        }
        let info = jb.pull(now, &mut out).expect("pull");
        if info.operation == Operation::Normal {
            stamps.push(info.media_timestamp.expect("playing"));
        }
    }
    assert!(stamps.len() > 100);
    assert!(stamps[0] >= 1_000);
    assert!(
        stamps
            .windows(2)
            .filter(|w| w[1].wrapping_sub(w[0]) == 480)
            .count()
            > 90
    );
}

#[test]
fn pauses_are_edited_only_once_a_real_pause_has_been_played() {
    // After its 3 s start hold at 100 ms, the high-quality buffer sheds the extra delay by
    // accelerating pauses: only ones that have lasted the configured 150 ms, never the
    // short gaps inside words.
    let link = LinkConfig {
        delay_ms: 40.0,
        jitter_ms: 5.0,
        ..LinkConfig::default()
    };
    let packets = packets(1000, false, false);
    let config = AudioJitterConfig::high_quality();
    let needed = (config.pause_before_edit.as_millis() / 10) as usize;
    assert!(needed >= 10, "{:?}", config.pause_before_edit);
    let run = run(&packets, link, 0.0, 20.0, config, 5);
    let per_pull = run.audio.len() / run.pulls.len();
    let quiet = |pull: usize| {
        let frame = &run.audio[pull * per_pull..(pull + 1) * per_pull];
        let energy: f64 = frame.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        energy / (frame.len() as f64) < 184.0 * 184.0
    };
    let edits: Vec<usize> = (0..run.pulls.len())
        .filter(|&i| run.pulls[i].1 == Operation::Accelerate)
        .collect();
    assert!(!edits.is_empty(), "the start hold's extra delay is shed");
    for &i in &edits {
        assert!(
            i >= needed && (i - needed..i).all(quiet),
            "accelerated at pull {i} without {needed} quiet pulls before it"
        );
    }
    // And the delay does come down (so the rule does not just stop all editing).
    let late_target = run.pulls[1900].3;
    assert!(late_target < Duration::from_millis(60), "{late_target:?}");
}
