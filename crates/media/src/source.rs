//! Synthetic media for demos and tests: a moving test pattern and a test tone.
//!
//! The pattern is made to be realistic for a video codec (smooth gradients and a few
//! moving shapes, so it compresses well yet changes every frame) and carries its own
//! frame number drawn as large digits, which [`read_frame_counter`] reads back from a
//! decoded picture. That lets an end-to-end test tell which source frame a decoder
//! produced without any side channel.

use crate::audio::{AudioFormat, AudioFrame, Sample};
use crate::video::{Resolution, VideoFrame};
use std::time::Duration;

/// Digits drawn by [`TestPattern`]; the drawn counter is the frame index modulo 10^8.
pub const COUNTER_DIGITS: usize = 8;

const GLYPH_WIDTH: usize = 5;
const GLYPH_HEIGHT: usize = 7;
/// Font cells from one digit to the next: the glyph plus one blank column.
const DIGIT_PITCH: usize = GLYPH_WIDTH + 1;
/// Counter box size in font cells: the digits plus a one-cell dark border.
const BOX_CELLS_WIDE: usize = COUNTER_DIGITS * DIGIT_PITCH + 1;
const BOX_CELLS_HIGH: usize = GLYPH_HEIGHT + 2;
const COUNTER_MODULUS: u64 = 100_000_000;

/// 5x7 digits, one byte per row, bit 4 = leftmost column.
const FONT: [[u8; GLYPH_HEIGHT]; 10] = [
    [
        0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
    ],
    [
        0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
    ],
    [
        0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
    ],
    [
        0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
    ],
    [
        0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
    ],
    [
        0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
    ],
    [
        0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
    ],
    [
        0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
    ],
    [
        0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
    ],
    [
        0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
    ],
];

/// Most font cells of one digit that may read wrong before the digit is rejected.
/// The closest two glyphs (0 and 8) differ in 6 cells, so with at most 2 flipped cells
/// the nearest glyph is still the drawn one (`font_glyphs_are_far_apart` checks this).
const MAX_CELL_ERRORS: u32 = 2;

const COUNTER_BACKGROUND: u8 = 16;
const COUNTER_INK: u8 = 235;
const COUNTER_THRESHOLD: u32 = (COUNTER_BACKGROUND as u32 + COUNTER_INK as u32) / 2;

/// Where the counter sits in a picture of a given size. Derived from the resolution
/// alone, so the reader finds the digits without being told anything else.
#[derive(Debug, Clone, Copy)]
struct CounterLayout {
    /// Pixels per font cell.
    unit: usize,
    /// Top-left pixel of the counter box.
    x0: usize,
    y0: usize,
}

impl CounterLayout {
    fn for_resolution(resolution: Resolution) -> Option<Self> {
        let (width, height) = resolution.plane_size(0);
        // Cells of 3 px at 180 lines stay legible after lossy coding; scale with height
        // but never wider than the picture (a one-cell margin sits left of the box).
        let unit = (height / 60)
            .max(2)
            .min(width / (BOX_CELLS_WIDE + 1))
            .min(height / (BOX_CELLS_HIGH + 1));
        if unit == 0 {
            return None;
        }
        Some(Self {
            unit,
            x0: unit,
            y0: unit,
        })
    }

    fn box_width(self) -> usize {
        BOX_CELLS_WIDE * self.unit
    }

    fn box_height(self) -> usize {
        BOX_CELLS_HIGH * self.unit
    }

    /// Top-left pixel of font cell (`row`, `col`) of digit `digit`.
    fn cell_origin(self, digit: usize, row: usize, col: usize) -> (usize, usize) {
        (
            self.x0 + self.unit * (1 + digit * DIGIT_PITCH + col),
            self.y0 + self.unit * (1 + row),
        )
    }
}

