//! A bundle makes its client run exactly the statements `apply` runs, and
//! nothing else: no psql meta-command or sqlite3 dot-command can reach the
//! client from a migration's text. Checked with the real `psql` and
//! `sqlite3`, by example and by a property over generated migrations.

mod support;

use proptest::prelude::*;
use std::path::Path;
use std::process::Command;
use support::{PgDb, Project};

/// `dev` (managed) and `prod` (export_only) on two PostgreSQL databases.
fn pg_pair(dev: &PgDb, prod: &PgDb) -> String {
    format!(
        "[environments.dev]\nurl = \"{}\"\n\n[environments.prod]\nurl = \"{}\"\n",
        dev.url(),
        prod.url()
    )
}

fn sqlite_pair() -> &'static str {
    "[environments.dev]\nurl = \"sqlite://dev.db\"\n\n[environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"export_only\"\n"
}

/// A project on `sqlite_pair`, with prod's database created (empty), as a
/// team's would be.
fn sqlite_project(migrations: &[(&str, &str)]) -> Project {
    let project = Project::new(sqlite_pair(), migrations);
    rusqlite::Connection::open(project.path().join("prod.db"))
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    project
}

/// Runs a bundle with psql as a pipeline would, in `dir` (so a command
/// that escaped would leave its files there): (exit code, stderr).
fn psql(dir: &Path, url: &str, file: &Path) -> (i32, String) {
    let bin =
        support::which("psql").expect("psql is not installed: apt-get install postgresql-client");
    let out = Command::new(bin)
        .current_dir(dir)
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

fn sqlite3(dir: &Path, db: &str, file: &Path) -> (i32, String) {
    let bin = support::which("sqlite3").expect("sqlite3 is not installed: apt-get install sqlite3");
    let out = Command::new(bin)
        .current_dir(dir)
        .arg("-bail")
        .arg(db)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files a command escaping into the client would leave behind.
fn no_escape(dir: &Path) {
    for name in ["pwned", "out.txt", "included.sql"] {
        assert!(
            !dir.join(name).exists(),
            "a client command ran: {name} exists"
        );
    }
}

/// The exported bundle's path, from `export --format json`.
fn export(project: &Project) -> Result<std::path::PathBuf, support::Run> {
    let run = project.envgate(&[
        "export",
        "--env",
        "prod",
        "--out-dir",
        "bundles",
        "--format",
        "json",
    ]);
    if run.code != 0 {
        return Err(project.envgate(&["export", "--env", "prod", "--out-dir", "bundles"]));
    }
    match run.json()["bundle"]["sql"].as_str() {
        Some(p) => Ok(project.path().join(p)),
        // Refused: what a person reads.
        None => Err(project.envgate(&["export", "--env", "prod", "--out-dir", "bundles"])),
    }
}

fn pg_schema(db: &PgDb) -> Vec<Vec<Option<String>>> {
    db.query_strings(
        "SELECT c.relname::text, c.relkind::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         WHERE n.nspname = 'public' AND c.relname <> 'envgate_migrations' ORDER BY 1, 3",
    )
}

fn pg_ledger(db: &PgDb) -> Vec<Vec<Option<String>>> {
    if db.query_strings("SELECT to_regclass('public.envgate_migrations') IS NULL")[0][0].as_deref()
        == Some("t")
    {
        return Vec::new();
    }
    db.query_strings(
        "SELECT version, name, sha256, success::text FROM public.envgate_migrations ORDER BY version",
    )
}

fn pg_data(db: &PgDb) -> Vec<Vec<Option<String>>> {
    if db.query_strings("SELECT to_regclass('public.notes') IS NULL")[0][0].as_deref() == Some("t")
    {
        return Vec::new();
    }
    db.query_strings("SELECT body FROM public.notes ORDER BY body")
}

#[test]
fn the_reported_psql_escape_is_refused_by_plan_apply_and_export() {
    let (dev, prod) = (PgDb::create("esc_dev"), PgDb::create("esc_prod"));
    let project = Project::new(
        &pg_pair(&dev, &prod),
        &[(
            "20260101_001_s1.sql",
            "CREATE TABLE s1 (id int);\n\\! touch pwned\n",
        )],
    );
    let want = "migrations/20260101_001_s1.sql:2: `\\! touch pwned` is a psql command, not SQL";
    let plan = project.envgate(&["plan", "--env", "prod"]);
    assert!(plan.stdout.contains(want), "{plan:?}");
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 3, "{apply:?}");
    assert!(
        apply.stdout.contains(want) || apply.stderr.contains(want),
        "{apply:?}"
    );
    assert!(
        apply
            .stdout
            .contains("Fix the migration: no flag waives this."),
        "{apply:?}"
    );
    for flag in ["--allow-drift", "--retry-failed"] {
        let forced = project.envgate(&["apply", "--env", "dev", flag]);
        assert_eq!(forced.code, 3, "{flag}: {forced:?}");
    }
    assert!(pg_ledger(&dev).is_empty());
    let run = export(&project).unwrap_err();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains(want), "{run:?}");
    assert!(!project.path().join("bundles").exists());
    // The same with `\set ON_ERROR_STOP 0`, a backslash command after a
    // statement on its line, and `\copy … program`.
    for (body, line) in [
        ("\\set ON_ERROR_STOP 0\nCREATE TABLE s2 (id int);\n", 1),
        ("CREATE TABLE s2 (id int); \\o out.txt\nSELECT 1;\n", 1),
        (
            "CREATE TABLE s2 (id int);\n/* c */ \\copy s2 from program 'touch pwned'\n",
            2,
        ),
    ] {
        project.write("migrations/20260101_001_s1.sql", body);
        let run = export(&project).unwrap_err();
        assert!(
            run.stdout
                .contains(&format!("migrations/20260101_001_s1.sql:{line}: `\\")),
            "{body:?}: {run:?}"
        );
    }
    no_escape(project.path());
}

