//! Transports carry envelopes between a device and the server, behind one trait.
//!
//! - [`Transport`]: send an envelope, poll for received ones (non-blocking, so it fits a
//!   sans-IO loop).
//! - [`Router`]: the server's routing rule as a sans-IO table: who receives a message
//!   (every device of every participant of the call it names, the sender excepted).
//! - [`MemoryHub`] and [`MemoryTransport`]: an in-process server stand-in for tests and
//!   embedding. Every envelope goes through its JSON text form, the hub stamps the
//!   authenticated sender and routes with a [`Router`]; delivery is in order and
//!   deterministic.
//! - [`flush`] and [`receive_all`]: move a [`CallMachine`]'s outputs to a transport and
//!   the transport's envelopes into the machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::call::{CallEvent, CallMachine, Output};
use crate::error::TransportError;
use crate::protocol::{
    CallId, DeviceId, Endpoint, Envelope, ErrorCode, MAX_PARTICIPANTS, Message, MessageId, UserId,
    parse,
};

/// Carries envelopes between one device and the server.
pub trait Transport {
    /// Sends one envelope.
    fn send(&mut self, envelope: &Envelope) -> Result<(), TransportError>;

    /// The next received envelope, if one is waiting (never blocks). A frame that does not
    /// parse is an `Err(TransportError::Protocol(..))`; the transport stays usable.
    fn poll_receive(&mut self) -> Result<Option<Envelope>, TransportError>;
}

/// Sends every pending [`Output::Send`] of `machine` through `transport` and collects its
/// events into `events`. Returns the machine's next timer (`None`: idle).
pub fn flush<T: Transport + ?Sized>(
    machine: &mut CallMachine,
    transport: &mut T,
    events: &mut Vec<CallEvent>,
) -> Result<Option<Instant>, TransportError> {
    loop {
        match machine.poll_output() {
            Output::Send(envelope) => transport.send(&envelope)?,
            Output::Event(event) => events.push(event),
            Output::Timeout(at) => return Ok(Some(at)),
            Output::Idle => return Ok(None),
        }
    }
}

/// Feeds every envelope waiting in `transport` to `machine`; frames that do not parse are
/// skipped. Returns how many envelopes were handled.
pub fn receive_all<T: Transport + ?Sized>(
    machine: &mut CallMachine,
    transport: &mut T,
    now: Instant,
) -> Result<usize, TransportError> {
    let mut handled = 0;
    loop {
        match transport.poll_receive() {
            Ok(Some(envelope)) => {
                machine.handle_message(&envelope, now);
                handled += 1;
            }
            Ok(None) => return Ok(handled),
            Err(TransportError::Protocol(_)) => {}
            Err(other) => return Err(other),
        }
    }
}

/// The server's routing rule, sans-IO: which devices receive a message.
///
/// - `invite`: the call's participants become the sender and the callees; every device of
///   every callee receives it.
/// - `invite_users` and `join`: the invited users (or the joiner) become participants;
///   every device of every participant receives it, the sender's device excepted.
/// - Every other call message: every device of every participant, the sender's device
///   excepted. The call must exist ([`ErrorCode::UnknownCall`]) and the sender be a
///   participant ([`ErrorCode::NotInCall`]).
/// - `end_by_server` and `error` only the server sends ([`ErrorCode::Forbidden`]).
/// - Messages without a call (login, ping, presence) are not routed: the server answers
///   them itself.
///
/// Bounded: it remembers at most `max_calls` calls, forgetting the oldest first.
#[derive(Debug, Clone)]
pub struct Router {
    devices: BTreeMap<UserId, BTreeSet<DeviceId>>,
    calls: BTreeMap<CallId, BTreeSet<UserId>>,
    call_order: VecDeque<CallId>,
    max_calls: usize,
    forgotten_calls: u64,
}

