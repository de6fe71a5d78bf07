//! SQLite, the embedded target. Read sessions open the file read-only, so
//! SQLite itself refuses any write.

use super::url::SqliteTarget;
use super::{QueryError, RowMapper};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::time::Duration;

pub fn open_read_only(target: &SqliteTarget, busy_timeout: Duration) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match target {
        SqliteTarget::Memory => Connection::open_in_memory_with_flags(flags),
        SqliteTarget::File(path) => {
            if !path.exists() {
                return Err(format!("no database file at {}", path.display()));
            }
            Connection::open_with_flags(path, flags)
        }
    }
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(busy_timeout).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// The explanation, when a read-only read failed because a writer was
/// interrupted mid-transaction and left a hot journal: SQLite must roll it
/// back (a write) before anyone can read the file, and a read-only
/// connection cannot (`SQLITE_READONLY_ROLLBACK`).
fn hot_journal(conn: &Connection, e: &rusqlite::Error) -> Option<String> {
    let rolled_back = matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK
    );
    let path = conn.path().filter(|p| !p.is_empty())?;
    let journal = format!("{path}-journal");
    let left = std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0);
    (rolled_back || (left && e.to_string().contains("readonly database"))).then(|| {
        format!(
            "{path} has a hot journal ({journal}): a writer was interrupted in the middle of a transaction, \
             and SQLite must roll that transaction back before the file can be read. envgate reads this \
             environment read-only and will not do it. Open the file once with write access to roll it back \
             (for example `sqlite3 {path} 'PRAGMA quick_check;'`), then run again; keep {journal} until then, \
             deleting it would corrupt the database"
        )
    })
}

/// Runs one statement and maps its rows, every value as text (integers and
/// reals in their decimal form, blobs as lowercase hex).
pub fn query<T>(conn: &Connection, sql: &str, mut map: RowMapper<T>) -> Result<Vec<T>, QueryError> {
    let classify = |e: rusqlite::Error| {
        let message = e.to_string();
        if let Some(hot) = hot_journal(conn, &e) {
            QueryError::Other(hot)
        } else if message.starts_with("no such table") {
            QueryError::UndefinedTable(message)
        } else if message.contains("readonly database") {
            QueryError::ReadOnly(message)
        } else {
            QueryError::Other(message)
        }
    };
    let mut stmt = conn.prepare(sql).map_err(classify)?;
    let width = stmt.column_count();
    let mut rows = stmt.query([]).map_err(classify)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(classify)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i).map_err(classify)? {
                ValueRef::Null => None,
                ValueRef::Integer(n) => Some(n.to_string()),
                ValueRef::Real(x) => Some(x.to_string()),
                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Some(hex::encode(b)),
            });
        }
        out.push(map(&values).map_err(QueryError::Decode)?);
    }
    Ok(out)
}
