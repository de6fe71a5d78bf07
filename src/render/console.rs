//! The console's pages (`envgate serve`, under `[console] base_path`):
//! every value HTML-escaped by the templates, the stylesheet served
//! beside them so the pages need neither inline style nor script.

use super::{EnvConfig, Matrix, html_environment, page_html};
use minijinja::Value;
use serde::Serialize;

/// The pages' stylesheet, served at [`stylesheet_href`].
pub const STYLESHEET: &str = include_str!("../../templates/page.css");

/// Renders one of the console's pages, each linking the stylesheet served
/// under `base`.
fn console_page(name: &str, base: &str, ctx: Value) -> String {
    html_environment()
        .get_template(name)
        .and_then(|t| t.render(minijinja::context! { stylesheet => stylesheet_href(base), ..ctx }))
        .unwrap_or_else(|e| panic!("the page failed to render: {e:#}"))
}

/// Where the console serves its stylesheet: under the console, named by
/// its content, so browsers may keep it for good.
pub fn stylesheet_href(base: &str) -> String {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(STYLESHEET.as_bytes())[..6])
    });
    format!("{base}/assets/page.css?v={}", *VERSION)
}

/// The console's bar: where its pages live, who is logged in, the token
/// their forms carry, the repository shown.
#[derive(Clone, Debug, Serialize)]
pub struct Nav {
    pub base: String,
    pub login: String,
    pub csrf: String,
    /// The repository shown (`owner/name`, `group/project`).
    pub repo: Option<String>,
    /// Its pages' address (`{base}/owner/name`, `{base}/-/group%2Fproject`).
    pub home: String,
    /// Where links to the repository's files at the commit shown start,
    /// relative to the page.
    pub files_at: Option<String>,
}

/// A change of an environment's mode, from the audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct ModeEvent {
    /// `YYYY-MM-DD HH:MM` UTC.
    pub at: String,
    pub text: String,
}

/// A mode record of the audit trail as an environment's card shows it:
/// what changed (the details up to the first `;`) and who.
pub fn mode_event(at: &str, action: &str, actor: &str, details: &str) -> ModeEvent {
    let what = details.split(';').next().unwrap_or("").trim();
    let what = if what.is_empty() { action } else { what };
    ModeEvent {
        at: at.replace('T', " ").chars().take(16).collect(),
        text: if what.contains(" by ") {
            what.to_owned()
        } else {
            format!("{what}, by {actor}")
        },
    }
}

/// What the console adds to an environment's card: where its database
/// is (without credentials) and its latest mode changes, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct EnvNotes {
    pub location: String,
    pub modes: Vec<ModeEvent>,
}

/// The console's matrix page beyond the matrix: when and at which commit
/// it was read, and the filters as the reader set them.
#[derive(Debug, Serialize)]
pub struct MatrixPage<'a> {
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub read_at: &'a str,
    /// The default branch's commit read.
    pub commit: &'a str,
    /// Every environment of the repository (the matrix may show fewer).
    pub environments: &'a [&'a str],
    /// Those asked for; empty: all.
    pub chosen: &'a [String],
    pub search: &'a str,
    /// `attention`, a state's name, or empty.
    pub state: &'a str,
    /// How many migrations there are before narrowing.
    pub all: usize,
    /// Whether anything is filtered out.
    pub narrowed: bool,
}

/// The console's matrix page: the status page with the console's bar,
/// where each environment is (`locations`, without credentials) and the
/// filters, which work without script (a form the server answers).
pub fn console_matrix_html(
    envs: &[&EnvConfig],
    matrix: &Matrix<'_>,
    title: &str,
    nav: &Nav,
    notes: &[EnvNotes],
    page: &MatrixPage<'_>,
) -> String {
    page_html(envs, matrix, title, None, Some((nav, page)), Some(notes))
}

/// A repository in the console's list: its page, and each environment's
/// state (None: it could not be read; empty: no envgate.toml).
#[derive(Clone, Debug, Serialize)]
pub struct RepoLine {
    pub repository: String,
    pub default_branch: String,
    pub url: String,
    pub environments: Option<Vec<EnvLine>>,
}

/// One environment in a repository's line.
#[derive(Clone, Debug, Serialize)]
pub struct EnvLine {
    pub name: String,
    pub mode: String,
    pub reachable: bool,
    pub counts: crate::core::matrix::Counts,
}

/// The console's list of repositories, each with a line per environment.
pub fn console_repos_html(repos: &[RepoLine], nav: &Nav) -> String {
    console_page(
        "console_repos.html",
        &nav.base,
        minijinja::context! {
            repos => Value::from(minijinja::value::Serde(repos)),
            nav => Value::from(minijinja::value::Serde(nav)),
        },
    )
}

