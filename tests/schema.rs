//! Drift in the live schema on PostgreSQL and SQLite: hand changes made
//! after migrating are each reported and nothing else is, environments
//! built by the same migrations are clean, the shadow database is created
//! and dropped and never an environment's, introspection only reads.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::{PgDb, PgRole, Project, admin, server_addr, unique_name};

const USERS: &str = "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, display_name text);\n";
const TICKETS: &str = "CREATE TABLE tickets (id serial PRIMARY KEY, user_id bigint REFERENCES users (id), status text DEFAULT 'open' CHECK (status <> ''));\n\
CREATE INDEX tickets_status ON tickets (status) WHERE status <> 'closed';\n\
CREATE VIEW open_tickets AS SELECT id, status FROM tickets WHERE status = 'open';\n";
const MORE: &str = "CREATE TYPE mood AS ENUM ('happy', 'sad');\n\
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
CREATE TRIGGER tickets_touch BEFORE UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION touch();\n\
CREATE INDEX CONCURRENTLY tickets_user ON tickets (user_id);\n";

fn migrations() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_users.sql", USERS),
        ("2_tickets.sql", TICKETS),
        ("3_more.sql", MORE),
    ]
}

fn shadow_url(name: &str) -> String {
    let (host, port) = server_addr();
    format!("postgres://{}@{host}:{port}/{name}", support::admin_user())
}

fn config(shadow: Option<&str>, envs: &[(&str, String)], extra: &str) -> String {
    let mut text = String::new();
    if shadow.is_some() || !extra.is_empty() {
        text.push_str("[schema_drift]\n");
        if let Some(s) = shadow {
            text.push_str(&format!("shadow_url = \"{s}\"\n"));
        }
        text.push_str(extra);
    }
    for (name, url) in envs {
        text.push_str(&format!(
            "[environments.{name}]\nurl = \"{url}\"\nmode = \"managed\"\n"
        ));
    }
    text
}

