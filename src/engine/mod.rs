//! The engine API: [`CallEngine`] brings signalling, the media session and UDP sockets
//! together for one device.
//!
//! Threads (the engine crates are sans-IO; this module owns the clocks, sockets and
//! threads):
//!
//! - a small tokio runtime (one worker) runs the device's WebSocket connection to the
//!   server ([`tincan_server::WsTransport`]) and the *signalling task*, which owns the
//!   [`CallMachine`]: it takes the application's commands, the server's envelopes and the
//!   machine's timers, and turns the machine's events into [`EngineEvent`]s;
//! - while a call is on, one *media thread* owns the call's UDP socket and its
//!   [`Session`](tincan_pipeline::Session) on a 10 ms clock, with a camera clock beside
//!   it in video calls ([`video`] has the sources and sinks; see `docs/ENGINE.md`).
//!
//! Media transport: when its call begins, a device binds a UDP socket and announces its
//! address, port, codec and SSRCs (audio; video, RTX and FlexFEC) to the call with
//! `media_params` (again whenever a
//! user joins, so late joiners learn it). Each device sends every datagram of its session
//! to every other participant's announced address: a full mesh, fine for the small
//! groups a call holds (up to 16), with no relay to run. RTP and RTCP share the socket
//! (RFC 5761). Media is not encrypted in protocol version 1.
//!
//! `docs/ENGINE.md` describes the API with its events and the command-line tools built on
//! it (`tincan call`, `tincan answer`).

pub mod audio;
pub mod event;
mod media;
mod sink;
pub mod video;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use thiserror::Error;
use tincan_pipeline::session::OPUS_PT;
use tincan_server::WsTransport;
use tincan_signal::call::{CallEvent, CallMachine, CallMachineConfig, CallPhase, CallRequest};
use tincan_signal::protocol::{
    CallId, CodecParams, DeviceId, Endpoint, Envelope, GroupId, MediaState, MediaTransport,
    MediaType, Message, Ssrcs, UserId,
};
use tincan_signal::{CallError, Output, ProtocolError, Transport};
use tokio::sync::mpsc;

pub use audio::{AudioInput, AudioOutput};
pub use event::{EngineEvent, MediaSummary};
pub use video::{VideoInput, VideoOutput};

use media::{MediaCommand, MediaHandle, MediaSetup, VideoSetup, VideoSsrcs};
use sink::EventSink;

/// Commands waiting for the signalling task.
const COMMAND_QUEUE: usize = 64;
/// How long a command waits for the signalling task's answer.
const COMMAND_WAIT: Duration = Duration::from_secs(5);
/// How long [`CallEngine::shutdown`] lets a last hang-up reach the server.
const GOODBYE_WAIT: Duration = Duration::from_millis(200);

