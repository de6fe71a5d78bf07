//! `apply` to MariaDB, whose DDL commits by itself: DML migrations atomic
//! with their ledger row, DDL migrations recorded statement by statement
//! and resumed after a fix, the lock naming its holder, two runs at once.

mod support;

use std::process::Stdio;
use std::time::Duration;
use support::Project;
use support::mysql::MyDb;

fn project(db: &MyDb, migrations: &[(&str, &str)]) -> Project {
    Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n",
            db.url()
        ),
        migrations,
    )
}

fn ledger(db: &MyDb) -> Vec<Vec<String>> {
    db.query(
        "SELECT version, success + 0, COALESCE(error, '') FROM envgate_migrations ORDER BY version",
    )
}

fn tables(db: &MyDb) -> Vec<String> {
    db.query("SHOW TABLES")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn applies_ddl_and_dml_and_records_each() {
    let db = MyDb::create("myap");
    let p = project(
        &db,
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id int PRIMARY KEY, email varchar(200));\nCREATE INDEX users_email ON users (email);\n",
            ),
            (
                "2_seed.sql",
                "INSERT INTO users VALUES (1, 'a@example.com');\nINSERT INTO users VALUES (2, 'b\\\\c@example.com');\nINSERT INTO users VALUES (3, \"c@example.com\");\n",
            ),
        ],
    );
    let run = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("1_users") && run.stdout.contains("(outside a transaction)"),
        "{run:?}"
    );
    assert_eq!(
        ledger(&db),
        [vec!["1", "1", ""], vec!["2", "1", ""]]
            .map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    assert_eq!(
        db.query("SELECT COUNT(*) FROM users"),
        [vec!["3".to_owned()]]
    );
    // Migrations run in the server's SQL mode: a double-quoted string is a
    // string, as the mysql client reads it.
    assert_eq!(
        db.query("SELECT email FROM users WHERE id = 3"),
        [vec!["c@example.com".to_owned()]]
    );
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(status.code, 0, "{status:?}");
    for m in status.json()["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["dev"]["state"], "applied", "{m}");
    }
    // Again: nothing to do.
    let again = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("up to date"), "{again:?}");
}

/// A DML migration is one transaction with its row: a failure leaves none
/// of it behind.
#[test]
fn a_failing_dml_migration_leaves_nothing() {
    let db = MyDb::create("myatom");
    db.execute("CREATE TABLE t (id int PRIMARY KEY) ENGINE=InnoDB");
    let p = project(
        &db,
        &[(
            "1_rows.sql",
            "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\nINSERT INTO t VALUES (1);\n",
        )],
    );
    let run = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("1_rows.sql:3:1"), "{run:?}");
    assert!(
        run.stdout.contains("rolled back: none of it took effect"),
        "{run:?}"
    );
    assert_eq!(db.query("SELECT COUNT(*) FROM t"), [vec!["0".to_owned()]]);
    assert_eq!(ledger(&db)[0][1], "0", "recorded as failed");
}

/// A DDL migration that fails midway says how far it got, blocks until
/// --retry-failed, and then resumes after what already ran.
#[test]
fn a_ddl_migration_that_fails_midway_resumes_after_a_fix() {
    let db = MyDb::create("myresume");
    let p = project(
        &db,
        &[(
            "1_three.sql",
            "CREATE TABLE one (id int);\nCREATE TABLE one (id int);\nCREATE TABLE three (id int);\n",
        )],
    );
    let run = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("1_three.sql:2:1: statements 1–1 of 3 ran [prefix "),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "it ran outside a transaction: the statements before the failing one took effect"
        ),
        "{run:?}"
    );
    assert_eq!(tables(&db), ["envgate_migrations", "one"]);
    let blocked = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(blocked.code, 3, "{blocked:?}");
    // Fixed: the second statement now creates `two`.
    p.write(
        "migrations/1_three.sql",
        "CREATE TABLE one (id int);\nCREATE TABLE two (id int);\nCREATE TABLE three (id int);\n",
    );
    let run = p.envgate(&["apply", "--env", "dev", "--retry-failed"]);
    assert_eq!(
        run.code, 0,
        "resumed after `one`, not rerun from the start: {run:?}"
    );
    assert_eq!(tables(&db), ["envgate_migrations", "one", "three", "two"]);
    assert_eq!(
        ledger(&db),
        [vec!["1".to_owned(), "1".to_owned(), String::new()]]
    );
}

