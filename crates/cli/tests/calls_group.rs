//! Multi-process group calls and media switches: a 4-party call with an invite mid-call
//! and a fifth user joining by the call's id, ended by the server over HTTP; a video call
//! switched to audio (video stops both ways at the switch, audio goes on).

mod calls_common;

use std::time::Duration;

use calls_common::{
    Server, device, heard, rms, scratch, seen, serial, speech, speech_heard, speech_path,
};

const WAIT: Duration = Duration::from_secs(30);
/// See `calls_cli.rs`.
const MIN_CORRELATION: f64 = 0.6;

#[test]
fn group_call_with_invite_join_and_server_end() {
    let _one_at_a_time = serial();
    let dir = scratch("group");
    let server = Server::start(&dir);
    let bob_wav = dir.join("bob_heard.wav");
    let mut bob = device(
        &server,
        &dir,
        "answer",
        "bob",
        "phone",
        &["--heard", bob_wav.to_str().unwrap(), "--no-denoise"],
    );
    let mut carol = device(&server, &dir, "answer", "carol", "desk", &["--no-denoise"]);
    let mut dave = device(&server, &dir, "answer", "dave", "tablet", &["--no-denoise"]);
    let mut alice = device(
        &server,
        &dir,
        "call",
        "alice",
        "laptop",
        &[
            "--to",
            "bob",
            "--to",
            "carol",
            "--call-id",
            "group-1",
            "--mic",
            speech_path().to_str().unwrap(),
            "--invite",
            "dave@2",
        ],
    );
    for participant in [&mut bob, &mut carol] {
        participant.wait_event("call_begins", WAIT);
    }
    // Dave is invited two seconds in.
    let invite = dave.wait_event("call_received", WAIT);
    assert_eq!(invite["caller"], "alice");
    dave.wait_event("call_begins", WAIT);
    // Erin joins by the call's id.
    let mut erin = device(
        &server,
        &dir,
        "call",
        "erin",
        "phone",
        &["--join", "group-1", "--no-denoise"],
    );
    erin.wait_event("call_begins", WAIT);
    // Five in the call, media in a full mesh; then the server ends it.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(server.end_call("group-1"), 200);
    for participant in [&mut alice, &mut bob, &mut carol, &mut dave, &mut erin] {
        participant.finish(WAIT);
        assert_eq!(
            participant.end_reason(),
            "ended_by_server",
            "{}",
            participant.name
        );
        assert!(
            participant.media("packets_received") > 50,
            "{}: {}",
            participant.name,
            participant.media("packets_received")
        );
    }
    for user in ["bob", "carol", "dave", "erin"] {
        assert!(
            alice.saw("user_joined", "user", user),
            "alice saw {user} join"
        );
    }
    for participant in [&bob, &carol] {
        assert!(
            participant
                .events
                .iter()
                .any(|e| e["event"] == "user_invited" && e["user"] == "dave" && e["by"] == "alice"),
            "{} saw dave invited",
            participant.name
        );
        assert!(
            participant.saw("user_joined", "user", "erin"),
            "{}",
            participant.name
        );
    }
    // Erin hears Alice (the only one talking): her audio is available to Erin.
    assert!(erin.events.iter().any(|e| e["event"] == "audio_available"
        && e["user"] == "alice"
        && e["available"] == true));
    let (score, windows) = speech_heard(
        &speech(),
        &heard(&bob_wav),
        Duration::from_millis(200),
        Duration::from_secs(1),
    );
    println!(
        "bob heard alice's speech in the group: median correlation {score:.3} over {windows} windows"
    );
    assert!(
        windows >= 3 && score >= MIN_CORRELATION,
        "{score} over {windows}"
    );
}

