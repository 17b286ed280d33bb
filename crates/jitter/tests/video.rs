//! The video frame buffer by situation: assembly under reordering, duplicates, loss with
//! and without retransmission, wrap-around, stream changes, floods, render timing, lip
//! sync, freezes, and an end-to-end H.264 call over the network emulator.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::{EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_jitter::video::{
    LipSync, LipSyncConfig, StreamObservation, VideoCodec, VideoInsertOutcome, VideoJitterBuffer,
    VideoJitterConfig, VideoOutput, VideoPacket,
};
use tincan_media::source::{TestPattern, read_frame_counter};
use tincan_media::{Resolution, VideoFrame};
use tincan_netsim::{Link, LinkConfig, Poll};
use tincan_rtp::payload::PayloadPackets;
use tincan_rtp::payload::av1::Av1Packetizer;
use tincan_rtp::payload::h264::H264Packetizer;
use tincan_rtp::rtcp::Ntp64;

/// Counts the allocations of the current thread, to show the hot path does not allocate.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// thread-local `Cell` that does not allocate.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(std::cell::Cell::get)
}

const SSRC: u32 = 0x5EED;
const FRAME_TICKS: u32 = 3000;
const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);

/// Deterministic xorshift for the tests' own randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A packet as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    sequence: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// An Annex B access unit with 4-byte start codes and no zero bytes in the NAL units,
/// so the depacketizer gives back exactly these bytes.
fn synthetic_au(keyframe: bool, size: usize, index: u32) -> Vec<u8> {
    let mut au = Vec::with_capacity(size + 32);
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9A]);
    }
    let seed = index.to_le_bytes();
    au.extend((0..size).map(|i| 1 + (seed[i % 4] as usize + i * 7) as u8 % 250));
    au
}

fn packetize(au: &[u8], sequence: &mut u16, timestamp: u32) -> Vec<Sent> {
    let mut packetizer = H264Packetizer::new(1200).expect("mtu");
    let mut out = PayloadPackets::new();
    packetizer
        .packetize(au, &mut out)
        .expect("valid access unit");
    out.iter()
        .map(|(payload, marker)| {
            let sent = Sent {
                sequence: *sequence,
                timestamp,
                marker,
                payload: payload.to_vec(),
            };
            *sequence = sequence.wrapping_add(1);
            sent
        })
        .collect()
}

/// A frame as handed out.
#[derive(Debug, Clone)]
struct Out {
    data: Vec<u8>,
    timestamp: u32,
    keyframe: bool,
    render_at: Instant,
    released_at: Instant,
    retransmitted: bool,
}

/// The receiver side: the buffer and everything it said.
struct Receiver {
    buffer: VideoJitterBuffer,
    frames: Vec<Out>,
    nacks: Vec<(Instant, Vec<u16>)>,
    keyframe_requests: Vec<Instant>,
    max_packets: usize,
    max_frames: usize,
    max_nack: usize,
}

impl Receiver {
    fn new(config: VideoJitterConfig) -> Self {
        Self {
            max_packets: config.max_packets,
            max_frames: config.max_frames,
            max_nack: config.max_nack_list,
            buffer: VideoJitterBuffer::new(config).expect("valid config"),
            frames: Vec::new(),
            nacks: Vec::new(),
            keyframe_requests: Vec::new(),
        }
    }

    fn insert(&mut self, packet: &Sent, now: Instant) -> VideoInsertOutcome {
        self.insert_ssrc(SSRC, packet, now)
    }

    fn insert_ssrc(&mut self, ssrc: u32, packet: &Sent, now: Instant) -> VideoInsertOutcome {
        let outcome = self
            .buffer
            .insert_packet(
                VideoPacket {
                    ssrc,
                    sequence: packet.sequence,
                    timestamp: packet.timestamp,
                    marker: packet.marker,
                    payload: &packet.payload,
                },
                now,
            )
            .expect("payload within bounds");
        self.check_bounds();
        outcome
    }

    fn check_bounds(&self) {
        let memory = self.buffer.memory();
        assert!(memory.packets <= self.max_packets, "{memory:?}");
        assert!(memory.frames <= self.max_frames, "{memory:?}");
        assert!(memory.nack_entries <= self.max_nack, "{memory:?}");
    }

    /// Polls at `now` until the buffer names a deadline; returns it.
    fn drain(&mut self, now: Instant) -> Option<Instant> {
        loop {
            match self.buffer.poll(now) {
                VideoOutput::Frame(frame) => self.frames.push(Out {
                    data: frame.data.to_vec(),
                    timestamp: frame.timestamp,
                    keyframe: frame.keyframe,
                    render_at: frame.render_at,
                    released_at: now,
                    retransmitted: frame.retransmitted,
                }),
                VideoOutput::Nack(list) => self.nacks.push((now, list.to_vec())),
                VideoOutput::KeyframeRequest => self.keyframe_requests.push(now),
                VideoOutput::Timeout(at) => {
                    assert!(at > now, "a deadline in the past would spin the caller");
                    self.check_bounds();
                    return Some(at);
                }
                VideoOutput::Idle => {
                    self.check_bounds();
                    return None;
                }
            }
        }
    }

    /// Runs the buffer's own deadlines from `now` up to `until`.
    fn run_until(&mut self, mut now: Instant, until: Instant) {
        while let Some(at) = self.drain(now) {
            if at > until {
                break;
            }
            now = at;
        }
        self.drain(until);
    }
}

/// Sends frames over a simulated path and plays the sender's part: retransmits what is
/// NACKed (after the RTT) when asked to, and encodes a keyframe after a request.
struct Session {
    receiver: Receiver,
    start: Instant,
    rtt: Duration,
    retransmit: bool,
    history: HashMap<u16, Sent>,
    /// Retransmissions on their way: when they reach the receiver.
    channel: BTreeMap<(Instant, u64), Sent>,
    channel_count: u64,
    keyframe_pending: bool,
    /// Access units sent, by frame index.
    sent: HashMap<u32, Vec<u8>>,
}

/// How a session's network treats a packet sent at an instant (a retransmission if
/// the flag is set): `None` loses it, else its one-way delay.
type PathFn<'a> = dyn FnMut(&Sent, bool, Instant) -> Option<Duration> + 'a;

impl Session {
    fn new(config: VideoJitterConfig, rtt: Duration, retransmit: bool) -> Self {
        let mut receiver = Receiver::new(config);
        receiver.buffer.handle_rtt(rtt);
        Self {
            receiver,
            start: Instant::now(),
            rtt,
            retransmit,
            history: HashMap::new(),
            channel: BTreeMap::new(),
            channel_count: 0,
            keyframe_pending: false,
            sent: HashMap::new(),
        }
    }

