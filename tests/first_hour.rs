//! What a new team meets first: one grammar for every command (old
//! spellings still understood, with a notice), `envgate init` on every
//! supported layout, apply's progress in a log, and a command-line
//! reference that matches the program.

mod support;

use std::path::Path;
use support::{PgDb, Project, envgate_in};

const THREE: &[(&str, &str)] = &[
    ("1_a.sql", "CREATE TABLE a (id int);\n"),
    ("2_b.sql", "CREATE TABLE b (id int);\n"),
    ("3_c.sql", "CREATE TABLE c (id int);\n"),
];

fn sqlite_trio() -> Project {
    Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\nmode = \"managed\"\n\
         [environments.staging]\nurl = \"sqlite://staging.db\"\nmode = \"managed\"\n\
         [environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"export_only\"\n",
        THREE,
    )
}

fn deprecation(old: &str, new: &str) -> String {
    format!("warning: `{old}` is deprecated and goes away in the next release: use `{new}`\n")
}

#[test]
fn one_grammar_and_the_old_spellings_with_a_notice() {
    let p = sqlite_trio();
    // prod: an empty database, read-only to envgate.
    rusqlite::Connection::open(p.path().join("prod.db"))
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (id int);")
        .unwrap();
    // --up-to is the version bound; the old --to still works, and says so.
    let new = p.envgate(&["apply", "--env", "dev", "--up-to", "1"]);
    assert_eq!(new.code, 0, "{new:?}");
    assert!(!new.stderr.contains("deprecated"), "{new:?}");
    let old = p.envgate(&["apply", "--env", "staging", "--to", "1"]);
    assert_eq!(old.code, 0, "{old:?}");
    assert!(
        old.stderr
            .starts_with(&deprecation("--to VERSION", "--up-to VERSION")),
        "{old:?}"
    );
    let both = p.envgate(&["plan", "--env", "dev", "--to", "1", "--up-to", "2"]);
    assert_eq!(both.code, 2, "one or the other: {both:?}");

    // Comma-separated environments, as everywhere several are allowed.
    let run = p.envgate(&["status", "--env", "dev,prod", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let names: Vec<String> = run.json()["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["dev", "prod"]);

    // One output flag.
    let out = p.envgate(&["export", "--env", "prod", "--out-dir", "b1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(p.path().join("b1/prod-empty-3.sql").exists(), "{out:?}");
    let out = p.envgate(&["export", "--env", "prod", "--out", "b2"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains(&deprecation("--out DIR", "--out-dir DIR")),
        "{out:?}"
    );
    assert!(p.path().join("b2/prod-empty-3.sql").exists(), "{out:?}");

    // --env names the environment in drift accept and mode too.
    p.write(
        "migrations/1_a.sql",
        "CREATE TABLE a (id int); -- reviewed\n",
    );
    let run = p.envgate(&[
        "drift", "accept", "--env", "dev", "1", "--reason", "comment", "--actor", "carol",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("deprecated"), "{run:?}");
    let run = p.envgate(&[
        "drift", "accept", "staging", "1", "--reason", "comment", "--actor", "carol",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&deprecation(
            "envgate drift accept ENV VERSION",
            "envgate drift accept --env ENV VERSION"
        )),
        "{run:?}"
    );
    let run = p.envgate(&["drift", "accept", "1", "--reason", "x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("which environment?"), "{run:?}");

    let run = p.envgate(&["mode", "set", "--env", "prod", "reconcile_only"]);
    assert_eq!(run.code, 0, "{run:?}");
    let toml = std::fs::read_to_string(p.path().join("envgate.toml")).unwrap();
    assert!(
        toml.contains("[environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"reconcile_only\""),
        "{toml}"
    );
    let run = p.envgate(&["mode", "set", "prod", "export_only"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("deprecated"), "{run:?}");

    // -c names serve.toml for serve (the bot reads no envgate.toml).
    let run = envgate_in(p.path(), &["serve", "-c", "missing-serve.toml"], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("missing-serve.toml"), "{run:?}");
}

#[test]
fn retrying_a_failure_is_not_waiving_drift() {
    let p = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\nmode = \"managed\"\n",
        &[
            ("1_a.sql", "CREATE TABLE a (id int);\n"),
            (
                "2_b.sql",
                "CREATE TABLE b (id int); CREATE TABLE b (id int);\n",
            ),
        ],
    );
    assert_eq!(p.envgate(&["apply", "--env", "dev"]).code, 1);
    p.write("migrations/2_b.sql", "CREATE TABLE b (id int);\n");
    p.write("migrations/1_a.sql", "CREATE TABLE a (id int, x int);\n");
    let run = p.envgate(&["apply", "--env", "dev", "--retry-failed"]);
    assert_eq!(run.code, 3, "drift still blocks: {run:?}");
    assert!(run.stdout.contains("1 drifted"), "{run:?}");
    assert!(run.stdout.contains("--allow-drift (drift)"), "{run:?}");
    let run = p.envgate(&["apply", "--env", "dev", "--retry-failed", "--allow-drift"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// In a log (not a terminal), one line per migration as it starts and as
/// it ends, with the time it took.
#[test]
fn apply_progress_in_a_log_is_a_line_per_migration() {
    let p = Project::new(
        "[environments.dev]\nurl = \"sqlite://dev.db\"\nmode = \"managed\"\n",
        THREE,
    );
    let run = p.envgate(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{run:?}");
    for (i, name) in ["1_a", "2_b", "3_c"].iter().enumerate() {
        assert_eq!(lines[2 * i], format!("[{}/3] applying {name} …", i + 1));
        let end = lines[2 * i + 1];
        assert!(
            end.starts_with(&format!("[{}/3] applied {name} (", i + 1)) && end.ends_with(" ms)"),
            "{end}"
        );
    }
    assert!(!run.stderr.contains('\u{1b}'), "no terminal codes: {run:?}");
}

/// With another tool's ledger, apply says who applies there, and does not
/// send people to `export`, which refuses too.
#[test]
fn apply_on_another_tools_ledger_points_at_that_tool() {
    let p = Project::new(
        "format = \"flyway\"\nmigrations = \"db/migration\"\n[environments.legacy]\nurl = \"sqlite://legacy.db\"\n",
        &[],
    );
    p.write("db/migration/V1__a.sql", "CREATE TABLE a (id int);\n");
    let run = p.envgate(&["apply", "--env", "legacy"]);
    assert_eq!(run.code, 3, "{run:?}");
    let all = run.stdout.clone() + &run.stderr;
    assert!(all.contains("run flyway itself"), "{run:?}");
    assert!(!all.contains("envgate export"), "{run:?}");
}

/// Sets up a copy of a real tool's fixture as a project would hold it
/// (with the manifest a real project has when the fixture does not).
fn layout_project(fixture: &str, manifest: Option<(&str, &str)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tools")
        .join(fixture);
    let status = std::process::Command::new("cp")
        .arg("-R")
        .arg(format!("{}/.", from.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    for f in [
        "README.md",
        "ledger.sql",
        "status.txt",
        "expected.txt",
        "regenerate.sh",
        "tool-version.txt",
    ] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    if let Some((name, text)) = manifest {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn init_config(dir: &Path, extra: &[&str]) -> (support::Run, toml::Value) {
    let mut args = vec!["init", "--yes"];
    args.extend_from_slice(extra);
    let run = envgate_in(dir, &args, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(dir.join("envgate.toml")).unwrap();
    (
        run,
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}")),
    )
}

/// `init` finds the layout of every supported tool, as the tool's own
/// fixture holds it, and the file it writes reads that layout.
#[test]
fn init_detects_every_supported_layout() {
    /// A fixture, the manifest a real project would add, the format and
    /// `migrations` expected.
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: &[Case] = &[
        ("alembic", None, "alembic", "migrations/versions"),
        ("dbmate", None, "dbmate", "db/migrations"),
        ("diesel", None, "diesel", "migrations"),
        ("django", None, "django", "."),
        ("ecto", None, "ecto", "priv/repo/migrations"),
        ("flyway", None, "flyway", "db/migration"),
        ("golang-migrate", None, "golang-migrate", "migrations"),
        ("goose", None, "goose", "migrations"),
        ("knex", None, "knex", "migrations"),
        (
            "laravel",
            Some((
                "composer.json",
                "{\"require\": {\"laravel/framework\": \"^11.0\"}}",
            )),
            "laravel",
            "database/migrations",
        ),
        (
            "yoyo",
            Some(("requirements.txt", "yoyo-migrations==9.0.0\n")),
            "yoyo",
            "migrations",
        ),
        (
            "liquibase",
            None,
            "liquibase",
            "changelog/db.changelog-master.xml",
        ),
        ("node-pg-migrate", None, "node-pg-migrate", "migrations"),
        ("prisma", None, "prisma", "prisma/migrations"),
        ("rails", None, "rails", "db/migrate"),
        (
            "refinery",
            Some(("Cargo.toml", "[dependencies]\nrefinery = \"0.8\"\n")),
            "refinery",
            "migrations",
        ),
        (
            "sqlx",
            Some((
                "Cargo.toml",
                "[dependencies]\nsqlx = { version = \"0.8\" }\n",
            )),
            "sqlx",
            "migrations",
        ),
    ];
    for (fixture, manifest, format, migrations) in cases {
        let dir = layout_project(fixture, *manifest);
        let (run, cfg) = init_config(dir.path(), &["--env", "dev=sqlite://dev.db"]);
        assert_eq!(cfg["format"].as_str(), Some(*format), "{fixture}: {run:?}");
        assert_eq!(
            cfg["migrations"].as_str(),
            Some(*migrations),
            "{fixture}: {run:?}"
        );
        // The file it wrote reads the layout: the matrix lists migrations.
        // (exit 4: dev.db does not exist yet.)
        let status = envgate_in(dir.path(), &["status", "--format", "json"], &[]);
        assert!([0, 4].contains(&status.code), "{fixture}: {status:?}");
        assert!(
            !status.json()["migrations"].as_array().unwrap().is_empty(),
            "{fixture}: {status:?}"
        );
    }
    // envgate's own layout: the bundled example.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    for (name, body) in THREE {
        std::fs::write(dir.path().join("migrations").join(name), body).unwrap();
    }
    let (_, cfg) = init_config(dir.path(), &[]);
    assert_eq!(cfg["format"].as_str(), Some("envgate"));
    assert_eq!(cfg["migrations"].as_str(), Some("migrations"));
}

/// Against real databases: read-only, the ledger found per environment,
/// passwords kept out of the file, the first matrix shown, nothing
/// overwritten without --force.
#[test]
fn init_probes_each_environment_read_only_and_keeps_passwords_out() {
    let (dev, prod) = (PgDb::create("init_dev"), PgDb::create("init_prod"));
    let p = Project::new(
        &format!(
            "[environments.dev]\nurl = \"{}\"\nmode = \"managed\"\n",
            dev.url()
        ),
        THREE,
    );
    assert_eq!(p.envgate(&["apply", "--env", "dev"]).code, 0);
    std::fs::remove_file(p.path().join("envgate.toml")).unwrap();
    // prod's URL with a password (trust auth ignores it).
    let prod_url = prod
        .url()
        .replacen("postgres://postgres@", "postgres://postgres:Zq7pw@", 1);
    let prod_before = prod.query_strings(
        "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'public'",
    );
    let (run, cfg) = init_config(
        p.path(),
        &[
            "--env",
            &format!("dev={}", dev.url()),
            "--env",
            &format!("prod={prod_url}"),
        ],
    );
    let text = std::fs::read_to_string(p.path().join("envgate.toml")).unwrap();
    assert!(!text.contains("Zq7pw"), "{text}");
    assert!(
        !(run.stdout.clone() + &run.stderr).contains("Zq7pw"),
        "{run:?}"
    );
    assert_eq!(
        cfg["environments"]["prod"]["url"].as_str().unwrap(),
        prod_url.replace("Zq7pw", "${PROD_DB_PASSWORD}")
    );
    assert!(run.stderr.contains("$PROD_DB_PASSWORD"), "{run:?}");
    assert_eq!(cfg["environments"]["dev"]["mode"].as_str(), Some("managed"));
    assert_eq!(
        cfg["environments"]["prod"]["mode"].as_str(),
        Some("export_only")
    );
    assert!(
        text.contains("# read-only probe: found envgate_migrations"),
        "{text}"
    );
    assert!(
        text.contains("# read-only probe: no envgate_migrations table yet"),
        "{text}"
    );
    // The first matrix.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("1_a ") && l.ends_with("applied  pending")),
        "{run:?}"
    );
    // Nothing was written to prod.
    assert_eq!(
        prod.query_strings(
            "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        prod_before
    );
    // An existing file stays unless --force.
    let again = p.envgate(&["init", "--yes", "--env", "dev=sqlite://x.db"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        again.stderr.contains("exists; nothing written"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("envgate.toml")).unwrap(),
        text
    );
    let forced = p.envgate(&["init", "--yes", "--force", "--env", "dev=sqlite://x.db"]);
    assert_eq!(forced.code, 0, "{forced:?}");
}

/// docs/cli.md is the program's own help; regenerate it with
/// ENVGATE_UPDATE_DOCS=1.
#[test]
fn cli_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let want = envgate::cli::reference();
    if std::env::var_os("ENVGATE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/cli.md is stale: run `ENVGATE_UPDATE_DOCS=1 cargo test --test first_hour cli_reference_is_current`"
    );
    // Hidden old spellings stay out of the reference.
    assert!(!want.contains("--config-file") && !want.contains("--out <DIR>"));
}

/// Colour on a terminal only, and never with NO_COLOR (a pseudo-terminal
/// from `script` stands in for the terminal).
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_a_terminal = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.current_dir(root)
            .args(["-qec"])
            .arg(format!(
                "{} status -c examples/quickstart/envgate.toml",
                env!("CARGO_BIN_EXE_envgate")
            ))
            .arg("/dev/null")
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd
            .output()
            .expect("`script` (util-linux) runs a command on a pseudo-terminal");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_a_terminal(false);
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colour:\n{coloured}"
    );
    assert!(coloured.contains("drifted"), "{coloured}");
    let plain = on_a_terminal(true);
    assert!(plain.contains("drifted"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR is honoured:\n{plain}");
    let piped = envgate_in(
        root,
        &["status", "-c", "examples/quickstart/envgate.toml"],
        &[],
    );
    assert!(!(piped.stdout + &piped.stderr).contains('\u{1b}'));
}
