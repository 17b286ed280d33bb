//! Memory stays flat over a long call: `tincan sim` samples its resident memory every 10
//! simulated seconds (`report.json`'s `memory`); over two simulated minutes of a 1:1 call
//! it may grow only by what the report's own lists take. `docs/SIM.md` has the 10-minute
//! figure (release).

mod common;

use common::{arg, read_json, run_tincan, scratch_dir};

/// Growth allowed from 30 s to 120 s beyond the report's own lists (which the report counts
/// in `report_kib`): a leak of one small allocation per packet (100 a second) would add
/// about 900 KiB.
const MAX_GROWTH_KIB: u64 = 512;

#[test]
fn resident_memory_is_flat_over_two_minutes() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = scratch_dir("sim-memory");
    run_tincan(["sim", "--quiet", "--duration", "120", "--out", arg(&dir)]);
    let report = read_json(&dir.join("report.json"));
    // (simulated second, resident KiB, KiB of the report's own series and measurements)
    let samples: Vec<(f64, u64, u64)> = report["memory"]
        .as_array()
        .expect("memory samples")
        .iter()
        .map(|m| {
            (
                m["t_s"].as_f64().unwrap(),
                m["rss_kib"].as_u64().unwrap(),
                m["report_kib"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(samples.len() >= 11, "{samples:?}");
    let early = *samples
        .iter()
        .find(|(t, _, _)| *t >= 29.5)
        .expect("a sample at 30 s");
    let late = *samples.last().unwrap();
    println!(
        "resident memory: {} KiB at 30 s, {} KiB at 120 s; the report's series {} and {} KiB",
        early.1, late.1, early.2, late.2
    );
    assert!(late.2 >= early.2, "the report's series shrank: {samples:?}");
    // Growth beyond the report's own (bounded) series and measurements.
    let own = |(_, rss, report): (f64, u64, u64)| rss.saturating_sub(report);
    assert!(
        own(late) <= own(early) + MAX_GROWTH_KIB,
        "grew {} KiB beyond the report: {samples:?}",
        own(late).saturating_sub(own(early))
    );
}
