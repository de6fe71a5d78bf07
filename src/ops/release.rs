//! Releases as operations: list them, show one, promote one to the next
//! environment, roll one back. Each returns a [`Reply`] (text or JSON and
//! an exit code) so the command line prints it and the bot posts it; every
//! refusal and every change is in the audit trail.
//!
//! A release's migrations are read from its tag, not from the working tree:
//! what ships is what was tagged, whatever the checkout or later edits.

use super::catalog::{self, Catalog};
use super::memory::Memory;
use super::observe::Observation;
use super::source::{History, Source};
use super::world::Reader;
use super::write::{self, Destination, Operation};
use super::{Failure, Output, Reply, environments, exit};
use crate::apply::{ApplyRequest, Quiet};
use crate::config::{Config, EnvConfig};
use crate::core::audit::Entry;
use crate::core::ledger::LedgerRow;
use crate::core::matrix::Matrix;
use crate::core::migration::Migration;
use crate::core::mode::Mode;
use crate::core::plan::{self, Direction, Plan, PlanInput};
use crate::core::promotion::{self, Action};
use crate::core::release::{self, Progress, Release};
use crate::core::sql::Dialect;
use crate::core::tools::Tool;
use crate::db::{SqliteTarget, Target};
use crate::{render, report};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A release as it is shown: its migrations, where each stands, and its
/// progress per environment.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseView {
    pub tag: String,
    pub explicit: bool,
    /// No final release comes before it: its migrations are everything
    /// up to its tag, not what was added since another.
    pub first: bool,
    pub prerelease: bool,
    pub migrations: Vec<MigrationView>,
    pub warnings: Vec<String>,
    pub problem: Option<String>,
    pub progress: Vec<Progress>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MigrationView {
    pub id: String,
    pub name: String,
    pub file: String,
    pub sha256: String,
    /// Its state in each environment, in promotion order.
    pub states: Vec<EnvState>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvState {
    pub environment: String,
    pub state: &'static str,
}

/// Whether no final release precedes `tag` in the catalog.
fn is_first(catalog: &catalog::Catalog, tag: &str) -> bool {
    catalog
        .releases
        .iter()
        .take_while(|x| x.tag != tag)
        .all(|x| x.prerelease)
}

fn view(r: &Release, first: bool, migrations: &[Migration], m: &Matrix<'_>) -> ReleaseView {
    let by_id: HashMap<&str, &Migration> = migrations.iter().map(|x| (x.id(), x)).collect();
    ReleaseView {
        tag: r.tag.clone(),
        explicit: r.explicit,
        first,
        prerelease: r.prerelease,
        migrations: r
            .migrations
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|mig| {
                let row = m.rows.iter().position(|x| x.version == mig.id());
                MigrationView {
                    id: mig.id().to_owned(),
                    name: mig.name.clone(),
                    file: mig.up.path.clone(),
                    sha256: mig.up.hash.hex(),
                    states: row.map_or_else(Vec::new, |row| {
                        m.envs
                            .iter()
                            .zip(m.cells(row))
                            .map(|(e, c)| EnvState {
                                environment: e.name.to_owned(),
                                state: c.state.as_str(),
                            })
                            .collect()
                    }),
                }
            })
            .collect(),
        warnings: r.warnings.clone(),
        problem: r.problem.clone(),
        progress: release::progress(r, m),
    }
}

/// `envgate releases`.
pub async fn list<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    reach: &impl Reader,
    output: Output,
) -> Result<Reply, Failure> {
    let situation =
        Observation::observe(config, memory, reach, config.environments.iter().collect()).await?;
    let history = History::new(src, config);
    let catalog = catalog::load(&history, config, situation.world.dialect(), None)
        .await
        .map_err(Failure::refused)?;
    let matrices: Vec<Matrix> = catalog
        .releases
        .iter()
        .map(|r| situation.matrix(catalog.migrations(&r.tag)))
        .collect();
    let views: Vec<ReleaseView> = catalog
        .releases
        .iter()
        .zip(&matrices)
        .map(|(r, m)| view(r, is_first(&catalog, &r.tag), catalog.migrations(&r.tag), m))
        .collect();
    let text = match output {
        Output::Json => render::json(&views),
        Output::Text => render::releases_text(&views, &config.release_tags),
    };
    Ok(Reply::text(crate::secrets::scrubbed(&text), exit::OK).warned(&situation.warnings))
}

