//! Promotion and rollback as decisions: given what was read (the release's
//! progress in every environment, the destination's mode and ledger, the
//! plan), what to do — nothing, refuse (a typed reason), export a bundle,
//! or apply — and what `--force` went past. No I/O: `ops::release` reads,
//! asks [`promote`] or [`rollback`], audits, then executes.

use super::ledger::LedgerRow;
use super::migration::Migration;
use super::mode::Mode;
use super::plan::Plan;
use super::release::{Progress, gaps, next_environment};
use serde::Serialize;
use std::collections::HashSet;

/// The destination of a promotion or rollback, as the decision needs it.
#[derive(Clone, Copy, Debug)]
pub struct Destination<'a> {
    pub tag: &'a str,
    pub env: &'a str,
    pub mode: Mode,
    /// The tool whose ledger the environment reads, when it is not
    /// envgate's.
    pub tool: Option<&'a str>,
}

/// An earlier environment that does not have the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Behind {
    pub environment: String,
    pub applied: usize,
    pub total: usize,
    pub reachable: bool,
}

/// Why a promotion or rollback is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// Earlier environments in the promotion order lack the release.
    NotFullyApplied {
        tag: String,
        env: String,
        behind: Vec<Behind>,
    },
    /// Migrations of earlier releases are still pending there.
    OlderPending {
        tag: String,
        env: String,
        versions: Vec<String>,
    },
    /// envgate never applies or reverts there.
    ReconcileOnly {
        tag: String,
        env: String,
        tool: Option<String>,
        /// A promotion: what is pending there from the release.
        pending: Option<Vec<String>>,
    },
    /// Drift, failed runs or refused migrations stand in the way.
    Blocked {
        tag: String,
        env: String,
        /// One line per blocker.
        blockers: Vec<String>,
        rollback: bool,
    },
    /// A rollback of migrations without down scripts.
    NoDown {
        tag: String,
        env: String,
        files: Vec<String>,
    },
}

impl Refusal {
    /// Whether `--force --reason` may go past it.
    pub fn forceable(&self) -> bool {
        matches!(
            self,
            Refusal::NotFullyApplied { .. } | Refusal::OlderPending { .. }
        )
    }
}

/// Why there is nothing to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Nothing {
    /// No environment lacks the release.
    AppliedEverywhere {
        tag: String,
    },
    /// The last environment has it, earlier ones do not.
    OnlyLastHasIt {
        tag: String,
        behind: Vec<String>,
    },
    AlreadyApplied {
        tag: String,
        env: String,
    },
    /// A rollback: none of the release is applied there.
    NothingApplied {
        tag: String,
        env: String,
    },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing(Nothing),
    Refuse(Refusal),
    /// Write the plan as a bundle (`export_only`).
    Export,
    /// Run the plan (`managed`).
    Apply,
}

/// A decision, and the refusals `--force` went past (for the audit trail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub forced: Vec<Refusal>,
}

impl Decision {
    fn plain(action: Action) -> Decision {
        Decision {
            action,
            forced: Vec::new(),
        }
    }
}

/// Where a promotion goes: the environment named, else the first that
/// lacks the release after the furthest that has it.
pub fn destination<'a>(
    tag: &str,
    to: Option<&'a str>,
    progress: &'a [Progress],
) -> Result<&'a str, Nothing> {
    if let Some(to) = to {
        return Ok(to);
    }
    next_environment(progress).ok_or_else(|| {
        let behind: Vec<String> = progress
            .iter()
            .filter(|p| !p.complete())
            .map(|p| format!("{} ({}/{})", p.environment, p.applied, p.total))
            .collect();
        if behind.is_empty() {
            Nothing::AppliedEverywhere {
                tag: tag.to_owned(),
            }
        } else {
            Nothing::OnlyLastHasIt {
                tag: tag.to_owned(),
                behind,
            }
        }
    })
}

