//! Which migration layout a repository holds, for `envgate init`: where
//! each tool keeps its migrations, what in a project says which tool it
//! uses, and how the layouts that fit are ranked. Pure: the caller lists
//! the project's files, reads the few it is asked about, and tries each
//! candidate with the real discovery.

use super::tools::Tool;

/// Folders (relative to the project) where a tool's migrations are
/// commonly kept, the tool's default first.
pub fn candidate_dirs(tool: Tool) -> Vec<&'static str> {
    let mut dirs = vec![tool.default_migrations()];
    let more: &[&'static str] = match tool {
        Tool::Envgate => &["db/migrations"],
        Tool::Flyway => &["src/main/resources/db/migration", "sql", "migrations"],
        Tool::Liquibase => &["db/changelog", "src/main/resources/db/changelog"],
        Tool::Alembic => &["migrations/versions", "alembic/versions"],
        Tool::Goose | Tool::GolangMigrate | Tool::Sqlx => &["db/migrations"],
        Tool::Dbmate => &["migrations"],
        Tool::Knex | Tool::NodePgMigrate => &["db/migrations"],
        _ => &[],
    };
    for d in more {
        if !dirs.contains(d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Root changelog names Liquibase projects commonly use, tried in a
/// changelog folder when `liquibase.properties` names none.
pub const LIQUIBASE_ROOTS: [&str; 8] = [
    "db.changelog-master.xml",
    "db.changelog-master.yaml",
    "db.changelog-master.yml",
    "db.changelog-master.json",
    "db.changelog-master.sql",
    "master.xml",
    "changelog.xml",
    "changelog.yaml",
];

/// Project files whose content says which tool a project uses; the caller
/// reads those that exist (their first few kilobytes) for [`markers`].
pub const MANIFESTS: [&str; 15] = [
    "Cargo.toml",
    "composer.json",
    "package.json",
    "go.mod",
    "Gemfile",
    "mix.exs",
    "pyproject.toml",
    "requirements.txt",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "liquibase.properties",
    "flyway.conf",
    "flyway.toml",
    "alembic.ini",
];

/// Files whose mere presence names a tool.
const PRESENCE: [(&str, Tool); 12] = [
    ("artisan", Tool::Laravel),
    ("yoyo.ini", Tool::Yoyo),
    ("flyway.conf", Tool::Flyway),
    ("flyway.toml", Tool::Flyway),
    ("liquibase.properties", Tool::Liquibase),
    ("manage.py", Tool::Django),
    ("diesel.toml", Tool::Diesel),
    ("alembic.ini", Tool::Alembic),
    ("knexfile.js", Tool::Knex),
    ("knexfile.ts", Tool::Knex),
    ("prisma/schema.prisma", Tool::Prisma),
    ("bin/rails", Tool::Rails),
];

/// Dependency names in a manifest that name a tool.
const DEPENDENCIES: [(&str, &str, Tool); 20] = [
    ("composer.json", "laravel/framework", Tool::Laravel),
    ("pyproject.toml", "yoyo-migrations", Tool::Yoyo),
    ("requirements.txt", "yoyo-migrations", Tool::Yoyo),
    ("Cargo.toml", "sqlx", Tool::Sqlx),
    ("Cargo.toml", "diesel", Tool::Diesel),
    ("Cargo.toml", "refinery", Tool::Refinery),
    ("package.json", "\"knex\"", Tool::Knex),
    ("package.json", "\"node-pg-migrate\"", Tool::NodePgMigrate),
    ("package.json", "\"prisma\"", Tool::Prisma),
    ("package.json", "\"@prisma/client\"", Tool::Prisma),
    ("go.mod", "golang-migrate/migrate", Tool::GolangMigrate),
    ("go.mod", "pressly/goose", Tool::Goose),
    ("Gemfile", "rails", Tool::Rails),
    ("mix.exs", ":ecto_sql", Tool::Ecto),
    ("pyproject.toml", "alembic", Tool::Alembic),
    ("requirements.txt", "alembic", Tool::Alembic),
    ("pom.xml", "flyway", Tool::Flyway),
    ("pom.xml", "liquibase", Tool::Liquibase),
    ("build.gradle", "flyway", Tool::Flyway),
    ("build.gradle", "liquibase", Tool::Liquibase),
];

/// What in the project points at a tool, for the notes `init` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub tool: Tool,
    pub what: String,
}

/// The markers of a project: `exists(path)` says whether a file exists,
/// `manifest(path)` gives a manifest's text when it exists.
pub fn markers(
    exists: &dyn Fn(&str) -> bool,
    manifest: &dyn Fn(&str) -> Option<String>,
) -> Vec<Marker> {
    let mut out = Vec::new();
    for (path, tool) in PRESENCE {
        if exists(path) {
            out.push(Marker {
                tool,
                what: format!("{path} exists"),
            });
        }
    }
    for (file, needle, tool) in DEPENDENCIES {
        if manifest(file).is_some_and(|text| text.contains(needle)) {
            out.push(Marker {
                tool,
                what: format!("{file} mentions {}", needle.trim_matches('"')),
            });
        }
    }
    out
}

/// What only one tool writes into its migration files (a line) or their
/// names, as shown in `init`'s reasons.
pub fn file_marker(tool: Tool) -> Option<&'static str> {
    match tool {
        Tool::Goose => Some("-- +goose Up"),
        Tool::Dbmate => Some("-- migrate:up"),
        Tool::NodePgMigrate => Some("-- Up Migration"),
        Tool::GolangMigrate => Some(".up.sql"),
        _ => None,
    }
}

