//! What a webhook delivery asks of the bot, read from GitHub's payload at
//! intake: only the fields the work needs are kept (a few hundred bytes
//! queued instead of the whole payload).

use crate::core::chatops;
use serde::{Deserialize, Serialize};

/// The repository an event concerns, and the installation to act as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub installation: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
}

/// A job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// The matrix for a commit: a check run, and for a pull request the
    /// sticky comment.
    Matrix {
        repo: RepoRef,
        sha: String,
        pull: Option<u64>,
    },
    /// A release tag: bundles as release assets, progress on the release.
    ReleaseTag { repo: RepoRef, tag: String },
    /// GitLab: the matrix for a commit (a commit status), and for a merge
    /// request the sticky note.
    GitLabMatrix {
        project: GlProject,
        sha: String,
        merge_request: Option<u64>,
        /// The branch the commit status is for (GitLab attaches it to the
        /// first branch holding the commit otherwise).
        #[serde(default)]
        branch: Option<String>,
    },
    /// GitLab: a release tag's bundles, linked from its release.
    GitLabTag { project: GlProject, tag: String },
    /// GitLab: a chat-ops command in a merge request or issue note.
    GitLabNote {
        project: GlProject,
        /// The merge request's iid (`merge_request: true`) or the issue's.
        merge_request: bool,
        iid: u64,
        note: u64,
        user_id: u64,
        username: String,
        body: String,
    },
    /// A chat-ops command in a comment.
    Command {
        repo: RepoRef,
        issue: u64,
        pull: bool,
        comment: u64,
        login: String,
        body: String,
    },
}

/// A GitLab project an event concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlProject {
    pub id: u64,
    /// `group/subgroup/name`.
    pub path: String,
    pub default_branch: String,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