/// A moving test picture with its frame number drawn in the top-left corner.
///
/// Each frame has a diagonal luma ramp that drifts, static colour gradients, a coloured
/// box bouncing sideways and a white bar sweeping across; the content changes every
/// frame but predicts well from the previous one, like camera video.
#[derive(Clone)]
pub struct TestPattern {
    resolution: Resolution,
    frames_per_second: u32,
    index: u64,
    /// One period of the luma ramp along a row (see [`ramp_period`]): every row is a
    /// shifted window of it, copied rather than computed pixel by pixel.
    ramp: Vec<u8>,
}

impl std::fmt::Debug for TestPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPattern")
            .field("resolution", &self.resolution)
            .field("frames_per_second", &self.frames_per_second)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl TestPattern {
    /// A pattern starting at frame 0. `frames_per_second` only sets
    /// [`frame_duration`](Self::frame_duration); 0 is taken as 1.
    pub fn new(resolution: Resolution, frames_per_second: u32) -> Self {
        let period = ramp_period(resolution.plane_size(0).0);
        Self {
            resolution,
            frames_per_second: frames_per_second.max(1),
            index: 0,
            ramp: (0..2 * period).map(|t| ramp_value(t, period)).collect(),
        }
    }

    /// Picture size of the frames made.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Frame rate given at construction.
    pub fn frames_per_second(&self) -> u32 {
        self.frames_per_second
    }

    /// Time from one frame to the next.
    pub fn frame_duration(&self) -> Duration {
        Duration::from_secs(1) / self.frames_per_second
    }

    /// Index of the frame the next call renders (the number rendered so far).
    pub fn frame_index(&self) -> u64 {
        self.index
    }

    /// Renders the next frame into a new buffer.
    pub fn next_frame(&mut self) -> VideoFrame {
        let mut frame = VideoFrame::black(self.resolution);
        self.render_into(&mut frame);
        frame
    }

    /// Renders the next frame into `frame`, keeping its buffers (and strides) when it
    /// already has the pattern's resolution, so a steady loop does not allocate.
    pub fn render_into(&mut self, frame: &mut VideoFrame) {
        if frame.resolution() != self.resolution {
            *frame = VideoFrame::black(self.resolution);
        }
        draw_pattern(frame, self.index, &self.ramp);
        if let Some(layout) = CounterLayout::for_resolution(self.resolution) {
            draw_counter(frame, layout, self.index % COUNTER_MODULUS);
        }
        self.index += 1;
    }
}

/// Folds `t` into 0..=`period` and back, so moving things bounce instead of jumping.
fn triangle(t: usize, period: usize) -> usize {
    if period == 0 {
        return 0;
    }
    let t = t % (2 * period);
    if t <= period { t } else { 2 * period - t }
}

/// The luma ramp repeats every `2 * ramp_period` pixels along a row (up, then down).
fn ramp_period(width: usize) -> usize {
    width.max(2)
}

/// The ramp's luma at phase `t`.
fn ramp_value(t: usize, period: usize) -> u8 {
    (40 + triangle(t, period) * 160 / period) as u8
}

/// Where the moving things are in frame `index`.
struct PatternLayout {
    box_x: usize,
    box_y: usize,
    box_w: usize,
    box_h: usize,
    bar_x: usize,
    bar_w: usize,
}

impl PatternLayout {
    fn new(width: usize, height: usize, index: u64) -> Self {
        // Patterns repeat long before usize overflows; the modulus only keeps arithmetic
        // small.
        let n = (index % 1_000_000) as usize;
        let speed = (width / 80).max(2);
        let box_w = (width / 6).max(2);
        let box_h = (height / 4).max(2);
        Self {
            box_x: triangle(n * speed, width.saturating_sub(box_w)),
            box_y: (height * 5 / 8).saturating_sub(box_h / 2),
            box_w,
            box_h,
            bar_x: (n * speed * 3 / 2) % width.max(1),
            bar_w: (width / 40).max(2),
        }
    }

