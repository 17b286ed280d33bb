//! `tincan lab loss`: speech through loss conditions with each audio recovery scheme,
//! received through the real receive path (RED splitting, the adaptive jitter buffer with
//! its FEC/DRED recovery and concealment), decoded to WAV with a JSON manifest that
//! `cargo xtask quality` scores with PESQ and STOI.
//!
//! Schemes (Opus 48 kHz mono, 20 ms frames):
//! - `plc`: 32 kbps, nothing redundant; losses concealed by the decoder;
//! - `lbrr`: 32 kbps with in-band FEC, the encoder told the condition's loss rate;
//! - `red1`, `red2`, `red4`: 24 kbps frames with 1, 2 or 4 earlier frames repeated (RFC 2198);
//! - `dred`: 24 kbps with deep redundancy capped at 1 s; `dred48`: the same at 48 kbps;
//! - `adaptive`: [`tincan_fec::policy::AudioPolicy`] choosing among these every second from
//!   the receiver's loss report (delivered one RTT later), within a 128 kbps budget; its
//!   packets are always RED payloads (depth 0 when it picks no RED).

use super::LabError;
use clap::Args;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tincan_codec::AudioEncoder;
use tincan_codec::opus::{DredDecoder, OpusConfig, OpusDecoder, OpusEncoder};
use tincan_codec::resample::resample_all;
use tincan_fec::policy::{AudioPolicy, AudioPolicyConfig, AudioPolicyStats, LossReport};
use tincan_jitter::{AudioJitterBuffer, AudioJitterConfig, AudioPacket, OpusPacketDecoder};
use tincan_media::wav::{self, WavWriter};
use tincan_media::{AudioFormat, AudioFrame, Channels};
use tincan_netsim::{GilbertElliott, Link, LinkConfig, Poll};
use tincan_rtp::payload::red::{RedEncoder, RedPayload};

const RATE: u32 = 48_000;
const FRAME: usize = 960;
const PULL: usize = 480;
const OPUS_PT: u8 = 111;
/// The longest the receiver keeps playing after the last packet's media time (it stops
/// earlier once everything received has been played).
const TAIL: Duration = Duration::from_millis(600);

/// Options of `tincan lab loss`.
#[derive(Args, Debug, Clone)]
pub struct LossArgs {
    /// Where the WAVs and `manifest.json` go.
    #[arg(long, default_value = "target/lab-loss")]
    out: PathBuf,
    /// Speech WAV (default: every fixture clip in `fixtures/speech`, joined).
    #[arg(long)]
    speech: Option<PathBuf>,
    /// Seeds per condition (1, 2, ...).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Run only these schemes (repeatable; default: all).
    #[arg(long = "scheme", value_name = "NAME")]
    schemes: Vec<String>,
    /// Run only these conditions (repeatable; default: all).
    #[arg(long = "condition", value_name = "NAME")]
    conditions: Vec<String>,
    /// One-way delay of the network, ms.
    #[arg(long, default_value_t = 50.0)]
    delay_ms: f64,
    /// Jitter (standard deviation) of the network, ms.
    #[arg(long, default_value_t = 20.0)]
    jitter_ms: f64,
    /// The jitter buffer's target quantile (its default when not given).
    #[arg(long)]
    jitter_quantile: Option<f64>,
    /// Turn the jitter buffer's time stretching off (it then only conceals, and its delay
    /// only grows), to see what stretching costs in quality.
    #[arg(long)]
    no_time_stretching: bool,
}

impl LossArgs {
    /// The receiver's jitter buffer configuration for a minimum delay.
    fn jitter_config(&self, min_delay: Duration) -> AudioJitterConfig {
        let default = AudioJitterConfig::default();
        AudioJitterConfig {
            min_delay,
            target_quantile: self.jitter_quantile.unwrap_or(default.target_quantile),
            time_stretching: !self.no_time_stretching,
            ..default
        }
    }
}

/// A loss condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Its name in file names and tables.
    pub name: String,
    /// Long-run loss rate.
    pub loss: f64,
    /// Mean burst length for Gilbert-Elliott loss; `None` for independent loss.
    pub burst: Option<f64>,
}

