//! sqlx: a flat directory of `<version>_<description>.sql` (or `.up.sql`,
//! with `.down.sql`); ledger `_sqlx_migrations(version, description,
//! installed_on, success, checksum, execution_time)`. The checksum is
//! SHA-384 of the file's bytes exactly as read (BOM and line endings
//! included), stored as raw bytes; `success = false` marks a dirty version.

use super::{
    Found, Layout, Order, TextRow, assemble, base, col, integer_id, is_true, opt, time_sql,
};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;
use sha2::{Digest, Sha384};

/// (version, description, is the down file).
fn parse(file: &str) -> Option<(&str, String, bool)> {
    let (stem, down) = if let Some(s) = file.strip_suffix(".down.sql") {
        (s, true)
    } else if let Some(s) = file.strip_suffix(".up.sql") {
        (s, false)
    } else {
        (file.strip_suffix(".sql")?, false)
    };
    let (version, desc) = stem.split_once('_')?;
    version.parse::<i64>().ok()?;
    Some((version, desc.replace('_', " "), down))
}

pub fn candidate(rel: &str) -> bool {
    !rel.contains('/') && parse(rel).is_some()
}

/// SHA-384 of the bytes, as lowercase hex.
pub fn checksum(bytes: &[u8]) -> String {
    hex::encode(Sha384::digest(bytes))
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut downs = std::collections::HashMap::new();
    let mut ups = Vec::new();
    for f in files {
        let Some((version, desc, down)) = parse(base(&f.path)) else {
            continue;
        };
        let id = integer_id(version.trim_start_matches('-'));
        let id = if version.starts_with('-') {
            format!("-{id}")
        } else {
            id
        };
        if down {
            downs.insert(id, f);
        } else {
            ups.push((id, desc, f));
        }
    }
    let found = ups
        .into_iter()
        .map(|(id, name, f)| Found {
            order: Order::Version(id.clone()),
            checksums: vec![checksum(&f.bytes)],
            down: downs.remove(&id),
            id,
            name,
            up: f,
            repeatable: false,
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    let hex = match dialect {
        Dialect::Postgres => "encode(checksum, 'hex')",
        Dialect::Sqlite | Dialect::Mysql => "lower(hex(checksum))",
    };
    format!(
        "SELECT version, description, success, {hex}, {} FROM {table}",
        time_sql("installed_on", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            let version = col(r, 0, "version")?;
            Ok(LedgerRow {
                via: None,
                version: version.to_owned(),
                name: col(r, 1, "description")?.to_owned(),
                hash: RecordedHash::Tool(col(r, 3, "checksum")?.to_ascii_lowercase()),
                applied_at: opt(r, 4),
                success: is_true(col(r, 2, "success")?),
                error: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha384_vectors() {
        // LEDGERS.md §6 (derived; sqlx's own tests only compare code paths).
        assert_eq!(
            checksum(b"SELECT 1;\n"),
            "24454095d8d7876ca8e842f34296ca645c83e0f7b50f048c99db4b2ff4da659267afc4ef3e994f3d74e18c741165d931"
        );
        assert_eq!(
            checksum(b"CREATE TABLE t (id int);\n"),
            "e1cc0b49a7d453bb345d9fc52670c0bfd4a694b2befb7061a9bad55916701e1ef4ddd22ee7cb1c80b4317a1b5780422c"
        );
        // Raw bytes: a CRLF checkout is a different checksum for sqlx.
        assert_ne!(checksum(b"SELECT 1;\r\n"), checksum(b"SELECT 1;\n"));
    }

    #[test]
    fn names() {
        assert_eq!(
            parse("20260101000001_create_users.sql"),
            Some(("20260101000001", "create users".into(), false))
        );
        assert_eq!(parse("1_init.up.sql"), Some(("1", "init".into(), false)));
        assert_eq!(parse("1_init.down.sql"), Some(("1", "init".into(), true)));
        assert_eq!(parse("init.sql"), None);
        assert_eq!(parse("v1_init.sql"), None);
    }
}
