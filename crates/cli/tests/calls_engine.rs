//! Two `CallEngine`s and an embedded server in one process: a 1:1 audio call over
//! loopback UDP. Alice's microphone is the speech fixture, Bob's a tone; Bob's speaker
//! is a callback collecting what he hears, Alice's a WAV file. Checks the events both
//! saw and that the speech Alice sent is what Bob heard.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tincan::engine::MediaSummary;
use tincan::signal::protocol::{EndReason, MediaType, UserId};
use tincan::{AudioInput, AudioOutput, CallEngine, CallOptions, EngineConfig, EngineEvent};
use tincan_media::wav::read_wav;
use tincan_server::{BackgroundServer, ServerConfig, TokenKey};

mod calls_common;
use calls_common::{speech_heard, speech_path};

const SECRET: &[u8] = b"engine test secret, 32 bytes....";
/// How long the call lasts once it began.
const TALK: Duration = Duration::from_secs(6);
/// What counts as speech heard: the median over 0.5 s windows of the best normalised
/// correlation of the window with what was heard (48 kHz → 8 kHz means). Other speech,
/// or silence, stays far below.
const MIN_CORRELATION: f64 = 0.6;
/// Where to look for a window of the speech in what was heard: from this much before its
/// place to this much after (the call's set-up and mouth-to-ear delay).
const BEFORE: Duration = Duration::from_millis(200);
const AFTER: Duration = Duration::from_secs(1);

fn token(user: &str) -> String {
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    TokenKey::new(SECRET.to_vec())
        .unwrap()
        .mint(&UserId::new(user).unwrap(), expiry)
}

/// Collects events until one matches `done` or `timeout` passes; returns them all.
fn until(
    engine: &CallEngine,
    seen: &mut Vec<EngineEvent>,
    timeout: Duration,
    done: impl Fn(&EngineEvent) -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Some(event) = engine.next_event(left) {
            let hit = done(&event);
            seen.push(event);
            if hit {
                return true;
            }
        }
    }
    false
}

fn summary(events: &[EngineEvent]) -> Option<MediaSummary> {
    events.iter().find_map(|e| match e {
        EngineEvent::MediaStopped { summary, .. } => Some(*summary),
        _ => None,
    })
}

