//! The simulator's relay: an SFU-like forwarder between the participants of a call.
//!
//! Every datagram a participant sends reaches the relay first; the relay decides who gets
//! it, and the simulator carries each copy over the netsim link of that ordered pair
//! (sender → receiver), so each direction has its own network. The rules:
//!
//! - **RTP** goes unchanged to every other participant in the call. The SSRC it carries is
//!   learned as the sender's (or must already be the sender's: a datagram with another
//!   participant's SSRC is dropped and counted).
//! - **RTCP** is split into its packets and each goes only to the participant that owns
//!   the media SSRC it is about: report blocks (an SR or RR is rewritten per receiver with
//!   that receiver's blocks only; an SR also goes, without blocks, to every other
//!   participant, since its sender information is about the sender's own stream, which
//!   they all receive), NACK and PLI by their media SSRC, FIR by its entries' SSRCs, REMB by
//!   the SSRCs it lists, transport-cc by its media SSRC. SDES and BYE describe the sender's
//!   own streams and go to every other participant. What is about nobody's SSRC (or the
//!   sender's own), APP, XR and unknown feedback is dropped and counted.
//! - Transport-cc feedback whose media SSRC is 0 (the draft calls the field unused, and a
//!   sender may leave it 0) is given to the only other participant when there is exactly
//!   one (a 1:1 call, where it is unambiguous), and counted as such; otherwise it is
//!   dropped and counted, as is feedback about any SSRC nobody owns.
//!
//! Each receiver's RTCP packets are put back together as one compound per datagram, in the
//! order they came. Memory is bounded: at most [`MAX_PARTICIPANTS`] participants and
//! [`MAX_SSRCS`] SSRCs; the per-receiver buffers are reused.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tincan_rtp::rtcp::{
    ReceiverReport, ReportBlock, RtcpCompound, RtcpPacket, RtcpWriter, SenderReport,
};

/// Most participants a relay serves (the largest call).
pub const MAX_PARTICIPANTS: usize = 16;
/// Most SSRCs the relay remembers (16 per participant: audio, video, RTX, FEC and spares).
pub const MAX_SSRCS: usize = 16 * MAX_PARTICIPANTS;

/// What the relay has done, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayCounters {
    /// RTP datagrams received from participants.
    pub rtp_in: u64,
    /// RTP copies forwarded (one per receiver).
    pub rtp_out: u64,
    /// RTCP datagrams (compounds) received.
    pub rtcp_in: u64,
    /// RTCP compounds forwarded (one per receiver that got anything).
    pub rtcp_out: u64,
    /// RTCP packets (or report blocks) about nobody's SSRC, or the sender's own, dropped.
    pub rtcp_unaddressed: u64,
    /// Transport-cc feedback with media SSRC 0 given to the only other participant.
    pub rtcp_sole_peer: u64,
    /// RTCP packets of a kind the relay does not forward (APP, XR, other feedback), dropped.
    pub rtcp_unforwarded_kind: u64,
    /// Datagrams or RTCP packets that could not be parsed, dropped.
    pub malformed: u64,
    /// RTP datagrams carrying another participant's SSRC, dropped.
    pub ssrc_conflicts: u64,
    /// RTP datagrams whose SSRC could not be learned because the table was full, dropped.
    pub ssrc_table_full: u64,
    /// Datagrams from a participant not in the call (left, or out of range), dropped.
    pub from_absent: u64,
}

/// Why the relay refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// The participant count is outside 2..=[`MAX_PARTICIPANTS`].
    #[error("a relay serves 2 to {MAX_PARTICIPANTS} participants, not {participants}")]
    Participants {
        /// The count asked for.
        participants: usize,
    },
    /// The participant index is not below the call's participant count.
    #[error("participant {participant} is not in a call of {participants}")]
    UnknownParticipant {
        /// The index given.
        participant: usize,
        /// The call's participant count.
        participants: usize,
    },
    /// The SSRC already belongs to another participant.
    #[error("SSRC {ssrc:#010x} already belongs to participant {owner}")]
    SsrcTaken {
        /// The SSRC.
        ssrc: u32,
        /// Its owner.
        owner: usize,
    },
    /// The SSRC table is full.
    #[error("the relay already knows {MAX_SSRCS} SSRCs")]
    SsrcTableFull,
}

