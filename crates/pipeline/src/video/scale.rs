//! Fitting camera pictures to the encoder's resolution: a centred crop to the target's
//! aspect ratio, then an area-averaging (box) downscale, in I420, into a frame that is
//! reused from one picture to the next.
//!
//! Each output pixel is the mean of the source pixels its footprint covers (the footprint
//! is rounded to whole source pixels, at least one): exact box filtering for integer
//! ratios (1280×720 → 640×360 averages 2×2 blocks), a close approximation of area
//! averaging otherwise, and never the aliasing of point or bilinear sampling at large
//! ratios. Pictures are never scaled up: a camera smaller than the target is encoded at
//! its own (cropped) size. The footprint tables are made when the source or target size
//! changes, so scaling a steady stream allocates nothing.

use tincan_media::{Resolution, VideoFrame};

use super::error::{VideoPathError, VideoResult};

/// Smallest side the H.264 encoder takes (one macroblock).
pub const MIN_ENCODED_SIDE: u32 = 16;

/// A centred crop of the camera picture, in luma pixels (all even).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// How a camera picture becomes an encoder picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitPlan {
    /// The part of the camera picture kept.
    pub crop: Crop,
    /// The picture the encoder gets.
    pub output: Resolution,
}

impl FitPlan {
    /// Whether the camera picture goes to the encoder untouched.
    pub fn is_identity(&self, camera: Resolution) -> bool {
        self.crop.x == 0
            && self.crop.y == 0
            && self.crop.width == camera.width()
            && self.crop.height == camera.height()
            && self.output == camera
    }
}

fn even_floor(value: u64) -> u32 {
    (value & !1).min(u64::from(u32::MAX)) as u32
}

/// Plans the crop and scale of a `camera` picture for a `target_width`×`target_height`
/// rung: the largest centred crop with the target's aspect ratio, scaled down to the
/// target (never up).
///
/// # Errors
///
/// [`VideoPathError::FrameTooSmall`] when the result would be under
/// [`MIN_ENCODED_SIDE`] on a side, and [`VideoPathError::InvalidConfig`] for a zero
/// target.
pub fn plan_fit(camera: Resolution, target_width: u32, target_height: u32) -> VideoResult<FitPlan> {
    if target_width == 0 || target_height == 0 {
        return Err(VideoPathError::InvalidConfig {
            field: "target resolution",
            value: format!("{target_width}x{target_height}"),
            expected: "non-zero sides",
        });
    }
    let (cw, ch) = (u64::from(camera.width()), u64::from(camera.height()));
    let (tw, th) = (u64::from(target_width), u64::from(target_height));
    // The camera is wider than the target when cw/ch > tw/th.
    let (crop_w, crop_h) = if cw * th > ch * tw {
        (even_floor(ch * tw / th), ch as u32)
    } else {
        (cw as u32, even_floor(cw * th / tw))
    };
    let too_small = || VideoPathError::FrameTooSmall {
        width: camera.width(),
        height: camera.height(),
        min: MIN_ENCODED_SIDE,
    };
    if crop_w < MIN_ENCODED_SIDE || crop_h < MIN_ENCODED_SIDE {
        return Err(too_small());
    }
    let (out_w, out_h) = if u64::from(crop_w) > tw {
        (even_floor(tw), even_floor(th))
    } else {
        (crop_w, crop_h)
    };
    if out_w < MIN_ENCODED_SIDE || out_h < MIN_ENCODED_SIDE {
        return Err(too_small());
    }
    let output = Resolution::new(out_w, out_h)?;
    let crop = Crop {
        x: even_floor(u64::from(camera.width() - crop_w) / 2),
        y: even_floor(u64::from(camera.height() - crop_h) / 2),
        width: crop_w,
        height: crop_h,
    };
    Ok(FitPlan { crop, output })
}