/// Migrations whose literals, identifiers, comments and function bodies
/// hold what psql would read as commands outside them: valid SQL, run as
/// SQL by apply and by the bundle alike.
#[test]
fn command_look_alikes_inside_sql_stay_sql_in_psql() {
    let (dev, prod) = (PgDb::create("alike_dev"), PgDb::create("alike_prod"));
    let first = "CREATE TABLE notes (body text);\n\
        INSERT INTO notes VALUES ('\\! touch pwned'), (E'line\\n\\\\o out.txt'), ($$\n\\! touch pwned\n$$);\n\
        -- \\! touch pwned\n\
        /* \\i included.sql\n\\! touch pwned */\n\
        INSERT INTO notes VALUES ($envgate_sql$ ; \\! touch pwned $envgate_sql$), ('$envgate_do$'), (':DBNAME :''x'' :\"y\"');\n\
        CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN '\\! touch pwned'; END $body$;\n\
        CREATE TABLE \"we\\ird\" (\"\\!\" int);\n";
    let second = "-- envgate:no-transaction\nINSERT INTO notes VALUES ('outside; \\! touch pwned');\nCREATE INDEX CONCURRENTLY notes_idx ON notes (body) WHERE body <> '-- x';\n";
    let project = Project::new(
        &pg_pair(&dev, &prod),
        &[("1_notes.sql", first), ("2_idx.sql", second)],
    );
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    let bundle = export(&project).expect("export");
    let (code, err) = psql(project.path(), &prod.url(), &bundle);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("NOTICE"), "{err}");
    no_escape(project.path());
    assert_eq!(pg_schema(&dev), pg_schema(&prod));
    assert_eq!(pg_data(&dev), pg_data(&prod));
    assert_eq!(pg_data(&prod).len(), 7);
    let ledger = |db: &PgDb| -> Vec<Vec<Option<String>>> { pg_ledger(db).into_iter().collect() };
    assert_eq!(ledger(&dev), ledger(&prod));
}

