//! GitLab's REST API (v4), for `envgate ci` in GitLab pipelines: merge
//! request notes, the files a merge request adds, releases, their asset
//! links and generic packages.
//!
//! Authentication is a project, group or personal access token
//! (`PRIVATE-TOKEN`) or the job's own `CI_JOB_TOKEN` (`JOB-TOKEN`), which
//! may upload packages and manage releases but not write notes. Requests
//! retry on transport errors, 5xx and 429 (after `Retry-After` when it is
//! short); the token only ever goes to the configured API origin.

use super::http::{self, Answer, next_link};
use super::{ApiError, Note, Thread};
use crate::core::publication::Present;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// A token and the header it travels in.
pub enum Token {
    /// Project, group or personal access token: `PRIVATE-TOKEN`.
    Private(String),
    /// `CI_JOB_TOKEN`: `JOB-TOKEN`.
    Job(String),
}

impl Token {
    pub fn can_write_notes(&self) -> bool {
        matches!(self, Token::Private(_))
    }
}

pub struct GitLab {
    http: reqwest::Client,
    api: url::Url,
    token: Token,
    /// The token's own user id, once asked.
    me: std::sync::Mutex<Option<u64>>,
    calls: crate::metrics::ForgeCalls,
}

/// One project, by numeric id or `group/name` path.
pub struct Project<'a> {
    gl: &'a GitLab,
    id: String,
    /// `group/subgroup/name`, when known (webhooks say it).
    pub path: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GlNote {
    pub id: u64,
    pub body: String,
    #[serde(default)]
    pub system: bool,
    pub author: Option<Author>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Author {
    pub id: u64,
    pub username: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Diff {
    pub new_path: String,
    #[serde(default)]
    pub new_file: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TreeItem {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
}

/// Where a note sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noteable {
    MergeRequest(u64),
    Issue(u64),
}

impl Noteable {
    fn path(self) -> String {
        match self {
            Noteable::MergeRequest(iid) => format!("merge_requests/{iid}"),
            Noteable::Issue(iid) => format!("issues/{iid}"),
        }
    }
}

/// A merged merge request, as GitLab reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedRequest {
    pub iid: u64,
    pub author: String,
    pub merged_by: Option<String>,
    pub approvers: Vec<String>,
}

/// GitLab's access levels.
pub const DEVELOPER: u64 = 30;
/// The access level that may read a private project's code.
pub const REPORTER: u64 = 20;

/// A generic package (a name and version).
#[derive(Clone, Debug, Deserialize)]
pub struct Package {
    pub id: u64,
    pub name: String,
    pub version: String,
}

/// One file of a package; GitLab keeps every upload, so a name may appear
/// more than once.
#[derive(Clone, Debug, Deserialize)]
pub struct PackageFile {
    pub id: u64,
    pub file_name: String,
    #[serde(default)]
    pub file_sha256: Option<String>,
}

/// The package envgate publishes a release's bundles in.
pub const PACKAGE: &str = "envgate";

/// The generic package version a tag's bundles are kept under. GitLab
/// takes only letters, digits and `_ + - .` there (`\A(\.?[\w+-]+\.?)+\z`),
/// so a tag it would refuse (`team/v2`) becomes those characters, every
/// other as `-`, followed by 8 hex digits of the tag's SHA-256: two tags
/// never share a package.
pub fn package_version(tag: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
    if tag.chars().all(allowed) && tag.chars().any(|c| c != '.') {
        return tag.to_owned();
    }
    let kept: String = tag
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let digest = super::sha256_hex(tag.as_bytes());
    format!("{kept}-{}", &digest[..8])
}

#[derive(Clone, Debug, Deserialize)]
pub struct Link {
    pub id: u64,
    pub name: String,
    pub url: String,
}

/// Why a package file could not be replaced: deleting one needs more than
/// uploading does.
fn replace_refused(name: &str, tag: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::Status { status, message } => ApiError::Status {
            status,
            message: format!(
                "cannot replace {name} in package {PACKAGE}/{tag} ({message}): deleting a package file needs the Maintainer role"
            ),
        },
        other => other,
    }
}

