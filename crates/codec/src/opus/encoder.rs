//! The encoder.

use super::config::{check_bitrate, check_complexity, check_loss, dred_units};
use super::{Bandwidth, CODEC, OpusConfig, map_error};
use crate::error::{CodecError, Result};
use crate::traits::AudioEncoder;
use opusic_sys as ffi;
use std::ffi::c_int;
use std::ptr::NonNull;
use std::time::Duration;
use tincan_media::AudioFormat;

/// An Opus encoder over a libopus `OpusEncoder` state.
///
/// Takes exactly [`frame_samples`](AudioEncoder::frame_samples) samples per channel per
/// call (interleaved when stereo) and writes one packet. Encoding does not allocate.
///
/// The packet buffer also caps the packet size (libopus lowers that packet's quality to
/// fit), but it must hold at least one frame's share of the target bitrate (and 3 bytes),
/// else [`CodecError::OutputTooSmall`]. [`RECOMMENDED_PACKET_BYTES`](super::RECOMMENDED_PACKET_BYTES)
/// is always enough.
#[derive(Debug)]
pub struct OpusEncoder {
    raw: NonNull<ffi::OpusEncoder>,
    config: OpusConfig,
    format: AudioFormat,
    frame_samples: usize,
    lookahead: usize,
    /// Sanitised copy of `f32` input (non-finite samples zeroed), allocated once.
    scratch: Vec<f32>,
}

// SAFETY: the libopus encoder state is plain heap memory owned only by this value, with
// no thread affinity and no shared or global mutable state; every call that may change it
// goes through `&mut self`. The raw pointer keeps the type `!Sync`, so `&self` calls
// (read-only CTLs) never run concurrently either.
unsafe impl Send for OpusEncoder {}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: `raw` came from opus_encoder_create, is destroyed only here, once.
        unsafe { ffi::opus_encoder_destroy(self.raw.as_ptr()) }
    }
}

impl OpusEncoder {
    /// An encoder for `config` (validated first).
    pub fn new(config: &OpusConfig) -> Result<Self> {
        config.validate()?;
        let channels = config.channels.count();
        let mut error: c_int = ffi::OPUS_OK;
        // SAFETY: rate, channel count and application are valid (checked above); `error`
        // is a live c_int for libopus to write.
        let raw = unsafe {
            ffi::opus_encoder_create(
                config.sample_rate as i32,
                channels as c_int,
                config.application.raw(),
                &mut error,
            )
        };
        let raw = match NonNull::new(raw) {
            Some(raw) if error == ffi::OPUS_OK => raw,
            _ => return Err(map_error(error, "opus_encoder_create", false, (0, 0))),
        };
        let frame_samples = config.frame_samples();
        let mut encoder = Self {
            raw,
            config: config.clone(),
            format: AudioFormat::new(config.sample_rate, config.channels)?,
            frame_samples,
            lookahead: 0,
            scratch: vec![0.0; frame_samples * channels],
        };
        encoder.set_bitrate(config.bitrate)?;
        encoder.set_complexity(config.complexity)?;
        encoder.set_inband_fec(config.inband_fec)?;
        encoder.set_packet_loss_percent(config.packet_loss_percent)?;
        encoder.set_dtx(config.dtx)?;
        encoder.set_dred_duration(config.dred_duration)?;
        encoder.set_max_bandwidth(config.max_bandwidth)?;
        let mut lookahead: i32 = 0;
        // SAFETY: GET_LOOKAHEAD writes one opus_int32 through the pointer, which is live.
        let ret = unsafe {
            ffi::opus_encoder_ctl(
                raw.as_ptr(),
                ffi::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut lookahead as *mut i32,
            )
        };
        if ret != ffi::OPUS_OK {
            return Err(map_error(ret, "OPUS_GET_LOOKAHEAD", false, (0, 0)));
        }
        encoder.lookahead = usize::try_from(lookahead).unwrap_or(0);
        Ok(encoder)
    }