#[test]
fn sqlite_dot_commands_are_refused_and_look_alikes_stay_sql() {
    let project = sqlite_project(&[(
        "1_s1.sql",
        "CREATE TABLE s1 (id int);\n.shell touch pwned\n",
    )]);
    let run = export(&project).unwrap_err();
    assert!(
        run.stdout.contains("migrations/1_s1.sql:2: a line starting with `.`: the sqlite3 shell would run `.shell touch pwned` as a command"),
        "{run:?}"
    );
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 3, "{apply:?}");
    for body in [
        ".bail off\nCREATE TABLE s1 (id int);\n",
        "CREATE TABLE s1 (id int);\n  .output out.txt\nSELECT 1;\n",
        "INSERT INTO t VALUES ('a\n.system touch pwned\n');\n",
        "CREATE TABLE s1 (id int)\n/\n;\n",
    ] {
        project.write("migrations/1_s1.sql", body);
        let run = export(&project).unwrap_err();
        assert!(
            run.stdout.contains("migrations/1_s1.sql:"),
            "{body:?}: {run:?}"
        );
    }
    // What only looks like a command stays SQL.
    project.write(
        "migrations/1_s1.sql",
        "CREATE TABLE s1 (body text); -- .shell touch pwned\n\
         INSERT INTO s1 VALUES ('.shell touch pwned'), ('\\! touch pwned'), ('a; .read included.sql');\n",
    );
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    let bundle = export(&project).expect("export");
    let (code, err) = sqlite3(project.path(), "prod.db", &bundle);
    assert_eq!(code, 0, "{err}");
    no_escape(project.path());
    let dump = |db: &str| {
        let c = rusqlite::Connection::open(project.path().join(db)).unwrap();
        let mut s = c.prepare("SELECT body FROM s1 ORDER BY body").unwrap();
        s.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    assert_eq!(dump("dev.db"), dump("prod.db"));
}

#[test]
fn an_unterminated_comment_is_refused_by_apply_and_export_alike() {
    let (dev, prod) = (PgDb::create("open_dev"), PgDb::create("open_prod"));
    let project = Project::new(
        &pg_pair(&dev, &prod),
        &[(
            "1_users.sql",
            "CREATE TABLE users (id int);\n\n/* unterminated\nINSERT INTO users VALUES (1);\n",
        )],
    );
    let want = "migrations/1_users.sql:3: a /* comment that is never closed";
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 3, "{apply:?}");
    assert!(apply.stdout.contains(want), "{apply:?}");
    let run = export(&project).unwrap_err();
    assert!(run.stdout.contains(want), "{run:?}");
    assert!(pg_ledger(&dev).is_empty());
}

#[test]
fn a_pg_dump_baseline_that_empties_search_path_applies_and_bundles() {
    let (dev, prod) = (PgDb::create("dump_dev"), PgDb::create("dump_prod"));
    let baseline = "SET statement_timeout = 0;\n\
        SELECT pg_catalog.set_config('search_path', '', false);\n\
        CREATE TABLE public.users (id bigint NOT NULL, email text);\n\
        ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);\n";
    let project = Project::new(
        &pg_pair(&dev, &prod),
        &[
            ("1_baseline.sql", baseline),
            ("2_more.sql", "CREATE TABLE public.orders (id bigint);\n"),
        ],
    );
    let apply = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    let bundle = export(&project).expect("export");
    let (code, err) = psql(project.path(), &prod.url(), &bundle);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pg_ledger(&dev).len(), 2);
    assert_eq!(pg_ledger(&dev), pg_ledger(&prod));
    let status = project.envgate(&["status", "--check"]);
    assert_eq!(status.code, 0, "{status:?}");
}

#[test]
fn two_runs_of_one_bundle_at_once_queue_on_the_lock() {
    let prod = PgDb::create("twice");
    let dev = PgDb::create("twice_dev");
    let project = Project::new(
        &pg_pair(&dev, &prod),
        &[
            ("1_users.sql", "CREATE TABLE users (id int);\n"),
            ("2_slow.sql", "SELECT pg_sleep(0.5);\n"),
        ],
    );
    let bundle = export(&project).expect("export");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (dir, url, file) = (project.path().to_owned(), prod.url(), bundle.clone());
            std::thread::spawn(move || psql(&dir, &url, &file))
        })
        .collect();
    let results: Vec<(i32, String)> = runs.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|(c, _)| *c == 0).count();
    assert_eq!(ok, 1, "{results:?}");
    let loser = &results.iter().find(|(c, _)| *c != 0).unwrap().1;
    assert!(
        loser.contains("the ledger is not where the previous step left it")
            || loser.contains("is not in the state this bundle was built for"),
        "{loser}"
    );
    assert!(!loser.contains("duplicate key"), "{loser}");
    assert_eq!(pg_ledger(&prod).len(), 2);
    // A later bundle on the existing ledger prints no NOTICE.
    project.write("migrations/3_more.sql", "CREATE TABLE more (id int);\n");
    let next = export(&project).expect("export");
    let (code, err) = psql(project.path(), &prod.url(), &next);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "psql printed something");
}

