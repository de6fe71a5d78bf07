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
