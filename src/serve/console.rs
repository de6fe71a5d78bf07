//! The web console: pages `envgate serve` shows people, under
//! `[console] base_path`. `{repo}` is `{owner}/{name}` on GitHub and
//! `-/{group%2Fproject}` on GitLab.
//!
//! ```text
//! GET  {base}/                   the repositories the person may read   repository
//! GET  {base}/login (?forge)     → the forge's OAuth authorization      login
//! GET  {base}/oauth/callback, {base}/oauth/gitlab/callback  ← the code  login
//! POST {base}/logout             (csrf)                                 login
//! GET  {base}/assets/page.css    the stylesheet (no inline style)
//! GET  {repo}                    environments and the matrix            repository
//!      (?env=E (repeated or a comma list), q=search, state=attention|…)
//! GET  {repo}/file/{sha}/{path}  → the file on the forge                repository
//! GET  {repo}/releases           its releases                           release
//! GET  {repo}/releases/{tag}     a release                              release
//! GET  {repo}/releases/{tag}/bundle/{env}  its bundle's SQL             release
//!      (?part=manifest: the manifest), as a download
//! GET  {repo}/releases/{tag}/promote?env=E  the preview                 release
//! POST {repo}/releases/{tag}/promote        (env, csrf)                 release
//!      … and /rollback the same way
//! GET  {repo}/audit              its audit trail, the chain verified    trail
//!      (?env, actor, action, since, until, expect=SEQ:HASH;
//!      format=jsonl|csv: the export, as a download)
//! ```
//!
//! This module holds the routes and what every page shares (sessions,
//! headers, answers, who may read a repository); the pages' use cases are
//! [`super::pages`]. Promoting and rolling back run exactly as `/promote`
//! and `/rollback` from a comment ([`crate::jobs::command::run`]): the
//! forge's write rule, then the environment's admins and promoters,
//! audited the same, refusals included; the preview is the command's
//! `--dry-run` with the bundle the environment would receive.
//!
//! Every page has a JSON twin at the same address (`Accept:
//! application/json`). Who someone is comes from the forge they log in
//! with (GitHub App user authorization, GitLab OAuth application); what
//! they may read is asked of that forge for each repository, with the
//! bot's credentials. The session is a sealed cookie (HttpOnly,
//! SameSite=Lax, Secure over https) carrying the token every form must
//! echo. Pages send a Content-Security-Policy that allows no script and no
//! inline style.

use super::Shared;
use super::config::{ConsoleConfig, OAuthClient};
use super::pages::{Site, Who};
use crate::core::audit;
use crate::core::session::{self, Forge, Pending, Session};
use crate::forge::github;
use crate::render::{self, Nav};
use axum::Router;
use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

mod login;
mod release;
mod repository;
mod trail;

use login::*;
use release::*;
use repository::*;
use trail::*;

const SESSION_COOKIE: &str = "envgate_session";
const OAUTH_COOKIE: &str = "envgate_oauth";
/// How long a login lasts.
const SESSION_SECONDS: u64 = 8 * 3600;
/// How long an OAuth round trip may take.
const OAUTH_SECONDS: u64 = 600;

/// No script, no inline style, no framing, forms only to envgate itself.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, for the router of `envgate serve`.
pub fn routes(shared: Arc<Shared>) -> Option<Router> {
    let console = shared.cfg.console.as_ref()?;
    let base = console.base_path.clone();
    let mut r = Router::new()
        .route(&format!("{base}/"), get(index))
        .route(&format!("{base}/login"), get(login))
        .route(&format!("{base}/oauth/callback"), get(callback))
        .route(
            &format!("{base}/oauth/gitlab/callback"),
            get(gitlab_callback),
        )
        .route(&format!("{base}/logout"), post(logout))
        .route(&format!("{base}/assets/page.css"), get(stylesheet))
        .route(&format!("{base}/{{owner}}/{{repo}}"), get(repository))
        .route(
            &format!("{base}/{{owner}}/{{repo}}/releases"),
            get(releases),
        )
        .route(&format!("{base}/{{owner}}/{{repo}}/audit"), get(audit))
        .route(
            &format!("{base}/{{owner}}/{{repo}}/file/{{at}}/{{*path}}"),
            get(file),
        )
        .route(
            &format!("{base}/{{owner}}/{{repo}}/releases/{{tag}}"),
            get(release),
        )
        .route(
            &format!("{base}/{{owner}}/{{repo}}/releases/{{tag}}/{{action}}"),
            get(preview).post(confirm),
        )
        .route(
            &format!("{base}/{{owner}}/{{repo}}/releases/{{tag}}/bundle/{{env}}"),
            get(bundle),
        );
    if !base.is_empty() {
        let to = format!("{base}/");
        r = r.route(&base, get(move || async move { redirect(&to, Vec::new()) }));
    }
    // Pages of a thousand migrations are mostly repeated markup: gzip
    // takes them to a tenth for browsers that ask for it.
    Some(
        r.with_state(shared)
            .layer(tower_http::compression::CompressionLayer::new().gzip(true)),
    )
}

