//! Group audio calls: 4 and 16 [`Session`]s, each on its own `tincan_netsim` path to a small
//! relay in the test (an SFU-like forwarder: RTP to every other participant, SRs to
//! everyone, other RTCP to the owners of the SSRCs it is about), with real speech, Opus,
//! RTP/RTCP, jitter buffers and mixing. Participants take turns speaking segments of the
//! speech fixture, then some speak at once; one leaves and rejoins with a new SSRC. Checks:
//! every listener's mix holds each speaker's speech (normalised correlation at the best
//! lag), volume events follow who speaks, the active speaker follows the turns, per-remote
//! statistics and quality are sane. Run with `--nocapture` for figures.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tincan_netsim::{Direction, Path, Poll, Profile};
use tincan_pipeline::{
    Event, FRAME_SAMPLES, Input, NetworkQuality, Output, RemoteParticipant, SAMPLE_RATE, Session,
    SessionConfig,
};
use tincan_rtp::rtcp::{RtcpCompound, RtcpPacket};

use common::{correlation, decimate, speech};

/// 10 ms.
const TICK: Duration = Duration::from_millis(10);
/// Decimation for the correlation search (48 kHz → 4 kHz).
const DECIMATE: usize = 12;
/// Lags searched: up to 400 ms (two 20 ms network hops, packetisation, buffers).
const MAX_LAG: Duration = Duration::from_millis(400);
/// A speaker alone is heard when its speech correlates this well with the mix (1:1 calls
/// measure 0.82 on `good`; other speech gives about 0.05).
const MIN_ALONE: f64 = 0.6;
/// With three speaking at once each is a third of the mix: a correlation of about
/// 1/√3 ≈ 0.58 when their powers are equal.
const MIN_TOGETHER: f64 = 0.3;

/// Where the relay forwards a datagram from `from`.
fn route(data: &[u8], from: usize, present: &[usize], owners: &HashMap<u32, usize>) -> Vec<usize> {
    let everyone = || present.iter().copied().filter(|&i| i != from).collect();
    if !(64..96).contains(&(data[1] & 0x7F)) {
        return everyone();
    }
    let Ok(compound) = RtcpCompound::parse(data) else {
        return Vec::new();
    };
    let mut to = Vec::new();
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
            RtcpPacket::SenderReport(_) => return everyone(),
            RtcpPacket::ReceiverReport(rr) => {
                for block in rr.report_blocks() {
                    about(block.ssrc, &mut to);
                }
            }
            RtcpPacket::TransportCc(f) => about(f.media_ssrc, &mut to),
            RtcpPacket::Remb(r) => {
                for ssrc in r.ssrcs() {
                    about(ssrc, &mut to);
                }
            }
            _ => {}
        }
    }
    to
}

/// One participant of the script.
#[derive(Debug, Clone, Copy)]
struct Member {
    ssrc: u32,
    join: Duration,
    leave: Option<Duration>,
}

/// A turn: `who` speaks the fixture from `offset` during `from..to`.
#[derive(Debug, Clone, Copy)]
struct Turn {
    who: usize,
    from: Duration,
    to: Duration,
    offset: Duration,
}

struct Party {
    session: Option<Session>,
    timeout: Instant,
    /// What it heard, one sample per sample of the call from t0 (zeros while absent).
    heard: Vec<i16>,
    events: Vec<(Duration, Event)>,
    path: Path<Vec<u8>>,
}

struct GroupCall {
    members: Vec<Member>,
    parties: Vec<Party>,
    /// (time, per participant: the active speaker it shows), every 100 ms.
    speakers: Vec<(Duration, Vec<Option<u32>>)>,
    wall: Duration,
    end: Duration,
    /// The simulated instant the call ended.
    t_end: Instant,
}

