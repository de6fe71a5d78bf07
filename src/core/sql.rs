//! SQL text: quoting, splitting a migration into statements, and spotting
//! statements that cannot run inside a transaction.
//!
//! The splitter is a small lexer that knows where a `;` does not end a
//! statement: inside comments (`--`, nested `/* */`), string literals
//! (`'…'`, `E'…'` with backslash escapes), quoted identifiers (`"…"`, and
//! SQLite's `` `…` `` and `[…]`), dollar-quoted bodies (`$tag$…$tag$`) and
//! `BEGIN ATOMIC … END` / trigger `BEGIN … END` bodies.

use serde::Serialize;

/// The SQL dialect of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Postgres,
    Sqlite,
    /// MySQL and MariaDB.
    Mysql,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
            Dialect::Mysql => "mysql",
        }
    }
}

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `` `name` `` (MySQL, MariaDB), with embedded backticks doubled.
pub fn quote_ident_mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `'text'` for MySQL and MariaDB: quotes doubled and backslashes escaped,
/// since their default sql_mode reads backslashes as escapes.
pub fn quote_literal_mysql(text: &str) -> String {
    quote_literal(&text.replace('\\', "\\\\"))
}

/// MySQL and MariaDB: a date-time column as RFC 3339 text in UTC with
/// milliseconds (`…T10:00:00.250Z`); envgate's sessions run in UTC.
pub fn mysql_utc_text(col: &str) -> String {
    format!(
        "CONCAT(DATE_FORMAT({col}, '%Y-%m-%dT%H:%i:%s.'), LPAD(FLOOR(MICROSECOND({col}) / 1000), 3, '0'), 'Z')"
    )
}

/// `'text'`, with embedded quotes doubled (standard-conforming strings).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One statement of a script: its text (without the `;`) and the byte
/// offset where it starts in the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// Splits a script into statements. Statements that are only whitespace and
/// comments are dropped; each kept statement starts at its first token.
pub fn split(script: &str, dialect: Dialect) -> Vec<Statement<'_>> {
    let lexer = Lexer::new(script, dialect);
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut depth = 0usize; // BEGIN ATOMIC / trigger BEGIN … END nesting
    let mut parens = 0usize; // CREATE RULE … DO (a; b)
    let mut prev_word: Option<String> = None;
    let mut in_trigger = false;
    for tok in lexer {
        match tok.kind {
            TokKind::Space | TokKind::Comment => continue,
            TokKind::Semicolon if depth == 0 && parens == 0 => {
                if let Some(s) = start.take() {
                    out.push(Statement {
                        text: script[s..tok.start].trim_end(),
                        offset: s,
                    });
                }
                prev_word = None;
                in_trigger = false;
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            start = Some(tok.start);
        }
        if tok.kind == TokKind::Other {
            match &script[tok.start..tok.end] {
                "(" => parens += 1,
                ")" => parens = parens.saturating_sub(1),
                _ => {}
            }
        }
        if tok.kind == TokKind::Word {
            let word = script[tok.start..tok.end].to_ascii_uppercase();
            match word.as_str() {
                "TRIGGER" if prev_word.as_deref() != Some("DROP") => in_trigger = true,
                "ATOMIC" if prev_word.as_deref() == Some("BEGIN") => depth += 1,
                "BEGIN" if in_trigger && depth == 0 => depth += 1,
                "CASE" if depth > 0 => depth += 1,
                "END" if depth > 0 => depth -= 1,
                _ => {}
            }
            prev_word = Some(word);
        }
    }
    if let Some(s) = start {
        let text = script[s..].trim_end();
        if !text.is_empty() {
            out.push(Statement { text, offset: s });
        }
    }
    out
}

