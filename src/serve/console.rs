//! The web console: pages `envgate serve` shows people, under
//! `[console] base_path`.
//!
//! ```text
//! GET  {base}/                  the App's repositories the person may read
//! GET  {base}/login             → the forge's OAuth authorization
//! GET  {base}/oauth/callback    ← code and state; the session cookie
//! POST {base}/logout            (csrf)
//! GET  {base}/assets/page.css   the stylesheet (no inline style anywhere)
//! GET  {base}/{owner}/{repo}    environments and the matrix
//!      (?env=E (repeated or a comma list), q=search, state=attention|…)
//! GET  {base}/{owner}/{repo}/file/{sha}/{path}  → the file on the forge
//! GET  {base}/{owner}/{repo}/releases                       its releases
//! GET  {base}/{owner}/{repo}/audit   its audit trail, the chain verified
//!      (?env, actor, action, since, until, expect=SEQ:HASH;
//!      format=jsonl|csv: the export, as a download)
//! GET  {base}/{owner}/{repo}/releases/{tag}                 a release
//! GET  {base}/{owner}/{repo}/releases/{tag}/bundle/{env}    its bundle's SQL
//!      (?part=manifest: the manifest), as a download
//! GET  {base}/{owner}/{repo}/releases/{tag}/promote?env=E   the preview
//! POST {base}/{owner}/{repo}/releases/{tag}/promote         (env, csrf)
//!      … and /rollback the same way
//! ```
//!
//! Promoting and rolling back run exactly as `/promote` and `/rollback`
//! from a comment ([`crate::jobs::command::run`]): write access, then the
//! environment's admins and promoters, audited the same, refusals
//! included; the preview is the command's `--dry-run` with the bundle the
//! environment would receive.
//!
//! Every page has a JSON twin at the same address (`Accept:
//! application/json`). Who someone is comes from the forge (GitHub App
//! user authorization); what they may read is asked of the forge for each
//! repository, with the installation's token. The session is a sealed
//! cookie (HttpOnly, SameSite=Lax, Secure over https) carrying the token
//! every form must echo. Pages send a Content-Security-Policy that allows
//! no script at all.

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

