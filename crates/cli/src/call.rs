//! `tincan call` and `tincan answer`: a device on the [`CallEngine`] that places (or
//! joins) a call, or answers one, over a tincan server with media over UDP. The
//! microphone comes from a WAV file or a tone, what is heard goes to a WAV file; in video
//! calls the camera is a synthetic pattern or a Y4M file and what is seen goes to a Y4M
//! file per remote. Every event is printed on stdout as one JSON object per line
//! (`docs/ENGINE.md`).

use std::error::Error;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tincan::engine::{MediaSummary, VideoInput, VideoOutput};
use tincan::signal::protocol::{MediaType, UserId};
use tincan::{AudioInput, AudioOutput, CallEngine, CallOptions, EngineConfig, EngineEvent};
use tincan_server::TokenKey;

/// How the device logs in and where its media goes.
#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:7878/ws")]
    server: String,
    /// The user to log in as.
    #[arg(long)]
    user: String,
    /// This device's name.
    #[arg(long, default_value = "cli")]
    device: String,
    /// The login token (`tincan token`).
    #[arg(long, conflicts_with = "secret_file")]
    token: Option<String>,
    /// Mint the token from the server's secret file instead (tests, local use).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Microphone: a WAV file (any supported rate, mono or stereo), played once from the
    /// call's start.
    #[arg(long, conflicts_with = "tone")]
    mic: Option<PathBuf>,
    /// Microphone: a sine tone of this frequency in Hz.
    #[arg(long)]
    tone: Option<f32>,
    /// Write what is heard to this WAV file (48 kHz mono).
    #[arg(long)]
    heard: Option<PathBuf>,
    /// Camera in video calls: `synthetic` (a moving test pattern, 320x180 at 15 fps) or a
    /// Y4M file (8-bit 4:2:0, sent at its frame rate, once).
    #[arg(long, default_value = "synthetic")]
    camera: String,
    /// Write each remote's video to DIR/USER.y4m.
    #[arg(long, value_name = "DIR")]
    seen: Option<PathBuf>,
    /// Turn noise suppression off.
    #[arg(long)]
    no_denoise: bool,
    /// Local address for the media socket.
    #[arg(long, default_value = "127.0.0.1")]
    media_bind: IpAddr,
    /// Ring timeout of the calls this device places, seconds (1 to 120).
    #[arg(long, default_value_t = 30.0)]
    ring_timeout: f64,
    /// Give up after this many seconds whatever happens.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

/// Arguments of `tincan call`.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// A user to call (repeat for a group call).
    #[arg(long = "to", required_unless_present = "join")]
    to: Vec<String>,
    /// Join the ongoing call with this id instead of placing one.
    #[arg(long, conflicts_with = "to")]
    join: Option<String>,
    /// The id of the call placed (so that others can join it).
    #[arg(long)]
    call_id: Option<String>,
    /// Audio or video.
    #[arg(long, value_enum, default_value_t = Media::Audio)]
    media: Media,
    /// Hang up this many seconds after the call began (default: stay until it ends).
    #[arg(long)]
    duration: Option<f64>,
    /// Cancel this many seconds after calling if nobody answered yet.
    #[arg(long)]
    cancel_after: Option<f64>,
    /// Invite USER into the call SECONDS after it began: `USER@SECONDS` (repeatable).
    #[arg(long = "invite")]
    invites: Vec<String>,
    /// Switch the call to audio this many seconds after it began.
    #[arg(long)]
    switch_to_audio_after: Option<f64>,
}

/// Arguments of `tincan answer`.
#[derive(clap::Args, Debug)]
pub struct AnswerArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Reject the invitations instead of accepting them.
    #[arg(long, conflicts_with = "ignore")]
    reject: bool,
    /// Let the invitations ring (until they end) without answering.
    #[arg(long)]
    ignore: bool,
    /// Wait this many seconds before answering.
    #[arg(long, default_value_t = 0.0)]
    answer_after: f64,
    /// Hang up this many seconds after the call began (default: stay until it ends).
    #[arg(long)]
    duration: Option<f64>,
    /// Exit after this many calls ended on this device.
    #[arg(long, default_value_t = 1)]
    calls: u32,
}

/// The media type, on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// Audio only.
    Audio,
    /// Audio and video.
    Video,
}

fn seconds(value: f64, what: &str) -> Result<Duration, Box<dyn Error>> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{what}: {value} s is no duration").into())
}

fn read_secret(path: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut secret =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
        secret.pop();
    }
    Ok(secret)
}

