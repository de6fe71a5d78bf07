//! `envgate mode confirm <env>`: an admin vouches for the environment's
//! current mode, which lifts the guard on an environment made `managed` by
//! someone else.

use super::{Failure, exit};
use crate::config::Config;
use crate::core::audit::Entry;
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
        .confirm_mode(&env.name, &memory.actor, &now())
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
