//! The audit trail as text: `envgate audit`'s table, JSON Lines and CSV
//! exports (docs/audit.md), the verification summary; the console's audit
//! page reads the same.

use super::render;
use crate::core::audit::{Check, Record, Verified};
use minijinja::Value;

/// An actor as the audit table shows it: `*` after a name that is only the
/// person's own claim.
pub(super) fn audit_actor(r: &Record) -> String {
    match r.entry.actor_source.as_deref() {
        Some(s) if s.starts_with("unverified") => format!("{}*", r.entry.actor),
        _ => r.entry.actor.clone(),
    }
}

/// `envgate audit` as a table: one line per record.
pub fn audit_text(records: &[Record], filtered: bool) -> String {
    let w = |f: &dyn Fn(&Record) -> usize, header: &str| {
        records.iter().map(f).max().unwrap_or(0).max(header.len())
    };
    let actors: Vec<String> = records.iter().map(audit_actor).collect();
    let widths = minijinja::context! {
        seq => w(&|r| r.seq.to_string().len(), "seq"),
        action => w(&|r| r.entry.action.chars().count(), "action"),
        actor => w(&|r| audit_actor(r).chars().count(), "actor"),
        env => w(&|r| r.entry.environment.as_deref().map_or(1, |e| e.chars().count()), "env"),
        release => w(&|r| r.entry.release.as_deref().map_or(1, |e| e.chars().count()), "release"),
        outcome => w(&|r| r.entry.outcome.chars().count(), "outcome"),
    };
    render(
        "audit.txt",
        false,
        &minijinja::context! {
            records => Value::from(minijinja::value::Serde(records)),
            actors => actors,
            unverified => records.iter().any(|r| audit_actor(r).ends_with('*')),
            w => widths,
            filtered => filtered,
        },
    )
}

/// `envgate audit verify`, when the chain holds: what it proves.
pub fn audit_verified(
    v: &Verified,
    key: bool,
    expected: Option<&crate::core::audit::Head>,
) -> String {
    render(
        "audit_verified.txt",
        false,
        &minijinja::context! { v => Value::from(minijinja::value::Serde(v)), key => key, expected => expected.map(ToString::to_string) },
    )
}

/// The table's last line: what the chain proved.
pub fn audit_trailer(check: &Check) -> String {
    match (&check.tampered, &check.head) {
        (Some(t), _) => format!("\nNOT VERIFIED: record {}: {}\n", t.seq, t.problem),
        (None, Some(h)) => format!("\nverified against head {h}\n"),
        (None, None) => String::new(),
    }
}

/// One JSON object per record, then a line `{"check": …}` with what the
/// chain proved and the head it was verified against.
pub fn audit_jsonl(records: &[Record], check: &Check) -> String {
    #[derive(serde::Serialize)]
    struct Trailer<'a> {
        check: &'a Check,
    }
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).expect("records serialize"));
        out.push('\n');
    }
    out.push_str(&serde_json::to_string(&Trailer { check }).expect("serializes"));
    out.push('\n');
    out
}

/// The CSV columns, in order (docs/audit.md describes each).
const CSV_COLUMNS: [&str; 17] = [
    "seq",
    "at",
    "action",
    "actor",
    "environment",
    "release",
    "migrations",
    "bundle_sha256",
    "outcome",
    "error",
    "details",
    "prev_hash",
    "hash",
    "actor_source",
    "ephemeral",
    "seal",
    "repository",
];

/// One row per record; `migrations` space-separated. The hash columns let
/// a spreadsheet copy be checked against `envgate audit verify`; the last
/// row (seq `head`) is the head the export was verified against.
pub fn audit_csv(records: &[Record], check: &Check) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| format!("writing CSV: {e}");
    w.write_record(CSV_COLUMNS).map_err(fail)?;
    for r in records {
        let e = &r.entry;
        w.write_record([
            r.seq.to_string().as_str(),
            &e.at,
            &e.action,
            &e.actor,
            e.environment.as_deref().unwrap_or(""),
            e.release.as_deref().unwrap_or(""),
            &e.migrations.join(" "),
            e.bundle_sha256.as_deref().unwrap_or(""),
            &e.outcome,
            e.error.as_deref().unwrap_or(""),
            e.details.as_deref().unwrap_or(""),
            &r.prev_hash,
            &r.hash,
            e.actor_source.as_deref().unwrap_or(""),
            if e.ephemeral { "true" } else { "false" },
            r.seal.as_deref().unwrap_or("sha256"),
            e.repository.as_deref().unwrap_or(""),
        ])
        .map_err(fail)?;
    }
    let (outcome, seq, hash, details) = match (&check.tampered, &check.head) {
        (Some(t), _) => (
            "tampered".to_owned(),
            String::new(),
            String::new(),
            format!("record {}: {}", t.seq, t.problem),
        ),
        (None, Some(h)) => (
            "verified".to_owned(),
            h.seq.to_string(),
            h.hash.clone(),
            String::new(),
        ),
        (None, None) => (
            "verified".to_owned(),
            "0".to_owned(),
            String::new(),
            "no records".to_owned(),
        ),
    };
    let mut row = vec![String::new(); CSV_COLUMNS.len()];
    row[0] = "head".to_owned();
    row[1] = seq;
    row[8] = outcome;
    row[10] = details;
    row[12] = hash;
    w.write_record(&row).map_err(fail)?;
    let bytes = w.into_inner().map_err(|e| format!("writing CSV: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("writing CSV: {e}"))
}
