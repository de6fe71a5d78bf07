//! A fake GitLab REST API (v4) on loopback: it records every request and
//! keeps merge request notes, releases, release links and generic package
//! files. It behaves like GitLab where clients go wrong: `PRIVATE-TOKEN`
//! or `JOB-TOKEN` is required, the job token may not write notes (403),
//! lists are paginated with `X-Next-Page`, a missing release is a 404.
//! Generic packages keep every upload of a name (the newest is served)
//! unless the group forbids duplicates, when a second file of a name is
//! refused with 403 "Duplicate package is not allowed", as GitLab does.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const PROJECT: &str = "42";
/// The project's path.
pub const PROJECT_PATH: &str = "acme/shop";
/// The OAuth application the console logs people in with.
pub const OAUTH_CLIENT_ID: &str = "fake-gitlab-oauth-app";
pub const OAUTH_CLIENT_SECRET: &str = "fake-gitlab-oauth-secret";
/// The token a console login's code is exchanged for.
pub const OAUTH_USER_TOKEN: &str = "gl-fake-oauth-user-token";
pub const ACCESS_TOKEN: &str = "glpat-fake-access-token";
pub const JOB_TOKEN: &str = "glcbt-fake-job-token";
/// The user the access token acts as.
pub const BOT_USER: u64 = 9;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path.split('?').next().unwrap())
    }
}

#[derive(Clone, Debug)]
pub struct Note {
    pub id: u64,
    pub iid: u64,
    pub body: String,
    /// The access token's bot user is 9.
    pub author: u64,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub id: u64,
    pub name: String,
    pub url: String,
}

/// A commit status as set.
#[derive(Clone, Debug)]
pub struct Status {
    pub sha: String,
    pub name: String,
    pub state: String,
    pub description: String,
    pub git_ref: Option<String>,
}

#[derive(Default)]
pub struct Model {
    pub requests: Vec<Request>,
    /// commit id → files
    pub commits: HashMap<String, BTreeMap<String, Vec<u8>>>,
    pub branches: HashMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub statuses: Vec<Status>,
    /// user id → access level
    pub members: HashMap<u64, u64>,
    /// "group" → user ids
    pub groups: HashMap<String, Vec<u64>>,
    /// (noteable path, note id, emoji)
    pub awards: Vec<(String, u64, String)>,
    /// Notes on issues: (iid, body)
    pub issue_notes: Vec<(u64, String)>,
    blobs: HashMap<String, Vec<u8>>,
    pub notes: Vec<Note>,
    /// iid → head commit
    pub mr_heads: HashMap<u64, String>,
    /// iid → (path, new file)
    pub diffs: HashMap<u64, Vec<(String, bool)>>,
    /// tag → links
    pub releases: HashMap<String, Vec<Link>>,
    /// "package/version/file" → bytes (the newest upload)
    pub packages: HashMap<String, Vec<u8>>,
    /// Every generic package and its files, as GitLab keeps them.
    pub package_list: Vec<Package>,
    /// The group setting "allow duplicates" for generic packages (off
    /// refuses a second file of a name in a package version).
    pub forbid_duplicates: bool,
    /// Deleting package files is refused (a token without the Maintainer
    /// role).
    pub refuse_package_delete: bool,
    /// How many package listings still answer as if the package were
    /// empty (another publisher uploads between a listing and an upload).
    pub stale_listings: u32,
    /// tag → release description
    pub descriptions: HashMap<String, String>,
    /// iid → who approved it: (user id, username)
    pub approvals: HashMap<u64, Vec<(u64, String)>>,
    /// merge commit → the merged merge request: (iid, author, merged by)
    pub merged: HashMap<String, (u64, String, String)>,
    /// Who logs in through the OAuth pages: (id, username).
    pub oauth_user: (u64, String),
    /// Codes handed out by the authorization page, each taken once.
    pub oauth_codes: Vec<String>,
    next_id: u64,
}

#[derive(Clone, Debug)]
pub struct Package {
    pub id: u64,
    pub name: String,
    pub version: String,
    pub files: Vec<PackageFile>,
}

