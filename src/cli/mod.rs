//! The command line: flags, output formats, exit codes.

mod apply;
mod audit;
mod ci;
mod drift;
mod export;
mod mode;
mod plan;
mod release;
pub mod status;

use crate::config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use crate::ops::{Failure, exit};

#[derive(Parser)]
#[command(
    name = "envgate",
    version,
    about = "One migration pipeline, many targets: every migration's state in every environment."
)]
struct Cli {
    /// The configuration file [default: ./envgate.toml]
    #[arg(
        short,
        long,
        global = true,
        env = "ENVGATE_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// The control store, instead of envgate.toml's `control_store`:
    /// sqlite://path or postgres://… (CI jobs point it at the team's store)
    #[arg(long, global = true, env = "ENVGATE_CONTROL_STORE", value_name = "URL")]
    control_store: Option<String>,

    /// Say more (lists ignored files in the migrations directory).
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show every migration's state in every environment.
    ///
    /// Exit codes: 0 fine (pending alone is fine), 1 with --check when a cell is
    /// drifted, failed or missing, 2 usage or configuration error, 4 when an
    /// environment could not be read.
    Status {
        /// Only these environments (repeatable) [default: all]
        #[arg(long = "env", value_name = "NAME")]
        envs: Vec<String>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Exit with 1 when any cell is drifted, failed or missing.
        #[arg(long)]
        check: bool,
    },
    /// Show what `apply` or `export` would do for one environment.
    Plan {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Stop after this version [default: the newest]
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Plan as if drift and failed runs were let through
        #[arg(long)]
        allow_drift: bool,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Apply pending migrations to a managed environment.
    ///
    /// One migration at a time, each with its ledger row in the same
    /// transaction (statements that cannot run in a transaction run outside
    /// one, the row written after them). Holds the environment's lock.
    /// Exit codes: 0 applied or nothing to do, 1 a migration failed, 2 usage,
    /// 3 refused (mode, drift, failed runs, lock), 4 unreachable.
    Apply {
        /// The environment (must be managed)
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Stop after this version [default: the newest]
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Show the plan and apply nothing
        #[arg(long)]
        dry_run: bool,
        /// Go ahead despite drift, and retry failed migrations
        #[arg(long)]
        allow_drift: bool,
        /// Who applies, for the ledger [default: $GITHUB_ACTOR, $GITLAB_USER_LOGIN or the OS user]
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// How long to wait for another run's lock [default: lock_timeout, 60s]
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        lock_timeout: Option<std::time::Duration>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Write the SQL bundle that brings an environment to a target.
    ///
    /// Reads the environment's ledger read-only and writes
    /// <env>-<from>-<to>.sql and <env>-<from>-<to>.manifest.json.
    Export {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Stop after this version [default: the newest]
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Directory for the bundle and its manifest [default: .]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Go ahead despite drift, and retry failed migrations
        #[arg(long)]
        allow_drift: bool,
        /// Who exports, for the manifest
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// List the releases (git tags matching release_tags) with their migrations
    /// and progress per environment.
    Releases {
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// One release: its migrations, their SHA-256, its progress per
    /// environment, and the bundle each export_only environment would get.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Promote a release to the next environment (or --to one).
    ///
    /// Every earlier environment must have the release fully applied.
    /// managed: applies the release's pending migrations; export_only: writes
    /// the release's bundle; reconcile_only: refuses, showing what is pending.
    /// Exit codes: 0 done, 1 a migration failed, 2 usage, 3 refused,
    /// 4 unreachable.
    Promote {
        /// The release (a tag)
        release: String,
        /// The environment [default: the next after the furthest that has it]
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
        /// Show the plan or the bundle; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Who promotes, for the ledger and the audit trail
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Go ahead although an earlier environment lacks the release (needs --reason)
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why --force was needed (goes to the audit trail)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Go ahead despite drift, and retry failed migrations
        #[arg(long)]
        allow_drift: bool,
        /// Directory for an export_only bundle [default: .]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Revert a release in one environment with its down migrations, newest
    /// first (managed), or write the rollback bundle (export_only).
    Rollback {
        /// The release (a tag)
        release: String,
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Show what would be reverted; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Who rolls back, for the audit trail
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Directory for an export_only bundle [default: .]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Export the audit trail, verified as it is read (exit 1 when its
    /// chain is broken); `audit verify` checks it, `audit head` prints the
    /// head to publish. See docs/audit.md.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        /// Only this environment's records
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Only this actor's records
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Only records of this kind (apply, promote, mode_change, …)
        #[arg(long, value_name = "ACTION")]
        kind: Option<String>,
        /// From this time on: 2026-11-25T09:00:00Z, 2026-11-25 or 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Before this time (same forms as --since)
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Fail unless this published head (SEQ:HASH) is on the chain
        #[arg(long, value_name = "SEQ:HASH")]
        expect: Option<String>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<audit::AuditFormat>,
    },
    /// Accept drift on purpose.
    Drift {
        #[command(subcommand)]
        command: DriftCommand,
    },
    /// Confirm an environment's mode.
    Mode {
        #[command(subcommand)]
        command: ModeCommand,
    },
    /// Run in CI (GitHub Actions, GitLab CI): the matrix in the job summary
    /// and one sticky pull/merge request comment, release bundles attached
    /// to release tags, step outputs; fails per --fail-on.
    ///
    /// Outside CI it shows the status. Exit codes: 0 fine, 1 a --fail-on
    /// finding, 2 usage, 3 refused, 4 unreachable (from --command).
    Ci(ci::CiArgs),
    /// Run the webhook bot: a GitHub App, GitLab webhooks, or both.
    ///
    /// Configured by a file (--config-file) and ENVGATE_* variables, which
    /// win: listen address, control store, the GitHub App (id, private key,
    /// webhook secret, API URL), GitLab (API URL, access token, webhook
    /// secret), and where environment credentials come from.
    Serve {
        /// The bot's configuration file (serve.toml)
        #[arg(long, value_name = "FILE", env = "ENVGATE_SERVE_CONFIG")]
        config_file: Option<PathBuf>,
        /// Log lines as text or JSON
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// GitHub App set-up.
    GithubApp {
        #[command(subcommand)]
        command: GithubAppCommand,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum GithubAppCommand {
    /// Print the App manifest for GitHub's manifest flow: the permissions
    /// and events envgate needs, with the webhook pointing at --url.
    Manifest {
        /// Where envgate serve is reachable (https://envgate.example.com)
        #[arg(long, value_name = "URL")]
        url: String,
        /// The App's name
        #[arg(long, default_value = "envgate")]
        name: String,
    },
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Show one release.
    Show {
        /// The release (a tag)
        tag: String,
        /// Print each export_only environment's bundle in full (JSON always has it)
        #[arg(long)]
        sql: bool,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain: exit 0 intact, 1 when a record was changed,
    /// inserted or removed, or (with --expect) the chain was cut short or
    /// rewritten before a published head. Keyed records are proven with
    /// ENVGATE_AUDIT_KEY.
    Verify {
        /// A head published earlier (SEQ:HASH, from `envgate audit head`,
        /// a check run or release notes)
        #[arg(long, value_name = "SEQ:HASH")]
        expect: Option<String>,
    },
    /// Print the chain's head (SEQ:HASH), to publish where the store's
    /// writers cannot change it.
    Head,
}

#[derive(Subcommand)]
enum DriftCommand {
    /// Record today's content of a drifted migration as the accepted one
    /// for an environment (managed: its ledger row is updated; otherwise the
    /// control store records it).
    Accept {
        /// The environment
        env: String,
        /// The migration's version
        version: String,
        /// Why the edit is intended (goes to the audit trail)
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who accepts, for the audit trail
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModeCommand {
    /// Set an environment's mode in envgate.toml (comments and layout kept)
    /// and say what the change needs: a request, and an admin's approval
    /// when it gives envgate more power there.
    Set {
        /// The environment
        env: String,
        /// managed, export_only or reconcile_only
        mode: String,
    },
    /// As one of the environment's admins, confirm its current mode (lifts
    /// the guard on an environment made managed by someone else).
    Confirm {
        /// The environment
        env: String,
        /// Who confirms (must be one of the environment's admins)
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // The bot runs its own runtimes and needs no envgate.toml.
    match cli.command {
        Command::Serve {
            config_file,
            log_format,
        } => {
            init_tracing(log_format == LogFormat::Json, "info");
            let cfg = match crate::serve::config::load(config_file.as_deref()) {
                Ok(c) => c,
                Err(e) => return report(Failure::usage(e)),
            };
            return match crate::serve::run(cfg) {
                Ok(()) => exit::OK,
                Err(e) => report(Failure::internal(e)),
            };
        }
        Command::GithubApp {
            command: GithubAppCommand::Manifest { url, name },
        } => {
            return match crate::serve::manifest(&url, &name) {
                Ok(text) => {
                    let _ = crate::secrets::out(&text);
                    exit::OK
                }
                Err(e) => report(Failure::usage(e)),
            };
        }
        _ => {}
    }
    init_tracing(false, "warn");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(Failure::internal(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> i32 {
    crate::errln!("error: {}", failure.message);
    failure.code
}

fn init_tracing(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENVGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Every log line goes through the scrubber (see `crate::secrets`); no
    // colour codes where stderr is a file or NO_COLOR is set.
    let color = crate::secrets::stderr_is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(crate::secrets::LogWriter);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    let config_path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_FILE));
    let mut config = config::load(&config_path).map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(store) = cli
        .control_store
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let base = config_path.parent().unwrap_or(std::path::Path::new(""));
        config.control_store = config::control_store_location(store.trim(), base)
            .map_err(|m| Failure::usage(format!("--control-store / ENVGATE_CONTROL_STORE: {m}")))?;
        if let config::ControlStoreLocation::Postgres(url) = &config.control_store {
            crate::secrets::register_url(url);
        }
    }
    match cli.command {
        Command::Status {
            envs,
            format,
            check,
        } => {
            let stdout_tty = crate::secrets::stdout_is_terminal();
            let color = stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            status::run(
                &config,
                status::StatusArgs {
                    envs,
                    format: format.unwrap_or(Format::Table),
                    check,
                    verbose: cli.verbose,
                    color,
                },
            )
            .await
        }
        Command::Plan {
            env,
            to,
            allow_drift,
            format,
        } => {
            plan::run(
                &config,
                plan::PlanArgs {
                    env,
                    to,
                    allow_drift,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Apply {
            env,
            to,
            dry_run,
            allow_drift,
            actor,
            lock_timeout,
            format,
        } => {
            apply::run(
                &config,
                apply::ApplyArgs {
                    env,
                    to,
                    dry_run,
                    allow_drift,
                    actor,
                    lock_timeout,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Export {
            env,
            to,
            out,
            allow_drift,
            actor,
            format,
        } => {
            export::run(
                &config,
                export::ExportArgs {
                    env,
                    to,
                    out,
                    allow_drift,
                    actor,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Ci(args) => ci::run(&config, args).await,
        Command::Releases { format } => {
            release::list(&config, format.unwrap_or(ReportFormat::Table)).await
        }
        Command::Release {
            command: ReleaseCommand::Show { tag, sql, format },
        } => release::show(&config, &tag, format.unwrap_or(ReportFormat::Table), sql).await,
        Command::Promote {
            release,
            to,
            dry_run,
            actor,
            force,
            reason,
            allow_drift,
            out,
            format,
        } => {
            release::promote(
                &config,
                release::PromoteCli {
                    release,
                    to,
                    dry_run,
                    actor,
                    force,
                    reason,
                    allow_drift,
                    out,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Rollback {
            release,
            env,
            dry_run,
            actor,
            out,
            format,
        } => {
            release::rollback(
                &config,
                release::RollbackCli {
                    release,
                    env,
                    dry_run,
                    actor,
                    out,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Audit {
            command: Some(AuditCommand::Verify { expect }),
            ..
        } => audit::verify(&config, expect.as_deref()).await,
        Command::Audit {
            command: Some(AuditCommand::Head),
            ..
        } => audit::head(&config).await,
        Command::Audit {
            command: None,
            env,
            actor,
            kind,
            since,
            until,
            expect,
            format,
        } => {
            audit::export(
                &config,
                audit::AuditArgs {
                    env,
                    actor,
                    kind,
                    since,
                    until,
                    expect,
                    format: format.unwrap_or(audit::AuditFormat::Table),
                },
            )
            .await
        }
        Command::Drift {
            command:
                DriftCommand::Accept {
                    env,
                    version,
                    reason,
                    actor,
                },
        } => {
            drift::accept(
                &config,
                drift::AcceptArgs {
                    env,
                    version,
                    reason,
                    actor,
                },
            )
            .await
        }
        Command::Mode {
            command: ModeCommand::Confirm { env, actor },
        } => mode::confirm(&config, &env, actor.as_deref()).await,
        Command::Mode {
            command: ModeCommand::Set { env, mode },
        } => mode::set(&config, &env, &mode),
        Command::Serve { .. } | Command::GithubApp { .. } => unreachable!("handled in main"),
    }
}

/// Writes a command's answer to stdout, masking secrets.
pub fn print(text: &str) -> Result<(), Failure> {
    crate::secrets::out(text).map_err(|e| Failure::internal(format!("writing the output: {e}")))
}

/// Shows a use case's answer: its warnings on stderr, its text on stdout;
/// its exit code.
pub fn show(reply: crate::ops::Reply) -> Result<i32, Failure> {
    for w in &reply.warnings {
        crate::errln!("warning: {w}");
    }
    print(&reply.text)?;
    Ok(reply.code)
}
