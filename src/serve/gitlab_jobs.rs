//! The bot's work for GitLab: the matrix of a commit (a commit status
//! named `envgate`, and for a merge request one sticky note), and a release
//! tag's bundles (generic packages linked from the tag's release). Notes
//! with chat-ops commands run the shared [`Worker::command`].

use super::event::GlProject;
use super::jobs::{JobError, Worker};
use crate::core::check::Conclusion;
use crate::core::matrix;
use crate::core::release::tag_matches;
use crate::forge::{Stuck, Thread, gitlab, sticky};
use crate::ops::memory::Memory;
use crate::ops::observe::Observation;
use crate::ops::review::{self, PR_MARKER};
use crate::ops::{Output, exit, release};
use std::time::Duration;

/// The commit status envgate keeps.
const STATUS: &str = "envgate";

impl Worker {
    pub(super) fn project<'a>(&'a self, p: &'a GlProject) -> gitlab::Project<'a> {
        self.shared
            .gitlab
            .as_ref()
            .expect("GitLab jobs are checked for a GitLab client first")
            .project_at(&p.id.to_string(), &p.path)
    }

    pub(super) async fn gitlab_matrix(
        &self,
        memory: &Memory,
        p: &GlProject,
        sha: &str,
        merge_request: Option<u64>,
        branch: Option<&str>,
    ) -> Result<(), JobError> {
        let project = self.project(p);
        // The status is a convenience: GitLab refusing it (a fork's commit
        // it does not know a branch for) must not cost the note.
        let status = |state: &'static str, description: String| {
            let project = &project;
            async move {
                match project
                    .set_status(sha, branch, STATUS, state, &description)
                    .await
                {
                    Err(e @ crate::forge::ApiError::Transient { .. }) => Err(JobError::from(e)),
                    Err(e) => {
                        tracing::warn!("commit status not set: {e}");
                        Ok(())
                    }
                    Ok(()) => Ok(()),
                }
            }
        };
        let Some(config) = self.config_at(&project, sha).await? else {
            tracing::info!(project = %p.path, "no envgate.toml: nothing to do");
            return Ok(());
        };
        status("running", "reading every environment".into()).await?;
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                status("failed", format!("envgate.toml is not valid: {e}")).await?;
                return Ok(());
            }
        };
        let remote = self.remote_of(&project, sha);
        let obs = match Observation::observe(
            &config,
            memory,
            &remote,
            config.environments.iter().collect(),
        )
        .await
        {
            Ok(o) => o,
            Err(f) => {
                status(
                    "failed",
                    format!("cannot read the migrations: {}", f.message),
                )
                .await?;
                return Ok(());
            }
        };
        let (world, remembered) = (obs.world, obs.remembered);
        let m = matrix::compute(&world.discovery.migrations, &world.inputs(&remembered));
        for w in memory.after_status(&world.envs, &world.labels, &m).await {
            tracing::warn!("{w}");
        }
        let summary = review::summary(&world, &m);
        // GitLab has no neutral state: pending alone is not a failure.
        let state = match summary.conclusion {
            Conclusion::Failure => "failed",
            Conclusion::Success | Conclusion::Neutral => "success",
        };
        status(state, summary.title.clone()).await?;
        let Some(iid) = merge_request else {
            return Ok(());
        };
        let thread = project.thread(iid);
        let added = thread.added().await?;
        let body = review::pr_comment(&world, &m, &remembered, &added, sha, super::jobs::BOT);
        let key = format!("note:{}!{iid}", p.path);
        self.locked(memory, &key, async {
            if let Stuck::Superseded(head) = sticky(&thread, PR_MARKER, sha, &body).await? {
                tracing::info!(%head, "a newer commit is there: its job writes the note");
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn gitlab_tag(
        &self,
        memory: &Memory,
        p: &GlProject,
        tag: &str,
    ) -> Result<(), JobError> {
        let project = self.project(p);
        let Some(config) = self.config_at(&project, tag).await? else {
            return Ok(());
        };
        let config =
            config.map_err(|e| JobError::Permanent(format!("envgate.toml at {tag}: {e}")))?;
        if !tag_matches(&config.release_tags, tag) {
            tracing::info!(tag, pattern = %config.release_tags, "not a release tag");
            return Ok(());
        }
        let commit = project.commit_of(tag).await?;
        let remote = self.remote_of(&project, &commit);
        let key = format!("release:{}@{tag}", p.path);
        self.locked(memory, &key, async {
            let reply =
                match release::show(&config, memory, &remote, &remote, tag, Output::Json, false)
                    .await
                {
                    Ok(reply) => reply,
                    Err(f) if f.code == exit::REFUSED => {
                        tracing::info!(tag, "{}", f.message);
                        return Ok(());
                    }
                    Err(f) => return Err(JobError::Transient(f.message, Duration::from_secs(30))),
                };
            let files: Vec<(String, Vec<u8>)> = reply
                .bundles
                .iter()
                .flat_map(super::chat::bundle_files)
                .map(|(name, _, bytes)| (name, bytes))
                .collect();
            if !files.is_empty() {
                project.attach(tag, files).await?;
            }
            Ok(())
        })
        .await
    }
}
