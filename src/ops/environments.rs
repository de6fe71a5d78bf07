//! The configured environments as the commands meet them: picking them by
//! name, resolving each one's URL into a database target (registering its
//! secrets first), naming targets without credentials, and who is acting.

use super::Failure;
use crate::config::{Config, EnvConfig, UrlSource};
use crate::db::{SqliteTarget, Target};
use std::path::Path;

/// Picks the environments named with `--env` (all when none), in promotion
/// order.
pub fn select<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a EnvConfig>, Failure> {
    for name in names {
        env(config, name)?;
    }
    Ok(config
        .environments
        .iter()
        .filter(|e| names.is_empty() || names.contains(&e.name))
        .collect())
}

/// One environment by name.
pub fn env<'a>(config: &'a Config, name: &str) -> Result<&'a EnvConfig, Failure> {
    config.env(name).ok_or_else(|| {
        let known: Vec<&str> = config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        Failure::usage(format!(
            "unknown environment '{name}' (configured: {})",
            known.join(", ")
        ))
    })
}

/// Resolves an environment's URL and target; registers its secrets (see
/// [`crate::secrets`]) before anything else can see them. Any problem is a
/// configuration error, located in the file.
pub fn target(config: &Config, env: &EnvConfig) -> Result<Target, Failure> {
    let base = config.file.parent().unwrap_or(Path::new(""));
    let lookup = |var: &str| std::env::var(var).ok();
    let read_file = |p: &Path| std::fs::read_to_string(p);
    let url = env
        .resolve_url(config, &lookup, &read_file)
        .map_err(|e| Failure::usage(e.to_string()))?;
    if matches!(env.url, UrlSource::File(_)) {
        // The whole file is a secret.
        crate::secrets::register_source(&url);
    } else {
        crate::secrets::register_url(&url);
    }
    let target = Target::parse(&url, base).map_err(|m| {
        // A URL is shown with its password masked (and every reading of
        // it registered above); anything else is not echoed at all (the
        // file's line says where it comes from), and all of it counts as
        // secret.
        let shown = if url.contains("://") {
            format!(" ({})", crate::core::redact::mask_url(&url))
        } else {
            crate::secrets::register(&url);
            String::new()
        };
        Failure::usage(
            config
                .env_error(env, format!("environment '{}'{shown}: {m}", env.name))
                .to_string(),
        )
    })?;
    if let Some(named) = url_schema(&target) {
        let clash = match &env.schema {
            Some(s) => {
                (s != named).then(|| format!("`schema = \"{s}\"` and the URL's `{named}` differ"))
            }
            None if env.ledger == crate::core::tools::Tool::Envgate => Some(format!(
                "envgate's own ledger takes its schema from `schema`: write `schema = \"{named}\"` in envgate.toml"
            )),
            None => None,
        };
        if let Some(clash) = clash {
            return Err(Failure::usage(
                config
                    .env_error(
                        env,
                        format!(
                            "environment '{}': the URL names schema `{named}` (search_path or schema parameter): {clash}",
                            env.name
                        ),
                    )
                    .to_string(),
            ));
        }
    }
    if env.schema.is_some() && matches!(target, Target::Sqlite(_)) {
        return Err(Failure::usage(
            config
                .env_error(
                    env,
                    format!(
                        "environment '{}': `schema` applies to PostgreSQL, MySQL and MariaDB only",
                        env.name
                    ),
                )
                .to_string(),
        ));
    }
    Ok(target)
}

/// Refuses commands that move an environment forward for one whose ledger
/// belongs to another tool: that tool applies its migrations.
pub fn needs_envgate_ledger(env: &EnvConfig, command: &str) -> Result<(), Failure> {
    if env.ledger == crate::core::tools::Tool::Envgate {
        return Ok(());
    }
    Err(Failure {
        code: super::exit::REFUSED,
        message: format!(
            "environment '{}' reads {}'s ledger (reconcile_only): {} applies its migrations, so `envgate {command}` has \
             nothing to do there; `envgate status` shows where it stands",
            env.name, env.ledger, env.ledger
        ),
    })
}

/// The SQL dialect of a target.
pub fn dialect(target: &Target) -> crate::core::sql::Dialect {
    match target {
        Target::Postgres(_) => crate::core::sql::Dialect::Postgres,
        Target::Sqlite(_) => crate::core::sql::Dialect::Sqlite,
        Target::Mysql(_) => crate::core::sql::Dialect::Mysql,
    }
}

/// How an unreachable environment's target is named in its error.
pub fn target_label(target: &Target) -> String {
    match target {
        Target::Postgres(pg) => {
            let hosts: Vec<String> = pg
                .config
                .get_hosts()
                .iter()
                .zip(pg.config.get_ports().iter().chain(std::iter::repeat(&5432)))
                .map(|(h, p)| match h {
                    tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "postgres {}/{}",
                hosts.join(","),
                pg.config.get_dbname().unwrap_or_default()
            )
        }
        Target::Sqlite(SqliteTarget::File(p)) => format!("sqlite {}", p.display()),
        Target::Sqlite(SqliteTarget::Memory) => "sqlite :memory:".to_owned(),
        Target::Mysql(my) => format!("{} {}:{}/{}", my.flavour, my.host, my.port, my.database),
    }
}

/// The schema an environment's URL names (another tool's `search_path` or
/// `schema` parameter).
fn url_schema(target: &Target) -> Option<&str> {
    match target {
        Target::Postgres(pg) => pg.schema.as_deref(),
        Target::Sqlite(_) | Target::Mysql(_) => None,
    }
}

/// The schema holding an environment's ledger: `schema` in envgate.toml,
/// else the one its URL names, else the connection's default.
pub fn ledger_schema<'a>(env: &'a EnvConfig, target: &'a Target) -> Option<&'a str> {
    env.schema.as_deref().or(url_schema(target))
}

/// What identifies an environment's target in the control store: host,
/// database and schema, never credentials.
pub fn target_identity(env: &EnvConfig, target: &Target) -> String {
    match ledger_schema(env, target) {
        Some(schema) => format!("{} schema {schema}", target_label(target)),
        None => target_label(target),
    }
}

/// Who is acting: `--actor` (unverified), else the user who triggered the
/// CI run (verified by the runner), else the OS user (unverified).
pub fn actor(flag: Option<&str>) -> crate::core::identity::Actor {
    let var = |k: &str| std::env::var(k).ok();
    let os = var("USER")
        .or_else(|| var("LOGNAME"))
        .filter(|v| !v.trim().is_empty())
        .or_else(|| whoami::username().ok());
    crate::core::identity::from_environment(flag, &var, os)
}
