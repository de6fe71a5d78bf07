//! Closing the export loop: bundles envgate made, recognised when the
//! team's pipeline has applied them.
//!
//! A bundle records each migration it applies with `applied_via =
//! 'bundle:<id>'` and the content hash its manifest lists. The control
//! store keeps what each bundle was made to record ([`Exported`]); reading
//! the ledger later, [`sightings`] says, per bundle, whether it was applied
//! completely or partly (which steps), and which rows hold another hash
//! than its manifest — a bundle edited before it ran, shown as tampered.

use super::bundle::Manifest;
use super::checksum::RecordedHash;
use super::ledger::LedgerRow;
use super::plan::Direction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a bundle was made to record, from its manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    pub bundle_id: String,
    pub environment: String,
    /// `up` or `down`.
    pub direction: String,
    pub bundle_sha256: String,
    pub release: Option<String>,
    pub file: String,
    /// (version, the content hash the bundle records for it), in order.
    pub steps: Vec<(String, String)>,
}

impl Exported {
    pub fn of(m: &Manifest) -> Exported {
        Exported {
            bundle_id: m.bundle_id.clone(),
            environment: m.environment.clone(),
            direction: match m.direction {
                Direction::Up => "up",
                Direction::Down => "down",
            }
            .to_owned(),
            bundle_sha256: m.bundle_sha256.clone(),
            release: m.release.clone(),
            file: m.file.clone(),
            steps: m
                .migrations
                .iter()
                .map(|s| (s.version.clone(), s.sha256.clone()))
                .collect(),
        }
    }

    /// The hash this bundle records for `version`, if it applies it.
    pub fn records(&self, version: &str) -> Option<&str> {
        (self.direction == "up")
            .then(|| {
                self.steps
                    .iter()
                    .find(|(v, _)| v == version)
                    .map(|(_, h)| h.as_str())
            })
            .flatten()
    }
}

/// The bundle a ledger row says applied it.
pub fn bundle_of(row: &LedgerRow) -> Option<&str> {
    row.via.as_deref()?.strip_prefix("bundle:")
}

/// A row whose hash is not the one its bundle's manifest lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tampered {
    pub version: String,
    /// What the manifest says the bundle records.
    pub manifest: String,
    /// What the ledger holds.
    pub ledger: String,
}

/// How much of a bundle the ledger shows applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Completion {
    Complete,
    /// Some steps applied, the others not (yet).
    Partial {
        applied: Vec<String>,
        missing: Vec<String>,
    },
    /// A bundle this control store never made: its steps are unknown.
    Unknown {
        applied: Vec<String>,
    },
}

/// One bundle seen applied in an environment's ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sighting {
    pub bundle_id: String,
    pub completion: Completion,
    pub tampered: Vec<Tampered>,
    /// Its manifest's facts, when the store made it.
    pub bundle_sha256: Option<String>,
    pub release: Option<String>,
}

impl Sighting {
    /// What distinguishes this sighting from a later one of the same
    /// bundle (more steps applied, a row edited): recorded once each.
    pub fn signature(&self) -> String {
        let steps = |v: &[String]| v.join(",");
        let completion = match &self.completion {
            Completion::Complete => "complete".to_owned(),
            Completion::Partial { applied, .. } => format!("partial:{}", steps(applied)),
            Completion::Unknown { applied } => format!("unknown:{}", steps(applied)),
        };
        let tampered: Vec<String> = self
            .tampered
            .iter()
            .map(|t| format!("{}={}", t.version, t.ledger))
            .collect();
        format!("{completion};tampered:{}", tampered.join(","))
    }

    /// The outcome its audit record carries.
    pub fn outcome(&self) -> &'static str {
        match (&self.completion, self.tampered.is_empty()) {
            (_, false) => "tampered",
            (Completion::Complete, true) => "complete",
            (Completion::Partial { .. }, true) => "partial",
            (Completion::Unknown { .. }, true) => "unknown",
        }
    }
}

/// Whether a recorded hash is the one a manifest lists (hex).
pub fn holds(recorded: &RecordedHash, manifest_hex: &str) -> bool {
    match recorded {
        RecordedHash::Sha256Lf(h) => h.hex().eq_ignore_ascii_case(manifest_hex),
        _ => false,
    }
}

