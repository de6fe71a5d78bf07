//! MariaDB side by side with dbmate (its native binary), over the same
//! server and settings (no TLS on either side):
//! 1. `envgate status` over 3 environments × 5,000 migrations against
//!    `dbmate status` over one database of the same 5,000;
//! 2. applying 1,000 migrations to an empty database: `envgate apply`
//!    against `dbmate up`, a fresh database each run.
//!
//! ```text
//! scripts/bench-deps.sh            # dbmate (npm, its native binary) under target/bench-tools
//! cargo bench --bench mysql        # [-- --runs N]  (MYSQL_URL, else 127.0.0.1:3306)
//! ```

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{Sample, measure_all, ms, native_tool, run_once, stats};
use envgate::core::checksum::ContentHash;
use envgate::core::ledger_table::create_table_sql;
use envgate::core::sql::Dialect;
use std::path::Path;
use std::process::{Command, Stdio};
use support::mysql::{MyDb, run_as};

fn version(i: usize) -> String {
    format!("{}", 20260101000000u64 + i as u64)
}

/// A small migration in dbmate's layout (envgate reads the same file).
fn body(i: usize) -> String {
    format!(
        "-- migrate:up\nCREATE TABLE bench_t{i} (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text NOT NULL, \
         created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\n-- migrate:down\nDROP TABLE bench_t{i};\n"
    )
}

fn write(dir: &Path, n: usize) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let file = format!("{}_create_bench_t{i}.sql", version(i));
            std::fs::write(dir.join(&file), body(i)).unwrap();
            (version(i), body(i))
        })
        .collect()
}

/// An envgate ledger on `db` with every migration applied.
fn ledger(db: &MyDb, ms: &[(String, String)]) {
    db.execute(&create_table_sql(Dialect::Mysql, None));
    for chunk in ms.chunks(1_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(v, b)| {
                format!(
                    "('{v}', 'create_bench', '{}', 'bench', 3, 1)",
                    ContentHash::of(b.as_bytes()).tagged()
                )
            })
            .collect();
        db.execute(&format!(
            "INSERT INTO envgate_migrations (version, name, sha256, applied_by, execution_ms, success) VALUES {}",
            values.join(", ")
        ));
    }
    db.execute("ANALYZE TABLE envgate_migrations");
}

