//! Video codecs end to end: H.264 round trips of the synthetic test pattern, AV1 decoding
//! of a reference fixture checked pixel-exact against ffmpeg, and decoder robustness.

use proptest::prelude::*;
use tincan_codec::av1::{Av1Config, Av1Decoder};
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::{CodecError, EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_media::ivf::IvfReader;
use tincan_media::quality::adler32_update;
use tincan_media::source::{TestPattern, read_frame_counter};
use tincan_media::{Resolution, VideoFrame};

const AV1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/video/testsrc2_320x180_30f.ivf"
);
const AV1_FRAMECRC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/video/testsrc2_320x180_30f.framecrc"
);

fn av1_fixture_frames() -> Vec<Vec<u8>> {
    let file = std::fs::File::open(AV1_FIXTURE).expect("AV1 fixture");
    let mut reader = IvfReader::new(file).expect("IVF header");
    assert_eq!(&reader.fourcc(), b"AV01");
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame().expect("IVF frame") {
        frames.push(frame.data);
    }
    frames
}

/// Per-frame checksums from an ffmpeg `framecrc` file (last column, `0x…`).
fn framecrc_checksums(text: &str) -> Vec<u32> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let last = line.rsplit(',').next().unwrap().trim();
            u32::from_str_radix(last.trim_start_matches("0x"), 16).expect("hex checksum")
        })
        .collect()
}

struct RoundTrip {
    psnr: Vec<f64>,
    bytes: usize,
    skipped: usize,
    keyframes: Vec<usize>,
}

/// Encodes `frames` frames of the test pattern, decodes every output, checks the frame
/// counter of each decoded picture and collects luma PSNR.
fn h264_round_trip(resolution: Resolution, bitrate_bps: u32, frames: usize) -> RoundTrip {
    let config = H264Config {
        bitrate_bps,
        max_frame_rate: 30.0,
        resolution: Some(resolution),
        ..H264Config::default()
    };
    let mut encoder = H264Encoder::new(config).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut result = RoundTrip {
        psnr: Vec::new(),
        bytes: 0,
        skipped: 0,
        keyframes: Vec::new(),
    };
    for index in 0..frames {
        let source = pattern.next_frame();
        let info = encoder
            .encode(&source, EncodeRequest::default(), &mut out)
            .unwrap();
        assert_eq!(info.len, out.len());
        if info.len == 0 {
            result.skipped += 1;
            continue;
        }
        if info.keyframe {
            result.keyframes.push(index);
        }
        result.bytes += info.len;
        let decoded = decoder
            .decode(&out)
            .unwrap()
            .unwrap_or_else(|| panic!("frame {index} gave no picture"));
        assert_eq!(decoded.resolution(), resolution);
        assert_eq!(
            read_frame_counter(&decoded),
            Some(index as u64),
            "frame counter of frame {index}"
        );
        result.psnr.push(decoded.psnr(&source, 0).unwrap());
    }
    assert!(decoder.flush().unwrap().is_empty(), "nothing held back");
    result
}

fn summarize(label: &str, result: &RoundTrip, frames: usize) -> (f64, f64) {
    let min = result.psnr.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = result.psnr.iter().sum::<f64>() / result.psnr.len() as f64;
    let kbps = result.bytes as f64 * 8.0 * 30.0 / frames as f64 / 1000.0;
    println!(
        "{label}: luma PSNR min {min:.2} dB, mean {mean:.2} dB, {kbps:.0} kbit/s, {} skipped, keyframes at {:?}",
        result.skipped, result.keyframes
    );
    (min, mean)
}

#[test]
fn h264_360p_at_1mbps_keeps_quality_and_frame_order() {
    let result = h264_round_trip(Resolution::P360, 1_000_000, 60);
    let (min, mean) = summarize("H.264 640x360 1 Mbit/s", &result, 60);
    assert!(mean >= 35.0, "mean PSNR {mean:.2} dB");
    assert!(min >= 30.0, "min PSNR {min:.2} dB");
    assert_eq!(
        result.keyframes,
        vec![0],
        "only the first frame is a keyframe"
    );
    assert!(result.skipped <= 3, "{} frames skipped", result.skipped);
}

