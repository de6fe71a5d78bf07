//! `envgate schema diff` and `envgate schema show`: drift in the live
//! schema, environment by environment.

use super::{Failure, Format, exit};
use crate::config::Config;
use crate::ops::environments;
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::schema::{self, EnvSchema};
use crate::ops::world::LocalStates;
use crate::render;

pub struct DiffArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
}

/// Reads the environments, their schemas and the expected ones: the
/// observation every schema surface starts from.
pub async fn observe(config: &Config, envs: &[String]) -> Result<Vec<EnvSchema>, Failure> {
    let envs = environments::select(config, envs)?;
    let memory = Memory::open(config, environments::actor(None), false).await?;
    let obs = Observation::observe(config, &memory, &LocalStates, envs).await?;
    for w in &obs.warnings {
        crate::errln!("warning: {w}");
    }
    let matrix = obs.matrix(&obs.world.discovery.migrations);
    schema::observe(config, &obs.world, &matrix).await
}

/// The exit code of a schema report: 1 with `check` when a schema differs,
/// 4 when one could not be read, else 0.
pub fn code(schemas: &[EnvSchema], check: bool) -> i32 {
    if check && schemas.iter().any(EnvSchema::differs) {
        exit::CHECK_FAILED
    } else if schemas.iter().any(|s| s.read.is_err()) {
        exit::UNREACHABLE
    } else {
        exit::OK
    }
}

pub async fn diff(config: &Config, args: DiffArgs) -> Result<i32, Failure> {
    let schemas = observe(config, &args.envs).await?;
    let text = match args.format {
        Format::Json => render::schema_json(&schemas),
        Format::Html => {
            return Err(Failure::usage(format!(
                "--format html: only `envgate status` writes a page; `{}` writes table, json or markdown",
                "schema diff"
            )));
        }
        Format::Markdown => render::schema_markdown(&schemas),
        Format::Table => render::schema_text(&schemas),
    };
    super::print(&text)?;
    Ok(code(&schemas, args.check))
}

/// The schema of one environment in its stable text form, with its
/// fingerprint.
pub async fn show(config: &Config, env: &str) -> Result<i32, Failure> {
    let env = environments::env(config, env)?;
    let target = environments::target(config, env)?;
    let schema = schema::read_env(config, env, &target).await.map_err(|e| {
        Failure::unreachable(crate::secrets::scrubbed(&format!(
            "environment '{}' could not be read: {e}",
            env.name
        )))
    })?;
    super::print(&format!(
        "-- {} {} objects, fingerprint sha256:{}\n{}",
        env.name,
        schema.len(),
        schema.fingerprint(),
        schema.text()
    ))?;
    Ok(exit::OK)
}
