//! A release tag's bundles, the same from the bot and from `envgate ci`:
//! each export_only environment's bundle of the release, built from the tag
//! ([`build`]), then published where the forge keeps release files — GitHub
//! release assets, GitLab generic packages linked from the release — and,
//! where the forge has release notes, envgate's section of them
//! ([`publish`]). Publishing converges: a file already there with the same
//! name and content is kept, another one of that name is replaced.

use super::remote::RepoApi;
use super::{Context, JobError, locked};
use crate::config::Config;
use crate::core::audit::Entry;
use crate::core::bundle::Bundle;
use crate::core::release::tag_matches;
use crate::forge::{ApiError, Fate, File, Published, ReleaseFiles};
use crate::ops::exit;
use crate::ops::export::exported;
use crate::ops::memory::Memory;
use crate::ops::release::{self, Shown};
use crate::ops::source::Source;
use crate::ops::world::Reader;
use crate::render;
use serde::Serialize;

/// Where envgate's section of release notes starts and ends.
pub const NOTES_OPEN: &str = "<!-- envgate:release -->";
pub const NOTES_CLOSE: &str = "<!-- /envgate:release -->";

/// A bundle's files: its SQL and its manifest.
pub fn files(b: &Bundle) -> ReleaseFiles {
    ReleaseFiles {
        sql: File {
            name: format!("{}.sql", b.stem),
            content_type: "application/sql",
            bytes: b.sql.clone().into_bytes(),
        },
        manifest: File {
            name: format!("{}.manifest.json", b.stem),
            content_type: "application/json",
            bytes: render::json(&b.manifest).into_bytes(),
        },
    }
}

/// Where a forge keeps a release's files.
#[allow(async_fn_in_trait)]
pub trait Publisher {
    /// Publishes one bundle's files on the tag's release (created when the
    /// forge needs one), converging on one file per name that holds them.
    async fn publish(&self, tag: &str, files: ReleaseFiles) -> Result<Vec<Published>, ApiError>;
    /// Writes envgate's section of the release's notes, replacing an
    /// earlier one (forges without notes do nothing).
    async fn notes(&self, tag: &str, section: &str) -> Result<(), ApiError>;
}

/// A release tag, read: its view and its bundles; or why it is no release.
pub enum Built {
    Release(Box<Shown>),
    /// Not a release (or not readable as one): the reason.
    NotARelease(String),
}

/// Builds the release at `tag` and its bundles. A tag that is no release
/// is not an error; a migration that does not parse is the user's.
pub async fn build(
    config: &Config,
    memory: &Memory,
    src: &impl Source,
    reach: &impl Reader,
    tag: &str,
) -> Result<Built, JobError> {
    match release::shown(config, memory, src, reach, tag).await {
        Ok(shown) => {
            // Recognised later, when a pipeline applies them.
            for b in &shown.built {
                memory.remember_bundle(b).await?;
            }
            Ok(Built::Release(Box::new(shown)))
        }
        Err(f) if f.code == exit::REFUSED => Ok(Built::NotARelease(f.message)),
        Err(f) => Err(JobError::from(f)),
    }
}

/// One file as the release notes show it.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    /// `kept`, `uploaded` or `replaced`.
    fate: &'static str,
    /// The replaced file's SHA-256, shortened, when known.
    was: Option<String>,
}

/// Publishes every bundle of a built release, each on its own (one that
/// fails does not keep the others off the release), records what changed
/// in the audit trail, then (with `notes`) writes envgate's section of the
/// release notes. The files published; the first error once all were
/// tried, so that the job is tried again while the release is incomplete.
pub async fn publish(
    shown: &Shown,
    publisher: &impl Publisher,
    memory: &Memory,
    notes: bool,
) -> Result<Vec<Published>, JobError> {
    let tag = &shown.release.tag;
    let mut published = Vec::new();
    let mut failed: Vec<(String, ApiError)> = Vec::new();
    for b in &shown.built {
        match publisher.publish(tag, files(b)).await {
            Ok(files) => {
                audit(memory, tag, b, &files).await?;
                published.extend(files);
            }
            Err(e) => {
                tracing::warn!(tag, environment = %b.manifest.environment, "bundle not published: {e}");
                failed.push((b.manifest.environment.clone(), e));
            }
        }
    }
    if notes {
        #[derive(Serialize)]
        struct Section<'a> {
            open: &'a str,
            close: &'a str,
            release: &'a release::ReleaseView,
            problem: Option<&'a str>,
            assets: Vec<Listed<'a>>,
            unpublished: Vec<(&'a str, String)>,
            trail: String,
        }
        let section = render::release_section(&Section {
            open: NOTES_OPEN,
            close: NOTES_CLOSE,
            release: &shown.release,
            problem: shown.release.problem.as_deref(),
            assets: published.iter().map(listed).collect(),
            unpublished: failed
                .iter()
                .map(|(env, e)| (env.as_str(), e.to_string()))
                .collect(),
            // The head after this publication's own records.
            trail: render::trail(&memory.trail().await),
        });
        publisher.notes(tag, section.trim_end()).await?;
    }
    match failed.into_iter().next() {
        Some((env, e)) => Err(match JobError::from(e) {
            JobError::User(m) => JobError::User(format!("the {env} bundle of {tag}: {m}")),
            JobError::Transient(m, after) => {
                JobError::Transient(format!("the {env} bundle of {tag}: {m}"), after)
            }
            JobError::Bug(m) => JobError::Bug(format!("the {env} bundle of {tag}: {m}")),
        }),
        None => Ok(published),
    }
}

