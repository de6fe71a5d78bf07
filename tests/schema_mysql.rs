//! Drift in the live schema on MariaDB: hand changes made after migrating
//! are each reported and nothing else is, a user who may only SELECT reads
//! the schema, the shadow database is created, marked and dropped.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::Project;
use support::mysql::{MyDb, run_as};

const USERS: &str = "CREATE TABLE users (id bigint AUTO_INCREMENT PRIMARY KEY, email varchar(200) NOT NULL UNIQUE, display_name text);\n";
const TICKETS: &str = "CREATE TABLE tickets (id int PRIMARY KEY, user_id bigint, status varchar(20) DEFAULT \"open\", \
CONSTRAINT tickets_user_fk FOREIGN KEY (user_id) REFERENCES users (id), CONSTRAINT status_set CHECK (status <> ''));\n\
CREATE INDEX tickets_status ON tickets (status);\n\
CREATE VIEW open_tickets AS SELECT id, status FROM tickets WHERE status = 'open';\n";

fn env<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

fn texts(env: &Value) -> BTreeSet<String> {
    env["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_owned())
        .collect()
}

fn schemas_like(prefix: &str) -> Vec<String> {
    run_as(None, "", &format!("SHOW DATABASES LIKE '{prefix}'"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn hand_changes_on_mariadb_are_each_reported_and_nothing_else() {
    let (dev, prod) = (MyDb::create("sdm_dev"), MyDb::create("sdm_prod"));
    let shadow = support::unique_name("sdm_shadow");
    let shadow_url = dev.url().replace(&dev.name, &shadow);
    let p = Project::new(
        &format!(
            "[schema_drift]\nshadow_url = \"{shadow_url}\"\n\
             [environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"{}\"\nmode = \"managed\"\n",
            dev.url(),
            prod.url()
        ),
        &[("1_users.sql", USERS), ("2_tickets.sql", TICKETS)],
    );
    for e in ["dev", "prod"] {
        let run = p.envgate(&["apply", "--env", e]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    prod.execute(
        "CREATE INDEX tickets_tmp ON tickets (status, id); \
         ALTER TABLE users MODIFY display_name varchar(200); \
         ALTER TABLE tickets DROP CONSTRAINT status_set; \
         CREATE TABLE scratch (x int)",
    );

    // prod read by a user who may only SELECT.
    let user = format!("sdro{}", std::process::id());
    run_as(
        None,
        "",
        &format!(
            "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY 'Rq7sd'; \
             GRANT SELECT, SHOW VIEW ON `{}`.* TO '{user}'@'%'",
            prod.name
        ),
    )
    .unwrap();
    p.write(
        "envgate.toml",
        &format!(
            "[schema_drift]\nshadow_url = \"{shadow_url}\"\n\
             [environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n\
             [environments.prod]\nurl = \"{}\"\nmode = \"export_only\"\n",
            dev.url(),
            prod.url_as(&user, "Rq7sd")
        ),
    );
    let run = p.envgate(&["schema", "diff", "--format", "json", "--check"]);
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(env(&doc, "dev")["state"], "matches", "{doc}");
    assert_eq!(
        texts(env(&doc, "prod")),
        [
            "prod has index `tickets_tmp` that no migration creates",
            "prod: `users.display_name` is `varchar(200)`, migrations make it `text`",
            "prod lacks check constraint `status_set`",
            "prod has table `scratch` that no migration creates",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
    );
    assert!(!(run.stdout.clone() + &run.stderr).contains("Rq7sd"));
    assert!(schemas_like(&shadow).is_empty(), "the shadow is dropped");
    let _ = run_as(None, "", &format!("DROP USER IF EXISTS '{user}'@'%'"));

    // A database of that name that envgate did not make is left alone.
    run_as(None, "", &format!("CREATE DATABASE `{shadow}`")).unwrap();
    std::fs::remove_dir_all(p.path().join(".envgate/schemas")).unwrap();
    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    let e = env(&run.json(), "dev").clone();
    assert_eq!(e["state"], "unknown", "{e}");
    assert!(
        e["note"]
            .as_str()
            .unwrap()
            .contains("exists and envgate did not create it"),
        "{e}"
    );
    assert_eq!(schemas_like(&shadow), vec![shadow.clone()]);
    run_as(None, "", &format!("DROP DATABASE `{shadow}`")).unwrap();
}
