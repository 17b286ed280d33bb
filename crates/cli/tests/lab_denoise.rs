//! `tincan lab denoise` end to end on one short clip: the manifest lists the clean run and
//! each noisy one with WAVs that exist, and the Rust-side figures hold: suppression raises
//! the segmental SNR of speech in 5 dB noise, clean speech comes through nearly unchanged,
//! and the VAD agrees with the energy reference of the clean speech. (PESQ and STOI need
//! Python: `cargo xtask quality DIR`, see docs/DENOISE.md.)

use std::process::Command;

#[test]
fn lab_denoise_improves_noisy_speech_and_keeps_clean_speech() {
    let dir = std::env::temp_dir().join(format!("tincan-lab-denoise-{}", std::process::id()));
    let speech = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/speech/hts1a.wav"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(["lab", "denoise", "--speech", speech])
        .args(["--noise", "white", "--noise", "brown", "--snr", "5"])
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run tincan lab denoise");
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
    assert_eq!(manifest["kind"], "denoise");
    let runs = manifest["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "clean, white and brown");
    for run in runs {
        for file in ["reference", "input", "output"] {
            assert!(dir.join(run[file].as_str().unwrap()).is_file(), "{run}");
        }
    }
    let figure = |run: &serde_json::Value, key: &str| run[key].as_f64().expect(key);

    let clean = runs
        .iter()
        .find(|r| r["noise"] == "none")
        .expect("clean run");
    // Nearly unchanged: the processed clean speech is within 12 dB segmental SNR of itself
    // (RNNoise's band gains leave an error ~20 dB down) and keeps its level.
    assert!(figure(clean, "segsnr_out_db") > 12.0, "{clean}");
    assert!(figure(clean, "level_change_db").abs() < 1.0, "{clean}");
    // The VAD marks speech and silence in clean speech: well above always saying "speech"
    // (the reference's share) and at least 90%.
    assert!(figure(clean, "vad_agreement") >= 0.9, "{clean}");
    assert!(
        figure(clean, "vad_agreement") > figure(clean, "reference_speech_share") + 0.2,
        "{clean}"
    );

    for noise in ["white", "brown"] {
        let run = runs.iter().find(|r| r["noise"] == noise).expect(noise);
        assert_eq!(run["snr_db"], 5.0);
        let gain = figure(run, "segsnr_out_db") - figure(run, "segsnr_in_db");
        assert!(gain > 4.0, "{noise}: segmental SNR +{gain:.1} dB: {run}");
        assert!(figure(run, "vad_agreement") >= 0.75, "{noise}: {run}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
