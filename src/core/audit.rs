//! The audit trail: one append-only record per action, chained by hashes.
//!
//! Each record carries the hash of the previous record and its own hash
//! over a canonical serialisation of everything else, so changing,
//! inserting or removing a record anywhere breaks the chain, and [`verify`]
//! says where. Two things a plain hash chain cannot show, envgate adds:
//!
//! - **Keyed seals.** With an audit key (a secret the store's writers need
//!   not have), a record's hash is an HMAC-SHA256 under that key, so
//!   someone who can write the store but lacks the key cannot recompute the
//!   chain after an edit. Without the key a keyed record's links can be
//!   followed but its content not proven; [`Verified`] says which.
//! - **Heads.** The newest record's sequence number and hash ([`Head`]),
//!   published where the store's writers cannot rewrite it (check runs,
//!   release notes, exported files): a later chain that does not hold that
//!   head was truncated or rewritten ([`holds`]).

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash a chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The seal of a keyed record.
pub const HMAC_SHA256: &str = "hmac-sha256";

/// What happened, before it is sealed into the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub at: String,
    /// `apply`, `export`, `promote`, `rollback`, `refused`, `mode_change`,
    /// `mode_confirm`, `drift_detected`, `drift_accepted`, `publish`,
    /// `bundle_applied`, `chatops`.
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
    /// How the actor is known (see [`crate::core::identity`]); absent in
    /// records written before envgate said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_source: Option<String>,
    /// Written to a store that does not outlive its CI job: not the team's
    /// trail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    /// The repository the action was about, where one store serves
    /// several (the bot: `github:owner/name`, `gitlab:group/project`);
    /// absent for a store of one repository and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// A sealed record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
    /// [`HMAC_SHA256`] for a keyed record; absent for a plain SHA-256 one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// The secret keyed seals are made with.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl Key {
    /// Shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    pub fn new(bytes: &[u8]) -> Result<Key, String> {
        if bytes.len() < Key::MIN_LEN {
            return Err(format!(
                "the audit key is {} bytes; at least {} are needed (e.g. `openssl rand -hex 32`)",
                bytes.len(),
                Key::MIN_LEN
            ));
        }
        Ok(Key(bytes.to_vec()))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// The chain's newest record, as published: `SEQ:HASH`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Head, String> {
        let bad = || {
            format!("'{s}' is not a chain head: expected SEQ:HASH (as `envgate audit head` prints)")
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

impl Record {
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
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

fn keyed(key: &Key, seq: u64, entry: &Entry, prev_hash: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(canonical(seq, entry, prev_hash).as_bytes());
    mac
}

/// Seals an entry after `previous` (None: the first record).
pub fn seal(previous: Option<&Record>, entry: Entry, key: Option<&Key>) -> Record {
    seal_after(previous.map(|p| (p.seq, p.hash.as_str())), entry, key)
}

/// Seals an entry after the record with this sequence number and hash,
/// keyed when there is a key.
pub fn seal_after(previous: Option<(u64, &str)>, entry: Entry, key: Option<&Key>) -> Record {
    let (seq, prev_hash) = previous.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h.to_owned()));
    let (hash, seal) = match key {
        Some(k) => (
            hex::encode(keyed(k, seq, &entry, &prev_hash).finalize().into_bytes()),
            Some(HMAC_SHA256.to_owned()),
        ),
        None => (hash(seq, &entry, &prev_hash), None),
    };
    Record {
        seq,
        entry,
        prev_hash,
        hash,
        seal,
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

/// What a chain that verified proves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub records: usize,
    /// The newest record; None for an empty trail.
    pub head: Option<Head>,
    /// Keyed records whose content the key proved.
    pub keyed_proven: usize,
    /// Keyed records checked without the key: linked, content unproven.
    pub keyed_unproven: usize,
    /// Plain records: anyone who can write the store could have recomputed
    /// them.
    pub plain: usize,
}

/// Checks a whole chain, oldest first. Keyed records are proven with `key`
/// and only linked without it; once a keyed record appears, a plain one
/// after it is tampering (rewritten by someone without the key).
pub fn verify(records: &[Record], key: Option<&Key>) -> Result<Verified, Tamper> {
    let mut expected_prev = GENESIS.to_owned();
    let mut v = Verified {
        records: records.len(),
        head: records.last().map(Record::head),
        keyed_proven: 0,
        keyed_unproven: 0,
        plain: 0,
    };
    let mut keyed_seen = false;
    for (i, r) in records.iter().enumerate() {
        let want_seq = i as u64 + 1;
        let tamper = |problem: String| Tamper {
            seq: r.seq,
            problem,
        };
        if r.seq != want_seq {
            return Err(tamper(format!(
                "out of sequence: expected record {want_seq} (a record was removed or inserted)"
            )));
        }
        if r.prev_hash != expected_prev {
            return Err(tamper(
                "its link to the previous record is broken (a record before it was changed or removed)".into(),
            ));
        }
        match r.seal.as_deref() {
            None => {
                if keyed_seen {
                    return Err(tamper(
                        "a plain record after keyed ones (rewritten by someone without the audit key)".into(),
                    ));
                }
                if hash(r.seq, &r.entry, &r.prev_hash) != r.hash {
                    return Err(tamper(
                        "its content does not match its hash (the record was changed)".into(),
                    ));
                }
                v.plain += 1;
            }
            Some(HMAC_SHA256) => {
                keyed_seen = true;
                match key {
                    Some(k) => {
                        let proven = hex::decode(&r.hash).is_ok_and(|h| {
                            keyed(k, r.seq, &r.entry, &r.prev_hash)
                                .verify_slice(&h)
                                .is_ok()
                        });
                        if !proven {
                            return Err(tamper(
                                "its content does not match its keyed hash (the record was changed, or sealed with another key)".into(),
                            ));
                        }
                        v.keyed_proven += 1;
                    }
                    None => v.keyed_unproven += 1,
                }
            }
            Some(other) => return Err(tamper(format!("unknown seal '{other}'"))),
        }
        expected_prev = r.hash.clone();
    }
    // With the key, the newest record must be keyed: a chain rewritten
    // whole by someone without the key can only end in plain records.
    if key.is_some()
        && let Some(last) = records.last()
        && last.seal.is_none()
    {
        return Err(Tamper {
            seq: last.seq,
            problem: "the newest record is not keyed although the audit key is set: the chain was rewritten \
                      without the key, or nothing was recorded since the key was set (the next record envgate \
                      writes will be keyed)"
                .into(),
        });
    }
    Ok(v)
}

/// Whether a verified chain holds a published head: the record at its
/// sequence number has its hash. A chain cut short before it, or rewritten
/// up to it, does not.
pub fn holds(records: &[Record], head: &Head) -> Result<(), Tamper> {
    let newest = records.last().map_or(0, |r| r.seq);
    match records.iter().find(|r| r.seq == head.seq) {
        Some(r) if r.hash.eq_ignore_ascii_case(&head.hash) => Ok(()),
        Some(_) => Err(Tamper {
            seq: head.seq,
            problem: format!(
                "the published head {head} is not on the chain: the record there has another hash (rewritten)"
            ),
        }),
        None => Err(Tamper {
            seq: head.seq,
            problem: format!(
                "the published head {head} is not on the chain: it ends at record {newest} (truncated)"
            ),
        }),
    }
}

/// What reading a trail proved: the chain checked whole (with the audit
/// key when there is one) and, when a published head was given, that the
/// chain holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The head verified against (the newest record), when the chain holds.
    pub head: Option<Head>,
    pub verified: Option<Verified>,
    /// The first record that breaks the chain.
    pub tampered: Option<Tamper>,
    /// The published head that was checked.
    pub expected: Option<Head>,
    /// Whether the audit key was there to prove keyed records.
    pub key: bool,
}

