//! `tincan sim` end to end: whole calls over netsim with real sessions, checked on what was
//! heard (speech present, mouth-to-ear delay measured from the audio) and on the outputs
//! (report fields, WAVs, a self-contained HTML page).

mod common;

use common::{arg, read_json, run_tincan, scratch_dir};
use serde_json::Value;

/// The budget on top of the one-way network delay, on `good`.
const MOUTH_TO_EAR_BUDGET_MS: f64 = 50.0;
/// `good`'s one-way propagation delay (tincan_netsim's profile).
const GOOD_ONE_WAY_MS: f64 = 20.0;
/// Mean window correlation that counts as "speech heard" on a clean path (unrelated
/// speech correlates at about 0.05; `tincan_pipeline`'s own call tests ask 0.7 too).
const HEARD_CLEAN: f64 = 0.7;
/// The same over 20% loss: concealment and redundancy change the waveform, not the words.
const HEARD_LOSSY: f64 = 0.6;

/// Runs a call and returns its report.
fn simulate(name: &str, extra: &[&str]) -> (Value, std::path::PathBuf) {
    let dir = scratch_dir(name);
    let mut args = vec!["sim", "--quiet", "--out", arg(&dir)];
    args.extend_from_slice(extra);
    run_tincan(&args);
    (read_json(&dir.join("report.json")), dir)
}

fn directions(report: &Value) -> &Vec<Value> {
    report["directions"].as_array().expect("directions")
}

