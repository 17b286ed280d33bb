//! Media session benches: one simulated second of a call, every participant a full
//! [`Session`](tincan_pipeline::Session) (RNNoise, Opus with DRED, RTP/RTCP, pacer,
//! per-receiver congestion control, jitter buffers, decoders, mixing), connected by an
//! in-bench relay with zero delay that forwards as `docs/PIPELINE.md` describes (RTP to
//! everyone else, RTCP to the owners of the SSRCs it is about, SRs to everyone).
//!
//! Cases: a 1:1 call (both speak), a 16-party call with one speaker (the usual meeting:
//! the others' microphones pick up quiet room noise) and a 16-party call where everyone
//! speaks at once (the worst case). The time per iteration is the time to simulate one
//! second, so real-time factor = 1 s / time; before criterion runs, each case prints its
//! factor over 5 simulated seconds after 2 s of warm-up, by wall time and by the thread's
//! CPU time (the figure for a machine not shared with other work).

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tincan::codec::resample::resample_all;
use tincan::media::wav;
use tincan::rtp::rtcp::{RtcpCompound, RtcpPacket};
use tincan_pipeline::{FRAME_SAMPLES, Input, Output, RemoteParticipant, Session, SessionConfig};

/// 10 ms.
const TICK: Duration = Duration::from_millis(10);

/// The speech fixture at 48 kHz.
fn speech() -> Vec<i16> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/speech/speech_orig_16k.wav"
    );
    let clip = wav::read_wav(path).expect("fixture");
    let clip = resample_all(&clip, 48_000).expect("resample");
    let mut samples = clip.into_samples();
    samples.truncate(samples.len() / FRAME_SAMPLES * FRAME_SAMPLES);
    samples
}

/// Quiet room noise, about -60 dBov.
fn room_noise(frames: usize, seed: u32) -> Vec<i16> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..frames * FRAME_SAMPLES)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 16) as i16 as i32 * 30 / 32_768) as i16
        })
        .collect()
}

/// Where a relay forwards a datagram from participant `from`: RTP and SRs to everyone
/// else, other RTCP to the owners of the media SSRCs it is about.
fn route(data: &[u8], from: usize, n: usize, owners: &HashMap<u32, usize>, to: &mut Vec<usize>) {
    to.clear();
    let everyone = |to: &mut Vec<usize>| to.extend((0..n).filter(|&i| i != from));
    if data.len() < 2 || !(64..96).contains(&(data[1] & 0x7F)) {
        everyone(to);
        return;
    }
    let Ok(compound) = RtcpCompound::parse(data) else {
        return;
    };
    let about = |ssrc: u32, to: &mut Vec<usize>| {
        if let Some(&owner) = owners.get(&ssrc)
            && owner != from
            && !to.contains(&owner)
        {
            to.push(owner);
        }
    };
    for packet in compound.packets().flatten() {
        match packet {
            RtcpPacket::SenderReport(_) => {
                to.clear();
                everyone(to);
                return;
            }
            RtcpPacket::ReceiverReport(rr) => {
                for block in rr.report_blocks() {
                    about(block.ssrc, to);
                }
            }
            RtcpPacket::TransportCc(f) => about(f.media_ssrc, to),
            RtcpPacket::Remb(r) => {
                for ssrc in r.ssrcs() {
                    about(ssrc, to);
                }
            }
            RtcpPacket::Nack(f) => about(f.media_ssrc, to),
            RtcpPacket::Pli(f) => about(f.media_ssrc, to),
            _ => {}
        }
    }
}

struct Call {
    sessions: Vec<Session>,
    mics: Vec<Vec<i16>>,
    owners: HashMap<u32, usize>,
    t0: Instant,
    tick: u64,
    queue: VecDeque<(usize, Vec<u8>)>,
    to: Vec<usize>,
    frame: Vec<i16>,
}

