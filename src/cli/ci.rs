//! `envgate ci`: envgate inside the CI a team already has. It finds out
//! where it runs (GitHub Actions, GitLab CI, neither) from the standard
//! variables, optionally runs a command first (export, promote, apply),
//! then computes the matrix and does what the event calls for:
//!
//! - a pull or merge request: the matrix in the job summary and one sticky
//!   comment (the same body and marker as the bot's);
//! - a release tag: each export_only environment's release bundle, written
//!   to the output directory and attached to the release;
//! - anything else, or no CI at all: the matrix, like `status`.
//!
//! Outputs go to `$GITHUB_OUTPUT` (GitHub) or a dotenv file (GitLab); the
//! exit code follows `--fail-on`.

use super::{Failure, exit};
use crate::config::Config;
use crate::config::ControlStoreLocation;
use crate::core::ci::{self, Ci, GitHubRun, GitLabRun, Trigger};
use crate::core::matrix::Tally;
use crate::core::mode::Mode;
use crate::forge::{ApiError, Fate, StickyOutcome, Thread, github, gitlab};
use crate::jobs::release::{Built, Publisher};
use crate::jobs::review::{self, Kept, NoChecks, Request, Reviewed};
use crate::jobs::{self, JobError};
use crate::ops::memory::Memory;
use crate::ops::release::{BundleOut, PromoteArgs, Shown};
use crate::ops::source::LocalGit;
use crate::ops::world::Local;
use crate::ops::{Output, environments, export, write};
use crate::render;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `envgate ci` runs before it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CiCommand {
    /// Only report (the default).
    Status,
    /// Write each export_only environment's pending bundle.
    Export,
    /// Promote a release (--release, else the tag being built) to the
    /// next environment or --env.
    Promote,
    /// Apply pending migrations to the --env environments (managed).
    Apply,
}

#[derive(clap::Args)]
pub struct CiArgs {
    /// Run this first
    #[arg(long, value_enum, default_value = "status")]
    pub command: CiCommand,
    /// Environments: those the matrix shows, and the command's targets;
    /// repeatable or comma-separated [default: all]
    #[arg(long = "env", value_name = "ENV", value_delimiter = ',')]
    pub envs: Vec<String>,
    /// The release to promote [default: the tag being built]
    #[arg(long)]
    pub release: Option<String>,
    /// Findings that fail the job: drift, failed, missing, unreachable,
    /// pending, schema, lint, or none
    #[arg(long, default_value = crate::core::ci::DEFAULT_FAIL_ON)]
    pub fail_on: String,
    /// Also compare each environment's live schema with what its
    /// migrations produce (as `[schema_drift] review = true`): in the log,
    /// the summary, the comment and schema.json
    #[arg(long)]
    pub schema: bool,
    /// Keep the sticky pull/merge request comment
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    pub comment: bool,
    /// Where matrix.json and bundles go [default: $RUNNER_TEMP/envgate, else ./envgate-ci]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    Failure::internal(format!("{}: {e}", path.display()))
}

/// A warning in the job log: a workflow command on GitHub, a plain line
/// elsewhere.
fn warn(on_github: bool, text: &str) {
    if on_github {
        crate::outln!("::warning title=envgate::{}", ci::command_data(text));
    } else {
        crate::errln!("warning: {text}");
    }
}

/// The matrix for the job summary, with the audit trail's line.
fn with_trail(s: &jobs::review::Summary) -> String {
    if s.trail.is_empty() {
        s.markdown.clone()
    } else {
        format!("{}\n\n{}", s.markdown, s.trail)
    }
}

/// What the matrix gave the job: the table for the log, the JSON for
/// matrix.json, the tally for outputs and --fail-on.
struct Shown_ {
    table: String,
    json: String,
    /// The same matrix as one self-contained page.
    html: String,
    tally: Tally,
    /// Environments whose live schema differs (when compared).
    schemas_differ: usize,
    /// Error-severity lint findings in the request's migrations.
    lint_errors: usize,
}

