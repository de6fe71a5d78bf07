//! Chat-ops: the commands a pull-request or issue comment can give the bot.
//!
//! ```text
//! /promote <env> [<release>] [--dry-run]
//! /rollback <env> <release> [--dry-run]
//! /status
//! /help
//! ```
//!
//! A command is the first line of the comment that starts with `/`, outside
//! code blocks and quotes (so quoting the bot's own reply does not run it
//! again). `/envgate promote …` works too. Anything else that looks like a
//! command gets a short help reply rather than silence.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Promote {
        env: String,
        /// None: the newest release.
        release: Option<String>,
        dry_run: bool,
    },
    Rollback {
        env: String,
        release: String,
        dry_run: bool,
    },
    Status,
    Help,
}

/// What a comment says to the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No command: the comment is for people.
    Nothing,
    Command(Command),
    /// A command the bot cannot run as written; the reply says why and
    /// shows the help.
    Invalid {
        line: String,
        problem: String,
    },
}

/// The help text, in Markdown.
pub const HELP: &str = "\
envgate commands:

- `/promote <env> [<release>] [--dry-run]`: promote a release (default: the newest) to an environment
- `/rollback <env> <release> [--dry-run]`: revert a release in an environment
- `/status`: the migration matrix
- `/help`: this text";

/// Finds and parses the command in a comment body.
pub fn parse(body: &str) -> Parsed {
    let Some(line) = command_line(body) else {
        return Parsed::Nothing;
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    // `/envgate promote …` is `/promote …`.
    let (name, args) = match words.as_slice() {
        [first, rest @ ..] if first.eq_ignore_ascii_case("/envgate") => match rest {
            [] => return Parsed::Command(Command::Help),
            [name, args @ ..] => (name.to_ascii_lowercase(), args),
        },
        [first, args @ ..] => (first[1..].to_ascii_lowercase(), args),
        [] => return Parsed::Nothing,
    };
    let invalid = |problem: String| Parsed::Invalid {
        line: line.to_owned(),
        problem,
    };
    let mut dry_run = false;
    let mut positional = Vec::new();
    for a in args {
        match *a {
            "--dry-run" | "--dryrun" => dry_run = true,
            flag if flag.starts_with("--") => {
                return invalid(format!("unknown option `{flag}`"));
            }
            word => positional.push(word.to_owned()),
        }
    }
    let command = match (name.as_str(), positional.as_slice()) {
        ("promote", [env]) => Command::Promote {
            env: env.clone(),
            release: None,
            dry_run,
        },
        ("promote", [env, release]) => Command::Promote {
            env: env.clone(),
            release: Some(release.clone()),
            dry_run,
        },
        ("promote", []) => return invalid("`/promote` needs an environment".into()),
        ("promote", _) => {
            return invalid("`/promote` takes an environment and at most one release".into());
        }
        ("rollback", [env, release]) => Command::Rollback {
            env: env.clone(),
            release: release.clone(),
            dry_run,
        },
        ("rollback", _) => {
            return invalid("`/rollback` needs an environment and a release".into());
        }
        ("status", []) if !dry_run => Command::Status,
        ("help", []) if !dry_run => Command::Help,
        ("status" | "help", _) => return invalid(format!("`/{name}` takes no arguments")),
        (other, _) => return invalid(format!("unknown command `/{other}`")),
    };
    Parsed::Command(command)
}

/// The first line starting with `/`, outside fenced code blocks and quotes.
fn command_line(body: &str) -> Option<&str> {
    let mut fence: Option<&str> = None;
    for raw in body.lines() {
        let line = raw.trim();
        if let Some(open) = fence {
            if line.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if line.starts_with("```") {
            fence = Some("```");
            continue;
        }
        if line.starts_with("~~~") {
            fence = Some("~~~");
            continue;
        }
        if line.starts_with('>') || raw.starts_with("    ") || raw.starts_with('\t') {
            continue;
        }
        // A command word: letters and dashes, then a space or the end.
        // `/tmp/x is missing` or `/usr/bin` is prose, not a command.
        let word = line[1.min(line.len())..]
            .split(char::is_whitespace)
            .next()
            .unwrap_or("");
        let is_word = word.starts_with(|c: char| c.is_ascii_alphabetic())
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if line.starts_with('/') && is_word {
            return Some(line);
        }
    }
    None
}

impl Command {
    /// The command as typed, for replies and the audit trail.
    pub fn describe(&self) -> String {
        let dry = |d: bool| if d { " --dry-run" } else { "" };
        match self {
            Command::Promote {
                env,
                release,
                dry_run,
            } => format!(
                "/promote {env}{}{}",
                release
                    .as_deref()
                    .map_or(String::new(), |r| format!(" {r}")),
                dry(*dry_run)
            ),
            Command::Rollback {
                env,
                release,
                dry_run,
            } => format!("/rollback {env} {release}{}", dry(*dry_run)),
            Command::Status => "/status".into(),
            Command::Help => "/help".into(),
        }
    }

    /// Whether the command may change an environment (and so needs write
    /// permission on the repository and the environment's lists).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Command::Promote { dry_run: false, .. } | Command::Rollback { dry_run: false, .. }
        )
    }

    /// The environment it acts on.
    pub fn environment(&self) -> Option<&str> {
        match self {
            Command::Promote { env, .. } | Command::Rollback { env, .. } => Some(env),
            Command::Status | Command::Help => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_prose_not_commands() {
        assert_eq!(parse("/tmp/x is missing"), Parsed::Nothing);
        assert_eq!(parse("see /usr/bin/env"), Parsed::Nothing);
        assert!(matches!(parse("/promot staging"), Parsed::Invalid { .. }));
    }

    fn cmd(body: &str) -> Command {
        match parse(body) {
            Parsed::Command(c) => c,
            other => panic!("{body:?}: {other:?}"),
        }
    }

    fn problem(body: &str) -> String {
        match parse(body) {
            Parsed::Invalid { problem, .. } => problem,
            other => panic!("{body:?}: {other:?}"),
        }
    }

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(
            cmd("/promote staging"),
            Command::Promote {
                env: "staging".into(),
                release: None,
                dry_run: false
            }
        );
        assert_eq!(
            cmd("  /promote prod v2.4.0 --dry-run\r\n"),
            Command::Promote {
                env: "prod".into(),
                release: Some("v2.4.0".into()),
                dry_run: true
            }
        );
        assert_eq!(
            cmd("/rollback dev v2.4.0"),
            Command::Rollback {
                env: "dev".into(),
                release: "v2.4.0".into(),
                dry_run: false
            }
        );
        assert_eq!(cmd("/STATUS"), Command::Status);
        assert_eq!(cmd("/help"), Command::Help);
        assert_eq!(cmd("/envgate"), Command::Help);
        assert_eq!(
            cmd("/envgate promote staging"),
            Command::Promote {
                env: "staging".into(),
                release: None,
                dry_run: false
            }
        );
    }

    #[test]
    fn the_first_command_line_outside_code_and_quotes() {
        assert_eq!(
            cmd("Looks good to me.\n\n/promote staging\n/rollback dev v1"),
            Command::Promote {
                env: "staging".into(),
                release: None,
                dry_run: false
            }
        );
        assert_eq!(
            parse("> /promote prod\n\nwhy did this run?"),
            Parsed::Nothing
        );
        assert_eq!(parse("```\n/promote prod\n```\n"), Parsed::Nothing);
        assert_eq!(
            parse("~~~sh\n/promote prod\n~~~\n/status"),
            Parsed::Command(Command::Status)
        );
        assert_eq!(parse("    /promote prod"), Parsed::Nothing);
        assert_eq!(parse("see src/promote.rs or /tmp"), Parsed::Nothing);
        assert_eq!(parse("// not a command\n/ nor this"), Parsed::Nothing);
        assert_eq!(parse(""), Parsed::Nothing);
    }

    #[test]
    fn mistakes_get_a_reason() {
        assert_eq!(problem("/promote"), "`/promote` needs an environment");
        assert_eq!(
            problem("/promote a b c"),
            "`/promote` takes an environment and at most one release"
        );
        assert_eq!(
            problem("/rollback dev"),
            "`/rollback` needs an environment and a release"
        );
        assert_eq!(
            problem("/promote staging --force"),
            "unknown option `--force`"
        );
        assert_eq!(problem("/status prod"), "`/status` takes no arguments");
        assert_eq!(problem("/deploy prod"), "unknown command `/deploy`");
    }

    #[test]
    fn descriptions_round_trip() {
        for line in [
            "/promote staging",
            "/promote prod v2.4.0 --dry-run",
            "/rollback dev v2.4.0",
            "/status",
            "/help",
        ] {
            assert_eq!(cmd(line).describe(), line);
        }
        assert!(cmd("/promote prod").writes());
        assert!(!cmd("/promote prod --dry-run").writes());
        assert!(!cmd("/status").writes());
    }
}
