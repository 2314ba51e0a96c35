//! The JSON the API answers with, in GitLab's field names and formats.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::deploy_token::DeployToken;

/// GitLab's `API::Entities::DeployToken`; `token` only in the create answer
/// (`DeployTokenWithToken`), since the secret exists in plain text only then.
#[derive(Debug, Serialize)]
pub struct DeployTokenEntity {
    pub id: i64,
    pub name: String,
    pub username: String,
    /// `2030-02-14T00:00:00.000Z` (the instant the token stops working) or null.
    pub expires_at: Option<String>,
    pub scopes: Vec<&'static str>,
    pub revoked: bool,
    pub expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl DeployTokenEntity {
    pub fn of(token: &DeployToken, now: DateTime<Utc>) -> Self {
        Self {
            id: token.id,
            name: token.name.clone(),
            username: token.username(),
            expires_at: token.expires_at.map(gitlab_datetime),
            scopes: token.scopes.iter().map(|s| s.as_str()).collect(),
            revoked: token.is_revoked(),
            expired: token.is_expired(now),
            token: None,
        }
    }

    /// Neither revoked nor expired: what `?active=true` keeps.
    pub fn is_active(&self) -> bool {
        !self.revoked && !self.expired
    }
}

/// A date as the instant it begins in UTC, in GitLab's millisecond format.
pub fn gitlab_datetime(date: NaiveDate) -> String {
    format!("{date}T00:00:00.000Z")
}

/// One CI/CD variable, in the shape of GitLab's project variables.
#[derive(Debug, Serialize)]
pub struct CiVariable {
    pub key: &'static str,
    pub value: String,
    pub variable_type: &'static str,
    pub protected: bool,
    pub masked: bool,
}

impl CiVariable {
    pub fn env(key: &'static str, value: String, masked: bool) -> Self {
        Self {
            key,
            value,
            variable_type: "env_var",
            protected: false,
            masked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_gitlab_datetimes() {
        let date = NaiveDate::from_ymd_opt(2030, 2, 14).expect("test input is valid");
        assert_eq!(gitlab_datetime(date), "2030-02-14T00:00:00.000Z");
    }
}
