//! The lint of migrations: PostgreSQL's rules from squawk (the
//! `squawk-linter` crate) and envgate's own, which only envgate can know —
//! statements that must run outside a transaction mixed with ones that need
//! one, a migration without a down file, an edit to a migration already
//! applied somewhere.
//!
//! Pure: migrations and what the ledgers say in, findings out. Each rule
//! has a severity (`error`, `warning`, `off`) that `[lint.rules]` can
//! change; `-- envgate:lint-ignore rule[, rule]` silences rules on the next
//! statement, `-- envgate:lint-ignore-file rule[, rule]` in the whole file
//! (`*` for every rule). squawk's own `-- squawk-ignore` comments work too.

use super::migration::Migration;
use super::sql::{self, Dialect};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Off,
    Warning,
    Error,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "off" => Some(Severity::Off),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// envgate's own rules: (code, default severity, what it says).
pub const OWN_RULES: [(&str, Severity, &str); 4] = [
    (
        MIXED_TRANSACTION,
        Severity::Error,
        "statements that must run outside a transaction mixed with ones that need one",
    ),
    (
        EDITED_AFTER_APPLY,
        Severity::Error,
        "an edit to a migration already applied somewhere",
    ),
    (
        MISSING_DOWN,
        Severity::Warning,
        "a migration without a down file, which `rollback` cannot undo",
    ),
    (
        UNKNOWN_RULE,
        Severity::Warning,
        "a lint-ignore comment naming a rule that does not exist",
    ),
];

pub const MIXED_TRANSACTION: &str = "mixed-transaction";
pub const EDITED_AFTER_APPLY: &str = "edited-after-apply";
pub const MISSING_DOWN: &str = "missing-down";
pub const UNKNOWN_RULE: &str = "unknown-rule";

/// Whether `code` names a rule (envgate's or squawk's).
pub fn known_rule(code: &str) -> bool {
    OWN_RULES.iter().any(|(c, _, _)| *c == code) || code.parse::<squawk_linter::Rule>().is_ok()
}

/// `[lint]`: severities by rule and the PostgreSQL version the migrations
/// must run on.
#[derive(Clone, Debug, Default)]
pub struct LintConfig {
    /// Rule code → severity, overriding the defaults.
    pub rules: BTreeMap<String, Severity>,
    /// The oldest PostgreSQL the migrations run on (squawk's `pg_version`).
    pub pg_version: Option<String>,
}

