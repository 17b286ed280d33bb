//! Input decoding shared by the fuzz targets.

use tincan_rtp::payload::PacketInfo;

/// Splits fuzz input into a sequence of video payloads with their packet facts: per packet
/// a length byte, a flags byte (bit 0 marker, bits 1-2 sequence step: +1, +0 (duplicate),
/// +2 (gap), -1 (late), bit 3 next timestamp), then that many payload bytes.
pub fn video_payloads(data: &[u8]) -> impl Iterator<Item = (&[u8], PacketInfo)> {
    let mut info = PacketInfo::default();
    let mut rest = data;
    std::iter::from_fn(move || {
        let [len, flags, tail @ ..] = rest else {
            return None;
        };
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        info.marker = flags & 1 != 0;
        info.sequence = info
            .sequence
            .wrapping_add([1, 0, 2, u16::MAX][usize::from(flags >> 1 & 3)]);
        if flags & 8 != 0 {
            info.timestamp = info.timestamp.wrapping_add(3000);
        }
        Some((payload, info))
    })
}
