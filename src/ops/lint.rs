//! The lint of migrations, written once for `envgate lint`, the bot's
//! review and `envgate ci`: which migrations, what the ledgers say about
//! them, and the findings ([`crate::core::lint`]).

use super::world::World;
use super::{Failure, environments, load};
use crate::config::Config;
use crate::core::lint::{self, Context, Finding};
use crate::core::matrix::{Matrix, State};
use crate::core::migration::Migration;
use crate::core::sql::Dialect;
use crate::core::tools::Tool;
use crate::db::Target;
use std::collections::{HashMap, HashSet};

/// The dialect the migrations are written for: PostgreSQL when any
/// environment is (squawk's rules then apply), else the environments' own,
/// else PostgreSQL.
pub fn dialect(targets: &[Result<Target, String>]) -> Dialect {
    let dialects: Vec<Dialect> = targets
        .iter()
        .filter_map(|t| t.as_ref().ok())
        .map(environments::dialect)
        .collect();
    if dialects.is_empty() || dialects.contains(&Dialect::Postgres) {
        Dialect::Postgres
    } else {
        dialects[0]
    }
}

/// The findings for `selected`, with what the matrix says about them
/// (environments where a file was applied with other content).
pub fn findings(
    config: &Config,
    world: &World<'_>,
    matrix: Option<&Matrix<'_>>,
    selected: &[&Migration],
) -> Vec<Finding> {
    let dialect = dialect(&world.targets);
    // Each row by its migration, found once rather than searched for each.
    let rows: HashMap<&str, usize> = matrix.map_or_else(HashMap::new, |m| {
        m.rows
            .iter()
            .enumerate()
            .map(|(r, row)| (row.version, r))
            .collect()
    });
    let inputs: Vec<(&Migration, Context)> = selected
        .iter()
        .map(|m| {
            let mut applied_otherwise = Vec::new();
            if let Some(matrix) = matrix
                && let Some(&r) = rows.get(m.id())
            {
                for (e, cell) in matrix.cells(r).iter().enumerate() {
                    if cell.state == State::Drifted {
                        let recorded = cell
                            .applied_hash()
                            .map(|h| h.display().to_string())
                            .unwrap_or_else(|| "another version".to_owned());
                        applied_otherwise.push((matrix.envs[e].name.to_owned(), recorded));
                    }
                }
            }
            (
                *m,
                Context {
                    applied_otherwise,
                    downs_exist: config.format == Tool::Envgate,
                },
            )
        })
        .collect();
    lint::lint(&inputs, dialect, &config.lint)
}

/// The migrations whose up (or down) file is one of `paths` (relative to
/// envgate.toml's directory), or the name of the first path that is none.
pub fn by_paths<'m>(
    migrations: &'m [Migration],
    paths: &[String],
) -> Result<Vec<&'m Migration>, String> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.trim_start_matches("./");
        let m = migrations
            .iter()
            .find(|m| m.up.path == p || m.down.as_ref().is_some_and(|d| d.path == p))
            .ok_or_else(|| format!("{p} is not a migration envgate.toml's layout reads"))?;
        if !out.iter().any(|x: &&Migration| x.id() == m.id()) {
            out.push(m);
        }
    }
    Ok(out)
}

/// The migrations not applied as they are in every environment that could
/// be read (all of them when none could): what is new, and what was edited
/// after it was applied.
pub fn unapplied<'m>(migrations: &'m [Migration], matrix: &Matrix<'_>) -> Vec<&'m Migration> {
    let readable: Vec<usize> = (0..matrix.envs.len())
        .filter(|&e| matrix.envs[e].reachable())
        .collect();
    if readable.is_empty() {
        return migrations.iter().collect();
    }
    let done: HashSet<&str> = matrix
        .rows
        .iter()
        .enumerate()
        .filter(|(r, _)| {
            readable
                .iter()
                .all(|&e| matrix.cells(*r)[e].state == State::Applied)
        })
        .map(|(_, row)| row.version)
        .collect();
    migrations
        .iter()
        .filter(|m| !done.contains(m.id()))
        .collect()
}

/// The migrations alone, without reading any environment (`--offline`).
pub fn discover(config: &Config) -> Result<Vec<Migration>, Failure> {
    load::discover(config, None)
        .map(|d| d.migrations)
        .map_err(Failure::usage)
}
