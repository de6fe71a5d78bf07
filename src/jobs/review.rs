//! The matrix of a commit, the same from the bot and from `envgate ci`:
//! the check's conclusion, title, Markdown matrix and annotations (reported
//! by [`Checks`]: a GitHub check run, a GitLab commit status, nothing in a
//! CI job), and for a pull or merge request one sticky note (the request's
//! own migrations, where they stand, and the bundle the first export_only
//! environment would receive), edited in place, never repeated.
//!
//! ```text
//! run: observe ─ summary ─ Checks::finished ─ request's files ─ note ─ sticky
//! ```

use super::remote::RepoApi;
use super::{Context, JobError, locked};
use crate::config::Config;
use crate::core::check::{self, Conclusion};
use crate::core::matrix::Matrix;
use crate::core::mode::Mode;
use crate::core::plan::{self, Direction, PlanInput};
use crate::forge::{ApiError, StickyOutcome, Thread, sticky};
use crate::ops::memory::{Memory, Remembered};
use crate::ops::observe::Observation;
use crate::ops::world::{Proposal, Reader, World};
use crate::render;
use serde::Serialize;
use std::collections::HashSet;

/// The hidden marker that finds envgate's comment on a pull or merge
/// request.
pub const PR_MARKER: &str = "<!-- envgate:pr -->";
/// GitHub's limit on a comment body and a check run's summary (GitLab's
/// is larger).
pub const BODY_LIMIT: usize = 65_000;

/// A matrix, summed up for a check run or a commit status.
pub struct Summary {
    pub conclusion: Conclusion,
    pub title: String,
    /// The matrix in Markdown, credentials masked.
    pub markdown: String,
    pub annotations: Vec<check::Annotation>,
    /// The audit trail's line (the head to verify against later, or why
    /// the trail goes with the job), Markdown; empty without a store.
    pub trail: String,
}

impl Summary {
    /// Adds the live schemas: a section after the matrix, and a failing
    /// conclusion when one differs from what its migrations produce.
    pub fn add_schemas(&mut self, schemas: &[crate::core::schema_drift::EnvSchema]) {
        self.markdown.push_str("\n\n#### Live schema\n\n");
        self.markdown
            .push_str(&crate::secrets::scrubbed(&render::schema_markdown(schemas)));
        let differing: Vec<&str> = schemas
            .iter()
            .filter(|s| s.differs())
            .map(|s| s.env.as_str())
            .collect();
        if !differing.is_empty() {
            self.conclusion = Conclusion::Failure;
            self.title = format!(
                "{}; live schema differs in {}",
                self.title,
                differing.join(", ")
            );
        }
    }

    /// Adds the lint of a request's migrations: an annotation per finding
    /// at its file and line, a section after the matrix, and a failing
    /// conclusion for an error.
    pub fn add_lint(&mut self, findings: &[crate::core::lint::Finding], linted: usize) {
        use crate::core::lint::Severity;
        for f in findings {
            self.annotations.push(check::Annotation {
                path: f.file.clone(),
                start_line: f.line as u32,
                end_line: f.line as u32,
                annotation_level: if f.severity == Severity::Error {
                    "failure"
                } else {
                    "warning"
                },
                title: format!("{} ({})", f.rule, f.source),
                message: match &f.help {
                    Some(h) => format!("{}\n{h}", f.message),
                    None => f.message.clone(),
                },
            });
        }
        self.markdown.push_str("\n\n");
        self.markdown
            .push_str(&crate::secrets::scrubbed(&render::lint_markdown(
                findings,
                linted,
                "this request adds",
            )));
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        if errors > 0 {
            self.conclusion = Conclusion::Failure;
            self.title = format!(
                "{}; lint: {errors} error{}",
                self.title,
                if errors == 1 { "" } else { "s" }
            );
        }
    }

    /// The Markdown a check run shows: the matrix, cut to fit, then the
    /// audit trail's line.
    pub fn check_markdown(&self) -> String {
        if self.trail.is_empty() {
            fit(&self.markdown, BODY_LIMIT)
        } else {
            format!(
                "{}\n\n{}",
                fit(&self.markdown, BODY_LIMIT - self.trail.len() - 2),
                self.trail
            )
        }
    }
}