#[derive(Clone, Debug)]
pub struct PackageFile {
    pub id: u64,
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Model {
    /// The files of a generic package version, in upload order.
    pub fn package_files(&self, name: &str, version: &str) -> Vec<PackageFile> {
        self.package_list
            .iter()
            .find(|p| p.name == name && p.version == version)
            .map(|p| p.files.clone())
            .unwrap_or_default()
    }

    /// Keeps `packages` (the newest file of each name) true to the list.
    fn served(&mut self) {
        self.packages.clear();
        for p in &self.package_list {
            for f in &p.files {
                self.packages.insert(
                    format!("{}/{}/{}", p.name, p.version, f.name),
                    f.bytes.clone(),
                );
            }
        }
    }
}

impl Model {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        500 + self.next_id
    }
}

pub struct FakeGitLab {
    /// The API's base: `http://127.0.0.1:<port>/api/v4`.
    pub api: String,
    pub state: Arc<Mutex<Model>>,
    _runtime: tokio::runtime::Runtime,
}

fn blob_id(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex::encode(&h.finalize()[..20])
}

fn raw(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain; charset=utf-8")],
        bytes,
    )
        .into_response()
}

/// A commit by id, branch or tag.
fn resolve(m: &Model, rev: &str) -> Option<String> {
    if m.commits.contains_key(rev) {
        return Some(rev.to_owned());
    }
    m.branches.get(rev).or_else(|| m.tags.get(rev)).cloned()
}