/// A console page that says one thing (a refusal, an error, logged out).
pub fn console_message_html(
    base: &str,
    heading: &str,
    text: &str,
    links: &[(&str, &str)],
    nav: Option<&Nav>,
) -> String {
    console_page(
        "console_message.html",
        base,
        minijinja::context! {
            heading => heading,
            text => text,
            links => links
                .iter()
                .map(|&(href, text)| minijinja::context! { href => href, text => text })
                .collect::<Vec<_>>(),
            nav => Value::from(minijinja::value::Serde(&nav)),
        },
    )
}

/// The console's page of a release: its progress, migrations and bundles,
/// and the preview buttons when `may_act`.
pub fn console_release_html(
    release: &impl Serialize,
    bundles: &impl Serialize,
    envs: &[(&str, &str)],
    may_act: bool,
    nav: &Nav,
) -> String {
    let modes: std::collections::BTreeMap<&str, &str> = envs.iter().copied().collect();
    console_page(
        "console_release.html",
        &nav.base,
        minijinja::context! {
            release => Value::from(minijinja::value::Serde(release)),
            bundles => Value::from(minijinja::value::Serde(bundles)),
            modes => Value::from(minijinja::value::Serde(&modes)),
            may_act => may_act,
            nav => Value::from(minijinja::value::Serde(nav)),
        },
    )
}

/// The console's list of a repository's releases (the JSON of `envgate
/// releases`).
pub fn console_releases_html(releases: &serde_json::Value, nav: &Nav) -> String {
    console_page(
        "console_releases.html",
        &nav.base,
        minijinja::context! {
            releases => Value::from(minijinja::value::Serde(releases)),
            nav => Value::from(minijinja::value::Serde(nav)),
        },
    )
}

/// A promotion's or rollback's preview (with the confirmation form) or
/// outcome.
#[allow(clippy::too_many_arguments)]
pub fn console_action_html(
    action: &str,
    tag: &str,
    env: &str,
    preview: bool,
    refused: Option<&str>,
    answer: &str,
    bundles: &impl Serialize,
    nav: &Nav,
) -> String {
    let heading = match (action, preview) {
        ("promote", true) => format!("Promote {tag} to {env}: preview"),
        ("promote", false) => format!("Promote {tag} to {env}"),
        (_, true) => format!("Roll back {tag} in {env}: preview"),
        _ => format!("Roll back {tag} in {env}"),
    };
    console_page(
        "console_action.html",
        &nav.base,
        minijinja::context! {
            heading => heading,
            action => action,
            tag => tag,
            env => env,
            preview => preview,
            refused => refused,
            answer => crate::secrets::scrubbed(answer),
            bundles => Value::from(minijinja::value::Serde(&bundles)),
            nav => Value::from(minijinja::value::Serde(nav)),
        },
    )
}

/// The audit page's filters as given, to show them back, and as a query
/// string for the export links.
#[derive(Debug, Serialize)]
pub struct AuditForm<'a> {
    pub env: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub since: &'a str,
    pub until: &'a str,
    pub expect: &'a str,
    pub query: &'a str,
    pub filtered: bool,
}

/// The console's audit page: what checking the chain proved, the filters,
/// the export links and the records (`newest` first, of `total`).
pub fn console_audit_html(
    newest: &[&crate::core::audit::Record],
    total: usize,
    check: &crate::core::audit::Check,
    form: &AuditForm<'_>,
    nav: &Nav,
) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        seq: u64,
        at: String,
        action: &'a str,
        actor: String,
        environment: &'a str,
        release: &'a str,
        outcome: &'a str,
        /// The pill's colour.
        state: &'static str,
        migrations: &'a [String],
        bundle: Option<&'a str>,
        details: Option<&'a str>,
        error: Option<&'a str>,
    }
    let rows: Vec<Row<'_>> = newest
        .iter()
        .map(|r| {
            let e = &r.entry;
            Row {
                seq: r.seq,
                at: e.at.replace('T', " ").trim_end_matches('Z').to_owned(),
                action: &e.action,
                actor: super::audit::audit_actor(r),
                environment: e.environment.as_deref().unwrap_or(""),
                release: e.release.as_deref().unwrap_or(""),
                outcome: &e.outcome,
                state: match e.outcome.as_str() {
                    "ok" => "applied",
                    "failed" => "failed",
                    "refused" => "drifted",
                    _ => "pending",
                },
                migrations: &e.migrations,
                bundle: e.bundle_sha256.as_deref().map(|b| &b[..b.len().min(12)]),
                details: e.details.as_deref(),
                error: e.error.as_deref(),
            }
        })
        .collect();
    console_page(
        "console_audit.html",
        &nav.base,
        minijinja::context! {
            records => Value::from(minijinja::value::Serde(&rows)),
            total => total,
            check => Value::from(minijinja::value::Serde(check)),
            head => check.head.as_ref().map(ToString::to_string),
            expected => check.expected.as_ref().map(ToString::to_string),
            form => Value::from(minijinja::value::Serde(form)),
            nav => Value::from(minijinja::value::Serde(nav)),
        },
    )
}
