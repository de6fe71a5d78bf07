//! Reading the migrations directory from disk, for discovery.
//!
//! Projects hold thousands of small files, so the cost is system calls:
//! entries are typed from the directory listing (no `stat` per file), files
//! are read without a size probe, and reading is spread over a few threads.
//!
//! Everything here may be hostile (a pull request can add any file), so
//! reading is bounded: special files (FIFOs, devices, sockets) are refused,
//! one file is read up to a limit (`max_migration_size`), the walk stops at
//! a depth and a number of entries, and a symbolic link that leads out of
//! the project is refused unless the configuration allows it.

use crate::config::Config;
use crate::core::checksum::ContentHash;
use crate::core::hash_cache::{HashCache, Stamp};
use crate::core::migration::{self, Discovery, Ignored, SourceFile};
use crate::core::sql::Dialect;
use crate::core::tools::Layout;
use crate::core::tools::{SKIPPED_DIRS, Tool};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A file to read: the path users see, the path on disk, whether it is a
/// regular file.
type Wanted = (String, PathBuf, bool);

/// What a walk found: the files wanted, those ignored, and (when asked)
/// each wanted file's stamp.
type Walked = (Vec<Wanted>, Vec<Ignored>, Vec<Option<Stamp>>);

/// How far reading may go.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest file read, in bytes.
    pub max_file: u64,
    /// Where symbolic links may lead (canonical paths); empty: anywhere.
    pub roots: Vec<PathBuf>,
}

/// Directories deeper than this are not walked.
pub const MAX_DEPTH: usize = 32;
/// A walk that meets more entries than this stops: the directory is not a
/// migrations directory.
pub const MAX_ENTRIES: usize = 200_000;

/// Files found in the migrations directory.
pub struct Loaded {
    pub files: Vec<SourceFile>,
    pub ignored: Vec<Ignored>,
}

/// Reads the files a layout may need from `dir`; `label` is the directory
/// as users wrote it (e.g. `migrations`), used to build the paths they see.
/// Files that can only be ignored are listed, not read. Layouts that nest
/// (diesel, Django, Flyway, …) are walked recursively, skipping hidden
/// directories and dependency or build folders.
pub fn migrations_dir(
    dir: &Path,
    label: &str,
    tool: Tool,
    limits: &Limits,
) -> Result<Loaded, String> {
    let (wanted, ignored, _) = walk(dir, label, tool, limits, false)?;
    Ok(Loaded {
        files: read_all(wanted, limits.max_file)?,
        ignored,
    })
}

/// The files of the migrations directory a layout may need, and those it
/// ignores; nothing is read.
/// With `stamps`, each wanted file's [`Stamp`] too, taken relative to its
/// directory (no path walk from the root) — none for a link, whose target
/// is stamped when it is read.
fn walk(
    dir: &Path,
    label: &str,
    tool: Tool,
    limits: &Limits,
    stamps: bool,
) -> Result<Walked, String> {
    let mut to_stamp: Vec<Option<std::fs::DirEntry>> = Vec::new();
    let label = label.trim_end_matches('/');
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut ignored = Vec::new();
    let mut pending: Vec<(PathBuf, String, usize)> = vec![(dir.to_path_buf(), String::new(), 0)];
    let mut seen = 0usize;
    while let Some((on_disk, rel_dir, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&on_disk).map_err(|e| {
            let shown = if rel_dir.is_empty() {
                label.to_owned()
            } else {
                format!("{label}/{rel_dir}")
            };
            if e.kind() == std::io::ErrorKind::NotFound && rel_dir.is_empty() {
                format!(
                    "{shown}: migrations directory not found (set `migrations` in envgate.toml)"
                )
            } else {
                format!("{shown}: cannot read the migrations directory: {e}")
            }
        })?;
        for entry in entries {
            let entry =
                entry.map_err(|e| format!("{label}: cannot list the migrations directory: {e}"))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!(
                    "{}: more than {MAX_ENTRIES} entries under the migrations directory; is `migrations` right?",
                    if label.is_empty() { "/" } else { label }
                ));
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                ignored.push(Ignored {
                    path: format!("{label}/{}", name.to_string_lossy()),
                    reason: "file name is not UTF-8".to_owned(),
                });
                continue;
            };
            let rel = if rel_dir.is_empty() {
                name.to_owned()
            } else {
                format!("{rel_dir}/{name}")
            };
            let path = if label.is_empty() || label == "." {
                rel.clone()
            } else {
                format!("{label}/{rel}")
            };
            let mut file_type = entry
                .file_type()
                .map_err(|e| format!("{path}: cannot read: {e}"))?;
            if file_type.is_symlink() {
                // A migration may be a link, within the project; a dangling
                // one is an error below.
                if let Ok(meta) = std::fs::metadata(entry.path()) {
                    file_type = meta.file_type();
                    check_link(&entry.path(), &path, limits)?;
                }
            }
            if file_type.is_dir() {
                let skip = name.starts_with('.') || SKIPPED_DIRS.contains(&name);
                if tool.recursive() && !skip && depth < MAX_DEPTH {
                    pending.push((entry.path(), rel, depth + 1));
                } else if !tool.recursive() {
                    ignored.push(Ignored {
                        path,
                        reason: "directory".to_owned(),
                    });
                }
                continue;
            }
            if tool == Tool::Envgate {
                if let migration::FileKind::Ignored(reason) = migration::classify(name) {
                    ignored.push(Ignored { path, reason });
                    continue;
                }
            } else if !tool.candidate(&rel) {
                ignored.push(Ignored {
                    path,
                    reason: format!("not part of {tool}'s layout"),
                });
                continue;
            }
            if !file_type.is_file() && std::fs::metadata(entry.path()).is_ok() {
                return Err(format!(
                    "{}: not a regular file ({}): envgate reads only files",
                    visible(&path),
                    special_kind(&file_type)
                ));
            }
            wanted.push((path, entry.path(), file_type.is_file()));
            if stamps {
                let own = entry.file_type().is_ok_and(|t| t.is_file());
                to_stamp.push(own.then_some(entry));
            }
        }
    }
    // A stat costs microseconds on some machines: on a few threads, each
    // relative to its directory.
    let stamped = if stamps {
        on_threads(to_stamp, |entry, _| {
            Ok(entry.and_then(|e| e.metadata().ok()).map(|m| stamp_of(&m)))
        })?
    } else {
        Vec::new()
    };
    Ok((wanted, ignored, stamped))
}

