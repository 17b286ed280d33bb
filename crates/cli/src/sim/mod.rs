//! `tincan sim`: a whole call of 2 to 16 participants in one process, faster than real
//! time.
//!
//! Each participant is a full `tincan_pipeline::Session` (voice processing, Opus with the
//! loss-recovery policy, RTP/RTCP, pacer, congestion control, jitter buffer) with a
//! microphone ([`talk`]); a relay ([`relay`]) forwards between them, and every ordered
//! pair of participants has its own netsim link with the profile of that direction. The
//! loop ([`call`]) runs on made-up instants, jumping from deadline to deadline. What each
//! participant said and heard is written as WAV; the mouth-to-ear delay of every direction
//! is measured from the audio itself ([`measure`]); the report goes to JSON ([`report`]),
//! a self-contained HTML page ([`html`]) and a one-line-per-direction `summary.tsv`.
//! `docs/SIM.md` has the options, the talk schedule and measured figures.

pub mod call;
pub mod html;
pub mod measure;
pub mod relay;
pub mod report;
pub mod talk;
pub mod video;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tincan_netsim::{LinkConfig, Profile};

use call::{Absence, CallSetup, LinkSetup};
use relay::MAX_PARTICIPANTS;
use report::Report;
use talk::{MicSource, Microphone, TalkSchedule};
use tincan_media::Resolution;
use video::{Camera, CameraSource, VideoSetup};

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// An option's value is out of range or malformed.
    #[error("{what} {value:?}: expected {expected}")]
    Invalid {
        /// Which option or part.
        what: &'static str,
        /// The value given.
        value: String,
        /// What would do.
        expected: String,
    },
    /// An input file could not be used.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A participant's session refused its configuration.
    #[error("participant {participant}'s session: {reason}")]
    Session {
        /// The participant, from 1.
        participant: usize,
        /// The session's error.
        reason: String,
    },
    /// A media error while writing audio.
    #[error("media: {0}")]
    Media(String),
}

impl SimError {
    /// A media crate's error.
    pub fn media(error: impl std::fmt::Display) -> Self {
        Self::Media(error.to_string())
    }

    fn invalid(what: &'static str, value: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            value: value.into(),
            expected: expected.into(),
        }
    }
}

/// What the participants send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Media {
    /// Audio only: the microphones, no cameras.
    Audio,
    /// Video only: the cameras; the microphones are silent (the sessions still run their
    /// audio, which DTX keeps small).
    Video,
    /// The microphones and the cameras.
    Both,
}

impl Media {
    /// Its name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Both => "both",
        }
    }

    /// Whether the cameras are on.
    pub fn has_video(self) -> bool {
        self != Self::Audio
    }
}

/// Options of `tincan sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Participants in the call, 2 to 16 (more than 2 needs the multi-remote session).
    #[arg(long, short = 'n', default_value_t = 2)]
    pub participants: usize,
    /// What is sent: `audio`, `video` (silent microphones) or `both`.
    #[arg(long, value_enum, default_value = "audio")]
    pub media: Media,
    /// A participant's camera, N=PATH.y4m (played in a loop at --fps) or N=synthetic (the
    /// moving test pattern at --resolution, the default); repeatable. Only with video.
    #[arg(long = "camera", value_name = "N=PATH.y4m|synthetic")]
    pub cameras: Vec<String>,
    /// Size of the synthetic cameras' pictures, WxH (the encoders' cap too).
    #[arg(long, default_value = "640x360")]
    pub resolution: String,
    /// Pictures per second every camera pushes.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// The congestion controllers' first target, kbit/s, 30 to 2500: the application's
    /// start rate (WebRTC's default is 300). The sessions do not probe yet, so a video call
    /// climbs the ladder from here only as fast as its own media's feedback allows.
    #[arg(long, default_value_t = 300)]
    pub start_kbps: u64,
    /// Write what each participant was shown of each remote as
    /// OUT/seen-VIEWER-from-REMOTE.y4m (participants numbered from 1).
    #[arg(long)]
    pub save_video: bool,
    /// Simulated length of the call, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Network profile of every direction: a name (perfect, good, wifi, 4g, lossy-20,
    /// bursty-30, congested, satellite, extreme-80) or a .toml/.json profile file. Between
    /// participants i < j, i→j uses the profile's a→b link and j→i its b→a link.
    #[arg(long, default_value = "good")]
    pub profile: String,
    /// The profile of one direction, FROM:TO=PROFILE (participants from 1; the profile's
    /// a→b link is used); repeatable, overrides --profile.
    #[arg(long = "link", value_name = "FROM:TO=PROFILE")]
    pub links: Vec<String>,
    /// A participant's microphone, N=PATH.wav or N=silence (participants from 1); repeatable.
    /// Default: a speech fixture from fixtures/speech, a different one per participant,
    /// played on in a loop during that participant's turns.
    #[arg(long = "mic", value_name = "N=PATH|silence")]
    pub mics: Vec<String>,
    /// Length of a talk turn, seconds (round-robin turns, one talker at a time).
    #[arg(long, default_value_t = 3.0)]
    pub turn: f64,
    /// Silence before each turn, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub gap: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder: WAVs, report.json, report.html, summary.tsv.
    #[arg(long, default_value = "sim-out")]
    pub out: PathBuf,
    /// Report path (default OUT/report.json); the HTML page goes beside it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Fixtures folder (default: the checkout's fixtures).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// A participant leaves the call and rejoins with a fresh session, N=LEAVE-REJOIN in
    /// seconds (N=LEAVE- to leave for good); repeatable.
    #[arg(long = "leave", value_name = "N=LEAVE-REJOIN")]
    pub leaves: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Threads the participants' work is spread over (0: one per core with video, one for
    /// an audio call, whose 10 ms ticks are too small to share: measured faster on one
    /// thread). The outputs are the same with any number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Loads a profile by name or from a file.
