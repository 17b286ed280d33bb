//! `cargo xtask <task>`: the project's set-up and automation, in Rust so it runs wherever cargo does.
//!
//! Every task first makes sure the system packages the build needs are present: it installs
//! them with apt when it can (root, or password-less sudo) and otherwise prints the exact
//! command to run and stops.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod quality;

/// Debian packages the workspace needs to build and test, with why.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[
    (
        "cmake",
        "builds the bundled libopus (with DRED) for the opus crate",
    ),
    (
        "nasm",
        "assembles OpenH264's SIMD kernels (about twice as fast)",
    ),
    ("pkg-config", "finds libdav1d"),
    (
        "libdav1d-dev",
        "AV1 decoding (dav1d 1.0 headers and library)",
    ),
    ("g++", "builds OpenH264 and libFuzzer"),
    (
        "gstreamer1.0-tools",
        "gst-launch-1.0, the real RTP peer of the interop tests",
    ),
    (
        "gstreamer1.0-plugins-good",
        "GStreamer's RTP payloaders and depayloaders (rtpopuspay, rtph264pay, ...)",
    ),
    (
        "gstreamer1.0-plugins-base",
        "opusenc, opusdec, audiotestsrc, videotestsrc for the interop tests",
    ),
    (
        "gstreamer1.0-libav",
        "avdec_h264, GStreamer's decoder of our H.264 in the interop tests",
    ),
    (
        "gstreamer1.0-plugins-ugly",
        "x264enc, the independent H.264 encoder of the interop tests",
    ),
];

/// Targets whose C library logs every rejected input to stderr (dav1d, with no way to
/// silence it through the binding), which would bury the fuzzer's report in megabytes.
const CHATTY_FUZZ_TARGETS: &[&str] = &["av1_decode", "depay_av1"];

/// Seconds each fuzz target runs in the CI smoke run.
const FUZZ_SMOKE_SECONDS: u32 = 10;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  deps          install what is missing (system packages; cargo-fuzz with --fuzz)
  test          deps, then every test of the workspace
  demo          deps, then the main job: `tincan sim` on a 1:1 call over good and over
                lossy-20 and a 4-party call over 4g (release build), with a summary table
  bench         deps, then every criterion bench
  fuzz [SECS]   deps, then every fuzz target for SECS seconds each (default 60)
  ci            what .ci/run does: fmt check, clippy -D warnings, rustdoc -D warnings, tests,
                benches compiled, a short fuzz run of every target
  quality [DIR] score the speech of `tincan lab loss` (default DIR target/lab-loss) with
                PESQ-WB and STOI in a Python venv (target/quality-venv, from PyPI); a
                `tincan lab denoise` DIR gets PESQ-WB, STOI and DNSMOS when it installs
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("deps") => ensure_deps(args.iter().any(|a| a == "--fuzz")),
        Some("test") => ensure_deps(false).and_then(|()| test()),
        Some("demo") => ensure_deps(false).and_then(|()| demo(&args[1..])),
        Some("bench") => ensure_deps(false).and_then(|()| cargo(&["bench", "--workspace"])),
        Some("fuzz") => {
            let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
            ensure_deps(true).and_then(|()| fuzz(seconds))
        }
        Some("ci") => ci(),
        Some("quality") => quality::quality(&args[1..]),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type TaskResult = Result<(), String>;

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs a command in `dir`, echoing it, and fails on a non-zero exit.
fn run_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> TaskResult {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn cargo(args: &[&str]) -> TaskResult {
    run_in(&workspace_root(), &cargo_bin(), args, &[])
}

/// Tests run and failed, summed over the `test result:` lines of cargo test.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TestCount {
    passed: u64,
    failed: u64,
}

impl TestCount {
    /// Adds the counts of one `test result: ok. 12 passed; 0 failed; …` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                _ => {}
            }
        }
    }
}

