//! `envgate export`: write the SQL bundle that brings an environment to a
//! target, for the team's own pipeline to apply.

use super::{Failure, ReportFormat, exit};
use crate::config::Config;
use crate::core::audit::Entry;
use crate::core::plan::{Direction, PlanInput, plan};
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::world::Local;
use crate::ops::{environments, export, write};
use crate::render;
use crate::report::ExportReport;
use std::path::PathBuf;

pub struct ExportArgs {
    pub env: String,
    pub to: Option<String>,
    pub out: Option<PathBuf>,
    pub allow_drift: bool,
    pub actor: Option<String>,
    pub format: ReportFormat,
}

pub async fn run(config: &Config, args: ExportArgs) -> Result<i32, Failure> {
    let env = environments::env(config, &args.env)?;
    let memory = Memory::open(config, environments::actor(args.actor.as_deref()), true).await?;
    let entry = memory.entry("export", Some(&env.name), "ok");
    if let Err(f) = environments::needs_envgate_ledger(env, "export") {
        return Err(write::refuse(&memory, entry, f.message).await);
    }
    let obs = match Observation::observe(config, &memory, &Local, vec![env]).await {
        Ok(o) => o,
        Err(f) => return Err(write::audit_failure(&memory, entry, f).await),
    };
    for w in &obs.warnings {
        crate::errln!("warning: {w}");
    }
    let (target, ledger) = match (obs.world.target(0), &obs.world.ledgers[0]) {
        (Ok(t), Ok(l)) => (t, l),
        (Err(f), _) => return Err(write::audit_failure(&memory, entry, f).await),
        (_, Err(e)) => {
            let f = Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}' could not be read: {e}",
                env.name
            )));
            return Err(write::audit_failure(&memory, entry, f).await);
        }
    };
    let dialect = environments::dialect(target);
    let p = plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect,
        migrations: &obs.world.discovery.migrations,
        ledger,
        stop_at: args.to.as_deref(),
        allow_drift: args.allow_drift,
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
        let b = export::build(env, &p, Direction::Up, dialect, None, &memory.actor);
        let files = export::write_bundle(&b, args.out.as_deref(), dialect)?;
        if let Err(f) = memory.audit(export::exported(entry, &b)).await {
            // Nothing half-done: no bundle without its audit record.
            let _ = std::fs::remove_file(&files.sql);
            let _ = std::fs::remove_file(&files.manifest);
            return Err(f);
        }
        report.status = "exported";
        report.bundle = Some(files);
        exit::OK
    };
    let text = match args.format {
        ReportFormat::Table => render::export_text(&report),
        ReportFormat::Json => render::json(&report),
    };
    super::print(&text)?;
    Ok(code)
}
