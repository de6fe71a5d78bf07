//! Database targets: how envgate reaches an environment's database.
//!
//! A [`ReadSession`] can only read: PostgreSQL sessions run every query in a
//! `BEGIN TRANSACTION READ ONLY` transaction (and ask for
//! `default_transaction_read_only` at start-up), MySQL and MariaDB ones in
//! `START TRANSACTION … READ ONLY`, SQLite files are opened read-only. The database itself refuses writes through them. Writing needs
//! a [`WriteAccess`], which only a `managed` environment hands out.

pub mod mysql;
pub mod mysql_write;
pub mod postgres;
pub mod shadow;
pub mod sqlite;
pub mod tls;
pub mod url;
pub mod write;

use crate::config::EnvConfig;
use crate::core::mode::Mode;
pub use crate::core::sql::Dialect;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use url::{PgTarget, SqliteTarget, Target};

/// Rows of text values, as the simple query protocol returns them.
pub type TextRows = Vec<Vec<Option<String>>>;

/// One result row, every value as text (NULL as `None`).
pub trait TextRow {
    fn width(&self) -> usize;
    fn text(&self, i: usize) -> Option<&str>;
}

impl TextRow for tokio_postgres::SimpleQueryRow {
    fn width(&self) -> usize {
        self.len()
    }
    fn text(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
}

impl TextRow for Vec<Option<String>> {
    fn width(&self) -> usize {
        self.len()
    }
    fn text(&self, i: usize) -> Option<&str> {
        self.get(i).and_then(|v| v.as_deref())
    }
}

/// Turns a row into a value, or says why it cannot.
pub type RowMapper<T> = Box<dyn FnMut(&dyn TextRow) -> Result<T, String> + Send>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The table does not exist (for a ledger: nothing applied yet).
    UndefinedTable(String),
    /// The database refused a write in a read-only session.
    ReadOnly(String),
    /// A row did not have the expected shape.
    Decode(String),
    Other(String),
}

impl QueryError {
    pub fn message(&self) -> &str {
        match self {
            QueryError::UndefinedTable(m)
            | QueryError::ReadOnly(m)
            | QueryError::Decode(m)
            | QueryError::Other(m) => m,
        }
    }
}

/// A connection that can only read.
pub struct ReadSession {
    inner: ReadInner,
    schema: Option<String>,
    /// The zone the ledger's tool wrote times without zone in (PostgreSQL).
    ledger_zone: Option<String>,
}

enum ReadInner {
    Postgres(tokio_postgres::Client),
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Mysql(tokio::sync::Mutex<mysql_async::Conn>),
}

impl ReadSession {
    /// Connects read-only. `timeout` bounds the connection (and, for SQLite,
    /// waiting on a locked file).
    pub async fn open(
        target: &Target,
        schema: Option<&str>,
        timeout: Duration,
    ) -> Result<ReadSession, String> {
        let inner = match target {
            Target::Postgres(pg) => {
                ReadInner::Postgres(postgres::connect(pg, true, timeout).await?)
            }
            Target::Sqlite(lite) => {
                let lite = lite.clone();
                let conn =
                    tokio::task::spawn_blocking(move || sqlite::open_read_only(&lite, timeout))
                        .await
                        .map_err(|e| e.to_string())??;
                ReadInner::Sqlite(Arc::new(Mutex::new(conn)))
            }
            Target::Mysql(my) => ReadInner::Mysql(tokio::sync::Mutex::new(
                mysql::connect_read_only(my, timeout).await?,
            )),
        };
        Ok(ReadSession {
            inner,
            schema: schema.map(str::to_owned),
            ledger_zone: None,
        })
    }

    /// Names the time zone in which the ledger's tool wrote its timestamps
    /// without zone (Liquibase's `dateexecuted`, Flyway's `installed_on`):
    /// they are then read as instants in that zone. Without it they are
    /// shown as recorded, with no zone claimed.
    pub fn with_ledger_zone(mut self, zone: Option<&str>) -> ReadSession {
        self.ledger_zone = zone.map(str::to_owned);
        self
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            ReadInner::Postgres(_) => Dialect::Postgres,
            ReadInner::Sqlite(_) => Dialect::Sqlite,
            ReadInner::Mysql(_) => Dialect::Mysql,
        }
    }

    /// Runs one statement in a read-only transaction and returns its rows as
    /// text.
    pub async fn query(&self, sql: &str) -> Result<TextRows, QueryError> {
        self.query_map(
            sql,
            Box::new(|row: &dyn TextRow| {
                Ok((0..row.width())
                    .map(|i| row.text(i).map(str::to_owned))
                    .collect())
            }),
        )
        .await
    }

    /// Runs one statement in a read-only transaction, turning each row into
    /// a value as it arrives (nothing is buffered twice).
    pub async fn query_map<T: Send + 'static>(
        &self,
        sql: &str,
        map: RowMapper<T>,
    ) -> Result<Vec<T>, QueryError> {
        match &self.inner {
            ReadInner::Postgres(client) => {
                postgres::query_read_only(
                    client,
                    self.schema.as_deref(),
                    self.ledger_zone.as_deref(),
                    sql,
                    map,
                )
                .await
            }
            ReadInner::Sqlite(conn) => {
                let conn = conn.clone();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().expect("sqlite connection poisoned");
                    sqlite::query(&conn, &sql, map)
                })
                .await
                .map_err(|e| QueryError::Other(e.to_string()))?
            }
            ReadInner::Mysql(conn) => mysql::query_read_only(conn, sql, map).await,
        }
    }
}

/// Proof that an environment may be written to. Only [`EnvConfig::write_access`]
/// makes one, and only for a `managed` environment.
#[derive(Debug)]
pub struct WriteAccess {
    env: String,
}

impl WriteAccess {
    pub fn env(&self) -> &str {
        &self.env
    }
}

/// Why an environment cannot be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotManaged {
    pub env: String,
    pub mode: Mode,
}

impl std::fmt::Display for NotManaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment '{}' is {}: envgate never writes to it",
            self.env, self.mode
        )
    }
}

impl EnvConfig {
    /// The write permission, for `managed` environments only.
    pub fn write_access(&self) -> Result<WriteAccess, NotManaged> {
        if self.mode.allows_writes() {
            Ok(WriteAccess {
                env: self.name.clone(),
            })
        } else {
            Err(NotManaged {
                env: self.name.clone(),
                mode: self.mode,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    #[test]
    fn write_access_only_for_managed_environments() {
        let c = parse(
            Path::new("envgate.toml"),
            r#"
[environments.dev]
url = "sqlite://dev.db"
[environments.staging]
url = "sqlite://staging.db"
[environments.prod]
url = "sqlite://prod.db"
mode = "reconcile_only"
[environments.sandbox-prod]
url = "sqlite://x.db"
mode = "managed"
"#,
        )
        .unwrap();
        assert_eq!(c.environments[0].write_access().unwrap().env(), "dev");
        assert_eq!(
            c.environments[1].write_access().unwrap_err().to_string(),
            "environment 'staging' is export_only: envgate never writes to it"
        );
        assert_eq!(
            c.environments[2].write_access().unwrap_err().to_string(),
            "environment 'prod' is reconcile_only: envgate never writes to it"
        );
        assert!(
            c.environments[3].write_access().is_ok(),
            "an explicit mode wins over the name"
        );
    }
}
