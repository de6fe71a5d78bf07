//! `envgate audit`: the audit trail, verified as it is read and exported as
//! a table, JSON, JSON Lines or CSV (docs/audit.md); `envgate audit verify`:
//! its chain checked end to end, against a published head with
//! `--expect`; `envgate audit head`: the head to publish.

use super::{Failure, exit};
use crate::config::Config;
use crate::core::audit::{self, Check, Filter, Head, Record};
use crate::ops::environments;
use crate::ops::memory::Memory;
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
    pub repository: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub format: AuditFormat,
    pub expect: Option<String>,
}

/// Reads the whole trail, checks it, and keeps what `filter` asks for.
async fn read_checked(
    config: &Config,
    filter: &Filter,
    expect: Option<&str>,
) -> Result<(Vec<Record>, Check), Failure> {
    let expected = expect
        .map(|e| {
            e.parse::<Head>()
                .map_err(|m| Failure::usage(format!("--expect {m}")))
        })
        .transpose()?;
    let memory = Memory::open(config, environments::actor(None), true).await?;
    memory.read_trail(filter, expected).await
}

/// `envgate audit`: the records, filtered, in a format; the chain is
/// verified as it is read, and an export ends with the head it was
/// verified against. Exit 1, naming the first bad record, when it breaks.
pub async fn export(config: &Config, args: AuditArgs) -> Result<i32, Failure> {
    // Another repository's environments (a store the bot keeps) are not
    // this envgate.toml's to check.
    if let Some(env) = &args.env
        && args.repository.is_none()
    {
        environments::env(config, env)?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| audit::time_bound(s, now).map_err(|m| Failure::usage(format!("{flag} {m}"))))
            .transpose()
    };
    let filter = Filter {
        repository: args.repository.clone(),
        environment: args.env.clone(),
        actor: args.actor.clone(),
        kind: args.kind.clone(),
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
    };
    let (shown, check) = read_checked(config, &filter, args.expect.as_deref()).await?;
    let text = match args.format {
        AuditFormat::Table => format!(
            "{}{}",
            render::audit_text(&shown, !filter.is_empty()),
            render::audit_trailer(&check)
        ),
        AuditFormat::Json => render::json(&AuditReport {
            schema_version: 1,
            records: &shown,
            check: &check,
        }),
        AuditFormat::Jsonl => render::audit_jsonl(&shown, &check),
        AuditFormat::Csv => render::audit_csv(&shown, &check).map_err(Failure::internal)?,
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

/// `envgate audit verify [--expect SEQ:HASH]`: exit 0 when the chain is
/// intact (and holds the expected head), 1 when a record was changed,
/// inserted or removed, or the chain was cut short.
pub async fn verify(config: &Config, expect: Option<&str>) -> Result<i32, Failure> {
    let (_, check) = read_checked(config, &Filter::default(), expect).await?;
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
