//! Deep REDundancy (DRED) on the receiving side.

use super::{check_sample_rate, map_error, packet_len};
use crate::error::Result;
use opusic_sys as ffi;
use std::ffi::c_int;
use std::ptr::NonNull;

/// How far before a packet its DRED can start (libopus codes the offset in 2.5 ms units,
/// up to 16 of them).
const DRED_OFFSET_MARGIN_MS: usize = 40;

/// How much lost audio one packet's DRED can rebuild, from [`DredDecoder::parse`].
///
/// Positions count in samples per channel *before* the first sample of the parsed
/// packet, at the [`DredDecoder`]'s rate: the DRED covers the audio from
/// `available_samples` before the packet up to `end_samples` before it. `end_samples` is
/// normally 0 (the DRED reaches right up to the packet); it is the `dred_end` of
/// `opus_dred_parse`, the not-encoded stretch between the DRED's timestamp and its
/// newest sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DredParse {
    /// How far back the DRED reaches: the return value of `opus_dred_parse`, the offset
    /// of the oldest sample it can rebuild. 0 when the packet carries no DRED. It grows
    /// in steps of 40 ms (one DRED latent), limited by what the encoder put in the packet
    /// and by how much history [`DredDecoder::parse`] was asked for.
    pub available_samples: usize,
    /// How close to the packet the DRED reaches (usually 0).
    pub end_samples: usize,
}

impl DredParse {
    /// The packet carried no DRED.
    pub fn is_empty(&self) -> bool {
        self.available_samples == 0
    }

    /// Whether a lost stretch of `samples` starting `offset` samples before the packet
    /// overlaps the covered range (what [`OpusDecoder::decode_dred`](super::OpusDecoder::decode_dred)
    /// accepts; uncovered parts of it are concealed by libopus).
    pub fn overlaps(&self, offset: usize, samples: usize) -> bool {
        let end_of_stretch = offset.saturating_sub(samples);
        offset > self.end_samples && end_of_stretch < self.available_samples && !self.is_empty()
    }

    /// Whether the whole stretch lies within the covered range.
    pub fn covers(&self, offset: usize, samples: usize) -> bool {
        !self.is_empty()
            && offset <= self.available_samples
            && offset.saturating_sub(samples) >= self.end_samples
    }
}

/// Where the frames of one gap came from, from
/// [`OpusDecoder::recover_with_dred`](super::OpusDecoder::recover_with_dred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Frames rebuilt from in-band FEC (at most the newest one).
    pub fec_frames: usize,
    /// Frames rebuilt from DRED.
    pub dred_frames: usize,
    /// Frames concealed with PLC.
    pub plc_frames: usize,
    /// What the packet's DRED covered ([`DredParse::available_samples`]), 0 if none.
    pub dred_available_samples: usize,
}

/// Parses the DRED extension of Opus packets: a libopus `OpusDREDDecoder` (holding the
/// RDOVAE model) plus one `OpusDRED` buffer for the last parsed packet, both allocated
/// once at creation and freed on drop.
///
/// One `DredDecoder` serves any number of [`OpusDecoder`](super::OpusDecoder)s at the
/// same sample rate, one gap at a time: each parse replaces the previous one.
#[derive(Debug)]
pub struct DredDecoder {
    decoder: NonNull<ffi::OpusDREDDecoder>,
    dred: NonNull<ffi::OpusDRED>,
    sample_rate: u32,
    parsed: Option<DredParse>,
}

// SAFETY: both libopus states are plain heap memory owned only by this value, with no
// thread affinity and no shared mutable state (the model weights are read-only); every
// call that changes them goes through `&mut self`. The raw pointers keep the type !Sync.
unsafe impl Send for DredDecoder {}

impl Drop for DredDecoder {
    fn drop(&mut self) {
        // SAFETY: both pointers came from opus_dred_alloc / opus_dred_decoder_create and
        // are freed only here, once.
        unsafe {
            ffi::opus_dred_free(self.dred.as_ptr());
            ffi::opus_dred_decoder_destroy(self.decoder.as_ptr());
        }
    }
}

