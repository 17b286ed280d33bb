//! Encoder configuration.

use super::check_sample_rate;
use crate::error::{CodecError, Result};
use opusic_sys as ffi;
use std::ffi::c_int;
use std::time::Duration;
use tincan_media::Channels;

/// Duration of one encoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameDuration {
    /// 10 ms.
    Ms10,
    /// 20 ms (the default, and what WebRTC uses).
    #[default]
    Ms20,
    /// 40 ms.
    Ms40,
    /// 60 ms.
    Ms60,
}

impl FrameDuration {
    /// Every supported duration, shortest first.
    pub const ALL: [Self; 4] = [Self::Ms10, Self::Ms20, Self::Ms40, Self::Ms60];

    /// The duration in milliseconds.
    pub const fn millis(self) -> u32 {
        match self {
            Self::Ms10 => 10,
            Self::Ms20 => 20,
            Self::Ms40 => 40,
            Self::Ms60 => 60,
        }
    }

    /// The duration.
    pub const fn duration(self) -> Duration {
        Duration::from_millis(self.millis() as u64)
    }

    /// Samples per channel in one frame at `sample_rate`.
    pub const fn samples(self, sample_rate: u32) -> usize {
        sample_rate as usize * self.millis() as usize / 1000
    }

    /// From milliseconds; only 10, 20, 40 and 60 are supported.
    pub fn from_millis(millis: u32) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.millis() == millis)
            .ok_or_else(|| CodecError::Unsupported {
                parameter: "frame duration",
                value: format!("{millis} ms"),
            })
    }
}

impl TryFrom<Duration> for FrameDuration {
    type Error = CodecError;

    fn try_from(duration: Duration) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.duration() == duration)
            .ok_or_else(|| CodecError::Unsupported {
                parameter: "frame duration",
                value: format!("{duration:?}"),
            })
    }
}

/// What the encoder tunes for (fixed at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Application {
    /// Speech in calls (the default): favours intelligibility, allows FEC and DRED.
    #[default]
    Voip,
    /// Music and general audio: favours fidelity.
    Audio,
    /// Lowest delay (CELT only, 2.5 ms less lookahead); no FEC, no DRED.
    LowDelay,
}

impl Application {
    pub(crate) const fn raw(self) -> c_int {
        match self {
            Self::Voip => ffi::OPUS_APPLICATION_VOIP,
            Self::Audio => ffi::OPUS_APPLICATION_AUDIO,
            Self::LowDelay => ffi::OPUS_APPLICATION_RESTRICTED_LOWDELAY,
        }
    }
}

/// Audio bandwidth of Opus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bandwidth {
    /// 4 kHz passband.
    Narrowband,
    /// 6 kHz passband.
    Mediumband,
    /// 8 kHz passband.
    Wideband,
    /// 12 kHz passband.
    Superwideband,
    /// 20 kHz passband.
    Fullband,
}

impl Bandwidth {
    pub(crate) const fn raw(self) -> c_int {
        match self {
            Self::Narrowband => ffi::OPUS_BANDWIDTH_NARROWBAND,
            Self::Mediumband => ffi::OPUS_BANDWIDTH_MEDIUMBAND,
            Self::Wideband => ffi::OPUS_BANDWIDTH_WIDEBAND,
            Self::Superwideband => ffi::OPUS_BANDWIDTH_SUPERWIDEBAND,
            Self::Fullband => ffi::OPUS_BANDWIDTH_FULLBAND,
        }
    }

    pub(crate) fn from_opus(bandwidth: ::opus::Bandwidth) -> Option<Self> {
        Some(match bandwidth {
            ::opus::Bandwidth::Narrowband => Self::Narrowband,
            ::opus::Bandwidth::Mediumband => Self::Mediumband,
            ::opus::Bandwidth::Wideband => Self::Wideband,
            ::opus::Bandwidth::Superwideband => Self::Superwideband,
            ::opus::Bandwidth::Fullband => Self::Fullband,
            ::opus::Bandwidth::Auto => return None,
        })
    }
}

/// Lowest and highest bitrate accepted, bits per second (the range of RFC 6716).
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;

/// Longest DRED history an encoder can be asked to carry: 1 s.
pub const MAX_DRED_DURATION: Duration = Duration::from_secs(1);

