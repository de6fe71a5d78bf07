//! Discovery of migrations in envgate's own layout.
//!
//! ```text
//! migrations/
//!   20260418_001_users.sql          up: <version>_<name>.sql
//!   20260418_001_users.down.sql     optional down for the same stem
//!   README.md                       ignored (listed with `-v`)
//! ```
//!
//! Discovery is pure: it takes the files as `(path, bytes)` pairs, so the CLI
//! (reading a directory) and the bot (reading a repository through the forge
//! API) share it.

use super::checksum::ContentHash;
use super::version::Version;
use thiserror::Error;

/// One file handed to discovery. `path` is the path users see (relative to
/// the project, `/`-separated), e.g. `migrations/20260418_001_users.sql`.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The SQL of one direction of a migration.
#[derive(Clone, Debug)]
pub struct Script {
    pub path: String,
    pub sql: String,
    pub hash: ContentHash,
}

#[derive(Clone, Debug)]
pub struct Migration {
    /// How the ledger identifies it, in the canonical form both the layout
    /// and the ledger reader produce (for envgate's layout: the version).
    pub id: String,
    /// Where it sorts, and the version shown.
    pub version: Version,
    pub name: String,
    pub up: Script,
    pub down: Option<Script>,
    /// Re-run whenever its content changes (Flyway `R__`, Liquibase
    /// `runOnChange`): a changed checksum means "pending again", not drift.
    pub repeatable: bool,
    /// The checksums the migration's own tool would record for today's file
    /// (several when the tool accepts variants); empty when the tool records
    /// none or envgate cannot recompute it (then a first observation
    /// decides), or [`ANY_CHECKSUM`] when the tool accepts whatever it
    /// recorded (Liquibase's `validCheckSum ANY`).
    pub tool_checksums: Vec<String>,
}

/// In [`Migration::tool_checksums`]: every recorded checksum is valid.
pub const ANY_CHECKSUM: &str = "*";

impl Migration {
    /// The identifier the ledger uses.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A migration of envgate's own layout.
    pub fn envgate(version: Version, name: String, up: Script, down: Option<Script>) -> Migration {
        Migration {
            id: version.as_str().to_owned(),
            version,
            name,
            up,
            down,
            repeatable: false,
            tool_checksums: Vec::new(),
        }
    }
}

/// A file in the migrations directory that is not a migration, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by version.
    pub migrations: Vec<Migration>,
    pub ignored: Vec<Ignored>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiscoveryError {
    #[error("{second}: version {version} is already used by {first}")]
    DuplicateVersion {
        version: String,
        first: String,
        second: String,
    },
    #[error("{path}: down migration without an up migration (expected {expected})")]
    DownWithoutUp { path: String, expected: String },
    #[error("{path}: not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { path: String, offset: usize },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// What a file name means in envgate's layout.
#[derive(Debug, PartialEq, Eq)]
pub enum FileKind {
    Up { version: Version, name: String },
    Down { version: Version, name: String },
    Ignored(String),
}

const EXPECTED: &str = "expected <version>_<name>.sql or <version>_<name>.down.sql, \
                        where <version> is digits and underscores (e.g. 20260418_001_users.sql)";

/// Classifies a bare file name (no directory part).
pub fn classify(file_name: &str) -> FileKind {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return FileKind::Ignored("not a .sql file".into());
    };
    let (stem, down) = match stem.strip_suffix(".down") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    if stem.ends_with(".up") {
        return FileKind::Ignored(format!(
            "envgate's layout has no .up.sql suffix: name the up migration <version>_<name>.sql ({EXPECTED})"
        ));
    }
    match split_stem(stem) {
        Some((version, name)) if down => FileKind::Down { version, name },
        Some((version, name)) => FileKind::Up { version, name },
        None => FileKind::Ignored(format!("not a migration file name: {EXPECTED}")),
    }
}

/// `20260418_001_add_users` → (`20260418_001`, `add_users`): the version is
/// the leading run of digit groups, the name is the rest and must not be
/// empty.
fn split_stem(stem: &str) -> Option<(Version, String)> {
    let mut version_len = 0;
    for (i, token) in stem.split('_').enumerate() {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        version_len += token.len() + usize::from(i > 0);
    }
    if version_len == 0 || version_len >= stem.len() {
        return None;
    }
    let name = &stem[version_len + 1..];
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return None;
    }
    Some((Version::parse(&stem[..version_len])?, name.to_owned()))
}

