//! A repository as the bot sees it: through its forge's API at a commit, with
//! environment URLs from the bot's own credentials. It is both the
//! [`Source`] of release history and the [`Reader`] of a command, so the
//! operations the command line runs (status, promote, rollback, show) run
//! here unchanged.

use crate::config::{Config, EnvConfig};
use crate::core::release::tag_matches;
use crate::db::Target;
use crate::forge::ApiError;
use crate::forge::github::Repo;
use crate::forge::gitlab;
use crate::ops::Failure;
use crate::ops::source::{History, Source, TreeEntry, migrations_dir};
use crate::ops::world::{Reader, World};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where environment URLs come from, per repository and environment.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub dir: Option<PathBuf>,
    pub env_prefix: String,
}

impl Credentials {
    /// The URL of `env` for `owner/repo`: the environment variable
    /// `<prefix>__<OWNER>__<REPO>__<ENV>` (upper case, each run of anything
    /// but letters and digits as one `_`), else the file `<dir>/<owner>/<repo>/<env>.url`.
    pub fn url(&self, owner: &str, repo: &str, env: &str) -> Result<String, String> {
        let var = self.variable(owner, repo, env);
        if let Ok(v) = std::env::var(&var)
            && !v.trim().is_empty()
        {
            crate::secrets::register_source(&v);
            return Ok(v.trim().to_owned());
        }
        if let Some(dir) = &self.dir {
            let safe = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != ".." && s != ".";
            // GitLab's owner is a namespace path: group/subgroup.
            let safe_owner = owner.split('/').all(safe);
            if safe_owner && safe(repo) && safe(env) {
                let file = dir.join(owner).join(repo).join(format!("{env}.url"));
                match std::fs::read_to_string(&file) {
                    Ok(text) if !text.trim().is_empty() => {
                        crate::secrets::register_source(&text);
                        return Ok(text.trim().to_owned());
                    }
                    Ok(_) => return Err(format!("{} is empty", file.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", file.display())),
                }
            }
        }
        Err(format!(
            "no credentials for environment '{env}' of {owner}/{repo}: set {var}{}",
            self.dir.as_ref().map_or(String::new(), |d| format!(
                " or write {}",
                d.join(owner)
                    .join(repo)
                    .join(format!("{env}.url"))
                    .display()
            ))
        ))
    }

    pub fn variable(&self, owner: &str, repo: &str, env: &str) -> String {
        // Runs of other characters become one `_`, so `__` only ever
        // separates the parts: repository `a`, environment `b__c` and
        // repository `a__b`, environment `c` cannot share a variable.
        let part = |s: &str| -> String {
            let mut out = String::new();
            for c in s.chars() {
                if c.is_ascii_alphanumeric() {
                    out.push(c.to_ascii_uppercase());
                } else if !out.ends_with('_') {
                    out.push('_');
                }
            }
            out.trim_matches('_').to_owned()
        };
        format!(
            "{}__{}__{}__{}",
            self.env_prefix,
            part(owner),
            part(repo),
            part(env)
        )
    }
}

/// Blobs by id, shared by a worker's jobs (a blob never changes).
#[derive(Default)]
pub struct BlobCache {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    bytes: Mutex<usize>,
}

/// Beyond this the cache starts again empty.
const CACHE_LIMIT: usize = 256 * 1024 * 1024;

impl BlobCache {
    fn get(&self, id: &str) -> Option<Vec<u8>> {
        self.blobs.lock().expect("blob cache").get(id).cloned()
    }

    fn put(&self, id: String, bytes: Vec<u8>) {
        let mut total = self.bytes.lock().expect("blob cache");
        let mut blobs = self.blobs.lock().expect("blob cache");
        if *total + bytes.len() > CACHE_LIMIT {
            blobs.clear();
            *total = 0;
        }
        *total += bytes.len();
        blobs.insert(id, bytes);
    }
}

/// What a forge's API offers a job about one repository, at any
/// revision: GitHub's repository or GitLab's project.
pub trait RepoApi: Sync {
    /// Whose credentials the environments use: (owner, name); GitLab's
    /// owner is the namespace path (`group/subgroup`).
    fn owner_name(&self) -> (&str, &str);
    /// A file at a revision; None when there is none.
    fn file(
        &self,
        path: &str,
        rev: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ApiError>> + Send;
    /// The files under `dir` at a commit, recursively.
    fn files_under(
        &self,
        commit: &str,
        dir: &str,
    ) -> impl Future<Output = Result<Vec<TreeEntry>, String>> + Send;
    /// A blob's content by id.
    fn blob(&self, id: &str) -> impl Future<Output = Result<Vec<u8>, ApiError>> + Send;
    /// Tag names starting with `prefix`.
    fn tag_names(&self, prefix: &str)
    -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;
    /// The commit a revision (a commit id, a tag, a branch) names.
    fn commit_of(&self, rev: &str) -> impl Future<Output = Result<String, ApiError>> + Send;
    fn tag_exists(&self, tag: &str) -> impl Future<Output = bool> + Send;
}

pub struct Remote<'a, R> {
    pub repo: &'a R,
    /// The commit "now" means for this job.
    pub at: String,
    pub credentials: &'a Credentials,
    pub blobs: &'a BlobCache,
}

fn api(e: ApiError) -> String {
    e.to_string()
}

impl<R: RepoApi> Remote<'_, R> {
    /// The URLs of the configured environments, from the bot's credentials.
    pub fn targets(&self, envs: &[&EnvConfig]) -> Vec<Result<Target, String>> {
        let (owner, name) = self.repo.owner_name();
        envs.iter()
            .map(|env| {
                let url = self.credentials.url(owner, name, &env.name)?;
                crate::secrets::register_url(&url);
                Target::parse(&url, std::path::Path::new(".")).map_err(|m| {
                    format!("environment '{}': {m}", crate::core::redact::mask_url(&url))
                })
            })
            .collect()
    }
}

impl RepoApi for Repo<'_> {
    fn owner_name(&self) -> (&str, &str) {
        (self.owner, self.name)
    }

