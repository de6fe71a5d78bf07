//! `envgate ci` as a process, with the variables GitHub Actions and GitLab
//! CI set, real event payloads, real PostgreSQL environments, and fake
//! GitHub and GitLab APIs that record every request.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/fake_gitlab.rs"]
mod fake_gitlab;
mod support;

use fake_github::FakeGitHub;
use fake_gitlab::FakeGitLab;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{PgDb, Project, Run, git};

const REPO: &str = "Codertocat/Hello-World";
const TOKEN: &str = "ghs_workflow_token_for_tests";
const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";
const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY);\n";

/// Runs `envgate ci` in `dir` with exactly these CI variables: any the
/// test itself runs under are removed first.
fn ci(dir: &Path, args: &[&str], vars: &[(&str, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_envgate"));
    cmd.current_dir(dir)
        .arg("ci")
        .args(args)
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if ["GITHUB_", "GITLAB_", "CI_", "RUNNER_", "ENVGATE_"]
            .iter()
            .any(|p| k.starts_with(p))
            || k == "CI"
        {
            cmd.env_remove(k);
        }
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run envgate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// dev (managed) and staging (export_only), each its own PostgreSQL
/// database; the first migration applied to dev.
fn project(dev: &PgDb, staging: &PgDb) -> Project {
    let config = format!(
        "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
         [environments.staging]\nurl = \"{}\"\nmode = \"export_only\"\n",
        dev.url(),
        staging.url()
    );
    let p = Project::new(&config, &[("1_orders.sql", ORDERS)]);
    let applied = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    p
}

fn pr_event(dir: &Path, head_repo: &str, head: &str) -> PathBuf {
    let mut ev: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/github/pull_request.opened.json"),
        )
        .unwrap(),
    )
    .unwrap();
    ev["pull_request"]["head"]["sha"] = head.into();
    ev["pull_request"]["head"]["repo"]["full_name"] = head_repo.into();
    let path = dir.join("event.json");
    std::fs::write(&path, ev.to_string()).unwrap();
    path
}

struct Actions {
    dir: tempfile::TempDir,
}

impl Actions {
    fn new() -> Actions {
        Actions {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The variables of a GitHub Actions job.
    fn vars(
        &self,
        api: &str,
        event: &str,
        git_ref: &str,
        event_path: &Path,
    ) -> Vec<(&str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_EVENT_NAME", event.into()),
            ("GITHUB_EVENT_PATH", event_path.display().to_string()),
            ("GITHUB_REF", git_ref.into()),
            ("GITHUB_REPOSITORY", REPO.into()),
            ("GITHUB_API_URL", api.into()),
            (
                "GITHUB_SHA",
                "6dcb09b5b57875f334f61aebed695e2e4193db5e".into(),
            ),
            ("GITHUB_ACTOR", "Codertocat".into()),
            (
                "GITHUB_STEP_SUMMARY",
                self.path("summary.md").display().to_string(),
            ),
            ("GITHUB_OUTPUT", self.path("output").display().to_string()),
            ("RUNNER_TEMP", self.dir.path().display().to_string()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ]
    }
}

fn writes(gh: &FakeGitHub, from: usize) -> Vec<String> {
    gh.requests()[from..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.line())
        .collect()
}

#[test]
fn github_pull_request_summary_outputs_and_one_sticky_comment() {
    let (dev, staging) = (PgDb::create("ci_gh_dev"), PgDb::create("ci_gh_stg"));
    let p = project(&dev, &staging);
    p.write("migrations/2_items.sql", ITEMS);
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[("migrations/2_items.sql", "added")]);
    let actions = Actions::new();
    let event = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let vars = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event);

    // First run: the comment is created.
    let run = ci(p.path(), &[], &vars);
    assert_eq!(
        run.code, 0,
        "only pending: nothing fails by default\n{run:?}"
    );
    // The request loosens nothing: its envgate/mode status passes.
    assert_eq!(
        writes(&gh, 0),
        vec![
            format!("POST /repos/{REPO}/statuses/ec26c3e57ca3a959ca5aad62de7213c562f8c821"),
            format!("POST /repos/{REPO}/issues/2/comments")
        ]
    );
    assert_eq!(
        gh.with(|m| m.statuses[0].clone()),
        (
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821".to_owned(),
            "envgate/mode".to_owned(),
            "success".to_owned(),
            "no environment loosened".to_owned()
        )
    );
    let first = gh.writes()[1].json()["body"].as_str().unwrap().to_owned();
    assert!(first.starts_with("<!-- envgate:pr -->"), "{first}");
    assert!(
        first.contains("This pull request adds 1 migration"),
        "{first}"
    );
    assert!(
        first.contains("| `2_items` | ⏳ pending | ⏳ pending |"),
        "{first}"
    );
    assert!(
        first.contains("Bundle for <b>staging</b> (export_only)"),
        "{first}"
    );
    assert!(first.contains("CREATE TABLE items"), "{first}");
    // The preview is what staging would receive at this commit: the
    // earlier migration it still lacks too, not only the request's own.
    assert!(
        first.contains(
            "What staging would receive at this commit: 2 migrations, of which this request adds 1 (`2_items`) and 1 comes from earlier changes not yet there (`1_orders`)."
        ),
        "{first}"
    );
    assert!(first.contains("CREATE TABLE orders"), "{first}");
    assert!(
        first.contains("<code>staging-empty-2.sql</code>"),
        "the file export would write: {first}"
    );
    assert!(!first.contains(&dev.url()), "credentials stay out: {first}");
    // The job summary has the same body; the outputs are set.
    assert!(
        actions
            .read("summary.md")
            .contains("This pull request adds 1 migration")
    );
    let outputs = actions.read("output");
    let matrix_json = actions.path("envgate/matrix.json");
    for line in [
        "drifted=0".to_owned(),
        "pending=3".to_owned(),
        "failed=0".to_owned(),
        format!("matrix-json={}", matrix_json.display()),
        "bundles=\n".to_owned(),
    ] {
        assert!(outputs.contains(&line), "{line:?} not in:\n{outputs}");
    }
    let matrix: Value =
        serde_json::from_str(&std::fs::read_to_string(&matrix_json).unwrap()).unwrap();
    assert_eq!(matrix["environments"][0]["name"], "dev");

    // A new push: the same comment is edited, never a second one.
    p.write("migrations/3_more.sql", "CREATE TABLE more (id int);\n");
    gh.pull_files(
        REPO,
        2,
        &[
            ("migrations/2_items.sql", "added"),
            ("migrations/3_more.sql", "added"),
        ],
    );
    let before = gh.requests().len();
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        writes(&gh, before),
        vec!["PATCH /repos/Codertocat/Hello-World/issues/comments/2001".to_owned()]
    );
    let edited = gh.with(|m| m.comments.clone());
    assert_eq!(edited.len(), 1);
    assert!(
        edited[0]
            .body
            .contains("This pull request adds 2 migrations")
    );
    assert_eq!(edited[0].login, "github-actions[bot]");

    // Nothing changed: nothing is written.
    let before = gh.requests().len();
    assert_eq!(ci(p.path(), &[], &vars).code, 0);
    assert_eq!(writes(&gh, before), Vec::<String>::new());

    // --fail-on pending fails the job, and says why.
    let run = ci(p.path(), &["--fail-on", "pending"], &vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("::error title=envgate::envgate: 5 pending (fail-on: pending)"),
        "{run:?}"
    );
    let bad = ci(p.path(), &["--fail-on", "drift,typo"], &vars);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("fail-on: 'typo'"), "{bad:?}");

    // Drift in dev fails the job by default.
    p.write("migrations/1_orders.sql", "CREATE TABLE orders (id int);\n");
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(actions.read("output").contains("drifted=1"));
}

