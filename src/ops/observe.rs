//! The one observe step every command and job starts from.
//!
//! Reading the environments is never only reading: a mode that changed
//! since the last run is recorded (with the commit envgate.toml came from),
//! the control store lends what it remembers (first observations of
//! migrations in ledgers without checksums, drift accepted), and after a
//! matrix of the repository's migrations, first observations are recorded
//! and drift seen for the first time is audited. [`Observation::observe`]
//! and [`Observation::status`] do all of it, in that order, for the command
//! line, `envgate ci`, the bot's jobs and chat-ops alike; what goes wrong on
//! the way without stopping the command comes back as warnings for the
//! surface to show.

use super::Failure;
use super::memory::{ConfigAt, Memory, Remembered};
use super::world::{Reader, World};
use crate::config::{Config, EnvConfig};
use crate::core::matrix::{self, Matrix};
use crate::core::migration::Migration;

/// Every selected environment's ledger next to the repository's migrations
/// ([`World`]), what the control store remembers about them, where the
/// configuration was read, and the warnings met on the way.
pub struct Observation<'c> {
    pub world: World<'c>,
    pub remembered: Remembered,
    pub config_at: ConfigAt,
    /// Problems that did not stop the command (the control store, say).
    pub warnings: Vec<String>,
}

impl<'c> Observation<'c> {
    /// Reads the environments (through `reach`: the working tree and
    /// envgate.toml's URLs, or a forge and the bot's credentials), records
    /// mode changes, and loads what the control store remembers.
    pub async fn observe(
        config: &'c Config,
        memory: &Memory,
        reach: &impl Reader,
        envs: Vec<&'c EnvConfig>,
    ) -> Result<Observation<'c>, Failure> {
        let world = reach.world(config, envs).await?;
        let config_at = reach.config_at();
        let mut warnings: Vec<String> = memory.unavailable.iter().cloned().collect();
        if let Err(e) = memory.track_modes(config, &world.envs, &config_at).await {
            warnings.push(format!("control store: {e}"));
        }
        let (remembered, w) = memory.remembered(&world.envs, &world.labels).await;
        warnings.extend(w);
        Ok(Observation {
            world,
            remembered,
            config_at,
            warnings,
        })
    }

    /// [`Observation::observe`], then [`Observation::conclude`].
    pub async fn status<T>(
        config: &'c Config,
        memory: &Memory,
        reach: &impl Reader,
        envs: Vec<&'c EnvConfig>,
        f: impl FnOnce(&Observation<'c>, &Matrix<'_>) -> T,
    ) -> Result<(Observation<'c>, T), Failure> {
        Observation::observe(config, memory, reach, envs)
            .await?
            .conclude(memory, f)
            .await
    }

    /// The matrix of the repository's migrations and its bookkeeping. `f`
    /// reads the matrix and returns what the caller keeps (a rendered
    /// text, a summary, a tally).
    pub async fn conclude<T>(
        mut self,
        memory: &Memory,
        f: impl FnOnce(&Observation<'c>, &Matrix<'_>) -> T,
    ) -> Result<(Observation<'c>, T), Failure> {
        let (kept, warnings) = {
            let m = self.matrix(&self.world.discovery.migrations);
            let kept = f(&self, &m);
            let warnings = memory
                .after_status(&self.world.envs, &self.world.labels, &self.remembered, &m)
                .await;
            (kept, warnings)
        };
        self.warnings.extend(warnings);
        Ok((self, kept))
    }

    /// The matrix of `migrations` (the repository's, or a release tag's)
    /// against the ledgers, with what the control store remembers.
    pub fn matrix<'a>(&'a self, migrations: &'a [Migration]) -> Matrix<'a> {
        matrix::compute(migrations, &self.world.inputs(&self.remembered))
    }
}