/// Why the engine refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The server could not be reached, or refused the login.
    #[error("cannot log in to {url}: {reason}")]
    Login {
        /// The server's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The call state machine refused the action (no call, wrong phase, bad callees…).
    #[error(transparent)]
    Call(#[from] CallError),
    /// An id or field outside the protocol's limits.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A WAV file could not be read or written.
    #[error("audio file {}: {reason}", path.display())]
    Audio {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A video source or sink failed (a Y4M file that cannot be read or written, a bad
    /// camera size or rate).
    #[error("video {}: {reason}", path.display())]
    Video {
        /// The file (empty for a bad setting).
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A socket, thread or runtime could not be made.
    #[error("{what}: {reason}")]
    Io {
        /// What was being made.
        what: &'static str,
        /// What failed.
        reason: String,
    },
    /// The engine stopped (shut down, kicked, or the connection closed).
    #[error("the engine has stopped")]
    Stopped,
    /// The command queue is full (the signalling task is held up).
    #[error("too many commands waiting")]
    Busy,
}

/// How a [`CallEngine`] logs in and runs its calls. [`EngineConfig::new`] gives the
/// defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The server's WebSocket URL (`ws://host:port/ws`).
    pub server_url: String,
    /// This device.
    pub endpoint: Endpoint,
    /// The login token the server minted for the user (`tincan token`).
    pub token: String,
    /// The local address media sockets bind to (default 127.0.0.1; an interface address
    /// or 0.0.0.0 for calls between machines).
    pub media_bind: IpAddr,
    /// The address announced to the others (default: `media_bind`; set it when binding
    /// 0.0.0.0).
    pub media_announce: Option<IpAddr>,
    /// How long an invitation this device places rings (default 30 s; 1 to 120 s).
    pub ring_timeout: Duration,
    /// Noise suppression on the microphone (default on).
    pub denoise: bool,
    /// The microphone (default silence). [`CallEngine::set_audio_input`] changes it.
    pub audio_input: AudioInput,
    /// The speaker (default discard). [`CallEngine::set_audio_output`] changes it.
    pub audio_output: AudioOutput,
    /// The camera (default the synthetic pattern, 320×180 at 15 fps), used while a call
    /// has video and the camera is on. [`CallEngine::set_video_input`] changes it.
    pub video_input: VideoInput,
    /// The remotes' pictures (default discard). [`CallEngine::set_video_output`] changes
    /// it.
    pub video_output: VideoOutput,
    /// Events kept for the application before new ones are dropped (default 4096).
    pub event_capacity: usize,
}

impl EngineConfig {
    /// The defaults for `user` on `device`, logging in to `server_url` with `token`.
    pub fn new(
        server_url: impl Into<String>,
        user: &str,
        device: &str,
        token: impl Into<String>,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            server_url: server_url.into(),
            endpoint: Endpoint::new(UserId::new(user)?, DeviceId::new(device)?),
            token: token.into(),
            media_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media_announce: None,
            ring_timeout: Duration::from_secs(30),
            denoise: true,
            audio_input: AudioInput::Silence,
            audio_output: AudioOutput::Discard,
            video_input: VideoInput::default(),
            video_output: VideoOutput::Discard,
            event_capacity: 4096,
        })
    }
}

/// A call to place: who, with which media, and the optional call parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// The users to call (1 to 15).
    pub callees: Vec<UserId>,
    /// Audio or video.
    pub media: MediaType,
    /// The call's id (so that others can join it by id); `None` makes one.
    pub call_id: Option<CallId>,
    /// The application's group, for group calls.
    pub group_id: Option<GroupId>,
    /// Opaque application data for the callees (up to 4 096 bytes).
    pub user_data: Option<String>,
}

impl CallOptions {
    /// A call to `callees` with `media`.
    pub fn new<S: AsRef<str>>(callees: &[S], media: MediaType) -> Result<Self, EngineError> {
        Ok(Self {
            callees: callees
                .iter()
                .map(|c| UserId::new(c.as_ref()))
                .collect::<Result<_, _>>()?,
            media,
            call_id: None,
            group_id: None,
            user_data: None,
        })
    }

    /// An audio call to `callees`.
    pub fn audio<S: AsRef<str>>(callees: &[S]) -> Result<Self, EngineError> {
        Self::new(callees, MediaType::Audio)
    }

    /// Sets the call's id.
    pub fn with_call_id(mut self, call_id: &str) -> Result<Self, EngineError> {
        self.call_id = Some(CallId::new(call_id)?);
        Ok(self)
    }
}

/// What the application asks of the signalling task.
#[derive(Debug)]
enum Action {
    Call(CallOptions),
    Join(CallId),
    Invite(Vec<UserId>),
    Accept,
    Reject,
    Cancel,
    HangUp,
    SwitchMedia(MediaType),
    AnswerMediaSwitch(bool),
    Mic(bool),
    Camera(bool),
    Input(AudioInput),
    Output(AudioOutput),
    VideoInput(VideoInput),
    VideoOutput(VideoOutput),
    Shutdown,
}

