//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, exit};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::matrix::{self, EnvLedger};
use crate::core::migration::{self, Discovery};
use crate::core::mode::{Mode, ModeSource};
use crate::core::redact::{Redactor, mask_url};
use crate::target::{ReadSession, Target};
use crate::{ledger, render};
use std::io::Write;
use std::path::Path;

pub struct StatusArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
    pub verbose: bool,
    pub color: bool,
}

/// Picks the environments named with `--env` (all when none), in promotion
/// order.
pub fn select<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a EnvConfig>, Failure> {
    for name in names {
        if config.env(name).is_none() {
            let known: Vec<&str> = config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            return Err(Failure::usage(format!(
                "unknown environment '{name}' (configured: {})",
                known.join(", ")
            )));
        }
    }
    Ok(config
        .environments
        .iter()
        .filter(|e| names.is_empty() || names.contains(&e.name))
        .collect())
}

/// Resolves each environment's URL and target. Any problem is a
/// configuration error, located in the file.
pub fn targets(
    config: &Config,
    envs: &[&EnvConfig],
    redactor: &mut Redactor,
) -> Result<Vec<Target>, Failure> {
    let base = config.file.parent().unwrap_or(Path::new(""));
    let lookup = |var: &str| std::env::var(var).ok();
    let read_file = |p: &Path| std::fs::read_to_string(p);
    let mut out = Vec::with_capacity(envs.len());
    for env in envs {
        let url = env
            .resolve_url(config, &lookup, &read_file)
            .map_err(|e| Failure::usage(e.to_string()))?;
        redactor.add_url(&url);
        if matches!(env.url, crate::config::UrlSource::File(_)) {
            // The whole file is a secret.
            redactor.add(url.clone());
        }
        let target = Target::parse(&url, base).map_err(|m| {
            Failure::usage(
                config
                    .env_error(
                        env,
                        format!("environment '{}' ({}): {m}", env.name, mask_url(&url)),
                    )
                    .to_string(),
            )
        })?;
        if env.schema.is_some() && matches!(target, Target::Sqlite(_)) {
            return Err(Failure::usage(
                config
                    .env_error(
                        env,
                        format!(
                            "environment '{}': `schema` applies to PostgreSQL only",
                            env.name
                        ),
                    )
                    .to_string(),
            ));
        }
        out.push(target);
    }
    Ok(out)
}

/// Reads one environment's ledger through a read-only session.
pub async fn read_ledger(env: &EnvConfig, target: &Target) -> Result<Vec<LedgerRow>, String> {
    let started = std::time::Instant::now();
    let session = ReadSession::open(target, env.schema.as_deref(), env.connect_timeout)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "connected");
    ledger::envgate::read(&session).await
}

/// The notices about modes chosen by default: one line per environment
/// detected as staging or production, one line for the rest.
pub fn mode_notes(envs: &[&EnvConfig]) -> Vec<String> {
    let defaulted = envs.iter().filter(|e| e.mode_source == ModeSource::Default);
    let mut notes: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ExportOnly)
        .map(|e| {
            format!(
                "detected '{}': mode export_only (set `mode` to override)",
                e.name
            )
        })
        .collect();
    let managed: Vec<&str> = defaulted
        .filter(|e| e.mode == Mode::Managed)
        .map(|e| e.name.as_str())
        .collect();
    if !managed.is_empty() {
        notes.push(format!(
            "no mode set for {}: mode managed",
            managed.join(", ")
        ));
    }
    notes
}

pub async fn run(config: &Config, args: StatusArgs) -> Result<i32, Failure> {
    let envs = select(config, &args.envs)?;
    let mut redactor = Redactor::new();
    let targets = targets(config, &envs, &mut redactor)?;

    // Discovery (file system + hashing) runs while the databases answer.
    let started = std::time::Instant::now();
    let dir = config.migrations_dir.clone();
    let label = config.migrations.clone();
    let discovery = tokio::task::spawn_blocking(move || -> Result<Discovery, String> {
        let loaded = super::load::migrations_dir(&dir, &label)?;
        tracing::debug!(files = loaded.files.len(), elapsed = ?started.elapsed(), "migrations read");
        let mut d = migration::discover(loaded.files).map_err(|e| e.to_string())?;
        tracing::debug!(elapsed = ?started.elapsed(), "migrations discovered");
        d.ignored.extend(loaded.ignored);
        d.ignored.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(d)
    });
    let reads =
        futures::future::join_all(envs.iter().zip(&targets).map(|(env, target)| async move {
            let rows = read_ledger(env, target).await;
            tracing::debug!(env = %env.name, elapsed = ?started.elapsed(), "ledger read");
            rows
        }));
    let (discovery, ledgers) = tokio::join!(discovery, reads);
    let discovery = discovery
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(Failure::usage)?;

    if args.verbose {
        let mut err = std::io::stderr().lock();
        for ig in &discovery.ignored {
            let _ = writeln!(err, "ignored {}: {}", ig.path, ig.reason);
        }
    }

    let ledgers: Vec<Result<Vec<LedgerRow>, String>> = ledgers
        .into_iter()
        .zip(&targets)
        .map(|(r, t)| r.map_err(|e| redactor.redact(&format!("{}: {e}", target_label(t)))))
        .collect();
    let inputs: Vec<EnvLedger<'_>> = envs
        .iter()
        .zip(&ledgers)
        .map(|(env, r)| EnvLedger {
            name: &env.name,
            rows: r.as_deref().map_err(String::as_str),
        })
        .collect();
    let matrix = matrix::compute(&discovery.migrations, &inputs);
    tracing::debug!(elapsed = ?started.elapsed(), "matrix computed");
    let notes = mode_notes(&envs);
    let text = match args.format {
        Format::Json => {
            let mut err = std::io::stderr().lock();
            for n in &notes {
                let _ = writeln!(err, "{n}");
            }
            render::status_json(&envs, &matrix)
        }
        Format::Markdown => render::status_markdown(&envs, &matrix, &notes),
        Format::Table => render::status_table(&envs, &matrix, &notes, args.color),
    };
    tracing::debug!(elapsed = ?started.elapsed(), "rendered");
    let text = redactor.redact(&text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("writing the output: {e}")))?;

    Ok(if args.check && matrix.has_problems() {
        exit::CHECK_FAILED
    } else if matrix.any_unreachable() {
        exit::UNREACHABLE
    } else {
        exit::OK
    })
}

/// How an unreachable environment's target is named in its error.
fn target_label(target: &Target) -> String {
    match target {
        Target::Postgres(pg) => {
            let hosts: Vec<String> = pg
                .config
                .get_hosts()
                .iter()
                .zip(pg.config.get_ports().iter().chain(std::iter::repeat(&5432)))
                .map(|(h, p)| match h {
                    tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "postgres {}/{}",
                hosts.join(","),
                pg.config.get_dbname().unwrap_or_default()
            )
        }
        Target::Sqlite(crate::target::SqliteTarget::File(p)) => format!("sqlite {}", p.display()),
        Target::Sqlite(crate::target::SqliteTarget::Memory) => "sqlite :memory:".to_owned(),
    }
}
