//! The video paths against the clock: one second of a 1:1 720p30 call (camera pictures →
//! `VideoSendPath`: encode, packetize, RTX history, FlexFEC → `VideoReceivePath`:
//! FlexFEC, jitter buffer, depacketize, decode → pictures out), and the send side alone.
//! An iteration is one second of video, so the real-time factor is 1 s over the time
//! per iteration. The camera pictures (a moving pattern over a still texture with grain)
//! are made before measuring; the network is perfect and time is virtual.
//!
//! The last case is the same call through two media `Session`s (the paths wired in:
//! pacer, transport-cc, RTCP, the allocation after audio), both directions, with audio:
//! each iteration is one second of a 1:1 audio and 720p30 video call, every participant
//! encoding its camera and microphone and decoding the other's.
//!
//! `cargo bench --bench pipeline_video` (OpenH264 at low complexity, and at the path's
//! default, medium, for comparison).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tincan::codec::h264::H264Complexity;
use tincan::media::source::TestPattern;
use tincan::media::{Resolution, VideoFrame};
use tincan_pipeline::video::{
    VideoReceiveConfig, VideoReceivePath, VideoSendConfig, VideoSendPath, VideoSessionConfig,
};
use tincan_pipeline::{FRAME_SAMPLES, Input, Output, RemoteParticipant, Session, SessionConfig};

const FPS: u32 = 30;
/// Camera pictures made up front and cycled (two seconds: the pattern keeps moving).
const PICTURES: usize = 60;
/// The call's target: 1280×720 at 30 fps is the default ladder's rung from 1.2 Mbit/s.
const TARGET_BPS: u64 = 1_800_000;

fn pictures() -> Vec<VideoFrame> {
    let resolution = Resolution::P720;
    let mut pattern = TestPattern::new(resolution, FPS);
    let mut noise = 0x9E37_79B9_7F4A_7C15u64;
    (0..PICTURES)
        .map(|_| {
            let mut frame = pattern.next_frame();
            let stride = frame.stride(0);
            let (width, height) = resolution.plane_size(0);
            let luma = frame.plane_mut(0);
            for y in 0..height {
                for x in 0..width {
                    noise ^= noise << 13;
                    noise ^= noise >> 7;
                    noise ^= noise << 17;
                    // Texture (fixed per position) and grain (new each picture).
                    let texel = ((x * 7919 + y * 104_729) >> 3) as u8 & 0x3F;
                    let grain = (noise >> 62) as u8;
                    let pixel = &mut luma[y * stride + x];
                    *pixel = pixel
                        .wrapping_sub(*pixel / 4)
                        .saturating_add(texel / 2 + grain);
                }
            }
            frame
        })
        .collect()
}

struct Call {
    sender: VideoSendPath,
    receiver: VideoReceivePath,
    pictures: Vec<VideoFrame>,
    t0: Instant,
    frame: u64,
}

impl Call {
    fn new(complexity: H264Complexity) -> Self {
        let t0 = Instant::now();
        let mut config = VideoSendConfig::new(1, 2, 3);
        config.start_bps = TARGET_BPS;
        config.complexity = complexity;
        Self {
            sender: VideoSendPath::new(config, t0).expect("send path"),
            receiver: VideoReceivePath::new(VideoReceiveConfig::new(9, 1, 2, 3))
                .expect("receive path"),
            pictures: pictures(),
            t0,
            frame: 0,
        }
    }

    /// One second of video through both paths; returns the pictures shown.
    fn second(&mut self, receive: bool) -> u64 {
        let mut shown = 0;
        for _ in 0..FPS {
            let now = self.t0 + Duration::from_nanos(self.frame * 1_000_000_000 / u64::from(FPS));
            let picture = &self.pictures[self.frame as usize % PICTURES];
            self.sender.push_frame(picture, now).expect("encoded");
            self.frame += 1;
            while let Some(packet) = self.sender.poll_packet() {
                if receive {
                    self.receiver.handle_rtp(&packet.data, now).expect("known");
                }
                self.sender.recycle(packet.data);
            }
            if receive {
                // The frame is due a render delay later; run the buffer past it.
                self.receiver
                    .handle_timeout(now + Duration::from_millis(30));
                while let Some(frame) = self.receiver.poll_frame() {
                    black_box(frame.frame.plane(0)[0]);
                    shown += 1;
                }
            }
        }
        shown
    }
}