impl Router {
    /// A router remembering at most `max_calls` calls (at least one).
    pub fn new(max_calls: usize) -> Self {
        Self {
            devices: BTreeMap::new(),
            calls: BTreeMap::new(),
            call_order: VecDeque::new(),
            max_calls: max_calls.max(1),
            forgotten_calls: 0,
        }
    }

    /// A device logged in: it receives messages for its user from now on.
    pub fn connect(&mut self, endpoint: &Endpoint) {
        self.devices
            .entry(endpoint.user.clone())
            .or_default()
            .insert(endpoint.device.clone());
    }

    /// A device went away.
    pub fn disconnect(&mut self, endpoint: &Endpoint) {
        if let Some(devices) = self.devices.get_mut(&endpoint.user) {
            devices.remove(&endpoint.device);
            if devices.is_empty() {
                self.devices.remove(&endpoint.user);
            }
        }
    }

    /// The devices of a user that are connected.
    pub fn devices<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = Endpoint> + 'a {
        self.devices
            .get(user)
            .into_iter()
            .flatten()
            .map(move |device| Endpoint::new(user.clone(), device.clone()))
    }

    /// The participants of a call (everyone invited or joined), if the call is known.
    pub fn participants(&self, call_id: &CallId) -> Option<&BTreeSet<UserId>> {
        self.calls.get(call_id)
    }

    /// Forgets a call (the server's record of it ended).
    pub fn forget(&mut self, call_id: &CallId) {
        self.calls.remove(call_id);
        self.call_order.retain(|c| c != call_id);
    }

    /// Calls forgotten to stay within the bound.
    pub fn forgotten_calls(&self) -> u64 {
        self.forgotten_calls
    }

    /// Who receives `message` from `from`, updating the call's participants; or the error
    /// code the server replies with.
    pub fn route(
        &mut self,
        from: &Endpoint,
        message: &Message,
    ) -> Result<Vec<Endpoint>, ErrorCode> {
        let Some(call_id) = message.call_id() else {
            return match message {
                Message::Error { .. } => Err(ErrorCode::Forbidden),
                _ => Ok(Vec::new()),
            };
        };
        match message {
            Message::Error { .. } | Message::EndByServer { .. } => Err(ErrorCode::Forbidden),
            Message::Invite { callees, .. } => {
                if let Some(participants) = self.calls.get(call_id)
                    && !participants.contains(&from.user)
                {
                    return Err(ErrorCode::NotInCall);
                }
                let participants = self.call_entry(call_id);
                participants.insert(from.user.clone());
                participants.extend(callees.iter().cloned());
                if participants.len() > MAX_PARTICIPANTS {
                    self.forget(call_id);
                    return Err(ErrorCode::CallFull);
                }
                Ok(callees
                    .iter()
                    .filter(|u| **u != from.user)
                    .flat_map(|u| self.devices(u).collect::<Vec<_>>())
                    .collect())
            }
            Message::InviteUsers { users, .. } => {
                let participants = self.calls.get_mut(call_id).ok_or(ErrorCode::UnknownCall)?;
                if !participants.contains(&from.user) {
                    return Err(ErrorCode::NotInCall);
                }
                let added = users.iter().filter(|u| !participants.contains(*u)).count();
                if participants.len() + added > MAX_PARTICIPANTS {
                    return Err(ErrorCode::CallFull);
                }
                participants.extend(users.iter().cloned());
                Ok(self.fan_out(call_id, from))
            }
            Message::Join { .. } => {
                let participants = self.calls.get_mut(call_id).ok_or(ErrorCode::UnknownCall)?;
                if !participants.contains(&from.user) && participants.len() >= MAX_PARTICIPANTS {
                    return Err(ErrorCode::CallFull);
                }
                participants.insert(from.user.clone());
                Ok(self.fan_out(call_id, from))
            }
            _ => {
                let participants = self.calls.get(call_id).ok_or(ErrorCode::UnknownCall)?;
                if !participants.contains(&from.user) {
                    return Err(ErrorCode::NotInCall);
                }
                Ok(self.fan_out(call_id, from))
            }
        }
    }

    fn call_entry(&mut self, call_id: &CallId) -> &mut BTreeSet<UserId> {
        if !self.calls.contains_key(call_id) {
            while self.calls.len() >= self.max_calls {
                let Some(oldest) = self.call_order.pop_front() else {
                    break;
                };
                self.calls.remove(&oldest);
                self.forgotten_calls += 1;
            }
            self.call_order.push_back(call_id.clone());
        }
        self.calls.entry(call_id.clone()).or_default()
    }

    fn fan_out(&self, call_id: &CallId, from: &Endpoint) -> Vec<Endpoint> {
        self.calls
            .get(call_id)
            .into_iter()
            .flatten()
            .flat_map(|user| self.devices(user).collect::<Vec<_>>())
            .filter(|endpoint| endpoint != from)
            .collect()
    }
}

