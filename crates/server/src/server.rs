//! The async shell around the [`Hub`]: an axum server with the WebSocket endpoint and the
//! HTTP endpoints, embedded in-process ([`Server::start`]) or standalone (`tincan serve`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router as HttpRouter};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use thiserror::Error;
use tincan_signal::protocol::{CallId, MAX_ENVELOPE_BYTES, UserId};
use tokio::sync::{mpsc, watch};

use crate::hub::{ConnId, Hub, HubConfig, HubOutput, Now};
use crate::token::{TokenError, TokenKey};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:0` (a free port on loopback).
    pub listen: SocketAddr,
    /// The server secret that signs login tokens (at least 16 bytes).
    pub secret: Vec<u8>,
    /// Users whose tokens may use the HTTP endpoints other than `/health`. Default
    /// `["admin"]`.
    pub admin_users: Vec<UserId>,
    /// The hub's behaviour and bounds.
    pub hub: HubConfig,
    /// WebSocket frames longer than this close the connection; frames up to it but over
    /// the protocol's 64 KiB get an `oversized` error. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// Frames queued for one connection; a connection that does not keep up is closed.
    /// Default 256.
    pub outbound_queue: usize,
    /// The longest the timer task sleeps between runs of the hub's timers. Default 250 ms.
    pub max_tick: Duration,
}

impl ServerConfig {
    /// The defaults, with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret,
            admin_users: UserId::new("admin").into_iter().collect(),
            hub: HubConfig::default(),
            max_frame_bytes: 1 << 20,
            outbound_queue: 256,
            max_tick: Duration::from_millis(250),
        }
    }
}

/// Why the server did not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The secret cannot sign tokens.
    #[error(transparent)]
    Secret(#[from] TokenError),
    /// The runtime or thread of a [`BackgroundServer`] could not be made.
    #[error("cannot start the server's runtime: {source}")]
    Runtime {
        /// The error.
        source: std::io::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

struct State_ {
    hub: Hub,
    senders: HashMap<ConnId, mpsc::Sender<String>>,
}

struct Shared {
    state: Mutex<State_>,
    key: TokenKey,
    admin_users: Vec<UserId>,
    max_frame_bytes: usize,
    outbound_queue: usize,
    started: Instant,
    shutdown: watch::Receiver<bool>,
}

fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Now {
        instant: Instant::now(),
        unix_ms,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State_> {
        // The state is plain data; a panic elsewhere while holding it leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the hub, then carries out its outputs.
    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state.hub, now());
        dispatch(&mut state);
        result
    }
}

/// Moves the hub's outputs to the connections' queues. A full queue closes that
/// connection (the device does not keep up).
fn dispatch(state: &mut State_) {
    loop {
        let Some(output) = state.hub.poll_output() else {
            return;
        };
        match output {
            HubOutput::Send { conn, text } => {
                let full = state
                    .senders
                    .get(&conn)
                    .is_some_and(|tx| tx.try_send(text).is_err());
                if full {
                    tracing::warn!(conn = conn.0, "outbound queue full, closing");
                    state.senders.remove(&conn);
                    state.hub.close(conn, now());
                }
            }
            HubOutput::Close { conn } => {
                // Dropping the sender ends the writer after what is queued.
                state.senders.remove(&conn);
            }
        }
    }
}

/// The signalling server (a namespace for [`Server::start`]).
#[derive(Debug)]
pub struct Server;

/// A running server: its address, and how to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL devices connect to (`ws://addr/ws`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// Stops the server: closes every connection and waits for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (a standalone server runs until killed).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

impl Server {
    /// Starts the server on the current tokio runtime and returns once it listens.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let key = TokenKey::new(config.secret.clone())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State_ {
                hub: Hub::new(config.hub.clone(), key.clone()),
                senders: HashMap::new(),
            }),
            key,
            admin_users: config.admin_users.clone(),
            max_frame_bytes: config.max_frame_bytes.max(MAX_ENVELOPE_BYTES + 1),
            outbound_queue: config.outbound_queue.max(1),
            started: Instant::now(),
            shutdown: shutdown.clone(),
        });
        let app = HttpRouter::new()
            .route("/ws", get(ws_upgrade))
            .route("/health", get(health))
            .route("/records", get(records))
            .route("/calls/{id}", get(call_state))
            .route("/calls/{id}/end", post(end_call))
            .with_state(shared.clone());
        let timers = tokio::spawn(run_timers(shared.clone(), config.max_tick));
        let mut stopped = shutdown.clone();
        let task = tokio::spawn(async move {
            // Signalling frames are small and latency matters more than packing.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "server stopped");
            }
            timers.abort();
        });
        tracing::info!(%local_addr, "tincan server listening");
        Ok(ServerHandle {
            local_addr,
            stop,
            task,
        })
    }
}

