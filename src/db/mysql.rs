//! MySQL and MariaDB: the URL, TLS as the `mysql` client's `--ssl-mode`
//! means it, and read-only sessions. A read session is made read-only as
//! a whole (`transaction_read_only`, `tx_read_only` before MySQL 8 and
//! MariaDB 11.1), so the server refuses DDL too (which a `READ ONLY`
//! transaction alone lets through, committing implicitly); every read then
//! runs in `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`.

use super::{QueryError, RowMapper, TextRow};
use mysql_async::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `ssl-mode`, as MySQL's client names its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MySslMode {
    Disabled,
    /// TLS when the server offers it (the client's default).
    Preferred,
    /// TLS, the certificate not checked.
    Required,
    /// TLS, the certificate checked against the CA, not the host name.
    VerifyCa,
    /// TLS, certificate and host name checked.
    VerifyIdentity,
}

impl MySslMode {
    fn parse(v: &str) -> Option<MySslMode> {
        Some(match v.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => MySslMode::Disabled,
            "PREFERRED" => MySslMode::Preferred,
            "REQUIRED" => MySslMode::Required,
            "VERIFY_CA" => MySslMode::VerifyCa,
            "VERIFY_IDENTITY" => MySslMode::VerifyIdentity,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct MysqlTarget {
    /// `mariadb` or `mysql`, as the URL says (for messages).
    pub flavour: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    /// The database: where the ledger lives.
    pub database: String,
    pub ssl_mode: MySslMode,
    /// `ssl-ca`: a PEM file of the CA to trust.
    pub ca: Option<PathBuf>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `mysql://user:pass@host:port/db?ssl-mode=REQUIRED&ssl-ca=ca.pem`
/// (and `mariadb://…`). Errors never repeat the URL.
pub fn parse(url: &str, base: &Path) -> Result<MysqlTarget, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    let flavour = match parsed.scheme() {
        "mariadb" => "mariadb",
        _ => "mysql",
    };
    let database = decode(parsed.path().trim_start_matches('/'));
    if database.is_empty() || database.contains('/') {
        return Err(format!(
            "{flavour} URL without a database: write {flavour}://user@host:3306/database"
        ));
    }
    let mut ssl_mode = MySslMode::Preferred;
    let mut ca = None;
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "sslmode" | "ssl_mode" => {
                ssl_mode = MySslMode::parse(&value).ok_or_else(|| {
                    format!(
                        "ssl-mode={value}: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                    )
                })?;
            }
            "ssl-ca" | "sslca" | "ssl_ca" => {
                let p = Path::new(value.as_ref());
                ca = Some(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                });
            }
            other => {
                return Err(format!(
                    "URL parameter '{other}' is not supported for {flavour} (supported: ssl-mode, ssl-ca)"
                ));
            }
        }
    }
    if ca.is_some() && ssl_mode == MySslMode::Preferred {
        // As the mysql client does: a CA asks for verification.
        ssl_mode = MySslMode::VerifyCa;
    }
    Ok(MysqlTarget {
        flavour,
        host: parsed.host_str().unwrap_or("localhost").to_owned(),
        port: parsed.port().unwrap_or(3306),
        user: decode(parsed.username()),
        password: parsed.password().map(decode),
        database,
        ssl_mode,
        ca,
    })
}

fn opts(t: &MysqlTarget, tls: bool) -> mysql_async::Opts {
    let mut b = mysql_async::OptsBuilder::default()
        .ip_or_hostname(t.host.clone())
        .tcp_port(t.port)
        .user(Some(t.user.clone()))
        .pass(t.password.clone())
        .db_name((!t.database.is_empty()).then(|| t.database.clone()))
        .prefer_socket(false)
        // A read session runs envgate's own statements only: times in UTC,
        // and "identifiers" quoted as everywhere else.
        .init(vec![
            "SET time_zone = '+00:00'".to_owned(),
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'ANSI_QUOTES')"
                .to_owned(),
        ]);
    if tls {
        let mut ssl = mysql_async::SslOpts::default();
        if let Some(ca) = &t.ca {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        ssl = match t.ssl_mode {
            MySslMode::Preferred | MySslMode::Required => ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
            // Asked of the driver, but with rustls 0.23 it still checks the
            // name (stricter than the mysql client; documented).
            MySslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
            _ => ssl,
        };
        b = b.ssl_opts(Some(ssl));
    }
    b.into()
}

/// A driver error as people read it: the server's message when there is one.
pub fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        other => other.to_string(),
    }
}

/// Connects for reading: the session refuses every write, DDL included.
pub async fn connect_read_only(
    t: &MysqlTarget,
    timeout: Duration,
) -> Result<mysql_async::Conn, String> {
    let mut conn = connect(t, timeout).await?;
    if let Err(e) = conn
        .query_drop("SET SESSION transaction_read_only = 1")
        .await
    {
        // Unknown system variable: the older name.
        if !matches!(&e, mysql_async::Error::Server(s) if s.code == 1193) {
            return Err(describe(&e));
        }
        conn.query_drop("SET SESSION tx_read_only = 1")
            .await
            .map_err(|e| describe(&e))?;
    }
    Ok(conn)
}

