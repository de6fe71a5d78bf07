//! Turning reports into text. Every word envgate shows comes from a template
//! in `templates/` (embedded at build time, strict about undefined values);
//! this module only prepares the views they read.

use crate::config::EnvConfig;
use crate::core::matrix::{Cell, Compared, Gap, Matrix, State};
use crate::core::mode::ModeSource;
use crate::report;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

mod audit;
mod console;
pub use audit::{audit_csv, audit_jsonl, audit_text, audit_trailer, audit_verified};
pub use console::*;

/// The templates, by name.
const TEMPLATES: [(&str, &str); 16] = [
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
    (
        "audit_verified.txt",
        include_str!("../templates/audit_verified.txt.j2"),
    ),
    ("trail.md", include_str!("../templates/trail.md.j2")),
    ("mode_set.txt", include_str!("../templates/mode_set.txt.j2")),
    (
        "mode_review.md",
        include_str!("../templates/mode_review.md.j2"),
    ),
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
    env.add_filter("when", when);
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

/// A time as a ledger recorded it: RFC 3339 instants as they are; a time
/// without zone (Liquibase's and Flyway's on PostgreSQL, unless the
/// environment names `ledger_time_zone`) says that it has none.
fn when(at: String) -> String {
    let zoned = at.ends_with('Z') || {
        let tail = at
            .get(at.len().saturating_sub(6)..)
            .unwrap_or("")
            .as_bytes();
        matches!(tail, [b'+' | b'-', _, _, b':', _, _])
    };
    if zoned || at.is_empty() {
        at
    } else {
        format!("{at} (no time zone recorded)")
    }
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
    /// The two values compared, like with like: envgate's SHA-256 or the
    /// tool's own checksum (`algorithm` names it then).
    today: Option<String>,
    recorded: Option<String>,
    algorithm: Option<&'static str>,
    /// When envgate first saw it applied, when that is what `recorded` is.
    first_seen: Option<&'a str>,
    applied_at: Option<&'a str>,
    error: Option<&'a str>,
    /// Tampered: the bundle that wrote the row, and the hash its manifest
    /// lists.
    bundle: Option<&'a str>,
    manifest: Option<&'a str>,
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
    /// Drift accepted on purpose: (label, environment, who, when, why).
    accepted: Vec<(&'a str, &'a str, &'a str, &'a str, &'a str)>,
    unreachable: Vec<(&'a str, &'a str)>,
    gaps: &'a [Gap],
    out_of_order: bool,
}

const COUNT_NAMES: [&str; 5] = ["applied", "pending", "drifted", "failed", "missing"];

fn cell_text(cell: &Cell<'_>) -> &'static str {
    if cell.tampered.is_some() {
        return "tampered";
    }
    match (cell.state, cell.out_of_order) {
        (State::Pending, true) => "pending*",
        (State::Absent, _) => "-",
        (s, _) => s.as_str(),
    }
}

/// A state as the Markdown tables show it: its icon, then its name.
pub fn marked_state(state: State) -> String {
    format!("{}{}", icon(state), state.as_str())
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
    let mut accepted = Vec::new();
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
            let finding = || {
                let (today, recorded, algorithm, first_seen) = match cell.compared(row) {
                    Some(Compared::Sha256 { today, then }) => {
                        (Some(today.hex()), Some(then.hex()), None, None)
                    }
                    Some(Compared::Tool { today, then }) => (
                        Some(today.to_owned()),
                        Some(then.to_owned()),
                        envs[e].ledger.checksum(),
                        None,
                    ),
                    Some(Compared::FirstSeen { today, then, at }) => {
                        (Some(today.hex()), Some(then.hex()), None, Some(at))
                    }
                    Some(Compared::Unreadable { today, then }) => {
                        (today.map(|h| h.hex()), Some(then.to_owned()), None, None)
                    }
                    None => (
                        row.hash.map(|h| h.hex()),
                        cell.applied_hash().map(|h| h.display()),
                        None,
                        None,
                    ),
                };
                Finding {
                    label,
                    env: &envs[e].name,
                    file: row.file,
                    today,
                    recorded,
                    algorithm,
                    first_seen,
                    applied_at: cell.applied_at(),
                    error: crate::report::failure(cell),
                    bundle: cell
                        .tampered
                        .and(cell.ledger)
                        .and_then(crate::core::exported::bundle_of),
                    manifest: cell.tampered,
                }
            };
            if let Some(a) = cell.accepted {
                accepted.push((
                    label.as_str(),
                    envs[e].name.as_str(),
                    a.actor.as_str(),
                    a.at.as_str(),
                    a.reason.as_str(),
                ));
            }
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
        accepted,
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
        .map(|r| {
            crate::core::text::visible(&crate::core::text::label(r.version, r.name)).into_owned()
        })
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
    // About 250 bytes per migration and 300 per cell: sized once rather
    // than grown (and copied) a dozen times.
    let guess = 1024 + matrix.rows.len() * (250 + 300 * envs.len());
    let mut out = Vec::with_capacity(guess);
    serde_json::to_writer_pretty(&mut out, &report::build(envs, matrix))
        .expect("report serializes");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// `envgate status --format html`: one self-contained page (inline CSS, no
/// script) with the environments, the matrix and what needs attention.
/// Every value is HTML-escaped: migration names, errors and logins come
/// from outside.
pub fn status_html(envs: &[&EnvConfig], matrix: &Matrix<'_>, title: &str) -> String {
    page_html(envs, matrix, title, None, None, None)
}

/// What a path segment in a link keeps as it is: unreserved characters.
pub const HREF_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The pages' template environment: every value HTML-escaped.
fn html_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters"),
    );
    for (name, source) in [
        ("status.html", include_str!("../templates/status.html.j2")),
        ("page.css", include_str!("../templates/page.css")),
        ("nav.html", include_str!("../templates/nav.html.j2")),
        ("style.html", include_str!("../templates/style.html.j2")),
        (
            "console_audit.html",
            include_str!("../templates/console_audit.html.j2"),
        ),
        (
            "console_repos.html",
            include_str!("../templates/console_repos.html.j2"),
        ),
        (
            "console_message.html",
            include_str!("../templates/console_message.html.j2"),
        ),
        (
            "console_release.html",
            include_str!("../templates/console_release.html.j2"),
        ),
        (
            "console_action.html",
            include_str!("../templates/console_action.html.j2"),
        ),
        ("sql.html", include_str!("../templates/sql.html.j2")),
        (
            "console_releases.html",
            include_str!("../templates/console_releases.html.j2"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the page templates are valid");
    }
    // For a value in a link's query or path: everything but unreserved
    // characters percent-encoded.
    env.add_filter("urlencode", |text: String| -> String {
        percent_encoding::utf8_percent_encode(&text, HREF_SEGMENT).to_string()
    });
    env.add_filter("lines", |text: String| -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    });
    env
}

/// The same page with a Live schema section (`status --schema --format
/// html`).
pub fn status_html_with_schema(
    envs: &[&EnvConfig],
    matrix: &Matrix<'_>,
    title: &str,
    schemas: &[crate::core::schema_drift::EnvSchema],
) -> String {
    page_html(envs, matrix, title, Some(schemas), None, None)
}

fn page_html(
    envs: &[&EnvConfig],
    matrix: &Matrix<'_>,
    title: &str,
    schemas: Option<&[crate::core::schema_drift::EnvSchema]>,
    console: Option<(&Nav, &MatrixPage<'_>)>,
    notes: Option<&[EnvNotes]>,
) -> String {
    let (nav, filters) = match console {
        Some((n, f)) => (Some(n), Some(f)),
        None => (None, None),
    };
    use crate::core::matrix::State;
    let files_at = nav.and_then(|n| n.files_at.as_deref());
    use crate::core::schema::Change;
    #[derive(Serialize)]
    struct SchemaRow {
        env: String,
        state: &'static str,
        summary: String,
        fingerprint: Option<String>,
        changes: Vec<(String, Option<String>)>,
    }
    let schema_rows: Option<Vec<SchemaRow>> = schemas.map(|list| {
        list.iter()
            .map(|s| {
                let view = s.view();
                let changes = match &s.comparison {
                    crate::core::schema_drift::Comparison::Compared { changes, .. } => changes
                        .iter()
                        .zip(s.sentences())
                        .map(|(c, text)| {
                            let definition = match c {
                                Change::Extra { object } | Change::Missing { object } => {
                                    Some(object.definition.clone())
                                }
                                Change::Differs { .. } => None,
                            };
                            (text, definition)
                        })
                        .collect(),
                    crate::core::schema_drift::Comparison::Unknown(_) => Vec::new(),
                };
                SchemaRow {
                    env: s.env.clone(),
                    state: view.state,
                    summary: s.summary(),
                    fingerprint: view.fingerprint,
                    changes,
                }
            })
            .collect()
    });
    #[derive(Serialize)]
    struct Env<'a> {
        name: &'a str,
        mode: &'a str,
        mode_source: &'a str,
        ledger: &'a str,
        reachable: bool,
        error: Option<&'a str>,
        counts: crate::core::matrix::Counts,
        /// Where it is, without credentials (the console).
        location: Option<&'a str>,
        modes: &'a [ModeEvent],
        admins: &'a [String],
        promoters: &'a [String],
    }
    #[derive(Serialize)]
    struct CellView {
        state: &'static str,
        out_of_order: bool,
    }
    struct Row {
        label: String,
        /// The file at the commit on the forge (the console), encoded.
        href: Option<Value>,
        fine: bool,
        cells: Vec<CellView>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        state: &'static str,
        label: String,
        env: &'a str,
        file: Option<&'a str>,
        text: String,
        today: Option<String>,
        recorded: Option<String>,
    }
    let environments: Vec<Env<'_>> = envs
        .iter()
        .zip(&matrix.envs)
        .enumerate()
        .map(|(e, (cfg, col))| Env {
            location: notes.and_then(|n| n.get(e)).map(|n| n.location.as_str()),
            modes: notes.and_then(|n| n.get(e)).map_or(&[], |n| &n.modes),
            admins: &cfg.admins,
            promoters: &cfg.promoters,
            name: &cfg.name,
            mode: cfg.mode.as_str(),
            mode_source: match cfg.mode_source {
                ModeSource::Config => "config",
                ModeSource::Default => "default",
            },
            ledger: cfg.ledger.as_str(),
            reachable: col.reachable(),
            error: col.error,
            counts: col.counts,
        })
        .collect();
    let mut rows = Vec::with_capacity(matrix.rows.len());
    let mut details = Vec::new();
    for (r, row) in matrix.rows.iter().enumerate() {
        let label = crate::core::text::label(row.version, row.name);
        let fine = !crate::core::matrix::needs_attention(matrix.cells(r));
        let cells = matrix
            .cells(r)
            .iter()
            .enumerate()
            .map(|(e, cell)| {
                let state = if cell.tampered.is_some() {
                    "tampered"
                } else {
                    cell.state.as_str()
                };
                let env = matrix.envs[e].name;
                let detail =
                    |text: String, today: Option<String>, recorded: Option<String>| Detail {
                        state,
                        label: label.clone(),
                        env,
                        file: row.file,
                        text,
                        today,
                        recorded,
                    };
                match cell.state {
                    _ if cell.tampered.is_some() => details.push(detail(
                        format!(
                            "written by a bundle whose manifest records {}",
                            cell.tampered.unwrap_or_default()
                        ),
                        row.hash.map(|h| h.hex()),
                        cell.applied_hash().map(|h| h.display().to_string()),
                    )),
                    State::Drifted => details.push(detail(
                        "edited after it was applied".to_owned(),
                        row.hash.map(|h| h.hex()),
                        cell.applied_hash().map(|h| h.display().to_string()),
                    )),
                    State::Failed => details.push(detail(
                        cell.ledger
                            .and_then(|l| l.error.clone())
                            .unwrap_or_else(|| "the ledger records a failed run".to_owned()),
                        None,
                        None,
                    )),
                    State::Missing => details.push(detail(
                        "in the ledger, not in the repository".to_owned(),
                        None,
                        None,
                    )),
                    _ => {}
                }
                CellView {
                    state,
                    out_of_order: cell.out_of_order,
                }
            })
            .collect();
        // Each segment percent-encoded, so the address needs no HTML
        // escaping (a slash escaped costs six bytes, a thousand rows over).
        let href = match (files_at, row.file) {
            (Some(base), Some(file)) => Some(Value::from_safe_string(format!(
                "{}{}",
                base.replace('&', "&amp;")
                    .replace('"', "&quot;")
                    .replace('\'', "&#x27;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
                file.split('/')
                    .map(|seg| percent_encoding::utf8_percent_encode(seg, HREF_SEGMENT).to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            ))),
            _ => None,
        };
        rows.push(Row {
            label,
            href,
            fine,
            cells,
        });
    }
    let attention = rows.iter().filter(|r| !r.fine).count();
    let env = html_environment();
    env.get_template("status.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => title,
                total => matrix.rows.len(),
                attention => attention,
                environments => Value::from(minijinja::value::Serde(&environments)),
                migrations => Value::from(
                    rows.iter()
                        .map(|r| {
                            minijinja::context! {
                                label => &r.label,
                                fine => r.fine,
                                cells => Value::from(minijinja::value::Serde(&r.cells)),
                                href => r.href.clone(),
                            }
                        })
                        .collect::<Vec<_>>()
                ),
                details => Value::from(minijinja::value::Serde(&details)),
                schemas => Value::from(minijinja::value::Serde(&schema_rows)),
                nav => Value::from(minijinja::value::Serde(&nav)),
                filters => Value::from(minijinja::value::Serde(&filters)),
                stylesheet => nav.map(|n| console::stylesheet_href(&n.base)),
            })
        })
        .unwrap_or_else(|e| panic!("the page failed to render: {e:#}"))
}

/// The JSON contract with each environment's `schema` (`status --schema`).
pub fn status_json_with_schema(
    envs: &[&EnvConfig],
    matrix: &Matrix<'_>,
    schemas: &[crate::core::schema_drift::EnvSchema],
) -> String {
    let mut value = serde_json::to_value(report::build(envs, matrix)).expect("report serializes");
    if let Some(list) = value["environments"].as_array_mut() {
        for (env, s) in list.iter_mut().zip(schemas) {
            env["schema"] = serde_json::to_value(s.view()).expect("schema view serializes");
        }
    }
    let mut out = serde_json::to_string_pretty(&value).expect("value serializes");
    out.push('\n');
    out
}

/// `envgate schema diff --format json`.
pub fn schema_json(schemas: &[crate::core::schema_drift::EnvSchema]) -> String {
    #[derive(Serialize)]
    struct Env<'a> {
        name: &'a str,
        #[serde(flatten)]
        view: crate::core::schema_drift::SchemaView<'a>,
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        schema_version: u32,
        environments: Vec<Env<'a>>,
    }
    json(&Doc {
        schema_version: 1,
        environments: schemas
            .iter()
            .map(|s| Env {
                name: &s.env,
                view: s.view(),
            })
            .collect(),
    })
}

/// `envgate schema diff`: a line per environment, then each difference in
/// plain words with the object's definition.
pub fn schema_text(schemas: &[crate::core::schema_drift::EnvSchema]) -> String {
    use crate::core::schema::Change;
    use crate::core::schema_drift::Comparison;
    let width = schemas
        .iter()
        .map(|s| s.env.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for s in schemas {
        out.push_str(&format!(
            "{}  {}\n",
            pad(s.env.clone(), width),
            crate::core::text::visible(&s.summary())
        ));
        if let Comparison::Compared { changes, .. } = &s.comparison {
            for (change, sentence) in changes.iter().zip(s.sentences()) {
                out.push_str(&format!("  - {}\n", crate::core::text::visible(&sentence)));
                if let Change::Extra { object } | Change::Missing { object } = change {
                    out.push_str(&format!(
                        "      {}\n",
                        crate::core::text::visible(&object.definition)
                    ));
                }
            }
        }
    }
    out
}

/// The same in Markdown (job summaries, pull request comments).
pub fn schema_markdown(schemas: &[crate::core::schema_drift::EnvSchema]) -> String {
    let mut out = String::from("| environment | live schema |\n|---|---|\n");
    for s in schemas {
        out.push_str(&format!(
            "| {} | {} |\n",
            md_escape(s.env.clone()),
            md_escape(s.summary())
        ));
    }
    let sentences: Vec<String> = schemas.iter().flat_map(|s| s.sentences()).collect();
    if !sentences.is_empty() {
        out.push('\n');
        for line in sentences {
            out.push_str(&format!("- {}\n", md_escape(line)));
        }
    }
    out
}

/// `envgate lint`: a line per finding, `file:line:column: severity rule:
/// message`, its help below, then the count.
pub fn lint_text(findings: &[crate::core::lint::Finding], linted: usize) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{}:{}:{}: {} {}: {}\n",
            crate::core::text::visible(&f.file),
            f.line,
            f.column,
            f.severity.as_str(),
            f.rule,
            crate::core::text::visible(&f.message)
        ));
        if let Some(help) = &f.help {
            out.push_str(&format!("    help: {}\n", crate::core::text::visible(help)));
        }
    }
    out.push_str(&lint_count(findings, linted));
    out.push('\n');
    out
}

