//! Opus (libopus 1.6.1) with in-band FEC, DTX, deep PLC and DRED.
//!
//! - [`OpusEncoder`] takes fixed frames of 10, 20, 40 or 60 ms ([`OpusConfig`]).
//! - [`OpusDecoder`] decodes packets, conceals lost ones (classic PLC, or deep PLC at
//!   decoder complexity ≥ 5), rebuilds a lost frame from the next packet's in-band FEC
//!   ([`OpusDecoder::decode_fec`]) or from its Deep REDundancy
//!   ([`OpusDecoder::decode_dred`], [`OpusDecoder::recover_with_dred`]).
//! - [`DredDecoder`] parses the DRED extension of an arriving packet.
//!
//! # Why raw libopus and not the `opus` crate's types
//!
//! The `opus` crate's `Encoder`/`Decoder` keep their libopus pointers private, yet DRED
//! needs `OPUS_SET_DRED_DURATION` on the encoder and `opus_decoder_dred_decode` on the
//! *same* decoder state that decodes the normal packets, and neither crate API reaches
//! them. So the encoder and decoder here own their `OpusEncoder`/`OpusDecoder` states
//! through `opusic-sys` (the one libopus build, with DRED, that the `opus` crate also
//! links), and every FFI call is wrapped with its arguments checked first. The `opus`
//! crate is still used where it reaches: packet inspection ([`packet_samples`],
//! [`packet_frames`], [`packet_bandwidth`]).
//!
//! # Loss recovery in one picture
//!
//! When frames `k..k+n` are lost and packet `P` arrives, a jitter buffer calls
//! [`OpusDecoder::recover_with_dred`] with `P`: it parses `P`'s DRED once, rebuilds each
//! lost frame (oldest first) from in-band FEC (the newest one only), from DRED (when the
//! frame overlaps what `P`'s DRED covers) or with PLC, and then the caller decodes `P`
//! itself with [`AudioDecoder::decode`](crate::AudioDecoder::decode).
//!
//! No function here panics on any input: corrupt, empty, truncated or huge packets and
//! badly sized buffers come back as [`CodecError`]s.

mod config;
mod decoder;
mod dred;
mod encoder;

pub use config::{
    Application, BITRATE_RANGE, Bandwidth, FrameDuration, MAX_DRED_DURATION, OpusConfig,
};
pub use decoder::{FecDecode, OpusDecoder};
pub use dred::{DredDecoder, DredParse, RecoveryReport};
pub use encoder::OpusEncoder;

use crate::error::{CodecError, Result};
use opusic_sys as ffi;
use std::ffi::{CStr, c_int};

/// Sample rates libopus encodes and decodes at.
pub const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Longest audio one Opus packet can carry, in milliseconds.
pub const MAX_PACKET_MS: usize = 120;

/// A packet buffer size that is always large enough for one encoded frame (libopus's own
/// recommendation), whatever the bitrate and frame duration.
pub const RECOMMENDED_PACKET_BYTES: usize = 4000;

/// Samples per channel in the longest packet (120 ms) at `sample_rate`; 5760 at 48 kHz.
pub const fn max_frame_samples(sample_rate: u32) -> usize {
    sample_rate as usize * MAX_PACKET_MS / 1000
}

/// The codec name used in errors.
pub(crate) const CODEC: &str = "opus";

/// Checks that `sample_rate` is one of [`SAMPLE_RATES`].
pub(crate) fn check_sample_rate(sample_rate: u32) -> Result<()> {
    if SAMPLE_RATES.contains(&sample_rate) {
        Ok(())
    } else {
        Err(CodecError::Unsupported {
            parameter: "sample rate",
            value: format!("{sample_rate} Hz"),
        })
    }
}

/// libopus's description of an error code.
pub(crate) fn strerror(code: c_int) -> &'static str {
    // SAFETY: opus_strerror returns a pointer to a static, NUL-terminated ASCII string for
    // every input (unknown codes get "unknown error"); it is never null.
    let text = unsafe { CStr::from_ptr(ffi::opus_strerror(code)) };
    text.to_str().unwrap_or("unknown error")
}

/// Maps a negative libopus return code to a [`CodecError`].
///
/// `op` names the operation; `space` is the `(got, needed)` pair to report if libopus
/// says a buffer is too small. Packet-level failures (`OPUS_INVALID_PACKET`, and
/// `OPUS_INTERNAL_ERROR` while decoding, which libopus returns for undecodable frames)
/// become [`CodecError::InvalidBitstream`].
pub(crate) fn map_error(
    code: c_int,
    op: &'static str,
    decoding: bool,
    space: (usize, usize),
) -> CodecError {
    let reason = format!("{op}: {}", strerror(code));
    match code {
        ffi::OPUS_BUFFER_TOO_SMALL => CodecError::OutputTooSmall {
            got: space.0,
            needed: space.1,
        },
        ffi::OPUS_INVALID_PACKET => CodecError::InvalidBitstream {
            codec: CODEC,
            reason,
        },
        ffi::OPUS_INTERNAL_ERROR if decoding => CodecError::InvalidBitstream {
            codec: CODEC,
            reason,
        },
        _ => CodecError::Library {
            codec: CODEC,
            reason,
        },
    }
}

/// A packet's length as libopus's `opus_int32`, rejecting empty and oversized packets.
pub(crate) fn packet_len(packet: &[u8]) -> Result<i32> {
    if packet.is_empty() {
        return Err(CodecError::InvalidBitstream {
            codec: CODEC,
            reason: "empty packet".into(),
        });
    }
    i32::try_from(packet.len()).map_err(|_| CodecError::InvalidBitstream {
        codec: CODEC,
        reason: format!("packet of {} bytes is too large", packet.len()),
    })
}

