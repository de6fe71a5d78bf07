//! `envgate export`: write the SQL bundle that brings an environment to a
//! target, for the team's own pipeline to apply.

use super::memory::{Memory, now};
use super::{Failure, ReportFormat, common, exit};
use crate::config::{Config, EnvConfig};
use crate::core::audit::Entry;
use crate::core::bundle::{self, Bundle, BundleInput};
use crate::core::plan::Direction;
use crate::core::plan::{Plan, PlanInput, plan};
use crate::core::sql::Dialect;
use crate::render;
use crate::report::{BundleFiles, ExportReport};
use std::path::{Path, PathBuf};

pub struct ExportArgs {
    pub env: String,
    pub to: Option<String>,
    pub out: Option<PathBuf>,
    pub allow_drift: bool,
    pub actor: Option<String>,
    pub format: ReportFormat,
}

pub async fn run(config: &Config, args: ExportArgs) -> Result<i32, Failure> {
    let env = common::env(config, &args.env)?;
    common::needs_envgate_ledger(env, "export")?;
    let memory = Memory::open(config, common::actor(args.actor.as_deref()), true).await?;
    memory
        .track_modes(config, &[env])
        .await
        .map_err(|e| Failure::internal(format!("control store: {e}")))?;
    let entry = memory.entry("export", Some(&env.name), "ok");
    let inputs = common::plan_inputs(config, env).await?;
    let dialect = common::dialect(&inputs.target);
    let p = plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect,
        migrations: &inputs.discovery.migrations,
        ledger: &inputs.ledger,
        target: args.to.as_deref(),
        allow_drift: args.allow_drift,
        only: None,
    })
    .map_err(|e| Failure::usage(e.to_string()))?;
    let mut report = ExportReport {
        schema_version: 1,
        environment: &env.name,
        mode: env.mode,
        status: "nothing_to_do",
        bundle: None,
        blockers: &p.blockers,
        warnings: &p.warnings,
    };
    let code = if !p.blockers.is_empty() {
        report.status = "refused";
        let versions = p.blockers.iter().map(|b| b.version().to_owned()).collect();
        memory
            .audit(Entry {
                migrations: versions,
                outcome: "refused".to_owned(),
                error: Some(format!(
                    "drift or failed runs before the target: {}",
                    p.blockers
                        .iter()
                        .map(|b| b.summary())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                ..entry
            })
            .await?;
        exit::REFUSED
    } else if p.steps.is_empty() {
        exit::OK
    } else {
        let b = build(env, &p, Direction::Up, dialect, None, &memory.actor);
        let files = write_bundle(&b, args.out.as_deref(), dialect)?;
        memory.audit(exported(entry, &b)).await?;
        report.status = "exported";
        report.bundle = Some(files);
        exit::OK
    };
    let text = match args.format {
        ReportFormat::Table => render::export_text(&report),
        ReportFormat::Json => render::json(&report),
    };
    common::print(&inputs.redactor, &text)?;
    Ok(code)
}

/// An environment's bundle for a plan, made now by `actor`.
pub fn build(
    env: &EnvConfig,
    plan: &Plan<'_>,
    direction: Direction,
    dialect: Dialect,
    release: Option<&str>,
    actor: &str,
) -> Bundle {
    bundle::build(&BundleInput {
        plan,
        direction,
        dialect,
        schema: env.schema.as_deref(),
        envgate_version: env!("CARGO_PKG_VERSION"),
        generated_at: &now(),
        generated_by: actor,
        release,
    })
}

/// The audit record of a bundle written (after what `entry` already says).
pub fn exported(entry: Entry, b: &Bundle) -> Entry {
    let written = format!("{}.sql, bundle {}", b.stem, b.manifest.bundle_id);
    Entry {
        migrations: b
            .manifest
            .migrations
            .iter()
            .map(|m| m.version.clone())
            .collect(),
        bundle_sha256: Some(b.manifest.bundle_sha256.clone()),
        outcome: "exported".to_owned(),
        details: Some(match entry.details {
            Some(d) => format!("{d}; {written}"),
            None => written,
        }),
        ..entry
    }
}

/// Writes a bundle and its manifest into `out` (default: the current
/// directory), each atomically, and says how to apply it.
pub fn write_bundle(
    b: &Bundle,
    out: Option<&Path>,
    dialect: Dialect,
) -> Result<BundleFiles, Failure> {
    let out = out.unwrap_or(Path::new("."));
    let sql_path = out.join(format!("{}.sql", b.stem));
    let manifest_path = out.join(format!("{}.manifest.json", b.stem));
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::usage(format!("{}: cannot create: {e}", out.display())))?;
    write_atomically(&sql_path, b.sql.as_bytes())?;
    write_atomically(&manifest_path, render::json(&b.manifest).as_bytes())?;
    let apply_with = match dialect {
        Dialect::Postgres => format!(
            "psql -X -v ON_ERROR_STOP=1 -f {} \"$DATABASE_URL\"",
            sql_path.display()
        ),
        Dialect::Sqlite => {
            format!("sqlite3 -bail path/to/database.db < {}", sql_path.display())
        }
    };
    Ok(BundleFiles {
        bundle_id: b.manifest.bundle_id.clone(),
        sql: sql_path.display().to_string(),
        manifest: manifest_path.display().to_string(),
        sha256: b.manifest.bundle_sha256.clone(),
        from: b.manifest.from.clone(),
        to: b.manifest.to.clone(),
        migrations: b.manifest.migrations.len(),
        apply_with,
    })
}

/// Writes a file so that readers see either the old content or the whole
/// new one: a temporary file beside it, flushed, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let fail =
        |e: std::io::Error| Failure::internal(format!("{}: cannot write: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
