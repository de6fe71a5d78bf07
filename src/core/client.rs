//! What a SQL client would make of a migration's text, and how bundles keep
//! it to SQL.
//!
//! Bundles are applied by `psql` and the `sqlite3` shell, and both read more
//! than SQL: psql runs backslash commands (`\!`, `\o`, `\set`, `\i`, `\copy
//! … program`, `\gexec`, …) wherever they appear outside a literal and
//! substitutes `:variables`; the sqlite3 shell runs a line that starts with
//! `.` (`.shell`, `.system`, `.output`, `.read`, `.bail off`, …) and ends a
//! statement at a line holding only `/` or `go`. A migration copied into a
//! bundle as text could make the pipeline that applies it — the one holding
//! production credentials — run commands. So:
//!
//! - **PostgreSQL, embedded.** Every statement that can run inside a
//!   function is written as `DO $a$ BEGIN EXECUTE $b$<statement>$b$; END
//!   $a$;`, both tags chosen so that neither occurs in the statement ([`tag`]).
//!   psql sees one dollar-quoted literal and interprets nothing inside it;
//!   the server parses exactly the text `apply` sends it, under the same
//!   settings. Nothing here depends on envgate lexing SQL exactly as psql
//!   does (psql's lexer differs between versions and with
//!   `standard_conforming_strings`).
//! - **PostgreSQL, as written, where it must be.** The statements that cannot
//!   run in a function ([`placement`]: `CREATE INDEX CONCURRENTLY`, `VACUUM`,
//!   transaction control, `SELECT … INTO`, …) are written as they are, and
//!   only when psql could not read anything but SQL in them: no backslash
//!   anywhere, no dollar quote, no `:name` outside a literal. Such
//!   statements need none of these; one that has them is refused.
//! - **SQLite, as written, checked line by line.** The shell cannot be given
//!   a literal to run. No line a statement spans may be one the shell could
//!   take for a command — starting with `.` or `#`, or holding only `/` or
//!   `go` — wherever the line is, inside a string literal too, so nothing
//!   depends on envgate and the shell agreeing where statements end.
//! - **Both:** no NUL byte (a client would cut the text there) and no quote
//!   or comment left open at the end (it would swallow what the bundle
//!   writes after the migration).
//!
//! [`check`] makes these refusals. `plan` runs it for every step, so `plan`,
//! `apply` and `export` accept exactly the same files, and a refusal names
//! the file's line and why.

use super::sql::{
    Dialect, Statement, Tok, TokKind, contains_word, leading_words, line_col, split, tokens,
};

/// Why a migration's text cannot be run, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Byte offset in the script.
    pub offset: usize,
    pub reason: String,
}

impl Refusal {
    /// 1-based line of the refusal in `script`.
    pub fn line(&self, script: &str) -> usize {
        line_col(script, self.offset).0
    }
}

/// Where a PostgreSQL statement goes in a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Inside `DO … EXECUTE`, out of psql's reach.
    Embedded,
    /// As written: it cannot run inside a function. Holds why.
    AsWritten(&'static str),
}

/// Where a PostgreSQL statement must go in a bundle.
pub fn placement(stmt: &str) -> Placement {
    let words = leading_words(stmt, Dialect::Postgres, 4);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        [
            "BEGIN" | "COMMIT" | "ROLLBACK" | "END" | "ABORT" | "SAVEPOINT" | "RELEASE",
            ..,
        ]
        | ["START", "TRANSACTION", ..]
        | ["PREPARE", "TRANSACTION", ..] => Placement::AsWritten("transaction control"),
        ["CREATE" | "DROP", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => {
            Placement::AsWritten("CONCURRENTLY cannot run inside a function")
        }
        ["REINDEX", ..] if contains_word(stmt, Dialect::Postgres, "CONCURRENTLY") => {
            Placement::AsWritten("CONCURRENTLY cannot run inside a function")
        }
        ["VACUUM" | "CLUSTER" | "CHECKPOINT", ..]
        | [
            "CREATE" | "DROP",
            "DATABASE" | "TABLESPACE" | "SUBSCRIPTION",
            ..,
        ]
        | ["ALTER", "SYSTEM", ..]
        | ["ALTER", "SUBSCRIPTION", ..]
        | ["ALTER", "DATABASE", ..]
        | ["DISCARD", ..] => Placement::AsWritten("it cannot run inside a function"),
        ["SELECT" | "WITH", ..] if creates_table(stmt) => {
            Placement::AsWritten("SELECT … INTO cannot run through EXECUTE")
        }
        _ => Placement::Embedded,
    }
}