/// Why a script must run outside a transaction, if it must: a first line
/// `-- envgate:no-transaction`, a statement PostgreSQL or SQLite refuses
/// inside a transaction block, or transaction control of the script's own.
pub fn no_transaction_reason(script: &str, dialect: Dialect) -> Option<String> {
    let first_line = script.lines().next().unwrap_or("").trim();
    if first_line.eq_ignore_ascii_case("-- envgate:no-transaction") {
        return Some("marked -- envgate:no-transaction".to_owned());
    }
    for stmt in split(script, dialect) {
        let words = leading_words(stmt.text, dialect, 6);
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let reason = match (dialect, w.as_slice()) {
            (_, ["BEGIN" | "COMMIT" | "ROLLBACK" | "END", ..] | ["START", "TRANSACTION", ..]) => {
                Some("the migration controls its own transactions".to_owned())
            }
            (Dialect::Postgres, ["CREATE", "INDEX", "CONCURRENTLY", ..]) => {
                Some("CREATE INDEX CONCURRENTLY".to_owned())
            }
            (Dialect::Postgres, ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..]) => {
                Some("CREATE UNIQUE INDEX CONCURRENTLY".to_owned())
            }
            (Dialect::Postgres, ["DROP", "INDEX", "CONCURRENTLY", ..]) => {
                Some("DROP INDEX CONCURRENTLY".to_owned())
            }
            (Dialect::Postgres, ["REINDEX", ..])
                if contains_word(stmt.text, dialect, "CONCURRENTLY") =>
            {
                Some("REINDEX … CONCURRENTLY".to_owned())
            }
            (_, ["VACUUM", ..]) => Some("VACUUM".to_owned()),
            (Dialect::Postgres, ["ALTER", "SYSTEM", ..]) => Some("ALTER SYSTEM".to_owned()),
            (Dialect::Postgres, ["CREATE" | "DROP", "DATABASE" | "TABLESPACE", ..]) => {
                Some(format!("{} {}", w[0], w[1]))
            }
            (Dialect::Postgres, ["CLUSTER"]) => Some("CLUSTER without a table".to_owned()),
            // MySQL and MariaDB commit implicitly before and after DDL (and
            // a few more): such a migration cannot be one transaction.
            (
                Dialect::Mysql,
                [
                    "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE"
                    | "LOCK" | "UNLOCK" | "ANALYZE" | "OPTIMIZE" | "REPAIR" | "INSTALL"
                    | "UNINSTALL" | "FLUSH" | "LOAD",
                    ..,
                ],
            ) => Some(format!(
                "{} commits implicitly on MySQL/MariaDB",
                w.iter().take(2).copied().collect::<Vec<_>>().join(" ")
            )),
            (Dialect::Sqlite, ["PRAGMA", ..])
                if contains_word(stmt.text, dialect, "FOREIGN_KEYS") =>
            {
                Some("PRAGMA foreign_keys (a no-op inside a transaction)".to_owned())
            }
            _ => None,
        };
        if let Some(r) = reason {
            return Some(r);
        }
    }
    None
}

/// The first `n` words of a statement, upper-cased (fewer when something
/// else comes first).
pub fn leading_words(stmt: &str, dialect: Dialect, n: usize) -> Vec<String> {
    Lexer::new(stmt, dialect)
        .filter(|t| !matches!(t.kind, TokKind::Space | TokKind::Comment))
        .take(n)
        .take_while(|t| t.kind == TokKind::Word)
        .map(|t| stmt[t.start..t.end].to_ascii_uppercase())
        .collect()
}

/// Whether a statement holds a word (outside literals and comments).
pub fn contains_word(stmt: &str, dialect: Dialect, word: &str) -> bool {
    Lexer::new(stmt, dialect)
        .any(|t| t.kind == TokKind::Word && stmt[t.start..t.end].eq_ignore_ascii_case(word))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The byte offset of the `n`-th character (0-based); PostgreSQL reports
/// error positions in characters.
pub fn char_to_byte(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// What a token of SQL text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokKind {
    Space,
    /// `-- …` or `/* … */`.
    Comment,
    Word,
    /// A string literal or quoted identifier (`'…'`, `E'…'`, `"…"`, and
    /// SQLite's `` `…` `` and `[…]`).
    Quoted,
    /// A dollar-quoted body, `$tag$…$tag$` (PostgreSQL).
    Dollar,
    Semicolon,
    Other,
}

/// One token: its kind, where it is, and whether a quote or comment it
/// opens runs to the end of the text without being closed.
#[derive(Clone, Copy, Debug)]
pub struct Tok {
    pub kind: TokKind,
    pub start: usize,
    pub end: usize,
    pub unclosed: bool,
}

/// The tokens of a script, as the splitter sees them.
pub fn tokens(script: &str, dialect: Dialect) -> impl Iterator<Item = Tok> + '_ {
    Lexer::new(script, dialect)
}

struct Lexer<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, dialect: Dialect) -> Lexer<'a> {
        Lexer {
            s: text.as_bytes(),
            text,
            pos: 0,
            dialect,
        }
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.pos + k).copied()
    }

    /// Skips to just after the first `close` from the current position (or
    /// to the end), honouring doubled-quote escapes. False when the text
    /// ends first.
    fn skip_quoted(&mut self, close: u8, backslash: bool) -> bool {
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            self.pos += 1;
            if backslash && c == b'\\' {
                self.pos += 1;
            } else if c == close {
                if self.peek(0) == Some(close) {
                    self.pos += 1;
                } else {
                    return true;
                }
            }
        }
        self.pos = self.pos.min(self.s.len());
        false
    }

    /// `$tag$` at the current position: the tag's length including both `$`.
    fn dollar_tag(&self) -> Option<usize> {
        if self.dialect != Dialect::Postgres {
            return None;
        }
        let rest = &self.s[self.pos..];
        let first = *rest.get(1)?;
        if first.is_ascii_digit() {
            return None; // $1: a parameter
        }
        let end = rest[1..].iter().position(|&c| c == b'$')? + 1;
        let tag = &rest[1..end];
        tag.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
            .then_some(end + 1)
    }
}