fn html(status: StatusCode, body: String) -> Response {
    guarded(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
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

/// A forge's OAuth client, when people may log in with it.
fn oauth_of(shared: &Shared, forge: Forge) -> Option<&OAuthClient> {
    match forge {
        Forge::GitHub => shared.cfg.github.as_ref().and_then(|g| g.oauth.as_ref()),
        Forge::GitLab => shared.cfg.gitlab.as_ref().and_then(|g| g.oauth.as_ref()),
    }
}

/// Where a forge sends people back after they authorized envgate.
fn callback_path(c: &ConsoleConfig, forge: Forge) -> String {
    match forge {
        Forge::GitHub => format!("{}/oauth/callback", c.base_path),
        Forge::GitLab => format!("{}/oauth/gitlab/callback", c.base_path),
    }
}

fn github_of(shared: &Shared) -> &crate::forge::github::GitHub {
    shared
        .github
        .as_ref()
        .expect("[console] is refused without [github]")
}

#[derive(Deserialize)]
struct LoginQuery {
    back: Option<String>,
    /// `github` or `gitlab`; asked when both are configured.
    forge: Option<String>,
}

/// To the forge's authorization page, with a sealed cookie holding the
/// `state` it must send back; where both forges are configured and the
/// person has not said which, a page to choose.
async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let c = console(&shared);
    let back = session::safe_back(&c.base_path, q.back.as_deref().unwrap_or(""));
    let forge = match q.forge.as_deref() {
        Some("github") => Forge::GitHub,
        Some("gitlab") => Forge::GitLab,
        _ => match (
            oauth_of(&shared, Forge::GitHub),
            oauth_of(&shared, Forge::GitLab),
        ) {
            (Some(_), None) => Forge::GitHub,
            (None, Some(_)) => Forge::GitLab,
            _ => {
                let enc: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
                let github = format!("{}/login?forge=github&back={enc}", c.base_path);
                let gitlab = format!("{}/login?forge=gitlab&back={enc}", c.base_path);
                return html(
                    StatusCode::OK,
                    render::console_message_html(
                        &c.base_path,
                        "Log in",
                        "Log in with the forge that holds your repositories.",
                        &[
                            (&github, "Log in with GitHub"),
                            (&gitlab, "Log in with GitLab"),
                        ],
                        None,
                    ),
                );
            }
        },
    };
    let Some(oauth) = oauth_of(&shared, forge) else {
        return message(
            &shared,
            &headers,
            StatusCode::NOT_FOUND,
            "Not found",
            "Logging in with that forge is not configured here.",
            None,
        );
    };
    let pending = Pending {
        state: random_token(16),
        expires: now() + OAUTH_SECONDS,
        back,
        forge,
    };
    let callback = format!("{}{}", c.public_url, callback_path(c, forge));
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &oauth.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("state", &pending.state);
    let to = match forge {
        Forge::GitHub => format!("{}/login/oauth/authorize?{}", oauth.web_url, query.finish()),
        // GitLab: an OAuth application's code flow, reading who you are.
        Forge::GitLab => format!(
            "{}/oauth/authorize?{}",
            oauth.web_url,
            query
                .append_pair("response_type", "code")
                .append_pair("scope", "read_user")
                .finish()
        ),
    };
    let sealed = session::seal(&c.session_key, &pending);
    redirect(
        &to,
        vec![set_cookie(c, OAUTH_COOKIE, &sealed, OAUTH_SECONDS)],
    )
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    logged_in(&shared, &headers, q, Forge::GitHub).await
}

async fn gitlab_callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    logged_in(&shared, &headers, q, Forge::GitLab).await
}

/// The forge sent the person back with a code: if the `state` is the one
/// this browser's login sent, the code is exchanged once for a user token,
/// used only to ask the forge who they are, and the session begins.
async fn logged_in(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    q: CallbackQuery,
    forge: Forge,
) -> Response {
    let c = console(shared);
    let failed = |status: StatusCode, text: &str| {
        message(
            shared,
            headers,
            status,
            "Login did not complete",
            text,
            None,
        )
    };
    let pending: Option<Pending> = cookie(headers, OAUTH_COOKIE)
        .and_then(|sealed| session::open(&c.session_key, &sealed, now()));
    let (Some(pending), Some(code), Some(state)) = (pending, q.code, q.state) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "The login expired or did not start here. Log in again.",
        );
    };
    if !session::same_token(&state, &pending.state) || pending.forge != forge {
        return failed(
            StatusCode::BAD_REQUEST,
            "The forge answered for another login attempt. Log in again.",
        );
    }
    let Some(oauth) = oauth_of(shared, forge) else {
        return failed(StatusCode::NOT_FOUND, "That forge is not configured here.");
    };
    let redirect_uri = format!("{}{}", c.public_url, callback_path(c, forge));
    let who = match forge {
        Forge::GitHub => {
            let token = github::oauth_token(
                &oauth.web_url,
                &oauth.client_id,
                &oauth.client_secret,
                &code,
                &redirect_uri,
            )
            .await;
            match token {
                Ok(t) => github_of(shared).user_login(&t).await.map(|l| (l, None)),
                Err(e) => Err(e),
            }
        }
        Forge::GitLab => {
            let token = crate::forge::gitlab::oauth_token(
                &oauth.web_url,
                &oauth.client_id,
                &oauth.client_secret,
                &code,
                &redirect_uri,
            )
            .await;
            match (token, shared.gitlab.as_ref()) {
                (Ok(t), Some(gl)) => gl.user_of(&t).await.map(|(id, l)| (l, Some(id))),
                (Err(e), _) => Err(e),
                (Ok(_), None) => Err(crate::forge::ApiError::Invalid(
                    "GitLab is not configured".into(),
                )),
            }
        }
    };
    let (login, user_id) = match who {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(forge = forge.as_str(), "console login: {e}");
            return failed(
                StatusCode::BAD_GATEWAY,
                "The forge did not accept the login, or did not say who you are. Log in again.",
            );
        }
    };
    tracing::info!(%login, forge = forge.as_str(), "console login");
    let s = Session {
        login,
        expires: now() + SESSION_SECONDS,
        csrf: random_token(32),
        forge,
        user_id,
    };
    redirect(
        &pending.back,
        vec![
            set_cookie(
                c,
                SESSION_COOKIE,
                &session::seal(&c.session_key, &s),
                SESSION_SECONDS,
            ),
            set_cookie(c, OAUTH_COOKIE, "", 0),
        ],
    )
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let c = console(&shared);
    let Some(s) = session_of(&shared, &headers) else {
        return redirect(
            &format!("{}/", c.base_path),
            vec![set_cookie(c, SESSION_COOKIE, "", 0)],
        );
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    if !session::same_token(sent, &s.csrf) {
        tracing::warn!(login = %s.login, "console: a form without its token was refused");
        return message(
            &shared,
            &headers,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form did not come from an envgate page (its token is missing or wrong).",
            None,
        );
    }
    redirect(
        &format!("{}/", c.base_path),
        vec![set_cookie(c, SESSION_COOKIE, "", 0)],
    )
}

