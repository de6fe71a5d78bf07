//! The list of repositories and a repository's page: its environments and
//! matrix, narrowed as asked, and its file links.

use super::*;

/// The repositories the person may read: the App's installations'
/// (GitHub), or the configured projects (GitLab).
pub(super) async fn index(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
            use futures::StreamExt;
            // Several at a time, in order: each waits mostly on the forge
            // and its databases.
            let out: Vec<_> = futures::stream::iter(job_sites.iter().take(INDEX_STATES))
                .map(|(site, _)| crate::serve::pages::summary(&job_shared, site, &job_who))
                .buffered(INDEX_AT_ONCE)
                .collect()
                .await;
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
pub(super) async fn github_repositories(
    shared: &Shared,
    s: &Session,
) -> Result<Vec<(Site, String)>, String> {
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
pub(super) async fn gitlab_projects(
    shared: &Shared,
    s: &Session,
) -> Result<Vec<(Site, String)>, String> {
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
pub(super) async fn gitlab_site(
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
pub(super) async fn github_site(
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
pub(super) async fn repository(
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
            return not_understood(&shared, &headers, &bar, &m);
        }
    };
    let want_json = wants_json(&headers);
    let (job_shared, job_bar) = (shared.clone(), bar.clone());
    let result = on_own_thread(move || {
        Box::pin(async move {
            crate::serve::pages::matrix(&job_shared, &site, &who, &job_bar, &view, want_json).await
        })
    })
    .await;
    match result {
        Ok(Some(Err(m))) => not_understood(&shared, &headers, &bar, &m),
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
pub(super) fn matrix_view(query: &str) -> Result<crate::serve::pages::MatrixView, String> {
    let mut view = crate::serve::pages::MatrixView::default();
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
pub(super) async fn file(
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
    // A commit, whole or abbreviated (the matrix's links use 12 digits),
    // and a path without empty or parent segments.
    let commit = (7..=40).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_hexdigit());
    let plain = !path.split('/').any(|seg| seg.is_empty() || seg == "..");
    match site
        .file_url(&shared, &at, &path)
        .filter(|_| commit && plain)
    {
        Some(to) => redirect(&to, Vec::new()),
        None => message(
            &shared,
            &headers,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such file link.",
            None,
        ),
    }
}

/// How many repositories' states the list reads (each reads its
/// environments); those beyond are listed without.
pub(super) const INDEX_STATES: usize = 50;

/// How many of them are read at once.
pub(super) const INDEX_AT_ONCE: usize = 8;
