//! The command line: flags, output formats, exit codes.

mod load;
pub mod status;

use crate::config;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Exit codes: a documented contract, so a pipeline can tell a problem from
/// an outage.
pub mod exit {
    /// Nothing to report (pending migrations alone are not a problem).
    pub const OK: i32 = 0;
    /// `--check`: a cell is drifted, failed or missing.
    pub const CHECK_FAILED: i32 = 1;
    /// Bad usage, configuration or migration files.
    pub const USAGE: i32 = 2;
    /// A refused action (the mode or a guard forbids it).
    pub const REFUSED: i32 = 3;
    /// An environment could not be read.
    pub const UNREACHABLE: i32 = 4;
    /// A bug or an unexpected failure inside envgate.
    pub const INTERNAL: i32 = 5;
}

/// A run that ends with a message on stderr and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::INTERNAL,
            message: message.into(),
        }
    }
}

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
    init_tracing();
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
    eprintln!("error: {}", failure.message);
    failure.code
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENVGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    let config_path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_FILE));
    let config = config::load(&config_path).map_err(|e| Failure::usage(e.to_string()))?;
    match cli.command {
        Command::Status {
            envs,
            format,
            check,
        } => {
            let stdout_tty = std::io::stdout().is_terminal();
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
    }
}