#[test]
fn github_fork_pull_request_gets_a_summary_and_a_warning_not_a_failure() {
    let (dev, staging) = (PgDb::create("ci_fork_dev"), PgDb::create("ci_fork_stg"));
    let p = project(&dev, &staging);
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[]);
    let actions = Actions::new();
    let event = pr_event(
        actions.dir.path(),
        "eve/Hello-World",
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let run = ci(
        p.path(),
        &[],
        &actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(writes(&gh, 0), Vec::<String>::new(), "no comment on a fork");
    assert!(
        run.stdout.contains(
            "::warning title=envgate::No pull request comment: the pull request comes from a fork"
        ),
        "{run:?}"
    );
    let summary = actions.read("summary.md");
    assert!(summary.contains("<!-- envgate:pr -->"), "{summary}");
    assert!(summary.contains("> No pull request comment: the pull request comes from a fork"));

    // A fork's run has no secrets: an environment it cannot reach does not
    // fail it (it does on the repository's own pull requests).
    let cut_off = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.staging]\nurl = \"postgres://envgate@127.0.0.1:1/none?connect_timeout=2\"\nmode = \"export_only\"\n",
            dev.url()
        ),
        &[("1_orders.sql", ORDERS)],
    );
    let fork_vars = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event);
    let run = ci(cut_off.path(), &["--comment", "false"], &fork_vars);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("unreachable environments do not fail this job"),
        "{run:?}"
    );
    let own = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let run = ci(
        cut_off.path(),
        &["--comment", "false"],
        &actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &own),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("1 unreachable"), "{run:?}");

    // A token that may not write (GitHub answers 403): a warning, not a
    // failure.
    let event = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    gh.script(
        &format!("POST /repos/{REPO}/issues/2/comments"),
        403,
        &[],
        serde_json::json!({"message": "Resource not accessible by integration"}),
    );
    let run = ci(
        p.path(),
        &[],
        &actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("Resource not accessible by integration")
            && run.stdout.contains("pull-requests: write"),
        "{run:?}"
    );
}

/// A git repository with the migrations committed and tagged v1.0.0.
fn tagged(dev: &PgDb, staging: &PgDb) -> Project {
    let p = project(dev, staging);
    p.write("migrations/2_items.sql", ITEMS);
    p.write(".gitignore", ".envgate/\nenvgate-ci/\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "v1"]);
    git(p.path(), &["tag", "v1.0.0"]);
    p
}

#[test]
fn github_release_tag_attaches_bundles_once() {
    let (dev, staging) = (PgDb::create("ci_rel_dev"), PgDb::create("ci_rel_stg"));
    let p = tagged(&dev, &staging);
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 1, &[]);
    let actions = Actions::new();
    let event = actions.path("push.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/push.tag.json"),
        &event,
    )
    .unwrap();
    let vars = actions.vars(&gh.url, "push", "refs/tags/v1.0.0", &event);
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    let stem = "staging-v1.0.0";
    let names: Vec<String> = gh.writes().iter().map(|r| r.line()).collect();
    assert_eq!(
        names,
        vec![
            format!("POST /repos/{REPO}/releases"),
            format!("POST /uploads/repos/{REPO}/releases/3001/assets"),
            format!("POST /uploads/repos/{REPO}/releases/3001/assets"),
        ],
        "{run:?}"
    );
    let assets = gh.with(|m| m.releases[REPO][0].assets.clone());
    let asset_names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(asset_names.len(), 2, "{asset_names:?}");
    // The manifest first, the SQL last: a bundle counts as published only
    // once its SQL is there.
    assert_eq!(
        asset_names,
        [format!("{stem}.manifest.json"), format!("{stem}.sql")],
    );
    let sql = String::from_utf8(assets[1].bytes.clone()).unwrap();
    assert!(
        sql.contains("CREATE TABLE items") && sql.contains("CREATE TABLE orders"),
        "{sql}"
    );
    let written = actions.path("envgate").join(&assets[1].name);
    assert_eq!(std::fs::read_to_string(&written).unwrap(), sql);
    assert!(
        actions
            .read("output")
            .contains(&format!("bundles={}\n", written.display())),
        "{}",
        actions.read("output")
    );

    // The tag built again: the assets, unchanged, are kept.
    let before = gh.requests().len();
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(writes(&gh, before), Vec::<String>::new());
    // A release whose SQL asset no longer holds the bundle gets the bundle
    // again, SQL and manifest, each replacing its asset, never doubled.
    gh.with(|m| {
        m.releases.get_mut(REPO).unwrap()[0]
            .assets
            .iter_mut()
            .find(|a| a.name.ends_with(".sql"))
            .unwrap()
            .bytes = b"stale".to_vec()
    });
    let before = gh.requests().len();
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        writes(&gh, before),
        vec![
            format!("DELETE /repos/{REPO}/releases/assets/4001"),
            format!("POST /uploads/repos/{REPO}/releases/3001/assets"),
            format!("DELETE /repos/{REPO}/releases/assets/4002"),
            format!("POST /uploads/repos/{REPO}/releases/3001/assets"),
        ]
    );
    assert_eq!(gh.with(|m| m.releases[REPO].len()), 1);
    assert_eq!(gh.with(|m| m.releases[REPO][0].assets.len()), 2);
}

