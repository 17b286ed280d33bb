//! `tincan sim` spreads the participants' work over threads, yet a call is a function of
//! its options: the same seed gives the same WAVs and the same report with one thread or
//! several (only the speed and memory figures may differ).

mod common;

use common::{arg, read_json, run_tincan, scratch_dir};

/// Runs the same 4-party call (a leave and rejoin) over `profile` with `media` on
/// `threads` threads; returns its output folder.
fn simulate(profile: &str, media: &str, threads: &str) -> std::path::PathBuf {
    let dir = scratch_dir(&format!("sim-threads-{profile}-{media}-{threads}"));
    run_tincan([
        "sim",
        "--quiet",
        "-n",
        "4",
        "--duration",
        "12",
        "--profile",
        profile,
        "--media",
        media,
        "--resolution",
        "320x180",
        "--leave",
        "3=5-8",
        "--seed",
        "7",
        "--threads",
        threads,
        "--out",
        arg(&dir),
    ]);
    dir
}

/// A jittery network with loss and reordering, whose fastest packet is as fast as light:
/// the call advances one instant at a time.
#[test]
fn the_outputs_do_not_depend_on_the_thread_count() {
    let (one, three) = (
        simulate("wifi", "audio", "1"),
        simulate("wifi", "audio", "3"),
    );
    compare(&one, &three, 0.0);
}

/// A lossy network no packet crosses in under 10 ms: the participants run ahead of each
/// other by that much, video included.
#[test]
fn running_ahead_does_not_depend_on_the_thread_count() {
    let (one, three) = (
        simulate("lossy-20", "both", "1"),
        simulate("lossy-20", "both", "3"),
    );
    compare(&one, &three, 10.0);
}

/// Same WAVs, same report (but for speed and memory), and the call did happen.
fn compare(one: &std::path::Path, three: &std::path::Path, lookahead_ms: f64) {
    let speed = read_json(&one.join("report.json"))["speed"].clone();
    assert_eq!(
        speed["lookahead_ms"].as_f64(),
        Some(lookahead_ms),
        "{speed}"
    );
    for p in 1..=4 {
        for kind in ["said", "heard"] {
            let name = format!("p{p}_{kind}.wav");
            let a = std::fs::read(one.join(&name)).expect("WAV");
            let b = std::fs::read(three.join(&name)).expect("WAV");
            assert!(a.len() > 1_000_000, "{name}: {} bytes", a.len());
            assert!(a == b, "{name} differs between 1 and 3 threads");
        }
    }
    let strip = |mut report: serde_json::Value| {
        let object = report.as_object_mut().expect("report object");
        assert!(object.remove("speed").is_some() && object.remove("memory").is_some());
        report
    };
    let a = strip(read_json(&one.join("report.json")));
    let b = strip(read_json(&three.join("report.json")));
    // The call did happen: the rejoin brought participant 3's audio back to the others.
    assert!(
        a["relay"]["rtp_out"].as_u64().unwrap() > 1_000,
        "{}",
        a["relay"]
    );
    assert_eq!(a, b, "reports differ between 1 and 3 threads");
}
