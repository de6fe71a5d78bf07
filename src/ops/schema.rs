//! Drift in the live schema, written once for `envgate schema diff`,
//! `status --schema`, `envgate ci` and the bot.
//!
//! Each environment's schema is read from its catalogs in a read-only
//! session. The schema it should have is the one its applied migrations
//! produce: built on the shadow database (`[schema_drift] shadow_url`;
//! SQLite environments get a throwaway file), once per ledger position that
//! occurs, and cached by position and file hashes under `.envgate/schemas`.
//! An environment whose expected schema cannot be built (no shadow for its
//! kind of server, migrations written in code) is compared with another
//! environment at the same position, when there is one.

use super::Failure;
use super::world::World;
use crate::config::{Config, EnvConfig};
use crate::core::matrix::{Matrix, State};
use crate::core::migration::Migration;
use crate::core::schema::{self, Object, Reference, Schema};
use crate::core::schema_catalog;
pub use crate::core::schema_drift::{Comparison, EnvSchema};
use crate::core::sql::{self, Dialect};
use crate::db::shadow::{MYSQL_MARKER_TABLE, ShadowDb};
use crate::db::{ReadSession, SqliteTarget, Target};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Positions built on one shadow: the dialect, the schemas read and the
/// tool whose migrations run.
type Group = (Dialect, Vec<String>, crate::core::tools::Tool);

/// The PostgreSQL schemas read for an environment.
fn schemas(config: &Config, env: &EnvConfig, target: &Target) -> Vec<String> {
    if !config.schema_drift.schemas.is_empty() {
        return config.schema_drift.schemas.clone();
    }
    vec![
        super::environments::ledger_schema(env, target)
            .unwrap_or("public")
            .to_owned(),
    ]
}

/// Reads one database's objects through a read-only session.
pub async fn read_objects(
    session: &ReadSession,
    schemas: &[String],
) -> Result<Vec<Object>, String> {
    let query = schema_catalog::query(session.dialect(), schemas);
    session
        .query_map(
            &query,
            Box::new(|row: &dyn crate::db::TextRow| {
                let cols: Vec<Option<&str>> = (0..row.width()).map(|i| row.text(i)).collect();
                schema_catalog::object(&cols)
            }),
        )
        .await
        .map_err(|e| e.message().to_owned())
}

/// Reads an environment's schema.
pub async fn read_env(config: &Config, env: &EnvConfig, target: &Target) -> Result<Schema, String> {
    let names = schemas(config, env, target);
    // search_path (PostgreSQL) is the first schema read: names in it come
    // unqualified. MySQL reads the URL's database, SQLite its file.
    let path = matches!(target, Target::Postgres(_)).then(|| names[0].as_str());
    let session = ReadSession::open(target, path, env.connect_timeout)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let objects = read_objects(&session, &names).await?;
    Ok(Schema::new(
        objects,
        &env.ledger.bookkeeping_tables(env.table.as_deref()),
        &config.schema_drift.ignore,
    ))
}

/// The migrations an environment's ledger records as applied, in order, or
/// why its expected schema cannot be built from the repository.
fn position<'m>(
    matrix: &Matrix<'_>,
    e: usize,
    by_id: &HashMap<&str, &'m Migration>,
) -> Result<Vec<&'m Migration>, String> {
    if let Some(e) = matrix.envs[e].error {
        return Err(format!(
            "its ledger could not be read ({e}), so which migrations it has is unknown"
        ));
    }
    let mut applied = Vec::new();
    let mut missing = Vec::new();
    for (r, row) in matrix.rows.iter().enumerate() {
        match matrix.cells(r)[e].state {
            State::Applied | State::Drifted => match by_id.get(row.version) {
                Some(m) => applied.push(*m),
                None => missing.push(row.version),
            },
            State::Missing => missing.push(row.version),
            _ => {}
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} applied migration{} not in the repository ({}): the schema they produce is unknown",
            missing.len(),
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join(", ")
        ));
    }
    Ok(applied)
}

/// Where the schemas migrations produce are kept between runs.
fn cache_dir(config: &Config) -> PathBuf {
    super::source::config_dir(config).join(".envgate/schemas")
}

