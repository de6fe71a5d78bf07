//! Where a chat-ops command was given: a pull request or issue comment on
//! GitHub, a merge request or issue note on GitLab. The command itself runs
//! the same on both ([`super::jobs::Worker::command`]); this is what
//! differs: acknowledging, replying, who may write, the environments'
//! lists, and where a bundle goes.

use super::remote::RepoApi;
use crate::core::bundle::Bundle;
use crate::core::policy;
use crate::forge::github::Repo;
use crate::forge::{ApiError, gitlab};
use crate::ops::review::{BODY_LIMIT, fence_for, fit};
use crate::render;

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
fn attached(tag: &str, links: &[String], b: &Bundle) -> String {
    format!(
        "\n\nThe bundle is attached to release {tag}: {} (bundle {}, sha256 `{}`).",
        links.join(" and "),
        b.manifest.bundle_id,
        b.manifest.bundle_sha256
    )
}

/// The bundle's files: (name, content type, bytes).
pub fn bundle_files(b: &Bundle) -> [(String, &'static str, Vec<u8>); 2] {
    [
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
    ]
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
        let permission = self.repo.permission(login).await?;
        Ok((!matches!(permission.as_str(), "admin" | "write" | "maintain")).then(|| {
            format!(
                "{login} has {permission} access to {}; promoting and rolling back need write access",
                self.place()
            )
        }))
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
        let Some(rel) = self.repo.release_by_tag(tag).await? else {
            return Ok(collapsed(b));
        };
        let assets = self
            .repo
            .put_bundle(&rel, bundle_files(b).into_iter().collect())
            .await?;
        let links: Vec<String> = assets
            .into_iter()
            .map(|a| match a.browser_download_url {
                Some(url) => format!("[`{}`]({url})", a.name),
                None => format!("`{}`", a.name),
            })
            .collect();
        Ok(attached(tag, &links, b))
    }
}

/// A note on a GitLab merge request or issue.
pub struct GitLabChat<'a> {
    pub project: gitlab::Project<'a>,
    pub on: gitlab::Noteable,
    pub note: u64,
    pub user_id: u64,
    pub default_branch: &'a str,
}

impl<'a> Chat for GitLabChat<'a> {
    type Repo = gitlab::Project<'a>;

    fn repo(&self) -> &gitlab::Project<'a> {
        &self.project
    }

    fn place(&self) -> String {
        self.project.path.clone()
    }

    fn default_branch(&self) -> &str {
        self.default_branch
    }

    async fn seen(&self) -> Result<(), ApiError> {
        self.project.award(self.on, self.note, "eyes").await
    }

    async fn reply(&self, text: &str) -> Result<(), ApiError> {
        self.project.note_on(self.on, text).await
    }

    async fn write_refusal(&self, login: &str) -> Result<Option<String>, ApiError> {
        let level = self.project.access_level(self.user_id).await?;
        Ok((level < gitlab::DEVELOPER).then(|| {
            format!(
                "{login} has access level {level} on {}; promoting and rolling back need Developer (30) or above",
                self.place()
            )
        }))
    }

    async fn member_of(&self, _login: &str, group: &str) -> Result<bool, ApiError> {
        self.project.in_group(group, self.user_id).await
    }

    /// Uploads the bundle as the generic package `envgate/<tag>`, linked
    /// from the tag's release when the tag exists; else shows it
    /// collapsed.
    async fn deliver(&self, tag: &str, b: &Bundle) -> Result<String, ApiError> {
        if !self.project.tag_exists(tag).await? {
            return Ok(collapsed(b));
        }
        let files = bundle_files(b)
            .into_iter()
            .map(|(name, _, bytes)| (name, bytes))
            .collect();
        let links: Vec<String> = self
            .project
            .attach(tag, files)
            .await?
            .into_iter()
            .map(|(name, url)| format!("[`{name}`]({url})"))
            .collect();
        Ok(attached(tag, &links, b))
    }
}
