//! Migration versions: sortable tokens of digits and underscores such as
//! `20260418_001` or `20260418120000`.
//!
//! Versions order numerically, token by token (`20260418_2` < `20260418_10`
//! < `20260419`), so a project that mixes widths still sorts the way people
//! read it. Two spellings of the same numbers (`20260418_001` and
//! `20260418_01`) are the same version.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone)]
pub struct Version {
    raw: String,
    /// Each digit group without leading zeros, prefixed by its length (two
    /// bytes, big-endian): byte order of keys is numeric order of versions.
    key: Box<[u8]>,
}

impl Version {
    /// Parses a version: one or more groups of ASCII digits separated by
    /// single underscores.
    pub fn parse(raw: &str) -> Option<Version> {
        let mut key = Vec::with_capacity(raw.len() + 4);
        for token in raw.split('_') {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let trimmed = token.trim_start_matches('0');
            let digits = if trimmed.is_empty() { "0" } else { trimmed };
            let len = u16::try_from(digits.len()).ok()?;
            key.extend_from_slice(&len.to_be_bytes());
            key.extend_from_slice(digits.as_bytes());
        }
        Some(Version {
            raw: raw.to_owned(),
            key: key.into_boxed_slice(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// A version that sorts by its position in a list, for layouts whose
    /// identifiers are not numbers (Alembic revisions, Knex file names, …).
    pub fn ordinal(raw: &str, position: u32) -> Version {
        let mut key = Vec::with_capacity(6);
        key.extend_from_slice(&[0, 0]);
        key.extend_from_slice(&position.to_be_bytes());
        Version {
            raw: raw.to_owned(),
            key: key.into_boxed_slice(),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_digits_and_underscores_only() {
        for ok in ["1", "20260418_001", "20260418120000", "0_0_1"] {
            assert!(Version::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "_1", "1_", "1__2", "v1", "1.2", "1a", "١٢"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn orders_numerically_token_by_token() {
        let mut vs = [
            v("20260419"),
            v("20260418_10"),
            v("20260418_2"),
            v("20260418"),
            v("20260418_001_5"),
            v("9"),
        ];
        vs.sort();
        let got: Vec<_> = vs.iter().map(Version::as_str).collect();
        assert_eq!(
            got,
            [
                "9",
                "20260418",
                "20260418_001_5",
                "20260418_2",
                "20260418_10",
                "20260419"
            ]
        );
    }

    #[test]
    fn leading_zeros_spell_the_same_version() {
        assert_eq!(v("20260418_001"), v("20260418_01"));
        assert_eq!(v("007"), v("7"));
        assert_eq!(v("0"), v("000"));
        assert_ne!(v("1_0"), v("1"));
        assert!(v("1") < v("1_0"));
    }

    #[test]
    fn very_long_tokens_do_not_overflow() {
        assert!(v("99999999999999999999999999") < v("100000000000000000000000000"));
    }
}