/// Logs the device in and prints `logged_in`.
fn connect(args: &DeviceArgs, clock: &Clock) -> Result<CallEngine, Box<dyn Error>> {
    let token = match (&args.token, &args.secret_file) {
        (Some(token), _) => token.clone(),
        (None, Some(file)) => {
            let key = TokenKey::new(read_secret(file)?)?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            key.mint(&UserId::new(args.user.as_str())?, now + 3600)
        }
        (None, None) => return Err("give --token or --secret-file".into()),
    };
    let mut config = EngineConfig::new(&args.server, &args.user, &args.device, token)?;
    config.media_bind = args.media_bind;
    config.ring_timeout = seconds(args.ring_timeout, "--ring-timeout")?;
    config.denoise = !args.no_denoise;
    config.audio_input = match (&args.mic, args.tone) {
        (Some(path), _) => AudioInput::wav(path),
        (None, Some(frequency_hz)) => AudioInput::Tone {
            frequency_hz,
            amplitude: 0.3,
        },
        (None, None) => AudioInput::Silence,
    };
    if let Some(path) = &args.heard {
        config.audio_output = AudioOutput::wav(path);
    }
    config.video_input = match args.camera.as_str() {
        "synthetic" => VideoInput::default(),
        path => VideoInput::y4m(path),
    };
    if let Some(dir) = &args.seen {
        config.video_output = VideoOutput::y4m_dir(dir);
    }
    let engine = CallEngine::connect(config)?;
    clock.print(json!({"event": "logged_in", "user": args.user, "device": args.device}));
    Ok(engine)
}

/// Time since the process started, for the printed events.
struct Clock(Instant);

impl Clock {
    fn print(&self, mut line: Value) {
        if let Value::Object(map) = &mut line {
            map.insert(
                String::from("t_ms"),
                json!(self.0.elapsed().as_millis() as u64),
            );
        }
        println!("{line}");
    }
}

/// What the loop of `call` and `answer` plans to do, and when.
#[derive(Debug, PartialEq)]
enum Plan {
    HangUp,
    Cancel,
    Invite(String),
    SwitchToAudio,
    Accept,
    Reject,
}

/// Places (or joins) one call and follows it to its end.
pub fn run_call(args: &CallArgs) -> Result<(), Box<dyn Error>> {
    let clock = Clock(Instant::now());
    let engine = connect(&args.device, &clock)?;
    let mut after_begin: Vec<(Duration, Plan)> = Vec::new();
    if let Some(d) = args.duration {
        after_begin.push((seconds(d, "--duration")?, Plan::HangUp));
    }
    for invite in &args.invites {
        let (user, at) = invite
            .rsplit_once('@')
            .ok_or_else(|| format!("--invite {invite}: expected USER@SECONDS"))?;
        let at = seconds(at.parse()?, "--invite")?;
        after_begin.push((at, Plan::Invite(user.to_owned())));
    }
    if let Some(d) = args.switch_to_audio_after {
        after_begin.push((seconds(d, "--switch-to-audio-after")?, Plan::SwitchToAudio));
    }
    let mut scheduled: Vec<(Instant, Plan)> = Vec::new();
    let started = Instant::now();
    if let Some(join) = &args.join {
        engine.join(join)?;
        clock.print(json!({"event": "joining", "call_id": join}));
    } else {
        let media = match args.media {
            Media::Audio => MediaType::Audio,
            Media::Video => MediaType::Video,
        };
        let mut options = CallOptions::new(&args.to, media)?;
        if let Some(id) = &args.call_id {
            options = options.with_call_id(id)?;
        }
        let call_id = engine.call(options)?;
        clock.print(json!({"event": "calling", "call_id": call_id.as_str(), "to": args.to}));
        if let Some(d) = args.cancel_after {
            scheduled.push((started + seconds(d, "--cancel-after")?, Plan::Cancel));
        }
    }
    follow(
        &engine,
        &clock,
        seconds(args.device.timeout, "--timeout")?,
        1,
        scheduled,
        |_| std::mem::take(&mut after_begin),
        |_| Vec::new(),
    )?;
    engine.shutdown();
    Ok(())
}

/// Answers (or rejects, or lets ring) invitations until `--calls` calls ended.
pub fn run_answer(args: &AnswerArgs) -> Result<(), Box<dyn Error>> {
    let clock = Clock(Instant::now());
    let engine = connect(&args.device, &clock)?;
    let duration = args
        .duration
        .map(|d| seconds(d, "--duration"))
        .transpose()?;
    let answer_after = seconds(args.answer_after, "--answer-after")?;
    let (reject, ignore) = (args.reject, args.ignore);
    follow(
        &engine,
        &clock,
        seconds(args.device.timeout, "--timeout")?,
        args.calls,
        Vec::new(),
        |_| duration.map(|d| (d, Plan::HangUp)).into_iter().collect(),
        |_| match (reject, ignore) {
            (_, true) => Vec::new(),
            (true, _) => vec![(answer_after, Plan::Reject)],
            _ => vec![(answer_after, Plan::Accept)],
        },
    )?;
    engine.shutdown();
    Ok(())
}