/// Migrations before the release's newest one, not part of it, still
/// pending in `ledger` (repeatable ones aside): earlier releases' work.
pub fn earlier_pending<'a>(
    migrations: &'a [Migration],
    release: &HashSet<String>,
    ledger: &[LedgerRow],
) -> Vec<&'a str> {
    let newest = migrations.iter().rposition(|x| release.contains(x.id()));
    let applied: HashSet<&str> = ledger
        .iter()
        .filter(|l| l.success)
        .map(|l| l.version.as_str())
        .collect();
    migrations
        .iter()
        .enumerate()
        .filter(|(i, x)| {
            newest.is_some_and(|n| *i < n) && !release.contains(x.id()) && !x.repeatable
        })
        .filter(|(_, x)| !applied.contains(x.id()))
        .map(|(_, x)| x.id())
        .collect()
}

/// What a promotion read.
pub struct Promotion<'a> {
    pub to: Destination<'a>,
    /// The release's progress in every environment read.
    pub progress: &'a [Progress],
    /// See [`earlier_pending`].
    pub earlier_pending: &'a [&'a str],
    /// The plan for the release's migrations there.
    pub plan: &'a Plan<'a>,
    pub force: bool,
}

/// Decides a promotion.
pub fn promote(p: &Promotion<'_>) -> Decision {
    let to = &p.to;
    let mut forced = Vec::new();
    let behind: Vec<Behind> = gaps(p.progress, to.env)
        .into_iter()
        .map(|g| Behind {
            environment: g.environment.clone(),
            applied: g.applied,
            total: g.total,
            reachable: g.reachable,
        })
        .collect();
    let mut checks = Vec::new();
    if !behind.is_empty() {
        checks.push(Refusal::NotFullyApplied {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
            behind,
        });
    }
    if !p.earlier_pending.is_empty() {
        checks.push(Refusal::OlderPending {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
            versions: p.earlier_pending.iter().map(|v| v.to_string()).collect(),
        });
    }
    for r in checks {
        if !p.force {
            return Decision::plain(Action::Refuse(r));
        }
        forced.push(r);
    }
    let action = match to.mode {
        Mode::ReconcileOnly => Action::Refuse(Refusal::ReconcileOnly {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
            tool: to.tool.map(str::to_owned),
            pending: Some(
                p.plan
                    .steps
                    .iter()
                    .map(|s| s.migration.id().to_owned())
                    .collect(),
            ),
        }),
        Mode::ExportOnly if !p.plan.blockers.is_empty() => {
            Action::Refuse(blocked(to, p.plan, false))
        }
        Mode::ExportOnly if p.plan.steps.is_empty() => Action::Nothing(Nothing::AlreadyApplied {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
        }),
        Mode::ExportOnly => Action::Export,
        Mode::Managed => Action::Apply,
    };
    Decision { action, forced }
}

/// Whether envgate reverts anything there at all: never where another
/// tool's ledger is read or the mode is reconcile_only. Known before
/// anything is read.
pub fn reverts_there(to: &Destination<'_>) -> Result<(), Refusal> {
    if to.mode == Mode::ReconcileOnly || to.tool.is_some() {
        return Err(Refusal::ReconcileOnly {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
            tool: to.tool.map(str::to_owned),
            pending: None,
        });
    }
    Ok(())
}

/// Decides a rollback from its plan (the release's applied migrations
/// there, newest first).
pub fn rollback(to: &Destination<'_>, plan: &Plan<'_>) -> Decision {
    if let Err(r) = reverts_there(to) {
        return Decision::plain(Action::Refuse(r));
    }
    let action = if plan.steps.is_empty() {
        Action::Nothing(Nothing::NothingApplied {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
        })
    } else if !plan.blockers.is_empty() {
        Action::Refuse(blocked(to, plan, true))
    } else if !plan.without_down().is_empty() {
        Action::Refuse(Refusal::NoDown {
            tag: to.tag.to_owned(),
            env: to.env.to_owned(),
            files: plan.without_down().iter().map(|f| f.to_string()).collect(),
        })
    } else if to.mode == Mode::ExportOnly {
        Action::Export
    } else {
        Action::Apply
    };
    Decision::plain(action)
}

