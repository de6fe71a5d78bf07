//! `envgate serve` for GitLab: webhook deliveries (GitLab's documented
//! example payloads) against a fake GitLab API that records every request,
//! environments in real PostgreSQL databases.

#[path = "support/fake_gitlab.rs"]
mod fake_gitlab;
mod support;

use fake_gitlab::FakeGitLab;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{PgDb, http};

const SECRET: &str = "gitlab-webhook-secret";
const PATH: &str = "acme/shop";
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";
const ORDERS_INDEX: &str = "CREATE INDEX orders_placed ON orders (id);\n";
const CONFIG: &str = "[environments.dev]\nurl = \"${DEV_URL}\"\nmode = \"managed\"\n\n\
                      [environments.staging]\nurl = \"${STAGING_URL}\"\nmode = \"export_only\"\n";

/// A running `envgate serve`.
struct Bot(support::Served);

impl std::ops::Deref for Bot {
    type Target = support::Served;
    fn deref(&self) -> &support::Served {
        &self.0
    }
}

impl Bot {
    /// A bot serving GitLab only, with credentials for acme/shop.
    fn start(gl: &FakeGitLab, urls: &[(&str, String)]) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = 2\n\n\
                 [gitlab]\napi_url = \"{}\"\ntoken = \"{}\"\nwebhook_secret = \"{SECRET}\"\n\n\
                 [credentials]\ndir = \"creds\"\n",
                gl.api,
                fake_gitlab::ACCESS_TOKEN
            ),
        )
        .unwrap();
        support::write_credentials(dir.path(), PATH, urls);
        Bot(support::Served::start(dir, port, "envgate=debug,info"))
    }

    fn deliver(
        &self,
        event: &str,
        key: &str,
        token: Option<&str>,
        payload: &Value,
    ) -> (u16, String) {
        let body = payload.to_string();
        let mut headers = vec![
            ("X-Gitlab-Event", event),
            ("Idempotency-Key", key),
            ("Content-Type", "application/json"),
        ];
        if let Some(t) = token {
            headers.push(("X-Gitlab-Token", t));
        }
        http(
            self.port,
            "POST",
            "/webhooks/gitlab",
            &headers,
            body.as_bytes(),
        )
    }

    fn audit(&self) -> Vec<(String, String, String)> {
        let c = rusqlite::Connection::open(self.dir.path().join("state.db")).unwrap();
        let mut st = c
            .prepare("SELECT action, actor, outcome FROM audit_log ORDER BY seq")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn wait(&self, gl: &FakeGitLab, what: &str, check: impl Fn(&fake_gitlab::Model) -> bool) {
        let start = Instant::now();
        while !gl.with(|m| check(m)) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; requests:\n{}\nlog:\n{}",
                gl.lines_from(0).join("\n"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One of GitLab's documented payloads, moved to project 42 (acme/shop).
fn payload(name: &str) -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/gitlab")
            .join(name),
    )
    .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["project"]["id"] = 42.into();
    v["project"]["path_with_namespace"] = PATH.into();
    v["project"]["default_branch"] = "main".into();
    v
}

fn merge_request(name: &str, iid: u64, head: &str) -> Value {
    let mut v = payload(name);
    v["object_attributes"]["iid"] = iid.into();
    v["object_attributes"]["last_commit"]["id"] = head.into();
    v
}

fn note(iid: u64, note_id: u64, user_id: u64, username: &str, text: &str) -> Value {
    let mut v = payload("note_merge_request.json");
    v["merge_request"]["iid"] = iid.into();
    v["object_attributes"]["id"] = note_id.into();
    v["object_attributes"]["note"] = text.into();
    v["user"]["id"] = user_id.into();
    v["user"]["username"] = username.into();
    v
}

fn writes(gl: &FakeGitLab, from: usize) -> Vec<String> {
    gl.requests()[from..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.line())
        .collect()
}

#[test]
fn merge_requests_get_a_commit_status_and_one_note_and_forgeries_nothing() {
    let (dev, staging) = (PgDb::create("glbot_mr_dev"), PgDb::create("glbot_mr_stg"));
    let gl = FakeGitLab::start();
    let main = gl.commit(
        &[("envgate.toml", CONFIG), ("migrations/1_users.sql", USERS)],
        "main",
    );
    gl.branch("main", &main);
    let head = gl.commit(
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        "mr-1",
    );
    gl.with(|m| {
        m.diffs
            .insert(1, vec![("migrations/2_orders.sql".into(), true)]);
    });
    let bot = Bot::start(
        &gl,
        &[
            ("dev", dev.url()),
            ("staging", staging.url_with_password("pw-staging")),
        ],
    );

    // Forged and missing tokens: 401, nothing queued, nothing read.
    let open = merge_request("merge_request_open.json", 1, &head);
    assert_eq!(
        bot.deliver("Merge Request Hook", "k0", Some("guess"), &open)
            .0,
        401
    );
    assert_eq!(bot.deliver("Merge Request Hook", "k0", None, &open).0, 401);
    // The log names GitLab's header (not GitHub's), in plain text: no
    // colour codes in a log file.
    let log = bot.log();
    assert!(
        log.contains("X-Gitlab-Token does not match the webhook secret")
            && log.contains("missing X-Gitlab-Token")
            && !log.contains("X-Hub-Signature"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in the log:\n{log}");
    assert!(bot.jobs().is_empty());
    assert!(gl.requests().is_empty());

    let (status, body) = bot.deliver("Merge Request Hook", "k1", Some(SECRET), &open);
    assert_eq!((status, body.trim()), (202, "queued"));
    bot.wait(&gl, "the merge request note", |m| !m.notes.is_empty());
    assert_eq!(
        writes(&gl, 0),
        vec![
            format!("POST /api/v4/projects/42/statuses/{head}"),
            format!("POST /api/v4/projects/42/statuses/{head}"),
            format!("POST /api/v4/projects/42/statuses/{head}"),
            "POST /api/v4/projects/42/merge_requests/1/notes".to_owned(),
        ]
    );
    let statuses = gl.with(|m| m.statuses.clone());
    assert_eq!(
        statuses
            .iter()
            .map(|s| (s.name.as_str(), s.state.as_str()))
            .collect::<Vec<_>>(),
        [
            ("envgate/mode", "success"),
            ("envgate", "running"),
            ("envgate", "success")
        ]
    );
    assert_eq!(statuses[0].description, "no environment loosened");
    assert_eq!(statuses[2].description, "4 pending");
    // For the merge request's source branch.
    assert_eq!(statuses[2].git_ref.as_deref(), Some("ms-viewport"));
    let first = gl.with(|m| m.notes[0].body.clone());
    assert!(first.starts_with("<!-- envgate:pr -->"), "{first}");
    assert!(
        first.contains("| `2_orders` | ⏳ pending | ⏳ pending |"),
        "{first}"
    );
    assert!(
        first.contains("Bundle for <b>staging</b> (export_only)"),
        "{first}"
    );
    assert!(
        !first.contains("pw-staging"),
        "credentials stay out: {first}"
    );

    // GitLab redelivers: acknowledged, not processed again.
    let before = gl.requests().len();
    let (status, body) = bot.deliver("Merge Request Hook", "k1", Some(SECRET), &open);
    assert_eq!(
        (status, body.trim()),
        (202, "duplicate delivery: already processed")
    );

    // New commits on the merge request: the note is edited in place.
    let head2 = gl.commit(
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
            ("migrations/3_trash.sql", "CREATE TABLE trash (id int);\n"),
        ],
        "mr-2",
    );
    gl.with(|m| {
        m.diffs
            .get_mut(&1)
            .unwrap()
            .push(("migrations/3_trash.sql".into(), true));
    });
    let update = merge_request("merge_request_update.json", 1, &head2);
    assert_eq!(
        bot.deliver("Merge Request Hook", "k2", Some(SECRET), &update)
            .0,
        202
    );
    bot.wait(&gl, "the edited note", |m| {
        m.notes[0].body.contains("3_trash")
    });
    let w = writes(&gl, before);
    assert_eq!(
        w.last().unwrap(),
        &format!(
            "PUT /api/v4/projects/42/merge_requests/1/notes/{}",
            gl.with(|m| m.notes[0].id)
        )
    );
    assert!(
        !w.iter()
            .any(|l| l.starts_with("POST") && l.ends_with("/notes")),
        "{w:?}"
    );
    assert_eq!(gl.with(|m| m.notes.len()), 1);
    // The job is done once GitLab has the note and the queue hears of it.
    support::wait_until(Duration::from_secs(10), "the job to finish", || {
        bot.jobs().iter().all(|(_, state)| state == "done")
    });
    let jobs = bot.jobs();
    assert_eq!(
        jobs,
        [
            ("gitlab:k1".to_owned(), "done".to_owned()),
            ("gitlab:k2".to_owned(), "done".to_owned())
        ]
    );

    // Title edits (an update without new commits) and other events are
    // acknowledged and ignored.
    let mut edit = merge_request("merge_request_update.json", 1, &head2);
    edit["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("oldrev");
    assert_eq!(
        bot.deliver("Merge Request Hook", "k3", Some(SECRET), &edit)
            .1
            .trim(),
        "ignored"
    );
    assert_eq!(
        bot.deliver(
            "Pipeline Hook",
            "k4",
            Some(SECRET),
            &serde_json::json!({"object_kind": "pipeline"})
        )
        .1
        .trim(),
        "ignored"
    );
    assert_eq!(
        bot.deliver("Push Hook", "k5", Some(SECRET), &serde_json::json!("["))
            .0,
        400
    );
}

#[test]
fn notes_promote_for_developers_only_and_tags_get_their_bundles() {
    let (dev, staging) = (
        PgDb::create("glbot_note_dev"),
        PgDb::create("glbot_note_stg"),
    );
    let gl = FakeGitLab::start();
    let v1 = gl.commit(
        &[("envgate.toml", CONFIG), ("migrations/1_users.sql", USERS)],
        "v1",
    );
    gl.branch("main", &v1);
    gl.tag("v1.0.0", &v1);
    gl.member(7, 20); // reporter
    gl.member(8, 30); // developer
    let bot = Bot::start(&gl, &[("dev", dev.url()), ("staging", staging.url())]);

    // A Reporter asks: refused, with the reason, and audited.
    let c = note(1, 301, 7, "rita", "/promote dev v1.0.0");
    assert_eq!(bot.deliver("Note Hook", "n1", Some(SECRET), &c).0, 202);
    bot.wait(&gl, "the refusal", |m| !m.notes.is_empty());
    let refusal = gl.with(|m| m.notes[0].body.clone());
    assert!(
        refusal.starts_with(
            "@rita `/promote dev v1.0.0` refused: rita has access level 20 on acme/shop"
        ),
        "{refusal}"
    );
    assert_eq!(
        gl.with(|m| m.awards.clone()),
        [("merge_requests/1".to_owned(), 301, "eyes".to_owned())]
    );
    assert!(dev.query_strings("SELECT to_regclass('users')::text")[0][0].is_none());

    // A Developer asks: applied to dev, as them.
    let c = note(1, 302, 8, "dave", "/promote dev v1.0.0");
    assert_eq!(bot.deliver("Note Hook", "n2", Some(SECRET), &c).0, 202);
    bot.wait(&gl, "the answer", |m| m.notes.len() == 2);
    let answer = gl.with(|m| m.notes[1].body.clone());
    assert!(
        answer.contains("release v1.0.0: applied 1 migration to 'dev' as dave"),
        "{answer}\n{}",
        bot.log()
    );
    assert_eq!(
        dev.query_strings("SELECT version, applied_by FROM envgate_migrations")[0],
        [Some("1".to_owned()), Some("dave".to_owned())]
    );
    let audit = bot.audit();
    assert!(
        audit.contains(&(
            "chatops".to_owned(),
            "rita".to_owned(),
            "refused".to_owned()
        )),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(a, who, outcome)| a == "promote" && who == "dave" && outcome == "ok"),
        "{audit:?}"
    );

    // The tag: staging's bundle as a generic package, linked from the
    // release (created), once.
    let mut tag = payload("tag_push.json");
    tag["ref"] = "refs/tags/v1.0.0".into();
    tag["after"] = v1.clone().into();
    assert_eq!(
        bot.deliver("Tag Push Hook", "t1", Some(SECRET), &tag).0,
        202
    );
    bot.wait(&gl, "the release links", |m| {
        m.releases.get("v1.0.0").is_some_and(|l| l.len() == 2)
    });
    let names: Vec<String> = gl.with(|m| {
        m.releases["v1.0.0"]
            .iter()
            .map(|l| l.name.clone())
            .collect()
    });
    assert_eq!(
        names,
        ["staging-v1.0.0.sql", "staging-v1.0.0.manifest.json"]
    );
    let sql = gl.with(|m| m.packages["envgate/v1.0.0/staging-v1.0.0.sql"].clone());
    assert!(
        String::from_utf8(sql)
            .unwrap()
            .contains("CREATE TABLE users")
    );

    // A tag with a slash, which GitLab takes as no package version: the
    // bundle goes under one it takes, still linked from the tag's release.
    let rc = gl.commit(
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        "rc",
    );
    gl.tag("v1.1/rc1", &rc);
    let mut tag = payload("tag_push.json");
    tag["ref"] = "refs/tags/v1.1/rc1".into();
    tag["after"] = rc.clone().into();
    assert_eq!(
        bot.deliver("Tag Push Hook", "t2", Some(SECRET), &tag).0,
        202
    );
    bot.wait(&gl, "the slashed tag's release links", |m| {
        m.releases.get("v1.1/rc1").is_some_and(|l| l.len() == 2)
    });
    let version = envgate::forge::gitlab::package_version("v1.1/rc1");
    assert!(version.starts_with("v1.1-rc1-"), "{version}");
    assert!(
        gl.with(|m| m
            .packages
            .contains_key(&format!("envgate/{version}/staging-v1.1_rc1.sql"))),
        "{:?}",
        gl.with(|m| m.packages.keys().cloned().collect::<Vec<_>>())
    );
}

/// A group that forbids duplicate packages: a `/promote` that attaches the
/// bundle, the tag push after it, a redelivery and a tag that moved all end
/// with one package file and one link per name, whose SHA-256 the manifest
/// records. Replacing needs deleting; a token that may not delete leaves
/// the release as it was and says why.
#[test]
fn packages_converge_when_duplicates_are_forbidden() {
    let (dev, staging) = (
        PgDb::create("glbot_conv_dev"),
        PgDb::create("glbot_conv_stg"),
    );
    support::ledger::seed(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    support::ledger::seed(&staging, &[("1", "users", USERS)]);
    let gl = FakeGitLab::start();
    gl.with(|m| m.forbid_duplicates = true);
    let files = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ];
        f.extend_from_slice(extra);
        f
    };
    let v1 = gl.commit(&files(&[])[..2], "v1");
    let v2 = gl.commit(&files(&[]), "v2");
    gl.branch("main", &v2);
    gl.tag("v1.0.0", &v1);
    gl.tag("v1.1.0", &v2);
    gl.member(8, 30); // developer
    let bot = Bot::start(&gl, &[("dev", dev.url()), ("staging", staging.url())]);
    let ended = |key: &str, state: &str| bot.wait_job(&format!("gitlab:{key}"), state);
    let linked = || {
        gl.with(|m| {
            m.releases["v1.1.0"]
                .iter()
                .map(|l| {
                    let file = l.url.rsplit('/').next().unwrap();
                    let bytes = m
                        .packages
                        .get(&format!("envgate/v1.1.0/{file}"))
                        .cloned()
                        .unwrap_or_else(|| panic!("{} links nothing: {}", l.name, l.url));
                    assert_eq!(file, l.name);
                    (l.name.clone(), bytes)
                })
                .collect::<Vec<_>>()
        })
    };
    let package = || {
        gl.with(|m| {
            m.package_files("envgate", "v1.1.0")
                .into_iter()
                .map(|f| (f.name, f.bytes))
                .collect::<Vec<_>>()
        })
    };
    let tag_push = |commit: &str| {
        let mut t = payload("tag_push.json");
        t["ref"] = "refs/tags/v1.1.0".into();
        t["after"] = commit.into();
        t["checkout_sha"] = commit.into();
        t
    };

    // /promote staging attaches the bundle: the package and links made.
    let c = note(1, 401, 8, "dave", "/promote staging v1.1.0");
    assert_eq!(bot.deliver("Note Hook", "p1", Some(SECRET), &c).0, 202);
    ended("p1", "done");
    eprintln!("NOTES {:#?}", gl.with(|m| m.notes.clone()));
    assert_eq!(
        support::assert_bundles_match(&linked()),
        ["staging-v1.1.0.sql"]
    );
    support::assert_bundles_match(&package());

    // The tag push after it: no 403, one file per name still.
    assert_eq!(
        bot.deliver("Tag Push Hook", "p2", Some(SECRET), &tag_push(&v2))
            .0,
        202
    );
    ended("p2", "done");
    support::assert_bundles_match(&linked());
    support::assert_bundles_match(&package());
    let section = gl.with(|m| m.descriptions["v1.1.0"].clone());
    assert!(
        section.contains("<!-- envgate:release -->") && section.contains("`staging-v1.1.0.sql`"),
        "{section}"
    );

    // Redelivered, and delivered anew: nothing is written.
    let before = gl.requests().len();
    assert_eq!(
        bot.deliver("Tag Push Hook", "p2", Some(SECRET), &tag_push(&v2))
            .0,
        202
    );
    assert_eq!(
        bot.deliver("Tag Push Hook", "p3", Some(SECRET), &tag_push(&v2))
            .0,
        202
    );
    ended("p3", "done");
    assert_eq!(writes(&gl, before), Vec::<String>::new());

    // The tag moved: each file deleted, then uploaded; said in the release
    // description and the audit trail.
    let v3 = gl.commit(
        &files(&[("migrations/3_orders_index.sql", ORDERS_INDEX)]),
        "v3",
    );
    gl.tag("v1.1.0", &v3);
    assert_eq!(
        bot.deliver("Tag Push Hook", "p4", Some(SECRET), &tag_push(&v3))
            .0,
        202
    );
    ended("p4", "done");
    let now = linked();
    support::assert_bundles_match(&now);
    support::assert_bundles_match(&package());
    let sql = &now.iter().find(|(n, _)| n.ends_with(".sql")).unwrap().1;
    assert!(String::from_utf8_lossy(sql).contains("orders_placed"));
    let section = gl.with(|m| m.descriptions["v1.1.0"].clone());
    assert!(
        section.contains("`staging-v1.1.0.sql` — replaced: the tag's bundle changed (was sha256 `"),
        "{section}"
    );
    assert!(
        bot.audit().iter().any(|(a, who, outcome)| a == "publish"
            && who == "envgate[bot]"
            && outcome == "replaced"),
        "{:?}",
        bot.audit()
    );

    // A token that may not delete package files: the release keeps the
    // bundle it had, whole, and its description says why the new one is
    // not attached.
    gl.with(|m| m.refuse_package_delete = true);
    let v4 = gl.commit(
        &files(&[
            ("migrations/3_orders_index.sql", ORDERS_INDEX),
            ("migrations/4_more.sql", "CREATE TABLE more (id bigint);\n"),
        ]),
        "v4",
    );
    gl.tag("v1.1.0", &v4);
    assert_eq!(
        bot.deliver("Tag Push Hook", "p5", Some(SECRET), &tag_push(&v4))
            .0,
        202
    );
    ended("p5", "failed");
    assert_eq!(linked(), now, "the release is as it was");
    let section = gl.with(|m| m.descriptions["v1.1.0"].clone());
    assert!(
        section.contains("Not attached yet:") && section.contains("Maintainer role"),
        "{section}"
    );
}

/// A merge request that makes prod managed waits for one of prod's admins:
/// the envgate/mode status fails until an admin approves (an approval
/// delivery reads it again), and the merge is credited to GitLab's
/// identities when it reaches the default branch.
#[test]
fn loosening_prod_waits_for_an_admin_approval_and_the_merge_is_credited() {
    let (dev, prod) = (
        PgDb::create("glbot_mode_dev"),
        PgDb::create("glbot_mode_prod"),
    );
    let gl = FakeGitLab::start();
    let base = "[environments.dev]\nurl = \"${DEV_URL}\"\n\n\
                [environments.prod]\nurl = \"${PROD_URL}\"\nmode = \"export_only\"\nadmins = [\"alice\"]\n";
    let head_config = base.replace("export_only", "managed");
    let v1 = gl.commit(
        &[("envgate.toml", base), ("migrations/1_users.sql", USERS)],
        "v1",
    );
    let v2 = gl.commit(
        &[
            ("envgate.toml", head_config.as_str()),
            ("migrations/1_users.sql", USERS),
        ],
        "v2",
    );
    gl.branch("main", &v1);
    gl.with(|m| {
        m.diffs.insert(4, vec![("envgate.toml".into(), false)]);
    });
    let bot = Bot::start(&gl, &[("dev", dev.url()), ("prod", prod.url())]);
    let mode = |gl: &FakeGitLab| {
        gl.with(|m| {
            m.statuses
                .iter()
                .rev()
                .find(|s| s.name == "envgate/mode")
                .map(|s| (s.state.clone(), s.description.clone()))
        })
    };
    let mut open = merge_request("merge_request_open.json", 4, &v2);
    open["object_attributes"]["target_branch"] = "main".into();
    assert_eq!(
        bot.deliver("Merge Request Hook", "g1", Some(SECRET), &open)
            .0,
        202
    );
    bot.wait_job("gitlab:g1", "done");
    assert_eq!(
        mode(&gl),
        Some((
            "failed".to_owned(),
            "loosens prod: needs an admin's approval".to_owned()
        ))
    );
    let note = gl.with(|m| m.notes[0].body.clone());
    assert!(
        note.contains("Environments this merge request loosens")
            && note.contains("| prod | mode export_only → managed | alice | ⏳ not yet |"),
        "{note}"
    );

    // alice approves: GitLab sends the merge request event again.
    gl.with(|m| m.approvals.insert(4, vec![(21, "alice".to_owned())]));
    let mut approved = open.clone();
    approved["object_attributes"]["action"] = "approved".into();
    assert_eq!(
        bot.deliver("Merge Request Hook", "g2", Some(SECRET), &approved)
            .0,
        202
    );
    bot.wait_job("gitlab:g2", "done");
    assert_eq!(
        mode(&gl),
        Some(("success".to_owned(), "loosens prod: approved".to_owned()))
    );
    assert_eq!(gl.with(|m| m.notes.len()), 1, "one sticky note");

    // Merged by carol, authored by bob: credited on the push to main.
    let v3 = gl.commit(
        &[
            ("envgate.toml", head_config.as_str()),
            ("migrations/1_users.sql", USERS),
        ],
        "v3",
    );
    gl.branch("main", &v3);
    gl.with(|m| {
        m.merged
            .insert(v3.clone(), (4, "bob".to_owned(), "carol".to_owned()))
    });
    let mut push = payload("push.json");
    push["ref"] = "refs/heads/main".into();
    push["after"] = v3.clone().into();
    assert_eq!(bot.deliver("Push Hook", "g3", Some(SECRET), &push).0, 202);
    bot.wait_job("gitlab:g3", "done");
    let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
    let (actor, source, details): (String, String, String) = c
        .query_row(
            "SELECT actor, actor_source, details FROM audit_log \
             WHERE action = 'mode_change' AND environment = 'prod'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (actor.as_str(), source.as_str()),
        ("carol", "forge review: acme/shop!4")
    );
    assert!(
        details.contains(&format!(
            "merged from acme/shop!4 at commit {v3} by carol; author bob; approved by alice"
        )),
        "{details}"
    );
}
