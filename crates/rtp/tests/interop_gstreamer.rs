//! Interop with GStreamer over loopback UDP, both directions:
//! `rtph264pay`/`rtpopuspay` → our depacketizers, and our packetizers →
//! `rtph264depay`/`rtpopusdepay`.
//!
//! Each test skips (passes, with a message on stderr) when `gst-launch-1.0` or one of the
//! GStreamer elements it needs is missing: install `gstreamer1.0-tools` and
//! `gstreamer1.0-plugins-good`.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tincan_codec::h264::{H264Config, H264Encoder};
use tincan_codec::opus::{OpusConfig, OpusEncoder};
use tincan_codec::{AudioEncoder, EncodeRequest, VideoEncoder};
use tincan_media::source::{TestPattern, ToneSource};
use tincan_media::{AudioFormat, Channels, Resolution};
use tincan_rtp::RtpPacket;
use tincan_rtp::RtpPacketBuilder;
use tincan_rtp::payload::h264::{H264Depacketizer, H264Packetizer, annex_b_nal_units};
use tincan_rtp::payload::opus::OpusDepacketizer;
use tincan_rtp::payload::{PacketInfo, PayloadPackets};

const H264_CAPS: &str =
    "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96";
const OPUS_CAPS: &str =
    "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111";

/// Whether gst-launch-1.0 and every element in `elements` exist; says why not if not.
fn gstreamer_has(elements: &[&str]) -> bool {
    let launch = Command::new("gst-launch-1.0")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !launch.is_ok_and(|s| s.success()) {
        eprintln!(
            "skipping GStreamer interop: gst-launch-1.0 not found \
             (install gstreamer1.0-tools and gstreamer1.0-plugins-good)"
        );
        return false;
    }
    for element in elements {
        let found = Command::new("gst-inspect-1.0")
            .arg(element)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !found.is_ok_and(|s| s.success()) {
            eprintln!("skipping GStreamer interop: element {element} not found");
            return false;
        }
    }
    true
}

/// A fresh scratch directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-gst-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn launch(pipeline: &str) -> Child {
    Command::new("gst-launch-1.0")
        .arg("-q")
        .arg("-e")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit, interrupting it (EOS with `-e`) first if `interrupt`.
