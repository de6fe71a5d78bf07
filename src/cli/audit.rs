//! `envgate audit`: the audit trail, verified as it is read and exported as
//! a table, JSON, JSON Lines or CSV (docs/audit.md); `envgate audit verify`:
//! its chain checked end to end, against a published head with
//! `--expect`; `envgate audit head`: the head to publish.

use super::{Failure, exit};
use crate::config::Config;
use crate::core::audit::{self, Filter, Head, Record, Tamper, Verified};
use crate::ops::environments;
use crate::ops::memory::{Memory, audit_key};
use crate::render;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    /// One JSON object per line, then a line with the head verified against.
    Jsonl,
    Csv,
}

pub struct AuditArgs {
    pub env: Option<String>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub format: AuditFormat,
    pub expect: Option<String>,
}

/// `--since`: an RFC 3339 time, a date (midnight UTC), or a duration back
/// from now (`7d`, `12h`), as the RFC 3339 text records are compared with.
pub fn since(text: &str, now: std::time::SystemTime) -> Result<String, String> {
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

/// What reading the trail proved: the chain checked whole (with the audit
/// key when set) and, with `--expect`, that a published head is on it.
#[derive(Serialize)]
struct Check {
    /// The head verified against (the newest record), when the chain holds.
    head: Option<Head>,
    verified: Option<Verified>,
    /// The first record that breaks the chain.
    tampered: Option<Tamper>,
    /// The published head that was checked, with `--expect`.
    expected: Option<Head>,
    /// Whether the audit key was there to prove keyed records.
    key: bool,
}

/// Reads the whole trail and checks it.
async fn read_checked(
    config: &Config,
    expect: Option<&str>,
) -> Result<(Vec<Record>, Check), Failure> {
    let expected = expect
        .map(|e| {
            e.parse::<Head>()
                .map_err(|m| Failure::usage(format!("--expect {m}")))
        })
        .transpose()?;
    let key = audit_key().map_err(Failure::usage)?;
    let memory = Memory::open(config, environments::actor(None), true).await?;
    let Some(store) = memory.store() else {
        return Err(Failure::internal("the control store is not open"));
    };
    let records = store
        .records()
        .await
        .map_err(|e| Failure::internal(format!("reading the audit trail: {e}")))?;
    let result = audit::verify(&records, key.as_ref()).and_then(|v| {
        if let Some(h) = &expected {
            audit::holds(&records, h)?;
        }
        Ok(v)
    });
    let check = match result {
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
    };
    Ok((records, check))
}

/// `envgate audit`: the records, filtered, in a format; the chain is
/// verified as it is read, and an export ends with the head it was
/// verified against. Exit 1, naming the first bad record, when it breaks.
pub async fn export(config: &Config, args: AuditArgs) -> Result<i32, Failure> {
    if let Some(env) = &args.env {
        environments::env(config, env)?;
    }
    let now = std::time::SystemTime::now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| since(s, now).map_err(|m| Failure::usage(format!("{flag} {m}"))))
            .transpose()
    };
    let filter = Filter {
        environment: args.env.clone(),
        actor: args.actor.clone(),
        kind: args.kind.clone(),
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
    };
    let (records, check) = read_checked(config, args.expect.as_deref()).await?;
    let shown: Vec<Record> = records.into_iter().filter(|r| filter.matches(r)).collect();
    let text = match args.format {
        AuditFormat::Table => format!(
            "{}{}",
            render::audit_text(&shown, !filter.is_empty()),
            trailer(&check)
        ),
        AuditFormat::Json => render::json(&AuditReport {
            schema_version: 1,
            records: &shown,
            check: &check,
        }),
        AuditFormat::Jsonl => {
            let mut out = String::new();
            for r in &shown {
                out.push_str(&serde_json::to_string(r).expect("records serialize"));
                out.push('\n');
            }
            out.push_str(&serde_json::to_string(&Trailer { check: &check }).expect("serializes"));
            out.push('\n');
            out
        }
        AuditFormat::Csv => csv(&shown, &check)?,
    };
    super::print(&text)?;
    match &check.tampered {
        Some(t) => {
            crate::errln!("audit trail tampered with: {t}");
            Ok(exit::CHECK_FAILED)
        }
        None => Ok(exit::OK),
    }
}

#[derive(Serialize)]
struct AuditReport<'a> {
    schema_version: u32,
    records: &'a [Record],
    check: &'a Check,
}

/// The last line of a JSON Lines export.
#[derive(Serialize)]
struct Trailer<'a> {
    check: &'a Check,
}

/// The table's last line: what the chain proved.
fn trailer(check: &Check) -> String {
    match (&check.tampered, &check.head) {
        (Some(t), _) => format!("\nNOT VERIFIED: record {}: {}\n", t.seq, t.problem),
        (None, Some(h)) => format!("\nverified against head {h}\n"),
        (None, None) => String::new(),
    }
}

/// One row per record; `migrations` space-separated. The hash columns let
/// a spreadsheet copy be checked against `envgate audit verify`; the last
/// row (seq `head`) is the head the export was verified against.
fn csv(records: &[Record], check: &Check) -> Result<String, Failure> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Failure::internal(format!("writing CSV: {e}"));
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
    let bytes = w
        .into_inner()
        .map_err(|e| Failure::internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Failure::internal(format!("writing CSV: {e}")))
}

/// The CSV columns, in order (docs/audit.md describes each).
const CSV_COLUMNS: [&str; 16] = [
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
];

/// `envgate audit verify [--expect SEQ:HASH]`: exit 0 when the chain is
/// intact (and holds the expected head), 1 when a record was changed,
/// inserted or removed, or the chain was cut short.
pub async fn verify(config: &Config, expect: Option<&str>) -> Result<i32, Failure> {
    let (_, check) = read_checked(config, expect).await?;
    if let Some(t) = &check.tampered {
        super::print(&format!("audit trail tampered with: {t}\n"))?;
        return Ok(exit::CHECK_FAILED);
    }
    let v = check.verified.as_ref().expect("verified when not tampered");
    super::print(&render::audit_verified(
        v,
        check.key,
        check.expected.as_ref(),
    ))?;
    Ok(exit::OK)
}

/// `envgate audit head`: the newest record's `SEQ:HASH`, to publish.
pub async fn head(config: &Config) -> Result<i32, Failure> {
    let memory = Memory::open(config, environments::actor(None), true).await?;
    let Some(store) = memory.store() else {
        return Err(Failure::internal("the control store is not open"));
    };
    match store
        .head()
        .await
        .map_err(|e| Failure::internal(format!("reading the audit trail: {e}")))?
    {
        Some(h) => super::print(&format!("{h}\n"))?,
        None => crate::errln!("the audit trail has no records yet"),
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn since_takes_times_dates_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(
            since("2026-11-25T09:00:00Z", now).unwrap(),
            "2026-11-25T09:00:00Z"
        );
        assert_eq!(since("2026-11-25", now).unwrap(), "2026-11-25T00:00:00Z");
        assert_eq!(
            since("1h", now).unwrap(),
            humantime::format_rfc3339_seconds(now - Duration::from_secs(3600)).to_string()
        );
        let err = since("last tuesday", now).unwrap_err();
        assert!(err.starts_with("last tuesday: expected a time"), "{err}");
    }
}
