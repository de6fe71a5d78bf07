//! `envgate status` against SQLite environments.

mod support;

use envgate::core::sql::Dialect;
use envgate::ledger::envgate::create_table_sql;
use serde_json::json;
use support::Project;
use support::ledger::{hash, insert};

fn sqlite_ledger(path: &std::path::Path, rows: &[(&str, &str, &str, bool)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut sql = create_table_sql(Dialect::Sqlite, None);
    sql.push_str(";\n");
    for (version, name, body, success) in rows {
        sql.push_str(&insert(
            "envgate_migrations",
            version,
            name,
            &hash(body),
            *success,
            "2026-04-18T10:00:00.000Z",
        ));
    }
    conn.execute_batch(&sql).unwrap();
}

#[test]
fn every_state_on_sqlite() {
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n\n\
         [environments.qa]\nurl = \"sqlite://data/qa.db\"\n\n\
         [environments.scratch]\nurl = \"sqlite::memory:\"\n\n\
         [environments.gone]\nurl = \"sqlite://gone.db\"\n",
        &[
            ("1_a.sql", "CREATE TABLE a (id int);\n"),
            ("2_b.sql", "CREATE TABLE b (id int);\n"),
            // Checked out on Windows: CRLF line endings and a BOM.
            ("3_c.sql", "\u{feff}CREATE TABLE c (\r\n  id int\r\n);\r\n"),
            ("3_c.down.sql", "DROP TABLE c;\n"),
        ],
    );
    sqlite_ledger(
        &project.path().join("dev.db"),
        &[
            ("1", "a", "CREATE TABLE a (id int);\n", true),
            ("2", "b", "CREATE TABLE b (id bigint);\n", true),
            // Applied from the LF checkout: not drift.
            ("3", "c", "CREATE TABLE c (\n  id int\n);\n", true),
            ("9", "gone", "x", true),
        ],
    );
    std::fs::create_dir(project.path().join("data")).unwrap();
    sqlite_ledger(
        &project.path().join("data/qa.db"),
        &[
            ("1", "a", "CREATE TABLE a (id int);\n", false),
            ("3", "c", "CREATE TABLE c (\n  id int\n);\n", true),
        ],
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    let j = run.json();
    let states: Vec<Vec<String>> = j["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            ["dev", "qa", "scratch", "gone"]
                .iter()
                .map(|e| m["cells"][e]["state"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        states,
        [
            ["applied", "failed", "pending", "unreachable"],
            ["drifted", "pending", "pending", "unreachable"],
            ["applied", "applied", "pending", "unreachable"],
            ["missing", "absent", "absent", "unreachable"],
        ]
    );
    assert_eq!(j["migrations"][1]["cells"]["qa"]["out_of_order"], true);
    assert_eq!(j["migrations"][2]["file"], "migrations/3_c.sql");
    assert_eq!(
        j["environments"][0]["counts"],
        json!({"applied": 2, "pending": 0, "drifted": 1, "failed": 0, "missing": 1})
    );
    let gone = j["environments"][3]["error"].as_str().unwrap();
    assert!(
        gone.contains("no database file at") && gone.contains("gone.db"),
        "{gone}"
    );
}

#[test]
fn status_never_creates_or_changes_a_sqlite_file() {
    let project = Project::new(
        "[environments.prod]\nurl = \"sqlite://prod.db\"\n",
        &[("1_a.sql", "CREATE TABLE a (id int);\n")],
    );
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        !project.path().join("prod.db").exists(),
        "status created the database file"
    );
    // An existing database without a ledger: nothing applied, and the file
    // is byte-for-byte unchanged.
    let db = project.path().join("prod.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE other (x int)")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["environments"][0]["counts"]["pending"], 1);
    assert_eq!(std::fs::read(&db).unwrap(), before);
}
