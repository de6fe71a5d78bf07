//! Migration modes and the safe default chosen from an environment's name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What envgate may do to an environment's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// envgate applies migrations and records them in its ledger.
    Managed,
    /// envgate writes SQL bundles; the team's pipeline applies them. envgate
    /// never writes to the database.
    ExportOnly,
    /// envgate only reads an existing ledger. It never writes.
    ReconcileOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Managed => "managed",
            Mode::ExportOnly => "export_only",
            Mode::ReconcileOnly => "reconcile_only",
        }
    }

    /// Whether envgate may write to the database at all.
    pub fn allows_writes(self) -> bool {
        self == Mode::Managed
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether moving an environment from one mode to another gives envgate
/// more power there: to `managed` (it may write), or out of
/// `reconcile_only` (it may build bundles for it). Such a change needs an
/// admin's approval where the environment names admins.
pub fn loosens(from: Mode, to: Mode) -> bool {
    (to == Mode::Managed && from != Mode::Managed)
        || (from == Mode::ReconcileOnly && to != Mode::ReconcileOnly)
}

/// Whether the mode was written in the configuration or chosen by envgate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSource {
    Config,
    Default,
}

/// What the mode notices need to know of an environment.
#[derive(Clone, Copy, Debug)]
pub struct ModeOf<'a> {
    pub name: &'a str,
    pub mode: Mode,
    pub source: ModeSource,
    /// The ledger it reads (`envgate`, `flyway`, …).
    pub ledger: &'a str,
}

/// The notices about modes chosen by default: one line per environment
/// detected as staging or production, one for environments that read
/// another tool's ledger, one for the rest.
pub fn notes(envs: &[ModeOf<'_>]) -> Vec<String> {
    let defaulted = envs.iter().filter(|e| e.source == ModeSource::Default);
    let mut notes: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ExportOnly)
        .map(|e| {
            format!(
                "detected '{}': mode export_only (set `mode` to override)",
                e.name
            )
        })
        .collect();
    let reconciled: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ReconcileOnly)
        .map(|e| format!("{} ({})", e.name, e.ledger))
        .collect();
    if !reconciled.is_empty() {
        notes.push(format!(
            "reading other tools' ledgers, never writing: {}: mode reconcile_only",
            reconciled.join(", ")
        ));
    }
    let managed: Vec<&str> = defaulted
        .filter(|e| e.mode == Mode::Managed)
        .map(|e| e.name)
        .collect();
    if !managed.is_empty() {
        notes.push(format!(
            "no mode set for {}: mode managed",
            managed.join(", ")
        ));
    }
    notes
}

/// Name tokens that mark an environment as staging or production.
pub const PROTECTED_NAMES: [&str; 9] = [
    "staging",
    "stage",
    "stg",
    "uat",
    "preprod",
    "prod",
    "production",
    "prd",
    "live",
];

/// The mode an environment gets when its configuration names none: a name
/// that looks like staging or production, alone or as one of its `-`, `_` or
/// `.` separated parts (`prod`, `prod-eu`, `eu_prod`, `us.live.1`), compared
/// case-insensitively, is `export_only`; any other name is `managed`.
pub fn default_mode(env_name: &str) -> Mode {
    let protected = env_name
        .split(['-', '_', '.'])
        .any(|part| PROTECTED_NAMES.iter().any(|p| part.eq_ignore_ascii_case(p)));
    if protected {
        Mode::ExportOnly
    } else {
        Mode::Managed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_like_names_default_to_export_only() {
        for name in [
            "staging",
            "stage",
            "stg",
            "uat",
            "preprod",
            "prod",
            "production",
            "prd",
            "live",
            "PROD",
            "Staging",
            "prod-eu",
            "eu-prod",
            "eu_prod_2",
            "us.live",
            "UAT-1",
        ] {
            assert_eq!(default_mode(name), Mode::ExportOnly, "{name}");
        }
    }

    #[test]
    fn other_names_default_to_managed() {
        for name in [
            "dev",
            "development",
            "test",
            "qa",
            "local",
            "products",
            "liveness",
            "preview",
            "prodigy",
            "eu",
        ] {
            assert_eq!(default_mode(name), Mode::Managed, "{name}");
        }
    }
}
