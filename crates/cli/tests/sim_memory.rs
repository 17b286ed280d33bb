//! Memory stays flat over a long call: `tincan sim` samples its resident memory every 10
//! simulated seconds (`report.json`'s `memory`); over two simulated minutes of a 1:1 call
//! it may grow only by what the report's own lists take. `docs/SIM.md` has the 10-minute
//! figure (release).

mod common;

use common::{arg, read_json, run_tincan, scratch_dir};

/// Growth allowed from 30 s to 120 s: the report's lists grow by about 20 KiB in that time;
/// a leak of one small allocation per packet (100 a second) would add about 900 KiB.
const MAX_GROWTH_KIB: u64 = 512;

#[test]
fn resident_memory_is_flat_over_two_minutes() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = scratch_dir("sim-memory");
    run_tincan(["sim", "--quiet", "--duration", "120", "--out", arg(&dir)]);
    let report = read_json(&dir.join("report.json"));
    let samples: Vec<(f64, u64)> = report["memory"]
        .as_array()
        .expect("memory samples")
        .iter()
        .map(|m| (m["t_s"].as_f64().unwrap(), m["rss_kib"].as_u64().unwrap()))
        .collect();
    assert!(samples.len() >= 11, "{samples:?}");
    let at = |t: f64| {
        samples
            .iter()
            .find(|(s, _)| *s >= t - 0.5)
            .map(|(_, kib)| *kib)
            .expect("sample")
    };
    let (early, late) = (at(30.0), samples.last().unwrap().1);
    println!("resident memory: {early} KiB at 30 s, {late} KiB at 120 s");
    assert!(
        late <= early + MAX_GROWTH_KIB,
        "grew {} KiB: {samples:?}",
        late.saturating_sub(early)
    );
}