/// The conditions of the issue: random loss at 0-80%, bursts of 3 at 10% and 30%.
pub fn conditions() -> Vec<Condition> {
    let mut all: Vec<Condition> = [0, 5, 10, 20, 30, 50, 80]
        .into_iter()
        .map(|pct| Condition {
            name: format!("random-{pct}"),
            loss: f64::from(pct) / 100.0,
            burst: None,
        })
        .collect();
    for pct in [10, 30] {
        all.push(Condition {
            name: format!("bursty-{pct}"),
            loss: f64::from(pct) / 100.0,
            burst: Some(3.0),
        });
    }
    all
}

impl Condition {
    /// The network: `delay_ms` one way with `jitter_ms` jitter (in order), and this loss.
    pub fn link(&self, delay_ms: f64, jitter_ms: f64) -> LinkConfig {
        let mut link = LinkConfig {
            delay_ms,
            jitter_ms,
            ..LinkConfig::default()
        };
        match self.burst {
            None => link.loss = self.loss,
            Some(burst) => {
                // Bursts of mean length 1/r; the bad state's share p/(p+r) is the loss.
                let r = 1.0 / burst;
                let p = if self.loss >= 1.0 {
                    1.0
                } else {
                    (self.loss * r / (1.0 - self.loss)).min(1.0)
                };
                link.gilbert_elliott = Some(GilbertElliott {
                    p,
                    r,
                    loss_good: 0.0,
                    loss_bad: 1.0,
                });
            }
        }
        link
    }
}

/// A recovery scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Decoder concealment only.
    Plc,
    /// Opus in-band FEC.
    Lbrr,
    /// RED with this many redundant frames.
    Red(usize),
    /// DRED at this bitrate.
    Dred(u32),
    /// The loss-adaptive policy.
    Adaptive,
}

impl Scheme {
    /// Every scheme, in table order.
    pub const ALL: [Scheme; 8] = [
        Scheme::Plc,
        Scheme::Lbrr,
        Scheme::Red(1),
        Scheme::Red(2),
        Scheme::Red(4),
        Scheme::Dred(24_000),
        Scheme::Dred(48_000),
        Scheme::Adaptive,
    ];

    /// Its name in file names and tables.
    pub fn name(self) -> String {
        match self {
            Scheme::Plc => "plc".into(),
            Scheme::Lbrr => "lbrr".into(),
            Scheme::Red(depth) => format!("red{depth}"),
            Scheme::Dred(24_000) => "dred".into(),
            Scheme::Dred(bitrate) => format!("dred{}", bitrate / 1000),
            Scheme::Adaptive => "adaptive".into(),
        }
    }

    fn opus_config(self, loss: f64) -> OpusConfig {
        let loss_pct = (loss * 100.0).round().clamp(0.0, 100.0) as u8;
        let base = OpusConfig::new(RATE, Channels::Mono);
        match self {
            Scheme::Plc => base.with_bitrate(32_000),
            Scheme::Lbrr => base
                .with_bitrate(32_000)
                .with_inband_fec(true)
                .with_packet_loss_percent(loss_pct),
            Scheme::Red(_) | Scheme::Adaptive => base.with_bitrate(24_000),
            // DRED is only sent when the encoder expects some loss.
            Scheme::Dred(bitrate) => base
                .with_bitrate(bitrate)
                .with_packet_loss_percent(loss_pct.max(10))
                .with_dred_duration(Duration::from_secs(1)),
        }
    }

    /// The jitter buffer's minimum delay: redundancy only helps when the packet carrying
    /// it is buffered when the lost frame is due.
    fn min_delay(self) -> Duration {
        match self {
            Scheme::Plc => Duration::ZERO,
            Scheme::Lbrr => Duration::from_millis(20),
            Scheme::Red(depth) => Duration::from_millis(20 * depth.min(3) as u64),
            Scheme::Dred(_) => Duration::from_millis(40),
            Scheme::Adaptive => Duration::ZERO,
        }
    }
}