/// A server on its own thread and tokio runtime, for programs that are not async (the
/// engine API, the CLI's call commands). Dropping it stops the server.
///
/// ```
/// use tincan_server::{BackgroundServer, ServerConfig};
///
/// let server = BackgroundServer::start(ServerConfig::new(b"sixteen bytes at least".to_vec()))?;
/// assert!(server.ws_url().starts_with("ws://127.0.0.1:"));
/// server.shutdown();
/// # Ok::<(), tincan_server::ServerError>(())
/// ```
#[derive(Debug)]
pub struct BackgroundServer {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Starts the server on a new thread and returns once it listens.
    pub fn start(config: ServerConfig) -> Result<Self, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tincan-server")
            .enable_all()
            .build()
            .map_err(|source| ServerError::Runtime { source })?;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(String::from("tincan-server"))
            .spawn(move || {
                runtime.block_on(async move {
                    match Server::start(config).await {
                        Ok(handle) => {
                            let _ = started_tx.send(Ok(handle.local_addr()));
                            let _ = stopped.await;
                            handle.shutdown().await;
                        }
                        Err(error) => {
                            let _ = started_tx.send(Err(error));
                        }
                    }
                });
            })
            .map_err(|source| ServerError::Runtime { source })?;
        let local_addr = started_rx.recv().map_err(|_| ServerError::Runtime {
            source: std::io::Error::other("the server thread ended before listening"),
        })??;
        Ok(Self {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL devices connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn run_timers(shared: Arc<Shared>, max_tick: Duration) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let wait = {
            let mut state = shared.lock();
            let now = now();
            state.hub.handle_timeout(now);
            dispatch(&mut state);
            state
                .hub
                .next_timeout()
                .map(|at| at.saturating_duration_since(now.instant))
                .unwrap_or(max_tick)
                .clamp(Duration::from_millis(10), max_tick)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn ws_upgrade(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    let max = shared.max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session(socket, shared))
}

async fn session(socket: WebSocket, shared: Arc<Shared>) {
    let (tx, mut rx) = mpsc::channel::<String>(shared.outbound_queue);
    let conn = {
        let mut state = shared.lock();
        match state.hub.open(now()) {
            Ok(conn) => {
                state.senders.insert(conn, tx);
                conn
            }
            Err(error) => {
                tracing::warn!(%error, "connection refused");
                return;
            }
        }
    };
    let (mut sink, mut stream) = socket.split();
    let writer = async {
        while let Some(text) = rx.recv().await {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(WsMessage::Close(None)).await;
    };
    let reader = async {
        while let Some(Ok(frame)) = stream.next().await {
            match frame {
                WsMessage::Text(text) => {
                    shared.with_hub(|hub, now| hub.handle_frame(conn, text.as_bytes(), now))
                }
                WsMessage::Binary(bytes) => {
                    shared.with_hub(|hub, now| hub.handle_frame(conn, &bytes, now))
                }
                WsMessage::Close(_) => return,
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            }
        }
    };
    let mut shutdown = shared.shutdown.clone();
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
    let mut state = shared.lock();
    state.senders.remove(&conn);
    state.hub.close(conn, now());
    dispatch(&mut state);
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Checks `Authorization: Bearer <token>` for a valid token of an admin user; the
/// response to send instead when it fails.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Some(json_error(
            StatusCode::UNAUTHORIZED,
            "bearer token required",
        ));
    };
    match shared.key.verify(token.trim(), now().unix_ms / 1000) {
        Err(error) => Some(json_error(StatusCode::UNAUTHORIZED, &error.to_string())),
        Ok(claims) if !shared.admin_users.contains(&claims.user) => {
            Some(json_error(StatusCode::FORBIDDEN, "not an admin user"))
        }
        Ok(_) => None,
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    Json(serde_json::json!({
        "status": "ok",
        "uptime_s": shared.started.elapsed().as_secs(),
        "connections": state.hub.connections(),
        "online_users": state.hub.online_users(),
        "calls": state.hub.tracked_calls(),
        "stats": state.hub.stats(),
    }))
    .into_response()
}

async fn records(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = refusal(&shared, &headers) {
        return response;
    }
    let state = shared.lock();
    let records: Vec<_> = state.hub.records().cloned().collect();
    Json(records).into_response()
}

async fn call_state(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(response) = refusal(&shared, &headers) {
        return response;
    }
    let Ok(call_id) = CallId::new(id) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid call id");
    };
    match shared.lock().hub.call_info(&call_id) {
        Some(info) => Json(info).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "unknown call"),
    }
}

#[derive(Deserialize, Default)]
struct EndRequest {
    #[serde(default)]
    reason: Option<String>,
}

async fn end_call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(response) = refusal(&shared, &headers) {
        return response;
    }
    let Ok(call_id) = CallId::new(id) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid call id");
    };
    let request: EndRequest = if body.trim().is_empty() {
        EndRequest::default()
    } else {
        match serde_json::from_str(&body) {
            Ok(request) => request,
            Err(_) => {
                return json_error(StatusCode::BAD_REQUEST, "body must be {\"reason\": \"…\"}");
            }
        }
    };
    match shared.with_hub(|hub, now| hub.end_call(&call_id, request.reason, now)) {
        Ok(told) => {
            Json(serde_json::json!({ "call_id": call_id, "devices_told": told })).into_response()
        }
        Err(error) => json_error(StatusCode::NOT_FOUND, &error.to_string()),
    }
}
