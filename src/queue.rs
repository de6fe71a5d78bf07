//! The bot's work queue, in the control store: one job per webhook
//! delivery, keyed by its delivery id so a redelivery is processed once.
//!
//! Workers claim a job (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas
//! sharing one store never take the same job; SQLite: one `UPDATE …
//! RETURNING` in a write transaction) under a lease: a job whose worker
//! died is taken again once its lease runs out. A failed attempt is retried
//! with a delay; after the last attempt the job stays `failed`, visible.

use crate::control::{ControlStore, q, qo};
use tokio_postgres::SimpleQueryMessage;

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, delivery TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
    payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    run_after INTEGER NOT NULL, locked_by TEXT, locked_until INTEGER, last_error TEXT,
    received_at INTEGER NOT NULL, finished_at INTEGER);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_after);
CREATE TABLE IF NOT EXISTS job_locks (key TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL)";

const PG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id BIGSERIAL PRIMARY KEY, delivery TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
    payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL, locked_by TEXT, locked_until BIGINT, last_error TEXT,
    received_at BIGINT NOT NULL, finished_at BIGINT);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_after);
CREATE TABLE IF NOT EXISTS job_locks (key TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms BIGINT NOT NULL)";

/// A delivery to record.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub delivery: String,
    pub event: String,
    /// What the worker needs from the payload, as JSON.
    pub payload: String,
}

/// What became of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// Seen before: not processed again.
    Duplicate,
    /// Seen before and failed for good: queued again.
    Retried,
}

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub delivery: String,
    pub event: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// When the delivery arrived, ms since the epoch.
    pub received_at: i64,
}

/// A job's state, for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub delivery: String,
    pub event: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

