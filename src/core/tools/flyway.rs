//! Flyway: `V<version>__<description>.sql` (versioned), `R__<description>.sql`
//! (repeatable), `U<version>__…` (undo), searched recursively; ledger
//! `flyway_schema_history(installed_rank, version, description, type,
//! script, checksum, installed_by, installed_on, execution_time, success)`.
//!
//! Versions compare numerically part by part (`1`, `1.0`, `01` and `V1_0`
//! are one version); the canonical id drops leading zeros and trailing zero
//! parts. Repeatables are keyed `R:<description>`. The checksum is CRC-32
//! over the file's lines without their terminators (a leading BOM dropped),
//! as a signed 32-bit integer.
//!
//! States: `success = false` is failed; a `BASELINE` row applies every
//! version at or below it ("below baseline"); `UNDO_*` rows undo the
//! version (pending again); `DELETE` rows (from `repair`) remove it; the
//! `SCHEMA` marker is skipped. A repeatable whose checksum changed is
//! pending (it re-runs), not drifted.

use super::{Found, Layout, Order, TextRow, assemble, base, col, ignored, is_true, opt, time_sql};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, Migration, SourceFile};
use crate::core::sql::Dialect;
use std::collections::HashMap;

#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    Versioned(&'a str),
    Undo(&'a str),
    Baseline(&'a str),
    Repeatable,
}

/// (kind, description) of a Flyway file name.
fn parse(file: &str) -> Option<(Kind<'_>, &str)> {
    let stem = file.strip_suffix(".sql")?;
    if let Some(desc) = stem.strip_prefix("R__") {
        return Some((Kind::Repeatable, desc));
    }
    let (prefix, rest) = stem.split_at_checked(1)?;
    let (version, desc) = rest.split_once("__")?;
    let valid = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == '.');
    if !valid {
        return None;
    }
    match prefix {
        "V" => Some((Kind::Versioned(version), desc)),
        "U" => Some((Kind::Undo(version), desc)),
        "B" => Some((Kind::Baseline(version), desc)),
        _ => None,
    }
}

pub fn candidate(rel: &str) -> bool {
    parse(base(rel)).is_some()
}

/// Numeric parts of a version, trailing zero parts dropped.
fn parts(version: &str) -> Vec<u128> {
    let mut p: Vec<u128> = version
        .split(['.', '_'])
        .map(|s| s.parse::<u128>().unwrap_or(u128::MAX))
        .collect();
    while p.len() > 1 && p.last() == Some(&0) {
        p.pop();
    }
    p
}

