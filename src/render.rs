//! Turning reports into text. Every word envgate shows comes from a template
//! in `templates/` (embedded at build time, strict about undefined values);
//! this module only prepares the views they read.

use crate::config::EnvConfig;
use crate::core::matrix::{Cell, Gap, Matrix, State};
use crate::core::mode::ModeSource;
use crate::report;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The templates, by name.
const TEMPLATES: [(&str, &str); 12] = [
    (
        "pr_comment.md",
        include_str!("../templates/pr_comment.md.j2"),
    ),
    (
        "release_section.md",
        include_str!("../templates/release_section.md.j2"),
    ),
    ("releases.txt", include_str!("../templates/releases.txt.j2")),
    ("release.txt", include_str!("../templates/release.txt.j2")),
    ("audit.txt", include_str!("../templates/audit.txt.j2")),
    ("status.txt", include_str!("../templates/status.txt.j2")),
    ("status.md", include_str!("../templates/status.md.j2")),
    ("plan.txt", include_str!("../templates/plan.txt.j2")),
    ("apply.txt", include_str!("../templates/apply.txt.j2")),
    ("export.txt", include_str!("../templates/export.txt.j2")),
    (
        "refused_mode.txt",
        include_str!("../templates/refused_mode.txt.j2"),
    ),
    (
        "promotion.txt",
        include_str!("../templates/promotion.txt.j2"),
    ),
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
    // Every value a template prints may come from outside (file names,
    // database errors, logins): control characters are escaped, so none can
    // steer a terminal. Only what envgate marks safe (its own colours) is
    // written as it is.
    env.set_formatter(|out, _state, value| {
        let text = if value.is_safe() || value.is_number() {
            value.to_string()
        } else {
            crate::core::text::visible_lines(&value.to_string()).into_owned()
        };
        out.write_str(&text).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing").with_source(e)
        })
    });
    env.add_filter("pad", pad);
    env.add_filter("md", md_escape);
    env.add_filter("short", short_hash);
    env.add_filter("paint", move |text: String, state: String| {
        Value::from_safe_string(paint(color, &text, &state))
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
struct Finding<'a> {
    label: &'a str,
    env: &'a str,
    file: Option<&'a str>,
    today: Option<String>,
    recorded: Option<String>,
    applied_at: Option<&'a str>,
    error: Option<&'a str>,
}

/// What the status templates see. The matrix body (one line per
/// migration) is laid out here rather than in the template: it is pure
/// layout, no wording, and a template loop over ten thousand rows would cost
/// more than everything else `status` does.
#[derive(Serialize)]
struct StatusView<'a> {
    notes: &'a [String],
    total: usize,
    label_width: usize,
    envs: Vec<EnvView<'a>>,
    count_names: [&'static str; 5],
    /// Laid out here, colours included (see above): written as it is.
    body: Value,
    drifted: Vec<Finding<'a>>,
    failed: Vec<Finding<'a>>,
    missing: Vec<Finding<'a>>,
    unreachable: Vec<(&'a str, &'a str)>,
    gaps: &'a [Gap],
    out_of_order: bool,
}

const COUNT_NAMES: [&str; 5] = ["applied", "pending", "drifted", "failed", "missing"];

fn cell_text(cell: &Cell<'_>) -> &'static str {
    match (cell.state, cell.out_of_order) {
        (State::Pending, true) => "pending*",
        (State::Absent, _) => "-",
        (s, _) => s.as_str(),
    }
}

fn icon(state: State) -> &'static str {
    match state {
        State::Applied => "✅ ",
        State::Pending => "⏳ ",
        State::Drifted => "⚠️ ",
        State::Failed => "❌ ",
        State::Missing => "❓ ",
        State::Unreachable => "🚫 ",
        State::Absent => "",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Table { color: bool },
    Markdown,
}

fn view<'a>(
    envs: &'a [&'a EnvConfig],
    matrix: &'a Matrix<'a>,
    labels: &'a [String],
    gaps: &'a [Gap],
    notes: &'a [String],
    layout: Layout,
) -> StatusView<'a> {
    let label_width = labels
        .iter()
        .map(|l| l.chars().count())
        .chain(["migration".len()])
        .max()
        .unwrap_or(0);
    let env_views: Vec<EnvView<'a>> = envs
        .iter()
        .zip(&matrix.envs)
        .enumerate()
        .map(|(e, (cfg, col))| {
            let widest_cell = (0..matrix.rows.len())
                .map(|r| cell_text(&matrix.cells(r)[e]).len())
                .max()
                .unwrap_or(0);
            let c = col.counts;
            EnvView {
                name: &cfg.name,
                mode: cfg.mode.as_str(),
                mode_source: match cfg.mode_source {
                    ModeSource::Config => "config",
                    ModeSource::Default => "default",
                },
                reachable: col.reachable(),
                width: widest_cell
                    .max(cfg.name.chars().count())
                    .max(cfg.mode.as_str().len()),
                counts: [c.applied, c.pending, c.drifted, c.failed, c.missing],
            }
        })
        .collect();

    let mut body = String::with_capacity(matrix.rows.len() * (label_width + 16 * envs.len() + 8));
    let mut drifted = Vec::new();
    let mut failed = Vec::new();
    let mut missing = Vec::new();
    let mut out_of_order = false;
    for (r, (row, label)) in matrix.rows.iter().zip(labels).enumerate() {
        match layout {
            Layout::Table { .. } => {
                body.push_str(label);
                pad_to(&mut body, label.chars().count(), label_width);
            }
            Layout::Markdown => {
                body.push_str("| `");
                body.push_str(&md_escape(label.clone()));
                body.push_str("` |");
            }
        }
        for (e, cell) in matrix.cells(r).iter().enumerate() {
            out_of_order |= cell.out_of_order;
            let text = cell_text(cell);
            match layout {
                Layout::Table { color } => {
                    body.push_str("  ");
                    if color {
                        let padded = format!("{text:<width$}", width = env_views[e].width);
                        body.push_str(&paint(color, &padded, cell.state.as_str()));
                    } else {
                        body.push_str(text);
                        pad_to(&mut body, text.len(), env_views[e].width);
                    }
                }
                Layout::Markdown => {
                    body.push(' ');
                    if cell.state != State::Absent {
                        body.push_str(icon(cell.state));
                        body.push_str(text);
                    }
                    body.push_str(" |");
                }
            }
            let finding = || Finding {
                label,
                env: &envs[e].name,
                file: row.file,
                today: row.hash.map(|h| h.hex()),
                recorded: cell.applied_hash().map(|h| h.display()),
                applied_at: cell.applied_at(),
                error: crate::report::failure(cell),
            };
            match cell.state {
                State::Drifted => drifted.push(finding()),
                State::Failed => failed.push(finding()),
                State::Missing => missing.push(finding()),
                _ => {}
            }
        }
        // Padding leaves trailing spaces after the last column.
        body.truncate(body.trim_end_matches(' ').len());
        body.push('\n');
    }
    let unreachable = matrix
        .envs
        .iter()
        .filter_map(|e| e.error.map(|err| (e.name, err)))
        .collect();
    StatusView {
        notes,
        total: matrix.rows.iter().filter(|r| r.file.is_some()).count(),
        label_width,
        envs: env_views,
        count_names: COUNT_NAMES,
        body: Value::from_safe_string(body),
        drifted,
        failed,
        missing,
        unreachable,
        gaps,
        out_of_order,
    }
}

