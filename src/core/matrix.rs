//! The matrix: every migration × every environment.
//!
//! A pure function of the discovered migrations and what each environment's
//! ledger says (or why it could not be read).

use super::checksum::{ContentHash, RecordedHash};
use super::exported::{self, Exported};
use super::ledger::LedgerRow;
use super::migration::{ANY_CHECKSUM, Migration};
use super::version::Version;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell<'a> {
    pub state: State,
    /// The ledger's row for this migration, when there is one.
    pub ledger: Option<&'a LedgerRow>,
    /// For ledgers without checksums: what envgate saw when it first
    /// observed the migration applied here.
    pub observed: Option<&'a Observed>,
    /// Pending, but older than the newest migration applied here.
    pub out_of_order: bool,
    /// Pending again: a repeatable migration whose content changed.
    pub rerun: bool,
    /// Applied with a content accepted on purpose after it drifted.
    pub accepted: Option<&'a Accepted>,
    /// Applied by a bundle whose manifest lists another hash than the
    /// ledger holds (the bundle was edited): that hash, hex.
    pub tampered: Option<&'a str>,
}

/// The content hash of a migration when envgate first observed it applied
/// in an environment whose ledger records no checksum, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub hash: ContentHash,
    pub at: String,
}

/// Drift accepted on purpose: the content hash now accepted for a
/// migration in an environment, who accepted it, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub hash: ContentHash,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

impl<'a> Cell<'a> {
    fn new(state: State) -> Cell<'a> {
        Cell {
            state,
            ledger: None,
            observed: None,
            out_of_order: false,
            rerun: false,
            accepted: None,
            tampered: None,
        }
    }

    /// When the ledger says the migration was applied (RFC 3339).
    pub fn applied_at(&self) -> Option<&'a str> {
        self.ledger.and_then(|r| r.applied_at.as_deref())
    }

    /// The hash the ledger recorded.
    pub fn applied_hash(&self) -> Option<&'a RecordedHash> {
        self.ledger.map(|r| &r.hash)
    }
}

#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// The identifier the ledger uses.
    pub version: &'a str,
    pub name: &'a str,
    /// The file, when the repository has the migration.
    pub file: Option<&'a str>,
    pub hash: Option<ContentHash>,
    /// The checksum the environment's own tool would record for the file
    /// today, when envgate recomputes it.
    pub checksum: Option<&'a str>,
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
pub struct EnvColumn<'a> {
    pub name: &'a str,
    /// Why the environment could not be read (credentials already masked).
    pub error: Option<&'a str>,
    pub counts: Counts,
}

impl EnvColumn<'_> {
    pub fn reachable(&self) -> bool {
        self.error.is_none()
    }
}

/// What one environment's ledger said, or why it could not be read.
pub struct EnvLedger<'a> {
    pub name: &'a str,
    pub rows: Result<&'a [LedgerRow], &'a str>,
    /// First observations, by migration id, for ledgers without checksums.
    pub observed: Option<&'a HashMap<String, Observed>>,
    /// Drift accepted on purpose, by migration id.
    pub accepted: Option<&'a HashMap<String, Accepted>>,
    /// Bundles made for this environment, by bundle id.
    pub exported: Option<&'a HashMap<String, Exported>>,
}

