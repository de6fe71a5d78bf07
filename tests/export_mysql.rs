//! Bundles for MariaDB, applied with the real `mariadb` client: the round
//! trip, a second run that fails and changes nothing, a moved ledger
//! stopping the bundle, client commands kept away from the client, and a
//! DDL migration failing midway recorded as apply records it.

mod support;

use std::path::Path;
use support::Project;
use support::mysql::MyDb;

fn project(db: &MyDb, migrations: &[(&str, &str)]) -> Project {
    Project::new(
        &format!(
            "[environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n",
            db.url()
        ),
        migrations,
    )
}

/// Exports prod's bundle into `dir` and returns its path.
fn export(p: &Project) -> std::path::PathBuf {
    let run = p.envgate(&[
        "export",
        "--env",
        "prod",
        "--out-dir",
        "bundles",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let j = run.json();
    p.path().join(j["bundle"]["sql"].as_str().unwrap())
}

/// Runs a bundle the way the README says: `mariadb database < bundle.sql`.
fn client(db: &MyDb, bundle: &Path) -> (bool, String) {
    support::mysql::source(&db.name, bundle)
}

fn ledger(db: &MyDb) -> Vec<Vec<String>> {
    db.query(
        "SELECT version, success + 0, applied_via, COALESCE(error, '') FROM envgate_migrations ORDER BY version",
    )
}

#[test]
fn bundles_round_trip_through_the_mariadb_client() {
    let db = MyDb::create("myexp");
    let p = project(
        &db,
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id int PRIMARY KEY, note text);\nCREATE INDEX users_note ON users (note(20));\n",
            ),
            (
                "2_seed.sql",
                "INSERT INTO users VALUES (1, 'a; b');\nINSERT INTO users VALUES (2, 'it''s');\n",
            ),
        ],
    );
    let bundle = export(&p);
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        text.contains("PREPARE envgate_stmt FROM @envgate_sql;"),
        "{text}"
    );
    let (ok, err) = client(&db, &bundle);
    assert!(ok, "{err}");
    let rows = ledger(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r[1] == "1" && r[2].starts_with("bundle:")),
        "{rows:?}"
    );
    assert_eq!(
        db.query("SELECT note FROM users ORDER BY id"),
        [vec!["a; b".to_owned()], vec!["it's".to_owned()]]
    );
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(status.code, 0, "{status:?}");
    for m in status.json()["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["prod"]["state"], "applied", "{m}");
    }
    // Twice: the guard stops it before any change.
    let (ok, err) = client(&db, &bundle);
    assert!(!ok);
    assert!(err.contains("ledger differs from when built"), "{err}");
    assert_eq!(ledger(&db), rows);
    assert_eq!(
        db.query("SELECT COUNT(*) FROM users"),
        [vec!["2".to_owned()]]
    );
}

#[test]
fn a_moved_ledger_stops_the_bundle_and_client_commands_never_reach_the_client() {
    let db = MyDb::create("myexp2");
    let tmp = tempfile::tempdir().unwrap();
    let pwned = tmp.path().join("pwned");
    let p = project(
        &db,
        &[(
            "1_notes.sql",
            &format!(
                "CREATE TABLE notes (body text);\nINSERT INTO notes VALUES ('x;\n\\! touch {0}\n');\n",
                pwned.display()
            ),
        )],
    );
    let bundle = export(&p);
    // The ledger moves after the export: the bundle stops, changing nothing.
    db.execute(&envgate::core::ledger_table::create_table_sql(
        envgate::core::sql::Dialect::Mysql,
        None,
    ));
    db.execute("INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('0', 'x', 'x', 'x', 1)");
    let (ok, err) = client(&db, &bundle);
    assert!(!ok);
    assert!(err.contains("ledger differs from when built"), "{err}");
    assert!(db.query("SHOW TABLES LIKE 'notes'").is_empty());
    db.execute("DELETE FROM envgate_migrations");
    // As built: the text inside the string stays data.
    let (ok, err) = client(&db, &bundle);
    assert!(ok, "{err}");
    assert!(!pwned.exists(), "the client ran a command from a migration");
    assert!(db.query("SELECT body FROM notes")[0][0].contains("touch"));

    // Outside a string, a client command is refused before any bundle.
    p.write(
        "migrations/2_shell.sql",
        &format!("CREATE TABLE t (id int);\n\\! touch {}\n", pwned.display()),
    );
    let run = p.envgate(&["export", "--env", "prod", "--out-dir", "more"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("is a mysql client command, not SQL"),
        "{run:?}"
    );
    p.write(
        "migrations/2_shell.sql",
        "DELIMITER $$\nCREATE TABLE t (id int)$$\n",
    );
    let run = p.envgate(&["export", "--env", "prod", "--out-dir", "more"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("`DELIMITER $$"), "{run:?}");
}

/// A DDL migration failing midway in a bundle is recorded as `apply`
/// records it: failed, with how far it got.
#[test]
fn a_bundle_failing_midway_records_how_far_it_got() {
    let db = MyDb::create("myexp3");
    let p = project(
        &db,
        &[(
            "1_two.sql",
            "CREATE TABLE one (id int);\nCREATE TABLE one (id int);\nCREATE TABLE three (id int);\n",
        )],
    );
    let bundle = export(&p);
    let (ok, err) = client(&db, &bundle);
    assert!(!ok);
    assert!(err.contains("Table 'one' already exists"), "{err}");
    let rows = ledger(&db);
    assert_eq!(rows[0][1], "0");
    assert!(
        rows[0][3].starts_with("statements 1–1 of 3 ran [prefix "),
        "{rows:?}"
    );
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(
        status.json()["migrations"][0]["cells"]["prod"]["state"],
        "failed"
    );
}

/// The bundle's lock is the one `envgate apply` takes: the same name,
/// computed in SQL, for short and long database names.
#[test]
fn bundles_and_apply_take_the_same_lock() {
    use envgate::core::bundle_mysql::lock_name_sql;
    use envgate::core::ledger_table::mysql_lock_name;
    let db = MyDb::create("mylockname");
    let sql = db.query(&format!("SELECT {}", lock_name_sql(None)))[0][0].clone();
    assert_eq!(sql, mysql_lock_name(&db.name));
    let long = "a_database_name_long_enough_to_need_the_hashed_form_of_it";
    let sql = db.query(&format!("SELECT {}", lock_name_sql(Some(long))))[0][0].clone();
    assert_eq!(sql, mysql_lock_name(long));
    assert!(sql.len() <= 64, "{sql}");
}
