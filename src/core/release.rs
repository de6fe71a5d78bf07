//! Releases: a git tag and the migrations that belong to it — the files
//! added since the previous release tag, unless the release lists them
//! explicitly — and their progress through the environments.

use super::matrix::{Matrix, State};
use super::migration::Migration;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// What git says about one tag: the migration files (paths as discovery
/// names them) added and modified since the previous release tag.
#[derive(Clone, Debug, Default)]
pub struct TagChanges {
    pub tag: String,
    pub added: Vec<String>,
    pub modified: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    pub tag: String,
    /// Migration ids, in migration order.
    pub migrations: Vec<String>,
    /// Listed in releases/<tag>.toml or envgate.toml rather than from git.
    pub explicit: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("release {tag} lists {id}, which is not a migration in the repository")]
    UnknownMigration { tag: String, id: String },
    #[error(
        "release {tag} is out of order: {id} is older than {newer}, which an earlier release ({earlier}) already holds"
    )]
    OutOfOrder {
        tag: String,
        id: String,
        newer: String,
        earlier: String,
    },
}

/// Orders release tags: semantic versions (a leading `v` allowed) by
/// precedence, then anything else by name.
pub fn sort_tags(tags: &mut [String]) {
    let key = |t: &String| semver::Version::parse(t.trim_start_matches(['v', 'V'])).ok();
    tags.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
}

/// Builds the releases, oldest first. `changes` are in release order;
/// `explicit` maps a tag to the migration ids it lists.
pub fn releases(
    changes: &[TagChanges],
    explicit: &HashMap<String, Vec<String>>,
    migrations: &[Migration],
) -> Result<Vec<Release>, ReleaseError> {
    let by_path: HashMap<&str, &Migration> =
        migrations.iter().map(|m| (m.up.path.as_str(), m)).collect();
    let position: HashMap<&str, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id(), i))
        .collect();
    let mut owner: HashMap<String, String> = HashMap::new(); // id → first release
    let mut newest: Option<(usize, String, String)> = None; // (position, id, tag)
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let mut warnings = Vec::new();
        let (ids, is_explicit): (Vec<String>, bool) = match explicit.get(&c.tag) {
            Some(list) => {
                for id in list {
                    if !position.contains_key(id.as_str()) {
                        return Err(ReleaseError::UnknownMigration {
                            tag: c.tag.clone(),
                            id: id.clone(),
                        });
                    }
                }
                (list.clone(), true)
            }
            None => (
                c.added
                    .iter()
                    .filter_map(|p| by_path.get(p.as_str()))
                    .map(|m| m.id().to_owned())
                    .collect(),
                false,
            ),
        };
        for p in &c.modified {
            if let Some(m) = by_path.get(p.as_str()) {
                let first = owner.get(m.id()).map_or_else(
                    || "an earlier release".to_owned(),
                    |t| format!("release {t}"),
                );
                warnings.push(format!(
                    "{p} was modified after release: it belongs to {first}"
                ));
            }
        }
        let mut ids: Vec<String> = ids
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        ids.sort_by_key(|id| position[id.as_str()]);
        // A migration new in this release but older than one an earlier
        // release holds would run out of order wherever that one ran.
        if let Some((newest_pos, newest_id, newest_tag)) = &newest
            && let Some(late) = ids
                .iter()
                .find(|id| position[id.as_str()] < *newest_pos && !owner.contains_key(*id))
        {
            return Err(ReleaseError::OutOfOrder {
                tag: c.tag.clone(),
                id: late.clone(),
                newer: newest_id.clone(),
                earlier: newest_tag.clone(),
            });
        }
        for id in &ids {
            owner.entry(id.clone()).or_insert_with(|| c.tag.clone());
            let pos = position[id.as_str()];
            if newest.as_ref().is_none_or(|(p, _, _)| pos > *p) {
                newest = Some((pos, id.clone(), c.tag.clone()));
            }
        }
        out.push(Release {
            tag: c.tag.clone(),
            migrations: ids,
            explicit: is_explicit,
            warnings,
        });
    }
    Ok(out)
}

/// How far a release is in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub environment: String,
    pub applied: usize,
    pub total: usize,
    pub reachable: bool,
}

impl Progress {
    pub fn complete(&self) -> bool {
        self.reachable && self.applied == self.total
    }
}

/// The release's progress in every environment of the matrix.
pub fn progress(release: &Release, matrix: &Matrix<'_>) -> Vec<Progress> {
    let rows: Vec<usize> = release
        .migrations
        .iter()
        .filter_map(|id| matrix.rows.iter().position(|r| r.version == id))
        .collect();
    matrix
        .envs
        .iter()
        .enumerate()
        .map(|(e, env)| Progress {
            environment: env.name.to_owned(),
            applied: rows
                .iter()
                .filter(|&&r| matches!(matrix.cells(r)[e].state, State::Applied | State::Drifted))
                .count(),
            total: release.migrations.len(),
            reachable: env.reachable(),
        })
        .collect()
}

