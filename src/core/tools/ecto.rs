//! Ecto (Phoenix): `priv/repo/migrations/**/<int>_<name>.exs`, ledger
//! `schema_migrations(version bigint, inserted_at)`. No checksum.

use super::{Layout, TextRow, base, col, integer_id, leading_digits, opt, plain_row, time_sql};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;

fn parse(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".exs")?;
    let digits = leading_digits(stem);
    let name = stem[digits.len()..].strip_prefix('_')?;
    (!digits.is_empty() && !name.is_empty()).then_some((digits, name))
}

pub fn candidate(rel: &str) -> bool {
    let file = base(rel);
    parse(file).is_some() || file.ends_with(".ex")
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    super::numbered(
        files,
        parse,
        Some("Ecto runs only .exs migrations (.ex files are skipped)"),
    )
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT version, {} FROM {table}",
        time_sql("inserted_at", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(plain_row(
                integer_id(col(r, 0, "version")?),
                String::new(),
                opt(r, 1),
            ))
        })
        .collect()
}