pub async fn run(config: &Config, args: CiArgs) -> Result<i32, Failure> {
    let fail_on = ci::parse_fail_on(&args.fail_on).map_err(Failure::usage)?;
    let detected = ci::detect(var).map_err(Failure::usage)?;
    let out_dir = args.out_dir.clone().unwrap_or_else(|| match &detected {
        Ci::GitHub(_) => var("RUNNER_TEMP").map_or_else(
            || PathBuf::from("envgate-ci"),
            |t| PathBuf::from(t).join("envgate"),
        ),
        _ => PathBuf::from("envgate-ci"),
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| io_fail(&out_dir, e))?;
    if detected == Ci::None {
        crate::errln!(
            "envgate ci: not running in GitHub Actions or GitLab CI (neither GITHUB_ACTIONS nor GITLAB_CI is \"true\"): showing the status only"
        );
    }
    let tag = match &detected {
        Ci::GitHub(run) => ci::tag_of(&run.git_ref).map(str::to_owned),
        Ci::GitLab(run) => run.tag.clone(),
        Ci::None => None,
    };
    let mut memory = Memory::open(config, environments::actor(None), false).await?;
    if let ControlStoreLocation::Sqlite(path) = &config.control_store {
        let absolute = std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.clone());
        if ci::in_job(&absolute, detected.job_dirs()) {
            warn(
                matches!(detected, Ci::GitHub(_)),
                &format!(
                    "the control store {} is inside this job's workspace: its audit records go with the job and are marked ephemeral. Point it at the team's PostgreSQL (control_store, the Action's control-store input, ENVGATE_CONTROL_STORE) to keep one trail.",
                    path.display()
                ),
            );
            memory.ephemeral = Some(path.display().to_string());
        }
    }
    let command_code = run_command(config, &memory, &args, tag.as_deref(), &out_dir).await?;

    let ctx = Ctx {
        github: matches!(detected, Ci::GitHub(_)),
        config,
        args: &args,
        memory: &memory,
        out_dir: &out_dir,
        deferred: std::cell::RefCell::new(None),
    };
    let (shown, fork) = match &detected {
        Ci::GitHub(run) => on_github(&ctx, run).await?,
        Ci::GitLab(run) => on_gitlab(&ctx, run).await?,
        Ci::None => (
            ctx.review::<github::IssueThread>("", None).await?.extra,
            false,
        ),
    };
    let tally = shown.tally;
    let matrix_json = out_dir.join("matrix.json");
    std::fs::write(&matrix_json, crate::secrets::scrubbed(&shown.json))
        .map_err(|e| io_fail(&matrix_json, e))?;
    let matrix_html = out_dir.join("matrix.html");
    std::fs::write(&matrix_html, crate::secrets::scrubbed(&shown.html))
        .map_err(|e| io_fail(&matrix_html, e))?;
    // A fork's pull request runs without the repository's secrets: its
    // environments are unreachable by design, which is not the change's
    // fault.
    let mut fail_on = fail_on;
    if fork && tally.unreachable > 0 && fail_on.contains(&ci::Finding::Unreachable) {
        fail_on.retain(|f| *f != ci::Finding::Unreachable);
        warn(
            matches!(detected, Ci::GitHub(_)),
            "unreachable environments do not fail this job: a request from a fork runs without the repository's secrets",
        );
    }

    let bundles = bundle_paths(&out_dir)?;
    match &detected {
        Ci::GitHub(run) => {
            if let Some(path) = &run.output {
                let text = ci::github_outputs(&outputs(&tally, &matrix_json, &bundles));
                append(Path::new(path), &text)?;
            }
        }
        Ci::GitLab(_) => {
            let path = out_dir.join("envgate.env");
            let text: String = outputs(&tally, &matrix_json, &bundles)
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "ENVGATE_{}={}\n",
                        k.to_uppercase().replace('-', "_"),
                        v.replace('\n', " ")
                    )
                })
                .collect();
            std::fs::write(&path, crate::secrets::scrubbed(&text))
                .map_err(|e| io_fail(&path, e))?;
        }
        Ci::None => {}
    }

    if let Some(f) = ctx.deferred.take() {
        return Err(f);
    }
    if command_code != exit::OK {
        return Ok(command_code);
    }
    let failing = ci::failing(
        &fail_on,
        &tally,
        ci::Beyond {
            schemas: shown.schemas_differ,
            lint_errors: shown.lint_errors,
        },
    );
    if failing.is_empty() {
        Ok(exit::OK)
    } else {
        let text = format!(
            "envgate: {} (fail-on: {})",
            failing.join(", "),
            fail_on
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        if matches!(detected, Ci::GitHub(_)) {
            crate::outln!("::error title=envgate::{}", ci::command_data(&text));
        } else {
            crate::errln!("{text}");
        }
        Ok(exit::CHECK_FAILED)
    }
}