fn pad_to(out: &mut String, len: usize, width: usize) {
    for _ in len..width {
        out.push(' ');
    }
}

/// The row labels: `<version>_<name>`, as the files are named.
fn labels(matrix: &Matrix<'_>) -> Vec<String> {
    matrix
        .rows
        .iter()
        .map(|r| crate::core::text::visible(&format!("{}_{}", r.version, r.name)).into_owned())
        .collect()
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
pub fn status_table(
    envs: &[&EnvConfig],
    matrix: &Matrix<'_>,
    notes: &[String],
    color: bool,
) -> String {
    let (labels, gaps) = (labels(matrix), matrix.gaps());
    render(
        "status.txt",
        color,
        &view(envs, matrix, &labels, &gaps, notes, Layout::Table { color }),
    )
}

/// GitHub-flavoured Markdown (PR comments, check runs, step summaries).
pub fn status_markdown(envs: &[&EnvConfig], matrix: &Matrix<'_>, notes: &[String]) -> String {
    let (labels, gaps) = (labels(matrix), matrix.gaps());
    render(
        "status.md",
        false,
        &view(envs, matrix, &labels, &gaps, notes, Layout::Markdown),
    )
}

/// The JSON contract.
pub fn status_json(envs: &[&EnvConfig], matrix: &Matrix<'_>) -> String {
    let mut s =
        serde_json::to_string_pretty(&report::build(envs, matrix)).expect("report serializes");
    s.push('\n');
    s
}

/// `envgate plan`.
pub fn plan_text(report: &report::PlanReport<'_>) -> String {
    render(
        "plan.txt",
        false,
        &minijinja::context! { report => Value::from(minijinja::value::Serde(report)) },
    )
}

/// The outcome of `envgate apply`.
pub fn apply_text(report: &crate::apply::ApplyReport) -> String {
    let width = report
        .applied
        .iter()
        .map(|a| a.version.chars().count() + 1 + a.name.chars().count())
        .max()
        .unwrap_or(0);
    render(
        "apply.txt",
        false,
        &minijinja::context! { report => Value::from(minijinja::value::Serde(report)), width => width },
    )
}

/// The outcome of `envgate export`.
pub fn export_text(report: &report::ExportReport<'_>) -> String {
    render(
        "export.txt",
        false,
        &minijinja::context! { report => Value::from(minijinja::value::Serde(report)) },
    )
}

/// Why envgate will not write to an environment.
pub fn refused_mode(env: &EnvConfig) -> String {
    let source = match env.mode_source {
        ModeSource::Config => "config",
        ModeSource::Default => "default",
    };
    render(
        "refused_mode.txt",
        false,
        &minijinja::context! { env => env.name.as_str(), mode => env.mode.as_str(), mode_source => source },
    )
}

/// `envgate releases`. `pattern`: the release tag pattern, for an empty
/// list.
pub fn releases_text(releases: &impl Serialize, pattern: &str) -> String {
    render(
        "releases.txt",
        false,
        &minijinja::context! { releases => Value::from(minijinja::value::Serde(releases)), pattern => pattern },
    )
}

/// `envgate release show`.
/// `sql`: with each bundle's full text.
pub fn release_text(show: &impl Serialize, sql: bool) -> String {
    let v = serde_json::to_value(show).expect("reports serialize");
    let width = v["release"]["migrations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["id"].as_str().unwrap_or("").chars().count()
                + 1
                + m["name"].as_str().unwrap_or("").chars().count()
        })
        .max()
        .unwrap_or(0);
    let envwidth = v["release"]["progress"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["environment"].as_str().unwrap_or("").chars().count())
        .max()
        .unwrap_or(0);
    render(
        "release.txt",
        false,
        &minijinja::context! { show => Value::from(minijinja::value::Serde(&v)), width => width, envwidth => envwidth, sql => sql },
    )
}

