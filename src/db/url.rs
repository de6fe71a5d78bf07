//! Turning an environment's URL into a connection target.

use super::tls::SslMode;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Clone, Debug)]
pub enum Target {
    Postgres(Box<PgTarget>),
    Sqlite(SqliteTarget),
    /// MySQL or MariaDB.
    Mysql(Box<super::mysql::MysqlTarget>),
}

#[derive(Clone, Debug)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: a PEM file, or `system` for the platform's roots.
    pub root_cert: Option<RootCert>,
    /// The schema the URL itself names for the ledger: the first of a
    /// `search_path` (dbmate's documented way) or Prisma's `schema`.
    pub schema: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    System,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteTarget {
    File(PathBuf),
    Memory,
}

impl Target {
    /// Parses a resolved URL. Relative paths (SQLite files, `sslrootcert`)
    /// are taken relative to `base` (the configuration file's directory).
    /// Errors never repeat the URL: the caller names the environment.
    pub fn parse(url: &str, base: &Path) -> Result<Target, String> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            return parse_sqlite(rest, base).map(Target::Sqlite);
        }
        let scheme = url.split("://").next().unwrap_or("");
        if scheme == "postgres" || scheme == "postgresql" {
            return parse_postgres(url, base).map(|p| Target::Postgres(Box::new(p)));
        }
        if scheme == "mysql" || scheme == "mariadb" {
            return super::mysql::parse(url, base).map(|m| Target::Mysql(Box::new(m)));
        }
        Err("unsupported URL: expected postgres://…, postgresql://…, mysql://…, mariadb://…, sqlite://path or sqlite::memory:".to_owned())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Postgres(_) => "postgres",
            Target::Sqlite(_) => "sqlite",
            Target::Mysql(m) => m.flavour,
        }
    }
}

fn parse_sqlite(rest: &str, base: &Path) -> Result<SqliteTarget, String> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') {
        return Err("sqlite URLs take no query parameters".to_owned());
    }
    match path {
        ":memory:" => Ok(SqliteTarget::Memory),
        "" => Err("sqlite URL without a path: write sqlite://path/to/file.db".to_owned()),
        p if Path::new(p).is_absolute() => Ok(SqliteTarget::File(PathBuf::from(p))),
        p => Ok(SqliteTarget::File(base.join(p))),
    }
}

/// Parameters envgate handles itself rather than tokio-postgres.
const OWN_PARAMS: [&str; 2] = ["sslmode", "sslrootcert"];
/// libpq parameters envgate does not support, with the reason.
const UNSUPPORTED: [(&str, &str); 4] = [
    ("sslcert", "client certificates are not supported"),
    ("sslkey", "client certificates are not supported"),
    ("sslpassword", "client certificates are not supported"),
    ("sslcrl", "certificate revocation lists are not supported"),
];

/// Connection parameters passed on to the driver as they are.
const DRIVER_PARAMS: [&str; 17] = [
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];
/// Parameters other tools' URLs carry that only tune their own connection
/// pool (Prisma's): nothing to do for envgate's one connection.
const POOL_PARAMS: [&str; 4] = [
    "connection_limit",
    "pool_timeout",
    "pgbouncer",
    "statement_cache_size",
];

