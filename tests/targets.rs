//! Database targets: TLS modes, read-only sessions, PgBouncer in
//! transaction-pooling mode, unreachable servers, concurrent reads.

mod support;

use envgate::db::{QueryError, ReadSession, Target};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{BouncerAuth, PgBouncer, PgDb, Project};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn target(url: &str) -> Target {
    Target::parse(url, Path::new("/")).unwrap()
}

async fn open(url: &str) -> Result<ReadSession, String> {
    ReadSession::open(&target(url), None, Duration::from_secs(5)).await
}

fn one(rows: Vec<Vec<Option<String>>>) -> String {
    rows[0][0].clone().unwrap()
}

#[test]
fn sslmode_require_encrypts_against_the_local_server() {
    let db = PgDb::create("tls");
    let ssl_on = db.query_strings("SHOW ssl");
    assert_eq!(
        ssl_on[0][0].as_deref(),
        Some("on"),
        "the test server must have ssl = on (scripts/test.sh starts one with TLS)"
    );
    let in_use = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    runtime().block_on(async {
        for (mode, expected) in [
            ("require", "true"),
            ("prefer", "true"),
            ("disable", "false"),
        ] {
            let s = open(&format!("{}?sslmode={mode}", db.url())).await.unwrap();
            assert_eq!(
                one(s.query(in_use).await.unwrap()),
                expected,
                "sslmode={mode}"
            );
        }
    });
}

/// A CA, a server certificate for `localhost` signed by it, and an
/// unrelated CA, written as PEM files.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "envgate test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let other_key = KeyPair::generate().unwrap();
        let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        other_params
            .distinguished_name
            .push(DnType::CommonName, "some other CA");
        let other = other_params.self_signed(&other_key).unwrap();
        let write = |name: &str, body: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
        };
        write("ca.pem", ca.pem());
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        write("other-ca.pem", other.pem());
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn verify_ca_and_verify_full_check_the_chain_and_the_host() {
    let certs = Certs::new();
    let bouncer = PgBouncer::start_with(
        "session",
        BouncerAuth::Any,
        &format!(
            "client_tls_sslmode = require\nclient_tls_cert_file = {}\nclient_tls_key_file = {}\n",
            certs.path("server.pem"),
            certs.path("server.key")
        ),
    );
    let db = PgDb::create("verify");
    let url = |host: &str, params: &str| {
        format!(
            "postgres://{}@{host}:{}/{}?{params}",
            support::admin_user(),
            bouncer.port,
            db.name
        )
    };
    let ca = certs.path("ca.pem");
    let other = certs.path("other-ca.pem");
    runtime().block_on(async {
        // The chain and the name match.
        let ok = open(&url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ))
        .await;
        assert_eq!(one(ok.unwrap().query("SELECT 'up'").await.unwrap()), "up");
        // verify-ca does not look at the name.
        let ok = open(&url(
            "127.0.0.1",
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        ))
        .await;
        assert!(ok.is_ok(), "{:?}", ok.err());
        // verify-full does.
        let err = open(&url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ))
        .await
        .err()
        .unwrap();
        assert!(err.contains("not valid for name"), "{err}");
        // Neither accepts an unknown issuer; require with a root cert checks the chain like libpq.
        for mode in ["verify-ca", "verify-full", "require"] {
            let err = open(&url(
                "localhost",
                &format!("sslmode={mode}&sslrootcert={other}"),
            ))
            .await
            .err();
            let err = err.unwrap_or_else(|| panic!("sslmode={mode} accepted an unknown issuer"));
            assert!(
                err.contains("UnknownIssuer") || err.contains("unknown issuer"),
                "{mode}: {err}"
            );
        }
        // require without a root certificate encrypts without checking.
        assert!(open(&url("127.0.0.1", "sslmode=require")).await.is_ok());
        // A missing root certificate file is named.
        let err = open(&url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ))
        .await
        .err()
        .unwrap();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    });
}