/// Runs cargo test with `args`, echoing its output, and counts the tests it ran.
fn cargo_test_counting(args: &[&str], count: &mut TestCount) -> TaskResult {
    use std::io::{BufRead, BufReader};
    let cargo = cargo_bin();
    eprintln!("$ {cargo} {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {cargo}: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            count.add_line(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("{cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn has_passwordless_sudo() -> bool {
    Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn has_cargo_subcommand(name: &str) -> bool {
    Command::new(cargo_bin())
        .args([name, "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Installs missing system packages (and cargo-fuzz when `fuzz`), or says exactly how.
fn ensure_deps(fuzz: bool) -> TaskResult {
    let has_dpkg = Command::new("dpkg-query").arg("--version").output().is_ok();
    if has_dpkg {
        let missing: Vec<&str> = SYSTEM_PACKAGES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !is_installed(name))
            .collect();
        if !missing.is_empty() {
            for (name, why) in SYSTEM_PACKAGES.iter().filter(|(n, _)| missing.contains(n)) {
                eprintln!("xtask: missing {name}: {why}");
            }
            let list = missing.join(" ");
            let prefix = if is_root() {
                Some(vec![])
            } else if has_passwordless_sudo() {
                Some(vec!["sudo"])
            } else {
                None
            };
            let Some(prefix) = prefix else {
                return Err(format!(
                    "system packages are missing and this user cannot install them.\nRun:\n    sudo apt-get update && sudo apt-get install -y {list}\nthen run this command again."
                ));
            };
            let root = workspace_root();
            let apt_env = [("DEBIAN_FRONTEND", "noninteractive")];
            let (program, base) = match prefix.first() {
                Some(sudo) => (*sudo, vec!["apt-get"]),
                None => ("apt-get", vec![]),
            };
            let mut update = base.clone();
            update.extend(["update", "-q"]);
            run_in(&root, program, &update, &apt_env)?;
            let mut install = base;
            install.extend(["install", "-y", "-q", "--no-install-recommends"]);
            install.extend(missing.iter().copied());
            run_in(&root, program, &install, &apt_env)?;
        }
    } else {
        eprintln!(
            "xtask: not a Debian-like system; make sure these are installed: {}",
            SYSTEM_PACKAGES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if fuzz && !has_cargo_subcommand("fuzz") {
        cargo(&["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

const TEST_RUNS: [&[&str]; 2] = [
    &["test", "--workspace", "--all-targets"],
    &["test", "--workspace", "--doc"],
];

/// Runs every test and closes with one plain summary line over all of them.
fn test() -> TaskResult {
    let mut count = TestCount::default();
    for args in TEST_RUNS {
        cargo_test_counting(args, &mut count)?;
    }
    println!("tests: {} passed, {} failed", count.passed, count.failed);
    Ok(())
}

/// The showcase of `cargo xtask demo`: (folder, participants, profile, simulated seconds,
/// media, the controllers' start rate in kbit/s). Video calls start at 1000 kbit/s, as an
/// application wanting 640×360 at 30 fps configures it: the sessions do not probe yet.
const DEMO_CALLS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("1to1-good", "2", "good", "30", "both", "1000"),
    ("1to1-lossy-20", "2", "lossy-20", "30", "both", "1000"),
    ("4party-4g", "4", "4g", "33", "both", "1000"),
];

/// One line of a `summary.tsv` that `tincan sim` writes: a direction of a call.
struct DemoDirection {
    from: String,
    to: String,
    m2e_median_ms: Option<f64>,
    loss_before: Option<f64>,
    loss_after: Option<f64>,
    mos: Option<f64>,
    times_real_time: Option<f64>,
    /// Pictures per second shown (`None` in an audio call).
    video_fps: Option<f64>,
    video_freezes: Option<f64>,
    /// The last picture's size, `WxH`.
    video_resolution: Option<String>,
}

/// Reads `summary.tsv` (header, then one tab-separated line per direction).
fn read_summary(path: &Path) -> Result<Vec<DemoDirection>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("{}: no column {name}", path.display()))
    };
    let (from, to, m2e, before, after, mos, speed) = (
        column("from")?,
        column("to")?,
        column("m2e_median_ms")?,
        column("loss_before_recovery")?,
        column("loss_after_recovery")?,
        column("mos")?,
        column("times_real_time")?,
    );
    // Video columns: absent from reports of before video.
    let (fps, freezes, resolution) = (
        column("video_fps").ok(),
        column("video_freezes").ok(),
        column("video_resolution").ok(),
    );
    let number =
        |cell: Option<&&str>| cell.and_then(|c| c.trim_end_matches('%').parse::<f64>().ok());
    Ok(lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            DemoDirection {
                from: cells.get(from).unwrap_or(&"?").to_string(),
                to: cells.get(to).unwrap_or(&"?").to_string(),
                m2e_median_ms: number(cells.get(m2e)),
                loss_before: number(cells.get(before)),
                loss_after: number(cells.get(after)),
                mos: number(cells.get(mos)),
                times_real_time: number(cells.get(speed)),
                video_fps: fps.and_then(|c| number(cells.get(c))),
                video_freezes: freezes.and_then(|c| number(cells.get(c))),
                video_resolution: resolution
                    .and_then(|c| cells.get(c))
                    .filter(|r| **r != "-")
                    .map(|r| r.to_string()),
            }
        })
        .collect())
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The main job: `tincan sim` (release) on the showcase calls, then one summary table.
/// Extra arguments go to every call (e.g. `--seed 3`).
fn demo(extra: &[String]) -> TaskResult {
    cargo(&["build", "--release", "--quiet", "-p", "tincan-cli"])?;
    let root = workspace_root();
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release").join("tincan");
    let binary = binary.to_string_lossy().into_owned();
    let mut rows = Vec::new();
    for (name, participants, profile, seconds, media, start_kbps) in DEMO_CALLS {
        let out = target.join("demo").join(name);
        let out_arg = out.to_string_lossy().into_owned();
        let mut args = vec![
            "sim",
            "--participants",
            participants,
            "--profile",
            profile,
            "--duration",
            seconds,
            "--media",
            media,
            "--start-kbps",
            start_kbps,
            "--out",
            out_arg.as_str(),
        ];
        args.extend(extra.iter().map(String::as_str));
        run_in(&root, &binary, &args, &[])?;
        let directions = read_summary(&out.join("summary.tsv"))?;
        rows.push((*participants, *profile, directions, out.join("report.html")));
    }
    println!();
    println!(
        "{:<6} {:<9} {:<44} {:>8} {:>8} {:>5} {:>5} {:>7} {:>9} {:>7}  report",
        "people",
        "profile",
        "mouth-to-ear median (measured)",
        "before",
        "after",
        "MOS",
        "fps",
        "freezes",
        "picture",
        "speed"
    );
    for (participants, profile, directions, report) in &rows {
        let m2e: Vec<String> = directions
            .iter()
            .map(|d| {
                let ms = d
                    .m2e_median_ms
                    .map_or_else(|| "-".into(), |v| format!("{v:.0}"));
                format!("{}>{} {ms}", d.from, d.to)
            })
            .collect();
        let percent = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}%"));
        // Wrap the per-direction delays, four to a line.
        let chunks: Vec<String> = m2e.chunks(4).map(|c| c.join(", ")).collect();
        for (k, chunk) in chunks.iter().enumerate() {
            if k == 0 {
                let freezes: Option<f64> = directions
                    .iter()
                    .map(|d| d.video_freezes)
                    .sum::<Option<f64>>();
                println!(
                    "{:<6} {:<9} {:<44} {:>8} {:>8} {:>5} {:>5} {:>7} {:>9} {:>7}  {}",
                    participants,
                    profile,
                    chunk,
                    percent(mean(directions.iter().map(|d| d.loss_before))),
                    percent(mean(directions.iter().map(|d| d.loss_after))),
                    mean(directions.iter().map(|d| d.mos))
                        .map_or_else(|| "-".into(), |v| format!("{v:.2}")),
                    mean(directions.iter().map(|d| d.video_fps))
                        .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
                    freezes.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
                    directions
                        .iter()
                        .find_map(|d| d.video_resolution.as_deref())
                        .unwrap_or("-"),
                    directions
                        .first()
                        .and_then(|d| d.times_real_time)
                        .map_or_else(|| "-".into(), |v| format!("{v:.1}x")),
                    report.display()
                );
            } else {
                println!("{:<6} {:<9} {chunk}", "", "");
            }
        }
    }
    println!(
        "\nmouth-to-ear: median over 1 s speech windows, from the audio (ms); loss before and \
         after recovery, MOS and video fps: mean over the directions; freezes: all directions; \
         picture: size of the last picture shown; speed: times real time."
    );
    Ok(())
}

fn fuzz_targets() -> Result<Vec<String>, String> {
    let dir = workspace_root().join("fuzz");
    let out = Command::new(cargo_bin())
        .args(["fuzz", "list"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn fuzz(seconds: u32) -> TaskResult {
    let dir = workspace_root().join("fuzz");
    let cargo = cargo_bin();
    // `-s none`: no sanitizer, which works on stable Rust (AddressSanitizer needs nightly flags).
    run_in(&dir, &cargo, &["fuzz", "build", "-s", "none"], &[])?;
    let max_time = format!("-max_total_time={seconds}");
    for target in fuzz_targets()? {
        // New inputs go to the (ignored) corpus; the committed seeds are only read.
        let corpus = dir.join("corpus").join(&target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let corpus = corpus.to_string_lossy().into_owned();
        let seeds = dir.join("seeds").join(&target);
        let seeds = seeds.is_dir().then(|| seeds.to_string_lossy().into_owned());
        let mut args = vec![
            "fuzz",
            "run",
            "-s",
            "none",
            target.as_str(),
            corpus.as_str(),
        ];
        args.extend(seeds.as_deref());
        args.extend(["--", max_time.as_str(), "-rss_limit_mb=4096"]);
        if CHATTY_FUZZ_TARGETS.contains(&target.as_str()) {
            // libFuzzer keeps its own report on a duplicate of stderr; reproduce a crash
            // without this flag to see the library's messages.
            args.push("-close_fd_mask=2");
        }
        let started = Instant::now();
        run_in(&dir, &cargo, &args, &[])?;
        eprintln!(
            "xtask: fuzz target {target}: {:.0} s without a crash",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn ci() -> TaskResult {
    let started = Instant::now();
    ensure_deps(true)?;
    let root = workspace_root();
    let cargo_bin = cargo_bin();
    let step = |name: &str, args: &[&str], envs: &[(&str, &str)]| -> TaskResult {
        let at = Instant::now();
        eprintln!("xtask ci: {name}");
        run_in(&root, &cargo_bin, args, envs)?;
        eprintln!("xtask ci: {name} ok in {}", minutes(at.elapsed()));
        Ok(())
    };
    step("format", &["fmt", "--all", "--", "--check"], &[])?;
    step(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    step(
        "docs",
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    let at = Instant::now();
    eprintln!("xtask ci: tests");
    let mut count = TestCount::default();
    for args in TEST_RUNS {
        cargo_test_counting(args, &mut count)?;
    }
    eprintln!("xtask ci: tests ok in {}", minutes(at.elapsed()));
    step(
        "benches compile",
        &["bench", "--workspace", "--no-run"],
        &[],
    )?;
    fuzz(FUZZ_SMOKE_SECONDS)?;
    eprintln!("xtask ci: all green in {}", minutes(started.elapsed()));
    // One plain closing line over every test run, for whoever reads the end of the log.
    println!("ci: {} passed, {} failed", count.passed, count.failed);
    Ok(())
}

fn minutes(elapsed: Duration) -> String {
    format!("{}m{:02}s", elapsed.as_secs() / 60, elapsed.as_secs() % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cargo_test_result_lines() {
        let mut count = TestCount::default();
        count.add_line("test result: ok. 23 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.05s");
        count.add_line(
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out",
        );
        count.add_line("running 5 tests");
        count.add_line("test opus::tests::passed ... ok");
        assert_eq!(
            count,
            TestCount {
                passed: 26,
                failed: 2
            }
        );
    }
}
