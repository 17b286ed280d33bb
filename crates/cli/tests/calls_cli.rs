//! Multi-process calls: `tincan serve` and one `tincan call` / `tincan answer` process per
//! device, media over loopback UDP. Each test checks the events every side printed and,
//! where media flows, that it did (the heard WAV holds the speech sent; in the video call,
//! the seen Y4M files hold the other side's moving pattern, frame numbers rising).

mod calls_common;

use std::time::Duration;

use calls_common::{
    Server, device, heard, scratch, seen, serial, speech, speech_heard, speech_path,
};

const WAIT: Duration = Duration::from_secs(20);
/// Median window correlation that counts as the speech heard (other audio stays below
/// 0.3: see the engine's in-process test).
const MIN_CORRELATION: f64 = 0.6;

#[test]
fn one_to_one_audio_call() {
    let _one_at_a_time = serial();
    let dir = scratch("one-to-one");
    let server = Server::start(&dir);
    let bob_wav = dir.join("bob_heard.wav");
    let alice_wav = dir.join("alice_heard.wav");
    let mut bob = device(
        &server,
        &dir,
        "answer",
        "bob",
        "phone",
        &[
            "--heard",
            bob_wav.to_str().unwrap(),
            "--tone",
            "300",
            "--no-denoise",
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
            "--mic",
            speech_path().to_str().unwrap(),
            "--heard",
            alice_wav.to_str().unwrap(),
            "--duration",
            "6",
        ],
    );
    alice.finish(WAIT);
    bob.finish(WAIT);

    assert!(alice.saw("user_ringing", "user", "bob"));
    assert!(alice.saw("user_joined", "user", "bob"));
    assert!(bob.saw("call_received", "caller", "alice"));
    for (me, other) in [(&alice, "bob"), (&bob, "alice")] {
        assert!(me.find("call_begins").is_some(), "{}", me.name);
        assert_eq!(me.end_reason(), "hang_up", "{}", me.name);
        let duration = me.find("call_ends").unwrap()["duration_ms"]
            .as_u64()
            .unwrap();
        assert!(
            (5_500..8_000).contains(&duration),
            "{}: {duration} ms",
            me.name
        );
        assert!(
            me.events.iter().any(|e| e["event"] == "audio_available"
                && e["user"] == other
                && e["available"] == true),
            "{}",
            me.name
        );
        assert!(me.media("packets_received") > 100, "{}", me.name);
        assert!(me.media("packets_sent") > 100, "{}", me.name);
        assert_eq!(me.media("bad_datagrams"), 0, "{}", me.name);
    }
    let sent = speech();
    let (score, windows) = speech_heard(
        &sent,
        &heard(&bob_wav),
        Duration::from_millis(200),
        Duration::from_secs(1),
    );
    println!("bob heard alice's speech: median correlation {score:.3} over {windows} windows");
    assert!(
        windows >= 3 && score >= MIN_CORRELATION,
        "{score} over {windows}"
    );
    // Alice heard Bob's tone, not speech.
    let (control, _) = speech_heard(
        &sent,
        &heard(&alice_wav),
        Duration::from_millis(200),
        Duration::from_secs(1),
    );
    println!("control (alice heard a tone): {control:.3}");
    assert!(control < 0.3, "{control}");
}

#[test]
fn one_to_one_video_call() {
    let _one_at_a_time = serial();
    let dir = scratch("video");
    let server = Server::start(&dir);
    let (bob_seen, alice_seen) = (dir.join("bob_seen"), dir.join("alice_seen"));
    let mut bob = device(
        &server,
        &dir,
        "answer",
        "bob",
        "phone",
        &["--seen", bob_seen.to_str().unwrap(), "--tone", "300"],
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
            "--camera",
            "synthetic",
            "--seen",
            alice_seen.to_str().unwrap(),
            "--tone",
            "500",
            "--duration",
            "6",
        ],
    );
    alice.finish(WAIT);
    bob.finish(WAIT);

    assert_eq!(bob.find("call_received").unwrap()["media"], "video");
    for (me, other, seen_dir) in [(&alice, "bob", &alice_seen), (&bob, "alice", &bob_seen)] {
        assert_eq!(me.find("call_begins").unwrap()["media"], "video");
        assert_eq!(me.end_reason(), "hang_up", "{}", me.name);
        let available = me
            .events
            .iter()
            .find(|e| e["event"] == "video_available" && e["available"] == true)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no video_available; media {:?}; saw {:?}",
                    me.name,
                    me.find("media_stopped").map(|e| e["summary"].to_string()),
                    me.events
                        .iter()
                        .map(|e| e["event"].as_str().unwrap_or("?"))
                        .collect::<Vec<_>>()
                )
            });
        assert_eq!(available["user"], other, "{}", me.name);
        assert_eq!(
            (available["width"].as_u64(), available["height"].as_u64()),
            (Some(320), Some(180)),
            "{}",
            me.name
        );
        // Audio flowed too.
        assert!(
            me.saw("audio_available", "user", other),
            "{}: no audio",
            me.name
        );
        // 6 s at 15 fps: 90 pictures each way, less the start (first keyframe, ramp).
        let (encoded, decoded, shown) = (
            me.media("video_frames_encoded"),
            me.media("video_frames_decoded"),
            me.media("video_frames_shown"),
        );
        println!(
            "{}: video encoded {encoded}, decoded {decoded}, shown {shown}",
            me.name
        );
        assert!((50..=100).contains(&encoded), "{}: {encoded}", me.name);
        assert!((50..=100).contains(&decoded), "{}: {decoded}", me.name);
        assert_eq!(shown, decoded, "{}", me.name);
        let file = seen(&seen_dir.join(format!("{other}.y4m")));
        assert_eq!((file.width, file.height), (320, 180), "{}", me.name);
        assert_eq!(file.counters.len() as u64, shown, "{}", me.name);
        // The other side's pattern, in order: frame numbers read back and rising.
        let numbers: Vec<u64> = file.counters.iter().flatten().copied().collect();
        assert!(
            numbers.len() * 10 >= file.counters.len() * 9,
            "{}: {} of {} frame numbers readable",
            me.name,
            numbers.len(),
            file.counters.len()
        );
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{}: {numbers:?}",
            me.name
        );
        assert!(
            numbers.last().unwrap() - numbers[0] >= 50,
            "{}: {numbers:?}",
            me.name
        );
    }
}

