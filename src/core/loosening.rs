//! Changes to envgate.toml that give envgate, or someone, more power over
//! an environment, and whether the environment's admins approved them.
//!
//! A pull or merge request loosens an environment when, compared with the
//! branch it goes into, it makes the environment `managed`, takes it out
//! of `reconcile_only`, changes its `admins` or `promoters`, or points it
//! at another host or database. Such a request needs the approval of one
//! of the environment's admins **as the target branch names them** (a
//! request cannot approve itself by adding its author to the list); an
//! environment that names no admins needs nobody's ([`verdict`]).

use super::mode::{Mode, loosens};
use serde::Serialize;

/// What the review needs to know of an environment, from envgate.toml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvPolicy {
    pub name: String,
    pub mode: Mode,
    pub admins: Vec<String>,
    pub promoters: Vec<String>,
    /// Where it points, credentials left out: `host:port/database`, the
    /// `${VAR}` text, or the URL file's path.
    pub target: String,
}

/// One change to one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Mode { from: Mode, to: Mode },
    Admins { from: Vec<String>, to: Vec<String> },
    Promoters { from: Vec<String>, to: Vec<String> },
    Target { from: String, to: String },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.join(", ")
            }
        };
        match self {
            Change::Mode { from, to } => write!(f, "mode {from} → {to}"),
            Change::Admins { from, to } => write!(f, "admins {} → {}", list(from), list(to)),
            Change::Promoters { from, to } => {
                write!(f, "promoters {} → {}", list(from), list(to))
            }
            Change::Target { from, to } => write!(f, "target {from} → {to}"),
        }
    }
}

/// An environment a request loosens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loosened {
    pub env: String,
    pub changes: Vec<Change>,
    /// Its admins on the target branch: who may approve. Empty: nobody's
    /// approval is needed.
    pub admins: Vec<String>,
}

/// The environments `head` loosens compared with `base` (in `head`'s
/// order). An environment new in `head` has no admins to ask yet.
pub fn loosenings(base: &[EnvPolicy], head: &[EnvPolicy]) -> Vec<Loosened> {
    head.iter()
        .filter_map(|h| {
            let b = base.iter().find(|b| b.name == h.name)?;
            let mut changes = Vec::new();
            if loosens(b.mode, h.mode) {
                changes.push(Change::Mode {
                    from: b.mode,
                    to: h.mode,
                });
            }
            let same = |x: &[String], y: &[String]| {
                let norm = |v: &[String]| {
                    let mut v: Vec<String> = v.iter().map(|s| s.to_lowercase()).collect();
                    v.sort();
                    v
                };
                norm(x) == norm(y)
            };
            if !same(&b.admins, &h.admins) {
                changes.push(Change::Admins {
                    from: b.admins.clone(),
                    to: h.admins.clone(),
                });
            }
            if !same(&b.promoters, &h.promoters) {
                changes.push(Change::Promoters {
                    from: b.promoters.clone(),
                    to: h.promoters.clone(),
                });
            }
            if b.target != h.target && h.mode != Mode::ReconcileOnly {
                changes.push(Change::Target {
                    from: b.target.clone(),
                    to: h.target.clone(),
                });
            }
            (!changes.is_empty()).then(|| Loosened {
                env: h.name.clone(),
                changes,
                admins: b.admins.clone(),
            })
        })
        .collect()
}

/// One loosened environment, judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub loosened: Loosened,
    /// The admin who approved it; None: not approved (yet).
    pub approved_by: Option<String>,
    /// No admins on the target branch: no approval needed.
    pub needs_nobody: bool,
}

/// The request's verdict: passes when every loosened environment that
/// names admins has one of them among `approvers` (logins, compared
/// without case; `@org/team` entries match members of `teams`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub envs: Vec<Judged>,
}

