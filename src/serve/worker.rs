//! A worker's side of the bot: a job taken from the queue is turned into
//! the forge's adapters (a GitHub repository with its check run, release
//! and comment; a GitLab project with its commit status, release and note)
//! and handed to the forge-neutral job in `crate::jobs` that runs it.

use super::Shared;
use super::event::{GlProject, On, Place, RepoRef, Work};
use crate::control::ControlStore;
use crate::core::identity::{Actor, Source};
use crate::forge::github::Repo;
use crate::forge::gitlab;
use crate::jobs::review::Request;
use crate::jobs::{self, Context, JobError, command, mode, release, review};
use crate::ops::memory::Memory;
use std::time::Duration;

/// The actor the bot's own reads are recorded as.
pub const BOT: &str = "envgate[bot]";

/// A worker: its own control-store connection.
pub struct Worker {
    pub shared: std::sync::Arc<Shared>,
    pub store: Option<ControlStore>,
    pub name: String,
    /// The job being run was attempted before.
    pub resuming: bool,
}

impl Worker {
    /// Runs one job.
    pub async fn run(&mut self, work: &Work) -> Result<(), JobError> {
        let store = self.store.take().ok_or_else(|| {
            JobError::Transient(
                "the control store is not open".into(),
                Duration::from_secs(5),
            )
        })?;
        let configured = if work.on_gitlab() {
            self.shared.gitlab.is_some()
        } else {
            self.shared.github.is_some()
        };
        if !configured {
            self.store = Some(store);
            return Err(JobError::User(format!(
                "{} is not configured here (serve.toml)",
                if work.on_gitlab() { "GitLab" } else { "GitHub" }
            )));
        }
        // The delivery was signed (GitHub) or carried the secret token
        // (GitLab): the forge says who commented.
        let source = if work.on_gitlab() {
            Source::GitLab
        } else {
            Source::GitHub
        };
        let actor = match work {
            Work::Command { login, .. } => Actor::new(login.clone(), source),
            _ => Actor::new(BOT, source),
        };
        let memory = Memory::with_store(store, actor, self.shared.audit_key.clone())
            .in_repository(work.place().repository());
        let result = self.dispatch(&memory, work).await;
        self.store = memory.into_store();
        result
    }

    fn context<'a>(&'a self, memory: &'a Memory) -> Context<'a> {
        Context {
            memory,
            config_path: &self.shared.cfg.config_path,
            credentials: &self.shared.cfg.credentials,
            blobs: &self.shared.blobs,
            holder: &self.name,
            draft_releases: self
                .shared
                .cfg
                .github
                .as_ref()
                .is_some_and(|g| g.draft_releases),
        }
    }

    fn repo<'a>(&'a self, r: &'a RepoRef) -> Repo<'a> {
        self.shared
            .github
            .as_ref()
            .expect("GitHub jobs are checked for a GitHub client first")
            .repo(r.installation, &r.owner, &r.name)
    }

    fn project<'a>(&'a self, p: &'a GlProject) -> gitlab::Project<'a> {
        self.shared
            .gitlab
            .as_ref()
            .expect("GitLab jobs are checked for a GitLab client first")
            .project_at(&p.id.to_string(), &p.path)
    }

