//! Alembic: revision files (`versions/*.py`) that declare `revision` and
//! `down_revision` (none, one, or a tuple for a merge); ledger
//! `alembic_version(version_num)` holding the current head(s). A revision is
//! applied when it is a stored head or an ancestor of one. Migrations are
//! ordered by the revision graph (parents first). No checksum.

use super::python;
use super::{Found, Layout, Order, TextRow, assemble, base, col, ignored, plain_row};
use crate::core::ledger::LedgerRow;
use crate::core::migration::{Discovery, DiscoveryError, Migration, SourceFile};
use std::collections::{BTreeSet, HashMap, HashSet};

pub fn candidate(rel: &str) -> bool {
    let file = base(rel);
    file.ends_with(".py") && !file.starts_with("__") && file != "env.py"
}

struct Rev {
    id: String,
    parents: Vec<String>,
    file: SourceFile,
}

/// The parents of a revision, from its file.
pub fn parents_of(text: &str, path: &str) -> Result<Vec<String>, DiscoveryError> {
    let invalid = |message: String| DiscoveryError::Invalid {
        path: path.to_owned(),
        message,
    };
    match python::assignment(text, "down_revision") {
        None => Err(invalid("no `down_revision`".to_owned())),
        Some(e) if python::is_none(e) => Ok(Vec::new()),
        Some(e) => {
            python::strings(e).map_err(|m| invalid(format!("cannot read `down_revision`: {m}")))
        }
    }
}

pub fn discover(files: Vec<SourceFile>, _layout: &Layout<'_>) -> Result<Discovery, DiscoveryError> {
    let mut revs = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        let text = std::str::from_utf8(&f.bytes).map_err(|e| DiscoveryError::NotUtf8 {
            path: f.path.clone(),
            offset: e.valid_up_to(),
        })?;
        let Some(expr) = python::assignment(text, "revision") else {
            skipped.push(ignored(
                &f.path,
                "no `revision =`: not an Alembic revision file",
            ));
            continue;
        };
        let id = python::strings(expr)
            .ok()
            .and_then(|s| s.into_iter().next())
            .ok_or_else(|| DiscoveryError::Invalid {
                path: f.path.clone(),
                message: "cannot read `revision`".to_owned(),
            })?;
        let parents = parents_of(text, &f.path)?;
        revs.push(Rev {
            id,
            parents,
            file: f,
        });
    }
    let index: HashMap<&str, usize> = revs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    for r in &revs {
        if let Some(missing) = r.parents.iter().find(|p| !index.contains_key(p.as_str())) {
            return Err(DiscoveryError::Invalid {
                path: r.file.path.clone(),
                message: format!("down_revision '{missing}' is not in the repository"),
            });
        }
    }
    let is_parent: HashSet<&str> = revs
        .iter()
        .flat_map(|r| r.parents.iter().map(String::as_str))
        .collect();
    let mut heads: Vec<&Rev> = revs
        .iter()
        .filter(|r| !is_parent.contains(r.id.as_str()))
        .collect();
    heads.sort_by(|a, b| a.file.path.cmp(&b.file.path));
    if heads.len() > 1 {
        let list: Vec<String> = heads
            .iter()
            .map(|h| format!("{} ({})", h.id, h.file.path))
            .collect();
        return Err(DiscoveryError::Invalid {
            path: heads[1].file.path.clone(),
            message: format!(
                "the revision graph has {} heads: {}; merge them (`alembic merge heads`)",
                heads.len(),
                list.join(", ")
            ),
        });
    }
    // Parents first; ties broken by revision id.
    let mut indegree: Vec<usize> = revs.iter().map(|r| r.parents.len()).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); revs.len()];
    for (i, r) in revs.iter().enumerate() {
        for p in &r.parents {
            children[index[p.as_str()]].push(i);
        }
    }
    let mut ready: BTreeSet<(String, usize)> = (0..revs.len())
        .filter(|&i| indegree[i] == 0)
        .map(|i| (revs[i].id.clone(), i))
        .collect();
    let mut order = Vec::new();
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.insert((revs[c].id.clone(), c));
            }
        }
    }
    if order.len() != revs.len() {
        let stuck = (0..revs.len())
            .find(|i| !order.contains(i))
            .expect("a revision left");
        return Err(DiscoveryError::Invalid {
            path: revs[stuck].file.path.clone(),
            message: "the revision graph has a cycle".to_owned(),
        });
    }
    let mut position = vec![0u32; revs.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos as u32;
    }
    let found = revs
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let name = base(&r.file.path)
                .trim_end_matches(".py")
                .split_once('_')
                .map_or("", |(_, n)| n)
                .to_owned();
            Found {
                id: r.id,
                order: Order::Position(position[i]),
                name,
                up: r.file,
                down: None,
                repeatable: false,
                checksums: Vec::new(),
            }
        })
        .collect();
    assemble(found, skipped)
}

/// The stored heads and every ancestor of them.
pub fn ledger(rows: Vec<TextRow>, migrations: &[Migration]) -> Result<Vec<LedgerRow>, String> {
    let parents: HashMap<&str, Vec<String>> = migrations
        .iter()
        .map(|m| {
            (
                m.id(),
                parents_of(&m.up.sql, &m.up.path).unwrap_or_default(),
            )
        })
        .collect();
    let mut applied: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<String> = Vec::new();
    for r in &rows {
        stack.push(col(r, 0, "version_num")?.to_owned());
    }
    while let Some(rev) = stack.pop() {
        if !seen.insert(rev.clone()) {
            continue;
        }
        if let Some(ps) = parents.get(rev.as_str()) {
            stack.extend(ps.iter().cloned());
        }
        applied.push(rev);
    }
    Ok(applied
        .into_iter()
        .map(|id| plain_row(id, String::new(), None))
        .collect())
}