/// Everything an [`OpusEncoder`](super::OpusEncoder) is created with.
///
/// Fields are public; the `with_*` methods chain. Nothing is checked until
/// [`validate`](Self::validate) (which [`OpusEncoder::new`](super::OpusEncoder::new)
/// calls). [`Default`] is 48 kHz mono with the defaults below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    /// Sample rate of the PCM, one of 8, 12, 16, 24, 48 kHz. Default 48 kHz.
    pub sample_rate: u32,
    /// Mono or stereo. Default mono.
    pub channels: Channels,
    /// Duration of each frame given to `encode`. Default 20 ms.
    pub frame_duration: FrameDuration,
    /// What to tune for. Default [`Application::Voip`].
    pub application: Application,
    /// Target bitrate in bits per second, within [`BITRATE_RANGE`]. Default 32 000.
    pub bitrate: u32,
    /// Encoder complexity 0 (cheapest) to 10 (best). Default 9.
    pub complexity: u8,
    /// Carry in-band FEC (SILK LBRR: a low-bitrate copy of the previous frame). Only
    /// produced while [`packet_loss_percent`](Self::packet_loss_percent) is above 0 and
    /// the encoder is in a SILK or hybrid mode. Default off.
    pub inband_fec: bool,
    /// Expected packet loss, 0 to 100 %. Drives how much FEC and DRED the encoder spends
    /// bits on; **0 turns both off**. Default 0.
    pub packet_loss_percent: u8,
    /// Discontinuous transmission: after about 200 ms of silence the encoder emits
    /// 1-byte packets (which need not be sent; the receiver conceals or generates comfort
    /// noise) with a real comfort-noise update every 400 ms. Default off.
    pub dtx: bool,
    /// Deep REDundancy: how much past audio each packet can carry, as a multiple of
    /// 10 ms up to [`MAX_DRED_DURATION`]; zero turns DRED off. Default zero.
    ///
    /// This is a cap, not a promise: DRED bits come out of the bitrate, so at 24 kbps
    /// a packet covers only about 110-190 ms whatever is asked, about 530 ms at 48 kbps.
    /// **libopus emits no DRED while the packet loss percentage is 0**, and this crate
    /// does not raise it behind the caller's back: set
    /// [`packet_loss_percent`](Self::packet_loss_percent) above 0 as well. With in-band
    /// FEC also on at low bitrates libopus may emit no DRED at all.
    pub dred_duration: Duration,
    /// Upper limit on the coded audio bandwidth; `None` lets the encoder choose. Default
    /// `None`.
    pub max_bandwidth: Option<Bandwidth>,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self::new(48_000, Channels::Mono)
    }
}

impl OpusConfig {
    /// A configuration for `sample_rate` and `channels`, everything else at its default.
    pub fn new(sample_rate: u32, channels: Channels) -> Self {
        Self {
            sample_rate,
            channels,
            frame_duration: FrameDuration::Ms20,
            application: Application::Voip,
            bitrate: 32_000,
            complexity: 9,
            inband_fec: false,
            packet_loss_percent: 0,
            dtx: false,
            dred_duration: Duration::ZERO,
            max_bandwidth: None,
        }
    }

    /// With this frame duration.
    pub fn with_frame_duration(mut self, frame_duration: FrameDuration) -> Self {
        self.frame_duration = frame_duration;
        self
    }

    /// With this application.
    pub fn with_application(mut self, application: Application) -> Self {
        self.application = application;
        self
    }

    /// With this bitrate in bits per second.
    pub fn with_bitrate(mut self, bitrate: u32) -> Self {
        self.bitrate = bitrate;
        self
    }

    /// With this encoder complexity (0-10).
    pub fn with_complexity(mut self, complexity: u8) -> Self {
        self.complexity = complexity;
        self
    }

    /// With in-band FEC on or off.
    pub fn with_inband_fec(mut self, inband_fec: bool) -> Self {
        self.inband_fec = inband_fec;
        self
    }

    /// With this expected packet loss percentage (0-100).
    pub fn with_packet_loss_percent(mut self, percent: u8) -> Self {
        self.packet_loss_percent = percent;
        self
    }

    /// With DTX on or off.
    pub fn with_dtx(mut self, dtx: bool) -> Self {
        self.dtx = dtx;
        self
    }

    /// With this DRED duration (zero: off). Remember a packet loss percentage above 0.
    pub fn with_dred_duration(mut self, duration: Duration) -> Self {
        self.dred_duration = duration;
        self
    }

