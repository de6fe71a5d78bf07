//! Reading envgate's own ledger table (see [`crate::core::ledger_table`]).

use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
pub use crate::core::ledger_table::{TABLE, create_table_sql, qualified, select_sql};
use crate::db::{QueryError, ReadSession, TextRow};

/// Reads the ledger. A missing table means nothing was applied yet.
pub async fn read(session: &ReadSession) -> Result<Vec<LedgerRow>, String> {
    let table = qualified(session.dialect(), session.schema());
    let sql = select_sql(session.dialect(), session.schema());
    match session.query_map(&sql, Box::new(parse_row)).await {
        Ok(rows) => Ok(rows),
        Err(QueryError::UndefinedTable(_)) => Ok(Vec::new()),
        Err(QueryError::Decode(m)) => Err(format!("ledger table {table}: {m}")),
        Err(e) => Err(format!(
            "ledger table {table} cannot be read (is it envgate's ledger?): {}",
            e.message()
        )),
    }
}

pub(crate) fn parse_row(row: &dyn TextRow) -> Result<LedgerRow, String> {
    let version = row.text(0).ok_or("column version is NULL")?;
    let col = |i: usize, name: &str| {
        row.text(i)
            .ok_or_else(|| format!("version {version}: column {name} is NULL"))
    };
    let name = col(1, "name")?;
    let hash = col(2, "sha256")?;
    let success = match col(4, "success")? {
        "t" | "true" | "1" => true,
        "f" | "false" | "0" => false,
        other => {
            return Err(format!(
                "version {version}: column success holds '{other}', expected a boolean"
            ));
        }
    };
    Ok(LedgerRow {
        via: row.text(6).map(str::to_owned),
        version: version.to_owned(),
        name: name.to_owned(),
        hash: RecordedHash::parse(hash),
        applied_at: row.text(3).map(str::to_owned),
        success,
        error: row.text(5).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifies_with_schema() {
        use crate::core::sql::Dialect;
        assert_eq!(
            qualified(Dialect::Postgres, None),
            "public.envgate_migrations"
        );
        assert_eq!(
            qualified(Dialect::Postgres, Some("tenant_a")),
            "\"tenant_a\".envgate_migrations"
        );
        assert_eq!(qualified(Dialect::Sqlite, None), "main.envgate_migrations");
    }

    #[test]
    fn parses_rows() {
        let row = |s: &str| Some(s.to_owned());
        let parse = |values: Vec<Option<String>>| parse_row(&values);
        let parsed = parse(vec![row("1"), row("init"), row("md5:x"), None, row("f")]).unwrap();
        assert_eq!(parsed.version, "1");
        assert!(!parsed.success);
        assert_eq!(parsed.applied_at, None);
        assert_eq!(
            parse(vec![row("1"), row("init"), None, None, row("t")]).unwrap_err(),
            "version 1: column sha256 is NULL"
        );
        assert_eq!(
            parse(vec![row("1"), row("init"), row("h"), None, row("maybe")]).unwrap_err(),
            "version 1: column success holds 'maybe', expected a boolean"
        );
    }
}
