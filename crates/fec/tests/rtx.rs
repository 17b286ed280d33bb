//! RTX under arbitrary input: any packets sent and any NACKs never panic, the history and
//! queue stay bounded, and whatever is retransmitted restores to exactly what was sent.

use proptest::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tincan_fec::rtx::{RtxConfig, RtxReceiver, RtxSender};
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

#[derive(Debug, Clone)]
enum Step {
    Send {
        sequence: u16,
        len: usize,
        garbage: bool,
    },
    Nack {
        sequences: Vec<u16>,
        rtt_ms: u16,
    },
    Advance(u16),
    Drain,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<u16>(), 0usize..1600, prop::bool::weighted(0.05))
            .prop_map(|(sequence, len, garbage)| Step::Send { sequence, len, garbage }),
        2 => (prop::collection::vec(any::<u16>(), 0..40), 0u16..500)
            .prop_map(|(sequences, rtt_ms)| Step::Nack { sequences, rtt_ms }),
        1 => (0u16..2000).prop_map(Step::Advance),
        2 => Just(Step::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_sends_and_nacks_stay_bounded_and_restore_exactly(steps in prop::collection::vec(step(), 1..300)) {
        let config = RtxConfig { history_packets: 32, max_pending: 16, max_bitrate: 200_000, ..RtxConfig::new(1, 96, 2, 97) };
        let mut sender = RtxSender::new(config.clone()).expect("valid");
        let mut receiver = RtxReceiver::new(config);
        let mut now = Instant::now();
        // What was last sent under each sequence number (without padding: none is used).
        let mut sent: HashMap<u16, Vec<u8>> = HashMap::new();
        let mut out = [0u8; 1600];
        let mut restored = Vec::new();
        for step in steps {
            match step {
                Step::Send { sequence, len, garbage } => {
                    let payload = vec![sequence as u8; len];
                    let mut packet = Vec::new();
                    RtpPacketBuilder::new(96, sequence, u32::from(sequence) * 3000, 1)
                        .payload(&payload)
                        .write_vec(&mut packet)
                        .expect("valid");
                    if garbage {
                        packet.truncate(5);
                    }
                    sender.on_sent(&packet, now);
                    if !garbage && packet.len() <= tincan_fec::rtx::MAX_PACKET_LEN {
                        sent.insert(sequence, packet);
                    }
                }
                Step::Nack { sequences, rtt_ms } => {
                    sender.handle_nack(&sequences, Duration::from_millis(u64::from(rtt_ms)), now);
                }
                Step::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
                Step::Drain => {
                    while let Some(len) = sender.poll_transmit(&mut out) {
                        let sequence = receiver.unwrap(&out[..len], &mut restored).expect("our own RTX");
                        prop_assert_eq!(Some(&restored), sent.get(&sequence));
                        prop_assert!(RtpPacket::parse(&restored).is_ok());
                    }
                }
            }
            prop_assert!(sender.pending() <= 16);
        }
        let stats = sender.stats();
        prop_assert!(stats.retransmitted <= stats.nacked);
    }

    #[test]
    fn any_bytes_unwrap_to_an_error_or_a_valid_packet(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut receiver = RtxReceiver::new(RtxConfig::new(1, 96, 2, 97));
        let mut out = Vec::new();
        if receiver.unwrap(&data, &mut out).is_ok() {
            prop_assert!(RtpPacket::parse(&out).is_ok());
        }
    }
}
