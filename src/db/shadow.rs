//! Shadow databases: where envgate builds the schema an environment's
//! migrations produce, to compare it with the schema the environment has.
//!
//! A shadow is never an environment. `[schema_drift] shadow_url` names a
//! server and a database envgate may create and drop; envgate marks the
//! database it creates (a comment on PostgreSQL, a marker table on MySQL)
//! and refuses to drop one that lacks its mark, so a typo in the URL cannot
//! cost anyone a database. SQLite environments get a throwaway file.

use super::mysql::{self, MysqlTarget};
use super::url::{PgTarget, SqliteTarget, Target};
use super::{ReadSession, postgres};
use crate::core::sql::{quote_ident, quote_ident_mysql, quote_literal, quote_literal_mysql};
use mysql_async::prelude::Queryable;
use std::path::PathBuf;
use std::time::Duration;

/// The comment on a PostgreSQL shadow database, the row in a MySQL one's
/// marker table.
pub const MARK: &str = "envgate shadow database: created and dropped by envgate";
/// The marker table of a MySQL shadow database.
pub const MYSQL_MARKER_TABLE: &str = "envgate_shadow";

/// A shadow database, created empty, written to by envgate alone.
pub struct ShadowDb {
    target: Target,
    schema: Option<String>,
    conn: Conn,
    timeout: Duration,
}

enum Conn {
    Postgres(tokio_postgres::Client),
    Sqlite(rusqlite::Connection, PathBuf),
    Mysql(mysql_async::Conn),
}

impl ShadowDb {
    /// Drops the shadow database if envgate made it, creates it empty (with
    /// `schema` in it, on PostgreSQL) and connects.
    pub async fn create(
        target: &Target,
        schema: Option<&str>,
        timeout: Duration,
    ) -> Result<ShadowDb, String> {
        let conn = match target {
            Target::Postgres(pg) => Conn::Postgres(create_postgres(pg, schema, timeout).await?),
            Target::Sqlite(SqliteTarget::File(path)) => {
                let _ = std::fs::remove_file(path);
                let c = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
                Conn::Sqlite(c, path.clone())
            }
            Target::Sqlite(SqliteTarget::Memory) => {
                return Err("a shadow database must be a file or a server".to_owned());
            }
            Target::Mysql(my) => Conn::Mysql(create_mysql(my, timeout).await?),
        };
        Ok(ShadowDb {
            target: target.clone(),
            schema: schema.map(str::to_owned),
            conn,
            timeout,
        })
    }

    /// Runs one statement.
    pub async fn execute(&mut self, statement: &str) -> Result<(), String> {
        match &mut self.conn {
            Conn::Postgres(c) => c
                .batch_execute(statement)
                .await
                .map_err(|e| postgres::describe(&e)),
            Conn::Sqlite(c, _) => c.execute_batch(statement).map_err(|e| e.to_string()),
            Conn::Mysql(c) => c
                .query_drop(statement)
                .await
                .map_err(|e| mysql::describe(&e)),
        }
    }

    /// A read-only session on the shadow, as on an environment.
    pub async fn read(&self) -> Result<ReadSession, String> {
        ReadSession::open(&self.target, self.schema.as_deref(), self.timeout).await
    }

    /// Drops the shadow database (removes the file).
    pub async fn drop_database(self) -> Result<(), String> {
        match self.conn {
            Conn::Postgres(c) => {
                drop(c);
                let Target::Postgres(pg) = &self.target else {
                    unreachable!()
                };
                let admin = admin_postgres(pg, self.timeout).await?;
                let name = pg.config.get_dbname().unwrap_or_default();
                drop_postgres(&admin, name).await
            }
            Conn::Sqlite(c, path) => {
                drop(c);
                std::fs::remove_file(&path).map_err(|e| e.to_string())
            }
            Conn::Mysql(c) => {
                let Target::Mysql(my) = &self.target else {
                    unreachable!()
                };
                let _ = c.disconnect().await;
                let mut admin = admin_mysql(my, self.timeout).await?;
                admin
                    .query_drop(format!(
                        "DROP DATABASE IF EXISTS {}",
                        quote_ident_mysql(&my.database)
                    ))
                    .await
                    .map_err(|e| mysql::describe(&e))
            }
        }
    }
}