/// The repositories the person may read: the App's installations'
/// (GitHub), or the configured projects (GitLab).
async fn index(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let base = console(&shared).base_path.clone();
    let s = match require_session(&shared, &headers, &format!("{base}/")) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listed = match s.forge {
        Forge::GitHub => github_repositories(&shared, &s).await,
        Forge::GitLab => gitlab_projects(&shared, &s).await,
    };
    let sites = match listed {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("console: {e}");
            return message(
                &shared,
                &headers,
                StatusCode::BAD_GATEWAY,
                "The forge did not answer",
                "The list of repositories could not be read. Try again.",
                Some(&nav(&shared, &s, None)),
            );
        }
    };
    // Each repository's environments, read as its page reads them, on a
    // thread of its own; one that cannot be read says so in its line.
    let (job_shared, job_who, job_sites) = (shared.clone(), who(&s), sites.clone());
    let states = on_own_thread(move || {
        Box::pin(async move {
            let mut out = Vec::new();
            for (site, _) in job_sites.iter().take(INDEX_STATES) {
                out.push(super::pages::summary(&job_shared, site, &job_who).await);
            }
            Ok(out)
        })
    })
    .await
    .unwrap_or_default();
    let repos: Vec<render::RepoLine> = sites
        .iter()
        .enumerate()
        .map(|(i, (site, branch))| render::RepoLine {
            repository: site.shown(),
            default_branch: branch.clone(),
            url: site.home(&base),
            environments: match states.get(i) {
                Some(Ok(Some(lines))) => Some(lines.clone()),
                Some(Ok(None)) => Some(Vec::new()),
                Some(Err(e)) => {
                    tracing::warn!(repo = %site.shown(), "console: {}", crate::secrets::scrubbed(e));
                    None
                }
                None => None,
            },
        })
        .collect();
    if wants_json(&headers) {
        let list: Vec<serde_json::Value> = repos
            .iter()
            .map(|r| serde_json::to_value(r).expect("serializes"))
            .collect();
        return json(
            StatusCode::OK,
            serde_json::json!({"schema_version": 1, "login": s.login, "forge": s.forge.as_str(), "repositories": list})
                .to_string(),
        );
    }
    html(
        StatusCode::OK,
        render::console_repos_html(&repos, &nav(&shared, &s, None)),
    )
}

