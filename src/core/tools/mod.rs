//! Other migration tools: their source layouts, their ledgers and their
//! checksums, so that envgate can read what a team's own runner recorded.
//!
//! Every tool module is pure and offers the same four things:
//! - `candidate(rel)`: whether a file (path relative to the migrations
//!   directory) belongs to the layout, so the loader reads only those;
//! - `discover(files, root)`: the migrations, in the tool's order, with ids
//!   in the canonical form the ledger side produces too, and the checksums
//!   the tool would record for today's files;
//! - `select_sql(table, dialect)`: the query that reads its ledger table,
//!   every value as text;
//! - `ledger(rows, migrations)`: the ledger rows as envgate's
//!   [`LedgerRow`]s, one per migration, with the tool's failed, baseline,
//!   undo, rolled-back and repeatable states mapped onto envgate's.

pub mod alembic;
pub mod dbmate;
pub mod diesel;
pub mod django;
pub mod ecto;
pub mod flyway;
pub mod golang_migrate;
pub mod goose;
pub mod knex;
pub mod laravel;
pub mod liquibase;
pub mod node_pg_migrate;
pub mod prisma;
pub mod python;
pub mod rails;
pub mod refinery;
pub mod sqlx;
pub mod yoyo;

use super::checksum::RecordedHash;
use super::ledger::LedgerRow;
use super::migration::{Discovery, DiscoveryError, Ignored, Migration, SourceFile, into_script};
use super::sql::Dialect;
use super::version::Version;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A ledger row as text, in the column order of the tool's `select_sql`.
pub type TextRow = Vec<Option<String>>;

/// The migration tools whose layouts and ledgers envgate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Envgate,
    Flyway,
    Liquibase,
    Rails,
    Django,
    Ecto,
    Sqlx,
    Diesel,
    Refinery,
    GolangMigrate,
    Dbmate,
    Goose,
    Alembic,
    Prisma,
    Knex,
    NodePgMigrate,
    Laravel,
    Yoyo,
}

/// Folders that never hold migrations.
pub const SKIPPED_DIRS: [&str; 6] = [
    "node_modules",
    "__pycache__",
    "target",
    "venv",
    ".venv",
    "_build",
];

/// See [`Tool::pick`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Read it and give it to discovery.
    Take,
    /// Not a migration: listed with `-v`.
    Ignore(String),
    /// Inside a hidden, dependency or build folder: not even listed.
    Skip,
}

