//! The apply loop, written once over any [`WriteSession`]: lock, read the
//! ledger under the lock, plan, then one migration at a time, each with its
//! ledger row; stop at the first failure and record it.

use crate::core::ledger::LedgerRow;
use crate::core::matrix::Accepted;
use crate::core::migration::Migration;
use crate::core::mode::Mode;
use crate::core::plan::{self, Blocker, Direction, Plan, PlanError, PlanInput, Warning};
use crate::db::write::{LockProof, Position, RowContext, StepError, StepOutcome, WriteSession};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What to apply, and on whose behalf.
pub struct ApplyRequest<'a> {
    pub env: &'a str,
    pub migrations: &'a [Migration],
    /// Stop after this migration (a version).
    pub stop_at: Option<&'a str>,
    pub waive: crate::core::plan::Waive,
    pub actor: &'a str,
    pub release: Option<&'a str>,
    pub lock_timeout: Duration,
    /// Only these migrations (a release's); `None`: every pending one.
    pub only: Option<&'a HashSet<String>>,
    /// Drift accepted on purpose in this environment.
    pub accepted: Option<&'a HashMap<String, Accepted>>,
}

/// Told about each migration as it runs (a progress bar on a terminal).
pub trait Progress {
    fn start(&mut self, index: usize, total: usize, migration: &Migration);
    fn done(&mut self, migration: &Migration, outcome: &Result<StepOutcome, StepError>);
}

/// No progress display.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: usize, _: usize, _: &Migration) {}
    fn done(&mut self, _: &Migration, _: &Result<StepOutcome, StepError>) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    /// Every planned migration is applied.
    Applied,
    /// Nothing was pending.
    NothingToDo,
    /// A migration failed; nothing after it ran.
    Failed,
    /// Nothing ran: drift, a failed run, the lock, or the connection.
    Refused,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppliedEntry {
    pub version: String,
    pub name: String,
    pub execution_ms: u64,
    pub transaction: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureReport {
    pub version: String,
    pub name: String,
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub error: String,
    pub transaction: bool,
    /// Outside a transaction, statements before the failing one took effect.
    pub partial: bool,
    /// Whether the failure could be written to the ledger.
    pub recorded: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// Drift or failed runs before the target.
    Blocked { blockers: Vec<Blocker> },
    /// A migration must run outside a transaction, which a transaction
    /// pooler cannot do safely.
    NeedsDirectConnection { versions: Vec<String> },
    /// The environment's lock was held too long by someone else.
    LockTimeout { message: String },
    /// The session moved under envgate (a pooler).
    SessionLost { message: String },
    /// A rollback of migrations without down scripts.
    NoDown { files: Vec<String> },
}

#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    pub schema_version: u32,
    pub environment: String,
    pub mode: Mode,
    /// `up` for apply and promote, `down` for rollback.
    pub direction: Direction,
    pub release: Option<String>,
    pub status: ApplyStatus,
    pub applied: Vec<AppliedEntry>,
    /// Applied by another run while this one waited.
    pub skipped: Vec<String>,
    pub failure: Option<FailureReport>,
    pub refusal: Option<Refusal>,
    pub warnings: Vec<Warning>,
    pub applied_by: String,
}

#[derive(Debug)]
pub enum ApplyError {
    Plan(PlanError),
    /// The ledger table cannot be created or read (an unexpected shape,
    /// say); nothing ran.
    Ledger(String),
    /// The database, before any migration ran.
    Database(String),
}

impl ApplyReport {
    fn new(req: &ApplyRequest<'_>, status: ApplyStatus) -> ApplyReport {
        ApplyReport {
            schema_version: 1,
            environment: req.env.to_owned(),
            mode: Mode::Managed,
            direction: Direction::Up,
            release: req.release.map(str::to_owned),
            status,
            applied: Vec::new(),
            skipped: Vec::new(),
            failure: None,
            refusal: None,
            warnings: Vec::new(),
            applied_by: req.actor.to_owned(),
        }
    }

    fn refused(req: &ApplyRequest<'_>, direction: Direction, refusal: Refusal) -> ApplyReport {
        ApplyReport {
            direction,
            refusal: Some(refusal),
            ..ApplyReport::new(req, ApplyStatus::Refused)
        }
    }

    /// Stops a run midway: refused when nothing was done yet, else failed.
    fn stop(&mut self, refusal: Refusal) {
        self.status = if self.applied.is_empty() {
            ApplyStatus::Refused
        } else {
            ApplyStatus::Failed
        };
        self.refusal = Some(refusal);
    }
}

/// Applies the pending migrations of one environment.
pub async fn run(
    session: &mut WriteSession,
    req: &ApplyRequest<'_>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    execute(session, req, Work::Apply, progress).await
}

/// Reverts the migrations of `ids` applied in the environment, newest
/// first, each with the removal of its ledger row. Refused before anything
/// runs when one of them has no down script.
pub async fn rollback(
    session: &mut WriteSession,
    req: &ApplyRequest<'_>,
    ids: &HashSet<String>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    execute(session, req, Work::Rollback(ids), progress).await
}

#[derive(Clone, Copy)]
enum Work<'a> {
    Apply,
    Rollback(&'a HashSet<String>),
}

