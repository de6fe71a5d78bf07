//! SQL bundles for `export_only` environments: one file that brings an
//! environment's ledger from the state it was built for to a target, for the
//! team's own pipeline to apply (`psql -X -v ON_ERROR_STOP=1 -f …`, the
//! `sqlite3 -bail` shell, or any client that stops at the first error).
//!
//! The bundle first checks, inside the database, that the ledger holds
//! exactly the migrations that were applied when it was built, and stops
//! before changing anything otherwise. Each migration then runs with its
//! ledger row (same table and columns as `envgate apply`, `applied_via =
//! bundle:<id>`), in its own transaction where it can; every transaction
//! re-checks that the ledger is where the previous one left it, so a bundle
//! cannot be applied twice or out of order.
//!
//! Bundles are reproducible: the same state and migrations give the same
//! bytes (the time of generation is only in the manifest).

use super::client::{self, Placement};
use super::ledger_table::{self, Elapsed, NewRow, lock_key, qualified};
use super::migration::Script;
use super::mode::Mode;
use super::plan::{Direction, Plan, Step};
use super::sql::{Dialect, line_col, quote_ident, quote_literal, split};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a bundle is built from, besides the plan.
pub struct BundleInput<'a> {
    pub plan: &'a Plan<'a>,
    /// Up: apply the plan's steps. Down: revert them (a rollback plan,
    /// newest first) with their down scripts, removing their rows.
    pub direction: Direction,
    pub dialect: Dialect,
    pub schema: Option<&'a str>,
    pub envgate_version: &'a str,
    /// RFC 3339; goes to the manifest only.
    pub generated_at: &'a str,
    pub generated_by: &'a str,
    pub release: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    /// `<env>-<from>-<to>`: the file names without extension.
    pub stem: String,
    pub sql: String,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub bundle_id: String,
    pub environment: String,
    pub mode: Mode,
    pub dialect: Dialect,
    pub schema: Option<String>,
    /// The newest version applied when the bundle was built (null: none).
    pub from: Option<String>,
    /// The newest version applied once the bundle ran: the last it applies
    /// (up), or the newest it leaves applied (down; `empty` for none).
    pub to: String,
    pub direction: Direction,
    /// How many migrations the ledger must hold, and the SHA-256 of their
    /// versions joined by newlines.
    pub expects_applied: ExpectedState,
    pub migrations: Vec<ManifestEntry>,
    /// SHA-256 of the bundle file.
    pub bundle_sha256: String,
    pub file: String,
    pub release: Option<String>,
    pub envgate_version: String,
    pub generated_at: String,
    pub generated_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedState {
    pub count: usize,
    pub versions_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    pub version: String,
    pub name: String,
    /// The migration's (up) file and its SHA-256, as the ledger knows it.
    pub file: String,
    pub sha256: String,
    /// A rollback bundle: the down script it runs, and its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_sha256: Option<String>,
    pub transaction: bool,
}

/// The down script a rollback bundle runs for a step.
fn down_script<'a>(direction: Direction, step: &Step<'a>) -> Option<&'a Script> {
    match direction {
        Direction::Down => step.migration.down.as_ref(),
        Direction::Up => None,
    }
}

/// MySQL and MariaDB bundles are written by [`super::bundle_mysql`].
const NO_MYSQL: &str = "MySQL bundles are written by core::bundle_mysql";