impl Tool {
    pub const ALL: [Tool; 18] = [
        Tool::Envgate,
        Tool::Flyway,
        Tool::Liquibase,
        Tool::Rails,
        Tool::Django,
        Tool::Ecto,
        Tool::Sqlx,
        Tool::Diesel,
        Tool::Refinery,
        Tool::GolangMigrate,
        Tool::Dbmate,
        Tool::Goose,
        Tool::Alembic,
        Tool::Prisma,
        Tool::Knex,
        Tool::NodePgMigrate,
        Tool::Laravel,
        Tool::Yoyo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Envgate => "envgate",
            Tool::Flyway => "flyway",
            Tool::Liquibase => "liquibase",
            Tool::Rails => "rails",
            Tool::Django => "django",
            Tool::Ecto => "ecto",
            Tool::Sqlx => "sqlx",
            Tool::Diesel => "diesel",
            Tool::Refinery => "refinery",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Dbmate => "dbmate",
            Tool::Goose => "goose",
            Tool::Alembic => "alembic",
            Tool::Prisma => "prisma",
            Tool::Knex => "knex",
            Tool::NodePgMigrate => "node-pg-migrate",
            Tool::Laravel => "laravel",
            Tool::Yoyo => "yoyo",
        }
    }

    /// Under which name the control store keeps the first observations of
    /// this tool's migrations. It changes when what is hashed changes:
    /// Liquibase's changesets were once hashed with their whole changelog
    /// file and are now hashed alone, so older observations are not
    /// compared with the new hashes (they would all look drifted).
    pub fn observation_scope(self) -> &'static str {
        match self {
            Tool::Liquibase => "liquibase/changeset",
            other => other.as_str(),
        }
    }

    /// Where the tool keeps its migrations by default, relative to the
    /// project (envgate.toml's directory).
    pub fn default_migrations(self) -> &'static str {
        match self {
            Tool::Envgate | Tool::Sqlx | Tool::Diesel | Tool::Refinery | Tool::GolangMigrate => {
                "migrations"
            }
            Tool::Knex | Tool::NodePgMigrate | Tool::Goose => "migrations",
            Tool::Flyway => "db/migration",
            Tool::Liquibase => "changelog",
            Tool::Rails => "db/migrate",
            Tool::Django => ".",
            Tool::Ecto => "priv/repo/migrations",
            Tool::Dbmate => "db/migrations",
            Tool::Alembic => "alembic/versions",
            Tool::Prisma => "prisma/migrations",
            Tool::Laravel => "database/migrations",
            Tool::Yoyo => "migrations",
        }
    }

    /// The ledger table's default name.
    pub fn default_table(self) -> &'static str {
        match self {
            Tool::Envgate => super::ledger_table::TABLE,
            Tool::Flyway => "flyway_schema_history",
            Tool::Liquibase => "databasechangelog",
            Tool::Rails | Tool::Ecto | Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
            Tool::Django => "django_migrations",
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Refinery => "refinery_schema_history",
            Tool::Goose => "goose_db_version",
            Tool::Alembic => "alembic_version",
            Tool::Prisma => "_prisma_migrations",
            Tool::Knex => "knex_migrations",
            Tool::NodePgMigrate => "pgmigrations",
            Tool::Laravel => "migrations",
            Tool::Yoyo => "_yoyo_migration",
        }
    }

    /// Whether the tool lets users rename its ledger table.
    pub fn table_renamable(self) -> bool {
        !matches!(
            self,
            Tool::Envgate | Tool::Django | Tool::Diesel | Tool::Prisma
        )
    }

    /// Every table the tool keeps its bookkeeping in, `table` being the
    /// ledger's name when renamed: left out of schema comparisons (a
    /// shadow database has none).
    pub fn bookkeeping_tables(self, table: Option<&str>) -> Vec<String> {
        let ledger = table.unwrap_or(self.default_table()).to_owned();
        let mut out = vec![ledger.clone(), super::ledger_table::TABLE.to_owned()];
        let more: &[&str] = match self {
            Tool::Liquibase => &["databasechangeloglock"],
            Tool::Knex => &["knex_migrations_lock"],
            Tool::Yoyo => &["_yoyo_log", "_yoyo_version", "yoyo_lock"],
            Tool::Rails => &["ar_internal_metadata"],
            _ => &[],
        };
        if self == Tool::Knex {
            out.push(format!("{ledger}_lock"));
        }
        out.extend(more.iter().map(|t| (*t).to_owned()));
        out.dedup();
        out
    }

    /// The SQL that applies a migration, when the tool's migrations are SQL
    /// files envgate can run as they are (for the shadow database); `None`
    /// for migrations written in code (Django, Rails, Knex, …).
    pub fn up_sql(self, up: &super::migration::Script) -> Option<String> {
        if !up.path.ends_with(".sql") {
            return None;
        }
        let between = |start: &str, end: &str| {
            let from = up.sql.find(start)? + start.len();
            let rest = &up.sql[from..];
            Some(rest[..rest.find(end).unwrap_or(rest.len())].to_owned())
        };
        match self {
            Tool::Envgate
            | Tool::Flyway
            | Tool::Sqlx
            | Tool::Diesel
            | Tool::Refinery
            | Tool::GolangMigrate
            | Tool::Prisma
            | Tool::Yoyo => Some(up.sql.clone()),
            Tool::Dbmate => between("-- migrate:up", "-- migrate:down"),
            Tool::Goose => between("-- +goose Up", "-- +goose Down"),
            _ => None,
        }
    }

    /// The checksum the tool records, if any (for messages and docs).
    pub fn checksum(self) -> Option<&'static str> {
        match self {
            Tool::Envgate => Some("SHA-256, LF-normalised"),
            Tool::Flyway => Some("CRC-32 over lines"),
            Tool::Liquibase => Some("MD5 (checksum version 9)"),
            Tool::Sqlx => Some("SHA-384"),
            Tool::Refinery => Some("SipHash-1-3"),
            Tool::Prisma => Some("SHA-256"),
            _ => None,
        }
    }

    /// Whether a file (relative to the migrations directory, `/`-separated)
    /// belongs to the tool's layout.
    pub fn candidate(self, rel: &str) -> bool {
        match self {
            Tool::Envgate => !rel.contains('/') && super::migration::is_candidate(rel),
            Tool::Flyway => flyway::candidate(rel),
            Tool::Liquibase => liquibase::candidate(rel),
            Tool::Rails => rails::candidate(rel),
            Tool::Django => django::candidate(rel),
            Tool::Ecto => ecto::candidate(rel),
            Tool::Sqlx => sqlx::candidate(rel),
            Tool::Diesel => diesel::candidate(rel),
            Tool::Refinery => refinery::candidate(rel),
            Tool::GolangMigrate => golang_migrate::candidate(rel),
            Tool::Dbmate => dbmate::candidate(rel),
            Tool::Goose => goose::candidate(rel),
            Tool::Alembic => alembic::candidate(rel),
            Tool::Prisma => prisma::candidate(rel),
            Tool::Knex => knex::candidate(rel),
            Tool::NodePgMigrate => node_pg_migrate::candidate(rel),
            Tool::Laravel => laravel::candidate(rel),
            Tool::Yoyo => yoyo::candidate(rel),
        }
    }

    /// What discovery does with a file at `rel` (relative to the migrations
    /// directory, `/`-separated) in this layout, for sources that list a
    /// whole tree at once (a git revision, a forge's API).
    pub fn pick(self, rel: &str) -> Pick {
        let (dirs, name) = match rel.rsplit_once('/') {
            Some((dirs, name)) => (Some(dirs), name),
            None => (None, rel),
        };
        if let Some(dirs) = dirs {
            if dirs
                .split('/')
                .any(|d| d.starts_with('.') || SKIPPED_DIRS.contains(&d))
            {
                return Pick::Skip;
            }
            if !self.recursive() {
                return Pick::Ignore("directory".to_owned());
            }
        }
        if self == Tool::Envgate {
            return match super::migration::classify(name) {
                super::migration::FileKind::Ignored(reason) => Pick::Ignore(reason),
                _ => Pick::Take,
            };
        }
        if self.candidate(rel) {
            Pick::Take
        } else {
            Pick::Ignore(format!("not part of {self}'s layout"))
        }
    }

    /// Whether the tool reads migrations from several folders at once,
    /// ordering them together and identifying them by file name alone
    /// (Flyway's `locations`, Rails' migration paths, dbmate's repeated
    /// `--migrations-dir`, Knex's `directory` list).
    pub fn several_folders(self) -> bool {
        matches!(self, Tool::Flyway | Tool::Rails | Tool::Dbmate | Tool::Knex)
    }

    /// Whether the layout looks into sub-directories.
    pub fn recursive(self) -> bool {
        !matches!(
            self,
            Tool::Envgate
                | Tool::Sqlx
                | Tool::Dbmate
                | Tool::Knex
                | Tool::NodePgMigrate
                | Tool::Goose
                | Tool::Laravel
                | Tool::Yoyo
        )
    }

    /// Discovers the migrations. `root` is the migrations directory as
    /// users wrote it (file paths start with it); `entry` is the root
    /// changelog for Liquibase.
    pub fn discover(
        self,
        files: Vec<SourceFile>,
        layout: &Layout<'_>,
    ) -> Result<Discovery, DiscoveryError> {
        match self {
            Tool::Envgate => super::migration::discover(files),
            Tool::Flyway => flyway::discover(files, layout),
            Tool::Liquibase => liquibase::discover(files, layout),
            Tool::Rails => rails::discover(files, layout),
            Tool::Django => django::discover(files, layout),
            Tool::Ecto => ecto::discover(files, layout),
            Tool::Sqlx => sqlx::discover(files, layout),
            Tool::Diesel => diesel::discover(files, layout),
            Tool::Refinery => refinery::discover(files, layout),
            Tool::GolangMigrate => golang_migrate::discover(files, layout),
            Tool::Dbmate => dbmate::discover(files, layout),
            Tool::Goose => goose::discover(files, layout),
            Tool::Alembic => alembic::discover(files, layout),
            Tool::Prisma => prisma::discover(files, layout),
            Tool::Knex => knex::discover(files, layout),
            Tool::NodePgMigrate => node_pg_migrate::discover(files, layout),
            Tool::Laravel => laravel::discover(files, layout),
            Tool::Yoyo => yoyo::discover(files, layout),
        }
    }

    /// The query reading the ledger table (qualified name given), every
    /// value as text.
    pub fn select_sql(self, table: &str, dialect: Dialect) -> String {
        match self {
            Tool::Envgate => unreachable!("envgate's ledger is read by ledger::envgate"),
            Tool::Flyway => flyway::select_sql(table, dialect),
            Tool::Liquibase => liquibase::select_sql(table, dialect),
            Tool::Rails | Tool::Dbmate => format!("SELECT version FROM {table}"),
            Tool::Django => django::select_sql(table, dialect),
            Tool::Ecto => ecto::select_sql(table, dialect),
            Tool::Sqlx => sqlx::select_sql(table, dialect),
            Tool::Diesel => diesel::select_sql(table, dialect),
            Tool::Refinery => refinery::select_sql(table, dialect),
            Tool::GolangMigrate => golang_migrate::select_sql(table, dialect),
            Tool::Goose => goose::select_sql(table, dialect),
            Tool::Alembic => format!("SELECT version_num FROM {table}"),
            Tool::Prisma => prisma::select_sql(table, dialect),
            Tool::Knex => knex::select_sql(table, dialect),
            Tool::NodePgMigrate => node_pg_migrate::select_sql(table, dialect),
            Tool::Laravel => laravel::select_sql(table),
            Tool::Yoyo => yoyo::select_sql(table, dialect),
        }
    }

    /// Turns the ledger's rows into envgate's, one per migration.
    pub fn ledger(
        self,
        rows: Vec<TextRow>,
        migrations: &[Migration],
    ) -> Result<Vec<LedgerRow>, String> {
        match self {
            Tool::Envgate => unreachable!("envgate's ledger is read by ledger::envgate"),
            Tool::Flyway => flyway::ledger(rows, migrations),
            Tool::Liquibase => liquibase::ledger(rows, migrations),
            Tool::Rails => rails::ledger(rows),
            Tool::Django => django::ledger(rows, migrations),
            Tool::Ecto => ecto::ledger(rows),
            Tool::Sqlx => sqlx::ledger(rows),
            Tool::Diesel => diesel::ledger(rows),
            Tool::Refinery => refinery::ledger(rows),
            Tool::GolangMigrate => golang_migrate::ledger(rows, migrations),
            Tool::Dbmate => dbmate::ledger(rows),
            Tool::Goose => goose::ledger(rows),
            Tool::Alembic => alembic::ledger(rows, migrations),
            Tool::Prisma => prisma::ledger(rows),
            Tool::Knex => knex::ledger(rows),
            Tool::NodePgMigrate => node_pg_migrate::ledger(rows),
            Tool::Laravel => laravel::ledger(rows),
            Tool::Yoyo => yoyo::ledger(rows),
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where discovery looks.
#[derive(Clone, Debug, Default)]
pub struct Layout<'a> {
    /// The migrations directory as written in envgate.toml (file paths
    /// start with it), or the root changelog for Liquibase.
    pub root: &'a str,
    /// The target's dialect (Liquibase skips changes meant for others).
    pub dialect: Option<Dialect>,
}

impl Layout<'_> {
    /// `path` relative to the migrations directory.
    pub fn rel<'p>(&self, path: &'p str) -> &'p str {
        let root = self.root.trim_end_matches('/');
        if root.is_empty() || root == "." {
            return path.trim_start_matches("./");
        }
        path.strip_prefix(root)
            .map_or(path, |r| r.trim_start_matches('/'))
    }
}

