//! Drift in the live schema, for a 500-table schema on PostgreSQL:
//! 1. reading one environment's schema (`envgate schema show`);
//! 2. `envgate schema diff` over 3 environments with the expected schema
//!    cached (reads and diffs only);
//! 3. the same with the cache emptied before each run: the shadow database
//!    is created, filled with the 50 migrations, read and dropped;
//! 4. in process, the pure part: fingerprint and diff of two 500-table
//!    models.
//!
//! ```text
//! cargo bench --bench schema        # [-- --runs N --cold-runs N]  (DATABASE_URL, else 127.0.0.1:5432)
//! ```

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{measure, ms, run_once};
use envgate::core::schema::{self, Kind, Object, Schema};
use std::process::Command;
use std::time::Instant;
use support::PgDb;

const MIGRATIONS: usize = 50;
const TABLES_PER_MIGRATION: usize = 10;

/// Ten tables: columns of several types, a primary key, a foreign key to
/// the previous table, a check, a unique constraint and an index each.
fn migration(m: usize) -> String {
    let mut sql = String::new();
    for t in 0..TABLES_PER_MIGRATION {
        let n = m * TABLES_PER_MIGRATION + t;
        let fk = if n == 0 {
            String::new()
        } else {
            format!(", parent_id bigint REFERENCES t{} (id)", n - 1)
        };
        sql.push_str(&format!(
            "CREATE TABLE t{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, \
             amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (amount >= 0), created_at timestamptz NOT NULL DEFAULT now(), \
             note varchar(200){fk});\nCREATE INDEX t{n}_created ON t{n} (created_at) WHERE amount > 0;\n"
        ));
    }
    sql
}

fn envgate(config: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
    c.args(args).arg("-c").arg(config);
    c
}

fn row(name: &str, s: &common::Stats) {
    println!(
        "| {name} | {} | {} | {} | {:.1} MiB |",
        ms(s.median),
        ms(s.min),
        ms(s.p95),
        s.max_rss_mib
    );
}

/// A 500-table model, as the catalog readers make it.
fn model(tables: usize, changed: bool) -> Schema {
    let mut objects = Vec::new();
    for n in 0..tables {
        let t = format!("t{n}");
        objects.push(Object::new(Kind::Table, None, &t, "table"));
        for (c, d) in [
            ("id", "bigint not null generated always as identity"),
            ("code", "text not null"),
            ("amount", "numeric(12,2) not null default 0"),
            (
                "created_at",
                "timestamp with time zone not null default now()",
            ),
            (
                "note",
                if changed && n == 7 {
                    "text"
                } else {
                    "character varying(200)"
                },
            ),
        ] {
            objects.push(Object::new(Kind::Column, Some(&t), c, d));
        }
        objects.push(Object::new(
            Kind::PrimaryKey,
            Some(&t),
            &format!("{t}_pkey"),
            "PRIMARY KEY (id)",
        ));
        objects.push(Object::new(
            Kind::Unique,
            Some(&t),
            &format!("{t}_code_key"),
            "UNIQUE (code)",
        ));
        objects.push(Object::new(
            Kind::Check,
            Some(&t),
            &format!("{t}_amount_check"),
            "CHECK (amount >= 0::numeric)",
        ));
        objects.push(Object::new(
            Kind::Index,
            Some(&t),
            &format!("{t}_created"),
            &format!("CREATE INDEX {t}_created ON public.{t} USING btree (created_at) WHERE (amount > 0::numeric)"),
        ));
    }
    Schema::new(objects, &[], &[])
}

fn main() {
    common::measure_child_mode();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs = common::arg("--runs", 20) as usize;
    let cold_runs = common::arg("--cold-runs", 7) as usize;

    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    for m in 0..MIGRATIONS {
        std::fs::write(
            migrations.join(format!("{}_tables.sql", m + 1)),
            migration(m),
        )
        .unwrap();
    }
    let envs: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench_schema")).collect();
    let shadow = support::unique_name("bench_schema_shadow");
    let (host, port) = support::server_addr();
    let mut config = format!(
        "[schema_drift]\nshadow_url = \"postgres://{}@{host}:{port}/{shadow}?sslmode=disable\"\n",
        support::admin_user()
    );
    for (i, db) in envs.iter().enumerate() {
        config.push_str(&format!(
            "[environments.env{i}]\nurl = \"{}?sslmode=disable\"\nmode = \"managed\"\n",
            db.url()
        ));
    }
    let config_path = dir.path().join("envgate.toml");
    std::fs::write(&config_path, config).unwrap();
    for i in 0..3 {
        let env = format!("env{i}");
        let s = run_once(&mut envgate(&config_path, &["apply", "--env", &env]));
        eprintln!(
            "applied 50 migrations (500 tables) to {env} in {}",
            ms(s.wall)
        );
    }
    // One hand change in env2, so the diff has something to say.
    envs[2].execute("CREATE INDEX t7_note ON t7 (note)");
    let objects = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .args(["schema", "show", "--env", "env0", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&objects.stdout);
    eprintln!("{}", text.lines().next().unwrap_or_default());

    let show = measure(runs, || {
        envgate(&config_path, &["schema", "show", "--env", "env0"])
    });
    run_once(&mut envgate(&config_path, &["schema", "diff"]));
    let cached = measure(runs, || envgate(&config_path, &["schema", "diff"]));
    let cache = dir.path().join(".envgate/schemas");
    let cold = common::stats(
        (0..cold_runs)
            .map(|_| {
                let _ = std::fs::remove_dir_all(&cache);
                run_once(&mut envgate(&config_path, &["schema", "diff"]))
            })
            .collect(),
    );

    println!("| PostgreSQL, 500 tables (5,998 objects) | median | min | p95 | peak RSS |");
    println!("|---|---|---|---|---|");
    row(
        "`envgate schema show`: read one environment's schema",
        &show,
    );
    row(
        "`envgate schema diff`, 3 environments, expected schema cached",
        &cached,
    );
    row(
        "`envgate schema diff`, 3 environments, cold: shadow built from 50 migrations",
        &cold,
    );

    // The pure part, in process.
    let (a, b) = (model(500, false), model(500, true));
    let n = 50;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.fingerprint());
    }
    let fingerprint = started.elapsed() / n;
    let started = Instant::now();
    let mut changes = 0;
    for _ in 0..n {
        changes = std::hint::black_box(schema::diff(&a, &b)).len();
    }
    let diff = started.elapsed() / n;
    println!(
        "\nin process, {} objects: fingerprint {}, diff {} ({changes} change)",
        a.len(),
        ms(fingerprint),
        ms(diff)
    );
}
