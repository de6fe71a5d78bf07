//! golang-migrate: `<n>_<title>.up.<ext>` / `.down.<ext>`; the ledger
//! `schema_migrations(version, dirty)` holds at most one row: every file up
//! to that version is applied, and a dirty row marks that version failed
//! (a failed down names the version below, or -1 before the first).

use super::{
    Found, Layout, Order, TextRow, assemble, base, col, integer_id, is_true, leading_digits,
    plain_row,
};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, Migration, SourceFile};
use crate::core::sql::Dialect;
use crate::core::version::Version;

/// (version digits, title, up?) of `<n>_<title>.up.<ext>`.
fn parse(file: &str) -> Option<(&str, &str, bool)> {
    let digits = leading_digits(file);
    let rest = file[digits.len()..].strip_prefix('_')?;
    let (title, dir) = if let Some(i) = rest.find(".up.") {
        (&rest[..i], true)
    } else if let Some(i) = rest.find(".down.") {
        (&rest[..i], false)
    } else {
        return None;
    };
    (!digits.is_empty()).then_some((digits, title, dir))
}

pub fn candidate(rel: &str) -> bool {
    parse(base(rel)).is_some()
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut downs = std::collections::HashMap::new();
    let mut ups = Vec::new();
    for f in files {
        let Some((digits, title, up)) = parse(base(&f.path)) else {
            continue;
        };
        let (id, title) = (integer_id(digits), title.to_owned());
        if up {
            ups.push((id, title, f));
        } else {
            downs.insert(id, f);
        }
    }
    let found = ups
        .into_iter()
        .map(|(id, name, f)| Found {
            order: Order::Version(id.clone()),
            down: downs.remove(&id),
            id,
            name,
            up: f,
            repeatable: false,
            checksums: Vec::new(),
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, _dialect: Dialect) -> String {
    format!("SELECT version, dirty FROM {table}")
}

/// Expands the single row into one row per migration up to it.
pub fn ledger(rows: Vec<TextRow>, migrations: &[Migration]) -> Result<Vec<LedgerRow>, String> {
    if rows.len() > 1 {
        return Err(format!(
            "holds {} rows; golang-migrate keeps at most one",
            rows.len()
        ));
    }
    let Some(row) = rows.first() else {
        return Ok(Vec::new());
    };
    let version = col(row, 0, "version")?;
    let dirty = is_true(col(row, 1, "dirty")?);
    if version.starts_with('-') {
        // A failed down of the first migration.
        return Ok(Vec::new());
    }
    let current = integer_id(version);
    let limit =
        Version::parse(&current).ok_or_else(|| format!("version '{version}' is not a number"))?;
    let mut out: Vec<LedgerRow> = migrations
        .iter()
        .filter(|m| m.version <= limit)
        .map(|m| plain_row(m.id().to_owned(), m.name.clone(), None))
        .collect();
    match out.iter_mut().find(|r| r.version == current) {
        Some(r) => r.success = !dirty,
        None => out.push(LedgerRow {
            via: None,
            success: !dirty,
            ..plain_row(current, String::new(), None)
        }),
    }
    Ok(out)
}
