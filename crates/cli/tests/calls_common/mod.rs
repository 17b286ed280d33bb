//! Harness of the multi-process call tests: `tincan serve` and `tincan call`/`answer`
//! processes, their JSON event lines, and the speech check on a heard WAV.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tincan_codec::resample::resample_all;
use tincan_media::audio::AudioFrame;
use tincan_media::quality;
use tincan_media::wav::read_wav;
use tincan_server::TokenKey;
use tincan_signal::protocol::UserId;

pub const SECRET: &str = "multi-process call test secret, 32+ bytes";
const BIN: &str = env!("CARGO_BIN_EXE_tincan");

/// The tests start several media processes each: one test at a time on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The speech fixture.
pub fn speech_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/speech/speech_orig_16k.wav")
}

/// A scratch directory for one test, with the server secret in it.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-calls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    dir
}

/// A child process whose stdout lines arrive on a channel; killed on drop.
pub struct Process {
    pub name: String,
    child: Child,
    lines: Receiver<String>,
    /// Every JSON event seen so far.
    pub events: Vec<Value>,
}

impl Process {
    fn spawn(name: &str, args: &[String]) -> Process {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            name: name.to_owned(),
            child,
            lines,
            events: Vec::new(),
        }
    }

    /// Reads lines until one is an event matching `done`; panics after `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let Ok(event) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    self.events.push(event.clone());
                    if done(&event) {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: no matching event within {timeout:?}; saw {:#?}",
                    self.name,
                    names(&self.events)
                ),
            }
        }
    }

    /// Waits for the event named `event`.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> Value {
        self.wait_for(timeout, |e| e["event"] == event)
    }

    /// Waits for the process to exit on its own (successfully) and collects every event.
    pub fn finish(&mut self, timeout: Duration) -> &[Value] {
        let end = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    if let Ok(event) = serde_json::from_str::<Value>(&line) {
                        self.events.push(event);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: still running after {timeout:?}; saw {:#?}",
                    self.name,
                    names(&self.events)
                ),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{}: {status}; saw {:#?}",
            self.name,
            names(&self.events)
        );
        &self.events
    }

    /// The first event named `event` seen so far.
    pub fn find(&self, event: &str) -> Option<&Value> {
        self.events.iter().find(|e| e["event"] == event)
    }

    /// Whether an event named `event` with `field` = `value` was seen.
    pub fn saw(&self, event: &str, field: &str, value: &str) -> bool {
        self.events
            .iter()
            .any(|e| e["event"] == event && e[field] == value)
    }

    /// The reason of the `call_ends` seen.
    pub fn end_reason(&self) -> String {
        self.find("call_ends")
            .and_then(|e| e["reason"].as_str())
            .unwrap_or_else(|| panic!("{}: no call_ends in {:#?}", self.name, names(&self.events)))
            .to_owned()
    }

    /// The `media_stopped` summary's `field`.
    pub fn media(&self, field: &str) -> u64 {
        self.find("media_stopped")
            .and_then(|e| e["summary"][field].as_u64())
            .unwrap_or_else(|| panic!("{}: no media summary", self.name))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Event names with the user they name, for failure messages.
fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] != "voice_volume" && e["event"] != "presence")
        .map(|e| {
            let mut s = e["event"].as_str().unwrap_or("?").to_owned();
            for key in ["user", "reason", "caller", "action", "error", "message"] {
                if let Some(v) = e[key].as_str() {
                    s.push_str(&format!(" {key}={v}"));
                }
            }
            s
        })
        .collect()
}

