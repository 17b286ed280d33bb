//! YUV4MPEG2 (`.y4m`) raw video, 8-bit 4:2:0 only.
//!
//! A stream is a text header line (`YUV4MPEG2 W320 H180 F30:1 ...`) followed by frames,
//! each a `FRAME` line and the packed Y, U and V planes. The 4:2:0 chroma sitings
//! (`C420`, `C420jpeg`, `C420paldv`, `C420mpeg2`, or no `C` tag) are all read as I420;
//! siting only matters to a renderer. Other colour spaces are reported as unsupported.

use crate::error::{MediaError, Result};
use crate::video::{Resolution, VideoFrame};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

const MAGIC: &[u8] = b"YUV4MPEG2";
const FRAME_TAG: &[u8] = b"FRAME";

/// Longest header or `FRAME` line accepted, so garbage without a newline cannot make
/// the reader buffer without bound.
pub const MAX_LINE_LEN: usize = 4096;

/// Bytes reserved up front per plane when reading into a new frame. A header can
/// promise a 16384x16384 picture; growing as data arrives means a short input costs
/// only what it holds.
const MAX_PREALLOCATED_PLANE: usize = 1 << 20;

const SUPPORTED_CHROMA: [&str; 4] = ["420", "420jpeg", "420paldv", "420mpeg2"];

fn malformed(reason: impl Into<String>) -> MediaError {
    MediaError::Malformed {
        format: "Y4M",
        reason: reason.into(),
    }
}

/// Maps a short read to a format error: the stream ended where the format needs bytes.
fn truncated(error: std::io::Error, what: &str) -> MediaError {
    if error.kind() == ErrorKind::UnexpectedEof {
        malformed(format!("stream ends inside {what}"))
    } else {
        MediaError::Io(error)
    }
}

/// Reads YUV4MPEG2 frames from a byte stream (buffered internally).
pub struct Y4mReader<R: Read> {
    reader: BufReader<R>,
    resolution: Resolution,
    frame_rate: (u32, u32),
    line: Vec<u8>,
}

impl<R: Read> std::fmt::Debug for Y4mReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mReader")
            .field("resolution", &self.resolution)
            .field("frame_rate", &self.frame_rate)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Y4mReader<R> {
    /// Reads and checks the stream header.
    ///
    /// `W`, `H` and `F` are required; `I`, `A` and `X` tags and unknown tags are ignored.
    pub fn new(reader: R) -> Result<Self> {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        if !read_line(&mut reader, &mut line)? {
            return Err(malformed("empty stream"));
        }
        let params = line
            .strip_prefix(MAGIC)
            .ok_or_else(|| malformed("missing YUV4MPEG2 signature"))?;
        if !params.is_empty() && params[0] != b' ' {
            return Err(malformed("missing YUV4MPEG2 signature"));
        }

        let (mut width, mut height, mut frame_rate) = (None, None, None);
        for token in params.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
            let (tag, value) = (token[0], &token[1..]);
            match tag {
                b'W' => width = Some(parse_number(value, "W")?),
                b'H' => height = Some(parse_number(value, "H")?),
                b'F' => frame_rate = Some(parse_ratio(value)?),
                b'C' => {
                    let chroma = std::str::from_utf8(value).unwrap_or("?");
                    if !SUPPORTED_CHROMA.contains(&chroma) {
                        return Err(MediaError::Unsupported {
                            format: "Y4M",
                            feature: format!("colour space C{chroma} (only 8-bit 4:2:0)"),
                        });
                    }
                }
                // Interlacing, aspect ratio, extensions: do not change how planes are read.
                _ => {}
            }
        }
        let width = width.ok_or_else(|| malformed("header has no W"))?;
        let height = height.ok_or_else(|| malformed("header has no H"))?;
        let frame_rate = frame_rate.ok_or_else(|| malformed("header has no F"))?;
        let resolution = Resolution::new(width, height)?;
        Ok(Self {
            reader,
            resolution,
            frame_rate,
            line,
        })
    }

    /// Picture size of every frame.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Frame rate as (numerator, denominator) frames per second, both non-zero.
    pub fn frame_rate(&self) -> (u32, u32) {
        self.frame_rate
    }

    /// The next frame in a new buffer; `None` at the end of the stream.
    ///
    /// A stream that ends inside a frame, or a frame not introduced by a `FRAME` line,
    /// is an error. Parameters on the `FRAME` line are ignored.
    pub fn read_frame(&mut self) -> Result<Option<VideoFrame>> {
        if !self.read_frame_header()? {
            return Ok(None);
        }
        let mut planes: [Vec<u8>; 3] = Default::default();
        let mut strides = [0; 3];
        for (plane, buffer) in planes.iter_mut().enumerate() {
            let (width, height) = self.resolution.plane_size(plane);
            let len = width * height;
            buffer.reserve_exact(len.min(MAX_PREALLOCATED_PLANE));
            (&mut self.reader).take(len as u64).read_to_end(buffer)?;
            if buffer.len() != len {
                return Err(malformed("stream ends inside a frame"));
            }
            strides[plane] = width;
        }
        VideoFrame::from_planes(self.resolution, planes, strides).map(Some)
    }

    /// Reads the next frame into `frame`, reusing its buffers (and keeping its strides)
    /// when it already has the stream's resolution. Returns `false` at the end of the
    /// stream; errors as [`read_frame`](Self::read_frame).
    pub fn read_frame_into(&mut self, frame: &mut VideoFrame) -> Result<bool> {
        if frame.resolution() != self.resolution {
            return Ok(match self.read_frame()? {
                Some(new) => {
                    *frame = new;
                    true
                }
                None => false,
            });
        }
        if !self.read_frame_header()? {
            return Ok(false);
        }
        for plane in 0..3 {
            let (width, height) = self.resolution.plane_size(plane);
            let stride = frame.stride(plane);
            let data = frame.plane_mut(plane);
            for row in 0..height {
                self.reader
                    .read_exact(&mut data[row * stride..row * stride + width])
                    .map_err(|e| truncated(e, "a frame"))?;
            }
        }
        Ok(true)
    }

    /// Reads a `FRAME` line; `false` at a clean end of stream.
    fn read_frame_header(&mut self) -> Result<bool> {
        if !read_line(&mut self.reader, &mut self.line)? {
            return Ok(false);
        }
        let rest = self
            .line
            .strip_prefix(FRAME_TAG)
            .ok_or_else(|| malformed("expected a FRAME line"))?;
        if !rest.is_empty() && rest[0] != b' ' {
            return Err(malformed("expected a FRAME line"));
        }
        Ok(true)
    }
}

