//! The git command, for what envgate needs of the repository: release
//! tags, the migration files each release added or changed, and the
//! configuration's commit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The empty tree: what the first release is compared with.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

pub struct Repo {
    dir: PathBuf,
}

/// A file a release added or modified (path relative to the repository
/// directory envgate runs in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub added: bool,
    pub path: String,
}

impl Repo {
    /// The repository holding `dir` (envgate.toml's directory).
    pub fn at(dir: &Path) -> Repo {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Repo {
            dir: dir.to_path_buf(),
        }
    }

    fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Tags matching a glob pattern (git's own matching).
    pub fn tags(&self, pattern: &str) -> Result<Vec<String>, String> {
        Ok(self
            .git(&["tag", "--list", pattern])?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Whether a tag exists.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/tags/{tag}"),
        ])
        .is_ok()
    }

    /// Files under `dir` added or modified between two revisions (`from`
    /// None: the empty tree), paths relative to this directory.
    pub fn changes(&self, from: Option<&str>, to: &str, dir: &str) -> Result<Vec<Change>, String> {
        let from = from.unwrap_or(EMPTY_TREE);
        let out = self.git(&[
            "diff",
            "--relative",
            "--no-renames",
            "--name-status",
            from,
            to,
            "--",
            dir,
        ])?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let (status, path) = line.split_once('\t')?;
                match status.chars().next()? {
                    'A' => Some(Change {
                        added: true,
                        path: path.to_owned(),
                    }),
                    'M' => Some(Change {
                        added: false,
                        path: path.to_owned(),
                    }),
                    _ => None,
                }
            })
            .collect())
    }

    /// The commit checked out, if this is a repository.
    pub fn head(&self) -> Option<String> {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .map(|s| s.trim().to_owned())
    }
}
