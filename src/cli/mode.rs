//! `envgate mode set <env> <mode>`: envgate.toml edited in place (its
//! comments and layout kept), and what to do next; `envgate mode confirm
//! <env>`: an admin vouches for the environment's current mode, which lifts
//! the guard on an environment made `managed` by someone else.

use super::{Failure, exit};
use crate::config::Config;
use crate::core::audit::Entry;
use crate::core::mode::{Mode, ModeSource, loosens};
use crate::core::policy;
use crate::ops::memory::{Memory, now};
use crate::ops::{environments, write};

pub async fn confirm(config: &Config, env: &str, actor: Option<&str>) -> Result<i32, Failure> {
    let memory = Memory::open(config, environments::actor(actor), true).await?;
    let entry = memory.entry("mode_confirm", Some(env), "ok");
    let Some(env) = config.env(env) else {
        let msg = write::no_such_env(config, env);
        return Err(write::refuse(&memory, entry, msg).await);
    };
    if env.admins.is_empty() {
        let msg = format!(
            "'{}' names no admins, so its mode needs no confirmation (set `admins` to require one)",
            env.name
        );
        return Err(write::refuse(&memory, entry, msg).await);
    }
    if !policy::is_admin(&memory.actor, &env.admins, &[]) {
        let msg = format!(
            "{} is not one of the admins of '{}' ({})",
            memory.actor,
            env.name,
            env.admins.join(", ")
        );
        return Err(write::refuse(&memory, entry, msg).await);
    }
    // The mode as configured now is the one confirmed.
    memory
        .track_modes(config, &[env], &crate::ops::memory::ConfigAt::Checkout)
        .await
        .map_err(|e| Failure::internal(format!("control store: {e}")))?;
    let store = memory
        .store()
        .ok_or_else(|| Failure::internal("the control store is not open"))?;
    store
        .confirm_mode(&env.name, memory.repository(), &memory.actor, &now())
        .await
        .map_err(|e| Failure::internal(format!("control store: {e}")))?;
    memory
        .audit(Entry {
            details: Some(format!("mode {} confirmed", env.mode)),
            ..entry
        })
        .await?;
    super::print(&format!(
        "'{}': mode {} confirmed by {}; recorded in the audit trail.\n",
        env.name, env.mode, memory.actor
    ))?;
    Ok(exit::OK)
}

/// `envgate mode set ENV MODE`: edits envgate.toml, keeping everything else
/// in it, and says what the change needs (a request, and an admin's
/// approval when it gives envgate more power). The file is checked before
/// it is written, and written whole or not at all.
pub fn set(config: &Config, env: &str, mode: &str) -> Result<i32, Failure> {
    let to = match mode {
        "managed" => Mode::Managed,
        "export_only" => Mode::ExportOnly,
        "reconcile_only" => Mode::ReconcileOnly,
        other => {
            return Err(Failure::usage(format!(
                "'{other}' is not a mode: managed, export_only or reconcile_only"
            )));
        }
    };
    let Some(e) = config.env(env) else {
        return Err(Failure::usage(write::no_such_env(config, env)));
    };
    let file = config.file.display().to_string();
    if e.mode == to && e.mode_source == ModeSource::Config {
        super::print(&format!(
            "{file}: '{env}' is already {to}; nothing changed.\n"
        ))?;
        return Ok(exit::OK);
    }
    let text = std::fs::read_to_string(&config.file)
        .map_err(|err| Failure::usage(format!("{file}: cannot read: {err}")))?;
    let edited = crate::config::set_mode(&text, env, to)
        .map_err(|m| Failure::usage(format!("{file}: {m}")))?;
    crate::config::parse(&config.file, &edited)
        .map_err(|err| Failure::usage(format!("'{env}' cannot be {to}: {}", err.message)))?;
    crate::ops::atomic_file::write(&config.file, edited.as_bytes())
        .map_err(|err| Failure::usage(format!("{file}: cannot write: {err}")))?;
    #[derive(serde::Serialize)]
    struct View<'a> {
        file: &'a str,
        env: &'a str,
        from: Mode,
        to: Mode,
        loosens: bool,
        admins: &'a [String],
    }
    super::print(&crate::render::mode_set(&View {
        file: &file,
        env,
        from: e.mode,
        to,
        loosens: loosens(e.mode, to),
        admins: &e.admins,
    }))?;
    Ok(exit::OK)
}
