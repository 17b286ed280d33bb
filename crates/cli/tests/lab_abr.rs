//! `tincan lab abr` end to end: a short case with the real controller, and the fixed-rate
//! baseline whose figures are known in advance, checked on the JSON report and the plot.
//!
//! The step-half case cut at 40 s (capacity 2 → 1 Mbit/s at 30 s), with GCC and with a
//! 500 kbit/s fixed sender on the same network: a few seconds in a debug build.

use serde_json::Value;

mod common;

use common::{arg, read_json, run_tincan, scratch_dir};

fn number(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {value}"))
}

/// Runs the lab on step-half for `seconds` with `controller`; returns the JSON report and
/// the plot's text.
fn lab(name: &str, controller: &str, seconds: &str) -> (Value, String) {
    let dir = scratch_dir(&format!("lab-abr-{name}"));
    let json = dir.join("report.json");
    let out = dir.join("plots");
    run_tincan([
        "lab",
        "abr",
        "--case",
        "step-half",
        "--seconds",
        seconds,
        "--controller",
        controller,
        "--json",
        arg(&json),
        "--out",
        arg(&out),
        "--csv",
    ]);
    let report = read_json(&json);
    let svg = std::fs::read_to_string(out.join("step-half.svg")).expect("plot written");
    // The timeline: a header and one row per 50 ms.
    let csv = std::fs::read_to_string(out.join("step-half.csv")).expect("timeline written");
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("t_s,capacity_kbps,f1_target_kbps"),
        "{}",
        rows[0]
    );
    let seconds: f64 = seconds.parse().expect("seconds");
    assert_eq!(rows.len() - 1, (seconds * 20.0) as usize);
    assert!(
        rows.iter()
            .all(|r| r.split(',').count() == rows[0].split(',').count())
    );
    let _ = std::fs::remove_dir_all(&dir);
    (report, svg)
}

/// What every report must look like, whatever the controller.
fn check_sane(report: &Value, svg: &str, seconds: f64) -> Value {
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    let cases = report["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 1);
    let case = cases[0].clone();
    assert_eq!(case["case"], "step-half");
    assert_eq!(number(&case, "seconds"), seconds);
    let flows = case["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    let (sent, delivered) = (number(flow, "sent_kbps"), number(flow, "delivered_kbps"));
    // Something was sent; the bottleneck cannot deliver more than it got nor more than
    // its capacity (2 Mbit/s, then 1).
    assert!(sent > 50.0, "{flow}");
    assert!(delivered <= sent * 1.001 && delivered <= 2000.0, "{flow}");
    let utilisation = number(&case, "utilisation_pct");
    assert!((0.0..=100.5).contains(&utilisation), "{case}");
    // The queue never holds a packet longer than its 300 ms limit.
    let (mean, p95) = (
        number(flow, "queue_delay_mean_ms"),
        number(flow, "queue_delay_p95_ms"),
    );
    assert!(0.0 <= mean && mean <= p95 && p95 <= 300.5, "{flow}");
    let loss = number(flow, "loss_pct");
    assert!((0.0..=100.0).contains(&loss), "{flow}");
    assert!(
        number(flow, "frames") > 0.0 && number(flow, "keyframes") >= 1.0,
        "{flow}"
    );
    // The start (from nothing to 2 Mbit/s) and the one capacity change, and the
    // must-shows judged on this cut.
    let changes = case["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2);
    assert_eq!(number(&changes[0], "at_s"), 0.0);
    assert_eq!(number(&changes[0], "to_kbps"), 2000.0);
    assert_eq!(number(&changes[1], "at_s"), 30.0);
    assert_eq!(number(&changes[1], "from_kbps"), 2000.0);
    assert_eq!(number(&changes[1], "to_kbps"), 1000.0);
    for change in changes {
        let u = number(change, "utilisation_pct");
        assert!((0.0..=100.5).contains(&u), "{change}");
    }
    let criteria = report["criteria"].as_array().expect("criteria");
    assert!(
        criteria
            .iter()
            .any(|c| c["name"].as_str().is_some_and(|n| n.starts_with("loss")))
    );
    let halved = criteria
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.contains("halved")))
        .expect("the halving criterion");
    // It is judged on the change at 30 s.
    match changes[1]["time_under_ms"].as_f64() {
        Some(ms) => assert_eq!(number(halved, "measured"), ms),
        None => assert_eq!(halved["pass"], false),
    }
    assert_eq!(
        report["pass"].as_bool().expect("pass"),
        criteria.iter().all(|c| c["pass"] == true)
    );
    case
}

#[test]
fn lab_abr_reports_sane_figures() {
    // The fixed 500 kbit/s baseline on a 2 Mbit/s path: everything arrives, nothing waits,
    // and the rate is what was asked for.
    let (fixed, svg) = lab("fixed", "fixed:500000", "40");
    assert_eq!(fixed["controller"], "fixed:500000");
    let case = check_sane(&fixed, &svg, 40.0);
    let flow = &case["flows"][0];
    assert_eq!(number(flow, "loss_pct"), 0.0, "{flow}");
    let sent = number(flow, "sent_kbps");
    assert!((450.0..=550.0).contains(&sent), "{flow}");
    // Capacity over 40 s: 2 Mbit/s for 30 s and 1 for 10, so utilisation is sent / 17.5 %.
    assert!(
        (number(&case, "utilisation_pct") - sent / 17.5).abs() < 1.0,
        "{case}"
    );
    assert!(number(flow, "queue_delay_p95_ms") < 10.0, "{flow}");
    assert_eq!(number(flow, "probes"), 0.0);
    // 500 kbit/s never reaches 90% of 2 Mbit/s, and is under 1 Mbit/s at once.
    assert!(case["changes"][0]["time_to_90pct_ms"].is_null(), "{case}");
    assert!(
        number(&case["changes"][1], "time_under_ms") <= 100.0,
        "{case}"
    );

    // GCC through the halving: the controller ramps up from its 300 kbit/s start, sees
    // feedback, and its target is reported.
    let (gcc, svg) = lab("gcc", "gcc", "40");
    assert_eq!(gcc["controller"], "gcc");
    let case = check_sane(&gcc, &svg, 40.0);
    let flow = &case["flows"][0];
    assert!(number(flow, "feedbacks") > 40.0 * 10.0, "{flow}");
    assert_eq!(number(flow, "feedback_errors"), 0.0, "{flow}");
    assert!(number(flow, "target_kbps") > 300.0, "{flow}");
}
