//! Personal access tokens: a user's own secret for the API and the realms, limited by
//! scopes and optionally by a date. Stored, like deploy tokens, only as a SHA-256 digest.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};

use super::deploy_token::is_expired;

/// Every personal-access-token secret starts with this, so scanners can tell it from a
/// deploy token (`wvsdt-`).
pub const PAT_PREFIX: &str = "wvspat-";

/// A new personal access token secret: `wvspat-` and 192 random bits.
pub fn generate_secret() -> super::secret::PlainSecret {
    super::secret::PlainSecret::with_prefix(PAT_PREFIX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatScope {
    /// The management API, and (as in GitLab) everything the other scopes allow.
    Api,
    ReadRepository,
    WriteRepository,
    ReadRegistry,
    WriteRegistry,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatScopeError {
    #[error("unknown scope {0:?} (expected api, read_repository, write_repository, read_registry, write_registry)")]
    Unknown(String),
    #[error("at least one scope is required")]
    Empty,
}

impl PatScope {
    pub const ALL: [PatScope; 5] = [
        PatScope::Api,
        PatScope::ReadRepository,
        PatScope::WriteRepository,
        PatScope::ReadRegistry,
        PatScope::WriteRegistry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PatScope::Api => "api",
            PatScope::ReadRepository => "read_repository",
            PatScope::WriteRepository => "write_repository",
            PatScope::ReadRegistry => "read_registry",
            PatScope::WriteRegistry => "write_registry",
        }
    }
}

impl FromStr for PatScope {
    type Err = PatScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatScope::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| PatScopeError::Unknown(s.to_string()))
    }
}

impl fmt::Display for PatScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `api,read_registry` into a sorted, de-duplicated, non-empty set.
pub fn parse_pat_scopes(raw: &str) -> Result<Vec<PatScope>, PatScopeError> {
    let mut scopes = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<PatScope>, _>>()?;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(PatScopeError::Empty);
    }
    Ok(scopes)
}

/// A stored personal access token (never its secret).
#[derive(Debug, Clone)]
pub struct PersonalAccessToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: Vec<PatScope>,
    pub expires_at: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl PersonalAccessToken {
    /// Active: not revoked and not past midnight UTC of its expiry date.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && !is_expired(self.expires_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_sorted_and_strict() {
        assert_eq!(
            parse_pat_scopes("write_registry, api,api").expect("ok"),
            vec![PatScope::Api, PatScope::WriteRegistry]
        );
        assert_eq!(parse_pat_scopes(""), Err(PatScopeError::Empty));
        assert!(matches!(
            parse_pat_scopes("read_package_registry"),
            Err(PatScopeError::Unknown(_))
        ));
    }
}