    async fn dispatch(&self, memory: &Memory, work: &Work) -> Result<(), JobError> {
        let ctx = self.context(memory);
        match work {
            Work::Matrix {
                place: Place::GitHub(r),
                sha,
                request,
                base,
                ..
            } => {
                let repo = self.repo(r);
                let checks = jobs::github::CheckRun::new(&repo, sha).resuming(self.resuming);
                let mode = match (request, base) {
                    (Some(n), Some(base)) => {
                        let approvals = jobs::github::PullApprovals {
                            repo: &repo,
                            number: *n,
                        };
                        let check = jobs::github::ModeCheckRun { repo: &repo, sha };
                        mode::review(&ctx, &repo, base, sha, &approvals, &check, "pull request")
                            .await?
                    }
                    (None, _) => {
                        // A push to the default branch: a mode changed
                        // there is credited to the request that merged it.
                        credit_merge(memory, jobs::github::merge_of(&repo, sha).await)?;
                        None
                    }
                    _ => None,
                };
                let thread = request.map(|n| (n, repo.thread(n)));
                let request = thread.as_ref().map(|(n, t)| Request {
                    thread: Some(t),
                    key: Some(format!("comment:{}/{}#{n}", r.owner, r.name)),
                    skip: None,
                    mode,
                });
                review::commit(&ctx, &repo, &checks, sha, request).await
            }
            Work::Matrix {
                place: Place::GitLab(p),
                sha,
                request,
                branch,
                base,
            } => {
                let project = self.project(p);
                let checks = jobs::gitlab::CommitStatus {
                    project: &project,
                    sha,
                    branch: branch.as_deref(),
                };
                let mode = match (request, base) {
                    (Some(iid), Some(base)) => {
                        let approvals = jobs::gitlab::MrApprovals::new(&project, *iid);
                        let check = jobs::gitlab::ModeStatus {
                            project: &project,
                            sha,
                            branch: branch.as_deref(),
                        };
                        mode::review(
                            &ctx,
                            &project,
                            base,
                            sha,
                            &approvals,
                            &check,
                            "merge request",
                        )
                        .await?
                    }
                    (None, _) => {
                        credit_merge(memory, jobs::gitlab::merge_of(&project, sha).await)?;
                        None
                    }
                    _ => None,
                };
                let thread = request.map(|iid| (iid, project.thread(iid)));
                let request = thread.as_ref().map(|(iid, t)| Request {
                    thread: Some(t),
                    key: Some(format!("note:{}!{iid}", p.path)),
                    skip: None,
                    mode,
                });
                review::commit(&ctx, &project, &checks, sha, request).await
            }
            Work::ReleaseTag {
                place: Place::GitHub(r),
                tag,
            } => {
                let repo = self.repo(r);
                let publisher = jobs::github::Release::new(&repo, ctx.draft_releases);
                let key = format!("release:{}/{}@{tag}", r.owner, r.name);
                release::tag(&ctx, &repo, &publisher, tag, &key).await
            }
            Work::ReleaseTag {
                place: Place::GitLab(p),
                tag,
            } => {
                let project = self.project(p);
                let publisher = jobs::gitlab::Release { project: &project };
                let key = format!("release:{}@{tag}", p.path);
                release::tag(&ctx, &project, &publisher, tag, &key).await
            }
            Work::Command {
                place: Place::GitHub(r),
                on,
                comment,
                login,
                body,
                ..
            } => {
                let chat = jobs::github::GitHubChat {
                    repo: self.repo(r),
                    issue: on.number,
                    comment: *comment,
                    default_branch: &r.default_branch,
                };
                command::run(&ctx, &chat, login, body).await
            }
            Work::Command {
                place: Place::GitLab(p),
                on: On { number, request },
                comment,
                user_id,
                login,
                body,
            } => {
                let chat = jobs::gitlab::GitLabChat {
                    project: self.project(p),
                    on: if *request {
                        gitlab::Noteable::MergeRequest(*number)
                    } else {
                        gitlab::Noteable::Issue(*number)
                    },
                    note: *comment,
                    user_id: *user_id,
                    default_branch: &p.default_branch,
                };
                command::run(&ctx, &chat, login, body).await
            }
        }
    }
}

/// Credits mode changes at a pushed commit to the request that merged it,
/// when the forge says which; a forge that will not say (permissions) costs
/// only the credit, which then comes from nobody.
fn credit_merge(
    memory: &Memory,
    merge: Result<Option<crate::core::identity::Merge>, crate::forge::ApiError>,
) -> Result<(), JobError> {
    match merge {
        Ok(Some(m)) => memory.attribute_to(m),
        Ok(None) => {}
        Err(e @ crate::forge::ApiError::Transient { .. }) => return Err(JobError::from(e)),
        Err(e) => tracing::warn!("cannot tell which request merged the commit: {e}"),
    }
    Ok(())
}

