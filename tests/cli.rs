//! The command line as users meet it: configuration and input errors, exit
//! codes, and the bundled quick-start example.

mod support;

use support::{Project, Run, envgate_in};

const ONE: &[(&str, &str)] = &[("1_a.sql", "SELECT 1;\n")];

fn status_with_config(config: &str) -> Run {
    Project::new(config, ONE).envgate(&["status"])
}

#[test]
fn configuration_errors_name_file_line_and_column() {
    let cases = [
        (
            "[environments.dev]\nurl = \"sqlite://x\nmode = 1\n",
            "envgate.toml:2:18: invalid basic string",
        ),
        (
            "[environments.dev]\nurl = \"sqlite://x\"\nmood = \"managed\"\n",
            "envgate.toml:3:1: unknown field `mood`",
        ),
        (
            "[environments.dev]\nurl = \"sqlite://x\"\nmode = \"auto\"\n",
            "envgate.toml:3:8: unknown variant `auto`, expected one of `managed`, `export_only`, `reconcile_only`",
        ),
        (
            "[environments.dev]\nurl = \"sqlite://a\"\n\n[environments.dev]\nurl = \"sqlite://b\"\n",
            "envgate.toml:4:",
        ),
        (
            "[environments.dev]\nurl = \"sqlite://x\"\nledger = \"flyway\"\n",
            "envgate.toml:3:10: environment 'dev': ledger \"flyway\" does not fit the project's format \"envgate\"",
        ),
        (
            "[environments.prod]\nurl = \"postgres://app:${PROD_DB_PASSWORD}@db/app\"\n",
            "envgate.toml:2:7: environment 'prod': variable PROD_DB_PASSWORD is not set",
        ),
        (
            "[environments.dev]\nurl = \"oracle://root@localhost/app\"\n",
            "envgate.toml:2:7: environment 'dev' (oracle://root@localhost/app): unsupported URL",
        ),
        (
            "[environments.dev]\nurl = \"sqlite://dev.db\"\nschema = \"app\"\n",
            "envgate.toml:2:7: environment 'dev': `schema` applies to PostgreSQL, MySQL and MariaDB only",
        ),
        (
            "[environments.dev]\nurl_file = \"missing-secret\"\n",
            "envgate.toml:2:12: environment 'dev': cannot read url_file",
        ),
    ];
    for (config, expected) in cases {
        let run = status_with_config(config);
        assert_eq!(run.code, 2, "{config}\n{run:?}");
        assert!(
            run.stderr.starts_with(&format!("error: {expected}")),
            "{config}\nwanted {expected}\n{run:?}"
        );
        assert!(run.stdout.is_empty(), "{run:?}");
    }
}

#[test]
fn missing_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = envgate_in(dir.path(), &["status"], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: envgate.toml: no such file (create an envgate.toml, or pass -c FILE)\n"
    );
    let run = envgate_in(dir.path(), &["status", "-c", "nope/envgate.toml"], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: nope/envgate.toml: no such file"),
        "{run:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let project = Project::new("[environments.dev]\nurl = \"sqlite::memory:\"\n", ONE);
    assert_eq!(project.envgate(&["status", "--format", "yaml"]).code, 2);
    assert_eq!(project.envgate(&["stauts"]).code, 2);
}

#[test]
fn bad_migration_files_are_named() {
    let config = "[environments.dev]\nurl = \"sqlite::memory:\"\n";
    type Files = Vec<(&'static str, &'static [u8])>;
    let cases: Vec<(Files, &str)> = vec![
        (
            vec![
                ("20260418_001_users.sql", b"a"),
                ("20260418_01_people.sql", b"b"),
            ],
            "error: migrations/20260418_01_people.sql: version 20260418_01 is already used by migrations/20260418_001_users.sql\n",
        ),
        (
            vec![("1_users.sql", b"a"), ("2_tickets.down.sql", b"b")],
            "error: migrations/2_tickets.down.sql: down migration without an up migration (expected migrations/2_tickets.sql)\n",
        ),
        (
            vec![("1_latin1.sql", b"SELECT 'caf\xe9';")],
            "error: migrations/1_latin1.sql: not valid UTF-8 (invalid byte at offset 11)\n",
        ),
    ];
    for (files, expected) in cases {
        let project = Project::new(config, &[]);
        for (name, bytes) in files {
            std::fs::write(project.path().join("migrations").join(name), bytes).unwrap();
        }
        let run = project.envgate(&["status"]);
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stderr, expected);
    }
    // An unreadable file (a dangling link) is named too.
    let project = Project::new(config, ONE);
    std::os::unix::fs::symlink(
        "/nonexistent/target.sql",
        project.path().join("migrations/2_link.sql"),
    )
    .unwrap();
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: migrations/2_link.sql: cannot read:"),
        "{run:?}"
    );
    // And a missing directory.
    let project = Project::new(
        "migrations = \"db/migrate\"\n[environments.dev]\nurl = \"sqlite::memory:\"\n",
        ONE,
    );
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: db/migrate: migrations directory not found (set `migrations` in envgate.toml)\n"
    );
}

