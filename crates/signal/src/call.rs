//! The call state machine of one device: sans-IO, time passed in.
//!
//! A [`CallMachine`] holds at most one current call of its device and remembers the last
//! few ended ones. It is driven by three kinds of input:
//!
//! - envelopes from the server: [`CallMachine::handle_message`],
//! - the user's actions: [`call`](CallMachine::call), [`accept`](CallMachine::accept),
//!   [`reject`](CallMachine::reject), [`hang_up`](CallMachine::hang_up),
//!   [`cancel`](CallMachine::cancel), [`invite`](CallMachine::invite),
//!   [`join`](CallMachine::join), [`switch_media`](CallMachine::switch_media),
//!   [`answer_media_switch`](CallMachine::answer_media_switch),
//!   [`set_media_state`](CallMachine::set_media_state),
//!   [`send_media_params`](CallMachine::send_media_params),
//! - timers: [`CallMachine::handle_timeout`].
//!
//! After each input, drain [`CallMachine::poll_output`] until it answers
//! [`Output::Timeout`] (call `handle_timeout` at that instant) or [`Output::Idle`]
//! (nothing scheduled): it yields envelopes to send and [`CallEvent`]s for the
//! application.
//!
//! # Rules (`docs/PROTOCOL.md` has the full state machine)
//!
//! - Phases: `Idle` → `Calling` (caller) / `Ringing` (callee) / `Joining` (join by id) →
//!   `Active` → `Idle`. Every phase but `Idle` has a timer that ends it: the ring timeout
//!   (30 s by default) for `Calling`, `Ringing` and `Joining`; the keepalive deadline
//!   (15 s without a message from any other participant) for `Active`.
//! - While in a call a device sends `call_state` every keepalive interval (5 s), and a
//!   ringing device repeats `ringing`. A device that has ended a call answers such
//!   keepalives with the message that ended its call (at most once a second), so a lost
//!   hang-up, cancel or reject is repaired and both sides end with the same reason.
//! - Busy: an invite for another call while this device has one gets an automatic `busy`.
//! - Several devices per user: the first device to accept wins; its siblings end with
//!   [`EndReason::AnsweredElsewhere`] (or [`EndReason::RejectedElsewhere`]). When two
//!   devices of one user accept concurrently, the one with the smaller device id wins on
//!   every device. A device that accepted ignores a sibling's concurrent reject.
//! - Groups: the call goes on while two or more are in it; the last one ends with
//!   [`EndReason::HangUp`] and tells any still-ringing invitees.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::error::CallError;
use crate::protocol::{
    CallId, DeviceId, EndReason, Endpoint, Envelope, ErrorCode, GroupId, MAX_CALLEES,
    MAX_PARTICIPANTS, MAX_RING_TIMEOUT_MS, MAX_USER_DATA_BYTES, MIN_RING_TIMEOUT_MS, MediaState,
    MediaTransport, MediaType, Member, Message, MessageId, RoomId, UserId,
};

/// How a [`CallMachine`] behaves. [`CallMachineConfig::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallMachineConfig {
    /// This device.
    pub endpoint: Endpoint,
    /// A number that differs between runs of the same device (random, or a start time),
    /// so message and call ids stay unique across restarts.
    pub instance: u64,
    /// How long an invitation rings before it ends with no answer. Default 30 s; 1 to
    /// 120 s.
    pub ring_timeout: Duration,
    /// How often a device in a call sends `call_state` (and a ringing one `ringing`).
    /// Default 5 s.
    pub keepalive_interval: Duration,
    /// How long a device in a call waits without a message from another participant
    /// before it drops that participant (and ends with
    /// [`EndReason::ConnectionLost`] when none is left). Default 15 s; more than the
    /// interval.
    pub keepalive_deadline: Duration,
    /// The least time between two repeats of an ended call's final message. Default 1 s.
    pub repair_interval: Duration,
    /// How many received message ids are remembered for deduplication. Default 512.
    pub max_remembered_ids: usize,
    /// How many outputs may wait for [`CallMachine::poll_output`]; more are dropped and
    /// counted. Default 256.
    pub max_queued_outputs: usize,
    /// How many ended calls are remembered (to ignore their stale messages and repeat
    /// their final message). Default 32.
    pub max_ended_calls: usize,
}

impl CallMachineConfig {
    /// The defaults for a device.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tincan_signal::call::CallMachineConfig;
    /// use tincan_signal::protocol::{DeviceId, Endpoint, UserId};
    ///
    /// let me = Endpoint::new(UserId::new("alice")?, DeviceId::new("phone")?);
    /// let config = CallMachineConfig::new(me, 7);
    /// assert_eq!(config.ring_timeout, Duration::from_secs(30));
    /// assert_eq!(config.keepalive_interval, Duration::from_secs(5));
    /// assert_eq!(config.keepalive_deadline, Duration::from_secs(15));
    /// # Ok::<(), tincan_signal::ProtocolError>(())
    /// ```
    pub fn new(endpoint: Endpoint, instance: u64) -> Self {
        Self {
            endpoint,
            instance,
            ring_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(5),
            keepalive_deadline: Duration::from_secs(15),
            repair_interval: Duration::from_secs(1),
            max_remembered_ids: 512,
            max_queued_outputs: 256,
            max_ended_calls: 32,
        }
    }

    fn validate(&self) -> Result<(), CallError> {
        let ring_ms = self.ring_timeout.as_millis();
        if ring_ms < u128::from(MIN_RING_TIMEOUT_MS) || ring_ms > u128::from(MAX_RING_TIMEOUT_MS) {
            return Err(CallError::InvalidConfig {
                field: "ring_timeout",
                reason: "1 to 120 s",
            });
        }
        if self.keepalive_interval.is_zero() {
            return Err(CallError::InvalidConfig {
                field: "keepalive_interval",
                reason: "more than zero",
            });
        }
        if self.keepalive_deadline <= self.keepalive_interval {
            return Err(CallError::InvalidConfig {
                field: "keepalive_deadline",
                reason: "more than the keepalive interval",
            });
        }
        if self.max_remembered_ids == 0 || self.max_queued_outputs < 16 || self.max_ended_calls == 0
        {
            return Err(CallError::InvalidConfig {
                field: "max_*",
                reason: "ids and ended calls at least 1, outputs at least 16",
            });
        }
        Ok(())
    }
}

/// What a [`CallMachine`] asks of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this envelope to the server.
    Send(Envelope),
    /// Tell the application.
    Event(CallEvent),
    /// Nothing more now; call [`CallMachine::handle_timeout`] at this instant.
    Timeout(Instant),
    /// Nothing more now and no timer: the device has no call.
    Idle,
}

/// What happened, for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEvent {
    /// An invitation arrived; the device rings.
    CallReceived {
        /// The call.
        call_id: CallId,
        /// Who invites.
        caller: UserId,
        /// Audio or video.
        media: MediaType,
        /// The media room.
        room_id: RoomId,
        /// The application group, if any.
        group_id: Option<GroupId>,
        /// Everyone invited with this device's user.
        callees: Vec<UserId>,
        /// The caller's application data.
        user_data: Option<String>,
    },
    /// The call began for this device: it is in the call with at least one other.
    CallBegins {
        /// The call.
        call_id: CallId,
        /// Audio or video.
        media: MediaType,
    },
    /// The call ended for this device.
    CallEnds {
        /// The call.
        call_id: CallId,
        /// Why.
        reason: EndReason,
        /// Time since [`CallEvent::CallBegins`] (zero if it never began).
        duration: Duration,
    },
    /// A device of an invited user rings.
    UserRinging {
        /// The call.
        call_id: CallId,
        /// The invited user and device.
        endpoint: Endpoint,
    },
    /// A user is in the call (accepted or joined).
    UserJoined {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// A user left the call.
    UserLeft {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
        /// Why ([`EndReason::ConnectionLost`] when it fell silent).
        reason: EndReason,
    },
    /// An invited user rejected.
    UserRejected {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// An invited user did not answer in time.
    UserNoAnswer {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// An invited user was in another call.
    UserBusy {
        /// The call.
        call_id: CallId,
        /// The user.
        user: UserId,
    },
    /// Another participant invited a user into the call.
    UserInvited {
        /// The call.
        call_id: CallId,
        /// The invited user.
        user: UserId,
        /// Who invited.
        by: UserId,
    },
    /// The call's media type changed.
    MediaTypeChanged {
        /// The call.
        call_id: CallId,
        /// The new media type.
        media: MediaType,
        /// Who changed it (`None`: this device).
        by: Option<UserId>,
    },
    /// Another participant asks to switch to video; answer with
    /// [`CallMachine::answer_media_switch`].
    MediaSwitchRequested {
        /// The call.
        call_id: CallId,
        /// Who asks.
        by: UserId,
        /// The media type asked for.
        media: MediaType,
    },
    /// This device's request to switch to video was declined (or not answered within the
    /// ring timeout: `by` is `None`).
    MediaSwitchDeclined {
        /// The call.
        call_id: CallId,
        /// Who declined.
        by: Option<UserId>,
    },
    /// Another participant's microphone or camera changed.
    RemoteMediaState {
        /// The call.
        call_id: CallId,
        /// The participant.
        user: UserId,
        /// The new state.
        state: MediaState,
    },
    /// Another participant's media transport parameters.
    RemoteMediaParams {
        /// The call.
        call_id: CallId,
        /// The participant's device.
        from: Endpoint,
        /// Where and how it receives media.
        transport: Box<MediaTransport>,
    },
    /// An invitation arrived while this device was in another call; it was answered busy.
    MissedWhileBusy {
        /// The refused call.
        call_id: CallId,
        /// Who called.
        caller: UserId,
    },
    /// The server refused a message.
    ServerError {
        /// Why.
        code: ErrorCode,
        /// The call the refused message named, if any.
        call_id: Option<CallId>,
        /// The server's explanation.
        detail: Option<String>,
    },
}

/// Where the current call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallPhase {
    /// No call.
    Idle,
    /// This device invited others; nobody has answered yet.
    Calling,
    /// This device was invited and rings.
    Ringing,
    /// This device accepted and waits for a participant to confirm it is in the call
    /// (a `call_state` listing it); it repeats `accept` until then.
    Connecting,
    /// This device asked to join a call by id and waits for a participant's answer.
    Joining,
    /// This device is in the call.
    Active,
}

impl CallPhase {
    fn name(self) -> &'static str {
        match self {
            CallPhase::Idle => "idle",
            CallPhase::Calling => "calling",
            CallPhase::Ringing => "ringing",
            CallPhase::Connecting => "connecting",
            CallPhase::Joining => "joining",
            CallPhase::Active => "in a call",
        }
    }
}