fn finish(mut child: Child, interrupt: bool) {
    if interrupt {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("gst-launch-1.0 did not exit");
}

/// Receives RTP packets: waits up to 30 s for the first (gst-launch may start slowly on
/// a loaded machine), then until none arrives for two seconds.
fn receive_all(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut buf = [0u8; 2048];
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    if let Ok(len) = socket.recv(&mut buf) {
        packets.push(buf[..len].to_vec());
    }
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    while let Ok(len) = socket.recv(&mut buf) {
        packets.push(buf[..len].to_vec());
    }
    packets
}

/// Waits until some process has bound UDP `port` (the pipeline's udpsrc is listening),
/// by reading /proc/net/udp rather than probing the port, which could steal it.
fn wait_until_bound(port: u16) {
    let needle = format!(":{port:04X} ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match std::fs::read_to_string("/proc/net/udp") {
            Ok(table) if table.lines().any(|line| line.contains(&needle)) => {
                // Bound happens on the way to PLAYING; give it a moment to get there.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => {
                // No /proc: fall back to a generous fixed wait.
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
        }
    }
    panic!("gst-launch-1.0 never bound UDP port {port}");
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `(payload, marker, timestamp)` as RTP to a GStreamer pipeline on `port`.
fn send_rtp(port: u16, payload_type: u8, packets: &[(Vec<u8>, bool, u32)]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = vec![0u8; 2048];
    for (i, (payload, marker, timestamp)) in packets.iter().enumerate() {
        let len = RtpPacketBuilder::new(payload_type, 1000 + i as u16, *timestamp, 0x7E57)
            .marker(*marker)
            .payload(payload)
            .write(&mut buf)
            .unwrap();
        socket.send_to(&buf[..len], ("127.0.0.1", port)).unwrap();
        // Paced, so the receiving socket buffer never overflows.
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn h264_access_units(count: usize) -> Vec<Vec<u8>> {
    let resolution = Resolution::new(320, 180).unwrap();
    let mut encoder = H264Encoder::new(H264Config {
        resolution: Some(resolution),
        ..H264Config::default()
    })
    .unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    let mut units = Vec::new();
    while units.len() < count {
        let mut out = Vec::new();
        encoder
            .encode(&pattern.next_frame(), EncodeRequest::default(), &mut out)
            .unwrap();
        if !out.is_empty() {
            units.push(out);
        }
    }
    units
}

fn opus_packets(count: usize) -> Vec<Vec<u8>> {
    let config = OpusConfig::new(48_000, Channels::Mono).with_bitrate(32_000);
    let mut encoder = OpusEncoder::new(&config).unwrap();
    let mut tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3);
    let mut packet = [0u8; 1500];
    (0..count)
        .map(|_| {
            let frame = tone.next_frame(960);
            let len = encoder.encode(frame.samples(), &mut packet).unwrap();
            packet[..len].to_vec()
        })
        .collect()
}

/// Writes each item to `dir/name%05d.ext`, the pattern multifilesrc reads one buffer per file from.
fn write_numbered(dir: &Path, name: &str, items: &[Vec<u8>]) -> String {
    for (i, item) in items.iter().enumerate() {
        std::fs::write(dir.join(format!("{name}{i:05}")), item).unwrap();
    }
    format!("{}/{name}%05d", dir.display())
}

fn all_nal_units(units: &[Vec<u8>]) -> Vec<Vec<u8>> {
    units
        .iter()
        .flat_map(|unit| annex_b_nal_units(unit).map(<[u8]>::to_vec))
        .collect()
}

#[test]
fn gstreamer_rtph264pay_to_our_depacketizer() {
    if !gstreamer_has(&["multifilesrc", "rtph264pay", "udpsink"]) {
        return;
    }
    let units = h264_access_units(10);
    let dir = scratch_dir("h264pay");
    let location = write_numbered(&dir, "au", &units);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let child = launch(&format!(
        "multifilesrc location={location} index=0 stop-index={} \
         caps=video/x-h264,stream-format=byte-stream,alignment=au,framerate=30/1 \
         ! rtph264pay mtu=1200 pt=96 ! udpsink host=127.0.0.1 port={port} sync=false",
        units.len() - 1
    ));
    let packets = receive_all(&socket);
    finish(child, false);

    // GStreamer fragmented the keyframe, so FU-A reassembly is covered.
    let fu_a = |p: &Vec<u8>| RtpPacket::parse(p).is_ok_and(|r| r.payload()[0] & 0x1F == 28);
    assert!(packets.iter().any(fu_a));
    let mut depacketizer = H264Depacketizer::new();
    let mut frames = Vec::new();
    for packet in &packets {
        let rtp = RtpPacket::parse(packet).unwrap();
        let info = PacketInfo {
            sequence: rtp.sequence_number().0,
            timestamp: rtp.timestamp().0,
            marker: rtp.marker(),
        };
        assert!(rtp.payload().len() <= 1200);
        if let Some(frame) = depacketizer.push(rtp.payload(), info).unwrap() {
            assert!(frame.complete);
            frames.push(frame.data.to_vec());
        }
    }
    assert_eq!(frames.len(), units.len());
    assert_eq!(all_nal_units(&frames), all_nal_units(&units));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_packetizer_to_gstreamer_rtph264depay() {
    if !gstreamer_has(&["udpsrc", "rtph264depay", "filesink"]) {
        return;
    }
    let units = h264_access_units(10);
    let dir = scratch_dir("h264depay");
    let out = dir.join("out.h264");
    let port = free_port();
    let child = launch(&format!(
        "udpsrc port={port} caps={H264_CAPS} ! rtph264depay \
         ! video/x-h264,stream-format=byte-stream ! filesink location={}",
        out.display()
    ));
    wait_until_bound(port);
    let mut packetizer = H264Packetizer::default();
    let mut payloads = PayloadPackets::new();
    let mut packets = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        packetizer.packetize(unit, &mut payloads).unwrap();
        for (payload, marker) in payloads.iter() {
            packets.push((payload.to_vec(), marker, 3000 * i as u32));
        }
    }
    // The keyframe's SPS and PPS went in a STAP-A and its slice in FU-As.
    assert!(packets.iter().any(|(p, _, _)| p[0] & 0x1F == 24));
    assert!(packets.iter().any(|(p, _, _)| p[0] & 0x1F == 28));
    send_rtp(port, 96, &packets);
    std::thread::sleep(Duration::from_millis(500));
    finish(child, true);
    let received = std::fs::read(&out).unwrap();
    assert_eq!(
        all_nal_units(&[received]),
        all_nal_units(&units),
        "rtph264depay rebuilt different NAL units"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gstreamer_rtpopuspay_to_our_depacketizer() {
    if !gstreamer_has(&["multifilesrc", "rtpopuspay", "udpsink"]) {
        return;
    }
    let opus = opus_packets(25);
    let dir = scratch_dir("opuspay");
    let location = write_numbered(&dir, "packet", &opus);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let child = launch(&format!(
        "multifilesrc location={location} index=0 stop-index={} \
         caps=audio/x-opus,channel-mapping-family=0,channels=1,rate=48000 \
         ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={port} sync=false",
        opus.len() - 1
    ));
    let packets = receive_all(&socket);
    finish(child, false);
    let mut depacketizer = OpusDepacketizer::new();
    let mut received = Vec::new();
    for packet in &packets {
        let rtp = RtpPacket::parse(packet).unwrap();
        let info = PacketInfo {
            sequence: rtp.sequence_number().0,
            timestamp: rtp.timestamp().0,
            marker: rtp.marker(),
        };
        let packet = depacketizer.push(rtp.payload(), info).unwrap();
        assert_eq!(packet.lost_before, 0);
        received.push(packet.data.to_vec());
    }
    assert_eq!(received, opus);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_opus_payloads_to_gstreamer_rtpopusdepay() {
    if !gstreamer_has(&["udpsrc", "rtpopusdepay", "multifilesink"]) {
        return;
    }
    let opus = opus_packets(25);
    let dir = scratch_dir("opusdepay");
    let port = free_port();
    let child = launch(&format!(
        "udpsrc port={port} caps={OPUS_CAPS} ! rtpopusdepay \
         ! multifilesink location={}/out%05d",
        dir.display()
    ));
    wait_until_bound(port);
    let packets: Vec<(Vec<u8>, bool, u32)> = opus
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let payload = tincan_rtp::payload::opus::packetize(p).unwrap().to_vec();
            (payload, i == 0, 960 * i as u32)
        })
        .collect();
    send_rtp(port, 111, &packets);
    std::thread::sleep(Duration::from_millis(500));
    finish(child, true);
    let received: Vec<Vec<u8>> = (0..opus.len())
        .map(|i| std::fs::read(dir.join(format!("out{i:05}"))).unwrap_or_default())
        .collect();
    assert_eq!(received, opus);
    let _ = std::fs::remove_dir_all(&dir);
}