#[derive(Deserialize)]
struct Repository {
    name: String,
    owner: Owner,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    head: Sha,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    reference: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct CreateEvent {
    #[serde(rename = "ref")]
    reference: String,
    ref_type: String,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct ReleaseBody {
    tag_name: String,
}

#[derive(Deserialize)]
struct ReleaseEvent {
    action: String,
    release: ReleaseBody,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct Commenter {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct CommentBody {
    id: u64,
    body: Option<String>,
    user: Commenter,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IssueCommentEvent {
    action: String,
    comment: CommentBody,
    issue: Issue,
    repository: Repository,
    installation: Option<Installation>,
}

fn repo(r: Repository, i: Option<Installation>) -> Option<RepoRef> {
    Some(RepoRef {
        installation: i?.id,
        owner: r.owner.login,
        name: r.name,
        default_branch: r.default_branch.unwrap_or_else(|| "main".to_owned()),
    })
}

/// Reads a delivery. `Err`: not the JSON GitHub sends for that event;
/// `Ok(None)`: nothing for the bot to do (another action, a bot's comment,
/// no installation).
pub fn classify(event: &str, body: &[u8]) -> Result<Option<Work>, String> {
    let bad = |e: serde_json::Error| format!("{event} payload: {e}");
    Ok(match event {
        "pull_request" => {
            let e: PullRequestEvent = serde_json::from_slice(body).map_err(bad)?;
            if !matches!(e.action.as_str(), "opened" | "synchronize" | "reopened") {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::Matrix {
                repo,
                sha: e.pull_request.head.sha,
                pull: Some(e.pull_request.number),
            })
        }
        "push" => {
            let e: PushEvent = serde_json::from_slice(body).map_err(bad)?;
            if e.deleted {
                return Ok(None);
            }
            let Some(repo) = repo(e.repository, e.installation) else {
                return Ok(None);
            };
            if let Some(tag) = e.reference.strip_prefix("refs/tags/") {
                Some(Work::ReleaseTag {
                    repo,
                    tag: tag.to_owned(),
                })
            } else if e.reference == format!("refs/heads/{}", repo.default_branch) {
                Some(Work::Matrix {
                    repo,
                    sha: e.after,
                    pull: None,
                })
            } else {
                None
            }
        }
        "create" => {
            let e: CreateEvent = serde_json::from_slice(body).map_err(bad)?;
            if e.ref_type != "tag" {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::ReleaseTag {
                repo,
                tag: e.reference,
            })
        }
        "release" => {
            let e: ReleaseEvent = serde_json::from_slice(body).map_err(bad)?;
            if e.action != "published" {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::ReleaseTag {
                repo,
                tag: e.release.tag_name,
            })
        }
        "issue_comment" => {
            let e: IssueCommentEvent = serde_json::from_slice(body).map_err(bad)?;
            // Bots (this one included: its help names the commands) are
            // not listened to.
            if e.action != "created" || e.comment.user.kind == "Bot" {
                return Ok(None);
            }
            let text = e.comment.body.unwrap_or_default();
            if chatops::parse(&text) == chatops::Parsed::Nothing {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::Command {
                repo,
                issue: e.issue.number,
                pull: e.issue.pull_request.is_some(),
                comment: e.comment.id,
                login: e.comment.user.login,
                body: text,
            })
        }
        _ => {
            // Still JSON, or it is not GitHub talking.
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(bad)?;
            None
        }
    })
}

#[derive(Deserialize)]
struct GlProjectBody {
    id: u64,
    path_with_namespace: String,
    default_branch: Option<String>,
}

impl From<GlProjectBody> for GlProject {
    fn from(p: GlProjectBody) -> GlProject {
        GlProject {
            id: p.id,
            path: p.path_with_namespace,
            default_branch: p.default_branch.unwrap_or_else(|| "main".to_owned()),
        }
    }
}

#[derive(Deserialize)]
struct GlLastCommit {
    id: String,
}

#[derive(Deserialize)]
struct GlMrAttributes {
    iid: u64,
    source_branch: Option<String>,
    source_project_id: Option<u64>,
    target_project_id: Option<u64>,
    action: Option<String>,
    oldrev: Option<String>,
    last_commit: Option<GlLastCommit>,
}

#[derive(Deserialize)]
struct GlMrEvent {
    project: GlProjectBody,
    object_attributes: GlMrAttributes,
}

#[derive(Deserialize)]
struct GlPushEvent {
    project: GlProjectBody,
    #[serde(rename = "ref")]
    reference: String,
    after: String,
}

#[derive(Deserialize)]
struct GlUser {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct GlNoteAttributes {
    id: u64,
    note: String,
    noteable_type: String,
    action: Option<String>,
    #[serde(default)]
    system: bool,
}

#[derive(Deserialize)]
struct GlIid {
    iid: u64,
}

#[derive(Deserialize)]
struct GlNoteEvent {
    project: GlProjectBody,
    user: GlUser,
    object_attributes: GlNoteAttributes,
    merge_request: Option<GlIid>,
    issue: Option<GlIid>,
}

/// Project and group access tokens act as bot users named
/// `project_<id>_bot…` / `group_<id>_bot…`: envgate's own notes.
fn gitlab_bot(username: &str) -> bool {
    ["project_", "group_"].iter().any(|p| {
        username.strip_prefix(p).is_some_and(|rest| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with("_bot")
        })
    })
}

/// Reads a GitLab delivery by its `X-Gitlab-Event`. `Err`: not the JSON
/// GitLab sends; `Ok(None)`: nothing to do.
pub fn classify_gitlab(event: &str, body: &[u8]) -> Result<Option<Work>, String> {
    let bad = |e: serde_json::Error| format!("{event} payload: {e}");
    let zero = |sha: &str| sha.bytes().all(|b| b == b'0');
    Ok(match event {
        "Merge Request Hook" => {
            let e: GlMrEvent = serde_json::from_slice(body).map_err(bad)?;
            let a = e.object_attributes;
            let wanted = match a.action.as_deref() {
                Some("open" | "reopen") => true,
                // An update with new commits; title edits and the like
                // have no oldrev.
                Some("update") => a.oldrev.is_some(),
                _ => false,
            };
            // A fork's branch is not the target project's: no ref then.
            let same_project = a.source_project_id == a.target_project_id;
            match (wanted, a.last_commit) {
                (true, Some(c)) => Some(Work::GitLabMatrix {
                    project: e.project.into(),
                    sha: c.id,
                    merge_request: Some(a.iid),
                    branch: a.source_branch.filter(|_| same_project),
                }),
                _ => None,
            }
        }
        "Push Hook" => {
            let e: GlPushEvent = serde_json::from_slice(body).map_err(bad)?;
            let project: GlProject = e.project.into();
            (e.reference == format!("refs/heads/{}", project.default_branch) && !zero(&e.after))
                .then_some(Work::GitLabMatrix {
                    branch: Some(project.default_branch.clone()),
                    project,
                    sha: e.after,
                    merge_request: None,
                })
        }
        "Tag Push Hook" => {
            let e: GlPushEvent = serde_json::from_slice(body).map_err(bad)?;
            match e.reference.strip_prefix("refs/tags/") {
                Some(tag) if !zero(&e.after) => Some(Work::GitLabTag {
                    project: e.project.into(),
                    tag: tag.to_owned(),
                }),
                _ => None,
            }
        }
        "Note Hook" => {
            let e: GlNoteEvent = serde_json::from_slice(body).map_err(bad)?;
            let a = e.object_attributes;
            let created = a.action.as_deref().is_none_or(|x| x == "create");
            if !created || a.system || gitlab_bot(&e.user.username) {
                return Ok(None);
            }
            if chatops::parse(&a.note) == chatops::Parsed::Nothing {
                return Ok(None);
            }
            let (merge_request, iid) = match (a.noteable_type.as_str(), e.merge_request, e.issue) {
                ("MergeRequest", Some(m), _) => (true, m.iid),
                ("Issue", _, Some(i)) => (false, i.iid),
                _ => return Ok(None),
            };
            Some(Work::GitLabNote {
                project: e.project.into(),
                merge_request,
                iid,
                note: a.id,
                user_id: e.user.id,
                username: e.user.username,
                body: a.note,
            })
        }
        _ => {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(bad)?;
            None
        }
    })
}