    async fn file(&self, path: &str, rev: &str) -> Result<Option<Vec<u8>>, ApiError> {
        Repo::file(self, path, rev).await
    }

    async fn files_under(&self, commit: &str, dir: &str) -> Result<Vec<TreeEntry>, String> {
        // Walk down to the directory, then list it recursively: cheaper
        // than the whole repository, and never truncated by its size.
        let mut sha = commit.to_owned();
        let parts: Vec<&str> = dir
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        for part in &parts {
            let (items, _) = self.tree(&sha, false).await.map_err(api)?;
            match items
                .into_iter()
                .find(|i| i.path == *part && i.kind == "tree")
            {
                Some(i) => sha = i.sha,
                None => return Ok(Vec::new()),
            }
        }
        let (items, truncated) = self.tree(&sha, true).await.map_err(api)?;
        if truncated {
            return Err(format!(
                "the tree of {dir} at {commit} is too large for GitHub to list"
            ));
        }
        let prefix = if parts.is_empty() {
            String::new()
        } else {
            format!("{}/", parts.join("/"))
        };
        Ok(items
            .into_iter()
            .filter(|i| i.kind == "blob")
            .map(|i| TreeEntry {
                path: format!("{prefix}{}", i.path),
                blob: i.sha,
            })
            .collect())
    }

    async fn blob(&self, id: &str) -> Result<Vec<u8>, ApiError> {
        Repo::blob(self, id).await
    }

    async fn tag_names(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .tags(prefix)
            .await?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect())
    }

    async fn commit_of(&self, rev: &str) -> Result<String, ApiError> {
        if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(rev.to_owned());
        }
        let tags = self.tags(rev).await?;
        match tags.into_iter().find(|(name, _, _)| name == rev) {
            Some((_, sha, kind)) if kind == "tag" => self.peel_tag(&sha).await,
            Some((_, sha, _)) => Ok(sha),
            // A branch or anything else the commits endpoint resolves.
            None => Repo::commit_of(self, rev).await,
        }
    }

    async fn tag_exists(&self, tag: &str) -> bool {
        Repo::tag_exists(self, tag).await.unwrap_or(false)
    }
}