/// A migration found in a layout, before it becomes a [`Migration`].
pub(crate) struct Found {
    /// The canonical ledger id.
    pub id: String,
    /// What sorts it: a number-like version, or a position the tool decides.
    pub order: Order,
    pub name: String,
    pub up: SourceFile,
    pub down: Option<SourceFile>,
    pub repeatable: bool,
    /// The checksums the tool would record for the file (raw bytes).
    pub checksums: Vec<String>,
}

/// How a layout orders its migrations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Order {
    /// Digits and underscores, compared numerically group by group.
    Version(String),
    /// Dotted numbers (Flyway), compared part by part, trailing zeros dropped.
    Dotted(Vec<u128>),
    /// A position decided by the layout (a graph, a changelog, a name).
    Position(u32),
    /// Text order (file names).
    Text(String),
    /// After everything else (repeatables), by text.
    Last(String),
}

/// Sorts what a layout found, rejects duplicate ids, and builds the
/// migrations. `display` is the version users see for each.
pub(crate) fn assemble(
    mut found: Vec<Found>,
    ignored: Vec<Ignored>,
) -> Result<Discovery, DiscoveryError> {
    found.sort_by(|a, b| {
        let key = |f: &Found| match &f.order {
            Order::Version(v) => (0, Version::parse(v), None, f.order.clone()),
            other => (1, None, None::<()>, other.clone()),
        };
        key(a).cmp(&key(b)).then_with(|| a.up.path.cmp(&b.up.path))
    });
    let mut seen: HashMap<String, String> = HashMap::with_capacity(found.len());
    let mut migrations = Vec::with_capacity(found.len());
    for (pos, f) in found.into_iter().enumerate() {
        if let Some(first) = seen.insert(f.id.clone(), f.up.path.clone()) {
            return Err(DiscoveryError::DuplicateVersion {
                version: f.id,
                first,
                second: f.up.path,
            });
        }
        let version = match &f.order {
            Order::Version(v) => {
                Version::parse(v).unwrap_or_else(|| Version::ordinal(v, pos as u32))
            }
            _ => Version::ordinal(&f.id, pos as u32),
        };
        migrations.push(Migration {
            id: f.id,
            version,
            name: f.name,
            up: into_script(f.up)?,
            down: f.down.map(into_script).transpose()?,
            repeatable: f.repeatable,
            tool_checksums: f.checksums,
        });
    }
    let mut ignored = ignored;
    ignored.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Discovery {
        migrations,
        ignored,
    })
}

