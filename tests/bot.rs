//! The bot in process — its router and a worker, started by
//! `envgate::serve::spawn` — against the fake GitHub API, as scenarios:
//!
//! ```text
//! bot.comment("alice", "/promote dev v1.0.0");
//! assert_eq!(bot.next_write(), "POST …/reactions");
//! assert!(bot.next_comment().starts_with("@alice `/promote dev v1.0.0`:"));
//! ```
//!
//! Every write the bot makes (POST, PATCH, DELETE; token exchanges aside)
//! must be read by the test: one left unread fails it.

#[path = "support/fake_github.rs"]
mod fake_github;
mod support;

use fake_github::{FakeGitHub, INSTALLATION};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{PgDb, http};

const SECRET: &str = "harness-secret";
const REPO: &str = "acme/shop";
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";
const CONFIG: &str = "[environments.dev]\nurl = \"${DEV_URL}\"\n\n[environments.staging]\nurl = \"${STAGING_URL}\"\n";

struct Bot {
    fake: FakeGitHub,
    running: Option<envgate::serve::Running>,
    _dir: tempfile::TempDir,
    /// Writes read so far.
    read: usize,
    deliveries: u64,
    _dbs: Vec<PgDb>,
}

impl Bot {
    /// A repository with envgate.toml and `files` on main, tagged `v1.0.0`,
    /// two PostgreSQL environments, and the bot serving it.
    fn start(files: &[(&str, &str)]) -> Bot {
        let fake = FakeGitHub::start();
        let mut all = vec![("envgate.toml", CONFIG)];
        all.extend_from_slice(files);
        let head = fake.commit(REPO, &all, "main");
        fake.branch(REPO, "main", &head);
        fake.tag(REPO, "v1.0.0", &head);
        let (dev, staging) = (PgDb::create("harness_dev"), PgDb::create("harness_stg"));
        let dir = tempfile::tempdir().unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\ncontrol_store = \"sqlite://{}\"\nworkers = 1\n\n\
                 [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\napi_url = \"{}\"\n\n\
                 [credentials]\ndir = \"{}\"\n",
                dir.path().join("state.db").display(),
                fake_github::APP_ID,
                key.display(),
                fake.url,
                dir.path().join("creds").display(),
            ),
        )
        .unwrap();
        support::write_credentials(
            dir.path(),
            REPO,
            &[("dev", dev.url()), ("staging", staging.url())],
        );
        let cfg = envgate::serve::config::load(Some(&dir.path().join("serve.toml"))).unwrap();
        let running = envgate::serve::spawn(cfg).unwrap();
        Bot {
            fake,
            running: Some(running),
            _dir: dir,
            read: 0,
            deliveries: 0,
            _dbs: vec![dev, staging],
        }
    }

    fn port(&self) -> u16 {
        self.running.as_ref().unwrap().address.port()
    }

    /// Delivers an event, signed; asserts the bot queued it.
    fn deliver(&mut self, event: &str, payload: Value) {
        assert_eq!(self.send(event, payload), "queued", "{event}");
    }

    /// Delivers an event, signed; what the bot answered (202 in any case).
    fn send(&mut self, event: &str, payload: Value) -> String {
        self.deliveries += 1;
        let body = payload.to_string().into_bytes();
        let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), &body);
        let delivery = format!("d{}", self.deliveries);
        let (status, text) = http(
            self.port(),
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", &delivery),
                ("X-Hub-Signature-256", &sig),
                ("Content-Type", "application/json"),
            ],
            &body,
        );
        assert_eq!(status, 202, "{event}: {text}");
        text.trim().to_owned()
    }

    /// `who` comments `text` on pull request 2.
    fn comment(&mut self, who: &str, text: &str) {
        let p = self.comment_payload(who, text);
        self.deliver("issue_comment", p);
    }

    fn comment_payload(&mut self, who: &str, text: &str) -> Value {
        self.fake.permission(REPO, "alice", "write");
        self.fake.permission(REPO, "bob", "read");
        let mut p = payload("issue_comment.created.json");
        p["comment"]["id"] = json!(500 + self.deliveries);
        p["comment"]["body"] = json!(text);
        p["comment"]["user"]["login"] = json!(who);
        p["comment"]["user"]["type"] = json!("User");
        p["issue"]["number"] = json!(2);
        p["issue"]["pull_request"] =
            json!({"url": "https://api.github.com/repos/acme/shop/pulls/2"});
        p
    }

    /// The next write the bot makes ("METHOD /path"), waiting for it.
    fn next_write(&mut self) -> fake_github::Request {
        let start = Instant::now();
        loop {
            let writes = self.fake.writes();
            if let Some(w) = writes.get(self.read) {
                self.read += 1;
                return w.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no write after {:?}",
                writes.iter().map(|w| w.line()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next write, which must create a comment: its body.
    fn next_comment(&mut self) -> String {
        let w = self.next_write();
        assert!(
            w.method == "POST" && w.path.ends_with("/comments"),
            "expected a new comment, got {}",
            w.line()
        );
        w.json()["body"].as_str().unwrap().to_owned()
    }

    /// The next write, which must be this one ("POST /repos/…").
    fn expect(&mut self, line: &str) -> Value {
        let w = self.next_write();
        assert_eq!(w.line(), line);
        w.json()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // What the bot does after the last read would otherwise go unseen.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(r) = self.running.take() {
            r.stop().unwrap();
        }
        let unread: Vec<String> = self.fake.writes()[self.read..]
            .iter()
            .map(|w| w.line())
            .collect();
        assert!(
            unread.is_empty(),
            "writes the test did not read: {unread:?}"
        );
    }
}

fn payload(name: &str) -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github")
            .join(name),
    )
    .unwrap();
    let mut p: Value = serde_json::from_str(&text).unwrap();
    p["repository"]["name"] = json!("shop");
    p["repository"]["full_name"] = json!(REPO);
    p["repository"]["owner"]["login"] = json!("acme");
    p["repository"]["default_branch"] = json!("main");
    p["installation"] = json!({"id": INSTALLATION});
    p
}

