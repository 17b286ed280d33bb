//! `tincan sim` with video: every participant's session carries its camera (the synthetic
//! moving pattern or a Y4M file) and decodes every remote's. Checks, on small pictures
//! (320×180) and short calls to keep the debug build quick: each direction shows pictures
//! near the cameras' rate, nothing freezes over `good`, the Y4M files of what each saw
//! have the right size and one frame per picture shown, the report and the page carry the
//! video figures, and a 4-party call with audio and video decodes every remote.

mod common;

use std::io::Read;

use common::{arg, read_json, run_tincan, scratch_dir};

/// Parses a Y4M file's header (width, height) and counts its frames.
fn y4m_frames(path: &std::path::Path) -> (u32, u32, u64) {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .expect("y4m")
        .read_to_end(&mut bytes)
        .expect("read");
    let header_end = bytes.iter().position(|&b| b == b'\n').expect("header");
    let header = std::str::from_utf8(&bytes[..header_end]).expect("text");
    let tag = |t: char| -> u32 {
        header
            .split(' ')
            .find_map(|f| f.strip_prefix(t))
            .expect("tag")
            .parse()
            .expect("number")
    };
    let (w, h) = (tag('W'), tag('H'));
    let frame = 6 + (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) as usize;
    let body = bytes.len() - header_end - 1;
    assert_eq!(body % frame, 0, "{}: a cut frame", path.display());
    (w, h, (body / frame) as u64)
}

#[test]
fn a_one_to_one_video_call_shows_every_picture_without_freezes() {
    let dir = scratch_dir("sim-video-1to1");
    let seconds = 6.0;
    run_tincan([
        "sim",
        "--quiet",
        "--media",
        "video",
        "--resolution",
        "320x180",
        "--fps",
        "30",
        "--duration",
        "6",
        // 30 fps at 320×180 from the start (the ladder's 30 fps rung wants 250 kbit/s
        // beside audio; the sessions do not probe, so from 300 kbit/s it takes a while).
        "--start-kbps",
        "600",
        "--save-video",
        "--out",
        arg(&dir),
    ]);
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["config"]["media"], "video");
    let directions = report["directions"].as_array().expect("directions");
    assert_eq!(directions.len(), 2);
    for d in directions {
        let v = &d["video"];
        let shown = v["frames_shown"].as_u64().expect("frames_shown");
        let fps = v["fps"].as_f64().expect("fps");
        eprintln!(
            "{}→{}: {shown} pictures, {fps:.1} fps, first at {} s, {} freezes, {}",
            d["from"], d["to"], v["first_frame_s"], v["freeze_count"], v["resolution"]
        );
        // 180 pictures pushed; the first takes a keyframe's trip, the last may be in flight.
        assert!(
            shown as f64 >= 0.9 * 30.0 * seconds,
            "{}→{}: {shown} pictures",
            d["from"],
            d["to"]
        );
        assert!((27.0..=33.0).contains(&fps), "{fps} fps");
        assert_eq!(v["freeze_count"], 0, "{v}");
        assert_eq!(v["resolution"], "320x180");
        assert!(v["first_frame_s"].as_f64().expect("first") < 0.5);
        // The session decoded what the simulator was shown.
        assert!(v["frames_decoded"].as_u64().expect("decoded") >= shown);
        let file = v["y4m"].as_str().expect("y4m name");
        let (w, h, frames) = y4m_frames(&dir.join(file));
        assert_eq!((w, h), (320, 180), "{file}");
        assert_eq!(frames, shown, "{file}");
        // The series carry the video figures.
        let points = d["remote_stats"]["points"].as_array().expect("points");
        assert!(
            points
                .iter()
                .any(|p| p["video_fps"].as_f64().unwrap_or(0.0) > 20.0),
            "no frame rate in the series"
        );
    }
    for p in report["participants"].as_array().expect("participants") {
        let pushed = p["video"]["pictures_pushed"].as_u64().expect("pushed");
        assert_eq!(pushed, 180, "{p}");
        assert!(p["final_stats"]["video_send_bps"].as_u64().expect("bps") > 50_000);
    }
    let page = std::fs::read_to_string(dir.join("report.html")).expect("page");
    assert!(page.contains("Video frame rate per direction"));
    assert!(page.contains("seen-1-from-2.y4m"));
    let tsv = std::fs::read_to_string(dir.join("summary.tsv")).expect("tsv");
    assert!(tsv.lines().next().expect("header").contains("video_fps"));
}

