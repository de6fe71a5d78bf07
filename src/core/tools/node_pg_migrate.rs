//! node-pg-migrate: `migrations/<number>_<name>.<js|ts|sql|…>`; ledger
//! `pgmigrations(id, name, run_on)` with the file name *without* its
//! extension. No checksum.

use super::{Found, Layout, Order, TextRow, assemble, base, col, opt, plain_row, time_sql};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;

const EXTENSIONS: [&str; 7] = [".js", ".cjs", ".mjs", ".ts", ".cts", ".mts", ".sql"];

pub fn candidate(rel: &str) -> bool {
    !rel.contains('/') && !rel.ends_with(".d.ts") && EXTENSIONS.iter().any(|e| rel.ends_with(e))
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let found = files
        .into_iter()
        .map(|f| {
            let file = base(&f.path);
            let id = file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned();
            Found {
                order: Order::Text(id.clone()),
                name: String::new(),
                id,
                up: f,
                down: None,
                repeatable: false,
                checksums: Vec::new(),
            }
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT name, {} FROM {table} ORDER BY run_on, id",
        time_sql("run_on", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            let name = col(r, 0, "name")?.to_owned();
            Ok(plain_row(name.clone(), name, opt(r, 1)))
        })
        .collect()
}
