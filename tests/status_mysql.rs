//! MySQL and MariaDB environments, read: the matrix from envgate's ledger
//! and other tools', reads the server itself keeps read-only (DDL
//! included), and export writing files, never the database. Against the
//! real MariaDB that `scripts/test.sh` provides.

mod support;

use envgate::core::checksum::ContentHash;
use envgate::core::ledger_table::create_table_sql;
use envgate::core::sql::Dialect;
use envgate::db::{QueryError, ReadSession, Target};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use support::Project;
use support::mysql::{MyDb, run_as};

const A: &str = "CREATE TABLE a (id int);\n";
const B: &str = "CREATE TABLE b (id int);\n";
const C: &str = "CREATE TABLE c (id int);\n";
const D: &str = "CREATE TABLE d (id int);\n";

fn migrations() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_a.sql", A),
        ("2_b.sql", B),
        ("3_c.sql", C),
        ("4_d.sql", D),
    ]
}

/// envgate's ledger on MySQL, as envgate defines it, with rows written the
/// way its apply loop writes them.
fn ledger(db: &MyDb, rows: &[(&str, &str, &str, bool)]) {
    db.execute(&create_table_sql(Dialect::Mysql, None));
    for (version, name, body, success) in rows {
        db.execute(&format!(
            "INSERT INTO envgate_migrations (version, name, sha256, applied_at, applied_by, success) \
             VALUES ('{version}', '{name}', '{}', '2026-11-20 10:00:00.250', 'alice', {})",
            ContentHash::of(body.as_bytes()).tagged(),
            u8::from(*success)
        ));
    }
}

fn states(run: &support::Run, env: &str) -> Vec<(String, String)> {
    run.json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["cells"][env]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn status_reads_mariadb_environments() {
    let (dev, prod) = (MyDb::create("my_dev"), MyDb::create("my_prod"));
    ledger(
        &dev,
        &[
            ("1", "a", A, true),
            ("2", "b", "CREATE TABLE b (id bigint);\n", true),
            ("3", "c", C, false),
        ],
    );
    let missing = format!(
        "{}/eg_no_such_database",
        dev.url().rsplit_once('/').unwrap().0
    );
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n\
             [environments.lost]\nurl = \"{missing}\"\nmode = \"export_only\"\n",
            dev.url(),
            prod.url().replacen("mysql://", "mariadb://", 1),
        ),
        &migrations(),
    );
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "lost is unreachable: {run:?}");
    assert_eq!(
        states(&run, "dev"),
        pairs(&[
            ("1", "applied"),
            ("2", "drifted"),
            ("3", "failed"),
            ("4", "pending")
        ])
    );
    assert_eq!(
        states(&run, "prod"),
        pairs(&[
            ("1", "pending"),
            ("2", "pending"),
            ("3", "pending"),
            ("4", "pending")
        ]),
        "no ledger table yet: nothing applied"
    );
    let j = run.json();
    let first: &Value = &j["migrations"][0]["cells"]["dev"];
    assert_eq!(first["applied_at"], "2026-11-20T10:00:00.250Z", "{first}");
    let lost = j["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "lost")
        .unwrap()
        .to_string();
    assert!(lost.contains("Unknown database"), "{lost}");

    let table = p.envgate(&["status", "--env", "dev,prod"]);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table
            .stdout
            .contains("2_b in dev: migrations/2_b.sql is now"),
        "{table:?}"
    );
}