/// One run in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    /// Scheme name.
    pub scheme: String,
    /// Condition name.
    pub condition: String,
    /// Long-run loss rate of the condition.
    pub loss: f64,
    /// Mean burst length, for bursty conditions.
    pub burst: Option<f64>,
    /// Seed of the network.
    pub seed: u64,
    /// The decoded WAV, relative to the manifest.
    pub wav: String,
    /// Payload bitrate actually sent (RTP payloads, headers excluded), kbit/s.
    pub kbps_sent: f64,
    /// Packets the network dropped, percent.
    pub network_loss_pct: f64,
    /// Audio concealed rather than decoded or rebuilt, percent of what was played.
    pub residual_loss_pct: f64,
    /// Audio rebuilt from redundancy, percent of what was played.
    pub recovered_pct: f64,
    /// Mean jitter buffer delay (arrival to playout), ms.
    pub jitter_buffer_delay_ms: f64,
    /// Packets that arrived after their playout time, percent of packets sent.
    pub late_pct: f64,
    /// What the adaptive policy did (adaptive scheme only).
    pub policy: Option<PolicySummary>,
}

/// The adaptive policy's statistics, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    /// Settings changes.
    pub changes: u64,
    /// Steps up the ladder.
    pub steps_up: u64,
    /// Steps down the ladder.
    pub steps_down: u64,
    /// Reports where the budget capped the rung.
    pub budget_limited: u64,
    /// Reports handled at each rung of the ladder.
    pub reports_at_level: Vec<u64>,
}

impl From<AudioPolicyStats> for PolicySummary {
    fn from(stats: AudioPolicyStats) -> Self {
        Self {
            changes: stats.changes,
            steps_up: stats.steps_up,
            steps_down: stats.steps_down,
            budget_limited: stats.budget_limited,
            reports_at_level: stats.updates_at_level.to_vec(),
        }
    }
}

/// The manifest `cargo xtask quality` reads.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The clean input, relative to the manifest.
    pub reference: String,
    /// Sample rate of every WAV.
    pub sample_rate: u32,
    /// One-way delay and jitter of the network, ms.
    pub network: (f64, f64),
    /// The runs.
    pub runs: Vec<RunEntry>,
}

/// Opus packets of `speech` for a scheme (RED payloads for RED schemes).
fn encode(scheme: Scheme, loss: f64, speech: &[i16]) -> Result<Vec<Vec<u8>>, LabError> {
    let mut encoder = OpusEncoder::new(&scheme.opus_config(loss))?;
    let mut red = match scheme {
        Scheme::Red(depth) => Some(RedEncoder::new(depth)?),
        _ => None,
    };
    let mut packet = [0u8; 1500];
    let mut packets = Vec::with_capacity(speech.len() / FRAME);
    for (k, frame) in speech.chunks_exact(FRAME).enumerate() {
        let len = encoder.encode(frame, &mut packet)?;
        match red.as_mut() {
            Some(red) => {
                let mut out = Vec::new();
                red.encode(OPUS_PT, (k * FRAME) as u32, &packet[..len], &mut out)?;
                packets.push(out);
            }
            None => packets.push(packet[..len].to_vec()),
        }
    }
    Ok(packets)
}

/// Deliveries of `count` packets sent every 20 ms: (packet index, arrival).
fn deliveries(
    link: LinkConfig,
    seed: u64,
    count: usize,
    t0: Instant,
) -> Result<Vec<(usize, Instant)>, LabError> {
    let mut link = Link::new(link, seed)?;
    link.set_epoch(t0);
    for k in 0..count {
        link.send(k, 100, t0 + Duration::from_millis(20 * k as u64));
    }
    let mut out = Vec::with_capacity(count);
    while let Poll::Deliver(d) = link.poll(t0 + Duration::from_secs(24 * 3600)) {
        out.push((d.packet, d.delivered_at));
    }
    Ok(out)
}

/// Feeds one received payload to the buffer: RED blocks oldest first, then the primary.
fn receive(
    buffer: &mut AudioJitterBuffer<OpusPacketDecoder>,
    scheme: Scheme,
    k: usize,
    payload: &[u8],
    at: Instant,
) {
    let packet = |index: usize, payload| AudioPacket {
        ssrc: 1,
        sequence: index as u16,
        timestamp: (index * FRAME) as u32,
        payload,
    };
    if !matches!(scheme, Scheme::Red(_) | Scheme::Adaptive) {
        let _ = buffer.insert(packet(k, payload), at);
        return;
    }
    // A payload that does not parse is dropped as the network would drop garbage.
    let Ok(red) = RedPayload::parse(payload) else {
        return;
    };
    for block in red.redundant() {
        let back = usize::from(block.timestamp_offset).div_ceil(FRAME);
        if let Some(index) = k.checked_sub(back)
            && !block.data.is_empty()
        {
            let _ = buffer.insert(packet(index, block.data), at);
        }
    }
    let primary = red.primary();
    if !primary.data.is_empty() {
        let _ = buffer.insert(packet(k, primary.data), at);
    }
}

