//! Knex: `migrations/<name>.<js|cjs|mjs|ts|…>`; ledger
//! `knex_migrations(id, name, batch, migration_time)` with the file name
//! *including* its extension. No checksum.

use super::{Found, Layout, Order, TextRow, assemble, base, col, opt, plain_row, time_sql};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;

const EXTENSIONS: [&str; 11] = [
    ".js",
    ".cjs",
    ".mjs",
    ".ts",
    ".cts",
    ".mts",
    ".coffee",
    ".co",
    ".eg",
    ".iced",
    ".litcoffee",
];

pub fn candidate(rel: &str) -> bool {
    !rel.contains('/') && !rel.ends_with(".d.ts") && EXTENSIONS.iter().any(|e| rel.ends_with(e))
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let found = files
        .into_iter()
        .map(|f| {
            let file = base(&f.path).to_owned();
            Found {
                order: Order::Text(file.clone()),
                id: file,
                name: String::new(),
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
        "SELECT name, {} FROM {table} ORDER BY id",
        time_sql("migration_time", dialect)
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
