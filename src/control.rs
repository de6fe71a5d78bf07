//! envgate's control store: its own state, never kept in an environment's
//! database. A SQLite file (`control_store = "sqlite://…"`, by default
//! `.envgate/state.db` beside envgate.toml), or PostgreSQL
//! (`control_store = "postgres://…"`) so several bot replicas share it.
//!
//! It holds:
//! - the audit trail (`audit_log`), append-only and hash-chained;
//! - first observations of migrations applied in ledgers without checksums
//!   (`observed_migrations`), so later edits show as drift;
//! - drift accepted on purpose (`accepted_drift`) and drift already
//!   reported (`drift_seen`);
//! - each environment's mode as last seen, who changed it and who
//!   confirmed it (`environment_modes`);
//! - what each bundle envgate made records (`exported_bundles`), and the
//!   states in which its rows were already seen applied (`bundles_seen`).
//!
//! Every value is written as a quoted literal, so one SQL text serves both
//! backends.

use crate::core::audit::{self, Entry, Record};
use crate::core::checksum::ContentHash;
use crate::core::exported::Exported;
use crate::core::matrix::Observed;
use crate::core::mode::Mode;
use crate::core::policy::ModeRecord;
use crate::core::sql::quote_literal;
use crate::db::TextRows;
use crate::db::postgres::describe;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio_postgres::SimpleQueryMessage;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS observed_migrations (
    environment TEXT NOT NULL, target TEXT NOT NULL, ledger TEXT NOT NULL, migration TEXT NOT NULL,
    sha256 TEXT NOT NULL, first_seen_at TEXT NOT NULL,
    PRIMARY KEY (environment, target, ledger, migration));
CREATE TABLE IF NOT EXISTS accepted_drift (
    environment TEXT NOT NULL, target TEXT NOT NULL, migration TEXT NOT NULL, sha256 TEXT NOT NULL,
    previous_sha256 TEXT, actor TEXT NOT NULL, reason TEXT NOT NULL, accepted_at TEXT NOT NULL,
    PRIMARY KEY (environment, target, migration, sha256));
CREATE TABLE IF NOT EXISTS drift_seen (
    environment TEXT NOT NULL, target TEXT NOT NULL, migration TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (environment, target, migration, sha256));
CREATE TABLE IF NOT EXISTS exported_bundles (
    bundle_id TEXT PRIMARY KEY, environment TEXT NOT NULL, made TEXT NOT NULL, exported_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bundles_seen (
    environment TEXT NOT NULL, target TEXT NOT NULL, bundle_id TEXT NOT NULL, signature TEXT NOT NULL,
    PRIMARY KEY (environment, target, bundle_id, signature));
CREATE TABLE IF NOT EXISTS environment_modes (
    id BIGINT PRIMARY KEY, environment TEXT NOT NULL, mode TEXT NOT NULL, actor TEXT, git_commit TEXT,
    recorded_at TEXT NOT NULL, confirmed_by TEXT, confirmed_at TEXT, actor_source TEXT, approvers TEXT,
    repository TEXT);
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
    environment TEXT, release TEXT, migrations TEXT NOT NULL, bundle_sha256 TEXT, outcome TEXT NOT NULL,
    error TEXT, details TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    actor_source TEXT, ephemeral INTEGER NOT NULL DEFAULT 0, seal TEXT, repository TEXT)";

/// Columns added since the first release (already in [`SCHEMA`]), for
/// stores made before them: (table, column, type).
const ADDED_COLUMNS: [(&str, &str, &str); 7] = [
    ("audit_log", "actor_source", "TEXT"),
    ("audit_log", "ephemeral", "INTEGER NOT NULL DEFAULT 0"),
    ("audit_log", "seal", "TEXT"),
    ("environment_modes", "actor_source", "TEXT"),
    ("environment_modes", "approvers", "TEXT"),
    ("audit_log", "repository", "TEXT"),
    ("environment_modes", "repository", "TEXT"),
];

/// The advisory lock that serialises writers of a PostgreSQL control store.
const PG_LOCK: i64 = 0x656e_7667_6174_6501; // "envgate\x01"

