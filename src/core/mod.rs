//! The pure core: no I/O, no clock, no environment variables. Everything here
//! takes values and returns values, so the CLI, the bot and the tests share it.

pub mod audit;
pub mod bundle;
pub mod bundle_mysql;
pub mod chatops;
pub mod check;
pub mod checksum;
pub mod ci;
pub mod client;
pub mod exported;
pub mod hash_cache;
pub mod identity;
pub mod layout;
pub mod ledger;
pub mod ledger_table;
pub mod lint;
pub mod loosening;
pub mod matrix;
pub mod migration;
pub mod mode;
pub mod plan;
pub mod policy;
pub mod promotion;
pub mod publication;
pub mod redact;
pub mod release;
pub mod schema;
pub mod schema_catalog;
pub mod schema_drift;
pub mod session;
pub mod sql;
pub mod text;
pub mod tools;
pub mod version;
pub mod webhook;

#[cfg(test)]
mod purity {
    /// The core must stay free of I/O: no async runtime, database driver,
    /// HTTP or file system.
    #[test]
    fn core_does_no_io() {
        let forbidden = [
            "tokio",
            "tokio_postgres",
            "rusqlite",
            "axum",
            "octocrab",
            "reqwest",
            "std::fs",
            "std::env",
            "std::net",
            "std::process",
            "SystemTime",
            "Instant::now",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
        let mut checked = 0;
        // Every file, in subfolders too (core/tools/).
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Only the code before the tests: tests may read files.
                let code = text.split("#[cfg(test)]").next().unwrap();
                for word in forbidden {
                    assert!(!code.contains(word), "{} uses {word}", path.display());
                }
                // Nothing outside the core either.
                for line in code.lines().filter(|l| l.contains("crate::")) {
                    let rest = line.split("crate::").nth(1).unwrap_or("");
                    assert!(
                        rest.starts_with("core"),
                        "{} reaches out of the core: {}",
                        path.display(),
                        line.trim()
                    );
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 30,
            "expected the core modules in {}",
            dir.display()
        );
    }
}
