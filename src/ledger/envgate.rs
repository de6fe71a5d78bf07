//! envgate's own ledger table, `envgate_migrations`.
//!
//! | column | meaning |
//! |---|---|
//! | `version` | the migration's version (primary key) |
//! | `name` | its name |
//! | `sha256` | the content hash when applied, tagged: `sha256-lf:<hex>` |
//! | `applied_at` | when it was applied (UTC) |
//! | `applied_by` | who applied it |
//! | `execution_ms` | how long it ran |
//! | `success` | `false` records a failed run |
//! | `release` | the release it was applied with, if any |
//! | `applied_via` | `managed`, or `bundle:<id>` when a bundle applied it |
//! | `error` | the database's error for a failed run |
//!
//! The table lives in the environment's `schema` when one is configured.

use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::target::postgres::quote_ident;
use crate::target::{Backend, QueryError, ReadSession, TextRow};

pub const TABLE: &str = "envgate_migrations";

/// The table's name as SQL, qualified with the schema when there is one.
pub fn qualified(schema: Option<&str>) -> String {
    match schema {
        Some(s) => format!("{}.{TABLE}", quote_ident(s)),
        None => TABLE.to_owned(),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the ledger.
pub fn create_table_sql(backend: Backend, schema: Option<&str>) -> String {
    let table = qualified(schema);
    match backend {
        Backend::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {table} (
    version      text PRIMARY KEY,
    name         text NOT NULL,
    sha256       text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    applied_by   text NOT NULL,
    execution_ms bigint NOT NULL DEFAULT 0,
    success      boolean NOT NULL,
    release      text,
    applied_via  text NOT NULL DEFAULT 'managed',
    error        text
)"
        ),
        Backend::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {table} (
    version      TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    applied_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    applied_by   TEXT NOT NULL,
    execution_ms INTEGER NOT NULL DEFAULT 0,
    success      INTEGER NOT NULL CHECK (success IN (0, 1)),
    release      TEXT,
    applied_via  TEXT NOT NULL DEFAULT 'managed',
    error        TEXT
)"
        ),
    }
}

fn select_sql(backend: Backend, schema: Option<&str>) -> String {
    let table = qualified(schema);
    match backend {
        Backend::Postgres => format!(
            "SELECT version, name, sha256, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), success \
             FROM {table}"
        ),
        Backend::Sqlite => {
            format!("SELECT version, name, sha256, applied_at, success FROM {table}")
        }
    }
}

/// Reads the ledger. A missing table means nothing was applied yet.
pub async fn read(session: &ReadSession) -> Result<Vec<LedgerRow>, String> {
    let table = qualified(session.schema());
    let sql = select_sql(session.backend(), session.schema());
    match session.query_map(&sql, Box::new(parse_row)).await {
        Ok(rows) => Ok(rows),
        Err(QueryError::UndefinedTable(_)) => Ok(Vec::new()),
        Err(QueryError::Decode(m)) => Err(format!("ledger table {table}: {m}")),
        Err(e) => Err(format!(
            "ledger table {table} cannot be read (is it envgate's ledger?): {}",
            e.message()
        )),
    }
}

fn parse_row(row: &dyn TextRow) -> Result<LedgerRow, String> {
    let version = row.text(0).ok_or("column version is NULL")?;
    let col = |i: usize, name: &str| {
        row.text(i)
            .ok_or_else(|| format!("version {version}: column {name} is NULL"))
    };
    let name = col(1, "name")?;
    let hash = col(2, "sha256")?;
    let success = match col(4, "success")? {
        "t" | "true" | "1" => true,
        "f" | "false" | "0" => false,
        other => {
            return Err(format!(
                "version {version}: column success holds '{other}', expected a boolean"
            ));
        }
    };
    Ok(LedgerRow {
        version: version.to_owned(),
        name: name.to_owned(),
        hash: RecordedHash::parse(hash),
        applied_at: row.text(3).map(str::to_owned),
        success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifies_with_schema() {
        assert_eq!(qualified(None), "envgate_migrations");
        assert_eq!(
            qualified(Some("tenant_a")),
            "\"tenant_a\".envgate_migrations"
        );
    }

    #[test]
    fn parses_rows() {
        let row = |s: &str| Some(s.to_owned());
        let parse = |values: Vec<Option<String>>| parse_row(&values);
        let parsed = parse(vec![row("1"), row("init"), row("md5:x"), None, row("f")]).unwrap();
        assert_eq!(parsed.version, "1");
        assert!(!parsed.success);
        assert_eq!(parsed.applied_at, None);
        assert_eq!(
            parse(vec![row("1"), row("init"), None, None, row("t")]).unwrap_err(),
            "version 1: column sha256 is NULL"
        );
        assert_eq!(
            parse(vec![row("1"), row("init"), row("h"), None, row("maybe")]).unwrap_err(),
            "version 1: column success holds 'maybe', expected a boolean"
        );
    }
}