/// Whether a migration file (its name and first kilobytes) carries the
/// tool's marker.
pub fn marks(tool: Tool, name: &str, head: &str) -> bool {
    match (tool, file_marker(tool)) {
        (Tool::GolangMigrate, Some(suffix)) => name.ends_with(suffix),
        (_, Some(line)) => head.lines().any(|l| l.trim_end() == line),
        (_, None) => false,
    }
}

/// A layout that reads the project without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    pub tool: Tool,
    /// The `migrations` value: a folder, or Liquibase's root changelog.
    pub migrations: String,
    /// How many migrations the tool's discovery found there.
    pub found: usize,
    /// Files in that folder the layout does not take.
    pub ignored: usize,
    /// Migration files carrying the tool's own marker line.
    pub marked_files: usize,
}

/// A fit with its score and the reasons for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    pub fit: Fit,
    pub score: u32,
    pub reasons: Vec<String>,
}

/// Folders several tools share: a fit there says little by itself.
fn generic(dir: &str) -> bool {
    matches!(dir, "migrations" | "db/migrations" | "sql" | ".")
}

/// Ranks the fits, best first: evidence in the project (a manifest, a
/// configuration file, the tool's marker lines in the migrations) outweighs
/// a tool-specific folder, which outweighs how much of the folder the
/// layout explains. envgate's own layout wins ties among the rest.
pub fn rank(fits: Vec<Fit>, markers: &[Marker]) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = fits
        .into_iter()
        .filter(|f| f.found > 0)
        .map(|fit| {
            let mut score = 0u32;
            let mut reasons = Vec::new();
            for m in markers.iter().filter(|m| m.tool == fit.tool) {
                score += 100;
                reasons.push(m.what.clone());
            }
            if fit.marked_files > 0 {
                score += if fit.marked_files == fit.found {
                    100
                } else {
                    50
                };
                reasons.push(format!(
                    "{} of {} migrations carry `{}`",
                    fit.marked_files,
                    fit.found,
                    file_marker(fit.tool).unwrap_or_default()
                ));
            }
            if !generic(&fit.migrations) {
                score += 20;
                reasons.push(format!("migrations in {}", fit.migrations));
            }
            // How much of the folder the layout explains, 0..=10.
            let total = fit.found + fit.ignored;
            score += (10 * fit.found / total.max(1)) as u32;
            if fit.tool == Tool::Envgate {
                score += 1;
            }
            Ranked {
                fit,
                score,
                reasons,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score.cmp(&a.score).then_with(|| {
            let pos = |t: Tool| Tool::ALL.iter().position(|x| *x == t);
            pos(a.fit.tool).cmp(&pos(b.fit.tool))
        })
    });
    ranked
}

