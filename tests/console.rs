//! The web console of `envgate serve`, against the fake GitHub (its OAuth
//! web flow included) and a real PostgreSQL environment: logging in, the
//! session cookie, pages and their JSON twins, who may read what, the
//! CSRF token on forms, and the headers every page carries.

#[path = "support/fake_github.rs"]
mod fake_github;
mod support;

use fake_github::{FakeGitHub, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use std::path::Path;
use support::PgDb;

const REPO: &str = "acme/shop";
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";
const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";
const SECRET: &str = "console-test-webhook-secret";
const SESSION_KEY: &str = "0123456789abcdef0123456789abcdef-session";

use support::{Answer, request};

/// The path and query of a URL on 127.0.0.1, and its port.
fn local(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").expect(url);
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

struct Console {
    served: support::Served,
    fake: FakeGitHub,
}

impl Console {
    fn start(dev: &PgDb) -> Console {
        Console::with(
            &[
                ("envgate.toml", "[environments.dev]\nurl = \"${DEV_URL}\"\n"),
                ("migrations/1_users.sql", USERS),
                ("migrations/2_orders.sql", ORDERS),
            ],
            &[("dev", dev.url())],
        )
    }

    /// The repository's default branch holds `files` (tagged `v1`); the bot
    /// has these environments' URLs.
    fn with(files: &[(&str, &str)], urls: &[(&str, String)]) -> Console {
        let fake = FakeGitHub::start();
        let main = fake.commit(REPO, files, "main");
        fake.branch(REPO, "main", &main);
        fake.tag(REPO, "v1", &main);
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-key.pem");
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = 1\n\n\
                 [github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\napi_url = \"{}\"\n\
                 client_id = \"{OAUTH_CLIENT_ID}\"\nclient_secret = \"{OAUTH_CLIENT_SECRET}\"\nweb_url = \"{}\"\n\n\
                 [credentials]\ndir = \"creds\"\n\n\
                 [console]\nbase_path = \"/console\"\npublic_url = \"http://127.0.0.1:{port}\"\nsession_key = \"{SESSION_KEY}\"\n",
                fake_github::APP_ID,
                key.display(),
                fake.url,
                fake.url
            ),
        )
        .unwrap();
        support::write_credentials(dir.path(), REPO, urls);
        let served = support::Served::start(dir, port, "envgate=debug,info");
        Console { served, fake }
    }

    fn get(&self, path: &str, cookie: Option<&str>, accept: &str) -> Answer {
        let mut headers = vec![("Accept", accept)];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        request(self.served.port, "GET", path, &headers, "")
    }

    /// Logs `login` in through the fake's OAuth flow; the session cookie.
    fn login(&self, login: &str, back: &str) -> String {
        self.fake.with(|m| m.oauth_login = login.to_owned());
        let start = self.get(&format!("/console/login?back={back}"), None, "text/html");
        assert_eq!(start.status, 302, "{}", start.body);
        let oauth = start.cookie("envgate_oauth");
        let authorize = start.header("location").unwrap().to_owned();
        assert!(
            authorize.starts_with(&format!("{}/login/oauth/authorize?client_id={OAUTH_CLIENT_ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A{}%2Fconsole%2Foauth%2Fcallback&state=", self.fake.url, self.served.port)),
            "{authorize}"
        );
        let (fake_port, path) = local(&authorize);
        let back_from_forge = request(fake_port, "GET", &path, &[], "");
        assert_eq!(back_from_forge.status, 302);
        let (_, callback) = local(back_from_forge.header("location").unwrap());
        let done = self.get(&callback, Some(&oauth), "text/html");
        assert_eq!(done.status, 302, "{}", done.body);
        assert_eq!(
            done.header("location"),
            Some(back),
            "back where the login began"
        );
        let session = done
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("envgate_session="))
            .unwrap()
            .to_owned();
        assert!(
            session.contains("; Path=/console;")
                && session.contains("HttpOnly")
                && session.contains("SameSite=Lax"),
            "{session}"
        );
        assert!(
            done.cookies()
                .iter()
                .any(|c| c.starts_with("envgate_oauth=;")),
            "the round trip's cookie is cleared"
        );
        done.cookie("envgate_session")
    }
}

