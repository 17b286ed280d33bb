//! The decoder.

use super::config::check_complexity;
use super::dred::{DredDecoder, RecoveryReport};
use super::{
    check_loss_length, check_sample_rate, map_error, packet_has_fec, packet_is_celt_only,
    packet_len, packet_samples,
};
use crate::error::{CodecError, Result};
use crate::traits::AudioDecoder;
use opusic_sys as ffi;
use std::ffi::c_int;
use std::ptr::NonNull;
use tincan_media::{AudioFormat, Channels};

/// What [`OpusDecoder::decode_fec`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecDecode {
    /// Samples per channel written (the requested length).
    pub samples_per_channel: usize,
    /// The audio was rebuilt from the packet's in-band FEC data. `false` means libopus
    /// concealed it with PLC instead: the packet had no LBRR data, was CELT-only, was
    /// longer than the gap, or the decoder's previous packet was CELT-only.
    pub from_fec: bool,
}

/// An Opus decoder over a libopus `OpusDecoder` state.
///
/// Output is interleaved; output buffers must hold the whole result (else
/// [`CodecError::OutputTooSmall`], counted in interleaved samples). Packets longer than
/// 120 ms do not exist in Opus, so [`max_frame_samples`](super::max_frame_samples) of the rate
/// (5760 per channel at 48 kHz) is always enough. An empty packet is an error, not a
/// loss: call [`conceal`](AudioDecoder::conceal) for losses.
#[derive(Debug)]
pub struct OpusDecoder {
    raw: NonNull<ffi::OpusDecoder>,
    format: AudioFormat,
    /// The last packet that set libopus's decoder mode was CELT-only (FEC impossible).
    last_celt_only: bool,
    complexity: u8,
    /// Soft-clipping memory of `decode_f32`, one value per channel.
    softclip: [f32; 2],
}