fn outputs(t: &Tally, matrix_json: &Path, bundles: &[PathBuf]) -> Vec<(&'static str, String)> {
    vec![
        ("drifted", t.drifted.to_string()),
        ("pending", t.pending.to_string()),
        ("failed", t.failed.to_string()),
        ("missing", t.missing.to_string()),
        ("unreachable", t.unreachable.to_string()),
        ("matrix-json", matrix_json.display().to_string()),
        (
            "bundles",
            bundles
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ]
}

/// The SQL bundles in the output directory, sorted.
fn bundle_paths(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_fail(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    out.sort();
    Ok(out)
}

fn append(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(crate::secrets::scrub(text).as_bytes()))
        .map_err(|e| io_fail(path, e))
}

/// Runs `--command` through the same use cases as the commands; its exit
/// code.
async fn run_command(
    config: &Config,
    memory: &Memory,
    args: &CiArgs,
    tag: Option<&str>,
    out_dir: &Path,
) -> Result<i32, Failure> {
    let mut code = exit::OK;
    let show = |reply: crate::ops::Reply| super::show(reply);
    match args.command {
        CiCommand::Status => {}
        CiCommand::Export => {
            let envs: Vec<String> = if args.envs.is_empty() {
                config
                    .environments
                    .iter()
                    .filter(|e| e.mode == Mode::ExportOnly)
                    .map(|e| e.name.clone())
                    .collect()
            } else {
                args.envs.clone()
            };
            for env in envs {
                let env = environments::env(config, &env)?;
                let reply = export::export(
                    config,
                    memory,
                    env,
                    None,
                    crate::core::plan::Waive::NONE,
                    Some(out_dir),
                    Output::Text,
                )
                .await?;
                code = code.max(show(reply)?);
            }
        }
        CiCommand::Promote => {
            let release = args.release.clone().or(tag.map(str::to_owned)).ok_or_else(|| {
                Failure::usage(
                    "--command promote needs a release: --release (the action's `release` input) or a tag build",
                )
            })?;
            if args.envs.len() > 1 {
                return Err(Failure::usage(
                    "--command promote takes one environment (--env)",
                ));
            }
            let reply = crate::ops::release::promote(
                config,
                memory,
                &LocalGit::new(config),
                &Local,
                &PromoteArgs {
                    release: &release,
                    to: args.envs.first().map(String::as_str),
                    dry_run: false,
                    force: false,
                    reason: None,
                    waive: crate::core::plan::Waive::NONE,
                    out: BundleOut::Dir(Some(out_dir)),
                    output: Output::Text,
                },
            )
            .await?;
            code = show(reply)?;
        }
        CiCommand::Apply => {
            if args.envs.is_empty() {
                return Err(Failure::usage(
                    "--command apply needs the environments to apply to (--env)",
                ));
            }
            for env in &args.envs {
                let env = environments::env(config, env)?;
                let reply = write::apply(
                    config,
                    memory,
                    env,
                    write::Bounds::default(),
                    Output::Text,
                    super::apply::progress().as_mut(),
                )
                .await?;
                code = code.max(show(reply)?);
            }
        }
    }
    Ok(code)
}

struct Ctx<'a> {
    /// Warnings as GitHub workflow commands.
    github: bool,
    config: &'a Config,
    args: &'a CiArgs,
    memory: &'a Memory,
    out_dir: &'a Path,
    /// A failure that must not stop the outputs from being written (the
    /// release API refusing the bundles already on disk): reported last.
    deferred: std::cell::RefCell<Option<Failure>>,
}