#[derive(Serialize)]
pub struct BundleView {
    pub environment: String,
    pub bundle_id: String,
    pub file: String,
    pub bundle_sha256: String,
    /// Drift or failed runs there: export would refuse until resolved.
    pub blocked: bool,
    /// Earlier environments in the promotion order that lack the release
    /// ("staging (2/4)"): promoting here waits for them.
    pub waits_for: Vec<String>,
    pub sql: String,
}

/// One release, read from its tag: its view, and each export_only
/// environment's bundle of it (with how it is shown).
#[derive(Serialize)]
pub struct Shown {
    pub release: ReleaseView,
    pub bundles: Vec<BundleView>,
    #[serde(skip)]
    pub built: Vec<crate::core::bundle::Bundle>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The release at `tag`, its progress, and the exact bundle each
/// export_only environment would receive. A tag that is no release (or
/// cannot be read as one) is refused (exit code 3).
pub async fn shown<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    reach: &impl Reader,
    tag: &str,
) -> Result<Shown, Failure> {
    let situation =
        Observation::observe(config, memory, reach, config.environments.iter().collect()).await?;
    let history = History::new(src, config);
    let catalog = catalog::load(&history, config, situation.world.dialect(), Some(tag))
        .await
        .map_err(Failure::refused)?;
    let Some(r) = catalog.get(tag) else {
        return Err(Failure::refused(
            catalog::not_found(src, config, &catalog, tag).await,
        ));
    };
    let migrations = catalog.migrations(tag);
    let m = situation.matrix(migrations);
    let release = view(r, is_first(&catalog, tag), migrations, &m);
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    let mut built = Vec::new();
    let mut bundles = Vec::new();
    for (e, env) in situation.world.envs.iter().enumerate() {
        if env.mode != Mode::ExportOnly {
            continue;
        }
        let (Ok(ledger), Ok(target)) = (&situation.world.ledgers[e], &situation.world.targets[e])
        else {
            continue;
        };
        let dialect = environments::dialect(target);
        let p = plan::plan(&PlanInput {
            env: &env.name,
            mode: env.mode,
            dialect,
            migrations,
            ledger,
            stop_at: None,
            waive: crate::core::plan::Waive::NONE,
            only: Some(&ids),
            accepted: situation.remembered.accepted[e].as_ref(),
        })
        .map_err(|e| Failure::usage(e.to_string()))?;
        if p.steps.is_empty() {
            continue;
        }
        let Ok(b) =
            super::export::build(env, &p, Direction::Up, dialect, Some(&r.tag), &memory.actor)
        else {
            continue;
        };
        bundles.push(BundleView {
            environment: env.name.clone(),
            bundle_id: b.manifest.bundle_id.clone(),
            file: format!("{}.sql", b.stem),
            bundle_sha256: b.manifest.bundle_sha256.clone(),
            blocked: !p.blockers.is_empty(),
            waits_for: release.progress[..e]
                .iter()
                .filter(|p| !p.complete())
                .map(|p| format!("{} ({}/{})", p.environment, p.applied, p.total))
                .collect(),
            sql: b.sql.clone(),
        });
        built.push(b);
    }
    Ok(Shown {
        release,
        bundles,
        built,
        warnings: situation.warnings,
    })
}

/// `envgate release show <tag>`: [`shown`], as text or JSON.
pub async fn show<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    reach: &impl Reader,
    tag: &str,
    output: Output,
    sql: bool,
) -> Result<Reply, Failure> {
    let shown = shown(config, memory, src, reach, tag).await?;
    let text = match output {
        Output::Json => render::json(&shown),
        Output::Text => render::release_text(&shown, sql),
    };
    Ok(Reply {
        bundles: shown.built,
        ..Reply::text(crate::secrets::scrubbed(&text), exit::OK).warned(&shown.warnings)
    })
}

/// Where an export_only environment's bundle goes.
#[derive(Clone, Copy, Debug)]
pub enum BundleOut<'a> {
    /// Written with its manifest into this directory (default: `.`).
    Dir(Option<&'a Path>),
    /// Returned in the reply (the bot uploads it).
    Keep,
}

pub struct PromoteArgs<'a> {
    pub release: &'a str,
    pub to: Option<&'a str>,
    pub dry_run: bool,
    pub force: bool,
    pub reason: Option<&'a str>,
    pub waive: crate::core::plan::Waive,
    pub out: BundleOut<'a>,
    pub output: Output,
}

/// A SQLite target whose file does not exist yet.
fn sqlite_file_missing(target: &Target) -> bool {
    matches!(target, Target::Sqlite(SqliteTarget::File(p)) if !p.exists())
}

