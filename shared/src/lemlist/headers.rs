//! lemlist's rate-limit headers, parsed leniently: a header that does not parse is ignored and
//! never fails a request.
//!
//! `X-RateLimit-Reset` comes in three forms: JavaScript's `Date.toString()` (what lemlist
//! documents, e.g. `Tue Feb 16 2021 09:02:42 GMT+0100 (Central European Standard Time)`), an HTTP
//! date, or Unix seconds (what current express-rate-limit sends).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// What one response said about the key's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimitInfo {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// When the server's window resets.
    pub reset: Option<DateTime<Utc>>,
    /// `Retry-After`, integer or fractional seconds.
    pub retry_after: Option<Duration>,
    /// The response's own `Date`, so waits can be computed on the server's clock.
    pub server_date: Option<DateTime<Utc>>,
}

impl RateLimitInfo {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        Self {
            limit: text("x-ratelimit-limit").and_then(|v| v.parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset: text("x-ratelimit-reset").and_then(parse_reset),
            retry_after: text("retry-after").and_then(parse_retry_after),
            server_date: text("date").and_then(parse_http_date),
        }
    }

    /// How long until the server's window has surely reset, measured on the server's clock when
    /// the response carries a `Date` (this removes our clock's offset from lemlist's): the
    /// estimate plus one second, since both headers are given to the second. `None` when the headers give no reset, or one
    /// more than a second past (a stale header).
    fn until_surely_reset(&self, local_now: DateTime<Utc>) -> Option<Duration> {
        let reset = self.reset?;
        let now = self.server_date.unwrap_or(local_now);
        let estimate = (reset - now).num_milliseconds();
        (estimate > -1000).then(|| Duration::from_millis((estimate + 1000) as u64))
    }

    /// The response says the window is used up: everybody should pause until it has surely
    /// reset.
    pub fn exhausted_until(&self, local_now: DateTime<Utc>) -> Option<Duration> {
        if self.remaining == Some(0) { self.until_surely_reset(local_now) } else { None }
    }

    /// After a 429, how long every caller of the key should pause: until the window has surely
    /// reset, else as `Retry-After` says, else one whole window (2 s).
    pub fn pause_after_429(&self, local_now: DateTime<Utc>) -> Duration {
        self.until_surely_reset(local_now).or(self.retry_after).unwrap_or(Duration::from_secs(2))
    }

    /// After a 429, how long the refused request itself waits: long enough to be sure the window
    /// has passed (one second more than the estimate, since the reset is given to the second),
    /// or `Retry-After` if that is longer, and one whole window when neither header is usable.
    pub fn retry_after_429(&self, local_now: DateTime<Utc>) -> Duration {
        self.until_surely_reset(local_now)
            .into_iter()
            .chain(self.retry_after)
            .max()
            .unwrap_or(Duration::from_secs(2))
    }
}

/// `Retry-After` as integer or fractional seconds (an HTTP date is also allowed by RFC 9110 but
/// lemlist does not send one; it is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    // A wait of more than an hour is not a rate-limit hint we trust.
    (secs.is_finite() && (0.0..=3600.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `X-RateLimit-Reset` in any of its three forms.
pub fn parse_reset(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0);
    }
    parse_http_date(value).or_else(|| parse_js_date(value))
}

fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value).ok().map(|d| d.with_timezone(&Utc))
}

/// `Date.prototype.toString()`: `Tue Feb 16 2021 09:02:42 GMT+0100 (Central European Standard
/// Time)`. The zone name in parentheses is informative only and is dropped.
fn parse_js_date(value: &str) -> Option<DateTime<Utc>> {
    let without_zone_name = match value.find(" (") {
        Some(i) => &value[..i],
        None => value,
    };
    DateTime::parse_from_str(without_zone_name, "%a %b %d %Y %H:%M:%S GMT%z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn reset_in_all_three_forms() {
        let expected = utc("2021-02-16T08:02:42Z");
        assert_eq!(
            parse_reset("Tue Feb 16 2021 09:02:42 GMT+0100 (Central European Standard Time)"),
            Some(expected)
        );
        assert_eq!(parse_reset("Tue Feb 16 2021 09:02:42 GMT+0100"), Some(expected));
        assert_eq!(parse_reset("Tue, 16 Feb 2021 08:02:42 GMT"), Some(expected));
        assert_eq!(parse_reset("1613462562"), Some(expected));
    }

    #[test]
    fn unparseable_headers_are_ignored() {
        assert_eq!(parse_reset("tomorrow"), None);
        assert_eq!(parse_reset(""), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("lots"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("???"));
        assert_eq!(RateLimitInfo::from_headers(&h), RateLimitInfo::default());
    }

    #[test]
    fn retry_after_integer_and_fractional() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.25 "), Some(Duration::from_millis(250)));
    }

    #[test]
    fn waits_use_the_server_clock() {
        let info = RateLimitInfo {
            remaining: Some(0),
            reset: Some(utc("2021-02-16T08:02:42Z")),
            server_date: Some(utc("2021-02-16T08:02:41Z")),
            ..Default::default()
        };
        // Our clock is far off; the server's Date is what counts.
        let local = utc("2030-01-01T00:00:00Z");
        // The reset is 1 s away to the second: surely over 2 s from now.
        assert_eq!(info.exhausted_until(local), Some(Duration::from_secs(2)), "one second more, to be sure");
        assert_eq!(info.pause_after_429(local), Duration::from_secs(2));
        assert_eq!(info.retry_after_429(local), Duration::from_secs(2));
        let with_hint = RateLimitInfo { retry_after: Some(Duration::from_secs(5)), ..info };
        assert_eq!(with_hint.retry_after_429(local), Duration::from_secs(5));
        assert_eq!(with_hint.pause_after_429(local), Duration::from_secs(2));
        // A reset given as this very second may still be up to a second away.
        let now = RateLimitInfo { reset: info.server_date, ..info };
        assert_eq!(now.exhausted_until(local), Some(Duration::from_secs(1)));
    }

    #[test]
    fn no_pause_while_budget_remains_or_reset_is_past() {
        let now = utc("2021-02-16T08:02:41Z");
        let mut info = RateLimitInfo { remaining: Some(3), reset: Some(now), ..Default::default() };
        assert_eq!(info.exhausted_until(now), None);
        info.remaining = Some(0);
        info.reset = Some(utc("2021-02-16T08:02:30Z"));
        assert_eq!(info.exhausted_until(now), None);
        assert_eq!(RateLimitInfo::default().retry_after_429(now), Duration::from_secs(2));
        assert_eq!(RateLimitInfo::default().pause_after_429(now), Duration::from_secs(2));
    }
}
