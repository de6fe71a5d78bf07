//! `envgate apply` against real PostgreSQL: order, ledger rows, failures,
//! statements outside transactions, locking, PgBouncer, kills and lost
//! connections.

mod support;

use envgate::core::checksum::ContentHash;
use std::time::Duration;
use support::{BouncerAuth, PgBouncer, PgDb, Project, finish, spawn_envgate, wait_until};

fn managed(db_url: &str) -> String {
    format!("[environments.dev]\nurl = \"{db_url}\"\nmode = \"managed\"\n")
}

fn ledger_rows(db: &PgDb) -> Vec<Vec<Option<String>>> {
    db.query_strings(
        "SELECT version, name, sha256, applied_by, success::text, applied_via, (execution_ms >= 0)::text, error \
         FROM envgate_migrations ORDER BY version",
    )
}

fn table_exists(db: &PgDb, name: &str) -> bool {
    db.query_strings(&format!("SELECT to_regclass('{name}') IS NOT NULL"))[0][0].as_deref()
        == Some("t")
}

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n";
const TICKETS: &str = "CREATE TABLE tickets (\n  id bigint PRIMARY KEY,\n  user_id bigint REFERENCES users (id)\n);\n";
const IDX: &str =
    "-- the user's tickets\nCREATE INDEX CONCURRENTLY tickets_user_idx ON tickets (user_id);\n";