fn gitlab_vars(
    gl: &FakeGitLab,
    out: &Path,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("GITLAB_CI", "true".to_owned()),
        ("CI_API_V4_URL", gl.api.clone()),
        ("CI_PROJECT_ID", fake_gitlab::PROJECT.to_owned()),
        (
            "CI_COMMIT_SHA",
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821".to_owned(),
        ),
        ("CI_JOB_TOKEN", fake_gitlab::JOB_TOKEN.to_owned()),
        ("GITLAB_USER_LOGIN", "alice".to_owned()),
    ];
    v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
    let _ = out;
    v
}

#[test]
fn gitlab_merge_request_note_is_kept_once_and_needs_an_access_token() {
    let (dev, staging) = (PgDb::create("ci_gl_dev"), PgDb::create("ci_gl_stg"));
    let p = project(&dev, &staging);
    p.write("migrations/2_items.sql", ITEMS);
    let gl = FakeGitLab::start();
    gl.with(|m| {
        m.diffs
            .insert(7, vec![("migrations/2_items.sql".into(), true)]);
    });
    let out = p.path().join("envgate-ci");

    // The job token alone may not write notes: a warning, no failure.
    let run = ci(
        p.path(),
        &[],
        &gitlab_vars(&gl, &out, &[("CI_MERGE_REQUEST_IID", "7")]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("No merge request note: CI_JOB_TOKEN may not write notes"),
        "{run:?}"
    );
    assert!(
        gl.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        gl.lines_from(0)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("<!-- envgate:pr -->"));

    // Someone quoted envgate's note, marker and all: theirs is never edited.
    gl.with(|m| {
        m.notes.push(fake_gitlab::Note {
            id: 400,
            iid: 7,
            body: "> <!-- envgate:pr -->\n> what is this?".into(),
            author: 5,
        })
    });
    // With a project access token: one note, then edited in place.
    let token = [
        ("CI_MERGE_REQUEST_IID", "7"),
        ("ENVGATE_GITLAB_TOKEN", fake_gitlab::ACCESS_TOKEN),
    ];
    let before = gl.requests().len();
    let run = ci(p.path(), &[], &gitlab_vars(&gl, &out, &token));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        gl.lines_from(before),
        vec![
            "GET /api/v4/projects/42/merge_requests/7/diffs",
            "GET /api/v4/projects/42/merge_requests/7",
            "GET /api/v4/user",
            "GET /api/v4/projects/42/merge_requests/7/notes",
            "POST /api/v4/projects/42/merge_requests/7/notes",
        ]
    );
    let note = gl.with(|m| m.notes[1].body.clone());
    assert!(
        note.contains("This pull request adds 1 migration"),
        "{note}"
    );
    assert!(
        note.contains("| `2_items` | ⏳ pending | ⏳ pending |"),
        "{note}"
    );

    p.write("migrations/3_more.sql", "CREATE TABLE more (id int);\n");
    gl.with(|m| {
        m.diffs
            .get_mut(&7)
            .unwrap()
            .push(("migrations/3_more.sql".into(), true))
    });
    let before = gl.requests().len();
    assert_eq!(ci(p.path(), &[], &gitlab_vars(&gl, &out, &token)).code, 0);
    assert_eq!(
        gl.lines_from(before).last().unwrap(),
        "PUT /api/v4/projects/42/merge_requests/7/notes/501"
    );
    assert_eq!(
        gl.with(|m| m.notes.len()),
        2,
        "the quote and envgate's note"
    );
    assert!(gl.with(|m| m.notes[0].body.contains("what is this?")));
    // A run for a commit the merge request has moved on from leaves the note
    // to the newer commit's run.
    gl.with(|m| m.mr_heads.insert(7, "a-newer-commit".into()));
    let before = gl.requests().len();
    let run = ci(p.path(), &[], &gitlab_vars(&gl, &out, &token));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("merge request !7 is at a-newer-commit now"),
        "{run:?}"
    );
    assert!(gl.requests()[before..].iter().all(|r| r.method == "GET"));
    gl.with(|m| m.mr_heads.clear());
    // The dotenv report for later jobs.
    let env = std::fs::read_to_string(out.join("envgate.env")).unwrap();
    assert!(
        env.contains("ENVGATE_PENDING=5\n") && env.contains("ENVGATE_DRIFTED=0\n"),
        "{env}"
    );
}