impl<'a> EnvLedger<'a> {
    pub fn new(name: &'a str, rows: Result<&'a [LedgerRow], &'a str>) -> EnvLedger<'a> {
        EnvLedger {
            name,
            rows,
            observed: None,
            accepted: None,
            exported: None,
        }
    }
}

/// The matrix borrows from the migrations and ledgers it was computed from.
#[derive(Clone, Debug)]
pub struct Matrix<'a> {
    pub envs: Vec<EnvColumn<'a>>,
    /// In version order: the repository's migrations merged with those only
    /// ledgers know.
    pub rows: Vec<Row<'a>>,
    /// Row-major: `rows.len() × envs.len()`.
    cells: Vec<Cell<'a>>,
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

/// Where a ledger row lands: a repository migration, or a row only ledgers
/// know (by its index among those).
#[derive(Clone, Copy)]
enum Slot {
    Source(usize),
    Extra(usize),
}

/// Builds the matrix.
pub fn compute<'a>(migrations: &'a [Migration], envs: &[EnvLedger<'a>]) -> Matrix<'a> {
    let width = envs.len();
    // Ledgers almost always spell versions exactly as the files do: look
    // those up by text, and fall back to version order for the rest.
    let by_text: HashMap<&str, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id(), i))
        .collect();
    let mut extras: BTreeMap<OrderKey, usize> = BTreeMap::new();
    let mut extra_rows: Vec<&'a LedgerRow> = Vec::new();
    let mut placed: Vec<(usize, Slot, &'a LedgerRow)> = Vec::new();
    for (e, env) in envs.iter().enumerate() {
        let Ok(ledger) = env.rows else { continue };
        for lrow in ledger {
            let slot = match by_text.get(lrow.version.as_str()) {
                Some(&i) => Slot::Source(i),
                None => {
                    let key = OrderKey::of(&lrow.version);
                    let found = match &key {
                        OrderKey::Version(v) => {
                            migrations.binary_search_by(|m| m.version.cmp(v)).ok()
                        }
                        OrderKey::Other(_) => None,
                    };
                    match found {
                        Some(i) => Slot::Source(i),
                        None => Slot::Extra(*extras.entry(key).or_insert_with(|| {
                            extra_rows.push(lrow);
                            extra_rows.len() - 1
                        })),
                    }
                }
            };
            placed.push((e, slot, lrow));
        }
    }

    // The row order: repository migrations merged with the extras.
    let mut rows = Vec::with_capacity(migrations.len() + extra_rows.len());
    let mut source_pos = Vec::with_capacity(migrations.len());
    let mut extra_pos = vec![0; extra_rows.len()];
    let mut pending_extras = extras.into_iter().peekable();
    let mut is_extra = Vec::with_capacity(migrations.len() + extra_rows.len());
    let mut push_extra = |rows: &mut Vec<Row<'a>>, is_extra: &mut Vec<bool>, j: usize| {
        extra_pos[j] = rows.len();
        let r = extra_rows[j];
        rows.push(Row {
            version: &r.version,
            name: &r.name,
            file: None,
            hash: None,
            checksum: None,
        });
        is_extra.push(true);
    };
    for m in migrations {
        while let Some((_, j)) =
            pending_extras.next_if(|(k, _)| matches!(k, OrderKey::Version(v) if *v < m.version))
        {
            push_extra(&mut rows, &mut is_extra, j);
        }
        source_pos.push(rows.len());
        rows.push(Row {
            version: m.id(),
            name: &m.name,
            file: Some(&m.up.path),
            hash: Some(m.up.hash),
            checksum: m
                .tool_checksums
                .first()
                .map(String::as_str)
                .filter(|c| *c != ANY_CHECKSUM),
        });
        is_extra.push(false);
    }
    for (_, j) in pending_extras {
        push_extra(&mut rows, &mut is_extra, j);
    }

    let mut cells = Vec::with_capacity(rows.len() * width);
    for extra in &is_extra {
        cells.extend(envs.iter().map(|env| match (env.rows, extra) {
            (Err(_), _) => Cell::new(State::Unreachable),
            (Ok(_), false) => Cell::new(State::Pending),
            (Ok(_), true) => Cell::new(State::Absent),
        }));
    }
    for (e, slot, lrow) in placed {
        let (r, migration) = match slot {
            Slot::Source(i) => (source_pos[i], Some(&migrations[i])),
            Slot::Extra(j) => (extra_pos[j], None),
        };
        let observed = envs[e].observed.and_then(|o| o.get(&lrow.version));
        let accepted = envs[e].accepted.and_then(|a| a.get(&lrow.version));
        let mut used_acceptance = None;
        let (state, rerun) = match migration {
            _ if !lrow.success => (State::Failed, false),
            None => (State::Missing, false),
            Some(m) => match judge(m, &lrow.hash, observed) {
                Judgement::Changed if m.repeatable => (State::Pending, true),
                // Accepted on purpose: for a managed ledger the row was
                // updated too (`Same`); the note stays either way.
                _ if accepted.is_some_and(|a| a.hash == m.up.hash) => {
                    used_acceptance = accepted;
                    (State::Applied, false)
                }
                Judgement::Same => (State::Applied, false),
                Judgement::Changed => (State::Drifted, false),
            },
        };
        // A row a bundle wrote with another hash than its manifest lists:
        // the bundle was edited before it ran. Never `applied`.
        let tampered = envs[e]
            .exported
            .and_then(|x| x.get(exported::bundle_of(lrow)?))
            .and_then(|b| b.records(&lrow.version))
            .filter(|h| lrow.success && !exported::holds(&lrow.hash, h));
        let state = match (state, tampered) {
            (State::Applied, Some(_)) => State::Drifted,
            (s, _) => s,
        };
        cells[r * width + e] = Cell {
            state,
            ledger: Some(lrow),
            observed,
            out_of_order: false,
            rerun,
            accepted: used_acceptance,
            tampered,
        };
    }

