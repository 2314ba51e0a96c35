//! Turning presented credentials into a principal, the same way in every realm: refuse a
//! throttled client before looking at its credentials, authenticate, and count a failure
//! against the client's address and the username.

use std::net::IpAddr;
use std::time::Instant;

use chrono::Utc;

use super::client::loggable_username;
use super::throttle::throttle_keys;
use super::AppState;
use crate::domain::audit::{AuditAction, NewAuditEvent};
use crate::domain::authn::{authenticate, AuthnError, Credentials};
use crate::domain::principal::Principal;

pub enum LoginError {
    /// Too many recent failures: retry after this many seconds.
    Throttled(u64),
    /// Wrong, revoked or expired credentials (the reason is for the log only).
    Refused(AuthnError),
    /// The token store did not answer (already logged).
    Unavailable,
}

/// `account`, when the protocol carries one (Docker's `account=`), must equal the username.
pub fn login(
    state: &AppState,
    peer: Option<IpAddr>,
    credentials: Option<&Credentials>,
    account: Option<&str>,
) -> Result<Principal, LoginError> {
    let keys = throttle_keys(peer, credentials.map(|c| c.username.as_str()));
    let now = Instant::now();
    if let Some(secs) = state.throttle.banned(&keys, now) {
        return Err(LoginError::Throttled(secs));
    }
    let Some(credentials) = credentials else {
        return Ok(Principal::Anonymous);
    };
    let result = match account {
        Some(account) if account != credentials.username => Err(AuthnError::UsernameMismatch),
        _ => authenticate(state.stores(), credentials, Utc::now()),
    };
    result.map_err(|reason| match reason {
        AuthnError::Store(e) => {
            log::error!("token lookup failed: {e}");
            LoginError::Unavailable
        }
        reason => {
            state.throttle.record_failure(&keys, now);
            audit_failure(state, peer, &credentials.username, &reason);
            LoginError::Refused(reason)
        }
    })
}

/// Failed authentications go to the audit log (SPEC §7). The throttle bounds how many one
/// client can cause; a failed write is logged and never changes the answer.
fn audit_failure(state: &AppState, peer: Option<IpAddr>, username: &str, reason: &AuthnError) {
    let event = NewAuditEvent {
        action: AuditAction::AuthFailure,
        actor: Some(loggable_username(username)),
        actor_user_id: None,
        deploy_token_id: match reason {
            AuthnError::Revoked(id) | AuthnError::Expired(id) => Some(*id),
            _ => None,
        },
        target: None,
        detail: Some(format!(
            "ip={} reason={reason}",
            peer.map_or("-".to_string(), |p| p.to_string())
        )),
    };
    if let Err(e) = state.db.record_audit(&event) {
        log::warn!("could not write the audit log: {e}");
    }
}
