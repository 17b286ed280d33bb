//! One call's media: a thread that owns the call's UDP socket and its
//! [`Session`], on a 10 ms audio clock.
//!
//! Every 10 ms the thread takes a microphone frame ([`Microphone`]), pushes it into the
//! session, pulls 10 ms of playout and hands it to the [`Speaker`]; between ticks it
//! waits on the socket (with a timeout up to the next tick or session timer) and hands
//! every datagram to the session at once. Every datagram the session transmits goes to
//! every other participant's announced address: a full mesh, which the session's group
//! contract allows (`docs/PIPELINE.md`, "The relay contract": a relay may forward more
//! than needed, never less).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tincan_pipeline::video::VideoSessionConfig;
use tincan_pipeline::{
    Event, FRAME_SAMPLES, Input, Output, RemoteParticipant, Session, SessionConfig,
};
use tincan_signal::protocol::{CallId, UserId};

use super::EngineError;
use super::audio::{AudioInput, AudioOutput, Microphone, Speaker};
use super::event::{EngineEvent, MediaSummary};
use super::sink::EventSink;
use super::video::{Camera, Screen, VideoInput, VideoOutput};

/// The audio clock.
const TICK: Duration = Duration::from_millis(10);
/// Ticks made up at once after the thread was held up; beyond, frames are skipped (and
/// counted) rather than bunched.
const MAX_CATCH_UP_TICKS: u32 = 10;
/// Largest datagram read.
const RECEIVE_BUFFER: usize = 2048;
/// Datagrams handled in a row before the clock is looked at again.
const MAX_RECEIVES_PER_TURN: usize = 64;

/// What the signalling side tells a call's media thread.
#[derive(Debug)]
pub(crate) enum MediaCommand {
    /// A participant's media address and audio SSRC (from its `media_params`); replaces
    /// what that user announced before.
    AddPeer {
        user: UserId,
        address: SocketAddr,
        audio_ssrc: Option<u32>,
        video_ssrcs: Option<VideoSsrcs>,
    },
    /// A participant left: stop sending to it and drop its receive state.
    RemoveUser(UserId),
    /// Microphone off (`true`) or on.
    SetMuted(bool),
    /// A new microphone source.
    SetInput(AudioInput),
    /// A new playout sink.
    SetOutput(AudioOutput),
    /// Camera on (`true`) or off.
    SetCamera(bool),
    /// The call's media type: video (`true`) or audio only.
    SetVideoCall(bool),
    /// A new camera source.
    SetVideoInput(VideoInput),
    /// A new sink for the remotes' pictures.
    SetVideoOutput(VideoOutput),
    /// Stop the call's media.
    Stop,
}

/// What a media thread starts with.
pub(crate) struct MediaSetup {
    pub call_id: CallId,
    pub socket: UdpSocket,
    pub ssrc: u32,
    pub denoise: bool,
    pub muted: bool,
    pub input: AudioInput,
    pub output: AudioOutput,
    pub video: VideoSetup,
    pub events: EventSink,
}

/// A device's video SSRCs, as announced in `media_params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VideoSsrcs {
    pub media: u32,
    pub rtx: u32,
    pub fec: u32,
}

/// The video part of a media thread's start.
pub(crate) struct VideoSetup {
    pub ssrcs: VideoSsrcs,
    /// The call begins as a video call.
    pub video_call: bool,
    pub camera: bool,
    pub input: VideoInput,
    pub output: VideoOutput,
}

/// A running call's media thread.
pub(crate) struct MediaHandle {
    pub commands: Sender<MediaCommand>,
    pub thread: JoinHandle<()>,
}

struct Peer {
    address: SocketAddr,
    audio_ssrc: Option<u32>,
    video_ssrcs: Option<VideoSsrcs>,
}

/// The session's view of a participant: its audio SSRC with its video SSRCs.
fn remote(audio_ssrc: u32, video: Option<VideoSsrcs>) -> RemoteParticipant {
    let remote = RemoteParticipant::new(audio_ssrc);
    match video {
        Some(v) => remote.with_video_ssrcs(v.media, v.rtx, v.fec),
        None => remote,
    }
}

