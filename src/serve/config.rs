//! `envgate serve`'s configuration: a TOML file, then environment
//! variables, which win (so a container image needs no file at all).
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! control_store = "postgres://envgate:${CONTROL_DB_PASSWORD}@ops-db/envgate"
//! workers = 4
//!
//! [github]
//! app_id = 12345
//! private_key_file = "/run/secrets/envgate-app.pem"
//! webhook_secret_file = "/run/secrets/envgate-webhook-secret"
//! api_url = "https://api.github.com"
//!
//! [credentials]
//! dir = "/run/secrets/envgate"          # <dir>/<owner>/<repo>/<env>.url
//! env_prefix = "ENVGATE_URL"            # ENVGATE_URL__<OWNER>__<REPO>__<ENV>
//! ```
//!
//! Environment URLs come only from here — never from the repository, whose
//! envgate.toml could otherwise point the bot's `${VAR}` lookups at its own
//! secrets.

use crate::config::ControlStoreLocation;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::jobs::remote::Credentials;

/// The public API.
pub const GITHUB_API: &str = "https://api.github.com";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    control_store: Option<String>,
    workers: Option<usize>,
    max_body: Option<String>,
    config_path: Option<String>,
    github: Option<RawGithub>,
    gitlab: Option<RawGitlab>,
    credentials: Option<RawCredentials>,
    console: Option<RawConsole>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    base_path: Option<String>,
    public_url: Option<String>,
    session_key: Option<String>,
    session_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitlab {
    api_url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    webhook_secret: Option<String>,
    webhook_secret_file: Option<PathBuf>,
    /// An OAuth application (scope `read_user`), for logging in to the
    /// console.
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// Where people log in. Default: `api_url` without `/api/v4`.
    web_url: Option<String>,
    /// The projects the console lists (`group/project`).
    projects: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGithub {
    app_id: Option<u64>,
    private_key_file: Option<PathBuf>,
    webhook_secret: Option<String>,
    webhook_secret_file: Option<PathBuf>,
    api_url: Option<String>,
    config_path: Option<String>,
    draft_releases: Option<bool>,
    /// The App's OAuth client, for logging in to the console.
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// Where people log in: `https://github.com`, or the Enterprise
    /// server's address. Default: from `api_url`.
    web_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    dir: Option<PathBuf>,
    env_prefix: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub control_store: ControlStoreLocation,
    pub workers: usize,
    pub max_body: usize,
    /// Where envgate.toml sits in a repository.
    pub config_path: String,
    /// The GitHub App, when envgate serves GitHub.
    pub github: Option<GithubConfig>,
    /// GitLab, when envgate serves GitLab.
    pub gitlab: Option<GitlabConfig>,
    pub credentials: Credentials,
    /// The web console, when `[console]` is configured.
    pub console: Option<ConsoleConfig>,
}

/// `[console]`: the pages `envgate serve` shows people.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// Where the pages live: `/console` (default), or `/` for the root.
    pub base_path: String,
    /// Where browsers reach envgate (`https://envgate.example.com`): the
    /// OAuth callback is under it, and cookies are `Secure` when it is
    /// https.
    pub public_url: String,
    /// Signs session cookies; 32 bytes or more.
    pub session_key: Vec<u8>,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("base_path", &self.base_path)
            .field("public_url", &self.public_url)
            .field("session_key", &"***")
            .finish()
    }
}

/// A forge's OAuth client (a GitHub App's, a GitLab OAuth application):
/// what logging in to the console needs.
#[derive(Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

/// GitLab: its API, a project or group access token, the webhook secret.
#[derive(Clone)]
pub struct GitlabConfig {
    /// `https://gitlab.com/api/v4`, or a self-managed instance's.
    pub api_url: String,
    /// Where people and their browsers go (`https://gitlab.com`): login,
    /// files. Default: `api_url` without `/api/v4`.
    pub web_url: String,
    pub token: String,
    pub webhook_secret: Vec<u8>,
    /// The OAuth application (console login), when configured.
    pub oauth: Option<OAuthClient>,
    /// The projects the console lists.
    pub projects: Vec<String>,
}

impl std::fmt::Debug for GitlabConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitlabConfig")
            .field("api_url", &self.api_url)
            .field("token", &"***")
            .field("webhook_secret", &"***")
            .finish()
    }
}

/// GitLab.com's API.
pub const GITLAB_API: &str = "https://gitlab.com/api/v4";

