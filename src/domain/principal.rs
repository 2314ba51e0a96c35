//! Who is asking. Every realm decides on a `Principal`, never on raw credentials.

use chrono::{DateTime, Utc};

use super::deploy_token::{DeployToken, TokenScope};
use super::user::{UserCredential, UserPrincipal};

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    DeployToken(Box<DeployToken>),
    /// A user signed in with a password or a personal access token.
    User(Box<UserPrincipal>),
}

impl Principal {
    /// The name that goes into a JWT's `sub` and into logs; empty for anonymous.
    pub fn subject(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::DeployToken(t) => t.username(),
            Principal::User(u) => u.user.username.clone(),
        }
    }

    pub fn auth_type(&self) -> &'static str {
        match self {
            Principal::Anonymous => "none",
            Principal::DeployToken(_) => "deploy_token",
            Principal::User(u) => match u.credential {
                UserCredential::PersonalAccessToken { .. } => "personal_access_token",
                UserCredential::Password | UserCredential::Session => "user",
            },
        }
    }

    /// Deploy-token scopes; users have none of them (their PAT scopes are
    /// [`UserPrincipal::allows`]).
    pub fn has_scope(&self, scope: TokenScope) -> bool {
        match self {
            Principal::DeployToken(t) => t.has(scope),
            Principal::Anonymous | Principal::User(_) => false,
        }
    }

    /// When the credential itself stops working (a deploy token's or PAT's expiry date), so
    /// a JWT never outlives it.
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        match self {
            Principal::DeployToken(t) => t.expires_at_instant(),
            Principal::User(u) => match &u.credential {
                UserCredential::PersonalAccessToken { expires_at, .. } => {
                    expires_at.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                }
                UserCredential::Password | UserCredential::Session => None,
            },
            Principal::Anonymous => None,
        }
    }
}
