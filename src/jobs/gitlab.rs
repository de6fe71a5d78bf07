//! The jobs' forge traits on GitLab: the commit status `envgate`
//! ([`CommitStatus`]), generic packages linked from a release ([`Release`]),
//! and chat-ops in merge request and issue notes ([`GitLabChat`]).

use super::command::{Chat, attached, collapsed};
use super::mode::{self, Approvals, ModeCheck};
use super::release::{Publisher, files, replace_section};
use super::review::{Checks, Summary, Unread};
use crate::core::bundle::Bundle;
use crate::core::check::Conclusion;
use crate::core::identity::Merge;
use crate::core::loosening::Verdict;
use crate::forge::{ApiError, Published, ReleaseFiles, gitlab};

/// The commit status envgate keeps.
const STATUS: &str = "envgate";

/// The `envgate` commit status of a commit, on a branch (GitLab attaches
/// it to the first branch holding the commit otherwise).
pub struct CommitStatus<'a> {
    pub project: &'a gitlab::Project<'a>,
    pub sha: &'a str,
    pub branch: Option<&'a str>,
}

impl CommitStatus<'_> {
    /// The status is a convenience: GitLab refusing it (a fork's commit it
    /// knows no branch for) must not cost the note.
    async fn set(&self, state: &str, description: &str) -> Result<(), ApiError> {
        match self
            .project
            .set_status(self.sha, self.branch, STATUS, state, description)
            .await
        {
            Err(e @ ApiError::Transient { .. }) => Err(e),
            Err(e) => {
                tracing::warn!("commit status not set: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}

impl Checks for CommitStatus<'_> {
    async fn started(&self) -> Result<(), ApiError> {
        self.set("running", "reading every environment").await
    }

    async fn finished(&self, summary: &Summary) -> Result<(), ApiError> {
        // GitLab has no neutral state: pending alone is not a failure.
        let state = match summary.conclusion {
            Conclusion::Failure => "failed",
            Conclusion::Success | Conclusion::Neutral => "success",
        };
        self.set(state, &summary.title).await
    }

    async fn failed(&self, why: &Unread) -> Result<(), ApiError> {
        let text = match why {
            Unread::Config(e) => format!("envgate.toml is not valid: {e}"),
            Unread::Migrations(e) => format!("cannot read the migrations: {e}"),
        };
        self.set("failed", &text).await
    }
}

/// A tag's release: the generic package `envgate/<tag>`, linked from it.
pub struct Release<'a> {
    pub project: &'a gitlab::Project<'a>,
}

impl Publisher for Release<'_> {
    async fn publish(&self, tag: &str, files: ReleaseFiles) -> Result<Vec<Published>, ApiError> {
        self.project.attach(tag, files).await
    }

    /// envgate's section of the release's description.
    async fn notes(&self, tag: &str, section: &str) -> Result<(), ApiError> {
        let Some(body) = self.project.release_description(tag).await? else {
            return Ok(());
        };
        let new = replace_section(&body, section);
        if new != body {
            self.project.update_release_description(tag, &new).await?;
        }
        Ok(())
    }
}

/// Why a user may not promote or roll back in `project`, if so: the
/// chat-ops rule, Developer (30) or above, for notes and the console.
pub async fn write_refusal(
    project: &gitlab::Project<'_>,
    user_id: u64,
    login: &str,
) -> Result<Option<String>, ApiError> {
    let level = project.access_level(user_id).await?;
    Ok((level < gitlab::DEVELOPER).then(|| {
        format!(
            "{login} has access level {level} on {}; promoting and rolling back need Developer (30) or above",
            project.path
        )
    }))
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
        write_refusal(&self.project, self.user_id, login).await
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
        let links: Vec<String> = self
            .project
            .attach(tag, files(b))
            .await?
            .into_iter()
            .map(|p| format!("[`{}`]({})", p.name, p.url.unwrap_or_default()))
            .collect();
        Ok(attached(tag, &links, b))
    }
}

/// A merge request's approvals.
pub struct MrApprovals<'a> {
    pub project: &'a gitlab::Project<'a>,
    pub iid: u64,
    /// Approvers' user ids, for group membership.
    ids: std::sync::Mutex<Vec<(u64, String)>>,
}

impl<'a> MrApprovals<'a> {
    pub fn new(project: &'a gitlab::Project<'a>, iid: u64) -> MrApprovals<'a> {
        MrApprovals {
            project,
            iid,
            ids: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Approvals for MrApprovals<'_> {
    /// GitLab keeps (or resets, as the project is set) approvals across
    /// pushes: they are taken as they stand.
    async fn approvers(&self, _head: &str) -> Result<Vec<String>, ApiError> {
        let approvals = self.project.approvals(self.iid).await?;
        let names = approvals.iter().map(|(_, u)| u.clone()).collect();
        *self.ids.lock().expect("not poisoned") = approvals;
        Ok(names)
    }

    async fn member_of(&self, login: &str, group: &str) -> Result<bool, ApiError> {
        let id = self
            .ids
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(_, u)| u == login)
            .map(|(id, _)| *id);
        match id {
            Some(id) => self.project.in_group(group, id).await,
            None => Ok(false),
        }
    }
}

/// The `envgate/mode` commit status.
pub struct ModeStatus<'a> {
    pub project: &'a gitlab::Project<'a>,
    pub sha: &'a str,
    pub branch: Option<&'a str>,
}

impl ModeCheck for ModeStatus<'_> {
    async fn report(&self, verdict: &Verdict, _text: &str) -> Result<(), ApiError> {
        self.project
            .set_status(
                self.sha,
                self.branch,
                mode::CHECK,
                if verdict.passed { "success" } else { "failed" },
                &verdict.title(),
            )
            .await
    }
}

/// The reviewed merge request that brought `sha` to the default branch, if
/// any, as the audit trail credits it.
pub async fn merge_of(project: &gitlab::Project<'_>, sha: &str) -> Result<Option<Merge>, ApiError> {
    let path = project.path.to_owned();
    Ok(project.merged_request(sha).await?.map(|m| Merge {
        commit: sha.to_owned(),
        request: format!("{path}!{}", m.iid),
        author: m.author,
        merged_by: m.merged_by,
        approvers: m.approvers,
    }))
}