    /// The bar's columns `[start, end)` in a row `width` wide: two spans, since the bar
    /// wraps around the right edge (either may be empty).
    fn bar_spans(&self, width: usize) -> [std::ops::Range<usize>; 2] {
        let end = self.bar_x + self.bar_w;
        [
            self.bar_x.min(width)..end.min(width),
            0..end.saturating_sub(width).min(width),
        ]
    }
}

/// `[start, end)` in luma pixels as the chroma samples whose (even) luma position falls
/// in it.
fn halved(span: std::ops::Range<usize>) -> std::ops::Range<usize> {
    span.start.div_ceil(2)..span.end.div_ceil(2)
}

/// Fills `row` with `value` over `span`, clipped to the row.
fn fill_span(row: &mut [u8], span: std::ops::Range<usize>, value: u8) {
    let end = span.end.min(row.len());
    if span.start < end {
        row[span.start..end].fill(value);
    }
}

/// Draws frame `index` of the pattern: rows are copied from the ramp's period (`ramp`,
/// `2 * ramp_period(width)` long) and the box and bar are filled as spans, with no
/// per-pixel arithmetic (a 720p picture is drawn in well under a millisecond).
fn draw_pattern(frame: &mut VideoFrame, index: u64, ramp: &[u8]) {
    let resolution = frame.resolution();
    let (width, height) = resolution.plane_size(0);
    let n = (index % 1_000_000) as usize;
    let layout = PatternLayout::new(width, height, index);
    let bars = layout.bar_spans(width);
    let box_columns = layout.box_x..layout.box_x + layout.box_w;
    let box_rows = layout.box_y..layout.box_y + layout.box_h;
    let cycle = 2 * ramp_period(width);
    debug_assert_eq!(ramp.len(), cycle);

    let stride = frame.stride(0);
    let luma = frame.plane_mut(0);
    for y in 0..height {
        let row = &mut luma[y * stride..y * stride + width];
        // Pixel x shows the ramp at phase x + y/2 + 2n.
        let phase = (y / 2 + 2 * n) % cycle;
        let first = width.min(cycle - phase);
        row[..first].copy_from_slice(&ramp[phase..phase + first]);
        // The ramp's cycle is at least twice the width: at most one wrap.
        row[first..].copy_from_slice(&ramp[..width - first]);
        if box_rows.contains(&y) {
            fill_span(row, box_columns.clone(), 180);
        }
        for bar in &bars {
            fill_span(row, bar.clone(), 235);
        }
    }

    let (chroma_w, chroma_h) = resolution.plane_size(1);
    let chroma_box_columns = halved(box_columns);
    let chroma_box_rows = halved(box_rows);
    for plane in 1..3 {
        let stride = frame.stride(plane);
        let data = frame.plane_mut(plane);
        if plane == 1 && chroma_h > 0 {
            // Blue difference: a gradient left to right, the same in every row.
            for (cx, px) in data[..chroma_w].iter_mut().enumerate() {
                *px = (64 + cx * 128 / chroma_w.max(1)) as u8;
            }
            for cy in 1..chroma_h {
                data.copy_within(..chroma_w, cy * stride);
            }
        }
        for cy in 0..chroma_h {
            let row = &mut data[cy * stride..cy * stride + chroma_w];
            if plane == 2 {
                // Red difference: a gradient top to bottom.
                row.fill((64 + cy * 128 / chroma_h.max(1)) as u8);
            }
            if chroma_box_rows.contains(&cy) {
                // An orange box: low blue difference, high red difference.
                fill_span(
                    row,
                    chroma_box_columns.clone(),
                    if plane == 1 { 60 } else { 200 },
                );
            }
            for bar in &bars {
                fill_span(row, halved(bar.clone()), 128);
            }
        }
    }
}