fn blocked(to: &Destination<'_>, plan: &Plan<'_>, rollback: bool) -> Refusal {
    Refusal::Blocked {
        tag: to.tag.to_owned(),
        env: to.env.to_owned(),
        blockers: plan.blockers.iter().map(|b| b.summary()).collect(),
        rollback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::{ContentHash, RecordedHash};
    use crate::core::migration::{SourceFile, discover};
    use crate::core::plan::{self, PlanInput};
    use crate::core::sql::Dialect;

    fn migrations(files: &[&str]) -> Vec<Migration> {
        discover(
            files
                .iter()
                .map(|n| SourceFile {
                    path: format!("migrations/{n}"),
                    bytes: format!("CREATE TABLE t{} (id int);\n", n.len()).into_bytes(),
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn row(m: &Migration) -> LedgerRow {
        LedgerRow {
            via: None,
            version: m.id().to_owned(),
            name: m.name.clone(),
            hash: RecordedHash::Sha256Lf(m.up.hash),
            applied_at: None,
            success: true,
            error: None,
        }
    }

    fn progress(rows: &[(&str, usize, usize, bool)]) -> Vec<Progress> {
        rows.iter()
            .map(|(e, a, t, r)| Progress {
                environment: (*e).to_owned(),
                applied: *a,
                total: *t,
                reachable: *r,
            })
            .collect()
    }

    fn dest(env: &'static str, mode: Mode) -> Destination<'static> {
        Destination {
            tag: "v2",
            env,
            mode,
            tool: None,
        }
    }

    /// The plan for migrations `2`, `3` (the release) with `applied` in
    /// the ledger.
    fn with_plan<T>(
        applied: &[&str],
        down: bool,
        f: impl FnOnce(&[Migration], &Plan<'_>, &Plan<'_>) -> T,
    ) -> T {
        let mut files = vec!["1_a.sql", "2_b.sql", "3_c.sql"];
        if down {
            files.extend(["2_b.down.sql", "3_c.down.sql"]);
        }
        let ms = migrations(&files);
        let ledger: Vec<LedgerRow> = ms
            .iter()
            .filter(|m| applied.contains(&m.id()))
            .map(row)
            .collect();
        let ids: HashSet<String> = ["2".to_owned(), "3".to_owned()].into();
        let up = plan::plan(&PlanInput {
            env: "x",
            mode: Mode::Managed,
            dialect: Dialect::Postgres,
            migrations: &ms,
            ledger: &ledger,
            stop_at: None,
            waive: crate::core::plan::Waive::NONE,
            only: Some(&ids),
            accepted: None,
        })
        .unwrap();
        let down_plan = plan::rollback("x", Mode::Managed, Dialect::Postgres, &ms, &ledger, &ids);
        f(&ms, &up, &down_plan)
    }

    #[test]
    fn destinations() {
        let p = progress(&[
            ("dev", 2, 2, true),
            ("staging", 0, 2, true),
            ("prod", 0, 2, true),
        ]);
        assert_eq!(destination("v2", None, &p), Ok("staging"));
        assert_eq!(destination("v2", Some("prod"), &p), Ok("prod"));
        let all = progress(&[("dev", 2, 2, true), ("prod", 2, 2, true)]);
        assert_eq!(
            destination("v2", None, &all),
            Err(Nothing::AppliedEverywhere { tag: "v2".into() })
        );
        let last = progress(&[("dev", 1, 2, true), ("prod", 2, 2, true)]);
        assert_eq!(
            destination("v2", None, &last),
            Err(Nothing::OnlyLastHasIt {
                tag: "v2".into(),
                behind: vec!["dev (1/2)".into()]
            })
        );
    }

    #[test]
    fn promotion_table() {
        let fresh = progress(&[
            ("dev", 2, 2, true),
            ("staging", 0, 2, true),
            ("prod", 0, 2, false),
        ]);
        let behind = progress(&[
            ("dev", 0, 2, true),
            ("staging", 0, 2, false),
            ("prod", 0, 2, true),
        ]);
        let not_fully = Refusal::NotFullyApplied {
            tag: "v2".into(),
            env: "prod".into(),
            behind: vec![
                Behind {
                    environment: "dev".into(),
                    applied: 0,
                    total: 2,
                    reachable: true,
                },
                Behind {
                    environment: "staging".into(),
                    applied: 0,
                    total: 2,
                    reachable: false,
                },
            ],
        };
        let older = Refusal::OlderPending {
            tag: "v2".into(),
            env: "staging".into(),
            versions: vec!["1".into()],
        };
        // (case, progress, destination, mode, applied there, earlier pending, force) → decision
        type Case<'a> = (
            &'a str,
            &'a [Progress],
            &'static str,
            Mode,
            &'a [&'a str],
            &'a [&'a str],
            bool,
            Decision,
        );
        let cases: Vec<Case> = vec![
            (
                "managed applies",
                &fresh,
                "staging",
                Mode::Managed,
                &["1"],
                &[],
                false,
                Decision::plain(Action::Apply),
            ),
            (
                "export_only exports",
                &fresh,
                "staging",
                Mode::ExportOnly,
                &["1"],
                &[],
                false,
                Decision::plain(Action::Export),
            ),
            (
                "export_only already there",
                &fresh,
                "staging",
                Mode::ExportOnly,
                &["1", "2", "3"],
                &[],
                false,
                Decision::plain(Action::Nothing(Nothing::AlreadyApplied {
                    tag: "v2".into(),
                    env: "staging".into(),
                })),
            ),
            (
                "reconcile_only refuses, listing what is pending",
                &fresh,
                "staging",
                Mode::ReconcileOnly,
                &["1", "2"],
                &[],
                false,
                Decision::plain(Action::Refuse(Refusal::ReconcileOnly {
                    tag: "v2".into(),
                    env: "staging".into(),
                    tool: None,
                    pending: Some(vec!["3".into()]),
                })),
            ),
            (
                "earlier environments lack it",
                &behind,
                "prod",
                Mode::Managed,
                &[],
                &[],
                false,
                Decision::plain(Action::Refuse(not_fully.clone())),
            ),
            (
                "forced past them",
                &behind,
                "prod",
                Mode::Managed,
                &[],
                &[],
                true,
                Decision {
                    action: Action::Apply,
                    forced: vec![not_fully.clone()],
                },
            ),
            (
                "older migrations pending",
                &fresh,
                "staging",
                Mode::Managed,
                &[],
                &["1"],
                false,
                Decision::plain(Action::Refuse(older.clone())),
            ),
            (
                "forced past older ones",
                &fresh,
                "staging",
                Mode::ExportOnly,
                &[],
                &["1"],
                true,
                Decision {
                    action: Action::Export,
                    forced: vec![older.clone()],
                },
            ),
            (
                "forced, still reconcile_only",
                &behind,
                "prod",
                Mode::ReconcileOnly,
                &[],
                &[],
                true,
                Decision {
                    action: Action::Refuse(Refusal::ReconcileOnly {
                        tag: "v2".into(),
                        env: "prod".into(),
                        tool: None,
                        pending: Some(vec!["2".into(), "3".into()]),
                    }),
                    forced: vec![not_fully.clone()],
                },
            ),
        ];
        for (name, progress, env, mode, applied, earlier, force, want) in cases {
            with_plan(applied, false, |_, up, _| {
                let got = promote(&Promotion {
                    to: dest(env, mode),
                    progress,
                    earlier_pending: earlier,
                    plan: up,
                    force,
                });
                assert_eq!(got, want, "{name}");
            });
        }
    }

    #[test]
    fn drift_blocks_an_export_but_not_a_forced_gap() {
        let ms = migrations(&["1_a.sql", "2_b.sql", "3_c.sql"]);
        let mut drifted = row(&ms[1]);
        drifted.hash = RecordedHash::Sha256Lf(ContentHash::of(b"other"));
        let ids: HashSet<String> = ["2".to_owned(), "3".to_owned()].into();
        let ledger = vec![row(&ms[0]), drifted];
        let p = plan::plan(&PlanInput {
            env: "staging",
            mode: Mode::ExportOnly,
            dialect: Dialect::Postgres,
            migrations: &ms,
            ledger: &ledger,
            stop_at: None,
            waive: crate::core::plan::Waive::NONE,
            only: Some(&ids),
            accepted: None,
        })
        .unwrap();
        let d = promote(&Promotion {
            to: dest("staging", Mode::ExportOnly),
            progress: &progress(&[("dev", 2, 2, true), ("staging", 1, 2, true)]),
            earlier_pending: &[],
            plan: &p,
            force: true,
        });
        assert_eq!(
            d.action,
            Action::Refuse(Refusal::Blocked {
                tag: "v2".into(),
                env: "staging".into(),
                blockers: vec!["2 drifted".into()],
                rollback: false
            })
        );
        assert!(
            !Refusal::Blocked {
                tag: String::new(),
                env: String::new(),
                blockers: vec![],
                rollback: false
            }
            .forceable()
        );
    }

    #[test]
    fn rollback_table() {
        let nothing = Action::Nothing(Nothing::NothingApplied {
            tag: "v2".into(),
            env: "dev".into(),
        });
        let no_down = Action::Refuse(Refusal::NoDown {
            tag: "v2".into(),
            env: "dev".into(),
            files: vec!["migrations/3_c.sql".into(), "migrations/2_b.sql".into()],
        });
        // (case, applied there, down files, mode, another tool) → action
        type Case<'a> = (&'a str, &'a [&'a str], bool, Mode, Option<&'a str>, Action);
        let cases: Vec<Case> = vec![
            (
                "nothing applied",
                &["1"],
                true,
                Mode::Managed,
                None,
                nothing,
            ),
            (
                "managed reverts",
                &["1", "2", "3"],
                true,
                Mode::Managed,
                None,
                Action::Apply,
            ),
            (
                "export_only writes the reverse bundle",
                &["1", "2", "3"],
                true,
                Mode::ExportOnly,
                None,
                Action::Export,
            ),
            (
                "no down scripts",
                &["1", "2", "3"],
                false,
                Mode::Managed,
                None,
                no_down,
            ),
            (
                "another tool's ledger",
                &["1", "2"],
                true,
                Mode::Managed,
                Some("flyway"),
                Action::Refuse(Refusal::ReconcileOnly {
                    tag: "v2".into(),
                    env: "dev".into(),
                    tool: Some("flyway".into()),
                    pending: None,
                }),
            ),
            (
                "reconcile_only",
                &["1", "2"],
                true,
                Mode::ReconcileOnly,
                None,
                Action::Refuse(Refusal::ReconcileOnly {
                    tag: "v2".into(),
                    env: "dev".into(),
                    tool: None,
                    pending: None,
                }),
            ),
        ];
        for (name, applied, down, mode, tool, want) in cases {
            with_plan(applied, down, |_, _, back| {
                let to = Destination {
                    tool,
                    ..dest("dev", mode)
                };
                assert_eq!(rollback(&to, back).action, want, "{name}");
            });
        }
    }

    #[test]
    fn earlier_releases_pending() {
        let ms = migrations(&["1_a.sql", "2_b.sql", "3_c.sql", "4_d.sql"]);
        let ids: HashSet<String> = ["3".to_owned()].into();
        assert_eq!(earlier_pending(&ms, &ids, &[row(&ms[0])]), ["2"]);
        assert_eq!(
            earlier_pending(&ms, &ids, &[row(&ms[0]), row(&ms[1])]),
            Vec::<&str>::new()
        );
    }
}