/// The pages' stylesheet; its address carries its hash, so it is kept.
async fn stylesheet() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        render::STYLESHEET,
    )
        .into_response()
}

fn console(shared: &Shared) -> &ConsoleConfig {
    shared
        .cfg
        .console
        .as_ref()
        .expect("console routes exist only with [console]")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_token(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the system's random source");
    session::token(&buf)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `name=value` with the console's attributes; an empty value with
/// `Max-Age=0` clears it.
fn set_cookie(c: &ConsoleConfig, name: &str, value: &str, max_age: u64) -> String {
    let path = if c.base_path.is_empty() {
        "/"
    } else {
        &c.base_path
    };
    let secure = if c.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

fn session_of(shared: &Shared, headers: &HeaderMap) -> Option<Session> {
    let sealed = cookie(headers, SESSION_COOKIE)?;
    session::open(&console(shared).session_key, &sealed, now())
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            let json = a.find("application/json");
            let html = a.find("text/html");
            json.is_some() && (html.is_none() || json < html)
        })
}

/// Headers every console answer carries.
fn guarded(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

/// A page. Like its JSON twin, it passes the redactor last: a secret that
/// reached any value on it (an error, a record) leaves as `***`.
fn html(status: StatusCode, body: String) -> Response {
    guarded(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::secrets::scrubbed(&body),
        )
            .into_response(),
    )
}

fn json(status: StatusCode, body: String) -> Response {
    guarded(
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            crate::secrets::scrubbed(&body),
        )
            .into_response(),
    )
}

fn redirect(to: &str, cookies: Vec<String>) -> Response {
    let mut r = (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    guarded(r)
}

/// A page that says one thing, or its JSON twin `{"error": …}`.
fn message(
    shared: &Shared,
    headers: &HeaderMap,
    status: StatusCode,
    heading: &str,
    text: &str,
    nav: Option<&Nav>,
) -> Response {
    if wants_json(headers) {
        return json(
            status,
            serde_json::json!({"error": heading, "message": text}).to_string(),
        );
    }
    html(
        status,
        render::console_message_html(&console(shared).base_path, heading, text, &[], nav),
    )
}

/// Who is asking, or the answer that sends them to log in.
fn require_session(
    shared: &Shared,
    headers: &HeaderMap,
    here: &str,
) -> Result<Session, Box<Response>> {
    match session_of(shared, headers) {
        Some(s) => Ok(s),
        None if wants_json(headers) => Err(Box::new(json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "not logged in", "login": format!("{}/login", console(shared).base_path)})
                .to_string(),
        ))),
        None => {
            let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            Err(Box::new(redirect(
                &format!("{}/login?back={back}", console(shared).base_path),
                Vec::new(),
            )))
        }
    }
}

fn nav(shared: &Shared, s: &Session, site: Option<&Site>) -> Nav {
    let base = &console(shared).base_path;
    Nav {
        base: base.clone(),
        login: s.login.clone(),
        csrf: s.csrf.clone(),
        repo: site.map(Site::shown),
        home: site.map_or_else(String::new, |r| r.home(base)),
        files_at: None,
    }
}

/// Who a session is, for the pages' use cases.
fn who(s: &Session) -> Who {
    Who {
        login: s.login.clone(),
        forge: s.forge,
        user_id: s.user_id,
    }
}

