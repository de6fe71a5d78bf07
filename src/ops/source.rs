//! Where a project's history comes from: its release tags and the files
//! under the migrations directory at each of them. The command line reads
//! the local git repository; the bot reads the forge's API. Both give
//! trees of blob ids, so a file is fetched once however many tags hold it.

use crate::config::Config;
use crate::core::migration::{Discovery, Ignored, SourceFile};
use crate::core::sql::Dialect;
use crate::core::tools::{Layout, Pick, Tool};
pub use crate::git::TreeEntry;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;

/// A project's history.
pub trait Source: Sync {
    /// Tags matching a glob (git's matching).
    fn tags(&self, pattern: &str) -> impl Future<Output = Result<Vec<String>, String>> + Send;
    /// The files under `dir` (relative to envgate.toml's directory) at a
    /// tag, recursively.
    fn tree(
        &self,
        tag: &str,
        dir: &str,
    ) -> impl Future<Output = Result<Vec<TreeEntry>, String>> + Send;
    /// Blob contents by id.
    fn blobs(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Vec<u8>>, String>> + Send;
    /// A file of the project as it stands now, relative to envgate.toml's
    /// directory (`releases/<tag>.toml`); None when there is none.
    fn read(&self, path: &str) -> impl Future<Output = Result<Option<String>, String>> + Send;
    /// Whether a tag of this name exists at all.
    fn tag_exists(&self, tag: &str) -> impl Future<Output = bool> + Send;
}

/// The local git repository holding envgate.toml.
pub struct LocalGit {
    repo: crate::git::Repo,
    dir: PathBuf,
}

impl LocalGit {
    pub fn new(config: &Config) -> LocalGit {
        let dir = config_dir(config);
        LocalGit {
            repo: crate::git::Repo::at(&dir),
            dir,
        }
    }
}

/// envgate.toml's directory.
pub fn config_dir(config: &Config) -> PathBuf {
    config
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
}

impl Source for LocalGit {
    async fn tags(&self, pattern: &str) -> Result<Vec<String>, String> {
        self.repo.tags(pattern)
    }

    async fn tree(&self, tag: &str, dir: &str) -> Result<Vec<TreeEntry>, String> {
        self.repo.tree(tag, dir)
    }

    async fn blobs(&self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>, String> {
        self.repo.blobs(ids)
    }

    async fn read(&self, path: &str) -> Result<Option<String>, String> {
        let file = self.dir.join(path);
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", file.display())),
        }
    }

    async fn tag_exists(&self, tag: &str) -> bool {
        self.repo.has_tag(tag)
    }
}

/// The migrations directory as a path inside the tree (Liquibase may name
/// its root changelog: then its folder).
pub fn migrations_dir(config: &Config) -> String {
    let m = config.migrations.trim_end_matches('/');
    let names_a_file = config.format == Tool::Liquibase
        && [".xml", ".yaml", ".yml", ".sql", ".json"]
            .iter()
            .any(|ext| m.ends_with(ext));
    match m.rsplit_once('/') {
        Some((parent, _)) if names_a_file => parent.to_owned(),
        None if names_a_file => ".".to_owned(),
        _ => m.to_owned(),
    }
}

/// A tree's files under the migrations directory, as discovery sees them.
pub struct Snapshot {
    pub entries: Vec<TreeEntry>,
    pub discovery: Discovery,
}

/// Reads the project at tags, fetching each blob once.
pub struct History<'s, S: Source> {
    src: &'s S,
    config: &'s Config,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl<'s, S: Source> History<'s, S> {
    pub fn new(src: &'s S, config: &'s Config) -> History<'s, S> {
        History {
            src,
            config,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &'s S {
        self.src
    }

    /// The migrations at a tag, discovered in the project's layout.
    pub async fn at(&self, tag: &str, dialect: Option<Dialect>) -> Result<Snapshot, String> {
        let tool = self.config.format;
        let mut ignored = Vec::new();
        let mut entries: Vec<TreeEntry> = Vec::new();
        let folders = std::iter::once(migrations_dir(self.config)).chain(
            self.config
                .more_migrations
                .iter()
                .map(|m| m.trim_end_matches('/').to_owned()),
        );
        for dir in folders {
            let prefix = if dir == "." {
                String::new()
            } else {
                format!("{dir}/")
            };
            entries.extend(self.src.tree(tag, &dir).await?.into_iter().filter(|e| {
                let rel = e.path.strip_prefix(&prefix).unwrap_or(&e.path);
                match tool.pick(rel) {
                    Pick::Take => true,
                    Pick::Ignore(reason) => {
                        ignored.push(Ignored {
                            path: e.path.clone(),
                            reason,
                        });
                        false
                    }
                    Pick::Skip => false,
                }
            }));
        }
        let missing: Vec<String> = {
            let have = self.blobs.lock().expect("blob cache");
            let mut m: Vec<String> = entries
                .iter()
                .filter(|e| !have.contains_key(&e.blob))
                .map(|e| e.blob.clone())
                .collect();
            m.sort();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let fetched = self.src.blobs(&missing).await?;
            self.blobs.lock().expect("blob cache").extend(fetched);
        }
        let files: Vec<SourceFile> = {
            let have = self.blobs.lock().expect("blob cache");
            entries
                .iter()
                .map(|e| SourceFile {
                    path: e.path.clone(),
                    bytes: have.get(&e.blob).cloned().unwrap_or_default(),
                })
                .collect()
        };
        let layout = Layout {
            root: &self.config.migrations,
            dialect,
        };
        let mut discovery = tool
            .discover(files, &layout)
            .map_err(|e| format!("at {tag}: {e}"))?;
        discovery.ignored.extend(ignored);
        Ok(Snapshot { entries, discovery })
    }
}