#[test]
fn gitlab_tag_pipeline_uploads_packages_and_links_them_once() {
    let (dev, staging) = (PgDb::create("ci_gltag_dev"), PgDb::create("ci_gltag_stg"));
    let p = tagged(&dev, &staging);
    let gl = FakeGitLab::start();
    let out = p.path().join("envgate-ci");
    let vars = gitlab_vars(&gl, &out, &[("CI_COMMIT_TAG", "v1.0.0")]);
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = gl.lines_from(0);
    let package = "/api/v4/projects/42/packages/generic/envgate/v1.0.0";
    assert_eq!(
        lines,
        [
            "GET /api/v4/projects/42/packages".to_owned(),
            format!("PUT {package}/staging-v1.0.0.manifest.json"),
            format!("PUT {package}/staging-v1.0.0.sql"),
            "GET /api/v4/projects/42/releases/v1.0.0".to_owned(),
            "POST /api/v4/projects/42/releases".to_owned(),
            "GET /api/v4/projects/42/releases/v1.0.0/assets/links".to_owned(),
            "POST /api/v4/projects/42/releases/v1.0.0/assets/links".to_owned(),
            "POST /api/v4/projects/42/releases/v1.0.0/assets/links".to_owned(),
        ],
    );
    let list = &gl.requests()[0].path;
    assert!(
        list.contains("package_type=generic")
            && list.contains("package_name=envgate")
            && list.contains("package_version=v1.0.0"),
        "{list}"
    );
    let links = gl.with(|m| m.releases["v1.0.0"].clone());
    assert_eq!(links.len(), 2);
    assert_eq!(links[0].name, "staging-v1.0.0.sql");
    assert!(links[0].url.starts_with(&format!(
        "{}/projects/42/packages/generic/envgate/v1.0.0/",
        gl.api
    )));
    let pkg = gl.with(|m| {
        m.packages
            .iter()
            .find(|(k, _)| k.ends_with(".sql"))
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .unwrap()
    });
    assert!(pkg.contains("CREATE TABLE items"), "{pkg}");
    assert!(
        run.stderr
            .contains("envgate ci: v1.0.0: staging-v1.0.0.sql uploaded"),
        "{run:?}"
    );

    // Again: the files there hold this bundle, so nothing is written.
    let before = gl.requests().len();
    let again = ci(p.path(), &[], &vars);
    assert_eq!(again.code, 0, "{again:?}");
    let lines = gl.lines_from(before);
    assert!(lines.iter().all(|l| l.starts_with("GET ")), "{lines:#?}");
    assert!(
        again
            .stderr
            .contains("envgate ci: v1.0.0: staging-v1.0.0.sql kept"),
        "{again:?}"
    );
    assert_eq!(gl.with(|m| m.releases["v1.0.0"].len()), 2);
    assert_eq!(gl.with(|m| m.package_files("envgate", "v1.0.0").len()), 2);
}

/// Another publisher's upload between envgate's listing and its own:
/// GitLab refuses the duplicate, envgate lists again and converges instead
/// of failing or trying blindly.
#[test]
fn gitlab_tag_pipeline_converges_after_a_duplicate_refusal() {
    let (dev, staging) = (PgDb::create("ci_gldup_dev"), PgDb::create("ci_gldup_stg"));
    let p = tagged(&dev, &staging);
    let gl = FakeGitLab::start();
    let out = p.path().join("envgate-ci");
    let vars = gitlab_vars(&gl, &out, &[("CI_COMMIT_TAG", "v1.0.0")]);
    assert_eq!(ci(p.path(), &[], &vars).code, 0);
    gl.with(|m| {
        m.forbid_duplicates = true;
        m.stale_listings = 1;
    });
    let before = gl.requests().len();
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    // Every upload was refused (both names are there) and answered by
    // listing the package again; the manifest, made again a second later,
    // may differ and then replaces its file.
    let lines = gl.lines_from(before);
    let listings = lines
        .iter()
        .filter(|l| *l == "GET /api/v4/projects/42/packages")
        .count();
    let puts = lines.iter().filter(|l| l.starts_with("PUT ")).count();
    assert!(listings == 3 && (2..=3).contains(&puts), "{lines:#?}");
    let package: Vec<(String, Vec<u8>)> = gl.with(|m| {
        m.package_files("envgate", "v1.0.0")
            .into_iter()
            .map(|f| (f.name, f.bytes))
            .collect()
    });
    support::assert_bundles_match(&package);
    let links = gl.with(|m| m.releases["v1.0.0"].clone());
    assert_eq!(links.len(), 2, "{links:?}");
}

