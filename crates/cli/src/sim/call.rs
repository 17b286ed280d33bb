//! The call loop: every participant a full [`Session`], every ordered pair a netsim
//! [`Link`], the [`Relay`] in the middle, all on one virtual clock.
//!
//! Time is made up: instants are offsets from one origin, and the loop jumps from one
//! deadline to the next (the sessions' timers, the links' deliveries and the 10 ms audio
//! clock), so the call runs as fast as the machine computes it. At each 10 ms tick every
//! participant pushes its next microphone frame and pulls its next playout frame.
//!
//! The participants' sessions share nothing, so their work at one instant (deliveries,
//! timers, the tick's push and pull: most of a call's time) runs on a rayon pool, one
//! participant per task; what joins them (the relay, what enters the links, events, the
//! measurer, the WAVs) stays on one thread in participant order. The outputs are therefore
//! the same for any number of threads (`tests/sim_parallel.rs`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use tincan_media::audio::{AudioFormat, Channels};
use tincan_media::wav::WavWriter;
use tincan_netsim::{Link, LinkConfig, Poll};

use tincan_jitter::AudioJitterStats;
use tincan_pipeline::{Event, FRAME_SAMPLES, Input, Output, RemoteStats, SAMPLE_RATE, Session};

use super::SimError;
use super::measure::{MAX_LAG_MS, Measurer};
use super::relay::Relay;
use super::report::{
    ConfigReport, DirectionReport, EventCounts, MAX_DIRECTION_POINTS, MemorySample, MouthToEar,
    NetworkPoint, NetworkReport, ParticipantReport, Playout, RemotePoint, Report, Series, Speed,
    StatsPoint, WindowMeasure, process_cpu_time, resident_kib,
};
use super::talk::{Microphone, TalkSchedule};
use super::video::{self, ParticipantVideo, VideoDirection, VideoSent, VideoSetup};

/// The audio clock.
const TICK: Duration = Duration::from_millis(10);
/// IPv4 and UDP headers, counted in every datagram's size on the links.
const UDP_IP_OVERHEAD: usize = 28;
/// How often the links' counters are sampled for the network series.
const NETWORK_INTERVAL_TICKS: u64 = 200;
/// How often resident memory is sampled.
const MEMORY_INTERVAL_TICKS: u64 = 1_000;
/// How often the progress bar moves.
const PROGRESS_TICKS: u64 = 50;
/// Between ticks, deliveries and timers are handed out in parallel only when this many
/// participants have something due at the same instant: one datagram costs a session a
/// few microseconds, about what waking another thread costs.
const PARALLEL_MIN_DUE: usize = 4;

/// One direction's network.
#[derive(Debug, Clone)]
pub struct LinkSetup {
    /// The profile's name (or file), for the report.
    pub profile: String,
    /// The link's configuration.
    pub config: LinkConfig,
}

/// Everything a call needs.
#[derive(Debug)]
pub struct CallSetup {
    /// Participants (2..=16).
    pub participants: usize,
    /// Simulated length.
    pub duration: Duration,
    /// Seed of all randomness.
    pub seed: u64,
    /// `links[from * participants + to]` for `from != to` (the diagonal is unused).
    pub links: Vec<LinkSetup>,
    /// Each participant's microphone.
    pub mics: Vec<Microphone>,
    /// Who talks when.
    pub schedule: TalkSchedule,
    /// Turn and gap, for the report.
    pub turn_ms: u64,
    /// Silence before each turn, ms.
    pub gap_ms: u64,
    /// Where the WAV files go.
    pub out_dir: PathBuf,
    /// Whether to draw a progress bar (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Participants who leave the call for a while (and rejoin with a fresh session).
    pub absences: Vec<Absence>,
    /// Worker threads for the participants' work (0: one per core with video, one
    /// without).
    pub threads: usize,
    /// The cameras, when the call has video.
    pub video: Option<VideoSetup>,
    /// `audio`, `video` or `both`, for the report.
    pub media: &'static str,
    /// The congestion controllers' first target, bit/s (the application's start rate).
    pub start_bps: u64,
}

/// A participant away from the call between two instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Absence {
    /// Who (0-based).
    pub participant: usize,
    /// When it leaves, from the call's start.
    pub leave: Duration,
    /// When it rejoins (at or after the end: it does not come back).
    pub rejoin: Duration,
}

/// The SSRC of participant `index`'s audio: distinct, and not a small number, so that a
/// field left 0 never names anyone.
pub fn audio_ssrc(index: usize) -> u32 {
    0x7C00_0000 | ((index as u32 + 1) << 8) | 0xA0
}

