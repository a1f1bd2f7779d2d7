//! The two dashboards of the legacy contract: pure functions from lemlist data to the rows the
//! front end shows ([`campaigns`], [`mailboxes`]), and the plan that fetches that data with as
//! few calls as the rules allow ([`fetch`]).
//!
//! Nothing is dropped: a row whose data could not be fetched stays in the array and names what
//! is missing in an additive `missing` field; the dashboard as a whole lists it too.

pub mod campaigns;
pub mod fetch;
pub mod leads;
pub mod mailboxes;

pub use campaigns::{CampaignRow, CampaignStatus, campaigns_dashboard};
pub use fetch::{Reads, Roots, TeamData, fetch};
pub use mailboxes::{MailboxFacts, MailboxRow, MailboxStatus, mailboxes_dashboard, mailboxes_facts};

/// A dashboard and what could not be fetched for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard<R> {
    pub rows: Vec<R>,
    /// One entry per resource that could not be fetched after retries, e.g.
    /// `leads of cam_…: lemlist answered 503 …`. Empty when the dashboard is complete.
    pub missing: Vec<String>,
}

/// A campaign's name as the dashboards show it.
pub fn display_name(name: Option<&str>) -> String {
    name.unwrap_or("Unnamed Campaign").to_owned()
}
