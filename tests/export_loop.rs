//! Closing the export loop: a bundle envgate made, applied by the team's
//! own client, is recognised in the ledger — completely, partly, or with
//! rows the bundle was edited to write — recorded once in the audit trail
//! and, when tampered, shown in the matrix with both hashes.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Project, Run};

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY);\n";
const ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY);\n";

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{run:?}");
}

/// Applies a bundle as a team's pipeline would: sqlite3, stopping at the
/// first error. The exit code.
fn apply_with_sqlite3(dir: &Path, bundle: &Path) -> (i32, String) {
    let bin = support::which("sqlite3").expect("sqlite3 is not installed: apt-get install sqlite3");
    let out = Command::new(bin)
        .current_dir(dir)
        .args(["-bail", "prod.db"])
        .stdin(std::fs::File::open(bundle).unwrap())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exports prod's bundle; its SQL file.
fn export(p: &Project) -> PathBuf {
    let run = p.envgate(&[
        "export",
        "--env",
        "prod",
        "--out-dir",
        "bundles",
        "--format",
        "json",
    ]);
    ok(&run);
    PathBuf::from(run.json()["bundle"]["sql"].as_str().unwrap())
}

fn bundle_records(p: &Project) -> Vec<Value> {
    let run = p.envgate(&["audit", "--kind", "bundle_applied", "--format", "json"]);
    ok(&run);
    run.json()["records"].as_array().unwrap().clone()
}

#[test]
fn bundles_applied_by_a_pipeline_are_recognised_partly_whole_and_tampered() {
    let p = Project::new(
        "[environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"export_only\"\n",
        &[("1_users.sql", USERS), ("2_orders.sql", ORDERS)],
    );
    let abs = |f: PathBuf| if f.is_absolute() { f } else { p.path().join(f) };
    let db = rusqlite::Connection::open(p.path().join("prod.db")).unwrap();

    // The pipeline runs the first bundle into a database where step 2
    // cannot run: one step applied, the other not.
    let first = abs(export(&p));
    db.execute_batch("CREATE TABLE orders (x TEXT);").unwrap();
    let (code, err) = apply_with_sqlite3(p.path(), &first);
    assert_ne!(code, 0, "step 2 fails: {err}");
    ok(&p.envgate(&["status"]));
    let seen = bundle_records(&p);
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0]["outcome"], "partial");
    assert_eq!(seen[0]["environment"], "prod");
    assert!(
        seen[0]["details"]
            .as_str()
            .unwrap()
            .ends_with("applied partly: 1 applied, 2 not"),
        "{seen:#?}"
    );
    // Seen again: nothing new to record.
    ok(&p.envgate(&["status"]));
    assert_eq!(bundle_records(&p).len(), 1);

    // The conflict cleared, the rest exported and applied: complete.
    db.execute_batch("DROP TABLE orders;").unwrap();
    let second = abs(export(&p));
    let (code, err) = apply_with_sqlite3(p.path(), &second);
    assert_eq!(code, 0, "{err}");
    ok(&p.envgate(&["status"]));
    let seen = bundle_records(&p);
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[1]["outcome"], "complete");

    // A bundle edited before it ran: the row records another hash than
    // the manifest lists. Tampered, in the audit and the matrix.
    p.write("migrations/3_items.sql", ITEMS);
    let third = abs(export(&p));
    let listed = support::ledger::hash(ITEMS);
    let forged = support::ledger::hash("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);\n");
    let sql = std::fs::read_to_string(&third).unwrap();
    assert!(
        sql.contains(&listed),
        "the bundle records the manifest's hash"
    );
    std::fs::write(&third, sql.replace(&listed, &forged)).unwrap();
    let (code, err) = apply_with_sqlite3(p.path(), &third);
    assert_eq!(code, 0, "{err}");
    let run = p.envgate(&["status"]);
    assert!(run.stdout.contains("tampered"), "{run:?}");
    let hex = |tagged: &str| tagged.split_once(':').unwrap().1.to_owned();
    assert!(
        run.stdout.contains("3_items in prod: tampered: bundle ")
            && run.stdout.contains(&format!(
                " records {}, the ledger holds {}",
                hex(&listed),
                hex(&forged)
            )),
        "{run:?}"
    );
    let json = p.envgate(&["status", "--format", "json"]);
    let j = json.json();
    let cell = &j["migrations"][2]["cells"]["prod"];
    assert_eq!(cell["state"], "drifted", "{cell:#}");
    assert_eq!(
        cell["tampered"]["manifest_sha256"],
        hex(&listed).as_str(),
        "{cell:#}"
    );
    let seen = bundle_records(&p);
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(seen[2]["outcome"], "tampered");
    let details = seen[2]["details"].as_str().unwrap();
    assert!(
        details.contains(&format!(
            "3 tampered: the manifest records {}, the ledger holds {}",
            hex(&listed),
            hex(&forged)
        )),
        "{details}"
    );
}
