//! H.264 encoding and decoding with OpenH264 (built from source by the `openh264` crate).
//!
//! [`H264Encoder`] produces an Annex B byte stream (start codes, SPS/PPS in front of every
//! IDR) for real-time camera video: bitrate rate control with frame skipping, no periodic
//! keyframes unless asked for (a call asks for them with [`EncodeRequest::force_keyframe`]
//! after PLI/FIR), a single encoder thread, and resolution changes between frames.
//!
//! [`H264Decoder`] takes one Annex B access unit per call and returns the picture it
//! completes. Corrupt input comes back as [`CodecError::InvalidBitstream`]; error
//! concealment is off, so a decoder that lost its references reports errors until the
//! next IDR rather than showing garbage.
//!
//! Neither type panics on bad input: the Rust side of `openh264` has no panicking path
//! for decoding (checked against `openh264` 0.9 source), so nothing is wrapped in
//! `catch_unwind`; the C library itself is fuzzed upstream and is exercised here with
//! random and truncated streams in the tests.

use crate::error::{CodecError, Result};
use crate::traits::{EncodeRequest, EncodedInfo, VideoDecoder, VideoEncoder};
use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use std::os::raw::{c_int, c_void};
use tincan_media::{Resolution, VideoFrame};

const CODEC: &str = "H.264";

/// Largest picture OpenH264 encodes: 3840×2160, either orientation.
pub const MAX_ENCODE_LONG_SIDE: u32 = 3840;
/// Largest short side OpenH264 encodes (see [`MAX_ENCODE_LONG_SIDE`]).
pub const MAX_ENCODE_SHORT_SIDE: u32 = 2160;
/// Lowest frame rate accepted by [`H264Encoder`] (OpenH264 clamps below this).
pub const MIN_FRAME_RATE: f32 = 1.0;
/// Highest frame rate accepted by [`H264Encoder`] (OpenH264 clamps above this).
pub const MAX_FRAME_RATE: f32 = 60.0;

/// How much work the encoder spends per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H264Complexity {
    /// Fastest, lowest quality per bit.
    Low,
    /// OpenH264's default balance.
    #[default]
    Medium,
    /// Slowest, best quality per bit.
    High,
}

/// What the encoded video shows; selects OpenH264's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H264Usage {
    /// Camera video in a real-time call.
    #[default]
    CameraRealTime,
    /// Screen sharing in a real-time call.
    ScreenRealTime,
}

/// Settings of an [`H264Encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct H264Config {
    /// Target bitrate in bits per second (default 1 Mbit/s), at least 1000.
    pub bitrate_bps: u32,
    /// Frame rate the rate control plans for, [`MIN_FRAME_RATE`]..=[`MAX_FRAME_RATE`]
    /// (default 30). Input timestamps are derived from it.
    pub max_frame_rate: f32,
    /// Expected picture size, checked at construction so an unsupported size fails early.
    /// The encoder always follows the size of the frames it is given.
    pub resolution: Option<Resolution>,
    /// Frames from one periodic IDR to the next; `None` (default) for keyframes only at
    /// the start, after a resolution change and on request.
    pub keyframe_interval: Option<u32>,
    /// Encoder effort (default [`H264Complexity::Medium`]).
    pub complexity: H264Complexity,
    /// Content tuning (default [`H264Usage::CameraRealTime`]).
    pub usage: H264Usage,
    /// Encoder threads (default 1). 0 lets OpenH264 pick one per core; anything but 1
    /// makes OpenH264 spawn its own worker threads.
    pub threads: u16,
}

impl Default for H264Config {
    fn default() -> Self {
        Self {
            bitrate_bps: 1_000_000,
            max_frame_rate: 30.0,
            resolution: None,
            keyframe_interval: None,
            complexity: H264Complexity::Medium,
            usage: H264Usage::CameraRealTime,
            threads: 1,
        }
    }
}