/// The App's installed repositories `s` may read, with default branches.
async fn github_repositories(shared: &Shared, s: &Session) -> Result<Vec<(Site, String)>, String> {
    let gh = github_of(shared);
    let all = gh
        .installed_repositories()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (installation, full, branch) in all {
        let Some((owner, name)) = full.split_once('/') else {
            continue;
        };
        match gh
            .repo(installation, owner, name)
            .permission(&s.login)
            .await
        {
            Ok(p) if p != "none" => out.push((
                Site::GitHub {
                    installation,
                    owner: owner.to_owned(),
                    name: name.to_owned(),
                },
                branch,
            )),
            Ok(_) => {}
            Err(e) => tracing::warn!(repo = %full, "console: {e}"),
        }
    }
    Ok(out)
}

/// The configured GitLab projects `s` may read (Reporter or above).
async fn gitlab_projects(shared: &Shared, s: &Session) -> Result<Vec<(Site, String)>, String> {
    let mut out = Vec::new();
    let projects = shared
        .cfg
        .gitlab
        .as_ref()
        .map_or(&[][..], |g| g.projects.as_slice());
    for path in projects {
        match gitlab_site(shared, path, s).await {
            Ok(Some((site, branch))) => out.push((site, branch)),
            Ok(None) => {}
            Err(e) => tracing::warn!(project = %path, "console: {e}"),
        }
    }
    Ok(out)
}

/// A GitLab project `s` may read (Reporter or above), and its default
/// branch; None when there is none they may.
async fn gitlab_site(
    shared: &Shared,
    path: &str,
    s: &Session,
) -> Result<Option<(Site, String)>, String> {
    let gl = shared.gitlab.as_ref().ok_or("GitLab is not configured")?;
    let Some((id, path, branch)) = gl.project_by_path(path).await.map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let level = gl
        .project_at(&id.to_string(), &path)
        .access_level(s.user_id.unwrap_or(0))
        .await
        .map_err(|e| e.to_string())?;
    Ok((level >= crate::forge::gitlab::REPORTER).then_some((Site::GitLab { id, path }, branch)))
}

/// A GitHub repository `s` may read, through which installation.
async fn github_site(
    shared: &Shared,
    owner: &str,
    name: &str,
    s: &Session,
) -> Result<Option<Site>, String> {
    let gh = github_of(shared);
    let Some(installation) = gh
        .installation_of(owner, name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let permission = gh
        .repo(installation, owner, name)
        .permission(&s.login)
        .await
        .map_err(|e| e.to_string())?;
    Ok((permission != "none").then(|| Site::GitHub {
        installation,
        owner: owner.to_owned(),
        name: name.to_owned(),
    }))
}

/// A repository's environments and matrix. The query narrows it:
/// `env` (repeated, or a comma list; none: all), `q` (a search over
/// version, name and file), `state` (`attention` or a state's name).
async fn repository(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let view = match matrix_view(query.as_deref().unwrap_or("")) {
        Ok(v) => v,
        Err(m) => {
            return message(
                &shared,
                &headers,
                StatusCode::BAD_REQUEST,
                "Not understood",
                &m,
                Some(&bar),
            );
        }
    };
    let want_json = wants_json(&headers);
    let (job_shared, job_bar) = (shared.clone(), bar.clone());
    let result = on_own_thread(move || {
        Box::pin(async move {
            super::pages::matrix(&job_shared, &site, &who, &job_bar, &view, want_json).await
        })
    })
    .await;
    match result {
        Ok(Some(Err(m))) => message(
            &shared,
            &headers,
            StatusCode::BAD_REQUEST,
            "Not understood",
            &m,
            Some(&bar),
        ),
        other => page_of(
            &shared,
            &headers,
            &bar,
            want_json,
            other.map(|o| o.map(|r| r.unwrap_or_default())),
            (StatusCode::BAD_GATEWAY, "The matrix could not be read"),
        ),
    }
}

/// The matrix's query: environments, a search, a state.
fn matrix_view(query: &str) -> Result<super::pages::MatrixView, String> {
    let mut view = super::pages::MatrixView::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = v.trim();
        match k.as_ref() {
            "env" => view.envs.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned),
            ),
            "q" if !v.is_empty() => view.narrowing.search = Some(v.chars().take(200).collect()),
            "state" if !v.is_empty() => view.narrowing.state = Some(v.parse()?),
            _ => {}
        }
    }
    view.envs.dedup();
    Ok(view)
}