/// The directory part and file name of a `/`-separated path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether discovery would read this file: the loader uses it to skip reading
/// files that can only be ignored.
pub fn is_candidate(file_name: &str) -> bool {
    !matches!(classify(file_name), FileKind::Ignored(_))
}

pub fn into_script(file: SourceFile) -> Result<Script, DiscoveryError> {
    let hash = ContentHash::of(&file.bytes);
    script_with(file, hash)
}

/// A script from a file whose content hash is `hash`.
fn script_with(file: SourceFile, hash: ContentHash) -> Result<Script, DiscoveryError> {
    let mut sql = String::from_utf8(file.bytes).map_err(|e| DiscoveryError::NotUtf8 {
        path: file.path.clone(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if sql.starts_with('\u{feff}') {
        // The hash already ignores it; runners should never see it either.
        sql.drain(..'\u{feff}'.len_utf8());
    }
    Ok(Script {
        path: file.path,
        sql,
        hash,
    })
}

/// Turns the files of a migrations directory into migrations sorted by
/// version. Files whose names are not migrations are returned as ignored.
pub fn discover(files: Vec<SourceFile>) -> Result<Discovery, DiscoveryError> {
    discover_with(files, into_script)
}

/// The same with every file's hash already taken (by the reader, or from
/// the hash cache, which hands a file over without its bytes: it becomes a
/// script with its hash and no SQL text — for showing states, never for
/// running anything).
pub fn discover_known(files: Vec<(SourceFile, ContentHash)>) -> Result<Discovery, DiscoveryError> {
    discover_with(files, |(file, hash)| script_with(file, hash))
}

/// Something discovery can take as a file.
trait Named {
    fn path(&self) -> &str;
}

impl Named for SourceFile {
    fn path(&self) -> &str {
        &self.path
    }
}

impl Named for (SourceFile, ContentHash) {
    fn path(&self) -> &str {
        &self.0.path
    }
}

fn discover_with<F: Named>(
    files: Vec<F>,
    into_script: impl Fn(F) -> Result<Script, DiscoveryError>,
) -> Result<Discovery, DiscoveryError> {
    let mut ups: Vec<(Version, String, F)> = Vec::with_capacity(files.len());
    let mut downs: Vec<(Version, String, F)> = Vec::new();
    let mut ignored = Vec::new();
    for file in files {
        match classify(file_name(file.path())) {
            FileKind::Up { version, name } => ups.push((version, name, file)),
            FileKind::Down { version, name } => downs.push((version, name, file)),
            FileKind::Ignored(reason) => ignored.push(Ignored {
                path: file.path().to_owned(),
                reason,
            }),
        }
    }
    // Sorting by (version, path) makes duplicate reports deterministic.
    let by_version = |a: &(Version, String, F), b: &(Version, String, F)| {
        a.0.cmp(&b.0).then_with(|| a.2.path().cmp(b.2.path()))
    };
    ups.sort_unstable_by(by_version);
    downs.sort_unstable_by(by_version);
    for list in [&ups, &downs] {
        if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DiscoveryError::DuplicateVersion {
                version: w[1].0.to_string(),
                first: w[0].2.path().to_owned(),
                second: w[1].2.path().to_owned(),
            });
        }
    }
    // Pair each down with its up (both lists are sorted by version).
    let mut downs = downs.into_iter().peekable();
    let mut migrations = Vec::with_capacity(ups.len());
    let mut orphan = None;
    for (version, name, file) in ups {
        while let Some(d) = downs.next_if(|d| d.0 < version) {
            orphan.get_or_insert(d);
        }
        let down = match downs.next_if(|d| d.0 == version) {
            Some(d) if d.1 == name => Some(d.2),
            Some(d) => {
                orphan.get_or_insert(d);
                None
            }
            None => None,
        };
        migrations.push((version, name, file, down));
    }
    if let Some((version, name, file)) = orphan.or_else(|| downs.next()) {
        let path = file.path().to_owned();
        let dir_end = path.len() - file_name(&path).len();
        return Err(DiscoveryError::DownWithoutUp {
            expected: format!("{}{version}_{name}.sql", &path[..dir_end]),
            path,
        });
    }
    let migrations = migrations
        .into_iter()
        .map(|(version, name, up, down)| {
            Ok(Migration::envgate(
                version,
                name,
                into_script(up)?,
                down.map(&into_script).transpose()?,
            ))
        })
        .collect::<Result<Vec<_>, DiscoveryError>>()?;
    ignored.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Discovery {
        migrations,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, body: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_names() {
        let up = |v: &str, n: &str| FileKind::Up {
            version: Version::parse(v).unwrap(),
            name: n.into(),
        };
        assert_eq!(
            classify("20260418_001_users.sql"),
            up("20260418_001", "users")
        );
        assert_eq!(
            classify("20260418120000_add_users.sql"),
            up("20260418120000", "add_users")
        );
        assert_eq!(classify("1_init.sql"), up("1", "init"));
        assert_eq!(
            classify("20260418_001_2fa_codes.sql"),
            up("20260418_001", "2fa_codes")
        );
        assert_eq!(
            classify("20260418_001_audit-idx.sql"),
            up("20260418_001", "audit-idx")
        );
        assert_eq!(
            classify("20260418_001_users.down.sql"),
            FileKind::Down {
                version: Version::parse("20260418_001").unwrap(),
                name: "users".into()
            }
        );
        for ignored in [
            "README.md",
            "20260418_001.sql",
            "users.sql",
            "V1__init.sql",
            "20260418_001_users.SQL",
            "20260418_001_users.up.sql",
            "20260418_001_.sql",
            "_1_x.sql",
            "20260418_001_a b.sql",
        ] {
            assert!(
                matches!(classify(ignored), FileKind::Ignored(_)),
                "{ignored}"
            );
        }
        let FileKind::Ignored(reason) = classify("1_x.up.sql") else {
            panic!()
        };
        assert!(reason.contains("no .up.sql"), "{reason}");
    }

    #[test]
    fn sorts_by_version_and_pairs_downs() {
        let d = discover(vec![
            file("m/20260418_10_c.sql", "c"),
            file("m/20260418_2_b.sql", "b"),
            file("m/20260418_2_b.down.sql", "drop b"),
            file("m/20260417_a.sql", "a"),
            file("m/notes.txt", "hello"),
        ])
        .unwrap();
        let order: Vec<_> = d.migrations.iter().map(|m| m.id()).collect();
        assert_eq!(order, ["20260417", "20260418_2", "20260418_10"]);
        assert_eq!(d.migrations[1].down.as_ref().unwrap().sql, "drop b");
        assert!(d.migrations[0].down.is_none());
        assert_eq!(d.migrations[1].up.hash, ContentHash::of(b"b"));
        assert_eq!(
            d.ignored,
            [Ignored {
                path: "m/notes.txt".into(),
                reason: "not a .sql file".into()
            }]
        );
    }

    #[test]
    fn duplicate_versions_name_both_files() {
        let err = discover(vec![
            file("m/20260418_001_users.sql", ""),
            file("m/20260418_01_people.sql", ""),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/20260418_01_people.sql: version 20260418_01 is already used by m/20260418_001_users.sql"
        );
    }

    #[test]
    fn down_without_up_is_an_error() {
        let err = discover(vec![
            file("m/1_users.sql", ""),
            file("m/1_user.down.sql", ""),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/1_user.down.sql: down migration without an up migration (expected m/1_user.sql)"
        );
    }

    #[test]
    fn non_utf8_names_the_file_and_offset() {
        let err = discover(vec![SourceFile {
            path: "m/1_bad.sql".into(),
            bytes: b"SELECT '\xff';".to_vec(),
        }])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m/1_bad.sql: not valid UTF-8 (invalid byte at offset 8)"
        );
    }

    #[test]
    fn line_endings_and_bom_do_not_change_the_hash() {
        let lf = discover(vec![file("m/1_a.sql", "SELECT 1;\nSELECT 2;\n")]).unwrap();
        let crlf = discover(vec![file(
            "m/1_a.sql",
            "\u{feff}SELECT 1;\r\nSELECT 2;\r\n",
        )])
        .unwrap();
        assert_eq!(lf.migrations[0].up.hash, crlf.migrations[0].up.hash);
    }
}