fn from_opus_error(error: ::opus::Error) -> CodecError {
    match error.code() {
        ::opus::ErrorCode::InvalidPacket | ::opus::ErrorCode::BadArg => {
            CodecError::InvalidBitstream {
                codec: CODEC,
                reason: error.to_string(),
            }
        }
        _ => CodecError::Library {
            codec: CODEC,
            reason: error.to_string(),
        },
    }
}

/// Samples per channel a packet decodes to at `sample_rate` (which must be one of
/// [`SAMPLE_RATES`]). Fails on empty or malformed packets.
pub fn packet_samples(packet: &[u8], sample_rate: u32) -> Result<usize> {
    check_sample_rate(sample_rate)?;
    packet_len(packet)?;
    let samples = ::opus::packet::get_nb_samples(packet, sample_rate).map_err(from_opus_error)?;
    if samples == 0 || samples > max_frame_samples(sample_rate) {
        return Err(CodecError::InvalidBitstream {
            codec: CODEC,
            reason: format!("packet of {samples} samples at {sample_rate} Hz"),
        });
    }
    Ok(samples)
}

/// Number of Opus frames in a packet (1 to 48). Fails on empty or malformed packets.
pub fn packet_frames(packet: &[u8]) -> Result<usize> {
    packet_len(packet)?;
    ::opus::packet::get_nb_frames(packet).map_err(from_opus_error)
}

/// Audio bandwidth a packet was coded with. Fails on empty packets.
pub fn packet_bandwidth(packet: &[u8]) -> Result<Bandwidth> {
    packet_len(packet)?;
    let bandwidth = ::opus::packet::get_bandwidth(packet).map_err(from_opus_error)?;
    Bandwidth::from_opus(bandwidth).ok_or_else(|| CodecError::InvalidBitstream {
        codec: CODEC,
        reason: format!("packet bandwidth {bandwidth:?}"),
    })
}

/// Whether a packet carries in-band FEC (SILK LBRR) data for the packet before it.
/// `false` for CELT-only, empty and malformed packets.
pub fn packet_has_fec(packet: &[u8]) -> bool {
    let Ok(len) = packet_len(packet) else {
        return false;
    };
    // SAFETY: `packet` is a live slice of `len` (> 0) bytes; opus_packet_has_lbrr reads the
    // TOC byte and then parses at most `len` bytes.
    unsafe { ffi::opus_packet_has_lbrr(packet.as_ptr(), len) == 1 }
}

/// Whether a packet's TOC says CELT-only mode (which carries no FEC).
pub(crate) fn packet_is_celt_only(packet: &[u8]) -> bool {
    packet.first().is_some_and(|toc| toc & 0x80 != 0)
}

/// Checks a concealment/FEC/DRED length: positive, a multiple of 2.5 ms, at most 120 ms.
pub(crate) fn check_loss_length(samples_per_channel: usize, sample_rate: u32) -> Result<()> {
    let quantum = sample_rate as usize / 400;
    if samples_per_channel == 0
        || samples_per_channel % quantum != 0
        || samples_per_channel > max_frame_samples(sample_rate)
    {
        return Err(CodecError::Unsupported {
            parameter: "lost audio length",
            value: format!(
                "{samples_per_channel} samples at {sample_rate} Hz (must be a multiple of 2.5 ms, at most 120 ms)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_codec_errors() {
        assert!(matches!(
            map_error(ffi::OPUS_INVALID_PACKET, "decode", true, (0, 0)),
            CodecError::InvalidBitstream { .. }
        ));
        assert!(matches!(
            map_error(ffi::OPUS_BUFFER_TOO_SMALL, "decode", true, (3, 9)),
            CodecError::OutputTooSmall { got: 3, needed: 9 }
        ));
        assert!(matches!(
            map_error(ffi::OPUS_INTERNAL_ERROR, "decode", true, (0, 0)),
            CodecError::InvalidBitstream { .. }
        ));
        let e = map_error(ffi::OPUS_BAD_ARG, "encode", false, (0, 0));
        assert!(matches!(e, CodecError::Library { .. }));
        assert!(e.to_string().contains("invalid argument"), "{e}");
        assert_eq!(strerror(-12345), "unknown error");
    }

    #[test]
    fn packet_inspection_rejects_bad_packets() {
        assert!(packet_samples(&[], 48_000).is_err());
        assert!(packet_frames(&[]).is_err());
        assert!(packet_bandwidth(&[]).is_err());
        assert!(!packet_has_fec(&[]));
        assert!(packet_samples(&[0xf8], 44_100).is_err());
        // TOC 0xf8: CELT-only fullband 20 ms, code 0 (one frame).
        assert_eq!(packet_samples(&[0xf8, 0], 48_000).unwrap(), 960);
        assert_eq!(packet_frames(&[0xf8, 0]).unwrap(), 1);
        assert_eq!(packet_bandwidth(&[0xf8]).unwrap(), Bandwidth::Fullband);
        assert!(!packet_has_fec(&[0xf8, 0xff]));
        // Code 3 packet claiming 48 frames of 20 ms (960 ms): invalid.
        assert!(packet_samples(&[0xfb, 48], 48_000).is_err());
    }

    #[test]
    fn loss_lengths_must_be_multiples_of_2_5_ms() {
        assert!(check_loss_length(960, 48_000).is_ok());
        assert!(check_loss_length(120, 48_000).is_ok());
        assert!(check_loss_length(5760, 48_000).is_ok());
        assert!(check_loss_length(5760 + 120, 48_000).is_err());
        assert!(check_loss_length(0, 48_000).is_err());
        assert!(check_loss_length(100, 48_000).is_err());
        assert_eq!(max_frame_samples(16_000), 1920);
    }
}