fn load_profile(spec: &str) -> Result<Profile, SimError> {
    if Profile::NAMES.contains(&spec) {
        return Profile::named(spec).map_err(|e| SimError::invalid("profile", spec, e.to_string()));
    }
    let path = Path::new(spec);
    if path.exists() {
        return Profile::from_file(path).map_err(|e| SimError::Input {
            path: path.to_owned(),
            reason: e.to_string(),
        });
    }
    Err(SimError::invalid(
        "profile",
        spec,
        format!("one of {} or a .toml/.json file", Profile::NAMES.join(", ")),
    ))
}

/// A 1-based participant number from text.
fn participant_number(
    text: &str,
    participants: usize,
    what: &'static str,
) -> Result<usize, SimError> {
    match text.trim().parse::<usize>() {
        Ok(k) if (1..=participants).contains(&k) => Ok(k - 1),
        _ => Err(SimError::invalid(
            what,
            text,
            format!("a participant number from 1 to {participants}"),
        )),
    }
}

/// The links of every ordered pair, `[from * n + to]` (the diagonal is an unused perfect
/// link).
fn build_links(args: &SimArgs, n: usize) -> Result<Vec<LinkSetup>, SimError> {
    let all = load_profile(&args.profile)?;
    let mut links: Vec<LinkSetup> = (0..n * n)
        .map(|k| {
            let (from, to) = (k / n, k % n);
            let config = match from.cmp(&to) {
                std::cmp::Ordering::Less => all.a_to_b().clone(),
                std::cmp::Ordering::Greater => all.b_to_a().clone(),
                std::cmp::Ordering::Equal => LinkConfig::default(),
            };
            LinkSetup {
                profile: all.name.clone(),
                config,
            }
        })
        .collect();
    for spec in &args.links {
        let bad = || {
            SimError::invalid(
                "--link",
                spec.as_str(),
                "FROM:TO=PROFILE, e.g. 1:2=lossy-20",
            )
        };
        let (pair, profile) = spec.split_once('=').ok_or_else(bad)?;
        let (from, to) = pair.split_once(':').ok_or_else(bad)?;
        let from = participant_number(from, n, "--link")?;
        let to = participant_number(to, n, "--link")?;
        if from == to {
            return Err(bad());
        }
        let profile = load_profile(profile.trim())?;
        links[from * n + to] = LinkSetup {
            profile: profile.name.clone(),
            config: profile.a_to_b().clone(),
        };
    }
    Ok(links)
}

fn build_mics(args: &SimArgs, n: usize, fixtures: &Path) -> Result<Vec<Microphone>, SimError> {
    let mut sources = vec![MicSource::Fixture; n];
    for spec in &args.mics {
        let (who, what) = spec
            .split_once('=')
            .ok_or_else(|| SimError::invalid("--mic", spec.as_str(), "N=PATH.wav or N=silence"))?;
        let who = participant_number(who, n, "--mic")?;
        sources[who] = match what.trim() {
            "silence" => MicSource::Silence,
            path => MicSource::Wav(PathBuf::from(path)),
        };
    }
    sources
        .iter()
        .enumerate()
        .map(|(k, source)| Microphone::load(source, k, fixtures))
        .collect()
}