/// A store in the job's workspace goes with the job: the summary, the
/// comment and the log say so and its records are marked ephemeral. The
/// team's store (ENVGATE_CONTROL_STORE, the Action's control-store input)
/// keeps them, and the comment carries the trail's head to verify later.
#[test]
fn the_audit_trail_outlives_the_job_only_in_the_teams_store() {
    let (dev, staging, control) = (
        PgDb::create("ci_trail_dev"),
        PgDb::create("ci_trail_stg"),
        PgDb::create("ci_trail_ctl"),
    );
    let p = project(&dev, &staging);
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[]);
    let actions = Actions::new();
    let pr = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let push = actions.path("push.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/push.json"),
        &push,
    )
    .unwrap();
    let workspace = ("GITHUB_WORKSPACE", p.path().display().to_string());
    let mut on_push = actions.vars(&gh.url, "push", "refs/heads/main", &push);
    on_push.push(workspace.clone());
    let mut on_pr = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &pr);
    on_pr.push(workspace);

    // A push to main: the modes in force are recorded, in a store that
    // goes with the job.
    let before: i64 = rusqlite::Connection::open(p.path().join(".envgate/state.db"))
        .unwrap()
        .query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    let run = ci(p.path(), &[], &on_push);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("::warning title=envgate::the control store")
            && run.stdout.contains("is inside this job's workspace"),
        "{run:?}"
    );
    assert!(
        actions
            .read("summary.md")
            .contains("inside the CI workspace")
    );
    let local = rusqlite::Connection::open(p.path().join(".envgate/state.db")).unwrap();
    let (written, ephemeral): (i64, i64) = local
        .query_row(
            "SELECT count(*), coalesce(sum(ephemeral), 0) FROM audit_log WHERE seq > ?1",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        written > 0 && written == ephemeral,
        "{written} records written by the job, {ephemeral} marked ephemeral"
    );
    // A pull request's comment says so too.
    let run = ci(p.path(), &[], &on_pr);
    assert_eq!(run.code, 0, "{run:?}");
    let body = gh.with(|m| m.comments[0].body.clone());
    assert!(
        body.contains("This job's audit trail is in <code>")
            && body.contains("inside the CI workspace"),
        "{body}"
    );

    // The team's store: records kept there, by the verified actor, and
    // the comment says the head.
    on_push.push(("ENVGATE_CONTROL_STORE", control.url()));
    on_pr.push(("ENVGATE_CONTROL_STORE", control.url()));
    let run = ci(p.path(), &[], &on_push);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains("inside this job's workspace"),
        "{run:?}"
    );
    let rows = control.query_strings(
        "SELECT seq::text, hash, actor, actor_source, ephemeral::text FROM audit_log ORDER BY seq DESC",
    );
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r[3]
            .as_deref()
            .is_some_and(|s| s.starts_with("github-actions: ")
                || s.starts_with("unverified: git history")
                || s == "unverified: nobody recorded")),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r[4].as_deref() == Some("0")),
        "{rows:?}"
    );
    let head = format!(
        "{}:{}",
        rows[0][0].as_deref().unwrap(),
        rows[0][1].as_deref().unwrap()
    );
    let run = ci(p.path(), &[], &on_pr);
    assert_eq!(run.code, 0, "{run:?}");
    let body = gh.with(|m| m.comments[0].body.clone());
    assert!(
        body.contains(&format!("audit trail head <code>{head}</code>"))
            && body.contains(&format!("envgate audit verify --expect {head}")),
        "{body}"
    );
    assert!(!body.contains(&control.url()), "{body}");
}

/// In CI too: a pull request that makes staging managed gets a failing
/// envgate/mode status and a section in its comment until one of
/// staging's admins (as the base branch names them) approves it.
#[test]
fn a_pull_request_loosening_an_environment_waits_for_an_admin_in_ci() {
    let (dev, staging) = (PgDb::create("ci_mode_dev"), PgDb::create("ci_mode_stg"));
    let p = project(&dev, &staging);
    let head_config =
        std::fs::read_to_string(p.path().join("envgate.toml")).unwrap() + "admins = [\"alice\"]\n";
    let base_config = head_config.clone();
    p.write(
        "envgate.toml",
        &head_config.replace("mode = \"export_only\"", "mode = \"managed\""),
    );
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[("envgate.toml", "modified")]);
    let base = gh.commit(REPO, &[("envgate.toml", base_config.as_str())], "base");
    let head = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let actions = Actions::new();
    let event = pr_event(actions.dir.path(), REPO, head);
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(&event).unwrap()).unwrap();
    ev["pull_request"]["base"]["sha"] = Value::from(base.clone());
    std::fs::write(&event, ev.to_string()).unwrap();
    let vars = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event);

    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    let status = |gh: &FakeGitHub| gh.with(|m| m.statuses.last().cloned().unwrap());
    assert_eq!(
        (status(&gh).2.as_str(), status(&gh).3.as_str()),
        ("failure", "loosens staging: needs an admin's approval")
    );
    let body = gh.with(|m| m.comments[0].body.clone());
    assert!(
        body.contains("| staging | mode export_only → managed | alice | ⏳ not yet |"),
        "{body}"
    );

    // alice approves; the workflow runs on the review too.
    gh.review(REPO, 2, "alice", "APPROVED", head);
    let mut on_review = vars.clone();
    on_review.retain(|(k, _)| *k != "GITHUB_EVENT_NAME");
    on_review.push(("GITHUB_EVENT_NAME", "pull_request_review".to_owned()));
    let run = ci(p.path(), &[], &on_review);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        (status(&gh).2.as_str(), status(&gh).3.as_str()),
        ("success", "loosens staging: approved")
    );
    let body = gh.with(|m| m.comments[0].body.clone());
    assert!(body.contains("| ✅ alice |"), "{body}");
    // Nothing changed since: the status is not set again.
    let count = gh.with(|m| m.statuses.len());
    assert_eq!(ci(p.path(), &[], &on_review).code, 0);
    assert_eq!(gh.with(|m| m.statuses.len()), count);
}

#[test]
fn outside_ci_it_shows_the_status_and_says_so() {
    let (dev, staging) = (PgDb::create("ci_none_dev"), PgDb::create("ci_none_stg"));
    let p = project(&dev, &staging);
    let run = ci(p.path(), &[], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("not running in GitHub Actions or GitLab CI"),
        "{run:?}"
    );
    assert!(run.stdout.contains("1_orders"), "{run:?}");
    assert!(p.path().join("envgate-ci/matrix.json").exists());
    let page = std::fs::read_to_string(p.path().join("envgate-ci/matrix.html")).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("<th scope=\"row\">1_orders</th>"),
        "{page}"
    );
}