    fn send(&mut self, packet: Sent, at: Instant) {
        self.channel.insert((at, self.channel_count), packet);
        self.channel_count += 1;
    }

    /// Runs `frames` frames at 30 fps; `source(index, keyframe_requested)` gives each
    /// frame's access unit (empty: skipped), `path(packet, retransmission, sent_at)` its
    /// fate.
    fn run(
        &mut self,
        frames: u32,
        source: &mut dyn FnMut(u32, bool) -> Vec<u8>,
        path: &mut PathFn<'_>,
    ) {
        let mut sequence = 1000u16;
        let mut now = self.start;
        let end = self.start + FRAME_INTERVAL * frames + Duration::from_secs(2);
        let mut next_frame = 0u32;
        let mut nacks_seen = 0;
        let mut requests_seen = 0;
        loop {
            let send_at = self.start + FRAME_INTERVAL * next_frame;
            if next_frame < frames && send_at <= now {
                let keyframe = std::mem::take(&mut self.keyframe_pending);
                let au = source(next_frame, keyframe);
                let timestamp = next_frame.wrapping_mul(FRAME_TICKS).wrapping_add(7);
                if !au.is_empty() {
                    self.sent.insert(next_frame, au.clone());
                    for packet in packetize(&au, &mut sequence, timestamp) {
                        self.history.insert(packet.sequence, packet.clone());
                        if let Some(delay) = path(&packet, false, now) {
                            self.send(packet, now + delay);
                        }
                    }
                }
                next_frame += 1;
                continue;
            }
            while let Some(entry) = self.channel.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let packet = entry.remove();
                self.receiver.insert(&packet, now);
            }
            let deadline = self.receiver.drain(now);
            // The sender's answers.
            while nacks_seen < self.receiver.nacks.len() {
                let (at, list) = self.receiver.nacks[nacks_seen].clone();
                nacks_seen += 1;
                if !self.retransmit {
                    continue;
                }
                for sequence in list {
                    // Half the RTT for the NACK to reach the sender; the path brings the
                    // retransmission back.
                    let resent_at = at + self.rtt / 2;
                    if let Some(packet) = self.history.get(&sequence).cloned()
                        && let Some(delay) = path(&packet, true, resent_at)
                    {
                        self.send(packet, resent_at + delay);
                    }
                }
            }
            if requests_seen < self.receiver.keyframe_requests.len() {
                requests_seen = self.receiver.keyframe_requests.len();
                self.keyframe_pending = true;
            }
            let mut next = deadline;
            let mut consider = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
            if next_frame < frames {
                consider(self.start + FRAME_INTERVAL * next_frame);
            }
            if let Some((&(at, _), _)) = self.channel.first_key_value() {
                consider(at);
            }
            match next {
                Some(at) if at <= end => now = at.max(now),
                _ => break,
            }
        }
    }

    /// Frame indices handed out, from their timestamps.
    fn released_indices(&self) -> Vec<u32> {
        self.receiver
            .frames
            .iter()
            .map(|f| frame_index(f.timestamp))
            .collect()
    }

    /// Every frame handed out is byte for byte the access unit sent with its timestamp.
    fn assert_frames_intact(&self) {
        for frame in &self.receiver.frames {
            let index = frame_index(frame.timestamp);
            assert_eq!(Some(&frame.data), self.sent.get(&index), "frame {index}");
        }
    }
}

fn frame_index(timestamp: u32) -> u32 {
    timestamp.wrapping_sub(7) / FRAME_TICKS
}

fn synthetic_source(keyframe_every: u32) -> impl FnMut(u32, bool) -> Vec<u8> {
    move |index, requested| {
        let keyframe = requested || index % keyframe_every == 0;
        synthetic_au(keyframe, if keyframe { 6000 } else { 1500 }, index)
    }
}

fn fixed_delay(ms: u64) -> impl FnMut(&Sent, bool, Instant) -> Option<Duration> {
    move |_, _, _| Some(Duration::from_millis(ms))
}

#[test]
fn in_order_frames_come_out_whole_in_order_and_paced() {
    let mut session = Session::new(
        VideoJitterConfig::default(),
        Duration::from_millis(50),
        true,
    );
    session.run(30, &mut synthetic_source(1000), &mut fixed_delay(20));
    assert_eq!(session.released_indices(), (0..30).collect::<Vec<_>>());
    session.assert_frames_intact();
    let frames = &session.receiver.frames;
    assert!(frames[0].keyframe && frames[1..].iter().all(|f| !f.keyframe));
    assert!(frames.iter().all(|f| f.released_at <= f.render_at));
    // Render times follow the RTP timestamps: 33 ms apart once the delay has settled.
    for pair in frames[10..].windows(2) {
        let step = pair[1].render_at - pair[0].render_at;
        assert!(
            step > Duration::from_millis(30) && step < Duration::from_millis(37),
            "{step:?}"
        );
    }
    assert!(session.receiver.nacks.is_empty());
    assert!(session.receiver.keyframe_requests.is_empty());
    let stats = session.receiver.buffer.stats();
    assert_eq!(stats.frames_received, 30);
    assert_eq!(stats.frames_released, 30);
    assert_eq!(stats.keyframes_received, 1);
    assert_eq!(stats.frames_dropped, 0);
    assert_eq!(session.receiver.buffer.memory().packets, 0);
}

