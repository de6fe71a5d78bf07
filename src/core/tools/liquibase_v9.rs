//! Liquibase's version 9 checksum of change types other than SQL
//! (`createTable`, `addColumn`, `insert`, …), so that an edit of one is
//! drift as soon as it is made, as `liquibase validate` reports it.
//!
//! Liquibase (4.22 and later) checksums such a change as `9:` + MD5 of a
//! text dump of the change object:
//!
//! ```text
//! createTable:[
//!     columns=[
//!         [
//!             [
//!                 nullable="false"
//!             ]
//!             name="id"
//!             type="int"
//!         ]
//!     ]
//!     tableName="t"
//! ]
//! ```
//!
//! Every field that is set is written `name="value"` (no escaping), four
//! spaces of indent per level, the lines of each object sorted; a column's
//! `constraints` object is written without its name (so it sorts first);
//! lists are `[`, one object per item separated by `,`, `]`. Before that the
//! changelog's text is typed as Liquibase types it: booleans through Java's
//! `Boolean.valueOf` (anything but `true` is false), big integers in
//! canonical decimal, dates reformatted, numeric values kept as written.
//! The text is hashed after line endings become LF and NFC normalisation.
//!
//! What is not modelled returns `None` and the changeset falls back to a
//! first observation: unknown change types or attributes, `${property}`
//! references, and YAML scalars whose meaning depended on YAML
//! 1.1 typing or the JVM's time zone (unquoted dates, `yes`/`on`, octal).
//! Verified against what Liquibase 4.28.0 writes (see
//! `tests/fixtures/tools/liquibase-changes`).

use md5::{Digest, Md5};
use std::collections::BTreeSet;
use unicode_normalization::UnicodeNormalization;
use yaml_rust2::Yaml;

/// A change as Liquibase's parsers hand it over: named nodes with a text
/// value and children (XML attributes and elements alike; YAML keys).
struct Node {
    name: String,
    value: Option<String>,
    children: Vec<Node>,
}

impl Node {
    /// Children named `name` (Liquibase matches names case-insensitively).
    fn kids<'n>(&'n self, name: &'n str) -> impl Iterator<Item = &'n Node> + 'n {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// The value of the one child named `name`; `Err` when several match.
    fn get<'n>(&'n self, name: &'n str) -> Result<Option<&'n str>, Unsupported> {
        let mut found = self.kids(name);
        let first = found.next();
        if found.next().is_some() {
            return Err(Unsupported);
        }
        Ok(first.and_then(|c| c.value.as_deref()))
    }
}

/// Something this module does not model: the caller falls back to a first
/// observation.
#[derive(Debug)]
struct Unsupported;

