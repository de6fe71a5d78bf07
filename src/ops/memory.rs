//! What envgate remembers between runs, through the control store: the audit
//! trail, each environment's mode, first observations of migrations in
//! ledgers without checksums, drift accepted and drift already reported.

use super::Failure;
use crate::config::{Config, ControlStoreLocation, EnvConfig};
use crate::control::{ControlStore, Scope};
use crate::core::audit::{self, Entry};
use crate::core::bundle::Bundle;
use crate::core::exported::{self, Exported};
use crate::core::identity::{Actor, Merge, Source};
use crate::core::matrix::{Accepted, Compared, Matrix, Observed, State};
use crate::core::policy;
use crate::core::tools::Tool;
use std::collections::HashMap;

/// The current time, RFC 3339, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The environment variable holding the audit key.
pub const AUDIT_KEY_VAR: &str = "ENVGATE_AUDIT_KEY";

/// The audit key from `ENVGATE_AUDIT_KEY`, when set (a secret: masked
/// wherever text leaves envgate).
pub fn audit_key() -> Result<Option<audit::Key>, String> {
    let Some(value) = std::env::var(AUDIT_KEY_VAR).ok().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    crate::secrets::register(&value);
    audit::Key::new(value.as_bytes())
        .map(Some)
        .map_err(|e| format!("{AUDIT_KEY_VAR}: {e}"))
}

/// What envgate remembers between runs, for one run: the control store
/// (when it could be opened) and who this run acts as.
pub struct Memory {
    store: Option<ControlStore>,
    pub actor: String,
    /// How the actor is known.
    pub source: Source,
    /// Seals records keyed when set.
    key: Option<audit::Key>,
    /// The store will not outlive this CI job (where it is): its records
    /// say so, and so do the job's summary and comment.
    pub ephemeral: Option<String>,
    /// The reviewed request that brought the commit being read, when the
    /// forge said: mode changes seen there are credited to it.
    merge: std::sync::OnceLock<Merge>,
    /// Why the control store could not be opened, when a run that only
    /// reads goes on without it (shown by the surface as a warning).
    pub unavailable: Option<String>,
    /// The repository this run is about, where one store serves several
    /// (the bot): its audit records and modes are kept apart by it.
    repository: Option<String>,
}

/// The audit trail as published with a run's results.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Trail {
    /// The head after this run (SEQ:HASH), for `audit verify --expect`.
    Head(audit::Head),
    /// The store is inside the CI job's workspace (this path): nothing in
    /// it outlives the job.
    Ephemeral(String),
    /// No store was open.
    None,
}

/// Where envgate.toml was read, for the audit trail's mode records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigAt {
    /// A commit the caller knows (the bot: the event's, or the default
    /// branch's head for a command).
    Commit(String),
    /// The local checkout: git says which commit, and whether the file has
    /// uncommitted changes.
    Checkout,
    /// A pull or merge request's head: a configuration proposed, not in
    /// force, so its modes are not recorded.
    Proposed,
}

/// Per environment, what the matrix needs from the store.
pub struct Remembered {
    pub observed: Vec<Option<HashMap<String, Observed>>>,
    pub accepted: Vec<Option<HashMap<String, Accepted>>>,
    /// Bundles made for the environment (envgate's ledger), by id.
    pub exported: Vec<Option<HashMap<String, Exported>>>,
}