/// The forwarder. Participants are numbered `0..participants`.
#[derive(Debug)]
pub struct Relay {
    present: Vec<bool>,
    owners: HashMap<u32, usize>,
    counters: RelayCounters,
    /// Per receiver, the compound being assembled.
    compounds: Vec<Vec<u8>>,
    /// Per receiver, report blocks of the SR or RR being split.
    blocks: Vec<Vec<ReportBlock>>,
    /// One rewritten packet.
    packet: Vec<u8>,
}

impl Relay {
    /// A relay for `participants`, all of them in the call.
    ///
    /// # Errors
    ///
    /// [`RelayError::Participants`] outside 2..=[`MAX_PARTICIPANTS`].
    pub fn new(participants: usize) -> Result<Self, RelayError> {
        if !(2..=MAX_PARTICIPANTS).contains(&participants) {
            return Err(RelayError::Participants { participants });
        }
        Ok(Self {
            present: vec![true; participants],
            owners: HashMap::with_capacity(MAX_SSRCS),
            counters: RelayCounters::default(),
            compounds: vec![Vec::new(); participants],
            blocks: vec![Vec::new(); participants],
            packet: Vec::new(),
        })
    }

    /// What the relay has done so far.
    pub fn counters(&self) -> &RelayCounters {
        &self.counters
    }

    /// The participant that owns `ssrc`, if known.
    #[cfg(test)]
    pub fn owner(&self, ssrc: u32) -> Option<usize> {
        self.owners.get(&ssrc).copied()
    }

    fn check(&self, participant: usize) -> Result<(), RelayError> {
        if participant < self.present.len() {
            Ok(())
        } else {
            Err(RelayError::UnknownParticipant {
                participant,
                participants: self.present.len(),
            })
        }
    }

    /// Records `ssrc` as `participant`'s (signalling tells an SFU this; RTP teaches it too).
    ///
    /// # Errors
    ///
    /// [`RelayError::SsrcTaken`], [`RelayError::SsrcTableFull`],
    /// [`RelayError::UnknownParticipant`].
    pub fn claim_ssrc(&mut self, participant: usize, ssrc: u32) -> Result<(), RelayError> {
        self.check(participant)?;
        match self.owners.get(&ssrc) {
            Some(&owner) if owner == participant => Ok(()),
            Some(&owner) => Err(RelayError::SsrcTaken { ssrc, owner }),
            None if self.owners.len() >= MAX_SSRCS => Err(RelayError::SsrcTableFull),
            None => {
                self.owners.insert(ssrc, participant);
                Ok(())
            }
        }
    }

    /// Takes `participant` out of the call: nothing is forwarded from or to it, and its
    /// SSRCs are forgotten.
    ///
    /// # Errors
    ///
    /// [`RelayError::UnknownParticipant`].
    pub fn leave(&mut self, participant: usize) -> Result<(), RelayError> {
        self.check(participant)?;
        self.present[participant] = false;
        self.owners.retain(|_, owner| *owner != participant);
        Ok(())
    }

    /// Puts `participant` back in the call.
    ///
    /// # Errors
    ///
    /// [`RelayError::UnknownParticipant`].
    pub fn join(&mut self, participant: usize) -> Result<(), RelayError> {
        self.check(participant)?;
        self.present[participant] = true;
        Ok(())
    }

    /// Routes one datagram sent by `from`: appends to `out` a (receiver, datagram) pair for
    /// every copy to forward (RTP copies share one buffer). Nothing is ever an error: what
    /// cannot be forwarded is counted.
    pub fn route(&mut self, from: usize, datagram: &[u8], out: &mut Vec<(usize, Arc<[u8]>)>) {
        if !self.present.get(from).copied().unwrap_or(false) {
            self.counters.from_absent += 1;
            return;
        }
        // RFC 5761 §4: payload types 64-95 (marker bit masked) are RTCP's 192-223.
        match datagram.get(1) {
            Some(byte) if (64..96).contains(&(byte & 0x7F)) => self.route_rtcp(from, datagram, out),
            Some(_) => self.route_rtp(from, datagram, out),
            None => self.counters.malformed += 1,
        }
    }

