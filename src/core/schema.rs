//! The live schema of a database as one normalised model, and what differs
//! between two of them.
//!
//! A [`Schema`] is a set of [`Object`]s — tables, columns, indexes,
//! constraints, sequences, views, enums, extensions, functions, triggers —
//! each with a kind, a name, the table it belongs to and a definition
//! normalised to one line. The catalog readers (`schema_catalog`) build
//! it from PostgreSQL's catalogs, SQLite's `sqlite_schema` and MySQL's
//! `information_schema`; here it is only values: its stable text form, its
//! fingerprint, the differences between an environment's schema and the
//! one its migrations produce (or a peer's), and those differences in plain
//! words.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What kind of object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Extension,
    Enum,
    Sequence,
    Table,
    Column,
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclusion,
    Index,
    View,
    MaterializedView,
    Function,
    Trigger,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Extension,
        Kind::Enum,
        Kind::Sequence,
        Kind::Table,
        Kind::Column,
        Kind::PrimaryKey,
        Kind::Unique,
        Kind::ForeignKey,
        Kind::Check,
        Kind::Exclusion,
        Kind::Index,
        Kind::View,
        Kind::MaterializedView,
        Kind::Function,
        Kind::Trigger,
    ];

    /// The name the catalog queries give it (and ignore rules use).
    pub fn code(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Enum => "enum",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::PrimaryKey => "primary_key",
            Kind::Unique => "unique",
            Kind::ForeignKey => "foreign_key",
            Kind::Check => "check",
            Kind::Exclusion => "exclusion",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::MaterializedView => "materialized_view",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
        }
    }

    /// In a sentence.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Enum => "enum type",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::PrimaryKey => "primary key",
            Kind::Unique => "unique constraint",
            Kind::ForeignKey => "foreign key",
            Kind::Check => "check constraint",
            Kind::Exclusion => "exclusion constraint",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
        }
    }

    pub fn parse(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// One object of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub kind: Kind,
    /// Its own name (for a column, the column's).
    pub name: String,
    /// The table (or view) it belongs to, for columns, constraints,
    /// indexes and triggers.
    pub table: Option<String>,
    /// Its definition, on one line.
    pub definition: String,
}

impl Object {
    pub fn new(kind: Kind, table: Option<&str>, name: &str, definition: &str) -> Object {
        Object {
            kind,
            name: name.to_owned(),
            table: table.filter(|t| !t.is_empty()).map(str::to_owned),
            definition: one_line(definition),
        }
    }

    /// How a person names it: `users.email` for a column, the object's own
    /// name otherwise.
    pub fn display(&self) -> String {
        match (&self.table, self.kind) {
            (Some(t), Kind::Column) => format!("{t}.{}", self.name),
            _ => self.name.clone(),
        }
    }

    fn key(&self) -> Key {
        (
            self.kind,
            self.table.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

type Key = (Kind, String, String);

/// Whitespace runs become one space; the ends are trimmed.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A database's schema: its objects, keyed by kind, table and name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    objects: BTreeMap<Key, Object>,
}

impl Schema {
    /// The schema of these objects. Tables named in `skip` (ledger tables:
    /// the shadow database has none) and everything belonging to them are
    /// left out, as is what `ignore` matches.
    pub fn new(
        objects: impl IntoIterator<Item = Object>,
        skip: &[String],
        ignore: &[Ignore],
    ) -> Schema {
        let skipped = |name: &str| skip.iter().any(|s| s.eq_ignore_ascii_case(name));
        let mut kept = BTreeMap::new();
        let mut ignored_tables = Vec::new();
        let objects: Vec<Object> = objects.into_iter().collect();
        for o in &objects {
            if o.kind == Kind::Table && ignore.iter().any(|i| i.matches(o)) {
                ignored_tables.push(o.name.clone());
            }
        }
        for o in objects {
            let owner =
                o.table
                    .as_deref()
                    .unwrap_or(if o.kind == Kind::Table { &o.name } else { "" });
            if skipped(owner) || (o.kind == Kind::Table && skipped(&o.name)) {
                continue;
            }
            if ignored_tables.iter().any(|t| t == owner) || ignore.iter().any(|i| i.matches(&o)) {
                continue;
            }
            kept.insert(o.key(), o);
        }
        Schema { objects: kept }
    }

    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// How many objects of this kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.objects.keys().filter(|k| k.0 == kind).count()
    }

    /// The stable text form: one line per object, sorted by table, kind and
    /// name, `kind name: definition`.
    pub fn text(&self) -> String {
        let mut sorted: Vec<&Object> = self.objects.values().collect();
        sorted.sort_by(|a, b| {
            let group = |o: &Object| o.table.clone().unwrap_or_else(|| o.name.clone());
            (group(a), a.table.is_some(), a.kind, &a.name).cmp(&(
                group(b),
                b.table.is_some(),
                b.kind,
                &b.name,
            ))
        });
        let mut out = String::new();
        for o in sorted {
            let _ = writeln!(out, "{} {}: {}", o.kind.code(), o.display(), o.definition);
        }
        out
    }

    /// SHA-256 of [`Schema::text`], in hex: equal fingerprints, equal
    /// schemas.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.text().as_bytes()))
    }
}