/// What every console page reads first: the person's memory (their login
/// recorded as the reader or actor), the repository at its default
/// branch's head, and its envgate.toml there (None: there is none).
async fn console_start<'a>(
    shared: &'a std::sync::Arc<Shared>,
    repo: &Repo<'a>,
    login: &str,
) -> Result<(Memory, String, String, Option<crate::config::Config>), String> {
    let branch = repo.default_branch().await.map_err(|e| e.to_string())?;
    let sha = repo.commit_of(&branch).await.map_err(|e| e.to_string())?;
    let store = ControlStore::open(&shared.cfg.control_store)
        .await
        .map_err(|e| crate::core::redact::mask_url(&e))?;
    let memory = Memory::with_store(
        store,
        Actor::new(login, Source::GitHub),
        shared.audit_key.clone(),
    )
    .in_repository(super::event::github_repository(repo.owner, repo.name));
    let config = {
        let ctx = console_context(shared, &memory);
        match ctx.config_at(repo, &sha).await.map_err(|e| e.to_string())? {
            None => None,
            Some(c) => Some(c?),
        }
    };
    Ok((memory, branch, sha, config))
}

fn console_context<'a>(shared: &'a std::sync::Arc<Shared>, memory: &'a Memory) -> Context<'a> {
    Context {
        memory,
        config_path: &shared.cfg.config_path,
        credentials: &shared.cfg.credentials,
        blobs: &shared.blobs,
        holder: "console",
        draft_releases: shared.cfg.github.as_ref().is_some_and(|g| g.draft_releases),
    }
}

/// Reads a repository as every console page does ([`console_start`]),
/// then hands `read` its envgate.toml, the person's memory and the
/// repository at the default branch's head. None: no envgate.toml.
async fn console_read<T>(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    read: impl AsyncFnOnce(
        &crate::config::Config,
        &Memory,
        &jobs::remote::Remote<'_, Repo<'_>>,
    ) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let gh = shared.github.as_ref().ok_or("GitHub is not configured")?;
    let repo = gh.repo(installation, owner, name);
    let (memory, _, sha, config) = console_start(shared, &repo, login).await?;
    let Some(config) = config else {
        return Ok(None);
    };
    let ctx = console_context(shared, &memory);
    let remote = ctx.remote(&repo, &sha);
    read(&config, &memory, &remote).await.map(Some)
}

/// What a reader asked the console's matrix to show: some environments
/// (none: all), and rows narrowed by a search and a state.
#[derive(Clone, Debug, Default)]
pub struct MatrixView {
    pub envs: Vec<String>,
    pub narrowing: crate::core::matrix::Narrowing,
}

/// The console's matrix of a repository at its default branch: the page
/// (or, with `json`, the JSON contract), read as the bot reads a commit,
/// the person's login recorded as the reader. None: no envgate.toml;
/// `Some(Err)`: the view names an environment there is not.
#[allow(clippy::too_many_arguments)]
pub async fn console_matrix(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    title: &str,
    nav: &crate::render::Nav,
    view: &MatrixView,
    json: bool,
) -> Result<Option<Result<String, String>>, String> {
    // Links to the files at the commit read (paths are relative to
    // envgate.toml's directory).
    let dir = std::path::Path::new(&shared.cfg.config_path)
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/"))
        .unwrap_or_default();
    let seg =
        |s: &str| percent_encoding::utf8_percent_encode(s, crate::render::HREF_SEGMENT).to_string();
    console_read(
        shared,
        installation,
        owner,
        name,
        login,
        async |config, memory, remote| {
            if let Some(unknown) = view
                .envs
                .iter()
                .find(|e| !config.environments.iter().any(|c| &c.name == *e))
            {
                let known: Vec<&str> = config
                    .environments
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect();
                return Ok(Err(format!(
                    "env: no environment '{unknown}' in envgate.toml ({})",
                    known.join(", ")
                )));
            }
            let chosen: Vec<&crate::config::EnvConfig> = config
                .environments
                .iter()
                .filter(|e| view.envs.is_empty() || view.envs.contains(&e.name))
                .collect();
            // Each migration's file, through the console (which sends the
            // browser on to the forge at the commit read): a short address
            // relative to this page.
            let nav = &crate::render::Nav {
                files_at: Some(format!("{}/file/{}/{dir}", seg(name), seg(&remote.at))),
                ..nav.clone()
            };
            let all: Vec<&str> = config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            let history = match memory.store() {
                Some(store) => store
                    .mode_history(memory.repository(), 3)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!("console: the mode history: {e}");
                        Vec::new()
                    }),
                None => Vec::new(),
            };
            let read_at = crate::ops::memory::now().replace('T', " ").replace('Z', "");
            let (_, body) = crate::ops::observe::Observation::status(
                config,
                memory,
                remote,
                chosen,
                |obs, m| {
                    let all_rows = m.rows.len();
                    let narrowed;
                    let m = if view.narrowing.is_empty() {
                        m
                    } else {
                        narrowed = m.only_rows(|r, c| view.narrowing.keeps(r, c));
                        &narrowed
                    };
                    if json {
                        crate::render::status_json(&obs.world.envs, m)
                    } else {
                        let notes: Vec<crate::render::EnvNotes> = obs
                            .world
                            .envs
                            .iter()
                            .zip(&obs.world.targets)
                            .map(|(env, t)| crate::render::EnvNotes {
                                location: match t {
                                    Ok(t) => crate::ops::environments::target_identity(env, t),
                                    Err(_) => "no credentials for it here".to_owned(),
                                },
                                modes: history
                                    .iter()
                                    .filter(|h| h.0 == env.name)
                                    .map(|(_, at, action, actor, details)| {
                                        crate::render::mode_event(at, action, actor, details)
                                    })
                                    .collect(),
                            })
                            .collect();
                        crate::render::console_matrix_html(
                            &obs.world.envs,
                            m,
                            title,
                            nav,
                            &notes,
                            &crate::render::MatrixPage {
                                read_at: &read_at,
                                commit: &remote.at,
                                environments: &all,
                                chosen: &view.envs,
                                search: view.narrowing.search.as_deref().unwrap_or(""),
                                state: match view.narrowing.state {
                                    None => "",
                                    Some(crate::core::matrix::Wanted::Attention) => "attention",
                                    Some(crate::core::matrix::Wanted::In(s)) => s.as_str(),
                                },
                                all: all_rows,
                                narrowed: !view.envs.is_empty() || !view.narrowing.is_empty(),
                            },
                        )
                    }
                },
            )
            .await
            .map_err(|f| f.message)?;
            Ok(Ok(body))
        },
    )
    .await
}

