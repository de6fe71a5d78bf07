//! `envgate serve` at organisation scale: two replicas on one PostgreSQL
//! control store, many repositories, a steady stream of deliveries, and one
//! replica killed part-way.
//!
//! ```text
//! cargo bench --bench bot_org      # [-- --repos 200 --migrations 300 --deliveries 2000 --rate 60]
//! ```
//!
//! Set-up: `--repos` repositories on the fake GitHub API (loopback), each
//! with `--migrations` migrations of its own and three environments, each
//! environment its own PostgreSQL database holding every migration in its
//! envgate ledger; two `envgate serve` replicas (4 workers each) share one
//! PostgreSQL control store and the same credentials. Deliveries — pushes
//! to main and pull requests, each with a new commit, spread round-robin
//! over the repositories, so that each repository's first job reads every
//! blob and later ones are warm — are posted at `--rate` per second,
//! alternately to the two replicas.
//!
//! Two scenarios: both replicas throughout; then the same with replica A
//! killed (`SIGKILL`) a third of the way through, its share of the rest
//! posted to B. Reported: jobs completed per second, delivery → completed
//! check run latency (p50/p95/p99/max), API requests per job, PostgreSQL
//! connections at peak (polled), each replica's peak memory (`VmHWM`), and
//! the exactly-once check: every delivery's commit has exactly one
//! completed `envgate` check run, none lost, none doubled.

mod common;
#[path = "../tests/support/fake_github.rs"]
mod fake_github;
#[path = "../tests/support/mod.rs"]
mod support;

use common::arg;
use fake_github::FakeGitHub;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{PgDb, Served};

const SECRET: &str = "bench-secret";

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn repo_name(r: usize) -> String {
    format!("acme/svc{r:03}")
}

/// A repository's files: envgate.toml and its own migrations.
fn files(r: usize, n: usize) -> Vec<(String, String)> {
    let mut out = vec![(
        "envgate.toml".to_owned(),
        "[environments.dev]\nurl = \"x\"\n[environments.staging]\nurl = \"x\"\n[environments.prod]\nurl = \"x\"\n"
            .to_owned(),
    )];
    for i in 0..n {
        out.push((
            format!("migrations/20260101{i:06}_t{i}.sql"),
            format!(
                "-- svc{r}\nCREATE TABLE svc{r}_t{i} (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text);\n"
            ),
        ));
    }
    out
}

fn ledger_sql(files: &[(String, String)]) -> String {
    let mut sql =
        envgate::core::ledger_table::create_table_sql(envgate::core::sql::Dialect::Postgres, None);
    sql.push_str(";\nINSERT INTO envgate_migrations (version, name, sha256, applied_by, execution_ms, success) VALUES ");
    let rows: Vec<String> = files
        .iter()
        .filter_map(|(p, body)| {
            let stem = p.strip_prefix("migrations/")?.strip_suffix(".sql")?;
            let (v, name) = stem.split_once('_')?;
            Some(format!(
                "('{v}', '{name}', '{}', 'bench', 1, true)",
                envgate::core::checksum::ContentHash::of(body.as_bytes()).tagged()
            ))
        })
        .collect();
    sql.push_str(&rows.join(","));
    sql
}

fn replica(api: &str, store: &str, creds: &[(String, Vec<(&str, String)>)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"{store}\"\nworkers = 4\n\
             [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\napi_url = \"{api}\"\n\
             [credentials]\ndir = \"creds\"\n",
            fake_github::APP_ID,
            key.display()
        ),
    )
    .unwrap();
    for (repo, urls) in creds {
        support::write_credentials(dir.path(), repo, urls);
    }
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

fn payload(template: &Value, repo: &str) -> Value {
    let mut p = template.clone();
    let (owner, name) = repo.split_once('/').unwrap();
    p["repository"]["name"] = json!(name);
    p["repository"]["full_name"] = json!(repo);
    p["repository"]["owner"]["login"] = json!(owner);
    p["repository"]["default_branch"] = json!("main");
    p["installation"] = json!({"id": fake_github::INSTALLATION});
    p
}

fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Setup {
    fake: FakeGitHub,
    store: PgDb,
    creds: Vec<(String, Vec<(&'static str, String)>)>,
    files: Vec<Vec<(String, String)>>,
    _dbs: Vec<PgDb>,
}

fn setup(repos: usize, n: usize) -> Setup {
    let fake = FakeGitHub::start();
    let mut dbs = Vec::new();
    let mut creds = Vec::new();
    let mut all = Vec::new();
    for r in 0..repos {
        let f = files(r, n);
        let sql = ledger_sql(&f);
        let mut urls = Vec::new();
        for env in ["dev", "staging", "prod"] {
            let db = PgDb::create("bench_org");
            db.execute(&sql);
            urls.push((env, format!("{}?sslmode=disable", db.url())));
            dbs.push(db);
        }
        creds.push((repo_name(r), urls));
        all.push(f);
    }
    Setup {
        fake,
        store: PgDb::create("bench_org_store"),
        creds,
        files: all,
        _dbs: dbs,
    }
}

fn scenario(s: &Setup, label: &str, deliveries: usize, rate: u64, kill_at: Option<usize>) {
    let store = format!("{}?sslmode=disable", s.store.url());
    s.store
        .execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    let mut a = Some(replica(&s.fake.url, &store, &s.creds));
    let b = replica(&s.fake.url, &store, &s.creds);
    let (a_pid, b_pid) = (a.as_ref().unwrap().pid(), b.pid());
    let requests_before = s.fake.with(|m| m.requests.len());
    let push = fixture("push.json");
    let pull = fixture("pull_request.synchronize.json");
    let repos = s.files.len();

    // Connections at peak, polled.
    let stop = Arc::new(AtomicBool::new(false));
    let peak_conns = Arc::new(AtomicI64::new(0));
    let poller = {
        let (stop, peak) = (stop.clone(), peak_conns.clone());
        let admin = support::admin_url();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let n: i64 = c
                    .query_one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'", &[])
                    .unwrap()
                    .get(0);
                peak.fetch_max(n - 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Completion times, polled from the fake API's check runs.
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let done: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let (stop, posted, done) = (stop.clone(), posted.clone(), done.clone());
        let state = s.fake.state.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let finished: Vec<String> = state
                    .lock()
                    .unwrap()
                    .check_runs
                    .iter()
                    .filter(|c| c.name == "envgate" && c.status == "completed")
                    .map(|c| c.head_sha.clone())
                    .collect();
                let now = Instant::now();
                let posted = posted.lock().unwrap();
                let mut done = done.lock().unwrap();
                for sha in finished {
                    if posted.contains_key(&sha) {
                        done.entry(sha).or_insert(now);
                    }
                }
                drop(done);
                drop(posted);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut shas = Vec::with_capacity(deliveries);
    for d in 0..deliveries {
        if Some(d) == kill_at {
            // SIGKILL: no shutdown, its running jobs are left claimed.
            drop(a.take());
        }
        let r = d % repos;
        let repo = repo_name(r);
        let refs: Vec<(&str, &str)> = s.files[r]
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_str()))
            .collect();
        let sha = s.fake.commit(&repo, &refs, &format!("{label}-{d}"));
        let (event, body) = if d % 3 == 2 {
            let number = 100 + d as u64;
            s.fake.pull_head(&repo, number, &sha);
            let mut p = payload(&pull, &repo);
            p["number"] = json!(number);
            p["pull_request"]["number"] = json!(number);
            p["pull_request"]["head"]["sha"] = json!(sha);
            ("pull_request", p)
        } else {
            let mut p = payload(&push, &repo);
            p["ref"] = json!("refs/heads/main");
            p["after"] = json!(sha);
            ("push", p)
        };
        let port = match &a {
            Some(a) if d % 2 == 0 => a.port,
            _ => b.port,
        };
        let due = start + interval * d as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        posted.lock().unwrap().insert(sha.clone(), Instant::now());
        let status = post(
            port,
            event,
            &format!("{label}-{d}"),
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 202, "delivery {d}");
        shas.push(sha);
    }
    // Every delivery's check run completes (a killed replica's jobs once
    // their lease runs out).
    let deadline = Instant::now() + support_lease() + Duration::from_secs(120);
    while done.lock().unwrap().len() < deliveries {
        assert!(
            Instant::now() < deadline,
            "{} of {deliveries} deliveries never completed",
            deliveries - done.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = done
        .lock()
        .unwrap()
        .values()
        .max()
        .unwrap()
        .duration_since(start);
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    watcher.join().unwrap();

    // Exactly once: one completed envgate check run per delivery's commit.
    let per_sha: HashMap<String, usize> = s.fake.with(|m| {
        let mut counts = HashMap::new();
        for c in m.check_runs.iter().filter(|c| c.name == "envgate") {
            *counts.entry(c.head_sha.clone()).or_default() += 1;
        }
        counts
    });
    let doubled = shas
        .iter()
        .filter(|s| per_sha.get(*s).copied().unwrap_or(0) > 1)
        .count();
    let lost = shas.iter().filter(|s| !per_sha.contains_key(*s)).count();
    let requests = s.fake.with(|m| m.requests.len()) - requests_before;

    let posted = posted.lock().unwrap();
    let done = done.lock().unwrap();
    let mut latencies: Vec<Duration> = shas
        .iter()
        .map(|s| done[s].duration_since(posted[s]))
        .collect();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).min(latencies.len()) - 1];
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {label} | {deliveries} | {:.1} | {} | {} | {} | {} | {:.1} | {} | {} / {} MiB | {lost} lost, {doubled} doubled |",
        deliveries as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.95)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap()),
        requests as f64 / deliveries as f64,
        peak_conns.load(Ordering::Relaxed),
        if kill_at.is_some() {
            "killed".to_owned()
        } else {
            (peak_kib(a_pid) / 1024).to_string()
        },
        peak_kib(b_pid) / 1024,
    );
    assert_eq!((lost, doubled), (0, 0), "exactly once");
}

/// How long a killed replica's claim holds a job (serve's lease).
fn support_lease() -> Duration {
    envgate::serve::config::LEASE
}

fn main() {
    common::measure_child_mode();
    let repos = arg("--repos", 200) as usize;
    let n = arg("--migrations", 300) as usize;
    let deliveries = arg("--deliveries", 2000) as usize;
    let rate = arg("--rate", 60);
    let started = Instant::now();
    let s = setup(repos, n);
    eprintln!(
        "set up {repos} repositories × 3 databases in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "## {repos} repositories × {n} migrations × 3 environments, 2 replicas, deliveries at {rate}/s\n"
    );
    println!(
        "| scenario | deliveries | jobs/s | p50 | p95 | p99 | max | API requests/job | PG connections at peak | peak RSS A / B | exactly once |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    scenario(&s, "both replicas", deliveries, rate, None);
    scenario(
        &s,
        "replica A killed at 1/3",
        deliveries,
        rate,
        Some(deliveries / 3),
    );
}
