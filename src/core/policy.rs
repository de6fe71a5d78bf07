//! Who may make an environment writable. An environment may name `admins`;
//! when its mode is switched to `managed` by someone who is not one of them
//! (or nobody recorded who switched it), envgate refuses to apply there
//! until an admin confirms the mode.

use super::mode::Mode;
use serde::Serialize;

/// The latest recorded mode of an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeRecord {
    pub mode: Mode,
    /// Who was running envgate when the change was first seen.
    pub actor: Option<String>,
    pub at: String,
    /// The configuration's git commit then.
    pub commit: Option<String>,
    /// The admin who confirmed this mode, if one did.
    pub confirmed_by: Option<String>,
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
    /// An admin must run `envgate mode confirm <env>` first.
    NeedsConfirmation(String),
}

/// Whether envgate may write to an environment now in `mode`, given its
/// admins and the latest mode record.
pub fn write_gate(mode: Mode, admins: &[String], latest: Option<&ModeRecord>) -> WriteGate {
    if admins.is_empty() || mode != Mode::Managed {
        return WriteGate::Open;
    }
    let Some(record) = latest.filter(|r| r.mode == Mode::Managed) else {
        return WriteGate::NeedsConfirmation("there is no record of who made it managed".into());
    };
    if record
        .confirmed_by
        .as_deref()
        .is_some_and(|c| is_admin(c, admins, &[]))
    {
        return WriteGate::Open;
    }
    match record.actor.as_deref() {
        Some(a) if is_admin(a, admins, &[]) => WriteGate::Open,
        Some(a) => WriteGate::NeedsConfirmation(format!(
            "it was made managed by {a}, who is not one of its admins ({})",
            admins.join(", ")
        )),
        None => WriteGate::NeedsConfirmation("there is no record of who made it managed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(actor: Option<&str>, confirmed: Option<&str>) -> ModeRecord {
        ModeRecord {
            mode: Mode::Managed,
            actor: actor.map(Into::into),
            at: "t".into(),
            commit: None,
            confirmed_by: confirmed.map(Into::into),
        }
    }

    #[test]
    fn admins_gate_managed_environments() {
        let admins = vec!["Alice".to_owned(), "@acme/dba".to_owned()];
        assert_eq!(write_gate(Mode::Managed, &[], None), WriteGate::Open);
        assert_eq!(write_gate(Mode::ExportOnly, &admins, None), WriteGate::Open);
        assert_eq!(
            write_gate(Mode::Managed, &admins, Some(&record(Some("alice"), None))),
            WriteGate::Open
        );
        assert_eq!(
            write_gate(Mode::Managed, &admins, Some(&record(Some("bob"), None))),
            WriteGate::NeedsConfirmation(
                "it was made managed by bob, who is not one of its admins (Alice, @acme/dba)"
                    .into()
            )
        );
        assert_eq!(
            write_gate(
                Mode::Managed,
                &admins,
                Some(&record(Some("bob"), Some("alice")))
            ),
            WriteGate::Open
        );
        assert!(matches!(
            write_gate(Mode::Managed, &admins, None),
            WriteGate::NeedsConfirmation(_)
        ));
        assert!(matches!(
            write_gate(Mode::Managed, &admins, Some(&record(None, None))),
            WriteGate::NeedsConfirmation(_)
        ));
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