impl Memory {
    /// Opens the control store. `required`: commands that change something
    /// must be able to audit it; `status` only warns.
    pub async fn open(config: &Config, actor: Actor, required: bool) -> Result<Memory, Failure> {
        let key = audit_key().map_err(Failure::usage)?;
        let location = match &config.control_store {
            ControlStoreLocation::Postgres(url) => {
                let lookup = |v: &str| std::env::var(v).ok();
                let url = crate::config::interpolate(url, &lookup)
                    .map_err(|m| Failure::usage(format!("control_store: {m}")))?;
                crate::secrets::register_url(&url);
                ControlStoreLocation::Postgres(url)
            }
            other => other.clone(),
        };
        if let Some(msg) = shares_a_database(config, &location) {
            return Err(Failure::usage(msg));
        }
        let Actor { name, source } = actor;
        match ControlStore::open(&location).await {
            Ok(store) => Ok(Memory {
                store: Some(store),
                actor: name,
                source,
                key,
                ephemeral: None,
                merge: std::sync::OnceLock::new(),
                unavailable: None,
                repository: None,
            }),
            Err(e) if required => Err(Failure::usage(format!(
                "{} (envgate records every change it makes there; fix it or set control_store)",
                crate::core::redact::mask_url(&e)
            ))),
            Err(e) => Ok(Memory {
                store: None,
                actor: name,
                source,
                key,
                ephemeral: None,
                merge: std::sync::OnceLock::new(),
                unavailable: Some(format!(
                    "{}; nothing is remembered this run",
                    crate::core::redact::mask_url(&e)
                )),
                repository: None,
            }),
        }
    }

    /// A memory over an open store, for `actor` (the bot), sealing with
    /// `key`.
    pub fn with_store(store: ControlStore, actor: Actor, key: Option<audit::Key>) -> Memory {
        Memory {
            store: Some(store),
            actor: actor.name,
            source: actor.source,
            key,
            ephemeral: None,
            merge: std::sync::OnceLock::new(),
            unavailable: None,
            repository: None,
        }
    }

    /// This run is about `repository` (`github:owner/name`,
    /// `gitlab:group/project`): a store several repositories share keeps
    /// their audit records and modes apart by it.
    pub fn in_repository(mut self, repository: String) -> Memory {
        self.repository = Some(repository);
        self
    }

