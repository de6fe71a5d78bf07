//! Rails (ActiveRecord): `db/migrate/**/<digits>_<name>.rb`, ledger
//! `schema_migrations(version)` holding the version as an integer's text
//! (`001_x.rb` is stored as `1`). No checksum, no failed marker.

use super::{Layout, TextRow, base, col, integer_id, plain_row};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, SourceFile};

/// `<digits>_<name>[.scope].rb`, name in lowercase letters, digits, `_`.
fn parse(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".rb")?;
    let (digits, rest) = stem.split_once('_')?;
    let name = rest.split('.').next().unwrap_or(rest);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    ok.then_some((digits, name))
}

pub fn candidate(rel: &str) -> bool {
    parse(base(rel)).is_some()
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    super::numbered(files, parse, None)
}

pub fn ledger(rows: Vec<TextRow>) -> Result<Vec<LedgerRow>, String> {
    rows.iter()
        .map(|r| {
            Ok(plain_row(
                integer_id(col(r, 0, "version")?),
                String::new(),
                None,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_integer_versions() {
        assert_eq!(
            parse("20240101120000_create_users.rb"),
            Some(("20240101120000", "create_users"))
        );
        assert_eq!(parse("001_init.rb"), Some(("001", "init")));
        assert_eq!(
            parse("20240101_add_x.engine.rb"),
            Some(("20240101", "add_x"))
        );
        assert_eq!(parse("20240101_CreateUsers.rb"), None);
        assert_eq!(parse("schema.rb"), None);
        let rows = ledger(vec![vec![Some("001".into())]]).unwrap();
        assert_eq!(rows[0].version, "1");
    }
}