fn url(db: &MyDb) -> String {
    format!("{}?ssl-mode=DISABLED", db.url())
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

fn main() {
    common::measure_child_mode();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runs = common::arg("--runs", 20) as usize;
    let dbmate = native_tool("dbmate");
    run_as(None, "", "SELECT 1").expect("MariaDB at MYSQL_URL or 127.0.0.1:3306");

    // 1. status.
    {
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("migrations");
        let ms = write(&migrations, 5_000);
        let peer = MyDb::create("bench_my_dbmate");
        let dbmate_cmd = |sub: &str| {
            let mut c = Command::new(&dbmate);
            c.arg("--url")
                .arg(url(&peer).replace("?ssl-mode=DISABLED", ""))
                .arg("--migrations-dir")
                .arg(&migrations)
                .arg("--no-dump-schema")
                .arg(sub);
            c
        };
        let up = dbmate_cmd("up").stdout(Stdio::null()).status().unwrap();
        assert!(up.success(), "dbmate up failed");
        let envs: Vec<MyDb> = (0..3).map(|_| MyDb::create("bench_my")).collect();
        let mut config = String::from("migrations = \"migrations\"\n");
        for (i, db) in envs.iter().enumerate() {
            ledger(db, &ms);
            config.push_str(&format!(
                "\n[environments.env{i}]\nurl = \"{}\"\nmode = \"export_only\"\n",
                url(db)
            ));
        }
        let config_path = dir.path().join("envgate.toml");
        std::fs::write(&config_path, config).unwrap();
        let envgate_cmd = |format: &str| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
            c.args(["status", "--format", format, "-c"])
                .arg(&config_path);
            c
        };
        // Fill the hash cache once its margin has passed.
        std::thread::sleep(std::time::Duration::from_nanos(
            envgate::core::hash_cache::MARGIN_NS as u64 + 200_000_000,
        ));
        run_once(&mut envgate_cmd("table"));
        let s = measure_all(
            runs,
            &mut [
                &mut || envgate_cmd("json"),
                &mut || envgate_cmd("table"),
                &mut || dbmate_cmd("status"),
            ],
        );
        println!("| MariaDB, status | median | min | p95 | peak RSS |");
        println!("|---|---|---|---|---|");
        row(
            "envgate status --format json, 5,000 migrations × 3 environments",
            &s[0],
        );
        row(
            "envgate status (table), 5,000 migrations × 3 environments",
            &s[1],
        );
        row(
            "dbmate status, 5,000 migrations × 1 database (native binary)",
            &s[2],
        );
        let r =
            |a: &common::Stats, b: &common::Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
        println!(
            "\nratios of medians, envgate over 3 environments / dbmate over 1: JSON {:.2}, table {:.2}\n",
            r(&s[0], &s[2]),
            r(&s[1], &s[2])
        );
    }

    // 2. apply 1,000 migrations to an empty database.
    {
        const N: usize = 1_000;
        let apply_runs = common::arg("--apply-runs", 5) as usize;
        let dir = tempfile::tempdir().unwrap();
        // envgate runs a whole file (dbmate's markers are comments to it):
        // its layout holds the up part alone, dbmate's the same with markers.
        let migrations = dir.path().join("dbmate");
        write(&migrations, N);
        let plain = dir.path().join("migrations");
        std::fs::create_dir_all(&plain).unwrap();
        for i in 0..N {
            std::fs::write(
                plain.join(format!("{}_create_bench_t{i}.sql", version(i))),
                body(i).split("-- migrate:down").next().unwrap(),
            )
            .unwrap();
        }
        let config = dir.path().join("envgate.toml");
        std::fs::write(
            &config,
            "[environments.dev]\nurl = \"${BENCH_MYSQL_URL}\"\nmode = \"managed\"\n",
        )
        .unwrap();
        let envgate_cmd = |u: &str| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
            c.args(["apply", "--env", "dev", "-c"])
                .arg(&config)
                .env("BENCH_MYSQL_URL", u);
            c
        };
        let dbmate_cmd = |u: &str| {
            let mut c = Command::new(&dbmate);
            c.args([
                "--url",
                &u.replace("?ssl-mode=DISABLED", ""),
                "--migrations-dir",
            ])
            .arg(&migrations)
            .args(["--no-dump-schema", "up"]);
            c
        };
        type Make<'a> = &'a dyn Fn(&str) -> Command;
        let tools: [(&str, Make); 2] =
            [("envgate apply", &envgate_cmd), ("dbmate up", &dbmate_cmd)];
        let once = |make: Make| -> Sample {
            let db = MyDb::create("bench_my_apply");
            let sample = run_once(&mut make(&url(&db)));
            let n = db.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'bench_t%'");
            assert_eq!(n[0][0], N.to_string(), "not every migration was applied");
            sample
        };
        for (_, make) in &tools {
            once(*make);
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
        for _ in 0..apply_runs {
            for (k, (_, make)) in tools.iter().enumerate() {
                samples[k].push(once(*make));
            }
        }
        println!(
            "| MariaDB, apply {N} migrations to an empty database | median | min | p95 | peak RSS |"
        );
        println!("|---|---|---|---|---|");
        let mut medians = Vec::new();
        for ((name, _), s) in tools.iter().zip(samples) {
            let st = stats(s);
            row(name, &st);
            medians.push(st.median.as_secs_f64());
        }
        println!(
            "\nratio envgate / dbmate, medians: {:.2}",
            medians[0] / medians[1]
        );
    }
}