/// Starts the media thread of a call.
pub(crate) fn start(setup: MediaSetup) -> Result<MediaHandle, EngineError> {
    let (commands, receiver) = std::sync::mpsc::channel();
    let name = format!("tincan-media-{}", setup.call_id.as_str());
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(setup, receiver))
        .map_err(|e| EngineError::Io {
            what: "media thread",
            reason: e.to_string(),
        })?;
    Ok(MediaHandle { commands, thread })
}

fn run(setup: MediaSetup, commands: Receiver<MediaCommand>) {
    let MediaSetup {
        call_id,
        socket,
        ssrc,
        denoise,
        muted,
        input,
        output,
        video,
        events,
    } = setup;
    let warn = |message: String| events.send(EngineEvent::Warning { message });
    let mut summary = MediaSummary::default();
    let start = Instant::now();
    let mut camera = Camera::open(&video.input)
        .or_else(|e| {
            warn(e.to_string());
            Camera::open(&VideoInput::default())
        })
        .ok();
    // The session always has video (so that an audio call can switch to video); the
    // camera's size and rate cap what it sends.
    let mut video_config =
        VideoSessionConfig::new(video.ssrcs.media, video.ssrcs.rtx, video.ssrcs.fec)
            .with_camera(video.camera);
    if let Some(camera) = &camera {
        video_config = video_config
            .with_max_resolution(camera.resolution())
            .with_max_fps(camera.fps());
    }
    let camera_fps = camera.as_ref().map_or(30, Camera::fps);
    let config = SessionConfig::new(ssrc)
        .with_denoise(denoise)
        .with_video(video_config);
    let mut session = match Session::new(config, start) {
        Ok(session) => session,
        Err(e) => {
            warn(format!("call {}: no media session: {e}", call_id.as_str()));
            events.send(EngineEvent::MediaStopped { call_id, summary });
            return;
        }
    };
    session.set_muted(muted);
    if let Err(e) = session.set_video_call(video.video_call, start) {
        warn(format!("call {}: video: {e}", call_id.as_str()));
    }
    let mut screen = Screen::open(&video.output, camera_fps).unwrap_or_else(|e| {
        warn(e.to_string());
        Screen::Discard
    });
    let mut next_picture = start;
    let mut warned_video = false;
    let mut mic = Microphone::open(&input).unwrap_or_else(|e| {
        warn(e.to_string());
        Microphone::Silence
    });
    let mut speaker = Speaker::open(&output).unwrap_or_else(|e| {
        warn(e.to_string());
        Speaker::Discard
    });
    let mut peers: BTreeMap<UserId, Peer> = BTreeMap::new();
    let mut mic_frame = [0i16; FRAME_SAMPLES];
    let mut heard = [0i16; FRAME_SAMPLES];
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    let mut next_tick = start;
    let mut session_deadline = start;
    let mut warned_session = false;
    let user_of = |peers: &BTreeMap<UserId, Peer>, ssrc: u32| {
        peers
            .iter()
            .find(|(_, p)| p.audio_ssrc == Some(ssrc))
            .map(|(u, _)| u.clone())
    };

    'call: loop {
        // Commands from signalling.
        loop {
            match commands.try_recv() {
                Ok(MediaCommand::AddPeer {
                    user,
                    address,
                    audio_ssrc,
                    video_ssrcs,
                }) => {
                    // A new announcement with other SSRCs replaces the remote.
                    if let Some(old) = peers.get(&user)
                        && let Some(old_ssrc) = old.audio_ssrc
                        && (Some(old_ssrc) != audio_ssrc || old.video_ssrcs != video_ssrcs)
                    {
                        session.remove_remote(old_ssrc);
                    }
                    if let Some(ssrc) = audio_ssrc
                        && !session.remote_ssrcs().any(|s| s == ssrc)
                        && let Err(e) = session.add_remote(remote(ssrc, video_ssrcs))
                    {
                        warn(format!("call {}: remote {ssrc}: {e}", call_id.as_str()));
                    }
                    peers.insert(
                        user,
                        Peer {
                            address,
                            audio_ssrc,
                            video_ssrcs,
                        },
                    );
                }
                Ok(MediaCommand::RemoveUser(user)) => {
                    if let Some(peer) = peers.remove(&user)
                        && let Some(ssrc) = peer.audio_ssrc
                    {
                        session.remove_remote(ssrc);
                    }
                }
                Ok(MediaCommand::SetMuted(muted)) => session.set_muted(muted),
                Ok(MediaCommand::SetInput(input)) => match Microphone::open(&input) {
                    Ok(new) => mic = new,
                    Err(e) => warn(e.to_string()),
                },
                Ok(MediaCommand::SetOutput(output)) => match Speaker::open(&output) {
                    Ok(new) => {
                        if let Err(e) = speaker.close() {
                            warn(e.to_string());
                        }
                        speaker = new;
                    }
                    Err(e) => warn(e.to_string()),
                },
                Ok(MediaCommand::SetCamera(on)) => {
                    // Refused only without video, which the session always has.
                    let _ = session.set_camera(on, Instant::now());
                }
                Ok(MediaCommand::SetVideoCall(on)) => {
                    let _ = session.set_video_call(on, Instant::now());
                }
                Ok(MediaCommand::SetVideoInput(input)) => match Camera::open(&input) {
                    // The session's cap stays the first camera's: the session scales.
                    Ok(new) => camera = Some(new),
                    Err(e) => warn(e.to_string()),
                },
                Ok(MediaCommand::SetVideoOutput(output)) => {
                    match Screen::open(&output, camera_fps) {
                        Ok(new) => {
                            if let Err(e) = screen.close() {
                                warn(e.to_string());
                            }
                            screen = new;
                        }
                        Err(e) => warn(e.to_string()),
                    }
                }
                Ok(MediaCommand::Stop) | Err(TryRecvError::Disconnected) => break 'call,
                Err(TryRecvError::Empty) => break,
            }
        }

        // The audio clock.
        let now = Instant::now();
        let mut ticks = 0;
        while now >= next_tick {
            if ticks == MAX_CATCH_UP_TICKS {
                let behind = now.duration_since(next_tick).as_millis() / TICK.as_millis() + 1;
                summary.frames_skipped += behind as u64;
                next_tick += TICK * behind as u32;
                break;
            }
            mic.fill(&mut mic_frame);
            let pushed = session.push_audio(&mic_frame, now);
            let pulled = session.pull_audio(now, &mut heard);
            if let Err(e) = pushed.and(pulled.map(|_| ()))
                && !warned_session
            {
                warned_session = true;
                warn(format!("call {}: media: {e}", call_id.as_str()));
            }
            summary.frames_played += 1;
            if let Err(e) = speaker.play(&heard) {
                warn(e.to_string());
                speaker = Speaker::Discard;
            }
            next_tick += TICK;
            ticks += 1;
        }
        // The camera's clock: a picture every interval while video is sent (none is taken
        // otherwise, so a file source pauses with the camera).
        if let Some(cam) = camera.as_mut()
            && now >= next_picture
        {
            if session.video_call() && session.camera() {
                let pushed = match cam.capture() {
                    Ok(Some(picture)) => session.push_video(picture, now).map(|_| true),
                    Ok(None) => Ok(false),
                    Err(e) => {
                        warn(e.to_string());
                        camera = None;
                        Ok(false)
                    }
                };
                match pushed {
                    Ok(true) => summary.video_frames_captured += 1,
                    Ok(false) => {}
                    Err(e) => {
                        if !warned_video {
                            warned_video = true;
                            warn(format!("call {}: video: {e}", call_id.as_str()));
                        }
                    }
                }
            }
            if let Some(cam) = camera.as_ref() {
                next_picture += cam.interval();
                if next_picture <= now {
                    // Held up: no burst of pictures to catch up.
                    next_picture = now + cam.interval();
                }
            }
        }
        if now >= session_deadline {
            // Errors here are counted by the session (bad state is not the network's).
            let _ = session.handle_input(Input::Timeout, now);
        }

        // What the session has to say.
        loop {
            match session.poll_output() {
                Output::Transmit(datagram) => {
                    for peer in peers.values() {
                        if socket.send_to(&datagram, peer.address).is_err() {
                            summary.send_errors += 1;
                        }
                    }
                    session.recycle(datagram);
                }
                Output::Event(event) => {
                    if let Some(event) = engine_event(&call_id, event, |s| user_of(&peers, s)) {
                        events.send(event);
                    }
                }
                Output::Timeout(at) => {
                    session_deadline = at;
                    break;
                }
                _ => {}
            }
        }

        // Decoded pictures, shown as they come (the session lends them until the next
        // poll).
        while let Some(picture) = session.poll_video_frame() {
            summary.video_frames_shown += 1;
            // Borrowed, not cloned: no allocation per picture.
            let user = peers
                .iter()
                .find(|(_, p)| p.audio_ssrc == Some(picture.remote))
                .map(|(u, _)| u);
            if let Err(e) = screen.show(user, picture.remote, picture.frame) {
                warn(e.to_string());
                screen = Screen::Discard;
            }
        }

        // Wait for datagrams until the next tick, session timer or camera picture.
        let mut wake = next_tick.min(session_deadline);
        if camera.is_some() {
            wake = wake.min(next_picture);
        }
        let mut wait = wake.saturating_duration_since(Instant::now());
        for _ in 0..MAX_RECEIVES_PER_TURN {
            if wait.is_zero() {
                break;
            }
            if socket.set_read_timeout(Some(wait)).is_err() {
                break;
            }
            match socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    if !peers.values().any(|p| p.address == from) {
                        summary.foreign_datagrams += 1;
                    }
                    // A bad datagram is counted by the session; the call goes on.
                    let _ = session.handle_input(Input::Receive(&buffer[..len]), Instant::now());
                    // Answer feedback and timers promptly on the next turn.
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                Err(_) => {
                    // ICMP port unreachable from a peer that left, and the like.
                    wait = wake.saturating_duration_since(Instant::now());
                }
            }
        }
    }

    let stats = session.stats(Instant::now());
    summary.packets_sent = stats.packets_sent;
    summary.packets_received = stats.packets_received;
    summary.bad_datagrams = stats.bad_datagrams;
    summary.receive_loss_after_recovery = stats.receive_loss_after_recovery;
    summary.rtt = stats.rtt;
    summary.video_frames_encoded = stats.video_frames_encoded;
    summary.video_frames_decoded = stats.video_frames_decoded;
    summary.video_freeze_count = stats.video_freeze_count;
    if let Err(e) = speaker.close() {
        warn(e.to_string());
    }
    if let Err(e) = screen.close() {
        warn(e.to_string());
    }
    events.send(EngineEvent::MediaStopped { call_id, summary });
}