#[test]
fn inserting_and_polling_do_not_allocate_after_warm_up() {
    let start = Instant::now();
    let mut buffer = VideoJitterBuffer::new(VideoJitterConfig::default()).expect("config");
    let mut sequence = 0u16;
    // Keyframes every 100 frames, and one packet in 50 arriving one frame late (so NACK
    // and reordering paths run too).
    let packets: Vec<Vec<Sent>> = (0..100u32)
        .map(|index| {
            let keyframe = index == 0;
            packetize(&synthetic_au(keyframe, 8000, index), &mut sequence, 0)
        })
        .collect();
    // The packet held back: its sequence number, timestamp and place in `packets`.
    let mut held_back: Option<(u16, u32, usize, usize)> = None;
    let mut next_sequence = 0u16;
    let mut run = |frames: std::ops::Range<u32>, buffer: &mut VideoJitterBuffer| {
        let mut released = 0;
        for index in frames {
            let now = start + FRAME_INTERVAL * index;
            let template = &packets[(index % 100) as usize];
            let timestamp = index.wrapping_mul(FRAME_TICKS);
            let late = held_back.take();
            for (i, packet) in template.iter().enumerate() {
                let sequence = next_sequence;
                next_sequence = next_sequence.wrapping_add(1);
                if index % 50 == 7 && i == 1 {
                    held_back = Some((sequence, timestamp, (index % 100) as usize, i));
                    continue;
                }
                let packet = VideoPacket {
                    ssrc: SSRC,
                    sequence,
                    timestamp,
                    marker: packet.marker,
                    payload: &packet.payload,
                };
                buffer.insert_packet(packet, now).expect("fits");
            }
            if let Some((sequence, timestamp, frame, i)) = late {
                let packet = &packets[frame][i];
                let late = VideoPacket {
                    ssrc: SSRC,
                    sequence,
                    timestamp,
                    marker: packet.marker,
                    payload: &packet.payload,
                };
                buffer.insert_packet(late, now).expect("fits");
            }
            while let VideoOutput::Frame(_) | VideoOutput::Nack(_) | VideoOutput::KeyframeRequest =
                buffer.poll(now)
            {
                released += 1;
            }
        }
        released
    };
    // Every slot's payload buffer has grown to a full packet after 2048 packets.
    assert!(run(0..400, &mut buffer) > 300);
    let before = allocations();
    assert!(run(400..700, &mut buffer) >= 290);
    assert_eq!(allocations() - before, 0);
    assert_eq!(buffer.stats().frames_dropped, 0);
}

#[test]
fn reordered_packets_assemble_the_same_frames_and_a_reorder_wait_avoids_nacks() {
    let config = VideoJitterConfig {
        nack_delay: Duration::from_millis(30),
        ..VideoJitterConfig::default()
    };
    let mut session = Session::new(config, Duration::from_millis(50), true);
    let mut rng = Rng(7);
    // Up to 20 ms of extra delay per packet: packets overtake each other within and
    // across frames.
    let mut path = |_: &Sent, _, _| Some(Duration::from_millis(20 + rng.next() % 20));
    session.run(60, &mut synthetic_source(1000), &mut path);
    assert_eq!(session.released_indices(), (0..60).collect::<Vec<_>>());
    session.assert_frames_intact();
    assert!(
        session.receiver.nacks.is_empty(),
        "{:?}",
        session.receiver.nacks
    );
    assert_eq!(session.receiver.buffer.stats().frames_dropped, 0);
}

#[test]
fn duplicates_are_counted_and_change_nothing() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 0;
    let mut count = 0;
    for index in 0..10u32 {
        let at = start + FRAME_INTERVAL * index;
        let au = synthetic_au(index == 0, 3000, index);
        for packet in packetize(&au, &mut sequence, index * FRAME_TICKS) {
            assert_ne!(receiver.insert(&packet, at), VideoInsertOutcome::Duplicate);
            assert_eq!(receiver.insert(&packet, at), VideoInsertOutcome::Duplicate);
            count += 1;
            receiver.drain(at);
        }
    }
    let end = start + Duration::from_secs(1);
    receiver.run_until(start + FRAME_INTERVAL * 10, end);
    assert_eq!(receiver.frames.len(), 10);
    // A copy of a packet whose frame was handed out is a duplicate too.
    let late_copy = packetize(&synthetic_au(true, 3000, 0), &mut 0, 0).remove(0);
    assert_eq!(
        receiver.insert(&late_copy, end),
        VideoInsertOutcome::Duplicate
    );
    let stats = receiver.buffer.stats();
    assert_eq!(stats.packets_duplicate, count + 1);
    assert_eq!(stats.frames_received, 10);
    assert_eq!(stats.frames_released, 10);
}

#[test]
fn lost_packet_is_nacked_and_its_retransmission_recovers_the_frame() {
    let rtt = Duration::from_millis(60);
    let mut session = Session::new(VideoJitterConfig::default(), rtt, true);
    let mut lost = None;
    // The third packet of frame 5 is lost the first time.
    let mut third = 0;
    let mut path = |packet: &Sent, retransmission: bool, _| {
        if frame_index(packet.timestamp) == 5 && !retransmission {
            third += 1;
            if third == 3 {
                lost = Some(packet.sequence);
                return None;
            }
        }
        Some(rtt / 2)
    };
    let mut source = |index, requested| synthetic_au(requested || index == 0, 3000, index);
    session.run(30, &mut source, &mut path);
    assert_eq!(session.released_indices(), (0..30).collect::<Vec<_>>());
    session.assert_frames_intact();
    let lost = lost.expect("frame 5 has three packets");
    // Asked for once, at once, and no keyframe was needed.
    assert_eq!(session.receiver.nacks.len(), 1);
    assert_eq!(session.receiver.nacks[0].1, vec![lost]);
    assert!(session.receiver.keyframe_requests.is_empty());
    assert!(session.receiver.frames[5].retransmitted);
    let stats = session.receiver.buffer.stats();
    assert_eq!(stats.packets_recovered, 1);
    assert_eq!(stats.nack_count, 1);
    assert_eq!(stats.frames_dropped, 0);
}

#[test]
fn nack_retries_pace_by_rtt_and_give_up_after_the_limit() {
    let config = VideoJitterConfig {
        max_nack_retries: 3,
        ..VideoJitterConfig::default()
    };
    let rtt = Duration::from_millis(80);
    let mut session = Session::new(config, rtt, false);
    let mut path =
        |packet: &Sent, _, _| (packet.sequence != 1010).then_some(Duration::from_millis(20));
    session.run(30, &mut synthetic_source(1000), &mut path);
    let nacks: Vec<_> = session
        .receiver
        .nacks
        .iter()
        .filter(|(_, list)| list.contains(&1010))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(nacks.len(), 3, "{nacks:?}");
    for pair in nacks.windows(2) {
        // Retries every 1.25 × RTT = 100 ms.
        assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
    }
    assert_eq!(session.receiver.buffer.stats().nack_give_ups, 1);
}