impl LintConfig {
    /// The severity of a rule: configured, else its default (squawk's
    /// default rules warn, its opt-in ones are off).
    pub fn severity(&self, code: &str) -> Severity {
        if let Some(s) = self.rules.get(code) {
            return *s;
        }
        if let Some((_, s, _)) = OWN_RULES.iter().find(|(c, _, _)| *c == code) {
            return *s;
        }
        match code.parse::<squawk_linter::Rule>() {
            Ok(r) if r.is_opt_in() => Severity::Off,
            // What squawk's opt-in `require-timeout-settings` stands for.
            Ok(
                squawk_linter::Rule::RequireLockTimeout
                | squawk_linter::Rule::RequireStatementTimeout,
            ) => Severity::Off,
            Ok(_) => Severity::Warning,
            Err(_) => Severity::Off,
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    /// `squawk` or `envgate`.
    pub source: &'static str,
    pub severity: Severity,
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

/// What the lint knows about one migration beyond its text.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Environments where it is applied with other content: (environment,
    /// the hash recorded there).
    pub applied_otherwise: Vec<(String, String)>,
    /// Whether its layout has down files (envgate's does).
    pub downs_exist: bool,
}

/// Lints `migrations` written for `dialect` (squawk's rules run on
/// PostgreSQL ones only).
pub fn lint(
    migrations: &[(&Migration, Context)],
    dialect: Dialect,
    config: &LintConfig,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (m, ctx) in migrations {
        let text = &m.up.sql;
        let mut found = Vec::new();
        if dialect == Dialect::Postgres {
            found.extend(squawk(text, &m.up.path, config));
        }
        found.extend(mixed_transaction(text, &m.up.path, dialect));
        if ctx.downs_exist && m.down.is_none() {
            found.push(own(
                MISSING_DOWN,
                &m.up.path,
                (1, 1),
                "no down file: `envgate rollback` of a release holding this migration cannot undo it".to_owned(),
                Some(format!(
                    "add {} with the statements that undo it",
                    down_name(&m.up.path)
                )),
            ));
        }
        if !ctx.applied_otherwise.is_empty() {
            let mut by_hash: Vec<(String, Vec<&str>)> = Vec::new();
            for (env, hash) in &ctx.applied_otherwise {
                let short: String = hash
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                match by_hash.iter_mut().find(|(h, _)| *h == short) {
                    Some((_, envs)) => envs.push(env),
                    None => by_hash.push((short, vec![env])),
                }
            }
            let applied: Vec<String> = by_hash
                .iter()
                .map(|(h, envs)| format!("{} as {h}", envs.join(", ")))
                .collect();
            found.push(own(
                EDITED_AFTER_APPLY,
                &m.up.path,
                (1, 1),
                format!(
                    "applied in {}; the file now differs: drift before it happens",
                    applied.join("; ")
                ),
                Some("leave applied migrations as they are and write a new one".to_owned()),
            ));
        }
        let ignores = ignores(text, dialect);
        for (line, name) in &ignores.unknown {
            found.push(own(
                UNKNOWN_RULE,
                &m.up.path,
                (*line, 1),
                format!("lint-ignore names `{name}`, which is not a rule"),
                Some("envgate's rules and squawk's are listed in docs/lint.md".to_owned()),
            ));
        }
        for mut f in found {
            f.severity = config.severity(&f.rule);
            if f.severity == Severity::Off || ignores.covers(&f.rule, f.line) {
                continue;
            }
            out.push(f);
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.rule).cmp(&(&b.file, b.line, b.column, &b.rule))
    });
    out
}

fn own(
    rule: &str,
    file: &str,
    (line, column): (usize, usize),
    message: String,
    help: Option<String>,
) -> Finding {
    Finding {
        rule: rule.to_owned(),
        source: "envgate",
        severity: Severity::Warning,
        file: file.to_owned(),
        line,
        column,
        message,
        help,
    }
}

/// `migrations/3_x.sql` → `migrations/3_x.down.sql`.
fn down_name(up: &str) -> String {
    match up.strip_suffix(".up.sql") {
        Some(stem) => format!("{stem}.down.sql"),
        None => match up.strip_suffix(".sql") {
            Some(stem) => format!("{stem}.down.sql"),
            None => format!("{up}.down"),
        },
    }
}

/// squawk's rules (every one envgate's configuration does not turn off),
/// knowing whether envgate runs the migration inside a transaction.
fn squawk(text: &str, file: &str, config: &LintConfig) -> Vec<Finding> {
    let rules: Vec<squawk_linter::Rule> = enum_rules()
        .into_iter()
        .filter(|r| r.expands_to().is_empty() && config.severity(&r.to_string()) != Severity::Off)
        .collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let parse = squawk_syntax::SourceFile::parse(text);
    // A fresh linter per file: it keeps what it collected.
    let mut linter = squawk_linter::Linter::from(rules);
    linter.settings.assume_in_transaction =
        sql::no_transaction_reason(text, Dialect::Postgres).is_none();
    if let Some(v) = config.pg_version.as_deref().and_then(|v| v.parse().ok()) {
        linter.settings.pg_version = v;
    }
    linter
        .lint(&parse, text)
        .into_iter()
        .map(|v| {
            let (line, column) = sql::line_col(text, usize::from(v.text_range.start()));
            Finding {
                rule: v.code.to_string(),
                source: "squawk",
                severity: Severity::Warning,
                file: file.to_owned(),
                line,
                column,
                message: v.message,
                help: v.help,
            }
        })
        .collect()
}

/// Every squawk rule.
fn enum_rules() -> Vec<squawk_linter::Rule> {
    // `Rule` parses from its code; its Display gives the code back. The
    // list below is squawk's own (its `all` iterator is behind a trait of
    // another crate), checked by a test against the codes it accepts.
    SQUAWK_RULES.iter().filter_map(|c| c.parse().ok()).collect()
}

/// squawk 2.68's rule codes (its `unused-ignore`, about its own ignore
/// comments, is not one a configuration names).
pub const SQUAWK_RULES: [&str; 77] = [
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "constraint-missing-not-valid",
    "adding-field-with-default",
    "adding-foreign-key-constraint",
    "changing-column-type",
    "adding-not-nullable-field",
    "adding-serial-primary-key-field",
    "renaming-column",
    "renaming-table",
    "disallowed-unique-constraint",
    "ban-drop-database",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-repack",
    "prefer-robust-stmts",
    "prefer-text-field",
    "prefer-timestamp-tz",
    "ban-char-field",
    "ban-drop-column",
    "ban-drop-table",
    "ban-drop-not-null",
    "transaction-nesting",
    "adding-required-field",
    "ban-concurrent-index-creation-in-transaction",
    "ban-create-domain-with-constraint",
    "ban-alter-domain-with-add-constraint",
    "ban-truncate-cascade",
    "require-timeout-settings",
    "ban-uncommitted-transaction",
    "require-enum-value-ordering",
    "require-table-schema",
    "identifier-too-long",
    "require-concurrent-partition-detach",
    "require-concurrent-reindex",
    "require-lock-timeout",
    "require-statement-timeout",
    "ban-duplicate-column-assignments",
    "ban-drop-view",
    "ban-drop-function",
    "ban-drop-type",
    "ban-drop-default",
    "ban-drop-trigger",
    "ban-drop-schema",
    "ban-drop-sequence",
    "ban-drop-domain",
    "ban-drop-constraint",
    "ban-drop-generated-expression",
    "renaming-object",
    "ban-set-schema",
    "ban-alter-identity",
    "ban-drop-extension",
    "ban-alter-generated-expression",
    "ban-drop-index",
    "ban-set-default",
    "ban-disable-trigger",
    "ban-replica-identity",
    "ban-drop-policy",
    "ban-revoke",
    "ban-replace-view-function",
    "ban-alter-policy-condition",
    "ban-alter-policy-roles",
    "ban-create-policy",
    "ban-alter-function-options",
    "ban-alter-view-options",
    "ban-alter-role-options",
    "ban-alter-database-options",
    "ban-alter-row-level-security",
    "ban-new-write-restriction",
    "ban-add-enum-value",
    "ban-add-composite-attribute",
    "ban-add-column",
    "ban-detach-inheritance",
    "ban-alter-sequence-values",
    "ban-alter-system-options",
    "ban-alter-extension",
];

/// A statement that must run outside a transaction beside ones that need
/// one: envgate then runs them all outside, and a failure midway leaves the
/// migration half applied.
fn mixed_transaction(text: &str, file: &str, dialect: Dialect) -> Vec<Finding> {
    let statements = sql::split(text, dialect);
    let mut outside = None;
    let mut inside = 0;
    for s in &statements {
        match sql::no_transaction_reason(s.text, dialect) {
            Some(r) if r.contains("controls its own transactions") => return Vec::new(),
            Some(r) if outside.is_none() => outside = Some((s.offset, r)),
            Some(_) => {}
            None => inside += 1,
        }
    }
    let Some((offset, reason)) = outside else {
        return Vec::new();
    };
    if inside == 0 {
        return Vec::new();
    }
    let (line, column) = sql::line_col(text, offset);
    vec![own(
        MIXED_TRANSACTION,
        file,
        (line, column),
        format!(
            "{reason} cannot run in a transaction, so the {inside} other {} of this migration run{} outside one too: a failure midway leaves it half applied",
            if inside == 1 {
                "statement"
            } else {
                "statements"
            },
            if inside == 1 { "s" } else { "" }
        ),
        Some("put it in a migration of its own".to_owned()),
    )]
}

/// The lint-ignore comments of a file.
#[derive(Default)]
struct Ignores {
    /// Rules silenced in the whole file.
    file: Vec<String>,
    /// (first line, last line, rules).
    ranges: Vec<(usize, usize, Vec<String>)>,
    /// (line, name) of names that are not rules.
    unknown: Vec<(usize, String)>,
}

impl Ignores {
    fn covers(&self, rule: &str, line: usize) -> bool {
        let named = |rules: &[String]| rules.iter().any(|r| r == rule || r == "*");
        named(&self.file)
            || self
                .ranges
                .iter()
                .any(|(from, to, rules)| (*from..=*to).contains(&line) && named(rules))
    }
}

fn ignores(text: &str, dialect: Dialect) -> Ignores {
    let statements = sql::split(text, dialect);
    let mut out = Ignores::default();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = i + 1;
        let start = offset;
        offset += raw.len();
        let Some(at) = raw.find("--") else { continue };
        let comment = raw[at + 2..].trim();
        let (file_wide, names) =
            if let Some(rest) = comment.strip_prefix("envgate:lint-ignore-file") {
                (true, rest)
            } else if let Some(rest) = comment.strip_prefix("envgate:lint-ignore") {
                (false, rest)
            } else {
                continue;
            };
        let names: Vec<String> = names
            .split([',', ' '])
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        for n in &names {
            if n != "*" && !known_rule(n) {
                out.unknown.push((line, n.clone()));
            }
        }
        if file_wide {
            out.file.extend(names);
            continue;
        }
        // Its own line, and the statement that starts after it.
        let comment_at = start + at;
        let last = statements
            .iter()
            .find(|s| s.offset > comment_at)
            .map_or(line, |s| sql::line_col(text, s.offset + s.text.len()).0);
        out.ranges.push((line, last.max(line), names));
    }
    out
}