/// Takes the lock, makes sure the ledger exists, does the work under the
/// lock, and releases it.
async fn execute(
    session: &mut WriteSession,
    req: &ApplyRequest<'_>,
    work: Work<'_>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    let direction = match work {
        Work::Apply => Direction::Up,
        Work::Rollback(_) => Direction::Down,
    };
    let lock = match session.lock(req.lock_timeout).await {
        Ok(lock) => lock,
        Err(StepError::LockTimeout(message)) => {
            return Ok(ApplyReport::refused(
                req,
                direction,
                Refusal::LockTimeout { message },
            ));
        }
        Err(e) => return Err(ApplyError::Database(step_error_text(&e))),
    };
    let result = match session.ensure_ledger(&lock).await {
        Ok(()) => locked(session, &lock, req, work, progress).await,
        Err(e) => Err(ApplyError::Ledger(e)),
    };
    session.unlock(lock).await;
    result
}

/// Reads the ledger under the lock, plans, checks what would refuse, then
/// runs the steps.
async fn locked(
    session: &mut WriteSession,
    lock: &LockProof,
    req: &ApplyRequest<'_>,
    work: Work<'_>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    let ledger: Vec<LedgerRow> = session
        .read_ledger(lock)
        .await
        .map_err(ApplyError::Ledger)?;
    let (plan, direction) = match work {
        Work::Apply => (
            plan::plan(&PlanInput {
                env: req.env,
                mode: Mode::Managed,
                dialect: session.dialect(),
                migrations: req.migrations,
                ledger: &ledger,
                stop_at: req.stop_at,
                waive: req.waive,
                only: req.only,
                accepted: req.accepted,
            })
            .map_err(ApplyError::Plan)?,
            Direction::Up,
        ),
        Work::Rollback(ids) => (
            plan::rollback(
                req.env,
                Mode::Managed,
                session.dialect(),
                req.migrations,
                &ledger,
                ids,
            ),
            Direction::Down,
        ),
    };
    let refusal = if !plan.blockers.is_empty() {
        Some(Refusal::Blocked {
            blockers: plan.blockers.clone(),
        })
    } else if direction == Direction::Down && !plan.without_down().is_empty() {
        Some(Refusal::NoDown {
            files: plan.without_down().iter().map(|s| s.to_string()).collect(),
        })
    } else if session.pooled() && plan.needs_session() {
        Some(Refusal::NeedsDirectConnection {
            versions: plan
                .steps
                .iter()
                .filter(|s| s.no_transaction.is_some())
                .map(|s| s.migration.id().to_owned())
                .collect(),
        })
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return Ok(ApplyReport {
            warnings: plan.warnings.clone(),
            ..ApplyReport::refused(req, direction, refusal)
        });
    }
    let mut report = ApplyReport {
        direction,
        warnings: plan.warnings.clone(),
        ..ApplyReport::new(
            req,
            if plan.steps.is_empty() {
                ApplyStatus::NothingToDo
            } else {
                ApplyStatus::Applied
            },
        )
    };
    run_steps(session, lock, req, &plan, direction, &mut report, progress).await;
    Ok(report)
}

/// Runs the plan's steps one at a time into `report`, stopping at the
/// first that fails (an apply records the failure in the ledger).
async fn run_steps(
    session: &mut WriteSession,
    lock: &LockProof,
    req: &ApplyRequest<'_>,
    plan: &Plan<'_>,
    direction: Direction,
    report: &mut ApplyReport,
    progress: &mut dyn Progress,
) {
    let ctx = RowContext {
        applied_by: req.actor,
        release: req.release,
    };
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let m = step.migration;
        let transactional = step.no_transaction.is_none();
        let file = match (direction, &m.down) {
            (Direction::Down, Some(down)) => down,
            _ => &m.up,
        };
        progress.start(i, total, m);
        let outcome = match direction {
            Direction::Up => session.apply(lock, m, transactional, &ctx).await,
            Direction::Down => session.revert(lock, m, &file.sql, transactional).await,
        };
        progress.done(m, &outcome);
        let (error, position, partial) = match outcome {
            Ok(StepOutcome::Applied { execution_ms }) => {
                report.applied.push(AppliedEntry {
                    version: m.id().to_owned(),
                    name: m.name.clone(),
                    execution_ms,
                    transaction: transactional,
                });
                continue;
            }
            Ok(StepOutcome::AlreadyApplied) => {
                report.skipped.push(m.id().to_owned());
                continue;
            }
            Err(StepError::LockTimeout(message)) => {
                report.stop(Refusal::LockTimeout { message });
                return;
            }
            Err(StepError::SessionLost(message)) => {
                report.stop(Refusal::SessionLost { message });
                return;
            }
            Err(StepError::Migration {
                message,
                position,
                partial,
            }) => (message, position, partial),
            Err(StepError::Database(message)) => (message, None, false),
        };
        let recorded = match direction {
            Direction::Up => {
                let located = match &position {
                    Some(Position { line, column }) => {
                        format!("{}:{line}:{column}: {error}", file.path)
                    }
                    None => format!("{}: {error}", file.path),
                };
                session
                    .record_failure(lock, m, &located, &ctx)
                    .await
                    .is_ok()
            }
            // A failed revert leaves the ledger row: the migration is still
            // recorded as applied, and the report says what happened.
            Direction::Down => false,
        };
        report.status = ApplyStatus::Failed;
        report.failure = Some(FailureReport {
            version: m.id().to_owned(),
            name: m.name.clone(),
            file: file.path.clone(),
            line: position.as_ref().map(|p| p.line),
            column: position.as_ref().map(|p| p.column),
            error,
            transaction: transactional,
            partial,
            recorded,
        });
        return;
    }
}

fn step_error_text(e: &StepError) -> String {
    match e {
        StepError::Migration { message, .. }
        | StepError::LockTimeout(message)
        | StepError::SessionLost(message)
        | StepError::Database(message) => message.clone(),
    }
}
