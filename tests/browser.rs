//! The matrix page in a real browser: Debian's chromium, driven headless by
//! playwright-core (`tests/browser/page.mjs`): axe-core finds no serious or
//! critical accessibility violation, the filter is reachable by keyboard,
//! and a migration whose name is markup runs nothing. `scripts/test.sh`
//! installs chromium and the npm packages; without them this test fails
//! and says what to run.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use support::{PgDb, Project};

fn tools() -> PathBuf {
    let dir = std::env::var_os("ENVGATE_BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-tools"));
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/axe-core").is_dir(),
        "playwright-core and axe-core are not installed under {}: run scripts/test.sh (it installs them and \
         Debian's chromium), or `npm install --prefix {0}` with tests/browser/package.json",
        dir.display()
    );
    dir
}

/// Opens `url` in chromium; the page's report.
pub fn open(url: &str, extra: &[&str]) -> Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (scripts/test.sh does)"
    );
    let out = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page.mjs"))
        .arg(url)
        .args(extra)
        .env("ENVGATE_BROWSER_TOOLS", tools())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs (install nodejs)");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn serious(report: &Value) -> Vec<Value> {
    report["axe"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .cloned()
        .collect()
}

#[test]
fn the_matrix_page_is_accessible_and_runs_no_markup() {
    let dev = PgDb::create("browser_dev");
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n[environments.staging]\nurl = \"sqlite://staging.db\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n",
            dev.url()
        ),
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY);\n",
            ),
            ("2_two.sql", "SELECT 1;\n"),
            (
                "3_fails.sql",
                "SELECT '<script>window.__xss=2</script>'::int;\n",
            ),
        ],
    );
    let _ = p.envgate(&["apply", "--env", "dev"]);
    let _ = p.envgate(&["apply", "--env", "staging", "--up-to", "1"]);
    // A ledger row the repository does not have, named with markup.
    dev.execute(&support::ledger::insert(
        "envgate_migrations",
        "9",
        "<img src=x onerror=window.__xss=1>",
        "sha256:00",
        true,
        "2026-11-01 10:00:00+00",
    ));
    p.write(
        "migrations/1_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    let run = p.envgate(&["status", "--format", "html"]);
    let page = p.path().join("matrix.html");
    std::fs::write(&page, &run.stdout).unwrap();
    let url = format!("file://{}", page.display());

    for width in ["1280", "390"] {
        let report = open(&url, &["--width", width]);
        assert_eq!(
            serious(&report),
            Vec::<Value>::new(),
            "at {width} px: {report}"
        );
        assert_eq!(
            report["xss"], false,
            "markup from a migration ran: {report}"
        );
        assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
        assert!(
            report["keyboard"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "input#attention"),
            "the filter is reachable by keyboard: {report}"
        );
    }
}
