//! The bot's work, one job at a time: the matrix of a commit (check run and
//! sticky pull-request comment), a release tag's bundles, and chat-ops
//! commands. Each runs the same operations as the command line, through
//! [`Remote`]: the repository via GitHub's API, environments via the bot's
//! own credentials.

use super::chat::{Chat, GitHubChat, GitLabChat, bundle_files};
use super::event::{RepoRef, Work};
use super::remote::{Remote, RepoApi};
use super::{Shared, now_ms};
use crate::config::{self, Config};
use crate::control::ControlStore;
use crate::core::audit::Entry;
use crate::core::chatops::{self, Command, Parsed};
use crate::core::matrix;
use crate::forge::github::Repo;
use crate::forge::gitlab::Noteable;
use crate::forge::{ApiError, Stuck, Thread, sticky};
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::release::{self, BundleOut, PromoteArgs, RollbackArgs};
use crate::ops::review::{self, BODY_LIMIT, PR_MARKER, fit};
use crate::ops::{Failure, Output, exit};
use crate::render;
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const RELEASE_OPEN: &str = "<!-- envgate:release -->";
const RELEASE_CLOSE: &str = "<!-- /envgate:release -->";
/// The actor the bot's own reads are recorded as.
pub(super) const BOT: &str = "envgate[bot]";

#[derive(Debug)]
pub enum JobError {
    /// Try again after at least this long.
    Transient(String, Duration),
    /// Retrying will not help.
    Permanent(String),
}

impl From<ApiError> for JobError {
    fn from(e: ApiError) -> JobError {
        match e {
            ApiError::Transient { message, after } => JobError::Transient(message, after),
            other => JobError::Permanent(other.to_string()),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Transient(m, _) | JobError::Permanent(m) => f.write_str(m),
        }
    }
}