/// Where a file of the repository is on the forge at a commit: the
/// console's file links lead there.
pub fn forge_file_url(shared: &Shared, owner: &str, name: &str, at: &str, path: &str) -> String {
    let web = shared
        .cfg
        .github
        .as_ref()
        .and_then(|g| g.oauth.as_ref())
        .map_or("https://github.com", |o| o.web_url.as_str());
    let seg =
        |s: &str| percent_encoding::utf8_percent_encode(s, crate::render::HREF_SEGMENT).to_string();
    let path: Vec<String> = path.split('/').map(seg).collect();
    format!(
        "{}/{}/{}/blob/{}/{}",
        web.trim_end_matches('/'),
        seg(owner),
        seg(name),
        seg(at),
        path.join("/")
    )
}

/// The console's list of releases: the page, or with `json` the JSON of
/// `envgate releases`. None: no envgate.toml.
pub async fn console_releases(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    nav: &crate::render::Nav,
    json: bool,
) -> Result<Option<String>, String> {
    console_read(
        shared,
        installation,
        owner,
        name,
        login,
        async |config, memory, remote| {
            let reply =
                crate::ops::release::list(config, memory, remote, remote, crate::ops::Output::Json)
                    .await
                    .map_err(|f| f.message)?;
            if json {
                return Ok(reply.text);
            }
            let releases: serde_json::Value =
                serde_json::from_str(&reply.text).map_err(|e| e.to_string())?;
            Ok(crate::render::console_releases_html(&releases, nav))
        },
    )
    .await
}

/// The console's page of one release: its migrations, progress, the
/// bundle each export_only environment would receive, and (for those who
/// may) the buttons that preview a promotion or rollback. None: no
/// envgate.toml. A tag that is no release is an error.
#[allow(clippy::too_many_arguments)]
pub async fn console_release(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    tag: &str,
    nav: &crate::render::Nav,
    json: bool,
) -> Result<Option<String>, String> {
    console_read(
        shared,
        installation,
        owner,
        name,
        login,
        async |config, memory, remote| {
            let shown = crate::ops::release::shown(config, memory, remote, remote, tag)
                .await
                .map_err(|f| f.message)?;
            let may_act = jobs::github::write_refusal(remote.repo, login)
                .await
                .map_err(|e| e.to_string())?
                .is_none();
            let envs: Vec<(&str, &str)> = config
                .environments
                .iter()
                .map(|e| (e.name.as_str(), e.mode.as_str()))
                .collect();
            Ok(if json {
                crate::render::json(&serde_json::json!({
                    "schema_version": 1,
                    "release": shown.release,
                    "bundles": shown.bundles,
                    "may_promote": may_act,
                }))
            } else {
                crate::render::console_release_html(
                    &shown.release,
                    &shown.bundles,
                    &envs,
                    may_act,
                    nav,
                )
            })
        },
    )
    .await
}