impl Ctx<'_> {
    /// The matrix of the checkout (the environments named, else all: with
    /// secrets scoped per environment, the others may not be reachable from
    /// this job), its table in the log, and for a request its note (the
    /// same job as the bot's).
    async fn review<T: Thread>(
        &self,
        sha: &str,
        request: Option<Request<'_, T>>,
    ) -> Result<Reviewed<Shown_>, Failure> {
        let envs = environments::select(self.config, &self.args.envs)?;
        let mut config = self.config.clone();
        config
            .environments
            .retain(|e| envs.iter().any(|x| x.name == e.name));
        if self.args.schema {
            config.schema_drift.review = true;
        }
        let holder = format!("envgate ci {}", std::process::id());
        let title = match var("GITHUB_REPOSITORY").or_else(|| var("CI_PROJECT_PATH")) {
            Some(repo) => format!("envgate status · {repo}"),
            None => super::status::page_title(self.config),
        };
        let reviewed = review::run(
            &config,
            self.memory,
            &Local,
            &NoChecks,
            sha,
            request,
            &holder,
            |obs, m| {
                let notes = crate::config::mode_notes(&obs.world.envs);
                Shown_ {
                    table: render::status_table(&obs.world.envs, m, &notes, false),
                    json: render::status_json(&obs.world.envs, m),
                    html: render::status_html(&obs.world.envs, m, &title),
                    tally: m.tally(),
                    schemas_differ: 0,
                    lint_errors: 0,
                }
            },
        )
        .await
        .map_err(failure)?;
        for w in &reviewed.warnings {
            warn(self.github, w);
        }
        super::print(&reviewed.extra.table)?;
        let mut reviewed = reviewed;
        if !reviewed.lint.is_empty() {
            let linted: std::collections::HashSet<&str> =
                reviewed.lint.iter().map(|f| f.file.as_str()).collect();
            super::print(&format!(
                "\nLint\n{}",
                render::lint_text(&reviewed.lint, linted.len())
            ))?;
            for f in &reviewed.lint {
                if self.github {
                    let level = if f.severity == crate::core::lint::Severity::Error {
                        "error"
                    } else {
                        "warning"
                    };
                    crate::outln!(
                        "::{level} file={},line={},col={},title={}::{}",
                        ci::command_property(&f.file),
                        f.line,
                        f.column,
                        ci::command_property(&f.rule),
                        ci::command_data(&f.message)
                    );
                }
            }
            reviewed.extra.lint_errors = reviewed
                .lint
                .iter()
                .filter(|f| f.severity == crate::core::lint::Severity::Error)
                .count();
        }
        if let Some(schemas) = &reviewed.schemas {
            super::print(&format!("\nLive schema\n{}", render::schema_text(schemas)))?;
            let path = self.out_dir.join("schema.json");
            std::fs::write(
                &path,
                crate::secrets::scrubbed(&render::schema_json(schemas)),
            )
            .map_err(|e| io_fail(&path, e))?;
            reviewed.extra.schemas_differ = schemas.iter().filter(|s| s.differs()).count();
        }
        Ok(reviewed)
    }

    /// Builds the release's bundles from its tag (the same job as the
    /// bot's), writes them (SQL and manifest) to the output directory, and
    /// publishes them when there is a forge to publish to.
    async fn release(
        &self,
        tag: &str,
        publisher: Option<&impl Publisher>,
    ) -> Result<Vec<String>, Failure> {
        let built = jobs::release::build(
            self.config,
            self.memory,
            &LocalGit::new(self.config),
            &Local,
            tag,
        )
        .await
        .map_err(failure)?;
        let shown: Box<Shown> = match built {
            Built::Release(s) => s,
            Built::NotARelease(why) => return Err(Failure::refused(why)),
        };
        let mut written = Vec::new();
        for b in &shown.built {
            let f = jobs::release::files(b);
            for f in [f.sql, f.manifest] {
                let path = self.out_dir.join(&f.name);
                std::fs::write(&path, &f.bytes).map_err(|e| io_fail(&path, e))?;
                crate::errln!("envgate ci: wrote {}", path.display());
                written.push(f.name);
            }
        }
        if let Some(p) = publisher {
            // The bundles are on disk: a refusal to publish them must not
            // keep the step's outputs (which name them) from being set.
            let published = match jobs::release::publish(&shown, p, self.memory, false).await {
                Ok(p) => p,
                Err(e) => {
                    let f = failure(e);
                    warn(
                        self.github,
                        &format!(
                            "the bundles were written but not attached to release {tag}: {}",
                            f.message
                        ),
                    );
                    *self.deferred.borrow_mut() = Some(f);
                    return Ok(written);
                }
            };
            for f in published {
                let did = match f.fate {
                    Fate::Kept => "kept".to_owned(),
                    Fate::Uploaded => "uploaded".to_owned(),
                    Fate::Replaced { was } => format!(
                        "replaced (was sha256 {})",
                        was.as_deref().unwrap_or("unknown")
                    ),
                };
                crate::errln!("envgate ci: {tag}: {} {did}", f.name);
            }
        }
        Ok(written)
    }
}