    let mut columns = Vec::with_capacity(width);
    for (e, env) in envs.iter().enumerate() {
        let column = |cells: &[Cell<'a>], r: usize| cells[r * width + e].state;
        if let Some(newest) = (0..rows.len()).rposition(|r| column(&cells, r).is_applied()) {
            for r in 0..newest {
                let cell = &mut cells[r * width + e];
                // A repeatable that runs again is not out of order.
                cell.out_of_order = cell.state == State::Pending && !cell.rerun;
            }
        }
        let mut counts = Counts::default();
        for r in 0..rows.len() {
            match column(&cells, r) {
                State::Applied => counts.applied += 1,
                State::Pending => counts.pending += 1,
                State::Drifted => counts.drifted += 1,
                State::Failed => counts.failed += 1,
                State::Missing => counts.missing += 1,
                State::Absent | State::Unreachable => {}
            }
        }
        columns.push(EnvColumn {
            name: env.name,
            error: env.rows.err(),
            counts,
        });
    }
    Matrix {
        envs: columns,
        rows,
        cells,
    }
}

enum Judgement {
    Same,
    Changed,
}

/// Whether an applied migration's file still is what was applied: by
/// envgate's hash, by the tool's own checksum, or, where the ledger records
/// none, by what envgate first observed.
fn judge(m: &Migration, recorded: &RecordedHash, observed: Option<&Observed>) -> Judgement {
    let same = match recorded {
        RecordedHash::Sha256Lf(h) => *h == m.up.hash,
        RecordedHash::Tool(v) if !m.tool_checksums.is_empty() => {
            m.tool_checksums.iter().any(|c| c == v || c == ANY_CHECKSUM)
        }
        RecordedHash::Unknown(_) => false,
        // The tool's checksum cannot be recomputed here (a change type
        // envgate does not know), or there is none: what envgate first saw
        // applied decides.
        RecordedHash::Tool(_) | RecordedHash::None | RecordedHash::Unverifiable(_) => {
            observed.is_none_or(|o| o.hash == m.up.hash)
        }
    };
    if same {
        Judgement::Same
    } else {
        Judgement::Changed
    }
}

/// The two values a drifted (or applied) cell is judged by, like with like:
/// never envgate's SHA-256 against another tool's checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compared<'a> {
    /// envgate's SHA-256 of the file now and when applied (its own ledger).
    Sha256 {
        today: ContentHash,
        then: ContentHash,
    },
    /// The tool's own checksum recomputed from the file now, and the one
    /// it recorded.
    Tool { today: &'a str, then: &'a str },
    /// envgate's SHA-256 now and when it first saw the migration applied
    /// (ledgers whose checksum envgate cannot recompute, or none).
    FirstSeen {
        today: ContentHash,
        then: ContentHash,
        at: &'a str,
    },
    /// A recorded value envgate cannot read (damaged, or an unknown
    /// algorithm in its own ledger), beside today's SHA-256.
    Unreadable {
        today: Option<ContentHash>,
        then: &'a str,
    },
}