#[derive(Clone)]
pub struct GithubConfig {
    pub app_id: u64,
    /// The App's private key, PEM.
    pub private_key: Vec<u8>,
    pub webhook_secret: Vec<u8>,
    /// The REST API's base URL (GitHub Enterprise Server:
    /// `https://ghe.example.com/api/v3`).
    pub api_url: String,
    /// Where people and their browsers go (`https://github.com`, an
    /// Enterprise server's address): login, files. Default: from `api_url`.
    pub web_url: String,
    /// Where envgate.toml sits in a repository.
    pub config_path: String,
    /// Releases the bot creates for a tag are drafts.
    pub draft_releases: bool,
    /// The App's OAuth client (console login), when configured.
    pub oauth: Option<OAuthClient>,
}

impl std::fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubConfig")
            .field("app_id", &self.app_id)
            .field("private_key", &"***")
            .field("webhook_secret", &"***")
            .field("api_url", &self.api_url)
            .field("config_path", &self.config_path)
            .finish()
    }
}

/// Reads the file (if any), then applies `ENVGATE_*` variables.
pub fn load(file: Option<&Path>) -> Result<ServeConfig, String> {
    let raw: Raw = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?
        }
        None => Raw::default(),
    };
    let base = file
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let lookup = |v: &str| std::env::var(v).ok();
    let interpolate = |what: &str, s: &str| {
        crate::config::interpolate(s, &lookup).map_err(|m| format!("{what}: {m}"))
    };
    let has_github = raw.github.is_some();
    let gh = raw.github.unwrap_or_default();
    let creds = raw.credentials.unwrap_or_default();

    let listen = var("ENVGATE_LISTEN")
        .or(raw.listen)
        .unwrap_or_else(|| "0.0.0.0:8080".to_owned());
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("listen: '{listen}' is not an address such as 0.0.0.0:8080"))?;
    let store = var("ENVGATE_CONTROL_STORE")
        .or(raw.control_store)
        .unwrap_or_else(|| "sqlite://envgate-state.db".to_owned());
    let store = interpolate("control_store", &store)?;
    crate::secrets::register_url(&store);
    let control_store = if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        ControlStoreLocation::Postgres(store)
    } else if let Some(path) = store
        .strip_prefix("sqlite://")
        .or_else(|| store.strip_prefix("sqlite:"))
    {
        ControlStoreLocation::Sqlite(base.join(path))
    } else {
        return Err(format!(
            "control_store: expected sqlite://path or postgres://…, got '{}'",
            crate::core::redact::mask_url(&store)
        ));
    };
    let workers = match var("ENVGATE_WORKERS") {
        Some(w) => w
            .parse()
            .map_err(|_| format!("ENVGATE_WORKERS: '{w}' is not a number"))?,
        None => raw.workers.unwrap_or(4),
    }
    .min(64);
    let max_body = match raw.max_body.as_deref() {
        Some(s) => {
            parse_size(s).ok_or_else(|| format!("max_body: '{s}' is not a size such as 25MiB"))?
        }
        None => 25 * 1024 * 1024,
    };

    // A secret from the variable, the value (with ${VAR}) or a file.
    let secret = |what: &str,
                  env: &str,
                  value: Option<String>,
                  file: Option<PathBuf>|
     -> Result<Option<String>, String> {
        let s = match (var(env), value, file) {
            (Some(s), _, _) => s,
            (None, Some(s), _) => interpolate(what, &s)?,
            (None, None, Some(f)) => {
                let f = base.join(f);
                std::fs::read_to_string(&f)
                    .map_err(|e| format!("{what}_file {}: {e}", f.display()))?
                    .trim()
                    .to_owned()
            }
            (None, None, None) => return Ok(None),
        };
        if s.is_empty() {
            return Err(format!("{what} is empty"));
        }
        crate::secrets::register(&s);
        Ok(Some(s))
    };

    let github_wanted = has_github || var("ENVGATE_GITHUB_APP_ID").is_some();
    let gitlab_wanted = raw.gitlab.is_some()
        || var("ENVGATE_GITLAB_TOKEN").is_some()
        || var("ENVGATE_GITLAB_WEBHOOK_SECRET").is_some();
    if !github_wanted && !gitlab_wanted {
        return Err("neither [github] nor [gitlab] is configured (or ENVGATE_GITHUB_APP_ID, ENVGATE_GITLAB_TOKEN): envgate serve needs at least one forge".into());
    }
    let config_path = raw
        .config_path
        .or_else(|| gh.config_path.clone())
        .unwrap_or_else(|| "envgate.toml".to_owned());
    let github = if github_wanted {
        let app_id = match var("ENVGATE_GITHUB_APP_ID") {
            Some(v) => v
                .parse()
                .map_err(|_| format!("ENVGATE_GITHUB_APP_ID: '{v}' is not a number"))?,
            None => gh
                .app_id
                .ok_or("github.app_id is not set (or ENVGATE_GITHUB_APP_ID)")?,
        };
        let key_file = var("ENVGATE_GITHUB_PRIVATE_KEY_FILE")
            .map(PathBuf::from)
            .or(gh.private_key_file.map(|p| base.join(p)))
            .ok_or("github.private_key_file is not set (or ENVGATE_GITHUB_PRIVATE_KEY_FILE)")?;
        let private_key = std::fs::read(&key_file)
            .map_err(|e| format!("github.private_key_file {}: {e}", key_file.display()))?;
        // The whole key, and each of its lines (a log may quote one).
        let pem = String::from_utf8_lossy(&private_key);
        crate::secrets::register(&pem);
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .for_each(crate::secrets::register);
        let webhook_secret = secret(
            "github.webhook_secret",
            "ENVGATE_GITHUB_WEBHOOK_SECRET",
            gh.webhook_secret,
            gh.webhook_secret_file,
        )?
        .ok_or("github.webhook_secret (or webhook_secret_file, or ENVGATE_GITHUB_WEBHOOK_SECRET) is not set: envgate does not accept unsigned webhooks")?;
        let api_url = var("ENVGATE_GITHUB_API_URL")
            .or(gh.api_url)
            .unwrap_or_else(|| GITHUB_API.to_owned())
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&api_url).map_err(|e| format!("github.api_url '{api_url}': {e}"))?;
        let client_secret = secret(
            "github.client_secret",
            "ENVGATE_GITHUB_CLIENT_SECRET",
            gh.client_secret,
            gh.client_secret_file,
        )?;
        let web_url = web_url("github.web_url", gh.web_url, web_url_of(&api_url))?;
        let oauth = match (var("ENVGATE_GITHUB_CLIENT_ID").or(gh.client_id), client_secret) {
            (Some(client_id), Some(client_secret)) => Some(OAuthClient {
                client_id,
                client_secret,
            }),
            (None, None) => None,
            _ => return Err("github.client_id and github.client_secret go together (the App's OAuth client, for console login)".into()),
        };
        Some(GithubConfig {
            app_id,
            private_key,
            webhook_secret: webhook_secret.into_bytes(),
            api_url,
            web_url,
            config_path: config_path.clone(),
            draft_releases: gh.draft_releases.unwrap_or(false),
            oauth,
        })
    } else {
        None
    };
    let gitlab = if gitlab_wanted {
        let gl = raw.gitlab.unwrap_or_default();
        let token = secret("gitlab.token", "ENVGATE_GITLAB_TOKEN", gl.token, gl.token_file)?
            .ok_or("gitlab.token (or token_file, or ENVGATE_GITLAB_TOKEN) is not set: a project or group access token with the api scope")?;
        let webhook_secret = secret(
            "gitlab.webhook_secret",
            "ENVGATE_GITLAB_WEBHOOK_SECRET",
            gl.webhook_secret,
            gl.webhook_secret_file,
        )?
        .ok_or("gitlab.webhook_secret (or webhook_secret_file, or ENVGATE_GITLAB_WEBHOOK_SECRET) is not set: envgate does not accept unauthenticated webhooks")?;
        let api_url = var("ENVGATE_GITLAB_API_URL")
            .or(gl.api_url)
            .unwrap_or_else(|| GITLAB_API.to_owned())
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&api_url).map_err(|e| format!("gitlab.api_url '{api_url}': {e}"))?;
        let client_secret = secret(
            "gitlab.client_secret",
            "ENVGATE_GITLAB_CLIENT_SECRET",
            gl.client_secret,
            gl.client_secret_file,
        )?;
        let web_url = web_url(
            "gitlab.web_url",
            gl.web_url,
            api_url.trim_end_matches("/api/v4").to_owned(),
        )?;
        let oauth = match (var("ENVGATE_GITLAB_CLIENT_ID").or(gl.client_id), client_secret) {
            (Some(client_id), Some(client_secret)) => Some(OAuthClient {
                client_id,
                client_secret,
            }),
            (None, None) => None,
            _ => return Err("gitlab.client_id and gitlab.client_secret go together (an OAuth application, for console login)".into()),
        };
        let projects = gl.projects.unwrap_or_default();
        if let Some(bad) = projects
            .iter()
            .find(|p| !p.contains('/') || p.starts_with('/') || p.ends_with('/'))
        {
            return Err(format!(
                "gitlab.projects: '{bad}' is not a project path (group/project)"
            ));
        }
        Some(GitlabConfig {
            api_url,
            web_url,
            token,
            webhook_secret: webhook_secret.into_bytes(),
            oauth,
            projects,
        })
    } else {
        None
    };
    let console = match raw.console {
        None => None,
        Some(c) => {
            let base_path = c.base_path.unwrap_or_else(|| "/console".to_owned());
            let base_path = base_path.trim_end_matches('/').to_owned();
            if !(base_path.is_empty()
                || base_path.starts_with('/')
                    && base_path[1..].split('/').all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
                    }))
                || ["/webhooks", "/healthz", "/readyz", "/metrics"]
                    .iter()
                    .any(|r| base_path.starts_with(r))
            {
                return Err(format!(
                    "console.base_path '{base_path}': write a path such as /console (letters, digits, - _ .), not one of the bot's own"
                ));
            }
            let public_url = var("ENVGATE_CONSOLE_PUBLIC_URL")
                .or(c.public_url)
                .ok_or("console.public_url is not set: where browsers reach envgate (the OAuth callback is under it)")?
                .trim_end_matches('/')
                .to_owned();
            url::Url::parse(&public_url)
                .map_err(|e| format!("console.public_url '{public_url}': {e}"))?;
            let key = secret(
                "console.session_key",
                "ENVGATE_CONSOLE_SESSION_KEY",
                c.session_key,
                c.session_key_file,
            )?
            .ok_or("console.session_key (or session_key_file, or ENVGATE_CONSOLE_SESSION_KEY) is not set: it signs session cookies")?;
            if key.len() < 32 {
                return Err("console.session_key is shorter than 32 bytes".into());
            }
            if github.as_ref().is_none_or(|g| g.oauth.is_none())
                && gitlab.as_ref().is_none_or(|g| g.oauth.is_none())
            {
                return Err("[console] needs an OAuth client to log people in: [github] client_id and client_secret (the App's), or [gitlab] client_id and client_secret (an OAuth application)".into());
            }
            Some(ConsoleConfig {
                base_path,
                public_url,
                session_key: key.into_bytes(),
            })
        }
    };
    Ok(ServeConfig {
        console,
        listen,
        control_store,
        workers,
        max_body,
        config_path,
        github,
        gitlab,
        credentials: Credentials {
            dir: var("ENVGATE_CREDENTIALS_DIR")
                .map(PathBuf::from)
                .or(creds.dir.map(|d| base.join(d))),
            env_prefix: creds.env_prefix.unwrap_or_else(|| "ENVGATE_URL".to_owned()),
        },
    })
}

