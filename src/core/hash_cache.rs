//! The content-hash cache: what proves a migration file unchanged since it
//! was last hashed, so that `status` need not read it again.
//!
//! An entry holds a file's stamp — size, modification and change times to
//! the nanosecond, inode and device — and the SHA-256 of its content. A file
//! whose stamp is the same is taken as unchanged, as git's index does. Two
//! rules keep that honest:
//!
//! - An entry is only made for a file whose change time (`ctime`, which
//!   every write, rename or `touch` moves and no user can set back) is older
//!   than the moment it was stamped by more than [`MARGIN_NS`]: a file
//!   written within that window could be written again within the same
//!   timestamp tick, with the same size, and look unchanged ("racily
//!   clean"). Such files are hashed every time until they settle.
//! - A zero `ctime` or `mtime` (file systems that keep none) is never
//!   trusted.
//!
//! The cache is a value here; reading and writing its file is the edge's
//! business. A damaged or unknown file decodes as empty.

use super::checksum::ContentHash;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How old a file's change time must be, relative to when it was stamped,
/// for its hash to be kept: wider than any file system's timestamp
/// granularity (ext4 and XFS: nanoseconds; FAT: 2 s; some network file
/// systems: 1 s).
pub const MARGIN_NS: i128 = 3_000_000_000;

const MAGIC: &[u8; 8] = b"EGHASH1\n";

/// What identifies one state of a file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl Stamp {
    /// Whether a hash taken of the file at `now_ns` may be kept: its change
    /// time is set and old enough that a later write shows in the stamp.
    pub fn settled(&self, now_ns: i128) -> bool {
        self.ctime_ns > 0 && self.mtime_ns > 0 && self.ctime_ns + MARGIN_NS < now_ns
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HashCache {
    entries: HashMap<String, (Stamp, ContentHash)>,
    changed: bool,
}

impl HashCache {
    /// The hash of `path` if its stamp is the one recorded.
    pub fn get(&self, path: &str, stamp: &Stamp) -> Option<ContentHash> {
        self.entries
            .get(path)
            .filter(|(s, _)| s == stamp)
            .map(|(_, h)| *h)
    }

    /// Records a hash taken of `path` at `now_ns`, if the file has settled;
    /// otherwise forgets any entry it had.
    pub fn put(&mut self, path: &str, stamp: Stamp, hash: ContentHash, now_ns: i128) {
        if stamp.settled(now_ns) {
            if self.entries.get(path) != Some(&(stamp, hash)) {
                self.entries.insert(path.to_owned(), (stamp, hash));
                self.changed = true;
            }
        } else if self.entries.remove(path).is_some() {
            self.changed = true;
        }
    }

    /// Drops the entries of files no longer seen.
    pub fn keep_only<'p>(&mut self, seen: impl IntoIterator<Item = &'p str>) {
        let seen: std::collections::HashSet<&str> = seen.into_iter().collect();
        let before = self.entries.len();
        self.entries.retain(|p, _| seen.contains(p.as_str()));
        self.changed |= self.entries.len() != before;
    }

    /// Whether it differs from what was decoded (worth writing back).
    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file's bytes: a magic line, the entries sorted by path, and the
    /// SHA-256 of all that.
    pub fn encode(&self) -> Vec<u8> {
        let mut paths: Vec<&String> = self.entries.keys().collect();
        paths.sort_unstable();
        let mut out = Vec::with_capacity(8 + paths.len() * 160);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(paths.len() as u64).to_le_bytes());
        for p in paths {
            let (s, h) = &self.entries[p];
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
            out.extend_from_slice(&s.mtime_ns.to_le_bytes());
            out.extend_from_slice(&s.ctime_ns.to_le_bytes());
            out.extend_from_slice(&s.ino.to_le_bytes());
            out.extend_from_slice(&s.dev.to_le_bytes());
            out.extend_from_slice(h.bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Reads what [`HashCache::encode`] wrote; anything else (another
    /// version, a torn or edited file) is an empty cache.
    pub fn decode(bytes: &[u8]) -> HashCache {
        Self::try_decode(bytes).unwrap_or_default()
    }

    fn try_decode(bytes: &[u8]) -> Option<HashCache> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Reader(body.strip_prefix(MAGIC.as_slice())?);
        let n = r.u64()?;
        let mut entries = HashMap::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let len = r.u32()? as usize;
            let path = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
            let stamp = Stamp {
                size: r.u64()?,
                mtime_ns: r.i128()?,
                ctime_ns: r.i128()?,
                ino: r.u64()?,
                dev: r.u64()?,
            };
            let hash = ContentHash::from_bytes(r.take(32)?.try_into().ok()?);
            entries.insert(path, (stamp, hash));
        }
        r.0.is_empty().then_some(HashCache {
            entries,
            changed: false,
        })
    }
}

struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_800_000_000_000_000_000;

    fn stamp(ctime_ns: i128) -> Stamp {
        Stamp {
            size: 10,
            mtime_ns: ctime_ns,
            ctime_ns,
            ino: 7,
            dev: 1,
        }
    }

    #[test]
    fn only_settled_files_are_kept_and_any_change_of_stamp_misses() {
        let h = ContentHash::of(b"SELECT 1;\n");
        let mut c = HashCache::default();
        // Changed a moment ago: could change again within the same tick.
        c.put("a.sql", stamp(NOW - 1_000_000_000), h, NOW);
        assert!(c.is_empty() && !c.changed());
        let old = stamp(NOW - 60_000_000_000);
        c.put("a.sql", old, h, NOW);
        assert_eq!(c.get("a.sql", &old), Some(h));
        for other in [
            Stamp { size: 11, ..old },
            Stamp {
                mtime_ns: old.mtime_ns + 1,
                ..old
            },
            Stamp {
                ctime_ns: old.ctime_ns + 1,
                ..old
            },
            Stamp { ino: 8, ..old },
            Stamp { dev: 2, ..old },
        ] {
            assert_eq!(c.get("a.sql", &other), None, "{other:?}");
        }
        // No change time kept by the file system: never trusted.
        assert!(!stamp(0).settled(NOW));
        // A file that is no longer settled drops its entry.
        c.put("a.sql", stamp(NOW), h, NOW);
        assert_eq!(c.get("a.sql", &old), None);
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut c = HashCache::default();
        let old = stamp(NOW - 60_000_000_000);
        c.put("m/1_a.sql", old, ContentHash::of(b"a"), NOW);
        c.put("m/2_b.sql", old, ContentHash::of(b"b"), NOW);
        let bytes = c.encode();
        let back = HashCache::decode(&bytes);
        assert_eq!(back.get("m/2_b.sql", &old), Some(ContentHash::of(b"b")));
        assert!(!back.changed());
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 1);
        assert!(HashCache::decode(&torn).is_empty());
        let mut edited = bytes;
        edited[20] ^= 1;
        assert!(HashCache::decode(&edited).is_empty());
        let mut kept = back;
        kept.keep_only(["m/1_a.sql"]);
        assert!(kept.changed() && kept.len() == 1);
    }
}
