//! Who acted, and how envgate knows it.
//!
//! A name typed on the command line (`--actor`) or taken from the operating
//! system is anyone's claim: recorded, and marked unverified. A CI job
//! (GitHub Actions, GitLab CI) says who triggered it in variables the runner
//! sets, with the run's address to check it against; a webhook delivery is
//! signed by the forge. Those are verified, and the audit trail says by
//! what.

use serde::Serialize;

/// How an actor's name is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Source {
    /// The user who triggered a GitHub Actions run (its address).
    GitHubActions { run: String },
    /// The user who started a GitLab CI job (its address).
    GitLabCi { job: String },
    /// A signed GitHub webhook delivery (the bot).
    GitHub,
    /// A GitLab webhook delivery with the project's secret token (the bot).
    GitLab,
    /// A merged pull or merge request, as the forge reports it.
    Review { request: String },
    /// Logged in to the web console through the forge (`github`, `gitlab`).
    Console { forge: String },
    /// `--actor` on the command line.
    Flag,
    /// The operating system's user.
    OsUser,
    /// The author of the commit that made a change, from git's history
    /// (which anyone can write).
    GitHistory { commit: String },
    /// Nothing says who: a change seen by a run that did not make it.
    Unknown,
}

impl Source {
    /// Whether something other than the person's own word says who acted.
    pub fn verified(&self) -> bool {
        matches!(
            self,
            Source::GitHubActions { .. }
                | Source::GitLabCi { .. }
                | Source::GitHub
                | Source::GitLab
                | Source::Console { .. }
                | Source::Review { .. }
        )
    }

    /// As the audit trail keeps it (`actor_source`).
    pub fn text(&self) -> String {
        match self {
            Source::GitHubActions { run } => format!("github-actions: {run}"),
            Source::GitLabCi { job } => format!("gitlab-ci: {job}"),
            Source::GitHub => "github: signed webhook".to_owned(),
            Source::GitLab => "gitlab: webhook with the project's token".to_owned(),
            Source::Review { request } => format!("forge review: {request}"),
            Source::Console { forge } => format!("{forge}: console login"),
            Source::Flag => "unverified: --actor".to_owned(),
            Source::OsUser => "unverified: OS user".to_owned(),
            Source::GitHistory { commit } => {
                format!("unverified: git history, author of commit {commit}")
            }
            Source::Unknown => "unverified: nobody recorded".to_owned(),
        }
    }
}

/// Someone acting, and how envgate knows who.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
    pub source: Source,
}

impl Actor {
    pub fn new(name: impl Into<String>, source: Source) -> Actor {
        Actor {
            name: name.into(),
            source,
        }
    }

    /// `alice`, or `alice (unverified)`.
    pub fn shown(&self) -> String {
        if self.source.verified() {
            self.name.clone()
        } else {
            format!("{} (unverified)", self.name)
        }
    }
}

/// A commit that reached the default branch through a reviewed request,
/// as the forge reports it: what a mode change there is credited to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Merge {
    pub commit: String,
    /// `acme/shop#7`, `group/project!7`.
    pub request: String,
    pub author: String,
    pub merged_by: Option<String>,
    pub approvers: Vec<String>,
}

impl Merge {
    /// Who made the change: who merged it (else its author), verified by
    /// the forge.
    pub fn actor(&self) -> Actor {
        Actor::new(
            self.merged_by
                .clone()
                .unwrap_or_else(|| self.author.clone()),
            Source::Review {
                request: self.request.clone(),
            },
        )
    }

    /// For the audit trail.
    pub fn describe(&self) -> String {
        format!(
            "merged from {} at commit {} by {}; author {}; approved by {}",
            self.request,
            self.commit,
            self.merged_by.as_deref().unwrap_or("(unknown)"),
            self.author,
            if self.approvers.is_empty() {
                "nobody".to_owned()
            } else {
                self.approvers.join(", ")
            }
        )
    }
}

