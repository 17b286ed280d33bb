//! Interop with GStreamer over loopback UDP, both directions:
//! `rtph264pay`/`rtpopuspay` → our depacketizers, and our packetizers →
//! `rtph264depay`/`rtpopusdepay`.
//!
//! Beyond the payload bytes, the decoded media is checked end to end: our Opus and H.264
//! RTP decoded by `opusdec` and `avdec_h264` (or `openh264dec`), and GStreamer's
//! `opusenc`/`x264enc` (or `openh264enc`) RTP decoded by our decoders, compared with the
//! source audio and pictures.
//!
//! Each test skips (passes, with a message on stderr) when `gst-launch-1.0` or one of the
//! GStreamer elements it needs is missing: install `gstreamer1.0-tools`,
//! `gstreamer1.0-plugins-base` (opusenc, opusdec, audiotestsrc, videotestsrc),
//! `gstreamer1.0-plugins-good` (RTP, rtpjitterbuffer, wavenc, y4menc),
//! `gstreamer1.0-libav` (avdec_h264) and `gstreamer1.0-plugins-ugly` (x264enc).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tincan_codec::h264::{H264Config, H264Decoder, H264Encoder};
use tincan_codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use tincan_codec::{AudioDecoder, AudioEncoder, EncodeRequest, VideoDecoder, VideoEncoder};
use tincan_media::quality::{compare_aligned, rms, tone_frequency};
use tincan_media::source::{TestPattern, ToneSource, read_frame_counter};
use tincan_media::y4m::Y4mReader;
use tincan_media::{AudioFormat, Channels, Resolution, Sample, VideoFrame};
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