/// What a [`CallMachine`] ignored or dropped, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Envelopes received (before deduplication).
    pub received: u64,
    /// Envelopes dropped as duplicates (same sender and id).
    pub duplicates: u64,
    /// Envelopes whose `seq` was below one already seen from that sender (processed all
    /// the same: the rules do not depend on order).
    pub out_of_order: u64,
    /// Call messages for an ended or unknown call, ignored.
    pub stale: u64,
    /// Envelopes ignored for their sender: participant messages without one, or server
    /// messages (`error`, `end_by_server`) with one.
    pub unattributed: u64,
    /// Messages that are not the machine's business (login, presence, ping), ignored.
    pub not_for_calls: u64,
    /// Invitations answered busy.
    pub busy_replies: u64,
    /// Final messages repeated for an ended call.
    pub repairs: u64,
    /// Outputs dropped because the queue was full.
    pub dropped_outputs: u64,
}

#[derive(Clone, Debug)]
enum MemberState {
    /// Invited, has not answered.
    Invited { deadline: Instant, rang: bool },
    /// In the call (with `device` when known).
    Joined {
        device: Option<DeviceId>,
        last_heard: Instant,
    },
}

#[derive(Clone, Debug)]
struct Call {
    id: CallId,
    room: RoomId,
    group: Option<GroupId>,
    media: MediaType,
    phase: CallPhase,
    /// Ringing or Joining: when this device gives up.
    ring_deadline: Option<Instant>,
    began_at: Option<Instant>,
    /// Everyone but this device's user.
    members: BTreeMap<UserId, MemberState>,
    next_keepalive: Instant,
    /// A switch to video this device asked for, and when the request lapses.
    switch_request: Option<Instant>,
    /// A switch to video another participant asked this device for.
    switch_incoming: Option<UserId>,
    ring_timeout_ms: u32,
}

impl Call {
    fn joined_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| matches!(m, MemberState::Joined { .. }))
            .count()
    }

    /// Whether `from` is the device this call knows its user to be in with (or the
    /// user's device is not known yet).
    fn is_joined_device(&self, from: &Endpoint) -> bool {
        match self.members.get(&from.user) {
            Some(MemberState::Joined { device, .. }) => {
                device.as_ref().is_none_or(|d| *d == from.device)
            }
            _ => false,
        }
    }

    fn is_invited(&self, user: &UserId) -> bool {
        matches!(self.members.get(user), Some(MemberState::Invited { .. }))
    }
}

#[derive(Clone, Debug)]
struct EndedCall {
    id: CallId,
    /// What this device repeats to a participant that still keeps the call alive.
    final_message: Option<Message>,
    last_repair: Option<Instant>,
}

/// The call state machine of one device. See the [module docs](self) for the rules.
#[derive(Debug)]
pub struct CallMachine {
    config: CallMachineConfig,
    call: Option<Call>,
    ended: VecDeque<EndedCall>,
    seen: HashSet<(Option<Endpoint>, MessageId)>,
    seen_order: VecDeque<(Option<Endpoint>, MessageId)>,
    last_seq: BTreeMap<Endpoint, u64>,
    outputs: VecDeque<Output>,
    next_seq: u64,
    calls_placed: u64,
    local_media: MediaState,
    stats: CallStats,
}

/// Senders whose last `seq` is remembered for the out-of-order count.
const MAX_TRACKED_SENDERS: usize = 64;

impl CallMachine {
    /// A machine for one device.
    pub fn new(config: CallMachineConfig) -> Result<Self, CallError> {
        config.validate()?;
        Ok(Self {
            config,
            call: None,
            ended: VecDeque::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            last_seq: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_seq: 0,
            calls_placed: 0,
            local_media: MediaState {
                mic: true,
                camera: true,
            },
            stats: CallStats::default(),
        })
    }

    /// This device.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// The current call's phase.
    pub fn phase(&self) -> CallPhase {
        self.call.as_ref().map_or(CallPhase::Idle, |c| c.phase)
    }

    /// The current call's id.
    pub fn call_id(&self) -> Option<&CallId> {
        self.call.as_ref().map(|c| &c.id)
    }

    /// The current call's media type.
    pub fn media(&self) -> Option<MediaType> {
        self.call.as_ref().map(|c| c.media)
    }

    /// The other users in the current call (not the ones still invited).
    pub fn participants(&self) -> Vec<UserId> {
        self.call.as_ref().map_or_else(Vec::new, |c| {
            c.members
                .iter()
                .filter(|(_, m)| matches!(m, MemberState::Joined { .. }))
                .map(|(u, _)| u.clone())
                .collect()
        })
    }

    /// What was ignored or dropped so far.
    pub fn stats(&self) -> CallStats {
        self.stats
    }

    // ----- user actions -------------------------------------------------------------

    /// Places a call: invites `request.callees` and rings them for the ring timeout.
    /// Returns the call's id.
    pub fn call(&mut self, request: CallRequest, now: Instant) -> Result<CallId, CallError> {
        if let Some(call) = &self.call {
            return Err(CallError::AlreadyInCall {
                call_id: call.id.clone(),
            });
        }
        let mut callees: Vec<UserId> = Vec::with_capacity(request.callees.len());
        for user in request.callees {
            if user == self.config.endpoint.user {
                return Err(CallError::CalleeIsSelf);
            }
            if !callees.contains(&user) {
                callees.push(user);
            }
        }
        if callees.is_empty() {
            return Err(CallError::NoCallees);
        }
        if callees.len() > MAX_CALLEES {
            return Err(CallError::TooManyParticipants {
                count: callees.len() + 1,
                max: MAX_PARTICIPANTS,
            });
        }
        if let Some(data) = &request.user_data
            && data.len() > MAX_USER_DATA_BYTES
        {
            return Err(CallError::Protocol(crate::ProtocolError::TooLong {
                field: "user_data",
                len: data.len(),
                max: MAX_USER_DATA_BYTES,
            }));
        }
        let call_id = match request.call_id {
            Some(id) => id,
            None => {
                self.calls_placed += 1;
                CallId::new(format!(
                    "{:x}-{}-c{}",
                    self.config.instance, self.next_seq, self.calls_placed
                ))?
            }
        };
        let room = match request.room_id {
            Some(room) => room,
            None => RoomId::new(call_id.as_str())?,
        };
        let ring_timeout_ms = self.ring_timeout_ms();
        let deadline = now + self.config.ring_timeout;
        let members = callees
            .iter()
            .map(|u| {
                (
                    u.clone(),
                    MemberState::Invited {
                        deadline,
                        rang: false,
                    },
                )
            })
            .collect();
        self.send(Message::Invite {
            call_id: call_id.clone(),
            room_id: room.clone(),
            media: request.media,
            callees,
            group_id: request.group_id.clone(),
            ring_timeout_ms,
            user_data: request.user_data,
        });
        self.call = Some(Call {
            id: call_id.clone(),
            room,
            group: request.group_id,
            media: request.media,
            phase: CallPhase::Calling,
            ring_deadline: None,
            began_at: None,
            members,
            next_keepalive: now + self.config.keepalive_interval,
            switch_request: None,
            switch_incoming: None,
            ring_timeout_ms,
        });
        Ok(call_id)
    }

