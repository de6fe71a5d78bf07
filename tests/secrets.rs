//! No secret appears in any output, ever: a corpus of odd, malformed and
//! well-formed connection strings and secret sources, each pointed at a
//! small fake PostgreSQL server that echoes the password it received in its
//! error, crossed with every output envgate has — the table, JSON and
//! Markdown, stderr and the logs, the audit trail as JSON and CSV, the
//! control store's rows, bundles and manifests, and the bodies sent to the
//! fake GitHub and GitLab APIs.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/fake_gitlab.rs"]
mod fake_gitlab;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;
use support::{PgDb, Project};

/// A PostgreSQL server that asks for a cleartext password and answers
/// every login with an error quoting it, in the message and the detail.
struct EchoServer {
    port: u16,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = EchoServer::session(stream);
                });
            }
        });
        EchoServer { port }
    }

    fn session(mut s: TcpStream) -> std::io::Result<()> {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        loop {
            let mut head = [0u8; 8];
            s.read_exact(&mut head)?;
            let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
            let code = u32::from_be_bytes(head[4..].try_into().unwrap());
            let mut rest = vec![0u8; len.saturating_sub(8)];
            s.read_exact(&mut rest)?;
            // SSLRequest / GSSENCRequest: no.
            if code == 80_877_103 || code == 80_877_104 {
                s.write_all(b"N")?;
                continue;
            }
            break;
        }
        // AuthenticationCleartextPassword.
        s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])?;
        let mut tag = [0u8; 5];
        s.read_exact(&mut tag)?;
        let len = u32::from_be_bytes(tag[1..].try_into().unwrap()) as usize;
        let mut pw = vec![0u8; len - 4];
        s.read_exact(&mut pw)?;
        let pw = String::from_utf8_lossy(&pw)
            .trim_end_matches('\0')
            .to_owned();
        let mut body = Vec::new();
        for (field, value) in [
            (b'S', "FATAL".to_owned()),
            (b'V', "FATAL".to_owned()),
            (b'C', "28P01".to_owned()),
            (
                b'M',
                format!("password authentication failed: you sent \"{pw}\""),
            ),
            (b'D', format!("the password was {pw}")),
        ] {
            body.push(field);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        s.write_all(&msg)?;
        Ok(())
    }
}

/// How a corpus entry reaches envgate.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// `url = "…"` in envgate.toml, literally.
    Inline,
    /// `url = "${VAR}"`, the variable holding it.
    Variable,
    /// `url_file`, the file holding it.
    File,
}

struct Case {
    /// The connection string, `{port}` standing for the echo server's.
    text: &'static str,
    source: Source,
    /// What must never appear (each password, as written and as meant).
    secrets: &'static [&'static str],
}

