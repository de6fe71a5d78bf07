//! Applying migrations to MySQL and MariaDB, honestly for databases whose
//! DDL commits by itself.
//!
//! - A migration of DML alone runs in one transaction with its ledger row:
//!   all of it or nothing.
//! - A migration with DDL cannot be atomic. Its row is written as failed
//!   ("started") before anything runs, updated after each statement
//!   ("statements 1–2 of 4 ran"), and marked successful at the end. A
//!   failure or a kill leaves it failed with how far it got; `apply`
//!   refuses to go on until `--retry-failed`, which resumes after the last
//!   statement that ran when the statements before it are unchanged.
//! - The environment's lock is `GET_LOCK` on a name derived from the
//!   ledger, released on every path (and by the server when the connection
//!   ends); a timeout names the connection holding it.

use super::mysql::{MysqlTarget, connect, describe};
use super::write::{Position, StepError, StepOutcome};
use crate::core::ledger::LedgerRow;
use crate::core::ledger_table::{
    self, Elapsed, NewRow, parse_progress, prefix_hash, progress_text, qualified, select_sql,
};
use crate::core::sql::{Dialect, line_col, quote_literal_mysql as lit, split};
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

pub struct MysqlWriter {
    conn: mysql_async::Conn,
    schema: Option<String>,
    lock_name: String,
    locked: bool,
}

impl MysqlWriter {
    pub async fn connect(
        t: &MysqlTarget,
        schema: Option<&str>,
        timeout: Duration,
    ) -> Result<MysqlWriter, String> {
        let mut conn = connect(t, timeout).await?;
        // Migrations run in the server's own SQL mode, as the mysql client
        // runs them (a double-quoted string stays a string); envgate's
        // ledger statements quote with backticks and need no ANSI_QUOTES.
        conn.query_drop("SET SESSION sql_mode = @@GLOBAL.sql_mode")
            .await
            .map_err(|e| describe(&e))?;
        let lock_name = ledger_table::mysql_lock_name(schema.unwrap_or(&t.database));
        Ok(MysqlWriter {
            conn,
            schema: schema.map(str::to_owned),
            lock_name,
            locked: false,
        })
    }

    fn table(&self) -> String {
        qualified(Dialect::Mysql, self.schema.as_deref())
    }

    pub async fn ensure_ledger(&mut self) -> Result<(), String> {
        self.conn
            .query_drop(ledger_table::create_table_sql(
                Dialect::Mysql,
                self.schema.as_deref(),
            ))
            .await
            .map_err(|e| describe(&e))
    }

    pub async fn lock(&mut self, timeout: Duration) -> Result<(), StepError> {
        let secs = timeout.as_secs_f64().max(0.0);
        let got: Option<Option<i64>> = self
            .conn
            .query_first(format!(
                "SELECT GET_LOCK({}, {secs:.3})",
                lit(&self.lock_name)
            ))
            .await
            .map_err(|e| StepError::Database(describe(&e)))?;
        match got.flatten() {
            Some(1) => {
                self.locked = true;
                Ok(())
            }
            _ => Err(StepError::LockTimeout(self.holder_message(timeout).await)),
        }
    }

    async fn holder_message(&mut self, waited: Duration) -> String {
        let holder: Option<(Option<String>, Option<String>, Option<String>)> = self
            .conn
            .query_first(format!(
                "SELECT CAST(p.ID AS CHAR), p.USER, p.HOST FROM information_schema.PROCESSLIST p \
                 WHERE p.ID = IS_USED_LOCK({})",
                lit(&self.lock_name)
            ))
            .await
            .ok()
            .flatten();
        let who = match holder {
            Some((Some(id), user, host)) => format!(
                "connection {id} ({}@{})",
                user.unwrap_or_default(),
                host.unwrap_or_default()
            ),
            _ => "another session".to_owned(),
        };
        format!(
            "the environment's migration lock ({}) is held by {who}; gave up after {}",
            self.lock_name,
            humantime::format_duration(waited)
        )
    }

    pub async fn unlock(&mut self) {
        if self.locked {
            let _ = self
                .conn
                .query_drop(format!("DO RELEASE_LOCK({})", lit(&self.lock_name)))
                .await;
            self.locked = false;
        }
    }

