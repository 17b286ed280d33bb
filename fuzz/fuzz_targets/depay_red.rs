//! The RFC 2198 RED parser on arbitrary payloads; what parses is written back and must
//! parse to the same blocks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::payload::red::{RedBlock, RedPayload, write_red};

fuzz_target!(|data: &[u8]| {
    let Ok(red) = RedPayload::parse(data) else {
        return;
    };
    let redundant: Vec<RedBlock<'_>> = red.redundant().collect();
    assert_eq!(redundant.len(), red.redundant_count());
    let primary = red.primary();
    let total: usize = redundant.iter().map(|b| b.data.len()).sum::<usize>() + primary.data.len();
    // Four header bytes per redundant block and one for the primary: nothing left over.
    assert_eq!(total + 4 * redundant.len() + 1, data.len());
    let mut out = Vec::new();
    write_red(primary, &redundant, &mut out).expect("parsed blocks are within range");
    let again = RedPayload::parse(&out).expect("written payload parses");
    assert!(again.redundant().eq(redundant.iter().copied()));
    assert_eq!(again.primary(), primary);
    // A parsed payload is exactly headers + data, so writing it back reproduces it.
    assert_eq!(out, data);
});