fn samples(at: Duration) -> usize {
    (at.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as usize
}

/// Runs the script over `profile` (the same profile, seeded apart, up and down for each).
fn run(
    members: &[Member],
    turns: &[Turn],
    end: Duration,
    profile: &str,
    speech: &[i16],
) -> GroupCall {
    let started = Instant::now();
    let profile = Profile::named(profile).expect("profile");
    let t0 = Instant::now();
    let mut parties: Vec<Party> = members
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let mut path = Path::new(&profile, 100 + i as u64).expect("path");
            path.link_mut(Direction::AToB).set_epoch(t0);
            path.link_mut(Direction::BToA).set_epoch(t0);
            Party {
                session: None,
                timeout: t0,
                heard: Vec::with_capacity(samples(end) + FRAME_SAMPLES),
                events: Vec::new(),
                path,
            }
        })
        .collect();
    let mut owners: HashMap<u32, usize> = HashMap::new();
    let mut speakers = Vec::new();
    let silence = [0i16; FRAME_SAMPLES];
    let mut scratch = [0i16; FRAME_SAMPLES];
    let mut next_tick = t0;
    let mut frame = 0usize;
    let mut now = t0;
    loop {
        let present: Vec<usize> = (0..parties.len())
            .filter(|&i| parties[i].session.is_some())
            .collect();
        // Drain every session into the uplinks.
        for &i in &present {
            let party = &mut parties[i];
            let Some(session) = party.session.as_mut() else {
                continue;
            };
            loop {
                match session.poll_output() {
                    Output::Transmit(d) => {
                        let size = d.len() + 28;
                        party.path.send(Direction::AToB, d, size, now);
                    }
                    Output::Event(e) => party.events.push((now - t0, e)),
                    Output::Timeout(at) => {
                        party.timeout = at;
                        break;
                    }
                    other => panic!("unexpected output {other:?}"),
                }
            }
        }
        let next = present
            .iter()
            .map(|&i| parties[i].timeout)
            .chain(parties.iter().filter_map(|p| p.path.next_deadline()))
            .chain([next_tick])
            .min()
            .expect("a deadline");
        now = next.max(now);
        if now - t0 >= end {
            break;
        }
        // Uplinks into the relay, the relay onto the downlinks.
        for i in 0..parties.len() {
            while let Poll::Deliver(d) = parties[i].path.poll(Direction::AToB, now) {
                if parties[i].session.is_none() {
                    continue;
                }
                for dest in route(&d.packet, i, &present, &owners) {
                    let size = d.packet.len() + 28;
                    parties[dest]
                        .path
                        .send(Direction::BToA, d.packet.clone(), size, now);
                }
            }
        }
        for party in &mut parties {
            while let Poll::Deliver(d) = party.path.poll(Direction::BToA, now) {
                if let Some(session) = party.session.as_mut() {
                    let _ =
                        session.handle_input(Input::Receive(&d.packet), d.delivered_at.max(now));
                }
            }
        }
        for party in &mut parties {
            if let Some(session) = party.session.as_mut()
                && now >= party.timeout
            {
                session.handle_input(Input::Timeout, now).expect("timeout");
            }
        }
        if now >= next_tick {
            let at = now - t0;
            // Joins and leaves happen on ticks; signalling tells everyone at once.
            for (i, m) in members.iter().enumerate() {
                if m.join <= at && m.leave.is_none_or(|l| at < l) && parties[i].session.is_none() {
                    let mut session =
                        Session::new(SessionConfig::new(m.ssrc), now).expect("session");
                    for (j, other) in members.iter().enumerate() {
                        if let Some(s) = parties[j].session.as_mut() {
                            session
                                .add_remote(RemoteParticipant::new(other.ssrc))
                                .expect("add remote");
                            s.add_remote(RemoteParticipant::new(m.ssrc))
                                .expect("add remote");
                        }
                    }
                    owners.insert(m.ssrc, i);
                    parties[i].session = Some(session);
                    parties[i].timeout = now;
                }
                if m.leave.is_some_and(|l| at >= l) && parties[i].session.is_some() {
                    parties[i].session = None;
                    owners.remove(&m.ssrc);
                    for party in &mut parties {
                        if let Some(s) = party.session.as_mut() {
                            assert!(s.remove_remote(m.ssrc));
                        }
                    }
                }
            }
            // Frame k holds the 10 ms before it is pushed; the frame pulled at t plays from t.
            let mic_at = at.saturating_sub(TICK);
            for (i, party) in parties.iter_mut().enumerate() {
                let Some(session) = party.session.as_mut() else {
                    party.heard.extend_from_slice(&silence);
                    continue;
                };
                let turn = turns
                    .iter()
                    .find(|t| t.who == i && t.from <= mic_at && mic_at < t.to);
                let mic = match turn {
                    Some(t) if frame > 0 => {
                        let start = samples(t.offset + (mic_at - t.from));
                        speech.get(start..start + FRAME_SAMPLES).unwrap_or(&silence)
                    }
                    _ => &silence,
                };
                session.push_audio(mic, now).expect("push");
                session.pull_audio(now, &mut scratch).expect("pull");
                party.heard.extend_from_slice(&scratch);
            }
            if frame % 10 == 0 {
                speakers.push((
                    at,
                    parties
                        .iter()
                        .map(|p| p.session.as_ref().and_then(Session::active_speaker))
                        .collect(),
                ));
            }
            frame += 1;
            next_tick += TICK;
        }
    }
    GroupCall {
        members: members.to_vec(),
        parties,
        speakers,
        wall: started.elapsed(),
        end,
        t_end: now,
    }
}