pub enum ControlStore {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

/// Which ledger of which environment a row belongs to: the name, the target
/// (host, database, schema — never credentials) and the ledger kind.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub environment: &'a str,
    pub target: &'a str,
    pub ledger: &'a str,
}

pub use crate::core::matrix::Accepted;

/// Drift accepted on purpose, as recorded.
pub struct Acceptance<'a> {
    pub environment: &'a str,
    pub target: &'a str,
    pub migration: &'a str,
    pub hash: &'a ContentHash,
    pub previous: Option<&'a str>,
    pub actor: &'a str,
    pub reason: &'a str,
    pub at: &'a str,
}

pub(crate) fn q(v: &str) -> String {
    quote_literal(v)
}

pub(crate) fn qo(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".to_owned(), quote_literal)
}

impl ControlStore {
    /// Opens the store named by envgate.toml's `control_store`: a SQLite path
    /// (created when missing) or a PostgreSQL URL.
    pub async fn open(
        location: &crate::config::ControlStoreLocation,
    ) -> Result<ControlStore, String> {
        match location {
            crate::config::ControlStoreLocation::Sqlite(path) => Self::open_sqlite(path),
            crate::config::ControlStoreLocation::Postgres(url) => {
                let target = crate::db::Target::parse(url, Path::new("."))
                    .map_err(|e| format!("control store: {e}"))?;
                let crate::db::Target::Postgres(pg) = target else {
                    return Err("control store: expected a postgres:// URL".to_owned());
                };
                let client = crate::db::postgres::connect(&pg, false, Duration::from_secs(10))
                    .await
                    .map_err(|e| format!("control store: cannot connect: {e}"))?;
                let store = ControlStore::Postgres(client);
                let added: Vec<String> = ADDED_COLUMNS
                    .iter()
                    .map(|(t, c, ty)| format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {ty}"))
                    .collect();
                store
                    .exec(&format!(
                        "BEGIN;SELECT pg_advisory_xact_lock({PG_LOCK});{SCHEMA};{};COMMIT",
                        added.join(";")
                    ))
                    .await?;
                Ok(store)
            }
        }
    }

    fn open_sqlite(path: &Path) -> Result<ControlStore, String> {
        let fail = |e: &dyn std::fmt::Display| format!("control store {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let conn = rusqlite::Connection::open(path).map_err(|e| fail(&e))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| fail(&e))?;
        // Several processes may open a new store at once (two applies, a
        // bot's workers): switching it to WAL takes a lock SQLite does not
        // wait for, so that step is retried for as long as the busy
        // timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match prepare_sqlite(&conn) {
                Ok(()) => return Ok(ControlStore::Sqlite(conn)),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(fail(&e)),
            }
        }
    }

