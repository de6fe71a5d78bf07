//! The JSON output contract of `envgate status --format json`
//! (`schema_version` 1, documented in the README).
//!
//! ```json
//! {"schema_version": 1,
//!  "environments": [{"name", "mode", "mode_source", "ledger", "reachable", "error",
//!                    "counts": {"applied", "pending", "drifted", "failed", "missing"}}],
//!  "migrations": [{"id", "version", "name", "file", "sha256",
//!                  "cells": {"<env>": {"state", "applied_at", "applied_sha256", "out_of_order"}}}]}
//! ```
//!
//! Serialized straight from the matrix, without copying it.

use crate::config::EnvConfig;
use crate::core::checksum::{ContentHash, RecordedHash};
use crate::core::matrix::{Cell, Compared, Counts, Matrix, Row, State};
use crate::core::mode::{Mode, ModeSource};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

pub const SCHEMA_VERSION: u32 = 1;

/// The whole report: the environments (in the same order as the matrix's
/// columns) and the matrix.
#[derive(Serialize)]
pub struct StatusReport<'a> {
    schema_version: u32,
    environments: Vec<EnvReport<'a>>,
    migrations: Migrations<'a>,
}

#[derive(Serialize)]
struct EnvReport<'a> {
    name: &'a str,
    mode: Mode,
    mode_source: ModeSource,
    ledger: &'static str,
    reachable: bool,
    /// Why the environment could not be read; credentials masked.
    error: Option<&'a str>,
    counts: Counts,
}

struct Migrations<'a> {
    envs: &'a [&'a EnvConfig],
    matrix: &'a Matrix<'a>,
}

#[derive(Serialize)]
struct MigrationReport<'a> {
    /// Stable identifier of the migration across runs and tools.
    id: &'a str,
    /// The identifier the ledger uses.
    version: &'a str,
    name: &'a str,
    /// The file, relative to the configuration's directory; null when
    /// missing from the repository.
    file: Option<&'a str>,
    /// Today's content hash as 64 hex digits; null when missing.
    sha256: Option<Hex<'a>>,
    cells: Cells<'a>,
}

/// Cells keyed by environment name, in promotion order.
struct Cells<'a> {
    envs: &'a [&'a EnvConfig],
    row: &'a Row<'a>,
    cells: &'a [Cell<'a>],
}

#[derive(Serialize)]
struct CellReport<'a> {
    state: State,
    applied_at: Option<&'a str>,
    /// envgate's hash when applied (or when first observed applied, for
    /// ledgers whose checksum envgate cannot recompute, or that have none);
    /// null where the tool's own checksum decides (see `checksum`).
    applied_sha256: Option<Recorded<'a>>,
    /// The checksum the environment's own tool recorded, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied_checksum: Option<&'a str>,
    /// The tool's checksum, like with like: as recorded, and recomputed
    /// from today's file (null when envgate cannot recompute it).
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<ChecksumReport<'a>>,
    out_of_order: bool,
    /// Why the state is what it is, when that is not obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// A failed cell: what the ledger recorded about the run, when it
    /// recorded anything (an interrupted run says so here).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// The row a bundle wrote holds another hash than its manifest lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    tampered: Option<TamperedReport<'a>>,
}

#[derive(Serialize)]
struct ChecksumReport<'a> {
    /// The tool's algorithm, e.g. `MD5 (checksum version 9)`.
    algorithm: Option<&'static str>,
    recorded: &'a str,
    today: Option<&'a str>,
}

#[derive(Serialize)]
struct TamperedReport<'a> {
    bundle_id: Option<&'a str>,
    /// What the bundle's manifest says it records.
    manifest_sha256: &'a str,
}

/// A content hash written as hex without an intermediate string.
struct Hex<'a>(&'a ContentHash);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

enum Recorded<'a> {
    Hash(&'a ContentHash),
    Raw(&'a str),
}

impl Serialize for Recorded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Recorded::Hash(h) => s.collect_str(h),
            Recorded::Raw(raw) => s.serialize_str(raw),
        }
    }
}

/// What the ledger says about a failed cell's run.
pub fn failure<'a>(cell: &Cell<'a>) -> Option<&'a str> {
    match cell.state {
        State::Failed => cell.ledger.and_then(|l| l.error.as_deref()),
        _ => None,
    }
}

/// envgate's hash for a cell, from the ledger or from a first observation;
/// none where the tool's own recomputed checksum decides.
fn applied_sha256<'a>(cell: &Cell<'a>, row: &Row<'a>) -> Option<Recorded<'a>> {
    match cell.applied_hash() {
        Some(RecordedHash::Sha256Lf(h)) => Some(Recorded::Hash(h)),
        Some(RecordedHash::Unknown(raw)) => Some(Recorded::Raw(raw)),
        Some(RecordedHash::Tool(_)) if row.checksum.is_some() => None,
        _ => cell.observed.map(|o| Recorded::Hash(&o.hash)),
    }
}

fn applied_checksum<'a>(cell: &Cell<'a>) -> Option<&'a str> {
    match cell.applied_hash() {
        Some(RecordedHash::Tool(v) | RecordedHash::Unverifiable(v)) => Some(v),
        _ => None,
    }
}

fn checksum<'a>(env: &EnvConfig, cell: &Cell<'a>, row: &Row<'a>) -> Option<ChecksumReport<'a>> {
    let recorded = applied_checksum(cell)?;
    Some(ChecksumReport {
        algorithm: env.ledger.checksum(),
        recorded,
        today: row.checksum,
    })
}

