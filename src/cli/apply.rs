//! `envgate apply`: apply pending migrations to a `managed` environment.

use super::{Failure, ReportFormat, exit};
use crate::apply::{self, Progress};
use crate::config::Config;
use crate::core::migration::Migration;
use crate::core::plan::{PlanInput, plan};
use crate::db::write::{StepError, StepOutcome};
use crate::ops::memory::Memory;
use crate::ops::{environments, ledgers, write};
use crate::{render, report};
use std::time::Duration;

pub struct ApplyArgs {
    pub env: String,
    pub to: Option<String>,
    pub dry_run: bool,
    pub allow_drift: bool,
    pub actor: Option<String>,
    pub lock_timeout: Option<Duration>,
    pub format: ReportFormat,
}

pub async fn run(config: &Config, args: ApplyArgs) -> Result<i32, Failure> {
    let env = environments::env(config, &args.env)?;
    if args.dry_run {
        // The mode decides before anything connects.
        env.write_access().map_err(|_| Failure {
            code: exit::REFUSED,
            message: render::refused_mode(env)
                .trim_end()
                .trim_start_matches("refused: ")
                .to_owned(),
        })?;
        return dry_run(config, &args).await;
    }
    let memory = Memory::open(config, environments::actor(args.actor.as_deref()), true).await?;
    let show_progress = args.format == ReportFormat::Table && crate::secrets::stderr_is_terminal();
    let mut bar;
    let mut quiet = apply::Quiet;
    let progress: &mut dyn Progress = if show_progress {
        bar = Bar::new();
        &mut bar
    } else {
        &mut quiet
    };
    let reply = write::apply(
        config,
        &memory,
        env,
        write::Bounds {
            stop_at: args.to.as_deref(),
            allow_drift: args.allow_drift,
            lock_timeout: args.lock_timeout,
        },
        args.format.into(),
        progress,
    )
    .await?;
    super::show(reply)
}

/// `--dry-run`: the plan, from a read-only session.
async fn dry_run(config: &Config, args: &ApplyArgs) -> Result<i32, Failure> {
    let env = environments::env(config, &args.env)?;
    let inputs = ledgers::plan_inputs(config, env).await?;
    let p = plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect: environments::dialect(&inputs.target),
        migrations: &inputs.discovery.migrations,
        ledger: &inputs.ledger,
        stop_at: args.to.as_deref(),
        allow_drift: args.allow_drift,
        only: None,
        accepted: None,
    })
    .map_err(|e| Failure::usage(e.to_string()))?;
    let r = report::plan_report(env, &p);
    let text = match args.format {
        ReportFormat::Table => format!("dry run: nothing is applied.\n{}", render::plan_text(&r)),
        ReportFormat::Json => render::json(&r),
    };
    super::print(&text)?;
    Ok(if p.blockers.is_empty() {
        exit::OK
    } else {
        exit::REFUSED
    })
}

/// Migration n of N, its name and the time spent, on a terminal.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new() -> Bar {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("[{pos}/{len}] {msg} {elapsed}")
                .expect("valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start(&mut self, index: usize, total: usize, m: &Migration) {
        self.bar.set_length(total as u64);
        self.bar.set_position(index as u64);
        self.bar
            .set_message(crate::core::text::label(m.id(), &m.name));
        self.bar.reset_elapsed();
    }

    fn done(&mut self, m: &Migration, outcome: &Result<StepOutcome, StepError>) {
        let line = match outcome {
            Ok(StepOutcome::Applied { execution_ms }) => {
                format!(
                    "applied {} ({execution_ms} ms)",
                    crate::core::text::label(m.id(), &m.name)
                )
            }
            Ok(StepOutcome::AlreadyApplied) => {
                format!(
                    "skipped {} (applied meanwhile)",
                    crate::core::text::label(m.id(), &m.name)
                )
            }
            Err(_) => format!("failed  {}", crate::core::text::label(m.id(), &m.name)),
        };
        self.bar.println(line);
        self.bar.inc(1);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