const fn case(text: &'static str, source: Source, secrets: &'static [&'static str]) -> Case {
    Case {
        text,
        source,
        secrets,
    }
}

/// The corpus: 36 connection strings and secret sources.
fn corpus() -> Vec<Case> {
    use Source::*;
    vec![
        case(
            "postgres://app:Zq01aaaa@127.0.0.1:{port}/app",
            Variable,
            &["Zq01aaaa"],
        ),
        case(
            "postgresql://app:Zq02bbbb@127.0.0.1:{port}/app?sslmode=disable",
            Variable,
            &["Zq02bbbb"],
        ),
        case(
            "postgres://app:Zq03%40cc%2Fdd@127.0.0.1:{port}/app",
            Variable,
            &["Zq03@cc/dd", "Zq03%40cc%2Fdd"],
        ),
        case(
            "postgres://127.0.0.1:{port}/app?user=app&password=Zq04eeee",
            Variable,
            &["Zq04eeee"],
        ),
        case(
            "postgres://app@127.0.0.1:{port}/app?password=Zq05%20ff%26gg",
            Variable,
            &["Zq05 ff&gg", "Zq05%20ff%26gg"],
        ),
        case(
            "postgres://app:Zq06q'u\"o\\te@127.0.0.1:{port}/app",
            Variable,
            &["Zq06q'u\"o\\te"],
        ),
        case(
            "postgres://app:Zq07ünïcödé@127.0.0.1:{port}/app",
            Variable,
            &["Zq07ünïcödé"],
        ),
        case(
            "postgres://app:Zq08$(whoami)@127.0.0.1:{port}/app",
            Variable,
            &["Zq08$(whoami)"],
        ),
        case(
            "postgres://app:Zq09file@127.0.0.1:{port}/app\n",
            File,
            &["Zq09file"],
        ),
        case(
            "   postgres://app:Zq10spaced@127.0.0.1:{port}/app   \n\n",
            File,
            &["Zq10spaced"],
        ),
        case(
            "postgres://app:Zq11multi@127.0.0.1:{port},127.0.0.1:{port}/app",
            Variable,
            &["Zq11multi"],
        ),
        case(
            "postgres://app:Zq12 with space@127.0.0.1:{port}/app",
            Variable,
            &["Zq12 with space"],
        ),
        case(
            "postgres://:Zq13nouser@127.0.0.1:{port}/app",
            Variable,
            &["Zq13nouser"],
        ),
        case(
            "postgres://app:Zq14%zzbad@127.0.0.1:{port}/app",
            Variable,
            &["Zq14%zzbad"],
        ),
        case(
            "postgres://app:Zq15user@127.0.0.1:{port}/app?password=Zq15query",
            Variable,
            &["Zq15user", "Zq15query"],
        ),
        case(
            "postgres://app:Zq16hunter2?secret@127.0.0.1:{port}/app",
            Variable,
            &["Zq16hunter2?secret", "Zq16hunter2"],
        ),
        case(
            "postgres://app:Zq17hunter2@secret17@127.0.0.1:{port}/app",
            Variable,
            &["Zq17hunter2@secret17", "Zq17hunter2", "secret17"],
        ),
        case(
            "postgres://app:Zq18sl/ash#hash@127.0.0.1:{port}/app",
            Variable,
            &["Zq18sl/ash#hash", "Zq18sl"],
        ),
        case(
            "postgres://app:Zq19tail @127.0.0.1:{port}/app",
            Variable,
            &["Zq19tail "],
        ),
        case(
            "postgres://app:Zq20inline@127.0.0.1:{port}/app",
            Inline,
            &["Zq20inline"],
        ),
        case(
            "user=app password=Zq21kvkv host=127.0.0.1 port={port} dbname=app",
            Variable,
            &["Zq21kvkv"],
        ),
        case(
            "user=app password=Zq22kvfile host=db",
            File,
            &["Zq22kvfile"],
        ),
        case(
            "host=db password='Zq23 quoted''s' user=app",
            File,
            &["Zq23 quoted's", "Zq23 quoted''s"],
        ),
        case(
            "user=app password = Zq24spaced host=db",
            Inline,
            &["Zq24spaced"],
        ),
        case("mysql://app:Zq25mysql@db/app", Variable, &["Zq25mysql"]),
        case(
            "postgres//app:Zq26noscheme@db/app",
            Variable,
            &["Zq26noscheme"],
        ),
        case(
            "postgres://app:Zq27port@db:notaport/app",
            Variable,
            &["Zq27port"],
        ),
        case(
            "postgres://app:Zq28sslbad@db/app?sslmode=bogus",
            Variable,
            &["Zq28sslbad"],
        ),
        case(
            "postgres://app:Zq29a@db/app?sslpassword=Zq29bbbb",
            Variable,
            &["Zq29bbbb"],
        ),
        case(
            "postgres://app:Zq30param@db/app?nosuchparam=1",
            Variable,
            &["Zq30param"],
        ),
        case("Zq31-just-a-password", File, &["Zq31-just-a-password"]),
        case(
            "postgres://app:Zq32%22%27%5C@127.0.0.1:{port}/app",
            Variable,
            &["Zq32\"'\\", "Zq32%22%27%5C"],
        ),
        case(
            "postgres://app:Zq33|pipe<b>@127.0.0.1:{port}/app",
            Variable,
            &["Zq33|pipe<b>"],
        ),
        case(
            "postgres://app:Zq34`tick`*star*_@127.0.0.1:{port}/app",
            Variable,
            &["Zq34`tick`*star*_"],
        ),
        case(
            "postgres://app:Zq35\"quote\"@127.0.0.1:{port}/app?application_name=x",
            Inline,
            &["Zq35\"quote\""],
        ),
        case(
            "postgres://app:Zq36-new\\nline@127.0.0.1:{port}/app",
            Variable,
            &["Zq36-new\\nline"],
        ),
    ]
}

/// Every form a secret could take in an output: as is, JSON-escaped,
/// percent-encoded.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let mut out = vec![
        secret.to_owned(),
        json[1..json.len() - 1].to_owned(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        secret.replace('"', "\"\""),
    ];
    out.retain(|f| f.len() >= 4);
    out
}