fn draw_counter(frame: &mut VideoFrame, layout: CounterLayout, value: u64) {
    let unit = layout.unit;
    let fill =
        |frame: &mut VideoFrame, plane: usize, x: usize, y: usize, w: usize, h: usize, v: u8| {
            let stride = frame.stride(plane);
            let data = frame.plane_mut(plane);
            for row in y..y + h {
                data[row * stride + x..row * stride + x + w].fill(v);
            }
        };

    fill(
        frame,
        0,
        layout.x0,
        layout.y0,
        layout.box_width(),
        layout.box_height(),
        COUNTER_BACKGROUND,
    );
    // Grey chroma so the digits read as white on black, whatever colour is underneath.
    let (cx0, cy0) = (layout.x0 / 2, layout.y0 / 2);
    let (cx1, cy1) = (
        (layout.x0 + layout.box_width()).div_ceil(2),
        (layout.y0 + layout.box_height()).div_ceil(2),
    );
    for plane in 1..3 {
        fill(frame, plane, cx0, cy0, cx1 - cx0, cy1 - cy0, 128);
    }

    for (digit, glyph) in digits_of(value)
        .iter()
        .map(|&d| &FONT[usize::from(d)])
        .enumerate()
    {
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_WIDTH {
                if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                    let (x, y) = layout.cell_origin(digit, row, col);
                    fill(frame, 0, x, y, unit, unit, COUNTER_INK);
                }
            }
        }
    }
}

/// Decimal digits of `value`, most significant first, zero-padded to [`COUNTER_DIGITS`].
fn digits_of(value: u64) -> [u8; COUNTER_DIGITS] {
    let mut digits = [0u8; COUNTER_DIGITS];
    let mut rest = value;
    for digit in digits.iter_mut().rev() {
        *digit = (rest % 10) as u8;
        rest /= 10;
    }
    digits
}

/// Reads the frame number [`TestPattern`] drew into `frame`, also after lossy coding.
///
/// Each font cell is classified by the mean luma of its centre against the midpoint of
/// ink and background, and each digit is the glyph nearest to those cells. Returns
/// `None` when the picture is too small to hold a counter or any digit is not close to
/// a glyph (a frame that is not a test pattern, or coded too coarsely to read).
/// The value is the frame index modulo 10^8.
pub fn read_frame_counter(frame: &VideoFrame) -> Option<u64> {
    let layout = CounterLayout::for_resolution(frame.resolution())?;
    let unit = layout.unit;
    // Coding blurs the edges of each cell; its centre is what survives.
    let inset = if unit >= 3 { 1 } else { 0 };
    let stride = frame.stride(0);
    let luma = frame.plane(0);

    let mut value = 0u64;
    for digit in 0..COUNTER_DIGITS {
        let mut glyph = [0u8; GLYPH_HEIGHT];
        for (row, bits) in glyph.iter_mut().enumerate() {
            for col in 0..GLYPH_WIDTH {
                let (x, y) = layout.cell_origin(digit, row, col);
                let mut sum = 0u32;
                let mut count = 0u32;
                for py in y + inset..y + unit - inset {
                    let line = luma.get(py * stride + x + inset..py * stride + x + unit - inset)?;
                    sum += line.iter().map(|&v| u32::from(v)).sum::<u32>();
                    count += line.len() as u32;
                }
                if count > 0 && sum > COUNTER_THRESHOLD * count {
                    *bits |= 1 << (GLYPH_WIDTH - 1 - col);
                }
            }
        }
        let (best, errors) = FONT
            .iter()
            .enumerate()
            .map(|(d, candidate)| (d, glyph_distance(candidate, &glyph)))
            .min_by_key(|&(_, errors)| errors)?;
        if errors > MAX_CELL_ERRORS {
            return None;
        }
        value = value * 10 + best as u64;
    }
    Some(value)
}