    /// Accepts the call this device rings for. The call begins
    /// ([`CallEvent::CallBegins`]) when a participant confirms it (normally one round trip
    /// later); without a confirmation within the keepalive deadline it ends with
    /// [`EndReason::ConnectionLost`].
    pub fn accept(&mut self, now: Instant) -> Result<(), CallError> {
        let interval = self.config.keepalive_interval;
        let deadline = self.config.keepalive_deadline;
        let call = self.call_in(CallPhase::Ringing, "accept")?;
        call.phase = CallPhase::Connecting;
        call.ring_deadline = Some(now + deadline);
        call.next_keepalive = now + interval;
        let call_id = call.id.clone();
        self.send(Message::Accept { call_id });
        Ok(())
    }

    /// Rejects the call this device rings for (for every device of this user).
    pub fn reject(&mut self, now: Instant) -> Result<(), CallError> {
        self.end_in(
            CallPhase::Ringing,
            "reject",
            EndReason::Rejected,
            |call_id| Message::Reject { call_id },
            now,
        )
    }

    /// Cancels the call this device placed, before anyone answered.
    pub fn cancel(&mut self, now: Instant) -> Result<(), CallError> {
        self.end_in(
            CallPhase::Calling,
            "cancel",
            EndReason::Cancelled,
            |call_id| Message::Cancel { call_id },
            now,
        )
    }

    /// Ends the call if it is in `phase` (else refuses `action`) with the message
    /// `message` makes from its id, sent at once and repeated.
    fn end_in(
        &mut self,
        phase: CallPhase,
        action: &'static str,
        reason: EndReason,
        message: impl FnOnce(CallId) -> Message,
        now: Instant,
    ) -> Result<(), CallError> {
        let call_id = self.call_in(phase, action)?.id.clone();
        self.end_with_message(reason, message(call_id), now);
        Ok(())
    }

    /// Ends this device's part in the current call, whatever its phase: cancels a call
    /// still calling, rejects one ringing, and in a call sends `hang_up` (ending it for
    /// the others) when at most one other is in it, or `leave` (the call goes on) when
    /// two or more others are.
    pub fn hang_up(&mut self, now: Instant) -> Result<(), CallError> {
        let call = self.call.as_ref().ok_or(CallError::NoCall)?;
        let call_id = call.id.clone();
        match call.phase {
            CallPhase::Idle => Err(CallError::NoCall),
            CallPhase::Calling => self.cancel(now),
            CallPhase::Ringing => self.reject(now),
            CallPhase::Joining | CallPhase::Connecting | CallPhase::Active => {
                let others_stay = call.phase == CallPhase::Joining
                    || (matches!(call.phase, CallPhase::Active | CallPhase::Connecting)
                        && call.joined_count() >= 2);
                if others_stay {
                    self.end_leaving(EndReason::HangUp, call_id, now);
                } else {
                    let message = Message::HangUp {
                        call_id,
                        reason: None,
                    };
                    self.end_with_message(EndReason::HangUp, message, now);
                }
                Ok(())
            }
        }
    }

    /// Invites more users into the current call (calling or in it). Users already in it
    /// or invited are skipped.
    pub fn invite(&mut self, users: Vec<UserId>, now: Instant) -> Result<(), CallError> {
        let me = self.config.endpoint.user.clone();
        let ring = self.config.ring_timeout;
        let call = self.call.as_mut().ok_or(CallError::NoCall)?;
        if !matches!(call.phase, CallPhase::Calling | CallPhase::Active) {
            return Err(CallError::WrongState {
                action: "invite",
                state: call.phase.name(),
            });
        }
        let mut new_users: Vec<UserId> = Vec::new();
        for user in users {
            if user == me {
                return Err(CallError::CalleeIsSelf);
            }
            if !call.members.contains_key(&user) && !new_users.contains(&user) {
                new_users.push(user);
            }
        }
        if new_users.is_empty() {
            return Err(CallError::NoCallees);
        }
        let count = call.members.len() + 1 + new_users.len();
        if count > MAX_PARTICIPANTS {
            return Err(CallError::TooManyParticipants {
                count,
                max: MAX_PARTICIPANTS,
            });
        }
        let mut members_now: Vec<UserId> = vec![me];
        members_now.extend(
            call.members
                .iter()
                .filter(|(_, m)| matches!(m, MemberState::Joined { .. }))
                .map(|(u, _)| u.clone()),
        );
        for user in &new_users {
            call.members.insert(
                user.clone(),
                MemberState::Invited {
                    deadline: now + ring,
                    rang: false,
                },
            );
        }
        let message = Message::InviteUsers {
            call_id: call.id.clone(),
            room_id: call.room.clone(),
            media: call.media,
            users: new_users,
            members: members_now,
            group_id: call.group.clone(),
            ring_timeout_ms: call.ring_timeout_ms,
        };
        self.send(message);
        Ok(())
    }

    /// Asks to join an ongoing call by its id. The call begins when a participant
    /// answers; without an answer within the ring timeout it ends with
    /// [`EndReason::NoAnswer`].
    pub fn join(&mut self, call_id: CallId, now: Instant) -> Result<(), CallError> {
        if let Some(call) = &self.call {
            return Err(CallError::AlreadyInCall {
                call_id: call.id.clone(),
            });
        }
        // Joining again a call this device left is allowed: forget its end.
        self.ended.retain(|e| e.id != call_id);
        let room = RoomId::new(call_id.as_str())?;
        self.call = Some(Call {
            id: call_id.clone(),
            room,
            group: None,
            media: MediaType::Audio,
            phase: CallPhase::Joining,
            ring_deadline: Some(now + self.config.ring_timeout),
            began_at: None,
            members: BTreeMap::new(),
            next_keepalive: now + self.config.keepalive_interval,
            switch_request: None,
            switch_incoming: None,
            ring_timeout_ms: self.ring_timeout_ms(),
        });
        self.send(Message::Join { call_id });
        Ok(())
    }

    /// Switches the current call's media type: to audio at once; to video, a request the
    /// others answer ([`CallEvent::MediaTypeChanged`] when accepted,
    /// [`CallEvent::MediaSwitchDeclined`] otherwise). Asking for the current type does
    /// nothing.
    pub fn switch_media(&mut self, media: MediaType, now: Instant) -> Result<(), CallError> {
        let ring = self.config.ring_timeout;
        let call = self.call_in(CallPhase::Active, "switch media")?;
        if call.media == media {
            return Ok(());
        }
        let call_id = call.id.clone();
        match media {
            MediaType::Audio => {
                call.media = MediaType::Audio;
                call.switch_request = None;
                call.switch_incoming = None;
                self.event(CallEvent::MediaTypeChanged {
                    call_id: call_id.clone(),
                    media,
                    by: None,
                });
            }
            MediaType::Video => call.switch_request = Some(now + ring),
        }
        self.send(Message::SwitchMedia { call_id, media });
        Ok(())
    }

    /// Answers another participant's request to switch to video.
    pub fn answer_media_switch(&mut self, accept: bool, _now: Instant) -> Result<(), CallError> {
        let call = self.call_in(CallPhase::Active, "answer a media switch")?;
        let by = call
            .switch_incoming
            .take()
            .ok_or(CallError::NoSwitchRequest)?;
        let call_id = call.id.clone();
        if accept {
            call.media = MediaType::Video;
            call.switch_request = None;
            self.event(CallEvent::MediaTypeChanged {
                call_id: call_id.clone(),
                media: MediaType::Video,
                by: Some(by),
            });
        }
        self.send(Message::SwitchMediaReply {
            call_id,
            media: MediaType::Video,
            accepted: accept,
        });
        Ok(())
    }

    /// Tells the others this device's microphone and camera state.
    pub fn set_media_state(&mut self, state: MediaState, _now: Instant) -> Result<(), CallError> {
        self.local_media = state;
        let call = self.call_in(CallPhase::Active, "set media state")?;
        let call_id = call.id.clone();
        self.send(Message::MediaState {
            call_id,
            mic: state.mic,
            camera: state.camera,
        });
        Ok(())
    }

    /// Tells the others where and how this device receives media (any phase but idle).
    pub fn send_media_params(
        &mut self,
        transport: MediaTransport,
        _now: Instant,
    ) -> Result<(), CallError> {
        transport.validate()?;
        let call = self.call.as_ref().ok_or(CallError::NoCall)?;
        let call_id = call.id.clone();
        self.send(Message::MediaParams { call_id, transport });
        Ok(())
    }

    // ----- input --------------------------------------------------------------------