/// Runs `f`; a failure of the read side (configuration, connection) is
/// audited too.
async fn audited<T>(
    memory: &Memory,
    entry: &Entry,
    f: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match f.await {
        Ok(v) => Ok(v),
        Err(e) => Err(write::audit_failure(memory, entry.clone(), e).await),
    }
}

/// Loads the catalog keeping `tag`, and finds that release; refusals are
/// audited.
async fn release_at<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    dialect: Option<Dialect>,
    tag: &str,
    entry: &Entry,
) -> Result<(Catalog, Release), Failure> {
    let history = History::new(src, config);
    let catalog = match catalog::load(&history, config, dialect, Some(tag)).await {
        Ok(c) => c,
        Err(e) => return Err(write::refuse(memory, entry.clone(), e).await),
    };
    let Some(r) = catalog.get(tag).cloned() else {
        let msg = catalog::not_found(src, config, &catalog, tag).await;
        return Err(write::refuse(memory, entry.clone(), msg).await);
    };
    if let Some(problem) = &r.problem {
        return Err(write::refuse(memory, entry.clone(), problem.clone()).await);
    }
    Ok((catalog, r))
}

/// Refuses with a decision's reason: audited, exit code 3.
async fn refuse(memory: &Memory, entry: Entry, r: &promotion::Refusal) -> Failure {
    write::refuse(memory, entry, render::promotion(r, false)).await
}

/// What a decision with nothing to do says.
fn nothing(n: &promotion::Nothing) -> Reply {
    Reply::text(format!("{}\n", render::promotion(n, false)), exit::OK)
}

/// `envgate promote <release> [--to <env>]` and the bot's `/promote`:
/// read, decide ([`promotion::promote`]), audit, then export or apply.
pub async fn promote<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    reach: &impl Reader,
    args: &PromoteArgs<'_>,
) -> Result<Reply, Failure> {
    let base = |env: Option<&str>| Entry {
        release: Some(args.release.to_owned()),
        ..memory.entry("promote", env, "ok")
    };
    if args.force && args.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(Failure::usage(
            "--force needs --reason \"…\": the reason goes to the audit trail",
        ));
    }
    // Only the environments up to the destination are read: promoting to
    // dev needs neither prod's credentials nor its connection.
    let envs: Vec<&EnvConfig> = match args.to {
        Some(to) => match config.environments.iter().position(|e| e.name == to) {
            Some(i) => config.environments[..=i].iter().collect(),
            None => {
                let msg = write::no_such_env(config, to);
                return Err(write::refuse(memory, base(Some(to)), msg).await);
            }
        },
        None => config.environments.iter().collect(),
    };
    let situation = audited(
        memory,
        &base(args.to),
        Observation::observe(config, memory, reach, envs),
    )
    .await?;
    let (catalog, r) = release_at(
        config,
        memory,
        src,
        situation.world.dialect(),
        args.release,
        &base(args.to),
    )
    .await?;
    let migrations = catalog.migrations(&r.tag);
    let m = situation.matrix(migrations);
    let progress = release::progress(&r, &m);
    let target = match promotion::destination(&r.tag, args.to, &progress) {
        Ok(t) => t.to_owned(),
        Err(n) => return Ok(nothing(&n).warned(&situation.warnings)),
    };
    let Some(e) = situation
        .world
        .envs
        .iter()
        .position(|env| env.name == target)
    else {
        let msg = write::no_such_env(config, &target);
        return Err(write::refuse(memory, base(Some(&target)), msg).await);
    };
    let env = situation.world.envs[e];
    let entry = || Entry {
        migrations: r.migrations.clone(),
        ..base(Some(&env.name))
    };
    let db = match situation.world.target(e) {
        Ok(t) => t,
        Err(f) => return Err(write::audit_failure(memory, entry(), f).await),
    };
    let ledger: &[LedgerRow] = match &situation.world.ledgers[e] {
        Ok(l) => l,
        // A managed SQLite database is created by its first apply.
        Err(_) if env.mode == Mode::Managed && sqlite_file_missing(db) => &[],
        Err(err) => {
            let f = Failure::unreachable(format!(
                "environment '{}' could not be read: {err}",
                env.name
            ));
            return Err(write::audit_failure(memory, entry(), f).await);
        }
    };
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    let dialect = environments::dialect(db);
    let p = plan::plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect,
        migrations,
        ledger,
        stop_at: None,
        waive: args.waive,
        only: Some(&ids),
        accepted: situation.remembered.accepted[e].as_ref(),
    })
    .map_err(|e| Failure::usage(e.to_string()))?;
    let earlier = promotion::earlier_pending(migrations, &ids, ledger);
    let tool = (env.ledger != Tool::Envgate).then(|| env.ledger.as_str());
    let decision = promotion::promote(&promotion::Promotion {
        to: promotion::Destination {
            tag: &r.tag,
            env: &env.name,
            mode: env.mode,
            tool,
        },
        progress: &progress,
        earlier_pending: &earlier,
        plan: &p,
        force: args.force,
    });
    let forced = (!decision.forced.is_empty()).then(|| {
        let past: Vec<String> = decision
            .forced
            .iter()
            .map(|f| render::promotion(f, true))
            .collect();
        format!(
            "forced past: {}; reason: {}",
            past.join("; "),
            args.reason.unwrap_or_default()
        )
    });
    let entry = Entry {
        details: forced,
        ..entry()
    };
    let reply = match decision.action {
        Action::Nothing(n) => nothing(&n),
        Action::Refuse(why) => return Err(refuse(memory, entry, &why).await),
        Action::Export => {
            deliver(
                memory,
                Delivery {
                    env,
                    plan: &p,
                    direction: Direction::Up,
                    dialect,
                    tag: &r.tag,
                    dry_run: args.dry_run,
                    out: args.out,
                    output: args.output,
                },
                entry,
            )
            .await?
        }
        Action::Apply if args.dry_run => {
            let rep = report::plan_report(env, &p);
            let text = match args.output {
                Output::Json => render::json(&rep),
                Output::Text => format!(
                    "dry run: nothing is applied.\nrelease {}:\n{}",
                    r.tag,
                    render::plan_text(&rep)
                ),
            };
            Reply::text(crate::secrets::scrubbed(&text), exit::OK)
        }
        Action::Apply => {
            let access = write::gate(config, memory, env, &entry, &situation.config_at).await?;
            let req = ApplyRequest {
                env: &env.name,
                migrations,
                stop_at: None,
                waive: args.waive,
                actor: &memory.actor,
                release: Some(&r.tag),
                lock_timeout: env.lock_timeout,
                only: Some(&ids),
                accepted: situation.remembered.accepted[e].as_ref(),
            };
            let done = write::execute(
                memory,
                Destination { env, target: db },
                &access,
                Operation::Apply(req),
                entry,
                &mut Quiet,
            )
            .await?;
            done.reply(args.output)
        }
    };
    Ok(reply.warned(&situation.warnings))
}