    fn route_rtp(&mut self, from: usize, datagram: &[u8], out: &mut Vec<(usize, Arc<[u8]>)>) {
        self.counters.rtp_in += 1;
        let ssrc = match datagram.get(8..12) {
            Some(b) if datagram[0] >> 6 == 2 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            _ => {
                self.counters.malformed += 1;
                return;
            }
        };
        match self.claim_ssrc(from, ssrc) {
            Ok(()) => {}
            Err(RelayError::SsrcTableFull) => {
                self.counters.ssrc_table_full += 1;
                return;
            }
            Err(_) => {
                self.counters.ssrc_conflicts += 1;
                return;
            }
        }
        let shared: Arc<[u8]> = Arc::from(datagram);
        for (to, present) in self.present.iter().enumerate() {
            if *present && to != from {
                out.push((to, Arc::clone(&shared)));
                self.counters.rtp_out += 1;
            }
        }
    }

    /// The receiver of feedback about `ssrc` sent by `from`: its owner if that is another
    /// participant in the call.
    fn addressee(&self, from: usize, ssrc: u32) -> Option<usize> {
        self.owners
            .get(&ssrc)
            .copied()
            .filter(|&owner| owner != from && self.present[owner])
    }

    /// The only other participant in the call, if there is exactly one.
    fn sole_peer(&self, from: usize) -> Option<usize> {
        let mut others = (0..self.present.len()).filter(|&p| p != from && self.present[p]);
        match (others.next(), others.next()) {
            (Some(peer), None) => Some(peer),
            _ => None,
        }
    }

    fn route_rtcp(&mut self, from: usize, datagram: &[u8], out: &mut Vec<(usize, Arc<[u8]>)>) {
        self.counters.rtcp_in += 1;
        let Ok(compound) = RtcpCompound::parse(datagram) else {
            self.counters.malformed += 1;
            return;
        };
        for buffer in &mut self.compounds {
            buffer.clear();
        }
        // The framing is sound (checked by the parse): walk the packets with their bytes.
        let mut offset = 0;
        for raw in compound.raw() {
            let len = datagram.get(offset + 2..offset + 4).map_or(0, |b| {
                4 * (usize::from(u16::from_be_bytes([b[0], b[1]])) + 1)
            });
            let bytes = datagram.get(offset..offset + len).unwrap_or(&[]);
            offset += len;
            match RtcpPacket::parse(raw) {
                Ok(packet) => self.route_packet(from, packet, bytes),
                Err(_) => self.counters.malformed += 1,
            }
        }
        for (to, buffer) in self.compounds.iter().enumerate() {
            if !buffer.is_empty() {
                out.push((to, Arc::from(buffer.as_slice())));
                self.counters.rtcp_out += 1;
            }
        }
    }

    fn send_to_all_others(&mut self, from: usize, bytes: &[u8]) {
        for (to, buffer) in self.compounds.iter_mut().enumerate() {
            if to != from && self.present[to] {
                buffer.extend_from_slice(bytes);
            }
        }
    }

    fn send_to_one(&mut self, to: Option<usize>, bytes: &[u8]) {
        match to {
            Some(to) => self.compounds[to].extend_from_slice(bytes),
            None => self.counters.rtcp_unaddressed += 1,
        }
    }

    fn route_packet(&mut self, from: usize, packet: RtcpPacket<'_>, bytes: &[u8]) {
        match packet {
            RtcpPacket::SenderReport(sr) => self.split_report(from, Some(sr), None),
            RtcpPacket::ReceiverReport(rr) => self.split_report(from, None, Some(rr)),
            RtcpPacket::Sdes(_) | RtcpPacket::Bye(_) => self.send_to_all_others(from, bytes),
            RtcpPacket::Nack(nack) => {
                self.send_to_one(self.addressee(from, nack.media_ssrc), bytes)
            }
            RtcpPacket::Pli(pli) => self.send_to_one(self.addressee(from, pli.media_ssrc), bytes),
            RtcpPacket::TransportCc(feedback) => {
                let to = match feedback.media_ssrc {
                    ssrc if ssrc != 0 || self.owners.contains_key(&0) => self.addressee(from, ssrc),
                    _ => {
                        let peer = self.sole_peer(from);
                        if peer.is_some() {
                            self.counters.rtcp_sole_peer += 1;
                        }
                        peer
                    }
                };
                self.send_to_one(to, bytes);
            }
            RtcpPacket::Fir(fir) => {
                let owners = self.owner_mask(from, fir.entries().map(|e| e.ssrc));
                self.send_to_owners(owners, bytes);
            }
            RtcpPacket::Remb(remb) => {
                let owners = self.owner_mask(from, remb.ssrcs());
                self.send_to_owners(owners, bytes);
            }
            _ => {
                // APP, XR, other feedback formats: no addressee the relay can tell.
                self.counters.rtcp_unforwarded_kind += 1;
            }
        }
    }