fn check_bitrate(bits_per_second: u32) -> Result<()> {
    // OpenH264 takes the bitrate as a C int and rejects anything below the frame rate.
    if bits_per_second < 1_000 || bits_per_second > i32::MAX as u32 {
        return Err(CodecError::Unsupported {
            parameter: "H.264 bitrate",
            value: format!("{bits_per_second} bit/s"),
        });
    }
    Ok(())
}

fn check_frame_rate(frames_per_second: f32) -> Result<()> {
    if !(MIN_FRAME_RATE..=MAX_FRAME_RATE).contains(&frames_per_second) {
        return Err(CodecError::Unsupported {
            parameter: "H.264 frame rate",
            value: format!("{frames_per_second} fps"),
        });
    }
    Ok(())
}

fn check_resolution(resolution: Resolution) -> Result<()> {
    let (w, h) = (resolution.width(), resolution.height());
    // OpenH264 needs at least one 16x16 macroblock's worth of picture.
    let (long, short) = (w.max(h), w.min(h));
    if long > MAX_ENCODE_LONG_SIDE || !(16..=MAX_ENCODE_SHORT_SIDE).contains(&short) {
        return Err(CodecError::UnsupportedResolution {
            width: w,
            height: h,
        });
    }
    Ok(())
}

fn library_error(error: &openh264::Error) -> CodecError {
    CodecError::Library {
        codec: CODEC,
        reason: format!("OpenH264 error code {}", error.native_code()),
    }
}

/// Borrowed view of a [`VideoFrame`] that OpenH264 reads directly (no copy).
struct FrameView<'a>(&'a VideoFrame);

impl YUVSource for FrameView<'_> {
    fn dimensions(&self) -> (usize, usize) {
        self.0.resolution().plane_size(0)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let [y, u, v] = self.0.strides();
        (y, u, v)
    }

    fn y(&self) -> &[u8] {
        self.0.plane(0)
    }

    fn u(&self) -> &[u8] {
        self.0.plane(1)
    }

    fn v(&self) -> &[u8] {
        self.0.plane(2)
    }
}

// Runtime options of OpenH264's `ISVCEncoder::SetOption`, from `openh264-sys2` (the same
// build the `openh264` crate links; it does not re-export them).
use openh264_sys2::{
    ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE, ENCODER_OPTION_MAX_BITRATE, SBitrateInfo,
    SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
};

/// H.264 encoder producing Annex B access units.
///
/// `set_bitrate` and `set_frame_rate` apply at runtime without restarting the encoder
/// (OpenH264's `SetOption`), so no keyframe is spent on them. A frame of a new size
/// replaces the encoder with a fresh one, whose first output is an IDR.
pub struct H264Encoder {
    config: H264Config,
    encoder: Encoder,
    /// Size the encoder was initialised for by its first frame.
    current: Option<Resolution>,
    /// Timestamp handed to the rate control with the next frame, in milliseconds.
    next_timestamp_ms: f64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .field("current", &self.current)
            .finish()
    }
}

impl H264Encoder {
    /// An encoder with `config`; fails on a zero or out-of-range bitrate or frame rate,
    /// or an unsupported resolution hint.
    pub fn new(config: H264Config) -> Result<Self> {
        check_bitrate(config.bitrate_bps)?;
        check_frame_rate(config.max_frame_rate)?;
        if let Some(resolution) = config.resolution {
            check_resolution(resolution)?;
        }
        let encoder = Self::make_encoder(&config)?;
        Ok(Self {
            config,
            encoder,
            current: None,
            next_timestamp_ms: 0.0,
        })
    }

    /// The current settings (bitrate and frame rate as last set).
    pub fn config(&self) -> &H264Config {
        &self.config
    }