/// Who is acting on the command line: `--actor` (unverified; inside CI it
/// is verified only when it names the CI's own actor), else the user who
/// triggered the CI run, else the OS user. `var` reads the process
/// environment.
pub fn from_environment(
    flag: Option<&str>,
    var: &dyn Fn(&str) -> Option<String>,
    os_user: Option<String>,
) -> Actor {
    let ci = ci_actor(var);
    match (flag.map(str::trim).filter(|f| !f.is_empty()), ci) {
        (Some(f), Some(ci)) if ci.name.eq_ignore_ascii_case(f) => ci,
        (Some(f), _) => Actor::new(f, Source::Flag),
        (None, Some(ci)) => ci,
        (None, None) => Actor::new(
            os_user.unwrap_or_else(|| "unknown".to_owned()),
            Source::OsUser,
        ),
    }
}

/// The actor a CI runner names, with the run's address.
fn ci_actor(var: &dyn Fn(&str) -> Option<String>) -> Option<Actor> {
    let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if set("GITHUB_ACTIONS").as_deref() == Some("true") {
        // Who re-ran a job, else who started the run.
        let name = set("GITHUB_TRIGGERING_ACTOR").or_else(|| set("GITHUB_ACTOR"))?;
        let run = match (
            set("GITHUB_SERVER_URL"),
            set("GITHUB_REPOSITORY"),
            set("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repo), Some(id)) => {
                format!("{}/{repo}/actions/runs/{id}", server.trim_end_matches('/'))
            }
            _ => "a GitHub Actions run".to_owned(),
        };
        return Some(Actor::new(name, Source::GitHubActions { run }));
    }
    if set("GITLAB_CI").as_deref() == Some("true") {
        let name = set("GITLAB_USER_LOGIN")?;
        let job = set("CI_JOB_URL").unwrap_or_else(|| "a GitLab CI job".to_owned());
        return Some(Actor::new(name, Source::GitLabCi { job }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const ACTIONS: &[(&str, &str)] = &[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_TRIGGERING_ACTOR", "hubot"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "42"),
    ];
    const GITLAB: &[(&str, &str)] = &[
        ("GITLAB_CI", "true"),
        ("GITLAB_USER_LOGIN", "dave"),
        ("CI_JOB_URL", "https://gitlab.example/acme/shop/-/jobs/7"),
    ];

    #[test]
    fn who_acts_and_how_it_is_known() {
        /// (case, --actor, variables, name, source)
        type Case = (
            &'static str,
            Option<&'static str>,
            Vars,
            &'static str,
            &'static str,
        );
        type Vars = &'static [(&'static str, &'static str)];
        let cases: [Case; 7] = [
            (
                "a typed name",
                Some("alice"),
                &[],
                "alice",
                "unverified: --actor",
            ),
            ("the OS user", None, &[], "root", "unverified: OS user"),
            (
                "GitHub Actions: who re-ran the job",
                None,
                ACTIONS,
                "hubot",
                "github-actions: https://github.com/acme/shop/actions/runs/42",
            ),
            (
                "--actor naming the CI's actor",
                Some("HUBOT"),
                ACTIONS,
                "hubot",
                "github-actions: https://github.com/acme/shop/actions/runs/42",
            ),
            (
                "--actor naming someone else inside CI",
                Some("alice"),
                ACTIONS,
                "alice",
                "unverified: --actor",
            ),
            (
                "GitLab CI",
                None,
                GITLAB,
                "dave",
                "gitlab-ci: https://gitlab.example/acme/shop/-/jobs/7",
            ),
            (
                "a GITHUB_ACTOR outside Actions is anyone's",
                None,
                &[("GITHUB_ACTOR", "octocat")],
                "root",
                "unverified: OS user",
            ),
        ];
        for (case, flag, vars, name, source) in cases {
            let a = from_environment(flag, &env(vars), Some("root".into()));
            assert_eq!(
                (a.name.as_str(), a.source.text()),
                (name, source.to_owned()),
                "{case}"
            );
            assert_eq!(
                a.source.verified(),
                !source.starts_with("unverified"),
                "{case}"
            );
        }
        assert_eq!(Actor::new("bob", Source::Flag).shown(), "bob (unverified)");
        assert_eq!(Actor::new("bob", Source::GitHub).shown(), "bob");
    }
}
