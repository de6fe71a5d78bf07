//! The matrix: every migration × every environment.
//!
//! A pure function of the discovered migrations and what each environment's
//! ledger says (or why it could not be read).

use super::checksum::ContentHash;
use super::ledger::LedgerRow;
use super::migration::Migration;
use super::version::Version;
use serde::Serialize;
use std::collections::BTreeMap;

/// The state of one (migration, environment) cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Recorded as applied with today's content.
    Applied,
    /// In the repository, not in the ledger.
    Pending,
    /// Applied, but the file's content changed since.
    Drifted,
    /// The ledger records a failed run.
    Failed,
    /// In the ledger, not in the repository.
    Missing,
    /// Neither in the repository nor in this ledger (the row exists because
    /// another environment's ledger has it).
    Absent,
    /// The environment could not be read.
    Unreachable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Drifted => "drifted",
            State::Failed => "failed",
            State::Missing => "missing",
            State::Absent => "absent",
            State::Unreachable => "unreachable",
        }
    }

    /// Whether the ledger says the migration ran successfully.
    fn is_applied(self) -> bool {
        matches!(self, State::Applied | State::Drifted | State::Missing)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub state: State,
    pub applied_at: Option<String>,
    /// The hash the ledger recorded (bare hex for envgate's own algorithm).
    pub applied_hash: Option<String>,
    /// Pending, but older than the newest migration applied here.
    pub out_of_order: bool,
}

impl Cell {
    fn new(state: State) -> Cell {
        Cell {
            state,
            applied_at: None,
            applied_hash: None,
            out_of_order: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    /// The identifier the ledger uses.
    pub version: String,
    pub name: String,
    /// The file, when the repository has the migration.
    pub file: Option<String>,
    pub hash: Option<ContentHash>,
    /// One per environment, in the order the environments were given.
    pub cells: Vec<Cell>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub applied: usize,
    pub pending: usize,
    pub drifted: usize,
    pub failed: usize,
    pub missing: usize,
}

#[derive(Clone, Debug)]
pub struct EnvColumn {
    pub name: String,
    /// Why the environment could not be read (credentials already masked).
    pub error: Option<String>,
    pub counts: Counts,
}

impl EnvColumn {
    pub fn reachable(&self) -> bool {
        self.error.is_none()
    }
}

/// What one environment's ledger said, or why it could not be read.
pub struct EnvLedger<'a> {
    pub name: &'a str,
    pub rows: Result<&'a [LedgerRow], &'a str>,
}

#[derive(Clone, Debug)]
pub struct Matrix {
    pub envs: Vec<EnvColumn>,
    /// In version order: the repository's migrations merged with those only
    /// ledgers know.
    pub rows: Vec<Row>,
}

/// "applied in `from`, pending in `to`": how far one environment is ahead of
/// the next in promotion order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub count: usize,
}

/// Where a row sorts: by version when the ledger's identifier is one, else
/// after all versions by text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum OrderKey {
    Version(Version),
    Other(String),
}

impl OrderKey {
    fn of(id: &str) -> OrderKey {
        Version::parse(id).map_or_else(|| OrderKey::Other(id.to_owned()), OrderKey::Version)
    }
}

/// Builds the matrix.
pub fn compute(migrations: &[Migration], envs: &[EnvLedger<'_>]) -> Matrix {
    let n = envs.len();
    let initial = |e: &EnvLedger<'_>, reachable_state: State| match e.rows {
        Ok(_) => Cell::new(reachable_state),
        Err(_) => Cell::new(State::Unreachable),
    };
    let mut rows: Vec<Row> = migrations
        .iter()
        .map(|m| Row {
            version: m.id().to_owned(),
            name: m.name.clone(),
            file: Some(m.up.path.clone()),
            hash: Some(m.up.hash),
            cells: envs.iter().map(|e| initial(e, State::Pending)).collect(),
        })
        .collect();
    let mut only_in_ledgers: BTreeMap<OrderKey, Row> = BTreeMap::new();

    for (e, env) in envs.iter().enumerate() {
        let Ok(ledger) = env.rows else { continue };
        for lrow in ledger {
            let key = OrderKey::of(&lrow.version);
            let found = match &key {
                OrderKey::Version(v) => migrations.binary_search_by(|m| m.version.cmp(v)).ok(),
                OrderKey::Other(_) => None,
            };
            let (row, today) = match found {
                Some(i) => (&mut rows[i], Some(migrations[i].up.hash)),
                None => {
                    let row = only_in_ledgers.entry(key).or_insert_with(|| Row {
                        version: lrow.version.clone(),
                        name: lrow.name.clone(),
                        file: None,
                        hash: None,
                        cells: envs.iter().map(|e| initial(e, State::Absent)).collect(),
                    });
                    (row, None)
                }
            };
            let state = match today {
                _ if !lrow.success => State::Failed,
                None => State::Missing,
                Some(h) if lrow.hash.matches(&h) => State::Applied,
                Some(_) => State::Drifted,
            };
            row.cells[e] = Cell {
                state,
                applied_at: lrow.applied_at.clone(),
                applied_hash: Some(lrow.hash.display()),
                out_of_order: false,
            };
        }
    }

    let mut rows = merge(rows, only_in_ledgers);
    let mut columns = Vec::with_capacity(n);
    for (e, env) in envs.iter().enumerate() {
        if let Some(newest) = rows.iter().rposition(|r| r.cells[e].state.is_applied()) {
            for row in &mut rows[..newest] {
                let cell = &mut row.cells[e];
                cell.out_of_order = cell.state == State::Pending;
            }
        }
        let mut counts = Counts::default();
        for row in &rows {
            match row.cells[e].state {
                State::Applied => counts.applied += 1,
                State::Pending => counts.pending += 1,
                State::Drifted => counts.drifted += 1,
                State::Failed => counts.failed += 1,
                State::Missing => counts.missing += 1,
                State::Absent | State::Unreachable => {}
            }
        }
        columns.push(EnvColumn {
            name: env.name.to_owned(),
            error: env.rows.err().map(str::to_owned),
            counts,
        });
    }
    Matrix {
        envs: columns,
        rows,
    }
}

