//! Liquibase: changelogs — formatted SQL (`--liquibase formatted sql`,
//! `--changeset author:id`), and XML or YAML root changelogs that `include`
//! or `includeAll` them, or hold changeSets with `sqlFile` / `sql` changes.
//! `migrations` may name the root changelog. Ledger `databasechangelog(id,
//! author, filename, dateexecuted, orderexecuted, exectype, md5sum, …)`,
//! keyed case-insensitively by (normalised filename, id, author).
//!
//! Checksums (version 9, Liquibase 4.22+): a SQL change's checksum is
//! `9:` + MD5 of its SQL with every space, tab, CR and LF byte removed; the
//! changeset's is `9:` + MD5 of each change's checksum followed by `:`.
//! Changes for another database (`dbms`) are skipped. Stored `8:` values and
//! changesets with other change types cannot be recomputed here and are not
//! reported as drift; `validCheckSum` values are accepted, `ANY` accepts all.
//!
//! States: `EXECUTED`, `RERAN`, `MARK_RAN` are applied; `FAILED` (a
//! `failOnError:false` changeset that errored) is failed. `runOnChange` and
//! `runAlways` changesets whose checksum changed are pending, not drifted.

use super::{Layout, TextRow, base, col, opt, time_sql};
use crate::core::checksum::{ContentHash, RecordedHash};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{
    ANY_CHECKSUM, Discovery, DiscoveryError, Migration, Script, SourceFile, into_script,
};
use crate::core::sql::Dialect;
use crate::core::version::Version;
use md5::{Digest, Md5};
use std::collections::HashMap;

#[path = "liquibase_v9.rs"]
mod v9;

pub fn candidate(rel: &str) -> bool {
    let file = base(rel).to_ascii_lowercase();
    [".sql", ".xml", ".yaml", ".yml"]
        .iter()
        .any(|e| file.ends_with(e))
}

/// Liquibase's normalisation of a changelog path, lowercased for matching.
pub fn normalize_path(path: &str) -> String {
    let p = path
        .trim()
        .trim_start_matches("classpath:")
        .replace('\\', "/");
    let p = match p.as_bytes() {
        [d, b':', ..] if d.is_ascii_alphabetic() => p[2..].to_owned(),
        _ => p,
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/").to_lowercase()
}

/// The canonical id of a changeset.
pub fn key(file: &str, id: &str, author: &str) -> String {
    format!(
        "{}::{}::{}",
        normalize_path(file),
        id.to_lowercase(),
        author.to_lowercase()
    )
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Version 9 checksum of one SQL-bearing change.
pub fn change_checksum(sql: &[u8]) -> String {
    let stripped: Vec<u8> = sql
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    format!("9:{}", md5_hex(&stripped))
}

/// Version 9 checksum of a changeset from its changes' checksums.
pub fn changeset_checksum(changes: &[String]) -> String {
    with_visitors(changes, &[])
}

/// The same with `modifySql` visitors' checksums, which follow the
/// changes', each ended by `;`.
fn with_visitors(changes: &[String], visitors: &[String]) -> String {
    let mut joined: String = changes.iter().map(|c| format!("{c}:")).collect();
    joined.extend(visitors.iter().map(|v| format!("{v};")));
    format!("9:{}", md5_hex(joined.as_bytes()))
}

/// One change of a changeset, as far as its checksum goes.
enum Change {
    /// SQL (`sql`, `sqlFile`, a formatted SQL changeset's body): hashed as
    /// Liquibase hashes SQL.
    Sql(Vec<u8>),
    /// Another change type whose version 9 checksum envgate computed.
    Computed(String),
    /// A change type envgate cannot checksum: the changeset falls back to
    /// first observation.
    Unknown,
}

/// A changeset found in the changelogs.
struct ChangeSet {
    /// The path Liquibase records: the changelog's, or its
    /// `logicalFilePath`.
    file: String,
    id: String,
    author: String,
    changes: Vec<Change>,
    /// Checksums of its `modifySql` visitors.
    visitors: Vec<String>,
    repeatable: bool,
    valid: Vec<String>,
    /// What the matrix shows and hashes for it: the SQL file a `sqlFile`
    /// runs, or the changeset's own text in its changelog.
    body: Body,
}

enum Body {
    File(SourceFile),
    /// `path`: the changelog; `text`: the changeset's own part of it (for
    /// XML and YAML a canonical form of its changes, so that formatting and
    /// the other changesets of the file do not count).
    Text {
        path: String,
        text: String,
    },
}

/// A formatted-SQL changeset being read.
struct Pending<'t> {
    author: String,
    logical: Option<String>,
    id: String,
    repeatable: bool,
    /// Runs on the target's database (its `dbms`).
    applies: bool,
    valid: Vec<String>,
    /// Its lines, the `--changeset` line included.
    lines: Vec<&'t str>,
    body: Vec<&'t str>,
}

struct Reader<'a> {
    files: HashMap<String, &'a SourceFile>,
    dialect: Option<Dialect>,
    out: Vec<ChangeSet>,
    stack: Vec<String>,
}