pub fn summary(world: &World<'_>, m: &Matrix<'_>) -> Summary {
    let notes = crate::config::mode_notes(&world.envs);
    Summary {
        conclusion: check::conclusion(m),
        title: check::title(m),
        markdown: crate::secrets::scrubbed(&render::status_markdown(&world.envs, m, &notes)),
        annotations: check::annotations(m),
        trail: String::new(),
    }
}

#[derive(Serialize)]
struct EnvView<'a> {
    name: &'a str,
    mode: Mode,
}

#[derive(Serialize)]
struct NewRow {
    label: String,
    states: Vec<String>,
}

#[derive(Serialize)]
struct Preview {
    env: String,
    file: String,
    sql: String,
    fence: String,
    /// Migrations in the bundle that this request adds.
    added: Vec<String>,
    /// Migrations in the bundle from earlier changes, still pending there.
    earlier: Vec<String>,
}

#[derive(Serialize)]
struct View<'a> {
    marker: &'a str,
    title: String,
    sha: &'a str,
    envs: Vec<EnvView<'a>>,
    new: Vec<NewRow>,
    preview: Option<Preview>,
    preview_note: Option<String>,
    matrix: String,
    trail: &'a str,
    mode: Option<&'a str>,
    schema: Option<&'a str>,
    lint: Option<&'a str>,
}

/// The comment's sections besides the migrations: the audit trail's line
/// and the environments the request loosens.
pub struct Sections<'a> {
    pub trail: &'a str,
    pub mode: Option<&'a str>,
    /// The live schemas, Markdown, when compared.
    pub schema: Option<&'a str>,
    /// The lint of the request's migrations, Markdown.
    pub lint: Option<&'a str>,
}

/// The sticky comment's body. `added` holds the paths the request adds;
/// `actor` is who the preview bundle would be built by.
pub fn pr_comment(
    world: &World<'_>,
    m: &Matrix<'_>,
    remembered: &Remembered,
    added: &HashSet<String>,
    sha: &str,
    actor: &str,
    extra: Sections<'_>,
) -> String {
    let Sections {
        trail,
        mode,
        schema,
        lint,
    } = extra;
    let s = summary(world, m);
    let ids: HashSet<String> = world
        .discovery
        .migrations
        .iter()
        .filter(|x| added.contains(&x.up.path))
        .map(|x| x.id().to_owned())
        .collect();
    let new: Vec<NewRow> = m
        .rows
        .iter()
        .enumerate()
        .filter(|(_, row)| ids.contains(row.version))
        .map(|(i, row)| NewRow {
            label: crate::core::text::label(row.version, row.name),
            states: m
                .cells(i)
                .iter()
                .map(|c| render::marked_state(c.state))
                .collect(),
        })
        .collect();
    let (mut preview, mut preview_note) = (None, None);
    if let Some(e) = world
        .envs
        .iter()
        .position(|env| env.mode == Mode::ExportOnly)
        && !ids.is_empty()
    {
        let env = world.envs[e];
        match (&world.ledgers[e], &world.targets[e]) {
            (Ok(ledger), Ok(target)) => {
                let dialect = crate::ops::environments::dialect(target);
                // What the environment would receive at this commit: every
                // migration pending there, not only this request's, so the
                // preview is the bundle `export` would write.
                let p = plan::plan(&PlanInput {
                    env: &env.name,
                    mode: env.mode,
                    dialect,
                    migrations: &world.discovery.migrations,
                    ledger,
                    stop_at: None,
                    waive: crate::core::plan::Waive::NONE,
                    only: None,
                    accepted: remembered.accepted[e].as_ref(),
                });
                match p {
                    Ok(p) if !p.blockers.is_empty() => {
                        let why: Vec<String> = p
                            .blockers
                            .iter()
                            .map(|b| match b {
                                plan::Blocker::Drifted { version, .. } => {
                                    format!("{version} drifted")
                                }
                                plan::Blocker::Failed { version, .. } => {
                                    format!("{version} failed")
                                }
                                plan::Blocker::Refused { file, .. } => {
                                    format!("{file} cannot go into a bundle")
                                }
                                plan::Blocker::AppliedAfter { version } => {
                                    format!("{version} is applied after it")
                                }
                            })
                            .collect();
                        preview_note = Some(format!(
                            "No bundle preview: an export for {} would be refused as it stands ({}); `envgate plan --env {}` says why.",
                            env.name,
                            why.join(", "),
                            env.name
                        ));
                    }
                    Ok(p) if !p.steps.is_empty() => match preview_of(env, &p, dialect, actor, &ids)
                    {
                        Ok(pv) => preview = Some(pv),
                        Err(why) => preview_note = Some(why),
                    },
                    _ => {}
                }
            }
            (Err(err), _) => {
                preview_note = Some(format!(
                    "No bundle preview: {} could not be read ({err}).",
                    env.name
                ));
            }
            _ => {}
        }
    }
    let body = render::pr_comment(&View {
        marker: PR_MARKER,
        title: s.title,
        sha,
        envs: world
            .envs
            .iter()
            .map(|e| EnvView {
                name: &e.name,
                mode: e.mode,
            })
            .collect(),
        new,
        preview,
        preview_note,
        matrix: fit(&s.markdown, BODY_LIMIT / 2),
        trail,
        mode,
        schema,
        lint,
    });
    crate::secrets::scrubbed(&fit(&body, BODY_LIMIT))
}

