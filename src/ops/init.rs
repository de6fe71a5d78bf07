//! `envgate init`, the use case: which layout the repository holds (each
//! candidate read with the real discovery), and what each environment's
//! database holds, read-only. Writing the file is the surface's job.

use crate::config::{self, Config, EnvConfig};
use crate::core::layout::{self, Fit, Marker, Ranked};
use crate::core::tools::Tool;
use crate::db::ReadSession;
use std::io::Read;
use std::path::Path;

/// How much of a manifest or migration file is read to look for markers.
const HEAD: u64 = 16 * 1024;

fn head(path: &Path) -> Option<String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD)
        .read_to_end(&mut buf)
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The layouts that read the project at `root`, best first, with the
/// markers found.
pub fn detect(root: &Path) -> (Vec<Ranked>, Vec<Marker>) {
    let exists = |p: &str| root.join(p).exists();
    let manifest = |p: &str| {
        if layout::MANIFESTS.contains(&p) {
            head(&root.join(p))
        } else {
            None
        }
    };
    let markers = layout::markers(&exists, &manifest);
    let mut fits = Vec::new();
    for tool in Tool::ALL {
        for migrations in places(root, tool) {
            if let Some(fit) = try_layout(root, tool, &migrations) {
                fits.push(fit);
            }
        }
    }
    (layout::rank(fits, &markers), markers)
}

/// Where to try a tool: its usual folders that exist; for Liquibase, the
/// root changelog `liquibase.properties` names, else a usual root name.
fn places(root: &Path, tool: Tool) -> Vec<String> {
    let dirs = layout::candidate_dirs(tool)
        .into_iter()
        .filter(|d| root.join(d).is_dir());
    if tool != Tool::Liquibase {
        return dirs.map(str::to_owned).collect();
    }
    let named = head(&root.join("liquibase.properties")).and_then(|text| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once([':', '='])?;
            let k = k.trim().to_ascii_lowercase();
            (k == "changelogfile"
                || k == "changelog-file"
                || k == "liquibase.command.changelogfile")
                .then(|| v.trim().trim_start_matches("classpath:").to_owned())
        })
    });
    if let Some(file) = named.filter(|f| root.join(f).is_file()) {
        return vec![file];
    }
    dirs.filter_map(|d| {
        layout::LIQUIBASE_ROOTS
            .iter()
            .map(|r| format!("{d}/{r}"))
            .find(|f| root.join(f).is_file())
    })
    .collect()
}

/// Reads the project as `tool` would with `migrations`; `None` when that
/// layout does not read it.
fn try_layout(root: &Path, tool: Tool, migrations: &str) -> Option<Fit> {
    let text = format!(
        "format = {}\nmigrations = {}\n[environments.init]\nurl = \"sqlite::memory:\"\n",
        toml::Value::String(tool.as_str().to_owned()),
        toml::Value::String(migrations.to_owned()),
    );
    let cfg = config::parse(&root.join(config::DEFAULT_FILE), &text).ok()?;
    let d = super::load::discover(&cfg, None).ok()?;
    let marked_files = d
        .migrations
        .iter()
        .filter(|m| {
            let name = m.up.path.rsplit('/').next().unwrap_or(&m.up.path);
            let body = if layout::file_marker(tool).is_some_and(|mk| mk.starts_with("--")) {
                head(&root.join(&m.up.path)).unwrap_or_default()
            } else {
                String::new()
            };
            layout::marks(tool, name, &body)
        })
        .count();
    Some(Fit {
        tool,
        migrations: migrations.to_owned(),
        found: d.migrations.len(),
        ignored: d.ignored.len(),
        marked_files,
    })
}

/// What a read-only look at an environment's database found.
pub struct Probe {
    /// The ledger tables there (as the database names them).
    pub tables: Vec<String>,
    /// Why the database could not be read.
    pub error: Option<String>,
}

/// Lists the tables of the environment's schema (the search path's, when
/// it sets none) in a read-only session, and keeps those that are some
/// tool's ledger.
pub async fn probe(config: &Config, env: &EnvConfig) -> Probe {
    let target = match super::environments::target(config, env) {
        Ok(t) => t,
        Err(f) => {
            return Probe {
                tables: Vec::new(),
                error: Some(f.message),
            };
        }
    };
    let schema = super::environments::ledger_schema(env, &target);
    let session = match ReadSession::open(&target, schema, env.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            return Probe {
                tables: Vec::new(),
                error: Some(crate::secrets::scrubbed(&e)),
            };
        }
    };
    let sql = match (session.dialect(), schema) {
        (crate::core::sql::Dialect::Sqlite, _) => {
            "SELECT name FROM sqlite_master WHERE type = 'table'".to_owned()
        }
        (crate::core::sql::Dialect::Mysql, s) => format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = {}",
            s.map_or("DATABASE()".to_owned(), crate::core::sql::quote_literal)
        ),
        (_, Some(s)) => format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = {}",
            crate::core::sql::quote_literal(s)
        ),
        (_, None) => "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = ANY (current_schemas(false))"
            .to_owned(),
    };
    match session.query(&sql).await {
        Ok(rows) => {
            let mut tables: Vec<String> = rows
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .filter(|t| !layout::tools_of_table(t).is_empty())
                .collect();
            tables.sort();
            tables.dedup();
            Probe {
                tables,
                error: None,
            }
        }
        Err(e) => Probe {
            tables: Vec::new(),
            error: Some(crate::secrets::scrubbed(e.message())),
        },
    }
}