/// The server refuses writes through envgate's read sessions, even for a
/// user who could write, DDL included; a user with SELECT alone reads the
/// matrix; export writes its file and nothing else.
#[test]
fn reads_are_read_only_and_writes_are_refused() {
    let db = MyDb::create("my_ro");
    ledger(&db, &[("1", "a", A, true)]);
    let before = db.query("SELECT version, sha256 FROM envgate_migrations");

    // A read session as the admin, who could write anything.
    let target = Target::parse(&db.url(), Path::new(".")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let session = ReadSession::open(&target, None, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(session.dialect(), Dialect::Mysql);
        for write in [
            "INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('2', 'b', 'x', 'mallory', 1)",
            "UPDATE envgate_migrations SET sha256 = 'x'",
            "DELETE FROM envgate_migrations",
            "CREATE TABLE intruder (id int)",
            "DROP TABLE envgate_migrations",
            "CREATE TEMPORARY TABLE t (id int)",
        ] {
            match session.query(write).await {
                Err(QueryError::ReadOnly(m)) => assert!(m.contains("READ ONLY"), "{m}"),
                other => panic!("{write}: {other:?}"),
            }
        }
        let rows = session.query("SELECT version FROM envgate_migrations").await.unwrap();
        assert_eq!(rows, vec![vec![Some("1".to_owned())]]);
    });
    assert_eq!(
        db.query("SELECT version, sha256 FROM envgate_migrations"),
        before
    );
    assert!(db.query("SHOW TABLES LIKE 'intruder'").is_empty());

    // A user with SELECT alone reads the same matrix.
    let user = format!("ro{}", std::process::id());
    run_as(
        None,
        "",
        &format!(
            "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY 'Zq5ro'; \
             GRANT SELECT ON `{}`.* TO '{user}'@'%'",
            db.name
        ),
    )
    .unwrap();
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n",
            db.url_as(&user, "Zq5ro"),
            db.url(),
        ),
        &migrations(),
    );
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "dev"),
        pairs(&[
            ("1", "applied"),
            ("2", "pending"),
            ("3", "pending"),
            ("4", "pending")
        ])
    );
    assert!(
        !(run.stdout.clone() + &run.stderr).contains("Zq5ro"),
        "{run:?}"
    );

    // A managed environment reached as a user who may only read: the
    // server refuses the write, and nothing changes.
    let apply = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 3, "{apply:?}");
    assert!(apply.stderr.contains("CREATE command denied"), "{apply:?}");
    // export reads prod and writes a file, never the database.
    let export = p.envgate(&["export", "--env", "prod", "--out-dir", "b"]);
    assert_eq!(export.code, 0, "{export:?}");
    assert!(p.path().join("b/prod-1-4.sql").exists(), "{export:?}");
    assert_eq!(
        db.query("SELECT version, sha256 FROM envgate_migrations"),
        before
    );
    let _ = run_as(None, "", &format!("DROP USER IF EXISTS '{user}'@'%'"));
}

/// Other tools' ledgers on MariaDB: dbmate's, and a table created in upper
/// case, as Liquibase does there (table names are case-sensitive on Linux).
#[test]
fn other_tools_ledgers_on_mariadb() {
    let db = MyDb::create("my_dbmate");
    db.execute("CREATE TABLE schema_migrations (version varchar(128) NOT NULL PRIMARY KEY)");
    db.execute("INSERT INTO schema_migrations VALUES ('20260101000001'), ('20260101000002')");
    let p = Project::new(
        &format!(
            "format = \"dbmate\"\n[environments.prod]\nurl = \"{}\"\n",
            db.url()
        ),
        &[],
    );
    for (v, name) in [
        ("20260101000001", "users"),
        ("20260101000002", "tickets"),
        ("20260101000003", "status"),
    ] {
        p.write(
            &format!("db/migrations/{v}_{name}.sql"),
            "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n",
        );
    }
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod"),
        pairs(&[
            ("20260101000001", "applied"),
            ("20260101000002", "applied"),
            ("20260101000003", "pending"),
        ])
    );
    // The same ledger under an upper-case name.
    let upper = MyDb::create("my_upper");
    upper.execute("CREATE TABLE SCHEMA_MIGRATIONS (version varchar(128) NOT NULL PRIMARY KEY)");
    upper.execute("INSERT INTO SCHEMA_MIGRATIONS VALUES ('20260101000001')");
    p.write(
        "envgate.toml",
        &format!(
            "format = \"dbmate\"\n[environments.prod]\nurl = \"{}\"\n",
            upper.url()
        ),
    );
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(states(&run, "prod")[0].1, "applied", "{run:?}");
}