impl<'a> Cell<'a> {
    /// What this cell's state was decided by, for showing both sides.
    pub fn compared(&self, row: &Row<'a>) -> Option<Compared<'a>> {
        let ledger = self.ledger?;
        let first_seen = || {
            let o = self.observed?;
            Some(Compared::FirstSeen {
                today: row.hash?,
                then: o.hash,
                at: &o.at,
            })
        };
        match &ledger.hash {
            RecordedHash::Sha256Lf(then) => Some(Compared::Sha256 {
                today: row.hash?,
                then: *then,
            }),
            RecordedHash::Tool(then) => match row.checksum {
                Some(today) => Some(Compared::Tool { today, then }),
                None => first_seen(),
            },
            RecordedHash::Unknown(then) => Some(Compared::Unreadable {
                today: row.hash,
                then,
            }),
            RecordedHash::None | RecordedHash::Unverifiable(_) => first_seen(),
        }
    }
}

/// What a matrix holds, summed over its environments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub drifted: usize,
    pub pending: usize,
    pub failed: usize,
    pub missing: usize,
    /// Environments that could not be read.
    pub unreachable: usize,
}

impl Tally {
    /// The counts by name, most serious first.
    pub fn named(&self) -> [(usize, &'static str); 5] {
        [
            (self.drifted, "drifted"),
            (self.failed, "failed"),
            (self.missing, "missing"),
            (self.unreachable, "unreachable"),
            (self.pending, "pending"),
        ]
    }
}

impl<'a> Matrix<'a> {
    /// The cells of each state, and the unreachable environments, summed.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for e in &self.envs {
            t.drifted += e.counts.drifted;
            t.pending += e.counts.pending;
            t.failed += e.counts.failed;
            t.missing += e.counts.missing;
            t.unreachable += usize::from(!e.reachable());
        }
        t
    }

    /// The cells of row `r`, one per environment.
    pub fn cells(&self, r: usize) -> &[Cell<'a>] {
        let w = self.envs.len();
        &self.cells[r * w..(r + 1) * w]
    }

    /// The rows `keep` chooses (given each row and its cells), in order;
    /// the environments and their counts stay those of the whole matrix.
    pub fn only_rows(&self, keep: impl Fn(&Row<'a>, &[Cell<'a>]) -> bool) -> Matrix<'a> {
        let mut rows = Vec::new();
        let mut cells = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            if keep(row, self.cells(i)) {
                rows.push(row.clone());
                cells.extend_from_slice(self.cells(i));
            }
        }
        Matrix {
            envs: self.envs.clone(),
            rows,
            cells,
        }
    }

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
                let count = (0..self.rows.len())
                    .filter(|&r| {
                        let c = self.cells(r);
                        c[a].state.is_applied() && c[b].state == State::Pending
                    })
                    .count();
                Gap {
                    from: self.envs[a].name.to_owned(),
                    to: self.envs[b].name.to_owned(),
                    count,
                }
            })
            .filter(|g| g.count > 0)
            .collect()
    }
}

/// What a reader narrows a matrix to (the console's filters): rows whose
/// version, name or file contains `search` (without case), and rows with a
/// cell in `state`: a state's name, or `attention` (drifted, failed,
/// missing, or a ledger row that does not match its own checksum).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Narrowing {
    pub search: Option<String>,
    pub state: Option<Wanted>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    Attention,
    In(State),
}

impl std::str::FromStr for Wanted {
    type Err = String;
    fn from_str(s: &str) -> Result<Wanted, String> {
        const STATES: [State; 7] = [
            State::Applied,
            State::Pending,
            State::Drifted,
            State::Failed,
            State::Missing,
            State::Absent,
            State::Unreachable,
        ];
        if s == "attention" {
            return Ok(Wanted::Attention);
        }
        STATES
            .into_iter()
            .find(|st| st.as_str() == s)
            .map(Wanted::In)
            .ok_or_else(|| {
                format!(
                    "state '{s}': expected attention, applied, pending, drifted, failed, missing, absent or unreachable"
                )
            })
    }
}

