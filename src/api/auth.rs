//! Who calls the management API: a user's personal access token in `PRIVATE-TOKEN:` or
//! `Authorization: Bearer`, with the `api` scope — the one authentication step with policy
//! `API`. Nothing else opens it — not a password, not a deploy token (SPEC §1), not a
//! cookie (the settings pages have their own CSRF-checked forms; accepting cookies here
//! would let any site drive the API from a browser).

use actix_web::HttpRequest;

use super::error::GitlabError;
use crate::app::AppState;
use crate::auth::{AuthFailure, Policy};
use crate::domain::principal::Principal;
use crate::domain::user::UserPrincipal;

/// The caller as a user principal: 401 for missing, wrong, revoked or expired credentials
/// and for deploy tokens; 403 `insufficient_scope` for a PAT without `api`. Failures count
/// against the client's address and are audited like failed logins anywhere else.
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
) -> Result<UserPrincipal, GitlabError> {
    let attempt = state.auth.attempt(req, &Policy::API);
    match state.auth.check(&attempt, None).await {
        Ok(Principal::User(user)) => Ok(*user),
        // The policy accepts users' tokens only; anything else is no API caller.
        Ok(_) => Err(GitlabError::Unauthorized),
        Err(AuthFailure::Throttled(secs)) => Err(GitlabError::Throttled(secs)),
        Err(AuthFailure::InsufficientScope) => Err(GitlabError::InsufficientScope),
        Err(AuthFailure::Unavailable) => Err(GitlabError::Unavailable),
        Err(AuthFailure::Refused(reason)) => {
            // The reason (unknown, revoked, expired, deploy token) is for the log only.
            if crate::request::refusals::log_refusal(attempt.client.ip) {
                log::info!(
                    "api authentication refused ip={}: {reason}",
                    attempt.client.ip_text()
                );
            }
            Err(GitlabError::Unauthorized)
        }
        Err(AuthFailure::CredentialsRequired | AuthFailure::Malformed(_)) => {
            Err(GitlabError::Unauthorized)
        }
    }
}