/// Checks that a migration's text can only ever reach a client as SQL (see
/// the module's documentation).
pub fn check(script: &str, dialect: Dialect) -> Result<(), Refusal> {
    if let Some(i) = script.find('\0') {
        return Err(Refusal {
            offset: i,
            reason: "a NUL byte: a client would cut the text here".to_owned(),
        });
    }
    for tok in tokens(script, dialect) {
        if tok.unclosed {
            return Err(Refusal {
                offset: tok.start,
                reason: format!(
                    "{} that is never closed: everything after it would be swallowed",
                    opened(script, &tok)
                ),
            });
        }
        if dialect != Dialect::Sqlite && tok.kind == TokKind::Other && at(script, &tok) == "\\" {
            let client = if dialect == Dialect::Postgres {
                "a psql command, not SQL (a migration holds SQL only; PostgreSQL rejects it too)"
            } else {
                "a mysql client command, not SQL (a migration holds SQL only; the server rejects it too)"
            };
            return Err(Refusal {
                offset: tok.start,
                reason: format!("`{}` is {client}", excerpt(&script[tok.start..])),
            });
        }
    }
    for stmt in split(script, dialect) {
        match dialect {
            Dialect::Postgres => postgres_statement(&stmt)?,
            Dialect::Sqlite => sqlite_statement(&stmt)?,
            Dialect::Mysql => mysql_statement(&stmt)?,
        }
    }
    Ok(())
}

/// A file or migration name goes into bundle comments and ledger literals:
/// no control characters (a line break would end a comment early).
pub fn check_name(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "the name holds a control character ({:?}); rename the file",
            c
        )),
        None => Ok(()),
    }
}

fn postgres_statement(stmt: &Statement<'_>) -> Result<(), Refusal> {
    let refuse = |at: usize, reason: String| {
        Err(Refusal {
            offset: stmt.offset + at,
            reason,
        })
    };
    let words = leading_words(stmt.text, Dialect::Postgres, 1);
    if words.first().map(String::as_str) == Some("COPY") && copies_with_client(stmt.text) {
        return refuse(
            0,
            "COPY … FROM STDIN / TO STDOUT exchanges data with the client; a migration cannot supply it (use INSERT, or COPY from a server file)".to_owned(),
        );
    }
    let Placement::AsWritten(why) = placement(stmt.text) else {
        return Ok(());
    };
    // Written as it is: psql must not be able to read anything but SQL.
    if let Some(i) = stmt.text.find('\\') {
        return refuse(
            i,
            format!(
                "a backslash in a statement that goes into bundles as written ({why}): psql could read it as a command"
            ),
        );
    }
    for tok in tokens(stmt.text, Dialect::Postgres) {
        let text = at(stmt.text, &tok);
        if tok.kind == TokKind::Dollar {
            return refuse(
                tok.start,
                format!(
                    "a dollar-quoted string in a statement that goes into bundles as written ({why})"
                ),
            );
        }
        if tok.kind == TokKind::Other && text == ":" {
            let next = stmt.text[tok.end..].bytes().next();
            let prev_colon = tok.start > 0 && stmt.text.as_bytes()[tok.start - 1] == b':';
            let next_colon = next == Some(b':');
            let variable = next.is_some_and(|c| {
                // `a[1:2]` is a slice: psql would look up a variable named
                // `2`, which nobody defines.
                c.is_ascii_alphabetic() || matches!(c, b'_' | b'\'' | b'"' | b'{') || c >= 0x80
            });
            if variable && !prev_colon && !next_colon {
                return refuse(
                    tok.start,
                    format!(
                        "`{}` would be a psql variable in a statement that goes into bundles as written ({why}); write `: ` with a space",
                        excerpt(&stmt.text[tok.start..])
                    ),
                );
            }
        }
    }
    Ok(())
}

/// MySQL: the client's own commands written as words (`DELIMITER`,
/// `SOURCE`, `SYSTEM`, …) are not SQL. (Bundles pass every statement to
/// the server as a string literal, so the client never reads them; the
/// server would reject them anyway.)
fn mysql_statement(stmt: &Statement<'_>) -> Result<(), Refusal> {
    let first = stmt
        .text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match first.as_str() {
        "DELIMITER" | "SOURCE" | "SYSTEM" | "CONNECT" | "EXIT" | "QUIT" | "PAGER" | "TEE"
        | "CHARSET" | "WARNINGS" | "NOWARNING" | "REHASH" | "STATUS" | "EGO" | "GO" | "PRINT"
        | "PROMPT" | "NOTEE" | "NOPAGER" | "EDIT" | "CLEAR" => Err(Refusal {
            offset: stmt.offset,
            reason: format!(
                "`{}` is a mysql client command, not SQL (a migration holds SQL only; each statement ends at `;`)",
                excerpt(stmt.text)
            ),
        }),
        _ => Ok(()),
    }
}

