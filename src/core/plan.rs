//! What moving an environment forward would do: the pending migrations in
//! order (up to a target), which of them run outside a transaction, what
//! stands in the way, and what deserves a warning.
//!
//! Used by `plan`, `apply` (recomputed under the lock) and `export`.

use super::client;
use super::ledger::LedgerRow;
use super::matrix::{self, Accepted, EnvLedger, State};
use super::migration::Migration;
use super::mode::Mode;
use super::sql::{Dialect, no_transaction_reason};
use super::version::Version;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use thiserror::Error;

#[derive(Clone, Debug)]
pub struct Step<'a> {
    pub migration: &'a Migration,
    /// Why it must run outside a transaction, if it must.
    pub no_transaction: Option<String>,
    /// The ledger records a failed run of it, which this step replaces.
    pub retry: bool,
    /// Older than the newest migration applied in the environment.
    pub out_of_order: bool,
}

/// What a person let through on purpose: drift (`--allow-drift`) and
/// failed runs, which are then retried (`--retry-failed`). Separate, so
/// that retrying a fixed failure never waives unrelated drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waive {
    pub drift: bool,
    pub failed: bool,
}

impl Waive {
    pub const NONE: Waive = Waive {
        drift: false,
        failed: false,
    };
    pub const ALL: Waive = Waive {
        drift: true,
        failed: true,
    };
}

/// Something that stops `apply` and `export` unless waived
/// (`--allow-drift`, `--retry-failed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// Applied, but the file changed since.
    Drifted {
        version: String,
        file: String,
        today: String,
        recorded: String,
    },
    /// The ledger records a failed run.
    Failed { version: String, at: Option<String> },
    /// A rollback: applied after the release's first migration, and not
    /// part of the release; revert it (its release) first.
    AppliedAfter { version: String },
    /// Its text could reach a client as something other than SQL, or
    /// cannot be run as written (see [`super::client`]). Never waived.
    Refused {
        version: String,
        file: String,
        line: usize,
        reason: String,
    },
}

impl Blocker {
    pub fn version(&self) -> &str {
        match self {
            Blocker::Drifted { version, .. }
            | Blocker::Failed { version, .. }
            | Blocker::AppliedAfter { version }
            | Blocker::Refused { version, .. } => version,
        }
    }

