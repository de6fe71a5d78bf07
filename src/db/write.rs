//! Sessions that write: only for `managed` environments (opening one takes a
//! [`WriteAccess`]), only through envgate's ledger discipline.
//!
//! Each backend offers the same few operations; the apply loop in
//! [`crate::apply`] is written once above them:
//! - ensure the ledger table exists;
//! - take the environment's lock ([`WriteSession::lock`] returns the proof
//!   the other operations need);
//! - read the ledger under the lock;
//! - run one migration with its ledger row, in one transaction, or outside
//!   any transaction for the statements that demand it;
//! - record a failed run.
//!
//! PostgreSQL locking: a session advisory lock held for the whole run, plus
//! a transaction-scoped advisory lock in every migration's transaction. A
//! connection through a transaction pooler (detected at connect time: it
//! refuses or drops the start-up option envgate sets) holds no session, so
//! there only the transaction-scoped lock is used, each migration re-checks
//! the ledger inside its transaction, and migrations that must run outside a
//! transaction are refused before anything runs.
//!
//! SQLite locking: an exclusive `flock` on the database file for the whole
//! run, plus `BEGIN IMMEDIATE` per migration.

use super::postgres::{self, describe};
use super::url::{PgTarget, SqliteTarget};
use super::{Target, WriteAccess};
use crate::core::ledger::LedgerRow;
use crate::core::ledger_table::{
    self, Elapsed, NewRow, create_table_sql, lock_key, qualified, select_sql,
};
use crate::core::migration::Migration;
use crate::core::sql::{Dialect, char_to_byte, line_col, quote_ident, quote_literal, split};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::{Client, SimpleQueryMessage};

/// SQLSTATE raised when a migration turns out to be applied already
/// (another run got there first).
const ALREADY_APPLIED: &str = "EG001";
/// SQLSTATE raised when the server connection under a session changed.
const BACKEND_CHANGED: &str = "EG002";

/// Where a migration failed, inside its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Why a step did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The migration's SQL failed; the database's message and where.
    Migration {
        message: String,
        position: Option<Position>,
        /// Ran outside a transaction: statements before the failing one
        /// took effect.
        partial: bool,
    },
    /// The lock could not be had in time.
    LockTimeout(String),
    /// The session moved to another server connection (a pooler).
    SessionLost(String),
    /// The connection broke, or another database problem outside the
    /// migration's own SQL (the ledger table, say).
    Database(String),
}

pub use crate::core::plan::Direction;

/// What happened to one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Applied {
        execution_ms: u64,
    },
    /// Another run applied it first.
    AlreadyApplied,
}

/// Proof that the environment's lock is held: the operations that change
/// the ledger take it.
pub struct LockProof {
    _private: (),
}

pub enum WriteSession {
    Postgres(PgWriter),
    Sqlite(SqliteWriter),
    Mysql(super::mysql_write::MysqlWriter),
}

/// A ledger row's details that come from the run, not the migration.
pub struct RowContext<'a> {
    pub applied_by: &'a str,
    pub release: Option<&'a str>,
}

impl WriteSession {
    /// Opens a session that may write. Needs the environment's
    /// [`WriteAccess`], which only `managed` environments hand out.
    pub async fn open(
        target: &Target,
        _access: &WriteAccess,
        schema: Option<&str>,
        application_name: &str,
        timeout: Duration,
    ) -> Result<WriteSession, String> {
        match target {
            Target::Postgres(pg) => Ok(WriteSession::Postgres(
                PgWriter::connect(pg, schema, application_name, timeout).await?,
            )),
            Target::Sqlite(lite) => {
                let lite = lite.clone();
                let w = tokio::task::spawn_blocking(move || SqliteWriter::open(&lite))
                    .await
                    .map_err(|e| e.to_string())??;
                Ok(WriteSession::Sqlite(w))
            }
            Target::Mysql(my) => Ok(WriteSession::Mysql(
                super::mysql_write::MysqlWriter::connect(my, schema, timeout).await?,
            )),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            WriteSession::Postgres(_) => Dialect::Postgres,
            WriteSession::Sqlite(_) => Dialect::Sqlite,
            WriteSession::Mysql(_) => Dialect::Mysql,
        }
    }