    /// Runs a SET CTL taking one `opus_int32`.
    fn set_ctl(&mut self, request: c_int, value: i32, name: &'static str) -> Result<()> {
        // SAFETY: `raw` is a live encoder; every SET request used here reads exactly one
        // opus_int32 vararg, which we pass.
        let ret = unsafe { ffi::opus_encoder_ctl(self.raw.as_ptr(), request, value) };
        if ret == ffi::OPUS_OK {
            Ok(())
        } else {
            Err(map_error(ret, name, false, (0, 0)))
        }
    }

    /// Runs a GET CTL returning one `opus_int32`.
    fn get_ctl(&self, request: c_int, name: &'static str) -> Result<i32> {
        let mut value: i32 = 0;
        // SAFETY: `raw` is a live encoder; every GET request used here writes exactly one
        // opus_int32 through the pointer, which points to a live local. GET requests do
        // not modify the state, and the type is !Sync, so no other call runs meanwhile.
        let ret =
            unsafe { ffi::opus_encoder_ctl(self.raw.as_ptr(), request, &mut value as *mut i32) };
        if ret == ffi::OPUS_OK {
            Ok(value)
        } else {
            Err(map_error(ret, name, false, (0, 0)))
        }
    }

    /// The current settings (what was configured, with every setter applied since).
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Sets the encoder complexity, 0 (cheapest) to 10 (best).
    pub fn set_complexity(&mut self, complexity: u8) -> Result<()> {
        check_complexity(complexity)?;
        self.set_ctl(
            ffi::OPUS_SET_COMPLEXITY_REQUEST,
            i32::from(complexity),
            "OPUS_SET_COMPLEXITY",
        )?;
        self.config.complexity = complexity;
        Ok(())
    }

    /// Turns in-band FEC on or off (effective only with a loss percentage above 0).
    pub fn set_inband_fec(&mut self, on: bool) -> Result<()> {
        self.set_ctl(
            ffi::OPUS_SET_INBAND_FEC_REQUEST,
            i32::from(on),
            "OPUS_SET_INBAND_FEC",
        )?;
        self.config.inband_fec = on;
        Ok(())
    }

    /// Sets the expected packet loss, 0-100 %. 0 stops both FEC and DRED output.
    pub fn set_packet_loss_percent(&mut self, percent: u8) -> Result<()> {
        check_loss(percent)?;
        self.set_ctl(
            ffi::OPUS_SET_PACKET_LOSS_PERC_REQUEST,
            i32::from(percent),
            "OPUS_SET_PACKET_LOSS_PERC",
        )?;
        self.config.packet_loss_percent = percent;
        Ok(())
    }

    /// Turns discontinuous transmission on or off.
    pub fn set_dtx(&mut self, on: bool) -> Result<()> {
        self.set_ctl(ffi::OPUS_SET_DTX_REQUEST, i32::from(on), "OPUS_SET_DTX")?;
        self.config.dtx = on;
        Ok(())
    }

    /// Sets how much past audio each packet may carry as DRED: a multiple of 10 ms up to
    /// 1 s, zero for off. See [`OpusConfig::dred_duration`]: nothing is emitted while
    /// the packet loss percentage is 0, and this setter leaves that percentage alone.
    pub fn set_dred_duration(&mut self, duration: Duration) -> Result<()> {
        let units = dred_units(duration)?;
        self.set_ctl(
            ffi::OPUS_SET_DRED_DURATION_REQUEST,
            units,
            "OPUS_SET_DRED_DURATION",
        )?;
        self.config.dred_duration = duration;
        Ok(())
    }

    /// Caps the coded bandwidth (`None`: the encoder chooses).
    pub fn set_max_bandwidth(&mut self, bandwidth: Option<Bandwidth>) -> Result<()> {
        let raw = bandwidth.map_or(ffi::OPUS_BANDWIDTH_FULLBAND, Bandwidth::raw);
        self.set_ctl(
            ffi::OPUS_SET_MAX_BANDWIDTH_REQUEST,
            raw,
            "OPUS_SET_MAX_BANDWIDTH",
        )?;
        self.config.max_bandwidth = bandwidth;
        Ok(())
    }