/// The tools whose ledger table has this name (several share
/// `schema_migrations`).
pub fn tools_of_table(table: &str) -> Vec<Tool> {
    Tool::ALL
        .into_iter()
        .filter(|t| t.default_table().eq_ignore_ascii_case(table))
        .collect()
}

/// Which ledger an environment should read, given the project's format
/// and the ledger tables its database holds, with what to say about it.
pub fn ledger_choice(format: Tool, tables: &[String]) -> (Option<Tool>, Vec<String>) {
    let has = |t: Tool| {
        tables
            .iter()
            .any(|x| x.eq_ignore_ascii_case(t.default_table()))
    };
    let mut notes = Vec::new();
    let others: Vec<String> = tables
        .iter()
        .filter(|t| !t.eq_ignore_ascii_case(format.default_table()))
        .map(|t| {
            let tools: Vec<&str> = tools_of_table(t).iter().map(|x| x.as_str()).collect();
            format!("{t} ({})", tools.join(" or "))
        })
        .collect();
    let ledger = if has(format) {
        notes.push(format!(
            "found {}: {format}'s ledger, which matches the layout",
            format.default_table()
        ));
        None
    } else if format != Tool::Envgate && has(Tool::Envgate) {
        notes.push(format!(
            "found {}: envgate's own ledger, so this environment reads it",
            Tool::Envgate.default_table()
        ));
        Some(Tool::Envgate)
    } else {
        notes.push(format!(
            "no {} table yet: nothing recorded (or the ledger lives in another schema: set `schema`)",
            format.default_table()
        ));
        None
    };
    if !others.is_empty() && ledger.is_none() {
        notes.push(format!(
            "also found {}: if that tool applies these migrations, set `format` (or `ledger`) to it",
            others.join(", ")
        ));
    }
    (ledger, notes)
}

/// An environment for the file `init` writes.
#[derive(Clone, Debug)]
pub struct InitEnv {
    pub name: String,
    /// The URL as written to the file (its password replaced by a variable).
    pub url: String,
    /// The variable that must hold the password, when one was taken out.
    pub password_var: Option<String>,
    pub mode: super::mode::Mode,
    /// Why this mode (a comment).
    pub mode_why: String,
    /// `ledger = "…"` when it differs from the project's format.
    pub ledger: Option<Tool>,
    /// What the read-only probe saw, as comment lines.
    pub probe: Vec<String>,
}

/// What `init` writes.
#[derive(Clone, Debug)]
pub struct InitPlan {
    pub format: Tool,
    pub migrations: String,
    pub why: Vec<String>,
    pub also: Vec<String>,
    pub envs: Vec<InitEnv>,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The name of the variable `init` suggests for an environment's password.
pub fn password_var(env: &str) -> String {
    let mut v: String = env
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    v.push_str("_DB_PASSWORD");
    v
}

/// The commented envgate.toml.
pub fn render_config(plan: &InitPlan) -> String {
    let mut out = String::new();
    out.push_str("# envgate.toml, written by `envgate init`. Every key is described in\n");
    out.push_str("# docs/configuration.md; `envgate status` shows the matrix.\n\n");
    out.push_str(&format!(
        "# The source layout: {}.\n",
        if plan.format == Tool::Envgate {
            "envgate's own (<version>_<name>.sql, with optional .down.sql)".to_owned()
        } else {
            format!(
                "{}'s, whose ledger the environments read (reconcile_only)",
                plan.format
            )
        }
    ));
    for why in &plan.why {
        out.push_str(&format!("#   - {why}\n"));
    }
    if !plan.also.is_empty() {
        out.push_str(&format!(
            "# Also fits, less well: {}.\n",
            plan.also.join(", ")
        ));
    }
    out.push_str(&format!("format = {}\n", toml_str(plan.format.as_str())));
    out.push_str(&format!("migrations = {}\n", toml_str(&plan.migrations)));
    out.push_str(
        "\n# Releases are the git tags matching this glob, ordered as semantic versions.\n\
         release_tags = \"v*\"\n",
    );
    out.push_str("\n# Environments, in promotion order.\n");
    if plan.envs.is_empty() {
        out.push_str(
            "# None given: add one per database, for example\n\
             # [environments.dev]\n\
             # url = \"postgres://app:${DEV_DB_PASSWORD}@localhost:5432/app\"\n",
        );
    }
    for env in &plan.envs {
        out.push_str(&format!("\n[environments.{}]\n", toml_key(&env.name)));
        if let Some(var) = &env.password_var {
            out.push_str(&format!(
                "# The password comes from ${{{var}}} (never written here).\n"
            ));
        }
        out.push_str(&format!("url = {}\n", toml_str(&env.url)));
        out.push_str(&format!("# {}\n", env.mode_why));
        out.push_str(&format!("mode = {}\n", toml_str(env.mode.as_str())));
        if let Some(ledger) = env.ledger {
            out.push_str(&format!("ledger = {}\n", toml_str(ledger.as_str())));
        }
        for line in &env.probe {
            out.push_str(&format!("# {line}\n"));
        }
    }
    out
}

fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        toml_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(tool: Tool, dir: &str, found: usize, ignored: usize) -> Fit {
        Fit {
            tool,
            migrations: dir.to_owned(),
            found,
            ignored,
            marked_files: 0,
        }
    }

