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
pub use fetch::{TeamData, fetch};
pub use mailboxes::{MailboxFacts, MailboxRow, MailboxStatus, mailboxes_dashboard, mailboxes_facts};

/// A dashboard and what could not be fetched for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard<R> {
    pub rows: Vec<R>,
    /// One entry per resource that could not be fetched after retries, e.g.
    /// `leads of cam_…: lemlist answered 503 …`. Empty when the dashboard is complete.
    pub missing: Vec<String>,
}

/// `part / whole` as a percentage rounded to two decimals; 0 when `whole` is 0.
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 / whole as f64 * 100.0 * 100.0).round() / 100.0 }
}

/// A campaign's name as the dashboards show it.
pub fn display_name(name: Option<&str>) -> String {
    name.unwrap_or("Unnamed Campaign").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_to_two_decimals_and_handles_zero() {
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(2, 3), 66.67);
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(5, 5), 100.0);
    }
}
