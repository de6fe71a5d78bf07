//! A chat-ops command from a comment or note: `/status`, `/help`,
//! `/promote <env> [<release>]`, `/rollback <env> <release>`.
//!
//! ```text
//! /promote staging v2.4.0
//! → 👀, then: @alice `/promote staging v2.4.0`:
//!   release v2.4.0: 'staging' is export_only: wrote staging-v2.4.0.sql …
//!   The bundle is attached to release v2.4.0: staging-v2.4.0.sql and …
//! ```
//!
//! The command runs the same on every forge ([`run`]); [`Chat`] is what
//! differs (acknowledging, replying, who may write, the environments'
//! lists, where a bundle goes), implemented in `jobs::github` and
//! `jobs::gitlab`. Every command, refusals and help included, is audited.

use super::remote::RepoApi;
use super::review::{BODY_LIMIT, fence_for, fit};
use super::{Context, JobError};
use crate::core::audit::Entry;
use crate::core::bundle::Bundle;
use crate::core::chatops::{self, Command, Parsed};
use crate::core::policy;
use crate::forge::ApiError;
use crate::ops::memory::Memory;
use crate::ops::release::{self, BundleOut, PromoteArgs, RollbackArgs};
use crate::ops::{Failure, Output, exit};
use crate::render;
use std::time::Duration;

#[allow(async_fn_in_trait)]
pub trait Chat {
    type Repo: RepoApi;
    fn repo(&self) -> &Self::Repo;
    /// `owner/name` or `group/project`, for messages.
    fn place(&self) -> String;
    fn default_branch(&self) -> &str;
    /// Acknowledges the command at once (👀).
    async fn seen(&self) -> Result<(), ApiError>;
    async fn reply(&self, text: &str) -> Result<(), ApiError>;
    /// Why `login` may not promote or roll back here, if so.
    async fn write_refusal(&self, login: &str) -> Result<Option<String>, ApiError>;
    /// Whether `login` belongs to the group an `@…` entry of admins or
    /// promoters names (a GitHub `org/team`, a GitLab `group/subgroup`).
    async fn member_of(&self, login: &str, group: &str) -> Result<bool, ApiError>;
    /// Whether `login` is in an environment's admins/promoters: by login,
    /// or through a group.
    async fn is_listed(&self, login: &str, listed: &[String]) -> Result<bool, ApiError> {
        let mut groups = Vec::new();
        for group in listed.iter().filter_map(|e| e.strip_prefix('@')) {
            if self.member_of(login, group).await? {
                groups.push(group.to_owned());
            }
        }
        Ok(policy::is_admin(login, listed, &groups))
    }
    /// Delivers a bundle; the text to add to the reply.
    async fn deliver(&self, tag: &str, b: &Bundle) -> Result<String, ApiError>;
}

/// A command given in the web console: the forge's chat does the checks
/// and deliveries, as for a comment, while the replies are kept for the
/// page (nothing is posted) and a refusal is recorded for its status.
pub struct ConsoleChat<C> {
    forge: C,
    pub replies: std::cell::RefCell<Vec<String>>,
    /// Why the person may not do it, when the checks said so.
    pub refused: std::cell::RefCell<Option<String>>,
}

impl<C: Chat> ConsoleChat<C> {
    /// `forge`'s own reactions and replies are never used.
    pub fn new(forge: C) -> ConsoleChat<C> {
        ConsoleChat {
            forge,
            replies: std::cell::RefCell::default(),
            refused: std::cell::RefCell::default(),
        }
    }
}

impl<C: Chat> Chat for ConsoleChat<C> {
    type Repo = C::Repo;

    fn repo(&self) -> &C::Repo {
        self.forge.repo()
    }

    fn place(&self) -> String {
        self.forge.place()
    }

    fn default_branch(&self) -> &str {
        self.forge.default_branch()
    }

    async fn seen(&self) -> Result<(), ApiError> {
        Ok(())
    }

    async fn reply(&self, text: &str) -> Result<(), ApiError> {
        self.replies.borrow_mut().push(text.to_owned());
        Ok(())
    }

    async fn write_refusal(&self, login: &str) -> Result<Option<String>, ApiError> {
        let why = self.forge.write_refusal(login).await?;
        if let Some(w) = &why {
            *self.refused.borrow_mut() = Some(w.clone());
        }
        Ok(why)
    }