/// `envgate init` reads a MariaDB environment read-only for its ledger.
#[test]
fn init_probes_a_mariadb_environment() {
    let db = MyDb::create("my_init");
    ledger(&db, &[("1", "a", A, true)]);
    let p = Project::new("", &migrations());
    std::fs::remove_file(p.path().join("envgate.toml")).unwrap();
    let run = p.envgate(&["init", "--yes", "--env", &format!("dev={}", db.url())]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(p.path().join("envgate.toml")).unwrap();
    assert!(
        text.contains("# read-only probe: found envgate_migrations: envgate's ledger"),
        "{text}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("1_a ") && l.ends_with("applied")),
        "{run:?}"
    );
}

/// Laravel's and yoyo's ledgers on MariaDB, as their MySQL grammars create
/// them.
#[test]
fn laravel_and_yoyo_ledgers_on_mariadb() {
    let laravel = MyDb::create("my_laravel");
    laravel.execute(
        "CREATE TABLE migrations (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, migration varchar(255) NOT NULL, batch int NOT NULL)",
    );
    laravel.execute("INSERT INTO migrations (migration, batch) VALUES ('2026_01_01_000000_a', 1)");
    let p = Project::new(
        &format!(
            "format = \"laravel\"\n[environments.prod]\nurl = \"{}\"\n",
            laravel.url()
        ),
        &[],
    );
    p.write("database/migrations/2026_01_01_000000_a.php", "<?php\n");
    p.write("database/migrations/2026_01_02_000000_b.php", "<?php\n");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod"),
        pairs(&[
            ("2026_01_01_000000_a", "applied"),
            ("2026_01_02_000000_b", "pending")
        ])
    );

    let yoyo = MyDb::create("my_yoyo");
    yoyo.execute(
        "CREATE TABLE _yoyo_migration (migration_hash VARCHAR(64), migration_id VARCHAR(255), applied_at_utc TIMESTAMP(6), PRIMARY KEY (migration_hash))",
    );
    yoyo.execute(
        "INSERT INTO _yoyo_migration VALUES ('x', '0001_a', '2026-12-01 10:00:00.123456')",
    );
    let p = Project::new(
        &format!(
            "format = \"yoyo\"\n[environments.prod]\nurl = \"{}\"\n",
            yoyo.url()
        ),
        &[("0001_a.sql", "SELECT 1;\n"), ("0002_b.sql", "SELECT 1;\n")],
    );
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod"),
        pairs(&[("0001_a", "applied"), ("0002_b", "pending")])
    );
    assert_eq!(
        run.json()["migrations"][0]["cells"]["prod"]["applied_at"],
        "2026-12-01T10:00:00.123Z"
    );
}

/// dbmate's ledger as dbmate wrote it on MariaDB (fixture from the real
/// tool): envgate's matrix agrees with `dbmate status` cell by cell.
#[test]
fn dbmate_on_mariadb_matches_dbmate_status() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tools/dbmate-mariadb");
    let db = MyDb::create("my_dbmate_fixture");
    db.execute(&std::fs::read_to_string(fixture.join("ledger.sql")).unwrap());
    let p = Project::new(
        &format!(
            "format = \"dbmate\"\n[environments.prod]\nurl = \"{}\"\n",
            db.url()
        ),
        &[],
    );
    for entry in std::fs::read_dir(fixture.join("db/migrations")).unwrap() {
        let entry = entry.unwrap();
        p.write(
            &format!("db/migrations/{}", entry.file_name().to_string_lossy()),
            &std::fs::read_to_string(entry.path()).unwrap(),
        );
    }
    let tool: Vec<(String, String)> = std::fs::read_to_string(fixture.join("status.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (state, file) = l.split_once("] ")?;
            let version: String = file.chars().take_while(char::is_ascii_digit).collect();
            Some((
                version,
                if state == "[X" { "applied" } else { "pending" }.to_owned(),
            ))
        })
        .collect();
    assert_eq!(tool.len(), 5, "{tool:?}");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(states(&run, "prod"), tool);
}

