//! `envgate apply`: apply pending migrations to a `managed` environment.

use super::{Failure, ReportFormat, exit};
use crate::apply::Progress;
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
    pub waive: crate::core::plan::Waive,
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
    let mut progress = progress();
    let reply = write::apply(
        config,
        &memory,
        env,
        write::Bounds {
            stop_at: args.to.as_deref(),
            waive: args.waive,
            lock_timeout: args.lock_timeout,
        },
        args.format.into(),
        progress.as_mut(),
    )
    .await?;
    drop(progress);
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
        waive: args.waive,
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

/// How `apply` shows its progress on stderr: a bar on a terminal; in a
/// log (CI), one line per migration as it starts and as it ends, with the
/// time it took, so that a long migration is visibly alive.
pub fn progress() -> Box<dyn Progress> {
    if crate::secrets::stderr_is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(Lines::default())
    }
}

/// How a migration ended; `took`: the time to show (ms).
fn outcome_line(m: &Migration, outcome: &Result<StepOutcome, StepError>, took: u64) -> String {
    let label = crate::core::text::label(m.id(), &m.name);
    match outcome {
        Ok(StepOutcome::Applied { .. }) => format!("applied {label} ({})", elapsed(took)),
        Ok(StepOutcome::AlreadyApplied) => format!("skipped {label} (applied meanwhile)"),
        Err(_) => format!("failed  {label} ({})", elapsed(took)),
    }
}

/// `850 ms`, `12.4 s`, `3 min 05 s`.
fn elapsed(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{ms} ms"),
        10_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
    }
}

/// One line per migration start and end, for logs.
#[derive(Default)]
struct Lines {
    at: (usize, usize),
    started: Option<std::time::Instant>,
}

impl Progress for Lines {
    fn start(&mut self, index: usize, total: usize, m: &Migration) {
        self.at = (index + 1, total);
        self.started = Some(std::time::Instant::now());
        crate::errln!(
            "[{}/{}] applying {} …",
            index + 1,
            total,
            crate::core::text::label(m.id(), &m.name)
        );
    }

    fn done(&mut self, m: &Migration, outcome: &Result<StepOutcome, StepError>) {
        // The wall time, ledger write included.
        let took = self
            .started
            .take()
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        crate::errln!(
            "[{}/{}] {}",
            self.at.0,
            self.at.1,
            outcome_line(m, outcome, took)
        );
    }
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
        let took = match outcome {
            Ok(StepOutcome::Applied { execution_ms }) => *execution_ms,
            _ => self.bar.elapsed().as_millis() as u64,
        };
        self.bar.println(outcome_line(m, outcome, took));
        self.bar.inc(1);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // The bar goes before the report is printed: no stale line stays
        // behind it.
        self.bar.finish_and_clear();
    }
}