type Fields = Vec<(&'static str, Val)>;

enum Val {
    Text(String),
    /// A nested object written without its name (a column's constraints).
    Nested(Fields),
    List(Vec<Fields>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    BigInt,
    Columns,
    AddColumns,
}

use Kind::{AddColumns, BigInt, Bool, Columns, Str};

/// The fields of each change type envgate checksums, as Liquibase 4.28
/// declares them.
fn params(change: &str) -> Option<&'static [(&'static str, Kind)]> {
    Some(match change {
        "createTable" => &[
            ("catalogName", Str),
            ("columns", Columns),
            ("ifNotExists", Bool),
            ("remarks", Str),
            ("schemaName", Str),
            ("tableName", Str),
            ("tableType", Str),
            ("tablespace", Str),
        ],
        "addColumn" => &[
            ("catalogName", Str),
            ("columns", AddColumns),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "createIndex" => &[
            ("associatedWith", Str),
            ("catalogName", Str),
            ("clustered", Bool),
            ("columns", AddColumns),
            ("indexName", Str),
            ("schemaName", Str),
            ("tableName", Str),
            ("tablespace", Str),
            ("unique", Bool),
        ],
        "addForeignKeyConstraint" => &[
            ("baseColumnNames", Str),
            ("baseTableCatalogName", Str),
            ("baseTableName", Str),
            ("baseTableSchemaName", Str),
            ("constraintName", Str),
            ("deferrable", Bool),
            ("deleteCascade", Bool),
            ("initiallyDeferred", Bool),
            ("onDelete", Str),
            ("onUpdate", Str),
            ("referencedColumnNames", Str),
            ("referencedTableCatalogName", Str),
            ("referencedTableName", Str),
            ("referencedTableSchemaName", Str),
            ("referencesUniqueColumn", Bool),
            ("validate", Bool),
        ],
        "addUniqueConstraint" => &[
            ("catalogName", Str),
            ("clustered", Bool),
            ("columnNames", Str),
            ("constraintName", Str),
            ("deferrable", Bool),
            ("disabled", Bool),
            ("forIndexCatalogName", Str),
            ("forIndexName", Str),
            ("forIndexSchemaName", Str),
            ("initiallyDeferred", Bool),
            ("schemaName", Str),
            ("tableName", Str),
            ("tablespace", Str),
            ("validate", Bool),
        ],
        "dropColumn" => &[
            ("catalogName", Str),
            ("columnName", Str),
            ("columns", Columns),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "renameColumn" => &[
            ("catalogName", Str),
            ("columnDataType", Str),
            ("newColumnName", Str),
            ("oldColumnName", Str),
            ("remarks", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "modifyDataType" => &[
            ("catalogName", Str),
            ("columnName", Str),
            ("newDataType", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "addNotNullConstraint" => &[
            ("catalogName", Str),
            ("columnDataType", Str),
            ("columnName", Str),
            ("constraintName", Str),
            ("defaultNullValue", Str),
            ("schemaName", Str),
            ("tableName", Str),
            ("validate", Bool),
        ],
        "dropTable" => &[
            ("cascadeConstraints", Bool),
            ("catalogName", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "createSequence" => &[
            ("cacheSize", BigInt),
            ("catalogName", Str),
            ("cycle", Bool),
            ("dataType", Str),
            ("incrementBy", BigInt),
            ("maxValue", BigInt),
            ("minValue", BigInt),
            ("ordered", Bool),
            ("schemaName", Str),
            ("sequenceName", Str),
            ("startValue", BigInt),
        ],
        "insert" => &[
            ("catalogName", Str),
            ("columns", Columns),
            ("dbms", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "update" => &[
            ("catalogName", Str),
            ("columns", Columns),
            ("schemaName", Str),
            ("tableName", Str),
            ("where", Str),
        ],
        "delete" => &[
            ("catalogName", Str),
            ("schemaName", Str),
            ("tableName", Str),
            ("where", Str),
        ],
        "tagDatabase" => &[("tag", Str)],
        "addPrimaryKey" => &[
            ("catalogName", Str),
            ("clustered", Bool),
            ("columnNames", Str),
            ("constraintName", Str),
            ("forIndexCatalogName", Str),
            ("forIndexName", Str),
            ("forIndexSchemaName", Str),
            ("schemaName", Str),
            ("tableName", Str),
            ("tablespace", Str),
            ("validate", Bool),
        ],
        "dropIndex" => &[
            ("catalogName", Str),
            ("indexName", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        // `defaultValueNumeric` and `defaultValueDate` are plain strings here.
        "addDefaultValue" => &[
            ("catalogName", Str),
            ("columnDataType", Str),
            ("columnName", Str),
            ("defaultValue", Str),
            ("defaultValueBoolean", Bool),
            ("defaultValueComputed", Str),
            ("defaultValueConstraintName", Str),
            ("defaultValueDate", Str),
            ("defaultValueNumeric", Str),
            ("defaultValueSequenceNext", Str),
            ("schemaName", Str),
            ("tableName", Str),
        ],
        "createView" => &[
            ("catalogName", Str),
            ("fullDefinition", Bool),
            ("remarks", Str),
            ("replaceIfExists", Bool),
            ("schemaName", Str),
            ("selectQuery", Str),
            ("viewName", Str),
        ],
        "renameTable" => &[
            ("catalogName", Str),
            ("newTableName", Str),
            ("oldTableName", Str),
            ("schemaName", Str),
        ],
        "dropForeignKeyConstraint" => &[
            ("baseTableCatalogName", Str),
            ("baseTableName", Str),
            ("baseTableSchemaName", Str),
            ("constraintName", Str),
        ],
        _ => return None,
    })
}

/// Fields version 9 leaves out of a change's dump.
fn excluded(change: &str, field: &str) -> bool {
    matches!(
        (change, field),
        ("createTable", "ifNotExists") | ("createIndex", "associatedWith")
    )
}

const COLUMN_STRINGS: [&str; 14] = [
    "name",
    "type",
    "encoding",
    "remarks",
    "valueBlobFile",
    "valueClobFile",
    "defaultValue",
    "defaultValueConstraintName",
    "generationType",
    "valueSequenceNext",
    "valueSequenceCurrent",
    "defaultValueSequenceNext",
    "valueComputed",
    "defaultValueComputed",
];
const COLUMN_BOOLS: [&str; 6] = [
    "computed",
    "autoIncrement",
    "descending",
    "valueBoolean",
    "defaultValueBoolean",
    "defaultOnNull",
];
const COLUMN_OTHERS: [&str; 8] = [
    "value",
    "valueNumeric",
    "valueDate",
    "defaultValueNumeric",
    "defaultValueDate",
    "startWith",
    "incrementBy",
    "constraints",
];
const ADD_COLUMN_EXTRAS: [&str; 3] = ["afterColumn", "beforeColumn", "position"];
const CONSTRAINT_STRINGS: [&str; 11] = [
    "notNullConstraintName",
    "primaryKeyName",
    "primaryKeyTablespace",
    "references",
    "referencedTableCatalogName",
    "referencedTableSchemaName",
    "referencedTableName",
    "referencedColumnNames",
    "uniqueConstraintName",
    "checkConstraint",
    "foreignKeyName",
];
const CONSTRAINT_BOOLS: [&str; 10] = [
    "nullable",
    "primaryKey",
    "unique",
    "deleteCascade",
    "initiallyDeferred",
    "deferrable",
    "validateNullable",
    "validateUnique",
    "validatePrimaryKey",
    "validateForeignKey",
];
/// Column fields `createIndex` clears before its dump.
const INDEX_CLEARS: [&str; 9] = [
    "type",
    "autoIncrement",
    "constraints",
    "defaultValue",
    "value",
    "startWith",
    "incrementBy",
    "encoding",
    "remarks",
];

/// The checksum of one XML change element, when envgate knows its type.
pub fn xml_change(node: roxmltree::Node<'_, '_>) -> Option<String> {
    change_checksum(&from_xml(node)?).ok()
}

/// The checksums of a `<modifySql>` element's visitors (`replace`,
/// `append`, `prepend`, `regExpReplace`), which count in the changeset's
/// checksum after its changes.
pub fn xml_modify_sql(node: roxmltree::Node<'_, '_>) -> Option<Vec<String>> {
    let apply_to_rollback = java_bool(node.attribute("applyToRollback").unwrap_or("false"));
    let mut out = Vec::new();
    for v in node.children().filter(|c| c.is_element()) {
        let name = v.tag_name().name();
        let known: &[&'static str] = match name {
            "replace" | "regExpReplace" => &["replace", "with"],
            "append" | "prepend" => &["value"],
            _ => return None,
        };
        let mut f: Fields = vec![("applyToRollback", Val::Text(apply_to_rollback.clone()))];
        for a in v.attributes() {
            let k = known.iter().find(|k| **k == a.name())?;
            f.push((k, Val::Text(no_properties(a.value()).ok()?.to_owned())));
        }
        out.push(format!("9:{}", md5_text(&dump(name, &f))));
    }
    Some(out)
}

/// The checksum of one YAML change (`createTable: {...}`), when envgate
/// knows its type.
pub fn yaml_change(name: &str, value: &Yaml) -> Option<String> {
    let mut node = Node {
        name: name.to_owned(),
        value: None,
        children: Vec::new(),
    };
    set_yaml(&mut node, value).ok()?;
    change_checksum(&node).ok()
}

/// Java's `String.trim()`: every char up to U+0020 off both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn from_xml(el: roxmltree::Node<'_, '_>) -> Option<Node> {
    let mut children = Vec::new();
    for a in el.attributes() {
        if a.namespace().is_some() {
            return None; // an extension's attribute
        }
        children.push(Node {
            name: a.name().to_owned(),
            value: Some(a.value().to_owned()),
            children: Vec::new(),
        });
    }
    let mut text = String::new();
    for c in el.children() {
        if c.is_element() {
            children.push(from_xml(c)?);
        } else if c.is_text() {
            text.push_str(c.text().unwrap_or(""));
        }
    }
    let text = java_trim(&text);
    Some(Node {
        name: el.tag_name().name().to_owned(),
        value: (!text.is_empty()).then(|| text.to_owned()),
        children,
    })
}

/// A YAML value into a node, as Liquibase's YAML parser does: mappings
/// become children; a list's mappings merge into the node.
fn set_yaml(node: &mut Node, y: &Yaml) -> Result<(), Unsupported> {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                let mut child = Node {
                    name: k.as_str().ok_or(Unsupported)?.to_owned(),
                    value: None,
                    children: Vec::new(),
                };
                set_yaml(&mut child, v)?;
                node.children.push(child);
            }
        }
        Yaml::Array(items) => {
            let mut scalars = 0;
            for item in items {
                if matches!(item, Yaml::Hash(_)) {
                    set_yaml(node, item)?;
                } else {
                    scalars += 1;
                    if scalars > 1 {
                        return Err(Unsupported);
                    }
                    set_yaml(node, item)?;
                }
            }
        }
        scalar => node.value = yaml_scalar(scalar)?,
    }
    Ok(())
}

/// A YAML scalar as the Java string Liquibase would see. Values whose
/// meaning YAML 1.1 (SnakeYAML) and the YAML 1.2 reader here may disagree
/// on, or that depend on the JVM's zone, are not guessed.
fn yaml_scalar(y: &Yaml) -> Result<Option<String>, Unsupported> {
    Ok(match y {
        Yaml::Null => None,
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(java_double(r)?),
        Yaml::String(s) => {
            if yaml11_typed(s) {
                return Err(Unsupported);
            }
            Some(s.clone())
        }
        _ => return Err(Unsupported),
    })
}

/// Whether SnakeYAML might have typed this plain scalar (a YAML 1.1
/// boolean, integer form, or timestamp) where it reads here as a string.
fn yaml11_typed(s: &str) -> bool {
    const WORDS: [&str; 18] = [
        "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y",
        "n", "N", "~", "",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let b = s.as_bytes();
    let digits_start = b.first().is_some_and(|c| c.is_ascii_digit())
        || (b.len() > 1 && matches!(b[0], b'+' | b'-' | b'.') && b[1].is_ascii_digit());
    // Numbers with `_`, `:`, a leading zero, or a date: anything starting
    // with a digit that is not a plain word.
    digits_start
}

/// Java's `Double.toString` where it is plain decimal.
fn java_double(text: &str) -> Result<String, Unsupported> {
    let x: f64 = text.replace('_', "").parse().map_err(|_| Unsupported)?;
    if !(1e-3..1e7).contains(&x.abs()) {
        return Err(Unsupported);
    }
    let s = format!("{x}");
    Ok(if s.contains('.') { s } else { format!("{s}.0") })
}

fn java_bool(s: &str) -> String {
    s.eq_ignore_ascii_case("true").to_string()
}

/// `new BigInteger(s)` printed back: canonical decimal.
fn big_int(s: &str) -> Result<String, Unsupported> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Unsupported);
    }
    let trimmed = digits.trim_start_matches('0');
    Ok(match (trimmed.is_empty(), neg) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{trimmed}"),
        (false, false) => trimmed.to_owned(),
    })
}

/// `ColumnConfig.setValueNumeric(String)`: the number as written (outer
/// parentheses dropped) when it starts like one, else a computed value
/// (the original text).
enum Numeric {
    Number(String),
    Computed(String),
}

fn numeric(s: &str) -> Option<Numeric> {
    if s.eq_ignore_ascii_case("null") {
        return None;
    }
    let mut inner = s;
    if let Some(rest) = inner.strip_prefix('(') {
        inner = rest.strip_suffix(')').unwrap_or(rest);
    }
    let b = inner.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let starts_numeric = match body {
        [d, ..] if d.is_ascii_digit() => true,
        [b'.', d, ..] if d.is_ascii_digit() => true,
        _ => false,
    };
    Some(if starts_numeric {
        Numeric::Number(inner.to_owned())
    } else {
        Numeric::Computed(s.to_owned())
    })
}

/// `ISODateFormat.parse` then `format`: a date, time or timestamp as
/// Liquibase writes it back; `Ok(None)` when it is not one (Liquibase then
/// takes the text as a computed value).
fn iso_date(s: &str) -> Result<Option<String>, Unsupported> {
    fn num(s: &str, range: std::ops::RangeInclusive<u32>) -> Result<Option<u32>, Unsupported> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Ok(None);
        }
        let v: u32 = s.parse().map_err(|_| Unsupported)?;
        // Java's lenient calendar would roll an out-of-range field over;
        // not modelled.
        if range.contains(&v) {
            Ok(Some(v))
        } else {
            Err(Unsupported)
        }
    }
    let time = |t: &str| -> Result<bool, Unsupported> {
        let p: Vec<&str> = t.split(':').collect();
        Ok(p.len() == 3
            && p.iter().all(|x| x.len() == 2)
            && num(p[0], 0..=23)?.is_some()
            && num(p[1], 0..=59)?.is_some()
            && num(p[2], 0..=59)?.is_some())
    };
    let date = |d: &str| -> Result<bool, Unsupported> {
        let p: Vec<&str> = d.split('-').collect();
        Ok(p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && num(p[0], 0..=9999)?.is_some()
            && num(p[1], 1..=12)?.is_some()
            && num(p[2], 1..=31)?.is_some())
    };
    let stamp = |t: &str| -> Result<Option<String>, Unsupported> {
        let sep = t.as_bytes()[10];
        if (sep == b'T' || sep == b' ') && date(&t[..10])? && time(&t[11..])? {
            Ok(Some(format!("{}T{}", &t[..10], &t[11..])))
        } else {
            Ok(None)
        }
    };
    let n = s.len();
    if !s.is_ascii() {
        return Ok(None);
    }
    if n == 8 {
        return Ok(time(s)?.then(|| s.to_owned()));
    }
    if n == 10 {
        return Ok(date(s)?.then(|| s.to_owned()));
    }
    if n == 19 {
        return stamp(s);
    }
    if s.contains(':') && !s.contains('-') {
        return if s.contains('.') {
            Ok(None)
        } else {
            Err(Unsupported) // lenient time forms
        };
    }
    if n < 21 || s.as_bytes()[19] != b'.' {
        return Ok(None);
    }
    let frac = &s[20..];
    if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let Some(base) = stamp(&s[..19])? else {
        return Ok(None);
    };
    let nanos = format!("{frac:0<9}");
    let nanos = nanos.trim_end_matches('0');
    Ok(Some(if nanos.is_empty() {
        base
    } else {
        format!("{base}.{nanos}")
    }))
}

/// Rejects a node holding children this module does not know.
fn only(node: &Node, known: &[&str]) -> Result<(), Unsupported> {
    let fine = node
        .children
        .iter()
        .all(|c| known.iter().any(|k| k.eq_ignore_ascii_case(&c.name)));
    if fine { Ok(()) } else { Err(Unsupported) }
}

fn no_properties(s: &str) -> Result<&str, Unsupported> {
    // `${…}` is expanded by Liquibase from its properties: unknown here.
    if s.contains("${") {
        Err(Unsupported)
    } else {
        Ok(s)
    }
}

fn column(node: &Node, add: bool, for_index: bool) -> Result<Fields, Unsupported> {
    let mut known: Vec<&str> = COLUMN_STRINGS
        .iter()
        .chain(&COLUMN_BOOLS)
        .chain(&COLUMN_OTHERS)
        .copied()
        .collect();
    if add {
        known.extend(ADD_COLUMN_EXTRAS);
    }
    only(node, &known)?;
    let mut f: Fields = Vec::new();
    let mut computed: Option<String> = None;
    let mut default_computed: Option<String> = None;
    let mut auto_increment: Option<String> = None;
    for k in COLUMN_STRINGS {
        if let Some(v) = node.get(k)? {
            let v = no_properties(v)?.to_owned();
            match k {
                "valueComputed" => computed = Some(v),
                "defaultValueComputed" => default_computed = Some(v),
                _ => f.push((k, Val::Text(v))),
            }
        }
    }
    for k in COLUMN_BOOLS {
        if let Some(v) = node.get(k)? {
            if k == "autoIncrement" {
                auto_increment = Some(java_bool(v));
            } else {
                f.push((k, Val::Text(java_bool(v))));
            }
        }
    }
    for k in ["startWith", "incrementBy"] {
        if let Some(v) = node.get(k)? {
            f.push((k, Val::Text(big_int(v)?)));
        }
    }
    let value = match node.get("value")? {
        Some(v) => Some(v.to_owned()),
        None => node
            .value
            .as_deref()
            .map(java_trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
    };
    if let Some(v) = value {
        f.push(("value", Val::Text(no_properties(&v)?.to_owned())));
    }
    // Loaded in Liquibase's order: a numeric or date value that is not one
    // becomes the computed value, which an explicit one then overrides.
    let mut numeric_computed = None;
    if let Some(v) = node.get("valueNumeric")? {
        match numeric(no_properties(v)?) {
            Some(Numeric::Number(n)) => f.push(("valueNumeric", Val::Text(n))),
            Some(Numeric::Computed(c)) => numeric_computed = Some(c),
            None => {}
        }
    }
    if let Some(v) = node.get("valueDate")? {
        match iso_date(no_properties(v)?)? {
            Some(d) => f.push(("valueDate", Val::Text(d))),
            None => numeric_computed = Some(v.to_owned()),
        }
    }
    if let Some(c) = computed.or(numeric_computed) {
        f.push(("valueComputed", Val::Text(c)));
    }
    let mut default_from_value = None;
    if let Some(v) = node.get("defaultValueNumeric")? {
        if v == "GENERATED_BY_DEFAULT" {
            auto_increment = Some("true".to_owned());
        } else {
            match numeric(no_properties(v)?) {
                Some(Numeric::Number(n)) => f.push(("defaultValueNumeric", Val::Text(n))),
                Some(Numeric::Computed(c)) => default_from_value = Some(c),
                None => {}
            }
        }
    }
    if let Some(v) = node.get("defaultValueDate")? {
        match iso_date(no_properties(v)?)? {
            Some(d) => f.push(("defaultValueDate", Val::Text(d))),
            None => default_from_value = Some(v.to_owned()),
        }
    }
    if let Some(c) = default_computed.or(default_from_value) {
        f.push(("defaultValueComputed", Val::Text(c)));
    }
    if let Some(a) = auto_increment {
        f.push(("autoIncrement", Val::Text(a)));
    }
    let constraints: Vec<&Node> = node.kids("constraints").collect();
    match constraints.as_slice() {
        [] => {}
        [c] => f.push(("constraints", Val::Nested(constraint(c)?))),
        _ => return Err(Unsupported),
    }
    if add {
        for k in ["afterColumn", "beforeColumn"] {
            if let Some(v) = node.get(k)? {
                f.push((k, Val::Text(no_properties(v)?.to_owned())));
            }
        }
        if let Some(v) = node.get("position")? {
            let p: i32 = v.trim().parse().map_err(|_| Unsupported)?;
            f.push(("position", Val::Text(p.to_string())));
        }
    }
    if for_index {
        f.retain(|(k, _)| !INDEX_CLEARS.contains(k));
    }
    Ok(f)
}

fn constraint(node: &Node) -> Result<Fields, Unsupported> {
    let known: Vec<&str> = CONSTRAINT_STRINGS
        .iter()
        .chain(&CONSTRAINT_BOOLS)
        .copied()
        .collect();
    only(node, &known)?;
    let mut f: Fields = Vec::new();
    for k in CONSTRAINT_STRINGS {
        if let Some(v) = node.get(k)? {
            f.push((k, Val::Text(no_properties(v)?.to_owned())));
        }
    }
    for k in CONSTRAINT_BOOLS {
        if let Some(v) = node.get(k)? {
            f.push((k, Val::Text(java_bool(v))));
        }
    }
    Ok(f)
}

/// The `9:` checksum of one change node.
fn change_checksum(node: &Node) -> Result<String, Unsupported> {
    let name = node.name.as_str();
    let params = params(name).ok_or(Unsupported)?;
    let mut known: Vec<&str> = params.iter().map(|(k, _)| *k).collect();
    let lists = params
        .iter()
        .any(|(_, kind)| matches!(kind, Columns | AddColumns));
    if lists {
        known.push("column");
    }
    if matches!(name, "update" | "delete") {
        known.push("whereParams"); // not part of the checksum
    }
    only(node, &known)?;
    let mut f: Fields = Vec::new();
    for (k, kind) in params {
        match kind {
            Columns | AddColumns => {
                let mut items = Vec::new();
                for holder in node.kids(k).chain(node.kids("column")) {
                    let inner: Vec<&Node> = holder.kids("column").collect();
                    let columns = if inner.is_empty() {
                        vec![holder]
                    } else {
                        inner
                    };
                    for c in columns {
                        items.push(column(c, *kind == AddColumns, name == "createIndex")?);
                    }
                }
                // dropColumn returns no list when it has none.
                if !(items.is_empty() && name == "dropColumn") {
                    f.push((k, Val::List(items)));
                }
            }
            Str => {
                let v = match node.get(k)? {
                    Some(v) => Some(v.to_owned()),
                    // The view's query is the element's text.
                    None if name == "createView" && *k == "selectQuery" => node.value.clone(),
                    None => None,
                };
                if let Some(v) = v {
                    f.push((k, Val::Text(no_properties(&v)?.to_owned())));
                }
            }
            Bool => {
                if let Some(v) = node.get(k)? {
                    f.push((k, Val::Text(java_bool(v))));
                }
            }
            BigInt => {
                if let Some(v) = node.get(k)? {
                    f.push((k, Val::Text(big_int(v)?)));
                }
            }
        }
    }
    if name == "addForeignKeyConstraint" {
        // `deleteCascade` is never written: loaded after `onDelete`, it
        // turns into onDelete CASCADE when alone, and clears onDelete
        // when both are set.
        let cascade = f
            .iter()
            .position(|(k, _)| *k == "deleteCascade")
            .map(|i| f.remove(i).1);
        if let Some(Val::Text(cascade)) = cascade {
            let on_delete = f.iter().position(|(k, _)| *k == "onDelete");
            match (cascade == "true", on_delete) {
                (true, None) => f.push(("onDelete", Val::Text("CASCADE".to_owned()))),
                (_, Some(i)) => {
                    f.remove(i);
                }
                (false, None) => {}
            }
        }
    }
    f.retain(|(k, _)| !excluded(name, k));
    if name == "createView" {
        let query = f
            .iter()
            .position(|(k, _)| *k == "selectQuery")
            .map(|i| f.remove(i).1);
        let query = match query {
            Some(Val::Text(q)) => q,
            _ => String::new(),
        };
        let dump = format!("9:{}", md5_text(&dump(name, &f)));
        let sql = super::change_checksum(query.as_bytes());
        return Ok(format!("9:{}", md5_text(&format!("{dump}:{sql}"))));
    }
    Ok(format!("9:{}", md5_text(&dump(name, &f))))
}

fn indent(n: usize) -> String {
    " ".repeat(4 * n)
}

/// `<name>:` and the object's dump.
fn dump(name: &str, fields: &Fields) -> String {
    format!("{name}:{}", object(fields, 1))
}

fn object(fields: &Fields, level: usize) -> String {
    let mut lines = BTreeSet::new();
    for (k, v) in fields {
        let pad = indent(level);
        lines.insert(match v {
            Val::Text(t) => format!("{pad}{k}=\"{t}\""),
            Val::Nested(inner) => format!("{pad}{}", object(inner, level + 1)),
            Val::List(items) => format!("{pad}{k}={}", list(items, level + 1)),
        });
    }
    let mut out = String::from("[");
    if !lines.is_empty() {
        out.push('\n');
        out.push_str(&lines.into_iter().collect::<Vec<_>>().join("\n"));
        out.push('\n');
    }
    out.push_str(&indent(level - 1));
    out.push(']');
    out
}

fn list(items: &[Fields], level: usize) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    let body: Vec<String> = items
        .iter()
        .map(|item| format!("{}{}", indent(level), object(item, level + 1)))
        .collect();
    format!("[\n{}\n{}]", body.join(",\n"), indent(level - 1))
}

/// MD5 of text as Liquibase's `CheckSum.compute(String)` takes it: line
/// endings made LF, U+FFFD dropped, NFC.
fn md5_text(text: &str) -> String {
    let text = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\u{fffd}', "");
    let text: String = text.nfc().collect();
    hex::encode(Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(change: &str) -> Option<String> {
        let doc = roxmltree::Document::parse(change).unwrap();
        xml_change(doc.root_element())
    }

    #[test]
    fn dumps_as_liquibase_does() {
        // The spec's worked examples, values the real Liquibase 4.28 wrote.
        assert_eq!(
            xml(r#"<dropColumn tableName="customer" columnName="phone"/>"#).unwrap(),
            "9:7dc55b7dff1733283ac12504eb1db7e5"
        );
        let fields: Fields = vec![
            ("tableName", Val::Text("t".into())),
            (
                "columns",
                Val::List(vec![vec![
                    ("name", Val::Text("id".into())),
                    (
                        "constraints",
                        Val::Nested(vec![("nullable", Val::Text("false".into()))]),
                    ),
                ]]),
            ),
        ];
        assert_eq!(
            dump("createTable", &fields),
            "createTable:[\n    columns=[\n        [\n            [\n                nullable=\"false\"\n            ]\n            name=\"id\"\n        ]\n    ]\n    tableName=\"t\"\n]"
        );
    }

    #[test]
    fn values_are_typed_as_liquibase_types_them() {
        assert_eq!(big_int("+0010").unwrap(), "10");
        assert_eq!(big_int("-0").unwrap(), "0");
        assert_eq!(java_bool("1"), "false");
        assert_eq!(java_bool("TRUE"), "true");
        assert_eq!(
            iso_date("2024-01-02 03:04:05").unwrap().unwrap(),
            "2024-01-02T03:04:05"
        );
        assert_eq!(
            iso_date("2024-01-02T03:04:05.120").unwrap().unwrap(),
            "2024-01-02T03:04:05.12"
        );
        assert_eq!(iso_date("now()").unwrap(), None);
        assert!(matches!(numeric("(3.5)"), Some(Numeric::Number(n)) if n == "3.5"));
        assert!(matches!(
            numeric("nextval('s')"),
            Some(Numeric::Computed(_))
        ));
        assert_eq!(java_double("1.50").unwrap(), "1.5");
        assert_eq!(java_double("1000").unwrap(), "1000.0");
    }

    #[test]
    fn what_is_not_modelled_is_not_guessed() {
        assert_eq!(xml(r#"<createTable tableName="${t}"/>"#), None);
        assert_eq!(xml(r#"<createTable tableName="t" frobnicate="1"/>"#), None);
        assert_eq!(xml(r#"<customChange class="x.Y"/>"#), None);
    }
}
