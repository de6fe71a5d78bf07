//! `envgate status` over other tools' ledgers of 5,000 migrations, with
//! every checksum recomputed from the files: Flyway (CRC-32) and sqlx
//! (SHA-384), side by side with `sqlx migrate info` on the same database.
//!
//! ```text
//! scripts/bench-deps.sh            # sqlx-cli under target/bench-tools
//! cargo bench --bench tools        # [-- --runs N]
//! ```

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{measure, measure_pair, ms};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::PgDb;

const N: usize = 5_000;

fn body(i: usize) -> String {
    format!(
        "CREATE TABLE bench_t{i} (\n    id bigint PRIMARY KEY,\n    owner_id bigint NOT NULL,\n    title text NOT NULL\n);\n\
         CREATE INDEX bench_t{i}_owner_idx ON bench_t{i} (owner_id);\n"
    )
}

fn envgate(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
    c.args(["status", "-c"]).arg(config);
    c
}

fn flyway(dir: &Path) -> (PathBuf, PgDb) {
    let migrations = dir.join("flyway/db/migration");
    std::fs::create_dir_all(&migrations).unwrap();
    let db = PgDb::create("bench_flyway");
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE \"flyway_schema_history\" (\"installed_rank\" INT NOT NULL PRIMARY KEY, \"version\" VARCHAR(50), \
             \"description\" VARCHAR(200) NOT NULL, \"type\" VARCHAR(20) NOT NULL, \"script\" VARCHAR(1000) NOT NULL, \
             \"checksum\" INTEGER, \"installed_by\" VARCHAR(100) NOT NULL, \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(), \
             \"execution_time\" INTEGER NOT NULL, \"success\" BOOLEAN NOT NULL)",
        )
        .unwrap();
    let mut copy = client
        .copy_in("COPY flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) FROM STDIN")
        .unwrap();
    for i in 1..=N {
        let (file, text) = (format!("V{i}__create_bench_t{i}.sql"), body(i));
        std::fs::write(migrations.join(&file), &text).unwrap();
        let crc = envgate::core::tools::flyway::checksum(text.as_bytes()).unwrap();
        writeln!(
            copy,
            "{i}\t{i}\tcreate bench t{i}\tSQL\t{file}\t{crc}\tbench\t3\tt"
        )
        .unwrap();
    }
    copy.finish().unwrap();
    client
        .batch_execute("VACUUM ANALYZE flyway_schema_history")
        .unwrap();
    let config = dir.join("flyway/envgate.toml");
    std::fs::write(
        &config,
        format!(
            "format = \"flyway\"\n[environments.prod]\nurl = \"{}?sslmode=disable\"\n",
            db.url()
        ),
    )
    .unwrap();
    (config, db)
}

fn sqlx(dir: &Path) -> (PathBuf, PathBuf, PgDb) {
    let migrations = dir.join("sqlx/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let db = PgDb::create("bench_sqlx");
    let mut client = db.client();
    // The table exactly as sqlx creates it on PostgreSQL.
    client
        .batch_execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, \
             execution_time BIGINT NOT NULL)",
        )
        .unwrap();
    let mut copy = client
        .copy_in("COPY _sqlx_migrations (version, description, success, checksum, execution_time) FROM STDIN")
        .unwrap();
    for i in 1..=N {
        let version = 20260101000000u64 + i as u64;
        let text = body(i);
        std::fs::write(
            migrations.join(format!("{version}_create_bench_t{i}.sql")),
            &text,
        )
        .unwrap();
        let sum = envgate::core::tools::sqlx::checksum(text.as_bytes());
        writeln!(copy, "{version}\tcreate bench t{i}\tt\t\\\\x{sum}\t1000").unwrap();
    }
    copy.finish().unwrap();
    client
        .batch_execute("VACUUM ANALYZE _sqlx_migrations")
        .unwrap();
    let config = dir.join("sqlx/envgate.toml");
    std::fs::write(
        &config,
        format!(
            "format = \"sqlx\"\n[environments.prod]\nurl = \"{}?sslmode=disable\"\n",
            db.url()
        ),
    )
    .unwrap();
    (config, migrations, db)
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
    let dir = tempfile::tempdir().unwrap();
    let (flyway_config, _flyway_db) = flyway(dir.path());
    let (sqlx_config, sqlx_migrations, sqlx_db) = sqlx(dir.path());
    let sqlx = common::native_tool("sqlx");
    let url = format!("{}?sslmode=disable", sqlx_db.url());
    // Both agree that everything is applied.
    let info = Command::new(&sqlx)
        .args(["migrate", "info", "--source"])
        .arg(&sqlx_migrations)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert_eq!(
        info.lines().filter(|l| l.contains("/installed ")).count(),
        N,
        "sqlx sees every migration installed"
    );
    let ours = envgate(&sqlx_config)
        .arg("--check")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ours.success(), "envgate sees every migration applied");

    println!("| {N} migrations, checksums recomputed | median | min | p95 | peak RSS |");
    println!("|---|---|---|---|---|");
    let f = measure(runs, || envgate(&flyway_config));
    println!(
        "| envgate status, Flyway ledger | {} | {} | {} | {:.1} MiB |",
        ms(f.median),
        ms(f.min),
        ms(f.p95),
        f.max_rss_mib
    );
    let (e, s) = measure_pair(
        runs,
        || envgate(&sqlx_config),
        || {
            let mut c = Command::new(&sqlx);
            c.args(["migrate", "info", "--source"])
                .arg(&sqlx_migrations)
                .args(["--database-url", &url]);
            c
        },
    );
    println!(
        "| envgate status, sqlx ledger | {} | {} | {} | {:.1} MiB |",
        ms(e.median),
        ms(e.min),
        ms(e.p95),
        e.max_rss_mib
    );
    println!(
        "| sqlx migrate info (same database) | {} | {} | {} | {:.1} MiB |",
        ms(s.median),
        ms(s.min),
        ms(s.p95),
        s.max_rss_mib
    );
    println!(
        "\nratio envgate / sqlx migrate info, medians: {:.2}",
        e.median.as_secs_f64() / s.median.as_secs_f64()
    );
}
