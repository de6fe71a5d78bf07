//! `envgate audit`: the audit trail, exported as a table, JSON or CSV, and
//! `envgate audit verify`: its hash chain checked end to end.

use super::{Failure, exit};
use crate::config::Config;
use crate::core::audit::{self, Record};
use crate::ops::environments;
use crate::ops::memory::Memory;
use crate::render;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Csv,
}

pub struct AuditArgs {
    pub env: Option<String>,
    pub since: Option<String>,
    pub format: AuditFormat,
}

/// `--since`: an RFC 3339 time, a date (midnight UTC), or a duration back
/// from now (`7d`, `12h`), as the RFC 3339 text records are compared with.
pub fn since(text: &str, now: std::time::SystemTime) -> Result<String, String> {
    let t = text.trim();
    let time = if let Ok(d) = humantime::parse_duration(t) {
        now.checked_sub(d)
            .ok_or_else(|| format!("--since {t}: too far back"))?
    } else if let Ok(at) = humantime::parse_rfc3339_weak(t) {
        at
    } else if let Ok(at) = humantime::parse_rfc3339_weak(&format!("{t} 00:00:00")) {
        at
    } else {
        return Err(format!(
            "--since {t}: expected a time (2026-11-25T09:00:00Z), a date (2026-11-25) or a duration (7d, 12h)"
        ));
    };
    Ok(humantime::format_rfc3339_seconds(time).to_string())
}

/// `envgate audit`.
pub async fn export(config: &Config, args: AuditArgs) -> Result<i32, Failure> {
    if let Some(env) = &args.env {
        environments::env(config, env)?;
    }
    let since = args
        .since
        .as_deref()
        .map(|s| since(s, std::time::SystemTime::now()))
        .transpose()
        .map_err(Failure::usage)?;
    let memory = Memory::open(config, environments::actor(None), true).await?;
    let records = read(&memory, args.env.as_deref(), since.as_deref()).await?;
    let text = match args.format {
        AuditFormat::Table => render::audit_text(&records, args.env.is_some() || since.is_some()),
        AuditFormat::Json => render::json(&AuditReport {
            schema_version: 1,
            records: &records,
        }),
        AuditFormat::Csv => csv(&records)?,
    };
    // Records hold masked text already; mask again in case.
    super::print(&text)?;
    Ok(exit::OK)
}

#[derive(Serialize)]
struct AuditReport<'a> {
    schema_version: u32,
    records: &'a [Record],
}

async fn read(
    memory: &Memory,
    env: Option<&str>,
    since: Option<&str>,
) -> Result<Vec<Record>, Failure> {
    let Some(store) = memory.store() else {
        return Err(Failure::internal("the control store is not open"));
    };
    store
        .records(env, since)
        .await
        .map_err(|e| Failure::internal(format!("reading the audit trail: {e}")))
}

/// One row per record; `migrations` space-separated. The hash columns let
/// a spreadsheet copy be checked against `envgate audit verify`.
fn csv(records: &[Record]) -> Result<String, Failure> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Failure::internal(format!("writing CSV: {e}"));
    w.write_record([
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
    ])
    .map_err(fail)?;
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
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Failure::internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Failure::internal(format!("writing CSV: {e}")))
}

/// `envgate audit verify`: exit 0 when the chain is intact, 1 when a
/// record was changed, inserted or removed.
pub async fn verify(config: &Config) -> Result<i32, Failure> {
    let memory = Memory::open(config, environments::actor(None), true).await?;
    let records = read(&memory, None, None).await?;
    let text = match audit::verify(&records) {
        Ok(()) => {
            let last = records.last();
            let text = render::audit_verified(records.len(), last);
            super::print(&text)?;
            return Ok(exit::OK);
        }
        Err(t) => format!("audit trail tampered with: {t}\n"),
    };
    super::print(&text)?;
    Ok(exit::CHECK_FAILED)
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
        assert!(err.contains("--since last tuesday"), "{err}");
    }
}
