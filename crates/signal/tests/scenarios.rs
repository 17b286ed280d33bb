//! One test per call flow, over the in-memory hub (in-order delivery, no loss).

mod common;

use std::time::Duration;

use common::{World, user};
use tincan_signal::call::{CallEvent, CallPhase, CallRequest};
use tincan_signal::protocol::{EndReason, MediaState, MediaType, Message};
use tincan_signal::{CallError, Transport};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn call(
    world: &mut World,
    from: &str,
    to: &[&str],
    media: MediaType,
) -> tincan_signal::protocol::CallId {
    let callees = to.iter().map(|u| user(u)).collect();
    world
        .act(from, |m, now| m.call(CallRequest::new(callees, media), now))
        .unwrap()
}

#[test]
fn one_to_one_accept_and_hang_up() {
    let mut world = World::new(&["alice", "bob"]);
    let id = call(&mut world, "alice", &["bob"], MediaType::Audio);
    assert_eq!(world.machine("bob").phase(), CallPhase::Ringing);
    assert!(world.has_event("alice", |e| matches!(e, CallEvent::UserRinging { .. })));
    world.advance(secs(4));
    world.act("bob", |m, now| m.accept(now)).unwrap();
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    assert!(world.has_event(
        "alice",
        |e| matches!(e, CallEvent::UserJoined { user, .. } if user.as_str() == "bob")
    ));
    // Ten minutes of call: keepalives keep it up on both sides.
    world.advance(secs(600));
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    assert_eq!(world.machine("bob").phase(), CallPhase::Active);
    world.act("alice", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(
        world.ends("alice"),
        vec![(id.clone(), EndReason::HangUp, secs(600))]
    );
    assert_eq!(world.ends("bob"), vec![(id, EndReason::HangUp, secs(600))]);
    world.advance(secs(60));
    assert_eq!(world.end_reasons("alice").len(), 1);
    assert_eq!(
        world.machine("alice").poll_output(),
        tincan_signal::Output::Idle
    );
}

#[test]
fn reject() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Video);
    world.advance(secs(2));
    world.act("bob", |m, now| m.reject(now)).unwrap();
    assert_eq!(world.end_reasons("alice"), vec![EndReason::Rejected]);
    assert_eq!(world.end_reasons("bob"), vec![EndReason::Rejected]);
    assert!(world.has_event("alice", |e| matches!(e, CallEvent::UserRejected { .. })));
}

#[test]
fn busy() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    call(&mut world, "carol", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    let second = call(&mut world, "alice", &["bob"], MediaType::Audio);
    assert_eq!(world.end_reasons("alice"), vec![EndReason::Busy]);
    assert!(world.has_event("alice", |e| matches!(e, CallEvent::UserBusy { .. })));
    assert!(world.has_event(
        "bob",
        |e| matches!(e, CallEvent::MissedWhileBusy { call_id, .. } if *call_id == second)
    ));
    // Bob's call with Carol goes on.
    world.advance(secs(60));
    assert_eq!(world.machine("bob").phase(), CallPhase::Active);
    assert!(world.end_reasons("bob").is_empty());
    // And a busy user's own call is refused locally.
    assert!(matches!(
        world.act("bob", |m, now| m.call(
            CallRequest::new(vec![user("alice")], MediaType::Audio),
            now
        )),
        Err(CallError::AlreadyInCall { .. })
    ));
}

#[test]
fn no_answer_after_the_ring_timeout() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.advance(secs(29));
    assert_eq!(world.machine("bob").phase(), CallPhase::Ringing);
    world.advance(secs(1));
    assert_eq!(world.end_reasons("alice"), vec![EndReason::NoAnswer]);
    assert_eq!(world.end_reasons("bob"), vec![EndReason::NoAnswer]);
    assert!(world.has_event("alice", |e| matches!(e, CallEvent::UserNoAnswer { .. })));
}