#[test]
fn applies_in_order_with_ledger_rows_that_status_reads_back() {
    let db = PgDb::create("apply");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("20260418_001_users.sql", USERS),
            ("20260418_001_users.down.sql", "DROP TABLE users;\n"),
            ("20260420_001_tickets.sql", TICKETS),
            ("20260421_001_idx.sql", IDX),
        ],
    );
    let plan = project.envgate(&["plan", "--env", "dev"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("3 migrations pending"), "{plan:?}");
    assert!(
        plan.stdout
            .contains("[outside a transaction: CREATE INDEX CONCURRENTLY]"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("20260420_001 has no down migration"),
        "{plan:?}"
    );

    let dry = project.envgate(&["apply", "--env", "dev", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.starts_with("dry run: nothing is applied."),
        "{dry:?}"
    );
    assert!(
        !table_exists(&db, "envgate_migrations"),
        "a dry run wrote to the database"
    );

    let run = project.envgate(&[
        "apply", "--env", "dev", "--actor", "alice", "--format", "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let j = run.json();
    assert_eq!(j["status"], "applied");
    let applied: Vec<_> = j["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["20260418_001", "20260420_001", "20260421_001"]);
    assert_eq!(j["applied"][2]["transaction"], false);
    assert_eq!(j["applied_by"], "alice");

    let rows = ledger_rows(&db);
    let hash = |body: &str| Some(ContentHash::of(body.as_bytes()).tagged());
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows,
        [
            vec![
                s("20260418_001"),
                s("users"),
                hash(USERS),
                s("alice"),
                s("true"),
                s("managed"),
                s("true"),
                None
            ],
            vec![
                s("20260420_001"),
                s("tickets"),
                hash(TICKETS),
                s("alice"),
                s("true"),
                s("managed"),
                s("true"),
                None
            ],
            vec![
                s("20260421_001"),
                s("idx"),
                hash(IDX),
                s("alice"),
                s("true"),
                s("managed"),
                s("true"),
                None
            ],
        ]
    );
    let valid_index = db.query_strings(
        "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'tickets_user_idx'::regclass",
    );
    assert_eq!(valid_index[0][0].as_deref(), Some("true"));

    let status = project.envgate(&["status", "--format", "json", "--check"]);
    assert_eq!(status.code, 0, "{status:?}");
    let sj = status.json();
    for m in sj["migrations"].as_array().unwrap() {
        assert_eq!(m["cells"]["dev"]["state"], "applied", "{m}");
        assert_eq!(m["cells"]["dev"]["applied_sha256"], m["sha256"]);
    }
    let again = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("is up to date: nothing to apply"),
        "{again:?}"
    );
}

#[test]
fn to_applies_up_to_a_version() {
    let db = PgDb::create("to");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_a.sql", "CREATE TABLE a (id int);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
            ("3_c.sql", "CREATE TABLE c (id int);"),
        ],
    );
    let run = project.envgate(&["apply", "--env", "dev", "--up-to", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(table_exists(&db, "b") && !table_exists(&db, "c"));
    let bad = project.envgate(&["apply", "--env", "dev", "--up-to", "9"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("no migration with version 9"),
        "{bad:?}"
    );
}

#[test]
fn a_syntax_error_is_located_rolled_back_and_recorded() {
    let db = PgDb::create("syntax");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_users.sql", USERS),
            (
                "2_broken.sql",
                "CREATE TABLE half (id int);\n\n-- then a typo\nCREATE TABLEX nope (id int);\n",
            ),
            ("3_after.sql", "CREATE TABLE after_it (id int);\n"),
        ],
    );
    let run = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("2_broken failed: migrations/2_broken.sql:4:8: ERROR: syntax error at or near \"TABLEX\""),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("rolled back: none of it took effect."),
        "{run:?}"
    );
    assert!(table_exists(&db, "users"));
    assert!(
        !table_exists(&db, "half"),
        "the failed migration left a partial change"
    );
    assert!(
        !table_exists(&db, "after_it"),
        "a migration after the failure ran"
    );
    let rows = db.query_strings(
        "SELECT version, success::text, error FROM envgate_migrations ORDER BY version",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1].as_deref(), Some("false"));
    assert!(
        rows[1][2]
            .as_deref()
            .unwrap()
            .starts_with("migrations/2_broken.sql:4:8: ERROR: syntax error")
    );
    let status = project.envgate(&["status", "--format", "json"]);
    assert_eq!(
        status.json()["migrations"][1]["cells"]["dev"]["state"],
        "failed"
    );

    // A failed run blocks until fixed and retried on purpose.
    let blocked = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(blocked.code, 3, "{blocked:?}");
    assert!(blocked.stdout.contains("2 failed at"), "{blocked:?}");
    project.write("migrations/2_broken.sql", "CREATE TABLE half (id int);\n");
    // Letting drift through is not retrying a failure: that is its own flag.
    let drift_only = project.envgate(&["apply", "--env", "dev", "--allow-drift"]);
    assert_eq!(drift_only.code, 3, "{drift_only:?}");
    assert!(
        drift_only
            .stdout
            .contains("--retry-failed (runs the failed migrations again)"),
        "{drift_only:?}"
    );
    let retried = project.envgate(&["apply", "--env", "dev", "--retry-failed"]);
    assert_eq!(retried.code, 0, "{retried:?}");
    let rows = db.query_strings(
        "SELECT version, success::text, error FROM envgate_migrations ORDER BY version",
    );
    assert_eq!(
        rows.iter()
            .map(|r| r[1].as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["true", "true", "true"]
    );
    assert_eq!(rows[1][2], None);
}

#[test]
fn a_constraint_violation_names_its_statement_and_leaves_no_partial_schema() {
    let db = PgDb::create("constraint");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_users.sql", USERS),
            (
                "2_seed.sql",
                "CREATE TABLE seed_marker (id int);\nINSERT INTO users (id, email) VALUES (1, 'a@x');\nINSERT INTO users (id) VALUES (2);\n",
            ),
        ],
    );
    let run = project.envgate(&["apply", "--env", "dev", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let f = &run.json()["failure"];
    assert_eq!(f["version"], "2");
    assert_eq!(f["line"], 3);
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .contains("violates not-null constraint"),
        "{f}"
    );
    assert_eq!(f["transaction"], true);
    assert_eq!(f["recorded"], true);
    assert!(!table_exists(&db, "seed_marker"));
    assert_eq!(
        db.query_strings("SELECT count(*) FROM users")[0][0].as_deref(),
        Some("0")
    );
}