    /// The repository this run is about, when the store serves several.
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }

    /// Credits mode changes seen at `merge.commit` to the reviewed request
    /// that brought it (its merger, author and approvers, from the forge).
    pub fn attribute_to(&self, merge: Merge) {
        let _ = self.merge.set(merge);
    }

    /// What the trail is, for a check run, a comment or release notes: the
    /// head to publish, or why there is none worth publishing.
    pub async fn trail(&self) -> Trail {
        if let Some(at) = &self.ephemeral {
            return Trail::Ephemeral(at.clone());
        }
        match &self.store {
            Some(store) => store
                .head()
                .await
                .ok()
                .flatten()
                .map_or(Trail::None, Trail::Head),
            None => Trail::None,
        }
    }

    /// Who this run acts as.
    pub fn actor(&self) -> Actor {
        Actor::new(self.actor.clone(), self.source.clone())
    }

    /// Gives the store back.
    pub fn into_store(self) -> Option<ControlStore> {
        self.store
    }

    pub fn store(&self) -> Option<&ControlStore> {
        self.store.as_ref()
    }

    /// Appends to the audit trail.
    pub async fn audit(&self, entry: Entry) -> Result<(), Failure> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.append(store, entry)
            .await
            .map_err(|e| Failure::internal(format!("cannot write the audit trail: {e}")))
    }

    async fn append(&self, store: &ControlStore, mut entry: Entry) -> Result<(), String> {
        if entry.repository.is_none() {
            entry.repository.clone_from(&self.repository);
        }
        store.append(entry, self.key.as_ref()).await.map(|_| ())
    }

    /// The audit trail read whole and checked (with the audit key, and
    /// against `expected`, a published head, when given), then the records
    /// `filter` asks for: `envgate audit` and the console's audit page.
    pub async fn read_trail(
        &self,
        filter: &audit::Filter,
        expected: Option<audit::Head>,
    ) -> Result<(Vec<audit::Record>, audit::Check), Failure> {
        let Some(store) = &self.store else {
            return Err(Failure::internal("the control store is not open"));
        };
        let records = store
            .records()
            .await
            .map_err(|e| Failure::internal(format!("reading the audit trail: {e}")))?;
        let check = audit::check(&records, self.key.as_ref(), expected);
        let shown = records.into_iter().filter(|r| filter.matches(r)).collect();
        Ok((shown, check))
    }

    /// An audit entry by this run's actor, now.
    pub fn entry(&self, action: &str, env: Option<&str>, outcome: &str) -> Entry {
        Entry {
            at: now(),
            action: action.to_owned(),
            actor: self.actor.clone(),
            actor_source: Some(self.source.text()),
            environment: env.map(str::to_owned),
            outcome: outcome.to_owned(),
            ephemeral: self.ephemeral.is_some(),
            ..Entry::default()
        }
    }

    /// Records environments whose mode changed since the last run, in the
    /// audit trail too, attributed to who made the change as far as git
    /// says (the commit that last touched the mode's line, its author
    /// unverified), never to whoever happens to run now: writing through
    /// the gate is what an admin's run confirms ([`policy::write_gate`]).
    pub async fn track_modes(
        &self,
        config: &Config,
        envs: &[&EnvConfig],
        at: &ConfigAt,
    ) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if *at == ConfigAt::Proposed {
            return Ok(());
        }
        let mut commit: Option<Option<String>> = None;
        for env in envs {
            let previous = store.last_mode(&env.name, self.repository()).await?;
            if !policy::mode_changed(previous.as_ref(), env.mode) {
                continue;
            }
            let commit = commit
                .get_or_insert_with(|| match at {
                    ConfigAt::Commit(c) => Some(c.clone()),
                    ConfigAt::Checkout | ConfigAt::Proposed => config_commit(config),
                })
                .clone();
            let merge = self.merge.get().filter(|m| match at {
                ConfigAt::Commit(c) => &m.commit == c,
                ConfigAt::Checkout => commit.as_deref() == Some(m.commit.as_str()),
                ConfigAt::Proposed => false,
            });
            let (author, how) = match (at, merge) {
                (_, Some(m)) => {
                    let a = m.actor();
                    (Some(a.name), a.source)
                }
                (ConfigAt::Checkout | ConfigAt::Proposed, None) => attribute(config, env),
                (ConfigAt::Commit(_), None) => (None, Source::Unknown),
            };
            let record = policy::ModeRecord {
                mode: env.mode,
                actor: author.clone(),
                source: Some(how.text()),
                approvers: merge.map(|m| m.approvers.clone()).unwrap_or_default(),
                at: now(),
                commit: commit.clone(),
                confirmed_by: None,
            };
            store
                .record_mode(&env.name, self.repository(), &record)
                .await?;
            let from = previous.as_ref().map_or("(none)", |p| p.mode.as_str());
            let entry = Entry {
                actor: author.unwrap_or_else(|| "(unattributed)".to_owned()),
                actor_source: Some(how.text()),
                details: Some(format!(
                    "mode {from} -> {}{}{}; seen by {}",
                    env.mode,
                    match env.mode_source {
                        crate::core::mode::ModeSource::Default => " (default from the name)",
                        crate::core::mode::ModeSource::Config => "",
                    },
                    match merge {
                        Some(m) => format!("; {}", m.describe()),
                        None => commit
                            .as_deref()
                            .map_or(String::new(), |c| format!("; config at commit {c}")),
                    },
                    Actor::new(self.actor.clone(), self.source.clone()).shown()
                )),
                ..self.entry("mode_change", Some(&env.name), "ok")
            };
            self.append(store, entry).await?;
        }
        Ok(())
    }

    /// Loads first observations (ledgers without checksums) and accepted
    /// drift for each environment; `targets` name each environment's target.
    /// Problems with the store are warnings.
    pub async fn remembered(
        &self,
        envs: &[&EnvConfig],
        targets: &[String],
    ) -> (Remembered, Vec<String>) {
        let mut warnings = Vec::new();
        let mut observed = Vec::with_capacity(envs.len());
        let mut accepted = Vec::with_capacity(envs.len());
        let mut exported = Vec::with_capacity(envs.len());
        for (env, target) in envs.iter().zip(targets) {
            let Some(store) = &self.store else {
                observed.push(None);
                accepted.push(None);
                exported.push(None);
                continue;
            };
            exported.push(if env.ledger == Tool::Envgate {
                store
                    .exported(&env.name)
                    .await
                    .map_err(|e| warnings.push(format!("control store: {e}")))
                    .ok()
            } else {
                None
            });
            let scope = Scope {
                environment: &env.name,
                target,
                ledger: env.ledger.observation_scope(),
            };
            observed.push(if env.ledger == Tool::Envgate {
                None
            } else {
                store
                    .observed(&scope)
                    .await
                    .map_err(|e| warnings.push(format!("control store: {e}")))
                    .ok()
            });
            accepted.push(
                store
                    .accepted(&env.name, target)
                    .await
                    .map_err(|e| warnings.push(format!("control store: {e}")))
                    .ok(),
            );
        }
        (
            Remembered {
                observed,
                accepted,
                exported,
            },
            warnings,
        )
    }

    /// Keeps what a bundle records, so that its rows are recognised once
    /// a pipeline applies it.
    pub async fn remember_bundle(&self, b: &Bundle) -> Result<(), Failure> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        store
            .record_exported(&Exported::of(&b.manifest), &now())
            .await
            .map_err(|e| Failure::internal(format!("control store: {e}")))
    }

    /// After a status: records first observations, reports drift seen for
    /// the first time in the audit trail, and bundles seen applied (in a
    /// state not seen before: complete, partly, tampered). Problems are
    /// warnings.
    pub async fn after_status(
        &self,
        envs: &[&EnvConfig],
        targets: &[String],
        remembered: &Remembered,
        m: &Matrix<'_>,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(store) = &self.store else {
            return warnings;
        };
        let at = now();
        for (e, (env, target)) in envs.iter().zip(targets).enumerate() {
            if let Some(made) = remembered.exported.get(e).and_then(Option::as_ref) {
                let rows = (0..m.rows.len()).filter_map(|r| m.cells(r)[e].ledger);
                for seen in exported::sightings(rows, made) {
                    match store
                        .bundle_first_seen(&env.name, target, &seen.bundle_id, &seen.signature())
                        .await
                    {
                        Ok(true) => {
                            if let Err(err) =
                                self.append(store, self.bundle_applied(env, &seen)).await
                            {
                                warnings.push(format!("cannot write the audit trail: {err}"));
                            }
                        }
                        Ok(false) => {}
                        Err(err) => warnings.push(format!("control store: {err}")),
                    }
                }
            }
            if env.ledger != Tool::Envgate {
                let seen: Vec<(&str, crate::core::checksum::ContentHash)> = (0..m.rows.len())
                    .filter_map(|r| {
                        let cell = m.cells(r)[e];
                        let applied =
                            cell.ledger.is_some_and(|l| l.success) && cell.observed.is_none();
                        applied.then_some((m.rows[r].version, m.rows[r].hash?))
                    })
                    .collect();
                let scope = Scope {
                    environment: &env.name,
                    target,
                    ledger: env.ledger.observation_scope(),
                };
                if let Err(err) = store.record_observed(&scope, &seen, &at).await {
                    warnings.push(format!("control store: {err}"));
                }
            }
            for r in 0..m.rows.len() {
                let cell = m.cells(r)[e];
                let (State::Drifted, Some(today)) = (cell.state, m.rows[r].hash) else {
                    continue;
                };
                let id = m.rows[r].version;
                match store
                    .drift_first_seen(&env.name, target, id, &today.hex())
                    .await
                {
                    Ok(true) => {
                        let file = m.rows[r].file.unwrap_or(id);
                        let details = match cell.compared(&m.rows[r]) {
                            Some(Compared::Tool { today, then }) => format!(
                                "{file} changed: {} checksum now {today}, recorded {then}",
                                env.ledger.checksum().unwrap_or("the tool's")
                            ),
                            Some(Compared::FirstSeen { today, then, at }) => format!(
                                "{file} changed: now {today}, first seen applied as {then} at {at}"
                            ),
                            Some(Compared::Sha256 { today, then }) => {
                                format!("{file} changed: now {today}, recorded {then}")
                            }
                            Some(Compared::Unreadable { then, .. }) => {
                                format!("{file} changed: now {today}, recorded {then}")
                            }
                            None => format!("{file} changed: now {today}, recorded none"),
                        };
                        let entry = Entry {
                            migrations: vec![id.to_owned()],
                            details: Some(details),
                            ..self.entry("drift_detected", Some(&env.name), "detected")
                        };
                        if let Err(err) = self.append(store, entry).await {
                            warnings.push(format!("cannot write the audit trail: {err}"));
                        }
                    }
                    Ok(false) => {}
                    Err(err) => warnings.push(format!("control store: {err}")),
                }
            }
        }
        warnings
    }
}