/// Checks a whole trail, oldest first, and that it holds `expected`.
pub fn check(records: &[Record], key: Option<&Key>, expected: Option<Head>) -> Check {
    let result = verify(records, key).and_then(|v| {
        if let Some(h) = &expected {
            holds(records, h)?;
        }
        Ok(v)
    });
    match result {
        Ok(v) => Check {
            head: v.head.clone(),
            verified: Some(v),
            tampered: None,
            expected,
            key: key.is_some(),
        },
        Err(t) => Check {
            head: None,
            verified: None,
            tampered: Some(t),
            expected,
            key: key.is_some(),
        },
    }
}

/// A filter's time bound (`--since`, `--until`, the console's fields): an
/// RFC 3339 time, a date (midnight UTC), or a duration back from now
/// (`7d`, `12h`), as the RFC 3339 text records are compared with.
/// `now` is seconds since the Unix epoch.
pub fn time_bound(text: &str, now: u64) -> Result<String, String> {
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
    let t = text.trim();
    let time = if let Ok(d) = humantime::parse_duration(t) {
        now.checked_sub(d)
            .ok_or_else(|| format!("{t}: too far back"))?
    } else if let Ok(at) = humantime::parse_rfc3339_weak(t) {
        at
    } else if let Ok(at) = humantime::parse_rfc3339_weak(&format!("{t} 00:00:00")) {
        at
    } else {
        return Err(format!(
            "{t}: expected a time (2026-11-25T09:00:00Z), a date (2026-11-25) or a duration (7d, 12h)"
        ));
    };
    Ok(humantime::format_rfc3339_seconds(time).to_string())
}