#[test]
fn loss_without_retransmission_requests_a_keyframe_and_recovers_at_it() {
    let rtt = Duration::from_millis(40);
    let mut session = Session::new(VideoJitterConfig::default(), rtt, false);
    let mut dropped_at = None;
    let start = session.start;
    // Frame 10's first packet is lost for good; NACKs go unanswered.
    let mut path = |packet: &Sent, _, _| {
        if frame_index(packet.timestamp) == 10 && dropped_at.is_none() {
            dropped_at = Some(start + FRAME_INTERVAL * 10);
            return None;
        }
        Some(Duration::from_millis(20))
    };
    session.run(60, &mut synthetic_source(1000), &mut path);
    let requests = session.receiver.keyframe_requests.clone();
    assert!(!requests.is_empty());
    // Requested once the frames after the hole had waited 3 NACK intervals (150 ms) or
    // 200 ms, whichever is longer: well before a second has passed.
    let waited = requests[0] - dropped_at.expect("frame 10 sent");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(300),
        "{waited:?}"
    );
    assert!(requests.len() <= 2, "{requests:?}");
    let released = session.released_indices();
    // Frames up to 9, then nothing until the keyframe the request produced, then all.
    let resume = released.iter().position(|&i| i > 9).expect("recovered");
    assert_eq!(&released[..resume], &(0..10).collect::<Vec<_>>()[..]);
    assert!(session.receiver.frames[resume].keyframe);
    let first = released[resume];
    assert_eq!(&released[resume..], &(first..60).collect::<Vec<_>>()[..]);
    session.assert_frames_intact();
    let stats = session.receiver.buffer.stats();
    assert!(stats.frames_dropped >= u64::from(first - 11), "{stats:?}");
    assert_eq!(stats.keyframe_requests, requests.len() as u64);
}

#[test]
fn a_later_keyframe_skips_frames_that_can_never_be_decoded() {
    // No request needed: a periodic keyframe arrives soon after the loss.
    let mut session = Session::new(
        VideoJitterConfig::default(),
        Duration::from_millis(40),
        false,
    );
    let mut path = |packet: &Sent, _, _| {
        (frame_index(packet.timestamp) != 3 || packet.marker).then_some(Duration::from_millis(20))
    };
    session.run(12, &mut synthetic_source(5), &mut path);
    let released = session.released_indices();
    assert_eq!(released, vec![0, 1, 2, 5, 6, 7, 8, 9, 10, 11]);
    assert!(session.receiver.frames[3].keyframe);
    assert_eq!(session.receiver.buffer.stats().frames_dropped, 1);
}

#[test]
fn keyframes_without_in_band_parameter_sets_start_after_one_request() {
    // Parameter sets come from the SDP: keyframes are a bare IDR slice, every 20 frames.
    // The first one, the stream's first packet, cannot be told apart from a later slice
    // of a picture, so the stream starts at the keyframe the buffer asks for. Once a
    // keyframe was seen to start with its slice, a keyframe whose first packet follows a
    // lost one is recognised by its first slice.
    let mut session = Session::new(
        VideoJitterConfig::default(),
        Duration::from_millis(40),
        false,
    );
    let mut source = |index: u32, requested: bool| {
        let keyframe = requested || index % 20 == 0;
        let mut au = vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x88];
        au.extend((0..2500).map(|i| (i % 250) as u8 + 1));
        au
    };
    // The last packet of frame 39, just before keyframe 40, is lost for good.
    let mut path = |packet: &Sent, _, _| {
        (frame_index(packet.timestamp) != 39 || !packet.marker).then_some(Duration::from_millis(20))
    };
    session.run(60, &mut source, &mut path);
    let released = session.released_indices();
    let requests = &session.receiver.keyframe_requests;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let first = released[0];
    assert!(first > 0 && first < 20, "{released:?}");
    assert!(session.receiver.frames[0].keyframe);
    session.assert_frames_intact();
    let expected: Vec<u32> = (first..39).chain(40..60).collect();
    assert_eq!(released, expected);
}

#[test]
fn sequence_numbers_and_timestamps_wrap_around() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 65_520u16;
    let first_timestamp = u32::MAX - 10 * FRAME_TICKS;
    let mut aus = Vec::new();
    for index in 0..30u32 {
        let at = start + FRAME_INTERVAL * index;
        let au = synthetic_au(index == 0, 2500, index);
        let timestamp = first_timestamp.wrapping_add(index * FRAME_TICKS);
        for packet in packetize(&au, &mut sequence, timestamp) {
            receiver.insert(&packet, at);
            receiver.drain(at);
        }
        aus.push((timestamp, au));
    }
    receiver.run_until(start + FRAME_INTERVAL * 30, start + Duration::from_secs(2));
    assert_eq!(receiver.frames.len(), 30);
    for (frame, (timestamp, au)) in receiver.frames.iter().zip(&aus) {
        assert_eq!(frame.timestamp, *timestamp);
        assert_eq!(&frame.data, au);
    }
    // Render times keep increasing across the timestamp wrap.
    for pair in receiver.frames.windows(2) {
        assert!(pair[1].render_at > pair[0].render_at);
    }
    assert!(receiver.nacks.is_empty());
}

#[test]
fn a_new_ssrc_resets_the_stream() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 100;
    for index in 0..5u32 {
        let at = start + FRAME_INTERVAL * index;
        for packet in packetize(
            &synthetic_au(index == 0, 2000, index),
            &mut sequence,
            index * FRAME_TICKS,
        ) {
            receiver.insert(&packet, at);
        }
        receiver.drain(at);
    }
    // Half a frame of the old stream waits when the new SSRC starts at unrelated numbers.
    let half = packetize(
        &synthetic_au(false, 3000, 5),
        &mut sequence,
        5 * FRAME_TICKS,
    );
    receiver.insert(&half[0], start + FRAME_INTERVAL * 5);
    let mut new_sequence = 40_000;
    let mut outcomes = Vec::new();
    for index in 0..5u32 {
        let at = start + FRAME_INTERVAL * (6 + index);
        let timestamp = 900_000 + index * FRAME_TICKS;
        for packet in packetize(
            &synthetic_au(index == 0, 2000, 100 + index),
            &mut new_sequence,
            timestamp,
        ) {
            outcomes.push(receiver.insert_ssrc(0xBEEF, &packet, at));
        }
        receiver.drain(at);
    }
    receiver.run_until(start + FRAME_INTERVAL * 11, start + Duration::from_secs(2));
    assert_eq!(outcomes[0], VideoInsertOutcome::Reset);
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| *o == VideoInsertOutcome::Buffered)
    );
    // The old stream's frames handed out before the change, then the new stream's; old
    // frames still waiting at the change are dropped with it.
    let stamps: Vec<u32> = receiver.frames.iter().map(|f| f.timestamp).collect();
    let old = stamps.iter().take_while(|&&t| t < 900_000).count();
    assert!(old >= 3, "{stamps:?}");
    let expected: Vec<u32> = (0..old as u32)
        .map(|i| i * FRAME_TICKS)
        .chain((0..5).map(|i| 900_000 + i * FRAME_TICKS))
        .collect();
    assert_eq!(stamps, expected);
    assert_eq!(receiver.buffer.stats().frames_dropped, 5 - old as u64);
    // No NACK for the jump to the new stream's sequence numbers.
    assert!(receiver.nacks.is_empty());
    assert_eq!(receiver.buffer.stats().resets, 1);
}

