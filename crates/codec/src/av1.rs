//! AV1 decoding with dav1d (the system `libdav1d`, through the `dav1d` crate).
//!
//! [`Av1Decoder`] takes one temporal unit (low-overhead OBU format, as in IVF or an RTP
//! depacketiser's output) per call and returns the picture it completes. Only 8-bit 4:2:0
//! output is supported; anything else is [`CodecError::Unsupported`].
//!
//! # Threads
//!
//! dav1d spawns its own worker threads whenever it runs with more than one thread
//! ([`Av1Config::threads`] above 1, or 0 for "one per core"). A sans-IO engine must not
//! start threads behind its host's back, so the default is 1: everything runs on the
//! caller's thread inside [`VideoDecoder::decode`]. A frame delay of 1 makes every
//! picture come out of the call that completed it.
//!
//! # Copies
//!
//! `dav1d` 0.9 only accepts owned input (`'static` buffers), so each temporal unit is
//! copied once into a `Vec` on the way in; each picture is copied once into a
//! [`VideoFrame`] on the way out.

use crate::error::{CodecError, Result};
use crate::traits::VideoDecoder;
use dav1d::{PixelLayout, PlanarImageComponent};
use std::collections::VecDeque;
use tincan_media::{Resolution, VideoFrame};

const CODEC: &str = "AV1";

/// Rounds of send/receive one call may take before the decoder is declared stuck.
/// dav1d alternates "take a picture" and "send the rest" a few times at most.
const MAX_ROUNDS: usize = 256;

/// Settings of an [`Av1Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Av1Config {
    /// Decoder threads (default 1: no threads spawned). Above 1, dav1d spawns that many
    /// worker threads of its own; 0 lets dav1d pick one per core.
    pub threads: u32,
    /// Most frames dav1d may hold back (default 1: every picture leaves with the call
    /// that completed it). 0 lets dav1d choose from the thread count.
    pub max_frame_delay: u32,
    /// Largest picture, in pixels, the decoder agrees to allocate (default 4096×2304).
    /// Bounds memory on hostile input that claims a huge frame size.
    pub max_frame_pixels: u32,
    /// Whether film grain described in the stream is synthesised (default true).
    pub apply_grain: bool,
}

impl Default for Av1Config {
    fn default() -> Self {
        Self {
            threads: 1,
            max_frame_delay: 1,
            max_frame_pixels: 4096 * 2304,
            apply_grain: true,
        }
    }
}

/// dav1d's CPU feature bit for its AVX-512 (Ice Lake) kernels (`DAV1D_X86_CPU_FLAG_AVX512ICL`
/// in dav1d's `src/x86/cpu.h`, stable since 0.5).
const DAV1D_X86_CPU_FLAG_AVX512ICL: std::ffi::c_uint = 1 << 4;

// Exported by every libdav1d since 0.5 (for its own tools), though absent from the
// installed headers, so `dav1d-sys` does not bind it.
unsafe extern "C" {
    fn dav1d_set_cpu_flags_mask(mask: std::ffi::c_uint);
}

/// Keeps dav1d off its AVX-512 kernels. In libdav1d 1.0 (Debian 12's) one of them makes an
/// aligned 64-byte store at a 32-byte-aligned address on a corrupt stream and the process
/// dies of SIGSEGV (found by the `av1_decode` fuzz target; input in
/// `crates/codec/testdata`). The AVX2 kernels it falls back to are the ones most
/// x86 machines run anyway. The mask is process-wide and read when a decoder is opened,
/// so it is set once, before the first one.
fn mask_unsafe_cpu_kernels() {
    if !cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
        // The bit means something else, or nothing, on other architectures.
        return;
    }
    static MASK: std::sync::Once = std::sync::Once::new();
    MASK.call_once(|| {
        // SAFETY: the function only stores the mask in a global that dav1d reads when it
        // initialises a decoder's DSP tables; `Once` keeps the store from racing with
        // another thread's first call, and every later open reads the same value.
        unsafe { dav1d_set_cpu_flags_mask(!DAV1D_X86_CPU_FLAG_AVX512ICL) };
    });
}

