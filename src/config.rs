//! The project configuration, `envgate.toml`.
//!
//! ```toml
//! migrations = "migrations"          # directory, relative to this file
//! connect_timeout = "10s"            # default for every environment
//!
//! [environments.dev]                 # promotion order = order in the file
//! url = "sqlite://dev.db"
//!
//! [environments.prod]                # no mode: the name says production,
//! url = "${PROD_DATABASE_URL}"       # so the mode is export_only
//! schema = "app"
//! ```
//!
//! Parsing is pure ([`parse`]); reading the file ([`load`]) and resolving
//! `${VAR}` and `url_file` ([`EnvConfig::resolve_url`]) are the only places
//! that touch the process environment or the file system.

use crate::core::mode::{Mode, ModeSource, default_mode};
use indexmap::IndexMap;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT_FILE: &str = "envgate.toml";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A configuration problem, located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem is not tied to a place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which ledger format an environment's database holds (and which source
/// layout a project uses): envgate's own or another tool's.
pub use crate::core::tools::Tool as LedgerKind;

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The source layout: `envgate` (default) or another tool's.
    format: Option<Spanned<LedgerKind>>,
    /// The migrations directory (for Liquibase, may name the root
    /// changelog), relative to the configuration file. Default: the
    /// layout's usual place (`migrations` for envgate's). A list for the
    /// formats whose tools read several folders (Flyway's locations,
    /// Rails' `db/migrate` and `db/post_migrate`, dbmate's and Knex's
    /// directories).
    migrations: Option<Spanned<OneOrMany>>,
    /// Where envgate keeps its own state (first observations of migrations
    /// in ledgers without checksums): `sqlite://path`. Default:
    /// `.envgate/state.db` beside this file.
    control_store: Option<Spanned<String>>,
    /// How long to wait for a database connection. Default: `10s`.
    connect_timeout: Option<Spanned<String>>,
    /// How long `apply` waits for another run's lock. Default: `60s`.
    lock_timeout: Option<Spanned<String>>,
    /// Tags that are releases (a glob). Default: `v*`.
    release_tags: Option<String>,
    /// The largest migration file envgate reads. Default: `64MiB`.
    max_migration_size: Option<Spanned<String>>,
    /// Follow symbolic links in the migrations directory that lead outside
    /// the project's directory (and the migrations directory). Default:
    /// `false`: such links are refused.
    allow_links_outside: Option<bool>,
    /// Releases whose migrations are listed rather than taken from git:
    /// `[releases."v2.4.0"] migrations = ["20260418_001", …]`.
    releases: Option<IndexMap<String, RawRelease>>,
    /// The environments, in promotion order.
    environments: Option<IndexMap<Spanned<String>, Spanned<RawEnv>>>,
    /// Drift in the live schema: the shadow database and ignore rules.
    schema_drift: Option<Spanned<RawSchemaDrift>>,
    /// The lint of migrations: severities by rule.
    lint: Option<RawLint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLint {
    /// The oldest PostgreSQL the migrations must run on (squawk's rules
    /// depend on it). Default: `15`.
    pg_version: Option<Spanned<String>>,
    /// Rule → `error`, `warning` or `off`.
    rules: Option<IndexMap<Spanned<String>, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchemaDrift {
    /// Databases envgate may create, fill and drop to compute the schema an
    /// environment's migrations produce: one URL per kind of server
    /// (`postgres://…/envgate_shadow`, `mysql://…/envgate_shadow`), with
    /// `${VAR}` references. SQLite environments need none.
    shadow_url: Option<Spanned<OneOrMany>>,
    /// The PostgreSQL schemas read. Default: each environment's `schema`.
    schemas: Option<Vec<String>>,
    /// Objects managed elsewhere: `kind:glob` or `glob` on their names.
    ignore: Option<Vec<Spanned<String>>>,
    /// Compare the live schemas in every review: the bot's check run and
    /// pull request comment, `envgate ci`. Default: `false`.
    review: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    migrations: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    /// Connection URL; `${VAR}` is replaced from the process environment.
    url: Option<Spanned<String>>,
    /// A file holding the connection URL (a mounted secret), relative to the
    /// configuration file.
    url_file: Option<Spanned<String>>,
    /// `managed`, `export_only` or `reconcile_only`. Default: from the name.
    mode: Option<Spanned<Mode>>,
    /// Schema holding the ledger table (PostgreSQL). Default: `public`.
    schema: Option<Spanned<String>>,
    /// The ledger format to read. Default: the project's `format`.
    ledger: Option<Spanned<LedgerKind>>,
    /// The ledger table's name, where the tool lets it be renamed.
    table: Option<Spanned<String>>,
    /// Overrides the top-level `connect_timeout`.
    connect_timeout: Option<Spanned<String>>,
    /// Overrides the top-level `lock_timeout`.
    lock_timeout: Option<Spanned<String>>,
    /// Who may make this environment managed (logins or `@org/team`).
    admins: Option<Vec<String>>,
    /// Who may promote to it from chat-ops, besides admins.
    promoters: Option<Vec<String>>,
    /// The time zone another tool wrote its ledger's zone-less timestamps
    /// in (an IANA name such as `Europe/Paris`).
    ledger_time_zone: Option<Spanned<String>>,
}

/// Where envgate keeps its own state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlStoreLocation {
    Sqlite(PathBuf),
    /// A PostgreSQL URL, possibly with `${VAR}` references.
    Postgres(String),
}

