//! The audit trail: one append-only record per action, chained by hashes.
//!
//! Each record carries the SHA-256 of the previous record and its own
//! SHA-256 over a canonical serialisation of everything else, so changing,
//! inserting or removing a record anywhere but at the very end breaks the
//! chain, and [`verify`] says where.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash a chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is sealed into the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub at: String,
    /// `apply`, `export`, `promote`, `rollback`, `refused`, `mode_change`,
    /// `mode_confirm`, `drift_detected`, `drift_accepted`.
    pub action: String,
    pub actor: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub migrations: Vec<String>,
    pub bundle_sha256: Option<String>,
    /// `ok`, `failed`, `refused`, …
    pub outcome: String,
    pub error: Option<String>,
    /// Anything else worth keeping: the reason given, the old and new hash,
    /// the modes before and after, the config's commit.
    pub details: Option<String>,
}

/// A sealed record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical text a record's hash covers: its sequence number, its
/// entry and the previous hash, as compact JSON in field order.
fn canonical(seq: u64, entry: &Entry, prev_hash: &str) -> String {
    #[derive(Serialize)]
    struct Canon<'a> {
        seq: u64,
        entry: &'a Entry,
        prev_hash: &'a str,
    }
    serde_json::to_string(&Canon {
        seq,
        entry,
        prev_hash,
    })
    .expect("entries serialize")
}

fn hash(seq: u64, entry: &Entry, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(canonical(seq, entry, prev_hash).as_bytes()))
}

/// Seals an entry after `previous` (None: the first record).
pub fn seal(previous: Option<&Record>, entry: Entry) -> Record {
    seal_after(previous.map(|p| (p.seq, p.hash.as_str())), entry)
}

/// Seals an entry after the record with this sequence number and hash.
pub fn seal_after(previous: Option<(u64, &str)>, entry: Entry) -> Record {
    let (seq, prev_hash) = previous.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h.to_owned()));
    let hash = hash(seq, &entry, &prev_hash);
    Record {
        seq,
        entry,
        prev_hash,
        hash,
    }
}

/// Where a chain was tampered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tamper {
    pub seq: u64,
    pub problem: String,
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}", self.seq, self.problem)
    }
}

/// Checks a whole chain, oldest first.
pub fn verify(records: &[Record]) -> Result<(), Tamper> {
    let mut expected_prev = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let want_seq = i as u64 + 1;
        if r.seq != want_seq {
            return Err(Tamper {
                seq: r.seq,
                problem: format!(
                    "out of sequence: expected record {want_seq} (a record was removed or inserted)"
                ),
            });
        }
        if r.prev_hash != expected_prev {
            return Err(Tamper {
                seq: r.seq,
                problem: "its link to the previous record is broken (a record before it was changed or removed)".into(),
            });
        }
        if hash(r.seq, &r.entry, &r.prev_hash) != r.hash {
            return Err(Tamper {
                seq: r.seq,
                problem: "its content does not match its hash (the record was changed)".into(),
            });
        }
        expected_prev = r.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> Entry {
        Entry {
            at: "2026-11-25T12:00:00Z".into(),
            action: action.into(),
            actor: "alice".into(),
            environment: Some("prod".into()),
            outcome: "ok".into(),
            ..Entry::default()
        }
    }

    fn chain() -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        for a in ["apply", "export", "promote"] {
            let r = seal(out.last(), entry(a));
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain();
        assert_eq!(c[0].prev_hash, GENESIS);
        assert_eq!(c[1].prev_hash, c[0].hash);
        assert_eq!(verify(&c), Ok(()));
    }

    #[test]
    fn changes_removals_and_insertions_are_found() {
        let mut changed = chain();
        changed[1].entry.actor = "mallory".into();
        assert_eq!(verify(&changed).unwrap_err().seq, 2);
        assert!(
            verify(&changed)
                .unwrap_err()
                .problem
                .contains("does not match its hash")
        );

        let mut removed = chain();
        removed.remove(1);
        assert!(
            verify(&removed)
                .unwrap_err()
                .problem
                .starts_with("out of sequence")
        );

        let mut relinked = chain();
        relinked.remove(1);
        relinked[1].seq = 2;
        let e = verify(&relinked).unwrap_err();
        assert_eq!(e.seq, 2);
        assert!(
            e.problem.contains("link to the previous record is broken"),
            "{e}"
        );

        // Rehashing a changed record does not help: the next link breaks.
        let mut rehashed = chain();
        rehashed[0].entry.outcome = "failed".into();
        rehashed[0].hash = hash(1, &rehashed[0].entry, GENESIS);
        assert_eq!(verify(&rehashed).unwrap_err().seq, 2);
    }
}