fn map_error(error: dav1d::Error) -> CodecError {
    match error {
        dav1d::Error::NotEnoughMemory => CodecError::Library {
            codec: CODEC,
            reason: "out of memory".into(),
        },
        dav1d::Error::UnsupportedBitstream => CodecError::Unsupported {
            parameter: "AV1 bitstream feature",
            value: error.to_string(),
        },
        other => CodecError::InvalidBitstream {
            codec: CODEC,
            reason: other.to_string(),
        },
    }
}

fn copy_picture(picture: &dav1d::Picture, frame: &mut VideoFrame) -> Result<()> {
    if picture.bit_depth() != 8 {
        return Err(CodecError::Unsupported {
            parameter: "AV1 bit depth",
            value: picture.bit_depth().to_string(),
        });
    }
    let layout = picture.pixel_layout();
    if layout != PixelLayout::I420 {
        return Err(CodecError::Unsupported {
            parameter: "AV1 chroma layout",
            value: format!("{layout:?}"),
        });
    }
    let (width, height) = (picture.width(), picture.height());
    let resolution = Resolution::new(width, height)
        .map_err(|_| CodecError::UnsupportedResolution { width, height })?;
    let y = picture.plane(PlanarImageComponent::Y);
    let u = picture.plane(PlanarImageComponent::U);
    let v = picture.plane(PlanarImageComponent::V);
    let strides = [
        picture.stride(PlanarImageComponent::Y) as usize,
        picture.stride(PlanarImageComponent::U) as usize,
        picture.stride(PlanarImageComponent::V) as usize,
    ];
    frame.copy_planes_from(resolution, [&y, &u, &v], strides)?;
    Ok(())
}

/// AV1 decoder over dav1d.
pub struct Av1Decoder {
    decoder: dav1d::Decoder,
    /// dav1d holds part of the last temporal unit until a picture is taken out.
    pending: bool,
    /// Pictures out of dav1d not yet handed to the caller (more than one per call is rare).
    ready: VecDeque<VideoFrame>,
    /// Frames handed back by [`VideoDecoder::decode_into`], reused for the next pictures so
    /// steady decoding does not allocate picture buffers.
    spare: Vec<VideoFrame>,
}

/// Most spare frames kept for reuse; with a frame delay of 1 one is enough.
const MAX_SPARE_FRAMES: usize = 4;

impl std::fmt::Debug for Av1Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Av1Decoder")
            .field("pending", &self.pending)
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl Av1Decoder {
    /// A decoder with the default (single-threaded, low-delay) [`Av1Config`].
    pub fn new() -> Result<Self> {
        Self::with_config(Av1Config::default())
    }

    /// A decoder with `config`.
    pub fn with_config(config: Av1Config) -> Result<Self> {
        mask_unsafe_cpu_kernels();
        let mut settings = dav1d::Settings::new();
        settings.set_n_threads(config.threads);
        settings.set_max_frame_delay(config.max_frame_delay);
        settings.set_frame_size_limit(config.max_frame_pixels);
        settings.set_apply_grain(config.apply_grain);
        let decoder =
            dav1d::Decoder::with_settings(&settings).map_err(|e| CodecError::Library {
                codec: CODEC,
                reason: format!("cannot open dav1d with {config:?}: {e}"),
            })?;
        Ok(Self {
            decoder,
            pending: false,
            ready: VecDeque::new(),
            spare: Vec::new(),
        })
    }

    /// Forgets the stream: drops held-back pictures and undecoded data. The next temporal
    /// unit must start a new coded video sequence (sequence header and keyframe).
    pub fn reset(&mut self) {
        self.decoder.flush();
        self.pending = false;
        self.ready.clear();
    }

    /// Takes every picture dav1d can give now, feeding it any data it held back.
    /// On error the held-back data is dropped so the next call starts clean.
    fn collect(&mut self) -> Result<()> {
        let result = self.collect_inner();
        if result.is_err() && self.pending {
            // `dav1d::Decoder::send_data` panics while data is pending; drop it.
            self.decoder.flush();
            self.pending = false;
        }
        result
    }

    fn collect_inner(&mut self) -> Result<()> {
        for _ in 0..MAX_ROUNDS {
            match self.decoder.get_picture() {
                Ok(picture) => {
                    let mut frame = match self.spare.pop() {
                        Some(frame) => frame,
                        None => VideoFrame::black(Resolution::new(2, 2)?),
                    };
                    copy_picture(&picture, &mut frame)?;
                    self.ready.push_back(frame);
                }
                Err(dav1d::Error::Again) if self.pending => {
                    match self.decoder.send_pending_data() {
                        Ok(()) => self.pending = false,
                        Err(dav1d::Error::Again) => {}
                        Err(e) => {
                            self.pending = false;
                            return Err(map_error(e));
                        }
                    }
                }
                Err(dav1d::Error::Again) => return Ok(()),
                Err(e) => return Err(map_error(e)),
            }
        }
        Err(CodecError::Library {
            codec: CODEC,
            reason: "decoder made no progress".into(),
        })
    }
}

