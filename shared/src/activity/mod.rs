//! What the dashboards and mailbox health both stand on: the activity lemlist reports, as the
//! sets of distinct leads per campaign and stream ([`seen`]), as daily counts per campaign and
//! sender ([`ledger`]), and the rates and windows they are shown in ([`rate`], [`window`]).
//! Nothing here knows a dashboard or an alert.

pub mod ledger;
pub mod rate;
pub mod seen;
pub mod window;

pub use rate::{percent, round2};
pub use seen::{Feed, Seen, Stream};
pub use window::{Performance, Window, first_day};
