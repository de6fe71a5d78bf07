//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, exit};
use crate::config::Config;
use crate::core::matrix;
use crate::ops::environments;
use crate::ops::world::World;
use crate::render;

pub struct StatusArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
    pub verbose: bool,
    pub color: bool,
}

pub async fn run(config: &Config, args: StatusArgs) -> Result<i32, Failure> {
    let started = std::time::Instant::now();
    let envs = environments::select(config, &args.envs)?;
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
    let memory = crate::ops::memory::Memory::open(config, environments::actor(None), false).await?;
    if let Err(e) = memory.track_modes(config, &world.envs, false).await {
        crate::errln!("warning: control store: {e}");
    }
    let remembered = memory.remembered(&world.envs, &world.labels).await;
    let (envs, discovery) = (&world.envs, &world.discovery);
    let inputs = world.inputs(&remembered);
    let matrix = matrix::compute(&discovery.migrations, &inputs);
    memory.after_status(envs, &world.labels, &matrix).await;
    tracing::debug!(elapsed = ?started.elapsed(), "matrix computed");
    let notes = crate::config::mode_notes(envs);
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
    super::print(&text)?;

    Ok(if args.check && matrix.has_problems() {
        exit::CHECK_FAILED
    } else if matrix.any_unreachable() {
        exit::UNREACHABLE
    } else {
        exit::OK
    })
}