fn sqlite_statement(stmt: &Statement<'_>) -> Result<(), Refusal> {
    let mut line_start = 0;
    for line in stmt.text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let command = trimmed.starts_with('.') || trimmed.starts_with('#');
        let terminator =
            matches!(trimmed.trim_end(), "/") || trimmed.trim_end().eq_ignore_ascii_case("go");
        if command || terminator {
            let indent = body.len() - trimmed.len();
            return Err(Refusal {
                offset: stmt.offset + line_start + indent,
                reason: if command {
                    format!(
                        "a line starting with `{}`: the sqlite3 shell would run `{}` as a command",
                        &trimmed[..1],
                        excerpt(trimmed)
                    )
                } else {
                    format!(
                        "a line holding only `{}`: the sqlite3 shell would end the statement there",
                        trimmed.trim_end()
                    )
                },
            });
        }
        line_start += line.len();
    }
    Ok(())
}

/// What an unclosed token opens.
fn opened(script: &str, tok: &Tok) -> &'static str {
    let first = script.as_bytes()[tok.start];
    match (tok.kind, first) {
        (TokKind::Comment, _) => "a /* comment",
        (TokKind::Dollar, _) => "a dollar-quoted string",
        (_, b'"' | b'`' | b'[') => "a quoted identifier",
        _ => "a string literal",
    }
}

fn at<'a>(text: &'a str, tok: &Tok) -> &'a str {
    &text[tok.start..tok.end]
}

/// The start of some text, on one line, at most 40 characters, with control
/// characters escaped: safe to quote in a message.
pub fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let head: String = line.chars().take(40).collect();
    let mut out = super::text::visible(&head).into_owned();
    if line.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// `SELECT … INTO t` (and `WITH … SELECT … INTO t`): INTO outside