/// Where people sign in, from the API's address: `https://github.com` for
/// `https://api.github.com`, the server for an Enterprise one
/// (`https://ghe.example.com/api/v3`).
/// A forge's web address as given (`what` names the setting), else
/// `default`; checked, without a trailing slash.
fn web_url(what: &str, given: Option<String>, default: String) -> Result<String, String> {
    let url = given.unwrap_or(default).trim_end_matches('/').to_owned();
    url::Url::parse(&url).map_err(|e| format!("{what} '{url}': {e}"))?;
    Ok(url)
}

fn web_url_of(api_url: &str) -> String {
    if let Some(rest) = api_url.strip_prefix("https://api.") {
        return format!("https://{}", rest.split('/').next().unwrap_or(rest));
    }
    api_url
        .strip_suffix("/api/v3")
        .unwrap_or(api_url)
        .to_owned()
}

/// `25MiB`, `512KiB`, `1000000`.
fn parse_size(s: &str) -> Option<usize> {
    crate::config::parse_size(s).and_then(|n| usize::try_from(n).ok())
}

/// How long a claimed job is its worker's without news: the worker renews
/// it every third of that while the job runs, so a replica that dies (a
/// `kill -9`, a lost machine) holds its jobs at most this long before
/// another replica takes them.
pub const LEASE: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("25MiB"), Some(25 * 1024 * 1024));
        assert_eq!(parse_size("512 KiB"), Some(512 * 1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn credential_variables_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("acme/shop")).unwrap();
        std::fs::write(dir.path().join("acme/shop/prod.url"), "postgres://p@h/db\n").unwrap();
        let c = Credentials {
            dir: Some(dir.path().to_path_buf()),
            env_prefix: "EGTEST_URL".into(),
        };
        assert_eq!(
            c.variable("acme", "my-shop", "prod-eu"),
            "EGTEST_URL__ACME__MY_SHOP__PROD_EU"
        );
        assert_ne!(
            c.variable("a", "b", "c__d"),
            c.variable("a", "b__c", "d"),
            "parts never run into each other"
        );
        assert_eq!(
            c.variable("group/sub", "my--shop", "_x_"),
            "EGTEST_URL__GROUP_SUB__MY_SHOP__X"
        );
        assert_eq!(c.url("acme", "shop", "prod").unwrap(), "postgres://p@h/db");
        let err = c.url("acme", "shop", "dev").unwrap_err();
        assert!(err.contains("EGTEST_URL__ACME__SHOP__DEV"), "{err}");
        assert!(c.url("acme", "..", "x").is_err());
    }
}
