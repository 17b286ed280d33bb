//! The configuration of one direction of a network path.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::NetsimError;

/// Longest duration accepted anywhere in a configuration: one day, in milliseconds.
///
/// Bounding durations keeps every internal time far from `u64` nanosecond overflow.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;

/// One direction of a network path: every impairment, in the order they are applied.
///
/// Units are in the field names: `*_ms` are milliseconds (fractions allowed), `*_bps` are bits
/// per second, probabilities are in `0..=1`. Every field has a default (no impairment), so a
/// profile file names only what it changes; unknown fields are rejected so typos are caught.
/// `docs/NETSIM.md` describes each field in detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Independent (Bernoulli) loss probability, applied at entry. Default 0.
    pub loss: f64,
    /// Bursty loss by a two-state Gilbert-Elliott chain, applied at entry as well as `loss`
    /// (a packet survives only if both spare it). Default: none.
    pub gilbert_elliott: Option<GilbertElliott>,
    /// Windows (relative to the link's epoch) in which every packet sent is dropped.
    pub outages: Vec<Outage>,
    /// Bottleneck capacity in bits per second; `None` (the default) means no bottleneck.
    pub capacity_bps: Option<f64>,
    /// Capacity changes over time: from each step's `at_ms` on, its rate replaces the previous
    /// one (before the first step, `capacity_bps` applies). Must be sorted by `at_ms`.
    pub capacity_trace: Vec<CapacityStep>,
    /// Drop-tail limit on the bytes in the bottleneck (waiting or being serialised).
    pub queue_limit_bytes: Option<u64>,
    /// Drop-tail limit on the time a packet would wait before its serialisation starts.
    pub queue_limit_ms: Option<f64>,
    /// Propagation delay after the bottleneck. Default 0.
    pub delay_ms: f64,
    /// Propagation delay changes over time: a packet *sent* at or after a step's `at_ms`
    /// (relative to the link's epoch) gets that step's `delay_ms` as its base propagation
    /// delay instead of `delay_ms` (jitter, spikes and the reorder knob still add to it).
    /// Before the first step, `delay_ms` applies. Must be sorted by `at_ms`. On an in-order
    /// link (`allow_reorder = false`) a step down does not reorder: packets sent after it
    /// leave no earlier than those sent before it. Default: empty (no steps).
    pub delay_trace: Vec<DelayStep>,
    /// Standard deviation of normal jitter added to `delay_ms`, truncated at
    /// [`JITTER_SIGMAS`](crate::JITTER_SIGMAS) either side (the total is clamped at 0).
    pub jitter_ms: f64,
    /// Probability that a packet gets a heavy-tailed delay spike. Default 0.
    pub spike_probability: f64,
    /// Minimum (Pareto scale) of a spike's extra delay.
    pub spike_scale_ms: f64,
    /// Pareto tail index of spikes: smaller is heavier; at or below 1 the mean is infinite.
    /// Default 1.5.
    pub spike_shape: f64,
    /// Cap on one spike's extra delay. Default 2000 ms.
    pub spike_max_ms: f64,
    /// Whether packets may overtake each other. When false (the default) delivery times are
    /// made monotone: a packet never leaves before the one sent before it.
    pub allow_reorder: bool,
    /// Probability to hold a packet back by `reorder_delay_ms` extra, so that later packets
    /// overtake it. Requires `allow_reorder = true`. Default 0.
    pub reorder_probability: f64,
    /// Extra delay of a held-back packet. Default 0.
    pub reorder_delay_ms: f64,
    /// Probability that the network delivers a second copy of a packet (with its own delay).
    pub duplicate_probability: f64,
    /// Most packets the link holds at once (bounded memory); beyond it packets are dropped
    /// and counted in `dropped_overflow`. Default 100 000.
    pub max_in_flight_packets: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            gilbert_elliott: None,
            outages: Vec::new(),
            capacity_bps: None,
            capacity_trace: Vec::new(),
            queue_limit_bytes: None,
            queue_limit_ms: None,
            delay_ms: 0.0,
            delay_trace: Vec::new(),
            jitter_ms: 0.0,
            spike_probability: 0.0,
            spike_scale_ms: 0.0,
            spike_shape: 1.5,
            spike_max_ms: 2000.0,
            allow_reorder: false,
            reorder_probability: 0.0,
            reorder_delay_ms: 0.0,
            duplicate_probability: 0.0,
            max_in_flight_packets: 100_000,
        }
    }
}