/// What a [`MemoryHub`] did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Envelopes accepted from devices.
    pub received: u64,
    /// Envelopes delivered into device inboxes.
    pub delivered: u64,
    /// Envelopes refused (answered with an `error` envelope).
    pub refused: u64,
    /// Envelopes dropped because an inbox was full.
    pub dropped: u64,
}

#[derive(Debug)]
struct HubInner {
    router: Router,
    inboxes: BTreeMap<Endpoint, VecDeque<String>>,
    inbox_capacity: usize,
    next_seq: u64,
    stats: HubStats,
}

impl HubInner {
    fn deliver(&mut self, to: &Endpoint, text: String) {
        let Some(inbox) = self.inboxes.get_mut(to) else {
            return;
        };
        if inbox.len() >= self.inbox_capacity {
            self.stats.dropped += 1;
            return;
        }
        inbox.push_back(text);
        self.stats.delivered += 1;
    }

    fn reply_error(&mut self, to: &Endpoint, code: ErrorCode, envelope: Option<&Envelope>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let Ok(id) = MessageId::new(format!("hub-{seq}")) else {
            return;
        };
        let reply = Envelope::new(
            id,
            seq,
            Message::Error {
                code,
                in_reply_to: envelope.map(|e| e.id.clone()),
                call_id: envelope.and_then(|e| e.message.call_id().cloned()),
                detail: None,
            },
        );
        self.deliver(to, reply.to_json());
    }
}

