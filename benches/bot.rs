//! `envgate serve`, measured as a process on loopback.
//!
//! ```text
//! apt-get install wrk              # scripts/bench-deps.sh does it
//! cargo bench --bench bot          # [-- --seconds N --runs N]
//! ```
//!
//! 1. Intake: signed ~25 KB `pull_request` deliveries (GitHub's published
//!    example), each with its own delivery id, from `wrk` (1 thread, 32
//!    connections) against a replica that only takes deliveries
//!    (`workers = 0`), SQLite control store. Accepted deliveries per
//!    second and the latency percentiles `wrk` measures; every delivery is
//!    checked to be in the queue afterwards.
//! 2. End to end: a push to a repository of 1,000 migrations, 3 PostgreSQL
//!    environments with 1,000 ledger rows each, a fake GitHub API on
//!    loopback: from the delivery's POST to the check run's completion as
//!    the API sees it. The first run fetches every blob (cold); later runs
//!    are new commits whose blobs the bot already has (warm).

mod common;
#[path = "../tests/support/fake_github.rs"]
mod fake_github;
#[path = "../tests/support/mod.rs"]
mod support;

use common::arg;
use fake_github::FakeGitHub;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{PgDb, Served};

const SECRET: &str = "bench-secret";
const REPO: &str = "acme/shop";

fn serve(api: &str, workers: usize, urls: &[(&str, String)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = {workers}\n\
             [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\napi_url = \"{api}\"\n\
             [credentials]\ndir = \"creds\"\n",
            fake_github::APP_ID,
            key.display()
        ),
    )
    .unwrap();
    support::write_credentials(dir.path(), REPO, urls);
    Served::start(dir, port, "warn")
}

fn post(port: u16, event: &str, delivery: &str, body: &[u8]) -> u16 {
    let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), body);
    let headers = [
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    support::http(port, "POST", "/webhooks/github", &headers, body).0
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["repository"]["name"] = json!("shop");
    v["repository"]["owner"]["login"] = json!("acme");
    v["repository"]["default_branch"] = json!("main");
    v["installation"] = json!({"id": fake_github::INSTALLATION});
    v
}