/// Where an environment's URL comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlSource {
    /// Written in the file, possibly with `${VAR}` references.
    Inline(String),
    /// Read from this file.
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct EnvConfig {
    pub name: String,
    pub mode: Mode,
    pub mode_source: ModeSource,
    /// The line of envgate.toml that sets the mode (or names the
    /// environment, when the mode is its name's default).
    pub mode_line: usize,
    pub schema: Option<String>,
    pub ledger: LedgerKind,
    /// The ledger table, when renamed.
    pub table: Option<String>,
    pub url: UrlSource,
    pub connect_timeout: Duration,
    pub lock_timeout: Duration,
    /// Who may make this environment managed; empty: anyone.
    pub admins: Vec<String>,
    /// Who may promote to it from chat-ops, besides admins.
    pub promoters: Vec<String>,
    /// The zone in which the ledger's tool wrote timestamps without zone
    /// (PostgreSQL `timestamp`): with it they are shown as UTC instants,
    /// without it as recorded, with no zone claimed.
    pub ledger_time_zone: Option<String>,
    url_span: Range<usize>,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The configuration file as given.
    pub file: PathBuf,
    /// The source layout.
    pub format: LedgerKind,
    /// The migrations directory as written (`/`-separated, for display).
    pub migrations: String,
    /// Where envgate keeps its own state.
    pub control_store: ControlStoreLocation,
    /// Tags that are releases (a glob).
    pub release_tags: String,
    /// Releases listed in envgate.toml, by tag.
    pub releases: IndexMap<String, Vec<String>>,
    /// The migrations directory on disk.
    pub migrations_dir: PathBuf,
    /// Further migrations folders, as written, after `migrations` (formats
    /// whose tools read several: their migrations are ordered together).
    pub more_migrations: Vec<String>,
    /// The largest migration file envgate reads, in bytes.
    pub max_migration_size: u64,
    /// Whether links out of the project may be followed.
    pub allow_links_outside: bool,
    pub environments: Vec<EnvConfig>,
    /// `[schema_drift]`.
    pub schema_drift: SchemaDrift,
    /// `[lint]`.
    pub lint: crate::core::lint::LintConfig,
    text: String,
}

/// `[schema_drift]`: how envgate reads the live schema.
#[derive(Clone, Debug, Default)]
pub struct SchemaDrift {
    /// Shadow database URLs as written (`${VAR}` not yet resolved), with
    /// the line that sets them.
    pub shadow_urls: Vec<String>,
    pub shadow_line: usize,
    /// PostgreSQL schemas to read; empty: each environment's own.
    pub schemas: Vec<String>,
    pub ignore: Vec<crate::core::schema::Ignore>,
    /// Whether every review (bot, `envgate ci`) compares the live schemas.
    pub review: bool,
}

/// The default for `max_migration_size`.
pub const DEFAULT_MAX_MIGRATION_SIZE: u64 = 64 * 1024 * 1024;

/// `25MiB`, `512 KiB`, `100`: a size in bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1_000_000,
        "mib" | "m" => 1024 * 1024,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Each environment as a request's review sees it (see