fn assert_clean(what: &str, text: &[u8], secrets: &[&str]) {
    let text = String::from_utf8_lossy(text);
    for s in secrets {
        for f in forms(s) {
            assert!(
                !text.contains(&f),
                "{what} shows the secret {f:?}:\n{}",
                text.chars().take(4000).collect::<String>()
            );
        }
    }
}

/// Every file under `dir`, as bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
    out
}

/// The control store's rows, every table, as text.
fn store_rows(db: &Path) -> String {
    let Ok(c) = rusqlite::Connection::open(db) else {
        return String::new();
    };
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        out.push_str(&rows.join("\n"));
        out.push('\n');
    }
    out
}

/// One environment entry of envgate.toml for a case, and the variables it
/// needs; writes the url_file when there is one.
fn env_entry(
    project: &Project,
    name: &str,
    c: &Case,
    url: &str,
) -> (String, Vec<(String, String)>) {
    match c.source {
        Source::Inline => (
            format!("[environments.{name}]\nurl = {}\n", toml_string(url)),
            vec![],
        ),
        Source::Variable => {
            let var = format!("ZQ_{}", name.to_uppercase());
            (
                format!("[environments.{name}]\nurl = \"${{{var}}}\"\n"),
                vec![(var, url.to_owned())],
            )
        }
        Source::File => {
            project.write(&format!("secrets/{name}.url"), url);
            (
                format!("[environments.{name}]\nurl_file = \"secrets/{name}.url\"\n"),
                vec![],
            )
        }
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Each case through the command line: every output format, stderr with
/// debug logs, an audited apply, the audit as JSON and CSV, an export
/// whose bundle and manifest are kept, and the control store's rows.
#[test]
fn no_secret_reaches_any_output_of_the_command_line() {
    let echo = EchoServer::start();
    let real = PgDb::create("secrets_real");
    let corpus = corpus();
    assert!(corpus.len() >= 30);
    for (i, c) in corpus.iter().enumerate() {
        let url = c.text.replace("{port}", &echo.port.to_string());
        let project = Project::new("", &[("1_users.sql", "CREATE TABLE users (id int);\n")]);
        let (dev, mut vars) = env_entry(&project, "dev", c, &url);
        let (prod, more) = env_entry(&project, "prod", c, &url);
        vars.extend(more);
        vars.push(("ZQ_REAL".into(), real.url_with_password("Zq99realpw")));
        vars.push(("ENVGATE_LOG".into(), "debug".into()));
        project.write(
            "envgate.toml",
            &format!(
                "{dev}mode = \"managed\"\n\n{}mode = \"export_only\"\n\n[environments.real]\nurl = \"${{ZQ_REAL}}\"\nmode = \"export_only\"\n",
                prod
            ),
        );
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut secrets: Vec<&str> = c.secrets.to_vec();
        secrets.push("Zq99realpw");
        let mut shown = Vec::new();
        for args in [
            &["status"][..],
            &["status", "--format", "json"],
            &["status", "--format", "markdown"],
            &["-v", "status"],
            &["plan", "--env", "dev"],
            &["plan", "--env", "prod", "--format", "json"],
            &["apply", "--env", "dev"],
            &["apply", "--env", "dev", "--format", "json"],
            &["export", "--env", "prod", "--out-dir", "bundles"],
            &["export", "--env", "real", "--out-dir", "bundles"],
            &["drift", "accept", "--env", "dev", "1", "--reason", "x"],
            &["audit", "--format", "json"],
            &["audit", "--format", "csv"],
            &["audit", "verify"],
        ] {
            let run = project.envgate_with_env(args, &vars);
            let what = format!(
                "case {} ({:?}, {:?}): envgate {}",
                i + 1,
                c.text,
                c.source,
                args.join(" ")
            );
            assert_clean(&format!("{what}: stdout"), run.stdout.as_bytes(), &secrets);
            assert_clean(&format!("{what}: stderr"), run.stderr.as_bytes(), &secrets);
            shown.push(run.stdout + &run.stderr);
        }
        let all = shown.join("\n");
        // The corpus is meant to reach the failure paths: a parse error or
        // the server's echo.
        assert!(
            all.contains("password authentication failed")
                || all.contains("envgate.toml:")
                || all.contains("cannot connect"),
            "case {}: {all}",
            i + 1
        );
        // The real environment's bundle and manifest were written, so they
        // are among the files checked.
        let written = files(&project.path().join("bundles"));
        assert!(
            written.iter().any(|(p, _)| p.ends_with(".manifest.json"))
                && written.iter().any(|(p, _)| p.ends_with(".sql")),
            "case {}: no bundle",
            i + 1
        );
        for (path, bytes) in files(project.path()) {
            if path.contains("/secrets/") || path.ends_with("envgate.toml") {
                continue; // the inputs themselves
            }
            assert_clean(&format!("case {}: file {path}", i + 1), &bytes, &secrets);
        }
        assert_clean(
            &format!("case {}: control store rows", i + 1),
            store_rows(&project.path().join(".envgate/state.db")).as_bytes(),
            &secrets,
        );
    }
}

/// The cases that reach the echo server, as the bot's credentials: the
/// check run, the sticky comment (GitHub) and the note and statuses
/// (GitLab), the logs as text and JSON, and the control store.
#[test]
fn no_secret_reaches_the_forges_or_the_bots_logs() {
    let echo = EchoServer::start();
    let reachable: Vec<Case> = corpus()
        .into_iter()
        .filter(|c| c.text.contains("{port}") && !c.text.contains('\n'))
        .collect();
    assert!(reachable.len() >= 15);
    let names: Vec<String> = (0..reachable.len())
        .map(|i| format!("e{:02}", i + 1))
        .collect();
    let config: String = names
        .iter()
        .map(|n| format!("[environments.{n}]\nurl = \"${{X}}\"\nmode = \"export_only\"\n\n"))
        .collect();
    let urls: Vec<(&str, String)> = names
        .iter()
        .zip(&reachable)
        .map(|(n, c)| (n.as_str(), c.text.replace("{port}", &echo.port.to_string())))
        .collect();
    let secrets: Vec<&str> = reachable
        .iter()
        .flat_map(|c| c.secrets.iter().copied())
        .collect();
    let files = [
        ("envgate.toml", config.as_str()),
        ("migrations/1_users.sql", "CREATE TABLE users (id int);\n"),
    ];

    for json_logs in [false, true] {
        // GitHub.
        let fake = fake_github::FakeGitHub::start();
        let head = fake.commit("acme/shop", &files, "pr");
        fake.branch("acme/shop", "main", &head);
        fake.pull_head("acme/shop", 7, &head);
        fake.pull_files("acme/shop", 7, &[("migrations/1_users.sql", "added")]);
        let bot = start_bot(
            &format!(
                "[github]\napp_id = {}\nprivate_key_file = \"{}\"\nwebhook_secret = \"Zq98hook\"\napi_url = \"{}\"\n",
                fake_github::APP_ID,
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/github/app-key.pem")
                    .display(),
                fake.url
            ),
            "acme/shop",
            &urls,
            json_logs,
        );
        let mut p: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/github/pull_request.opened.json"),
            )
            .unwrap(),
        )
        .unwrap();
        p["repository"]["name"] = "shop".into();
        p["repository"]["full_name"] = "acme/shop".into();
        p["repository"]["owner"]["login"] = "acme".into();
        p["repository"]["default_branch"] = "main".into();
        p["installation"] = serde_json::json!({"id": fake_github::INSTALLATION});
        p["number"] = 7.into();
        p["pull_request"]["number"] = 7.into();
        p["pull_request"]["head"]["sha"] = head.clone().into();
        let body = p.to_string().into_bytes();
        let sig = envgate::core::webhook::sign_github(b"Zq98hook", &body);
        let (status, _) = support::http(
            bot.port,
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-GitHub-Delivery", "d1"),
                ("X-Hub-Signature-256", &sig),
                ("Content-Type", "application/json"),
            ],
            &body,
        );
        assert_eq!(status, 202);
        fake.wait(Duration::from_secs(30), "the comment", |m| {
            !m.comments.is_empty()
        });
        let requests = fake.requests();
        let comment = requests
            .iter()
            .find(|r| r.path.contains("/comments") && r.method == "POST")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&comment.body).contains("password authentication failed"),
            "the corpus reached the echo server: {}",
            String::from_utf8_lossy(&comment.body)
        );
        for r in &requests {
            assert_clean(
                &format!("GitHub {} {}", r.method, r.path),
                &r.body,
                &secrets,
            );
        }
        assert_clean("serve log (GitHub)", bot.log().as_bytes(), &secrets);
        assert_clean(
            "serve control store (GitHub)",
            store_rows(&bot.dir.path().join("state.db")).as_bytes(),
            &secrets,
        );
        drop(bot);

        // GitLab.
        let gl = fake_gitlab::FakeGitLab::start();
        let main = gl.commit(&files, "main");
        gl.branch("main", &main);
        gl.with(|m| {
            m.diffs
                .insert(1, vec![("migrations/1_users.sql".into(), true)]);
        });
        let bot = start_bot(
            &format!(
                "[gitlab]\napi_url = \"{}\"\ntoken = \"{}\"\nwebhook_secret = \"Zq97hook\"\n",
                gl.api,
                fake_gitlab::ACCESS_TOKEN
            ),
            "acme/shop",
            &urls,
            json_logs,
        );
        let mut v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/gitlab/merge_request_open.json"),
            )
            .unwrap(),
        )
        .unwrap();
        v["project"]["id"] = 42.into();
        v["project"]["path_with_namespace"] = "acme/shop".into();
        v["project"]["default_branch"] = "main".into();
        v["object_attributes"]["iid"] = 1.into();
        v["object_attributes"]["last_commit"]["id"] = main.clone().into();
        let (status, _) = support::http(
            bot.port,
            "POST",
            "/webhooks/gitlab",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("Idempotency-Key", "k1"),
                ("X-Gitlab-Token", "Zq97hook"),
                ("Content-Type", "application/json"),
            ],
            v.to_string().as_bytes(),
        );
        assert_eq!(status, 202);
        let start = std::time::Instant::now();
        while gl.with(|m| m.notes.is_empty()) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no note:\n{}",
                bot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for r in gl.requests() {
            assert_clean(
                &format!("GitLab {} {}", r.method, r.path),
                &r.body,
                &secrets,
            );
        }
        assert_clean("serve log (GitLab)", bot.log().as_bytes(), &secrets);
        assert_clean(
            "serve control store (GitLab)",
            store_rows(&bot.dir.path().join("state.db")).as_bytes(),
            &secrets,
        );
    }
}

