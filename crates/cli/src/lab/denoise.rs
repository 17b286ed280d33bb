//! `tincan lab denoise`: speech in noise through voice processing (skeleton, being built).

use clap::Args;

use super::LabError;

/// Options of `tincan lab denoise`.
#[derive(Args, Debug)]
pub struct DenoiseArgs {}

/// Runs the lab.
///
/// # Errors
///
/// A lab that could not run.
pub fn run(_args: &DenoiseArgs) -> Result<(), LabError> {
    Err("tincan lab denoise: not built yet".into())
}
