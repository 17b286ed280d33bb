//! The one error type of the crate.

use std::path::PathBuf;

/// Why a configuration or profile was rejected.
///
/// Field names are given as they appear in a profile file (for example `gilbert_elliott.p`
/// or `outages[2].duration_ms`), so a user can find the bad line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetsimError {
    /// [`Profile::named`](crate::Profile::named) was given a name it does not know.
    #[error("unknown network profile {name:?} (known: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// A probability was outside `0..=1` or not a number.
    #[error("{field} = {value} is not a probability in 0..=1")]
    InvalidProbability {
        /// The field, as spelled in a profile file.
        field: String,
        /// The rejected value.
        value: f64,
    },
    /// A duration was negative, not finite, or longer than a day.
    #[error("{field} = {value} ms is not a duration in 0..=86400000 ms")]
    InvalidDuration {
        /// The field, as spelled in a profile file.
        field: String,
        /// The rejected value, in milliseconds.
        value: f64,
    },
    /// A capacity was not a finite number of at least 1 bit per second.
    #[error("{field} = {value} bit/s is not a capacity of at least 1 bit/s")]
    InvalidCapacity {
        /// The field, as spelled in a profile file.
        field: String,
        /// The rejected value, in bits per second.
        value: f64,
    },
    /// The Pareto shape of delay spikes was not a finite number above zero.
    #[error("spike_shape = {value} must be a finite number above 0")]
    InvalidSpikeShape {
        /// The rejected value.
        value: f64,
    },
    /// A queue limit or packet limit was zero, which would drop every packet.
    #[error("{field} = 0 would drop every packet; omit it for no limit")]
    ZeroLimit {
        /// The field, as spelled in a profile file.
        field: String,
    },
    /// The capacity trace was not sorted by time.
    #[error("capacity_trace[{index}].at_ms = {at_ms} comes before the step above it")]
    TraceNotSorted {
        /// Index of the first out-of-order step.
        index: usize,
        /// Its time, in milliseconds.
        at_ms: f64,
    },
    /// The delay trace was not sorted by time.
    #[error("delay_trace[{index}].at_ms = {at_ms} comes before the step above it")]
    DelayTraceNotSorted {
        /// Index of the first out-of-order step.
        index: usize,
        /// Its time, in milliseconds.
        at_ms: f64,
    },
    /// `reorder_probability` was set on a link that does not allow reordering.
    #[error(
        "reorder_probability = {value} needs allow_reorder = true (an in-order link cannot reorder)"
    )]
    ReorderNotAllowed {
        /// The rejected probability.
        value: f64,
    },
    /// A TOML profile could not be parsed.
    #[error("bad TOML profile: {source}")]
    Toml {
        /// The parser's error, with line and column.
        #[from]
        source: toml::de::Error,
    },
    /// A JSON profile could not be parsed.
    #[error("bad JSON profile: {source}")]
    Json {
        /// The parser's error, with line and column.
        #[from]
        source: serde_json::Error,
    },
    /// A profile file could not be read.
    #[error("cannot read profile file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A profile file's name ends in neither `.toml` nor `.json`.
    #[error("profile file {path} must end in .toml or .json")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}
