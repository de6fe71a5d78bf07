//! `envgate status` end to end, against real PostgreSQL databases, side by
//! side with `dbmate status` and `sqlx migrate info`.
//!
//! ```text
//! scripts/bench-deps.sh            # dbmate (npm, its native binary) and sqlx-cli under target/bench-tools
//! cargo bench --bench status       # [-- --runs N] [--growth]
//! ```
//!
//! Every command is run as a process (warm-up rounds first, output to
//! /dev/null), each peer as its own native executable, no TLS on any side,
//! all commands of a scenario in turn (A B C … A B C …):
//! 1. 10,000 migrations × 3 environments: table and JSON with the hash cache
//!    filled, table without it, and table with 1 % drifted;
//! 2. 5,000 migrations: `envgate status` over 3 environments (JSON, table,
//!    table without cache) against `dbmate status` and `sqlx migrate info`
//!    over one database each, and the ratios of medians.
//!
//! `--growth`: 100 to 50,000 migrations over 1 and 10 environments.
//!
//! Prints Markdown tables of wall times (median, min, p95) and peak
//! resident memory.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{Stats, measure_all, ms, native_tool};
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

fn envgate_cmd(config: &Path, format: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
    c.args(["status", "--format", format, "-c"]).arg(config);
    c
}

fn row(name: &str, s: &Stats) {
    println!(
        "| {name} | {} | {} | {} | {:.1} MiB |",
        ms(s.median),
        ms(s.min),
        ms(s.p95),
        s.max_rss_mib
    );
}

/// Files are cached once their change time is older than the cache's
/// margin: wait that long after writing them, then run once to fill it.
fn settle(config: &Path) {
    std::thread::sleep(std::time::Duration::from_nanos(
        envgate::core::hash_cache::MARGIN_NS as u64 + 200_000_000,
    ));
    common::run_once(&mut envgate_cmd(config, "table"));
}