/// Reads one `\n`-terminated line into `line`, without the newline. `false` when the
/// stream ends before any byte; a line that is cut short or too long is an error.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool> {
    line.clear();
    reader
        .take(MAX_LINE_LEN as u64 + 1)
        .read_until(b'\n', line)?;
    if line.is_empty() {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_LINE_LEN {
            malformed(format!("line longer than {MAX_LINE_LEN} bytes"))
        } else {
            malformed("stream ends inside a header line")
        });
    }
    line.pop();
    Ok(true)
}

fn parse_number(value: &[u8], tag: &str) -> Result<u32> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            malformed(format!(
                "bad {tag} value {:?}",
                String::from_utf8_lossy(value)
            ))
        })
}

fn parse_ratio(value: &[u8]) -> Result<(u32, u32)> {
    let colon = value
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| malformed("F value has no ':'"))?;
    let numerator = parse_number(&value[..colon], "F")?;
    let denominator = parse_number(&value[colon + 1..], "F")?;
    if numerator == 0 || denominator == 0 {
        return Err(MediaError::InvalidFrameRate {
            numerator,
            denominator,
        });
    }
    Ok((numerator, denominator))
}

/// Writes YUV4MPEG2 frames (as `C420jpeg`, progressive, square pixels).
///
/// Each frame goes out in one `write_all`; wrap unbuffered files in a `BufWriter`
/// anyway, as the header and `FRAME` lines are small writes.
pub struct Y4mWriter<W: Write> {
    writer: W,
    resolution: Resolution,
    packed: Vec<u8>,
    frames_written: u64,
}