/// The canonical form of a version: `01.0` → `1`, `1_1` → `1.1`.
pub fn canonical(version: &str) -> String {
    parts(version)
        .iter()
        .map(u128::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Flyway's checksum: CRC-32 over the UTF-8 bytes of each line without its
/// terminator (`\n`, `\r` or `\r\n`), a leading U+FEFF dropped, as i32.
pub fn checksum(bytes: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    for chunk in text.as_bytes().split(|b| *b == b'\n' || *b == b'\r') {
        crc.update(chunk);
    }
    Some(crc.finalize() as i32)
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut skipped = Vec::new();
    let mut undos: HashMap<String, SourceFile> = HashMap::new();
    let mut found = Vec::new();
    for f in files {
        let file = base(&f.path).to_owned();
        let Some((kind, desc)) = parse(&file) else {
            continue;
        };
        let description = desc.replace('_', " ");
        let checksums = checksum(&f.bytes)
            .map(|c| vec![c.to_string()])
            .unwrap_or_default();
        match kind {
            Kind::Versioned(v) => found.push(Found {
                id: canonical(v),
                order: Order::Dotted(parts(v)),
                name: description,
                up: f,
                down: None,
                repeatable: false,
                checksums,
            }),
            Kind::Repeatable => found.push(Found {
                id: format!("R:{description}"),
                order: Order::Last(description),
                name: String::new(),
                up: f,
                down: None,
                repeatable: true,
                checksums,
            }),
            Kind::Undo(v) => {
                undos.insert(canonical(v), f);
            }
            Kind::Baseline(_) => skipped.push(ignored(
                &f.path,
                "Flyway baseline migrations (B…) are not read yet; the BASELINE row in the ledger is",
            )),
        }
    }
    for f in &mut found {
        f.down = undos.remove(&f.id);
    }
    assemble(found, skipped)
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT installed_rank, version, description, type, checksum, success, {} FROM {table} ORDER BY installed_rank",
        time_sql("installed_on", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>, migrations: &[Migration]) -> Result<Vec<LedgerRow>, String> {
    // Current row per id, in rank order.
    let mut current: Vec<LedgerRow> = Vec::new();
    let mut baseline: Option<String> = None;
    for r in &rows {
        let kind = col(r, 3, "type")?;
        let description = col(r, 2, "description")?.to_owned();
        let id = match opt(r, 1) {
            Some(v) => canonical(&v),
            None => format!("R:{description}"),
        };
        match kind {
            "SCHEMA" => continue,
            "BASELINE" => {
                baseline = Some(id);
                continue;
            }
            "DELETE" | "UNDO_SQL" | "UNDO_JDBC" | "UNDO_SCRIPT" => {
                current.retain(|row| row.version != id);
                continue;
            }
            _ => {}
        }
        let hash = match opt(r, 4) {
            Some(c) => RecordedHash::Tool(c),
            None => RecordedHash::Unverifiable(format!("no checksum ({kind})")),
        };
        let row = LedgerRow {
            via: None,
            version: id,
            name: description,
            hash,
            applied_at: opt(r, 6),
            success: is_true(col(r, 5, "success")?),
            error: None,
        };
        match current.iter_mut().find(|x| x.version == row.version) {
            Some(existing) => *existing = row,
            None => current.push(row),
        }
    }
    if let Some(b) = baseline {
        let limit = parts(&b);
        for m in migrations {
            let below = !m.repeatable && parts(m.id()) <= limit;
            if below && !current.iter().any(|r| r.version == m.id()) {
                current.push(LedgerRow {
                    via: None,
                    version: m.id().to_owned(),
                    name: m.name.clone(),
                    hash: RecordedHash::Unverifiable("below baseline".to_owned()),
                    applied_at: None,
                    success: true,
                    error: None,
                });
            }
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vector() {
        // flyway/flyway: documentation/Reference/Tutorials/Tutorial - Dry Runs.md,
        // V3__Couple.sql stored with checksum -722651034 (note the trailing spaces).
        let couple = "create table COUPLE (\n    ID int not null,\n    PERSON1 int not null references PERSON(ID), \n    PERSON2 int not null references PERSON(ID) \n);\n";
        assert_eq!(checksum(couple.as_bytes()), Some(-722651034));
    }

    #[test]
    fn derived_vectors() {
        // LEDGERS.md §1 (derived with the algorithm checked above).
        let without_spaces = "create table COUPLE (\n    ID int not null,\n    PERSON1 int not null references PERSON(ID),\n    PERSON2 int not null references PERSON(ID)\n);\n";
        assert_eq!(checksum(without_spaces.as_bytes()), Some(824101511));
        for same in [
            "SELECT 1;",
            "SELECT 1;\n",
            "SELECT 1;\r\n",
            "\u{feff}SELECT 1;\n",
        ] {
            assert_eq!(checksum(same.as_bytes()), Some(78787420), "{same:?}");
        }
        assert_eq!(checksum(b"SELECT\n1;"), Some(-713821291));
        assert_eq!(checksum(b"SELECT1;"), Some(-713821291));
        assert_eq!(checksum(b""), Some(0));
        assert_eq!(checksum(b"a\rb"), Some(-1635563411));
        assert_eq!(checksum(b"ab"), Some(-1635563411));
        assert_eq!(checksum(b"\xff"), None);
    }

    #[test]
    fn versions_are_numeric() {
        assert_eq!(canonical("1"), "1");
        assert_eq!(canonical("1.0"), "1");
        assert_eq!(canonical("01"), "1");
        assert_eq!(canonical("1_1"), "1.1");
        assert_eq!(canonical("2.10.0"), "2.10");
        assert!(parts("1.2") < parts("1.10"));
        assert_eq!(
            parse("V1_1__add users.sql"),
            Some((Kind::Versioned("1_1"), "add users"))
        );
        assert_eq!(
            parse("R__refresh_views.sql"),
            Some((Kind::Repeatable, "refresh_views"))
        );
        assert_eq!(parse("U2__undo.sql"), Some((Kind::Undo("2"), "undo")));
        assert_eq!(parse("V2_add.sql"), None);
    }

    fn row(
        rank: &str,
        version: Option<&str>,
        desc: &str,
        kind: &str,
        checksum: Option<&str>,
        success: &str,
    ) -> TextRow {
        vec![
            Some(rank.into()),
            version.map(Into::into),
            Some(desc.into()),
            Some(kind.into()),
            checksum.map(Into::into),
            Some(success.into()),
            Some("2026-01-01T00:00:00.000Z".into()),
        ]
    }

    #[test]
    fn ledger_states() {
        let files = vec![
            SourceFile {
                path: "db/migration/V1__init.sql".into(),
                bytes: b"a".to_vec(),
            },
            SourceFile {
                path: "db/migration/V2__two.sql".into(),
                bytes: b"b".to_vec(),
            },
            SourceFile {
                path: "db/migration/V3__three.sql".into(),
                bytes: b"c".to_vec(),
            },
            SourceFile {
                path: "db/migration/V4__four.sql".into(),
                bytes: b"d".to_vec(),
            },
            SourceFile {
                path: "db/migration/R__views.sql".into(),
                bytes: b"v2".to_vec(),
            },
        ];
        let ms = discover(
            files,
            &Layout {
                root: "db/migration",
                dialect: None,
            },
        )
        .unwrap()
        .migrations;
        assert_eq!(
            ms.iter().map(|m| m.id()).collect::<Vec<_>>(),
            ["1", "2", "3", "4", "R:views"]
        );
        let rows = ledger(
            vec![
                row(
                    "0",
                    None,
                    "<< Flyway Schema Creation >>",
                    "SCHEMA",
                    None,
                    "t",
                ),
                row(
                    "1",
                    Some("2"),
                    "<< Flyway Baseline >>",
                    "BASELINE",
                    None,
                    "t",
                ),
                row("2", Some("3.0"), "three", "SQL", Some("99"), "t"),
                row("3", Some("4"), "four", "SQL", Some("1"), "f"),
                row("4", None, "views", "SQL", Some("5"), "t"),
            ],
            &ms,
        )
        .unwrap();
        let got: Vec<(&str, bool)> = rows
            .iter()
            .map(|r| (r.version.as_str(), r.success))
            .collect();
        assert_eq!(
            got,
            [
                ("3", true),
                ("4", false),
                ("R:views", true),
                ("1", true),
                ("2", true)
            ]
        );
        assert_eq!(rows[0].hash, RecordedHash::Tool("99".into()));
    }
}
