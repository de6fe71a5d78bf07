//! Shared test helpers: real databases, the built binary, a real PgBouncer.
//!
//! PostgreSQL is found through `DATABASE_URL` (an admin connection), else at
//! `postgres://postgres@127.0.0.1:5432/postgres`. Without a server the tests
//! fail and say what to start: `scripts/test.sh` provisions one.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

pub fn admin() -> postgres::Client {
    let url = admin_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             Start it (`scripts/test.sh` provisions a throwaway server) or set DATABASE_URL to an admin connection."
        )
    })
}

/// Host and port of the test server.
pub fn server_addr() -> (String, u16) {
    let config: postgres::Config = admin_url().parse().expect("DATABASE_URL parses");
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => {
            panic!("DATABASE_URL must use TCP, not the socket {}", p.display())
        }
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

pub fn admin_user() -> String {
    let config: postgres::Config = admin_url().parse().expect("DATABASE_URL parses");
    config.get_user().unwrap_or("postgres").to_owned()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test run) uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("eg_{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A database created for one test and dropped afterwards.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn create(prefix: &str) -> PgDb {
        let name = unique_name(prefix);
        admin()
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        PgDb { name }
    }

    /// URL for the admin user, with an optional password (the test server
    /// trusts local connections, so any password is accepted).
    pub fn url(&self) -> String {
        let (host, port) = server_addr();
        format!("postgres://{}@{host}:{port}/{}", admin_user(), self.name)
    }

    pub fn url_with_password(&self, password: &str) -> String {
        let (host, port) = server_addr();
        format!(
            "postgres://{}:{password}@{host}:{port}/{}",
            admin_user(),
            self.name
        )
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to test database")
    }

    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.client()
            .simple_query(sql)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A free TCP port on 127.0.0.1 (nothing listens on it once returned).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A project directory with an `envgate.toml` and a migrations directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(config: &str, migrations: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("envgate.toml"), config).unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for (name, body) in migrations {
            std::fs::write(dir.path().join("migrations").join(name), body).unwrap();
        }
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, body: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    pub fn envgate(&self, args: &[&str]) -> Run {
        envgate_in(self.path(), args, &[])
    }

    pub fn envgate_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        envgate_in(self.path(), args, vars)
    }
}