/// The migrations a request adds, by path, with nothing else known: the
/// simplest lint input.
pub fn plain<'m>(migrations: &[&'m Migration], downs_exist: bool) -> Vec<(&'m Migration, Context)> {
    migrations
        .iter()
        .map(|m| {
            (
                *m,
                Context {
                    downs_exist,
                    ..Context::default()
                },
            )
        })
        .collect()
}

/// Findings counted by severity.
pub fn counts(findings: &[Finding]) -> HashMap<Severity, usize> {
    let mut out = HashMap::new();
    for f in findings {
        *out.entry(f.severity).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::ContentHash;
    use crate::core::migration::Script;
    use crate::core::version::Version;

    fn migration(path: &str, sql: &str, down: bool) -> Migration {
        let script = |p: &str, s: &str| Script {
            path: p.to_owned(),
            sql: s.to_owned(),
            hash: ContentHash::of(s.as_bytes()),
        };
        Migration::envgate(
            Version::parse("1").unwrap(),
            "x".to_owned(),
            script(path, sql),
            down.then(|| script("migrations/1_x.down.sql", "SELECT 1;")),
        )
    }

    fn rules(findings: &[Finding]) -> Vec<(&str, usize, Severity)> {
        findings
            .iter()
            .map(|f| (f.rule.as_str(), f.line, f.severity))
            .collect()
    }

    #[test]
    fn squawk_codes_are_all_known_to_squawk() {
        for code in SQUAWK_RULES {
            let rule: squawk_linter::Rule = code.parse().unwrap_or_else(|_| panic!("{code}"));
            assert_eq!(rule.to_string(), code);
        }
    }

    #[test]
    fn squawk_and_envgate_rules_with_lines() {
        let m = migration(
            "migrations/1_x.sql",
            "CREATE TABLE t (id bigint PRIMARY KEY);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
            false,
        );
        let f = lint(
            &plain(&[&m], true),
            Dialect::Postgres,
            &LintConfig::default(),
        );
        assert_eq!(
            rules(&f),
            [
                (MISSING_DOWN, 1, Severity::Warning),
                // Outside a transaction, squawk asks for IF NOT EXISTS.
                ("prefer-robust-stmts", 1, Severity::Warning),
                (MIXED_TRANSACTION, 2, Severity::Error),
                ("prefer-robust-stmts", 2, Severity::Warning),
            ],
            "{f:#?}"
        );
        assert!(
            f[2].message.starts_with(
                "CREATE INDEX CONCURRENTLY cannot run in a transaction, so the 1 other statement"
            ),
            "{}",
            f[2].message
        );

        let m = migration(
            "migrations/1_x.sql",
            "SELECT 1;\nCREATE INDEX t_a ON t (a);\n",
            true,
        );
        let f = lint(
            &plain(&[&m], true),
            Dialect::Postgres,
            &LintConfig::default(),
        );
        assert_eq!(
            rules(&f),
            [("require-concurrent-index-creation", 2, Severity::Warning)],
            "{f:#?}"
        );
        assert_eq!((f[0].source, f[0].column), ("squawk", 1));
    }

    #[test]
    fn severities_and_ignore_comments() {
        let text = "-- envgate:lint-ignore require-concurrent-index-creation\nCREATE INDEX a ON t (a);\nCREATE INDEX b ON t (b);\n";
        let m = migration("migrations/1_x.sql", text, true);
        let f = lint(
            &plain(&[&m], true),
            Dialect::Postgres,
            &LintConfig::default(),
        );
        assert_eq!(
            rules(&f),
            [("require-concurrent-index-creation", 3, Severity::Warning)]
        );
        let mut config = LintConfig::default();
        config
            .rules
            .insert("require-concurrent-index-creation".into(), Severity::Error);
        let f = lint(&plain(&[&m], true), Dialect::Postgres, &config);
        assert_eq!(f[0].severity, Severity::Error);
        config
            .rules
            .insert("require-concurrent-index-creation".into(), Severity::Off);
        assert!(lint(&plain(&[&m], true), Dialect::Postgres, &config).is_empty());

        let m = migration(
            "migrations/1_x.sql",
            "-- envgate:lint-ignore-file *\n-- envgate:lint-ignore no-such-rule\nCREATE INDEX a ON t (a);\n",
            false,
        );
        let f = lint(
            &plain(&[&m], true),
            Dialect::Postgres,
            &LintConfig::default(),
        );
        assert!(f.is_empty(), "* silences every rule: {f:#?}");
        let m = migration(
            "migrations/1_x.sql",
            "-- envgate:lint-ignore no-such-rule\nSELECT 1;\n",
            true,
        );
        let f = lint(
            &plain(&[&m], true),
            Dialect::Postgres,
            &LintConfig::default(),
        );
        assert_eq!(rules(&f), [(UNKNOWN_RULE, 1, Severity::Warning)]);
    }

    #[test]
    fn an_applied_migration_edited_is_an_error_and_sqlite_has_no_squawk() {
        let m = migration("migrations/1_x.sql", "CREATE INDEX a ON t (a);\n", true);
        let ctx = Context {
            applied_otherwise: vec![(
                "prod".to_owned(),
                "sha256:abcdef0123456789abcdef".to_owned(),
            )],
            downs_exist: true,
        };
        let f = lint(&[(&m, ctx)], Dialect::Sqlite, &LintConfig::default());
        assert_eq!(rules(&f), [(EDITED_AFTER_APPLY, 1, Severity::Error)]);
        assert_eq!(
            f[0].message,
            "applied in prod as abcdef012345; the file now differs: drift before it happens"
        );
    }
}
