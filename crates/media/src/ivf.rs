//! IVF, the minimal container libvpx and libaom use for VP8/VP9/AV1 streams.
//!
//! Layout, all little-endian: a 32-byte file header (`DKIF`, version, header length,
//! codec fourcc, width and height as `u16`, timebase denominator and numerator as
//! `u32`, frame count, 4 unused bytes), then per frame a 12-byte header (payload size
//! `u32`, presentation timestamp `u64` in timebase units) and the payload.

use crate::error::{MediaError, Result};
use crate::video::Resolution;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};

const MAGIC: &[u8; 4] = b"DKIF";
const FILE_HEADER_LEN: usize = 32;
const FRAME_HEADER_LEN: usize = 12;
/// Byte offset of the frame count in the file header.
const FRAME_COUNT_OFFSET: u64 = 24;

/// Largest frame payload accepted, read or written. Far above any real compressed
/// frame, and low enough that a corrupt size field cannot make a reader allocate
/// gigabytes.
pub const MAX_FRAME_SIZE: usize = 16 << 20;

fn malformed(reason: impl Into<String>) -> MediaError {
    MediaError::Malformed {
        format: "IVF",
        reason: reason.into(),
    }
}

/// Fills `buf` from `reader`, stopping early only at end of stream; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One compressed frame and its presentation timestamp (in timebase units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfFrame {
    /// Presentation timestamp, in units of [`IvfReader::timebase`].
    pub pts: u64,
    /// The compressed frame.
    pub data: Vec<u8>,
}

/// Reads frames from an IVF stream.
///
/// Reads go straight to `R` in header- and frame-sized pieces, so buffering is not
/// needed for files.
#[derive(Debug)]
pub struct IvfReader<R: Read> {
    reader: R,
    fourcc: [u8; 4],
    width: u16,
    height: u16,
    timebase: (u32, u32),
    frame_count_hint: u32,
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    ///
    /// The version field is not checked (writers disagree on it); a header length
    /// beyond 32 bytes is skipped, a shorter one is an error, as is a timebase with a
    /// zero term.
    pub fn new(mut reader: R) -> Result<Self> {
        let mut header = [0u8; FILE_HEADER_LEN];
        if read_up_to(&mut reader, &mut header)? < FILE_HEADER_LEN {
            return Err(malformed("stream ends inside the file header"));
        }
        if &header[0..4] != MAGIC {
            return Err(malformed("missing DKIF signature"));
        }
        let header_len = usize::from(u16_at(&header, 6));
        if header_len < FILE_HEADER_LEN {
            return Err(malformed(format!(
                "header length {header_len} is under {FILE_HEADER_LEN}"
            )));
        }
        let extra = (header_len - FILE_HEADER_LEN) as u64;
        if std::io::copy(&mut (&mut reader).take(extra), &mut std::io::sink())? < extra {
            return Err(malformed("stream ends inside the file header"));
        }

        let denominator = u32_at(&header, 16);
        let numerator = u32_at(&header, 20);
        if numerator == 0 || denominator == 0 {
            return Err(MediaError::InvalidTimebase {
                numerator,
                denominator,
            });
        }
        Ok(Self {
            reader,
            fourcc: [header[8], header[9], header[10], header[11]],
            width: u16_at(&header, 12),
            height: u16_at(&header, 14),
            timebase: (numerator, denominator),
            frame_count_hint: u32_at(&header, 24),
        })
    }

    /// Codec fourcc, e.g. `*b"AV01"`, `*b"VP80"`, `*b"VP90"`.
    pub fn fourcc(&self) -> [u8; 4] {
        self.fourcc
    }

    /// Width from the header, as written (not validated; the codec stream is authoritative).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Height from the header, as written.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Timebase as (numerator, denominator): a pts of 1 is `numerator / denominator`
    /// seconds (`(1, 30)` for 30 fps streams that count frames). Both are non-zero.
    pub fn timebase(&self) -> (u32, u32) {
        self.timebase
    }

    /// Frame count from the header. Writers that stream may leave it 0 or wrong, so
    /// read until `None` rather than trusting it.
    pub fn frame_count_hint(&self) -> u32 {
        self.frame_count_hint
    }

    /// The next frame; `None` at a clean end of stream. A stream cut inside a frame,
    /// or a frame larger than [`MAX_FRAME_SIZE`], is an error.
    pub fn read_frame(&mut self) -> Result<Option<IvfFrame>> {
        let mut data = Vec::new();
        Ok(self
            .read_frame_into(&mut data)?
            .map(|pts| IvfFrame { pts, data }))
    }