fn f(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Every direction heard every measured window of speech with at least `correlation`.
fn assert_heard(report: &Value, correlation: f64) {
    for d in directions(report) {
        let m = &d["mouth_to_ear"];
        let label = format!("{}→{}", d["from"], d["to"]);
        assert!(m["windows"].as_u64().unwrap() >= 2, "{label}: {m}");
        assert_eq!(m["heard_windows"], m["windows"], "{label}: {m}");
        assert!(f(&m["mean_correlation"]) >= correlation, "{label}: {m}");
    }
}

#[test]
fn one_to_one_over_good_meets_the_delay_budget_and_writes_every_output() {
    let (report, dir) = simulate("sim-good", &["--duration", "9", "--profile", "good"]);
    assert_heard(&report, HEARD_CLEAN);
    for d in directions(&report) {
        let m = &d["mouth_to_ear"];
        // Measured from the audio: lag of the best correlation of mic and playout.
        assert!(
            f(&m["median_ms"]) <= GOOD_ONE_WAY_MS + MOUTH_TO_EAR_BUDGET_MS,
            "{d}"
        );
        assert!(f(&m["median_ms"]) >= GOOD_ONE_WAY_MS, "{m}");
        assert!(f(&d["network"]["mean_delay_ms"]) >= GOOD_ONE_WAY_MS - 5.0);
        assert!(f(&d["loss_after_recovery"]) < 0.2);
        assert!(!d["network_series"]["points"].as_array().unwrap().is_empty());
        assert!(!d["remote_stats"]["points"].as_array().unwrap().is_empty());
    }
    // The report's fields.
    for key in [
        "config",
        "speed",
        "participants",
        "directions",
        "relay",
        "memory",
    ] {
        assert!(!report[key].is_null(), "{key} missing");
    }
    assert!(f(&report["speed"]["times_real_time"]) > 0.0);
    assert_eq!(report["config"]["media"], "audio");
    let relay = &report["relay"];
    // Each participant speaks one 3 s turn: 150 packets at least (DTX may thin the rest).
    assert!(relay["rtp_out"].as_u64().unwrap() >= 300, "{relay}");
    assert_eq!(relay["malformed"], 0);
    assert_eq!(relay["ssrc_conflicts"], 0);
    for p in report["participants"].as_array().unwrap() {
        let stats = p["stats"]["points"].as_array().unwrap();
        assert!(stats.len() >= 4, "{p}");
        for key in [
            "target_bps",
            "send_bps",
            "estimated_bandwidth_bps",
            "jitter_buffer_delay_ms",
            "loss_before_recovery",
            "loss_after_recovery",
        ] {
            assert!(!stats[1][key].is_null(), "{key} missing in {}", stats[1]);
        }
        let most = stats.iter().filter_map(|s| s["send_bps"].as_u64()).max();
        assert!(most.is_some_and(|bps| bps > 10_000), "{most:?}");
        // good: 20 ms each way, 2 ms jitter.
        let rtt = p["final_stats"]["rtt_ms"].as_f64();
        assert!(
            rtt.is_some_and(|rtt| (30.0..60.0).contains(&rtt)),
            "{rtt:?}"
        );
        assert_eq!(p["session_errors"], 0);
        // WAVs: 48 kHz mono 16-bit, the call's length.
        for key in ["said_wav", "heard_wav"] {
            let path = dir.join(p[key].as_str().unwrap());
            let bytes = std::fs::metadata(&path).expect("WAV written").len();
            let samples = (bytes - 44) / 2;
            assert!(
                (9 * 48_000 - 480..=9 * 48_000).contains(&samples),
                "{path:?}: {samples}"
            );
        }
    }
    // The HTML page is self-contained: inline SVG, no external references.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("<svg") && html.contains("<polyline"));
    for external in ["http://", "https://", "src=", "<script", "<link"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let summary = std::fs::read_to_string(dir.join("summary.tsv")).expect("summary.tsv");
    assert_eq!(summary.lines().count(), 3);
}

#[test]
fn one_to_one_over_lossy_20_stays_intelligible() {
    let (report, _) = simulate(
        "sim-lossy",
        &["--duration", "9", "--profile", "lossy-20", "--seed", "2"],
    );
    assert_heard(&report, HEARD_LOSSY);
    for d in directions(&report) {
        // The network drops a fifth of the datagrams; the session's loss before recovery
        // counts sequence numbers (a packet sent twice is lost only if both copies are),
        // and after recovery what was concealed.
        let network = f(&d["network"]["loss"]);
        let before = f(&d["loss_before_recovery"]);
        let after = f(&d["loss_after_recovery"]);
        assert!(network > 0.1, "{d}");
        assert!(before <= network, "{d}");
        assert!(after < before, "recovery: {before} → {after}");
        // 30 ms one way plus the buffer that 20% loss needs.
        assert!(f(&d["mouth_to_ear"]["median_ms"]) < 250.0);
    }
}

#[test]
fn a_four_party_call_where_one_leaves_and_rejoins() {
    // Slots of 4 s: participant 1 speaks 1-4 s, 2 5-8 s, 3 9-12 s, 4 13-16 s. Participant
    // 4 is away from 2 s to 6 s: it misses turns 1 and 2, then hears 3 and is heard.
    let (report, _) = simulate(
        "sim-four",
        &[
            "--participants",
            "4",
            "--duration",
            "17",
            "--profile",
            "good",
            "--mic",
            "2=silence",
            "--leave",
            "4=2-6",
        ],
    );
    let all = directions(&report);
    assert_eq!(all.len(), 12);
    for d in all {
        let (from, to) = (d["from"].as_u64().unwrap(), d["to"].as_u64().unwrap());
        let m = &d["mouth_to_ear"];
        let measured = match (from, to) {
            (2, _) => false, // silent microphone
            (1, 4) => false, // 4 was away
            _ => true,
        };
        let windows = m["windows"].as_u64().unwrap();
        assert_eq!(windows >= 2, measured, "{from}→{to}: {m}");
        if measured {
            assert_eq!(m["heard_windows"], m["windows"], "{from}→{to}");
            assert!(f(&m["mean_correlation"]) >= HEARD_CLEAN, "{from}→{to}: {m}");
            assert!(f(&m["median_ms"]) <= GOOD_ONE_WAY_MS + MOUTH_TO_EAR_BUDGET_MS);
        }
        assert!(
            d["mos"].as_f64().is_some_and(|mos| mos > 3.5),
            "{from}→{to}: {}",
            d["mos"]
        );
    }
    let fourth = &report["participants"][3];
    assert_eq!(fourth["away"][0][0], 2.0);
    assert_eq!(fourth["away"][0][1], 6.0);
    // Three turns of 3 s, each to three listeners.
    assert!(report["relay"]["rtp_out"].as_u64().unwrap() >= 3 * 3 * 50 * 3);
}

#[test]
fn bad_options_fail_with_a_message() {
    for args in [
        &["sim", "--participants", "17"][..],
        &["sim", "--profile", "moon"],
        &["sim", "--link", "1:3=good"],
        &["sim", "--mic", "1=/nonexistent.wav"],
        &["sim", "--media", "video", "--fps", "0"],
        &["sim", "--start-kbps", "5"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tincan"))
            .args(args)
            .args(["--quiet", "--out", arg(&scratch_dir("sim-bad"))])
            .output()
            .expect("run tincan");
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(!output.stderr.is_empty(), "{args:?}: no message");
    }
}