    /// `<version> drifted` or `<version> failed`.
    pub fn summary(&self) -> String {
        match self {
            Blocker::Drifted { version, .. } => format!("{version} drifted"),
            Blocker::Failed { version, .. } => format!("{version} failed"),
            Blocker::AppliedAfter { version } => {
                format!("{version} is applied after it and not part of it")
            }
            Blocker::Refused {
                file, line, reason, ..
            } => format!("{file}:{line}: {reason}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// Pending, but older than the newest applied migration.
    OutOfOrder {
        version: String,
        newest_applied: String,
    },
    /// No down file: a rollback of this migration will be refused.
    NoDown { version: String },
    /// In the ledger, not in the repository.
    Missing { version: String },
    /// Drift or a failure let through (`--allow-drift`, `--retry-failed`).
    Allowed { what: String },
}

#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub env: &'a str,
    pub mode: Mode,
    /// Versions the ledger records as successfully applied, in version
    /// order: the state the plan starts from.
    pub applied: Vec<&'a str>,
    /// The newest applied version, if any.
    pub from: Option<&'a str>,
    /// The last migration the plan goes to (`stop_at`), if bounded.
    pub stop_at: Option<&'a Migration>,
    pub steps: Vec<Step<'a>>,
    pub blockers: Vec<Blocker>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no migration with version {0} in the repository")]
    UnknownTarget(String),
}

/// What a plan for one environment needs.
pub struct PlanInput<'a> {
    pub env: &'a str,
    pub mode: Mode,
    pub dialect: Dialect,
    pub migrations: &'a [Migration],
    pub ledger: &'a [LedgerRow],
    /// Stop after this migration (a version).
    pub stop_at: Option<&'a str>,
    /// Drift and failed runs let through (failed migrations are retried).
    pub waive: Waive,
    /// Only these migrations (a release's); `None`: every pending one.
    pub only: Option<&'a HashSet<String>>,
    /// Drift accepted on purpose in this environment (not a blocker).
    pub accepted: Option<&'a HashMap<String, Accepted>>,
}

pub fn plan<'a>(input: &PlanInput<'a>) -> Result<Plan<'a>, PlanError> {
    let migrations = input.migrations;
    let stop_at = match input.stop_at {
        None => None,
        Some(t) => {
            let parsed = Version::parse(t);
            let found = migrations
                .iter()
                .find(|m| m.id() == t)
                .or_else(|| parsed.and_then(|v| migrations.iter().find(|m| m.version == v)));
            Some(found.ok_or_else(|| PlanError::UnknownTarget(t.to_owned()))?)
        }
    };
    // Migrations come in their layout's order.
    let stop_pos = stop_at.and_then(|t| migrations.iter().position(|m| std::ptr::eq(m, t)));
    let within = |i: usize| stop_pos.is_none_or(|tp| i <= tp);
    let chosen = |m: &Migration| input.only.is_none_or(|set| set.contains(m.id()));

    let m = matrix::compute(
        migrations,
        &[EnvLedger {
            accepted: input.accepted,
            ..EnvLedger::new(input.env, Ok(input.ledger))
        }],
    );
    let mut applied: Vec<(&'a str, usize)> = Vec::new();
    let mut steps = Vec::new();
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let mut newest_applied: Option<&str> = None;
    // The matrix's rows are the migrations (in order) merged with rows only
    // the ledger knows; walk both together.
    let mut next_migration = migrations.iter().enumerate();
    for (r, row) in m.rows.iter().enumerate() {
        let cell = m.cells(r)[0];
        let migration = match row.file {
            Some(_) => next_migration.next(),
            None => None,
        };
        if matches!(cell.state, State::Applied | State::Drifted | State::Missing) {
            let version = cell.ledger.map_or(row.version, |l| l.version.as_str());
            applied.push((version, r));
            newest_applied = Some(row.version);
        }
        match (cell.state, migration) {
            (State::Missing, _) => warnings.push(Warning::Missing {
                version: row.version.to_owned(),
            }),
            (State::Drifted, Some((i, mig))) if within(i) => {
                let blocker = Blocker::Drifted {
                    version: row.version.to_owned(),
                    file: mig.up.path.clone(),
                    today: mig.up.hash.hex(),
                    recorded: cell.applied_hash().map(|h| h.display()).unwrap_or_default(),
                };
                if input.waive.drift {
                    warnings.push(Warning::Allowed {
                        what: format!("{} drifted", row.version),
                    });
                } else {
                    blockers.push(blocker);
                }
            }
            (State::Failed, Some((i, mig))) if within(i) && chosen(mig) => {
                if input.waive.failed {
                    warnings.push(Warning::Allowed {
                        what: format!("{} failed before; retrying it", row.version),
                    });
                    steps.push(step(mig, input.dialect, true, cell.out_of_order));
                } else {
                    blockers.push(Blocker::Failed {
                        version: row.version.to_owned(),
                        at: cell.applied_at().map(str::to_owned),
                    });
                }
            }
            (State::Pending, Some((i, mig))) if within(i) && chosen(mig) => {
                steps.push(step(mig, input.dialect, false, cell.out_of_order));
            }
            _ => {}
        }
    }
    blockers.extend(
        steps
            .iter()
            .filter_map(|s| refusal(s, Direction::Up, input.dialect)),
    );
    for s in &steps {
        if s.out_of_order {
            warnings.push(Warning::OutOfOrder {
                version: s.migration.id().to_owned(),
                newest_applied: newest_applied.unwrap_or_default().to_owned(),
            });
        }
        if s.migration.down.is_none() {
            warnings.push(Warning::NoDown {
                version: s.migration.id().to_owned(),
            });
        }
    }
    let applied_versions: Vec<&'a str> = applied.iter().map(|(v, _)| *v).collect();
    let from = applied_versions.last().copied();
    Ok(Plan {
        env: input.env,
        mode: input.mode,
        applied: applied_versions,
        from,
        stop_at,
        steps,
        blockers,
        warnings,
    })
}

fn step(m: &Migration, dialect: Dialect, retry: bool, out_of_order: bool) -> Step<'_> {
    Step {
        migration: m,
        no_transaction: no_transaction_reason(&m.up.sql, dialect),
        retry,
        out_of_order,
    }
}

/// Why a step's script cannot be run (by `apply`, or by a client from a
/// bundle), if it cannot.
fn refusal(step: &Step<'_>, direction: Direction, dialect: Dialect) -> Option<Blocker> {
    let m = step.migration;
    let script = match direction {
        Direction::Up => &m.up,
        Direction::Down => m.down.as_ref()?,
    };
    let blocker = |line: usize, reason: String| Blocker::Refused {
        version: m.id().to_owned(),
        file: client::excerpt(&script.path),
        line,
        reason,
    };
    if let Err(reason) = client::check_name(&script.path).and(client::check_name(&m.name)) {
        return Some(blocker(0, reason));
    }
    client::check(&script.sql, dialect)
        .err()
        .map(|r| blocker(r.line(&script.sql), r.reason))
}