#[test]
fn reject() {
    let _one_at_a_time = serial();
    let dir = scratch("reject");
    let server = Server::start(&dir);
    let mut bob = device(&server, &dir, "answer", "bob", "phone", &["--reject"]);
    let mut alice = device(&server, &dir, "call", "alice", "laptop", &["--to", "bob"]);
    alice.finish(WAIT);
    bob.finish(WAIT);
    assert!(bob.saw("call_received", "caller", "alice"));
    assert_eq!(bob.end_reason(), "rejected");
    assert!(alice.saw("user_rejected", "user", "bob"));
    assert_eq!(alice.end_reason(), "rejected");
    assert!(alice.find("call_begins").is_none() && bob.find("call_begins").is_none());
}

#[test]
fn no_answer() {
    let _one_at_a_time = serial();
    let dir = scratch("no-answer");
    let server = Server::start(&dir);
    let mut bob = device(&server, &dir, "answer", "bob", "phone", &["--ignore"]);
    let mut alice = device(
        &server,
        &dir,
        "call",
        "alice",
        "laptop",
        &["--to", "bob", "--ring-timeout", "2"],
    );
    alice.finish(WAIT);
    bob.finish(WAIT);
    assert!(bob.saw("call_received", "caller", "alice"));
    assert!(alice.saw("user_no_answer", "user", "bob"));
    assert_eq!(alice.end_reason(), "no_answer");
    assert_eq!(bob.end_reason(), "no_answer");
    let rang = alice.find("call_ends").unwrap()["t_ms"].as_u64().unwrap()
        - alice.find("calling").unwrap()["t_ms"].as_u64().unwrap();
    assert!((1_900..5_000).contains(&rang), "rang {rang} ms");
}

#[test]
fn cancel() {
    let _one_at_a_time = serial();
    let dir = scratch("cancel");
    let server = Server::start(&dir);
    let mut bob = device(&server, &dir, "answer", "bob", "phone", &["--ignore"]);
    let mut alice = device(
        &server,
        &dir,
        "call",
        "alice",
        "laptop",
        &["--to", "bob", "--cancel-after", "1"],
    );
    alice.finish(WAIT);
    bob.finish(WAIT);
    assert!(bob.saw("call_received", "caller", "alice"));
    assert_eq!(alice.end_reason(), "cancelled");
    assert_eq!(bob.end_reason(), "cancelled");
}

#[test]
fn busy() {
    let _one_at_a_time = serial();
    let dir = scratch("busy");
    let server = Server::start(&dir);
    let mut bob = device(&server, &dir, "answer", "bob", "phone", &[]);
    let mut carol = device(
        &server,
        &dir,
        "call",
        "carol",
        "desk",
        &["--to", "bob", "--duration", "4"],
    );
    bob.wait_event("call_begins", WAIT);
    let mut alice = device(&server, &dir, "call", "alice", "laptop", &["--to", "bob"]);
    alice.finish(WAIT);
    carol.finish(WAIT);
    bob.finish(WAIT);
    assert!(alice.saw("user_busy", "user", "bob"));
    assert_eq!(alice.end_reason(), "busy");
    assert!(bob.saw("missed_while_busy", "caller", "alice"));
    // Bob's call with Carol went on and ended normally.
    assert_eq!(bob.end_reason(), "hang_up");
    assert_eq!(carol.end_reason(), "hang_up");
    assert!(bob.media("packets_received") > 0);
}

#[test]
fn two_devices_of_one_user() {
    let _one_at_a_time = serial();
    let dir = scratch("two-devices");
    let server = Server::start(&dir);
    let mut phone = device(&server, &dir, "answer", "bob", "phone", &[]);
    let mut laptop = device(
        &server,
        &dir,
        "answer",
        "bob",
        "laptop",
        &["--answer-after", "1.5"],
    );
    let mut alice = device(
        &server,
        &dir,
        "call",
        "alice",
        "laptop",
        &["--to", "bob", "--duration", "3"],
    );
    alice.finish(WAIT);
    phone.finish(WAIT);
    laptop.finish(WAIT);
    assert!(phone.saw("call_received", "caller", "alice"));
    assert!(laptop.saw("call_received", "caller", "alice"));
    assert_eq!(phone.end_reason(), "hang_up");
    assert_eq!(laptop.end_reason(), "answered_elsewhere");
    assert!(laptop.find("call_begins").is_none());
    assert_eq!(alice.end_reason(), "hang_up");
    assert!(phone.media("packets_received") > 0 && alice.media("packets_received") > 0);
}