/// Prints every event until `calls` calls ended (and their media stopped), doing the
/// scheduled actions on the way.
fn follow(
    engine: &CallEngine,
    clock: &Clock,
    timeout: Duration,
    calls: u32,
    mut scheduled: Vec<(Instant, Plan)>,
    mut on_begin: impl FnMut(&EngineEvent) -> Vec<(Duration, Plan)>,
    mut on_ring: impl FnMut(&EngineEvent) -> Vec<(Duration, Plan)>,
) -> Result<(), Box<dyn Error>> {
    let give_up = Instant::now() + timeout;
    let mut ended = 0;
    // After an end, the media thread's summary follows within a tick; a call that never
    // began has none.
    let mut media_running = false;
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= give_up {
            clock.print(json!({"event": "timeout"}));
            return Err("timed out".into());
        }
        if done_at.is_some_and(|at| now >= at) {
            return Ok(());
        }
        // Due actions.
        let (due, later): (Vec<_>, Vec<_>) = scheduled.into_iter().partition(|(at, _)| *at <= now);
        scheduled = later;
        for (_, plan) in due {
            let result = match &plan {
                Plan::HangUp => engine.hang_up(),
                Plan::Cancel => engine.cancel(),
                Plan::Invite(user) => engine.invite(&[user.as_str()]),
                Plan::SwitchToAudio => engine.switch_media(MediaType::Audio),
                Plan::Accept => engine.accept(),
                Plan::Reject => engine.reject(),
            };
            let action = format!("{plan:?}").to_lowercase();
            match result {
                Ok(()) => clock.print(json!({"event": "action", "action": action})),
                Err(e) => clock.print(
                    json!({"event": "action_refused", "action": action, "error": e.to_string()}),
                ),
            }
        }
        let next = scheduled
            .iter()
            .map(|(at, _)| *at)
            .chain(done_at)
            .min()
            .unwrap_or(give_up)
            .min(give_up);
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let Some(event) = engine.next_event(wait) else {
            continue;
        };
        clock.print(event_json(&event));
        let now = Instant::now();
        match &event {
            EngineEvent::CallReceived { .. } => {
                scheduled.extend(on_ring(&event).into_iter().map(|(d, p)| (now + d, p)));
            }
            EngineEvent::CallBegins { .. } => {
                media_running = true;
                scheduled.retain(|(_, p)| *p != Plan::Cancel);
                scheduled.extend(on_begin(&event).into_iter().map(|(d, p)| (now + d, p)));
            }
            EngineEvent::CallEnds { .. } => {
                ended += 1;
                scheduled.clear();
                if ended >= calls {
                    let grace = if media_running { 2000 } else { 300 };
                    done_at = Some(now + Duration::from_millis(grace));
                }
            }
            EngineEvent::MediaStopped { .. } => {
                media_running = false;
                if ended >= calls {
                    done_at = Some(now);
                }
            }
            EngineEvent::Kicked { .. } | EngineEvent::Disconnected => return Ok(()),
            _ => {}
        }
    }
}

fn name<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn summary_json(summary: &MediaSummary) -> Value {
    json!({
        "packets_sent": summary.packets_sent,
        "packets_received": summary.packets_received,
        "bad_datagrams": summary.bad_datagrams,
        "foreign_datagrams": summary.foreign_datagrams,
        "send_errors": summary.send_errors,
        "frames_played": summary.frames_played,
        "frames_skipped": summary.frames_skipped,
        "receive_loss_after_recovery": summary.receive_loss_after_recovery,
        "rtt_ms": summary.rtt.map(|d| d.as_secs_f64() * 1e3),
        "video_frames_captured": summary.video_frames_captured,
        "video_frames_encoded": summary.video_frames_encoded,
        "video_frames_decoded": summary.video_frames_decoded,
        "video_frames_shown": summary.video_frames_shown,
        "video_freeze_count": summary.video_freeze_count,
    })
}

