//! `envgate status` end to end, against real PostgreSQL databases, side by
//! side with `dbmate status`.
//!
//! ```text
//! scripts/bench-deps.sh            # installs dbmate (npm) under target/bench-tools
//! cargo bench --bench status       # [-- --runs N]
//! ```
//!
//! Scenarios (each command is run as a process, warm-up runs first, output
//! to /dev/null, as hyperfine does):
//! 1. 10,000 migrations × 3 environments, all applied;
//! 2. the same with 1 % of the files changed since they were applied;
//! 3. 5,000 migrations: `envgate status` over 3 environments vs
//!    `dbmate status` over the one database dbmate migrated.
//!
//! Prints a Markdown table of wall times (median, min, p95) and peak
//! resident memory, plus the envgate/dbmate ratio.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{Stats, measure, measure_pair, ms};
use envgate::core::checksum::ContentHash;
use envgate::core::sql::Dialect;
use envgate::ledger::envgate::create_table_sql;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::PgDb;

/// A realistic small migration, in dbmate's layout (which envgate's layout
/// also accepts: `<version>_<name>.sql`).
fn migration_body(i: usize) -> String {
    format!(
        "-- migrate:up\nCREATE TABLE bench_t{i} (\n    id bigint PRIMARY KEY,\n    owner_id bigint NOT NULL,\n    \
         title text NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n\
         CREATE INDEX bench_t{i}_owner_idx ON bench_t{i} (owner_id);\n\n-- migrate:down\nDROP TABLE bench_t{i};\n"
    )
}

fn version(i: usize) -> String {
    // 2026-01-01 00:00:00 plus i seconds, as YYYYMMDDhhmmss.
    let secs = i;
    let (d, rem) = (secs / 86_400, secs % 86_400);
    format!(
        "202601{:02}{:02}{:02}{:02}",
        1 + d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes `n` migrations; returns (version, name, body) for each.
fn write_migrations(dir: &Path, n: usize) -> Vec<(String, String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let (v, name, body) = (version(i), format!("create_bench_t{i}"), migration_body(i));
            std::fs::write(dir.join(format!("{v}_{name}.sql")), &body).unwrap();
            (v, name, body)
        })
        .collect()
}

/// An envgate ledger with every migration applied; every `drift_every`-th
/// row records another hash (0: none).
fn envgate_ledger(db: &PgDb, migrations: &[(String, String, String)], drift_every: usize) {
    let mut client = db.client();
    client
        .batch_execute(&create_table_sql(Dialect::Postgres, None))
        .unwrap();
    let mut copy = client
        .copy_in("COPY envgate_migrations (version, name, sha256, applied_by, execution_ms, success) FROM STDIN")
        .unwrap();
    use std::io::Write;
    for (i, (v, name, body)) in migrations.iter().enumerate() {
        let hash = if drift_every > 0 && i % drift_every == 0 {
            ContentHash::of(format!("{body}-- edited\n").as_bytes())
        } else {
            ContentHash::of(body.as_bytes())
        };
        writeln!(copy, "{v}\t{name}\t{}\tbench\t3\tt", hash.tagged()).unwrap();
    }
    copy.finish().unwrap();
    // Settle the fresh table (hint bits, statistics) so that no run pays
    // for it and autovacuum does not wake up in the middle of the runs.
    client
        .batch_execute("VACUUM ANALYZE envgate_migrations")
        .unwrap();
}

fn envgate_config(dir: &Path, dbs: &[&PgDb]) -> PathBuf {
    let mut config = String::from("migrations = \"migrations\"\n");
    for (i, db) in dbs.iter().enumerate() {
        config.push_str(&format!(
            "\n[environments.env{i}]\nurl = \"{}?sslmode=disable\"\nmode = \"export_only\"\n",
            db.url()
        ));
    }
    let path = dir.join("envgate.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn envgate_cmd(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
    c.args(["status", "-c"]).arg(config);
    c
}

fn dbmate_bin() -> PathBuf {
    let local =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tools/node_modules/.bin/dbmate");
    if local.exists() {
        return local;
    }
    support::which("dbmate")
        .unwrap_or_else(|| panic!("dbmate is not installed: run scripts/bench-deps.sh"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map_or(30, |n| n.parse().expect("--runs N"));

    println!("| scenario | median | min | p95 | peak RSS |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, s: &Stats| {
        println!(
            "| {name} | {} | {} | {} | {:.1} MiB |",
            ms(s.median),
            ms(s.min),
            ms(s.p95),
            s.max_rss_mib
        );
    };

    // 1 and 2: 10,000 × 3.
    {
        let dir = tempfile::tempdir().unwrap();
        let ms10k = write_migrations(&dir.path().join("migrations"), 10_000);
        let clean: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &clean {
            envgate_ledger(db, &ms10k, 0);
        }
        let config = envgate_config(dir.path(), &clean.iter().collect::<Vec<_>>());
        let s = measure(runs, || envgate_cmd(&config));
        row(
            "envgate status, 10,000 migrations × 3 environments, all applied",
            &s,
        );

        let drifted: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &drifted {
            envgate_ledger(db, &ms10k, 100);
        }
        let config = envgate_config(dir.path(), &drifted.iter().collect::<Vec<_>>());
        let s = measure(runs, || envgate_cmd(&config));
        row(
            "envgate status, 10,000 migrations × 3 environments, 1 % drifted",
            &s,
        );
    }

    // 3: 5,000 migrations, envgate × 3 vs dbmate × 1.
    {
        let dbmate = dbmate_bin();
        let dir = tempfile::tempdir().unwrap();
        let ms5k = write_migrations(&dir.path().join("migrations"), 5_000);
        let dbmate_db = PgDb::create("bench_dbmate");
        let dbmate_url = format!("{}?sslmode=disable", dbmate_db.url());
        let dbmate_cmd = |sub: &str| {
            let mut c = Command::new(&dbmate);
            c.arg("--url")
                .arg(&dbmate_url)
                .arg("--migrations-dir")
                .arg(dir.path().join("migrations"))
                .arg("--no-dump-schema")
                .arg(sub);
            c
        };
        let up = dbmate_cmd("up").stdout(Stdio::null()).status().unwrap();
        assert!(up.success(), "dbmate up failed");
        dbmate_db.execute("VACUUM ANALYZE");
        let envs: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &envs {
            envgate_ledger(db, &ms5k, 0);
        }
        let config = envgate_config(dir.path(), &envs.iter().collect::<Vec<_>>());
        let (e, d) = measure_pair(runs, || envgate_cmd(&config), || dbmate_cmd("status"));
        row("envgate status, 5,000 migrations × 3 environments", &e);
        row("dbmate status, 5,000 migrations × 1 database", &d);
        println!(
            "\nratio envgate (3 environments) / dbmate (1 database), medians: {:.2}",
            e.median.as_secs_f64() / d.median.as_secs_f64()
        );
    }
}
