//! Laravel: `database/migrations/<YYYY_MM_DD_HHMMSS>_<name>.php`, run in
//! file-name order; ledger `migrations(id, migration, batch)` holding each
//! file's name without `.php`. No checksum (first-observed drift) and no
//! time of application (the batch number only).

use super::{Found, Layout, Order, TextRow, assemble, base, col, plain_row};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};

pub fn candidate(rel: &str) -> bool {
    !rel.contains('/') && rel.ends_with(".php")
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let found = files
        .into_iter()
        .map(|f| {
            let stem = base(&f.path).trim_end_matches(".php").to_owned();
            // `2014_10_12_000000_create_users_table`: the name after the
            // four date and time groups, when they are there.
            let parts: Vec<&str> = stem.splitn(5, '_').collect();
            let dated = parts.len() == 5
                && parts[..4]
                    .iter()
                    .all(|p| p.chars().all(|c| c.is_ascii_digit()));
            let name = if dated {
                parts[4].to_owned()
            } else {
                stem.clone()
            };
            Found {
                order: Order::Text(stem.clone()),
                id: stem,
                name,
                up: f,
                down: None,
                repeatable: false,
                checksums: Vec::new(),
            }
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str) -> String {
    format!("SELECT migration, batch FROM {table}")
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(plain_row(
                col(r, 0, "migration")?.to_owned(),
                String::new(),
                None,
            ))
        })
        .collect()
}
