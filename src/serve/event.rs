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

/// Where a job happens: a GitHub repository (acting as an App
/// installation) or a GitLab project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    #[serde(rename = "github")]
    GitHub(RepoRef),
    #[serde(rename = "gitlab")]
    GitLab(GlProject),
}

/// The conversation a command was given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct On {
    /// The pull or merge request's number (GitLab: iid), or the issue's.
    pub number: u64,
    /// A pull or merge request, not an issue.
    pub request: bool,
}

/// A job: what a delivery asks, forge-neutral (the job, not the forge,
/// decides what runs: see `crate::jobs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "Stored")]
pub enum Work {
    /// The matrix for a commit: its check (a check run, a commit status),
    /// and for a pull or merge request its sticky note.
    Matrix {
        place: Place,
        sha: String,
        request: Option<u64>,
        /// GitLab: the branch the commit status is for (it attaches it to
        /// the first branch holding the commit otherwise).
        branch: Option<String>,
        /// A request's target branch: what its envgate.toml is compared
        /// with (see [`crate::jobs::mode`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// A release tag: its bundles published, its release notes.
    ReleaseTag { place: Place, tag: String },
    /// A chat-ops command in a comment (GitHub) or note (GitLab).
    Command {
        place: Place,
        on: On,
        /// The comment's or note's id.
        comment: u64,
        /// GitLab's user id (GitHub checks permissions by login).
        user_id: u64,
        login: String,
        body: String,
    },
}

/// A queued job as stored, in this version's shape or an earlier one's
/// (with a variant per forge), so jobs queued before an upgrade still run.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Stored {
    Matrix {
        #[serde(default)]
        place: Option<Place>,
        #[serde(default)]
        repo: Option<RepoRef>,
        sha: String,
        #[serde(default, alias = "pull")]
        request: Option<u64>,
        #[serde(default)]
        branch: Option<String>,
        #[serde(default)]
        base: Option<String>,
    },
    ReleaseTag {
        #[serde(default)]
        place: Option<Place>,
        #[serde(default)]
        repo: Option<RepoRef>,
        tag: String,
    },
    Command {
        #[serde(default)]
        place: Option<Place>,
        #[serde(default)]
        on: Option<On>,
        #[serde(default)]
        repo: Option<RepoRef>,
        #[serde(default)]
        issue: Option<u64>,
        #[serde(default)]
        pull: Option<bool>,
        comment: u64,
        #[serde(default)]
        user_id: u64,
        login: String,
        body: String,
    },
    GitLabMatrix {
        project: GlProject,
        sha: String,
        merge_request: Option<u64>,
        #[serde(default)]
        branch: Option<String>,
    },
    GitLabTag {
        project: GlProject,
        tag: String,
    },
    GitLabNote {
        project: GlProject,
        merge_request: bool,
        iid: u64,
        note: u64,
        user_id: u64,
        username: String,
        body: String,
    },
}

impl TryFrom<Stored> for Work {
    type Error = String;

    fn try_from(s: Stored) -> Result<Work, String> {
        let place = |place: Option<Place>, repo: Option<RepoRef>| {
            place
                .or(repo.map(Place::GitHub))
                .ok_or_else(|| "a queued job without its repository".to_owned())
        };
        Ok(match s {
            Stored::Matrix {
                place: p,
                repo,
                sha,
                request,
                branch,
                base,
            } => Work::Matrix {
                place: place(p, repo)?,
                sha,
                request,
                branch,
                base,
            },
            Stored::ReleaseTag {
                place: p,
                repo,
                tag,
            } => Work::ReleaseTag {
                place: place(p, repo)?,
                tag,
            },
            Stored::Command {
                place: p,
                on,
                repo,
                issue,
                pull,
                comment,
                user_id,
                login,
                body,
            } => Work::Command {
                place: place(p, repo)?,
                on: match (on, issue) {
                    (Some(on), _) => on,
                    (None, Some(number)) => On {
                        number,
                        request: pull.unwrap_or(false),
                    },
                    (None, None) => return Err("a queued command without its thread".into()),
                },
                comment,
                user_id,
                login,
                body,
            },
            Stored::GitLabMatrix {
                project,
                sha,
                merge_request,
                branch,
            } => Work::Matrix {
                place: Place::GitLab(project),
                sha,
                request: merge_request,
                branch,
                base: None,
            },
            Stored::GitLabTag { project, tag } => Work::ReleaseTag {
                place: Place::GitLab(project),
                tag,
            },
            Stored::GitLabNote {
                project,
                merge_request,
                iid,
                note,
                user_id,
                username,
                body,
            } => Work::Command {
                place: Place::GitLab(project),
                on: On {
                    number: iid,
                    request: merge_request,
                },
                comment: note,
                user_id,
                login: username,
                body,
            },
        })
    }
}