    #[test]
    fn evidence_outweighs_a_shared_folder() {
        // Plain timestamped SQL files fit envgate and sqlx alike: the
        // manifest decides, and without one envgate's own layout wins.
        let fits = vec![
            fit(Tool::Envgate, "migrations", 5, 0),
            fit(Tool::Sqlx, "migrations", 5, 0),
        ];
        assert_eq!(rank(fits.clone(), &[])[0].fit.tool, Tool::Envgate);
        let m = [Marker {
            tool: Tool::Sqlx,
            what: "Cargo.toml mentions sqlx".into(),
        }];
        let r = rank(fits, &m);
        assert_eq!(r[0].fit.tool, Tool::Sqlx);
        assert_eq!(r[0].reasons, ["Cargo.toml mentions sqlx"]);
    }

    #[test]
    fn marker_lines_and_own_folders_count() {
        let mut goose = fit(Tool::Goose, "migrations", 4, 0);
        goose.marked_files = 4;
        let r = rank(
            vec![
                fit(Tool::Envgate, "migrations", 4, 0),
                goose,
                fit(Tool::Rails, "db/migrate", 0, 3),
            ],
            &[],
        );
        assert_eq!(r[0].fit.tool, Tool::Goose);
        assert_eq!(r.len(), 2, "a layout that found nothing is no fit");
    }

    #[test]
    fn the_ledger_found_decides_what_an_environment_reads() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (l, notes) = ledger_choice(Tool::Flyway, &t(&["flyway_schema_history"]));
        assert_eq!(l, None);
        assert!(notes[0].contains("matches the layout"), "{notes:?}");
        let (l, _) = ledger_choice(Tool::Flyway, &t(&["envgate_migrations"]));
        assert_eq!(l, Some(Tool::Envgate));
        let (l, notes) = ledger_choice(Tool::Envgate, &t(&["schema_migrations"]));
        assert_eq!(l, None);
        assert!(
            notes[1].contains("schema_migrations (rails or ecto or golang-migrate or dbmate)"),
            "{notes:?}"
        );
    }

    #[test]
    fn the_file_keeps_passwords_out_and_quotes_names() {
        let text = render_config(&InitPlan {
            format: Tool::Envgate,
            migrations: "migrations".into(),
            why: vec!["12 migrations in migrations".into()],
            also: vec![],
            envs: vec![InitEnv {
                name: "prod eu".into(),
                url: "postgres://app:${PROD_EU_DB_PASSWORD}@db/app".into(),
                password_var: Some("PROD_EU_DB_PASSWORD".into()),
                mode: crate::core::mode::Mode::ExportOnly,
                mode_why: "export_only: the name looks like production".into(),
                ledger: None,
                probe: vec!["read-only probe: no ledger table yet".into()],
            }],
        });
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["environments"]["prod eu"]["url"].as_str(),
            Some("postgres://app:${PROD_EU_DB_PASSWORD}@db/app")
        );
        assert_eq!(password_var("prod-eu"), "PROD_EU_DB_PASSWORD");
    }
}