/// Builds the bundle for a plan with at least one step.
pub fn build(input: &BundleInput<'_>) -> Bundle {
    let plan = input.plan;
    assert!(
        !plan.steps.is_empty(),
        "a bundle needs at least one migration"
    );
    let expected_versions = plan.applied.join("\n");
    let expected_sha = hex::encode(Sha256::digest(expected_versions.as_bytes()));
    let to = match input.direction {
        Direction::Up => plan.steps.last().expect("non-empty").migration.id(),
        // Where the ledger ends up: the newest migration left applied.
        Direction::Down => plan
            .applied
            .iter()
            .rev()
            .find(|v| !plan.steps.iter().any(|s| s.migration.id() == **v))
            .copied()
            .unwrap_or("empty"),
    };
    let id = {
        let mut h = Sha256::new();
        let direction = match input.direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        for part in [
            plan.env,
            input.dialect.as_str(),
            input.schema.unwrap_or(""),
            &expected_sha,
            direction,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for s in &plan.steps {
            h.update(s.migration.id().as_bytes());
            h.update(s.migration.up.hash.tagged().as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    };
    // A tag may hold characters a file name should not (`release/2.4`).
    let file_safe = |t: &str| -> String {
        t.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let stem = match (input.direction, input.release) {
        (Direction::Up, Some(release)) => format!("{}-{}", plan.env, file_safe(release)),
        (Direction::Up, None) => format!("{}-{}-{to}", plan.env, plan.from.unwrap_or("empty")),
        (Direction::Down, Some(release)) => {
            format!("{}-rollback-{}", plan.env, file_safe(release))
        }
        (Direction::Down, None) => format!(
            "{}-{}-rollback-{to}",
            plan.env,
            plan.from.unwrap_or("empty")
        ),
    };
    debug_assert!(
        plan.blockers
            .iter()
            .all(|b| !matches!(b, super::plan::Blocker::Refused { .. })),
        "refused steps never reach a bundle"
    );
    let mut w = Writer {
        out: String::new(),
        input,
        id: &id,
        table: qualified(input.dialect, input.schema),
    };
    w.header(&stem, to);
    let total = plan.steps.len();
    if input.dialect == Dialect::Mysql {
        let stuck = w.stuck_check();
        let body =
            super::bundle_mysql::body(plan, input.direction, input.schema, &id, stuck.as_deref());
        w.out.push_str(&body);
    } else {
        w.full_guard();
        for (k, step) in plan.steps.iter().enumerate() {
            w.step(k, total, step);
        }
    }
    w.line(&format!(
        "-- envgate bundle {id}: all {total} migrations applied."
    ));
    let sql = w.out;
    let bundle_sha256 = hex::encode(Sha256::digest(sql.as_bytes()));
    let manifest = Manifest {
        schema_version: 1,
        bundle_id: id,
        environment: plan.env.to_owned(),
        mode: plan.mode,
        dialect: input.dialect,
        schema: input.schema.map(str::to_owned),
        from: plan.from.map(str::to_owned),
        to: to.to_owned(),
        direction: input.direction,
        expects_applied: ExpectedState {
            count: plan.applied.len(),
            versions_sha256: expected_sha,
        },
        migrations: plan
            .steps
            .iter()
            .map(|s| ManifestEntry {
                version: s.migration.id().to_owned(),
                name: s.migration.name.clone(),
                file: s.migration.up.path.clone(),
                sha256: s.migration.up.hash.hex(),
                down_file: down_script(input.direction, s).map(|d| d.path.clone()),
                down_sha256: down_script(input.direction, s).map(|d| d.hash.hex()),
                transaction: s.no_transaction.is_none(),
            })
            .collect(),
        bundle_sha256,
        file: format!("{stem}.sql"),
        release: input.release.map(str::to_owned),
        envgate_version: input.envgate_version.to_owned(),
        generated_at: input.generated_at.to_owned(),
        generated_by: input.generated_by.to_owned(),
    };
    Bundle {
        stem,
        sql,
        manifest,
    }
}

struct Writer<'a> {
    out: String,
    input: &'a BundleInput<'a>,
    id: &'a str,
    table: String,
}

/// Text for a `--` comment: control characters escaped, so a name can never
/// end the comment's line.
fn comment(text: &str) -> std::borrow::Cow<'_, str> {
    super::text::visible(text)
}

impl Writer<'_> {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// `DO $tag$<body>$tag$;`, the tag chosen so that it occurs nowhere in
    /// the body: names and versions inside it cannot end it early.
    fn do_block(&mut self, label: &str, body: &str) {
        let tag = client::tag(label, body);
        self.line(&format!("DO {tag}{body}{tag};"));
    }

    fn header(&mut self, stem: &str, to: &str) {
        let plan = self.input.plan;
        let n = plan.steps.len();
        let from = match plan.from {
            Some(v) => format!("{v} ({} applied)", plan.applied.len()),
            None => "an empty ledger".to_owned(),
        };
        let how = match self.input.dialect {
            Dialect::Mysql => {
                format!("mariadb database < {stem}.sql   (or: mysql database < {stem}.sql)")
            }
            Dialect::Postgres => {
                format!("psql -X -v ON_ERROR_STOP=1 -f {stem}.sql \"$DATABASE_URL\"")
            }
            Dialect::Sqlite => format!("sqlite3 -bail path/to/database.db < {stem}.sql"),
        };
        let stop = match self.input.dialect {
            Dialect::Mysql => "--force",
            Dialect::Postgres => "ON_ERROR_STOP=1",
            Dialect::Sqlite => "-bail",
        };
        let lines = [
            format!(
                "-- envgate bundle {} for environment '{}' ({}, {})",
                self.id,
                plan.env,
                plan.mode,
                self.input.dialect.as_str()
            ),
            match self.input.direction {
                Direction::Up => format!(
                    "-- Brings the ledger from {} to {}: {n} migration{}.",
                    comment(&from),
                    comment(to),
                    if n == 1 { "" } else { "s" }
                ),
                Direction::Down => format!(
                    "-- Reverts {n} migration{} from {}, newest first, with their down scripts.",
                    if n == 1 { "" } else { "s" },
                    comment(&from)
                ),
            },
            "--".to_owned(),
            "-- Apply with a client that stops at the first error:".to_owned(),
            format!("--   {how}"),
            "-- It first checks that the ledger holds exactly the migrations applied when"
                .to_owned(),
            "-- it was built and stops, changing nothing, if not: applying it twice fails"
                .to_owned(),
            if self.input.dialect == Dialect::Mysql {
                format!("-- the second time. Never run it with {stop}: the client would go on past a")
            } else {
                format!("-- the second time. Without {stop}, a failed check still aborts each")
            },
            if self.input.dialect == Dialect::Mysql {
                "-- failed check. A failed check selects from a table named after the problem,".to_owned()
            } else {
                "-- transactional migration, but statements that run outside a transaction".to_owned()
            },
            if self.input.dialect == Dialect::Mysql {
                "-- which does not exist: the client's error names it.".to_owned()
            } else {
                "-- would not be stopped.".to_owned()
            },
            match self.input.dialect {
                Dialect::Mysql => "-- Each migration statement reaches the server through PREPARE, as a string \
                                    literal: nothing in it is read by the client as one of its commands."
                    .to_owned(),
                Dialect::Postgres => "-- Each migration statement runs through DO … EXECUTE, so psql reads it as one \
                                      string literal and nothing in it as a psql command."
                    .to_owned(),
                Dialect::Sqlite => "-- No line of a migration statement can be read by the sqlite3 shell as a \
                                    dot-command (envgate refuses such migrations)."
                    .to_owned(),
            },
            format!(
                "-- The manifest ({stem}.manifest.json) lists each migration's SHA-256 and this file's."
            ),
            "--".to_owned(),
        ];
        for l in lines {
            self.line(&l);
        }
        for (k, s) in plan.steps.iter().enumerate() {
            let tx = match &s.no_transaction {
                Some(why) => format!("  (outside a transaction: {})", comment(why)),
                None => String::new(),
            };
            let m = s.migration;
            self.line(&format!(
                "-- {:>3}. {}_{}  sha256 {}{tx}",
                k + 1,
                comment(m.id()),
                comment(&m.name),
                m.up.hash.hex()
            ));
        }
        self.line("");
        if self.input.dialect == Dialect::Postgres {
            // psql follows both settings (the server reports them), so it
            // reads the rest of the file as envgate wrote it, whatever the
            // database's defaults; the server parses the migrations as
            // `apply` has it do.
            self.line("SET client_encoding = 'UTF8';");
            self.line("SET standard_conforming_strings = on;");
            self.line("");
        }
    }

    /// Versions of the steps that may have a failed (or interrupted) row:
    /// the retries the plan chose; any other failed row stops the bundle.
    fn stuck_check(&self) -> Option<String> {
        let plan = self.input.plan;
        let not_retried: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| !s.retry)
            .map(|s| quote_literal(s.migration.id()))
            .collect();
        if not_retried.is_empty() || self.input.direction == Direction::Down {
            return None;
        }
        Some(not_retried.join(", "))
    }

    /// The check that the ledger is exactly as it was when the bundle was
    /// built. PostgreSQL: a DO block naming what differs. SQLite: the
    /// differences are printed, then a CHECK constraint fails.
    fn full_guard(&mut self) {
        let plan = self.input.plan;
        let id = self.id;
        let env = plan.env;
        match self.input.dialect {
            Dialect::Mysql => unreachable!("{NO_MYSQL}"),
            Dialect::Postgres => {
                let expected = if plan.applied.is_empty() {
                    "'{}'::text[]".to_owned()
                } else {
                    let items: Vec<String> =
                        plan.applied.iter().map(|v| quote_literal(v)).collect();
                    format!("ARRAY[{}]::text[]", items.join(", "))
                };
                let table_lit = quote_literal(&self.table);
                let select = quote_literal(&format!(
                    "SELECT coalesce(array_agg(version ORDER BY version), '{{}}') FROM {} WHERE success",
                    self.table
                ));
                let stuck = self.stuck_check().map(|versions| {
                    quote_literal(&format!(
                        "SELECT coalesce(array_agg(version ORDER BY version), '{{}}') FROM {} WHERE NOT success AND version IN ({versions})",
                        self.table
                    ))
                });
                let mut b = String::new();
                let mut push = |l: &str| {
                    b.push_str(l);
                    b.push('\n');
                };
                push("");
                push("DECLARE");
                push(&format!("    expected text[] := {expected};"));
                push("    actual text[] := '{}';");
                push("    stuck text[] := '{}';");
                push("    extra text[];");
                push("    absent text[];");
                push("BEGIN");
                push(&format!("    IF to_regclass({table_lit}) IS NOT NULL THEN"));
                push(&format!("        EXECUTE {select} INTO actual;"));
                if let Some(stuck) = &stuck {
                    push(&format!("        EXECUTE {stuck} INTO stuck;"));
                }
                push("    END IF;");
                push(
                    "    SELECT coalesce(array_agg(v ORDER BY v), '{}') INTO extra FROM unnest(actual) AS v WHERE v <> ALL (expected);",
                );
                push(
                    "    SELECT coalesce(array_agg(v ORDER BY v), '{}') INTO absent FROM unnest(expected) AS v WHERE v <> ALL (actual);",
                );
                push("    IF cardinality(extra) > 0 OR cardinality(absent) > 0 THEN");
                // Environment names are letters, digits, '-', '_' and '.':
                // nothing to escape in a literal or a format string.
                push(&format!(
                    "        RAISE EXCEPTION 'envgate bundle {id}: the ledger of {env} is not in the state this bundle was built for; nothing was changed'"
                ));
                push(
                    "            USING DETAIL = format('applied now, not when the bundle was built: %s; applied then, not now: %s',",
                );
                push(
                    "                                  coalesce(nullif(array_to_string(extra, ', '), ''), 'none'),",
                );
                push(
                    "                                  coalesce(nullif(array_to_string(absent, ', '), ''), 'none')),",
                );
                push(&format!(
                    "                  HINT = 'Export a new bundle from the current state: envgate export --env {env}';"
                ));
                push("    END IF;");
                push("    IF cardinality(stuck) > 0 THEN");
                push(&format!(
                    "        RAISE EXCEPTION 'envgate bundle {id}: the ledger of {env} records a failed or interrupted run of %; nothing was changed', array_to_string(stuck, ', ')"
                ));
                push(&format!(
                    "            USING HINT = 'Check what it left behind (envgate status), then export a new bundle: envgate export --env {env}';"
                ));
                push("    END IF;");
                push("END");
                self.line("-- Guard: the ledger must hold exactly the migrations applied when this bundle was built.");
                self.do_block("guard", &b);
                self.line("");
            }
            Dialect::Sqlite => {
                // SQLite runs the guard inside the first step's transaction
                // (see `step`): the ledger table may have to be created first.
            }
        }
    }

    fn sqlite_full_guard(&mut self) {
        let plan = self.input.plan;
        let id = self.id;
        let t = self.table.clone();
        self.line("-- Guard: the ledger must hold exactly the migrations applied when this bundle was built.");
        self.line("CREATE TEMP TABLE envgate_expected (version TEXT PRIMARY KEY);");
        for chunk in plan.applied.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|v| format!("({})", quote_literal(v)))
                .collect();
            self.line(&format!(
                "INSERT INTO temp.envgate_expected (version) VALUES {};",
                values.join(", ")
            ));
        }
        let stuck = self.stuck_check().map_or(String::new(), |versions| {
            format!(
                " UNION ALL SELECT 'envgate: a failed or interrupted run is recorded: ' || version FROM {t} WHERE success = 0 AND version IN ({versions})"
            )
        });
        let diff = format!(
            "SELECT 'envgate: applied now, not when the bundle was built: ' || version FROM {t} WHERE success = 1 AND version NOT IN (SELECT version FROM temp.envgate_expected) \
             UNION ALL SELECT 'envgate: applied when the bundle was built, not now: ' || version FROM temp.envgate_expected WHERE version NOT IN (SELECT version FROM {t} WHERE success = 1){stuck}"
        );
        self.line(&format!("{diff};"));
        self.line(&format!(
            "CREATE TEMP TABLE envgate_guard (ok INTEGER CONSTRAINT \"envgate bundle {id}: the ledger is not in the state this bundle was built for (differences above); nothing was changed\" CHECK (ok = 1));"
        ));
        self.line(&format!(
            "INSERT INTO temp.envgate_guard (ok) SELECT NOT EXISTS ({diff});"
        ));
        self.line(&format!(
            "CREATE TEMP TABLE envgate_step_guard (ok INTEGER CONSTRAINT \"envgate bundle {id}: the ledger is not where the previous step of this bundle left it\" CHECK (ok = 1));"
        ));
    }

    /// The check each step makes: as many migrations applied as expected at
    /// this point, the previous step's among them, this one not. PostgreSQL:
    /// a DO block (`prelude` first); SQLite: an INSERT that fails its CHECK.
    fn step_guard(&mut self, k: usize, prelude: &[String]) {
        let plan = self.input.plan;
        let step = &plan.steps[k];
        let t = self.table.clone();
        // Each earlier step added one successful row (a retry replaces a
        // failed row, which is not counted), or removed one.
        let up = self.input.direction == Direction::Up;
        let count = if up {
            plan.applied.len() + k
        } else {
            plan.applied.len() - k
        };
        let (this_bad, prev_bad, this_ok, prev_ok) = if up {
            ("EXISTS", "NOT EXISTS", "NOT EXISTS", "EXISTS")
        } else {
            ("NOT EXISTS", "EXISTS", "EXISTS", "NOT EXISTS")
        };
        let this = quote_literal(step.migration.id());
        let prev = (k > 0).then(|| quote_literal(plan.steps[k - 1].migration.id()));
        match self.input.dialect {
            Dialect::Mysql => unreachable!("{NO_MYSQL}"),
            Dialect::Postgres => {
                let prev_check = prev.map_or(String::new(), |p| {
                    format!(" OR {prev_bad} (SELECT 1 FROM {t} WHERE version = {p} AND success)")
                });
                let mut body = " BEGIN\n".to_owned();
                for p in prelude {
                    body.push_str(&format!("    {p}\n"));
                }
                body.push_str(&format!(
                    "    IF (SELECT count(*) FROM {t} WHERE success) <> {count} OR {this_bad} (SELECT 1 FROM {t} WHERE version = {this} AND success){prev_check} THEN RAISE EXCEPTION 'envgate bundle {}: before step {} the ledger is not where the previous step left it; this step changed nothing'; END IF;\nEND ",
                    self.id,
                    k + 1,
                ));
                self.do_block("step", &body);
            }
            Dialect::Sqlite => {
                let prev_check = prev.map_or(String::new(), |p| {
                    format!(
                        " AND {prev_ok} (SELECT 1 FROM {t} WHERE version = {p} AND success = 1)"
                    )
                });
                self.line(&format!(
                    "INSERT INTO temp.envgate_step_guard (ok) SELECT (SELECT count(*) FROM {t} WHERE success = 1) = {count} AND {this_ok} (SELECT 1 FROM {t} WHERE version = {this} AND success = 1){prev_check};"
                ));
            }
        }
    }

    /// PostgreSQL: creates the ledger (and its schema) when missing, under
    /// the lock, without the NOTICE `IF NOT EXISTS` prints when it exists:
    /// statements of a DO block. (`CREATE … IF NOT EXISTS` rather than a
    /// catalog lookup: it sees what a run that held the lock before
    /// committed, where a lookup could answer from a stale cache.)
    fn create_ledger(&self) -> Vec<String> {
        let mut out = vec![
            "PERFORM set_config('envgate.messages', current_setting('client_min_messages'), true);"
                .to_owned(),
            "PERFORM set_config('client_min_messages', 'warning', true);".to_owned(),
        ];
        out.extend(
            ledger_table::create_table_sql(Dialect::Postgres, self.input.schema)
                .split(";\n")
                .map(|stmt| format!("{stmt};")),
        );
        out.push(
            "PERFORM set_config('client_min_messages', current_setting('envgate.messages'), true);"
                .to_owned(),
        );
        out
    }

    fn step(&mut self, k: usize, total: usize, step: &super::plan::Step<'_>) {
        let m = step.migration;
        let dialect = self.input.dialect;
        let schema = self.input.schema;
        let via = format!("bundle:{}", self.id);
        let hash = m.up.hash.tagged();
        let key = lock_key(schema);
        let transactional = step.no_transaction.is_none();
        let down = self.input.direction == Direction::Down;
        let where_ = match &step.no_transaction {
            Some(why) => format!("; runs outside a transaction: {}", comment(why)),
            None => String::new(),
        };
        let script = match self.input.direction {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_ref().expect("rollback plans have down scripts"),
        };
        self.line(&format!(
            "-- [{}/{total}] {}_{} ({}{where_})",
            k + 1,
            comment(m.id()),
            comment(&m.name),
            comment(&script.path)
        ));
        let row = NewRow {
            version: m.id(),
            name: &m.name,
            sha256: &hash,
            applied_by: None,
            elapsed: if transactional {
                Elapsed::SinceTransactionStart
            } else {
                Elapsed::SinceMarker
            },
            success: true,
            release: self.input.release,
            applied_via: &via,
            error: None,
        };
        let record = match self.input.direction {
            Direction::Up => ledger_table::record_sql(dialect, schema, &row),
            Direction::Down => ledger_table::delete_sql(dialect, schema, m.id()),
        };
        let started = ledger_table::started_sql(dialect, schema, &row, down);
        let create = if k == 0 && dialect == Dialect::Postgres {
            self.create_ledger()
        } else {
            Vec::new()
        };
        match (dialect, transactional) {
            (Dialect::Mysql, _) => unreachable!("{NO_MYSQL}"),
            (Dialect::Postgres, true) => {
                self.line("BEGIN;");
                if let Some(s) = schema {
                    self.line(&format!("SET LOCAL search_path TO {};", quote_ident(s)));
                }
                // The lock comes first, in a statement of its own (the next
                // one then sees what the previous holder committed): two runs
                // of one bundle queue here rather than racing to create the
                // ledger.
                self.do_block(
                    "lock",
                    &format!(" BEGIN PERFORM pg_advisory_xact_lock({key}); END "),
                );
                self.step_guard(k, &create);
                self.statements(script);
                self.line(&format!("{record};"));
                self.line("COMMIT;");
            }
            (Dialect::Postgres, false) => {
                if let Some(s) = schema {
                    self.line(&format!("SET search_path TO {};", quote_ident(s)));
                }
                // A session lock (released below, or when the session ends),
                // the start time for the ledger row, and the row that says
                // the migration started, written before its statements run.
                self.do_block(
                    "lock",
                    &format!(" BEGIN PERFORM pg_advisory_lock({key}); END "),
                );
                let mut prelude = vec![format!(
                    "PERFORM {};",
                    ledger_table::mark_start_sql().trim_start_matches("SELECT ")
                )];
                prelude.extend(create);
                self.step_guard(k, &prelude);
                self.do_block(
                    "started",
                    &format!(" BEGIN {}; END ", started.replace('\n', " ")),
                );
                self.statements(script);
                self.line("BEGIN;");
                self.line(&format!("{record};"));
                self.line("COMMIT;");
                self.do_block(
                    "unlock",
                    &format!(" BEGIN PERFORM pg_advisory_unlock({key}); END "),
                );
                if schema.is_some() {
                    self.line("RESET search_path;");
                }
            }
            (Dialect::Sqlite, true) => {
                self.line("BEGIN IMMEDIATE;");
                if k == 0 {
                    self.line(&format!(
                        "{};",
                        ledger_table::create_table_sql(dialect, schema)
                    ));
                    self.sqlite_full_guard();
                }
                self.step_guard(k, &[]);
                self.statements(script);
                self.line(&format!("{record};"));
                self.line("COMMIT;");
            }
            (Dialect::Sqlite, false) => {
                self.line("BEGIN IMMEDIATE;");
                if k == 0 {
                    self.line(&format!(
                        "{};",
                        ledger_table::create_table_sql(dialect, schema)
                    ));
                    self.sqlite_full_guard();
                }
                self.step_guard(k, &[]);
                self.line(&format!("{started};"));
                self.line("COMMIT;");
                self.statements(script);
                self.line("BEGIN IMMEDIATE;");
                self.line(&format!("{record};"));
                self.line("COMMIT;");
            }
        }
        self.line("");
    }

    /// A script's statements, each as `apply` runs it: PostgreSQL through
    /// `DO … EXECUTE` where it can (out of psql's reach), else as written;
    /// SQLite as written. [`super::client::check`] has refused every text
    /// for which this would not be safe; the plan does not hold refused steps.
    fn statements(&mut self, script: &Script) {
        let dialect = self.input.dialect;
        for stmt in split(&script.sql, dialect) {
            let line = line_col(&script.sql, stmt.offset).0;
            self.line(&format!("-- {}:{line}", comment(&script.path)));
            match (dialect, client::placement(stmt.text)) {
                (Dialect::Postgres, Placement::Embedded) => {
                    let text = format!("{};", stmt.text);
                    let inner = client::tag("sql", &text);
                    self.do_block("do", &format!(" BEGIN EXECUTE {inner}{text}{inner}; END "));
                }
                _ => self.line(&format!("{};", stmt.text)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::LedgerRow;
    use crate::core::migration::{SourceFile, discover};
    use crate::core::plan::{PlanInput, plan};

    fn migrations(files: &[(&str, &str)]) -> Vec<crate::core::migration::Migration> {
        discover(
            files
                .iter()
                .map(|(n, b)| SourceFile {
                    path: format!("migrations/{n}"),
                    bytes: b.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn applied(version: &str, body: &str) -> LedgerRow {
        LedgerRow {
            via: None,
            version: version.into(),
            name: "x".into(),
            hash: crate::core::checksum::RecordedHash::Sha256Lf(
                crate::core::checksum::ContentHash::of(body.as_bytes()),
            ),
            applied_at: None,
            success: true,
            error: None,
        }
    }

    fn bundle_for(dialect: Dialect, schema: Option<&str>) -> Bundle {
        let ms = migrations(&[
            ("1_users.sql", "CREATE TABLE users (id int);\n"),
            (
                "2_tickets.sql",
                "CREATE TABLE tickets (id int); -- trailing comment",
            ),
            (
                "3_idx.sql",
                "CREATE INDEX CONCURRENTLY tickets_idx ON tickets (id);\n",
            ),
        ]);
        let ledger = [applied("1", "CREATE TABLE users (id int);\n")];
        let p = plan(&PlanInput {
            env: "prod",
            mode: Mode::ExportOnly,
            dialect,
            migrations: &ms,
            ledger: &ledger,
            stop_at: None,
            waive: crate::core::plan::Waive::NONE,
            only: None,
            accepted: None,
        })
        .unwrap();
        build(&BundleInput {
            plan: &p,
            direction: Direction::Up,
            dialect,
            schema,
            envgate_version: "0.1.0",
            generated_at: "2026-11-25T12:00:00Z",
            generated_by: "alice",
            release: None,
        })
    }

    #[test]
    fn postgres_bundle() {
        let b = bundle_for(Dialect::Postgres, Some("app"));
        assert_eq!(b.stem, "prod-1-3");
        assert_eq!(b.manifest.file, "prod-1-3.sql");
        assert_eq!(b.manifest.expects_applied.count, 1);
        assert_eq!(b.manifest.migrations.len(), 2);
        assert!(!b.manifest.migrations[1].transaction);
        assert_eq!(
            b.manifest.bundle_sha256,
            hex::encode(Sha256::digest(b.sql.as_bytes()))
        );
        insta::assert_snapshot!(b.sql);
    }

    #[test]
    fn sqlite_bundle() {
        let b = bundle_for(Dialect::Sqlite, None);
        insta::assert_snapshot!(b.sql);
    }

    #[test]
    fn bundles_are_reproducible_and_identified_by_their_inputs() {
        let a = bundle_for(Dialect::Postgres, None);
        let b = bundle_for(Dialect::Postgres, None);
        assert_eq!(a.sql, b.sql);
        assert_eq!(a.manifest.bundle_id, b.manifest.bundle_id);
        let c = bundle_for(Dialect::Postgres, Some("app"));
        assert_ne!(a.manifest.bundle_id, c.manifest.bundle_id);
    }
}