    fn make_encoder(config: &H264Config) -> Result<Encoder> {
        let complexity = match config.complexity {
            H264Complexity::Low => Complexity::Low,
            H264Complexity::Medium => Complexity::Medium,
            H264Complexity::High => Complexity::High,
        };
        let usage = match config.usage {
            H264Usage::CameraRealTime => UsageType::CameraVideoRealTime,
            H264Usage::ScreenRealTime => UsageType::ScreenContentRealTime,
        };
        let encoder_config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(config.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(config.max_frame_rate))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(true)
            .usage_type(usage)
            .complexity(complexity)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                config.keyframe_interval.unwrap_or(0),
            ))
            .num_threads(config.threads);
        Encoder::with_api_config(OpenH264API::from_source(), encoder_config)
            .map_err(|e| library_error(&e))
    }

    /// Calls `SetOption` on the initialised encoder.
    ///
    /// # Safety
    ///
    /// `value` must point to the type OpenH264 expects for `option`.
    unsafe fn set_option(&mut self, option: c_int, value: *mut c_void) -> Result<()> {
        // SAFETY: the encoder is initialised (callers check `current`), and the caller
        // guarantees `value` has the type OpenH264 reads for `option`.
        let code = unsafe { self.encoder.raw_api().set_option(option, value) };
        if code != 0 {
            return Err(CodecError::Library {
                codec: CODEC,
                reason: format!("SetOption({option}) failed with {code}"),
            });
        }
        Ok(())
    }

    fn set_bitrate_option(
        &mut self,
        option: c_int,
        layer: c_int,
        bits_per_second: u32,
    ) -> Result<()> {
        let mut info = SBitrateInfo {
            iLayer: layer,
            iBitrate: bits_per_second as c_int,
        };
        // SAFETY: both bitrate options take a pointer to `SBitrateInfo`.
        unsafe { self.set_option(option, (&raw mut info).cast()) }
    }
}

impl VideoEncoder for H264Encoder {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        request: EncodeRequest,
        out: &mut Vec<u8>,
    ) -> Result<EncodedInfo> {
        out.clear();
        let resolution = frame.resolution();
        check_resolution(resolution)?;
        if self.current.is_some_and(|current| current != resolution) {
            // A fresh encoder rather than OpenH264's in-place reconfiguration: it starts
            // from the current bitrate and frame rate, and its first frame is an IDR.
            self.encoder = Self::make_encoder(&self.config)?;
            self.current = None;
        } else if self.current.is_some() && request.force_keyframe {
            self.encoder.force_intra_frame();
        }
        // With `current` unset, this frame initialises the encoder and is an IDR anyway.

        let timestamp = Timestamp::from_millis(self.next_timestamp_ms as u64);
        self.next_timestamp_ms += 1000.0 / f64::from(self.config.max_frame_rate);
        let encoded = match self.encoder.encode_at(&FrameView(frame), timestamp) {
            Ok(encoded) => encoded,
            Err(e) => {
                // The encoder may not be initialised now; treat the next frame as a first one.
                self.current = None;
                return Err(library_error(&e));
            }
        };
        self.current = Some(resolution);
        match encoded.frame_type() {
            FrameType::Skip | FrameType::Invalid => Ok(EncodedInfo {
                len: 0,
                keyframe: false,
            }),
            frame_type => {
                encoded.write_vec(out);
                Ok(EncodedInfo {
                    len: out.len(),
                    keyframe: frame_type == FrameType::IDR && !out.is_empty(),
                })
            }
        }
    }

    fn set_bitrate(&mut self, bits_per_second: u32) -> Result<()> {
        check_bitrate(bits_per_second)?;
        if self.current.is_none() {
            // Not initialised yet: the settings are applied by the first frame.
            self.config.bitrate_bps = bits_per_second;
            self.encoder = Self::make_encoder(&self.config)?;
            return Ok(());
        }
        // OpenH264 rejects a target above the layer's maximum, and the maximum is kept
        // equal to the target (as the `openh264` crate initialises it), so raise the
        // maximum first when going up and lower it last when going down.
        if bits_per_second > self.config.bitrate_bps {
            self.set_bitrate_option(ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, bits_per_second)?;
            self.set_bitrate_option(ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, bits_per_second)?;
        } else {
            self.set_bitrate_option(ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, bits_per_second)?;
            self.set_bitrate_option(ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, bits_per_second)?;
        }
        self.config.bitrate_bps = bits_per_second;
        Ok(())
    }

    fn set_frame_rate(&mut self, frames_per_second: f32) -> Result<()> {
        check_frame_rate(frames_per_second)?;
        if self.current.is_some() {
            let mut value = frames_per_second;
            // SAFETY: ENCODER_OPTION_FRAME_RATE takes a pointer to a C float.
            unsafe { self.set_option(ENCODER_OPTION_FRAME_RATE, (&raw mut value).cast())? };
        } else {
            self.config.max_frame_rate = frames_per_second;
            self.encoder = Self::make_encoder(&self.config)?;
        }
        self.config.max_frame_rate = frames_per_second;
        Ok(())
    }
}