/// The outcome of running the built binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn envgate_in(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_envgate"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("ENVGATE_CONFIG")
        .env("NO_COLOR", "1");
    // Who acts is the test's to say, wherever the tests run.
    for k in [
        "GITHUB_ACTIONS",
        "GITHUB_ACTOR",
        "GITHUB_TRIGGERING_ACTOR",
        "GITLAB_CI",
        "GITLAB_USER_LOGIN",
        "ENVGATE_AUDIT_KEY",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run envgate");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// A real PgBouncer in front of the test server.
pub struct PgBouncer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

pub enum BouncerAuth {
    /// Any user and password get in.
    Any,
    /// Only this user with this password.
    Password { user: String, password: String },
}

impl PgBouncer {
    pub fn start(pool_mode: &str, auth: BouncerAuth) -> PgBouncer {
        PgBouncer::start_with(pool_mode, auth, "")
    }

    /// Starts PgBouncer with `extra` lines added to its `[pgbouncer]` section.
    pub fn start_with(pool_mode: &str, auth: BouncerAuth, extra: &str) -> PgBouncer {
        let bin = which("pgbouncer").unwrap_or_else(|| {
            panic!("pgbouncer is not installed: `apt-get install pgbouncer` (scripts/test.sh installs it)")
        });
        let dir = tempfile::tempdir().unwrap();
        // PgBouncer refuses to run as root; it then switches to `postgres`,
        // which must be able to read its files.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let (host, server_port) = server_addr();
        let port = free_port();
        let (auth_type, auth_file) = match &auth {
            BouncerAuth::Any => ("any", String::new()),
            BouncerAuth::Password { user, password } => {
                let file = dir.path().join("users.txt");
                std::fs::write(&file, format!("\"{user}\" \"{password}\"\n")).unwrap();
                ("plain", format!("auth_file = {}\n", file.display()))
            }
        };
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={host} port={server_port} user={}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = {auth_type}\n{auth_file}pool_mode = {pool_mode}\n\
                 default_pool_size = 2\nmax_client_conn = 200\nlogfile = {}\n{extra}",
                admin_user(),
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin);
        if is_root() {
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let bouncer = PgBouncer {
            port,
            child,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return bouncer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(bouncer._dir.path().join("pgbouncer.log")).unwrap_or_default();
        panic!("pgbouncer did not start listening on {port}:\n{log}");
    }

    pub fn url(&self, user_password: &str, db: &str) -> String {
        format!("postgres://{user_password}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .chain([PathBuf::from("/usr/sbin").join(bin)])
            .find(|p| p.is_file())
    })
}

/// SQL to create envgate's ledger table and record rows in it.
pub mod browser;
pub mod mysql;

pub mod ledger {
    use envgate::core::checksum::ContentHash;

    pub fn hash(body: &str) -> String {
        ContentHash::of(body.as_bytes()).tagged()
    }

    /// An INSERT for a ledger row on PostgreSQL or SQLite.
    pub fn insert(
        table: &str,
        version: &str,
        name: &str,
        sha: &str,
        success: bool,
        at: &str,
    ) -> String {
        format!(
            "INSERT INTO {table} (version, name, sha256, applied_at, applied_by, execution_ms, success) \
             VALUES ('{version}', '{name}', '{sha}', '{at}', 'tester', 3, {});\n",
            if success { "true" } else { "false" }
        )
    }

    /// envgate's ledger on PostgreSQL with `rows` (version, name, body)
    /// applied: each body run, then recorded.
    pub fn seed(db: &super::PgDb, rows: &[(&str, &str, &str)]) {
        use envgate::core::{ledger_table, sql::Dialect};
        let mut sql = ledger_table::create_table_sql(Dialect::Postgres, None);
        sql.push(';');
        for (v, name, body) in rows {
            sql.push_str(body);
            sql.push_str(&insert(
                "envgate_migrations",
                v,
                name,
                &hash(body),
                true,
                "2026-11-01 10:00:00+00",
            ));
        }
        db.execute(&sql);
    }
}

/// Starts the built binary without waiting for it.
pub fn spawn_envgate(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .args(args)
        .env_remove("ENVGATE_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envgate")
}

/// Waits for a spawned run.
pub fn finish(child: Child) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for envgate");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A login role created for one test, dropped afterwards.
pub struct PgRole {
    pub name: String,
}

impl PgRole {
    pub fn create(prefix: &str, sql_after: &str) -> PgRole {
        let name = unique_name(prefix);
        admin()
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN; {}",
                sql_after.replace("{role}", &format!("\"{name}\""))
            ))
            .unwrap_or_else(|e| panic!("CREATE ROLE {name}: {e}"));
        PgRole { name }
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.name));
        }
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs a SQL file with the real psql client, stopping at the first error.
pub fn psql_file(url: &str, file: &Path) {
    let bin = which("psql").expect("psql is not installed: apt-get install postgresql-client");
    let out = Command::new(bin)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql -f {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A minimal HTTP/1.1 client: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes())
        .and_then(|()| s.write_all(body))
        .is_err()
    {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs git in `dir` as a test identity, unsigned, `main` as the first
/// branch; its stdout. Panics with git's stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Release Tester",
            "-c",
            "user.email=release@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git is not installed: apt-get install git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A running `envgate serve`, from the serve.toml its caller wrote into
/// `dir` (its log goes to `dir/serve.log`); killed when dropped.
pub struct Served {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Starts it with `ENVGATE_LOG=log` and waits until `port` answers
    /// `/healthz`.
    pub fn start(dir: tempfile::TempDir, port: u16, log: &str) -> Served {
        Served::start_with(dir, port, log, &[])
    }

    /// The same, with more arguments for `serve`.
    pub fn start_with(dir: tempfile::TempDir, port: u16, log: &str, extra: &[&str]) -> Served {
        let child = Command::new(env!("CARGO_BIN_EXE_envgate"))
            .current_dir(dir.path())
            .args(["serve", "-c", "serve.toml"])
            .args(extra)
            .env("ENVGATE_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("serve.log")).unwrap(),
            ))
            .spawn()
            .expect("start envgate serve");
        let served = Served { child, port, dir };
        let start = std::time::Instant::now();
        while http(port, "GET", "/healthz", &[], b"").0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "serve did not start:\n{}",
                served.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        served
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The process id of the running `serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The queue: (delivery, state), oldest first (SQLite control store
    /// `state.db`).
    pub fn jobs(&self) -> Vec<(String, String)> {
        let c = rusqlite::Connection::open(self.dir.path().join("state.db")).unwrap();
        let mut st = c
            .prepare("SELECT delivery, state FROM jobs ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Waits until the job of `delivery` is in `state` (`done`, `failed`).
    pub fn wait_job(&self, delivery: &str, state: &str) {
        let start = std::time::Instant::now();
        while !self.jobs().iter().any(|(d, s)| d == delivery && s == state) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "job {delivery} never {state}: {:?}\n{}",
                self.jobs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the bot's credential files: `<dir>/creds/<owner/repo>/<env>.url`.
pub fn write_credentials(dir: &Path, repo: &str, urls: &[(&str, String)]) {
    let d = dir.join("creds").join(repo);
    std::fs::create_dir_all(&d).unwrap();
    for (env, url) in urls {
        std::fs::write(d.join(format!("{env}.url")), url).unwrap();
    }
}

/// What a release links, as (name, bytes): exactly one file per name, every
/// bundle's SQL beside a manifest that names it and records its SHA-256,
/// and no manifest without its SQL. Returns the SQL files' names.
pub fn assert_bundles_match(files: &[(String, Vec<u8>)]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "one file per name: {names:?}");
    let mut sqls = Vec::new();
    for (name, bytes) in files {
        let Some(stem) = name.strip_suffix(".manifest.json") else {
            continue;
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let sql_name = format!("{stem}.sql");
        assert_eq!(manifest["file"], sql_name.as_str(), "{name}");
        let (_, sql) = files
            .iter()
            .find(|(n, _)| *n == sql_name)
            .unwrap_or_else(|| panic!("{name} without {sql_name}: {names:?}"));
        assert_eq!(
            manifest["bundle_sha256"],
            hex::encode(Sha256::digest(sql)).as_str(),
            "{sql_name} does not hold what {name} records"
        );
        sqls.push(sql_name);
    }
    let all_sql = files.iter().filter(|(n, _)| n.ends_with(".sql")).count();
    assert_eq!(
        sqls.len(),
        all_sql,
        "every SQL file has its manifest: {names:?}"
    );
    sqls
}

/// An HTTP answer with its headers (the console's redirects and cookies).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `name=value` of a cookie this answer sets.
    pub fn cookie(&self, name: &str) -> String {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.headers))
            .to_owned()
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; the answer with its headers.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: console-test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}
