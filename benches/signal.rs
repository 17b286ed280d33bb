//! Criterion benches of signalling: an invite parsed from JSON and serialized back, and the
//! call state machine taking in the message it handles most (a participant's `call_state`
//! keepalive) and draining its outputs.
//!
//! `cargo bench --bench signal` runs them; criterion reports envelopes per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan_signal::call::{CallMachine, CallMachineConfig, CallPhase, CallRequest, Output};
use tincan_signal::protocol::{
    CallId, DeviceId, Endpoint, Envelope, MediaType, Member, Message, MessageId, RoomId, UserId,
    parse,
};

/// Distinct keepalives cycled through: more than the machine remembers (512), so none is
/// dropped as a duplicate.
const KEEPALIVES: usize = 1024;

fn endpoint(user: &str) -> Endpoint {
    Endpoint::new(
        UserId::new(user).expect("id"),
        DeviceId::new("phone").expect("id"),
    )
}

fn invite_json() -> String {
    let mut envelope = Envelope::new(
        MessageId::new("5f3a9c-17").expect("id"),
        17,
        Message::Invite {
            call_id: CallId::new("5f3a9c-17-c1").expect("id"),
            room_id: RoomId::new("room-42").expect("id"),
            media: MediaType::Video,
            callees: ["bob", "carol", "dave"]
                .iter()
                .map(|u| UserId::new(*u).expect("id"))
                .collect(),
            group_id: None,
            ring_timeout_ms: 30_000,
            user_data: Some(String::from("{\"topic\":\"standup\"}")),
        },
    );
    envelope.from = Some(endpoint("alice"));
    envelope.to_json()
}

fn protocol(c: &mut Criterion) {
    let json = invite_json();
    let mut group = c.benchmark_group("signal_protocol");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_invite", |b| {
        b.iter(|| parse(black_box(json.as_bytes())).expect("parses"))
    });
    let envelope = parse(json.as_bytes()).expect("parses");
    group.bench_function("serialize_invite", |b| {
        b.iter(|| black_box(&envelope).to_json())
    });
    group.finish();
}

/// Hands every envelope `from` has to send to `to`.
fn deliver(from: &mut CallMachine, to: &mut CallMachine, now: Instant) {
    loop {
        match from.poll_output() {
            Output::Send(envelope) => to.handle_message(&envelope, now),
            Output::Event(_) => {}
            Output::Timeout(_) | Output::Idle => return,
        }
    }
}

/// Bob's machine in an active call with Alice, and Alice's keepalives to feed it.
fn active_call() -> (CallMachine, Vec<Envelope>, Instant) {
    let start = Instant::now();
    let (alice_id, bob_id) = (endpoint("alice"), endpoint("bob"));
    let mut alice = CallMachine::new(CallMachineConfig::new(alice_id.clone(), 1)).expect("config");
    let mut bob = CallMachine::new(CallMachineConfig::new(bob_id.clone(), 2)).expect("config");
    alice
        .call(
            CallRequest::new(vec![bob_id.user.clone()], MediaType::Audio),
            start,
        )
        .expect("call");
    // Invite, ringing, accept, confirmation: delivered directly, in order.
    deliver(&mut alice, &mut bob, start);
    bob.accept(start).expect("accept");
    deliver(&mut bob, &mut alice, start);
    deliver(&mut alice, &mut bob, start);
    assert_eq!(bob.phase(), CallPhase::Active);
    let call_id = bob.call_id().expect("in a call").clone();
    let keepalives = (0..KEEPALIVES)
        .map(|i| {
            let mut envelope = Envelope::new(
                MessageId::new(format!("1-{}", 100 + i)).expect("id"),
                100 + i as u64,
                Message::CallState {
                    call_id: call_id.clone(),
                    room_id: RoomId::new(call_id.as_str()).expect("id"),
                    media: MediaType::Audio,
                    members: vec![
                        Member {
                            user: alice_id.user.clone(),
                            device: Some(alice_id.device.clone()),
                        },
                        Member {
                            user: bob_id.user.clone(),
                            device: Some(bob_id.device.clone()),
                        },
                    ],
                },
            );
            envelope.from = Some(alice_id.clone());
            envelope
        })
        .collect();
    (bob, keepalives, start)
}

fn machine(c: &mut Criterion) {
    let (mut bob, keepalives, start) = active_call();
    let mut group = c.benchmark_group("signal_machine");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut now = start;
    group.bench_function("handle_call_state", |b| {
        b.iter(|| {
            let envelope = &keepalives[i % KEEPALIVES];
            i += 1;
            now += Duration::from_millis(1);
            bob.handle_message(black_box(envelope), now);
            loop {
                match bob.poll_output() {
                    Output::Timeout(at) => break black_box(at),
                    Output::Idle => unreachable!("the call goes on"),
                    other => {
                        black_box(other);
                    }
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, protocol, machine);
criterion_main!(benches);
