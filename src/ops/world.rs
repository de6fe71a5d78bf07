//! The world a command starts from: every selected environment's ledger
//! next to the repository's migrations.

use super::{Failure, common};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::matrix::EnvLedger;
use crate::core::redact::Redactor;

/// Every selected environment's ledger next to the repository's migrations:
/// what `status`, `release show` and `promote` start from.
pub struct World<'c> {
    pub envs: Vec<&'c EnvConfig>,
    pub targets: Vec<crate::target::Target>,
    /// Each target's identity in the control store.
    pub labels: Vec<String>,
    pub discovery: crate::core::migration::Discovery,
    /// Each environment's ledger rows, or why it could not be read
    /// (credentials masked).
    pub ledgers: Vec<Result<Vec<LedgerRow>, String>>,
    pub redactor: Redactor,
}

impl<'c> World<'c> {
    /// Reads the environments concurrently while discovering migrations.
    pub async fn read(config: &Config, envs: Vec<&'c EnvConfig>) -> Result<World<'c>, Failure> {
        let mut redactor = Redactor::new();
        let targets = envs
            .iter()
            .map(|env| common::target(config, env, &mut redactor))
            .collect::<Result<Vec<_>, _>>()?;
        // Discovery (file system + hashing) runs while the databases answer.
        let started = std::time::Instant::now();
        let for_discovery = config.clone();
        // Liquibase skips changes meant for other databases: the dialect
        // matters when all environments share one.
        let dialects: Vec<_> = targets.iter().map(common::dialect).collect();
        let dialect = dialects
            .first()
            .copied()
            .filter(|d| dialects.iter().all(|x| x == d));
        let discovery = tokio::task::spawn_blocking(move || {
            let d = common::discover(&for_discovery, dialect);
            tracing::debug!(elapsed = ?started.elapsed(), "migrations discovered");
            d
        });
        let reads =
            futures::future::join_all(envs.iter().zip(&targets).map(|(env, target)| async move {
                let rows = common::read_ledger(env, target).await;
                tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "ledger read");
                rows
            }));
        let (discovery, ledgers) = tokio::join!(discovery, reads);
        let discovery = discovery
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(Failure::usage)?;
        let ledgers = ledgers
            .into_iter()
            .zip(&targets)
            .zip(&envs)
            .map(|((r, t), env)| {
                r.and_then(|raw| common::ledger_rows(env, raw, &discovery.migrations))
                    .map_err(|e| redactor.redact(&format!("{}: {e}", common::target_label(t))))
            })
            .collect();
        let labels = envs
            .iter()
            .zip(&targets)
            .map(|(env, t)| common::target_identity(env, t))
            .collect();
        Ok(World {
            envs,
            targets,
            labels,
            discovery,
            ledgers,
            redactor,
        })
    }

    /// The matrix inputs, with what the control store remembers.
    pub fn inputs<'a>(&'a self, remembered: &'a super::memory::Remembered) -> Vec<EnvLedger<'a>> {
        self.envs
            .iter()
            .zip(&self.ledgers)
            .enumerate()
            .map(|(i, (env, r))| EnvLedger {
                observed: remembered.observed[i].as_ref(),
                accepted: remembered.accepted[i].as_ref(),
                ..EnvLedger::new(&env.name, r.as_deref().map_err(String::as_str))
            })
            .collect()
    }
}