/// Connects (TLS as `ssl-mode` says), within `timeout`.
pub async fn connect(t: &MysqlTarget, timeout: Duration) -> Result<mysql_async::Conn, String> {
    let attempt = |tls: bool| async move {
        match tokio::time::timeout(timeout, mysql_async::Conn::new(opts(t, tls))).await {
            Err(_) => Err((
                false,
                format!(
                    "timed out after {} connecting",
                    humantime::format_duration(timeout)
                ),
            )),
            Ok(Err(e)) => {
                let no_tls = matches!(
                    e,
                    mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
                );
                Err((no_tls, describe(&e)))
            }
            Ok(Ok(c)) => Ok(c),
        }
    };
    match t.ssl_mode {
        MySslMode::Disabled => attempt(false).await.map_err(|(_, m)| m),
        MySslMode::Preferred => match attempt(true).await {
            Ok(c) => Ok(c),
            // The server offers no TLS: preferred means plain then.
            Err((true, _)) => attempt(false).await.map_err(|(_, m)| m),
            Err((_, m)) => Err(m),
        },
        _ => attempt(true).await.map_err(|(no_tls, m)| {
            if no_tls {
                format!("the server offers no TLS, and ssl-mode asks for it ({m})")
            } else {
                m
            }
        }),
    }
}

/// A value as text, as the text protocol sends it.
pub(crate) fn text(v: &mysql_async::Value) -> Option<String> {
    use mysql_async::Value;
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Date(y, mo, d, h, mi, s, us) => Some(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        Value::Time(neg, d, h, mi, s, us) => Some(format!(
            "{}{}:{mi:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u32::from(*h) + d * 24
        )),
    }
}

/// MySQL's "no such table" (1146) and MariaDB's the same.
const NO_SUCH_TABLE: u16 = 1146;
/// "Cannot execute statement in a READ ONLY transaction."
const READ_ONLY: u16 = 1792;

fn query_error(e: &mysql_async::Error) -> QueryError {
    match e {
        mysql_async::Error::Server(s) if s.code == NO_SUCH_TABLE => {
            QueryError::UndefinedTable(describe(e))
        }
        mysql_async::Error::Server(s) if s.code == READ_ONLY => QueryError::ReadOnly(describe(e)),
        _ => QueryError::Other(describe(e)),
    }
}

/// Runs one statement in a read-only transaction with a consistent
/// snapshot; rows turned to text, then to values.
pub async fn query_read_only<T: Send + 'static>(
    conn: &tokio::sync::Mutex<mysql_async::Conn>,
    sql: &str,
    mut map: RowMapper<T>,
) -> Result<Vec<T>, QueryError> {
    let mut conn = conn.lock().await;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(|e| query_error(&e))?;
    let result: Result<Vec<mysql_async::Row>, _> = conn.query(sql).await;
    // Nothing was written; ending the transaction either way is the same.
    let _ = conn.query_drop("ROLLBACK").await;
    let rows = result.map_err(|e| query_error(&e))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let values: Vec<Option<String>> = row.unwrap().iter().map(text).collect();
        out.push(map(&values as &dyn TextRow).map_err(QueryError::Decode)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_the_mysql_client_reads_them() {
        let base = Path::new("/etc/envgate");
        let t = parse(
            "mysql://app:p%40ss@db.internal:3307/shop?ssl-mode=verify_identity&ssl-ca=ca.pem",
            base,
        )
        .unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.password.as_deref()
            ),
            ("db.internal", 3307, "app", Some("p@ss"))
        );
        assert_eq!(t.database, "shop");
        assert_eq!(t.ssl_mode, MySslMode::VerifyIdentity);
        assert_eq!(t.ca.as_deref(), Some(Path::new("/etc/envgate/ca.pem")));
        let t = parse("mariadb://root@127.0.0.1/app", base).unwrap();
        assert_eq!(
            (t.flavour, t.port, t.ssl_mode),
            ("mariadb", 3306, MySslMode::Preferred)
        );
        let t = parse("mysql://root@h/app?ssl-ca=/ca.pem", base).unwrap();
        assert_eq!(
            t.ssl_mode,
            MySslMode::VerifyCa,
            "a CA asks for verification"
        );
        assert!(
            parse("mysql://root@h/", base)
                .unwrap_err()
                .contains("without a database")
        );
        assert!(
            parse("mysql://root@h/app?charset=utf8", base)
                .unwrap_err()
                .contains("'charset' is not supported")
        );
        assert!(
            parse("mysql://root@h/app?ssl-mode=maybe", base)
                .unwrap_err()
                .contains("ssl-mode=maybe")
        );
    }
}