    /// Whether the connection goes through a transaction pooler.
    pub fn pooled(&self) -> bool {
        matches!(self, WriteSession::Postgres(pg) if pg.pooled)
    }

    /// Creates the ledger table (and schema) when missing.
    pub async fn ensure_ledger(&mut self, _lock: &LockProof) -> Result<(), String> {
        match self {
            WriteSession::Postgres(pg) => pg.ensure_ledger().await,
            WriteSession::Mysql(my) => my.ensure_ledger().await,
            WriteSession::Sqlite(lite) => {
                lite.run(|c, _| {
                    c.execute_batch(&create_table_sql(Dialect::Sqlite, None))
                        .map_err(|e| e.to_string())
                })
                .await
            }
        }
    }

    /// Takes the environment's lock, waiting up to `timeout`.
    pub async fn lock(&mut self, timeout: Duration) -> Result<LockProof, StepError> {
        match self {
            WriteSession::Postgres(pg) => pg.lock(timeout).await?,
            WriteSession::Sqlite(lite) => lite.lock(timeout).await?,
            WriteSession::Mysql(my) => my.lock(timeout).await?,
        }
        Ok(LockProof { _private: () })
    }

    pub async fn read_ledger(&mut self, _lock: &LockProof) -> Result<Vec<LedgerRow>, String> {
        match self {
            WriteSession::Postgres(pg) => pg.read_ledger().await,
            WriteSession::Sqlite(lite) => lite.read_ledger().await,
            WriteSession::Mysql(my) => my.read_ledger().await,
        }
    }

    /// Runs one migration and records it. `transactional`: in one
    /// transaction with its ledger row; else statement by statement, the
    /// row written after the last one succeeded.
    pub async fn apply(
        &mut self,
        _lock: &LockProof,
        migration: &Migration,
        transactional: bool,
        ctx: &RowContext<'_>,
    ) -> Result<StepOutcome, StepError> {
        match self {
            WriteSession::Postgres(pg) => pg.apply(migration, transactional, ctx).await,
            WriteSession::Mysql(my) => {
                my.apply(migration, transactional, ctx.applied_by, ctx.release)
                    .await
            }
            WriteSession::Sqlite(lite) => {
                let m = migration.clone();
                let by = ctx.applied_by.to_owned();
                let release = ctx.release.map(str::to_owned);
                lite.run(move |c, _| {
                    SqliteWriter::apply(c, &m, transactional, &by, release.as_deref())
                })
                .await
            }
        }
    }

    /// Reverts one migration with its down script and removes its ledger
    /// row, in one transaction where it can.
    pub async fn revert(
        &mut self,
        _lock: &LockProof,
        migration: &Migration,
        down: &str,
        transactional: bool,
    ) -> Result<StepOutcome, StepError> {
        match self {
            WriteSession::Postgres(pg) => pg.revert(migration, down, transactional).await,
            WriteSession::Mysql(my) => my.revert(migration, down, transactional).await,
            WriteSession::Sqlite(lite) => {
                let m = migration.clone();
                let down = down.to_owned();
                lite.run(move |c, _| SqliteWriter::revert(c, &m, &down, transactional))
                    .await
            }
        }
    }

    /// Records that a migration failed (replacing an earlier failure).
    pub async fn record_failure(
        &mut self,
        _lock: &LockProof,
        migration: &Migration,
        error: &str,
        ctx: &RowContext<'_>,
    ) -> Result<(), String> {
        let hash = migration.up.hash.tagged();
        let row = NewRow {
            version: migration.id(),
            name: &migration.name,
            sha256: &hash,
            applied_by: Some(ctx.applied_by),
            elapsed: Elapsed::Millis(0),
            success: false,
            release: ctx.release,
            applied_via: "managed",
            error: Some(error),
        };
        match self {
            WriteSession::Postgres(pg) => pg.record_failure(&row).await,
            WriteSession::Mysql(my) => my.record_failure(&row).await,
            WriteSession::Sqlite(lite) => {
                let sql = ledger_table::record_failure_sql(Dialect::Sqlite, None, &row);
                lite.run(move |c, _| {
                    c.execute_batch(&format!("BEGIN IMMEDIATE;\n{sql};\nCOMMIT;"))
                        .map_err(|e| {
                            let _ = c.execute_batch("ROLLBACK");
                            e.to_string()
                        })
                })
                .await
            }
        }
    }