/// A copy of `config` in a project where the hash cache cannot exist
/// (`.envgate` is a file): every run reads every migration, as the first
/// run in a fresh checkout (a CI job) does.
fn without_cache(dir: &Path, migrations: &Path, config: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(".envgate"), "").unwrap();
    let text = std::fs::read_to_string(config).unwrap().replacen(
        "migrations = \"migrations\"\n",
        &format!(
            "migrations = \"{}\"\ncontrol_store = \"sqlite://state.db\"\n",
            migrations.display()
        ),
        1,
    );
    let path = dir.join("envgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn main() {
    common::measure_child_mode();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map_or(30, |n| n.parse().expect("--runs N"));
    if args.iter().any(|a| a == "--growth") {
        growth(runs);
        return;
    }

    println!("| scenario | median | min | p95 | peak RSS |");
    println!("|---|---|---|---|---|");

    // 10,000 × 3: clean, 1 % drifted, and without the hash cache.
    {
        let dir = tempfile::tempdir().unwrap();
        let ms10k = write_migrations(&dir.path().join("migrations"), 10_000);
        let clean: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &clean {
            envgate_ledger(db, &ms10k, 0);
        }
        let config = envgate_config(dir.path(), &clean.iter().collect::<Vec<_>>());
        let cold = without_cache(
            &dir.path().join("cold"),
            &dir.path().join("migrations"),
            &config,
        );
        let drifted: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &drifted {
            envgate_ledger(db, &ms10k, 100);
        }
        let drift_dir = dir.path().join("drift");
        std::fs::create_dir_all(&drift_dir).unwrap();
        std::os::unix::fs::symlink(dir.path().join("migrations"), drift_dir.join("migrations"))
            .unwrap();
        let drift_config = envgate_config(&drift_dir, &drifted.iter().collect::<Vec<_>>());
        settle(&config);
        settle(&drift_config);
        let stats = measure_all(
            runs,
            &mut [
                &mut || envgate_cmd(&config, "table"),
                &mut || envgate_cmd(&config, "json"),
                &mut || envgate_cmd(&cold, "table"),
                &mut || envgate_cmd(&drift_config, "table"),
            ],
        );
        row(
            "envgate status, 10,000 migrations × 3 environments, all applied (table)",
            &stats[0],
        );
        row(
            "envgate status, 10,000 migrations × 3 environments, all applied (JSON)",
            &stats[1],
        );
        row(
            "envgate status, 10,000 × 3, no hash cache (a fresh checkout: every file read)",
            &stats[2],
        );
        row("envgate status, 10,000 × 3, 1 % drifted (table)", &stats[3]);
    }

    // 5,000 migrations: envgate over 3 environments against dbmate and
    // sqlx over one database each, all native processes, no TLS anywhere.
    {
        let dbmate = native_tool("dbmate");
        let sqlx = native_tool("sqlx");
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("migrations");
        let ms5k = write_migrations(&migrations, 5_000);
        let dbmate_db = PgDb::create("bench_dbmate");
        let dbmate_url = format!("{}?sslmode=disable", dbmate_db.url());
        let dbmate_cmd = |sub: &str| {
            let mut c = Command::new(&dbmate);
            c.arg("--url")
                .arg(&dbmate_url)
                .arg("--migrations-dir")
                .arg(&migrations)
                .arg("--no-dump-schema")
                .arg(sub);
            c
        };
        let up = dbmate_cmd("up").stdout(Stdio::null()).status().unwrap();
        assert!(up.success(), "dbmate up failed");
        dbmate_db.execute("VACUUM ANALYZE");
        // sqlx runs each whole file (the dbmate markers are comments to it):
        // every table is created and dropped again.
        let sqlx_db = PgDb::create("bench_sqlx");
        let sqlx_url = format!("{}?sslmode=disable", sqlx_db.url());
        let sqlx_cmd = |sub: &str| {
            let mut c = Command::new(&sqlx);
            c.args(["migrate", sub, "--source"])
                .arg(&migrations)
                .args(["--database-url", &sqlx_url]);
            c
        };
        let run = sqlx_cmd("run").stdout(Stdio::null()).status().unwrap();
        assert!(run.success(), "sqlx migrate run failed");
        sqlx_db.execute("VACUUM ANALYZE");
        let envs: Vec<PgDb> = (0..3).map(|_| PgDb::create("bench")).collect();
        for db in &envs {
            envgate_ledger(db, &ms5k, 0);
        }
        let config = envgate_config(dir.path(), &envs.iter().collect::<Vec<_>>());
        let cold = without_cache(&dir.path().join("cold"), &migrations, &config);
        settle(&config);
        let s = measure_all(
            runs,
            &mut [
                &mut || envgate_cmd(&config, "json"),
                &mut || envgate_cmd(&config, "table"),
                &mut || envgate_cmd(&cold, "table"),
                &mut || dbmate_cmd("status"),
                &mut || sqlx_cmd("info"),
            ],
        );
        row(
            "envgate status --format json, 5,000 migrations × 3 environments",
            &s[0],
        );
        row(
            "envgate status (table), 5,000 migrations × 3 environments",
            &s[1],
        );
        row("envgate status (table), 5,000 × 3, no hash cache", &s[2]);
        row(
            "dbmate status, 5,000 migrations × 1 database (native binary)",
            &s[3],
        );
        row("sqlx migrate info, 5,000 migrations × 1 database", &s[4]);
        let ratio = |a: &Stats, b: &Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
        println!(
            "\nratios of medians, envgate over 3 environments / peer over 1:\n\
             - JSON / dbmate {:.2}, table / dbmate {:.2}, table without cache / dbmate {:.2}\n\
             - JSON / sqlx {:.2}, table / sqlx {:.2}, table without cache / sqlx {:.2}",
            ratio(&s[0], &s[3]),
            ratio(&s[1], &s[3]),
            ratio(&s[2], &s[3]),
            ratio(&s[0], &s[4]),
            ratio(&s[1], &s[4]),
            ratio(&s[2], &s[4]),
        );
    }
}

/// How cost grows: migrations × environments, table output, hash cache
/// filled.
fn growth(runs: usize) {
    println!("| migrations | environments | median | p95 | peak RSS |");
    println!("|---|---|---|---|---|");
    for n in [100, 1_000, 10_000, 50_000] {
        let dir = tempfile::tempdir().unwrap();
        let written = write_migrations(&dir.path().join("migrations"), n);
        let dbs: Vec<PgDb> = (0..10).map(|_| PgDb::create("bench_growth")).collect();
        for db in &dbs {
            envgate_ledger(db, &written, 0);
        }
        let one = dir.path().join("one");
        std::fs::create_dir_all(&one).unwrap();
        std::os::unix::fs::symlink(dir.path().join("migrations"), one.join("migrations")).unwrap();
        let one_config = envgate_config(&one, &[&dbs[0]]);
        let ten_config = envgate_config(dir.path(), &dbs.iter().collect::<Vec<_>>());
        settle(&one_config);
        settle(&ten_config);
        let s = measure_all(
            runs,
            &mut [&mut || envgate_cmd(&one_config, "table"), &mut || {
                envgate_cmd(&ten_config, "table")
            }],
        );
        for (envs, st) in [(1, &s[0]), (10, &s[1])] {
            println!(
                "| {n} | {envs} | {} | {} | {:.1} MiB |",
                ms(st.median),
                ms(st.p95),
                st.max_rss_mib
            );
        }
    }
}