    pub(crate) async fn exec(&self, sql: &str) -> Result<(), String> {
        match self {
            ControlStore::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            ControlStore::Postgres(c) => match c.batch_execute(sql).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(describe(&e))
                }
            },
        }
    }

    /// Runs one SELECT and returns its rows as text.
    pub(crate) async fn rows(&self, sql: &str) -> Result<TextRows, String> {
        match self {
            ControlStore::Sqlite(c) => crate::db::sqlite::query(
                c,
                sql,
                Box::new(|r| {
                    Ok((0..r.width())
                        .map(|i| r.text(i).map(str::to_owned))
                        .collect())
                }),
            )
            .map_err(|e| e.message().to_owned()),
            ControlStore::Postgres(c) => Ok(c
                .simple_query(sql)
                .await
                .map_err(|e| describe(&e))?
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect()),
        }
    }

    fn begin(&self) -> String {
        match self {
            ControlStore::Sqlite(_) => "BEGIN IMMEDIATE".to_owned(),
            ControlStore::Postgres(_) => format!("BEGIN;SELECT pg_advisory_xact_lock({PG_LOCK})"),
        }
    }

    // ---- audit trail ----

    /// Appends an entry to the audit trail, chained after the last record.
    /// Every text in it is scrubbed of secrets first (see
    /// [`crate::secrets`]): once hashed, a leaked secret could not be taken
    /// out without breaking the chain.
    /// With `key`, the record is keyed (see [`crate::core::audit`]).
    pub async fn append(&self, entry: Entry, key: Option<&audit::Key>) -> Result<Record, String> {
        let clean = |s: String| crate::secrets::scrubbed(&s);
        let entry = Entry {
            actor: clean(entry.actor),
            actor_source: entry.actor_source.map(clean),
            environment: entry.environment.map(clean),
            release: entry.release.map(clean),
            migrations: entry.migrations.into_iter().map(clean).collect(),
            error: entry.error.map(clean),
            details: entry.details.map(clean),
            repository: entry.repository.map(clean),
            ..entry
        };
        self.exec(&self.begin()).await?;
        let result = async {
            let last = self.rows("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").await?;
            let previous = last.first().and_then(|r| Some((r[0].as_deref()?.parse::<u64>().ok()?, r[1].clone()?)));
            let record = audit::seal_after(previous.as_ref().map(|(s, h)| (*s, h.as_str())), entry, key);
            let e = &record.entry;
            let migrations = serde_json::to_string(&e.migrations).expect("strings serialize");
            self.exec(&format!(
                "INSERT INTO audit_log (seq, at, action, actor, environment, release, migrations, bundle_sha256, outcome, \
                 error, details, prev_hash, hash, actor_source, ephemeral, seal, repository) \
                 VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});COMMIT",
                record.seq,
                q(&e.at),
                q(&e.action),
                q(&e.actor),
                qo(e.environment.as_deref()),
                qo(e.release.as_deref()),
                q(&migrations),
                qo(e.bundle_sha256.as_deref()),
                q(&e.outcome),
                qo(e.error.as_deref()),
                qo(e.details.as_deref()),
                q(&record.prev_hash),
                q(&record.hash),
                qo(e.actor_source.as_deref()),
                i32::from(e.ephemeral),
                qo(record.seal.as_deref()),
                qo(e.repository.as_deref()),
            ))
            .await?;
            Ok(record)
        }
        .await;
        if result.is_err() {
            let _ = self.exec("ROLLBACK").await;
        }
        result
    }

    /// The whole audit trail, oldest first (a chain is verified whole).
    pub async fn records(&self) -> Result<Vec<Record>, String> {
        let rows = self
            .rows(
                "SELECT seq, at, action, actor, environment, release, migrations, bundle_sha256, outcome, error, details, \
                 prev_hash, hash, actor_source, ephemeral, seal, repository FROM audit_log ORDER BY seq",
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let text = |i: usize| r[i].clone().unwrap_or_default();
                Ok(Record {
                    seq: text(0)
                        .parse()
                        .map_err(|_| format!("audit_log: bad seq '{}'", text(0)))?,
                    entry: Entry {
                        at: text(1),
                        action: text(2),
                        actor: text(3),
                        environment: r[4].clone(),
                        release: r[5].clone(),
                        // Unreadable text must not read as "none": that would
                        // let an edit pass verification.
                        migrations: serde_json::from_str(&text(6))
                            .unwrap_or_else(|_| vec![format!("(unreadable: {})", text(6))]),
                        bundle_sha256: r[7].clone(),
                        outcome: text(8),
                        error: r[9].clone(),
                        details: r[10].clone(),
                        actor_source: r[13].clone(),
                        ephemeral: text(14) != "0" && !text(14).is_empty(),
                        repository: r[16].clone(),
                    },
                    prev_hash: text(11),
                    hash: text(12),
                    seal: r[15].clone(),
                })
            })
            .collect()
    }

    /// The newest mode changes and confirmations of a repository's
    /// environments (of a store of one: unstamped records), newest first,
    /// at most `per_environment` each: (environment, at, action, actor,
    /// details). Read without verifying the chain (the audit page does).
    pub async fn mode_history(
        &self,
        repository: Option<&str>,
        per_environment: usize,
    ) -> Result<Vec<(String, String, String, String, String)>, String> {
        let rows = self
            .rows(&format!(
                "SELECT environment, at, action, actor, coalesce(details, '') FROM audit_log \
                 WHERE action IN ('mode_change', 'mode_confirm') AND environment IS NOT NULL AND {} \
                 ORDER BY seq DESC LIMIT 1000",
                match repository {
                    Some(r) => format!("repository = {}", q(r)),
                    None => "repository IS NULL".to_owned(),
                }
            ))
            .await?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let text = |i: usize| r[i].clone().unwrap_or_default();
                let n = seen.entry(text(0)).or_default();
                *n += 1;
                (*n <= per_environment).then(|| (text(0), text(1), text(2), text(3), text(4)))
            })
            .collect())
    }

    /// The newest record's head; None for an empty trail.
    pub async fn head(&self) -> Result<Option<audit::Head>, String> {
        let rows = self
            .rows("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .await?;
        Ok(rows.first().and_then(|r| {
            Some(audit::Head {
                seq: r[0].as_deref()?.parse().ok()?,
                hash: r[1].clone()?,
            })
        }))
    }

    // ---- first observations, accepted and reported drift ----

    pub async fn observed(&self, scope: &Scope<'_>) -> Result<HashMap<String, Observed>, String> {
        let rows = self
            .rows(&format!(
                "SELECT migration, sha256, first_seen_at FROM observed_migrations \
                 WHERE environment = {} AND target = {} AND ledger = {}",
                q(scope.environment),
                q(scope.target),
                q(scope.ledger)
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let hash = ContentHash::from_hex(r[1].as_deref()?)?;
                Some((
                    r[0].clone()?,
                    Observed {
                        hash,
                        at: r[2].clone()?,
                    },
                ))
            })
            .collect())
    }

    /// Records first observations; existing ones are kept as they are.
    pub async fn record_observed(
        &self,
        scope: &Scope<'_>,
        seen: &[(&str, ContentHash)],
        at: &str,
    ) -> Result<(), String> {
        if seen.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = seen
            .iter()
            .map(|(id, h)| {
                format!(
                    "({}, {}, {}, {}, {}, {})",
                    q(scope.environment),
                    q(scope.target),
                    q(scope.ledger),
                    q(id),
                    q(&h.hex()),
                    q(at)
                )
            })
            .collect();
        self.exec(&format!(
            "INSERT INTO observed_migrations (environment, target, ledger, migration, sha256, first_seen_at) VALUES {} \
             ON CONFLICT DO NOTHING",
            values.join(", ")
        ))
        .await
    }

    /// Drift accepted on purpose, by migration id (the latest acceptance).
    pub async fn accepted(
        &self,
        environment: &str,
        target: &str,
    ) -> Result<HashMap<String, Accepted>, String> {
        let rows = self
            .rows(&format!(
                "SELECT migration, sha256, actor, reason, accepted_at FROM accepted_drift \
                 WHERE environment = {} AND target = {} ORDER BY accepted_at",
                q(environment),
                q(target)
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let hash = ContentHash::from_hex(r[1].as_deref()?)?;
                Some((
                    r[0].clone()?,
                    Accepted {
                        hash,
                        actor: r[2].clone()?,
                        reason: r[3].clone()?,
                        at: r[4].clone()?,
                    },
                ))
            })
            .collect())
    }

    /// Records drift accepted on purpose.
    pub async fn accept(&self, a: &Acceptance<'_>) -> Result<(), String> {
        self.exec(&format!(
            "INSERT INTO accepted_drift (environment, target, migration, sha256, previous_sha256, actor, reason, accepted_at) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING",
            q(a.environment),
            q(a.target),
            q(a.migration),
            q(&a.hash.hex()),
            qo(a.previous),
            q(a.actor),
            q(a.reason),
            q(a.at)
        ))
        .await
    }

    // ---- bundles made, and seen applied ----

    /// Keeps what a bundle records, by its id (made again: kept once).
    pub async fn record_exported(&self, made: &Exported, at: &str) -> Result<(), String> {
        let json = serde_json::to_string(made).expect("bundles serialize");
        self.exec(&format!(
            "INSERT INTO exported_bundles (bundle_id, environment, made, exported_at) VALUES ({}, {}, {}, {}) \
             ON CONFLICT DO NOTHING",
            q(&made.bundle_id),
            q(&made.environment),
            q(&json),
            q(at)
        ))
        .await
    }

    /// The bundles made for an environment, by id.
    pub async fn exported(&self, environment: &str) -> Result<HashMap<String, Exported>, String> {
        let rows = self
            .rows(&format!(
                "SELECT made FROM exported_bundles WHERE environment = {}",
                q(environment)
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str::<Exported>(r[0].as_deref()?).ok())
            .map(|e| (e.bundle_id.clone(), e))
            .collect())
    }

    /// Records a bundle seen applied in this state; true when it was not
    /// seen so before.
    pub async fn bundle_first_seen(
        &self,
        environment: &str,
        target: &str,
        bundle_id: &str,
        signature: &str,
    ) -> Result<bool, String> {
        let values = [environment, target, bundle_id, signature]
            .map(q)
            .join(", ");
        let seen = self
            .rows(&format!(
                "SELECT 1 FROM bundles_seen WHERE (environment, target, bundle_id, signature) = ({values})"
            ))
            .await?;
        if !seen.is_empty() {
            return Ok(false);
        }
        self.exec(&format!(
            "INSERT INTO bundles_seen (environment, target, bundle_id, signature) VALUES ({values}) ON CONFLICT DO NOTHING"
        ))
        .await?;
        Ok(true)
    }

    /// Records drift as reported; true when it was not reported before.
    pub async fn drift_first_seen(
        &self,
        environment: &str,
        target: &str,
        migration: &str,
        hash: &str,
    ) -> Result<bool, String> {
        let key = format!(
            "environment = {} AND target = {} AND migration = {} AND sha256 = {}",
            q(environment),
            q(target),
            q(migration),
            q(hash)
        );
        let seen = self
            .rows(&format!("SELECT 1 FROM drift_seen WHERE {key}"))
            .await?;
        if !seen.is_empty() {
            return Ok(false);
        }
        self.exec(&format!(
            "INSERT INTO drift_seen (environment, target, migration, sha256) VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING",
            q(environment),
            q(target),
            q(migration),
            q(hash)
        ))
        .await?;
        Ok(true)
    }

    // ---- modes ----

    /// The latest recorded mode of an environment (of `repository`, where
    /// the store serves several: records from before repositories were
    /// kept apart count until it has its own).
    pub async fn last_mode(
        &self,
        environment: &str,
        repository: Option<&str>,
    ) -> Result<Option<ModeRecord>, String> {
        let rows = self
            .rows(&format!(
                "SELECT mode, actor, recorded_at, git_commit, confirmed_by, actor_source, approvers \
                 FROM environment_modes WHERE {} ORDER BY (repository IS NULL), id DESC LIMIT 1",
                modes_of(environment, repository)
            ))
            .await?;
        Ok(rows.into_iter().next().and_then(|r| {
            let mode = match r[0].as_deref()? {
                "managed" => Mode::Managed,
                "export_only" => Mode::ExportOnly,
                "reconcile_only" => Mode::ReconcileOnly,
                _ => return None,
            };
            Some(ModeRecord {
                mode,
                actor: r[1].clone(),
                at: r[2].clone()?,
                commit: r[3].clone(),
                confirmed_by: r[4].clone(),
                source: r[5].clone(),
                approvers: r[6]
                    .as_deref()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_default(),
            })
        }))
    }

    /// Records an environment's mode as now seen (`record.confirmed_by` is
    /// not written: confirming is [`ControlStore::confirm_mode`]).
    pub async fn record_mode(
        &self,
        environment: &str,
        repository: Option<&str>,
        record: &ModeRecord,
    ) -> Result<(), String> {
        let approvers = serde_json::to_string(&record.approvers).expect("strings serialize");
        self.exec(&format!(
            "{};INSERT INTO environment_modes (id, environment, repository, mode, actor, git_commit, recorded_at, actor_source, approvers) \
             SELECT coalesce(max(id), 0) + 1, {}, {}, {}, {}, {}, {}, {}, {} FROM environment_modes;COMMIT",
            self.begin(),
            q(environment),
            qo(repository),
            q(record.mode.as_str()),
            qo(record.actor.as_deref()),
            qo(record.commit.as_deref()),
            q(&record.at),
            qo(record.source.as_deref()),
            q(&approvers),
        ))
        .await
    }

    /// Confirms the record [`ControlStore::last_mode`] reads.
    pub async fn confirm_mode(
        &self,
        environment: &str,
        repository: Option<&str>,
        actor: &str,
        at: &str,
    ) -> Result<(), String> {
        self.exec(&format!(
            "UPDATE environment_modes SET confirmed_by = {}, confirmed_at = {} \
             WHERE id = (SELECT id FROM environment_modes WHERE {} \
             ORDER BY (repository IS NULL), id DESC LIMIT 1)",
            q(actor),
            q(at),
            modes_of(environment, repository)
        ))
        .await
    }
}