/// A job's error as the command line's: the user's (exit 2), an outage
/// (exit 4), a bug (exit 5).
fn failure(e: JobError) -> Failure {
    match e {
        JobError::User(m) => Failure::usage(m),
        JobError::Transient(m, _) => Failure::unreachable(m),
        JobError::Bug(m) => Failure::internal(m),
    }
}

/// How to get a GitLab token that may write notes.
const GITLAB_GRANT: &str =
    "Set ENVGATE_GITLAB_TOKEN to a project access token (api scope, Developer role).";

/// How a forge names things, for messages.
struct Words {
    /// Warnings as GitHub workflow commands.
    github: bool,
    request: &'static str,
    note: &'static str,
    /// `#2`, `!7`.
    number: String,
    /// What gives the token write access.
    grant: &'static str,
}

/// A pull or merge request's part of the job summary: the note's body,
/// and why no note was kept when none was (a warning too). A token the
/// forge refuses is such a reason, not a failure.
fn request_summary(reviewed: &Reviewed<Shown_>, w: &Words) -> Result<String, Failure> {
    let Some((body, kept)) = &reviewed.note else {
        return Ok(String::new());
    };
    let mut body = body.clone();
    let skipped = match kept {
        Kept::Skipped(why) => Some(why.clone()),
        Kept::Note(StickyOutcome::Superseded(newer)) => {
            // A run for an older commit that ends last must not write
            // over the newer commit's note.
            crate::errln!(
                "envgate ci: {} {} is at {newer} now: its own run writes the {}",
                w.request,
                w.number,
                w.note
            );
            None
        }
        Kept::Note(s) => {
            let done = match s {
                StickyOutcome::Created => "created",
                StickyOutcome::Edited => "updated",
                _ => "unchanged",
            };
            crate::errln!("envgate ci: {} {}: {} {done}", w.request, w.number, w.note);
            None
        }
        Kept::Failed(e) if cannot_write(e) => Some(format!(
            "the token may not write the {} ({e}). {}",
            w.note, w.grant
        )),
        Kept::Failed(e) => {
            return Err(Failure::internal(format!("{} {}: {e}", w.request, w.note)));
        }
    };
    if let Some(why) = skipped {
        warn(w.github, &format!("No {} {}: {why}", w.request, w.note));
        body.push_str(&format!("\n\n> No {} {}: {why}\n", w.request, w.note));
    }
    Ok(body)
}

