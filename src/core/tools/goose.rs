//! goose: `<int64>_<name>.sql|.go` with `-- +goose Up`; ledger
//! `goose_db_version(id, version_id, is_applied, tstamp)`: the newest row
//! per version decides (older goose recorded downs as `is_applied = false`
//! rows), version 0 is the table's own marker. No checksum.

use super::{Layout, TextRow, base, col, integer_id, is_true, leading_digits, opt, time_sql};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;

fn parse(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".sql")
        .or_else(|| file.strip_suffix(".go"))?;
    let digits = leading_digits(stem);
    let name = stem[digits.len()..].strip_prefix('_')?;
    (!digits.is_empty() && integer_id(digits) != "0").then_some((digits, name))
}

pub fn candidate(rel: &str) -> bool {
    parse(base(rel)).is_some()
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    super::numbered(files, parse, None)
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT version_id, is_applied, {} FROM {table} ORDER BY id DESC",
        time_sql("tstamp", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in &rows {
        let version = integer_id(col(r, 0, "version_id")?);
        if version == "0" || !seen.insert(version.clone()) {
            continue;
        }
        if is_true(col(r, 1, "is_applied")?) {
            out.push(LedgerRow {
                via: None,
                version,
                name: String::new(),
                hash: RecordedHash::None,
                applied_at: opt(r, 2),
                success: true,
                error: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_row_per_version_wins_and_zero_is_skipped() {
        let row = |v: &str, applied: &str| vec![Some(v.into()), Some(applied.into()), None];
        // ORDER BY id DESC: 3 was rolled back after being applied.
        let rows = ledger(vec![
            row("3", "f"),
            row("3", "t"),
            row("2", "t"),
            row("0", "t"),
        ])
        .unwrap();
        assert_eq!(
            rows.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(),
            ["2"]
        );
    }
}