    /// Replaces the recorded hash of an applied migration with `sha256`
    /// (tagged), in one transaction: drift accepted on purpose. Returns
    /// whether a row was updated.
    pub async fn accept_hash(
        &mut self,
        _lock: &LockProof,
        version: &str,
        sha256: &str,
    ) -> Result<bool, String> {
        match self {
            WriteSession::Mysql(my) => my.accept_hash(version, sha256).await,
            WriteSession::Postgres(pg) => {
                let sql = format!(
                    "BEGIN;{}{};COMMIT",
                    pg.set_path(),
                    ledger_table::accept_hash_sql(
                        Dialect::Postgres,
                        pg.schema.as_deref(),
                        version,
                        sha256
                    )
                );
                match pg.batch(&sql).await {
                    Ok(messages) => Ok(messages
                        .iter()
                        .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(n) if *n > 0))),
                    Err(e) => {
                        let _ = pg.batch("ROLLBACK").await;
                        Err(describe(&e))
                    }
                }
            }
            WriteSession::Sqlite(lite) => {
                let sql = ledger_table::accept_hash_sql(Dialect::Sqlite, None, version, sha256);
                lite.run(move |c, _| {
                    let tx = c.unchecked_transaction().map_err(|e| e.to_string())?;
                    let n = tx.execute(&sql, []).map_err(|e| e.to_string())?;
                    tx.commit().map_err(|e| e.to_string())?;
                    Ok(n > 0)
                })
                .await
            }
        }
    }

    /// Releases the lock (dropping the session releases it too).
    pub async fn unlock(&mut self, _lock: LockProof) {
        match self {
            WriteSession::Postgres(pg) => pg.unlock().await,
            WriteSession::Sqlite(lite) => lite.unlock(),
            WriteSession::Mysql(my) => my.unlock().await,
        }
    }
}

/// The ledger row a rollback's start marker names (only its version is
/// used).
fn marker_row(m: &Migration) -> NewRow<'_> {
    NewRow {
        version: m.id(),
        name: &m.name,
        sha256: "",
        applied_by: None,
        elapsed: Elapsed::Millis(0),
        success: false,
        release: None,
        applied_via: "managed",
        error: None,
    }
}

/// A PostgreSQL session that writes.
pub struct PgWriter {
    client: Client,
    schema: Option<String>,
    /// Behind a transaction pooler: no session state survives a
    /// transaction.
    pooled: bool,
    key: i64,
    /// The backend holding the session lock, when there is one.
    pid: Option<i32>,
    lock_timeout: Duration,
}

impl PgWriter {
    async fn connect(
        target: &PgTarget,
        schema: Option<&str>,
        application_name: &str,
        timeout: Duration,
    ) -> Result<PgWriter, String> {
        let nonce = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut target = target.clone();
        target.config.application_name(application_name);
        let probe = format!("-c envgate.session={nonce}");
        let (client, pooled) = match postgres::connect_with_option(&target, &probe, timeout).await {
            Ok(client) => {
                // A pooler may drop the option silently: ask the server.
                let seen = client
                    .simple_query("SHOW envgate.session")
                    .await
                    .ok()
                    .and_then(|msgs| {
                        msgs.into_iter().find_map(|m| match m {
                            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                            _ => None,
                        })
                    });
                (client, seen.as_deref() != Some(nonce.as_str()))
            }
            Err(e) if e.contains("unsupported startup parameter") => {
                (postgres::connect(&target, false, timeout).await?, true)
            }
            Err(e) => return Err(e),
        };
        if pooled {
            tracing::info!("connected through a transaction pooler: transaction-scoped locks only");
        }
        Ok(PgWriter {
            client,
            schema: schema.map(str::to_owned),
            pooled,
            key: lock_key(schema),
            pid: None,
            lock_timeout: Duration::from_secs(60),
        })
    }