#[test]
fn read_sessions_are_refused_writes_by_postgres() {
    let db = PgDb::create("ro");
    db.execute(&envgate::ledger::envgate::create_table_sql(
        envgate::core::sql::Dialect::Postgres,
        None,
    ));
    runtime().block_on(async {
        let s = open(&db.url()).await.unwrap();
        let attempts = [
            "CREATE TABLE sneaky (id int)",
            "INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('1', 'x', 'h', 'me', true)",
            "SET TRANSACTION READ WRITE; CREATE TABLE sneaky (id int)",
            "COMMIT; CREATE TABLE sneaky (id int)",
        ];
        for sql in attempts {
            match s.query(sql).await {
                Err(QueryError::ReadOnly(m)) => assert!(m.contains("read-only transaction"), "{m}"),
                Err(QueryError::Other(m)) if sql.starts_with("SET TRANSACTION") => {
                    assert!(m.contains("read-write mode must be set before any query"), "{m}")
                }
                other => panic!("{sql}: expected a refusal, got {other:?}"),
            }
        }
        // The start-up option holds even outside envgate's own transactions.
        assert_eq!(one(s.query("SHOW default_transaction_read_only").await.unwrap()), "on");
    });
    let tables = db.query_strings("SELECT count(*) FROM pg_tables WHERE tablename = 'sneaky'");
    assert_eq!(tables[0][0].as_deref(), Some("0"));
    let rows = db.query_strings("SELECT count(*) FROM envgate_migrations");
    assert_eq!(rows[0][0].as_deref(), Some("0"));
}

#[test]
fn read_sessions_are_refused_writes_by_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(&envgate::ledger::envgate::create_table_sql(
        envgate::core::sql::Dialect::Sqlite,
        None,
    ))
    .unwrap();
    drop(conn);
    runtime().block_on(async {
        let s = open(&format!("sqlite://{}", file.display())).await.unwrap();
        for sql in [
            "CREATE TABLE sneaky (id int)",
            "INSERT INTO envgate_migrations (version, name, sha256, applied_by, success) VALUES ('1', 'x', 'h', 'me', 1)",
        ] {
            match s.query(sql).await {
                Err(QueryError::ReadOnly(m)) => assert!(m.contains("readonly database"), "{m}"),
                other => panic!("{sql}: expected a refusal, got {other:?}"),
            }
        }
    });
    let conn = rusqlite::Connection::open(&file).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM envgate_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn status_through_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start("transaction", BouncerAuth::Any);
    let db = PgDb::create("bouncer");
    let body = "CREATE TABLE users (id int);\n";
    db.execute(&format!(
        "{};\n{}",
        envgate::ledger::envgate::create_table_sql(
            envgate::core::sql::Dialect::Postgres,
            Some("app")
        ),
        support::ledger::insert(
            "app.envgate_migrations",
            "1",
            "users",
            &support::ledger::hash(body),
            true,
            "2026-01-01 00:00:00+00"
        )
    ));
    let url = bouncer.url(&support::admin_user(), &db.name);
    // Several environments over the same pool of two server connections,
    // read concurrently: statements from different clients interleave on
    // shared server connections, which breaks named prepared statements.
    let mut config = String::new();
    for i in 0..6 {
        config.push_str(&format!(
            "[environments.e{i}]\nurl = \"{url}\"\nschema = \"app\"\n\n"
        ));
    }
    let project = Project::new(
        &config,
        &[("1_users.sql", body), ("2_more.sql", "SELECT 1;\n")],
    );
    for _ in 0..3 {
        let run = project.envgate(&["status", "--format", "json"]);
        assert_eq!(run.code, 0, "{run:?}");
        let j = run.json();
        for i in 0..6 {
            assert_eq!(j["environments"][i]["counts"]["applied"], 1, "{run:?}");
            assert_eq!(j["environments"][i]["counts"]["pending"], 1, "{run:?}");
        }
    }
    // Read-only holds through the pooler, which rejects the start-up option.
    runtime().block_on(async {
        let s = open(&url).await.unwrap();
        match s.query("CREATE TABLE sneaky (id int)").await {
            Err(QueryError::ReadOnly(_)) => {}
            other => panic!("expected a refusal through pgbouncer, got {other:?}"),
        }
    });
}