/// The first of `elements` GStreamer has, checked quietly (for codecs with alternatives).
fn first_element<'a>(elements: &[&'a str]) -> Option<&'a str> {
    elements.iter().copied().find(|element| {
        Command::new("gst-inspect-1.0")
            .arg(element)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A running gst-launch-1.0, killed when dropped (a failed assertion never leaves it behind).
struct Pipeline(Child);

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn launch(pipeline: &str) -> Pipeline {
    Pipeline(
        Command::new("gst-launch-1.0")
            .arg("-q")
            .arg("-e")
            .args(pipeline.split_whitespace())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits for the pipeline to exit, interrupting it (EOS with `-e`) first if `interrupt`.
fn finish(mut pipeline: Pipeline, interrupt: bool) {
    let child = &mut pipeline.0;
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
    send_rtp_paced(port, payload_type, packets, Duration::from_micros(300));
}

/// [`send_rtp`] with `gap` between packets.
fn send_rtp_paced(port: u16, payload_type: u8, packets: &[(Vec<u8>, bool, u32)], gap: Duration) {
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
        std::thread::sleep(gap);
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

/// The packet facts a depacketizer takes, from a parsed RTP packet.
fn info_of(rtp: &RtpPacket<'_>) -> PacketInfo {
    PacketInfo {
        sequence: rtp.sequence_number().0,
        timestamp: rtp.timestamp().0,
        marker: rtp.marker(),
    }
}

fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s.to_f32()).collect()
}

/// Our encoder's access units for `count` test-pattern frames, each with its source frame.
fn h264_frames_and_units(resolution: Resolution, count: usize) -> Vec<(VideoFrame, Vec<u8>)> {
    let mut encoder = H264Encoder::new(H264Config {
        resolution: Some(resolution),
        bitrate_bps: 1_000_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut pattern = TestPattern::new(resolution, 30);
    (0..count)
        .map(|i| {
            let frame = pattern.next_frame();
            let mut out = Vec::new();
            encoder
                .encode(&frame, EncodeRequest::default(), &mut out)
                .unwrap();
            // At 1 Mbit/s for 320x180 the rate control never skips a frame.
            assert!(!out.is_empty(), "encoder skipped frame {i}");
            (frame, out)
        })
        .collect()
}

/// Every frame of a Y4M file.
fn read_y4m(path: &Path) -> (Resolution, Vec<VideoFrame>) {
    let mut reader = Y4mReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame().unwrap() {
        frames.push(frame);
    }
    (reader.resolution(), frames)
}

#[test]
fn our_opus_rtp_decoded_by_gstreamer_opusdec() {
    let elements = [
        "udpsrc",
        "rtpjitterbuffer",
        "rtpopusdepay",
        "opusdec",
        "audioconvert",
        "wavenc",
        "filesink",
    ];
    if !gstreamer_has(&elements) {
        return;
    }
    // 2 s of three tones in 20 ms frames.
    let mut tone = ToneSource::multi(
        AudioFormat::MONO_48K,
        &[(330.0, 0.25), (1250.0, 0.15), (3100.0, 0.08)],
    );
    let config = OpusConfig::new(48_000, Channels::Mono).with_bitrate(64_000);
    let mut encoder = OpusEncoder::new(&config).unwrap();
    let mut source = Vec::new();
    let mut opus = Vec::new();
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        let frame = tone.next_frame(960);
        let len = encoder.encode(frame.samples(), &mut buf).unwrap();
        opus.push(buf[..len].to_vec());
        source.extend(to_f32(frame.samples()));
    }
    // Our own decode of the same packets: the reference for GStreamer's.
    let mut decoder = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut pcm = vec![0i16; 5760];
    let mut ours = Vec::new();
    for packet in &opus {
        let n = decoder.decode(packet, &mut pcm).unwrap();
        ours.extend(to_f32(&pcm[..n]));
    }

    let dir = scratch_dir("opusdec");
    let out = dir.join("out.wav");
    let port = free_port();
    let child = launch(&format!(
        "udpsrc port={port} caps={OPUS_CAPS} ! rtpjitterbuffer ! rtpopusdepay ! opusdec \
         ! audioconvert ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
         ! wavenc ! filesink location={}",
        out.display()
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

    let wav = tincan_media::wav::read_wav(&out).unwrap();
    assert_eq!(wav.format(), AudioFormat::MONO_48K);
    let theirs = to_f32(wav.samples());
    eprintln!("opusdec: {} samples, ours {}", theirs.len(), ours.len());
    let vs_ours = compare_aligned(&ours, &theirs, 960);
    let vs_source = compare_aligned(&source, &theirs, 960);
    eprintln!("opusdec vs our decode: {vs_ours:?}; vs source: {vs_source:?}");
    assert!(
        theirs.len().abs_diff(ours.len()) <= 960,
        "opusdec produced {} samples, we decoded {}",
        theirs.len(),
        ours.len()
    );
    // Both are libopus; measured: lag 0, correlation 0.999999999999, SNR 115 dB (a stray
    // 1-LSB rounding difference, opusdec decodes in float), and the same 96 000 samples.
    assert_eq!(vs_ours.lag, 0, "opusdec output is shifted: {vs_ours:?}");
    assert!(vs_ours.correlation >= 0.9999, "{vs_ours:?}");
    assert!(vs_ours.snr_db >= 60.0, "{vs_ours:?}");
    // Measured at 64 kbit/s: correlation 0.990 (SNR 17 dB) with the source, 158 samples late.
    assert!(vs_source.correlation >= 0.95, "{vs_source:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_h264_rtp_decoded_by_gstreamer() {
    if !gstreamer_has(&[
        "udpsrc",
        "rtpjitterbuffer",
        "rtph264depay",
        "y4menc",
        "filesink",
    ]) {
        return;
    }
    let Some(decoder_name) = first_element(&["avdec_h264", "openh264dec"]) else {
        eprintln!(
            "skipping GStreamer interop: neither avdec_h264 (gstreamer1.0-libav) \
             nor openh264dec found"
        );
        return;
    };
    // With direct rendering, avdec_h264 (1.22) hands y4menc its padded decode buffers
    // (336x224 planes for 320x180) and y4menc writes the padding into each frame.
    let decoder = if decoder_name == "avdec_h264" {
        "avdec_h264 direct-rendering=false"
    } else {
        decoder_name
    };
    let resolution = Resolution::new(320, 180).unwrap();
    let coded = h264_frames_and_units(resolution, 30);
    let dir = scratch_dir("h264dec");
    let out = dir.join("out.y4m");
    let port = free_port();
    let child = launch(&format!(
        "udpsrc port={port} caps={H264_CAPS} ! rtpjitterbuffer ! rtph264depay ! {decoder} \
         ! video/x-raw,format=I420 ! y4menc ! filesink location={}",
        out.display()
    ));
    wait_until_bound(port);
    let mut packetizer = H264Packetizer::new(1200).unwrap();
    let mut payloads = PayloadPackets::new();
    let mut packets = Vec::new();
    for (i, (_, unit)) in coded.iter().enumerate() {
        packetizer.packetize(unit, &mut payloads).unwrap();
        for (payload, marker) in payloads.iter() {
            packets.push((payload.to_vec(), marker, 3000 * i as u32));
        }
    }
    // A millisecond apart (a few hundred ms in all): a loaded machine's udpsrc keeps up.
    send_rtp_paced(port, 96, &packets, Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(500));
    finish(child, true);

    // Our own decode of the same access units. H.264 decoding is bit-exact, so GStreamer's
    // pictures must be identical to ours, not merely close.
    let mut ours = H264Decoder::new().unwrap();
    let mut picture = VideoFrame::black(Resolution::new(2, 2).unwrap());
    let our_pictures: Vec<VideoFrame> = coded
        .iter()
        .map(|(_, unit)| {
            assert!(ours.decode_into(unit, &mut picture).unwrap());
            picture.clone()
        })
        .collect();

    let (decoded_resolution, decoded) = read_y4m(&out);
    assert_eq!(decoded_resolution, resolution);
    assert_eq!(decoded.len(), coded.len(), "{decoder_name} dropped frames");
    let mut worst = f64::INFINITY;
    for (i, (picture, (source, _))) in decoded.iter().zip(&coded).enumerate() {
        assert_eq!(read_frame_counter(picture), Some(i as u64), "frame {i}");
        for plane in 0..3 {
            assert_eq!(
                picture.psnr(&our_pictures[i], plane),
                Some(f64::INFINITY),
                "frame {i} plane {plane} differs from our decode"
            );
        }
        let psnr = picture.psnr(source, 0).unwrap();
        // Measured: 46.2 dB at worst (1 Mbit/s); identical to our own decode, above.
        assert!(psnr >= 35.0, "frame {i}: luma PSNR {psnr:.1} dB");
        worst = worst.min(psnr);
    }
    eprintln!(
        "{decoder_name}: {} frames, worst luma PSNR {worst:.1} dB",
        decoded.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gstreamer_opusenc_rtp_decoded_by_ours() {
    if !gstreamer_has(&["audiotestsrc", "opusenc", "rtpopuspay", "udpsink"]) {
        return;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    // 2 s of a 440 Hz sine at half scale, 20 ms per buffer.
    let child = launch(&format!(
        "audiotestsrc freq=440 volume=0.5 num-buffers=100 samplesperbuffer=960 \
         ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! opusenc bitrate=64000 \
         ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={port} sync=false"
    ));
    let packets = receive_all(&socket);
    finish(child, false);

    let mut depacketizer = OpusDepacketizer::new();
    let mut decoder = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut pcm = vec![0i16; 5760];
    let mut decoded = Vec::new();
    for packet in &packets {
        let rtp = RtpPacket::parse(packet).unwrap();
        assert_eq!(rtp.payload_type(), 111);
        let opus = depacketizer.push(rtp.payload(), info_of(&rtp)).unwrap();
        assert_eq!(opus.lost_before, 0);
        let n = decoder.decode(opus.data, &mut pcm).unwrap();
        decoded.extend(to_f32(&pcm[..n]));
    }
    eprintln!(
        "opusenc: {} packets, {} samples",
        packets.len(),
        decoded.len()
    );
    assert!(packets.len() >= 99, "{} packets", packets.len());
    // Past the codec's start-up, the tone's pitch and level.
    let steady = &decoded[4800..decoded.len() - 960];
    let frequency = tone_frequency(steady, 48_000).unwrap();
    let level = rms(steady);
    eprintln!("decoded tone: {frequency:.2} Hz, rms {level:.4}");
    assert!((frequency - 440.0).abs() <= 2.0, "{frequency} Hz");
    let expected = 0.5 / std::f64::consts::SQRT_2;
    let level_db = 20.0 * (level / expected).log10();
    // Measured: 440.00 Hz and rms 0.3536 (0.0 dB off), from 101 packets (opusenc pads
    // the last one at end of stream).
    assert!(level_db.abs() <= 0.5, "level {level_db:.2} dB off");
}

#[test]
fn gstreamer_h264_rtp_decoded_by_ours() {
    if !gstreamer_has(&[
        "videotestsrc",
        "tee",
        "queue",
        "y4menc",
        "rtph264pay",
        "udpsink",
    ]) {
        return;
    }
    let Some(encoder) = first_element(&["x264enc", "openh264enc"]) else {
        eprintln!(
            "skipping GStreamer interop: neither x264enc (gstreamer1.0-plugins-ugly) \
             nor openh264enc found"
        );
        return;
    };
    let encode = if encoder == "x264enc" {
        // No B-frames or look-ahead; constrained baseline, as a call would send.
        "x264enc tune=zerolatency speed-preset=ultrafast bitrate=1500 \
         ! video/x-h264,stream-format=byte-stream,profile=constrained-baseline"
    } else {
        "openh264enc bitrate=1500000 ! video/x-h264,stream-format=byte-stream"
    };
    let dir = scratch_dir("h264enc");
    let source_path = dir.join("source.y4m");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    // The source pictures go to a Y4M file as well as to the encoder.
    let child = launch(&format!(
        "videotestsrc pattern=ball num-buffers=30 \
         ! video/x-raw,width=320,height=180,format=I420,framerate=30/1 ! tee name=t \
         t. ! queue ! y4menc ! filesink location={} \
         t. ! queue ! {encode} ! rtph264pay pt=96 mtu=1200 config-interval=-1 \
         ! udpsink host=127.0.0.1 port={port} sync=false",
        source_path.display()
    ));
    let packets = receive_all(&socket);
    finish(child, false);

    let mut depacketizer = H264Depacketizer::new();
    let mut decoder = H264Decoder::new().unwrap();
    let mut picture = VideoFrame::black(Resolution::new(2, 2).unwrap());
    let mut decoded = Vec::new();
    for packet in &packets {
        let rtp = RtpPacket::parse(packet).unwrap();
        assert_eq!(rtp.payload_type(), 96);
        assert!(rtp.payload().len() <= 1200);
        if let Some(frame) = depacketizer.push(rtp.payload(), info_of(&rtp)).unwrap() {
            assert!(frame.complete);
            if decoder.decode_into(frame.data, &mut picture).unwrap() {
                decoded.push(picture.clone());
            }
        }
    }
    decoded.extend(decoder.flush().unwrap());

    let (resolution, source) = read_y4m(&source_path);
    assert_eq!(resolution, Resolution::new(320, 180).unwrap());
    assert_eq!(source.len(), 30);
    assert_eq!(
        decoded.len(),
        source.len(),
        "decoded {} frames",
        decoded.len()
    );
    let mut worst = f64::INFINITY;
    for (i, (picture, source)) in decoded.iter().zip(&source).enumerate() {
        assert_eq!(picture.resolution(), resolution);
        let psnr = picture.psnr(source, 0).unwrap();
        // Measured with x264enc at 1.5 Mbit/s: 70.4 dB at worst (the ball on black is easy).
        assert!(psnr >= 30.0, "frame {i}: luma PSNR {psnr:.1} dB");
        let chroma = picture
            .psnr(source, 1)
            .unwrap()
            .min(picture.psnr(source, 2).unwrap());
        assert!(chroma >= 30.0, "frame {i}: chroma PSNR {chroma:.1} dB");
        worst = worst.min(psnr);
    }
    eprintln!(
        "{encoder} → ours: {} frames, worst luma PSNR {worst:.1} dB",
        decoded.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
