//! MariaDB (or MySQL) for tests, through the `mariadb` client: the server
//! at `MYSQL_URL` (an admin connection), else
//! `mysql://root@127.0.0.1:3306/mysql`. Without a server the tests fail and
//! say what to start: `scripts/test.sh` provisions one.

use std::process::Command;

pub const DEFAULT_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/mysql";

pub fn admin_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// Host, port, user and password of the test server.
fn server() -> (String, u16, String, Option<String>) {
    let url = url::Url::parse(&admin_url()).expect("MYSQL_URL parses");
    (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(3306),
        if url.username().is_empty() {
            "root".to_owned()
        } else {
            url.username().to_owned()
        },
        url.password().map(str::to_owned),
    )
}

/// The `mariadb` client, connected as the admin (to `database` when not
/// empty): for bundles and for sessions a test holds open.
pub fn client(database: &str) -> Command {
    let (host, port, admin, password) = server();
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", &host, "-P", &port.to_string(), "-u", &admin]);
    if let Some(p) = &password {
        cmd.arg(format!("-p{p}"));
    }
    if !database.is_empty() {
        cmd.arg(database);
    }
    cmd
}

/// Runs a file through the client as the README says
/// (`mariadb database < file`): whether it succeeded, and its stderr.
pub fn source(database: &str, file: &std::path::Path) -> (bool, String) {
    let out = client(database)
        .stdin(std::process::Stdio::from(
            std::fs::File::open(file).unwrap(),
        ))
        .output()
        .expect("the mariadb client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs SQL with the `mariadb` client as `user` (the admin when `None`),
/// in `database`; rows tab-separated.
pub fn run_as(user: Option<(&str, &str)>, database: &str, sql: &str) -> Result<String, String> {
    let (host, port, admin, password) = server();
    let mut cmd = Command::new("mariadb");
    cmd.args([
        "-h",
        &host,
        "-P",
        &port.to_string(),
        "--batch",
        "--skip-column-names",
    ]);
    match user {
        Some((u, p)) => {
            cmd.args(["-u", u, &format!("-p{p}")]);
        }
        None => {
            cmd.args(["-u", &admin]);
            if let Some(p) = &password {
                cmd.arg(format!("-p{p}"));
            }
        }
    }
    if !database.is_empty() {
        cmd.arg(database);
    }
    let out = cmd.args(["-e", sql]).output().unwrap_or_else(|e| {
        panic!("the `mariadb` client is needed for the MySQL tests ({e}); `scripts/test.sh` installs it")
    });
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database created for one test and dropped afterwards.
pub struct MyDb {
    pub name: String,
}

impl MyDb {
    pub fn create(prefix: &str) -> MyDb {
        let name = super::unique_name(prefix);
        run_as(None, "", &format!("CREATE DATABASE `{name}`")).unwrap_or_else(|e| {
            panic!(
                "MariaDB/MySQL is not reachable at {}: {e}\n\
                 Start it (`scripts/test.sh` provisions a throwaway server) or set MYSQL_URL to an admin connection.",
                admin_url()
            )
        });
        MyDb { name }
    }

    /// The admin's URL for this database, in `scheme` (mysql or mariadb).
    pub fn url(&self) -> String {
        let (host, port, user, password) = server();
        let auth = match password {
            Some(p) => format!("{user}:{p}"),
            None => user,
        };
        format!("mysql://{auth}@{host}:{port}/{}", self.name)
    }

    /// A URL for another user of the same server.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let (host, port, _, _) = server();
        format!("mysql://{user}:{password}@{host}:{port}/{}", self.name)
    }

    pub fn execute(&self, sql: &str) {
        run_as(None, &self.name, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        run_as(None, &self.name, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = run_as(
            None,
            "",
            &format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}
