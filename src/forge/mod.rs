//! Clients for the forges envgate talks to, and what they share: API
//! errors, and the one sticky comment envgate keeps on a pull or merge
//! request.

pub mod github;
pub mod gitlab;
pub mod http;

use std::collections::HashSet;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum ApiError {
    /// Worth trying again later (5xx, rate limit, connection), after at
    /// least this long.
    Transient { message: String, after: Duration },
    /// The forge said no (4xx other than rate limits).
    Status { status: u16, message: String },
    /// The answer was not what the API describes.
    Invalid(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transient { message, .. } => write!(f, "{message}"),
            ApiError::Status { status, message } => {
                write!(f, "the API answered {status}: {message}")
            }
            ApiError::Invalid(m) => write!(f, "unexpected answer from the API: {m}"),
        }
    }
}

/// A request body on its way out: JSON (comments, check runs, notes) is
/// scrubbed of every registered secret (see [`crate::secrets`]). Uploaded
/// files (bundles) are the repository's own bytes and must arrive exactly
/// as their manifest says, so they go as they are.
fn scrub_body((bytes, content_type): (Vec<u8>, &str)) -> (Vec<u8>, &str) {
    if content_type.starts_with("application/json") {
        (
            crate::secrets::scrub_bytes(&bytes).into_owned(),
            content_type,
        )
    } else {
        (bytes, content_type)
    }
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status { status: 404, .. })
    }
}

pub use crate::core::publication::Fate;
use crate::core::publication::{Present, Step, Wanted, converge};

/// A file to put on a release.
#[derive(Clone, Debug)]
pub struct File {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A bundle's files as a release keeps them.
#[derive(Clone, Debug)]
pub struct ReleaseFiles {
    pub sql: File,
    pub manifest: File,
}

impl ReleaseFiles {
    /// The steps that publish these files over what is `present`, each
    /// with its file, in the order to run them (the manifest, then the SQL;
    /// see [`converge`]).
    pub fn steps(self, present: &[Present]) -> [(Step, File); 2] {
        let (sql, manifest) = (
            sha256_hex(&self.sql.bytes),
            sha256_hex(&self.manifest.bytes),
        );
        let [m, s] = converge(
            Wanted {
                name: &self.sql.name,
                sha256: &sql,
            },
            Wanted {
                name: &self.manifest.name,
                sha256: &manifest,
            },
            present,
        );
        [(m, self.manifest), (s, self.sql)]
    }
}

/// One file of a release, published.
#[derive(Clone, Debug)]
pub struct Published {
    pub name: String,
    /// Where to download it, when the forge says.
    pub url: Option<String>,
    pub fate: Fate,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
}

/// SHA-256 of bytes, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A comment (GitHub) or note (GitLab) on a pull or merge request.
pub struct Note {
    pub id: u64,
    pub body: String,
    /// Written by a bot account (the App, a workflow token, an access
    /// token's bot user): only those are ever edited.
    pub by_bot: bool,
}

/// A pull request or merge request, and its conversation.
#[allow(async_fn_in_trait)]
pub trait Thread {
    async fn notes(&self) -> Result<Vec<Note>, ApiError>;
    async fn post(&self, body: &str) -> Result<(), ApiError>;
    async fn edit(&self, id: u64, body: &str) -> Result<(), ApiError>;
    /// The request's head commit now; None when the forge does not say.
    async fn head(&self) -> Result<Option<String>, ApiError>;
    /// The paths the request adds.
    async fn added(&self) -> Result<HashSet<String>, ApiError>;
}

/// What [`sticky`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StickyOutcome {
    Created,
    Edited,
    Unchanged,
    /// Nothing: the request is at this other commit by now, whose own run
    /// writes the note.
    Superseded(String),
}

/// Keeps the one note holding `marker` for the request at commit `sha`:
/// creates it, or edits it in place, never a second one. Runs for two quick
/// pushes can end out of order, so when the request has moved on to
/// another commit the note is left to that commit's run.
pub async fn sticky(
    thread: &impl Thread,
    marker: &str,
    sha: &str,
    body: &str,
) -> Result<StickyOutcome, ApiError> {
    if let Some(head) = thread.head().await?
        && head != sha
    {
        return Ok(StickyOutcome::Superseded(head));
    }
    let notes = thread.notes().await?;
    match notes.iter().find(|n| n.by_bot && n.body.contains(marker)) {
        Some(n) if n.body == body => Ok(StickyOutcome::Unchanged),
        Some(n) => thread
            .edit(n.id, body)
            .await
            .map(|()| StickyOutcome::Edited),
        None => thread.post(body).await.map(|()| StickyOutcome::Created),
    }
}
