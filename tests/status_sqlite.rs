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

/// The hash cache never hides an edit: a file rewritten with the same size
/// and its old modification time (a same-second edit on a file system with
/// coarse timestamps looks just like that) is read again, because its
/// change time moved; and a file too fresh to prove anything is never
/// cached at all.
#[test]
fn the_hash_cache_sees_every_edit() {
    const A: &str = "CREATE TABLE a (id int);\n";
    const B: &str = "CREATE TABLE b (id int);\n";
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_a.sql", A), ("2_b.sql", B)],
    );
    sqlite_ledger(
        &project.path().join("dev.db"),
        &[("1", "a", A, true), ("2", "b", B, true)],
    );
    let hashes = |run: &support::Run| -> String {
        run.stderr
            .lines()
            .find(|l| l.contains("migration hashes"))
            .unwrap_or_else(|| panic!("{run:?}"))
            .split_once("migration hashes ")
            .unwrap()
            .1
            .trim()
            .to_owned()
    };
    let debug = [("ENVGATE_LOG", "envgate::ops::load=debug")];
    let status = || project.envgate_with_env(&["status", "--format", "json"], &debug);
    let state = |run: &support::Run, v: &str| -> String {
        run.json()["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["version"] == v)
            .unwrap()["cells"]["dev"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let file = project.path().join("migrations/1_a.sql");
    let same_size_edit = || {
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, A.replace("id int", "ID int")).unwrap();
        // Its modification time set back: only the change time tells.
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    };

    // Just written: too fresh to be cached; an edit in the same second is
    // seen.
    let run = status();
    assert_eq!(hashes(&run), "from_cache=0 read=2");
    same_size_edit();
    let run = status();
    assert_eq!(state(&run, "1"), "drifted", "{run:?}");
    std::fs::write(&file, A).unwrap();

    // Settled (older than the cache's margin): cached, and not read again.
    std::thread::sleep(std::time::Duration::from_millis(
        (envgate::core::hash_cache::MARGIN_NS / 1_000_000) as u64 + 300,
    ));
    let run = status();
    assert_eq!(hashes(&run), "from_cache=0 read=2");
    assert_eq!(state(&run, "1"), "applied");
    let run = status();
    assert_eq!(hashes(&run), "from_cache=2 read=0", "{run:?}");
    assert_eq!(state(&run, "1"), "applied");

    // The same-size edit with the old modification time: read again.
    same_size_edit();
    let run = status();
    assert_eq!(hashes(&run), "from_cache=1 read=1", "{run:?}");
    assert_eq!(state(&run, "1"), "drifted", "{run:?}");
    assert!(project.path().join(".envgate/hashes").exists());

    // A damaged cache is ignored, never trusted.
    std::fs::write(project.path().join(".envgate/hashes"), b"EGHASH1\ngarbage").unwrap();
    let run = status();
    assert_eq!(hashes(&run), "from_cache=0 read=2", "{run:?}");
    assert_eq!(state(&run, "1"), "drifted");
}