impl VideoDecoder for Av1Decoder {
    fn decode_into(&mut self, data: &[u8], frame: &mut VideoFrame) -> Result<bool> {
        if self.pending {
            self.collect()?;
        }
        if !data.is_empty() {
            match self.decoder.send_data(data.to_vec(), None, None, None) {
                Ok(()) => {}
                Err(dav1d::Error::Again) => self.pending = true,
                Err(e) => return Err(map_error(e)),
            }
            self.collect()?;
        }
        let Some(mut picture) = self.ready.pop_front() else {
            return Ok(false);
        };
        std::mem::swap(frame, &mut picture);
        if self.spare.len() < MAX_SPARE_FRAMES {
            self.spare.push(picture);
        }
        Ok(true)
    }

    /// Drains every picture dav1d still holds (none with the default frame delay of 1).
    /// The decoder stays usable and keeps its references; see [`Av1Decoder::reset`].
    fn flush(&mut self) -> Result<Vec<VideoFrame>> {
        // With no new data sent, dav1d's get_picture drains its frame threads.
        self.collect()?;
        Ok(self.ready.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_or_nothing() {
        let mut decoder = Av1Decoder::new().unwrap();
        assert!(decoder.decode(&[]).unwrap().is_none());
        let mut seed = 0x1234_5678_u32;
        for len in [1usize, 2, 7, 64, 1000] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = decoder.decode(&data);
        }
        assert!(decoder.flush().unwrap().is_empty());
    }

    /// A fuzzer-found stream on which libdav1d 1.0's AVX-512 kernels fault: the test process
    /// dies unless they are masked. Fed as the fuzz target feeds it (chunks of 16 × the first
    /// byte).
    #[test]
    fn corrupt_stream_that_faulted_avx512_kernels_is_survived() {
        let data = include_bytes!("../testdata/av1_corrupt_avx512_store.bin");
        let (&chunk, stream) = data.split_first().unwrap();
        let mut decoder = Av1Decoder::new().unwrap();
        let mut errors = 0;
        for unit in stream.chunks(usize::from(chunk).max(1) * 16) {
            errors += usize::from(decoder.decode(unit).is_err());
        }
        assert!(
            errors > 0,
            "the corrupt stream decoded without a single error"
        );
        let _ = decoder.flush();
    }

    #[test]
    fn config_defaults_are_single_threaded_low_delay() {
        let config = Av1Config::default();
        assert_eq!((config.threads, config.max_frame_delay), (1, 1));
        assert!(Av1Decoder::with_config(config).is_ok());
    }
}