    async fn member_of(&self, login: &str, group: &str) -> Result<bool, ApiError> {
        self.forge.member_of(login, group).await
    }

    async fn is_listed(&self, login: &str, listed: &[String]) -> Result<bool, ApiError> {
        let ok = self.forge.is_listed(login, listed).await?;
        if !ok {
            *self.refused.borrow_mut() = Some(format!(
                "{login} is not one of the environment's admins or promoters"
            ));
        }
        Ok(ok)
    }

    async fn deliver(&self, tag: &str, b: &Bundle) -> Result<String, ApiError> {
        self.forge.deliver(tag, b).await
    }
}

/// A bundle shown in the reply itself, collapsed.
pub fn collapsed(b: &Bundle) -> String {
    let sql = fit(&b.sql, BODY_LIMIT / 2);
    let fence = fence_for(&sql);
    format!(
        "\n\n<details><summary><code>{}.sql</code> (bundle {}, sha256 <code>{}</code>)</summary>\n\n{fence}sql\n{sql}\n{fence}\n\n</details>",
        b.stem, b.manifest.bundle_id, b.manifest.bundle_sha256
    )
}

/// The reply's line for a bundle attached to a release: its files as
/// Markdown links.
pub fn attached(tag: &str, links: &[String], b: &Bundle) -> String {
    format!(
        "\n\nThe bundle is attached to release {tag}: {} (bundle {}, sha256 `{}`).",
        links.join(" and "),
        b.manifest.bundle_id,
        b.manifest.bundle_sha256
    )
}

/// Runs a chat-ops command given by `login` in `body`, on whichever forge
/// `chat` is: parsed, checked (write access, then the environment's admins
/// and promoters), run against the default branch's head, audited, and
/// answered in the thread.
pub async fn run<C: Chat>(
    ctx: &Context<'_>,
    chat: &C,
    login: &str,
    body: &str,
) -> Result<(), JobError> {
    let memory = ctx.memory;
    chat.seen().await?;
    let parsed = chatops::parse(body);
    let audit = |outcome: &str, env: Option<&str>, details: String, error: Option<String>| Entry {
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
            chat.reply(&reply(format!("{problem}.\n\n{}", chatops::help())))
                .await?;
            return Ok(());
        }
        Parsed::Command(c) => c,
    };
    let said = command.describe();
    if command == Command::Help {
        audit_or_transient(memory, audit("ok", None, said.clone(), None)).await?;
        chat.reply(&reply(chatops::help())).await?;
        return Ok(());
    }
    let head = chat.repo().commit_of(chat.default_branch()).await?;
    let config = match ctx.config_at(chat.repo(), &head).await? {
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
                ctx.config_path,
                chat.default_branch()
            )))
            .await?;
            return Ok(());
        }
    };
    // Read where the bot read envgate.toml: the default branch's head.
    let remote = ctx.remote(chat.repo(), &head);
    if command == Command::Status {
        let observed = crate::ops::observe::Observation::status(
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
    let (result, tag) = match &command {
        Command::Promote {
            env,
            release: tag,
            dry_run,
        } => {
            let tag = match tag {
                Some(t) => t.clone(),
                None => match newest_release(&config, &remote).await {
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
                waive: crate::core::plan::Waive::NONE,
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
    let text = match result {
        Ok(answer) => {
            for w in &answer.warnings {
                tracing::warn!("{w}");
            }
            let mut text = format!(
                "`{said}`:\n\n```text\n{}\n```",
                answer.text.trim_end().replace("```", "'''")
            );
            for b in &answer.bundles {
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

/// The newest release tag that is not a pre-release.
async fn newest_release(
    config: &crate::config::Config,
    remote: &super::remote::Remote<'_, impl RepoApi>,
) -> Result<Option<String>, String> {
    use crate::ops::source::Source;
    let mut tags = remote.tags(&config.release_tags).await?;
    crate::core::release::sort_tags(&mut tags, &config.release_tags);
    Ok(tags.into_iter().rev().find(|t| {
        crate::core::release::tag_version(t, &config.release_tags).is_none_or(|v| v.pre.is_empty())
    }))
}

/// Audits, or comes back later when the trail cannot be written: a command
/// is never run unaudited.
async fn audit_or_transient(memory: &Memory, entry: Entry) -> Result<(), JobError> {
    memory
        .audit(entry)
        .await
        .map_err(|f| JobError::Transient(f.message, Duration::from_secs(5)))
}