    /// Which participants (other than `from`) own any of `ssrcs`.
    fn owner_mask(
        &self,
        from: usize,
        ssrcs: impl Iterator<Item = u32>,
    ) -> [bool; MAX_PARTICIPANTS] {
        let mut mask = [false; MAX_PARTICIPANTS];
        for owner in ssrcs.filter_map(|ssrc| self.addressee(from, ssrc)) {
            mask[owner] = true;
        }
        mask
    }

    /// Sends a packet once to each participant in `owners`; counts it unaddressed when
    /// there is none.
    fn send_to_owners(&mut self, owners: [bool; MAX_PARTICIPANTS], bytes: &[u8]) {
        if !owners.iter().any(|o| *o) {
            self.counters.rtcp_unaddressed += 1;
            return;
        }
        for (to, buffer) in self.compounds.iter_mut().enumerate() {
            if owners[to] {
                buffer.extend_from_slice(bytes);
            }
        }
    }

    /// Rewrites an SR or RR per receiver with that receiver's report blocks only. An SR goes
    /// to every other participant (its sender information is about the sender's stream);
    /// an RR only to the owners of its blocks.
    fn split_report(
        &mut self,
        from: usize,
        sr: Option<SenderReport<'_>>,
        rr: Option<ReceiverReport<'_>>,
    ) {
        for blocks in &mut self.blocks {
            blocks.clear();
        }
        let (reporter, blocks) = match (&sr, &rr) {
            (Some(sr), _) => (sr.ssrc, sr.report_blocks()),
            (None, Some(rr)) => (rr.ssrc, rr.report_blocks()),
            (None, None) => return,
        };
        let mut any = false;
        for block in blocks {
            match self.addressee(from, block.ssrc) {
                Some(owner) => {
                    self.blocks[owner].push(block);
                    any = true;
                }
                None => self.counters.rtcp_unaddressed += 1,
            }
        }
        if sr.is_none() && !any {
            // An RR about nobody has no receiver (blocks about unknown SSRCs were counted
            // one by one above; an RR without blocks counts once).
            if rr.is_some_and(|r| r.report_blocks().len() == 0) {
                self.counters.rtcp_unaddressed += 1;
            }
            return;
        }
        for to in 0..self.present.len() {
            let wanted = match &sr {
                Some(_) => to != from && self.present[to],
                None => !self.blocks[to].is_empty(),
            };
            if !wanted {
                continue;
            }
            let mut writer = RtcpWriter::new(&mut self.packet);
            // At most 31 blocks came in, so at most 31 go out: the writes cannot fail.
            let written = match &sr {
                Some(sr) => writer.sender_report(reporter, &sr.info, &self.blocks[to]),
                None => writer.receiver_report(reporter, &self.blocks[to]),
            };
            if written.is_ok() {
                self.compounds[to].extend_from_slice(&self.packet);
            } else {
                self.counters.malformed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_rtp::RtpPacketBuilder;
    use tincan_rtp::rtcp::{FirEntry, Ntp64, PSFB, RTPFB, SenderInfo, TwccBuilder};

    const A: u32 = 0xA;
    const B: u32 = 0xB;
    const C: u32 = 0xC;

    fn relay3() -> Relay {
        let mut relay = Relay::new(3).unwrap();
        for (p, ssrc) in [A, B, C].into_iter().enumerate() {
            relay.claim_ssrc(p, ssrc).unwrap();
        }
        relay
    }

    fn rtp(ssrc: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RtpPacketBuilder::new(111, 1, 960, ssrc)
            .payload(&[1, 2, 3])
            .write_vec(&mut out)
            .unwrap();
        out
    }

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 3,
            ..ReportBlock::default()
        }
    }

    fn route(relay: &mut Relay, from: usize, datagram: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        relay.route(from, datagram, &mut out);
        out.into_iter().map(|(to, d)| (to, d.to_vec())).collect()
    }

    /// The report blocks' SSRCs of every SR/RR in `datagram`, and the packet types.
    fn contents(datagram: &[u8]) -> (Vec<u8>, Vec<u32>) {
        let compound = RtcpCompound::parse(datagram).unwrap();
        let mut types = Vec::new();
        let mut ssrcs = Vec::new();
        for raw in compound.raw() {
            types.push(raw.packet_type);
            match RtcpPacket::parse(raw).unwrap() {
                RtcpPacket::SenderReport(sr) => ssrcs.extend(sr.report_blocks().map(|b| b.ssrc)),
                RtcpPacket::ReceiverReport(rr) => {
                    ssrcs.extend(rr.report_blocks().map(|b| b.ssrc));
                }
                _ => {}
            }
        }
        (types, ssrcs)
    }

    #[test]
    fn rtp_goes_unchanged_to_every_other_participant() {
        let mut relay = relay3();
        let packet = rtp(B);
        let out = route(&mut relay, 1, &packet);
        assert_eq!(out, vec![(0, packet.clone()), (2, packet)]);
        assert_eq!(relay.counters().rtp_out, 2);
    }

    #[test]
    fn rtp_learns_new_ssrcs_and_refuses_another_participants() {
        let mut relay = relay3();
        assert_eq!(route(&mut relay, 0, &rtp(0x77)).len(), 2);
        assert_eq!(relay.owner(0x77), Some(0));
        assert!(route(&mut relay, 1, &rtp(A)).is_empty());
        assert_eq!(relay.counters().ssrc_conflicts, 1);
    }

    #[test]
    fn report_blocks_reach_only_their_owner() {
        let mut relay = relay3();
        let mut rr = Vec::new();
        RtcpWriter::new(&mut rr)
            .receiver_report(C, &[block(A), block(B), block(0xDEAD)])
            .unwrap();
        let out = route(&mut relay, 2, &rr);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 0);
        assert_eq!(contents(&out[0].1), (vec![201], vec![A]));
        assert_eq!(out[1].0, 1);
        assert_eq!(contents(&out[1].1), (vec![201], vec![B]));
        // The block about an unknown SSRC was dropped and counted.
        assert_eq!(relay.counters().rtcp_unaddressed, 1);
    }