fn parse_postgres(url: &str, base: &Path) -> Result<PgTarget, String> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, q),
        None => (url, ""),
    };
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut schema = None;
    let mut passthrough = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| *k == key) {
            return Err(format!("URL parameter `{key}`: {why}"));
        }
        match key.as_ref() {
            "sslmode" => {
                ssl_mode = value
                    .parse()
                    .map_err(|e| format!("URL parameter `sslmode`: {e}"))?;
            }
            "sslrootcert" if value == "system" => root_cert = Some(RootCert::System),
            "sslrootcert" => root_cert = Some(RootCert::File(base.join(value.as_ref()))),
            // dbmate puts its ledger in a schema this way; Prisma with
            // `schema`. The first schema named is where the ledger is.
            "search_path" | "schema" => {
                let first = value
                    .split(',')
                    .map(|s| s.trim().trim_matches('"'))
                    .find(|s| !s.is_empty() && *s != "$user");
                match first {
                    Some(first) => schema = Some(first.to_owned()),
                    None => {
                        return Err(format!("URL parameter `{key}`: names no schema"));
                    }
                }
            }
            k if POOL_PARAMS.contains(&k) => {}
            "x-migrations-table" => {
                return Err(format!(
                    "URL parameter `{key}` is golang-migrate's: name the ledger table with `table = \"{value}\"` in envgate.toml instead"
                ));
            }
            k if DRIVER_PARAMS.contains(&k) => {
                passthrough.push((key.into_owned(), value.into_owned()))
            }
            _ => {
                return Err(format!(
                    "URL parameter `{key}` is not one envgate knows (PostgreSQL connection parameters, \
                     sslmode, sslrootcert, search_path or schema)"
                ));
            }
        }
    }
    debug_assert!(
        OWN_PARAMS
            .iter()
            .all(|p| !passthrough.iter().any(|(k, _)| k == p))
    );
    let mut rebuilt = head.to_owned();
    if !passthrough.is_empty() {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(passthrough.iter())
            .finish();
        rebuilt.push('?');
        rebuilt.push_str(&q);
    }
    let mut config = tokio_postgres::Config::from_str(&rebuilt)
        .map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    if config.get_application_name().is_none() {
        config.application_name("envgate");
    }
    if config.get_user().is_none() {
        return Err("the URL names no user: write postgres://USER@host/db".to_owned());
    }
    Ok(PgTarget {
        config,
        ssl_mode,
        root_cert,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(url: &str) -> PgTarget {
        match Target::parse(url, Path::new("/proj")).unwrap() {
            Target::Postgres(p) => *p,
            _ => panic!("not postgres"),
        }
    }

    #[test]
    fn postgres_urls() {
        let t = pg(
            "postgres://app:pw@db.example.com:6543/app?sslmode=verify-full&sslrootcert=certs/ca.pem&connect_timeout=3",
        );
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            t.root_cert,
            Some(RootCert::File(PathBuf::from("/proj/certs/ca.pem")))
        );
        assert_eq!(t.config.get_user(), Some("app"));
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.config.get_dbname(), Some("app"));
        assert_eq!(t.config.get_ports(), [6543]);
        assert_eq!(t.config.get_application_name(), Some("envgate"));
        let t = pg("postgresql://app@localhost/app");
        assert_eq!(t.ssl_mode, SslMode::Prefer);
        assert_eq!(t.root_cert, None);
        let t = pg("postgres://app@h/d?sslmode=require&sslrootcert=system&application_name=ci");
        assert_eq!(
            (t.ssl_mode, t.root_cert),
            (SslMode::Require, Some(RootCert::System))
        );
        assert_eq!(t.config.get_application_name(), Some("ci"));
        assert_eq!(t.schema, None);
    }

    #[test]
    fn other_tools_urls_name_the_ledger_schema() {
        // dbmate's documented form, and a list with a quoted name.
        assert_eq!(
            pg("postgres://app@h/d?sslmode=disable&search_path=ledger").schema,
            Some("ledger".to_owned())
        );
        assert_eq!(
            pg("postgres://app@h/d?search_path=%22$user%22,%22App%22,public").schema,
            Some("App".to_owned())
        );
        // Prisma's, with its pool settings ignored.
        let t = pg("postgresql://app@h/d?schema=tenant&connection_limit=5&pgbouncer=true");
        assert_eq!(t.schema, Some("tenant".to_owned()));
        assert_eq!(t.config.get_options(), None);
    }

    #[test]
    fn bad_postgres_urls() {
        let e = |url: &str| Target::parse(url, Path::new("/")).unwrap_err();
        assert_eq!(
            e("postgres://app@h/d?sslmode=maybe"),
            "URL parameter `sslmode`: unknown sslmode 'maybe' (expected disable, allow, prefer, require, verify-ca or verify-full)"
        );
        assert_eq!(
            e("postgres://app@h/d?sslcert=c.pem"),
            "URL parameter `sslcert`: client certificates are not supported"
        );
        assert_eq!(
            e("postgres://app@h/d?frobnicate=1"),
            "URL parameter `frobnicate` is not one envgate knows (PostgreSQL connection parameters, sslmode, sslrootcert, search_path or schema)"
        );
        assert_eq!(
            e("postgres://app@h/d?x-migrations-table=mig"),
            "URL parameter `x-migrations-table` is golang-migrate's: name the ledger table with `table = \"mig\"` in envgate.toml instead"
        );
        assert_eq!(
            e("postgres://app@h/d?search_path=$user"),
            "URL parameter `search_path`: names no schema"
        );
        assert_eq!(
            e("postgres://h/d"),
            "the URL names no user: write postgres://USER@host/db"
        );
        assert!(e("oracle://root@h/d").starts_with("unsupported URL"));
    }

    #[test]
    fn sqlite_urls() {
        let base = Path::new("/proj");
        let s = |url: &str| match Target::parse(url, base).unwrap() {
            Target::Sqlite(s) => s,
            _ => panic!("not sqlite"),
        };
        assert_eq!(
            s("sqlite://dev.db"),
            SqliteTarget::File(PathBuf::from("/proj/dev.db"))
        );
        assert_eq!(
            s("sqlite://data/dev.db"),
            SqliteTarget::File(PathBuf::from("/proj/data/dev.db"))
        );
        assert_eq!(
            s("sqlite:///var/lib/dev.db"),
            SqliteTarget::File(PathBuf::from("/var/lib/dev.db"))
        );
        assert_eq!(
            s("sqlite:dev.db"),
            SqliteTarget::File(PathBuf::from("/proj/dev.db"))
        );
        assert_eq!(s("sqlite::memory:"), SqliteTarget::Memory);
        assert_eq!(s("sqlite://:memory:"), SqliteTarget::Memory);
        assert!(Target::parse("sqlite://", base).is_err());
        assert!(Target::parse("sqlite://x.db?mode=rw", base).is_err());
    }
}
