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

impl Work {
    pub fn repo(&self) -> &RepoRef {
        match self {
            Work::Matrix { repo, .. }
            | Work::ReleaseTag { repo, .. }
            | Work::Command { repo, .. } => repo,
        }
    }
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
