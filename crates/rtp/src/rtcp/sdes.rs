//! Source descriptions (SDES, RFC 3550 §6.5) and BYE (§6.6).

use super::report::be32;
use crate::error::{Result, RtpError};

/// One SDES item: its type and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// The item type ([`SdesItem::CNAME`], ...). 0 (END) never appears here.
    pub kind: u8,
    /// The value (UTF-8 text by the RFC, but not checked).
    pub value: &'a [u8],
}

impl<'a> SdesItem<'a> {
    /// Canonical end-point identifier.
    pub const CNAME: u8 = 1;
    /// User name.
    pub const NAME: u8 = 2;
    /// Electronic mail address.
    pub const EMAIL: u8 = 3;
    /// Phone number.
    pub const PHONE: u8 = 4;
    /// Geographic location.
    pub const LOC: u8 = 5;
    /// Application or tool name.
    pub const TOOL: u8 = 6;
    /// Notice or status.
    pub const NOTE: u8 = 7;
    /// Private extension.
    pub const PRIV: u8 = 8;

    /// An item of `kind` with `value`.
    pub fn new(kind: u8, value: &'a [u8]) -> Self {
        Self { kind, value }
    }
}

/// Walks one chunk's items from `at`; returns the offset after the chunk (END and its
/// padding to a 32-bit boundary), or `None` if malformed.
fn chunk_end(body: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let kind = *body.get(at)?;
        if kind == 0 {
            return Some((at + 1).next_multiple_of(4).min(body.len()));
        }
        let len = usize::from(*body.get(at + 1)?);
        body.get(at + 2..at + 2 + len)?;
        at += 2 + len;
    }
}

/// A source description packet (packet type 202); validated when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// RTCP packet type of SDES.
    pub const PACKET_TYPE: u8 = 202;

    pub(crate) fn parse(count: u8, body: &'a [u8]) -> Result<Self> {
        let mut at = 0;
        for _ in 0..count {
            if body.len() < at + 4 {
                return Err(RtpError::SdesMalformed { offset: at });
            }
            at = chunk_end(body, at + 4).ok_or(RtpError::SdesMalformed { offset: at })?;
        }
        Ok(Self { count, body })
    }

    /// The chunks: one per source.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            at: 0,
            left: self.count,
        }
    }
}

/// Iterator over SDES chunks.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    at: usize,
    left: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        self.left = self.left.checked_sub(1)?;
        let ssrc = be32(self.body.get(self.at..self.at + 4)?, 0);
        let start = self.at + 4;
        let end = chunk_end(self.body, start)?;
        self.at = end;
        Some(SdesChunk {
            ssrc,
            items: self.body.get(start..end)?,
        })
    }
}

/// The items describing one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items, in order.
    pub fn items(&self) -> impl Iterator<Item = SdesItem<'a>> + 'a {
        let items = self.items;
        let mut at = 0;
        std::iter::from_fn(move || {
            let kind = *items.get(at)?;
            if kind == 0 {
                return None;
            }
            let len = usize::from(*items.get(at + 1)?);
            let value = items.get(at + 2..at + 2 + len)?;
            at += 2 + len;
            Some(SdesItem { kind, value })
        })
    }

    /// The CNAME item's value, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .find(|i| i.kind == SdesItem::CNAME)
            .map(|i| i.value)
    }
}

/// A goodbye packet (packet type 203).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    /// RTCP packet type of BYE.
    pub const PACKET_TYPE: u8 = 203;

    pub(crate) fn parse(count: u8, body: &'a [u8]) -> Result<Self> {
        let end = 4 * usize::from(count);
        let Some(ssrcs) = body.get(..end) else {
            return Err(RtpError::RtcpCount {
                packet_type: Self::PACKET_TYPE,
                count,
                len: body.len(),
            });
        };
        let reason = match body.get(end) {
            None => None,
            Some(&len) => match body.get(end + 1..end + 1 + usize::from(len)) {
                Some(reason) => Some(reason),
                None => {
                    return Err(RtpError::TooShort {
                        needed: end + 1 + usize::from(len),
                        got: body.len(),
                    });
                }
            },
        };
        Ok(Self { ssrcs, reason })
    }

    /// The sources leaving.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }

    /// The reason for leaving, if given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdes_chunks_and_items() {
        let body = [
            0, 0, 0, 1, 1, 3, b'a', b'b', b'c', 0, 0, 0, // chunk 1: CNAME "abc"
            0, 0, 0, 2, 2, 1, b'x', 1, 0, 0, 0, 0, // chunk 2: NAME "x", empty CNAME
        ];
        let sdes = Sdes::parse(2, &body).unwrap();
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].ssrc, 1);
        assert_eq!(chunks[0].cname(), Some(&b"abc"[..]));
        assert_eq!(chunks[1].items().count(), 2);
        assert_eq!(chunks[1].cname(), Some(&b""[..]));
        assert!(Sdes::parse(3, &body).is_err());
        assert!(Sdes::parse(1, &body[..6]).is_err());
    }

    #[test]
    fn bye_with_and_without_reason() {
        let bye = Bye::parse(1, &[0, 0, 0, 7, 2, b'o', b'k', 0]).unwrap();
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [7]);
        assert_eq!(bye.reason(), Some(&b"ok"[..]));
        assert!(Bye::parse(2, &[0, 0, 0, 7]).is_err());
        assert!(Bye::parse(1, &[0, 0, 0, 7, 9, 1, 2, 3]).is_err());
    }
}