#[test]
fn wrong_password_and_closed_port_leave_other_environments_readable() {
    let bouncer = PgBouncer::start(
        "transaction",
        BouncerAuth::Password {
            user: "app".into(),
            password: "right-password".into(),
        },
    );
    let db = PgDb::create("pw");
    let project = Project::new(
        &format!(
            "[environments.good]\nurl = \"{}\"\n\n\
             [environments.badpw]\nurl = \"{}\"\n\n\
             [environments.closed]\nurl = \"postgres://app:wrong-password@127.0.0.1:{}/x\"\n\n\
             [environments.via-bouncer]\nurl = \"{}\"\n",
            db.url(),
            bouncer.url("app:wrong-password", &db.name),
            support::free_port(),
            bouncer.url("app:right-password", &db.name),
        ),
        &[("1_users.sql", "CREATE TABLE users (id int);\n")],
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    let j = run.json();
    let env = |i: usize| &j["environments"][i];
    assert_eq!(env(0)["reachable"], true);
    assert_eq!(
        env(3)["reachable"],
        true,
        "the right password gets through: {run:?}"
    );
    let badpw = env(1)["error"].as_str().unwrap();
    assert!(badpw.contains("password authentication failed"), "{badpw}");
    let closed = env(2)["error"].as_str().unwrap();
    assert!(closed.contains("Connection refused"), "{closed}");
    assert!(
        !run.stdout.contains("wrong-password") && !run.stdout.contains("right-password"),
        "{run:?}"
    );
    assert_eq!(j["migrations"][0]["cells"]["good"]["state"], "pending");
    assert_eq!(j["migrations"][0]["cells"]["badpw"]["state"], "unreachable");
}

/// A TCP server that accepts connections and never answers, recording when
/// each connection opened and closed.
fn silent_server() -> (u16, std::thread::JoinHandle<(Instant, Instant)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let opened = Instant::now();
        let mut buf = [0u8; 1024];
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        (opened, Instant::now())
    });
    (port, handle)
}

#[test]
fn hanging_servers_time_out_and_environments_are_read_concurrently() {
    let (port_a, a) = silent_server();
    let (port_b, b) = silent_server();
    let project = Project::new(
        &format!(
            "connect_timeout = \"1s\"\n\
             [environments.a]\nurl = \"postgres://app@127.0.0.1:{port_a}/x?sslmode=disable\"\n\n\
             [environments.b]\nurl = \"postgres://app@127.0.0.1:{port_b}/x?sslmode=disable\"\n\n\
             [environments.lite]\nurl = \"sqlite::memory:\"\n"
        ),
        &[("1_users.sql", "CREATE TABLE users (id int);\n")],
    );
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    let j = run.json();
    for i in 0..2 {
        let err = j["environments"][i]["error"].as_str().unwrap();
        assert!(err.contains("timed out after 1s"), "{err}");
    }
    assert_eq!(j["environments"][2]["counts"]["pending"], 1);
    // Both connections were open at the same time: one environment did not
    // wait for the other to time out.
    let (a_open, a_close) = a.join().unwrap();
    let (b_open, b_close) = b.join().unwrap();
    assert!(
        a_open < b_close && b_open < a_close,
        "connections did not overlap"
    );
}

