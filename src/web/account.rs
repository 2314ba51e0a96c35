//! Signing in and out, and finding who a request belongs to: the only place the settings
//! pages talk to the user directory.

use actix_web::{web, HttpRequest};
use chrono::Utc;
use secrecy::SecretString;

use super::error::WebError;
use super::session::{self, NewSession, SessionDigest};
use crate::domain::authn::Credentials;
use crate::domain::principal::Principal;
use crate::domain::user::{UserCredential, UserPrincipal};
use crate::http::client::client_ip;
use crate::http::login::{login, LoginError};
use crate::http::AppState;

/// The user behind a request's session cookie.
pub struct SignedIn {
    pub principal: UserPrincipal,
    pub session: SessionDigest,
    /// This session's CSRF token: every form carries it, every POST must present it.
    pub csrf: String,
}

impl SignedIn {
    pub fn username(&self) -> &str {
        &self.principal.user.username
    }
}

/// The signed-in user, or `SignInRequired` naming the page to come back to.
pub fn require(req: &HttpRequest, state: &AppState) -> Result<SignedIn, WebError> {
    current(req, state)?.ok_or_else(|| WebError::SignInRequired(req.path().to_string()))
}

/// The signed-in user, if the request carries a live session.
pub fn current(req: &HttpRequest, state: &AppState) -> Result<Option<SignedIn>, WebError> {
    let Some(digest) = session::presented(req) else {
        return Ok(None);
    };
    let store = |e: &dyn std::fmt::Display| {
        log::error!("session lookup failed: {e}");
        WebError::Unavailable
    };
    let Some(stored) = state
        .db
        .find_session(&digest, Utc::now())
        .map_err(|e| store(&e))?
    else {
        return Ok(None);
    };
    // A user deleted since sign-in has no session any more (the row cascades away too).
    let Some(user) = state
        .users
        .find_user(stored.user_id)
        .map_err(|e| store(&e))?
    else {
        return Ok(None);
    };
    let memberships = state.users.memberships_of(user.id).map_err(|e| store(&e))?;
    Ok(Some(SignedIn {
        principal: UserPrincipal {
            user,
            memberships,
            credential: UserCredential::Session,
        },
        session: digest,
        csrf: stored.csrf_token,
    }))
}

/// Checks the password (throttled like every login) and opens a session. Only a password
/// signs in here: a deploy token or a personal access token is for machines and the API.
/// Argon2 is deliberately slow, so this runs off the async workers.
pub async fn sign_in(
    req: &HttpRequest,
    state: web::Data<AppState>,
    username: String,
    password: String,
) -> Result<(NewSession, String), WebError> {
    let peer = client_ip(req, &state.trusted_proxies);
    let blocking = state.clone();
    let outcome = web::block(move || {
        let credentials = Credentials {
            username,
            secret: SecretString::from(password),
        };
        login(&blocking, peer, Some(&credentials), None)
    })
    .await
    .map_err(|_| WebError::Unavailable)?;
    let user = match outcome {
        Ok(Principal::User(user)) if matches!(user.credential, UserCredential::Password) => user,
        Ok(_) => return Err(WebError::BadRequest(REFUSED.to_string())),
        Err(LoginError::Refused(reason)) => {
            log::info!("web sign-in refused: {reason}");
            return Err(WebError::BadRequest(REFUSED.to_string()));
        }
        Err(LoginError::Throttled(secs)) => return Err(WebError::Throttled(secs)),
        Err(LoginError::Unavailable) => return Err(WebError::Unavailable),
    };
    let now = Utc::now();
    let new = NewSession::generate(now);
    state
        .db
        .create_session(
            &new.digest,
            user.user.id,
            &new.csrf_token,
            now,
            new.expires_at,
        )
        .map_err(|e| {
            log::error!("cannot store a session: {e}");
            WebError::Unavailable
        })?;
    log::info!("web sign-in user={}", user.user.username);
    Ok((new, user.user.username.clone()))
}

/// What a refused sign-in says, whatever the reason (no user, wrong password, a token).
pub const REFUSED: &str = "Invalid username or password.";

/// Ends the session server-side; the cookie alone opens nothing afterwards.
pub fn sign_out(state: &AppState, digest: &SessionDigest) -> Result<(), WebError> {
    state.db.delete_session(digest).map_err(|e| {
        log::error!("cannot delete a session: {e}");
        WebError::Unavailable
    })
}