/// Which way migrations move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Apply them and record them.
    Up,
    /// Revert them with their down scripts and remove their ledger rows.
    Down,
}

/// Reverting a set of migrations (a release's) in one environment: those
/// applied there, newest first.
pub fn rollback<'a>(
    env: &'a str,
    mode: Mode,
    dialect: Dialect,
    migrations: &'a [Migration],
    ledger: &'a [LedgerRow],
    ids: &HashSet<String>,
) -> Plan<'a> {
    let m = matrix::compute(migrations, &[EnvLedger::new(env, Ok(ledger))]);
    let mut applied = Vec::new();
    let mut steps = Vec::new();
    let mut blockers = Vec::new();
    // Applied rows after the release's first applied migration that are
    // not the release's: reverting underneath them would break them.
    let mut later = Vec::new();
    let mut next_migration = migrations.iter();
    for (r, row) in m.rows.iter().enumerate() {
        let cell = m.cells(r)[0];
        let migration = if row.file.is_some() {
            next_migration.next()
        } else {
            None
        };
        if !matches!(cell.state, State::Applied | State::Drifted | State::Missing) {
            continue;
        }
        let version = cell.ledger.map_or(row.version, |l| l.version.as_str());
        applied.push(version);
        match migration.filter(|m| ids.contains(m.id())) {
            Some(mig) => {
                if cell.state == State::Drifted {
                    blockers.push(Blocker::Drifted {
                        version: mig.id().to_owned(),
                        file: mig.up.path.clone(),
                        today: mig.up.hash.hex(),
                        recorded: cell.applied_hash().map(|h| h.display()).unwrap_or_default(),
                    });
                }
                let no_transaction = mig
                    .down
                    .as_ref()
                    .and_then(|d| no_transaction_reason(&d.sql, dialect));
                steps.push(Step {
                    migration: mig,
                    no_transaction,
                    retry: false,
                    out_of_order: false,
                });
            }
            None if !steps.is_empty() => later.push(version),
            None => {}
        }
    }
    blockers.extend(later.into_iter().map(|v| Blocker::AppliedAfter {
        version: v.to_owned(),
    }));
    blockers.extend(
        steps
            .iter()
            .filter_map(|s| refusal(s, Direction::Down, dialect)),
    );
    steps.reverse();
    let from = applied.last().copied();
    Plan {
        env,
        mode,
        applied,
        from,
        stop_at: None,
        steps,
        blockers,
        warnings: Vec::new(),
    }
}