fn glyph_distance(a: &[u8; GLYPH_HEIGHT], b: &[u8; GLYPH_HEIGHT]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// One sine component of a [`ToneSource`].
#[derive(Debug, Clone, Copy)]
struct Partial {
    /// Cycles advanced per sample.
    step: f64,
    amplitude: f64,
    /// Position in the cycle, kept in 0..1 so precision does not decay over long runs.
    phase: f64,
}

/// A sine tone (or a sum of a few), phase-continuous across calls.
///
/// Every channel carries the same signal. Frequencies above half the sample rate alias,
/// as they would from any sampled source.
#[derive(Debug, Clone)]
pub struct ToneSource {
    format: AudioFormat,
    partials: Vec<Partial>,
}

impl ToneSource {
    /// A single sine of `frequency_hz` at `amplitude` (0.0..=1.0 of full scale, clamped;
    /// non-finite values give silence).
    pub fn new(format: AudioFormat, frequency_hz: f32, amplitude: f32) -> Self {
        Self::multi(format, &[(frequency_hz, amplitude)])
    }

    /// A sum of sines, each `(frequency_hz, amplitude)`. The sum is clipped to full scale,
    /// so keep the amplitudes adding up to at most 1.0 for a clean signal.
    pub fn multi(format: AudioFormat, tones: &[(f32, f32)]) -> Self {
        let finite_or_zero = |v: f32| if v.is_finite() { f64::from(v) } else { 0.0 };
        let partials = tones
            .iter()
            .map(|&(frequency, amplitude)| Partial {
                step: finite_or_zero(frequency) / f64::from(format.sample_rate()),
                amplitude: finite_or_zero(amplitude).clamp(0.0, 1.0),
                phase: 0.0,
            })
            .collect();
        Self { format, partials }
    }

    /// Format of the samples made.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Fills interleaved `out` with the next samples, as `i16`. A trailing partial
    /// frame (when `out.len()` is not a multiple of the channel count) is filled too and
    /// counts as a whole sample period.
    pub fn fill(&mut self, out: &mut [i16]) {
        self.fill_samples(out);
    }

    /// Like [`fill`](Self::fill), as `f32` full scale.
    pub fn fill_f32(&mut self, out: &mut [f32]) {
        self.fill_samples(out);
    }

    /// The next `samples_per_channel` samples as a frame.
    pub fn next_frame(&mut self, samples_per_channel: usize) -> AudioFrame<i16> {
        let mut frame = AudioFrame::silence(self.format, samples_per_channel);
        self.fill_samples(frame.samples_mut());
        frame
    }

    fn fill_samples<S: Sample>(&mut self, out: &mut [S]) {
        for channels in out.chunks_mut(self.format.channels().count()) {
            let value = S::from_f32(self.advance() as f32);
            channels.fill(value);
        }
    }

    fn advance(&mut self) -> f64 {
        let mut value = 0.0;
        for partial in &mut self.partials {
            value += partial.amplitude * (std::f64::consts::TAU * partial.phase).sin();
            partial.phase = (partial.phase + partial.step).rem_euclid(1.0);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Channels;

    fn res(width: u32, height: u32) -> Resolution {
        Resolution::new(width, height).unwrap()
    }

    #[test]
    fn font_glyphs_are_far_apart() {
        for (a, glyph_a) in FONT.iter().enumerate() {
            for (b, glyph_b) in FONT.iter().enumerate().skip(a + 1) {
                let distance = glyph_distance(glyph_a, glyph_b);
                assert!(
                    distance > 2 * MAX_CELL_ERRORS,
                    "{a} and {b} differ in only {distance} cells"
                );
            }
        }
    }

    #[test]
    fn counter_reads_back_from_clean_frames() {
        for resolution in [res(320, 180), res(640, 360), res(1280, 720), res(64, 64)] {
            for index in [0u64, 7, 123, 99_999] {
                let mut pattern = TestPattern::new(resolution, 30);
                pattern.index = index;
                let frame = pattern.next_frame();
                assert_eq!(
                    read_frame_counter(&frame),
                    Some(index),
                    "{resolution} frame {index}"
                );
                assert_eq!(pattern.frame_index(), index + 1);
            }
        }
    }

    #[test]
    fn counter_survives_mild_noise() {
        let mut pattern = TestPattern::new(res(320, 180), 30);
        pattern.index = 4_567;
        let mut frame = pattern.next_frame();
        // A deterministic ±40 disturbance, a stand-in for coding error.
        let mut state = 0x1234_5678u32;
        for px in frame.plane_mut(0) {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 24) as i32 % 81 - 40;
            *px = (i32::from(*px) + noise).clamp(0, 255) as u8;
        }
        assert_eq!(read_frame_counter(&frame), Some(4_567));
    }

    #[test]
    fn frames_without_a_counter_read_as_none() {
        assert_eq!(read_frame_counter(&VideoFrame::black(res(320, 180))), None);
        let mut white = VideoFrame::black(res(320, 180));
        white.plane_mut(0).fill(235);
        assert_eq!(read_frame_counter(&white), None);
        // Too small to draw digits: rendering still works, reading gives up.
        let mut tiny = TestPattern::new(res(16, 16), 30);
        let frame = tiny.next_frame();
        assert_eq!(read_frame_counter(&frame), None);
    }

    #[test]
    fn pattern_changes_every_frame_but_smoothly() {
        let mut pattern = TestPattern::new(res(320, 180), 30);
        let a = pattern.next_frame();
        let b = pattern.next_frame();
        assert_ne!(a, b);
        let psnr = b.psnr(&a, 0).unwrap();
        // Close enough for inter prediction to matter, not identical.
        assert!(psnr.is_finite() && psnr > 10.0, "psnr {psnr}");
    }

    /// The pattern drawn pixel by pixel from its definition, to check the span drawing.
    fn reference_pattern(frame: &mut VideoFrame, index: u64) {
        let resolution = frame.resolution();
        let (width, height) = resolution.plane_size(0);
        let n = (index % 1_000_000) as usize;
        let layout = PatternLayout::new(width, height, index);
        let in_box = |x: usize, y: usize| {
            (layout.box_x..layout.box_x + layout.box_w).contains(&x)
                && (layout.box_y..layout.box_y + layout.box_h).contains(&y)
        };
        let in_bar = |x: usize| (x + width - layout.bar_x) % width < layout.bar_w;
        let period = ramp_period(width);
        let stride = frame.stride(0);
        for y in 0..height {
            for x in 0..width {
                frame.plane_mut(0)[y * stride + x] = if in_bar(x) {
                    235
                } else if in_box(x, y) {
                    180
                } else {
                    ramp_value(x + y / 2 + 2 * n, period)
                };
            }
        }
        let (chroma_w, chroma_h) = resolution.plane_size(1);
        for plane in 1..3 {
            let stride = frame.stride(plane);
            for cy in 0..chroma_h {
                for cx in 0..chroma_w {
                    let (x, y) = (2 * cx, 2 * cy);
                    frame.plane_mut(plane)[cy * stride + cx] = if in_bar(x) {
                        128
                    } else if in_box(x, y) {
                        if plane == 1 { 60 } else { 200 }
                    } else if plane == 1 {
                        (64 + cx * 128 / chroma_w) as u8
                    } else {
                        (64 + cy * 128 / chroma_h) as u8
                    };
                }
            }
        }
    }

    #[test]
    fn span_drawing_matches_the_pixel_by_pixel_definition() {
        for (w, h) in [(2, 2), (6, 4), (64, 32), (98, 54), (160, 90), (1280, 720)] {
            let resolution = res(w, h);
            let mut pattern = TestPattern::new(resolution, 30);
            // Frames where the bar wraps around the right edge and the box turns back.
            for index in [0u64, 1, 7, 26, 27, 53, 100, 999_999, 1_000_123] {
                pattern.index = index;
                let mut drawn = VideoFrame::black(resolution);
                draw_pattern(&mut drawn, index, &pattern.ramp);
                let mut expected = VideoFrame::black(resolution);
                reference_pattern(&mut expected, index);
                for plane in 0..3 {
                    assert_eq!(
                        drawn.plane(plane),
                        expected.plane(plane),
                        "{w}x{h} frame {index} plane {plane}"
                    );
                }
            }
        }
    }

    #[test]
    fn render_into_reuses_buffers_and_honours_strides() {
        let resolution = res(64, 32);
        let mut pattern = TestPattern::new(resolution, 30);
        let reference = pattern.next_frame();

        let planes = [vec![0u8; 80 * 32], vec![0u8; 40 * 16], vec![0u8; 40 * 16]];
        let mut strided = VideoFrame::from_planes(resolution, planes, [80, 40, 40]).unwrap();
        let ptr = strided.plane(0).as_ptr();
        let mut pattern = TestPattern::new(resolution, 30);
        pattern.render_into(&mut strided);
        assert_eq!(strided.plane(0).as_ptr(), ptr);
        assert_eq!(strided.strides(), [80, 40, 40]);
        assert_eq!(strided.psnr(&reference, 0), Some(f64::INFINITY));
        assert_eq!(strided.psnr(&reference, 2), Some(f64::INFINITY));

        let mut wrong_size = VideoFrame::black(res(32, 32));
        pattern.render_into(&mut wrong_size);
        assert_eq!(wrong_size.resolution(), resolution);
        assert_eq!(read_frame_counter(&wrong_size), Some(1));
    }

    #[test]
    fn tone_is_phase_continuous_across_calls() {
        let format = AudioFormat::MONO_48K;
        let mut whole = ToneSource::new(format, 997.0, 0.5);
        let mut expected = vec![0i16; 4_800];
        whole.fill(&mut expected);

        let mut pieces = ToneSource::new(format, 997.0, 0.5);
        let mut got = Vec::new();
        for len in [1usize, 7, 480, 13, 960, 3_339] {
            let mut chunk = vec![0i16; len];
            pieces.fill(&mut chunk);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, expected);

        // No step larger than the sine's steepest slope allows.
        let max_step = 0.5 * 32768.0 * std::f64::consts::TAU * 997.0 / 48_000.0 + 2.0;
        for pair in got.windows(2) {
            assert!(f64::from((i32::from(pair[1]) - i32::from(pair[0])).abs()) <= max_step);
        }
    }

    #[test]
    fn tone_frequency_matches_zero_crossings() {
        for (rate, frequency) in [(48_000u32, 1_000.0f32), (16_000, 440.0), (8_000, 123.0)] {
            let format = AudioFormat::new(rate, Channels::Mono).unwrap();
            let mut tone = ToneSource::new(format, frequency, 0.8);
            let mut samples = vec![0f32; rate as usize];
            tone.fill_f32(&mut samples);
            let rising = samples
                .windows(2)
                .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
                .count();
            assert!(
                (rising as f32 - frequency).abs() <= 1.0,
                "{rate} Hz: {rising} vs {frequency}"
            );
            let peak = samples.iter().fold(0f32, |m, &s| m.max(s.abs()));
            assert!((peak - 0.8).abs() < 0.01);
        }
    }

    #[test]
    fn tone_writes_every_channel_and_clamps_bad_parameters() {
        let stereo = AudioFormat::new(48_000, Channels::Stereo).unwrap();
        let frame = ToneSource::new(stereo, 440.0, 0.25).next_frame(480);
        assert_eq!(frame.samples_per_channel(), 480);
        assert!(frame.samples().chunks(2).all(|c| c[0] == c[1]));
        assert!(frame.samples().iter().any(|&s| s != 0));

        let mut silent = ToneSource::new(stereo, f32::NAN, 2.0);
        assert!(silent.next_frame(100).samples().iter().all(|&s| s == 0));
        let mut loud = ToneSource::multi(stereo, &[(440.0, f32::INFINITY), (880.0, 1.0)]);
        assert!(loud.next_frame(100).samples().iter().any(|&s| s != 0));
    }
}
