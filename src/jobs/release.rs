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
use crate::core::bundle::Bundle;
use crate::core::release::tag_matches;
use crate::forge::ApiError;
use crate::ops::exit;
use crate::ops::memory::Memory;
use crate::ops::release::{self, Shown};
use crate::ops::source::Source;
use crate::ops::world::Reader;
use crate::render;
use serde::Serialize;

/// Where envgate's section of release notes starts and ends.
pub const NOTES_OPEN: &str = "<!-- envgate:release -->";
pub const NOTES_CLOSE: &str = "<!-- /envgate:release -->";

/// One file of a bundle.
#[derive(Clone, Debug)]
pub struct BundleFile {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A bundle's files: its SQL, then its manifest.
pub fn files(b: &Bundle) -> [BundleFile; 2] {
    [
        BundleFile {
            name: format!("{}.sql", b.stem),
            content_type: "application/sql",
            bytes: b.sql.clone().into_bytes(),
        },
        BundleFile {
            name: format!("{}.manifest.json", b.stem),
            content_type: "application/json",
            bytes: render::json(&b.manifest).into_bytes(),
        },
    ]
}

/// Where a forge keeps a release's files.
#[allow(async_fn_in_trait)]
pub trait Publisher {
    /// Attaches one bundle's files to the tag's release (created when the
    /// forge needs one); the files' names and download links.
    async fn publish(
        &self,
        tag: &str,
        files: Vec<BundleFile>,
    ) -> Result<Vec<(String, Option<String>)>, ApiError>;
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
        Ok(shown) => Ok(Built::Release(Box::new(shown))),
        Err(f) if f.code == exit::REFUSED => Ok(Built::NotARelease(f.message)),
        Err(f) => Err(JobError::from(f)),
    }
}

/// Publishes every bundle of a built release, then (with `notes`)
/// envgate's section of the release notes; the names of the files.
pub async fn publish(
    shown: &Shown,
    publisher: &impl Publisher,
    notes: bool,
) -> Result<Vec<String>, JobError> {
    let tag = &shown.release.tag;
    let mut names = Vec::new();
    for b in &shown.built {
        for (name, _) in publisher.publish(tag, files(b).into()).await? {
            names.push(name);
        }
    }
    if notes {
        #[derive(Serialize)]
        struct Section<'a> {
            open: &'a str,
            close: &'a str,
            release: &'a release::ReleaseView,
            problem: Option<&'a str>,
            assets: &'a [String],
        }
        let section = render::release_section(&Section {
            open: NOTES_OPEN,
            close: NOTES_CLOSE,
            release: &shown.release,
            problem: shown.release.problem.as_deref(),
            assets: &names,
        });
        publisher.notes(tag, section.trim_end()).await?;
    }
    Ok(names)
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
                publish(&shown, publisher, true).await.map(|_| ())
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
