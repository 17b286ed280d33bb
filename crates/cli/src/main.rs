//! The `tincan` command.
//!
//! `tincan demo` is the main job until the call simulator lands: it runs every codec on real
//! and synthetic media and prints quality and speed. Later issues add `sim`, `lab …` and `serve`.

mod demo;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tincan",
    version,
    about = "tincan: an open real-time call media engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode and decode a speech fixture and a synthetic video with every codec; print quality and speed.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tincan: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where the repository's fixtures are when running from a checkout.
fn default_fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}
