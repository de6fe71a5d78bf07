//! A fake GitHub REST API on loopback: it records every request, serves
//! repositories made of commits, tags and files, keeps comments, check
//! runs and releases, and can be told to fail. It behaves like GitHub where
//! clients go wrong: App endpoints need a valid RS256 JWT, repository
//! endpoints an installation token, contents come base64-encoded with line
//! breaks, lists are paginated with `Link` headers.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const APP_ID: u64 = 4242;
pub const INSTALLATION: u64 = 77;
/// The App's OAuth client, for the console's login.
pub const OAUTH_CLIENT_ID: &str = "Iv1.fakeclient";
pub const OAUTH_CLIENT_SECRET: &str = "fake-oauth-client-secret";

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// "METHOD /path" without the query.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path.split('?').next().unwrap())
    }
}

/// A commit: files by path.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub login: String,
    pub bot: bool,
}

#[derive(Clone, Debug)]
pub struct Asset {
    pub id: u64,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Release {
    pub id: u64,
    pub tag: String,
    pub body: String,
    pub draft: bool,
    pub assets: Vec<Asset>,
}

#[derive(Clone, Debug, Default)]
pub struct CheckRun {
    pub id: u64,
    pub head_sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub output: Value,
}

/// One scripted answer, used once, for requests whose "METHOD /path"
/// starts with `line`.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Default)]
pub struct Repo {
    pub commits: HashMap<String, Commit>,
    pub branches: HashMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub permissions: HashMap<String, String>,
    pub pull_files: HashMap<u64, Vec<(String, String)>>,
    /// Pull request number → head commit.
    pub pull_heads: HashMap<u64, String>,
    /// Pull request number → its reviews, oldest first: (login, state,
    /// commit reviewed).
    pub reviews: HashMap<u64, Vec<(String, String, String)>>,
    /// Merge commit → the merged pull request: (number, author, merged
    /// by, head commit).
    pub merged: HashMap<String, (u64, String, String, String)>,
}

#[derive(Default)]
pub struct Model {
    pub requests: Vec<Request>,
    /// Commit statuses set: (sha, context, state, description).
    pub statuses: Vec<(String, String, String, String)>,
    pub repos: HashMap<String, Repo>,
    pub comments: Vec<Comment>,
    pub check_runs: Vec<CheckRun>,
    pub releases: HashMap<String, Vec<Release>>,
    pub teams: HashMap<String, Vec<String>>,
    pub scripted: Vec<Scripted>,
    /// tree sha → (repo, commit, directory)
    trees: HashMap<String, (String, String, String)>,
    /// blob sha → content
    blobs: HashMap<String, Vec<u8>>,
    tokens: Vec<String>,
    next_ids: HashMap<&'static str, u64>,
    /// Who logs in through the OAuth endpoints (the console).
    pub oauth_login: String,
}

impl Model {
    /// Ids per kind: check runs from 1001, comments from 2001, releases
    /// from 3001, assets from 4001, tokens from 9001.
    fn id(&mut self, kind: &'static str) -> u64 {
        let base = match kind {
            "check_run" => 1000,
            "comment" => 2000,
            "release" => 3000,
            "asset" => 4000,
            _ => 9000,
        };
        let n = self.next_ids.entry(kind).or_insert(base);
        *n += 1;
        *n
    }
}

pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<Mutex<Model>>,
    _server: tokio::task::JoinHandle<()>,
    _runtime: Option<tokio::runtime::Runtime>,
}

/// git's blob id scheme, on SHA-256 (any stable content id would do).
pub fn blob_id(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex::encode(&h.finalize()[..20])
}

/// A commit id for a set of files.
pub fn commit_id(files: &BTreeMap<String, Vec<u8>>, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    for (p, b) in files {
        h.update(p.as_bytes());
        h.update(blob_id(b).as_bytes());
    }
    hex::encode(&h.finalize()[..20])
}

fn tree_id(repo: &str, commit: &str, dir: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("tree {repo} {commit} {dir}").as_bytes());
    hex::encode(&h.finalize()[..20])
}

