//! What a pull or merge request is shown, the same from the bot and from
//! `envgate ci`: the check's conclusion, title, Markdown matrix and
//! annotations, and the sticky comment (the request's own migrations,
//! where they stand, and the bundle the first export_only environment
//! would receive).

use super::memory::Remembered;
use super::world::World;
use crate::core::check::{self, Conclusion};
use crate::core::matrix::Matrix;
use crate::core::mode::Mode;
use crate::core::plan::{self, Direction, PlanInput};
use crate::render;
use serde::Serialize;
use std::collections::HashSet;

/// The hidden marker that finds envgate's comment on a pull or merge
/// request.
pub const PR_MARKER: &str = "<!-- envgate:pr -->";
/// GitHub's limit on a comment body and a check run's summary (GitLab's
/// is larger).
pub const BODY_LIMIT: usize = 65_000;

/// A matrix, summed up for a check run or a commit status.
pub struct Summary {
    pub conclusion: Conclusion,
    pub title: String,
    /// The matrix in Markdown, credentials masked.
    pub markdown: String,
    pub annotations: Vec<check::Annotation>,
}

pub fn summary(world: &World<'_>, m: &Matrix<'_>) -> Summary {
    let notes = crate::config::mode_notes(&world.envs);
    Summary {
        conclusion: check::conclusion(m),
        title: check::title(m),
        markdown: crate::secrets::scrubbed(&render::status_markdown(&world.envs, m, &notes)),
        annotations: check::annotations(m),
    }
}

#[derive(Serialize)]
struct EnvView<'a> {
    name: &'a str,
    mode: Mode,
}

#[derive(Serialize)]
struct NewRow {
    label: String,
    states: Vec<&'static str>,
}

#[derive(Serialize)]
struct Preview {
    env: String,
    file: String,
    sql: String,
    fence: String,
}

#[derive(Serialize)]
struct View<'a> {
    marker: &'a str,
    title: String,
    sha: &'a str,
    envs: Vec<EnvView<'a>>,
    new: Vec<NewRow>,
    preview: Option<Preview>,
    preview_note: Option<String>,
    matrix: String,
}

/// The sticky comment's body. `added` holds the paths the request adds;
/// `actor` is who the preview bundle would be built by.
pub fn pr_comment(
    world: &World<'_>,
    m: &Matrix<'_>,
    remembered: &Remembered,
    added: &HashSet<String>,
    sha: &str,
    actor: &str,
) -> String {
    let s = summary(world, m);
    let ids: HashSet<String> = world
        .discovery
        .migrations
        .iter()
        .filter(|x| added.contains(&x.up.path))
        .map(|x| x.id().to_owned())
        .collect();
    let new: Vec<NewRow> = m
        .rows
        .iter()
        .enumerate()
        .filter(|(_, row)| ids.contains(row.version))
        .map(|(i, row)| NewRow {
            label: format!("{}_{}", row.version, row.name),
            states: m.cells(i).iter().map(|c| c.state.as_str()).collect(),
        })
        .collect();
    let (mut preview, mut preview_note) = (None, None);
    if let Some(e) = world
        .envs
        .iter()
        .position(|env| env.mode == Mode::ExportOnly)
        && !ids.is_empty()
    {
        let env = world.envs[e];
        match (&world.ledgers[e], &world.targets[e]) {
            (Ok(ledger), Ok(target)) => {
                let dialect = super::environments::dialect(target);
                let p = plan::plan(&PlanInput {
                    env: &env.name,
                    mode: env.mode,
                    dialect,
                    migrations: &world.discovery.migrations,
                    ledger,
                    stop_at: None,
                    allow_drift: true,
                    only: Some(&ids),
                    accepted: remembered.accepted[e].as_ref(),
                });
                if let Ok(p) = p
                    && !p.steps.is_empty()
                {
                    let b = super::export::build(env, &p, Direction::Up, dialect, None, actor);
                    let sql = fit(&crate::secrets::scrubbed(&b.sql), BODY_LIMIT / 2);
                    preview = Some(Preview {
                        env: env.name.clone(),
                        file: format!("{}.sql", b.stem),
                        fence: fence_for(&sql),
                        sql,
                    });
                }
            }
            (Err(err), _) => {
                preview_note = Some(format!(
                    "No bundle preview: {} could not be read ({err}).",
                    env.name
                ));
            }
            _ => {}
        }
    }
    let body = render::pr_comment(&View {
        marker: PR_MARKER,
        title: s.title,
        sha,
        envs: world
            .envs
            .iter()
            .map(|e| EnvView {
                name: &e.name,
                mode: e.mode,
            })
            .collect(),
        new,
        preview,
        preview_note,
        matrix: fit(&s.markdown, BODY_LIMIT / 2),
    });
    crate::secrets::scrubbed(&fit(&body, BODY_LIMIT))
}

/// A code fence longer than any run of backticks in `text`.
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Cuts text to at most `limit` bytes at a line boundary, saying so.
pub fn fit(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let note = "\n\n… (cut: too long to show here; `envgate status` shows all of it)\n";
    let mut end = limit.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    format!("{}{note}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_fitting() {
        assert_eq!(fence_for("SELECT 1"), "```");
        assert_eq!(fence_for("-- ```` four"), "`````");
        let long = "line\n".repeat(1000);
        let cut = fit(&long, 200);
        assert!(cut.len() <= 200, "{}", cut.len());
        assert!(cut.ends_with("shows all of it)\n"));
        assert_eq!(fit("short", 200), "short");
    }
}
