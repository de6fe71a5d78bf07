//! Debian's chromium, driven headless by playwright-core
//! (`tests/browser/page.mjs`), for the browser tests.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn tools() -> PathBuf {
    let dir = std::env::var_os("ENVGATE_BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-tools"));
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/axe-core").is_dir(),
        "playwright-core and axe-core are not installed under {}: run scripts/test.sh (it installs them and \
         Debian's chromium), or `npm install --prefix {0}` with tests/browser/package.json",
        dir.display()
    );
    dir
}

/// Opens `url` in chromium; the page's report.
pub fn open(url: &str, extra: &[&str]) -> Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (scripts/test.sh does)"
    );
    let out = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page.mjs"))
        .arg(url)
        .args(extra)
        .env("ENVGATE_BROWSER_TOOLS", tools())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs (install nodejs)");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

pub fn serious(report: &Value) -> Vec<Value> {
    report["axe"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .cloned()
        .collect()
}
