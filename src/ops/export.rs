//! Exporting: the bundle that brings an export_only environment forward,
//! written (the SQL file and its manifest, each atomically) and audited.

use super::memory::{Memory, now};
use super::observe::Observation;
use super::world::Local;
use super::{Failure, Output, Reply, environments, exit, write};
use crate::config::{Config, EnvConfig};
use crate::core::audit::Entry;
use crate::core::bundle::{self, Bundle, BundleInput};
use crate::core::plan::{Direction, Plan};
use crate::core::plan::{PlanInput, plan};
use crate::core::sql::Dialect;
use crate::render;
use crate::report::BundleFiles;
use crate::report::ExportReport;
use std::path::Path;

/// An environment's bundle for a plan, made now by `actor`.
pub fn build(
    env: &EnvConfig,
    plan: &Plan<'_>,
    direction: Direction,
    dialect: Dialect,
    release: Option<&str>,
    actor: &str,
) -> Result<Bundle, Failure> {
    Ok(bundle::build(&BundleInput {
        plan,
        direction,
        dialect,
        schema: env.schema.as_deref(),
        envgate_version: env!("CARGO_PKG_VERSION"),
        generated_at: &now(),
        generated_by: actor,
        release,
    }))
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

/// How a bundle's files are named and applied, without writing them
/// (the bot attaches them to a release).
pub fn describe(b: &Bundle, dir: Option<&Path>, dialect: Dialect) -> BundleFiles {
    let dir = dir.unwrap_or(Path::new(""));
    let sql_path = dir.join(format!("{}.sql", b.stem));
    let manifest_path = dir.join(format!("{}.manifest.json", b.stem));
    let apply_with = match dialect {
        Dialect::Postgres => format!(
            "psql -X -v ON_ERROR_STOP=1 -f {} \"$DATABASE_URL\"",
            sql_path.display()
        ),
        Dialect::Sqlite => {
            format!("sqlite3 -bail path/to/database.db < {}", sql_path.display())
        }
        Dialect::Mysql => format!(
            "mariadb --abort-source-on-error database < {}",
            sql_path.display()
        ),
    };
    BundleFiles {
        bundle_id: b.manifest.bundle_id.clone(),
        sql: sql_path.display().to_string(),
        manifest: manifest_path.display().to_string(),
        sha256: b.manifest.bundle_sha256.clone(),
        from: b.manifest.from.clone(),
        to: b.manifest.to.clone(),
        migrations: b.manifest.migrations.len(),
        apply_with,
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
    let files = describe(b, Some(out), dialect);
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::usage(format!("{}: cannot create: {e}", out.display())))?;
    write_atomically(Path::new(&files.sql), b.sql.as_bytes())?;
    write_atomically(
        Path::new(&files.manifest),
        render::json(&b.manifest).as_bytes(),
    )?;
    Ok(files)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    super::atomic_file::write(path, bytes)
        .map_err(|e| Failure::internal(format!("{}: cannot write: {e}", path.display())))
}

/// `envgate export` (and `envgate ci --command export`): the bundle that
/// brings an environment to `stop_at` (everything pending without it),
/// written with its manifest into `out`, audited; refusals audited too.
pub async fn export(
    config: &Config,
    memory: &Memory,
    env: &EnvConfig,
    stop_at: Option<&str>,
    waive: crate::core::plan::Waive,
    out: Option<&Path>,
    output: Output,
) -> Result<Reply, Failure> {
    let entry = memory.entry("export", Some(&env.name), "ok");
    if let Err(f) = environments::needs_envgate_ledger(env, "export") {
        return Err(write::refuse(memory, entry, f.message).await);
    }
    let obs = match Observation::observe(config, memory, &Local, vec![env]).await {
        Ok(o) => o,
        Err(f) => return Err(write::audit_failure(memory, entry, f).await),
    };
    let (target, ledger) = match (obs.world.target(0), &obs.world.ledgers[0]) {
        (Ok(t), Ok(l)) => (t, l),
        (Err(f), _) => return Err(write::audit_failure(memory, entry, f).await),
        (_, Err(e)) => {
            let f = Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}' could not be read: {e}",
                env.name
            )));
            return Err(write::audit_failure(memory, entry, f).await);
        }
    };
    let dialect = environments::dialect(target);
    let p = plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect,
        migrations: &obs.world.discovery.migrations,
        ledger,
        stop_at,
        waive,
        only: None,
        accepted: obs.remembered.accepted[0].as_ref(),
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
        let b = match build(env, &p, Direction::Up, dialect, None, &memory.actor) {
            Ok(b) => b,
            Err(f) => return Err(write::refuse(memory, entry, f.message).await),
        };
        // Remembered first: a bundle written is always recognised later.
        memory.remember_bundle(&b).await?;
        let files = write_bundle(&b, out, dialect)?;
        if let Err(f) = memory.audit(exported(entry, &b)).await {
            // Nothing half-done: no bundle without its audit record.
            let _ = std::fs::remove_file(&files.sql);
            let _ = std::fs::remove_file(&files.manifest);
            return Err(f);
        }
        report.status = "exported";
        report.bundle = Some(files);
        exit::OK
    };
    let text = match output {
        Output::Text => render::export_text(&report),
        Output::Json => render::json(&report),
    };
    Ok(Reply::text(crate::secrets::scrubbed(&text), code).warned(&obs.warnings))
}
