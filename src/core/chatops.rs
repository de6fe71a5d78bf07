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

/// The commands by name: the parser accepts only these, and the help lists
/// exactly these, so the two cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Promote,
    Rollback,
    Status,
    Help,
}

impl Name {
    pub const ALL: [Name; 4] = [Name::Promote, Name::Rollback, Name::Status, Name::Help];

    /// The word after `/`.
    pub fn word(self) -> &'static str {
        match self {
            Name::Promote => "promote",
            Name::Rollback => "rollback",
            Name::Status => "status",
            Name::Help => "help",
        }
    }

    /// How it is written, and what it does.
    fn usage(self) -> (&'static str, &'static str) {
        match self {
            Name::Promote => (
                "/promote <env> [<release>] [--dry-run]",
                "promote a release (default: the newest) to an environment",
            ),
            Name::Rollback => (
                "/rollback <env> <release> [--dry-run]",
                "revert a release in an environment",
            ),
            Name::Status => ("/status", "the migration matrix"),
            Name::Help => ("/help", "this text"),
        }
    }

    fn from_word(word: &str) -> Option<Name> {
        Name::ALL
            .into_iter()
            .find(|n| n.word().eq_ignore_ascii_case(word))
    }
}

/// The help text, in Markdown: one line per [`Name`].
pub fn help() -> String {
    let mut out = "envgate commands:\n".to_owned();
    for n in Name::ALL {
        let (usage, what) = n.usage();
        out.push_str(&format!("\n- `{usage}`: {what}"));
    }
    out
}

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
    let Some(known) = Name::from_word(&name) else {
        return invalid(format!("unknown command `/{name}`"));
    };
    let command = match (known, positional.as_slice()) {
        (Name::Promote, [env]) => Command::Promote {
            env: env.clone(),
            release: None,
            dry_run,
        },
        (Name::Promote, [env, release]) => Command::Promote {
            env: env.clone(),
            release: Some(release.clone()),
            dry_run,
        },
        (Name::Promote, []) => return invalid("`/promote` needs an environment".into()),
        (Name::Promote, _) => {
            return invalid("`/promote` takes an environment and at most one release".into());
        }
        (Name::Rollback, [env, release]) => Command::Rollback {
            env: env.clone(),
            release: release.clone(),
            dry_run,
        },
        (Name::Rollback, _) => {
            return invalid("`/rollback` needs an environment and a release".into());
        }
        (Name::Status, []) if !dry_run => Command::Status,
        (Name::Help, []) if !dry_run => Command::Help,
        (Name::Status | Name::Help, _) => {
            return invalid(format!("`/{}` takes no arguments", known.word()));
        }
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
    /// Its name.
    pub fn name(&self) -> Name {
        match self {
            Command::Promote { .. } => Name::Promote,
            Command::Rollback { .. } => Name::Rollback,
            Command::Status => Name::Status,
            Command::Help => Name::Help,
        }
    }

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

    /// What a comment says to the bot, as a table: the comment, then the
    /// command it gives (as `describe` writes it), `-` for none, or `!` and
    /// the reason it is refused.
    #[test]
    fn comments_and_what_they_say() {
        let table: &[(&str, &str)] = &[
            // Plain commands.
            ("/promote staging", "/promote staging"),
            ("/promote prod v2.4.0", "/promote prod v2.4.0"),
            (
                "/promote prod v2.4.0 --dry-run",
                "/promote prod v2.4.0 --dry-run",
            ),
            (
                "/promote prod --dry-run v2.4.0",
                "/promote prod v2.4.0 --dry-run",
            ),
            ("/promote prod --dryrun", "/promote prod --dry-run"),
            ("/rollback dev v1.0.0", "/rollback dev v1.0.0"),
            (
                "/rollback dev v1.0.0 --dry-run",
                "/rollback dev v1.0.0 --dry-run",
            ),
            ("/status", "/status"),
            ("/help", "/help"),
            // Mixed case, spacing, line endings.
            ("/PROMOTE staging", "/promote staging"),
            ("/Status", "/status"),
            ("   /status   ", "/status"),
            ("/promote\tstaging\tv1", "/promote staging v1"),
            ("/status\r\n", "/status"),
            // The /envgate prefix.
            ("/envgate", "/help"),
            ("/envgate status", "/status"),
            ("/ENVGATE promote staging v1", "/promote staging v1"),
            // Text around it: the first command line counts.
            ("LGTM!\n\n/promote staging", "/promote staging"),
            ("/status\n/promote prod", "/status"),
            ("Thanks.\n/rollback dev v1\nmore words", "/rollback dev v1"),
            // Quoted, in code, indented: not a command.
            ("> /promote prod", "-"),
            ("> /promote prod\n\nwhy did this run?", "-"),
            ("```\n/promote prod\n```", "-"),
            ("```sh\n/promote prod\n```\n/status", "/status"),
            ("~~~\n/promote prod\n~~~", "-"),
            ("    /promote prod", "-"),
            ("\t/promote prod", "-"),
            // Prose and paths.
            ("", "-"),
            ("no commands here", "-"),
            ("see /usr/bin/env", "-"),
            ("/tmp/x is missing", "-"),
            ("// a comment", "-"),
            ("/ promote prod", "-"),
            ("/2fa is on", "-"),
            ("please run /promote staging", "-"),
            // Mistakes, refused with the reason.
            ("/promote", "!`/promote` needs an environment"),
            (
                "/promote a b c",
                "!`/promote` takes an environment and at most one release",
            ),
            (
                "/rollback dev",
                "!`/rollback` needs an environment and a release",
            ),
            (
                "/rollback",
                "!`/rollback` needs an environment and a release",
            ),
            (
                "/rollback dev v1 v2",
                "!`/rollback` needs an environment and a release",
            ),
            ("/promote staging --force", "!unknown option `--force`"),
            ("/status prod", "!`/status` takes no arguments"),
            ("/status --dry-run", "!`/status` takes no arguments"),
            ("/help me", "!`/help` takes no arguments"),
            ("/deploy prod", "!unknown command `/deploy`"),
            ("/promot staging", "!unknown command `/promot`"),
            ("/envgate deploy", "!unknown command `/deploy`"),
        ];
        assert!(table.len() >= 40);
        for (comment, want) in table {
            let got = match parse(comment) {
                Parsed::Nothing => "-".to_owned(),
                Parsed::Command(c) => c.describe(),
                Parsed::Invalid { problem, .. } => format!("!{problem}"),
            };
            assert_eq!(&got, want, "{comment:?}");
        }
    }

    /// The help lists every command the parser knows, as it is written.
    #[test]
    fn help_is_the_parsers_own() {
        insta::assert_snapshot!(help(), @r"
        envgate commands:

        - `/promote <env> [<release>] [--dry-run]`: promote a release (default: the newest) to an environment
        - `/rollback <env> <release> [--dry-run]`: revert a release in an environment
        - `/status`: the migration matrix
        - `/help`: this text
        ");
        for name in Name::ALL {
            let usage = name.usage().0;
            assert!(help().contains(usage));
            // Every usage line parses to its own command, once its
            // placeholders are filled in.
            let filled = usage
                .replace("<env>", "dev")
                .replace("<release>", "v1")
                .replace(['[', ']'], "");
            match parse(&filled) {
                Parsed::Command(c) => assert_eq!(c.name(), name, "{filled}"),
                other => panic!("{filled}: {other:?}"),
            }
        }
    }
}