/// Whether GitLab refused an upload as a duplicate package file (403 on
/// current versions, 400 on some older ones).
fn is_duplicate(e: &ApiError) -> bool {
    matches!(e, ApiError::Status { status: 400 | 403, message } if message.contains("Duplicate package"))
}

/// A package's files as publishing sees them.
fn present(files: &[PackageFile]) -> Vec<Present> {
    files
        .iter()
        .map(|f| Present {
            id: f.id,
            name: f.file_name.clone(),
            sha256: f.file_sha256.as_deref().map(str::to_ascii_lowercase),
        })
        .collect()
}

/// A path segment, percent-encoded (project paths and file names carry
/// slashes and dots).
fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

impl GitLab {
    pub fn new(api_url: &str, token: Token) -> Result<GitLab, String> {
        match &token {
            Token::Private(t) | Token::Job(t) => crate::secrets::register(t),
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = url::Url::parse(&format!("{}/", api_url.trim_end_matches('/')))
            .map_err(|e| format!("GitLab API URL '{api_url}': {e}"))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(GitLab {
            http,
            api,
            token,
            me: std::sync::Mutex::new(None),
            calls: crate::metrics::ForgeCalls::default(),
        })
    }

    /// Counts this client's calls in `calls`.
    pub fn counted(mut self, calls: crate::metrics::ForgeCalls) -> GitLab {
        self.calls = calls;
        self
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The id of the user the token acts as (an access token's bot user);
    /// None when GitLab will not say (a job token).
    pub async fn me(&self) -> Option<u64> {
        if let Some(id) = *self.me.lock().expect("me") {
            return Some(id);
        }
        let v: Value = self.json(Method::GET, "user", None).await.ok()?;
        let id = v["id"].as_u64()?;
        *self.me.lock().expect("me") = Some(id);
        Some(id)
    }

    /// Whether the API answers with this token.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.send(Method::GET, "version", None).await.map(|_| ())
    }

    /// A project by its path (`group/subgroup/name`): its id, path and
    /// default branch, as the token sees it; None when it cannot.
    pub async fn project_by_path(
        &self,
        path: &str,
    ) -> Result<Option<(u64, String, String)>, ApiError> {
        match self
            .json::<Value>(Method::GET, &format!("projects/{}", seg(path)), None)
            .await
        {
            Ok(v) => Ok(v["id"].as_u64().map(|id| {
                (
                    id,
                    v["path_with_namespace"].as_str().unwrap_or(path).to_owned(),
                    v["default_branch"].as_str().unwrap_or("main").to_owned(),
                )
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Who a user's OAuth token belongs to (the console's login): their id
    /// and username. The token goes to the API's own origin only.
    pub async fn user_of(&self, user_token: &str) -> Result<(u64, String), ApiError> {
        let url = self.url("user")?;
        let answer = self
            .http
            .get(url)
            .bearer_auth(user_token)
            .send()
            .await
            .map_err(|e| ApiError::Transient {
                message: format!("user: {e}"),
                after: Duration::from_secs(5),
            })?;
        let status = answer.status().as_u16();
        let v: Value = answer
            .json()
            .await
            .map_err(|e| ApiError::Invalid(format!("user: {e}")))?;
        match (status, v["id"].as_u64(), v["username"].as_str()) {
            (200, Some(id), Some(name)) => Ok((id, name.to_owned())),
            _ => Err(ApiError::Status {
                status,
                message: v["message"].as_str().unwrap_or("no user").to_owned(),
            }),
        }
    }

    pub fn project(&self, id: &str) -> Project<'_> {
        self.project_at(id, id)
    }

    /// A project by id, knowing its path (`group/subgroup/name`).
    pub fn project_at(&self, id: &str, path: &str) -> Project<'_> {
        Project {
            gl: self,
            id: id.to_owned(),
            path: path.to_owned(),
        }
    }

    /// The API's own URL for a path under it, or an absolute URL (a
    /// pagination link) on the API's own origin: the token goes nowhere
    /// else.
    pub fn url(&self, path: &str) -> Result<url::Url, ApiError> {
        if path.starts_with("https://") || path.starts_with("http://") {
            let url =
                url::Url::parse(path).map_err(|e| ApiError::Invalid(format!("{path}: {e}")))?;
            if url.origin() != self.api.origin() {
                return Err(ApiError::Invalid(format!(
                    "refusing to send the token to {}",
                    url.host_str().unwrap_or("?")
                )));
            }
            return Ok(url);
        }
        self.api
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Invalid(format!("{path}: {e}")))
    }

    /// Sends a request, retrying where GitLab says to (5xx; 429 after
    /// `Retry-After`, a minute without one).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Answer, ApiError> {
        let url = self.url(path)?;
        let body = body.map(super::scrub_body);
        http::send(
            &method,
            &url,
            || {
                let req = self.http.request(method.clone(), url.clone());
                let mut req = match &self.token {
                    Token::Private(t) => req.header("PRIVATE-TOKEN", t),
                    Token::Job(t) => req.header("JOB-TOKEN", t),
                };
                if let Some((bytes, content_type)) = &body {
                    req = req
                        .header(header::CONTENT_TYPE, *content_type)
                        .body(bytes.clone());
                }
                req
            },
            |status, headers, _| {
                (status == StatusCode::TOO_MANY_REQUESTS)
                    .then(|| http::retry_after(headers).unwrap_or(Duration::from_secs(60)))
            },
            |t| self.calls.observe(method.as_str(), t),
        )
        .await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let body = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        let answer = self.send(method, path, body).await?;
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Invalid(format!("{path}: {e}")))
    }

    /// Every page of a list (`per_page=100`), following the `Link`
    /// header (keyset pagination) or `X-Next-Page` (offset pagination).
    async fn pages<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut pages = 0;
        while let Some(p) = next.take() {
            pages += 1;
            if pages > 200 {
                return Err(ApiError::Invalid(format!("{path}: more than 200 pages")));
            }
            let Answer { headers, body, .. } = self.send(Method::GET, &p, None).await?;
            let items: Vec<T> = serde_json::from_slice(&body)
                .map_err(|e| ApiError::Invalid(format!("{path}: {e}")))?;
            let empty = items.is_empty();
            all.extend(items);
            let header = |k| headers.get(k).and_then(|v| v.to_str().ok());
            next = match (header("link").and_then(next_link), header("x-next-page")) {
                (Some(link), _) if !empty => Some(link),
                (_, Some(n)) if !n.trim().is_empty() && !empty => {
                    let n: u32 = n
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::Invalid(format!("{path}: X-Next-Page '{n}'")))?;
                    Some(format!("{path}{sep}per_page=100&page={n}"))
                }
                _ => None,
            };
        }
        Ok(all)
    }
}

