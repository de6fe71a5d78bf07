//! The JSON output contract of `envgate status --format json`
//! (`schema_version` 1, documented in the README).

use crate::config::EnvConfig;
use crate::core::matrix::{Counts, Matrix, State};
use crate::core::mode::{Mode, ModeSource};
use indexmap::IndexMap;
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub schema_version: u32,
    pub environments: Vec<EnvReport>,
    pub migrations: Vec<MigrationReport>,
}

#[derive(Debug, Serialize)]
pub struct EnvReport {
    pub name: String,
    pub mode: Mode,
    pub mode_source: ModeSource,
    pub ledger: &'static str,
    pub reachable: bool,
    /// Why the environment could not be read; credentials masked.
    pub error: Option<String>,
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct MigrationReport {
    /// Stable identifier of the migration across runs and tools.
    pub id: String,
    /// The identifier the ledger uses.
    pub version: String,
    pub name: String,
    /// The file, relative to the configuration's directory; null when
    /// missing from the repository.
    pub file: Option<String>,
    /// Today's content hash as 64 hex digits; null when missing.
    pub sha256: Option<String>,
    /// Keyed by environment name, in promotion order.
    pub cells: IndexMap<String, CellReport>,
}

#[derive(Debug, Serialize)]
pub struct CellReport {
    pub state: State,
    pub applied_at: Option<String>,
    pub applied_sha256: Option<String>,
    pub out_of_order: bool,
}

/// Builds the report; `envs` are the environments the matrix was computed
/// for, in the same order.
pub fn build(envs: &[&EnvConfig], matrix: &Matrix) -> StatusReport {
    let environments = envs
        .iter()
        .zip(&matrix.envs)
        .map(|(cfg, col)| EnvReport {
            name: cfg.name.clone(),
            mode: cfg.mode,
            mode_source: cfg.mode_source,
            ledger: cfg.ledger.as_str(),
            reachable: col.reachable(),
            error: col.error.clone(),
            counts: col.counts,
        })
        .collect();
    let migrations = matrix
        .rows
        .iter()
        .map(|row| MigrationReport {
            id: row.version.clone(),
            version: row.version.clone(),
            name: row.name.clone(),
            file: row.file.clone(),
            sha256: row.hash.map(|h| h.hex()),
            cells: envs
                .iter()
                .zip(&row.cells)
                .map(|(cfg, cell)| {
                    (
                        cfg.name.clone(),
                        CellReport {
                            state: cell.state,
                            applied_at: cell.applied_at.clone(),
                            applied_sha256: cell.applied_hash.clone(),
                            out_of_order: cell.out_of_order,
                        },
                    )
                })
                .collect(),
        })
        .collect();
    StatusReport {
        schema_version: SCHEMA_VERSION,
        environments,
        migrations,
    }
}
