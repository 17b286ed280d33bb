//! Writes the fuzz seed corpora in `fuzz/seeds/<target>/`: small real inputs of each format,
//! so the fuzzers start from valid structure (the C codec libraries are not coverage
//! instrumented, so libFuzzer cannot discover their formats by itself).
//!
//! `cargo run --example fuzz_seeds` regenerates them; the output is deterministic.

use std::error::Error;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use tincan::codec::h264::{H264Config, H264Encoder};
use tincan::codec::opus::{OpusConfig, OpusEncoder};
use tincan::codec::{AudioEncoder, EncodeRequest, VideoEncoder};
use tincan::media::ivf::IvfReader;
use tincan::media::source::{TestPattern, ToneSource};
use tincan::media::y4m::Y4mWriter;
use tincan::media::{AudioFormat, AudioFrame, Channels, Resolution, wav};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("fuzz/seeds");
    let speech = wav::read_wav(root.join("fixtures/speech/hts1a.wav"))?;

    // Opus: a voiced-like mix of tones, with FEC and DRED so those parsers see real data.
    // The opus_decode target's first byte selects the rate (index 4 = 48 kHz mono).
    let config = OpusConfig::new(48_000, Channels::Mono)
        .with_bitrate(40_000)
        .with_inband_fec(true)
        .with_packet_loss_percent(20)
        .with_dred_duration(std::time::Duration::from_millis(200));
    let mut encoder = OpusEncoder::new(&config)?;
    let mut tone = ToneSource::multi(
        AudioFormat::MONO_48K,
        &[(180.0, 0.2), (720.0, 0.1), (2100.0, 0.05)],
    );
    let mut pcm = vec![0i16; encoder.frame_samples()];
    let mut packet = [0u8; 1500];
    for k in 0..30 {
        tone.fill(&mut pcm);
        let len = encoder.encode(&pcm, &mut packet)?;
        if k % 5 == 4 {
            let mut seed = vec![4u8];
            seed.extend_from_slice(&packet[..len]);
            write(&seeds.join("opus_decode"), &format!("packet_{k:02}"), &seed)?;
            // opus_dred's first byte is the number of lost frames before the packet.
            seed[0] = 3;
            write(&seeds.join("opus_dred"), &format!("packet_{k:02}"), &seed)?;
        }
    }

    // H.264: a short Annex B stream; the first byte is the chunk size selector.
    let mut h264 = H264Encoder::new(H264Config {
        bitrate_bps: 300_000,
        ..H264Config::default()
    })?;
    let mut pattern = TestPattern::new(Resolution::new(160, 96)?, 30);
    let mut stream = vec![255u8];
    let mut unit = Vec::new();
    for _ in 0..3 {
        h264.encode(&pattern.next_frame(), EncodeRequest::default(), &mut unit)?;
        stream.extend_from_slice(&unit);
    }
    write(&seeds.join("h264_decode"), "stream_160x96", &stream)?;

    // AV1: the first temporal units of the fixture.
    let ivf_bytes = fs::read(root.join("fixtures/video/testsrc2_320x180_30f.ivf"))?;
    let mut reader = IvfReader::new(Cursor::new(&ivf_bytes))?;
    for k in 0..3 {
        if let Some(frame) = reader.read_frame()? {
            let mut seed = vec![255u8];
            seed.extend_from_slice(&frame.data);
            write(&seeds.join("av1_decode"), &format!("unit_{k}"), &seed)?;
        }
    }
    // IVF: the fixture's header and first frames, cut short to stay small.
    write(
        &seeds.join("ivf_read"),
        "fixture_head",
        &ivf_bytes[..ivf_bytes.len().min(4096)],
    )?;

    // WAV: a short clip of real speech, mono and stereo.
    let clip = AudioFrame::from_samples(speech.format(), speech.samples()[..800].to_vec())?;
    let mut bytes = Cursor::new(Vec::new());
    wav::write_wav_to(&mut bytes, &clip)?;
    write(&seeds.join("wav_read"), "speech_mono", bytes.get_ref())?;
    let stereo_format = AudioFormat::new(8_000, Channels::Stereo)?;
    let stereo: Vec<i16> = clip.samples().iter().flat_map(|&s| [s, s / 2]).collect();
    let mut bytes = Cursor::new(Vec::new());
    wav::write_wav_to(
        &mut bytes,
        &AudioFrame::from_samples(stereo_format, stereo)?,
    )?;
    write(&seeds.join("wav_read"), "speech_stereo", bytes.get_ref())?;

    // Y4M: two small frames of the test pattern.
    let resolution = Resolution::new(32, 16)?;
    let mut y4m = Y4mWriter::new(Vec::new(), resolution, 30, 1)?;
    let mut small = TestPattern::new(resolution, 30);
    y4m.write_frame(&small.next_frame())?;
    y4m.write_frame(&small.next_frame())?;
    write(&seeds.join("y4m_read"), "pattern_32x16", &y4m.finish()?)?;

    println!("fuzz seeds written to {}", seeds.display());
    Ok(())
}
