//! Network profile files (TOML and JSON) from arbitrary text: a typed error or a profile
//! that validates and can drive a link, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use tincan_netsim::{Direction, Path, Poll, Profile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [Profile::from_toml_str(text), Profile::from_json_str(text)] {
        let Ok(profile) = parsed else { continue };
        // A profile that parsed must be usable: push a few packets through it.
        let Ok(mut path) = Path::<u32>::new(&profile, 1) else {
            continue;
        };
        let start = Instant::now();
        for k in 0..32u32 {
            let now = start + Duration::from_millis(u64::from(k) * 20);
            path.send(Direction::AToB, k, 1200, now);
            while let Poll::Deliver(_) = path.poll(Direction::AToB, now) {}
        }
    }
});
