//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, common, exit};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::matrix::{self, EnvLedger};
use crate::core::mode::{Mode, ModeSource};
use crate::core::redact::Redactor;
use crate::render;
use std::io::Write;

pub struct StatusArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
    pub verbose: bool,
    pub color: bool,
}

/// The notices about modes chosen by default: one line per environment
/// detected as staging or production, one for environments that read
/// another tool's ledger, one for the rest.
pub fn mode_notes(envs: &[&EnvConfig]) -> Vec<String> {
    let defaulted = envs.iter().filter(|e| e.mode_source == ModeSource::Default);
    let mut notes: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ExportOnly)
        .map(|e| {
            format!(
                "detected '{}': mode export_only (set `mode` to override)",
                e.name
            )
        })
        .collect();
    let reconciled: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ReconcileOnly)
        .map(|e| format!("{} ({})", e.name, e.ledger))
        .collect();
    if !reconciled.is_empty() {
        notes.push(format!(
            "reading other tools' ledgers, never writing: {}: mode reconcile_only",
            reconciled.join(", ")
        ));
    }
    let managed: Vec<&str> = defaulted
        .filter(|e| e.mode == Mode::Managed)
        .map(|e| e.name.as_str())
        .collect();
    if !managed.is_empty() {
        notes.push(format!(
            "no mode set for {}: mode managed",
            managed.join(", ")
        ));
    }
    notes
}

pub async fn run(config: &Config, args: StatusArgs) -> Result<i32, Failure> {
    let started = std::time::Instant::now();
    let envs = common::select(config, &args.envs)?;
    let world = World::read(config, envs).await?;
    if args.verbose {
        let mut err = std::io::stderr().lock();
        for ig in &world.discovery.ignored {
            let _ = writeln!(err, "ignored {}: {}", ig.path, ig.reason);
        }
    }
    let memory = super::memory::Memory::open(config, common::actor(None), false).await?;
    if let Err(e) = memory.track_modes(config, &world.envs).await {
        eprintln!("warning: control store: {e}");
    }
    let remembered = memory.remembered(&world.envs, &world.labels).await;
    let (envs, redactor, discovery) = (&world.envs, &world.redactor, &world.discovery);
    let inputs = world.inputs(&remembered);
    let matrix = matrix::compute(&discovery.migrations, &inputs);
    memory.after_status(envs, &world.labels, &matrix).await;
    tracing::debug!(elapsed = ?started.elapsed(), "matrix computed");
    let notes = mode_notes(envs);
    let text = match args.format {
        Format::Json => {
            let mut err = std::io::stderr().lock();
            for n in &notes {
                let _ = writeln!(err, "{n}");
            }
            render::status_json(envs, &matrix)
        }
        Format::Markdown => render::status_markdown(envs, &matrix, &notes),
        Format::Table => render::status_table(envs, &matrix, &notes, args.color),
    };
    tracing::debug!(elapsed = ?started.elapsed(), "rendered");
    let text = redactor.redact(&text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("writing the output: {e}")))?;

    Ok(if args.check && matrix.has_problems() {
        exit::CHECK_FAILED
    } else if matrix.any_unreachable() {
        exit::UNREACHABLE
    } else {
        exit::OK
    })
}

/// Every selected environment's ledger next to the repository's migrations:
/// what `status`, `release show` and `promote` start from.
pub struct World<'c> {
    pub envs: Vec<&'c EnvConfig>,
    pub targets: Vec<crate::target::Target>,
    /// Each target's identity in the control store.
    pub labels: Vec<String>,
    pub discovery: crate::core::migration::Discovery,
    /// Each environment's ledger rows, or why it could not be read
    /// (credentials masked).
    pub ledgers: Vec<Result<Vec<LedgerRow>, String>>,
    pub redactor: Redactor,
}

impl<'c> World<'c> {
    /// Reads the environments concurrently while discovering migrations.
    pub async fn read(config: &Config, envs: Vec<&'c EnvConfig>) -> Result<World<'c>, Failure> {
        let mut redactor = Redactor::new();
        let targets = envs
            .iter()
            .map(|env| common::target(config, env, &mut redactor))
            .collect::<Result<Vec<_>, _>>()?;
        // Discovery (file system + hashing) runs while the databases answer.
        let started = std::time::Instant::now();
        let for_discovery = config.clone();
        // Liquibase skips changes meant for other databases: the dialect
        // matters when all environments share one.
        let dialects: Vec<_> = targets.iter().map(common::dialect).collect();
        let dialect = dialects
            .first()
            .copied()
            .filter(|d| dialects.iter().all(|x| x == d));
        let discovery = tokio::task::spawn_blocking(move || {
            let d = common::discover(&for_discovery, dialect);
            tracing::debug!(elapsed = ?started.elapsed(), "migrations discovered");
            d
        });
        let reads =
            futures::future::join_all(envs.iter().zip(&targets).map(|(env, target)| async move {
                let rows = common::read_ledger(env, target).await;
                tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "ledger read");
                rows
            }));
        let (discovery, ledgers) = tokio::join!(discovery, reads);
        let discovery = discovery
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(Failure::usage)?;
        let ledgers = ledgers
            .into_iter()
            .zip(&targets)
            .zip(&envs)
            .map(|((r, t), env)| {
                r.and_then(|raw| common::ledger_rows(env, raw, &discovery.migrations))
                    .map_err(|e| redactor.redact(&format!("{}: {e}", common::target_label(t))))
            })
            .collect();
        let labels = envs
            .iter()
            .zip(&targets)
            .map(|(env, t)| common::target_identity(env, t))
            .collect();
        Ok(World {
            envs,
            targets,
            labels,
            discovery,
            ledgers,
            redactor,
        })
    }

    /// The matrix inputs, with what the control store remembers.
    pub fn inputs<'a>(&'a self, remembered: &'a super::memory::Remembered) -> Vec<EnvLedger<'a>> {
        self.envs
            .iter()
            .zip(&self.ledgers)
            .enumerate()
            .map(|(i, (env, r))| EnvLedger {
                observed: remembered.observed[i].as_ref(),
                accepted: remembered.accepted[i].as_ref(),
                ..EnvLedger::new(&env.name, r.as_deref().map_err(String::as_str))
            })
            .collect()
    }
}
