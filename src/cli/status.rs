//! `envgate status`: every migration's state in every environment.

use super::{Failure, Format, common, exit};
use crate::config::{Config, EnvConfig};
use crate::core::ledger::LedgerRow;
use crate::core::matrix::{self, EnvLedger};
use crate::core::mode::{Mode, ModeSource};
use crate::core::redact::Redactor;
use crate::render;
use std::io::Write;

pub struct StatusArgs {
    pub envs: Vec<String>,
    pub format: Format,
    pub check: bool,
    pub verbose: bool,
    pub color: bool,
}

/// The notices about modes chosen by default: one line per environment
/// detected as staging or production, one for environments that read
/// another tool's ledger, one for the rest.
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
    let reconciled: Vec<String> = defaulted
        .clone()
        .filter(|e| e.mode == Mode::ReconcileOnly)
        .map(|e| format!("{} ({})", e.name, e.ledger))
        .collect();
    if !reconciled.is_empty() {
        notes.push(format!(
            "reading other tools' ledgers, never writing: {}: mode reconcile_only",
            reconciled.join(", ")
        ));
    }
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
    let envs = common::select(config, &args.envs)?;
    let mut redactor = Redactor::new();
    let targets = envs
        .iter()
        .map(|env| common::target(config, env, &mut redactor))
        .collect::<Result<Vec<_>, _>>()?;

    // Discovery (file system + hashing) runs while the databases answer.
    let started = std::time::Instant::now();
    let for_discovery = config.clone();
    // Liquibase skips changes meant for other databases: the dialect matters
    // when all environments share one.
    let dialects: Vec<_> = targets.iter().map(common::dialect).collect();
    let dialect = dialects
        .first()
        .copied()
        .filter(|d| dialects.iter().all(|x| x == d));
    let discovery = tokio::task::spawn_blocking(move || {
        let d = common::discover(&for_discovery, dialect);
        tracing::debug!(elapsed = ?started.elapsed(), "migrations discovered");
        d
    });
    let reads =
        futures::future::join_all(envs.iter().zip(&targets).map(|(env, target)| async move {
            let rows = common::read_ledger(env, target).await;
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
        .zip(&envs)
        .map(|((r, t), env)| {
            r.and_then(|raw| common::ledger_rows(env, raw, &discovery.migrations))
                .map_err(|e| redactor.redact(&format!("{}: {e}", common::target_label(t))))
        })
        .collect();
    let labels: Vec<String> = envs
        .iter()
        .zip(&targets)
        .map(|(env, t)| {
            format!(
                "{} {}",
                common::target_label(t),
                env.schema.as_deref().unwrap_or("")
            )
        })
        .collect();
    let observations = Observations::load(config, &envs, &labels);
    let inputs: Vec<EnvLedger<'_>> = envs
        .iter()
        .zip(&ledgers)
        .enumerate()
        .map(|(i, (env, r))| EnvLedger {
            observed: observations.maps[i].as_ref(),
            ..EnvLedger::new(&env.name, r.as_deref().map_err(String::as_str))
        })
        .collect();
    let matrix = matrix::compute(&discovery.migrations, &inputs);
    observations.record(&envs, &labels, &matrix);
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

/// First observations of applied migrations, for ledgers that record no
/// checksum, from and to the control store. Problems with the store are
/// warnings: the matrix is still shown, without those drift checks.
struct Observations {
    store: Option<crate::control::ControlStore>,
    maps: Vec<Option<std::collections::HashMap<String, crate::core::matrix::Observed>>>,
}

impl Observations {
    fn needed(env: &EnvConfig) -> bool {
        env.ledger != crate::core::tools::Tool::Envgate
    }

    fn load(config: &Config, envs: &[&EnvConfig], labels: &[String]) -> Observations {
        if !envs.iter().any(|e| Self::needed(e)) {
            return Observations {
                store: None,
                maps: vec![None; envs.len()],
            };
        }
        let store = match crate::control::ControlStore::open(&config.control_store) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!(
                    "warning: {e}; drift of migrations in ledgers without checksums is not checked"
                );
                None
            }
        };
        let maps = envs
            .iter()
            .zip(labels)
            .map(|(env, label)| {
                let store = store.as_ref().filter(|_| Self::needed(env))?;
                let scope = crate::control::Scope {
                    environment: &env.name,
                    target: label,
                    ledger: env.ledger.as_str(),
                };
                store
                    .observed(&scope)
                    .map_err(|e| eprintln!("warning: control store: {e}"))
                    .ok()
            })
            .collect();
        Observations { store, maps }
    }

    /// Records what is seen applied for the first time.
    fn record(&self, envs: &[&EnvConfig], labels: &[String], m: &matrix::Matrix<'_>) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        for (e, (env, label)) in envs.iter().zip(labels).enumerate() {
            if !Self::needed(env) || self.maps[e].is_none() {
                continue;
            }
            let seen: Vec<(&str, crate::core::checksum::ContentHash)> = (0..m.rows.len())
                .filter_map(|r| {
                    let cell = m.cells(r)[e];
                    let row = &m.rows[r];
                    let applied = cell.ledger.is_some_and(|l| l.success) && cell.observed.is_none();
                    applied.then_some((row.version, row.hash?))
                })
                .collect();
            if seen.is_empty() {
                continue;
            }
            let scope = crate::control::Scope {
                environment: &env.name,
                target: label,
                ledger: env.ledger.as_str(),
            };
            if let Err(err) = store.record(&scope, &seen, &now) {
                eprintln!("warning: control store: {err}");
            }
        }
    }
}