impl Work {
    /// The repository or project the job is about.
    pub fn place(&self) -> &Place {
        match self {
            Work::Matrix { place, .. }
            | Work::ReleaseTag { place, .. }
            | Work::Command { place, .. } => place,
        }
    }

    /// Whether the job is for GitLab (else GitHub).
    pub fn on_gitlab(&self) -> bool {
        matches!(self.place(), Place::GitLab(_))
    }
}

impl Place {
    /// How the control store tells repositories apart:
    /// `github:owner/name`, `gitlab:group/project`.
    pub fn repository(&self) -> String {
        match self {
            Place::GitHub(r) => github_repository(&r.owner, &r.name),
            Place::GitLab(p) => format!("gitlab:{}", p.path),
        }
    }
}

/// A GitHub repository as the control store names it.
pub fn github_repository(owner: &str, name: &str) -> String {
    format!("github:{owner}/{name}")
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
    base: BaseRef,
}

#[derive(Deserialize)]
struct BaseRef {
    #[serde(rename = "ref")]
    reference: String,
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
        // A review can approve a change that loosens an environment: the
        // request is read again (its envgate/mode check).
        "pull_request" | "pull_request_review" => {
            let e: PullRequestEvent = serde_json::from_slice(body).map_err(bad)?;
            let wanted = match event {
                "pull_request" => {
                    matches!(e.action.as_str(), "opened" | "synchronize" | "reopened")
                }
                _ => matches!(e.action.as_str(), "submitted" | "dismissed"),
            };
            if !wanted {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::Matrix {
                place: Place::GitHub(repo),
                sha: e.pull_request.head.sha,
                request: Some(e.pull_request.number),
                branch: None,
                base: Some(e.pull_request.base.reference),
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
                    place: Place::GitHub(repo),
                    tag: tag.to_owned(),
                })
            } else if e.reference == format!("refs/heads/{}", repo.default_branch) {
                Some(Work::Matrix {
                    place: Place::GitHub(repo),
                    sha: e.after,
                    request: None,
                    branch: None,
                    base: None,
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
                place: Place::GitHub(repo),
                tag: e.reference,
            })
        }
        "release" => {
            let e: ReleaseEvent = serde_json::from_slice(body).map_err(bad)?;
            if e.action != "published" {
                return Ok(None);
            }
            repo(e.repository, e.installation).map(|repo| Work::ReleaseTag {
                place: Place::GitHub(repo),
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
                place: Place::GitHub(repo),
                on: On {
                    number: e.issue.number,
                    request: e.issue.pull_request.is_some(),
                },
                comment: e.comment.id,
                user_id: 0,
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
    target_branch: Option<String>,
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
                // An approval can approve a change that loosens an
                // environment: read again (its envgate/mode status).
                Some("open" | "reopen" | "approved" | "unapproved" | "approval" | "unapproval") => {
                    true
                }
                // An update with new commits; title edits and the like
                // have no oldrev.
                Some("update") => a.oldrev.is_some(),
                _ => false,
            };
            // A fork's branch is not the target project's: no ref then.
            let same_project = a.source_project_id == a.target_project_id;
            match (wanted, a.last_commit) {
                (true, Some(c)) => Some(Work::Matrix {
                    place: Place::GitLab(e.project.into()),
                    sha: c.id,
                    request: Some(a.iid),
                    branch: a.source_branch.filter(|_| same_project),
                    base: a.target_branch,
                }),
                _ => None,
            }
        }
        "Push Hook" => {
            let e: GlPushEvent = serde_json::from_slice(body).map_err(bad)?;
            let project: GlProject = e.project.into();
            (e.reference == format!("refs/heads/{}", project.default_branch) && !zero(&e.after))
                .then_some(Work::Matrix {
                    branch: Some(project.default_branch.clone()),
                    place: Place::GitLab(project),
                    sha: e.after,
                    request: None,
                    base: None,
                })
        }
        "Tag Push Hook" => {
            let e: GlPushEvent = serde_json::from_slice(body).map_err(bad)?;
            match e.reference.strip_prefix("refs/tags/") {
                Some(tag) if !zero(&e.after) => Some(Work::ReleaseTag {
                    place: Place::GitLab(e.project.into()),
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
            Some(Work::Command {
                place: Place::GitLab(e.project.into()),
                on: On {
                    number: iid,
                    request: merge_request,
                },
                comment: a.id,
                user_id: e.user.id,
                login: e.user.username,
                body: a.note,
            })
        }
        _ => {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(bad)?;
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoRef {
        RepoRef {
            installation: 7,
            owner: "acme".into(),
            name: "shop".into(),
            default_branch: "main".into(),
        }
    }

    fn project() -> GlProject {
        GlProject {
            id: 42,
            path: "acme/shop".into(),
            default_branch: "main".into(),
        }
    }

    /// Jobs queued by an earlier version, one variant per forge, still run.
    #[test]
    fn jobs_queued_before_the_forge_neutral_shape_still_load() {
        let r = r#"{"installation":7,"owner":"acme","name":"shop","default_branch":"main"}"#;
        let p = r#"{"id":42,"path":"acme/shop","default_branch":"main"}"#;
        let cases = [
            (
                format!(r#"{{"kind":"matrix","repo":{r},"sha":"abc","pull":2}}"#),
                Work::Matrix {
                    place: Place::GitHub(repo()),
                    sha: "abc".into(),
                    request: Some(2),
                    branch: None,
                    base: None,
                },
            ),
            (
                format!(r#"{{"kind":"release_tag","repo":{r},"tag":"v1"}}"#),
                Work::ReleaseTag {
                    place: Place::GitHub(repo()),
                    tag: "v1".into(),
                },
            ),
            (
                format!(
                    r#"{{"kind":"command","repo":{r},"issue":2,"pull":true,"comment":9,"login":"alice","body":"/status"}}"#
                ),
                Work::Command {
                    place: Place::GitHub(repo()),
                    on: On {
                        number: 2,
                        request: true,
                    },
                    comment: 9,
                    user_id: 0,
                    login: "alice".into(),
                    body: "/status".into(),
                },
            ),
            (
                format!(
                    r#"{{"kind":"git_lab_matrix","project":{p},"sha":"abc","merge_request":3,"branch":"feature"}}"#
                ),
                Work::Matrix {
                    place: Place::GitLab(project()),
                    sha: "abc".into(),
                    request: Some(3),
                    branch: Some("feature".into()),
                    base: None,
                },
            ),
            (
                format!(r#"{{"kind":"git_lab_tag","project":{p},"tag":"v1"}}"#),
                Work::ReleaseTag {
                    place: Place::GitLab(project()),
                    tag: "v1".into(),
                },
            ),
            (
                format!(
                    r#"{{"kind":"git_lab_note","project":{p},"merge_request":false,"iid":5,"note":11,"user_id":8,"username":"bob","body":"/help"}}"#
                ),
                Work::Command {
                    place: Place::GitLab(project()),
                    on: On {
                        number: 5,
                        request: false,
                    },
                    comment: 11,
                    user_id: 8,
                    login: "bob".into(),
                    body: "/help".into(),
                },
            ),
        ];
        for (stored, want) in cases {
            let got: Work =
                serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            assert_eq!(got, want, "{stored}");
            // And today's shape round-trips.
            let again: Work = serde_json::from_str(&serde_json::to_string(&want).unwrap()).unwrap();
            assert_eq!(again, want);
        }
        assert!(serde_json::from_str::<Work>(r#"{"kind":"matrix","sha":"abc"}"#).is_err());
    }
}
