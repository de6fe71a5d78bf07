//! The body of a bundle for MySQL and MariaDB, applied with their own
//! client in batch mode (`mariadb database < bundle.sql`, `mysql …`), which
//! stops at the first error (unless `--force`).
//!
//! - Every statement of a migration reaches the server through
//!   `PREPARE … FROM @envgate_sql`, as a string literal: nothing in a
//!   migration's text is read by the client as one of its commands.
//! - Guards fail when the ledger is not as expected: a prepared statement
//!   chosen by `IF(…)` selects from a table named after the problem, which
//!   does not exist, so the client stops with that name in its error.
//! - The lock is `GET_LOCK` on the same name `envgate apply` takes.
//! - Migrations with DDL (which commits implicitly) are recorded as `apply`
//!   records them: started, statement by statement, then successful; DML
//!   alone runs in one transaction with its ledger row.

use super::ledger_table::{self, Elapsed, NewRow, prefix_hash, progress_text};
use super::plan::{Direction, Plan, Step};
use super::sql::{Dialect, quote_literal_mysql as lit, split};
use super::text::visible;

/// The ledger's lock name ([`ledger_table::mysql_lock_name`]) as an SQL
/// expression: the database is the client's unless `schema` names one.
pub fn lock_name_sql(schema: Option<&str>) -> String {
    let db = schema.map_or("DATABASE()".to_owned(), lit);
    format!(
        "IF(CHAR_LENGTH(CONCAT({db}, '.{t}')) + 8 <= 64, CONCAT('envgate:', {db}, '.{t}'), \
         CONCAT('envgate:', LEFT(SHA2(CONCAT({db}, '.{t}'), 256), 40)))",
        t = ledger_table::TABLE
    )
}

struct Out<'a> {
    text: String,
    id: &'a str,
}

impl Out<'_> {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// Runs `sql` (one statement) through a prepared statement.
    fn prepared(&mut self, sql: &str) {
        self.line(&format!("SET @envgate_sql = {};", lit(sql)));
        self.line("PREPARE envgate_stmt FROM @envgate_sql;");
        self.line("EXECUTE envgate_stmt;");
        self.line("DEALLOCATE PREPARE envgate_stmt;");
    }

    /// Stops the client, changing nothing, unless `condition` holds: the
    /// error names a missing table called `what` (at most 64 characters).
    fn guard(&mut self, condition: &str, what: &str) {
        let name = format!("envgate {}: {what}", self.id);
        let name: String = name.chars().take(64).collect();
        self.line(&format!("SET @envgate_ok = ({condition});"));
        self.line(&format!(
            "SET @envgate_sql = IF(@envgate_ok, 'DO 0', {});",
            lit(&format!("SELECT 1 FROM `{}`", name.replace('`', "")))
        ));
        self.line("PREPARE envgate_stmt FROM @envgate_sql;");
        self.line("EXECUTE envgate_stmt;");
        self.line("DEALLOCATE PREPARE envgate_stmt;");
    }
}

/// Everything after the header: the lock, the full guard, each step, the
/// release of the lock.
pub fn body(
    plan: &Plan<'_>,
    direction: Direction,
    schema: Option<&str>,
    id: &str,
    stuck: Option<&str>,
) -> String {
    let t = ledger_table::qualified(Dialect::Mysql, schema);
    let mut o = Out {
        text: String::new(),
        id,
    };
    o.line("SET NAMES utf8mb4;");
    o.line("SET time_zone = '+00:00';");
    o.line("");
    o.line("-- The environment's lock, the one `envgate apply` takes (60 s at most).");
    o.line(&format!(
        "SET @envgate_lock = GET_LOCK({}, 60);",
        lock_name_sql(schema)
    ));
    o.guard("@envgate_lock = 1", "the lock is held elsewhere");
    o.line(&format!(
        "{};",
        ledger_table::create_table_sql(Dialect::Mysql, schema)
    ));
    o.line("");
    o.line(
        "-- Guard: the ledger must hold exactly the migrations applied when this bundle was built.",
    );
    let applied = plan.applied.len();
    let mut cond = format!("(SELECT COUNT(*) FROM {t} WHERE success = 1) = {applied}");
    if applied > 0 {
        let list: Vec<String> = plan.applied.iter().map(|v| lit(v)).collect();
        cond.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {t} WHERE success = 1 AND version NOT IN ({}))",
            list.join(", ")
        ));
    }
    o.guard(&cond, "ledger differs from when built");
    if let Some(stuck) = stuck {
        o.guard(
            &format!("NOT EXISTS (SELECT 1 FROM {t} WHERE success = 0 AND version IN ({stuck}))"),
            "a failed run is recorded",
        );
    }
    o.line("");
    let total = plan.steps.len();
    let up = direction == Direction::Up;
    for (k, step) in plan.steps.iter().enumerate() {
        self::step(&mut o, plan, step, k, total, up, schema, &t);
    }
    o.line(&format!("DO RELEASE_LOCK({});", lock_name_sql(schema)));
    o.text
}