#[test]
fn cancel() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.advance(secs(5));
    world.act("alice", |m, now| m.cancel(now)).unwrap();
    assert_eq!(world.end_reasons("alice"), vec![EndReason::Cancelled]);
    assert_eq!(world.end_reasons("bob"), vec![EndReason::Cancelled]);
}

#[test]
fn two_devices_first_accept_wins() {
    let mut world = World::new(&["alice", "bob/phone", "bob/laptop"]);
    let id = call(&mut world, "alice", &["bob"], MediaType::Video);
    assert_eq!(world.machine("bob/phone").phase(), CallPhase::Ringing);
    assert_eq!(world.machine("bob/laptop").phase(), CallPhase::Ringing);
    world.act("bob/phone", |m, now| m.accept(now)).unwrap();
    assert_eq!(
        world.end_reasons("bob/laptop"),
        vec![EndReason::AnsweredElsewhere]
    );
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    world.advance(secs(30));
    world.act("bob/phone", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(world.ends("alice"), vec![(id, EndReason::HangUp, secs(30))]);
    assert_eq!(world.end_reasons("bob/phone"), vec![EndReason::HangUp]);
    assert_eq!(world.end_reasons("bob/laptop").len(), 1);
}

#[test]
fn two_devices_reject_on_one_ends_the_other() {
    let mut world = World::new(&["alice", "bob/phone", "bob/laptop"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob/laptop", |m, now| m.reject(now)).unwrap();
    assert_eq!(
        world.end_reasons("bob/phone"),
        vec![EndReason::RejectedElsewhere]
    );
    assert_eq!(world.end_reasons("alice"), vec![EndReason::Rejected]);
}

#[test]
fn two_devices_accepting_at_once_keep_the_smaller_device_id() {
    let mut world = World::new(&["alice", "bob/a", "bob/b"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    // Both accept before either hears the other.
    let now = world.now;
    world.machine("bob/b").accept(now).unwrap();
    world.machine("bob/a").accept(now).unwrap();
    world.settle();
    assert_eq!(
        world.end_reasons("bob/b"),
        vec![EndReason::AnsweredElsewhere]
    );
    assert!(world.end_reasons("bob/a").is_empty());
    world.advance(secs(60));
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    world.act("alice", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(world.end_reasons("bob/a"), vec![EndReason::HangUp]);
}

#[test]
fn four_party_group_with_invite_and_join() {
    let mut world = World::new(&["alice", "bob", "carol", "dave"]);
    let id = call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    // Mid-call invite.
    world
        .act("alice", |m, now| m.invite(vec![user("carol")], now))
        .unwrap();
    assert_eq!(world.machine("carol").phase(), CallPhase::Ringing);
    assert!(world.has_event(
        "bob",
        |e| matches!(e, CallEvent::UserInvited { user, .. } if user.as_str() == "carol")
    ));
    world.act("carol", |m, now| m.accept(now)).unwrap();
    // Join by id.
    let join_id = id.clone();
    world.act("dave", |m, now| m.join(join_id, now)).unwrap();
    assert_eq!(world.machine("dave").phase(), CallPhase::Active);
    for name in ["alice", "bob", "carol", "dave"] {
        assert_eq!(world.machine(name).participants().len(), 3, "{name}");
    }
    world.advance(secs(120));
    // Bob leaves: the call goes on for three.
    world.act("bob", |m, now| m.hang_up(now)).unwrap();
    assert!(world.has_event("alice", |e| matches!(e, CallEvent::UserLeft { user, reason: EndReason::HangUp, .. } if user.as_str() == "bob")));
    world.advance(secs(60));
    for name in ["alice", "carol", "dave"] {
        assert_eq!(world.machine(name).phase(), CallPhase::Active, "{name}");
    }
    world.act("carol", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    // Dave leaves: Alice is the last one and the call ends for her.
    world.act("dave", |m, now| m.hang_up(now)).unwrap();
    for name in ["alice", "bob", "carol", "dave"] {
        assert_eq!(world.end_reasons(name), vec![EndReason::HangUp], "{name}");
    }
    world.advance(secs(60));
    for name in ["alice", "bob", "carol", "dave"] {
        assert_eq!(world.end_reasons(name).len(), 1, "{name}");
    }
}

#[test]
fn group_call_ends_when_everyone_else_declines() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    call(&mut world, "alice", &["bob", "carol"], MediaType::Audio);
    world.act("bob", |m, now| m.reject(now)).unwrap();
    assert_eq!(world.machine("alice").phase(), CallPhase::Calling);
    world.act("carol", |m, now| m.reject(now)).unwrap();
    assert_eq!(world.end_reasons("alice"), vec![EndReason::Rejected]);
}

#[test]
fn group_call_goes_on_while_two_are_in_it() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    call(&mut world, "alice", &["bob", "carol"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world.act("carol", |m, now| m.accept(now)).unwrap();
    // The caller leaves; Bob and Carol go on.
    world.act("alice", |m, now| m.hang_up(now)).unwrap();
    world.advance(secs(60));
    assert_eq!(world.machine("bob").phase(), CallPhase::Active);
    assert_eq!(world.machine("carol").phase(), CallPhase::Active);
    world.act("bob", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(world.end_reasons("carol"), vec![EndReason::HangUp]);
}

#[test]
fn switch_to_audio_at_once_and_back_to_video_on_request() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Video);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world
        .act("alice", |m, now| m.switch_media(MediaType::Audio, now))
        .unwrap();
    assert_eq!(world.machine("bob").media(), Some(MediaType::Audio));
    assert!(world.has_event("bob", |e| matches!(
        e,
        CallEvent::MediaTypeChanged {
            media: MediaType::Audio,
            by: Some(_),
            ..
        }
    )));
    // Back to video: a request Bob declines, then one he accepts.
    world
        .act("alice", |m, now| m.switch_media(MediaType::Video, now))
        .unwrap();
    assert!(world.has_event("bob", |e| matches!(
        e,
        CallEvent::MediaSwitchRequested { .. }
    )));
    world
        .act("bob", |m, now| m.answer_media_switch(false, now))
        .unwrap();
    assert!(world.has_event("alice", |e| matches!(
        e,
        CallEvent::MediaSwitchDeclined { by: Some(_), .. }
    )));
    assert_eq!(world.machine("alice").media(), Some(MediaType::Audio));
    world
        .act("alice", |m, now| m.switch_media(MediaType::Video, now))
        .unwrap();
    world
        .act("bob", |m, now| m.answer_media_switch(true, now))
        .unwrap();
    assert_eq!(world.machine("alice").media(), Some(MediaType::Video));
    assert_eq!(world.machine("bob").media(), Some(MediaType::Video));
    // Mic and camera state reach the other side.
    world
        .act("bob", |m, now| {
            m.set_media_state(
                MediaState {
                    mic: false,
                    camera: true,
                },
                now,
            )
        })
        .unwrap();
    assert!(world.has_event("alice", |e| matches!(
        e,
        CallEvent::RemoteMediaState {
            state: MediaState {
                mic: false,
                camera: true
            },
            ..
        }
    )));
}

#[test]
fn unanswered_video_request_lapses() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world
        .act("alice", |m, now| m.switch_media(MediaType::Video, now))
        .unwrap();
    world.advance(secs(31));
    assert!(world.has_event("alice", |e| matches!(
        e,
        CallEvent::MediaSwitchDeclined { by: None, .. }
    )));
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
}

#[test]
fn end_by_server() {
    let mut world = World::new(&["alice", "bob"]);
    let id = call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world.advance(secs(10));
    assert!(world.hub.end_call(&id, Some(String::from("moderator"))));
    world.settle();
    assert_eq!(world.end_reasons("alice"), vec![EndReason::EndedByServer]);
    assert_eq!(world.end_reasons("bob"), vec![EndReason::EndedByServer]);
}

#[test]
fn connection_lost_after_the_keepalive_deadline() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world.advance(secs(3));
    // Bob's connection drops; Alice last heard him when he accepted.
    world.device("bob").link = None;
    world.advance(secs(11));
    assert!(world.end_reasons("alice").is_empty());
    world.advance(secs(5));
    assert_eq!(world.end_reasons("alice"), vec![EndReason::ConnectionLost]);
    assert_eq!(world.end_reasons("bob"), vec![EndReason::ConnectionLost]);
}

#[test]
fn bad_frames_get_error_replies_and_the_call_goes_on() {
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    let bad = [
        String::from("{"),
        String::from(r#"{"v":9,"id":"x","seq":1,"type":"ping"}"#),
        String::from(r#"{"v":1,"id":"x","seq":1,"type":"warp"}"#),
        "x".repeat(70_000),
        String::from(r#"{"v":1,"id":"x","seq":1,"type":"accept","call_id":"nope"}"#),
        String::from(r#"{"v":1,"id":"x","seq":1,"type":"end_by_server","call_id":"nope"}"#),
    ];
    for text in &bad {
        world
            .device("alice")
            .link
            .as_mut()
            .unwrap()
            .send_text(text)
            .unwrap();
    }
    let mut codes = Vec::new();
    let link = world.device("alice").link.as_mut().unwrap();
    while let Some(envelope) = link.poll_receive().unwrap() {
        if let Message::Error { code, .. } = envelope.message {
            codes.push(code);
        }
    }
    use tincan_signal::protocol::ErrorCode::*;
    assert_eq!(
        codes,
        vec![
            Malformed,
            UnsupportedVersion,
            UnknownType,
            Oversized,
            UnknownCall,
            Forbidden
        ]
    );
    world.advance(secs(60));
    assert_eq!(world.machine("alice").phase(), CallPhase::Active);
    assert_eq!(world.machine("bob").phase(), CallPhase::Active);
}

#[test]
fn invitee_still_ringing_stops_when_the_call_ends() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    call(&mut world, "alice", &["bob"], MediaType::Audio);
    world.act("bob", |m, now| m.accept(now)).unwrap();
    world
        .act("alice", |m, now| m.invite(vec![user("carol")], now))
        .unwrap();
    assert_eq!(world.machine("carol").phase(), CallPhase::Ringing);
    world.advance(secs(5));
    // Bob leaves: Alice is alone, the call ends, and Carol stops ringing.
    world.act("bob", |m, now| m.hang_up(now)).unwrap();
    assert_eq!(world.end_reasons("alice"), vec![EndReason::HangUp]);
    assert_eq!(world.end_reasons("carol"), vec![EndReason::Cancelled]);
}

#[test]
fn media_params_reach_the_other_side() {
    use tincan_signal::protocol::{CodecParams, MediaTransport, Ssrcs};
    let mut world = World::new(&["alice", "bob"]);
    call(&mut world, "alice", &["bob"], MediaType::Video);
    let transport = MediaTransport {
        address: String::from("127.0.0.1"),
        port: 40_002,
        codecs: vec![CodecParams {
            name: String::from("opus"),
            payload_type: 111,
            clock_rate: 48_000,
            channels: Some(2),
        }],
        ssrcs: Ssrcs {
            audio: Some(7),
            video: Some(8),
            rtx: Some(9),
            fec: None,
        },
        key: None,
    };
    let sent = transport.clone();
    world
        .act("alice", |m, now| m.send_media_params(sent, now))
        .unwrap();
    assert!(world.has_event("bob", |e| matches!(
        e,
        CallEvent::RemoteMediaParams { from, transport: t, .. }
            if from.user.as_str() == "alice" && **t == transport
    )));
    // Out-of-range parameters are refused before anything is sent.
    let mut bad = transport.clone();
    bad.port = 0;
    assert!(
        world
            .act("alice", |m, now| m.send_media_params(bad, now))
            .is_err()
    );
}