    /// Handles one envelope from the server. Never fails: what does not fit is ignored
    /// and counted in [`CallMachine::stats`].
    pub fn handle_message(&mut self, envelope: &Envelope, now: Instant) {
        self.stats.received += 1;
        if envelope.from.as_ref() == Some(&self.config.endpoint) {
            // The server never echoes; a relay that does is not our business.
            self.stats.stale += 1;
            return;
        }
        if !self.remember(envelope) {
            self.stats.duplicates += 1;
            return;
        }
        let Some(from) = envelope.from.clone() else {
            self.handle_server_message(&envelope.message, now);
            return;
        };
        let Some(call_id) = envelope.message.call_id() else {
            self.stats.not_for_calls += 1;
            return;
        };
        if let Message::Error { .. } | Message::EndByServer { .. } = envelope.message {
            // Only the server sends these, and its own messages carry no sender.
            self.stats.unattributed += 1;
            return;
        }
        if self.call.as_ref().is_some_and(|c| &c.id == call_id) {
            self.handle_call_message(&from, &envelope.message, now);
            return;
        }
        if let Some(ended) = self.ended.iter().position(|e| &e.id == call_id) {
            self.stats.stale += 1;
            let keeps_alive = matches!(
                envelope.message,
                Message::CallState { .. }
                    | Message::Ringing { .. }
                    | Message::Join { .. }
                    | Message::Accept { .. }
            );
            if keeps_alive && from.user != self.config.endpoint.user {
                self.repair(ended, now);
            }
            return;
        }
        match &envelope.message {
            Message::Invite {
                call_id,
                room_id,
                media,
                callees,
                group_id,
                ring_timeout_ms,
                user_data,
            } if callees.contains(&self.config.endpoint.user)
                && from.user != self.config.endpoint.user =>
            {
                let invite = Invitation {
                    call_id: call_id.clone(),
                    room: room_id.clone(),
                    media: *media,
                    group: group_id.clone(),
                    ring_timeout_ms: *ring_timeout_ms,
                    joined: Vec::new(),
                    invited: callees.clone(),
                    user_data: user_data.clone(),
                };
                self.on_invitation(&from, invite, now);
            }
            Message::InviteUsers {
                call_id,
                room_id,
                media,
                users,
                members,
                group_id,
                ring_timeout_ms,
            } if users.contains(&self.config.endpoint.user)
                && from.user != self.config.endpoint.user =>
            {
                let invite = Invitation {
                    call_id: call_id.clone(),
                    room: room_id.clone(),
                    media: *media,
                    group: group_id.clone(),
                    ring_timeout_ms: *ring_timeout_ms,
                    joined: members.clone(),
                    invited: users.clone(),
                    user_data: None,
                };
                self.on_invitation(&from, invite, now);
            }
            _ => self.stats.stale += 1,
        }
    }

    /// Fires the timers due at `now`: ring timeouts, keepalives, keepalive deadlines,
    /// lapsed media switch requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let interval = self.config.keepalive_interval;
        let deadline = self.config.keepalive_deadline;
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let call_id = call.id.clone();
        match call.phase {
            CallPhase::Ringing if call.ring_deadline.is_some_and(|d| now >= d) => {
                let message = Message::NoAnswer { call_id };
                self.end_with_message(EndReason::NoAnswer, message, now);
                return;
            }
            CallPhase::Connecting if call.ring_deadline.is_some_and(|d| now >= d) => {
                let message = Message::HangUp {
                    call_id,
                    reason: Some(EndReason::ConnectionLost),
                };
                self.end_with_message(EndReason::ConnectionLost, message, now);
                return;
            }
            CallPhase::Joining if call.ring_deadline.is_some_and(|d| now >= d) => {
                self.end_leaving(EndReason::NoAnswer, call_id, now);
                return;
            }
            _ => {}
        }
        if let Some(at) = call.switch_request
            && now >= at
        {
            call.switch_request = None;
            self.event(CallEvent::MediaSwitchDeclined {
                call_id: call_id.clone(),
                by: None,
            });
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        // Invitees whose ring timed out, and participants that fell silent.
        let phase = call.phase;
        let mut unanswered = Vec::new();
        let mut silent = Vec::new();
        for (user, member) in &call.members {
            match member {
                MemberState::Invited { deadline, .. } if now >= *deadline => {
                    unanswered.push(user.clone());
                }
                MemberState::Joined { last_heard, .. }
                    if phase == CallPhase::Active && now >= *last_heard + deadline =>
                {
                    silent.push(user.clone());
                }
                _ => {}
            }
        }
        for user in &unanswered {
            call.members.remove(user);
        }
        for user in &silent {
            call.members.remove(user);
        }
        let joined_left = call.joined_count();
        let anyone_left = !call.members.is_empty();
        let keepalive_due = now >= call.next_keepalive;
        if keepalive_due {
            call.next_keepalive = now + interval;
        }
        for user in unanswered {
            self.event(CallEvent::UserNoAnswer {
                call_id: call_id.clone(),
                user,
            });
        }
        for user in silent {
            self.event(CallEvent::UserLeft {
                call_id: call_id.clone(),
                user,
                reason: EndReason::ConnectionLost,
            });
        }
        match phase {
            CallPhase::Calling if !anyone_left => {
                let message = Message::NoAnswer { call_id };
                self.end_with_message(EndReason::NoAnswer, message, now);
                return;
            }
            CallPhase::Active if joined_left == 0 => {
                let message = Message::HangUp {
                    call_id,
                    reason: Some(EndReason::ConnectionLost),
                };
                self.end_with_message(EndReason::ConnectionLost, message, now);
                return;
            }
            _ => {}
        }
        if keepalive_due {
            self.send_keepalive();
        }
    }