/// A `tincan serve` process on a free port.
pub struct Server {
    process: Process,
    pub url: String,
    pub http: String,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let secret = dir.join("secret").display().to_string();
        let args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &secret,
            "--log",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let process = Process::spawn("server", &args);
        let line = process
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("server started");
        // "tincan server listening on 127.0.0.1:PORT (WebSocket: ws://127.0.0.1:PORT/ws)"
        let url = line
            .split("WebSocket: ")
            .nth(1)
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("server said {line}"))
            .to_owned();
        let http = url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .to_owned();
        Server { process, url, http }
    }

    /// `POST /calls/{id}/end` with an admin token; the HTTP status.
    pub fn end_call(&self, call_id: &str) -> u16 {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let token = TokenKey::new(SECRET.as_bytes().to_vec())
            .unwrap()
            .mint(&UserId::new("admin").unwrap(), expiry);
        let body = r#"{"reason":"test over"}"#;
        let mut stream = TcpStream::connect(&self.http).unwrap();
        write!(
            stream,
            "POST /calls/{call_id}/end HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.http,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Starts `tincan call` (`command` = "call") or `tincan answer` for `user/device` with
/// `extra` arguments.
pub fn device(
    server: &Server,
    dir: &Path,
    command: &str,
    user: &str,
    device: &str,
    extra: &[&str],
) -> Process {
    let secret = dir.join("secret").display().to_string();
    let mut args: Vec<String> = vec![
        command.into(),
        "--server".into(),
        server.url.clone(),
        "--user".into(),
        user.into(),
        "--device".into(),
        device.into(),
        "--secret-file".into(),
        secret,
        "--timeout".into(),
        "60".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut process = Process::spawn(&format!("{user}/{device}"), &args);
    process.wait_event("logged_in", Duration::from_secs(20));
    process
}

/// Means of `factor` samples at a time.
fn decimate(x: &[i16], factor: usize) -> Vec<f32> {
    x.chunks(factor)
        .map(|c| c.iter().map(|&s| f32::from(s)).sum::<f32>() / c.len() as f32)
        .collect()
}

/// The speech fixture at 48 kHz.
pub fn speech() -> Vec<i16> {
    let clip = read_wav(speech_path()).unwrap();
    resample_all(&clip, 48_000).unwrap().into_samples()
}

/// How well `heard` (48 kHz mono) holds `sent` (48 kHz mono): per 0.5 s window of speech
/// in `sent`, the best normalised correlation (at 8 kHz) with `heard` anywhere from
/// `earliest` before to `latest` after the same position; the median over windows, and
/// how many windows were compared.
pub fn speech_heard(
    sent: &[i16],
    heard: &[i16],
    earliest: Duration,
    latest: Duration,
) -> (f64, usize) {
    const RATE: usize = 8_000;
    // Half-second windows: the receiver's jitter buffer stretches and shrinks the speech
    // by tens of milliseconds at a time, which a longer window would smear.
    const WINDOW: usize = RATE / 2;
    let (s, h) = (decimate(sent, 6), decimate(heard, 6));
    let before = (earliest.as_secs_f64() * RATE as f64) as usize;
    let after = (latest.as_secs_f64() * RATE as f64) as usize;
    let mut scores = Vec::new();
    for start in (0..s.len().saturating_sub(WINDOW)).step_by(WINDOW) {
        let window = &s[start..start + WINDOW];
        if quality::rms(window) < 300.0 {
            continue;
        }
        let range = start.saturating_sub(before)..start + after;
        if range.start + WINDOW > h.len() {
            continue;
        }
        let best = range
            .filter(|at| at + WINDOW <= h.len())
            .map(|at| quality::correlation(window, &h[at..at + WINDOW]))
            .fold(0.0, f64::max);
        scores.push(best);
    }
    if scores.is_empty() {
        return (0.0, 0);
    }
    scores.sort_by(f64::total_cmp);
    (scores[scores.len() / 2], scores.len())
}

/// Reads a heard WAV file.
pub fn heard(path: &Path) -> Vec<i16> {
    let clip: AudioFrame<i16> = read_wav(path).unwrap();
    assert_eq!(clip.format().sample_rate(), 48_000);
    clip.into_samples()
}

/// What a `--seen` Y4M file holds: its picture size and, per picture, the frame number the
/// sender's synthetic pattern drew into it (`None` where it cannot be read).
pub struct Seen {
    pub width: u32,
    pub height: u32,
    pub counters: Vec<Option<u64>>,
}

/// Reads a `--seen` Y4M file.
pub fn seen(path: &Path) -> Seen {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = tincan_media::y4m::Y4mReader::new(file).unwrap();
    let size = reader.resolution();
    let mut counters = Vec::new();
    while let Some(frame) = reader.read_frame().unwrap() {
        counters.push(tincan_media::source::read_frame_counter(&frame));
    }
    Seen {
        width: size.width(),
        height: size.height(),
        counters,
    }
}

/// Root mean square of `samples[from..to]` (48 kHz), in full-scale units.
pub fn rms(samples: &[i16], from: Duration, to: Duration) -> f64 {
    let at = |d: Duration| ((d.as_secs_f64() * 48_000.0) as usize).min(samples.len());
    let window = &samples[at(from)..at(to)];
    if window.is_empty() {
        return 0.0;
    }
    let sum: f64 = window.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / window.len() as f64).sqrt() / 32768.0
}