/// An in-process stand-in for the server: devices connect, and each envelope one sends is
/// serialized, parsed again, stamped with the sender and routed like the server routes
/// ([`Router`]). Refused envelopes are answered with an `error` envelope. Cloning gives
/// another handle to the same hub; it is `Send` and `Sync`.
///
/// ```
/// use tincan_signal::protocol::{DeviceId, Endpoint, UserId};
/// use tincan_signal::transport::MemoryHub;
///
/// let hub = MemoryHub::new();
/// let alice = hub.connect(Endpoint::new(UserId::new("alice")?, DeviceId::new("phone")?));
/// assert_eq!(alice.endpoint().user.as_str(), "alice");
/// # Ok::<(), tincan_signal::ProtocolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryHub {
    inner: Arc<Mutex<HubInner>>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHub {
    /// A hub remembering up to 1024 calls, with inboxes of 1024 envelopes.
    pub fn new() -> Self {
        Self::with_limits(1024, 1024)
    }

    /// A hub with explicit bounds: calls remembered, envelopes per inbox.
    pub fn with_limits(max_calls: usize, inbox_capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(HubInner {
                router: Router::new(max_calls),
                inboxes: BTreeMap::new(),
                inbox_capacity: inbox_capacity.max(1),
                next_seq: 0,
                stats: HubStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Connects (logs in) a device. Connecting the same endpoint again replaces its inbox.
    pub fn connect(&self, endpoint: Endpoint) -> MemoryTransport {
        let mut inner = self.lock();
        inner.router.connect(&endpoint);
        inner.inboxes.insert(endpoint.clone(), VecDeque::new());
        drop(inner);
        MemoryTransport {
            hub: self.clone(),
            endpoint,
        }
    }

    /// Ends a call from the server side: every connected device of every participant
    /// receives `end_by_server`. Returns false if the call is unknown.
    pub fn end_call(&self, call_id: &CallId, reason: Option<String>) -> bool {
        let mut inner = self.lock();
        let Some(participants) = inner.router.participants(call_id).cloned() else {
            return false;
        };
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let Ok(id) = MessageId::new(format!("hub-{seq}")) else {
            return false;
        };
        let envelope = Envelope::new(
            id,
            seq,
            Message::EndByServer {
                call_id: call_id.clone(),
                reason,
            },
        );
        let text = envelope.to_json();
        let targets: Vec<Endpoint> = participants
            .iter()
            .flat_map(|u| inner.router.devices(u).collect::<Vec<_>>())
            .collect();
        for target in targets {
            inner.deliver(&target, text.clone());
        }
        inner.router.forget(call_id);
        true
    }

    /// What the hub did so far.
    pub fn stats(&self) -> HubStats {
        self.lock().stats
    }

    fn submit(&self, from: &Endpoint, text: &str) -> Result<(), TransportError> {
        let mut inner = self.lock();
        if !inner.inboxes.contains_key(from) {
            return Err(TransportError::Closed);
        }
        inner.stats.received += 1;
        let mut envelope = match parse(text.as_bytes()) {
            Ok(envelope) => envelope,
            Err(error) => {
                inner.stats.refused += 1;
                inner.reply_error(from, error.code(), None);
                return Ok(());
            }
        };
        // The hub, like the server, trusts the connection, not the envelope.
        envelope.from = Some(from.clone());
        match inner.router.route(from, &envelope.message) {
            Ok(targets) => {
                let text = envelope.to_json();
                for target in targets {
                    inner.deliver(&target, text.clone());
                }
            }
            Err(code) => {
                inner.stats.refused += 1;
                inner.reply_error(from, code, Some(&envelope));
            }
        }
        Ok(())
    }
}

/// One device's connection to a [`MemoryHub`]. Dropping it disconnects the device.
#[derive(Debug)]
pub struct MemoryTransport {
    hub: MemoryHub,
    endpoint: Endpoint,
}

impl MemoryTransport {
    /// The device this transport belongs to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends raw text as if it were a frame (for tests of bad input).
    pub fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        self.hub.submit(&self.endpoint, text)
    }
}

impl Transport for MemoryTransport {
    fn send(&mut self, envelope: &Envelope) -> Result<(), TransportError> {
        self.hub.submit(&self.endpoint, &envelope.to_json())
    }

    fn poll_receive(&mut self) -> Result<Option<Envelope>, TransportError> {
        let mut inner = self.hub.lock();
        let inbox = inner
            .inboxes
            .get_mut(&self.endpoint)
            .ok_or(TransportError::Closed)?;
        match inbox.pop_front() {
            Some(text) => Ok(Some(parse(text.as_bytes())?)),
            None => Ok(None),
        }
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        inner.router.disconnect(&self.endpoint);
        inner.inboxes.remove(&self.endpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MediaType, RoomId};

    fn endpoint(user: &str, device: &str) -> Endpoint {
        Endpoint::new(UserId::new(user).unwrap(), DeviceId::new(device).unwrap())
    }

    fn call_id() -> CallId {
        CallId::new("c").unwrap()
    }

    fn invite(callees: &[&str]) -> Message {
        Message::Invite {
            call_id: call_id(),
            room_id: RoomId::new("r").unwrap(),
            media: MediaType::Audio,
            callees: callees.iter().map(|c| UserId::new(*c).unwrap()).collect(),
            group_id: None,
            ring_timeout_ms: 30_000,
            user_data: None,
        }
    }

    #[test]
    fn routes_to_every_device_of_every_participant() {
        let mut router = Router::new(8);
        let (a, b1, b2, c) = (
            endpoint("a", "1"),
            endpoint("b", "1"),
            endpoint("b", "2"),
            endpoint("c", "1"),
        );
        for e in [&a, &b1, &b2, &c] {
            router.connect(e);
        }
        assert_eq!(
            router.route(&a, &invite(&["b"])).unwrap(),
            vec![b1.clone(), b2.clone()]
        );
        let accept = Message::Accept { call_id: call_id() };
        assert_eq!(
            router.route(&b1, &accept).unwrap(),
            vec![a.clone(), b2.clone()]
        );
        assert_eq!(router.route(&c, &accept), Err(ErrorCode::NotInCall));
        let join = Message::Join { call_id: call_id() };
        assert_eq!(router.route(&c, &join).unwrap(), vec![a, b1, b2]);
        let unknown = Message::Accept {
            call_id: CallId::new("x").unwrap(),
        };
        assert_eq!(router.route(&c, &unknown), Err(ErrorCode::UnknownCall));
        let forged = Message::EndByServer {
            call_id: call_id(),
            reason: None,
        };
        assert_eq!(router.route(&c, &forged), Err(ErrorCode::Forbidden));
    }

    #[test]
    fn forgets_the_oldest_call_beyond_its_bound() {
        let mut router = Router::new(2);
        let a = endpoint("a", "1");
        router.connect(&a);
        for id in ["c1", "c2", "c3"] {
            let message = Message::Invite {
                call_id: CallId::new(id).unwrap(),
                room_id: RoomId::new("r").unwrap(),
                media: MediaType::Audio,
                callees: vec![UserId::new("b").unwrap()],
                group_id: None,
                ring_timeout_ms: 30_000,
                user_data: None,
            };
            router.route(&a, &message).unwrap();
        }
        assert!(router.participants(&CallId::new("c1").unwrap()).is_none());
        assert!(router.participants(&CallId::new("c3").unwrap()).is_some());
        assert_eq!(router.forgotten_calls(), 1);
    }

    #[test]
    fn hub_stamps_the_sender_and_answers_bad_input_with_errors() {
        let hub = MemoryHub::new();
        let mut a = hub.connect(endpoint("a", "1"));
        let mut b = hub.connect(endpoint("b", "1"));
        let mut envelope = Envelope::new(MessageId::new("m").unwrap(), 0, invite(&["b"]));
        envelope.from = Some(endpoint("mallory", "x"));
        a.send(&envelope).unwrap();
        let got = b.poll_receive().unwrap().unwrap();
        assert_eq!(got.from, Some(endpoint("a", "1")));
        a.send_text("{not json").unwrap();
        match a.poll_receive().unwrap().unwrap().message {
            Message::Error { code, .. } => assert_eq!(code, ErrorCode::Malformed),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(hub.stats().refused, 1);
        drop(b);
        let accept = Envelope::new(
            MessageId::new("n").unwrap(),
            1,
            Message::Accept { call_id: call_id() },
        );
        // b is gone: the hub routes to nobody, and a's own inbox stays empty.
        a.send(&accept).unwrap();
        assert_eq!(a.poll_receive().unwrap(), None);
    }

    #[test]
    fn full_inboxes_drop_and_count() {
        let hub = MemoryHub::with_limits(4, 2);
        let mut a = hub.connect(endpoint("a", "1"));
        let _b = hub.connect(endpoint("b", "1"));
        a.send(&Envelope::new(
            MessageId::new("m").unwrap(),
            0,
            invite(&["b"]),
        ))
        .unwrap();
        for i in 0..3 {
            let ringing = Envelope::new(
                MessageId::new(format!("r{i}")).unwrap(),
                i + 1,
                Message::MediaState {
                    call_id: call_id(),
                    mic: true,
                    camera: false,
                },
            );
            a.send(&ringing).unwrap();
        }
        assert_eq!(hub.stats().dropped, 2);
    }
}