#[test]
fn one_to_one_audio_call_carries_the_speech() {
    let server = BackgroundServer::start(ServerConfig::new(SECRET.to_vec())).unwrap();
    let url = server.ws_url();
    let dir = std::env::temp_dir().join(format!("tincan-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alice_heard = dir.join("alice_heard.wav");

    let mut config = EngineConfig::new(&url, "alice", "laptop", token("alice")).unwrap();
    config.audio_input = AudioInput::wav(speech_path());
    config.audio_output = AudioOutput::wav(&alice_heard);
    let alice = CallEngine::connect(config).unwrap();

    let bob_heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let into = Arc::clone(&bob_heard);
    let mut config = EngineConfig::new(&url, "bob", "phone", token("bob")).unwrap();
    // A steady tone is what noise suppression removes.
    config.denoise = false;
    config.audio_input = AudioInput::Tone {
        frequency_hz: 440.0,
        amplitude: 0.3,
    };
    config.audio_output = AudioOutput::callback(move |frame| {
        into.lock().unwrap().extend_from_slice(frame);
    });
    let bob = CallEngine::connect(config).unwrap();

    let (mut alice_seen, mut bob_seen) = (Vec::new(), Vec::new());
    let call_id = alice.call(CallOptions::audio(&["bob"]).unwrap()).unwrap();
    assert!(until(&bob, &mut bob_seen, Duration::from_secs(5), |e| {
        matches!(e, EngineEvent::CallReceived { caller, media: MediaType::Audio, .. } if caller.as_str() == "alice")
    }));
    bob.accept().unwrap();
    assert!(until(
        &bob,
        &mut bob_seen,
        Duration::from_secs(5),
        |e| matches!(e, EngineEvent::CallBegins { .. })
    ));
    assert!(until(
        &alice,
        &mut alice_seen,
        Duration::from_secs(5),
        |e| { matches!(e, EngineEvent::CallBegins { call_id: id, .. } if *id == call_id) }
    ));

    // Talk, then Alice hangs up.
    let talk_end = Instant::now() + TALK;
    assert!(!until(&alice, &mut alice_seen, TALK, |e| matches!(
        e,
        EngineEvent::CallEnds { .. }
    )));
    while Instant::now() < talk_end {
        std::thread::sleep(Duration::from_millis(10));
    }
    alice.hang_up().unwrap();
    for (engine, seen) in [(&alice, &mut alice_seen), (&bob, &mut bob_seen)] {
        assert!(until(engine, seen, Duration::from_secs(5), |e| matches!(
            e,
            EngineEvent::MediaStopped { .. }
        )));
    }

    // Events.
    let ended = |seen: &[EngineEvent]| {
        seen.iter().find_map(|e| match e {
            EngineEvent::CallEnds {
                reason, duration, ..
            } => Some((*reason, *duration)),
            _ => None,
        })
    };
    for (name, seen, other) in [("alice", &alice_seen, "bob"), ("bob", &bob_seen, "alice")] {
        let (reason, duration) = ended(seen).unwrap_or_else(|| panic!("{name}: {seen:?}"));
        assert_eq!(reason, EndReason::HangUp, "{name}");
        assert!(
            duration >= TALK - Duration::from_millis(500)
                && duration < TALK + Duration::from_secs(2),
            "{name}: {duration:?}"
        );
        assert!(
            seen.iter().any(|e| matches!(e,
                EngineEvent::AudioAvailable { user: Some(u), available: true, .. } if u.as_str() == other)),
            "{name} heard {other}: {seen:?}"
        );
        assert!(
            seen.iter().any(|e| matches!(e,
                EngineEvent::VoiceVolume { user: Some(u), volume, .. } if u.as_str() == other && *volume > 30)),
            "{name}: volume of {other}"
        );
        let media = summary(seen).unwrap();
        // 20 ms packets for about 6 s (fewer in the speech's pauses: DTX).
        assert!(media.packets_sent > 100, "{name}: {media:?}");
        assert!(media.packets_received > 100, "{name}: {media:?}");
        assert_eq!(media.bad_datagrams, 0, "{name}");
    }
    assert!(alice_seen.iter().any(|e| matches!(e,
        EngineEvent::UserRinging { endpoint, .. } if endpoint.user.as_str() == "bob")));
    assert!(alice_seen.iter().any(|e| matches!(e,
        EngineEvent::UserJoined { user, .. } if user.as_str() == "bob")));

    // Bob heard Alice's speech.
    let sent = tincan::engine::audio::load_wav_48k_mono(&speech_path()).unwrap();
    let heard = bob_heard.lock().unwrap().clone();
    let sent = &sent[..sent.len().min(heard.len().saturating_sub(48_000))];
    let (score, windows) = speech_heard(sent, &heard, BEFORE, AFTER);
    assert!(windows >= 3, "speech windows: {windows}");
    println!("bob heard alice's speech: median window correlation {score:.3}");
    assert!(score >= MIN_CORRELATION, "{score}");
    // Control: Alice's WAV holds Bob's tone, not speech; it is not the speech either.
    let alice_wav = read_wav(&alice_heard).unwrap();
    let tone = alice_wav.samples();
    assert!(tone.len() >= 48_000 * 5, "{}", tone.len());
    let (control, _) = speech_heard(sent, tone, BEFORE, AFTER);
    println!("control (alice's WAV of bob's tone): {control:.3}");
    assert!(control < 0.3, "{control}");
    let rms = (tone.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tone.len() as f64).sqrt();
    assert!(rms > 1000.0, "alice heard the tone: rms {rms}");

    alice.shutdown();
    bob.shutdown();
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
