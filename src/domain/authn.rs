//! Turning presented credentials into a [`Principal`]. Shared by every realm, so a token
//! that is revoked or expired fails the same way everywhere, on the very next request.

use chrono::{DateTime, Utc};

use super::deploy_token::{HashedToken, SECRET_PREFIX};
use super::principal::Principal;
use super::store::{DeployTokenLookup, StoreError};

/// A username and secret as presented (Basic header, OAuth form, package headers).
pub struct Credentials {
    pub username: String,
    pub secret: secrecy::SecretString,
}

/// Why authentication failed. The messages never contain the secret; the client sees one
/// generic 401 whatever the reason, the log sees the reason.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("unknown secret")]
    UnknownSecret,
    #[error("username does not match the token")]
    UsernameMismatch,
    #[error("token {0} is revoked")]
    Revoked(i64),
    #[error("token {0} has expired")]
    Expired(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn authenticate(
    tokens: &dyn DeployTokenLookup,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Principal, AuthnError> {
    use secrecy::ExposeSecret;
    let secret = credentials.secret.expose_secret();
    // Only deploy tokens exist so far; users and personal access tokens come later.
    if !secret.starts_with(SECRET_PREFIX) {
        return Err(AuthnError::UnknownSecret);
    }
    let token = tokens
        .find_by_digest(&HashedToken::of(secret))?
        .ok_or(AuthnError::UnknownSecret)?;
    if !token.username_matches(&credentials.username) {
        return Err(AuthnError::UsernameMismatch);
    }
    if token.is_revoked() {
        return Err(AuthnError::Revoked(token.id));
    }
    if token.is_expired(now) {
        return Err(AuthnError::Expired(token.id));
    }
    Ok(Principal::DeployToken(Box::new(token)))
}
