//! The error type shared by every RTP and RTCP parser and builder in this crate.

/// Why an RTP or RTCP packet could not be parsed or built.
///
/// Every variant names the values that were wrong, so a log line is enough to see what
/// arrived on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// The input ended before a field that had to be there.
    #[error("packet too short: needed {needed} bytes, got {got}")]
    TooShort {
        /// Bytes needed to read the field.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The version field was not 2.
    #[error("unsupported RTP/RTCP version {version} (only 2 is supported)")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The padding count was zero or larger than the bytes it should remove.
    #[error("bad padding: {padding} padding bytes, but only {available} bytes available")]
    BadPadding {
        /// The padding count from the last byte.
        padding: usize,
        /// Bytes after the header that padding could cover.
        available: usize,
    },
    /// A header extension element ran past the end of the extension block.
    #[error("header extension element with id {id} needs {needed} bytes, {got} left")]
    ExtensionTruncated {
        /// The element id.
        id: u8,
        /// Bytes the element declares.
        needed: usize,
        /// Bytes left in the block.
        got: usize,
    },
    /// An extension id is outside the range of the chosen form (1-14 one-byte, 1-255 two-byte).
    #[error("header extension id {id} is out of range 1..={max}")]
    ExtensionIdOutOfRange {
        /// The id given.
        id: u8,
        /// The largest id allowed.
        max: u8,
    },
    /// An extension element's data is longer (or shorter) than its form allows.
    #[error("header extension id {id}: {len} bytes does not fit (allowed {min}..={max})")]
    ExtensionLength {
        /// The element id.
        id: u8,
        /// The data length given.
        len: usize,
        /// The shortest length allowed.
        min: usize,
        /// The longest length allowed.
        max: usize,
    },
    /// A typed extension (transport-cc, abs-send-time, audio level) had the wrong size.
    #[error("{kind} extension has {len} bytes, expected {expected}")]
    ExtensionValueLength {
        /// The extension kind.
        kind: &'static str,
        /// The length found.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// A field value does not fit its wire representation.
    #[error("{field} = {value} is out of range (max {max})")]
    ValueOutOfRange {
        /// The field name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The caller's buffer is too small for the packet being written.
    #[error("buffer too small: need {needed} bytes, have {got}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// An RTCP length field points past the end of the compound packet.
    #[error("RTCP packet at offset {offset} declares {declared} bytes, {got} left")]
    RtcpLength {
        /// Offset of the packet inside the compound packet.
        offset: usize,
        /// Length the header declares, in bytes.
        declared: usize,
        /// Bytes left from the offset.
        got: usize,
    },
    /// An RTCP packet that is not the last one in a compound packet has the padding bit set.
    #[error("RTCP packet at offset {offset} is padded but is not the last one")]
    RtcpPaddingNotLast {
        /// Offset of the padded packet.
        offset: usize,
    },
    /// An RTCP packet's body does not match what its count field announces.
    #[error("RTCP packet type {packet_type}: body of {len} bytes does not hold {count} items")]
    RtcpCount {
        /// The packet type.
        packet_type: u8,
        /// The count field.
        count: u8,
        /// Body length in bytes.
        len: usize,
    },
    /// An SDES chunk is malformed (an item runs past the chunk or no END item).
    #[error("malformed SDES chunk at byte {offset}")]
    SdesMalformed {
        /// Offset inside the SDES body where parsing failed.
        offset: usize,
    },
    /// A transport-cc feedback used the reserved packet status 3.
    #[error("transport-cc feedback uses reserved status symbol at sequence number {seq}")]
    TwccReservedStatus {
        /// Sequence number of the packet with the reserved status.
        seq: u16,
    },
    /// Transport-cc builder input was not strictly increasing in sequence number order.
    #[error("transport-cc sequence number {seq} does not follow {previous}")]
    TwccOutOfOrder {
        /// The previous sequence number.
        previous: u16,
        /// The offending sequence number.
        seq: u16,
    },
    /// A receive delta does not fit the 16-bit signed 250 µs field.
    #[error("transport-cc receive delta of {delta_us} µs does not fit in 16 bits of 250 µs")]
    TwccDeltaOutOfRange {
        /// The delta in microseconds.
        delta_us: i64,
    },
}

/// Shorthand for results whose error is [`RtpError`].
pub type Result<T> = std::result::Result<T, RtpError>;

/// `Ok` when `data` has at least `needed` bytes.
pub(crate) fn need(data: &[u8], needed: usize) -> Result<()> {
    if data.len() < needed {
        Err(RtpError::TooShort {
            needed,
            got: data.len(),
        })
    } else {
        Ok(())
    }
}