/// The lock: a run waits for another's, and a timeout names the holder.
#[test]
fn the_lock_names_its_holder() {
    let db = MyDb::create("mylock");
    let p = project(&db, &[("1_a.sql", "CREATE TABLE a (id int);\n")]);
    let name = format!("envgate:{}.envgate_migrations", db.name);
    let mut holder = support::mysql::client("")
        .args([
            "-e",
            &format!("SELECT GET_LOCK('{name}', 0); SELECT SLEEP(20)"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while db.query(&format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL"))[0][0] != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the holder never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = p.envgate(&["apply", "--env", "dev", "--lock-timeout", "1s"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.code, 3, "{run:?}");
    let all = run.stdout.clone() + &run.stderr;
    assert!(
        all.contains(&format!(
            "the environment's migration lock ({name}) is held by connection "
        )),
        "{run:?}"
    );
    assert!(all.contains("gave up after 1s"), "{run:?}");
    assert!(
        tables(&db).is_empty(),
        "nothing ran, not even the ledger's creation"
    );
    // Released by the holder's end: the next run goes through.
    let run = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// Two runs at once: each migration applied once, nobody fails.
#[test]
fn two_runs_at_once_apply_each_migration_once() {
    let db = MyDb::create("myrace");
    let migrations: Vec<(String, String)> = (1..=6)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("CREATE TABLE t{i} (id int);\nDO SLEEP(0.05);\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = migrations
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = project(&db, &refs);
    let children: Vec<_> = (0..2)
        .map(|_| support::spawn_envgate(p.path(), &["apply", "--env", "dev"]))
        .collect();
    for child in children {
        let run = support::finish(child);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let rows = ledger(&db);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r[1] == "1"), "{rows:?}");
}

/// Killed midway through a DDL migration: the ledger says how far it got,
/// the next run refuses, and --retry-failed finishes it without running
/// the first statement again.
#[test]
fn a_run_killed_midway_is_recorded_and_resumed() {
    let db = MyDb::create("mykill");
    let p = project(
        &db,
        &[(
            "1_slow.sql",
            "CREATE TABLE k1 (id int);\nDO SLEEP(2);\nCREATE TABLE k2 (id int);\n",
        )],
    );
    let mut child = support::spawn_envgate(p.path(), &["apply", "--env", "dev"]);
    let start = std::time::Instant::now();
    while !tables(&db).contains(&"k1".to_owned()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "k1 never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let _ = child.wait();
    let rows = ledger(&db);
    assert_eq!(rows[0][1], "0", "{rows:?}");
    assert!(
        rows[0][2].starts_with("statements 1–1 of 3 ran [prefix "),
        "{rows:?}"
    );
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(
        status.json()["migrations"][0]["cells"]["dev"]["state"],
        "failed"
    );
    assert_eq!(p.envgate(&["apply", "--env", "dev"]).code, 3);
    let run = p.envgate(&["apply", "--env", "dev", "--retry-failed"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(tables(&db), ["envgate_migrations", "k1", "k2"]);
    assert_eq!(ledger(&db)[0][1], "1");
}

/// Releases on MariaDB: promote to a managed environment, then to an
/// export_only one (its bundle applied with the client), roll back with
/// the down files, accept drift; every step audited.
#[test]
fn releases_promote_rollback_and_drift_accept_on_mariadb() {
    let (dev, prod) = (MyDb::create("myrel_dev"), MyDb::create("myrel_prod"));
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n",
            dev.url(),
            prod.url()
        ),
        &[
            (
                "1_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
            ),
            ("1_orders.down.sql", "DROP TABLE orders;\n"),
            ("2_seed.sql", "INSERT INTO orders VALUES (1);\n"),
            ("2_seed.down.sql", "DELETE FROM orders WHERE id = 1;\n"),
        ],
    );
    let git = |args: &[&str]| support::git(p.path(), args);
    p.write(".gitignore", ".envgate/\nbundles/\n");
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "v1"]);
    git(&["tag", "v1.0.0"]);

    let run = p.envgate(&["promote", "v1.0.0", "--actor", "alice"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        dev.query("SELECT COUNT(*) FROM orders"),
        [vec!["1".to_owned()]]
    );
    let run = p.envgate(&["promote", "v1.0.0", "--env", "prod", "--out-dir", "bundles"]);
    assert_eq!(run.code, 0, "{run:?}");
    let bundle = p.path().join("bundles/prod-v1.0.0.sql");
    let (ok, err) = support::mysql::source(&prod.name, &bundle);
    assert!(ok, "{err}");
    let releases = p.envgate(&["releases"]);
    assert!(
        releases
            .stdout
            .contains("v1.0.0  2 migrations  dev 2/2  prod 2/2"),
        "{releases:?}"
    );

    // Roll back in dev with the down files, newest first.
    let run = p.envgate(&["rollback", "v1.0.0", "--env", "dev", "--actor", "alice"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !tables(&dev).contains(&"orders".to_owned()),
        "{:?}",
        tables(&dev)
    );
    assert!(ledger(&dev).is_empty(), "{:?}", ledger(&dev));

    // Drift accepted in prod (export_only: recorded in the control store).
    p.write(
        "migrations/1_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY); -- reviewed\n",
    );
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(
        status.json()["migrations"][0]["cells"]["prod"]["state"],
        "drifted"
    );
    let run = p.envgate(&[
        "drift", "accept", "--env", "prod", "1", "--reason", "comment", "--actor", "carol",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let status = p.envgate(&["status", "--format", "json"]);
    assert_eq!(
        status.json()["migrations"][0]["cells"]["prod"]["state"],
        "applied"
    );

    let audit = p.envgate(&["audit", "--format", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let kinds: Vec<String> = audit.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    for k in ["promote", "rollback", "bundle_applied", "drift_accepted"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}