impl Iterator for Lexer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let start = self.pos;
        let c = *self.s.get(self.pos)?;
        let mut unclosed = false;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                while matches!(
                    self.peek(0),
                    Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
                ) {
                    self.pos += 1;
                }
                TokKind::Space
            }
            // MySQL: `#` comments to the end of the line.
            b'#' if self.dialect == Dialect::Mysql => {
                self.pos = self.text[self.pos..]
                    .find('\n')
                    .map_or(self.s.len(), |i| self.pos + i);
                TokKind::Comment
            }
            b'-' if self.peek(1) == Some(b'-') => {
                self.pos = self.text[self.pos..]
                    .find('\n')
                    .map_or(self.s.len(), |i| self.pos + i);
                TokKind::Comment
            }
            b'/' if self.peek(1) == Some(b'*') => {
                self.pos += 2;
                let mut depth = 1;
                while self.pos < self.s.len() && depth > 0 {
                    if self.peek(0) == Some(b'/')
                        && self.peek(1) == Some(b'*')
                        && self.dialect == Dialect::Postgres
                    {
                        depth += 1;
                        self.pos += 2;
                    } else if self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/') {
                        depth -= 1;
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                }
                self.pos = self.pos.min(self.s.len());
                unclosed = depth > 0;
                TokKind::Comment
            }
            // MySQL strings take backslash escapes (unless the server runs
            // with NO_BACKSLASH_ESCAPES, where `\'` cannot occur anyway).
            b'\'' => {
                self.pos += 1;
                unclosed = !self.skip_quoted(b'\'', self.dialect == Dialect::Mysql);
                TokKind::Quoted
            }
            b'"' => {
                self.pos += 1;
                unclosed = !self.skip_quoted(b'"', self.dialect == Dialect::Mysql);
                TokKind::Quoted
            }
            b'`' if self.dialect != Dialect::Postgres => {
                self.pos += 1;
                unclosed = !self.skip_quoted(b'`', false);
                TokKind::Quoted
            }
            b'[' if self.dialect == Dialect::Sqlite => {
                match self.text[self.pos..].find(']') {
                    Some(i) => self.pos += i + 1,
                    None => {
                        self.pos = self.s.len();
                        unclosed = true;
                    }
                }
                TokKind::Quoted
            }
            b'$' => match self.dollar_tag() {
                Some(len) => {
                    let tag = &self.text[self.pos..self.pos + len];
                    self.pos += len;
                    match self.text[self.pos..].find(tag) {
                        Some(i) => self.pos += i + len,
                        None => {
                            self.pos = self.s.len();
                            unclosed = true;
                        }
                    }
                    TokKind::Dollar
                }
                None => {
                    self.pos += 1;
                    TokKind::Other
                }
            },
            b';' => {
                self.pos += 1;
                TokKind::Semicolon
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                // E'…' / e'…': an escape string with backslash escapes.
                if (c == b'E' || c == b'e')
                    && self.peek(1) == Some(b'\'')
                    && self.dialect == Dialect::Postgres
                {
                    self.pos += 2;
                    let closed = self.skip_quoted(b'\'', true);
                    return Some(Tok {
                        kind: TokKind::Quoted,
                        start,
                        end: self.pos,
                        unclosed: !closed,
                    });
                }
                while let Some(c) = self.peek(0) {
                    if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                TokKind::Word
            }
            _ => {
                self.pos += 1;
                while self.pos < self.s.len() && !self.text.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                TokKind::Other
            }
        };
        Some(Tok {
            kind,
            start,
            end: self.pos,
            unclosed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str, dialect: Dialect) -> Vec<&str> {
        split(script, dialect).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let script = "CREATE TABLE a (x text DEFAULT ';');\n\
                      -- a comment; with a semicolon\n\
                      INSERT INTO a VALUES ('it''s; fine'), (E'back\\\\slash\\'; quote');\n\
                      /* block; /* nested; */ still; */ SELECT \"we;ird\" FROM a;\n\
                      CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;\n\
                      DO $$ BEGIN PERFORM 1; END $$;\n\
                      CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); DELETE FROM c);\n\
                      SELECT $1;";
        assert_eq!(
            texts(script, Dialect::Postgres),
            [
                "CREATE TABLE a (x text DEFAULT ';')",
                "INSERT INTO a VALUES ('it''s; fine'), (E'back\\\\slash\\'; quote')",
                "SELECT \"we;ird\" FROM a",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$",
                "DO $$ BEGIN PERFORM 1; END $$",
                "CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); DELETE FROM c)",
                "SELECT $1",
            ]
        );
    }

    #[test]
    fn begin_atomic_and_trigger_bodies_stay_whole() {
        let pg = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END;\nSELECT 3;";
        assert_eq!(
            texts(pg, Dialect::Postgres),
            [
                "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END",
                "SELECT 3"
            ]
        );
        let lite = "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = n + 1; INSERT INTO c VALUES (1); END;\nDROP TRIGGER x; SELECT [a;b], `c;d` FROM t;";
        assert_eq!(
            texts(lite, Dialect::Sqlite),
            [
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = n + 1; INSERT INTO c VALUES (1); END",
                "DROP TRIGGER x",
                "SELECT [a;b], `c;d` FROM t",
            ]
        );
    }

    #[test]
    fn offsets_point_at_the_first_token() {
        let script = "-- header\n\nCREATE TABLE a (id int);\n  -- only a comment;\n   SELECT 1";
        let stmts = split(script, Dialect::Postgres);
        assert_eq!(stmts.len(), 2);
        assert_eq!(
            &script[stmts[0].offset..stmts[0].offset + 12],
            "CREATE TABLE"
        );
        assert_eq!(line_col(script, stmts[1].offset), (5, 4));
    }

    #[test]
    fn statements_that_need_no_transaction() {
        let pg = |s: &str| no_transaction_reason(s, Dialect::Postgres);
        assert_eq!(
            pg("CREATE INDEX CONCURRENTLY i ON t (a);").as_deref(),
            Some("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(
            pg("-- speeds up search\ncreate unique index concurrently i on t (a);").as_deref(),
            Some("CREATE UNIQUE INDEX CONCURRENTLY")
        );
        assert_eq!(
            pg("DROP INDEX CONCURRENTLY IF EXISTS i").as_deref(),
            Some("DROP INDEX CONCURRENTLY")
        );
        assert_eq!(
            pg("REINDEX (VERBOSE) TABLE CONCURRENTLY t;").as_deref(),
            Some("REINDEX … CONCURRENTLY")
        );
        assert_eq!(pg("VACUUM (ANALYZE) t;").as_deref(), Some("VACUUM"));
        assert_eq!(
            pg("ALTER SYSTEM SET work_mem = '8MB';").as_deref(),
            Some("ALTER SYSTEM")
        );
        assert_eq!(
            pg("CREATE DATABASE reports;").as_deref(),
            Some("CREATE DATABASE")
        );
        assert_eq!(
            pg("SELECT 1;\nCOMMIT;").as_deref(),
            Some("the migration controls its own transactions")
        );
        assert_eq!(
            pg("-- envgate:no-transaction\nUPDATE big SET x = 1;").as_deref(),
            Some("marked -- envgate:no-transaction")
        );
        for ok in [
            "CREATE INDEX i ON t (a);",
            "REINDEX TABLE t;",
            "SELECT 'CREATE INDEX CONCURRENTLY';",
            "-- VACUUM later\nANALYZE t;",
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN VACUUM; END $$;",
            "UPDATE t SET concurrently = true;",
        ] {
            assert_eq!(pg(ok), None, "{ok}");
        }
        assert_eq!(
            no_transaction_reason("PRAGMA foreign_keys = OFF;", Dialect::Sqlite).as_deref(),
            Some("PRAGMA foreign_keys (a no-op inside a transaction)")
        );
        assert_eq!(
            no_transaction_reason("VACUUM;", Dialect::Sqlite).as_deref(),
            Some("VACUUM")
        );
        assert_eq!(
            no_transaction_reason("CREATE INDEX CONCURRENTLY x ON t (a);", Dialect::Sqlite),
            None
        );
    }

    #[test]
    fn unterminated_constructs_do_not_panic() {
        for s in [
            "SELECT 'open",
            "SELECT \"open",
            "/* open",
            "SELECT $tag$ open",
            "SELECT [open",
            "é;ü",
            "$",
        ] {
            let _ = split(s, Dialect::Postgres);
            let _ = split(s, Dialect::Sqlite);
            let _ = no_transaction_reason(s, Dialect::Postgres);
        }
    }

    #[test]
    fn positions() {
        let text = "SELECT 1;\nSELECT é;\nSELEC 3;";
        assert_eq!(line_col(text, 0), (1, 1));
        let e = text.find('é').unwrap();
        assert_eq!(line_col(text, e), (2, 8));
        // PostgreSQL counts characters: the 'S' of "SELEC" is character 21.
        assert_eq!(line_col(text, char_to_byte(text, 20)), (3, 1));
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