/// [`crate::core::loosening`]): where it points is the URL without
/// credentials, the `${VAR}` text as written, or the URL file's path.
pub fn policies(config: &Config) -> Vec<crate::core::loosening::EnvPolicy> {
    config
        .environments
        .iter()
        .map(|e| crate::core::loosening::EnvPolicy {
            name: e.name.clone(),
            mode: e.mode,
            admins: e.admins.clone(),
            promoters: e.promoters.clone(),
            target: match &e.url {
                UrlSource::File(p) => format!("file {}", p.display()),
                UrlSource::Inline(text) if text.contains("${") => text.clone(),
                UrlSource::Inline(text) => match url::Url::parse(text) {
                    Ok(u) if u.host_str().is_some() => format!(
                        "{}://{}{}{}",
                        u.scheme(),
                        u.host_str().unwrap_or_default(),
                        u.port().map_or(String::new(), |p| format!(":{p}")),
                        u.path()
                    ),
                    Ok(u) => format!("{}:{}", u.scheme(), u.path()),
                    Err(_) => crate::core::redact::mask_url(text),
                },
            },
        })
        .collect()
}

/// envgate.toml's text with environment `env`'s mode set to `mode`, every
/// other byte (comments, order, spacing) kept. The result is not
/// validated here: parse it before writing it.
pub fn set_mode(text: &str, env: &str, mode: Mode) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().to_owned())?;
    let envs = doc
        .get_mut("environments")
        .and_then(|e| e.as_table_like_mut())
        .ok_or_else(|| "there is no [environments] table".to_owned())?;
    let known: Vec<String> = envs.iter().map(|(k, _)| k.to_owned()).collect();
    let table = envs
        .get_mut(env)
        .and_then(|t| t.as_table_like_mut())
        .ok_or_else(|| format!("no environment '{env}' (configured: {})", known.join(", ")))?;
    match table.get_mut("mode") {
        Some(item) => {
            // The value replaced, its comments and spacing kept.
            let decor = item.as_value().map(|v| v.decor().clone());
            *item = toml_edit::value(mode.as_str());
            if let (Some(d), Some(v)) = (decor, item.as_value_mut()) {
                *v.decor_mut() = d;
            }
        }
        None => {
            table.insert("mode", toml_edit::value(mode.as_str()));
        }
    }
    Ok(doc.to_string())
}

/// Where the control store is when envgate.toml does not say, beside it.
pub const DEFAULT_CONTROL_STORE: &str = ".envgate/state.db";

/// A `control_store` value (in envgate.toml, `--control-store` or
/// `ENVGATE_CONTROL_STORE`): `sqlite://path` (relative to `base`) or a
/// PostgreSQL URL, possibly with `${VAR}`.
pub fn control_store_location(text: &str, base: &Path) -> Result<ControlStoreLocation, String> {
    let sqlite = text.starts_with("sqlite:");
    if !sqlite
        && (text.starts_with("postgres://")
            || text.starts_with("postgresql://")
            || text.contains("${"))
    {
        return Ok(ControlStoreLocation::Postgres(text.to_owned()));
    }
    let path = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty() && !p.contains('?'))
        .ok_or_else(|| "`control_store` must be sqlite://path or postgres://…".to_owned())?;
    Ok(ControlStoreLocation::Sqlite(base.join(path)))
}

/// Reads and parses a configuration file.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.display().to_string(),
        line: 0,
        column: 0,
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "no such file (create an envgate.toml, or pass -c FILE)".to_owned()
        } else {
            format!("cannot read: {e}")
        },
    })?;
    let config = parse(file, &text)?;
    // A literal password in the file is a secret too (see crate::secrets).
    for env in &config.environments {
        if let UrlSource::Inline(url) = &env.url {
            crate::secrets::register_url(url);
        }
    }
    if let ControlStoreLocation::Postgres(url) = &config.control_store {
        crate::secrets::register_url(url);
    }
    Ok(config)
}