/// Runs one scheme on one condition with one seed; writes its WAV into `dir`.
fn run_one(
    args: &LossArgs,
    speech: &[i16],
    scheme: Scheme,
    condition: &Condition,
    seed: u64,
    dir: &Path,
) -> Result<RunEntry, LabError> {
    if scheme == Scheme::Adaptive {
        return run_adaptive(args, speech, condition, seed, dir);
    }
    let packets = encode(scheme, condition.loss, speech)?;
    let t0 = Instant::now();
    let arrivals = deliveries(
        condition.link(args.delay_ms, args.jitter_ms),
        seed,
        packets.len(),
        t0,
    )?;
    let mut decoder = OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono)?);
    if let Scheme::Dred(_) = scheme {
        decoder = decoder.with_dred(DredDecoder::new(RATE)?)?;
    }
    let mut buffer = AudioJitterBuffer::new(decoder, args.jitter_config(scheme.min_delay()))?;
    let file = format!("{}_{}_s{seed}.wav", scheme.name(), condition.name);
    let mut wav = WavWriter::create(dir.join(&file), AudioFormat::new(RATE, Channels::Mono)?)?;
    let media = Duration::from_millis(20 * packets.len() as u64);
    let pulls =
        ((media + TAIL + Duration::from_millis(args.delay_ms as u64)).as_millis() / 10) as usize;
    let mut out = vec![0i16; PULL];
    let mut next = 0;
    for p in 0..pulls {
        let now = t0 + Duration::from_millis(10 * p as u64);
        while let Some(&(k, at)) = arrivals.get(next).filter(|(_, at)| *at <= now) {
            receive(&mut buffer, scheme, k, &packets[k], at);
            next += 1;
        }
        let info = buffer.pull(now, &mut out)?;
        // Once everything sent has been played, stop: concealing after the end of the
        // stream is not loss.
        let sent_all = now >= t0 + media && next == arrivals.len();
        if sent_all && buffer.packets_held() == 0 && info.samples_from_packets == 0 {
            break;
        }
        wav.write(&out)?;
    }
    wav.finalize()?;
    let bytes: usize = packets.iter().map(Vec::len).sum();
    Ok(entry(
        scheme,
        condition,
        seed,
        file,
        buffer.stats(),
        bytes,
        packets.len(),
        arrivals.len(),
        media,
    ))
}

/// The manifest entry of a run.
#[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
fn entry(
    scheme: Scheme,
    condition: &Condition,
    seed: u64,
    wav: String,
    stats: &tincan_jitter::AudioJitterStats,
    bytes: usize,
    sent: usize,
    received: usize,
    media: Duration,
) -> RunEntry {
    let played = stats.total_samples_received.max(1) as f64;
    RunEntry {
        scheme: scheme.name(),
        condition: condition.name.clone(),
        loss: condition.loss,
        burst: condition.burst,
        seed,
        wav,
        kbps_sent: bytes as f64 * 8.0 / media.as_secs_f64() / 1000.0,
        network_loss_pct: 100.0 * sent.saturating_sub(received) as f64 / sent.max(1) as f64,
        residual_loss_pct: 100.0 * stats.concealed_samples as f64 / played,
        recovered_pct: 100.0 * stats.recovered_samples as f64 / played,
        jitter_buffer_delay_ms: stats.mean_delay().as_secs_f64() * 1000.0,
        late_pct: 100.0 * stats.late_packets as f64 / sent.max(1) as f64,
        policy: None,
    }
}

