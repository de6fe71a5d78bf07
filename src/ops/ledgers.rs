//! Reading what a plan starts from: an environment's ledger, read-only
//! (envgate's own, or another tool's rows turned into ledger rows), next to
//! the repository's migrations.

use super::Failure;
use super::environments::{dialect, target, target_label};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, Migration};
use crate::db::{ReadSession, Target};
use crate::ledger;

/// Reads one environment's ledger through a read-only session: envgate's
/// own, or the raw rows of another tool's (turned into ledger rows by
/// [`ledger_rows`] once the migrations are known).
pub async fn read_ledger(env: &EnvConfig, target: &Target) -> Result<RawLedger, String> {
    let started = std::time::Instant::now();
    let schema = super::environments::ledger_schema(env, target);
    let session = ReadSession::open(target, schema, env.connect_timeout)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?
        .with_ledger_zone(env.ledger_time_zone.as_deref());
    tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "connected");
    match env.ledger {
        crate::core::tools::Tool::Envgate => ledger::envgate::read(&session)
            .await
            .map(RawLedger::Envgate),
        tool => ledger::foreign::read(&session, tool, env.table.as_deref())
            .await
            .map(|rows| RawLedger::Tool(tool, rows)),
    }
}

/// A ledger as read: envgate's rows, or another tool's text rows.
pub enum RawLedger {
    Envgate(Vec<LedgerRow>),
    Tool(crate::core::tools::Tool, Vec<crate::core::tools::TextRow>),
}

/// Turns a ledger as read into ledger rows, one per migration.
pub fn ledger_rows(
    env: &EnvConfig,
    raw: RawLedger,
    migrations: &[Migration],
) -> Result<Vec<LedgerRow>, String> {
    match raw {
        RawLedger::Envgate(rows) => Ok(rows),
        RawLedger::Tool(tool, rows) => tool.ledger(rows, migrations).map_err(|e| {
            let table = env.table.as_deref().unwrap_or(tool.default_table());
            format!("{tool} ledger table {table}: {e}")
        }),
    }
}

/// What planning one environment needs, read without writing anything.
pub struct PlanInputs {
    pub discovery: Discovery,
    pub ledger: Vec<LedgerRow>,
    pub target: Target,
}

/// Discovers the migrations and reads the environment's ledger read-only,
/// at the same time.
pub async fn plan_inputs(config: &Config, env: &EnvConfig) -> Result<PlanInputs, Failure> {
    let target = target(config, env)?;
    let for_discovery = config.clone();
    let d = dialect(&target);
    let discovery =
        tokio::task::spawn_blocking(move || super::load::discover(&for_discovery, Some(d)));
    let (discovery, ledger) = tokio::join!(discovery, read_ledger(env, &target));
    let discovery = discovery
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(Failure::usage)?;
    let ledger = ledger
        .and_then(|raw| ledger_rows(env, raw, &discovery.migrations))
        .map_err(|e| {
            Failure::unreachable(crate::secrets::scrubbed(&format!(
                "environment '{}' could not be read: {}: {e}",
                env.name,
                target_label(&target)
            )))
        })?;
    Ok(PlanInputs {
        discovery,
        ledger,
        target,
    })
}
