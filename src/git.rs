//! The git command, for what envgate needs of the repository: release
//! tags, the migration files each release added or changed, and the
//! configuration's commit.

use std::path::{Path, PathBuf};
use std::process::Command;

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
            .map_err(|e| format!("releases come from git tags, but git cannot run: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("not a git repository") {
                return Err(format!(
                    "releases come from git tags, but {} is not in a git repository",
                    self.dir.display()
                ));
            }
            return Err(format!("git {}: {}", args.join(" "), stderr.trim()));
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

    /// Files under `dir` added or modified between two release tags (`from`
    /// None: since the beginning), paths relative to this directory.
    pub fn changes(&self, from: Option<&str>, to: &str, dir: &str) -> Result<Vec<Change>, String> {
        let from = match from {
            Some(tag) => format!("refs/tags/{tag}"),
            // The empty tree, in this repository's hash (SHA-1 or SHA-256).
            None => self
                .git(&["hash-object", "-t", "tree", "/dev/null"])?
                .trim()
                .to_owned(),
        };
        let to = format!("refs/tags/{to}");
        let out = self.git(&[
            "diff",
            "--relative",
            "--no-renames",
            "--name-status",
            "-z",
            &from,
            &to,
            "--",
            dir,
        ])?;
        // -z: "<status>\0<path>\0" pairs, paths unquoted.
        let mut fields = out.split('\0');
        let mut changes = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            let added = match status.chars().next() {
                Some('A') => true,
                Some('M') => false,
                _ => continue,
            };
            changes.push(Change {
                added,
                path: path.to_owned(),
            });
        }
        Ok(changes)
    }

    /// The commit checked out, if this is a repository.
    pub fn head(&self) -> Option<String> {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .map(|s| s.trim().to_owned())
    }
}