/// Which records an export shows; the chain is verified whole either way.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only records stamped with this repository (see [`Entry::repository`]).
    pub repository: Option<String>,
    pub environment: Option<String>,
    /// Compared without case.
    pub actor: Option<String>,
    /// The action (`apply`, `mode_change`, …).
    pub kind: Option<String>,
    /// RFC 3339 times, as records keep them; `until` is exclusive.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.repository.is_none()
            && self.environment.is_none()
            && self.actor.is_none()
            && self.kind.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    pub fn matches(&self, r: &Record) -> bool {
        let e = &r.entry;
        self.repository
            .as_deref()
            .is_none_or(|repo| e.repository.as_deref() == Some(repo))
            && self
                .environment
                .as_deref()
                .is_none_or(|env| e.environment.as_deref() == Some(env))
            && self
                .actor
                .as_deref()
                .is_none_or(|a| e.actor.eq_ignore_ascii_case(a))
            && self.kind.as_deref().is_none_or(|k| e.action == k)
            && self.since.as_deref().is_none_or(|s| e.at.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| e.at.as_str() < u)
    }
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
            let r = seal(out.last(), entry(a), None);
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain();
        assert_eq!(c[0].prev_hash, GENESIS);
        assert_eq!(c[1].prev_hash, c[0].hash);
        let v = verify(&c, None).unwrap();
        assert_eq!((v.records, v.plain, v.keyed_proven), (3, 3, 0));
        assert_eq!(v.head, Some(c[2].head()));
    }

    #[test]
    fn changes_removals_and_insertions_are_found() {
        let mut changed = chain();
        changed[1].entry.actor = "mallory".into();
        assert_eq!(verify(&changed, None).unwrap_err().seq, 2);
        assert!(
            verify(&changed, None)
                .unwrap_err()
                .problem
                .contains("does not match its hash")
        );

        let mut removed = chain();
        removed.remove(1);
        assert!(
            verify(&removed, None)
                .unwrap_err()
                .problem
                .starts_with("out of sequence")
        );

        let mut relinked = chain();
        relinked.remove(1);
        relinked[1].seq = 2;
        let e = verify(&relinked, None).unwrap_err();
        assert_eq!(e.seq, 2);
        assert!(
            e.problem.contains("link to the previous record is broken"),
            "{e}"
        );

        // Rehashing a changed record does not help: the next link breaks.
        let mut rehashed = chain();
        rehashed[0].entry.outcome = "failed".into();
        rehashed[0].hash = hash(1, &rehashed[0].entry, GENESIS);
        assert_eq!(verify(&rehashed, None).unwrap_err().seq, 2);
    }

    fn key() -> Key {
        Key::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn keyed_chain(n: usize) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        for i in 0..n {
            let r = seal(out.last(), entry(&format!("apply{i}")), Some(&key()));
            out.push(r);
        }
        out
    }

    /// Recomputes every hash with the documented formula, as someone who
    /// can write the store but lacks the key would after an edit.
    fn recomputed(mut c: Vec<Record>) -> Vec<Record> {
        let mut prev = GENESIS.to_owned();
        for r in &mut c {
            r.prev_hash = prev.clone();
            r.hash = hash(r.seq, &r.entry, &r.prev_hash);
            prev = r.hash.clone();
        }
        c
    }

    #[test]
    fn keyed_chains_prove_their_content_only_with_the_key() {
        let c = keyed_chain(3);
        assert!(c.iter().all(|r| r.seal.as_deref() == Some(HMAC_SHA256)));
        assert_ne!(c[0].hash, hash(1, &c[0].entry, GENESIS), "not a plain hash");
        let v = verify(&c, Some(&key())).unwrap();
        assert_eq!((v.keyed_proven, v.keyed_unproven, v.plain), (3, 0, 0));
        let v = verify(&c, None).unwrap();
        assert_eq!((v.keyed_proven, v.keyed_unproven), (0, 3));
        let other = Key::new(b"another key, just as long as it").unwrap();
        assert!(
            verify(&c, Some(&other))
                .unwrap_err()
                .problem
                .contains("sealed with another key")
        );

        // An edit, then every hash recomputed with the published formula:
        // as keyed records they fail with the key…
        let mut edited = c.clone();
        edited[1].entry.actor = "mallory".into();
        let mut prev = GENESIS.to_owned();
        for r in &mut edited {
            r.prev_hash = prev.clone();
            r.hash = hash(r.seq, &r.entry, &r.prev_hash);
            prev = r.hash.clone();
        }
        assert_eq!(verify(&edited, Some(&key())).unwrap_err().seq, 1);
        // …and passed off as plain records, they verify without the key,
        // but not with it, and the published head is not on that chain.
        let mut plain = recomputed(edited);
        for r in &mut plain {
            r.seal = None;
        }
        let v = verify(&plain, None).unwrap();
        assert_eq!((v.plain, v.keyed_proven), (3, 0), "nothing proven");
        let e = verify(&plain, Some(&key())).unwrap_err();
        assert!(e.problem.contains("newest record is not keyed"), "{e}");
        let e = holds(&plain, &c[2].head()).unwrap_err();
        assert!(e.problem.contains("another hash (rewritten)"), "{e}");
    }

    #[test]
    fn a_plain_record_after_keyed_ones_is_a_rewrite() {
        let mut c = chain();
        c.push(seal(c.last(), entry("export"), Some(&key())));
        c.push(seal(c.last(), entry("promote"), None));
        let e = verify(&c, Some(&key())).unwrap_err();
        assert_eq!(e.seq, 5);
        assert!(e.problem.contains("plain record after keyed ones"), "{e}");
        // Plain records before the key was set are linked, not proven.
        c.pop();
        let v = verify(&c, Some(&key())).unwrap();
        assert_eq!((v.plain, v.keyed_proven), (3, 1));
        c.pop();
        assert!(verify(&c, None).is_ok());
        assert!(
            verify(&c, Some(&key())).is_err(),
            "nothing keyed since the key was set"
        );
    }

    #[test]
    fn truncation_is_caught_by_a_published_head() {
        let c = keyed_chain(4);
        let head = c[3].head();
        assert_eq!(holds(&c, &head), Ok(()));
        let cut = &c[..2];
        assert!(verify(cut, Some(&key())).is_ok(), "a prefix verifies alone");
        let e = holds(cut, &head).unwrap_err();
        assert!(e.problem.contains("it ends at record 2 (truncated)"), "{e}");
        // An older head is still held by a longer chain.
        assert_eq!(holds(&c, &c[1].head()), Ok(()));
    }

    #[test]
    fn heads_read_as_printed() {
        let c = chain();
        let h = c[2].head();
        assert_eq!(h.to_string().parse::<Head>(), Ok(h.clone()));
        assert_eq!(
            format!("3:{}", h.hash.to_uppercase()).parse::<Head>(),
            Ok(h)
        );
        for bad in ["3", "x:abc", "3:abc", ""] {
            let e = bad.parse::<Head>().unwrap_err();
            assert!(e.contains("expected SEQ:HASH"), "{e}");
        }
    }

    #[test]
    fn records_written_before_new_fields_keep_their_hashes() {
        // A record as an earlier envgate sealed it: the new fields, absent,
        // do not change the canonical text.
        let e = entry("apply");
        let text = canonical(1, &e, GENESIS);
        assert!(
            !text.contains("actor_source") && !text.contains("ephemeral"),
            "{text}"
        );
        let marked = Entry {
            actor_source: Some("unverified: --actor".into()),
            ephemeral: true,
            ..e
        };
        let text = canonical(1, &marked, GENESIS);
        assert!(
            text.contains(r#""actor_source":"unverified: --actor","ephemeral":true"#),
            "{text}"
        );
        // A repository, where there is one, is covered too; records
        // without one keep the hashes they had.
        let stamped = Entry {
            repository: Some("github:acme/shop".into()),
            ..marked.clone()
        };
        assert!(
            canonical(1, &stamped, GENESIS)
                .contains(r#""ephemeral":true,"repository":"github:acme/shop"}"#)
        );
        assert_ne!(hash(1, &stamped, GENESIS), hash(1, &marked, GENESIS));
    }

    #[test]
    fn time_bounds_take_times_dates_and_durations() {
        use std::time::{Duration, UNIX_EPOCH};
        let secs = 1_795_000_000;
        let now = UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(
            time_bound("2026-11-25T09:00:00Z", secs).unwrap(),
            "2026-11-25T09:00:00Z"
        );
        assert_eq!(
            time_bound("2026-11-25", secs).unwrap(),
            "2026-11-25T00:00:00Z"
        );
        assert_eq!(
            time_bound("1h", secs).unwrap(),
            humantime::format_rfc3339_seconds(now - Duration::from_secs(3600)).to_string()
        );
        let err = time_bound("last tuesday", secs).unwrap_err();
        assert!(err.starts_with("last tuesday: expected a time"), "{err}");
    }
}