/// templates/gitlab-ci.yml's job, run as GitLab's runner would: its
/// variables set, `before_script` and `script` in a shell, in a merge
/// request pipeline against the fake GitLab.
#[test]
fn gitlab_template_job_runs_envgate_ci() {
    use yaml_rust2::{Yaml, YamlLoader};
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/gitlab-ci.yml"),
    )
    .unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let job = &doc["envgate"];
    assert_eq!(job["extends"].as_str(), Some(".envgate"));
    let rules: Vec<&str> = job["rules"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| r["if"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "$CI_PIPELINE_SOURCE == \"merge_request_event\"",
            "$CI_COMMIT_TAG"
        ]
    );
    let base = &doc[".envgate"];
    assert_eq!(
        base["artifacts"]["reports"]["dotenv"].as_str(),
        Some("envgate-ci/envgate.env"),
        "the report is where envgate ci writes it"
    );
    let lines = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    };
    let shell = [lines(&base["before_script"]), lines(&base["script"])]
        .concat()
        .join("\n");

    let (dev, staging) = (PgDb::create("ci_tpl_dev"), PgDb::create("ci_tpl_stg"));
    let p = project(&dev, &staging);
    p.write("migrations/2_items.sql", ITEMS);
    let gl = FakeGitLab::start();
    gl.with(|m| {
        m.diffs
            .insert(3, vec![("migrations/2_items.sql".into(), true)]);
    });
    let project_dir = p.path().display().to_string();
    let mut vars: Vec<(String, String)> = doc["variables"]
        .as_hash()
        .unwrap()
        .iter()
        .chain(base["variables"].as_hash().unwrap())
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().replace("$CI_PROJECT_DIR", &project_dir),
            )
        })
        .collect();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_envgate")).parent().unwrap();
    vars.push((
        "PATH".into(),
        format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
    ));
    vars.push(("CI_PROJECT_DIR".into(), project_dir.clone()));
    vars.push(("CI_PIPELINE_SOURCE".into(), "merge_request_event".into()));
    vars.push(("CI_MERGE_REQUEST_IID".into(), "3".into()));
    vars.push((
        "ENVGATE_GITLAB_TOKEN".into(),
        fake_gitlab::ACCESS_TOKEN.into(),
    ));
    let out = p.path().join("envgate-ci");
    for (k, v) in gitlab_vars(&gl, &out, &[]) {
        vars.push((k.to_owned(), v));
    }
    let mut cmd = Command::new("bash");
    cmd.current_dir(p.path()).args(["-euc", &shell]);
    for (k, _) in std::env::vars() {
        if ["GITHUB_", "GITLAB_", "CI_", "RUNNER_", "ENVGATE_"]
            .iter()
            .any(|pre| k.starts_with(pre))
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars);
    let run = cmd.output().unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{log}");
    assert_eq!(
        gl.lines_from(0),
        vec![
            "GET /api/v4/projects/42/merge_requests/3/diffs",
            "GET /api/v4/projects/42/merge_requests/3",
            "GET /api/v4/user",
            "GET /api/v4/projects/42/merge_requests/3/notes",
            "POST /api/v4/projects/42/merge_requests/3/notes",
        ],
        "{log}"
    );
    assert!(out.join("envgate.env").exists() && out.join("matrix.json").exists());
}

/// The action's install step: which binary for which runner, cached under a
/// key that changes with the source (or the release asked for).
#[test]
fn action_install_plan_keys_on_runner_and_source() {
    let plan = |os: &str, arch: &str, version: &str| -> String {
        let out = tempfile::NamedTempFile::new().unwrap();
        let run = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action-install.sh"))
            .arg("plan")
            .env("GITHUB_OUTPUT", out.path())
            .env("ACTION_PATH", env!("CARGO_MANIFEST_DIR"))
            .env("ACTION_REPOSITORY", "acme/envgate")
            .env("VERSION", version)
            .env("OS", os)
            .env("ARCH", arch)
            .env("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read_to_string(out.path()).unwrap()
    };
    let linux = plan("Linux", "X64", "");
    assert!(
        linux.starts_with("version=\ntarget=x86_64-unknown-linux-gnu\n"),
        "{linux}"
    );
    assert!(
        linux.contains("root=/opt/hostedtoolcache/envgate/src-"),
        "{linux}"
    );
    assert!(
        linux.contains("key=envgate-x86_64-unknown-linux-gnu-src-"),
        "{linux}"
    );
    assert_eq!(
        plan("Linux", "X64", ""),
        linux,
        "the same source, the same key"
    );
    let mac = plan("macOS", "ARM64", "v0.2.0");
    assert_eq!(
        mac,
        "version=v0.2.0\n\
         target=aarch64-apple-darwin\n\
         root=/opt/hostedtoolcache/envgate/release-v0.2.0-aarch64-apple-darwin\n\
         key=envgate-aarch64-apple-darwin-release-v0.2.0\n"
    );
}

/// On a tag, the release API refusing the bundles must not keep the step's
/// outputs from naming the bundles already written: the upload step that
/// the README shows (`if: outputs.bundles != ''`) still finds them.
#[test]
fn outputs_are_written_although_the_release_call_fails() {
    let (dev, staging) = (
        PgDb::create("ci_relfail_dev"),
        PgDb::create("ci_relfail_stg"),
    );
    let p = tagged(&dev, &staging);
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.script(
        &format!("POST /repos/{REPO}/releases"),
        403,
        &[],
        serde_json::json!({"message": "Resource not accessible by integration"}),
    );
    let actions = Actions::new();
    let event = actions.path("push.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/push.tag.json"),
        &event,
    )
    .unwrap();
    let vars = actions.vars(&gh.url, "push", "refs/tags/v1.0.0", &event);
    let run = ci(p.path(), &[], &vars);
    assert_ne!(run.code, 0, "the refusal still fails the step: {run:?}");
    let written = actions.path("envgate").join("staging-v1.0.0.sql");
    assert!(written.exists(), "{run:?}");
    let output = actions.read("output");
    assert!(
        output.contains(&format!("bundles={}\n", written.display())),
        "{output}\n{run:?}"
    );
    assert!(output.contains("drifted=0\n"), "{output}");
    assert!(
        run.stdout.contains(
            "::warning title=envgate::the bundles were written but not attached to release v1.0.0"
        ),
        "{run:?}"
    );
    assert!(!run.stderr.contains("is on release v1.0.0"), "{run:?}");
}

