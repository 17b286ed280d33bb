//! The `tincan` command.
//!
//! `tincan sim` is the main job: a whole call of 2 to 16 participants over emulated
//! networks, faster than real time, with what each heard and a report (`docs/SIM.md`).
//! `tincan demo` runs every codec on real and synthetic media and prints quality and speed.
//! `tincan lab …` runs measurement labs (`tincan lab jitter`: the audio jitter buffer over
//! emulated networks). A later issue adds `serve`.

mod call;
mod demo;
mod lab;
mod serve;
mod sim;
mod svg;

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
    /// Measurement labs: engine crates over emulated networks, with tables and JSON.
    Lab(lab::LabArgs),
    /// Simulate a whole call of 2 to 16 participants over emulated networks, faster than
    /// real time: WAVs of what each said and heard, a JSON and HTML report.
    Sim(sim::SimArgs),
    /// Run the signalling server standalone (WebSocket and HTTP endpoints; docs/SERVER.md).
    Serve(serve::ServeArgs),
    /// Mint a login token for a user with the server secret.
    Token(serve::TokenArgs),
    /// Place (or join) a call through a server, media over UDP; events as JSON lines.
    Call(call::CallArgs),
    /// Answer (or reject, or let ring) calls through a server; events as JSON lines.
    Answer(call::AnswerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Lab(args) => lab::run(&args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Sim(args) => sim::run(&args).map_err(Into::into),
        Command::Serve(args) => serve::run_serve(&args),
        Command::Token(args) => serve::run_token(&args),
        Command::Call(args) => call::run_call(&args),
        Command::Answer(args) => call::run_answer(&args),
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
