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
}

impl Version {
    /// Parses a version: one or more groups of ASCII digits separated by
    /// single underscores.
    pub fn parse(raw: &str) -> Option<Version> {
        let ok = !raw.is_empty()
            && raw
                .split('_')
                .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| Version {
            raw: raw.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn tokens(&self) -> impl Iterator<Item = &str> {
        self.raw.split('_').map(|t| {
            let trimmed = t.trim_start_matches('0');
            if trimmed.is_empty() { "0" } else { trimmed }
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.tokens();
        let mut b = other.tokens();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

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