/// The bundles an environment's ledger shows applied, in the order their
/// first row appears, judged against what the store says each was made
/// to record (`exported`, by bundle id).
pub fn sightings<'r>(
    rows: impl IntoIterator<Item = &'r LedgerRow>,
    exported: &HashMap<String, Exported>,
) -> Vec<Sighting> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_bundle: HashMap<&str, Vec<&LedgerRow>> = HashMap::new();
    for row in rows.into_iter().filter(|r| r.success) {
        if let Some(id) = bundle_of(row) {
            if !by_bundle.contains_key(id) {
                order.push(id);
            }
            by_bundle.entry(id).or_default().push(row);
        }
    }
    order
        .into_iter()
        .map(|id| {
            let rows = &by_bundle[id];
            let applied: Vec<String> = rows.iter().map(|r| r.version.clone()).collect();
            let Some(made) = exported.get(id).filter(|e| e.direction == "up") else {
                return Sighting {
                    bundle_id: id.to_owned(),
                    completion: Completion::Unknown { applied },
                    tampered: Vec::new(),
                    bundle_sha256: None,
                    release: None,
                };
            };
            let missing: Vec<String> = made
                .steps
                .iter()
                .filter(|(v, _)| !applied.contains(v))
                .map(|(v, _)| v.clone())
                .collect();
            let tampered = rows
                .iter()
                .filter_map(|r| {
                    let manifest = made.records(&r.version)?;
                    (!holds(&r.hash, manifest)).then(|| Tampered {
                        version: r.version.clone(),
                        manifest: manifest.to_owned(),
                        ledger: r.hash.display(),
                    })
                })
                .collect();
            Sighting {
                bundle_id: id.to_owned(),
                completion: if missing.is_empty() {
                    Completion::Complete
                } else {
                    Completion::Partial { applied, missing }
                },
                tampered,
                bundle_sha256: Some(made.bundle_sha256.clone()),
                release: made.release.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::ContentHash;

    fn exported(id: &str, steps: &[(&str, &str)]) -> Exported {
        Exported {
            bundle_id: id.into(),
            environment: "prod".into(),
            direction: "up".into(),
            bundle_sha256: format!("{id}-sha"),
            release: Some("v2".into()),
            file: format!("prod-{id}.sql"),
            steps: steps
                .iter()
                .map(|(v, body)| ((*v).to_owned(), ContentHash::of(body.as_bytes()).hex()))
                .collect(),
        }
    }

    fn row(version: &str, body: &str, via: Option<&str>) -> LedgerRow {
        LedgerRow {
            version: version.into(),
            name: "x".into(),
            hash: RecordedHash::Sha256Lf(ContentHash::of(body.as_bytes())),
            applied_at: None,
            success: true,
            error: None,
            via: via.map(Into::into),
        }
    }

    #[test]
    fn bundles_seen_complete_partial_tampered_and_unknown() {
        let made: HashMap<String, Exported> = [
            exported("b1", &[("1", "one"), ("2", "two")]),
            exported("b2", &[("3", "three"), ("4", "four")]),
            exported("b3", &[("5", "five")]),
        ]
        .into_iter()
        .map(|e| (e.bundle_id.clone(), e))
        .collect();
        let rows = [
            row("0", "zero", Some("managed")),
            row("1", "one", Some("bundle:b1")),
            row("2", "two", Some("bundle:b1")),
            row("3", "three", Some("bundle:b2")),
            row("5", "five, edited", Some("bundle:b3")),
            row("6", "six", Some("bundle:b9")),
            row("7", "seven", None),
        ];
        let seen = sightings(&rows, &made);
        let outcomes: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.bundle_id.as_str(), s.outcome()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("b1", "complete"),
                ("b2", "partial"),
                ("b3", "tampered"),
                ("b9", "unknown")
            ]
        );
        assert_eq!(
            seen[1].completion,
            Completion::Partial {
                applied: vec!["3".into()],
                missing: vec!["4".into()]
            }
        );
        assert_eq!(
            seen[2].tampered,
            [Tampered {
                version: "5".into(),
                manifest: ContentHash::of(b"five").hex(),
                ledger: RecordedHash::Sha256Lf(ContentHash::of(b"five, edited")).display(),
            }]
        );
        assert_eq!(seen[1].signature(), "partial:3;tampered:");
        // The rest of the bundle applied later: another sighting.
        let more = [
            row("3", "three", Some("bundle:b2")),
            row("4", "four", Some("bundle:b2")),
        ];
        assert_eq!(sightings(&more, &made)[0].signature(), "complete;tampered:");
        // A failed row is not an applied step.
        let failed = [LedgerRow {
            success: false,
            ..row("5", "five", Some("bundle:b3"))
        }];
        assert!(sightings(&failed, &made).is_empty());
    }
}