fn dbms_matches(dbms: Option<&str>, dialect: Option<Dialect>) -> bool {
    let Some(list) = dbms.map(str::trim).filter(|s| !s.is_empty()) else {
        return true;
    };
    let Some(dialect) = dialect else { return true };
    // Liquibase's names for the database (MySQL and MariaDB are one
    // dialect here: either name matches).
    let names: &[&str] = match dialect {
        Dialect::Postgres => &["postgresql"],
        Dialect::Sqlite => &["sqlite"],
        Dialect::Mysql => &["mysql", "mariadb"],
    };
    let mine = |i: &str| names.iter().any(|n| i.eq_ignore_ascii_case(n));
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.eq_ignore_ascii_case("all")) {
        return true;
    }
    if items.iter().any(|i| i.eq_ignore_ascii_case("none")) {
        return false;
    }
    if items.iter().any(|i| i.strip_prefix('!').is_some_and(&mine)) {
        return false;
    }
    let positive: Vec<&&str> = items.iter().filter(|i| !i.starts_with('!')).collect();
    positive.is_empty() || positive.iter().any(|i| mine(i))
}

fn invalid(path: &str, message: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_owned()
    } else {
        format!("{dir}/{rel}")
    }
}

/// `key:value` words of a formatted SQL header or `--changeset` line, keys
/// lowercased (`runOnChange:true`, `logicalFilePath:legacy/a.sql`).
fn attributes(words: &str) -> HashMap<String, String> {
    words
        .split_whitespace()
        .filter_map(|w| w.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect()
}

impl<'a> Reader<'a> {
    fn file(&self, path: &str, from: &str) -> Result<&'a SourceFile, DiscoveryError> {
        self.files
            .get(&normalize_path(path))
            .copied()
            .ok_or_else(|| invalid(from, format!("includes {path}, which does not exist")))
    }

    fn text(f: &SourceFile) -> Result<&str, DiscoveryError> {
        std::str::from_utf8(&f.bytes).map_err(|e| DiscoveryError::NotUtf8 {
            path: f.path.clone(),
            offset: e.valid_up_to(),
        })
    }

    /// Reads a changelog and everything it includes, depth first.
    fn changelog(&mut self, path: &str, from: &str) -> Result<(), DiscoveryError> {
        let file = self.file(path, from)?;
        let key = normalize_path(&file.path);
        if self.stack.contains(&key) {
            return Err(invalid(
                &file.path,
                format!("include cycle: {} → {}", self.stack.join(" → "), key),
            ));
        }
        self.stack.push(key);
        let lower = file.path.to_ascii_lowercase();
        let result = if lower.ends_with(".xml") {
            self.xml(file)
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            self.yaml(file)
        } else {
            self.formatted_sql(file)
        };
        self.stack.pop();
        result
    }

    fn include(
        &mut self,
        from: &SourceFile,
        path: &str,
        relative: bool,
    ) -> Result<(), DiscoveryError> {
        let target = if relative {
            join(dir_of(&from.path), path)
        } else {
            path.to_owned()
        };
        self.changelog(&target, &from.path)
    }

    fn include_all(
        &mut self,
        from: &SourceFile,
        path: &str,
        relative: bool,
    ) -> Result<(), DiscoveryError> {
        let dir = normalize_path(&if relative {
            join(dir_of(&from.path), path)
        } else {
            path.to_owned()
        });
        let mut inside: Vec<String> = self
            .files
            .iter()
            .filter(|(k, f)| k.starts_with(&format!("{dir}/")) && candidate(&f.path))
            .map(|(_, f)| f.path.clone())
            .collect();
        inside.sort();
        if inside.is_empty() {
            return Err(invalid(
                &from.path,
                format!("includeAll {path}: no changelog files there"),
            ));
        }
        for p in inside {
            self.changelog(&p, &from.path)?;
        }
        Ok(())
    }

    fn formatted_sql(&mut self, f: &'a SourceFile) -> Result<(), DiscoveryError> {
        let text = Self::text(f)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let header = text.lines().next().unwrap_or("").trim();
        if !header
            .to_ascii_lowercase()
            .starts_with("--liquibase formatted sql")
        {
            return Err(invalid(
                &f.path,
                "not a changelog: a formatted SQL changelog starts with --liquibase formatted sql",
            ));
        }
        let file_logical =
            attributes(&header["--liquibase formatted sql".len()..]).remove("logicalfilepath");
        let mut current: Option<Pending<'_>> = None;
        let flush = |cur: Option<Pending<'_>>, out: &mut Vec<ChangeSet>| {
            if let Some(p) = cur.filter(|p| p.applies) {
                let sql = p.body.join("\n");
                out.push(ChangeSet {
                    file: p
                        .logical
                        .or_else(|| file_logical.clone())
                        .unwrap_or_else(|| f.path.clone()),
                    id: p.id,
                    author: p.author,
                    changes: vec![Change::Sql(sql.trim().as_bytes().to_vec())],
                    visitors: Vec::new(),
                    repeatable: p.repeatable,
                    valid: p.valid,
                    body: Body::Text {
                        path: f.path.clone(),
                        text: p.lines.join("\n"),
                    },
                });
            }
        };
        for line in text.lines().skip(1) {
            let t = line.trim_start();
            let lower = t.to_ascii_lowercase();
            if lower.starts_with("--changeset") {
                flush(current.take(), &mut self.out);
                let rest = t["--changeset".len()..].trim_start();
                let head = rest
                    .split_whitespace()
                    .next()
                    .ok_or_else(|| invalid(&f.path, format!("malformed changeset line: {t}")))?;
                let (author, id) = head.split_once(':').ok_or_else(|| {
                    invalid(&f.path, format!("changeset '{head}': expected author:id"))
                })?;
                let mut attrs = attributes(&rest[head.len()..]);
                let flag = |k: &str| attrs.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let repeatable = flag("runonchange") || flag("runalways");
                let applies = dbms_matches(attrs.get("dbms").map(String::as_str), self.dialect);
                current = Some(Pending {
                    author: author.trim_matches('"').to_owned(),
                    logical: attrs.remove("logicalfilepath"),
                    id: id.to_owned(),
                    repeatable,
                    applies,
                    valid: Vec::new(),
                    lines: vec![line],
                    body: Vec::new(),
                });
                continue;
            }
            let Some(cur) = current.as_mut() else {
                continue;
            };
            cur.lines.push(line);
            if lower.starts_with("--validchecksum") {
                let v = t["--validchecksum".len()..].trim_start_matches([':', ' ']);
                cur.valid.push(v.trim().to_owned());
                continue;
            }
            let meta = [
                "--rollback",
                "--comment",
                "--preconditions",
                "--precondition-",
            ];
            if meta.iter().any(|m| lower.starts_with(m)) {
                continue;
            }
            cur.body.push(line);
        }
        flush(current.take(), &mut self.out);
        Ok(())
    }

    fn xml(&mut self, f: &'a SourceFile) -> Result<(), DiscoveryError> {
        let text = Self::text(f)?;
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| invalid(&f.path, format!("invalid XML: {e}")))?;
        let file_logical = doc
            .root_element()
            .attribute("logicalFilePath")
            .map(str::to_owned);
        for node in doc.root_element().children().filter(|n| n.is_element()) {
            let attr = |n: &roxmltree::Node, k: &str| n.attribute(k).map(str::to_owned);
            let truthy = |n: &roxmltree::Node, k: &str| {
                n.attribute(k)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            };
            match node.tag_name().name() {
                "include" => {
                    let file = attr(&node, "file")
                        .ok_or_else(|| invalid(&f.path, "<include> without file"))?;
                    self.include(f, &file, truthy(&node, "relativeToChangelogFile"))?;
                }
                "includeAll" => {
                    let path = attr(&node, "path")
                        .ok_or_else(|| invalid(&f.path, "<includeAll> without path"))?;
                    self.include_all(f, &path, truthy(&node, "relativeToChangelogFile"))?;
                }
                "changeSet" => {
                    if !dbms_matches(node.attribute("dbms"), self.dialect) {
                        continue;
                    }
                    let id = attr(&node, "id")
                        .ok_or_else(|| invalid(&f.path, "<changeSet> without id"))?;
                    let author = attr(&node, "author").unwrap_or_default();
                    let mut changes = Vec::new();
                    let mut valid = Vec::new();
                    let mut sql_files = Vec::new();
                    let mut visitors = Vec::new();
                    let mut canonical = String::new();
                    for c in node.children().filter(|n| n.is_element()) {
                        let name = c.tag_name().name();
                        match name {
                            "validCheckSum" => valid.push(c.text().unwrap_or("").trim().to_owned()),
                            "comment" | "rollback" | "preConditions" => continue,
                            "modifySql" => match v9::xml_modify_sql(c) {
                                Some(v) => visitors.extend(v),
                                None => changes.push(Change::Unknown),
                            },
                            // Changes for another database are left out of
                            // the checksum too.
                            "sql" | "sqlFile" | "insert" | "createProcedure"
                                if !dbms_matches(c.attribute("dbms"), self.dialect) =>
                            {
                                continue;
                            }
                            "sql" => {
                                // Its own text only: a nested <comment> is not SQL.
                                let sql: String = c
                                    .children()
                                    .filter(|d| d.is_text())
                                    .filter_map(|d| d.text())
                                    .collect();
                                changes.push(Change::Sql(sql.trim().as_bytes().to_vec()));
                            }
                            "sqlFile" => {
                                let path = attr(&c, "path")
                                    .ok_or_else(|| invalid(&f.path, "<sqlFile> without path"))?;
                                let target = if truthy(&c, "relativeToChangelogFile") {
                                    join(dir_of(&f.path), &path)
                                } else {
                                    path
                                };
                                let sql_file = self.file(&target, &f.path)?;
                                changes.push(Change::Sql(sql_file.bytes.clone()));
                                sql_files.push(sql_file);
                            }
                            _ => changes
                                .push(v9::xml_change(c).map_or(Change::Unknown, Change::Computed)),
                        }
                        canonical_xml(c, &mut canonical);
                        canonical.push('\n');
                    }
                    let body = match (sql_files.as_slice(), changes.len()) {
                        ([only], 1) => Body::File((*only).clone()),
                        _ => {
                            for sql_file in sql_files {
                                canonical.push_str(&String::from_utf8_lossy(&sql_file.bytes));
                                canonical.push('\n');
                            }
                            Body::Text {
                                path: f.path.clone(),
                                text: canonical,
                            }
                        }
                    };
                    self.out.push(ChangeSet {
                        file: attr(&node, "logicalFilePath")
                            .or_else(|| file_logical.clone())
                            .unwrap_or_else(|| f.path.clone()),
                        id,
                        author,
                        changes,
                        visitors,
                        repeatable: truthy(&node, "runOnChange") || truthy(&node, "runAlways"),
                        valid,
                        body,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn yaml(&mut self, f: &'a SourceFile) -> Result<(), DiscoveryError> {
        use yaml_rust2::{Yaml, YamlLoader};
        let text = Self::text(f)?;
        let docs = YamlLoader::load_from_str(text)
            .map_err(|e| invalid(&f.path, format!("invalid YAML: {e}")))?;
        let Some(list) = docs.first().and_then(|d| d["databaseChangeLog"].as_vec()) else {
            return Err(invalid(&f.path, "no databaseChangeLog list"));
        };
        let s = |y: &Yaml| {
            y.as_str()
                .map(str::to_owned)
                .or_else(|| y.as_i64().map(|i| i.to_string()))
        };
        let truthy = |y: &Yaml| {
            y.as_bool().unwrap_or(false)
                || y.as_str().is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let mut file_logical = None;
        for item in list {
            if let Some(l) = s(&item["logicalFilePath"]) {
                file_logical = Some(l);
            } else if let Some(inc) = item["include"].as_hash().map(|_| &item["include"]) {
                let file =
                    s(&inc["file"]).ok_or_else(|| invalid(&f.path, "include without file"))?;
                self.include(f, &file, truthy(&inc["relativeToChangelogFile"]))?;
            } else if item["includeAll"].as_hash().is_some() {
                let inc = &item["includeAll"];
                let path =
                    s(&inc["path"]).ok_or_else(|| invalid(&f.path, "includeAll without path"))?;
                self.include_all(f, &path, truthy(&inc["relativeToChangelogFile"]))?;
            } else if item["changeSet"].as_hash().is_some() {
                let cs = &item["changeSet"];
                if !dbms_matches(cs["dbms"].as_str(), self.dialect) {
                    continue;
                }
                let id = s(&cs["id"]).ok_or_else(|| invalid(&f.path, "changeSet without id"))?;
                let mut changes = Vec::new();
                let mut sql_files = Vec::new();
                let mut canonical = String::new();
                for change in cs["changes"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
                    let Some((k, v)) = change.as_hash().and_then(|h| h.iter().next()) else {
                        continue;
                    };
                    match k.as_str().unwrap_or("") {
                        "sql" | "sqlFile" | "insert" | "createProcedure"
                            if !dbms_matches(v["dbms"].as_str(), self.dialect) =>
                        {
                            continue;
                        }
                        "sql" => {
                            let sql = s(&v["sql"]).or_else(|| s(v)).unwrap_or_default();
                            changes.push(Change::Sql(sql.trim().as_bytes().to_vec()));
                        }
                        "sqlFile" => {
                            let path = s(&v["path"])
                                .ok_or_else(|| invalid(&f.path, "sqlFile without path"))?;
                            let target = if truthy(&v["relativeToChangelogFile"]) {
                                join(dir_of(&f.path), &path)
                            } else {
                                path
                            };
                            let sql_file = self.file(&target, &f.path)?;
                            changes.push(Change::Sql(sql_file.bytes.clone()));
                            sql_files.push(sql_file);
                        }
                        other => changes.push(
                            v9::yaml_change(other, v).map_or(Change::Unknown, Change::Computed),
                        ),
                    }
                    canonical_yaml(change, &mut canonical);
                    canonical.push('\n');
                }
                let body = match (sql_files.as_slice(), changes.len()) {
                    ([only], 1) => Body::File((*only).clone()),
                    _ => {
                        for sql_file in sql_files {
                            canonical.push_str(&String::from_utf8_lossy(&sql_file.bytes));
                            canonical.push('\n');
                        }
                        Body::Text {
                            path: f.path.clone(),
                            text: canonical,
                        }
                    }
                };
                let valid = cs["validCheckSum"]
                    .as_vec()
                    .map(|v| v.iter().filter_map(s).collect())
                    .or_else(|| s(&cs["validCheckSum"]).map(|v| vec![v]))
                    .unwrap_or_default();
                self.out.push(ChangeSet {
                    file: s(&cs["logicalFilePath"])
                        .or_else(|| file_logical.clone())
                        .unwrap_or_else(|| f.path.clone()),
                    id,
                    author: s(&cs["author"]).unwrap_or_default(),
                    changes,
                    visitors: Vec::new(),
                    repeatable: truthy(&cs["runOnChange"]) || truthy(&cs["runAlways"]),
                    valid,
                    body,
                });
            }
        }
        Ok(())
    }
}

/// A canonical text of one XML change: element and attribute names, the
/// attributes sorted, text with its runs of white space made one space, no
/// comments. Layout and the other changesets of the file do not change it.
fn canonical_xml(node: roxmltree::Node<'_, '_>, out: &mut String) {
    use std::fmt::Write;
    let name = node.tag_name().name();
    out.push('<');
    out.push_str(name);
    let mut attrs: Vec<(&str, &str)> = node.attributes().map(|a| (a.name(), a.value())).collect();
    attrs.sort_unstable();
    for (k, v) in attrs {
        let _ = write!(out, " {k}={v:?}");
    }
    out.push('>');
    for child in node.children() {
        if child.is_element() {
            canonical_xml(child, out);
        } else if let Some(text) = child.is_text().then(|| child.text()).flatten() {
            let words: Vec<&str> = text.split_whitespace().collect();
            if !words.is_empty() {
                let _ = write!(out, "{:?}", words.join(" "));
            }
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// The same for a YAML change: mappings with sorted keys, strings quoted.
fn canonical_yaml(y: &yaml_rust2::Yaml, out: &mut String) {
    use std::fmt::Write;
    use yaml_rust2::Yaml;
    match y {
        Yaml::Hash(h) => {
            let mut entries: Vec<(String, &Yaml)> = h
                .iter()
                .map(|(k, v)| {
                    let mut key = String::new();
                    canonical_yaml(k, &mut key);
                    (key, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&k);
                out.push_str(": ");
                canonical_yaml(v, out);
            }
            out.push('}');
        }
        Yaml::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                canonical_yaml(v, out);
            }
            out.push(']');
        }
        Yaml::String(t) | Yaml::Real(t) => {
            let _ = write!(out, "{t:?}");
        }
        Yaml::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Yaml::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        _ => out.push_str("null"),
    }
}

/// Reads the changesets, in changelog order. `layout.root` names the root
/// changelog, or a directory whose formatted SQL changelogs are read in
/// name order.
pub fn discover(files: Vec<SourceFile>, layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut reader = Reader {
        files: files.iter().map(|f| (normalize_path(&f.path), f)).collect(),
        dialect: layout.dialect,
        out: Vec::new(),
        stack: Vec::new(),
    };
    let root = layout.root.trim_end_matches('/');
    if reader.files.contains_key(&normalize_path(root)) {
        reader.changelog(root, root)?;
    } else {
        let mut sql: Vec<&SourceFile> = files
            .iter()
            .filter(|f| f.path.to_ascii_lowercase().ends_with(".sql"))
            .collect();
        sql.sort_by(|a, b| a.path.cmp(&b.path));
        for f in sql {
            reader.changelog(&f.path, root)?;
        }
    }
    let mut migrations = Vec::with_capacity(reader.out.len());
    let mut seen: HashMap<String, String> = HashMap::new();
    for (pos, cs) in reader.out.into_iter().enumerate() {
        let id = key(&cs.file, &cs.id, &cs.author);
        let here = match &cs.body {
            Body::File(f) => f.path.clone(),
            Body::Text { path, .. } => path.clone(),
        };
        if let Some(first) = seen.insert(id.clone(), here.clone()) {
            return Err(DiscoveryError::DuplicateVersion {
                version: format!("{}::{}::{}", cs.file, cs.id, cs.author),
                first,
                second: here,
            });
        }
        let any = cs
            .valid
            .iter()
            .any(|v| ["any", "all", "*"].contains(&v.to_ascii_lowercase().as_str()));
        let checksums = if any {
            vec![ANY_CHECKSUM.to_owned()]
        } else if cs.changes.iter().any(|c| matches!(c, Change::Unknown)) {
            Vec::new() // first observation decides
        } else {
            let changes: Vec<String> = cs
                .changes
                .iter()
                .map(|c| match c {
                    Change::Sql(sql) => change_checksum(sql),
                    Change::Computed(sum) => sum.clone(),
                    Change::Unknown => unreachable!("handled above"),
                })
                .collect();
            let mut v = vec![with_visitors(&changes, &cs.visitors)];
            v.extend(cs.valid.iter().cloned());
            v
        };
        let display = format!("{}::{}::{}", cs.file, cs.id, cs.author);
        let up = match cs.body {
            Body::File(f) => into_script(f)?,
            Body::Text { path, text } => Script {
                hash: ContentHash::of(text.as_bytes()),
                path,
                sql: text,
            },
        };
        migrations.push(Migration {
            id,
            version: Version::ordinal(&display, pos as u32),
            name: String::new(),
            up,
            down: None,
            repeatable: cs.repeatable,
            tool_checksums: checksums,
        });
    }
    Ok(Discovery {
        migrations,
        ignored: Vec::new(),
    })
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT id, author, filename, exectype, md5sum, {} FROM {table} ORDER BY dateexecuted, orderexecuted",
        time_sql("dateexecuted", dialect)
    )
}

pub fn ledger(rows: Vec<TextRow>, _migrations: &[Migration]) -> Result<Vec<LedgerRow>, String> {
    let mut out: Vec<LedgerRow> = Vec::new();
    for r in &rows {
        let id = key(
            col(r, 2, "filename")?,
            col(r, 0, "id")?,
            col(r, 1, "author")?,
        );
        let exectype = col(r, 3, "exectype")?.to_ascii_uppercase();
        let hash = match opt(r, 4) {
            Some(v) if v.starts_with("9:") => RecordedHash::Tool(v),
            Some(v) => RecordedHash::Unverifiable(v),
            None => RecordedHash::None,
        };
        let row = LedgerRow {
            via: None,
            version: id,
            name: String::new(),
            hash,
            applied_at: opt(r, 5),
            success: exectype != "FAILED",
            error: None,
        };
        // Rows have no key: the last one for a changeset stands.
        match out.iter_mut().find(|x| x.version == row.version) {
            Some(existing) => *existing = row,
            None => out.push(row),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_checksum_vectors() {
        // liquibase/liquibase: liquibase-integration-tests/src/test/groovy/liquibase/command/core/
        // UpgradeChecksumVersionIntegrationTest.groovy with
        // changelogs/h2/checksum/dbms-filter-changelog.xml.
        // Changeset 1: its only change is filtered out by dbms.
        assert_eq!(
            changeset_checksum(&[]),
            "9:d41d8cd98f00b204e9800998ecf8427e"
        );
        // Changeset 2: one sqlFile "create table thisShouldRun(id int)\n".
        let c = change_checksum(b"create table thisShouldRun(id int)\n");
        assert_eq!(
            changeset_checksum(&[c]),
            "9:62336a615e62e89c9d86128d1ca60ecf"
        );
        // Changeset 3: <sql dbms="h2">select 1</sql>.
        assert_eq!(
            changeset_checksum(&[change_checksum(b"select 1")]),
            "9:3b78b9910981c62ca27148640fad7bc2"
        );
        // LEDGERS.md §2, derived.
        let c = change_checksum(b"CREATE TABLE t (id int);");
        assert_eq!(c, "9:8171118a92c9f91a49e8da76026dcde6");
        assert_eq!(
            changeset_checksum(&[c]),
            "9:6d4549ab668f0fa3a148fb9da6d22712"
        );
    }

    #[test]
    fn paths_normalise_like_liquibase() {
        assert_eq!(
            normalize_path("classpath:/db/./Changelog/../changelog/x.SQL"),
            "db/changelog/x.sql"
        );
        assert_eq!(normalize_path("C:\\work\\db\\x.xml"), "work/db/x.xml");
        assert_eq!(key("db/x.sql", "ID1", "Alice"), "db/x.sql::id1::alice");
    }

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn ids(d: &Discovery) -> Vec<&str> {
        d.migrations.iter().map(|m| m.id()).collect()
    }

    #[test]
    fn formatted_sql_xml_and_yaml() {
        let files = vec![
            file(
                "db/master.xml",
                r#"<?xml version="1.0"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">
  <include file="changes/001.sql" relativeToChangelogFile="true"/>
  <changeSet id="2" author="bob">
    <sqlFile path="db/sql/002.sql"/>
  </changeSet>
  <changeSet id="3" author="bob" dbms="oracle"><sql>select 1 from dual</sql></changeSet>
  <includeAll path="more/" relativeToChangelogFile="true"/>
  <include file="db/extra.yaml"/>
</databaseChangeLog>"#,
            ),
            file(
                "db/changes/001.sql",
                "--liquibase formatted sql\n--changeset alice:1\nCREATE TABLE t (id int);\n--rollback DROP TABLE t;\n\n--changeset alice:1b runOnChange:true\n-- a comment counts\nSELECT 1;\n",
            ),
            file("db/sql/002.sql", "create table thisShouldRun(id int)\n"),
            file(
                "db/more/b.sql",
                "--liquibase formatted sql\n--changeset carol:4\nSELECT 4;\n",
            ),
            file(
                "db/extra.yaml",
                "databaseChangeLog:\n  - changeSet:\n      id: 5\n      author: dan\n      changes:\n        - sql:\n            sql: select 1\n",
            ),
        ];
        let d = discover(
            files,
            &Layout {
                root: "db/master.xml",
                dialect: Some(Dialect::Postgres),
            },
        )
        .unwrap();
        assert_eq!(
            ids(&d),
            [
                "db/changes/001.sql::1::alice",
                "db/changes/001.sql::1b::alice",
                "db/master.xml::2::bob",
                "db/more/b.sql::4::carol",
                "db/extra.yaml::5::dan"
            ]
        );
        assert_eq!(
            d.migrations[0].tool_checksums,
            ["9:6d4549ab668f0fa3a148fb9da6d22712"]
        );
        assert!(d.migrations[1].repeatable);
        assert_eq!(
            d.migrations[2].tool_checksums,
            ["9:62336a615e62e89c9d86128d1ca60ecf"]
        );
        assert_eq!(d.migrations[2].up.path, "db/sql/002.sql");
        assert_eq!(
            d.migrations[4].tool_checksums,
            ["9:3b78b9910981c62ca27148640fad7bc2"]
        );
    }

    #[test]
    fn logical_file_paths_name_changesets_as_liquibase_records_them() {
        // What the real Liquibase 4.28 stored as FILENAME for each form.
        let files = vec![
            file(
                "changelog.xml",
                r#"<databaseChangeLog>
  <include file="c.sql"/><include file="d.sql"/><include file="e.yaml"/><include file="f.yaml"/>
  <changeSet id="b-1" author="t" logicalFilePath="cs/level.xml"><tagDatabase tag="x"/></changeSet>
</databaseChangeLog>"#,
            ),
            file(
                "c.sql",
                "--liquibase formatted sql logicalFilePath:x/y.sql\n--changeset t:c-1\nSELECT 1;\n",
            ),
            file(
                "d.sql",
                "--liquibase formatted sql\n--changeset t:d-1 logicalFilePath:z/w.sql\nSELECT 1;\n--changeset t:d-2\nSELECT 2;\n",
            ),
            file(
                "e.yaml",
                "databaseChangeLog:\n  - logicalFilePath: yaml/e.yaml\n  - changeSet:\n      id: e-1\n      author: t\n      changes:\n        - tagDatabase:\n            tag: e\n",
            ),
            file(
                "f.yaml",
                "databaseChangeLog:\n  - changeSet:\n      id: f-1\n      author: t\n      logicalFilePath: yaml/cs-level.yaml\n      changes:\n        - tagDatabase:\n            tag: f\n",
            ),
        ];
        let d = discover(
            files,
            &Layout {
                root: "changelog.xml",
                dialect: Some(Dialect::Postgres),
            },
        )
        .unwrap();
        assert_eq!(
            ids(&d),
            [
                "x/y.sql::c-1::t",
                "z/w.sql::d-1::t",
                "d.sql::d-2::t",
                "yaml/e.yaml::e-1::t",
                "yaml/cs-level.yaml::f-1::t",
                "cs/level.xml::b-1::t",
            ]
        );
        // The matrix still shows the file the changeset is in.
        assert_eq!(d.migrations[0].up.path, "c.sql");
    }

    #[test]
    fn include_cycles_and_missing_files_are_named() {
        let files = vec![
            file(
                "a.xml",
                r#"<databaseChangeLog><include file="b.xml"/></databaseChangeLog>"#,
            ),
            file(
                "b.xml",
                r#"<databaseChangeLog><include file="a.xml"/></databaseChangeLog>"#,
            ),
        ];
        let e = discover(
            files,
            &Layout {
                root: "a.xml",
                dialect: None,
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "a.xml: include cycle: a.xml → b.xml → a.xml");
        let files = vec![file(
            "a.xml",
            r#"<databaseChangeLog><include file="nope.sql"/></databaseChangeLog>"#,
        )];
        let e = discover(
            files,
            &Layout {
                root: "a.xml",
                dialect: None,
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "a.xml: includes nope.sql, which does not exist");
    }
}