    /// With this maximum bandwidth.
    pub fn with_max_bandwidth(mut self, bandwidth: Option<Bandwidth>) -> Self {
        self.max_bandwidth = bandwidth;
        self
    }

    /// Samples per channel in one frame.
    pub fn frame_samples(&self) -> usize {
        self.frame_duration.samples(self.sample_rate)
    }

    /// Checks every field; [`CodecError::Unsupported`] names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_sample_rate(self.sample_rate)?;
        check_bitrate(self.bitrate)?;
        check_complexity(self.complexity)?;
        check_loss(self.packet_loss_percent)?;
        dred_units(self.dred_duration)?;
        Ok(())
    }
}

pub(crate) fn check_bitrate(bitrate: u32) -> Result<()> {
    if BITRATE_RANGE.contains(&bitrate) {
        Ok(())
    } else {
        Err(CodecError::Unsupported {
            parameter: "bitrate",
            value: format!("{bitrate} bps"),
        })
    }
}

pub(crate) fn check_complexity(complexity: u8) -> Result<()> {
    if complexity <= 10 {
        Ok(())
    } else {
        Err(CodecError::Unsupported {
            parameter: "complexity",
            value: complexity.to_string(),
        })
    }
}

pub(crate) fn check_loss(percent: u8) -> Result<()> {
    if percent <= 100 {
        Ok(())
    } else {
        Err(CodecError::Unsupported {
            parameter: "packet loss percent",
            value: percent.to_string(),
        })
    }
}

/// A DRED duration in libopus's 10 ms units (0-100).
pub(crate) fn dred_units(duration: Duration) -> Result<c_int> {
    let tens = duration.as_millis() / 10;
    if duration > MAX_DRED_DURATION || Duration::from_millis(tens as u64 * 10) != duration {
        return Err(CodecError::Unsupported {
            parameter: "DRED duration",
            value: format!("{duration:?} (must be a multiple of 10 ms, at most 1 s)"),
        });
    }
    Ok(tens as c_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(result: Result<()>, which: &str) {
        match result {
            Err(CodecError::Unsupported { parameter, .. }) => assert_eq!(parameter, which),
            other => panic!("expected Unsupported({which}), got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = OpusConfig::default();
        assert_eq!(c.sample_rate, 48_000);
        assert_eq!(c.channels, Channels::Mono);
        assert_eq!(c.frame_duration, FrameDuration::Ms20);
        assert_eq!(c.application, Application::Voip);
        assert_eq!(c.bitrate, 32_000);
        assert_eq!(c.complexity, 9);
        assert!(!c.inband_fec && !c.dtx);
        assert_eq!(c.packet_loss_percent, 0);
        assert_eq!(c.dred_duration, Duration::ZERO);
        assert_eq!(c.max_bandwidth, None);
        assert_eq!(c.frame_samples(), 960);
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_bad_parameter() {
        unsupported(
            OpusConfig::new(44_100, Channels::Mono).validate(),
            "sample rate",
        );
        unsupported(
            OpusConfig::default().with_complexity(11).validate(),
            "complexity",
        );
        unsupported(
            OpusConfig::default().with_bitrate(5_999).validate(),
            "bitrate",
        );
        unsupported(
            OpusConfig::default().with_bitrate(510_001).validate(),
            "bitrate",
        );
        unsupported(
            OpusConfig::default()
                .with_packet_loss_percent(101)
                .validate(),
            "packet loss percent",
        );
        unsupported(
            OpusConfig::default()
                .with_dred_duration(Duration::from_millis(1010))
                .validate(),
            "DRED duration",
        );
        unsupported(
            OpusConfig::default()
                .with_dred_duration(Duration::from_millis(15))
                .validate(),
            "DRED duration",
        );
        assert!(matches!(
            FrameDuration::from_millis(25),
            Err(CodecError::Unsupported { .. })
        ));
        assert!(FrameDuration::try_from(Duration::from_micros(2500)).is_err());
        assert_eq!(
            FrameDuration::try_from(Duration::from_millis(40)).unwrap(),
            FrameDuration::Ms40
        );
        assert_eq!(dred_units(Duration::from_secs(1)).unwrap(), 100);
        assert_eq!(FrameDuration::Ms60.samples(16_000), 960);
        for rate in [8_000, 12_000, 16_000, 24_000, 48_000] {
            OpusConfig::new(rate, Channels::Stereo).validate().unwrap();
        }
    }
}