impl Call {
    /// `n` participants, the first `speakers` of them speaking (the fixture, each from its
    /// own offset), the others with room noise.
    fn new(n: usize, speakers: usize, speech: &[i16]) -> Self {
        let t0 = Instant::now();
        let ssrcs: Vec<u32> = (0..n as u32).map(|i| 0x1000 + i).collect();
        let frames = speech.len() / FRAME_SAMPLES;
        let sessions = ssrcs
            .iter()
            .map(|&ssrc| {
                let mut s = Session::new(SessionConfig::new(ssrc), t0).expect("session");
                for &other in ssrcs.iter().filter(|&&o| o != ssrc) {
                    s.add_remote(RemoteParticipant::new(other)).expect("remote");
                }
                s
            })
            .collect();
        let mics = (0..n)
            .map(|i| {
                if i < speakers {
                    let offset = (i * frames / speakers.max(1)) * FRAME_SAMPLES;
                    speech[offset..]
                        .iter()
                        .chain(&speech[..offset])
                        .copied()
                        .collect()
                } else {
                    room_noise(frames, i as u32)
                }
            })
            .collect();
        Self {
            sessions,
            mics,
            owners: ssrcs.iter().enumerate().map(|(i, &s)| (s, i)).collect(),
            t0,
            tick: 0,
            queue: VecDeque::new(),
            to: Vec::new(),
            frame: vec![0; FRAME_SAMPLES],
        }
    }

    fn drain(&mut self, i: usize) {
        let n = self.sessions.len();
        loop {
            match self.sessions[i].poll_output() {
                Output::Transmit(d) => {
                    route(&d, i, n, &self.owners, &mut self.to);
                    for &dest in &self.to {
                        self.queue.push_back((dest, d.clone()));
                    }
                    self.sessions[i].recycle(d);
                }
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    }

    /// One 10 ms tick: microphones, timers, the relay until quiet, playout.
    fn step(&mut self) {
        let now = self.t0 + TICK * self.tick as u32;
        for i in 0..self.sessions.len() {
            let mic = &self.mics[i];
            let k = (self.tick as usize * FRAME_SAMPLES) % mic.len();
            self.sessions[i]
                .push_audio(&mic[k..k + FRAME_SAMPLES], now)
                .expect("push");
            self.sessions[i]
                .handle_input(Input::Timeout, now)
                .expect("timeout");
            self.drain(i);
        }
        while let Some((dest, d)) = self.queue.pop_front() {
            let _ = self.sessions[dest].handle_input(Input::Receive(&d), now);
            self.drain(dest);
        }
        for s in &mut self.sessions {
            s.pull_audio(now, &mut self.frame).expect("pull");
            black_box(&self.frame);
        }
        self.tick += 1;
    }

    fn second(&mut self) {
        for _ in 0..100 {
            self.step();
        }
    }
}

/// CPU time of this thread so far (Linux `/proc/thread-self/schedstat`), which a machine
/// shared with other work does not inflate the way wall time is.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn bench_calls(c: &mut Criterion) {
    let speech = speech();
    let cases = [
        ("1:1 call, both speak", 2, 2),
        ("16-party call, one speaker", 16, 1),
        ("16-party call, all speak", 16, 16),
    ];
    // `PIPELINE_BENCH_CASE=one` runs only the cases whose name holds "one" (profiling).
    let only = std::env::var("PIPELINE_BENCH_CASE").ok();
    for (name, n, speakers) in cases {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let mut call = Call::new(n, speakers, &speech);
        for _ in 0..2 {
            call.second();
        }
        let started = Instant::now();
        let cpu_start = cpu_time();
        for _ in 0..5 {
            call.second();
        }
        let per_second = started.elapsed() / 5;
        let cpu = cpu_time()
            .zip(cpu_start)
            .map(|(end, start)| (end - start) / 5);
        println!(
            "{name}: wall {:.1} ms per simulated second ({:.2}x real time); CPU {:.1} ms ({:.2}x real time on one free core)",
            per_second.as_secs_f64() * 1000.0,
            1.0 / per_second.as_secs_f64(),
            cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1000.0),
            cpu.map_or(f64::NAN, |c| 1.0 / c.as_secs_f64()),
        );
        c.bench_function(&format!("pipeline/{name}, 1 s"), |b| {
            b.iter(|| call.second())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = bench_calls
}
criterion_main!(benches);