/// A pull or merge request: the matrix, and the summary's part for it —
/// the note kept unless `skip` (or `--comment false`) says otherwise.
async fn review_request<T: Thread>(
    ctx: &Ctx<'_>,
    head: &str,
    thread: Option<&T>,
    skip: Option<String>,
    mode: Option<String>,
    words: &Words,
) -> Result<(Shown_, String), Failure> {
    let quiet = !ctx.args.comment;
    let request = Request {
        thread,
        key: None,
        skip: if quiet {
            Some("--comment false".to_owned())
        } else {
            skip
        },
        mode,
    };
    let reviewed = ctx.review(head, Some(request)).await?;
    let body = if quiet {
        reviewed
            .note
            .as_ref()
            .map(|(b, _)| b.clone())
            .unwrap_or_default()
    } else {
        request_summary(&reviewed, words)?
    };
    Ok((reviewed.extra, body))
}

/// The request's envgate/mode review (see [`jobs::mode`]): envgate.toml
/// here against the target's, read through the forge; the note's section.
/// A token that may not read approvals or set the status is a warning.
async fn mode_review(
    ctx: &Ctx<'_>,
    repo: &impl jobs::remote::RepoApi,
    base: &str,
    head: &str,
    approvals: &impl jobs::mode::Approvals,
    check: &impl jobs::mode::ModeCheck,
    github: bool,
) -> Result<Option<String>, Failure> {
    let path = ctx
        .config
        .file
        .to_string_lossy()
        .trim_start_matches("./")
        .to_owned();
    let before = match repo.file(&path, base).await {
        Ok(Some(bytes)) => {
            match crate::config::parse(Path::new(&path), &String::from_utf8_lossy(&bytes)) {
                Ok(c) => Some(c),
                // The target's own configuration is broken: nothing to compare.
                Err(_) => return Ok(None),
            }
        }
        Ok(None) => None,
        Err(e) => return mode_problem(e, github),
    };
    let request = if github {
        "pull request"
    } else {
        "merge request"
    };
    match jobs::mode::judge(before.as_ref(), ctx.config, head, approvals, check, request).await {
        Ok(section) => Ok(section),
        Err(e) => mode_problem(e, github),
    }
}

/// Credits mode changes at this commit to the request that merged it;
/// a forge that will not say costs only the credit (a warning).
fn credit_merge(
    memory: &Memory,
    merge: Result<Option<crate::core::identity::Merge>, ApiError>,
    github: bool,
) {
    match merge {
        Ok(Some(m)) => memory.attribute_to(m),
        Ok(None) => {}
        Err(e) => warn(
            github,
            &format!(
                "cannot tell which request merged this commit ({e}): a mode changed here is credited from git"
            ),
        ),
    }
}

fn mode_problem(e: ApiError, github: bool) -> Result<Option<String>, Failure> {
    match e {
        ApiError::Transient { message, .. } => Err(Failure::unreachable(message)),
        e => {
            warn(
                github,
                &format!(
                    "no envgate/mode check: {e} ({})",
                    if github {
                        "give the job `permissions: statuses: write` and `pull-requests: read`"
                    } else {
                        "set ENVGATE_GITLAB_TOKEN to a token that may read approvals and set commit statuses"
                    }
                ),
            );
            Ok(None)
        }
    }
}

/// Why a token could not comment, for the log.
fn cannot_write(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Status {
            status: 401 | 403 | 404,
            ..
        }
    )
}

