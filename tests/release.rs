//! Releases from tag to prod: membership from a real git repository made in
//! the test, progress, promotion by mode (bundles applied with the real
//! `psql` and `sqlite3`), rollback, refusals, drift acceptance, the admins'
//! gate, concurrent promotions, and the audit trail with its hash chain.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::{PgDb, Project, Run, git};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n";
const USERS_DOWN: &str = "DROP TABLE users;\n";
const ORDERS: &str =
    "CREATE TABLE orders (id bigint PRIMARY KEY, note text DEFAULT 'it''s; fine');\n";
const ORDERS_DOWN: &str = "DROP TABLE orders;\n";
const TRASH: &str = "CREATE TABLE trash (id bigint PRIMARY KEY);\n";
const TRASH_DOWN: &str = "DROP TABLE trash;\n";

/// Commits everything in the project and tags the commit.
fn commit_and_tag(project: &Project, message: &str, tag: Option<&str>) {
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-q", "-m", message]);
    if let Some(t) = tag {
        git(project.path(), &["tag", t]);
    }
}

/// A project in a fresh git repository; runtime files are ignored.
fn repo(config: &str, migrations: &[(&str, &str)]) -> Project {
    repo_with(&["init", "-q"], config, migrations)
}

fn repo_with(init: &[&str], config: &str, migrations: &[(&str, &str)]) -> Project {
    let project = Project::new(config, migrations);
    git(project.path(), init);
    project.write(".gitignore", ".envgate/\n*.db\nbundles/\n");
    project
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{run:?}");
}

fn refused(run: &Run, says: &str) {
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains(says), "expected {says:?} in:\n{run:?}");
}

fn audit(project: &Project) -> Vec<Value> {
    let run = project.envgate(&["audit", "--format", "json"]);
    ok(&run);
    let j = run.json();
    assert_eq!(j["schema_version"], 1);
    j["records"].as_array().unwrap().clone()
}

/// The (environment, state) of each migration, in order, from `status`.
fn states(project: &Project, env: &str) -> Vec<String> {
    let run = project.envgate(&["status", "--env", env, "--format", "json"]);
    assert!(run.code == 0 || run.code == 4, "{run:?}");
    run.json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cells"][env]["state"].as_str().unwrap().to_owned())
        .collect()
}

