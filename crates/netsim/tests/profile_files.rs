//! Profile files: any text gives a profile or a typed error, never a panic.

use proptest::prelude::*;
use tincan_netsim::{Link, Profile};

/// Lines a profile file may contain, valid or not, to build plausible random files.
const LINES: &[&str] = &[
    "[link]",
    "[b_to_a]",
    "[link.gilbert_elliott]",
    "[[link.outages]]",
    "[[link.capacity_trace]]",
    "[[link.delay_trace]]",
    "name = \"x\"",
    "loss = 0.5",
    "loss = -1",
    "loss = nan",
    "p = 0.2",
    "r = 2",
    "delay_ms = 1e300",
    "delay_ms = inf",
    "jitter_ms = 3",
    "capacity_bps = 0",
    "capacity_bps = 1e6",
    "at_ms = 5",
    "start_ms = 1",
    "duration_ms = 1",
    "queue_limit_bytes = 0",
    "queue_limit_ms = 10",
    "spike_shape = 0",
    "allow_reorder = true",
    "reorder_probability = 0.1",
    "max_in_flight_packets = 0",
    "unknown = 1",
];

proptest! {
    #[test]
    fn random_toml_never_panics(lines in proptest::collection::vec(0..LINES.len(), 0..12)) {
        let text: String = lines.iter().map(|&i| format!("{}\n", LINES[i])).collect();
        if let Ok(profile) = Profile::from_toml_str(&text) {
            // A profile that validates must build links.
            prop_assert!(Link::<()>::new(profile.a_to_b().clone(), 1).is_ok());
            prop_assert!(Link::<()>::new(profile.b_to_a().clone(), 1).is_ok());
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Profile::from_toml_str(&text);
        let _ = Profile::from_json_str(&text);
    }
}
