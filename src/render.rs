//! Turning reports into text. Every word envgate shows comes from a template
//! in `templates/` (embedded at build time, strict about undefined values);
//! this module only prepares the views they read.

use crate::core::matrix::{Gap, State};
use crate::report::StatusReport;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The templates, by name.
const TEMPLATES: [(&str, &str); 2] = [
    ("status.txt", include_str!("../templates/status.txt.j2")),
    ("status.md", include_str!("../templates/status.md.j2")),
];

/// A template environment. `color` turns on ANSI colours for `paint`.
fn environment(color: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters"),
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source).expect("templates are valid");
    }
    env.add_filter("pad", pad);
    env.add_filter("md", md_escape);
    env.add_filter("short", short_hash);
    env.add_filter("paint", move |text: String, state: String| {
        paint(color, &text, &state)
    });
    env
}

/// Left-justifies `text` to `width` characters.
fn pad(text: String, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        text
    } else {
        format!("{text}{}", " ".repeat(width - len))
    }
}

/// Escapes text for a Markdown table cell.
fn md_escape(text: String) -> String {
    text.replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short_hash(hash: Option<String>) -> String {
    hash.map_or_else(|| "-".to_owned(), |h| h.chars().take(12).collect())
}

fn paint(color: bool, text: &str, state: &str) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match state {
        "applied" => "32",
        "pending" => "33",
        "drifted" => "1;31",
        "failed" => "31",
        "missing" => "35",
        "unreachable" => "2;31",
        "note" | "absent" => "2",
        "header" => "1",
        _ => return text.to_owned(),
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[derive(Serialize)]
struct EnvView<'a> {
    name: &'a str,
    mode: &'a str,
    mode_source: &'a str,
    reachable: bool,
    width: usize,
    counts: [usize; 5],
}

#[derive(Serialize)]
struct CellView {
    text: &'static str,
    state: &'static str,
    out_of_order: bool,
}

#[derive(Serialize)]
struct RowView {
    label: String,
    cells: Vec<CellView>,
}

#[derive(Serialize)]
struct Finding<'a> {
    label: String,
    env: &'a str,
    file: Option<&'a str>,
    today: Option<&'a str>,
    recorded: Option<&'a str>,
    applied_at: Option<&'a str>,
}

#[derive(Serialize)]
struct StatusView<'a> {
    notes: &'a [String],
    total: usize,
    label_width: usize,
    envs: Vec<EnvView<'a>>,
    count_names: [&'static str; 5],
    rows: Vec<RowView>,
    drifted: Vec<Finding<'a>>,
    failed: Vec<Finding<'a>>,
    missing: Vec<Finding<'a>>,
    unreachable: Vec<(&'a str, &'a str)>,
    gaps: &'a [Gap],
    out_of_order: bool,
}

const COUNT_NAMES: [&str; 5] = ["applied", "pending", "drifted", "failed", "missing"];

fn cell_text(state: State, out_of_order: bool) -> &'static str {
    match (state, out_of_order) {
        (State::Pending, true) => "pending*",
        (State::Absent, _) => "-",
        (s, _) => s.as_str(),
    }
}

fn view<'a>(report: &'a StatusReport, gaps: &'a [Gap], notes: &'a [String]) -> StatusView<'a> {
    let rows: Vec<RowView> = report
        .migrations
        .iter()
        .map(|m| RowView {
            label: format!("{}_{}", m.version, m.name),
            cells: m
                .cells
                .values()
                .map(|c| CellView {
                    text: cell_text(c.state, c.out_of_order),
                    state: c.state.as_str(),
                    out_of_order: c.out_of_order,
                })
                .collect(),
        })
        .collect();
    let label_width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .chain(["migration".len()])
        .max()
        .unwrap_or(0);
    let envs = report
        .environments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let widest_cell = rows
                .iter()
                .map(|r| r.cells[i].text.len())
                .max()
                .unwrap_or(0);
            let c = e.counts;
            EnvView {
                name: &e.name,
                mode: e.mode.as_str(),
                mode_source: match e.mode_source {
                    crate::core::mode::ModeSource::Config => "config",
                    crate::core::mode::ModeSource::Default => "default",
                },
                reachable: e.reachable,
                width: widest_cell
                    .max(e.name.chars().count())
                    .max(e.mode.as_str().len()),
                counts: [c.applied, c.pending, c.drifted, c.failed, c.missing],
            }
        })
        .collect();
    let mut drifted = Vec::new();
    let mut failed = Vec::new();
    let mut missing = Vec::new();
    for (m, row) in report.migrations.iter().zip(&rows) {
        for (env, cell) in &m.cells {
            let finding = || Finding {
                label: row.label.clone(),
                env,
                file: m.file.as_deref(),
                today: m.sha256.as_deref(),
                recorded: cell.applied_sha256.as_deref(),
                applied_at: cell.applied_at.as_deref(),
            };
            match cell.state {
                State::Drifted => drifted.push(finding()),
                State::Failed => failed.push(finding()),
                State::Missing => missing.push(finding()),
                _ => {}
            }
        }
    }
    let unreachable = report
        .environments
        .iter()
        .filter_map(|e| e.error.as_deref().map(|err| (e.name.as_str(), err)))
        .collect();
    StatusView {
        notes,
        total: report
            .migrations
            .iter()
            .filter(|m| m.file.is_some())
            .count(),
        label_width,
        envs,
        count_names: COUNT_NAMES,
        out_of_order: rows.iter().any(|r| r.cells.iter().any(|c| c.out_of_order)),
        rows,
        drifted,
        failed,
        missing,
        unreachable,
        gaps,
    }
}

fn render(name: &str, color: bool, ctx: &impl Serialize) -> String {
    let env = environment(color);
    let text = env
        .get_template(name)
        .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx))))
        .unwrap_or_else(|e| panic!("template {name} failed to render: {e:#}"));
    // Padding leaves trailing spaces on the last column.
    let mut out: String = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// The terminal table.
pub fn status_table(report: &StatusReport, gaps: &[Gap], notes: &[String], color: bool) -> String {
    render("status.txt", color, &view(report, gaps, notes))
}

/// GitHub-flavoured Markdown (PR comments, check runs, step summaries).
pub fn status_markdown(report: &StatusReport, gaps: &[Gap], notes: &[String]) -> String {
    render("status.md", false, &view(report, gaps, notes))
}

/// The JSON contract.
pub fn status_json(report: &StatusReport) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("report serializes");
    s.push('\n');
    s
}
