//! The tincan signalling server: token logins, presence, routing of the call protocol of
//! [`tincan_signal`] to every device of every participant, invitations kept for users who
//! log in within the ring timeout, call records, and HTTP endpoints to end a call, read
//! its state and list records. `docs/SERVER.md` describes running it.
//!
//! - [`token`]: mint and verify login tokens (HMAC-SHA256 over user id and expiry).
//! - [`hub`]: the server core, sans-IO (time passed in, outputs polled).
//! - [`Server`]: the async shell (tokio + axum), embedded in-process or standalone
//!   (`tincan serve`); [`BackgroundServer`] runs it on its own thread for programs that
//!   are not async.
//! - [`WsTransport`]: a device's WebSocket connection, a
//!   [`Transport`](tincan_signal::Transport) for a [`CallMachine`](tincan_signal::CallMachine).
//!
//! # Example: an embedded server, a token, a device logged in
//!
//! ```
//! use tincan_server::{Server, ServerConfig, WsTransport, token::TokenKey};
//! use tincan_signal::protocol::{DeviceId, Endpoint, UserId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = b"a long random server secret.....".to_vec();
//! let server = Server::start(ServerConfig::new(secret.clone())).await?;
//!
//! // Mint a token for bob, valid for an hour.
//! let bob = UserId::new("bob")?;
//! let expiry = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 3600;
//! let token = TokenKey::new(secret)?.mint(&bob, expiry);
//!
//! let endpoint = Endpoint::new(bob, DeviceId::new("phone")?);
//! let link = WsTransport::connect(&server.ws_url(), endpoint, &token).await?;
//! assert_eq!(link.endpoint().device.as_str(), "phone");
//! drop(link);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod hub;
mod server;
pub mod token;

pub use client::{WsError, WsTransport};
pub use hub::{CallInfo, CallRecord, Hub, HubConfig, HubError, HubOutput, HubStats, Now};
pub use server::{BackgroundServer, Server, ServerConfig, ServerError, ServerHandle};
pub use token::{TokenClaims, TokenError, TokenKey};
