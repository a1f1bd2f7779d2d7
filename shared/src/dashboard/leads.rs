//! The lead rules both dashboards share, and [`LeadFigures`]: all that either dashboard takes
//! from a campaign's lead export, small enough to keep between refreshes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::lemlist::Lead;

/// What the dashboards take from one campaign's lead export: the figures of its row, and
/// whether it keeps its senders busy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadFigures {
    /// Leads that are not paused (`people_count`).
    pub live: u64,
    /// Distinct companies of those leads (`companies_count`).
    pub companies: u64,
    /// One of them can still be sent to.
    pub sendable: bool,
    /// Why the rows cannot be judged ([`states_absent`]); the figures above are then zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_absent: Option<String>,
}

impl LeadFigures {
    pub fn of(leads: &[Lead]) -> Self {
        if let Some(reason) = states_absent(leads) {
            return Self { states_absent: Some(reason), ..Self::default() };
        }
        let companies: HashSet<&str> = live(leads).filter_map(company).collect();
        Self {
            live: live(leads).count() as u64,
            companies: companies.len() as u64,
            sendable: has_sendable(leads),
            states_absent: None,
        }
    }
}

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

/// Why a campaign's lead rows cannot be judged by the rules above, if they cannot: more than
/// one row in twenty carries neither `state` nor `stateSystem` (lemlist's documented export
/// shape has `lastState`/`status` instead). Such rows would otherwise count as not paused and
/// not sendable, silently. The reason names the fields the rows did carry.
pub fn states_absent(leads: &[Lead]) -> Option<String> {
    let absent: Vec<&Lead> = leads.iter().filter(|l| l.state.is_none() && l.state_system.is_none()).collect();
    if absent.is_empty() || absent.len() * 20 <= leads.len() {
        return None;
    }
    let mut seen = std::collections::BTreeSet::new();
    for lead in &absent {
        let typed = [
            ("_id", lead.id.is_some()),
            ("email", lead.email.is_some()),
            ("companyName", lead.company_name.is_some()),
            ("company", lead.company.is_some()),
            ("lastState", lead.last_state.is_some()),
            ("status", lead.status.is_some()),
        ];
        seen.extend(typed.iter().filter(|(_, present)| *present).map(|(name, _)| *name));
        seen.extend(lead.extra.keys().map(String::as_str));
    }
    let mut fields: Vec<&str> = seen.into_iter().take(12).collect();
    if fields.len() == 12 {
        fields.push("…");
    }
    Some(format!(
        "lead states absent from lemlist's export ({} of {} rows have neither state nor stateSystem; fields seen: {})",
        absent.len(),
        leads.len(),
        fields.join(", ")
    ))
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
    fn figures_count_live_leads_and_their_companies_and_say_when_rows_cannot_be_judged() {
        let leads = [
            lead("emailsSent", Some("inProgress"), Some(" Acme "), None),
            lead("emailsOpened", Some("done"), Some("Acme"), None),
            lead("paused", Some("inProgress"), Some("Paused Co"), None),
            lead("done", Some("done"), None, Some("Globex")),
        ];
        let figures = LeadFigures::of(&leads);
        assert_eq!((figures.live, figures.companies, figures.sendable), (3, 2, true));
        assert!(!LeadFigures::of(&leads[1..]).sendable, "only a paused lead is in progress");
        let documented = Lead { state: None, state_system: None, ..lead("x", None, Some("A"), None) };
        let unjudged = LeadFigures::of(&[documented.clone(), documented]);
        assert!(unjudged.states_absent.is_some());
        assert_eq!((unjudged.live, unjudged.companies, unjudged.sendable), (0, 0, false));
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
    fn rows_in_the_documented_shape_have_no_state_to_judge() {
        let documented = |i: usize| Lead {
            state: None,
            state_system: None,
            last_state: Some("emailsSent".into()),
            status: Some("done".into()),
            id: Some(format!("lea_{i}")),
            ..lead("x", None, None, None)
        };
        let all: Vec<Lead> = (0..4).map(documented).collect();
        let reason = states_absent(&all).expect("no row has a state");
        assert!(reason.starts_with("lead states absent from lemlist's export (4 of 4 rows"), "{reason}");
        assert!(reason.contains("fields seen: _id, lastState, status"), "{reason}");
        let mut mostly_real: Vec<Lead> =
            (0..40).map(|_| lead("emailsSent", Some("done"), None, None)).collect();
        mostly_real.push(documented(0));
        assert_eq!(states_absent(&mostly_real), None, "one stray row in 41 is tolerated");
        mostly_real.extend((1..4).map(documented));
        assert!(states_absent(&mostly_real).is_some(), "4 of 44 is more than a small share");
        assert_eq!(states_absent(&[]), None);
    }

    #[test]
    fn company_falls_back_only_when_company_name_is_absent() {
        assert_eq!(company(&lead("x", None, Some("  Acme "), Some("Other"))), Some("Acme"));
        assert_eq!(company(&lead("x", None, None, Some(" Globex"))), Some("Globex"));
        assert_eq!(company(&lead("x", None, Some("   "), Some("Other"))), None);
        assert_eq!(company(&lead("x", None, None, None)), None);
    }
}