/// The note a cell carries, if any.
pub fn cell_note<'a>(cell: &Cell<'a>, row: &Row<'a>) -> Option<String> {
    if let (Some(m), Some(row)) = (cell.tampered, cell.ledger) {
        return Some(format!(
            "tampered: bundle {} records {m}, the ledger holds {}",
            crate::core::exported::bundle_of(row).unwrap_or("?"),
            row.hash.display()
        ));
    }
    if cell.rerun {
        return Some("repeatable: its content changed, so it runs again".to_owned());
    }
    if let Some(a) = cell.accepted {
        return Some(format!(
            "drift accepted by {} at {}: {}",
            a.actor, a.at, a.reason
        ));
    }
    match (cell.state, cell.applied_hash(), cell.compared(row)) {
        (State::Drifted, _, Some(Compared::FirstSeen { at, .. })) => {
            Some(format!("changed since first observed applied at {at}"))
        }
        (State::Applied, Some(RecordedHash::Unverifiable(v)), None) => Some(format!(
            "the recorded checksum {v} cannot be recomputed by envgate"
        )),
        _ => None,
    }
}

impl Serialize for Migrations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.matrix.rows.len()))?;
        for (r, row) in self.matrix.rows.iter().enumerate() {
            let Row {
                version,
                name,
                file,
                hash,
                ..
            } = row;
            seq.serialize_element(&MigrationReport {
                id: version,
                version,
                name,
                file: *file,
                sha256: hash.as_ref().map(Hex),
                cells: Cells {
                    envs: self.envs,
                    row,
                    cells: self.matrix.cells(r),
                },
            })?;
        }
        seq.end()
    }
}

impl Serialize for Cells<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.cells.len()))?;
        for (env, cell) in self.envs.iter().zip(self.cells) {
            map.serialize_entry(
                &env.name,
                &CellReport {
                    state: cell.state,
                    applied_at: cell.applied_at(),
                    applied_sha256: applied_sha256(cell, self.row),
                    applied_checksum: applied_checksum(cell),
                    checksum: checksum(env, cell, self.row),
                    out_of_order: cell.out_of_order,
                    note: cell_note(cell, self.row),
                    error: failure(cell),
                    tampered: cell.tampered.map(|m| TamperedReport {
                        bundle_id: cell.ledger.and_then(crate::core::exported::bundle_of),
                        manifest_sha256: m,
                    }),
                },
            )?;
        }
        map.end()
    }
}

/// Builds the report; `envs` are the environments the matrix was computed
/// for, in the same order.
pub fn build<'a>(envs: &'a [&'a EnvConfig], matrix: &'a Matrix<'a>) -> StatusReport<'a> {
    let environments = envs
        .iter()
        .zip(&matrix.envs)
        .map(|(cfg, col)| EnvReport {
            name: &cfg.name,
            mode: cfg.mode,
            mode_source: cfg.mode_source,
            ledger: cfg.ledger.as_str(),
            reachable: col.reachable(),
            error: col.error,
            counts: col.counts,
        })
        .collect();
    StatusReport {
        schema_version: SCHEMA_VERSION,
        environments,
        migrations: Migrations { envs, matrix },
    }
}

/// `envgate plan --format json` (schema_version 1).
#[derive(Serialize)]
pub struct PlanReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub mode: Mode,
    pub mode_source: ModeSource,
    /// What the mode lets envgate do here.
    pub allows: Allows,
    /// The newest applied version, if any.
    pub from: Option<&'a str>,
    /// `--to`, if given.
    pub target: Option<&'a str>,
    pub steps: Vec<PlanStepReport<'a>>,
    pub warnings: &'a [crate::core::plan::Warning],
    pub blockers: &'a [crate::core::plan::Blocker],
}

#[derive(Serialize)]
pub struct Allows {
    pub apply: bool,
    pub export: bool,
}

#[derive(Serialize)]
pub struct PlanStepReport<'a> {
    pub version: &'a str,
    pub name: &'a str,
    pub file: &'a str,
    pub sha256: String,
    pub transaction: bool,
    /// Why it runs outside a transaction.
    pub no_transaction_reason: Option<&'a str>,
    /// Replaces a failed run recorded in the ledger.
    pub retry: bool,
    pub out_of_order: bool,
    pub has_down: bool,
}

pub fn plan_report<'a>(
    env: &'a EnvConfig,
    plan: &'a crate::core::plan::Plan<'a>,
) -> PlanReport<'a> {
    PlanReport {
        schema_version: SCHEMA_VERSION,
        environment: &env.name,
        mode: env.mode,
        mode_source: env.mode_source,
        allows: Allows {
            apply: env.mode.allows_writes(),
            export: true,
        },
        from: plan.from,
        target: plan.stop_at.map(|m| m.id()),
        steps: plan
            .steps
            .iter()
            .map(|s| PlanStepReport {
                version: s.migration.id(),
                name: &s.migration.name,
                file: &s.migration.up.path,
                sha256: s.migration.up.hash.hex(),
                transaction: s.no_transaction.is_none(),
                no_transaction_reason: s.no_transaction.as_deref(),
                retry: s.retry,
                out_of_order: s.out_of_order,
                has_down: s.migration.down.is_some(),
            })
            .collect(),
        warnings: &plan.warnings,
        blockers: &plan.blockers,
    }
}

/// `envgate export --format json` (schema_version 1).
#[derive(Serialize)]
pub struct ExportReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub mode: Mode,
    /// `exported`, `nothing_to_do` or `refused`.
    pub status: &'static str,
    pub bundle: Option<BundleFiles>,
    pub blockers: &'a [crate::core::plan::Blocker],
    pub warnings: &'a [crate::core::plan::Warning],
}

#[derive(Serialize)]
pub struct BundleFiles {
    pub bundle_id: String,
    pub sql: String,
    pub manifest: String,
    pub sha256: String,
    pub from: Option<String>,
    pub to: String,
    pub migrations: usize,
    /// How to apply it.
    pub apply_with: String,
}
