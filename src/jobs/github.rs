//! The jobs' forge traits on GitHub: the check run of a commit
//! ([`CheckRun`]), release assets and notes ([`Release`]), and chat-ops in
//! pull request and issue comments ([`GitHubChat`]). A repository's content
//! ([`super::remote::RepoApi`]) and a pull request's conversation
//! ([`crate::forge::Thread`]) are implemented beside them.

use super::command::{Chat, attached, collapsed};
use super::mode::{self, Approvals, ModeCheck};
use super::release::{Publisher, files, replace_section};
use super::review::{BODY_LIMIT, Checks, Summary, Unread, fit};
use crate::core::bundle::Bundle;
use crate::core::identity::Merge;
use crate::core::loosening::Verdict;
use crate::forge::github::{self, Repo};
use crate::forge::{ApiError, Published, ReleaseFiles};
use serde_json::json;
use tokio::sync::Mutex;

/// GitHub takes 50 annotations per request.
const ANNOTATIONS_PER_REQUEST: usize = 50;

/// The `envgate` check run of a commit.
pub struct CheckRun<'a> {
    pub repo: &'a Repo<'a>,
    pub sha: &'a str,
    id: Mutex<Option<u64>>,
    /// The job ran before (its worker died, or an attempt failed): the
    /// check run it started — still in progress, or completed just before
    /// the worker died without recording the job done — is taken up and
    /// written again rather than a second one created.
    resuming: bool,
}

impl<'a> CheckRun<'a> {
    pub fn new(repo: &'a Repo<'a>, sha: &'a str) -> CheckRun<'a> {
        CheckRun {
            repo,
            sha,
            id: Mutex::new(None),
            resuming: false,
        }
    }

    /// For a job's second or later attempt.
    pub fn resuming(mut self, resuming: bool) -> CheckRun<'a> {
        self.resuming = resuming;
        self
    }

    async fn id(&self) -> Result<u64, ApiError> {
        let mut id = self.id.lock().await;
        if let Some(id) = *id {
            return Ok(id);
        }
        if self.resuming
            && let Some(left) = self.repo.latest_check_run(self.sha, "envgate").await?
        {
            *id = Some(left);
            return Ok(left);
        }
        let new = self.repo.start_check_run(self.sha, "envgate").await?;
        *id = Some(new);
        Ok(new)
    }
}

impl Checks for CheckRun<'_> {
    async fn started(&self) -> Result<(), ApiError> {
        self.id().await.map(|_| ())
    }

    async fn finished(&self, summary: &Summary) -> Result<(), ApiError> {
        let id = self.id().await?;
        let markdown = summary.check_markdown();
        let title = &summary.title;
        let annotations = &summary.annotations;
        let (first, rest) = annotations.split_at(annotations.len().min(ANNOTATIONS_PER_REQUEST));
        self.repo
            .complete_check_run(
                id,
                summary.conclusion.as_str(),
                &json!({"title": title, "summary": markdown, "annotations": first}),
            )
            .await?;
        for chunk in rest.chunks(ANNOTATIONS_PER_REQUEST) {
            self.repo
                .annotate_check_run(
                    id,
                    &json!({"title": title, "summary": markdown, "annotations": chunk}),
                )
                .await?;
        }
        Ok(())
    }

    async fn failed(&self, why: &Unread) -> Result<(), ApiError> {
        let id = self.id().await?;
        let (title, text) = match why {
            Unread::Config(e) => ("envgate.toml is not valid", e),
            Unread::Migrations(e) => ("envgate could not read the migrations", e),
        };
        let output = json!({
            "title": title,
            "summary": format!("```\n{}\n```", text.replace("```", "'''")),
        });
        self.repo.complete_check_run(id, "failure", &output).await
    }
}

/// A tag's release: assets, and envgate's section of its notes.
pub struct Release<'a> {
    pub repo: &'a Repo<'a>,
    /// Create a missing release as a draft.
    pub draft: bool,
    release: Mutex<Option<github::Release>>,
}

impl<'a> Release<'a> {
    pub fn new(repo: &'a Repo<'a>, draft: bool) -> Release<'a> {
        Release {
            repo,
            draft,
            release: Mutex::new(None),
        }
    }

    /// The tag's release, found or created once.
    async fn get(&self, tag: &str) -> Result<github::Release, ApiError> {
        let mut r = self.release.lock().await;
        if let Some(r) = &*r {
            return Ok(r.clone());
        }
        let found = self.repo.release_for(tag, self.draft).await?;
        *r = Some(found.clone());
        Ok(found)
    }
}

impl Publisher for Release<'_> {
    async fn publish(&self, tag: &str, files: ReleaseFiles) -> Result<Vec<Published>, ApiError> {
        let release = self.get(tag).await?;
        self.repo.put_bundle(&release, files).await
    }

    async fn notes(&self, tag: &str, section: &str) -> Result<(), ApiError> {
        let release = self.get(tag).await?;
        let body = replace_section(release.body.as_deref().unwrap_or(""), section);
        if release.body.as_deref() != Some(body.as_str()) {
            self.repo.update_release_body(release.id, &body).await?;
        }
        Ok(())
    }
}