impl Project<'_> {
    fn base(&self) -> String {
        format!("projects/{}", seg(&self.id))
    }

    pub async fn notes(&self, iid: u64) -> Result<Vec<GlNote>, ApiError> {
        self.gl
            .pages(&format!(
                "{}/merge_requests/{iid}/notes?sort=asc&order_by=created_at",
                self.base()
            ))
            .await
    }

    pub async fn create_note(&self, iid: u64, body: &str) -> Result<GlNote, ApiError> {
        self.gl
            .json(
                Method::POST,
                &format!("{}/merge_requests/{iid}/notes", self.base()),
                Some(&serde_json::json!({ "body": body })),
            )
            .await
    }

    pub async fn update_note(&self, iid: u64, id: u64, body: &str) -> Result<(), ApiError> {
        self.gl
            .json::<Value>(
                Method::PUT,
                &format!("{}/merge_requests/{iid}/notes/{id}", self.base()),
                Some(&serde_json::json!({ "body": body })),
            )
            .await
            .map(|_| ())
    }

    /// The merge request's current head commit; None when there is no
    /// such merge request.
    pub async fn merge_request_head(&self, iid: u64) -> Result<Option<String>, ApiError> {
        match self
            .gl
            .json::<Value>(
                Method::GET,
                &format!("{}/merge_requests/{iid}", self.base()),
                None,
            )
            .await
        {
            Ok(v) => Ok(v["sha"].as_str().map(str::to_owned)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Who approved the merge request: (user id, username).
    pub async fn approvals(&self, iid: u64) -> Result<Vec<(u64, String)>, ApiError> {
        let v: Value = self
            .gl
            .json(
                Method::GET,
                &format!("{}/merge_requests/{iid}/approvals", self.base()),
                None,
            )
            .await?;
        Ok(v["approved_by"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    a["user"]["id"].as_u64()?,
                    a["user"]["username"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// The merged merge request that brought `sha` to its target branch,
    /// if any: its iid, author, who merged it and who approved it.
    pub async fn merged_request(&self, sha: &str) -> Result<Option<MergedRequest>, ApiError> {
        let mrs: Vec<Value> = match self
            .gl
            .json(
                Method::GET,
                &format!(
                    "{}/repository/commits/{}/merge_requests",
                    self.base(),
                    seg(sha)
                ),
                None,
            )
            .await
        {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(mr) = mrs.iter().find(|m| m["state"] == "merged") else {
            return Ok(None);
        };
        let Some(iid) = mr["iid"].as_u64() else {
            return Ok(None);
        };
        Ok(Some(MergedRequest {
            iid,
            author: mr["author"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            merged_by: mr["merged_by"]["username"]
                .as_str()
                .or_else(|| mr["merge_user"]["username"].as_str())
                .map(str::to_owned),
            approvers: self
                .approvals(iid)
                .await?
                .into_iter()
                .map(|(_, u)| u)
                .collect(),
        }))
    }

    /// The merge request's conversation.
    pub fn thread(&self, iid: u64) -> MergeRequestThread<'_> {
        MergeRequestThread { project: self, iid }
    }

    /// The files the merge request changes.
    pub async fn diffs(&self, iid: u64) -> Result<Vec<Diff>, ApiError> {
        self.gl
            .pages(&format!("{}/merge_requests/{iid}/diffs", self.base()))
            .await
    }

    /// The tag's release; None when it has none.
    async fn release(&self, tag: &str) -> Result<Option<Value>, ApiError> {
        match self
            .gl
            .json::<Value>(
                Method::GET,
                &format!("{}/releases/{}", self.base(), seg(tag)),
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the tag has a release; creates one (named after the tag)
    /// when it has not.
    pub async fn ensure_release(&self, tag: &str) -> Result<(), ApiError> {
        if self.release(tag).await?.is_some() {
            return Ok(());
        }
        self.gl
            .json::<Value>(
                Method::POST,
                &format!("{}/releases", self.base()),
                Some(&serde_json::json!({"tag_name": tag, "name": tag})),
            )
            .await
            .map(|_| ())
    }

    pub async fn links(&self, tag: &str) -> Result<Vec<Link>, ApiError> {
        self.gl
            .pages(&format!(
                "{}/releases/{}/assets/links",
                self.base(),
                seg(tag)
            ))
            .await
    }

    pub async fn delete_link(&self, tag: &str, id: u64) -> Result<(), ApiError> {
        self.gl
            .send(
                Method::DELETE,
                &format!("{}/releases/{}/assets/links/{id}", self.base(), seg(tag)),
                None,
            )
            .await
            .map(|_| ())
    }

    pub async fn create_link(&self, tag: &str, name: &str, url: &str) -> Result<(), ApiError> {
        self.gl
            .json::<Value>(
                Method::POST,
                &format!("{}/releases/{}/assets/links", self.base(), seg(tag)),
                Some(&serde_json::json!({"name": name, "url": url, "link_type": "other"})),
            )
            .await
            .map(|_| ())
    }

    /// Uploads a file to the project's generic package registry
    /// (replacing nothing: GitLab keeps every upload, the newest wins on
    /// download, unless the group forbids duplicates) and returns its
    /// download URL.
    pub async fn upload_package(
        &self,
        package: &str,
        version: &str,
        file: &str,
        bytes: Vec<u8>,
    ) -> Result<String, ApiError> {
        let path = format!(
            "{}/packages/generic/{}/{}/{}",
            self.base(),
            seg(package),
            seg(version),
            seg(file)
        );
        self.gl
            .send(
                Method::PUT,
                &path,
                Some((bytes, "application/octet-stream")),
            )
            .await
            .map_err(|e| match e {
                ApiError::Status { status, message } if message.contains("Duplicate package") => {
                    ApiError::Status {
                        status,
                        message: format!(
                            "{message}: {package}/{version} already holds {file} (the group forbids duplicate packages)"
                        ),
                    }
                }
                other => other,
            })?;
        Ok(self.gl.url(&path)?.to_string())
    }

    /// A file at a revision; None when there is none.
    pub async fn file(&self, path: &str, rev: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let url = format!(
            "{}/repository/files/{}/raw?ref={}",
            self.base(),
            seg(path),
            seg(rev)
        );
        match self.gl.send(Method::GET, &url, None).await {
            Ok(answer) => Ok(Some(answer.body.to_vec())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The files under `dir` at a revision, recursively (an absent
    /// directory is empty).
    pub async fn tree(&self, dir: &str, rev: &str) -> Result<Vec<TreeItem>, ApiError> {
        let mut url = format!(
            "{}/repository/tree?ref={}&recursive=true&pagination=keyset",
            self.base(),
            seg(rev)
        );
        if !dir.is_empty() {
            url.push_str(&format!("&path={}", seg(dir)));
        }
        match self.gl.pages(&url).await {
            Ok(items) => Ok(items),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub async fn blob(&self, sha: &str) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}/repository/blobs/{}/raw", self.base(), seg(sha));
        Ok(self.gl.send(Method::GET, &url, None).await?.body.to_vec())
    }

    /// Tags whose names start with `prefix`: (name, commit id).
    pub async fn tags(&self, prefix: &str) -> Result<Vec<(String, String)>, ApiError> {
        #[derive(Deserialize)]
        struct Commit {
            id: String,
        }
        #[derive(Deserialize)]
        struct Tag {
            name: String,
            commit: Commit,
        }
        let mut url = format!("{}/repository/tags", self.base());
        if !prefix.is_empty() {
            url.push_str(&format!("?search=%5E{}", seg(prefix)));
        }
        let tags: Vec<Tag> = self.gl.pages(&url).await?;
        Ok(tags
            .into_iter()
            .filter(|t| t.name.starts_with(prefix))
            .map(|t| (t.name, t.commit.id))
            .collect())
    }

    pub async fn tag_exists(&self, tag: &str) -> Result<bool, ApiError> {
        let url = format!("{}/repository/tags/{}", self.base(), seg(tag));
        match self.gl.send(Method::GET, &url, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The commit a revision (id, branch, tag) names.
    pub async fn commit_of(&self, rev: &str) -> Result<String, ApiError> {
        let v: Value = self
            .gl
            .json(
                Method::GET,
                &format!("{}/repository/commits/{}", self.base(), seg(rev)),
                None,
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid(format!("commit {rev}: no id")))
    }

    /// Sets the commit status `name` (pending, running, success, failed,
    /// canceled). Setting the state a status already has is not an error.
    pub async fn set_status(
        &self,
        sha: &str,
        branch: Option<&str>,
        name: &str,
        state: &str,
        description: &str,
    ) -> Result<(), ApiError> {
        let description: String = description.chars().take(255).collect();
        let mut body =
            serde_json::json!({"state": state, "name": name, "description": description});
        if let Some(b) = branch {
            body["ref"] = b.into();
        }
        let r = self
            .gl
            .json::<Value>(
                Method::POST,
                &format!("{}/statuses/{}", self.base(), seg(sha)),
                Some(&body),
            )
            .await;
        match r {
            Err(ApiError::Status {
                status: 400,
                message,
            }) if message.contains("Cannot transition") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The project's default branch.
    pub async fn default_branch(&self) -> Result<String, ApiError> {
        let v: Value = self.gl.json(Method::GET, &self.base(), None).await?;
        v["default_branch"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid("the project without a default branch".into()))
    }

    /// A user's access level here, inherited ones included; 0 for none.
    pub async fn access_level(&self, user_id: u64) -> Result<u64, ApiError> {
        match self
            .gl
            .json::<Value>(
                Method::GET,
                &format!("{}/members/all/{user_id}", self.base()),
                None,
            )
            .await
        {
            Ok(v) => Ok(v["access_level"].as_u64().unwrap_or(0)),
            Err(e) if e.is_not_found() => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether the user is a member of the group (`group/sub`).
    pub async fn in_group(&self, group: &str, user_id: u64) -> Result<bool, ApiError> {
        match self
            .gl
            .json::<Value>(
                Method::GET,
                &format!("groups/{}/members/all/{user_id}", seg(group)),
                None,
            )
            .await
        {
            Ok(v) => Ok(v["access_level"].as_u64().unwrap_or(0) > 0),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A note on a merge request or issue.
    pub async fn note_on(&self, on: Noteable, body: &str) -> Result<(), ApiError> {
        self.gl
            .json::<Value>(
                Method::POST,
                &format!("{}/{}/notes", self.base(), on.path()),
                Some(&serde_json::json!({ "body": body })),
            )
            .await
            .map(|_| ())
    }

    /// Reacts to a note (`eyes`); an emoji already there is fine.
    pub async fn award(&self, on: Noteable, note: u64, emoji: &str) -> Result<(), ApiError> {
        match self
            .gl
            .json::<Value>(
                Method::POST,
                &format!("{}/{}/notes/{note}/award_emoji", self.base(), on.path()),
                Some(&serde_json::json!({ "name": emoji })),
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The files of the generic package `name`/`version`, and its id;
    /// None when there is no such package yet.
    pub async fn package_files(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<(u64, Vec<PackageFile>)>, ApiError> {
        let packages: Vec<Package> = self
            .gl
            .pages(&format!(
                "{}/packages?package_type=generic&package_name={}&package_version={}",
                self.base(),
                seg(name),
                seg(version)
            ))
            .await?;
        // The filters match by prefix on some versions: keep the exact one.
        let Some(p) = packages
            .into_iter()
            .find(|p| p.name == name && p.version == version)
        else {
            return Ok(None);
        };
        let files = self
            .gl
            .pages(&format!("{}/packages/{}/package_files", self.base(), p.id))
            .await?;
        Ok(Some((p.id, files)))
    }

    /// Deletes a package file; one already gone is no error.
    pub async fn delete_package_file(&self, package: u64, file: u64) -> Result<(), ApiError> {
        match self
            .gl
            .send(
                Method::DELETE,
                &format!("{}/packages/{package}/package_files/{file}", self.base()),
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Publishes one bundle's files in the generic package `envgate/<tag>`
    /// and links them from the tag's release (created when missing),
    /// converging on one package file and one link per name that hold this
    /// bundle (see [`crate::core::publication`]): files already holding it
    /// are kept, others of its names deleted before the upload, so a group
    /// that forbids duplicate packages never refuses it. The SQL's entry
    /// first, then the manifest's.
    pub async fn attach(
        &self,
        tag: &str,
        files: super::ReleaseFiles,
    ) -> Result<Vec<super::Published>, ApiError> {
        let version = package_version(tag);
        let (mut package, existing) = self
            .package_files(PACKAGE, &version)
            .await?
            .unwrap_or((0, Vec::new()));
        let mut out = Vec::new();
        for (step, file) in files.steps(&present(&existing)) {
            for &id in &step.delete {
                self.delete_package_file(package, id)
                    .await
                    .map_err(|e| replace_refused(&step.name, tag, e))?;
            }
            let sha256 = super::sha256_hex(&file.bytes);
            let url = match step.keep {
                Some(_) => self.package_url(PACKAGE, &version, &file.name)?,
                None => self.upload_converging(&mut package, &version, file).await?,
            };
            out.push(super::Published {
                name: step.name,
                url: Some(url),
                fate: step.fate,
                sha256,
            });
        }
        out.reverse();
        self.ensure_release(tag).await?;
        let links = self.links(tag).await?;
        for f in &out {
            let url = f.url.as_deref().unwrap_or_default();
            let named: Vec<&Link> = links.iter().filter(|l| l.name == f.name).collect();
            if let [only] = named[..]
                && only.url == url
            {
                continue;
            }
            for old in named {
                self.delete_link(tag, old.id).await?;
            }
            self.create_link(tag, &f.name, url).await?;
        }
        Ok(out)
    }

    /// Uploads one file of the package. A refusal as a duplicate means a
    /// file of its name appeared since the package was listed (another
    /// publisher): the package is listed again and, when the newest file of
    /// the name holds these bytes, that one is linked; otherwise the others
    /// are deleted and the upload tried once more. Never blindly again.
    async fn upload_converging(
        &self,
        package: &mut u64,
        version: &str,
        file: super::File,
    ) -> Result<String, ApiError> {
        let first = self
            .upload_package(PACKAGE, version, &file.name, file.bytes.clone())
            .await;
        let Err(e) = first else { return first };
        if !is_duplicate(&e) {
            return Err(e);
        }
        let Some((id, now)) = self.package_files(PACKAGE, version).await? else {
            return Err(e);
        };
        *package = id;
        let sha = super::sha256_hex(&file.bytes);
        let mut named: Vec<&PackageFile> =
            now.iter().filter(|f| f.file_name == file.name).collect();
        named.sort_by_key(|f| std::cmp::Reverse(f.id));
        if named
            .first()
            .and_then(|f| f.file_sha256.as_deref())
            .is_some_and(|s| s.eq_ignore_ascii_case(&sha))
        {
            return self.package_url(PACKAGE, version, &file.name);
        }
        for f in named {
            self.delete_package_file(id, f.id)
                .await
                .map_err(|e| replace_refused(&file.name, version, e))?;
        }
        self.upload_package(PACKAGE, version, &file.name, file.bytes)
            .await
    }

    /// The download URL of a generic package file.
    fn package_url(&self, package: &str, version: &str, file: &str) -> Result<String, ApiError> {
        Ok(self
            .gl
            .url(&format!(
                "{}/packages/generic/{}/{}/{}",
                self.base(),
                seg(package),
                seg(version),
                seg(file)
            ))?
            .to_string())
    }

    /// The release's description; None when the tag has no release.
    pub async fn release_description(&self, tag: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .release(tag)
            .await?
            .map(|v| v["description"].as_str().unwrap_or("").to_owned()))
    }

    pub async fn update_release_description(
        &self,
        tag: &str,
        description: &str,
    ) -> Result<(), ApiError> {
        self.gl
            .json::<Value>(
                Method::PUT,
                &format!("{}/releases/{}", self.base(), seg(tag)),
                Some(&serde_json::json!({ "description": description })),
            )
            .await
            .map(|_| ())
    }
}

/// The notes of one merge request.
pub struct MergeRequestThread<'a> {
    project: &'a Project<'a>,
    iid: u64,
}

impl Thread for MergeRequestThread<'_> {
    /// Only the token's own notes count as envgate's: a person quoting
    /// the marker is never edited.
    async fn notes(&self) -> Result<Vec<Note>, ApiError> {
        let me = self.project.gl.me().await;
        Ok(self
            .project
            .notes(self.iid)
            .await?
            .into_iter()
            .filter(|n| !n.system)
            .map(|n| Note {
                id: n.id,
                by_bot: me.is_some() && n.author.as_ref().map(|a| a.id) == me,
                body: n.body,
            })
            .collect())
    }

    async fn post(&self, body: &str) -> Result<(), ApiError> {
        self.project.create_note(self.iid, body).await.map(|_| ())
    }

    async fn edit(&self, id: u64, body: &str) -> Result<(), ApiError> {
        self.project.update_note(self.iid, id, body).await
    }

    async fn head(&self) -> Result<Option<String>, ApiError> {
        self.project.merge_request_head(self.iid).await
    }

    async fn added(&self) -> Result<std::collections::HashSet<String>, ApiError> {
        Ok(self
            .project
            .diffs(self.iid)
            .await?
            .into_iter()
            .filter(|d| d.new_file)
            .map(|d| d.new_path)
            .collect())
    }
}

/// The user's token for the code GitLab's authorization page sent back
/// (an OAuth application, for the console); it is a secret.
pub async fn oauth_token(
    web_url: &str,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
) -> Result<String, ApiError> {
    super::http::oauth_exchange(
        &format!("{}/oauth/token", web_url.trim_end_matches('/')),
        &[
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn tags_gitlab_refuses_as_versions_become_versions_it_takes() {
        assert_eq!(package_version("v1.0.0"), "v1.0.0");
        assert_eq!(package_version("2026.12.04+build_7"), "2026.12.04+build_7");
        let team = package_version("team/v2");
        assert!(
            team.starts_with("team-v2-") && team.len() == "team-v2-".len() + 8,
            "{team}"
        );
        assert_ne!(team, package_version("team-v2"), "two tags, two packages");
        assert_ne!(package_version("a/b"), package_version("a b"));
        assert!(package_version("..").starts_with("..-"));
    }
}