/// The Action passes on every output `envgate ci` sets, and its `config`
/// input defaults to what the docs say.
#[test]
fn the_action_exposes_every_output_envgate_ci_sets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let exposed: Vec<&str> = action
        .lines()
        .filter_map(|l| l.split("steps.run.outputs.").nth(1))
        .map(|rest| rest.trim_end_matches(" }}"))
        .collect();
    // The outputs of a real run (outside a pull request: every key is set).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envgate.toml"),
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(dir.path().join("migrations/1_a.sql"), "SELECT 1;\n").unwrap();
    let actions = Actions::new();
    let event = actions.path("push.json");
    std::fs::write(&event, "{}").unwrap();
    let vars = actions.vars(
        "http://127.0.0.1:9",
        "workflow_dispatch",
        "refs/heads/main",
        &event,
    );
    let vars: Vec<(&str, String)> = vars
        .into_iter()
        .filter(|(k, _)| *k != "GITHUB_TOKEN")
        .collect();
    let run = ci(dir.path(), &["--fail-on", "none"], &vars);
    assert_eq!(run.code, 0, "{run:?}");
    let output = actions.read("output");
    let mut set: Vec<&str> = output
        .lines()
        .filter_map(|l| {
            l.split(['=', '<'])
                .next()
                .filter(|k| !k.is_empty() && !l.starts_with("ghadelimiter"))
        })
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    set.sort();
    set.dedup();
    let mut exposed_sorted = exposed.clone();
    exposed_sorted.sort();
    assert_eq!(
        exposed_sorted, set,
        "action.yml outputs vs envgate ci's\n{output}"
    );
    let config_default = action
        .split("\n  config:\n")
        .nth(1)
        .and_then(|rest| {
            rest.lines()
                .find_map(|l| l.trim().strip_prefix("default: "))
        })
        .unwrap();
    assert_eq!(config_default, "envgate.toml");
    let docs = std::fs::read_to_string(root.join("docs/ci.md")).unwrap();
    assert!(
        docs.contains("| `config` | `envgate.toml` |"),
        "docs/ci.md shows the config input's default"
    );
}

/// At a release tag the install step downloads that release's binary and
/// checks it against the published checksum; a mismatch installs nothing;
/// no binary there builds from source and says so.
#[test]
fn action_install_downloads_and_checks_the_release_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = tempfile::tempdir().unwrap();
    let release = server.path().join("acme/envgate/releases/download/v1.2.3");
    std::fs::create_dir_all(&release).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let bin = staging.path().join("envgate");
    std::fs::write(&bin, "#!/bin/sh\necho 'envgate 1.2.3 (release)'\n").unwrap();
    Command::new("chmod").arg("755").arg(&bin).status().unwrap();
    let archive = release.join("envgate-v1.2.3-x86_64-unknown-linux-gnu.tar.gz");
    assert!(
        Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(staging.path())
            .arg("envgate")
            .status()
            .unwrap()
            .success()
    );
    let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    std::fs::write(archive.with_extension("gz.sha256"), &sum).unwrap();
    // A fake cargo, to see whether the script falls back to building.
    let tools = tempfile::tempdir().unwrap();
    std::fs::write(
        tools.path().join("cargo"),
        "#!/bin/sh\nroot=$4\nmkdir -p \"$root/bin\"\nprintf '#!/bin/sh\\necho built\\n' >\"$root/bin/envgate\"\nchmod 755 \"$root/bin/envgate\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(tools.path().join("cargo"))
        .status()
        .unwrap();
    // Where a runner checks the action out: .../_actions/<owner>/<repo>/<ref>.
    let runner = tempfile::tempdir().unwrap();
    for r in ["v1.2.3", "main"] {
        let at = runner.path().join("_actions/acme/envgate");
        std::fs::create_dir_all(&at).unwrap();
        std::os::unix::fs::symlink(root, at.join(r)).unwrap();
    }
    let install = |at: &str, version: &str| {
        let action_path = runner.path().join("_actions/acme/envgate").join(at);
        let action_path = action_path.to_str().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let out = tempfile::NamedTempFile::new().unwrap();
        let step = |what: &str, extra: &[(&str, String)]| {
            let mut cmd = Command::new("bash");
            cmd.arg(root.join("scripts/action-install.sh"))
                .arg(what)
                .env("GITHUB_OUTPUT", out.path())
                .env("ACTION_PATH", action_path)
                .env("ACTION_REPOSITORY", "acme/envgate")
                .env("VERSION", version)
                .env("OS", "Linux")
                .env("ARCH", "X64")
                .env("RUNNER_TOOL_CACHE", dest.path())
                .env(
                    "GITHUB_SERVER_URL",
                    format!("file://{}", server.path().display()),
                )
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        tools.path().display(),
                        std::env::var("PATH").unwrap()
                    ),
                );
            for (k, v) in extra {
                cmd.env(k, v);
            }
            cmd.output().unwrap()
        };
        let plan = step("plan", &[]);
        assert!(plan.status.success());
        let planned = std::fs::read_to_string(out.path()).unwrap();
        let get = |k: &str| {
            planned
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_owned()
        };
        let (v, target, dir) = (get("version"), get("target"), get("root"));
        let run = step(
            "install",
            &[
                ("VERSION", v.clone()),
                ("TARGET", target),
                ("ROOT", dir.clone()),
            ],
        );
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        let ran = Command::new(Path::new(&dir).join("bin/envgate"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        (v, run.status.success(), log, ran)
    };
    // Used at a release tag, no version input: the tag's binary.
    let (v, ok, log, ran) = install("v1.2.3", "");
    assert_eq!(v, "v1.2.3");
    assert!(ok, "{log}");
    assert!(log.contains("installed the release binary"), "{log}");
    assert_eq!(ran, "envgate 1.2.3 (release)\n");
    // At a branch: built from source, and said.
    let (v, ok, log, ran) = install("main", "");
    assert_eq!(v, "");
    assert!(ok, "{log}");
    assert!(
        log.contains("::notice title=envgate::the action is used at a branch"),
        "{log}"
    );
    assert_eq!(ran, "built\n");
    // A release without a binary: built from source, and said.
    let (_, ok, log, ran) = install("main", "v9.9.9");
    assert!(ok, "{log}");
    assert!(log.contains("no release binary at"), "{log}");
    assert_eq!(ran, "built\n");
    // A binary that does not match its checksum: nothing installed.
    std::fs::write(
        archive.with_extension("gz.sha256"),
        format!("{}  x\n", "0".repeat(64)),
    )
    .unwrap();
    let (_, ok, log, ran) = install("v1.2.3", "");
    assert!(!ok, "{log}");
    assert!(
        log.contains("does not match its published checksum"),
        "{log}"
    );
    assert_eq!(ran, "");
}

