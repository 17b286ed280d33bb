//! Property tests: several users and devices driven through a relay that routes like the
//! server (every device of every participant) but delays, reorders, duplicates and loses
//! messages, under random user actions and timeouts.
//!
//! Checked on every run:
//! - nothing panics;
//! - every call ends on every device that saw it (one `CallEnds` per call begun, received,
//!   placed or joined): when the network is cut, by timers alone within a ring timeout
//!   (plus the largest delay) after the cut or the last user action; otherwise after a
//!   final hang-up by everyone, within a ring timeout plus a keepalive deadline;
//! - no machine ever drops an output for lack of queue room;
//! - both sides of a 1:1 call agree on why it ended. The pairs compared are the caller's
//!   device and each callee device that was in the call (saw `CallBegins`) and did not
//!   lose to a sibling (`AnsweredElsewhere`, `RejectedElsewhere`). Without losses the
//!   reasons are equal. With losses they are equal, or one side ended by its own timer
//!   because every message that would have told it (and every repeat) was lost:
//!   `ConnectionLost` (in a call) or `NoAnswer` (still ringing or calling when the timer
//!   fired).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tincan_signal::call::{
    CallEvent, CallMachine, CallMachineConfig, CallPhase, CallRequest, Output,
};
use tincan_signal::protocol::{
    CallId, DeviceId, EndReason, Endpoint, Envelope, MediaState, MediaType, Message, MessageId,
    UserId,
};
use tincan_signal::transport::Router;

const DEVICES: [(&str, &str); 5] = [("a", "1"), ("b", "1"), ("b", "2"), ("c", "1"), ("d", "1")];
const USERS: [&str; 4] = ["a", "b", "c", "d"];

/// SplitMix64: a small deterministic generator for the relay's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[derive(Clone, Debug)]
struct NetParams {
    loss: f64,
    duplicate: f64,
    max_delay_ms: u64,
    /// From this time on every message is lost (the network is cut), and nobody hangs up
    /// at the end: timers alone must end every call.
    cut_at_ms: Option<u64>,
    seed: u64,
}

#[derive(Clone, Debug)]
struct Action {
    at_ms: u64,
    device: usize,
    kind: u8,
    arg: u8,
}

struct Node {
    machine: CallMachine,
    timer: Option<Instant>,
    events: Vec<CallEvent>,
    starts: BTreeMap<CallId, u32>,
}

struct Relay {
    router: Router,
    queue: BTreeMap<(Instant, u64), (usize, Envelope)>,
    order: u64,
    rng: Rng,
    params: NetParams,
    start: Instant,
    lost: u64,
    server_seq: u64,
}

fn endpoint(i: usize) -> Endpoint {
    let (u, d) = DEVICES[i];
    Endpoint::new(UserId::new(u).unwrap(), DeviceId::new(d).unwrap())
}

impl Relay {
    fn submit(&mut self, now: Instant, from: usize, mut envelope: Envelope) {
        let sender = endpoint(from);
        envelope.from = Some(sender.clone());
        let cut = self
            .params
            .cut_at_ms
            .is_some_and(|t| now >= self.start + Duration::from_millis(t));
        match self.router.route(&sender, &envelope.message) {
            Ok(targets) => {
                for target in targets {
                    let Some(index) = (0..DEVICES.len()).find(|i| endpoint(*i) == target) else {
                        continue;
                    };
                    let copies = if self.rng.chance(self.params.duplicate) {
                        2
                    } else {
                        1
                    };
                    for _ in 0..copies {
                        if cut || self.rng.chance(self.params.loss) {
                            self.lost += 1;
                            continue;
                        }
                        let delay =
                            Duration::from_millis(self.rng.below(self.params.max_delay_ms + 1));
                        self.order += 1;
                        self.queue
                            .insert((now + delay, self.order), (index, envelope.clone()));
                    }
                }
            }
            Err(code) => {
                if cut {
                    return;
                }
                self.server_seq += 1;
                let reply = Envelope::new(
                    MessageId::new(format!("srv-{}", self.server_seq)).unwrap(),
                    self.server_seq,
                    Message::Error {
                        code,
                        in_reply_to: Some(envelope.id.clone()),
                        call_id: envelope.message.call_id().cloned(),
                        detail: None,
                    },
                );
                self.order += 1;
                self.queue.insert((now, self.order), (from, reply));
            }
        }
    }
}

struct Sim {
    nodes: Vec<Node>,
    relay: Relay,
    now: Instant,
    start: Instant,
    callers: BTreeMap<CallId, usize>,
    /// Calls that became more than 1:1 (several callees, invites, joins).
    group_calls: BTreeSet<CallId>,
}

