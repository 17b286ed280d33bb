//! A thousand bad messages and a thousand abrupt disconnects, then a normal call.

mod common;

use std::time::{Duration, Instant};

use common::{Device, Raw, http, run_until, start, token, user};
use tincan_server::HubConfig;
use tincan_signal::call::{CallPhase, CallRequest};
use tincan_signal::protocol::{CallId, EndReason, ErrorCode, MediaType, Message, RoomId};

fn error_code(message: Option<tincan_signal::Envelope>) -> Option<ErrorCode> {
    match message?.message {
        Message::Error { code, .. } => Some(code),
        _ => None,
    }
}

fn invite(call: &str, callee: &str) -> Message {
    Message::Invite {
        call_id: CallId::new(call).unwrap(),
        room_id: RoomId::new(call).unwrap(),
        media: MediaType::Audio,
        callees: vec![user(callee)],
        group_id: None,
        ring_timeout_ms: 30_000,
        user_data: None,
    }
}

/// A normal call still works.
async fn a_normal_call(server: &tincan_server::ServerHandle) {
    let mut alice = Device::login(server, "alice", "laptop").await;
    let mut bob = Device::login(server, "bob", "phone").await;
    alice
        .machine
        .call(
            CallRequest::new(vec![user("bob")], MediaType::Audio),
            Instant::now(),
        )
        .unwrap();
    let limit = Duration::from_secs(5);
    run_until(&mut [&mut alice, &mut bob], limit, |d| {
        d[1].phase() == CallPhase::Ringing
    })
    .await;
    bob.machine.accept(Instant::now()).unwrap();
    run_until(&mut [&mut alice, &mut bob], limit, |d| {
        d.iter().all(|d| d.phase() == CallPhase::Active)
    })
    .await;
    bob.machine.hang_up(Instant::now()).unwrap();
    run_until(&mut [&mut alice, &mut bob], limit, |d| {
        d.iter().all(|d| d.ended_with() == Some(EndReason::HangUp))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_messages_each_get_an_error_and_the_server_still_serves() {
    // The rate limit has its own unit test; here every bad message must reach the parser.
    let server = start(HubConfig {
        rate_burst: 100_000,
        ..HubConfig::default()
    })
    .await;
    let mut mallory = Raw::connect(&server).await;
    mallory.login("mallory", "box", token("mallory", 600)).await;
    assert!(matches!(
        mallory.recv().await.map(|e| e.message),
        Some(Message::LoginResult { .. })
    ));
    let mut anonymous = Raw::connect(&server).await;
    let oversized = format!(
        r#"{{"v":1,"id":"big","seq":1,"type":"ping","pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    let mut seq = 100;
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..1000u32 {
        let (expected, code) = match i % 8 {
            0 => {
                mallory.send_text(String::from("{not json")).await;
                (ErrorCode::Malformed, error_code(mallory.recv().await))
            }
            1 => {
                mallory.send_text(oversized.clone()).await;
                (ErrorCode::Oversized, error_code(mallory.recv().await))
            }
            2 => {
                // A seq that does not increase.
                mallory.send(&format!("old-{i}"), 0, Message::Ping).await;
                (ErrorCode::OutOfOrder, error_code(mallory.recv().await))
            }
            3 => {
                anonymous
                    .send(&format!("a-{i}"), u64::from(i), invite("c", "bob"))
                    .await;
                (
                    ErrorCode::Unauthenticated,
                    error_code(anonymous.recv().await),
                )
            }
            4 => {
                // An expired token: an error, then the server closes the connection.
                let mut late = Raw::connect(&server).await;
                late.login("late", "phone", token("late", -10)).await;
                let code = error_code(late.recv().await);
                assert!(late.recv().await.is_none(), "connection not closed");
                (ErrorCode::ExpiredToken, code)
            }
            5 => {
                seq += 1;
                mallory
                    .send(
                        &format!("m-{i}"),
                        seq,
                        Message::Accept {
                            call_id: CallId::new(format!("nope-{i}")).unwrap(),
                        },
                    )
                    .await;
                (ErrorCode::UnknownCall, error_code(mallory.recv().await))
            }
            6 => {
                mallory
                    .send_text(format!(r#"{{"v":2,"id":"v-{i}","seq":1,"type":"ping"}}"#))
                    .await;
                (
                    ErrorCode::UnsupportedVersion,
                    error_code(mallory.recv().await),
                )
            }
            _ => {
                seq += 1;
                mallory
                    .send(
                        &format!("f-{i}"),
                        seq,
                        Message::EndByServer {
                            call_id: CallId::new("c").unwrap(),
                            reason: None,
                        },
                    )
                    .await;
                (ErrorCode::Forbidden, error_code(mallory.recv().await))
            }
        };
        assert_eq!(code, Some(expected), "message {i}");
        *counts.entry(format!("{expected:?}")).or_insert(0) += 1;
    }
    eprintln!("error replies: {counts:?}");
    // The connections that sent bad input are still usable.
    seq += 1;
    mallory.send("still-here", seq, Message::Ping).await;
    assert_eq!(mallory.recv().await.map(|e| e.message), Some(Message::Pong));
    a_normal_call(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_abrupt_disconnects_then_a_normal_call() {
    let server = start(HubConfig::default()).await;
    let started = Instant::now();
    let good = token("bob", 600);
    for i in 0..1000u32 {
        match i % 4 {
            // Before the login.
            0 => drop(Raw::connect(&server).await),
            // Mid-login: the login sent, the answer not read.
            1 => {
                let mut raw = Raw::connect(&server).await;
                raw.login("bob", &format!("d{i}"), good.clone()).await;
                drop(raw);
            }
            // Mid-call: a call placed and answered, then both sockets dropped.
            _ => {
                let mut caller = Raw::connect(&server).await;
                caller.login("carol", "desk", token("carol", 600)).await;
                let mut callee = Raw::connect(&server).await;
                callee.login("dave", "phone", token("dave", 600)).await;
                assert!(matches!(
                    caller.recv().await.map(|e| e.message),
                    Some(Message::LoginResult { .. })
                ));
                assert!(matches!(
                    callee.recv().await.map(|e| e.message),
                    Some(Message::LoginResult { .. })
                ));
                let call = format!("drop-{i}");
                caller.send("i", 1, invite(&call, "dave")).await;
                // Invitations of earlier, unanswered calls are kept for dave and come
                // first after his login: wait for this call's.
                loop {
                    match callee.recv().await.map(|e| e.message) {
                        Some(Message::Invite { call_id, .. }) if call_id.as_str() == call => break,
                        Some(Message::Invite { .. }) => {}
                        other => panic!("expected an invite, got {other:?}"),
                    }
                }
                if i % 4 == 3 {
                    callee
                        .send(
                            "a",
                            1,
                            Message::Accept {
                                call_id: CallId::new(call).unwrap(),
                            },
                        )
                        .await;
                    assert!(matches!(
                        caller.recv().await.map(|e| e.message),
                        Some(Message::Accept { .. })
                    ));
                }
                drop(callee);
                drop(caller);
            }
        }
    }
    eprintln!("1000 abrupt disconnects in {:?}", started.elapsed());
    // Every session is cleaned up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, health) = http(server.local_addr(), "GET", "/health", None, "").await;
        if health["connections"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "sessions left: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The answered calls whose sockets dropped are recorded as connection lost.
    let (_, records) = http(
        server.local_addr(),
        "GET",
        "/records",
        Some(&token("admin", 60)),
        "",
    )
    .await;
    let lost = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "connection_lost")
        .count();
    assert_eq!(lost, 250);
    a_normal_call(&server).await;
    server.shutdown().await;
}
