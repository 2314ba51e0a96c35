//! Rows as both backends read them, and the pure conversions from them to the domain's
//! types. Why here: SQLite and PostgreSQL store the same columns (times as RFC 3339 text,
//! dates as `YYYY-MM-DD`, scopes comma-separated), so each backend only moves values
//! between its driver and these structs, and a malformed value is refused the same way by
//! both.

pub mod deploy_tokens;
pub mod groups;
pub mod packages;
pub mod personal_access_tokens;
pub mod projects;
pub mod sessions;
pub mod users;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// A stored value the domain cannot accept; each backend turns it into its own error and
/// from there into `StoreError::Corrupt`.
#[derive(Debug, thiserror::Error)]
#[error("database holds a malformed value: {0}")]
pub struct Corrupt(pub String);

/// How times are stored: second precision, `Z`, so text order is time order.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>, Corrupt> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Corrupt(format!("timestamp {s:?}")))
}

pub fn opt_time(s: &Option<String>) -> Result<Option<DateTime<Utc>>, Corrupt> {
    s.as_deref().map(parse_time).transpose()
}

pub fn parse_date(s: &str) -> Result<NaiveDate, Corrupt> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| Corrupt(format!("date {s:?}")))
}

impl From<Corrupt> for crate::domain::store::StoreError {
    fn from(c: Corrupt) -> Self {
        crate::domain::store::StoreError::Corrupt(c.0)
    }
}