/// `kind:pattern` or `pattern` from `[schema_drift] ignore`: objects a team
/// manages elsewhere. The pattern is a glob (`*`, `?`) on the object's name
/// as shown (`users.tmp_*` for columns); a table's rule covers everything
/// that belongs to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignore {
    pub kind: Option<Kind>,
    pub pattern: String,
}

impl Ignore {
    pub fn parse(rule: &str) -> Result<Ignore, String> {
        let rule = rule.trim();
        if rule.is_empty() {
            return Err("an empty ignore rule".to_owned());
        }
        match rule.split_once(':') {
            Some((kind, pattern)) => {
                let kind = Kind::parse(kind.trim()).ok_or_else(|| {
                    format!(
                        "unknown object kind `{kind}` in ignore rule `{rule}`; expected one of {}",
                        Kind::ALL.map(Kind::code).join(", ")
                    )
                })?;
                Ok(Ignore {
                    kind: Some(kind),
                    pattern: pattern.trim().to_owned(),
                })
            }
            None => Ok(Ignore {
                kind: None,
                pattern: rule.to_owned(),
            }),
        }
    }

    pub fn matches(&self, o: &Object) -> bool {
        self.kind.is_none_or(|k| k == o.kind)
            && super::release::tag_matches(&self.pattern, &o.display())
    }
}

/// One difference between an environment's schema and the reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The environment has it; the reference does not.
    Extra { object: Object },
    /// The reference has it; the environment does not.
    Missing { object: Object },
    /// Both have it, defined differently.
    Differs { actual: Object, expected: Object },
}

impl Change {
    pub fn object(&self) -> &Object {
        match self {
            Change::Extra { object } | Change::Missing { object } => object,
            Change::Differs { actual, .. } => actual,
        }
    }
}

