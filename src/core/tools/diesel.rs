//! diesel: `migrations/<version>_<name>/up.sql` (+ `down.sql`); the version
//! is the directory name up to the first `_` with every `-` removed
//! (`2015-12-19-180527_create_users` → `20151219180527`); ledger
//! `__diesel_schema_migrations(version, run_on)`. No checksum.

use super::{Found, Layout, Order, TextRow, assemble, col, opt, plain_row, time_sql};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;

/// The migration directory of an `up.sql`/`down.sql` path.
fn dir_of(rel: &str) -> Option<(&str, bool)> {
    let (dir, file) = rel.rsplit_once('/')?;
    let dir = dir.rsplit('/').next().unwrap_or(dir);
    if dir.starts_with('.') {
        return None;
    }
    match file {
        "up.sql" => Some((dir, true)),
        "down.sql" => Some((dir, false)),
        _ => None,
    }
}

pub fn version_of(dir: &str) -> String {
    dir.split('_').next().unwrap_or(dir).replace('-', "")
}

pub fn candidate(rel: &str) -> bool {
    dir_of(rel).is_some()
}

pub fn discover(files: Vec<SourceFile>, layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut downs = std::collections::HashMap::new();
    let mut ups = Vec::new();
    for f in files {
        let Some((dir, up)) = dir_of(layout.rel(&f.path)) else {
            continue;
        };
        let dir = dir.to_owned();
        if up {
            ups.push((dir, f));
        } else {
            downs.insert(dir, f);
        }
    }
    let found = ups
        .into_iter()
        .map(|(dir, f)| {
            let version = version_of(&dir);
            let name = dir.split_once('_').map_or("", |(_, n)| n).to_owned();
            Found {
                order: Order::Text(version.clone()),
                down: downs.remove(&dir),
                id: version,
                name,
                up: f,
                repeatable: false,
                checksums: Vec::new(),
            }
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT version, {} FROM {table}",
        time_sql("run_on", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(plain_row(
                col(r, 0, "version")?.to_owned(),
                String::new(),
                opt(r, 1),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_drop_dashes() {
        assert_eq!(
            super::version_of("2015-12-19-180527_create_users"),
            "20151219180527"
        );
        assert_eq!(
            super::version_of("00000000000000_diesel_initial_setup"),
            "00000000000000"
        );
    }
}
