//! A `personal_access_tokens` row (never its digest).

use super::{opt_time, parse_date, parse_time, Corrupt};
use crate::domain::personal_access_token::{parse_pat_scopes, PersonalAccessToken};

/// The query both backends start from, its columns in [`RawPat`]'s order; each adds its
/// `WHERE`.
pub const SELECT: &str = "SELECT id, user_id, name, scopes, expires_at, created_at, revoked_at, \
     last_used_at FROM personal_access_tokens";

pub struct RawPat {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl RawPat {
    pub fn build(self) -> Result<PersonalAccessToken, Corrupt> {
        let id = self.id;
        Ok(PersonalAccessToken {
            id,
            user_id: self.user_id,
            scopes: parse_pat_scopes(&self.scopes)
                .map_err(|e| Corrupt(format!("personal access token {id}: {e}")))?,
            expires_at: self.expires_at.as_deref().map(parse_date).transpose()?,
            created_at: parse_time(&self.created_at)?,
            revoked_at: opt_time(&self.revoked_at)?,
            last_used_at: opt_time(&self.last_used_at)?,
            name: self.name,
        })
    }
}