fn database_exists(name: &str) -> bool {
    !admin()
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_empty()
}

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

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Three environments at two positions, one changed by hand: each hand
/// change is reported in plain words, nothing else is, the shadow database
/// is gone afterwards, and a second run needs no shadow (the cache).
#[test]
fn hand_changes_are_each_reported_and_nothing_else() {
    let (dev, staging, prod) = (
        PgDb::create("sd_dev"),
        PgDb::create("sd_staging"),
        PgDb::create("sd_prod"),
    );
    let shadow = unique_name("sd_shadow");
    let p = Project::new(
        &config(
            Some(&shadow_url(&shadow)),
            &[
                ("dev", dev.url()),
                ("staging", staging.url()),
                ("prod", prod.url()),
            ],
            "",
        ),
        &migrations(),
    );
    for (e, up_to) in [("dev", "3"), ("staging", "2"), ("prod", "3")] {
        let run = p.envgate(&["apply", "--env", e, "--up-to", up_to]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    prod.execute(
        "CREATE INDEX tickets_tmp_idx ON tickets (user_id, status);
         ALTER TABLE users ALTER COLUMN display_name TYPE varchar(200);
         ALTER TABLE tickets DROP CONSTRAINT tickets_user_id_fkey;
         CREATE TABLE scratch (id int PRIMARY KEY, note text);",
    );

    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    for (name, applied) in [("dev", 3), ("staging", 2)] {
        let e = env(&doc, name);
        assert_eq!(e["state"], "matches", "{e}");
        assert_eq!(e["compared_with"]["kind"], "migrations", "{e}");
        assert_eq!(e["compared_with"]["applied"], applied, "{e}");
    }
    let e = env(&doc, "prod");
    assert_eq!(e["state"], "differs", "{e}");
    assert_eq!(
        texts(e),
        set(&[
            "prod has index `tickets_tmp_idx` that no migration creates",
            "prod: `users.display_name` is `character varying(200)`, migrations make it `text`",
            "prod lacks foreign key `tickets_user_id_fkey`",
            "prod has table `scratch` that no migration creates",
        ])
    );
    let fk = e["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["object"]["kind"] == "foreign_key")
        .unwrap();
    assert_eq!(
        fk["object"]["definition"],
        "FOREIGN KEY (user_id) REFERENCES users(id)"
    );
    assert_ne!(
        env(&doc, "dev")["fingerprint"],
        e["fingerprint"],
        "a changed schema has another fingerprint"
    );
    assert!(!database_exists(&shadow), "the shadow database is dropped");

    // People read it as sentences with the definitions, and --check fails.
    let run = p.envgate(&["schema", "diff", "--check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("dev      matches what its 3 applied migrations produce"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  - prod has table `scratch` that no migration creates\n      table (id integer not null, note text)\n"),
        "{run:?}"
    );
    // Once cached, no shadow is needed: an unreachable one changes nothing.
    let dead = format!("postgres://nobody@127.0.0.1:{}/gone", support::free_port());
    p.write(
        "envgate.toml",
        &config(
            Some(&dead),
            &[
                ("dev", dev.url()),
                ("staging", staging.url()),
                ("prod", prod.url()),
            ],
            "",
        ),
    );
    let again = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json(), doc);
    // An edited migration is another position: built anew (and the dead
    // shadow says so).
    p.write("migrations/1_users.sql", &format!("{USERS}-- edited\n"));
    let edited = p.envgate(&["schema", "diff", "--format", "json"]);
    let e = env(&edited.json(), "dev").clone();
    assert_eq!(e["state"], "unknown", "{edited:?}");
    assert!(
        e["note"]
            .as_str()
            .unwrap()
            .contains("the shadow database could not be created"),
        "{e}"
    );
}

/// Without a shadow, environments at one position are compared with each
/// other; the first says why it has no reference.
#[test]
fn without_a_shadow_environments_at_one_position_are_compared() {
    let (dev, prod) = (PgDb::create("sd_pdev"), PgDb::create("sd_pprod"));
    let p = Project::new(
        &config(None, &[("dev", dev.url()), ("prod", prod.url())], ""),
        &migrations(),
    );
    for e in ["dev", "prod"] {
        assert_eq!(p.envgate(&["apply", "--env", e]).code, 0);
    }
    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(env(&doc, "prod")["state"], "matches", "{doc}");
    assert_eq!(env(&doc, "prod")["compared_with"]["env"], "dev", "{doc}");
    assert_eq!(
        env(&doc, "dev")["fingerprint"],
        env(&doc, "prod")["fingerprint"]
    );
    assert_eq!(env(&doc, "dev")["state"], "unknown");
    assert!(
        env(&doc, "dev")["note"]
            .as_str()
            .unwrap()
            .contains("set `shadow_url` in [schema_drift]"),
        "{doc}"
    );
    dev.execute("CREATE INDEX users_name ON users (display_name)");
    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(
        texts(env(&run.json(), "prod")),
        set(&["prod lacks index `users_name` that dev has"])
    );
}

/// The shadow is never an environment's database, and a database envgate
/// did not create is never dropped.
#[test]
fn the_shadow_is_never_an_environment_nor_a_stranger() {
    let prod = PgDb::create("sd_sprod");
    let p = Project::new(
        &config(Some(&prod.url()), &[("prod", prod.url())], ""),
        &migrations(),
    );
    assert_eq!(p.envgate(&["apply", "--env", "prod"]).code, 0);
    let run = p.envgate(&["schema", "diff"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("envgate.toml:2: `schema_drift.shadow_url`")
            && run.stderr.contains("environment 'prod''s database"),
        "{run:?}"
    );
    assert!(prod.query_strings("SELECT 1 FROM users").is_empty());

    let stranger = PgDb::create("sd_stranger");
    stranger.execute("CREATE TABLE precious (id int)");
    p.write(
        "envgate.toml",
        &config(
            Some(&shadow_url(&stranger.name)),
            &[("prod", prod.url())],
            "",
        ),
    );
    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let e = env(&run.json(), "prod").clone();
    assert_eq!(e["state"], "unknown");
    assert!(
        e["note"]
            .as_str()
            .unwrap()
            .contains("exists and envgate did not create it as a shadow"),
        "{e}"
    );
    assert_eq!(
        stranger
            .query_strings("SELECT count(*) FROM precious")
            .len(),
        1
    );
}

/// Ignore rules leave out what a team manages elsewhere; `status --schema`
/// carries each environment's schema in the JSON and fails --check on a
/// difference.
#[test]
fn ignore_rules_and_status_with_the_schema() {
    let (dev, prod) = (PgDb::create("sd_idev"), PgDb::create("sd_iprod"));
    let shadow = unique_name("sd_ishadow");
    let envs = [("dev", dev.url()), ("prod", prod.url())];
    let p = Project::new(
        &config(
            Some(&shadow_url(&shadow)),
            &envs,
            "ignore = [\"index:*_tmp_idx\", \"table:events_*\"]\n",
        ),
        &migrations(),
    );
    for e in ["dev", "prod"] {
        assert_eq!(p.envgate(&["apply", "--env", e]).code, 0);
    }
    prod.execute(
        "CREATE INDEX users_tmp_idx ON users (display_name);
         CREATE TABLE events_2026_12 (id int PRIMARY KEY);
         CREATE INDEX events_2026_12_id ON events_2026_12 (id);",
    );
    let run = p.envgate(&["status", "--schema", "--check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    let envs_json = doc["environments"].as_array().unwrap();
    assert_eq!(envs_json[1]["name"], "prod");
    assert_eq!(envs_json[1]["schema"]["state"], "matches", "{doc}");
    assert_eq!(
        envs_json[0]["schema"]["fingerprint"],
        envs_json[1]["schema"]["fingerprint"]
    );
    assert!(doc["migrations"].as_array().unwrap().len() == 3);

    prod.execute("ALTER TABLE users ADD COLUMN nickname text");
    let run = p.envgate(&["status", "--schema", "--check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("  - prod has column `users.nickname` that no migration creates"),
        "{run:?}"
    );
    let page = p.envgate(&["status", "--schema", "--format", "html"]);
    assert!(
        page.stdout.contains("<h2 id=\"schema\">Live schema</h2>")
            && page
                .stdout
                .contains("<li>prod has column `users.nickname` that no migration creates<br><code>text</code></li>"),
        "{page:?}"
    );
    // A bad rule is named in the file.
    p.write(
        "envgate.toml",
        &config(None, &envs, "ignore = [\"tabel:x\"]\n"),
    );
    let run = p.envgate(&["schema", "diff"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("envgate.toml:2:")
            && run.stderr.contains("unknown object kind `tabel`"),
        "{run:?}"
    );
}

/// Introspection needs no right to write: a role that may only connect
/// reads prod's schema (the catalogs), in read-only transactions.
#[test]
fn introspection_only_reads() {
    let prod = PgDb::create("sd_roprod");
    let shadow = unique_name("sd_roshadow");
    let p = Project::new(
        &config(Some(&shadow_url(&shadow)), &[("prod", prod.url())], ""),
        &migrations(),
    );
    assert_eq!(p.envgate(&["apply", "--env", "prod"]).code, 0);
    let role = PgRole::create(
        "sd_reader",
        &format!(
            "REVOKE ALL ON DATABASE \"{0}\" FROM PUBLIC; GRANT CONNECT ON DATABASE \"{0}\" TO {{role}}",
            prod.name
        ),
    );
    let (host, port) = server_addr();
    let reader = format!("postgres://{}@{host}:{port}/{}", role.name, prod.name);
    p.write(
        "envgate.toml",
        &format!(
            "[schema_drift]\nshadow_url = \"{}\"\n[environments.prod]\nurl = \"{reader}\"\nmode = \"export_only\"\n",
            shadow_url(&shadow)
        ),
    );
    let run = p.envgate(&["schema", "diff", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The ledger is unreadable for this role, so the position is unknown;
    // the schema itself was read.
    let e = env(&run.json(), "prod").clone();
    assert!(e["objects"].as_u64().unwrap() > 10, "{e}");
    assert_eq!(e["state"], "unknown", "{e}");
    assert!(
        e["note"]
            .as_str()
            .unwrap()
            .contains("its ledger could not be read"),
        "{e}"
    );
    let show = p.envgate(&["schema", "show", "--env", "prod"]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(
        show.stdout
            .contains("index tickets_status: CREATE INDEX tickets_status ON public.tickets USING btree (status) WHERE "),
        "{show:?}"
    );
    assert!(
        show.stdout.contains("enum mood: 'happy', 'sad'"),
        "{show:?}"
    );
    assert!(
        show.stdout
            .contains("column users.id: bigint not null generated always as identity"),
        "{show:?}"
    );
}

/// SQLite: the shadow is a throwaway file; hand changes are reported, a
/// read-only prod file is read.
#[test]
fn sqlite_hand_changes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "1_users.sql",
            "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, display_name text);\n",
        ),
        (
            "2_tickets.sql",
            "CREATE TABLE tickets (id integer PRIMARY KEY, user_id integer REFERENCES users (id), status text);\n\
             CREATE INDEX tickets_status ON tickets (status);\n\
             CREATE VIEW open_tickets AS SELECT id FROM tickets WHERE status = 'open';\n",
        ),
    ];
    let dev = dir.path().join("dev.db");
    let prod = dir.path().join("prod.db");
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"sqlite://{}\"\nmode = \"managed\"\n[environments.prod]\nurl = \"sqlite://{}\"\nmode = \"managed\"\n",
            dev.display(),
            prod.display()
        ),
        &files,
    );
    for e in ["dev", "prod"] {
        assert_eq!(p.envgate(&["apply", "--env", e]).code, 0);
    }
    let c = rusqlite::Connection::open(&prod).unwrap();
    c.execute_batch(
        "CREATE INDEX tickets_tmp ON tickets (user_id);
         ALTER TABLE users ADD COLUMN nickname text;
         DROP INDEX tickets_status;
         CREATE TABLE scratch (x integer);",
    )
    .unwrap();
    drop(c);
    let mut perms = std::fs::metadata(&prod).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&prod, perms).unwrap();

    let run = p.envgate(&["schema", "diff", "--format", "json", "--check"]);
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(env(&doc, "dev")["state"], "matches", "{doc}");
    assert_eq!(
        texts(env(&doc, "prod")),
        set(&[
            "prod has index `tickets_tmp` that no migration creates",
            "prod has column `users.nickname` that no migration creates",
            "prod lacks index `tickets_status`",
            "prod has table `scratch` that no migration creates",
        ])
    );
}
