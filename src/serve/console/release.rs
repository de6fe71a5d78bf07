//! A repository's releases, a release, its bundles, and promoting or
//! rolling it back after a preview.

use super::*;

/// A name from a form or an address: an environment or a tag, without
/// spaces or control characters, as the chat-ops grammar reads them.
pub(super) fn word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub(super) async fn release(
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
            crate::serve::pages::release(&job_shared, &site, &who, &tag, &job_bar, want_json).await
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

pub(super) async fn releases(
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
            crate::serve::pages::releases(&job_shared, &site, &who, &job_bar, want_json).await
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
pub(super) struct PartQuery {
    part: Option<String>,
}

/// A release's bundle for one environment, SQL or manifest, as a file.
pub(super) async fn bundle(
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
        Box::pin(
            async move { crate::serve::pages::bundle(&job_shared, &site, &who, &tag, &env).await },
        )
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
        Err(e) => failure(
            &shared,
            &headers,
            &bar,
            (StatusCode::NOT_FOUND, "No such release"),
            &e,
        ),
    }
}

#[derive(Deserialize)]
pub(super) struct EnvQuery {
    env: Option<String>,
}

/// The preview of a promotion or rollback: the command's `--dry-run`, the
/// bundle, and the form that confirms.
pub(super) async fn preview(
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
pub(super) async fn confirm(
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
pub(super) async fn act(
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
        return forged(&shared, &headers, &s.login, Some(&bar));
    }
    if !matches!(action.as_str(), "promote" | "rollback") || !word(&env) || !word(&tag) {
        return not_understood(
            &shared,
            &headers,
            &bar,
            "Promote or roll back one release in one environment.",
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
            crate::serve::pages::action(
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
            return failure(
                &shared,
                &headers,
                &bar,
                (StatusCode::BAD_GATEWAY, "It could not run"),
                &e,
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