/// A comment on a GitHub pull request or issue.
pub struct GitHubChat<'a> {
    pub repo: Repo<'a>,
    pub issue: u64,
    pub comment: u64,
    pub default_branch: &'a str,
}

impl<'a> Chat for GitHubChat<'a> {
    type Repo = Repo<'a>;

    fn repo(&self) -> &Repo<'a> {
        &self.repo
    }

    fn place(&self) -> String {
        format!("{}/{}", self.repo.owner, self.repo.name)
    }

    fn default_branch(&self) -> &str {
        self.default_branch
    }

    async fn seen(&self) -> Result<(), ApiError> {
        self.repo.react(self.comment, "eyes").await
    }

    async fn reply(&self, text: &str) -> Result<(), ApiError> {
        self.repo.create_comment(self.issue, text).await.map(|_| ())
    }

    async fn write_refusal(&self, login: &str) -> Result<Option<String>, ApiError> {
        write_refusal(&self.repo, login).await
    }

    async fn member_of(&self, login: &str, team: &str) -> Result<bool, ApiError> {
        match team.split_once('/') {
            Some((org, slug)) => self.repo.in_team(org, slug, login).await,
            None => Ok(false),
        }
    }

    /// Attaches the bundle to the tag's release when there is one (links
    /// in the reply), else shows it collapsed.
    async fn deliver(&self, tag: &str, b: &Bundle) -> Result<String, ApiError> {
        deliver(&self.repo, tag, b).await
    }
}

/// Why `login` may not promote or roll back in `repo`, if so: write
/// access is needed (the chat-ops rule, for comments and the console).
pub async fn write_refusal(repo: &Repo<'_>, login: &str) -> Result<Option<String>, ApiError> {
    let permission = repo.permission(login).await?;
    Ok((!matches!(permission.as_str(), "admin" | "write" | "maintain")).then(|| {
        format!(
            "{login} has {permission} access to {}/{}; promoting and rolling back need write access",
            repo.owner, repo.name
        )
    }))
}

/// Attaches a bundle to the tag's release when there is one (its files as
/// links), else shows it collapsed.
pub async fn deliver(repo: &Repo<'_>, tag: &str, b: &Bundle) -> Result<String, ApiError> {
    let Some(rel) = repo.release_by_tag(tag).await? else {
        return Ok(collapsed(b));
    };
    let assets = repo.put_bundle(&rel, files(b)).await?;
    let links: Vec<String> = assets
        .into_iter()
        .map(|a| match a.url {
            Some(url) => format!("[`{}`]({url})", a.name),
            None => format!("`{}`", a.name),
        })
        .collect();
    Ok(attached(tag, &links, b))
}

/// A pull request's approvals, as its reviews say.
pub struct PullApprovals<'a> {
    pub repo: &'a Repo<'a>,
    pub number: u64,
}

impl Approvals for PullApprovals<'_> {
    async fn approvers(&self, head: &str) -> Result<Vec<String>, ApiError> {
        self.repo.approvers(self.number, head).await
    }

    async fn member_of(&self, login: &str, team: &str) -> Result<bool, ApiError> {
        match team.split_once('/') {
            Some((org, slug)) => self.repo.in_team(org, slug, login).await,
            None => Ok(false),
        }
    }
}

/// The `envgate/mode` check run.
pub struct ModeCheckRun<'a> {
    pub repo: &'a Repo<'a>,
    pub sha: &'a str,
}

impl ModeCheck for ModeCheckRun<'_> {
    async fn report(&self, verdict: &Verdict, text: &str) -> Result<(), ApiError> {
        let id = self.repo.start_check_run(self.sha, mode::CHECK).await?;
        let summary = if text.is_empty() {
            "This pull request changes no environment's mode, admins, promoters or target."
                .to_owned()
        } else {
            fit(text, BODY_LIMIT)
        };
        self.repo
            .complete_check_run(
                id,
                if verdict.passed { "success" } else { "failure" },
                &json!({"title": verdict.title(), "summary": summary}),
            )
            .await
    }
}

/// The `envgate/mode` commit status (`envgate ci`, whose token can set
/// statuses but not create check runs).
pub struct ModeStatus<'a> {
    pub repo: &'a Repo<'a>,
    pub sha: &'a str,
}

impl ModeCheck for ModeStatus<'_> {
    /// Set again only when it changed: statuses pile up otherwise.
    async fn report(&self, verdict: &Verdict, _text: &str) -> Result<(), ApiError> {
        let state = if verdict.passed { "success" } else { "failure" };
        let title = verdict.title();
        if self.repo.status_of(self.sha, mode::CHECK).await?
            == Some((state.to_owned(), title.clone()))
        {
            return Ok(());
        }
        self.repo
            .set_status(self.sha, mode::CHECK, state, &title)
            .await
    }
}

/// The reviewed pull request that brought `sha` to the default branch, if
/// any, as the audit trail credits it.
pub async fn merge_of(repo: &Repo<'_>, sha: &str) -> Result<Option<Merge>, ApiError> {
    let (owner, name) = super::remote::RepoApi::owner_name(repo);
    Ok(repo.merged_pull(sha).await?.map(|p| Merge {
        commit: sha.to_owned(),
        request: format!("{owner}/{name}#{}", p.number),
        author: p.author,
        merged_by: p.merged_by,
        approvers: p.approvers,
    }))
}