/// Whether a row's cells need someone's attention.
pub fn needs_attention(cells: &[Cell<'_>]) -> bool {
    cells.iter().any(|c| {
        matches!(c.state, State::Drifted | State::Failed | State::Missing) || c.tampered.is_some()
    })
}

impl Narrowing {
    pub fn is_empty(&self) -> bool {
        self.search.is_none() && self.state.is_none()
    }

    pub fn keeps(&self, row: &Row<'_>, cells: &[Cell<'_>]) -> bool {
        let found = self.search.as_deref().is_none_or(|q| {
            let q = q.to_lowercase();
            [Some(row.version), Some(row.name), row.file]
                .into_iter()
                .flatten()
                .any(|t| t.to_lowercase().contains(&q))
        });
        let state = match self.state {
            None => true,
            Some(Wanted::Attention) => needs_attention(cells),
            Some(Wanted::In(st)) => cells.iter().any(|c| c.state == st),
        };
        found && state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            via: None,
            version: version.into(),
            name: "n".into(),
            hash: RecordedHash::Sha256Lf(ContentHash::of(body.as_bytes())),
            applied_at: Some("2026-04-18T10:00:00.000Z".into()),
            success: true,
            error: None,
        }
    }

    fn states(m: &Matrix, e: usize) -> Vec<&'static str> {
        (0..m.rows.len())
            .map(|r| m.cells(r)[e].state.as_str())
            .collect()
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
                via: None,
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
                EnvLedger::new("dev", Ok(&dev)),
                EnvLedger::new("prod", Ok(&prod)),
                EnvLedger::new("eu", Err("could not connect")),
            ],
        );
        assert_eq!(
            m.rows.iter().map(|r| r.version).collect::<Vec<_>>(),
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
        assert_eq!(m.envs[2].error, Some("could not connect"));
        assert!(m.has_problems());
        assert!(m.any_unreachable());
        let drifted = &m.cells(1)[0];
        assert_eq!(
            drifted.applied_hash(),
            Some(&RecordedHash::Sha256Lf(ContentHash::of(
                b"create tickets (edited later)"
            )))
        );
        assert_eq!(drifted.applied_at(), Some("2026-04-18T10:00:00.000Z"));
    }

    #[test]
    fn pending_older_than_newest_applied_is_out_of_order() {
        let ms = migrations(&[("1_a", "a"), ("2_b", "b"), ("3_c", "c"), ("4_d", "d")]);
        let env = vec![row("1", "a"), row("3", "c")];
        let m = compute(&ms, &[EnvLedger::new("dev", Ok(&env))]);
        let ooo: Vec<bool> = (0..m.rows.len())
            .map(|r| m.cells(r)[0].out_of_order)
            .collect();
        assert_eq!(ooo, [false, true, false, false]);
    }

    #[test]
    fn empty_ledger_is_all_pending_and_no_problem() {
        let ms = migrations(&[("1_a", "a"), ("2_b", "b")]);
        let m = compute(&ms, &[EnvLedger::new("dev", Ok(&[]))]);
        assert_eq!(states(&m, 0), ["pending", "pending"]);
        assert!(!m.has_problems());
        assert!(!m.any_unreachable());
        assert!((0..m.rows.len()).all(|r| !m.cells(r)[0].out_of_order));
    }

    #[test]
    fn versions_match_whatever_their_zero_padding() {
        let ms = migrations(&[("20260418_001_a", "a")]);
        let env = vec![row("20260418_1", "a")];
        let m = compute(&ms, &[EnvLedger::new("dev", Ok(&env))]);
        assert_eq!(states(&m, 0), ["applied"]);
    }

    #[test]
    fn ledger_ids_that_are_not_versions_sort_last() {
        let ms = migrations(&[("1_a", "a")]);
        let env = vec![row("zz-manual", "x"), row("1", "a")];
        let m = compute(&ms, &[EnvLedger::new("dev", Ok(&env))]);
        assert_eq!(
            m.rows.iter().map(|r| r.version).collect::<Vec<_>>(),
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
                EnvLedger::new("dev", Ok(&dev)),
                EnvLedger::new("staging", Ok(&staging)),
                EnvLedger::new("broken", Err("x")),
                EnvLedger::new("prod", Ok(&prod)),
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
