//! Video frames: 8-bit I420 (YUV 4:2:0 planar) with per-plane strides.

use crate::error::{MediaError, Result};

/// Largest width or height accepted, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;

/// Width and height of a picture in pixels; both even and non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolution {
    width: u32,
    height: u32,
}

impl Resolution {
    /// A resolution; I420 needs even, non-zero sizes of at most [`MAX_DIMENSION`].
    pub fn new(width: u32, height: u32) -> Result<Self> {
        let ok = |v: u32| v > 0 && v % 2 == 0 && v <= MAX_DIMENSION;
        if !ok(width) || !ok(height) {
            return Err(MediaError::InvalidVideoSize { width, height });
        }
        Ok(Self { width, height })
    }

    /// 640×360.
    pub const P360: Self = Self {
        width: 640,
        height: 360,
    };
    /// 1280×720.
    pub const P720: Self = Self {
        width: 1280,
        height: 720,
    };

    /// Width in pixels.
    pub const fn width(self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(self) -> u32 {
        self.height
    }

    /// Pixels in the luma plane.
    pub const fn pixels(self) -> usize {
        self.width as usize * self.height as usize
    }

    /// (width, height) of plane 0 (Y), 1 (U) or 2 (V).
    pub const fn plane_size(self, plane: usize) -> (usize, usize) {
        if plane == 0 {
            (self.width as usize, self.height as usize)
        } else {
            (self.width as usize / 2, self.height as usize / 2)
        }
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// Checks that a plane of `len` bytes with `stride` holds plane `plane` of `resolution`
/// (the last row may end at the plane width).
fn check_plane(resolution: Resolution, plane: usize, len: usize, stride: usize) -> Result<()> {
    let (width, height) = resolution.plane_size(plane);
    if stride < width {
        return Err(MediaError::StrideTooSmall {
            plane,
            stride,
            width,
        });
    }
    let needed = stride * (height - 1) + width;
    if len < needed {
        return Err(MediaError::PlaneTooSmall { plane, len, needed });
    }
    Ok(())
}

/// One I420 picture: a Y plane at full size and U, V planes at half size each way.
///
/// Each plane has its own stride (bytes from one row to the next), which may exceed the
/// plane width, so decoder output can be taken without repacking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    resolution: Resolution,
    planes: [Vec<u8>; 3],
    strides: [usize; 3],
}

impl VideoFrame {
    /// A black frame with tightly packed planes.
    pub fn black(resolution: Resolution) -> Self {
        let (w, h) = resolution.plane_size(0);
        let (cw, ch) = resolution.plane_size(1);
        Self {
            resolution,
            planes: [vec![16; w * h], vec![128; cw * ch], vec![128; cw * ch]],
            strides: [w, cw, cw],
        }
    }

    /// A frame over existing planes; each must hold `stride * rows` bytes, with the last
    /// row allowed to end at the plane width.
    pub fn from_planes(
        resolution: Resolution,
        planes: [Vec<u8>; 3],
        strides: [usize; 3],
    ) -> Result<Self> {
        for plane in 0..3 {
            check_plane(resolution, plane, planes[plane].len(), strides[plane])?;
        }
        Ok(Self {
            resolution,
            planes,
            strides,
        })
    }

    /// A frame copied from strided plane slices (e.g. a decoder's borrowed output),
    /// packed tightly.
    pub fn copy_from_planes(
        resolution: Resolution,
        planes: [&[u8]; 3],
        strides: [usize; 3],
    ) -> Result<Self> {
        let mut frame = Self::black(resolution);
        frame.copy_planes_from(resolution, planes, strides)?;
        Ok(frame)
    }

    /// Overwrites this frame with strided plane slices, packed tightly, keeping the
    /// allocations when they are large enough: a decoder that writes every picture into
    /// the same frame allocates only when the picture grows.
    ///
    /// On error the frame is left unchanged.
    pub fn copy_planes_from(
        &mut self,
        resolution: Resolution,
        planes: [&[u8]; 3],
        strides: [usize; 3],
    ) -> Result<()> {
        for plane in 0..3 {
            check_plane(resolution, plane, planes[plane].len(), strides[plane])?;
        }
        self.resolution = resolution;
        for plane in 0..3 {
            let (width, height) = resolution.plane_size(plane);
            let stride = strides[plane];
            let target = &mut self.planes[plane];
            target.clear();
            for row in 0..height {
                target.extend_from_slice(&planes[plane][row * stride..row * stride + width]);
            }
            self.strides[plane] = width;
        }
        Ok(())
    }

    /// Picture size.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.resolution.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.resolution.height
    }

    /// Plane 0 (Y), 1 (U) or 2 (V), including any stride padding.
    pub fn plane(&self, plane: usize) -> &[u8] {
        &self.planes[plane]
    }

    /// Plane 0 (Y), 1 (U) or 2 (V), writable.
    pub fn plane_mut(&mut self, plane: usize) -> &mut [u8] {
        &mut self.planes[plane]
    }

    /// Stride of plane 0 (Y), 1 (U) or 2 (V) in bytes.
    pub fn stride(&self, plane: usize) -> usize {
        self.strides[plane]
    }

    /// Strides of the three planes.
    pub fn strides(&self) -> [usize; 3] {
        self.strides
    }

    /// The visible rows of a plane, without stride padding.
    pub fn rows(&self, plane: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (width, height) = self.resolution.plane_size(plane);
        let stride = self.strides[plane];
        (0..height).map(move |row| &self.planes[plane][row * stride..row * stride + width])
    }

    /// Writes the visible pixels as packed I420 (Y, then U, then V) into `out`.
    pub fn write_packed_i420(&self, out: &mut Vec<u8>) {
        out.clear();
        for plane in 0..3 {
            for row in self.rows(plane) {
                out.extend_from_slice(row);
            }
        }
    }

    /// Bytes of a packed I420 picture at this resolution.
    pub fn packed_len(&self) -> usize {
        let (cw, ch) = self.resolution.plane_size(1);
        self.resolution.pixels() + 2 * cw * ch
    }

    /// Peak signal-to-noise ratio of plane `plane` against `reference`, in dB
    /// (`f64::INFINITY` when identical). Both must have the same resolution.
    pub fn psnr(&self, reference: &VideoFrame, plane: usize) -> Option<f64> {
        if self.resolution != reference.resolution {
            return None;
        }
        let mut squared_error: u64 = 0;
        let mut count: u64 = 0;
        for (a, b) in self.rows(plane).zip(reference.rows(plane)) {
            for (&x, &y) in a.iter().zip(b) {
                let d = i64::from(x) - i64::from(y);
                squared_error += (d * d) as u64;
                count += 1;
            }
        }
        if squared_error == 0 {
            return Some(f64::INFINITY);
        }
        let mse = squared_error as f64 / count as f64;
        Some(10.0 * (255.0 * 255.0 / mse).log10())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_must_be_even_and_bounded() {
        assert!(Resolution::new(640, 360).is_ok());
        assert!(Resolution::new(641, 360).is_err());
        assert!(Resolution::new(0, 360).is_err());
        assert!(Resolution::new(MAX_DIMENSION + 2, 360).is_err());
    }

    #[test]
    fn strided_planes_are_validated_and_packed() {
        let res = Resolution::new(4, 2).unwrap();
        let y = vec![1, 2, 3, 4, 0, 0, 5, 6, 7, 8];
        // 4x2 luma has 2x1 chroma; the U plane carries one byte of stride padding.
        let frame =
            VideoFrame::copy_from_planes(res, [&y, &[9, 10, 0], &[11, 12]], [6, 3, 2]).unwrap();
        let mut packed = Vec::new();
        frame.write_packed_i420(&mut packed);
        assert_eq!(packed, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(packed.len(), frame.packed_len());
        assert!(matches!(
            VideoFrame::copy_from_planes(res, [&y[..8], &[9], &[10]], [6, 1, 1]),
            Err(MediaError::PlaneTooSmall { plane: 0, .. })
        ));
        assert!(matches!(
            VideoFrame::from_planes(res, [vec![0; 8], vec![0; 2], vec![0; 2]], [3, 1, 1]),
            Err(MediaError::StrideTooSmall {
                plane: 0,
                stride: 3,
                width: 4
            })
        ));
    }

    #[test]
    fn copying_planes_into_a_frame_reuses_its_buffers() {
        let mut frame = VideoFrame::black(Resolution::P360);
        let source = VideoFrame::black(Resolution::new(320, 180).unwrap());
        let luma = frame.plane(0).as_ptr();
        let planes = [source.plane(0), source.plane(1), source.plane(2)];
        frame
            .copy_planes_from(source.resolution(), planes, source.strides())
            .unwrap();
        assert_eq!(frame, source);
        assert_eq!(
            frame.plane(0).as_ptr(),
            luma,
            "a smaller picture fits the old buffer"
        );
        let bad = frame.copy_planes_from(Resolution::P360, planes, source.strides());
        assert!(matches!(
            bad,
            Err(MediaError::StrideTooSmall { plane: 0, .. })
        ));
        assert_eq!(
            frame.resolution(),
            source.resolution(),
            "unchanged after an error"
        );
    }

    #[test]
    fn psnr_of_identical_frames_is_infinite() {
        let a = VideoFrame::black(Resolution::P360);
        let mut b = a.clone();
        assert_eq!(a.psnr(&b, 0), Some(f64::INFINITY));
        b.plane_mut(0)[0] = 26;
        let psnr = a.psnr(&b, 0).unwrap();
        assert!(psnr > 60.0 && psnr.is_finite());
    }
}