impl Sim {
    fn new(params: NetParams) -> Self {
        let start = Instant::now();
        let mut router = Router::new(4096);
        let nodes = (0..DEVICES.len())
            .map(|i| {
                router.connect(&endpoint(i));
                Node {
                    machine: CallMachine::new(CallMachineConfig::new(endpoint(i), i as u64 + 100))
                        .unwrap(),
                    timer: None,
                    events: Vec::new(),
                    starts: BTreeMap::new(),
                }
            })
            .collect();
        Self {
            nodes,
            relay: Relay {
                router,
                queue: BTreeMap::new(),
                order: 0,
                rng: Rng(params.seed),
                params,
                start,
                lost: 0,
                server_seq: 0,
            },
            now: start,
            start,
            callers: BTreeMap::new(),
            group_calls: BTreeSet::new(),
        }
    }

    fn drain(&mut self, i: usize) {
        loop {
            let output = self.nodes[i].machine.poll_output();
            match output {
                Output::Send(envelope) => self.relay.submit(self.now, i, envelope),
                Output::Event(event) => {
                    if let CallEvent::CallReceived { call_id, .. } = &event {
                        *self.nodes[i].starts.entry(call_id.clone()).or_default() += 1;
                    }
                    self.nodes[i].events.push(event);
                }
                Output::Timeout(at) => {
                    self.nodes[i].timer = Some(at);
                    return;
                }
                Output::Idle => {
                    self.nodes[i].timer = None;
                    return;
                }
            }
        }
    }

    fn current_call_of(&self, device: usize) -> Option<CallId> {
        self.nodes[device].machine.call_id().cloned()
    }

