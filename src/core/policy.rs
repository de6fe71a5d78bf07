//! Who may make an environment writable. An environment may name `admins`;
//! when it was made `managed` and no admin stands behind that — none
//! approved the request that made it (as the forge reports), confirmed it,
//! or acts on it now — envgate refuses to write there. One rule for every
//! write: `apply`, `promote`, `rollback` and `drift accept` all ask
//! [`write_gate`].

use super::identity::Actor;
use super::mode::Mode;
use serde::Serialize;

/// The latest recorded mode of an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeRecord {
    pub mode: Mode,
    /// Who made the change, as far as envgate knows.
    pub actor: Option<String>,
    /// How that is known (an identity source, see
    /// [`crate::core::identity::Source::text`]).
    pub source: Option<String>,
    /// Who approved the request that made the change, from the forge.
    pub approvers: Vec<String>,
    pub at: String,
    /// The configuration's git commit then.
    pub commit: Option<String>,
    /// The admin who confirmed this mode, if one did.
    pub confirmed_by: Option<String>,
}

impl ModeRecord {
    /// Whether the forge (or a CI runner) vouches for who made it.
    fn verified(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| !s.starts_with("unverified"))
    }
}

/// Whether `actor` is one of `admins`. Entries are logins (compared without
/// case) or `@org/team`; teams are resolved by the forge, so the command
/// line only matches logins.
pub fn is_admin(actor: &str, admins: &[String], teams: &[String]) -> bool {
    admins.iter().any(|a| match a.strip_prefix('@') {
        Some(team) => teams.iter().any(|t| t.eq_ignore_ascii_case(team)),
        None => a.eq_ignore_ascii_case(actor),
    })
}