/// Names the bits of an OpenH264 `DECODING_STATE`.
fn describe_decoding_state(state: i64) -> String {
    const NAMES: [(i64, &str); 10] = [
        (0x01, "frame pending"),
        (0x02, "reference lost"),
        (0x04, "bitstream error"),
        (0x08, "dependency layer lost"),
        (0x10, "no parameter sets"),
        (0x20, "data error concealed"),
        (0x40, "reference list null"),
        (0x1000, "invalid argument"),
        (0x2000, "initialisation expected"),
        (0x4000, "out of memory"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| state & bit != 0)
        .map(|&(_, name)| name)
        .collect();
    if names.is_empty() {
        format!("decoding state {state:#x}")
    } else {
        format!("{} ({state:#x})", names.join(", "))
    }
}

fn copy_picture(yuv: &DecodedYUV<'_>, frame: &mut VideoFrame) -> Result<()> {
    let (width, height) = yuv.dimensions();
    let (w, h) = (width as u32, height as u32);
    let resolution = Resolution::new(w, h).map_err(|_| CodecError::UnsupportedResolution {
        width: w,
        height: h,
    })?;
    let (sy, su, sv) = yuv.strides();
    frame.copy_planes_from(resolution, [yuv.y(), yuv.u(), yuv.v()], [sy, su, sv])?;
    Ok(())
}

fn to_video_frame(yuv: &DecodedYUV<'_>) -> Result<VideoFrame> {
    let mut frame = VideoFrame::black(Resolution::new(2, 2)?);
    copy_picture(yuv, &mut frame)?;
    Ok(frame)
}

/// H.264 decoder taking Annex B access units.
pub struct H264Decoder {
    decoder: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    /// A decoder (single-threaded, error concealment off).
    pub fn new() -> Result<Self> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| library_error(&e))?;
        Ok(Self { decoder })
    }
}

impl VideoDecoder for H264Decoder {
    fn decode_into(&mut self, data: &[u8], frame: &mut VideoFrame) -> Result<bool> {
        if data.is_empty() {
            // OpenH264 treats an empty buffer as end of stream; here it is just "nothing new".
            return Ok(false);
        }
        if i32::try_from(data.len()).is_err() {
            return Err(CodecError::InvalidBitstream {
                codec: CODEC,
                reason: format!("{} bytes is too large", data.len()),
            });
        }
        match self.decoder.decode(data) {
            Ok(Some(yuv)) => copy_picture(&yuv, frame).map(|()| true),
            Ok(None) => Ok(false),
            // A frame still waiting for more slices is not an error.
            Err(e) if e.native_code() == 0x01 => Ok(false),
            Err(e) => Err(CodecError::InvalidBitstream {
                codec: CODEC,
                reason: describe_decoding_state(e.native_code()),
            }),
        }
    }