struct Command {
    action: Action,
    reply: std::sync::mpsc::Sender<Result<Option<CallId>, EngineError>>,
}

/// One device's call engine: logged in to the server, placing and answering calls,
/// running their media. See the [module docs](self) for how it works, and
/// `docs/ENGINE.md`.
///
/// # Example: Alice calls Bob through an embedded server
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use tincan::signal::protocol::{EndReason, UserId};
/// use tincan::{AudioInput, CallEngine, CallOptions, EngineConfig, EngineEvent};
/// use tincan_server::{BackgroundServer, ServerConfig, TokenKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = b"a long random server secret.....".to_vec();
/// let server = BackgroundServer::start(ServerConfig::new(secret.clone()))?;
/// let key = TokenKey::new(secret)?;
/// let expiry = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 600;
/// let device = |user: &str| -> Result<CallEngine, Box<dyn std::error::Error>> {
///     let token = key.mint(&UserId::new(user)?, expiry);
///     let mut config = EngineConfig::new(server.ws_url(), user, "laptop", token)?;
///     config.audio_input = AudioInput::Tone { frequency_hz: 440.0, amplitude: 0.2 };
///     Ok(CallEngine::connect(config)?)
/// };
/// let (alice, bob) = (device("alice")?, device("bob")?);
/// /// The next event `wanted` picks out, within five seconds.
/// fn until<T>(engine: &CallEngine, wanted: impl Fn(&EngineEvent) -> Option<T>) -> Option<T> {
///     while let Some(event) = engine.next_event(Duration::from_secs(5)) {
///         if let Some(found) = wanted(&event) {
///             return Some(found);
///         }
///     }
///     None
/// }
///
/// let call_id = alice.call(CallOptions::audio(&["bob"])?)?;
/// until(&bob, |e| matches!(e, EngineEvent::CallReceived { .. }).then_some(()));
/// bob.accept()?;
/// until(&alice, |e| matches!(e, EngineEvent::CallBegins { .. }).then_some(()));
/// // Media flows over UDP: Alice hears Bob's tone.
/// let heard = until(&alice, |e| match e {
///     EngineEvent::AudioAvailable { user, available: true, .. } => user.clone(),
///     _ => None,
/// });
/// assert_eq!(heard.as_ref().map(|u| u.as_str()), Some("bob"));
/// alice.hang_up()?;
/// let reason = until(&bob, |e| match e {
///     EngineEvent::CallEnds { call_id: id, reason, .. } if *id == call_id => Some(*reason),
///     _ => None,
/// });
/// assert_eq!(reason, Some(EndReason::HangUp));
/// alice.shutdown();
/// bob.shutdown();
/// # Ok(())
/// # }
/// ```
///
/// Every method returns once the signalling task took the command (the machine's
/// refusals, such as accepting with nothing ringing, come back as
/// [`EngineError::Call`]); what follows arrives as [`EngineEvent`]s
/// ([`next_event`](Self::next_event)).
#[derive(Debug)]
pub struct CallEngine {
    endpoint: Endpoint,
    commands: mpsc::Sender<Command>,
    events: Receiver<EngineEvent>,
    dropped_events: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CallEngine {
    /// Connects to the server and logs the device in. Returns once the server accepted
    /// the login.
    pub fn connect(config: EngineConfig) -> Result<Self, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tincan-engine")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Io {
                what: "engine runtime",
                reason: e.to_string(),
            })?;
        let link = runtime
            .block_on(WsTransport::connect(
                &config.server_url,
                config.endpoint.clone(),
                &config.token,
            ))
            .map_err(|e| EngineError::Login {
                url: config.server_url.clone(),
                reason: e.to_string(),
            })?;
        let mut machine_config = CallMachineConfig::new(config.endpoint.clone(), random_u64());
        machine_config.ring_timeout = config.ring_timeout;
        let machine = CallMachine::new(machine_config)?;
        let (sink, events, dropped_events) = EventSink::new(config.event_capacity);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let task = Signalling {
            machine,
            link,
            events: sink,
            deadline: None,
            media: None,
            peers: BTreeMap::new(),
            media_state: MediaState {
                mic: true,
                camera: true,
            },
            stopping: Vec::new(),
            config,
        };
        let endpoint = task.config.endpoint.clone();
        let task = runtime.spawn(task.run(command_rx));
        Ok(Self {
            endpoint,
            commands,
            events,
            dropped_events,
            runtime: Some(runtime),
            task: Some(task),
        })
    }

    /// This device.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Places a call; returns its id. Events follow: [`EngineEvent::UserRinging`],
    /// then [`EngineEvent::CallBegins`] on the first accept, or [`EngineEvent::CallEnds`]
    /// (rejected, busy, no answer).
    pub fn call(&self, options: CallOptions) -> Result<CallId, EngineError> {
        self.request(Action::Call(options))?
            .ok_or(EngineError::Stopped)
    }

    /// Joins an ongoing call by its id.
    pub fn join(&self, call_id: &str) -> Result<(), EngineError> {
        self.request(Action::Join(CallId::new(call_id)?)).map(drop)
    }

    /// Invites more users into the current call.
    pub fn invite<S: AsRef<str>>(&self, users: &[S]) -> Result<(), EngineError> {
        let users = users
            .iter()
            .map(|u| UserId::new(u.as_ref()))
            .collect::<Result<_, _>>()?;
        self.request(Action::Invite(users)).map(drop)
    }

    /// Accepts the call this device rings for.
    pub fn accept(&self) -> Result<(), EngineError> {
        self.request(Action::Accept).map(drop)
    }

    /// Rejects the call this device rings for.
    pub fn reject(&self) -> Result<(), EngineError> {
        self.request(Action::Reject).map(drop)
    }

    /// Cancels the call this device placed, before anyone answered.
    pub fn cancel(&self) -> Result<(), EngineError> {
        self.request(Action::Cancel).map(drop)
    }

    /// Leaves the current call (in a group of three or more, the call goes on for the
    /// others); cancels or rejects a call not yet answered.
    pub fn hang_up(&self) -> Result<(), EngineError> {
        self.request(Action::HangUp).map(drop)
    }

    /// Switches the call's media type: to audio at once, to video as a request the others
    /// answer ([`EngineEvent::MediaTypeChanged`] or [`EngineEvent::MediaSwitchDeclined`]).
    pub fn switch_media(&self, media: MediaType) -> Result<(), EngineError> {
        self.request(Action::SwitchMedia(media)).map(drop)
    }

    /// Answers another participant's request to switch to video.
    pub fn answer_media_switch(&self, accept: bool) -> Result<(), EngineError> {
        self.request(Action::AnswerMediaSwitch(accept)).map(drop)
    }

    /// Turns the microphone on or off (off: no audio is sent; the others are told with
    /// `media_state` and see [`EngineEvent::RemoteMediaState`]).
    pub fn set_mic(&self, on: bool) -> Result<(), EngineError> {
        self.request(Action::Mic(on)).map(drop)
    }

    /// Turns the camera on or off (told to the others; off, no video is sent, and the
    /// others see [`EngineEvent::VideoAvailable`] `false` about a second later).
    pub fn set_camera(&self, on: bool) -> Result<(), EngineError> {
        self.request(Action::Camera(on)).map(drop)
    }

    /// Changes the microphone source, for the current call (if any) and the next ones.
    pub fn set_audio_input(&self, input: AudioInput) -> Result<(), EngineError> {
        self.request(Action::Input(input)).map(drop)
    }

    /// Changes the speaker sink, for the current call (if any) and the next ones.
    pub fn set_audio_output(&self, output: AudioOutput) -> Result<(), EngineError> {
        self.request(Action::Output(output)).map(drop)
    }

    /// Changes the camera source, for the current call (if any) and the next ones.
    pub fn set_video_input(&self, input: VideoInput) -> Result<(), EngineError> {
        self.request(Action::VideoInput(input)).map(drop)
    }

    /// Changes where the remotes' pictures go, for the current call (if any) and the next
    /// ones.
    pub fn set_video_output(&self, output: VideoOutput) -> Result<(), EngineError> {
        self.request(Action::VideoOutput(output)).map(drop)
    }

    /// The next event, waiting up to `timeout`; `None` when none came (or the engine
    /// stopped and every event was taken).
    pub fn next_event(&self, timeout: Duration) -> Option<EngineEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_event(&self) -> Option<EngineEvent> {
        self.events.try_recv().ok()
    }

    /// Events dropped because the application did not take them in time.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Hangs up the current call, if any, logs out and stops every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let _ = self.request(Action::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = runtime.block_on(async { tokio::time::timeout(COMMAND_WAIT, task).await });
        }
        runtime.shutdown_timeout(Duration::from_millis(100));
    }

    fn request(&self, action: Action) -> Result<Option<CallId>, EngineError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.commands
            .try_send(Command { action, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EngineError::Busy,
                mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
            })?;
        answer
            .recv_timeout(COMMAND_WAIT)
            .map_err(|_| EngineError::Stopped)?
    }
}

