//! The matrix page in a real browser: Debian's chromium, driven headless by
//! playwright-core (`tests/browser/page.mjs`): axe-core finds no serious or
//! critical accessibility violation, the filter is reachable by keyboard,
//! and a migration whose name is markup runs nothing. `scripts/test.sh`
//! installs chromium and the npm packages; without them this test fails
//! and says what to run.

mod support;

use serde_json::Value;
use support::browser::{open, serious};
use support::{PgDb, Project};

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
