//! Who calls the management API: a user's personal access token in `PRIVATE-TOKEN:` or
//! `Authorization: Bearer`, with the `api` scope. Nothing else opens it — not a password,
//! not a deploy token (SPEC §1), not a cookie (the settings pages have their own CSRF-checked
//! forms; accepting cookies here would let any site drive the API from a browser).

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::HttpRequest;
use chrono::Utc;

use super::error::GitlabError;
use crate::domain::authn::{authenticate_private_token, AuthnError};
use crate::domain::user::UserPrincipal;
use crate::http::client::client_ip;
use crate::http::throttle::throttle_keys;
use crate::http::AppState;

/// The secret the request presents, if any. `PRIVATE-TOKEN` wins when both are sent, as in
/// GitLab. An `Authorization` header of another scheme (Basic) is no API credential.
pub fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get("private-token") {
        return value.to_str().ok().map(str::trim);
    }
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The caller as a user principal: 401 for missing, wrong, revoked or expired credentials
/// and for deploy tokens; 403 `insufficient_scope` for a PAT without `api`. Failures count
/// against the client's address like failed logins anywhere else.
pub fn authenticate(req: &HttpRequest, state: &AppState) -> Result<UserPrincipal, GitlabError> {
    let keys = throttle_keys(client_ip(req, &state.trusted_proxies), None);
    let started = std::time::Instant::now();
    if let Some(secs) = state.throttle.banned(&keys, started) {
        return Err(GitlabError::Throttled(secs));
    }
    let Some(secret) = presented_secret(req.headers()).filter(|s| !s.is_empty()) else {
        return Err(GitlabError::Unauthorized);
    };
    match authenticate_private_token(state.stores(), secret, Utc::now()) {
        Ok(user) if user.may_use_api() => Ok(user),
        Ok(_) => Err(GitlabError::InsufficientScope),
        Err(AuthnError::Store(e)) => {
            log::error!("personal access token lookup failed: {e}");
            Err(GitlabError::Unavailable)
        }
        Err(reason) => {
            // The reason (unknown, revoked, expired, deploy token) is for the log only.
            log::info!("api authentication refused: {reason}");
            state.throttle.record_failure(&keys, started);
            Err(GitlabError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("test input is valid"),
                HeaderValue::from_str(v).expect("test input is valid"),
            );
        }
        h
    }

    #[test]
    fn private_token_or_bearer() {
        assert_eq!(
            presented_secret(&headers(&[("PRIVATE-TOKEN", "wvspat-a")])),
            Some("wvspat-a")
        );
        assert_eq!(
            presented_secret(&headers(&[("Authorization", "Bearer wvspat-b")])),
            Some("wvspat-b")
        );
        assert_eq!(
            presented_secret(&headers(&[("authorization", "bearer  wvspat-c ")])),
            Some("wvspat-c")
        );
        assert_eq!(
            presented_secret(&headers(&[
                ("Authorization", "Bearer wvspat-b"),
                ("Private-Token", "wvspat-a")
            ])),
            Some("wvspat-a")
        );
    }

    #[test]
    fn other_schemes_are_no_credential() {
        assert_eq!(
            presented_secret(&headers(&[("Authorization", "Basic eDp5")])),
            None
        );
        assert_eq!(
            presented_secret(&headers(&[("Authorization", "Bearer")])),
            None
        );
        assert_eq!(presented_secret(&HeaderMap::new()), None);
    }
}