    fn act(&mut self, action: &Action) {
        let i = action.device % DEVICES.len();
        let now = self.now;
        let me = DEVICES[i].0;
        let others: Vec<&str> = USERS.iter().copied().filter(|u| *u != me).collect();
        let arg = action.arg as usize;
        let machine = &mut self.nodes[i].machine;
        match action.kind % 12 {
            0 | 1 => {
                let mut callees: Vec<UserId> = others
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| arg & (1 << k) != 0 && arg & 0xc0 == 0xc0)
                    .map(|(_, u)| UserId::new(*u).unwrap())
                    .collect();
                if callees.is_empty() {
                    callees.push(UserId::new(others[arg % others.len()]).unwrap());
                }
                let group = callees.len() > 1;
                let media = if arg & 0x20 != 0 {
                    MediaType::Video
                } else {
                    MediaType::Audio
                };
                if let Ok(id) = machine.call(CallRequest::new(callees, media), now) {
                    *self.nodes[i].starts.entry(id.clone()).or_default() += 1;
                    self.callers.insert(id.clone(), i);
                    if group {
                        self.group_calls.insert(id);
                    }
                }
            }
            2 | 3 => {
                let _ = machine.accept(now);
            }
            4 => {
                let _ = machine.reject(now);
            }
            5 => {
                let _ = machine.hang_up(now);
            }
            6 => {
                let _ = machine.cancel(now);
            }
            7 => {
                let user = UserId::new(others[arg % others.len()]).unwrap();
                if machine.invite(vec![user], now).is_ok()
                    && let Some(id) = machine.call_id()
                {
                    self.group_calls.insert(id.clone());
                }
            }
            8 => {
                let target = arg % DEVICES.len();
                if let Some(id) = self.current_call_of(target) {
                    let machine = &mut self.nodes[i].machine;
                    if machine.join(id.clone(), now).is_ok() {
                        *self.nodes[i].starts.entry(id.clone()).or_default() += 1;
                        self.group_calls.insert(id);
                    }
                }
            }
            9 => {
                let media = if arg & 1 == 0 {
                    MediaType::Audio
                } else {
                    MediaType::Video
                };
                let _ = machine.switch_media(media, now);
            }
            10 => {
                let _ = machine.answer_media_switch(arg & 1 == 0, now);
            }
            _ => {
                let _ = machine.set_media_state(
                    MediaState {
                        mic: arg & 1 == 0,
                        camera: arg & 2 == 0,
                    },
                    now,
                );
            }
        }
        self.drain(i);
    }

    fn run(&mut self, actions: &[Action]) {
        let last_action = actions.iter().map(|a| a.at_ms).max().unwrap_or(0);
        let hang_up_at = self.start + Duration::from_millis(last_action + 1_000);
        let cut = self.relay.params.cut_at_ms.is_some();
        let horizon = match self.relay.params.cut_at_ms {
            // Cut: nothing arrives after the cut (or the last action, if later), so every
            // call must end by its own timers within a ring timeout (30 s; the keepalive
            // deadline is shorter) plus the last delay.
            Some(cut_at) => {
                self.start
                    + Duration::from_millis(last_action.max(cut_at))
                    + Duration::from_secs(30)
                    + Duration::from_millis(self.relay.params.max_delay_ms + 1)
            }
            // Everyone hung up: a ring timeout (for invites still in flight) + a keepalive
            // deadline + delays, with margin.
            None => hang_up_at + Duration::from_secs(80),
        };
        let mut next_action = 0;
        let mut hung_up = cut;
        loop {
            let mut next = horizon;
            if let Some(action) = actions.get(next_action) {
                next = next.min(self.start + Duration::from_millis(action.at_ms));
            }
            if let Some(((at, _), _)) = self.relay.queue.first_key_value() {
                next = next.min(*at);
            }
            for node in &self.nodes {
                if let Some(at) = node.timer {
                    next = next.min(at);
                }
            }
            if !hung_up {
                next = next.min(hang_up_at);
            }
            if next >= horizon {
                self.now = horizon;
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(entry) = self.relay.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (to, envelope) = entry.remove();
                self.nodes[to].machine.handle_message(&envelope, now);
                self.drain(to);
            }
            while let Some(action) = actions.get(next_action) {
                if self.start + Duration::from_millis(action.at_ms) > now {
                    break;
                }
                next_action += 1;
                let action = action.clone();
                self.act(&action);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].timer.is_some_and(|t| t <= now) {
                    self.nodes[i].machine.handle_timeout(now);
                    self.drain(i);
                }
            }
            if !hung_up && now >= hang_up_at {
                hung_up = true;
                for i in 0..self.nodes.len() {
                    let _ = self.nodes[i].machine.hang_up(now);
                    self.drain(i);
                }
            }
        }
    }

    fn ends(&self, i: usize) -> Vec<(CallId, EndReason)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                CallEvent::CallEnds {
                    call_id, reason, ..
                } => Some((call_id.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    fn began(&self, i: usize, call: &CallId) -> bool {
        self.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::CallBegins { call_id, .. } if call_id == call))
    }

    /// Checks the properties; returns how many 1:1 pairs were compared.
    fn check(&self) -> Result<usize, TestCaseError> {
        for (i, node) in self.nodes.iter().enumerate() {
            prop_assert_eq!(
                node.machine.phase(),
                CallPhase::Idle,
                "device {} still in a call",
                i
            );
            prop_assert!(node.timer.is_none(), "device {} keeps a timer", i);
            prop_assert_eq!(
                node.machine.stats().dropped_outputs,
                0,
                "device {} dropped outputs",
                i
            );
            let mut ended: BTreeMap<CallId, u32> = BTreeMap::new();
            for (id, _) in self.ends(i) {
                *ended.entry(id).or_default() += 1;
            }
            prop_assert_eq!(&ended, &node.starts, "device {}: calls started vs ended", i);
        }
        let mut pairs = 0;
        let lossless = self.relay.lost == 0;
        for (call, &caller) in &self.callers {
            if self.group_calls.contains(call) {
                continue;
            }
            let Some((_, caller_reason)) = self.ends(caller).into_iter().find(|(id, _)| id == call)
            else {
                prop_assert!(false, "caller never ended {:?}", call);
                continue;
            };
            for callee in 0..self.nodes.len() {
                if callee == caller || !self.began(callee, call) {
                    continue;
                }
                let Some((_, reason)) = self.ends(callee).into_iter().find(|(id, _)| id == call)
                else {
                    continue;
                };
                if matches!(
                    reason,
                    EndReason::AnsweredElsewhere | EndReason::RejectedElsewhere
                ) {
                    continue;
                }
                pairs += 1;
                let timer_end =
                    |r: EndReason| matches!(r, EndReason::ConnectionLost | EndReason::NoAnswer);
                if lossless {
                    prop_assert!(
                        agree(caller_reason, reason),
                        "call {:?}: caller {} {:?} vs callee {} {:?}",
                        call,
                        caller,
                        caller_reason,
                        callee,
                        reason
                    );
                } else {
                    prop_assert!(
                        agree(caller_reason, reason)
                            || timer_end(caller_reason)
                            || timer_end(reason),
                        "call {:?}: caller {} {:?} vs callee {} {:?}",
                        call,
                        caller,
                        caller_reason,
                        callee,
                        reason
                    );
                }
            }
        }
        Ok(pairs)
    }
}

