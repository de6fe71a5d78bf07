//! The pure core on a large project: discovery (hashing included) and the
//! matrix, for 10,000 migrations × 3 environments.
//!
//! ```text
//! cargo bench --bench core
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use envgate::core::checksum::{ContentHash, RecordedHash};
use envgate::core::ledger::LedgerRow;
use envgate::core::matrix::{self, EnvLedger};
use envgate::core::migration::{SourceFile, discover};
use std::hint::black_box;

fn files(n: usize) -> Vec<SourceFile> {
    (0..n)
        .map(|i| SourceFile {
            path: format!("migrations/{:014}_create_bench_t{i}.sql", 20260101000000u64 + i as u64),
            bytes: format!(
                "CREATE TABLE bench_t{i} (\n    id bigint PRIMARY KEY,\n    owner_id bigint NOT NULL,\n    \
                 title text NOT NULL\n);\nCREATE INDEX bench_t{i}_owner_idx ON bench_t{i} (owner_id);\n"
            )
            .into_bytes(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let input = files(10_000);
    c.bench_function("discover 10,000 files", |b| {
        b.iter_batched(
            || input.clone(),
            |f| black_box(discover(f).unwrap()),
            criterion::BatchSize::LargeInput,
        )
    });
    let migrations = discover(input).unwrap().migrations;
    let ledger: Vec<LedgerRow> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| LedgerRow {
            via: None,
            version: m.id().to_owned(),
            name: m.name.clone(),
            hash: RecordedHash::Sha256Lf(if i % 100 == 0 {
                ContentHash::of(b"old")
            } else {
                m.up.hash
            }),
            applied_at: Some("2026-04-18T10:00:00.000Z".to_owned()),
            success: true,
            error: None,
        })
        .collect();
    let envs = [
        EnvLedger::new("dev", Ok(&ledger)),
        EnvLedger::new("staging", Ok(&ledger)),
        EnvLedger::new("prod", Ok(&ledger)),
    ];
    c.bench_function("matrix 10,000 × 3", |b| {
        b.iter(|| black_box(matrix::compute(&migrations, &envs)))
    });
    let bytes: Vec<u8> = (0..1_000_000)
        .map(|i| if i % 40 == 39 { b'\n' } else { b'x' })
        .collect();
    c.bench_function("hash 1 MB", |b| {
        b.iter(|| black_box(ContentHash::of(&bytes)))
    });

    // The matrix page (`status --format html`, `matrix.html`) for 1,000
    // migrations × 3 environments: render time, and its weight printed once.
    let config = envgate::config::parse(
        std::path::Path::new("envgate.toml"),
        "[environments.dev]\nurl = \"sqlite://dev.db\"\n[environments.staging]\nurl = \"sqlite://s.db\"\n\
         [environments.prod]\nurl = \"sqlite://p.db\"\n",
    )
    .unwrap();
    let cfgs: Vec<&envgate::config::EnvConfig> = config.environments.iter().collect();
    let thousand = &migrations[..1_000];
    let page_envs = [
        EnvLedger::new("dev", Ok(&ledger[..1_000])),
        EnvLedger::new("staging", Ok(&ledger[..900])),
        EnvLedger::new("prod", Ok(&ledger[..800])),
    ];
    let m = matrix::compute(thousand, &page_envs);
    let page = envgate::render::status_html(&cfgs, &m, "envgate status · bench");
    eprintln!(
        "matrix page, 1,000 migrations × 3 environments: {} bytes ({:.1} KiB)",
        page.len(),
        page.len() as f64 / 1024.0
    );
    c.bench_function("matrix page 1,000 × 3 (html)", |b| {
        b.iter(|| {
            black_box(envgate::render::status_html(
                &cfgs,
                &m,
                "envgate status · bench",
            ))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