    fn flush(&mut self) -> Result<Vec<VideoFrame>> {
        let pictures =
            self.decoder
                .flush_remaining()
                .map_err(|e| CodecError::InvalidBitstream {
                    codec: CODEC,
                    reason: describe_decoding_state(e.native_code()),
                })?;
        pictures.iter().map(to_video_frame).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(resolution: Resolution, shift: usize) -> VideoFrame {
        let mut frame = VideoFrame::black(resolution);
        let (w, h) = resolution.plane_size(0);
        let stride = frame.stride(0);
        for y in 0..h {
            for x in 0..w {
                frame.plane_mut(0)[y * stride + x] = ((x + y + shift) % 220 + 16) as u8;
            }
        }
        frame
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        let zero = H264Config {
            bitrate_bps: 0,
            ..H264Config::default()
        };
        assert!(matches!(
            H264Encoder::new(zero),
            Err(CodecError::Unsupported { .. })
        ));
        let fps = H264Config {
            max_frame_rate: f32::NAN,
            ..H264Config::default()
        };
        assert!(matches!(
            H264Encoder::new(fps),
            Err(CodecError::Unsupported { .. })
        ));
        let big = H264Config {
            resolution: Some(Resolution::new(4096, 2160).unwrap()),
            ..H264Config::default()
        };
        assert!(matches!(
            H264Encoder::new(big),
            Err(CodecError::UnsupportedResolution { .. })
        ));

        let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
        assert!(matches!(
            encoder.set_bitrate(0),
            Err(CodecError::Unsupported { .. })
        ));
        assert!(matches!(
            encoder.set_frame_rate(0.0),
            Err(CodecError::Unsupported { .. })
        ));
        let mut out = Vec::new();
        let tiny = VideoFrame::black(Resolution::new(8, 8).unwrap());
        assert!(matches!(
            encoder.encode(&tiny, EncodeRequest::default(), &mut out),
            Err(CodecError::UnsupportedResolution {
                width: 8,
                height: 8
            })
        ));
    }

    #[test]
    fn strided_frames_are_read_in_place_and_round_trip() {
        let res = Resolution::new(64, 48).unwrap();
        let packed = gradient(res, 0);
        // Same picture with 16 bytes of padding per row.
        let mut planes: [Vec<u8>; 3] = Default::default();
        let mut strides = [0; 3];
        for plane in 0..3 {
            let (w, _) = res.plane_size(plane);
            strides[plane] = w + 16;
            for row in packed.rows(plane) {
                planes[plane].extend_from_slice(row);
                planes[plane].extend_from_slice(&[0xAA; 16]);
            }
        }
        let strided = VideoFrame::from_planes(res, planes, strides).unwrap();

        let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut out = Vec::new();
        let info = encoder
            .encode(&strided, EncodeRequest::default(), &mut out)
            .unwrap();
        assert!(info.keyframe && info.len == out.len() && info.len > 0);
        assert_eq!(&out[..4], &[0, 0, 0, 1], "Annex B start code");
        let decoded = decoder.decode(&out).unwrap().expect("picture");
        assert_eq!(decoded.resolution(), res);
        let psnr = decoded.psnr(&packed, 0).unwrap();
        assert!(psnr > 35.0, "psnr {psnr}");
    }

    #[test]
    fn runtime_rate_changes_apply_without_a_keyframe() {
        let res = Resolution::new(160, 96).unwrap();
        let mut encoder = H264Encoder::new(H264Config::default()).unwrap();
        let mut out = Vec::new();
        for i in 0..5 {
            encoder
                .encode(&gradient(res, i), EncodeRequest::default(), &mut out)
                .unwrap();
        }
        encoder.set_bitrate(2_000_000).unwrap();
        encoder.set_bitrate(100_000).unwrap();
        encoder.set_frame_rate(15.0).unwrap();
        assert_eq!(encoder.config().bitrate_bps, 100_000);
        let info = encoder
            .encode(&gradient(res, 5), EncodeRequest::default(), &mut out)
            .unwrap();
        assert!(!info.keyframe);
    }

    #[test]
    fn decoding_state_names_bits() {
        assert_eq!(
            describe_decoding_state(0x14),
            "bitstream error, no parameter sets (0x14)"
        );
        assert_eq!(describe_decoding_state(0x100), "decoding state 0x100");
    }
}