impl Drop for CallEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A random number (the machine's instance, SSRCs): std's hasher keys are random per
/// process, mixed with the clock so two calls in a process differ.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// A participant's media address as announced.
#[derive(Clone, Debug)]
struct Peer {
    address: SocketAddr,
    audio_ssrc: Option<u32>,
    video_ssrcs: Option<VideoSsrcs>,
}

/// The current call's media on this device.
struct LocalMedia {
    handle: MediaHandle,
    transport: MediaTransport,
}

/// The signalling task: owns the machine and the connection.
struct Signalling {
    machine: CallMachine,
    link: WsTransport,
    events: EventSink,
    deadline: Option<Instant>,
    /// The running call's media thread.
    media: Option<LocalMedia>,
    /// Media addresses announced in the current call, by user.
    peers: BTreeMap<UserId, Peer>,
    media_state: MediaState,
    /// Media threads told to stop, joined once finished.
    stopping: Vec<std::thread::JoinHandle<()>>,
    config: EngineConfig,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Signalling {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let sleep = match self.deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            let flow = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => Flow::Stop,
                },
                envelope = self.link.recv() => match envelope {
                    Some(envelope) => self.on_envelope(&envelope).await,
                    None => {
                        self.lost();
                        self.events.send(EngineEvent::Disconnected);
                        Flow::Stop
                    }
                },
                () = sleep => {
                    self.machine.handle_timeout(Instant::now());
                    Flow::Continue
                }
            };
            let flushed = self.flush().await;
            if flow == Flow::Stop || flushed == Flow::Stop {
                break;
            }
        }
        self.stop_media();
        let threads = std::mem::take(&mut self.stopping);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }

    /// The connection is gone: a call in progress ends for this device.
    fn lost(&mut self) {
        if let Some(call_id) = self.machine.call_id().cloned() {
            self.events.send(EngineEvent::CallEnds {
                call_id,
                reason: tincan_signal::protocol::EndReason::ConnectionLost,
                duration: Duration::ZERO,
            });
        }
    }

    async fn on_command(&mut self, command: Command) -> Flow {
        let now = Instant::now();
        let mut flow = Flow::Continue;
        let result: Result<Option<CallId>, EngineError> = match command.action {
            Action::Call(options) => {
                let mut request = CallRequest::new(options.callees, options.media);
                request.call_id = options.call_id;
                request.group_id = options.group_id;
                request.user_data = options.user_data;
                self.machine
                    .call(request, now)
                    .map(Some)
                    .map_err(EngineError::from)
            }
            Action::Join(call_id) => self
                .machine
                .join(call_id, now)
                .map(|()| None)
                .map_err(Into::into),
            Action::Invite(users) => self
                .machine
                .invite(users, now)
                .map(|()| None)
                .map_err(Into::into),
            Action::Accept => self.machine.accept(now).map(|()| None).map_err(Into::into),
            Action::Reject => self.machine.reject(now).map(|()| None).map_err(Into::into),
            Action::Cancel => self.machine.cancel(now).map(|()| None).map_err(Into::into),
            Action::HangUp => self.machine.hang_up(now).map(|()| None).map_err(Into::into),
            Action::SwitchMedia(media) => self
                .machine
                .switch_media(media, now)
                .map(|()| None)
                .map_err(Into::into),
            Action::AnswerMediaSwitch(accept) => self
                .machine
                .answer_media_switch(accept, now)
                .map(|()| None)
                .map_err(Into::into),
            Action::Mic(on) => {
                self.media_state.mic = on;
                self.tell_media(MediaCommand::SetMuted(!on));
                self.announce_media_state(now);
                Ok(None)
            }
            Action::Camera(on) => {
                self.media_state.camera = on;
                self.tell_media(MediaCommand::SetCamera(on));
                self.announce_media_state(now);
                Ok(None)
            }
            Action::Input(input) => {
                self.config.audio_input = input.clone();
                self.tell_media(MediaCommand::SetInput(input));
                Ok(None)
            }
            Action::Output(output) => {
                self.config.audio_output = output.clone();
                self.tell_media(MediaCommand::SetOutput(output));
                Ok(None)
            }
            Action::VideoInput(input) => {
                self.config.video_input = input.clone();
                self.tell_media(MediaCommand::SetVideoInput(input));
                Ok(None)
            }
            Action::VideoOutput(output) => {
                self.config.video_output = output.clone();
                self.tell_media(MediaCommand::SetVideoOutput(output));
                Ok(None)
            }
            Action::Shutdown => {
                flow = Flow::Stop;
                if self.machine.phase() != CallPhase::Idle {
                    let _ = self.machine.hang_up(now);
                    let _ = self.flush().await;
                    tokio::time::sleep(GOODBYE_WAIT).await;
                }
                Ok(None)
            }
        };
        let _ = command.reply.send(result);
        flow
    }

    fn announce_media_state(&mut self, now: Instant) {
        if self.machine.phase() == CallPhase::Active {
            // Refused only outside a call, which the phase rules out.
            let _ = self.machine.set_media_state(self.media_state, now);
        }
    }

    async fn on_envelope(&mut self, envelope: &Envelope) -> Flow {
        match &envelope.message {
            Message::Presence {
                user,
                online,
                in_call,
            } => {
                self.events.send(EngineEvent::Presence {
                    user: user.clone(),
                    online: *online,
                    in_call: *in_call,
                });
                Flow::Continue
            }
            Message::Kicked { detail } => {
                self.lost();
                self.events.send(EngineEvent::Kicked {
                    detail: detail.clone(),
                });
                Flow::Stop
            }
            _ => {
                self.machine.handle_message(envelope, Instant::now());
                Flow::Continue
            }
        }
    }

    /// Sends what the machine has to send and turns its events into the engine's.
    async fn flush(&mut self) -> Flow {
        loop {
            match self.machine.poll_output() {
                Output::Send(envelope) => {
                    if self.link.send(&envelope).is_err() {
                        self.lost();
                        self.events.send(EngineEvent::Disconnected);
                        return Flow::Stop;
                    }
                }
                Output::Event(event) => self.on_call_event(event).await,
                Output::Timeout(at) => {
                    self.deadline = Some(at);
                    return Flow::Continue;
                }
                Output::Idle => {
                    self.deadline = None;
                    return Flow::Continue;
                }
            }
        }
    }

    async fn on_call_event(&mut self, event: CallEvent) {
        let me = self.config.endpoint.user.clone();
        let engine_event = match event {
            CallEvent::CallReceived {
                call_id,
                caller,
                media,
                callees,
                user_data,
                ..
            } => EngineEvent::CallReceived {
                call_id,
                caller,
                media,
                callees,
                user_data,
            },
            CallEvent::CallBegins { call_id, media } => {
                self.events.send(EngineEvent::CallBegins {
                    call_id: call_id.clone(),
                    media,
                });
                self.start_media(call_id, media);
                return;
            }
            CallEvent::CallEnds {
                call_id,
                reason,
                duration,
            } => {
                self.events.send(EngineEvent::CallEnds {
                    call_id,
                    reason,
                    duration,
                });
                self.stop_media();
                self.peers.clear();
                return;
            }
            CallEvent::UserRinging { call_id, endpoint } => {
                EngineEvent::UserRinging { call_id, endpoint }
            }
            CallEvent::UserJoined { call_id, user } => {
                // Tell the newcomer (and everyone again) where this device receives.
                if let Some(media) = &self.media {
                    let _ = self
                        .machine
                        .send_media_params(media.transport.clone(), Instant::now());
                }
                EngineEvent::UserJoined { call_id, user }
            }
            CallEvent::UserLeft {
                call_id,
                user,
                reason,
            } => {
                self.peers.remove(&user);
                self.tell_media(MediaCommand::RemoveUser(user.clone()));
                EngineEvent::UserLeft {
                    call_id,
                    user,
                    reason,
                }
            }
            CallEvent::UserRejected { call_id, user } => {
                EngineEvent::UserRejected { call_id, user }
            }
            CallEvent::UserNoAnswer { call_id, user } => {
                EngineEvent::UserNoAnswer { call_id, user }
            }
            CallEvent::UserBusy { call_id, user } => EngineEvent::UserBusy { call_id, user },
            CallEvent::UserInvited { call_id, user, by } => {
                EngineEvent::UserInvited { call_id, user, by }
            }
            CallEvent::MediaTypeChanged { call_id, media, by } => {
                self.tell_media(MediaCommand::SetVideoCall(media == MediaType::Video));
                EngineEvent::MediaTypeChanged { call_id, media, by }
            }
            CallEvent::MediaSwitchRequested { call_id, by, media } => {
                EngineEvent::MediaSwitchRequested { call_id, by, media }
            }
            CallEvent::MediaSwitchDeclined { call_id, by } => {
                EngineEvent::MediaSwitchDeclined { call_id, by }
            }
            CallEvent::RemoteMediaState {
                call_id,
                user,
                state,
            } => EngineEvent::RemoteMediaState {
                call_id,
                user,
                mic: state.mic,
                camera: state.camera,
            },
            CallEvent::RemoteMediaParams {
                from, transport, ..
            } => {
                if from.user != me {
                    self.on_media_params(from.user, &transport).await;
                }
                return;
            }
            CallEvent::MissedWhileBusy { call_id, caller } => {
                EngineEvent::MissedWhileBusy { call_id, caller }
            }
            CallEvent::ServerError {
                code,
                call_id,
                detail,
            } => EngineEvent::ServerError {
                code,
                call_id,
                detail,
            },
            _ => return,
        };
        self.events.send(engine_event);
    }

    async fn on_media_params(&mut self, user: UserId, transport: &MediaTransport) {
        let address = match transport.address.parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, transport.port)),
            Err(_) => tokio::net::lookup_host((transport.address.as_str(), transport.port))
                .await
                .ok()
                .and_then(|mut addresses| addresses.next()),
        };
        let Some(address) = address else {
            self.events.send(EngineEvent::Warning {
                message: format!(
                    "{}'s media address {} does not resolve",
                    user.as_str(),
                    transport.address
                ),
            });
            return;
        };
        let ssrcs = &transport.ssrcs;
        let video_ssrcs = match (ssrcs.video, ssrcs.rtx, ssrcs.fec) {
            (Some(media), Some(rtx), Some(fec)) => Some(VideoSsrcs { media, rtx, fec }),
            // The session's receive path needs all three; a device that announces fewer
            // is heard and not seen.
            _ => None,
        };
        let peer = Peer {
            address,
            audio_ssrc: ssrcs.audio,
            video_ssrcs,
        };
        self.tell_media(MediaCommand::AddPeer {
            user: user.clone(),
            address: peer.address,
            audio_ssrc: peer.audio_ssrc,
            video_ssrcs: peer.video_ssrcs,
        });
        self.peers.insert(user, peer);
    }

    fn tell_media(&self, command: MediaCommand) {
        if let Some(media) = &self.media {
            // A media thread that ended has nothing left to do with it.
            let _ = media.handle.commands.send(command);
        }
    }

    /// Binds the call's socket, starts its media thread and announces it.
    fn start_media(&mut self, call_id: CallId, media: MediaType) {
        self.stop_media();
        let socket = match UdpSocket::bind(SocketAddr::new(self.config.media_bind, 0)) {
            Ok(socket) => socket,
            Err(e) => {
                self.events.send(EngineEvent::Warning {
                    message: format!("call {}: no media socket: {e}", call_id.as_str()),
                });
                return;
            }
        };
        let port = socket.local_addr().map_or(0, |a| a.port());
        let announce = self.config.media_announce.unwrap_or(self.config.media_bind);
        let ssrc = (random_u64() as u32) | 1;
        // Video SSRCs follow the audio one (random per call, distinct from each other);
        // announced in every call, so that an audio call can switch to video.
        let video_ssrcs = VideoSsrcs {
            media: ssrc.wrapping_add(2),
            rtx: ssrc.wrapping_add(4),
            fec: ssrc.wrapping_add(6),
        };
        let transport = MediaTransport {
            address: announce.to_string(),
            port,
            codecs: vec![CodecParams {
                name: String::from("opus"),
                payload_type: OPUS_PT,
                clock_rate: 48_000,
                channels: Some(2),
            }],
            ssrcs: Ssrcs {
                audio: Some(ssrc),
                video: Some(video_ssrcs.media),
                rtx: Some(video_ssrcs.rtx),
                fec: Some(video_ssrcs.fec),
            },
            key: None,
        };
        let setup = MediaSetup {
            call_id: call_id.clone(),
            socket,
            ssrc,
            denoise: self.config.denoise,
            muted: !self.media_state.mic,
            input: self.config.audio_input.clone(),
            output: self.config.audio_output.clone(),
            video: VideoSetup {
                ssrcs: video_ssrcs,
                video_call: media == MediaType::Video,
                camera: self.media_state.camera,
                input: self.config.video_input.clone(),
                output: self.config.video_output.clone(),
            },
            events: self.events.clone(),
        };
        let handle = match media::start(setup) {
            Ok(handle) => handle,
            Err(e) => {
                self.events.send(EngineEvent::Warning {
                    message: e.to_string(),
                });
                return;
            }
        };
        for (user, peer) in &self.peers {
            let _ = handle.commands.send(MediaCommand::AddPeer {
                user: user.clone(),
                address: peer.address,
                audio_ssrc: peer.audio_ssrc,
                video_ssrcs: peer.video_ssrcs,
            });
        }
        let now = Instant::now();
        if let Err(e) = self.machine.send_media_params(transport.clone(), now) {
            self.events.send(EngineEvent::Warning {
                message: format!("cannot announce media: {e}"),
            });
        }
        if !self.media_state.mic || !self.media_state.camera {
            self.announce_media_state(now);
        }
        self.media = Some(LocalMedia { handle, transport });
    }

    fn stop_media(&mut self) {
        if let Some(media) = self.media.take() {
            let _ = media.handle.commands.send(MediaCommand::Stop);
            self.stopping.push(media.handle.thread);
        }
        // Threads stopped earlier are done within a tick: join those that are.
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stopping)
            .into_iter()
            .partition(|t| t.is_finished());
        for thread in done {
            let _ = thread.join();
        }
        self.stopping = running;
    }
}
