//! `tincan lab abr` (skeleton, issue 7).

use clap::Args;

use super::LabError;

/// Options of `tincan lab abr`.
#[derive(Args, Debug)]
pub struct AbrArgs {}

/// Runs the congestion lab.
///
/// # Errors
///
/// Not built yet.
pub fn run(_args: &AbrArgs) -> Result<(), LabError> {
    Err("lab abr: not built yet".into())
}