/// A release bundle for an export_only environment.
struct Delivery<'a> {
    env: &'a EnvConfig,
    plan: &'a Plan<'a>,
    direction: Direction,
    dialect: Dialect,
    tag: &'a str,
    dry_run: bool,
    out: BundleOut<'a>,
    output: Output,
}

/// Builds the bundle and shows it (`--dry-run`), or writes it with its
/// manifest (or keeps it in the reply), audits it with `entry`, and says
/// how to apply it.
async fn deliver(memory: &Memory, d: Delivery<'_>, entry: Entry) -> Result<Reply, Failure> {
    let b = super::export::build(
        d.env,
        d.plan,
        d.direction,
        d.dialect,
        Some(d.tag),
        &memory.actor,
    )?;
    let what = match d.direction {
        Direction::Up => "bundle",
        Direction::Down => "rollback bundle",
    };
    if d.dry_run {
        let text = format!(
            "dry run: nothing is written.\nrelease {}: '{}' is export_only; this {what} would be written as {}.sql:\n\n{}",
            d.tag, d.env.name, b.stem, b.sql
        );
        return Ok(Reply::text(crate::secrets::scrubbed(&text), exit::OK));
    }
    // Remembered first: a bundle written is always recognised later.
    memory.remember_bundle(&b).await?;
    let (files, status) = match d.out {
        BundleOut::Dir(dir) => (super::export::write_bundle(&b, dir, d.dialect)?, "exported"),
        BundleOut::Keep => (super::export::describe(&b, None, d.dialect), "built"),
    };
    if let Err(f) = memory.audit(super::export::exported(entry, &b)).await {
        // Nothing half-done: no bundle without its audit record.
        if status == "exported" {
            let _ = std::fs::remove_file(&files.sql);
            let _ = std::fs::remove_file(&files.manifest);
        }
        return Err(f);
    }
    let rep = report::ExportReport {
        schema_version: 1,
        environment: &d.env.name,
        mode: d.env.mode,
        status,
        bundle: Some(files),
        blockers: &d.plan.blockers,
        warnings: &d.plan.warnings,
    };
    let text = match d.output {
        Output::Text => format!(
            "release {}{}: {}",
            d.tag,
            if d.direction == Direction::Down {
                " rollback"
            } else {
                ""
            },
            render::export_text(&rep)
        ),
        Output::Json => render::json(&rep),
    };
    let keep = matches!(d.out, BundleOut::Keep);
    Ok(Reply {
        bundles: if keep { vec![b] } else { Vec::new() },
        ..Reply::text(crate::secrets::scrubbed(&text), exit::OK)
    })
}