/// Budget the adaptive scheme may spend on audio, bits per second.
const ADAPTIVE_BUDGET: u32 = 128_000;
/// How often the receiver reports loss.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The adaptive scheme: encoding follows the policy, which follows the receiver's reports.
fn run_adaptive(
    args: &LossArgs,
    speech: &[i16],
    condition: &Condition,
    seed: u64,
    dir: &Path,
) -> Result<RunEntry, LabError> {
    let mut policy = AudioPolicy::new(AudioPolicyConfig::default());
    let mut settings = *policy.current();
    let mut encoder = OpusEncoder::new(&Scheme::Adaptive.opus_config(0.0))?;
    encoder.set_bitrate(settings.opus_bitrate)?;
    let mut red = RedEncoder::new(0)?;
    let decoder = OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono)?)
        .with_dred(DredDecoder::new(RATE)?)?;
    let mut buffer = AudioJitterBuffer::new(decoder, args.jitter_config(Duration::ZERO))?;
    let mut link: Link<usize> = Link::new(condition.link(args.delay_ms, args.jitter_ms), seed)?;
    let t0 = Instant::now();
    link.set_epoch(t0);
    let frames: Vec<&[i16]> = speech.chunks_exact(FRAME).collect();
    let mut packets: Vec<Vec<u8>> = Vec::with_capacity(frames.len());
    let file = format!("adaptive_{}_s{seed}.wav", condition.name);
    let mut wav = WavWriter::create(dir.join(&file), AudioFormat::new(RATE, Channels::Mono)?)?;
    let media = Duration::from_millis(20 * frames.len() as u64);
    let one_way = Duration::from_secs_f64(args.delay_ms / 1000.0);
    let rtt = one_way * 2;
    let pulls = ((media + TAIL + rtt).as_millis() / 10) as usize;
    let mut out = vec![0i16; PULL];
    let mut opus = [0u8; 1500];
    // Receiver bookkeeping for reports: which packets arrived.
    let mut received = vec![false; frames.len()];
    let mut report_from = 0usize;
    let mut next_report = t0 + REPORT_INTERVAL;
    // Reports on their way to the sender: (arrival at the sender, report).
    let mut reports: VecDeque<(Instant, LossReport)> = VecDeque::new();
    let mut arrived = 0usize;
    for p in 0..pulls {
        let now = t0 + Duration::from_millis(10 * p as u64);
        // Sender: apply the reports that have arrived, then send what is due.
        while let Some(&(at, report)) = reports.front().filter(|(at, _)| *at <= now) {
            reports.pop_front();
            let next = policy.update(report, ADAPTIVE_BUDGET, at);
            if next != settings {
                encoder.set_bitrate(next.opus_bitrate)?;
                encoder.set_inband_fec(next.inband_fec)?;
                encoder.set_packet_loss_percent(next.expected_loss_pct)?;
                encoder.set_dred_duration(next.dred)?;
                if next.red_depth != settings.red_depth {
                    red = RedEncoder::new(next.red_depth)?;
                }
                // The receiver's minimum delay travels in signalling; the lab applies it.
                buffer.set_min_delay(next.min_jitter_delay);
                settings = next;
            }
        }
        while packets.len() < frames.len()
            && t0 + Duration::from_millis(20 * packets.len() as u64) <= now
        {
            let k = packets.len();
            let len = encoder.encode(frames[k], &mut opus)?;
            let mut payload = Vec::new();
            red.encode(OPUS_PT, (k * FRAME) as u32, &opus[..len], &mut payload)?;
            link.send(
                k,
                payload.len() + 40,
                t0 + Duration::from_millis(20 * k as u64),
            );
            packets.push(payload);
        }
        // Receiver: deliveries, reports, playout.
        while let Poll::Deliver(d) = link.poll(now) {
            received[d.packet] = true;
            arrived += 1;
            receive(
                &mut buffer,
                Scheme::Adaptive,
                d.packet,
                &packets[d.packet],
                d.delivered_at,
            );
        }
        if now >= next_report {
            // Packets sent up to a one-way delay (and some jitter) ago had their chance.
            let horizon = now.saturating_duration_since(t0 + one_way + Duration::from_millis(100));
            let upto = ((horizon.as_millis() / 20) as usize).min(packets.len());
            if upto > report_from {
                let report = loss_report(&received[report_from..upto], rtt);
                reports.push_back((now + one_way, report));
                report_from = upto;
            }
            next_report += REPORT_INTERVAL;
        }
        let info = buffer.pull(now, &mut out)?;
        let sent_all = packets.len() == frames.len() && link.in_flight() == 0;
        if sent_all && buffer.packets_held() == 0 && info.samples_from_packets == 0 {
            break;
        }
        wav.write(&out)?;
    }
    wav.finalize()?;
    let bytes: usize = packets.iter().map(Vec::len).sum();
    let mut run = entry(
        Scheme::Adaptive,
        condition,
        seed,
        file,
        buffer.stats(),
        bytes,
        packets.len(),
        arrived,
        media,
    );
    run.policy = Some((*policy.stats()).into());
    Ok(run)
}