#[test]
fn padding_packets_keep_the_decode_chain() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 0u16;
    for index in 0..10u32 {
        let at = start + FRAME_INTERVAL * index;
        for packet in packetize(
            &synthetic_au(index == 0, 2000, index),
            &mut sequence,
            index * FRAME_TICKS,
        ) {
            receiver.insert(&packet, at);
        }
        // Two padding-only packets (bandwidth probing) after every frame.
        for _ in 0..2 {
            let padding = Sent {
                sequence,
                timestamp: index * FRAME_TICKS,
                marker: false,
                payload: Vec::new(),
            };
            sequence = sequence.wrapping_add(1);
            receiver.insert(&padding, at);
        }
        receiver.drain(at);
    }
    receiver.run_until(start + FRAME_INTERVAL * 10, start + Duration::from_secs(2));
    assert_eq!(receiver.frames.len(), 10);
    assert!(receiver.keyframe_requests.is_empty());
    assert_eq!(receiver.buffer.memory().packets, 0);
}

#[test]
fn nack_list_overflow_clears_it_and_requests_a_keyframe() {
    let config = VideoJitterConfig {
        max_nack_list: 50,
        ..VideoJitterConfig::default()
    };
    let start = Instant::now();
    let mut receiver = Receiver::new(config);
    let mut sequence = 0u16;
    for index in 0..3u32 {
        let at = start + FRAME_INTERVAL * index;
        for packet in packetize(
            &synthetic_au(index == 0, 2000, index),
            &mut sequence,
            index * FRAME_TICKS,
        ) {
            receiver.insert(&packet, at);
        }
        receiver.drain(at);
    }
    // 100 packets vanish.
    sequence = sequence.wrapping_add(100);
    let at = start + FRAME_INTERVAL * 3;
    for packet in packetize(
        &synthetic_au(false, 2000, 3),
        &mut sequence,
        3 * FRAME_TICKS,
    ) {
        receiver.insert(&packet, at);
    }
    receiver.drain(at);
    assert_eq!(receiver.keyframe_requests, vec![at]);
    assert_eq!(receiver.buffer.memory().nack_entries, 0);
    assert_eq!(receiver.buffer.stats().nack_overflows, 1);
}

#[test]
fn a_gap_longer_than_max_nack_gap_asks_for_a_keyframe_not_retransmissions() {
    // An outage: a few packets a frame, but 2 s of frames missing. Retransmitting them
    // could not bring the picture back in time (and the sender no longer holds them all).
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 0u16;
    let send = |receiver: &mut Receiver, sequence: &mut u16, index: u32| {
        let at = start + FRAME_INTERVAL * index;
        for packet in packetize(
            &synthetic_au(index == 0, 2000, index),
            sequence,
            index * FRAME_TICKS,
        ) {
            receiver.insert(&packet, at);
        }
        receiver.drain(at);
        at
    };
    for index in 0..3u32 {
        send(&mut receiver, &mut sequence, index);
    }
    // 60 frames of 2 packets vanish.
    sequence = sequence.wrapping_add(120);
    let back = send(&mut receiver, &mut sequence, 63);
    assert_eq!(receiver.keyframe_requests, vec![back]);
    assert!(receiver.nacks.is_empty(), "{:?}", receiver.nacks);
    assert_eq!(receiver.buffer.memory().nack_entries, 0);
    assert_eq!(receiver.buffer.stats().nack_overflows, 1);

    // The same gap over 300 ms of frames is NACKed as usual.
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut sequence = 0u16;
    for index in 0..3u32 {
        send(&mut receiver, &mut sequence, index);
    }
    sequence = sequence.wrapping_add(18);
    send(&mut receiver, &mut sequence, 12);
    assert_eq!(receiver.nacks.len(), 1);
    assert_eq!(receiver.nacks[0].1.len(), 18);
    assert_eq!(receiver.buffer.stats().nack_overflows, 0);
}

#[test]
fn keyframe_requests_are_rate_limited_and_need_new_packets() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    receiver.buffer.handle_rtt(Duration::from_millis(300));
    // Only P frames: the stream never becomes decodable.
    let mut sequence = 0u16;
    for index in 0..60u32 {
        let at = start + FRAME_INTERVAL * index;
        for packet in packetize(
            &synthetic_au(false, 1000, index),
            &mut sequence,
            index * FRAME_TICKS,
        ) {
            receiver.insert(&packet, at);
        }
        receiver.run_until(at, at + FRAME_INTERVAL);
    }
    let requests = &receiver.keyframe_requests;
    assert!(requests.len() >= 3, "{requests:?}");
    for pair in requests.windows(2) {
        // max(200 ms, 1.5 × RTT) = 450 ms apart at least.
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(450),
            "{requests:?}"
        );
    }
    // Once packets stop, requests stop (one more may answer the last packets).
    let count = requests.len();
    let end = start + FRAME_INTERVAL * 60;
    receiver.run_until(end, end + Duration::from_secs(1));
    assert!(receiver.keyframe_requests.len() <= count + 1);
    let count = receiver.keyframe_requests.len();
    receiver.run_until(end + Duration::from_secs(1), end + Duration::from_secs(10));
    assert_eq!(receiver.keyframe_requests.len(), count);
    assert_eq!(receiver.frames.len(), 0);
}

#[test]
fn a_flood_of_packets_stays_within_the_bounds() {
    let config = VideoJitterConfig {
        max_packets: 256,
        max_frames: 16,
        max_nack_list: 64,
        ..VideoJitterConfig::default()
    };
    let start = Instant::now();
    let mut receiver = Receiver::new(config);
    let mut rng = Rng(99);
    let payload = vec![0x41u8; 1200];
    // Complete single-packet P frames that are never decodable, gaps, and old packets.
    for i in 0..20_000u32 {
        let at = start + Duration::from_micros(u64::from(i) * 100);
        let jump = if rng.next() % 50 == 0 { 200 } else { 1 };
        let sequence = (i * 2 + jump) as u16;
        let packet = Sent {
            sequence,
            timestamp: i * 300,
            marker: rng.next() % 2 == 0,
            payload: payload[..(rng.next() % 1200) as usize].to_vec(),
        };
        receiver.insert(&packet, at);
        if i % 7 == 0 {
            receiver.drain(at);
        }
    }
    let memory = receiver.buffer.memory();
    assert!(memory.payload_bytes <= 256 * 1500);
    let stats = receiver.buffer.stats();
    assert!(stats.packets_discarded + stats.packets_late > 0);
    assert!(stats.frames_dropped > 0);
}