#[test]
fn statements_outside_a_transaction_and_their_partial_failure() {
    let db = PgDb::create("notx");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_users.sql", USERS),
            (
                "2_vacuum.sql",
                "-- envgate:no-transaction\nCREATE TABLE made_outside (id int);\nVACUUM users;\n",
            ),
            (
                "3_bad.sql",
                "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nCREATE INDEX CONCURRENTLY bad_idx ON nope (x);\n",
            ),
        ],
    );
    let run = project.envgate(&["apply", "--env", "dev", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let j = run.json();
    assert_eq!(j["applied"][1]["version"], "2");
    assert_eq!(j["applied"][1]["transaction"], false);
    let f = &j["failure"];
    assert_eq!(f["version"], "3");
    assert_eq!(f["transaction"], false);
    assert_eq!(f["partial"], true);
    assert_eq!(f["line"], 2);
    assert!(table_exists(&db, "made_outside"));
    // The first statement took effect, as the report says.
    assert!(table_exists(&db, "users_email_idx"));
    // Retried as it is, its first statement now fails: nothing more changes,
    // and the report says which statement and that nothing of it ran.
    let text = project.envgate(&["apply", "--env", "dev", "--retry-failed"]);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(
        text.stdout.contains(
            "migrations/3_bad.sql:1:1: ERROR: relation \"users_email_idx\" already exists"
        ),
        "{text:?}"
    );
    assert!(
        text.stdout
            .contains("its first statement failed, so nothing of it took effect"),
        "{text:?}"
    );
}

#[test]
fn drift_blocks_apply_unless_allowed() {
    let db = PgDb::create("drift");
    let project = Project::new(&managed(&db.url()), &[("1_users.sql", USERS)]);
    assert_eq!(project.envgate(&["apply", "--env", "dev"]).code, 0);
    project.write("migrations/1_users.sql", "CREATE TABLE users (id int);\n");
    project.write("migrations/2_more.sql", "CREATE TABLE more (id int);\n");
    let run = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout
            .contains("1 drifted: migrations/1_users.sql is now"),
        "{run:?}"
    );
    assert!(!table_exists(&db, "more"));
    let ok = project.envgate(&["apply", "--env", "dev", "--allow-drift"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(table_exists(&db, "more"));
}

#[test]
fn apply_is_refused_for_other_modes_before_connecting() {
    // A listener that counts connections: apply must not open any.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = Project::new(
        &format!(
            "[environments.prod]\nurl = \"postgres://app:pw@127.0.0.1:{port}/app\"\n\n\
             [environments.legacy]\nurl = \"postgres://app:pw@127.0.0.1:{port}/app\"\nmode = \"reconcile_only\"\n"
        ),
        &[("1_users.sql", USERS)],
    );
    let run = project.envgate(&["apply", "--env", "prod"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(
            "environment 'prod' is export_only (chosen from its name): envgate never writes to it"
        ),
        "{run:?}"
    );
    assert!(run.stderr.contains("envgate export --env prod"), "{run:?}");
    let run = project.envgate(&["apply", "--env", "legacy", "--dry-run"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("reconcile_only"), "{run:?}");
    assert!(
        listener.accept().is_err(),
        "apply connected to a non-managed environment"
    );
}

#[test]
fn concurrent_applies_never_apply_a_migration_twice() {
    let db = PgDb::create("concurrent");
    let migrations: Vec<(String, String)> = (1..=5)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("SELECT pg_sleep(0.1);\nCREATE TABLE t{i} (id int);\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = migrations
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let project = Project::new(&managed(&db.url()), &refs);
    let a = spawn_envgate(
        project.path(),
        &["apply", "--env", "dev", "--actor", "a", "--format", "json"],
    );
    let b = spawn_envgate(
        project.path(),
        &["apply", "--env", "dev", "--actor", "b", "--format", "json"],
    );
    let (a, b) = (finish(a), finish(b));
    assert_eq!((a.code, b.code), (0, 0), "{a:?}\n{b:?}");
    let n = |r: &support::Run| r.json()["applied"].as_array().unwrap().len();
    assert_eq!(n(&a) + n(&b), 5, "{a:?}\n{b:?}");
    assert_eq!(
        db.query_strings("SELECT count(*) FROM envgate_migrations")[0][0].as_deref(),
        Some("5")
    );
}

#[test]
fn a_held_lock_times_out_naming_its_holder() {
    let db = PgDb::create("lock");
    let project = Project::new(&managed(&db.url()), &[("1_users.sql", USERS)]);
    let mut holder = postgres::Client::connect(
        &format!("{}?application_name=deploy-job-42", db.url()),
        postgres::NoTls,
    )
    .unwrap();
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({})",
            envgate::core::ledger_table::lock_key(None)
        ))
        .unwrap();
    let run = project.envgate(&["apply", "--env", "dev", "--lock-timeout", "1s"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout.contains("lock is held by deploy-job-42 (pid"),
        "{run:?}"
    );
    assert!(run.stdout.contains("gave up after 1s"), "{run:?}");
    assert!(!table_exists(&db, "users"));
    drop(holder);
    assert_eq!(project.envgate(&["apply", "--env", "dev"]).code, 0);
}

#[test]
fn through_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start("transaction", BouncerAuth::Any);
    let db = PgDb::create("pooled");
    let url = bouncer.url(&support::admin_user(), &db.name);
    let migrations: Vec<(String, String)> = (1..=4)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("SELECT pg_sleep(0.05);\nCREATE TABLE t{i} (id int);\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = migrations
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let project = Project::new(&managed(&url), &refs);
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
    let count = |r: &support::Run, key: &str| r.json()[key].as_array().unwrap().len();
    assert_eq!(
        count(&a, "applied") + count(&b, "applied"),
        4,
        "{a:?}\n{b:?}"
    );
    assert_eq!(
        db.query_strings("SELECT count(*) FROM envgate_migrations")[0][0].as_deref(),
        Some("4")
    );
    // No session lock was left behind on a pooled server connection.
    // (This database's only: other tests hold advisory locks of their own.)
    let leftover = db.query_strings(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    assert_eq!(leftover[0][0].as_deref(), Some("0"));

    // A migration that must run outside a transaction needs a direct connection.
    project.write(
        "migrations/5_idx.sql",
        "CREATE INDEX CONCURRENTLY t1_idx ON t1 (id);\n",
    );
    let run = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout
            .contains("5 must run outside a transaction, which needs a direct connection"),
        "{run:?}"
    );
}

fn backend_of_apply(db: &PgDb) -> Option<String> {
    db.query_strings(
        "SELECT pid::text FROM pg_stat_activity WHERE application_name LIKE 'envgate apply%' AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
    )
    .into_iter()
    .next()
    .and_then(|r| r[0].clone())
}

#[test]
fn killing_apply_mid_migration_leaves_ledger_and_schema_agreeing() {
    let db = PgDb::create("kill");
    // Let the server notice the dead client while the migration sleeps.
    db.execute(&format!(
        "ALTER DATABASE \"{}\" SET client_connection_check_interval = '100ms'",
        db.name
    ));
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_users.sql", USERS),
            (
                "2_slow.sql",
                "CREATE TABLE victim (id int);\nSELECT pg_sleep(30);\n",
            ),
        ],
    );
    let mut child = spawn_envgate(project.path(), &["apply", "--env", "dev"]);
    wait_until(
        Duration::from_secs(20),
        "the slow migration to start",
        || backend_of_apply(&db).is_some(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        Duration::from_secs(20),
        "the server to end the killed session",
        || backend_of_apply(&db).is_none(),
    );
    let versions = db.query_strings("SELECT version FROM envgate_migrations ORDER BY version");
    assert_eq!(
        versions,
        [vec![Some("1".to_owned())]],
        "only the finished migration is recorded"
    );
    assert!(table_exists(&db, "users"));
    assert!(
        !table_exists(&db, "victim"),
        "the killed migration left a change the ledger does not know"
    );
    // The lock died with the session: the next run goes ahead.
    project.write("migrations/2_slow.sql", "CREATE TABLE victim (id int);\n");
    let run = project.envgate(&["apply", "--env", "dev", "--lock-timeout", "5s"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(table_exists(&db, "victim"));
}

#[test]
fn a_lost_connection_is_reported_and_the_ledger_stays_consistent() {
    let db = PgDb::create("lost");
    let project = Project::new(
        &managed(&db.url()),
        &[
            ("1_users.sql", USERS),
            (
                "2_slow.sql",
                "CREATE TABLE victim (id int);\nSELECT pg_sleep(30);\n",
            ),
        ],
    );
    let child = spawn_envgate(
        project.path(),
        &["apply", "--env", "dev", "--format", "json"],
    );
    wait_until(
        Duration::from_secs(20),
        "the slow migration to start",
        || backend_of_apply(&db).is_some(),
    );
    let pid = backend_of_apply(&db).unwrap();
    db.execute(&format!("SELECT pg_terminate_backend({pid})"));
    let run = finish(child);
    assert_eq!(run.code, 1, "{run:?}");
    let f = &run.json()["failure"];
    assert_eq!(f["version"], "2");
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .contains("terminating connection"),
        "{f}"
    );
    assert_eq!(f["recorded"], false);
    let versions =
        db.query_strings("SELECT version, success::text FROM envgate_migrations ORDER BY version");
    assert_eq!(
        versions,
        [vec![Some("1".to_owned()), Some("true".to_owned())]]
    );
    assert!(!table_exists(&db, "victim"));
}

#[test]
fn a_ledger_table_of_another_shape_is_refused_clearly() {
    let db = PgDb::create("shape");
    db.execute("CREATE TABLE envgate_migrations (version bigint PRIMARY KEY, checksum bytea)");
    let project = Project::new(&managed(&db.url()), &[("1_users.sql", USERS)]);
    let run = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("environment 'dev': ledger table public.envgate_migrations cannot be read"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("column \"name\" does not exist"),
        "{run:?}"
    );
    assert!(!table_exists(&db, "users"));
}

#[test]
fn schema_override_puts_ledger_and_objects_in_the_schema() {
    let db = PgDb::create("schema");
    let project = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nschema = \"tenant_a\"\n",
            db.url()
        ),
        &[("1_users.sql", USERS)],
    );
    let run = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(table_exists(&db, "tenant_a.envgate_migrations"));
    assert!(
        table_exists(&db, "tenant_a.users"),
        "the migration ran with search_path set to the schema"
    );
    assert!(!table_exists(&db, "public.users"));
}