/// The App key's public half, for checking JWTs.
fn public_key() -> Vec<u8> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/app-key.pem"
    ))
    .unwrap();
    let der = PrivateKeyDer::from_pem_slice(&pem).unwrap();
    let PrivateKeyDer::Pkcs1(k) = der else {
        panic!("PKCS#1 key expected")
    };
    let pair = ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der()).unwrap();
    use ring::signature::KeyPair;
    pair.public_key().as_ref().to_vec()
}

fn verify_jwt(token: &str) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err("not a JWT".into());
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if iat > now + 5 || exp <= now || exp - iat > 600 {
        return Err(format!("bad times iat={iat} exp={exp} now={now}"));
    }
    let iss = match &claims["iss"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("no iss".into()),
    };
    if iss != APP_ID.to_string() {
        return Err(format!("iss {iss}"));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key(),
    )
    .verify(format!("{h}.{c}").as_bytes(), &sig)
    .map_err(|_| "bad signature".to_owned())
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    answer(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// Base64 as GitHub sends it: lines of 60 characters.
fn wrapped_base64(bytes: &[u8]) -> String {
    let b = STANDARD.encode(bytes);
    b.as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

impl FakeGitHub {
    /// Starts on a free port, on a runtime of its own (tests are sync).
    pub fn start() -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(Model::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((state.clone(), url.clone()));
        let server = runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitHub {
            url,
            state,
            _server: server,
            _runtime: Some(runtime),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a commit to `owner/name` with these files; returns its id.
    pub fn commit(&self, repo: &str, files: &[(&str, &str)], salt: &str) -> String {
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
            .collect();
        let id = commit_id(&files, salt);
        self.with(|m| {
            for b in files.values() {
                m.blobs.insert(blob_id(b), b.clone());
            }
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .commits
                .insert(id.clone(), Commit { files });
        });
        id
    }

    pub fn branch(&self, repo: &str, name: &str, commit: &str) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .branches
                .insert(name.to_owned(), commit.to_owned());
        });
    }

    pub fn tag(&self, repo: &str, name: &str, commit: &str) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .tags
                .insert(name.to_owned(), commit.to_owned());
        });
    }

    pub fn permission(&self, repo: &str, login: &str, permission: &str) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .permissions
                .insert(login.to_owned(), permission.to_owned());
        });
    }

    /// A review of a pull request at a commit (`APPROVED`, `COMMENTED`,
    /// `CHANGES_REQUESTED`, `DISMISSED`).
    pub fn review(&self, repo: &str, number: u64, login: &str, state: &str, commit: &str) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .reviews
                .entry(number)
                .or_default()
                .push((login.to_owned(), state.to_owned(), commit.to_owned()));
        });
    }

    /// A pull request merged as `merge_commit`.
    pub fn merged(
        &self,
        repo: &str,
        merge_commit: &str,
        number: u64,
        author: &str,
        by: &str,
        head: &str,
    ) {
        self.with(|m| {
            m.repos.entry(repo.to_owned()).or_default().merged.insert(
                merge_commit.to_owned(),
                (number, author.to_owned(), by.to_owned(), head.to_owned()),
            );
        });
    }

    pub fn pull_files(&self, repo: &str, number: u64, files: &[(&str, &str)]) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .pull_files
                .insert(
                    number,
                    files
                        .iter()
                        .map(|(f, s)| (f.to_string(), s.to_string()))
                        .collect(),
                );
        });
    }

    /// The pull request's head is now `sha`.
    pub fn pull_head(&self, repo: &str, number: u64, sha: &str) {
        self.with(|m| {
            m.repos
                .entry(repo.to_owned())
                .or_default()
                .pull_heads
                .insert(number, sha.to_owned());
        });
    }

    /// The next request whose "METHOD /path" starts with `line` gets this.
    pub fn script(&self, line: &str, status: u16, headers: &[(&str, &str)], body: Value) {
        self.with(|m| {
            m.scripted.push(Scripted {
                line: line.to_owned(),
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body,
            })
        });
    }

    /// Accepts `token` as is, like a workflow's `GITHUB_TOKEN`.
    pub fn accept_token(&self, token: &str) {
        self.with(|m| m.tokens.push(token.to_owned()));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.with(|m| m.requests.clone())
    }

    /// Requests other than token exchanges and reads ("what the bot did").
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.contains("/access_tokens"))
            .collect()
    }

    /// Waits until `check` holds, or panics after `limit`.
    pub fn wait(&self, limit: Duration, what: &str, check: impl Fn(&Model) -> bool) {
        let start = std::time::Instant::now();
        loop {
            if self.with(|m| check(m)) {
                return;
            }
            if start.elapsed() > limit {
                let lines: Vec<String> = self.requests().iter().map(|r| r.line()).collect();
                panic!(
                    "timed out waiting for {what}; requests so far:\n{}",
                    lines.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

type St = (Arc<Mutex<Model>>, String);

async fn handle(
    State((state, base)): State<St>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_q = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let req = Request {
        method: method.to_string(),
        path: path_q.clone(),
        authorization: auth.clone(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    let mut m = state.lock().unwrap();
    m.requests.push(req.clone());
    // GitHub requires these on every API request.
    if headers.get("user-agent").is_none() {
        return answer(
            403,
            json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
        );
    }
    let line = req.line();
    if let Some(i) = m.scripted.iter().position(|s| line.starts_with(&s.line)) {
        let s = m.scripted.remove(i);
        let mut r = answer(s.status, s.body);
        for (k, v) in s.headers {
            r.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        return r;
    }
    let (path, query) = match path_q.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path_q.clone(), String::new()),
    };
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let seg: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let bearer = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);

    // The OAuth web flow (GitHub App user authorization), at the web
    // address (the fake serves both).
    match (method.as_str(), &seg[..]) {
        ("GET", ["login", "oauth", "authorize"]) => {
            let (Some(client), Some(redirect), Some(state)) = (
                params.get("client_id"),
                params.get("redirect_uri"),
                params.get("state"),
            ) else {
                return answer(
                    400,
                    json!({"message": "client_id, redirect_uri and state are required"}),
                );
            };
            if client != OAUTH_CLIENT_ID {
                return answer(404, json!({"message": "unknown client"}));
            }
            let login = if m.oauth_login.is_empty() {
                "octocat".to_owned()
            } else {
                m.oauth_login.clone()
            };
            let to = format!(
                "{redirect}?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("code", &format!("code-{login}"))
                    .append_pair("state", state)
                    .finish()
            );
            return Response::builder()
                .status(302)
                .header("location", to)
                .body(axum::body::Body::empty())
                .unwrap();
        }
        ("POST", ["login", "oauth", "access_token"]) => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let ok = form.get("client_id").map(String::as_str) == Some(OAUTH_CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(OAUTH_CLIENT_SECRET);
            return match form.get("code").and_then(|c| c.strip_prefix("code-")) {
                Some(login) if ok => {
                    let token = format!("ghu_{login}");
                    m.tokens.push(token.clone());
                    answer(
                        200,
                        json!({"access_token": token, "token_type": "bearer", "scope": ""}),
                    )
                }
                _ => answer(
                    200,
                    json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
                ),
            };
        }
        ("GET", ["user"]) => {
            return match bearer.as_deref().and_then(|t| t.strip_prefix("ghu_")) {
                Some(login) if m.tokens.iter().any(|t| t == &format!("ghu_{login}")) => {
                    answer(200, json!({"login": login, "id": 1, "type": "User"}))
                }
                _ => answer(401, json!({"message": "Bad credentials"})),
            };
        }
        ("GET", ["repos", owner, name, "installation"]) => {
            let Some(jwt) = bearer.clone() else {
                return answer(
                    401,
                    json!({"message": "A JSON web token could not be decoded"}),
                );
            };
            if let Err(e) = verify_jwt(&jwt) {
                return answer(401, json!({"message": format!("JWT rejected: {e}")}));
            }
            let full = format!("{owner}/{name}");
            return if m.repos.contains_key(&full) {
                answer(
                    200,
                    json!({"id": INSTALLATION, "account": {"login": owner}}),
                )
            } else {
                not_found()
            };
        }
        ("GET", ["installation", "repositories"]) => {
            if !bearer
                .as_ref()
                .is_some_and(|t| m.tokens.contains(t) && t.starts_with("ghs_"))
            {
                return answer(401, json!({"message": "Bad credentials"}));
            }
            let mut names: Vec<&String> = m.repos.keys().collect();
            names.sort();
            let repos: Vec<Value> = names
                .iter()
                .map(|full| json!({"full_name": full, "name": full.split('/').nth(1), "default_branch": "main", "private": true}))
                .collect();
            return answer(
                200,
                json!({"total_count": repos.len(), "repositories": repos}),
            );
        }
        _ => {}
    }

    // App endpoints: the JWT.
    if seg.first() == Some(&"app") {
        let Some(jwt) = bearer else {
            return answer(
                401,
                json!({"message": "A JSON web token could not be decoded"}),
            );
        };
        if let Err(e) = verify_jwt(&jwt) {
            return answer(401, json!({"message": format!("JWT rejected: {e}")}));
        }
        return match (method.as_str(), &seg[..]) {
            ("GET", ["app"]) => answer(
                200,
                json!({"id": APP_ID, "slug": "envgate", "name": "envgate"}),
            ),
            ("GET", ["app", "installations"]) => {
                answer(200, json!([{"id": INSTALLATION, "app_id": APP_ID}]))
            }
            ("POST", ["app", "installations", id, "access_tokens"])
                if *id == INSTALLATION.to_string() =>
            {
                let n = m.id("token");
                let token = format!("ghs_fake_{n}");
                m.tokens.push(token.clone());
                let expires = humantime::format_rfc3339_seconds(
                    std::time::SystemTime::now() + Duration::from_secs(3600),
                );
                answer(
                    201,
                    json!({"token": token, "expires_at": expires.to_string(), "permissions": {}}),
                )
            }
            _ => not_found(),
        };
    }
    // Everything else: an installation token.
    match &bearer {
        Some(t) if m.tokens.contains(t) => {}
        _ => return answer(401, json!({"message": "Bad credentials"})),
    }
    let per_page: usize = params
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .min(100);
    let page: usize = params
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let paginate = |items: Vec<Value>| -> Response {
        let start = (page - 1) * per_page;
        let chunk: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
        let mut r = answer(200, Value::Array(chunk));
        if start + per_page < items.len() {
            let next = format!("{base}{path}?per_page={per_page}&page={}", page + 1);
            r.headers_mut()
                .insert("link", format!("<{next}>; rel=\"next\"").parse().unwrap());
        }
        r
    };
    match (method.as_str(), &seg[..]) {
        ("GET", ["orgs", org, "teams", slug, "memberships", login]) => {
            let key = format!("{org}/{slug}");
            if m.teams
                .get(&key)
                .is_some_and(|t| t.iter().any(|l| l == login))
            {
                answer(200, json!({"state": "active", "role": "member"}))
            } else {
                not_found()
            }
        }
        (_, ["repos", owner, name, rest @ ..]) => {
            let full = format!("{owner}/{name}");
            if !m.repos.contains_key(&full) && !rest.starts_with(&["releases"]) {
                return not_found();
            }
            repo_endpoint(
                &mut m, &base, &method, &full, rest, &params, &body, &req, paginate,
            )
        }
        ("POST", ["uploads", "repos", owner, name, "releases", id, "assets"]) => {
            let full = format!("{owner}/{name}");
            let id: u64 = id.parse().unwrap_or(0);
            let Some(asset_name) = params.get("name").cloned() else {
                return answer(422, json!({"message": "name is required"}));
            };
            let aid = m.id("asset");
            let Some(rel) = m
                .releases
                .get_mut(&full)
                .and_then(|rs| rs.iter_mut().find(|r| r.id == id))
            else {
                return not_found();
            };
            if rel.assets.iter().any(|a| a.name == asset_name) {
                return answer(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]}),
                );
            }
            rel.assets.push(Asset {
                id: aid,
                name: asset_name.clone(),
                content_type: req.content_type.clone().unwrap_or_default(),
                bytes: body.to_vec(),
            });
            answer(
                201,
                json!({"id": aid, "name": asset_name, "state": "uploaded", "size": body.len(),
                       "digest": format!("sha256:{}", hex::encode(Sha256::digest(body))),
                       "browser_download_url": format!("https://github.com/{full}/releases/download/{}/{asset_name}", rel.tag)}),
            )
        }
        _ => not_found(),
    }
}

fn release_json(base: &str, full: &str, r: &Release) -> Value {
    json!({
        "id": r.id,
        "tag_name": r.tag,
        "name": r.tag,
        "draft": r.draft,
        "body": r.body,
        "html_url": format!("https://github.com/{full}/releases/tag/{}", r.tag),
        "upload_url": format!("{base}/uploads/repos/{full}/releases/{}/assets{{?name,label}}", r.id),
        "assets": r.assets.iter().map(|a| json!({"id": a.id, "name": a.name, "size": a.bytes.len(),
            "digest": format!("sha256:{}", hex::encode(Sha256::digest(&a.bytes))),
            "browser_download_url": format!("https://github.com/{full}/releases/download/{}/{}", r.tag, a.name)})).collect::<Vec<_>>(),
    })
}

#[allow(clippy::too_many_arguments)]
fn repo_endpoint(
    m: &mut Model,
    base: &str,
    method: &Method,
    full: &str,
    rest: &[&str],
    params: &HashMap<String, String>,
    body: &Bytes,
    req: &Request,
    paginate: impl Fn(Vec<Value>) -> Response,
) -> Response {
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let resolve = |m: &Model, reference: &str| -> Option<String> {
        let repo = m.repos.get(full)?;
        if repo.commits.contains_key(reference) {
            return Some(reference.to_owned());
        }
        repo.branches
            .get(reference)
            .or_else(|| repo.tags.get(reference))
            .cloned()
    };
    match (method.as_str(), rest) {
        ("GET", []) => answer(
            200,
            json!({"full_name": full, "name": full.split('/').nth(1), "default_branch": "main", "private": true}),
        ),
        ("GET", ["contents", path @ ..]) => {
            let path = path.join("/");
            let reference = params.get("ref").cloned().unwrap_or_else(|| "main".into());
            let Some(commit) = resolve(m, &reference) else {
                return answer(
                    404,
                    json!({"message": format!("No commit found for the ref {reference}")}),
                );
            };
            let c = &m.repos[full].commits[&commit];
            match c.files.get(&path) {
                Some(bytes) => answer(
                    200,
                    json!({"type": "file", "encoding": "base64", "name": path.rsplit('/').next(), "path": path,
                           "sha": blob_id(bytes), "size": bytes.len(), "content": wrapped_base64(bytes)}),
                ),
                None => not_found(),
            }
        }
        ("GET", ["commits", reference]) => match resolve(m, reference) {
            Some(sha) => answer(200, json!({"sha": sha})),
            None => answer(
                422,
                json!({"message": format!("No commit found for SHA: {reference}")}),
            ),
        },
        ("GET", ["git", "trees", sha]) => {
            let recursive = params.get("recursive").is_some();
            let (commit, dir) = if let Some(c) = resolve(m, sha) {
                (c, String::new())
            } else if let Some((repo, c, d)) = m.trees.get(*sha).cloned() {
                if repo != full {
                    return not_found();
                }
                (c, d)
            } else {
                return not_found();
            };
            let files = m.repos[full].commits[&commit].files.clone();
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            let mut entries: BTreeMap<String, Value> = BTreeMap::new();
            for (path, bytes) in &files {
                let Some(rel) = path.strip_prefix(&prefix) else {
                    continue;
                };
                let parts: Vec<&str> = rel.split('/').collect();
                // Directories along the way.
                for depth in 1..parts.len() {
                    if !recursive && depth > 1 {
                        break;
                    }
                    let sub = parts[..depth].join("/");
                    let abs = format!("{prefix}{sub}");
                    let tid = tree_id(full, &commit, &abs);
                    m.trees
                        .insert(tid.clone(), (full.to_owned(), commit.clone(), abs));
                    entries.insert(
                        sub.clone(),
                        json!({"path": sub, "mode": "040000", "type": "tree", "sha": tid}),
                    );
                }
                if recursive || parts.len() == 1 {
                    entries.insert(
                        rel.to_owned(),
                        json!({"path": rel, "mode": "100644", "type": "blob", "sha": blob_id(bytes), "size": bytes.len()}),
                    );
                }
            }
            answer(
                200,
                json!({"sha": sha, "tree": entries.into_values().collect::<Vec<_>>(), "truncated": false}),
            )
        }
        ("GET", ["git", "blobs", sha]) => match m.blobs.get(*sha) {
            Some(bytes) => answer(
                200,
                json!({"sha": sha, "size": bytes.len(), "encoding": "base64", "content": wrapped_base64(bytes)}),
            ),
            None => not_found(),
        },
        ("GET", ["git", "matching-refs", "tags", prefix @ ..]) => {
            let prefix = prefix.join("/");
            let items: Vec<Value> = m.repos[full]
                .tags
                .iter()
                .filter(|(t, _)| t.starts_with(&prefix))
                .map(|(t, c)| json!({"ref": format!("refs/tags/{t}"), "object": {"sha": c, "type": "commit"}}))
                .collect();
            paginate(items)
        }
        ("GET", ["git", "ref", "tags", tag @ ..]) => {
            let tag = tag.join("/");
            match m.repos[full].tags.get(&tag) {
                Some(c) => answer(
                    200,
                    json!({"ref": format!("refs/tags/{tag}"), "object": {"sha": c, "type": "commit"}}),
                ),
                None => not_found(),
            }
        }
        ("GET", ["commits", sha, "statuses"]) => {
            let items: Vec<Value> = m
                .statuses
                .iter()
                .rev()
                .filter(|(s, ..)| s == sha)
                .map(|(_, context, state, description)| {
                    json!({"context": context, "state": state, "description": description})
                })
                .collect();
            answer(200, Value::Array(items))
        }
        ("POST", ["statuses", sha]) => {
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let text = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
            m.statuses.push((
                sha.to_string(),
                text("context"),
                text("state"),
                text("description"),
            ));
            answer(201, json!({"state": b["state"], "context": b["context"]}))
        }
        ("GET", ["commits", sha, "check-runs"]) => {
            let runs: Vec<Value> = m
                .check_runs
                .iter()
                .filter(|c| c.head_sha == *sha)
                .filter(|c| params.get("check_name").is_none_or(|n| *n == c.name))
                .map(|c| json!({"id": c.id, "name": c.name, "head_sha": c.head_sha, "status": c.status}))
                .collect();
            answer(200, json!({"total_count": runs.len(), "check_runs": runs}))
        }
        ("POST", ["check-runs"]) => {
            let id = m.id("check_run");
            m.check_runs.push(CheckRun {
                id,
                head_sha: json_body["head_sha"].as_str().unwrap_or("").to_owned(),
                name: json_body["name"].as_str().unwrap_or("").to_owned(),
                status: json_body["status"].as_str().unwrap_or("queued").to_owned(),
                conclusion: None,
                output: Value::Null,
            });
            answer(201, json!({"id": id, "status": json_body["status"]}))
        }
        ("PATCH", ["check-runs", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(run) = m.check_runs.iter_mut().find(|c| c.id == id) else {
                return not_found();
            };
            if let Some(s) = json_body["status"].as_str() {
                run.status = s.to_owned();
            }
            if let Some(c) = json_body["conclusion"].as_str() {
                run.conclusion = Some(c.to_owned());
            }
            if !json_body["output"].is_null() {
                run.output = json_body["output"].clone();
            }
            answer(200, json!({"id": id}))
        }
        ("GET", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let items: Vec<Value> = m
                .comments
                .iter()
                .filter(|c| c.issue == n)
                .map(|c| json!({"id": c.id, "body": c.body, "user": {"login": c.login, "type": if c.bot {"Bot"} else {"User"}}}))
                .collect();
            paginate(items)
        }
        ("POST", ["issues", n, "comments"]) => {
            let id = m.id("comment");
            let c = Comment {
                id,
                issue: n.parse().unwrap_or(0),
                body: json_body["body"].as_str().unwrap_or("").to_owned(),
                // The App's tokens are the fake's own; anything else is a
                // workflow's GITHUB_TOKEN.
                login: if req
                    .authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Bearer ghs_fake_"))
                {
                    "envgate[bot]".into()
                } else {
                    "github-actions[bot]".into()
                },
                bot: true,
            };
            m.comments.push(c.clone());
            answer(
                201,
                json!({"id": id, "body": c.body, "user": {"login": c.login, "type": "Bot"}}),
            )
        }
        ("PATCH", ["issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match m.comments.iter_mut().find(|c| c.id == id) {
                Some(c) => {
                    c.body = json_body["body"].as_str().unwrap_or("").to_owned();
                    answer(200, json!({"id": id, "body": c.body}))
                }
                None => not_found(),
            }
        }
        ("POST", ["issues", "comments", _id, "reactions"]) => {
            answer(201, json!({"id": 1, "content": json_body["content"]}))
        }
        ("GET", ["collaborators", login, "permission"]) => {
            let p = m.repos[full]
                .permissions
                .get(*login)
                .cloned()
                .unwrap_or_else(|| "read".into());
            answer(
                200,
                json!({"permission": p, "role_name": p, "user": {"login": login}}),
            )
        }
        ("GET", ["pulls", n, "files"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let items: Vec<Value> = m.repos[full]
                .pull_files
                .get(&n)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(f, s)| json!({"filename": f, "status": s}))
                .collect();
            paginate(items)
        }
        ("GET", ["pulls", n, "reviews"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let items: Vec<Value> = m.repos[full]
                .reviews
                .get(&n)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, (login, state, commit))| {
                    json!({"id": 80 + i, "user": {"login": login, "type": "User"}, "state": state,
                           "commit_id": commit, "body": "", "submitted_at": "2026-12-01T10:00:00Z"})
                })
                .collect();
            paginate(items)
        }
        ("GET", ["commits", sha, "pulls"]) => {
            let items: Vec<Value> = m.repos[full]
                .merged
                .get(*sha)
                .map(|(n, author, _, head)| {
                    json!({"number": n, "state": "closed", "merged_at": "2026-12-01T11:00:00Z",
                           "merge_commit_sha": sha, "user": {"login": author}, "head": {"sha": head}})
                })
                .into_iter()
                .collect();
            answer(200, Value::Array(items))
        }
        ("GET", ["pulls", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let repo = &m.repos[full];
            if let Some((merge, (_, author, by, head))) =
                repo.merged.iter().find(|(_, (num, ..))| *num == n)
            {
                return answer(
                    200,
                    json!({"number": n, "state": "closed", "merged": true, "merge_commit_sha": merge,
                           "user": {"login": author}, "merged_by": {"login": by}, "head": {"sha": head}}),
                );
            }
            match repo.pull_heads.get(&n) {
                Some(sha) => answer(
                    200,
                    json!({"number": n, "state": "open", "head": {"sha": sha}}),
                ),
                None => not_found(),
            }
        }
        ("GET", ["releases", "tags", tag @ ..]) => {
            let tag = tag.join("/");
            match m
                .releases
                .get(full)
                .and_then(|rs| rs.iter().find(|r| r.tag == tag && !r.draft))
            {
                // As on GitHub: drafts are not found by tag.
                Some(r) => answer(200, release_json(base, full, r)),
                None => not_found(),
            }
        }
        ("GET", ["releases"]) => {
            let items: Vec<Value> = m
                .releases
                .get(full)
                .map(|rs| {
                    rs.iter()
                        .rev()
                        .map(|r| release_json(base, full, r))
                        .collect()
                })
                .unwrap_or_default();
            paginate(items)
        }
        ("POST", ["releases"]) => {
            let tag = json_body["tag_name"].as_str().unwrap_or("").to_owned();
            if m.releases
                .get(full)
                .is_some_and(|rs| rs.iter().any(|r| r.tag == tag && !r.draft))
                && !json_body["draft"].as_bool().unwrap_or(false)
            {
                return answer(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]}),
                );
            }
            let id = m.id("release");
            let r = Release {
                id,
                tag,
                body: json_body["body"].as_str().unwrap_or("").to_owned(),
                draft: json_body["draft"].as_bool().unwrap_or(false),
                assets: Vec::new(),
            };
            let out = release_json(base, full, &r);
            m.releases.entry(full.to_owned()).or_default().push(r);
            answer(201, out)
        }
        ("PATCH", ["releases", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(r) = m
                .releases
                .get_mut(full)
                .and_then(|rs| rs.iter_mut().find(|r| r.id == id))
            else {
                return not_found();
            };
            if let Some(b) = json_body["body"].as_str() {
                r.body = b.to_owned();
            }
            let out = release_json(base, full, r);
            answer(200, out)
        }
        ("DELETE", ["releases", "assets", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            for rs in m.releases.values_mut() {
                for r in rs.iter_mut() {
                    if let Some(i) = r.assets.iter().position(|a| a.id == id) {
                        r.assets.remove(i);
                        return (StatusCode::NO_CONTENT, "").into_response();
                    }
                }
            }
            not_found()
        }
        _ => not_found(),
    }
}
