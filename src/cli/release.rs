//! `envgate releases`, `release show`, `promote` and `rollback` on the
//! command line: the local git repository as the source, bundles written
//! to `--out`, replies printed.

use super::{Failure, ReportFormat};
use crate::config::Config;
use crate::ops::memory::Memory;
use crate::ops::release::{self, BundleOut, PromoteArgs, RollbackArgs};
use crate::ops::source::LocalGit;
use crate::ops::world::Local;
use crate::ops::{Output, Reply, environments};
use std::path::PathBuf;

impl From<ReportFormat> for Output {
    fn from(f: ReportFormat) -> Output {
        match f {
            ReportFormat::Table => Output::Text,
            ReportFormat::Json => Output::Json,
        }
    }
}

fn print(reply: Reply) -> Result<i32, Failure> {
    super::show(reply)
}

/// `envgate releases`.
pub async fn list(config: &Config, format: ReportFormat) -> Result<i32, Failure> {
    let memory = Memory::open(config, environments::actor(None), false).await?;
    print(
        release::list(
            config,
            &memory,
            &LocalGit::new(config),
            &Local,
            format.into(),
        )
        .await?,
    )
}

/// `envgate release show <tag>`.
pub async fn show(
    config: &Config,
    tag: &str,
    format: ReportFormat,
    sql: bool,
) -> Result<i32, Failure> {
    let memory = Memory::open(config, environments::actor(None), false).await?;
    let src = LocalGit::new(config);
    print(release::show(config, &memory, &src, &Local, tag, format.into(), sql).await?)
}

pub struct PromoteCli {
    pub release: String,
    pub to: Option<String>,
    pub dry_run: bool,
    pub actor: Option<String>,
    pub force: bool,
    pub reason: Option<String>,
    pub waive: crate::core::plan::Waive,
    pub out: Option<PathBuf>,
    pub format: ReportFormat,
}

/// `envgate promote <release> [--to <env>]`.
pub async fn promote(config: &Config, args: PromoteCli) -> Result<i32, Failure> {
    let memory = Memory::open(
        config,
        environments::actor(args.actor.as_deref()),
        !args.dry_run,
    )
    .await?;
    let reply = release::promote(
        config,
        &memory,
        &LocalGit::new(config),
        &Local,
        &PromoteArgs {
            release: &args.release,
            to: args.to.as_deref(),
            dry_run: args.dry_run,
            force: args.force,
            reason: args.reason.as_deref(),
            waive: args.waive,
            out: BundleOut::Dir(args.out.as_deref()),
            output: args.format.into(),
        },
    )
    .await?;
    print(reply)
}

pub struct RollbackCli {
    pub release: String,
    pub env: String,
    pub dry_run: bool,
    pub actor: Option<String>,
    pub out: Option<PathBuf>,
    pub format: ReportFormat,
}

/// `envgate rollback <release> --env <env>`.
pub async fn rollback(config: &Config, args: RollbackCli) -> Result<i32, Failure> {
    let memory = Memory::open(
        config,
        environments::actor(args.actor.as_deref()),
        !args.dry_run,
    )
    .await?;
    let reply = release::rollback(
        config,
        &memory,
        &LocalGit::new(config),
        &Local,
        &RollbackArgs {
            release: &args.release,
            env: &args.env,
            dry_run: args.dry_run,
            out: BundleOut::Dir(args.out.as_deref()),
            output: args.format.into(),
        },
    )
    .await?;
    print(reply)
}