pub fn verdict(
    loosened: Vec<Loosened>,
    approvers: &[String],
    teams: &[(String, String)],
) -> Verdict {
    let envs: Vec<Judged> = loosened
        .into_iter()
        .map(|l| {
            let approved_by = approvers
                .iter()
                .find(|who| {
                    let their_teams: Vec<String> = teams
                        .iter()
                        .filter(|(login, _)| login.eq_ignore_ascii_case(who))
                        .map(|(_, t)| t.clone())
                        .collect();
                    super::policy::is_admin(who, &l.admins, &their_teams)
                })
                .cloned();
            Judged {
                needs_nobody: l.admins.is_empty(),
                approved_by,
                loosened: l,
            }
        })
        .collect();
    Verdict {
        passed: envs
            .iter()
            .all(|j| j.needs_nobody || j.approved_by.is_some()),
        envs,
    }
}

impl Verdict {
    /// One line for a check's title or a commit status's description.
    pub fn title(&self) -> String {
        let waiting: Vec<&str> = self
            .envs
            .iter()
            .filter(|j| !j.needs_nobody && j.approved_by.is_none())
            .map(|j| j.loosened.env.as_str())
            .collect();
        match (self.envs.len(), waiting.as_slice()) {
            (0, _) => "no environment loosened".to_owned(),
            (_, []) => format!(
                "loosens {}: approved",
                self.envs
                    .iter()
                    .map(|j| j.loosened.env.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (_, w) => format!("loosens {}: needs an admin's approval", w.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str, mode: Mode, admins: &[&str], target: &str) -> EnvPolicy {
        EnvPolicy {
            name: name.into(),
            mode,
            admins: admins.iter().map(|a| a.to_string()).collect(),
            promoters: Vec::new(),
            target: target.into(),
        }
    }

    #[test]
    fn what_loosens_and_who_may_approve() {
        let base = vec![
            env("dev", Mode::Managed, &[], "db:5432/dev"),
            env("staging", Mode::ExportOnly, &["carol"], "db:5432/staging"),
            env(
                "prod",
                Mode::ExportOnly,
                &["alice", "@acme/dba"],
                "db:5432/prod",
            ),
            env("legacy", Mode::ReconcileOnly, &["alice"], "${LEGACY_URL}"),
        ];
        let mut head = base.clone();
        head[0].target = "other:5432/dev".into(); // no admins: nobody's approval
        head[1].mode = Mode::ReconcileOnly; // tighter: not listed
        head[2].mode = Mode::Managed;
        head[2].admins.push("mallory".into()); // the request adds its author
        head[3].mode = Mode::ExportOnly;
        head.push(env("qa", Mode::Managed, &["mallory"], "db/qa")); // new: nothing to compare
        let l = loosenings(&base, &head);
        let names: Vec<&str> = l.iter().map(|x| x.env.as_str()).collect();
        assert_eq!(names, ["dev", "prod", "legacy"]);
        assert_eq!(
            l[1].changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "mode export_only → managed",
                "admins alice, @acme/dba → alice, @acme/dba, mallory"
            ]
        );
        assert_eq!(
            l[1].admins,
            ["alice", "@acme/dba"],
            "the target branch's admins"
        );

        let judged = |approvers: &[&str], teams: &[(&str, &str)]| {
            verdict(
                loosenings(&base, &head),
                &approvers.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                &teams
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let none = judged(&[], &[]);
        assert!(!none.passed);
        assert_eq!(
            none.title(),
            "loosens prod, legacy: needs an admin's approval"
        );
        assert!(none.envs[0].needs_nobody);
        // mallory cannot approve her own admission.
        assert!(!judged(&["mallory"], &[]).passed);
        let alice = judged(&["ALICE"], &[]);
        assert!(alice.passed);
        assert_eq!(alice.envs[1].approved_by.as_deref(), Some("ALICE"));
        assert_eq!(alice.title(), "loosens dev, prod, legacy: approved");
        // A member of an admin team approves prod, not legacy.
        let dba = judged(&["dave"], &[("dave", "acme/dba")]);
        assert!(!dba.passed);
        assert_eq!(dba.envs[1].approved_by.as_deref(), Some("dave"));
        assert_eq!(dba.envs[2].approved_by, None);
        assert_eq!(
            verdict(loosenings(&base, &base), &[], &[]).title(),
            "no environment loosened"
        );
    }
}
