//! `envgate ci`'s decisions, from values: which CI this is (from its
//! standard variables), what the event asks for, which findings fail the
//! job, and the step outputs in GitHub's file format.

use super::matrix::Tally;
use serde::Deserialize;

/// The CI envgate runs in.
#[derive(Debug, PartialEq, Eq)]
pub enum Ci {
    GitHub(GitHubRun),
    GitLab(GitLabRun),
    /// Neither: `envgate ci` behaves like `status`.
    None,
}

/// A GitHub Actions run, from `GITHUB_*`.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct GitHubRun {
    pub event_name: String,
    pub event_path: Option<String>,
    /// `refs/heads/main`, `refs/tags/v1.2.0`, `refs/pull/7/merge`.
    pub git_ref: String,
    /// `owner/name`.
    pub repository: String,
    pub api_url: String,
    pub step_summary: Option<String>,
    pub output: Option<String>,
    /// The job's own directories (`GITHUB_WORKSPACE`, `RUNNER_TEMP`): gone
    /// when it ends.
    pub job_dirs: Vec<String>,
}

/// A GitLab CI job, from `CI_*`.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct GitLabRun {
    pub api_url: String,
    pub project_id: String,
    pub merge_request_iid: Option<u64>,
    pub tag: Option<String>,
    /// The merge request's head (not a merged-results pipeline's merge
    /// commit), else the pipeline's commit.
    pub sha: String,
    /// The merge request comes from a fork.
    pub fork: bool,
    /// The merge request's target branch.
    pub target_branch: Option<String>,
    /// The job's own directories (`CI_PROJECT_DIR`, `CI_BUILDS_DIR`): gone
    /// when it ends.
    pub job_dirs: Vec<String>,
}

/// Reads the CI from its variables (`get` reads the process environment, or a map in
/// tests).
pub fn detect(get: impl Fn(&str) -> Option<String>) -> Result<Ci, String> {
    let set = |k: &str| get(k).filter(|v| !v.is_empty());
    if set("GITHUB_ACTIONS").as_deref() == Some("true") {
        let need = |k: &str| set(k).ok_or_else(|| format!("GitHub Actions without {k}"));
        return Ok(Ci::GitHub(GitHubRun {
            event_name: need("GITHUB_EVENT_NAME")?,
            event_path: set("GITHUB_EVENT_PATH"),
            git_ref: set("GITHUB_REF").unwrap_or_default(),
            repository: need("GITHUB_REPOSITORY")?,
            api_url: set("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            step_summary: set("GITHUB_STEP_SUMMARY"),
            output: set("GITHUB_OUTPUT"),
            job_dirs: ["GITHUB_WORKSPACE", "RUNNER_TEMP"]
                .iter()
                .filter_map(|k| set(k))
                .collect(),
        }));
    }
    if set("GITLAB_CI").as_deref() == Some("true") {
        let need = |k: &str| set(k).ok_or_else(|| format!("GitLab CI without {k}"));
        let iid = match set("CI_MERGE_REQUEST_IID") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("CI_MERGE_REQUEST_IID: '{v}' is not a number"))?,
            ),
            None => None,
        };
        return Ok(Ci::GitLab(GitLabRun {
            api_url: need("CI_API_V4_URL")?,
            // In a merge request pipeline for a fork, CI_PROJECT_ID is the
            // fork; the merge request lives in the target project.
            project_id: set("CI_MERGE_REQUEST_PROJECT_ID")
                .map_or_else(|| need("CI_PROJECT_ID"), Ok)?,
            merge_request_iid: iid,
            tag: set("CI_COMMIT_TAG"),
            sha: set("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")
                .or_else(|| set("CI_COMMIT_SHA"))
                .unwrap_or_default(),
            fork: matches!(
                (set("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"), set("CI_MERGE_REQUEST_PROJECT_ID")),
                (Some(a), Some(b)) if a != b
            ),
            target_branch: set("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
            job_dirs: ["CI_PROJECT_DIR", "CI_BUILDS_DIR"]
                .iter()
                .filter_map(|k| set(k))
                .collect(),
        }));
    }
    Ok(Ci::None)
}

impl Ci {
    /// The job's own directories; none outside CI.
    pub fn job_dirs(&self) -> &[String] {
        match self {
            Ci::GitHub(r) => &r.job_dirs,
            Ci::GitLab(r) => &r.job_dirs,
            Ci::None => &[],
        }
    }
}

/// Whether a file at `path` (absolute, as written) lives in one of the
/// job's directories, and so goes with the job.
pub fn in_job(path: &std::path::Path, job_dirs: &[String]) -> bool {
    use std::path::Component;
    // `a/../b` read as written, without the file system.
    let mut clean = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    job_dirs
        .iter()
        .any(|d| !d.trim().is_empty() && clean.starts_with(d))
}

/// The parts of a GitHub event payload `envgate ci` reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub pull_request: Option<PullRequest>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub head: Side,
    pub base: Side,
}

