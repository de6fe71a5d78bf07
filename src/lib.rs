//! envgate: one migration pipeline, many targets.
//!
//! Four floors, each importing only those below it (a test says so):
//!
//! - [`core`]: pure — discovery, hashing, the matrix, plans, bundles,
//!   policy decisions, chat-ops grammar. Values in, values out.
//! - Edges: [`db`] (database sessions), [`ledger`] (reading ledgers),
//!   [`apply`] (the apply loop over a write session), [`control`] and
//!   [`queue`] (the control store), [`git`], [`forge`] (GitHub and GitLab
//!   clients), [`config`], [`render`] and [`report`] (text and JSON),
//!   [`secrets`] (the one door text leaves through), [`metrics`].
//! - Use cases: [`ops`] (observe, plan, export, promote, roll back, the
//!   write gate) and [`jobs`] (what a forge event asks: the matrix of a
//!   commit, a release tag's bundles, a chat-ops command).
//! - Surfaces: [`cli`] (the command line and `envgate ci`) and [`serve`]
//!   (the webhook bot). They find out where they run, call a use case, and
//!   show its answer.
//!
//! `docs/ARCHITECTURE.md` walks a webhook and a command through them.

pub mod apply;
pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod db;
pub mod forge;
pub mod git;
pub mod jobs;
pub mod ledger;
pub mod metrics;
pub mod ops;
pub mod queue;
pub mod render;
pub mod report;
pub mod secrets;
pub mod serve;

#[cfg(test)]
mod layers {
    //! Floors run one way: the core imports nothing of envgate's; the
    //! edges (databases, ledgers, the control store, the queue, git, the
    //! forge clients, configuration, rendering, secrets, metrics, the apply
    //! loop) never import a use case or a surface; the use cases (`ops`,
    //! `jobs`) never import a surface (`cli`, `serve`, a console).

    const SURFACES: [&str; 3] = ["cli", "serve", "console"];
    const USE_CASES: [&str; 2] = ["ops", "jobs"];

    /// The envgate modules a file refers to (`crate::x::…`).
    fn imports(code: &str) -> Vec<String> {
        code.split("crate::")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn lower_layers_never_import_what_is_above_them() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src.clone()];
        let mut checked = 0;
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
                let rel = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let top = rel.split(['/', '.']).next().unwrap_or_default().to_owned();
                if matches!(top.as_str(), "lib" | "main") || SURFACES.contains(&top.as_str()) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                let forbidden: Vec<&str> = if USE_CASES.contains(&top.as_str()) {
                    SURFACES.to_vec()
                } else {
                    SURFACES.iter().chain(&USE_CASES).copied().collect()
                };
                for m in imports(code) {
                    assert!(
                        !forbidden.contains(&m.as_str()),
                        "src/{rel} imports crate::{m}: a lower layer must not reach up"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 50);
    }
}