fn parse_resolution(text: &str) -> Result<Resolution, SimError> {
    let bad = || SimError::invalid("--resolution", text, "WxH with even sides, e.g. 1280x720");
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if w < 16 || h < 16 || w % 2 == 1 || h % 2 == 1 || w > 3840 || h > 2160 {
        return Err(bad());
    }
    Resolution::new(w, h).map_err(|_| bad())
}

/// The cameras of a call with video (`None` for an audio call).
fn build_video(args: &SimArgs, n: usize) -> Result<Option<VideoSetup>, SimError> {
    if !args.media.has_video() {
        if let Some(spec) = args.cameras.first() {
            return Err(SimError::invalid(
                "--camera",
                spec.as_str(),
                "--media video or both",
            ));
        }
        return Ok(None);
    }
    let resolution = parse_resolution(&args.resolution)?;
    if !(1..=60).contains(&args.fps) {
        return Err(SimError::invalid("--fps", args.fps.to_string(), "1 to 60"));
    }
    let mut sources = vec![CameraSource::Synthetic; n];
    for spec in &args.cameras {
        let (who, what) = spec.split_once('=').ok_or_else(|| {
            SimError::invalid("--camera", spec.as_str(), "N=PATH.y4m or N=synthetic")
        })?;
        let who = participant_number(who, n, "--camera")?;
        sources[who] = match what.trim() {
            "synthetic" => CameraSource::Synthetic,
            path => CameraSource::Y4m(PathBuf::from(path)),
        };
    }
    let cameras = sources
        .iter()
        .map(|source| Camera::open(source, resolution, args.fps))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(VideoSetup {
        cameras,
        save: args.save_video,
    }))
}

fn build_absences(args: &SimArgs, n: usize, duration_ms: u64) -> Result<Vec<Absence>, SimError> {
    let mut absences: Vec<Absence> = Vec::new();
    for spec in &args.leaves {
        let bad = || {
            SimError::invalid(
                "--leave",
                spec.as_str(),
                "N=LEAVE-REJOIN in seconds, e.g. 2=5-8, or N=LEAVE- to leave for good",
            )
        };
        let (who, span) = spec.split_once('=').ok_or_else(bad)?;
        let participant = participant_number(who, n, "--leave")?;
        let (leave, rejoin) = span.split_once('-').ok_or_else(bad)?;
        let seconds = |text: &str| -> Result<u64, SimError> {
            let value: f64 = text.trim().parse().map_err(|_| bad())?;
            seconds_to_ms("--leave", value, 0.01..=86_400.0)
        };
        let leave = seconds(leave)?;
        let rejoin = if rejoin.trim().is_empty() {
            duration_ms.max(leave) + 10
        } else {
            seconds(rejoin)?
        };
        if rejoin <= leave + 10 {
            return Err(bad());
        }
        let overlaps = absences.iter().any(|a| {
            a.participant == participant
                && (leave as u128) < a.rejoin.as_millis()
                && a.leave.as_millis() < rejoin as u128
        });
        if overlaps {
            return Err(SimError::invalid(
                "--leave",
                spec.as_str(),
                "absences of one participant that do not overlap",
            ));
        }
        absences.push(Absence {
            participant,
            leave: Duration::from_millis(leave),
            rejoin: Duration::from_millis(rejoin),
        });
    }
    Ok(absences)
}