#[derive(Debug, Deserialize)]
pub struct Side {
    pub sha: String,
    /// Null when the head repository was deleted.
    pub repo: Option<SideRepo>,
}

#[derive(Debug, Deserialize)]
pub struct SideRepo {
    pub full_name: String,
}

impl PullRequest {
    /// From a fork: the workflow's token is read-only there (for
    /// `pull_request`; `pull_request_target` runs in the base).
    pub fn from_fork(&self) -> bool {
        match (&self.head.repo, &self.base.repo) {
            (Some(h), Some(b)) => h.full_name != b.full_name,
            _ => true,
        }
    }
}

/// What the run is about.
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A pull or merge request, by number, at a head commit.
    Review {
        number: u64,
        head: String,
        fork: bool,
        /// What envgate.toml is compared with: the base commit (GitHub),
        /// the target branch (GitLab).
        base: Option<String>,
    },
    /// A tag that matches the release pattern.
    Release { tag: String },
    /// Anything else: a branch push, a schedule, a manual run.
    Other,
}

/// The tag of a `refs/tags/…` ref.
pub fn tag_of(git_ref: &str) -> Option<&str> {
    git_ref.strip_prefix("refs/tags/").filter(|t| !t.is_empty())
}

/// One finding that can fail the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    Drift,
    Failed,
    Missing,
    Unreachable,
    Pending,
    /// A live schema that differs from what its migrations produce (with
    /// `--schema` or `[schema_drift] review`).
    Schema,
    /// An error-severity lint finding in the migrations a request adds.
    Lint,
}

impl Finding {
    const ALL: [(Finding, &'static str); 7] = [
        (Finding::Drift, "drift"),
        (Finding::Failed, "failed"),
        (Finding::Missing, "missing"),
        (Finding::Unreachable, "unreachable"),
        (Finding::Pending, "pending"),
        (Finding::Schema, "schema"),
        (Finding::Lint, "lint"),
    ];

    pub fn as_str(self) -> &'static str {
        Finding::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .expect("all")
            .1
    }
}

pub const DEFAULT_FAIL_ON: &str = "drift,failed,missing,unreachable,schema,lint";

/// Parses `fail-on`: a comma-separated list of drift, failed, missing,
/// unreachable, pending, schema, lint; `none` or empty for nothing.
pub fn parse_fail_on(text: &str) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "none" {
            continue;
        }
        let f = Finding::ALL
            .iter()
            .find(|(_, name)| *name == word || (word == "drifted" && *name == "drift"))
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                format!("fail-on: '{word}' is not one of drift, failed, missing, unreachable, pending, schema, lint, none")
            })?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// What fails a job besides the matrix's cells.
#[derive(Clone, Copy, Debug, Default)]
pub struct Beyond {
    /// Environments whose live schema differs.
    pub schemas: usize,
    /// Error-severity lint findings.
    pub lint_errors: usize,
}

/// The findings in `fail_on` that the tally (and `beyond`) has, as "2
/// drifted".
pub fn failing(fail_on: &[Finding], t: &Tally, beyond: Beyond) -> Vec<String> {
    fail_on
        .iter()
        .filter_map(|f| {
            let (n, what) = match f {
                Finding::Drift => (t.drifted, "drifted"),
                Finding::Failed => (t.failed, "failed"),
                Finding::Missing => (t.missing, "missing"),
                Finding::Unreachable => (t.unreachable, "unreachable"),
                Finding::Pending => (t.pending, "pending"),
                Finding::Schema => (beyond.schemas, "with a differing live schema"),
                Finding::Lint => (
                    beyond.lint_errors,
                    if beyond.lint_errors == 1 {
                        "lint error"
                    } else {
                        "lint errors"
                    },
                ),
            };
            (n > 0).then(|| format!("{n} {what}"))
        })
        .collect()
}

/// Step outputs in the `$GITHUB_OUTPUT` format: `name=value`, or a
/// heredoc with a delimiter the value does not contain for multi-line
/// values.
pub fn github_outputs(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = String::from("ENVGATE_EOF");
            while value.lines().any(|l| l == delimiter) {
                delimiter.push('_');
            }
            out.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            out.push_str(&format!("{name}={value}\n"));
        }
    }
    out
}

