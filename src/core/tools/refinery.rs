//! refinery: `V<n>__<name>.sql` (versioned) and `U<n>__<name>.sql`
//! (unversioned, may run out of order), searched recursively; ledger
//! `refinery_schema_history(version, name, applied_on, checksum)`. The
//! checksum is SipHash-1-3 with zero keys over the migration's name, its
//! version (i32, little-endian) and its SQL as read, each string followed by
//! 0xFF as Rust's `Hash` writes it; stored as an unsigned decimal.

use super::{Found, Layout, Order, TextRow, assemble, base, col, ignored, opt};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;
use std::hash::{Hash, Hasher};

/// (prefix, version, name) of `V1__name.sql`.
fn parse(file: &str) -> Option<(char, &str, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let prefix = stem.chars().next().filter(|c| *c == 'V' || *c == 'U')?;
    let (version, name) = stem[1..].split_once("__")?;
    let numeric = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    let word = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    (numeric && word).then_some((prefix, version, name))
}

pub fn candidate(rel: &str) -> bool {
    let file = base(rel);
    file.ends_with(".sql") && (file.starts_with('V') || file.starts_with('U'))
}

/// refinery's checksum of a migration.
pub fn checksum(name: &str, version: i32, sql: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new();
    name.hash(&mut h);
    version.hash(&mut h);
    sql.hash(&mut h);
    h.finish()
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut skipped = Vec::new();
    let mut found = Vec::new();
    for f in files {
        let Some((_, version, name)) = parse(base(&f.path)) else {
            skipped.push(ignored(
                &f.path,
                "not a refinery migration name: expected V<n>__<name>.sql or U<n>__<name>.sql",
            ));
            continue;
        };
        let (version, name) = (version.to_owned(), name.to_owned());
        let checksums = match (version.parse::<i32>(), std::str::from_utf8(&f.bytes)) {
            (Ok(v), Ok(sql)) => vec![checksum(&name, v, sql).to_string()],
            _ => Vec::new(),
        };
        let id = version.trim_start_matches('0').to_owned();
        let id = if id.is_empty() { "0".to_owned() } else { id };
        found.push(Found {
            order: Order::Version(id.clone()),
            id,
            name,
            up: f,
            down: None,
            repeatable: false,
            checksums,
        });
    }
    assemble(found, skipped)
}

pub fn select_sql(table: &str, _dialect: Dialect) -> String {
    format!("SELECT version, name, applied_on, checksum FROM {table}")
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(LedgerRow {
                via: None,
                version: col(r, 0, "version")?.to_owned(),
                name: col(r, 1, "name")?.to_owned(),
                hash: opt(r, 3).map_or(RecordedHash::None, RecordedHash::Tool),
                applied_at: opt(r, 2),
                success: true,
                error: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        // rust-db/refinery: refinery/tests/mysql.rs,
        // updates_to_last_working_if_not_grouped, with
        // refinery/tests/migrations_broken/V1__initial.sql and V2__add_cars_table.sql.
        assert_eq!(
            checksum(
                "initial",
                1,
                "CREATE TABLE persons (\n    id int,\n    name varchar(255),\n    city varchar(255)\n);\n"
            ),
            2959965718684201605
        );
        assert_eq!(
            checksum(
                "add_cars_table",
                2,
                "CREATE TABLE cars (\n    id int,\n    name varchar(255)\n);\n"
            ),
            8238603820526370208
        );
        // LEDGERS.md §8, derived.
        assert_eq!(checksum("initial", 1, "SELECT 1;\n"), 10145367301335201120);
    }

    #[test]
    fn names() {
        assert_eq!(parse("V1__initial.sql"), Some(('V', "1", "initial")));
        assert_eq!(parse("U2__add_cars.sql"), Some(('U', "2", "add_cars")));
        assert_eq!(parse("V1__has-dash.sql"), None);
        assert_eq!(parse("V1_1__x.sql"), None);
    }
}
