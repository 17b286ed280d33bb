//! The traits every codec implements, so the pipeline can hold any of them.

use crate::error::Result;
use tincan_media::{AudioFormat, Resolution, VideoFrame};

/// Encodes fixed-size blocks of interleaved `i16` PCM into packets.
pub trait AudioEncoder: Send {
    /// Format of the PCM it takes.
    fn format(&self) -> AudioFormat;
    /// Samples per channel in one input frame.
    fn frame_samples(&self) -> usize;
    /// Encodes exactly one frame (`frame_samples() * channels` samples) into `packet`,
    /// returning the packet length. A zero-length or very short packet is valid output
    /// (e.g. DTX). Does not allocate.
    fn encode(&mut self, pcm: &[i16], packet: &mut [u8]) -> Result<usize>;
    /// Sets the target bitrate in bits per second.
    fn set_bitrate(&mut self, bits_per_second: u32) -> Result<()>;
    /// Samples per channel of algorithmic delay the encoder and decoder add together
    /// (what aligning decoded output with the input must skip).
    fn delay_samples(&self) -> usize;
}

/// Decodes packets into interleaved `i16` PCM and conceals lost packets.
pub trait AudioDecoder: Send {
    /// Format of the PCM it produces.
    fn format(&self) -> AudioFormat;
    /// Decodes one packet into `pcm`, returning samples per channel written.
    fn decode(&mut self, packet: &[u8], pcm: &mut [i16]) -> Result<usize>;
    /// Conceals one lost packet of `samples_per_channel` samples into `pcm`, returning
    /// samples per channel written.
    fn conceal(&mut self, samples_per_channel: usize, pcm: &mut [i16]) -> Result<usize>;
    /// Forgets all state, as after a stream change.
    fn reset(&mut self) -> Result<()>;
}

/// What the caller asks of one video encode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeRequest {
    /// Make this frame a keyframe (e.g. after PLI/FIR).
    pub force_keyframe: bool,
}

/// What one video encode produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedInfo {
    /// Bytes written to the output buffer (0: the encoder skipped the frame to hold its rate).
    pub len: usize,
    /// The frame is a keyframe (IDR for H.264).
    pub keyframe: bool,
}

/// Encodes I420 frames into a bitstream (Annex B for H.264).
pub trait VideoEncoder: Send {
    /// Encodes one frame into `out` (cleared first; its allocation is kept).
    /// The frame's resolution may differ from the previous one: the encoder reconfigures
    /// and starts with a keyframe.
    fn encode(
        &mut self,
        frame: &VideoFrame,
        request: EncodeRequest,
        out: &mut Vec<u8>,
    ) -> Result<EncodedInfo>;
    /// Sets the target bitrate in bits per second.
    fn set_bitrate(&mut self, bits_per_second: u32) -> Result<()>;
    /// Sets the target frame rate.
    fn set_frame_rate(&mut self, frames_per_second: f32) -> Result<()>;
}

/// Decodes a bitstream into I420 frames.
pub trait VideoDecoder: Send {
    /// Decodes one access unit / temporal unit into `frame`, reusing its buffers, and says
    /// whether a picture came out (`false`: the decoder needs more data first; `frame` is
    /// then untouched). This is the real-time entry point: once `frame` has grown to the
    /// stream's picture size it does not allocate.
    fn decode_into(&mut self, data: &[u8], frame: &mut VideoFrame) -> Result<bool>;

    /// Decodes one access unit / temporal unit into a new frame; `Ok(None)` when the
    /// decoder needs more data before it can output a picture. Allocates a frame per
    /// picture: prefer [`decode_into`](Self::decode_into) on a real-time path.
    fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>> {
        let mut frame = VideoFrame::black(Resolution::new(2, 2)?);
        Ok(self.decode_into(data, &mut frame)?.then_some(frame))
    }

    /// Pictures held back inside the decoder, drained at end of stream.
    fn flush(&mut self) -> Result<Vec<VideoFrame>>;
}
