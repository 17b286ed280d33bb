//! `tincan lab loss` end to end on a short clip: the manifest lists every run, each WAV is
//! there, and redundancy does what it costs: RED depth 2 at 20% loss conceals a fraction
//! of what PLC alone must, for about twice the bitrate; the adaptive scheme climbs the
//! ladder under loss.

use std::process::Command;

#[test]
fn lab_loss_writes_a_manifest_and_redundancy_pays() {
    let dir = std::env::temp_dir().join(format!("tincan-lab-loss-{}", std::process::id()));
    let speech = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/speech/speech_orig_16k.wav"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(["lab", "loss", "--speech", speech])
        .args([
            "--scheme", "plc", "--scheme", "red2", "--scheme", "adaptive",
        ])
        .args(["--condition", "random-0", "--condition", "random-20"])
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run tincan lab loss");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "lab failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("valid JSON");
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
    let _ = std::fs::remove_dir_all(&dir);
}