/// `envgate ci` with a MariaDB environment: the summary and the outputs
/// come from the MySQL ledger, and its drift fails the job.
#[test]
fn envgate_ci_reads_a_mariadb_environment() {
    use support::mysql::MyDb;
    let db = MyDb::create("ci_my");
    db.execute(&envgate::core::ledger_table::create_table_sql(
        envgate::core::sql::Dialect::Mysql,
        None,
    ));
    let old = envgate::core::checksum::ContentHash::of(b"CREATE TABLE orders (id int);\n").tagged();
    db.execute(&format!(
        "INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('1', 'orders', '{old}', 'x', 1)"
    ));
    let p = Project::new(
        &format!(
            "[environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n",
            db.url()
        ),
        &[("1_orders.sql", ORDERS), ("2_items.sql", ITEMS)],
    );
    let actions = Actions::new();
    let event = actions.path("dispatch.json");
    std::fs::write(&event, "{}").unwrap();
    let vars: Vec<(&str, String)> = actions
        .vars(
            "http://127.0.0.1:9",
            "workflow_dispatch",
            "refs/heads/main",
            &event,
        )
        .into_iter()
        .filter(|(k, _)| *k != "GITHUB_TOKEN")
        .collect();
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 1, "drift fails the job by default: {run:?}");
    let output = actions.read("output");
    for line in ["drifted=1\n", "pending=1\n", "unreachable=0\n"] {
        assert!(output.contains(line), "{line} in\n{output}");
    }
    assert!(
        actions.read("summary.md").contains("drifted"),
        "{}",
        actions.read("summary.md")
    );
}

/// `envgate ci --schema` on a pull request: the live schemas in the log,
/// the comment and schema.json, and a schema that differs fails the job
/// (`schema` is in the default --fail-on).
#[test]
fn github_pull_request_with_the_live_schema() {
    let (dev, staging) = (PgDb::create("ci_sd_dev"), PgDb::create("ci_sd_stg"));
    let p = project(&dev, &staging);
    dev.execute("CREATE INDEX orders_tmp ON orders (id DESC)");
    let (host, port) = support::server_addr();
    let shadow = support::unique_name("ci_sd_shadow");
    let config = std::fs::read_to_string(p.path().join("envgate.toml")).unwrap();
    p.write(
        "envgate.toml",
        &format!(
            "[schema_drift]\nshadow_url = \"postgres://{}@{host}:{port}/{shadow}\"\n{config}",
            support::admin_user()
        ),
    );
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[]);
    let actions = Actions::new();
    let event = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let vars = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event);
    let run = ci(p.path(), &["--schema"], &vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("::error title=envgate::envgate: 1 with a differing live schema"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  - dev has index `orders_tmp` that no migration creates\n"),
        "{run:?}"
    );
    let body = gh
        .writes()
        .iter()
        .find(|w| w.path.ends_with("/issues/2/comments"))
        .map(|w| w.json()["body"].as_str().unwrap().to_owned())
        .expect("the comment");
    assert!(body.contains("#### Live schema"), "{body}");
    assert!(
        body.contains("| staging | matches what its 0 applied migrations produce |"),
        "{body}"
    );
    assert!(
        body.contains("- dev has index `orders_tmp` that no migration creates"),
        "{body}"
    );
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(actions.path("envgate/schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc["environments"][0]["name"], "dev");
    assert_eq!(doc["environments"][0]["state"], "differs");
    assert_eq!(doc["environments"][1]["state"], "matches");
}

/// `envgate ci` lints the migrations a pull request adds: annotations at
/// file and line through workflow commands, the findings in the comment,
/// and an error fails the job (`lint` is in the default --fail-on).
#[test]
fn github_pull_request_lint_of_its_migrations() {
    let (dev, staging) = (PgDb::create("ci_lint_dev"), PgDb::create("ci_lint_stg"));
    let p = project(&dev, &staging);
    p.write(
        "migrations/2_items.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY);\nCREATE INDEX CONCURRENTLY orders_id ON orders (id);\n",
    );
    let gh = FakeGitHub::start();
    gh.accept_token(TOKEN);
    gh.pull_files(REPO, 2, &[("migrations/2_items.sql", "added")]);
    let actions = Actions::new();
    let event = pr_event(
        actions.dir.path(),
        REPO,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    let vars = actions.vars(&gh.url, "pull_request", "refs/pull/2/merge", &event);
    let run = ci(p.path(), &[], &vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "::error file=migrations/2_items.sql,line=2,col=1,title=mixed-transaction::CREATE INDEX CONCURRENTLY cannot run in a transaction"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("::warning file=migrations/2_items.sql,line=1,col=1,title=missing-down::"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("::error title=envgate::envgate: 1 lint error"),
        "{run:?}"
    );
    let body = gh
        .writes()
        .iter()
        .find(|w| w.path.ends_with("/issues/2/comments"))
        .map(|w| w.json()["body"].as_str().unwrap().to_owned())
        .expect("the comment");
    assert!(
        body.contains("<details><summary>Lint: 4 findings (1 error, 3 warnings) in 1 migration this request adds</summary>"),
        "{body}"
    );
    // Without lint in --fail-on, the findings are shown and pass.
    let run = ci(p.path(), &["--fail-on", "drift"], &vars);
    assert_eq!(run.code, 0, "{run:?}");
}
