//! Prisma Migrate: `prisma/migrations/<name>/migration.sql`; ledger
//! `_prisma_migrations(id, checksum, finished_at, migration_name, logs,
//! rolled_back_at, started_at, applied_steps_count)`, several rows per name.
//! The checksum is SHA-256 hex of the file as read; Prisma accepts the file
//! as-is, with CRLF→LF or with LF→CRLF, and old rows hold the hex without
//! zero padding.

use super::{Found, Layout, Order, TextRow, assemble, col, opt, time_sql};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;
use sha2::{Digest, Sha256};

fn dir_of(rel: &str) -> Option<&str> {
    let dir = rel.strip_suffix("/migration.sql")?;
    (!dir.contains('/')).then_some(dir)
}

pub fn candidate(rel: &str) -> bool {
    dir_of(rel).is_some()
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Every checksum Prisma accepts for the bytes: padded hex of the file,
/// its CRLF→LF and LF→CRLF forms, and the unpadded legacy rendering.
pub fn checksums(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lf = text.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    let digests = [sha(bytes), sha(lf.as_bytes()), sha(crlf.as_bytes())];
    let mut out: Vec<String> = digests.iter().map(hex::encode).collect();
    out.extend(
        digests
            .iter()
            .map(|d| d.iter().map(|b| format!("{b:x}")).collect::<String>()),
    );
    out.dedup();
    out
}

pub fn discover(files: Vec<SourceFile>, layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let found = files
        .into_iter()
        .filter_map(|f| {
            let dir = dir_of(layout.rel(&f.path))?.to_owned();
            Some(Found {
                order: Order::Text(dir.clone()),
                checksums: checksums(&f.bytes),
                name: String::new(),
                id: dir,
                up: f,
                down: None,
                repeatable: false,
            })
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, {} FROM {table} \
         ORDER BY started_at",
        time_sql("coalesce(finished_at, started_at)", dialect)
    )
}

/// Per migration name, rows rolled back are ignored; a finished row means
/// applied, an unfinished one (the newest) means failed.
pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    let mut by_name: Vec<LedgerRow> = Vec::new();
    for r in &rows {
        if super::is_true(col(r, 3, "rolled_back_at")?) {
            continue;
        }
        let name = col(r, 0, "migration_name")?.to_owned();
        let finished = super::is_true(col(r, 2, "finished_at")?);
        let row = LedgerRow {
            via: None,
            version: name.clone(),
            name,
            hash: RecordedHash::Tool(col(r, 1, "checksum")?.to_owned()),
            applied_at: opt(r, 4),
            success: finished,
            error: None,
        };
        match by_name.iter_mut().find(|x| x.version == row.version) {
            // A finished row stands; a later attempt replaces a failed one.
            Some(existing) if existing.success => {}
            Some(existing) => *existing = row,
            None => by_name.push(row),
        }
    }
    Ok(by_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vector_and_line_ending_tolerance() {
        // prisma/prisma-engines: schema-engine/connectors/schema-connector/src/checksum.rs
        assert_eq!(
            checksums(b"hello")[0],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // LEDGERS.md §13, derived.
        let lf = checksums(b"SELECT 1;\n");
        assert_eq!(
            lf[0],
            "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
        );
        assert!(lf.contains(
            &"d3cd5042f97738960d802ad6b3a548dfa18152215118ba18f04493bc6944b0e4".to_owned()
        ));
        let crlf = checksums(b"SELECT 1;\r\n");
        assert!(
            crlf.contains(&lf[0]),
            "a CRLF checkout matches the LF checksum"
        );
    }

    #[test]
    fn rolled_back_rows_are_ignored_and_failures_seen() {
        let row = |name: &str, finished: &str, rolled: &str| {
            vec![
                Some(name.into()),
                Some("c".into()),
                Some(finished.into()),
                Some(rolled.into()),
                None,
            ]
        };
        let rows = ledger(vec![
            row("1_a", "f", "t"),
            row("1_a", "t", "f"),
            row("2_b", "f", "f"),
        ])
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].success);
        assert!(!rows[1].success);
    }
}