/// Escapes a workflow command's message (`::warning::…`).
pub fn command_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value (`file=…,title=…`): its data
/// escapes, and `:` and `,` too.
pub fn command_property(text: &str) -> String {
    command_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn detects_github_gitlab_and_neither() {
        let gh = detect(vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_REF", "refs/pull/7/merge"),
        ]))
        .unwrap();
        let Ci::GitHub(run) = gh else {
            panic!("{gh:?}")
        };
        assert_eq!(run.api_url, "https://api.github.com");
        assert_eq!(run.repository, "acme/shop");
        assert_eq!(
            detect(vars(&[("GITHUB_ACTIONS", "true")])).unwrap_err(),
            "GitHub Actions without GITHUB_EVENT_NAME"
        );
        let gl = detect(vars(&[
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
            ("CI_PROJECT_ID", "99"),
            ("CI_MERGE_REQUEST_PROJECT_ID", "12"),
            ("CI_MERGE_REQUEST_IID", "5"),
        ]))
        .unwrap();
        let Ci::GitLab(run) = gl else {
            panic!("{gl:?}")
        };
        assert_eq!(
            (run.project_id.as_str(), run.merge_request_iid),
            ("12", Some(5))
        );
        assert!(!run.fork);
        let Ci::GitLab(fork) = detect(vars(&[
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
            ("CI_PROJECT_ID", "99"),
            ("CI_MERGE_REQUEST_PROJECT_ID", "12"),
            ("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "99"),
            ("CI_MERGE_REQUEST_IID", "5"),
            ("CI_COMMIT_SHA", "merge-commit"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "head-commit"),
        ]))
        .unwrap() else {
            panic!()
        };
        assert!(fork.fork);
        assert_eq!(fork.sha, "head-commit");
        assert!(
            detect(vars(&[
                ("GITLAB_CI", "true"),
                ("CI_API_V4_URL", "x"),
                ("CI_PROJECT_ID", "1"),
                ("CI_MERGE_REQUEST_IID", "five")
            ]))
            .unwrap_err()
            .contains("CI_MERGE_REQUEST_IID")
        );
        assert_eq!(detect(vars(&[("CI", "true")])).unwrap(), Ci::None);
    }

    #[test]
    fn fail_on_parses_and_names_bad_words() {
        assert_eq!(
            parse_fail_on(DEFAULT_FAIL_ON).unwrap(),
            vec![
                Finding::Drift,
                Finding::Failed,
                Finding::Missing,
                Finding::Unreachable,
                Finding::Schema,
                Finding::Lint
            ]
        );
        assert_eq!(parse_fail_on("none").unwrap(), vec![]);
        assert_eq!(
            parse_fail_on(" pending , drifted ").unwrap(),
            vec![Finding::Pending, Finding::Drift]
        );
        assert!(parse_fail_on("drift,typo").unwrap_err().contains("'typo'"));
        let t = Tally {
            drifted: 2,
            pending: 3,
            ..Tally::default()
        };
        assert_eq!(
            failing(
                &parse_fail_on(DEFAULT_FAIL_ON).unwrap(),
                &t,
                Beyond::default()
            ),
            vec!["2 drifted"]
        );
        assert_eq!(
            failing(&[Finding::Pending], &t, Beyond::default()),
            vec!["3 pending"]
        );
        assert_eq!(
            failing(
                &[Finding::Schema],
                &t,
                Beyond {
                    schemas: 1,
                    lint_errors: 0
                }
            ),
            vec!["1 with a differing live schema"]
        );
    }

    #[test]
    fn outputs_use_heredocs_for_lines() {
        let out = github_outputs(&[
            ("drifted", "0".into()),
            ("bundles", "a.sql\nb.sql".into()),
            ("odd", "x\nENVGATE_EOF\ny".into()),
        ]);
        assert_eq!(
            out,
            "drifted=0\nbundles<<ENVGATE_EOF\na.sql\nb.sql\nENVGATE_EOF\nodd<<ENVGATE_EOF_\nx\nENVGATE_EOF\ny\nENVGATE_EOF_\n"
        );
    }

    #[test]
    fn forks_and_tags() {
        let ev: Event = serde_json::from_str(
            r#"{"pull_request":{"number":3,"head":{"sha":"abc","repo":{"full_name":"eve/shop"}},"base":{"sha":"def","repo":{"full_name":"acme/shop"}}}}"#,
        )
        .unwrap();
        assert!(ev.pull_request.unwrap().from_fork());
        assert_eq!(tag_of("refs/tags/v1.2.0"), Some("v1.2.0"));
        assert_eq!(tag_of("refs/heads/main"), None);
        assert_eq!(command_data("a\nb%"), "a%0Ab%25");
    }

    #[test]
    fn stores_inside_the_job_go_with_it() {
        use std::path::Path;
        let dirs = vec![
            "/home/runner/work/shop/shop".to_owned(),
            "/home/runner/work/_temp".to_owned(),
        ];
        assert!(in_job(
            Path::new("/home/runner/work/shop/shop/.envgate/state.db"),
            &dirs
        ));
        assert!(in_job(
            Path::new("/home/runner/work/_temp/envgate/state.db"),
            &dirs
        ));
        assert!(!in_job(Path::new("/var/lib/envgate/state.db"), &dirs));
        assert!(!in_job(
            Path::new("/home/runner/work/shop/shop/../../../../../var/lib/envgate/state.db"),
            &dirs
        ));
        assert!(!in_job(
            Path::new("/home/runner/work/shop/shopping/state.db"),
            &dirs
        ));
        assert!(!in_job(Path::new("/anything"), &["".to_owned()]));
    }
}
