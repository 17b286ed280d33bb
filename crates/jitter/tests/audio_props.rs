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

/// Opus frames (24 kbps, 20 ms at 48 kHz) of a voiced test signal, encoded once.
fn red_test_frames() -> &'static [Vec<u8>] {
    use std::sync::OnceLock;
    use tincan_codec::AudioEncoder;
    use tincan_codec::opus::{OpusConfig, OpusEncoder};
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let config = OpusConfig::new(48_000, Channels::Mono).with_bitrate(24_000);
        let mut encoder = OpusEncoder::new(&config).expect("encoder");
        let mut packet = [0u8; 1500];
        (0..RED_FRAMES)
            .map(|k| {
                let frame: Vec<i16> = (0..960)
                    .map(|i| {
                        let t = (k * 960 + i) as f64 / 48_000.0;
                        ((t * 180.0 * std::f64::consts::TAU).sin() * 6000.0
                            + (t * 540.0 * std::f64::consts::TAU).sin() * 2000.0)
                            as i16
                    })
                    .collect();
                let len = encoder.encode(&frame, &mut packet).expect("encode");
                packet[..len].to_vec()
            })
            .collect()
    })
}

const RED_FRAMES: usize = 60;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// RED payloads of depth 0-4, any subset of them received (in order, no jitter, with
    /// a buffer delay that covers the deepest copy): every frame some received packet
    /// carries is played from it, only frames no packet carried are concealed, and the
    /// buffer stays within its bounds.
    #[test]
    fn red_copies_fill_every_hole_they_cover(
        depth in 0usize..=4,
        keep in prop::collection::vec(any::<bool>(), RED_FRAMES),
    ) {
        use tincan_rtp::payload::red::{RedEncoder, RedPayload};
        let frames = red_test_frames();
        let mut encoder = RedEncoder::new(depth).expect("depth");
        let mut payloads = Vec::new();
        for (k, frame) in frames.iter().enumerate() {
            let mut out = Vec::new();
            encoder.encode(111, (k * 960) as u32, frame, &mut out).expect("red");
            payloads.push(out);
        }
        // Which frames some received packet carries.
        let mut carried = [false; RED_FRAMES];
        for k in (0..RED_FRAMES).filter(|&k| keep[k]) {
            for back in 0..=depth.min(k) {
                carried[k - back] = true;
            }
        }
        let first = carried.iter().position(|&c| c);
        prop_assume!(first.is_some());
        let first = first.unwrap_or(0);
        let last = carried.iter().rposition(|&c| c).unwrap_or(0);
        let decoder = OpusPacketDecoder::new(OpusDecoder::new(48_000, Channels::Mono).expect("decoder"));
        let config = AudioJitterConfig {
            min_delay: Duration::from_millis(20 * depth as u64 + 40),
            ..AudioJitterConfig::default()
        };
        let mut buffer = AudioJitterBuffer::new(decoder, config).expect("buffer");
        let t0 = Instant::now();
        let mut out = vec![0i16; buffer.samples_per_pull()];
        let mut concealed_pulls = 0usize;
        let mut played_media = 0usize;
        for p in 0..(RED_FRAMES * 2 + 40) {
            let now = t0 + Duration::from_millis(10 * p as u64);
            if p % 2 == 0 && p / 2 < RED_FRAMES && keep[p / 2] {
                let k = p / 2;
                let red = RedPayload::parse(&payloads[k]).expect("own payload parses");
                for block in red.redundant() {
                    let index = k - usize::from(block.timestamp_offset) / 960;
                    let packet = AudioPacket { ssrc: 7, sequence: index as u16, timestamp: (index * 960) as u32, payload: block.data };
                    let _ = buffer.insert_recovered(packet, now);
                }
                let packet = AudioPacket { ssrc: 7, sequence: k as u16, timestamp: (k * 960) as u32, payload: red.primary().data };
                let _ = buffer.insert(packet, now);
            }
            let info = buffer.pull(now, &mut out).expect("pull");
            prop_assert!(buffer.packets_held() <= buffer.config().max_packets);
            prop_assert!(buffer.samples_held() <= buffer.max_samples_held());
            // Count concealment only while media from the first to the last carried frame
            // is due.
            if let Some(ts) = info.media_timestamp {
                let frame = ts as usize / 960;
                if frame >= first && frame <= last && played_media < (last + 1 - first) * 960 {
                    played_media += info.samples;
                    if info.samples_from_packets < info.samples {
                        concealed_pulls += 1;
                    }
                }
            }
        }
        let uncarried = carried[first..=last].iter().filter(|&&c| !c).count();
        // Each uncarried frame is two pulls; a merge after it may touch one more.
        prop_assert!(
            concealed_pulls <= 3 * uncarried,
            "depth {depth}: {concealed_pulls} concealing pulls for {uncarried} uncarried frames"
        );
    }
}
