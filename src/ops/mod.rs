//! What the command line and the bot share beyond the pure core: reading
//! the world (configuration, migrations, ledgers), the control store's
//! memory, the gate and the write path, releases and promotion. Everything
//! here returns values (text and exit codes included); printing and
//! posting happen in `cli` and `serve`.

pub mod atomic_file;
pub mod catalog;
pub mod environments;
pub mod export;
pub mod init;
pub mod ledgers;
pub mod lint;
pub mod load;
pub mod memory;
pub mod observe;
pub mod release;
pub mod schema;

pub mod source;
pub mod world;
pub mod write;

/// How a result is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// What a command answers: text for people (or JSON), an exit code, and
/// any bundles it made but did not write to disk (the bot uploads them).
#[derive(Debug)]
pub struct Reply {
    pub text: String,
    pub code: i32,
    pub bundles: Vec<crate::core::bundle::Bundle>,
    /// Problems that did not stop the command, for the surface to show.
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn text(text: impl Into<String>, code: i32) -> Reply {
        Reply {
            text: text.into(),
            code,
            bundles: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The same reply, with these warnings too.
    pub fn warned(mut self, warnings: &[String]) -> Reply {
        self.warnings.extend_from_slice(warnings);
        self
    }
}

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

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::REFUSED,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::UNREACHABLE,
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