fn seconds_to_ms(
    what: &'static str,
    seconds: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<u64, SimError> {
    if !seconds.is_finite() || !range.contains(&seconds) {
        return Err(SimError::invalid(
            what,
            seconds.to_string(),
            format!("{} to {} seconds", range.start(), range.end()),
        ));
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// Builds the call from the options, runs it and writes the outputs; returns the report.
///
/// # Errors
///
/// Bad options, unreadable inputs, unwritable outputs, or a call the engine cannot carry.
pub fn simulate(args: &SimArgs) -> Result<Report, SimError> {
    let n = args.participants;
    if !(2..=MAX_PARTICIPANTS).contains(&n) {
        return Err(SimError::invalid(
            "--participants",
            n.to_string(),
            format!("2 to {MAX_PARTICIPANTS}"),
        ));
    }
    let duration_ms = seconds_to_ms("--duration", args.duration, 1.0..=86_400.0)?;
    let turn_ms = seconds_to_ms("--turn", args.turn, 1.0..=600.0)?;
    let gap_ms = seconds_to_ms("--gap", args.gap, 0.0..=60.0)?;
    let fixtures = args
        .fixtures
        .clone()
        .unwrap_or_else(crate::default_fixtures);
    let links = build_links(args, n)?;
    let mics = if args.media == Media::Video {
        let silent: Vec<String> = (1..=n).map(|k| format!("{k}=silence")).collect();
        build_mics(
            &SimArgs {
                mics: silent,
                ..args.clone()
            },
            n,
            &fixtures,
        )?
    } else {
        build_mics(args, n, &fixtures)?
    };
    let video = build_video(args, n)?;
    if !(30..=2500).contains(&args.start_kbps) {
        return Err(SimError::invalid(
            "--start-kbps",
            args.start_kbps.to_string(),
            "30 to 2500",
        ));
    }
    let absences = build_absences(args, n, duration_ms)?;
    std::fs::create_dir_all(&args.out).map_err(|e| SimError::Output {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    let report = call::run(CallSetup {
        participants: n,
        duration: Duration::from_millis(duration_ms),
        seed: args.seed,
        links,
        mics,
        schedule: TalkSchedule::new(n, turn_ms, gap_ms)?,
        turn_ms,
        gap_ms,
        out_dir: args.out.clone(),
        progress: !args.quiet,
        absences,
        threads: args.threads,
        video,
        media: args.media.name(),
        start_bps: args.start_kbps * 1000,
    })?;
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| args.out.join("report.json"));
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| SimError::Output {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| SimError::Output {
        path: report_path.clone(),
        reason: e.to_string(),
    })?;
    write(&report_path, &json)?;
    write(
        &report_path.with_extension("html"),
        html::page(&report).as_bytes(),
    )?;
    write(
        &args.out.join("summary.tsv"),
        summary_tsv(&report, &report_path).as_bytes(),
    )?;
    Ok(report)
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn share(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// One line per direction, tab-separated, with a header: what `cargo xtask demo` tabulates.
pub fn summary_tsv(report: &Report, report_path: &Path) -> String {
    let mut out = String::from(
        "participants\tfrom\tto\tprofile\tm2e_median_ms\tm2e_p95_ms\tcorrelation\tnetwork_loss\tloss_before_recovery\tloss_after_recovery\tmos\ttimes_real_time\tvideo_frames_shown\tvideo_fps\tvideo_freezes\tvideo_freeze_s\tvideo_resolution\treport\n",
    );
    for d in &report.directions {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}\t{}\t{}\t{}\t{}\t{}\t{}",
            report.config.participants,
            d.from,
            d.to,
            d.profile,
            ms(d.mouth_to_ear.median_ms),
            ms(d.mouth_to_ear.p95_ms),
            d.mouth_to_ear
                .mean_correlation
                .map_or_else(|| "-".into(), |c| format!("{c:.3}")),
            share(Some(d.network.loss)),
            share(d.loss_before_recovery),
            share(d.loss_after_recovery),
            d.mos.map_or_else(|| "-".into(), |m| format!("{m:.2}")),
            report.speed.times_real_time,
            d.video
                .as_ref()
                .map_or_else(|| "-".into(), |v| v.frames_shown.to_string()),
            d.video.as_ref().map_or_else(|| "-".into(), |v| ms(v.fps)),
            d.video
                .as_ref()
                .map_or_else(|| "-".into(), |v| v.freeze_count.to_string()),
            d.video
                .as_ref()
                .map_or_else(|| "-".into(), |v| format!("{:.2}", v.freeze_s)),
            d.video
                .as_ref()
                .and_then(|v| v.resolution.as_deref())
                .unwrap_or("-"),
            report_path.display(),
        );
    }
    out
}

/// The table printed at the end of a run.
fn summary_table(report: &Report, report_path: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} participants, {} s simulated in {:.2} s ({:.1}x real time; {})",
        report.config.participants,
        report.speed.simulated_s,
        report.speed.wall_s,
        report.speed.times_real_time,
        match (report.speed.cpu_s, report.speed.times_real_time_cpu) {
            (Some(cpu), Some(x)) => format!("{cpu:.2} s of CPU, {x:.1}x"),
            _ => "CPU time unknown".into(),
        }
    );
    let _ = writeln!(
        out,
        "{:<8} {:<12} {:>10} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>5}",
        "from→to",
        "profile",
        "m2e med",
        "m2e p95",
        "heard",
        "corr",
        "net loss",
        "before",
        "after",
        "MOS"
    );
    for d in &report.directions {
        let m = &d.mouth_to_ear;
        let _ = writeln!(
            out,
            "{:<8} {:<12} {:>10} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>5}",
            format!("{}→{}", d.from, d.to),
            d.profile,
            ms(m.median_ms),
            ms(m.p95_ms),
            format!("{}/{}", m.heard_windows, m.windows),
            m.mean_correlation
                .map_or_else(|| "-".into(), |c| format!("{c:.2}")),
            share(Some(d.network.loss)),
            share(d.loss_before_recovery),
            share(d.loss_after_recovery),
            d.mos.map_or_else(|| "-".into(), |m| format!("{m:.2}")),
        );
    }
    if report.directions.iter().any(|d| d.video.is_some()) {
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>7} {:>7} {:>9} {:>10} {:>11} {:>12}",
            "video", "shown", "fps", "freezes", "frozen s", "first (s)", "resolution", "lost b/a"
        );
        for d in &report.directions {
            let Some(v) = &d.video else { continue };
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:>7} {:>7} {:>9.2} {:>10} {:>11} {:>12}",
                format!("{}→{}", d.from, d.to),
                v.frames_shown,
                ms(v.fps),
                v.freeze_count,
                v.freeze_s,
                v.first_frame_s
                    .map_or_else(|| "-".into(), |t| format!("{t:.2}")),
                v.resolution.as_deref().unwrap_or("-"),
                format!(
                    "{}/{}",
                    v.packets_lost_before_recovery, v.packets_lost_after_recovery
                ),
            );
        }
    }
    let _ = writeln!(
        out,
        "report: {} (and {})",
        report_path.display(),
        report_path.with_extension("html").display()
    );
    out
}