fn visible(path: &str) -> std::borrow::Cow<'_, str> {
    crate::core::text::visible(path)
}

/// What kind of special file this is.
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file or directory"
    }
}

/// Refuses a link that resolves outside the allowed roots.
fn check_link(on_disk: &Path, shown: &str, limits: &Limits) -> Result<(), String> {
    if limits.roots.is_empty() {
        return Ok(());
    }
    let target = std::fs::canonicalize(on_disk)
        .map_err(|e| format!("{}: cannot follow the link: {e}", visible(shown)))?;
    if limits.roots.iter().any(|r| target.starts_with(r)) {
        return Ok(());
    }
    Err(format!(
        "{}: a symbolic link to {}, outside the project; envgate does not follow it \
         (set allow_links_outside = true in envgate.toml if it is meant)",
        visible(shown),
        visible(&target.display().to_string())
    ))
}

/// Reads every file, on a few threads.
fn read_all(wanted: Vec<Wanted>, max_file: u64) -> Result<Vec<SourceFile>, String> {
    on_threads(wanted, |w, buf| read_one(w, buf, max_file))
}

/// `each` over every wanted file, on a few threads, with a read buffer per
/// thread.
fn on_threads<I: Send, T: Send>(
    wanted: Vec<I>,
    each: impl Fn(I, &mut [u8]) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    const PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
        .min(wanted.len().div_ceil(PER_THREAD).max(1));
    let read_chunk = |chunk: Vec<I>| {
        // One buffer per thread: zeroing a fresh one per file would cost
        // more than reading it.
        let mut buf = vec![0u8; 64 * 1024];
        chunk
            .into_iter()
            .map(|w| each(w, &mut buf))
            .collect::<Result<Vec<_>, String>>()
    };
    if threads == 1 {
        return read_chunk(wanted);
    }
    let chunk = wanted.len().div_ceil(threads);
    let read_chunk = &read_chunk;
    let mut chunks: Vec<Vec<I>> = Vec::with_capacity(threads);
    let mut rest = wanted;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || read_chunk(c)))
            .collect();
        let mut files = Vec::new();
        for h in handles {
            files.extend(
                h.join()
                    .map_err(|_| "a reader thread panicked".to_owned())??,
            );
        }
        Ok(files)
    })
}

fn read_one(
    (path, on_disk, is_regular): Wanted,
    buf: &mut [u8],
    max_file: u64,
) -> Result<SourceFile, String> {
    let mut bytes = Vec::new();
    let mut read = || -> std::io::Result<()> {
        let mut file = File::open(&on_disk)?;
        loop {
            let n = file.read(buf)?;
            bytes.extend_from_slice(&buf[..n]);
            if bytes.len() as u64 > max_file {
                return Err(std::io::Error::other(format!(
                    "larger than max_migration_size ({max_file} bytes); raise it in envgate.toml if the file is meant"
                )));
            }
            // A regular file returns fewer bytes than asked only at its end
            // (POSIX), which saves a second read per file; anything else
            // (a pipe, say) is read until it says 0.
            if n == 0 || (n < buf.len() && is_regular) {
                return Ok(());
            }
        }
    };
    read().map_err(|e| format!("{}: cannot read: {e}", visible(&path)))?;
    Ok(SourceFile { path, bytes })
}

/// Where the hash cache of a project lives: beside envgate.toml, with the
/// default control store, whatever store is configured (it describes this
/// checkout's files).
pub fn hash_cache_path(config: &Config) -> PathBuf {
    super::source::config_dir(config).join(".envgate/hashes")
}