/// Whether the mode resolved now differs from the one last recorded.
pub fn mode_changed(previous: Option<&ModeRecord>, current: Mode) -> bool {
    previous.is_none_or(|p| p.mode != current)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteGate {
    Open,
    /// Open because the admin acting now stands behind the mode: their
    /// write confirms it (recorded, as `mode confirm` would).
    OpenConfirming,
    /// An admin must approve, confirm or act; why not yet.
    NeedsConfirmation(String),
}

/// Whether `acting` may write to an environment now in `mode`, given its
/// admins and the latest mode record. `teams`: the acting actor's teams,
/// where the forge says.
pub fn write_gate(
    mode: Mode,
    admins: &[String],
    latest: Option<&ModeRecord>,
    acting: &Actor,
    teams: &[String],
) -> WriteGate {
    if admins.is_empty() || mode != Mode::Managed {
        return WriteGate::Open;
    }
    let admin = |who: &str| is_admin(who, admins, &[]);
    let record = latest.filter(|r| r.mode == Mode::Managed);
    if let Some(r) = record {
        let confirmed = r.confirmed_by.as_deref().is_some_and(admin);
        let approved = r.approvers.iter().any(|a| admin(a));
        let made_by_admin = r.verified() && r.actor.as_deref().is_some_and(admin);
        if confirmed || approved || made_by_admin {
            return WriteGate::Open;
        }
    }
    if is_admin(&acting.name, admins, teams) {
        return WriteGate::OpenConfirming;
    }
    let list = admins.join(", ");
    WriteGate::NeedsConfirmation(
        match record.and_then(|r| r.actor.as_deref().map(|a| (r, a))) {
            Some((r, a)) if admin(a) => format!(
                "it was made managed by {a}{}, and no admin approved or confirmed it ({list})",
                r.source
                    .as_deref()
                    .map_or(String::new(), |s| format!(" ({s})"))
            ),
            Some((_, a)) => {
                format!("it was made managed by {a}, who is not one of its admins ({list})")
            }
            None => "there is no record of an admin approving it".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::identity::Source;

    fn record(actor: Option<&str>, source: Option<&str>) -> ModeRecord {
        ModeRecord {
            mode: Mode::Managed,
            actor: actor.map(Into::into),
            source: source.map(Into::into),
            approvers: Vec::new(),
            at: "t".into(),
            commit: None,
            confirmed_by: None,
        }
    }

    /// The gate does not care which command asks, nor whether a read
    /// recorded the mode change before: the same record and the same actor
    /// give the same answer.
    #[test]
    fn one_gate_for_every_write() {
        let admins = vec!["Alice".to_owned(), "@acme/dba".to_owned()];
        let alice = Actor::new("alice", Source::Flag);
        let bob = Actor::new("bob", Source::Flag);
        let confirmed = ModeRecord {
            confirmed_by: Some("alice".into()),
            ..record(
                Some("bob"),
                Some("unverified: git history, author of commit c1"),
            )
        };
        let approved = ModeRecord {
            approvers: vec!["ALICE".into()],
            ..record(Some("bob"), Some("forge review: acme/shop#7"))
        };
        /// (case, mode, admins, latest record, acting, the gate)
        type Case<'a> = (
            &'a str,
            Mode,
            &'a [String],
            Option<ModeRecord>,
            &'a Actor,
            WriteGate,
        );
        let cases: Vec<Case> = vec![
            ("no admins", Mode::Managed, &[], None, &bob, WriteGate::Open),
            ("not managed", Mode::ExportOnly, &admins, None, &bob, WriteGate::Open),
            ("an admin approved the request", Mode::Managed, &admins, Some(approved), &bob, WriteGate::Open),
            ("an admin confirmed", Mode::Managed, &admins, Some(confirmed), &bob, WriteGate::Open),
            (
                "made managed through CI by an admin",
                Mode::Managed,
                &admins,
                Some(record(Some("alice"), Some("github-actions: https://github.com/acme/shop/actions/runs/1"))),
                &bob,
                WriteGate::Open,
            ),
            (
                "an admin acting on an unattributed change",
                Mode::Managed,
                &admins,
                Some(record(None, Some("unverified: nobody recorded"))),
                &alice,
                WriteGate::OpenConfirming,
            ),
            (
                "an admin acting where nothing was recorded",
                Mode::Managed,
                &admins,
                None,
                &alice,
                WriteGate::OpenConfirming,
            ),
            (
                "someone else, after an unattributed change",
                Mode::Managed,
                &admins,
                Some(record(None, None)),
                &bob,
                WriteGate::NeedsConfirmation("there is no record of an admin approving it".into()),
            ),
            (
                "someone else, after a change by a non-admin",
                Mode::Managed,
                &admins,
                Some(record(Some("bob"), Some("unverified: git history, author of commit c1"))),
                &bob,
                WriteGate::NeedsConfirmation(
                    "it was made managed by bob, who is not one of its admins (Alice, @acme/dba)".into(),
                ),
            ),
            (
                "a commit claiming an admin as author is not enough",
                Mode::Managed,
                &admins,
                Some(record(Some("alice"), Some("unverified: git history, author of commit c1"))),
                &bob,
                WriteGate::NeedsConfirmation(
                    "it was made managed by alice (unverified: git history, author of commit c1), and no admin approved or confirmed it (Alice, @acme/dba)".into(),
                ),
            ),
        ];
        for (case, mode, admins, latest, acting, want) in cases {
            assert_eq!(
                write_gate(mode, admins, latest.as_ref(), acting, &[]),
                want,
                "{case}"
            );
        }
        let dba = Actor::new("carol", Source::GitHub);
        assert_eq!(
            write_gate(Mode::Managed, &admins, None, &dba, &["acme/dba".into()]),
            WriteGate::OpenConfirming,
            "a member of an admin team"
        );
        assert!(is_admin("x", &admins, &["acme/dba".to_owned()]));
        assert!(!is_admin("x", &admins, &["acme/web".to_owned()]));
    }

    #[test]
    fn changes_are_seen() {
        assert!(mode_changed(None, Mode::Managed));
        assert!(!mode_changed(Some(&record(None, None)), Mode::Managed));
        assert!(mode_changed(Some(&record(None, None)), Mode::ExportOnly));
    }
}
