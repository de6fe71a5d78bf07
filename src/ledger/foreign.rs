//! Reading other tools' ledger tables, read-only: the tool's query (from
//! [`crate::core::tools`]) against its table, in the environment's schema.

use crate::core::sql::quote_ident;
use crate::core::tools::{TextRow, Tool};
use crate::db::{QueryError, ReadSession};

/// The table's name as SQL: quoted (tools create them lowercase), qualified
/// with the environment's schema when there is one.
pub fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(table)),
        None => quote_ident(table),
    }
}

/// Reads the tool's ledger rows as text. A missing table means nothing was
/// applied yet.
pub async fn read(
    session: &ReadSession,
    tool: Tool,
    table: Option<&str>,
) -> Result<Vec<TextRow>, String> {
    let name = table.unwrap_or(tool.default_table());
    let sql = tool.select_sql(&qualified(session.schema(), name), session.dialect());
    let shown = match session.schema() {
        Some(s) => format!("{s}.{name}"),
        None => name.to_owned(),
    };
    let rows = |sql: String| async move {
        session
            .query_map(
                &sql,
                Box::new(|row: &dyn crate::db::TextRow| {
                    Ok((0..row.width())
                        .map(|i| row.text(i).map(str::to_owned))
                        .collect())
                }),
            )
            .await
    };
    let mut result = rows(sql).await;
    // On MySQL and MariaDB table names are case-sensitive, and some tools
    // (Liquibase) create theirs in upper case there.
    if table.is_none()
        && session.dialect() == crate::core::sql::Dialect::Mysql
        && matches!(result, Err(QueryError::UndefinedTable(_)))
    {
        let upper = name.to_ascii_uppercase();
        result =
            rows(tool.select_sql(&qualified(session.schema(), &upper), session.dialect())).await;
    }
    match result {
        Ok(rows) => Ok(rows),
        Err(QueryError::UndefinedTable(_)) => Ok(Vec::new()),
        Err(e) => Err(format!(
            "{tool} ledger table {shown} cannot be read (is it {tool}'s ledger, of a supported version?): {}",
            e.message()
        )),
    }
}