/// Discovery for layouts whose files are `<integer>_<name>.<ext>` and whose
/// ledger stores the integer (Rails, Ecto, goose): `parse` splits a file
/// name into (digits, name); files it rejects are listed as ignored with
/// `skipped` when given, dropped otherwise.
pub(crate) fn numbered(
    files: Vec<SourceFile>,
    parse: impl Fn(&str) -> Option<(&str, &str)>,
    skipped: Option<&str>,
) -> Result<Discovery, DiscoveryError> {
    let mut found = Vec::new();
    let mut ignored_files = Vec::new();
    for f in files {
        let Some((digits, name)) = parse(base(&f.path)).map(|(d, n)| (integer_id(d), n.to_owned()))
        else {
            if let Some(reason) = skipped {
                ignored_files.push(ignored(&f.path, reason));
            }
            continue;
        };
        found.push(Found {
            order: Order::Version(digits.clone()),
            id: digits,
            name,
            up: f,
            down: None,
            repeatable: false,
            checksums: Vec::new(),
        });
    }
    assemble(found, ignored_files)
}

/// An integer id without leading zeros (`001` → `1`), as Rails, Ecto, sqlx,
/// goose and golang-migrate store them.
pub(crate) fn integer_id(digits: &str) -> String {
    let t = digits.trim_start_matches('0');
    if t.is_empty() {
        "0".to_owned()
    } else {
        t.to_owned()
    }
}

