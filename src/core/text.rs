//! Showing text that came from outside (file names, database errors,
//! migration excerpts) without letting it steer a terminal or break a line:
//! control characters are written as escapes.

use std::borrow::Cow;

/// A migration as its files name it: `<version>_<name>`, or the bare id
/// when the layout gives no name (Liquibase's `file::id::author`).
pub fn label(version: &str, name: &str) -> String {
    if name.is_empty() {
        version.to_owned()
    } else {
        format!("{version}_{name}")
    }
}

/// `text` with every control character (line breaks and tabs included)
/// written as a Rust-style escape (`\n`, `\u{1b}`).
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, |c| c.is_control())
}

/// The same, but line breaks and tabs are kept: for multi-line messages.
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c.is_control() && c != '\n' && c != '\t')
}

fn escape(text: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(visible("plain é"), "plain é");
        assert_eq!(visible("a\nb\x1b[2J\t"), "a\\nb\\u{1b}[2J\\t");
        assert_eq!(visible_lines("a\nb\x1b[2J\t"), "a\nb\\u{1b}[2J\t");
    }
}
