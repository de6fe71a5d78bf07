//! `envgate lint [FILES]`: squawk's rules and envgate's own on migrations.

use super::{Failure, Format, exit};
use crate::config::Config;
use crate::core::lint::Severity;
use crate::ops::environments;
use crate::ops::lint;
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::world::LocalStates;
use crate::render;

pub struct LintArgs {
    pub files: Vec<String>,
    pub all: bool,
    pub offline: bool,
    pub format: Format,
    /// The least severity that fails the run; None: never.
    pub fail_on: Option<Severity>,
}

pub async fn run(config: &Config, args: LintArgs) -> Result<i32, Failure> {
    let observed = if args.offline {
        None
    } else {
        let memory = Memory::open(config, environments::actor(None), false).await?;
        match Observation::observe(
            config,
            &memory,
            &LocalStates,
            config.environments.iter().collect(),
        )
        .await
        {
            Ok(obs) => Some(obs),
            Err(f) if f.code == exit::USAGE && f.message.contains("environment '") => {
                crate::errln!(
                    "warning: environments not read ({}): edits to applied migrations are not checked; --offline skips reading them",
                    f.message
                );
                None
            }
            Err(f) => return Err(f),
        }
    };
    let (findings, linted) = match &observed {
        Some(obs) => {
            for w in &obs.warnings {
                crate::errln!("warning: {w}");
            }
            let migrations = &obs.world.discovery.migrations;
            let matrix = obs.matrix(migrations);
            let selected = if !args.files.is_empty() {
                lint::by_paths(migrations, &args.files).map_err(Failure::usage)?
            } else if args.all {
                migrations.iter().collect()
            } else {
                lint::unapplied(migrations, &matrix)
            };
            (
                lint::findings(config, &obs.world, Some(&matrix), &selected),
                selected.len(),
            )
        }
        None => {
            let migrations = lint::discover(config)?;
            let selected = if args.files.is_empty() {
                migrations.iter().collect()
            } else {
                lint::by_paths(&migrations, &args.files).map_err(Failure::usage)?
            };
            let targets: Vec<Result<crate::db::Target, String>> = config
                .environments
                .iter()
                .map(|e| environments::target(config, e).map_err(|f| f.message))
                .collect();
            let inputs = crate::core::lint::plain(
                &selected,
                config.format == crate::core::tools::Tool::Envgate,
            );
            (
                crate::core::lint::lint(&inputs, lint::dialect(&targets), &config.lint),
                selected.len(),
            )
        }
    };
    let text = match args.format {
        Format::Json => render::lint_json(&findings, linted),
        Format::Html => {
            return Err(Failure::usage(format!(
                "--format html: only `envgate status` writes a page; `{}` writes table, json or markdown",
                "lint"
            )));
        }
        Format::Markdown => render::lint_markdown(&findings, linted, ""),
        Format::Table => render::lint_text(&findings, linted),
    };
    super::print(&text)?;
    let failing = args
        .fail_on
        .is_some_and(|least| findings.iter().any(|f| f.severity >= least));
    Ok(if failing {
        exit::CHECK_FAILED
    } else {
        exit::OK
    })
}
