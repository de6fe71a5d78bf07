//! `envgate apply` on SQLite: the embedded target.

mod support;

use support::{Project, finish, spawn_envgate};

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn applies_creates_the_database_and_records_rows() {
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite://data/dev.db\"\n",
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
            ),
            (
                "2_seed.sql",
                "INSERT INTO users (email) VALUES ('a;b@example.com');\n",
            ),
            (
                "3_fk.sql",
                "PRAGMA foreign_keys = OFF;\nCREATE TABLE tickets (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));\n",
            ),
        ],
    );
    std::fs::create_dir(project.path().join("data")).unwrap();
    let run = project.envgate(&[
        "apply", "--env", "dev", "--actor", "bob", "--format", "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let j = run.json();
    assert_eq!(j["applied"].as_array().unwrap().len(), 3);
    assert_eq!(
        j["applied"][2]["transaction"], false,
        "PRAGMA foreign_keys runs outside a transaction"
    );
    let db = project.path().join("data/dev.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM envgate_migrations WHERE success = 1 AND applied_by = 'bob'"
        ),
        3
    );
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 1);
    let status = project.envgate(&["status", "--format", "json", "--check"]);
    assert_eq!(status.code, 0, "{status:?}");
    for m in status.json()["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["dev"]["applied_sha256"], m["sha256"]);
    }
}

#[test]
fn a_failure_is_located_and_rolled_back() {
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
            ),
            (
                "2_bad.sql",
                "CREATE TABLE half (id INTEGER);\nINSERT INTO users (id) VALUES (1);\n",
            ),
            ("3_after.sql", "CREATE TABLE after_it (id INTEGER);\n"),
        ],
    );
    let run = project.envgate(&["apply", "--env", "dev", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let f = &run.json()["failure"];
    assert_eq!(f["version"], "2");
    assert_eq!(f["line"], 2);
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .contains("NOT NULL constraint failed: users.email"),
        "{f}"
    );
    let db = project.path().join("dev.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name IN ('half', 'after_it')"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM envgate_migrations WHERE success = 0 AND version = '2'"
        ),
        1
    );
}

#[test]
fn concurrent_applies_take_turns() {
    let migrations: Vec<(String, String)> = (1..=6)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("CREATE TABLE t{i} (id INTEGER);\nWITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000) SELECT count(*) FROM n;\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = migrations
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let project = Project::new("[environments.dev]\nurl = \"sqlite://dev.db\"\n", &refs);
    // The file exists before either run, so both lock the same inode.
    rusqlite::Connection::open(project.path().join("dev.db")).unwrap();
    let a = spawn_envgate(
        project.path(),
        &["apply", "--env", "dev", "--format", "json"],
    );
    let b = spawn_envgate(
        project.path(),
        &["apply", "--env", "dev", "--format", "json"],
    );
    let (a, b) = (finish(a), finish(b));
    assert_eq!((a.code, b.code), (0, 0), "{a:?}\n{b:?}");
    let n = |r: &support::Run| r.json()["applied"].as_array().unwrap().len();
    assert_eq!(n(&a) + n(&b), 6, "{a:?}\n{b:?}");
    assert_eq!(
        count(
            &project.path().join("dev.db"),
            "SELECT count(*) FROM envgate_migrations"
        ),
        6
    );
}