/// A Gilbert-Elliott loss chain, stepped once per packet sent.
///
/// Each packet is lost with the current state's loss probability, then the chain moves:
/// good to bad with probability `p`, bad to good with probability `r`. The long-run share of
/// packets sent in the bad state is `p / (p + r)`; with `loss_bad = 1` and `loss_good = 0`
/// loss bursts are geometric with mean length `1 / r`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state after a packet.
    pub p: f64,
    /// Probability of moving from the bad to the good state after a packet.
    pub r: f64,
    /// Loss probability in the good state. Default 0.
    pub loss_good: f64,
    /// Loss probability in the bad state. Default 1.
    pub loss_bad: f64,
}

impl Default for GilbertElliott {
    fn default() -> Self {
        Self {
            p: 0.0,
            r: 1.0,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }
}

/// A scheduled outage: every packet sent in `[start_ms, start_ms + duration_ms)` is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outage {
    /// Start, relative to the link's epoch.
    pub start_ms: f64,
    /// Length of the window.
    pub duration_ms: f64,
}

/// One step of a capacity trace: from `at_ms` (relative to the epoch) the rate is `capacity_bps`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityStep {
    /// When the step takes effect.
    pub at_ms: f64,
    /// The new capacity, in bits per second.
    pub capacity_bps: f64,
}

/// One step of a delay trace: packets sent from `at_ms` (relative to the epoch) on have
/// `delay_ms` as their base propagation delay.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DelayStep {
    /// When the step takes effect (by the packet's send time).
    pub at_ms: f64,
    /// The new base propagation delay, in milliseconds.
    pub delay_ms: f64,
}

fn probability(field: &str, value: f64) -> Result<(), NetsimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(NetsimError::InvalidProbability {
            field: field.to_owned(),
            value,
        })
    }
}

fn duration(field: &str, value: f64) -> Result<(), NetsimError> {
    if (0.0..=MAX_DURATION_MS).contains(&value) {
        Ok(())
    } else {
        Err(NetsimError::InvalidDuration {
            field: field.to_owned(),
            value,
        })
    }
}

fn capacity(field: &str, value: f64) -> Result<(), NetsimError> {
    // At least 1 bit/s keeps serialisation times of any sane packet within a few years.
    if value.is_finite() && value >= 1.0 {
        Ok(())
    } else {
        Err(NetsimError::InvalidCapacity {
            field: field.to_owned(),
            value,
        })
    }
}

impl LinkConfig {
    /// The least delay any packet sent over this configuration can have: the lowest base
    /// delay (`delay_ms` and every `delay_trace` step) less the jitter's truncation
    /// ([`JITTER_SIGMAS`](crate::JITTER_SIGMAS) standard deviations), at least 0.
    /// Queueing, spikes, holds and the in-order rule only add to it.
    pub fn min_delay(&self) -> Duration {
        let base = self
            .delay_trace
            .iter()
            .map(|step| step.delay_ms)
            .fold(self.delay_ms, f64::min);
        let floor_ms = base - crate::JITTER_SIGMAS * self.jitter_ms;
        Duration::from_nanos(crate::link::ms_to_ns(floor_ms))
    }

