//! What a check run says about a matrix: its conclusion, a one-line title,
//! and the annotations on drifted files.

use super::matrix::{Matrix, State};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// Every cell applied.
    Success,
    /// Only pending migrations: nothing wrong, something to do.
    Neutral,
    /// Drifted, failed or missing cells, or an environment that could not
    /// be read.
    Failure,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Neutral => "neutral",
            Conclusion::Failure => "failure",
        }
    }
}

pub fn conclusion(m: &Matrix<'_>) -> Conclusion {
    if m.has_problems() || m.any_unreachable() {
        Conclusion::Failure
    } else if m.envs.iter().any(|e| e.counts.pending > 0) {
        Conclusion::Neutral
    } else {
        Conclusion::Success
    }
}

/// "2 drifted, 1 unreachable, 3 pending" or "all applied".
pub fn title(m: &Matrix<'_>) -> String {
    let parts: Vec<String> = m
        .tally()
        .named()
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        format!("{} migrations applied everywhere", m.rows.len())
    } else {
        parts.join(", ")
    }
}

/// A check-run annotation (GitHub's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub annotation_level: &'static str,
    pub title: String,
    pub message: String,
}

/// One annotation per drifted file, naming every environment where it
/// drifted.
pub fn annotations(m: &Matrix<'_>) -> Vec<Annotation> {
    let mut by_file: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (r, row) in m.rows.iter().enumerate() {
        let Some(file) = row.file else { continue };
        for (e, cell) in m.cells(r).iter().enumerate() {
            if cell.state == State::Drifted {
                let recorded = cell
                    .applied_hash()
                    .map(|h| h.display().chars().take(12).collect::<String>())
                    .unwrap_or_default();
                by_file.entry(file).or_default().push(format!(
                    "{} (applied as {})",
                    m.envs[e].name,
                    if recorded.is_empty() {
                        "unknown"
                    } else {
                        &recorded
                    }
                ));
            }
        }
    }
    by_file
        .into_iter()
        .map(|(file, envs)| {
            let today = m
                .rows
                .iter()
                .find(|r| r.file == Some(file))
                .and_then(|r| r.hash)
                .map(|h| h.hex().chars().take(12).collect::<String>())
                .unwrap_or_default();
            Annotation {
                path: file.to_owned(),
                start_line: 1,
                end_line: 1,
                annotation_level: "failure",
                title: "migration changed after it was applied".to_owned(),
                message: format!(
                    "This file is now {today}; it drifted in {}. Revert the edit, or accept it with `envgate drift accept`.",
                    envs.join(", ")
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::{ContentHash, RecordedHash};
    use crate::core::ledger::LedgerRow;
    use crate::core::matrix::{EnvLedger, compute};
    use crate::core::migration::{SourceFile, discover};

    #[test]
    fn conclusions_titles_and_annotations() {
        let ms = discover(vec![
            SourceFile {
                path: "migrations/1_a.sql".into(),
                bytes: b"a".to_vec(),
            },
            SourceFile {
                path: "migrations/2_b.sql".into(),
                bytes: b"b".to_vec(),
            },
        ])
        .unwrap()
        .migrations;
        let row = |v: &str, body: &str| LedgerRow {
            via: None,
            version: v.into(),
            name: "x".into(),
            hash: RecordedHash::Sha256Lf(ContentHash::of(body.as_bytes())),
            applied_at: None,
            success: true,
            error: None,
        };
        let all = [row("1", "a"), row("2", "b")];
        let m = compute(&ms, &[EnvLedger::new("dev", Ok(&all))]);
        assert_eq!(conclusion(&m), Conclusion::Success);
        assert_eq!(title(&m), "2 migrations applied everywhere");
        let some = [row("1", "a")];
        let m = compute(
            &ms,
            &[
                EnvLedger::new("dev", Ok(&all)),
                EnvLedger::new("prod", Ok(&some)),
            ],
        );
        assert_eq!(conclusion(&m), Conclusion::Neutral);
        assert_eq!(title(&m), "1 pending");
        let drifted = [row("1", "edited"), row("2", "b")];
        let m = compute(
            &ms,
            &[
                EnvLedger::new("dev", Ok(&drifted)),
                EnvLedger::new("prod", Err("refused")),
            ],
        );
        assert_eq!(conclusion(&m), Conclusion::Failure);
        assert_eq!(title(&m), "1 drifted, 1 unreachable");
        let a = annotations(&m);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].path, "migrations/1_a.sql");
        assert!(
            a[0].message.contains("drifted in dev (applied as "),
            "{}",
            a[0].message
        );
    }
}