    /// Reads the next frame's payload into `buf` (replacing its contents, keeping its
    /// allocation) and returns its pts; `None` at a clean end of stream.
    pub fn read_frame_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        match read_up_to(&mut self.reader, &mut header)? {
            0 => return Ok(None),
            FRAME_HEADER_LEN => {}
            _ => return Err(malformed("stream ends inside a frame header")),
        }
        let size = u32_at(&header, 0) as usize;
        if size > MAX_FRAME_SIZE {
            return Err(malformed(format!(
                "frame of {size} bytes exceeds the {MAX_FRAME_SIZE}-byte limit"
            )));
        }
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&header[4..12]);

        buf.clear();
        // Grows with the bytes that actually arrive, so a lying size field on a short
        // stream allocates only what the stream holds.
        (&mut self.reader).take(size as u64).read_to_end(buf)?;
        if buf.len() != size {
            return Err(malformed(format!("stream ends inside a {size}-byte frame")));
        }
        Ok(Some(u64::from_le_bytes(pts)))
    }
}

/// Writes an IVF stream; the frame count in the header is filled in by
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct IvfWriter<W: Write + Seek> {
    writer: W,
    /// Where the file header starts, so streams embedded at an offset are patched right.
    start: u64,
    frames_written: u64,
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Writes the file header at the writer's current position. `timebase` is
    /// (numerator, denominator) seconds per pts unit, both non-zero.
    pub fn new(
        mut writer: W,
        fourcc: [u8; 4],
        resolution: Resolution,
        timebase: (u32, u32),
    ) -> Result<Self> {
        let (numerator, denominator) = timebase;
        if numerator == 0 || denominator == 0 {
            return Err(MediaError::InvalidTimebase {
                numerator,
                denominator,
            });
        }
        let start = writer.stream_position()?;
        let mut header = [0u8; FILE_HEADER_LEN];
        header[0..4].copy_from_slice(MAGIC);
        header[6..8].copy_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
        header[8..12].copy_from_slice(&fourcc);
        // MAX_DIMENSION is 16384, so a Resolution always fits IVF's u16 fields.
        header[12..14].copy_from_slice(&(resolution.width() as u16).to_le_bytes());
        header[14..16].copy_from_slice(&(resolution.height() as u16).to_le_bytes());
        header[16..20].copy_from_slice(&denominator.to_le_bytes());
        header[20..24].copy_from_slice(&numerator.to_le_bytes());
        writer.write_all(&header)?;
        Ok(Self {
            writer,
            start,
            frames_written: 0,
        })
    }

    /// Appends a frame with presentation timestamp `pts`; at most [`MAX_FRAME_SIZE`] bytes.
    pub fn write_frame(&mut self, pts: u64, data: &[u8]) -> Result<()> {
        if data.len() > MAX_FRAME_SIZE {
            return Err(MediaError::Unsupported {
                format: "IVF",
                feature: format!("frames over {MAX_FRAME_SIZE} bytes ({} given)", data.len()),
            });
        }
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[4..12].copy_from_slice(&pts.to_le_bytes());
        self.writer.write_all(&header)?;
        self.writer.write_all(data)?;
        self.frames_written += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Writes the frame count into the header, leaves the writer positioned after the
    /// last frame, flushes, and gives the writer back.
    pub fn finish(mut self) -> Result<W> {
        let end = self.writer.stream_position()?;
        let count = u32::try_from(self.frames_written).unwrap_or(u32::MAX);
        self.writer
            .seek(SeekFrom::Start(self.start + FRAME_COUNT_OFFSET))?;
        self.writer.write_all(&count.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/video/testsrc2_320x180_30f.ivf"
    );

    fn sample_stream() -> (Vec<IvfFrame>, Vec<u8>) {
        let frames: Vec<IvfFrame> = (0..4u64)
            .map(|i| IvfFrame {
                pts: i * 3_000,
                data: (0..(i * 7) as u8).collect(),
            })
            .collect();
        let mut writer = IvfWriter::new(
            Cursor::new(Vec::new()),
            *b"VP90",
            Resolution::new(64, 48).unwrap(),
            (1, 90_000),
        )
        .unwrap();
        for frame in &frames {
            writer.write_frame(frame.pts, &frame.data).unwrap();
        }
        assert_eq!(writer.frames_written(), 4);
        (frames, writer.finish().unwrap().into_inner())
    }

    #[test]
    fn reads_the_av1_fixture() {
        let file = std::fs::File::open(FIXTURE).unwrap();
        let mut reader = IvfReader::new(std::io::BufReader::new(file)).unwrap();
        assert_eq!(&reader.fourcc(), b"AV01");
        assert_eq!((reader.width(), reader.height()), (320, 180));
        assert_eq!(reader.timebase(), (1, 30));
        assert_eq!(reader.frame_count_hint(), 30);

        let mut buf = Vec::new();
        let mut pts = Vec::new();
        let mut bytes = 0;
        while let Some(p) = reader.read_frame_into(&mut buf).unwrap() {
            assert!(!buf.is_empty());
            bytes += buf.len();
            pts.push(p);
        }
        assert_eq!(pts, (0..30).collect::<Vec<u64>>());
        let file_len = std::fs::metadata(FIXTURE).unwrap().len() as usize;
        assert_eq!(bytes + 32 + 30 * 12, file_len);
    }

    #[test]
    fn round_trips_and_patches_the_frame_count() {
        let (frames, bytes) = sample_stream();
        let mut reader = IvfReader::new(&bytes[..]).unwrap();
        assert_eq!(&reader.fourcc(), b"VP90");
        assert_eq!((reader.width(), reader.height()), (64, 48));
        assert_eq!(reader.timebase(), (1, 90_000));
        assert_eq!(reader.frame_count_hint(), 4);
        for expected in &frames {
            assert_eq!(reader.read_frame().unwrap().as_ref(), Some(expected));
        }
        assert_eq!(reader.read_frame().unwrap(), None);
    }

    #[test]
    fn writer_patches_relative_to_where_it_started() {
        let mut cursor = Cursor::new(b"prefix".to_vec());
        cursor.seek(SeekFrom::End(0)).unwrap();
        let mut writer =
            IvfWriter::new(cursor, *b"AV01", Resolution::new(2, 2).unwrap(), (1, 30)).unwrap();
        writer.write_frame(0, b"abc").unwrap();
        let mut cursor = writer.finish().unwrap();
        assert_eq!(cursor.position(), cursor.get_ref().len() as u64);
        cursor.write_all(b"!").unwrap();
        let bytes = cursor.into_inner();
        let mut reader = IvfReader::new(&bytes[6..]).unwrap();
        assert_eq!(reader.frame_count_hint(), 1);
        assert_eq!(reader.read_frame().unwrap().unwrap().data, b"abc");
        assert!(
            reader.read_frame().is_err(),
            "trailing byte is a cut frame header"
        );
    }

    #[test]
    fn every_prefix_is_an_error_or_a_clean_end() {
        let (frames, bytes) = sample_stream();
        let mut boundaries = vec![32];
        for frame in &frames {
            boundaries.push(boundaries.last().unwrap() + 12 + frame.data.len());
        }
        for len in 0..=bytes.len() {
            let Ok(mut reader) = IvfReader::new(&bytes[..len]) else {
                assert!(len < 32);
                continue;
            };
            let mut read = 0;
            let ending = loop {
                match reader.read_frame() {
                    Ok(Some(frame)) => {
                        assert_eq!(frame, frames[read]);
                        read += 1;
                    }
                    other => break other,
                }
            };
            assert_eq!(
                ending.is_ok(),
                boundaries.contains(&len),
                "prefix {len}: {ending:?}"
            );
            assert!(boundaries[read] <= len);
        }
    }

    #[test]
    fn rejects_bad_headers_and_oversized_frames() {
        let (_, bytes) = sample_stream();
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            IvfReader::new(&bad_magic[..]),
            Err(MediaError::Malformed { .. })
        ));

        let mut short_header = bytes.clone();
        short_header[6] = 16;
        assert!(IvfReader::new(&short_header[..]).is_err());

        let mut zero_timebase = bytes.clone();
        zero_timebase[16..20].fill(0);
        assert!(matches!(
            IvfReader::new(&zero_timebase[..]),
            Err(MediaError::InvalidTimebase {
                numerator: 1,
                denominator: 0
            })
        ));

        // A longer header is skipped: move the frames 4 bytes on.
        let mut long_header = bytes[..32].to_vec();
        long_header[6] = 36;
        long_header.extend_from_slice(&[0; 4]);
        long_header.extend_from_slice(&bytes[32..]);
        let mut reader = IvfReader::new(&long_header[..]).unwrap();
        assert_eq!(reader.read_frame().unwrap().unwrap().pts, 0);

        let mut huge = bytes[..32].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8 + 100]);
        let mut reader = IvfReader::new(&huge[..]).unwrap();
        assert!(matches!(
            reader.read_frame(),
            Err(MediaError::Malformed { .. })
        ));

        let mut writer =
            IvfWriter::new(Cursor::new(Vec::new()), *b"AV01", Resolution::P360, (1, 30)).unwrap();
        assert!(writer.write_frame(0, &vec![0; MAX_FRAME_SIZE + 1]).is_err());
        assert!(
            IvfWriter::new(Cursor::new(Vec::new()), *b"AV01", Resolution::P360, (1, 0)).is_err()
        );
    }

    #[test]
    fn garbage_never_panics() {
        let (_, valid) = sample_stream();
        let mut state = 0xD1B5_4A32_D192_ED03u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3_000 {
            let len = (next() % 150) as usize;
            let mut bytes = if next() % 2 == 0 {
                MAGIC.to_vec()
            } else {
                Vec::new()
            };
            bytes.extend((0..len).map(|_| next() as u8));
            let mut mutated = valid.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % mutated.len() as u64) as usize;
                mutated[at] = next() as u8;
            }
            for input in [&bytes, &mutated] {
                if let Ok(mut reader) = IvfReader::new(&input[..]) {
                    while let Ok(Some(_)) = reader.read_frame() {}
                }
            }
        }
    }
}