impl Memory {
    /// The audit record of a bundle seen applied.
    fn bundle_applied(&self, env: &EnvConfig, seen: &exported::Sighting) -> Entry {
        use exported::Completion;
        let (migrations, what) = match &seen.completion {
            Completion::Complete => (Vec::new(), "applied completely".to_owned()),
            Completion::Partial { applied, missing } => (
                applied.clone(),
                format!(
                    "applied partly: {} applied, {} not",
                    applied.join(" "),
                    missing.join(" ")
                ),
            ),
            Completion::Unknown { applied } => (
                applied.clone(),
                "made elsewhere: this control store holds no manifest for it".to_owned(),
            ),
        };
        let mut details = format!("bundle {}: {what}", seen.bundle_id);
        for t in &seen.tampered {
            details.push_str(&format!(
                "; {} tampered: the manifest records {}, the ledger holds {}",
                t.version, t.manifest, t.ledger
            ));
        }
        Entry {
            release: seen.release.clone(),
            migrations,
            bundle_sha256: seen.bundle_sha256.clone(),
            details: Some(details),
            ..self.entry("bundle_applied", Some(&env.name), seen.outcome())
        }
    }
}

/// Who set an environment's mode, from git: the author of the commit that
/// last changed its line in envgate.toml (self-declared, so unverified);
/// nobody when the line is not committed or there is no repository.
fn attribute(config: &Config, env: &EnvConfig) -> (Option<String>, Source) {
    let repo = crate::git::Repo::at(&super::source::config_dir(config));
    let Some(name) = config.file.file_name().and_then(|n| n.to_str()) else {
        return (None, Source::Unknown);
    };
    match repo.blame_line(name, env.mode_line) {
        Some(b) => (
            Some(if b.email.is_empty() {
                b.author
            } else {
                format!("{} <{}>", b.author, b.email)
            }),
            Source::GitHistory { commit: b.commit },
        ),
        None => (None, Source::Unknown),
    }
}