/// A control store whose server echoes its password, for the command line
/// and the bot.
#[test]
fn a_control_store_password_is_never_shown() {
    let echo = EchoServer::start();
    let store = format!("postgres://app:Zq90store%21@127.0.0.1:{}/state", echo.port);
    let project = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\ncontrol_store = \"${STORE}\"\n",
        &[("1_users.sql", "CREATE TABLE users (id int);\n")],
    );
    project.write(
        "envgate.toml",
        "control_store = \"${STORE}\"\n\n[environments.dev]\nurl = \"sqlite://dev.db\"\n",
    );
    let secrets = ["Zq90store!", "Zq90store%21"];
    for args in [
        &["status"][..],
        &["apply", "--env", "dev"],
        &["audit", "--format", "csv"],
    ] {
        let run = project.envgate_with_env(args, &[("STORE", &store), ("ENVGATE_LOG", "debug")]);
        assert!(
            (run.stdout.clone() + &run.stderr).contains("password authentication failed"),
            "{run:?}"
        );
        assert_clean(
            &format!("{args:?}"),
            (run.stdout + &run.stderr).as_bytes(),
            &secrets,
        );
    }
    // The bot, at start-up.
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"{store}\"\n\n[gitlab]\napi_url = \"http://127.0.0.1:9\"\ntoken = \"Zq91token\"\nwebhook_secret = \"Zq92hook\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir.path())
        .args(["serve", "-c", "serve.toml"])
        .env("ENVGATE_LOG", "debug")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("password authentication failed"), "{text}");
    assert_clean(
        "serve with an echoing control store",
        text.as_bytes(),
        &["Zq90store!", "Zq90store%21", "Zq91token", "Zq92hook"],
    );
}

fn start_bot(forge: &str, repo: &str, urls: &[(&str, String)], json_logs: bool) -> support::Served {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ncontrol_store = \"sqlite://state.db\"\nworkers = 2\n\n{forge}\n[credentials]\ndir = \"creds\"\n"
        ),
    )
    .unwrap();
    support::write_credentials(dir.path(), repo, urls);
    if json_logs {
        support::Served::start_with(dir, port, "debug", &["--log-format", "json"])
    } else {
        support::Served::start(dir, port, "debug")
    }
}
