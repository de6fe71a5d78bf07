//! `envgate export`: bundles applied by the real `psql` and `sqlite3`
//! clients, then read back by `envgate status`; the read-only promise.

mod support;

use std::process::Command;
use support::{PgDb, PgRole, Project};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n";
const TICKETS: &str =
    "CREATE TABLE tickets (id bigint PRIMARY KEY, note text DEFAULT 'it''s; fine');\n";
const IDX: &str = "CREATE INDEX CONCURRENTLY tickets_note_idx ON tickets (note);\n";

fn psql(url: &str, file: &std::path::Path) -> (i32, String) {
    let bin =
        support::which("psql").expect("psql is not installed: apt-get install postgresql-client");
    let out = Command::new(bin)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ledger_dump(db: &PgDb, schema: &str) -> Vec<Vec<Option<String>>> {
    db.query_strings(&format!(
        "SELECT version, sha256, applied_via, success::text FROM \"{schema}\".envgate_migrations ORDER BY version"
    ))
}

#[test]
fn a_bundle_applied_by_psql_reads_back_as_applied() {
    let db = PgDb::create("bundle");
    let project = Project::new(
        &format!(
            "[environments.prod]\nurl = \"{}\"\nschema = \"app\"\n",
            db.url()
        ),
        &[
            ("1_users.sql", USERS),
            ("2_tickets.sql", TICKETS),
            ("3_idx.sql", IDX),
        ],
    );
    // The first migration was applied earlier by another bundle.
    db.execute(&format!(
        "CREATE SCHEMA app; SET search_path TO app; {USERS} {}; {}",
        envgate::core::ledger_table::create_table_sql(
            envgate::core::sql::Dialect::Postgres,
            Some("app")
        ),
        support::ledger::insert(
            "app.envgate_migrations",
            "1",
            "users",
            &support::ledger::hash(USERS),
            true,
            "2026-04-18 10:00:00+00"
        )
    ));
    let plan = project.envgate(&["plan", "--env", "prod"]);
    assert!(
        plan.stdout
            .contains("export_only: will export a bundle, will not apply"),
        "{plan:?}"
    );

    let run = project.envgate(&[
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
    assert_eq!(j["status"], "exported");
    let sql_path = project.path().join(j["bundle"]["sql"].as_str().unwrap());
    assert!(
        sql_path.ends_with("bundles/prod-1-3.sql"),
        "{}",
        sql_path.display()
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("bundles/prod-1-3.manifest.json")).unwrap(),
    )
    .unwrap();
    let bundle_text = std::fs::read_to_string(&sql_path).unwrap();
    assert_eq!(
        manifest["bundle_sha256"].as_str().unwrap(),
        envgate_sha256(&bundle_text)
    );
    assert_eq!(manifest["environment"], "prod");
    assert_eq!(manifest["mode"], "export_only");
    assert_eq!(manifest["from"], "1");
    assert_eq!(manifest["to"], "3");
    assert_eq!(
        manifest["migrations"][0]["sha256"],
        envgate::core::checksum::ContentHash::of(TICKETS.as_bytes()).hex()
    );
    assert_eq!(manifest["migrations"][1]["transaction"], false);
    assert!(bundle_text.starts_with("-- envgate bundle "), "header");
    assert!(
        bundle_text.contains("psql -X -v ON_ERROR_STOP=1 -f prod-1-3.sql"),
        "how to apply it"
    );
    assert!(!bundle_text.contains(&db.url()), "no URL in the bundle");
    // Nothing was written to the database by exporting.
    assert_eq!(ledger_dump(&db, "app").len(), 1);

    let (code, err) = psql(&db.url(), &sql_path);
    assert_eq!(code, 0, "psql failed: {err}");
    let id = manifest["bundle_id"].as_str().unwrap();
    let rows = ledger_dump(&db, "app");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][2].as_deref(), Some(format!("bundle:{id}").as_str()));
    assert_eq!(rows[2][2].as_deref(), Some(format!("bundle:{id}").as_str()));

    let status = project.envgate(&["status", "--format", "json", "--check"]);
    assert_eq!(status.code, 0, "{status:?}");
    for m in status.json()["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["prod"]["state"], "applied", "{m}");
        assert_eq!(m["cells"]["prod"]["applied_sha256"], m["sha256"], "{m}");
    }
    let valid = db.query_strings(
        "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'app.tickets_note_idx'::regclass",
    );
    assert_eq!(valid[0][0].as_deref(), Some("true"));

    // Twice: refused before anything changes.
    let before = ledger_dump(&db, "app");
    let (code, err) = psql(&db.url(), &sql_path);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("envgate bundle {id}: the ledger of prod is not in the state this bundle was built for; nothing was changed")), "{err}");
    assert!(
        err.contains(
            "applied now, not when the bundle was built: 2, 3; applied then, not now: none"
        ),
        "{err}"
    );
    assert_eq!(ledger_dump(&db, "app"), before);
    // Nothing left to export.
    let again = project.envgate(&["export", "--env", "prod", "--out-dir", "bundles"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("is up to date: no bundle to export"),
        "{again:?}"
    );
}

