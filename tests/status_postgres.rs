//! `envgate status` against real PostgreSQL databases.

mod support;

use envgate::core::sql::Dialect;
use envgate::ledger::envgate::create_table_sql;
use serde_json::json;
use support::ledger::{hash, insert};
use support::{PgDb, Project};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const TICKETS: &str = "CREATE TABLE tickets (id bigint PRIMARY KEY);\n";
const TRASH: &str = "ALTER TABLE tickets ADD COLUMN trashed_at timestamptz;\n";
const AUDIT: &str = "CREATE INDEX tickets_idx ON tickets (id);\n";

fn migrations() -> Vec<(&'static str, &'static str)> {
    vec![
        ("20260418_001_users.sql", USERS),
        ("20260420_001_tickets.sql", TICKETS),
        ("20260424_001_add_trash.sql", TRASH),
        ("20260424_002_audit_idx.sql", AUDIT),
        ("notes.txt", "not a migration"),
    ]
}

fn ledger(db: &PgDb, schema: Option<&str>, rows: &[(&str, &str, &str, bool)]) {
    let mut sql = String::new();
    if let Some(s) = schema {
        sql.push_str(&format!("CREATE SCHEMA \"{s}\";\n"));
    }
    sql.push_str(&create_table_sql(Dialect::Postgres, schema));
    sql.push_str(";\n");
    let table = envgate::ledger::envgate::qualified(envgate::core::sql::Dialect::Postgres, schema);
    for (version, name, body, success) in rows {
        sql.push_str(&insert(
            &table,
            version,
            name,
            &hash(body),
            *success,
            "2026-04-18 10:00:00+00",
        ));
    }
    db.execute(&sql);
}

