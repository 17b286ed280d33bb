//! Property tests: whatever packets arrive, whenever, the audio buffer neither panics nor
//! grows beyond its bounds, and every pull yields exactly 10 ms.

use proptest::prelude::*;
use std::time::{Duration, Instant};
use tincan_codec::CodecError;
use tincan_codec::opus::OpusDecoder;
use tincan_jitter::{
    AudioJitterBuffer, AudioJitterConfig, AudioPacket, AudioPacketDecoder, OpusPacketDecoder,
    RecoverySource,
};
use tincan_media::Channels;

/// A decoder whose packets say their own length (first byte: 2.5 ms units), so any byte
/// string is a packet; odd first bytes carry redundancy.
#[derive(Debug)]
struct ScriptDecoder;

impl AudioPacketDecoder for ScriptDecoder {
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn channels(&self) -> usize {
        1
    }
    fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        let units = usize::from(*payload.first()? % 49);
        (units > 0).then_some(units * 40)
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let n = self
            .packet_samples(payload)
            .ok_or(CodecError::OutputTooSmall { got: 0, needed: 1 })?;
        let n = n.min(out.len());
        for (i, s) in out[..n].iter_mut().enumerate() {
            *s = (i as i16).wrapping_mul(331) ^ i16::from(payload[0]);
        }
        Ok(n)
    }
    fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        let n = samples.min(out.len());
        out[..n].fill(7);
        Ok(n)
    }
    fn recover(
        &mut self,
        next_payload: &[u8],
        _next_id: u64,
        _offset: usize,
        samples: usize,
        out: &mut [i16],
    ) -> Result<Option<RecoverySource>, CodecError> {
        if next_payload.first().is_some_and(|b| b % 2 == 1) {
            let n = samples.min(out.len());
            out[..n].fill(3);
            Ok(Some(RecoverySource::Other))
        } else {
            Ok(None)
        }
    }
    fn is_dtx(&self, payload: &[u8]) -> bool {
        payload.len() <= 2
    }
    fn reset(&mut self) {}
}

#[derive(Debug, Clone)]
enum Step {
    Insert {
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload: Vec<u8>,
    },
    /// A packet continuing the stream, slightly disordered.
    Next {
        skip: u8,
        back: bool,
        payload: Vec<u8>,
    },
    Advance(u16),
    Pull,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u32..3, any::<u16>(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..1600))
            .prop_map(|(ssrc, sequence, timestamp, payload)| Step::Insert { ssrc, sequence, timestamp, payload }),
        4 => (0u8..4, any::<bool>(), prop::collection::vec(any::<u8>(), 1..200))
            .prop_map(|(skip, back, payload)| Step::Next { skip, back, payload }),
        3 => (0u16..200).prop_map(Step::Advance),
        4 => Just(Step::Pull),
    ]
}

fn drive<D: AudioPacketDecoder>(mut jb: AudioJitterBuffer<D>, steps: &[Step], max_packets: usize) {
    let start = Instant::now();
    let mut now = start;
    let mut out = vec![0i16; jb.samples_per_pull() * jb.decoder().channels()];
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    for step in steps {
        match step {
            Step::Insert {
                ssrc,
                sequence: s,
                timestamp: t,
                payload,
            } => {
                let _ = jb.insert(
                    AudioPacket {
                        ssrc: *ssrc,
                        sequence: *s,
                        timestamp: *t,
                        payload,
                    },
                    now,
                );
                (sequence, timestamp) = (*s, *t);
            }
            Step::Next {
                skip,
                back,
                payload,
            } => {
                let k = u16::from(*skip);
                let (s, t) = if *back {
                    (
                        sequence.wrapping_sub(k),
                        timestamp.wrapping_sub(u32::from(k) * 960),
                    )
                } else {
                    (
                        sequence.wrapping_add(k + 1),
                        timestamp.wrapping_add(u32::from(k + 1) * 960),
                    )
                };
                let _ = jb.insert(
                    AudioPacket {
                        ssrc: 0,
                        sequence: s,
                        timestamp: t,
                        payload,
                    },
                    now,
                );
                if !*back {
                    (sequence, timestamp) = (s, t);
                }
            }
            Step::Advance(ms) => now += Duration::from_millis(u64::from(*ms)),
            Step::Pull => {
                let info = jb
                    .pull(now, &mut out)
                    .expect("one pull of output never fails");
                assert_eq!(info.samples, jb.samples_per_pull());
                assert!(info.samples_from_packets <= info.samples);
                now += Duration::from_millis(10);
            }
        }
        assert!(jb.packets_held() <= max_packets);
        assert!(jb.samples_held() <= jb.max_samples_held());
    }
    let stats = jb.stats();
    assert!(
        stats.concealed_samples + stats.jitter_buffer_emitted_count <= stats.total_samples_received
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_inserts_keep_the_buffer_bounded(steps in prop::collection::vec(step(), 1..400)) {
        let config = AudioJitterConfig { max_packets: 16, ..AudioJitterConfig::default() };
        drive(AudioJitterBuffer::new(ScriptDecoder, config).expect("valid"), &steps, 16);
    }

    #[test]
    fn any_bytes_through_opus_keep_the_buffer_bounded(steps in prop::collection::vec(step(), 1..150)) {
        let decoder = OpusPacketDecoder::new(OpusDecoder::new(48_000, Channels::Stereo).expect("decoder"));
        let config = AudioJitterConfig { max_packets: 32, ..AudioJitterConfig::default() };
        drive(AudioJitterBuffer::new(decoder, config).expect("valid"), &steps, 32);
    }
}
