//! Publishing a bundle where a forge keeps release files (GitHub release
//! assets, GitLab generic package files), decided from what is there.
//!
//! Forges keep every upload (GitLab) or refuse a second file of a name
//! (GitHub, and GitLab when a group forbids duplicates), and a release must
//! link exactly one file per name, the current one, whose SHA-256 its
//! manifest records. [`converge`] says, for a bundle's manifest and SQL,
//! which files to keep, which to delete and what to upload.
//!
//! The manifest is written first and the SQL last, so a bundle counts as
//! published only when the SQL there holds these bytes and the manifest
//! there is older than it: a run cut short between the two files (or a tag
//! moved back and forth) is never mistaken for a finished one. The manifest
//! itself is never compared by content (it says when it was made).

/// A file already on the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Present {
    /// The forge's id: ids grow with every upload.
    pub id: u64,
    pub name: String,
    /// Lower-case hex, when the forge says.
    pub sha256: Option<String>,
}

/// A file to publish: its name and the SHA-256 of its bytes (hex).
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
}

/// What publishing did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The file there holds this bundle: kept.
    Kept,
    /// Uploaded where there was no file of that name (or one with these
    /// very bytes, written again so the bundle's files are in order).
    Uploaded,
    /// A file of that name held other content (a tag that moved): deleted,
    /// then this one uploaded. `was`: the old content's SHA-256, when known.
    Replaced { was: Option<String> },
}

/// One file's step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    /// Files to delete first: every other file of the name.
    pub delete: Vec<u64>,
    /// The file kept, or None: upload this one.
    pub keep: Option<u64>,
    pub fate: Fate,
}

/// The steps that leave one file per name holding this bundle, in the
/// order to run them: the manifest's, then the SQL's.
pub fn converge(sql: Wanted<'_>, manifest: Wanted<'_>, present: &[Present]) -> [Step; 2] {
    let named = |name: &str| -> Vec<&Present> {
        let mut v: Vec<&Present> = present.iter().filter(|p| p.name == name).collect();
        // The newest first: that is the one a forge serves.
        v.sort_by_key(|p| std::cmp::Reverse(p.id));
        v
    };
    let sqls = named(sql.name);
    let manifests = named(manifest.name);
    let holds = |p: &Present, sha: &str| {
        p.sha256
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(sha))
    };
    let published = sqls
        .iter()
        .find(|p| holds(p, sql.sha256))
        .and_then(|s| manifests.iter().find(|m| m.id < s.id).map(|m| (m.id, s.id)));
    if let Some((m, s)) = published {
        let others =
            |v: &[&Present], keep: u64| v.iter().map(|p| p.id).filter(|&id| id != keep).collect();
        return [
            Step {
                name: manifest.name.to_owned(),
                delete: others(&manifests, m),
                keep: Some(m),
                fate: Fate::Kept,
            },
            Step {
                name: sql.name.to_owned(),
                delete: others(&sqls, s),
                keep: Some(s),
                fate: Fate::Kept,
            },
        ];
    }
    let fresh = |w: Wanted<'_>, v: &[&Present]| Step {
        name: w.name.to_owned(),
        delete: v.iter().map(|p| p.id).collect(),
        keep: None,
        fate: match v.first() {
            None => Fate::Uploaded,
            Some(p) if holds(p, w.sha256) => Fate::Uploaded,
            Some(p) => Fate::Replaced {
                was: p.sha256.as_deref().map(str::to_ascii_lowercase),
            },
        },
    };
    [fresh(manifest, &manifests), fresh(sql, &sqls)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: Wanted = Wanted {
        name: "prod.sql",
        sha256: "aa",
    };
    const MANIFEST: Wanted = Wanted {
        name: "prod.manifest.json",
        sha256: "m2",
    };

    fn present(id: u64, name: &str, sha: &str) -> Present {
        Present {
            id,
            name: name.into(),
            sha256: (!sha.is_empty()).then(|| sha.into()),
        }
    }

    /// (what is there, then per file: deleted, kept, fate).
    type Case = (
        &'static str,
        Vec<Present>,
        [(Vec<u64>, Option<u64>, Fate); 2],
    );

    #[test]
    fn one_file_per_name_and_the_manifest_never_newer_than_its_sql() {
        let replaced = |was: &str| Fate::Replaced {
            was: Some(was.into()),
        };
        let cases: Vec<Case> = vec![
            (
                "nothing there: both uploaded",
                vec![],
                [
                    (vec![], None, Fate::Uploaded),
                    (vec![], None, Fate::Uploaded),
                ],
            ),
            (
                "published before: both kept",
                vec![
                    present(1, "prod.manifest.json", "m1"),
                    present(2, "prod.sql", "aa"),
                ],
                [(vec![], Some(1), Fate::Kept), (vec![], Some(2), Fate::Kept)],
            ),
            (
                "published twice where duplicates are allowed: the extra copies go",
                vec![
                    present(1, "prod.manifest.json", "m1"),
                    present(2, "prod.sql", "aa"),
                    present(3, "prod.manifest.json", "m2"),
                    present(4, "prod.sql", "aa"),
                ],
                [
                    (vec![1], Some(3), Fate::Kept),
                    (vec![2], Some(4), Fate::Kept),
                ],
            ),
            (
                "a tag that moved: both replaced",
                vec![
                    present(1, "prod.manifest.json", "m1"),
                    present(2, "prod.sql", "bb"),
                ],
                [
                    (vec![1], None, replaced("m1")),
                    (vec![2], None, replaced("bb")),
                ],
            ),
            (
                "cut short after the manifest: the SQL there is older, so written again",
                vec![
                    present(2, "prod.sql", "aa"),
                    present(3, "prod.manifest.json", "m9"),
                ],
                [
                    (vec![3], None, replaced("m9")),
                    (vec![2], None, Fate::Uploaded),
                ],
            ),
            (
                "the SQL without its manifest",
                vec![present(2, "prod.sql", "aa")],
                [
                    (vec![], None, Fate::Uploaded),
                    (vec![2], None, Fate::Uploaded),
                ],
            ),
            (
                "no digest known (an older GitHub Enterprise): written again",
                vec![
                    present(1, "prod.manifest.json", ""),
                    present(2, "prod.sql", ""),
                ],
                [
                    (vec![1], None, Fate::Replaced { was: None }),
                    (vec![2], None, Fate::Replaced { was: None }),
                ],
            ),
            (
                "other bundles' files are left alone",
                vec![
                    present(1, "staging.manifest.json", "s1"),
                    present(2, "staging.sql", "ss"),
                ],
                [
                    (vec![], None, Fate::Uploaded),
                    (vec![], None, Fate::Uploaded),
                ],
            ),
            (
                "digests compare without case",
                vec![
                    present(1, "prod.manifest.json", "M1"),
                    present(2, "prod.sql", "AA"),
                ],
                [(vec![], Some(1), Fate::Kept), (vec![], Some(2), Fate::Kept)],
            ),
        ];
        for (case, there, want) in cases {
            let got = converge(SQL, MANIFEST, &there);
            assert_eq!(got[0].name, "prod.manifest.json", "{case}");
            assert_eq!(got[1].name, "prod.sql", "{case}");
            for (step, (delete, keep, fate)) in got.iter().zip(want) {
                assert_eq!(
                    (&step.delete, step.keep, &step.fate),
                    (&delete, keep, &fate),
                    "{case}: {}",
                    step.name
                );
            }
        }
    }
}
