//! The server core, sans-IO: connections, logins, presence, routing, kept invitations,
//! call tracking and records. The async shell ([`crate::Server`]) feeds it frames and
//! the time, and carries out what [`Hub::poll_output`] says.
//!
//! Nothing here reads a clock or touches a socket: every call takes a [`Now`], and the
//! hub answers with [`HubOutput`]s (a frame to send on a connection, a connection to
//! close) and its next deadline ([`Hub::next_timeout`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;
use tincan_signal::Router;
use tincan_signal::protocol::{
    CallId, EndReason, Endpoint, Envelope, ErrorCode, MAX_RING_TIMEOUT_MS, MAX_TEXT_BYTES,
    MIN_RING_TIMEOUT_MS, MediaType, Message, MessageId, UserId, parse,
};

use crate::token::{TokenError, TokenKey};

/// The time, as the shell read it: a monotonic instant for timers and the wall clock
/// (milliseconds since the Unix epoch) for token expiry and call records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for every timer.
    pub instant: Instant,
    /// Wall-clock time in milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// How the [`Hub`] behaves and how much it keeps. [`HubConfig::default`] documents the
/// defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HubConfig {
    /// How often devices should send something (told in `login_result`). Default 20 s.
    pub keepalive_ms: u32,
    /// A logged-in connection silent this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// A connection that has not logged in this long after opening is closed. Default 10 s.
    pub login_timeout: Duration,
    /// Connections at once; more are refused. Default 10 000.
    pub max_connections: usize,
    /// Calls tracked (and routed) at once; the oldest (ended first) are forgotten.
    /// Default 4 096.
    pub max_calls: usize,
    /// Call records kept; the oldest are dropped and counted. Default 1 000.
    pub max_records: usize,
    /// Invitations kept per user for devices that log in later. Default 16.
    pub max_kept_invites_per_user: usize,
    /// Messages a connection may send in a burst (token bucket size). Default 200.
    pub rate_burst: u32,
    /// Messages per second a connection may send in the long run. Default 50.
    pub rate_per_second: u32,
    /// Slack after an invitation's ring timeout before the server records the call as
    /// not answered (devices time out on their own clocks). Default 2 s.
    pub ring_grace: Duration,
    /// Message ids remembered per connection to drop duplicates. Default 64.
    pub dedup_window: usize,
    /// Other users' presence sent to a device right after its login, at most this many
    /// (the rest is counted in [`HubStats::presence_snapshot_truncated`]; the outbound
    /// queue per connection must hold them). Default 128.
    pub max_presence_snapshot: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            keepalive_ms: 20_000,
            idle_timeout: Duration::from_secs(60),
            login_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_calls: 4_096,
            max_records: 1_000,
            max_kept_invites_per_user: 16,
            rate_burst: 200,
            rate_per_second: 50,
            ring_grace: Duration::from_secs(2),
            dedup_window: 64,
            max_presence_snapshot: 128,
        }
    }
}

/// One connection, as the hub names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What the hub asks the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubOutput {
    /// Send this text frame (one envelope) on the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The envelope's JSON text.
        text: String,
    },
    /// Close the connection after sending what was queued for it before. The hub has
    /// already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Why the hub refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HubError {
    /// Too many connections at once.
    #[error("{open} connections open, the limit")]
    TooManyConnections {
        /// Connections open.
        open: usize,
    },
    /// The call id names no call the server knows.
    #[error("unknown call {call_id}")]
    UnknownCall {
        /// The call id.
        call_id: CallId,
    },
}

/// What the hub did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    /// Connections opened.
    pub opened: u64,
    /// Online users left out of a login's presence snapshot
    /// ([`HubConfig::max_presence_snapshot`]).
    pub presence_snapshot_truncated: u64,
    /// Connections refused at the connection limit.
    pub refused_connections: u64,
    /// Successful logins.
    pub logins: u64,
    /// Logins refused (bad or expired token, wrong user).
    pub failed_logins: u64,
    /// Connections replaced by a newer login of the same device.
    pub kicked: u64,
    /// Frames received.
    pub received: u64,
    /// Envelopes routed to at least zero devices.
    pub routed: u64,
    /// Envelopes delivered to devices (one per receiving device).
    pub delivered: u64,
    /// Frames answered with an `error`.
    pub refused: u64,
    /// Duplicate envelopes dropped.
    pub duplicates: u64,
    /// Frames dropped by the rate limit.
    pub rate_limited: u64,
    /// Kept invitations delivered to a device that logged in later.
    pub kept_invites_delivered: u64,
    /// Kept invitations dropped (ring timeout passed or per-user bound).
    pub kept_invites_dropped: u64,
    /// Connections closed for silence (idle or no login).
    pub timed_out: u64,
    /// Call records dropped to stay within the bound.
    pub records_dropped: u64,
    /// Calls forgotten to stay within the bound.
    pub calls_forgotten: u64,
}

/// The end of a call as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The call.
    pub call_id: CallId,
    /// Who placed it.
    pub caller: UserId,
    /// Its media type at the start.
    pub media: MediaType,
    /// Everyone invited or joined, the caller included.
    pub participants: Vec<UserId>,
    /// Who was in the call at some point (the caller, accepting and joining users).
    pub answered_by: Vec<UserId>,
    /// When the invitation was sent (ms since the Unix epoch).
    pub began_unix_ms: u64,
    /// When the call was first answered, if it was.
    pub answered_unix_ms: Option<u64>,
    /// When it ended.
    pub ended_unix_ms: u64,
    /// Time from the first answer to the end, in ms (0 if never answered).
    pub duration_ms: u64,
    /// How it ended.
    pub result: EndReason,
}

/// A call's state as the server sees it (`GET /calls/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// The call.
    pub call_id: CallId,
    /// `"ringing"`, `"active"` or `"ended"`.
    pub state: &'static str,
    /// Who placed it.
    pub caller: UserId,
    /// Its media type at the start.
    pub media: MediaType,
    /// Everyone invited or joined.
    pub participants: Vec<UserId>,
    /// Who is in the call now.
    pub in_call: Vec<UserId>,
    /// Invitees who have not answered yet.
    pub ringing: Vec<UserId>,
    /// When the invitation was sent (ms since the Unix epoch).
    pub began_unix_ms: u64,
    /// When it was first answered.
    pub answered_unix_ms: Option<u64>,
    /// The record, once ended.
    pub record: Option<CallRecord>,
}

