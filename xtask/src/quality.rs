//! `cargo xtask quality [DIR]`: scores the decoded speech of `tincan lab loss` with PESQ-WB
//! and STOI (xtask/quality/score.py) in a Python venv at `target/quality-venv`; a directory
//! of `tincan lab denoise` (its manifest says `"kind": "denoise"`) goes to
//! xtask/quality/score_denoise.py instead, which adds DNSMOS when the optional packages of
//! xtask/quality/requirements-dnsmos.txt install.
//!
//! The venv is created once, with the pinned packages of xtask/quality/requirements.txt from
//! PyPI (the only network access), and reused while it imports them and the requirements
//! file is unchanged. Python itself, its `venv` module, its headers and a C compiler (pip
//! builds `pesq` from source) come from apt like the other system packages.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{TaskResult, has_passwordless_sudo, is_root, run_in, workspace_root};

const LAB_HINT: &str = "run `cargo run -p tincan-cli -- lab loss` first";

/// What score.py imports; the venv is reused while this succeeds.
const IMPORTS: &str = "import pesq, pystoi, numpy, scipy";

/// Copy of requirements.txt written after a successful install, to notice a changed pin.
const STAMP: &str = ".tincan-requirements";

#[cfg(windows)]
const PYTHON: &str = "python";
#[cfg(not(windows))]
const PYTHON: &str = "python3";

/// `cargo xtask quality [DIR] [--jobs N]`: DIR defaults to `target/lab-loss`; other
/// arguments go to score.py.
pub(crate) fn quality(args: &[String]) -> TaskResult {
    let root = workspace_root();
    let mut dir = None;
    let mut extra: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--jobs" || arg == "-j" {
            extra.push("--jobs");
            extra.extend(args.next().map(String::as_str));
        } else if arg.starts_with('-') {
            extra.push(arg);
        } else if dir.is_none() {
            dir = Some(PathBuf::from(arg));
        } else {
            return Err(format!(
                "unexpected argument {arg}\nusage: cargo xtask quality [DIR] [--jobs N]"
            ));
        }
    }
    let dir = match dir {
        // Relative to where the command was started (cargo run keeps that directory).
        Some(dir) if dir.is_relative() => env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(dir),
        Some(dir) => dir,
        None => root.join("target").join("lab-loss"),
    };
    if !dir.is_dir() {
        return Err(format!("no lab output at {}: {LAB_HINT}", dir.display()));
    }
    if !dir.join("manifest.json").is_file() {
        return Err(format!("no manifest.json in {}: {LAB_HINT}", dir.display()));
    }
    let denoise = is_denoise_manifest(&dir.join("manifest.json"))?;
    let python = ensure_venv(&root)?;
    if denoise {
        ensure_dnsmos(&root, &python);
    }
    let python = python.to_string_lossy();
    let script_name = if denoise {
        "score_denoise.py"
    } else {
        "score.py"
    };
    let script = root.join("xtask").join("quality").join(script_name);
    let script = script.to_string_lossy();
    let dir = dir.to_string_lossy();
    let mut score_args = vec![script.as_ref(), dir.as_ref()];
    score_args.extend(extra);
    run_in(&root, &python, &score_args, &[])
}

/// Whether a lab manifest is `tincan lab denoise`'s: its top-level `"kind"` is `"denoise"`
/// (xtask has no JSON parser; the lab writes the key first, and the loss lab has no `kind`).
fn is_denoise_manifest(path: &Path) -> Result<bool, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(at) = text.find("\"kind\"") else {
        return Ok(false);
    };
    let rest = text[at + "\"kind\"".len()..].trim_start();
    Ok(rest
        .strip_prefix(':')
        .is_some_and(|value| value.trim_start().starts_with("\"denoise\"")))
}

/// What score_denoise.py imports for DNSMOS.
const DNSMOS_IMPORTS: &str = "import speechmos.dnsmos";

