//! The SQL of envgate's own ledger table, `envgate_migrations`, in both
//! dialects. Shared by the managed apply loop, bundles and the readers, so a
//! row written by any of them reads back the same.
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

use super::sql::{Dialect, quote_ident, quote_literal};
use sha2::{Digest, Sha256};

/// A string literal as `dialect` reads it: MySQL takes backslashes as
/// escapes (its default sql_mode), so they are escaped there.
fn lit(dialect: Dialect, text: &str) -> String {
    match dialect {
        Dialect::Mysql => super::sql::quote_literal_mysql(text),
        _ => quote_literal(text),
    }
}

pub const TABLE: &str = "envgate_migrations";

/// The table's name as SQL, always qualified, so that no `search_path` a
/// migration sets (a pg_dump baseline empties it) and no table a migration
/// creates under the same name (SQLite's `temp` comes first) can move it:
/// the configured schema, else `public` (PostgreSQL); `main` (SQLite).
pub fn qualified(dialect: Dialect, schema: Option<&str>) -> String {
    match (dialect, schema) {
        (Dialect::Postgres, Some(s)) => format!("{}.{TABLE}", quote_ident(s)),
        (Dialect::Postgres, None) => format!("public.{TABLE}"),
        (Dialect::Sqlite, _) => format!("main.{TABLE}"),
        // The database the URL names, unless `schema` names another.
        (Dialect::Mysql, Some(s)) => format!("{}.{TABLE}", super::sql::quote_ident_mysql(s)),
        (Dialect::Mysql, None) => TABLE.to_owned(),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the ledger (and its schema).
pub fn create_table_sql(dialect: Dialect, schema: Option<&str>) -> String {
    let table = qualified(dialect, schema);
    match dialect {
        Dialect::Postgres => {
            let create_schema = schema.map_or(String::new(), |s| {
                format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote_ident(s))
            });
            format!(
                "{create_schema}CREATE TABLE IF NOT EXISTS {table} (
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
            )
        }
        Dialect::Sqlite => format!(
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
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {table} (
    version      VARCHAR(191) NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    sha256       VARCHAR(128) NOT NULL,
    applied_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_by   VARCHAR(255) NOT NULL,
    execution_ms BIGINT NOT NULL DEFAULT 0,
    success      BOOLEAN NOT NULL,
    `release`    VARCHAR(255),
    applied_via  VARCHAR(255) NOT NULL DEFAULT 'managed',
    error        TEXT
) CHARACTER SET utf8mb4"
        ),
    }
}

/// The columns readers select, `applied_at` as RFC 3339 UTC: version,
/// name, sha256, applied_at, success, error, applied_via.
pub fn select_sql(dialect: Dialect, schema: Option<&str>) -> String {
    let table = qualified(dialect, schema);
    match dialect {
        Dialect::Postgres => format!(
            "SELECT version, name, sha256, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), success, error, applied_via \
             FROM {table}"
        ),
        Dialect::Sqlite => {
            format!(
                "SELECT version, name, sha256, applied_at, success, error, applied_via FROM {table}"
            )
        }
        // Sessions run in UTC (see `db::mysql`).
        Dialect::Mysql => format!(
            "SELECT version, name, sha256, {}, success, error, applied_via FROM {table}",
            super::sql::mysql_utc_text("applied_at")
        ),
    }
}

/// The advisory-lock key of a ledger: the first eight bytes of
/// SHA-256(`envgate ledger <schema>.envgate_migrations`), as PostgreSQL's
/// bigint. Advisory locks are per database, so the key only has to tell
/// ledgers in different schemas apart.
pub fn lock_key(schema: Option<&str>) -> i64 {
    let digest =
        Sha256::digest(format!("envgate ledger {}.{TABLE}", schema.unwrap_or("")).as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// MySQL and MariaDB: the `GET_LOCK` name of the ledger in `database`
/// (`envgate:<database>.envgate_migrations`, or a hash when that is longer
/// than the 64 characters a lock name may have). Bundles compute the same
/// name in SQL.
pub fn mysql_lock_name(database: &str) -> String {
    let ledger = format!("{database}.{TABLE}");
    if ledger.chars().count() + 8 <= 64 {
        format!("envgate:{ledger}")
    } else {
        format!(
            "envgate:{}",
            &hex::encode(Sha256::digest(ledger.as_bytes()))[..40]
        )
    }
}

/// How long a migration ran, as the ledger row will say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elapsed {
    /// Measured by envgate.
    Millis(u64),
    /// Since the enclosing transaction started (PostgreSQL:
    /// `clock_timestamp() - now()`), for rows written in the migration's own
    /// transaction.
    SinceTransactionStart,
    /// Since the session marker set by [`mark_start_sql`] (PostgreSQL
    /// bundles, for migrations that run outside a transaction).
    SinceMarker,
}

/// A ledger row to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRow<'a> {
    pub version: &'a str,
    pub name: &'a str,
    /// Tagged, e.g. `sha256-lf:<hex>`.
    pub sha256: &'a str,
    /// `None`: the database's current user.
    pub applied_by: Option<&'a str>,
    pub elapsed: Elapsed,
    pub success: bool,
    pub release: Option<&'a str>,
    pub applied_via: &'a str,
    pub error: Option<&'a str>,
}

fn opt(dialect: Dialect, v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".to_owned(), |t| lit(dialect, t))
}

/// Records a successful run: removes a failed row of the same version first
/// (a retry), then inserts. A successful row already there makes the insert
/// fail on the primary key, so a migration is never recorded twice.
pub fn record_sql(dialect: Dialect, schema: Option<&str>, row: &NewRow<'_>) -> String {
    let table = qualified(dialect, schema);
    let version = lit(dialect, row.version);
    let not_success = match dialect {
        Dialect::Postgres => "NOT success",
        Dialect::Sqlite | Dialect::Mysql => "success = 0",
    };
    format!(
        "DELETE FROM {table} WHERE version = {version} AND {not_success};\n{}",
        insert_sql(dialect, &table, row)
    )
}

/// MySQL: marks the started (failed) row of a migration with DDL as
/// successful, in one statement (atomic on its own): what `record_sql`
/// would write, since the started row already holds the rest.
pub fn mysql_mark_success_sql(schema: Option<&str>, version: &str, execution_ms: u64) -> String {
    format!(
        "UPDATE {} SET success = 1, error = NULL, applied_at = UTC_TIMESTAMP(3), execution_ms = {execution_ms} \
         WHERE version = {} AND success = 0",
        qualified(Dialect::Mysql, schema),
        lit(Dialect::Mysql, version)
    )
}

/// Removes a migration's rows (a rollback).
pub fn delete_sql(dialect: Dialect, schema: Option<&str>, version: &str) -> String {
    format!(
        "DELETE FROM {} WHERE version = {}",
        qualified(dialect, schema),
        lit(dialect, version)
    )
}

/// Replaces the recorded hash of an applied migration: drift accepted on
/// purpose (`envgate drift accept`).
pub fn accept_hash_sql(
    dialect: Dialect,
    schema: Option<&str>,
    version: &str,
    sha256: &str,
) -> String {
    let success = match dialect {
        Dialect::Postgres => "success",
        Dialect::Sqlite | Dialect::Mysql => "success = 1",
    };
    format!(
        "UPDATE {} SET sha256 = {} WHERE version = {} AND {success}",
        qualified(dialect, schema),
        lit(dialect, sha256),
        lit(dialect, version)
    )
}

/// Records a failed run, replacing an earlier failed row of the version.
pub fn record_failure_sql(dialect: Dialect, schema: Option<&str>, row: &NewRow<'_>) -> String {
    record_sql(dialect, schema, row)
}

fn insert_sql(dialect: Dialect, table: &str, row: &NewRow<'_>) -> String {
    let (applied_at, success) = match dialect {
        Dialect::Postgres => ("now()", if row.success { "true" } else { "false" }),
        Dialect::Sqlite => (
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            if row.success { "1" } else { "0" },
        ),
        Dialect::Mysql => ("UTC_TIMESTAMP(3)", if row.success { "1" } else { "0" }),
    };
    let applied_by = match (row.applied_by, dialect) {
        (Some(who), _) => lit(dialect, who),
        (None, Dialect::Postgres) => "current_user".to_owned(),
        (None, Dialect::Sqlite) => "'sqlite'".to_owned(),
        (None, Dialect::Mysql) => "CURRENT_USER()".to_owned(),
    };
    let elapsed = match (row.elapsed, dialect) {
        (Elapsed::Millis(ms), _) => ms.to_string(),
        (Elapsed::SinceTransactionStart, Dialect::Postgres) => {
            "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint".to_owned()
        }
        (Elapsed::SinceMarker, Dialect::Postgres) => {
            "(extract(epoch FROM clock_timestamp() - current_setting('envgate.started')::timestamptz) * 1000)::bigint"
                .to_owned()
        }
        (Elapsed::SinceTransactionStart | Elapsed::SinceMarker, Dialect::Sqlite | Dialect::Mysql) => {
            "0".to_owned()
        }
    };
    // A reserved word on MySQL and MariaDB.
    let release_col = match dialect {
        Dialect::Mysql => "`release`",
        _ => "release",
    };
    format!(
        "INSERT INTO {table} (version, name, sha256, applied_at, applied_by, execution_ms, success, {release_col}, applied_via, error) \
         VALUES ({}, {}, {}, {applied_at}, {applied_by}, {elapsed}, {success}, {}, {}, {})",
        lit(dialect, row.version),
        lit(dialect, row.name),
        lit(dialect, row.sha256),
        opt(dialect, row.release),
        lit(dialect, row.applied_via),
        opt(dialect, row.error),
    )
}

/// The `error` of the row written just before a migration that runs
/// outside a transaction starts; the run replaces it when it ends, so a row
/// left with it means the run was interrupted.
pub const INTERRUPTED: &str = "interrupted: it runs outside a transaction and started, but did not finish; \
statements before the interruption may have taken effect (look for half-built objects, such as an INVALID \
index left by CREATE INDEX CONCURRENTLY), then retry it with --retry-failed";

/// The same, for a down script (a rollback) that runs outside a
/// transaction: the row stays, marked as not applied.
pub const INTERRUPTED_DOWN: &str = "interrupted while rolling back: the down script runs outside a \
transaction and started, but did not finish; statements before the interruption may have taken effect";

/// Marks, before its statements run, that a migration running outside a
/// transaction has started (see [`INTERRUPTED`]): a failed row for an apply;
/// for a rollback, the applied row is marked as failed.
pub fn started_sql(
    dialect: Dialect,
    schema: Option<&str>,
    row: &NewRow<'_>,
    reverting: bool,
) -> String {
    if reverting {
        let (fail, success) = match dialect {
            Dialect::Postgres => ("false", "success"),
            Dialect::Sqlite | Dialect::Mysql => ("0", "success = 1"),
        };
        return format!(
            "UPDATE {} SET success = {fail}, error = {} WHERE version = {} AND {success}",
            qualified(dialect, schema),
            lit(dialect, INTERRUPTED_DOWN),
            lit(dialect, row.version)
        );
    }
    let started = NewRow {
        success: false,
        error: Some(INTERRUPTED),
        elapsed: Elapsed::Millis(0),
        ..row.clone()
    };
    record_sql(dialect, schema, &started)
}

/// PostgreSQL: remembers the current time in the session, for
/// [`Elapsed::SinceMarker`].
pub fn mark_start_sql() -> &'static str {
    "SELECT set_config('envgate.started', clock_timestamp()::text, false)"
}