    /// The next output: an envelope to send, an event, or (when there is none) the next
    /// timer or [`Output::Idle`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        match self.next_deadline() {
            Some(at) => Output::Timeout(at),
            None => Output::Idle,
        }
    }

    // ----- internals ----------------------------------------------------------------

    fn ring_timeout_ms(&self) -> u32 {
        let ms = self.config.ring_timeout.as_millis();
        u32::try_from(ms)
            .unwrap_or(MAX_RING_TIMEOUT_MS)
            .clamp(MIN_RING_TIMEOUT_MS, MAX_RING_TIMEOUT_MS)
    }

    fn call_in(&mut self, phase: CallPhase, action: &'static str) -> Result<&mut Call, CallError> {
        let call = self.call.as_mut().ok_or(CallError::NoCall)?;
        if call.phase != phase {
            return Err(CallError::WrongState {
                action,
                state: call.phase.name(),
            });
        }
        Ok(call)
    }

    fn next_deadline(&self) -> Option<Instant> {
        let call = self.call.as_ref()?;
        let mut next = call.next_keepalive;
        let mut consider = |at: Instant| next = next.min(at);
        if let Some(at) = call.ring_deadline {
            consider(at);
        }
        if let Some(at) = call.switch_request {
            consider(at);
        }
        for member in call.members.values() {
            match member {
                MemberState::Invited { deadline, .. } => consider(*deadline),
                MemberState::Joined { last_heard, .. } if call.phase == CallPhase::Active => {
                    consider(*last_heard + self.config.keepalive_deadline);
                }
                MemberState::Joined { .. } => {}
            }
        }
        Some(next)
    }

    /// Records the envelope's id; false if it was seen before.
    fn remember(&mut self, envelope: &Envelope) -> bool {
        let key = (envelope.from.clone(), envelope.id.clone());
        if self.seen.contains(&key) {
            return false;
        }
        if let Some(from) = &envelope.from {
            match self.last_seq.get_mut(from) {
                Some(last) if envelope.seq < *last => self.stats.out_of_order += 1,
                Some(last) => *last = envelope.seq,
                None => {
                    if self.last_seq.len() >= MAX_TRACKED_SENDERS {
                        self.last_seq.pop_first();
                    }
                    self.last_seq.insert(from.clone(), envelope.seq);
                }
            }
        }
        if self.seen_order.len() >= self.config.max_remembered_ids
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.clone());
        self.seen_order.push_back(key);
        true
    }

    fn push(&mut self, output: Output) {
        if self.outputs.len() >= self.config.max_queued_outputs {
            self.stats.dropped_outputs += 1;
            return;
        }
        self.outputs.push_back(output);
    }

    fn event(&mut self, event: CallEvent) {
        self.push(Output::Event(event));
    }

    fn send(&mut self, message: Message) {
        let seq = self.next_seq;
        self.next_seq += 1;
        // instance (16 hex digits at most) + seq (20 digits at most): within the id limit.
        let id = MessageId::new(format!("{:x}-{seq}", self.config.instance));
        let Ok(id) = id else {
            return;
        };
        let envelope = Envelope {
            id,
            seq,
            from: Some(self.config.endpoint.clone()),
            message,
        };
        self.push(Output::Send(envelope));
    }

    fn send_keepalive(&mut self) {
        let me = self.config.endpoint.clone();
        let Some(call) = self.call.as_ref() else {
            return;
        };
        let message = match call.phase {
            CallPhase::Idle => return,
            CallPhase::Ringing => Message::Ringing {
                call_id: call.id.clone(),
            },
            CallPhase::Joining => Message::Join {
                call_id: call.id.clone(),
            },
            CallPhase::Connecting => Message::Accept {
                call_id: call.id.clone(),
            },
            CallPhase::Calling | CallPhase::Active => {
                let mut members = vec![Member {
                    user: me.user,
                    device: Some(me.device),
                }];
                for (user, member) in &call.members {
                    if let MemberState::Joined { device, .. } = member {
                        members.push(Member {
                            user: user.clone(),
                            device: device.clone(),
                        });
                    }
                }
                members.truncate(MAX_PARTICIPANTS);
                Message::CallState {
                    call_id: call.id.clone(),
                    room_id: call.room.clone(),
                    media: call.media,
                    members,
                }
            }
        };
        self.send(message);
    }

    /// Ends the current call: `send_now` goes out at once, `final_message` is what this
    /// device repeats to participants that still keep the call alive (when `None`, a
    /// `hang_up` with the reason).
    fn end(
        &mut self,
        reason: EndReason,
        send_now: Option<Message>,
        final_message: Option<Message>,
        now: Instant,
    ) {
        let Some(call) = self.call.take() else {
            return;
        };
        if let Some(message) = send_now {
            self.send(message);
        }
        let final_message = final_message.or(match reason {
            // A device that lost to a sibling or left a group has nothing to repeat:
            // the call goes on without it.
            EndReason::AnsweredElsewhere | EndReason::RejectedElsewhere => None,
            _ => Some(Message::HangUp {
                call_id: call.id.clone(),
                reason: Some(reason),
            }),
        });
        let final_message = match final_message {
            Some(Message::Leave { .. }) => None,
            other => other,
        };
        self.remember_ended(call.id.clone(), final_message);
        let duration = call
            .began_at
            .map_or(Duration::ZERO, |began| now.saturating_duration_since(began));
        self.event(CallEvent::CallEnds {
            call_id: call.id,
            reason,
            duration,
        });
    }

    /// Ends the current call with `message`, sent at once and repeated to participants
    /// that still keep the call alive.
    fn end_with_message(&mut self, reason: EndReason, message: Message, now: Instant) {
        self.end(reason, Some(message.clone()), Some(message), now);
    }

    /// Ends this device's part with a `leave` (the call goes on for the others, so
    /// there is nothing to repeat).
    fn end_leaving(&mut self, reason: EndReason, call_id: CallId, now: Instant) {
        self.end(reason, Some(Message::Leave { call_id }), None, now);
    }

    fn remember_ended(&mut self, id: CallId, final_message: Option<Message>) {
        self.ended.retain(|e| e.id != id);
        if self.ended.len() >= self.config.max_ended_calls {
            self.ended.pop_front();
        }
        self.ended.push_back(EndedCall {
            id,
            final_message,
            last_repair: None,
        });
    }

    fn repair(&mut self, index: usize, now: Instant) {
        let interval = self.config.repair_interval;
        let Some(ended) = self.ended.get_mut(index) else {
            return;
        };
        if ended.last_repair.is_some_and(|at| now < at + interval) {
            return;
        }
        let Some(message) = ended.final_message.clone() else {
            return;
        };
        ended.last_repair = Some(now);
        self.stats.repairs += 1;
        self.send(message);
    }

    fn handle_server_message(&mut self, message: &Message, now: Instant) {
        match message {
            Message::EndByServer { call_id, .. } => {
                if self.call.as_ref().is_some_and(|c| &c.id == call_id) {
                    self.end(EndReason::EndedByServer, None, None, now);
                } else {
                    self.stats.stale += 1;
                }
            }
            Message::Error {
                code,
                call_id,
                detail,
                ..
            } => {
                let ours = call_id
                    .as_ref()
                    .is_some_and(|id| self.call.as_ref().is_some_and(|c| &c.id == id));
                self.event(CallEvent::ServerError {
                    code: *code,
                    call_id: call_id.clone(),
                    detail: detail.clone(),
                });
                if ours
                    && matches!(
                        code,
                        ErrorCode::UnknownCall | ErrorCode::NotInCall | ErrorCode::CallFull
                    )
                {
                    self.end(EndReason::EndedByServer, None, None, now);
                }
            }
            _ if message.call_id().is_some() => self.stats.unattributed += 1,
            _ => self.stats.not_for_calls += 1,
        }
    }

    fn on_invitation(&mut self, from: &Endpoint, invite: Invitation, now: Instant) {
        if self.call.is_some() {
            self.stats.busy_replies += 1;
            let busy = Message::Busy {
                call_id: invite.call_id.clone(),
            };
            self.send(busy.clone());
            self.remember_ended(invite.call_id.clone(), Some(busy));
            self.event(CallEvent::MissedWhileBusy {
                call_id: invite.call_id,
                caller: from.user.clone(),
            });
            return;
        }
        let me = &self.config.endpoint.user;
        let ring_ms = invite
            .ring_timeout_ms
            .clamp(MIN_RING_TIMEOUT_MS, MAX_RING_TIMEOUT_MS);
        let deadline = now + Duration::from_millis(u64::from(ring_ms));
        let mut members = BTreeMap::new();
        for user in invite.joined.iter().take(MAX_PARTICIPANTS) {
            if user != me {
                members.insert(
                    user.clone(),
                    MemberState::Joined {
                        device: None,
                        last_heard: now,
                    },
                );
            }
        }
        for user in invite.invited.iter().take(MAX_PARTICIPANTS) {
            if user != me && !members.contains_key(user) {
                members.insert(
                    user.clone(),
                    MemberState::Invited {
                        deadline,
                        rang: false,
                    },
                );
            }
        }
        members.insert(
            from.user.clone(),
            MemberState::Joined {
                device: Some(from.device.clone()),
                last_heard: now,
            },
        );
        let callees = invite.invited.clone();
        self.call = Some(Call {
            id: invite.call_id.clone(),
            room: invite.room.clone(),
            group: invite.group.clone(),
            media: invite.media,
            phase: CallPhase::Ringing,
            ring_deadline: Some(deadline),
            began_at: None,
            members,
            next_keepalive: now + self.config.keepalive_interval,
            switch_request: None,
            switch_incoming: None,
            ring_timeout_ms: ring_ms,
        });
        self.send(Message::Ringing {
            call_id: invite.call_id.clone(),
        });
        self.event(CallEvent::CallReceived {
            call_id: invite.call_id,
            caller: from.user.clone(),
            media: invite.media,
            room_id: invite.room,
            group_id: invite.group,
            callees,
            user_data: invite.user_data,
        });
    }

    /// A sibling device (same user) is in the call: this one loses if it only rings, or
    /// if the sibling's device id is smaller (concurrent accepts).
    fn sibling_in_call(&mut self, sibling: &DeviceId, now: Instant) {
        let phase = self.phase();
        let loses = match phase {
            CallPhase::Ringing => true,
            CallPhase::Active | CallPhase::Joining | CallPhase::Connecting => {
                *sibling < self.config.endpoint.device
            }
            CallPhase::Idle | CallPhase::Calling => false,
        };
        if loses {
            self.end(EndReason::AnsweredElsewhere, None, None, now);
        }
    }

    /// A user is in the call with `device`: add them (a call still calling begins).
    fn member_joined(&mut self, user: &UserId, device: Option<&DeviceId>, now: Instant) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let full = call.members.len() + 1 >= MAX_PARTICIPANTS;
        match call.members.get_mut(user) {
            Some(MemberState::Joined {
                device: known,
                last_heard,
            }) => {
                match (known.as_ref(), device) {
                    (None, Some(d)) => *known = Some(d.clone()),
                    // Concurrent accepts of one user: the smaller device id wins.
                    (Some(k), Some(d)) if d < k => *known = Some(d.clone()),
                    (Some(k), Some(d)) if d != k => return,
                    _ => {}
                }
                *last_heard = now;
                return;
            }
            Some(MemberState::Invited { .. }) => {}
            None if full => return,
            None => {}
        }
        call.members.insert(
            user.clone(),
            MemberState::Joined {
                device: device.cloned(),
                last_heard: now,
            },
        );
        let call_id = call.id.clone();
        let media = call.media;
        let phase = call.phase;
        if phase == CallPhase::Calling {
            call.phase = CallPhase::Active;
            call.began_at = Some(now);
            self.event(CallEvent::CallBegins {
                call_id: call_id.clone(),
                media,
            });
        }
        if matches!(phase, CallPhase::Calling | CallPhase::Active) {
            self.event(CallEvent::UserJoined {
                call_id,
                user: user.clone(),
            });
        }
    }

    /// An invitee answered negatively (or a participant left): remove them, and end a
    /// call still calling when nobody is left to answer.
    fn invitee_resolved(&mut self, user: &UserId, reason: EndReason, now: Instant) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.members.remove(user);
        let (call_id, phase, empty) = (call.id.clone(), call.phase, call.members.is_empty());
        let visible = matches!(phase, CallPhase::Calling | CallPhase::Active);
        if visible {
            let user = user.clone();
            let call_id = call_id.clone();
            self.event(match reason {
                EndReason::Rejected => CallEvent::UserRejected { call_id, user },
                EndReason::Busy => CallEvent::UserBusy { call_id, user },
                EndReason::NoAnswer => CallEvent::UserNoAnswer { call_id, user },
                reason => CallEvent::UserLeft {
                    call_id,
                    user,
                    reason,
                },
            });
        }
        if phase == CallPhase::Calling && empty {
            let send_now = (reason == EndReason::NoAnswer).then_some(Message::NoAnswer {
                call_id: call_id.clone(),
            });
            self.end(reason, send_now, None, now);
        }
    }

    /// A participant left (`leave`, or the inviter's ring timed out): remove them, and
    /// end when this device is left alone.
    fn member_left(&mut self, user: &UserId, reason: EndReason, now: Instant) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.members.remove(user);
        let (call_id, phase, joined) = (call.id.clone(), call.phase, call.joined_count());
        if phase == CallPhase::Active {
            self.event(CallEvent::UserLeft {
                call_id: call_id.clone(),
                user: user.clone(),
                reason,
            });
        }
        if joined > 0 {
            return;
        }
        match phase {
            CallPhase::Active => {
                // The last one in: end, and tell invitees still ringing.
                let message = Message::HangUp {
                    call_id,
                    reason: (reason != EndReason::HangUp).then_some(reason),
                };
                self.end_with_message(reason, message, now);
            }
            CallPhase::Ringing | CallPhase::Connecting => {
                let reason = if reason == EndReason::HangUp {
                    EndReason::Cancelled
                } else {
                    reason
                };
                self.end(reason, None, None, now);
            }
            CallPhase::Idle | CallPhase::Calling | CallPhase::Joining => {}
        }
    }

    fn handle_call_message(&mut self, from: &Endpoint, message: &Message, now: Instant) {
        let sibling = from.user == self.config.endpoint.user;
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let joined_device = call.is_joined_device(from);
        let invited = call.is_invited(&from.user);
        if joined_device
            && let Some(MemberState::Joined { device, last_heard }) =
                call.members.get_mut(&from.user)
        {
            *last_heard = now;
            if device.is_none() {
                *device = Some(from.device.clone());
            }
        }
        let phase = call.phase;
        let call_id = call.id.clone();
        match message {
            Message::Accept { .. } => {
                if sibling {
                    self.sibling_in_call(&from.device, now);
                } else if phase != CallPhase::Joining {
                    self.member_joined(&from.user, Some(&from.device), now);
                    // Confirm: the accepting device begins when it sees itself listed.
                    if self.phase() == CallPhase::Active {
                        self.send_keepalive();
                    }
                }
            }
            Message::Join { .. } => {
                if sibling || phase == CallPhase::Joining {
                    self.stats.stale += 1;
                    return;
                }
                self.member_joined(&from.user, Some(&from.device), now);
                if matches!(self.phase(), CallPhase::Active) {
                    self.send_keepalive();
                }
            }
            Message::CallState {
                media,
                room_id,
                members,
                ..
            } => {
                if sibling {
                    self.sibling_in_call(&from.device, now);
                    return;
                }
                let me = self.config.endpoint.clone();
                let sibling_listed = members
                    .iter()
                    .filter(|m| m.user == me.user)
                    .filter_map(|m| m.device.clone())
                    .find(|d| *d != me.device);
                if let Some(device) = sibling_listed {
                    self.sibling_in_call(&device, now);
                    if self.call.is_none() {
                        return;
                    }
                }
                if phase == CallPhase::Joining {
                    self.begin_joined(from, *media, room_id, members, now);
                } else if phase == CallPhase::Connecting {
                    let listed = members
                        .iter()
                        .any(|m| m.user == me.user && m.device.as_ref() == Some(&me.device));
                    if listed && joined_device {
                        self.begin_connected(*media, now);
                    }
                } else if invited || !joined_device {
                    // An invitee in the call (its accept was lost), or a participant
                    // this device has not heard join.
                    if phase != CallPhase::Ringing || invited {
                        self.member_joined(&from.user, Some(&from.device), now);
                    }
                }
            }
            Message::Ringing { .. } => {
                if let Some(call) = self.call.as_mut()
                    && let Some(MemberState::Invited { rang, .. }) =
                        call.members.get_mut(&from.user)
                    && !*rang
                {
                    *rang = true;
                    if matches!(phase, CallPhase::Calling | CallPhase::Active) {
                        self.event(CallEvent::UserRinging {
                            call_id,
                            endpoint: from.clone(),
                        });
                    }
                }
            }
            Message::Reject { .. } => {
                if sibling {
                    if phase == CallPhase::Ringing {
                        self.end(EndReason::RejectedElsewhere, None, None, now);
                    }
                } else if invited {
                    self.invitee_resolved(&from.user, EndReason::Rejected, now);
                }
            }
            Message::Busy { .. } => {
                if sibling {
                    if phase == CallPhase::Ringing {
                        self.end(EndReason::Busy, None, None, now);
                    }
                } else if invited {
                    self.invitee_resolved(&from.user, EndReason::Busy, now);
                }
            }
            Message::NoAnswer { .. } => {
                if sibling {
                    return;
                }
                if invited {
                    self.invitee_resolved(&from.user, EndReason::NoAnswer, now);
                } else if joined_device {
                    // The inviter's ring timed out before it heard this device accept.
                    self.member_left(&from.user, EndReason::NoAnswer, now);
                }
            }
            Message::Cancel { .. } => {
                if !sibling && joined_device {
                    self.end(EndReason::Cancelled, None, None, now);
                }
            }
            Message::HangUp { reason, .. } => {
                if sibling {
                    return;
                }
                let reason = reason.unwrap_or(EndReason::HangUp);
                // Others this device knows in the call besides the sender: then the
                // sender only left (its view was behind, or it never got in), and a
                // group call goes on while two or more are in it.
                let others_remain = self.call.as_ref().is_some_and(|c| {
                    c.members.iter().any(|(user, m)| {
                        *user != from.user && matches!(m, MemberState::Joined { .. })
                    })
                });
                let in_or_entering = matches!(phase, CallPhase::Active | CallPhase::Connecting);
                if joined_device && others_remain && in_or_entering {
                    self.member_left(&from.user, reason, now);
                } else if joined_device || phase == CallPhase::Joining {
                    let reason = if phase == CallPhase::Ringing && reason == EndReason::HangUp {
                        EndReason::Cancelled
                    } else {
                        reason
                    };
                    self.end(reason, None, None, now);
                } else if invited {
                    // It accepted (unheard) and hung up since.
                    self.invitee_resolved(&from.user, reason, now);
                }
            }
            Message::Leave { .. } => {
                if sibling {
                    return;
                }
                if joined_device {
                    self.member_left(&from.user, EndReason::HangUp, now);
                } else if invited {
                    self.invitee_resolved(&from.user, EndReason::HangUp, now);
                }
            }
            Message::InviteUsers { users, .. } => {
                let me = self.config.endpoint.user.clone();
                let ring = Duration::from_millis(u64::from(
                    self.call
                        .as_ref()
                        .map_or(MIN_RING_TIMEOUT_MS, |c| c.ring_timeout_ms),
                ));
                let Some(call) = self.call.as_mut() else {
                    return;
                };
                let mut added = Vec::new();
                for user in users {
                    if *user != me
                        && !call.members.contains_key(user)
                        && call.members.len() + 1 < MAX_PARTICIPANTS
                    {
                        call.members.insert(
                            user.clone(),
                            MemberState::Invited {
                                deadline: now + ring,
                                rang: false,
                            },
                        );
                        added.push(user.clone());
                    }
                }
                if matches!(phase, CallPhase::Calling | CallPhase::Active) {
                    for user in added {
                        self.event(CallEvent::UserInvited {
                            call_id: call_id.clone(),
                            user,
                            by: from.user.clone(),
                        });
                    }
                }
            }
            Message::SwitchMedia { media, .. } => {
                if sibling || !joined_device || phase != CallPhase::Active {
                    return;
                }
                let Some(call) = self.call.as_mut() else {
                    return;
                };
                match media {
                    MediaType::Audio if call.media != MediaType::Audio => {
                        call.media = MediaType::Audio;
                        call.switch_request = None;
                        call.switch_incoming = None;
                        self.event(CallEvent::MediaTypeChanged {
                            call_id,
                            media: MediaType::Audio,
                            by: Some(from.user.clone()),
                        });
                    }
                    MediaType::Video if call.media != MediaType::Video => {
                        call.switch_incoming = Some(from.user.clone());
                        self.event(CallEvent::MediaSwitchRequested {
                            call_id,
                            by: from.user.clone(),
                            media: MediaType::Video,
                        });
                    }
                    _ => {}
                }
            }
            Message::SwitchMediaReply {
                media, accepted, ..
            } => {
                if sibling || !joined_device || phase != CallPhase::Active {
                    return;
                }
                let Some(call) = self.call.as_mut() else {
                    return;
                };
                let mine = call.switch_request.is_some();
                if *accepted && call.media != *media {
                    call.media = *media;
                    call.switch_request = None;
                    call.switch_incoming = None;
                    self.event(CallEvent::MediaTypeChanged {
                        call_id,
                        media: *media,
                        by: Some(from.user.clone()),
                    });
                } else if !*accepted && mine {
                    call.switch_request = None;
                    self.event(CallEvent::MediaSwitchDeclined {
                        call_id,
                        by: Some(from.user.clone()),
                    });
                }
            }
            Message::MediaState { mic, camera, .. } => {
                if !sibling && joined_device {
                    self.event(CallEvent::RemoteMediaState {
                        call_id,
                        user: from.user.clone(),
                        state: MediaState {
                            mic: *mic,
                            camera: *camera,
                        },
                    });
                }
            }
            Message::MediaParams { transport, .. } => {
                if !sibling && (joined_device || invited) {
                    self.event(CallEvent::RemoteMediaParams {
                        call_id,
                        from: from.clone(),
                        transport: Box::new(transport.clone()),
                    });
                }
            }
            // A repeated invite for the current call, or server messages handled
            // elsewhere.
            _ => self.stats.stale += 1,
        }
    }

    fn begin_connected(&mut self, media: MediaType, now: Instant) {
        let interval = self.config.keepalive_interval;
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.phase = CallPhase::Active;
        call.ring_deadline = None;
        call.began_at = Some(now);
        call.media = media;
        call.next_keepalive = now + interval;
        for member in call.members.values_mut() {
            if let MemberState::Joined { last_heard, .. } = member {
                *last_heard = now;
            }
        }
        let call_id = call.id.clone();
        let joined: Vec<UserId> = call
            .members
            .iter()
            .filter(|(_, m)| matches!(m, MemberState::Joined { .. }))
            .map(|(u, _)| u.clone())
            .collect();
        self.event(CallEvent::CallBegins {
            call_id: call_id.clone(),
            media,
        });
        for user in joined {
            self.event(CallEvent::UserJoined {
                call_id: call_id.clone(),
                user,
            });
        }
    }

    fn begin_joined(
        &mut self,
        from: &Endpoint,
        media: MediaType,
        room: &RoomId,
        roster: &[Member],
        now: Instant,
    ) {
        let me = self.config.endpoint.user.clone();
        let interval = self.config.keepalive_interval;
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.phase = CallPhase::Active;
        call.ring_deadline = None;
        call.began_at = Some(now);
        call.media = media;
        call.room = room.clone();
        call.next_keepalive = now + interval;
        let mut users = Vec::new();
        for member in roster.iter().take(MAX_PARTICIPANTS) {
            if member.user != me && !call.members.contains_key(&member.user) {
                let device = if member.user == from.user {
                    Some(from.device.clone())
                } else {
                    member.device.clone()
                };
                call.members.insert(
                    member.user.clone(),
                    MemberState::Joined {
                        device,
                        last_heard: now,
                    },
                );
                users.push(member.user.clone());
            }
        }
        if !call.members.contains_key(&from.user) {
            call.members.insert(
                from.user.clone(),
                MemberState::Joined {
                    device: Some(from.device.clone()),
                    last_heard: now,
                },
            );
            users.push(from.user.clone());
        }
        let call_id = call.id.clone();
        self.event(CallEvent::CallBegins {
            call_id: call_id.clone(),
            media,
        });
        for user in users {
            self.event(CallEvent::UserJoined {
                call_id: call_id.clone(),
                user,
            });
        }
    }
}

