//! `envgate init`: look at the repository, ask for (or take) the
//! environments, look at each database read-only, write a commented
//! envgate.toml and show the first matrix.

use super::{Failure, Format};
use crate::config;
use crate::core::layout::{self, InitEnv, InitPlan};
use crate::core::tools::Tool;
use crate::ops::init;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InitArgs {
    /// An environment, in promotion order: NAME=URL (repeatable). A
    /// password in the URL is kept out of the file: it is read from a
    /// variable named after the environment (${PROD_DB_PASSWORD}).
    #[arg(long = "env", value_name = "NAME=URL")]
    pub envs: Vec<String>,
    /// Ask nothing: take the detected layout and the --env flags (also
    /// when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Replace an existing envgate.toml
    #[arg(long)]
    pub force: bool,
}

/// One `--env NAME=URL`.
fn parse_env(arg: &str) -> Result<(String, String), Failure> {
    match arg.split_once('=') {
        Some((name, url)) if !name.trim().is_empty() && !url.trim().is_empty() => {
            Ok((name.trim().to_owned(), url.trim().to_owned()))
        }
        _ => Err(Failure::usage(format!(
            "--env {}: expected NAME=URL, e.g. --env dev=postgres://app@localhost/app",
            crate::core::redact::mask_url(arg)
        ))),
    }
}

/// The URL with its password replaced by `${VAR}`, and the variable's
/// name; unchanged when it holds none (or already a reference).
fn without_password(url: &str, env: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = rest[..at].split_once(':') else {
        return (url.to_owned(), None);
    };
    if password.is_empty() || password.starts_with("${") {
        return (url.to_owned(), None);
    }
    let var = layout::password_var(env);
    (
        format!("{scheme}://{user}:${{{var}}}{}", &rest[at..]),
        Some(var),
    )
}

fn ask(question: &str) -> Result<String, Failure> {
    crate::secrets::err(question);
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::internal(format!("reading the answer: {e}")))?;
    Ok(line.trim().to_owned())
}