#[test]
fn video_call_switched_to_audio() {
    let _one_at_a_time = serial();
    let dir = scratch("switch");
    let server = Server::start(&dir);
    let (bob_seen, alice_seen) = (dir.join("bob_seen"), dir.join("alice_seen"));
    let (bob_wav, alice_wav) = (dir.join("bob_heard.wav"), dir.join("alice_heard.wav"));
    let mut bob = device(
        &server,
        &dir,
        "answer",
        "bob",
        "phone",
        &[
            "--tone",
            "500",
            "--no-denoise",
            "--seen",
            bob_seen.to_str().unwrap(),
            "--heard",
            bob_wav.to_str().unwrap(),
        ],
    );
    let mut alice = device(
        &server,
        &dir,
        "call",
        "alice",
        "laptop",
        &[
            "--to",
            "bob",
            "--media",
            "video",
            "--tone",
            "300",
            "--no-denoise",
            "--seen",
            alice_seen.to_str().unwrap(),
            "--heard",
            alice_wav.to_str().unwrap(),
            "--switch-to-audio-after",
            "2",
            "--duration",
            "5",
        ],
    );
    alice.finish(WAIT);
    bob.finish(WAIT);
    assert_eq!(bob.find("call_received").unwrap()["media"], "video");
    for (participant, other, seen_dir, wav) in [
        (&alice, "bob", &alice_seen, &alice_wav),
        (&bob, "alice", &bob_seen, &bob_wav),
    ] {
        let name = &participant.name;
        assert_eq!(participant.find("call_begins").unwrap()["media"], "video");
        let changed = participant.find("media_type_changed").unwrap();
        assert_eq!(changed["media"], "audio", "{name}");
        assert_eq!(participant.end_reason(), "hang_up");
        assert!(participant.media("packets_received") > 100);
        // Video before the switch; unavailable at the switch, and never back.
        let switched_at = changed["t_ms"].as_u64().unwrap();
        let video: Vec<(u64, bool)> = participant
            .events
            .iter()
            .filter(|e| e["event"] == "video_available" && e["user"] == other)
            .map(|e| (e["t_ms"].as_u64().unwrap(), e["available"] == true))
            .collect();
        assert!(
            video.iter().any(|&(t, on)| on && t < switched_at),
            "{name}: {video:?}"
        );
        let off = video
            .iter()
            .find(|&&(t, on)| !on && t >= switched_at)
            .unwrap_or_else(|| panic!("{name}: no video_available false: {video:?}"));
        assert!(off.0 - switched_at < 1_500, "{name}: {video:?}");
        assert!(
            !video.iter().any(|&(t, on)| on && t > switched_at),
            "{name}: {video:?}"
        );
        // The pictures stopped: about 2 s of them at 15 fps (5 s would be 75).
        let file = seen(&seen_dir.join(format!("{other}.y4m")));
        let (captured, decoded) = (
            participant.media("video_frames_captured"),
            participant.media("video_frames_decoded"),
        );
        println!(
            "{name}: video captured {captured}, decoded {decoded}, seen {} at {}x{}",
            file.counters.len(),
            file.width,
            file.height
        );
        assert!((15..=45).contains(&captured), "{name}: {captured}");
        assert!((10..=45).contains(&decoded), "{name}: {decoded}");
        assert_eq!(file.counters.len() as u64, decoded, "{name}");
        // Audio went on after the switch: the other's tone is heard 1 to 2.5 s after it
        // as before it.
        let samples = heard(wav);
        let before = rms(
            &samples,
            Duration::from_millis(500),
            Duration::from_millis(1_800),
        );
        let after = rms(
            &samples,
            Duration::from_millis(3_000),
            Duration::from_millis(4_500),
        );
        println!("{name}: tone heard before the switch rms {before:.3}, after {after:.3}");
        assert!(before > 0.05 && after > 0.05, "{name}: {before} {after}");
        assert!(after > before * 0.5, "{name}: {before} {after}");
    }
    assert!(alice.find("media_type_changed").unwrap()["by"].is_null());
    assert_eq!(bob.find("media_type_changed").unwrap()["by"], "alice");
}
