//! Reading the migrations directory from disk, for discovery.

use crate::core::migration::{self, Ignored, SourceFile};
use std::path::Path;

/// Files found in the migrations directory.
pub struct Loaded {
    pub files: Vec<SourceFile>,
    pub ignored: Vec<Ignored>,
}

/// Reads the files discovery may need from `dir`; `label` is the directory
/// as users wrote it (e.g. `migrations`), used to build the paths they see.
/// Files whose names can only be ignored are listed, not read.
pub fn migrations_dir(dir: &Path, label: &str) -> Result<Loaded, String> {
    let label = label.trim_end_matches('/');
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{label}: migrations directory not found (set `migrations` in envgate.toml)")
        } else {
            format!("{label}: cannot read the migrations directory: {e}")
        }
    })?;
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("{label}: cannot list the migrations directory: {e}"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            ignored.push(Ignored {
                path: format!("{label}/{}", name.to_string_lossy()),
                reason: "file name is not UTF-8".to_owned(),
            });
            continue;
        };
        let path = format!("{label}/{name}");
        // Follows symbolic links, as a migration may be one.
        let meta =
            std::fs::metadata(entry.path()).map_err(|e| format!("{path}: cannot read: {e}"))?;
        if meta.is_dir() {
            ignored.push(Ignored {
                path,
                reason: "directory".to_owned(),
            });
            continue;
        }
        if !migration::is_candidate(name) {
            let migration::FileKind::Ignored(reason) = migration::classify(name) else {
                unreachable!("not a candidate")
            };
            ignored.push(Ignored { path, reason });
            continue;
        }
        let bytes = std::fs::read(entry.path()).map_err(|e| format!("{path}: cannot read: {e}"))?;
        files.push(SourceFile { path, bytes });
    }
    Ok(Loaded { files, ignored })
}
