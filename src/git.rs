//! The git command, for what envgate needs of the repository: release
//! tags, the files under the migrations directory at each tag, and the
//! configuration's commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Repo {
    dir: PathBuf,
}

/// The last change of one line, as `git blame` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blame {
    pub commit: String,
    pub author: String,
    pub email: String,
}

/// A file in a tree: its path (relative to the directory envgate runs in)
/// and its blob id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub blob: String,
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

    /// The files under `dir` at a tag, recursively (paths relative to this
    /// directory, as git prints them with -z: unquoted).
    pub fn tree(&self, tag: &str, dir: &str) -> Result<Vec<TreeEntry>, String> {
        let rev = format!("refs/tags/{tag}");
        let out = self.git(&["ls-tree", "-r", "-z", &rev, "--", dir])?;
        Ok(out
            .split('\0')
            .filter_map(|line| {
                // "<mode> <type> <id>\t<path>"
                let (meta, path) = line.split_once('\t')?;
                let mut parts = meta.split(' ');
                let (_mode, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
                (kind == "blob").then(|| TreeEntry {
                    path: path.to_owned(),
                    blob: id.to_owned(),
                })
            })
            .collect())
    }

    /// The contents of blobs, by id, through one `git cat-file --batch`.
    pub fn blobs(&self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>, String> {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::process::Stdio;
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("releases come from git tags, but git cannot run: {e}"))?;
        let mut stdin = child.stdin.take().expect("piped");
        let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
        // Written from another thread: git answers while it reads, and
        // both pipes have finite buffers.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let mut header = String::new();
        for id in ids {
            header.clear();
            reader
                .read_line(&mut header)
                .map_err(|e| format!("git cat-file: {e}"))?;
            // "<id> blob <size>" or "<id> missing"
            let mut parts = header.split_whitespace();
            let size = match (parts.next(), parts.next(), parts.next()) {
                (Some(_), Some("blob"), Some(size)) => size
                    .parse::<usize>()
                    .map_err(|_| format!("git cat-file: bad header {header:?}"))?,
                _ => return Err(format!("git cat-file: no blob {id}")),
            };
            let mut bytes = vec![0; size + 1]; // the content, then "\n"
            reader
                .read_exact(&mut bytes)
                .map_err(|e| format!("git cat-file: {e}"))?;
            bytes.pop();
            out.insert(id.clone(), bytes);
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(out)
    }

    /// Whether a file (relative to this directory) differs from HEAD.
    pub fn is_modified(&self, path: &str) -> bool {
        self.git(&["status", "--porcelain", "--", path])
            .is_ok_and(|s| !s.trim().is_empty())
    }

    /// Who last changed line `line` (1-based) of a file: the commit and
    /// its author as git records them (self-declared); None outside a
    /// repository or for a line not committed yet.
    pub fn blame_line(&self, path: &str, line: usize) -> Option<Blame> {
        let range = format!("{line},{line}");
        let out = self
            .git(&["blame", "--porcelain", "-L", &range, "--", path])
            .ok()?;
        let mut lines = out.lines();
        let commit = lines.next()?.split(' ').next()?.to_owned();
        if commit.bytes().all(|b| b == b'0') {
            return None;
        }
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
        };
        Some(Blame {
            commit,
            author: field("author ").unwrap_or_default(),
            email: field("author-mail ")
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_owned(),
        })
    }

    /// The commit checked out, if this is a repository.
    pub fn head(&self) -> Option<String> {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .map(|s| s.trim().to_owned())
    }
}