/// A timestamp column as text: RFC 3339 UTC (`…Z`) when it holds an
/// instant, as recorded (no zone) when it does not.
pub(crate) fn time_sql(col: &str, dialect: Dialect) -> String {
    match dialect {
        // A `timestamp without time zone` holds the wall-clock time of
        // whoever wrote it (Liquibase and Flyway write the JVM's local
        // time): shown as recorded, without a zone, unless the environment
        // names the zone (`ledger_time_zone`, which the read session sets
        // as its TimeZone and as `envgate.ledger_zone`).
        Dialect::Postgres => format!(
            "CASE WHEN pg_typeof({col}) = 'timestamp without time zone'::regtype \
             AND coalesce(current_setting('envgate.ledger_zone', true), '') = '' \
             THEN to_char(({col})::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') \
             ELSE to_char(({col})::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END"
        ),
        Dialect::Sqlite => format!("strftime('%Y-%m-%dT%H:%M:%fZ', {col})"),
        // Sessions run in UTC (see `db::mysql`); a DATETIME holds no zone,
        // a TIMESTAMP is shown in the session's.
        Dialect::Mysql => crate::core::sql::mysql_utc_text(col),
    }
}

/// A ledger row that ran and has no checksum.
pub(crate) fn plain_row(version: String, name: String, applied_at: Option<String>) -> LedgerRow {
    LedgerRow {
        via: None,
        version,
        name,
        hash: RecordedHash::None,
        applied_at,
        success: true,
        error: None,
    }
}

/// The value of column `i`, or an error naming it.
pub(crate) fn col<'r>(row: &'r TextRow, i: usize, name: &str) -> Result<&'r str, String> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| format!("column {name} is NULL"))
}

pub(crate) fn opt(row: &TextRow, i: usize) -> Option<String> {
    row.get(i).and_then(|v| v.clone())
}

pub(crate) fn is_true(v: &str) -> bool {
    matches!(v, "t" | "true" | "1" | "TRUE")
}

/// The file name of a `/`-separated path.
pub(crate) fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub(crate) fn ignored(path: &str, reason: &str) -> Ignored {
    Ignored {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The leading ASCII digits of a string.
pub(crate) fn leading_digits(s: &str) -> &str {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    &s[..end]
}
