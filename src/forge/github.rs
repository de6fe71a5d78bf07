//! GitHub's REST API, for the bot: App authentication (an RS256 JWT
//! exchanged for installation tokens, cached until shortly before they
//! expire), and the few endpoints envgate uses.
//!
//! Requests retry on their own where GitHub says to: transport errors and
//! 5xx a few times with a short backoff, rate limits after `Retry-After`
//! (or the reset time) when that is short; longer waits go back to the job
//! queue as a delay. The token is only ever sent to the configured API host
//! (and GitHub's upload host for it): pagination links and upload URLs are
//! checked, never trusted.
//!
//! The JWT is signed with `ring`, which rustls already brings, rather than a
//! JWT crate whose RSA backend carries a timing advisory: a JWT is two
//! base64url JSON objects and one signature.

use super::http::{self, Answer, next_link};
use crate::core::publication::Present;
use crate::metrics::ForgeCalls;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The REST API version envgate was written against.
const API_VERSION: &str = "2022-11-28";

pub use super::ApiError;

/// How requests are authorised.
enum Auth {
    /// The App: its key and its installation tokens.
    App {
        app_id: u64,
        key: Box<ring::signature::RsaKeyPair>,
        tokens: Mutex<HashMap<u64, (String, Instant)>>,
    },
    /// A token handed over as is (a workflow's `GITHUB_TOKEN`).
    Token(String),
}

/// The API: its base URL, an HTTP client and how requests are authorised.
pub struct GitHub {
    http: reqwest::Client,
    api: url::Url,
    uploads_host: Option<String>,
    auth: Auth,
    calls: ForgeCalls,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads an RSA private key (PKCS#1, as GitHub hands it out, or PKCS#8).
fn rsa_key(pem: &[u8]) -> Result<ring::signature::RsaKeyPair, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let der = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("the App's private key is not a PEM private key: {e}"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs1(k) => ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err("the App's private key must be an RSA key".into()),
    };
    key.map_err(|e| format!("the App's private key is not a usable RSA key: {e}"))
}

impl GitHub {
    /// The App `app_id`, signing its JWTs with `private_key` (PEM); its
    /// calls counted in `calls`.
    pub fn app(
        api_url: &str,
        app_id: u64,
        private_key: &[u8],
        calls: ForgeCalls,
    ) -> Result<GitHub, String> {
        let auth = Auth::App {
            app_id,
            key: Box::new(rsa_key(private_key)?),
            tokens: Mutex::new(HashMap::new()),
        };
        GitHub::build(api_url, auth, calls).map_err(|e| format!("github.api_url: {e}"))
    }

    /// A client that sends `token` with every request, for every
    /// repository (`installation` is ignored).
    pub fn with_token(api_url: &str, token: String) -> Result<GitHub, String> {
        crate::secrets::register(&token);
        GitHub::build(api_url, Auth::Token(token), ForgeCalls::default())
    }

    fn build(api_url: &str, auth: Auth, calls: ForgeCalls) -> Result<GitHub, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = url::Url::parse(&format!("{}/", api_url.trim_end_matches('/')))
            .map_err(|e| format!("{api_url}: {e}"))?;
        // github.com and GHE.com (`api.<tenant>.ghe.com`) upload from a host
        // of their own; GitHub Enterprise Server under `/api/uploads`.
        let uploads_host = api.host_str().and_then(|h| {
            (h == "api.github.com" || h.ends_with(".ghe.com"))
                .then(|| h.strip_prefix("api.").map(|rest| format!("uploads.{rest}")))
                .flatten()
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // Redirects could carry the token elsewhere; none is expected.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(GitHub {
            http,
            api,
            uploads_host,
            auth,
            calls,
        })
    }

    /// The API's base URL.
    pub fn api(&self) -> &url::Url {
        &self.api
    }