#[test]
fn h264_720p_short_run() {
    let result = h264_round_trip(Resolution::P720, 2_500_000, 15);
    let (_, mean) = summarize("H.264 1280x720 2.5 Mbit/s", &result, 15);
    assert!(mean >= 35.0, "mean PSNR {mean:.2} dB");
}

#[test]
fn h264_forced_keyframe_is_an_idr_that_decodes_alone() {
    let resolution = Resolution::new(320, 180).unwrap();
    let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    let mut out = Vec::new();
    for index in 0..12u64 {
        let source = pattern.next_frame();
        let request = EncodeRequest {
            force_keyframe: index == 7,
        };
        let info = encoder.encode(&source, request, &mut out).unwrap();
        assert_eq!(info.keyframe, index == 0 || index == 7, "frame {index}");
        if index == 7 {
            // A keyframe carries its parameter sets: a fresh decoder can start here.
            let decoded = H264Decoder::new()
                .unwrap()
                .decode(&out)
                .unwrap()
                .expect("picture");
            assert_eq!(read_frame_counter(&decoded), Some(7));
        }
    }
}

#[test]
fn h264_resolution_change_restarts_with_a_keyframe() {
    let big = Resolution::P360;
    let small = Resolution::new(320, 180).unwrap();
    let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut big_pattern = TestPattern::new(big, 30);
    let mut small_pattern = TestPattern::new(small, 30);
    let mut out = Vec::new();
    for index in 0..20u64 {
        let (source, expected) = if index < 10 {
            (big_pattern.next_frame(), big)
        } else {
            // Keep the counter running across the switch.
            while small_pattern.frame_index() < index {
                small_pattern.next_frame();
            }
            (small_pattern.next_frame(), small)
        };
        let info = encoder
            .encode(&source, EncodeRequest::default(), &mut out)
            .unwrap();
        assert_eq!(info.keyframe, index == 0 || index == 10, "frame {index}");
        let decoded = decoder.decode(&out).unwrap().expect("picture");
        assert_eq!(decoded.resolution(), expected, "frame {index}");
        assert_eq!(read_frame_counter(&decoded), Some(index));
        assert!(decoded.psnr(&source, 0).unwrap() > 30.0);
    }
}