/// The engine's event for a session event (`None`: statistics, which the summary
/// reports).
fn engine_event(
    call_id: &CallId,
    event: Event,
    user_of: impl Fn(u32) -> Option<UserId>,
) -> Option<EngineEvent> {
    let call_id = call_id.clone();
    Some(match event {
        Event::RemoteAudioAvailable { ssrc } => EngineEvent::AudioAvailable {
            call_id,
            user: user_of(ssrc),
            ssrc,
            available: true,
        },
        Event::RemoteAudioUnavailable { ssrc } => EngineEvent::AudioAvailable {
            call_id,
            user: user_of(ssrc),
            ssrc,
            available: false,
        },
        Event::RemoteVideoAvailable { ssrc, resolution } => EngineEvent::VideoAvailable {
            call_id,
            user: user_of(ssrc),
            ssrc,
            available: true,
            resolution: Some((resolution.width(), resolution.height())),
        },
        Event::RemoteVideoUnavailable { ssrc } => EngineEvent::VideoAvailable {
            call_id,
            user: user_of(ssrc),
            ssrc,
            available: false,
            resolution: None,
        },
        Event::RemoteVolume { ssrc, volume } => EngineEvent::VoiceVolume {
            call_id,
            user: user_of(ssrc),
            ssrc,
            volume,
        },
        Event::LocalSpeaking { speaking } => EngineEvent::LocalSpeaking { call_id, speaking },
        Event::ActiveSpeaker { ssrc } => EngineEvent::ActiveSpeaker {
            call_id,
            user: user_of(ssrc),
            ssrc,
        },
        Event::NetworkQuality { ssrc, quality } => EngineEvent::NetworkQuality {
            call_id,
            user: user_of(ssrc),
            ssrc,
            quality,
        },
        _ => return None,
    })
}
