//! Every decoder behind the shared traits gets random and truncated data: each call returns
//! `Ok` or a typed error, never a panic, and audio output stays in range.

use tincan::codec::av1::Av1Decoder;
use tincan::codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan::codec::{AudioDecoder, AudioEncoder, EncodeRequest, VideoDecoder, VideoEncoder};
use tincan::media::source::{TestPattern, ToneSource};
use tincan::media::{AudioFormat, Channels, Resolution};

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn audio_decoders() -> Vec<(&'static str, Box<dyn AudioDecoder>)> {
    let mut decoders: Vec<(&'static str, Box<dyn AudioDecoder>)> = Vec::new();
    for (name, rate, channels) in [
        ("opus 48k mono", 48_000, Channels::Mono),
        ("opus 16k stereo", 16_000, Channels::Stereo),
    ] {
        decoders.push((
            name,
            Box::new(OpusDecoder::new(rate, channels).expect("decoder")),
        ));
    }
    decoders
}

fn video_decoders() -> Vec<(&'static str, Box<dyn VideoDecoder>)> {
    vec![
        ("h264", Box::new(H264Decoder::new().expect("decoder"))),
        ("av1", Box::new(Av1Decoder::new().expect("decoder"))),
    ]
}

/// Real packets of each kind, so truncations reach deep into the parsers.
fn opus_packets() -> Vec<Vec<u8>> {
    let config = OpusConfig::new(48_000, Channels::Mono)
        .with_inband_fec(true)
        .with_packet_loss_percent(20);
    let mut encoder = OpusEncoder::new(&config).expect("encoder");
    let mut tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3);
    let mut pcm = vec![0i16; encoder.frame_samples()];
    let mut packet = [0u8; 1500];
    (0..10)
        .map(|_| {
            tone.fill(&mut pcm);
            let len = encoder.encode(&pcm, &mut packet).expect("encode");
            packet[..len].to_vec()
        })
        .collect()
}

fn h264_units() -> Vec<Vec<u8>> {
    let mut encoder = H264Encoder::new(H264Config::default()).expect("encoder");
    let mut pattern = TestPattern::new(Resolution::new(160, 96).expect("size"), 30);
    let mut out = Vec::new();
    (0..4)
        .map(|_| {
            encoder
                .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
                .expect("encode");
            out.clone()
        })
        .collect()
}

#[test]
fn audio_decoders_survive_random_and_truncated_packets() {
    let mut rng = Rng(0x5eed);
    let packets = opus_packets();
    let mut pcm = vec![0i16; 5760 * 2];
    for (name, mut decoder) in audio_decoders() {
        let mut errors = 0;
        for len in 0..600 {
            let garbage = rng.bytes(len % 300);
            errors += usize::from(decoder.decode(&garbage, &mut pcm).is_err());
        }
        for packet in &packets {
            for cut in 0..=packet.len() {
                let _ = decoder.decode(&packet[..cut], &mut pcm);
            }
        }
        // Too small an output buffer is a typed error, not a write past its end.
        assert!(
            decoder.decode(&packets[0], &mut pcm[..10]).is_err(),
            "{name}"
        );
        assert!(
            decoder.conceal(960, &mut pcm).is_ok(),
            "{name}: concealment after garbage"
        );
        assert!(errors > 0, "{name}: random bytes should mostly be rejected");
        decoder.reset().expect("reset");
    }
}

#[test]
fn video_decoders_survive_random_and_truncated_units() {
    let mut rng = Rng(0xfeed);
    let units = h264_units();
    for (name, mut decoder) in video_decoders() {
        for len in [0, 1, 2, 3, 4, 5, 16, 100, 1000, 10_000] {
            let _ = decoder.decode(&rng.bytes(len));
        }
        // Annex B start codes followed by garbage reach the NAL parsers.
        for _ in 0..50 {
            let mut unit = vec![0, 0, 0, 1];
            unit.extend(rng.bytes(200));
            let _ = decoder.decode(&unit);
        }
        for unit in &units {
            for cut in (0..=unit.len()).step_by(7) {
                let _ = decoder.decode(&unit[..cut]);
            }
        }
        let _ = decoder.flush();
        eprintln!("{name}: survived");
    }
}
