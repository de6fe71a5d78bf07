//! `envgate plan`: what `apply` or `export` would do for one environment.

use super::{Failure, ReportFormat, exit};
use crate::config::Config;
use crate::core::plan::{PlanInput, plan};
use crate::ops::{environments, ledgers};
use crate::{render, report};

pub struct PlanArgs {
    pub env: String,
    pub to: Option<String>,
    pub waive: crate::core::plan::Waive,
    pub format: ReportFormat,
}

pub async fn run(config: &Config, args: PlanArgs) -> Result<i32, Failure> {
    let env = environments::env(config, &args.env)?;
    environments::needs_envgate_ledger(env, "plan")?;
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
        ReportFormat::Table => render::plan_text(&r),
        ReportFormat::Json => render::json(&r),
    };
    super::print(&text)?;
    Ok(exit::OK)
}
