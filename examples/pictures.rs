//! What the bot posts for a pull request, as JSON on stdout: the sticky
//! comment's body and the `envgate` check run's output. It runs the bot's
//! own review job (`jobs::review::run`) on a project directory, with a pull
//! request that adds the files given, recording what the job hands to the
//! forge instead of sending it. `scripts/pictures.sh` draws the pictures
//! in docs/pictures/ from it.
//!
//! ```text
//! cargo run --example pictures -- DIR/envgate.toml SHA ADDED_PATH...
//! ```

use envgate::core::identity::{Actor, Source};
use envgate::forge::{ApiError, Note, Thread};
use envgate::jobs::review::{self, Checks, Request, Summary, Unread};
use envgate::ops::memory::Memory;
use envgate::ops::world::Local;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;

/// The bot's account, as GitHub shows it.
const BOT: &str = "envgate[bot]";

/// A pull request with no comments yet, adding `added`; keeps what the
/// job posts.
struct Pull {
    added: HashSet<String>,
    posted: RefCell<Vec<String>>,
}

impl Thread for Pull {
    async fn notes(&self) -> Result<Vec<Note>, ApiError> {
        Ok(Vec::new())
    }
    async fn post(&self, body: &str) -> Result<(), ApiError> {
        self.posted.borrow_mut().push(body.to_owned());
        Ok(())
    }
    async fn edit(&self, _: u64, body: &str) -> Result<(), ApiError> {
        self.post(body).await
    }
    async fn head(&self) -> Result<Option<String>, ApiError> {
        Ok(None)
    }
    async fn added(&self) -> Result<HashSet<String>, ApiError> {
        Ok(self.added.clone())
    }
}

/// The check run's output, composed as `jobs::github::CheckRun::finished`
/// sends it to GitHub.
#[derive(Default)]
struct CheckRun {
    output: RefCell<Option<Value>>,
}

impl Checks for CheckRun {
    async fn started(&self) -> Result<(), ApiError> {
        Ok(())
    }
    async fn finished(&self, summary: &Summary) -> Result<(), ApiError> {
        let markdown = summary.check_markdown();
        *self.output.borrow_mut() = Some(json!({
            "name": "envgate",
            "conclusion": summary.conclusion.as_str(),
            "output": {
                "title": summary.title,
                "summary": markdown,
                "annotations": summary.annotations,
            },
        }));
        Ok(())
    }
    async fn failed(&self, why: &Unread) -> Result<(), ApiError> {
        panic!("the matrix could not be read: {why:?}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, sha, added @ ..] = args.as_slice() else {
        eprintln!("usage: pictures DIR/envgate.toml SHA ADDED_PATH...");
        std::process::exit(2);
    };
    let config = envgate::config::load(Path::new(config)).unwrap_or_else(|e| {
        eprintln!("{config}: {e}");
        std::process::exit(2);
    });
    let memory = Memory::open(&config, Actor::new(BOT, Source::GitHub), false)
        .await
        .unwrap_or_else(|f| panic!("control store: {}", f.message));
    let pull = Pull {
        added: added.iter().cloned().collect(),
        posted: RefCell::new(Vec::new()),
    };
    let checks = CheckRun::default();
    let request = Request {
        thread: Some(&pull),
        key: None,
        skip: None,
        mode: None,
    };
    let reviewed = review::run(
        &config,
        &memory,
        &Local,
        &checks,
        sha,
        Some(request),
        BOT,
        |_, _| (),
    )
    .await
    .unwrap_or_else(|e| panic!("review: {e}"));
    for w in &reviewed.warnings {
        eprintln!("warning: {w}");
    }
    let comment = pull.posted.borrow().last().cloned().expect("a comment");
    let out = json!({
        "bot": BOT,
        "sha": sha,
        "comment": comment,
        "check_run": checks.output.borrow().clone().expect("a check run"),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