/// What identifies a position's expected schema.
fn position_key(dialect: Dialect, schemas: &[String], migrations: &[&Migration]) -> String {
    let mut h = Sha256::new();
    h.update(b"envgate schema 1\n");
    h.update(dialect.as_str().as_bytes());
    h.update(b"\n");
    h.update(schemas.join(",").as_bytes());
    h.update(b"\n");
    for m in migrations {
        h.update(m.id().as_bytes());
        h.update(b" ");
        h.update(m.up.hash.hex().as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn read_cache(dir: &Path, key: &str) -> Option<Vec<Object>> {
    let text = std::fs::read(dir.join(format!("{key}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_cache(dir: &Path, key: &str, objects: &[Object]) {
    let json = serde_json::to_vec(objects).expect("objects serialize");
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = super::atomic_file::write(&dir.join(format!("{key}.json")), &json);
    }
}

/// The shadow databases `[schema_drift] shadow_url` names, resolved and
/// checked: never one of the environments' databases.
fn shadows(config: &Config, envs: &[(&EnvConfig, &Target)]) -> Result<Vec<Target>, Failure> {
    let base = config.file.parent().unwrap_or(Path::new(""));
    let lookup = |var: &str| std::env::var(var).ok();
    let at = |m: String| {
        Failure::usage(format!(
            "{}:{}: `schema_drift.shadow_url`: {m}",
            config.file.display(),
            config.schema_drift.shadow_line
        ))
    };
    let mut out = Vec::new();
    for written in &config.schema_drift.shadow_urls {
        let url = crate::config::interpolate(written, &lookup).map_err(at)?;
        crate::secrets::register_url(&url);
        let target = Target::parse(&url, base).map_err(at)?;
        if matches!(target, Target::Sqlite(_)) {
            return Err(at(
                "SQLite environments get a throwaway shadow file; name PostgreSQL or MySQL servers here".to_owned(),
            ));
        }
        let label = super::environments::target_label(&target);
        if let Some((env, _)) = envs
            .iter()
            .find(|(_, t)| super::environments::target_label(t) == label)
        {
            return Err(at(format!(
                "it names environment '{}''s database ({label}); a shadow database is created and dropped, \
                 so it must never be an environment's",
                env.name
            )));
        }
        out.push(target);
    }
    Ok(out)
}

/// The shadow for environments of this dialect: the configured one of that
/// kind, or a throwaway file for SQLite.
fn shadow_for(shadows: &[Target], dialect: Dialect) -> Result<Target, String> {
    if dialect == Dialect::Sqlite {
        let file = std::env::temp_dir().join(format!(
            "envgate-shadow-{}-{}.db",
            std::process::id(),
            SHADOW_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        return Ok(Target::Sqlite(SqliteTarget::File(file)));
    }
    shadows
        .iter()
        .find(|t| super::environments::dialect(t) == dialect)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no shadow database for {}: set `shadow_url` in [schema_drift] to compare with what the migrations produce",
                dialect.as_str()
            )
        })
}

static SHADOW_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Builds the schema of each position on the shadow (positions sharing a
/// prefix in one pass), or says why a position's could not be built.
async fn build_on_shadow(
    target: &Target,
    dialect: Dialect,
    tool: crate::core::tools::Tool,
    schemas: &[String],
    positions: &[Vec<&Migration>],
    timeout: std::time::Duration,
) -> Vec<Result<Vec<Object>, String>> {
    let mut order: Vec<usize> = (0..positions.len()).collect();
    order.sort_by_key(|&i| positions[i].len());
    let mut out: Vec<Result<Vec<Object>, String>> = vec![Err(String::new()); positions.len()];
    let pg_schema = (dialect == Dialect::Postgres).then(|| schemas[0].as_str());
    let mut shadow: Option<(ShadowDb, Vec<&str>)> = None;
    for i in order {
        let want = &positions[i];
        let reusable = shadow.as_ref().is_some_and(|(_, done)| {
            done.len() <= want.len() && done.iter().zip(want.iter()).all(|(a, b)| *a == b.id())
        });
        if !reusable {
            if let Some((old, _)) = shadow.take() {
                let _ = old.drop_database().await;
            }
            match ShadowDb::create(target, pg_schema, timeout).await {
                Ok(db) => shadow = Some((db, Vec::new())),
                Err(e) => {
                    out[i] = Err(format!("the shadow database could not be created: {e}"));
                    continue;
                }
            }
        }
        let (db, done) = shadow.as_mut().expect("created above");
        let mut failed = None;
        for m in &want[done.len()..] {
            let Some(sql) = tool.up_sql(&m.up) else {
                failed = Some(format!(
                    "{} migrations are not SQL envgate can run ({}): compare environments at the same position instead",
                    tool, m.up.path
                ));
                break;
            };
            for (n, stmt) in sql::split(&sql, dialect).iter().enumerate() {
                if let Err(e) = db.execute(stmt.text).await {
                    failed = Some(format!(
                        "migration {} failed on the shadow database at statement {}: {}",
                        m.id(),
                        n + 1,
                        crate::secrets::scrubbed(&e)
                    ));
                    break;
                }
            }
            if failed.is_some() {
                break;
            }
            done.push(m.id());
        }
        if let Some(why) = failed {
            out[i] = Err(why);
            if let Some((old, _)) = shadow.take() {
                let _ = old.drop_database().await;
            }
            continue;
        }
        out[i] = match db.read().await {
            Ok(session) => read_objects(&session, schemas).await,
            Err(e) => Err(format!("cannot read the shadow database: {e}")),
        };
    }
    if let Some((db, _)) = shadow.take()
        && let Err(e) = db.drop_database().await
    {
        tracing::warn!(
            "the shadow database could not be dropped: {}",
            crate::secrets::scrubbed(&e)
        );
    }
    out
}

/// Every selected environment's schema, compared with what its migrations
/// produce (or with a peer's).
pub async fn observe(
    config: &Config,
    world: &World<'_>,
    matrix: &Matrix<'_>,
) -> Result<Vec<EnvSchema>, Failure> {
    let reads = futures::future::join_all(world.envs.iter().zip(&world.targets).map(
        |(env, target)| async move {
            match target {
                Ok(t) => read_env(config, env, t).await.map_err(|e| {
                    crate::secrets::scrubbed(&format!(
                        "{}: {e}",
                        super::environments::target_label(t)
                    ))
                }),
                Err(e) => Err(crate::secrets::scrubbed(e)),
            }
        },
    ))
    .await;
    let by_id: HashMap<&str, &Migration> = world
        .discovery
        .migrations
        .iter()
        .map(|m| (m.id(), m))
        .collect();
    let positions: Vec<Result<Vec<&Migration>, String>> = (0..world.envs.len())
        .map(|e| position(matrix, e, &by_id))
        .collect();
    let located: Vec<(&EnvConfig, &Target)> = world
        .envs
        .iter()
        .zip(&world.targets)
        .filter_map(|(e, t)| t.as_ref().ok().map(|t| (*e, t)))
        .collect();
    let shadows = shadows(config, &located)?;

    // The expected schema of each (dialect, schemas, position): from the
    // cache, else built on that dialect's shadow.
    let dir = cache_dir(config);
    let mut expected: HashMap<String, Result<Vec<Object>, String>> = HashMap::new();
    let mut to_build: HashMap<Group, Vec<(String, Vec<&Migration>)>> = HashMap::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    for (e, env) in world.envs.iter().enumerate() {
        let (Ok(target), Ok(pos)) = (&world.targets[e], &positions[e]) else {
            keys.push(None);
            continue;
        };
        let dialect = super::environments::dialect(target);
        let names = schemas(config, env, target);
        let key = position_key(dialect, &names, pos);
        keys.push(Some(key.clone()));
        if expected.contains_key(&key) {
            continue;
        }
        if let Some(objects) = read_cache(&dir, &key) {
            expected.insert(key, Ok(objects));
            continue;
        }
        let group = to_build.entry((dialect, names, env.ledger)).or_default();
        if !group.iter().any(|(k, _)| *k == key) {
            group.push((key, pos.clone()));
        }
    }
    for ((dialect, names, tool), wanted) in to_build {
        let built = match shadow_for(&shadows, dialect) {
            Err(why) => vec![Err(why); wanted.len()],
            Ok(target) => {
                let positions: Vec<Vec<&Migration>> =
                    wanted.iter().map(|(_, p)| p.clone()).collect();
                build_on_shadow(
                    &target,
                    dialect,
                    tool,
                    &names,
                    &positions,
                    config_timeout(config),
                )
                .await
            }
        };
        for ((key, _), result) in wanted.into_iter().zip(built) {
            if let Ok(objects) = &result {
                write_cache(&dir, &key, objects);
            }
            expected.insert(key, result);
        }
    }

    let mut out: Vec<EnvSchema> = Vec::new();
    for (e, (env, read)) in world.envs.iter().zip(reads).enumerate() {
        let applied = positions[e].as_ref().map_or(0, Vec::len);
        let comparison = match (&read, &positions[e], &keys[e]) {
            (Err(_), _, _) => Comparison::Unknown("the schema could not be read".to_owned()),
            (Ok(_), Err(why), _) => Comparison::Unknown(why.clone()),
            (Ok(actual), Ok(pos), Some(key)) => match expected.get(key) {
                Some(Ok(objects)) => {
                    let skip = env.ledger.bookkeeping_tables(env.table.as_deref());
                    let mut skip = skip;
                    skip.push(MYSQL_MARKER_TABLE.to_owned());
                    let want =
                        Schema::new(objects.iter().cloned(), &skip, &config.schema_drift.ignore);
                    Comparison::Compared {
                        reference: Reference::Migrations { applied: pos.len() },
                        changes: schema::diff(actual, &want),
                    }
                }
                other => {
                    let why = match other {
                        Some(Err(why)) => why.clone(),
                        _ => "no expected schema".to_owned(),
                    };
                    // A peer at the same position, read, earlier in order.
                    let peer =
                        (0..e).find(|&p| keys[p].as_ref() == Some(key) && out[p].read.is_ok());
                    match peer {
                        Some(p) => Comparison::Compared {
                            reference: Reference::Peer {
                                env: world.envs[p].name.clone(),
                            },
                            changes: schema::diff(actual, out[p].read.as_ref().expect("checked")),
                        },
                        None => Comparison::Unknown(why),
                    }
                }
            },
            (Ok(_), Ok(_), None) => {
                Comparison::Unknown("the environment could not be read".to_owned())
            }
        };
        out.push(EnvSchema {
            env: env.name.clone(),
            read,
            applied,
            comparison,
        });
    }
    Ok(out)
}

fn config_timeout(config: &Config) -> std::time::Duration {
    config
        .environments
        .first()
        .map_or(crate::config::DEFAULT_CONNECT_TIMEOUT, |e| {
            e.connect_timeout
        })
}
