//! Releases on the command line: `releases`, `release show`, `promote` and
//! `rollback`.
//!
//! ```text
//! $ envgate promote v2.4.0
//! release v2.4.0: applied 2 migrations to 'dev' as alice:
//!   20260424_001_add_trash   12 ms
//!   20260424_002_audit_idx    4 ms
//! ```

use super::memory::Memory;
use super::status::World;
use super::{Failure, ReportFormat, common, exit, write};
use crate::apply::{ApplyRequest, Quiet};
use crate::config::{Config, EnvConfig};
use crate::core::audit::Entry;
use crate::core::ledger::LedgerRow;
use crate::core::matrix::{self, Matrix};
use crate::core::migration::Migration;
use crate::core::mode::Mode;
use crate::core::plan::Plan;
use crate::core::plan::{self, Direction, PlanInput};
use crate::core::redact::Redactor;
use crate::core::release::{self, Progress, Release, TagChanges};
use crate::core::sql::Dialect;
use crate::core::tools::Tool;
use crate::git::Repo;
use crate::target::{SqliteTarget, Target};
use crate::{render, report};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

fn config_dir(config: &Config) -> &Path {
    config
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The releases, oldest first: tags matching `release_tags`, in semantic
/// version order, each with the migrations added since the previous one
/// (or those `releases/<tag>.toml` / `[releases."<tag>"]` list).
pub fn load(config: &Config, migrations: &[Migration]) -> Result<Vec<Release>, String> {
    let repo = Repo::at(config_dir(config));
    let mut tags = repo.tags(&config.release_tags)?;
    release::sort_tags(&mut tags);
    let mut explicit: HashMap<String, Vec<String>> = config.releases.clone().into_iter().collect();
    for tag in &tags {
        let file = config_dir(config)
            .join("releases")
            .join(format!("{tag}.toml"));
        if let Ok(text) = std::fs::read_to_string(&file) {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Listed {
                migrations: Vec<String>,
            }
            let listed: Listed = toml::from_str(&text)
                .map_err(|e| format!("{}: {}", file.display(), e.message()))?;
            explicit.insert(tag.clone(), listed.migrations);
        }
    }
    let dir = config.migrations.trim_end_matches('/');
    let mut changes = Vec::with_capacity(tags.len());
    let mut previous: Option<&str> = None;
    for tag in &tags {
        let mut c = TagChanges {
            tag: tag.clone(),
            ..TagChanges::default()
        };
        for change in repo.changes(previous, tag, dir)? {
            if change.added {
                c.added.push(change.path);
            } else {
                c.modified.push(change.path);
            }
        }
        changes.push(c);
        previous = Some(tag);
    }
    release::releases(&changes, &explicit, migrations).map_err(|e| e.to_string())
}

/// Finds a release by tag, telling a missing tag from one that is not a
/// release.
fn find<'a>(config: &Config, releases: &'a [Release], tag: &str) -> Result<&'a Release, String> {
    if let Some(r) = releases.iter().find(|r| r.tag == tag) {
        return Ok(r);
    }
    if Repo::at(config_dir(config)).has_tag(tag) {
        Err(format!(
            "tag {tag} is not a release: release tags match '{}'",
            config.release_tags
        ))
    } else {
        let known: Vec<&str> = releases.iter().map(|r| r.tag.as_str()).collect();
        Err(format!(
            "no release {tag}: there is no such tag (releases: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    }
}

/// The matrix over every environment, with what the store remembers.
struct Situation<'c> {
    world: World<'c>,
    remembered: super::memory::Remembered,
}

impl<'c> Situation<'c> {
    async fn read(config: &'c Config, memory: &Memory) -> Result<Situation<'c>, Failure> {
        let world = World::read(config, config.environments.iter().collect()).await?;
        if let Err(e) = memory.track_modes(config, &world.envs).await {
            eprintln!("warning: control store: {e}");
        }
        let remembered = memory.remembered(&world.envs, &world.labels).await;
        Ok(Situation { world, remembered })
    }

    fn matrix(&self) -> Matrix<'_> {
        matrix::compute(
            &self.world.discovery.migrations,
            &self.world.inputs(&self.remembered),
        )
    }
}

#[derive(Serialize)]
struct ReleaseView<'a> {
    tag: &'a str,
    explicit: bool,
    migrations: Vec<MigrationView<'a>>,
    warnings: &'a [String],
    progress: Vec<Progress>,
}

