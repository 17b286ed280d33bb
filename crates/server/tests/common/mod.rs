//! Test harness: an embedded server on 127.0.0.1:0, devices each with a real WebSocket
//! connection and a `CallMachine` on the wall clock, a tiny HTTP client, raw sockets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tincan_server::{HubConfig, Server, ServerConfig, ServerHandle, TokenKey, WsTransport};
use tincan_signal::call::{CallEvent, CallMachine, CallMachineConfig, CallPhase};
use tincan_signal::protocol::{DeviceId, EndReason, Endpoint, Envelope, Message, UserId, parse};
use tincan_signal::transport::{flush, receive_all};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SECRET: &[u8] = b"integration test secret 32 bytes";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

pub fn token(name: &str, valid_for_secs: i64) -> String {
    let expiry = (unix_now() as i64 + valid_for_secs).max(1) as u64;
    TokenKey::new(SECRET.to_vec())
        .unwrap()
        .mint(&user(name), expiry)
}

pub async fn start(hub: HubConfig) -> ServerHandle {
    let mut config = ServerConfig::new(SECRET.to_vec());
    config.hub = hub;
    config.max_tick = Duration::from_millis(50);
    Server::start(config).await.unwrap()
}

pub struct Device {
    pub name: String,
    pub machine: CallMachine,
    pub link: WsTransport,
    pub events: Vec<CallEvent>,
    deadline: Option<Instant>,
}

static INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Device {
    /// Logs `user/device` in with a fresh token; its machine rings for `ring_timeout`.
    pub async fn login(server: &ServerHandle, user_name: &str, device: &str) -> Device {
        Self::login_with(server, user_name, device, Duration::from_secs(30)).await
    }

    pub async fn login_with(
        server: &ServerHandle,
        user_name: &str,
        device: &str,
        ring_timeout: Duration,
    ) -> Device {
        let endpoint = Endpoint::new(user(user_name), DeviceId::new(device).unwrap());
        let link = WsTransport::connect(&server.ws_url(), endpoint.clone(), &token(user_name, 600))
            .await
            .unwrap();
        let instance = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut config = CallMachineConfig::new(endpoint, instance);
        config.ring_timeout = ring_timeout;
        Device {
            name: format!("{user_name}/{device}"),
            machine: CallMachine::new(config).unwrap(),
            link,
            events: Vec::new(),
            deadline: None,
        }
    }

    /// One turn: what arrived goes in, due timers run, what the machine says goes out.
    pub fn pump(&mut self) {
        let now = Instant::now();
        let _ = receive_all(&mut self.machine, &mut self.link, now);
        if self.deadline.is_some_and(|at| at <= now) {
            self.machine.handle_timeout(now);
        }
        self.deadline = flush(&mut self.machine, &mut self.link, &mut self.events).unwrap_or(None);
    }

    pub fn phase(&self) -> CallPhase {
        self.machine.phase()
    }

    pub fn ended_with(&self) -> Option<EndReason> {
        self.events.iter().rev().find_map(|e| match e {
            CallEvent::CallEnds { reason, .. } => Some(*reason),
            _ => None,
        })
    }

    pub fn saw(&self, f: impl Fn(&CallEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

/// Pumps every device until `done` holds; panics after `limit`.
pub async fn run_until(
    devices: &mut [&mut Device],
    limit: Duration,
    mut done: impl FnMut(&[&mut Device]) -> bool,
) {
    let start = Instant::now();
    loop {
        for device in devices.iter_mut() {
            device.pump();
        }
        if done(devices) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out; phases: {:?}",
            devices
                .iter()
                .map(|d| (d.name.clone(), d.phase(), d.ended_with()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Pumps every device for `time`.
pub async fn run_for(devices: &mut [&mut Device], time: Duration) {
    let start = Instant::now();
    run_until(devices, time + Duration::from_secs(1), |_| {
        start.elapsed() >= time
    })
    .await;
}

/// A minimal HTTP/1.1 client: (status, JSON body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw WebSocket connection that speaks frames, not machines.
pub struct Raw {
    pub socket: RawSocket,
}

impl Raw {
    pub async fn connect(server: &ServerHandle) -> Raw {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(server.ws_url(), None, true)
            .await
            .unwrap();
        Raw { socket }
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
    }

    pub async fn send(&mut self, id: &str, seq: u64, message: Message) {
        let envelope = Envelope::new(
            tincan_signal::protocol::MessageId::new(id).unwrap(),
            seq,
            message,
        );
        self.send_text(envelope.to_json()).await;
    }

    pub async fn login(&mut self, name: &str, device: &str, token: String) {
        self.send(
            "login",
            0,
            Message::Login {
                user: user(name),
                device: DeviceId::new(device).unwrap(),
                token,
            },
        )
        .await;
    }

    /// The next envelope that is not presence; `None` when the server closed.
    pub async fn recv(&mut self) -> Option<Envelope> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("no answer within 5 s")?;
            match frame {
                Ok(tokio_tungstenite::tungstenite::Message::Text(text)) => {
                    let envelope = parse(text.as_bytes()).unwrap();
                    if !matches!(envelope.message, Message::Presence { .. }) {
                        return Some(envelope);
                    }
                }
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
