//! `tincan lab denoise` end to end on one short clip: the manifest lists the clean run and
//! each noisy one with WAVs that exist, and the Rust-side figures hold: suppression raises
//! the segmental SNR of speech in 5 dB noise, the band limit acts on the noisy runs and not
//! on the clean one, clean speech comes through nearly unchanged, and the VAD agrees with the energy reference of the clean speech. (PESQ and STOI need
//! Python: `cargo xtask quality DIR`, see docs/DENOISE.md.)

mod common;

use common::{arg, read_json, run_tincan, scratch_dir, speech_fixture};

#[test]
fn lab_denoise_improves_noisy_speech_and_keeps_clean_speech() {
    let dir = scratch_dir("lab-denoise");
    let speech = speech_fixture("hts1a.wav");
    run_tincan([
        "lab",
        "denoise",
        "--speech",
        &speech,
        "--noise",
        "white",
        "--noise",
        "brown",
        "--snr",
        "5",
        "--out",
        arg(&dir),
    ]);
    let manifest = read_json(&dir.join("manifest.json"));
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
        // Segmental SNR compares waveforms sample by sample, so it also counts the band
        // limit's phase shift below its cutoff (its 8th-order low-pass at 4 kHz delays speech
        // by 0.16-0.3 ms under 3 kHz) as error, which the ear and PESQ do not: +4.6 dB in white noise and +2.7 dB
        // in brown with the limit, +6.8 and +10.5 dB without it, while PESQ-WB rises.
        let gain = figure(run, "segsnr_out_db") - figure(run, "segsnr_in_db");
        assert!(gain > 2.0, "{noise}: segmental SNR +{gain:.1} dB: {run}");
        assert!(figure(run, "vad_agreement") >= 0.75, "{noise}: {run}");
    }
    // The clip is narrowband (8 kHz, brought to 16 kHz) and white noise is not: the band
    // limit low-passes the noise above its speech once it has heard enough of it.
    let white = runs.iter().find(|r| r["noise"] == "white").expect("white");
    assert!(figure(white, "band_limited") > 0.3, "{white}");
    // Clean speech has no noise above it to remove.
    assert_eq!(figure(clean, "band_limited"), 0.0, "{clean}");
    let _ = std::fs::remove_dir_all(&dir);
}
