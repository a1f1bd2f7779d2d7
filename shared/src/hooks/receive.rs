//! The checks of one delivery, in the order the receiver makes them: the body's size, the path
//! token, the body's secret (both compared in constant time, by their hashes), the team, the
//! type; then the activity itself. The secret is removed from the body before anything is kept
//! or logged. Each rejection has a reason, counted, and a status that tells an outsider nothing
//! (a wrong token or secret is a 404, as if the route did not exist).

use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{Registered, digest, use_of};
use crate::lemlist::Activity;

/// The largest body taken: a reply's `text` and `html` can be long, but not this long.
pub const MAX_BODY: usize = 256 * 1024;

/// Why a delivery was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Over [`MAX_BODY`]: 413, nothing read.
    TooLarge,
    /// No hook has this path token, or the path names a type lemdash does not register: 404.
    UnknownToken,
    /// The body's `secret` is absent or wrong: 404.
    BadSecret,
    /// Not a JSON object: no secret can be read, so a 404 as for a wrong one (a different
    /// answer would tell the caller that the token is right); counted apart.
    Malformed,
    /// Another team's event: 200, dropped.
    OtherTeam,
    /// The body's type is not the hook's: 200, dropped.
    WrongType,
    /// No `_id` (nothing to de-duplicate by) or an absurdly long one, or not an activity
    /// record: 200, dropped.
    NotAnActivity,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Self::TooLarge,
        Self::UnknownToken,
        Self::BadSecret,
        Self::Malformed,
        Self::OtherTeam,
        Self::WrongType,
        Self::NotAnActivity,
    ];

    /// The answer's status: a dropped event is still a 200, so that lemlist does not retry it.
    pub fn status(self) -> u16 {
        match self {
            Self::TooLarge => 413,
            Self::UnknownToken | Self::BadSecret | Self::Malformed => 404,
            Self::OtherTeam | Self::WrongType | Self::NotAnActivity => 200,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::UnknownToken => "unknown_token",
            Self::BadSecret => "bad_secret",
            Self::Malformed => "malformed",
            Self::OtherTeam => "other_team",
            Self::WrongType => "wrong_type",
            Self::NotAnActivity => "not_an_activity",
        }
    }
}

/// A delivery that passed every check: the activity, and its body without the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub activity: Activity,
    pub body: String,
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The first check: before anything else is read.
pub fn within_cap(len: usize) -> Result<(), Rejection> {
    if len > MAX_BODY { Err(Rejection::TooLarge) } else { Ok(()) }
}

/// The checks after the size: `registered` is what the store holds for the path token's hash
/// (`None`: no such hook).
pub fn check(
    registered: Option<&Registered>,
    token: &str,
    path_kind: &str,
    body: &[u8],
) -> Result<Accepted, Rejection> {
    within_cap(body.len())?;
    let hook = registered
        .filter(|r| use_of(path_kind).is_some() && same(&digest(token), &r.token_hash))
        .ok_or(Rejection::UnknownToken)?;
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(Rejection::Malformed);
    };
    let secret = fields.remove("secret");
    let secret = secret.as_ref().and_then(Value::as_str).unwrap_or_default();
    if !same(&digest(secret), &hook.secret_hash) {
        return Err(Rejection::BadSecret);
    }
    if fields.get("teamId").and_then(Value::as_str) != Some(hook.team_id.as_str()) {
        return Err(Rejection::OtherTeam);
    }
    if hook.kind != path_kind || fields.get("type").and_then(Value::as_str) != Some(path_kind) {
        return Err(Rejection::WrongType);
    }
    let body = Value::Object(fields);
    let activity: Activity = serde_json::from_value(body.clone()).map_err(|_| Rejection::NotAnActivity)?;
    if activity.id.is_empty() || activity.id.len() > super::dynamo::MAX_ID_LEN {
        return Err(Rejection::NotAnActivity);
    }
    Ok(Accepted { activity, body: body.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook() -> Registered {
        Registered {
            kind: "emailsSent".into(),
            token_hash: digest("tok"),
            secret_hash: digest("s3cret"),
            team_id: "tea_1".into(),
        }
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn sent() -> Value {
        json!({"_id": "act_1", "type": "emailsSent", "teamId": "tea_1", "createdAt": "2026-11-30T10:00:00.000Z",
            "campaignId": "cam_1", "leadId": "lea_1", "secret": "s3cret"})
    }

    #[test]
    fn a_good_delivery_is_kept_without_its_secret() {
        let got = check(Some(&hook()), "tok", "emailsSent", &body(sent())).unwrap();
        assert_eq!(got.activity.id, "act_1");
        assert_eq!(got.activity.lead_id.as_deref(), Some("lea_1"));
        assert!(!got.body.contains("s3cret") && !got.body.contains("secret"), "{}", got.body);
    }

    #[test]
    fn each_bad_delivery_has_its_reason() {
        let h = hook();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = sent();
            f(&mut v);
            body(v)
        };
        type Case<'a> = (Option<&'a Registered>, &'a str, &'a str, Vec<u8>, Rejection);
        let cases: Vec<Case> = vec![
            (None, "tok", "emailsSent", body(sent()), Rejection::UnknownToken),
            (Some(&h), "other", "emailsSent", body(sent()), Rejection::UnknownToken),
            (Some(&h), "tok", "bogusType", body(sent()), Rejection::UnknownToken),
            (Some(&h), "tok", "emailsSent", with(&|v| v["secret"] = json!("nope")), Rejection::BadSecret),
            (
                Some(&h),
                "tok",
                "emailsSent",
                with(&|v| {
                    v.as_object_mut().unwrap().remove("secret");
                }),
                Rejection::BadSecret,
            ),
            (Some(&h), "tok", "emailsSent", b"{not json".to_vec(), Rejection::Malformed),
            (Some(&h), "tok", "emailsSent", with(&|v| v["teamId"] = json!("tea_2")), Rejection::OtherTeam),
            (Some(&h), "tok", "emailsOpened", body(sent()), Rejection::WrongType),
            (
                Some(&h),
                "tok",
                "emailsSent",
                with(&|v| v["type"] = json!("emailsOpened")),
                Rejection::WrongType,
            ),
            (
                Some(&h),
                "tok",
                "emailsSent",
                with(&|v| {
                    v.as_object_mut().unwrap().remove("_id");
                }),
                Rejection::NotAnActivity,
            ),
            (Some(&h), "tok", "emailsSent", vec![b' '; MAX_BODY + 1], Rejection::TooLarge),
        ];
        for (i, (registered, token, kind, b, want)) in cases.into_iter().enumerate() {
            assert_eq!(check(registered, token, kind, &b), Err(want), "case {i}");
        }
        assert_eq!(Rejection::BadSecret.status(), 404);
        assert_eq!(Rejection::OtherTeam.status(), 200);
    }

    #[test]
    fn a_third_party_reply_without_ids_is_kept_as_polling_would_read_it() {
        let mut reply = sent();
        reply["type"] = json!("emailsReplied");
        reply["isThirdPartyReply"] = json!(true);
        for k in ["campaignId", "leadId"] {
            reply.as_object_mut().unwrap().remove(k);
        }
        let h = Registered { kind: "emailsReplied".into(), ..hook() };
        let got = check(Some(&h), "tok", "emailsReplied", &body(reply)).unwrap();
        assert_eq!(got.activity.campaign_id, None);
    }
}