/// The bundle of release `tag` for environment `env`, as `export` would
/// write it: (file stem, SQL, manifest JSON). None: no such bundle (no
/// envgate.toml, the environment is not export_only, or it has the
/// release already).
#[allow(clippy::too_many_arguments)]
pub async fn console_bundle(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    tag: &str,
    env: &str,
) -> Result<Option<(String, String, String)>, String> {
    let found = console_read(
        shared,
        installation,
        owner,
        name,
        login,
        async |config, memory, remote| {
            let shown = crate::ops::release::shown(config, memory, remote, remote, tag)
                .await
                .map_err(|f| f.message)?;
            Ok(shown
                .bundles
                .iter()
                .zip(&shown.built)
                .find(|(view, _)| view.environment == env)
                .map(|(_, b)| {
                    (
                        b.stem.clone(),
                        b.sql.clone(),
                        crate::render::json(&b.manifest),
                    )
                }))
        },
    )
    .await?;
    Ok(found.flatten())
}

/// A promotion or rollback from the console, run as `/promote` and
/// `/rollback` run from a comment (the same checks, the same audit):
/// why it was refused, if it was, and its answer.
///
/// With `bundle_of` (a release and an environment), the bundle that
/// environment would receive of it comes back too, for a preview.
pub async fn console_action(
    shared: &std::sync::Arc<Shared>,
    installation: u64,
    owner: &str,
    name: &str,
    login: &str,
    command: &str,
    bundle_of: Option<(&str, &str)>,
) -> Result<ConsoleOutcome, String> {
    let gh = shared.github.as_ref().ok_or("GitHub is not configured")?;
    let repo = gh.repo(installation, owner, name);
    let (memory, branch, sha, config) = console_start(shared, &repo, login).await?;
    let ctx = console_context(shared, &memory);
    let chat = jobs::github::ConsoleChat::new(gh.repo(installation, owner, name), branch);
    command::run(&ctx, &chat, login, command)
        .await
        .map_err(|e| e.to_string())?;
    let mut bundles = Vec::new();
    let refused = chat.refused.borrow().is_some();
    if let (Some((tag, env)), Some(config), false) = (bundle_of, &config, refused) {
        let remote = ctx.remote(&repo, &sha);
        if let Ok(shown) = crate::ops::release::shown(config, &memory, &remote, &remote, tag).await
        {
            bundles = shown
                .bundles
                .into_iter()
                .filter(|b| b.environment == env)
                .collect();
        }
    }
    let answer = chat.replies.take().join("\n\n");
    Ok(ConsoleOutcome {
        refused: chat.refused.take(),
        answer,
        bundles,
    })
}

/// What became of a console action.
pub struct ConsoleOutcome {
    /// Why it was refused, if it was.
    pub refused: Option<String>,
    /// The command's answer, as a comment would have it.
    pub answer: String,
    /// The bundle the environment would receive (previews of promotions).
    pub bundles: Vec<crate::ops::release::BundleView>,
}

/// The console's audit trail of a repository: the records stamped with
/// it that `filter` asks for, and what checking the whole chain proved
/// (against `expected`, a published head, when given).
pub async fn console_audit(
    shared: &std::sync::Arc<Shared>,
    owner: &str,
    name: &str,
    login: &str,
    mut filter: crate::core::audit::Filter,
    expected: Option<crate::core::audit::Head>,
) -> Result<(Vec<crate::core::audit::Record>, crate::core::audit::Check), String> {
    let store = ControlStore::open(&shared.cfg.control_store)
        .await
        .map_err(|e| crate::core::redact::mask_url(&e))?;
    let repository = super::event::github_repository(owner, name);
    let memory = Memory::with_store(
        store,
        Actor::new(login, Source::GitHub),
        shared.audit_key.clone(),
    );
    filter.repository = Some(repository);
    memory
        .read_trail(&filter, expected)
        .await
        .map_err(|f| f.message)
}
