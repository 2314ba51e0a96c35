//! Turning presented credentials into a [`Principal`]. Shared by every realm, so a token
//! that is revoked or expired fails the same way everywhere, on the very next request.
//!
//! The secret's prefix says what it is: `wvsdt-` a deploy token, `wvspat-` a personal
//! access token, anything else a user's password.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::deploy_token::{HashedToken, SECRET_PREFIX};
use super::password::{hash_password, verify_password};
use super::personal_access_token::PAT_PREFIX;
use super::principal::Principal;
use super::store::{DeployTokenLookup, StoreError, UserDirectory};
use super::user::{UserCredential, UserPrincipal};

/// A username and secret as presented (Basic header, OAuth form, package headers).
pub struct Credentials {
    pub username: String,
    pub secret: secrecy::SecretString,
}

/// The stores authentication reads.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub tokens: &'a dyn DeployTokenLookup,
    pub users: &'a dyn UserDirectory,
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
    #[error("personal access token {0} is revoked or expired")]
    PatInactive(i64),
    #[error("unknown user or wrong password")]
    BadPassword,
    #[error("deploy tokens cannot use the management API")]
    DeployTokenNotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn authenticate(
    stores: Stores<'_>,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Principal, AuthnError> {
    let secret = credentials.secret.expose_secret();
    if secret.starts_with(SECRET_PREFIX) {
        return deploy_token(stores.tokens, credentials, now);
    }
    if secret.starts_with(PAT_PREFIX) {
        let user = personal_access_token(stores.users, secret, now)?;
        // Constant time is not needed here: the secret already identified the user, the
        // username is only checked so a PAT cannot be presented under another name.
        if !user
            .user
            .username
            .eq_ignore_ascii_case(&credentials.username)
        {
            return Err(AuthnError::UsernameMismatch);
        }
        return Ok(Principal::User(Box::new(user)));
    }
    password(stores.users, credentials).map(|u| Principal::User(Box::new(u)))
}

/// `PRIVATE-TOKEN:` and `Authorization: Bearer` on the management API: personal access
/// tokens only. A deploy token there is refused outright (SPEC §1).
pub fn authenticate_private_token(
    stores: Stores<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<UserPrincipal, AuthnError> {
    if secret.starts_with(SECRET_PREFIX) {
        return Err(AuthnError::DeployTokenNotAllowed);
    }
    if !secret.starts_with(PAT_PREFIX) {
        return Err(AuthnError::UnknownSecret);
    }
    personal_access_token(stores.users, secret, now)
}

fn deploy_token(
    tokens: &dyn DeployTokenLookup,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Principal, AuthnError> {
    let secret = credentials.secret.expose_secret();
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

fn personal_access_token(
    users: &dyn UserDirectory,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<UserPrincipal, AuthnError> {
    let pat = users
        .find_pat_by_digest(&HashedToken::of(secret))?
        .ok_or(AuthnError::UnknownSecret)?;
    if !pat.is_active(now) {
        return Err(AuthnError::PatInactive(pat.id));
    }
    let user = users
        .find_user(pat.user_id)?
        .ok_or(AuthnError::UnknownSecret)?;
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential: UserCredential::PersonalAccessToken {
            id: pat.id,
            scopes: pat.scopes,
            expires_at: pat.expires_at,
        },
    })
}

/// The user a short-lived LFS link speaks for, re-read now: the user must still exist, the
/// memberships are today's, and the PAT that asked (if one did) must still be active and
/// theirs. A link made after a password sign-in carries no PAT and acts as the password did.
pub fn reload_user(
    users: &dyn UserDirectory,
    user_id: i64,
    pat_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<UserPrincipal, AuthnError> {
    let credential = match pat_id {
        None => UserCredential::Password,
        Some(id) => {
            let pat = users
                .find_pat(id)?
                .filter(|p| p.user_id == user_id)
                .ok_or(AuthnError::UnknownSecret)?;
            if !pat.is_active(now) {
                return Err(AuthnError::PatInactive(pat.id));
            }
            UserCredential::PersonalAccessToken {
                id: pat.id,
                scopes: pat.scopes,
                expires_at: pat.expires_at,
            }
        }
    };
    let user = users.find_user(user_id)?.ok_or(AuthnError::UnknownSecret)?;
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential,
    })
}

/// A password sign-in. Unknown users still cost one argon2 verification, so timing does
/// not reveal which usernames exist.
fn password(
    users: &dyn UserDirectory,
    credentials: &Credentials,
) -> Result<UserPrincipal, AuthnError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let attempt = credentials.secret.expose_secret();
    let found = users.find_user_by_username(&credentials.username)?;
    let Some((user, Some(hash))) = found else {
        let dummy = DUMMY.get_or_init(|| {
            hash_password(&secrecy::SecretString::from(
                "not a real password".to_string(),
            ))
            .unwrap_or_default()
        });
        verify_password(dummy, attempt);
        return Err(AuthnError::BadPassword);
    };
    if !verify_password(&hash, attempt) {
        return Err(AuthnError::BadPassword);
    }
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential: UserCredential::Password,
    })
}