/// Tells the relay participant `index`'s SSRCs (audio, and video, RTX and FlexFEC when the
/// call has video), as signalling would: feedback about a stream can then reach its
/// sender before the stream's first packet.
fn claim_ssrcs(relay: &mut Relay, index: usize, with_video: bool) -> Result<(), SimError> {
    let video = if with_video {
        video::video_ssrcs(index).to_vec()
    } else {
        Vec::new()
    };
    for ssrc in std::iter::once(audio_ssrc(index)).chain(video) {
        relay
            .claim_ssrc(index, ssrc)
            .map_err(|e| SimError::Invalid {
                what: "SSRC",
                value: format!("{ssrc:#010x}"),
                expected: e.to_string(),
            })?;
    }
    Ok(())
}

/// A link's seed from the call's seed: SplitMix64 of the pair's index, so that each
/// direction's losses are independent and reproducible.
fn link_seed(seed: u64, from: usize, to: usize) -> u64 {
    let mut z =
        seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul((from * 64 + to + 1) as u64));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Declares `remotes` (participant indices) to `session`, as signalling would.
fn connect(
    session: &mut Session,
    participant: usize,
    remotes: &[usize],
    with_video: bool,
) -> Result<(), SimError> {
    for &remote in remotes {
        session
            .add_remote(video::remote_participant(remote, with_video))
            .map_err(|e| SimError::Session {
                participant: participant + 1,
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

/// Jitter buffer counters at one instant, to derive interval figures from two of them.
#[derive(Debug, Clone, Copy, Default)]
struct PlayoutMark {
    /// Σ over emitted samples of their buffer delay, seconds.
    delay: f64,
    emitted: u64,
    concealed: u64,
    total: u64,
}

impl PlayoutMark {
    fn of(stats: &AudioJitterStats) -> Self {
        Self {
            delay: stats.jitter_buffer_delay,
            emitted: stats.jitter_buffer_emitted_count,
            concealed: stats.concealed_samples,
            total: stats.total_samples_received,
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            delay: self.delay + other.delay,
            emitted: self.emitted + other.emitted,
            concealed: self.concealed + other.concealed,
            total: self.total + other.total,
        }
    }

    /// Mean buffer delay (ms) and concealed share over the interval since `earlier`.
    fn since(self, earlier: Self) -> (f64, f64) {
        let emitted = self.emitted.saturating_sub(earlier.emitted);
        let total = self.total.saturating_sub(earlier.total);
        let delay = if emitted > 0 {
            (self.delay - earlier.delay).max(0.0) / emitted as f64 * 1e3
        } else {
            0.0
        };
        let concealed = if total > 0 {
            self.concealed.saturating_sub(earlier.concealed) as f64 / total as f64
        } else {
            0.0
        };
        (delay, concealed)
    }
}

/// A participant and what the simulator keeps about it.
struct Participant {
    ssrc: u32,
    session: Session,
    /// In the call (not away).
    present: bool,
    /// Datagrams that reached it while it was away, dropped.
    dropped_while_away: u64,
    mic: Microphone,
    timeout: Instant,
    dirty: bool,
    said: WavWriter,
    heard: WavWriter,
    said_file: String,
    heard_file: String,
    stats: Series<StatsPoint>,
    events: EventCounts,
    errors: u64,
    /// Jitter buffer counters (all remotes) at the last statistics event.
    last_playout: PlayoutMark,
    /// Per remote audio SSRC, its jitter buffer counters at its last statistics event.
    last_remote_playout: HashMap<u32, PlayoutMark>,
    /// The directions towards it, by talker: `inbound[from]` is from → this participant
    /// (its own entry is unused). Kept with the receiver so that each participant's
    /// deliveries can be handed to its session on any thread.
    inbound: Vec<Direction>,
    /// This tick's microphone frame (as pushed) and playout.
    said_frame: [i16; FRAME_SAMPLES],
    heard_frame: [i16; FRAME_SAMPLES],
    /// Its camera and what it was shown, when the call has video.
    video: Option<ParticipantVideo>,
    /// Datagrams its session sent, with when, not yet given to the relay (see
    /// [`Participant::run_ahead`]).
    outbox: VecDeque<(Instant, Vec<u8>)>,
    /// The call's start, for event times.
    origin: Instant,
}

impl Participant {
    /// When its next delivery or timer is due, if ever.
    fn next_due(&self) -> Option<Instant> {
        let timer = self.present.then_some(self.timeout);
        self.inbound
            .iter()
            .filter_map(|d| d.deadline)
            .chain(timer)
            .min()
    }

    /// Takes what its session has to say at `now`: datagrams into the outbox (the relay
    /// gets them later, in time order across participants), events recorded at once.
    fn take_outputs(&mut self, now: Instant) {
        if !self.dirty || !self.present {
            return;
        }
        self.dirty = false;
        loop {
            match self.session.poll_output() {
                Output::Transmit(datagram) => self.outbox.push_back((now, datagram)),
                Output::Event(event) => {
                    let at = now - self.origin;
                    if let Some((talker, point)) = record_event(self, event, at)
                        && talker_of(self.ssrc) != Some(talker)
                        && let Some(direction) = self.inbound.get_mut(talker)
                    {
                        direction.remote.push(point);
                    }
                }
                Output::Timeout(at) => {
                    self.timeout = at;
                    break;
                }
                _ => self.events.other += 1,
            }
        }
    }

    /// Runs this participant alone from `now` to just before `horizon`: what is due at
    /// `now`, then every delivery and timer before `horizon`, each followed by
    /// [`take_outputs`](Self::take_outputs).
    ///
    /// Exact as long as nothing another participant sends in the same span can arrive
    /// before `horizon`, which holds when `horizon - now` is at most every link's
    /// [`Link::min_delay`]: then participants run ahead in parallel, and their datagrams
    /// reach the links afterwards, stamped with when they were sent.
    fn run_ahead(&mut self, now: Instant, horizon: Instant) {
        self.take_outputs(now);
        while let Some(at) = self.next_due().filter(|&at| at < horizon) {
            let at = at.max(now);
            self.receive_due(at);
            self.take_outputs(at);
        }
    }

    /// Whether a delivery or its timer is due at `now`.
    fn has_due(&self, now: Instant) -> bool {
        self.next_due().is_some_and(|at| at <= now)
    }

    /// Hands its session what its links deliver at `now` (talker by talker, in order),
    /// then its timer if due. Touches nothing but this participant: participants can be
    /// served in parallel and the outcome does not depend on the order.
    fn receive_due(&mut self, now: Instant) {
        for direction in &mut self.inbound {
            if direction.deadline.is_none_or(|d| d > now) {
                continue;
            }
            while let Poll::Deliver(delivery) = direction.link.poll(now) {
                if !self.present {
                    self.dropped_while_away += 1;
                } else if self
                    .session
                    .handle_input(Input::Receive(&delivery.packet), now)
                    .is_err()
                {
                    self.errors += 1;
                }
            }
            self.dirty = true;
            direction.deadline = direction.link.next_deadline();
        }
        if self.present && self.timeout <= now {
            if self.session.handle_input(Input::Timeout, now).is_err() {
                self.errors += 1;
            }
            self.dirty = true;
        }
        if let Some(video) = &mut self.video
            && self.present
        {
            video.drain(&mut self.session, now);
        }
    }

    /// The camera's next picture at `now` (nothing while away), then the pictures it
    /// decoded.
    fn push_camera(&mut self, now: Instant) {
        if let Some(video) = &mut self.video
            && self.present
        {
            video.push(&mut self.session, now);
            video.drain(&mut self.session, now);
            self.dirty = true;
        }
    }

    /// The 10 ms tick at `now`: pushes its next microphone frame (none at the first tick)
    /// and pulls its playout, into `said_frame` and `heard_frame` (silence while away).
    fn play_tick(&mut self, first: bool, talking: bool, now: Instant) {
        if !self.present {
            self.said_frame.fill(0);
            self.heard_frame.fill(0);
            return;
        }
        // The frame pushed at tick k holds the 10 ms before it (samples of tick k - 1);
        // the frame pulled at tick k plays from it: one clock for both.
        if !first {
            self.mic.next_frame(talking, &mut self.said_frame);
            if self.session.push_audio(&self.said_frame, now).is_err() {
                self.errors += 1;
            }
        }
        if self.session.pull_audio(now, &mut self.heard_frame).is_err() {
            self.errors += 1;
        }
        self.dirty = true;
    }
}

/// One direction: its link and the counters at the last network sample.
struct Direction {
    profile: String,
    link: Link<Arc<[u8]>>,
    deadline: Option<Instant>,
    last: (u64, u64, u64, Duration),
    series: Series<NetworkPoint>,
    /// The listener's statistics of the talker (`Event::RemoteStats`).
    remote: Series<RemotePoint>,
}

fn wav_writer(dir: &Path, name: &str) -> Result<WavWriter, SimError> {
    let format = AudioFormat::new(SAMPLE_RATE, Channels::Mono).map_err(SimError::media)?;
    let path = dir.join(name);
    WavWriter::create(&path, format).map_err(|e| SimError::Output {
        path,
        reason: e.to_string(),
    })
}

/// Runs the call and returns its report.
///
/// The participants' work at each instant (their deliveries, timers, microphone and
/// playout) is spread over [`CallSetup::threads`] threads; everything that joins them (the
/// relay, the links' inputs, the measurer, the files) runs on one thread in participant
/// order, so the outputs do not depend on the thread count.
///
/// # Errors
///
/// A session or link that refuses its configuration, a call size the session cannot
/// carry, an output file that cannot be written, or a thread pool that cannot start.
pub fn run(setup: CallSetup) -> Result<Report, SimError> {
    // Without lookahead an audio call's work at one instant is too small to share between
    // threads (a 16-party call over `wifi` runs faster on one): one thread unless told.
    let lookahead = lookahead(&setup.links, setup.participants);
    let threads = match setup.threads {
        0 if setup.video.is_none() && lookahead.is_zero() => 1,
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sim-{i}"))
        .build()
        .map_err(|e| SimError::Invalid {
            what: "threads",
            value: setup.threads.to_string(),
            expected: e.to_string(),
        })?;
    pool.install(|| run_on_pool(setup, lookahead))
}

fn run_on_pool(setup: CallSetup, lookahead: Duration) -> Result<Report, SimError> {
    let n = setup.participants;
    let t0 = Instant::now();
    let mut relay = Relay::new(n).map_err(|e| SimError::Invalid {
        what: "participants",
        value: n.to_string(),
        expected: e.to_string(),
    })?;
    let mut people = Vec::with_capacity(n);
    let formats = setup.video.as_ref().map(VideoSetup::formats);
    let clock_fps = setup.video.as_ref().map(VideoSetup::clock_fps);
    let save_video = setup.video.as_ref().is_some_and(|v| v.save);
    let mut cameras = setup
        .video
        .map(|v| v.cameras.into_iter().map(Some).collect::<Vec<_>>());
    for (index, mic) in setup.mics.into_iter().enumerate() {
        let ssrc = audio_ssrc(index);
        claim_ssrcs(&mut relay, index, formats.is_some())?;
        let format = formats.as_ref().and_then(|f| f.get(index).copied());
        let mut session = Session::new(video::session_config(index, format, setup.start_bps), t0)
            .map_err(|e| SimError::Session {
            participant: index + 1,
            reason: e.to_string(),
        })?;
        let remotes: Vec<usize> = (0..n).filter(|&r| r != index).collect();
        connect(&mut session, index, &remotes, formats.is_some())?;
        let participant_video = match (
            cameras
                .as_mut()
                .and_then(|c| c.get_mut(index))
                .and_then(Option::take),
            &formats,
        ) {
            (Some(camera), Some(formats)) => Some(ParticipantVideo::new(
                index,
                camera,
                formats,
                save_video.then_some(setup.out_dir.as_path()),
                t0,
            )?),
            _ => None,
        };
        let said_file = format!("p{}_said.wav", index + 1);
        let heard_file = format!("p{}_heard.wav", index + 1);
        people.push(Participant {
            ssrc,
            session,
            present: true,
            dropped_while_away: 0,
            mic,
            timeout: t0,
            dirty: true,
            said: wav_writer(&setup.out_dir, &said_file)?,
            heard: wav_writer(&setup.out_dir, &heard_file)?,
            said_file,
            heard_file,
            stats: Series::default(),
            events: EventCounts::default(),
            errors: 0,
            last_playout: PlayoutMark::default(),
            last_remote_playout: HashMap::new(),
            inbound: Vec::with_capacity(n),
            said_frame: [0; FRAME_SAMPLES],
            heard_frame: [0; FRAME_SAMPLES],
            video: participant_video,
            outbox: VecDeque::new(),
            origin: t0,
        });
    }
    for (to, person) in people.iter_mut().enumerate() {
        for from in 0..n {
            let LinkSetup { profile, config } = setup.links[from * n + to].clone();
            let mut link = Link::new(config, link_seed(setup.seed, from, to)).map_err(|e| {
                SimError::Invalid {
                    what: "link",
                    value: format!("{}→{} ({profile})", from + 1, to + 1),
                    expected: e.to_string(),
                }
            })?;
            link.set_epoch(t0);
            person.inbound.push(Direction {
                profile,
                link,
                deadline: None,
                last: (0, 0, 0, Duration::ZERO),
                series: Series::with_limit(MAX_DIRECTION_POINTS),
                remote: Series::with_limit(MAX_DIRECTION_POINTS),
            });
        }
    }
    let mut measurer = Measurer::new(n, setup.schedule);
    let samples = |d: Duration| d.as_millis() as u64 * u64::from(SAMPLE_RATE) / 1000;
    for absence in &setup.absences {
        // Rejoining takes a moment before audio flows again: a second more unmeasured.
        let back = absence.rejoin + Duration::from_secs(1);
        measurer.set_away(absence.participant, samples(absence.leave), samples(back));
    }
    let ticks = (setup.duration.as_millis() / TICK.as_millis()) as u64;
    let end = t0 + TICK * ticks as u32;
    let bar = if setup.progress {
        let bar = ProgressBar::new(ticks);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} simulating {msg} [{bar:40}] {percent}% ({elapsed}, ~{eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let cpu_started = process_cpu_time();
    let mut memory = Vec::new();
    let mut routed: Vec<(usize, Arc<[u8]>)> = Vec::new();
    let mut tick = 0u64;
    let mut next_tick = t0;
    // The cameras' clock: picture k at k frame intervals (none without video).
    let mut pictures = 0u32;
    let mut next_picture = clock_fps.map(|_| t0);
    let mut now = t0;
    loop {
        // Whoever was touched says what it has, then the relay and the links get every
        // datagram in the order it was sent (ties in participant order), on this thread:
        // what enters them never depends on how the work before was spread over threads.
        for person in people.iter_mut() {
            person.take_outputs(now);
        }
        route_outboxes(&mut people, &mut relay, &mut routed);
        let next = people
            .iter()
            .filter(|p| p.present)
            .map(|p| p.timeout)
            .chain(
                people
                    .iter()
                    .flat_map(|p| p.inbound.iter().filter_map(|d| d.deadline)),
            )
            .fold(
                next_picture.map_or(next_tick, |p| p.min(next_tick)),
                Instant::min,
            )
            .max(now);
        if next >= end {
            break;
        }
        now = next;
        if let (Some(at), Some(fps)) = (next_picture, clock_fps)
            && now >= at
        {
            // The cameras: each participant's due deliveries, then its picture (encoding
            // is most of a video call's time: one participant per task).
            people.par_iter_mut().with_max_len(1).for_each(|p| {
                p.receive_due(now);
                p.push_camera(now);
            });
            pictures += 1;
            // Picture k at exactly k / fps seconds (a truncated interval times k would
            // drift early and fit an extra picture into the call).
            next_picture = Some(t0 + Duration::from_secs(u64::from(pictures)) / fps);
        }
        if now < next_tick {
            // Deliveries and timers only. Every participant runs alone up to the horizon
            // (nothing sent in between can arrive before it), in parallel.
            let horizon = next_picture
                .map_or(next_tick, |p| p.min(next_tick))
                .min(now + lookahead)
                .min(end);
            if horizon > now {
                people
                    .par_iter_mut()
                    .with_max_len(1)
                    .for_each(|p| p.run_ahead(now, horizon));
                continue;
            }
            // No lookahead (a link as fast as zero): one instant at a time.
            let due = people.iter().filter(|p| p.has_due(now)).count();
            if due >= PARALLEL_MIN_DUE {
                people
                    .par_iter_mut()
                    .with_max_len(1)
                    .for_each(|p| p.receive_due(now));
            } else {
                for person in people.iter_mut() {
                    person.receive_due(now);
                }
            }
            continue;
        }
        // A tick: what is due, then every participant's microphone and playout, each
        // participant on whichever thread is free (they share nothing).
        let first = tick == 0;
        let mic_sample = tick.saturating_sub(1) * FRAME_SAMPLES as u64;
        let talker = setup.schedule.talker_at(mic_sample);
        let absence_now = setup.absences.iter().any(|a| {
            tick == a.leave.as_millis() as u64 / 10 || tick == a.rejoin.as_millis() as u64 / 10
        });
        if absence_now {
            // Leaving and rejoining touch several sessions and the relay: between the
            // deliveries and the tick, on this thread.
            people
                .par_iter_mut()
                .with_max_len(1)
                .for_each(|p| p.receive_due(now));
            for absence in &setup.absences {
                if tick == absence.leave.as_millis() as u64 / 10 {
                    leave(&mut people, &mut relay, absence.participant);
                } else if tick == absence.rejoin.as_millis() as u64 / 10 {
                    rejoin(
                        &mut people,
                        &mut relay,
                        absence.participant,
                        now,
                        formats.as_deref(),
                        setup.start_bps,
                    )?;
                }
            }
            people
                .par_iter_mut()
                .with_max_len(1)
                .enumerate()
                .for_each(|(index, p)| p.play_tick(first, talker == Some(index), now));
        } else {
            people
                .par_iter_mut()
                .with_max_len(1)
                .enumerate()
                .for_each(|(index, p)| {
                    p.receive_due(now);
                    p.play_tick(first, talker == Some(index), now);
                });
        }
        for (index, person) in people.iter_mut().enumerate() {
            if !first {
                measurer.push_mic(index, &person.said_frame);
                person
                    .said
                    .write(&person.said_frame)
                    .map_err(SimError::media)?;
            }
            measurer.push_heard(index, &person.heard_frame);
            person
                .heard
                .write(&person.heard_frame)
                .map_err(SimError::media)?;
        }
        measurer.measure_ready();
        tick += 1;
        next_tick += TICK;
        if tick % NETWORK_INTERVAL_TICKS == 0 {
            let t_s = (now - t0).as_secs_f64();
            for person in &mut people {
                for direction in &mut person.inbound {
                    sample_network(direction, t_s);
                }
            }
        }
        if tick % MEMORY_INTERVAL_TICKS == 0
            && let Some(rss_kib) = resident_kib()
        {
            let series: usize = people
                .iter()
                .map(|p| {
                    p.stats.bytes()
                        + p.inbound
                            .iter()
                            .map(|d| d.series.bytes() + d.remote.bytes())
                            .sum::<usize>()
                })
                .sum();
            let windows = std::mem::size_of_val(measurer.results());
            memory.push(MemorySample {
                t_s: (now - t0).as_secs_f64(),
                rss_kib,
                report_kib: ((series + windows) / 1024) as u64,
            });
        }
        if tick % PROGRESS_TICKS == 0 {
            bar.set_position(tick);
            bar.set_message(format!(
                "{:.0}/{:.0} s",
                (now - t0).as_secs_f64(),
                setup.duration.as_secs_f64()
            ));
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_started
        .zip(process_cpu_time())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64());
    bar.finish_and_clear();
    measurer.finish();

    let simulated = end - t0;
    let mut participants = Vec::with_capacity(n);
    let finals: Vec<_> = people.iter().map(|p| p.session.stats(end)).collect();
    // remote_finals[listener] = (talker's SSRC → the listener's statistics of it).
    let remote_finals: Vec<HashMap<u32, RemoteStats>> = people
        .iter()
        .map(|p| p.session.remote_stats(end).map(|r| (r.ssrc, r)).collect())
        .collect();
    let mut inbound = Vec::with_capacity(n);
    // seen[viewer][remote]: what each participant was shown of each remote.
    let mut seen: Vec<Vec<Option<VideoDirection>>> = Vec::with_capacity(n);
    for (index, mut person) in people.into_iter().enumerate() {
        inbound.push(std::mem::take(&mut person.inbound));
        let video_sent: Option<VideoSent> = match person.video.take() {
            Some(v) => {
                let finals = &remote_finals[index];
                let (sent, directions) = v.finish(index, |ssrc| finals.get(&ssrc).cloned())?;
                seen.push(directions);
                Some(sent)
            }
            None => {
                seen.push(Vec::new());
                None
            }
        };
        let mut playout = Playout::default();
        let mut delay = 0.0;
        let mut emitted = 0u64;
        for ssrc in person.session.remote_ssrcs() {
            if let Some(jitter) = person.session.remote_jitter_stats(ssrc) {
                playout.total_samples += jitter.total_samples_received;
                playout.concealed_samples += jitter.concealed_samples;
                playout.concealment_events += jitter.concealment_events;
                playout.recovered_samples += jitter.recovered_samples;
                playout.inserted_samples += jitter.inserted_samples_for_deceleration;
                playout.removed_samples += jitter.removed_samples_for_acceleration;
                playout.late_packets += jitter.late_packets;
                delay += jitter.jitter_buffer_delay;
                emitted += jitter.jitter_buffer_emitted_count;
            }
        }
        playout.mean_delay_ms = delay / emitted.max(1) as f64 * 1e3;
        let finish = |writer: WavWriter, file: &str| {
            writer.finalize().map_err(|e| SimError::Output {
                path: setup.out_dir.join(file),
                reason: e.to_string(),
            })
        };
        finish(person.said, &person.said_file)?;
        finish(person.heard, &person.heard_file)?;
        participants.push(ParticipantReport {
            participant: index + 1,
            ssrc: person.ssrc,
            mic: person.mic.name.clone(),
            said_wav: person.said_file,
            heard_wav: person.heard_file,
            final_stats: StatsPoint::from_stats(simulated.as_secs_f64(), &finals[index]),
            playout,
            events: person.events,
            session_errors: person.errors,
            dropped_while_away: person.dropped_while_away,
            away: setup
                .absences
                .iter()
                .filter(|a| a.participant == index)
                .map(|a| [a.leave.as_secs_f64(), a.rejoin.min(simulated).as_secs_f64()])
                .collect(),
            stats: person.stats,
            video: video_sent,
        });
    }
    let results = measurer.results();
    let mut direction_reports = Vec::new();
    // By talker, then listener: receiver `to`'s directions are taken in talker order.
    let mut inbound: Vec<_> = inbound.into_iter().map(Vec::into_iter).collect();
    for (from, to) in (0..n).flat_map(|from| (0..n).map(move |to| (from, to))) {
        let Some(direction) = inbound.get_mut(to).and_then(Iterator::next) else {
            continue;
        };
        if from == to {
            continue;
        }
        let counters = *direction.link.counters();
        let windows: Vec<WindowMeasure> = results
            .iter()
            .filter(|r| r.talker == from && r.listener == to)
            .map(|r| (r.turn, r.start_s, r.correlation, r.mouth_to_ear_ms))
            .collect();
        let heard = remote_finals[to].get(&audio_ssrc(from));
        direction_reports.push(DirectionReport {
            from: from + 1,
            to: to + 1,
            profile: direction.profile,
            network: NetworkReport {
                sent: counters.sent,
                delivered: counters.delivered,
                dropped: counters.dropped(),
                loss: counters.dropped() as f64 / counters.sent.max(1) as f64,
                mean_delay_ms: counters.mean_delay().as_secs_f64() * 1e3,
                max_delay_ms: counters.max_delay.as_secs_f64() * 1e3,
            },
            mouth_to_ear: MouthToEar::from_windows(&windows),
            loss_before_recovery: heard.map(|r| r.receive_loss_before_recovery),
            loss_after_recovery: heard.map(|r| r.receive_loss_after_recovery),
            mos: heard.and_then(|r| r.mos),
            quality: heard.map(|r| format!("{:?}", r.quality)),
            network_series: direction.series,
            remote_stats: direction.remote,
            video: seen
                .get_mut(to)
                .and_then(|s| s.get_mut(from))
                .and_then(Option::take),
        });
    }
    let wall_s = wall.as_secs_f64();
    Ok(Report {
        tool: "tincan sim",
        version: super::report::REPORT_VERSION,
        config: ConfigReport {
            participants: n,
            media: setup.media,
            duration_s: simulated.as_secs_f64(),
            seed: setup.seed,
            turn_s: setup.turn_ms as f64 / 1e3,
            gap_s: setup.gap_ms as f64 / 1e3,
            max_lag_ms: MAX_LAG_MS,
            start_kbps: setup.start_bps / 1000,
        },
        speed: Speed {
            simulated_s: simulated.as_secs_f64(),
            wall_s,
            times_real_time: simulated.as_secs_f64() / wall_s.max(1e-9),
            cpu_s: cpu,
            times_real_time_cpu: cpu.map(|c| simulated.as_secs_f64() / c.max(1e-9)),
            threads: rayon::current_num_threads(),
            lookahead_ms: lookahead.as_secs_f64() * 1e3,
        },
        participants,
        directions: direction_reports,
        relay: *relay.counters(),
        memory,
    })
}

/// How far participants may run ahead of each other: the fastest link's least delay
/// ([`LinkConfig::min_delay`](tincan_netsim::LinkConfig::min_delay); the diagonal, a
/// participant to itself, carries nothing).
fn lookahead(links: &[LinkSetup], participants: usize) -> Duration {
    links
        .iter()
        .enumerate()
        .filter(|&(i, _)| i / participants != i % participants)
        .map(|(_, link)| link.config.min_delay())
        .min()
        .unwrap_or(Duration::ZERO)
}

/// Gives every datagram in the participants' outboxes to the relay and each copy to its
/// link, in the order they were sent (ties in participant order), each stamped with when
/// it was sent; the buffers go back to their sessions.
fn route_outboxes(
    people: &mut [Participant],
    relay: &mut Relay,
    routed: &mut Vec<(usize, Arc<[u8]>)>,
) {
    loop {
        let mut first: Option<(Instant, usize)> = None;
        for (index, person) in people.iter().enumerate() {
            if let Some(&(at, _)) = person.outbox.front()
                && first.is_none_or(|(earliest, _)| at < earliest)
            {
                first = Some((at, index));
            }
        }
        let Some((at, from)) = first else {
            return;
        };
        let Some((_, datagram)) = people[from].outbox.pop_front() else {
            return;
        };
        routed.clear();
        relay.route(from, &datagram, routed);
        for (to, copy) in routed.drain(..) {
            let direction = &mut people[to].inbound[from];
            let size = copy.len() + UDP_IP_OVERHEAD;
            direction.link.send(copy, size, at);
            direction.deadline = direction.link.next_deadline();
        }
        people[from].session.recycle(datagram);
    }
}

/// Takes participant `who` out of the call: the relay stops forwarding from and to it and
/// the others forget it (their sessions drop its state).
fn leave(people: &mut [Participant], relay: &mut Relay, who: usize) {
    let ssrc = audio_ssrc(who);
    // `who` is a valid index: absences are checked when the call is set up.
    let _ = relay.leave(who);
    for (index, person) in people.iter_mut().enumerate() {
        if index == who {
            person.present = false;
        } else if person.present {
            person.session.remove_remote(ssrc);
            person.last_remote_playout.remove(&ssrc);
            person.dirty = true;
        }
    }
}

/// Brings participant `who` back with a fresh session (a rejoin: new state, same SSRC);
/// the others declare it again.
fn rejoin(
    people: &mut [Participant],
    relay: &mut Relay,
    who: usize,
    now: Instant,
    formats: Option<&[(tincan_media::Resolution, u32)]>,
    start_bps: u64,
) -> Result<(), SimError> {
    let n = people.len();
    let ssrc = audio_ssrc(who);
    let _ = relay.join(who);
    let format = formats.and_then(|f| f.get(who).copied());
    claim_ssrcs(relay, who, format.is_some())?;
    let mut session =
        Session::new(video::session_config(who, format, start_bps), now).map_err(|e| {
            SimError::Session {
                participant: who + 1,
                reason: e.to_string(),
            }
        })?;
    let remotes: Vec<usize> = (0..n).filter(|&r| r != who).collect();
    connect(&mut session, who, &remotes, format.is_some())?;
    for (index, person) in people.iter_mut().enumerate() {
        if index == who {
            person.session = session;
            person.present = true;
            person.dirty = true;
            person.timeout = now;
            person.last_playout = PlayoutMark::default();
            person.last_remote_playout.clear();
            break;
        }
    }
    for (index, person) in people.iter_mut().enumerate() {
        if index != who && person.present {
            connect(&mut person.session, index, &[who], format.is_some())?;
            person.last_remote_playout.remove(&ssrc);
            person.dirty = true;
        }
    }
    Ok(())
}

/// Counts and records a participant's event; a remote's statistics come back as
/// (talker, point) for the direction's series.
fn record_event(
    person: &mut Participant,
    event: Event,
    at: Duration,
) -> Option<(usize, RemotePoint)> {
    let t_s = at.as_secs_f64();
    match event {
        Event::RemoteAudioAvailable { .. } => person.events.remote_audio_available += 1,
        Event::RemoteAudioUnavailable { .. } => person.events.remote_audio_unavailable += 1,
        Event::RemoteVolume { .. } => person.events.remote_volume += 1,
        Event::LocalSpeaking { .. } => person.events.local_speaking += 1,
        Event::ActiveSpeaker { .. } => person.events.active_speaker += 1,
        Event::NetworkQuality { .. } => person.events.network_quality += 1,
        Event::Stats(stats) => {
            person.events.stats += 1;
            let mut point = StatsPoint::from_stats(t_s, &stats);
            let mark = person
                .session
                .remote_ssrcs()
                .filter_map(|ssrc| person.session.remote_jitter_stats(ssrc))
                .map(PlayoutMark::of)
                .fold(PlayoutMark::default(), PlayoutMark::add);
            (point.jitter_buffer_delay_ms, point.concealed_interval) =
                mark.since(person.last_playout);
            person.last_playout = mark;
            person.stats.push(point);
        }
        Event::RemoteStats(remote) => {
            person.events.remote_stats += 1;
            let talker = talker_of(remote.ssrc)?;
            let mut point = RemotePoint::from_stats(t_s, &remote);
            if let Some(jitter) = person.session.remote_jitter_stats(remote.ssrc) {
                let mark = PlayoutMark::of(jitter);
                let last = person.last_remote_playout.insert(remote.ssrc, mark);
                (point.jitter_buffer_delay_ms, point.concealed_interval) =
                    mark.since(last.unwrap_or_default());
            }
            return Some((talker, point));
        }
        _ => person.events.other += 1,
    }
    None
}

/// The participant whose audio SSRC is `ssrc` ([`audio_ssrc`]'s inverse).
fn talker_of(ssrc: u32) -> Option<usize> {
    let index = ((ssrc >> 8) & 0xFF) as usize;
    (index >= 1 && audio_ssrc(index - 1) == ssrc).then(|| index - 1)
}

fn sample_network(direction: &mut Direction, t_s: f64) {
    let c = *direction.link.counters();
    let (sent, dropped, delivered, delay) = direction.last;
    let sent_now = c.sent - sent;
    let delivered_now = c.delivered - delivered;
    direction.series.push(NetworkPoint {
        t_s,
        loss: (c.dropped() - dropped) as f64 / sent_now.max(1) as f64,
        mean_delay_ms: if delivered_now == 0 {
            0.0
        } else {
            (c.total_delay - delay).as_secs_f64() * 1e3 / delivered_now as f64
        },
    });
    direction.last = (c.sent, c.dropped(), c.delivered, c.total_delay);
}