/// yoyo's tables as yoyo wrote them on MariaDB (fixture from the real
/// tool): envgate's matrix agrees with `yoyo list` cell by cell.
#[test]
fn yoyo_on_mariadb_matches_yoyo_list() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tools/yoyo-mariadb");
    let db = MyDb::create("my_yoyo_fixture");
    db.execute(&std::fs::read_to_string(fixture.join("ledger.sql")).unwrap());
    let p = Project::new(
        &format!(
            "format = \"yoyo\"\n[environments.prod]\nurl = \"{}\"\n",
            db.url()
        ),
        &[],
    );
    for entry in std::fs::read_dir(fixture.join("migrations")).unwrap() {
        let entry = entry.unwrap();
        p.write(
            &format!("migrations/{}", entry.file_name().to_string_lossy()),
            &std::fs::read_to_string(entry.path()).unwrap(),
        );
    }
    let tool: Vec<(String, String)> = std::fs::read_to_string(fixture.join("status.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let state = match w.next()? {
                "A" => "applied",
                "U" => "pending",
                _ => return None,
            };
            Some((w.next()?.to_owned(), state.to_owned()))
        })
        .collect();
    assert_eq!(tool.len(), 5, "{tool:?}");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(states(&run, "prod"), tool);
}

/// tests/fixtures/tools/<tool> (from the real tool on MariaDB): its
/// ledger.sql loaded into a new database, its files copied into a project
/// whose envgate.toml is `head` and environment prod at that database; and
/// the tool's own status.txt.
fn tool_fixture(tool: &str, head: &str) -> (MyDb, Project, String) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tools")
        .join(tool);
    let db = MyDb::create(&format!("my_{}", tool.replace('-', "_")));
    db.execute(&std::fs::read_to_string(fixture.join("ledger.sql")).unwrap());
    let p = Project::new(
        &format!("{head}\n[environments.prod]\nurl = \"{}\"\n", db.url()),
        &[],
    );
    support::copy_dir(&fixture, p.path());
    let status = std::fs::read_to_string(fixture.join("status.txt")).unwrap();
    (db, p, status)
}

/// Django's django_migrations as Django wrote it on MariaDB: envgate's
/// matrix agrees with `showmigrations`; an applied migration edited after
/// envgate first saw it is drifted.
#[test]
fn django_on_mariadb_matches_showmigrations() {
    let (_db, p, status) =
        tool_fixture("django-mariadb", "format = \"django\"\nmigrations = \".\"");
    // `showmigrations`: an app label line, then " [X] name" / " [ ] name".
    let mut tool = BTreeMap::new();
    let mut app = String::new();
    for line in status.lines().take_while(|l| !l.starts_with("----")) {
        if let Some(rest) = line.strip_prefix(" [X] ") {
            tool.insert(format!("{app}.{rest}"), "applied".to_owned());
        } else if let Some(rest) = line.strip_prefix(" [ ] ") {
            tool.insert(format!("{app}.{rest}"), "pending".to_owned());
        } else if !line.trim().is_empty() {
            app = line.trim().to_owned();
        }
    }
    assert_eq!(tool.len(), 5, "{tool:?}");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod").into_iter().collect::<BTreeMap<_, _>>(),
        tool
    );

    // No checksum in the ledger: an edit after the first observation drifts.
    let file = p.path().join("tickets/migrations/0001_create_tickets.py");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("title text NOT NULL", "title varchar(200) NOT NULL"),
    )
    .unwrap();
    let run = p.envgate(&["status", "--format", "json"]);
    let j = run.json();
    let cell = &j["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "tickets.0001_create_tickets")
        .unwrap()["cells"]["prod"];
    assert_eq!(cell["state"], "drifted", "{run:?}");
    assert!(
        cell["note"]
            .as_str()
            .unwrap()
            .starts_with("changed since first observed applied at "),
        "{cell}"
    );
}