/// A migration that runs outside a transaction, killed midway, shows as
/// failed (interrupted) and is not run again without the operator.
#[test]
fn an_interrupted_migration_outside_a_transaction_is_failed_not_pending() {
    let db = PgDb::create("killed");
    let project = Project::new(
        &format!("[environments.dev]\nurl = \"{}\"\n", db.url()),
        &[(
            "1_slow.sql",
            "-- envgate:no-transaction\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nSELECT pg_sleep(30);\n",
        )],
    );
    let mut child = support::spawn_envgate(project.path(), &["apply", "--env", "dev"]);
    support::wait_until(
        std::time::Duration::from_secs(20),
        "the migration to start",
        || {
            db.query_strings(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'",
            )[0][0]
                .as_deref()
                != Some("0")
        },
    );
    child.kill().unwrap();
    let _ = child.wait();
    // The server notices the client is gone only when it next writes:
    // end the session as a crash would.
    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    ));
    let status = project.envgate(&["status", "--format", "json"]);
    let j = status.json();
    let cell = &j["migrations"][0]["cells"]["dev"];
    assert_eq!(cell["state"], "failed", "{j}");
    assert!(
        cell["error"].as_str().unwrap().starts_with(
            "interrupted: it runs outside a transaction and started, but did not finish"
        ),
        "{cell}"
    );
    let table = project.envgate(&["status"]);
    assert!(table.stdout.contains("1_slow in dev at "), "{table:?}");
    assert!(
        table
            .stdout
            .contains(": interrupted: it runs outside a transaction"),
        "{table:?}"
    );
    let again = project.envgate(&["apply", "--env", "dev"]);
    assert_eq!(again.code, 3, "{again:?}");
    assert!(again.stdout.contains("1 failed"), "{again:?}");
}

#[test]
fn a_sqlite_hot_journal_is_explained() {
    let project = Project::new(
        "[environments.prod]\nurl = \"sqlite://prod.db\"\n",
        &[("1_users.sql", "CREATE TABLE users (id int);\n")],
    );
    let bin = support::which("sqlite3").expect("sqlite3 is not installed: apt-get install sqlite3");
    let db = project.path().join("prod.db");
    let status = Command::new(&bin)
        .arg(&db)
        .arg("CREATE TABLE t (x); CREATE TABLE main.envgate_migrations (version TEXT);")
        .status()
        .unwrap();
    assert!(status.success());
    // A writer killed in the middle of a transaction that spilled to disk.
    let mut writer = Command::new(&bin)
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writer
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"PRAGMA cache_size=1;\nBEGIN;\nWITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000) INSERT INTO t SELECT randomblob(100) FROM c;\n")
        .unwrap();
    let journal = project.path().join("prod.db-journal");
    support::wait_until(std::time::Duration::from_secs(20), "a journal", || {
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0)
            && std::fs::metadata(&db).is_ok_and(|m| m.len() > 1_000_000)
    });
    writer.kill().unwrap();
    let _ = writer.wait();
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    let err = run.json()["environments"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(err.contains("has a hot journal"), "{err}");
    assert!(
        err.contains("Open the file once with write access"),
        "{err}"
    );
    assert!(
        !err.contains("attempt to write a readonly database"),
        "{err}"
    );
}

// The property: for any migration text, either `apply` and `export` both
// refuse it, or the bundle run by the real client leaves the same schema,
// data and ledger as `apply`, and never runs a client command.

fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "CREATE TABLE notes (body text)",
        "INSERT INTO notes VALUES ('a')",
        "INSERT INTO notes VALUES ('\\! touch pwned')",
        "INSERT INTO notes VALUES ($$ \\! touch pwned $$)",
        "INSERT INTO notes VALUES ($envgate_sql$ x $envgate_sql$)",
        "INSERT INTO notes VALUES ('$envgate_do$')",
        "INSERT INTO notes VALUES (E'\\\\o out.txt')",
        "INSERT INTO notes VALUES ('.shell touch pwned')",
        "INSERT INTO notes VALUES ('x\n.shell touch pwned\n')",
        "INSERT INTO notes VALUES (':DBNAME')",
        "\\! touch pwned",
        "\\set ON_ERROR_STOP 0",
        "\\o out.txt",
        "\\i included.sql",
        ".shell touch pwned",
        ".output out.txt",
        ".bail off",
        "-- \\! touch pwned",
        "/* \\! touch pwned */",
        "/* unterminated",
        "'unterminated",
        "SELECT 1",
        "SELECT * FROM missing_table",
        "INSERT INTO notes VALUES ('it''s')",
        "go",
        "/",
    ])
    .prop_map(str::to_owned)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![";\n", ";", "\n", " ", ";\n\n", ";  "])
}

fn migration_text() -> impl Strategy<Value = String> {
    prop::collection::vec((fragment(), separator()), 1..6).prop_map(|parts| {
        let mut text = "CREATE TABLE IF NOT EXISTS notes (body text);\n".to_owned();
        for (f, s) in parts {
            text.push_str(&f);
            text.push_str(s);
        }
        text
    })
}

fn cases() -> u32 {
    std::env::var("ENVGATE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn postgres_apply_and_bundle_agree(text in migration_text()) {
        let (dev, prod) = (PgDb::create("prop_dev"), PgDb::create("prop_prod"));
        let project = Project::new(&pg_pair(&dev, &prod), &[("1_gen.sql", &text)]);
        let apply = project.envgate(&["apply", "--env", "dev"]);
        let exported = export(&project);
        let apply_refused = apply.code == 3;
        let export_refused = exported.is_err();
        prop_assert_eq!(apply_refused, export_refused, "apply {:?}\nexport {:?}", apply, exported.as_ref().err());
        if let Ok(bundle) = exported {
            let (code, err) = psql(project.path(), &prod.url(), &bundle);
            prop_assert_eq!(apply.code == 0, code == 0, "apply {:?}\npsql: {}", apply, err);
            if code == 0 {
                prop_assert_eq!(pg_schema(&dev), pg_schema(&prod));
                prop_assert_eq!(pg_data(&dev), pg_data(&prod));
                let ok = |rows: Vec<Vec<Option<String>>>| rows.into_iter().filter(|r| r[3].as_deref() == Some("true")).collect::<Vec<_>>();
                prop_assert_eq!(ok(pg_ledger(&dev)), ok(pg_ledger(&prod)));
            } else {
                prop_assert!(pg_ledger(&prod).iter().all(|r| r[3].as_deref() != Some("true")));
            }
        }
        no_escape(project.path());
    }

    #[test]
    fn sqlite_apply_and_bundle_agree(text in migration_text()) {
        let project = sqlite_project(&[("1_gen.sql", &text)]);
        let apply = project.envgate(&["apply", "--env", "dev"]);
        let exported = export(&project);
        prop_assert_eq!(apply.code == 3, exported.is_err(), "apply {:?}\nexport {:?}", apply, exported.as_ref().err());
        if let Ok(bundle) = exported {
            let (code, err) = sqlite3(project.path(), "prod.db", &bundle);
            prop_assert_eq!(apply.code == 0, code == 0, "apply {:?}\nsqlite3: {}", apply, err);
            if code == 0 {
                let dump = |db: &str| {
                    let c = rusqlite::Connection::open(project.path().join(db)).unwrap();
                    let mut out: Vec<String> = Vec::new();
                    let mut s = c.prepare("SELECT coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'envgate%' ORDER BY name").unwrap();
                    out.extend(s.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
                    if let Ok(mut s) = c.prepare("SELECT body FROM notes ORDER BY body") {
                        out.extend(s.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
                    }
                    let mut s = c.prepare("SELECT version || ' ' || sha256 FROM envgate_migrations WHERE success = 1").unwrap();
                    out.extend(s.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
                    out
                };
                prop_assert_eq!(dump("dev.db"), dump("prod.db"));
            }
        }
        no_escape(project.path());
    }
}
