//! A pull or merge request that loosens an environment (see
//! [`crate::core::loosening`]) waits for one of its admins: the
//! `envgate/mode` check (a check run, a commit status) fails until one
//! approves, and the sticky note says which environment changes how and
//! who may approve. Written once for both forges: they say who approved
//! ([`Approvals`]) and carry the check ([`ModeCheck`]).

use super::remote::RepoApi;
use super::{Context, JobError};
use crate::core::loosening::{self, Verdict};
use crate::forge::ApiError;
use crate::render;
use serde::Serialize;

/// The check's name, on both forges.
pub const CHECK: &str = "envgate/mode";

/// Who approved a request, as the forge says.
#[allow(async_fn_in_trait)]
pub trait Approvals {
    /// The logins approving the request at commit `head`.
    async fn approvers(&self, head: &str) -> Result<Vec<String>, ApiError>;
    /// Whether `login` is a member of `team` (`org/team`, `group/sub`).
    async fn member_of(&self, login: &str, team: &str) -> Result<bool, ApiError>;
}

/// Where the verdict goes.
#[allow(async_fn_in_trait)]
pub trait ModeCheck {
    async fn report(&self, verdict: &Verdict, text: &str) -> Result<(), ApiError>;
}

/// Reviews the request's envgate.toml at `head` against its target branch
/// `base`: the check reported, and the note's section when an environment
/// is loosened. A configuration that does not parse on either side is the
/// main check's to report: nothing here then.
pub async fn review<R: RepoApi>(
    ctx: &Context<'_>,
    repo: &R,
    base: &str,
    head: &str,
    approvals: &impl Approvals,
    check: &impl ModeCheck,
    request: &str,
) -> Result<Option<String>, JobError> {
    let Some(Ok(after)) = ctx.config_at(repo, head).await? else {
        return Ok(None);
    };
    let before = match ctx.config_at(repo, base).await? {
        Some(Ok(c)) => c,
        Some(Err(_)) => return Ok(None),
        None => return Ok(judge(None, &after, head, approvals, check, request).await?),
    };
    Ok(judge(Some(&before), &after, head, approvals, check, request).await?)
}

/// Judges a request's configuration (`after`, at commit `head`) against
/// its target branch's (`before`; None when the branch has no
/// envgate.toml yet, so nothing is loosened): the check reported, and the
/// note's section when an environment is loosened.
pub async fn judge(
    before: Option<&crate::config::Config>,
    after: &crate::config::Config,
    head: &str,
    approvals: &impl Approvals,
    check: &impl ModeCheck,
    request: &str,
) -> Result<Option<String>, ApiError> {
    let before = before.map(crate::config::policies).unwrap_or_default();
    let loosened = loosening::loosenings(&before, &crate::config::policies(after));
    let approvers = if loosened.is_empty() {
        Vec::new()
    } else {
        approvals.approvers(head).await?
    };
    // Team entries among the admins: ask the forge about each approver.
    let mut teams = Vec::new();
    for team in loosened
        .iter()
        .flat_map(|l| l.admins.iter())
        .filter_map(|a| a.strip_prefix('@'))
    {
        for who in &approvers {
            if approvals.member_of(who, team).await? {
                teams.push((who.clone(), team.to_owned()));
            }
        }
    }
    let verdict = loosening::verdict(loosened, &approvers, &teams);
    let section = (!verdict.envs.is_empty()).then(|| section(&verdict, request));
    check
        .report(&verdict, section.as_deref().unwrap_or(""))
        .await?;
    Ok(section)
}

/// The note's section: each loosened environment, its changes, who may
/// approve and who did.
pub fn section(v: &Verdict, request: &str) -> String {
    #[derive(Serialize)]
    struct View<'a> {
        v: &'a Verdict,
        changes: Vec<String>,
        request: &'a str,
        github: bool,
    }
    render::mode_review(&View {
        v,
        changes: v
            .envs
            .iter()
            .map(|j| {
                j.loosened
                    .changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect(),
        request,
        github: request == "pull request",
    })
}