#[derive(Serialize)]
struct MigrationView<'a> {
    id: &'a str,
    name: &'a str,
    file: &'a str,
    sha256: String,
    /// Its state in each environment, in promotion order.
    states: Vec<EnvState>,
}

#[derive(Serialize)]
struct EnvState {
    environment: String,
    state: &'static str,
}

fn view<'a>(r: &'a Release, migrations: &'a [Migration], m: &Matrix<'_>) -> ReleaseView<'a> {
    let by_id: HashMap<&str, &Migration> = migrations.iter().map(|x| (x.id(), x)).collect();
    ReleaseView {
        tag: &r.tag,
        explicit: r.explicit,
        migrations: r
            .migrations
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|mig| {
                let row = m.rows.iter().position(|x| x.version == mig.id());
                MigrationView {
                    id: mig.id(),
                    name: &mig.name,
                    file: &mig.up.path,
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
        warnings: &r.warnings,
        progress: release::progress(r, m),
    }
}

/// A SQLite target whose file does not exist yet.
fn sqlite_file_missing(target: &Target) -> bool {
    matches!(target, Target::Sqlite(SqliteTarget::File(p)) if !p.exists())
}

/// `envgate releases`.
pub async fn list(config: &Config, format: ReportFormat) -> Result<i32, Failure> {
    let memory = Memory::open(config, common::actor(None), false).await?;
    let situation = Situation::read(config, &memory).await?;
    let migrations = &situation.world.discovery.migrations;
    let releases = load(config, migrations).map_err(Failure::refused)?;
    let m = situation.matrix();
    let views: Vec<ReleaseView> = releases.iter().map(|r| view(r, migrations, &m)).collect();
    let text = match format {
        ReportFormat::Json => render::json(&views),
        ReportFormat::Table => render::releases_text(&views, &config.release_tags),
    };
    common::print(&situation.world.redactor, &text)?;
    Ok(exit::OK)
}

/// `envgate release show <tag>`.
pub async fn show(
    config: &Config,
    tag: &str,
    format: ReportFormat,
    sql: bool,
) -> Result<i32, Failure> {
    let memory = Memory::open(config, common::actor(None), false).await?;
    let situation = Situation::read(config, &memory).await?;
    let migrations = &situation.world.discovery.migrations;
    let releases = load(config, migrations).map_err(Failure::refused)?;
    let r = find(config, &releases, tag).map_err(Failure::refused)?;
    let m = situation.matrix();
    let v = view(r, migrations, &m);
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    // The bundle each export_only environment would receive.
    let mut bundles = Vec::new();
    for (e, env) in situation.world.envs.iter().enumerate() {
        if env.mode != Mode::ExportOnly {
            continue;
        }
        let Ok(ledger) = &situation.world.ledgers[e] else {
            continue;
        };
        let p = plan::plan(&PlanInput {
            env: &env.name,
            mode: env.mode,
            dialect: common::dialect(&situation.world.targets[e]),
            migrations,
            ledger,
            target: None,
            allow_drift: false,
            only: Some(&ids),
        })
        .map_err(|e| Failure::usage(e.to_string()))?;
        if p.steps.is_empty() {
            continue;
        }
        let b = super::export::build(
            env,
            &p,
            Direction::Up,
            common::dialect(&situation.world.targets[e]),
            Some(&r.tag),
            &memory.actor,
        );
        bundles.push(BundleView {
            environment: env.name.clone(),
            bundle_id: b.manifest.bundle_id.clone(),
            file: format!("{}.sql", b.stem),
            bundle_sha256: b.manifest.bundle_sha256.clone(),
            blocked: !p.blockers.is_empty(),
            sql: b.sql,
        });
    }
    #[derive(Serialize)]
    struct Show<'a> {
        release: ReleaseView<'a>,
        bundles: Vec<BundleView>,
    }
    let out = Show {
        release: v,
        bundles,
    };
    let text = match format {
        ReportFormat::Json => render::json(&out),
        ReportFormat::Table => render::release_text(&out, sql),
    };
    common::print(&situation.world.redactor, &text)?;
    Ok(exit::OK)
}

#[derive(Serialize)]
struct BundleView {
    environment: String,
    bundle_id: String,
    file: String,
    bundle_sha256: String,
    /// Drift or failed runs there: export would refuse until resolved.
    blocked: bool,
    sql: String,
}

pub struct PromoteArgs {
    pub release: String,
    pub to: Option<String>,
    pub dry_run: bool,
    pub actor: Option<String>,
    pub force: bool,
    pub reason: Option<String>,
    pub allow_drift: bool,
    pub out: Option<PathBuf>,
    pub format: ReportFormat,
}

