//! Named network profiles and profile files.

use std::path::Path as FsPath;

use serde::{Deserialize, Serialize};

use crate::{GilbertElliott, LinkConfig, NetsimError};

/// A network for a call: a name, a description, and the two directions' configurations.
///
/// In a file, `[link]` describes both directions; an optional `[b_to_a]` table replaces it
/// for the b→a direction (for asymmetric links such as ADSL or a satellite return channel).
/// See `docs/NETSIM.md` for the format and a copyable example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Short name, e.g. `wifi`. Default `custom`.
    pub name: String,
    /// One line for humans. Default empty.
    pub description: String,
    /// The a→b direction, and b→a too unless `b_to_a` is given.
    pub link: LinkConfig,
    /// The b→a direction when it differs from `link`.
    pub b_to_a: Option<LinkConfig>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            name: "custom".into(),
            description: String::new(),
            link: LinkConfig::default(),
            b_to_a: None,
        }
    }
}

impl Profile {
    /// The names [`Profile::named`] knows.
    pub const NAMES: &'static [&'static str] = &[
        "perfect",
        "good",
        "wifi",
        "4g",
        "lossy-20",
        "bursty-30",
        "congested",
        "satellite",
        "extreme-80",
    ];

    /// A built-in profile (its numbers and their rationale are in `docs/NETSIM.md`).
    ///
    /// # Errors
    ///
    /// [`NetsimError::UnknownProfile`] for a name not in [`Profile::NAMES`].
    pub fn named(name: &str) -> Result<Self, NetsimError> {
        let (description, link) = match name {
            "perfect" => ("no impairment at all", LinkConfig::default()),
            "good" => (
                "a good wired broadband path",
                LinkConfig {
                    delay_ms: 20.0,
                    jitter_ms: 2.0,
                    loss: 0.001,
                    capacity_bps: Some(20e6),
                    queue_limit_ms: Some(100.0),
                    ..LinkConfig::default()
                },
            ),
            "wifi" => (
                "home Wi-Fi: jitter, spikes from retries, short loss bursts, some reordering",
                LinkConfig {
                    delay_ms: 10.0,
                    jitter_ms: 8.0,
                    spike_probability: 0.01,
                    spike_scale_ms: 20.0,
                    spike_shape: 1.5,
                    spike_max_ms: 300.0,
                    gilbert_elliott: Some(GilbertElliott {
                        p: 0.005,
                        r: 0.3,
                        loss_good: 0.002,
                        loss_bad: 0.5,
                    }),
                    allow_reorder: true,
                    reorder_probability: 0.005,
                    reorder_delay_ms: 10.0,
                    duplicate_probability: 0.001,
                    capacity_bps: Some(30e6),
                    queue_limit_ms: Some(50.0),
                    ..LinkConfig::default()
                },
            ),
            "4g" => (
                "LTE: longer delay, handover spikes, deep buffers, in-order delivery",
                LinkConfig {
                    delay_ms: 40.0,
                    jitter_ms: 10.0,
                    spike_probability: 0.02,
                    spike_scale_ms: 30.0,
                    spike_shape: 1.5,
                    spike_max_ms: 1000.0,
                    loss: 0.01,
                    capacity_bps: Some(8e6),
                    queue_limit_ms: Some(200.0),
                    ..LinkConfig::default()
                },
            ),
            "lossy-20" => (
                "20 % independent loss",
                LinkConfig {
                    delay_ms: 30.0,
                    jitter_ms: 5.0,
                    loss: 0.20,
                    allow_reorder: true,
                    ..LinkConfig::default()
                },
            ),
            "bursty-30" => (
                "30 % loss in bursts of mean length 2.86 packets (Gilbert-Elliott)",
                LinkConfig {
                    delay_ms: 40.0,
                    jitter_ms: 5.0,
                    gilbert_elliott: Some(GilbertElliott {
                        p: 0.15,
                        r: 0.35,
                        loss_good: 0.0,
                        loss_bad: 1.0,
                    }),
                    allow_reorder: true,
                    ..LinkConfig::default()
                },
            ),
            "congested" => (
                "a 500 kbit/s bottleneck with a deep (bufferbloated) queue",
                LinkConfig {
                    delay_ms: 30.0,
                    jitter_ms: 2.0,
                    capacity_bps: Some(500e3),
                    queue_limit_ms: Some(1000.0),
                    queue_limit_bytes: Some(64_000),
                    loss: 0.001,
                    ..LinkConfig::default()
                },
            ),
            "satellite" => (
                "geostationary satellite: about 300 ms one way",
                LinkConfig {
                    delay_ms: 300.0,
                    jitter_ms: 10.0,
                    loss: 0.005,
                    capacity_bps: Some(5e6),
                    queue_limit_ms: Some(300.0),
                    ..LinkConfig::default()
                },
            ),
            "extreme-80" => (
                "80 % independent loss: the fluency target of the call kits",
                LinkConfig {
                    delay_ms: 50.0,
                    jitter_ms: 10.0,
                    loss: 0.80,
                    allow_reorder: true,
                    ..LinkConfig::default()
                },
            ),
            _ => {
                return Err(NetsimError::UnknownProfile {
                    name: name.to_owned(),
                    known: Self::NAMES.join(", "),
                });
            }
        };
        Ok(Self {
            name: name.to_owned(),
            description: description.to_owned(),
            link,
            b_to_a: None,
        })
    }

    /// A profile from TOML text, validated.
    ///
    /// # Errors
    ///
    /// [`NetsimError::Toml`] for bad syntax or unknown fields, or the first invalid value.
    pub fn from_toml_str(text: &str) -> Result<Self, NetsimError> {
        let profile: Self = toml::from_str(text)?;
        profile.validate()?;
        Ok(profile)
    }

    /// A profile from JSON text, validated.
    ///
    /// # Errors
    ///
    /// [`NetsimError::Json`] for bad syntax or unknown fields, or the first invalid value.
    pub fn from_json_str(text: &str) -> Result<Self, NetsimError> {
        let profile: Self = serde_json::from_str(text)?;
        profile.validate()?;
        Ok(profile)
    }

    /// A profile from a `.toml` or `.json` file, validated.
    ///
    /// This is the one place the crate does I/O, and it is not on any real-time path.
    ///
    /// # Errors
    ///
    /// [`NetsimError::Io`], [`NetsimError::UnknownFormat`], or as the `from_*_str` functions.
    pub fn from_file(path: impl AsRef<FsPath>) -> Result<Self, NetsimError> {
        let path = path.as_ref();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let parse = match extension.as_deref() {
            Some("toml") => Self::from_toml_str,
            Some("json") => Self::from_json_str,
            _ => {
                return Err(NetsimError::UnknownFormat {
                    path: path.to_owned(),
                });
            }
        };
        let text = std::fs::read_to_string(path).map_err(|source| NetsimError::Io {
            path: path.to_owned(),
            source,
        })?;
        parse(&text)
    }

    /// Checks both directions.
    ///
    /// # Errors
    ///
    /// The first invalid value; fields of `b_to_a` are prefixed with `b_to_a.`.
    pub fn validate(&self) -> Result<(), NetsimError> {
        self.link.validate()?;
        if let Some(b) = &self.b_to_a {
            b.validate().map_err(prefix_b_to_a)?;
        }
        Ok(())
    }

    /// The a→b configuration.
    pub fn a_to_b(&self) -> &LinkConfig {
        &self.link
    }

    /// The b→a configuration (`b_to_a` if given, else `link`).
    pub fn b_to_a(&self) -> &LinkConfig {
        self.b_to_a.as_ref().unwrap_or(&self.link)
    }
}