/// A 1:1 audio and video call of two sessions over a perfect network (every datagram
/// across at once), on virtual time.
struct SessionCall {
    sessions: [Session; 2],
    pictures: Vec<VideoFrame>,
    tone: Vec<i16>,
    speaker: Vec<i16>,
    t0: Instant,
    /// 10 ms ticks so far.
    tick: u64,
}

impl SessionCall {
    fn new() -> Self {
        let t0 = Instant::now();
        let session = |me: u32, other: u32| {
            let mut config =
                SessionConfig::new(me).with_video(VideoSessionConfig::new(me + 1, me + 2, me + 3));
            // Start where a 720p30 call settles (the ladder's 720p rung from 1.2 Mbit/s of
            // video): the bench measures the call, not the ramp.
            config.controller.start_bps = TARGET_BPS;
            let mut session = Session::new(config, t0).expect("session");
            session
                .add_remote(RemoteParticipant::new(other).with_video_ssrcs(
                    other + 1,
                    other + 2,
                    other + 3,
                ))
                .expect("remote");
            session
        };
        Self {
            sessions: [session(0x100, 0x200), session(0x200, 0x100)],
            pictures: pictures(),
            tone: (0..FRAME_SAMPLES)
                .map(|i| ((i as f32 * 0.07).sin() * 6000.0) as i16)
                .collect(),
            speaker: vec![0; FRAME_SAMPLES],
            t0,
            tick: 0,
        }
    }

    /// Hands each session's datagrams to the other until both are drained.
    fn exchange(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            for from in 0..2 {
                while let Output::Transmit(datagram) = self.sessions[from].poll_output() {
                    let to = 1 - from;
                    let _ = self.sessions[to].handle_input(Input::Receive(&datagram), now);
                    self.sessions[from].recycle(datagram);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// One second of the call; returns the pictures shown on both sides.
    fn second(&mut self) -> u64 {
        let mut shown = 0;
        for _ in 0..100 {
            let now = self.t0 + Duration::from_millis(10 * self.tick);
            // A camera picture every 33⅓ ms.
            let picture = (self.tick * u64::from(FPS)) / 100
                != ((self.tick + 1) * u64::from(FPS)) / 100
                || self.tick == 0;
            for session in &mut self.sessions {
                session.push_audio(&self.tone, now).expect("audio");
                if picture {
                    let frame =
                        &self.pictures[(self.tick as usize * FPS as usize / 100) % PICTURES];
                    session.push_video(frame, now).expect("video");
                }
                session.handle_input(Input::Timeout, now).expect("timeout");
            }
            self.exchange(now);
            for session in &mut self.sessions {
                session.pull_audio(now, &mut self.speaker).expect("playout");
                black_box(self.speaker[0]);
                while let Some(frame) = session.poll_video_frame() {
                    black_box(frame.frame.plane(0)[0]);
                    shown += 1;
                }
            }
            self.tick += 1;
        }
        shown
    }
}

fn video_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_video");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut call = Call::new(H264Complexity::Low);
    // Warm-up outside the measurement: the first keyframe, buffers grown.
    call.second(true);
    group.bench_function("call_720p30_one_second", |b| {
        b.iter(|| black_box(call.second(true)))
    });
    let mut send = Call::new(H264Complexity::Low);
    send.second(false);
    group.bench_function("send_720p30_one_second", |b| {
        b.iter(|| black_box(send.second(false)))
    });
    // The path's default effort (OpenH264's medium), against low above.
    let mut medium = Call::new(H264Complexity::Medium);
    medium.second(true);
    group.bench_function("call_720p30_one_second_medium_complexity", |b| {
        b.iter(|| black_box(medium.second(true)))
    });
    // Two sessions, both directions, audio and video: two seconds of warm-up.
    let mut sessions = SessionCall::new();
    let warm = sessions.second() + sessions.second();
    let started = Instant::now();
    let mut shown = 0;
    for _ in 0..5 {
        shown += sessions.second();
    }
    let wall = started.elapsed();
    let stats = sessions.sessions[0].stats(sessions.t0 + Duration::from_millis(10 * sessions.tick));
    println!(
        "session pair 720p30 both ways with audio: 5 s in {wall:?} ({:.2}x real time by wall clock), {shown} pictures shown ({warm} in warm-up), sending {:?} at {:.0} fps",
        5.0 / wall.as_secs_f64(),
        stats.video_send_resolution,
        stats.video_send_fps,
    );
    group.bench_function("session_pair_720p30_audio_and_video_one_second", |b| {
        b.iter(|| black_box(sessions.second()))
    });
    group.finish();
}

criterion_group!(benches, video_call);
criterion_main!(benches);
