//! What the schema comparison found for each environment, as values: the
//! summary line, the sentences and the JSON view every surface shows.

use super::schema::{self, Change, Reference, Schema};
use serde::Serialize;

/// One environment's schema and what it was compared with.
pub struct EnvSchema {
    pub env: String,
    /// The schema as read, or why it could not be (credentials masked).
    pub read: Result<Schema, String>,
    /// How many applied migrations its ledger records.
    pub applied: usize,
    pub comparison: Comparison,
}

pub enum Comparison {
    Compared {
        reference: Reference,
        changes: Vec<Change>,
    },
    /// No reference: why.
    Unknown(String),
}

impl EnvSchema {
    /// Whether the schema differs from its reference.
    pub fn differs(&self) -> bool {
        matches!(&self.comparison, Comparison::Compared { changes, .. } if !changes.is_empty())
    }

    /// The changes in plain words.
    pub fn sentences(&self) -> Vec<String> {
        match &self.comparison {
            Comparison::Compared { reference, changes } => changes
                .iter()
                .map(|c| schema::describe(&self.env, c, reference))
                .collect(),
            Comparison::Unknown(_) => Vec::new(),
        }
    }

    /// The summary line: "matches what its 40 applied migrations produce".
    pub fn summary(&self) -> String {
        match (&self.read, &self.comparison) {
            (Err(e), _) => format!("could not be read: {e}"),
            (Ok(_), Comparison::Unknown(why)) => format!("not compared: {why}"),
            (Ok(_), Comparison::Compared { reference, changes }) => {
                let against = match reference {
                    Reference::Migrations { applied } => format!(
                        "what its {applied} applied migration{} produce{}",
                        if *applied == 1 { "" } else { "s" },
                        if *applied == 1 { "s" } else { "" }
                    ),
                    Reference::Peer { env } => format!("{env} (same applied migrations)"),
                };
                if changes.is_empty() {
                    format!("matches {against}")
                } else {
                    format!(
                        "{} difference{} from {against}",
                        changes.len(),
                        if changes.len() == 1 { "" } else { "s" }
                    )
                }
            }
        }
    }

    /// The JSON view (`status --schema`, `schema diff --format json`).
    pub fn view(&self) -> SchemaView<'_> {
        let (state, compared_with, changes, note) = match (&self.read, &self.comparison) {
            (Err(e), _) => ("unreadable", None, Vec::new(), Some(e.clone())),
            (Ok(_), Comparison::Unknown(why)) => ("unknown", None, Vec::new(), Some(why.clone())),
            (Ok(_), Comparison::Compared { reference, changes }) => (
                if changes.is_empty() {
                    "matches"
                } else {
                    "differs"
                },
                Some(reference),
                changes
                    .iter()
                    .map(|c| ChangeView {
                        text: schema::describe(&self.env, c, reference),
                        change: c,
                    })
                    .collect(),
                None,
            ),
        };
        SchemaView {
            state,
            fingerprint: self.read.as_ref().ok().map(Schema::fingerprint),
            objects: self.read.as_ref().ok().map(Schema::len),
            applied: self.applied,
            compared_with,
            differences: changes,
            note,
        }
    }
}

#[derive(Serialize)]
pub struct SchemaView<'a> {
    /// `matches`, `differs`, `unknown` (nothing to compare with) or
    /// `unreadable`.
    pub state: &'static str,
    /// SHA-256 of the schema's text form.
    pub fingerprint: Option<String>,
    pub objects: Option<usize>,
    pub applied: usize,
    pub compared_with: Option<&'a Reference>,
    pub differences: Vec<ChangeView<'a>>,
    pub note: Option<String>,
}

#[derive(Serialize)]
pub struct ChangeView<'a> {
    #[serde(flatten)]
    pub change: &'a Change,
    pub text: String,
}