impl DredDecoder {
    /// A DRED parser whose sample counts are at `sample_rate` (that of the
    /// [`OpusDecoder`](super::OpusDecoder) that will use it). Fails if libopus was built
    /// without DRED.
    pub fn new(sample_rate: u32) -> Result<Self> {
        check_sample_rate(sample_rate)?;
        let mut error: c_int = ffi::OPUS_OK;
        // SAFETY: `error` is a live c_int for libopus to write.
        let decoder = unsafe { ffi::opus_dred_decoder_create(&mut error) };
        let decoder = match NonNull::new(decoder) {
            Some(d) if error == ffi::OPUS_OK => d,
            _ => return Err(map_error(error, "opus_dred_decoder_create", false, (0, 0))),
        };
        // SAFETY: `error` is a live c_int for libopus to write.
        let dred = unsafe { ffi::opus_dred_alloc(&mut error) };
        let Some(dred) = NonNull::new(dred).filter(|_| error == ffi::OPUS_OK) else {
            // SAFETY: `decoder` was just created and is not used again.
            unsafe { ffi::opus_dred_decoder_destroy(decoder.as_ptr()) };
            return Err(map_error(error, "opus_dred_alloc", false, (0, 0)));
        };
        // SAFETY: opus_dred_get_size() is the allocation size of `dred`. opus_dred_alloc
        // leaves the memory uninitialised; zeroing it makes its processing stage "none"
        // so it is never read as parsed data by accident.
        unsafe {
            let size = usize::try_from(ffi::opus_dred_get_size()).unwrap_or(0);
            std::ptr::write_bytes(dred.as_ptr().cast::<u8>(), 0, size);
        }
        Ok(Self {
            decoder,
            dred,
            sample_rate,
            parsed: None,
        })
    }

    /// The rate sample counts are at.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The result of the last successful parse, `None` after a failed one or none.
    pub fn last_parse(&self) -> Option<DredParse> {
        self.parsed
    }

    pub(crate) fn raw_dred(&self) -> *const ffi::OpusDRED {
        self.dred.as_ptr()
    }

    /// Parses `packet`'s DRED (`opus_dred_parse`, processing done at once) and returns
    /// what it covers.
    ///
    /// `needed_samples` (per channel at this rate, e.g. the length of the gap before the
    /// packet; at most 1 s counts) limits how much history is decoded, to save CPU. The
    /// DRED itself starts up to 40 ms before the packet's first sample, so libopus is
    /// asked for `needed_samples` plus 40 ms: that way `available_samples` reaches
    /// `needed_samples` whenever the packet's DRED reaches that far.
    ///
    /// A packet without DRED gives an empty [`DredParse`]; a malformed one an error.
    /// Either way the previous parse is forgotten.
    pub fn parse(&mut self, packet: &[u8], needed_samples: usize) -> Result<DredParse> {
        self.parsed = None;
        let len = packet_len(packet)?;
        let rate = self.sample_rate as usize;
        let ask = needed_samples.min(rate) + rate * DRED_OFFSET_MARGIN_MS / 1000;
        let max = i32::try_from(ask).unwrap_or(i32::MAX);
        let mut end: c_int = 0;
        // SAFETY: both states are live and owned by `self` (exclusively borrowed);
        // `packet` is `len` readable bytes; `end` is a live c_int for libopus to write.
        let ret = unsafe {
            ffi::opus_dred_parse(
                self.decoder.as_ptr(),
                self.dred.as_ptr(),
                packet.as_ptr(),
                len,
                max,
                self.sample_rate as i32,
                &mut end,
                0,
            )
        };
        if ret < 0 {
            return Err(map_error(ret, "opus_dred_parse", true, (0, 0)));
        }
        let parse = DredParse {
            available_samples: usize::try_from(ret).unwrap_or(0),
            end_samples: usize::try_from(end).unwrap_or(0),
        };
        self.parsed = Some(parse);
        Ok(parse)
    }

    /// Forgets the last parse.
    pub fn clear(&mut self) {
        self.parsed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_arithmetic() {
        let p = DredParse {
            available_samples: 4800,
            end_samples: 0,
        };
        assert!(p.covers(960, 960));
        assert!(p.covers(4800, 960));
        assert!(!p.covers(4801, 960));
        assert!(p.overlaps(5000, 960));
        assert!(!p.overlaps(5760, 960));
        let empty = DredParse::default();
        assert!(empty.is_empty() && !empty.overlaps(960, 960) && !empty.covers(960, 960));
        let late = DredParse {
            available_samples: 4800,
            end_samples: 480,
        };
        assert!(!late.covers(960, 960));
        assert!(late.overlaps(960, 960));
        assert!(!late.overlaps(480, 480));
    }

    #[test]
    fn parse_rejects_empty_and_garbage_without_panicking() {
        let mut dred = DredDecoder::new(48_000).unwrap();
        assert!(dred.parse(&[], 960).is_err());
        assert_eq!(dred.last_parse(), None);
        // A valid CELT packet without padding: no DRED.
        let p = dred.parse(&[0xf8, 0xff, 0xfe], 960).unwrap();
        assert!(p.is_empty());
        assert!(DredDecoder::new(44_100).is_err());
    }
}