/// `envgate promote <release> [--to <env>]`.
pub async fn promote(config: &Config, args: PromoteArgs) -> Result<i32, Failure> {
    let memory = Memory::open(config, common::actor(args.actor.as_deref()), !args.dry_run).await?;
    let base = |env: Option<&str>| Entry {
        release: Some(args.release.clone()),
        ..memory.entry("promote", env, "ok")
    };
    if args.force && args.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Failure::usage(
            "--force needs --reason \"…\": the reason goes to the audit trail",
        ));
    }
    let situation = Situation::read(config, &memory).await?;
    let migrations = &situation.world.discovery.migrations;
    let releases = match load(config, migrations) {
        Ok(r) => r,
        Err(e) => return Err(write::refuse(&memory, base(args.to.as_deref()), e).await),
    };
    let r = match find(config, &releases, &args.release) {
        Ok(r) => r,
        Err(e) => return Err(write::refuse(&memory, base(args.to.as_deref()), e).await),
    };
    let m = situation.matrix();
    let progress = release::progress(r, &m);
    let target = match args
        .to
        .clone()
        .or_else(|| release::next_environment(&progress).map(str::to_owned))
    {
        Some(t) => t,
        None => {
            common::print(
                &situation.world.redactor,
                &format!(
                    "release {}: applied in every environment; nothing to promote.\n",
                    r.tag
                ),
            )?;
            return Ok(exit::OK);
        }
    };
    let Some(e) = situation
        .world
        .envs
        .iter()
        .position(|env| env.name == target)
    else {
        let msg = write::no_such_env(config, &target);
        return Err(write::refuse(&memory, base(Some(&target)), msg).await);
    };
    let env = situation.world.envs[e];
    let entry = || Entry {
        migrations: r.migrations.clone(),
        ..base(Some(&env.name))
    };
    // Every earlier environment must have the release (or --force).
    let gaps = release::gaps(&progress, &env.name);
    let mut forced = None;
    if !gaps.is_empty() {
        let list: Vec<String> = gaps
            .iter()
            .map(|g| {
                if g.reachable {
                    format!("{} has {}/{} applied", g.environment, g.applied, g.total)
                } else {
                    format!("{} could not be read", g.environment)
                }
            })
            .collect();
        let msg = format!(
            "release {} is not fully applied before '{}' in the promotion order: {}",
            r.tag,
            env.name,
            list.join("; ")
        );
        if !args.force {
            return Err(write::refuse(
                &memory,
                entry(),
                format!("{msg} (promote it there first, or --force --reason \"…\")"),
            )
            .await);
        }
        forced = Some(format!(
            "forced past: {msg}; reason: {}",
            args.reason.clone().unwrap_or_default()
        ));
    }
    let db = &situation.world.targets[e];
    let ledger: &[LedgerRow] = match &situation.world.ledgers[e] {
        Ok(l) => l,
        // A managed SQLite database is created by its first apply.
        Err(_) if env.mode == Mode::Managed && sqlite_file_missing(db) => &[],
        Err(err) => {
            let f = Failure::unreachable(format!(
                "environment '{}' could not be read: {err}",
                env.name
            ));
            return Err(write::audit_failure(&memory, entry(), f).await);
        }
    };
    // Migrations of earlier releases still pending there come first.
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    let newest = migrations.iter().rposition(|x| ids.contains(x.id()));
    let applied: HashSet<&str> = ledger
        .iter()
        .filter(|l| l.success)
        .map(|l| l.version.as_str())
        .collect();
    let earlier_pending: Vec<&str> = migrations
        .iter()
        .enumerate()
        .filter(|(i, x)| newest.is_some_and(|n| *i < n) && !ids.contains(x.id()) && !x.repeatable)
        .filter(|(_, x)| !applied.contains(x.id()))
        .map(|(_, x)| x.id())
        .collect();
    if !earlier_pending.is_empty() && !args.force {
        let msg = format!(
            "'{}' still has older migrations pending that are not part of {}: {} (promote their releases first, or --force --reason \"…\")",
            env.name,
            r.tag,
            earlier_pending.join(", ")
        );
        return Err(write::refuse(&memory, entry(), msg).await);
    }
    let dialect = common::dialect(db);
    let p = plan::plan(&PlanInput {
        env: &env.name,
        mode: env.mode,
        dialect,
        migrations,
        ledger,
        target: None,
        allow_drift: args.allow_drift,
        only: Some(&ids),
    })
    .map_err(|e| Failure::usage(e.to_string()))?;
    match env.mode {
        Mode::ReconcileOnly => {
            let pending: Vec<&str> = p.steps.iter().map(|s| s.migration.id()).collect();
            let by = if env.ledger == Tool::Envgate {
                "outside envgate".to_owned()
            } else {
                format!("by its own tool ({}), never by envgate", env.ledger)
            };
            let msg = format!(
                "'{}' is reconcile_only: its migrations are applied {by}; pending there from {}: {}",
                env.name,
                r.tag,
                if pending.is_empty() {
                    "none".to_owned()
                } else {
                    pending.join(", ")
                }
            );
            Err(write::refuse(&memory, entry(), msg).await)
        }
        Mode::ExportOnly => {
            if !p.blockers.is_empty() {
                let msg = format!(
                    "'{}' has drift or failed runs before the release: {}",
                    env.name,
                    p.blockers
                        .iter()
                        .map(|b| b.summary())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(write::refuse(
                    &memory,
                    entry(),
                    format!("{msg} (resolve it, or --allow-drift)"),
                )
                .await);
            }
            if p.steps.is_empty() {
                common::print(
                    &situation.world.redactor,
                    &format!("release {}: already applied in '{}'.\n", r.tag, env.name),
                )?;
                return Ok(exit::OK);
            }
            deliver(
                &memory,
                &situation.world.redactor,
                Delivery {
                    env,
                    plan: &p,
                    direction: Direction::Up,
                    dialect,
                    tag: &r.tag,
                    dry_run: args.dry_run,
                    out: args.out.as_deref(),
                    format: args.format,
                },
                Entry {
                    details: forced,
                    ..entry()
                },
            )
            .await
        }
        Mode::Managed => {
            if args.dry_run {
                let rep = report::plan_report(env, &p);
                let text = format!(
                    "dry run: nothing is applied.\nrelease {}:\n{}",
                    r.tag,
                    render::plan_text(&rep)
                );
                common::print(&situation.world.redactor, &text)?;
                return Ok(exit::OK);
            }
            let entry = Entry {
                details: forced,
                ..entry()
            };
            let access = write::gate(config, &memory, env, &entry).await?;
            let req = ApplyRequest {
                env: &env.name,
                migrations,
                target: None,
                allow_drift: args.allow_drift,
                actor: &memory.actor,
                release: Some(&r.tag),
                lock_timeout: env.lock_timeout,
                only: Some(&ids),
            };
            let report = write::execute(
                &memory,
                write::Destination {
                    env,
                    target: db,
                    redactor: &situation.world.redactor,
                },
                &access,
                write::Operation::Apply(req),
                entry,
                &mut Quiet,
            )
            .await?;
            write::finish(&report, args.format, &situation.world.redactor)
        }
    }
}

