//! Writing to a `managed` environment, shared by `apply`, `promote` and
//! `rollback`: the gate (mode, then admins), the session, the apply loop,
//! and the audit record of whatever came of it.

use super::memory::{ConfigAt, Memory};
use super::{Failure, Output, Reply, environments, exit};
use crate::apply::{self, ApplyError, ApplyReport, ApplyRequest, ApplyStatus, Progress, Refusal};
use crate::config::{Config, EnvConfig};
use crate::core::audit::Entry;
use crate::core::plan::Blocker;
use crate::core::policy::{self, WriteGate};
use crate::db::write::WriteSession;
use crate::db::{Target, WriteAccess};
use crate::render;
use std::collections::HashSet;

/// What to do once the session is open.
pub enum Operation<'a> {
    Apply(ApplyRequest<'a>),
    /// Revert these migrations (a release's), newest first.
    Rollback(ApplyRequest<'a>, &'a HashSet<String>),
}

/// Writes a refusal to the audit trail and turns it into exit code 3.
pub async fn refuse(memory: &Memory, mut entry: Entry, message: String) -> Failure {
    entry.outcome = "refused".to_owned();
    entry.error = Some(message.clone());
    if let Err(f) = memory.audit(entry).await {
        return f;
    }
    Failure {
        code: exit::REFUSED,
        message,
    }
}

/// "no environment 'qa' (configured: dev, staging, prod)".
pub fn no_such_env(config: &Config, name: &str) -> String {
    let known: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    format!("no environment '{name}' (configured: {})", known.join(", "))
}

/// Whether envgate may write to `env` now: its mode must be `managed`, and
/// when it names admins, one of them must have made it managed or
/// confirmed it. A refusal is audited with `entry`.
pub async fn gate(
    config: &Config,
    memory: &Memory,
    env: &EnvConfig,
    entry: &Entry,
    at: &ConfigAt,
) -> Result<WriteAccess, Failure> {
    let access = match env.write_access() {
        Ok(a) => a,
        Err(_) => {
            let msg = render::refused_mode(env)
                .trim_end()
                .trim_start_matches("refused: ")
                .to_owned();
            return Err(refuse(memory, entry.clone(), msg).await);
        }
    };
    // A mode change is recorded (attributed from git, never to this run)
    // before it is judged.
    memory
        .track_modes(config, &[env], at)
        .await
        .map_err(|e| Failure::internal(format!("control store: {e}")))?;
    if env.admins.is_empty() {
        return Ok(access);
    }
    let Some(store) = memory.store() else {
        // Memory::open(required) guarantees a store for writes.
        return Err(Failure::internal("the control store is not open"));
    };
    let latest = store
        .last_mode(&env.name, memory.repository())
        .await
        .map_err(Failure::internal)?;
    match policy::write_gate(env.mode, &env.admins, latest.as_ref(), &memory.actor(), &[]) {
        WriteGate::Open => Ok(access),
        WriteGate::OpenConfirming => {
            let actor = memory.actor();
            store
                .confirm_mode(
                    &env.name,
                    memory.repository(),
                    &actor.name,
                    &super::memory::now(),
                )
                .await
                .map_err(|e| Failure::internal(format!("control store: {e}")))?;
            memory
                .audit(Entry {
                    details: Some(format!(
                        "mode {} confirmed by {}, an admin, acting on it ({})",
                        env.mode,
                        actor.shown(),
                        entry.action
                    )),
                    ..memory.entry("mode_confirm", Some(&env.name), "ok")
                })
                .await?;
            Ok(access)
        }
        WriteGate::NeedsConfirmation(why) => {
            let msg = format!(
                "'{}' is managed, but {why}: one of its admins ({}) must approve the change that made it managed, \
                 run `envgate mode confirm {}`, or run this themselves",
                env.name,
                env.admins.join(", "),
                env.name
            );
            Err(refuse(memory, entry.clone(), msg).await)
        }
    }
}

/// Where a write goes.
pub struct Destination<'a> {
    pub env: &'a EnvConfig,
    pub target: &'a Target,
}

/// Opens a write session, runs `op`, and audits the outcome with `entry`
/// (its migrations become those actually applied or reverted).
pub async fn execute(
    memory: &Memory,
    to: Destination<'_>,
    access: &WriteAccess,
    op: Operation<'_>,
    entry: Entry,
    progress: &mut dyn Progress,
) -> Result<Executed, Failure> {
    let Destination { env, target } = to;
    let session = WriteSession::open(
        target,
        access,
        env.schema.as_deref(),
        &format!("envgate {} by {}", entry.action, memory.actor),
        env.connect_timeout,
    )
    .await
    .map_err(|e| {
        Failure::unreachable(crate::secrets::scrubbed(&format!(
            "environment '{}' could not be reached: {}: cannot connect: {e}",
            env.name,
            environments::target_label(target)
        )))
    });
    let mut session = match session {
        Ok(s) => s,
        Err(f) => return Err(audit_failure(memory, entry, f).await),
    };
    let result = match &op {
        Operation::Apply(req) => apply::run(&mut session, req, progress).await,
        Operation::Rollback(req, ids) => apply::rollback(&mut session, req, ids, progress).await,
    };
    let report = match result {
        Ok(r) => r,
        Err(ApplyError::Plan(e)) => return Err(Failure::usage(e.to_string())),
        Err(ApplyError::Ledger(e)) => {
            let msg = crate::secrets::scrubbed(&format!(
                "environment '{}': {e}; nothing was changed",
                env.name
            ));
            return Err(refuse(memory, entry, msg).await);
        }
        Err(ApplyError::Database(e)) => {
            let f = Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}': {e}",
                env.name
            )));
            return Err(audit_failure(memory, entry, f).await);
        }
    };
    let (outcome, error) = match report.status {
        ApplyStatus::Applied => ("ok", None),
        ApplyStatus::NothingToDo => ("nothing_to_do", None),
        ApplyStatus::Failed => (
            "failed",
            report.failure.as_ref().map(|f| {
                format!(
                    "{}: {}",
                    crate::core::text::label(&f.version, &f.name),
                    f.error
                )
            }),
        ),
        ApplyStatus::Refused => ("refused", report.refusal.as_ref().map(refusal_summary)),
    };
    let mut migrations: Vec<String> = report.applied.iter().map(|a| a.version.clone()).collect();
    if let Some(f) = &report.failure {
        migrations.push(f.version.clone());
    }
    let audited = memory
        .audit(Entry {
            migrations,
            outcome: outcome.to_owned(),
            error: error.map(|e| crate::secrets::scrubbed(&e)),
            ..entry
        })
        .await;
    Ok(Executed {
        report,
        unaudited: audited.err().map(|f| f.message),
    })
}