pub struct RollbackArgs<'a> {
    pub release: &'a str,
    pub env: &'a str,
    pub dry_run: bool,
    pub out: BundleOut<'a>,
    pub output: Output,
}

/// `envgate rollback <release> --env <env>` and the bot's `/rollback`:
/// read, decide ([`promotion::rollback`]), audit, then export or revert.
pub async fn rollback<S: Source>(
    config: &Config,
    memory: &Memory,
    src: &S,
    reach: &impl Reader,
    args: &RollbackArgs<'_>,
) -> Result<Reply, Failure> {
    let base = Entry {
        release: Some(args.release.to_owned()),
        ..memory.entry("rollback", Some(args.env), "ok")
    };
    let Some(env) = config.env(args.env) else {
        let msg = write::no_such_env(config, args.env);
        return Err(write::refuse(memory, base, msg).await);
    };
    let tool = (env.ledger != Tool::Envgate).then(|| env.ledger.as_str());
    let to = promotion::Destination {
        tag: args.release,
        env: &env.name,
        mode: env.mode,
        tool,
    };
    // Refused before anything is read when envgate never reverts there.
    if let Err(why) = promotion::reverts_there(&to) {
        return Err(refuse(memory, base, &why).await);
    }
    let situation = audited(
        memory,
        &base,
        Observation::observe(config, memory, reach, vec![env]),
    )
    .await?;
    let (catalog, r) = release_at(
        config,
        memory,
        src,
        situation.world.dialect(),
        args.release,
        &base,
    )
    .await?;
    let migrations = catalog.migrations(&r.tag);
    let ledger = match &situation.world.ledgers[0] {
        Ok(l) => l,
        Err(err) => {
            let f = Failure::unreachable(format!(
                "environment '{}' could not be read: {err}",
                env.name
            ));
            return Err(write::audit_failure(memory, base, f).await);
        }
    };
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    let db = match situation.world.target(0) {
        Ok(t) => t,
        Err(f) => return Err(write::audit_failure(memory, base.clone(), f).await),
    };
    let dialect = environments::dialect(db);
    let p = plan::rollback(&env.name, env.mode, dialect, migrations, ledger, &ids);
    let entry = Entry {
        migrations: p
            .steps
            .iter()
            .map(|s| s.migration.id().to_owned())
            .collect(),
        ..base.clone()
    };
    let to = promotion::Destination { tag: &r.tag, ..to };
    let reply = match promotion::rollback(&to, &p).action {
        Action::Nothing(n) => nothing(&n),
        Action::Refuse(why) => return Err(refuse(memory, entry, &why).await),
        Action::Export => {
            deliver(
                memory,
                Delivery {
                    env,
                    plan: &p,
                    direction: Direction::Down,
                    dialect,
                    tag: &r.tag,
                    dry_run: args.dry_run,
                    out: args.out,
                    output: args.output,
                },
                entry,
            )
            .await?
        }
        Action::Apply if args.dry_run => {
            let steps: Vec<String> = p
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "  {}  ({})",
                        crate::core::text::label(s.migration.id(), &s.migration.name),
                        s.migration.down.as_ref().map_or("", |d| d.path.as_str())
                    )
                })
                .collect();
            let text = format!(
                "dry run: nothing is reverted.\nrelease {}: would revert in '{}', newest first:\n{}\n",
                r.tag,
                env.name,
                steps.join("\n")
            );
            Reply::text(crate::secrets::scrubbed(&text), exit::OK)
        }
        Action::Apply => {
            let access = write::gate(config, memory, env, &entry, &situation.config_at).await?;
            let req = ApplyRequest {
                env: &env.name,
                migrations,
                stop_at: None,
                waive: crate::core::plan::Waive::NONE,
                actor: &memory.actor,
                release: Some(&r.tag),
                lock_timeout: env.lock_timeout,
                only: None,
                accepted: None,
            };
            let done = write::execute(
                memory,
                Destination { env, target: db },
                &access,
                Operation::Rollback(req, &ids),
                entry,
                &mut Quiet,
            )
            .await?;
            done.reply(args.output)
        }
    };
    Ok(reply.warned(&situation.warnings))
}
