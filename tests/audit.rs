//! The audit trail as an auditor uses it: keyed seals that someone who can
//! write the control store cannot recompute, a published head that shows
//! truncation, exports that end with the head they were verified against,
//! and actors marked by how envgate knows them.

mod support;

use envgate::core::audit::{Record, seal_after};
use serde_json::Value;
use support::{Project, Run};

const KEY: &str = "9c1e6f0d2b8a4c7e5f3a1d9b0c8e7f6a";
const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY);\n";

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{run:?}");
}

/// A project whose trail holds a few records, all keyed.
fn project() -> Project {
    let p = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[environments.qa]\nurl = \"sqlite://qa.db\"\n",
        &[("1_users.sql", USERS), ("2_orders.sql", ORDERS)],
    );
    let key = [("ENVGATE_AUDIT_KEY", KEY)];
    ok(&p.envgate_with_env(&["apply", "--env", "dev", "--actor", "alice"], &key));
    ok(&p.envgate_with_env(
        &["apply", "--env", "qa", "--up-to", "1"],
        &[
            ("ENVGATE_AUDIT_KEY", KEY),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "77"),
        ],
    ));
    p
}

fn records(p: &Project) -> Vec<Value> {
    let run = p.envgate_with_env(
        &["audit", "--format", "json"],
        &[("ENVGATE_AUDIT_KEY", KEY)],
    );
    ok(&run);
    run.json()["records"].as_array().unwrap().clone()
}

fn head(p: &Project) -> String {
    let run = p.envgate(&["audit", "head"]);
    ok(&run);
    run.stdout.trim().to_owned()
}

fn store(p: &Project) -> rusqlite::Connection {
    rusqlite::Connection::open(p.path().join(".envgate/state.db")).unwrap()
}

#[test]
fn keyed_records_resist_a_recomputed_chain() {
    let p = project();
    let all = records(&p);
    assert!(all.iter().all(|r| r["seal"] == "hmac-sha256"), "{all:#?}");
    let with_key = p.envgate_with_env(&["audit", "verify"], &[("ENVGATE_AUDIT_KEY", KEY)]);
    ok(&with_key);
    assert!(
        with_key.stdout.contains(&format!(
            "{n} keyed records proven with ENVGATE_AUDIT_KEY",
            n = all.len()
        )),
        "{with_key:?}"
    );
    let without = p.envgate(&["audit", "verify"]);
    ok(&without);
    assert!(
        without
            .stdout
            .contains("linked, but their content is not proven: set ENVGATE_AUDIT_KEY"),
        "{without:?}"
    );

    // Someone with write access to the store but not the key edits a
    // record and recomputes every hash with the documented formula.
    let mut chain: Vec<Record> = all
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    chain[1].entry.actor = "mallory".into();
    let mut rewritten: Vec<Record> = Vec::new();
    for r in &chain {
        let prev = rewritten.last().map(|p| (p.seq, p.hash.as_str()));
        rewritten.push(seal_after(prev, r.entry.clone(), None));
    }
    let db = store(&p);
    for r in &rewritten {
        db.execute(
            "UPDATE audit_log SET actor = ?1, prev_hash = ?2, hash = ?3, seal = NULL WHERE seq = ?4",
            rusqlite::params![r.entry.actor, r.prev_hash, r.hash, r.seq as i64],
        )
        .unwrap();
    }
    let run = p.envgate_with_env(&["audit", "verify"], &[("ENVGATE_AUDIT_KEY", KEY)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("the newest record is not keyed although the audit key is set"),
        "{run:?}"
    );
    // Recomputed as keyed records without the key: the first fails.
    for r in &rewritten {
        db.execute(
            "UPDATE audit_log SET seal = 'hmac-sha256' WHERE seq = ?1",
            [r.seq as i64],
        )
        .unwrap();
    }
    let run = p.envgate_with_env(&["audit"], &[("ENVGATE_AUDIT_KEY", KEY)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "audit trail tampered with: record 1: its content does not match its keyed hash"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("NOT VERIFIED: record 1"), "{run:?}");
}

#[test]
fn a_published_head_catches_truncation_and_rewrites() {
    let p = project();
    let published = head(&p);
    let (seq, hash) = published.split_once(':').unwrap();
    assert_eq!(hash.len(), 64, "{published}");
    let expect = |p: &Project| {
        p.envgate_with_env(
            &["audit", "verify", "--expect", &published],
            &[("ENVGATE_AUDIT_KEY", KEY)],
        )
    };
    let run = expect(&p);
    ok(&run);
    assert!(
        run.stdout
            .contains(&format!("the published head {published} is on the chain")),
        "{run:?}"
    );
    // More records later: the old head is still on the chain.
    ok(&p.envgate_with_env(&["apply", "--env", "qa"], &[("ENVGATE_AUDIT_KEY", KEY)]));
    ok(&expect(&p));

    // The newest records deleted: a shorter chain verifies on its own,
    // but not against the head published before.
    let db = store(&p);
    db.execute(
        "DELETE FROM audit_log WHERE seq >= ?1",
        [seq.parse::<i64>().unwrap()],
    )
    .unwrap();
    ok(&p.envgate_with_env(&["audit", "verify"], &[("ENVGATE_AUDIT_KEY", KEY)]));
    let run = expect(&p);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "the published head {published} is not on the chain: it ends at record {} (truncated)",
            seq.parse::<u64>().unwrap() - 1
        )),
        "{run:?}"
    );
    // The same check from a plain export.
    let run = p.envgate(&["audit", "--expect", &published, "--format", "jsonl"]);
    assert_eq!(run.code, 1, "{run:?}");

    let run = p.envgate(&["audit", "verify", "--expect", "12"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("expected SEQ:HASH"), "{run:?}");
}