#[test]
fn freezes_are_counted_as_the_webrtc_stats_define_them() {
    let start = Instant::now();
    let mut buffer = VideoJitterBuffer::new(VideoJitterConfig::default()).expect("config");
    let mut at = start;
    // 30 fps for 2 s, a 500 ms gap, 30 fps, a 150 ms gap (below 33 + 150 ms), 30 fps,
    // a 1 s gap.
    let render = |buffer: &mut VideoJitterBuffer, frames: u32, at: &mut Instant| {
        for _ in 0..frames {
            buffer.frame_rendered(*at);
            *at += FRAME_INTERVAL;
        }
    };
    render(&mut buffer, 60, &mut at);
    at += Duration::from_millis(500) - FRAME_INTERVAL;
    render(&mut buffer, 30, &mut at);
    at += Duration::from_millis(150) - FRAME_INTERVAL;
    render(&mut buffer, 30, &mut at);
    at += Duration::from_secs(1) - FRAME_INTERVAL;
    render(&mut buffer, 1, &mut at);
    let stats = buffer.stats();
    assert_eq!(stats.freeze_count, 2);
    assert_eq!(stats.total_freezes_duration, Duration::from_millis(1500));
    assert_eq!(stats.frames_rendered, 121);
}

/// Runs a stream through a capacity-limited first-in-first-out link with jitter;
/// returns the target delay after each frame, and the frames handed out.
fn delay_trace(
    frames: u32,
    mut size_of: impl FnMut(u32) -> usize,
    mut jitter_ms: impl FnMut(u32, &mut Rng) -> f64,
) -> (Vec<Duration>, Vec<Out>) {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig::default());
    let mut rng = Rng(3);
    let mut sequence = 0u16;
    // 4 Mbit/s: 500 bytes per ms.
    let bytes_per_ms = 500.0;
    let mut link_free_ms = 0.0f64;
    let mut arrival_ms = 0.0f64;
    let mut trace = Vec::new();
    let mut pending: BTreeMap<(u64, u16), Sent> = BTreeMap::new();
    let mut now = start;
    for index in 0..frames {
        let send_ms = f64::from(index) * 1000.0 / 30.0;
        let au = synthetic_au(index == 0, size_of(index), index);
        let jitter = jitter_ms(index, &mut rng);
        for packet in packetize(&au, &mut sequence, index * FRAME_TICKS) {
            link_free_ms = link_free_ms.max(send_ms) + packet.payload.len() as f64 / bytes_per_ms;
            // First in, first out: jitter delays packets but never reorders them.
            arrival_ms = arrival_ms.max(link_free_ms + 20.0 + jitter);
            pending.insert(((arrival_ms * 1000.0) as u64, packet.sequence), packet);
        }
        let until = start + Duration::from_secs_f64((send_ms + 1000.0 / 30.0) / 1000.0);
        while let Some(entry) = pending.first_entry() {
            let at = start + Duration::from_micros(entry.key().0);
            if at > until {
                break;
            }
            receiver.run_until(now, at);
            now = at;
            let packet = entry.remove();
            receiver.insert(&packet, at);
        }
        receiver.run_until(now, until);
        now = until;
        trace.push(receiver.buffer.target_delay(now));
    }
    (trace, receiver.frames)
}

/// Share of the frames with indices in `range` that came out too late to be rendered
/// at their render time.
fn late_share(frames: &[Out], range: std::ops::Range<u32>) -> f64 {
    let selected: Vec<_> = frames
        .iter()
        .filter(|f| range.contains(&(f.timestamp / FRAME_TICKS)))
        .collect();
    let late = selected
        .iter()
        .filter(|f| f.released_at + Duration::from_millis(10) > f.render_at)
        .count();
    late as f64 / selected.len().max(1) as f64
}

#[test]
fn playout_delay_grows_with_network_jitter_and_shrinks_back() {
    // Calm for 10 s, up to 40 ms of random jitter per frame for 10 s, calm for 20 s.
    let (trace, frames) = delay_trace(
        1200,
        |_| 1500,
        |index, rng| {
            if (300..600).contains(&index) {
                rng.unit() * 40.0
            } else {
                0.0
            }
        },
    );
    let (calm, jittery, after) = (trace[299], trace[599], trace[1199]);
    eprintln!("target delay: calm {calm:?}, jittery {jittery:?}, after {after:?}");
    assert!(calm < Duration::from_millis(20), "calm {calm:?}");
    assert!(
        jittery > calm + Duration::from_millis(15),
        "calm {calm:?}, jittery {jittery:?}"
    );
    assert!(
        after < calm + Duration::from_millis(3),
        "calm {calm:?}, after {after:?}"
    );
    // The larger delay does its job: once it adapted, frames are rarely too late.
    let late = late_share(&frames, 400..600);
    eprintln!("late share under jitter {late:.3}");
    assert!(late < 0.05, "{late}");
    assert_eq!(late_share(&frames, 30..300), 0.0);
}

#[test]
fn playout_delay_grows_after_large_keyframes_and_shrinks_back() {
    // 2 KB frames, a 50 KB keyframe-sized frame at 10 s (100 ms on the 4 Mbit/s link).
    let (trace, _) = delay_trace(
        900,
        |index| if index == 300 { 50_000 } else { 2000 },
        |_, _| 0.0,
    );
    let before = trace[299];
    let after_key = trace[301..320].iter().copied().max().unwrap_or_default();
    let later = trace[899];
    eprintln!("target delay: before {before:?}, after keyframe {after_key:?}, later {later:?}");
    // The capacity estimate says a 48 KB larger frame needs about 96 ms more.
    assert!(
        after_key > before + Duration::from_millis(70),
        "before {before:?}, after {after_key:?}"
    );
    assert!(
        later < before + Duration::from_millis(10),
        "before {before:?}, later {later:?}"
    );
}