/// One event as a JSON object: `"event"` names it, the other fields are its own.
pub fn event_json(event: &EngineEvent) -> Value {
    let user = |u: &Option<UserId>| u.as_ref().map(|u| u.as_str().to_owned());
    match event {
        EngineEvent::Presence {
            user,
            online,
            in_call,
        } => {
            json!({"event": "presence", "user": user.as_str(), "online": online, "in_call": in_call})
        }
        EngineEvent::CallReceived {
            call_id,
            caller,
            media,
            callees,
            ..
        } => {
            json!({"event": "call_received", "call_id": call_id.as_str(), "caller": caller.as_str(),
            "media": name(media), "callees": callees.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
        }
        EngineEvent::CallBegins { call_id, media } => {
            json!({"event": "call_begins", "call_id": call_id.as_str(), "media": name(media)})
        }
        EngineEvent::CallEnds {
            call_id,
            reason,
            duration,
        } => json!({"event": "call_ends", "call_id": call_id.as_str(), "reason": name(reason),
            "duration_ms": duration.as_millis() as u64}),
        EngineEvent::UserRinging { call_id, endpoint } => json!({"event": "user_ringing",
            "call_id": call_id.as_str(), "user": endpoint.user.as_str(), "device": endpoint.device.as_str()}),
        EngineEvent::UserJoined { call_id, user } => {
            json!({"event": "user_joined", "call_id": call_id.as_str(), "user": user.as_str()})
        }
        EngineEvent::UserLeft {
            call_id,
            user,
            reason,
        } => json!({"event": "user_left", "call_id": call_id.as_str(), "user": user.as_str(),
            "reason": name(reason)}),
        EngineEvent::UserRejected { call_id, user } => {
            json!({"event": "user_rejected", "call_id": call_id.as_str(), "user": user.as_str()})
        }
        EngineEvent::UserNoAnswer { call_id, user } => {
            json!({"event": "user_no_answer", "call_id": call_id.as_str(), "user": user.as_str()})
        }
        EngineEvent::UserBusy { call_id, user } => {
            json!({"event": "user_busy", "call_id": call_id.as_str(), "user": user.as_str()})
        }
        EngineEvent::UserInvited { call_id, user, by } => json!({"event": "user_invited",
            "call_id": call_id.as_str(), "user": user.as_str(), "by": by.as_str()}),
        EngineEvent::MissedWhileBusy { call_id, caller } => json!({"event": "missed_while_busy",
            "call_id": call_id.as_str(), "caller": caller.as_str()}),
        EngineEvent::MediaTypeChanged { call_id, media, by } => {
            json!({"event": "media_type_changed",
            "call_id": call_id.as_str(), "media": name(media), "by": user(by)})
        }
        EngineEvent::MediaSwitchRequested { call_id, by, media } => {
            json!({"event": "media_switch_requested",
            "call_id": call_id.as_str(), "by": by.as_str(), "media": name(media)})
        }
        EngineEvent::MediaSwitchDeclined { call_id, by } => {
            json!({"event": "media_switch_declined",
            "call_id": call_id.as_str(), "by": user(by)})
        }
        EngineEvent::RemoteMediaState {
            call_id,
            user,
            mic,
            camera,
        } => {
            json!({"event": "remote_media_state", "call_id": call_id.as_str(), "user": user.as_str(),
            "mic": mic, "camera": camera})
        }
        EngineEvent::AudioAvailable {
            call_id,
            user: who,
            ssrc,
            available,
        } => json!({"event": "audio_available", "call_id": call_id.as_str(), "user": user(who),
            "ssrc": ssrc, "available": available}),
        EngineEvent::VideoAvailable {
            call_id,
            user: who,
            ssrc,
            available,
            resolution,
        } => json!({"event": "video_available", "call_id": call_id.as_str(), "user": user(who),
            "ssrc": ssrc, "available": available,
            "width": resolution.map(|r| r.0), "height": resolution.map(|r| r.1)}),
        EngineEvent::VoiceVolume {
            call_id,
            user: who,
            ssrc,
            volume,
        } => json!({"event": "voice_volume", "call_id": call_id.as_str(), "user": user(who),
            "ssrc": ssrc, "volume": volume}),
        EngineEvent::LocalSpeaking { call_id, speaking } => json!({"event": "local_speaking",
            "call_id": call_id.as_str(), "speaking": speaking}),
        EngineEvent::ActiveSpeaker {
            call_id,
            user: who,
            ssrc,
        } => {
            json!({"event": "active_speaker", "call_id": call_id.as_str(), "user": user(who), "ssrc": ssrc})
        }
        EngineEvent::NetworkQuality {
            call_id,
            user: who,
            ssrc,
            quality,
        } => json!({"event": "network_quality", "call_id": call_id.as_str(), "user": user(who),
            "ssrc": ssrc, "quality": format!("{quality:?}").to_lowercase()}),
        EngineEvent::MediaStopped { call_id, summary } => json!({"event": "media_stopped",
            "call_id": call_id.as_str(), "summary": summary_json(summary)}),
        EngineEvent::Kicked { detail } => json!({"event": "kicked", "detail": detail}),
        EngineEvent::Disconnected => json!({"event": "disconnected"}),
        EngineEvent::ServerError {
            code,
            call_id,
            detail,
        } => json!({"event": "server_error", "code": name(code),
            "call_id": call_id.as_ref().map(|c| c.as_str()), "detail": detail}),
        EngineEvent::Warning { message } => json!({"event": "warning", "message": message}),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}
