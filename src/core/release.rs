//! Releases: a git tag and the migrations that belong to it — the files
//! added since the previous release tag, unless the release lists them
//! explicitly — and their progress through the environments.

use super::matrix::{Matrix, State};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// What one release tag holds, read from the tag's own tree: every
/// migration id at the tag in migration order, and the migration files
/// added and modified since the previous release tag — the previous *final*
/// release for a final one, so that it gathers what its release candidates
/// added.
#[derive(Clone, Debug, Default)]
pub struct TagChanges {
    pub tag: String,
    /// A semantic-version pre-release (`v2.4.0-rc.1`).
    pub prerelease: bool,
    pub order: Vec<String>,
    pub added: Vec<Change>,
    pub modified: Vec<Change>,
}

/// A migration file that changed between two tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    pub tag: String,
    /// Migration ids, in migration order.
    pub migrations: Vec<String>,
    /// Listed in releases/<tag>.toml or envgate.toml rather than from git.
    pub explicit: bool,
    pub prerelease: bool,
    pub warnings: Vec<String>,
    /// Why the release cannot be promoted or rolled back as it stands.
    pub problem: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("release {tag} lists {id}, which is not a migration at that tag")]
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
    #[error("release {tag} lists {id}, which release {owner} already holds")]
    AlreadyReleased {
        tag: String,
        id: String,
        owner: String,
    },
}