impl RepoApi for gitlab::Project<'_> {
    fn owner_name(&self) -> (&str, &str) {
        self.path.rsplit_once('/').unwrap_or(("", &self.path))
    }

    async fn file(&self, path: &str, rev: &str) -> Result<Option<Vec<u8>>, ApiError> {
        gitlab::Project::file(self, path, rev).await
    }

    async fn files_under(&self, commit: &str, dir: &str) -> Result<Vec<TreeEntry>, String> {
        let dir = dir.trim_start_matches("./").trim_matches('/');
        let dir = if dir == "." { "" } else { dir };
        Ok(self
            .tree(dir, commit)
            .await
            .map_err(api)?
            .into_iter()
            .filter(|i| i.kind == "blob")
            .map(|i| TreeEntry {
                path: i.path,
                blob: i.id,
            })
            .collect())
    }

    async fn blob(&self, id: &str) -> Result<Vec<u8>, ApiError> {
        gitlab::Project::blob(self, id).await
    }

    async fn tag_names(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .tags(prefix)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    async fn commit_of(&self, rev: &str) -> Result<String, ApiError> {
        if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(rev.to_owned());
        }
        gitlab::Project::commit_of(self, rev).await
    }

    async fn tag_exists(&self, tag: &str) -> bool {
        gitlab::Project::tag_exists(self, tag)
            .await
            .unwrap_or(false)
    }
}

impl<R: RepoApi> Source for Remote<'_, R> {
    async fn tags(&self, pattern: &str) -> Result<Vec<String>, String> {
        let prefix: String = pattern
            .chars()
            .take_while(|c| !"*?[".contains(*c))
            .collect();
        Ok(self
            .repo
            .tag_names(&prefix)
            .await
            .map_err(api)?
            .into_iter()
            .filter(|name| tag_matches(pattern, name))
            .collect())
    }

    async fn tree(&self, rev: &str, dir: &str) -> Result<Vec<TreeEntry>, String> {
        let commit = self.repo.commit_of(rev).await.map_err(api)?;
        self.repo.files_under(&commit, dir).await
    }

    async fn blobs(&self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>, String> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.blobs.get(id) {
                Some(b) => {
                    out.insert(id.clone(), b);
                }
                None => missing.push(id.clone()),
            }
        }
        let fetched: Vec<Result<(String, Vec<u8>), ApiError>> = futures::stream::iter(missing)
            .map(|id| async move { self.repo.blob(&id).await.map(|b| (id, b)) })
            .buffer_unordered(16)
            .collect()
            .await;
        for f in fetched {
            let (id, bytes) = f.map_err(api)?;
            self.blobs.put(id.clone(), bytes.clone());
            out.insert(id, bytes);
        }
        Ok(out)
    }

    async fn read(&self, path: &str) -> Result<Option<String>, String> {
        let bytes = self.repo.file(path, &self.at).await.map_err(api)?;
        bytes
            .map(|b| String::from_utf8(b).map_err(|_| format!("{path} is not UTF-8")))
            .transpose()
    }

    async fn tag_exists(&self, tag: &str) -> bool {
        self.repo.tag_exists(tag).await
    }
}

impl<R: RepoApi> Reader for Remote<'_, R> {
    async fn world<'c>(
        &self,
        config: &'c Config,
        envs: Vec<&'c EnvConfig>,
    ) -> Result<World<'c>, Failure> {
        let targets = self.targets(&envs);
        let dialect = {
            let ds: Vec<_> = targets
                .iter()
                .filter_map(|t| t.as_ref().ok())
                .map(crate::ops::environments::dialect)
                .collect();
            ds.first().copied().filter(|d| ds.iter().all(|x| x == d))
        };
        let discovery = async {
            let history = History::new(self, config);
            history
                .at(&self.at, dialect)
                .await
                .map(|s| s.discovery)
                .map_err(|e| Failure::usage(format!("{}: {e}", migrations_dir(config))))
        };
        World::gather(envs, targets, discovery).await
    }

    fn config_at(&self) -> crate::ops::memory::ConfigAt {
        crate::ops::memory::ConfigAt::Commit(self.at.clone())
    }
}