/// Loss rate and mean burst length of one report interval.
fn loss_report(received: &[bool], rtt: Duration) -> LossReport {
    let lost = received.iter().filter(|r| !**r).count();
    let bursts = received.windows(2).filter(|w| w[0] && !w[1]).count()
        + usize::from(received.first() == Some(&false));
    LossReport {
        loss: lost as f64 / received.len().max(1) as f64,
        mean_burst: if bursts == 0 {
            1.0
        } else {
            lost as f64 / bursts as f64
        },
        rtt,
    }
}

/// The speech: the given WAV, or every fixture clip joined, at 48 kHz, whole frames.
fn load_speech(path: Option<&Path>) -> Result<Vec<i16>, LabError> {
    let paths: Vec<PathBuf> = match path {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let dir = crate::default_fixtures().join("speech");
            let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                .collect();
            clips.sort();
            clips
        }
    };
    let mut speech = Vec::new();
    for path in paths {
        let clip: AudioFrame<i16> = wav::read_wav(&path)?;
        if clip.format().channels() != Channels::Mono {
            return Err(format!("{}: speech must be mono", path.display()).into());
        }
        speech.extend_from_slice(resample_all(&clip, RATE)?.samples());
        // 200 ms of silence between clips, as between utterances.
        speech.resize(speech.len() + RATE as usize / 5, 0);
    }
    speech.truncate(speech.len() / FRAME * FRAME);
    if speech.is_empty() {
        return Err("no speech".into());
    }
    Ok(speech)
}

/// Runs the lab.
///
/// # Errors
///
/// Unknown scheme or condition names, codec or file errors.
pub fn run(args: &LossArgs) -> Result<(), LabError> {
    let started = Instant::now();
    let schemes: Vec<Scheme> = Scheme::ALL
        .into_iter()
        .filter(|s| args.schemes.is_empty() || args.schemes.contains(&s.name()))
        .collect();
    let conditions: Vec<Condition> = conditions()
        .into_iter()
        .filter(|c| args.conditions.is_empty() || args.conditions.contains(&c.name))
        .collect();
    for name in &args.schemes {
        if !Scheme::ALL.iter().any(|s| &s.name() == name) {
            return Err(format!("unknown scheme {name}").into());
        }
    }
    for name in &args.conditions {
        if !self::conditions().iter().any(|c| &c.name == name) {
            return Err(format!("unknown condition {name}").into());
        }
    }
    let speech = load_speech(args.speech.as_deref())?;
    std::fs::create_dir_all(&args.out)?;
    let format = AudioFormat::new(RATE, Channels::Mono)?;
    wav::write_wav(
        args.out.join("reference.wav"),
        &AudioFrame::from_samples(format, speech.clone())?,
    )?;
    let mut jobs = Vec::new();
    for condition in &conditions {
        for &scheme in &schemes {
            for seed in 1..=args.seeds {
                jobs.push((scheme, condition.clone(), seed));
            }
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(usize, RunEntry), LabError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((scheme, condition, seed)) = jobs.get(i) else {
                            break;
                        };
                        done.push(
                            run_one(args, &speech, *scheme, condition, *seed, &args.out)
                                .map(|r| (i, r)),
                        );
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a lab worker panicked".into())])
            })
            .collect()
    });
    let mut runs = Vec::with_capacity(results.len());
    for result in results {
        runs.push(result?);
    }
    runs.sort_by_key(|(i, _)| *i);
    let runs: Vec<RunEntry> = runs.into_iter().map(|(_, r)| r).collect();
    let manifest = Manifest {
        reference: "reference.wav".into(),
        sample_rate: RATE,
        network: (args.delay_ms, args.jitter_ms),
        runs,
    };
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    print!("{}", table(&manifest));
    println!(
        "{} runs of {:.1} s of speech in {:.1} s; WAVs and manifest.json in {}",
        manifest.runs.len(),
        speech.len() as f64 / f64::from(RATE),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    println!(
        "score them with: cargo xtask quality {}",
        args.out.display()
    );
    Ok(())
}