#[allow(clippy::too_many_arguments)]
fn step(
    o: &mut Out<'_>,
    plan: &Plan<'_>,
    step: &Step<'_>,
    k: usize,
    total: usize,
    up: bool,
    schema: Option<&str>,
    t: &str,
) {
    let m = step.migration;
    let script = if up {
        &m.up
    } else {
        m.down.as_ref().expect("rollback plans have down scripts")
    };
    let transactional = step.no_transaction.is_none();
    o.line(&format!(
        "-- [{}/{total}] {}_{} ({}{})",
        k + 1,
        visible(m.id()),
        visible(&m.name),
        visible(&script.path),
        step.no_transaction
            .as_ref()
            .map_or(String::new(), |why| format!(
                "; statement by statement: {}",
                visible(why)
            ))
    ));
    // Where the previous step left the ledger.
    let count = if up {
        plan.applied.len() + k
    } else {
        plan.applied.len() - k
    };
    let this = lit(m.id());
    let (this_ok, prev_ok) = if up {
        ("NOT EXISTS", "EXISTS")
    } else {
        ("EXISTS", "NOT EXISTS")
    };
    let mut cond = format!(
        "(SELECT COUNT(*) FROM {t} WHERE success = 1) = {count} AND {this_ok} (SELECT 1 FROM {t} WHERE version = {this} AND success = 1)"
    );
    if k > 0 {
        cond.push_str(&format!(
            " AND {prev_ok} (SELECT 1 FROM {t} WHERE version = {} AND success = 1)",
            lit(plan.steps[k - 1].migration.id())
        ));
    }
    let hash = m.up.hash.tagged();
    let via = format!("bundle:{}", o.id);
    let row = |success: bool, error: Option<String>| {
        let r = NewRow {
            version: m.id(),
            name: &m.name,
            sha256: &hash,
            applied_by: None,
            elapsed: Elapsed::Millis(0),
            success,
            release: None,
            applied_via: &via,
            error: error.as_deref(),
        };
        ledger_table::record_sql(Dialect::Mysql, schema, &r)
    };
    let statements: Vec<&str> = split(&script.sql, Dialect::Mysql)
        .iter()
        .map(|s| s.text)
        .collect();
    let finish = if up {
        row(true, None)
    } else {
        ledger_table::delete_sql(Dialect::Mysql, schema, m.id())
    };
    if transactional {
        o.line("START TRANSACTION;");
        o.guard(&cond, &format!("step {} finds the ledger moved", k + 1));
        for s in &statements {
            o.prepared(s);
        }
        for s in split(&finish, Dialect::Mysql) {
            o.line(&format!("{};", s.text));
        }
        o.line("COMMIT;");
    } else {
        o.guard(&cond, &format!("step {} finds the ledger moved", k + 1));
        let n = statements.len();
        if up {
            let started = progress_text(0, n, &prefix_hash(&statements, 0));
            for s in split(&row(false, Some(started)), Dialect::Mysql) {
                o.line(&format!("{};", s.text));
            }
        }
        for (i, s) in statements.iter().enumerate() {
            o.prepared(s);
            if up {
                o.line(&format!(
                    "UPDATE {t} SET error = {} WHERE version = {this} AND success = 0;",
                    lit(&progress_text(i + 1, n, &prefix_hash(&statements, i + 1)))
                ));
            }
        }
        o.line("START TRANSACTION;");
        for s in split(&finish, Dialect::Mysql) {
            o.line(&format!("{};", s.text));
        }
        o.line("COMMIT;");
    }
    o.line("");
}