/// Runs `tincan sim` and prints the summary.
///
/// # Errors
///
/// As [`simulate`].
pub fn run(args: &SimArgs) -> Result<(), SimError> {
    let report = simulate(args)?;
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| args.out.join("report.json"));
    print!("{}", summary_table(&report, &report_path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn args(extra: &[&str]) -> SimArgs {
        Cli::parse_from(std::iter::once("sim").chain(extra.iter().copied())).sim
    }

    #[test]
    fn links_follow_the_profile_and_overrides() {
        let a = args(&["-n", "3", "--profile", "good", "--link", "2:3=lossy-20"]);
        let links = build_links(&a, 3).unwrap();
        assert_eq!(links[1].profile, "good");
        assert_eq!(links[3 + 2].profile, "lossy-20");
        assert_eq!(links[3 + 2].config.loss, 0.2);
        assert_eq!(links[6 + 1].profile, "good");
    }

    #[test]
    fn bad_options_are_named() {
        let cases: [(&[&str], &str); 5] = [
            (&["--link", "1:1=good"], "--link"),
            (&["--link", "1:5=good"], "--link"),
            (&["--link", "1:2"], "--link"),
            (&["--profile", "moon"], "profile"),
            (&["--link", "1:2=moon"], "profile"),
        ];
        for (extra, what) in cases {
            match build_links(&args(extra), 2) {
                Err(SimError::Invalid { what: got, .. }) => assert_eq!(got, what, "{extra:?}"),
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        let fixtures = crate::default_fixtures();
        assert!(build_mics(&args(&["--mic", "3=silence"]), 2, &fixtures).is_err());
        assert!(build_mics(&args(&["--mic", "2"]), 2, &fixtures).is_err());
        let mics = build_mics(&args(&["--mic", "2=silence"]), 2, &fixtures).unwrap();
        assert_eq!(mics[1].name, "silence");
        assert!(seconds_to_ms("--duration", f64::NAN, 1.0..=2.0).is_err());
        let away =
            build_absences(&args(&["--leave", "2=3-5.5", "--leave", "2=7-"]), 2, 10_000).unwrap();
        assert_eq!(away.len(), 2);
        assert_eq!(
            (away[0].participant, away[0].leave, away[0].rejoin),
            (1, Duration::from_secs(3), Duration::from_millis(5_500))
        );
        assert!(away[1].rejoin > Duration::from_secs(10));
        for bad in ["3=1-2", "2=5-4", "2=x-4", "2=1-3"] {
            assert!(
                build_absences(&args(&["--leave", "2=2-4", "--leave", bad]), 2, 10_000).is_err(),
                "{bad}"
            );
        }
        assert_eq!(seconds_to_ms("--turn", 2.5, 1.0..=600.0).unwrap(), 2_500);
    }
}
