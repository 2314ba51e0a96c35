//! A `sessions` row, and when it still counts as a sign-in.

use chrono::{DateTime, Utc};

use super::{parse_time, Corrupt};
use crate::domain::store::StoredSession;

/// The columns both backends select, in [`RawSession`]'s order.
pub const COLUMNS: &str = "user_id, csrf_token, expires_at";

pub struct RawSession {
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: String,
}

impl RawSession {
    /// The session, unless it has ended by `now`. Why here rather than in SQL: ended rows
    /// are only swept at the next sign-in, so every read must apply the same rule (an end
    /// at exactly `now` is over), whichever backend answers.
    pub fn live_at(self, now: DateTime<Utc>) -> Result<Option<StoredSession>, Corrupt> {
        let expires_at = parse_time(&self.expires_at)?;
        Ok((expires_at > now).then_some(StoredSession {
            user_id: self.user_id,
            csrf_token: self.csrf_token,
            expires_at,
        }))
    }
}