    /// Samples per channel the encoder looks ahead (`OPUS_GET_LOOKAHEAD`): the delay
    /// decoded audio has relative to the input (312 at 48 kHz for VOIP and Audio, i.e.
    /// 6.5 ms; 2.5 ms for LowDelay).
    pub fn lookahead_samples(&self) -> usize {
        self.lookahead
    }

    /// Whether the last frames were silence and the encoder is in DTX (sending packets
    /// of at most 2 bytes). Always `false` with DTX off.
    pub fn in_dtx(&self) -> bool {
        self.get_ctl(ffi::OPUS_GET_IN_DTX_REQUEST, "OPUS_GET_IN_DTX")
            .is_ok_and(|v| v != 0)
    }

    /// Bytes a packet buffer needs at least: one frame's share of the target bitrate,
    /// and never less than 3.
    pub fn min_packet_bytes(&self) -> usize {
        let bits = u64::from(self.config.bitrate) * self.frame_samples as u64
            / u64::from(self.config.sample_rate);
        (bits.div_ceil(8) as usize).max(3)
    }

    fn check_buffers(&self, input: usize, packet: &[u8]) -> Result<i32> {
        let expected = self.frame_samples * self.config.channels.count();
        if input != expected {
            return Err(CodecError::WrongFrameSize {
                got: input,
                expected,
            });
        }
        let needed = self.min_packet_bytes();
        if packet.len() < needed {
            return Err(CodecError::OutputTooSmall {
                got: packet.len(),
                needed,
            });
        }
        Ok(i32::try_from(packet.len()).unwrap_or(i32::MAX))
    }

    fn finish(&self, ret: i32, packet: &[u8]) -> Result<usize> {
        if ret < 0 {
            return Err(map_error(
                ret,
                "opus_encode",
                false,
                (packet.len(), self.min_packet_bytes()),
            ));
        }
        usize::try_from(ret).map_err(|_| CodecError::Library {
            codec: CODEC,
            reason: format!("opus_encode returned {ret}"),
        })
    }

    /// Encodes one frame of `f32` samples (full scale ±1.0) into `packet`, returning the
    /// packet length. Non-finite samples are encoded as silence. Does not allocate.
    pub fn encode_f32(&mut self, pcm: &[f32], packet: &mut [u8]) -> Result<usize> {
        let max_bytes = self.check_buffers(pcm.len(), packet)?;
        for (out, &sample) in self.scratch.iter_mut().zip(pcm) {
            *out = if sample.is_finite() { sample } else { 0.0 };
        }
        // SAFETY: `raw` is live; `scratch` holds exactly frame_samples * channels samples
        // (its length never changes), the frame size libopus reads; `packet` is writable
        // for `max_bytes` <= packet.len() bytes.
        let ret = unsafe {
            ffi::opus_encode_float(
                self.raw.as_ptr(),
                self.scratch.as_ptr(),
                self.frame_samples as c_int,
                packet.as_mut_ptr(),
                max_bytes,
            )
        };
        self.finish(ret, packet)
    }
}

impl AudioEncoder for OpusEncoder {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    fn encode(&mut self, pcm: &[i16], packet: &mut [u8]) -> Result<usize> {
        let max_bytes = self.check_buffers(pcm.len(), packet)?;
        // SAFETY: `raw` is live; `pcm` holds exactly frame_samples * channels samples
        // (checked), what libopus reads for this frame size; `packet` is writable for
        // `max_bytes` <= packet.len() bytes.
        let ret = unsafe {
            ffi::opus_encode(
                self.raw.as_ptr(),
                pcm.as_ptr(),
                self.frame_samples as c_int,
                packet.as_mut_ptr(),
                max_bytes,
            )
        };
        self.finish(ret, packet)
    }