#[test]
fn every_state_across_environments() {
    let dev = PgDb::create("dev");
    let staging = PgDb::create("staging");
    let prod = PgDb::create("prod");
    ledger(
        &dev,
        None,
        &[
            ("20260418_001", "users", USERS, true),
            ("20260420_001", "tickets", TICKETS, true),
            ("20260424_001", "add_trash", TRASH, true),
            (
                "20260424_002",
                "audit_idx",
                "CREATE INDEX tickets_idx ON tickets (id, title);\n",
                true,
            ),
            ("20260430_001", "hotfix", "UPDATE x SET y = 1;\n", true),
        ],
    );
    ledger(
        &staging,
        None,
        &[
            ("20260418_001", "users", USERS, true),
            ("20260424_001", "add_trash", TRASH, false),
            ("20260424_002", "audit_idx", AUDIT, true),
        ],
    );
    // prod: no ledger table at all, i.e. nothing applied yet.
    let project = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\n\n[environments.staging]\nurl = \"{}\"\n\n\
             [environments.prod]\nurl = \"{}\"\n\n[environments.eu-prod]\nurl = \"postgres://app:pw@127.0.0.1:1/nowhere\"\nconnect_timeout = \"2s\"\n",
            dev.url(),
            staging.url(),
            prod.url()
        ),
        &migrations(),
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "an unreachable environment exits 4: {run:?}");
    let j = run.json();
    assert_eq!(j["schema_version"], 1);

    let envs = j["environments"].as_array().unwrap();
    let names: Vec<_> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "staging", "prod", "eu-prod"]);
    assert_eq!(envs[0]["mode"], "managed");
    assert_eq!(envs[0]["mode_source"], "default");
    assert_eq!(envs[1]["mode"], "export_only");
    assert_eq!(envs[3]["mode"], "export_only");
    assert_eq!(envs[0]["ledger"], "envgate");
    assert_eq!(
        envs[0]["counts"],
        json!({"applied": 3, "pending": 0, "drifted": 1, "failed": 0, "missing": 1})
    );
    assert_eq!(
        envs[1]["counts"],
        json!({"applied": 2, "pending": 1, "drifted": 0, "failed": 1, "missing": 0})
    );
    assert_eq!(
        envs[2]["counts"],
        json!({"applied": 0, "pending": 4, "drifted": 0, "failed": 0, "missing": 0})
    );
    assert_eq!(envs[2]["reachable"], true);
    assert_eq!(envs[2]["error"], serde_json::Value::Null);
    assert_eq!(envs[3]["reachable"], false);
    let err = envs[3]["error"].as_str().unwrap();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    let ms = j["migrations"].as_array().unwrap();
    let ids: Vec<_> = ms.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "20260418_001",
            "20260420_001",
            "20260424_001",
            "20260424_002",
            "20260430_001"
        ]
    );
    let state = |m: usize, env: &str| ms[m]["cells"][env]["state"].as_str().unwrap().to_owned();
    let row = |m: usize| ["dev", "staging", "prod", "eu-prod"].map(|e| state(m, e));
    assert_eq!(row(0), ["applied", "applied", "pending", "unreachable"]);
    assert_eq!(row(1), ["applied", "pending", "pending", "unreachable"]);
    assert_eq!(row(2), ["applied", "failed", "pending", "unreachable"]);
    assert_eq!(row(3), ["drifted", "applied", "pending", "unreachable"]);
    assert_eq!(row(4), ["missing", "absent", "absent", "unreachable"]);

    // tickets is pending in staging, older than audit_idx applied there.
    assert_eq!(ms[1]["cells"]["staging"]["out_of_order"], true);
    assert_eq!(ms[1]["cells"]["prod"]["out_of_order"], false);

    let audit = &ms[3];
    assert_eq!(audit["version"], "20260424_002");
    assert_eq!(audit["name"], "audit_idx");
    assert_eq!(audit["file"], "migrations/20260424_002_audit_idx.sql");
    let today = envgate::core::checksum::ContentHash::of(AUDIT.as_bytes()).hex();
    assert_eq!(audit["sha256"], today.as_str());
    assert_eq!(audit["cells"]["staging"]["applied_sha256"], today.as_str());
    let then = envgate::core::checksum::ContentHash::of(
        b"CREATE INDEX tickets_idx ON tickets (id, title);\n",
    )
    .hex();
    assert_eq!(audit["cells"]["dev"]["applied_sha256"], then.as_str());
    assert_eq!(
        audit["cells"]["dev"]["applied_at"],
        "2026-04-18T10:00:00.000Z"
    );
    assert_eq!(
        audit["cells"]["prod"]["applied_at"],
        serde_json::Value::Null
    );

    let hotfix = &ms[4];
    assert_eq!(hotfix["sha256"], serde_json::Value::Null);
    assert_eq!(hotfix["file"], serde_json::Value::Null);
    assert_eq!(hotfix["name"], "hotfix");

    // --check: drift, failure and missing outrank the outage.
    let run = project.envgate(&["status", "--check", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    // Only reachable, clean environments: 0, pending is fine.
    let run = project.envgate(&["status", "--check", "--env", "prod"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = project.envgate(&["status", "--env", "prod", "--env", "nope"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("unknown environment 'nope' (configured: dev, staging, prod, eu-prod)"),
        "{run:?}"
    );
}

#[test]
fn table_and_markdown_show_the_same_matrix() {
    let dev = PgDb::create("fmt");
    ledger(
        &dev,
        None,
        &[
            ("20260418_001", "users", USERS, true),
            ("20260420_001", "tickets", "changed", true),
        ],
    );
    let project = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n",
            dev.url()
        ),
        &migrations(),
    );
    let table = project.envgate(&["status"]);
    assert_eq!(table.code, 0, "{table:?}");
    let has_line = |words: &[&str]| {
        table
            .stdout
            .lines()
            .any(|l| l.split_whitespace().eq(words.iter().copied()))
    };
    assert!(has_line(&["20260420_001_tickets", "drifted"]), "{table:?}");
    assert!(has_line(&["drifted", "1"]), "{table:?}");
    assert!(
        table
            .stdout
            .contains("drifted (the file changed after it was applied):"),
        "{table:?}"
    );
    let md = project.envgate(&["status", "--format", "markdown"]);
    assert_eq!(md.code, 0, "{md:?}");
    assert!(
        md.stdout
            .contains("| `20260420_001_tickets` | ⚠️ drifted |"),
        "{md:?}"
    );
    assert!(
        md.stdout
            .contains("| `20260424_001_add_trash` | ⏳ pending |"),
        "{md:?}"
    );
}

#[test]
fn schema_override_reads_each_environments_own_ledger() {
    // Two environments sharing one database, each with its own schema.
    let shared = PgDb::create("shared");
    ledger(
        &shared,
        Some("tenant_a"),
        &[("20260418_001", "users", USERS, true)],
    );
    ledger(
        &shared,
        Some("Tenant B"),
        &[
            ("20260418_001", "users", USERS, true),
            ("20260420_001", "tickets", TICKETS, true),
        ],
    );
    // And a ledger in public that neither must see.
    ledger(&shared, None, &[("20260424_002", "audit_idx", AUDIT, true)]);
    let project = Project::new(
        &format!(
            "[environments.a]\nurl = \"{url}\"\nschema = \"tenant_a\"\n\n\
             [environments.b]\nurl = \"{url}\"\nschema = \"Tenant B\"\n\n\
             [environments.c]\nurl = \"{url}\"\nschema = \"no_such_schema\"\n\n\
             [environments.public]\nurl = \"{url}\"\n",
            url = shared.url()
        ),
        &migrations(),
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let j = run.json();
    let applied: Vec<_> = j["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["counts"]["applied"].clone())
        .collect();
    assert_eq!(applied, [json!(1), json!(2), json!(0), json!(1)]);
    assert_eq!(j["migrations"][3]["cells"]["public"]["state"], "applied");
    assert_eq!(j["migrations"][3]["cells"]["a"]["state"], "pending");
}

#[test]
fn ledger_with_an_unexpected_shape_is_reported_for_that_environment() {
    let odd = PgDb::create("odd");
    odd.execute("CREATE TABLE envgate_migrations (version text PRIMARY KEY, checksum bytea)");
    let good = PgDb::create("good");
    let project = Project::new(
        &format!(
            "[environments.odd]\nurl = \"{}\"\n[environments.good]\nurl = \"{}\"\n",
            odd.url(),
            good.url()
        ),
        &migrations(),
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    let j = run.json();
    let err = j["environments"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("ledger table public.envgate_migrations cannot be read"),
        "{err}"
    );
    assert!(err.contains("column \"name\" does not exist"), "{err}");
    assert_eq!(j["environments"][1]["reachable"], true);
}

#[test]
fn credentials_are_masked_in_every_output_format() {
    let dev = PgDb::create("mask");
    ledger(&dev, None, &[("20260418_001", "users", USERS, true)]);
    let secret = "Sup3r-S3cret-pw";
    let project = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\n\n\
             [environments.down]\nurl = \"postgres://app:{secret}@127.0.0.1:1/app?sslmode=disable\"\n\n\
             [environments.fromvar]\nurl = \"${{DOWN_URL}}\"\n\n\
             [environments.fromfile]\nurl_file = \"secret-url\"\n",
            dev.url_with_password(secret)
        ),
        &migrations(),
    );
    project.write(
        "secret-url",
        &format!("postgres://app:{secret}@127.0.0.1:1/other?password={secret}\n"),
    );
    let vars = [("DOWN_URL", "postgres://app:Sup3r-S3cret-pw@127.0.0.1:1/x")];
    for format in ["table", "json", "markdown"] {
        let run = project.envgate_with_env(&["status", "--format", format, "-v"], &vars);
        assert_eq!(run.code, 4, "{run:?}");
        assert!(
            !run.stdout.contains(secret),
            "{format} leaks the password:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "{format} leaks the password:\n{}",
            run.stderr
        );
        assert!(
            run.stdout.contains("127.0.0.1:1"),
            "{format} names the unreachable target:\n{}",
            run.stdout
        );
    }
    // A configuration error quoting the URL masks it too.
    let bad = Project::new(
        &format!("[environments.dev]\nurl = \"postgres://app:{secret}@h/d?sslmode=sometimes\"\n"),
        &migrations(),
    );
    let run = bad.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("postgres://app:***@h/d?sslmode=sometimes"),
        "{run:?}"
    );
    assert!(!run.stderr.contains(secret), "{run:?}");
}
