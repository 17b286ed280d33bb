//! Audio levels: the RFC 6464 level (dBov) carried in RTP header extensions, and the 0-100
//! volume that call apps draw, reported every 500 ms.

/// RFC 6464's quietest level: -127 dBov, also used for digital silence.
pub const SILENT_LEVEL: u8 = 127;
/// 10 ms frames per volume report (500 ms, as TUICallKit and Agora report volume).
pub const VOLUME_REPORT_FRAMES: u32 = 50;
/// Level that reads as volume 0; 0 dBov reads as 100. 60 dB spans a quiet room to a shout.
const VOLUME_FLOOR_DBOV: f64 = -60.0;

/// Mean square of samples scaled to ±1 full scale; non-finite samples count as 0.
pub(crate) fn energy(samples: &[f32]) -> f64 {
    samples
        .iter()
        .map(|&s| if s.is_finite() { f64::from(s) } else { 0.0 })
        .map(|s| s * s)
        .sum()
}

/// Level in dBov (0 = a full-scale square wave) of a mean square; -inf for silence.
pub fn dbov(mean_square: f64) -> f64 {
    10.0 * mean_square.log10()
}

/// RFC 6464 level of samples in ±1 full scale: `-dBov` rounded, clamped to 0..=127 (127 also
/// for empty input or silence).
pub fn audio_level(samples: &[f32]) -> u8 {
    if samples.is_empty() {
        return SILENT_LEVEL;
    }
    level_from_mean_square(energy(samples) / samples.len() as f64)
}

fn level_from_mean_square(mean_square: f64) -> u8 {
    let level = -dbov(mean_square);
    if level.is_nan() {
        SILENT_LEVEL
    } else {
        level.round().clamp(0.0, f64::from(SILENT_LEVEL)) as u8
    }
}

/// Accumulates output energy for the per-packet RFC 6464 level (a packet may span several
/// frames) and for the 500 ms volume.
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelMeter {
    packet_energy: f64,
    packet_samples: usize,
    /// Loudest 10 ms frame in the current volume window, as mean square: a meter follows
    /// peaks, so a word in a 500 ms window shows even if the rest is pause.
    window_peak: f64,
    window_frames: u32,
}

impl LevelMeter {
    /// Adds one frame; returns the 0-100 volume when a 500 ms window completes.
    pub(crate) fn add_frame(&mut self, samples: &[f32]) -> (u8, Option<u8>) {
        let frame_energy = energy(samples);
        self.packet_energy += frame_energy;
        self.packet_samples += samples.len();
        let mean_square = frame_energy / samples.len().max(1) as f64;
        self.window_peak = self.window_peak.max(mean_square);
        self.window_frames += 1;
        let volume = (self.window_frames >= VOLUME_REPORT_FRAMES).then(|| {
            let volume = volume_from_mean_square(self.window_peak);
            self.window_peak = 0.0;
            self.window_frames = 0;
            volume
        });
        (level_from_mean_square(mean_square), volume)
    }

    /// RFC 6464 level since the last call, then starts a new packet.
    pub(crate) fn take_packet_level(&mut self) -> u8 {
        let level = if self.packet_samples == 0 {
            SILENT_LEVEL
        } else {
            level_from_mean_square(self.packet_energy / self.packet_samples as f64)
        };
        self.packet_energy = 0.0;
        self.packet_samples = 0;
        level
    }
}

/// 0-100 volume of a mean square: linear in dB from -60 dBov (0) to 0 dBov (100).
fn volume_from_mean_square(mean_square: f64) -> u8 {
    let db = dbov(mean_square);
    if db.is_nan() {
        return 0;
    }
    (100.0 * (db - VOLUME_FLOOR_DBOV) / -VOLUME_FLOOR_DBOV)
        .round()
        .clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6464_levels() {
        assert_eq!(audio_level(&[1.0, -1.0, 1.0, -1.0]), 0);
        assert_eq!(audio_level(&[0.0; 480]), SILENT_LEVEL);
        assert_eq!(audio_level(&[]), SILENT_LEVEL);
        // A 0.1 square wave is -20 dBov.
        assert_eq!(audio_level(&[0.1, -0.1, 0.1, -0.1]), 20);
        assert_eq!(audio_level(&[1e-9; 10]), SILENT_LEVEL);
        assert_eq!(audio_level(&[f32::NAN, f32::INFINITY]), SILENT_LEVEL);
    }

    #[test]
    fn volume_every_500_ms_follows_the_loudest_frame() {
        let mut meter = LevelMeter::default();
        let quiet = [0.001f32; 480]; // -60 dBov
        let loud = [0.1f32; 480]; // -20 dBov
        for k in 0..VOLUME_REPORT_FRAMES - 1 {
            let frame: &[f32] = if k == 10 { &loud } else { &quiet };
            assert_eq!(meter.add_frame(frame).1, None);
        }
        assert_eq!(meter.add_frame(&quiet), (60, Some(67)));
        for _ in 0..VOLUME_REPORT_FRAMES - 1 {
            meter.add_frame(&quiet);
        }
        assert_eq!(meter.add_frame(&quiet).1, Some(0));
    }

    #[test]
    fn packet_level_spans_the_frames_since_the_last_packet() {
        let mut meter = LevelMeter::default();
        meter.add_frame(&[0.1; 480]);
        meter.add_frame(&[0.0; 480]);
        // Half the energy of -20 dBov: -23 dBov.
        assert_eq!(meter.take_packet_level(), 23);
        assert_eq!(meter.take_packet_level(), SILENT_LEVEL);
    }
}
