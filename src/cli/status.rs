//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, exit};
use crate::config::{Config, EnvConfig};
use crate::core::matrix;
use crate::core::mode::{Mode, ModeSource};
use crate::ops::common;
use crate::ops::world::World;
use crate::render;

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
        for ig in &world.discovery.ignored {
            crate::errln!(
                "ignored {}: {}",
                crate::core::text::visible(&ig.path),
                crate::core::text::visible(&ig.reason)
            );
        }
    }
    let memory = crate::ops::memory::Memory::open(config, common::actor(None), false).await?;
    if let Err(e) = memory.track_modes(config, &world.envs, false).await {
        crate::errln!("warning: control store: {e}");
    }
    let remembered = memory.remembered(&world.envs, &world.labels).await;
    let (envs, discovery) = (&world.envs, &world.discovery);
    let inputs = world.inputs(&remembered);
    let matrix = matrix::compute(&discovery.migrations, &inputs);
    memory.after_status(envs, &world.labels, &matrix).await;
    tracing::debug!(elapsed = ?started.elapsed(), "matrix computed");
    let notes = mode_notes(envs);
    let text = match args.format {
        Format::Json => {
            for n in &notes {
                crate::errln!("{n}");
            }
            render::status_json(envs, &matrix)
        }
        Format::Markdown => render::status_markdown(envs, &matrix, &notes),
        Format::Table => render::status_table(envs, &matrix, &notes, args.color),
    };
    tracing::debug!(elapsed = ?started.elapsed(), "rendered");
    common::print(&text)?;

    Ok(if args.check && matrix.has_problems() {
        exit::CHECK_FAILED
    } else if matrix.any_unreachable() {
        exit::UNREACHABLE
    } else {
        exit::OK
    })
}