/// parentheses, after a SELECT rather than an INSERT or MERGE.
fn creates_table(stmt: &str) -> bool {
    let mut depth = 0usize;
    let mut select = false;
    for t in tokens(stmt, Dialect::Postgres) {
        match (t.kind, &stmt[t.start..t.end]) {
            (TokKind::Other, "(") => depth += 1,
            (TokKind::Other, ")") => depth = depth.saturating_sub(1),
            (TokKind::Word, w) if depth == 0 => match w.to_ascii_uppercase().as_str() {
                "SELECT" => select = true,
                "INSERT" | "MERGE" | "UPDATE" | "DELETE" => select = false,
                "INTO" => return select,
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// `COPY … FROM STDIN` or `COPY … TO STDOUT`.
fn copies_with_client(stmt: &str) -> bool {
    let words: Vec<String> = tokens(stmt, Dialect::Postgres)
        .filter(|t| t.kind == TokKind::Word)
        .map(|t| stmt[t.start..t.end].to_ascii_uppercase())
        .collect();
    words.windows(2).any(|w| {
        matches!(
            (w[0].as_str(), w[1].as_str()),
            ("FROM", "STDIN") | ("TO", "STDOUT")
        )
    })
}

/// A dollar-quote tag (`$envgate_<label>…$`) that occurs nowhere in `text`.
pub fn tag(label: &str, text: &str) -> String {
    let mut n = 0usize;
    loop {
        let tag = if n == 0 {
            format!("$envgate_{label}$")
        } else {
            format!("$envgate_{label}_{n}$")
        };
        if !text.contains(&tag) {
            return tag;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> Result<(), String> {
        check(s, Dialect::Postgres).map_err(|r| format!("line {}: {}", r.line(s), r.reason))
    }

    fn lite(s: &str) -> Result<(), String> {
        check(s, Dialect::Sqlite).map_err(|r| format!("line {}: {}", r.line(s), r.reason))
    }

    #[test]
    fn psql_commands_outside_literals_are_refused() {
        for (text, line) in [
            ("CREATE TABLE s1 (id int);\n\\! touch pwned\n", 2),
            ("CREATE TABLE s1 (id int); \\o /tmp/x\n", 1),
            ("\\set ON_ERROR_STOP 0\nSELECT 1;", 1),
            ("SELECT 1 \\gexec", 1),
            ("/* c */ \\copy t from program 'id'", 1),
        ] {
            let e = pg(text).unwrap_err();
            assert!(e.starts_with(&format!("line {line}: `\\")), "{text:?}: {e}");
            assert!(e.contains("psql command"), "{e}");
        }
    }

    #[test]
    fn backslashes_inside_literals_and_bodies_are_sql() {
        for ok in [
            "INSERT INTO t VALUES ('a\\! b'), (E'\\\\x');",
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '\\! x' $$;",
            "-- \\! in a comment\nSELECT 1;",
            "/* \\o /tmp/x */ SELECT \"we\\ird\";",
            "SELECT a[1:n] FROM t; SELECT x::text, :'x' FROM t;",
        ] {
            assert_eq!(pg(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn statements_written_as_they_are_must_be_plain() {
        assert_eq!(
            placement("create index concurrently i on t (a)"),
            Placement::AsWritten("CONCURRENTLY cannot run inside a function")
        );
        assert_eq!(placement("CREATE TABLE t (a int)"), Placement::Embedded);
        assert_eq!(
            placement("SELECT * INTO t2 FROM t"),
            Placement::AsWritten("SELECT … INTO cannot run through EXECUTE")
        );
        assert_eq!(placement("SELECT (SELECT 1 INTO x)"), Placement::Embedded);
        assert_eq!(placement("INSERT INTO t SELECT 1"), Placement::Embedded);
        assert_eq!(
            pg("CREATE INDEX CONCURRENTLY i ON t (a) WHERE b > '2020-01-01 00:00';"),
            Ok(())
        );
        let e = pg("CREATE INDEX CONCURRENTLY i ON t (a) WHERE b = E'x\\\\y';").unwrap_err();
        assert!(e.contains("a backslash"), "{e}");
        let e = pg("SELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (a) WHERE b = $$x$$;").unwrap_err();
        assert!(e.starts_with("line 2: a dollar-quoted string"), "{e}");
        let e = pg("VACUUM t;\nCREATE INDEX CONCURRENTLY i ON t ((a[1:DBNAME]));").unwrap_err();
        assert!(e.contains("`:DBNAME]))` would be a psql variable"), "{e}");
        assert_eq!(
            pg("CREATE INDEX CONCURRENTLY i ON t ((a::text), (b[1:2]));"),
            Ok(())
        );
    }

    #[test]
    fn unclosed_quotes_and_comments_are_refused() {
        for (text, what) in [
            ("CREATE TABLE a (id int);\n/* unterminated", "a /* comment"),
            ("SELECT 'open", "a string literal"),
            ("SELECT \"open", "a quoted identifier"),
            ("SELECT $x$ open", "a dollar-quoted string"),
        ] {
            let e = pg(text).unwrap_err();
            assert!(e.contains(what), "{text}: {e}");
        }
        assert!(
            lite("SELECT [open")
                .unwrap_err()
                .contains("quoted identifier")
        );
        assert!(pg("SELECT 1;\0").unwrap_err().contains("NUL"));
        assert!(
            pg("COPY t FROM stdin;")
                .unwrap_err()
                .contains("exchanges data with the client")
        );
    }

    #[test]
    fn sqlite_shell_commands_are_refused_on_any_line() {
        for (text, line) in [
            ("CREATE TABLE s1 (id int);\n.shell touch pwned\n", 2),
            (".bail off\nSELECT 1;", 1),
            ("INSERT INTO t VALUES ('a\n.system id\n');", 2),
            ("  .output /tmp/x\nSELECT 1;", 1),
            ("SELECT 1\n/\n;", 2),
            ("SELECT 1\nGO\n;", 2),
            ("# a comment\nSELECT 1;", 1),
        ] {
            let e = lite(text).unwrap_err();
            assert!(e.starts_with(&format!("line {line}:")), "{text:?}: {e}");
        }
        assert_eq!(
            lite("CREATE TABLE t (a int); -- .shell in a comment\n"),
            Ok(())
        );
        assert_eq!(lite("SELECT '\\! fine in sqlite';"), Ok(()));
    }

    #[test]
    fn tags_avoid_the_text() {
        assert_eq!(tag("sql", "SELECT 1"), "$envgate_sql$");
        assert_eq!(tag("sql", "SELECT '$envgate_sql$'"), "$envgate_sql_1$");
        assert_eq!(
            tag("sql", "$envgate_sql$ $envgate_sql_1$"),
            "$envgate_sql_2$"
        );
        assert_eq!(excerpt("\\! touch x\nmore"), "\\! touch x");
        assert_eq!(
            check_name("a\nb").unwrap_err(),
            "the name holds a control character ('\\n'); rename the file"
        );
    }
}
