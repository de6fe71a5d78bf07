//! `envgate export`: write the SQL bundle that brings an environment to a
//! target, for the team's own pipeline to apply.

use super::{Failure, ReportFormat};
use crate::config::Config;
use crate::ops::memory::Memory;
use crate::ops::{environments, export};
use std::path::PathBuf;

pub struct ExportArgs {
    pub env: String,
    pub to: Option<String>,
    pub out: Option<PathBuf>,
    pub waive: crate::core::plan::Waive,
    pub actor: Option<String>,
    pub format: ReportFormat,
}

pub async fn run(config: &Config, args: ExportArgs) -> Result<i32, Failure> {
    let env = environments::env(config, &args.env)?;
    let memory = Memory::open(config, environments::actor(args.actor.as_deref()), true).await?;
    let reply = export::export(
        config,
        &memory,
        env,
        args.to.as_deref(),
        args.waive,
        args.out.as_deref(),
        args.format.into(),
    )
    .await?;
    super::show(reply)
}
