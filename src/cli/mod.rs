//! The command line: flags, output formats, exit codes.

mod apply;
mod audit;
mod ci;
mod drift;
mod export;
mod init;
mod lint;
mod mode;
mod plan;
mod release;
mod schema;
pub mod status;

use crate::config;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
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

/// `--up-to VERSION`: how far plan, apply and export go (`--to` before).
#[derive(clap::Args)]
struct UpTo {
    /// Stop after this version [default: the newest]
    #[arg(long, value_name = "VERSION")]
    up_to: Option<String>,
    /// Deprecated spelling of --up-to
    #[arg(
        long = "to",
        value_name = "VERSION",
        hide = true,
        conflicts_with = "up_to"
    )]
    old_to: Option<String>,
}

/// What a person lets through on purpose.
#[derive(clap::Args)]
struct Waivers {
    /// Go ahead although migrations drifted (edited after they were applied)
    #[arg(long)]
    allow_drift: bool,
    /// Run again the migrations whose last run failed (fix them first)
    #[arg(long)]
    retry_failed: bool,
}

/// `--out-dir DIR`: where bundles go (`--out` before).
#[derive(clap::Args)]
struct OutDir {
    /// Directory for the bundle and its manifest [default: .]
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Deprecated spelling of --out-dir
    #[arg(
        long = "out",
        value_name = "DIR",
        hide = true,
        conflicts_with = "out_dir"
    )]
    old_out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented envgate.toml for this repository.
    ///
    /// Detects the migration layout (envgate's own or one of the 17 other
    /// tools'), takes the environments from --env NAME=URL (or asks, on a
    /// terminal), reads each one read-only to find its ledger table, writes
    /// the file and shows the first matrix. Never writes to a database.
    Init(init::InitArgs),
    /// Show every migration's state in every environment.
    ///
    /// Exit codes: 0 fine (pending alone is fine), 1 with --check when a cell is
    /// drifted, failed or missing, 2 usage or configuration error, 4 when an
    /// environment could not be read.
    Status {
        /// Only these environments (comma-separated or repeated) [default: all]
        #[arg(long = "env", value_name = "NAME", value_delimiter = ',')]
        envs: Vec<String>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Exit with 1 when any cell is drifted, failed or missing.
        #[arg(long)]
        check: bool,
        /// Also compare each environment's live schema with what its
        /// migrations produce (see `envgate schema diff`).
        #[arg(long)]
        schema: bool,
    },
    /// Lint migrations: squawk's PostgreSQL rules and envgate's own.
    ///
    /// Without FILES, the migrations not yet applied in every environment
    /// that could be read. Exit codes: 0 fine, 1 a finding at or above
    /// --fail-on, 2 usage or configuration error.
    Lint {
        /// Migration files, relative to envgate.toml's directory
        #[arg(value_name = "FILES")]
        files: Vec<String>,
        /// Every migration, applied or not
        #[arg(long, conflicts_with = "files")]
        all: bool,
        /// Read no environment (edits to applied migrations go unchecked)
        #[arg(long)]
        offline: bool,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// The least severity that fails: error, warning or never
        #[arg(long, value_name = "SEVERITY", default_value = "error")]
        fail_on: String,
    },
    /// Drift in the live schema: indexes, columns, constraints changed by
    /// hand.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Show what `apply` or `export` would do for one environment.
    Plan {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: String,
        #[command(flatten)]
        up_to: UpTo,
        #[command(flatten)]
        waivers: Waivers,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// Apply pending migrations to a managed environment.
    ///
    /// One migration at a time, each with its ledger row in the same
    /// transaction (statements that cannot run in a transaction run outside
    /// one, the row written after them). Holds the environment's lock.
    /// Progress goes to stderr: a bar on a terminal, else one line per
    /// migration as it starts and ends.
    /// Exit codes: 0 applied or nothing to do, 1 a migration failed, 2 usage,
    /// 3 refused (mode, drift, failed runs, lock), 4 unreachable.
    Apply {
        /// The environment (must be managed)
        #[arg(long, value_name = "NAME")]
        env: String,
        #[command(flatten)]
        up_to: UpTo,
        /// Show the plan and apply nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        waivers: Waivers,
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
        #[command(flatten)]
        up_to: UpTo,
        #[command(flatten)]
        out: OutDir,
        #[command(flatten)]
        waivers: Waivers,
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
    /// Promote a release to the next environment (or the --env one).
    ///
    /// Every earlier environment must have the release fully applied.
    /// managed: applies the release's pending migrations; export_only: writes
    /// the release's bundle; reconcile_only: refuses, showing what is pending.
    /// Exit codes: 0 done, 1 a migration failed, 2 usage, 3 refused,
    /// 4 unreachable.
    Promote {
        /// The release (a tag)
        release: String,
        /// The destination environment [default: the next after the furthest that has it]
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Deprecated spelling of --env
        #[arg(long = "to", value_name = "NAME", hide = true, conflicts_with = "env")]
        old_to: Option<String>,
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
        #[command(flatten)]
        waivers: Waivers,
        #[command(flatten)]
        out: OutDir,
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
        #[command(flatten)]
        out: OutDir,
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
        /// Only records about this repository, in a store the bot keeps for
        /// several (github:owner/name, gitlab:group/project)
        #[arg(long, value_name = "FORGE:PATH")]
        repository: Option<String>,
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
    /// Set or confirm an environment's mode.
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
    /// Configured by a file (-c/--config, or ENVGATE_SERVE_CONFIG) and
    /// ENVGATE_* variables, which win: listen address, control store, the
    /// GitHub App (id, private key, webhook secret, API URL), GitLab (API
    /// URL, access token, webhook secret), and where environment
    /// credentials come from. envgate.toml is not read here.
    Serve {
        /// Deprecated spelling of -c/--config for serve
        #[arg(long, value_name = "FILE", env = "ENVGATE_SERVE_CONFIG", hide = true)]
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
enum SchemaCommand {
    /// Compare each environment's live schema with the one its applied
    /// migrations produce on the shadow database ([schema_drift]
    /// shadow_url), or with an environment at the same position.
    ///
    /// Reads every environment read-only. Exit codes: 0 fine, 1 with --check
    /// when a schema differs, 2 usage or configuration error, 4 when an
    /// environment could not be read.
    Diff {
        /// Only these environments (comma-separated or repeated) [default: all]
        #[arg(long = "env", value_name = "NAME", value_delimiter = ',')]
        envs: Vec<String>,
        /// Output format [default: table]
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Exit with 1 when any schema differs.
        #[arg(long)]
        check: bool,
    },
    /// Print one environment's schema in envgate's stable text form, with
    /// its fingerprint.
    Show {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: String,
    },
}

#[derive(Subcommand)]
enum DriftCommand {
    /// Record today's content of a drifted migration as the accepted one
    /// for an environment (managed: its ledger row is updated; otherwise the
    /// control store records it).
    Accept {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// The migration's version (before: ENV VERSION, deprecated)
        #[arg(value_name = "VERSION", num_args = 1..=2, required = true)]
        words: Vec<String>,
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
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// managed, export_only or reconcile_only (before: ENV MODE, deprecated)
        #[arg(value_name = "MODE", num_args = 1..=2, required = true)]
        words: Vec<String>,
    },
    /// As one of the environment's admins, confirm its current mode (lifts
    /// the guard on an environment made managed by someone else).
    Confirm {
        /// The environment
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// Deprecated: the environment as a positional argument
        #[arg(value_name = "ENV", hide = true)]
        old_env: Option<String>,
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
    /// One self-contained page (`status` only)
    Html,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let mut old = Deprecated::default();
    // The bot runs its own runtimes and needs no envgate.toml.
    match cli.command {
        Command::Serve {
            config_file,
            log_format,
        } => {
            init_tracing(log_format == LogFormat::Json, "info");
            let serve = matches.subcommand_matches("serve");
            // -c names serve.toml here when given on the command line (not
            // when ENVGATE_CONFIG, meant for envgate.toml, is merely set).
            let given = serve.and_then(|m| m.value_source("config"))
                == Some(clap::parser::ValueSource::CommandLine);
            let spelled_old = serve.and_then(|m| m.value_source("config_file"))
                == Some(clap::parser::ValueSource::CommandLine);
            let file = if given {
                cli.config
            } else {
                if spelled_old {
                    old.note("serve --config-file", "serve -c/--config");
                }
                config_file
            };
            old.warn();
            let cfg = match crate::serve::config::load(file.as_deref()) {
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
    match runtime.block_on(run(cli, &mut old)) {
        Ok(code) => code,
        Err(failure) => report(failure),
    }
}

/// The whole command line, every command and flag, as Markdown: what
/// `docs/cli.md` holds (a test keeps it current).
pub fn reference() -> String {
    fn walk(cmd: &mut clap::Command, path: &str, out: &mut String) {
        let name = if path.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        let level = name.split(' ').count().min(4);
        out.push_str(&format!("{} `{name}`\n\n```text\n", "#".repeat(level)));
        let help = cmd.render_long_help().to_string();
        for line in help.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str("```\n\n");
        let subs: Vec<String> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .map(|c| c.get_name().to_owned())
            .collect();
        for sub in subs {
            if let Some(c) = cmd.find_subcommand_mut(&sub) {
                walk(c, &name, out);
            }
        }
    }
    let mut cmd = Cli::command().term_width(100);
    cmd.build();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Every command and flag of `envgate`, as `envgate help` prints them. \
         Generated from the program itself (`ENVGATE_UPDATE_DOCS=1 cargo test --test first_hour \
         cli_reference_is_current` rewrites it); back to the [README](../README.md).\n\n",
    );
    walk(&mut cmd, "", &mut out);
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// Old spellings still understood for one release, each with a notice.
#[derive(Default)]
struct Deprecated(Vec<String>);

impl Deprecated {
    fn note(&mut self, old: &str, new: &str) {
        self.0.push(format!(
            "`{old}` is deprecated and goes away in the next release: use `{new}`"
        ));
    }

    /// The new spelling's value, else the old one's (noted).
    fn pick<T>(
        &mut self,
        new: Option<T>,
        old: Option<T>,
        old_name: &str,
        new_name: &str,
    ) -> Option<T> {
        if old.is_some() {
            self.note(old_name, new_name);
        }
        new.or(old)
    }

    /// `--env NAME WORD`, or the old positional `NAME WORD`.
    fn env_and_word(
        &mut self,
        env: Option<String>,
        mut words: Vec<String>,
        command: &str,
        word: &str,
    ) -> Result<(String, String), Failure> {
        match (env, words.len()) {
            (Some(env), 1) => Ok((env, words.remove(0))),
            (None, 2) => {
                self.note(
                    &format!("envgate {command} ENV {word}"),
                    &format!("envgate {command} --env ENV {word}"),
                );
                let w = words.remove(1);
                Ok((words.remove(0), w))
            }
            (Some(_), _) => Err(Failure::usage(format!(
                "envgate {command}: name the environment once, with --env (usage: envgate {command} --env ENV {word})"
            ))),
            (None, _) => Err(Failure::usage(format!(
                "envgate {command}: which environment? (usage: envgate {command} --env ENV {word})"
            ))),
        }
    }

    fn warn(&mut self) {
        for line in self.0.drain(..) {
            crate::errln!("warning: {line}");
        }
    }
}

fn waive(w: &Waivers) -> crate::core::plan::Waive {
    crate::core::plan::Waive {
        drift: w.allow_drift,
        failed: w.retry_failed,
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

/// Resolves old spellings into the new ones, noting each.
fn normalise(command: Command, old: &mut Deprecated) -> Result<Command, Failure> {
    fn up_to(u: UpTo, old: &mut Deprecated) -> UpTo {
        UpTo {
            up_to: old.pick(u.up_to, u.old_to, "--to VERSION", "--up-to VERSION"),
            old_to: None,
        }
    }
    fn out_dir(o: OutDir, old: &mut Deprecated) -> OutDir {
        OutDir {
            out_dir: old.pick(o.out_dir, o.old_out, "--out DIR", "--out-dir DIR"),
            old_out: None,
        }
    }
    Ok(match command {
        Command::Plan {
            env,
            up_to: u,
            waivers,
            format,
        } => Command::Plan {
            env,
            up_to: up_to(u, old),
            waivers,
            format,
        },
        Command::Apply {
            env,
            up_to: u,
            dry_run,
            waivers,
            actor,
            lock_timeout,
            format,
        } => Command::Apply {
            env,
            up_to: up_to(u, old),
            dry_run,
            waivers,
            actor,
            lock_timeout,
            format,
        },
        Command::Export {
            env,
            up_to: u,
            out,
            waivers,
            actor,
            format,
        } => Command::Export {
            env,
            up_to: up_to(u, old),
            out: out_dir(out, old),
            waivers,
            actor,
            format,
        },
        Command::Promote {
            release,
            env,
            old_to,
            dry_run,
            actor,
            force,
            reason,
            waivers,
            out,
            format,
        } => Command::Promote {
            release,
            env: old.pick(env, old_to, "promote --to ENV", "promote --env ENV"),
            old_to: None,
            dry_run,
            actor,
            force,
            reason,
            waivers,
            out: out_dir(out, old),
            format,
        },
        Command::Rollback {
            release,
            env,
            dry_run,
            actor,
            out,
            format,
        } => Command::Rollback {
            release,
            env,
            dry_run,
            actor,
            out: out_dir(out, old),
            format,
        },
        Command::Drift {
            command:
                DriftCommand::Accept {
                    env,
                    words,
                    reason,
                    actor,
                },
        } => {
            let (env, version) = old.env_and_word(env, words, "drift accept", "VERSION")?;
            Command::Drift {
                command: DriftCommand::Accept {
                    env: Some(env),
                    words: vec![version],
                    reason,
                    actor,
                },
            }
        }
        Command::Mode {
            command: ModeCommand::Set { env, words },
        } => {
            let (env, mode) = old.env_and_word(env, words, "mode set", "MODE")?;
            Command::Mode {
                command: ModeCommand::Set {
                    env: Some(env),
                    words: vec![mode],
                },
            }
        }
        Command::Mode {
            command:
                ModeCommand::Confirm {
                    env,
                    old_env,
                    actor,
                },
        } => {
            let env = match (env, old_env) {
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(
                        "envgate mode confirm: name the environment once, with --env",
                    ));
                }
                (env, old_env) => old.pick(
                    env,
                    old_env,
                    "envgate mode confirm ENV",
                    "envgate mode confirm --env ENV",
                ),
            };
            if env.is_none() {
                return Err(Failure::usage(
                    "envgate mode confirm: which environment? (usage: envgate mode confirm --env ENV)",
                ));
            }
            Command::Mode {
                command: ModeCommand::Confirm {
                    env,
                    old_env: None,
                    actor,
                },
            }
        }
        other => other,
    })
}

/// The one word left after `normalise`.
fn only(mut words: Vec<String>) -> String {
    words.pop().unwrap_or_default()
}

async fn run(cli: Cli, old: &mut Deprecated) -> Result<i32, Failure> {
    let config_path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_FILE));
    // Old spellings are noted before anything else is said.
    let command = normalise(cli.command, old)?;
    old.warn();
    if let Command::Init(args) = command {
        return init::run(&config_path, args).await;
    }
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
    match command {
        Command::Schema {
            command:
                SchemaCommand::Diff {
                    envs,
                    format,
                    check,
                },
        } => {
            schema::diff(
                &config,
                schema::DiffArgs {
                    envs,
                    format: format.unwrap_or(Format::Table),
                    check,
                },
            )
            .await
        }
        Command::Schema {
            command: SchemaCommand::Show { env },
        } => schema::show(&config, &env).await,
        Command::Lint {
            files,
            all,
            offline,
            format,
            fail_on,
        } => {
            let fail_on = match fail_on.as_str() {
                "never" => None,
                other => Some(
                    crate::core::lint::Severity::parse(other)
                        .filter(|s| *s != crate::core::lint::Severity::Off)
                        .ok_or_else(|| {
                            Failure::usage(format!(
                                "--fail-on {other}: write error, warning or never"
                            ))
                        })?,
                ),
            };
            lint::run(
                &config,
                lint::LintArgs {
                    files,
                    all,
                    offline,
                    format: format.unwrap_or(Format::Table),
                    fail_on,
                },
            )
            .await
        }
        Command::Status {
            envs,
            format,
            check,
            schema,
        } => {
            let stdout_tty = crate::secrets::stdout_is_terminal();
            let color = stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            status::run(
                &config,
                status::StatusArgs {
                    envs,
                    format: format.unwrap_or(Format::Table),
                    check,
                    schema,
                    verbose: cli.verbose,
                    color,
                },
            )
            .await
        }
        Command::Plan {
            env,
            up_to,
            waivers,
            format,
        } => {
            plan::run(
                &config,
                plan::PlanArgs {
                    env,
                    to: up_to.up_to,
                    waive: waive(&waivers),
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Apply {
            env,
            up_to,
            dry_run,
            waivers,
            actor,
            lock_timeout,
            format,
        } => {
            apply::run(
                &config,
                apply::ApplyArgs {
                    env,
                    to: up_to.up_to,
                    dry_run,
                    waive: waive(&waivers),
                    actor,
                    lock_timeout,
                    format: format.unwrap_or(ReportFormat::Table),
                },
            )
            .await
        }
        Command::Export {
            env,
            up_to,
            out,
            waivers,
            actor,
            format,
        } => {
            export::run(
                &config,
                export::ExportArgs {
                    env,
                    to: up_to.up_to,
                    out: out.out_dir,
                    waive: waive(&waivers),
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
            env,
            dry_run,
            actor,
            force,
            reason,
            waivers,
            out,
            format,
            ..
        } => {
            release::promote(
                &config,
                release::PromoteCli {
                    release,
                    to: env,
                    dry_run,
                    actor,
                    force,
                    reason,
                    waive: waive(&waivers),
                    out: out.out_dir,
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
                    out: out.out_dir,
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
            repository,
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
                    repository,
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
                    words,
                    reason,
                    actor,
                },
        } => {
            drift::accept(
                &config,
                drift::AcceptArgs {
                    env: env.unwrap_or_default(),
                    version: only(words),
                    reason,
                    actor,
                },
            )
            .await
        }
        Command::Mode {
            command: ModeCommand::Confirm { env, actor, .. },
        } => mode::confirm(&config, &env.unwrap_or_default(), actor.as_deref()).await,
        Command::Mode {
            command: ModeCommand::Set { env, words },
        } => mode::set(&config, &env.unwrap_or_default(), &only(words)),
        Command::Serve { .. } | Command::GithubApp { .. } | Command::Init(_) => {
            unreachable!("handled in main")
        }
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