impl<W: Write> std::fmt::Debug for Y4mWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mWriter")
            .field("resolution", &self.resolution)
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the header for frames of `resolution` at `fps_num / fps_den` frames per
    /// second (both non-zero).
    pub fn new(mut writer: W, resolution: Resolution, fps_num: u32, fps_den: u32) -> Result<Self> {
        if fps_num == 0 || fps_den == 0 {
            return Err(MediaError::InvalidFrameRate {
                numerator: fps_num,
                denominator: fps_den,
            });
        }
        writeln!(
            writer,
            "YUV4MPEG2 W{} H{} F{fps_num}:{fps_den} Ip A1:1 C420jpeg",
            resolution.width(),
            resolution.height()
        )?;
        Ok(Self {
            writer,
            resolution,
            packed: Vec::new(),
            frames_written: 0,
        })
    }

    /// Appends a frame, which must have the stream's resolution. Only the visible
    /// pixels are written, whatever the frame's strides.
    pub fn write_frame(&mut self, frame: &VideoFrame) -> Result<()> {
        if frame.resolution() != self.resolution {
            return Err(MediaError::ResolutionMismatch {
                expected: self.resolution,
                actual: frame.resolution(),
            });
        }
        self.packed.clear();
        self.packed.extend_from_slice(b"FRAME\n");
        for plane in 0..3 {
            for row in frame.rows(plane) {
                self.packed.extend_from_slice(row);
            }
        }
        self.writer.write_all(&self.packed)?;
        self.frames_written += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Flushes and gives the underlying writer back.
    pub fn finish(mut self) -> Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{TestPattern, read_frame_counter};

    fn res(width: u32, height: u32) -> Resolution {
        Resolution::new(width, height).unwrap()
    }

    fn encode(frames: &[VideoFrame], fps: (u32, u32)) -> Vec<u8> {
        let mut writer = Y4mWriter::new(Vec::new(), frames[0].resolution(), fps.0, fps.1).unwrap();
        for frame in frames {
            writer.write_frame(frame).unwrap();
        }
        assert_eq!(writer.frames_written(), frames.len() as u64);
        writer.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<VideoFrame>> {
        let mut reader = Y4mReader::new(bytes)?;
        let mut frames = Vec::new();
        while let Some(frame) = reader.read_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn round_trips_frames() {
        let mut pattern = TestPattern::new(res(64, 36), 30);
        let frames: Vec<_> = (0..3).map(|_| pattern.next_frame()).collect();
        let bytes = encode(&frames, (30_000, 1_001));
        assert!(bytes.starts_with(b"YUV4MPEG2 W64 H36 F30000:1001 "));

        let mut reader = Y4mReader::new(&bytes[..]).unwrap();
        assert_eq!(reader.resolution(), res(64, 36));
        assert_eq!(reader.frame_rate(), (30_000, 1_001));
        for (index, expected) in frames.iter().enumerate() {
            let frame = reader.read_frame().unwrap().unwrap();
            assert_eq!(&frame, expected);
            assert_eq!(read_frame_counter(&frame), Some(index as u64));
        }
        assert!(reader.read_frame().unwrap().is_none());
        assert!(reader.read_frame().unwrap().is_none());
    }

    #[test]
    fn strided_frames_are_written_packed_and_read_into_place() {
        let resolution = res(4, 2);
        let y = vec![1, 2, 3, 4, 99, 99, 5, 6, 7, 8];
        let frame =
            VideoFrame::from_planes(resolution, [y, vec![9, 10, 99], vec![11, 12]], [6, 3, 2])
                .unwrap();
        let bytes = encode(std::slice::from_ref(&frame), (25, 1));
        let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert_eq!(
            &bytes[header_len..],
            b"FRAME\n\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
        );

        let mut target =
            VideoFrame::from_planes(resolution, [vec![0; 10], vec![0; 3], vec![0; 2]], [6, 3, 2])
                .unwrap();
        let ptr = target.plane(0).as_ptr();
        let mut reader = Y4mReader::new(&bytes[..]).unwrap();
        assert!(reader.read_frame_into(&mut target).unwrap());
        assert_eq!(target.plane(0).as_ptr(), ptr);
        assert_eq!(target.psnr(&frame, 0), Some(f64::INFINITY));
        assert_eq!(target.psnr(&frame, 1), Some(f64::INFINITY));
        assert!(!reader.read_frame_into(&mut target).unwrap());

        let mut wrong_size = VideoFrame::black(res(8, 8));
        let mut reader = Y4mReader::new(&bytes[..]).unwrap();
        assert!(reader.read_frame_into(&mut wrong_size).unwrap());
        assert_eq!(wrong_size.resolution(), resolution);

        let mut writer = Y4mWriter::new(Vec::new(), res(8, 8), 30, 1).unwrap();
        assert!(matches!(
            writer.write_frame(&frame),
            Err(MediaError::ResolutionMismatch { .. })
        ));
        assert!(matches!(
            Y4mWriter::new(Vec::new(), resolution, 30, 0),
            Err(MediaError::InvalidFrameRate {
                numerator: 30,
                denominator: 0
            })
        ));
    }

    #[test]
    fn accepts_header_variants() {
        let payload = [0u8; 6];
        for header in [
            "YUV4MPEG2 W2 H2 F25:1",
            "YUV4MPEG2 W2 H2 F25:1 C420",
            "YUV4MPEG2  C420mpeg2 XYSCSS=420MPEG2 H2   W2 F25:1 It A0:0 Zunknown",
            "YUV4MPEG2 W2 H2 F25:1 C420paldv",
        ] {
            let mut bytes = format!("{header}\nFRAME Ixyz Xfoo\n").into_bytes();
            bytes.extend_from_slice(&payload);
            let frames = read_all(&bytes).unwrap_or_else(|e| panic!("{header}: {e}"));
            assert_eq!(frames.len(), 1);
        }
    }

    #[test]
    fn rejects_bad_headers() {
        type Check = fn(&MediaError) -> bool;
        let cases: [(&[u8], Check); 14] = [
            (b"", |e| matches!(e, MediaError::Malformed { .. })),
            (b"YUV4MPEG W2 H2 F1:1\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2W2 H2 F1:1\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W2 H2 F1:1", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W3 H2 F1:1\n", |e| {
                matches!(e, MediaError::InvalidVideoSize { width: 3, .. })
            }),
            (b"YUV4MPEG2 W0 H2 F1:1\n", |e| {
                matches!(e, MediaError::InvalidVideoSize { width: 0, .. })
            }),
            (b"YUV4MPEG2 W32768 H2 F1:1\n", |e| {
                matches!(e, MediaError::InvalidVideoSize { .. })
            }),
            (b"YUV4MPEG2 W99999999999 H2 F1:1\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W2 F1:1\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W2 H2\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W2 H2 F0:1\n", |e| {
                matches!(e, MediaError::InvalidFrameRate { .. })
            }),
            (b"YUV4MPEG2 W2 H2 F30\n", |e| {
                matches!(e, MediaError::Malformed { .. })
            }),
            (b"YUV4MPEG2 W2 H2 F1:1 C444\n", |e| {
                matches!(e, MediaError::Unsupported { .. })
            }),
            (b"YUV4MPEG2 W2 H2 F1:1 C420p10\n", |e| {
                matches!(e, MediaError::Unsupported { .. })
            }),
        ];
        for (bytes, expected) in cases {
            let error = Y4mReader::new(bytes).expect_err(&String::from_utf8_lossy(bytes));
            assert!(
                expected(&error),
                "{:?}: {error:?}",
                String::from_utf8_lossy(bytes)
            );
        }

        let mut long = b"YUV4MPEG2 W2 H2 F1:1 X".to_vec();
        long.resize(1 << 20, b'x');
        assert!(matches!(
            Y4mReader::new(&long[..]),
            Err(MediaError::Malformed { .. })
        ));

        let not_a_frame = b"YUV4MPEG2 W2 H2 F1:1\nFRAMES\n\0\0\0\0\0\0";
        assert!(read_all(not_a_frame).is_err());
        let huge_promise = b"YUV4MPEG2 W16384 H16384 F1:1\nFRAME\n\0\0\0";
        assert!(matches!(
            read_all(huge_promise),
            Err(MediaError::Malformed { .. })
        ));
    }

    #[test]
    fn every_prefix_reads_whole_frames_then_stops() {
        let mut pattern = TestPattern::new(res(8, 4), 30);
        let frames: Vec<_> = (0..3).map(|_| pattern.next_frame()).collect();
        let bytes = encode(&frames, (30, 1));
        let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let frame_len = 6 + frames[0].packed_len();

        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            let Ok(mut reader) = Y4mReader::new(prefix) else {
                assert!(len < header_len, "header rejected at {len}");
                continue;
            };
            let mut whole_frames = 0;
            let ending = loop {
                match reader.read_frame() {
                    Ok(Some(frame)) => {
                        assert_eq!(frame, frames[whole_frames]);
                        whole_frames += 1;
                    }
                    other => break other,
                }
            };
            let body = len - header_len;
            assert_eq!(whole_frames, body / frame_len, "prefix {len}");
            assert_eq!(
                ending.is_ok(),
                body % frame_len == 0,
                "prefix {len}: {ending:?}"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"YUV4MPEG2 WHFCIAX0123456789:\nFRAME420jpegmpeg";
        for _ in 0..3_000 {
            let len = (next() % 120) as usize;
            let mut bytes = if next() % 2 == 0 {
                b"YUV4MPEG2 ".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]));
            let _ = read_all(&bytes);
            let raw: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = read_all(&raw);
        }
    }
}