/// Parses the text of a configuration file. `file` is used for messages and
/// to resolve relative paths.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let err_at = |span: Option<Range<usize>>, message: String| {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        ConfigError {
            file: file.display().to_string(),
            line,
            column,
            message,
        }
    };
    let raw: RawConfig = toml::from_str(text)
        .map_err(|e| err_at(e.span(), e.message().trim_end().replace('\n', " ")))?;
    let base = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let format = raw
        .format
        .as_ref()
        .map_or(LedgerKind::Envgate, |f| *f.get_ref());

    let folders = match raw.migrations {
        None => vec![format.default_migrations().to_owned()],
        Some(m) => {
            let span = m.span();
            let folders = match m.into_inner() {
                OneOrMany::One(one) => vec![one],
                OneOrMany::Many(many) if many.len() > 1 && !format.several_folders() => {
                    return Err(err_at(
                        Some(span),
                        format!(
                            "`migrations`: {format} reads one migrations folder; a list is for flyway, \
                             rails, dbmate and knex"
                        ),
                    ));
                }
                OneOrMany::Many(many) => many,
            };
            if folders.is_empty() || folders.iter().any(|f| f.trim().is_empty()) {
                return Err(err_at(
                    Some(span),
                    "`migrations` must name a directory".into(),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = folders
                .iter()
                .find(|f| !seen.insert(f.trim_end_matches('/')))
            {
                return Err(err_at(
                    Some(span),
                    format!("`migrations` names {twice} twice"),
                ));
            }
            folders
        }
    };
    let migrations = folders[0].clone();
    let more_migrations = folders[1..].to_vec();
    let control_store = match &raw.control_store {
        None => ControlStoreLocation::Sqlite(base.join(DEFAULT_CONTROL_STORE)),
        Some(url) => {
            control_store_location(url.get_ref(), &base).map_err(|m| err_at(Some(url.span()), m))?
        }
    };

    let max_migration_size = match &raw.max_migration_size {
        Some(s) => parse_size(s.get_ref()).filter(|n| *n > 0).ok_or_else(|| {
            err_at(
                Some(s.span()),
                format!(
                    "`max_migration_size` = \"{}\" is not a size such as \"64MiB\"",
                    s.get_ref()
                ),
            )
        })?,
        None => DEFAULT_MAX_MIGRATION_SIZE,
    };
    let connect_timeout = match &raw.connect_timeout {
        Some(t) => parse_duration("connect_timeout", t).map_err(|m| err_at(Some(t.span()), m))?,
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let lock_timeout = match &raw.lock_timeout {
        Some(t) => parse_duration("lock_timeout", t).map_err(|m| err_at(Some(t.span()), m))?,
        None => DEFAULT_LOCK_TIMEOUT,
    };

    let envs = raw.environments.unwrap_or_default();
    if envs.is_empty() {
        return Err(err_at(
            None,
            "no environments: add at least one [environments.<name>] table with a `url`".into(),
        ));
    }
    let mut environments: Vec<EnvConfig> = Vec::with_capacity(envs.len());
    for (name, env) in envs {
        let name_span = name.span();
        let name = name.into_inner();
        if !valid_env_name(&name) {
            return Err(err_at(
                Some(name_span),
                format!(
                    "environment name '{name}' is not valid: use letters, digits, '-', '_' and '.', starting with a letter or digit"
                ),
            ));
        }
        if let Some(prev) = environments
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(&name))
        {
            return Err(err_at(
                Some(name_span),
                format!(
                    "duplicate environment '{name}' (already defined as '{}')",
                    prev.name
                ),
            ));
        }
        let env_span = env.span();
        let env = env.into_inner();
        let (url, url_span) = match (env.url, env.url_file) {
            (Some(u), None) => {
                let span = u.span();
                (UrlSource::Inline(u.into_inner()), span)
            }
            (None, Some(f)) => {
                let span = f.span();
                (UrlSource::File(base.join(f.into_inner())), span)
            }
            (Some(u), Some(_)) => {
                return Err(err_at(
                    Some(u.span()),
                    format!("environment '{name}': set either `url` or `url_file`, not both"),
                ));
            }
            (None, None) => {
                return Err(err_at(
                    Some(env_span),
                    format!("environment '{name}': missing `url` (or `url_file`)"),
                ));
            }
        };
        let schema = match env.schema {
            Some(s) if s.get_ref().is_empty() || s.get_ref().contains('\0') => {
                return Err(err_at(
                    Some(s.span()),
                    format!("environment '{name}': `schema` must be a non-empty name"),
                ));
            }
            Some(s) => Some(s.into_inner()),
            None => None,
        };
        let connect_timeout = match &env.connect_timeout {
            Some(t) => parse_duration("connect_timeout", t)
                .map_err(|m| err_at(Some(t.span()), format!("environment '{name}': {m}")))?,
            None => connect_timeout,
        };
        let lock_timeout = match &env.lock_timeout {
            Some(t) => parse_duration("lock_timeout", t)
                .map_err(|m| err_at(Some(t.span()), format!("environment '{name}': {m}")))?,
            None => lock_timeout,
        };
        let (ledger, ledger_span) = match &env.ledger {
            Some(l) => (*l.get_ref(), Some(l.span())),
            None => (format, None),
        };
        if ledger != LedgerKind::Envgate && ledger != format {
            return Err(err_at(
                ledger_span,
                format!(
                    "environment '{name}': ledger \"{ledger}\" does not fit the project's format \"{format}\"; \
                     set format = \"{ledger}\" (the layout {ledger} reads) or use the envgate ledger"
                ),
            ));
        }
        if ledger == LedgerKind::Envgate && format != LedgerKind::Envgate {
            return Err(err_at(
                ledger_span.or(Some(env_span.clone())),
                format!(
                    "environment '{name}': envgate's own ledger needs envgate's layout; with format = \"{format}\" \
                     environments read {format}'s ledger (reconcile_only)"
                ),
            ));
        }
        let table = match env.table {
            Some(t) if !ledger.table_renamable() => {
                return Err(err_at(
                    Some(t.span()),
                    format!(
                        "environment '{name}': {ledger} does not let its ledger table be renamed"
                    ),
                ));
            }
            Some(t) if t.get_ref().trim().is_empty() => {
                return Err(err_at(
                    Some(t.span()),
                    format!("environment '{name}': `table` must be a name"),
                ));
            }
            Some(t) => Some(t.into_inner()),
            None => None,
        };
        let ledger_time_zone = match env.ledger_time_zone {
            Some(z) if !valid_zone_name(z.get_ref()) => {
                return Err(err_at(
                    Some(z.span()),
                    format!(
                        "environment '{name}': `ledger_time_zone` must be a time zone name such as \
                         \"Europe/Paris\" or \"UTC\""
                    ),
                ));
            }
            Some(z) => Some(z.into_inner()),
            None => None,
        };
        // The line that sets the mode (the environment's own line when the
        // mode comes from its name), for attributing a change from git.
        let mode_line = line_col(
            text,
            env.mode
                .as_ref()
                .map_or(name_span.start, |m| m.span().start),
        )
        .0;
        let (mode, mode_source) = match (env.mode.map(Spanned::into_inner), ledger) {
            (Some(m), LedgerKind::Envgate) => (m, ModeSource::Config),
            (Some(Mode::ReconcileOnly), _) => (Mode::ReconcileOnly, ModeSource::Config),
            (Some(m), tool) => {
                return Err(err_at(
                    Some(env_span),
                    format!(
                        "environment '{name}': mode {m} with the {tool} ledger: envgate never writes another tool's \
                         ledger; its environments are reconcile_only"
                    ),
                ));
            }
            (None, LedgerKind::Envgate) => (default_mode(&name), ModeSource::Default),
            (None, _) => (Mode::ReconcileOnly, ModeSource::Default),
        };
        environments.push(EnvConfig {
            name,
            mode,
            mode_source,
            mode_line,
            schema,
            ledger,
            table,
            url,
            connect_timeout,
            lock_timeout,
            admins: env.admins.unwrap_or_default(),
            promoters: env.promoters.unwrap_or_default(),
            ledger_time_zone,
            url_span,
        });
    }
    let schema_drift =
        match raw.schema_drift {
            None => SchemaDrift::default(),
            Some(sd) => {
                let span = sd.span();
                let sd = sd.into_inner();
                let (shadow_urls, shadow_line) = match sd.shadow_url {
                    None => (Vec::new(), 0),
                    Some(u) => {
                        let line = line_col(text, u.span().start).0;
                        let urls = match u.into_inner() {
                            OneOrMany::One(one) => vec![one],
                            OneOrMany::Many(many) => many,
                        };
                        (urls, line)
                    }
                };
                let mut ignore = Vec::new();
                for rule in sd.ignore.unwrap_or_default() {
                    ignore.push(crate::core::schema::Ignore::parse(rule.get_ref()).map_err(
                        |m| err_at(Some(rule.span()), format!("`schema_drift.ignore`: {m}")),
                    )?);
                }
                let schemas = sd.schemas.unwrap_or_default();
                if schemas.iter().any(|s| s.trim().is_empty()) {
                    return Err(err_at(
                        Some(span),
                        "`schema_drift.schemas` names an empty schema".into(),
                    ));
                }
                SchemaDrift {
                    shadow_urls,
                    shadow_line,
                    schemas,
                    ignore,
                    review: sd.review.unwrap_or(false),
                }
            }
        };

    let mut lint = crate::core::lint::LintConfig::default();
    if let Some(raw) = raw.lint {
        if let Some(v) = raw.pg_version {
            if v.get_ref().parse::<squawk_linter::Version>().is_err() {
                return Err(err_at(
                    Some(v.span()),
                    format!(
                        "`lint.pg_version` = \"{}\" is not a version such as \"15\" or \"14.5\"",
                        v.get_ref()
                    ),
                ));
            }
            lint.pg_version = Some(v.into_inner());
        }
        for (rule, severity) in raw.rules.unwrap_or_default() {
            if !crate::core::lint::known_rule(rule.get_ref()) {
                return Err(err_at(
                    Some(rule.span()),
                    format!(
                        "`lint.rules`: `{}` is not a rule (envgate's and squawk's are listed in docs/lint.md)",
                        rule.get_ref()
                    ),
                ));
            }
            let s = crate::core::lint::Severity::parse(severity.get_ref()).ok_or_else(|| {
                err_at(
                    Some(severity.span()),
                    format!(
                        "`lint.rules.{}` = \"{}\": write \"error\", \"warning\" or \"off\"",
                        rule.get_ref(),
                        severity.get_ref()
                    ),
                )
            })?;
            lint.rules.insert(rule.into_inner(), s);
        }
    }

    Ok(Config {
        file: file.to_path_buf(),
        format,
        control_store,
        release_tags: raw.release_tags.unwrap_or_else(|| "v*".to_owned()),
        releases: raw
            .releases
            .unwrap_or_default()
            .into_iter()
            .map(|(tag, r)| (tag, r.migrations))
            .collect(),
        migrations_dir: base.join(&migrations),
        more_migrations,
        max_migration_size,
        allow_links_outside: raw.allow_links_outside.unwrap_or(false),
        migrations,
        environments,
        schema_drift,
        lint,
        text: text.to_owned(),
    })
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An IANA zone name (`Europe/Paris`, `America/Argentina/Buenos_Aires`,
/// `UTC`, `Etc/GMT+3`): what PostgreSQL accepts as a TimeZone, checked
/// here so a typo is named in envgate.toml rather than by the server.
fn valid_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 64
        && zone.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

fn parse_duration(key: &str, value: &Spanned<String>) -> Result<Duration, String> {
    humantime::parse_duration(value.get_ref()).map_err(|e| {
        format!(
            "`{key}` = \"{}\": {e} (write e.g. \"10s\" or \"500ms\")",
            value.get_ref()
        )
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl Config {
    pub fn env(&self, name: &str) -> Option<&EnvConfig> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// An error located at an environment's `url` (or `url_file`).
    pub fn env_error(&self, env: &EnvConfig, message: String) -> ConfigError {
        self.url_error(env, message)
    }

    fn url_error(&self, env: &EnvConfig, message: String) -> ConfigError {
        let (line, column) = line_col(&self.text, env.url_span.start);
        ConfigError {
            file: self.file.display().to_string(),
            line,
            column,
            message,
        }
    }
}

/// The mode notices for these environments (see
/// [`crate::core::mode::notes`]).
pub fn mode_notes(envs: &[&EnvConfig]) -> Vec<String> {
    let modes: Vec<crate::core::mode::ModeOf<'_>> = envs
        .iter()
        .map(|e| crate::core::mode::ModeOf {
            name: &e.name,
            mode: e.mode,
            source: e.mode_source,
            ledger: e.ledger.as_str(),
        })
        .collect();
    crate::core::mode::notes(&modes)
}

impl EnvConfig {
    /// The connection URL with `${VAR}` references replaced, or the content
    /// of `url_file`. `lookup` reads a variable; `read_file` reads a file.
    pub fn resolve_url(
        &self,
        config: &Config,
        lookup: &dyn Fn(&str) -> Option<String>,
        read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<String, ConfigError> {
        let name = &self.name;
        let url = match &self.url {
            UrlSource::Inline(text) => interpolate(text, lookup)
                .map_err(|m| config.url_error(self, format!("environment '{name}': {m}")))?,
            UrlSource::File(path) => read_file(path)
                .map_err(|e| {
                    config.url_error(
                        self,
                        format!(
                            "environment '{name}': cannot read url_file {}: {e}",
                            path.display()
                        ),
                    )
                })?
                .trim()
                .to_owned(),
        };
        if url.is_empty() {
            return Err(config.url_error(self, format!("environment '{name}': the URL is empty")));
        }
        Ok(url)
    }
}

/// Replaces `${VAR}` with the variable's value. `$${` writes a literal `${`.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                format!(
                    "unterminated `${{` in \"{}\"",
                    crate::core::redact::mask_url(text)
                )
            })?;
            let var = &body[..end];
            let valid = !var.is_empty()
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("`${{{var}}}` is not a valid variable name"));
            }
            let value = lookup(var).ok_or_else(|| format!("variable {var} is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("proj/envgate.toml"), text)
    }

    fn err(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_environments_in_file_order_with_defaults() {
        let c = parse_str(
            r#"
migrations = "db/migrations"
connect_timeout = "3s"

[environments.prod-eu]
url = "postgres://app@db/app"

[environments.dev]
url = "sqlite://dev.db"

[environments.staging]
url_file = "secrets/staging-url"
mode = "managed"
schema = "tenant_a"
connect_timeout = "500ms"
"#,
        )
        .unwrap();
        assert_eq!(c.migrations_dir, Path::new("proj/db/migrations"));
        let names: Vec<_> = c.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["prod-eu", "dev", "staging"]);
        let [prod, dev, staging] = &c.environments[..] else {
            panic!()
        };
        assert_eq!(
            (prod.mode, prod.mode_source),
            (Mode::ExportOnly, ModeSource::Default)
        );
        assert_eq!(
            (dev.mode, dev.mode_source),
            (Mode::Managed, ModeSource::Default)
        );
        assert_eq!(
            (staging.mode, staging.mode_source),
            (Mode::Managed, ModeSource::Config)
        );
        assert_eq!(staging.schema.as_deref(), Some("tenant_a"));
        assert_eq!(
            staging.url,
            UrlSource::File(PathBuf::from("proj/secrets/staging-url"))
        );
        assert_eq!(prod.connect_timeout, Duration::from_secs(3));
        assert_eq!(staging.connect_timeout, Duration::from_millis(500));
        assert_eq!(dev.ledger, LedgerKind::Envgate);
    }

    #[test]
    fn malformed_toml_has_line_and_column() {
        assert_eq!(
            err("[environments.dev]\nurl = \"sqlite://x\nmode = 1\n"),
            "proj/envgate.toml:2:18: invalid basic string, expected `\"`"
        );
    }

    #[test]
    fn unknown_keys_are_located() {
        let e = err("[environments.dev]\nurl = \"sqlite://x\"\nmodee = \"managed\"\n");
        assert!(
            e.starts_with("proj/envgate.toml:3:1: unknown field `modee`, expected one of"),
            "{e}"
        );
        let e = err("migration = \"m\"\n[environments.dev]\nurl = \"sqlite://x\"\n");
        assert!(
            e.starts_with("proj/envgate.toml:1:1: unknown field `migration`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_mode_and_ledger_are_located() {
        let e = err("[environments.dev]\nurl = \"sqlite://x\"\nmode = \"yolo\"\n");
        assert_eq!(
            e,
            "proj/envgate.toml:3:8: unknown variant `yolo`, expected one of `managed`, `export_only`, `reconcile_only`"
        );
        let e = err("[environments.dev]\nurl = \"sqlite://x\"\nledger = \"flyway\"\n");
        assert_eq!(
            e,
            "proj/envgate.toml:3:10: environment 'dev': ledger \"flyway\" does not fit the project's format \"envgate\"; set format = \"flyway\" (the layout flyway reads) or use the envgate ledger"
        );
    }

    #[test]
    fn duplicate_environments_are_rejected() {
        let e = err(
            "[environments.dev]\nurl = \"sqlite://a\"\n[environments.dev]\nurl = \"sqlite://b\"\n",
        );
        assert!(e.starts_with("proj/envgate.toml:3:"), "{e}");
        assert!(e.contains("duplicate"), "{e}");
        let e = err(
            "[environments.prod]\nurl = \"sqlite://a\"\n[environments.PROD]\nurl = \"sqlite://b\"\n",
        );
        assert_eq!(
            e,
            "proj/envgate.toml:3:15: duplicate environment 'PROD' (already defined as 'prod')"
        );
    }

    #[test]
    fn other_shape_errors() {
        assert_eq!(
            err("[environments.dev]\nmode = \"managed\"\n"),
            "proj/envgate.toml:1:1: environment 'dev': missing `url` (or `url_file`)"
        );
        assert_eq!(
            err("[environments.dev]\nurl = \"sqlite://a\"\nurl_file = \"f\"\n"),
            "proj/envgate.toml:2:7: environment 'dev': set either `url` or `url_file`, not both"
        );
        assert_eq!(
            err("migrations = \"m\"\n"),
            "proj/envgate.toml: no environments: add at least one [environments.<name>] table with a `url`"
        );
        assert_eq!(
            err("[environments.\"my env\"]\nurl = \"sqlite://a\"\n"),
            "proj/envgate.toml:1:15: environment name 'my env' is not valid: use letters, digits, '-', '_' and '.', starting with a letter or digit"
        );
        let e = err("connect_timeout = \"soon\"\n[environments.dev]\nurl = \"sqlite://a\"\n");
        assert!(
            e.starts_with("proj/envgate.toml:1:19: `connect_timeout` = \"soon\""),
            "{e}"
        );
        let e = err("[environments.dev]\nurl = \"sqlite://a\"\nschema = \"\"\n");
        assert_eq!(
            e,
            "proj/envgate.toml:3:10: environment 'dev': `schema` must be a non-empty name"
        );
    }

    #[test]
    fn interpolation() {
        let vars = |k: &str| match k {
            "PW" => Some("s3cret".to_owned()),
            "HOST" => Some("db.internal".to_owned()),
            _ => None,
        };
        assert_eq!(
            interpolate("postgres://app:${PW}@${HOST}/app", &vars).unwrap(),
            "postgres://app:s3cret@db.internal/app"
        );
        assert_eq!(
            interpolate("a$b$${literal}", &vars).unwrap(),
            "a$b${literal}"
        );
        assert_eq!(
            interpolate("${MISSING}", &vars).unwrap_err(),
            "variable MISSING is not set"
        );
        assert_eq!(
            interpolate("${1X}", &vars).unwrap_err(),
            "`${1X}` is not a valid variable name"
        );
        assert!(
            interpolate("x${PW", &vars)
                .unwrap_err()
                .starts_with("unterminated")
        );
    }

    #[test]
    fn missing_variable_names_environment_and_variable() {
        let c = parse_str("[environments.dev]\nurl = \"sqlite://a\"\n\n[environments.prod]\nurl = \"${PROD_URL}\"\n").unwrap();
        let no_vars = |_: &str| None;
        let no_files = |_: &Path| Err(std::io::Error::other("none"));
        assert_eq!(
            c.environments[0]
                .resolve_url(&c, &no_vars, &no_files)
                .unwrap(),
            "sqlite://a"
        );
        assert_eq!(
            c.environments[1]
                .resolve_url(&c, &no_vars, &no_files)
                .unwrap_err()
                .to_string(),
            "proj/envgate.toml:5:7: environment 'prod': variable PROD_URL is not set"
        );
    }

    #[test]
    fn url_file_is_read_and_trimmed() {
        let c = parse_str("[environments.dev]\nurl_file = \"secret\"\n").unwrap();
        let no_vars = |_: &str| None;
        let files = |p: &Path| {
            assert_eq!(p, Path::new("proj/secret"));
            Ok("postgres://a:b@h/d\n".to_owned())
        };
        assert_eq!(
            c.environments[0].resolve_url(&c, &no_vars, &files).unwrap(),
            "postgres://a:b@h/d"
        );
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = parse(&path, &text).unwrap();
        assert!(c.environments.len() >= 3);
        assert_eq!(c.schema_drift.ignore.len(), 2);
        assert_eq!(c.schema_drift.shadow_urls.len(), 1);
    }

    #[test]
    fn set_mode_keeps_everything_else() {
        let text = "# Our environments\n\
                    [environments.dev]\nurl = \"sqlite://dev.db\"\n\n\
                    [environments.prod]   # the real one\n\
                    url = \"${PROD_URL}\"\n\
                    mode   =   \"export_only\"   # reviewed in #12\n\
                    admins = [\"alice\"]\n\n\
                    [environments.qa]\nurl = \"sqlite://qa.db\" # no mode\n";
        let out = set_mode(text, "prod", Mode::Managed).unwrap();
        assert_eq!(
            out,
            text.replace("\"export_only\"   # reviewed", "\"managed\"   # reviewed")
        );
        let out = set_mode(text, "qa", Mode::ExportOnly).unwrap();
        assert!(
            out.ends_with("url = \"sqlite://qa.db\" # no mode\nmode = \"export_only\"\n"),
            "{out}"
        );
        assert!(
            out.starts_with("# Our environments\n[environments.dev]"),
            "{out}"
        );
        let inline = "[environments]\nstaging = { url = \"sqlite://s.db\" }\n";
        let out = set_mode(inline, "staging", Mode::Managed).unwrap();
        assert_eq!(
            parse(Path::new("e.toml"), &out).unwrap().environments[0].mode,
            Mode::Managed
        );
        assert_eq!(
            set_mode(text, "stage", Mode::Managed).unwrap_err(),
            "no environment 'stage' (configured: dev, prod, qa)"
        );
        assert!(set_mode("[environments\n", "x", Mode::Managed).is_err());
    }
}