/// The environment a promotion goes to by default: the next one after the
/// furthest where the release is fully applied.
pub fn next_environment(progress: &[Progress]) -> Option<&str> {
    let furthest = progress.iter().rposition(Progress::complete);
    let next = furthest.map_or(0, |i| i + 1);
    progress.get(next).map(|p| p.environment.as_str())
}

/// Why a release may not be promoted to an environment yet: the earlier
/// environments (in promotion order) that do not have it fully applied.
pub fn gaps<'a>(progress: &'a [Progress], target: &str) -> Vec<&'a Progress> {
    let Some(t) = progress.iter().position(|p| p.environment == target) else {
        return Vec::new();
    };
    progress[..t].iter().filter(|p| !p.complete()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::LedgerRow;
    use crate::core::matrix::{EnvLedger, compute};
    use crate::core::migration::{SourceFile, discover};

    fn migrations(names: &[&str]) -> Vec<Migration> {
        discover(
            names
                .iter()
                .map(|n| SourceFile {
                    path: format!("migrations/{n}.sql"),
                    bytes: n.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn tag(name: &str, added: &[&str], modified: &[&str]) -> TagChanges {
        let p = |n: &&str| format!("migrations/{n}.sql");
        TagChanges {
            tag: name.into(),
            added: added.iter().map(p).collect(),
            modified: modified.iter().map(p).collect(),
        }
    }

    #[test]
    fn semver_order() {
        let mut t: Vec<String> = ["v1.10.0", "v1.2.0", "v1.2.0-rc.1", "v0.9.9", "vnext"]
            .map(String::from)
            .to_vec();
        sort_tags(&mut t);
        assert_eq!(t, ["v0.9.9", "v1.2.0-rc.1", "v1.2.0", "v1.10.0", "vnext"]);
    }

    #[test]
    fn membership_from_git_and_explicit_lists() {
        let ms = migrations(&["1_a", "2_b", "3_c", "4_d"]);
        let changes = [
            tag("v1.0.0", &["1_a", "2_b"], &[]),
            tag("v1.1.0", &["3_c"], &["1_a"]),
            tag("v1.2.0", &["4_d"], &[]),
        ];
        let explicit = HashMap::from([("v1.2.0".to_owned(), vec!["4".to_owned()])]);
        let r = releases(&changes, &explicit, &ms).unwrap();
        assert_eq!(r[0].migrations, ["1", "2"]);
        assert_eq!(r[1].migrations, ["3"]);
        assert_eq!(
            r[1].warnings,
            ["migrations/1_a.sql was modified after release: it belongs to release v1.0.0"]
        );
        assert!(r[2].explicit);
        let bad = HashMap::from([("v1.2.0".to_owned(), vec!["9".to_owned()])]);
        assert_eq!(
            releases(&changes, &bad, &ms).unwrap_err().to_string(),
            "release v1.2.0 lists 9, which is not a migration in the repository"
        );
    }

    #[test]
    fn a_release_older_than_its_predecessor_is_out_of_order() {
        let ms = migrations(&["1_a", "2_b", "3_c"]);
        let changes = [tag("v1.0.0", &["3_c"], &[]), tag("v1.1.0", &["1_a"], &[])];
        assert_eq!(
            releases(&changes, &HashMap::new(), &ms)
                .unwrap_err()
                .to_string(),
            "release v1.1.0 is out of order: 1 is older than 3, which an earlier release (v1.0.0) already holds"
        );
    }

    #[test]
    fn progress_next_environment_and_gaps() {
        let ms = migrations(&["1_a", "2_b"]);
        let row = |v: &str, body: &str| LedgerRow {
            version: v.into(),
            name: "x".into(),
            hash: crate::core::checksum::RecordedHash::Sha256Lf(
                crate::core::checksum::ContentHash::of(body.as_bytes()),
            ),
            applied_at: None,
            success: true,
        };
        let dev = [row("1", "1_a"), row("2", "2_b")];
        let staging = [row("1", "1_a")];
        let m = compute(
            &ms,
            &[
                EnvLedger::new("dev", Ok(&dev)),
                EnvLedger::new("staging", Ok(&staging)),
                EnvLedger::new("prod", Ok(&[])),
            ],
        );
        let release = Release {
            tag: "v1".into(),
            migrations: vec!["1".into(), "2".into()],
            explicit: false,
            warnings: vec![],
        };
        let p = progress(&release, &m);
        assert_eq!(
            p.iter().map(|p| (p.applied, p.total)).collect::<Vec<_>>(),
            [(2, 2), (1, 2), (0, 2)]
        );
        assert_eq!(next_environment(&p), Some("staging"));
        let gaps: Vec<&str> = gaps(&p, "prod")
            .iter()
            .map(|g| g.environment.as_str())
            .collect();
        assert_eq!(gaps, ["staging"]);
        assert!(super::gaps(&p, "staging").is_empty());
    }
}