/// What a write did, and whether the audit trail could record it.
pub struct Executed {
    pub report: ApplyReport,
    /// Why the audit record could not be written (the work is done).
    pub unaudited: Option<String>,
}

impl Executed {
    /// The report as text or JSON, with its exit code; a missing audit
    /// record turns the code into an internal error after the report.
    pub fn reply(&self, output: Output) -> Reply {
        let mut text = match output {
            Output::Text => render::apply_text(&self.report),
            Output::Json => render::json(&self.report),
        };
        let mut code = match self.report.status {
            ApplyStatus::Applied | ApplyStatus::NothingToDo => exit::OK,
            ApplyStatus::Failed => exit::CHECK_FAILED,
            ApplyStatus::Refused => exit::REFUSED,
        };
        if let Some(e) = &self.unaudited {
            code = exit::INTERNAL;
            text.push_str(&format!(
                "\nerror: the above was done, but the audit trail could not record it: {e}\n"
            ));
        }
        Reply::text(text, code)
    }
}

/// One line for the audit trail's `error`.
fn refusal_summary(r: &Refusal) -> String {
    match r {
        Refusal::Blocked { blockers } => format!(
            "blocked: {}",
            blockers
                .iter()
                .map(Blocker::summary)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Refusal::NeedsDirectConnection { versions } => format!(
            "{} must run outside a transaction, which needs a direct connection (not a transaction pooler)",
            versions.join(", ")
        ),
        Refusal::LockTimeout { message } | Refusal::SessionLost { message } => message.clone(),
        Refusal::NoDown { files } => format!("no down script for {}", files.join(", ")),
    }
}

/// Audits a failure that happened before anything ran.
pub async fn audit_failure(memory: &Memory, mut entry: Entry, failure: Failure) -> Failure {
    entry.outcome = "error".to_owned();
    entry.error = Some(failure.message.clone());
    entry.migrations.clear();
    match memory.audit(entry).await {
        Ok(()) => failure,
        Err(f) => f,
    }
}

/// How far an apply goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds<'a> {
    /// Stop after this migration.
    pub stop_at: Option<&'a str>,
    /// Let drift and failed runs through (failed ones are retried).
    pub waive: crate::core::plan::Waive,
    /// How long to wait for another run's lock (default: the
    /// environment's `lock_timeout`).
    pub lock_timeout: Option<std::time::Duration>,
}

/// `envgate apply` (and `envgate ci --command apply`): the gate first
/// (mode, admins) before anything connects, then the pending migrations
/// applied from the working tree, each with its ledger row, audited.
pub async fn apply(
    config: &Config,
    memory: &Memory,
    env: &EnvConfig,
    bounds: Bounds<'_>,
    output: Output,
    progress: &mut dyn Progress,
) -> Result<Reply, Failure> {
    let entry = memory.entry("apply", Some(&env.name), "ok");
    let access = gate(config, memory, env, &entry, &ConfigAt::Checkout).await?;
    let target = super::environments::target(config, env)?;
    let for_discovery = config.clone();
    let d = super::environments::dialect(&target);
    let discovery =
        tokio::task::spawn_blocking(move || super::load::discover(&for_discovery, Some(d)))
            .await
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(Failure::usage)?;
    let migrations = &discovery.migrations;
    if let Some(t) = bounds.stop_at {
        // An unknown version is a usage error, found before connecting.
        crate::core::plan::plan(&crate::core::plan::PlanInput {
            env: &env.name,
            mode: env.mode,
            dialect: d,
            migrations,
            ledger: &[],
            stop_at: Some(t),
            waive: crate::core::plan::Waive::ALL,
            only: None,
            accepted: None,
        })
        .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let request = ApplyRequest {
        env: &env.name,
        migrations,
        stop_at: bounds.stop_at,
        waive: bounds.waive,
        actor: &memory.actor,
        release: None,
        lock_timeout: bounds.lock_timeout.unwrap_or(env.lock_timeout),
        only: None,
        accepted: None,
    };
    let done = execute(
        memory,
        Destination {
            env,
            target: &target,
        },
        &access,
        Operation::Apply(request),
        entry,
        progress,
    )
    .await?;
    Ok(done.reply(output))
}