fn answer(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl FakeGitLab {
    pub fn start() -> FakeGitLab {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(Model::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitLab {
            api: format!("http://127.0.0.1:{port}/api/v4"),
            state,
            _runtime: runtime,
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a commit with these files; returns its id.
    pub fn commit(&self, files: &[(&str, &str)], salt: &str) -> String {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| {
                h.update(p.as_bytes());
                h.update(b.as_bytes());
                (p.to_string(), b.as_bytes().to_vec())
            })
            .collect();
        let id = hex::encode(&h.finalize()[..20]);
        self.with(|m| {
            for b in files.values() {
                m.blobs.insert(blob_id(b), b.clone());
            }
            m.commits.insert(id.clone(), files);
        });
        id
    }

    pub fn branch(&self, name: &str, commit: &str) {
        self.with(|m| m.branches.insert(name.to_owned(), commit.to_owned()));
    }

    pub fn tag(&self, name: &str, commit: &str) {
        self.with(|m| m.tags.insert(name.to_owned(), commit.to_owned()));
    }

    pub fn member(&self, user_id: u64, access_level: u64) {
        self.with(|m| m.members.insert(user_id, access_level));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.with(|m| m.requests.clone())
    }

    /// "METHOD /path" of every request, from `from` on.
    pub fn lines_from(&self, from: usize) -> Vec<String> {
        self.requests()[from..].iter().map(Request::line).collect()
    }
}

async fn handle(
    State(state): State<Arc<Mutex<Model>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_q = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let (path, query) = path_q.split_once('?').unwrap_or((path_q, ""));
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut m = state.lock().unwrap();
    m.requests.push(Request {
        method: method.to_string(),
        path: path_q.to_owned(),
        body: body.to_vec(),
    });
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    // The OAuth application's code flow (the console's login), as GitLab
    // runs it: the authorization page sends the browser back with a code,
    // which is exchanged once, with the secret, for a user token.
    if method == Method::GET && path == "/oauth/authorize" {
        let ok = params.get("client_id").map(String::as_str) == Some(OAUTH_CLIENT_ID)
            && params.get("response_type").map(String::as_str) == Some("code")
            && params.get("scope").map(String::as_str) == Some("read_user");
        let (Some(back), Some(state), true) = (params.get("redirect_uri"), params.get("state"), ok)
        else {
            return answer(400, json!({"error": "invalid_request"}));
        };
        let code = format!("gl-code-{}", m.id());
        m.oauth_codes.push(code.clone());
        return (
            StatusCode::FOUND,
            [(
                "location",
                format!(
                    "{back}?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("code", &code)
                        .append_pair("state", state)
                        .finish()
                ),
            )],
        )
            .into_response();
    }
    if method == Method::POST && path == "/oauth/token" {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let field = |k: &str| form.get(k).map(String::as_str);
        let code = field("code").unwrap_or("").to_owned();
        let known = m.oauth_codes.iter().position(|c| *c == code);
        if field("client_id") != Some(OAUTH_CLIENT_ID)
            || field("client_secret") != Some(OAUTH_CLIENT_SECRET)
            || field("grant_type") != Some("authorization_code")
            || field("redirect_uri").is_none()
            || known.is_none()
        {
            return answer(400, json!({"error": "invalid_grant"}));
        }
        m.oauth_codes.remove(known.unwrap());
        return answer(
            200,
            json!({"access_token": OAUTH_USER_TOKEN, "token_type": "Bearer", "scope": "read_user"}),
        );
    }
    if path == "/api/v4/user"
        && header("authorization") == Some(&format!("Bearer {OAUTH_USER_TOKEN}"))
    {
        let (id, username) = m.oauth_user.clone();
        return answer(200, json!({"id": id, "username": username}));
    }
    if method == Method::GET
        && header("private-token") == Some(ACCESS_TOKEN)
        && (path == format!("/api/v4/projects/{PROJECT}")
            || path == format!("/api/v4/projects/{}", PROJECT_PATH.replace('/', "%2F")))
    {
        let branch = if m.branches.contains_key("main") {
            "main"
        } else {
            "master"
        };
        return answer(
            200,
            json!({"id": 42, "path_with_namespace": PROJECT_PATH, "default_branch": branch}),
        );
    }
    if path == "/api/v4/user" && header("private-token") == Some(ACCESS_TOKEN) {
        return answer(
            200,
            json!({"id": BOT_USER, "username": "project_42_bot_1", "bot": true}),
        );
    }
    if path == "/api/v4/version" && header("private-token") == Some(ACCESS_TOKEN) {
        return answer(200, json!({"version": "17.6.0", "revision": "fake"}));
    }
    if let Some(rest) = path.strip_prefix("/api/v4/groups/") {
        let parts: Vec<String> = rest
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        if let [group, members, all, id] = &parts[..]
            && members == "members"
            && all == "all"
        {
            let id: u64 = id.parse().unwrap_or(0);
            return if m.groups.get(group).is_some_and(|g| g.contains(&id)) {
                answer(
                    200,
                    json!({"id": id, "access_level": 30, "state": "active"}),
                )
            } else {
                answer(404, json!({"message": "404 Not found"}))
            };
        }
    }
    let job = match (header("private-token"), header("job-token")) {
        (Some(ACCESS_TOKEN), _) => false,
        (None, Some(JOB_TOKEN)) => true,
        _ => return answer(401, json!({"message": "401 Unauthorized"})),
    };
    let Some(rest) = path.strip_prefix(&format!("/api/v4/projects/{PROJECT}/")) else {
        return answer(404, json!({"message": "404 Project Not Found"}));
    };
    let seg: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let page: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page: usize = params
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .min(100);
    let paginate = |items: Vec<Value>| -> Response {
        let start = (page - 1) * per_page;
        let chunk: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
        let mut r = answer(200, Value::Array(chunk));
        let next = if start + per_page < items.len() {
            (page + 1).to_string()
        } else {
            String::new()
        };
        r.headers_mut().insert("x-next-page", next.parse().unwrap());
        r
    };
    let forbidden = || answer(403, json!({"message": "403 Forbidden"}));
    match (method.as_str(), &seg[..]) {
        ("GET", ["merge_requests", iid, "notes"]) => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let items = m
                .notes
                .iter()
                .filter(|n| n.iid == iid)
                .map(|n| {
                    json!({"id": n.id, "body": n.body, "system": false, "noteable_type": "MergeRequest",
                           "author": {"id": n.author, "username": if n.author == BOT_USER { "project_42_bot_1" } else { "someone" }}})
                })
                .collect();
            paginate(items)
        }
        ("POST", ["merge_requests", iid, "notes"]) => {
            if job {
                return forbidden();
            }
            let id = m.id();
            let note = Note {
                id,
                iid: iid.parse().unwrap_or(0),
                body: json_body["body"].as_str().unwrap_or("").to_owned(),
                author: BOT_USER,
            };
            m.notes.push(note.clone());
            answer(201, json!({"id": id, "body": note.body, "system": false}))
        }
        ("PUT", ["merge_requests", iid, "notes", id]) => {
            if job {
                return forbidden();
            }
            let (iid, id): (u64, u64) = (iid.parse().unwrap_or(0), id.parse().unwrap_or(0));
            match m.notes.iter_mut().find(|n| n.id == id && n.iid == iid) {
                Some(n) => {
                    n.body = json_body["body"].as_str().unwrap_or("").to_owned();
                    answer(200, json!({"id": id, "body": n.body, "system": false}))
                }
                None => answer(404, json!({"message": "404 Not found"})),
            }
        }
        ("GET", ["merge_requests", iid, "approvals"]) => {
            let iid: u64 = iid.parse().unwrap_or(0);
            let by: Vec<Value> = m
                .approvals
                .get(&iid)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(id, name)| json!({"user": {"id": id, "username": name, "name": name}}))
                .collect();
            answer(
                200,
                json!({"iid": iid, "approved": !by.is_empty(), "approved_by": by}),
            )
        }
        ("GET", ["repository", "commits", sha, "merge_requests"]) => {
            let items: Vec<Value> = m
                .merged
                .get(*sha)
                .map(|(iid, author, by)| {
                    json!({"iid": iid, "state": "merged", "merge_commit_sha": sha,
                           "author": {"username": author}, "merged_by": {"username": by}})
                })
                .into_iter()
                .collect();
            answer(200, Value::Array(items))
        }
        ("GET", ["merge_requests", iid]) => match m.mr_heads.get(&iid.parse().unwrap_or(0)) {
            Some(sha) => answer(200, json!({"iid": iid, "sha": sha, "state": "opened"})),
            None => answer(404, json!({"message": "404 Not found"})),
        },
        ("GET", ["merge_requests", iid, "diffs"]) => {
            if job {
                return forbidden();
            }
            let iid: u64 = iid.parse().unwrap_or(0);
            let items = m
                .diffs
                .get(&iid)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(p, new)| json!({"old_path": p, "new_path": p, "new_file": new, "deleted_file": false}))
                .collect();
            paginate(items)
        }
        ("GET", ["releases", tag]) => match m.releases.get(*tag) {
            Some(_) => answer(
                200,
                json!({"tag_name": tag, "name": tag, "description": m.descriptions.get(*tag)}),
            ),
            None => answer(404, json!({"message": "404 Not Found"})),
        },
        ("PUT", ["releases", tag]) => {
            if !m.releases.contains_key(*tag) {
                return answer(404, json!({"message": "404 Not Found"}));
            }
            if let Some(d) = json_body["description"].as_str() {
                m.descriptions.insert(tag.to_string(), d.to_owned());
            }
            answer(
                200,
                json!({"tag_name": tag, "name": tag, "description": m.descriptions.get(*tag)}),
            )
        }
        ("POST", ["releases"]) => {
            let tag = json_body["tag_name"].as_str().unwrap_or("").to_owned();
            if m.releases.contains_key(&tag) {
                return answer(409, json!({"message": "Release already exists"}));
            }
            m.releases.insert(tag.clone(), Vec::new());
            if let Some(d) = json_body["description"].as_str() {
                m.descriptions.insert(tag.clone(), d.to_owned());
            }
            answer(201, json!({"tag_name": tag, "name": json_body["name"]}))
        }
        ("GET", ["releases", tag, "assets", "links"]) => {
            let Some(links) = m.releases.get(*tag) else {
                return answer(404, json!({"message": "404 Not Found"}));
            };
            let items = links
                .iter()
                .map(|l| json!({"id": l.id, "name": l.name, "url": l.url, "link_type": "other"}))
                .collect();
            paginate(items)
        }
        ("POST", ["releases", tag, "assets", "links"]) => {
            let id = m.id();
            let Some(links) = m.releases.get_mut(*tag) else {
                return answer(404, json!({"message": "404 Not Found"}));
            };
            let name = json_body["name"].as_str().unwrap_or("").to_owned();
            if links.iter().any(|l| l.name == name) {
                return answer(
                    400,
                    json!({"message": {"name": ["has already been taken"]}}),
                );
            }
            let url = json_body["url"].as_str().unwrap_or("").to_owned();
            links.push(Link {
                id,
                name: name.clone(),
                url: url.clone(),
            });
            answer(201, json!({"id": id, "name": name, "url": url}))
        }
        ("DELETE", ["releases", tag, "assets", "links", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(links) = m.releases.get_mut(*tag) else {
                return answer(404, json!({"message": "404 Not Found"}));
            };
            let before = links.len();
            links.retain(|l| l.id != id);
            if links.len() == before {
                answer(404, json!({"message": "404 Not found"}))
            } else {
                answer(200, json!({"id": id}))
            }
        }
        ("GET", ["repository", "files", file, "raw"]) => {
            let Some(c) = params.get("ref").and_then(|r| resolve(&m, r)) else {
                return answer(404, json!({"message": "404 Commit Not Found"}));
            };
            match m.commits[&c].get(*file) {
                Some(b) => raw(b.clone()),
                None => answer(404, json!({"message": "404 File Not Found"})),
            }
        }
        ("GET", ["repository", "tree"]) => {
            if job {
                return forbidden();
            }
            let Some(c) = params.get("ref").and_then(|r| resolve(&m, r)) else {
                return answer(404, json!({"message": "404 Tree Not Found"}));
            };
            let dir = params.get("path").cloned().unwrap_or_default();
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            // Directories, then files, as GitLab lists them.
            let mut dirs = std::collections::BTreeSet::new();
            let mut items = Vec::new();
            for (p, b) in &m.commits[&c] {
                let Some(rel) = p.strip_prefix(&prefix) else {
                    continue;
                };
                let parts: Vec<&str> = rel.split('/').collect();
                for i in 1..parts.len() {
                    dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
                }
                items.push(json!({"id": blob_id(b), "name": parts[parts.len() - 1], "type": "blob", "path": p, "mode": "100644"}));
            }
            if items.is_empty() {
                return answer(404, json!({"message": "404 Tree Not Found"}));
            }
            let mut all: Vec<Value> = dirs
                .into_iter()
                .map(|d| json!({"id": "0000000000000000000000000000000000000000", "name": d.rsplit('/').next(), "type": "tree", "path": d, "mode": "040000"}))
                .collect();
            all.extend(items);
            // Keyset pagination: a Link to the next page's token.
            let from: usize = params
                .get("page_token")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let chunk: Vec<Value> = all.iter().skip(from).take(per_page).cloned().collect();
            let mut r = answer(200, Value::Array(chunk));
            if from + per_page < all.len() {
                let next = format!(
                    "<http://{}{}?ref={}&recursive=true&pagination=keyset&per_page={per_page}&page_token={}&path={}>; rel=\"next\"",
                    header("host").unwrap_or("127.0.0.1"),
                    path,
                    params["ref"],
                    from + per_page,
                    dir
                );
                r.headers_mut().insert("link", next.parse().unwrap());
            }
            r
        }
        ("GET", ["repository", "blobs", sha, "raw"]) => {
            if job {
                return forbidden();
            }
            match m.blobs.get(*sha) {
                Some(b) => raw(b.clone()),
                None => answer(404, json!({"message": "404 Blob Not Found"})),
            }
        }
        ("GET", ["repository", "tags"]) => {
            let search = params.get("search").cloned().unwrap_or_default();
            let items = m
                .tags
                .iter()
                .filter(|(t, _)| match search.strip_prefix('^') {
                    Some(p) => t.starts_with(p),
                    None => t.contains(&search),
                })
                .map(|(t, c)| json!({"name": t, "commit": {"id": c}}))
                .collect();
            paginate(items)
        }
        ("GET", ["repository", "tags", tag]) => match m.tags.get(*tag) {
            Some(c) => answer(200, json!({"name": tag, "commit": {"id": c}})),
            None => answer(404, json!({"message": "404 Tag Not Found"})),
        },
        ("GET", ["repository", "commits", rev]) => match resolve(&m, rev) {
            Some(c) => answer(200, json!({"id": c, "short_id": &c[..8]})),
            None => answer(404, json!({"message": "404 Commit Not Found"})),
        },
        ("POST", ["statuses", sha]) => {
            if job {
                return forbidden();
            }
            let state = json_body["state"].as_str().unwrap_or("").to_owned();
            let name = json_body["name"].as_str().unwrap_or("default").to_owned();
            let same = m
                .statuses
                .iter()
                .rev()
                .find(|s| s.sha == *sha && s.name == name)
                .is_some_and(|s| s.state == state);
            if same {
                return answer(
                    400,
                    json!({"message": format!("Cannot transition status via :run from :{state}")}),
                );
            }
            m.statuses.push(Status {
                sha: sha.to_string(),
                name: name.clone(),
                state: state.clone(),
                description: json_body["description"].as_str().unwrap_or("").to_owned(),
                git_ref: json_body["ref"].as_str().map(str::to_owned),
            });
            answer(201, json!({"sha": sha, "name": name, "status": state}))
        }
        ("GET", ["members", "all", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match m.members.get(&id) {
                Some(level) => answer(
                    200,
                    json!({"id": id, "access_level": level, "state": "active"}),
                ),
                None => answer(404, json!({"message": "404 Not found"})),
            }
        }
        (
            "POST",
            [
                kind @ ("merge_requests" | "issues"),
                iid,
                "notes",
                note,
                "award_emoji",
            ],
        ) => {
            if job {
                return forbidden();
            }
            let key = format!("{kind}/{iid}");
            let name = json_body["name"].as_str().unwrap_or("").to_owned();
            let note: u64 = note.parse().unwrap_or(0);
            if m.awards
                .iter()
                .any(|a| a.0 == key && a.1 == note && a.2 == name)
            {
                return answer(
                    404,
                    json!({"message": "404 Award Emoji Name has already been taken Not Found"}),
                );
            }
            m.awards.push((key, note, name.clone()));
            answer(201, json!({"id": 1, "name": name}))
        }
        ("POST", ["issues", iid, "notes"]) => {
            if job {
                return forbidden();
            }
            let body = json_body["body"].as_str().unwrap_or("").to_owned();
            m.issue_notes.push((iid.parse().unwrap_or(0), body.clone()));
            answer(201, json!({"id": 900, "body": body}))
        }
        ("PUT", ["packages", "generic", package, version, file]) => {
            let (package, version, file) =
                (package.to_string(), version.to_string(), file.to_string());
            // GitLab's rule for a generic package's version.
            let valid = version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
                && version.chars().any(|c| c != '.');
            if !valid {
                return answer(
                    400,
                    json!({"message": "400 Bad request - package_version is invalid"}),
                );
            }
            let forbid = m.forbid_duplicates;
            let id = m.id();
            let at = match m
                .package_list
                .iter()
                .position(|p| p.name == package && p.version == version)
            {
                Some(i) => i,
                None => {
                    let pid = m.id();
                    m.package_list.push(Package {
                        id: pid,
                        name: package.clone(),
                        version: version.clone(),
                        files: Vec::new(),
                    });
                    m.package_list.len() - 1
                }
            };
            let p = &mut m.package_list[at];
            if forbid && p.files.iter().any(|f| f.name == file) {
                return answer(
                    403,
                    json!({"message": "403 Forbidden - Duplicate package is not allowed"}),
                );
            }
            p.files.push(PackageFile {
                id,
                name: file,
                bytes: body.to_vec(),
            });
            m.served();
            answer(201, json!({"message": "201 Created"}))
        }
        ("GET", ["packages", "generic", package, version, file]) => {
            match m.packages.get(&format!("{package}/{version}/{file}")) {
                Some(b) => raw(b.clone()),
                None => answer(404, json!({"message": "404 Package Not Found"})),
            }
        }
        ("GET", ["packages"]) => {
            if m.stale_listings > 0 {
                m.stale_listings -= 1;
                return paginate(Vec::new());
            }
            // GitLab matches package_name by part of the name.
            let name = params.get("package_name").cloned().unwrap_or_default();
            let version = params.get("package_version");
            let kind = params.get("package_type").map(String::as_str);
            let items = m
                .package_list
                .iter()
                .filter(|_| kind.is_none_or(|k| k == "generic"))
                .filter(|p| p.name.contains(&name))
                .filter(|p| version.is_none_or(|v| &p.version == v))
                .map(|p| json!({"id": p.id, "name": p.name, "version": p.version, "package_type": "generic", "status": "default"}))
                .collect();
            paginate(items)
        }
        ("GET", ["packages", id, "package_files"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(p) = m.package_list.iter().find(|p| p.id == id) else {
                return answer(404, json!({"message": "404 Package Not Found"}));
            };
            let items = p
                .files
                .iter()
                .map(|f| {
                    json!({"id": f.id, "package_id": id, "file_name": f.name, "size": f.bytes.len(),
                           "file_md5": null, "file_sha1": null,
                           "file_sha256": hex::encode(Sha256::digest(&f.bytes)),
                           "created_at": "2026-12-03T00:00:00.000Z"})
                })
                .collect();
            paginate(items)
        }
        ("DELETE", ["packages", id, "package_files", file]) => {
            if m.refuse_package_delete {
                return forbidden();
            }
            let (id, file): (u64, u64) = (id.parse().unwrap_or(0), file.parse().unwrap_or(0));
            let Some(p) = m.package_list.iter_mut().find(|p| p.id == id) else {
                return answer(404, json!({"message": "404 Package Not Found"}));
            };
            let before = p.files.len();
            p.files.retain(|f| f.id != file);
            if p.files.len() == before {
                return answer(404, json!({"message": "404 Package File Not Found"}));
            }
            m.served();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => answer(404, json!({"message": "404 Not Found"})),
    }
}