/// The bundle `env` would receive for plan `p`, with which of its
/// migrations the request (`ids`) adds; or why there is none.
fn preview_of(
    env: &crate::config::EnvConfig,
    p: &plan::Plan<'_>,
    dialect: crate::core::sql::Dialect,
    actor: &str,
    ids: &HashSet<String>,
) -> Result<Preview, String> {
    let b = crate::ops::export::build(env, p, Direction::Up, dialect, None, actor)
        .map_err(|f| format!("No bundle preview: {}.", f.message))?;
    let sql = fit(&crate::secrets::scrubbed(&b.sql), BODY_LIMIT / 2);
    let (added, earlier): (Vec<_>, Vec<_>) = p
        .steps
        .iter()
        .map(|s| {
            (
                s.migration.id(),
                crate::core::text::label(s.migration.id(), &s.migration.name),
            )
        })
        .partition(|(id, _)| ids.contains(*id));
    Ok(Preview {
        env: env.name.clone(),
        file: format!("{}.sql", b.stem),
        fence: fence_for(&sql),
        sql,
        added: added.into_iter().map(|(_, l)| l).collect(),
        earlier: earlier.into_iter().map(|(_, l)| l).collect(),
    })
}

/// Where a commit's result shows: a GitHub check run, a GitLab commit
/// status; nothing for `envgate ci` (the job itself is the check).
#[allow(async_fn_in_trait)]
pub trait Checks {
    /// The matrix is being read.
    async fn started(&self) -> Result<(), ApiError>;
    async fn finished(&self, summary: &Summary) -> Result<(), ApiError>;
    /// The matrix could not be read.
    async fn failed(&self, why: &Unread) -> Result<(), ApiError>;
}

/// Why a commit's matrix could not be read.
#[derive(Clone, Debug)]
pub enum Unread {
    /// envgate.toml does not parse.
    Config(String),
    /// The migrations (or another part of the repository) could not be read.
    Migrations(String),
}

/// No checks: `envgate ci`.
pub struct NoChecks;

impl Checks for NoChecks {
    async fn started(&self) -> Result<(), ApiError> {
        Ok(())
    }
    async fn finished(&self, _: &Summary) -> Result<(), ApiError> {
        Ok(())
    }
    async fn failed(&self, _: &Unread) -> Result<(), ApiError> {
        Ok(())
    }
}

/// A pull or merge request to keep the note of.
pub struct Request<'a, T> {
    /// Its conversation; None when there is no token to read it with.
    pub thread: Option<&'a T>,
    /// The control store's lock that keeps two runs from writing the note
    /// at once (the bot's queue keeps these); None: no lock.
    pub key: Option<String>,
    /// Why the note is not to be kept (`envgate ci` on a fork, say).
    pub skip: Option<String>,
    /// The note's section on environments the request loosens (see
    /// [`super::mode`]).
    pub mode: Option<String>,
}