    /// Checks every field; [`Link::new`](crate::Link::new) calls this.
    ///
    /// # Errors
    ///
    /// The first bad field, as a [`NetsimError`] naming it and its value.
    pub fn validate(&self) -> Result<(), NetsimError> {
        probability("loss", self.loss)?;
        if let Some(ge) = &self.gilbert_elliott {
            probability("gilbert_elliott.p", ge.p)?;
            probability("gilbert_elliott.r", ge.r)?;
            probability("gilbert_elliott.loss_good", ge.loss_good)?;
            probability("gilbert_elliott.loss_bad", ge.loss_bad)?;
        }
        for (i, o) in self.outages.iter().enumerate() {
            duration(&format!("outages[{i}].start_ms"), o.start_ms)?;
            duration(&format!("outages[{i}].duration_ms"), o.duration_ms)?;
        }
        if let Some(c) = self.capacity_bps {
            capacity("capacity_bps", c)?;
        }
        let mut previous = 0.0;
        for (i, step) in self.capacity_trace.iter().enumerate() {
            duration(&format!("capacity_trace[{i}].at_ms"), step.at_ms)?;
            capacity(
                &format!("capacity_trace[{i}].capacity_bps"),
                step.capacity_bps,
            )?;
            if step.at_ms < previous {
                return Err(NetsimError::TraceNotSorted {
                    index: i,
                    at_ms: step.at_ms,
                });
            }
            previous = step.at_ms;
        }
        if self.queue_limit_bytes == Some(0) {
            return Err(NetsimError::ZeroLimit {
                field: "queue_limit_bytes".into(),
            });
        }
        if let Some(ms) = self.queue_limit_ms {
            duration("queue_limit_ms", ms)?;
        }
        duration("delay_ms", self.delay_ms)?;
        let mut previous = 0.0;
        for (i, step) in self.delay_trace.iter().enumerate() {
            duration(&format!("delay_trace[{i}].at_ms"), step.at_ms)?;
            duration(&format!("delay_trace[{i}].delay_ms"), step.delay_ms)?;
            if step.at_ms < previous {
                return Err(NetsimError::DelayTraceNotSorted {
                    index: i,
                    at_ms: step.at_ms,
                });
            }
            previous = step.at_ms;
        }
        duration("jitter_ms", self.jitter_ms)?;
        probability("spike_probability", self.spike_probability)?;
        duration("spike_scale_ms", self.spike_scale_ms)?;
        if !(self.spike_shape.is_finite() && self.spike_shape > 0.0) {
            return Err(NetsimError::InvalidSpikeShape {
                value: self.spike_shape,
            });
        }
        duration("spike_max_ms", self.spike_max_ms)?;
        probability("reorder_probability", self.reorder_probability)?;
        if self.reorder_probability > 0.0 && !self.allow_reorder {
            return Err(NetsimError::ReorderNotAllowed {
                value: self.reorder_probability,
            });
        }
        duration("reorder_delay_ms", self.reorder_delay_ms)?;
        probability("duplicate_probability", self.duplicate_probability)?;
        if self.max_in_flight_packets == 0 {
            return Err(NetsimError::ZeroLimit {
                field: "max_in_flight_packets".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        LinkConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let c = LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidProbability { ref field, value }) if field == "loss" && value == 1.5
        ));
        let c = LinkConfig {
            delay_ms: f64::NAN,
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidDuration { .. })
        ));
        let c = LinkConfig {
            capacity_bps: Some(0.0),
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidCapacity { .. })
        ));
        let c = LinkConfig {
            reorder_probability: 0.1,
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::ReorderNotAllowed { .. })
        ));
        let c = LinkConfig {
            capacity_trace: vec![
                CapacityStep {
                    at_ms: 10.0,
                    capacity_bps: 1e6,
                },
                CapacityStep {
                    at_ms: 5.0,
                    capacity_bps: 1e6,
                },
            ],
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::TraceNotSorted { index: 1, .. })
        ));
        let c = LinkConfig {
            delay_trace: vec![
                DelayStep {
                    at_ms: 10.0,
                    delay_ms: 100.0,
                },
                DelayStep {
                    at_ms: 5.0,
                    delay_ms: 100.0,
                },
            ],
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::DelayTraceNotSorted { index: 1, .. })
        ));
        let c = LinkConfig {
            delay_trace: vec![DelayStep {
                at_ms: 10.0,
                delay_ms: -1.0,
            }],
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidDuration { ref field, .. }) if field == "delay_trace[0].delay_ms"
        ));
        let c = LinkConfig {
            outages: vec![Outage {
                start_ms: 0.0,
                duration_ms: -1.0,
            }],
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidDuration { ref field, .. }) if field == "outages[0].duration_ms"
        ));
        let c = LinkConfig {
            spike_shape: 0.0,
            ..LinkConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(NetsimError::InvalidSpikeShape { .. })
        ));
        let c = LinkConfig {
            queue_limit_bytes: Some(0),
            ..LinkConfig::default()
        };
        assert!(matches!(c.validate(), Err(NetsimError::ZeroLimit { .. })));
    }
}