/// How far a migration with DDL got, as its ledger row says:
/// `statements 1–k of n ran [prefix <hash>]` (`0 of n statements ran …`
/// before the first).
pub fn progress_text(done: usize, total: usize, prefix: &str) -> String {
    if done == 0 {
        format!("0 of {total} statements ran [prefix {prefix}]")
    } else {
        format!("statements 1–{done} of {total} ran [prefix {prefix}]")
    }
}

/// The (done, total, prefix) a progress text holds, wherever it is in a
/// ledger row's error (which may start with the file's location).
pub fn parse_progress(error: &str) -> Option<(usize, usize, String)> {
    let (done, total, rest) = if let Some(i) = error.find("statements 1–") {
        let rest = &error[i + "statements 1–".len()..];
        let (done, rest) = rest.split_once(" of ")?;
        let (total, rest) = rest.split_once(" ran [prefix ")?;
        (done, total, rest)
    } else {
        let i = error.find("0 of ")?;
        let rest = &error[i + "0 of ".len()..];
        let (total, rest) = rest.split_once(" statements ran [prefix ")?;
        ("0", total, rest)
    };
    let prefix = rest.split_once(']')?.0;
    Some((done.parse().ok()?, total.parse().ok()?, prefix.to_owned()))
}

/// A short hash of the first `k` statements' texts.
pub fn prefix_hash(statements: &[&str], k: usize) -> String {
    let joined = statements[..k].join("\n;\n");
    hex::encode(&Sha256::digest(joined.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> NewRow<'static> {
        NewRow {
            version: "20260418_001",
            name: "users",
            sha256: "sha256-lf:ab",
            applied_by: Some("o'brien"),
            elapsed: Elapsed::Millis(12),
            success: true,
            release: None,
            applied_via: "managed",
            error: None,
        }
    }

    #[test]
    fn record_replaces_a_failed_row_and_quotes_values() {
        insta::assert_snapshot!(record_sql(Dialect::Postgres, Some("app"), &row()), @r#"
        DELETE FROM "app".envgate_migrations WHERE version = '20260418_001' AND NOT success;
        INSERT INTO "app".envgate_migrations (version, name, sha256, applied_at, applied_by, execution_ms, success, release, applied_via, error) VALUES ('20260418_001', 'users', 'sha256-lf:ab', now(), 'o''brien', 12, true, NULL, 'managed', NULL)
        "#);
        let failed = NewRow {
            success: false,
            error: Some("syntax error"),
            applied_by: None,
            elapsed: Elapsed::SinceTransactionStart,
            ..row()
        };
        insta::assert_snapshot!(record_failure_sql(Dialect::Sqlite, None, &failed), @r"
        DELETE FROM main.envgate_migrations WHERE version = '20260418_001' AND success = 0;
        INSERT INTO main.envgate_migrations (version, name, sha256, applied_at, applied_by, execution_ms, success, release, applied_via, error) VALUES ('20260418_001', 'users', 'sha256-lf:ab', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'sqlite', 0, 0, NULL, 'managed', 'syntax error')
        ");
    }

    #[test]
    fn lock_keys_differ_by_schema_and_are_stable() {
        assert_ne!(lock_key(None), lock_key(Some("app")));
        assert_eq!(lock_key(Some("app")), lock_key(Some("app")));
        // Pinned: changing the derivation would let an old and a new
        // envgate apply at once.
        assert_eq!(lock_key(None), 1_373_112_312_428_619_682);
    }

    #[test]
    fn progress_reads_back() {
        let t = progress_text(2, 4, "0123456789ab");
        assert_eq!(t, "statements 1–2 of 4 ran [prefix 0123456789ab]");
        assert_eq!(
            parse_progress(&format!("{t}; statement 3 failed: ERROR 1050")),
            Some((2, 4, "0123456789ab".to_owned()))
        );
        assert_eq!(
            parse_progress(&format!("migrations/3_c.sql:2:1: {t}")),
            Some((2, 4, "0123456789ab".to_owned())),
            "after the location apply puts first"
        );
        assert_eq!(
            parse_progress(&progress_text(0, 3, "abc")),
            Some((0, 3, "abc".to_owned()))
        );
        assert_eq!(parse_progress("interrupted"), None);
    }
}