#[test]
fn lip_sync_converges_when_audio_is_80_ms_ahead() {
    let start = Instant::now();
    let mut sync = LipSync::new(LipSyncConfig::default()).expect("config");
    // Both streams captured on one clock; both sender reports at NTP 1000 s. Video
    // arrives 80 ms later than audio captured at the same moment, with equal playout
    // delays: audio plays 80 ms ahead.
    sync.audio_sender_report(Ntp64::from_duration(Duration::from_secs(1000)), 48_000);
    sync.video_sender_report(Ntp64::from_duration(Duration::from_secs(1000)), 90_000);
    let mut rng = Rng(5);
    let mut delays = None;
    for step in 0..60u32 {
        let capture_ms = u64::from(step) * 1000;
        let audio_jitter = Duration::from_micros(rng.next() % 2000);
        let video_jitter = Duration::from_micros(rng.next() % 2000);
        let audio = StreamObservation {
            rtp_timestamp: 48_000 + 48 * capture_ms as u32,
            arrival: start + Duration::from_millis(capture_ms + 30) + audio_jitter,
            playout_delay: Duration::from_millis(60),
        };
        let video = StreamObservation {
            rtp_timestamp: 90_000 + 90 * capture_ms as u32,
            arrival: start + Duration::from_millis(capture_ms + 110) + video_jitter,
            playout_delay: Duration::from_millis(60),
        };
        delays = sync.update(audio, video);
    }
    let delays = delays.expect("both reports known");
    let audio_ms = delays.audio.as_secs_f64() * 1000.0;
    assert!((audio_ms - 80.0).abs() < 3.0, "{delays:?}");
    assert_eq!(delays.video, Duration::ZERO);

    // The other way round: video 50 ms ahead gets video the extra delay.
    let mut sync = LipSync::new(LipSyncConfig::default()).expect("config");
    sync.audio_sender_report(Ntp64::from_duration(Duration::from_secs(1000)), 0);
    sync.video_sender_report(Ntp64::from_duration(Duration::from_secs(1000)), 0);
    let mut delays = None;
    for step in 0..60u32 {
        let capture_ms = u64::from(step) * 500;
        let audio = StreamObservation {
            rtp_timestamp: 48 * capture_ms as u32,
            arrival: start + Duration::from_millis(capture_ms + 40),
            playout_delay: Duration::from_millis(120),
        };
        let video = StreamObservation {
            rtp_timestamp: 90 * capture_ms as u32,
            arrival: start + Duration::from_millis(capture_ms + 40),
            playout_delay: Duration::from_millis(70),
        };
        delays = sync.update(audio, video);
    }
    let delays = delays.expect("known");
    assert_eq!(delays.audio, Duration::ZERO);
    assert!(
        (delays.video.as_secs_f64() * 1000.0 - 50.0).abs() < 1.0,
        "{delays:?}"
    );
}

#[test]
fn av1_temporal_units_assemble_and_keyframes_start_decoding() {
    let start = Instant::now();
    let mut receiver = Receiver::new(VideoJitterConfig {
        codec: VideoCodec::Av1,
        ..VideoJitterConfig::default()
    });
    let mut packetizer = Av1Packetizer::new(1000).expect("mtu");
    let mut packets = PayloadPackets::new();
    let mut sequence = 7u16;
    let obu = |obu_type: u8, len: usize| {
        // OBU with a size field (LEB128 two bytes) and non-zero payload.
        let mut obu = vec![obu_type << 3 | 0x02, (len as u8) | 0x80, (len >> 7) as u8];
        obu.extend((0..len).map(|i| (i % 200) as u8 + 1));
        obu
    };
    for index in 0..10u32 {
        let mut unit = Vec::new();
        if index == 0 {
            unit.extend(obu(1, 12)); // sequence header
        }
        unit.extend(obu(6, if index == 0 { 4000 } else { 1500 })); // frame
        packetizer.packetize(&unit, &mut packets).expect("valid");
        let at = start + FRAME_INTERVAL * index;
        let count = packets.len();
        for (i, (payload, marker)) in packets.iter().enumerate() {
            let packet = Sent {
                sequence,
                timestamp: index * FRAME_TICKS,
                marker,
                payload: payload.to_vec(),
            };
            sequence = sequence.wrapping_add(1);
            // The last packet of frame 4 never arrives.
            if index == 4 && i + 1 == count {
                continue;
            }
            receiver.insert(&packet, at);
        }
        receiver.drain(at);
    }
    receiver.run_until(start + FRAME_INTERVAL * 10, start + Duration::from_secs(2));
    // Frame 4 is incomplete (its last packet never came): decoding stops there and
    // waits for a keyframe.
    let stamps: Vec<u32> = receiver
        .frames
        .iter()
        .map(|f| f.timestamp / FRAME_TICKS)
        .collect();
    assert_eq!(stamps, vec![0, 1, 2, 3]);
    assert!(receiver.frames[0].keyframe);
    // A temporal delimiter, then the sequence header with its size field.
    assert_eq!(&receiver.frames[0].data[..3], &[0x12, 0x00, 0x0A]);
    assert!(!receiver.keyframe_requests.is_empty());
}

/// Encodes `frames` frames of the 320x180 test pattern with OpenH264, sends them over the
/// emulator (`loss`, 30 ms delay, 8 ms jitter), with or without answering NACKs (a
/// keyframe request is always answered), then decodes every frame handed out: each must
/// decode without error to the picture sent with its timestamp (its drawn counter),
/// in order. Returns the session and the number of frames decoded.
fn h264_call(frames: u32, loss: f64, retransmit: bool, seed: u64) -> (Session, u64) {
    let resolution = Resolution::new(320, 180).expect("size");
    let mut pattern = TestPattern::new(resolution, 30);
    let mut encoder = H264Encoder::new(H264Config {
        bitrate_bps: 600_000,
        resolution: Some(resolution),
        ..H264Config::default()
    })
    .expect("encoder");
    let mut encoded = Vec::new();
    let mut source = |_: u32, keyframe: bool| {
        let frame = pattern.next_frame();
        let request = EncodeRequest {
            force_keyframe: keyframe,
        };
        let info = encoder
            .encode(&frame, request, &mut encoded)
            .expect("encode");
        encoded[..info.len].to_vec()
    };
    let link_config = LinkConfig {
        loss,
        delay_ms: 30.0,
        jitter_ms: 8.0,
        ..LinkConfig::default()
    };
    let mut link: Link<()> = Link::new(link_config, seed).expect("link");
    // The emulator decides each packet's fate (sent in time order, delivered or lost
    // with its own delay); the session schedules the delivery.
    let mut path = |packet: &Sent, _: bool, sent_at: Instant| {
        link.send((), packet.payload.len() + 12, sent_at);
        match link.poll(sent_at + Duration::from_secs(3600)) {
            Poll::Deliver(delivery) => Some(delivery.delivered_at - delivery.sent_at),
            _ => None,
        }
    };
    let rtt = Duration::from_millis(70);
    let mut session = Session::new(VideoJitterConfig::default(), rtt, retransmit);
    session.run(frames, &mut source, &mut path);

    let mut decoder = H264Decoder::new().expect("decoder");
    let mut picture = VideoFrame::black(resolution);
    let mut previous = None;
    let mut decoded = 0;
    for frame in &session.receiver.frames {
        let index = frame_index(frame.timestamp);
        let got = decoder
            .decode_into(&frame.data, &mut picture)
            .unwrap_or_else(|e| panic!("frame {index}: {e}"));
        assert!(got, "frame {index} gave no picture");
        let counter = read_frame_counter(&picture).expect("counter readable");
        assert_eq!(counter, u64::from(index));
        assert!(previous.is_none_or(|p| counter > p));
        previous = Some(counter);
        decoded += 1;
        let buffer = &mut session.receiver.buffer;
        buffer.frame_decoded(Duration::from_millis(2));
        buffer.frame_rendered(frame.render_at);
    }
    (session, decoded)
}

