//! The lead rules both dashboards share.

use crate::lemlist::Lead;

/// A lead is paused when either its state or its system state says so.
pub fn is_paused(lead: &Lead) -> bool {
    lead.state.as_deref() == Some("paused") || lead.state_system.as_deref() == Some("paused")
}

/// A lead lemlist can still send to: ready to send (by state or system state) or in progress.
pub fn is_sendable(lead: &Lead) -> bool {
    lead.state.as_deref() == Some("readyToSend")
        || matches!(lead.state_system.as_deref(), Some("readyToSend" | "inProgress"))
}

/// The leads that are not paused.
pub fn live(leads: &[Lead]) -> impl Iterator<Item = &Lead> {
    leads.iter().filter(|l| !is_paused(l))
}

/// A campaign still has work to do when one of its live leads is sendable.
pub fn has_sendable(leads: &[Lead]) -> bool {
    live(leads).any(is_sendable)
}

/// The lead's company, trimmed: `companyName`, or `company` when `companyName` is absent.
pub fn company(lead: &Lead) -> Option<&str> {
    lead.company_name.as_deref().or(lead.company.as_deref()).map(str::trim).filter(|c| !c.is_empty())
}

#[cfg(test)]
pub(crate) fn lead(
    state: &str,
    system: Option<&str>,
    company_name: Option<&str>,
    company: Option<&str>,
) -> Lead {
    Lead {
        id: None,
        email: None,
        company_name: company_name.map(str::to_owned),
        company: company.map(str::to_owned),
        state: Some(state.to_owned()),
        state_system: system.map(str::to_owned),
        last_state: None,
        status: None,
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_in_either_field_wins_over_in_progress() {
        assert!(is_paused(&lead("paused", Some("inProgress"), None, None)));
        assert!(is_paused(&lead("emailsOpened", Some("paused"), None, None)));
        assert!(!is_paused(&lead("emailsSent", Some("inProgress"), None, None)));
        let leads = [lead("paused", Some("inProgress"), None, None)];
        assert!(!has_sendable(&leads), "a paused lead in progress does not keep a campaign busy");
    }

    #[test]
    fn sendable_by_state_or_system_state() {
        assert!(is_sendable(&lead("readyToSend", None, None, None)));
        assert!(is_sendable(&lead("emailsOpened", Some("readyToSend"), None, None)));
        assert!(is_sendable(&lead("emailsSent", Some("inProgress"), None, None)));
        assert!(
            !is_sendable(&lead("inProgress", Some("done"), None, None)),
            "inProgress counts in stateSystem only"
        );
    }

    #[test]
    fn company_falls_back_only_when_company_name_is_absent() {
        assert_eq!(company(&lead("x", None, Some("  Acme "), Some("Other"))), Some("Acme"));
        assert_eq!(company(&lead("x", None, None, Some(" Globex"))), Some("Globex"));
        assert_eq!(company(&lead("x", None, Some("   "), Some("Other"))), None);
        assert_eq!(company(&lead("x", None, None, None)), None);
    }
}