    fn set_path(&self) -> String {
        self.schema.as_deref().map_or(String::new(), |s| {
            format!("SET LOCAL search_path TO {};", quote_ident(s))
        })
    }

    async fn batch(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        self.client.simple_query(sql).await
    }

    async fn ensure_ledger(&mut self) -> Result<(), String> {
        let ddl = create_table_sql(Dialect::Postgres, self.schema.as_deref());
        // Concurrent first runs may race on CREATE ... IF NOT EXISTS; the
        // advisory lock serialises them (re-entrant for the session holding
        // it, bounded by the lock timeout through a pooler).
        let sql = format!(
            "BEGIN;SET LOCAL lock_timeout = '{}ms';SELECT pg_advisory_xact_lock({});SET LOCAL lock_timeout TO DEFAULT;{ddl};COMMIT",
            self.lock_timeout.as_millis().max(1),
            self.key
        );
        if let Err(e) = self.batch(&sql).await {
            let _ = self.batch("ROLLBACK").await;
            return Err(format!(
                "cannot create the ledger table {}: {}",
                qualified(Dialect::Postgres, self.schema.as_deref()),
                describe(&e)
            ));
        }
        Ok(())
    }

    async fn lock(&mut self, timeout: Duration) -> Result<(), StepError> {
        self.lock_timeout = timeout;
        if self.pooled {
            // Only transaction-scoped locks, taken in each migration.
            return Ok(());
        }
        let started = Instant::now();
        loop {
            let msgs = self
                .batch(&format!(
                    "SELECT pg_try_advisory_lock({}), pg_backend_pid()",
                    self.key
                ))
                .await
                .map_err(|e| StepError::Database(describe(&e)))?;
            let row = msgs.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((r.get(0) == Some("t"), r.get(1).and_then(|p| p.parse().ok())))
                }
                _ => None,
            });
            if let Some((true, pid)) = row {
                self.pid = pid;
                if let Some(s) = &self.schema {
                    self.batch(&format!("SET search_path TO {}", quote_ident(s)))
                        .await
                        .map_err(|e| StepError::Database(describe(&e)))?;
                }
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(StepError::LockTimeout(self.holder_message(timeout).await));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// "held by …": who holds the lock, as far as pg_stat_activity tells.
    async fn holder_message(&self, waited: Duration) -> String {
        let k = self.key as u64;
        let sql = format!(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
             coalesce(host(a.client_addr), 'local socket'), \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {} AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.pid <> pg_backend_pid()",
            k >> 32,
            k & 0xffff_ffff
        );
        let holder = self.batch(&sql).await.ok().and_then(|msgs| {
            msgs.into_iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(format!(
                    "held by {} (pid {}, user {}, from {}, connected since {})",
                    match r.get(1) {
                        Some("") | None => "an unnamed client",
                        Some(app) => app,
                    },
                    r.get(0).unwrap_or("?"),
                    r.get(2).unwrap_or("?"),
                    r.get(3).unwrap_or("?"),
                    r.get(4).unwrap_or("?"),
                )),
                _ => None,
            })
        });
        format!(
            "the environment's migration lock is {} ; gave up after {}",
            holder.unwrap_or_else(|| "held by another session".to_owned()),
            humantime::format_duration(waited)
        )
        .replace(" ;", ";")
    }

    async fn read_ledger(&mut self) -> Result<Vec<LedgerRow>, String> {
        let sql = format!(
            "BEGIN;{}{};COMMIT",
            self.set_path(),
            select_sql(Dialect::Postgres, self.schema.as_deref())
        );
        let msgs = match self.batch(&sql).await {
            Ok(m) => m,
            Err(e) => {
                let _ = self.batch("ROLLBACK").await;
                return Err(format!(
                    "ledger table {} cannot be read (is it envgate's ledger?): {}",
                    qualified(Dialect::Postgres, self.schema.as_deref()),
                    describe(&e)
                ));
            }
        };
        msgs.iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(crate::ledger::envgate::parse_row(r)),
                _ => None,
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "ledger table {}: {e}",
                    qualified(Dialect::Postgres, self.schema.as_deref())
                )
            })
    }

    /// Checks run at the start of each migration's transaction: the lock,
    /// the session (when there is one), and that nobody got there first
    /// (applied it, for an apply; reverted it, for a rollback).
    fn step_prelude(&self, version: &str, direction: Direction) -> String {
        let table = qualified(Dialect::Postgres, self.schema.as_deref());
        let same_backend = self.pid.map_or(String::new(), |pid| {
            format!(
                "IF pg_backend_pid() <> {pid} THEN RAISE EXCEPTION USING ERRCODE = '{BACKEND_CHANGED}', \
                 MESSAGE = 'the connection moved to another server session (a transaction pooler?)'; END IF; "
            )
        });
        let done = match direction {
            Direction::Up => "EXISTS",
            Direction::Down => "NOT EXISTS",
        };
        format!(
            "SET LOCAL lock_timeout = '{}ms';SELECT pg_advisory_xact_lock({});SET LOCAL lock_timeout TO DEFAULT;\
             DO $envgate$ BEGIN {same_backend}IF {done} (SELECT 1 FROM {table} WHERE version = {} AND success) THEN \
             RAISE EXCEPTION USING ERRCODE = '{ALREADY_APPLIED}', MESSAGE = 'already done'; END IF; END $envgate$;",
            self.lock_timeout.as_millis().max(1),
            self.key,
            quote_literal(version),
        )
    }

    async fn apply(
        &mut self,
        m: &Migration,
        transactional: bool,
        ctx: &RowContext<'_>,
    ) -> Result<StepOutcome, StepError> {
        let hash = m.up.hash.tagged();
        let schema = self.schema.clone();
        let row = |elapsed: Elapsed| NewRow {
            version: m.id(),
            name: &m.name,
            sha256: &hash,
            applied_by: Some(ctx.applied_by),
            elapsed,
            success: true,
            release: ctx.release,
            applied_via: "managed",
            error: None,
        };
        let started = ledger_table::started_sql(
            Dialect::Postgres,
            schema.as_deref(),
            &row(Elapsed::Millis(0)),
            false,
        );
        let finish = |elapsed: Elapsed| {
            ledger_table::record_sql(Dialect::Postgres, schema.as_deref(), &row(elapsed))
        };
        self.step(
            m.id(),
            &m.up.sql,
            transactional,
            Direction::Up,
            &started,
            &finish,
        )
        .await
    }

    async fn revert(
        &mut self,
        m: &Migration,
        down: &str,
        transactional: bool,
    ) -> Result<StepOutcome, StepError> {
        let schema = self.schema.as_deref();
        let delete = ledger_table::delete_sql(Dialect::Postgres, schema, m.id());
        let started = ledger_table::started_sql(Dialect::Postgres, schema, &marker_row(m), true);
        self.step(
            m.id(),
            down,
            transactional,
            Direction::Down,
            &started,
            &|_| delete.clone(),
        )
        .await
    }

    /// Runs one script of a migration and finishes it with `finish` (the
    /// ledger row to write or remove), in one transaction — the checks, each
    /// statement, then the finish and COMMIT, sent as separate queries but
    /// pipelined: one round trip, and an error names the statement it came
    /// from — or, when it cannot run in a transaction, statement by
    /// statement with the finish written after the last one.
    async fn step(
        &mut self,
        version: &str,
        sql: &str,
        transactional: bool,
        direction: Direction,
        start_row: &str,
        finish: &dyn Fn(Elapsed) -> String,
    ) -> Result<StepOutcome, StepError> {
        let started = Instant::now();
        let statements = split(sql, Dialect::Postgres);
        if transactional {
            let prefix = format!(
                "BEGIN;SET LOCAL standard_conforming_strings = on;{}{}",
                self.set_path(),
                self.step_prelude(version, direction)
            );
            let end = format!("{};COMMIT", finish(Elapsed::SinceTransactionStart));
            let queries: Vec<&str> = std::iter::once(prefix.as_str())
                .chain(statements.iter().map(|s| s.text))
                .chain(std::iter::once(end.as_str()))
                .collect();
            let results =
                futures::future::join_all(queries.iter().map(|q| self.client.simple_query(q)))
                    .await;
            let Some((i, e)) = results
                .iter()
                .enumerate()
                .find_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
            else {
                return Ok(StepOutcome::Applied {
                    execution_ms: started.elapsed().as_millis() as u64,
                });
            };
            let _ = self.batch("ROLLBACK").await;
            if i == 0
                && e.as_db_error()
                    .is_some_and(|db| db.code().code() == ALREADY_APPLIED)
            {
                return Ok(StepOutcome::AlreadyApplied);
            }
            return Err(if i == 0 {
                self.prelude_error(e).await
            } else if i <= statements.len() {
                self.classify(e, sql, statements[i - 1].offset, false)
            } else {
                StepError::Database(format!("updating the ledger failed: {}", describe(e)))
            });
        }
        if self.pooled {
            return Err(StepError::SessionLost(
                "it must run outside a transaction, which needs a direct connection, not a transaction pooler".into(),
            ));
        }
        // Outside a transaction: check, then statement by statement.
        let table = qualified(Dialect::Postgres, self.schema.as_deref());
        let check = format!(
            "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM {table} WHERE version = {} AND success)",
            quote_literal(version)
        );
        let msgs = self
            .batch(&check)
            .await
            .map_err(|e| StepError::Database(describe(&e)))?;
        let (pid, present) = msgs
            .iter()
            .find_map(|msg| match msg {
                SimpleQueryMessage::Row(r) => Some((
                    r.get(0).and_then(|p| p.parse::<i32>().ok()),
                    r.get(1) == Some("t"),
                )),
                _ => None,
            })
            .unwrap_or((None, false));
        if self.pid.is_some() && pid != self.pid {
            return Err(StepError::SessionLost(
                "the connection moved to another server session (a transaction pooler?)".into(),
            ));
        }
        let done = match direction {
            Direction::Up => present,
            Direction::Down => !present,
        };
        if done {
            return Ok(StepOutcome::AlreadyApplied);
        }
        // Recorded before anything runs: if the run is killed midway, the
        // ledger says so (see `ledger_table::INTERRUPTED`).
        self.batch(&format!("{start_row};SET standard_conforming_strings = on"))
            .await
            .map_err(|e| {
                StepError::Database(format!("recording the start failed: {}", describe(&e)))
            })?;
        for (i, stmt) in statements.iter().enumerate() {
            if let Err(e) = self.batch(stmt.text).await {
                return Err(self.classify(&e, sql, stmt.offset, i > 0));
            }
        }
        let end = finish(Elapsed::Millis(started.elapsed().as_millis() as u64));
        self.batch(&end).await.map_err(|e| {
            StepError::Database(format!(
                "the statements ran, but updating the ledger failed: {}",
                describe(&e)
            ))
        })?;
        Ok(StepOutcome::Applied {
            execution_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// An error from the checks before a migration: the lock, the session.
    async fn prelude_error(&self, e: &tokio_postgres::Error) -> StepError {
        match e.as_db_error() {
            Some(db) if db.code() == &SqlState::LOCK_NOT_AVAILABLE => {
                StepError::LockTimeout(self.holder_message(self.lock_timeout).await)
            }
            Some(db) if db.code().code() == BACKEND_CHANGED => {
                StepError::SessionLost(db.message().to_owned())
            }
            Some(_) => StepError::Database(describe(e)),
            None => StepError::Database(format!("connection lost: {}", describe(e))),
        }
    }

    /// Turns a driver error from one of a migration's statements into a
    /// step error. `offset`: where the statement starts in the file.
    fn classify(
        &self,
        e: &tokio_postgres::Error,
        sql: &str,
        offset: usize,
        partial: bool,
    ) -> StepError {
        let message = describe(e);
        let Some(db) = e.as_db_error() else {
            return StepError::Database(format!("connection lost: {message}"));
        };
        // A syntax error has a position (1-based, in characters, into the
        // statement); any other error is placed at its statement's start.
        let byte = match db.position() {
            Some(ErrorPosition::Original(p)) => {
                offset + char_to_byte(&sql[offset..], (*p as usize).saturating_sub(1))
            }
            _ => offset,
        };
        let (line, column) = line_col(sql, byte);
        let position = Some(Position { line, column });
        StepError::Migration {
            message,
            position,
            partial,
        }
    }

    async fn record_failure(&mut self, row: &NewRow<'_>) -> Result<(), String> {
        let sql = format!(
            "BEGIN;SET LOCAL standard_conforming_strings = on;{}SELECT pg_advisory_xact_lock({});{};COMMIT",
            self.set_path(),
            self.key,
            ledger_table::record_failure_sql(Dialect::Postgres, self.schema.as_deref(), row)
        );
        if let Err(e) = self.batch(&sql).await {
            let _ = self.batch("ROLLBACK").await;
            return Err(describe(&e));
        }
        Ok(())
    }

    async fn unlock(&mut self) {
        if self.pid.is_some() {
            let _ = self
                .batch(&format!("SELECT pg_advisory_unlock({})", self.key))
                .await;
            self.pid = None;
        }
    }
}

/// A SQLite database opened for writing.
pub struct SqliteWriter {
    conn: Arc<Mutex<rusqlite::Connection>>,
    path: Option<std::path::PathBuf>,
    /// The whole-run lock: an exclusive `flock` on the database file.
    lock_file: Option<File>,
}

impl SqliteWriter {
    fn open(target: &SqliteTarget) -> Result<SqliteWriter, String> {
        let (conn, path) = match target {
            SqliteTarget::Memory => (rusqlite::Connection::open_in_memory(), None),
            SqliteTarget::File(p) => (rusqlite::Connection::open(p), Some(p.clone())),
        };
        let conn = conn.map_err(|e| e.to_string())?;
        Ok(SqliteWriter {
            conn: Arc::new(Mutex::new(conn)),
            path,
            lock_file: None,
        })
    }

    async fn run<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, ()) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().expect("sqlite connection poisoned");
            f(&conn, ())
        })
        .await
        .expect("sqlite task panicked")
    }

    async fn lock(&mut self, timeout: Duration) -> Result<(), StepError> {
        self.run(move |c, _| {
            c.busy_timeout(timeout)
                .map_err(|e| StepError::Database(e.to_string()))
        })
        .await?;
        let Some(path) = self.path.clone() else {
            return Ok(()); // in memory: nobody else can see it
        };
        let file = tokio::task::spawn_blocking(move || -> Result<File, StepError> {
            let file = File::open(&path)
                .map_err(|e| StepError::Database(format!("{}: {e}", path.display())))?;
            let started = Instant::now();
            loop {
                match file.try_lock() {
                    Ok(()) => return Ok(file),
                    Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < timeout => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(StepError::LockTimeout(format!(
                            "{} is locked by another envgate run; gave up after {}",
                            path.display(),
                            humantime::format_duration(timeout)
                        )));
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(StepError::Database(format!(
                            "locking {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
        })
        .await
        .expect("lock task panicked")?;
        self.lock_file = Some(file);
        Ok(())
    }

    fn unlock(&mut self) {
        if let Some(f) = self.lock_file.take() {
            let _ = f.unlock();
        }
    }

    async fn read_ledger(&self) -> Result<Vec<LedgerRow>, String> {
        self.run(|c, _| {
            super::sqlite::query(
                c,
                &select_sql(Dialect::Sqlite, None),
                Box::new(crate::ledger::envgate::parse_row),
            )
            .map_err(|e| {
                format!(
                    "ledger table {}: {}",
                    ledger_table::qualified(Dialect::Sqlite, None),
                    e.message()
                )
            })
        })
        .await
    }

    fn apply(
        c: &rusqlite::Connection,
        m: &Migration,
        transactional: bool,
        applied_by: &str,
        release: Option<&str>,
    ) -> Result<StepOutcome, StepError> {
        let hash = m.up.hash.tagged();
        let row = |ms: u64| NewRow {
            version: m.id(),
            name: &m.name,
            sha256: &hash,
            applied_by: Some(applied_by),
            elapsed: Elapsed::Millis(ms),
            success: true,
            release,
            applied_via: "managed",
            error: None,
        };
        let started = ledger_table::started_sql(Dialect::Sqlite, None, &row(0), false);
        let finish = |ms: u64| ledger_table::record_sql(Dialect::Sqlite, None, &row(ms));
        Self::step(
            c,
            m.id(),
            &m.up.sql,
            transactional,
            Direction::Up,
            &started,
            &finish,
        )
    }

    fn revert(
        c: &rusqlite::Connection,
        m: &Migration,
        down: &str,
        transactional: bool,
    ) -> Result<StepOutcome, StepError> {
        let delete = ledger_table::delete_sql(Dialect::Sqlite, None, m.id());
        let started = ledger_table::started_sql(Dialect::Sqlite, None, &marker_row(m), true);
        Self::step(
            c,
            m.id(),
            down,
            transactional,
            Direction::Down,
            &started,
            &|_| delete.clone(),
        )
    }

    fn step(
        c: &rusqlite::Connection,
        version: &str,
        sql: &str,
        transactional: bool,
        direction: Direction,
        start_row: &str,
        finish: &dyn Fn(u64) -> String,
    ) -> Result<StepOutcome, StepError> {
        let db_err = |e: rusqlite::Error| StepError::Database(e.to_string());
        let started = Instant::now();
        if transactional {
            c.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        }
        let rollback = |c: &rusqlite::Connection| {
            if transactional {
                let _ = c.execute_batch("ROLLBACK");
            }
        };
        let present: bool = match c.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE version = ?1 AND success = 1)",
                ledger_table::qualified(Dialect::Sqlite, None)
            ),
            [version],
            |r| r.get(0),
        ) {
            Ok(d) => d,
            Err(e) => {
                rollback(c);
                return Err(db_err(e));
            }
        };
        if present == (direction == Direction::Up) {
            rollback(c);
            return Ok(StepOutcome::AlreadyApplied);
        }
        if !transactional {
            // Recorded before anything runs (see `ledger_table::INTERRUPTED`).
            c.execute_batch(&format!("BEGIN IMMEDIATE;\n{start_row};\nCOMMIT;"))
                .map_err(|e| {
                    let _ = c.execute_batch("ROLLBACK");
                    StepError::Database(format!("recording the start failed: {e}"))
                })?;
        }
        for (i, stmt) in split(sql, Dialect::Sqlite).iter().enumerate() {
            if let Err(e) = c.execute_batch(stmt.text) {
                rollback(c);
                let within = match &e {
                    rusqlite::Error::SqlInputError { offset, .. } if *offset >= 0 => {
                        *offset as usize
                    }
                    _ => 0,
                };
                let (line, column) = line_col(sql, stmt.offset + within.min(stmt.text.len()));
                return Err(StepError::Migration {
                    message: e.to_string(),
                    position: Some(Position { line, column }),
                    partial: !transactional && i > 0,
                });
            }
        }
        let end = if transactional { "\nCOMMIT;" } else { "" };
        if let Err(e) = c.execute_batch(&format!(
            "{};{end}",
            finish(started.elapsed().as_millis() as u64)
        )) {
            rollback(c);
            return Err(StepError::Database(format!(
                "updating the ledger failed: {e}"
            )));
        }
        Ok(StepOutcome::Applied {
            execution_ms: started.elapsed().as_millis() as u64,
        })
    }
}
