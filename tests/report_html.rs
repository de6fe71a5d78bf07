//! `envgate status --format html`: one self-contained page, every value
//! from outside escaped, no script, no credentials; `envgate ci` writes it
//! beside matrix.json.

mod support;

use support::{PgDb, Project};

#[test]
fn the_page_escapes_what_comes_from_outside_and_holds_no_script() {
    let dev = PgDb::create("html_dev");
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n[environments.prod]\nurl = \"postgres://nobody:s3cr3t-pw@127.0.0.1:1/none\"\n",
            dev.url_with_password("dev-pw-42")
        ),
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY);\n",
            ),
            ("2_two.sql", "SELECT 1;\n"),
            ("3_fails.sql", "SELECT '<script>alert(1)</script>'::int;\n"),
        ],
    );
    let apply = p.envgate(&["apply", "--env", "dev"]);
    assert_ne!(apply.code, 0, "3 fails: {apply:?}");
    p.write(
        "migrations/1_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    // A ledger row the repository does not have, named with markup.
    dev.execute(&support::ledger::insert(
        "envgate_migrations",
        "9",
        "<img src=x onerror=alert(1)>",
        "sha256:00",
        true,
        "2026-11-01 10:00:00+00",
    ));
    let run = p.envgate(&["status", "--format", "html"]);
    assert_eq!(run.code, 4, "prod is unreachable: {run:?}");
    let page = run.stdout;
    assert!(
        page.starts_with("<!doctype html>\n<html lang=\"en\">"),
        "{page}"
    );
    assert!(
        page.contains("<style>") && page.contains("<table>"),
        "{page}"
    );
    // What came from outside is text.
    assert!(
        page.contains("9_&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<script"), "no script at all: {page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    // The states, and what needs attention with both hashes.
    assert!(
        page.contains("<span class=\"s s-drifted\">drifted</span>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"s s-failed\">failed</span>"),
        "{page}"
    );
    assert!(page.contains("edited after it was applied"), "{page}");
    assert!(
        page.contains("<span class=\"s s-unreachable\">unreachable</span>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"s s-missing\">missing</span>"),
        "{page}"
    );
    assert!(page.contains("3 need attention"), "{page}");
    // No credentials.
    for secret in ["dev-pw-42", "s3cr3t-pw"] {
        assert!(!page.contains(secret), "{secret} on the page");
    }
    let refused = p.envgate(&["schema", "diff", "--format", "html"]);
    assert_eq!(refused.code, 2, "{refused:?}");
}