/// A worker: its own control-store connection.
pub struct Worker {
    pub shared: std::sync::Arc<Shared>,
    pub store: Option<ControlStore>,
    pub name: String,
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
        let gitlab_work = matches!(
            work,
            Work::GitLabMatrix { .. } | Work::GitLabTag { .. } | Work::GitLabNote { .. }
        );
        let configured = if gitlab_work {
            self.shared.gitlab.is_some()
        } else {
            self.shared.github.is_some()
        };
        if !configured {
            self.store = Some(store);
            return Err(JobError::Permanent(format!(
                "{} is not configured here (serve.toml)",
                if gitlab_work { "GitLab" } else { "GitHub" }
            )));
        }
        let actor = match work {
            Work::Command { login, .. } => login.clone(),
            Work::GitLabNote { username, .. } => username.clone(),
            _ => BOT.to_owned(),
        };
        let memory = Memory::with_store(store, actor);
        let result = match work {
            Work::GitLabMatrix {
                project,
                sha,
                merge_request,
                branch,
            } => {
                self.gitlab_matrix(&memory, project, sha, *merge_request, branch.as_deref())
                    .await
            }
            Work::GitLabTag { project, tag } => self.gitlab_tag(&memory, project, tag).await,
            Work::GitLabNote {
                project,
                merge_request,
                iid,
                note,
                user_id,
                username,
                body,
            } => {
                let chat = GitLabChat {
                    project: self.project(project),
                    on: if *merge_request {
                        Noteable::MergeRequest(*iid)
                    } else {
                        Noteable::Issue(*iid)
                    },
                    note: *note,
                    user_id: *user_id,
                    default_branch: &project.default_branch,
                };
                self.command(&memory, &chat, username, body).await
            }
            Work::Matrix { repo, sha, pull } => self.matrix(&memory, repo, sha, *pull).await,
            Work::ReleaseTag { repo, tag } => self.release_tag(&memory, repo, tag).await,
            Work::Command {
                repo,
                issue,
                comment,
                login,
                body,
                ..
            } => {
                let chat = GitHubChat {
                    repo: self.repo(repo),
                    issue: *issue,
                    comment: *comment,
                    default_branch: &repo.default_branch,
                };
                self.command(&memory, &chat, login, body).await
            }
        };
        self.store = memory.into_store();
        result
    }

    fn repo<'a>(&'a self, r: &'a RepoRef) -> Repo<'a> {
        self.shared
            .github
            .as_ref()
            .expect("GitHub jobs are checked for a GitHub client first")
            .repo(r.installation, &r.owner, &r.name)
    }

    fn draft_releases(&self) -> bool {
        self.shared
            .cfg
            .github
            .as_ref()
            .is_some_and(|g| g.draft_releases)
    }

    /// A repository through its forge at a commit, with the bot's
    /// credentials for its environments.
    pub(super) fn remote_of<'a, R: RepoApi>(&'a self, repo: &'a R, at: &str) -> Remote<'a, R> {
        Remote {
            repo,
            at: at.to_owned(),
            credentials: &self.shared.cfg.credentials,
            blobs: &self.shared.blobs,
        }
    }

    /// Where envgate.toml sits in a repository.
    pub(super) fn config_path(&self) -> &str {
        &self.shared.cfg.config_path
    }

    /// envgate.toml at a revision; None when the repository has none.
    pub(super) async fn config_at(
        &self,
        repo: &impl RepoApi,
        at: &str,
    ) -> Result<Option<Result<Config, String>>, JobError> {
        let path = self.config_path();
        let Some(bytes) = repo.file(path, at).await? else {
            return Ok(None);
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Ok(Some(Err(format!("{path} is not UTF-8")))),
        };
        Ok(Some(
            config::parse(Path::new(path), &text).map_err(|e| e.to_string()),
        ))
    }

    /// Runs `f` holding the named lock; if another worker holds it, the job
    /// comes back shortly.
    pub(super) async fn locked<T>(
        &self,
        memory: &Memory,
        key: &str,
        f: impl Future<Output = Result<T, JobError>>,
    ) -> Result<T, JobError> {
        let store = memory.store().ok_or_else(|| {
            JobError::Transient("no control store".into(), Duration::from_secs(5))
        })?;
        let now = now_ms();
        let got = store
            .try_lock(key, &self.name, now, now + 120_000)
            .await
            .map_err(|e| JobError::Transient(e, Duration::from_secs(2)))?;
        if !got {
            return Err(JobError::Transient(
                format!("{key} is being updated by another worker"),
                Duration::from_secs(2),
            ));
        }
        let result = f.await;
        let _ = store.unlock(key, &self.name).await;
        result
    }

    // ---- the matrix of a commit ----

    async fn matrix(
        &self,
        memory: &Memory,
        r: &RepoRef,
        sha: &str,
        pull: Option<u64>,
    ) -> Result<(), JobError> {
        let Some(config) = self.config_at(&self.repo(r), sha).await? else {
            tracing::info!(repo = %format!("{}/{}", r.owner, r.name), "no envgate.toml: nothing to do");
            return Ok(());
        };
        let gh = self.repo(r);
        let check_id = gh.start_check_run(sha, "envgate").await?;
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                let output = json!({
                    "title": "envgate.toml is not valid",
                    "summary": format!("```\n{}\n```", e.replace("```", "'''")),
                });
                gh.complete_check_run(check_id, "failure", &output).await?;
                return Ok(());
            }
        };
        let remote = self.remote_of(&gh, sha);
        let obs = match Observation::observe(
            &config,
            memory,
            &remote,
            config.environments.iter().collect(),
        )
        .await
        {
            Ok(o) => o,
            Err(f) => {
                let output = json!({
                    "title": "envgate could not read the migrations",
                    "summary": format!("```\n{}\n```", f.message.replace("```", "'''")),
                });
                gh.complete_check_run(check_id, "failure", &output).await?;
                return Ok(());
            }
        };
        let (world, remembered) = (obs.world, obs.remembered);
        let m = matrix::compute(&world.discovery.migrations, &world.inputs(&remembered));
        for w in memory.after_status(&world.envs, &world.labels, &m).await {
            tracing::warn!("{w}");
        }
        let summary = review::summary(&world, &m);
        let (title, markdown) = (&summary.title, fit(&summary.markdown, BODY_LIMIT));
        let (first, rest) = summary
            .annotations
            .split_at(summary.annotations.len().min(50));
        gh.complete_check_run(
            check_id,
            summary.conclusion.as_str(),
            &json!({"title": title, "summary": markdown, "annotations": first}),
        )
        .await?;
        for chunk in rest.chunks(50) {
            gh.annotate_check_run(
                check_id,
                &json!({"title": title, "summary": markdown, "annotations": chunk}),
            )
            .await?;
        }
        let Some(number) = pull else {
            return Ok(());
        };
        // The pull request's own migrations, where they stand, and the
        // bundle the first export_only environment would receive.
        let thread = gh.thread(number);
        let added = thread.added().await?;
        let body = review::pr_comment(&world, &m, &remembered, &added, sha, BOT);
        let key = format!("comment:{}/{}#{number}", r.owner, r.name);
        self.locked(memory, &key, async {
            if let Stuck::Superseded(head) = sticky(&thread, PR_MARKER, sha, &body).await? {
                tracing::info!(%head, "a newer commit is there: its job writes the comment");
            }
            Ok(())
        })
        .await
    }

    // ---- release tags ----

    async fn release_tag(&self, memory: &Memory, r: &RepoRef, tag: &str) -> Result<(), JobError> {
        let Some(config) = self.config_at(&self.repo(r), tag).await? else {
            return Ok(());
        };
        let config = match config {
            Ok(c) => c,
            Err(e) => return Err(JobError::Permanent(format!("envgate.toml at {tag}: {e}"))),
        };
        if !crate::core::release::tag_matches(&config.release_tags, tag) {
            tracing::info!(tag, pattern = %config.release_tags, "not a release tag");
            return Ok(());
        }
        let gh = self.repo(r);
        let commit = gh.commit_of(tag).await?;
        let remote = self.remote_of(&gh, &commit);
        let key = format!("release:{}/{}@{tag}", r.owner, r.name);
        self.locked(memory, &key, async {
            let reply =
                match release::show(&config, memory, &remote, &remote, tag, Output::Json, false)
                    .await
                {
                    Ok(reply) => reply,
                    Err(f) if f.code == exit::REFUSED => {
                        tracing::info!(tag, "{}", f.message);
                        return Ok(());
                    }
                    Err(f) => return Err(JobError::Transient(f.message, Duration::from_secs(30))),
                };
            let shown: Value = serde_json::from_str(&reply.text)
                .map_err(|e| JobError::Permanent(format!("release show: {e}")))?;
            let release = gh.release_for(tag, self.draft_releases()).await?;
            let mut names = Vec::new();
            for b in &reply.bundles {
                let files: Vec<_> = bundle_files(b).into_iter().collect();
                names.extend(files.iter().map(|(name, _, _)| name.clone()));
                gh.put_bundle(&release, files).await?;
            }
            #[derive(Serialize)]
            struct Section<'a> {
                open: &'a str,
                close: &'a str,
                release: &'a Value,
                problem: Option<&'a str>,
                assets: &'a [String],
            }
            let section = render::release_section(&Section {
                open: RELEASE_OPEN,
                close: RELEASE_CLOSE,
                release: &shown["release"],
                problem: shown["release"]["problem"].as_str(),
                assets: &names,
            });
            let body = replace_section(release.body.as_deref().unwrap_or(""), section.trim_end());
            if release.body.as_deref() != Some(body.as_str()) {
                gh.update_release_body(release.id, &body).await?;
            }
            Ok(())
        })
        .await
    }

    // ---- chat-ops ----

    /// A chat-ops command, on whichever forge `chat` is.
    pub(super) async fn command<C: Chat>(
        &self,
        memory: &Memory,
        chat: &C,
        login: &str,
        body: &str,
    ) -> Result<(), JobError> {
        chat.seen().await?;
        let parsed = chatops::parse(body);
        let audit =
            |outcome: &str, env: Option<&str>, details: String, error: Option<String>| Entry {
                details: Some(details),
                error,
                ..memory.entry("chatops", env, outcome)
            };
        let reply = |text: String| format!("@{login} {text}");
        let command = match parsed {
            Parsed::Nothing => return Ok(()),
            Parsed::Invalid { line, problem } => {
                audit_or_transient(
                    memory,
                    audit("refused", None, line.clone(), Some(problem.clone())),
                )
                .await?;
                chat.reply(&reply(format!("{problem}.\n\n{}", chatops::HELP)))
                    .await?;
                return Ok(());
            }
            Parsed::Command(c) => c,
        };
        let said = command.describe();
        if command == Command::Help {
            audit_or_transient(memory, audit("ok", None, said.clone(), None)).await?;
            chat.reply(&reply(chatops::HELP.to_owned())).await?;
            return Ok(());
        }
        let head = chat.repo().commit_of(chat.default_branch()).await?;
        let config = match self.config_at(chat.repo(), &head).await? {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                audit_or_transient(
                    memory,
                    audit(
                        "failed",
                        command.environment(),
                        said.clone(),
                        Some(format!("envgate.toml is not valid: {e}")),
                    ),
                )
                .await?;
                chat.reply(&reply(format!(
                    "envgate.toml is not valid:\n\n```\n{e}\n```"
                )))
                .await?;
                return Ok(());
            }
            None => {
                audit_or_transient(
                    memory,
                    audit(
                        "refused",
                        command.environment(),
                        said.clone(),
                        Some("the repository has no envgate.toml".into()),
                    ),
                )
                .await?;
                chat.reply(&reply(format!(
                    "this repository has no {} on {}.",
                    self.config_path(),
                    chat.default_branch()
                )))
                .await?;
                return Ok(());
            }
        };
        let remote = self.remote_of(chat.repo(), &head);
        if command == Command::Status {
            let observed = Observation::status(
                &config,
                memory,
                &remote,
                config.environments.iter().collect(),
                |obs, m| {
                    let notes = crate::config::mode_notes(&obs.world.envs);
                    render::status_markdown(&obs.world.envs, m, &notes)
                },
            )
            .await;
            let md = match observed {
                Ok((obs, md)) => {
                    for w in &obs.warnings {
                        tracing::warn!("{w}");
                    }
                    crate::secrets::scrubbed(&md)
                }
                Err(f) => {
                    audit_or_transient(
                        memory,
                        audit("failed", None, said.clone(), Some(f.message.clone())),
                    )
                    .await?;
                    chat.reply(&reply(format!("cannot read the migrations: {}", f.message)))
                        .await?;
                    return Ok(());
                }
            };
            audit_or_transient(memory, audit("ok", None, said, None)).await?;
            chat.reply(&fit(
                &reply(format!("status of {}:\n\n{md}", chat.default_branch())),
                BODY_LIMIT,
            ))
            .await?;
            return Ok(());
        }
        let env_name = command.environment().unwrap_or_default().to_owned();
        // Write permission on the repository, and the environment's lists.
        let mut refusal = chat.write_refusal(login).await?;
        if refusal.is_none()
            && let Some(env) = config.env(&env_name)
        {
            let listed: Vec<String> = env.admins.iter().chain(&env.promoters).cloned().collect();
            if !listed.is_empty() && !chat.is_listed(login, &listed).await? {
                refusal = Some(format!(
                    "{login} is not one of the admins or promoters of '{env_name}' ({})",
                    listed.join(", ")
                ));
            }
        }
        if let Some(why) = refusal {
            audit_or_transient(
                memory,
                audit("refused", Some(&env_name), said.clone(), Some(why.clone())),
            )
            .await?;
            chat.reply(&reply(format!("`{said}` refused: {why}.")))
                .await?;
            return Ok(());
        }
        let outcome = match &command {
            Command::Promote {
                env,
                release: tag,
                dry_run,
            } => {
                let tag = match tag {
                    Some(t) => t.clone(),
                    None => match self.newest_release(&config, &remote).await {
                        Ok(Some(t)) => t,
                        Ok(None) => {
                            audit_or_transient(
                                memory,
                                audit(
                                    "refused",
                                    Some(env.as_str()),
                                    said.clone(),
                                    Some("there is no release yet".into()),
                                ),
                            )
                            .await?;
                            chat.reply(&reply(format!(
                                "`{said}`: there is no release yet (no tag matches '{}').",
                                config.release_tags
                            )))
                            .await?;
                            return Ok(());
                        }
                        Err(e) => return Err(JobError::Transient(e, Duration::from_secs(30))),
                    },
                };
                let args = PromoteArgs {
                    release: &tag,
                    to: Some(env),
                    dry_run: *dry_run,
                    force: false,
                    reason: None,
                    allow_drift: false,
                    out: BundleOut::Keep,
                    output: Output::Text,
                };
                (
                    release::promote(&config, memory, &remote, &remote, &args).await,
                    tag,
                )
            }
            Command::Rollback {
                env,
                release: tag,
                dry_run,
            } => {
                let args = RollbackArgs {
                    release: tag,
                    env,
                    dry_run: *dry_run,
                    out: BundleOut::Keep,
                    output: Output::Text,
                };
                (
                    release::rollback(&config, memory, &remote, &remote, &args).await,
                    tag.clone(),
                )
            }
            Command::Status | Command::Help => unreachable!("answered above"),
        };
        let (result, tag) = outcome;
        let text = match result {
            Ok(reply_) => {
                let mut text = format!(
                    "`{said}`:\n\n```text\n{}\n```",
                    reply_.text.trim_end().replace("```", "'''")
                );
                for b in &reply_.bundles {
                    text.push_str(&chat.deliver(&tag, b).await?);
                }
                text
            }
            Err(Failure { code, message }) => {
                let what = if code == exit::REFUSED {
                    "refused"
                } else {
                    "failed"
                };
                format!("`{said}` {what}: {message}")
            }
        };
        chat.reply(&fit(&reply(text), BODY_LIMIT)).await?;
        Ok(())
    }

    /// The newest release tag.
    async fn newest_release(
        &self,
        config: &Config,
        remote: &Remote<'_, impl RepoApi>,
    ) -> Result<Option<String>, String> {
        use crate::ops::source::Source;
        let mut tags = remote.tags(&config.release_tags).await?;
        crate::core::release::sort_tags(&mut tags, &config.release_tags);
        Ok(tags.into_iter().rev().find(|t| {
            crate::core::release::tag_version(t, &config.release_tags)
                .is_none_or(|v| v.pre.is_empty())
        }))
    }
}