fn sqlite3(db: &Path, file: &Path) {
    let bin = support::which("sqlite3").expect("sqlite3 is not installed: apt-get install sqlite3");
    let out = Command::new(bin)
        .arg("-bail")
        .arg(db)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {} < {}: {}",
        db.display(),
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An empty SQLite database (a zero-length file is one).
fn empty_sqlite(project: &Project, name: &str) {
    project.write(name, "");
}

#[test]
fn membership_follows_tags_semver_order_and_explicit_lists() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n\
         [environments.staging]\nurl = \"sqlite://staging.db\"\n\
         [environments.prod]\nurl = \"sqlite://prod.db\"\n\
         [releases.\"v1.10.0\"]\nmigrations = [\"5\"]\n",
        &[("1_users.sql", USERS), ("2_orders.sql", ORDERS)],
    );
    commit_and_tag(&project, "users and orders", Some("v1.0.0"));
    project.write("migrations/3_trash.sql", TRASH);
    project.write("migrations/3_trash.down.sql", TRASH_DOWN);
    project.write("migrations/2_orders.sql", &format!("-- orders\n{ORDERS}"));
    commit_and_tag(&project, "trash; a comment in orders", Some("v1.1.0"));
    git(project.path(), &["tag", "nightly-2026-11-25"]);
    project.write(
        "migrations/4_audit.sql",
        "CREATE TABLE audit (id bigint);\n",
    );
    project.write("migrations/5_late.sql", "CREATE TABLE late (id bigint);\n");
    commit_and_tag(&project, "audit and late", Some("v1.2.0"));
    // v1.2.0 lists only 4 (5 goes out with v1.10.0, listed in envgate.toml).
    project.write("releases/v1.2.0.toml", "migrations = [\"4\"]\n");
    commit_and_tag(&project, "nothing new", Some("v1.10.0"));
    for db in ["dev.db", "staging.db", "prod.db"] {
        empty_sqlite(&project, db);
    }

    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    let summary: Vec<(String, Vec<String>, bool)> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap().to_owned(),
                r["migrations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect(),
                r["explicit"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("v1.0.0".into(), vec!["1".into(), "2".into()], false),
            ("v1.1.0".into(), vec!["3".into()], false),
            ("v1.2.0".into(), vec!["4".into()], true),
            ("v1.10.0".into(), vec!["5".into()], true),
        ]
    );
    let warnings = j[1]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("migrations/2_orders.sql") && w.contains("modified after release"),
        "{w}"
    );
    assert_eq!(
        j[0]["migrations"][0]["sha256"],
        envgate::core::checksum::ContentHash::of(USERS.as_bytes()).hex()
    );

    // dev gets v1.0.0; progress shows it, and the export_only environments'
    // bundles are the release's exact SQL.
    ok(&project.envgate(&["promote", "v1.0.0", "--actor", "alice"]));
    let run = project.envgate(&["release", "show", "v1.0.0", "--format", "json"]);
    ok(&run);
    let j = run.json();
    let progress: Vec<(String, u64, u64)> = j["release"]["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["environment"].as_str().unwrap().to_owned(),
                p["applied"].as_u64().unwrap(),
                p["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            ("dev".to_owned(), 2, 2),
            ("staging".to_owned(), 0, 2),
            ("prod".to_owned(), 0, 2)
        ]
    );
    let bundles = j["bundles"].as_array().unwrap();
    let files: Vec<&str> = bundles
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["staging-v1.0.0.sql", "prod-v1.0.0.sql"]);
    let sql = bundles[0]["sql"].as_str().unwrap();
    assert!(
        sql.contains(USERS.trim()) && sql.contains(ORDERS.trim()),
        "{sql}"
    );
    assert!(!sql.contains("trash"), "{sql}");

    let run = project.envgate(&["release", "show", "v1.0.0"]);
    ok(&run);
    for line in [
        "dev      2/2 applied",
        "staging  0/2 applied",
        "prod     0/2 applied",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("  staging  staging-v1.0.0.sql  bundle "),
        "{}",
        run.stdout
    );
    // The first release is everything up to its tag, not "added since";
    // prod's bundle waits for staging, and says so.
    assert!(
        run.stdout.starts_with(
            "release v1.0.0: 2 migrations, the first release (every migration up to its tag)\n"
        ),
        "{}",
        run.stdout
    );
    let prod_line = run
        .stdout
        .lines()
        .find(|l| l.contains("prod-v1.0.0.sql"))
        .unwrap();
    assert!(
        prod_line.ends_with("(not yet: promotion waits for staging (0/2))"),
        "{prod_line}"
    );
    assert!(
        !run.stdout
            .lines()
            .find(|l| l.contains("staging-v1.0.0.sql"))
            .unwrap()
            .contains("not yet"),
        "{}",
        run.stdout
    );
    assert_eq!(j["release"]["first"], true);
    assert_eq!(bundles[1]["waits_for"][0], "staging (0/2)");
    assert!(!run.stdout.contains(USERS.trim()), "{}", run.stdout);
    let run = project.envgate(&["release", "show", "v1.0.0", "--sql"]);
    ok(&run);
    assert_eq!(
        run.stdout.matches(USERS.trim()).count(),
        2,
        "{}",
        run.stdout
    );
    let run = project.envgate(&["releases"]);
    ok(&run);
    assert!(
        run.stdout
            .contains("v1.0.0  2 migrations  dev 2/2  staging 0/2  prod 0/2"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("v1.2.0  1 migration (listed)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_release_goes_from_tag_to_prod_on_postgres() {
    let (dev, staging, prod) = (
        PgDb::create("rel_dev"),
        PgDb::create("rel_staging"),
        PgDb::create("rel_prod"),
    );
    let project = repo(
        &format!(
            "[environments.dev]\nurl = \"{}\"\n\
             [environments.staging]\nurl = \"{}\"\n\
             [environments.prod]\nurl = \"{}\"\n",
            dev.url(),
            staging.url_with_password("s3cret-staging"),
            prod.url()
        ),
        &[
            ("20260401_001_users.sql", USERS),
            ("20260401_001_users.down.sql", USERS_DOWN),
            ("20260401_002_orders.sql", ORDERS),
            ("20260401_002_orders.down.sql", ORDERS_DOWN),
        ],
    );
    commit_and_tag(&project, "users and orders", Some("v2.3.0"));
    project.write("migrations/20260424_001_trash.sql", TRASH);
    project.write("migrations/20260424_001_trash.down.sql", TRASH_DOWN);
    commit_and_tag(&project, "trash", Some("v2.4.0"));

    // dev (managed by default) is next: promote applies the release.
    let run = project.envgate(&["promote", "v2.3.0", "--actor", "alice", "--format", "json"]);
    ok(&run);
    let j = run.json();
    assert_eq!(j["environment"], "dev");
    assert_eq!(j["status"], "applied");
    assert_eq!(j["release"], "v2.3.0");
    let applied: Vec<&str> = j["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["20260401_001", "20260401_002"]);
    assert_eq!(
        dev.query_strings("SELECT release, applied_by FROM envgate_migrations ORDER BY version"),
        vec![vec![Some("v2.3.0".to_owned()), Some("alice".to_owned())]; 2]
    );

    // staging is export_only: a dry run shows the bundle and writes nothing.
    let run = project.envgate(&["promote", "v2.3.0", "--dry-run", "--out-dir", "bundles"]);
    ok(&run);
    assert!(run.stdout.contains("staging-v2.3.0.sql"), "{run:?}");
    assert!(run.stdout.contains(USERS.trim()), "{run:?}");
    assert!(!project.path().join("bundles").exists());
    assert!(!run.stdout.contains("s3cret-staging"), "{run:?}");

    let run = project.envgate(&[
        "promote",
        "v2.3.0",
        "--out-dir",
        "bundles",
        "--format",
        "json",
    ]);
    ok(&run);
    let j = run.json();
    assert_eq!(j["environment"], "staging");
    assert_eq!(j["status"], "exported");
    assert!(
        j["bundle"]["apply_with"]
            .as_str()
            .unwrap()
            .starts_with("psql")
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(
            project
                .path()
                .join(j["bundle"]["manifest"].as_str().unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["release"], "v2.3.0");
    support::psql_file(
        &staging.url(),
        &project.path().join("bundles/staging-v2.3.0.sql"),
    );
    assert_eq!(
        states(&project, "staging"),
        ["applied", "applied", "pending"]
    );

    // prod, next in line; then nothing is left to promote.
    let run = project.envgate(&["promote", "v2.3.0", "--out-dir", "bundles"]);
    ok(&run);
    assert!(run.stdout.contains("bundles/prod-v2.3.0.sql"), "{run:?}");
    assert!(run.stdout.contains("psql -X -v ON_ERROR_STOP=1"), "{run:?}");
    support::psql_file(&prod.url(), &project.path().join("bundles/prod-v2.3.0.sql"));
    let run = project.envgate(&["promote", "v2.3.0"]);
    ok(&run);
    assert!(
        run.stdout.contains("applied in every environment"),
        "{run:?}"
    );
    assert_eq!(states(&project, "prod"), ["applied", "applied", "pending"]);

    // v2.4.0 cannot skip dev and staging.
    refused(
        &project.envgate(&["promote", "v2.4.0", "--env", "prod"]),
        "release v2.4.0 is not fully applied before 'prod' in the promotion order: dev has 0/1 applied; staging has 0/1 applied",
    );
    // --force needs a reason, which goes to the audit trail.
    let run = project.envgate(&["promote", "v2.4.0", "--env", "staging", "--force"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = project.envgate(&[
        "promote",
        "v2.4.0",
        "--env",
        "staging",
        "--force",
        "--reason",
        "hotfix reviewed in #123",
        "--out-dir",
        "bundles",
    ]);
    ok(&run);
    std::fs::remove_file(project.path().join("bundles/staging-v2.4.0.sql")).unwrap();

    // dev takes v2.4.0, then gives it back.
    ok(&project.envgate(&["promote", "v2.4.0", "--env", "dev"]));
    assert_eq!(states(&project, "dev"), ["applied", "applied", "applied"]);
    let run = project.envgate(&["rollback", "v2.4.0", "--env", "dev", "--dry-run"]);
    ok(&run);
    assert!(
        run.stdout.contains("20260424_001_trash.down.sql"),
        "{run:?}"
    );
    assert_eq!(states(&project, "dev"), ["applied", "applied", "applied"]);
    let run = project.envgate(&["rollback", "v2.4.0", "--env", "dev", "--format", "json"]);
    ok(&run);
    let j = run.json();
    assert_eq!(
        (j["direction"].as_str(), j["status"].as_str()),
        (Some("down"), Some("applied"))
    );
    assert_eq!(states(&project, "dev"), ["applied", "applied", "pending"]);
    assert!(dev.query_strings("SELECT to_regclass('trash')::text")[0][0].is_none());

    // staging rolls v2.3.0 back with a bundle: newest first, each with its
    // ledger row removed.
    let run = project.envgate(&[
        "rollback",
        "v2.3.0",
        "--env",
        "staging",
        "--out-dir",
        "bundles",
    ]);
    ok(&run);
    let bundle = project.path().join("bundles/staging-rollback-v2.3.0.sql");
    let sql = std::fs::read_to_string(&bundle).unwrap();
    let (orders, users) = (
        sql.find("DROP TABLE orders").unwrap(),
        sql.find("DROP TABLE users").unwrap(),
    );
    assert!(orders < users, "newest first:\n{sql}");
    let rollback: Value = serde_json::from_str(
        &std::fs::read_to_string(
            project
                .path()
                .join("bundles/staging-rollback-v2.3.0.manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&rollback["direction"], &rollback["from"], &rollback["to"]),
        (
            &Value::from("down"),
            &Value::from("20260401_002"),
            &Value::from("empty")
        )
    );
    assert_eq!(
        rollback["migrations"][0]["down_file"],
        "migrations/20260401_002_orders.down.sql"
    );
    assert_eq!(
        rollback["migrations"][0]["down_sha256"],
        envgate::core::checksum::ContentHash::of(ORDERS_DOWN.as_bytes()).hex()
    );
    support::psql_file(&staging.url(), &bundle);
    assert_eq!(
        states(&project, "staging"),
        ["pending", "pending", "pending"]
    );
    assert!(
        staging.query_strings("SELECT count(*) FROM envgate_migrations")[0][0].as_deref()
            == Some("0")
    );

    // Every step is in the audit trail.
    let records = audit(&project);
    let steps: Vec<(String, String, String, String)> = records
        .iter()
        .filter(|r| r["action"] != "mode_change")
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["environment"].as_str().unwrap_or("-").to_owned(),
                r["release"].as_str().unwrap_or("-").to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // The team's pipeline applied the exported bundles: recognised.
    let expect = [
        ("promote", "dev", "v2.3.0", "ok"),
        ("promote", "staging", "v2.3.0", "exported"),
        ("bundle_applied", "staging", "v2.3.0", "complete"),
        ("promote", "prod", "v2.3.0", "exported"),
        ("bundle_applied", "prod", "v2.3.0", "complete"),
        ("promote", "prod", "v2.4.0", "refused"),
        ("promote", "staging", "v2.4.0", "exported"),
        ("promote", "dev", "v2.4.0", "ok"),
        ("rollback", "dev", "v2.4.0", "ok"),
        ("rollback", "staging", "v2.3.0", "exported"),
    ];
    let expect: Vec<(String, String, String, String)> = expect
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(steps, expect);
    let first = records.iter().find(|r| r["action"] == "promote").unwrap();
    assert_eq!(first["actor"], "alice");
    assert_eq!(
        first["migrations"],
        serde_json::json!(["20260401_001", "20260401_002"])
    );
    let forced = records
        .iter()
        .find(|r| r["release"] == "v2.4.0" && r["environment"] == "staging")
        .unwrap();
    assert!(
        forced["details"]
            .as_str()
            .unwrap()
            .contains("hotfix reviewed in #123"),
        "{forced}"
    );
    let exported = records
        .iter()
        .find(|r| r["environment"] == "staging" && r["action"] == "promote")
        .unwrap();
    assert_eq!(exported["bundle_sha256"], manifest["bundle_sha256"]);
    let modes: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "mode_change")
        .map(|r| r["environment"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["dev", "staging", "prod"]);
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains("s3cret-staging"), "{all}");

    // CSV: a header and one row per record, hashes included.
    let run = project.envgate(&["audit", "--format", "csv"]);
    ok(&run);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "seq",
            "at",
            "action",
            "actor",
            "environment",
            "release",
            "migrations",
            "bundle_sha256",
            "outcome",
            "error",
            "details",
            "prev_hash",
            "hash",
            "actor_source",
            "ephemeral",
            "seal",
            "repository"
        ]
    );
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // The last row: the head the export was verified against.
    let head = rows.pop().unwrap();
    let newest = records.last().unwrap();
    assert_eq!(
        (head.get(0), head.get(1), head.get(8), head.get(12)),
        (
            Some("head"),
            Some(newest["seq"].to_string().as_str()),
            Some("verified"),
            newest["hash"].as_str()
        )
    );
    assert_eq!(rows.len(), records.len());
    for (row, rec) in rows.iter().zip(&records) {
        assert_eq!(row.get(0).unwrap(), rec["seq"].to_string());
        assert_eq!(row.get(12).unwrap(), rec["hash"].as_str().unwrap());
    }
    let refusal = rows.iter().find(|r| r.get(8) == Some("refused")).unwrap();
    assert!(
        refusal.get(9).unwrap().contains("not fully applied"),
        "{refusal:?}"
    );

    // The table, filtered by environment.
    let run = project.envgate(&["audit", "--env", "dev"]);
    ok(&run);
    assert!(run.stdout.starts_with("seq  at "), "{}", run.stdout);
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.iter().all(|l| l.contains(" dev ")), "{}", run.stdout);
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    assert!(
        run.stdout.ends_with(&format!(
            "\nverified against head {}:{}\n",
            newest["seq"],
            newest["hash"].as_str().unwrap()
        )),
        "{}",
        run.stdout
    );
    let run = project.envgate(&["audit", "--since", "2999-01-01"]);
    ok(&run);
    assert!(
        run.stdout.starts_with("no audit records match.\n"),
        "{run:?}"
    );
    let run = project.envgate(&["audit", "--since", "yesterday-ish"]);
    assert_eq!(run.code, 2, "{run:?}");

    // The chain holds, until someone edits a record.
    let run = project.envgate(&["audit", "verify"]);
    ok(&run);
    assert!(
        run.stdout
            .starts_with(&format!("audit trail intact: {} records", records.len())),
        "{run:?}"
    );
    let store = rusqlite::Connection::open(project.path().join(".envgate/state.db")).unwrap();
    let seq = first["seq"].as_i64().unwrap();
    store
        .execute(
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = ?1",
            [seq],
        )
        .unwrap();
    let run = project.envgate(&["audit", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&format!("record {seq}:")), "{run:?}");
    // Plain `audit` verifies as it reads: the records, then exit 1 naming
    // the first bad one.
    let run = project.envgate(&["audit"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("mallory"), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "audit trail tampered with: record {seq}: its content does not match its hash"
        )),
        "{run:?}"
    );
    store
        .execute("UPDATE audit_log SET actor = 'alice' WHERE seq = ?1", [seq])
        .unwrap();
    ok(&project.envgate(&["audit", "verify"]));
    // A record removed from the middle breaks the chain too.
    store
        .execute("DELETE FROM audit_log WHERE seq = ?1", [seq + 1])
        .unwrap();
    let run = project.envgate(&["audit", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
}

#[test]
fn refusals_name_the_problem_exit_3_and_are_audited() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n\
         [environments.staging]\nurl = \"sqlite://staging.db\"\nmode = \"managed\"\n\
         [environments.legacy]\nurl = \"sqlite://legacy.db\"\nmode = \"reconcile_only\"\n",
        &[("1_users.sql", USERS), ("2_orders.sql", ORDERS)],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    project.write("migrations/3_trash.sql", TRASH);
    commit_and_tag(&project, "two", Some("v1.1.0"));
    git(project.path(), &["tag", "nightly"]);
    empty_sqlite(&project, "legacy.db");

    refused(
        &project.envgate(&["promote", "v9.9.9"]),
        "no release v9.9.9: there is no such tag (releases: v1.0.0, v1.1.0)",
    );
    refused(
        &project.envgate(&["promote", "nightly"]),
        "tag nightly is not a release: release tags match 'v*'",
    );
    refused(
        &project.envgate(&["promote", "v1.0.0", "--env", "qa"]),
        "no environment 'qa' (configured: dev, staging, legacy)",
    );
    refused(
        &project.envgate(&["rollback", "v1.0.0", "--env", "qa"]),
        "no environment 'qa'",
    );
    // dev's database does not exist: staging cannot go ahead of it.
    std::fs::create_dir(project.path().join("dev.db")).unwrap();
    refused(
        &project.envgate(&["promote", "v1.0.0", "--env", "staging"]),
        "dev could not be read",
    );
    std::fs::remove_dir(project.path().join("dev.db")).unwrap();
    ok(&project.envgate(&["promote", "v1.0.0"]));
    ok(&project.envgate(&["promote", "v1.0.0"]));
    // legacy is applied by its own tool.
    refused(
        &project.envgate(&["promote", "v1.0.0"]),
        "'legacy' is reconcile_only: its migrations are applied outside envgate; pending there from v1.0.0: 1, 2",
    );
    refused(
        &project.envgate(&["rollback", "v1.0.0", "--env", "legacy"]),
        "'legacy' is reconcile_only",
    );
    // v1.0.0 has no down scripts: nothing is reverted.
    refused(
        &project.envgate(&["rollback", "v1.0.0", "--env", "dev"]),
        "no down script for migrations/2_orders.sql, migrations/1_users.sql; nothing was changed",
    );
    assert_eq!(states(&project, "dev"), ["applied", "applied", "pending"]);
    // A release adding a migration older than one an earlier release holds
    // (a branch merged late).
    project.write(
        "migrations/0_early.sql",
        "CREATE TABLE early (id bigint);\n",
    );
    commit_and_tag(&project, "late merge", Some("v1.2.0"));
    refused(
        &project.envgate(&["promote", "v1.2.0"]),
        "release v1.2.0 is out of order: 0 is older than 3, which an earlier release (v1.1.0) already holds",
    );

    let records = audit(&project);
    let refusals: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| (r["action"].as_str().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(refusals.len(), 9, "{refusals:#?}");
    assert!(
        refusals
            .iter()
            .all(|(a, _)| ["promote", "rollback"].contains(a))
    );
    assert!(refusals[0].1.contains("no release v9.9.9"), "{refusals:?}");
    assert!(refusals[8].1.contains("out of order"), "{refusals:?}");
}

#[test]
fn drift_is_accepted_per_environment_and_only_managed_ledgers_change() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n\
         [environments.staging]\nurl = \"sqlite://staging.db\"\n\
         [environments.legacy]\nurl = \"sqlite://legacy.db\"\nmode = \"reconcile_only\"\n",
        &[("1_users.sql", USERS), ("2_orders.sql", ORDERS)],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    ok(&project.envgate(&["promote", "v1.0.0"]));
    empty_sqlite(&project, "staging.db");
    ok(&project.envgate(&["promote", "v1.0.0", "--out-dir", "bundles"]));
    sqlite3(
        &project.path().join("staging.db"),
        &project.path().join("bundles/staging-v1.0.0.sql"),
    );
    std::fs::copy(
        project.path().join("dev.db"),
        project.path().join("legacy.db"),
    )
    .unwrap();

    // An intended edit: a comment added to an applied migration.
    let edited = format!("-- owner: billing\n{USERS}");
    project.write("migrations/1_users.sql", &edited);
    for env in ["dev", "staging", "legacy"] {
        assert_eq!(states(&project, env), ["drifted", "applied"], "{env}");
    }
    let old = envgate::core::checksum::ContentHash::of(USERS.as_bytes());
    let new = envgate::core::checksum::ContentHash::of(edited.as_bytes());
    let ledger_hash = |db: &str| -> String {
        rusqlite::Connection::open(project.path().join(db))
            .unwrap()
            .query_row(
                "SELECT sha256 FROM envgate_migrations WHERE version = '1'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let bytes = |db: &str| std::fs::read(project.path().join(db)).unwrap();
    let (staging_before, legacy_before) = (bytes("staging.db"), bytes("legacy.db"));

    let run = project.envgate(&["drift", "accept", "--env", "dev", "1", "--actor", "carol"]);
    assert_eq!(run.code, 2, "--reason is required: {run:?}");
    let run = project.envgate(&["drift", "accept", "--env", "dev", "2", "--reason", "x"]);
    ok(&run);
    assert!(
        run.stdout
            .contains("2 is applied in 'dev' with today's content: no drift to accept"),
        "{run:?}"
    );
    let run = project.envgate(&[
        "drift",
        "accept",
        "--env",
        "dev",
        "1",
        "--reason",
        "comment only",
        "--actor",
        "carol",
    ]);
    ok(&run);
    assert!(run.stdout.contains("the ledger row was updated"), "{run:?}");
    assert_eq!(ledger_hash("dev.db"), new.tagged());
    for env in ["staging", "legacy"] {
        let run = project.envgate(&[
            "drift",
            "accept",
            "--env",
            env,
            "1",
            "--reason",
            "comment only",
            "--actor",
            "carol",
        ]);
        ok(&run);
        assert!(run.stdout.contains("control store only"), "{run:?}");
    }
    assert_eq!(
        bytes("staging.db"),
        staging_before,
        "export_only: never written"
    );
    assert_eq!(
        bytes("legacy.db"),
        legacy_before,
        "reconcile_only: never written"
    );
    assert_eq!(ledger_hash("staging.db"), old.tagged());

    let run = project.envgate(&["status", "--format", "json"]);
    ok(&run);
    let j = run.json();
    for env in ["dev", "staging", "legacy"] {
        let cell = &j["migrations"][0]["cells"][env];
        assert_eq!(cell["state"], "applied", "{env}: {cell}");
        let note = cell["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("drift accepted by carol") && note.contains("comment only"),
            "{env}: {cell}"
        );
    }
    // The note is where people look too: under the table and in Markdown.
    let table = project.envgate(&["status"]);
    ok(&table);
    for env in ["dev", "staging", "legacy"] {
        let line = format!("1_users in {env}: drift accepted by carol at ");
        assert!(
            table.stdout.contains(&line) && table.stdout.contains(": comment only"),
            "{line} in:\n{}",
            table.stdout
        );
    }
    let md = project.envgate(&["status", "--format", "markdown"]);
    ok(&md);
    assert!(
        md.stdout
            .contains("- ✔️ `1_users` in **dev**: drift accepted by carol at "),
        "{}",
        md.stdout
    );
    // Accepted drift does not block what comes next: v1.1.0 (which holds
    // the edited file) goes to dev and staging.
    project.write("migrations/3_trash.sql", TRASH);
    commit_and_tag(&project, "trash", Some("v1.1.0"));
    ok(&project.envgate(&["promote", "v1.1.0"]));
    let run = project.envgate(&["promote", "v1.1.0", "--out-dir", "bundles"]);
    ok(&run);
    assert!(run.stdout.contains("bundles/staging-v1.1.0.sql"), "{run:?}");
    // Another edit is drift again.
    project.write("migrations/1_users.sql", &format!("{edited}-- again\n"));
    for env in ["dev", "staging", "legacy"] {
        assert_eq!(states(&project, env)[..2], ["drifted", "applied"], "{env}");
    }

    let records = audit(&project);
    let accepted: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "drift_accepted")
        .collect();
    let ok_ones: Vec<&&Value> = accepted.iter().filter(|r| r["outcome"] == "ok").collect();
    assert_eq!(ok_ones.len(), 3, "{accepted:#?}");
    for r in ok_ones {
        let d = r["details"].as_str().unwrap();
        assert!(d.contains("reason: comment only"), "{d}");
        assert!(d.contains(&new.hex()) && d.contains(&old.hex()), "{d}");
        assert_eq!(r["actor"], "carol");
        assert_eq!(r["migrations"], serde_json::json!(["1"]));
    }
}

#[test]
fn admins_gate_an_environment_made_managed_by_someone_else() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\nadmins = [\"alice\", \"@acme/dba\"]\n\
         [environments.staging]\nurl = \"sqlite://staging.db\"\nmode = \"export_only\"\nadmins = [\"alice\"]\n",
        &[("1_users.sql", USERS)],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    empty_sqlite(&project, "dev.db");
    empty_sqlite(&project, "staging.db");
    let first = git(project.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_owned();

    // dev is managed from its first commit, whose author is no admin; bob,
    // the first to run, is not blamed for it, and is no admin either.
    refused(
        &project.envgate(&["apply", "--env", "dev", "--actor", "bob"]),
        "'dev' is managed, but it was made managed by Release Tester <release@example.com>, who is not one of its admins (alice, @acme/dba): \
         one of its admins (alice, @acme/dba) must approve the change that made it managed, run `envgate mode confirm dev`, or run this themselves",
    );
    refused(
        &project.envgate(&["promote", "v1.0.0", "--actor", "bob"]),
        "envgate mode confirm dev",
    );
    // Anyone looking records staging's mode as it is (export_only).
    ok(&project.envgate(&["status"]));
    refused(
        &project.envgate(&["mode", "confirm", "--env", "dev", "--actor", "bob"]),
        "bob is not one of the admins of 'dev'",
    );
    let run = project.envgate(&["mode", "confirm", "--env", "dev", "--actor", "Alice"]);
    ok(&run);
    ok(&project.envgate(&["apply", "--env", "dev", "--actor", "bob"]));

    // carol switches staging to managed in the configuration; alice, an
    // admin, only looks (status). Looking approves nothing, and the change
    // is the commit author's, not the reader's.
    let config = std::fs::read_to_string(project.path().join("envgate.toml")).unwrap();
    project.write(
        "envgate.toml",
        &config.replace("mode = \"export_only\"", "mode = \"managed\""),
    );
    git(
        project.path(),
        &[
            "-c",
            "user.name=Carol",
            "-c",
            "user.email=carol@example.com",
            "commit",
            "-qam",
            "staging managed",
        ],
    );
    let head = git(project.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    let run = project.envgate_with_env(&["status"], &[("USER", "alice")]);
    ok(&run);
    refused(
        &project.envgate(&["apply", "--env", "staging", "--actor", "carol"]),
        "'staging' is managed, but it was made managed by Carol <carol@example.com>, who is not one of its admins (alice)",
    );
    ok(&project.envgate(&["mode", "confirm", "--env", "staging", "--actor", "alice"]));
    ok(&project.envgate(&["apply", "--env", "staging", "--actor", "carol"]));

    let records = audit(&project);
    let change = records
        .iter()
        .find(|r| {
            r["action"] == "mode_change"
                && r["environment"] == "staging"
                && r["details"].as_str().unwrap().contains("-> managed")
        })
        .unwrap_or_else(|| panic!("{records:#?}"));
    let d = change["details"].as_str().unwrap();
    assert!(
        d.contains("export_only -> managed")
            && d.contains(&format!("config at commit {head}"))
            && d.contains("seen by alice (unverified)"),
        "{d}"
    );
    assert_eq!(
        change["actor"], "Carol <carol@example.com>",
        "the commit's author, not the reader"
    );
    assert_eq!(
        change["actor_source"],
        format!("unverified: git history, author of commit {head}").as_str()
    );
    let trail: Vec<(&str, &str, &str)> = records
        .iter()
        .filter(|r| r["environment"] == "dev")
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("mode_change", "Release Tester <release@example.com>", "ok"),
            ("apply", "bob", "refused"),
            ("promote", "bob", "refused"),
            ("mode_confirm", "bob", "refused"),
            ("mode_confirm", "Alice", "ok"),
            ("apply", "bob", "ok"),
        ]
    );
    let first_change = records
        .iter()
        .find(|r| r["action"] == "mode_change" && r["environment"] == "dev")
        .unwrap();
    assert_eq!(
        first_change["actor_source"],
        format!("unverified: git history, author of commit {first}").as_str()
    );
    // Every name typed on the command line is marked as such.
    assert!(
        records
            .iter()
            .filter(|r| r["actor"] == "bob")
            .all(|r| r["actor_source"] == "unverified: --actor"),
        "{records:#?}"
    );
}

/// One gate for every write. prod's mode is edited to managed and a
/// `status` records the change first (a read, crediting nobody): apply,
/// promote, rollback and drift accept by someone else are refused with
/// the same reason; an admin's rollback goes through (it used to be
/// refused as "no record of who made it managed" while apply was let
/// through) and confirms the mode, which opens it for the others.
#[test]
fn apply_promote_rollback_and_drift_accept_share_one_gate() {
    let project = repo(
        "[environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"export_only\"\nadmins = [\"alice\"]\n",
        &[
            ("1_users.sql", USERS),
            ("1_users.down.sql", "DROP TABLE users;\n"),
        ],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    project.write("migrations/2_orders.sql", ORDERS);
    commit_and_tag(&project, "two", Some("v1.1.0"));
    // prod holds v1.0.0, applied by the team's pipeline from a bundle.
    let db = project.path().join("prod.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let mut sql =
        envgate::core::ledger_table::create_table_sql(envgate::core::sql::Dialect::Sqlite, None);
    sql.push(';');
    sql.push_str(USERS);
    sql.push_str(&support::ledger::insert(
        "envgate_migrations",
        "1",
        "users",
        &support::ledger::hash(USERS),
        true,
        "2026-11-01 10:00:00",
    ));
    c.execute_batch(&sql).unwrap();
    drop(c);
    ok(&project.envgate(&["status"]));
    let config = std::fs::read_to_string(project.path().join("envgate.toml")).unwrap();
    project.write(
        "envgate.toml",
        &config.replace("mode = \"export_only\"", "mode = \"managed\""),
    );
    git(
        project.path(),
        &[
            "-c",
            "user.name=Mallory",
            "-c",
            "user.email=m@example.com",
            "commit",
            "-qam",
            "prod managed",
        ],
    );
    ok(&project.envgate(&["status"]));

    let why = "'prod' is managed, but it was made managed by Mallory <m@example.com>, who is not one of its admins (alice)";
    refused(
        &project.envgate(&["apply", "--env", "prod", "--actor", "carol"]),
        why,
    );
    refused(
        &project.envgate(&["promote", "v1.1.0", "--env", "prod", "--actor", "carol"]),
        why,
    );
    refused(
        &project.envgate(&["rollback", "v1.0.0", "--env", "prod", "--actor", "carol"]),
        why,
    );
    project.write("migrations/1_users.sql", &format!("{USERS}-- reviewed\n"));
    refused(
        &project.envgate(&[
            "drift",
            "accept",
            "--env",
            "prod",
            "1",
            "--reason",
            "comment only",
            "--actor",
            "carol",
        ]),
        why,
    );
    project.write("migrations/1_users.sql", USERS);

    // alice, an admin, rolls back: the gate opens and records her as
    // confirming the mode; then the others may write.
    let run = project.envgate(&["rollback", "v1.0.0", "--env", "prod", "--actor", "alice"]);
    ok(&run);
    ok(&project.envgate(&["apply", "--env", "prod", "--actor", "carol"]));
    let records = audit(&project);
    let confirm = records
        .iter()
        .find(|r| r["action"] == "mode_confirm")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(confirm["actor"], "alice");
    assert!(
        confirm["details"]
            .as_str()
            .unwrap()
            .contains("confirmed by alice (unverified), an admin, acting on it (rollback)"),
        "{confirm:#?}"
    );
    let refusals: Vec<&str> = records
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(refusals, ["apply", "promote", "rollback", "drift_accepted"]);
}

#[test]
fn concurrent_promotions_apply_once_and_share_a_postgres_control_store() {
    let (dev, control) = (PgDb::create("rel_conc"), PgDb::create("rel_control"));
    let slow = "SELECT pg_sleep(0.5);\nCREATE TABLE slow (id bigint);\n";
    let project = repo(
        &format!(
            "control_store = \"{}\"\n[environments.dev]\nurl = \"{}\"\n",
            control.url(),
            dev.url()
        ),
        &[("1_users.sql", USERS), ("2_slow.sql", slow)],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    let children: Vec<_> = (0..4)
        .map(|i| {
            support::spawn_envgate(
                project.path(),
                &[
                    "promote",
                    "v1.0.0",
                    "--env",
                    "dev",
                    "--format",
                    "json",
                    "--actor",
                    &format!("runner{i}"),
                ],
            )
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(support::finish).collect();
    let mut statuses: Vec<String> = runs
        .iter()
        .map(|r| {
            // A run that started after the first finished finds nothing to do
            // before it writes; either way it exits 0.
            if r.code == 0 && r.stdout.contains("already applied") {
                return "nothing_to_do".to_owned();
            }
            assert_eq!(r.code, 0, "{r:?}");
            r.json()["status"].as_str().unwrap().to_owned()
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        ["applied", "nothing_to_do", "nothing_to_do", "nothing_to_do"],
        "{runs:?}"
    );
    assert_eq!(
        dev.query_strings("SELECT count(*) FROM envgate_migrations")[0][0].as_deref(),
        Some("2")
    );
    // All four are audited, in one unbroken chain in PostgreSQL.
    let records = audit(&project);
    assert_eq!(
        records.iter().filter(|r| r["action"] == "promote").count(),
        4
    );
    ok(&project.envgate(&["audit", "verify"]));
    let rows = control.query_strings("SELECT count(*) FROM audit_log");
    assert_eq!(
        rows[0][0].as_deref(),
        Some(records.len().to_string().as_str())
    );
}

#[test]
fn sha256_repositories_unusual_file_names_and_no_repository() {
    let project = repo_with(
        &["init", "-q", "--object-format=sha256"],
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_users.sql", USERS)],
    );
    commit_and_tag(&project, "one", Some("v1.0.0"));
    project.write("migrations/2_café.sql", ORDERS);
    commit_and_tag(&project, "two", Some("v1.1.0"));
    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    assert_eq!(j[0]["migrations"][0]["file"], "migrations/1_users.sql");
    // git quotes this path in its plain output; -z leaves it as it is.
    assert_eq!(j[1]["migrations"][0]["file"], "migrations/2_café.sql");

    let bare = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_users.sql", USERS)],
    );
    let run = bare.envgate(&["releases"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("releases come from git tags, but"),
        "{run:?}"
    );
    assert!(run.stderr.contains("is not in a git repository"), "{run:?}");
}

#[test]
fn rollback_refuses_under_a_newer_release_and_over_drift() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_users.sql", USERS), ("1_users.down.sql", USERS_DOWN)],
    );
    commit_and_tag(&project, "users", Some("v1.0.0"));
    project.write("migrations/2_orders.sql", ORDERS);
    project.write("migrations/2_orders.down.sql", ORDERS_DOWN);
    commit_and_tag(&project, "orders", Some("v1.1.0"));
    ok(&project.envgate(&["promote", "v1.0.0"]));
    ok(&project.envgate(&["promote", "v1.1.0"]));
    refused(
        &project.envgate(&["rollback", "v1.0.0", "--env", "dev"]),
        "release v1.0.0 cannot be rolled back in 'dev' as it stands: 2 is applied after it and not part of it; nothing was changed",
    );
    assert_eq!(states(&project, "dev"), ["applied", "applied"]);

    // 3 is applied from an edited working tree, so what ran is not what
    // v1.2.0 holds: its down script may not fit.
    project.write("migrations/3_trash.sql", TRASH);
    project.write("migrations/3_trash.down.sql", TRASH_DOWN);
    commit_and_tag(&project, "trash", Some("v1.2.0"));
    project.write("migrations/3_trash.sql", &format!("{TRASH}-- and more\n"));
    ok(&project.envgate(&["apply", "--env", "dev"]));
    refused(
        &project.envgate(&["rollback", "v1.2.0", "--env", "dev"]),
        "3 drifted",
    );
    assert_eq!(states(&project, "dev"), ["applied", "applied", "applied"]);
}

#[test]
fn drift_in_an_earlier_environment_is_a_gap() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[environments.staging]\nurl = \"sqlite://staging.db\"\n",
        &[("1_users.sql", USERS)],
    );
    commit_and_tag(&project, "users", Some("v1.0.0"));
    empty_sqlite(&project, "staging.db");
    ok(&project.envgate(&["promote", "v1.0.0"]));
    // What dev ran is not what the tag holds.
    rusqlite::Connection::open(project.path().join("dev.db"))
        .unwrap()
        .execute(
            "UPDATE envgate_migrations SET sha256 = ?1",
            [support::ledger::hash("CREATE TABLE users (id bigint);\n")],
        )
        .unwrap();
    refused(
        &project.envgate(&[
            "promote",
            "v1.0.0",
            "--env",
            "staging",
            "--out-dir",
            "bundles",
        ]),
        "release v1.0.0 is not fully applied before 'staging' in the promotion order: dev has 0/1 applied",
    );
    assert!(!project.path().join("bundles").exists());
}

#[test]
fn a_release_ships_what_was_tagged_whatever_the_checkout() {
    let project = repo(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[environments.staging]\nurl = \"sqlite://staging.db\"\n",
        &[("1_users.sql", USERS)],
    );
    commit_and_tag(&project, "users", Some("v1.0.0"));
    project.write("migrations/2_orders.sql", ORDERS);
    commit_and_tag(&project, "orders", Some("v1.1.0"));
    // After the tag, 2 is edited and 2_b renamed; 3 is added.
    project.write("migrations/2_orders.sql", "DROP TABLE users;\n");
    std::fs::rename(
        project.path().join("migrations/1_users.sql"),
        project.path().join("migrations/1_create_users.sql"),
    )
    .unwrap();
    project.write("migrations/3_trash.sql", TRASH);
    commit_and_tag(&project, "edits", Some("v1.2.0"));
    empty_sqlite(&project, "staging.db");

    // An old checkout still promotes every release, as tagged.
    git(project.path(), &["checkout", "-q", "v1.0.0"]);
    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    let ids: Vec<Vec<&str>> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["migrations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(ids, [vec!["1"], vec!["2"], vec!["3"]]);
    ok(&project.envgate(&["promote", "v1.0.0"]));
    ok(&project.envgate(&["promote", "v1.1.0"]));
    ok(&project.envgate(&["promote", "v1.0.0", "--out-dir", "bundles"]));
    sqlite3(
        &project.path().join("staging.db"),
        &project.path().join("bundles/staging-v1.0.0.sql"),
    );
    let run = project.envgate(&["promote", "v1.1.0", "--out-dir", "bundles"]);
    ok(&run);
    let sql = std::fs::read_to_string(project.path().join("bundles/staging-v1.1.0.sql")).unwrap();
    assert!(sql.contains(ORDERS.trim()), "{sql}");
    assert!(!sql.contains("DROP TABLE users"), "{sql}");
    // On main, v1.2.0 shows 2's edit as a change to an earlier release.
    git(project.path(), &["checkout", "-q", "-"]);
    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    assert_eq!(j[2]["migrations"][0]["id"], "3");
    assert_eq!(
        j[2]["warnings"],
        serde_json::json!([
            "migrations/2_orders.sql was modified after release: it belongs to release v1.1.0"
        ])
    );
}

#[test]
fn tag_patterns_with_a_prefix_order_by_their_version() {
    let project = repo(
        "release_tags = \"release/*\"\n[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_users.sql", USERS)],
    );
    commit_and_tag(&project, "users", Some("release/1.9.0"));
    project.write("migrations/2_orders.sql", ORDERS);
    commit_and_tag(&project, "orders", Some("release/1.10.0"));
    git(project.path(), &["tag", "v9.9.9"]);
    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    let tags: Vec<(&str, usize)> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap(),
                r["migrations"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(tags, [("release/1.9.0", 1), ("release/1.10.0", 1)]);
    ok(&project.envgate(&["promote", "release/1.9.0"]));
    ok(&project.envgate(&["promote", "release/1.10.0", "--dry-run"]));
}

#[test]
fn a_control_store_inside_an_environment_database_is_refused() {
    let project = Project::new(
        "control_store = \"sqlite://prod.db\"\n[environments.prod]\nurl = \"sqlite://prod.db\"\n",
        &[("1_users.sql", USERS)],
    );
    project.write("prod.db", "");
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("control_store is the database of environment 'prod'"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(project.path().join("prod.db")).unwrap(), b"");
}

/// Releases of a project whose tool reads several folders: each tag's
/// migrations are taken from every folder, at that tag.
#[test]
fn releases_read_every_migrations_folder_at_each_tag() {
    let project = repo(
        "format = \"dbmate\"\nmigrations = [\"db/migrations\", \"db/post\"]\n\
         [environments.prod]\nurl = \"sqlite://prod.db\"\n",
        &[],
    );
    project.write(
        "db/migrations/20260101000001_users.sql",
        "-- migrate:up\nCREATE TABLE users (id int);\n",
    );
    project.write(
        "db/post/20260101000002_backfill.sql",
        "-- migrate:up\nUPDATE users SET id = id;\n",
    );
    commit_and_tag(&project, "users", Some("v1.0.0"));
    project.write(
        "db/post/20260101000003_index.sql",
        "-- migrate:up\nCREATE INDEX u ON users (id);\n",
    );
    commit_and_tag(&project, "index", Some("v1.1.0"));
    empty_sqlite(&project, "prod.db");
    let run = project.envgate(&["releases", "--format", "json"]);
    ok(&run);
    let j = run.json();
    let ids = |r: &Value| -> Vec<String> {
        r["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(j[0]["tag"], "v1.0.0");
    assert_eq!(ids(&j[0]), ["20260101000001", "20260101000002"]);
    assert_eq!(ids(&j[1]), ["20260101000003"]);
}