fn envgate_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[test]
fn a_bundle_for_another_state_changes_nothing() {
    let db = PgDb::create("stale");
    let project = Project::new(
        &format!("[environments.prod]\nurl = \"{}\"\n", db.url()),
        &[("1_users.sql", USERS), ("2_tickets.sql", TICKETS)],
    );
    let run = project.envgate(&["export", "--env", "prod", "--out-dir", "."]);
    assert_eq!(run.code, 0, "{run:?}");
    // Meanwhile someone applied the first migration another way.
    db.execute(&format!(
        "{USERS} {}; {}",
        envgate::core::ledger_table::create_table_sql(envgate::core::sql::Dialect::Postgres, None),
        support::ledger::insert(
            "envgate_migrations",
            "1",
            "users",
            &support::ledger::hash(USERS),
            true,
            "2026-04-18 10:00:00+00"
        )
    ));
    let (code, err) = psql(&db.url(), &project.path().join("prod-empty-2.sql"));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("applied now, not when the bundle was built: 1; applied then, not now: none"),
        "{err}"
    );
    assert!(
        err.contains(
            "HINT:  Export a new bundle from the current state: envgate export --env prod"
        ),
        "{err}"
    );
    assert_eq!(
        db.query_strings("SELECT count(*) FROM envgate_migrations")[0][0].as_deref(),
        Some("1")
    );
    assert_eq!(
        db.query_strings("SELECT to_regclass('tickets') IS NULL")[0][0].as_deref(),
        Some("t")
    );
}

#[test]
fn status_plan_and_export_issue_no_write() {
    let db = PgDb::create("ro");
    db.execute(&format!(
        "{USERS} {}; {}",
        envgate::core::ledger_table::create_table_sql(envgate::core::sql::Dialect::Postgres, None),
        support::ledger::insert(
            "envgate_migrations",
            "1",
            "users",
            &support::ledger::hash(USERS),
            true,
            "2026-04-18 10:00:00+00"
        )
    ));
    // A role that can only read, in a session the server holds read-only.
    let role = PgRole::create(
        "reader",
        &format!(
            "GRANT CONNECT ON DATABASE \"{db}\" TO {{role}}; ALTER ROLE {{role}} SET default_transaction_read_only = on;",
            db = db.name
        ),
    );
    db.execute(&format!(
        "GRANT USAGE ON SCHEMA public TO \"{r}\"; GRANT SELECT ON envgate_migrations TO \"{r}\";",
        r = role.name
    ));
    let (host, port) = support::server_addr();
    let url = format!("postgres://{}@{host}:{port}/{}", role.name, db.name);
    let project = Project::new(
        &format!(
            "[environments.staging]\nurl = \"{url}\"\n\n[environments.legacy]\nurl = \"{url}\"\nmode = \"reconcile_only\"\n"
        ),
        &[("1_users.sql", USERS), ("2_tickets.sql", TICKETS)],
    );
    let snapshot = || {
        (
            db.query_strings("SELECT version, sha256, applied_at::text FROM envgate_migrations ORDER BY 1"),
            db.query_strings("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"),
        )
    };
    let before = snapshot();
    for env in ["staging", "legacy"] {
        let s = project.envgate(&["status", "--env", env, "--format", "json"]);
        assert_eq!(s.code, 0, "{s:?}");
        assert_eq!(s.json()["environments"][0]["counts"]["pending"], 1);
        let p = project.envgate(&["plan", "--env", env]);
        assert_eq!(p.code, 0, "{p:?}");
        let e = project.envgate(&["export", "--env", env, "--out-dir", "bundles"]);
        assert_eq!(e.code, 0, "{e:?}");
        let a = project.envgate(&["apply", "--env", env]);
        assert_eq!(a.code, 3, "{a:?}");
    }
    assert_eq!(snapshot(), before, "something was written");
}

#[test]
fn a_sqlite_bundle_runs_in_the_sqlite3_shell() {
    let project = Project::new(
        "[environments.prod]\nurl = \"sqlite://prod.db\"\n",
        &[
            (
                "1_users.sql",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
            ),
            (
                "2_tickets.sql",
                "CREATE TABLE tickets (id INTEGER PRIMARY KEY, note TEXT DEFAULT 'a;b');\nCREATE TRIGGER t AFTER INSERT ON tickets BEGIN UPDATE tickets SET note = 'x;y' WHERE id = NEW.id; END;\n",
            ),
            ("3_vacuum.sql", "VACUUM;\n"),
        ],
    );
    let db = project.path().join("prod.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE app_meta (k TEXT)")
        .unwrap();
    let run = project.envgate(&["export", "--env", "prod", "--out-dir", "."]);
    assert_eq!(run.code, 0, "{run:?}");
    let sqlite3 =
        support::which("sqlite3").expect("sqlite3 is not installed: apt-get install sqlite3");
    let apply = || {
        Command::new(&sqlite3)
            .arg("-bail")
            .arg(&db)
            .stdin(std::fs::File::open(project.path().join("prod-empty-3.sql")).unwrap())
            .output()
            .unwrap()
    };
    let out = apply();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = project.envgate(&["status", "--format", "json", "--check"]);
    assert_eq!(status.code, 0, "{status:?}");
    for m in status.json()["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["prod"]["state"], "applied", "{m}");
        assert_eq!(m["cells"]["prod"]["applied_sha256"], m["sha256"], "{m}");
    }
    let again = apply();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("the ledger is not in the state this bundle was built for"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        out.contains("envgate: applied now, not when the bundle was built: 1"),
        "{out}"
    );
    let n: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM envgate_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
}
