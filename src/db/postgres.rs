//! PostgreSQL connections.
//!
//! Every query goes through the simple query protocol: no named prepared
//! statement outlives its transaction, so envgate works through PgBouncer in
//! transaction-pooling mode (how Supabase's and Neon's poolers are usually
//! reached) as well as directly.

use super::tls;
use super::url::PgTarget;
use super::{QueryError, RowMapper};
use crate::core::sql::{quote_ident, quote_literal};
use futures::StreamExt;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

const READ_ONLY_OPTION: &str = "-c default_transaction_read_only=on";

/// Opens a connection. With `read_only`, the server is asked at start-up to
/// make every transaction read-only; a pooler that refuses start-up options
/// gets a second attempt without them (reads still run in `BEGIN … READ
/// ONLY` transactions, which hold through any pooler).
pub async fn connect(
    target: &PgTarget,
    read_only: bool,
    timeout: Duration,
) -> Result<Client, String> {
    let tls_config = tls::client_config(target.ssl_mode, target.root_cert.as_ref())?;
    let tls = MakeRustlsConnect::new(tls_config);
    let mut config = target.config.clone();
    config.ssl_mode(target.ssl_mode.negotiation());
    config.connect_timeout(timeout);
    if read_only {
        let mut with_ro = config.clone();
        let options = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {READ_ONLY_OPTION}"),
            _ => READ_ONLY_OPTION.to_owned(),
        };
        with_ro.options(&options);
        match attempt(&with_ro, tls.clone(), timeout).await {
            Err(e) if e.contains("unsupported startup parameter") => {
                tracing::debug!(
                    "server refused start-up options; relying on READ ONLY transactions"
                );
            }
            other => return other,
        }
    }
    attempt(&config, tls, timeout).await
}

/// Opens a connection with one more start-up option (`-c name=value`), no
/// fallback: the caller decides what a refusal means.
pub async fn connect_with_option(
    target: &PgTarget,
    option: &str,
    timeout: Duration,
) -> Result<Client, String> {
    let tls = MakeRustlsConnect::new(tls::client_config(
        target.ssl_mode,
        target.root_cert.as_ref(),
    )?);
    let mut config = target.config.clone();
    config.ssl_mode(target.ssl_mode.negotiation());
    config.connect_timeout(timeout);
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {option}"),
        _ => option.to_owned(),
    };
    config.options(&options);
    attempt(&config, tls, timeout).await
}

async fn attempt(
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
    timeout: Duration,
) -> Result<Client, String> {
    let (client, connection) = match tokio::time::timeout(timeout, config.connect(tls)).await {
        Err(_) => {
            return Err(format!(
                "timed out after {} connecting",
                humantime::format_duration(timeout)
            ));
        }
        Ok(Err(e)) => return Err(describe(&e)),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(drive(connection));
    Ok(client)
}

/// Drives a connection. The server's notices (`CREATE … IF NOT EXISTS`
/// on every connection of the control store, for one) are logged at debug
/// level, not as the driver would, at info.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::StreamExt;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notice(n)) => {
                tracing::debug!(severity = n.severity(), "server notice: {}", n.message());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %describe(&e), "connection closed");
                break;
            }
        }
    }
}

/// A readable account of a driver error: the server's message when there is
/// one, else the error and its causes.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// The transaction setting that holds the environment's `ledger_time_zone`
/// while a ledger is read.
pub const LEDGER_ZONE: &str = "envgate.ledger_zone";

/// Runs `sql` in one read-only transaction and returns its rows as text.
///
/// The batch is `BEGIN TRANSACTION READ ONLY; SELECT set_config(…); <sql>;
/// COMMIT`, sent as one simple query (one round trip, nothing prepared). The
/// `SELECT` before `sql` takes the transaction's snapshot, after which
/// PostgreSQL refuses `SET TRANSACTION READ WRITE`: the transaction stays
/// read-only whatever `sql` says.
pub async fn query_read_only<T>(
    client: &Client,
    schema: Option<&str>,
    ledger_zone: Option<&str>,
    sql: &str,
    mut map: RowMapper<T>,
) -> Result<Vec<T>, QueryError> {
    let mut settings = vec!["1".to_owned()];
    if let Some(s) = schema {
        settings.push(format!(
            "set_config('search_path', {}, true)",
            quote_literal(&quote_ident(s))
        ));
    }
    if let Some(zone) = ledger_zone {
        // Timestamps without zone are read as times in the zone their tool
        // wrote them in; `envgate.ledger_zone` tells the ledger queries
        // that they may then be given as UTC instants.
        settings.push(format!(
            "set_config('TimeZone', {0}, true), set_config('{LEDGER_ZONE}', {0}, true)",
            quote_literal(zone)
        ));
    }
    let pin = format!("SELECT {}", settings.join(", "));
    let batch = format!("BEGIN TRANSACTION READ ONLY;{pin};{sql};COMMIT");
    let fail = |e: tokio_postgres::Error| {
        let message = describe(&e);
        match e.code() {
            Some(&SqlState::UNDEFINED_TABLE) => QueryError::UndefinedTable(message),
            Some(&SqlState::READ_ONLY_SQL_TRANSACTION) => QueryError::ReadOnly(message),
            _ => QueryError::Other(message),
        }
    };
    let result = async {
        let stream = client.simple_query_raw(&batch).await.map_err(fail)?;
        futures::pin_mut!(stream);
        // BEGIN and the pinning SELECT complete first; the rows after them
        // are `sql`'s.
        let mut completed = 0;
        let mut rows = Vec::new();
        while let Some(message) = stream.next().await {
            match message.map_err(fail)? {
                SimpleQueryMessage::CommandComplete(_) => completed += 1,
                SimpleQueryMessage::Row(row) if completed >= 2 => {
                    rows.push(map(&row).map_err(QueryError::Decode)?)
                }
                _ => {}
            }
        }
        Ok(rows)
    }
    .await;
    if result.is_err() {
        // An error leaves the explicit transaction open (or failed).
        let _ = client.simple_query("ROLLBACK").await;
    }
    result
}
