//! Whole calls through the embedded server: real WebSocket connections, one `CallMachine`
//! per device on the wall clock.

mod common;

use std::time::Duration;

use common::{Device, http, run_for, run_until, start, token, user};
use tincan_server::HubConfig;
use tincan_signal::call::{CallEvent, CallPhase, CallRequest};
use tincan_signal::protocol::{EndReason, MediaType, Message};

const LIMIT: Duration = Duration::from_secs(5);

fn call(device: &mut Device, to: &[&str], media: MediaType) -> tincan_signal::protocol::CallId {
    let callees = to.iter().map(|u| user(u)).collect();
    device
        .machine
        .call(CallRequest::new(callees, media), std::time::Instant::now())
        .unwrap()
}

fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Runs the caller and the callee until the callee rings.
async fn until_ringing(caller: &mut Device, callee: &mut Device) {
    run_until(&mut [caller, callee], LIMIT, |d| {
        d[1].phase() == CallPhase::Ringing
    })
    .await;
}

/// The ringing callee accepts; runs both until the call is active for both.
async fn accept_until_active(caller: &mut Device, callee: &mut Device) {
    callee.machine.accept(now()).unwrap();
    run_until(&mut [caller, callee], LIMIT, |d| {
        d.iter().all(|d| d.phase() == CallPhase::Active)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_accept_hang_up_and_the_record() {
    let server = start(HubConfig::default()).await;
    let mut alice = Device::login(&server, "alice", "laptop").await;
    let mut bob = Device::login(&server, "bob", "phone").await;
    let id = call(&mut alice, &["bob"], MediaType::Video);
    until_ringing(&mut alice, &mut bob).await;
    assert!(bob.saw(
        |e| matches!(e, CallEvent::CallReceived { caller, .. } if caller.as_str() == "alice")
    ));
    accept_until_active(&mut alice, &mut bob).await;
    run_for(&mut [&mut alice, &mut bob], Duration::from_millis(300)).await;
    alice.machine.hang_up(now()).unwrap();
    run_until(&mut [&mut alice, &mut bob], LIMIT, |d| {
        d.iter().all(|d| d.ended_with().is_some())
    })
    .await;
    assert_eq!(alice.ended_with(), Some(EndReason::HangUp));
    assert_eq!(bob.ended_with(), Some(EndReason::HangUp));

    let admin = token("admin", 60);
    let (status, records) = http(server.local_addr(), "GET", "/records", Some(&admin), "").await;
    assert_eq!(status, 200);
    let record = &records[0];
    assert_eq!(record["call_id"], id.as_str());
    assert_eq!(record["result"], "hang_up");
    assert_eq!(record["participants"], serde_json::json!(["alice", "bob"]));
    let duration = record["duration_ms"].as_u64().unwrap();
    assert!((300..3_000).contains(&duration), "{duration} ms");
    // Not an admin, or no token: refused.
    let (status, _) = http(
        server.local_addr(),
        "GET",
        "/records",
        Some(&token("bob", 60)),
        "",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(server.local_addr(), "GET", "/records", None, "").await;
    assert_eq!(status, 401);
    let (status, health) = http(server.local_addr(), "GET", "/health", None, "").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["connections"], 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_cancel_busy_and_no_answer() {
    let server = start(HubConfig::default()).await;
    let mut alice = Device::login_with(&server, "alice", "laptop", Duration::from_secs(1)).await;
    let mut bob = Device::login(&server, "bob", "phone").await;
    let mut carol = Device::login(&server, "carol", "tablet").await;

    // Reject.
    call(&mut alice, &["bob"], MediaType::Audio);
    until_ringing(&mut alice, &mut bob).await;
    bob.machine.reject(now()).unwrap();
    run_until(&mut [&mut alice, &mut bob], LIMIT, |d| {
        d[0].ended_with().is_some()
    })
    .await;
    assert_eq!(alice.ended_with(), Some(EndReason::Rejected));
    assert_eq!(bob.ended_with(), Some(EndReason::Rejected));

    // Cancel.
    call(&mut alice, &["bob"], MediaType::Audio);
    until_ringing(&mut alice, &mut bob).await;
    alice.machine.cancel(now()).unwrap();
    run_until(&mut [&mut alice, &mut bob], LIMIT, |d| {
        d[1].phase() == CallPhase::Idle
    })
    .await;
    assert_eq!(alice.ended_with(), Some(EndReason::Cancelled));
    assert_eq!(bob.ended_with(), Some(EndReason::Cancelled));

    // No answer: a 1 s ring timeout.
    call(&mut alice, &["bob"], MediaType::Audio);
    run_until(&mut [&mut alice, &mut bob], LIMIT, |d| {
        d.iter()
            .all(|d| d.ended_with() == Some(EndReason::NoAnswer))
    })
    .await;

    // Busy: carol is in a call with bob when alice calls bob.
    call(&mut carol, &["bob"], MediaType::Audio);
    until_ringing(&mut carol, &mut bob).await;
    accept_until_active(&mut carol, &mut bob).await;
    call(&mut alice, &["bob"], MediaType::Audio);
    run_until(&mut [&mut alice, &mut bob, &mut carol], LIMIT, |d| {
        d[0].ended_with() == Some(EndReason::Busy)
    })
    .await;
    assert!(bob.saw(|e| matches!(e, CallEvent::MissedWhileBusy { .. })));
    assert_eq!(bob.phase(), CallPhase::Active);

    let admin = token("admin", 60);
    let (_, records) = http(server.local_addr(), "GET", "/records", Some(&admin), "").await;
    let results: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["rejected", "cancelled", "no_answer", "busy"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_first_accept_wins_and_a_second_login_kicks() {
    let server = start(HubConfig::default()).await;
    let mut alice = Device::login(&server, "alice", "laptop").await;
    let mut phone = Device::login(&server, "bob", "phone").await;
    let mut tablet = Device::login(&server, "bob", "tablet").await;
    call(&mut alice, &["bob"], MediaType::Audio);
    run_until(&mut [&mut alice, &mut phone, &mut tablet], LIMIT, |d| {
        d[1].phase() == CallPhase::Ringing && d[2].phase() == CallPhase::Ringing
    })
    .await;
    tablet.machine.accept(now()).unwrap();
    run_until(&mut [&mut alice, &mut phone, &mut tablet], LIMIT, |d| {
        d[0].phase() == CallPhase::Active
            && d[2].phase() == CallPhase::Active
            && d[1].ended_with().is_some()
    })
    .await;
    assert_eq!(phone.ended_with(), Some(EndReason::AnsweredElsewhere));

    // bob's phone logs in again from elsewhere: the old connection is kicked.
    let mut again = Device::login(&server, "bob", "phone").await;
    let mut kicked = false;
    for _ in 0..100 {
        match tincan_signal::Transport::poll_receive(&mut phone.link) {
            Ok(Some(e)) if matches!(e.message, Message::Kicked { .. }) => {
                kicked = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => break,
        }
    }
    assert!(kicked, "the old connection was not told it was kicked");
    // The call between alice and bob's tablet goes on.
    run_for(
        &mut [&mut alice, &mut tablet, &mut again],
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(tablet.phase(), CallPhase::Active);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_waits_for_a_user_who_logs_in_within_the_ring_timeout() {
    let server = start(HubConfig::default()).await;
    let mut alice = Device::login(&server, "alice", "laptop").await;
    call(&mut alice, &["bob"], MediaType::Audio);
    run_for(&mut [&mut alice], Duration::from_millis(300)).await;
    let mut bob = Device::login(&server, "bob", "phone").await;
    until_ringing(&mut alice, &mut bob).await;
    accept_until_active(&mut alice, &mut bob).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_call_invite_mid_call_join_by_id_switch_to_audio_and_server_end() {
    let server = start(HubConfig::default()).await;
    let mut alice = Device::login(&server, "alice", "laptop").await;
    let mut bob = Device::login(&server, "bob", "phone").await;
    let mut carol = Device::login(&server, "carol", "tablet").await;
    let mut dave = Device::login(&server, "dave", "desk").await;
    let id = call(&mut alice, &["bob"], MediaType::Video);
    until_ringing(&mut alice, &mut bob).await;
    accept_until_active(&mut alice, &mut bob).await;
    // Mid-call invitation of carol.
    alice.machine.invite(vec![user("carol")], now()).unwrap();
    run_until(&mut [&mut alice, &mut bob, &mut carol], LIMIT, |d| {
        d[2].phase() == CallPhase::Ringing
    })
    .await;
    carol.machine.accept(now()).unwrap();
    // dave joins by the call id.
    dave.machine.join(id.clone(), now()).unwrap();
    let mut all = [&mut alice, &mut bob, &mut carol, &mut dave];
    // A joiner learns of an invitee who accepted at the same moment only from that
    // invitee's next keepalive `call_state`, so it is enough that it sees the inviter and
    // the first callee here; the three others see all four.
    run_until(&mut all, LIMIT, |d| {
        d.iter().all(|d| d.phase() == CallPhase::Active)
            && d[..3].iter().all(|d| d.machine.participants().len() == 3)
            && d[3].machine.participants().len() >= 2
    })
    .await;
    assert_eq!(alice.machine.media(), Some(MediaType::Video));

    // Switch to audio: at once for everyone.
    alice.machine.switch_media(MediaType::Audio, now()).unwrap();
    let mut all = [&mut alice, &mut bob, &mut carol, &mut dave];
    run_until(&mut all, LIMIT, |d| {
        d.iter()
            .all(|d| d.machine.media() == Some(MediaType::Audio))
    })
    .await;
    assert!(dave.saw(|e| matches!(
        e,
        CallEvent::MediaTypeChanged {
            media: MediaType::Audio,
            ..
        }
    )));

    let admin = token("admin", 60);
    let path = format!("/calls/{}", id.as_str());
    let (status, info) = http(server.local_addr(), "GET", &path, Some(&admin), "").await;
    assert_eq!(status, 200);
    assert_eq!(info["state"], "active");
    assert_eq!(
        info["in_call"],
        serde_json::json!(["alice", "bob", "carol", "dave"])
    );

    // The server ends the call.
    let end = format!("/calls/{}/end", id.as_str());
    let (status, told) = http(
        server.local_addr(),
        "POST",
        &end,
        Some(&admin),
        r#"{"reason":"maintenance"}"#,
    )
    .await;
    assert_eq!((status, told["devices_told"].as_u64()), (200, Some(4)));
    let mut all = [&mut alice, &mut bob, &mut carol, &mut dave];
    run_until(&mut all, LIMIT, |d| {
        d.iter()
            .all(|d| d.ended_with() == Some(EndReason::EndedByServer))
    })
    .await;
    let (_, info) = http(server.local_addr(), "GET", &path, Some(&admin), "").await;
    assert_eq!(info["state"], "ended");
    assert_eq!(info["record"]["result"], "ended_by_server");
    let (status, _) = http(
        server.local_addr(),
        "POST",
        "/calls/nope/end",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, 404);
    server.shutdown().await;
}
