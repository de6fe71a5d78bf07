//! The world a command starts from: every selected environment's ledger
//! next to the repository's migrations.

use super::{Failure, environments, ledgers, load};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::matrix::EnvLedger;
use crate::core::migration::Discovery;
use crate::core::sql::Dialect;
use crate::db::Target;

/// Every selected environment's ledger next to the repository's migrations:
/// what `status`, `release show` and `promote` start from.
pub struct World<'c> {
    pub envs: Vec<&'c EnvConfig>,
    /// Each environment's target, or why it has none.
    pub targets: Vec<Result<Target, String>>,
    /// Each target's identity in the control store.
    pub labels: Vec<String>,
    pub discovery: Discovery,
    /// Each environment's ledger rows, or why it could not be read
    /// (credentials masked).
    pub ledgers: Vec<Result<Vec<LedgerRow>, String>>,
}

impl<'c> World<'c> {
    /// Reads the environments concurrently while discovering migrations
    /// from the working tree. Every environment's URL must resolve.
    pub async fn read(config: &Config, envs: Vec<&'c EnvConfig>) -> Result<World<'c>, Failure> {
        Self::read_with(config, envs, load::discover).await
    }

    /// The same with another way of discovering the migrations.
    async fn read_with(
        config: &Config,
        envs: Vec<&'c EnvConfig>,
        discover: fn(&Config, Option<Dialect>) -> Result<Discovery, String>,
    ) -> Result<World<'c>, Failure> {
        let targets = envs
            .iter()
            .map(|env| environments::target(config, env))
            .collect::<Result<Vec<_>, _>>()?;
        // Liquibase skips changes meant for other databases: the dialect
        // matters when all environments share one.
        let dialect = shared_dialect(targets.iter());
        let for_discovery = config.clone();
        let discovery = async move {
            let started = std::time::Instant::now();
            let d = tokio::task::spawn_blocking(move || discover(&for_discovery, dialect))
                .await
                .map_err(|e| Failure::internal(e.to_string()))?
                .map_err(Failure::usage);
            tracing::debug!(elapsed = ?started.elapsed(), "migrations discovered");
            d
        };
        World::gather(envs, targets.into_iter().map(Ok).collect(), discovery).await
    }

    /// Reads the environments' ledgers concurrently while `discovery`
    /// runs. An environment whose target is an error (the bot has no
    /// credentials for it, say) is unreachable, with that error.
    pub async fn gather(
        envs: Vec<&'c EnvConfig>,
        targets: Vec<Result<Target, String>>,
        discovery: impl Future<Output = Result<Discovery, Failure>>,
    ) -> Result<World<'c>, Failure> {
        let started = std::time::Instant::now();
        let reads =
            futures::future::join_all(envs.iter().zip(&targets).map(|(env, target)| async move {
                let Ok(target) = target else {
                    return None;
                };
                let rows = ledgers::read_ledger(env, target).await;
                tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "ledger read");
                Some(rows)
            }));
        let (discovery, ledgers) = tokio::join!(discovery, reads);
        let discovery = discovery?;
        let ledgers = ledgers
            .into_iter()
            .zip(&targets)
            .zip(&envs)
            .map(|((r, t), env)| match (r, t) {
                (Some(r), Ok(t)) => r
                    .and_then(|raw| ledgers::ledger_rows(env, raw, &discovery.migrations))
                    .map_err(|e| {
                        crate::secrets::scrubbed(&format!("{}: {e}", environments::target_label(t)))
                    }),
                (_, Err(e)) => Err(crate::secrets::scrubbed(e)),
                (None, Ok(_)) => unreachable!("every target with a URL is read"),
            })
            .collect();
        let labels = envs
            .iter()
            .zip(&targets)
            .map(|(env, t)| match t {
                Ok(t) => environments::target_identity(env, t),
                Err(_) => format!("unavailable {}", env.name),
            })
            .collect();
        Ok(World {
            envs,
            targets,
            labels,
            discovery,
            ledgers,
        })
    }

    /// The SQL dialect all readable environments share, if they do.
    pub fn dialect(&self) -> Option<Dialect> {
        shared_dialect(self.targets.iter().filter_map(|t| t.as_ref().ok()))
    }

    /// An environment's target, or why there is none.
    pub fn target(&self, e: usize) -> Result<&Target, Failure> {
        self.targets[e].as_ref().map_err(|m| {
            Failure::unreachable(format!(
                "environment '{}' could not be read: {m}",
                self.envs[e].name
            ))
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
                exported: remembered.exported[i].as_ref(),
                ..EnvLedger::new(&env.name, r.as_deref().map_err(String::as_str))
            })
            .collect()
    }
}

/// The dialect all the targets share, if they do.
fn shared_dialect<'t>(targets: impl Iterator<Item = &'t Target>) -> Option<Dialect> {
    let dialects: Vec<Dialect> = targets.map(environments::dialect).collect();
    dialects
        .first()
        .copied()
        .filter(|d| dialects.iter().all(|x| x == d))
}

/// How a command reaches its environments and its migrations: the command
/// line through envgate.toml's URLs and the working tree, the bot through
/// its own credentials and the forge's API.
pub trait Reader {
    fn world<'c>(
        &self,
        config: &'c Config,
        envs: Vec<&'c EnvConfig>,
    ) -> impl Future<Output = Result<World<'c>, Failure>>;
    /// Where envgate.toml was read.
    fn config_at(&self) -> super::memory::ConfigAt;
}

/// Another reader's environments, with its configuration marked as a
/// request's proposal when `proposed` (see [`super::memory::ConfigAt`]).
pub struct Proposal<'r, R> {
    pub inner: &'r R,
    pub proposed: bool,
}

impl<R: Reader> Reader for Proposal<'_, R> {
    async fn world<'c>(
        &self,
        config: &'c Config,
        envs: Vec<&'c EnvConfig>,
    ) -> Result<World<'c>, Failure> {
        self.inner.world(config, envs).await
    }

    fn config_at(&self) -> super::memory::ConfigAt {
        if self.proposed {
            super::memory::ConfigAt::Proposed
        } else {
            self.inner.config_at()
        }
    }
}

/// envgate.toml's URLs and the working tree.
pub struct Local;

impl Reader for Local {
    async fn world<'c>(
        &self,
        config: &'c Config,
        envs: Vec<&'c EnvConfig>,
    ) -> Result<World<'c>, Failure> {
        World::read(config, envs).await
    }

    fn config_at(&self) -> super::memory::ConfigAt {
        super::memory::ConfigAt::Checkout
    }
}

/// The working tree for showing states only: migrations are hashed through
/// the hash cache and carry no SQL (see [`load::discover_hashes`]). For
/// `status`, which never runs or exports anything.
pub struct LocalStates;

impl Reader for LocalStates {
    async fn world<'c>(
        &self,
        config: &'c Config,
        envs: Vec<&'c EnvConfig>,
    ) -> Result<World<'c>, Failure> {
        World::read_with(config, envs, load::discover_hashes).await
    }

    fn config_at(&self) -> super::memory::ConfigAt {
        super::memory::ConfigAt::Checkout
    }
}
