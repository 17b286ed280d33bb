//! [`WsTransport`]: a device's WebSocket connection to the server, usable from a sans-IO
//! [`CallMachine`](tincan_signal::CallMachine) loop.
//!
//! How it fits: two tasks own the socket. The reader parses every text frame and pushes
//! the envelope into a bounded channel; the writer takes envelopes from another bounded
//! channel, stamps them with the connection's sequence number (so the login, the machine's
//! envelopes and the keepalive `ping`s share one increasing `seq`, as the server wants)
//! and sends them, plus a `ping` whenever the connection was quiet for the keepalive
//! interval the server asked for. The machine's owner drains the incoming channel with
//! [`Transport::poll_receive`] (or waits on [`WsTransport::recv`]) and hands envelopes to
//! [`CallMachine::handle_message`](tincan_signal::CallMachine::handle_message); it sends
//! the machine's outputs with [`Transport::send`], which never blocks — so
//! [`tincan_signal::transport::flush`] and [`tincan_signal::transport::receive_all`]
//! work unchanged.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use thiserror::Error;
use tincan_signal::protocol::{Endpoint, Envelope, ErrorCode, Message, MessageId, parse};
use tincan_signal::{ProtocolError, Transport, TransportError};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Envelopes queued in each direction.
const QUEUE: usize = 1024;

/// How long [`WsTransport::connect`] waits for the server's answer to the login.
const LOGIN_WAIT: Duration = Duration::from_secs(10);

/// Why a WebSocket connection failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WsError {
    /// The WebSocket connection could not be opened.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server refused the login.
    #[error("login refused: {code:?}")]
    LoginRefused {
        /// The server's error code (`unauthenticated`, `expired_token`…).
        code: ErrorCode,
    },
    /// The server closed the connection or did not answer the login in time.
    #[error("connection closed before the login was answered")]
    Closed,
    /// A login field is outside the protocol's limits.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// A logged-in WebSocket connection to the server. Dropping it closes the connection.
#[derive(Debug)]
pub struct WsTransport {
    endpoint: Endpoint,
    keepalive: Duration,
    outgoing: mpsc::Sender<Envelope>,
    incoming: mpsc::Receiver<Result<Envelope, ProtocolError>>,
}

impl WsTransport {
    /// Connects to `url` (`ws://host:port/ws`) and logs `endpoint` in with `token`;
    /// returns once the server answered `login_result`.
    pub async fn connect(url: &str, endpoint: Endpoint, token: &str) -> Result<Self, WsError> {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .map_err(|e| WsError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let login = Envelope::new(
            MessageId::new("login")?,
            0,
            Message::Login {
                user: endpoint.user.clone(),
                device: endpoint.device.clone(),
                token: token.to_owned(),
            },
        );
        login.validate()?;
        socket
            .send(WsMessage::text(login.to_json()))
            .await
            .map_err(|_| WsError::Closed)?;
        let answer = tokio::time::timeout(LOGIN_WAIT, async {
            while let Some(Ok(frame)) = socket.next().await {
                if let WsMessage::Text(text) = frame
                    && let Ok(envelope) = parse(text.as_bytes())
                {
                    return Some(envelope.message);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let keepalive_ms = match answer {
            Some(Message::LoginResult { keepalive_ms, .. }) => keepalive_ms,
            Some(Message::Error { code, .. }) => return Err(WsError::LoginRefused { code }),
            _ => return Err(WsError::Closed),
        };
        let keepalive = Duration::from_millis(u64::from(keepalive_ms.max(1_000)));
        let (out_tx, out_rx) = mpsc::channel(QUEUE);
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        tokio::spawn(pump(socket, out_rx, in_tx, keepalive));
        Ok(Self {
            endpoint,
            keepalive,
            outgoing: out_tx,
            incoming: in_rx,
        })
    }

    /// The device this connection logged in.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The keepalive interval the server asked for.
    pub fn keepalive(&self) -> Duration {
        self.keepalive
    }

    /// Waits for the next envelope from the server; `None` once the connection is closed.
    /// Frames that do not parse are skipped.
    pub async fn recv(&mut self) -> Option<Envelope> {
        loop {
            match self.incoming.recv().await? {
                Ok(envelope) => return Some(envelope),
                Err(_) => continue,
            }
        }
    }
}

impl Transport for WsTransport {
    fn send(&mut self, envelope: &Envelope) -> Result<(), TransportError> {
        self.outgoing
            .try_send(envelope.clone())
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => TransportError::QueueFull { capacity: QUEUE },
                mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
            })
    }

    fn poll_receive(&mut self) -> Result<Option<Envelope>, TransportError> {
        match self.incoming.try_recv() {
            Ok(Ok(envelope)) => Ok(Some(envelope)),
            Ok(Err(error)) => Err(TransportError::Protocol(error)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(TransportError::Closed),
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Owns the socket: writes envelopes (stamping the connection's `seq`) and keepalive
/// pings, reads frames into the incoming channel. Ends when either side closes.
async fn pump(
    socket: Socket,
    mut outgoing: mpsc::Receiver<Envelope>,
    incoming: mpsc::Sender<Result<Envelope, ProtocolError>>,
    keepalive: Duration,
) {
    let (mut sink, mut stream) = socket.split();
    let writer = async {
        // The login used 0.
        let mut seq: u64 = 1;
        let mut pings: u64 = 0;
        loop {
            let next = tokio::time::timeout(keepalive, outgoing.recv()).await;
            let mut envelope = match next {
                Ok(Some(envelope)) => envelope,
                Ok(None) => break,
                Err(_) => {
                    pings += 1;
                    let Ok(id) = MessageId::new(format!("ping-{pings}")) else {
                        break;
                    };
                    Envelope::new(id, 0, Message::Ping)
                }
            };
            envelope.seq = seq;
            seq += 1;
            if sink
                .send(WsMessage::text(envelope.to_json()))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = sink.send(WsMessage::Close(None)).await;
    };
    let reader = async {
        while let Some(Ok(frame)) = stream.next().await {
            let parsed = match frame {
                WsMessage::Text(text) => parse(text.as_bytes()),
                WsMessage::Close(_) => break,
                _ => continue,
            };
            let kicked = matches!(&parsed, Ok(e) if matches!(e.message, Message::Kicked { .. }));
            if matches!(&parsed, Ok(e) if e.message == Message::Pong) {
                continue;
            }
            if incoming.send(parsed).await.is_err() || kicked {
                break;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}