/// A throwaway MariaDB serving TLS with `certs`' server certificate, from
/// the locally installed server binaries (`scripts/test.sh` installs
/// `mariadb-server`); stopped on drop.
struct TlsMariaDb {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsMariaDb {
    fn start(certs: &Certs) -> TlsMariaDb {
        let find = |names: &[&str]| {
            names
                .iter()
                .flat_map(|n| [format!("/usr/sbin/{n}"), format!("/usr/bin/{n}")])
                .find(|p| Path::new(p).exists())
                .unwrap_or_else(|| {
                    panic!(
                        "{} not found: install the distribution's mariadb-server (scripts/test.sh does)",
                        names[0]
                    )
                })
        };
        let server = find(&["mariadbd", "mysqld"]);
        let install = find(&["mariadb-install-db", "mysql_install_db"]);
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let user: Vec<String> = if root {
            vec!["--user=root".into()]
        } else {
            vec![]
        };
        let out = std::process::Command::new(&install)
            .arg("--no-defaults")
            .args(&user)
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&server)
            .arg("--no-defaults")
            .args(&user)
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--socket={}", dir.path().join("s.sock").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--ssl-cert={}", certs.path("server.pem")))
            .arg(format!("--ssl-key={}", certs.path("server.key")))
            .arg(format!("--ssl-ca={}", certs.path("ca.pem")))
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .spawn()
            .unwrap();
        let db = TlsMariaDb {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the TLS MariaDB did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        db
    }
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// MySQL's ssl-mode, as its client means it, against a server with TLS and
/// one without.
#[test]
fn mysql_ssl_modes_check_what_they_promise() {
    let certs = Certs::new();
    let tls = TlsMariaDb::start(&certs);
    let ca = certs.path("ca.pem");
    let other = certs.path("other-ca.pem");
    let url = |host: &str, params: &str| format!("mysql://root@{host}:{}/mysql?{params}", tls.port);
    runtime().block_on(async {
        let ok = |u: String| async move {
            let s = open(&u).await.unwrap_or_else(|e| panic!("{u}: {e}"));
            one(s.query("SELECT 'up'").await.unwrap())
        };
        let err = |u: String| async move {
            match open(&u).await {
                Ok(_) => panic!("{u} connected"),
                Err(e) => e,
            }
        };
        // Encrypted: the session says so.
        let s = open(&url("localhost", &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}")))
            .await
            .unwrap();
        let cipher = one(s.query("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").await.unwrap());
        assert!(!cipher.is_empty(), "no TLS cipher in use");
        // VERIFY_CA checks the chain; with this driver it checks the name
        // too (stricter than the mysql client: see docs/configuration.md).
        assert_eq!(ok(url("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"))).await, "up");
        let e = err(url("127.0.0.1", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"))).await;
        assert!(e.contains("not valid for name"), "{e}");
        let e = err(url("127.0.0.1", &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"))).await;
        assert!(e.contains("not valid for name"), "{e}");
        let e = err(url("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={other}"))).await;
        assert!(e.contains("invalid peer certificate"), "{e}");
        // REQUIRED encrypts without checking; PREFERRED and DISABLED connect.
        assert_eq!(ok(url("127.0.0.1", "ssl-mode=REQUIRED")).await, "up");
        assert_eq!(ok(url("127.0.0.1", "ssl-mode=PREFERRED")).await, "up");
        assert_eq!(ok(url("127.0.0.1", "ssl-mode=DISABLED")).await, "up");
        // A server without TLS: PREFERRED goes on in plain text, REQUIRED
        // refuses and says why.
        let plain = support::mysql::MyDb::create("tls_plain");
        let has_ssl = plain.query("SHOW VARIABLES LIKE 'have_ssl'");
        if has_ssl.first().is_some_and(|r| r.get(1).map(String::as_str) == Some("DISABLED")) {
            assert_eq!(ok(format!("{}?ssl-mode=PREFERRED", plain.url())).await, "up");
            let e = err(format!("{}?ssl-mode=REQUIRED", plain.url())).await;
            assert!(e.contains("the server offers no TLS, and ssl-mode asks for it"), "{e}");
        }
    });
}
