//! Logging in to the console with a forge's OAuth flow, and out.

use super::*;

/// A forge's OAuth client and web address, when people may log in with
/// it.
pub(super) fn oauth_of(shared: &Shared, forge: Forge) -> Option<(&OAuthClient, &str)> {
    match forge {
        Forge::GitHub => {
            let g = shared.cfg.github.as_ref()?;
            Some((g.oauth.as_ref()?, &g.web_url))
        }
        Forge::GitLab => {
            let g = shared.cfg.gitlab.as_ref()?;
            Some((g.oauth.as_ref()?, &g.web_url))
        }
    }
}

/// Where a forge sends people back after they authorized envgate.
pub(super) fn callback_path(c: &ConsoleConfig, forge: Forge) -> String {
    match forge {
        Forge::GitHub => format!("{}/oauth/callback", c.base_path),
        Forge::GitLab => format!("{}/oauth/gitlab/callback", c.base_path),
    }
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    back: Option<String>,
    /// `github` or `gitlab`; asked when both are configured.
    forge: Option<String>,
}

/// To the forge's authorization page, with a sealed cookie holding the
/// `state` it must send back; where both forges are configured and the
/// person has not said which, a page to choose.
pub(super) async fn login(
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
    let Some((oauth, web_url)) = oauth_of(&shared, forge) else {
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
        Forge::GitHub => format!("{web_url}/login/oauth/authorize?{}", query.finish()),
        // GitLab: an OAuth application's code flow, reading who you are.
        Forge::GitLab => format!(
            "{}/oauth/authorize?{}",
            web_url,
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
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

pub(super) async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    logged_in(&shared, &headers, q, Forge::GitHub).await
}

pub(super) async fn gitlab_callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    logged_in(&shared, &headers, q, Forge::GitLab).await
}

/// The forge sent the person back with a code: if the `state` is the one
/// this browser's login sent, the code is exchanged once for a user token,
/// used only to ask the forge who they are, and the session begins.
pub(super) async fn logged_in(
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
    let Some((oauth, web_url)) = oauth_of(shared, forge) else {
        return failed(StatusCode::NOT_FOUND, "That forge is not configured here.");
    };
    let redirect_uri = format!("{}{}", c.public_url, callback_path(c, forge));
    let who = match forge {
        Forge::GitHub => {
            let token = github::oauth_token(
                web_url,
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
                web_url,
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

pub(super) async fn logout(
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
        return forged(&shared, &headers, &s.login, None);
    }
    redirect(
        &format!("{}/", c.base_path),
        vec![set_cookie(c, SESSION_COOKIE, "", 0)],
    )
}