/// What `status` needs of the migrations: their identities and hashes, not
/// their SQL. With envgate's layout the hash cache spares reading every
/// file whose stamp proves it unchanged (see [`HashCache`]); those
/// migrations carry no SQL text, so this discovery only ever feeds a
/// matrix. Other layouts parse their files' content and read them all.
pub fn discover_hashes(config: &Config, dialect: Option<Dialect>) -> Result<Discovery, String> {
    if config.format != Tool::Envgate || config.migrations_dir.is_file() {
        return discover(config, dialect);
    }
    let dir = &config.migrations_dir;
    let limits = read_limits(config, dir);
    let (wanted, ignored, stamps) = walk(dir, &config.migrations, Tool::Envgate, &limits, true)?;
    let cache_path = hash_cache_path(config);
    let mut cache = std::fs::read(&cache_path)
        .map(|b| HashCache::decode(&b))
        .unwrap_or_default();
    let now = now_ns();
    // Files whose stamp the cache holds are not opened; the others are
    // read and hashed on a few threads.
    let mut files: Vec<(SourceFile, ContentHash)> = Vec::with_capacity(wanted.len());
    let mut to_read = Vec::new();
    for (w, stamp) in wanted.into_iter().zip(stamps) {
        match stamp.and_then(|s| cache.get(&w.0, &s)) {
            Some(hash) => files.push((
                SourceFile {
                    path: w.0,
                    bytes: Vec::new(),
                },
                hash,
            )),
            None => to_read.push((w, stamp)),
        }
    }
    let hits = files.len();
    let read = on_threads(to_read, |(w, stamp), buf| {
        // A link is stamped through it, before it is read: a write in
        // between changes the stamp, so the next run reads it again.
        let stamp = stamp.or_else(|| {
            std::fs::metadata(&w.1)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| stamp_of(&m))
        });
        let file = read_one(w, buf, limits.max_file)?;
        let hash = ContentHash::of(&file.bytes);
        Ok((file, hash, stamp))
    })?;
    let mut fresh = Vec::with_capacity(read.len());
    for (file, hash, stamp) in read {
        if let Some(stamp) = stamp {
            fresh.push((file.path.clone(), stamp, hash));
        }
        files.push((file, hash));
    }
    // Entries of vanished (or changed) files are dropped; when every entry
    // was used, there are none.
    let seen: Option<Vec<String>> =
        (hits != cache.len()).then(|| files.iter().map(|(f, _)| f.path.clone()).collect());
    let mut d = migration::discover_known(files).map_err(|e| e.to_string())?;
    d.ignored.extend(ignored);
    d.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    // Only what discovery accepted is remembered.
    let read_count = fresh.len();
    for (path, stamp, hash) in fresh {
        cache.put(&path, stamp, hash, now);
    }
    if let Some(seen) = &seen {
        cache.keep_only(seen.iter().map(String::as_str));
    }
    tracing::debug!(from_cache = hits, read = read_count, "migration hashes");
    if cache.changed()
        && let Err(e) = cache_path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| super::atomic_file::write(&cache_path, &cache.encode()))
    {
        tracing::debug!("hash cache {} not written: {e}", cache_path.display());
    }
    Ok(d)
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Stamp {
        size: m.size(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        ino: m.ino(),
        dev: m.dev(),
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Reads the migrations directory and discovers the migrations in it, in
/// the project's layout. `dialect`: the target's, where it matters
/// (Liquibase skips changes for other databases).
pub fn discover(config: &Config, dialect: Option<Dialect>) -> Result<Discovery, String> {
    let tool = config.format;
    // Liquibase: `migrations` may name the root changelog; read its folder.
    let (dir, label) = if config.migrations_dir.is_file() {
        let label = config
            .migrations
            .rsplit_once('/')
            .map_or(".", |(d, _)| d)
            .to_owned();
        (
            config
                .migrations_dir
                .parent()
                // `changelog.xml` beside a relative `-c envgate.toml`: its
                // parent is the empty path, which names no directory.
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            label,
        )
    } else {
        (config.migrations_dir.clone(), config.migrations.clone())
    };
    let mut loaded = migrations_dir(&dir, &label, tool, &read_limits(config, &dir))?;
    // Further folders (formats whose tools read several): their files join
    // the first folder's and are ordered together.
    let base = super::source::config_dir(config);
    for more in &config.more_migrations {
        let dir = base.join(more);
        let extra = migrations_dir(&dir, more, tool, &read_limits(config, &dir))?;
        loaded.files.extend(extra.files);
        loaded.ignored.extend(extra.ignored);
    }
    let layout = Layout {
        root: &config.migrations,
        dialect,
    };
    let mut d = tool
        .discover(loaded.files, &layout)
        .map_err(|e| e.to_string())?;
    d.ignored.extend(loaded.ignored);
    d.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(d)
}

/// How far reading the migrations directory may go: the configured size
/// limit, and links only within the project's directory and the
/// migrations directory (unless `allow_links_outside`).
fn read_limits(config: &Config, dir: &Path) -> Limits {
    let roots = if config.allow_links_outside {
        Vec::new()
    } else {
        [super::source::config_dir(config), dir.to_path_buf()]
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect()
    };
    Limits {
        max_file: config.max_migration_size,
        roots,
    }
}