/// What became of the sticky note.
#[derive(Debug)]
pub enum Kept {
    Note(StickyOutcome),
    /// Not attempted, and why.
    Skipped(String),
    /// The forge refused it.
    Failed(ApiError),
}

/// A reviewed commit.
pub struct Reviewed<X> {
    pub summary: Summary,
    /// The request's note: its body and what became of it.
    pub note: Option<(String, Kept)>,
    /// What the caller's `extra` made of the matrix.
    pub extra: X,
    pub warnings: Vec<String>,
    /// The live schemas, when the review compared them.
    pub schemas: Option<Vec<crate::core::schema_drift::EnvSchema>>,
    /// The lint of the migrations the request adds.
    pub lint: Vec<crate::core::lint::Finding>,
}

/// Reviews a commit: observes the environments through `reach`, reports
/// the summary to `checks`, and for a request keeps its sticky note (under
/// the control store's lock `request.key`). `extra` reads the matrix for
/// the caller (a table, the JSON, a tally). A failure to read the matrix is
/// reported to `checks` and returned.
#[allow(clippy::too_many_arguments)]
pub async fn run<C: Checks, T: Thread, X>(
    config: &Config,
    memory: &Memory,
    reach: &impl Reader,
    checks: &C,
    sha: &str,
    request: Option<Request<'_, T>>,
    holder: &str,
    extra: impl FnOnce(&Observation<'_>, &Matrix<'_>) -> X,
) -> Result<Reviewed<X>, JobError> {
    // A request's configuration is proposed, not in force: its modes are
    // not recorded as the environments'.
    let reach = Proposal {
        inner: reach,
        proposed: request.is_some(),
    };
    let observed = Observation::status(
        config,
        memory,
        &reach,
        config.environments.iter().collect(),
        |obs, m| (summary(&obs.world, m), extra(obs, m)),
    )
    .await;
    let (obs, (mut summary, extra)) = match observed {
        Ok(o) => o,
        Err(f) => {
            checks
                .failed(&Unread::Migrations(f.message.clone()))
                .await?;
            return Err(JobError::from(f));
        }
    };
    let mut warnings = obs.warnings.clone();
    // A request's files: its new migrations are singled out and linted.
    let added = match &request {
        Some(r) => request_files(r.thread, &mut warnings).await?,
        None => HashSet::new(),
    };
    // The matrix once more, outside the status closure, when something
    // below reads it: the request's lint and note, the live schemas.
    let m = (request.is_some() || config.schema_drift.review)
        .then(|| obs.matrix(&obs.world.discovery.migrations));
    let added_migrations: Vec<&crate::core::migration::Migration> = obs
        .world
        .discovery
        .migrations
        .iter()
        .filter(|x| added.contains(&x.up.path))
        .collect();
    let lint = match &m {
        Some(m) if !added_migrations.is_empty() => {
            let findings =
                crate::ops::lint::findings(config, &obs.world, Some(m), &added_migrations);
            summary.add_lint(&findings, added_migrations.len());
            (findings, added_migrations.len())
        }
        _ => (Vec::new(), 0),
    };
    let mut schemas = None;
    if let (true, Some(m)) = (config.schema_drift.review, &m) {
        match crate::ops::schema::observe(config, &obs.world, m).await {
            Ok(s) => {
                summary.add_schemas(&s);
                schemas = Some(s);
            }
            Err(f) => warnings.push(format!("live schema not compared: {}", f.message)),
        }
    }
    // The head after this run's own records (mode changes, drift seen).
    summary.trail = render::trail(&memory.trail().await);
    checks.finished(&summary).await?;
    let note = match request {
        None => None,
        Some(r) => {
            let schema = schemas
                .as_deref()
                .map(|s| crate::secrets::scrubbed(&render::schema_markdown(s)));
            let lint_md = (lint.1 > 0).then(|| {
                crate::secrets::scrubbed(&render::lint_markdown(
                    &lint.0,
                    lint.1,
                    "this request adds",
                ))
            });
            let sections = Sections {
                trail: &summary.trail,
                mode: None,
                schema: schema.as_deref(),
                lint: lint_md.as_deref(),
            };
            let m = m.as_ref().expect("computed for every request");
            Some(keep_note(&obs, m, memory, r, &added, sha, holder, sections).await?)
        }
    };
    Ok(Reviewed {
        summary,
        note,
        extra,
        warnings,
        schemas,
        lint: lint.0,
    })
}