/// Whether a tag matches a glob as git's `tag --list` reads it: `*` any
/// run of characters, `?` one, `[abc]` / `[a-z]` / `[!x]` a class.
pub fn tag_matches(pattern: &str, tag: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed incl. ']')
        let mut i = 0;
        let negate = matches!(p.first(), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((hit != negate, i + 1));
            }
            first = false;
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hit |= p[i] <= c && c <= p[i + 2];
                i += 3;
            } else {
                hit |= p[i] == c;
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|k| go(&p[1..], &t[k..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') if !t.is_empty() => match class(&p[1..], t[0]) {
                Some((true, n)) => go(&p[1 + n..], &t[1..]),
                Some((false, _)) => false,
                None => t[0] == '[' && go(&p[1..], &t[1..]),
            },
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = tag.chars().collect();
    go(&p, &t)
}

/// The version in a tag, for ordering: what the pattern's `*` matched
/// (`release/1.10.0` with `release/*`), a leading `v` allowed, `2.5`
/// read as `2.5.0`.
pub fn tag_version(tag: &str, pattern: &str) -> Option<semver::Version> {
    let prefix = pattern.split(['*', '?', '[']).next().unwrap_or("");
    let text = tag.strip_prefix(prefix).unwrap_or(tag);
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    if let Ok(v) = semver::Version::parse(text) {
        return Some(v);
    }
    // Two or one components: pad before any pre-release or build part.
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let padded = match core.split('.').count() {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

/// Orders release tags: semantic versions by precedence (pre-releases
/// before their release), then anything else by name.
pub fn sort_tags(tags: &mut [String], pattern: &str) {
    tags.sort_by(
        |a, b| match (tag_version(a, pattern), tag_version(b, pattern)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        },
    );
}

/// Builds the releases, oldest first. `changes` are in release order;
/// `explicit` maps a tag to the migration ids it lists. A release that
/// cannot be used says why in `problem`; the others are unaffected.
pub fn releases(changes: &[TagChanges], explicit: &HashMap<String, Vec<String>>) -> Vec<Release> {
    let mut owner: HashMap<String, String> = HashMap::new(); // id → first release
    // The newest migration released so far, and by which tag.
    let mut newest: Option<(String, String)> = None;
    // Pre-releases since the last final release: a final release may hold
    // what they hold.
    let mut candidates: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let position: HashMap<&str, usize> = c
            .order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut warnings = Vec::new();
        let mut problem: Option<ReleaseError> = None;
        // A file added here under an id an earlier release holds was moved
        // or renamed: it stays with its release.
        let new: Vec<&Change> = c
            .added
            .iter()
            .filter(|a| owner.get(&a.id).is_none_or(|o| candidates.contains(o)))
            .collect();
        let (mut ids, is_explicit): (Vec<String>, bool) = match explicit.get(&c.tag) {
            Some(list) => {
                if let Some(id) = list.iter().find(|id| !position.contains_key(id.as_str())) {
                    problem = Some(ReleaseError::UnknownMigration {
                        tag: c.tag.clone(),
                        id: id.clone(),
                    });
                } else if let Some((id, first)) = list.iter().find_map(|id| {
                    let o = owner.get(id)?;
                    (!candidates.contains(o)).then(|| (id.clone(), o.clone()))
                }) {
                    problem = Some(ReleaseError::AlreadyReleased {
                        tag: c.tag.clone(),
                        id,
                        owner: first,
                    });
                }
                for a in &new {
                    if !list.contains(&a.id) {
                        warnings.push(format!(
                            "{} was added in {} but its list leaves it out: it belongs to no release",
                            a.path, c.tag
                        ));
                    }
                }
                (list.clone(), true)
            }
            None => (new.iter().map(|a| a.id.clone()).collect(), false),
        };
        for m in &c.modified {
            let first = owner.get(&m.id).map_or_else(
                || "an earlier release".to_owned(),
                |t| format!("release {t}"),
            );
            warnings.push(format!(
                "{} was modified after release: it belongs to {first}",
                m.path
            ));
        }
        ids.sort_by_key(|id| {
            (
                position.get(id.as_str()).copied().unwrap_or(usize::MAX),
                id.clone(),
            )
        });
        ids.dedup();
        // A migration new in this release but older than one an earlier
        // release holds would run out of order wherever that one ran.
        if problem.is_none()
            && let Some((newest_id, newest_tag)) = &newest
            && let Some(&newest_pos) = position.get(newest_id.as_str())
            && let Some(late) = ids.iter().find(|id| {
                !owner.contains_key(*id)
                    && position.get(id.as_str()).is_some_and(|p| *p < newest_pos)
            })
        {
            problem = Some(ReleaseError::OutOfOrder {
                tag: c.tag.clone(),
                id: late.clone(),
                newer: newest_id.clone(),
                earlier: newest_tag.clone(),
            });
        }
        for id in &ids {
            owner.entry(id.clone()).or_insert_with(|| c.tag.clone());
            let newer = match &newest {
                None => true,
                Some((n, _)) => match (position.get(id.as_str()), position.get(n.as_str())) {
                    (Some(p), Some(q)) => p > q,
                    (Some(_), None) => true,
                    _ => false,
                },
            };
            if newer {
                newest = Some((id.clone(), c.tag.clone()));
            }
        }
        if c.prerelease {
            candidates.insert(c.tag.clone());
        } else {
            candidates.clear();
        }
        out.push(Release {
            tag: c.tag.clone(),
            migrations: ids,
            explicit: is_explicit,
            prerelease: c.prerelease,
            warnings,
            problem: problem.map(|e| e.to_string()),
        });
    }
    out
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
                // Drifted is not done: what runs next would differ from
                // what ran here.
                .filter(|&&r| matrix.cells(r)[e].state == State::Applied)
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
    use crate::core::migration::{Migration, SourceFile, discover};

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

    /// A tag holding `all` (ids "1", "2", … from names "1_a", …), having
    /// added `added` and modified `modified`.
    fn tag(name: &str, all: &[&str], added: &[&str], modified: &[&str]) -> TagChanges {
        let id = |n: &str| n.split('_').next().unwrap().to_owned();
        let change = |n: &&str| Change {
            path: format!("migrations/{n}.sql"),
            id: id(n),
        };
        TagChanges {
            tag: name.into(),
            prerelease: name.contains('-'),
            order: all.iter().map(|n| id(n)).collect(),
            added: added.iter().map(change).collect(),
            modified: modified.iter().map(change).collect(),
        }
    }

    fn problems(r: &[Release]) -> Vec<Option<&str>> {
        r.iter().map(|r| r.problem.as_deref()).collect()
    }

    #[test]
    fn globs_as_git_reads_them() {
        assert!(tag_matches("v*", "v1.2.0"));
        assert!(tag_matches("v*", "v"));
        assert!(!tag_matches("v*", "release-1"));
        assert!(tag_matches("release/*", "release/1.10.0"));
        assert!(tag_matches("v?.*", "v2.4"));
        assert!(tag_matches("v[0-9]*", "v2.4.0"));
        assert!(!tag_matches("v[0-9]*", "vnext"));
        assert!(tag_matches("v[!a-z]*", "v1"));
    }

    #[test]
    fn semver_order() {
        let mut t: Vec<String> = [
            "v1.10.0",
            "v1.2.0",
            "v1.2.0-rc.1",
            "v0.9.9",
            "vnext",
            "v1.3",
        ]
        .map(String::from)
        .to_vec();
        sort_tags(&mut t, "v*");
        assert_eq!(
            t,
            [
                "v0.9.9",
                "v1.2.0-rc.1",
                "v1.2.0",
                "v1.3",
                "v1.10.0",
                "vnext"
            ]
        );
        let mut t: Vec<String> = ["release/1.10.0", "release/1.9.0"]
            .map(String::from)
            .to_vec();
        sort_tags(&mut t, "release/*");
        assert_eq!(t, ["release/1.9.0", "release/1.10.0"]);
        assert_eq!(tag_version("v2", "v*"), Some(semver::Version::new(2, 0, 0)));
        assert_eq!(tag_version("nightly", "*"), None);
    }

    #[test]
    fn membership_from_git_and_explicit_lists() {
        let changes = [
            tag("v1.0.0", &["1_a", "2_b"], &["1_a", "2_b"], &[]),
            tag("v1.1.0", &["1_a", "2_b", "3_c"], &["3_c"], &["1_a"]),
            tag("v1.2.0", &["1_a", "2_b", "3_c", "4_d"], &["4_d"], &[]),
        ];
        let explicit = HashMap::from([("v1.2.0".to_owned(), vec!["4".to_owned()])]);
        let r = releases(&changes, &explicit);
        assert_eq!(r[0].migrations, ["1", "2"]);
        assert_eq!(r[1].migrations, ["3"]);
        assert_eq!(
            r[1].warnings,
            ["migrations/1_a.sql was modified after release: it belongs to release v1.0.0"]
        );
        assert!(r[2].explicit);
        assert_eq!(problems(&r), [None, None, None]);
        let bad = HashMap::from([("v1.2.0".to_owned(), vec!["9".to_owned()])]);
        assert_eq!(
            problems(&releases(&changes, &bad)),
            [
                None,
                None,
                Some("release v1.2.0 lists 9, which is not a migration at that tag")
            ]
        );
    }

    #[test]
    fn lists_may_not_take_what_another_release_holds_or_drop_files() {
        let changes = [
            tag("v1.0.0", &["1_a"], &["1_a"], &[]),
            tag("v1.1.0", &["1_a", "2_b", "3_c"], &["2_b", "3_c"], &[]),
        ];
        let explicit = HashMap::from([("v1.1.0".to_owned(), vec!["1".to_owned(), "3".to_owned()])]);
        let r = releases(&changes, &explicit);
        assert_eq!(
            r[1].problem.as_deref(),
            Some("release v1.1.0 lists 1, which release v1.0.0 already holds")
        );
        assert_eq!(
            r[1].warnings,
            [
                "migrations/2_b.sql was added in v1.1.0 but its list leaves it out: it belongs to no release"
            ]
        );
    }

    #[test]
    fn a_release_older_than_its_predecessor_is_out_of_order_alone() {
        let changes = [
            tag("v1.0.0", &["3_c"], &["3_c"], &[]),
            tag("v1.1.0", &["1_a", "3_c"], &["1_a"], &[]),
            tag("v1.2.0", &["1_a", "3_c", "4_d"], &["4_d"], &[]),
        ];
        assert_eq!(
            problems(&releases(&changes, &HashMap::new())),
            [
                None,
                Some(
                    "release v1.1.0 is out of order: 1 is older than 3, which an earlier release (v1.0.0) already holds"
                ),
                None
            ]
        );
    }

    #[test]
    fn a_final_release_holds_what_its_candidates_held() {
        let all = ["1_a", "2_b", "3_c"];
        let changes = [
            tag("v1.0.0", &all[..1], &["1_a"], &[]),
            tag("v1.1.0-rc.1", &all[..2], &["2_b"], &[]),
            tag("v1.1.0-rc.2", &all, &["3_c"], &[]),
            // The final release is compared with v1.0.0, not with rc.2.
            tag("v1.1.0", &all, &["2_b", "3_c"], &[]),
        ];
        let r = releases(&changes, &HashMap::new());
        assert_eq!(r[3].migrations, ["2", "3"]);
        assert!(r[1].prerelease && !r[3].prerelease);
        assert_eq!(problems(&r), [None, None, None, None]);
    }

    #[test]
    fn a_renamed_file_stays_with_its_release() {
        // 2_b.sql became 2_bee.sql (same id) in v1.1.0, which adds 3_c.
        let changes = [
            tag("v1.0.0", &["1_a", "2_b"], &["1_a", "2_b"], &[]),
            tag("v1.1.0", &["1_a", "2_bee", "3_c"], &["2_bee", "3_c"], &[]),
        ];
        let r = releases(&changes, &HashMap::new());
        assert_eq!(r[0].migrations, ["1", "2"]);
        assert_eq!(r[1].migrations, ["3"]);
        assert_eq!(problems(&r), [None, None]);
    }

    #[test]
    fn progress_next_environment_and_gaps() {
        let ms = migrations(&["1_a", "2_b"]);
        let row = |v: &str, body: &str| LedgerRow {
            via: None,
            version: v.into(),
            name: "x".into(),
            hash: crate::core::checksum::RecordedHash::Sha256Lf(
                crate::core::checksum::ContentHash::of(body.as_bytes()),
            ),
            applied_at: None,
            success: true,
            error: None,
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
            prerelease: false,
            warnings: vec![],
            problem: None,
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