pub(super) async fn audit_or_transient(memory: &Memory, entry: Entry) -> Result<(), JobError> {
    memory
        .audit(entry)
        .await
        .map_err(|f| JobError::Transient(f.message, Duration::from_secs(5)))
}

/// Puts the bot's section into a release description, replacing an
/// earlier one and keeping everything else.
fn replace_section(body: &str, section: &str) -> String {
    if let (Some(a), Some(b)) = (body.find(RELEASE_OPEN), body.find(RELEASE_CLOSE))
        && a < b
    {
        let end = b + RELEASE_CLOSE.len();
        return format!("{}{section}{}", &body[..a], &body[end..]);
    }
    if body.trim().is_empty() {
        section.to_owned()
    } else {
        format!("{}\n\n{section}", body.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_not_repeated() {
        let s1 = format!("{RELEASE_OPEN}\nv1\n{RELEASE_CLOSE}");
        let s2 = format!("{RELEASE_OPEN}\nv2\n{RELEASE_CLOSE}");
        let once = replace_section("Release notes by people.", &s1);
        assert_eq!(once, format!("Release notes by people.\n\n{s1}"));
        let twice = replace_section(&once, &s2);
        assert_eq!(twice, format!("Release notes by people.\n\n{s2}"));
        assert_eq!(replace_section("", &s1), s1);
    }
}