#[test]
fn a_four_party_call_with_audio_and_video_decodes_every_remote() {
    let dir = scratch_dir("sim-video-4party");
    run_tincan([
        "sim",
        "--quiet",
        "-n",
        "4",
        "--media",
        "both",
        "--resolution",
        "320x180",
        "--fps",
        "15",
        "--duration",
        "4",
        "--out",
        arg(&dir),
    ]);
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["config"]["media"], "both");
    let directions = report["directions"].as_array().expect("directions");
    assert_eq!(directions.len(), 12);
    for d in directions {
        let v = &d["video"];
        let shown = v["frames_shown"].as_u64().expect("frames_shown");
        assert!(shown >= 45, "{}→{}: {shown} pictures", d["from"], d["to"]);
        assert!(v["y4m"].is_null(), "no Y4M unless asked");
    }
    // Audio still flows: participant 1 speaks from 1 s to 4 s.
    let heard = directions
        .iter()
        .filter(|d| d["from"] == 1)
        .filter(|d| {
            d["mouth_to_ear"]["heard_windows"].as_u64().unwrap_or(0) >= 1
                && d["mouth_to_ear"]["mean_correlation"]
                    .as_f64()
                    .unwrap_or(0.0)
                    > 0.5
        })
        .count();
    assert_eq!(heard, 3, "participant 1's speech heard by everyone");
    assert!(!dir.join("seen-1-from-2.y4m").exists());
}

#[test]
fn a_y4m_camera_is_played_and_bad_video_options_are_refused() {
    let dir = scratch_dir("sim-video-y4m");
    // A 2-picture Y4M camera at 160x96: the sender loops it.
    let (w, h) = (160usize, 96usize);
    let mut y4m = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for k in 0..2u8 {
        y4m.extend_from_slice(b"FRAME\n");
        y4m.extend((0..w * h).map(|i| ((i % w) as u8).wrapping_mul(3).wrapping_add(k * 40)));
        y4m.extend(std::iter::repeat_n(128u8, 2 * (w / 2) * (h / 2)));
    }
    let camera = dir.join("camera.y4m");
    std::fs::write(&camera, y4m).expect("write");
    let spec = format!("1={}", camera.display());
    run_tincan([
        "sim",
        "--quiet",
        "--media",
        "both",
        "--camera",
        spec.as_str(),
        "--resolution",
        "320x180",
        "--duration",
        "3",
        "--start-kbps",
        "600",
        "--save-video",
        "--out",
        arg(&dir),
    ]);
    let report = read_json(&dir.join("report.json"));
    let one = &report["participants"][0]["video"]["camera"];
    assert!(
        one.as_str().expect("camera").contains("camera.y4m"),
        "{one}"
    );
    let (w2, h2, frames) = y4m_frames(&dir.join("seen-2-from-1.y4m"));
    assert_eq!((w2, h2), (160, 96));
    let shown = report["directions"]
        .as_array()
        .expect("directions")
        .iter()
        .find(|d| d["from"] == 1)
        .expect("1→2")["video"]["frames_shown"]
        .as_u64()
        .expect("shown");
    assert_eq!(frames, shown);
    assert!(shown > 60, "{shown}");
    let (w1, h1, _) = y4m_frames(&dir.join("seen-1-from-2.y4m"));
    assert_eq!((w1, h1), (320, 180));

    for bad in [
        ["--media", "both", "--resolution", "320"],
        ["--media", "audio", "--camera", "1=synthetic"],
        ["--media", "both", "--camera", "3=synthetic"],
        ["--media", "both", "--camera", "1=/nonexistent.y4m"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tincan"))
            .args(["sim", "--quiet", "--duration", "1", "--out"])
            .arg(&dir)
            .args(bad)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}

/// From the default start of 300 kbit/s, only the bandwidth probes (padding on the RTX
/// stream) show the controller that `good` carries 720p: without them it stopped at 1.5
/// times what the encoder sent and the call stayed at 640×360.
#[test]
fn a_call_started_low_probes_its_way_to_720p() {
    let dir = scratch_dir("sim-video-probe");
    run_tincan([
        "sim",
        "--quiet",
        "--media",
        "both",
        "--resolution",
        "1280x720",
        "--duration",
        "14",
        "--out",
        arg(&dir),
    ]);
    let report = read_json(&dir.join("report.json"));
    for d in report["directions"].as_array().expect("directions") {
        let v = &d["video"];
        assert_eq!(
            v["resolution"], "1280x720",
            "{}→{}: {v}",
            d["from"], d["to"]
        );
        assert_eq!(v["freeze_count"], 0, "{v}");
    }
    let points = report["participants"][0]["stats"]["points"]
        .as_array()
        .expect("points");
    let last = points.last().expect("a point");
    assert!(
        last["send_bps"].as_u64().expect("rate") > 1_200_000,
        "{last}"
    );
}
