//! `tincan lab loss` end to end on a short clip: the manifest lists every run, each WAV is
//! there, and redundancy does what it costs: RED depth 2 at 20% loss conceals a fraction
//! of what PLC alone must, for about twice the bitrate; the adaptive scheme climbs the
//! ladder under loss.

mod common;

use common::{arg, read_json, run_tincan, scratch_dir, speech_fixture};

#[test]
fn lab_loss_writes_a_manifest_and_redundancy_pays() {
    let dir = scratch_dir("lab-loss");
    let speech = speech_fixture("speech_orig_16k.wav");
    run_tincan([
        "lab",
        "loss",
        "--speech",
        &speech,
        "--scheme",
        "plc",
        "--scheme",
        "red2",
        "--scheme",
        "adaptive",
        "--condition",
        "random-0",
        "--condition",
        "random-20",
        "--out",
        arg(&dir),
    ]);
    let manifest = read_json(&dir.join("manifest.json"));
    assert!(dir.join("reference.wav").is_file());
    let runs = manifest["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 6);
    for run in runs {
        assert!(dir.join(run["wav"].as_str().unwrap()).is_file(), "{run}");
    }
    let find = |scheme: &str, condition: &str| {
        runs.iter()
            .find(|r| r["scheme"] == scheme && r["condition"] == condition)
            .unwrap_or_else(|| panic!("{scheme} {condition}"))
    };
    let residual = |r: &serde_json::Value| r["residual_loss_pct"].as_f64().unwrap();
    let kbps = |r: &serde_json::Value| r["kbps_sent"].as_f64().unwrap();
    // No loss: next to nothing concealed by any scheme.
    for scheme in ["plc", "red2", "adaptive"] {
        assert!(residual(find(scheme, "random-0")) < 3.0, "{scheme}");
    }
    let plc = find("plc", "random-20");
    let red2 = find("red2", "random-20");
    assert!(residual(plc) > 15.0, "{plc}");
    assert!(residual(red2) < residual(plc) / 4.0, "{red2}");
    assert!(kbps(red2) > 1.8 * kbps(plc) && kbps(red2) < 2.6 * kbps(plc));
    let adaptive = find("adaptive", "random-20");
    assert!(residual(adaptive) < residual(plc) / 3.0, "{adaptive}");
    assert!(
        adaptive["policy"]["steps_up"].as_u64().unwrap() >= 1,
        "{adaptive}"
    );
    assert!(kbps(adaptive) <= 128.0);
    // Mouth-to-ear covers framing, the 50 ms path and the buffer: above 50 + 20 ms, and
    // within the limit at 0% loss.
    for run in runs {
        let m2e = run["mouth_to_ear_ms"].as_f64().unwrap();
        assert!(
            m2e > 75.0 && m2e <= run["mouth_to_ear_p95_ms"].as_f64().unwrap() + 1e-9,
            "{run}"
        );
    }
    assert!(find("plc", "random-0")["mouth_to_ear_ms"].as_f64().unwrap() < 150.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over a short path (10 ms one way) the policy asks for audio NACK, the receiver's NACKs
/// are answered by RTX, and retransmissions lower what must be concealed.
#[test]
fn lab_loss_uses_audio_nack_when_the_rtt_fits() {
    let dir = scratch_dir("lab-nack");
    let speech = speech_fixture("speech_orig_16k.wav");
    run_tincan([
        "lab",
        "loss",
        "--speech",
        &speech,
        "--scheme",
        "adaptive",
        "--scheme",
        "deepplc",
        "--condition",
        "random-50",
        "--delay-ms",
        "10",
        "--jitter-ms",
        "2",
        "--out",
        arg(&dir),
    ]);
    let manifest = read_json(&dir.join("manifest.json"));
    let runs = manifest["runs"].as_array().expect("runs");
    let adaptive = runs
        .iter()
        .find(|r| r["scheme"] == "adaptive")
        .expect("adaptive");
    let deep = runs
        .iter()
        .find(|r| r["scheme"] == "deepplc")
        .expect("deepplc");
    assert!(adaptive["nacks_sent"].as_u64().unwrap() > 10, "{adaptive}");
    assert!(
        adaptive["retransmissions"].as_u64().unwrap() > 10,
        "{adaptive}"
    );
    assert_eq!(deep["nacks_sent"], 0);
    let residual = |r: &serde_json::Value| r["residual_loss_pct"].as_f64().unwrap();
    assert!(
        residual(adaptive) < residual(deep) / 5.0,
        "{adaptive}\n{deep}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