/// What [`CallMachine::call`] needs to place a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// The users to call (1 to [`MAX_CALLEES`]; duplicates are dropped).
    pub callees: Vec<UserId>,
    /// Audio or video.
    pub media: MediaType,
    /// The call's id; `None` makes one from the machine's instance and a counter.
    pub call_id: Option<CallId>,
    /// The media room; `None` uses the call id.
    pub room_id: Option<RoomId>,
    /// The application group, for group calls.
    pub group_id: Option<GroupId>,
    /// Opaque application data for the callees (up to [`MAX_USER_DATA_BYTES`]).
    pub user_data: Option<String>,
}

impl CallRequest {
    /// A call to `callees` with `media` and everything else left to defaults.
    pub fn new(callees: Vec<UserId>, media: MediaType) -> Self {
        Self {
            callees,
            media,
            call_id: None,
            room_id: None,
            group_id: None,
            user_data: None,
        }
    }
}

/// An invitation as it arrived (`invite` or `invite_users`).
struct Invitation {
    call_id: CallId,
    room: RoomId,
    media: MediaType,
    group: Option<GroupId>,
    ring_timeout_ms: u32,
    /// Users already in the call (besides the inviter).
    joined: Vec<UserId>,
    /// Users invited with this device's user.
    invited: Vec<UserId>,
    user_data: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(user: &str, device: &str) -> Endpoint {
        Endpoint::new(UserId::new(user).unwrap(), DeviceId::new(device).unwrap())
    }

