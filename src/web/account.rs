//! Signing in and out, and finding who a request belongs to: the only place the settings
//! pages talk to the user directory. Sign-in is the one authentication step with policy
//! `SIGN_IN` (throttled and audited like every login; argon2 on the hashing pool).

use actix_web::{web, HttpRequest};
use chrono::Utc;
use secrecy::SecretString;

use super::error::WebError;
use super::on_pool;
use super::session::{self, NewSession, SessionDigest};
use crate::app::AppState;
use crate::auth::{AuthFailure, Policy};
use crate::domain::authn::{Credentials, Presented};
use crate::domain::principal::Principal;
use crate::domain::user::{UserCredential, UserPrincipal};

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
pub async fn require(req: &HttpRequest, state: &web::Data<AppState>) -> Result<SignedIn, WebError> {
    current(req, state)
        .await?
        .ok_or_else(|| WebError::SignInRequired(req.path().to_string()))
}

/// The signed-in user, if the request carries a live session.
pub async fn current(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Option<SignedIn>, WebError> {
    let Some(digest) = session::presented(req) else {
        return Ok(None);
    };
    on_pool(state, move |state| load(state, digest)).await
}

fn load(state: &AppState, digest: SessionDigest) -> Result<Option<SignedIn>, WebError> {
    let store = |e: &dyn std::fmt::Display| {
        log::error!("session lookup failed: {e}");
        WebError::Unavailable
    };
    let Some(stored) = state
        .store
        .find_session(&digest, Utc::now())
        .map_err(|e| store(&e))?
    else {
        return Ok(None);
    };
    // A user deleted since sign-in has no session any more (the row cascades away too);
    // a blocked one is signed out.
    let Some(user) = state
        .store
        .find_user(stored.user_id)
        .map_err(|e| store(&e))?
        .filter(|u| !u.is_blocked())
    else {
        return Ok(None);
    };
    let memberships = state.store.memberships_of(user.id).map_err(|e| store(&e))?;
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

/// Checks the password and opens a session. Only a password signs in here: a deploy token
/// or a personal access token is for machines and the API.
pub async fn sign_in(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    username: String,
    password: String,
) -> Result<(NewSession, String), WebError> {
    let presented = Presented::Login(Credentials {
        username,
        secret: SecretString::from(password),
    });
    let attempt = state.auth.attempt_with(
        state.auth.client_ip(req),
        Ok(Some(presented)),
        &Policy::SIGN_IN,
    );
    let user = match state.auth.check(&attempt, None).await {
        Ok(Principal::User(user)) if matches!(user.credential, UserCredential::Password) => user,
        Ok(_) => return Err(WebError::BadRequest(REFUSED.to_string())),
        Err(AuthFailure::Refused(reason)) => {
            if crate::request::refusals::log_refusal(attempt.client.ip) {
                log::info!(
                    "web sign-in refused ip={}: {reason}",
                    attempt.client.ip_text()
                );
            }
            return Err(WebError::BadRequest(REFUSED.to_string()));
        }
        Err(AuthFailure::Throttled(secs)) => return Err(WebError::Throttled(secs)),
        Err(AuthFailure::Unavailable) => return Err(WebError::Unavailable),
        Err(
            AuthFailure::CredentialsRequired
            | AuthFailure::Malformed(_)
            | AuthFailure::InsufficientScope,
        ) => return Err(WebError::BadRequest(REFUSED.to_string())),
    };
    let now = Utc::now();
    let new = NewSession::generate(now);
    let (digest, csrf, expires_at, user_id) = (
        new.digest.clone(),
        new.csrf_token.clone(),
        new.expires_at,
        user.user.id,
    );
    on_pool(state, move |state| {
        state
            .store
            .create_session(&digest, user_id, &csrf, now, expires_at)
            .map_err(|e| {
                log::error!("cannot store a session: {e}");
                WebError::Unavailable
            })
    })
    .await?;
    log::info!("web sign-in user={}", user.user.username);
    Ok((new, user.user.username.clone()))
}

/// What a refused sign-in says, whatever the reason (no user, wrong password, a token).
pub const REFUSED: &str = "Invalid username or password.";

/// Ends the session server-side; the cookie alone opens nothing afterwards.
pub async fn sign_out(state: &web::Data<AppState>, digest: &SessionDigest) -> Result<(), WebError> {
    let digest = digest.clone();
    on_pool(state, move |state| {
        state.store.delete_session(&digest).map_err(|e| {
            log::error!("cannot delete a session: {e}");
            WebError::Unavailable
        })
    })
    .await
}