/// `envgate audit` as a table: one line per record.
pub fn audit_text(records: &[crate::core::audit::Record], filtered: bool) -> String {
    let w = |f: &dyn Fn(&crate::core::audit::Record) -> usize, header: &str| {
        records.iter().map(f).max().unwrap_or(0).max(header.len())
    };
    let widths = minijinja::context! {
        seq => w(&|r| r.seq.to_string().len(), "seq"),
        action => w(&|r| r.entry.action.chars().count(), "action"),
        actor => w(&|r| r.entry.actor.chars().count(), "actor"),
        env => w(&|r| r.entry.environment.as_deref().map_or(1, |e| e.chars().count()), "env"),
        release => w(&|r| r.entry.release.as_deref().map_or(1, |e| e.chars().count()), "release"),
        outcome => w(&|r| r.entry.outcome.chars().count(), "outcome"),
    };
    render(
        "audit.txt",
        false,
        &minijinja::context! { records => Value::from(minijinja::value::Serde(records)), w => widths, filtered => filtered },
    )
}

/// `envgate audit verify`, when the chain holds.
pub fn audit_verified(count: usize, last: Option<&crate::core::audit::Record>) -> String {
    match last {
        None => "audit trail: no records yet.\n".to_owned(),
        Some(r) => format!(
            "audit trail intact: {count} record{}, chained from the first to #{} (hash {}).\n\
             Keep that hash somewhere else: a trail cut short after it would then show.\n",
            if count == 1 { "" } else { "s" },
            r.seq,
            r.hash
        ),
    }
}

/// The bot's sticky pull-request comment.
pub fn pr_comment(view: &impl Serialize) -> String {
    render("pr_comment.md", false, view)
}

/// The bot's section of a release's description.
pub fn release_section(view: &impl Serialize) -> String {
    render("release_section.md", false, view)
}

/// Pretty JSON with a final newline.
pub fn json(value: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("reports serialize");
    s.push('\n');
    s
}

