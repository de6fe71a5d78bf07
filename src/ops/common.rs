//! What the commands share: finding environments, resolving their targets,
//! reading migrations and ledgers, naming the actor.

use super::Failure;
use crate::config::{Config, EnvConfig, UrlSource};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, Migration};
use crate::core::sql::Dialect;
use crate::core::tools::Layout;
use crate::ledger;
use crate::target::{ReadSession, SqliteTarget, Target};
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
    if env.schema.is_some() && matches!(target, Target::Sqlite(_)) {
        return Err(Failure::usage(
            config
                .env_error(
                    env,
                    format!(
                        "environment '{}': `schema` applies to PostgreSQL only",
                        env.name
                    ),
                )
                .to_string(),
        ));
    }
    Ok(target)
}

/// Reads the migrations directory and discovers the migrations in it, in
/// the project's layout. `dialect`: the target's, where it matters
/// (Liquibase skips changes for other databases).
pub fn discover(config: &Config, dialect: Option<Dialect>) -> Result<Discovery, String> {
    let tool = config.format;
    // Liquibase: `migrations` may name the root changelog; read its folder.
    let (dir, label) = if config.migrations_dir.is_file() {
        let label = config
            .migrations
            .rsplit_once('/')
            .map_or(".", |(d, _)| d)
            .to_owned();
        (
            config
                .migrations_dir
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            label,
        )
    } else {
        (config.migrations_dir.clone(), config.migrations.clone())
    };
    let loaded = super::load::migrations_dir(&dir, &label, tool, &read_limits(config, &dir))?;
    let layout = Layout {
        root: &config.migrations,
        dialect,
    };
    let mut d = tool
        .discover(loaded.files, &layout)
        .map_err(|e| e.to_string())?;
    d.ignored.extend(loaded.ignored);
    d.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(d)
}

/// How far reading the migrations directory may go: the configured size
/// limit, and links only within the project's directory and the
/// migrations directory (unless `allow_links_outside`).
fn read_limits(config: &Config, dir: &Path) -> super::load::Limits {
    let roots = if config.allow_links_outside {
        Vec::new()
    } else {
        [super::source::config_dir(config), dir.to_path_buf()]
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect()
    };
    super::load::Limits {
        max_file: config.max_migration_size,
        roots,
    }
}

/// Reads one environment's ledger through a read-only session: envgate's
/// own, or the raw rows of another tool's (turned into ledger rows by
/// [`ledger_rows`] once the migrations are known).
pub async fn read_ledger(env: &EnvConfig, target: &Target) -> Result<RawLedger, String> {
    let started = std::time::Instant::now();
    let session = ReadSession::open(target, env.schema.as_deref(), env.connect_timeout)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "connected");
    match env.ledger {
        crate::core::tools::Tool::Envgate => ledger::envgate::read(&session)
            .await
            .map(RawLedger::Envgate),
        tool => ledger::foreign::read(&session, tool, env.table.as_deref())
            .await
            .map(|rows| RawLedger::Tool(tool, rows)),
    }
}

/// A ledger as read: envgate's rows, or another tool's text rows.
pub enum RawLedger {
    Envgate(Vec<LedgerRow>),
    Tool(crate::core::tools::Tool, Vec<crate::core::tools::TextRow>),
}

/// Turns a ledger as read into ledger rows, one per migration.
pub fn ledger_rows(
    env: &EnvConfig,
    raw: RawLedger,
    migrations: &[Migration],
) -> Result<Vec<LedgerRow>, String> {
    match raw {
        RawLedger::Envgate(rows) => Ok(rows),
        RawLedger::Tool(tool, rows) => tool.ledger(rows, migrations).map_err(|e| {
            let table = env.table.as_deref().unwrap_or(tool.default_table());
            format!("{tool} ledger table {table}: {e}")
        }),
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
    }
}

/// What identifies an environment's target in the control store: host,
/// database and schema, never credentials.
pub fn target_identity(env: &EnvConfig, target: &Target) -> String {
    match &env.schema {
        Some(schema) => format!("{} schema {schema}", target_label(target)),
        None => target_label(target),
    }
}

/// Who is acting: `--actor`, else the CI's user, else the OS user.
pub fn actor(flag: Option<&str>) -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    flag.map(str::to_owned)
        .or_else(|| var("GITHUB_ACTOR"))
        .or_else(|| var("GITLAB_USER_LOGIN"))
        .or_else(|| var("USER"))
        .or_else(|| var("LOGNAME"))
        .or_else(|| whoami::username().ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What planning one environment needs, read without writing anything.
pub struct PlanInputs {
    pub discovery: Discovery,
    pub ledger: Vec<LedgerRow>,
    pub target: Target,
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

/// Discovers the migrations and reads the environment's ledger read-only,
/// at the same time.
pub async fn plan_inputs(config: &Config, env: &EnvConfig) -> Result<PlanInputs, Failure> {
    let target = target(config, env)?;
    let for_discovery = config.clone();
    let d = dialect(&target);
    let discovery = tokio::task::spawn_blocking(move || discover(&for_discovery, Some(d)));
    let (discovery, ledger) = tokio::join!(discovery, read_ledger(env, &target));
    let discovery = discovery
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(Failure::usage)?;
    let ledger = ledger
        .and_then(|raw| ledger_rows(env, raw, &discovery.migrations))
        .map_err(|e| {
            Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}' could not be read: {}: {e}",
                env.name,
                target_label(&target)
            )))
        })?;
    Ok(PlanInputs {
        discovery,
        ledger,
        target,
    })
}

/// The SQL dialect of a target.
pub fn dialect(target: &Target) -> crate::core::sql::Dialect {
    match target {
        Target::Postgres(_) => crate::core::sql::Dialect::Postgres,
        Target::Sqlite(_) => crate::core::sql::Dialect::Sqlite,
    }
}

/// Writes text to stdout, masking secrets.
pub fn print(text: &str) -> Result<(), Failure> {
    crate::secrets::out(text).map_err(|e| Failure::internal(format!("writing the output: {e}")))
}
