//! What the console's pages read and do, on GitHub and GitLab alike: each
//! page reads a repository at its default branch's head as the bot reads a
//! commit, with the person recorded as the reader or actor, and calls the
//! same use cases as the command line and the bot (`ops`, `jobs`).

use super::Shared;
use crate::config::Config;
use crate::control::ControlStore;
use crate::core::identity::{Actor, Source};
use crate::core::session::Forge;
use crate::forge::github::Repo;
use crate::forge::gitlab;
use crate::jobs::remote::{Remote, RepoApi};
use crate::jobs::{self, Context, command};
use crate::ops::memory::Memory;
use std::sync::Arc;

/// A repository the console shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// Through one of the App's installations.
    GitHub {
        installation: u64,
        owner: String,
        name: String,
    },
    /// Through the bot's access token.
    GitLab { id: u64, path: String },
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::render::HREF_SEGMENT).to_string()
}

impl Site {
    /// `owner/name`, `group/project`.
    pub fn shown(&self) -> String {
        match self {
            Site::GitHub { owner, name, .. } => format!("{owner}/{name}"),
            Site::GitLab { path, .. } => path.clone(),
        }
    }

    /// How the control store tells it from the bot's other repositories.
    pub fn repository(&self) -> String {
        match self {
            Site::GitHub { owner, name, .. } => super::event::github_repository(owner, name),
            Site::GitLab { path, .. } => format!("gitlab:{path}"),
        }
    }

    /// Its pages under the console's `base`: `{base}/owner/name`, or
    /// `{base}/-/group%2Fproject` (GitHub allows no owner called `-`).
    pub fn home(&self, base: &str) -> String {
        match self {
            Site::GitHub { owner, name, .. } => format!("{base}/{}/{}", seg(owner), seg(name)),
            Site::GitLab { path, .. } => format!("{base}/-/{}", seg(path)),
        }
    }

    /// Where a file is on the forge at a commit; None when that forge is
    /// not configured.
    pub fn file_url(&self, shared: &Shared, at: &str, path: &str) -> Option<String> {
        let segments = |p: &str| p.split('/').map(seg).collect::<Vec<_>>().join("/");
        Some(match self {
            Site::GitHub { owner, name, .. } => format!(
                "{}/{}/{}/blob/{}/{}",
                shared.cfg.github.as_ref()?.web_url,
                seg(owner),
                seg(name),
                seg(at),
                segments(path)
            ),
            Site::GitLab { path: project, .. } => format!(
                "{}/{}/-/blob/{}/{}",
                shared.cfg.gitlab.as_ref()?.web_url,
                segments(project),
                seg(at),
                segments(path)
            ),
        })
    }
}

/// Who is looking, as the forge said at login.
#[derive(Clone, Debug)]
pub struct Who {
    pub login: String,
    pub forge: Forge,
    /// GitLab's id of the person (access is checked by id there).
    pub user_id: Option<u64>,
}

impl Who {
    fn actor(&self) -> Actor {
        Actor::new(
            self.login.clone(),
            Source::Console {
                forge: self.forge.as_str().to_owned(),
            },
        )
    }
}

/// What the console needs of a forge's repository beyond reading it.
#[allow(async_fn_in_trait)]
pub trait ConsoleRepo: RepoApi {
    async fn branch(&self) -> Result<String, String>;
    /// Why `who` may not promote or roll back here, if so (the chat-ops
    /// rule: GitHub write access, GitLab Developer).
    async fn refusal(&self, who: &Who) -> Result<Option<String>, String>;
}

impl ConsoleRepo for Repo<'_> {
    async fn branch(&self) -> Result<String, String> {
        self.default_branch().await.map_err(|e| e.to_string())
    }

    async fn refusal(&self, who: &Who) -> Result<Option<String>, String> {
        jobs::github::write_refusal(self, &who.login)
            .await
            .map_err(|e| e.to_string())
    }
}

