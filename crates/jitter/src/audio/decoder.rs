//! What the audio buffer needs from a decoder, and the Opus implementation.
//!
//! The buffer owns its decoder (as NetEq does) because concealment, recovery from
//! redundancy and time stretching all work on decoded audio in playout order. Loss
//! recovery plugs in here: [`AudioPacketDecoder::recover`] is asked first for every
//! missing frame that a buffered later packet might carry (in-band FEC, DRED, or whatever
//! a later implementation adds); only when it declines does the buffer conceal.

use tincan_codec::opus::{DredDecoder, OpusDecoder};
use tincan_codec::{AudioDecoder, CodecError};

/// Where recovered audio came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverySource {
    /// The later packet's in-band FEC (Opus LBRR).
    InbandFec,
    /// The later packet's deep redundancy (Opus DRED).
    Dred,
    /// Another source a decoder implementation provides (RED, RTX, ...).
    Other,
}

/// The decoder side of an audio jitter buffer: decoding, concealment and recovery of lost
/// frames from redundancy carried by later packets.
///
/// Sample counts are per channel; buffers are interleaved. Implementations must not
/// allocate per call after construction.
pub trait AudioPacketDecoder: Send {
    /// Output sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// Output channels (1 or 2).
    fn channels(&self) -> usize;
    /// How many samples per channel `payload` decodes to, or `None` when it cannot be
    /// parsed (the buffer then assumes the nominal frame length and lets `decode` fail).
    fn packet_samples(&self, payload: &[u8]) -> Option<usize>;
    /// Decodes `payload` into `out`, returning samples per channel written.
    ///
    /// # Errors
    ///
    /// A corrupt payload or an output too small.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
    /// Conceals `samples` lost samples per channel into `out` (decoder PLC, or comfort
    /// noise after a DTX frame).
    ///
    /// # Errors
    ///
    /// Only for bad arguments.
    fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError>;
    /// Rebuilds `samples` lost samples per channel that start `offset` samples before the
    /// first sample of `next_payload`, from redundancy that packet carries. `next_id` is
    /// the packet's extended sequence number, so an implementation may cache per-packet
    /// parsing across the frames of one gap. Frames of a gap are requested oldest first.
    ///
    /// Returns `Ok(None)` when the packet carries nothing for that span; the buffer then
    /// conceals it.
    ///
    /// # Errors
    ///
    /// Only for bad arguments; a packet that cannot be parsed is `Ok(None)`.
    fn recover(
        &mut self,
        next_payload: &[u8],
        next_id: u64,
        offset: usize,
        samples: usize,
        out: &mut [i16],
    ) -> Result<Option<RecoverySource>, CodecError>;
    /// Whether `payload` is a discontinuous-transmission frame: the sender is in silence
    /// and may send nothing for a while, so what follows a missing packet is comfort
    /// noise, not a loss.
    fn is_dtx(&self, payload: &[u8]) -> bool;
    /// Forgets all state (a new stream).
    fn reset(&mut self);
}

/// An Opus decoder with in-band FEC, and DRED when a [`DredDecoder`] is attached.
#[derive(Debug)]
pub struct OpusPacketDecoder {
    decoder: OpusDecoder,
    dred: Option<DredDecoder>,
    /// The packet the DRED decoder last parsed, and how far back it was asked to look.
    dred_parsed: Option<(u64, usize)>,
}

impl OpusPacketDecoder {
    /// Wraps `decoder`; FEC is used when packets carry it.
    pub fn new(decoder: OpusDecoder) -> Self {
        Self {
            decoder,
            dred: None,
            dred_parsed: None,
        }
    }

    /// Also rebuilds losses from DRED. `dred` must run at the decoder's rate.
    ///
    /// # Errors
    ///
    /// [`CodecError::Unsupported`] when the rates differ.
    pub fn with_dred(mut self, dred: DredDecoder) -> Result<Self, CodecError> {
        if dred.sample_rate() != self.decoder.sample_rate() {
            return Err(CodecError::Unsupported {
                parameter: "DRED sample rate",
                value: format!(
                    "{} Hz for a {} Hz decoder",
                    dred.sample_rate(),
                    self.decoder.sample_rate()
                ),
            });
        }
        self.dred = Some(dred);
        Ok(self)
    }

    /// The wrapped decoder.
    pub fn decoder(&self) -> &OpusDecoder {
        &self.decoder
    }

    /// The wrapped decoder, mutably (to change its complexity, say).
    pub fn decoder_mut(&mut self) -> &mut OpusDecoder {
        &mut self.decoder
    }
}

impl AudioPacketDecoder for OpusPacketDecoder {
    fn sample_rate(&self) -> u32 {
        self.decoder.sample_rate()
    }

    fn channels(&self) -> usize {
        self.decoder.channels()
    }

    fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        self.decoder.packet_samples(payload).ok()
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        self.decoder.decode(payload, out)
    }

    fn conceal(&mut self, samples: usize, out: &mut [i16]) -> Result<usize, CodecError> {
        self.decoder.conceal(samples, out)
    }

    fn recover(
        &mut self,
        next_payload: &[u8],
        next_id: u64,
        offset: usize,
        samples: usize,
        out: &mut [i16],
    ) -> Result<Option<RecoverySource>, CodecError> {
        // In-band FEC carries exactly the frame before the packet.
        if offset == samples && self.decoder.fec_usable(next_payload, samples) {
            // `fec_usable` mirrors libopus's own checks, so this really decodes FEC data.
            self.decoder.decode_fec(next_payload, samples, out)?;
            return Ok(Some(RecoverySource::InbandFec));
        }
        let Some(dred) = self.dred.as_mut() else {
            return Ok(None);
        };
        // Parse once per packet for the deepest offset of the gap (the first request).
        if self
            .dred_parsed
            .is_none_or(|(id, depth)| id != next_id || depth < offset)
        {
            self.dred_parsed = Some((next_id, offset));
            if dred.parse(next_payload, offset).is_err() {
                dred.clear();
            }
        }
        let covered = dred
            .last_parse()
            .is_some_and(|p| p.available_samples > 0 && p.overlaps(offset, samples));
        if !covered {
            return Ok(None);
        }
        self.decoder.decode_dred(dred, offset, samples, out)?;
        Ok(Some(RecoverySource::Dred))
    }

    fn is_dtx(&self, payload: &[u8]) -> bool {
        // An Opus DTX frame is the TOC byte alone (or with a code-1/2 length byte of 0).
        payload.len() <= 2
    }

    fn reset(&mut self) {
        // Resetting cannot fail on a live decoder; an error would leave it as it was.
        let _ = AudioDecoder::reset(&mut self.decoder);
        self.dred_parsed = None;
        if let Some(dred) = self.dred.as_mut() {
            dred.clear();
        }
    }
}