    pub async fn read_ledger(&mut self) -> Result<Vec<LedgerRow>, String> {
        let rows: Vec<mysql_async::Row> = self
            .conn
            .query(select_sql(Dialect::Mysql, self.schema.as_deref()))
            .await
            .map_err(|e| {
                format!(
                    "ledger table {} cannot be read (is it envgate's ledger?): {}",
                    self.table(),
                    describe(&e)
                )
            })?;
        rows.into_iter()
            .map(|r| {
                let values: Vec<Option<String>> =
                    r.unwrap().iter().map(super::mysql::text).collect();
                crate::ledger::envgate::parse_row(&values)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("ledger table {}: {e}", self.table()))
    }

    /// The ledger's row for `version`: (success, error).
    async fn row_of(&mut self, version: &str) -> Result<Option<(bool, Option<String>)>, StepError> {
        let row: Option<(i64, Option<String>)> = self
            .conn
            .query_first(format!(
                "SELECT success + 0, error FROM {} WHERE version = {}",
                self.table(),
                lit(version)
            ))
            .await
            .map_err(|e| StepError::Database(describe(&e)))?;
        Ok(row.map(|(s, e)| (s != 0, e)))
    }

    async fn exec(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        self.conn.query_drop(sql).await
    }

    async fn ledger_write(&mut self, sql: &str) -> Result<(), StepError> {
        for stmt in split(sql, Dialect::Mysql) {
            self.exec(stmt.text).await.map_err(|e| {
                StepError::Database(format!("updating the ledger failed: {}", describe(&e)))
            })?;
        }
        Ok(())
    }

    /// A statement's error, placed in the file.
    fn classify(
        e: &mysql_async::Error,
        sql: &str,
        offset: usize,
        prefix: &str,
        partial: bool,
    ) -> StepError {
        let message = describe(e);
        if !matches!(e, mysql_async::Error::Server(_)) {
            return StepError::Database(format!("connection lost: {message}"));
        }
        // "… near '…' at line 2": the line within the statement.
        let within = message
            .rsplit_once(" at line ")
            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
            .unwrap_or(1);
        let (line, column) = line_col(sql, offset);
        let position = if within > 1 {
            Position {
                line: line + within - 1,
                column: 1,
            }
        } else {
            Position { line, column }
        };
        StepError::Migration {
            message: format!("{prefix}{message}"),
            position: Some(position),
            partial,
        }
    }

    pub async fn apply(
        &mut self,
        m: &crate::core::migration::Migration,
        transactional: bool,
        applied_by: &str,
        release: Option<&str>,
    ) -> Result<StepOutcome, StepError> {
        let started = Instant::now();
        let hash = m.up.hash.tagged();
        let schema = self.schema.clone();
        let row = |success: bool, elapsed: u64, error: Option<&str>| {
            ledger_table::record_sql(
                Dialect::Mysql,
                schema.as_deref(),
                &NewRow {
                    version: m.id(),
                    name: &m.name,
                    sha256: &hash,
                    applied_by: Some(applied_by),
                    elapsed: Elapsed::Millis(elapsed),
                    success,
                    release,
                    applied_via: "managed",
                    error,
                },
            )
        };
        let previous = self.row_of(m.id()).await?;
        if matches!(previous, Some((true, _))) {
            return Ok(StepOutcome::AlreadyApplied);
        }
        let statements = split(&m.up.sql, Dialect::Mysql);
        let texts: Vec<&str> = statements.iter().map(|s| s.text).collect();
        if transactional {
            self.exec("START TRANSACTION")
                .await
                .map_err(|e| StepError::Database(describe(&e)))?;
            for stmt in &statements {
                if let Err(e) = self.exec(stmt.text).await {
                    let _ = self.exec("ROLLBACK").await;
                    return Err(Self::classify(&e, &m.up.sql, stmt.offset, "", false));
                }
            }
            let finish = row(true, started.elapsed().as_millis() as u64, None);
            if let Err(e) = self.ledger_write(&finish).await {
                let _ = self.exec("ROLLBACK").await;
                return Err(e);
            }
            self.exec("COMMIT")
                .await
                .map_err(|e| StepError::Database(describe(&e)))?;
            return Ok(StepOutcome::Applied {
                execution_ms: started.elapsed().as_millis() as u64,
            });
        }
        // With DDL: resume after what already ran, when its statements are
        // the same as today's.
        let total = texts.len();
        let mut done = 0;
        if let Some((false, Some(error))) = &previous
            && let Some((k, n, prefix)) = parse_progress(error)
            && n == total
            && k < total
            && prefix == prefix_hash(&texts, k)
        {
            done = k;
            tracing::info!(version = m.id(), "resuming after statement {k} of {n}");
        }
        let progress = |done: usize| progress_text(done, total, &prefix_hash(&texts, done));
        // Recorded before anything runs: a kill leaves the ledger saying
        // how far the migration got.
        self.ledger_write(&row(false, 0, Some(&progress(done))))
            .await?;
        for (i, stmt) in statements.iter().enumerate().skip(done) {
            if let Err(e) = self.exec(stmt.text).await {
                return Err(Self::classify(
                    &e,
                    &m.up.sql,
                    stmt.offset,
                    &format!("{}; statement {} failed: ", progress(i), i + 1),
                    i > 0,
                ));
            }
            // After the last statement the row is marked successful instead.
            if i + 1 < total {
                let update = format!(
                    "UPDATE {} SET error = {} WHERE version = {} AND success = 0",
                    self.table(),
                    lit(&progress(i + 1)),
                    lit(m.id())
                );
                self.ledger_write(&update).await?;
            }
        }
        let elapsed = started.elapsed().as_millis() as u64;
        self.ledger_write(&ledger_table::mysql_mark_success_sql(
            self.schema.as_deref(),
            m.id(),
            elapsed,
        ))
        .await?;
        Ok(StepOutcome::Applied {
            execution_ms: elapsed,
        })
    }

    /// Runs a down script (statement by statement; in one transaction with
    /// the row's removal when it is DML alone) and removes the row.
    pub async fn revert(
        &mut self,
        m: &crate::core::migration::Migration,
        down: &str,
        transactional: bool,
    ) -> Result<StepOutcome, StepError> {
        let started = Instant::now();
        if !matches!(self.row_of(m.id()).await?, Some((true, _))) {
            return Ok(StepOutcome::AlreadyApplied);
        }
        let delete = ledger_table::delete_sql(Dialect::Mysql, self.schema.as_deref(), m.id());
        if transactional {
            self.exec("START TRANSACTION")
                .await
                .map_err(|e| StepError::Database(describe(&e)))?;
        }
        let statements = split(down, Dialect::Mysql);
        for (i, stmt) in statements.iter().enumerate() {
            if let Err(e) = self.exec(stmt.text).await {
                if transactional {
                    let _ = self.exec("ROLLBACK").await;
                }
                let prefix = if transactional {
                    String::new()
                } else {
                    format!(
                        "statements 1–{i} of {} of the down script ran; ",
                        statements.len()
                    )
                };
                return Err(Self::classify(
                    &e,
                    down,
                    stmt.offset,
                    &prefix,
                    !transactional && i > 0,
                ));
            }
        }
        self.ledger_write(&delete).await?;
        if transactional {
            self.exec("COMMIT")
                .await
                .map_err(|e| StepError::Database(describe(&e)))?;
        }
        Ok(StepOutcome::Applied {
            execution_ms: started.elapsed().as_millis() as u64,
        })
    }

    pub async fn record_failure(&mut self, row: &NewRow<'_>) -> Result<(), String> {
        let sql = ledger_table::record_failure_sql(Dialect::Mysql, self.schema.as_deref(), row);
        self.exec("START TRANSACTION")
            .await
            .map_err(|e| describe(&e))?;
        for stmt in split(&sql, Dialect::Mysql) {
            if let Err(e) = self.exec(stmt.text).await {
                let _ = self.exec("ROLLBACK").await;
                return Err(describe(&e));
            }
        }
        self.exec("COMMIT").await.map_err(|e| describe(&e))
    }

    pub async fn accept_hash(&mut self, version: &str, sha256: &str) -> Result<bool, String> {
        let sql =
            ledger_table::accept_hash_sql(Dialect::Mysql, self.schema.as_deref(), version, sha256);
        let result = self.conn.query_iter(sql).await.map_err(|e| describe(&e))?;
        Ok(result.affected_rows() > 0)
    }
}
