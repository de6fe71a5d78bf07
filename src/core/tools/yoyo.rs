//! yoyo-migrations: `<id>.sql` (or `.py`) files in the migrations folder,
//! applied in file-name order, with `<id>.rollback.sql` as the down script;
//! ledger `_yoyo_migration(migration_hash, migration_id, applied_at_utc)`
//! holding the applied ones (a rollback deletes the row; `_yoyo_log` keeps
//! the history). The hash is of the id, not the content: no checksum
//! (first-observed drift).

use super::{Found, Layout, Order, TextRow, assemble, base, col, opt};
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};
use crate::core::sql::Dialect;
use std::collections::HashMap;

pub fn candidate(rel: &str) -> bool {
    let file = base(rel);
    !rel.contains('/')
        && (file.ends_with(".sql") || file.ends_with(".py"))
        && !file.starts_with("__")
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut downs: HashMap<String, SourceFile> = HashMap::new();
    let mut ups = Vec::new();
    for f in files {
        let file = base(&f.path).to_owned();
        if let Some(id) = file.strip_suffix(".rollback.sql") {
            downs.insert(id.to_owned(), f);
        } else {
            ups.push(f);
        }
    }
    let found = ups
        .into_iter()
        .map(|f| {
            let file = base(&f.path);
            let id = file
                .strip_suffix(".sql")
                .or_else(|| file.strip_suffix(".py"))
                .unwrap_or(file)
                .to_owned();
            Found {
                order: Order::Text(id.clone()),
                name: id.clone(),
                down: downs.remove(&id),
                id,
                up: f,
                repeatable: false,
                checksums: Vec::new(),
            }
        })
        .collect();
    assemble(found, Vec::new())
}

/// `applied_at_utc` holds UTC without a zone: shown as UTC.
pub fn select_sql(table: &str, dialect: Dialect) -> String {
    let at = match dialect {
        Dialect::Postgres => {
            "to_char(applied_at_utc, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')".to_owned()
        }
        Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', applied_at_utc)".to_owned(),
        Dialect::Mysql => crate::core::sql::mysql_utc_text("applied_at_utc"),
    };
    format!("SELECT migration_id, {at} FROM {table}")
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(LedgerRow {
                via: None,
                version: col(r, 0, "migration_id")?.to_owned(),
                name: String::new(),
                hash: RecordedHash::None,
                applied_at: opt(r, 1),
                success: true,
                error: None,
            })
        })
        .collect()
}
