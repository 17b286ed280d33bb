//! Signalling envelopes from arbitrary bytes: parsing never panics, what parses
//! serializes and parses back to the same envelope, and a call machine takes it in
//! without panicking.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tincan_signal::call::{CallMachine, CallMachineConfig, Output};
use tincan_signal::protocol::{DeviceId, Endpoint, UserId, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = parse(data) else {
        return;
    };
    let json = envelope.to_json();
    let again = parse(json.as_bytes()).expect("what parsed serializes to something that parses");
    assert_eq!(again, envelope);

    let me = Endpoint::new(
        UserId::new("bob").expect("valid id"),
        DeviceId::new("1").expect("valid id"),
    );
    let mut machine = CallMachine::new(CallMachineConfig::new(me, 1)).expect("default config");
    let start = Instant::now();
    machine.handle_message(&envelope, start);
    // Drain, then let every timer fire: whatever came in, the machine ends up idle.
    let mut now = start;
    for _ in 0..64 {
        match machine.poll_output() {
            Output::Timeout(at) => {
                now = at.max(now);
                machine.handle_timeout(now);
            }
            Output::Idle => break,
            Output::Send(_) | Output::Event(_) => {}
        }
    }
    assert!(now <= start + Duration::from_secs(200));
});