impl ConsoleRepo for gitlab::Project<'_> {
    async fn branch(&self) -> Result<String, String> {
        self.default_branch().await.map_err(|e| e.to_string())
    }

    async fn refusal(&self, who: &Who) -> Result<Option<String>, String> {
        jobs::gitlab::write_refusal(self, who.user_id.unwrap_or(0), &who.login)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Runs `$body` with `$repo` bound to the site's repository on its forge
/// (the body is the same for both; its types differ).
macro_rules! on_site {
    ($shared:expr, $site:expr, |$repo:ident| $body:expr) => {
        match $site {
            Site::GitHub {
                installation,
                owner,
                name,
            } => {
                let gh = $shared.github.as_ref().ok_or("GitHub is not configured")?;
                let $repo = gh.repo(*installation, owner, name);
                $body
            }
            Site::GitLab { id, path } => {
                let gl = $shared.gitlab.as_ref().ok_or("GitLab is not configured")?;
                let $repo = gl.project_at(&id.to_string(), path);
                $body
            }
        }
    };
}

/// What every page reads first: the person's memory (their login recorded
/// as the reader or actor), the repository at `branch`'s head, and its
/// envgate.toml there (None: there is none).
async fn start<R: RepoApi>(
    shared: &Arc<Shared>,
    repo: &R,
    site: &Site,
    who: &Who,
    branch: &str,
) -> Result<(Memory, String, Option<Config>), String> {
    let sha = repo.commit_of(branch).await.map_err(|e| e.to_string())?;
    let store = ControlStore::open(&shared.cfg.control_store)
        .await
        .map_err(|e| crate::core::redact::mask_url(&e))?;
    let memory = Memory::with_store(store, who.actor(), shared.audit_key.clone())
        .in_repository(site.repository());
    let config = {
        let ctx = context(shared, &memory);
        match ctx.config_at(repo, &sha).await.map_err(|e| e.to_string())? {
            None => None,
            Some(c) => Some(c?),
        }
    };
    Ok((memory, sha, config))
}

fn context<'a>(shared: &'a Arc<Shared>, memory: &'a Memory) -> Context<'a> {
    Context {
        memory,
        config_path: &shared.cfg.config_path,
        credentials: &shared.cfg.credentials,
        blobs: &shared.blobs,
        holder: "console",
        draft_releases: shared.cfg.github.as_ref().is_some_and(|g| g.draft_releases),
    }
}

/// Reads a repository as every page does ([`start`]), then hands `read`
/// its envgate.toml, the person's memory and the repository at the
/// default branch's head. None: no envgate.toml.
async fn read<R: ConsoleRepo, T>(
    shared: &Arc<Shared>,
    repo: &R,
    site: &Site,
    who: &Who,
    read: impl AsyncFnOnce(&Config, &Memory, &Remote<'_, R>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let branch = repo.branch().await?;
    let (memory, sha, config) = start(shared, repo, site, who, &branch).await?;
    let Some(config) = config else {
        return Ok(None);
    };
    let ctx = context(shared, &memory);
    let remote = ctx.remote(repo, &sha);
    read(&config, &memory, &remote).await.map(Some)
}

/// What a reader asked the matrix to show: some environments (none: all),
/// and rows narrowed by a search and a state.
#[derive(Clone, Debug, Default)]
pub struct MatrixView {
    pub envs: Vec<String>,
    pub narrowing: crate::core::matrix::Narrowing,
}

/// A repository's environments and matrix at its default branch: the page
/// (or, with `json`, the JSON contract). None: no envgate.toml;
/// `Some(Err)`: the view names an environment there is not.
pub async fn matrix(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    nav: &crate::render::Nav,
    view: &MatrixView,
    json: bool,
) -> Result<Option<Result<String, String>>, String> {
    // Links to the files are relative to envgate.toml's directory.
    let dir = std::path::Path::new(&shared.cfg.config_path)
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/"))
        .unwrap_or_default();
    let title = format!("envgate · {}", site.shown());
    let last = match site {
        Site::GitHub { name, .. } => seg(name),
        Site::GitLab { path, .. } => seg(path),
    };
    on_site!(shared, site, |repo| {
        read(shared, &repo, site, who, async |config, memory, remote| {
            matrix_page(config, memory, remote, nav, view, json, &title, &last, &dir).await
        })
        .await
    })
}

#[allow(clippy::too_many_arguments)]
async fn matrix_page<R: RepoApi>(
    config: &Config,
    memory: &Memory,
    remote: &Remote<'_, R>,
    nav: &crate::render::Nav,
    view: &MatrixView,
    json: bool,
    title: &str,
    last: &str,
    dir: &str,
) -> Result<Result<String, String>, String> {
    let chosen = match crate::ops::environments::select(config, &view.envs) {
        Ok(c) => c,
        Err(f) => return Ok(Err(format!("env: {}", f.message))),
    };
    // Each file through the console, which sends the browser on to the
    // forge at the commit read: a short address relative to the page, the
    // commit abbreviated as forges abbreviate it in their own links.
    let short = &remote.at[..remote.at.len().min(12)];
    let nav = &crate::render::Nav {
        files_at: Some(format!("{last}/file/{}/{dir}", seg(short))),
        ..nav.clone()
    };
    let all: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    // Read first: the mode changes it records are in the history below.
    let observed = crate::ops::observe::Observation::observe(config, memory, remote, chosen)
        .await
        .map_err(|f| f.message)?;
    // The JSON twin has no cards to show it on.
    let history = match memory.store().filter(|_| !json) {
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
    let (_, body) = observed
        .conclude(memory, |obs, m| {
            let all_rows = m.rows.len();
            let narrowed;
            let m = if view.narrowing.is_empty() {
                m
            } else {
                narrowed = m.only_rows(|r, c| view.narrowing.keeps(r, c));
                &narrowed
            };
            if json {
                return crate::render::status_json(&obs.world.envs, m);
            }
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
        })
        .await
        .map_err(|f| f.message)?;
    Ok(Ok(body))
}

/// Each environment's state at the default branch, for the list of
/// repositories. None: no envgate.toml.
pub async fn summary(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
) -> Result<Option<Vec<crate::render::EnvLine>>, String> {
    on_site!(shared, site, |repo| {
        read(shared, &repo, site, who, async |config, memory, remote| {
            let envs = config.environments.iter().collect();
            let (_, lines) =
                crate::ops::observe::Observation::status(config, memory, remote, envs, |obs, m| {
                    obs.world
                        .envs
                        .iter()
                        .zip(&m.envs)
                        .map(|(env, col)| crate::render::EnvLine {
                            name: env.name.clone(),
                            mode: env.mode.as_str().to_owned(),
                            reachable: col.reachable(),
                            counts: col.counts,
                        })
                        .collect()
                })
                .await
                .map_err(|f| f.message)?;
            Ok(lines)
        })
        .await
    })
}

/// A repository's releases: the page, or with `json` the JSON of `envgate
/// releases`. None: no envgate.toml.
pub async fn releases(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    nav: &crate::render::Nav,
    json: bool,
) -> Result<Option<String>, String> {
    on_site!(shared, site, |repo| {
        read(shared, &repo, site, who, async |config, memory, remote| {
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
        })
        .await
    })
}

/// One release: its migrations, progress, the bundle each export_only
/// environment would receive, and (for those who may) the buttons that
/// preview a promotion or rollback. None: no envgate.toml. A tag that is
/// no release is an error.
pub async fn release(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    tag: &str,
    nav: &crate::render::Nav,
    json: bool,
) -> Result<Option<String>, String> {
    on_site!(shared, site, |repo| {
        read(shared, &repo, site, who, async |config, memory, remote| {
            let shown = crate::ops::release::shown(config, memory, remote, remote, tag)
                .await
                .map_err(|f| f.message)?;
            let may_act = repo.refusal(who).await?.is_none();
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
        })
        .await
    })
}

/// The bundle of release `tag` for environment `env`, as `export` would
/// write it: (file stem, SQL, manifest JSON). None: no such bundle (no
/// envgate.toml, the environment is not export_only, or it has the release
/// already).
pub async fn bundle(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    tag: &str,
    env: &str,
) -> Result<Option<(String, String, String)>, String> {
    let found = on_site!(shared, site, |repo| {
        read(shared, &repo, site, who, async |config, memory, remote| {
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
        })
        .await
    })?;
    Ok(found.flatten())
}

/// What became of a console action.
pub struct Outcome {
    /// Why it was refused, if it was.
    pub refused: Option<String>,
    /// The command's answer, as a comment would have it.
    pub answer: String,
    /// The bundle the environment would receive (previews of promotions).
    pub bundles: Vec<crate::ops::release::BundleView>,
}

/// A promotion or rollback from the console, run as `/promote` and
/// `/rollback` run from a comment (the same checks, the same audit): why
/// it was refused, if it was, and its answer. With `bundle_of` (a release
/// and an environment), the bundle that environment would receive of it
/// comes back too, for a preview.
pub async fn action(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    command: &str,
    bundle_of: Option<(&str, &str)>,
) -> Result<Outcome, String> {
    match site {
        Site::GitHub {
            installation,
            owner,
            name,
        } => {
            let gh = shared.github.as_ref().ok_or("GitHub is not configured")?;
            let repo = gh.repo(*installation, owner, name);
            let branch = repo.branch().await?;
            let chat = command::ConsoleChat::new(jobs::github::GitHubChat {
                repo,
                issue: 0,
                comment: 0,
                default_branch: &branch,
            });
            act(shared, site, who, &branch, &chat, command, bundle_of).await
        }
        Site::GitLab { id, path } => {
            let gl = shared.gitlab.as_ref().ok_or("GitLab is not configured")?;
            let project = gl.project_at(&id.to_string(), path);
            let branch = project.branch().await?;
            let chat = command::ConsoleChat::new(jobs::gitlab::GitLabChat {
                project,
                on: gitlab::Noteable::Issue(0),
                note: 0,
                user_id: who.user_id.unwrap_or(0),
                default_branch: &branch,
            });
            act(shared, site, who, &branch, &chat, command, bundle_of).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn act<C: command::Chat>(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    branch: &str,
    chat: &command::ConsoleChat<C>,
    command: &str,
    bundle_of: Option<(&str, &str)>,
) -> Result<Outcome, String> {
    let repo = command::Chat::repo(chat);
    let (memory, sha, config) = start(shared, repo, site, who, branch).await?;
    let ctx = context(shared, &memory);
    command::run(&ctx, chat, &who.login, command)
        .await
        .map_err(|e| e.to_string())?;
    let mut bundles = Vec::new();
    let refused = chat.refused.borrow().is_some();
    if let (Some((tag, env)), Some(config), false) = (bundle_of, &config, refused) {
        let remote = ctx.remote(repo, &sha);
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
    Ok(Outcome {
        refused: chat.refused.take(),
        answer,
        bundles,
    })
}

/// A repository's audit trail: the records stamped with it that `filter`
/// asks for, and what checking the whole chain proved (against
/// `expected`, a published head, when given).
pub async fn audit(
    shared: &Arc<Shared>,
    site: &Site,
    who: &Who,
    mut filter: crate::core::audit::Filter,
    expected: Option<crate::core::audit::Head>,
) -> Result<(Vec<crate::core::audit::Record>, crate::core::audit::Check), String> {
    let store = ControlStore::open(&shared.cfg.control_store)
        .await
        .map_err(|e| crate::core::redact::mask_url(&e))?;
    let memory = Memory::with_store(store, who.actor(), shared.audit_key.clone());
    filter.repository = Some(site.repository());
    memory
        .read_trail(&filter, expected)
        .await
        .map_err(|f| f.message)
}