fn pg_rows(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

fn describe(e: tokio_postgres::Error) -> String {
    crate::db::postgres::describe(&e)
}

impl ControlStore {
    /// Creates the queue's table when missing.
    pub async fn ensure_queue(&self) -> Result<(), String> {
        match self {
            ControlStore::Sqlite(c) => c.execute_batch(SQLITE_SCHEMA).map_err(|e| e.to_string()),
            ControlStore::Postgres(c) => c
                .batch_execute(&format!(
                    "BEGIN;SELECT pg_advisory_xact_lock(7310034283826794243);{PG_SCHEMA};COMMIT"
                ))
                .await
                .map_err(describe),
        }
    }

    /// Records deliveries, all in one transaction.
    pub async fn enqueue(&self, jobs: &[NewJob], now_ms: i64) -> Result<Vec<Enqueued>, String> {
        match self {
            ControlStore::Sqlite(c) => {
                let tx = c.unchecked_transaction().map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(jobs.len());
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO jobs (delivery, event, payload, state, run_after, received_at) \
                             VALUES (?1, ?2, ?3, 'queued', ?4, ?4) ON CONFLICT (delivery) DO NOTHING",
                        )
                        .map_err(|e| e.to_string())?;
                    let mut retry = tx
                        .prepare_cached(
                            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?2, locked_by = NULL, \
                             locked_until = NULL WHERE delivery = ?1 AND state = 'failed'",
                        )
                        .map_err(|e| e.to_string())?;
                    for j in jobs {
                        let n = insert
                            .execute(rusqlite::params![j.delivery, j.event, j.payload, now_ms])
                            .map_err(|e| e.to_string())?;
                        out.push(if n == 1 {
                            Enqueued::New
                        } else if retry
                            .execute(rusqlite::params![j.delivery, now_ms])
                            .map_err(|e| e.to_string())?
                            == 1
                        {
                            Enqueued::Retried
                        } else {
                            Enqueued::Duplicate
                        });
                    }
                }
                tx.commit().map_err(|e| e.to_string())?;
                Ok(out)
            }
            ControlStore::Postgres(c) => {
                // One row per job: (inserted, queued again).
                let mut sql = String::from("BEGIN;");
                for j in jobs {
                    sql.push_str(&format!(
                        "WITH ins AS (INSERT INTO jobs (delivery, event, payload, state, run_after, received_at) \
                         VALUES ({d}, {}, {}, 'queued', {now_ms}, {now_ms}) ON CONFLICT (delivery) DO NOTHING \
                         RETURNING 1), \
                         upd AS (UPDATE jobs SET state = 'queued', attempts = 0, run_after = {now_ms}, \
                         locked_by = NULL, locked_until = NULL WHERE delivery = {d} AND state = 'failed' RETURNING 1) \
                         SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd);",
                        q(&j.event),
                        q(&j.payload),
                        d = q(&j.delivery),
                    ));
                }
                sql.push_str("COMMIT");
                let messages = match c.simple_query(&sql).await {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = c.batch_execute("ROLLBACK").await;
                        return Err(describe(e));
                    }
                };
                Ok(pg_rows(messages)
                    .into_iter()
                    .map(|r| match (r[0].as_deref(), r[1].as_deref()) {
                        (Some("1"), _) => Enqueued::New,
                        (_, Some("1")) => Enqueued::Retried,
                        _ => Enqueued::Duplicate,
                    })
                    .collect())
            }
        }
    }

    /// Takes the oldest job that is ready, or whose lease ran out.
    pub async fn claim(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Job>, String> {
        let ready = format!(
            "(state = 'queued' AND run_after <= {now_ms}) OR (state = 'running' AND locked_until < {now_ms})"
        );
        let set = format!(
            "state = 'running', attempts = attempts + 1, locked_by = {}, locked_until = {}",
            q(worker),
            now_ms + lease_ms
        );
        let rows = match self {
            ControlStore::Sqlite(c) => {
                let sql = format!(
                    "UPDATE jobs SET {set} WHERE id = (SELECT id FROM jobs WHERE {ready} ORDER BY id LIMIT 1) \
                     RETURNING id, delivery, event, payload, attempts, received_at"
                );
                let tx = rusqlite::Transaction::new_unchecked(
                    c,
                    rusqlite::TransactionBehavior::Immediate,
                )
                .map_err(|e| e.to_string())?;
                let row = {
                    let mut st = tx.prepare(&sql).map_err(|e| e.to_string())?;
                    let mut rows = st.query([]).map_err(|e| e.to_string())?;
                    match rows.next().map_err(|e| e.to_string())? {
                        Some(r) => Some(Job {
                            id: r.get(0).map_err(|e| e.to_string())?,
                            delivery: r.get(1).map_err(|e| e.to_string())?,
                            event: r.get(2).map_err(|e| e.to_string())?,
                            payload: r.get(3).map_err(|e| e.to_string())?,
                            attempts: r.get(4).map_err(|e| e.to_string())?,
                            received_at: r.get(5).map_err(|e| e.to_string())?,
                        }),
                        None => None,
                    }
                };
                tx.commit().map_err(|e| e.to_string())?;
                return Ok(row);
            }
            ControlStore::Postgres(c) => {
                let sql = format!(
                    "UPDATE jobs SET {set} WHERE id = (SELECT id FROM jobs WHERE {ready} ORDER BY id LIMIT 1 \
                     FOR UPDATE SKIP LOCKED) RETURNING id, delivery, event, payload, attempts, received_at"
                );
                pg_rows(c.simple_query(&sql).await.map_err(describe)?)
            }
        };
        let Some(r) = rows.into_iter().next() else {
            return Ok(None);
        };
        let text = |i: usize| r[i].clone().unwrap_or_default();
        Ok(Some(Job {
            id: text(0).parse().map_err(|_| "jobs: bad id".to_owned())?,
            delivery: text(1),
            event: text(2),
            payload: text(3),
            attempts: text(4).parse().unwrap_or(1),
            received_at: text(5).parse().unwrap_or(0),
        }))
    }

    /// Extends the lease on a running job, and on the named locks its
    /// worker holds, while it still runs.
    pub async fn renew(&self, job: &Job, worker: &str, until_ms: i64) -> Result<(), String> {
        self.exec(&format!(
            "UPDATE jobs SET locked_until = {until_ms} WHERE id = {} AND locked_by = {} AND state = 'running'",
            job.id,
            q(worker)
        ))
        .await?;
        self.exec(&format!(
            "UPDATE job_locks SET until_ms = {until_ms} WHERE holder = {} AND until_ms < {until_ms}",
            q(worker)
        ))
        .await
    }

    /// Marks a job done (only by the worker holding it).
    pub async fn finish(&self, job: &Job, worker: &str, now_ms: i64) -> Result<(), String> {
        self.exec(&format!(
            "UPDATE jobs SET state = 'done', finished_at = {now_ms}, locked_by = NULL, locked_until = NULL, \
             last_error = NULL WHERE id = {} AND locked_by = {}",
            job.id,
            q(worker)
        ))
        .await
    }

    /// Puts a job back for another attempt at `run_after_ms`, or marks it
    /// failed for good (`run_after_ms` None).
    pub async fn give_back(
        &self,
        job: &Job,
        worker: &str,
        run_after_ms: Option<i64>,
        error: &str,
        now_ms: i64,
    ) -> Result<(), String> {
        let state = match run_after_ms {
            Some(at) => format!("state = 'queued', run_after = {at}"),
            None => format!("state = 'failed', finished_at = {now_ms}"),
        };
        self.exec(&format!(
            "UPDATE jobs SET {state}, locked_by = NULL, locked_until = NULL, last_error = {} \
             WHERE id = {} AND locked_by = {}",
            qo(Some(&crate::secrets::scrubbed(error))),
            job.id,
            q(worker)
        ))
        .await
    }

    /// Jobs waiting to run.
    pub async fn queue_depth(&self) -> Result<i64, String> {
        let rows = self
            .rows("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_deref())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Every job, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobState>, String> {
        let rows = self
            .rows("SELECT delivery, event, state, attempts, last_error FROM jobs ORDER BY id")
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobState {
                delivery: r[0].clone().unwrap_or_default(),
                event: r[1].clone().unwrap_or_default(),
                state: r[2].clone().unwrap_or_default(),
                attempts: r[3].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
                last_error: r[4].clone(),
            })
            .collect())
    }

    /// Takes a named lock until `until_ms` (or renews it); false while
    /// another holder's lock has not run out. Jobs on one pull request or
    /// one release take one, so two replicas never both create its comment.
    pub async fn try_lock(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, String> {
        let rows = self
            .rows(&format!(
                "INSERT INTO job_locks (key, holder, until_ms) VALUES ({k}, {h}, {until_ms}) \
                 ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
                 WHERE job_locks.until_ms < {now_ms} OR job_locks.holder = excluded.holder RETURNING key",
                k = q(key),
                h = q(holder),
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn unlock(&self, key: &str, holder: &str) -> Result<(), String> {
        self.exec(&format!(
            "DELETE FROM job_locks WHERE key = {} AND holder = {}",
            q(key),
            q(holder)
        ))
        .await
    }

    /// A trivial round trip: is the store there?
    pub async fn ping(&self) -> Result<(), String> {
        self.rows("SELECT 1").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControlStoreLocation;

    fn job(d: &str) -> NewJob {
        NewJob {
            delivery: d.into(),
            event: "pull_request".into(),
            payload: format!("{{\"d\":\"{d}\"}}"),
        }
    }

    #[tokio::test]
    async fn deliveries_are_recorded_once_claimed_once_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let loc = ControlStoreLocation::Sqlite(dir.path().join("q.db"));
        let store = ControlStore::open(&loc).await.unwrap();
        store.ensure_queue().await.unwrap();
        let other = ControlStore::open(&loc).await.unwrap();
        assert_eq!(
            store
                .enqueue(&[job("a"), job("b"), job("a")], 1000)
                .await
                .unwrap(),
            [Enqueued::New, Enqueued::New, Enqueued::Duplicate]
        );
        let a = store.claim("w1", 1000, 60_000).await.unwrap().unwrap();
        assert_eq!((a.delivery.as_str(), a.attempts), ("a", 1));
        let b = other.claim("w2", 1000, 60_000).await.unwrap().unwrap();
        assert_eq!(b.delivery, "b");
        assert!(store.claim("w1", 1000, 60_000).await.unwrap().is_none());
        store.finish(&a, "w1", 1001).await.unwrap();
        // b fails once, is retried later, then fails for good.
        other
            .give_back(&b, "w2", Some(5000), "502", 1002)
            .await
            .unwrap();
        assert!(store.claim("w1", 4999, 60_000).await.unwrap().is_none());
        let b = store.claim("w1", 5000, 60_000).await.unwrap().unwrap();
        assert_eq!(b.attempts, 2);
        store
            .give_back(&b, "w1", None, "gave up", 5001)
            .await
            .unwrap();
        // A redelivery of a failed job queues it again; of a done one, not.
        assert_eq!(
            store.enqueue(&[job("b"), job("a")], 6000).await.unwrap(),
            [Enqueued::Retried, Enqueued::Duplicate]
        );
        // A lease that ran out lets another worker take the job.
        let b = store.claim("w1", 6000, 100).await.unwrap().unwrap();
        let again = other.claim("w2", 6200, 100).await.unwrap().unwrap();
        assert_eq!((again.delivery.as_str(), again.attempts), ("b", 2));
        // The first worker can no longer finish it.
        store.finish(&b, "w1", 6300).await.unwrap();
        let states = store.jobs().await.unwrap();
        assert_eq!(states[1].state, "running");
        assert_eq!(store.queue_depth().await.unwrap(), 1);
        // Named locks: one holder at a time until it runs out.
        assert!(store.try_lock("pr:1", "w1", 0, 100).await.unwrap());
        assert!(!other.try_lock("pr:1", "w2", 50, 150).await.unwrap());
        assert!(store.try_lock("pr:1", "w1", 60, 200).await.unwrap());
        assert!(other.try_lock("pr:1", "w2", 201, 300).await.unwrap());
        other.unlock("pr:1", "w2").await.unwrap();
        assert!(store.try_lock("pr:1", "w1", 202, 300).await.unwrap());
    }
}
