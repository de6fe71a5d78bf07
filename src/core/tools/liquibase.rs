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
use crate::core::checksum::RecordedHash;
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, Migration, SourceFile, into_script};
use crate::core::sql::Dialect;
use crate::core::version::Version;
use md5::{Digest, Md5};
use std::collections::HashMap;

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
    let joined: String = changes.iter().map(|c| format!("{c}:")).collect();
    format!("9:{}", md5_hex(joined.as_bytes()))
}

/// A changeset found in the changelogs.
struct ChangeSet {
    file: String,
    id: String,
    author: String,
    /// The SQL of its changes (None: a change type envgate cannot hash).
    changes: Vec<Option<Vec<u8>>>,
    repeatable: bool,
    valid: Vec<String>,
    /// The file holding its SQL, for the matrix row.
    source: SourceFile,
}

/// A formatted-SQL changeset being read.
struct Pending<'t> {
    author: String,
    id: String,
    repeatable: bool,
    /// Runs on the target's database (its `dbms`).
    applies: bool,
    valid: Vec<String>,
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
    let me = match dialect {
        Dialect::Postgres => "postgresql",
        Dialect::Sqlite => "sqlite",
    };
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items
        .iter()
        .any(|i| i.eq_ignore_ascii_case(&format!("!{me}")))
    {
        return false;
    }
    let positive: Vec<&&str> = items.iter().filter(|i| !i.starts_with('!')).collect();
    positive.is_empty()
        || positive
            .iter()
            .any(|i| i.eq_ignore_ascii_case(me) || i.eq_ignore_ascii_case("all"))
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
        if !text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .starts_with("--liquibase formatted sql")
        {
            return Err(invalid(
                &f.path,
                "not a changelog: a formatted SQL changelog starts with --liquibase formatted sql",
            ));
        }
        let mut current: Option<Pending<'_>> = None;
        let flush = |cur: Option<Pending<'_>>, out: &mut Vec<ChangeSet>| {
            if let Some(p) = cur.filter(|p| p.applies) {
                let sql = p.body.join("\n");
                out.push(ChangeSet {
                    file: f.path.clone(),
                    id: p.id,
                    author: p.author,
                    changes: vec![Some(sql.trim().as_bytes().to_vec())],
                    repeatable: p.repeatable,
                    valid: p.valid,
                    source: f.clone(),
                });
            }
        };
        for line in text.lines().skip(1) {
            let t = line.trim_start();
            let lower = t.to_ascii_lowercase();
            if lower.starts_with("--changeset") {
                flush(current.take(), &mut self.out);
                let mut words = t["--changeset".len()..].split_whitespace();
                let head = words
                    .next()
                    .ok_or_else(|| invalid(&f.path, format!("malformed changeset line: {t}")))?;
                let (author, id) = head.split_once(':').ok_or_else(|| {
                    invalid(&f.path, format!("changeset '{head}': expected author:id"))
                })?;
                let attrs: HashMap<String, String> = words
                    .filter_map(|w| w.split_once(':'))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                    .collect();
                let flag = |k: &str| attrs.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
                current = Some(Pending {
                    author: author.trim_matches('"').to_owned(),
                    id: id.to_owned(),
                    repeatable: flag("runonchange") || flag("runalways"),
                    applies: dbms_matches(attrs.get("dbms").map(String::as_str), self.dialect),
                    valid: Vec::new(),
                    body: Vec::new(),
                });
                continue;
            }
            let Some(cur) = current.as_mut() else {
                continue;
            };
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
                    let mut source = f.clone();
                    for c in node.children().filter(|n| n.is_element()) {
                        match c.tag_name().name() {
                            "validCheckSum" => valid.push(c.text().unwrap_or("").trim().to_owned()),
                            "comment" | "rollback" | "preConditions" => {}
                            "sql" if dbms_matches(c.attribute("dbms"), self.dialect) => {
                                let sql: String =
                                    c.descendants().filter_map(|d| d.text()).collect();
                                changes.push(Some(sql.trim().as_bytes().to_vec()));
                            }
                            "sqlFile" if dbms_matches(c.attribute("dbms"), self.dialect) => {
                                let path = attr(&c, "path")
                                    .ok_or_else(|| invalid(&f.path, "<sqlFile> without path"))?;
                                let target = if truthy(&c, "relativeToChangelogFile") {
                                    join(dir_of(&f.path), &path)
                                } else {
                                    path
                                };
                                let sql_file = self.file(&target, &f.path)?;
                                changes.push(Some(sql_file.bytes.clone()));
                                source = sql_file.clone();
                            }
                            "sql" | "sqlFile" => {}
                            _ => changes.push(None),
                        }
                    }
                    self.out.push(ChangeSet {
                        file: f.path.clone(),
                        id,
                        author,
                        changes,
                        repeatable: truthy(&node, "runOnChange") || truthy(&node, "runAlways"),
                        valid,
                        source,
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
        for item in list {
            if let Some(inc) = item["include"].as_hash().map(|_| &item["include"]) {
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
                let mut source = f.clone();
                for change in cs["changes"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
                    let Some((k, v)) = change.as_hash().and_then(|h| h.iter().next()) else {
                        continue;
                    };
                    match k.as_str().unwrap_or("") {
                        "sql" => {
                            if !dbms_matches(v["dbms"].as_str(), self.dialect) {
                                continue;
                            }
                            let sql = s(&v["sql"]).or_else(|| s(v)).unwrap_or_default();
                            changes.push(Some(sql.trim().as_bytes().to_vec()));
                        }
                        "sqlFile" => {
                            if !dbms_matches(v["dbms"].as_str(), self.dialect) {
                                continue;
                            }
                            let path = s(&v["path"])
                                .ok_or_else(|| invalid(&f.path, "sqlFile without path"))?;
                            let target = if truthy(&v["relativeToChangelogFile"]) {
                                join(dir_of(&f.path), &path)
                            } else {
                                path
                            };
                            let sql_file = self.file(&target, &f.path)?;
                            changes.push(Some(sql_file.bytes.clone()));
                            source = sql_file.clone();
                        }
                        _ => changes.push(None),
                    }
                }
                let valid = cs["validCheckSum"]
                    .as_vec()
                    .map(|v| v.iter().filter_map(s).collect())
                    .or_else(|| s(&cs["validCheckSum"]).map(|v| vec![v]))
                    .unwrap_or_default();
                self.out.push(ChangeSet {
                    file: f.path.clone(),
                    id,
                    author: s(&cs["author"]).unwrap_or_default(),
                    changes,
                    repeatable: truthy(&cs["runOnChange"]) || truthy(&cs["runAlways"]),
                    valid,
                    source,
                });
            }
        }
        Ok(())
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
        if let Some(first) = seen.insert(id.clone(), cs.file.clone()) {
            return Err(DiscoveryError::DuplicateVersion {
                version: format!("{}::{}", cs.id, cs.author),
                first,
                second: cs.file,
            });
        }
        let any = cs
            .valid
            .iter()
            .any(|v| ["any", "all", "*"].contains(&v.to_ascii_lowercase().as_str()));
        let checksums = if any || cs.changes.iter().any(Option::is_none) {
            Vec::new() // cannot (or need not) be verified
        } else {
            let changes: Vec<String> = cs
                .changes
                .iter()
                .flatten()
                .map(|sql| change_checksum(sql))
                .collect();
            let mut v = vec![changeset_checksum(&changes)];
            v.extend(cs.valid.iter().cloned());
            v
        };
        let display = format!("{}::{}::{}", cs.file, cs.id, cs.author);
        migrations.push(Migration {
            id,
            version: Version::ordinal(&display, pos as u32),
            name: String::new(),
            up: into_script(cs.source)?,
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