#[derive(Debug)]
struct Conn {
    endpoint: Option<Endpoint>,
    opened: Instant,
    last_heard: Instant,
    last_seq: Option<u64>,
    recent_ids: VecDeque<MessageId>,
    bucket: f64,
    bucket_at: Instant,
}

#[derive(Debug)]
struct KeptInvite {
    call_id: CallId,
    expires: Instant,
    envelope: Envelope,
}

#[derive(Debug)]
struct TrackedCall {
    caller: UserId,
    media: MediaType,
    participants: BTreeSet<UserId>,
    ringing: BTreeSet<UserId>,
    in_call: BTreeSet<UserId>,
    answered_by: BTreeSet<UserId>,
    began_unix_ms: u64,
    answered: Option<(Instant, u64)>,
    ring_deadline: Instant,
    record: Option<CallRecord>,
}

/// The server core: see the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    key: TokenKey,
    router: Router,
    next_conn: u64,
    next_seq: u64,
    conns: HashMap<ConnId, Conn>,
    endpoints: BTreeMap<Endpoint, ConnId>,
    kept: BTreeMap<UserId, VecDeque<KeptInvite>>,
    calls: BTreeMap<CallId, TrackedCall>,
    call_order: VecDeque<CallId>,
    records: VecDeque<CallRecord>,
    presence: BTreeMap<UserId, (bool, bool)>,
    outputs: VecDeque<HubOutput>,
    stats: HubStats,
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Hub {
    /// A hub that checks logins with `key`.
    pub fn new(config: HubConfig, key: TokenKey) -> Self {
        let router = Router::new(config.max_calls);
        Self {
            config,
            key,
            router,
            next_conn: 0,
            next_seq: 0,
            conns: HashMap::new(),
            endpoints: BTreeMap::new(),
            kept: BTreeMap::new(),
            calls: BTreeMap::new(),
            call_order: VecDeque::new(),
            records: VecDeque::new(),
            presence: BTreeMap::new(),
            outputs: VecDeque::new(),
            stats: HubStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// A new connection; its first frame must be a `login`.
    pub fn open(&mut self, now: Now) -> Result<ConnId, HubError> {
        if self.conns.len() >= self.config.max_connections {
            self.stats.refused_connections += 1;
            return Err(HubError::TooManyConnections {
                open: self.conns.len(),
            });
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.stats.opened += 1;
        self.conns.insert(
            conn,
            Conn {
                endpoint: None,
                opened: now.instant,
                last_heard: now.instant,
                last_seq: None,
                recent_ids: VecDeque::new(),
                bucket: f64::from(self.config.rate_burst),
                bucket_at: now.instant,
            },
        );
        Ok(conn)
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Users with at least one logged-in device.
    pub fn online_users(&self) -> usize {
        self.presence.values().filter(|(online, _)| *online).count()
    }

    /// Calls tracked now (ringing, active or recently ended).
    pub fn tracked_calls(&self) -> usize {
        self.calls.len()
    }

    /// What the hub did so far.
    pub fn stats(&self) -> HubStats {
        self.stats
    }

    /// The call records kept, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &CallRecord> {
        self.records.iter()
    }

    /// A call's state, if the hub still tracks it.
    pub fn call_info(&self, call_id: &CallId) -> Option<CallInfo> {
        let call = self.calls.get(call_id)?;
        let state = match (&call.record, &call.answered) {
            (Some(_), _) => "ended",
            (None, Some(_)) => "active",
            (None, None) => "ringing",
        };
        Some(CallInfo {
            call_id: call_id.clone(),
            state,
            caller: call.caller.clone(),
            media: call.media,
            participants: call.participants.iter().cloned().collect(),
            in_call: call.in_call.iter().cloned().collect(),
            ringing: call.ringing.iter().cloned().collect(),
            began_unix_ms: call.began_unix_ms,
            answered_unix_ms: call.answered.map(|(_, ms)| ms),
            record: call.record.clone(),
        })
    }

    /// The next thing the shell must do, if any.
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.outputs.pop_front()
    }

    /// When [`Hub::handle_timeout`] should run next (`None`: nothing is waiting).
    pub fn next_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().map(|c| match c.endpoint {
            None => c.opened + self.config.login_timeout,
            Some(_) => c.last_heard + self.config.idle_timeout,
        });
        let kept = self.kept.values().flatten().map(|k| k.expires);
        let calls = self
            .calls
            .values()
            .filter(|c| c.record.is_none() && c.answered.is_none())
            .map(|c| c.ring_deadline);
        conns.chain(kept).chain(calls).min()
    }

    /// A frame arrived on `conn` (the text of a WebSocket text frame; a binary frame's
    /// bytes are refused as malformed).
    pub fn handle_frame(&mut self, conn: ConnId, bytes: &[u8], now: Now) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        self.stats.received += 1;
        state.last_heard = now.instant;
        let elapsed = now.instant.saturating_duration_since(state.bucket_at);
        state.bucket_at = now.instant;
        state.bucket = (state.bucket
            + elapsed.as_secs_f64() * f64::from(self.config.rate_per_second))
        .min(f64::from(self.config.rate_burst));
        if state.bucket < 1.0 {
            self.stats.rate_limited += 1;
            self.refuse(
                conn,
                ErrorCode::RateLimited,
                None,
                Some("too many messages"),
            );
            return;
        }
        state.bucket -= 1.0;
        let envelope = match parse(bytes) {
            Ok(envelope) => envelope,
            Err(error) => {
                let detail = error.to_string();
                self.refuse(conn, error.code(), None, Some(&detail));
                return;
            }
        };
        if state.recent_ids.contains(&envelope.id) {
            self.stats.duplicates += 1;
            return;
        }
        if state.last_seq.is_some_and(|last| envelope.seq <= last) {
            let detail = format!("seq {} does not increase", envelope.seq);
            self.refuse(conn, ErrorCode::OutOfOrder, Some(&envelope), Some(&detail));
            return;
        }
        state.last_seq = Some(envelope.seq);
        if state.recent_ids.len() >= self.config.dedup_window.max(1) {
            state.recent_ids.pop_front();
        }
        state.recent_ids.push_back(envelope.id.clone());
        let Some(from) = state.endpoint.clone() else {
            if let Message::Login {
                user,
                device,
                token,
            } = &envelope.message
            {
                self.login(
                    conn,
                    Endpoint::new(user.clone(), device.clone()),
                    token,
                    now,
                );
            } else {
                self.refuse(
                    conn,
                    ErrorCode::Unauthenticated,
                    Some(&envelope),
                    Some("log in first"),
                );
            }
            return;
        };
        match &envelope.message {
            Message::Ping => {
                self.send(conn, Message::Pong);
                return;
            }
            Message::Login { .. } => {
                self.refuse(
                    conn,
                    ErrorCode::Forbidden,
                    Some(&envelope),
                    Some("already logged in"),
                );
                return;
            }
            Message::LoginResult { .. }
            | Message::Kicked { .. }
            | Message::Pong
            | Message::Presence { .. }
            | Message::Error { .. }
            | Message::EndByServer { .. } => {
                self.refuse(
                    conn,
                    ErrorCode::Forbidden,
                    Some(&envelope),
                    Some("only the server sends this"),
                );
                return;
            }
            _ => {}
        }
        let mut envelope = envelope;
        envelope.from = Some(from.clone());
        match self.router.route(&from, &envelope.message) {
            Ok(targets) => {
                self.stats.routed += 1;
                let text = envelope.to_json();
                for target in targets {
                    if let Some(&to) = self.endpoints.get(&target) {
                        self.stats.delivered += 1;
                        self.outputs.push_back(HubOutput::Send {
                            conn: to,
                            text: text.clone(),
                        });
                    }
                }
                self.track(&from, &envelope, now);
            }
            Err(code) => self.refuse(conn, code, Some(&envelope), None),
        }
    }

    /// The connection is gone (closed by the device, or the socket failed).
    pub fn close(&mut self, conn: ConnId, now: Now) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(endpoint) = state.endpoint {
            self.forget_endpoint(conn, &endpoint, now);
        }
    }

    /// Runs the hub's timers: connections that never logged in or fell silent, kept
    /// invitations past their ring timeout, calls nobody answered.
    pub fn handle_timeout(&mut self, now: Now) {
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.endpoint {
                None => now.instant >= c.opened + self.config.login_timeout,
                Some(_) => now.instant >= c.last_heard + self.config.idle_timeout,
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.stats.timed_out += 1;
            self.close(conn, now);
            self.outputs.push_back(HubOutput::Close { conn });
        }
        for kept in self.kept.values_mut() {
            let before = kept.len();
            kept.retain(|k| k.expires > now.instant);
            self.stats.kept_invites_dropped += (before - kept.len()) as u64;
        }
        self.kept.retain(|_, kept| !kept.is_empty());
        let unanswered: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.record.is_none() && c.answered.is_none() && now.instant >= c.ring_deadline
            })
            .map(|(id, _)| id.clone())
            .collect();
        for call_id in unanswered {
            self.end(&call_id, EndReason::NoAnswer, now);
        }
    }

    /// Ends a call from the server: every connected device of every participant receives
    /// `end_by_server`, the call is recorded as ended by the server (unless it had ended
    /// already) and forgotten by the router. Returns how many devices were told.
    pub fn end_call(
        &mut self,
        call_id: &CallId,
        reason: Option<String>,
        now: Now,
    ) -> Result<usize, HubError> {
        let Some(participants) = self.router.participants(call_id).cloned() else {
            return Err(HubError::UnknownCall {
                call_id: call_id.clone(),
            });
        };
        let reason = reason.map(|r| truncate(&r));
        let mut told = 0;
        for user in &participants {
            let targets: Vec<ConnId> = self
                .router
                .devices(user)
                .filter_map(|e| self.endpoints.get(&e).copied())
                .collect();
            for conn in targets {
                self.send(
                    conn,
                    Message::EndByServer {
                        call_id: call_id.clone(),
                        reason: reason.clone(),
                    },
                );
                told += 1;
            }
        }
        self.end(call_id, EndReason::EndedByServer, now);
        self.router.forget(call_id);
        tracing::info!(call = %call_id.as_str(), told, "call ended by the server");
        Ok(told)
    }

    fn login(&mut self, conn: ConnId, endpoint: Endpoint, token: &str, now: Now) {
        let claims = self.key.verify(token, now.unix_ms / 1000);
        let refusal = match &claims {
            Ok(claims) if claims.user == endpoint.user => None,
            Ok(_) => Some((ErrorCode::Unauthenticated, "token is for another user")),
            Err(TokenError::Expired { .. }) => Some((ErrorCode::ExpiredToken, "token expired")),
            Err(TokenError::BadSignature) => {
                Some((ErrorCode::Unauthenticated, "token signature does not match"))
            }
            Err(_) => Some((ErrorCode::Unauthenticated, "malformed token")),
        };
        if let Some((code, detail)) = refusal {
            self.stats.failed_logins += 1;
            tracing::info!(user = %endpoint.user.as_str(), device = %endpoint.device.as_str(), ?code, "login refused");
            self.refuse(conn, code, None, Some(detail));
            self.conns.remove(&conn);
            self.outputs.push_back(HubOutput::Close { conn });
            return;
        }
        if let Some(old) = self.endpoints.insert(endpoint.clone(), conn) {
            self.stats.kicked += 1;
            self.send(
                old,
                Message::Kicked {
                    detail: Some(String::from("logged in elsewhere")),
                },
            );
            self.conns.remove(&old);
            self.outputs.push_back(HubOutput::Close { conn: old });
            tracing::info!(user = %endpoint.user.as_str(), device = %endpoint.device.as_str(), "older connection kicked");
        }
        if let Some(state) = self.conns.get_mut(&conn) {
            state.endpoint = Some(endpoint.clone());
        }
        self.router.connect(&endpoint);
        self.stats.logins += 1;
        tracing::info!(user = %endpoint.user.as_str(), device = %endpoint.device.as_str(), "logged in");
        self.send(
            conn,
            Message::LoginResult {
                user: endpoint.user.clone(),
                device: endpoint.device.clone(),
                keepalive_ms: self.config.keepalive_ms,
            },
        );
        // Who else is online (and in a call) now; changes follow as they happen.
        let snapshot: Vec<(UserId, bool)> = self
            .presence
            .iter()
            .filter(|(user, (online, _))| *online && **user != endpoint.user)
            .map(|(user, (_, in_call))| (user.clone(), *in_call))
            .collect();
        let limit = self.config.max_presence_snapshot;
        self.stats.presence_snapshot_truncated += snapshot.len().saturating_sub(limit) as u64;
        for (user, in_call) in snapshot.into_iter().take(limit) {
            self.send(
                conn,
                Message::Presence {
                    user,
                    online: true,
                    in_call,
                },
            );
        }
        // Invitations kept for this user, with the ring time that is left.
        if let Some(kept) = self.kept.get(&endpoint.user) {
            let mut texts = Vec::new();
            for invite in kept.iter().filter(|k| k.expires > now.instant) {
                let left = invite.expires.saturating_duration_since(now.instant);
                let left_ms = u32::try_from(left.as_millis())
                    .unwrap_or(MAX_RING_TIMEOUT_MS)
                    .clamp(MIN_RING_TIMEOUT_MS, MAX_RING_TIMEOUT_MS);
                let mut envelope = invite.envelope.clone();
                match &mut envelope.message {
                    Message::Invite {
                        ring_timeout_ms, ..
                    }
                    | Message::InviteUsers {
                        ring_timeout_ms, ..
                    } => *ring_timeout_ms = left_ms,
                    _ => {}
                }
                texts.push(envelope.to_json());
            }
            for text in texts {
                self.stats.kept_invites_delivered += 1;
                self.outputs.push_back(HubOutput::Send { conn, text });
            }
        }
        self.presence_changed(&endpoint.user);
    }

    fn forget_endpoint(&mut self, conn: ConnId, endpoint: &Endpoint, now: Now) {
        if self.endpoints.get(endpoint) != Some(&conn) {
            return; // replaced by a newer login
        }
        self.endpoints.remove(endpoint);
        self.router.disconnect(endpoint);
        tracing::info!(user = %endpoint.user.as_str(), device = %endpoint.device.as_str(), "disconnected");
        if self.router.devices(&endpoint.user).next().is_none() {
            // The user is gone: calls that now hold fewer than two connected users end.
            let lost: Vec<CallId> = self
                .calls
                .iter_mut()
                .filter(|(_, c)| c.record.is_none() && c.in_call.contains(&endpoint.user))
                .filter_map(|(id, c)| {
                    c.in_call.remove(&endpoint.user);
                    (c.answered.is_some() && c.in_call.len() < 2).then(|| id.clone())
                })
                .collect();
            for call_id in lost {
                self.end(&call_id, EndReason::ConnectionLost, now);
            }
        }
        self.presence_changed(&endpoint.user);
    }

    fn track(&mut self, from: &Endpoint, envelope: &Envelope, now: Now) {
        let user = &from.user;
        let Some(call_id) = envelope.message.call_id().cloned() else {
            return;
        };
        match &envelope.message {
            Message::Invite {
                callees,
                ring_timeout_ms,
                media,
                ..
            } => {
                if !self.calls.contains_key(&call_id) {
                    self.make_room_for_a_call();
                    let mut participants: BTreeSet<UserId> = callees.iter().cloned().collect();
                    participants.insert(user.clone());
                    let ringing: BTreeSet<UserId> =
                        callees.iter().filter(|c| *c != user).cloned().collect();
                    self.calls.insert(
                        call_id.clone(),
                        TrackedCall {
                            caller: user.clone(),
                            media: *media,
                            participants,
                            ringing,
                            in_call: BTreeSet::from([user.clone()]),
                            answered_by: BTreeSet::from([user.clone()]),
                            began_unix_ms: now.unix_ms,
                            answered: None,
                            ring_deadline: now.instant
                                + Duration::from_millis(u64::from(*ring_timeout_ms))
                                + self.config.ring_grace,
                            record: None,
                        },
                    );
                    self.call_order.push_back(call_id.clone());
                    tracing::info!(call = %call_id.as_str(), caller = %user.as_str(), callees = callees.len(), "call placed");
                    self.presence_changed(user);
                }
                self.keep_invites(callees, &call_id, envelope, *ring_timeout_ms, now);
            }
            Message::InviteUsers {
                users,
                ring_timeout_ms,
                ..
            } => {
                if let Some(call) = self.calls.get_mut(&call_id) {
                    for invited in users {
                        if call.participants.insert(invited.clone()) {
                            call.ringing.insert(invited.clone());
                        }
                    }
                }
                self.keep_invites(users, &call_id, envelope, *ring_timeout_ms, now);
            }
            Message::Accept { .. } | Message::Join { .. } => {
                self.drop_kept(user, &call_id);
                let mut began = false;
                if let Some(call) = self.calls.get_mut(&call_id) {
                    call.participants.insert(user.clone());
                    call.ringing.remove(user);
                    call.in_call.insert(user.clone());
                    call.answered_by.insert(user.clone());
                    if call.answered.is_none() && call.in_call.len() >= 2 && call.record.is_none() {
                        call.answered = Some((now.instant, now.unix_ms));
                        began = true;
                    }
                }
                if began {
                    tracing::info!(call = %call_id.as_str(), "call answered");
                }
                self.presence_changed(user);
                if let Some(caller) = self.calls.get(&call_id).map(|c| c.caller.clone()) {
                    self.presence_changed(&caller);
                }
            }
            Message::Reject { .. } | Message::Busy { .. } | Message::NoAnswer { .. } => {
                self.drop_kept(user, &call_id);
                let reason = match envelope.message {
                    Message::Reject { .. } => EndReason::Rejected,
                    Message::Busy { .. } => EndReason::Busy,
                    _ => EndReason::NoAnswer,
                };
                let ends = self.calls.get_mut(&call_id).is_some_and(|call| {
                    if call.record.is_some() || call.answered.is_some() {
                        return false;
                    }
                    if *user == call.caller {
                        return reason == EndReason::NoAnswer;
                    }
                    call.ringing.remove(user);
                    call.ringing.is_empty()
                });
                if ends {
                    self.end(&call_id, reason, now);
                }
            }
            Message::Cancel { .. } => {
                let unanswered = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|c| c.answered.is_none());
                if unanswered {
                    self.end(&call_id, EndReason::Cancelled, now);
                }
            }
            Message::HangUp { reason, .. } => {
                // The sender is out. A group call goes on while two or more are in it
                // (devices that still see others in the call take this as a leave).
                let goes_on = self.calls.get_mut(&call_id).is_some_and(|call| {
                    call.in_call.remove(user);
                    call.answered.is_some() && call.in_call.len() >= 2
                });
                if !goes_on {
                    self.end(&call_id, reason.unwrap_or(EndReason::HangUp), now);
                }
                self.presence_changed(user);
            }
            Message::Leave { .. } => {
                let empty = self.calls.get_mut(&call_id).is_some_and(|call| {
                    call.in_call.remove(user);
                    call.in_call.is_empty()
                });
                if empty {
                    self.end(&call_id, EndReason::HangUp, now);
                }
                self.presence_changed(user);
            }
            _ => {}
        }
    }

    fn keep_invites(
        &mut self,
        users: &[UserId],
        call_id: &CallId,
        envelope: &Envelope,
        ring_timeout_ms: u32,
        now: Now,
    ) {
        let expires = now.instant + Duration::from_millis(u64::from(ring_timeout_ms));
        for user in users {
            let kept = self.kept.entry(user.clone()).or_default();
            if kept.iter().any(|k| &k.call_id == call_id) {
                continue;
            }
            if kept.len() >= self.config.max_kept_invites_per_user.max(1) {
                kept.pop_front();
                self.stats.kept_invites_dropped += 1;
            }
            kept.push_back(KeptInvite {
                call_id: call_id.clone(),
                expires,
                envelope: envelope.clone(),
            });
        }
    }

    fn drop_kept(&mut self, user: &UserId, call_id: &CallId) {
        if let Some(kept) = self.kept.get_mut(user) {
            kept.retain(|k| &k.call_id != call_id);
            if kept.is_empty() {
                self.kept.remove(user);
            }
        }
    }

    fn make_room_for_a_call(&mut self) {
        while self.calls.len() >= self.config.max_calls.max(1) {
            // The oldest ended call first; else the oldest call.
            let position = self
                .call_order
                .iter()
                .position(|id| self.calls.get(id).is_some_and(|c| c.record.is_some()))
                .unwrap_or(0);
            let Some(oldest) = self.call_order.remove(position) else {
                return;
            };
            self.calls.remove(&oldest);
            self.stats.calls_forgotten += 1;
        }
    }

    fn end(&mut self, call_id: &CallId, reason: EndReason, now: Now) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.record.is_some() {
            return;
        }
        let duration_ms = call
            .answered
            .map(|(at, _)| now.instant.saturating_duration_since(at).as_millis() as u64)
            .unwrap_or(0);
        let record = CallRecord {
            call_id: call_id.clone(),
            caller: call.caller.clone(),
            media: call.media,
            participants: call.participants.iter().cloned().collect(),
            answered_by: if call.answered.is_some() {
                call.answered_by.iter().cloned().collect()
            } else {
                Vec::new()
            },
            began_unix_ms: call.began_unix_ms,
            answered_unix_ms: call.answered.map(|(_, ms)| ms),
            ended_unix_ms: now.unix_ms,
            duration_ms,
            result: reason,
        };
        call.record = Some(record.clone());
        let was_in_call: Vec<UserId> = call.in_call.iter().cloned().collect();
        call.in_call.clear();
        call.ringing.clear();
        let participants: Vec<UserId> = call.participants.iter().cloned().collect();
        tracing::info!(call = %call_id.as_str(), ?reason, duration_ms, "call ended");
        if self.records.len() >= self.config.max_records.max(1) {
            self.records.pop_front();
            self.stats.records_dropped += 1;
        }
        self.records.push_back(record);
        for user in &participants {
            self.drop_kept(user, call_id);
        }
        for user in &was_in_call {
            self.presence_changed(user);
        }
    }

    /// Tells every logged-in device when a user's (online, in call) changed.
    fn presence_changed(&mut self, user: &UserId) {
        let online = self.router.devices(user).next().is_some();
        let in_call = online
            && self
                .calls
                .values()
                .any(|c| c.record.is_none() && c.in_call.contains(user));
        let before = self.presence.get(user).copied().unwrap_or((false, false));
        if before == (online, in_call) {
            return;
        }
        if online {
            self.presence.insert(user.clone(), (online, in_call));
        } else {
            self.presence.remove(user);
        }
        let targets: Vec<ConnId> = self
            .endpoints
            .iter()
            .filter(|(e, _)| &e.user != user)
            .map(|(_, c)| *c)
            .collect();
        for conn in targets {
            self.send(
                conn,
                Message::Presence {
                    user: user.clone(),
                    online,
                    in_call,
                },
            );
        }
    }

    fn server_envelope(&mut self, message: Message) -> Option<Envelope> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = MessageId::new(format!("s-{seq}")).ok()?;
        Some(Envelope::new(id, seq, message))
    }

    fn send(&mut self, conn: ConnId, message: Message) {
        if let Some(envelope) = self.server_envelope(message) {
            self.outputs.push_back(HubOutput::Send {
                conn,
                text: envelope.to_json(),
            });
        }
    }

    fn refuse(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        envelope: Option<&Envelope>,
        detail: Option<&str>,
    ) {
        self.stats.refused += 1;
        tracing::debug!(conn = conn.0, ?code, "message refused");
        self.send(
            conn,
            Message::Error {
                code,
                in_reply_to: envelope.map(|e| e.id.clone()),
                call_id: envelope.and_then(|e| e.message.call_id().cloned()),
                detail: detail.map(truncate),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_signal::protocol::{DeviceId, RoomId};

    const SECRET: &[u8] = b"unit test secret, 32 bytes long!";

    struct Bench {
        hub: Hub,
        start: Instant,
        at: Duration,
    }

    impl Bench {
        fn new(config: HubConfig) -> Self {
            Self {
                hub: Hub::new(config, TokenKey::new(SECRET.to_vec()).unwrap()),
                start: Instant::now(),
                at: Duration::ZERO,
            }
        }

        fn now(&self) -> Now {
            Now {
                instant: self.start + self.at,
                unix_ms: 1_700_000_000_000 + self.at.as_millis() as u64,
            }
        }

        fn token(&self, user: &str, expiry: u64) -> String {
            TokenKey::new(SECRET.to_vec())
                .unwrap()
                .mint(&UserId::new(user).unwrap(), expiry)
        }

        fn send(&mut self, conn: ConnId, id: &str, seq: u64, message: Message) {
            let text = Envelope::new(MessageId::new(id).unwrap(), seq, message).to_json();
            let now = self.now();
            self.hub.handle_frame(conn, text.as_bytes(), now);
        }

        fn login(&mut self, user: &str, device: &str) -> ConnId {
            let now = self.now();
            let conn = self.hub.open(now).unwrap();
            let token = self.token(user, 1_800_000_000);
            self.send(
                conn,
                "login",
                0,
                Message::Login {
                    user: UserId::new(user).unwrap(),
                    device: DeviceId::new(device).unwrap(),
                    token,
                },
            );
            conn
        }

        /// Every envelope sent to `conn` so far, drained; other outputs are dropped.
        fn drain(&mut self) -> Vec<(ConnId, Option<Message>)> {
            let mut out = Vec::new();
            while let Some(output) = self.hub.poll_output() {
                match output {
                    HubOutput::Send { conn, text } => {
                        out.push((conn, Some(parse(text.as_bytes()).unwrap().message)))
                    }
                    HubOutput::Close { conn } => out.push((conn, None)),
                }
            }
            out
        }
    }

    fn invite(call: &str, callees: &[&str]) -> Message {
        Message::Invite {
            call_id: CallId::new(call).unwrap(),
            room_id: RoomId::new(call).unwrap(),
            media: MediaType::Audio,
            callees: callees.iter().map(|c| UserId::new(*c).unwrap()).collect(),
            group_id: None,
            ring_timeout_ms: 5_000,
            user_data: None,
        }
    }

    fn call_id(id: &str) -> CallId {
        CallId::new(id).unwrap()
    }

    #[test]
    fn a_login_gets_a_presence_snapshot_of_the_others_bounded() {
        let mut bench = Bench::new(HubConfig {
            max_presence_snapshot: 2,
            ..HubConfig::default()
        });
        let alice = bench.login("alice", "laptop");
        bench.login("bob", "phone");
        bench.send(alice, "a1", 1, invite("c1", &["bob"]));
        bench.drain();
        let carol = bench.login("carol", "desk");
        let told: Vec<(String, bool)> = bench
            .drain()
            .into_iter()
            .filter(|(c, _)| *c == carol)
            .filter_map(|(_, m)| match m {
                Some(Message::Presence {
                    user,
                    online: true,
                    in_call,
                }) => Some((user.as_str().to_owned(), in_call)),
                _ => None,
            })
            .collect();
        // Alice placed a call (she is in it); Bob only rings.
        assert_eq!(
            told,
            [(String::from("alice"), true), (String::from("bob"), false)]
        );
        assert_eq!(bench.hub.stats().presence_snapshot_truncated, 0);
        bench.login("dave", "tablet");
        assert_eq!(bench.hub.stats().presence_snapshot_truncated, 1);
    }

    #[test]
    fn login_routing_and_records() {
        let mut bench = Bench::new(HubConfig::default());
        let alice = bench.login("alice", "laptop");
        let bob = bench.login("bob", "phone");
        let out = bench.drain();
        assert!(matches!(out[0], (c, Some(Message::LoginResult { .. })) if c == alice));
        assert!(
            out.iter()
                .any(|(c, m)| *c == alice
                    && matches!(m, Some(Message::Presence { online: true, .. })))
        );
        bench.send(alice, "a1", 1, invite("c1", &["bob"]));
        let invited: Vec<ConnId> = bench
            .drain()
            .into_iter()
            .filter(|(_, m)| matches!(m, Some(Message::Invite { .. })))
            .map(|(c, _)| c)
            .collect();
        assert_eq!(invited, [bob]);
        bench.at += Duration::from_secs(2);
        bench.send(
            bob,
            "b1",
            1,
            Message::Accept {
                call_id: call_id("c1"),
            },
        );
        assert_eq!(bench.hub.call_info(&call_id("c1")).unwrap().state, "active");
        bench.at += Duration::from_secs(10);
        bench.send(
            alice,
            "a2",
            2,
            Message::HangUp {
                call_id: call_id("c1"),
                reason: None,
            },
        );
        let record = bench.hub.records().next().unwrap().clone();
        assert_eq!(record.result, EndReason::HangUp);
        assert_eq!(record.duration_ms, 10_000);
        assert_eq!(record.answered_by.len(), 2);
    }

    #[test]
    fn refuses_bad_input_with_error_codes() {
        let mut bench = Bench::new(HubConfig::default());
        let now = bench.now();
        let conn = bench.hub.open(now).unwrap();
        bench.send(conn, "x", 0, Message::Ping);
        bench.hub.handle_frame(conn, b"{nope", now);
        let codes: Vec<ErrorCode> = bench
            .drain()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Some(Message::Error { code, .. }) => Some(code),
                _ => None,
            })
            .collect();
        assert_eq!(codes, [ErrorCode::Unauthenticated, ErrorCode::Malformed]);
        // Expired token: an error, then the connection closes.
        let token = bench.token("bob", 1_000);
        bench.send(
            conn,
            "l",
            5,
            Message::Login {
                user: UserId::new("bob").unwrap(),
                device: DeviceId::new("d").unwrap(),
                token,
            },
        );
        let out = bench.drain();
        assert!(matches!(
            &out[..],
            [
                (
                    _,
                    Some(Message::Error {
                        code: ErrorCode::ExpiredToken,
                        ..
                    })
                ),
                (_, None)
            ]
        ));
        let alice = bench.login("alice", "laptop");
        bench.drain();
        bench.send(alice, "a1", 1, Message::Ping);
        bench.send(alice, "a1", 1, Message::Ping); // duplicate: dropped
        bench.send(alice, "a2", 1, Message::Ping); // same seq: out of order
        bench.send(
            alice,
            "a3",
            3,
            Message::Accept {
                call_id: call_id("nope"),
            },
        );
        let out: Vec<Message> = bench.drain().into_iter().filter_map(|(_, m)| m).collect();
        assert!(matches!(out[0], Message::Pong));
        assert!(matches!(
            out[1],
            Message::Error {
                code: ErrorCode::OutOfOrder,
                ..
            }
        ));
        assert!(matches!(
            out[2],
            Message::Error {
                code: ErrorCode::UnknownCall,
                ..
            }
        ));
        assert_eq!(out.len(), 3);
        assert_eq!(bench.hub.stats().duplicates, 1);
    }

    #[test]
    fn second_login_kicks_the_first_and_rate_limit_holds() {
        let mut bench = Bench::new(HubConfig {
            rate_burst: 5,
            rate_per_second: 1,
            ..HubConfig::default()
        });
        let first = bench.login("alice", "laptop");
        let second = bench.login("alice", "laptop");
        let out = bench.drain();
        assert!(
            out.iter()
                .any(|(c, m)| *c == first && matches!(m, Some(Message::Kicked { .. })))
        );
        assert!(out.iter().any(|(c, m)| *c == first && m.is_none()));
        // The old connection's close does not log the new one out.
        let now = bench.now();
        bench.hub.close(first, now);
        assert_eq!(bench.hub.online_users(), 1);
        for seq in 1..=10 {
            bench.send(second, &format!("p{seq}"), seq, Message::Ping);
        }
        let limited = bench
            .drain()
            .into_iter()
            .filter(|(_, m)| {
                matches!(
                    m,
                    Some(Message::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    })
                )
            })
            .count();
        assert_eq!(limited, 6); // burst of 5, the login took one
        bench.at += Duration::from_secs(3);
        bench.send(second, "p11", 11, Message::Ping);
        assert!(matches!(bench.drain()[..], [(_, Some(Message::Pong))]));
    }

    #[test]
    fn kept_invites_reach_a_late_device_within_the_ring_timeout_only() {
        let mut bench = Bench::new(HubConfig::default());
        let alice = bench.login("alice", "laptop");
        bench.send(alice, "a1", 1, invite("c1", &["bob"]));
        bench.at += Duration::from_secs(2);
        let bob = bench.login("bob", "phone");
        let out = bench.drain();
        let delivered = out.iter().find_map(|(c, m)| match m {
            Some(Message::Invite {
                ring_timeout_ms, ..
            }) if *c == bob => Some(*ring_timeout_ms),
            _ => None,
        });
        assert_eq!(delivered, Some(3_000));
        bench.send(alice, "a2", 2, invite("c2", &["carol"]));
        bench.at += Duration::from_secs(6);
        let now = bench.now();
        bench.hub.handle_timeout(now);
        let carol = bench.login("carol", "phone");
        let out = bench.drain();
        assert!(
            !out.iter()
                .any(|(c, m)| *c == carol && matches!(m, Some(Message::Invite { .. })))
        );
        bench.at += Duration::from_secs(2);
        let now = bench.now();
        bench.hub.handle_timeout(now);
        // Neither call was answered: both recorded as no answer.
        let results: Vec<EndReason> = bench.hub.records().map(|r| r.result).collect();
        assert_eq!(results, [EndReason::NoAnswer, EndReason::NoAnswer]);
    }

    #[test]
    fn a_hang_up_in_a_group_call_ends_it_only_for_the_last_two() {
        let mut bench = Bench::new(HubConfig::default());
        let alice = bench.login("alice", "laptop");
        let bob = bench.login("bob", "phone");
        let carol = bench.login("carol", "desk");
        bench.send(alice, "a1", 1, invite("g1", &["bob", "carol"]));
        for (conn, id) in [(bob, "b1"), (carol, "c1")] {
            bench.send(
                conn,
                id,
                1,
                Message::Accept {
                    call_id: call_id("g1"),
                },
            );
        }
        let hang_up = Message::HangUp {
            call_id: call_id("g1"),
            reason: None,
        };
        // Alice hangs up (with a view that was behind): Bob and Carol go on.
        bench.send(alice, "a2", 2, hang_up.clone());
        let info = bench.hub.call_info(&call_id("g1")).unwrap();
        assert_eq!(info.state, "active");
        assert_eq!(info.in_call.len(), 2);
        assert!(bench.hub.records().next().is_none());
        // Bob hangs up: Carol would be alone, the call ends.
        bench.send(bob, "b2", 2, hang_up);
        let record = bench.hub.records().next().unwrap().clone();
        assert_eq!(record.result, EndReason::HangUp);
        assert_eq!(bench.hub.call_info(&call_id("g1")).unwrap().state, "ended");
    }

    #[test]
    fn server_end_reaches_every_device_and_records_are_bounded() {
        let mut bench = Bench::new(HubConfig {
            max_records: 2,
            ..HubConfig::default()
        });
        let alice = bench.login("alice", "laptop");
        let bob = bench.login("bob", "phone");
        let bob2 = bench.login("bob", "tablet");
        for (i, call) in ["c1", "c2", "c3"].iter().enumerate() {
            let seq = 1 + 2 * i as u64;
            bench.send(alice, &format!("i{i}"), seq, invite(call, &["bob"]));
            bench.send(
                alice,
                &format!("x{i}"),
                seq + 1,
                Message::Cancel {
                    call_id: call_id(call),
                },
            );
        }
        assert_eq!(bench.hub.records().count(), 2);
        assert_eq!(bench.hub.stats().records_dropped, 1);
        bench.send(alice, "i9", 9, invite("c9", &["bob"]));
        bench.drain();
        assert_eq!(bench.hub.end_call(&call_id("c9"), None, bench.now()), Ok(3));
        let told: BTreeSet<ConnId> = bench
            .drain()
            .into_iter()
            .filter(|(_, m)| matches!(m, Some(Message::EndByServer { .. })))
            .map(|(c, _)| c)
            .collect();
        assert_eq!(told, BTreeSet::from([alice, bob, bob2]));
        assert_eq!(
            bench
                .hub
                .call_info(&call_id("c9"))
                .unwrap()
                .record
                .unwrap()
                .result,
            EndReason::EndedByServer
        );
        assert!(matches!(
            bench.hub.end_call(&call_id("zz"), None, bench.now()),
            Err(HubError::UnknownCall { .. })
        ));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One step of a random session against the hub.
        #[derive(Debug, Clone)]
        enum Step {
            Open,
            Login {
                conn: usize,
                user: u8,
                device: u8,
                expired: bool,
            },
            Frame {
                conn: usize,
                bytes: Vec<u8>,
            },
            Call {
                conn: usize,
                call: u8,
                kind: u8,
                seq: u64,
            },
            Close {
                conn: usize,
            },
            Wait {
                ms: u32,
            },
            EndCall {
                call: u8,
            },
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                Just(Step::Open),
                (0usize..6, 0u8..3, 0u8..2, any::<bool>()).prop_map(
                    |(conn, user, device, expired)| {
                        Step::Login {
                            conn,
                            user,
                            device,
                            expired,
                        }
                    }
                ),
                (0usize..6, proptest::collection::vec(any::<u8>(), 0..64))
                    .prop_map(|(conn, bytes)| Step::Frame { conn, bytes }),
                (0usize..6, 0u8..3, 0u8..9, 0u64..40).prop_map(|(conn, call, kind, seq)| {
                    Step::Call {
                        conn,
                        call,
                        kind,
                        seq,
                    }
                }),
                (0usize..6).prop_map(|conn| Step::Close { conn }),
                (0u32..40_000).prop_map(|ms| Step::Wait { ms }),
                (0u8..3).prop_map(|call| Step::EndCall { call }),
            ]
        }

        fn message(kind: u8, call: &str, callee: &str) -> Message {
            let call_id = call_id(call);
            match kind {
                0 => invite(call, &[callee]),
                1 => Message::Accept { call_id },
                2 => Message::Reject { call_id },
                3 => Message::Cancel { call_id },
                4 => Message::HangUp {
                    call_id,
                    reason: None,
                },
                5 => Message::Leave { call_id },
                6 => Message::Join { call_id },
                7 => Message::Busy { call_id },
                _ => Message::NoAnswer { call_id },
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any sequence of connections, logins, frames, calls, closes and waits: no
            /// panic, every frame the hub sends parses, bounds hold, and closing every
            /// connection leaves no one online and every call ended once its ring time
            /// has passed.
            #[test]
            fn any_session_keeps_the_hub_sound(steps in proptest::collection::vec(step(), 1..80)) {
                let mut bench = Bench::new(HubConfig { max_records: 4, max_calls: 4, ..HubConfig::default() });
                let users = ["u0", "u1", "u2"];
                let mut conns: Vec<ConnId> = Vec::new();
                for step in steps {
                    let now = bench.now();
                    match step {
                        Step::Open => {
                            if let Ok(conn) = bench.hub.open(now) {
                                conns.push(conn);
                            }
                        }
                        Step::Login { conn, user, device, expired } => {
                            if let Some(&conn) = conns.get(conn) {
                                let user = users[usize::from(user)];
                                let expiry = if expired { 1_000 } else { 1_800_000_000 };
                                let token = bench.token(user, expiry);
                                bench.send(conn, "login", 0, Message::Login {
                                    user: UserId::new(user).unwrap(),
                                    device: DeviceId::new(format!("d{device}")).unwrap(),
                                    token,
                                });
                            }
                        }
                        Step::Frame { conn, bytes } => {
                            if let Some(&conn) = conns.get(conn) {
                                bench.hub.handle_frame(conn, &bytes, now);
                            }
                        }
                        Step::Call { conn, call, kind, seq } => {
                            if let Some(&conn) = conns.get(conn) {
                                let callee = users[usize::from(call) % users.len()];
                                let message = message(kind, &format!("c{call}"), callee);
                                bench.send(conn, &format!("m{seq}-{kind}"), seq + 1, message);
                            }
                        }
                        Step::Close { conn } => {
                            if let Some(&conn) = conns.get(conn) {
                                bench.hub.close(conn, now);
                            }
                        }
                        Step::Wait { ms } => {
                            bench.at += Duration::from_millis(u64::from(ms));
                            let now = bench.now();
                            bench.hub.handle_timeout(now);
                        }
                        Step::EndCall { call } => {
                            let _ = bench.hub.end_call(&call_id(&format!("c{call}")), None, now);
                        }
                    }
                    while let Some(output) = bench.hub.poll_output() {
                        if let HubOutput::Send { text, .. } = output {
                            prop_assert!(parse(text.as_bytes()).is_ok(), "{}", text);
                        }
                    }
                    prop_assert!(bench.hub.records().count() <= 4);
                    prop_assert!(bench.hub.tracked_calls() <= 4);
                }
                for conn in conns {
                    let now = bench.now();
                    bench.hub.close(conn, now);
                }
                bench.at += Duration::from_secs(200);
                let now = bench.now();
                bench.hub.handle_timeout(now);
                while bench.hub.poll_output().is_some() {}
                prop_assert_eq!(bench.hub.connections(), 0);
                prop_assert_eq!(bench.hub.online_users(), 0);
                prop_assert!(bench.hub.next_timeout().is_none());
                let open: Vec<CallInfo> = ["c0", "c1", "c2"]
                    .iter()
                    .filter_map(|c| bench.hub.call_info(&call_id(c)))
                    .filter(|c| c.state != "ended")
                    .collect();
                prop_assert!(open.is_empty(), "calls still open: {:?}", open);
            }
        }
    }
}