    /// Sets the target bitrate, within [`BITRATE_RANGE`](super::BITRATE_RANGE).
    fn set_bitrate(&mut self, bits_per_second: u32) -> Result<()> {
        check_bitrate(bits_per_second)?;
        self.set_ctl(
            ffi::OPUS_SET_BITRATE_REQUEST,
            bits_per_second as i32,
            "OPUS_SET_BITRATE",
        )?;
        self.config.bitrate = bits_per_second;
        Ok(())
    }

    /// The encoder lookahead: Opus decoders add no delay of their own beyond it.
    fn delay_samples(&self) -> usize {
        self.lookahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opus::{Application, FrameDuration};
    use tincan_media::Channels;

    #[test]
    fn lookahead_depends_on_application_and_rate() {
        for (rate, app, expected) in [
            (48_000, Application::Voip, 312),
            (48_000, Application::Audio, 312),
            (48_000, Application::LowDelay, 120),
            (16_000, Application::Voip, 104),
            (8_000, Application::Voip, 52),
        ] {
            let encoder =
                OpusEncoder::new(&OpusConfig::new(rate, Channels::Mono).with_application(app))
                    .unwrap();
            assert_eq!(encoder.lookahead_samples(), expected, "{rate} {app:?}");
        }
    }

    #[test]
    fn setters_update_the_config() {
        let config =
            OpusConfig::new(24_000, Channels::Stereo).with_frame_duration(FrameDuration::Ms60);
        let mut encoder = OpusEncoder::new(&config).unwrap();
        assert_eq!(encoder.frame_samples(), 1440);
        assert_eq!(encoder.format().channels(), Channels::Stereo);
        encoder.set_bitrate(64_000).unwrap();
        encoder.set_complexity(3).unwrap();
        encoder.set_inband_fec(true).unwrap();
        encoder.set_packet_loss_percent(15).unwrap();
        encoder.set_dtx(true).unwrap();
        encoder
            .set_dred_duration(Duration::from_millis(300))
            .unwrap();
        encoder
            .set_max_bandwidth(Some(Bandwidth::Wideband))
            .unwrap();
        let c = encoder.config();
        assert_eq!(
            (c.bitrate, c.complexity, c.packet_loss_percent),
            (64_000, 3, 15)
        );
        assert!(c.inband_fec && c.dtx);
        assert_eq!(c.dred_duration, Duration::from_millis(300));
        assert_eq!(c.max_bandwidth, Some(Bandwidth::Wideband));
        // 64 kbps × 60 ms = 480 bytes.
        assert_eq!(encoder.min_packet_bytes(), 480);
        // A failed setter leaves the setting alone.
        assert!(encoder.set_bitrate(5).is_err());
        assert_eq!(encoder.config().bitrate, 64_000);
        let mut packet = [0u8; 4000];
        let n = encoder.encode(&[0i16; 2880], &mut packet).unwrap();
        assert!(n > 0);
    }

    #[test]
    fn max_bandwidth_limits_the_coded_bandwidth() {
        let config = OpusConfig::new(48_000, Channels::Mono)
            .with_bitrate(64_000)
            .with_max_bandwidth(Some(Bandwidth::Narrowband));
        let mut encoder = OpusEncoder::new(&config).unwrap();
        let mut packet = [0u8; 4000];
        // A loud chirp, which would otherwise be coded fullband.
        let pcm: Vec<i16> = (0..960)
            .map(|i| ((i as f32 * i as f32 * 0.0005).sin() * 12_000.0) as i16)
            .collect();
        for _ in 0..10 {
            let n = encoder.encode(&pcm, &mut packet).unwrap();
            assert_eq!(
                crate::opus::packet_bandwidth(&packet[..n]).unwrap(),
                Bandwidth::Narrowband
            );
        }
    }
}