// SAFETY: the libopus decoder state is plain heap memory owned only by this value, with
// no thread affinity and no shared or global mutable state; every call that may change it
// goes through `&mut self`. The raw pointer keeps the type `!Sync`, so `&self` calls
// (read-only CTLs) never run concurrently either.
unsafe impl Send for OpusDecoder {}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: `raw` came from opus_decoder_create, is destroyed only here, once.
        unsafe { ffi::opus_decoder_destroy(self.raw.as_ptr()) }
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` at `sample_rate` (8, 12, 16, 24 or 48 kHz). Any
    /// Opus stream decodes at any of them, mono or stereo.
    pub fn new(sample_rate: u32, channels: Channels) -> Result<Self> {
        check_sample_rate(sample_rate)?;
        let mut error: c_int = ffi::OPUS_OK;
        // SAFETY: rate and channel count are valid (checked / by type); `error` is a live
        // c_int for libopus to write.
        let raw = unsafe {
            ffi::opus_decoder_create(sample_rate as i32, channels.count() as c_int, &mut error)
        };
        let raw = match NonNull::new(raw) {
            Some(raw) if error == ffi::OPUS_OK => raw,
            _ => return Err(map_error(error, "opus_decoder_create", false, (0, 0))),
        };
        Ok(Self {
            raw,
            format: AudioFormat::new(sample_rate, channels)?,
            last_celt_only: false,
            complexity: 0,
            softclip: [0.0; 2],
        })
    }

    /// The number of output channels.
    pub fn channels(&self) -> usize {
        self.format.channels().count()
    }

    /// The output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.format.sample_rate()
    }

    /// Sets decoder complexity 0-10 (default 0). At 5 and above libopus conceals with
    /// deep PLC (a neural network; about 20× the CPU of classic PLC per lost frame), at
    /// 6-7 and above it would also enhance SILK speech (LACE/NoLACE), but this build of
    /// libopus leaves OSCE out (`opusic-sys` without its `osce` feature).
    pub fn set_complexity(&mut self, complexity: u8) -> Result<()> {
        check_complexity(complexity)?;
        // SAFETY: `raw` is live; OPUS_SET_COMPLEXITY reads one opus_int32 vararg.
        let ret = unsafe {
            ffi::opus_decoder_ctl(
                self.raw.as_ptr(),
                ffi::OPUS_SET_COMPLEXITY_REQUEST,
                i32::from(complexity),
            )
        };
        if ret != ffi::OPUS_OK {
            return Err(map_error(ret, "OPUS_SET_COMPLEXITY", false, (0, 0)));
        }
        self.complexity = complexity;
        Ok(())
    }

    /// The decoder complexity set last.
    pub fn complexity(&self) -> u8 {
        self.complexity
    }

    /// Samples per channel of the last decode, concealment or recovery
    /// (`OPUS_GET_LAST_PACKET_DURATION`); 0 before the first.
    pub fn last_packet_duration(&self) -> usize {
        let mut value: i32 = 0;
        // SAFETY: `raw` is live; the GET request writes one opus_int32 through the pointer,
        // which points to a live local, and does not modify the state (the type is !Sync,
        // so nothing else runs meanwhile).
        let ret = unsafe {
            ffi::opus_decoder_ctl(
                self.raw.as_ptr(),
                ffi::OPUS_GET_LAST_PACKET_DURATION_REQUEST,
                &mut value as *mut i32,
            )
        };
        if ret == ffi::OPUS_OK {
            usize::try_from(value).unwrap_or(0)
        } else {
            0
        }
    }

    /// Samples per channel `packet` decodes to at this decoder's rate.
    pub fn packet_samples(&self, packet: &[u8]) -> Result<usize> {
        packet_samples(packet, self.sample_rate())
    }

    /// Checks a packet and the output space for it; returns (len, samples per channel).
    fn prepare_decode(&self, packet: &[u8], out_len: usize) -> Result<(i32, usize)> {
        let len = packet_len(packet)?;
        let samples = self.packet_samples(packet)?;
        let needed = samples * self.channels();
        if out_len < needed {
            return Err(CodecError::OutputTooSmall {
                got: out_len,
                needed,
            });
        }
        Ok((len, samples))
    }

    /// Checks a loss length and the output space for it.
    fn prepare_loss(&self, samples_per_channel: usize, out_len: usize) -> Result<()> {
        check_loss_length(samples_per_channel, self.sample_rate())?;
        let needed = samples_per_channel * self.channels();
        if out_len < needed {
            return Err(CodecError::OutputTooSmall {
                got: out_len,
                needed,
            });
        }
        Ok(())
    }

    fn finish(&self, ret: c_int, op: &'static str, space: (usize, usize)) -> Result<usize> {
        if ret < 0 {
            return Err(map_error(ret, op, true, space));
        }
        Ok(ret as usize)
    }

    /// Decodes one packet into `f32` samples, returning samples per channel written.
    ///
    /// Like libopus's own 16-bit output, the result is soft-clipped
    /// (`opus_pcm_soft_clip`) into -1.0..=1.0, the range tincan's `f32` audio uses.
    pub fn decode_f32(&mut self, packet: &[u8], pcm: &mut [f32]) -> Result<usize> {
        let (len, samples) = self.prepare_decode(packet, pcm.len())?;
        // SAFETY: `raw` is live; `packet` is `len` readable bytes; `pcm` has room for
        // `samples` (<= 120 ms) per channel, checked, and libopus writes at most that.
        let ret = unsafe {
            ffi::opus_decode_float(
                self.raw.as_ptr(),
                packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                samples as c_int,
                0,
            )
        };
        let written = self.finish(
            ret,
            "opus_decode_float",
            (pcm.len(), samples * self.channels()),
        )?;
        self.last_celt_only = packet_is_celt_only(packet);
        // SAFETY: `pcm` holds `written` (<= samples) samples per channel, just written;
        // `softclip` has one float per channel (at most 2).
        unsafe {
            ffi::opus_pcm_soft_clip(
                pcm.as_mut_ptr(),
                written as c_int,
                self.channels() as c_int,
                self.softclip.as_mut_ptr(),
            )
        };
        Ok(written)
    }

    /// Whether `decode_fec(packet, samples_per_channel, ..)` would really use FEC data
    /// (mirrors the checks in libopus's `opus_decode_native`), rather than conceal.
    pub fn fec_usable(&self, packet: &[u8], samples_per_channel: usize) -> bool {
        let frame =
            ::opus::packet::get_samples_per_frame(packet, self.sample_rate()).unwrap_or(usize::MAX);
        packet_has_fec(packet)
            && !packet_is_celt_only(packet)
            && !self.last_celt_only
            && frame <= samples_per_channel
    }

    /// Rebuilds the lost audio just before `next_packet` from that packet's in-band FEC
    /// (`opus_decode` with `decode_fec = 1`), then the caller decodes `next_packet`
    /// normally.
    ///
    /// `samples_per_channel` is the length of the gap to fill (a multiple of 2.5 ms, at
    /// most 120 ms), usually one packet's duration. When the packet has no FEC for it,
    /// libopus conceals the gap with PLC instead; [`FecDecode::from_fec`] says which.
    /// If the gap is longer than `next_packet`'s frame, its start is concealed and only
    /// the last frame comes from FEC.
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        samples_per_channel: usize,
        pcm: &mut [i16],
    ) -> Result<FecDecode> {
        let len = packet_len(next_packet)?;
        self.packet_samples(next_packet)?;
        self.prepare_loss(samples_per_channel, pcm.len())?;
        let from_fec = self.fec_usable(next_packet, samples_per_channel);
        // SAFETY: `raw` is live; `next_packet` is `len` readable bytes; `pcm` has room for
        // `samples_per_channel` (<= 120 ms, a multiple of 2.5 ms) per channel, checked;
        // libopus writes exactly that many.
        let ret = unsafe {
            ffi::opus_decode(
                self.raw.as_ptr(),
                next_packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                samples_per_channel as c_int,
                1,
            )
        };
        let samples = self.finish(
            ret,
            "opus_decode (FEC)",
            (pcm.len(), samples_per_channel * self.channels()),
        )?;
        if from_fec {
            self.last_celt_only = false;
        }
        Ok(FecDecode {
            samples_per_channel: samples,
            from_fec,
        })
    }

    /// Rebuilds `samples_per_channel` lost samples starting `offset_samples` before the
    /// first sample of the packet `dred` last parsed, from that packet's DRED
    /// (`opus_decoder_dred_decode`), returning samples per channel written.
    ///
    /// Offsets count at this decoder's rate, which must be `dred`'s rate. For a gap of
    /// `n` lost frames of `f` samples before the packet, frame `k` (0 = oldest) starts at
    /// offset `(n - k) * f`; decode them oldest first, each right after the audio before
    /// it, so the decoder state stays continuous. The frame must overlap what the parse
    /// covers ([`DredParse::overlaps`](super::DredParse::overlaps)), else
    /// [`CodecError::Unsupported`] (conceal it instead); parts outside are concealed by
    /// libopus.
    pub fn decode_dred(
        &mut self,
        dred: &DredDecoder,
        offset_samples: usize,
        samples_per_channel: usize,
        pcm: &mut [i16],
    ) -> Result<usize> {
        self.prepare_loss(samples_per_channel, pcm.len())?;
        if dred.sample_rate() != self.sample_rate() {
            return Err(CodecError::Unsupported {
                parameter: "DRED sample rate",
                value: format!(
                    "{} Hz for a {} Hz decoder",
                    dred.sample_rate(),
                    self.sample_rate()
                ),
            });
        }
        let covered = dred
            .last_parse()
            .is_some_and(|p| p.overlaps(offset_samples, samples_per_channel));
        if !covered {
            return Err(CodecError::Unsupported {
                parameter: "DRED offset",
                value: format!(
                    "{offset_samples} samples is outside the parsed DRED ({:?})",
                    dred.last_parse()
                ),
            });
        }
        let offset = i32::try_from(offset_samples).map_err(|_| CodecError::Unsupported {
            parameter: "DRED offset",
            value: offset_samples.to_string(),
        })?;
        // SAFETY: `raw` is live; `dred.raw_dred()` points to a DRED state fully processed
        // by a successful opus_dred_parse (checked via last_parse) and is not modified
        // during the call; `pcm` has room for `samples_per_channel` (<= 120 ms, a multiple
        // of 2.5 ms) per channel, checked; libopus writes at most that many.
        let ret = unsafe {
            ffi::opus_decoder_dred_decode(
                self.raw.as_ptr(),
                dred.raw_dred(),
                offset,
                pcm.as_mut_ptr(),
                samples_per_channel as i32,
            )
        };
        self.finish(
            ret,
            "opus_decoder_dred_decode",
            (pcm.len(), samples_per_channel * self.channels()),
        )
    }

    /// Fills a gap of `lost_frames` frames of `frame_samples` samples per channel that
    /// ended just before `next_packet` arrived, into `pcm` (oldest frame first,
    /// `lost_frames * frame_samples` samples per channel), using the best source per
    /// frame:
    ///
    /// 1. the newest lost frame from `next_packet`'s in-band FEC, when it has some;
    /// 2. any frame that overlaps what `next_packet`'s DRED covers, from DRED;
    /// 3. everything else with PLC.
    ///
    /// This is the order of libopus's own `opus_demo`. Then decode `next_packet` itself
    /// normally. A `next_packet` that cannot be parsed counts as carrying neither FEC nor
    /// DRED (its own decode will report the error), so the gap is always filled; errors
    /// are only about the arguments. The report says how many frames came from each
    /// source.
    pub fn recover_with_dred(
        &mut self,
        dred: &mut DredDecoder,
        next_packet: &[u8],
        lost_frames: usize,
        frame_samples: usize,
        pcm: &mut [i16],
    ) -> Result<RecoveryReport> {
        check_loss_length(frame_samples, self.sample_rate())?;
        let channels = self.channels();
        let needed = lost_frames
            .saturating_mul(frame_samples)
            .saturating_mul(channels);
        if pcm.len() < needed {
            return Err(CodecError::OutputTooSmall {
                got: pcm.len(),
                needed,
            });
        }
        let mut report = RecoveryReport::default();
        if lost_frames == 0 {
            return Ok(report);
        }
        let parse = dred
            .parse(next_packet, lost_frames * frame_samples)
            .ok()
            .filter(|p| p.available_samples > 0);
        report.dred_available_samples = parse.map_or(0, |p| p.available_samples);
        for (k, out) in pcm[..needed]
            .chunks_exact_mut(frame_samples * channels)
            .enumerate()
        {
            let offset = (lost_frames - k) * frame_samples;
            if k + 1 == lost_frames
                && self.fec_usable(next_packet, frame_samples)
                && self.decode_fec(next_packet, frame_samples, out).is_ok()
            {
                // (A packet libopus cannot parse fails before touching the state, and the
                // frame is concealed below instead.)
                report.fec_frames += 1;
            } else if parse.is_some_and(|p| p.overlaps(offset, frame_samples)) {
                self.decode_dred(dred, offset, frame_samples, out)?;
                report.dred_frames += 1;
            } else {
                self.conceal(frame_samples, out)?;
                report.plc_frames += 1;
            }
        }
        Ok(report)
    }
}

impl AudioDecoder for OpusDecoder {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn decode(&mut self, packet: &[u8], pcm: &mut [i16]) -> Result<usize> {
        let (len, samples) = self.prepare_decode(packet, pcm.len())?;
        // SAFETY: `raw` is live; `packet` is `len` readable bytes; `pcm` has room for
        // `samples` (<= 120 ms) per channel, checked, and libopus writes at most that.
        let ret = unsafe {
            ffi::opus_decode(
                self.raw.as_ptr(),
                packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                samples as c_int,
                0,
            )
        };
        let written = self.finish(ret, "opus_decode", (pcm.len(), samples * self.channels()))?;
        self.last_celt_only = packet_is_celt_only(packet);
        Ok(written)
    }

    /// Conceals `samples_per_channel` lost samples (a multiple of 2.5 ms, at most 120 ms;
    /// normally one packet's duration) with PLC: classic below decoder complexity 5,
    /// deep PLC from 5.
    fn conceal(&mut self, samples_per_channel: usize, pcm: &mut [i16]) -> Result<usize> {
        self.prepare_loss(samples_per_channel, pcm.len())?;
        // SAFETY: `raw` is live; a null packet of length 0 asks for PLC; `pcm` has room for
        // `samples_per_channel` (<= 120 ms, a multiple of 2.5 ms) per channel, checked;
        // libopus writes exactly that many.
        let ret = unsafe {
            ffi::opus_decode(
                self.raw.as_ptr(),
                std::ptr::null(),
                0,
                pcm.as_mut_ptr(),
                samples_per_channel as c_int,
                0,
            )
        };
        self.finish(
            ret,
            "opus_decode (PLC)",
            (pcm.len(), samples_per_channel * self.channels()),
        )
    }

    /// Resets the decoder state (`OPUS_RESET_STATE`); the complexity setting is kept.
    fn reset(&mut self) -> Result<()> {
        // SAFETY: `raw` is live; OPUS_RESET_STATE takes no argument.
        let ret = unsafe { ffi::opus_decoder_ctl(self.raw.as_ptr(), ffi::OPUS_RESET_STATE) };
        if ret != ffi::OPUS_OK {
            return Err(map_error(ret, "OPUS_RESET_STATE", false, (0, 0)));
        }
        self.last_celt_only = false;
        self.softclip = [0.0; 2];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opus::{OpusConfig, OpusEncoder};
    use crate::traits::AudioEncoder;

    fn packets(count: usize) -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new(&OpusConfig::new(48_000, Channels::Mono)).unwrap();
        let mut buf = [0u8; 4000];
        (0..count)
            .map(|f| {
                let pcm: Vec<i16> = (0..960)
                    .map(|i| (((f * 960 + i) as f32 * 0.03).sin() * 8_000.0) as i16)
                    .collect();
                let n = encoder.encode(&pcm, &mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn decodes_at_any_rate_and_channel_count() {
        let packets = packets(5);
        for rate in [8_000, 12_000, 16_000, 24_000, 48_000] {
            for channels in [Channels::Mono, Channels::Stereo] {
                let mut decoder = OpusDecoder::new(rate, channels).unwrap();
                let mut pcm = vec![0i16; 5760 * 2];
                let mut pcm_f = vec![0f32; 5760 * 2];
                for p in &packets {
                    assert_eq!(decoder.decode(p, &mut pcm).unwrap(), rate as usize / 50);
                    assert_eq!(
                        decoder.decode_f32(p, &mut pcm_f).unwrap(),
                        rate as usize / 50
                    );
                }
                assert_eq!(decoder.last_packet_duration(), rate as usize / 50);
            }
        }
    }

    #[test]
    fn reset_and_complexity() {
        let packets = packets(10);
        let mut decoder = OpusDecoder::new(48_000, Channels::Mono).unwrap();
        decoder.set_complexity(10).unwrap();
        assert_eq!(decoder.complexity(), 10);
        let mut first = vec![0i16; 960 * 10];
        for (p, out) in packets.iter().zip(first.chunks_exact_mut(960)) {
            decoder.decode(p, out).unwrap();
        }
        decoder.reset().unwrap();
        assert_eq!(decoder.complexity(), 10);
        let mut second = vec![0i16; 960 * 10];
        for (p, out) in packets.iter().zip(second.chunks_exact_mut(960)) {
            decoder.decode(p, out).unwrap();
        }
        // After a reset the same packets decode to the same audio.
        assert_eq!(first, second);
        // Deep PLC (complexity >= 5) conceals without error, several frames in a row.
        for _ in 0..6 {
            assert_eq!(decoder.conceal(960, &mut second).unwrap(), 960);
        }
    }

    #[test]
    fn fec_without_lbrr_falls_back_to_plc() {
        // No FEC configured: packets carry no LBRR, so decode_fec says so.
        let packets = packets(4);
        let mut decoder = OpusDecoder::new(48_000, Channels::Mono).unwrap();
        let mut pcm = vec![0i16; 5760];
        decoder.decode(&packets[0], &mut pcm).unwrap();
        let outcome = decoder.decode_fec(&packets[2], 960, &mut pcm).unwrap();
        assert_eq!(
            outcome,
            FecDecode {
                samples_per_channel: 960,
                from_fec: false
            }
        );
        assert!(matches!(
            decoder.decode_fec(&[], 960, &mut pcm),
            Err(CodecError::InvalidBitstream { .. })
        ));
        assert!(matches!(
            decoder.decode_fec(&packets[2], 100, &mut pcm),
            Err(CodecError::Unsupported { .. })
        ));
    }
}