/// A migration's file, from the matrix's short links: on to the forge at
/// the commit the page was read at.
async fn file(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, at, path)): Path<(String, String, String, String)>,
) -> Response {
    let here = here(&uri);
    let site = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok((_, _, site, _)) => site,
        Err(r) => return *r,
    };
    // A commit, whole or abbreviated (the matrix's links use 12 digits).
    let commit = (7..=40).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_hexdigit());
    if !commit || path.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return message(
            &shared,
            &headers,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such file link.",
            None,
        );
    }
    redirect(&site.file_url(&shared, &at, &path), Vec::new())
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
        Err(e) => {
            tracing::warn!("console: {}", crate::secrets::scrubbed(&e));
            message(
                shared,
                headers,
                failed.0,
                failed.1,
                &crate::secrets::scrubbed(&e),
                Some(bar),
            )
        }
    }
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

/// A name from a form or an address: an environment or a tag, without
/// spaces or control characters, as the chat-ops grammar reads them.
fn word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
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

async fn release(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, tag)): Path<(String, String, String)>,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let want_json = wants_json(&headers);
    let (job_shared, job_bar) = (shared.clone(), bar.clone());
    let result = on_own_thread(move || {
        Box::pin(async move {
            super::pages::release(&job_shared, &site, &who, &tag, &job_bar, want_json).await
        })
    })
    .await;
    page_of(
        &shared,
        &headers,
        &bar,
        want_json,
        result,
        (StatusCode::NOT_FOUND, "No such release"),
    )
}

async fn releases(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let want_json = wants_json(&headers);
    let (job_shared, job_bar) = (shared.clone(), bar.clone());
    let result = on_own_thread(move || {
        Box::pin(async move {
            super::pages::releases(&job_shared, &site, &who, &job_bar, want_json).await
        })
    })
    .await;
    page_of(
        &shared,
        &headers,
        &bar,
        want_json,
        result,
        (StatusCode::BAD_GATEWAY, "The releases could not be read"),
    )
}

#[derive(Deserialize)]
struct PartQuery {
    part: Option<String>,
}

/// A release's bundle for one environment, SQL or manifest, as a file.
async fn bundle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, tag, env)): Path<(String, String, String, String)>,
    Query(q): Query<PartQuery>,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let manifest = q.part.as_deref() == Some("manifest");
    let job_shared = shared.clone();
    let result = on_own_thread(move || {
        Box::pin(async move { super::pages::bundle(&job_shared, &site, &who, &tag, &env).await })
    })
    .await;
    match result {
        Ok(Some((stem, sql, manifest_json))) => {
            let (file, content_type, body) = if manifest {
                (
                    format!("{stem}.manifest.json"),
                    "application/json",
                    manifest_json,
                )
            } else {
                (format!("{stem}.sql"), "application/sql; charset=utf-8", sql)
            };
            download(&file, content_type, body)
        }
        Ok(None) => message(
            &shared,
            &headers,
            StatusCode::NOT_FOUND,
            "No such bundle",
            "That environment is not export_only, or it has this release already.",
            Some(&bar),
        ),
        Err(e) => message(
            &shared,
            &headers,
            StatusCode::NOT_FOUND,
            "No such release",
            &crate::secrets::scrubbed(&e),
            Some(&bar),
        ),
    }
}

#[derive(Deserialize)]
struct EnvQuery {
    env: Option<String>,
}