    fn machine(user: &str, device: &str) -> CallMachine {
        CallMachine::new(CallMachineConfig::new(endpoint(user, device), 9)).unwrap()
    }

    fn call_id(id: &str) -> CallId {
        CallId::new(id).unwrap()
    }

    fn envelope(from: &Endpoint, id: &str, seq: u64, message: Message) -> Envelope {
        Envelope {
            id: MessageId::new(id).unwrap(),
            seq,
            from: Some(from.clone()),
            message,
        }
    }

    fn invite(id: &str, callees: &[&str]) -> Message {
        Message::Invite {
            call_id: call_id(id),
            room_id: RoomId::new("room").unwrap(),
            media: MediaType::Audio,
            callees: callees.iter().map(|c| UserId::new(*c).unwrap()).collect(),
            group_id: None,
            ring_timeout_ms: 30_000,
            user_data: None,
        }
    }

    fn drain(machine: &mut CallMachine) -> (Vec<Envelope>, Vec<CallEvent>, Option<Instant>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        loop {
            match machine.poll_output() {
                Output::Send(envelope) => sent.push(envelope),
                Output::Event(event) => events.push(event),
                Output::Timeout(at) => return (sent, events, Some(at)),
                Output::Idle => return (sent, events, None),
            }
        }
    }

    #[test]
    fn a_hang_up_in_a_group_is_a_leave_while_others_remain() {
        let t0 = Instant::now();
        let mut alice = machine("alice", "laptop");
        let users = vec![UserId::new("bob").unwrap(), UserId::new("carol").unwrap()];
        let id = alice
            .call(
                CallRequest {
                    call_id: Some(call_id("g1")),
                    ..CallRequest::new(users, MediaType::Audio)
                },
                t0,
            )
            .unwrap();
        let (bob, carol) = (endpoint("bob", "phone"), endpoint("carol", "desk"));
        let accept = Message::Accept {
            call_id: id.clone(),
        };
        alice.handle_message(&envelope(&bob, "b1", 1, accept.clone()), t0);
        alice.handle_message(&envelope(&carol, "c1", 1, accept), t0);
        drain(&mut alice);
        assert_eq!(alice.participants().len(), 2);
        // Bob hangs up (his view was behind: he had not heard Carol): Alice and Carol go on.
        let hang_up = Message::HangUp {
            call_id: id.clone(),
            reason: None,
        };
        alice.handle_message(&envelope(&bob, "b2", 2, hang_up.clone()), t0);
        let (_, events, _) = drain(&mut alice);
        assert_eq!(alice.phase(), CallPhase::Active);
        assert!(
            events.iter().any(|e| matches!(e,
            CallEvent::UserLeft { user, reason: EndReason::HangUp, .. } if user.as_str() == "bob"))
        );
        // Carol hangs up too: Alice is alone, the call ends.
        alice.handle_message(&envelope(&carol, "c2", 2, hang_up), t0);
        let (_, events, _) = drain(&mut alice);
        assert_eq!(alice.phase(), CallPhase::Idle);
        assert!(events.iter().any(|e| matches!(
            e,
            CallEvent::CallEnds {
                reason: EndReason::HangUp,
                ..
            }
        )));
    }

    #[test]
    fn config_is_checked() {
        let mut config = CallMachineConfig::new(endpoint("a", "1"), 0);
        config.keepalive_deadline = config.keepalive_interval;
        assert!(matches!(
            CallMachine::new(config),
            Err(CallError::InvalidConfig {
                field: "keepalive_deadline",
                ..
            })
        ));
        let mut config = CallMachineConfig::new(endpoint("a", "1"), 0);
        config.ring_timeout = Duration::from_millis(10);
        assert!(CallMachine::new(config).is_err());
    }

