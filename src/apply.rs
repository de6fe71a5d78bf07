//! The apply loop, written once over any [`WriteSession`]: lock, read the
//! ledger under the lock, plan, then one migration at a time, each with its
//! ledger row; stop at the first failure and record it.

use crate::core::ledger::LedgerRow;
use crate::core::migration::Migration;
use crate::core::mode::Mode;
use crate::core::plan::{self, Blocker, PlanError, PlanInput, Warning};
use crate::target::write::{Position, RowContext, StepError, StepOutcome, WriteSession};
use serde::Serialize;
use std::time::Duration;

/// What to apply, and on whose behalf.
pub struct ApplyRequest<'a> {
    pub env: &'a str,
    pub migrations: &'a [Migration],
    pub target: Option<&'a str>,
    pub allow_drift: bool,
    pub actor: &'a str,
    pub release: Option<&'a str>,
    pub lock_timeout: Duration,
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
}

#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    pub schema_version: u32,
    pub environment: String,
    pub mode: Mode,
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
            status,
            applied: Vec::new(),
            skipped: Vec::new(),
            failure: None,
            refusal: None,
            warnings: Vec::new(),
            applied_by: req.actor.to_owned(),
        }
    }

    fn refused(req: &ApplyRequest<'_>, refusal: Refusal) -> ApplyReport {
        ApplyReport {
            refusal: Some(refusal),
            ..ApplyReport::new(req, ApplyStatus::Refused)
        }
    }
}

/// Applies the pending migrations of one environment.
pub async fn run(
    session: &mut WriteSession,
    req: &ApplyRequest<'_>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    let lock = match session.lock(req.lock_timeout).await {
        Ok(lock) => lock,
        Err(StepError::LockTimeout(message)) => {
            return Ok(ApplyReport::refused(req, Refusal::LockTimeout { message }));
        }
        Err(e) => return Err(ApplyError::Database(step_error_text(&e))),
    };
    let result = match session.ensure_ledger(&lock).await {
        Ok(()) => run_locked(session, &lock, req, progress).await,
        Err(e) => Err(ApplyError::Ledger(e)),
    };
    session.unlock(lock).await;
    result
}

async fn run_locked(
    session: &mut WriteSession,
    lock: &crate::target::write::LockProof,
    req: &ApplyRequest<'_>,
    progress: &mut dyn Progress,
) -> Result<ApplyReport, ApplyError> {
    let ledger: Vec<LedgerRow> = session
        .read_ledger(lock)
        .await
        .map_err(ApplyError::Ledger)?;
    let plan = plan::plan(&PlanInput {
        env: req.env,
        mode: Mode::Managed,
        dialect: session.dialect(),
        migrations: req.migrations,
        ledger: &ledger,
        target: req.target,
        allow_drift: req.allow_drift,
    })
    .map_err(ApplyError::Plan)?;
    if !plan.blockers.is_empty() {
        return Ok(ApplyReport {
            warnings: plan.warnings.clone(),
            ..ApplyReport::refused(
                req,
                Refusal::Blocked {
                    blockers: plan.blockers.clone(),
                },
            )
        });
    }
    if session.pooled() && plan.needs_session() {
        let versions = plan
            .steps
            .iter()
            .filter(|s| s.no_transaction.is_some())
            .map(|s| s.migration.id().to_owned())
            .collect();
        return Ok(ApplyReport::refused(
            req,
            Refusal::NeedsDirectConnection { versions },
        ));
    }
    let mut report = ApplyReport::new(
        req,
        if plan.steps.is_empty() {
            ApplyStatus::NothingToDo
        } else {
            ApplyStatus::Applied
        },
    );
    report.warnings = plan.warnings.clone();
    let ctx = RowContext {
        applied_by: req.actor,
        release: req.release,
    };
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let m = step.migration;
        let transactional = step.no_transaction.is_none();
        progress.start(i, total, m);
        let outcome = session.apply(lock, m, transactional, &ctx).await;
        progress.done(m, &outcome);
        match outcome {
            Ok(StepOutcome::Applied { execution_ms }) => report.applied.push(AppliedEntry {
                version: m.id().to_owned(),
                name: m.name.clone(),
                execution_ms,
                transaction: transactional,
            }),
            Ok(StepOutcome::AlreadyApplied) => report.skipped.push(m.id().to_owned()),
            Err(StepError::LockTimeout(message)) => {
                report.status = if report.applied.is_empty() {
                    ApplyStatus::Refused
                } else {
                    ApplyStatus::Failed
                };
                report.refusal = Some(Refusal::LockTimeout { message });
                return Ok(report);
            }
            Err(StepError::SessionLost(message)) => {
                report.status = if report.applied.is_empty() {
                    ApplyStatus::Refused
                } else {
                    ApplyStatus::Failed
                };
                report.refusal = Some(Refusal::SessionLost { message });
                return Ok(report);
            }
            Err(e @ (StepError::Migration { .. } | StepError::Database(_))) => {
                let (error, position, partial) = match e {
                    StepError::Migration {
                        message,
                        position,
                        partial,
                    } => (message, position, partial),
                    StepError::Database(message) => (message, None, false),
                    _ => unreachable!("matched above"),
                };
                let located = match &position {
                    Some(Position { line, column }) => {
                        format!("{}:{line}:{column}: {error}", m.up.path)
                    }
                    None => format!("{}: {error}", m.up.path),
                };
                let recorded = session
                    .record_failure(lock, m, &located, &ctx)
                    .await
                    .is_ok();
                report.status = ApplyStatus::Failed;
                report.failure = Some(FailureReport {
                    version: m.id().to_owned(),
                    name: m.name.clone(),
                    file: m.up.path.clone(),
                    line: position.as_ref().map(|p| p.line),
                    column: position.as_ref().map(|p| p.column),
                    error,
                    transaction: transactional,
                    partial,
                    recorded,
                });
                return Ok(report);
            }
        }
    }
    Ok(report)
}

fn step_error_text(e: &StepError) -> String {
    match e {
        StepError::Migration { message, .. }
        | StepError::LockTimeout(message)
        | StepError::SessionLost(message)
        | StepError::Database(message) => message.clone(),
    }
}