/// Whether a caller's and a callee's end reasons agree: they are equal. (A callee that
/// ends before the caller confirmed its accept never began the call and is not compared.)
fn agree(caller: EndReason, callee: EndReason) -> bool {
    caller == callee
}

/// Action kinds, weighted so calls get placed, answered and ended often.
fn kind() -> impl Strategy<Value = u8> {
    prop_oneof![
        20 => Just(0u8), // call
        30 => Just(2),   // accept
        8 => Just(4),    // reject
        15 => Just(5),   // hang up
        5 => Just(6),    // cancel
        4 => Just(7),    // invite
        4 => Just(8),    // join
        6 => Just(9),    // switch media
        4 => Just(10),   // answer a switch
        4 => Just(11),   // media state
    ]
}

fn action() -> impl Strategy<Value = Action> {
    (0u64..90_000, 0usize..DEVICES.len(), kind(), any::<u8>()).prop_map(
        |(at_ms, device, kind, arg)| Action {
            at_ms,
            device,
            kind,
            arg,
        },
    )
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(action(), 0..60).prop_map(|mut actions| {
        actions.sort_by_key(|a| a.at_ms);
        actions
    })
}

fn lossy() -> impl Strategy<Value = NetParams> {
    (0.0f64..0.3, 0.0f64..0.2, 0u64..3_000, any::<u64>()).prop_map(
        |(loss, duplicate, max_delay_ms, seed)| NetParams {
            loss,
            duplicate,
            max_delay_ms,
            cut_at_ms: None,
            seed,
        },
    )
}

fn lossless() -> impl Strategy<Value = NetParams> {
    (0.0f64..0.3, 0u64..3_000, any::<u64>()).prop_map(|(duplicate, max_delay_ms, seed)| NetParams {
        loss: 0.0,
        duplicate,
        max_delay_ms,
        cut_at_ms: None,
        seed,
    })
}

fn cut() -> impl Strategy<Value = NetParams> {
    (0.0f64..0.1, 0u64..1_000, 0u64..120_000, any::<u64>()).prop_map(
        |(loss, max_delay_ms, cut_at, seed)| NetParams {
            loss,
            duplicate: 0.05,
            max_delay_ms,
            cut_at_ms: Some(cut_at),
            seed,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Reordered and duplicated but never lost: 1:1 calls end with the same reason on both sides.
    #[test]
    fn without_loss_both_sides_agree(params in lossless(), actions in actions()) {
        let mut sim = Sim::new(params);
        sim.run(&actions);
        sim.check()?;
    }

    /// Lost, reordered and duplicated: every call still ends, and both sides agree unless a
    /// timer had to end one of them.
    #[test]
    fn with_loss_every_call_ends(params in lossy(), actions in actions()) {
        let mut sim = Sim::new(params);
        sim.run(&actions);
        sim.check()?;
    }

    /// The network is cut and nobody hangs up: the timers alone end every call.
    #[test]
    fn a_cut_network_ends_every_call_by_timers(params in cut(), actions in actions()) {
        let mut sim = Sim::new(params);
        sim.run(&actions);
        sim.check()?;
    }
}

/// How often lossy runs still agree exactly: printed with `--nocapture`, asserted loosely.
#[test]
fn agreement_rate_under_loss() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (lossy(), actions());
    let (mut pairs, mut equal) = (0usize, 0usize);
    for _ in 0..200 {
        let (params, actions) = strategy.new_tree(&mut runner).unwrap().current();
        let mut sim = Sim::new(params);
        sim.run(&actions);
        sim.check().unwrap();
        for (call, &caller) in &sim.callers {
            if sim.group_calls.contains(call) {
                continue;
            }
            let caller_reason = sim
                .ends(caller)
                .into_iter()
                .find(|(id, _)| id == call)
                .map(|(_, r)| r);
            for callee in 0..sim.nodes.len() {
                if callee == caller || !sim.began(callee, call) {
                    continue;
                }
                let reason = sim
                    .ends(callee)
                    .into_iter()
                    .find(|(id, _)| id == call)
                    .map(|(_, r)| r);
                if matches!(
                    reason,
                    Some(EndReason::AnsweredElsewhere | EndReason::RejectedElsewhere)
                ) {
                    continue;
                }
                pairs += 1;
                if caller_reason.zip(reason).is_some_and(|(a, b)| agree(a, b)) {
                    equal += 1;
                }
            }
        }
    }
    println!("lossy 1:1 pairs: {pairs}, equal end reasons: {equal}");
    assert!(pairs > 20, "too few pairs compared: {pairs}");
    assert!(
        equal * 10 >= pairs * 8,
        "only {equal} of {pairs} agree exactly"
    );
}