    #[test]
    fn sender_reports_reach_everyone_with_their_own_blocks() {
        let mut relay = relay3();
        let info = SenderInfo {
            ntp: Ntp64(0x1234_5678_9ABC_DEF0),
            rtp_timestamp: 4,
            packet_count: 5,
            octet_count: 6,
        };
        let mut sr = Vec::new();
        let mut writer = RtcpWriter::new(&mut sr);
        writer.sender_report(A, &info, &[block(C)]).unwrap();
        writer.sdes(A, &[]).unwrap();
        let out = route(&mut relay, 0, &sr);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 1);
        assert_eq!(contents(&out[0].1), (vec![200, 202], vec![]));
        assert_eq!(contents(&out[1].1), (vec![200, 202], vec![C]));
        let compound = RtcpCompound::parse(&out[0].1).unwrap();
        let Some(Ok(RtcpPacket::SenderReport(copy))) = compound.packets().next() else {
            panic!("not an SR");
        };
        assert_eq!((copy.ssrc, copy.info), (A, info));
    }

    #[test]
    fn an_rr_about_nobody_is_dropped() {
        let mut relay = relay3();
        let mut rr = Vec::new();
        RtcpWriter::new(&mut rr).receiver_report(A, &[]).unwrap();
        assert!(route(&mut relay, 0, &rr).is_empty());
        assert_eq!(relay.counters().rtcp_unaddressed, 1);
    }

    #[test]
    fn feedback_goes_to_the_media_owner() {
        let mut relay = relay3();
        let mut fb = Vec::new();
        let mut writer = RtcpWriter::new(&mut fb);
        writer.nack(A, B, &[1, 2]).unwrap();
        writer.pli(A, C).unwrap();
        writer.remb(A, 300_000, &[B, C]).unwrap();
        writer
            .fir(
                A,
                &[FirEntry {
                    ssrc: C,
                    sequence_number: 1,
                }],
            )
            .unwrap();
        let out = route(&mut relay, 0, &fb);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 1);
        assert_eq!(contents(&out[0].1).0, vec![RTPFB, PSFB]); // NACK, REMB
        assert_eq!(out[1].0, 2);
        assert_eq!(contents(&out[1].1).0, vec![PSFB, PSFB, PSFB]); // PLI, REMB, FIR
    }

    #[test]
    fn feedback_about_the_sender_itself_or_nobody_is_dropped() {
        let mut relay = relay3();
        let mut fb = Vec::new();
        let mut writer = RtcpWriter::new(&mut fb);
        writer.pli(A, A).unwrap();
        writer.nack(A, 0xDEAD, &[1]).unwrap();
        assert!(route(&mut relay, 0, &fb).is_empty());
        assert_eq!(relay.counters().rtcp_unaddressed, 2);
    }

    fn twcc(media_ssrc: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RtcpWriter::new(&mut out)
            .transport_cc(
                &mut TwccBuilder::new(),
                A,
                media_ssrc,
                0,
                &[(0, Some(1_000)), (1, None)],
            )
            .unwrap();
        out
    }

    #[test]
    fn transport_cc_follows_its_media_ssrc_or_the_sole_peer() {
        let mut relay = relay3();
        let out = route(&mut relay, 0, &twcc(C));
        assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [2]);
        // Media SSRC 0 in a 3-party call: ambiguous, dropped.
        assert!(route(&mut relay, 0, &twcc(0)).is_empty());
        assert_eq!(relay.counters().rtcp_unaddressed, 1);
        // In a 1:1 call it can only be about the other participant.
        let mut pair = Relay::new(2).unwrap();
        let out = route(&mut pair, 1, &twcc(0));
        assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [0]);
        assert_eq!(pair.counters().rtcp_sole_peer, 1);
        // An SSRC nobody owns (a participant that left) is dropped even in a pair.
        assert!(route(&mut pair, 1, &twcc(0xDEAD)).is_empty());
        assert_eq!(pair.counters().rtcp_unaddressed, 1);
    }

    #[test]
    fn absent_participants_neither_send_nor_receive() {
        let mut relay = relay3();
        relay.leave(2).unwrap();
        assert_eq!(route(&mut relay, 0, &rtp(A)).len(), 1);
        assert!(route(&mut relay, 2, &rtp(C)).is_empty());
        assert_eq!(relay.counters().from_absent, 1);
        assert_eq!(relay.owner(C), None);
        relay.join(2).unwrap();
        assert_eq!(route(&mut relay, 2, &rtp(C)).len(), 2);
    }

    #[test]
    fn malformed_datagrams_are_counted_not_forwarded() {
        let mut relay = relay3();
        for datagram in [&[][..], &[0x80], &[0x80, 200, 0, 9, 1], &[0x80, 111, 0]] {
            assert!(route(&mut relay, 0, datagram).is_empty());
        }
        assert_eq!(relay.counters().malformed, 4);
    }

    #[test]
    fn sizes_outside_the_range_are_refused() {
        assert_eq!(
            Relay::new(1).unwrap_err(),
            RelayError::Participants { participants: 1 }
        );
        assert!(Relay::new(17).is_err());
        let mut relay = Relay::new(2).unwrap();
        assert!(relay.claim_ssrc(2, 1).is_err());
        relay.claim_ssrc(0, 1).unwrap();
        assert_eq!(
            relay.claim_ssrc(1, 1).unwrap_err(),
            RelayError::SsrcTaken { ssrc: 1, owner: 0 }
        );
    }

    proptest::proptest! {
        /// Whatever bytes come in, the relay neither panics nor forwards to the sender.
        #[test]
        fn any_bytes_route_without_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), from in 0usize..3) {
            let mut relay = relay3();
            let mut out = Vec::new();
            relay.route(from, &data, &mut out);
            proptest::prop_assert!(out.iter().all(|(to, _)| *to != from && *to < 3));
        }
    }
}