fn intake(seconds: u64) {
    let wrk = support::which("wrk")
        .expect("wrk is not installed: apt-get install wrk (scripts/bench-deps.sh)");
    let bot = serve("http://127.0.0.1:9", 0, &[]);
    let body = fixture("pull_request.opened.json").to_string();
    let sig = envgate::core::webhook::sign_github(SECRET.as_bytes(), body.as_bytes());
    let lua_body = body.replace('\\', "\\\\").replace('"', "\\\"");
    let script = bot.dir.path().join("deliver.lua");
    std::fs::write(
        &script,
        format!(
            r#"
local counter = 0
local prefix = ""
function init(args) prefix = args[1] end
wrk.method = "POST"
wrk.body = "{lua_body}"
function request()
  counter = counter + 1
  return wrk.format(nil, "/webhooks/github", {{
    ["X-GitHub-Event"] = "pull_request",
    ["X-GitHub-Delivery"] = prefix .. "-" .. counter,
    ["X-Hub-Signature-256"] = "{sig}",
    ["Content-Type"] = "application/json",
  }})
end
"#
        ),
    )
    .unwrap();
    // Warm up, then measure.
    let url = format!("http://127.0.0.1:{}/webhooks/github", bot.port);
    // Each run has its own delivery-id prefix: none is a redelivery.
    let run = |secs: u64, prefix: &str| {
        let out = Command::new(&wrk)
            .args(["-t1", "-c32", &format!("-d{secs}s"), "--latency", "-s"])
            .arg(&script)
            .arg(&url)
            .args(["--", prefix])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let requests = |out: &str| -> i64 {
        out.lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("wrk printed no request count")
    };
    let sent = requests(&run(2, "warmup"));
    let out = run(seconds, "measured");
    let sent = sent + requests(&out);
    let value = |label: &str| -> String {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.trim_start()[label.len()..].trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    let errors = out
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map_or("0".to_owned(), |l| {
            l.rsplit(':').next().unwrap().trim().to_owned()
        });
    let queued: i64 = rusqlite::Connection::open(bot.dir.path().join("state.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    // wrk counts only the responses it read; up to one request per
    // connection per run may be cut off after the server queued it.
    assert!(
        queued >= sent && queued <= sent + 64,
        "{sent} deliveries answered but {queued} jobs queued"
    );
    println!(
        "## Intake ({} byte signed pull_request deliveries, SQLite store, wrk -t1 -c32 -d{seconds}s)\n",
        body.len()
    );
    println!("| accepted/s | p50 | p75 | p90 | p99 | non-2xx | answered / queued |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {errors} | {sent} / {queued} |\n",
        value("Requests/sec:"),
        value("50%"),
        value("75%"),
        value("90%"),
        value("99%"),
    );
    eprintln!("{out}");
}

fn end_to_end(runs: usize) {
    let n = 1000;
    let dbs = [
        PgDb::create("bench_bot_dev"),
        PgDb::create("bench_bot_staging"),
        PgDb::create("bench_bot_prod"),
    ];
    let mut files: Vec<(String, String)> = vec![(
        "envgate.toml".into(),
        "[environments.dev]\nurl = \"x\"\n[environments.staging]\nurl = \"x\"\n[environments.prod]\nurl = \"x\"\n".into(),
    )];
    let mut ledger =
        envgate::core::ledger_table::create_table_sql(envgate::core::sql::Dialect::Postgres, None);
    ledger.push_str(";\nINSERT INTO envgate_migrations (version, name, sha256, applied_by, execution_ms, success) VALUES ");
    let mut values = Vec::new();
    for i in 0..n {
        let v = format!("20260101{:06}", i);
        let body = format!(
            "CREATE TABLE bench_t{i} (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text);\nCREATE INDEX bench_t{i}_owner ON bench_t{i} (owner_id);\n"
        );
        values.push(format!(
            "('{v}', 't{i}', '{}', 'bench', 1, true)",
            envgate::core::checksum::ContentHash::of(body.as_bytes()).tagged()
        ));
        files.push((format!("migrations/{v}_t{i}.sql"), body));
    }
    ledger.push_str(&values.join(","));
    for db in &dbs {
        db.execute(&ledger);
    }
    let fake = FakeGitHub::start();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let urls = [
        ("dev", dbs[0].url()),
        ("staging", dbs[1].url()),
        ("prod", dbs[2].url()),
    ];
    let bot = serve(&fake.url, 2, &urls);
    let mut times = Vec::new();
    for run in 0..runs {
        let sha = fake.commit(REPO, &refs, &format!("run-{run}"));
        let mut push = fixture("push.json");
        push["ref"] = json!("refs/heads/main");
        push["after"] = json!(sha);
        let body = push.to_string();
        let start = Instant::now();
        assert_eq!(
            post(bot.port, "push", &format!("e2e-{run}"), body.as_bytes()),
            202
        );
        loop {
            let done = fake.with(|m| {
                m.check_runs
                    .iter()
                    .any(|c| c.head_sha == sha && c.status == "completed")
            });
            if done {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no check run for run {run}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        times.push(start.elapsed());
        let conclusion = fake.with(|m| {
            m.check_runs
                .iter()
                .find(|c| c.head_sha == sha)
                .and_then(|c| c.conclusion.clone())
        });
        assert_eq!(conclusion.as_deref(), Some("success"));
    }
    let cold = times[0];
    let mut warm: Vec<Duration> = times[1..].to_vec();
    warm.sort();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "## End to end (1,000 migrations × 3 PostgreSQL environments, delivery → completed check run)\n"
    );
    println!("| cold (first commit) | warm median | warm p95 | warm max | runs |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} |",
        ms(cold),
        ms(warm[warm.len() / 2]),
        ms(warm[(warm.len() * 95 / 100).min(warm.len() - 1)]),
        ms(*warm.last().unwrap()),
        runs
    );
    let requests = fake.requests().len();
    println!(
        "\n{requests} API requests in all ({} blob fetches).",
        fake.requests()
            .iter()
            .filter(|r| r.path.contains("/git/blobs/"))
            .count()
    );
}

fn main() {
    // `cargo bench` passes --bench; anything else is ours.
    let seconds = arg("--seconds", 10);
    let runs = arg("--runs", 20) as usize;
    intake(seconds);
    end_to_end(runs.max(2));
}