#[test]
fn verbose_lists_ignored_files() {
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite::memory:\"\n",
        &[
            ("1_a.sql", "SELECT 1;\n"),
            ("README.md", "hi"),
            ("2_b.up.sql", "SELECT 2;\n"),
            ("V3__c.sql", "x"),
        ],
    );
    std::fs::create_dir(project.path().join("migrations/archive")).unwrap();
    let quiet = project.envgate(&["status"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(!quiet.stderr.contains("ignored"), "{quiet:?}");
    let run = project.envgate(&["status", "-v"]);
    assert_eq!(run.code, 0, "{run:?}");
    let ignored: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ignored "))
        .collect();
    assert_eq!(ignored.len(), 4, "{run:?}");
    assert!(
        ignored[0]
            .starts_with("ignored migrations/2_b.up.sql: envgate's layout has no .up.sql suffix"),
        "{run:?}"
    );
    assert_eq!(ignored[1], "ignored migrations/README.md: not a .sql file");
    assert!(
        ignored[2].starts_with("ignored migrations/V3__c.sql: not a migration file name"),
        "{run:?}"
    );
    assert_eq!(ignored[3], "ignored migrations/archive: directory");
}

fn example(args: &[&str]) -> Run {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = vec!["-c", "examples/quickstart/envgate.toml"];
    all.extend_from_slice(args);
    envgate_in(root, &all, &[])
}

#[test]
fn quickstart_example_table() {
    let run = example(&["status"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Notices on stderr, the matrix alone on stdout.
    assert_eq!(
        run.stderr,
        "detected 'staging': mode export_only (set `mode` to override)\nno mode set for dev: mode managed\n\n"
    );
    insta::assert_snapshot!(run.stdout, @"
    migration                  dev      staging      prod
                               managed  export_only  export_only
    20260418_001_users         applied  applied      applied
    20260420_001_tickets       applied  applied      pending
    20260422_001_deletion_log  applied  applied      pending
    20260424_001_add_trash     applied  pending      pending
    20260424_002_audit_idx     drifted  pending      pending

    applied                    4        3            1
    pending                    0        2            4
    drifted                    1        0            0
    failed                     0        0            0
    missing                    0        0            0

    drifted (the file changed after it was applied):
      20260424_002_audit_idx in dev: migrations/20260424_002_audit_idx.sql is now cbcb6c6092fe, was c592b6c26709 when applied at 2026-04-24T11:02:18.000Z
    ");
    let check = example(&["status", "--check"]);
    assert_eq!(check.code, 1, "drift fails --check: {check:?}");
}

#[test]
fn quickstart_example_markdown() {
    let run = example(&["status", "--format", "markdown"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The document alone on stdout (it goes into job summaries); the
    // notices on stderr, as in every format.
    assert!(run.stderr.contains("detected 'staging'"), "{run:?}");
    insta::assert_snapshot!(run.stdout, @"
    **envgate**: 5 migrations · applied in dev, pending in staging: 2 · applied in staging, pending in prod: 2 · drifted: 1

    | Migration | dev<br>`managed` | staging<br>`export_only` | prod<br>`export_only` |
    |---|---|---|---|
    | `20260418_001_users` | ✅ applied | ✅ applied | ✅ applied |
    | `20260420_001_tickets` | ✅ applied | ✅ applied | ⏳ pending |
    | `20260422_001_deletion_log` | ✅ applied | ✅ applied | ⏳ pending |
    | `20260424_001_add_trash` | ✅ applied | ⏳ pending | ⏳ pending |
    | `20260424_002_audit_idx` | ⚠️ drifted | ⏳ pending | ⏳ pending |
    | **applied** | 4 | 3 | 1 |
    | **pending** | 0 | 2 | 4 |
    | **drifted** | 1 | 0 | 0 |
    | **failed** | 0 | 0 | 0 |
    | **missing** | 0 | 0 | 0 |

    <details><summary>What needs attention</summary>

    - ⚠️ `20260424_002_audit_idx` drifted in **dev**: `migrations/20260424_002_audit_idx.sql` is now `cbcb6c6092fe`, was `c592b6c26709` when applied at 2026-04-24T11:02:18.000Z.

    </details>
    ");
}

#[test]
fn quickstart_example_json() {
    let run = example(&[
        "status", "--format", "json", "--env", "dev", "--env", "prod",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr, "no mode set for dev: mode managed\n",
        "notes go to stderr so stdout stays JSON"
    );
    insta::assert_snapshot!(run.stdout, @r#"
    {
      "schema_version": 1,
      "environments": [
        {
          "name": "dev",
          "mode": "managed",
          "mode_source": "default",
          "ledger": "envgate",
          "reachable": true,
          "error": null,
          "counts": {
            "applied": 4,
            "pending": 0,
            "drifted": 1,
            "failed": 0,
            "missing": 0
          }
        },
        {
          "name": "prod",
          "mode": "export_only",
          "mode_source": "config",
          "ledger": "envgate",
          "reachable": true,
          "error": null,
          "counts": {
            "applied": 1,
            "pending": 4,
            "drifted": 0,
            "failed": 0,
            "missing": 0
          }
        }
      ],
      "migrations": [
        {
          "id": "20260418_001",
          "version": "20260418_001",
          "name": "users",
          "file": "migrations/20260418_001_users.sql",
          "sha256": "60ff2dae4d2f0e182ef27f0020f3c38ba5f8d5a449697a8ee69a7baf01d0f447",
          "cells": {
            "dev": {
              "state": "applied",
              "applied_at": "2026-04-18T09:12:03.000Z",
              "applied_sha256": "60ff2dae4d2f0e182ef27f0020f3c38ba5f8d5a449697a8ee69a7baf01d0f447",
              "out_of_order": false
            },
            "prod": {
              "state": "applied",
              "applied_at": "2026-04-18T09:12:03.000Z",
              "applied_sha256": "60ff2dae4d2f0e182ef27f0020f3c38ba5f8d5a449697a8ee69a7baf01d0f447",
              "out_of_order": false
            }
          }
        },
        {
          "id": "20260420_001",
          "version": "20260420_001",
          "name": "tickets",
          "file": "migrations/20260420_001_tickets.sql",
          "sha256": "1d44076a68de96ae8cfbe1baf81c3fcd6addaff88d12d856800a7762f989eb3d",
          "cells": {
            "dev": {
              "state": "applied",
              "applied_at": "2026-04-20T10:00:41.000Z",
              "applied_sha256": "1d44076a68de96ae8cfbe1baf81c3fcd6addaff88d12d856800a7762f989eb3d",
              "out_of_order": false
            },
            "prod": {
              "state": "pending",
              "applied_at": null,
              "applied_sha256": null,
              "out_of_order": false
            }
          }
        },
        {
          "id": "20260422_001",
          "version": "20260422_001",
          "name": "deletion_log",
          "file": "migrations/20260422_001_deletion_log.sql",
          "sha256": "b67089c7ea5fced3cd77f7444cf28640bc9eb80197490744147411efde7d7ee8",
          "cells": {
            "dev": {
              "state": "applied",
              "applied_at": "2026-04-22T08:30:00.000Z",
              "applied_sha256": "b67089c7ea5fced3cd77f7444cf28640bc9eb80197490744147411efde7d7ee8",
              "out_of_order": false
            },
            "prod": {
              "state": "pending",
              "applied_at": null,
              "applied_sha256": null,
              "out_of_order": false
            }
          }
        },
        {
          "id": "20260424_001",
          "version": "20260424_001",
          "name": "add_trash",
          "file": "migrations/20260424_001_add_trash.sql",
          "sha256": "bbc48ed86aa6737743bf156d3625b10234b824ac162cb6153c0fbb101fbf26a9",
          "cells": {
            "dev": {
              "state": "applied",
              "applied_at": "2026-04-24T11:02:17.000Z",
              "applied_sha256": "bbc48ed86aa6737743bf156d3625b10234b824ac162cb6153c0fbb101fbf26a9",
              "out_of_order": false
            },
            "prod": {
              "state": "pending",
              "applied_at": null,
              "applied_sha256": null,
              "out_of_order": false
            }
          }
        },
        {
          "id": "20260424_002",
          "version": "20260424_002",
          "name": "audit_idx",
          "file": "migrations/20260424_002_audit_idx.sql",
          "sha256": "cbcb6c6092fe41e3c22a7510b9d7e39ad63de76f091ceca69a0b55704be52db6",
          "cells": {
            "dev": {
              "state": "drifted",
              "applied_at": "2026-04-24T11:02:18.000Z",
              "applied_sha256": "c592b6c2670970b04c47d1bcc96066f287c01798f87e8d24eae1458e85794784",
              "out_of_order": false
            },
            "prod": {
              "state": "pending",
              "applied_at": null,
              "applied_sha256": null,
              "out_of_order": false
            }
          }
        }
      ]
    }
    "#);
}

/// The README shows the quick-start output; it must be what envgate prints.
#[test]
fn readme_quick_start_output_is_real() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let command = "cargo run --quiet -- status -c examples/quickstart/envgate.toml";
    let after = &readme[readme
        .find(command)
        .expect("README shows the quick-start command")..];
    let start = after.find("```text\n").expect("followed by its output") + "```text\n".len();
    let shown = &after[start..start + after[start..].find("```").unwrap()];
    let run = example(&["status"]);
    // What a terminal shows: the notices (stderr), then the matrix.
    assert_eq!(
        format!("{}{}", run.stderr, run.stdout),
        shown,
        "README's quick-start output is stale"
    );
}
