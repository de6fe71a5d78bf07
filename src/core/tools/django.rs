//! Django: `<app>/migrations/<name>.py` (names starting with `_` or `~`
//! skipped), keyed by (app label, name) — written `app.name` — and ordered
//! by the `dependencies` each file declares; ledger `django_migrations(id,
//! app, name, applied)`, no unique key. A squashed migration (`replaces`)
//! counts as applied when every migration it replaces is recorded, and
//! recorded migrations it replaces are not reported missing. No checksum.

use super::python;
use super::{Found, Layout, Order, TextRow, assemble, col, opt, plain_row, time_sql};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, Migration, SourceFile};
use crate::core::sql::Dialect;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// (app label, name) of `…/<app>/migrations/<name>.py`.
fn parse(rel: &str) -> Option<(&str, &str)> {
    let mut parts = rel.rsplit('/');
    let file = parts.next()?;
    if parts.next()? != "migrations" {
        return None;
    }
    let app = parts.next()?;
    let name = file.strip_suffix(".py")?;
    let ok = !name.starts_with('_') && !name.starts_with('~') && !app.starts_with('.');
    ok.then_some((app, name))
}

pub fn candidate(rel: &str) -> bool {
    parse(rel).is_some()
}

struct Parsed {
    app: String,
    name: String,
    deps: Vec<(String, String)>,
    file: SourceFile,
}

fn pairs(
    file: &str,
    expr: Option<&str>,
    what: &str,
) -> Result<Vec<(String, String)>, DiscoveryError> {
    let Some(expr) = expr else {
        return Ok(Vec::new());
    };
    let strings = python::strings(expr).map_err(|m| DiscoveryError::Invalid {
        path: file.to_owned(),
        message: format!("cannot read `{what}`: {m}"),
    })?;
    if strings.len() % 2 != 0 {
        return Err(DiscoveryError::Invalid {
            path: file.to_owned(),
            message: format!("cannot read `{what}`: expected (app, name) pairs"),
        });
    }
    Ok(strings
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect())
}

pub fn discover(files: Vec<SourceFile>, layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut parsed = Vec::new();
    for f in files {
        let Some((app, name)) = parse(layout.rel(&f.path)) else {
            continue;
        };
        let (app, name) = (app.to_owned(), name.to_owned());
        let text = std::str::from_utf8(&f.bytes).map_err(|e| DiscoveryError::NotUtf8 {
            path: f.path.clone(),
            offset: e.valid_up_to(),
        })?;
        if !text.contains("class Migration") {
            return Err(DiscoveryError::Invalid {
                path: f.path.clone(),
                message: "not a Django migration: no `class Migration`".to_owned(),
            });
        }
        let deps = pairs(
            &f.path,
            python::assignment(text, "dependencies"),
            "dependencies",
        )?;
        // Read now so that a malformed one is reported with its file.
        pairs(&f.path, python::assignment(text, "replaces"), "replaces")?;
        parsed.push(Parsed {
            app,
            name,
            deps,
            file: f,
        });
    }
    // Topological order, ties broken by (app, name).
    let key = |p: &Parsed| (p.app.clone(), p.name.clone());
    let index: HashMap<(String, String), usize> = parsed
        .iter()
        .enumerate()
        .map(|(i, p)| (key(p), i))
        .collect();
    let mut by_app: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &parsed {
        by_app.entry(&p.app).or_default().push(&p.name);
    }
    let resolve = |(app, name): &(String, String)| -> Option<usize> {
        match name.as_str() {
            "__first__" => by_app
                .get(app.as_str())
                .and_then(|n| n.iter().min())
                .and_then(|n| index.get(&(app.clone(), n.to_string())).copied()),
            "__latest__" => by_app
                .get(app.as_str())
                .and_then(|n| n.iter().max())
                .and_then(|n| index.get(&(app.clone(), n.to_string())).copied()),
            _ => index.get(&(app.clone(), name.clone())).copied(),
        }
    };
    let mut indegree = vec![0usize; parsed.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parsed.len()];
    for (i, p) in parsed.iter().enumerate() {
        let mut seen = HashSet::new();
        for d in &p.deps {
            if let Some(j) = resolve(d).filter(|&j| j != i && seen.insert(j)) {
                indegree[i] += 1;
                children[j].push(i);
            }
        }
    }
    let mut ready: BTreeSet<((String, String), usize)> = (0..parsed.len())
        .filter(|&i| indegree[i] == 0)
        .map(|i| (key(&parsed[i]), i))
        .collect();
    let mut order = Vec::with_capacity(parsed.len());
    while let Some(first) = ready.pop_first() {
        let i = first.1;
        order.push(i);
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.insert((key(&parsed[c]), c));
            }
        }
    }
    if order.len() != parsed.len() {
        let stuck = parsed
            .iter()
            .enumerate()
            .find(|(i, _)| !order.contains(i))
            .map(|(_, p)| p.file.path.clone());
        return Err(DiscoveryError::Invalid {
            path: stuck.unwrap_or_default(),
            message: "circular dependencies between migrations".to_owned(),
        });
    }
    let mut position = vec![0u32; parsed.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos as u32;
    }
    let found = parsed
        .into_iter()
        .enumerate()
        .map(|(i, p)| Found {
            id: format!("{}.{}", p.app, p.name),
            order: Order::Position(position[i]),
            name: String::new(),
            up: p.file,
            down: None,
            repeatable: false,
            checksums: Vec::new(),
        })
        .collect();
    assemble(found, Vec::new())
}

pub fn select_sql(table: &str, dialect: Dialect) -> String {
    format!(
        "SELECT app, name, {} FROM {table} ORDER BY id",
        time_sql("applied", dialect)
    )
}

/// The migrations a squashed migration replaces, read from its file.
fn replaces(m: &Migration) -> Vec<String> {
    python::assignment(&m.up.sql, "replaces")
        .and_then(|e| python::strings(e).ok())
        .map(|s| {
            s.chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| format!("{}.{}", c[0], c[1]))
                .collect()
        })
        .unwrap_or_default()
}

pub fn ledger(rows: Vec<TextRow>, migrations: &[Migration]) -> Result<Vec<LedgerRow>, String> {
    let mut out: Vec<LedgerRow> = Vec::new();
    let mut recorded = HashSet::new();
    for r in &rows {
        let id = format!("{}.{}", col(r, 0, "app")?, col(r, 1, "name")?);
        if recorded.insert(id.clone()) {
            out.push(plain_row(id, col(r, 1, "name")?.to_owned(), opt(r, 2)));
        }
    }
    let in_repo: HashSet<&str> = migrations.iter().map(|m| m.id()).collect();
    for m in migrations {
        let replaced = replaces(m);
        if replaced.is_empty() {
            continue;
        }
        if !recorded.contains(m.id()) && replaced.iter().all(|r| recorded.contains(r)) {
            out.push(plain_row(m.id().to_owned(), m.name.clone(), None));
        }
        // Replaced migrations deleted from the repository are not missing.
        out.retain(|row| {
            !replaced.contains(&row.version) || in_repo.contains(row.version.as_str())
        });
    }
    Ok(out)
}