/// Installs the optional DNSMOS packages once per version of requirements-dnsmos.txt. A
/// failure is remembered (so that every run does not retry the download) and only reported:
/// the scorer then says DNSMOS is unavailable.
fn ensure_dnsmos(root: &Path, python: &Path) {
    let quality = root.join("xtask").join("quality");
    let requirements_path = quality.join("requirements-dnsmos.txt");
    let Ok(requirements) = fs::read_to_string(&requirements_path) else {
        return;
    };
    let stamp = root
        .join("target")
        .join("quality-venv")
        .join(".tincan-dnsmos");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == requirements) {
        return;
    }
    if python_ok(python, &["-c", DNSMOS_IMPORTS]) {
        let _ = fs::write(&stamp, &requirements);
        return;
    }
    eprintln!(
        "xtask: installing the optional DNSMOS packages ({})",
        requirements_path.display()
    );
    let requirements_arg = requirements_path.to_string_lossy();
    let constraints = quality.join("requirements.txt");
    let constraints_arg = constraints.to_string_lossy();
    let installed = run_in(
        root,
        &python.to_string_lossy(),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            requirements_arg.as_ref(),
            "-c",
            constraints_arg.as_ref(),
        ],
        &[
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
            ("PIP_NO_INPUT", "1"),
        ],
    );
    if installed.is_err() || !python_ok(python, &["-c", DNSMOS_IMPORTS]) {
        eprintln!(
            "xtask: DNSMOS is unavailable (the packages did not install); scoring PESQ-WB and STOI only"
        );
    }
    // Remembered either way: a failed install is not retried until the file changes.
    let _ = fs::write(&stamp, &requirements);
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Runs `python args`, quietly, and says whether it succeeded.
fn python_ok(python: &Path, args: &[&str]) -> bool {
    Command::new(python)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Returns the venv's python, creating the venv and installing the requirements if needed.
fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target").join("quality-venv");
    let python = venv_python(&venv);
    let requirements_path = root.join("xtask").join("quality").join("requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("{}: {e}", requirements_path.display()))?;
    let stamp = venv.join(STAMP);
    let stamp_matches = fs::read_to_string(&stamp).is_ok_and(|s| s == requirements);
    if stamp_matches && python_ok(&python, &["-c", IMPORTS]) {
        return Ok(python);
    }
    ensure_system_python()?;
    // A venv whose interpreter or pip no longer works (Python upgraded, interrupted
    // creation) is rebuilt; a working one only gets the requirements (re)installed.
    if !python_ok(&python, &["-m", "pip", "--version"]) {
        if venv.exists() {
            eprintln!("xtask: rebuilding the unusable venv {}", venv.display());
            fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
        }
        let venv_arg = venv.to_string_lossy();
        run_in(root, PYTHON, &["-m", "venv", venv_arg.as_ref()], &[])?;
    }
    let requirements_arg = requirements_path.to_string_lossy();
    run_in(
        root,
        &python.to_string_lossy(),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            requirements_arg.as_ref(),
        ],
        &[
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
            ("PIP_NO_INPUT", "1"),
        ],
    )?;
    if !python_ok(&python, &["-c", IMPORTS]) {
        return Err(format!(
            "the venv {} cannot `{IMPORTS}` after installing {}",
            venv.display(),
            requirements_path.display()
        ));
    }
    fs::write(&stamp, &requirements).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(python)
}

/// Makes sure python3 can create a venv and pip can build `pesq` (a C extension shipped as
/// source only): installs what is missing with apt, or says exactly how.
fn ensure_system_python() -> TaskResult {
    let mut missing: Vec<(&str, &str)> = Vec::new();
    let python = Path::new(PYTHON);
    if !python_ok(python, &["--version"]) {
        missing.push(("python3", "runs xtask/quality/score.py"));
        missing.push(("python3-venv", "`python3 -m venv` for target/quality-venv"));
        missing.push(("python3-dev", "Python's headers, to build pesq"));
    } else {
        // Debian moves ensurepip, which `python3 -m venv` needs, to python3-venv.
        if !python_ok(python, &["-c", "import venv, ensurepip"]) {
            missing.push(("python3-venv", "`python3 -m venv` for target/quality-venv"));
        }
        let has_headers = "import os, sysconfig; \
            raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))";
        if !python_ok(python, &["-c", has_headers]) {
            missing.push(("python3-dev", "Python's headers, to build pesq"));
        }
    }
    let has_compiler = ["cc", "gcc"].iter().any(|cc| {
        Command::new(cc)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !has_compiler {
        missing.push(("gcc", "a C compiler, to build pesq"));
    }
    if missing.is_empty() {
        return Ok(());
    }
    for (name, why) in &missing {
        eprintln!("xtask: missing {name}: {why}");
    }
    let list = missing
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(" ");
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err(format!(
            "not a Debian-like system: install Python 3 with its venv module and headers, and a C compiler (Debian: {list}), then run this command again."
        ));
    }
    let (program, mut base): (&str, Vec<&str>) = if is_root() {
        ("apt-get", vec![])
    } else if has_passwordless_sudo() {
        ("sudo", vec!["apt-get"])
    } else {
        return Err(format!(
            "system packages are missing and this user cannot install them.\nRun:\n    sudo apt-get update && sudo apt-get install -y {list}\nthen run this command again."
        ));
    };
    let root = workspace_root();
    let apt_env = [("DEBIAN_FRONTEND", "noninteractive")];
    let mut update = base.clone();
    update.extend(["update", "-q"]);
    run_in(&root, program, &update, &apt_env)?;
    base.extend(["install", "-y", "-q", "--no-install-recommends"]);
    base.extend(missing.iter().map(|(name, _)| *name));
    run_in(&root, program, &base, &apt_env)
}