fn github_of(shared: &Shared) -> &crate::forge::github::GitHub {
    shared
        .github
        .as_ref()
        .expect("[console] is refused without [github]")
}

/// A page read on its own thread: the page, or its JSON twin; a
/// repository without envgate.toml; or why it could not be read
/// (`failed`, with `status`).
fn page_of(
    shared: &Shared,
    headers: &HeaderMap,
    bar: &Nav,
    want_json: bool,
    result: Result<Option<String>, String>,
    failed: (StatusCode, &str),
) -> Response {
    match result {
        Ok(Some(body)) if want_json => json(StatusCode::OK, body),
        Ok(Some(body)) => html(StatusCode::OK, body),
        Ok(None) => message(
            shared,
            headers,
            StatusCode::NOT_FOUND,
            "No envgate.toml",
            "This repository's default branch has no envgate.toml.",
            Some(bar),
        ),
        Err(e) => failure(shared, headers, bar, failed, &e),
    }
}

/// A request the console does not understand (400), saying why.
fn not_understood(shared: &Shared, headers: &HeaderMap, bar: &Nav, why: &str) -> Response {
    message(
        shared,
        headers,
        StatusCode::BAD_REQUEST,
        "Not understood",
        why,
        Some(bar),
    )
}

/// A form whose token is missing or not the session's: refused (403),
/// nothing done, and logged.
fn forged(shared: &Shared, headers: &HeaderMap, login: &str, bar: Option<&Nav>) -> Response {
    tracing::warn!(%login, "console: a form without its token was refused");
    message(
        shared,
        headers,
        StatusCode::FORBIDDEN,
        "Refused",
        "This form did not come from an envgate page (its token is missing or wrong).",
        bar,
    )
}

/// Why a page could not be read or an action run: logged, and shown with
/// `heading` (secrets masked in both).
fn failure(
    shared: &Shared,
    headers: &HeaderMap,
    bar: &Nav,
    (status, heading): (StatusCode, &str),
    why: &str,
) -> Response {
    let why = crate::secrets::scrubbed(why);
    tracing::warn!("console: {heading}: {why}");
    message(shared, headers, status, heading, &why, Some(bar))
}

/// Runs `job` on a thread of its own with a runtime of its own (the
/// control store's connections stay on one thread).
async fn on_own_thread<T: Send + 'static>(
    job: impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<T, String>>>> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(job())
    })
    .await
    .map_err(|e| {
        tracing::error!("console: {e}");
        "envgate failed inside; its log says more".to_owned()
    })?
}

/// Who is asking, and the repository if they may read it (the owner `-`
/// names a GitLab project by its path: `-/group%2Fproject`); or the
/// answer to give. A login is its forge's only.
async fn reader(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    here: &str,
) -> Result<(Session, Nav, Site, Who), Box<Response>> {
    let s = require_session(shared, headers, here)?;
    let found = match (owner, s.forge) {
        ("-", Forge::GitLab) => gitlab_site(shared, name, &s)
            .await
            .map(|o| o.map(|(site, _)| site)),
        ("-", Forge::GitHub) | (_, Forge::GitLab) => Ok(None),
        (_, Forge::GitHub) => github_site(shared, owner, name, &s).await,
    };
    match found {
        Ok(Some(site)) => {
            let bar = nav(shared, &s, Some(&site));
            let w = who(&s);
            Ok((s, bar, site, w))
        }
        Ok(None) => Err(Box::new(message(
            shared,
            headers,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such repository here, or you may not read it.",
            Some(&nav(shared, &s, None)),
        ))),
        Err(e) => {
            tracing::warn!(repo = %format!("{owner}/{name}"), "console: {e}");
            Err(Box::new(message(
                shared,
                headers,
                StatusCode::BAD_GATEWAY,
                "The forge did not answer",
                "Try again.",
                Some(&nav(shared, &s, None)),
            )))
        }
    }
}

/// A file to save, with the console's headers.
fn download(file: &str, content_type: &str, body: String) -> Response {
    // Names are the repository's (GitHub allows no quote in them) and
    // envgate's own; nothing that could end the header gets through.
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type.to_owned())],
        crate::secrets::scrubbed(&body),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    guarded(r)
}

/// Where a request was, to come back to after a login: its path and query
/// as sent (still encoded).
fn here(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}
