//! What the lab integration tests share: a scratch directory per test, running the
//! `tincan` binary, and reading the JSON it writes.

#![allow(dead_code)] // each test binary uses its own subset

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh scratch directory for one test (process id in the name, so parallel test
/// binaries do not collide).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tincan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A speech fixture's path.
pub fn speech_fixture(file: &str) -> String {
    format!(
        "{}/../../fixtures/speech/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `path` as an argument (test paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs `tincan` with `args`, fails the test (with both outputs) unless it succeeds, prints
/// and returns its standard output.
pub fn run_tincan<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(args)
        .output()
        .expect("run tincan");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "lab failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
    stdout
}

/// The JSON file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("JSON file")).expect("valid JSON")
}
