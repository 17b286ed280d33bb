//! `tincan lab video-loss`: H.264 video through loss conditions (skeleton, being built).

use clap::Args;

use super::LabError;

/// Options of `tincan lab video-loss`.
#[derive(Args, Debug)]
pub struct VideoLossArgs {}

/// Runs the lab.
///
/// # Errors
///
/// A lab that could not run.
pub fn run(_args: &VideoLossArgs) -> Result<(), LabError> {
    Err("tincan lab video-loss: not built yet".into())
}