/// A release bundle for an export_only environment.
struct Delivery<'a> {
    env: &'a EnvConfig,
    plan: &'a Plan<'a>,
    direction: Direction,
    dialect: Dialect,
    tag: &'a str,
    dry_run: bool,
    out: Option<&'a Path>,
    format: ReportFormat,
}

/// Builds the bundle and shows it (`--dry-run`), or writes it with its
/// manifest, audits it with `entry`, and says how to apply it.
async fn deliver(
    memory: &Memory,
    redactor: &Redactor,
    d: Delivery<'_>,
    entry: Entry,
) -> Result<i32, Failure> {
    let b = super::export::build(
        d.env,
        d.plan,
        d.direction,
        d.dialect,
        Some(d.tag),
        &memory.actor,
    );
    let what = match d.direction {
        Direction::Up => "bundle",
        Direction::Down => "rollback bundle",
    };
    if d.dry_run {
        let text = format!(
            "dry run: nothing is written.\nrelease {}: '{}' is export_only; this {what} would be written as {}.sql:\n\n{}",
            d.tag, d.env.name, b.stem, b.sql
        );
        common::print(redactor, &text)?;
        return Ok(exit::OK);
    }
    let files = super::export::write_bundle(&b, d.out, d.dialect)?;
    memory.audit(super::export::exported(entry, &b)).await?;
    let rep = report::ExportReport {
        schema_version: 1,
        environment: &d.env.name,
        mode: d.env.mode,
        status: "exported",
        bundle: Some(files),
        blockers: &d.plan.blockers,
        warnings: &d.plan.warnings,
    };
    let text = match d.format {
        ReportFormat::Table => format!(
            "release {}{}: {}",
            d.tag,
            if d.direction == Direction::Down {
                " rollback"
            } else {
                ""
            },
            render::export_text(&rep)
        ),
        ReportFormat::Json => render::json(&rep),
    };
    common::print(redactor, &text)?;
    Ok(exit::OK)
}

