//! `envgate serve` as a process, against a fake GitHub API that records
//! every request, with GitHub's published webhook payloads signed here and
//! environments on real PostgreSQL.

#[path = "support/fake_github.rs"]
mod fake_github;
mod support;

use fake_github::{FakeGitHub, INSTALLATION};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::ledger::seed as ledger;
use support::{PgDb, http};

const SECRET: &str = "It's a Secret to Everybody";
const REPO: &str = "acme/shop";
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";
const ORDERS_DOWN: &str = "DROP TABLE orders;\n";
const TRASH: &str = "CREATE TABLE trash (id bigint PRIMARY KEY);\n";
const CONFIG: &str = "[environments.dev]\nurl = \"${DEV_URL}\"\n\n[environments.staging]\nurl = \"${STAGING_URL}\"\n";

/// A running `envgate serve`.
/// A running `envgate serve`.
struct Bot(support::Served);

impl std::ops::Deref for Bot {
    type Target = support::Served;
    fn deref(&self) -> &support::Served {
        &self.0
    }
}

impl Bot {
    fn start(
        fake: &FakeGitHub,
        control_store: Option<&str>,
        urls: &[(&str, String)],
        extra: &str,
    ) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
        let store = control_store
            .map(str::to_owned)
            .unwrap_or_else(|| "sqlite://state.db".to_owned());
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"{store}\"\nworkers = 2\n{extra}\n\
                 [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\napi_url = \"{}\"\n\n\
                 [credentials]\ndir = \"creds\"\n",
                fake_github::APP_ID,
                key.display(),
                fake.url
            ),
        )
        .unwrap();
        support::write_credentials(dir.path(), REPO, urls);
        Bot(support::Served::start(dir, port, "envgate=debug,info"))
    }

    /// Posts a signed delivery; (status, body).
    fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (u16, String) {
        let body = payload.to_string().into_bytes();
        let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), &body);
        http(
            self.port,
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", delivery),
                ("X-Hub-Signature-256", &sig),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
    }

    fn audit(&self) -> Vec<(String, String, String, Option<String>)> {
        let c = rusqlite::Connection::open(self.dir.path().join("state.db")).unwrap();
        let mut st = c
            .prepare("SELECT action, actor, outcome, environment FROM audit_log ORDER BY seq")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A published example payload, about our repository and installation.
fn payload(name: &str) -> Value {
    let mut p = fixture(name);
    p["repository"]["name"] = json!("shop");
    p["repository"]["full_name"] = json!(REPO);
    p["repository"]["owner"]["login"] = json!("acme");
    p["repository"]["default_branch"] = json!("main");
    p["installation"] =
        json!({"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="});
    p
}

fn pr_payload(name: &str, number: u64, head: &str) -> Value {
    let mut p = payload(name);
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["head"]["sha"] = json!(head);
    p
}

/// Writes other than the envgate/mode check's (every pull request job
/// reports it; the tests that are not about it look past it).
fn without_mode(fake: &FakeGitHub, reqs: &[fake_github::Request]) -> Vec<fake_github::Request> {
    let ids: Vec<String> = fake.with(|m| {
        m.check_runs
            .iter()
            .filter(|c| c.name == "envgate/mode")
            .map(|c| format!("/check-runs/{}", c.id))
            .collect()
    });
    reqs.iter()
        .filter(|r| {
            r.json()["name"] != "envgate/mode" && !ids.iter().any(|id| r.path.ends_with(id))
        })
        .cloned()
        .collect()
}

fn lines(reqs: &[fake_github::Request]) -> Vec<String> {
    reqs.iter().map(|r| r.line()).collect()
}

#[test]
fn a_pull_request_gets_a_check_run_and_one_sticky_comment() {
    let (dev, staging) = (PgDb::create("bot_dev"), PgDb::create("bot_staging"));
    ledger(&dev, &[("1", "users", USERS)]);
    let fake = FakeGitHub::start();
    let main = fake.commit(
        REPO,
        &[("envgate.toml", CONFIG), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    let head = fake.commit(
        REPO,
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        "pr-1",
    );
    fake.pull_files(
        REPO,
        2,
        &[
            ("migrations/2_orders.sql", "added"),
            ("README.md", "modified"),
        ],
    );
    let bot = Bot::start(
        &fake,
        None,
        &[
            ("dev", dev.url()),
            ("staging", staging.url_with_password("pw-staging")),
        ],
        "",
    );

    let (status, body) = bot.deliver(
        "pull_request",
        "d-opened",
        &pr_payload("pull_request.opened.json", 2, &head),
    );
    assert_eq!((status, body.trim()), (202, "queued"));
    fake.wait(Duration::from_secs(20), "the sticky comment", |m| {
        !m.comments.is_empty()
    });
    // Nothing loosened: the envgate/mode check passes.
    let mode = fake.with(|m| {
        m.check_runs
            .iter()
            .find(|c| c.name == "envgate/mode")
            .cloned()
    });
    let mode = mode.expect("an envgate/mode check run");
    assert_eq!(mode.conclusion.as_deref(), Some("success"));
    assert_eq!(mode.output["title"], "no environment loosened");
    let writes = without_mode(&fake, &fake.writes());
    assert_eq!(
        lines(&writes),
        [
            "POST /repos/acme/shop/check-runs",
            "PATCH /repos/acme/shop/check-runs/1002",
            "POST /repos/acme/shop/issues/2/comments"
        ],
        "{}",
        bot.log()
    );
    assert_eq!(
        writes[0].json(),
        json!({"name": "envgate", "head_sha": head, "status": "in_progress"})
    );
    let done = writes[1].json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["conclusion"], "neutral", "pending only: {done}");
    assert_eq!(done["output"]["title"], "3 pending");
    assert!(
        done["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("2_orders"),
        "{done}"
    );
    // A request's configuration is proposed, not in force: nothing is
    // recorded about its environments' modes, so there is no trail yet and
    // no head to publish.
    let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
    let records: i64 = c
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(records, 0);
    assert!(
        !done["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("audit trail head"),
        "{done}"
    );
    assert!(writes.iter().all(|r| {
        r.authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ghs_fake_")
    }));
    let comment = writes[2].json()["body"].as_str().unwrap().to_owned();
    assert!(
        comment.starts_with("<!-- envgate:pr -->\n### envgate · 3 pending"),
        "{comment}"
    );
    assert!(
        comment.contains("This pull request adds 1 migration:"),
        "{comment}"
    );
    assert!(
        comment.contains("| `2_orders` | ⏳ pending | ⏳ pending |"),
        "{comment}"
    );
    assert!(
        comment
            .contains("Bundle for <b>staging</b> (export_only): <code>staging-empty-2.sql</code>"),
        "{comment}"
    );
    assert!(comment.contains(ORDERS.trim()), "{comment}");
    assert!(!comment.contains("pw-staging"), "{comment}");

    // A push to the pull request: the comment is edited, not repeated.
    let head2 = fake.commit(
        REPO,
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
            ("migrations/3_trash.sql", TRASH),
        ],
        "pr-2",
    );
    fake.pull_files(
        REPO,
        2,
        &[
            ("migrations/2_orders.sql", "added"),
            ("migrations/3_trash.sql", "added"),
        ],
    );
    let before = fake.writes().len();
    let sync = pr_payload("pull_request.synchronize.json", 2, &head2);
    assert_eq!(bot.deliver("pull_request", "d-sync", &sync).0, 202);
    fake.wait(Duration::from_secs(20), "the edited comment", |m| {
        m.comments.len() == 1 && m.comments[0].body.contains("3_trash")
    });
    let writes = fake.writes();
    assert_eq!(
        lines(&without_mode(&fake, &writes[before..])),
        [
            "POST /repos/acme/shop/check-runs",
            "PATCH /repos/acme/shop/check-runs/1004",
            "PATCH /repos/acme/shop/issues/comments/2001"
        ]
    );
    // GitHub redelivers: acknowledged, not processed again.
    let (status, body) = bot.deliver("pull_request", "d-sync", &sync);
    assert_eq!(
        (status, body.trim()),
        (202, "duplicate delivery: already processed")
    );
    support::wait_until(Duration::from_secs(10), "the jobs to finish", || {
        bot.jobs().iter().all(|(_, state)| state == "done")
    });
    assert_eq!(fake.writes().len(), writes.len());
    assert_eq!(
        bot.jobs(),
        [
            ("d-opened".to_owned(), "done".to_owned()),
            ("d-sync".to_owned(), "done".to_owned())
        ]
    );
    // A job for an older commit that finishes last (out of order) gets
    // its check run but leaves the comment to the newer commit.
    fake.pull_head(REPO, 2, &head2);
    let stale = pr_payload("pull_request.synchronize.json", 2, &head);
    assert_eq!(bot.deliver("pull_request", "d-stale", &stale).0, 202);
    support::wait_until(Duration::from_secs(20), "the stale job", || {
        bot.jobs()
            .iter()
            .any(|(d, state)| d == "d-stale" && state == "done")
    });
    assert_eq!(
        lines(&without_mode(&fake, &fake.writes()[writes.len()..])),
        [
            "POST /repos/acme/shop/check-runs",
            "PATCH /repos/acme/shop/check-runs/1006"
        ]
    );
    assert!(fake.with(|m| m.comments[0].body.contains("3_trash")));
}

#[test]
fn intake_rejects_forgeries_and_junk_and_answers_fast() {
    let fake = FakeGitHub::start();
    let bot = Bot::start(&fake, None, &[], "max_body = \"64KiB\"");
    let body = payload("push.json").to_string();
    // Forged: signed with another secret.
    let forged = envgate::core::webhook::sign_github(b"not the secret", body.as_bytes());
    let h = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "d-forged"),
        ("X-Hub-Signature-256", forged.as_str()),
    ];
    let (status, text) = http(bot.port, "POST", "/webhooks/github", &h, body.as_bytes());
    assert_eq!(
        (status, text.trim()),
        (401, "X-Hub-Signature-256 does not match")
    );
    let (status, _) = http(
        bot.port,
        "POST",
        "/webhooks/github",
        &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d-x")],
        body.as_bytes(),
    );
    assert_eq!(status, 401);
    // Signed, but not JSON.
    let junk = b"{not json";
    let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), junk);
    let (status, _) = http(
        bot.port,
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "d-junk"),
            ("X-Hub-Signature-256", &sig),
        ],
        junk,
    );
    assert_eq!(status, 400);
    // Too large.
    let big = vec![b' '; 100 * 1024];
    let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), &big);
    let (status, _) = http(
        bot.port,
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "d-big"),
            ("X-Hub-Signature-256", &sig),
        ],
        &big,
    );
    assert_eq!(status, 413);
    // Events and actions the bot does not handle are acknowledged.
    assert_eq!(
        bot.deliver("ping", "d-ping", &fixture("ping.json")),
        (202, "ignored\n".to_owned())
    );
    let mut closed = payload("pull_request.opened.json");
    closed["action"] = json!("closed");
    assert_eq!(bot.deliver("pull_request", "d-closed", &closed).0, 202);
    assert_eq!(
        bot.deliver("watch", "d-watch", &json!({"action": "started"}))
            .0,
        202
    );
    // A comment that is not a command is not work.
    let mut chat = payload("issue_comment.created.json");
    chat["comment"]["body"] = json!("Looks good to me.");
    assert_eq!(
        bot.deliver("issue_comment", "d-chat", &chat),
        (202, "ignored\n".to_owned())
    );
    assert!(bot.jobs().is_empty());
    assert!(fake.writes().is_empty());

    assert_eq!(http(bot.port, "GET", "/healthz", &[], b"").0, 200);
    let (status, text) = http(bot.port, "GET", "/readyz", &[], b"");
    assert_eq!((status, text.trim()), (200, "ready"), "{}", bot.log());
    assert!(fake.requests().iter().any(|r| r.line() == "GET /app"));
    let (_, metrics) = http(bot.port, "GET", "/metrics", &[], b"");
    for line in [
        "envgate_webhook_deliveries_total{event=\"unverified\",outcome=\"rejected\"} 2",
        "envgate_webhook_deliveries_total{event=\"push\",outcome=\"malformed\"} 1",
        "envgate_webhook_deliveries_total{event=\"ping\",outcome=\"ignored\"} 1",
        "# TYPE envgate_queue_depth gauge",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

#[test]
fn pushes_with_drift_fail_the_check_with_annotations_and_survive_github_hiccups() {
    let dev = PgDb::create("bot_drift");
    // dev applied an older text of 1_users.sql.
    ledger(&dev, &[("1", "users", "CREATE TABLE users (id int);\n")]);
    let fake = FakeGitHub::start();
    let config = "[environments.dev]\nurl = \"${DEV_URL}\"\n";
    let main = fake.commit(
        REPO,
        &[("envgate.toml", config), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    // GitHub fails once, then rate-limits once: both retried in place.
    fake.script(
        "POST /repos/acme/shop/check-runs",
        502,
        &[],
        json!({"message": "Server Error"}),
    );
    fake.script(
        "PATCH /repos/acme/shop/check-runs",
        403,
        &[("retry-after", "1")],
        json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
    );
    let bot = Bot::start(&fake, None, &[("dev", dev.url())], "");
    let mut push = payload("push.json");
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(main);
    assert_eq!(bot.deliver("push", "d-push", &push).0, 202);
    fake.wait(Duration::from_secs(20), "the completed check run", |m| {
        m.check_runs.iter().any(|c| c.status == "completed")
    });
    let writes = fake.writes();
    assert_eq!(
        lines(&writes),
        [
            "POST /repos/acme/shop/check-runs",
            "POST /repos/acme/shop/check-runs",
            "PATCH /repos/acme/shop/check-runs/1001",
            "PATCH /repos/acme/shop/check-runs/1001"
        ],
        "no comment on a push; {}",
        bot.log()
    );
    let done = writes[3].json();
    assert_eq!(done["conclusion"], "failure");
    assert_eq!(done["output"]["title"], "1 drifted");
    // The audit trail's head after this run (the default branch's modes
    // and the drift were recorded), published where the store's writers
    // cannot rewrite it.
    let (seq, hash) = {
        let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
        c.query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap()
    };
    assert!(
        done["output"]["summary"].as_str().unwrap().ends_with(&format!(
            "<sub>audit trail head <code>{seq}:{hash}</code> · <code>envgate audit verify --expect {seq}:{hash}</code> shows whether the trail was cut short or rewritten since</sub>"
        )),
        "{done}"
    );
    assert_eq!(
        done["output"]["annotations"][0],
        json!({
            "path": "migrations/1_users.sql",
            "start_line": 1,
            "end_line": 1,
            "annotation_level": "failure",
            "title": "migration changed after it was applied",
            "message": done["output"]["annotations"][0]["message"].clone(),
        })
    );
    assert!(
        done["output"]["annotations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("drifted in dev")
    );
    // The drift is in the audit trail, found by the bot.
    assert!(
        bot.audit()
            .iter()
            .any(|(a, who, o, env)| a == "drift_detected"
                && who == "envgate[bot]"
                && o == "detected"
                && env.as_deref() == Some("dev")),
        "{:?}",
        bot.audit()
    );
}

#[test]
fn release_tags_get_their_bundles_as_assets_once() {
    let (dev, staging) = (PgDb::create("bot_rel_dev"), PgDb::create("bot_rel_staging"));
    ledger(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    ledger(&staging, &[("1", "users", USERS)]);
    let fake = FakeGitHub::start();
    let v1 = fake.commit(
        REPO,
        &[("envgate.toml", CONFIG), ("migrations/1_users.sql", USERS)],
        "v1",
    );
    let v2 = fake.commit(
        REPO,
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
            ("migrations/2_orders.down.sql", ORDERS_DOWN),
        ],
        "v2",
    );
    fake.tag(REPO, "v1.0.0", &v1);
    fake.tag(REPO, "v1.1.0", &v2);
    fake.branch(REPO, "main", &v2);
    let bot = Bot::start(
        &fake,
        None,
        &[("dev", dev.url()), ("staging", staging.url())],
        "",
    );
    let mut create = payload("create.tag.json");
    create["ref"] = json!("v1.1.0");
    assert_eq!(bot.deliver("create", "d-create", &create).0, 202);
    fake.wait(Duration::from_secs(20), "the release body", |m| {
        m.releases
            .get(REPO)
            .is_some_and(|rs| rs.iter().any(|r| r.body.contains("envgate:release")))
    });
    let writes = fake.writes();
    assert_eq!(
        lines(&writes),
        [
            "POST /repos/acme/shop/releases",
            "POST /uploads/repos/acme/shop/releases/3001/assets",
            "POST /uploads/repos/acme/shop/releases/3001/assets",
            "PATCH /repos/acme/shop/releases/3001"
        ],
        "{}",
        bot.log()
    );
    assert_eq!(
        writes[0].json(),
        json!({"tag_name": "v1.1.0", "name": "v1.1.0", "draft": false, "body": ""})
    );
    assert!(
        writes[1]
            .path
            .ends_with("?name=staging-v1.1.0.manifest.json")
    );
    assert!(
        writes[2].path.ends_with("?name=staging-v1.1.0.sql"),
        "{}",
        writes[2].path
    );
    assert_eq!(writes[2].content_type.as_deref(), Some("application/sql"));
    assert!(String::from_utf8_lossy(&writes[2].body).contains(ORDERS.trim()));
    let body = writes[3].json()["body"].as_str().unwrap().to_owned();
    assert!(
        body.contains("| dev | 1/1 applied |") && body.contains("| staging | 0/1 applied |"),
        "{body}"
    );
    // The same delivery again: nothing. The release event for the same tag:
    // a bundle whose SQL asset still holds it (GitHub's digest says so) is
    // kept; here the SQL asset was changed by hand, so the bundle is put
    // back, each file replacing its asset, never doubled.
    assert_eq!(bot.deliver("create", "d-create", &create).0, 202);
    fake.with(|m| {
        m.releases.get_mut(REPO).unwrap()[0]
            .assets
            .iter_mut()
            .find(|a| a.name.ends_with(".sql"))
            .unwrap()
            .bytes = b"stale".to_vec()
    });
    let mut published = payload("release.published.json");
    published["release"]["tag_name"] = json!("v1.1.0");
    assert_eq!(bot.deliver("release", "d-published", &published).0, 202);
    bot.wait_job("d-published", "done");
    let deletes: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.line())
        .collect();
    assert_eq!(
        deletes,
        [
            "DELETE /repos/acme/shop/releases/assets/4001",
            "DELETE /repos/acme/shop/releases/assets/4002"
        ]
    );
    assert_eq!(
        fake.with(|m| m
            .requests
            .iter()
            .filter(|r| r.path.starts_with("/uploads/"))
            .count()),
        4
    );
    assert!(fake.with(|m| {
        m.releases[REPO][0]
            .assets
            .iter()
            .all(|a| a.bytes != b"stale")
    }));
    let mut names: Vec<String> = fake.with(|m| {
        m.releases[REPO][0]
            .assets
            .iter()
            .map(|a| a.name.clone())
            .collect()
    });
    names.sort();
    assert_eq!(
        names,
        ["staging-v1.1.0.manifest.json", "staging-v1.1.0.sql"]
    );
    assert_eq!(fake.with(|m| m.releases[REPO].len()), 1);
}

/// Publishing a release converges: twice, after a `/promote`, redelivered
/// and after the tag moved, the release ends with one asset per name whose
/// SHA-256 its manifest records; nothing is uploaded again that is there.
#[test]
fn release_assets_converge_on_one_file_per_name() {
    let (dev, staging) = (PgDb::create("bot_conv_dev"), PgDb::create("bot_conv_stg"));
    ledger(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    ledger(&staging, &[("1", "users", USERS)]);
    let fake = FakeGitHub::start();
    let files = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ];
        f.extend_from_slice(extra);
        f
    };
    let v1 = fake.commit(REPO, &files(&[])[..2], "v1");
    let v2 = fake.commit(REPO, &files(&[]), "v2");
    fake.tag(REPO, "v1.0.0", &v1);
    fake.tag(REPO, "v1.1.0", &v2);
    fake.branch(REPO, "main", &v2);
    fake.permission(REPO, "alice", "write");
    let bot = Bot::start(
        &fake,
        None,
        &[("dev", dev.url()), ("staging", staging.url())],
        "",
    );
    let done = |delivery: &str| bot.wait_job(delivery, "done");
    let uploads = || {
        fake.with(|m| {
            m.requests
                .iter()
                .filter(|r| r.path.starts_with("/uploads/"))
                .count()
        })
    };
    let assets = || {
        fake.with(|m| {
            m.releases[REPO][0]
                .assets
                .iter()
                .map(|a| (a.name.clone(), a.bytes.clone()))
                .collect::<Vec<_>>()
        })
    };
    let mut create = payload("create.tag.json");
    create["ref"] = json!("v1.1.0");

    // Published, then published again: kept.
    assert_eq!(bot.deliver("create", "t1", &create).0, 202);
    done("t1");
    assert_eq!(uploads(), 2);
    let mut published = payload("release.published.json");
    published["release"]["tag_name"] = json!("v1.1.0");
    assert_eq!(bot.deliver("release", "t2", &published).0, 202);
    done("t2");
    assert_eq!(uploads(), 2, "nothing uploaded twice");
    assert_eq!(
        support::assert_bundles_match(&assets()),
        ["staging-v1.1.0.sql"]
    );

    // /promote staging attaches its bundle to the same release.
    let mut c = payload("issue_comment.created.json");
    c["comment"]["body"] = json!("/promote staging v1.1.0");
    c["comment"]["user"]["login"] = json!("alice");
    c["comment"]["user"]["type"] = json!("User");
    assert_eq!(bot.deliver("issue_comment", "t3", &c).0, 202);
    done("t3");
    let reply = fake.with(|m| m.comments.last().unwrap().body.clone());
    assert!(
        reply.contains("[`staging-v1.1.0.sql`](https://github.com/acme/shop/releases/download/v1.1.0/staging-v1.1.0.sql)"),
        "{reply}"
    );
    support::assert_bundles_match(&assets());

    // Redelivered (the same delivery: ignored) and delivered anew: the
    // files there hold the bundle, so no file is written; the notes take
    // the audit trail's new head (the /promote was recorded since), and
    // once more, nothing at all.
    let before = fake.requests().len();
    assert_eq!(bot.deliver("create", "t1", &create).0, 202);
    assert_eq!(bot.deliver("create", "t4", &create).0, 202);
    done("t4");
    let written = |from: usize| -> Vec<String> {
        fake.requests()[from..]
            .iter()
            .filter(|r| r.method != "GET" && !r.path.ends_with("/access_tokens"))
            .map(|r| r.line())
            .collect()
    };
    assert_eq!(written(before), ["PATCH /repos/acme/shop/releases/3001"]);
    let (seq, hash) = {
        let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
        c.query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap()
    };
    let body = fake.with(|m| m.releases[REPO][0].body.clone());
    assert!(
        body.contains(&format!("audit trail head <code>{seq}:{hash}</code>")),
        "{body}"
    );
    let before = fake.requests().len();
    assert_eq!(bot.deliver("create", "t4b", &create).0, 202);
    done("t4b");
    assert_eq!(written(before), Vec::<String>::new());

    // The tag moved to a commit with one more migration: each file of the
    // bundle replaced, said in the release notes and the audit trail.
    let v3 = fake.commit(REPO, &files(&[("migrations/3_trash.sql", TRASH)]), "v3");
    fake.tag(REPO, "v1.1.0", &v3);
    let before = uploads();
    assert_eq!(bot.deliver("create", "t5", &create).0, 202);
    done("t5");
    assert_eq!(uploads(), before + 2);
    let now = assets();
    support::assert_bundles_match(&now);
    let sql = &now.iter().find(|(n, _)| n.ends_with(".sql")).unwrap().1;
    assert!(String::from_utf8_lossy(sql).contains("CREATE TABLE trash"));
    let body = fake.with(|m| m.releases[REPO][0].body.clone());
    assert!(
        body.contains("`staging-v1.1.0.sql` — replaced: the tag's bundle changed (was sha256 `"),
        "{body}"
    );
    assert!(
        bot.audit()
            .iter()
            .any(|(a, who, outcome, env)| a == "publish"
                && who == "envgate[bot]"
                && outcome == "replaced"
                && env.as_deref() == Some("staging")),
        "{:?}",
        bot.audit()
    );
    assert_eq!(fake.with(|m| m.releases[REPO].len()), 1);
}

/// A pull request that makes prod managed waits for one of prod's admins:
/// the envgate/mode check fails, the comment says who may approve, a
/// non-admin's approval changes nothing, an admin's passes it; merged, the
/// mode change is credited to the forge's identities.
#[test]
fn loosening_prod_waits_for_an_admin_and_the_merge_is_credited() {
    let (dev, prod) = (PgDb::create("bot_mode_dev"), PgDb::create("bot_mode_prod"));
    let fake = FakeGitHub::start();
    let base_config = "[environments.dev]\nurl = \"${DEV_URL}\"\n\n\
                       [environments.prod]\nurl = \"${PROD_URL}\"\nmode = \"export_only\"\nadmins = [\"alice\"]\n";
    let head_config = base_config.replace("export_only", "managed");
    let v1 = fake.commit(
        REPO,
        &[
            ("envgate.toml", base_config),
            ("migrations/1_users.sql", USERS),
        ],
        "v1",
    );
    let v2 = fake.commit(
        REPO,
        &[
            ("envgate.toml", head_config.as_str()),
            ("migrations/1_users.sql", USERS),
        ],
        "v2",
    );
    fake.branch(REPO, "main", &v1);
    fake.pull_files(REPO, 7, &[("envgate.toml", "modified")]);
    let bot = Bot::start(&fake, None, &[("dev", dev.url()), ("prod", prod.url())], "");
    let mut pr = pr_payload("pull_request.opened.json", 7, &v2);
    pr["pull_request"]["base"]["ref"] = json!("main");
    let mode_run = |fake: &FakeGitHub| {
        fake.with(|m| {
            m.check_runs
                .iter()
                .rev()
                .find(|c| c.name == "envgate/mode")
                .cloned()
        })
    };

    assert_eq!(bot.deliver("pull_request", "m1", &pr).0, 202);
    bot.wait_job("m1", "done");
    let run = mode_run(&fake).expect("an envgate/mode check run");
    assert_eq!(run.head_sha, v2);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(
        run.output["title"],
        "loosens prod: needs an admin's approval"
    );
    let comment = fake.with(|m| m.comments[0].body.clone());
    assert!(
        comment.contains("Environments this pull request loosens")
            && comment.contains("| prod | mode export_only → managed | alice | ⏳ not yet |"),
        "{comment}"
    );

    // A review event: mallory approves (not an admin), then alice does,
    // first at an older commit, then at the head.
    let mut review = payload("pull_request_review.submitted.json");
    review["action"] = json!("submitted");
    review["pull_request"]["number"] = json!(7);
    review["pull_request"]["head"]["sha"] = json!(v2);
    review["pull_request"]["base"]["ref"] = json!("main");
    fake.review(REPO, 7, "mallory", "APPROVED", &v2);
    fake.review(REPO, 7, "alice", "APPROVED", &v1);
    assert_eq!(bot.deliver("pull_request_review", "m2", &review).0, 202);
    bot.wait_job("m2", "done");
    assert_eq!(
        mode_run(&fake).unwrap().conclusion.as_deref(),
        Some("failure")
    );
    fake.review(REPO, 7, "alice", "APPROVED", &v2);
    assert_eq!(bot.deliver("pull_request_review", "m3", &review).0, 202);
    bot.wait_job("m3", "done");
    let run = mode_run(&fake).unwrap();
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{:?}",
        run.output
    );
    assert_eq!(run.output["title"], "loosens prod: approved");
    let comment = fake.with(|m| m.comments[0].body.clone());
    assert!(comment.contains("| ✅ alice |"), "{comment}");
    assert_eq!(fake.with(|m| m.comments.len()), 1, "one sticky comment");

    // Merged by carol, authored by bob: the push to main records the
    // change with the forge's identities, once.
    let v3 = fake.commit(
        REPO,
        &[
            ("envgate.toml", head_config.as_str()),
            ("migrations/1_users.sql", USERS),
        ],
        "v3",
    );
    fake.branch(REPO, "main", &v3);
    fake.merged(REPO, &v3, 7, "bob", "carol", &v2);
    let mut push = payload("push.json");
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(v3);
    assert_eq!(bot.deliver("push", "m4", &push).0, 202);
    bot.wait_job("m4", "done");
    let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
    let (actor, source, details): (String, String, String) = c
        .query_row(
            "SELECT actor, actor_source, details FROM audit_log \
             WHERE action = 'mode_change' AND environment = 'prod' AND details LIKE '%-> managed%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(actor, "carol");
    assert_eq!(source, "forge review: acme/shop#7");
    assert!(
        details.contains(&format!(
            "merged from acme/shop#7 at commit {v3} by carol; author bob; approved by mallory, alice"
        )),
        "{details}"
    );
    let (approvers, mode_source): (String, String) = c
        .query_row(
            "SELECT approvers, actor_source FROM environment_modes WHERE environment = 'prod' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        approvers, r#"["mallory","alice"]"#,
        "what the write gate reads"
    );
    assert_eq!(mode_source, "forge review: acme/shop#7");
}

#[test]
fn chat_ops_promote_checks_who_asks_and_audits_everything() {
    let (dev, staging) = (PgDb::create("bot_ops_dev"), PgDb::create("bot_ops_staging"));
    let fake = FakeGitHub::start();
    let config = format!("{CONFIG}promoters = [\"carol\"]\n");
    let v1 = fake.commit(
        REPO,
        &[
            ("envgate.toml", config.as_str()),
            ("migrations/1_users.sql", USERS),
        ],
        "v1",
    );
    fake.tag(REPO, "v1.0.0", &v1);
    fake.branch(REPO, "main", &v1);
    fake.permission(REPO, "alice", "write");
    fake.permission(REPO, "carol", "write");
    fake.permission(REPO, "bob", "read");
    let bot = Bot::start(
        &fake,
        None,
        &[("dev", dev.url()), ("staging", staging.url())],
        "",
    );
    let comment = |n: u64, who: &str, text: &str| {
        let mut p = payload("issue_comment.created.json");
        p["comment"]["id"] = json!(n);
        p["comment"]["body"] = json!(text);
        p["comment"]["user"]["login"] = json!(who);
        p["comment"]["user"]["type"] = json!("User");
        p["issue"]["number"] = json!(2);
        p["issue"]["pull_request"] =
            json!({"url": "https://api.github.com/repos/acme/shop/pulls/2"});
        p
    };
    let replies = |n: usize| {
        let start = Instant::now();
        while fake.with(|m| m.comments.len()) < n {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no reply {n}; jobs {:?}\n{}",
                bot.jobs(),
                bot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        fake.with(|m| {
            m.comments
                .iter()
                .map(|c| c.body.clone())
                .collect::<Vec<_>>()
        })
    };
    // alice promotes v1.0.0 to dev (managed): applied.
    assert_eq!(
        bot.deliver(
            "issue_comment",
            "c1",
            &comment(501, "alice", "/promote dev v1.0.0")
        )
        .0,
        202
    );
    let r = replies(1);
    assert!(
        r[0].starts_with("@alice `/promote dev v1.0.0`:"),
        "{}\n{}",
        r[0],
        bot.log()
    );
    assert!(
        r[0].contains("release v1.0.0: applied 1 migration to 'dev' as alice"),
        "{}",
        r[0]
    );
    assert_eq!(
        dev.query_strings("SELECT version, applied_by, release FROM envgate_migrations")[0],
        [
            Some("1".to_owned()),
            Some("alice".to_owned()),
            Some("v1.0.0".to_owned())
        ]
    );
    // bob may only read.
    assert_eq!(
        bot.deliver(
            "issue_comment",
            "c2",
            &comment(502, "bob", "/promote dev v1.0.0")
        )
        .0,
        202
    );
    let r = replies(2);
    assert_eq!(
        r[1],
        "@bob `/promote dev v1.0.0` refused: bob has read access to acme/shop; promoting and rolling back need write access."
    );
    // staging names its promoters: alice is not one, carol is. The bundle
    // is shown collapsed (no release for the tag).
    assert_eq!(
        bot.deliver(
            "issue_comment",
            "c3",
            &comment(503, "alice", "/promote staging")
        )
        .0,
        202
    );
    let r = replies(3);
    assert_eq!(
        r[2],
        "@alice `/promote staging` refused: alice is not one of the admins or promoters of 'staging' (carol)."
    );
    assert_eq!(
        bot.deliver(
            "issue_comment",
            "c4",
            &comment(504, "carol", "/promote staging")
        )
        .0,
        202
    );
    let r = replies(4);
    assert!(
        r[3].contains("release v1.0.0: wrote staging-v1.0.0.sql")
            || r[3].contains("staging-v1.0.0"),
        "{}",
        r[3]
    );
    assert!(
        r[3].contains("<details><summary><code>staging-v1.0.0.sql</code>"),
        "{}",
        r[3]
    );
    assert!(
        staging.query_strings("SELECT to_regclass('envgate_migrations')::text")[0][0].is_none(),
        "export_only: never written"
    );
    // Nonsense gets help, not silence.
    assert_eq!(
        bot.deliver(
            "issue_comment",
            "c5",
            &comment(505, "bob", "/promte staging")
        )
        .0,
        202
    );
    let r = replies(5);
    assert!(
        r[4].starts_with("@bob unknown command `/promte`.\n\nenvgate commands:"),
        "{}",
        r[4]
    );
    // Every command was acknowledged at once with 👀.
    let reactions: Vec<String> = fake
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/reactions"))
        .map(|q| format!("{} {}", q.path, q.json()["content"]))
        .collect();
    assert_eq!(reactions.len(), 5);
    assert!(reactions[0].starts_with("/repos/acme/shop/issues/comments/501/reactions \"eyes\""));
    // And audited, with the GitHub login as the actor.
    let audit: Vec<(String, String, String)> = bot
        .audit()
        .into_iter()
        .filter(|(a, ..)| a != "mode_change")
        .map(|(a, who, o, _)| (a, who, o))
        .collect();
    let want = [
        ("promote", "alice", "ok"),
        ("chatops", "bob", "refused"),
        ("chatops", "alice", "refused"),
        ("promote", "carol", "exported"),
        ("chatops", "bob", "refused"),
    ];
    assert_eq!(
        audit,
        want.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn two_replicas_on_one_postgres_store_process_each_delivery_once() {
    let control = PgDb::create("bot_control");
    let dev = PgDb::create("bot_replica_dev");
    ledger(&dev, &[("1", "users", USERS)]);
    let fake = FakeGitHub::start();
    let config = "[environments.dev]\nurl = \"${DEV_URL}\"\n";
    let a = Bot::start(&fake, Some(&control.url()), &[("dev", dev.url())], "");
    let b = Bot::start(&fake, Some(&control.url()), &[("dev", dev.url())], "");
    let mut shas = Vec::new();
    for i in 0..12 {
        let sha = fake.commit(
            REPO,
            &[("envgate.toml", config), ("migrations/1_users.sql", USERS)],
            &format!("c{i}"),
        );
        shas.push(sha.clone());
        let mut push = payload("push.json");
        push["ref"] = json!("refs/heads/main");
        push["after"] = json!(sha);
        // Each delivery reaches both replicas (a redelivery to the other).
        let id = format!("d-{i}");
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(first.deliver("push", &id, &push).0, 202);
        assert_eq!(second.deliver("push", &id, &push).0, 202);
    }
    fake.wait(Duration::from_secs(40), "12 completed check runs", |m| {
        m.check_runs
            .iter()
            .filter(|c| c.status == "completed")
            .count()
            == 12
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut created: Vec<String> =
        fake.with(|m| m.check_runs.iter().map(|c| c.head_sha.clone()).collect());
    created.sort();
    shas.sort();
    assert_eq!(created, shas, "one check run per delivery");
    let states = control.query_strings(
        "SELECT count(*), count(DISTINCT locked_by IS NULL), min(state), max(state) FROM jobs",
    );
    assert_eq!(states[0][0].as_deref(), Some("12"));
    assert_eq!(
        (states[0][2].as_deref(), states[0][3].as_deref()),
        (Some("done"), Some("done"))
    );
}

/// Chat-ops run the same observe step as the check run: `/status` shows
/// the mode notes, and a mode change a command sees is recorded with the
/// commit of envgate.toml the bot read (the default branch's head), not
/// whatever the bot's own working directory holds.
#[test]
fn chat_commands_observe_like_the_check_run() {
    let (dev, staging) = (PgDb::create("bot_obs_dev"), PgDb::create("bot_obs_stg"));
    let fake = FakeGitHub::start();
    let head = fake.commit(
        REPO,
        &[("envgate.toml", CONFIG), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.tag(REPO, "v1.0.0", &head);
    fake.branch(REPO, "main", &head);
    fake.permission(REPO, "alice", "write");
    let bot = Bot::start(
        &fake,
        None,
        &[("dev", dev.url()), ("staging", staging.url())],
        "",
    );
    let comment = |n: u64, text: &str| {
        let mut p = payload("issue_comment.created.json");
        p["comment"]["id"] = json!(n);
        p["comment"]["body"] = json!(text);
        p["comment"]["user"]["login"] = json!("alice");
        p["comment"]["user"]["type"] = json!("User");
        p["issue"]["number"] = json!(2);
        p
    };
    assert_eq!(
        bot.deliver("issue_comment", "o1", &comment(701, "/promote dev v1.0.0"))
            .0,
        202
    );
    fake.wait(Duration::from_secs(20), "the reply", |m| {
        m.comments.len() == 1
    });
    let details: Vec<String> = {
        let c = rusqlite::Connection::open(bot.dir.path().join("state.db")).unwrap();
        let mut st = c
            .prepare("SELECT details FROM audit_log WHERE action = 'mode_change' ORDER BY seq")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Promoting to dev reads dev only: its mode is recorded.
    assert_eq!(details.len(), 1, "{details:?}");
    for d in &details {
        assert!(
            d.contains(&format!("config at commit {head}")),
            "{d}\n{}",
            bot.log()
        );
    }
    assert_eq!(
        bot.deliver("issue_comment", "o2", &comment(702, "/status"))
            .0,
        202
    );
    fake.wait(Duration::from_secs(20), "the reply", |m| {
        m.comments.len() == 2
    });
    let status = fake.with(|m| m.comments[1].body.clone());
    assert!(status.starts_with("@alice status of main:"), "{status}");
    assert!(
        status.contains("detected 'staging': mode export_only (set `mode` to override)"),
        "{status}"
    );
}

/// A job that failed after starting its check run is run again later: the
/// second attempt takes up that check run instead of leaving it "in
/// progress" forever beside a new one (the same happens when a replica dies
/// holding the job and another takes it when its lease runs out).
#[test]
fn a_retried_job_completes_the_check_run_it_started() {
    let dev = PgDb::create("bot_retry");
    ledger(&dev, &[("1", "users", USERS)]);
    let fake = FakeGitHub::start();
    let config = "[environments.dev]\nurl = \"${DEV_URL}\"\n";
    let main = fake.commit(
        REPO,
        &[("envgate.toml", config), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    // Completing the check run fails four times in a row: the attempt gives
    // up after its in-place retries, and the job is retried.
    for _ in 0..4 {
        fake.script(
            "PATCH /repos/acme/shop/check-runs",
            502,
            &[],
            json!({"message": "Server Error"}),
        );
    }
    let bot = Bot::start(&fake, None, &[("dev", dev.url())], "");
    let mut push = payload("push.json");
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(main);
    assert_eq!(bot.deliver("push", "d-retry", &push).0, 202);
    fake.wait(Duration::from_secs(40), "the completed check run", |m| {
        m.check_runs.iter().any(|c| c.status == "completed")
    });
    let runs: Vec<(u64, String)> = fake.with(|m| {
        m.check_runs
            .iter()
            .filter(|c| c.name == "envgate")
            .map(|c| (c.id, c.status.clone()))
            .collect()
    });
    assert_eq!(runs, [(1001, "completed".to_owned())], "{}", bot.log());
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/check-runs"))
        .count();
    assert_eq!(posts, 1);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains(&format!("/commits/{main}/check-runs"))),
        "the second attempt looked for the check run it had started"
    );
}

/// The control store's `CREATE … IF NOT EXISTS` on a second start makes
/// PostgreSQL send notices; they are no news, and stay out of the log.
#[test]
fn a_postgres_control_store_logs_no_server_notices() {
    let store = PgDb::create("bot_notices");
    for start in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"{}\"\n\n[gitlab]\napi_url = \"http://127.0.0.1:9\"\ntoken = \"t0ken\"\nwebhook_secret = \"s3cret\"\n",
                store.url()
            ),
        )
        .unwrap();
        let bot = support::Served::start(dir, port, "info");
        let (status, _) = http(port, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        let log = bot.log();
        assert!(
            !log.contains("NOTICE") && !log.contains("already exists"),
            "start {start}:\n{log}"
        );
        assert!(!log.contains("deprecated"), "start {start}:\n{log}");
    }
}

/// The bot with a MariaDB environment and its credentials: the push's
/// check run reads the MySQL ledger and fails on its drift, the URL's
/// password nowhere in what reaches GitHub.
#[test]
fn a_mariadb_environment_in_the_bot() {
    use support::mysql::MyDb;
    let dev = MyDb::create("bot_my");
    dev.execute(&envgate::core::ledger_table::create_table_sql(
        envgate::core::sql::Dialect::Mysql,
        None,
    ));
    let old = envgate::core::checksum::ContentHash::of(b"CREATE TABLE users (id int);\n").tagged();
    dev.execute(&format!(
        "INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('1', 'users', '{old}', 'x', 1)"
    ));
    let fake = FakeGitHub::start();
    let config = "[environments.dev]\nurl = \"${DEV_URL}\"\n";
    let main = fake.commit(
        REPO,
        &[("envgate.toml", config), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    let url = dev.url();
    let bot = Bot::start(&fake, None, &[("dev", url.clone())], "");
    let mut push = payload("push.json");
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(main);
    assert_eq!(bot.deliver("push", "d-my", &push).0, 202);
    fake.wait(Duration::from_secs(20), "the completed check run", |m| {
        m.check_runs.iter().any(|c| c.status == "completed")
    });
    let run = fake.with(|m| {
        m.check_runs
            .iter()
            .find(|c| c.status == "completed")
            .cloned()
            .unwrap()
    });
    assert_eq!(
        run.conclusion.as_deref(),
        Some("failure"),
        "{:?}",
        run.output
    );
    let summary = run.output["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("drifted"), "{summary}");
    assert!(!summary.contains("unreachable"), "{summary}");
    for w in fake.writes() {
        assert!(
            !w.json().to_string().contains(&url),
            "the URL reached GitHub"
        );
    }
}

/// With `[schema_drift] review = true`, the push's check run compares the
/// live schemas: an index added by hand on prod fails it, in plain words,
/// and the shadow database is gone afterwards.
#[test]
fn the_check_run_shows_live_schema_drift() {
    let (dev, prod) = (PgDb::create("bot_sd_dev"), PgDb::create("bot_sd_prod"));
    support::ledger::seed(&dev, &[("1", "users", USERS)]);
    support::ledger::seed(&prod, &[("1", "users", USERS)]);
    prod.execute("CREATE INDEX users_tmp ON users (id DESC)");
    let shadow = support::unique_name("bot_sd_shadow");
    let (host, port) = support::server_addr();
    let fake = FakeGitHub::start();
    let config = format!(
        "[schema_drift]\nreview = true\nshadow_url = \"postgres://{}@{host}:{port}/{shadow}\"\n\
         [environments.dev]\nurl = \"${{DEV_URL}}\"\n[environments.prod]\nurl = \"${{PROD_URL}}\"\n",
        support::admin_user()
    );
    let main = fake.commit(
        REPO,
        &[("envgate.toml", &config), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    let bot = Bot::start(&fake, None, &[("dev", dev.url()), ("prod", prod.url())], "");
    let mut push = payload("push.json");
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(main);
    assert_eq!(bot.deliver("push", "d-schema", &push).0, 202);
    fake.wait(Duration::from_secs(30), "the completed check run", |m| {
        m.check_runs.iter().any(|c| c.status == "completed")
    });
    let run = fake.with(|m| {
        m.check_runs
            .iter()
            .find(|c| c.status == "completed")
            .cloned()
            .unwrap()
    });
    assert_eq!(
        run.conclusion.as_deref(),
        Some("failure"),
        "{:?}",
        run.output
    );
    let title = run.output["title"].as_str().unwrap_or_default();
    assert!(title.ends_with("; live schema differs in prod"), "{title}");
    let summary = run.output["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("#### Live schema"), "{summary}");
    assert!(
        summary.contains("| dev | matches what its 1 applied migration produces |"),
        "{summary}"
    );
    assert!(
        summary.contains("- prod has index `users_tmp` that no migration creates"),
        "{summary}"
    );
    let exists = support::admin()
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&shadow])
        .unwrap();
    assert!(exists.is_empty(), "the shadow database is dropped");
}

/// A pull request's new migrations are linted: each finding an annotation
/// at its file and line on the check run, an error fails it, and the
/// sticky comment has the findings in a collapsed section.
#[test]
fn a_pull_requests_migrations_are_linted_on_the_check_run_and_comment() {
    let dev = PgDb::create("bot_lint_dev");
    ledger(&dev, &[("1", "users", USERS)]);
    let config = "[environments.dev]\nurl = \"${DEV_URL}\"\n";
    let risky = "ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n";
    let fake = FakeGitHub::start();
    let main = fake.commit(
        REPO,
        &[("envgate.toml", config), ("migrations/1_users.sql", USERS)],
        "main",
    );
    fake.branch(REPO, "main", &main);
    let head = fake.commit(
        REPO,
        &[
            ("envgate.toml", config),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_email.sql", risky),
        ],
        "pr-lint",
    );
    fake.pull_files(REPO, 5, &[("migrations/2_email.sql", "added")]);
    let bot = Bot::start(&fake, None, &[("dev", dev.url())], "");
    let (status, _) = bot.deliver(
        "pull_request",
        "d-lint",
        &pr_payload("pull_request.opened.json", 5, &head),
    );
    assert_eq!(status, 202);
    fake.wait(Duration::from_secs(20), "the sticky comment", |m| {
        !m.comments.is_empty()
    });
    let writes = without_mode(&fake, &fake.writes());
    let done = writes
        .iter()
        .find(|w| w.method == "PATCH" && w.path.contains("/check-runs/"))
        .expect("the completed check run")
        .json();
    assert_eq!(done["conclusion"], "failure", "{done}");
    assert_eq!(
        done["output"]["title"], "1 pending; lint: 1 error",
        "{done}"
    );
    let annotations = done["output"]["annotations"].as_array().unwrap();
    let at = |rule: &str| {
        annotations
            .iter()
            .find(|a| a["title"].as_str().unwrap().starts_with(rule))
            .unwrap_or_else(|| panic!("no {rule} in {annotations:?}"))
    };
    let mixed = at("mixed-transaction");
    assert_eq!(mixed["path"], "migrations/2_email.sql");
    assert_eq!(mixed["start_line"], 2);
    assert_eq!(mixed["annotation_level"], "failure");
    let robust = at("prefer-robust-stmts");
    assert_eq!(robust["annotation_level"], "warning");
    assert_eq!(at("missing-down")["start_line"], 1);
    let comment = writes
        .iter()
        .find(|w| w.path.ends_with("/issues/5/comments"))
        .unwrap()
        .json()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(comment.contains("<details><summary>Lint: "), "{comment}");
    assert!(
        comment.contains("| `migrations/2_email.sql:2` | error | `mixed-transaction` |"),
        "{comment}"
    );
}