/// The preview of a promotion or rollback: the command's `--dry-run`, the
/// bundle, and the form that confirms.
async fn preview(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, tag, action)): Path<(String, String, String, String)>,
    Query(q): Query<EnvQuery>,
) -> Response {
    act(
        shared,
        headers,
        uri.path(),
        owner,
        name,
        tag,
        action,
        q.env.unwrap_or_default(),
        None,
    )
    .await
}

/// A confirmed promotion or rollback: the form's token checked first.
async fn confirm(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name, tag, action)): Path<(String, String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let env = form.get("env").cloned().unwrap_or_default();
    act(
        shared,
        headers,
        uri.path(),
        owner,
        name,
        tag,
        action,
        env,
        Some(csrf),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn act(
    shared: Arc<Shared>,
    headers: HeaderMap,
    path: &str,
    owner: String,
    name: String,
    tag: String,
    action: String,
    env: String,
    csrf: Option<String>,
) -> Response {
    // After a login, back to this preview.
    let here = format!(
        "{path}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("env", &env)
            .finish()
    );
    if csrf.is_some() && session_of(&shared, &headers).is_none() {
        return message(
            &shared,
            &headers,
            StatusCode::FORBIDDEN,
            "Refused",
            "Log in first.",
            None,
        );
    }
    let (s, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if let Some(sent) = &csrf
        && !session::same_token(sent, &s.csrf)
    {
        tracing::warn!(login = %s.login, "console: a form without its token was refused");
        return message(
            &shared,
            &headers,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form did not come from an envgate page (its token is missing or wrong).",
            Some(&bar),
        );
    }
    if !matches!(action.as_str(), "promote" | "rollback") || !word(&env) || !word(&tag) {
        return message(
            &shared,
            &headers,
            StatusCode::BAD_REQUEST,
            "Not understood",
            "Promote or roll back one release in one environment.",
            Some(&bar),
        );
    }
    let preview = csrf.is_none();
    let command = format!(
        "/{action} {env} {tag}{}",
        if preview { " --dry-run" } else { "" }
    );
    let want_json = wants_json(&headers);
    let job_shared = shared.clone();
    let (job_tag, job_env) = (tag.clone(), env.clone());
    let with_bundle = preview && action == "promote";
    let outcome = on_own_thread(move || {
        Box::pin(async move {
            super::pages::action(
                &job_shared,
                &site,
                &who,
                &command,
                with_bundle.then_some((job_tag.as_str(), job_env.as_str())),
            )
            .await
        })
    })
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return message(
                &shared,
                &headers,
                StatusCode::BAD_GATEWAY,
                "It could not run",
                &crate::secrets::scrubbed(&e),
                Some(&bar),
            );
        }
    };
    let status = if outcome.refused.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    if want_json {
        return json(
            status,
            serde_json::json!({
                "action": action,
                "release": tag,
                "environment": env,
                "preview": preview,
                "refused": outcome.refused,
                "answer": outcome.answer,
                "bundles": outcome.bundles,
            })
            .to_string(),
        );
    }
    html(
        status,
        render::console_action_html(
            &action,
            &tag,
            &env,
            preview,
            outcome.refused.as_deref(),
            &outcome.answer,
            &outcome.bundles,
            &bar,
        ),
    )
}

/// The audit page's filters, as its form sends them (empty: no filter).
#[derive(Deserialize, Default)]
struct AuditQuery {
    env: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// A published head (`SEQ:HASH`) the chain must hold.
    expect: Option<String>,
    /// `jsonl` or `csv`: the export instead of the page.
    format: Option<String>,
}

/// How many repositories' states the list reads (each reads its
/// environments); those beyond are listed without.
const INDEX_STATES: usize = 50;

/// The newest records the page shows; the twin and the exports have all.
const AUDIT_PAGE_RECORDS: usize = 500;

/// A repository's audit trail: the records of this repository the filters
/// ask for, newest first, and what checking the whole chain proved.
async fn audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let at = now();
    let bound = |field: &str, v: &Option<String>| {
        given(v)
            .map(|t| audit::time_bound(t, at).map_err(|m| format!("{field}: {m}")))
            .transpose()
    };
    let parsed = (|| {
        let filter = audit::Filter {
            repository: None,
            environment: given(&q.env).map(str::to_owned),
            actor: given(&q.actor).map(str::to_owned),
            kind: given(&q.action).map(str::to_owned),
            since: bound("since", &q.since)?,
            until: bound("until", &q.until)?,
        };
        let expected = given(&q.expect)
            .map(|h| {
                h.parse::<audit::Head>()
                    .map_err(|m| format!("published head: {m}"))
            })
            .transpose()?;
        Ok::<_, String>((filter, expected))
    })();
    let (filter, expected) = match parsed {
        Ok(p) => p,
        Err(m) => {
            return message(
                &shared,
                &headers,
                StatusCode::BAD_REQUEST,
                "Not understood",
                &m,
                Some(&bar),
            );
        }
    };
    let filtered = !filter.is_empty();
    let job_shared = shared.clone();
    let read = on_own_thread(move || {
        Box::pin(
            async move { super::pages::audit(&job_shared, &site, &who, filter, expected).await },
        )
    })
    .await;
    let (records, check) = match read {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("console: {}", crate::secrets::scrubbed(&e));
            return message(
                &shared,
                &headers,
                StatusCode::BAD_GATEWAY,
                "The audit trail could not be read",
                &crate::secrets::scrubbed(&e),
                Some(&bar),
            );
        }
    };
    let status = if check.tampered.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    match q.format.as_deref() {
        Some("jsonl") => {
            return download(
                &format!("audit-{owner}-{name}.jsonl"),
                "application/jsonl",
                render::audit_jsonl(&records, &check),
            );
        }
        Some("csv") => {
            return match render::audit_csv(&records, &check) {
                Ok(text) => download(
                    &format!("audit-{owner}-{name}.csv"),
                    "text/csv; charset=utf-8",
                    text,
                ),
                Err(e) => message(
                    &shared,
                    &headers,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The export failed",
                    &e,
                    Some(&bar),
                ),
            };
        }
        Some(other) if !other.is_empty() => {
            return message(
                &shared,
                &headers,
                StatusCode::BAD_REQUEST,
                "Not understood",
                "An export is format=jsonl or format=csv.",
                Some(&bar),
            );
        }
        _ => {}
    }
    if wants_json(&headers) {
        return json(
            status,
            serde_json::json!({
                "schema_version": 1,
                "repository": format!("{owner}/{name}"),
                "records": records,
                "check": check,
            })
            .to_string(),
        );
    }
    // The export links carry the page's filters.
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [
                ("env", &q.env),
                ("actor", &q.actor),
                ("action", &q.action),
                ("since", &q.since),
                ("until", &q.until),
                ("expect", &q.expect),
            ]
            .into_iter()
            .filter_map(|(k, v)| given(v).map(|v| (k, v))),
        )
        .finish();
    let total = records.len();
    let newest: Vec<&audit::Record> = records.iter().rev().take(AUDIT_PAGE_RECORDS).collect();
    html(
        status,
        render::console_audit_html(
            &newest,
            total,
            &check,
            &render::AuditForm {
                env: given(&q.env).unwrap_or(""),
                actor: given(&q.actor).unwrap_or(""),
                action: given(&q.action).unwrap_or(""),
                since: given(&q.since).unwrap_or(""),
                until: given(&q.until).unwrap_or(""),
                expect: given(&q.expect).unwrap_or(""),
                query: &query,
                filtered,
            },
            &bar,
        ),
    )
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

/// A form field as given: None when absent or blank.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Where a request was, to come back to after a login: its path and query
/// as sent (still encoded).
fn here(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}