/// "2 findings (1 error, 1 warning) in 3 migrations".
fn lint_count(findings: &[crate::core::lint::Finding], linted: usize) -> String {
    use crate::core::lint::Severity;
    let counts = crate::core::lint::counts(findings);
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let migrations = plural(linted, "migration");
    if findings.is_empty() {
        return format!("no findings in {migrations}");
    }
    let errors = counts.get(&Severity::Error).copied().unwrap_or(0);
    let warnings = counts.get(&Severity::Warning).copied().unwrap_or(0);
    format!(
        "{} ({}, {}) in {migrations}",
        plural(findings.len(), "finding"),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// `envgate lint --format json`.
pub fn lint_json(findings: &[crate::core::lint::Finding], linted: usize) -> String {
    json(&serde_json::json!({
        "schema_version": 1,
        "linted": linted,
        "findings": findings,
    }))
}

/// The lint in Markdown: a collapsed section (the sticky comment, job
/// summaries). `what` names the migrations ("this request adds").
pub fn lint_markdown(findings: &[crate::core::lint::Finding], linted: usize, what: &str) -> String {
    let mut out = format!(
        "<details><summary>Lint: {}{}{what}</summary>\n\n",
        md_escape(lint_count(findings, linted)),
        if what.is_empty() { "" } else { " " }
    );
    if !findings.is_empty() {
        out.push_str("| where | severity | rule | finding |\n|---|---|---|---|\n");
        for f in findings {
            let help = f
                .help
                .as_deref()
                .map(|h| format!(" — {}", md_escape(h.to_owned())))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `{}:{}` | {} | `{}` | {}{} |\n",
                md_escape(f.file.replace('`', "'")),
                f.line,
                f.severity.as_str(),
                f.rule,
                md_escape(f.message.clone()),
                help
            ));
        }
    }
    out.push_str("\n</details>\n");
    out
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
        &minijinja::context! {
            env => env.name.as_str(),
            mode => env.mode.as_str(),
            mode_source => source,
            ledger => env.ledger.as_str(),
        },
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

/// The audit trail's line under a check run, a comment or release notes:
/// the head to verify against later, or a warning that the trail goes with
/// the CI job. Empty when there is no store.
pub fn trail(trail: &impl Serialize) -> String {
    render(
        "trail.md",
        false,
        &minijinja::context! { trail => Value::from(minijinja::value::Serde(trail)) },
    )
    .trim_end()
    .to_owned()
}

/// The sticky note's section on environments a request loosens.
pub fn mode_review(view: &impl Serialize) -> String {
    render("mode_review.md", false, view)
}

/// `envgate mode set`: what changed and what to do next.
pub fn mode_set(view: &impl Serialize) -> String {
    render("mode_set.txt", false, view)
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
        insta::assert_snapshot!(promotion(&Refusal::Blocked { tag: "v1".into(), env: "staging".into(), blockers: vec!["2 drifted".into(), "3 failed".into()], rollback: false }, false), @"'staging' has drift or failed runs before the release: 2 drifted, 3 failed (resolve it, accept drift with `envgate drift accept`, or go ahead with --allow-drift / --retry-failed)");
        insta::assert_snapshot!(promotion(&Refusal::Blocked { tag: "v1".into(), env: "dev".into(), blockers: vec!["2 is applied after it and not part of it".into()], rollback: true }, false), @"release v1 cannot be rolled back in 'dev' as it stands: 2 is applied after it and not part of it; nothing was changed");
        insta::assert_snapshot!(promotion(&Refusal::NoDown { tag: "v1".into(), env: "dev".into(), files: vec!["migrations/2_b.sql".into()] }, false), @"release v1 cannot be rolled back in 'dev': no down script for migrations/2_b.sql; nothing was changed");
    }

    #[test]
    fn promotion_nothing_to_do() {
        insta::assert_snapshot!(promotion(&Nothing::AppliedEverywhere { tag: "v1".into() }, false), @"release v1: applied in every environment; nothing to promote.");
        insta::assert_snapshot!(promotion(&Nothing::OnlyLastHasIt { tag: "v1".into(), behind: vec!["dev (1/2)".into()] }, false), @"release v1: applied in the last environment, but not in dev (1/2): promote there with --env.");
        insta::assert_snapshot!(promotion(&Nothing::AlreadyApplied { tag: "v1".into(), env: "prod".into() }, false), @"release v1: already applied in 'prod'.");
        insta::assert_snapshot!(promotion(&Nothing::NothingApplied { tag: "v1".into(), env: "dev".into() }, false), @"release v1: nothing of it is applied in 'dev'; nothing to revert.");
    }

    // ---- every template in each state it can be in ----

    use crate::apply::{
        AppliedEntry, ApplyReport, ApplyStatus, FailureReport, Refusal as ApplyRefusal,
    };
    use crate::config::Config;
    use crate::core::checksum::{ContentHash, RecordedHash};
    use crate::core::ledger::LedgerRow;
    use crate::core::matrix::{EnvLedger, compute};
    use crate::core::migration::{Migration, SourceFile, discover};
    use crate::core::mode::Mode;
    use crate::core::plan::{Direction, PlanInput};
    use crate::report::{BundleFiles, ExportReport, plan_report};

    const CONFIG: &str = "[environments.dev]\nurl = \"sqlite://dev.db\"\n\n\
        [environments.staging]\nurl = \"sqlite://staging.db\"\n\n\
        [environments.prod]\nurl = \"sqlite://prod.db\"\nmode = \"export_only\"\n";

    fn config() -> Config {
        crate::config::parse(std::path::Path::new("envgate.toml"), CONFIG).unwrap()
    }

    fn migrations() -> Vec<Migration> {
        let files = [
            ("1_users.sql", "CREATE TABLE users (id int);\n"),
            ("2_orders.sql", "CREATE TABLE orders (id int);\n"),
            ("2_orders.down.sql", "DROP TABLE orders;\n"),
            ("3_idx.sql", "CREATE INDEX CONCURRENTLY i ON orders (id);\n"),
            ("4_trash.sql", "CREATE TABLE trash (id int);\n"),
        ];
        discover(
            files
                .iter()
                .map(|(n, b)| SourceFile {
                    path: format!("migrations/{n}"),
                    bytes: b.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn row(m: &Migration, success: bool) -> LedgerRow {
        LedgerRow {
            via: None,
            version: m.id().to_owned(),
            name: m.name.clone(),
            hash: RecordedHash::Sha256Lf(m.up.hash),
            applied_at: Some("2026-11-20T10:00:00.000Z".into()),
            success,
            error: (!success).then(|| "ERROR: relation \"users\" does not exist".to_owned()),
        }
    }

    /// dev: 1, 2 applied, 3 drifted, 9 only in its ledger; staging: 1
    /// applied, 2 failed; prod: unreachable.
    fn ledgers(ms: &[Migration]) -> [Vec<LedgerRow>; 2] {
        let mut drifted = row(&ms[2], true);
        drifted.hash = RecordedHash::Sha256Lf(ContentHash::of(b"CREATE INDEX i ON orders (id);\n"));
        let missing = LedgerRow {
            via: None,
            version: "9".into(),
            name: "gone".into(),
            ..row(&ms[0], true)
        };
        [
            vec![row(&ms[0], true), row(&ms[1], true), drifted, missing],
            vec![row(&ms[0], true), row(&ms[1], false)],
        ]
    }

    #[test]
    fn status_in_every_state() {
        let (c, ms) = (config(), migrations());
        let [dev, staging] = ledgers(&ms);
        let m = compute(
            &ms,
            &[
                EnvLedger::new("dev", Ok(&dev)),
                EnvLedger::new("staging", Ok(&staging)),
                EnvLedger::new(
                    "prod",
                    Err("sqlite prod.db: cannot connect: no database file at prod.db"),
                ),
            ],
        );
        let envs: Vec<&crate::config::EnvConfig> = c.environments.iter().collect();
        let notes = crate::config::mode_notes(&envs);
        insta::assert_snapshot!(status_table(&envs, &m, &notes, false), @r#"
        detected 'staging': mode export_only (set `mode` to override)
        no mode set for dev: mode managed

        migration  dev       staging      prod
                   managed   export_only  export_only
        1_users    applied   applied      unreachable
        2_orders   applied   failed       unreachable
        3_idx      drifted   pending      unreachable
        4_trash    pending*  pending      unreachable
        9_gone     missing   -            unreachable

        applied    2         1            -
        pending    1         2            -
        drifted    1         0            -
        failed     0         1            -
        missing    1         0            -

        * out of order: pending, but older than the newest migration applied there

        drifted (the file changed after it was applied):
          3_idx in dev: migrations/3_idx.sql is now 7f7e97ae2707, was f89c5f09d5f4 when applied at 2026-11-20T10:00:00.000Z

        failed (the ledger records a failed run):
          2_orders in staging at 2026-11-20T10:00:00.000Z: ERROR: relation "users" does not exist

        missing (in the ledger, not in the repository):
          9_gone in dev, applied at 2026-11-20T10:00:00.000Z

        unreachable:
          prod: sqlite prod.db: cannot connect: no database file at prod.db
        "#);
        insta::assert_snapshot!(status_markdown(&envs, &m, &notes), @r#"
        **envgate**: 4 migrations · applied in dev, pending in staging: 1 · drifted: 1 · failed: 1 · missing: 1 · unreachable: prod

        > detected 'staging': mode export_only (set `mode` to override)
        >
        > no mode set for dev: mode managed

        | Migration | dev<br>`managed` | staging<br>`export_only` | prod<br>`export_only` |
        |---|---|---|---|
        | `1_users` | ✅ applied | ✅ applied | 🚫 unreachable |
        | `2_orders` | ✅ applied | ❌ failed | 🚫 unreachable |
        | `3_idx` | ⚠️ drifted | ⏳ pending | 🚫 unreachable |
        | `4_trash` | ⏳ pending* | ⏳ pending | 🚫 unreachable |
        | `9_gone` | ❓ missing |  | 🚫 unreachable |
        | **applied** | 2 | 1 | – |
        | **pending** | 1 | 2 | – |
        | **drifted** | 1 | 0 | – |
        | **failed** | 0 | 1 | – |
        | **missing** | 1 | 0 | – |

        \* out of order: pending, but older than the newest migration applied there.

        <details><summary>What needs attention</summary>

        - ⚠️ `3_idx` drifted in **dev**: `migrations/3_idx.sql` is now `7f7e97ae2707`, was `f89c5f09d5f4` when applied at 2026-11-20T10:00:00.000Z.
        - ❌ `2_orders` failed in **staging** at 2026-11-20T10:00:00.000Z: ERROR: relation "users" does not exist.
        - ❓ `9_gone` is in **dev**'s ledger but not in the repository (applied at 2026-11-20T10:00:00.000Z).
        - 🚫 **prod** could not be read: sqlite prod.db: cannot connect: no database file at prod.db

        </details>
        "#);
        let empty = compute(&[], &[EnvLedger::new("dev", Ok(&[]))]);
        insta::assert_snapshot!(status_table(&envs[..1], &empty, &[], false), @"
        migration  dev
                   managed
        (no migrations)

        applied    0
        pending    0
        drifted    0
        failed     0
        missing    0
        ");
    }

    #[test]
    fn plans_in_every_state() {
        let (c, ms) = (config(), migrations());
        let [dev, staging] = ledgers(&ms);
        let plan = |env: usize, ledger: &[LedgerRow], allow: bool| {
            let p = crate::core::plan::plan(&PlanInput {
                env: &c.environments[env].name,
                mode: c.environments[env].mode,
                dialect: crate::core::sql::Dialect::Sqlite,
                migrations: &ms,
                ledger,
                stop_at: None,
                waive: if allow {
                    crate::core::plan::Waive::ALL
                } else {
                    crate::core::plan::Waive::NONE
                },
                only: None,
                accepted: None,
            })
            .unwrap();
            plan_text(&plan_report(&c.environments[env], &p))
        };
        insta::assert_snapshot!(plan(0, &dev, false), @"
        plan for 'dev' (managed, chosen from the name): 1 migration pending
        managed: `envgate apply --env dev` applies them, one transaction each, with their ledger rows

           1. 4_trash  [out of order]

        blocked: apply and export refuse until this is resolved (or --allow-drift):
          3 drifted: migrations/3_idx.sql is now 7f7e97ae2707, was f89c5f09d5f4 when applied

        warnings:
          9 is in the ledger but not in the repository
          4 is older than 9, already applied here (out of order)
          4 has no down migration: rolling it back will be refused
        ");
        insta::assert_snapshot!(plan(1, &staging, true), @"
        plan for 'staging' (export_only, chosen from the name): 3 migrations pending
        export_only: will export a bundle, will not apply (`envgate export --env staging`)

           1. 2_orders  [retry of a failed run]
           2. 3_idx
           3. 4_trash

        warnings:
          allowed: 2 failed before; retrying it
          3 has no down migration: rolling it back will be refused
          4 has no down migration: rolling it back will be refused
        ");
        insta::assert_snapshot!(plan(2, &[], false), @"
        plan for 'prod' (export_only): 4 migrations pending
        export_only: will export a bundle, will not apply (`envgate export --env prod`)

           1. 1_users
           2. 2_orders
           3. 3_idx
           4. 4_trash

        warnings:
          1 has no down migration: rolling it back will be refused
          3 has no down migration: rolling it back will be refused
          4 has no down migration: rolling it back will be refused
        ");
        let all: Vec<LedgerRow> = ms.iter().map(|m| row(m, true)).collect();
        insta::assert_snapshot!(plan(0, &all, false), @"
        plan for 'dev' (managed, chosen from the name): nothing pending
        managed: `envgate apply --env dev` applies them, one transaction each, with their ledger rows
        ");
    }

    fn apply_report(status: ApplyStatus) -> ApplyReport {
        ApplyReport {
            schema_version: 1,
            environment: "dev".into(),
            mode: Mode::Managed,
            direction: Direction::Up,
            release: None,
            status,
            applied: Vec::new(),
            skipped: Vec::new(),
            failure: None,
            refusal: None,
            warnings: Vec::new(),
            applied_by: "alice".into(),
        }
    }

    #[test]
    fn apply_in_every_state() {
        let entry = |v: &str, n: &str, ms: u64, tx: bool| AppliedEntry {
            version: v.into(),
            name: n.into(),
            execution_ms: ms,
            transaction: tx,
        };
        let applied = ApplyReport {
            applied: vec![
                entry("1", "users", 12, true),
                entry("3", "idx", 1500, false),
            ],
            skipped: vec!["2".into()],
            ..apply_report(ApplyStatus::Applied)
        };
        insta::assert_snapshot!(apply_text(&applied), @"
        applied 2 migrations to 'dev' as alice:
          1_users      12 ms
          3_idx      1500 ms  (outside a transaction)
          skipped, applied meanwhile by another run: 2
        ");
        insta::assert_snapshot!(apply_text(&apply_report(ApplyStatus::NothingToDo)), @"'dev' is up to date: nothing to apply.");
        let failed = ApplyReport {
            applied: vec![entry("1", "users", 12, true)],
            failure: Some(FailureReport {
                version: "2".into(),
                name: "orders".into(),
                file: "migrations/2_orders.sql".into(),
                line: Some(1),
                column: Some(14),
                error: "ERROR: relation \"orders\" already exists".into(),
                transaction: true,
                partial: false,
                recorded: true,
            }),
            ..apply_report(ApplyStatus::Failed)
        };
        insta::assert_snapshot!(apply_text(&failed), @r#"
        'dev': 1 migration applied before a failure:
          1_users      12 ms

        2_orders failed: migrations/2_orders.sql:1:14: ERROR: relation "orders" already exists
          rolled back: none of it took effect.
          recorded as failed in the ledger: fix it, then run again with --retry-failed to retry it.
          nothing after it ran.
        "#);
        let refused = |r: ApplyRefusal| ApplyReport {
            refusal: Some(r),
            ..apply_report(ApplyStatus::Refused)
        };
        insta::assert_snapshot!(apply_text(&refused(ApplyRefusal::Blocked {
            blockers: vec![
                crate::core::plan::Blocker::Failed { version: "2".into(), at: Some("2026-11-20T10:00:00.000Z".into()) },
                crate::core::plan::Blocker::Refused { version: "3".into(), file: "migrations/3_x.sql".into(), line: 2, reason: "`\\! touch x` is a psql command, not SQL".into() },
            ]
        })), @r"
        refused: 'dev' has drift or failed runs before the target; nothing was applied:
          2 failed at 2026-11-20T10:00:00.000Z
          migrations/3_x.sql:2: `\! touch x` is a psql command, not SQL
        Resolve it, or go ahead anyway with --retry-failed (runs the failed migrations again).
        ");
        insta::assert_snapshot!(apply_text(&refused(ApplyRefusal::LockTimeout { message: "the environment's migration lock is held by envgate apply by bob (pid 7); gave up after 60s".into() })), @"refused: the environment's migration lock is held by envgate apply by bob (pid 7); gave up after 60s. Nothing was applied.");
        insta::assert_snapshot!(apply_text(&refused(ApplyRefusal::NeedsDirectConnection { versions: vec!["3".into()] })), @"refused: 3 must run outside a transaction, which needs a direct connection; 'dev' is reached through a transaction pooler, where envgate cannot hold its lock across statements. Nothing was applied. Point the URL at the database itself (not the pooler) for this apply.");
        insta::assert_snapshot!(apply_text(&ApplyReport {
            direction: Direction::Down,
            ..refused(ApplyRefusal::NoDown { files: vec!["migrations/4_trash.sql".into()] })
        }), @"
        refused: these migrations have no down script, so the rollback cannot revert them; nothing was changed:
          migrations/4_trash.sql
        ");
    }

    #[test]
    fn export_in_every_state() {
        let files = BundleFiles {
            bundle_id: "bde86600a9ce5920".into(),
            sql: "bundles/prod-1-3.sql".into(),
            manifest: "bundles/prod-1-3.manifest.json".into(),
            sha256: "ab".repeat(32),
            from: Some("1".into()),
            to: "3".into(),
            migrations: 2,
            apply_with: "psql -X -v ON_ERROR_STOP=1 -f bundles/prod-1-3.sql \"$DATABASE_URL\""
                .into(),
        };
        let report = |status, bundle, blockers| ExportReport {
            schema_version: 1,
            environment: "prod",
            mode: Mode::ExportOnly,
            status,
            bundle,
            blockers,
            warnings: &[],
        };
        insta::assert_snapshot!(export_text(&report("exported", Some(files), &[])), @r#"
        wrote bundles/prod-1-3.sql  (2 migrations, 1 → 3, bundle bde86600a9ce5920)
              bundles/prod-1-3.manifest.json
        sha256 abababababababababababababababababababababababababababababababab

        apply it with a client that stops at the first error:
          psql -X -v ON_ERROR_STOP=1 -f bundles/prod-1-3.sql "$DATABASE_URL"
        "#);
        insta::assert_snapshot!(export_text(&report("nothing_to_do", None, &[])), @"'prod' is up to date: no bundle to export.");
        let blockers = [crate::core::plan::Blocker::Drifted {
            version: "2".into(),
            file: "migrations/2_orders.sql".into(),
            today: "cd".repeat(32),
            recorded: "ef".repeat(32),
        }];
        insta::assert_snapshot!(export_text(&report("refused", None, &blockers)), @"
        refused: 'prod' has drift or failed runs before the target; no bundle was written:
          2 drifted: migrations/2_orders.sql is now cdcdcdcdcdcd, was efefefefefef when applied
        Resolve it, or go ahead anyway with --allow-drift (drift).
        ");
        let refused = [crate::core::plan::Blocker::Refused {
            version: "2".into(),
            file: "migrations/2_orders.sql".into(),
            line: 3,
            reason:
                "a line starting with `.`: the sqlite3 shell would run `.shell id` as a command"
                    .into(),
        }];
        insta::assert_snapshot!(export_text(&report("refused", None, &refused)), @"
        refused: 'prod' has migrations that cannot go into a bundle; no bundle was written:
          migrations/2_orders.sql:3: a line starting with `.`: the sqlite3 shell would run `.shell id` as a command
        Fix the migration: no flag waives this.
        ");
    }

    #[test]
    fn refused_modes() {
        let c = config();
        insta::assert_snapshot!(refused_mode(&c.environments[1]), @r#"refused: environment 'staging' is export_only (chosen from its name): envgate never writes to it; your own pipeline applies its migrations. Export a bundle for it with `envgate export --env staging`, or set mode = "managed" for it in envgate.toml if envgate should apply there."#);
        insta::assert_snapshot!(refused_mode(&c.environments[2]), @r#"refused: environment 'prod' is export_only: envgate never writes to it; your own pipeline applies its migrations. Export a bundle for it with `envgate export --env prod`, or set mode = "managed" for it in envgate.toml if envgate should apply there."#);
    }

    #[test]
    fn pull_request_comments() {
        let view = |preview: bool, note: bool| {
            serde_json::json!({
                "marker": "<!-- envgate:pr -->",
                "title": "1 drifted · 3 pending",
                "sha": "856ddfaa6247bf035ddf57629acb524383fb293f",
                "envs": [{"name": "dev", "mode": "managed"}, {"name": "prod", "mode": "export_only"}],
                "new": [{"label": "4_trash", "states": ["pending", "pending"]}],
                "preview": preview.then(|| serde_json::json!({"env": "prod", "file": "prod-1-4.sql", "sql": "-- envgate bundle …\nCREATE TABLE trash (id int);", "fence": "```", "added": ["4_trash"], "earlier": ["2_tickets", "3_status"]})),
                "preview_note": note.then_some("No bundle preview: prod could not be read (sqlite prod.db: no database file)."),
                "matrix": "| Migration | dev |\n|---|---|\n| `4_trash` | pending |\n",
            })
        };
        insta::assert_snapshot!(pr_comment(&view(true, false)), @"
        <!-- envgate:pr -->
        ### envgate · 1 drifted · 3 pending

        This pull request adds 1 migration:

        | Migration | dev<br>`managed` | prod<br>`export_only` |
        |---|---|---|
        | `4_trash` | pending | pending |

        <details><summary>Bundle for <b>prod</b> (export_only): <code>prod-1-4.sql</code></summary>

        What prod would receive at this commit: 3 migrations, of which this request adds 1 (`4_trash`) and 2 come from earlier changes not yet there (`2_tickets`, `3_status`).

        ```sql
        -- envgate bundle …
        CREATE TABLE trash (id int);
        ```

        </details>

        <details><summary>Every migration in every environment</summary>

        | Migration | dev |
        |---|---|
        | `4_trash` | pending |

        </details>

        <sub>envgate · commit 856ddfa · this comment is updated on every push</sub>
        ");
        insta::assert_snapshot!(pr_comment(&view(false, true)), @"
        <!-- envgate:pr -->
        ### envgate · 1 drifted · 3 pending

        This pull request adds 1 migration:

        | Migration | dev<br>`managed` | prod<br>`export_only` |
        |---|---|---|
        | `4_trash` | pending | pending |

        No bundle preview: prod could not be read (sqlite prod.db: no database file).

        <details><summary>Every migration in every environment</summary>

        | Migration | dev |
        |---|---|
        | `4_trash` | pending |

        </details>

        <sub>envgate · commit 856ddfa · this comment is updated on every push</sub>
        ");
        let nothing_new = serde_json::json!({
            "marker": "<!-- envgate:pr -->", "title": "all applied", "sha": "abc",
            "envs": [{"name": "dev", "mode": "managed"}], "new": [], "preview": null,
            "preview_note": null, "matrix": "| Migration | dev |\n|---|---|\n",
        });
        insta::assert_snapshot!(pr_comment(&nothing_new), @"
        <!-- envgate:pr -->
        ### envgate · all applied

        This pull request adds no migrations.

        <details><summary>Every migration in every environment</summary>

        | Migration | dev |
        |---|---|

        </details>

        <sub>envgate · commit abc · this comment is updated on every push</sub>
        ");
    }

    #[test]
    fn releases_and_their_sections() {
        let release = serde_json::json!({
            "tag": "v2.4.0", "explicit": false, "first": false, "prerelease": false,
            "migrations": [
                {"id": "2", "name": "orders", "file": "migrations/2_orders.sql", "sha256": "ab".repeat(32),
                 "states": [{"environment": "dev", "state": "applied"}, {"environment": "prod", "state": "pending"}]},
            ],
            "warnings": ["2 was edited after v2.3.0"],
            "problem": null,
            "progress": [{"environment": "dev", "applied": 1, "total": 1, "reachable": true},
                         {"environment": "prod", "applied": 0, "total": 1, "reachable": false}],
        });
        insta::assert_snapshot!(releases_text(&[&release], "v*"), @"
        v2.4.0  1 migration  dev 1/1  prod ?/1
          2_orders
          warning: 2 was edited after v2.3.0
        ");
        insta::assert_snapshot!(releases_text(&Vec::<serde_json::Value>::new(), "v*"), @"no releases: no git tag matches 'v*' (set `release_tags` in envgate.toml).");
        let show = serde_json::json!({
            "release": release,
            "bundles": [{"environment": "prod", "bundle_id": "bde8", "file": "prod-v2.4.0.sql", "bundle_sha256": "cd".repeat(32), "blocked": false, "waits_for": ["staging (1/2)"], "sql": "CREATE TABLE orders (id int);"}],
        });
        insta::assert_snapshot!(release_text(&show, false), @"
        release v2.4.0: 1 migration added since the previous release
          2_orders  sha256 abababababababababababababababababababababababababababababababab  migrations/2_orders.sql

        progress:
          dev   1/1 applied
          prod  could not be read

        warnings:
          2 was edited after v2.3.0

        bundles the export_only environments would receive when promoted:
          prod  prod-v2.4.0.sql  bundle bde8  sha256 cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd  (not yet: promotion waits for staging (1/2))
        (--sql prints them in full)
        ");
        insta::assert_snapshot!(release_text(&show, true), @"
        release v2.4.0: 1 migration added since the previous release
          2_orders  sha256 abababababababababababababababababababababababababababababababab  migrations/2_orders.sql

        progress:
          dev   1/1 applied
          prod  could not be read

        warnings:
          2 was edited after v2.3.0

        bundles the export_only environments would receive when promoted:
          prod  prod-v2.4.0.sql  bundle bde8  sha256 cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd  (not yet: promotion waits for staging (1/2))

        CREATE TABLE orders (id int);
        ");
        let section = |problem: Option<&str>,
                       assets: serde_json::Value,
                       unpublished: serde_json::Value| {
            release_section(&serde_json::json!({
                "open": "<!-- envgate:release -->", "close": "<!-- /envgate:release -->",
                "release": release, "problem": problem, "assets": assets, "unpublished": unpublished,
            }))
        };
        let assets = serde_json::json!([
            {"name": "prod-v2.4.0.sql", "fate": "replaced", "was": "9f86d081884c"},
            {"name": "prod-v2.4.0.manifest.json", "fate": "replaced", "was": null},
            {"name": "stage-v2.4.0.sql", "fate": "kept", "was": null},
        ]);
        let unpublished = serde_json::json!([["qa", "403 Forbidden: cannot replace <x> | y"]]);
        insta::assert_snapshot!(section(None, assets, unpublished), @r"
        <!-- envgate:release -->
        ### Database migrations

        1 migration in v2.4.0: `2_orders`.

        | Environment | Progress |
        |---|---|
        | dev | 1/1 applied |
        | prod | could not be read |

        Bundles for the export_only environments, attached to this release:
        - `prod-v2.4.0.sql` — replaced: the tag's bundle changed (was sha256 `9f86d081884c…`)
        - `prod-v2.4.0.manifest.json` — replaced: the tag's bundle changed
        - `stage-v2.4.0.sql`

        Not attached yet:
        - qa: 403 Forbidden: cannot replace &lt;x&gt; \| y

        <sub>envgate · updated when the tag is pushed or the release published</sub>
        <!-- /envgate:release -->
        ");
        insta::assert_snapshot!(section(Some("v2.4.0 adds no migration file: <a> | b"), serde_json::json!([]), serde_json::json!([])), @r"
        <!-- envgate:release -->
        ### Database migrations

        ⚠️ v2.4.0 adds no migration file: &lt;a&gt; \| b

        1 migration in v2.4.0: `2_orders`.

        | Environment | Progress |
        |---|---|
        | dev | 1/1 applied |
        | prod | could not be read |

        <sub>envgate · updated when the tag is pushed or the release published</sub>
        <!-- /envgate:release -->
        ");
    }

    #[test]
    fn audit_tables() {
        use crate::core::audit::{Entry, seal_after};
        let first = seal_after(
            None,
            Entry {
                at: "2026-11-20T10:00:00Z".into(),
                action: "apply".into(),
                actor: "alice".into(),
                environment: Some("dev".into()),
                migrations: vec!["1".into(), "2".into()],
                outcome: "ok".into(),
                actor_source: Some(
                    "github-actions: https://github.com/acme/shop/actions/runs/1".into(),
                ),
                ..Entry::default()
            },
            None,
        );
        let second = seal_after(
            Some((first.seq, &first.hash)),
            Entry {
                at: "2026-11-20T10:05:00Z".into(),
                action: "export".into(),
                actor: "bob".into(),
                environment: Some("prod".into()),
                release: Some("v2.4.0".into()),
                migrations: vec!["2".into()],
                bundle_sha256: Some("ab".repeat(32)),
                outcome: "refused".into(),
                error: Some("drift".into()),
                details: Some("reason: hotfix".into()),
                actor_source: Some("unverified: --actor".into()),
                ephemeral: true,
                repository: None,
            },
            None,
        );
        insta::assert_snapshot!(audit_text(&[first, second.clone()], false), @"
        seq  at                    action  actor  env   release  outcome  what
        1    2026-11-20T10:00:00Z  apply   alice  dev   -        ok       1 2
        2    2026-11-20T10:05:00Z  export  bob*   prod  v2.4.0   refused  2 bundle abababababab reason: hotfix error: drift (ephemeral store)

        * unverified: the name is the person's own claim (--actor, the OS user or a commit's author).
        ");
        insta::assert_snapshot!(audit_text(&[], true), @"no audit records match.");
        let v = |keyed_proven, keyed_unproven, plain| crate::core::audit::Verified {
            records: 2,
            head: Some(second.head()),
            keyed_proven,
            keyed_unproven,
            plain,
        };
        insta::assert_snapshot!(audit_verified(&v(0, 0, 2), false, None), @"
        audit trail intact: 2 records, chained from the first to #2.
        - 2 plain records (sealed without a key): anyone who can write the control store could have recomputed them.
        head: 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82
        Publish the head somewhere the store's writers cannot change (envgate puts it in check runs and release notes); `envgate audit verify --expect 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82` later shows whether the trail was cut short or rewritten since.
        ");
        insta::assert_snapshot!(audit_verified(&v(1, 0, 1), true, Some(&second.head())), @"
        audit trail intact: 2 records, chained from the first to #2.
        - 1 keyed record proven with ENVGATE_AUDIT_KEY: nobody without the key could have written or rewritten it.
        - 1 plain record (sealed without a key, before it was set): anyone who can write the control store could have recomputed it.
        - the published head 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82 is on the chain: nothing up to it was cut off or rewritten.
        head: 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82
        Publish the head somewhere the store's writers cannot change (envgate puts it in check runs and release notes); `envgate audit verify --expect 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82` later shows whether the trail was cut short or rewritten since.
        ");
        insta::assert_snapshot!(audit_verified(&v(0, 2, 0), false, None), @"
        audit trail intact: 2 records, chained from the first to #2.
        - 2 keyed records linked, but their content is not proven: set ENVGATE_AUDIT_KEY to prove them.
        head: 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82
        Publish the head somewhere the store's writers cannot change (envgate puts it in check runs and release notes); `envgate audit verify --expect 2:0fd12b2f2daf0f7a74f93b529e508c4f39c075d7ad7421ecd248ac2fa7858d82` later shows whether the trail was cut short or rewritten since.
        ");
        let none = crate::core::audit::Verified {
            records: 0,
            head: None,
            keyed_proven: 0,
            keyed_unproven: 0,
            plain: 0,
        };
        insta::assert_snapshot!(audit_verified(&none, false, None), @"audit trail: no records yet.");
    }
}