/// How well `turn`'s speech is heard by `listener`: the best correlation over the lags,
/// and the lag.
fn heard_turn(call: &GroupCall, speech: &[i16], turn: &Turn, listener: usize) -> (f64, Duration) {
    let len = samples(turn.to - turn.from);
    let source = &speech[samples(turn.offset)..samples(turn.offset) + len];
    let from = samples(turn.from);
    let heard = &call.parties[listener].heard;
    let window = &heard[from.min(heard.len())..(from + len + samples(MAX_LAG)).min(heard.len())];
    let (s, h) = (decimate(source, DECIMATE), decimate(window, DECIMATE));
    let max_lag = samples(MAX_LAG) / DECIMATE;
    let (lag, corr) = (0..max_lag)
        .map(|lag| (lag, correlation(&s, &h, lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("lags");
    (
        corr,
        Duration::from_secs_f64((lag * DECIMATE) as f64 / f64::from(SAMPLE_RATE)),
    )
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Checks that every present listener hears `turn` with at least `min`; returns the
/// correlations.
fn check_heard(call: &GroupCall, speech: &[i16], turn: &Turn, min: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for (listener, m) in call.members.iter().enumerate() {
        let present = m.join + secs(1.0) <= turn.from && m.leave.is_none_or(|l| l >= turn.to);
        if listener == turn.who || !present {
            continue;
        }
        let (corr, lag) = heard_turn(call, speech, turn, listener);
        assert!(
            corr >= min,
            "listener {listener} hears {} at {:?} with correlation {corr:.3} (lag {lag:?})",
            turn.who,
            turn.from
        );
        out.push(corr);
    }
    out
}

/// The active speaker every present participant shows at `at`.
fn speakers_at(call: &GroupCall, at: Duration) -> &[Option<u32>] {
    &call
        .speakers
        .iter()
        .find(|(t, _)| *t >= at)
        .expect("speaker sample")
        .1
}

fn summary(call: &GroupCall, name: &str) {
    let simulated = call.end.as_secs_f64();
    println!(
        "{name}: simulated {simulated:.1} s in {:.2} s ({:.2}x real time, test profile)",
        call.wall.as_secs_f64(),
        simulated / call.wall.as_secs_f64()
    );
}

#[test]
fn four_party_call_turns_overlap_leave_and_rejoin() {
    let speech = speech();
    let members = [
        Member {
            ssrc: 0xA,
            join: Duration::ZERO,
            leave: None,
        },
        Member {
            ssrc: 0xB,
            join: Duration::ZERO,
            leave: None,
        },
        Member {
            ssrc: 0xC,
            join: Duration::ZERO,
            leave: None,
        },
        Member {
            ssrc: 0xD,
            join: Duration::ZERO,
            leave: Some(secs(11.0)),
        },
        // D rejoins with a new SSRC.
        Member {
            ssrc: 0xD2,
            join: secs(12.0),
            leave: None,
        },
    ];
    let turn = |who, from: f64, offset: f64| Turn {
        who,
        from: secs(from),
        to: secs(from + 2.0),
        offset: secs(offset),
    };
    let turns = [
        turn(0, 1.0, 0.0),
        turn(1, 3.0, 2.5),
        turn(2, 5.0, 5.0),
        turn(3, 7.0, 7.5),
        // Three at once.
        turn(0, 9.0, 2.5),
        turn(1, 9.0, 5.0),
        turn(2, 9.0, 7.5),
        // The rejoined D.
        turn(4, 13.5, 0.0),
    ];
    let call = run(&members, &turns, secs(16.0), "good", &speech);
    summary(&call, "4-party good");
    for t in &turns[..4] {
        let c = check_heard(&call, &speech, t, MIN_ALONE);
        println!(
            "turn of {} at {:?}: heard with correlation {c:.3?}",
            t.who, t.from
        );
        // Everyone shows the speaker as active by the end of its turn (its own session
        // names itself by its local SSRC).
        let shown = speakers_at(&call, t.to - Duration::from_millis(50));
        for (i, s) in shown.iter().enumerate() {
            if call.members[i].leave.is_none_or(|l| l > t.to) && call.members[i].join <= t.from {
                assert_eq!(
                    *s,
                    Some(call.members[t.who].ssrc),
                    "participant {i} at {:?}",
                    t.to
                );
            }
        }
    }
    // A control: other speech than what was said correlates poorly.
    let wrong = Turn {
        offset: secs(0.0),
        ..turns[1]
    };
    let (control, _) = heard_turn(&call, &speech, &wrong, 0);
    println!("control (other speech): {control:.3}");
    assert!(control < 0.3);
    for t in &turns[4..7] {
        let c = check_heard(&call, &speech, t, MIN_TOGETHER);
        println!(
            "overlapping turn of {}: heard with correlation {c:.3?}",
            t.who
        );
    }
    let c = check_heard(&call, &speech, &turns[7], MIN_ALONE);
    println!("rejoined D heard with correlation {c:.3?}");

    // Volume events: during B's turn, A sees B loud and C quiet.
    let a = &call.parties[0];
    let volumes = |ssrc: u32, from: f64, to: f64| -> Vec<u8> {
        a.events
            .iter()
            .filter(|(t, _)| *t >= secs(from) && *t < secs(to))
            .filter_map(|(_, e)| match e {
                Event::RemoteVolume { ssrc: s, volume } if *s == ssrc => Some(*volume),
                _ => None,
            })
            .collect()
    };
    let b_loud = volumes(0xB, 3.5, 5.0);
    let c_quiet = volumes(0xC, 3.5, 5.0);
    println!("A sees B {b_loud:?}, C {c_quiet:?} during B's turn");
    assert!(b_loud.len() >= 2 && b_loud.iter().all(|&v| v >= 50));
    assert!(!c_quiet.is_empty() && c_quiet.iter().all(|&v| v < b_loud[0]));
    // Leaving: A saw D's audio go, and D2's come.
    assert!(
        a.events
            .iter()
            .any(|(t, e)| *t >= secs(11.0)
                && matches!(e, Event::RemoteAudioUnavailable { ssrc: 0xD }))
    );
    assert!(
        a.events
            .iter()
            .any(|(t, e)| *t >= secs(12.0)
                && matches!(e, Event::RemoteAudioAvailable { ssrc: 0xD2 }))
    );
    // Per-remote statistics at the end: three remotes, each good.
    let session = a.session.as_ref().expect("A present");
    let end = call.t_end;
    let stats = session.stats(end);
    assert_eq!(stats.remotes, 3);
    assert_eq!(stats.refused_packets, 0);
    let remotes: Vec<_> = session.remote_stats(end).collect();
    for r in &remotes {
        println!(
            "A's view of {:#x}: quality {:?}, MOS {:?}, RTT {:?}, loss {:.3}/{:.3}, jitter buffer {:.1} ms, e2e {:.1} ms",
            r.ssrc,
            r.quality,
            r.mos,
            r.rtt,
            r.receive_loss_before_recovery,
            r.receive_loss_after_recovery,
            r.jitter_buffer_delay * 1000.0,
            r.end_to_end_delay * 1000.0
        );
        assert!(r.declared);
        assert!(matches!(
            r.quality,
            NetworkQuality::Excellent | NetworkQuality::Good
        ));
        assert!(r.mos.is_some_and(|m| m > 3.6));
        assert!(r.rtt.is_some());
    }
    assert!(
        a.events
            .iter()
            .any(|(_, e)| matches!(e, Event::RemoteStats(r) if r.ssrc == 0xB))
    );
}

#[test]
fn sixteen_party_call_everyone_hears_the_speakers() {
    let speech = speech();
    let members: Vec<Member> = (0..16)
        .map(|i| Member {
            ssrc: 0x100 + i,
            join: Duration::ZERO,
            leave: None,
        })
        .collect();
    let turns = [
        Turn {
            who: 0,
            from: secs(1.0),
            to: secs(3.0),
            offset: secs(0.0),
        },
        Turn {
            who: 7,
            from: secs(3.0),
            to: secs(5.0),
            offset: secs(2.5),
        },
        Turn {
            who: 15,
            from: secs(5.0),
            to: secs(7.0),
            offset: secs(5.0),
        },
    ];
    let call = run(&members, &turns, secs(7.5), "good", &speech);
    summary(&call, "16-party good");
    for t in &turns {
        let c = check_heard(&call, &speech, t, MIN_ALONE);
        let min = c.iter().copied().fold(1.0, f64::min);
        println!(
            "turn of {}: heard by {} with correlation min {min:.3}",
            t.who,
            c.len()
        );
        assert_eq!(c.len(), 15);
        let shown = speakers_at(&call, t.to - Duration::from_millis(50));
        assert!(
            shown.iter().all(|s| *s == Some(members[t.who].ssrc)),
            "{shown:x?}"
        );
    }
    for (i, party) in call.parties.iter().enumerate() {
        let session = party.session.as_ref().expect("present");
        let stats = session.stats(call.t_end);
        assert_eq!(stats.remotes, 15, "participant {i}");
        assert_eq!(stats.bad_datagrams, 0);
        assert_eq!(stats.dropped_outputs, 0);
    }
}