/// Merges the repository's rows (already in version order) with the rows
/// only ledgers know.
fn merge(rows: Vec<Row>, extra: BTreeMap<OrderKey, Row>) -> Vec<Row> {
    if extra.is_empty() {
        return rows;
    }
    let mut out = Vec::with_capacity(rows.len() + extra.len());
    let mut extra = extra.into_iter().peekable();
    for row in rows {
        let key = OrderKey::of(&row.version);
        while extra.peek().is_some_and(|(k, _)| *k < key) {
            out.push(extra.next().expect("peeked").1);
        }
        out.push(row);
    }
    out.extend(extra.map(|(_, r)| r));
    out
}

impl Matrix {
    /// Whether any cell is drifted, failed or missing.
    pub fn has_problems(&self) -> bool {
        self.envs
            .iter()
            .any(|e| e.counts.drifted + e.counts.failed + e.counts.missing > 0)
    }

    pub fn any_unreachable(&self) -> bool {
        self.envs.iter().any(|e| !e.reachable())
    }

    /// For each pair of neighbouring reachable environments in promotion
    /// order, how many migrations the first has applied that the second has
    /// pending.
    pub fn gaps(&self) -> Vec<Gap> {
        let reachable: Vec<usize> = (0..self.envs.len())
            .filter(|&e| self.envs[e].reachable())
            .collect();
        reachable
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                let count = self
                    .rows
                    .iter()
                    .filter(|r| r.cells[a].state.is_applied() && r.cells[b].state == State::Pending)
                    .count();
                Gap {
                    from: self.envs[a].name.clone(),
                    to: self.envs[b].name.clone(),
                    count,
                }
            })
            .filter(|g| g.count > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::RecordedHash;
    use crate::core::migration::{SourceFile, discover};

    fn migrations(specs: &[(&str, &str)]) -> Vec<Migration> {
        let files = specs
            .iter()
            .map(|(name, body)| SourceFile {
                path: format!("migrations/{name}.sql"),
                bytes: body.as_bytes().to_vec(),
            })
            .collect();
        discover(files).unwrap().migrations
    }

    fn row(version: &str, body: &str) -> LedgerRow {
        LedgerRow {
            version: version.into(),
            name: "n".into(),
            hash: RecordedHash::Sha256Lf(ContentHash::of(body.as_bytes())),
            applied_at: Some("2026-04-18T10:00:00.000Z".into()),
            success: true,
        }
    }

    fn states(m: &Matrix, e: usize) -> Vec<&'static str> {
        m.rows.iter().map(|r| r.cells[e].state.as_str()).collect()
    }

    #[test]
    fn every_state() {
        let ms = migrations(&[
            ("1_users", "create users"),
            ("2_tickets", "create tickets"),
            ("3_trash", "add trash"),
            ("5_idx", "create index"),
        ]);
        let dev = vec![
            row("1", "create users"),
            row("2", "create tickets (edited later)"),
            LedgerRow {
                success: false,
                ..row("3", "add trash")
            },
            row("4", "only in dev's ledger"),
            row("5", "create index"),
        ];
        let prod = vec![row("1", "create users")];
        let m = compute(
            &ms,
            &[
                EnvLedger {
                    name: "dev",
                    rows: Ok(&dev),
                },
                EnvLedger {
                    name: "prod",
                    rows: Ok(&prod),
                },
                EnvLedger {
                    name: "eu",
                    rows: Err("could not connect"),
                },
            ],
        );
        assert_eq!(
            m.rows
                .iter()
                .map(|r| r.version.as_str())
                .collect::<Vec<_>>(),
            ["1", "2", "3", "4", "5"]
        );
        assert_eq!(
            states(&m, 0),
            ["applied", "drifted", "failed", "missing", "applied"]
        );
        assert_eq!(
            states(&m, 1),
            ["applied", "pending", "pending", "absent", "pending"]
        );
        assert_eq!(states(&m, 2), ["unreachable"; 5]);
        assert_eq!(m.rows[3].file, None);
        assert_eq!(m.rows[3].hash, None);
        assert_eq!(
            m.envs[0].counts,
            Counts {
                applied: 2,
                pending: 0,
                drifted: 1,
                failed: 1,
                missing: 1
            }
        );
        assert_eq!(
            m.envs[1].counts,
            Counts {
                applied: 1,
                pending: 3,
                ..Counts::default()
            }
        );
        assert_eq!(m.envs[2].counts, Counts::default());
        assert_eq!(m.envs[2].error.as_deref(), Some("could not connect"));
        assert!(m.has_problems());
        assert!(m.any_unreachable());
        let drifted = &m.rows[1].cells[0];
        assert_eq!(
            drifted.applied_hash.as_deref(),
            Some(
                ContentHash::of(b"create tickets (edited later)")
                    .hex()
                    .as_str()
            )
        );
        assert_eq!(
            drifted.applied_at.as_deref(),
            Some("2026-04-18T10:00:00.000Z")
        );
    }

    #[test]
    fn pending_older_than_newest_applied_is_out_of_order() {
        let ms = migrations(&[("1_a", "a"), ("2_b", "b"), ("3_c", "c"), ("4_d", "d")]);
        let env = vec![row("1", "a"), row("3", "c")];
        let m = compute(
            &ms,
            &[EnvLedger {
                name: "dev",
                rows: Ok(&env),
            }],
        );
        let ooo: Vec<bool> = m.rows.iter().map(|r| r.cells[0].out_of_order).collect();
        assert_eq!(ooo, [false, true, false, false]);
    }

    #[test]
    fn empty_ledger_is_all_pending_and_no_problem() {
        let ms = migrations(&[("1_a", "a"), ("2_b", "b")]);
        let m = compute(
            &ms,
            &[EnvLedger {
                name: "dev",
                rows: Ok(&[]),
            }],
        );
        assert_eq!(states(&m, 0), ["pending", "pending"]);
        assert!(!m.has_problems());
        assert!(!m.any_unreachable());
        assert!(m.rows.iter().all(|r| !r.cells[0].out_of_order));
    }

    #[test]
    fn versions_match_whatever_their_zero_padding() {
        let ms = migrations(&[("20260418_001_a", "a")]);
        let env = vec![row("20260418_1", "a")];
        let m = compute(
            &ms,
            &[EnvLedger {
                name: "dev",
                rows: Ok(&env),
            }],
        );
        assert_eq!(states(&m, 0), ["applied"]);
    }

    #[test]
    fn ledger_ids_that_are_not_versions_sort_last() {
        let ms = migrations(&[("1_a", "a")]);
        let env = vec![row("zz-manual", "x"), row("1", "a")];
        let m = compute(
            &ms,
            &[EnvLedger {
                name: "dev",
                rows: Ok(&env),
            }],
        );
        assert_eq!(
            m.rows
                .iter()
                .map(|r| r.version.as_str())
                .collect::<Vec<_>>(),
            ["1", "zz-manual"]
        );
        assert_eq!(states(&m, 0), ["applied", "missing"]);
    }

    #[test]
    fn gaps_between_neighbouring_environments() {
        let ms = migrations(&[("1_a", "a"), ("2_b", "b"), ("3_c", "c")]);
        let dev = vec![row("1", "a"), row("2", "b"), row("3", "c")];
        let staging = vec![row("1", "a"), row("2", "b")];
        let prod = vec![row("1", "a")];
        let m = compute(
            &ms,
            &[
                EnvLedger {
                    name: "dev",
                    rows: Ok(&dev),
                },
                EnvLedger {
                    name: "staging",
                    rows: Ok(&staging),
                },
                EnvLedger {
                    name: "broken",
                    rows: Err("x"),
                },
                EnvLedger {
                    name: "prod",
                    rows: Ok(&prod),
                },
            ],
        );
        assert_eq!(
            m.gaps(),
            [
                Gap {
                    from: "dev".into(),
                    to: "staging".into(),
                    count: 1
                },
                Gap {
                    from: "staging".into(),
                    to: "prod".into(),
                    count: 1
                },
            ]
        );
    }
}