/// Why a promotion or rollback refuses or has nothing to do: one line, no
/// newline. `forced`: as recorded when `--force` went past it.
pub fn promotion(r: &impl Serialize, forced: bool) -> String {
    #[derive(Serialize)]
    struct View<'a, R> {
        r: &'a R,
        forced: bool,
    }
    render("promotion.txt", false, &View { r, forced })
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::promotion::{Behind, Nothing, Refusal};

    fn refused(r: Refusal) -> String {
        format!("{}\n---\n{}", promotion(&r, false), promotion(&r, true))
    }

    #[test]
    fn promotion_refusals() {
        let behind = vec![
            Behind {
                environment: "dev".into(),
                applied: 1,
                total: 2,
                reachable: true,
            },
            Behind {
                environment: "staging".into(),
                applied: 0,
                total: 2,
                reachable: false,
            },
        ];
        insta::assert_snapshot!(refused(Refusal::NotFullyApplied { tag: "v2.4.0".into(), env: "prod".into(), behind }), @r#"
        release v2.4.0 is not fully applied before 'prod' in the promotion order: dev has 1/2 applied; staging could not be read (promote it there first, or --force --reason "…")
        ---
        release v2.4.0 is not fully applied before 'prod' in the promotion order: dev has 1/2 applied; staging could not be read
        "#);
        insta::assert_snapshot!(refused(Refusal::OlderPending { tag: "v2.4.0".into(), env: "staging".into(), versions: vec!["3".into(), "4".into()] }), @r#"
        'staging' still has older migrations pending that are not part of v2.4.0: 3, 4 (promote their releases first, or --force --reason "…")
        ---
        'staging' still has older migrations pending that are not part of v2.4.0: 3, 4
        "#);
        insta::assert_snapshot!(promotion(&Refusal::ReconcileOnly { tag: "v1".into(), env: "legacy".into(), tool: None, pending: Some(vec![]) }, false), @"'legacy' is reconcile_only: its migrations are applied outside envgate; pending there from v1: none");
        insta::assert_snapshot!(promotion(&Refusal::ReconcileOnly { tag: "v1".into(), env: "legacy".into(), tool: Some("flyway".into()), pending: Some(vec!["1".into(), "2".into()]) }, false), @"'legacy' is reconcile_only: its migrations are applied by its own tool (flyway), never by envgate; pending there from v1: 1, 2");
        insta::assert_snapshot!(promotion(&Refusal::ReconcileOnly { tag: "v1".into(), env: "legacy".into(), tool: Some("flyway".into()), pending: None }, false), @"'legacy' is reconcile_only: its migrations are applied and reverted by its own tool (flyway), never by envgate");
        insta::assert_snapshot!(promotion(&Refusal::ReconcileOnly { tag: "v1".into(), env: "legacy".into(), tool: None, pending: None }, false), @"'legacy' is reconcile_only: its migrations are applied and reverted outside envgate, never by envgate");
        insta::assert_snapshot!(promotion(&Refusal::Blocked { tag: "v1".into(), env: "staging".into(), blockers: vec!["2 drifted".into(), "3 failed".into()], rollback: false }, false), @"'staging' has drift or failed runs before the release: 2 drifted, 3 failed (resolve it, accept it with `envgate drift accept`, or --allow-drift)");
        insta::assert_snapshot!(promotion(&Refusal::Blocked { tag: "v1".into(), env: "dev".into(), blockers: vec!["2 is applied after it and not part of it".into()], rollback: true }, false), @"release v1 cannot be rolled back in 'dev' as it stands: 2 is applied after it and not part of it; nothing was changed");
        insta::assert_snapshot!(promotion(&Refusal::NoDown { tag: "v1".into(), env: "dev".into(), files: vec!["migrations/2_b.sql".into()] }, false), @"release v1 cannot be rolled back in 'dev': no down script for migrations/2_b.sql; nothing was changed");
    }

    #[test]
    fn promotion_nothing_to_do() {
        insta::assert_snapshot!(promotion(&Nothing::AppliedEverywhere { tag: "v1".into() }, false), @"release v1: applied in every environment; nothing to promote.");
        insta::assert_snapshot!(promotion(&Nothing::OnlyLastHasIt { tag: "v1".into(), behind: vec!["dev (1/2)".into()] }, false), @"release v1: applied in the last environment, but not in dev (1/2): promote there with --to.");
        insta::assert_snapshot!(promotion(&Nothing::AlreadyApplied { tag: "v1".into(), env: "prod".into() }, false), @"release v1: already applied in 'prod'.");
        insta::assert_snapshot!(promotion(&Nothing::NothingApplied { tag: "v1".into(), env: "dev".into() }, false), @"release v1: nothing of it is applied in 'dev'; nothing to revert.");
    }
}