fn listed(p: &Published) -> Listed<'_> {
    let (fate, was) = match &p.fate {
        Fate::Kept => ("kept", None),
        Fate::Uploaded => ("uploaded", None),
        Fate::Replaced { was } => ("replaced", was.as_ref().map(|w| short(w))),
    };
    Listed {
        name: &p.name,
        fate,
        was,
    }
}

/// The first 12 hex digits of a SHA-256.
fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// Records a bundle put on the release (uploaded, or replacing other
/// content of its names) in the audit trail; a bundle kept as it was is
/// no event.
async fn audit(
    memory: &Memory,
    tag: &str,
    b: &Bundle,
    files: &[Published],
) -> Result<(), JobError> {
    if files.iter().all(|f| f.fate == Fate::Kept) {
        return Ok(());
    }
    let replaced: Vec<String> = files
        .iter()
        .filter_map(|f| match &f.fate {
            Fate::Replaced { was } => Some(format!(
                "{} (was sha256 {})",
                f.name,
                was.as_deref().unwrap_or("unknown")
            )),
            _ => None,
        })
        .collect();
    let outcome = if replaced.is_empty() {
        "uploaded"
    } else {
        "replaced"
    };
    let details = if replaced.is_empty() {
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        format!("published {}", names.join(", "))
    } else {
        format!("replaced {}: the tag's bundle changed", replaced.join(", "))
    };
    let entry = Entry {
        release: Some(tag.to_owned()),
        outcome: outcome.to_owned(),
        details: Some(details),
        ..exported(
            memory.entry("publish", Some(&b.manifest.environment), outcome),
            b,
        )
    };
    memory.audit(entry).await.map_err(JobError::from)
}

/// The bot's job for a tag: envgate.toml at the tag, and when the tag is a
/// release, its bundles built from the tag and published, under a lock
/// named `key` so two deliveries never publish at once.
pub async fn tag<R: RepoApi>(
    ctx: &Context<'_>,
    repo: &R,
    publisher: &impl Publisher,
    tag: &str,
    key: &str,
) -> Result<(), JobError> {
    let Some(config) = ctx.config_at(repo, tag).await? else {
        return Ok(());
    };
    let config = config.map_err(|e| JobError::User(format!("envgate.toml at {tag}: {e}")))?;
    if !tag_matches(&config.release_tags, tag) {
        tracing::info!(tag, pattern = %config.release_tags, "not a release tag");
        return Ok(());
    }
    let commit = repo.commit_of(tag).await?;
    let remote = ctx.remote(repo, &commit);
    locked(ctx.memory, ctx.holder, key, async {
        match build(&config, ctx.memory, &remote, &remote, tag).await? {
            Built::NotARelease(why) => {
                tracing::info!(tag, "{why}");
                Ok(())
            }
            Built::Release(shown) => {
                for w in &shown.warnings {
                    tracing::warn!("{w}");
                }
                publish(&shown, publisher, ctx.memory, true)
                    .await
                    .map(|_| ())
            }
        }
    })
    .await
}

/// Puts envgate's section into release notes, replacing an earlier one and
/// keeping everything else.
pub fn replace_section(body: &str, section: &str) -> String {
    if let (Some(a), Some(b)) = (body.find(NOTES_OPEN), body.find(NOTES_CLOSE))
        && a < b
    {
        let end = b + NOTES_CLOSE.len();
        return format!("{}{section}{}", &body[..a], &body[end..]);
    }
    if body.trim().is_empty() {
        section.to_owned()
    } else {
        format!("{}\n\n{section}", body.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_not_repeated() {
        let s1 = format!("{NOTES_OPEN}\nv1\n{NOTES_CLOSE}");
        let s2 = format!("{NOTES_OPEN}\nv2\n{NOTES_CLOSE}");
        let once = replace_section("Release notes by people.", &s1);
        assert_eq!(once, format!("Release notes by people.\n\n{s1}"));
        let twice = replace_section(&once, &s2);
        assert_eq!(twice, format!("Release notes by people.\n\n{s2}"));
        assert_eq!(replace_section("", &s1), s1);
    }
}