/// The bot's job for a commit: envgate.toml at it (none: nothing to do),
/// the check started, the review reported on it, and for a request its
/// sticky note.
pub async fn commit<R: RepoApi, C: Checks, T: Thread>(
    ctx: &Context<'_>,
    repo: &R,
    checks: &C,
    sha: &str,
    request: Option<Request<'_, T>>,
) -> Result<(), JobError> {
    let Some(config) = ctx.config_at(repo, sha).await? else {
        let (owner, name) = repo.owner_name();
        tracing::info!(repo = %format!("{owner}/{name}"), "no envgate.toml: nothing to do");
        return Ok(());
    };
    checks.started().await?;
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            checks.failed(&Unread::Config(e)).await?;
            return Ok(());
        }
    };
    let remote = ctx.remote(repo, sha);
    let reviewed = match run(
        &config,
        ctx.memory,
        &remote,
        checks,
        sha,
        request,
        ctx.holder,
        |_, _| (),
    )
    .await
    {
        Ok(r) => r,
        // Said on the check: the repository's to fix.
        Err(JobError::User(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for w in &reviewed.warnings {
        tracing::warn!("{w}");
    }
    match reviewed.note {
        Some((_, Kept::Failed(e))) => Err(JobError::from(e)),
        Some((_, Kept::Note(StickyOutcome::Superseded(head)))) => {
            tracing::info!(%head, "a newer commit is there: its job writes the note");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The files a request adds, when its thread can say them.
async fn request_files<T: Thread>(
    thread: Option<&T>,
    warnings: &mut Vec<String>,
) -> Result<HashSet<String>, JobError> {
    Ok(match thread {
        Some(t) => match t.added().await {
            Ok(a) => a,
            Err(e @ ApiError::Transient { .. }) => return Err(JobError::from(e)),
            Err(e) => {
                warnings.push(format!(
                    "cannot list the request's files ({e}); its new migrations are not singled out"
                ));
                HashSet::new()
            }
        },
        None => HashSet::new(),
    })
}

/// The request's note: its body (singling out the files the request adds)
/// and, unless skipped, the sticky note kept.
#[allow(clippy::too_many_arguments)]
async fn keep_note<T: Thread>(
    obs: &Observation<'_>,
    m: &Matrix<'_>,
    memory: &Memory,
    r: Request<'_, T>,
    added: &HashSet<String>,
    sha: &str,
    holder: &str,
    sections: Sections<'_>,
) -> Result<(String, Kept), JobError> {
    let body = pr_comment(
        &obs.world,
        m,
        &obs.remembered,
        added,
        sha,
        &memory.actor,
        Sections {
            mode: r.mode.as_deref(),
            ..sections
        },
    );
    let kept = match (r.skip, r.thread) {
        (Some(why), _) => Kept::Skipped(why),
        (None, None) => Kept::Skipped("no token to write it with".to_owned()),
        (None, Some(t)) => {
            let keep = async {
                Ok(match sticky(t, PR_MARKER, sha, &body).await {
                    Ok(s) => Kept::Note(s),
                    Err(e @ ApiError::Transient { .. }) => return Err(JobError::from(e)),
                    Err(e) => Kept::Failed(e),
                })
            };
            match &r.key {
                Some(key) => locked(memory, holder, key, keep).await?,
                None => keep.await?,
            }
        }
    };
    Ok((body, kept))
}

/// A code fence longer than any run of backticks in `text`.
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Cuts text to at most `limit` bytes at a line boundary, saying so.
pub fn fit(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let note = "\n\n… (cut: too long to show here; `envgate status` shows all of it)\n";
    let mut end = limit.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    format!("{}{note}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_fitting() {
        assert_eq!(fence_for("SELECT 1"), "```");
        assert_eq!(fence_for("-- ```` four"), "`````");
        let long = "line\n".repeat(1000);
        let cut = fit(&long, 200);
        assert!(cut.len() <= 200, "{}", cut.len());
        assert!(cut.ends_with("shows all of it)\n"));
        assert_eq!(fit("short", 200), "short");
    }
}
