//! `tincan lab …`: measurement labs that run engine crates over emulated networks.
//!
//! Labs are sans-IO simulations: they drive the engine with made-up instants from a fixed
//! origin, so they run faster than real time and give the same figures on every run.

pub mod abr;
pub mod denoise;
pub mod fixed;
pub mod jitter;
pub mod loss;
pub mod metrics;
pub mod video_loss;

use clap::{Args, Subcommand};

/// Errors of a lab; `Send` so that scenarios can run on worker threads.
pub type LabError = Box<dyn std::error::Error + Send + Sync>;

/// Options of `tincan lab`.
#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

/// The labs.
#[derive(Subcommand, Debug)]
enum LabCommand {
    /// Adaptive audio jitter buffer against fixed-delay buffers and the hindsight oracle,
    /// with real Opus speech over netsim profiles.
    Jitter(jitter::JitterArgs),
    /// Speech through loss conditions with each audio recovery scheme, decoded to WAVs and a
    /// manifest for `cargo xtask quality`.
    Loss(loss::LossArgs),
    /// H.264 video through loss conditions and outages with NACK/RTX, FlexFEC and keyframe
    /// requests: freezes, frames decoded and recovery overhead.
    VideoLoss(video_loss::VideoLossArgs),
    /// Speech mixed with noise at several SNRs, before and after voice processing, for
    /// `cargo xtask quality`.
    Denoise(denoise::DenoiseArgs),
    /// Congestion control on the RMCAT evaluation cases over a netsim bottleneck: rate,
    /// utilisation, queuing delay, loss, reaction times and fairness per flow.
    Abr(abr::AbrArgs),
}

/// Runs the lab asked for.
///
/// # Errors
///
/// A lab that could not run, or (with `--check`) a criterion that failed.
pub fn run(args: &LabArgs) -> Result<(), LabError> {
    match &args.command {
        LabCommand::Jitter(args) => jitter::run(args),
        LabCommand::Loss(args) => loss::run(args),
        LabCommand::VideoLoss(args) => video_loss::run(args),
        LabCommand::Denoise(args) => denoise::run(args),
        LabCommand::Abr(args) => abr::run(args),
    }
}