/// A connection to the shadow's server, on its maintenance database.
async fn admin_postgres(
    pg: &PgTarget,
    timeout: Duration,
) -> Result<tokio_postgres::Client, String> {
    let mut last = String::new();
    for db in ["postgres", "template1"] {
        let mut admin = pg.clone();
        admin.config.dbname(db);
        match postgres::connect(&admin, false, timeout).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn drop_postgres(admin: &tokio_postgres::Client, name: &str) -> Result<(), String> {
    let q = quote_ident(name);
    match admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
        .await
    {
        Ok(()) => Ok(()),
        // Before PostgreSQL 13 there is no FORCE.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR) => admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {q}"))
            .await
            .map_err(|e| postgres::describe(&e)),
        Err(e) => Err(postgres::describe(&e)),
    }
}

async fn create_postgres(
    pg: &PgTarget,
    schema: Option<&str>,
    timeout: Duration,
) -> Result<tokio_postgres::Client, String> {
    let name = pg
        .config
        .get_dbname()
        .filter(|n| !n.is_empty())
        .ok_or("the shadow URL names no database")?;
    let admin = admin_postgres(pg, timeout).await?;
    let rows = admin
        .simple_query(&format!(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = {}",
            quote_literal(name)
        ))
        .await
        .map_err(|e| postgres::describe(&e))?;
    let existing = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_owned()),
        _ => None,
    });
    if let Some(comment) = existing {
        if comment != MARK {
            return Err(not_ours(name));
        }
        drop_postgres(&admin, name).await?;
    }
    let q = quote_ident(name);
    // Two statements: CREATE DATABASE cannot share a transaction.
    for statement in [
        format!("CREATE DATABASE {q}"),
        format!("COMMENT ON DATABASE {q} IS {}", quote_literal(MARK)),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .map_err(|e| postgres::describe(&e))?;
    }
    let client = postgres::connect(pg, false, timeout).await?;
    if let Some(s) = schema.filter(|s| *s != "public") {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s)))
            .await
            .map_err(|e| postgres::describe(&e))?;
    }
    if let Some(s) = schema {
        client
            .batch_execute(&format!("SET search_path TO {}", quote_ident(s)))
            .await
            .map_err(|e| postgres::describe(&e))?;
    }
    Ok(client)
}

fn not_ours(name: &str) -> String {
    format!(
        "database `{name}` exists and envgate did not create it as a shadow: envgate drops and recreates its \
         shadow database, so it leaves this one alone; name another database in `schema_drift.shadow_url`"
    )
}

async fn admin_mysql(my: &MysqlTarget, timeout: Duration) -> Result<mysql_async::Conn, String> {
    let mut admin = my.clone();
    admin.database = String::new();
    mysql::connect(&admin, timeout).await
}

async fn create_mysql(my: &MysqlTarget, timeout: Duration) -> Result<mysql_async::Conn, String> {
    if my.database.is_empty() {
        return Err("the shadow URL names no database".to_owned());
    }
    let mut admin = admin_mysql(my, timeout).await?;
    let err = |e: mysql_async::Error| mysql::describe(&e);
    let db = quote_literal_mysql(&my.database);
    let exists: Option<i64> = admin
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {db}"
        ))
        .await
        .map_err(err)?;
    if exists.unwrap_or(0) > 0 {
        let marked: Option<i64> = admin
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = '{MYSQL_MARKER_TABLE}'"
            ))
            .await
            .map_err(err)?;
        if marked.unwrap_or(0) == 0 {
            return Err(not_ours(&my.database));
        }
    }
    let q = quote_ident_mysql(&my.database);
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS {q}"))
        .await
        .map_err(err)?;
    admin
        .query_drop(format!("CREATE DATABASE {q}"))
        .await
        .map_err(err)?;
    admin
        .query_drop(format!(
            "CREATE TABLE {q}.{MYSQL_MARKER_TABLE} (note varchar(100)) COMMENT {}",
            quote_literal_mysql(MARK)
        ))
        .await
        .map_err(err)?;
    let _ = admin.disconnect().await;
    let mut conn = mysql::connect(my, timeout).await?;
    // Migrations run with the server's own SQL mode, not envgate's.
    conn.query_drop("SET SESSION sql_mode = @@GLOBAL.sql_mode")
        .await
        .map_err(err)?;
    Ok(conn)
}