pub struct RollbackArgs {
    pub release: String,
    pub env: String,
    pub dry_run: bool,
    pub actor: Option<String>,
    pub out: Option<PathBuf>,
    pub format: ReportFormat,
}

/// `envgate rollback <release> --env <env>`.
pub async fn rollback(config: &Config, args: RollbackArgs) -> Result<i32, Failure> {
    let memory = Memory::open(config, common::actor(args.actor.as_deref()), !args.dry_run).await?;
    let base = Entry {
        release: Some(args.release.clone()),
        ..memory.entry("rollback", Some(&args.env), "ok")
    };
    let Some(env) = config.env(&args.env) else {
        let msg = write::no_such_env(config, &args.env);
        return Err(write::refuse(&memory, base, msg).await);
    };
    if env.ledger != Tool::Envgate || env.mode == Mode::ReconcileOnly {
        let msg = format!(
            "'{}' is reconcile_only: its migrations are applied and reverted {}, never by envgate",
            env.name,
            if env.ledger == Tool::Envgate {
                "outside envgate".to_owned()
            } else {
                format!("by its own tool ({})", env.ledger)
            }
        );
        return Err(write::refuse(&memory, base, msg).await);
    }
    let inputs = common::plan_inputs(config, env).await?;
    let migrations = &inputs.discovery.migrations;
    let releases = match load(config, migrations) {
        Ok(r) => r,
        Err(e) => return Err(write::refuse(&memory, base, e).await),
    };
    let r = match find(config, &releases, &args.release) {
        Ok(r) => r,
        Err(e) => return Err(write::refuse(&memory, base, e).await),
    };
    let ids: HashSet<String> = r.migrations.iter().cloned().collect();
    let dialect = common::dialect(&inputs.target);
    let p = plan::rollback(
        &env.name,
        env.mode,
        dialect,
        migrations,
        &inputs.ledger,
        &ids,
    );
    let entry = Entry {
        migrations: p
            .steps
            .iter()
            .map(|s| s.migration.id().to_owned())
            .collect(),
        ..base.clone()
    };
    if p.steps.is_empty() {
        common::print(
            &inputs.redactor,
            &format!(
                "release {}: nothing of it is applied in '{}'; nothing to revert.\n",
                r.tag, env.name
            ),
        )?;
        return Ok(exit::OK);
    }
    let without = p.without_down();
    if !without.is_empty() {
        let msg = format!(
            "release {} cannot be rolled back in '{}': no down script for {}; nothing was changed",
            r.tag,
            env.name,
            without.join(", ")
        );
        return Err(write::refuse(&memory, entry, msg).await);
    }
    let steps: Vec<String> = p
        .steps
        .iter()
        .map(|s| {
            format!(
                "  {}_{}  ({})",
                s.migration.id(),
                s.migration.name,
                s.migration.down.as_ref().map_or("", |d| d.path.as_str())
            )
        })
        .collect();
    match env.mode {
        Mode::ReconcileOnly => unreachable!("refused above"),
        Mode::ExportOnly => {
            deliver(
                &memory,
                &inputs.redactor,
                Delivery {
                    env,
                    plan: &p,
                    direction: Direction::Down,
                    dialect,
                    tag: &r.tag,
                    dry_run: args.dry_run,
                    out: args.out.as_deref(),
                    format: args.format,
                },
                entry,
            )
            .await
        }
        Mode::Managed => {
            if args.dry_run {
                let text = format!(
                    "dry run: nothing is reverted.\nrelease {}: would revert in '{}', newest first:\n{}\n",
                    r.tag,
                    env.name,
                    steps.join("\n")
                );
                common::print(&inputs.redactor, &text)?;
                return Ok(exit::OK);
            }
            let access = write::gate(config, &memory, env, &entry).await?;
            let req = ApplyRequest {
                env: &env.name,
                migrations,
                target: None,
                allow_drift: false,
                actor: &memory.actor,
                release: Some(&r.tag),
                lock_timeout: env.lock_timeout,
                only: None,
            };
            let report = write::execute(
                &memory,
                write::Destination {
                    env,
                    target: &inputs.target,
                    redactor: &inputs.redactor,
                },
                &access,
                write::Operation::Rollback(req, &ids),
                entry,
                &mut Quiet,
            )
            .await?;
            write::finish(&report, args.format, &inputs.redactor)
        }
    }
}