pub async fn run(config_path: &Path, args: InitArgs) -> Result<i32, Failure> {
    let interactive = !args.yes && std::io::stdin().is_terminal();
    if config_path.exists() && !args.force {
        return Err(Failure::usage(format!(
            "{} exists; nothing written (--force replaces it)",
            config_path.display()
        )));
    }
    let root: PathBuf = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut envs = Vec::new();
    for arg in &args.envs {
        let (name, url) = parse_env(arg)?;
        crate::secrets::register_url(&url);
        if envs.iter().any(|(n, _)| n == &name) {
            return Err(Failure::usage(format!("--env {name}: given twice")));
        }
        envs.push((name, url));
    }

    let scan_root = root.clone();
    let (ranked, _markers) = tokio::task::spawn_blocking(move || init::detect(&scan_root))
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    let (mut format, mut migrations, mut why) = match ranked.first() {
        Some(best) => (
            best.fit.tool,
            best.fit.migrations.clone(),
            std::iter::once(format!(
                "{} migrations found in {}",
                best.fit.found, best.fit.migrations
            ))
            .chain(best.reasons.iter().cloned())
            .collect::<Vec<_>>(),
        ),
        None => (
            Tool::Envgate,
            Tool::Envgate.default_migrations().to_owned(),
            vec!["no migrations found yet: envgate's own layout, in migrations/".to_owned()],
        ),
    };
    let also: Vec<String> = ranked
        .iter()
        .skip(1)
        .filter(|r| r.fit.tool != format && !r.reasons.is_empty())
        .map(|r| format!("{} ({})", r.fit.tool, r.fit.migrations))
        .take(4)
        .collect();
    crate::errln!("layout: {format}, migrations in {migrations}");
    for w in &why[1..] {
        crate::errln!("  because {w}");
    }
    if !also.is_empty() {
        crate::errln!("  also fits, less well: {}", also.join(", "));
    }
    if interactive {
        let answer = ask(&format!(
            "Use format {format} with migrations in {migrations}? [Y/n or another format] "
        ))?;
        match answer.to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => {}
            other => {
                let tool = Tool::ALL
                    .into_iter()
                    .find(|t| t.as_str() == other)
                    .ok_or_else(|| Failure::usage(format!("unknown format: {other}")))?;
                format = tool;
                migrations = ranked
                    .iter()
                    .find(|r| r.fit.tool == tool)
                    .map_or(tool.default_migrations().to_owned(), |r| {
                        r.fit.migrations.clone()
                    });
                why = vec![format!("chosen when asked")];
            }
        }
        if envs.is_empty() {
            crate::errln!("Environments, in promotion order (dev first, prod last).");
            loop {
                let name = ask("  name (empty to finish): ")?;
                if name.is_empty() {
                    break;
                }
                let url = ask(&format!("  URL of {name}: "))?;
                crate::secrets::register_url(&url);
                envs.push((name, url));
            }
        }
    }

    // The file holds passwords as variables; the probe and the first
    // matrix read the URLs as given.
    let mut plan = InitPlan {
        format,
        migrations,
        why,
        also,
        envs: envs
            .iter()
            .map(|(name, url)| {
                let (shown, var) = without_password(url, name);
                InitEnv {
                    name: name.clone(),
                    url: shown,
                    password_var: var,
                    mode: crate::core::mode::Mode::ExportOnly,
                    mode_why: String::new(),
                    ledger: None,
                    probe: Vec::new(),
                }
            })
            .collect(),
    };

    if !plan.envs.is_empty() {
        probe_and_choose(config_path, &mut plan, &envs).await?;
    }
    let text = layout::render_config(&plan);
    // What is written must load (once it has an environment).
    let check = if plan.envs.is_empty() {
        format!("{text}[environments.check]\nurl = \"sqlite::memory:\"\n")
    } else {
        text.clone()
    };
    config::parse(config_path, &check).map_err(|e| {
        Failure::internal(format!("the generated configuration does not load: {e}"))
    })?;
    crate::ops::atomic_file::write(config_path, text.as_bytes())
        .map_err(|e| Failure::internal(format!("{}: {e}", config_path.display())))?;
    crate::errln!("wrote {}", config_path.display());
    let vars: Vec<&str> = plan
        .envs
        .iter()
        .filter_map(|e| e.password_var.as_deref())
        .collect();
    if !vars.is_empty() {
        crate::errln!(
            "passwords are read from {} (set them before running envgate)",
            vars.iter()
                .map(|v| format!("${v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if plan.envs.is_empty() {
        crate::errln!("no environments yet: add them to the file, then run `envgate status`");
        return Ok(super::exit::OK);
    }
    crate::errln!("");
    // The first matrix, read with the URLs as given.
    let cfg = config::parse(
        config_path,
        &layout::render_config(&with_urls(&plan, &envs)),
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    let color = crate::secrets::stdout_is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // The file is written: an environment that cannot be read yet (its
    // probe said why) does not make `init` fail.
    super::status::run(
        &cfg,
        super::status::StatusArgs {
            envs: Vec::new(),
            format: Format::Table,
            check: false,
            schema: false,
            verbose: false,
            color,
        },
    )
    .await?;
    Ok(super::exit::OK)
}

/// Reads each environment read-only (its ledger tables), then writes down
/// the mode envgate would choose for it.
async fn probe_and_choose(
    config_path: &Path,
    plan: &mut InitPlan,
    envs: &[(String, String)],
) -> Result<(), Failure> {
    let format = plan.format;
    // Probe each environment with the defaults envgate would use.
    let probe_cfg = parse_without_modes(config_path, &with_urls(plan, envs))?;
    let probes = futures::future::join_all(
        probe_cfg
            .environments
            .iter()
            .map(|env| init::probe(&probe_cfg, env)),
    )
    .await;
    for (i, probe) in probes.iter().enumerate() {
        let env = &mut plan.envs[i];
        let line = match &probe.error {
            Some(e) => {
                env.probe = vec![format!("read-only probe: could not read it: {e}")];
                crate::errln!("{}: could not read it: {e}", env.name);
                continue;
            }
            None => {
                let (ledger, notes) = layout::ledger_choice(format, &probe.tables);
                env.ledger = ledger;
                env.probe = notes
                    .iter()
                    .map(|n| format!("read-only probe: {n}"))
                    .collect();
                notes.join("; ")
            }
        };
        crate::errln!("{}: {line}", env.name);
    }
    // Each environment's mode: envgate's default for its name and ledger,
    // written out so that nobody has to guess.
    let defaults = parse_without_modes(config_path, &with_urls(plan, envs))?;
    for (env, cfg) in plan.envs.iter_mut().zip(&defaults.environments) {
        env.mode = cfg.mode;
        env.mode_why = match (cfg.mode, env.ledger.unwrap_or(format)) {
            (crate::core::mode::Mode::ReconcileOnly, _) => {
                "reconcile_only: envgate only reads this ledger; its tool applies the migrations"
                    .to_owned()
            }
            (crate::core::mode::Mode::Managed, _) => {
                "managed: envgate applies and records migrations here (the name does not look like staging or production)".to_owned()
            }
            (crate::core::mode::Mode::ExportOnly, _) => {
                "export_only: envgate writes SQL bundles and never writes here (the name looks like staging or production)".to_owned()
            }
        };
    }
    Ok(())
}

/// The plan with the URLs as given (passwords and all), to read with.
fn with_urls(plan: &InitPlan, envs: &[(String, String)]) -> InitPlan {
    let mut p = plan.clone();
    for (e, (_, url)) in p.envs.iter_mut().zip(envs) {
        e.url = url.clone();
    }
    p
}

/// The configuration with no `mode` keys: the modes envgate would choose.
fn parse_without_modes(path: &Path, plan: &InitPlan) -> Result<config::Config, Failure> {
    let text: String = layout::render_config(plan)
        .lines()
        .filter(|l| !l.starts_with("mode = "))
        .map(|l| format!("{l}\n"))
        .collect();
    config::parse(path, &text).map_err(|e| Failure::usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_become_variables() {
        assert_eq!(
            without_password(
                "postgres://app:s3cr@t@db:5432/app?sslmode=require",
                "prod-eu"
            ),
            (
                "postgres://app:${PROD_EU_DB_PASSWORD}@db:5432/app?sslmode=require".to_owned(),
                Some("PROD_EU_DB_PASSWORD".to_owned())
            )
        );
        assert_eq!(
            without_password("postgres://app@db/app", "dev").1,
            None,
            "no password, nothing to move"
        );
        assert_eq!(without_password("sqlite://dev.db", "dev").1, None);
        assert_eq!(
            without_password("postgres://app:${PW}@db/app", "dev").1,
            None,
            "already a reference"
        );
    }
}
