//! lemlist ids: a type prefix (`cam_`, `usm_`, …) followed by 17 ASCII letters and digits.
//! Parsing them at the edge means a malformed id never reaches a lemlist URL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

const BODY_LEN: usize = 17;

/// Why a string is not a valid lemlist id. The message is safe to show to a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {shown:?}: expected `{prefix}` followed by 17 letters or digits")]
pub struct InvalidId {
    kind: &'static str,
    prefix: &'static str,
    shown: String,
}

fn check(raw: &str, kind: &'static str, prefix: &'static str) -> Result<(), InvalidId> {
    let ok = raw
        .strip_prefix(prefix)
        .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        // Echo at most a short prefix of what was sent: enough to recognise, never a dump.
        let shown: String = raw.chars().take(40).collect();
        Err(InvalidId { kind, prefix, shown })
    }
}

macro_rules! lemlist_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check(s, $kind, $prefix).map(|()| Self(s.to_owned()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

lemlist_id!(
    /// A campaign (`cam_…`).
    CampaignId, "campaign", "cam_"
);
lemlist_id!(
    /// A user (`usr_…`).
    UserId, "user", "usr_"
);
lemlist_id!(
    /// A sending mailbox (`usm_…`).
    MailboxId, "mailbox", "usm_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prefix_and_seventeen_alphanumerics() {
        let id: CampaignId = "cam_4HrZbi8xsez4QlrnL".parse().unwrap();
        assert_eq!(id.as_str(), "cam_4HrZbi8xsez4QlrnL");
        assert!("usm_2mkqJNUjnJQiyVBht".parse::<MailboxId>().is_ok());
    }

    #[test]
    fn rejects_wrong_prefix_length_and_characters() {
        for bad in [
            "",
            "cam_",
            "usm_4HrZbi8xsez4QlrnL",
            "cam_4HrZbi8xsez4Qlrn",
            "cam_4HrZbi8xsez4QlrnLL",
            "cam_4HrZbi8xsez4Qlr/L",
            "cam_../../team/abcdefg",
            "cam_4HrZbi8xsez4QlrnÉ",
        ] {
            assert!(bad.parse::<CampaignId>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn error_message_names_the_kind_and_truncates_input() {
        let long = format!("cam_{}", "x".repeat(500));
        let err = long.parse::<CampaignId>().unwrap_err().to_string();
        assert!(err.starts_with("invalid campaign id"));
        assert!(err.len() < 150, "{err}");
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<UserId>("\"usr_eSrHPSoL9QVPUOsho\"").is_ok());
        assert!(serde_json::from_str::<UserId>("\"nope\"").is_err());
    }
}