#[test]
fn logging_in_with_github_and_reading_the_matrix() {
    let dev = PgDb::create("console_dev");
    support::ledger::seed(&dev, &[("1", "users", USERS)]);
    let c = Console::start(&dev);

    // Without a session: to the login, remembering where.
    let anonymous = c.get("/console/acme/shop", None, "text/html");
    assert_eq!(anonymous.status, 302);
    assert_eq!(
        anonymous.header("location"),
        Some("/console/login?back=%2Fconsole%2Facme%2Fshop")
    );
    let api = c.get("/console/acme/shop", None, "application/json");
    assert_eq!(api.status, 401, "{}", api.body);

    let session = c.login("octocat", "/console/acme/shop");
    let page = c.get("/console/acme/shop", Some(&session), "text/html");
    assert_eq!(page.status, 200, "{}", page.body);
    // Each migration links to its file at the commit shown, through the
    // console (a short address), on to the forge.
    let link = page
        .body
        .split("<th scope=\"row\"><a href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with("shop/file/") && link.ends_with("/migrations/1_users.sql"),
        "{link}"
    );
    let sha = link.split('/').nth(2).unwrap().to_owned();
    let to_forge = c.get(
        &format!("/console/acme/{link}"),
        Some(&session),
        "text/html",
    );
    assert_eq!(to_forge.status, 302, "{}", to_forge.body);
    assert_eq!(
        to_forge.header("location").unwrap(),
        format!("{}/acme/shop/blob/{sha}/migrations/1_users.sql", c.fake.url)
    );
    assert_eq!(
        c.get(
            &format!("/console/acme/shop/file/{sha}/../secrets"),
            Some(&session),
            "text/html"
        )
        .status,
        404
    );
    assert!(
        page.body.contains("<td class=\"s-applied\">applied</td>"),
        "{}",
        page.body
    );
    // The environment's mode history, from the audit trail: the first read
    // recorded dev's mode, and shows it.
    assert!(
        page.body
            .contains(" mode (none) -&gt; managed (default from the name), by (unattributed)</li>"),
        "{}",
        page.body
    );
    // The stylesheet is served, not inline.
    assert!(!page.body.contains("<style>"), "{}", page.body);
    let css_href = page
        .body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let css = c.get(&css_href, None, "text/css");
    assert_eq!(css.status, 200);
    assert!(css.body.contains(".s-applied{"), "{}", css.body);

    // Filters: environments, a search, a state; a form without script.
    let narrowed = c.get(
        "/console/acme/shop?q=ORDERS&state=pending",
        Some(&session),
        "text/html",
    );
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert!(narrowed.body.contains(">2_orders</a>"), "{}", narrowed.body);
    assert!(!narrowed.body.contains(">1_users</a>"), "{}", narrowed.body);
    assert!(
        narrowed.body.contains("1 of 2 migrations shown."),
        "{}",
        narrowed.body
    );
    let twin = c.get(
        "/console/acme/shop?state=applied&env=dev",
        Some(&session),
        "application/json",
    );
    let doc: serde_json::Value = serde_json::from_str(&twin.body).unwrap();
    assert_eq!(doc["migrations"].as_array().unwrap().len(), 1, "{doc}");
    let unknown = c.get("/console/acme/shop?env=prod", Some(&session), "text/html");
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .body
            .contains("env: unknown environment &#x27;prod&#x27; (configured: dev)"),
        "{}",
        unknown.body
    );
    let bad = c.get(
        "/console/acme/shop?state=sideways",
        Some(&session),
        "text/html",
    );
    assert_eq!(bad.status, 400);
    assert!(
        page.body.contains("<span class=\"who\">octocat</span>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<form method=\"post\" action=\"&#x2f;console/logout\"><input type=\"hidden\" name=\"csrf\" value=\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "no script");
    // Where the environment is, without credentials.
    let (host, port) = support::server_addr();
    assert!(
        page.body.contains(&format!(
            "<div class=\"mode\">postgres {host}:{port}&#x2f;{}</div>",
            dev.name
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&dev.url()), "no credentials");
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none';") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // Compressed for browsers that ask.
    let gz = request(
        c.served.port,
        "GET",
        "/console/acme/shop",
        &[("Cookie", &session), ("Accept-Encoding", "gzip")],
        "",
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // The JSON twin: the status contract.
    let twin = c.get("/console/acme/shop", Some(&session), "application/json");
    assert_eq!(twin.status, 200, "{}", twin.body);
    let doc: serde_json::Value = serde_json::from_str(&twin.body).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["migrations"][0]["cells"]["dev"]["state"], "applied");
    assert_eq!(doc["migrations"][1]["cells"]["dev"]["state"], "pending");

    // A release tag with a slash: its links carry it encoded.
    c.fake.tag(
        REPO,
        "v1/rc",
        &c.fake.with(|m| m.repos[REPO].tags["v1"].clone()),
    );
    let list = c.get("/console/acme/shop/releases", Some(&session), "text/html");
    assert!(
        list.body.contains("/releases/v1%2Frc\">v1&#x2f;rc</a>"),
        "{}",
        list.body
    );
    let rc = c.get(
        "/console/acme/shop/releases/v1%2Frc",
        Some(&session),
        "application/json",
    );
    assert_eq!(rc.status, 200, "{}", rc.body);
    let doc: serde_json::Value = serde_json::from_str(&rc.body).unwrap();
    assert_eq!(doc["release"]["tag"], "v1/rc", "{doc}");

    // The repositories one may read; one without envgate.toml says so.
    let other = c
        .fake
        .commit("acme/other", &[("README.md", "no envgate here\n")], "main");
    c.fake.branch("acme/other", "main", &other);
    let index = c.get("/console/", Some(&session), "text/html");
    assert!(
        index
            .body
            .contains("No envgate.toml on the default branch."),
        "{}",
        index.body
    );
    let index = c.get("/console/", Some(&session), "application/json");
    let doc: serde_json::Value = serde_json::from_str(&index.body).unwrap();
    assert_eq!(doc["login"], "octocat");
    assert_eq!(doc["repositories"][0]["repository"], "acme/other");
    assert_eq!(
        doc["repositories"][0]["environments"],
        serde_json::json!([])
    );
    assert_eq!(doc["repositories"][1]["repository"], REPO);
    // … each with its environments' state in a line.
    assert_eq!(
        doc["repositories"][1]["environments"],
        serde_json::json!([{"name": "dev", "mode": "managed", "reachable": true,
            "counts": {"applied": 1, "pending": 1, "drifted": 0, "failed": 0, "missing": 0}}]),
        "{doc}"
    );
    let index = c.get("/console/", Some(&session), "text/html");
    assert!(
        index.body.contains(
            "<span class=\"s s-pending\">dev 1 pending</span> <span class=\"muted\">managed</span>"
        ),
        "{}",
        index.body
    );
    assert!(
        index
            .body
            .contains("<a href=\"&#x2f;console&#x2f;acme&#x2f;shop\">acme&#x2f;shop</a>"),
        "{}",
        index.body
    );

    // A session cookie changed by hand is no session.
    let forged = session.replacen("envgate_session=", "envgate_session=x", 1);
    assert_eq!(
        c.get("/console/acme/shop", Some(&forged), "text/html")
            .status,
        302
    );

    // Logging out is a form: without its token it is refused.
    let refused = request(
        c.served.port,
        "POST",
        "/console/logout",
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "csrf=wrong",
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let out = request(
        c.served.port,
        "POST",
        "/console/logout",
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={csrf}"),
    );
    assert_eq!(out.status, 302, "{}", out.body);
    assert!(
        out.cookies()
            .iter()
            .any(|c| c.starts_with("envgate_session=;") && c.contains("Max-Age=0"))
    );
}

#[test]
fn who_may_not_read_sees_nothing_and_logins_that_did_not_start_here_fail() {
    let dev = PgDb::create("console_ro");
    support::ledger::seed(&dev, &[("1", "users", USERS)]);
    let c = Console::start(&dev);
    c.fake.permission(REPO, "mallory", "none");
    let session = c.login("mallory", "/console/");
    let page = c.get("/console/acme/shop", Some(&session), "text/html");
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(
        page.body.contains("or you may not read it"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("1_users"));
    let index = c.get("/console/", Some(&session), "application/json");
    let doc: serde_json::Value = serde_json::from_str(&index.body).unwrap();
    assert_eq!(doc["repositories"], serde_json::json!([]));
    // An unknown repository reads the same.
    assert_eq!(
        c.get("/console/acme/other", Some(&session), "text/html")
            .status,
        404
    );

    // A callback without the round trip's cookie, or with another state.
    let no_cookie = c.get(
        "/console/oauth/callback?code=code-mallory&state=abc",
        None,
        "text/html",
    );
    assert_eq!(no_cookie.status, 400, "{}", no_cookie.body);
    let start = c.get("/console/login", None, "text/html");
    let oauth = start.cookie("envgate_oauth");
    let wrong = c.get(
        "/console/oauth/callback?code=code-mallory&state=not-the-one",
        Some(&oauth),
        "text/html",
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    // A login never sends anyone elsewhere afterwards.
    let start = c.get(
        "/console/login?back=https://evil.example/",
        None,
        "text/html",
    );
    assert_eq!(start.status, 302);
    let session = c.login("octocat", "/console/");
    assert!(session.starts_with("envgate_session="));
}

/// In Chromium: the login through the fake forge's OAuth pages lands on
/// the matrix; axe-core finds no serious or critical violation on the
/// matrix and the repositories, at a desktop and a phone width; every
/// control is reachable by keyboard.
#[test]
fn in_a_browser_the_login_lands_on_an_accessible_matrix() {
    let dev = PgDb::create("console_browser");
    support::ledger::seed(&dev, &[("1", "users", USERS)]);
    let c = Console::start(&dev);
    // ENVGATE_SCREENSHOTS=DIR: the pages are drawn there too
    // (scripts/screenshots.sh).
    let shots = std::env::var("ENVGATE_SCREENSHOTS").ok();
    for (width, size) in [("1280", "desktop"), ("390", "phone")] {
        let mut args = vec!["--width".to_owned(), width.to_owned()];
        if let Some(dir) = &shots {
            args.extend([
                "--screenshot".to_owned(),
                format!("{dir}/console-matrix-{size}.png"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let matrix = support::browser::open(
            &format!("http://127.0.0.1:{}/console/acme/shop", c.served.port),
            &args,
        );
        assert_eq!(matrix["title"], "envgate · acme/shop", "{matrix}");
        assert_eq!(
            support::browser::serious(&matrix),
            Vec::<serde_json::Value>::new(),
            "{matrix}"
        );
        assert_eq!(matrix["errors"], serde_json::json!([]), "{matrix}");
        let keys: Vec<&str> = matrix["keyboard"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        // Links, the filter form (search, state, environments) and buttons.
        for control in ["a", "input", "select", "button"] {
            assert!(keys.contains(&control), "{control} by keyboard: {keys:?}");
        }
        let mut args = vec!["--width".to_owned(), width.to_owned()];
        if let Some(dir) = &shots {
            args.extend([
                "--screenshot".to_owned(),
                format!("{dir}/console-repositories-{size}.png"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let repos = support::browser::open(
            &format!("http://127.0.0.1:{}/console/", c.served.port),
            &args,
        );
        assert_eq!(repos["title"], "envgate · repositories", "{repos}");
        assert_eq!(
            support::browser::serious(&repos),
            Vec::<serde_json::Value>::new(),
            "{repos}"
        );
    }
}

/// The audit trail's rows: (action, actor, environment, outcome, details).
fn audit(c: &Console) -> Vec<(String, String, String, String, String)> {
    let db = rusqlite::Connection::open(c.served.dir.path().join("state.db")).unwrap();
    let mut q = db
        .prepare("SELECT action, actor, coalesce(environment, ''), outcome, coalesce(details, '') FROM audit_log ORDER BY seq")
        .unwrap();
    q.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A release's page, a promotion's preview with the bundle, its
/// confirmation (the token checked), and a reader's hand-made POST refused
/// and audited: the same use case and audit as `/promote`.
#[test]
fn promoting_a_release_from_its_page() {
    let (dev, staging) = (
        PgDb::create("console_rel_dev"),
        PgDb::create("console_rel_stg"),
    );
    support::ledger::seed(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    let c = Console::with(
        &[
            (
                "envgate.toml",
                "[environments.dev]\nurl = \"${DEV_URL}\"\nmode = \"managed\"\n[environments.staging]\nurl = \"${STAGING_URL}\"\nmode = \"export_only\"\n",
            ),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        &[("dev", dev.url()), ("staging", staging.url())],
    );
    c.fake.permission(REPO, "octocat", "write");
    let session = c.login("octocat", "/console/acme/shop/releases/v1");
    let page = c.get(
        "/console/acme/shop/releases/v1",
        Some(&session),
        "text/html",
    );
    assert_eq!(page.status, 200, "{}\n{}", page.body, c.served.log());
    assert!(page.body.contains("<h1>Release v1</h1>"), "{}", page.body);
    assert!(
        page.body
            .contains("<button type=\"submit\">Promote to staging…</button>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Bundle for staging: staging-"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("$envgate_sql$CREATE TABLE users (id bigint PRIMARY KEY);$envgate_sql$"),
        "{}",
        page.body
    );
    let twin = c.get(
        "/console/acme/shop/releases/v1",
        Some(&session),
        "application/json",
    );
    let doc: serde_json::Value = serde_json::from_str(&twin.body).unwrap();
    assert_eq!(doc["may_promote"], true);
    assert_eq!(doc["release"]["tag"], "v1");
    assert_eq!(doc["bundles"][0]["environment"], "staging");

    // The bundle as a download, with its manifest.
    let sql = c.get(
        "/console/acme/shop/releases/v1/bundle/staging",
        Some(&session),
        "*/*",
    );
    assert_eq!(sql.status, 200, "{}", sql.body);
    assert_eq!(
        sql.header("content-disposition"),
        Some("attachment; filename=\"staging-v1.sql\"")
    );
    assert!(sql.body.starts_with("-- envgate bundle "), "{}", sql.body);
    let manifest = c.get(
        "/console/acme/shop/releases/v1/bundle/staging?part=manifest",
        Some(&session),
        "*/*",
    );
    let m: serde_json::Value = serde_json::from_str(&manifest.body).unwrap();
    use sha2::Digest;
    assert_eq!(
        m["bundle_sha256"],
        hex::encode(sha2::Sha256::digest(sql.body.as_bytes())),
        "{m}"
    );
    assert_eq!(
        c.get(
            "/console/acme/shop/releases/v1/bundle/dev",
            Some(&session),
            "text/html"
        )
        .status,
        404,
        "dev is managed: no bundle"
    );

    // The preview: the command's dry run and the bundle, then the form.
    let preview = c.get(
        "/console/acme/shop/releases/v1/promote?env=staging",
        Some(&session),
        "text/html",
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("Promote v1 to staging: preview"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("The bundle staging would receive"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("name=\"csrf\""), "{}", preview.body);
    let csrf = preview
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let post = |session: &str, body: &str| {
        request(
            c.served.port,
            "POST",
            "/console/acme/shop/releases/v1/promote",
            &[
                ("Cookie", session),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
    };
    // Without the token: refused, nothing run.
    let forged = post(&session, "env=staging");
    assert_eq!(forged.status, 403, "{}", forged.body);
    let done = post(&session, &format!("env=staging&csrf={csrf}"));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Promote v1 to staging</h1>"),
        "{}",
        done.body
    );
    assert!(done.body.contains("staging-"), "the bundle: {}", done.body);
    // Audited as a promotion from a comment is: by octocat, the bundle
    // exported for staging.
    let trail = audit(&c);
    assert!(
        trail
            .iter()
            .any(|(a, actor, env, outcome, details)| a == "promote"
                && actor == "octocat"
                && env == "staging"
                && outcome == "exported"
                && details.starts_with("staging-v1.sql, bundle ")),
        "{trail:?}"
    );
    assert_eq!(
        trail.iter().filter(|(a, ..)| a == "promote").count(),
        1,
        "the preview changed nothing: {trail:?}"
    );

    // A reader sees no button, and a hand-made POST is refused and audited.
    let reader = c.login("mallory", "/console/");
    let page = c.get("/console/acme/shop/releases/v1", Some(&reader), "text/html");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("Promote to staging"), "{}", page.body);
    assert!(page.body.contains("need write access"), "{}", page.body);
    let index = c.get("/console/", Some(&reader), "text/html");
    let reader_csrf = index
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let refused = post(&reader, &format!("env=staging&csrf={reader_csrf}"));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("promoting and rolling back need write access"),
        "{}",
        refused.body
    );
    assert!(
        audit(&c)
            .iter()
            .any(|(a, actor, env, outcome, _)| a == "chatops"
                && actor == "mallory"
                && env == "staging"
                && outcome == "refused"),
        "{:?}",
        audit(&c)
    );

    // The audit page: this repository's records, the chain verified, the
    // filters, the exports. A record of another repository the bot serves
    // (appended as the bot would) is not shown, though the chain holds it.
    let store = c.served.dir.path().join("state.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = envgate::control::ControlStore::open(
            &envgate::config::ControlStoreLocation::Sqlite(store.clone()),
        )
        .await
        .unwrap();
        store
            .append(
                envgate::core::audit::Entry {
                    at: "2026-12-01T00:00:00Z".into(),
                    action: "promote".into(),
                    actor: "eve".into(),
                    environment: Some("staging".into()),
                    outcome: "exported".into(),
                    repository: Some("github:acme/other".into()),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
    });
    let page = c.get("/console/acme/shop/audit", Some(&session), "text/html");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<span class=\"s s-applied\">verified</span> The whole chain ("),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>octocat</td>"), "{}", page.body);
    assert!(page.body.contains("<td>mallory</td>"), "{}", page.body);
    assert!(
        !page.body.contains("<td>eve</td>"),
        "another repository's: {}",
        page.body
    );
    let twin = c.get(
        "/console/acme/shop/audit",
        Some(&session),
        "application/json",
    );
    let doc: serde_json::Value = serde_json::from_str(&twin.body).unwrap();
    let head = format!(
        "{}:{}",
        doc["check"]["head"]["seq"],
        doc["check"]["head"]["hash"].as_str().unwrap()
    );
    let records = doc["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .all(|r| r["repository"] == "github:acme/shop"),
        "{records:?}"
    );
    assert_eq!(
        doc["check"]["verified"]["records"].as_u64().unwrap() as usize,
        records.len() + 1,
        "verified whole, the other repository's record included"
    );
    // Filters: mallory's refusal only.
    let only = c.get(
        "/console/acme/shop/audit?actor=MALLORY&action=chatops&env=&since=2026-01-01",
        Some(&session),
        "application/json",
    );
    let doc: serde_json::Value = serde_json::from_str(&only.body).unwrap();
    assert_eq!(doc["records"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["records"][0]["outcome"], "refused");
    let bad = c.get(
        "/console/acme/shop/audit?since=last+tuesday",
        Some(&session),
        "text/html",
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("since: last tuesday: expected a time"),
        "{}",
        bad.body
    );
    // The exports: every record of the repository, then the head.
    let jsonl = c.get(
        "/console/acme/shop/audit?format=jsonl",
        Some(&session),
        "*/*",
    );
    assert_eq!(jsonl.status, 200);
    assert_eq!(
        jsonl.header("content-disposition"),
        Some("attachment; filename=\"audit-acme-shop.jsonl\"")
    );
    let lines: Vec<&str> = jsonl.body.lines().collect();
    assert_eq!(lines.len(), records.len() + 1);
    assert!(
        lines.last().unwrap().starts_with("{\"check\":{\"head\":"),
        "{}",
        jsonl.body
    );
    let csv = c.get(
        "/console/acme/shop/audit?format=csv&actor=octocat",
        Some(&session),
        "*/*",
    );
    assert!(
        csv.body
            .starts_with("seq,at,action,actor,environment,release,"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.lines().nth(1).unwrap().contains(",octocat,"),
        "{}",
        csv.body
    );
    assert!(!csv.body.contains("mallory"), "{}", csv.body);
    // A published head is checked; one the chain does not hold fails.
    let held = c.get(
        &format!("/console/acme/shop/audit?expect={head}"),
        Some(&session),
        "text/html",
    );
    assert_eq!(held.status, 200);
    assert!(
        held.body.contains("and holds the published head"),
        "{}",
        held.body
    );
    let cut = c.get(
        &format!("/console/acme/shop/audit?expect=99:{}", "a".repeat(64)),
        Some(&session),
        "text/html",
    );
    assert_eq!(cut.status, 409, "{}", cut.body);
    assert!(cut.body.contains("not verified"), "{}", cut.body);
    assert!(cut.body.contains("(truncated)"), "{}", cut.body);
    // Each environment's mode history, from the audit trail.
    let page = c.get("/console/acme/shop", Some(&session), "text/html");
    assert!(
        page.body
            .contains(" mode (none) -&gt; export_only, by (unattributed)</li>"),
        "{}",
        page.body
    );
    // A record changed by hand: the page says which.
    rusqlite::Connection::open(&store)
        .unwrap()
        .execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 1", [])
        .unwrap();
    let tampered = c.get("/console/acme/shop/audit", Some(&session), "text/html");
    assert_eq!(tampered.status, 409);
    assert!(
        tampered
            .body
            .contains("Record 1: its content does not match its hash"),
        "{}",
        tampered.body
    );
    // One who may not read the repository sees none of it.
    c.fake.permission(REPO, "mallory", "none");
    assert_eq!(
        c.get("/console/acme/shop/audit?format=csv", Some(&reader), "*/*")
            .status,
        404
    );
}

/// In Chromium, by keyboard: log in, open a release, press Promote, see the
/// preview with the bundle, confirm; the bundle is exported and audited,
/// and every page on the way is free of serious accessibility problems.
#[test]
fn in_a_browser_a_release_is_promoted_after_its_preview() {
    let (dev, staging) = (
        PgDb::create("console_br_dev"),
        PgDb::create("console_br_stg"),
    );
    support::ledger::seed(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    let c = Console::with(
        &[
            (
                "envgate.toml",
                "[environments.dev]\nurl = \"${DEV_URL}\"\nmode = \"managed\"\n[environments.staging]\nurl = \"${STAGING_URL}\"\nmode = \"export_only\"\n",
            ),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        &[("dev", dev.url()), ("staging", staging.url())],
    );
    c.fake.permission(REPO, "octocat", "write");
    if let Ok(dir) = std::env::var("ENVGATE_SCREENSHOTS") {
        for (path, shot) in [
            ("releases/v1", "console-release"),
            ("releases/v1/promote?env=staging", "console-promote-preview"),
        ] {
            for (width, suffix) in [("1280", ""), ("390", "-phone")] {
                support::browser::open(
                    &format!(
                        "http://127.0.0.1:{}/console/acme/shop/{path}",
                        c.served.port
                    ),
                    &[
                        "--width",
                        width,
                        "--screenshot",
                        &format!("{dir}/{shot}{suffix}.png"),
                    ],
                );
            }
        }
    }
    let run = support::browser::open(
        &format!("http://127.0.0.1:{}/console/acme/shop", c.served.port),
        &[
            "--click",
            "Releases",
            "--click",
            "v1",
            "--click",
            "Promote to staging…",
            "--click",
            "Confirm: promote v1 to staging",
            "--click",
            "Audit",
        ],
    );
    assert_eq!(
        run["pages"],
        serde_json::json!([
            "envgate · acme/shop",
            "envgate · acme/shop · releases",
            "envgate · acme/shop · v1",
            "envgate · acme/shop · Promote v1 to staging: preview",
            "envgate · acme/shop · Promote v1 to staging",
            "envgate · acme/shop · audit"
        ]),
        "{run}"
    );
    assert_eq!(
        support::browser::serious(&run),
        Vec::<serde_json::Value>::new(),
        "{run}"
    );
    if let Ok(dir) = std::env::var("ENVGATE_SCREENSHOTS") {
        for (width, suffix) in [("1280", ""), ("390", "-phone")] {
            support::browser::open(
                &format!("http://127.0.0.1:{}/console/acme/shop/audit", c.served.port),
                &[
                    "--width",
                    width,
                    "--screenshot",
                    &format!("{dir}/console-audit{suffix}.png"),
                ],
            );
        }
    }
    // The audit page, last, shows the promotion just made, verified.
    let text = run["text"].as_str().unwrap();
    assert!(text.contains("staging-v1.sql, bundle"), "{run}");
    assert!(text.contains("verified The whole chain"), "{run}");
    assert!(
        audit(&c)
            .iter()
            .any(|(a, actor, env, outcome, _)| a == "promote"
                && actor == "octocat"
                && env == "staging"
                && outcome == "exported"),
        "{:?}",
        audit(&c)
    );
}

#[path = "support/fake_gitlab.rs"]
mod fake_gitlab;

/// GitLab: log in through the OAuth application's pages, read the
/// configured project (Reporter or above), its matrix and release, and
/// promote after the preview as a Developer; a Reporter's hand-made POST is
/// refused and audited, and a login is only its own forge's.
#[test]
fn gitlab_login_reading_and_promoting() {
    let (dev, staging) = (
        PgDb::create("console_gl_dev"),
        PgDb::create("console_gl_stg"),
    );
    support::ledger::seed(&dev, &[("1", "users", USERS), ("2", "orders", ORDERS)]);
    let gl = fake_gitlab::FakeGitLab::start();
    let main = gl.commit(
        &[
            (
                "envgate.toml",
                "[environments.dev]\nurl = \"${DEV_URL}\"\nmode = \"managed\"\n[environments.staging]\nurl = \"${STAGING_URL}\"\nmode = \"export_only\"\n",
            ),
            ("migrations/1_users.sql", USERS),
            ("migrations/2_orders.sql", ORDERS),
        ],
        "main",
    );
    gl.branch("main", &main);
    gl.tag("v1", &main);
    gl.member(77, 30);
    gl.with(|m| m.oauth_user = (77, "gitty".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = 1\n\n\
             [gitlab]\napi_url = \"{}\"\ntoken = \"{}\"\nwebhook_secret = \"gl-secret\"\n\
             client_id = \"{}\"\nclient_secret = \"{}\"\nprojects = [\"acme/shop\"]\n\n\
             [credentials]\ndir = \"creds\"\n\n\
             [console]\nbase_path = \"/console\"\npublic_url = \"http://127.0.0.1:{port}\"\nsession_key = \"{SESSION_KEY}\"\n",
            gl.api,
            fake_gitlab::ACCESS_TOKEN,
            fake_gitlab::OAUTH_CLIENT_ID,
            fake_gitlab::OAUTH_CLIENT_SECRET,
        ),
    )
    .unwrap();
    support::write_credentials(
        dir.path(),
        fake_gitlab::PROJECT_PATH,
        &[("dev", dev.url()), ("staging", staging.url())],
    );
    let served = support::Served::start(dir, port, "envgate=debug,info");
    let get = |path: &str, cookie: Option<&str>, accept: &str| {
        let mut headers = vec![("Accept", accept)];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        request(port, "GET", path, &headers, "")
    };
    let web = gl.api.trim_end_matches("/api/v4").to_owned();

    // The login: to GitLab's authorization page and back with a code.
    let login = |user: (u64, &str)| {
        gl.with(|m| m.oauth_user = (user.0, user.1.to_owned()));
        let start = get("/console/login?back=/console/", None, "text/html");
        assert_eq!(start.status, 302, "{}", start.body);
        let to = start.header("location").unwrap().to_owned();
        assert!(
            to.starts_with(&format!(
                "{web}/oauth/authorize?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fconsole%2Foauth%2Fgitlab%2Fcallback&state="
            , fake_gitlab::OAUTH_CLIENT_ID)) && to.ends_with("&response_type=code&scope=read_user"),
            "{to}"
        );
        let (gl_port, path) = local(&to);
        let back = request(gl_port, "GET", &path, &[], "");
        assert_eq!(back.status, 302, "{}", back.body);
        let (_, callback) = local(back.header("location").unwrap());
        let done = get(&callback, Some(&start.cookie("envgate_oauth")), "text/html");
        assert_eq!(done.status, 302, "{}\n{}", done.body, served.log());
        assert_eq!(done.header("location"), Some("/console/"));
        done.cookie("envgate_session")
    };
    // Without a session, to the login and back to the page as it was
    // addressed (the project's path still encoded).
    let anonymous = get("/console/-/acme%2Fshop/releases/v1", None, "text/html");
    assert_eq!(anonymous.status, 302);
    assert_eq!(
        anonymous.header("location"),
        Some("/console/login?back=%2Fconsole%2F-%2Facme%252Fshop%2Freleases%2Fv1")
    );
    let session = login((77, "gitty"));

    // The configured project, by its path.
    let index = get("/console/", Some(&session), "application/json");
    let doc: serde_json::Value = serde_json::from_str(&index.body).unwrap();
    assert_eq!(doc["forge"], "gitlab", "{doc}");
    assert_eq!(doc["repositories"][0]["repository"], "acme/shop", "{doc}");
    assert_eq!(doc["repositories"][0]["url"], "/console/-/acme%2Fshop");
    let page = get("/console/-/acme%2Fshop", Some(&session), "text/html");
    assert_eq!(page.status, 200, "{}\n{}", page.body, served.log());
    assert!(
        page.body.contains("<td class=\"s-applied\">applied</td>"),
        "{}",
        page.body
    );
    let link = page
        .body
        .split("<th scope=\"row\"><a href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let to_forge = get(&format!("/console/-/{link}"), Some(&session), "text/html");
    assert_eq!(to_forge.status, 302, "{link}: {}", to_forge.body);
    assert_eq!(
        to_forge.header("location").unwrap(),
        format!(
            "{web}/acme/shop/-/blob/{}/migrations/1_users.sql",
            &main[..12]
        )
    );
    // A GitLab login reads no GitHub-style address.
    assert_eq!(
        get("/console/acme/shop", Some(&session), "text/html").status,
        404
    );

    // The release, its preview, the confirmation.
    let release = get(
        "/console/-/acme%2Fshop/releases/v1",
        Some(&session),
        "text/html",
    );
    assert_eq!(release.status, 200, "{}", release.body);
    assert!(
        release.body.contains("Promote to staging…</button>"),
        "{}",
        release.body
    );
    let preview = get(
        "/console/-/acme%2Fshop/releases/v1/promote?env=staging",
        Some(&session),
        "text/html",
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    let csrf = |body: &str| {
        body.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned()
    };
    let post = |session: &str, body: &str| {
        request(
            port,
            "POST",
            "/console/-/acme%2Fshop/releases/v1/promote",
            &[
                ("Cookie", session),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
    };
    let done = post(
        &session,
        &format!("env=staging&csrf={}", csrf(&preview.body)),
    );
    assert_eq!(done.status, 200, "{}\n{}", done.body, served.log());
    assert!(
        gl.with(|m| !m.package_files("envgate", "v1").is_empty()),
        "the bundle is attached to the tag's release"
    );
    let trail = |cols: &str| -> Vec<Vec<String>> {
        let db = rusqlite::Connection::open(served.dir.path().join("state.db")).unwrap();
        let mut q = db
            .prepare(&format!("SELECT {cols} FROM audit_log ORDER BY seq"))
            .unwrap();
        let n = q.column_count();
        q.query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default))
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let promotions: Vec<Vec<String>> = trail("action, actor, actor_source, repository, outcome")
        .into_iter()
        .filter(|r| r[0] == "promote")
        .collect();
    assert_eq!(
        promotions,
        [[
            "promote",
            "gitty",
            "gitlab: console login",
            "gitlab:acme/shop",
            "exported"
        ]
        .map(str::to_owned)
        .to_vec()],
    );

    // A Reporter reads, sees no button, and is refused with the reason.
    gl.member(78, 20);
    let reporter = login((78, "reed"));
    let release = get(
        "/console/-/acme%2Fshop/releases/v1",
        Some(&reporter),
        "text/html",
    );
    assert_eq!(release.status, 200, "{}", release.body);
    assert!(
        !release.body.contains("Promote to staging"),
        "{}",
        release.body
    );
    let index = get("/console/", Some(&reporter), "text/html");
    let refused = post(
        &reporter,
        &format!("env=staging&csrf={}", csrf(&index.body)),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("reed has access level 20 on acme&#x2f;shop"),
        "{}",
        refused.body
    );
    assert!(
        trail("action, actor, outcome, repository")
            .iter()
            .any(|r| r[..] == ["chatops", "reed", "refused", "gitlab:acme/shop"]),
        "{:?}",
        trail("action, actor, outcome, repository")
    );
    // The audit page shows the project's records.
    let audit = get(
        "/console/-/acme%2Fshop/audit",
        Some(&reporter),
        "application/json",
    );
    let doc: serde_json::Value = serde_json::from_str(&audit.body).unwrap();
    assert!(
        doc["check"]["verified"]["records"].as_u64().unwrap() >= 2,
        "{doc}"
    );
    // Someone who is not a member sees nothing.
    let stranger = login((79, "nobody"));
    assert_eq!(
        get("/console/-/acme%2Fshop", Some(&stranger), "text/html").status,
        404
    );
    let index = get("/console/", Some(&stranger), "application/json");
    let doc: serde_json::Value = serde_json::from_str(&index.body).unwrap();
    assert_eq!(doc["repositories"], serde_json::json!([]), "{doc}");
}
