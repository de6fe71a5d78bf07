//! The releases of a project, read from its history: each release tag's
//! own tree gives its migrations (ids, content, order), and comparing it
//! with the previous release's tree gives what it added and changed.

use super::source::{History, Snapshot, Source};
use crate::config::Config;
use crate::core::migration::Migration;
use crate::core::release::{self, Change, Release, TagChanges};
use crate::core::sql::Dialect;
use std::collections::HashMap;

/// Every release, with the migrations each tag holds.
pub struct Catalog {
    pub releases: Vec<Release>,
    /// The migrations at each release tag, by tag. Only the tag asked to be
    /// kept keeps its SQL; the others keep ids, files and hashes (enough
    /// for progress).
    pub at: HashMap<String, Vec<Migration>>,
}

impl Catalog {
    pub fn get(&self, tag: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.tag == tag)
    }

    /// The migrations at a release's tag.
    pub fn migrations(&self, tag: &str) -> &[Migration] {
        self.at.get(tag).map_or(&[], Vec::as_slice)
    }
}

/// Whether a tag is a semantic-version pre-release (`v2.4.0-rc.1`).
fn is_prerelease(tag: &str, pattern: &str) -> bool {
    release::tag_version(tag, pattern).is_some_and(|v| !v.pre.is_empty())
}

/// Reads every release. `keep`: the tag whose migrations keep their SQL.
pub async fn load<S: Source>(
    history: &History<'_, S>,
    config: &Config,
    dialect: Option<Dialect>,
    keep: Option<&str>,
) -> Result<Catalog, String> {
    let pattern = &config.release_tags;
    let src = history.source();
    let mut tags = src.tags(pattern).await?;
    release::sort_tags(&mut tags, pattern);
    let mut explicit: HashMap<String, Vec<String>> = config.releases.clone().into_iter().collect();
    for tag in &tags {
        let file = format!("releases/{tag}.toml");
        if let Some(text) = src.read(&file).await? {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Listed {
                migrations: Vec<String>,
            }
            let listed: Listed =
                toml::from_str(&text).map_err(|e| format!("{file}: {}", e.message()))?;
            explicit.insert(tag.clone(), listed.migrations);
        }
    }
    let mut changes = Vec::with_capacity(tags.len());
    let mut at = HashMap::with_capacity(tags.len());
    // The previous tag's files (path → blob), and the previous final
    // release's.
    let mut previous: Option<HashMap<String, String>> = None;
    let mut previous_final: Option<HashMap<String, String>> = None;
    for tag in &tags {
        let Snapshot { entries, discovery } = history.at(tag, dialect).await?;
        let prerelease = is_prerelease(tag, pattern);
        let blobs: HashMap<String, String> =
            entries.into_iter().map(|e| (e.path, e.blob)).collect();
        let base = if prerelease {
            previous.as_ref()
        } else {
            previous_final.as_ref()
        };
        let mut added = Vec::new();
        let mut modified = Vec::new();
        for m in &discovery.migrations {
            let path = &m.up.path;
            let change = Change {
                path: path.clone(),
                id: m.id().to_owned(),
            };
            match base.and_then(|b| b.get(path)) {
                None => added.push(change),
                Some(before) if blobs.get(path) != Some(before) => modified.push(change),
                Some(_) => {}
            }
        }
        changes.push(TagChanges {
            tag: tag.clone(),
            prerelease,
            order: discovery
                .migrations
                .iter()
                .map(|m| m.id().to_owned())
                .collect(),
            added,
            modified,
        });
        let mut migrations = discovery.migrations;
        if keep != Some(tag.as_str()) {
            for m in &mut migrations {
                m.up.sql = String::new();
                if let Some(d) = &mut m.down {
                    d.sql = String::new();
                }
            }
        }
        at.insert(tag.clone(), migrations);
        if !prerelease {
            previous_final = Some(blobs.clone());
        }
        previous = Some(blobs);
    }
    Ok(Catalog {
        releases: release::releases(&changes, &explicit),
        at,
    })
}

/// Why a tag is not a release, or that there is no such tag.
pub async fn not_found<S: Source>(
    src: &S,
    config: &Config,
    catalog: &Catalog,
    tag: &str,
) -> String {
    if src.tag_exists(tag).await {
        format!(
            "tag {tag} is not a release: release tags match '{}'",
            config.release_tags
        )
    } else {
        let known: Vec<&str> = catalog.releases.iter().map(|r| r.tag.as_str()).collect();
        format!(
            "no release {tag}: there is no such tag (releases: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    }
}