#[test]
fn exports_filter_and_end_with_the_head_they_were_verified_against() {
    let p = project();
    let all = records(&p);
    let newest = all.last().unwrap();
    let head = format!("{}:{}", newest["seq"], newest["hash"].as_str().unwrap());

    // JSON Lines: one record a line, then the check.
    let run = p.envgate(&["audit", "--format", "jsonl", "--actor", "ALICE"]);
    ok(&run);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, recs) = lines.split_last().unwrap();
    assert!(!recs.is_empty());
    assert!(recs.iter().all(|r| r["actor"] == "alice"), "{recs:#?}");
    assert!(
        recs.iter()
            .all(|r| r["actor_source"] == "unverified: --actor"),
        "{recs:#?}"
    );
    assert_eq!(
        format!(
            "{}:{}",
            last["check"]["head"]["seq"],
            last["check"]["head"]["hash"].as_str().unwrap()
        ),
        head
    );
    assert_eq!(last["check"]["tampered"], Value::Null);

    // By kind and environment; the GitHub Actions run is the verified
    // actor's source.
    let run = p.envgate(&[
        "audit", "--format", "json", "--kind", "apply", "--env", "qa",
    ]);
    ok(&run);
    let j = run.json();
    let recs = j["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{j:#}");
    assert_eq!(recs[0]["actor"], "octocat");
    assert_eq!(
        recs[0]["actor_source"],
        "github-actions: https://github.com/acme/shop/actions/runs/77"
    );
    assert_eq!(j["check"]["head"]["seq"], newest["seq"]);

    // --until before everything: nothing, still verified.
    let run = p.envgate(&["audit", "--until", "2000-01-01", "--format", "csv"]);
    ok(&run);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "only the head row: {}", run.stdout);
    assert_eq!(rows[0].get(0), Some("head"));
    assert_eq!(rows[0].get(8), Some("verified"));

    // The table marks who is only their own word.
    let run = p.envgate(&["audit"]);
    ok(&run);
    assert!(run.stdout.contains(" alice* "), "{}", run.stdout);
    assert!(run.stdout.contains(" octocat "), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with(&format!("verified against head {head}\n")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_short_audit_key_is_refused_and_never_echoed() {
    let p = project();
    let run = p.envgate_with_env(&["audit", "verify"], &[("ENVGATE_AUDIT_KEY", "hunter2")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("ENVGATE_AUDIT_KEY: the audit key is 7 bytes; at least 16 are needed"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
}

/// A store the bot keeps for several repositories, read from the command
/// line: `--repository` keeps one repository's records (its environments
/// need not be this envgate.toml's), the chain verified whole.
#[test]
fn a_store_shared_by_repositories_is_read_one_repository_at_a_time() {
    let p = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[("1_users.sql", USERS)],
    );
    let path = p.path().join(".envgate/state.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = envgate::control::ControlStore::open(
            &envgate::config::ControlStoreLocation::Sqlite(path),
        )
        .await
        .unwrap();
        for (repo, actor) in [
            ("github:acme/a", "ann"),
            ("github:acme/b", "bob"),
            ("gitlab:acme/a", "gil"),
        ] {
            store
                .append(
                    envgate::core::audit::Entry {
                        at: "2026-12-01T00:00:00Z".into(),
                        action: "promote".into(),
                        actor: actor.into(),
                        environment: Some("prod".into()),
                        outcome: "exported".into(),
                        repository: Some(repo.into()),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap();
        }
    });
    let run = p.envgate(&[
        "audit",
        "--repository",
        "github:acme/a",
        "--env",
        "prod",
        "--format",
        "json",
    ]);
    ok(&run);
    let j = run.json();
    let recs = j["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{j:#}");
    assert_eq!(recs[0]["actor"], "ann");
    assert_eq!(recs[0]["repository"], "github:acme/a");
    assert_eq!(j["check"]["verified"]["records"], 3, "verified whole");
    // Without --repository, `prod` is checked against this envgate.toml.
    let run = p.envgate(&["audit", "--env", "prod"]);
    assert_eq!(run.code, 2, "{run:?}");
}
