//! The web console's matrix page, served: `envgate serve` with `[console]`
//! in front of the fake GitHub (a repository of 1,000 migrations) and three
//! real PostgreSQL environments holding 1,000, 900 and 800 of them. After a
//! login and warm-up requests (the blob cache filled), each request is
//! timed from the client on localhost: the server's time to read the
//! commit's envgate.toml and tree, the three ledgers, and render.
//!
//! ```text
//! cargo bench --bench console        # [-- --runs N] [--migrations M]  (DATABASE_URL, else 127.0.0.1:5432)
//! ```

mod common;
#[path = "../tests/support/fake_github.rs"]
mod fake_github;
#[path = "../tests/support/mod.rs"]
mod support;

use fake_github::{FakeGitHub, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{PgDb, request};

const REPO: &str = "acme/shop";

fn body(i: usize) -> String {
    format!(
        "CREATE TABLE bench_t{i} (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text NOT NULL);\n"
    )
}

fn version(i: usize) -> String {
    format!("{}", 20260101000000u64 + i as u64)
}

fn ledger(db: &PgDb, n: usize) {
    use envgate::core::{ledger_table, sql::Dialect};
    let mut sql = ledger_table::create_table_sql(Dialect::Postgres, None);
    sql.push(';');
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "('{}', 'create_bench_t{i}', '{}', now(), 'bench', 3, true)",
                version(i),
                support::ledger::hash(&body(i))
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO envgate_migrations (version, name, sha256, applied_at, applied_by, execution_ms, success) VALUES {};",
        rows.join(", ")
    ));
    db.execute(&sql);
}

fn local(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").expect(url);
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

fn main() {
    common::measure_child_mode();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs = common::arg("--runs", 30) as usize;
    // The repository's migrations; the environments hold all, 90% and 80%.
    let n = common::arg("--migrations", 1_000) as usize;
    let fake = FakeGitHub::start();
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("migrations/{}_create_bench_t{i}.sql", version(i)),
                body(i),
            )
        })
        .chain([(
            "envgate.toml".to_owned(),
            "[environments.dev]\nurl = \"${DEV_URL}\"\n[environments.staging]\nurl = \"${STAGING_URL}\"\n\
             [environments.prod]\nurl = \"${PROD_URL}\"\n"
                .to_owned(),
        )])
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let main = fake.commit(REPO, &refs, "main");
    fake.branch(REPO, "main", &main);
    let envs: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench_console")).collect();
    for (db, n) in envs.iter().zip([n, n * 9 / 10, n * 8 / 10]) {
        ledger(db, n);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = 1\n\n\
             [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"bench-secret\"\napi_url = \"{}\"\n\
             client_id = \"{OAUTH_CLIENT_ID}\"\nclient_secret = \"{OAUTH_CLIENT_SECRET}\"\nweb_url = \"{}\"\n\n\
             [credentials]\ndir = \"creds\"\n\n\
             [console]\npublic_url = \"http://127.0.0.1:{port}\"\nsession_key = \"0123456789abcdef0123456789abcdef-bench\"\n",
            fake_github::APP_ID,
            key.display(),
            fake.url,
            fake.url
        ),
    )
    .unwrap();
    let urls: Vec<(&str, String)> = ["dev", "staging", "prod"]
        .into_iter()
        .zip(&envs)
        .map(|(e, db)| (e, format!("{}?sslmode=disable", db.url())))
        .collect();
    support::write_credentials(dir.path(), REPO, &urls);
    let served = support::Served::start(dir, port, "warn");

    // Log in through the fake's OAuth flow.
    let start = request(
        port,
        "GET",
        "/console/login?back=/console/acme/shop",
        &[],
        "",
    );
    let oauth = start.cookie("envgate_oauth");
    let (fake_port, path) = local(start.header("location").unwrap());
    let forge = request(fake_port, "GET", &path, &[], "");
    let (_, callback) = local(forge.header("location").unwrap());
    let done = request(port, "GET", &callback, &[("Cookie", &oauth)], "");
    let session = done.cookie("envgate_session");

    let get = |accept: &str| {
        request(
            served.port,
            "GET",
            "/console/acme/shop",
            &[("Cookie", &session), ("Accept", accept)],
            "",
        )
    };
    for _ in 0..3 {
        let a = get("text/html");
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let time = |accept: &str| -> (Vec<Duration>, usize) {
        let mut t = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let a = get(accept);
            t.push(started.elapsed());
            assert_eq!(a.status, 200);
            size = a.body.len();
        }
        t.sort();
        (t, size)
    };
    let (html, html_size) = time("text/html");
    let (json, json_size) = time("application/json");
    let gzip_size = |accept: &str| -> usize {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        write!(
            s,
            "GET /console/acme/shop HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: {session}\r\nAccept: {accept}\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
        assert!(head.contains("content-encoding: gzip"), "{head}");
        out.len() - at
    };
    let (html_gz, json_gz) = (gzip_size("text/html"), gzip_size("application/json"));
    let row = |name: &str, t: &[Duration], size: usize, gz: usize| {
        println!(
            "| {name} | {} | {} | {} | {:.1} KiB | {:.1} KiB |",
            common::ms(t[t.len() / 2]),
            common::ms(t[0]),
            common::ms(t[((t.len() as f64 * 0.95).ceil() as usize).min(t.len()) - 1]),
            size as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    };
    println!(
        "| console matrix page, {n} migrations × 3 environments (warm) | median | min | p95 | size | gzip |"
    );
    println!("|---|---|---|---|---|---|");
    row("HTML", &html, html_size, html_gz);
    row("JSON twin", &json, json_size, json_gz);
}
