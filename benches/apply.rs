//! Applying 1,000 small migrations to an empty PostgreSQL database:
//! `envgate apply` side by side with `sqlx migrate run` and `dbmate up` on
//! the same statements in their own layouts; and `envgate export` of 1,000
//! pending migrations.
//!
//! ```text
//! scripts/bench-deps.sh            # dbmate (npm) and sqlx-cli under target/bench-tools
//! cargo bench --bench apply        # [-- --runs N]
//! ```
//!
//! Every run gets a fresh database (created and dropped outside the timed
//! part); the three tools take turns within each round.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{Sample, measure, ms, run_once, stats};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::PgDb;

const N: usize = 1_000;

fn version(i: usize) -> String {
    format!("{}", 20260101000000u64 + i as u64)
}

fn statement(i: usize) -> String {
    format!(
        "CREATE TABLE bench_t{i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n"
    )
}

/// envgate's and sqlx's layout (the same file names work for both), and
/// dbmate's (with its up/down markers).
fn write_layouts(root: &Path) -> (PathBuf, PathBuf) {
    let plain = root.join("migrations");
    let dbmate = root.join("dbmate");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&dbmate).unwrap();
    for i in 0..N {
        let name = format!("{}_create_bench_t{i}.sql", version(i));
        std::fs::write(plain.join(&name), statement(i)).unwrap();
        std::fs::write(
            dbmate.join(&name),
            format!(
                "-- migrate:up\n{}\n-- migrate:down\nDROP TABLE bench_t{i};\n",
                statement(i)
            ),
        )
        .unwrap();
    }
    (plain, dbmate)
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
        .map_or(5, |n| n.parse().expect("--runs N"));
    let dir = tempfile::tempdir().unwrap();
    let (plain, dbmate_dir) = write_layouts(dir.path());
    let config = dir.path().join("envgate.toml");
    std::fs::write(
        &config,
        "[environments.dev]\nurl = \"${BENCH_DATABASE_URL}\"\nmode = \"managed\"\n",
    )
    .unwrap();
    let (sqlx, dbmate) = (common::native_tool("sqlx"), common::native_tool("dbmate"));

    let envgate_cmd = |url: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
        c.args(["apply", "--env", "dev", "-c"])
            .arg(&config)
            .env("BENCH_DATABASE_URL", url);
        c
    };
    let sqlx_cmd = |url: &str| {
        let mut c = Command::new(&sqlx);
        c.args(["migrate", "run", "--source"])
            .arg(&plain)
            .args(["--database-url", url]);
        c
    };
    let dbmate_cmd = |url: &str| {
        let mut c = Command::new(&dbmate);
        c.args(["--url", url, "--migrations-dir"])
            .arg(&dbmate_dir)
            .args(["--no-dump-schema", "up"]);
        c
    };
    type Make<'a> = &'a dyn Fn(&str) -> Command;
    let tools: [(&str, Make); 3] = [
        ("envgate apply", &envgate_cmd),
        ("sqlx migrate run", &sqlx_cmd),
        ("dbmate up", &dbmate_cmd),
    ];
    let once = |make: Make| {
        let db = PgDb::create("bench_apply");
        let url = format!("{}?sslmode=disable", db.url());
        let sample = run_once(&mut make(&url));
        let applied =
            db.query_strings("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_t%'");
        assert_eq!(
            applied[0][0].as_deref(),
            Some(N.to_string().as_str()),
            "not every migration was applied"
        );
        sample
    };
    // One warm-up round, then `runs` rounds with the tools taking turns.
    for (_, make) in &tools {
        once(*make);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (k, (_, make)) in tools.iter().enumerate() {
            samples[k].push(once(*make));
        }
    }
    println!("| apply {N} migrations to an empty database | median | min | p95 | peak RSS |");
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for ((name, _), s) in tools.iter().zip(samples) {
        let st = stats(s);
        println!(
            "| {name} | {} | {} | {} | {:.1} MiB |",
            ms(st.median),
            ms(st.min),
            ms(st.p95),
            st.max_rss_mib
        );
        medians.push(st.median.as_secs_f64());
    }
    let fastest_peer = medians[1].min(medians[2]);
    println!(
        "\nratio envgate / faster of sqlx and dbmate, medians: {:.2} (sqlx {:.2}, dbmate {:.2})",
        medians[0] / fastest_peer,
        medians[0] / medians[1],
        medians[0] / medians[2]
    );

    // Export of 1,000 pending migrations (nothing applied yet).
    let db = PgDb::create("bench_export");
    let out = dir.path().join("bundles");
    let export_config = dir.path().join("export.toml");
    std::fs::write(
        &export_config,
        format!(
            "[environments.prod]\nurl = \"{}?sslmode=disable\"\n",
            db.url()
        ),
    )
    .unwrap();
    let s = measure(20, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
        c.args(["export", "--env", "prod", "--out"])
            .arg(&out)
            .arg("-c")
            .arg(&export_config);
        c
    });
    println!(
        "\n| export {N} pending migrations | median | min | p95 | peak RSS |\n|---|---|---|---|---|"
    );
    println!(
        "| envgate export | {} | {} | {} | {:.1} MiB |",
        ms(s.median),
        ms(s.min),
        ms(s.p95),
        s.max_rss_mib
    );
}