/// Residual loss, bitrate and delay per condition and scheme (seeds averaged).
pub fn table(manifest: &Manifest) -> String {
    let mut schemes: Vec<&str> = Vec::new();
    let mut conditions: Vec<&str> = Vec::new();
    for run in &manifest.runs {
        if !schemes.contains(&run.scheme.as_str()) {
            schemes.push(&run.scheme);
        }
        if !conditions.contains(&run.condition.as_str()) {
            conditions.push(&run.condition);
        }
    }
    let mut text = format!(
        "tincan lab loss: residual loss % (concealed) / kbps sent / jitter buffer delay ms; network {} ms one way, {} ms jitter\n",
        manifest.network.0, manifest.network.1
    );
    text.push_str(&format!("{:<11}", "condition"));
    for scheme in &schemes {
        text.push_str(&format!("{scheme:>20}"));
    }
    text.push('\n');
    for condition in &conditions {
        text.push_str(&format!("{condition:<11}"));
        for scheme in &schemes {
            let runs: Vec<&RunEntry> = manifest
                .runs
                .iter()
                .filter(|r| r.scheme == *scheme && r.condition == *condition)
                .collect();
            let n = runs.len().max(1) as f64;
            let mean = |f: fn(&RunEntry) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
            let cell = format!(
                "{:.1}/{:.0}/{:.0}",
                mean(|r| r.residual_loss_pct),
                mean(|r| r.kbps_sent),
                mean(|r| r.jitter_buffer_delay_ms)
            );
            text.push_str(&format!("{cell:>20}"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_the_issue_list_with_the_right_burst_chain() {
        let all = conditions();
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "random-0",
                "random-5",
                "random-10",
                "random-20",
                "random-30",
                "random-50",
                "random-80",
                "bursty-10",
                "bursty-30"
            ]
        );
        let bursty = all[8].link(50.0, 20.0);
        let ge = bursty.gilbert_elliott.expect("bursty");
        assert!((ge.p / (ge.p + ge.r) - 0.3).abs() < 1e-9);
        assert!((1.0 / ge.r - 3.0).abs() < 1e-9);
        assert_eq!(all[3].link(50.0, 20.0).loss, 0.2);
    }

    #[test]
    fn red_blocks_fill_holes_in_the_buffer() {
        // Two seconds of a tone through RED depth 2, every third packet lost: the buffer
        // gets every frame from a later packet's redundancy, so nothing is concealed.
        let tone: Vec<i16> = (0..RATE as usize * 2)
            .map(|i| {
                ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(RATE)).sin() * 8000.0) as i16
            })
            .collect();
        let packets = encode(Scheme::Red(2), 0.0, &tone).expect("encode");
        let decoder =
            OpusPacketDecoder::new(OpusDecoder::new(RATE, Channels::Mono).expect("decoder"));
        let config = AudioJitterConfig {
            min_delay: Scheme::Red(2).min_delay(),
            ..AudioJitterConfig::default()
        };
        let mut buffer = AudioJitterBuffer::new(decoder, config).expect("buffer");
        let t0 = Instant::now();
        let mut out = vec![0i16; PULL];
        for p in 0..(packets.len() * 2 + 20) {
            let now = t0 + Duration::from_millis(10 * p as u64);
            if p % 2 == 0 && p / 2 < packets.len() && (p / 2) % 3 != 1 {
                receive(&mut buffer, Scheme::Red(2), p / 2, &packets[p / 2], now);
            }
            buffer.pull(now, &mut out).expect("pull");
        }
        let stats = buffer.stats();
        // Only the tail after the last packet is concealed.
        assert!(stats.concealed_samples <= 20 * PULL as u64, "{stats:?}");
        assert!(stats.packets_received > packets.len() as u64);
    }

    #[test]
    fn schemes_have_distinct_names() {
        let names: Vec<String> = Scheme::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "plc", "lbrr", "red1", "red2", "red4", "dred", "dred48", "adaptive"
            ]
        );
    }
}