#[test]
fn h264_bitrate_changes_at_runtime_steer_the_output_size() {
    let resolution = Resolution::P360;
    let mut encoder = H264Encoder::new(H264Config {
        bitrate_bps: 1_500_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    let mut out = Vec::new();
    let mut bytes = [0usize; 2];
    for index in 0..90 {
        if index == 45 {
            encoder.set_bitrate(250_000).unwrap();
        }
        let info = encoder
            .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
            .unwrap();
        assert!(
            !info.keyframe || index == 0,
            "no keyframe spent on the rate change"
        );
        if info.len > 0 {
            decoder.decode(&out).unwrap().expect("picture");
        }
        // Skip the first 15 frames of each half while rate control settles.
        if index % 45 >= 15 {
            bytes[index / 45] += info.len;
        }
    }
    // 30 frames counted per half: one second each.
    let kbps = bytes.map(|b| b as f64 * 8.0 / 1000.0);
    println!(
        "H.264 rate change: {:.0} kbit/s at 1.5 Mbit/s, {:.0} kbit/s at 250 kbit/s",
        kbps[0], kbps[1]
    );
    assert!(kbps[1] < kbps[0] / 2.0, "{kbps:?}");
    assert!(kbps[1] < 400.0, "{kbps:?}");
}

#[test]
fn h264_output_buffer_is_reused() {
    let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
    let mut pattern = TestPattern::new(Resolution::new(320, 180).unwrap(), 30);
    let mut out = Vec::with_capacity(256 * 1024);
    let pointer = out.as_ptr();
    for _ in 0..10 {
        encoder
            .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
            .unwrap();
        assert_eq!(out.as_ptr(), pointer);
    }
}

#[test]
fn av1_fixture_decodes_bit_exact() {
    let frames = av1_fixture_frames();
    assert_eq!(frames.len(), 30);
    let expected = framecrc_checksums(&std::fs::read_to_string(AV1_FRAMECRC).unwrap());
    assert_eq!(expected.len(), 30);
    let mut decoder = Av1Decoder::new().unwrap();
    let mut decoded = Vec::new();
    for data in &frames {
        // Frame delay 1: every temporal unit gives its picture at once.
        decoded.push(
            decoder
                .decode(data)
                .unwrap()
                .expect("picture per temporal unit"),
        );
    }
    assert!(decoder.flush().unwrap().is_empty());
    let mut packed = Vec::new();
    for (index, (frame, &crc)) in decoded.iter().zip(&expected).enumerate() {
        assert_eq!(frame.resolution(), Resolution::new(320, 180).unwrap());
        frame.write_packed_i420(&mut packed);
        assert_eq!(packed.len(), 86_400);
        // ffmpeg's framecrc is Adler-32 seeded with 0 rather than the standard 1.
        let checksum = adler32_update(0, &packed);
        assert_eq!(
            checksum, crc,
            "frame {index}: Adler-32 {checksum:#010x}, ffmpeg {crc:#010x}"
        );
    }
    println!("AV1: 30 frames of 320x180 match ffmpeg's framecrc");
}

#[test]
fn av1_with_threads_and_delay_drains_on_flush() {
    let frames = av1_fixture_frames();
    let config = Av1Config {
        threads: 2,
        max_frame_delay: 0,
        ..Av1Config::default()
    };
    let mut decoder = Av1Decoder::with_config(config).unwrap();
    let mut count = 0;
    for data in &frames {
        count += usize::from(decoder.decode(data).unwrap().is_some());
    }
    count += decoder.flush().unwrap().len();
    assert_eq!(count, 30);
}

#[test]
fn av1_odd_size_is_unsupported_resolution() {
    let mut first = av1_fixture_frames().swap_remove(0);
    // Temporal delimiter (12 00), then the sequence header OBU (0a 0b: type 1, 11 bytes).
    // Its bits: profile 0, no timing info, one operating point at level 0, 9 width bits,
    // 8 height bits, then max_frame_width_minus_1 = 319 ending in bit 45 of the payload,
    // i.e. mask 0x04 of payload byte 5 = byte 9 of the unit. Clearing it gives 318: a
    // 319-pixel-wide picture with the same 4x4 block grid, which dav1d decodes.
    assert_eq!(&first[..4], &[0x12, 0x00, 0x0a, 0x0b]);
    assert_eq!(first[9], 0xfe);
    first[9] = 0xfa;
    let mut decoder = Av1Decoder::new().unwrap();
    assert!(matches!(
        decoder.decode(&first),
        Err(CodecError::UnsupportedResolution {
            width: 319,
            height: 180
        })
    ));
}

#[test]
fn odd_and_out_of_range_sizes_are_typed_errors() {
    assert!(
        Resolution::new(641, 360).is_err(),
        "odd frames cannot even be built"
    );
    let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
    let mut out = Vec::new();
    for (width, height) in [(8, 8), (4096, 2304)] {
        let frame = VideoFrame::black(Resolution::new(width, height).unwrap());
        assert!(matches!(
            encoder.encode(&frame, EncodeRequest::default(), &mut out),
            Err(CodecError::UnsupportedResolution { .. })
        ));
    }
    assert!(matches!(
        H264Encoder::new(H264Config {
            bitrate_bps: 0,
            ..H264Config::default()
        }),
        Err(CodecError::Unsupported { .. })
    ));
    // The encoder still works after rejecting frames.
    let frame = VideoFrame::black(Resolution::new(64, 64).unwrap());
    assert!(
        encoder
            .encode(&frame, EncodeRequest::default(), &mut out)
            .unwrap()
            .keyframe
    );
}

/// Access units of a short H.264 stream from our encoder: keyframe first, then P frames.
fn h264_stream() -> Vec<Vec<u8>> {
    let mut encoder = H264Encoder::new(H264Config {
        bitrate_bps: 300_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut pattern = TestPattern::new(Resolution::new(160, 96).unwrap(), 30);
    let mut units = Vec::new();
    for _ in 0..6 {
        let mut out = Vec::new();
        encoder
            .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
            .unwrap();
        if !out.is_empty() {
            units.push(out);
        }
    }
    units
}

#[test]
fn h264_decoder_survives_every_truncation() {
    let units = h264_stream();
    let mut decoder = H264Decoder::new().unwrap();
    let (mut ok, mut err) = (0, 0);
    for unit in &units {
        for len in 0..unit.len() {
            match decoder.decode(&unit[..len]) {
                Ok(_) => ok += 1,
                Err(CodecError::InvalidBitstream { .. }) => err += 1,
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        let _ = decoder.decode(unit);
    }
    println!(
        "H.264 truncations: {ok} ok, {err} errors over {} units",
        units.len()
    );
    // A keyframe brings a fresh decoder back.
    let mut fresh = H264Decoder::new().unwrap();
    assert!(fresh.decode(&units[0]).unwrap().is_some());
}

#[test]
fn av1_decoder_survives_every_truncation() {
    let frames = av1_fixture_frames();
    let mut decoder = Av1Decoder::new().unwrap();
    let (mut ok, mut err) = (0, 0);
    for data in &frames {
        for len in 0..data.len() {
            match decoder.decode(&data[..len]) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        let _ = decoder.decode(data);
    }
    let _ = decoder.flush();
    println!("AV1 truncations: {ok} ok, {err} errors");
}

fn corrupt(unit: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut data = unit.to_vec();
    for &(at, value) in edits {
        let at = at % data.len();
        data[at] ^= value | 1;
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn h264_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut decoder = H264Decoder::new().unwrap();
        let _ = decoder.decode(&data);
        // Random bytes behind a start code reach the NAL parsers.
        let mut nal = vec![0, 0, 0, 1];
        nal.extend_from_slice(&data);
        let _ = decoder.decode(&nal);
        let _ = decoder.flush();
    }

    #[test]
    fn av1_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut decoder = Av1Decoder::new().unwrap();
        let _ = decoder.decode(&data);
        let _ = decoder.flush();
    }

    #[test]
    fn corrupted_streams_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        skip in 0usize..3,
    ) {
        let units = h264_stream();
        let mut h264 = H264Decoder::new().unwrap();
        for (index, unit) in units.iter().enumerate() {
            let data = if index == skip { corrupt(unit, &edits) } else { unit.clone() };
            let _ = h264.decode(&data);
        }
        let _ = h264.flush();

        let frames = av1_fixture_frames();
        let mut av1 = Av1Decoder::new().unwrap();
        for (index, data) in frames.iter().take(6).enumerate() {
            let data = if index == skip { corrupt(data, &edits) } else { data.clone() };
            let _ = av1.decode(&data);
        }
        let _ = av1.flush();
    }
}

/// Steady decoding into one frame keeps its buffers: the real-time path does not allocate
/// picture memory per frame (dav1d's own input copy aside).
#[test]
fn decode_into_reuses_the_frame_buffers() {
    let mut decoder = H264Decoder::new().unwrap();
    let mut frame = VideoFrame::black(Resolution::new(2, 2).unwrap());
    let mut luma = None;
    for unit in h264_stream() {
        if decoder.decode_into(&unit, &mut frame).unwrap() {
            let ptr = frame.plane(0).as_ptr();
            assert_eq!(
                *luma.get_or_insert(ptr),
                ptr,
                "H.264 luma buffer reallocated"
            );
        }
    }
    assert!(luma.is_some(), "no H.264 picture decoded");

    let mut decoder = Av1Decoder::new().unwrap();
    let mut decoded = 0;
    let mut seen = std::collections::HashSet::new();
    for unit in av1_fixture_frames() {
        if decoder.decode_into(&unit, &mut frame).unwrap() {
            decoded += 1;
            seen.insert(frame.plane(0).as_ptr());
        }
    }
    assert_eq!(decoded, 30);
    // The decoder swaps pictures with the caller's frame, so two buffers take turns.
    assert!(
        seen.len() <= 2,
        "{} distinct AV1 luma buffers over 30 frames",
        seen.len()
    );
}