/// Footprints of the output pixels of one axis: `(first source pixel, count)`.
fn footprints(source: usize, output: usize, out: &mut Vec<(u32, u32)>) {
    out.clear();
    for i in 0..output {
        let start = i * source / output;
        let end = ((i + 1) * source / output).max(start + 1).min(source);
        out.push((start as u32, (end - start) as u32));
    }
}

/// Crops and scales camera pictures into one reused output frame.
#[derive(Debug, Clone)]
pub struct FrameScaler {
    /// The plan the tables were made for, and the camera size.
    planned: Option<(Resolution, FitPlan)>,
    /// Footprints per axis: luma x, luma y, chroma x, chroma y.
    tables: [Vec<(u32, u32)>; 4],
    out: VideoFrame,
}

impl Default for FrameScaler {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameScaler {
    /// A scaler; its output frame grows to the first target size.
    pub fn new() -> Self {
        Self {
            planned: None,
            tables: Default::default(),
            out: VideoFrame::black(
                Resolution::new(MIN_ENCODED_SIDE, MIN_ENCODED_SIDE).unwrap_or(Resolution::P360),
            ),
        }
    }

    /// The last picture made.
    pub fn output(&self) -> &VideoFrame {
        &self.out
    }

    /// Crops and scales `frame` per `plan` into the output frame and returns it.
    ///
    /// # Errors
    ///
    /// A plan whose crop does not fit the frame.
    pub fn scale(&mut self, frame: &VideoFrame, plan: FitPlan) -> VideoResult<&VideoFrame> {
        let camera = frame.resolution();
        let crop = plan.crop;
        if crop.x + crop.width > camera.width() || crop.y + crop.height > camera.height() {
            return Err(VideoPathError::InvalidConfig {
                field: "crop",
                value: format!("{crop:?} of {camera}"),
                expected: "inside the picture",
            });
        }
        if self.planned != Some((camera, plan)) {
            let (ow, oh) = plan.output.plane_size(0);
            let (ocw, och) = plan.output.plane_size(1);
            let [lx, ly, cx, cy] = &mut self.tables;
            footprints(crop.width as usize, ow, lx);
            footprints(crop.height as usize, oh, ly);
            footprints(crop.width as usize / 2, ocw, cx);
            footprints(crop.height as usize / 2, och, cy);
            if self.out.resolution() != plan.output {
                self.out = VideoFrame::black(plan.output);
            }
            self.planned = Some((camera, plan));
        }
        for plane in 0..3 {
            let (xs, ys) = if plane == 0 {
                (&self.tables[0], &self.tables[1])
            } else {
                (&self.tables[2], &self.tables[3])
            };
            let shift = usize::from(plane > 0);
            let (x0, y0) = ((crop.x as usize) >> shift, (crop.y as usize) >> shift);
            let src_stride = frame.stride(plane);
            let src = frame.plane(plane);
            let dst_stride = self.out.stride(plane);
            let dst = self.out.plane_mut(plane);
            scale_plane(src, src_stride, x0, y0, dst, dst_stride, xs, ys);
        }
        Ok(&self.out)
    }
}

/// Box-averages one plane. Rows and columns outside `src` are never read: the tables
/// stay within the crop, which was checked against the picture.
#[allow(clippy::too_many_arguments)]
fn scale_plane(
    src: &[u8],
    src_stride: usize,
    x0: usize,
    y0: usize,
    dst: &mut [u8],
    dst_stride: usize,
    xs: &[(u32, u32)],
    ys: &[(u32, u32)],
) {
    let identity_x = xs
        .iter()
        .enumerate()
        .all(|(i, &(s, n))| s as usize == i && n == 1);
    for (row, &(sy, ny)) in ys.iter().enumerate() {
        let Some(out_row) = dst.get_mut(row * dst_stride..row * dst_stride + xs.len()) else {
            return;
        };
        let first = (y0 + sy as usize) * src_stride + x0;
        if identity_x && ny == 1 {
            if let Some(line) = src.get(first..first + xs.len()) {
                out_row.copy_from_slice(line);
            }
            continue;
        }
        for (out, &(sx, nx)) in out_row.iter_mut().zip(xs) {
            let mut sum = 0u32;
            for dy in 0..ny as usize {
                let start = first + dy * src_stride + sx as usize;
                if let Some(block) = src.get(start..start + nx as usize) {
                    sum += block.iter().map(|&v| u32::from(v)).sum::<u32>();
                }
            }
            let count = nx * ny;
            *out = ((sum + count / 2) / count) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(w: u32, h: u32) -> Resolution {
        Resolution::new(w, h).expect("valid")
    }

    #[test]
    fn plans_crop_to_the_aspect_and_never_scale_up() {
        let same = plan_fit(res(1280, 720), 1280, 720).expect("plan");
        assert!(same.is_identity(res(1280, 720)));
        let half = plan_fit(res(1280, 720), 640, 360).expect("plan");
        assert_eq!(half.output, res(640, 360));
        assert_eq!(
            half.crop,
            Crop {
                x: 0,
                y: 0,
                width: 1280,
                height: 720
            }
        );
        // 4:3 camera, 16:9 target: rows cut top and bottom.
        let vga = plan_fit(res(640, 480), 640, 360).expect("plan");
        assert_eq!(
            vga.crop,
            Crop {
                x: 0,
                y: 60,
                width: 640,
                height: 360
            }
        );
        assert_eq!(vga.output, res(640, 360));
        // Small camera: its own size, not scaled up.
        let small = plan_fit(res(320, 180), 1280, 720).expect("plan");
        assert_eq!(small.output, res(320, 180));
        assert!(small.is_identity(res(320, 180)));
        // Portrait camera for a landscape rung: columns kept, rows cut.
        let portrait = plan_fit(res(360, 640), 640, 360).expect("plan");
        assert_eq!(portrait.crop.width, 360);
        assert_eq!(portrait.output, res(360, 202));
        assert!(matches!(
            plan_fit(res(16, 16), 640, 360),
            Err(VideoPathError::FrameTooSmall { .. })
        ));
        assert!(plan_fit(res(640, 360), 0, 360).is_err());
    }

    #[test]
    fn box_scaling_averages_blocks() {
        let camera = res(8, 4);
        let mut frame = VideoFrame::black(camera);
        for y in 0..4 {
            for x in 0..8 {
                frame.plane_mut(0)[y * 8 + x] = (x * 10 + y) as u8;
            }
        }
        let plan = FitPlan {
            crop: Crop {
                x: 0,
                y: 0,
                width: 8,
                height: 4,
            },
            output: res(4, 2),
        };
        let mut scaler = FrameScaler::new();
        let out = scaler.scale(&frame, plan).expect("scaled");
        // Block (0,0): values 0, 10, 1, 11 → 5.5 → 6.
        assert_eq!(out.plane(0)[0], 6);
        // Block (3,1): x 6,7 and y 2,3: 62, 72, 63, 73 → 67.5 → 68.
        assert_eq!(out.plane(0)[4 + 3], 68);
        assert!(out.plane(1).iter().all(|&v| v == 128));
    }

    #[test]
    fn crops_copy_rows_and_bad_crops_are_refused() {
        let camera = res(8, 8);
        let mut frame = VideoFrame::black(camera);
        for (i, v) in frame.plane_mut(0).iter_mut().enumerate() {
            *v = i as u8;
        }
        let plan = FitPlan {
            crop: Crop {
                x: 2,
                y: 2,
                width: 4,
                height: 4,
            },
            output: res(4, 4),
        };
        let mut scaler = FrameScaler::new();
        let out = scaler.scale(&frame, plan).expect("scaled");
        assert_eq!(&out.plane(0)[..4], &[18, 19, 20, 21]);
        let outside = FitPlan {
            crop: Crop {
                x: 6,
                y: 0,
                width: 4,
                height: 4,
            },
            output: res(4, 4),
        };
        assert!(scaler.scale(&frame, outside).is_err());
    }
}