#[test]
fn h264_end_to_end_over_a_lossy_jittery_link_decodes_every_frame_in_order() {
    let (session, decoded) = h264_call(300, 0.05, true, 2024);
    let stats = session.receiver.buffer.stats();
    eprintln!("decoded {decoded} of 300; {stats:?}");
    assert!(stats.nack_count > 0, "{stats:?}");
    assert!(stats.packets_recovered > 0, "{stats:?}");
    assert_eq!(stats.frames_decoded, decoded);
    // Retransmission repairs nearly everything at 5 % loss (a retransmission can be
    // lost too, and is then requested again).
    assert!(decoded >= 290, "decoded {decoded} of 300: {stats:?}");
    assert!(stats.freeze_count <= 1, "{stats:?}");
}

#[test]
fn h264_end_to_end_without_retransmission_recovers_through_keyframe_requests() {
    let (session, decoded) = h264_call(300, 0.02, false, 7);
    let stats = session.receiver.buffer.stats();
    eprintln!("decoded {decoded} of 300; {stats:?}");
    // Each loss breaks the chain until the keyframe asked for arrives; frames in
    // between are dropped, never handed out to fail in the decoder.
    assert!(stats.keyframe_requests > 0, "{stats:?}");
    assert!(stats.frames_dropped > 0, "{stats:?}");
    assert!(stats.freeze_count > 0, "{stats:?}");
    assert!(decoded >= 150, "decoded {decoded} of 300: {stats:?}");
    let keyframes = session
        .receiver
        .frames
        .iter()
        .filter(|f| f.keyframe)
        .count();
    assert!(keyframes >= 2, "{keyframes}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_insert_sequence_never_panics_and_stays_bounded(
        ops in proptest::collection::vec(
            (0u8..8, any::<u16>(), any::<u32>(), 0u32..3, any::<bool>(), 0usize..2000, 0u64..50_000),
            1..400,
        ),
        codec_av1 in any::<bool>(),
    ) {
        let config = VideoJitterConfig {
            codec: if codec_av1 { VideoCodec::Av1 } else { VideoCodec::H264 },
            max_packets: 64,
            max_frames: 8,
            max_nack_list: 32,
            max_payload_bytes: 1800,
            max_frame_bytes: 16_000,
            ..VideoJitterConfig::default()
        };
        let start = Instant::now();
        let mut now = start;
        let mut buffer = VideoJitterBuffer::new(config.clone()).expect("config");
        let mut sequence = 0u16;
        let mut timestamp = 0u32;
        let mut payload = vec![0u8; 2000];
        for (i, (kind, seq, ts, ssrc, marker, len, step_us)) in ops.into_iter().enumerate() {
            now += Duration::from_micros(step_us);
            match kind {
                // Mostly near the previous packet, sometimes anywhere.
                0..=4 => {
                    sequence = if kind == 0 { seq } else { sequence.wrapping_add(seq % 4) };
                    timestamp = if kind == 1 { ts } else { timestamp.wrapping_add(ts % 2 * 3000) };
                    for (j, byte) in payload[..len].iter_mut().enumerate() {
                        *byte = (seq as usize + j * 31) as u8 ^ (ts as u8);
                    }
                    let packet = VideoPacket {
                        ssrc,
                        sequence,
                        timestamp,
                        marker,
                        payload: &payload[..len],
                    };
                    let result = buffer.insert_packet(packet, now);
                    prop_assert_eq!(result.is_err(), len > config.max_payload_bytes);
                }
                5 => buffer.handle_rtt(Duration::from_micros(u64::from(ts % 1_000_000))),
                6 => buffer.frame_rendered(now),
                _ => {}
            }
            if i % 3 == 0 || kind == 7 {
                let mut guard = 0;
                loop {
                    guard += 1;
                    prop_assert!(guard < 10_000, "poll never settles");
                    match buffer.poll(now) {
                        VideoOutput::Frame(frame) => {
                            prop_assert!(frame.data.len() <= config.max_frame_bytes);
                        }
                        VideoOutput::Nack(list) => {
                            prop_assert!(!list.is_empty() && list.len() <= config.max_nack_list);
                        }
                        VideoOutput::KeyframeRequest => {}
                        VideoOutput::Timeout(at) => {
                            prop_assert!(at > now);
                            break;
                        }
                        VideoOutput::Idle => break,
                    }
                }
            }
            let memory = buffer.memory();
            prop_assert!(memory.packets <= config.max_packets);
            prop_assert!(memory.frames <= config.max_frames);
            prop_assert!(memory.nack_entries <= config.max_nack_list);
            prop_assert!(memory.payload_bytes <= config.max_packets * config.max_payload_bytes);
            prop_assert!(memory.frame_bytes <= 2 * config.max_frame_bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn impaired_streams_only_ever_hand_out_whole_frames_in_order(
        seed in 1u64..u64::MAX,
        loss_percent in 0u64..30,
        max_extra_delay_ms in 0u64..80,
        retransmit in any::<bool>(),
        rtt_ms in 1u64..300,
    ) {
        let mut session = Session::new(
            VideoJitterConfig::default(),
            Duration::from_millis(rtt_ms),
            retransmit,
        );
        let mut rng = Rng(seed);
        let mut path = |_: &Sent, _, _| {
            (rng.next() % 100 >= loss_percent)
                .then(|| Duration::from_millis(10 + rng.next() % (max_extra_delay_ms + 1)))
        };
        session.run(60, &mut synthetic_source(20), &mut path);
        let released = session.released_indices();
        prop_assert!(released.windows(2).all(|w| w[0] < w[1]), "{:?}", released);
        session.assert_frames_intact();
        // Decoding starts at a keyframe and every gap in the sequence is bridged by one.
        let frames = &session.receiver.frames;
        for (i, frame) in frames.iter().enumerate() {
            let continues = i > 0 && released[i] == released[i - 1] + 1;
            prop_assert!(frame.keyframe || continues, "{:?}", released);
        }
        if loss_percent == 0 {
            prop_assert_eq!(released.len(), 60);
        }
    }
}