/// The mode records of an environment: of a repository (and those from
/// before repositories were kept apart), or of a store of one.
fn modes_of(environment: &str, repository: Option<&str>) -> String {
    match repository {
        Some(r) => format!(
            "environment = {} AND (repository = {} OR repository IS NULL)",
            q(environment),
            q(r)
        ),
        None => format!("environment = {} AND repository IS NULL", q(environment)),
    }
}

/// WAL mode (readers such as a status or the bot's workers do not wait for
/// a writer; it persists, so later opens only read it), then the schema.
fn prepare_sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.execute_batch(SCHEMA)?;
    let missing = |conn: &rusqlite::Connection| -> rusqlite::Result<Vec<(&str, &str, &str)>> {
        let mut out = Vec::new();
        for (table, column, ty) in ADDED_COLUMNS {
            let present: bool = conn.query_row(
                "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get(0),
            )?;
            if !present {
                out.push((table, column, ty));
            }
        }
        Ok(out)
    };
    if missing(conn)?.is_empty() {
        return Ok(());
    }
    // Another process may be upgrading the same store: one at a time.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let upgraded = missing(conn).and_then(|cols| {
        for (table, column, ty) in cols {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
        }
        conn.execute_batch("COMMIT")
    });
    if upgraded.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    upgraded
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> Entry {
        Entry {
            at: "2026-11-25T12:00:00Z".into(),
            action: action.into(),
            actor: "o'brien".into(),
            environment: Some("prod".into()),
            migrations: vec!["1".into(), "2".into()],
            outcome: "ok".into(),
            ..Entry::default()
        }
    }

    #[tokio::test]
    async fn sqlite_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let loc = crate::config::ControlStoreLocation::Sqlite(dir.path().join("nested/state.db"));
        let store = ControlStore::open(&loc).await.unwrap();
        let a = store.append(entry("apply"), None).await.unwrap();
        let key = audit::Key::new(b"a key of thirty-two bytes, ok!!!").unwrap();
        let marked = Entry {
            actor_source: Some("unverified: --actor".into()),
            ephemeral: true,
            repository: Some("github:acme/shop".into()),
            ..entry("export")
        };
        let b = store.append(marked, Some(&key)).await.unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(b.prev_hash, a.hash);
        let records = store.records().await.unwrap();
        assert_eq!(records, [a, b.clone()]);
        let v = audit::verify(&records, Some(&key)).unwrap();
        assert_eq!((v.plain, v.keyed_proven), (1, 1));
        assert_eq!(store.head().await.unwrap(), Some(b.head()));

        let scope = Scope {
            environment: "prod",
            target: "t",
            ledger: "rails",
        };
        let h1 = ContentHash::of(b"1");
        store
            .record_observed(&scope, &[("1", h1)], "2026-01-01T00:00:00Z")
            .await
            .unwrap();
        store
            .record_observed(
                &scope,
                &[("1", ContentHash::of(b"x"))],
                "2026-02-01T00:00:00Z",
            )
            .await
            .unwrap();
        assert_eq!(
            store.observed(&scope).await.unwrap()["1"],
            Observed {
                hash: h1,
                at: "2026-01-01T00:00:00Z".into()
            }
        );

        assert!(
            store
                .drift_first_seen("prod", "t", "1", "ab")
                .await
                .unwrap()
        );
        assert!(
            !store
                .drift_first_seen("prod", "t", "1", "ab")
                .await
                .unwrap()
        );

        assert_eq!(store.last_mode("prod", None).await.unwrap(), None);
        let record = |mode, actor: &str, at: &str| ModeRecord {
            mode,
            actor: Some(actor.into()),
            source: Some("forge review: acme/shop#7".into()),
            approvers: vec!["carol".into()],
            at: at.into(),
            commit: Some("abc".into()),
            confirmed_by: None,
        };
        store
            .record_mode("prod", None, &record(Mode::ExportOnly, "ci", "t1"))
            .await
            .unwrap();
        store
            .record_mode("prod", None, &record(Mode::Managed, "bob", "t2"))
            .await
            .unwrap();
        store
            .confirm_mode("prod", None, "alice", "t3")
            .await
            .unwrap();
        let m = store.last_mode("prod", None).await.unwrap().unwrap();
        assert_eq!(
            m,
            ModeRecord {
                confirmed_by: Some("alice".into()),
                ..record(Mode::Managed, "bob", "t2")
            }
        );

        // Two repositories' `prod` in one store (the bot's): each reads
        // its own, and the record from before repositories were kept
        // apart until it has one.
        let (a, b) = (Some("github:acme/a"), Some("github:acme/b"));
        assert_eq!(
            store.last_mode("prod", a).await.unwrap().unwrap().mode,
            Mode::Managed
        );
        store
            .record_mode("prod", a, &record(Mode::ExportOnly, "ci", "t4"))
            .await
            .unwrap();
        store
            .record_mode("prod", b, &record(Mode::ReconcileOnly, "ci", "t5"))
            .await
            .unwrap();
        assert_eq!(
            store.last_mode("prod", a).await.unwrap().unwrap().mode,
            Mode::ExportOnly
        );
        assert_eq!(
            store.last_mode("prod", None).await.unwrap().unwrap().mode,
            Mode::Managed
        );
        store.confirm_mode("prod", b, "dana", "t6").await.unwrap();
        let of_a = store.last_mode("prod", a).await.unwrap().unwrap();
        let of_b = store.last_mode("prod", b).await.unwrap().unwrap();
        assert_eq!(
            (of_a.confirmed_by, of_b.confirmed_by.as_deref(), of_b.mode),
            (None, Some("dana"), Mode::ReconcileOnly)
        );
    }

    /// A store written by an envgate before the added columns: opened, it
    /// gains them, and its records still verify.
    #[tokio::test]
    async fn stores_from_before_gain_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let old = audit::seal_after(None, entry("apply"), None);
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE environment_modes (
                    id BIGINT PRIMARY KEY, environment TEXT NOT NULL, mode TEXT NOT NULL, actor TEXT, git_commit TEXT,
                    recorded_at TEXT NOT NULL, confirmed_by TEXT, confirmed_at TEXT);
                 INSERT INTO environment_modes VALUES (1, 'prod', 'managed', 'bob', NULL, 't', NULL, NULL);
                 CREATE TABLE audit_log (
                    seq BIGINT PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
                    environment TEXT, release TEXT, migrations TEXT NOT NULL, bundle_sha256 TEXT, outcome TEXT NOT NULL,
                    error TEXT, details TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
            )
            .unwrap();
            c.execute(
                "INSERT INTO audit_log VALUES (1, ?1, 'apply', ?2, 'prod', NULL, '[\"1\",\"2\"]', NULL, 'ok', NULL, NULL, ?3, ?4)",
                [&old.entry.at, &old.entry.actor, &old.prev_hash, &old.hash],
            )
            .unwrap();
        }
        let loc = crate::config::ControlStoreLocation::Sqlite(path);
        let store = ControlStore::open(&loc).await.unwrap();
        store.append(entry("export"), None).await.unwrap();
        let records = store.records().await.unwrap();
        assert_eq!(records[0], old);
        assert_eq!(audit::verify(&records, None).unwrap().plain, 2);
        let m = store.last_mode("prod", None).await.unwrap().unwrap();
        assert_eq!(
            (m.actor.as_deref(), m.source, m.approvers.len()),
            (Some("bob"), None, 0)
        );
        // Opening it again changes nothing.
        drop(store);
        ControlStore::open(&loc).await.unwrap();
    }
}