/// The commit envgate.toml comes from: HEAD, marked when the file has
/// uncommitted changes.
fn config_commit(config: &Config) -> Option<String> {
    let repo = crate::git::Repo::at(&super::source::config_dir(config));
    let head = repo.head()?;
    let name = config.file.file_name()?.to_str()?;
    Some(if repo.is_modified(name) {
        format!("{head} (with uncommitted changes to {name})")
    } else {
        head
    })
}

/// The control store must not live in an environment's database: envgate
/// creates its own tables there, which would write to databases it
/// promises never to write.
fn shares_a_database(config: &Config, location: &ControlStoreLocation) -> Option<String> {
    use crate::db::{SqliteTarget, Target};
    let same_file = |a: &std::path::Path, b: &std::path::Path| {
        let canon =
            |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(a) == canon(b)
    };
    let store = match location {
        ControlStoreLocation::Sqlite(p) => Target::Sqlite(SqliteTarget::File(p.clone())),
        ControlStoreLocation::Postgres(url) => {
            Target::parse(url, &super::source::config_dir(config)).ok()?
        }
    };
    for env in &config.environments {
        let Ok(target) = super::environments::target(config, env) else {
            continue;
        };
        let same = match (&store, &target) {
            (Target::Sqlite(SqliteTarget::File(a)), Target::Sqlite(SqliteTarget::File(b))) => {
                same_file(a, b)
            }
            (Target::Postgres(_), Target::Postgres(_)) => {
                super::environments::target_label(&store)
                    == super::environments::target_label(&target)
            }
            _ => false,
        };
        if same {
            return Some(format!(
                "control_store is the database of environment '{}' ({}): envgate keeps its own tables there, so it would write to that database; point control_store elsewhere",
                env.name,
                super::environments::target_label(&target)
            ));
        }
    }
    None
}