/// What `actual` has that `expected` lacks, lacks that it has, and defines
/// differently. A table on one side only is one change (its columns,
/// indexes and constraints go with it).
pub fn diff(actual: &Schema, expected: &Schema) -> Vec<Change> {
    let mut out = Vec::new();
    let extra_tables: Vec<&str> = actual
        .objects
        .iter()
        .filter(|(k, _)| k.0 == Kind::Table && !expected.objects.contains_key(*k))
        .map(|(k, _)| k.2.as_str())
        .collect();
    let missing_tables: Vec<&str> = expected
        .objects
        .iter()
        .filter(|(k, _)| k.0 == Kind::Table && !actual.objects.contains_key(*k))
        .map(|(k, _)| k.2.as_str())
        .collect();
    // A table on one side only is shown with its columns.
    let whole = |o: &Object, side: &Schema| {
        let columns: Vec<String> = side
            .objects
            .values()
            .filter(|c| c.kind == Kind::Column && c.table.as_deref() == Some(o.name.as_str()))
            .map(|c| format!("{} {}", c.name, c.definition))
            .collect();
        Object {
            definition: format!("{} ({})", o.definition, columns.join(", ")),
            ..o.clone()
        }
    };
    for (k, a) in &actual.objects {
        match expected.objects.get(k) {
            Some(e) if e.definition != a.definition => out.push(Change::Differs {
                actual: a.clone(),
                expected: e.clone(),
            }),
            Some(_) => {}
            None if k.0 != Kind::Table && extra_tables.contains(&k.1.as_str()) => {}
            None if k.0 == Kind::Table => out.push(Change::Extra {
                object: whole(a, actual),
            }),
            None => out.push(Change::Extra { object: a.clone() }),
        }
    }
    for (k, e) in &expected.objects {
        if actual.objects.contains_key(k)
            || (k.0 != Kind::Table && missing_tables.contains(&k.1.as_str()))
        {
            continue;
        }
        let object = if k.0 == Kind::Table {
            whole(e, expected)
        } else {
            e.clone()
        };
        out.push(Change::Missing { object });
    }
    out.sort_by(|a, b| {
        let key = |c: &Change| {
            let o = c.object();
            (
                o.table.clone().unwrap_or_else(|| o.name.clone()),
                o.kind,
                o.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    out
}

/// What an environment's schema was compared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reference {
    /// The schema its applied migrations produce on the shadow database.
    Migrations { applied: usize },
    /// Another environment at the same ledger position.
    Peer { env: String },
}

/// A change in plain words: "prod has index `tickets_tmp_idx` that no
/// migration creates", "staging: `users.display_name` is `varchar(200)`,
/// migrations make it `text`".
pub fn describe(env: &str, change: &Change, against: &Reference) -> String {
    let what = |o: &Object| format!("{} `{}`", o.kind.words(), o.display());
    match (change, against) {
        (Change::Extra { object }, Reference::Migrations { .. }) => {
            format!("{env} has {} that no migration creates", what(object))
        }
        (Change::Extra { object }, Reference::Peer { env: peer }) => {
            format!("{env} has {} that {peer} lacks", what(object))
        }
        (Change::Missing { object }, Reference::Migrations { .. }) => {
            format!("{env} lacks {}", what(object))
        }
        (Change::Missing { object }, Reference::Peer { env: peer }) => {
            format!("{env} lacks {} that {peer} has", what(object))
        }
        (Change::Differs { actual, expected }, reference) => {
            let subject = if actual.kind == Kind::Column {
                format!("`{}`", actual.display())
            } else {
                what(actual)
            };
            let theirs = match reference {
                Reference::Migrations { .. } => "migrations make it".to_owned(),
                Reference::Peer { env: peer } => format!("{peer} has"),
            };
            format!(
                "{env}: {subject} is `{}`, {theirs} `{}`",
                actual.definition, expected.definition
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(objects: &[Object]) -> Schema {
        Schema::new(objects.iter().cloned(), &[], &[])
    }

    fn users() -> Vec<Object> {
        vec![
            Object::new(Kind::Table, None, "users", "table"),
            Object::new(Kind::Column, Some("users"), "id", "bigint not null"),
            Object::new(Kind::Column, Some("users"), "display_name", "text"),
            Object::new(
                Kind::PrimaryKey,
                Some("users"),
                "users_pkey",
                "PRIMARY KEY (id)",
            ),
        ]
    }

    #[test]
    fn text_and_fingerprint_are_stable_whatever_the_order() {
        let mut reversed = users();
        reversed.reverse();
        assert_eq!(schema(&users()).text(), schema(&reversed).text());
        assert_eq!(
            schema(&users()).fingerprint(),
            schema(&reversed).fingerprint()
        );
        assert_eq!(
            schema(&users()).text(),
            "table users: table\ncolumn users.display_name: text\ncolumn users.id: bigint not null\nprimary_key users_pkey: PRIMARY KEY (id)\n"
        );
    }

    #[test]
    fn each_change_in_plain_words() {
        let expected = schema(&users());
        let mut objects = users();
        objects[2].definition = "character varying(200)".to_owned();
        objects.pop();
        objects.push(Object::new(
            Kind::Index,
            Some("users"),
            "users_tmp_idx",
            "CREATE INDEX users_tmp_idx ON users (display_name)",
        ));
        let actual = schema(&objects);
        let changes = diff(&actual, &expected);
        let shadow = Reference::Migrations { applied: 3 };
        let words: Vec<String> = changes
            .iter()
            .map(|c| describe("prod", c, &shadow))
            .collect();
        assert_eq!(
            words,
            [
                "prod: `users.display_name` is `character varying(200)`, migrations make it `text`",
                "prod lacks primary key `users_pkey`",
                "prod has index `users_tmp_idx` that no migration creates",
            ]
        );
        let peer = Reference::Peer {
            env: "staging".to_owned(),
        };
        assert_eq!(
            describe("prod", &changes[1], &peer),
            "prod lacks primary key `users_pkey` that staging has"
        );
    }

    #[test]
    fn a_table_on_one_side_is_one_change() {
        let mut objects = users();
        objects.push(Object::new(Kind::Table, None, "scratch", "table"));
        objects.push(Object::new(Kind::Column, Some("scratch"), "x", "int"));
        objects.push(Object::new(
            Kind::Index,
            Some("scratch"),
            "scratch_x",
            "CREATE INDEX …",
        ));
        let changes = diff(&schema(&objects), &schema(&users()));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            describe("prod", &changes[0], &Reference::Migrations { applied: 1 }),
            "prod has table `scratch` that no migration creates"
        );
        let back = diff(&schema(&users()), &schema(&objects));
        assert_eq!(back.len(), 1, "{back:?}");
    }

    #[test]
    fn ledger_tables_and_ignored_objects_are_left_out() {
        let mut objects = users();
        objects.push(Object::new(
            Kind::Table,
            None,
            "envgate_migrations",
            "table",
        ));
        objects.push(Object::new(
            Kind::Column,
            Some("envgate_migrations"),
            "version",
            "text",
        ));
        objects.push(Object::new(Kind::Table, None, "events_2026_01", "table"));
        objects.push(Object::new(
            Kind::Index,
            Some("events_2026_01"),
            "e1",
            "CREATE INDEX",
        ));
        objects.push(Object::new(Kind::Extension, None, "pg_trgm", "extension"));
        let ignore = [
            Ignore::parse("table:events_*").unwrap(),
            Ignore::parse("extension:*").unwrap(),
        ];
        let s = Schema::new(objects, &["ENVGATE_MIGRATIONS".to_owned()], &ignore);
        assert_eq!(s, schema(&users()));
    }

    #[test]
    fn ignore_rules_name_unknown_kinds() {
        let e = Ignore::parse("tabel:x").unwrap_err();
        assert!(e.contains("unknown object kind `tabel`"), "{e}");
        assert_eq!(Ignore::parse("users.tmp_*").unwrap().kind, None);
        assert!(
            Ignore::parse("column:users.tmp_*")
                .unwrap()
                .matches(&Object::new(Kind::Column, Some("users"), "tmp_1", "int"))
        );
    }
}
