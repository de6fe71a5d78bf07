//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, exit};
use crate::config::Config;
use crate::ops::environments;
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::world::LocalStates;
use crate::render;

pub struct StatusArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
    /// Also compare the live schemas (`--schema`).
    pub schema: bool,
    pub verbose: bool,
    pub color: bool,
}

/// The page's title: the project's directory name.
pub fn page_title(config: &Config) -> String {
    let dir = crate::ops::source::config_dir(config);
    let name = std::fs::canonicalize(&dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if name.is_empty() {
        "envgate status".to_owned()
    } else {
        format!("envgate status · {name}")
    }
}

pub async fn run(config: &Config, args: StatusArgs) -> Result<i32, Failure> {
    let started = std::time::Instant::now();
    let envs = environments::select(config, &args.envs)?;
    let memory = Memory::open(config, environments::actor(None), false).await?;
    let (obs, (text, problems, unreachable)) =
        Observation::status(config, &memory, &LocalStates, envs, |obs, matrix| {
            tracing::debug!(elapsed = ?started.elapsed(), "matrix computed");
            let envs = &obs.world.envs;
            let notes = crate::config::mode_notes(envs);
            // Notices (modes chosen by default, other tools' ledgers) go to
            // stderr in every format: stdout is the document alone, whether
            // it is piped into a job summary, a file or a terminal.
            for n in &notes {
                crate::errln!("{n}");
            }
            if !notes.is_empty() && !matches!(args.format, Format::Json) {
                // A terminal shows both streams: keep the notes apart.
                crate::errln!("");
            }
            let text = match args.format {
                // With the schemas, JSON is written once they are known.
                Format::Json if args.schema => String::new(),
                Format::Json => render::status_json(envs, matrix),
                Format::Markdown => render::status_markdown(envs, matrix, &[]),
                Format::Html if args.schema => String::new(),
                Format::Html => render::status_html(envs, matrix, &page_title(config)),
                Format::Table => render::status_table(envs, matrix, &[], args.color),
            };
            (text, matrix.has_problems(), matrix.any_unreachable())
        })
        .await?;
    tracing::debug!(elapsed = ?started.elapsed(), "rendered");
    if args.verbose {
        for ig in &obs.world.discovery.ignored {
            crate::errln!(
                "ignored {}: {}",
                crate::core::text::visible(&ig.path),
                crate::core::text::visible(&ig.reason)
            );
        }
    }
    for w in &obs.warnings {
        crate::errln!("warning: {w}");
    }
    let mut schema_problems = false;
    let text = if args.schema {
        let matrix = obs.matrix(&obs.world.discovery.migrations);
        let schemas = crate::ops::schema::observe(config, &obs.world, &matrix).await?;
        schema_problems = schemas.iter().any(crate::ops::schema::EnvSchema::differs);
        match args.format {
            Format::Json => render::status_json_with_schema(&obs.world.envs, &matrix, &schemas),
            Format::Html => render::status_html_with_schema(
                &obs.world.envs,
                &matrix,
                &page_title(config),
                &schemas,
            ),
            Format::Markdown => format!(
                "{text}
{}",
                render::schema_markdown(&schemas)
            ),
            Format::Table => format!(
                "{text}
Schema
{}",
                render::schema_text(&schemas)
            ),
        }
    } else {
        text
    };
    super::print(&text)?;

    Ok(if args.check && (problems || schema_problems) {
        exit::CHECK_FAILED
    } else if unreachable {
        exit::UNREACHABLE
    } else {
        exit::OK
    })
}