    #[test]
    fn ringing_device_times_out_at_the_invite_ring_timeout() {
        let start = Instant::now();
        let mut bob = machine("bob", "1");
        let alice = endpoint("alice", "1");
        bob.handle_message(&envelope(&alice, "m1", 1, invite("c1", &["bob"])), start);
        let (sent, events, timer) = drain(&mut bob);
        assert!(matches!(sent[0].message, Message::Ringing { .. }));
        assert!(matches!(events[0], CallEvent::CallReceived { .. }));
        // The next timer is the ringing repeat, then the ring timeout.
        assert_eq!(timer, Some(start + Duration::from_secs(5)));
        bob.handle_timeout(start + Duration::from_secs(30));
        let (sent, events, timer) = drain(&mut bob);
        assert!(matches!(sent[0].message, Message::NoAnswer { .. }));
        assert!(matches!(
            events[0],
            CallEvent::CallEnds {
                reason: EndReason::NoAnswer,
                ..
            }
        ));
        assert_eq!(timer, None);
    }

    #[test]
    fn duplicates_are_dropped_and_reordering_counted() {
        let start = Instant::now();
        let mut bob = machine("bob", "1");
        let alice = endpoint("alice", "1");
        let first = envelope(&alice, "m5", 5, invite("c1", &["bob"]));
        bob.handle_message(&first, start);
        bob.handle_message(&first, start);
        assert_eq!(bob.stats().duplicates, 1);
        let older = envelope(
            &alice,
            "m4",
            4,
            Message::Ringing {
                call_id: call_id("c1"),
            },
        );
        bob.handle_message(&older, start);
        assert_eq!(bob.stats().out_of_order, 1);
        let (_, events, _) = drain(&mut bob);
        assert_eq!(events.len(), 1, "one CallReceived: {events:?}");
    }

    #[test]
    fn a_second_invite_gets_busy_and_the_first_call_goes_on() {
        let start = Instant::now();
        let mut bob = machine("bob", "1");
        let (alice, carol) = (endpoint("alice", "1"), endpoint("carol", "1"));
        bob.handle_message(&envelope(&alice, "a1", 1, invite("c1", &["bob"])), start);
        bob.handle_message(&envelope(&carol, "c1", 1, invite("c2", &["bob"])), start);
        let (sent, events, _) = drain(&mut bob);
        assert!(sent.iter().any(|e| e.message
            == Message::Busy {
                call_id: call_id("c2")
            }));
        assert!(events.iter().any(
            |e| matches!(e, CallEvent::MissedWhileBusy { call_id, .. } if call_id.as_str() == "c2")
        ));
        assert_eq!(bob.call_id(), Some(&call_id("c1")));
        assert_eq!(bob.stats().busy_replies, 1);
        // Carol's keepalive for the refused call gets the busy again (a repair).
        let state = Message::CallState {
            call_id: call_id("c2"),
            room_id: RoomId::new("room").unwrap(),
            media: MediaType::Audio,
            members: Vec::new(),
        };
        bob.handle_message(&envelope(&carol, "c2", 2, state.clone()), start);
        // Within the repair interval the repeat is not repeated.
        bob.handle_message(&envelope(&carol, "c3", 3, state), start);
        let (sent, _, _) = drain(&mut bob);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].message,
            Message::Busy {
                call_id: call_id("c2")
            }
        );
        assert_eq!(bob.stats().repairs, 1);
    }

    #[test]
    fn stale_messages_for_unknown_calls_are_counted() {
        let start = Instant::now();
        let mut bob = machine("bob", "1");
        let alice = endpoint("alice", "1");
        let message = Message::Accept {
            call_id: call_id("nope"),
        };
        bob.handle_message(&envelope(&alice, "x", 1, message), start);
        assert_eq!(bob.stats().stale, 1);
        assert_eq!(drain(&mut bob), (Vec::new(), Vec::new(), None));
        // Server messages without a sender are only taken for what the server may say.
        let forged = Envelope {
            id: MessageId::new("y").unwrap(),
            seq: 1,
            from: None,
            message: Message::Accept {
                call_id: call_id("nope"),
            },
        };
        bob.handle_message(&forged, start);
        assert_eq!(bob.stats().unattributed, 1);
    }

    #[test]
    fn only_the_server_ends_a_call_from_outside() {
        let start = Instant::now();
        let mut bob = machine("bob", "1");
        let alice = endpoint("alice", "1");
        bob.handle_message(&envelope(&alice, "i", 1, invite("c1", &["bob"])), start);
        let end = Message::EndByServer {
            call_id: call_id("c1"),
            reason: None,
        };
        // A device forging the server's message is ignored...
        bob.handle_message(&envelope(&alice, "f", 2, end.clone()), start);
        assert_eq!(bob.phase(), CallPhase::Ringing);
        assert_eq!(bob.stats().unattributed, 1);
        // ...the server's own (no sender) ends the call.
        let from_server = Envelope {
            id: MessageId::new("s1").unwrap(),
            seq: 1,
            from: None,
            message: end,
        };
        bob.handle_message(&from_server, start);
        let (_, events, _) = drain(&mut bob);
        assert!(events.iter().any(|e| matches!(
            e,
            CallEvent::CallEnds {
                reason: EndReason::EndedByServer,
                ..
            }
        )));
    }

    #[test]
    fn actions_in_the_wrong_state_are_refused() {
        let now = Instant::now();
        let mut alice = machine("alice", "1");
        assert_eq!(alice.accept(now), Err(CallError::NoCall));
        assert_eq!(alice.hang_up(now), Err(CallError::NoCall));
        let me = CallRequest::new(vec![UserId::new("alice").unwrap()], MediaType::Audio);
        assert_eq!(alice.call(me, now), Err(CallError::CalleeIsSelf));
        let many = (0..16)
            .map(|i| UserId::new(format!("u{i}")).unwrap())
            .collect();
        assert!(matches!(
            alice.call(CallRequest::new(many, MediaType::Audio), now),
            Err(CallError::TooManyParticipants { count: 17, max: 16 })
        ));
        let bob = CallRequest::new(vec![UserId::new("bob").unwrap()], MediaType::Audio);
        alice.call(bob, now).unwrap();
        assert!(matches!(
            alice.accept(now),
            Err(CallError::WrongState {
                action: "accept",
                state: "calling"
            })
        ));
        assert!(matches!(
            alice.switch_media(MediaType::Audio, now),
            Err(CallError::WrongState { .. })
        ));
    }

    #[test]
    fn concurrent_accepts_keep_the_smaller_device() {
        let start = Instant::now();
        let alice = endpoint("alice", "1");
        let mut bob_b = machine("bob", "b");
        let mut bob_a = machine("bob", "a");
        for bob in [&mut bob_a, &mut bob_b] {
            bob.handle_message(&envelope(&alice, "i", 1, invite("c1", &["bob"])), start);
            bob.accept(start).unwrap();
            drain(bob);
        }
        let accept = |device: &str| {
            envelope(
                &endpoint("bob", device),
                "acc",
                1,
                Message::Accept {
                    call_id: call_id("c1"),
                },
            )
        };
        bob_b.handle_message(&accept("a"), start);
        bob_a.handle_message(&accept("b"), start);
        assert_eq!(bob_b.phase(), CallPhase::Idle);
        assert_eq!(bob_a.phase(), CallPhase::Connecting);
        let (_, events, _) = drain(&mut bob_b);
        assert!(matches!(
            events[0],
            CallEvent::CallEnds {
                reason: EndReason::AnsweredElsewhere,
                ..
            }
        ));
    }

    #[test]
    fn memory_stays_bounded() {
        let start = Instant::now();
        let mut config = CallMachineConfig::new(endpoint("bob", "1"), 1);
        config.max_remembered_ids = 8;
        config.max_ended_calls = 4;
        config.max_queued_outputs = 16;
        let mut bob = CallMachine::new(config).unwrap();
        let alice = endpoint("alice", "1");
        for i in 0..100u64 {
            let call = format!("c{i}");
            bob.handle_message(
                &envelope(&alice, &format!("i{i}"), i * 2, invite(&call, &["bob"])),
                start,
            );
            bob.handle_message(
                &envelope(
                    &alice,
                    &format!("x{i}"),
                    i * 2 + 1,
                    Message::Cancel {
                        call_id: call_id(&call),
                    },
                ),
                start,
            );
        }
        assert!(bob.seen.len() <= 8 && bob.seen_order.len() <= 8);
        assert!(bob.ended.len() <= 4);
        assert!(bob.outputs.len() <= 16);
        assert!(bob.stats().dropped_outputs > 0);
        assert_eq!(bob.phase(), CallPhase::Idle);
    }
}
