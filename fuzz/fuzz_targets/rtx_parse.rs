//! RTX packets from arbitrary bytes: restoring never panics, and what it restores parses
//! as RTP and wraps back to the same RTX packet (without padding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_fec::rtx::{RtxConfig, RtxReceiver, wrap};
use tincan_rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    let mut receiver = RtxReceiver::new(RtxConfig::new(0x1234, 96, 0x5678, 97));
    let mut restored = Vec::new();
    if let Ok(sequence) = receiver.unwrap(data, &mut restored) {
        let packet = RtpPacket::parse(&restored).expect("restored packets are RTP");
        assert_eq!(packet.sequence_number().0, sequence);
        let rtx = RtpPacket::parse(data).expect("it parsed before");
        let mut again = vec![0u8; restored.len() + 2];
        let len = wrap(&restored, 0x5678, 97, rtx.sequence_number().0, &mut again).expect("fits");
        // Same header and payload as the input, minus any padding it had.
        assert_eq!(&again[4..len], &data[4..len]);
    }
});
