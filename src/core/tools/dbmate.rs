//! dbmate: `db/migrations/<digits>*.sql` with `-- migrate:up` and
//! `-- migrate:down` blocks; ledger `schema_migrations(version)` holding the
//! leading digits as text, leading zeros kept (exact match). No checksum.

use super::{Found, Layout, Order, TextRow, assemble, base, col, leading_digits, plain_row};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};

pub fn candidate(rel: &str) -> bool {
    !rel.contains('/') && rel.ends_with(".sql") && !leading_digits(rel).is_empty()
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let found = files
        .into_iter()
        .map(|f| {
            let file = base(&f.path).to_owned();
            let version = leading_digits(&file).to_owned();
            let name = file[version.len()..]
                .trim_end_matches(".sql")
                .trim_start_matches('_')
                .to_owned();
            Found {
                order: Order::Version(version.clone()),
                id: version,
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

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(plain_row(
                col(r, 0, "version")?.to_owned(),
                String::new(),
                None,
            ))
        })
        .collect()
}
