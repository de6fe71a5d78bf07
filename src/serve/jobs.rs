//! The bot's work, one job at a time: the matrix of a commit (check run and
//! sticky pull-request comment), a release tag's bundles, and chat-ops
//! commands. Each runs the same operations as the command line, through
//! [`Remote`]: the repository via GitHub's API, environments via the bot's
//! own credentials.

use super::event::{RepoRef, Work};
use super::remote::Remote;
use super::{Shared, now_ms};
use crate::config::{self, Config};
use crate::control::ControlStore;
use crate::core::audit::Entry;
use crate::core::chatops::{self, Command, Parsed};
use crate::core::matrix;
use crate::core::policy;
use crate::forge::github::Repo;
use crate::forge::{ApiError, sticky};
use crate::ops::memory::Memory;
use crate::ops::release::{self, BundleOut, PromoteArgs, RollbackArgs};
use crate::ops::review::{self, BODY_LIMIT, PR_MARKER, fence_for, fit};
use crate::ops::world::Reach;
use crate::ops::{Failure, Output, exit};
use crate::render;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const RELEASE_OPEN: &str = "<!-- envgate:release -->";
const RELEASE_CLOSE: &str = "<!-- /envgate:release -->";
/// The actor the bot's own reads are recorded as.
const BOT: &str = "envgate[bot]";

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
        let (actor, commit) = match work {
            Work::Command { login, .. } => (login.clone(), None),
            Work::Matrix { sha, .. } => (BOT.to_owned(), Some(sha.clone())),
            Work::ReleaseTag { tag, .. } => (BOT.to_owned(), Some(tag.clone())),
        };
        let memory = Memory::with_store(store, actor, commit);
        let result = match work {
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
                self.command(&memory, repo, *issue, *comment, login, body)
                    .await
            }
        };
        self.store = memory.into_store();
        result
    }

    fn repo<'a>(&'a self, r: &'a RepoRef) -> Repo<'a> {
        self.shared.github.repo(r.installation, &r.owner, &r.name)
    }

    fn remote<'a>(&'a self, r: &'a RepoRef, at: &str) -> Remote<'a> {
        Remote {
            repo: self.repo(r),
            at: at.to_owned(),
            credentials: &self.shared.cfg.credentials,
            blobs: &self.shared.blobs,
        }
    }

    /// envgate.toml at a revision; None when the repository has none.
    async fn config_at(
        &self,
        r: &RepoRef,
        at: &str,
    ) -> Result<Option<Result<Config, String>>, JobError> {
        let path = &self.shared.cfg.github.config_path;
        let Some(bytes) = self.repo(r).file(path, at).await? else {
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
    async fn locked<T>(
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
        let Some(config) = self.config_at(r, sha).await? else {
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
        let remote = self.remote(r, sha);
        let world = match remote
            .world(&config, config.environments.iter().collect())
            .await
        {
            Ok(w) => w,
            Err(f) => {
                let output = json!({
                    "title": "envgate could not read the migrations",
                    "summary": format!("```\n{}\n```", f.message.replace("```", "'''")),
                });
                gh.complete_check_run(check_id, "failure", &output).await?;
                return Ok(());
            }
        };
        if let Err(e) = memory.track_modes(&config, &world.envs, false).await {
            tracing::warn!("control store: {e}");
        }
        let remembered = memory.remembered(&world.envs, &world.labels).await;
        let m = matrix::compute(&world.discovery.migrations, &world.inputs(&remembered));
        memory.after_status(&world.envs, &world.labels, &m).await;
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
        let added: HashSet<String> = gh
            .pull_files(number)
            .await?
            .into_iter()
            .filter(|f| f.status == "added")
            .map(|f| f.filename)
            .collect();
        let body = review::pr_comment(&world, &m, &remembered, &added, sha, BOT);
        let key = format!("comment:{}/{}#{number}", r.owner, r.name);
        self.locked(memory, &key, async {
            sticky(&gh.thread(number), PR_MARKER, &body).await?;
            Ok(())
        })
        .await
    }

    // ---- release tags ----

    async fn release_tag(&self, memory: &Memory, r: &RepoRef, tag: &str) -> Result<(), JobError> {
        let Some(config) = self.config_at(r, tag).await? else {
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
        let remote = self.remote(r, &commit);
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
            let release = match gh.release_by_tag(tag).await? {
                Some(rel) => rel,
                None => {
                    gh.create_release(tag, self.shared.cfg.github.draft_releases, "")
                        .await?
                }
            };
            let mut names = Vec::new();
            for b in &reply.bundles {
                let files = [
                    (
                        format!("{}.sql", b.stem),
                        "application/sql",
                        b.sql.clone().into_bytes(),
                    ),
                    (
                        format!("{}.manifest.json", b.stem),
                        "application/json",
                        render::json(&b.manifest).into_bytes(),
                    ),
                ];
                for (name, content_type, bytes) in files {
                    // A re-delivery replaces what an earlier one uploaded.
                    for old in release.assets.iter().filter(|a| a.name == name) {
                        gh.delete_asset(old.id).await?;
                    }
                    gh.upload_asset(&release, &name, content_type, bytes)
                        .await?;
                    names.push(name);
                }
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

    #[allow(clippy::too_many_arguments)]
    async fn command(
        &self,
        memory: &Memory,
        r: &RepoRef,
        issue: u64,
        comment: u64,
        login: &str,
        body: &str,
    ) -> Result<(), JobError> {
        let gh = self.repo(r);
        gh.react(comment, "eyes").await?;
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
                gh.create_comment(issue, &reply(format!("{problem}.\n\n{}", chatops::HELP)))
                    .await?;
                return Ok(());
            }
            Parsed::Command(c) => c,
        };
        let said = command.describe();
        if command == Command::Help {
            audit_or_transient(memory, audit("ok", None, said.clone(), None)).await?;
            gh.create_comment(issue, &reply(chatops::HELP.to_owned()))
                .await?;
            return Ok(());
        }
        let head = gh.commit_of(&r.default_branch).await?;
        let config = match self.config_at(r, &head).await? {
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
                gh.create_comment(
                    issue,
                    &reply(format!("envgate.toml is not valid:\n\n```\n{e}\n```")),
                )
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
                gh.create_comment(
                    issue,
                    &reply(format!(
                        "this repository has no {} on {}.",
                        self.shared.cfg.github.config_path, r.default_branch
                    )),
                )
                .await?;
                return Ok(());
            }
        };
        let remote = self.remote(r, &head);
        if command == Command::Status {
            let world = match remote
                .world(&config, config.environments.iter().collect())
                .await
            {
                Ok(w) => w,
                Err(f) => {
                    audit_or_transient(
                        memory,
                        audit("failed", None, said.clone(), Some(f.message.clone())),
                    )
                    .await?;
                    gh.create_comment(
                        issue,
                        &reply(format!("cannot read the migrations: {}", f.message)),
                    )
                    .await?;
                    return Ok(());
                }
            };
            let remembered = memory.remembered(&world.envs, &world.labels).await;
            let m = matrix::compute(&world.discovery.migrations, &world.inputs(&remembered));
            let md = world
                .redactor
                .redact(&render::status_markdown(&world.envs, &m, &[]));
            audit_or_transient(memory, audit("ok", None, said, None)).await?;
            gh.create_comment(
                issue,
                &fit(
                    &reply(format!("status of {}:\n\n{md}", r.default_branch)),
                    BODY_LIMIT,
                ),
            )
            .await?;
            return Ok(());
        }
        let env_name = command.environment().unwrap_or_default().to_owned();
        // Write permission on the repository, and the environment's lists.
        let permission = gh.permission(login).await?;
        let allowed_repo = matches!(permission.as_str(), "admin" | "write" | "maintain");
        let mut refusal = (!allowed_repo).then(|| {
            format!("{login} has {permission} access to {}/{}; promoting and rolling back need write access", r.owner, r.name)
        });
        if refusal.is_none()
            && let Some(env) = config.env(&env_name)
        {
            let listed: Vec<String> = env.admins.iter().chain(&env.promoters).cloned().collect();
            if !listed.is_empty() && !self.is_listed(&gh, login, &listed).await? {
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
            gh.create_comment(issue, &reply(format!("`{said}` refused: {why}.")))
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
                            gh.create_comment(
                                issue,
                                &reply(format!(
                                    "`{said}`: there is no release yet (no tag matches '{}').",
                                    config.release_tags
                                )),
                            )
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
                    text.push_str(&self.deliver_bundle(&gh, &tag, b).await?);
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
        gh.create_comment(issue, &fit(&reply(text), BODY_LIMIT))
            .await?;
        Ok(())
    }

    /// Whether `login` is in a list of logins and `@org/team`s.
    async fn is_listed(
        &self,
        gh: &Repo<'_>,
        login: &str,
        listed: &[String],
    ) -> Result<bool, JobError> {
        let mut teams = Vec::new();
        for entry in listed {
            if let Some(team) = entry.strip_prefix('@')
                && let Some((org, slug)) = team.split_once('/')
                && gh.in_team(org, slug, login).await?
            {
                teams.push(team.to_owned());
            }
        }
        Ok(policy::is_admin(login, listed, &teams))
    }

    /// The newest release tag.
    async fn newest_release(
        &self,
        config: &Config,
        remote: &Remote<'_>,
    ) -> Result<Option<String>, String> {
        use crate::ops::source::Source;
        let mut tags = remote.tags(&config.release_tags).await?;
        crate::core::release::sort_tags(&mut tags, &config.release_tags);
        Ok(tags.into_iter().rev().find(|t| {
            crate::core::release::tag_version(t, &config.release_tags)
                .is_none_or(|v| v.pre.is_empty())
        }))
    }

    /// Attaches a bundle to the tag's release when there is one (a link in
    /// the reply), else shows it collapsed.
    async fn deliver_bundle(
        &self,
        gh: &Repo<'_>,
        tag: &str,
        b: &crate::core::bundle::Bundle,
    ) -> Result<String, JobError> {
        let sql_name = format!("{}.sql", b.stem);
        if let Some(rel) = gh.release_by_tag(tag).await? {
            let manifest = render::json(&b.manifest);
            let mut links = Vec::new();
            for (name, content_type, bytes) in [
                (
                    sql_name.clone(),
                    "application/sql",
                    b.sql.clone().into_bytes(),
                ),
                (
                    format!("{}.manifest.json", b.stem),
                    "application/json",
                    manifest.into_bytes(),
                ),
            ] {
                for old in rel.assets.iter().filter(|a| a.name == name) {
                    gh.delete_asset(old.id).await?;
                }
                let asset = gh.upload_asset(&rel, &name, content_type, bytes).await?;
                links.push(match asset.browser_download_url {
                    Some(url) => format!("[`{name}`]({url})"),
                    None => format!("`{name}`"),
                });
            }
            return Ok(format!(
                "\n\nThe bundle is attached to release {tag}: {} (bundle {}, sha256 `{}`).",
                links.join(" and "),
                b.manifest.bundle_id,
                b.manifest.bundle_sha256
            ));
        }
        let sql = fit(&b.sql, BODY_LIMIT / 2);
        let fence = fence_for(&sql);
        Ok(format!(
            "\n\n<details><summary><code>{sql_name}</code> (bundle {}, sha256 <code>{}</code>)</summary>\n\n{fence}sql\n{sql}\n{fence}\n\n</details>",
            b.manifest.bundle_id, b.manifest.bundle_sha256
        ))
    }
}

async fn audit_or_transient(memory: &Memory, entry: Entry) -> Result<(), JobError> {
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
