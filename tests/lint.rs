//! `envgate lint`: squawk's rules and envgate's own on real projects — a
//! fixture per envgate rule, a few of squawk's, severities, ignore comments,
//! the migrations selected by default, and an edit to a migration applied
//! in a real PostgreSQL database.

mod support;

use serde_json::Value;
use support::{PgDb, Project};

fn findings(run: &support::Run) -> Vec<(String, String, u64, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f: &Value| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["rule"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn f(file: &str, rule: &str, line: u64, severity: &str) -> (String, String, u64, String) {
    (file.to_owned(), rule.to_owned(), line, severity.to_owned())
}

/// Every envgate rule and a few of squawk's, each on its own fixture.
#[test]
fn each_rule_on_its_fixture() {
    let p = Project::new(
        "[environments.dev]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n",
        &[
            // squawk: a blocking index, a NOT NULL column without default.
            (
                "1_index.sql",
                "CREATE INDEX users_email ON users (email);\n",
            ),
            ("1_index.down.sql", "DROP INDEX users_email;\n"),
            (
                "2_not_null.sql",
                "ALTER TABLE users ADD COLUMN plan text NOT NULL;\n",
            ),
            (
                "2_not_null.down.sql",
                "ALTER TABLE users DROP COLUMN plan;\n",
            ),
            // envgate: mixed-transaction and missing-down.
            (
                "3_mixed.sql",
                "UPDATE users SET plan = 'free';\nCREATE INDEX CONCURRENTLY users_plan ON users (plan);\n",
            ),
            // Silenced by a comment on the statement.
            (
                "4_quiet.sql",
                "-- envgate:lint-ignore ban-drop-column\nALTER TABLE users DROP COLUMN legacy;\n",
            ),
            ("4_quiet.down.sql", "SELECT 1;\n"),
        ],
    );
    let run = p.envgate(&["lint", "--offline", "--format", "json"]);
    assert_eq!(run.code, 1, "an error fails by default: {run:?}");
    assert_eq!(
        findings(&run),
        [
            f(
                "migrations/1_index.sql",
                "require-concurrent-index-creation",
                1,
                "warning"
            ),
            f(
                "migrations/2_not_null.sql",
                "adding-required-field",
                1,
                "warning"
            ),
            f("migrations/3_mixed.sql", "missing-down", 1, "warning"),
            f("migrations/3_mixed.sql", "mixed-transaction", 2, "error"),
            f(
                "migrations/3_mixed.sql",
                "prefer-robust-stmts",
                2,
                "warning"
            ),
        ],
        "{}",
        run.stdout
    );
    assert_eq!(run.json()["linted"], 4);

    // Text for people: file:line:column, severity, rule, message, help.
    let run = p.envgate(&["lint", "--offline", "migrations/3_mixed.sql"]);
    assert!(
        run.stdout.contains(
            "migrations/3_mixed.sql:2:1: error mixed-transaction: CREATE INDEX CONCURRENTLY cannot run in a transaction, so the 1 other statement of this migration runs outside one too"
        ) && run.stdout.contains("    help: put it in a migration of its own\n")
            && run
                .stdout
                .ends_with("3 findings (1 error, 2 warnings) in 1 migration\n"),
        "{run:?}"
    );

    // Severities from envgate.toml, and --fail-on.
    p.write(
        "envgate.toml",
        "[environments.dev]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n[lint]\npg_version = \"14\"\n[lint.rules]\nmixed-transaction = \"warning\"\nmissing-down = \"off\"\nprefer-robust-stmts = \"off\"\nrequire-concurrent-index-creation = \"error\"\n",
    );
    let run = p.envgate(&[
        "lint",
        "--offline",
        "--format",
        "json",
        "migrations/3_mixed.sql",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        findings(&run),
        [f(
            "migrations/3_mixed.sql",
            "mixed-transaction",
            2,
            "warning"
        )]
    );
    let run = p.envgate(&[
        "lint",
        "--offline",
        "--fail-on",
        "warning",
        "migrations/3_mixed.sql",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = p.envgate(&["lint", "--offline", "migrations/1_index.sql"]);
    assert_eq!(run.code, 1, "made an error: {run:?}");

    // A rule that does not exist is named where it is written.
    p.write(
        "envgate.toml",
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[lint.rules]\nno-such-rule = \"off\"\n",
    );
    let run = p.envgate(&["lint", "--offline"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("envgate.toml:4:1: `lint.rules`: `no-such-rule` is not a rule"),
        "{run:?}"
    );
    p.write(
        "envgate.toml",
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[lint.rules]\nban-drop-column = \"loud\"\n",
    );
    let run = p.envgate(&["lint", "--offline"]);
    assert!(
        run.stderr
            .contains("write \"error\", \"warning\" or \"off\""),
        "{run:?}"
    );
    p.write(
        "envgate.toml",
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
    );
    let run = p.envgate(&["lint", "--offline", "migrations/nope.sql"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("migrations/nope.sql is not a migration"),
        "{run:?}"
    );
}

/// By default the migrations not applied as they are everywhere: new ones,
/// and one edited after it was applied in a real database — drift before it
/// happens.
#[test]
fn new_migrations_and_edits_to_applied_ones() {
    let (dev, prod) = (PgDb::create("lint_dev"), PgDb::create("lint_prod"));
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n[environments.prod]\nurl = \"{}\"\nmode = \"managed\"\n",
            dev.url(),
            prod.url()
        ),
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY);\n",
            ),
            ("1_users.down.sql", "DROP TABLE users;\n"),
            ("2_plan.sql", "ALTER TABLE users ADD COLUMN plan text;\n"),
            ("2_plan.down.sql", "ALTER TABLE users DROP COLUMN plan;\n"),
        ],
    );
    assert_eq!(p.envgate(&["apply", "--env", "dev"]).code, 0);
    assert_eq!(
        p.envgate(&["apply", "--env", "prod", "--up-to", "1"]).code,
        0
    );
    let run = p.envgate(&["lint", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["linted"], 1, "2 is pending in prod: {run:?}");
    assert!(findings(&run).is_empty(), "{run:?}");

    p.write(
        "migrations/1_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    let run = p.envgate(&["lint", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        findings(&run),
        [f(
            "migrations/1_users.sql",
            "edited-after-apply",
            1,
            "error"
        )]
    );
    let message = run.json()["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("applied in dev, prod as ")
            && message.ends_with("; the file now differs: drift before it happens"),
        "{message}"
    );
    let all = p.envgate(&["lint", "--all", "--format", "json"]);
    assert_eq!(all.json()["linted"], 2);
}

/// SQLite and MySQL projects get envgate's rules, not squawk's
/// PostgreSQL ones.
#[test]
fn squawk_is_for_postgresql_only() {
    let p = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\nmode = \"managed\"\n",
        &[
            (
                "1_a.sql",
                "CREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\n",
            ),
            ("1_a.down.sql", "DROP TABLE a;\n"),
            ("2_b.sql", "CREATE TABLE b (id int);\nVACUUM;\n"),
            ("2_b.down.sql", "DROP TABLE b;\n"),
        ],
    );
    let run = p.envgate(&["lint", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        findings(&run),
        [f("migrations/2_b.sql", "mixed-transaction", 2, "error")]
    );
}
