//! The main job end to end: `tincan demo` runs every codec and reports figures that hold.

use std::process::Command;

#[test]
fn demo_reports_every_codec_with_sound_figures() {
    let json = std::env::temp_dir().join(format!("tincan-demo-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(["demo", "--video-seconds", "1", "--json"])
        .arg(&json)
        .output()
        .expect("run tincan demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for heading in [
        "Opus, 48 kHz mono",
        "Opus loss recovery",
        "H.264 (OpenH264)",
        "AV1 (dav1d)",
        "Resampling",
    ] {
        assert!(
            stdout.contains(heading),
            "missing section {heading:?} in:\n{stdout}"
        );
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("JSON report")).expect("valid JSON");
    let _ = std::fs::remove_file(&json);
    for run in report["opus"].as_array().expect("opus runs") {
        assert!(run["correlation"].as_f64().unwrap() > 0.9, "{run}");
        let kbps = run["kbps_sent"].as_f64().unwrap();
        assert!((25.0..40.0).contains(&kbps), "{run}");
    }
    for run in report["opus_loss"].as_array().expect("loss runs") {
        assert!(run["recovered_frames"].as_u64().unwrap() > 0, "{run}");
        assert!(
            run["recovered_spectral_correlation"].as_f64().unwrap()
                > run["plc_spectral_correlation"].as_f64().unwrap(),
            "{run}"
        );
    }
    for run in report["h264"].as_array().expect("h264 runs") {
        assert_eq!(run["frames"], 30, "{run}");
        assert!(run["psnr_y_mean_db"].as_f64().unwrap() >= 35.0, "{run}");
        assert_eq!(run["counters_read_back"], 30, "{run}");
    }
    assert_eq!(report["av1"]["frames"], 30);
    assert_eq!(report["av1"]["matching_ffmpeg_checksums"], 30);
    for run in report["resample"].as_array().expect("resample runs") {
        assert!(run["round_trip_snr_db"].as_f64().unwrap() > 30.0, "{run}");
    }
}
