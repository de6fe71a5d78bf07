//! `envgate drift accept <env> <version> --reason "…"`: today's content of
//! a drifted migration becomes the accepted one for that environment.
//!
//! In a `managed` environment the ledger row's hash is updated (in a
//! transaction, under the environment's lock); elsewhere only the control
//! store records it, never that database. Either way the audit trail keeps
//! the actor, the reason, and the old and new hash, and `status` shows the
//! cell `applied` with a note.

use super::{Failure, exit};
use crate::config::Config;
use crate::control::Acceptance;
use crate::core::audit::Entry;
use crate::core::matrix::State;
use crate::core::mode::Mode;
use crate::core::tools::Tool;
use crate::db::write::{StepError, WriteSession};
use crate::ops::memory::{Memory, now};
use crate::ops::observe::Observation;
use crate::ops::world::Local;
use crate::ops::{environments, write};

pub struct AcceptArgs {
    pub env: String,
    pub version: String,
    pub reason: String,
    pub actor: Option<String>,
}

pub async fn accept(config: &Config, args: AcceptArgs) -> Result<i32, Failure> {
    if args.reason.trim().is_empty() {
        return Err(Failure::usage(
            "--reason must say why the edit is intended: it goes to the audit trail",
        ));
    }
    let memory = Memory::open(config, environments::actor(args.actor.as_deref()), true).await?;
    let entry = Entry {
        migrations: vec![args.version.clone()],
        ..memory.entry("drift_accepted", Some(&args.env), "ok")
    };
    let Some(env) = config.env(&args.env) else {
        let msg = write::no_such_env(config, &args.env);
        return Err(write::refuse(&memory, entry, msg).await);
    };
    let obs = match Observation::observe(config, &memory, &Local, vec![env]).await {
        Ok(o) => o,
        Err(f) => return Err(write::audit_failure(&memory, entry, f).await),
    };
    for w in &obs.warnings {
        crate::errln!("warning: {w}");
    }
    let world = &obs.world;
    if let Err(e) = &world.ledgers[0] {
        let f = Failure::unreachable(format!("environment '{}' could not be read: {e}", env.name));
        return Err(write::audit_failure(&memory, entry, f).await);
    }
    let m = obs.matrix(&world.discovery.migrations);
    // The version, or the file's path as `status` shows it.
    let Some(row) = m
        .rows
        .iter()
        .position(|r| r.version == args.version || r.file == Some(args.version.as_str()))
    else {
        let msg = format!(
            "no migration '{}' in the repository or in '{}'",
            args.version, env.name
        );
        return Err(write::refuse(&memory, entry, msg).await);
    };
    let (version, cell) = (m.rows[row].version, m.cells(row)[0]);
    let entry = Entry {
        migrations: vec![version.to_owned()],
        ..entry
    };
    let today = match (cell.state, m.rows[row].hash) {
        (State::Drifted, Some(today)) => today,
        (State::Applied, _) => {
            super::print(&format!(
                "{version} is applied in '{}' with today's content: no drift to accept.\n",
                env.name
            ))?;
            return Ok(exit::OK);
        }
        (state, _) => {
            let msg = format!(
                "{version} is {} in '{}', not drifted: there is nothing to accept",
                state.as_str(),
                env.name
            );
            return Err(write::refuse(&memory, entry, msg).await);
        }
    };
    let old = cell
        .observed
        .map(|o| o.hash.hex())
        .or_else(|| cell.applied_hash().map(|h| h.display()))
        .unwrap_or_default();
    let mut details = format!(
        "reason: {}; accepted {} (was {})",
        args.reason.trim(),
        today.hex(),
        if old.is_empty() { "none" } else { &old }
    );
    if env.mode == Mode::Managed && env.ledger == Tool::Envgate {
        let access = write::gate(config, &memory, env, &entry, &obs.config_at).await?;
        let target = world.target(0)?;
        let unreachable = |e: String| {
            Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}': {}: {e}",
                env.name,
                environments::target_label(target)
            )))
        };
        let session = WriteSession::open(
            target,
            &access,
            env.schema.as_deref(),
            &format!("envgate drift accept by {}", memory.actor),
            env.connect_timeout,
        )
        .await;
        let mut session = match session {
            Ok(s) => s,
            Err(e) => return Err(write::audit_failure(&memory, entry, unreachable(e)).await),
        };
        let lock = match session.lock(env.lock_timeout).await {
            Ok(lock) => lock,
            Err(StepError::LockTimeout(message)) => {
                return Err(write::refuse(
                    &memory,
                    entry,
                    format!("{message}; nothing was accepted"),
                )
                .await);
            }
            Err(
                StepError::Database(e)
                | StepError::SessionLost(e)
                | StepError::Migration { message: e, .. },
            ) => return Err(write::audit_failure(&memory, entry, unreachable(e)).await),
        };
        let updated = match session.accept_hash(&lock, version, &today.tagged()).await {
            Ok(u) => u,
            Err(e) => return Err(write::audit_failure(&memory, entry, unreachable(e)).await),
        };
        session.unlock(lock).await;
        if !updated {
            let msg = format!(
                "{version}: its ledger row in '{}' changed meanwhile; nothing was accepted",
                env.name
            );
            return Err(write::refuse(&memory, entry, msg).await);
        }
        details.push_str("; ledger row updated");
    }
    let store = memory
        .store()
        .ok_or_else(|| Failure::internal("the control store is not open"))?;
    store
        .accept(&Acceptance {
            environment: &env.name,
            target: &world.labels[0],
            migration: version,
            hash: &today,
            previous: (!old.is_empty()).then_some(old.as_str()),
            actor: &memory.actor,
            reason: args.reason.trim(),
            at: &now(),
        })
        .await
        .map_err(|e| Failure::internal(format!("control store: {e}")))?;
    memory
        .audit(Entry {
            details: Some(details),
            ..entry
        })
        .await?;
    super::print(&format!(
        "accepted: {version} in '{}' is now applied with content {} ({}); recorded in the audit trail.\n",
        env.name,
        &today.hex()[..12],
        if env.mode == Mode::Managed && env.ledger == Tool::Envgate {
            "the ledger row was updated"
        } else {
            "recorded in the control store only, never in that database"
        }
    ))?;
    Ok(exit::OK)
}