/// Makes an error in the b→a table name its field as written in the file.
fn prefix_b_to_a(e: NetsimError) -> NetsimError {
    let p = |f: String| format!("b_to_a.{f}");
    match e {
        NetsimError::InvalidProbability { field, value } => NetsimError::InvalidProbability {
            field: p(field),
            value,
        },
        NetsimError::InvalidDuration { field, value } => NetsimError::InvalidDuration {
            field: p(field),
            value,
        },
        NetsimError::InvalidCapacity { field, value } => NetsimError::InvalidCapacity {
            field: p(field),
            value,
        },
        NetsimError::ZeroLimit { field } => NetsimError::ZeroLimit { field: p(field) },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_is_valid() {
        for name in Profile::NAMES {
            let p = Profile::named(name).unwrap();
            p.validate().unwrap();
            assert_eq!(p.name, *name);
        }
        assert!(matches!(
            Profile::named("dial-up"),
            Err(NetsimError::UnknownProfile { ref name, .. }) if name == "dial-up"
        ));
    }

    #[test]
    fn toml_and_json_round_trip() {
        for name in Profile::NAMES {
            let p = Profile::named(name).unwrap();
            let toml_text = toml::to_string(&p).unwrap();
            assert_eq!(
                Profile::from_toml_str(&toml_text).unwrap(),
                p,
                "{toml_text}"
            );
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(Profile::from_json_str(&json).unwrap(), p);
        }
    }

    #[test]
    fn file_errors_are_typed() {
        assert!(matches!(
            Profile::from_toml_str("[link]\ndelay_msec = 3\n"),
            Err(NetsimError::Toml { .. })
        ));
        assert!(matches!(
            Profile::from_toml_str("[link]\nloss = 2.0\n"),
            Err(NetsimError::InvalidProbability { value, .. }) if value == 2.0
        ));
        assert!(matches!(
            Profile::from_toml_str("[b_to_a]\njitter_ms = -1\n"),
            Err(NetsimError::InvalidDuration { ref field, .. }) if field == "b_to_a.jitter_ms"
        ));
        assert!(matches!(
            Profile::from_json_str("{\"link\": {\"loss\": \"x\"}}"),
            Err(NetsimError::Json { .. })
        ));
        assert!(matches!(
            Profile::from_file("/nonexistent/x.toml"),
            Err(NetsimError::Io { .. })
        ));
        assert!(matches!(
            Profile::from_file("x.yaml"),
            Err(NetsimError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn json_and_nested_tables() {
        // The inline JSON example of docs/NETSIM.md.
        let p = Profile::from_json_str(
            r#"{"name": "x", "link": {"delay_ms": 35.0, "outages":
            [{"start_ms": 30000.0, "duration_ms": 2000.0}]}}"#,
        )
        .unwrap();
        assert_eq!(p.name, "x");
        assert_eq!(p.b_to_a(), p.a_to_b());
        assert_eq!(p.link.outages[0].duration_ms, 2000.0);
        // Unknown fields are refused at every level.
        assert!(matches!(
            Profile::from_toml_str("[link.gilbert_elliott]\nq = 0.1\n"),
            Err(NetsimError::Toml { .. })
        ));
        assert!(matches!(
            Profile::from_toml_str("[[link.outages]]\nstart = 1.0\n"),
            Err(NetsimError::Toml { .. })
        ));
        assert!(matches!(
            Profile::from_toml_str("nmae = \"typo\"\n"),
            Err(NetsimError::Toml { .. })
        ));
        // Integers are accepted where milliseconds are expected.
        let p = Profile::from_toml_str("[link]\ndelay_ms = 30\n").unwrap();
        assert_eq!(p.link.delay_ms, 30.0);
    }

    #[test]
    fn docs_example_parses() {
        let doc = include_str!("../../../docs/NETSIM.md");
        let start = doc
            .find("```toml\n")
            .expect("a TOML example in docs/NETSIM.md")
            + 8;
        let end = start + doc[start..].find("```").unwrap();
        let p = Profile::from_toml_str(&doc[start..end]).unwrap();
        assert!(p.b_to_a.is_some());
        assert!(!p.link.capacity_trace.is_empty());
        assert_eq!(p.link.delay_trace.len(), 1);
    }
}