/// The GitHub part: the matrix, and what the event calls for; whether the
/// run is for a fork's pull request.
async fn on_github(ctx: &Ctx<'_>, run: &GitHubRun) -> Result<(Shown_, bool), Failure> {
    let event: Option<ci::Event> = match &run.event_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| io_fail(Path::new(p), e))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!(
                    "{p} (GITHUB_EVENT_PATH): not an event payload: {e}"
                ))
            })?)
        }
        None => None,
    };
    let trigger = match (event.and_then(|e| e.pull_request), ci::tag_of(&run.git_ref)) {
        (Some(pr), _) if run.event_name.starts_with("pull_request") => Trigger::Review {
            number: pr.number,
            fork: pr.from_fork() && run.event_name != "pull_request_target",
            base: Some(pr.base.sha.clone()),
            head: pr.head.sha,
        },
        (_, Some(tag)) if crate::core::release::tag_matches(&ctx.config.release_tags, tag) => {
            Trigger::Release {
                tag: tag.to_owned(),
            }
        }
        _ => Trigger::Other,
    };
    let client = match var("GITHUB_TOKEN") {
        Some(t) => Some(github::GitHub::with_token(&run.api_url, t).map_err(Failure::usage)?),
        None => None,
    };
    let (owner, name) = run.repository.split_once('/').ok_or_else(|| {
        Failure::usage(format!(
            "GITHUB_REPOSITORY: '{}' is not owner/name",
            run.repository
        ))
    })?;
    let repo = client.as_ref().map(|c| c.repo(0, owner, name));
    let mut summary = String::new();
    let (shown, fork) = match trigger {
        Trigger::Review {
            number,
            head,
            fork,
            base,
        } => {
            let skip = if fork {
                Some("the pull request comes from a fork, where the workflow's token may not write. The matrix is in the job summary.".to_owned())
            } else if repo.is_none() {
                Some(
                    "GITHUB_TOKEN is not set (the action passes its `github-token` input)."
                        .to_owned(),
                )
            } else {
                None
            };
            let thread = repo.as_ref().map(|r| r.thread(number));
            let mode = match (&repo, &base) {
                (Some(r), Some(base)) if !fork => {
                    let approvals = jobs::github::PullApprovals { repo: r, number };
                    let check = jobs::github::ModeStatus {
                        repo: r,
                        sha: &head,
                    };
                    mode_review(ctx, r, base, &head, &approvals, &check, true).await?
                }
                _ => None,
            };
            let words = Words {
                github: true,
                request: "pull request",
                note: "comment",
                number: format!("#{number}"),
                grant: "Give the job `permissions: pull-requests: write`.",
            };
            let (shown, body) =
                review_request(ctx, &head, thread.as_ref(), skip, mode, &words).await?;
            summary.push_str(&body);
            (shown, fork)
        }
        Trigger::Release { tag } => {
            let reviewed = ctx.review::<github::IssueThread>("", None).await?;
            let publisher = repo.as_ref().map(|r| jobs::github::Release::new(r, false));
            let written = ctx.release(&tag, publisher.as_ref()).await?;
            if repo.is_none() && !written.is_empty() {
                warn(
                    true,
                    "GITHUB_TOKEN is not set: the bundles are not attached to the release",
                );
            }
            if repo.is_some() && ctx.deferred.borrow().is_none() {
                for name in &written {
                    crate::errln!("envgate ci: {name} is on release {tag}");
                }
            }
            summary.push_str(&format!(
                "### envgate · release {tag}\n\n{}\n",
                written
                    .iter()
                    .map(|n| format!("- `{n}`"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
            summary.push_str("\n\n");
            summary.push_str(&with_trail(&reviewed.summary));
            (reviewed.extra, false)
        }
        Trigger::Other => {
            // A push: a mode changed here is credited to the pull request
            // that merged it, when the forge says which.
            if let (Some(r), Some(sha), "push") =
                (&repo, var("GITHUB_SHA"), run.event_name.as_str())
            {
                credit_merge(ctx.memory, jobs::github::merge_of(r, &sha).await, true);
            }
            let reviewed = ctx.review::<github::IssueThread>("", None).await?;
            summary.push_str(&with_trail(&reviewed.summary));
            (reviewed.extra, false)
        }
    };
    if let Some(path) = &run.step_summary {
        append(Path::new(path), &format!("{}\n", summary.trim_end()))?;
    }
    Ok((shown, fork))
}

/// The GitLab part: the matrix, and what the pipeline calls for; whether
/// the run is for a fork's merge request.
async fn on_gitlab(ctx: &Ctx<'_>, run: &GitLabRun) -> Result<(Shown_, bool), Failure> {
    let token = match (var("ENVGATE_GITLAB_TOKEN"), var("CI_JOB_TOKEN")) {
        (Some(t), _) => Some(gitlab::Token::Private(t)),
        (None, Some(t)) => Some(gitlab::Token::Job(t)),
        _ => None,
    };
    let client = match token {
        Some(t) => Some(gitlab::GitLab::new(&run.api_url, t).map_err(Failure::usage)?),
        None => None,
    };
    let project = client.as_ref().map(|c| c.project(&run.project_id));
    let trigger = match (run.merge_request_iid, &run.tag) {
        (Some(iid), _) => Trigger::Review {
            number: iid,
            head: run.sha.clone(),
            fork: run.fork,
            base: run.target_branch.clone(),
        },
        (None, Some(tag)) if crate::core::release::tag_matches(&ctx.config.release_tags, tag) => {
            Trigger::Release { tag: tag.clone() }
        }
        _ => Trigger::Other,
    };
    let mut summary = String::new();
    let (shown, fork) = match trigger {
        Trigger::Review {
            number,
            head,
            fork,
            base,
        } => {
            let writable = client.as_ref().is_some_and(|c| c.token().can_write_notes());
            let skip = if fork {
                Some("the merge request comes from a fork, whose pipeline has no token for the target project. The matrix is in envgate-ci/summary.md.".to_owned())
            } else if !writable {
                Some(format!("CI_JOB_TOKEN may not write notes. {GITLAB_GRANT}"))
            } else {
                None
            };
            let thread = project.as_ref().map(|p| p.thread(number));
            let mode = match (&project, &base) {
                (Some(p), Some(base)) if writable && !fork => {
                    let approvals = jobs::gitlab::MrApprovals::new(p, number);
                    let check = jobs::gitlab::ModeStatus {
                        project: p,
                        sha: &head,
                        branch: None,
                    };
                    mode_review(ctx, p, base, &head, &approvals, &check, false).await?
                }
                _ => None,
            };
            let words = Words {
                github: false,
                request: "merge request",
                note: "note",
                number: format!("!{number}"),
                grant: GITLAB_GRANT,
            };
            let (shown, body) =
                review_request(ctx, &head, thread.as_ref(), skip, mode, &words).await?;
            summary.push_str(&body);
            (shown, fork)
        }
        Trigger::Release { tag } => {
            let reviewed = ctx.review::<gitlab::MergeRequestThread>("", None).await?;
            let publisher = project
                .as_ref()
                .map(|p| jobs::gitlab::Release { project: p });
            let written = ctx.release(&tag, publisher.as_ref()).await?;
            match &project {
                Some(_) if ctx.deferred.borrow().is_some() => {}
                Some(_) => {
                    for name in &written {
                        crate::errln!("envgate ci: linked {name} from release {tag}");
                    }
                }
                None if !written.is_empty() => warn(
                    false,
                    "neither ENVGATE_GITLAB_TOKEN nor CI_JOB_TOKEN is set: the bundles are not attached to the release",
                ),
                None => {}
            }
            summary.push_str(&with_trail(&reviewed.summary));
            (reviewed.extra, false)
        }
        Trigger::Other => {
            // Only an access token may read merge requests and approvals.
            let access = client.as_ref().is_some_and(|c| c.token().can_write_notes());
            if let (Some(p), true) = (&project, access) {
                credit_merge(ctx.memory, jobs::gitlab::merge_of(p, &run.sha).await, false);
            }
            let reviewed = ctx.review::<gitlab::MergeRequestThread>("", None).await?;
            summary.push_str(&with_trail(&reviewed.summary));
            (reviewed.extra, false)
        }
    };
    let path = ctx.out_dir.join("summary.md");
    std::fs::write(&path, crate::secrets::scrubbed(&summary)).map_err(|e| io_fail(&path, e))?;
    Ok((shown, fork))
}