const REACT: &str = "POST /repos/acme/shop/issues/comments/";

#[test]
fn promote_by_a_writer_is_applied_and_answered() {
    let mut bot = Bot::start(&[("migrations/1_users.sql", USERS)]);
    bot.comment("alice", "/promote dev v1.0.0");
    assert!(bot.next_write().line().starts_with(REACT), "👀 first");
    let reply = bot.next_comment();
    assert!(
        reply.starts_with("@alice `/promote dev v1.0.0`:"),
        "{reply}"
    );
    assert!(
        reply.contains("release v1.0.0: applied 1 migration to 'dev' as alice"),
        "{reply}"
    );
}

#[test]
fn promote_by_a_reader_is_refused_with_why() {
    let mut bot = Bot::start(&[("migrations/1_users.sql", USERS)]);
    bot.comment("bob", "/promote dev");
    assert!(bot.next_write().line().starts_with(REACT));
    assert_eq!(
        bot.next_comment(),
        "@bob `/promote dev` refused: bob has read access to acme/shop; promoting and rolling back need write access."
    );
}

#[test]
fn help_and_mistakes_get_the_help() {
    let mut bot = Bot::start(&[]);
    bot.comment("bob", "/help");
    assert!(bot.next_write().line().starts_with(REACT));
    assert_eq!(
        bot.next_comment(),
        format!("@bob {}", envgate::core::chatops::help())
    );
    bot.comment("bob", "LGTM\n\n/promot staging");
    assert!(bot.next_write().line().starts_with(REACT));
    assert_eq!(
        bot.next_comment(),
        format!(
            "@bob unknown command `/promot`.\n\n{}",
            envgate::core::chatops::help()
        )
    );
    // Prose, quotes and code are not commands: ignored at the door,
    // nothing is written.
    let p = bot.comment_payload("bob", "> /promote prod\n\n```\n/rollback prod v1\n```");
    assert_eq!(bot.send("issue_comment", p), "ignored");
}

#[test]
fn status_shows_the_matrix_with_its_mode_notes() {
    let mut bot = Bot::start(&[("migrations/1_users.sql", USERS)]);
    bot.comment("bob", "/status");
    assert!(bot.next_write().line().starts_with(REACT));
    let reply = bot.next_comment();
    assert!(reply.starts_with("@bob status of main:"), "{reply}");
    assert!(
        reply.contains("| `1_users` | ⏳ pending | ⏳ pending |"),
        "{reply}"
    );
    assert!(
        reply.contains("detected 'staging': mode export_only"),
        "{reply}"
    );
}

#[test]
fn a_pull_request_gets_its_check_and_one_note() {
    let mut bot = Bot::start(&[("migrations/1_users.sql", USERS)]);
    let head = bot.fake.commit(
        REPO,
        &[
            ("envgate.toml", CONFIG),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        "pr",
    );
    bot.fake
        .pull_files(REPO, 2, &[("migrations/2_orders.sql", "added")]);
    bot.fake.pull_head(REPO, 2, &head);
    let mut p = payload("pull_request.opened.json");
    p["number"] = json!(2);
    p["pull_request"]["number"] = json!(2);
    p["pull_request"]["head"]["sha"] = json!(head);
    bot.deliver("pull_request", p);
    // The request changes no environment's mode: its envgate/mode check
    // passes first.
    assert_eq!(
        bot.expect("POST /repos/acme/shop/check-runs"),
        json!({"name": "envgate/mode", "head_sha": head, "status": "in_progress"})
    );
    let mode = bot.expect("PATCH /repos/acme/shop/check-runs/1001");
    assert_eq!(mode["conclusion"], "success");
    assert_eq!(
        bot.expect("POST /repos/acme/shop/check-runs"),
        json!({"name": "envgate", "head_sha": head, "status": "in_progress"})
    );
    let done = bot.expect("PATCH /repos/acme/shop/check-runs/1002");
    assert_eq!(done["conclusion"], "neutral");
    assert_eq!(done["output"]["title"], "4 pending");
    let note = bot.next_comment();
    assert!(note.starts_with("<!-- envgate:pr -->"), "{note}");
    assert!(
        note.contains("| `2_orders` | ⏳ pending | ⏳ pending |"),
        "{note}"
    );
}
