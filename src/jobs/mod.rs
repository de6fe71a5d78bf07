//! What a forge event asks of envgate, written once for every surface that
//! meets forges — the bot (`envgate serve`, GitHub and GitLab) and
//! `envgate ci`:
//!
//! - [`review`]: the matrix of a commit — its check (a GitHub check run, a
//!   GitLab commit status) and, for a pull or merge request, one sticky
//!   note;
//! - [`release`]: a release tag's bundles, published where the forge keeps
//!   release files, and envgate's section of the release notes;
//! - [`command`]: a chat-ops command from a comment or note.
//!
//! Each job runs over small traits that say what it needs of a forge
//! ([`remote::RepoApi`] for a repository's content, [`review::Checks`],
//! [`crate::forge::Thread`], [`release::Publisher`], [`command::Chat`]);
//! [`github`] and [`gitlab`] implement them. The surfaces find out where
//! they run, build those, call a job, and show or log its answer.

pub mod command;
pub mod github;
pub mod gitlab;
pub mod mode;
pub mod release;
pub mod remote;
pub mod review;

use crate::config::{self, Config};
use crate::forge::ApiError;
use crate::ops::memory::Memory;
use crate::ops::{Failure, exit};
use remote::{BlobCache, Credentials, RepoApi};
use std::path::Path;
use std::time::Duration;

/// Why a job did not finish, in the terms its caller decides by.
#[derive(Debug)]
pub enum JobError {
    /// The repository's or the user's to fix (a bad envgate.toml, a
    /// migration file that does not parse, a refused permission): retrying
    /// cannot help, and the message says what to do.
    User(String),
    /// Worth trying again after at least this long (a forge hiccup, a rate
    /// limit, a database that did not answer, a lock another worker holds).
    Transient(String, Duration),
    /// Something envgate did wrong: not retried, logged as a bug.
    Bug(String),
}

impl JobError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, JobError::Transient(..))
    }
}

impl From<ApiError> for JobError {
    fn from(e: ApiError) -> JobError {
        match e {
            ApiError::Transient { message, after } => JobError::Transient(message, after),
            ApiError::Status { .. } => JobError::User(e.to_string()),
            ApiError::Invalid(_) => JobError::Bug(e.to_string()),
        }
    }
}

impl From<Failure> for JobError {
    fn from(f: Failure) -> JobError {
        match f.code {
            exit::UNREACHABLE => JobError::Transient(f.message, Duration::from_secs(30)),
            exit::INTERNAL => JobError::Bug(f.message),
            _ => JobError::User(f.message),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::User(m) | JobError::Transient(m, _) => f.write_str(m),
            JobError::Bug(m) => write!(f, "bug: {m}"),
        }
    }
}

/// What every job gets from the surface that runs it.
pub struct Context<'a> {
    pub memory: &'a Memory,
    /// Where envgate.toml sits in a repository.
    pub config_path: &'a str,
    /// Where environment URLs come from (the bot's own credentials).
    pub credentials: &'a Credentials,
    /// Blobs already fetched, shared by the jobs of a process.
    pub blobs: &'a BlobCache,
    /// Who holds the named locks this job takes (a worker's name).
    pub holder: &'a str,
    /// GitHub: create a missing release as a draft.
    pub draft_releases: bool,
}

impl<'a> Context<'a> {
    /// The repository through its forge at `at`, with the bot's
    /// credentials for its environments.
    pub fn remote<R: RepoApi>(&self, repo: &'a R, at: &str) -> remote::Remote<'a, R> {
        remote::Remote {
            repo,
            at: at.to_owned(),
            credentials: self.credentials,
            blobs: self.blobs,
        }
    }

    /// envgate.toml at a revision; None when the repository has none.
    pub async fn config_at(
        &self,
        repo: &impl RepoApi,
        at: &str,
    ) -> Result<Option<Result<Config, String>>, JobError> {
        let path = self.config_path;
        let Some(bytes) = repo.file(path, at).await? else {
            return Ok(None);
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Ok(Some(Err(format!("{path} is not UTF-8")))),
        };
        Ok(Some(
            config::parse(Path::new(path), &text).map_err(|e| e.to_string()),
        ))
    }
}

/// The current time in milliseconds, for lock leases.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs `f` holding the named lock in the control store's queue, so two
/// runs never write the same note or release at once; when another holds
/// it, the job is transient (it comes back shortly).
pub async fn locked<T>(
    memory: &Memory,
    holder: &str,
    key: &str,
    f: impl Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    let Some(store) = memory.store() else {
        return Err(JobError::Transient(
            "no control store to lock in".into(),
            Duration::from_secs(5),
        ));
    };
    let now = now_ms();
    let got = store
        .try_lock(key, holder, now, now + 120_000)
        .await
        .map_err(|e| JobError::Transient(e, Duration::from_secs(2)))?;
    if !got {
        return Err(JobError::Transient(
            format!("{key} is being updated by another worker"),
            Duration::from_secs(2),
        ));
    }
    let result = f.await;
    let _ = store.unlock(key, holder).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_who_should_act() {
        let f = |code| {
            JobError::from(Failure {
                code,
                message: "m".into(),
            })
        };
        assert!(matches!(f(exit::USAGE), JobError::User(_)));
        assert!(matches!(f(exit::REFUSED), JobError::User(_)));
        assert!(f(exit::UNREACHABLE).is_transient());
        assert!(matches!(f(exit::INTERNAL), JobError::Bug(_)));
        assert!(
            JobError::from(ApiError::Transient {
                message: "502".into(),
                after: Duration::from_secs(1)
            })
            .is_transient()
        );
        assert!(matches!(
            JobError::from(ApiError::Status {
                status: 403,
                message: "no".into()
            }),
            JobError::User(_)
        ));
        assert_eq!(JobError::Bug("x".into()).to_string(), "bug: x");
    }
}