/// Alembic's alembic_version as Alembic wrote it on MariaDB: envgate's
/// matrix agrees with `alembic current` and the graph of `alembic history`.
#[test]
fn alembic_on_mariadb_matches_current_and_history() {
    let (_db, p, status) = tool_fixture(
        "alembic-mariadb",
        "format = \"alembic\"\nmigrations = \"migrations/versions\"",
    );
    let sections: Vec<&str> = status.split("----").collect();
    let mut stack: Vec<String> = sections[0]
        .lines()
        .filter(|l| !l.starts_with("INFO") && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    // History lines: "<parents> -> <child> ..., name".
    let mut parents = BTreeMap::new();
    for line in sections[1].lines().filter(|l| l.contains(" -> ")) {
        let (left, right) = line.split_once(" -> ").unwrap();
        let child = right.split([' ', ',']).next().unwrap().to_owned();
        let ps: Vec<String> = left
            .split(", ")
            .filter(|p| *p != "<base>")
            .map(str::to_owned)
            .collect();
        parents.insert(child, ps);
    }
    let mut applied = BTreeSet::new();
    while let Some(r) = stack.pop() {
        if applied.insert(r.clone()) {
            stack.extend(parents.get(&r).cloned().unwrap_or_default());
        }
    }
    let tool: BTreeMap<String, String> = parents
        .keys()
        .map(|r| {
            let state = if applied.contains(r) {
                "applied"
            } else {
                "pending"
            };
            (r.clone(), state.to_owned())
        })
        .collect();
    assert_eq!(tool.len(), 6, "{tool:?}");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod").into_iter().collect::<BTreeMap<_, _>>(),
        tool
    );
}

/// knex's knex_migrations as knex wrote it on MariaDB (mysql2): envgate's
/// matrix agrees with `knex migrate:list`.
#[test]
fn knex_on_mariadb_matches_migrate_list() {
    let (_db, p, status) = tool_fixture("knex-mariadb", "format = \"knex\"");
    let mut tool = BTreeMap::new();
    let mut state = "";
    for line in status.lines() {
        if line.contains("Completed Migration") {
            state = "applied";
        } else if line.contains("Pending Migration") {
            state = "pending";
        } else if !line.trim().is_empty() {
            tool.insert(line.trim().to_owned(), state.to_owned());
        }
    }
    assert_eq!(tool.len(), 5, "{tool:?}");
    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        states(&run, "prod").into_iter().collect::<BTreeMap<_, _>>(),
        tool
    );
}

/// Liquibase's DATABASECHANGELOG (upper case) as Liquibase wrote it on
/// MariaDB: envgate's matrix agrees with `liquibase validate` and
/// `history`, with Liquibase's own checksums.
#[test]
fn liquibase_on_mariadb_matches_validate_and_history_with_its_own_checksums() {
    let (_db, p, status) = tool_fixture(
        "liquibase-mariadb",
        "format = \"liquibase\"\nmigrations = \"changelog/db.changelog-master.xml\"",
    );
    // validate: "<file>::<id>::<author> was: 9:… but is now: 9:…"
    let mismatch = status
        .lines()
        .find(|l| l.contains(" was: ") && l.contains(" but is now: "))
        .expect("liquibase validate reported the edit");
    let (ident, rest) = mismatch.trim().split_once(" was: ").unwrap();
    let (was, now) = rest.split_once(" but is now: ").unwrap();
    let mut parts = ident.split("::");
    let (file, id, author) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let drifted_key = envgate::core::tools::liquibase::key(file, id, author);

    let run = p.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let j = run.json();
    let cell = &j["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == drifted_key.as_str())
        .unwrap()["cells"]["prod"];
    assert_eq!(cell["state"], "drifted", "{cell}");
    assert_eq!(cell["applied_checksum"], was.trim(), "{cell}");
    // envgate computes the same new checksum as Liquibase.
    assert_eq!(cell["checksum"]["today"], now.trim(), "{cell}");
    // history lists what ran; the rest (the pending one, and the changeset
    // that failed with failOnError:false, which Liquibase does not record)
    // is pending.
    let s = states(&run, "prod");
    let history: Vec<&str> = status
        .split("---- history")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(5).map(str::trim))
        .filter(|id| !id.is_empty() && *id != "Changeset ID")
        .collect();
    assert_eq!(history.len(), 4, "{history:?}");
    for (k, state) in &s {
        let want = if *k == drifted_key {
            "drifted"
        } else if history.iter().any(|id| k.contains(&format!("::{id}::"))) {
            "applied"
        } else {
            "pending"
        };
        assert_eq!(state, want, "{k}");
    }
    assert_eq!(s.len(), 6, "{s:?}");
}