    /// The App's JWT, valid for nine minutes (GitHub allows ten), issued a
    /// minute in the past against clock drift.
    pub fn jwt(&self) -> Result<String, String> {
        let Auth::App { app_id, key, .. } = &self.auth else {
            return Err("no App key: this client uses a plain token".into());
        };
        let now = now_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()})
                .to_string(),
        );
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .map_err(|_| "cannot sign the App's JWT".to_owned())?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// An installation's token, from the cache while it has more than five
    /// minutes left.
    pub async fn token(&self, installation: u64) -> Result<String, ApiError> {
        let tokens = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App { tokens, .. } => tokens,
        };
        if let Some((t, until)) = tokens.lock().expect("tokens").get(&installation)
            && Instant::now() + Duration::from_secs(300) < *until
        {
            return Ok(t.clone());
        }
        let jwt = self.jwt().map_err(ApiError::Invalid)?;
        #[derive(Deserialize)]
        struct Token {
            token: String,
            expires_at: String,
        }
        let t: Token = self
            .json(
                Method::POST,
                &format!("app/installations/{installation}/access_tokens"),
                Some(&jwt),
                None,
            )
            .await?;
        let lifetime = humantime::parse_rfc3339_weak(t.expires_at.trim_end_matches('Z'))
            .ok()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::from_secs(3600));
        tokens
            .lock()
            .expect("tokens")
            .insert(installation, (t.token.clone(), Instant::now() + lifetime));
        crate::secrets::register(&t.token);
        Ok(t.token)
    }

    /// Whether a URL may carry the token: the API's own origin, or GitHub's
    /// upload host for the public API.
    fn trusted(&self, url: &url::Url) -> bool {
        let same_origin = url.scheme() == self.api.scheme()
            && url.host_str() == self.api.host_str()
            && url.port_or_known_default() == self.api.port_or_known_default();
        same_origin
            || (url.scheme() == "https"
                && self.uploads_host.is_some()
                && url.host_str() == self.uploads_host.as_deref())
    }

    /// A path under the API (`repos/o/r/...`) or an absolute URL.
    fn url(&self, path: &str) -> Result<url::Url, ApiError> {
        if path.starts_with("https://") || path.starts_with("http://") {
            url::Url::parse(path).map_err(|e| ApiError::Invalid(format!("{path}: {e}")))
        } else {
            self.api
                .join(path.trim_start_matches('/'))
                .map_err(|e| ApiError::Invalid(format!("{path}: {e}")))
        }
    }

    /// Sends a request, retrying where GitHub says to.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Answer, ApiError> {
        let url = self.url(path)?;
        let body = body.map(super::scrub_body);
        if token.is_some() && !self.trusted(&url) {
            return Err(ApiError::Invalid(format!(
                "refusing to send the token to {}",
                url.host_str().unwrap_or("?")
            )));
        }
        let m = method.as_str();
        http::send(
            &method,
            &url,
            || {
                let mut req = self
                    .http
                    .request(method.clone(), url.clone())
                    .header(header::ACCEPT, "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", API_VERSION);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if let Some((bytes, content_type)) = &body {
                    req = req
                        .header(header::CONTENT_TYPE, *content_type)
                        .body(bytes.clone());
                }
                req
            },
            rate_limited,
            |t| self.calls.observe(m, t),
        )
        .await
    }

    /// Sends JSON (or nothing) and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let body = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        let answer = self.send(method, path, token, body).await?;
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Invalid(format!("{path}: {e}")))
    }

    /// Every page of a list (`per_page=100`, following `Link: rel="next"`).
    pub async fn pages<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
    ) -> Result<Vec<T>, ApiError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut all = Vec::new();
        let mut pages = 0;
        while let Some(p) = next.take() {
            pages += 1;
            if pages > 100 {
                return Err(ApiError::Invalid(format!("{path}: more than 100 pages")));
            }
            let answer = self.send(Method::GET, &p, Some(token), None).await?;
            let items: Vec<T> = serde_json::from_slice(&answer.body)
                .map_err(|e| ApiError::Invalid(format!("{path}: {e}")))?;
            all.extend(items);
            next = answer
                .headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
        }
        Ok(all)
    }

    /// The installation of the App on `owner/name`, if the App is
    /// installed there.
    pub async fn installation_of(&self, owner: &str, name: &str) -> Result<Option<u64>, ApiError> {
        let jwt = self.jwt().map_err(ApiError::Invalid)?;
        match self
            .json::<Value>(
                Method::GET,
                &format!("repos/{}/{}/installation", seg(owner), seg(name)),
                Some(&jwt),
                None,
            )
            .await
        {
            Ok(v) => Ok(v.get("id").and_then(Value::as_u64)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The repositories of every installation of the App: (installation,
    /// `owner/name`, default branch).
    pub async fn installed_repositories(&self) -> Result<Vec<(u64, String, String)>, ApiError> {
        let jwt = self.jwt().map_err(ApiError::Invalid)?;
        let installations: Vec<Value> = self.pages("app/installations", &jwt).await?;
        let mut out = Vec::new();
        for inst in installations {
            let Some(id) = inst.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let token = self.token(id).await?;
            let page: Value = self
                .json(
                    Method::GET,
                    "installation/repositories?per_page=100",
                    Some(&token),
                    None,
                )
                .await?;
            for r in page
                .get("repositories")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(full), Some(branch)) = (
                    r.get("full_name").and_then(Value::as_str),
                    r.get("default_branch").and_then(Value::as_str),
                ) {
                    out.push((id, full.to_owned(), branch.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// The login a user access token belongs to (`GET /user`).
    pub async fn user_login(&self, user_token: &str) -> Result<String, ApiError> {
        let v: Value = self
            .json(Method::GET, "user", Some(user_token), None)
            .await?;
        v.get("login")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid("user: no login".into()))
    }

    /// Bound to one installation's repository.
    pub fn repo<'a>(&'a self, installation: u64, owner: &'a str, name: &'a str) -> Repo<'a> {
        Repo {
            gh: self,
            installation,
            owner,
            name,
        }
    }
}

/// How long to wait when GitHub rate-limits a request: `Retry-After`, else
/// the primary limit's reset time, else a minute for a secondary limit.
fn rate_limited(
    status: StatusCode,
    headers: &header::HeaderMap,
    message: &str,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(wait) = http::retry_after(headers) {
        return Some(wait);
    }
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    if h("x-ratelimit-remaining") == Some("0") {
        return Some(
            h("x-ratelimit-reset")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(Duration::from_secs(60), |reset| {
                    Duration::from_secs(reset.saturating_sub(now_secs()).max(1))
                }),
        );
    }
    let m = message.to_ascii_lowercase();
    (status == StatusCode::TOO_MANY_REQUESTS
        || m.contains("secondary rate limit")
        || m.contains("abuse"))
    .then_some(Duration::from_secs(60))
}

/// One file of a tree.
#[derive(Clone, Debug, Deserialize)]
pub struct TreeItem {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub body: Option<String>,
    pub user: Option<User>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Release {
    pub id: u64,
    pub tag_name: String,
    pub upload_url: String,
    pub body: Option<String>,
    #[serde(default)]
    pub assets: Vec<Asset>,
    pub html_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Asset {
    pub id: u64,
    pub name: String,
    pub browser_download_url: Option<String>,
    /// `sha256:<hex>`, which GitHub computes for uploads.
    #[serde(default)]
    pub digest: Option<String>,
}

/// A merged pull request, as the forge reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedPull {
    pub number: u64,
    pub author: String,
    pub merged_by: Option<String>,
    pub approvers: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PullFile {
    pub filename: String,
    pub status: String,
}

/// A repository, through an installation's token.
pub struct Repo<'a> {
    gh: &'a GitHub,
    installation: u64,
    pub owner: &'a str,
    pub name: &'a str,
}

/// What a path segment must escape: everything but RFC 3986's unreserved
/// characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment.
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The user's token for the code GitHub's authorization page sent back
/// (the App's user authorization, for the console); it is a secret.
pub async fn oauth_token(
    web_url: &str,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
) -> Result<String, ApiError> {
    super::http::oauth_exchange(
        &format!("{}/login/oauth/access_token", web_url.trim_end_matches('/')),
        &[
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
}

/// Percent-encodes a file path, keeping its slashes.
fn file_path(s: &str) -> String {
    s.split('/').map(seg).collect::<Vec<_>>().join("/")
}

impl Repo<'_> {
    fn base(&self) -> String {
        format!("repos/{}/{}", seg(self.owner), seg(self.name))
    }

    async fn token(&self) -> Result<String, ApiError> {
        self.gh.token(self.installation).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let token = self.token().await?;
        self.gh
            .json(
                method,
                &format!("{}/{path}", self.base()),
                Some(&token),
                body,
            )
            .await
    }

    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), ApiError> {
        let token = self.token().await?;
        let body = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        self.gh
            .send(
                method,
                &format!("{}/{path}", self.base()),
                Some(&token),
                body,
            )
            .await
            .map(|_| ())
    }

    /// A file's content at a ref (commit, branch or tag); None when absent.
    pub async fn file(&self, path: &str, reference: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let token = self.token().await?;
        let url = format!(
            "{}/contents/{}?ref={}",
            self.base(),
            file_path(path),
            seg(reference)
        );
        let v: Value = match self.gh.json(Method::GET, &url, Some(&token), None).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if v.get("type").and_then(Value::as_str) != Some("file") {
            return Ok(None);
        }
        // Files over 1 MB come without content (`encoding: none`): their
        // blob has it.
        if v.get("encoding").and_then(Value::as_str) != Some("base64")
            && let Some(sha) = v.get("sha").and_then(Value::as_str)
        {
            return self.blob(sha).await.map(Some);
        }
        decode_base64(v.get("content").and_then(Value::as_str).unwrap_or(""), path).map(Some)
    }

    /// The entries of a tree (by commit or tree SHA), recursively or not.
    pub async fn tree(
        &self,
        sha: &str,
        recursive: bool,
    ) -> Result<(Vec<TreeItem>, bool), ApiError> {
        #[derive(Deserialize)]
        struct Tree {
            tree: Vec<TreeItem>,
            #[serde(default)]
            truncated: bool,
        }
        let t: Tree = self
            .call(
                Method::GET,
                &format!(
                    "git/trees/{}{}",
                    seg(sha),
                    if recursive { "?recursive=1" } else { "" }
                ),
                None,
            )
            .await?;
        Ok((t.tree, t.truncated))
    }

    /// A blob's content.
    pub async fn blob(&self, sha: &str) -> Result<Vec<u8>, ApiError> {
        let v: Value = self
            .call(Method::GET, &format!("git/blobs/{}", seg(sha)), None)
            .await?;
        match v.get("encoding").and_then(Value::as_str) {
            Some("base64") | None => {
                decode_base64(v.get("content").and_then(Value::as_str).unwrap_or(""), sha)
            }
            Some("utf-8") => Ok(v
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .as_bytes()
                .to_vec()),
            Some(other) => Err(ApiError::Invalid(format!("blob {sha}: encoding {other}"))),
        }
    }

    /// Tags whose names start with `prefix`, with the commit each points to.
    pub async fn tags(&self, prefix: &str) -> Result<Vec<(String, String, String)>, ApiError> {
        #[derive(Deserialize)]
        struct Ref {
            #[serde(rename = "ref")]
            name: String,
            object: Object,
        }
        #[derive(Deserialize)]
        struct Object {
            sha: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let token = self.token().await?;
        let refs: Vec<Ref> = self
            .gh
            .pages(
                &format!(
                    "{}/git/matching-refs/tags/{}",
                    self.base(),
                    file_path(prefix)
                ),
                &token,
            )
            .await?;
        Ok(refs
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.name.strip_prefix("refs/tags/")?.to_owned(),
                    r.object.sha,
                    r.object.kind,
                ))
            })
            .collect())
    }

    /// The commit an annotated tag object points to.
    pub async fn peel_tag(&self, tag_sha: &str) -> Result<String, ApiError> {
        let v: Value = self
            .call(Method::GET, &format!("git/tags/{}", seg(tag_sha)), None)
            .await?;
        v.pointer("/object/sha")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid(format!("tag object {tag_sha} without a target")))
    }

    /// The newest check run of this name on the commit, if there is one.
    pub async fn latest_check_run(
        &self,
        head_sha: &str,
        name: &str,
    ) -> Result<Option<u64>, ApiError> {
        let path = format!(
            "commits/{}/check-runs?check_name={}&filter=latest",
            seg(head_sha),
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        let v: Value = self.call(Method::GET, &path, None).await?;
        Ok(v.get("check_runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == name)
            .filter_map(|c| c["id"].as_u64())
            .max())
    }

    /// A check run, created as in progress; its id.
    pub async fn start_check_run(&self, head_sha: &str, name: &str) -> Result<u64, ApiError> {
        let v: Value = self
            .call(
                Method::POST,
                "check-runs",
                Some(&serde_json::json!({"name": name, "head_sha": head_sha, "status": "in_progress"})),
            )
            .await?;
        v.get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ApiError::Invalid("check run without an id".into()))
    }

    /// Completes a check run with its conclusion and output.
    pub async fn complete_check_run(
        &self,
        id: u64,
        conclusion: &str,
        output: &Value,
    ) -> Result<(), ApiError> {
        self.call_empty(
            Method::PATCH,
            &format!("check-runs/{id}"),
            Some(&serde_json::json!({"status": "completed", "conclusion": conclusion, "output": output})),
        )
        .await
    }

    /// Adds annotations to a check run (GitHub takes 50 per request).
    pub async fn annotate_check_run(&self, id: u64, output: &Value) -> Result<(), ApiError> {
        self.call_empty(
            Method::PATCH,
            &format!("check-runs/{id}"),
            Some(&serde_json::json!({"output": output})),
        )
        .await
    }

    pub async fn comments(&self, issue: u64) -> Result<Vec<Comment>, ApiError> {
        let token = self.token().await?;
        self.gh
            .pages(&format!("{}/issues/{issue}/comments", self.base()), &token)
            .await
    }

    pub async fn create_comment(&self, issue: u64, body: &str) -> Result<Comment, ApiError> {
        self.call(
            Method::POST,
            &format!("issues/{issue}/comments"),
            Some(&serde_json::json!({"body": body})),
        )
        .await
    }

    /// The pull request's current head commit; None when there is no
    /// such pull request.
    pub async fn pull_head(&self, number: u64) -> Result<Option<String>, ApiError> {
        match self
            .call::<Value>(Method::GET, &format!("pulls/{number}"), None)
            .await
        {
            Ok(v) => Ok(v["head"]["sha"].as_str().map(str::to_owned)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The newest status of `context` on a commit: (state, description).
    pub async fn status_of(
        &self,
        sha: &str,
        context: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
        let list: Vec<Value> = self
            .call(Method::GET, &format!("commits/{}/statuses", seg(sha)), None)
            .await?;
        // Newest first, as GitHub lists them.
        Ok(list.into_iter().find(|s| s["context"] == context).map(|s| {
            (
                s["state"].as_str().unwrap_or_default().to_owned(),
                s["description"].as_str().unwrap_or_default().to_owned(),
            )
        }))
    }

    /// Sets a commit status (`state`: success, failure, pending, error).
    pub async fn set_status(
        &self,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
    ) -> Result<(), ApiError> {
        let description: String = description.chars().take(140).collect();
        self.call_empty(
            Method::POST,
            &format!("statuses/{}", seg(sha)),
            Some(&serde_json::json!({"state": state, "context": context, "description": description})),
        )
        .await
    }

    /// Who approves the pull request at commit `head`: each reviewer's
    /// latest approving or dismissing review (comments change nothing),
    /// when it is an approval of that very commit.
    pub async fn approvers(&self, number: u64, head: &str) -> Result<Vec<String>, ApiError> {
        let token = self.token().await?;
        let reviews: Vec<Value> = self
            .gh
            .pages(&format!("{}/pulls/{number}/reviews", self.base()), &token)
            .await?;
        let mut latest: Vec<(String, String, String)> = Vec::new();
        for r in reviews {
            let (Some(login), Some(state)) = (r["user"]["login"].as_str(), r["state"].as_str())
            else {
                continue;
            };
            if !matches!(state, "APPROVED" | "DISMISSED" | "CHANGES_REQUESTED") {
                continue;
            }
            let commit = r["commit_id"].as_str().unwrap_or_default().to_owned();
            latest.retain(|(l, _, _)| !l.eq_ignore_ascii_case(login));
            latest.push((login.to_owned(), state.to_owned(), commit));
        }
        Ok(latest
            .into_iter()
            .filter(|(_, state, commit)| state == "APPROVED" && commit == head)
            .map(|(login, _, _)| login)
            .collect())
    }

    /// The merged pull request that brought `sha` to its base branch, if
    /// any: its number, author, who merged it, and who approved it at its
    /// last commit.
    pub async fn merged_pull(&self, sha: &str) -> Result<Option<MergedPull>, ApiError> {
        let pulls: Vec<Value> = match self
            .call(Method::GET, &format!("commits/{}/pulls", seg(sha)), None)
            .await
        {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(number) = pulls
            .iter()
            .find(|p| p["merged_at"].is_string() && p["merge_commit_sha"].as_str() == Some(sha))
            .or_else(|| pulls.iter().find(|p| p["merged_at"].is_string()))
            .and_then(|p| p["number"].as_u64())
        else {
            return Ok(None);
        };
        let pull: Value = self
            .call(Method::GET, &format!("pulls/{number}"), None)
            .await?;
        let head = pull["head"]["sha"].as_str().unwrap_or_default().to_owned();
        Ok(Some(MergedPull {
            number,
            author: pull["user"]["login"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            merged_by: pull["merged_by"]["login"].as_str().map(str::to_owned),
            approvers: self.approvers(number, &head).await?,
        }))
    }

    /// A pull request's (or issue's) conversation.
    pub fn thread(&self, issue: u64) -> IssueThread<'_> {
        IssueThread { repo: self, issue }
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<(), ApiError> {
        self.call_empty(
            Method::PATCH,
            &format!("issues/comments/{id}"),
            Some(&serde_json::json!({"body": body})),
        )
        .await
    }

    pub async fn react(&self, comment: u64, content: &str) -> Result<(), ApiError> {
        self.call_empty(
            Method::POST,
            &format!("issues/comments/{comment}/reactions"),
            Some(&serde_json::json!({"content": content})),
        )
        .await
    }

    /// The user's permission on the repository: `admin`, `write`, `read`
    /// or `none` (maintain counts as write, triage as read).
    pub async fn permission(&self, login: &str) -> Result<String, ApiError> {
        let v: Value = match self
            .call(
                Method::GET,
                &format!("collaborators/{}/permission", seg(login)),
                None,
            )
            .await
        {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Ok("none".into()),
            Err(e) => return Err(e),
        };
        Ok(v.get("permission")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned())
    }

    /// Whether `login` is an active member of the team `org/slug`.
    pub async fn in_team(&self, org: &str, slug: &str, login: &str) -> Result<bool, ApiError> {
        let token = self.token().await?;
        let path = format!(
            "orgs/{}/teams/{}/memberships/{}",
            seg(org),
            seg(slug),
            seg(login)
        );
        match self
            .gh
            .json::<Value>(Method::GET, &path, Some(&token), None)
            .await
        {
            Ok(v) => Ok(v.get("state").and_then(Value::as_str) == Some("active")),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The files a pull request changes.
    pub async fn pull_files(&self, number: u64) -> Result<Vec<PullFile>, ApiError> {
        let token = self.token().await?;
        self.gh
            .pages(&format!("{}/pulls/{number}/files", self.base()), &token)
            .await
    }

    /// The tag's release, published or draft (GitHub finds drafts only
    /// in the list of releases, never by tag).
    pub async fn release_by_tag(&self, tag: &str) -> Result<Option<Release>, ApiError> {
        match self
            .call(Method::GET, &format!("releases/tags/{}", seg(tag)), None)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => {
                let token = self.token().await?;
                let all: Vec<Release> = self
                    .gh
                    .pages(&format!("{}/releases", self.base()), &token)
                    .await?;
                Ok(all.into_iter().find(|r| r.tag_name == tag))
            }
            Err(e) => Err(e),
        }
    }

    /// The tag's release, created (a draft when asked) when it has none.
    /// Two jobs creating it at once both end with the one release.
    pub async fn release_for(&self, tag: &str, draft: bool) -> Result<Release, ApiError> {
        if let Some(r) = self.release_by_tag(tag).await? {
            return Ok(r);
        }
        match self.create_release(tag, draft, "").await {
            Err(ApiError::Status { status: 422, .. }) => {
                self.release_by_tag(tag).await?.ok_or_else(|| {
                    ApiError::Invalid(format!("release {tag}: neither found nor created"))
                })
            }
            other => other,
        }
    }

    pub async fn create_release(
        &self,
        tag: &str,
        draft: bool,
        body: &str,
    ) -> Result<Release, ApiError> {
        self.call(
            Method::POST,
            "releases",
            Some(&serde_json::json!({"tag_name": tag, "name": tag, "draft": draft, "body": body})),
        )
        .await
    }

    pub async fn update_release_body(&self, id: u64, body: &str) -> Result<(), ApiError> {
        self.call_empty(
            Method::PATCH,
            &format!("releases/{id}"),
            Some(&serde_json::json!({"body": body})),
        )
        .await
    }

    pub async fn delete_asset(&self, id: u64) -> Result<(), ApiError> {
        self.call_empty(Method::DELETE, &format!("releases/assets/{id}"), None)
            .await
    }

    /// Puts a bundle's files on the release, converging on one asset per
    /// name that holds this bundle (see [`crate::core::publication`]):
    /// assets already holding it are kept, others of its names deleted
    /// before the upload (GitHub refuses a second asset of a name). The
    /// SQL's entry first, then the manifest's.
    pub async fn put_bundle(
        &self,
        release: &Release,
        files: super::ReleaseFiles,
    ) -> Result<Vec<super::Published>, ApiError> {
        let present: Vec<Present> = release
            .assets
            .iter()
            .map(|a| Present {
                id: a.id,
                name: a.name.clone(),
                sha256: a
                    .digest
                    .as_deref()
                    .and_then(|d| d.strip_prefix("sha256:"))
                    .map(str::to_ascii_lowercase),
            })
            .collect();
        let mut out = Vec::new();
        for (step, file) in files.steps(&present) {
            for &id in &step.delete {
                match self.delete_asset(id).await {
                    Err(e) if e.is_not_found() => {}
                    other => other?,
                }
            }
            let sha256 = super::sha256_hex(&file.bytes);
            let url = match step.keep {
                Some(id) => release
                    .assets
                    .iter()
                    .find(|a| a.id == id)
                    .and_then(|a| a.browser_download_url.clone()),
                None => {
                    self.upload_asset(release, &file.name, file.content_type, file.bytes)
                        .await?
                        .browser_download_url
                }
            };
            out.push(super::Published {
                name: step.name,
                url,
                fate: step.fate,
                sha256,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Uploads a release asset to the release's `upload_url` (its
    /// `{?name,label}` template dropped).
    pub async fn upload_asset(
        &self,
        release: &Release,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Asset, ApiError> {
        let base = release
            .upload_url
            .split('{')
            .next()
            .unwrap_or(&release.upload_url);
        let url = format!("{base}?name={}", seg(name));
        let token = self.token().await?;
        let answer = self
            .gh
            .send(
                Method::POST,
                &url,
                Some(&token),
                Some((bytes, content_type)),
            )
            .await?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| ApiError::Invalid(format!("asset {name}: {e}")))
    }

    /// The commit a branch or tag points to now.
    pub async fn commit_of(&self, reference: &str) -> Result<String, ApiError> {
        let v: Value = self
            .call(Method::GET, &format!("commits/{}", seg(reference)), None)
            .await?;
        v.get("sha")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid(format!("commit {reference} without a sha")))
    }

    /// The repository's default branch.
    pub async fn default_branch(&self) -> Result<String, ApiError> {
        let token = self.token().await?;
        let v: Value = self
            .gh
            .json(Method::GET, &self.base(), Some(&token), None)
            .await?;
        v.get("default_branch")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Invalid("the repository without a default branch".into()))
    }

    /// Whether a tag exists.
    pub async fn tag_exists(&self, tag: &str) -> Result<bool, ApiError> {
        match self
            .call::<Value>(
                Method::GET,
                &format!("git/ref/tags/{}", file_path(tag)),
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Base64 as GitHub sends it (wrapped lines); bad input is an error, not a
/// panic.
fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(clean)
        .map_err(|e| ApiError::Invalid(format!("{what}: content is not valid base64: {e}")))
}

/// The comments of one pull request or issue.
pub struct IssueThread<'a> {
    repo: &'a Repo<'a>,
    issue: u64,
}

impl super::Thread for IssueThread<'_> {
    async fn notes(&self) -> Result<Vec<super::Note>, ApiError> {
        Ok(self
            .repo
            .comments(self.issue)
            .await?
            .into_iter()
            .map(|c| super::Note {
                id: c.id,
                by_bot: c.user.as_ref().is_some_and(|u| u.kind == "Bot"),
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn post(&self, body: &str) -> Result<(), ApiError> {
        self.repo.create_comment(self.issue, body).await.map(|_| ())
    }

    async fn edit(&self, id: u64, body: &str) -> Result<(), ApiError> {
        self.repo.update_comment(id, body).await
    }

    async fn head(&self) -> Result<Option<String>, ApiError> {
        self.repo.pull_head(self.issue).await
    }

    async fn added(&self) -> Result<std::collections::HashSet<String>, ApiError> {
        Ok(self
            .repo
            .pull_files(self.issue)
            .await?
            .into_iter()
            .filter(|f| f.status == "added")
            .map(|f| f.filename)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_limits() {
        assert_eq!(
            next_link(
                r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#
            ),
            Some("https://api.github.com/x?page=2".into())
        );
        assert_eq!(
            next_link(r#"<https://api.github.com/x?page=1>; rel="prev""#),
            None
        );
        let mut h = header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &h, ""),
            Some(Duration::from_secs(3))
        );
        let h = header::HeaderMap::new();
        assert_eq!(
            rate_limited(
                StatusCode::FORBIDDEN,
                &h,
                "You have exceeded a secondary rate limit"
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limited(
                StatusCode::FORBIDDEN,
                &h,
                "Resource not accessible by integration"
            ),
            None
        );
        assert_eq!(rate_limited(StatusCode::NOT_FOUND, &h, ""), None);
    }

    #[test]
    fn base64_with_newlines_and_garbage() {
        assert_eq!(decode_base64("aGVs\nbG8=\n", "x").unwrap(), b"hello");
        assert!(decode_base64("not base64!", "x").is_err());
    }

    /// The token goes to the API's own origin and GitHub's upload host,
    /// for github.com, GHE.com and GitHub Enterprise Server alike — and
    /// nowhere else.
    #[test]
    fn tokens_go_to_the_api_and_its_upload_host_only() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        let dotcom = GitHub::with_token("https://api.github.com", "t".into()).unwrap();
        assert!(dotcom.trusted(&url("https://api.github.com/repos/a/b")));
        assert!(dotcom.trusted(&url(
            "https://uploads.github.com/repos/a/b/releases/1/assets"
        )));
        assert!(!dotcom.trusted(&url("https://uploads.github.com.evil.io/x")));
        assert!(!dotcom.trusted(&url("http://uploads.github.com/x")));
        let ghe_com = GitHub::with_token("https://api.acme.ghe.com", "t".into()).unwrap();
        assert!(ghe_com.trusted(&url(
            "https://uploads.acme.ghe.com/repos/a/b/releases/1/assets"
        )));
        assert!(!ghe_com.trusted(&url("https://uploads.github.com/x")));
        let server = GitHub::with_token("https://ghe.example.com/api/v3", "t".into()).unwrap();
        assert!(server.trusted(&url(
            "https://ghe.example.com/api/uploads/repos/a/b/releases/1/assets"
        )));
        assert!(server.trusted(&url("https://ghe.example.com/api/v3/repos/a/b")));
        assert!(!server.trusted(&url("https://uploads.github.com/x")));
        assert!(!server.trusted(&url("https://ghe.example.com:8443/x")));
    }

    /// The App's JWT is RS256 signed with ring, and verifies with the
    /// App's public key.
    #[test]
    fn the_app_jwt_verifies_with_the_public_key() {
        let pem = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/github/app-key.pem"),
        )
        .unwrap();
        let gh = GitHub::app("https://api.github.com", 42, &pem, ForgeCalls::default()).unwrap();
        let jwt = gh.jwt().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            600
        );
        let public = rsa_key(&pem).unwrap().public().as_ref().to_vec();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("the signature verifies");
    }
}
