//! envgate's control store: its own state, never kept in an environment's
//! database. A SQLite file (`control_store` in envgate.toml, by default
//! `.envgate/state.db` beside it).
//!
//! Today it holds the first observations of migrations applied in
//! environments whose ledger records no checksum (Rails, Django, Ecto,
//! dbmate, goose, Alembic, Knex, node-pg-migrate, diesel, golang-migrate):
//! the content hash of each file when envgate first saw it applied there,
//! so a later edit shows as drift. Rows are only ever inserted.

use crate::core::checksum::ContentHash;
use crate::core::matrix::Observed;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub struct ControlStore {
    conn: Connection,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS observed_migrations (
    environment   TEXT NOT NULL,
    target        TEXT NOT NULL,
    ledger        TEXT NOT NULL,
    migration     TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (environment, target, ledger, migration)
)";

/// Which ledger of which environment observations belong to: the name, the
/// target (host, database, schema — never credentials) and the ledger kind.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub environment: &'a str,
    pub target: &'a str,
    pub ledger: &'a str,
}

impl ControlStore {
    /// Opens (creating when needed) the store.
    pub fn open(path: &Path) -> Result<ControlStore, String> {
        let fail = |e: &dyn std::fmt::Display| format!("control store {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(&e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| fail(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail(&e))?;
        Ok(ControlStore { conn })
    }

    /// The first observations recorded for a ledger, by migration id.
    pub fn observed(&self, scope: &Scope<'_>) -> Result<HashMap<String, Observed>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT migration, sha256, first_seen_at FROM observed_migrations \
                 WHERE environment = ?1 AND target = ?2 AND ledger = ?3",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(
                params![scope.environment, scope.target, scope.ledger],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(|e| e.to_string())?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, hex, at) = row.map_err(|e| e.to_string())?;
            if let Some(hash) = ContentHash::from_hex(&hex) {
                out.insert(id, Observed { hash, at });
            }
        }
        Ok(out)
    }

    /// Records first observations; existing ones are kept as they are.
    pub fn record(
        &self,
        scope: &Scope<'_>,
        seen: &[(&str, ContentHash)],
        at: &str,
    ) -> Result<usize, String> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| e.to_string())?;
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR IGNORE INTO observed_migrations \
                     (environment, target, ledger, migration, sha256, first_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(|e| e.to_string())?;
            for (id, hash) in seen {
                added += stmt
                    .execute(params![
                        scope.environment,
                        scope.target,
                        scope.ledger,
                        id,
                        hash.hex(),
                        at
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(added)
    }

    /// When a migration was first observed, if it was.
    pub fn first_seen(&self, scope: &Scope<'_>, id: &str) -> Result<Option<String>, String> {
        self.conn
            .query_row(
                "SELECT first_seen_at FROM observed_migrations WHERE environment = ?1 AND target = ?2 AND ledger = ?3 AND migration = ?4",
                params![scope.environment, scope.target, scope.ledger, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_first_observations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.db");
        let store = ControlStore::open(&path).unwrap();
        let scope = Scope {
            environment: "prod",
            target: "postgres db:5432/app",
            ledger: "rails",
        };
        let a = ContentHash::of(b"a");
        let b = ContentHash::of(b"b");
        assert_eq!(
            store
                .record(&scope, &[("1", a)], "2026-01-01T00:00:00Z")
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .record(&scope, &[("1", b), ("2", b)], "2026-02-01T00:00:00Z")
                .unwrap(),
            1
        );
        let seen = store.observed(&scope).unwrap();
        assert_eq!(
            seen["1"],
            Observed {
                hash: a,
                at: "2026-01-01T00:00:00Z".into()
            }
        );
        assert_eq!(seen["2"].hash, b);
        assert_eq!(
            store.first_seen(&scope, "2").unwrap().as_deref(),
            Some("2026-02-01T00:00:00Z")
        );
        let other = Scope {
            environment: "staging",
            ..scope.clone()
        };
        assert!(store.observed(&other).unwrap().is_empty());
        drop(store);
        // Reopening keeps what was recorded.
        assert_eq!(
            ControlStore::open(&path)
                .unwrap()
                .observed(&scope)
                .unwrap()
                .len(),
            2
        );
    }
}