impl Plan<'_> {
    /// The steps' migrations that have no down script (a rollback of them
    /// is refused).
    pub fn without_down(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.migration.down.is_none())
            .map(|s| s.migration.up.path.as_str())
            .collect()
    }

    /// Whether any step must run outside a transaction.
    pub fn needs_session(&self) -> bool {
        self.steps.iter().any(|s| s.no_transaction.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::{ContentHash, RecordedHash};
    use crate::core::migration::{SourceFile, discover};

    fn migrations(files: &[(&str, &str)]) -> Vec<Migration> {
        discover(
            files
                .iter()
                .map(|(n, b)| SourceFile {
                    path: format!("migrations/{n}"),
                    bytes: b.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn row(version: &str, body: &str, success: bool) -> LedgerRow {
        LedgerRow {
            via: None,
            version: version.into(),
            name: "x".into(),
            hash: RecordedHash::Sha256Lf(ContentHash::of(body.as_bytes())),
            applied_at: Some("2026-04-18T10:00:00.000Z".into()),
            success,
            error: None,
        }
    }

    fn input<'a>(ms: &'a [Migration], ledger: &'a [LedgerRow]) -> PlanInput<'a> {
        PlanInput {
            env: "dev",
            mode: Mode::Managed,
            dialect: Dialect::Postgres,
            migrations: ms,
            ledger,
            stop_at: None,
            waive: Waive::NONE,
            only: None,
            accepted: None,
        }
    }

    fn versions(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| s.migration.id().to_owned())
            .collect()
    }

    #[test]
    fn pending_in_order_up_to_the_target() {
        let ms = migrations(&[
            ("1_a.sql", "a"),
            ("2_b.sql", "b"),
            ("2_b.down.sql", "drop b"),
            ("3_c.sql", "CREATE INDEX CONCURRENTLY i ON t (c);"),
            ("4_d.sql", "d"),
        ]);
        let ledger = [row("1", "a", true)];
        let p = plan(&input(&ms, &ledger)).unwrap();
        assert_eq!(versions(&p), ["2", "3", "4"]);
        assert_eq!(p.applied, ["1"]);
        assert_eq!(p.from, Some("1"));
        assert_eq!(
            p.steps[1].no_transaction.as_deref(),
            Some("CREATE INDEX CONCURRENTLY")
        );
        assert!(p.needs_session());
        assert!(p.blockers.is_empty());
        assert_eq!(
            p.warnings,
            [
                Warning::NoDown {
                    version: "3".into()
                },
                Warning::NoDown {
                    version: "4".into()
                }
            ]
        );
        let p = plan(&PlanInput {
            stop_at: Some("3"),
            ..input(&ms, &ledger)
        })
        .unwrap();
        assert_eq!(versions(&p), ["2", "3"]);
        assert_eq!(p.stop_at.unwrap().id(), "3");
        let p = plan(&PlanInput {
            stop_at: Some("1"),
            ..input(&ms, &ledger)
        })
        .unwrap();
        assert!(p.steps.is_empty());
        assert_eq!(
            plan(&PlanInput {
                stop_at: Some("9"),
                ..input(&ms, &ledger)
            })
            .unwrap_err(),
            PlanError::UnknownTarget("9".into())
        );
    }

    #[test]
    fn drift_and_failures_before_the_target_block() {
        let ms = migrations(&[
            ("1_a.sql", "a"),
            ("2_b.sql", "b"),
            ("3_c.sql", "c"),
            ("4_d.sql", "d"),
        ]);
        let ledger = [
            row("1", "a (edited since)", true),
            row("2", "b", true),
            row("3", "c", false),
        ];
        let p = plan(&input(&ms, &ledger)).unwrap();
        assert_eq!(versions(&p), ["4"]);
        assert_eq!(p.blockers.len(), 2);
        assert!(matches!(&p.blockers[0], Blocker::Drifted { version, .. } if version == "1"));
        assert!(matches!(&p.blockers[1], Blocker::Failed { version, .. } if version == "3"));
        // Beyond the target, they do not matter.
        let ledger = [
            row("1", "a", true),
            row("2", "b", true),
            row("3", "c (edited)", true),
        ];
        let p = plan(&PlanInput {
            stop_at: Some("2"),
            ..input(&ms, &ledger)
        })
        .unwrap();
        assert!(p.blockers.is_empty());
        // Waived, they go through and the failed one is retried.
        let ledger = [
            row("1", "a (edited since)", true),
            row("2", "b", true),
            row("3", "c", false),
        ];
        let p = plan(&PlanInput {
            waive: Waive::ALL,
            only: None,
            accepted: None,
            ..input(&ms, &ledger)
        })
        .unwrap();
        assert!(p.blockers.is_empty());
        assert_eq!(versions(&p), ["3", "4"]);
        assert!(p.steps[0].retry);
        assert_eq!(p.applied, ["1", "2"]);
        // Retrying a fixed failure does not waive unrelated drift, and
        // letting drift through does not rerun a failure.
        let only = |waive| {
            plan(&PlanInput {
                waive,
                only: None,
                accepted: None,
                ..input(&ms, &ledger)
            })
            .unwrap()
        };
        let retry = only(Waive {
            drift: false,
            failed: true,
        });
        assert!(matches!(retry.blockers[..], [Blocker::Drifted { .. }]));
        let drift = only(Waive {
            drift: true,
            failed: false,
        });
        assert!(matches!(drift.blockers[..], [Blocker::Failed { .. }]));
    }

    #[test]
    fn out_of_order_and_missing_are_warned() {
        let ms = migrations(&[("1_a.sql", "a"), ("2_b.sql", "b"), ("3_c.sql", "c")]);
        let ledger = [
            row("1", "a", true),
            row("3", "c", true),
            row("7", "gone", true),
        ];
        let p = plan(&input(&ms, &ledger)).unwrap();
        assert_eq!(versions(&p), ["2"]);
        assert!(p.steps[0].out_of_order);
        assert!(p.warnings.contains(&Warning::Missing {
            version: "7".into()
        }));
        assert!(p.warnings.contains(&Warning::OutOfOrder {
            version: "2".into(),
            newest_applied: "7".into()
        }));
        assert_eq!(p.applied, ["1", "3", "7"]);
    }
}
